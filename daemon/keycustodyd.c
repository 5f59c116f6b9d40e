/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * keycustodyd.c: the daemon's start-up, reconciliation, event loop and shutdown.
 */
#include "config.h"

#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "answer.h"
#include "audit.h"
#include "cert.h"
#include "conf.h"
#include "control.h"
#include "custody.h"
#include "dispatch.h"
#include "hsm.h"
#include "kc-err.h"
#include "kcd.h"
#include "log.h"
#include "pool.h"
#include "priv.h"
#include "store.h"
#include "xmalloc.h"

#define PIN_MAX		256
#define OPT_ACCEPT_AUDIT	256	/* long options only */
#define OPT_VERIFY_AUDIT	257
#define OPT_AFTER		258
/* Beyond request_timeout, by which every request taken has had its answer. */
#define DRAIN_MARGIN_SEC	5
#define ENGINE_WARN_KEYS 1000	/* the engine signer slows down past this */

static struct event	*drain_ev;
static time_t		 drain_started;

/*
 * The recovery thread: probes the token (a hung one is reported down within
 * hsm_probe_timeout), brings a DOWN token back without waiting for traffic, and finishes
 * the creates that could not tell whether they made a key.
 */
#define RECOVER_TICK_MS	250
static pthread_mutex_t	 recover_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 recover_cond = PTHREAD_COND_INITIALIZER;
static int		 recover_stop;

static void *
recover_thread(void *arg)
{
	struct custody	*c = arg;
	struct kcd	*kcd = c->kcd;
	struct timespec	 ts;

	pthread_mutex_lock(&recover_lock);
	while (!recover_stop) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += RECOVER_TICK_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&recover_cond, &recover_lock, &ts);
		if (recover_stop)
			break;
		pthread_mutex_unlock(&recover_lock);
		/* Blocks while the token does: nothing else waits on this thread. */
		hsm_probe(kcd->hsm);
		/* Cheap when the token is up or the backoff has not elapsed yet. */
		if (hsm_get_state(kcd->hsm) == HSM_STATE_DOWN && hsm_recover(kcd->hsm) == 0)
			log_info("token \"%s\" is back", hsm_token_label(kcd->hsm));
		/* Creates that could not tell whether they made a key: the token can now. */
		if (hsm_get_state(kcd->hsm) == HSM_STATE_OK &&
		    custody_pending_count(kcd->pending) > 0)
			(void)custody_finish_pending(c);
		pthread_mutex_lock(&recover_lock);
	}
	pthread_mutex_unlock(&recover_lock);
	return NULL;
}

static __dead void
usage(void)
{
	fprintf(stderr,
	    "usage: keycustodyd [-dnv] [-f config] [-E direct|engine] [-m module]\n"
	    "                   [-P pin-file | --pin-fd fd] [-S store] [-s socket]\n"
	    "                   [-t token-label] [-w workers] [--accept-audit-log]\n"
	    "       keycustodyd [-f config] [-P pin-file | --pin-fd fd] --verify-audit\n"
	    "                   [--after hash] [file ...]\n");
	exit(2);
}

/*
 * The audit log's seal (audit.h): its MAC key's session and the store handle holding its
 * anchor, both used only under the log's lock.
 */
struct kcd_seal {
	struct hsm_session	*hs;
	struct store		*st;
};

_Static_assert(AUDIT_MAC_LEN == HSM_MAC_LEN, "the audit MAC is the HSM's HMAC-SHA256");

static int
kcd_seal_mac(void *arg, const void *data, size_t len, uint8_t mac[AUDIT_MAC_LEN])
{
	return hsm_mac(((struct kcd_seal *)arg)->hs, data, len, mac);
}

static int
kcd_seal_anchor_get(void *arg, uint64_t *seq, char *hash)
{
	return store_audit_anchor_get(((struct kcd_seal *)arg)->st, seq, hash);
}

static int
kcd_seal_anchor_put(void *arg, uint64_t seq, const char *hash)
{
	return store_audit_anchor_put(((struct kcd_seal *)arg)->st, seq, hash);
}

/*
 * keycustodyd --verify-audit: verify audit files oldest first, every line's MAC included,
 * with the token's MAC key (which only this process can use), and compare the end of the
 * chain with the store's anchor. The token is open; privileges are dropped as the daemon's
 * so that nothing is created as root. Returns the exit status: 0 intact, 1 broken or not
 * verified, 2 usage.
 */
