/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * test-priv.c: tests of lib/priv-linux.c: the drop to nobody (as root), hardening, the
 * seccomp profiles killing forbidden system calls, and the sandbox failing closed.
 * Every case runs in a child: privileges and filters cannot be undone. TAP output;
 * exit 0, 1, or 77 when seccomp is unavailable.
 */
#include "config.h"

#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "kc-err.h"
#include "log.h"
#include "priv.h"

#if defined(__SANITIZE_ADDRESS__)
#define TP_SANITIZER	1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TP_SANITIZER	1
#endif
#endif

static int	 tp_n, tp_failed;
static char	 tp_rootfile[] = "/tmp/kc-test-priv.XXXXXX";

static void
tp_ok(int cond, const char *what)
{
	tp_n++;
	if (!cond)
		tp_failed++;
	printf("%sok %d - %s\n", cond ? "" : "not ", tp_n, what);
	fflush(stdout);
}

static void
tp_skip(const char *what, const char *why)
{
	printf("ok %d - %s # SKIP %s\n", ++tp_n, what, why);
	fflush(stdout);
}

/* Run fn in a child; return its wait status. */
static int
tp_child(int (*fn)(void))
{
	pid_t	pid;
	int	status;

	fflush(stdout);
	fflush(stderr);
	if ((pid = fork()) == -1) {
		perror("fork");
		exit(1);
	}
	if (pid == 0)
		_exit(fn());
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR) {
			perror("waitpid");
			exit(1);
		}
	return status;
}

static int
tp_exited0(int status)
{
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static int
tp_sigsys(int status)
{
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS;
}

/* Children: 0 is success, anything else names the failed step. */

static int
c_drop_nobody(void)
{
	struct passwd	*pw;
	uid_t		 r, e, s;
	char		*cause = NULL;
	int		 fd;

	if ((pw = getpwnam("nobody")) == NULL)
		return 10;
	if (priv_drop("nobody", NULL, &cause) != 0) {
		fprintf(stderr, "# priv_drop: %s\n", cause);
		return 11;
	}
	if (getresuid(&r, &e, &s) == -1 || r != pw->pw_uid || e != pw->pw_uid ||
	    s != pw->pw_uid)
		return 12;
	if (getgid() != pw->pw_gid || getegid() != pw->pw_gid)
		return 13;
	if (setuid(0) != -1 || seteuid(0) != -1 || setresuid(0, 0, 0) != -1)
		return 14;
	if (setgroups(0, NULL) != -1)
		return 15;
	if ((fd = open(tp_rootfile, O_RDONLY)) != -1 || errno != EACCES)
		return 16;
	/* Started as nobody now: asking for nobody again is fine, for root is not. */
	if (priv_drop("nobody", NULL, &cause) != 0)
		return 17;
	free(cause);
	cause = NULL;
	if (priv_drop("daemon", NULL, &cause) != KC_ERR_DENIED)
		return 18;
	free(cause);
	return 0;
}

static int
c_drop_numeric(void)
{
	char	*cause = NULL;

	if (priv_drop("65534", "65534", &cause) != 0) {
		fprintf(stderr, "# priv_drop: %s\n", cause);
		return 1;
	}
	if (getuid() != 65534 || getgid() != 65534 || setuid(0) != -1)
		return 2;
	return 0;
}

static int
c_drop_refused(void)
{
	char	*cause = NULL;

	if (priv_drop("root", NULL, &cause) != KC_ERR_INVALID || cause == NULL)
		return 1;
	free(cause);
	if (priv_drop("0", NULL, &cause) != KC_ERR_INVALID)
		return 2;
	free(cause);
	if (priv_drop("kc-no-such-user-xyz", NULL, &cause) != KC_ERR_INVALID)
		return 3;
	free(cause);
	if (priv_drop("nobody", "kc-no-such-group-xyz", &cause) != KC_ERR_INVALID)
		return 4;
	free(cause);
	if (priv_drop(NULL, "nogroup", &cause) != KC_ERR_INVALID)
		return 5;
	free(cause);
	if (priv_drop("4000000", NULL, &cause) != KC_ERR_INVALID)	/* no entry, no group */
		return 6;
	free(cause);
	if (priv_drop(NULL, NULL, &cause) != 0 || geteuid() != 0)
		return 7;
	return 0;
}

static int
c_drop_not_root(void)
{
	char	*cause = NULL;

	if (priv_drop("nobody", NULL, &cause) != KC_ERR_DENIED || cause == NULL)
		return 1;
	free(cause);
	return 0;
}

static int
c_harden(void)
{
	struct rlimit	 rl;
	FILE		*f;
	char		 line[256], *cause = NULL;
	int		 nnp = -1;

	if (priv_harden(&cause) != 0) {
		fprintf(stderr, "# priv_harden: %s\n", cause);
		return 1;
	}
	if (prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0)
		return 2;
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		return 3;
	if ((f = fopen("/proc/self/status", "re")) == NULL)
		return 4;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "NoNewPrivs: %d", &nnp) == 1)
			break;
	fclose(f);
	if (nnp != 1)
		return 5;
	if (getrlimit(RLIMIT_CORE, &rl) == -1 || rl.rlim_cur != 0 || rl.rlim_max != 0)
		return 6;
	return 0;
}

