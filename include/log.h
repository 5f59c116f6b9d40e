/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * log.h: logging to stderr (foreground) or syslog, for every program of the project.
 */
#ifndef KC_LOG_H
#define KC_LOG_H

#include <stdarg.h>

#ifndef __dead
#define __dead __attribute__((__noreturn__))
#endif

/**
 * Set up logging. debug > 0: log to stderr, debug > 1 also shows log_debug lines.
 * debug == 0: syslog with the given facility.
 */
void	log_init(int debug, int facility);
/** Name the process in log lines (program name by default). */
void	log_procinit(const char *name);
/** Raise or lower verbosity at run time. */
void	log_setverbose(int verbose);
int	log_getverbose(void);

void	log_warn(const char *, ...) __attribute__((__format__(__printf__, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((__format__(__printf__, 1, 2)));
void	log_info(const char *, ...) __attribute__((__format__(__printf__, 1, 2)));
void	log_debug(const char *, ...) __attribute__((__format__(__printf__, 1, 2)));
void	vlog(int pri, const char *, va_list) __attribute__((__format__(__printf__, 2, 0)));
__dead void fatal(const char *, ...) __attribute__((__format__(__printf__, 1, 2)));
__dead void fatalx(const char *, ...) __attribute__((__format__(__printf__, 1, 2)));

#define log_warn_f(fmt, ...)	log_warn("%s: " fmt, __func__, ##__VA_ARGS__)
#define log_warnx_f(fmt, ...)	log_warnx("%s: " fmt, __func__, ##__VA_ARGS__)
#define log_debug_f(fmt, ...)	log_debug("%s: " fmt, __func__, ##__VA_ARGS__)
#define fatal_f(fmt, ...)	fatal("%s: " fmt, __func__, ##__VA_ARGS__)
#define fatalx_f(fmt, ...)	fatalx("%s: " fmt, __func__, ##__VA_ARGS__)

/* API misuse: log and return (p11-kit style). */
#define return_val_if_fail(x, v) do {					\
	if (!(x)) {							\
		log_warnx("%s: assertion '%s' failed", __func__, #x);	\
		return v;						\
	}								\
} while (0)

#endif /* KC_LOG_H */
