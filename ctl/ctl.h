/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * ctl.h: what keycustodyctl's command files (cmd-*.c) share.
 */
#ifndef KC_CTL_H
#define KC_CTL_H

#include "kc-proto.h"

#ifndef __dead
#define __dead __attribute__((__noreturn__))
#endif

#define EXIT_API	1	/* the daemon answered with an error */
#define EXIT_USAGE	2
#define EXIT_CONN	3	/* no answer from the daemon, or it is unavailable */

struct ctl_opts {
	const char	*socket;
	int		 json;
	int		 timeout_ms;
};

/** One call to the daemon; exits on transport failure. Caller frees the response. */
Keycustody__Response *ctl_call(struct ctl_opts *o, Keycustody__Request *req);
/** Print the daemon's error (the API's error envelope with --json). @retval exit code */
int		 ctl_error(struct ctl_opts *o, const Keycustody__Error *e);
/** Parse a non-negative number or exit with a usage error naming flag. */
unsigned int	 ctl_uint(const char *flag, const char *s);
/** Parse "--zone ZONE ID" for get and delete commands. */
void		 ctl_zone_id(int argc, char **argv, const char *noun, const char *verb,
		    const char **zone, const char **id);
/* --zone ZONE and no operand. */
void		 ctl_zone(int argc, char **argv, const char *noun, const char *verb,
		    const char **zone);
/* The flags every list command takes; commands number their own from CTL_O_MORE. */
enum { CTL_O_ZONE = 256, CTL_O_PAGE, CTL_O_PER_PAGE, CTL_O_DESC, CTL_O_MORE };
#define CTL_LIST_OPTIONS						\
	{ "zone",	required_argument,	NULL, CTL_O_ZONE },		\
	{ "page",	required_argument,	NULL, CTL_O_PAGE },		\
	{ "per-page",	required_argument,	NULL, CTL_O_PER_PAGE },	\
	{ "desc",	no_argument,		NULL, CTL_O_DESC }

struct ctl_list {
	const char	*zone;
	int		 has_page, has_per_page, desc;
	unsigned int	 page, per_page;
};

/** Take one of the CTL_LIST_OPTIONS flags. @retval 1 if ch was one, else 0 */
int		 ctl_list_flag(struct ctl_list *l, int ch, const char *arg);
/** Print the answer to a delete: the bare {"id": ...} with --json, a line otherwise. */
void		 ctl_print_deleted(struct ctl_opts *o, const char *id);
/** Print the usage of noun [verb] and exit 2. */
__dead void	 cmd_usage(const char *noun, const char *verb);
/** Print the usage of noun [verb] to stdout (--help); does not exit. */
void		 cmd_help(const char *noun, const char *verb);

int	cmd_health(struct ctl_opts *, int, char **);
int	cmd_csr_create(struct ctl_opts *, int, char **);
int	cmd_csr_list(struct ctl_opts *, int, char **);
int	cmd_csr_get(struct ctl_opts *, int, char **);
int	cmd_csr_delete(struct ctl_opts *, int, char **);
int	cmd_hostname_create(struct ctl_opts *, int, char **);
int	cmd_hostname_list(struct ctl_opts *, int, char **);
int	cmd_hostname_get(struct ctl_opts *, int, char **);
int	cmd_hostname_update(struct ctl_opts *, int, char **);
int	cmd_hostname_delete(struct ctl_opts *, int, char **);
int	cmd_fallback_get(struct ctl_opts *, int, char **);
int	cmd_fallback_set(struct ctl_opts *, int, char **);
int	cmd_fallback_delete(struct ctl_opts *, int, char **);

#endif /* KC_CTL_H */
