/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * keycustody-http.c: main of the HTTP shim: options and configuration file, credentials,
 * signals, the loop; and the "credential add" subcommand.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <event2/event.h>
#include <event2/util.h>

#include "kc-conf-file.h"
#include "kc-err.h"
#include "kc-util.h"
#include "keycustody.h"
#include "log.h"
#include "xmalloc.h"
#include "cred.h"
#include "http.h"
#include "json.h"
#include "priv.h"

/* Settings, from the command line or the configuration file; strings are owned. */
struct main_conf {
	char	*listen;
	char	*socket;
	char	*credentials;
	char	*tls_cert;
	char	*tls_key;
	char	*tls_client_ca;
	char	*user;
	char	*group;
	char	*sandbox;
	int	 port;
	int	 metrics;
	char	*metrics_token_file;	/* its one line is /metrics' bearer token */
	char	*metrics_listen;	/* /metrics' own listener, with metrics_port */
	int	 metrics_port;
	int	 timeout_ms;
	int	 connections;
	struct http_limits lim;		/* lim.reserve points at reserve */
	char	*reserve;
};

enum main_type { MAIN_STR, MAIN_INT, MAIN_BOOL };

#define MAIN_TOKEN_MIN	16	/* metrics_token_file: a guessable token is no credential */
#define MAIN_TOKEN_MAX	256

/* One row per setting: its configuration file key is its long option, '-' made '_'. */
static const struct kc_conf_file_key main_keys[] = {
	{ "listen",	   MAIN_STR,  offsetof(struct main_conf, listen), 0, 0, 0 },
	{ "port",	   MAIN_INT,  offsetof(struct main_conf, port), 1, 65535, 0 },
	{ "socket",	   MAIN_STR,  offsetof(struct main_conf, socket), 0, 0, 0 },
	{ "credentials",   MAIN_STR,  offsetof(struct main_conf, credentials), 0, 0, 0 },
	{ "tls_cert",	   MAIN_STR,  offsetof(struct main_conf, tls_cert), 0, 0, 0 },
	{ "tls_key",	   MAIN_STR,  offsetof(struct main_conf, tls_key), 0, 0, 0 },
	{ "tls_client_ca", MAIN_STR,  offsetof(struct main_conf, tls_client_ca), 0, 0, 0 },
	{ "user",	   MAIN_STR,  offsetof(struct main_conf, user), 0, 0, 0 },
	{ "group",	   MAIN_STR,  offsetof(struct main_conf, group), 0, 0, 0 },
	{ "sandbox",	   MAIN_STR,  offsetof(struct main_conf, sandbox), 0, 0, 0 },
	{ "metrics",	   MAIN_BOOL, offsetof(struct main_conf, metrics), 0, 0, 0 },
	{ "metrics_token_file", MAIN_STR, offsetof(struct main_conf, metrics_token_file), 0,
	    0, 0 },
	{ "metrics_listen", MAIN_STR, offsetof(struct main_conf, metrics_listen), 0, 0, 0 },
	{ "metrics_port",  MAIN_INT,  offsetof(struct main_conf, metrics_port), 1, 65535, 0 },
	{ "timeout_ms",	   MAIN_INT,  offsetof(struct main_conf, timeout_ms), 100,
	    3600000, 0 },
	{ "connections",   MAIN_INT,  offsetof(struct main_conf, connections), 1, 64, 0 },
	/* keycustody-http(8) LIMITS */
	{ "max_connections", MAIN_INT, offsetof(struct main_conf, lim.max_conns), 1,
	    1000000, 0 },
	{ "max_connections_per_address", MAIN_INT,
	    offsetof(struct main_conf, lim.max_conns_addr), 1, 1000000, 0 },
	{ "reserved_connections", MAIN_INT,
	    offsetof(struct main_conf, lim.reserved_conns), 0, 1000000, 0 },
	{ "reserve",	   MAIN_STR,  offsetof(struct main_conf, reserve), 0, 0, 0 },
	{ "header_timeout_ms", MAIN_INT, offsetof(struct main_conf, lim.header_timeout_ms),
	    100, 3600000, 0 },
	{ "body_timeout_ms", MAIN_INT, offsetof(struct main_conf, lim.body_timeout_ms),
	    100, 3600000, 0 },
	{ "max_header_bytes", MAIN_INT, offsetof(struct main_conf, lim.max_header_bytes),
	    1024, 1024 * 1024, 0 },
	{ "max_headers",   MAIN_INT,  offsetof(struct main_conf, lim.max_headers), 8, 1000,
	    0 },
};

