/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * priv-linux.c: least privilege on Linux: dropping to a user, prctl hardening and the
 * seccomp allow-lists (libseccomp) of the daemon and the HTTP shim. Fails closed.
 */
#include "config.h"

#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>

#include <linux/capability.h>

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kc-err.h"
#include "kc-util.h"
#include "log.h"
#include "priv.h"
#include "xmalloc.h"

/*
 * Sanitizer runtimes need more than the program: LeakSanitizer stops the world at exit
 * with clone() (no CLONE_THREAD) and ptrace(), ASan reads /proc/self/maps and installs an
 * alternate signal stack. Those builds get a wider filter (and say so); release builds
 * never do.
 */
#if defined(__SANITIZE_ADDRESS__)
#define PRIV_SANITIZER	1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define PRIV_SANITIZER	1
#endif
#endif

/*
 * System calls both programs make after start-up: memory, threads and futexes, time,
 * signals (libevent's signal pipe), the event loop, and I/O on descriptors they hold.
 * Derived with strace -f over the integration tests, see tests/integration/test-priv.sh.
 */
static const int priv_sc_common[] = {
	/* memory (mmap and mprotect are added below, without PROT_EXEC) */
	SCMP_SYS(brk), SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(madvise),
	/* threads, futexes, scheduling */
	SCMP_SYS(futex), SCMP_SYS(set_robust_list), SCMP_SYS(get_robust_list),
	SCMP_SYS(rseq), SCMP_SYS(sched_yield), SCMP_SYS(sched_getaffinity),
	SCMP_SYS(gettid), SCMP_SYS(getpid), SCMP_SYS(nanosleep), SCMP_SYS(clock_nanosleep),
	SCMP_SYS(exit), SCMP_SYS(exit_group), SCMP_SYS(restart_syscall),
	/* time */
	SCMP_SYS(clock_gettime), SCMP_SYS(clock_getres), SCMP_SYS(gettimeofday),
	SCMP_SYS(time),
	/* signals */
	SCMP_SYS(rt_sigreturn), SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigaction),
	SCMP_SYS(sigaltstack),
	/* the event loop */
	SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_ctl),
	SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(select), SCMP_SYS(pselect6),
	SCMP_SYS(eventfd2), SCMP_SYS(pipe2),
	/* descriptors it holds */
	SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev),
	SCMP_SYS(close), SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(statx),
	SCMP_SYS(lseek), SCMP_SYS(dup), SCMP_SYS(getrandom),
	/* sockets: accept on the listening socket, the peer's credentials, syslog */
	SCMP_SYS(accept4), SCMP_SYS(accept), SCMP_SYS(recvfrom), SCMP_SYS(sendto),
	SCMP_SYS(recvmsg), SCMP_SYS(sendmsg), SCMP_SYS(shutdown), SCMP_SYS(connect),
	SCMP_SYS(getsockopt), SCMP_SYS(setsockopt), SCMP_SYS(getsockname),
	SCMP_SYS(getpeername),
};

/*
 * keycustodyd: SQLite (journal, locks, fsync), SoftHSM2 (one file per object in the token
 * directory, with flock), the audit log (append, fdatasync, rotation by rename).
 */
static const int priv_sc_daemon[] = {
	SCMP_SYS(openat), SCMP_SYS(open), SCMP_SYS(pread64), SCMP_SYS(pwrite64),
	SCMP_SYS(fsync), SCMP_SYS(fdatasync), SCMP_SYS(ftruncate), SCMP_SYS(fallocate),
	SCMP_SYS(unlink), SCMP_SYS(unlinkat), SCMP_SYS(rename), SCMP_SYS(renameat),
	SCMP_SYS(renameat2), SCMP_SYS(mkdir), SCMP_SYS(mkdirat), SCMP_SYS(rmdir),
	SCMP_SYS(getdents64), SCMP_SYS(access), SCMP_SYS(faccessat), SCMP_SYS(faccessat2),
	SCMP_SYS(stat), SCMP_SYS(lstat), SCMP_SYS(readlink), SCMP_SYS(fchmod),
	SCMP_SYS(fchown), SCMP_SYS(flock), SCMP_SYS(getcwd),
	SCMP_SYS(geteuid), SCMP_SYS(getuid), SCMP_SYS(getegid), SCMP_SYS(getgid),
	SCMP_SYS(umask), SCMP_SYS(uname), SCMP_SYS(sysinfo),
	/* SoftHSM2's SecureAllocator locks its buffers */
	SCMP_SYS(mlock), SCMP_SYS(munlock),
};

