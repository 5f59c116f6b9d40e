/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * conf.h: keycustodyd's configuration: defaults, the configuration file, flags.
 */
#ifndef KC_CONF_H
#define KC_CONF_H

#include <stddef.h>

#define CONF_DEFAULT_PATH	"/etc/keycustody/keycustodyd.conf"
#define CONF_DEFAULT_STORE	"/var/lib/keycustody/keycustody.db"
#define CONF_DEFAULT_AUDIT	"/var/log/keycustody/audit.log"
#define CONF_DEFAULT_TOKEN	"keycustody"
#define CONF_MAX_WORKERS	64
#define CONF_INSTANCE_MAX	63	/* STORE_INSTANCE_MAX: a record's owner */
#define CONF_MIN_UNREAD		65536	/* connection_unread: a page of CSRs must fit */

struct kc_conf {
	char		*module;	/* PKCS#11 module path */
	char		*token_label;
	char		*pin_file;
	int		 pin_fd;	/* -1: use pin_file */
	char		*socket_path;
	char		*socket_group;	/* group of the socket (mode 0660) */
	char		*store_path;	/* a file (SQLite) or a libpq URI (PostgreSQL) */
	char		*instance;	/* this daemon's name among those sharing a store */
	char		*engine_path;
	char		*audit_log;
	char		*user;		/* drop to this user after start-up */
	char		*group;		/* and group (default: the user's) */
	char		*sandbox;	/* enforce (default), log or off */
	unsigned int	 sandbox_allow;	/* PRIV_ALLOW_*: what the module needs besides */
	char	       **groups;	/* supplementary groups kept through the drop */
	size_t		 ngroups;
	char		*module_args;	/* C_Initialize's pReserved (NSS softoken) */
	unsigned int	 hsm_retry_max;		/* ms: cap of the re-initialization back-off */
	unsigned int	 hsm_probe_timeout;	/* ms: an unanswered probe is an outage */
	int		 signer;	/* enum hsm_signer: csr_signer, how CSRs are signed */
	int		 signer_deprecated; /* "signer = direct|engine" was read (a warning) */
	unsigned int	 workers;
	unsigned int	 queue_limit;
	unsigned int	 max_conns;
	unsigned int	 request_timeout;	/* seconds before a request is given up */
	unsigned int	 destroy_yield_max;	/* ms a key destruction waits for creates */
	char	       **roles[3];	/* admin, gateway, reader: user, uid or @group */
	size_t		 nroles[3];
	/*
	 * The signer role (issue 16): "principal scope..." per line, each scope item a zone
	 * id, "zone/hostname" or "*"; parsed by control.c. And its limits.
	 */
	char	       **signers;
	size_t		 nsigners;
	unsigned int	 sign_rate;		/* signatures a second per peer uid (0: none) */
	unsigned int	 sign_audit_interval;	/* seconds between audited sign totals */
	int		 trust_system;	/* use the system CA bundle */
	int		 accept_missing_key_history;	/* hsm_config.accept_no_history */
	char	       **trust_bundles;	/* more CA bundle files */
	size_t		 ntrust_bundles;

	/*
	 * Limits on what one peer, one role, one zone or one credential may hold (issue 12;
	 * keycustodyd.conf(5), docs/SECURITY.md "Daemon limits"). 0 in the "auto" ones: derived
	 * from workers and queue_limit by dispatch.c.
	 */
	unsigned int	 conn_requests;		/* requests in flight per connection */
	unsigned int	 conn_unread;		/* reply bytes a peer leaves unread */
	unsigned int	 conn_unread_timeout;	/* seconds over conn_unread: cut off */
	unsigned int	 admin_connections;	/* slots that only admins may take */
	unsigned int	 gateway_connections;	/* slots that readers may not take */
	unsigned int	 refusal_log_rate;	/* refusal log lines a second, each kind */
	unsigned int	 zone_creates;		/* creates running per zone (0: auto) */
	unsigned int	 zone_pending_creates;	/* in flight per zone, or 429 */
	unsigned int	 credential_creates;	/* creates running per credential (0: auto) */
	unsigned int	 credential_pending_creates; /* in flight per credential, or 429 */
	unsigned int	 create_queue_limit;	/* creates in flight in all, or 503 (0: auto) */
	unsigned int	 zone_key_quota;	/* custom CSRs per zone (0: no quota) */
};

/** Fill the defaults. Free with conf_free(). */
void	 conf_init(struct kc_conf *c);
/**
 * Read "key = value" lines ('#' comments; kc-conf-file.h has the format) from path and
 * apply them over c with conf_set(); a repeated key overrides, or adds to a list.
 * @param cause on failure, "path:line: reason" (caller frees)
 * @retval 0, KC_ERR_IO (unreadable), KC_ERR_INVALID (syntax, unknown key, bad value)
 */
int	 conf_load(struct kc_conf *c, const char *path, char **cause);
/**
 * Apply one setting (the same keys as the file; flags use this too).
 * @retval 0 or KC_ERR_INVALID with cause set
 */
int	 conf_set(struct kc_conf *c, const char *key, const char *value, char **cause);
/** Whether name is an instance name: 1 to CONF_INSTANCE_MAX of [A-Za-z0-9._-]. */
int	 conf_instance_valid(const char *name);
/** Final checks after file and flags. @retval 0 or KC_ERR_INVALID with cause */
int	 conf_check(const struct kc_conf *c, char **cause);
void	 conf_free(struct kc_conf *c);

#endif /* KC_CONF_H */