static __dead void
main_usage(void)
{
	fprintf(stderr,
	    "usage: keycustody-http [-dn] [--no-metrics] [-c credentials] [-f file]\n"
	    "                       [--metrics-token-file file] [--metrics-listen address]\n"
	    "                       [--metrics-port port]\n"
	    "                       [-l address] [-p port] [-s socket] [-t timeout_ms]\n"
	    "                       [-w connections] [--tls-cert file --tls-key file\n"
	    "                       [--tls-client-ca file]] [--user user [--group group]]\n"
	    "                       [--max-connections n] [--max-connections-per-address n]\n"
	    "                       [--reserved-connections n] [--reserve list]\n"
	    "                       [--header-timeout-ms ms] [--body-timeout-ms ms]\n"
	    "                       [--max-header-bytes n] [--max-headers n]\n"
	    "       keycustody-http credential add --name name --zone zone|* "
	    "--access read|write\n"
	    "                       [--email email] -c credentials\n");
	exit(1);
}

/*
 * Set key to value in mc.
 * @param cause on failure, why (caller frees)
 * @retval 0 or KC_ERR_INVALID
 */
static int
main_set(struct main_conf *mc, const char *key, const char *value, char **cause)
{
	const struct kc_conf_file_key	*k;
	char				*p;
	long				 v;

	if ((k = kc_conf_file_key(main_keys, nitems(main_keys), key, cause)) == NULL)
		return KC_ERR_INVALID;
	p = (char *)mc + k->off;
	switch (k->type) {
	case MAIN_STR:
		return kc_conf_file_str((char **)p, key, value, cause);
	case MAIN_INT:
		if (kc_conf_file_number(value, k->min, k->max, &v) != 0) {
			xasprintf(cause, "%s must be a number between %ld and %ld", key,
			    k->min, k->max);
			return KC_ERR_INVALID;
		}
		*(int *)p = (int)v;
		break;
	case MAIN_BOOL:
		if (strcmp(value, "yes") == 0)
			*(int *)p = 1;
		else if (strcmp(value, "no") == 0)
			*(int *)p = 0;
		else {
			xasprintf(cause, "%s must be yes or no", key);
			return KC_ERR_INVALID;
		}
		break;
	}
	return 0;
}

/*
 * Read /metrics' bearer token: the file's one line, 16 to 256 printable characters
 * without spaces (a trailing newline is dropped).
 * @retval the token (caller frees with freezero_kc()), or NULL with *cause set
 */
static char *
main_metrics_token(const char *path, char **cause)
{
	char	 buf[MAIN_TOKEN_MAX + 2];
	char	*tok = NULL;
	ssize_t	 n;
	size_t	 len, i;
	int	 fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		xasprintf(cause, "metrics_token_file %s: %s", path, strerror(errno));
		return NULL;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0) {
		xasprintf(cause, "metrics_token_file %s: %s", path, strerror(errno));
		goto out;
	}
	len = (size_t)n;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	for (i = 0; i < len && buf[i] > ' ' && buf[i] < 0x7f; i++)
		;
	if (len < MAIN_TOKEN_MIN || len > MAIN_TOKEN_MAX || i != len) {
		xasprintf(cause, "metrics_token_file %s: want one line of %d to %d printable "
		    "characters without spaces", path, MAIN_TOKEN_MIN, MAIN_TOKEN_MAX);
		goto out;
	}
	tok = xmalloc(len + 1);
	memcpy(tok, buf, len);
	tok[len] = '\0';
 out:
	explicit_bzero(buf, sizeof(buf));
	return tok;
}