/* keycustody-http: evhttp on sockets bound before the filter; the daemon's socket. */
static const int priv_sc_shim[] = {
	SCMP_SYS(getuid), SCMP_SYS(geteuid),
};

#ifdef PRIV_SANITIZER
/*
 * LeakSanitizer at exit: a tracer task (clone without CLONE_THREAD) lists
 * /proc/self/task with getdents, ptrace-attaches every thread and reads its registers;
 * the parent waits for it. Symbolizing a report forks and execs llvm-symbolizer, which
 * stays forbidden (reports are symbolized offline).
 */
static const int priv_sc_sanitizer[] = {
	SCMP_SYS(clone), SCMP_SYS(ptrace), SCMP_SYS(wait4), SCMP_SYS(waitid),
	SCMP_SYS(prctl), SCMP_SYS(getppid), SCMP_SYS(getdents), SCMP_SYS(getdents64),
	SCMP_SYS(open), SCMP_SYS(openat), SCMP_SYS(readlink), SCMP_SYS(kill),
	SCMP_SYS(tgkill), SCMP_SYS(tkill), SCMP_SYS(process_vm_readv),
	SCMP_SYS(sched_getaffinity), SCMP_SYS(pipe2), SCMP_SYS(setrlimit),
	SCMP_SYS(prlimit64), SCMP_SYS(getrlimit),
};
#endif

static int	priv_add_list(scmp_filter_ctx, const int *, size_t, const char *,
		    char **);
static int	priv_add_rules(scmp_filter_ctx, enum priv_profile, unsigned int, char **);
static int	priv_id(const char *, unsigned long *);
static int	priv_verify(uid_t, gid_t, const gid_t *, size_t, char **);

#define PRIV_MAX_GROUPS	16	/* supplementary groups kept through the drop */

int
priv_sandbox_mode_parse(const char *s, enum priv_sandbox_mode *mode)
{
	if (s == NULL)
		return KC_ERR_INVALID;
	if (strcmp(s, "enforce") == 0)
		*mode = PRIV_SANDBOX_ENFORCE;
	else if (strcmp(s, "log") == 0)
		*mode = PRIV_SANDBOX_LOG;
	else if (strcmp(s, "off") == 0)
		*mode = PRIV_SANDBOX_OFF;
	else
		return KC_ERR_INVALID;
	return 0;
}

const char *
priv_sandbox_mode_name(enum priv_sandbox_mode mode)
{
	switch (mode) {
	case PRIV_SANDBOX_ENFORCE:
		return "enforce";
	case PRIV_SANDBOX_LOG:
		return "log";
	case PRIV_SANDBOX_OFF:
		return "off";
	}
	return "?";
}