static void *
tp_thread(void *arg)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return arg;
}

static int
tp_sandbox(enum priv_profile profile, enum priv_sandbox_mode mode)
{
	char	*cause = NULL;

	log_init(1, LOG_DAEMON);
	if (priv_sandbox(profile, mode, &cause) != 0) {
		fprintf(stderr, "# priv_sandbox: %s\n", cause);
		_exit(90);
	}
	return 0;
}

/* What the daemon does all day must keep working under its profile. */
static int
c_daemon_allowed(void)
{
	pthread_t	 t;
	struct timespec	 ts;
	void		*ret;
	char		 path[] = "/tmp/kc-test-priv-f.XXXXXX", buf[4];
	int		 fd, p[2], s;
	void		*m;

	tp_sandbox(PRIV_PROFILE_DAEMON, PRIV_SANDBOX_ENFORCE);
	if (clock_gettime(CLOCK_REALTIME, &ts) == -1 || getpid() <= 0)
		return 1;
	if ((fd = mkostemp(path, O_CLOEXEC)) == -1 || write(fd, "abc", 3) != 3 ||
	    fdatasync(fd) == -1 || pread(fd, buf, 3, 0) != 3 || ftruncate(fd, 0) == -1 ||
	    close(fd) == -1 || unlink(path) == -1)
		return 2;
	if (pipe2(p, O_CLOEXEC) == -1 || write(p[1], "x", 1) != 1 || read(p[0], buf, 1) != 1)
		return 3;
	/* pthread_create: clone3 says ENOSYS, glibc falls back to clone(CLONE_THREAD). */
	if (pthread_create(&t, NULL, tp_thread, buf) != 0 || pthread_join(t, &ret) != 0 ||
	    ret != buf)
		return 4;
	if ((s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return 5;
	close(s);
	if ((m = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
	    -1, 0)) == MAP_FAILED || mprotect(m, 4096, PROT_NONE) == -1 ||
	    munmap(m, 65536) == -1)
		return 6;
	if (prctl(PR_SET_NAME, "kc-worker", 0, 0, 0) == -1)
		return 7;
	return 0;
}

static int
c_daemon_execve(void)
{
	char	*argv[] = { (char *)"/bin/true", NULL }, *envp[] = { NULL };

	tp_sandbox(PRIV_PROFILE_DAEMON, PRIV_SANDBOX_ENFORCE);
	execve(argv[0], argv, envp);
	return 0;
}

static int
c_daemon_inet(void)
{
	tp_sandbox(PRIV_PROFILE_DAEMON, PRIV_SANDBOX_ENFORCE);
	socket(AF_INET, SOCK_STREAM, 0);
	return 0;
}

#ifndef TP_SANITIZER
static int
c_daemon_ptrace(void)
{
	tp_sandbox(PRIV_PROFILE_DAEMON, PRIV_SANDBOX_ENFORCE);
	ptrace(PTRACE_TRACEME, 0, NULL, NULL);
	return 0;
}

static int
c_daemon_fork(void)
{
	tp_sandbox(PRIV_PROFILE_DAEMON, PRIV_SANDBOX_ENFORCE);
	/* glibc's fork() is clone(SIGCHLD): no CLONE_THREAD. */
	if (fork() == 0)
		_exit(0);
	return 0;
}
#endif

static int
c_daemon_wx(void)
{
	tp_sandbox(PRIV_PROFILE_DAEMON, PRIV_SANDBOX_ENFORCE);
	mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return 0;
}

static int
c_daemon_setuid(void)
{
	tp_sandbox(PRIV_PROFILE_DAEMON, PRIV_SANDBOX_ENFORCE);
	syscall(SYS_setuid, 0);
	return 0;
}

#ifndef TP_SANITIZER
static int
c_daemon_kill_other(void)
{
	pid_t	ppid = getppid();

	tp_sandbox(PRIV_PROFILE_DAEMON, PRIV_SANDBOX_ENFORCE);
	kill(ppid, 0);
	return 0;
}
#endif

#ifndef TP_SANITIZER
static int
c_shim_open(void)
{
	tp_sandbox(PRIV_PROFILE_SHIM, PRIV_SANDBOX_ENFORCE);
	open("/etc/passwd", O_RDONLY);
	return 0;
}
#endif

static int
c_shim_allowed(void)
{
	int	s;

	tp_sandbox(PRIV_PROFILE_SHIM, PRIV_SANDBOX_ENFORCE);
	if ((s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return 1;
	close(s);
	return 0;
}

/* log: a forbidden call is let through (and logged by the kernel). */
static int
c_log_mode(void)
{
	int	s;

	tp_sandbox(PRIV_PROFILE_DAEMON, PRIV_SANDBOX_LOG);
	if ((s = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return 1;
	close(s);
	return 0;
}

/* The kernel refuses the filter (seccomp and prctl deny): an error, not a shrug. */
static int
c_fail_closed_load(void)
{
	scmp_filter_ctx	 ctx;
	char		*cause = NULL;
	int		 r, s;

	if ((ctx = seccomp_init(SCMP_ACT_ALLOW)) == NULL ||
	    seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(seccomp), 0) != 0 ||
	    seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(prctl), 1,
	    SCMP_A0(SCMP_CMP_EQ, PR_SET_SECCOMP, 0)) != 0 || seccomp_load(ctx) != 0)
		return 10;
	seccomp_release(ctx);
	log_init(1, LOG_DAEMON);
	r = priv_sandbox(PRIV_PROFILE_DAEMON, PRIV_SANDBOX_ENFORCE, &cause);
	if (r != KC_ERR_INTERNAL || cause == NULL)
		return 1;
	fprintf(stderr, "# expected failure: %s\n", cause);
	free(cause);
	/* And nothing half-installed: a forbidden call is not killed (the caller exits). */
	if ((s = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return 2;
	close(s);
	return 0;
}

static pthread_mutex_t	tp_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	tp_cv = PTHREAD_COND_INITIALIZER;
static int		tp_state;

/* A thread with a filter of its own: TSYNC cannot cover it. */
static void *
tp_rogue(void *arg)
{
	scmp_filter_ctx	ctx;

	if ((ctx = seccomp_init(SCMP_ACT_ALLOW)) != NULL &&
	    seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(acct), 0) == 0 &&
	    seccomp_load(ctx) == 0)
		tp_state = 1;
	else
		tp_state = -1;
	seccomp_release(ctx);
	pthread_mutex_lock(&tp_mtx);
	pthread_cond_signal(&tp_cv);
	while (tp_state != 2)
		pthread_cond_wait(&tp_cv, &tp_mtx);
	pthread_mutex_unlock(&tp_mtx);
	return NULL;
}

static int
c_fail_closed_tsync(void)
{
	pthread_t	 t;
	char		*cause = NULL;
	int		 r;

	pthread_mutex_lock(&tp_mtx);
	if (pthread_create(&t, NULL, tp_rogue, NULL) != 0)
		return 10;
	while (tp_state == 0)
		pthread_cond_wait(&tp_cv, &tp_mtx);
	pthread_mutex_unlock(&tp_mtx);
	if (tp_state != 1)
		return 11;
	log_init(1, LOG_DAEMON);
	r = priv_sandbox(PRIV_PROFILE_DAEMON, PRIV_SANDBOX_ENFORCE, &cause);
	if (r != KC_ERR_INTERNAL || cause == NULL)
		return 1;
	fprintf(stderr, "# expected failure: %s\n", cause);
	free(cause);
	return 0;
}

static int
c_bad_args(void)
{
	char	*cause = NULL;

	log_init(1, LOG_DAEMON);
	if (priv_sandbox((enum priv_profile)42, PRIV_SANDBOX_ENFORCE, &cause) !=
	    KC_ERR_INVALID || cause == NULL)
		return 1;
	free(cause);
	if (priv_sandbox(PRIV_PROFILE_DAEMON, (enum priv_sandbox_mode)42, &cause) !=
	    KC_ERR_INVALID || cause == NULL)
		return 2;
	free(cause);
	/* off: no filter, but only when asked for. */
	if (priv_sandbox(PRIV_PROFILE_DAEMON, PRIV_SANDBOX_OFF, &cause) != 0)
		return 3;
	if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) != 0)
		return 4;
	return 0;
}

int
main(void)
{
	enum priv_sandbox_mode	 m = PRIV_SANDBOX_OFF;
	int			 root = geteuid() == 0, fd;

	log_init(1, LOG_DAEMON);
	if (seccomp_api_get() < 3) {
		printf("1..0 # SKIP seccomp API level %u\n", seccomp_api_get());
		return 77;
	}

	tp_ok(priv_sandbox_mode_parse("enforce", &m) == 0 && m == PRIV_SANDBOX_ENFORCE &&
	    priv_sandbox_mode_parse("log", &m) == 0 && m == PRIV_SANDBOX_LOG &&
	    priv_sandbox_mode_parse("off", &m) == 0 && m == PRIV_SANDBOX_OFF &&
	    priv_sandbox_mode_parse("Enforce", &m) == KC_ERR_INVALID &&
	    priv_sandbox_mode_parse("", &m) == KC_ERR_INVALID &&
	    priv_sandbox_mode_parse(NULL, &m) == KC_ERR_INVALID && m == PRIV_SANDBOX_OFF,
	    "sandbox modes parse, anything else is refused");

	/* A root-only file the dropped child must not open. */
	if ((fd = mkstemp(tp_rootfile)) == -1) {
		perror("mkstemp");
		return 1;
	}
	close(fd);
	if (root) {
		tp_ok(tp_exited0(tp_child(c_drop_nobody)),
		    "drop to nobody: all ids, no way back to root, root-only file refused");
		tp_ok(tp_exited0(tp_child(c_drop_numeric)), "drop to numeric uid and gid");
		tp_ok(tp_exited0(tp_child(c_drop_refused)),
		    "root, unknown user or group, group alone: refused");
	} else {
		tp_skip("drop to nobody", "not root");
		tp_skip("drop to numeric uid and gid", "not root");
		tp_skip("refusals", "not root");
		tp_ok(tp_exited0(tp_child(c_drop_not_root)),
		    "not root: becoming another user is refused");
	}
	tp_ok(tp_exited0(tp_child(c_harden)), "no-new-privs, non-dumpable, RLIMIT_CORE 0");

	tp_ok(tp_exited0(tp_child(c_daemon_allowed)),
	    "daemon profile: files, pipes, threads, AF_UNIX, mmap, thread names work");
	tp_ok(tp_sigsys(tp_child(c_daemon_execve)), "daemon profile: execve kills (SIGSYS)");
	tp_ok(tp_sigsys(tp_child(c_daemon_inet)), "daemon profile: socket(AF_INET) kills");
#ifdef TP_SANITIZER
	tp_skip("daemon profile: ptrace kills", "sanitizer build allows ptrace");
	tp_skip("daemon profile: fork kills", "sanitizer build allows clone");
#else
	tp_ok(tp_sigsys(tp_child(c_daemon_ptrace)), "daemon profile: ptrace kills");
	tp_ok(tp_sigsys(tp_child(c_daemon_fork)), "daemon profile: fork kills");
#endif
	tp_ok(tp_sigsys(tp_child(c_daemon_wx)), "daemon profile: mmap(PROT_EXEC) kills");
	tp_ok(tp_sigsys(tp_child(c_daemon_setuid)), "daemon profile: setuid kills");
#ifdef TP_SANITIZER
	tp_skip("daemon profile: kill(other process) kills", "sanitizer build allows kill");
#else
	tp_ok(tp_sigsys(tp_child(c_daemon_kill_other)),
	    "daemon profile: kill(other process) kills");
#endif
	tp_ok(tp_exited0(tp_child(c_shim_allowed)), "shim profile: socket(AF_UNIX) works");
#ifdef TP_SANITIZER
	tp_skip("shim profile: open kills", "sanitizer build allows open");
#else
	tp_ok(tp_sigsys(tp_child(c_shim_open)), "shim profile: open kills");
#endif
	tp_ok(tp_exited0(tp_child(c_log_mode)), "log mode: a forbidden call goes through");

	tp_ok(tp_exited0(tp_child(c_fail_closed_load)),
	    "fail closed: the kernel refusing the filter is an error");
	tp_ok(tp_exited0(tp_child(c_fail_closed_tsync)),
	    "fail closed: a thread the filter cannot cover is an error");
	tp_ok(tp_exited0(tp_child(c_bad_args)),
	    "unknown profile or mode refused; off installs nothing");

	unlink(tp_rootfile);
	printf("1..%d\n", tp_n);
	return tp_failed == 0 ? 0 : 1;
}