/* The configuration file reader's callback: each line is a main_set(). */
static int
main_conf_line(void *arg, const char *key, const char *value, int line, char **cause)
{
	return main_set(arg, key, value, cause);
}

static void
main_conf_free(struct main_conf *mc)
{
	free(mc->listen);
	free(mc->socket);
	free(mc->credentials);
	free(mc->tls_cert);
	free(mc->tls_key);
	free(mc->tls_client_ca);
	free(mc->user);
	free(mc->group);
	free(mc->sandbox);
	free(mc->reserve);
	free(mc->metrics_token_file);
	free(mc->metrics_listen);
	memset(mc, 0, sizeof(*mc));
}

/* keycustody-http credential add ...: append a new credential, print its secret once. */
static int
main_credential(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, 'N' },
		{ "zone", required_argument, NULL, 'z' },
		{ "access", required_argument, NULL, 'a' },
		{ "email", required_argument, NULL, 'e' },
		{ "file", required_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 }
	};
	struct cred_table	*t = NULL;
	const char		*name = NULL, *zone = NULL, *access = NULL, *email = NULL;
	const char		*file = NULL;
	char			 secret[CRED_SECRET_LEN + 1], *line = NULL, *cause = NULL;
	struct stat		 st;
	size_t			 len;
	ssize_t			 n;
	int			 ch, fd, r, acc;

	if (argc < 2 || strcmp(argv[1], "add") != 0)
		main_usage();
	argc--;
	argv++;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
		switch (ch) {
		case 'N':
			name = optarg;
			break;
		case 'z':
			zone = optarg;
			break;
		case 'a':
			access = optarg;
			break;
		case 'e':
			email = optarg;
			break;
		case 'c':
			file = optarg;
			break;
		default:
			main_usage();
		}
	}
	if (optind != argc || name == NULL || zone == NULL || access == NULL || file == NULL)
		main_usage();
	if (strcmp(access, "read") == 0)
		acc = CRED_READ;
	else if (strcmp(access, "write") == 0)
		acc = CRED_WRITE;
	else
		fatalx("--access must be read or write");

	/* The file must stay parseable and names unique: check what is there first. */
	if (stat(file, &st) == 0) {
		if ((r = cred_load(file, &t, &cause)) != 0)
			fatalx("%s", cause != NULL ? cause : kc_strerror(r));
	}
	if ((r = cred_new_line(name, email != NULL ? CRED_KEY : CRED_TOKEN, zone, acc, email,
	    secret, &line, &cause)) != 0)
		fatalx("%s", cause != NULL ? cause : kc_strerror(r));
	if (cred_lookup(t, name) != NULL)
		fatalx("a credential named %s exists already", name);
	cred_table_free(t);
	/* O_APPEND: concurrent adds never interleave within a line; 0600 on creation. */
	if ((fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600)) == -1)
		fatal("%s", file);
	len = strlen(line);
	if ((n = write(fd, line, len)) == -1 || (size_t)n != len || fsync(fd) == -1)
		fatal("%s: write", file);
	if (close(fd) == -1)
		fatal("%s: close", file);
	free(line);
	printf("%s\n", secret);
	OPENSSL_cleanse(secret, sizeof(secret));
	return 0;
}

static void
main_signal(evutil_socket_t sig, short what, void *arg)
{
	struct event_base	*base = arg;

	log_info("signal %d, exiting", (int)sig);
	event_base_loopbreak(base);
}