/* A decimal id without sign, spaces or overflow into *id; 0 or -1. */
static int
priv_id(const char *s, unsigned long *id)
{
	char		*end;
	unsigned long	 v;

	if (*s == '\0' || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (*end != '\0' || errno != 0 || v >= (unsigned long)UINT_MAX)
		return -1;
	*id = v;
	return 0;
}

/* Is g the primary group or one of the n kept ones? */
static int
priv_group_kept(gid_t g, gid_t gid, const gid_t *keep, size_t n)
{
	size_t	 i;

	if (g == gid)
		return 1;
	for (i = 0; i < n; i++)
		if (keep[i] == g)
			return 1;
	return 0;
}

/*
 * After the switch: every id is the target, no group is left but the primary one and
 * those kept, no capability, root is gone.
 */
static int
priv_verify(uid_t uid, gid_t gid, const gid_t *keep, size_t nkeep, char **cause)
{
	struct __user_cap_header_struct	 hdr;
	struct __user_cap_data_struct	 cap[2];
	uid_t				 ru, eu, su;
	gid_t				 rg, eg, sg, groups[PRIV_MAX_GROUPS + 2];
	int				 i, n;

	if (getresuid(&ru, &eu, &su) == -1 || getresgid(&rg, &eg, &sg) == -1) {
		xasprintf(cause, "getresuid/getresgid: %s", strerror(errno));
		return KC_ERR_INTERNAL;
	}
	if (ru != uid || eu != uid || su != uid || rg != gid || eg != gid || sg != gid) {
		xasprintf(cause, "ids after the switch are uid %u/%u/%u gid %u/%u/%u, "
		    "not %u/%u", (unsigned)ru, (unsigned)eu, (unsigned)su, (unsigned)rg,
		    (unsigned)eg, (unsigned)sg, (unsigned)uid, (unsigned)gid);
		return KC_ERR_INTERNAL;
	}
	if ((n = getgroups((int)nitems(groups), groups)) == -1) {
		xasprintf(cause, "getgroups: %s", strerror(errno));
		return KC_ERR_INTERNAL;
	}
	for (i = 0; i < n; i++)
		if (!priv_group_kept(groups[i], gid, keep, nkeep)) {
			xasprintf(cause, "supplementary group %u left after setgroups",
			    (unsigned)groups[i]);
			return KC_ERR_INTERNAL;
		}
	if ((size_t)n < nkeep) {
		xasprintf(cause, "%d supplementary group(s) after setgroups, %zu asked for", n,
		    nkeep);
		return KC_ERR_INTERNAL;
	}
	memset(&hdr, 0, sizeof(hdr));
	memset(cap, 0, sizeof(cap));
	hdr.version = _LINUX_CAPABILITY_VERSION_3;
	if (syscall(SYS_capget, &hdr, cap) == -1) {
		xasprintf(cause, "capget: %s", strerror(errno));
		return KC_ERR_INTERNAL;
	}
	if ((cap[0].permitted | cap[1].permitted | cap[0].effective | cap[1].effective) != 0) {
		xasprintf(cause, "capabilities left after the switch (keep-caps set?)");
		return KC_ERR_INTERNAL;
	}
	if (setuid(0) != -1 || seteuid(0) != -1) {
		xasprintf(cause, "root regained after the switch");
		return KC_ERR_INTERNAL;
	}
	if (gid != 0 && (setgid(0) != -1 || setegid(0) != -1)) {
		xasprintf(cause, "group root regained after the switch");
		return KC_ERR_INTERNAL;
	}
	return 0;
}

/* A group by name first (a group may be called "123"), then by number. */
static int
priv_group_id(const char *name, gid_t *gid, char **buf, size_t *bufsz, char **cause)
{
	struct group	 gr, *grp = NULL;
	unsigned long	 id;
	int		 e;

	for (;;) {
		*buf = xreallocarray(*buf, 1, *bufsz);
		if ((e = getgrnam_r(name, &gr, *buf, *bufsz, &grp)) != ERANGE)
			break;
		if (*bufsz > 1024 * 1024) {
			xasprintf(cause, "group %s: entry too large", name);
			return KC_ERR_INVALID;
		}
		*bufsz *= 2;
	}
	if (grp != NULL)
		*gid = grp->gr_gid;
	else if (priv_id(name, &id) == 0)
		*gid = (gid_t)id;
	else {
		xasprintf(cause, "group %s: %s", name, e != 0 ? strerror(e) : "no such group");
		return KC_ERR_INVALID;
	}
	return 0;
}

int
priv_drop(const char *user, const char *group, char **cause)
{
	return priv_drop_groups(user, group, NULL, 0, cause);
}

int
priv_drop_groups(const char *user, const char *group, const char *const *groups,
    size_t ngroups, char **cause)
{
	struct passwd	 pw, *pwp = NULL;
	unsigned long	 id;
	uid_t		 uid, ru, eu, su;
	gid_t		 gid, rg, eg, sg, keep[PRIV_MAX_GROUPS + 1];
	char		*buf = NULL;
	long		 sz;
	size_t		 bufsz, i;
	int		 e, r = KC_ERR_INVALID;

	*cause = NULL;
	if (user == NULL && group == NULL && ngroups == 0)
		return 0;
	if (user == NULL) {
		xasprintf(cause, "a group (%s) without a user", group != NULL ? group :
		    groups[0]);
		return KC_ERR_INVALID;
	}
	if (ngroups > PRIV_MAX_GROUPS) {
		xasprintf(cause, "%zu supplementary groups: at most %d", ngroups,
		    PRIV_MAX_GROUPS);
		return KC_ERR_INVALID;
	}
	sz = sysconf(_SC_GETPW_R_SIZE_MAX);
	bufsz = sz > 0 ? (size_t)sz : 16384;
	if ((sz = sysconf(_SC_GETGR_R_SIZE_MAX)) > 0 && (size_t)sz > bufsz)
		bufsz = (size_t)sz;

	/* A name first (a user may be called "123"), then a number. */
	for (;;) {
		buf = xreallocarray(buf, 1, bufsz);
		if ((e = getpwnam_r(user, &pw, buf, bufsz, &pwp)) != ERANGE)
			break;
		if (bufsz > 1024 * 1024) {
			xasprintf(cause, "user %s: entry too large", user);
			goto out;
		}
		bufsz *= 2;
	}
	if (pwp != NULL) {
		uid = pwp->pw_uid;
		gid = pwp->pw_gid;
	} else if (priv_id(user, &id) == 0) {
		uid = (uid_t)id;
		gid = (gid_t)-1;
	} else {
		xasprintf(cause, "user %s: %s", user, e != 0 ? strerror(e) : "no such user");
		goto out;
	}
	if (group != NULL && (r = priv_group_id(group, &gid, &buf, &bufsz, cause)) != 0)
		goto out;
	for (i = 0; i < ngroups; i++)
		if ((r = priv_group_id(groups[i], &keep[i + 1], &buf, &bufsz, cause)) != 0)
			goto out;
	r = KC_ERR_INVALID;
	if (gid == (gid_t)-1) {
		xasprintf(cause, "user %s has no passwd entry: name a group too", user);
		goto out;
	}
	if (uid == 0) {
		xasprintf(cause, "user %s is root: name an unprivileged user", user);
		goto out;
	}

	if (getresuid(&ru, &eu, &su) == -1 || getresgid(&rg, &eg, &sg) == -1) {
		xasprintf(cause, "getresuid/getresgid: %s", strerror(errno));
		r = KC_ERR_INTERNAL;
		goto out;
	}
	if (eu != 0) {
		/* Started as the user already (systemd User=): nothing to drop, but check. */
		if (ru == uid && eu == uid && su == uid && rg == gid && eg == gid &&
		    sg == gid) {
			r = priv_verify(uid, gid, keep + 1, ngroups, cause);
			goto out;
		}
		xasprintf(cause, "running as uid %u, not root: cannot become %s (uid %u, "
		    "gid %u)", (unsigned)eu, user, (unsigned)uid, (unsigned)gid);
		r = KC_ERR_DENIED;
		goto out;
	}

	r = KC_ERR_INTERNAL;
	/* The primary group, and those a module needs (openCryptoki's pkcs11, tss). */
	keep[0] = gid;
	if (setgroups(ngroups + 1, keep) == -1) {
		xasprintf(cause, "setgroups(%u and %zu more): %s", (unsigned)gid, ngroups,
		    strerror(errno));
		goto out;
	}
	if (setresgid(gid, gid, gid) == -1) {
		xasprintf(cause, "setresgid(%u): %s", (unsigned)gid, strerror(errno));
		goto out;
	}
	if (setresuid(uid, uid, uid) == -1) {
		xasprintf(cause, "setresuid(%u): %s", (unsigned)uid, strerror(errno));
		goto out;
	}
	if ((r = priv_verify(uid, gid, keep + 1, ngroups, cause)) != 0)
		goto out;
	log_info("running as %s (uid %u, gid %u, %zu supplementary group%s)", user,
	    (unsigned)uid, (unsigned)gid, ngroups, ngroups == 1 ? "" : "s");
 out:
	free(buf);
	return r;
}

int
priv_harden(char **cause)
{
	struct rlimit	 rl = { 0, 0 };

	*cause = NULL;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) {
		xasprintf(cause, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
		return KC_ERR_INTERNAL;
	}
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1) {
		xasprintf(cause, "PR_SET_DUMPABLE: %s", strerror(errno));
		return KC_ERR_INTERNAL;
	}
	if (setrlimit(RLIMIT_CORE, &rl) == -1) {
		xasprintf(cause, "RLIMIT_CORE: %s", strerror(errno));
		return KC_ERR_INTERNAL;
	}
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1 ||
	    prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0 ||
	    getrlimit(RLIMIT_CORE, &rl) == -1 || rl.rlim_cur != 0 || rl.rlim_max != 0) {
		xasprintf(cause, "hardening did not hold (no-new-privs, dumpable, core)");
		return KC_ERR_INTERNAL;
	}
	return 0;
}

