/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * cmd-hostname.c: keycustodyctl hostname create|list|get|update|delete: certificates
 * uploaded for the keys of custom CSRs.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "json.h"
#include "kc-err.h"
#include "kc-proto.h"
#include "keycustody.h"
#include "log.h"
#include "xmalloc.h"

#define CTL_MAX_CERT	(512 * 1024)	/* a PEM chain; the frame cap is 1 MiB */

/* Read a PEM chain file ("-" is standard input). */
static char *
hostname_read_cert(const char *path)
{
	char	*buf;
	size_t	 len = 0;
	ssize_t	 n;
	int	 fd;

	if (strcmp(path, "-") == 0)
		fd = STDIN_FILENO;
	else if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		fprintf(stderr, "keycustodyctl: %s: %s\n", path, strerror(errno));
		exit(EXIT_USAGE);
	}
	buf = xmalloc(CTL_MAX_CERT + 1);
	while ((n = read(fd, buf + len, CTL_MAX_CERT - len)) > 0)
		len += (size_t)n;
	if (n == -1 || len == CTL_MAX_CERT) {
		fprintf(stderr, "keycustodyctl: %s: %s\n", path,
		    n == -1 ? strerror(errno) : "larger than 512 KiB");
		exit(EXIT_USAGE);
	}
	buf[len] = '\0';
	if (fd != STDIN_FILENO)
		close(fd);
	return buf;
}

static void
hostname_print(struct ctl_opts *o, const Keycustody__CustomHostname *h)
{
	const Keycustody__CustomHostnameSsl	*s = h->ssl;
	char					 ts[40], *out;
	size_t					 i;

	if (o->json) {
		if (json_hostname(h, &out) != 0)
			fatalx("out of memory");
		printf("%s\n", out);
		free(out);
		return;
	}
	proto_time_format(h->created_at_us, 0, ts, sizeof(ts));
	printf("id:             %s\n", h->id);
	printf("hostname:       %s\n", h->hostname);
	printf("created_at:     %s\n", ts);
	if (s == NULL)
		return;
	printf("ssl id:         %s\n", s->id);
	printf("status:         %s\n", s->status);
	printf("custom_csr_id:  %s\n", s->custom_csr_id);
	printf("bundle_method:  %s\n", s->bundle_method);
	printf("issuer:         %s\n", s->issuer);
	printf("serial_number:  %s\n", s->serial_number);
	printf("signature:      %s\n", s->signature);
	proto_time_format(s->uploaded_on_us, 1, ts, sizeof(ts));
	printf("uploaded_on:    %s\n", ts);
	proto_time_format(s->expires_on_us, 0, ts, sizeof(ts));
	printf("expires_on:     %s\n", ts);
	for (i = 0; i < s->n_hosts; i++)
		printf("host:           %s\n", s->hosts[i]);
}

/* Send a request whose answer is a hostname, print it. */
static int
hostname_call(struct ctl_opts *o, Keycustody__Request *req)
{
	Keycustody__Response	*resp;
	int			 rc = 0;

	resp = ctl_call(o, req);
	if (resp->error != NULL)
		rc = ctl_error(o, resp->error);
	else if (resp->hostname != NULL)
		hostname_print(o, resp->hostname);
	else
		fatalx("%s: empty answer", proto_request_name(req->body_case));
	keycustody__response__free_unpacked(resp, NULL);
	return rc;
}

int
cmd_hostname_create(struct ctl_opts *o, int argc, char **argv)
{
	enum { O_ZONE = 256, O_HOST, O_CSR, O_CERT, O_BUNDLE };
	static const struct option longopts[] = {
		{ "zone",		required_argument, NULL, O_ZONE },
		{ "hostname",		required_argument, NULL, O_HOST },
		{ "csr",		required_argument, NULL, O_CSR },
		{ "cert",		required_argument, NULL, O_CERT },
		{ "bundle-method",	required_argument, NULL, O_BUNDLE },
		{ NULL, 0, NULL, 0 }
	};
	Keycustody__Request		 req = KEYCUSTODY__REQUEST__INIT;
	Keycustody__CreateHostnameRequest m = KEYCUSTODY__CREATE_HOSTNAME_REQUEST__INIT;
	Keycustody__SslInput		 ssl = KEYCUSTODY__SSL_INPUT__INIT;
	char				*pem = NULL;
	int				 ch, rc;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case O_ZONE: m.zone_id = optarg; break;
		case O_HOST: m.hostname = optarg; break;
		case O_CSR: ssl.custom_csr_id = optarg; break;
		case O_CERT:
			free(pem);
			pem = hostname_read_cert(optarg);
			break;
		case O_BUNDLE: ssl.bundle_method = optarg; break;
		default:
			cmd_usage("hostname", "create");
		}
	}
	if (optind != argc || m.zone_id == NULL)
		cmd_usage("hostname", "create");
	ssl.custom_certificate = pem;
	m.ssl = &ssl;
	req.body_case = KEYCUSTODY__REQUEST__BODY_CREATE_HOSTNAME;
	req.create_hostname = &m;
	rc = hostname_call(o, &req);
	free(pem);
	return rc;
}

