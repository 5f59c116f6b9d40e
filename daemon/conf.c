/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * conf.c: keycustodyd's settings: their keys, defaults and checks (the file reader is
 * lib/kc-conf-file.c).
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "hsm.h"
#include "kc-conf-file.h"
#include "kc-err.h"
#include "kc-util.h"
#include "keycustody.h"
#include "priv.h"
#include "sign.h"
#include "xmalloc.h"

enum conf_type {
	CONF_STR, CONF_UINT, CONF_SIGNER, CONF_BOOL, CONF_LIST, CONF_ALLOW, CONF_SIGNER_ROLE
};

/* The settings: file keys and flags alike (conf_set), with their types and ranges. */
static const struct kc_conf_file_key conf_keys[] = {
	{ "module",	 CONF_STR,	offsetof(struct kc_conf, module), 0, 0, 0 },
	{ "token_label", CONF_STR,	offsetof(struct kc_conf, token_label), 0, 0, 0 },
	{ "pin_file",	 CONF_STR,	offsetof(struct kc_conf, pin_file), 0, 0, 0 },
	{ "socket",	 CONF_STR,	offsetof(struct kc_conf, socket_path), 0, 0, 0 },
	{ "socket_group", CONF_STR,	offsetof(struct kc_conf, socket_group), 0, 0, 0 },
	{ "store",	 CONF_STR,	offsetof(struct kc_conf, store_path), 0, 0, 0 },
	{ "instance",	 CONF_STR,	offsetof(struct kc_conf, instance), 0, 0, 0 },
	{ "engine",	 CONF_STR,	offsetof(struct kc_conf, engine_path), 0, 0, 0 },
	{ "audit_log",	 CONF_STR,	offsetof(struct kc_conf, audit_log), 0, 0, 0 },
	{ "user",	 CONF_STR,	offsetof(struct kc_conf, user), 0, 0, 0 },
	{ "group",	 CONF_STR,	offsetof(struct kc_conf, group), 0, 0, 0 },
	{ "sandbox",	 CONF_STR,	offsetof(struct kc_conf, sandbox), 0, 0, 0 },
	{ "sandbox_allow", CONF_ALLOW,	offsetof(struct kc_conf, sandbox_allow), 0, 0, 0 },
	{ "groups",	 CONF_LIST,	offsetof(struct kc_conf, groups), 0, 0,
	    offsetof(struct kc_conf, ngroups) },
	{ "module_args", CONF_STR,	offsetof(struct kc_conf, module_args), 0, 0, 0 },
	{ "hsm_retry_max", CONF_UINT,	offsetof(struct kc_conf, hsm_retry_max),
	    HSM_BACKOFF_MIN_MS, 600000, 0 },
	{ "hsm_probe_timeout", CONF_UINT, offsetof(struct kc_conf, hsm_probe_timeout),
	    100, 600000, 0 },
	{ "csr_signer",	 CONF_SIGNER,	offsetof(struct kc_conf, signer), 0, 0, 0 },
	/* The signer role; "direct" and "engine" are csr_signer's old spelling. */
	{ "signer",	 CONF_SIGNER_ROLE, offsetof(struct kc_conf, signers), 0, 0,
	    offsetof(struct kc_conf, nsigners) },
	{ "sign_rate",	 CONF_UINT,	offsetof(struct kc_conf, sign_rate), 0, 10000000, 0 },
	{ "sign_audit_interval", CONF_UINT, offsetof(struct kc_conf, sign_audit_interval),
	    1, 86400, 0 },
	{ "workers",	 CONF_UINT,	offsetof(struct kc_conf, workers), 1, CONF_MAX_WORKERS, 0 },
	{ "queue_limit", CONF_UINT,	offsetof(struct kc_conf, queue_limit), 1, 100000, 0 },
	{ "max_connections", CONF_UINT,	offsetof(struct kc_conf, max_conns), 1, 100000, 0 },
	{ "request_timeout", CONF_UINT,	offsetof(struct kc_conf, request_timeout), 1, 3600, 0 },
	{ "accept_missing_key_history", CONF_BOOL,
	    offsetof(struct kc_conf, accept_missing_key_history), 0, 0, 0 },
	{ "destroy_yield_max", CONF_UINT, offsetof(struct kc_conf, destroy_yield_max),
	    0, 3600000, 0 },
	{ "trust_system", CONF_BOOL,	offsetof(struct kc_conf, trust_system), 0, 0, 0 },
	{ "trust_bundle", CONF_LIST,	offsetof(struct kc_conf, trust_bundles), 0, 0,
	    offsetof(struct kc_conf, ntrust_bundles) },
	{ "admin",	 CONF_LIST,	offsetof(struct kc_conf, roles[0]), 0, 0,
	    offsetof(struct kc_conf, nroles[0]) },
	{ "gateway",	 CONF_LIST,	offsetof(struct kc_conf, roles[1]), 0, 0,
	    offsetof(struct kc_conf, nroles[1]) },
	{ "reader",	 CONF_LIST,	offsetof(struct kc_conf, roles[2]), 0, 0,
	    offsetof(struct kc_conf, nroles[2]) },
	/* Daemon limits (issue 12). */
	{ "connection_requests", CONF_UINT, offsetof(struct kc_conf, conn_requests),
	    1, 100000, 0 },
	{ "connection_unread", CONF_UINT, offsetof(struct kc_conf, conn_unread),
	    CONF_MIN_UNREAD, 1073741824, 0 },
	{ "connection_unread_timeout", CONF_UINT,
	    offsetof(struct kc_conf, conn_unread_timeout), 1, 3600, 0 },
	{ "admin_connections", CONF_UINT, offsetof(struct kc_conf, admin_connections),
	    0, 100000, 0 },
	{ "gateway_connections", CONF_UINT, offsetof(struct kc_conf, gateway_connections),
	    0, 100000, 0 },
	{ "refusal_log_rate", CONF_UINT, offsetof(struct kc_conf, refusal_log_rate),
	    1, 100000, 0 },
	{ "zone_creates", CONF_UINT,	offsetof(struct kc_conf, zone_creates), 0, 100000, 0 },
	{ "zone_pending_creates", CONF_UINT,
	    offsetof(struct kc_conf, zone_pending_creates), 1, 100000, 0 },
	{ "credential_creates", CONF_UINT, offsetof(struct kc_conf, credential_creates),
	    0, 100000, 0 },
	{ "credential_pending_creates", CONF_UINT,
	    offsetof(struct kc_conf, credential_pending_creates), 1, 100000, 0 },
	{ "create_queue_limit", CONF_UINT, offsetof(struct kc_conf, create_queue_limit),
	    0, 100000, 0 },
	{ "zone_key_quota", CONF_UINT,	offsetof(struct kc_conf, zone_key_quota),
	    0, 100000000, 0 },
};