/* Allow every system call in list; any libseccomp error is returned. */
static int
priv_add_list(scmp_filter_ctx ctx, const int *list, size_t n, const char *what,
    char **cause)
{
	size_t	i;
	int	rc;

	for (i = 0; i < n; i++) {
		if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, list[i], 0)) != 0) {
			xasprintf(cause, "seccomp: %s list, system call %d: %s", what,
			    list[i], strerror(-rc));
			return KC_ERR_INTERNAL;
		}
	}
	return 0;
}

/* The allow-list of profile, with the argument checks that matter. */
/* sandbox_allow = shm: what openCryptoki's shared token state and its locks use. */
static const int priv_sc_shm[] = {
	SCMP_SYS(shmget), SCMP_SYS(shmat), SCMP_SYS(shmdt), SCMP_SYS(shmctl),
	SCMP_SYS(semget), SCMP_SYS(semop), SCMP_SYS(semtimedop), SCMP_SYS(semctl),
	SCMP_SYS(memfd_create), SCMP_SYS(msync), SCMP_SYS(getppid),
};

/* sandbox_allow = inet: a module's own connections (sockets are checked below). */
static const int priv_sc_inet[] = {
	SCMP_SYS(sendmmsg), SCMP_SYS(recvmmsg), SCMP_SYS(bind),
};

