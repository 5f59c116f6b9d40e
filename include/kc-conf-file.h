/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * kc-conf-file.h: the "key = value" configuration file reader that keycustodyd and
 * keycustody-http share, and the settings-table helpers both build their keys on.
 */
#ifndef KC_CONF_FILE_H
#define KC_CONF_FILE_H

#include <stddef.h>
#include <stdio.h>

/*
 * The file format, one setting a line: "key = value". '#' starts a comment anywhere on a
 * line; blank lines and comment-only lines are skipped; white space (isspace(), so a CR of
 * a CRLF line too) around key and value is dropped; the first '=' splits, so a value may
 * hold more. A NUL byte ends its line's text: the rest of that line is ignored. There is no
 * cap on the size of a line or of the file. Duplicate keys are passed on as they come:
 * what a repeat means (the last one wins, or a list grows) is the callback's business.
 */

/**
 * Called once per setting, in file order.
 * @param key	trimmed; may be "" (a line "= value"); borrowed for the call
 * @param value	trimmed; may be ""; borrowed for the call
 * @param line	the line number, from 1
 * @param cause	on failure, why, without path or line (callee allocates; the reader frees)
 * @retval 0, or a negative KC_ERR_* that stops the reading and is returned
 */
typedef int	(*kc_conf_file_cb)(void *arg, const char *key, const char *value, int line,
		    char **cause);

/**
 * Read the configuration file at path, handing each setting to cb.
 * @param cause	on failure, "path: reason" or "path:line: reason" (caller frees)
 * @retval 0, KC_ERR_IO (cannot open, read error), KC_ERR_INVALID (a line without '='),
 *	or what cb returned
 */
int	 kc_conf_file_read(const char *path, kc_conf_file_cb cb, void *arg, char **cause);

/**
 * The same from an open stream, which stays open; name is used in the messages.
 * @retval as kc_conf_file_read(), without the open failure
 */
int	 kc_conf_file_parse(FILE *f, const char *name, kc_conf_file_cb cb, void *arg,
	    char **cause);

/*
 * One row of a program's settings table. The types are the program's own enum; the reader
 * and the helpers below know only name, off and the range.
 */
struct kc_conf_file_key {
	const char	*name;
	int		 type;
	size_t		 off;		/* of the value in the program's settings */
	long		 min, max;	/* numbers: the accepted range */
	size_t		 cnt_off;	/* lists: of the count of values */
};

/**
 * Look key up in keys[0..n).
 * @param cause	when absent, "unknown setting \"key\"" (caller frees)
 * @return the row (borrowed from keys), or NULL
 */
const struct kc_conf_file_key *kc_conf_file_key(const struct kc_conf_file_key *keys,
	    size_t n, const char *key, char **cause);

/**
 * Replace the string *sp (owned; NULL or from xstrdup) by a copy of value.
 * @param cause	when value is "", "key: empty value" (caller frees)
 * @retval 0 or KC_ERR_INVALID (then *sp is left alone)
 */
int	 kc_conf_file_str(char **sp, const char *key, const char *value, char **cause);

/**
 * Parse value as decimal digits (no sign, no space, nothing after) within [min, max].
 * The message is the caller's: nothing is allocated.
 * @retval 0 with *out set, or KC_ERR_INVALID
 */
int	 kc_conf_file_number(const char *value, long min, long max, long *out);

#endif /* KC_CONF_FILE_H */
