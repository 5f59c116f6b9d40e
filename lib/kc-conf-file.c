/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * kc-conf-file.c: the "key = value" configuration file reader and its table helpers.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kc-conf-file.h"
#include "kc-err.h"
#include "xmalloc.h"

/* Trim leading and trailing white space in place. */
static char *
kc_conf_file_trim(char *s)
{
	char	*e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* Read f line by line: drop comments and blanks, split at '=', hand on each setting. */
int
kc_conf_file_parse(FILE *f, const char *name, kc_conf_file_cb cb, void *arg, char **cause)
{
	char	*line = NULL, *p, *eq, *key, *value, *why = NULL;
	size_t	 cap = 0;
	int	 lineno = 0, r = 0;

	while (getline(&line, &cap, f) != -1) {
		lineno++;
		if ((p = strchr(line, '#')) != NULL)
			*p = '\0';
		p = kc_conf_file_trim(line);
		if (*p == '\0')
			continue;
		if ((eq = strchr(p, '=')) == NULL) {
			xasprintf(cause, "%s:%d: expected \"key = value\"", name, lineno);
			r = KC_ERR_INVALID;
			break;
		}
		*eq = '\0';
		key = kc_conf_file_trim(p);
		value = kc_conf_file_trim(eq + 1);
		if ((r = cb(arg, key, value, lineno, &why)) != 0) {
			xasprintf(cause, "%s:%d: %s", name, lineno,
			    why != NULL ? why : kc_strerror(r));
			free(why);
			break;
		}
	}
	if (r == 0 && ferror(f)) {
		xasprintf(cause, "%s: read error", name);
		r = KC_ERR_IO;
	}
	free(line);
	return r;
}

/* Open path and parse it. */
int
kc_conf_file_read(const char *path, kc_conf_file_cb cb, void *arg, char **cause)
{
	FILE	*f;
	int	 r;

	if ((f = fopen(path, "re")) == NULL) {
		xasprintf(cause, "%s: %s", path, strerror(errno));
		return KC_ERR_IO;
	}
	r = kc_conf_file_parse(f, path, cb, arg, cause);
	fclose(f);
	return r;
}

/* Find a settings-table row by key. */
const struct kc_conf_file_key *
kc_conf_file_key(const struct kc_conf_file_key *keys, size_t n, const char *key,
    char **cause)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (strcmp(keys[i].name, key) == 0)
			return &keys[i];
	xasprintf(cause, "unknown setting \"%s\"", key);
	return NULL;
}

/* Set an owned string setting, refusing an empty value. */
int
kc_conf_file_str(char **sp, const char *key, const char *value, char **cause)
{
	if (*value == '\0') {
		xasprintf(cause, "%s: empty value", key);
		return KC_ERR_INVALID;
	}
	free(*sp);
	*sp = xstrdup(value);
	return 0;
}

/* Parse a bounded decimal number. */
int
kc_conf_file_number(const char *value, long min, long max, long *out)
{
	char	*end;
	long	 v;

	if (!isdigit((unsigned char)*value))
		return KC_ERR_INVALID;
	errno = 0;
	v = strtol(value, &end, 10);
	if (*end != '\0' || errno != 0 || v < min || v > max)
		return KC_ERR_INVALID;
	*out = v;
	return 0;
}