/* What SIGHUP needs: the credentials file, open since start-up (the sandbox has no open). */
struct main_reload {
	struct http	*h;
	const char	*path;
	int		 fd;
};

/*
 * SIGHUP: read the credentials file again through the descriptor kept open. A broken file
 * keeps the old table; a file replaced by rename is not the one we hold, so say so.
 */
static void
main_sighup(evutil_socket_t sig, short what, void *arg)
{
	struct main_reload	*rl = arg;
	struct cred_table	*t;
	struct stat		 held, now;
	char			*cause = NULL;
	int			 r;

	if (fstat(rl->fd, &held) == 0 && stat(rl->path, &now) == 0 &&
	    (held.st_dev != now.st_dev || held.st_ino != now.st_ino))
		log_warnx("%s was replaced (renamed over): the sandbox cannot open it, "
		    "rereading the file opened at start; edit it in place, or restart",
		    rl->path);
	if ((r = cred_load_fd(rl->fd, rl->path, &t, &cause)) != 0) {
		log_warnx("SIGHUP: credentials not reloaded, the old ones stay: %s",
		    cause != NULL ? cause : kc_strerror(r));
		free(cause);
		return;
	}
	log_info("SIGHUP: %zu credential(s) reloaded from %s", cred_count(t), rl->path);
	http_set_creds(rl->h, t);
}