int
priv_allow_parse(const char *name, unsigned int *allow)
{
	if (name == NULL)
		return KC_ERR_INVALID;
	if (strcmp(name, "shm") == 0)
		*allow |= PRIV_ALLOW_SHM;
	else if (strcmp(name, "inet") == 0)
		*allow |= PRIV_ALLOW_INET;
	else
		return KC_ERR_INVALID;
	return 0;
}

/* The allowances: extra calls, and socket() for AF_INET and AF_INET6. */
static int
priv_add_allow(scmp_filter_ctx c, unsigned int allow, char **cause)
{
	int	 rc, r;

	if ((allow & PRIV_ALLOW_SHM) &&
	    (r = priv_add_list(c, priv_sc_shm, nitems(priv_sc_shm), "shm", cause)) != 0)
		return r;
	if (!(allow & PRIV_ALLOW_INET))
		return 0;
	if ((r = priv_add_list(c, priv_sc_inet, nitems(priv_sc_inet), "inet", cause)) != 0)
		return r;
	if ((rc = seccomp_rule_add(c, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
	    SCMP_A0(SCMP_CMP_EQ, AF_INET, 0))) != 0 ||
	    (rc = seccomp_rule_add(c, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
	    SCMP_A0(SCMP_CMP_EQ, AF_INET6, 0))) != 0) {
		xasprintf(cause, "seccomp: inet socket rule: %s", strerror(-rc));
		return KC_ERR_INTERNAL;
	}
	return 0;
}

static int
priv_add_rules(scmp_filter_ctx ctx, enum priv_profile profile, unsigned int allow,
    char **cause)
{
	const scmp_filter_ctx	 c = ctx;
	pid_t			 pid = getpid();
	int			 rc, r;

#define PRIV_LIST(l) (sizeof(l) / sizeof((l)[0]))
	if ((r = priv_add_list(c, priv_sc_common, PRIV_LIST(priv_sc_common), "common",
	    cause)) != 0)
		return r;
	if (profile == PRIV_PROFILE_DAEMON)
		r = priv_add_list(c, priv_sc_daemon, PRIV_LIST(priv_sc_daemon), "daemon", cause);
	else
		r = priv_add_list(c, priv_sc_shim, PRIV_LIST(priv_sc_shim), "shim", cause);
	if (r != 0)
		return r;

	/*
	 * Argument checks. W^X: no new executable mapping (nothing is dlopen'd after the
	 * filter). Threads only: clone must carry CLONE_THREAD, and clone3 (whose flags
	 * live in memory the filter cannot read) says ENOSYS so glibc falls back to clone.
	 * Sockets: AF_UNIX only (syslog, the daemon's socket); TCP listeners are bound
	 * before. Signals: only to this process (abort, raise). prctl: thread names.
	 */
	if ((rc = seccomp_rule_add(c, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
	    SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0))) != 0 ||
	    (rc = seccomp_rule_add(c, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
	    SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0))) != 0 ||
	    (rc = seccomp_rule_add(c, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
	    SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD))) != 0 ||
	    (rc = seccomp_rule_add(c, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0)) != 0 ||
	    (rc = seccomp_rule_add(c, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
	    SCMP_A0(SCMP_CMP_EQ, AF_UNIX, 0))) != 0 ||
	    (rc = seccomp_rule_add(c, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
	    SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)pid, 0))) != 0 ||
	    (rc = seccomp_rule_add(c, SCMP_ACT_ALLOW, SCMP_SYS(kill), 1,
	    SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)pid, 0))) != 0 ||
	    (rc = seccomp_rule_add(c, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
	    SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME, 0))) != 0 ||
	    (rc = seccomp_rule_add(c, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
	    SCMP_A0(SCMP_CMP_EQ, PR_GET_NAME, 0))) != 0 ||
	    (rc = seccomp_rule_add(c, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
	    SCMP_A1(SCMP_CMP_EQ, FIONREAD, 0))) != 0 ||
	    (rc = seccomp_rule_add(c, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 0)) != 0) {
		xasprintf(cause, "seccomp: argument rule: %s", strerror(-rc));
		return KC_ERR_INTERNAL;
	}
	if ((r = priv_add_allow(c, allow, cause)) != 0)
		return r;
