/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * p11-sign.c: signatures a second through libp11's engine, as a TLS terminator makes them
 * (issue 16). P worker processes (nginx's workers) each load the engine with one PKCS#11
 * module, load the private key by its RFC 7512 URI and sign SHA-256 digests with
 * EVP_DigestSign in a closed loop for D seconds: ECDSA, RSA PKCS#1 v1.5 (TLS 1.2) or
 * RSA-PSS (TLS 1.3). The module is either the token's own (SoftHSM2, with its PIN) or
 * keycustody-pkcs11.so (no PIN, signing through keycustodyd), so one command measures both.
 *
 * Output: one line of key=value pairs: signatures/s, p50/p99 latency, the workers' CPU per
 * signature and, with -c <pid>, that process's (the daemon's) CPU per signature.
 */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include "config.h"

#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#define SIGN_MAX_SAMPLES	(1U << 20)	/* latencies kept per worker */
#define SIGN_MAX_WORKERS	64

struct sign_conf {
	const char	*engine;	/* libp11's engine .so */
	const char	*module;	/* the PKCS#11 module */
	const char	*uri;		/* the private key */
	const char	*pin_file;	/* NULL: no login (keycustody-pkcs11.so) */
	int		 pss;		/* RSA: PSS instead of PKCS#1 v1.5 */
	double		 secs;
	unsigned int	 workers;
	pid_t		 watch;		/* -c: a process whose CPU is counted too */
};

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: p11-sign -m module -k key-uri [-e engine.so] [-p pin-file] "
	    "[-P] [-d secs] [-w workers] [-c pid]\n");
	exit(2);
}