static int
verify_audit(struct kcd *kcd, const struct kc_conf *conf, char **files, int nfiles,
    const char *after)
{
	struct audit_verify_opts opts;
	struct audit_chain	 chain;
	struct kcd_seal		 seal;
	char			*cause = NULL, *current = NULL, *last = NULL;
	char			*deflt[1];
	char			 ahash[AUDIT_HASH_LEN + 1];
	uint64_t		 aseq = 0;
	int			 r, anchored = 0, status = 1;

	memset(&seal, 0, sizeof(seal));
	if (after != NULL && (strlen(after) != AUDIT_HASH_LEN ||
	    after[strspn(after, "0123456789abcdefABCDEF")] != '\0')) {
		fprintf(stderr, "keycustodyd: --after: not a hex SHA-256\n");
		return 2;
	}
	if (nfiles == 0) {
		deflt[0] = conf->audit_log;
		files = deflt;
		nfiles = 1;
	}
	if ((r = priv_drop(conf->user, conf->group, &cause)) != 0)
		fatalx("dropping privileges: %s", cause);
	if ((r = hsm_session_new(kcd->hsm, &seal.hs)) != 0)
		fatalx("PKCS#11 session: %s", kc_strerror(r));
	if ((r = hsm_mac_key_open(seal.hs, 0, &cause)) != 0)
		fatalx("%s: the MACs cannot be checked", cause);
	/* The anchor first: the daemon may append while the files are read. */
	if (access(conf->store_path, F_OK) == 0) {
		if ((r = store_open(conf->store_path, &seal.st, &cause)) != 0)
			fatalx("%s", cause);
		r = store_audit_anchor_get(seal.st, &aseq, ahash);
		if (r != 0 && r != KC_ERR_NOT_FOUND)
			fatalx("the store's audit anchor: %s", kc_strerror(r));
		anchored = r == 0;
	}
	memset(&opts, 0, sizeof(opts));
	opts.mac = kcd_seal_mac;
	opts.mac_arg = &seal;
	opts.after = after;
	if ((r = audit_verify_files_opts(files, nfiles, &chain, &opts, stderr)) != 0) {
		if (r == KC_ERR_BAD_MESSAGE)
			fprintf(stderr, "audit log BROKEN\n");
		else
			fprintf(stderr, "audit log NOT VERIFIED: %s\n", kc_strerror(r));
		goto out;
	}
	/* Is the last file the live log? Then it must reach the anchor. */
	current = realpath(conf->audit_log, NULL);
	last = realpath(files[nfiles - 1], NULL);
	if (anchored && current != NULL && last != NULL && strcmp(current, last) == 0) {
		if (chain.seq < aseq) {
			fprintf(stderr, "%s: the chain ends at seq %llu, but the store's "
			    "anchor is at seq %llu: %llu record(s) were cut from its end\n",
			    files[nfiles - 1], (unsigned long long)chain.seq,
			    (unsigned long long)aseq, (unsigned long long)(aseq - chain.seq));
			fprintf(stderr, "audit log BROKEN\n");
			goto out;
		}
		if (chain.seq == aseq && strcmp(chain.hash, ahash) != 0) {
			fprintf(stderr, "%s: the last record (seq %llu) is not the anchored one "
			    "(hash %s, anchored %s)\n", files[nfiles - 1],
			    (unsigned long long)aseq, chain.hash, ahash);
			fprintf(stderr, "audit log BROKEN\n");
			goto out;
		}
		printf("the chain reaches the store's anchor (seq %llu)\n",
		    (unsigned long long)aseq);
	} else if (anchored)
		printf("note: the store's anchor is at seq %llu, hash %s (the live log %s "
		    "was not among the files)\n", (unsigned long long)aseq, ahash,
		    conf->audit_log);
	printf("audit log OK: %llu lines, %llu MACs checked, last seq %llu, last hash %s\n",
	    (unsigned long long)chain.total, (unsigned long long)chain.macs_checked,
	    (unsigned long long)chain.seq, chain.hash);
	status = 0;
 out:
	free(current);
	free(last);
	free(cause);
	store_close(seal.st);
	hsm_session_free(seal.hs);
	return status;
}

/*
 * The uid the daemon runs as once started: the configured user's (a name, or a number as
 * priv_drop() accepts), or the current one. -1 with *cause set when the user is unknown.
 */