#ifdef PRIV_SANITIZER
	if ((r = priv_add_list(c, priv_sc_sanitizer, PRIV_LIST(priv_sc_sanitizer),
	    "sanitizer", cause)) != 0)
		return r;
#endif
#undef PRIV_LIST
	return 0;
}

int
priv_sandbox(enum priv_profile profile, enum priv_sandbox_mode mode, char **cause)
{
	return priv_sandbox_allow(profile, mode, 0, cause);
}

int
priv_sandbox_allow(enum priv_profile profile, enum priv_sandbox_mode mode,
    unsigned int allow, char **cause)
{
	scmp_filter_ctx	 ctx = NULL;
	uint32_t	 defact;
	int		 rc, r = KC_ERR_INTERNAL;

	*cause = NULL;
	if (profile != PRIV_PROFILE_DAEMON && profile != PRIV_PROFILE_SHIM) {
		xasprintf(cause, "seccomp: unknown profile %d", (int)profile);
		return KC_ERR_INVALID;
	}
	switch (mode) {
	case PRIV_SANDBOX_OFF:
		log_warnx("sandbox = off: no seccomp filter");
		return 0;
	case PRIV_SANDBOX_LOG:
		defact = SCMP_ACT_LOG;
		break;
	case PRIV_SANDBOX_ENFORCE:
		defact = SCMP_ACT_KILL_PROCESS;
		break;
	default:
		xasprintf(cause, "seccomp: unknown mode %d", (int)mode);
		return KC_ERR_INVALID;
	}
	/* Level 3: KILL_PROCESS, LOG and TSYNC (kernel 4.14 and libseccomp 2.4). */
	if (seccomp_api_get() < 3) {
		xasprintf(cause, "seccomp: API level %u: kernel or libseccomp too old",
		    seccomp_api_get());
		return KC_ERR_INTERNAL;
	}
	if ((ctx = seccomp_init(defact)) == NULL) {
		xasprintf(cause, "seccomp_init failed");
		return KC_ERR_INTERNAL;
	}
	/*
	 * Every thread, or the load fails (the worker pool runs already); no-new-privs;
	 * another architecture's system call numbers kill; raw errno for the messages.
	 */
	if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1)) != 0 ||
	    (rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1)) != 0 ||
	    (rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH,
	    SCMP_ACT_KILL_PROCESS)) != 0 ||
	    (rc = seccomp_attr_set(ctx, SCMP_FLTATR_API_SYSRAWRC, 1)) != 0) {
		xasprintf(cause, "seccomp_attr_set: %s", strerror(-rc));
		goto out;
	}
	if ((r = priv_add_rules(ctx, profile, allow, cause)) != 0)
		goto out;
	if ((rc = seccomp_load(ctx)) != 0) {
		xasprintf(cause, "seccomp_load: %s", strerror(-rc));
		r = KC_ERR_INTERNAL;
		goto out;
	}
#ifdef PRIV_SANITIZER
	log_warnx("sanitizer build: the seccomp filter also allows clone, ptrace, prctl");
#endif
	log_info("seccomp sandbox (%s profile%s%s, %s) installed",
	    profile == PRIV_PROFILE_DAEMON ? "daemon" : "shim",
	    (allow & PRIV_ALLOW_SHM) ? " + shm" : "", (allow & PRIV_ALLOW_INET) ? " + inet" : "",
	    priv_sandbox_mode_name(mode));
	r = 0;
 out:
	seccomp_release(ctx);
	return r;
}
