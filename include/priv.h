/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * priv.h: least privilege for keycustodyd and keycustody-http: dropping to an
 * unprivileged user, process hardening and the seccomp sandbox (lib/priv-linux.c).
 *
 * Call order, once everything that needs privilege is done (token open, sockets bound,
 * configuration and credentials read, engines loaded):
 *	priv_drop() -> priv_harden() -> priv_sandbox()
 * Each returns 0 or a negative KC_ERR_* with *cause set (caller frees); the caller must
 * treat any error as fatal.
 */
#ifndef KC_PRIV_H
#define KC_PRIV_H

#include <stddef.h>

/* The seccomp allow-list to install. */
enum priv_profile {
	PRIV_PROFILE_DAEMON,	/* keycustodyd: PKCS#11, SQLite, audit log, Unix socket */
	PRIV_PROFILE_SHIM	/* keycustody-http: evhttp, client of the daemon's socket */
};

/* What happens to a system call outside the allow-list. */
enum priv_sandbox_mode {
	PRIV_SANDBOX_ENFORCE,	/* the process is killed (SIGSYS): the default */
	PRIV_SANDBOX_LOG,	/* allowed but logged by the kernel (audit/kmsg): rollout */
	PRIV_SANDBOX_OFF	/* no filter at all: must be asked for explicitly */
};

/*
 * What a PKCS#11 module may need beyond the daemon's own allow-list, named in the
 * configuration (sandbox_allow): a set of these bits.
 */
#define PRIV_ALLOW_SHM	0x01	/* System V shared memory and semaphores, memfd (openCryptoki) */
#define PRIV_ALLOW_INET	0x02	/* IPv4 and IPv6 sockets (a network HSM, tpm2's TCP TCTI) */

/**
 * Add the allowance called name ("shm" or "inet") to *allow.
 * @retval 0, or KC_ERR_INVALID (*allow untouched)
 */
int	 priv_allow_parse(const char *name, unsigned int *allow);

/**
 * Parse "enforce", "log" or "off".
 * @retval 0, or KC_ERR_INVALID (mode untouched)
 */
int	 priv_sandbox_mode_parse(const char *s, enum priv_sandbox_mode *mode);
/** The configuration spelling of mode (borrowed, static). */
const char *priv_sandbox_mode_name(enum priv_sandbox_mode mode);

/**
 * Become user (and group) for good: setgroups to the one group, setresgid, setresuid,
 * each checked, then verified (real, effective and saved ids, supplementary groups, no
 * capability left, setuid(0) refused).
 * @param user name or numeric uid; NULL: keep the current identity (no-op)
 * @param group name or numeric gid; NULL: the user's primary group
 * @param cause on failure, why (caller frees)
 * @retval 0; KC_ERR_INVALID (unknown user or group, uid 0, group without user);
 *	KC_ERR_DENIED (not root and asked to become someone else); KC_ERR_INTERNAL (a call
 *	or a check failed)
 */
int	 priv_drop(const char *user, const char *group, char **cause);
/**
 * priv_drop(), keeping ngroups supplementary groups (names or numeric gids) besides the
 * primary one: a module's own group (openCryptoki's pkcs11, tpm2-pkcs11's tss). At most
 * 16; the check after the switch expects exactly these.
 */
int	 priv_drop_groups(const char *user, const char *group, const char *const *groups,
	    size_t ngroups, char **cause);

/**
 * Set no-new-privs, make the process non-dumpable (no core, no ptrace by the same uid,
 * /proc/PID files root-owned) and RLIMIT_CORE 0, then read each back. Call after
 * priv_drop(): a change of credentials resets the dumpable flag.
 * @param cause on failure, why (caller frees)
 * @retval 0 or KC_ERR_INTERNAL
 */
int	 priv_harden(char **cause);

/**
 * Install the seccomp allow-list of profile on every thread of the process (TSYNC). Fails
 * closed: any error while building or loading the filter is returned, never ignored.
 * Once installed it cannot be removed. Nothing may fork, exec or dlopen new code after it.
 * @param profile which allow-list
 * @param mode PRIV_SANDBOX_OFF returns 0 without a filter (and logs a warning)
 * @param cause on failure, why (caller frees)
 * @retval 0; KC_ERR_INVALID (bad profile or mode); KC_ERR_INTERNAL (libseccomp or kernel
 *	refused)
 */
int	 priv_sandbox(enum priv_profile profile, enum priv_sandbox_mode mode, char **cause);
/** priv_sandbox() with the allowances of allow (PRIV_ALLOW_*) added to the profile. */
int	 priv_sandbox_allow(enum priv_profile profile, enum priv_sandbox_mode mode,
	    unsigned int allow, char **cause);

#endif /* KC_PRIV_H */
