/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * keycustody-http.c: main of the HTTP shim: options, credentials, signals, the loop; and
 * the "credential add" subcommand.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <event2/event.h>

#include "kc-err.h"
#include "keycustody.h"
#include "log.h"
#include "xmalloc.h"
#include "cred.h"
#include "http.h"

static __dead void
main_usage(void)
{
	fprintf(stderr,
	    "usage: keycustody-http [-dn] [--no-metrics] [-c credentials] [-l address]\n"
	    "                       [-p port] [-s socket] [-t timeout_ms] [-w connections]\n"
	    "       keycustody-http credential add --name name --zone zone|* "
	    "--access read|write\n"
	    "                       [--email email] -c credentials\n");
	exit(1);
}

static int
main_parse_int(const char *s, int min, int max, const char *what)
{
	char	*end;
	long	 v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v < min || v > max)
		fatalx("%s must be a number between %d and %d", what, min, max);
	return ((int)v);
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
	return (0);
}

static void
main_signal(evutil_socket_t sig, short what, void *arg)
{
	struct event_base	*base = arg;

	log_info("signal %d, exiting", (int)sig);
	event_base_loopbreak(base);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "no-metrics", no_argument, NULL, 'M' },
		{ NULL, 0, NULL, 0 }
	};
	struct http_config	 conf;
	struct event_base	*base;
	struct event		*ev_int, *ev_term;
	struct cred_table	*creds = NULL;
	struct http		*h;
	const char		*credfile = NULL;
	char			*cause = NULL;
	int			 ch, debug = 0, check = 0, r;

	log_procinit("keycustody-http");
	if (argc > 1 && strcmp(argv[1], "credential") == 0) {
		log_init(1, LOG_DAEMON);
		return (main_credential(argc - 1, argv + 1));
	}

	memset(&conf, 0, sizeof(conf));
	conf.address = "127.0.0.1";
	conf.port = 8080;
	conf.metrics = 1;
	conf.daemon_conns = 4;
	conf.daemon_timeout_ms = 60000;
	conf.max_pending = 256;
	conf.http_timeout_s = 30;
	while ((ch = getopt_long(argc, argv, "c:dl:np:s:t:w:", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			credfile = optarg;
			break;
		case 'd':
			debug++;
			break;
		case 'l':
			conf.address = optarg;
			break;
		case 'n':
			check = 1;
			break;
		case 'p':
			conf.port = main_parse_int(optarg, 1, 65535, "port");
			break;
		case 's':
			conf.socket = optarg;
			break;
		case 't':
			conf.daemon_timeout_ms = main_parse_int(optarg, 100, 3600000,
			    "timeout");
			break;
		case 'w':
			conf.daemon_conns = main_parse_int(optarg, 1, 64, "connections");
			break;
		case 'M':
			conf.metrics = 0;
			break;
		default:
			main_usage();
		}
	}
	if (optind != argc)
		main_usage();
	log_init(debug > 0 ? debug : 1, LOG_DAEMON);
	if (credfile == NULL)
		fatalx("no credentials file (-c)");
	if ((r = cred_load(credfile, &creds, &cause)) != 0)
		fatalx("credentials: %s", cause != NULL ? cause : kc_strerror(r));
	if (check) {
		printf("configuration OK: %zu credential(s)\n", cred_count(creds));
		cred_table_free(creds);
		return (0);
	}
	if (cred_count(creds) == 0)
		log_warnx("%s: no credentials: every API request will be refused", credfile);

	signal(SIGPIPE, SIG_IGN);
	if ((base = event_base_new()) == NULL)
		fatalx("event_base_new");
	if ((h = http_new(base, &conf, creds, &cause)) == NULL)
		fatalx("%s", cause);
	ev_int = evsignal_new(base, SIGINT, main_signal, base);
	ev_term = evsignal_new(base, SIGTERM, main_signal, base);
	if (ev_int == NULL || ev_term == NULL)
		fatalx("evsignal_new");
	evsignal_add(ev_int, NULL);
	evsignal_add(ev_term, NULL);
	log_info("listening on %s port %d", conf.address, conf.port);
	event_base_dispatch(base);
	http_free(h);
	event_free(ev_int);
	event_free(ev_term);
	event_base_free(base);
	return (0);
}