int
cmd_hostname_update(struct ctl_opts *o, int argc, char **argv)
{
	enum { O_ZONE = 256, O_CSR, O_CERT, O_BUNDLE };
	static const struct option longopts[] = {
		{ "zone",		required_argument, NULL, O_ZONE },
		{ "csr",		required_argument, NULL, O_CSR },
		{ "cert",		required_argument, NULL, O_CERT },
		{ "bundle-method",	required_argument, NULL, O_BUNDLE },
		{ NULL, 0, NULL, 0 }
	};
	Keycustody__Request		 req = KEYCUSTODY__REQUEST__INIT;
	Keycustody__UpdateHostnameRequest m = KEYCUSTODY__UPDATE_HOSTNAME_REQUEST__INIT;
	Keycustody__SslInput		 ssl = KEYCUSTODY__SSL_INPUT__INIT;
	char				*pem = NULL;
	int				 ch, rc;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case O_ZONE: m.zone_id = optarg; break;
		case O_CSR: ssl.custom_csr_id = optarg; break;
		case O_CERT:
			free(pem);
			pem = hostname_read_cert(optarg);
			break;
		case O_BUNDLE: ssl.bundle_method = optarg; break;
		default:
			cmd_usage("hostname", "update");
		}
	}
	if (optind + 1 != argc || m.zone_id == NULL)
		cmd_usage("hostname", "update");
	m.id = argv[optind];
	ssl.custom_certificate = pem;
	m.ssl = &ssl;
	req.body_case = KEYCUSTODY__REQUEST__BODY_UPDATE_HOSTNAME;
	req.update_hostname = &m;
	rc = hostname_call(o, &req);
	free(pem);
	return rc;
}

int
cmd_hostname_get(struct ctl_opts *o, int argc, char **argv)
{
	Keycustody__Request		 req = KEYCUSTODY__REQUEST__INIT;
	Keycustody__GetHostnameRequest	 m = KEYCUSTODY__GET_HOSTNAME_REQUEST__INIT;
	const char			*zone, *id;

	ctl_zone_id(argc, argv, "hostname", "get", &zone, &id);
	m.zone_id = (char *)zone;
	m.id = (char *)id;
	req.body_case = KEYCUSTODY__REQUEST__BODY_GET_HOSTNAME;
	req.get_hostname = &m;
	return hostname_call(o, &req);
}

int
cmd_hostname_list(struct ctl_opts *o, int argc, char **argv)
{
	enum { O_HOST = CTL_O_MORE, O_CSR };
	static const struct option longopts[] = {
		CTL_LIST_OPTIONS,
		{ "hostname",	required_argument,	NULL, O_HOST },
		{ "csr",	required_argument,	NULL, O_CSR },
		{ NULL, 0, NULL, 0 }
	};
	Keycustody__Request		 req = KEYCUSTODY__REQUEST__INIT;
	Keycustody__ListHostnamesRequest m = KEYCUSTODY__LIST_HOSTNAMES_REQUEST__INIT;
	Keycustody__Response		*resp;
	const Keycustody__ListHostnamesResponse *l;
	char				 ts[32], *s;
	size_t				 i;
	struct ctl_list			 lo = { NULL, 0, 0, 0, 0, 0 };
	int				 ch, rc = 0;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (ctl_list_flag(&lo, ch, optarg))
			continue;
		switch (ch) {
		case O_HOST:
			m.hostname = optarg;
			break;
		case O_CSR:
			m.custom_csr_id = optarg;
			break;
		default:
			cmd_usage("hostname", "list");
		}
	}
	m.zone_id = (char *)lo.zone;
	m.has_page = lo.has_page;
	m.page = lo.page;
	m.has_per_page = lo.has_per_page;
	m.per_page = lo.per_page;
	m.has_descending = m.descending = lo.desc;
	if (optind != argc || m.zone_id == NULL)
		cmd_usage("hostname", "list");
	req.body_case = KEYCUSTODY__REQUEST__BODY_LIST_HOSTNAMES;
	req.list_hostnames = &m;
	resp = ctl_call(o, &req);
	if (resp->error != NULL)
		rc = ctl_error(o, resp->error);
	else if ((l = resp->list_hostnames) == NULL)
		fatalx("list: empty answer");
	else if (o->json) {
		if (json_hostname_list(l, &s) != 0)
			fatalx("out of memory");
		printf("%s\n", s);
		free(s);
	} else {
		printf("%-36s  %-20s  %-8s  %s\n", "ID", "EXPIRES", "STATUS", "HOSTNAME");
		for (i = 0; i < l->n_hostnames; i++) {
			proto_time_format(l->hostnames[i]->ssl->expires_on_us, 0, ts, sizeof(ts));
			printf("%-36s  %-20s  %-8s  %s\n", l->hostnames[i]->id, ts,
			    l->hostnames[i]->ssl->status, l->hostnames[i]->hostname);
		}
		printf("page %u, %zu shown, %llu in all\n", l->page, l->n_hostnames,
		    (unsigned long long)l->total_count);
	}
	keycustody__response__free_unpacked(resp, NULL);
	return rc;
}

int
cmd_hostname_delete(struct ctl_opts *o, int argc, char **argv)
{
	Keycustody__Request		 req = KEYCUSTODY__REQUEST__INIT;
	Keycustody__DeleteHostnameRequest m = KEYCUSTODY__DELETE_HOSTNAME_REQUEST__INIT;
	Keycustody__Response		*resp;
	const char			*zone, *id;
	int				 rc = 0;

	ctl_zone_id(argc, argv, "hostname", "delete", &zone, &id);
	m.zone_id = (char *)zone;
	m.id = (char *)id;
	req.body_case = KEYCUSTODY__REQUEST__BODY_DELETE_HOSTNAME;
	req.delete_hostname = &m;
	resp = ctl_call(o, &req);
	if (resp->error != NULL)
		rc = ctl_error(o, resp->error);
	else if (resp->delete_hostname != NULL)
		ctl_print_deleted(o, resp->delete_hostname->id);
	keycustody__response__free_unpacked(resp, NULL);
	return rc;
}