int
conf_instance_valid(const char *name)
{
	size_t	 n = strlen(name);

	return n >= 1 && n <= CONF_INSTANCE_MAX && strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

/*
 * The host's name, cut to CONF_INSTANCE_MAX: one daemon per host is the common case. A
 * name that is not valid as it is ("localhost" stands in when none is set) is refused by
 * conf_check() unless the file sets instance.
 */
static char *
conf_default_instance(void)
{
	char	 host[256];

	if (gethostname(host, sizeof(host)) == -1 || host[0] == '\0')
		return xstrdup("localhost");
	host[sizeof(host) - 1] = '\0';
	host[CONF_INSTANCE_MAX] = '\0';
	return xstrdup(host);
}

void
conf_init(struct kc_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->module = xstrdup(KC_DEFAULT_MODULE);
	c->token_label = xstrdup(CONF_DEFAULT_TOKEN);
	c->socket_path = xstrdup(KC_DEFAULT_SOCKET);
	c->store_path = xstrdup(CONF_DEFAULT_STORE);
	c->instance = conf_default_instance();
	c->engine_path = xstrdup(KC_DEFAULT_ENGINE);
	c->audit_log = xstrdup(CONF_DEFAULT_AUDIT);
	c->sandbox = xstrdup("enforce");
	c->pin_fd = -1;
	c->signer = HSM_SIGNER_DIRECT;
	c->sign_rate = 5000;
	c->sign_audit_interval = 60;
	c->workers = 2;
	c->queue_limit = 256;
	c->max_conns = 256;
	c->request_timeout = 30;
	c->destroy_yield_max = 10000;
	c->trust_system = 1;
	c->hsm_retry_max = HSM_RETRY_MAX_MS;
	c->hsm_probe_timeout = HSM_PROBE_TIMEOUT_MS;
	c->conn_requests = 64;
	c->conn_unread = 4 * 1024 * 1024;
	c->conn_unread_timeout = 10;
	c->admin_connections = 4;
	c->gateway_connections = 16;
	c->refusal_log_rate = 10;
	c->zone_pending_creates = 16;
	c->credential_pending_creates = 32;
}

void
conf_free(struct kc_conf *c)
{
	size_t	 i;

	free(c->module);
	free(c->token_label);
	free(c->pin_file);
	free(c->socket_path);
	free(c->socket_group);
	free(c->store_path);
	free(c->instance);
	free(c->engine_path);
	free(c->audit_log);
	free(c->user);
	free(c->group);
	free(c->sandbox);
	free(c->module_args);
	while (c->ngroups > 0)
		free(c->groups[--c->ngroups]);
	free(c->groups);
	while (c->ntrust_bundles > 0)
		free(c->trust_bundles[--c->ntrust_bundles]);
	free(c->trust_bundles);
	for (i = 0; i < 3; i++) {
		while (c->nroles[i] > 0)
			free(c->roles[i][--c->nroles[i]]);
		free(c->roles[i]);
	}
	while (c->nsigners > 0)
		free(c->signers[--c->nsigners]);
	free(c->signers);
	memset(c, 0, sizeof(*c));
}

static int
conf_set_allow(unsigned int *allow, const char *value, char **cause)
{
	char		*dup, *p, *word;
	unsigned int	 v = *allow;
	int		 r = 0;

	dup = p = xstrdup(value);
	while ((word = strsep(&p, " \t,")) != NULL) {
		if (*word == '\0')
			continue;
		if (priv_allow_parse(word, &v) != 0) {
			xasprintf(cause, "sandbox_allow: \"%s\" is neither shm nor inet", word);
			r = KC_ERR_INVALID;
			break;
		}
	}
	free(dup);
	if (r == 0)
		*allow = v;
	return r;
}

int
conf_set(struct kc_conf *c, const char *key, const char *value, char **cause)
{
	const struct kc_conf_file_key	*k;
	struct sign_scope		 scope;
	char				*p, **sp;
	size_t				*np;
	long				 v;

	if ((k = kc_conf_file_key(conf_keys, nitems(conf_keys), key, cause)) == NULL)
		return KC_ERR_INVALID;
	p = (char *)c + k->off;
	switch (k->type) {
	case CONF_STR:
		return kc_conf_file_str((char **)p, key, value, cause);
	case CONF_UINT:
		if (kc_conf_file_number(value, k->min, k->max, &v) != 0) {
			xasprintf(cause, "%s: \"%s\" is not a number between %ld and %ld",
			    key, value, k->min, k->max);
			return KC_ERR_INVALID;
		}
		*(unsigned int *)p = (unsigned int)v;
		break;
	case CONF_BOOL:
		if (strcmp(value, "yes") == 0 || strcmp(value, "true") == 0)
			*(int *)p = 1;
		else if (strcmp(value, "no") == 0 || strcmp(value, "false") == 0)
			*(int *)p = 0;
		else {
			xasprintf(cause, "%s: \"%s\" is neither yes nor no", key, value);
			return KC_ERR_INVALID;
		}
		break;
	case CONF_SIGNER_ROLE:
		if (strcmp(value, "direct") == 0 || strcmp(value, "engine") == 0) {
			c->signer_deprecated = 1;
			return conf_set(c, "csr_signer", value, cause);
		}
		/* The scope is checked now; the principal when the socket opens (control.c). */
		if (sign_scope_parse(value + strcspn(value, " \t"), &scope, cause) != 0)
			return KC_ERR_INVALID;
		sign_scope_free(&scope);
		/* FALLTHROUGH */
	case CONF_LIST:
		/* Repeatable: each line adds one value. */
		if (*value == '\0') {
			xasprintf(cause, "%s: empty value", key);
			return KC_ERR_INVALID;
		}
		sp = *(char ***)p;
		np = (size_t *)((char *)c + k->cnt_off);
		sp = xreallocarray(sp, *np + 1, sizeof(*sp));
		sp[(*np)++] = xstrdup(value);
		*(char ***)p = sp;
		break;
	case CONF_ALLOW:
		/* Repeatable, and a line may name several: "shm inet". */
		return conf_set_allow((unsigned int *)p, value, cause);
	case CONF_SIGNER:
		if (strcmp(value, "direct") == 0)
			c->signer = HSM_SIGNER_DIRECT;
		else if (strcmp(value, "engine") == 0)
			c->signer = HSM_SIGNER_ENGINE;
		else {
			xasprintf(cause, "csr_signer: \"%s\" is neither direct nor engine", value);
			return KC_ERR_INVALID;
		}
		break;
	}
	return 0;
}

/* The reader's callback: every line of the file is a conf_set(). */
static int
conf_load_line(void *arg, const char *key, const char *value, int line, char **cause)
{
	return conf_set(arg, key, value, cause);
}

int
conf_load(struct kc_conf *c, const char *path, char **cause)
{
	return kc_conf_file_read(path, conf_load_line, c, cause);
}

int
conf_check(const struct kc_conf *c, char **cause)
{
	enum priv_sandbox_mode	 mode;

	if (priv_sandbox_mode_parse(c->sandbox, &mode) != 0) {
		xasprintf(cause, "sandbox must be enforce, log or off");
		return KC_ERR_INVALID;
	}
	if (c->group != NULL && c->user == NULL) {
		xasprintf(cause, "group is set but user is not");
		return KC_ERR_INVALID;
	}
	if (c->ngroups > 0 && c->user == NULL) {
		xasprintf(cause, "groups is set but user is not");
		return KC_ERR_INVALID;
	}
	if (c->pin_file == NULL && c->pin_fd < 0) {
		xasprintf(cause, "no PIN source: set pin_file, or use -P FILE or --pin-fd N");
		return KC_ERR_INVALID;
	}
	if (strlen(c->token_label) > 32) {
		xasprintf(cause, "token_label is longer than 32 characters");
		return KC_ERR_INVALID;
	}
	if (!conf_instance_valid(c->instance)) {
		xasprintf(cause, "instance \"%s\" must be 1 to %d of A-Z, a-z, 0-9, '.', '_' "
		    "and '-'", c->instance, CONF_INSTANCE_MAX);
		return KC_ERR_INVALID;
	}
	if (strlen(c->socket_path) >= 108) {
		xasprintf(cause, "socket path is too long (at most 107 bytes)");
		return KC_ERR_INVALID;
	}
	if ((uint64_t)c->admin_connections + c->gateway_connections >= c->max_conns) {
		xasprintf(cause, "admin_connections + gateway_connections (%u) must leave "
		    "slots of max_connections (%u) for readers",
		    c->admin_connections + c->gateway_connections, c->max_conns);
		return KC_ERR_INVALID;
	}
	if (c->zone_creates > c->zone_pending_creates ||
	    c->credential_creates > c->credential_pending_creates) {
		xasprintf(cause, "zone_creates and credential_creates must not exceed "
		    "zone_pending_creates and credential_pending_creates");
		return KC_ERR_INVALID;
	}
	if (c->create_queue_limit > c->queue_limit) {
		xasprintf(cause, "create_queue_limit (%u) exceeds queue_limit (%u)",
		    c->create_queue_limit, c->queue_limit);
		return KC_ERR_INVALID;
	}
	return 0;
}