static int
daemon_uid(const struct kc_conf *conf, uid_t *uid, char **cause)
{
	struct passwd	*pw;
	char		*end;
	unsigned long	 v;

	if (conf->user == NULL) {
		*uid = geteuid();
		return 0;
	}
	if ((pw = getpwnam(conf->user)) != NULL) {
		*uid = pw->pw_uid;
		return 0;
	}
	errno = 0;
	v = strtoul(conf->user, &end, 10);
	if (*conf->user != '\0' && *end == '\0' && errno == 0 && v < (uid_t)-1) {
		*uid = (uid_t)v;
		return 0;
	}
	xasprintf(cause, "user \"%s\": no such user", conf->user);
	return -1;
}

/*
 * Read the PIN into pin (PIN_MAX bytes, locked in memory by the caller). A PIN file must be
 * a regular file, readable by its owner only, and owned by root or the daemon's user: a
 * file another user owns could be replaced or read by that user (chmod is theirs).
 */
static int
read_pin(const struct kc_conf *conf, char *pin, size_t *pinlen, char **cause)
{
	uid_t		 me = 0;
	struct stat	 sb;
	ssize_t		 n;
	size_t		 len = 0;
	int		 fd, r = 0;

	if (conf->pin_fd >= 0)
		fd = conf->pin_fd;
	else if ((fd = open(conf->pin_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		xasprintf(cause, "PIN file %s: %s", conf->pin_file, strerror(errno));
		return KC_ERR_IO;
	}
	if (conf->pin_fd < 0) {
		if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
			xasprintf(cause, "PIN file %s: not a regular file", conf->pin_file);
			r = KC_ERR_IO;
			goto out;
		}
		if (sb.st_mode & (S_IRWXG | S_IRWXO)) {
			xasprintf(cause, "PIN file %s: mode %03o lets others read it; "
			    "chmod 600 it", conf->pin_file, (unsigned)(sb.st_mode & 0777));
			r = KC_ERR_DENIED;
			goto out;
		}
		if (daemon_uid(conf, &me, cause) != 0) {
			r = KC_ERR_INVALID;
			goto out;
		}
		if (sb.st_uid != 0 && sb.st_uid != me) {
			xasprintf(cause, "PIN file %s: owned by uid %u, which is neither root "
			    "nor the daemon's user (uid %u): another user could read or replace "
			    "it; chown it to root or to the daemon's user", conf->pin_file,
			    (unsigned)sb.st_uid, (unsigned)me);
			r = KC_ERR_DENIED;
			goto out;
		}
	}
	while (len < PIN_MAX) {
		n = read(fd, pin + len, PIN_MAX - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			xasprintf(cause, "reading the PIN: %s", strerror(errno));
			r = KC_ERR_IO;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len == PIN_MAX) {
		xasprintf(cause, "the PIN is longer than %d bytes", PIN_MAX - 1);
		r = KC_ERR_INVALID;
		goto out;
	}
	while (len > 0 && (pin[len - 1] == '\n' || pin[len - 1] == '\r'))
		len--;
	if (len == 0) {
		xasprintf(cause, "the PIN is empty");
		r = KC_ERR_INVALID;
		goto out;
	}
	pin[len] = '\0';
	*pinlen = len;
 out:
	if (r != 0)
		OPENSSL_cleanse(pin, PIN_MAX);
	close(fd);
	return r;
}

/*
 * A file the daemon will write (store, audit log): an existing regular file that opens for
 * writing, or a writable directory to create it in. Checked before anything is opened or
 * created, so that a start-up that must fail changes nothing.
 */
static int
preflight_writable(const char *what, const char *path, char **cause)
{
	struct stat	 sb;
	char		*dir, *slash;

	if (stat(path, &sb) == 0) {
		if (!S_ISREG(sb.st_mode)) {
			xasprintf(cause, "%s %s: not a regular file", what, path);
			return KC_ERR_IO;
		}
		/*
		 * Asked by name, not opened: a descriptor of ours closed on the store would drop
		 * the POSIX locks SQLite takes on it (store.c).
		 */
		if (access(path, R_OK | W_OK) == -1) {
			xasprintf(cause, "%s %s: %s", what, path, strerror(errno));
			return KC_ERR_IO;
		}
		return 0;
	}
	if (errno != ENOENT) {
		xasprintf(cause, "%s %s: %s", what, path, strerror(errno));
		return KC_ERR_IO;
	}
	dir = xstrdup(path);
	if ((slash = strrchr(dir, '/')) == NULL)
		memcpy(dir, ".", 2);	/* path is not empty: dir has room */
	else if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	if (access(dir, W_OK | X_OK) == -1) {
		xasprintf(cause, "%s %s: directory %s: %s", what, path, dir, strerror(errno));
		free(dir);
		return KC_ERR_IO;
	}
	free(dir);
	return 0;
}

/*
 * Finish or undo what a crash interrupted (custody.h), with a session and a store handle of
 * its own, before any request is answered; the findings go to health.
 */
static int
reconcile(struct kcd *kcd)
{
	struct custody		 c;
	struct custody_report	 rep;
	struct hsm_stats	 st;
	char			*cause = NULL;
	int			 r;

	memset(&c, 0, sizeof(c));
	c.kcd = kcd;
	if ((r = hsm_session_new(kcd->hsm, &c.hs)) != 0) {
		log_warnx("reconcile: PKCS#11 session: %s", kc_strerror(r));
		goto out;
	}
	if ((r = store_open(kcd->store_path, &c.st, &cause)) != 0) {
		log_warnx("reconcile: %s", cause);
		goto out;
	}
	if ((r = custody_reconcile(&c, &rep)) != 0)
		goto out;
	/*
	 * libp11's engine finds a key by searching the whole token, and SoftHSM2 reads every
	 * object file for a search: with this signer each CSR costs time in proportion to the
	 * token (docs/PERFORMANCE.md).
	 */
	if (hsm_get_signer(kcd->hsm) == HSM_SIGNER_ENGINE && rep.token_keys >= ENGINE_WARN_KEYS)
		log_warnx("csr_signer = engine with %zu keys in the token: every CSR makes libp11 "
		    "search the whole token, so CSRs slow down as it fills; csr_signer = direct "
		    "does not", rep.token_keys);
	hsm_get_stats(kcd->hsm, &st);
	if (st.token_duplicates > 0 || st.token_incomplete > 0 || st.token_debris > 0)
		log_warnx("reconcile: the token holds %llu duplicate id(s), %llu incomplete "
		    "pair(s) and %llu debris object(s), left alone (the hsm: scan lines name "
		    "them)", (unsigned long long)st.token_duplicates,
		    (unsigned long long)st.token_incomplete,
		    (unsigned long long)st.token_debris);
	atomic_store(&kcd->keys_in_custody, rep.ready);
	atomic_store(&kcd->orphan_keys, rep.orphans);
	atomic_store(&kcd->records_missing_key, rep.missing);
	kcd->missing_ids = rep.missing_ids;
	kcd->nmissing = rep.missing;
 out:
	free(cause);
	store_close(c.st);
	hsm_session_free(c.hs);
	return r;
}

/*
 * Shutdown: wait for in-flight work to be answered and the answers written to their
 * sockets (a reply queued in a bufferevent is lost when the loop stops), then leave the
 * loop; at most request_timeout + DRAIN_MARGIN_SEC.
 */
static void
drain_check(evutil_socket_t fd, short ev, void *arg)
{
	struct kcd	*kcd = arg;
	struct timeval	 tv = { 0, 50000 };

	if ((pool_depth(kcd->pool) == 0 && control_inflight(kcd->control) == 0 &&
	    control_unsent(kcd->control) == 0) ||
	    time(NULL) - drain_started >
	    (time_t)kcd->conf->request_timeout + DRAIN_MARGIN_SEC) {
		event_base_loopexit(kcd->base, NULL);
		return;
	}
	evtimer_add(drain_ev, &tv);
}

static void
on_signal(evutil_socket_t sig, short ev, void *arg)
{
	struct kcd	*kcd = arg;

	if (drain_ev != NULL)
		return;
	log_info("signal %d: no new connections; finishing in-flight requests", (int)sig);
	control_stop_accepting(kcd->control);
	drain_started = time(NULL);
	if ((drain_ev = evtimer_new(kcd->base, drain_check, kcd)) == NULL)
		fatalx("evtimer_new");
	drain_check(-1, 0, kcd);
}

/* Every sign_audit_interval: the signer role's totals into the audit log (issue 16). */
static void
on_sign_audit(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	answer_sign_totals(arg);
}

/* SIGHUP: rotate the audit log; the new file's first line links to the old file's last. */
static void
on_hup(evutil_socket_t sig, short ev, void *arg)
{
	struct kcd	*kcd = arg;
	char		*rotated = NULL;
	int		 r;

	if ((r = audit_rotate(kcd->audit, &rotated)) != 0)
		log_warnx("audit log rotation failed: %s", kc_strerror(r));
	else
		log_info("audit log rotated to %s", rotated);
	free(rotated);
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "pin-fd",	required_argument,	NULL,	'F' },
		{ "help",	no_argument,		NULL,	'h' },
		{ "accept-audit-log", no_argument,	NULL,	OPT_ACCEPT_AUDIT },
		{ "verify-audit", no_argument,		NULL,	OPT_VERIFY_AUDIT },
		{ "after",	required_argument,	NULL,	OPT_AFTER },
		{ NULL,		0,			NULL,	0 }
	};
	struct kc_conf	 conf;
	struct kcd	 kcd;
	struct kcd_seal	 seal;
	struct audit_seal aseal;
	const char	*after = NULL;
	int		 accept_audit = 0, verify = 0;
	struct custody	 rc;		/* the recovery thread's session and store handle */
	struct hsm_config hc;
	struct rlimit	 rl = { 0, 0 };
	struct event	*ev_term, *ev_int, *ev_hup;
	pthread_t	 recover_tid;
	const char	*conffile = NULL;
	char		*cause = NULL, *pin, *end;
	size_t		 pinlen = 0;
	long		 l;
	enum priv_sandbox_mode sbmode;
	int		 ch, debug = 0, noaction = 0, r;

	/* No core dump, no ptrace by other users: the PIN is in this process. */
	if (setrlimit(RLIMIT_CORE, &rl) == -1 || prctl(PR_SET_DUMPABLE, 0) == -1) {
		perror("keycustodyd: disabling core dumps");
		exit(1);
	}
	conf_init(&conf);
	log_init(1, LOG_DAEMON);

	/* Flags override the file: read -f first. */
	while ((ch = getopt_long(argc, argv, "dE:f:F:hm:nP:S:s:t:vw:", longopts, NULL)) != -1)
		if (ch == 'f')
			conffile = optarg;
	if (conffile != NULL && (r = conf_load(&conf, conffile, &cause)) != 0)
		fatalx("%s", cause);
	optind = 1;
	while ((ch = getopt_long(argc, argv, "dE:f:F:hm:nP:S:s:t:vw:", longopts, NULL)) != -1) {
		r = 0;
		switch (ch) {
		case 'd':
			debug++;
			break;
		case 'E':
			r = conf_set(&conf, "csr_signer", optarg, &cause);
			break;
		case 'f':
			break;
		case 'F':
			errno = 0;
			l = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || errno != 0 || l < 0 || l > 65535)
				fatalx("--pin-fd: \"%s\" is not a file descriptor", optarg);
			conf.pin_fd = (int)l;
			break;
		case 'm':
			r = conf_set(&conf, "module", optarg, &cause);
			break;
		case 'n':
			noaction = 1;
			break;
		case 'P':
			r = conf_set(&conf, "pin_file", optarg, &cause);
			break;
		case 'S':
			r = conf_set(&conf, "store", optarg, &cause);
			break;
		case 's':
			r = conf_set(&conf, "socket", optarg, &cause);
			break;
		case 't':
			r = conf_set(&conf, "token_label", optarg, &cause);
			break;
		case 'v':
			debug = debug < 2 ? 2 : debug;
			break;
		case 'w':
			r = conf_set(&conf, "workers", optarg, &cause);
			break;
		case OPT_ACCEPT_AUDIT:
			accept_audit = 1;
			break;
		case OPT_VERIFY_AUDIT:
			verify = 1;
			break;
		case OPT_AFTER:
			after = optarg;
			break;
		default:
			usage();
		}
		if (r != 0)
			fatalx("%s", cause);
	}
	if ((optind != argc && !verify) || (after != NULL && !verify) ||
	    (verify && (accept_audit || noaction)))
		usage();
	if ((r = conf_check(&conf, &cause)) != 0)
		fatalx("configuration: %s", cause);
	if (noaction) {
		fprintf(stderr, "configuration OK\n");
		conf_free(&conf);
		return 0;
	}
	log_init(debug, LOG_DAEMON);
	log_setverbose(debug > 1);
	signal(SIGPIPE, SIG_IGN);
	/* A file size limit makes the write fail (EFBIG), which the audit log handles. */
	signal(SIGXFSZ, SIG_IGN);
	/* Every file the daemon makes (store, its -wal and -shm, audit log) is its own. */
	(void)umask(S_IRWXG | S_IRWXO);

	/*
	 * Refuse before touching the token, the store or the audit log: a second daemon must
	 * not reconcile (undo) the first one's work in flight, and a start that cannot succeed
	 * must not create files.
	 */
	if (!verify && control_in_use(conf.socket_path))
		fatalx("%s: another keycustodyd is already answering there", conf.socket_path);
	if (!verify && (preflight_writable("store", conf.store_path, &cause) != 0 ||
	    preflight_writable("audit log", conf.audit_log, &cause) != 0))
		fatalx("%s", cause);

	/* The PIN: read once, used for C_Login, wiped. */
	if ((pin = mmap(NULL, PIN_MAX + 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
	    -1, 0)) == MAP_FAILED)
		fatal("mmap");
	if (mlock(pin, PIN_MAX + 1) == -1)
		log_warn("mlock (PIN buffer)");
	madvise(pin, PIN_MAX + 1, MADV_DONTDUMP);
	if ((r = read_pin(&conf, pin, &pinlen, &cause)) != 0)
		fatalx("%s", cause);

	memset(&hc, 0, sizeof(hc));
	hc.module = conf.module;
	hc.token_label = conf.token_label;
	hc.engine_path = conf.engine_path;
	hc.signer = conf.signer;
	hc.init_args = conf.module_args;
	hc.retry_max_ms = conf.hsm_retry_max;
	hc.probe_timeout_ms = conf.hsm_probe_timeout;
	hc.accept_no_history = conf.accept_missing_key_history;
	memset(&kcd, 0, sizeof(kcd));
	kcd.conf = &conf;
	kcd.store_path = conf.store_path;
	kcd.started = time(NULL);
	r = hsm_open(&hc, pin, pinlen, &kcd.hsm, &cause);
	OPENSSL_cleanse(pin, PIN_MAX + 1);
	munmap(pin, PIN_MAX + 1);
	if (r != 0)
		fatalx("token \"%s\" (module %s): %s", conf.token_label, conf.module,
		    cause != NULL ? cause : kc_strerror(r));
	log_info("token \"%s\" open, csr_signer %s", conf.token_label,
	    conf.signer == HSM_SIGNER_ENGINE ? "engine" : "direct");
	if (conf.signer_deprecated)
		log_warnx("\"signer = direct|engine\" is the old spelling of csr_signer; "
		    "signer now grants the signer role (keycustodyd.conf(5))");
	if (verify) {
		r = verify_audit(&kcd, &conf, argv + optind, argc - optind, after);
		hsm_close(kcd.hsm);
		conf_free(&conf);
		return r;
	}

	if (evthread_use_pthreads() == -1)
		fatalx("evthread_use_pthreads");
	if ((kcd.base = event_base_new()) == NULL)
		fatalx("event_base_new");
	if ((kcd.control = control_new(&kcd, &conf, &cause)) == NULL)
		fatalx("%s", cause);
	/*
	 * Token open and socket bound: give up root for good (DESIGN.md section 4), before
	 * anything creates a file (store, audit log), so that those belong to the user.
	 */
	if (priv_sandbox_mode_parse(conf.sandbox, &sbmode) != 0)
		fatalx("sandbox: \"%s\"", conf.sandbox);
	if (conf.user == NULL && geteuid() == 0)
		log_warnx("running as root: set user (and group) in the configuration");
	if ((r = priv_drop_groups(conf.user, conf.group, (const char *const *)conf.groups,
	    conf.ngroups, &cause)) != 0)
		fatalx("dropping privileges: %s", cause);
	if ((r = priv_harden(&cause)) != 0)
		fatalx("hardening: %s", cause);

	if ((r = cert_store_new(conf.trust_system, (const char *const *)conf.trust_bundles,
	    conf.ntrust_bundles, &kcd.certs, &cause)) != 0)
		fatalx("trust store: %s", cause);

	/* The audit log: keyed by the token's MAC key, anchored in the store (issue 12). */
	memset(&seal, 0, sizeof(seal));
	if ((r = hsm_session_new(kcd.hsm, &seal.hs)) != 0)
		fatalx("audit log: PKCS#11 session: %s", kc_strerror(r));
	if ((r = hsm_mac_key_open(seal.hs, 1, &cause)) != 0)
		fatalx("audit log: %s", cause);
	if ((r = store_open(kcd.store_path, &seal.st, &cause)) != 0)
		fatalx("audit log: %s", cause);
	memset(&aseal, 0, sizeof(aseal));
	aseal.mac = kcd_seal_mac;
	aseal.anchor_get = kcd_seal_anchor_get;
	aseal.anchor_put = kcd_seal_anchor_put;
	aseal.arg = &seal;
	aseal.accept = accept_audit != 0;
	if ((r = audit_open(conf.audit_log, &aseal, &kcd.audit, &cause)) != 0)
		fatalx("audit log: %s", cause);

	if ((r = reconcile(&kcd)) != 0)
		fatalx("start-up reconciliation failed: %s", kc_strerror(r));
	kcd.store_ok = 1;

	sign_limiter_init(&kcd.sign_limiter, conf.sign_rate);
	sign_stats_init(&kcd.sign_stats);
	if ((kcd.sign_audit_ev = event_new(kcd.base, -1, EV_PERSIST, on_sign_audit,
	    &kcd)) == NULL)
		fatalx("event_new");
	{
		struct timeval	 tv = { (time_t)conf.sign_audit_interval, 0 };

		event_add(kcd.sign_audit_ev, &tv);
	}
	kcd.pending = custody_pending_new();
	/* With one worker the creates a delete would wait for queue behind it: no wait. */
	kcd.yield = custody_yield_new(conf.workers > 1 ? conf.destroy_yield_max : 0);
	if ((kcd.disp = disp_new(&kcd, &cause)) == NULL)
		fatalx("%s", cause);
	memset(&rc, 0, sizeof(rc));
	rc.kcd = &kcd;
	if ((r = hsm_session_new(kcd.hsm, &rc.hs)) != 0)
		fatalx("recovery thread: PKCS#11 session: %s", kc_strerror(r));
	if ((r = store_open(kcd.store_path, &rc.st, &cause)) != 0)
		fatalx("recovery thread: %s", cause);
	ev_term = evsignal_new(kcd.base, SIGTERM, on_signal, &kcd);
	ev_int = evsignal_new(kcd.base, SIGINT, on_signal, &kcd);
	ev_hup = evsignal_new(kcd.base, SIGHUP, on_hup, &kcd);
	if (ev_term == NULL || ev_int == NULL || ev_hup == NULL ||
	    evsignal_add(ev_term, NULL) == -1 || evsignal_add(ev_int, NULL) == -1 ||
	    evsignal_add(ev_hup, NULL) == -1)
		fatalx("signal events");
	if ((r = pthread_create(&recover_tid, NULL, recover_thread, &rc)) != 0)
		fatalx("pthread_create: %s", strerror(r));
	log_info("listening on %s with %u worker(s)", conf.socket_path, conf.workers);

	/* Nothing forbidden after this: every thread of the process is filtered. */
	if ((r = priv_sandbox_allow(PRIV_PROFILE_DAEMON, sbmode, conf.sandbox_allow,
	    &cause)) != 0)
		fatalx("sandbox: %s", cause);

	event_base_dispatch(kcd.base);

	log_info("shutting down");
	pthread_mutex_lock(&recover_lock);
	recover_stop = 1;
	pthread_cond_signal(&recover_cond);
	pthread_mutex_unlock(&recover_lock);
	pthread_join(recover_tid, NULL);
	disp_free(kcd.disp);
	/* The last period's signatures, before the log closes. */
	answer_sign_totals(&kcd);
	event_free(kcd.sign_audit_ev);
	sign_limiter_free(&kcd.sign_limiter);
	sign_stats_free(&kcd.sign_stats);
	hsm_session_free(rc.hs);
	store_close(rc.st);
	if (custody_pending_count(kcd.pending) > 0)
		log_warnx("%zu create(s) still wait for the token to say whether they made a "
		    "key; the next start-up removes them", custody_pending_count(kcd.pending));
	custody_pending_free(kcd.pending);
	custody_yield_free(kcd.yield);
	control_free(kcd.control);
	if (drain_ev != NULL)
		event_free(drain_ev);
	event_free(ev_term);
	event_free(ev_int);
	event_free(ev_hup);
	event_base_free(kcd.base);
	hsm_close(kcd.hsm);
	audit_close(kcd.audit);
	store_close(seal.st);
	hsm_session_free(seal.hs);
	cert_store_free(kcd.certs);
	free(kcd.missing_ids);
	conf_free(&conf);
	return 0;
}