static double
now_s(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* User + system CPU of a process in seconds, from /proc (10 ms ticks); -1 if unreadable. */
static double
proc_cpu(pid_t pid)
{
	char		 path[64], buf[1024], *p;
	unsigned long	 ut, st;
	FILE		*f;
	size_t		 n;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* Fields 14 and 15, counted after the command name's closing parenthesis. */
	if ((p = strrchr(buf, ')')) == NULL ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static void
ossl_die(const char *what)
{
	char	 buf[256];

	ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
	fprintf(stderr, "p11-sign: %s: %s\n", what, buf);
	exit(1);
}

static ENGINE *
engine_open(const struct sign_conf *c)
{
	ENGINE	*e;
	char	 pin[256];
	size_t	 n = 0;
	FILE	*f;

	ENGINE_load_dynamic();
	if ((e = ENGINE_by_id("dynamic")) == NULL ||
	    !ENGINE_ctrl_cmd_string(e, "SO_PATH", c->engine, 0) ||
	    !ENGINE_ctrl_cmd_string(e, "ID", "pkcs11", 0) ||
	    !ENGINE_ctrl_cmd_string(e, "LIST_ADD", "1", 0) ||
	    !ENGINE_ctrl_cmd_string(e, "LOAD", NULL, 0))
		ossl_die("loading the pkcs11 engine");
	if (!ENGINE_ctrl_cmd_string(e, "MODULE_PATH", c->module, 0))
		ossl_die("MODULE_PATH");
	if (c->pin_file != NULL) {
		if ((f = fopen(c->pin_file, "r")) == NULL) {
			fprintf(stderr, "p11-sign: %s: %s\n", c->pin_file, strerror(errno));
			exit(1);
		}
		n = fread(pin, 1, sizeof(pin) - 1, f);
		fclose(f);
		while (n > 0 && (pin[n - 1] == '\n' || pin[n - 1] == '\r'))
			n--;
		pin[n] = '\0';
		if (!ENGINE_ctrl_cmd_string(e, "PIN", pin, 0))
			ossl_die("PIN");
		OPENSSL_cleanse(pin, sizeof(pin));
	}
	if (!ENGINE_init(e))
		ossl_die("engine init");
	return e;
}

/* One signature over a fresh random message, checked once against the public half. */
static int
sign_once(EVP_PKEY *k, int pss, int verify)
{
	EVP_MD_CTX	*ctx;
	EVP_PKEY_CTX	*pctx = NULL;
	uint8_t		 msg[64], sig[1024];
	size_t		 siglen = sizeof(sig);
	int		 ok = 0;

	if (RAND_bytes(msg, sizeof(msg)) != 1 || (ctx = EVP_MD_CTX_new()) == NULL)
		return 0;
	if (EVP_DigestSignInit(ctx, &pctx, EVP_sha256(), NULL, k) != 1)
		goto out;
	if (pss && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1))
		goto out;
	if (EVP_DigestSign(ctx, sig, &siglen, msg, sizeof(msg)) != 1)
		goto out;
	ok = 1;
	if (verify) {
		EVP_MD_CTX_reset(ctx);
		pctx = NULL;
		ok = EVP_DigestVerifyInit(ctx, &pctx, EVP_sha256(), NULL, k) == 1 &&
		    (!pss || (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
		    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1)) &&
		    EVP_DigestVerify(ctx, sig, siglen, msg, sizeof(msg)) == 1;
	}
 out:
	EVP_MD_CTX_free(ctx);
	return ok;
}

/*
 * A worker: the engine and the key loaded in this process (after the fork, as an nginx
 * worker re-initializes libp11), then signatures until the end. Writes to fd: the count of
 * failures, the count of latencies, then the latencies (seconds, doubles).
 */
static void __attribute__((noreturn))
worker(const struct sign_conf *c, int fd, int lockfd, double end)
{
	struct flock	 fl;
	ENGINE		*e;
	EVP_PKEY	*k;
	double		*lat, t0;
	uint64_t	 n = 0, failed = 0;
	size_t		 off, len;
	ssize_t		 w;

	/*
	 * One worker at a time opens the module and loads the key (a record lock is the
	 * process's own): SoftHSM2 fails now and then ("Failed to enumerate slots") when
	 * several processes open its token at once.
	 */
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	while (fcntl(lockfd, F_SETLKW, &fl) == -1 && errno == EINTR)
		;
	e = engine_open(c);
	if ((k = ENGINE_load_private_key(e, c->uri, NULL, NULL)) == NULL)
		ossl_die("loading the key");
	fl.l_type = F_UNLCK;
	(void)fcntl(lockfd, F_SETLK, &fl);
	if (c->pss && EVP_PKEY_get_base_id(k) != EVP_PKEY_RSA) {
		fprintf(stderr, "p11-sign: -P needs an RSA key\n");
		exit(1);
	}
	if (!sign_once(k, c->pss, 1))
		ossl_die("the first signature does not verify");
	if ((lat = calloc(SIGN_MAX_SAMPLES, sizeof(*lat))) == NULL)
		exit(1);
	while ((t0 = now_s()) < end) {
		if (!sign_once(k, c->pss, 0)) {
			failed++;
			ERR_clear_error();
			continue;
		}
		if (n < SIGN_MAX_SAMPLES)
			lat[n] = now_s() - t0;
		n++;
	}
	if (n > SIGN_MAX_SAMPLES)
		n = SIGN_MAX_SAMPLES;
	if (write(fd, &failed, sizeof(failed)) != sizeof(failed) ||
	    write(fd, &n, sizeof(n)) != sizeof(n))
		exit(1);
	for (off = 0, len = n * sizeof(*lat); off < len; off += (size_t)w)
		if ((w = write(fd, (char *)lat + off, len - off)) <= 0)
			exit(1);
	_exit(0);
}

static int
cmp_double(const void *a, const void *b)
{
	double	 x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int
read_full(int fd, void *buf, size_t len)
{
	size_t	 off;
	ssize_t	 r;

	for (off = 0; off < len; off += (size_t)r)
		if ((r = read(fd, (char *)buf + off, len - off)) <= 0)
			return -1;
	return 0;
}

int
main(int argc, char **argv)
{
	struct sign_conf c = { .engine = KC_DEFAULT_ENGINE, .secs = 5, .workers = 2 };
	struct rusage	 ru;
	FILE		*lockf;
	pid_t		 pids[SIGN_MAX_WORKERS];
	int		 fds[SIGN_MAX_WORKERS], pfd[2], ch, status, bad = 0;
	double		*all = NULL, t0, t1, cpu0 = -1, cpu1, wcpu, end;
	uint64_t	 total = 0, failed = 0, f, n;
	unsigned int	 i;

	while ((ch = getopt(argc, argv, "c:d:e:k:m:p:Pw:")) != -1) {
		switch (ch) {
		case 'c':
			c.watch = (pid_t)strtol(optarg, NULL, 10);
			break;
		case 'd':
			c.secs = strtod(optarg, NULL);
			break;
		case 'e':
			c.engine = optarg;
			break;
		case 'k':
			c.uri = optarg;
			break;
		case 'm':
			c.module = optarg;
			break;
		case 'p':
			c.pin_file = optarg;
			break;
		case 'P':
			c.pss = 1;
			break;
		case 'w':
			c.workers = (unsigned int)strtoul(optarg, NULL, 10);
			break;
		default:
			usage();
		}
	}
	if (c.module == NULL || c.uri == NULL || c.secs <= 0 || c.workers == 0 ||
	    c.workers > SIGN_MAX_WORKERS)
		usage();

	if (c.watch > 0 && (cpu0 = proc_cpu(c.watch)) < 0) {
		fprintf(stderr, "p11-sign: no process %ld\n", (long)c.watch);
		return 1;
	}
	if ((lockf = tmpfile()) == NULL) {
		perror("p11-sign: tmpfile");
		return 1;
	}
	t0 = now_s();
	/* Every worker's load is inside the run: a worker starts signing once it has its key. */
	end = t0 + c.secs;
	for (i = 0; i < c.workers; i++) {
		if (pipe(pfd) == -1 || (pids[i] = fork()) == -1) {
			perror("p11-sign: fork");
			return 1;
		}
		if (pids[i] == 0) {
			close(pfd[0]);
			worker(&c, pfd[1], fileno(lockf), end);
		}
		close(pfd[1]);
		fds[i] = pfd[0];
	}
	for (i = 0; i < c.workers; i++) {
		if (read_full(fds[i], &f, sizeof(f)) == -1 ||
		    read_full(fds[i], &n, sizeof(n)) == -1) {
			bad = 1;
			close(fds[i]);
			continue;
		}
		if ((all = realloc(all, (total + n) * sizeof(*all))) == NULL ||
		    read_full(fds[i], all + total, n * sizeof(*all)) == -1) {
			bad = 1;
			close(fds[i]);
			continue;
		}
		failed += f;
		total += n;
		close(fds[i]);
	}
	for (i = 0; i < c.workers; i++)
		if (waitpid(pids[i], &status, 0) == -1 || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0)
			bad = 1;
	t1 = now_s();
	cpu1 = c.watch > 0 ? proc_cpu(c.watch) : -1;
	getrusage(RUSAGE_CHILDREN, &ru);
	wcpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	if (bad || total == 0) {
		fprintf(stderr, "p11-sign: a worker failed (see above)\n");
		free(all);
		return 1;
	}
	qsort(all, total, sizeof(*all), cmp_double);
	printf("signs=%llu failed=%llu secs=%.2f rate=%.1f p50_ms=%.3f p99_ms=%.3f "
	    "worker_cpu_ms_per_sign=%.3f",
	    (unsigned long long)total, (unsigned long long)failed, t1 - t0,
	    (double)total / c.secs, all[total / 2] * 1e3,
	    all[(size_t)((double)(total - 1) * 0.99)] * 1e3, wcpu * 1e3 / (double)total);
	if (c.watch > 0 && cpu1 >= 0)
		printf(" watched_cpu_ms_per_sign=%.3f", (cpu1 - cpu0) * 1e3 / (double)total);
	printf("\n");
	free(all);
	return failed == 0 ? 0 : 1;
}