int
main(int argc, char **argv)
{
	/* Long options with a setting share its name ('-' for '_'); see main_keys. */
	static const struct option opts[] = {
		{ "credentials", required_argument, NULL, 'c' },
		{ "config", required_argument, NULL, 'f' },
		{ "listen", required_argument, NULL, 'l' },
		{ "port", required_argument, NULL, 'p' },
		{ "socket", required_argument, NULL, 's' },
		{ "timeout-ms", required_argument, NULL, 't' },
		{ "connections", required_argument, NULL, 'w' },
		{ "no-metrics", no_argument, NULL, 'M' },
		{ "metrics-token-file", required_argument, NULL, 'T' },
		{ "metrics-listen", required_argument, NULL, 'L' },
		{ "metrics-port", required_argument, NULL, 'P' },
		{ "tls-cert", required_argument, NULL, 'C' },
		{ "tls-key", required_argument, NULL, 'K' },
		{ "tls-client-ca", required_argument, NULL, 'A' },
		{ "user", required_argument, NULL, 'u' },
		{ "group", required_argument, NULL, 'g' },
		{ "sandbox", required_argument, NULL, 'S' },
		{ "max-connections", required_argument, NULL, '1' },
		{ "max-connections-per-address", required_argument, NULL, '2' },
		{ "reserved-connections", required_argument, NULL, '3' },
		{ "reserve", required_argument, NULL, '4' },
		{ "header-timeout-ms", required_argument, NULL, '5' },
		{ "body-timeout-ms", required_argument, NULL, '6' },
		{ "max-header-bytes", required_argument, NULL, '7' },
		{ "max-headers", required_argument, NULL, '8' },
		{ NULL, 0, NULL, 0 }
	};
	static const char	*const optkeys[] = {
		['1'] = "max_connections", ['2'] = "max_connections_per_address",
		['3'] = "reserved_connections", ['4'] = "reserve",
		['5'] = "header_timeout_ms", ['6'] = "body_timeout_ms",
		['7'] = "max_header_bytes", ['8'] = "max_headers",
		['c'] = "credentials", ['l'] = "listen", ['p'] = "port", ['s'] = "socket",
		['t'] = "timeout_ms", ['w'] = "connections", ['C'] = "tls_cert",
		['K'] = "tls_key", ['A'] = "tls_client_ca", ['u'] = "user", ['g'] = "group",
		['S'] = "sandbox", ['T'] = "metrics_token_file", ['L'] = "metrics_listen",
		['P'] = "metrics_port"
	};
	static const char	 shortopts[] = "c:df:l:np:s:t:w:";
	struct main_conf	 mc;
	struct http_config	 conf;
	struct event_base	*base;
	struct event		*ev_int, *ev_term, *ev_hup;
	struct main_reload	 rl;
	struct cred_table	*creds = NULL;
	char			*mtoken = NULL;
	struct http		*h;
	const char		*file = NULL;
	char			*cause = NULL;
	enum priv_sandbox_mode	 sbmode = PRIV_SANDBOX_ENFORCE;
	int			 ch, debug = 0, check = 0, r;

	log_procinit("keycustody-http");
	if (argc > 1 && strcmp(argv[1], "credential") == 0) {
		log_init(1, LOG_DAEMON);
		return main_credential(argc - 1, argv + 1);
	}

	memset(&mc, 0, sizeof(mc));
	mc.listen = xstrdup("127.0.0.1");
	mc.port = 8080;
	mc.metrics = 1;
	mc.connections = 4;
	mc.timeout_ms = 60000;
	mc.lim.max_conns = HTTP_DEF_MAX_CONNS;
	mc.lim.max_conns_addr = HTTP_DEF_MAX_CONNS_ADDR;
	mc.lim.reserved_conns = HTTP_DEF_RESERVED_CONNS;
	mc.lim.header_timeout_ms = HTTP_DEF_HEADER_TIMEOUT_MS;
	mc.lim.body_timeout_ms = HTTP_DEF_BODY_TIMEOUT_MS;
	mc.lim.max_header_bytes = HTTP_DEF_MAX_HEADER_BYTES;
	mc.lim.max_headers = HTTP_DEF_MAX_HEADERS;

	/* The file first, so that options override it: find -f, then read the rest. */
	while ((ch = getopt_long(argc, argv, shortopts, opts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			debug++;
			break;
		case 'f':
			file = optarg;
			break;
		case '?':
			main_usage();
		}
	}
	if (optind != argc)
		main_usage();
	log_init(debug > 0 ? debug : 1, LOG_DAEMON);
	if (file != NULL && kc_conf_file_read(file, main_conf_line, &mc, &cause) != 0)
		fatalx("%s", cause);
	optind = 0;		/* glibc: start over */
	while ((ch = getopt_long(argc, argv, shortopts, opts, NULL)) != -1) {
		switch (ch) {
		case 'd':
		case 'f':
			break;
		case 'n':
			check = 1;
			break;
		case 'M':
			mc.metrics = 0;
			break;
		default:
			if (ch < 0 || (size_t)ch >= nitems(optkeys) || optkeys[ch] == NULL)
				main_usage();
			if (main_set(&mc, optkeys[ch], optarg, &cause) != 0)
				fatalx("%s", cause);
			break;
		}
	}

	if (mc.sandbox != NULL && priv_sandbox_mode_parse(mc.sandbox, &sbmode) != 0)
		fatalx("sandbox must be enforce, log or off");
	if (mc.group != NULL && mc.user == NULL)
		fatalx("group is set but user is not");

	memset(&conf, 0, sizeof(conf));
	conf.address = mc.listen;
	conf.port = mc.port;
	conf.socket = mc.socket;
	conf.metrics = mc.metrics;
	if (mc.metrics_token_file != NULL &&
	    (mtoken = main_metrics_token(mc.metrics_token_file, &cause)) == NULL)
		fatalx("%s", cause);
	conf.metrics_token = mtoken;
	conf.metrics_address = mc.metrics_listen;
	conf.metrics_port = mc.metrics_port;
	if (mc.metrics_listen != NULL && mc.metrics_port == 0)
		fatalx("metrics_listen is set but metrics_port is not");
	conf.daemon_conns = mc.connections;
	conf.daemon_timeout_ms = mc.timeout_ms;
	conf.max_pending = 256;
	conf.http_timeout_s = 30;
	conf.tls_cert = mc.tls_cert;
	conf.tls_key = mc.tls_key;
	conf.tls_client_ca = mc.tls_client_ca;
	conf.limits = mc.lim;
	conf.limits.reserve = mc.reserve;
	if (mc.credentials == NULL)
		fatalx("no credentials file (-c, or credentials in the configuration file)");
	if ((rl.fd = open(mc.credentials, O_RDONLY | O_CLOEXEC)) == -1)
		fatal("credentials: %s", mc.credentials);
	rl.path = mc.credentials;
	if ((r = cred_load_fd(rl.fd, mc.credentials, &creds, &cause)) != 0)
		fatalx("credentials: %s", cause != NULL ? cause : kc_strerror(r));
	if (check) {
		if (http_tls_check(&conf, &cause) != 0)
			fatalx("%s", cause);
		printf("configuration OK: %zu credential(s)%s\n", cred_count(creds),
		    conf.tls_cert != NULL ? conf.tls_client_ca != NULL ?
		    ", TLS with client certificates" : ", TLS" : "");
		cred_table_free(creds);
		close(rl.fd);
		if (mtoken != NULL)
			freezero_kc(mtoken, strlen(mtoken));
		main_conf_free(&mc);
		return 0;
	}
	if (cred_count(creds) == 0)
		log_warnx("%s: no credentials: every API request will be refused",
		    mc.credentials);

	signal(SIGPIPE, SIG_IGN);
	if ((base = event_base_new()) == NULL)
		fatalx("event_base_new");
	if ((h = http_new(base, &conf, creds, &cause)) == NULL)
		fatalx("%s", cause);
	if (mtoken != NULL)
		freezero_kc(mtoken, strlen(mtoken));	/* http_new() has its copy */
	mtoken = NULL;
	rl.h = h;
	ev_int = evsignal_new(base, SIGINT, main_signal, base);
	ev_term = evsignal_new(base, SIGTERM, main_signal, base);
	ev_hup = evsignal_new(base, SIGHUP, main_sighup, &rl);
	if (ev_int == NULL || ev_term == NULL || ev_hup == NULL)
		fatalx("evsignal_new");
	evsignal_add(ev_int, NULL);
	evsignal_add(ev_term, NULL);
	evsignal_add(ev_hup, NULL);
	log_info("listening on %s port %d%s", conf.address, conf.port,
	    conf.tls_cert != NULL ? conf.tls_client_ca != NULL ?
	    " (TLS, client certificates required)" : " (TLS)" : "");
	/*
	 * Listener bound, credentials and TLS key read: no root, no new privileges, the
	 * sandbox. The sandbox has no open(): load now what OpenSSL (its configuration) and
	 * libevent and jansson (their random seeds) would otherwise open on first use.
	 */
	if (OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, NULL) != 1)
		fatalx("OPENSSL_init_crypto failed");
	if (evutil_secure_rng_init() == -1)
		fatalx("evutil_secure_rng_init failed");
	json_init();
	if (mc.user == NULL && geteuid() == 0)
		log_warnx("running as root: use --user (and --group)");
	if ((r = priv_drop(mc.user, mc.group, &cause)) != 0)
		fatalx("dropping privileges: %s", cause);
	if ((r = priv_harden(&cause)) != 0)
		fatalx("hardening: %s", cause);
	/*
	 * Only now the daemon: it must see the shim's uid and gid (the gateway role), never
	 * root's, on every connection, the first ones included.
	 */
	if ((r = http_connect(h, &conf, &cause)) != 0)
		fatalx("%s", cause);
	if ((r = priv_sandbox(PRIV_PROFILE_SHIM, sbmode, &cause)) != 0)
		fatalx("sandbox: %s", cause);
	event_base_dispatch(base);
	http_free(h);
	event_free(ev_int);
	event_free(ev_term);
	event_free(ev_hup);
	close(rl.fd);
	event_base_free(base);
	main_conf_free(&mc);
	return 0;
}
