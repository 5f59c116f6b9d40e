/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * keycustody-bench.c: the load generator: N closed-loop clients against keycustodyd's socket
 * (libkeycustody's async pool) or keycustody-http (evhttp keep-alive, Bearer token), making
 * CSRs, listing, getting and deleting them and uploading a certificate for one to a new
 * custom hostname (signed here by a given CA); reports throughput, latency percentiles,
 * errors by kind and the RSS and CPU of given processes, as a table and one BENCH key=value
 * line.
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/time.h>

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "kc-err.h"
#include "keycustody.h"

#define BENCH_NOPS	5
#define BENCH_MAXERR	32
#define BENCH_MAXPID	8
#define BENCH_MAXIDS	4096

enum bench_op { OP_CREATE, OP_LIST, OP_GET, OP_DELETE, OP_UPLOAD };
static const char *const bench_opname[BENCH_NOPS] = { "create", "list", "get", "delete",
    "upload" };

/*
 * A CSR this run made and still owns: deletes and uploads each take one (so no two requests
 * race for a CSR); its PEM is kept for the certificate an upload signs.
 */
struct bench_csr {
	char		*id;
	char		*pem;
};

struct bench_lat {
	uint32_t	*v;		/* microseconds */
	size_t		 n, cap;
};

struct bench_err {
	char		 kind[48];
	unsigned long	 n;
};

struct bench_pid {
	const char	*name;
	long		 pid;
	long		 before_kb, after_kb;
	double		 cpu_before, cpu_after;	/* seconds of CPU, user + system */
};

struct bench;

struct bench_client {
	struct bench			*b;
	struct evhttp_connection	*evcon;
	enum bench_op			 op;
	struct bench_csr		 taken;	/* the CSR a delete or upload uses */
	char				*cert;	/* an upload's certificate, PEM */
	char				 host[128];	/* and its hostname */
	double				 t0;
	int				 idle;	/* its last send was refused */
	int				 deleter;	/* -x: deletes only, from the pool */
};

struct bench {
	struct event_base	*base;
	struct kcc_async	*async;		/* unix mode */
	const char		*socket;
	const char		*url;		/* http mode: http://host:port */
	char			 host[256];
	int			 port;
	const char		*token;
	const char		*zone;
	const char		*keytype;
	unsigned int		 nconn;		/* including the deleters */
	unsigned int		 ndeleters;
	unsigned int		 weight[BENCH_NOPS];
	unsigned int		 wsum;
	unsigned long		 count;		/* 0: run for secs */
	double			 secs;
	unsigned int		 per_page;
	unsigned long		 issued, finished;
	double			 t_start, t_end;
	int			 stopping;
	struct bench_client	*clients;
	struct bench_lat	 lat[BENCH_NOPS];
	unsigned long		 errs[BENCH_NOPS];
	struct bench_err	 errkinds[BENCH_MAXERR];
	size_t			 nerrkinds;
	char			*ids[BENCH_MAXIDS];
	size_t			 nids;
	size_t			 idnext;
	struct bench_csr	*pool;		/* CSRs for deletes and uploads */
	size_t			 npool, cappool;
	int			 consuming;	/* the mix deletes or uploads */
	int			 in_prefill;
	unsigned long		 prefill;	/* CSRs made, untimed, before the run */
	int			 from_list;	/* -L: the pool is the zone's CSRs */
	unsigned int		 list_page;
	int			 list_failed;
	EVP_PKEY		*ca_key;	/* uploads: the issuer */
	X509			*ca_cert;
	unsigned long		 nhost;
	struct bench_pid	 pids[BENCH_MAXPID];
	size_t			 npids;
	char			*create_body;
	unsigned long		 rng;
	struct event		*tick;
	unsigned int		 ticks;
	const char		*tag;
	double			 cpu_before, cpu_after;	/* this process's */
};

static void	bench_next(struct bench_client *);

static double
bench_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* CPU seconds (user + system) that process pid has used so far; -1 if unknown. */
static double
bench_cpu_s(long pid)
{
	char		 path[64], buf[1024], *p;
	unsigned long	 ut, st;
	long		 hz = sysconf(_SC_CLK_TCK);
	FILE		*fp;
	size_t		 n;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if (hz <= 0 || (fp = fopen(path, "r")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	/* After the command name, in parentheses that it may itself contain: fields 3 on. */
	if ((p = strrchr(buf, ')')) == NULL || sscanf(p + 1,
	    " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)hz;
}

/* This process's own CPU seconds. */
static double
bench_self_cpu_s(void)
{
	struct rusage	ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return -1;
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	    ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void
bench_usage(void)
{
	fprintf(stderr, "usage: keycustody-bench (-s socket | -u http://host:port -a token)"
	    " [-c conns] [-d secs | -n count]\n\t[-k keytype]"
	    " [-m create=W,list=W,get=W,delete=W,upload=W] [-F prefill | -L] [-x deleters]\n"
	    "\t[-C ca-cert -K ca-key]"
	    " [-P per-page] [-p name=pid]... [-T tag] [-z zone]\n");
	exit(2);
}

static long
bench_rss_kb(long pid)
{
	char	 path[64], line[256];
	FILE	*fp;
	long	 kb = -1;

	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	if ((fp = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), fp) != NULL)
		if (strncmp(line, "VmRSS:", 6) == 0) {
			kb = strtol(line + 6, NULL, 10);
			break;
		}
	fclose(fp);
	return kb;
}

static void
bench_error(struct bench *b, enum bench_op op, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Count an error of this kind ("http:503", "daemon:5/1405", "transport:timeout"). */
static void
bench_error(struct bench *b, enum bench_op op, const char *fmt, ...)
{
	char	 kind[48];
	va_list	 ap;
	size_t	 i;

	va_start(ap, fmt);
	vsnprintf(kind, sizeof(kind), fmt, ap);
	va_end(ap);
	b->errs[op]++;
	for (i = 0; i < b->nerrkinds; i++)
		if (strcmp(b->errkinds[i].kind, kind) == 0)
			break;
	if (i == b->nerrkinds) {
		if (b->nerrkinds == BENCH_MAXERR)
			i = BENCH_MAXERR - 1;
		else
			snprintf(b->errkinds[b->nerrkinds++].kind, sizeof(kind), "%s", kind);
	}
	b->errkinds[i].n++;
}

static void
bench_lat_add(struct bench_lat *l, double secs)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 4096;
		if ((l->v = realloc(l->v, l->cap * sizeof(*l->v))) == NULL) {
			fprintf(stderr, "keycustody-bench: out of memory\n");
			exit(1);
		}
	}
	l->v[l->n++] = (uint32_t)(secs * 1e6 + 0.5);
}

/* Keep an id for later gets: a ring of the most recent BENCH_MAXIDS. */
static void
bench_id_add(struct bench *b, const char *id)
{
	size_t	 i;

	if (b->nids < BENCH_MAXIDS)
		i = b->nids++;
	else {
		i = b->idnext++ % BENCH_MAXIDS;
		free(b->ids[i]);
	}
	if ((b->ids[i] = strdup(id)) == NULL)
		exit(1);
}

static void
bench_pool_add(struct bench *b, const char *id, const char *pem)
{
	struct bench_csr	*p;

	if (b->npool == b->cappool) {
		b->cappool = b->cappool ? b->cappool * 2 : 1024;
		if ((p = realloc(b->pool, b->cappool * sizeof(*p))) == NULL)
			exit(1);
		b->pool = p;
	}
	p = &b->pool[b->npool++];
	p->pem = NULL;
	if ((p->id = strdup(id)) == NULL ||
	    (b->weight[OP_UPLOAD] > 0 && (p->pem = strdup(pem != NULL ? pem : "")) == NULL))
		exit(1);
}

/* A new CSR: a delete or upload takes it from the pool; else gets may read it. */
static void
bench_created(struct bench *b, const char *id, const char *pem)
{
	/* Of a prefill, every fourth CSR is kept for gets, which never see it go. */
	if (b->consuming && (!b->in_prefill || b->weight[OP_GET] == 0 ||
	    b->nids == BENCH_MAXIDS || b->finished % 4 != 0))
		bench_pool_add(b, id, pem);
	else
		bench_id_add(b, id);
}

/* Take a random CSR out of the pool; 0 if it is empty. */
static int
bench_pool_take(struct bench *b, struct bench_csr *out)
{
	size_t	 i;

	if (b->npool == 0)
		return 0;
	b->rng = b->rng * 6364136223846793005UL + 1442695040888963407UL;
	i = (b->rng >> 33) % b->npool;
	*out = b->pool[i];
	b->pool[i] = b->pool[--b->npool];
	return 1;
}

static void
bench_csr_clear(struct bench_csr *c)
{
	free(c->id);
	free(c->pem);
	c->id = c->pem = NULL;
}

static const char *
bench_id_pick(struct bench *b)
{
	if (b->nids == 0)
		return NULL;
	b->rng = b->rng * 6364136223846793005UL + 1442695040888963407UL;
	return b->ids[(b->rng >> 33) % b->nids];
}

static enum bench_op
bench_pick_op(struct bench *b)
{
	unsigned int	 x, i;

	if (b->in_prefill)
		return OP_CREATE;
	b->rng = b->rng * 6364136223846793005UL + 1442695040888963407UL;
	x = (unsigned int)((b->rng >> 33) % b->wsum);
	for (i = 0; i < BENCH_NOPS; i++) {
		if (x < b->weight[i])
			return (enum bench_op)i;
		x -= b->weight[i];
	}
	return OP_CREATE;
}

/*
 * A leaf for the CSR's key covering host, issued by the -C/-K CA: what a CA would return for
 * the CSR. Returns a malloc'd PEM, or NULL.
 */
static char *
bench_sign(struct bench *b, const char *csr_pem, const char *host)
{
	X509_REQ	*req = NULL;
	X509		*x = NULL;
	EVP_PKEY	*pub;
	BIO		*bio = NULL;
	BIGNUM		*serial = NULL;
	X509V3_CTX	 v3;
	X509_EXTENSION	*ext;
	char		 san[300], *pem = NULL;
	const char	*const exts[][2] = {
		{ "basicConstraints", "critical,CA:FALSE" },
		{ "keyUsage", "critical,digitalSignature" },
		{ "extendedKeyUsage", "serverAuth" },
		{ "subjectAltName", san },
	};
	size_t		 i;
	long		 len;
	char		*data;

	snprintf(san, sizeof(san), "DNS:%s", host);
	if ((bio = BIO_new_mem_buf(csr_pem, -1)) == NULL ||
	    (req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL)) == NULL ||
	    (pub = X509_REQ_get0_pubkey(req)) == NULL || (x = X509_new()) == NULL ||
	    (serial = BN_new()) == NULL || !BN_rand(serial, 96, BN_RAND_TOP_ANY,
	    BN_RAND_BOTTOM_ANY) || BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) == NULL ||
	    !X509_set_version(x, X509_VERSION_3) ||
	    !X509_set_issuer_name(x, X509_get_subject_name(b->ca_cert)) ||
	    !X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	    (const unsigned char *)host, -1, -1, 0) ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), 90L * 86400) == NULL ||
	    !X509_set_pubkey(x, pub))
		goto out;
	X509V3_set_ctx(&v3, b->ca_cert, x, NULL, NULL, 0);
	for (i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
		if ((ext = X509V3_EXT_conf(NULL, &v3, exts[i][0], exts[i][1])) == NULL)
			goto out;
		if (!X509_add_ext(x, ext, -1)) {
			X509_EXTENSION_free(ext);
			goto out;
		}
		X509_EXTENSION_free(ext);
	}
	if (!X509_sign(x, b->ca_key, EVP_sha256()))
		goto out;
	BIO_free(bio);
	if ((bio = BIO_new(BIO_s_mem())) == NULL || !PEM_write_bio_X509(bio, x) ||
	    (len = BIO_get_mem_data(bio, &data)) <= 0 || (pem = malloc((size_t)len + 1)) == NULL)
		goto out;
	memcpy(pem, data, (size_t)len);
	pem[len] = '\0';
 out:
	BN_free(serial);
	X509_free(x);
	X509_REQ_free(req);
	BIO_free(bio);
	return pem;
}

/* Load the CA that signs the uploads' certificates. */
static void
bench_load_ca(struct bench *b, const char *cert, const char *key)
{
	FILE	*fp;

	if ((fp = fopen(cert, "r")) == NULL ||
	    (b->ca_cert = PEM_read_X509(fp, NULL, NULL, NULL)) == NULL) {
		fprintf(stderr, "keycustody-bench: %s: cannot read a certificate\n", cert);
		exit(1);
	}
	fclose(fp);
	if ((fp = fopen(key, "r")) == NULL ||
	    (b->ca_key = PEM_read_PrivateKey(fp, NULL, NULL, NULL)) == NULL) {
		fprintf(stderr, "keycustody-bench: %s: cannot read a private key\n", key);
		exit(1);
	}
	fclose(fp);
}

/* The next upload's hostname: unique to this process. */
static void
bench_hostname(struct bench *b, char *buf, size_t len)
{
	snprintf(buf, len, "b%ld-%lu.acme-corp.co.uk", (long)getpid(), ++b->nhost);
}

/* Whether to start another request: false once the time or count is used up. */
static int
bench_more(struct bench *b)
{
	if (b->stopping)
		return 0;
	if (b->count > 0)
		return b->issued < b->count;
	return bench_now() - b->t_start < b->secs;
}

static void
bench_wake_deleter(struct bench *b)
{
	unsigned int	 i;

	for (i = 0; i < b->nconn; i++)
		if (b->clients[i].deleter && b->clients[i].idle && bench_more(b)) {
			b->clients[i].idle = 0;
			bench_next(&b->clients[i]);
			return;
		}
}

static void
bench_finished(struct bench_client *cl, int ok)
{
	struct bench	*b = cl->b;

	if (ok)
		bench_lat_add(&b->lat[cl->op], bench_now() - cl->t0);
	bench_csr_clear(&cl->taken);
	free(cl->cert);
	cl->cert = NULL;
	b->finished++;
	/* A new CSR for an idle deleter: wake one now rather than at the next tick. */
	if (ok && cl->op == OP_CREATE && b->ndeleters > 0 && !b->in_prefill)
		bench_wake_deleter(b);
	if (bench_more(b))
		bench_next(cl);
	else if (b->finished == b->issued) {
		b->t_end = bench_now();
		event_base_loopexit(b->base, NULL);
	}
}

/* --- the daemon's socket --- */

static void
bench_unix_cb(int r, Keycustody__Response *resp, void *arg)
{
	struct bench_client	*cl = arg;
	struct bench		*b = cl->b;
	size_t			 i;
	int			 ok = 0;

	if (r != 0)
		bench_error(b, cl->op, "transport:%s", kc_strerror(r));
	else if (resp->error != NULL)
		bench_error(b, cl->op, "daemon:%d/%u", (int)resp->error->status,
		    resp->error->code);
	else {
		ok = 1;
		if (resp->body_case == KEYCUSTODY__RESPONSE__BODY_CSR && cl->op == OP_CREATE)
			bench_created(b, resp->csr->id, resp->csr->csr);
		else if (resp->body_case == KEYCUSTODY__RESPONSE__BODY_LIST_CSRS &&
		    !b->consuming && b->nids < BENCH_MAXIDS)
			for (i = 0; i < resp->list_csrs->n_csrs; i++)
				bench_id_add(b, resp->list_csrs->csrs[i]->id);
	}
	bench_finished(cl, ok);
}

static char bench_san1[] = "app.acme-corp.co.uk", bench_san2[] = "www.acme-corp.co.uk",
    bench_san3[] = "blog.acme-corp.co.uk", bench_san4[] = "acme-corp.co.uk";
static char *bench_sans[] = { bench_san1, bench_san2, bench_san3, bench_san4 };

static int
bench_unix_send(struct bench_client *cl)
{
	struct bench			*b = cl->b;
	Keycustody__Request		 req = KEYCUSTODY__REQUEST__INIT;
	Keycustody__CreateCsrRequest	 cr = KEYCUSTODY__CREATE_CSR_REQUEST__INIT;
	Keycustody__ListCsrsRequest	 lr = KEYCUSTODY__LIST_CSRS_REQUEST__INIT;
	Keycustody__GetCsrRequest	 gr = KEYCUSTODY__GET_CSR_REQUEST__INIT;
	Keycustody__DeleteCsrRequest	 dr = KEYCUSTODY__DELETE_CSR_REQUEST__INIT;
	Keycustody__CreateHostnameRequest hr = KEYCUSTODY__CREATE_HOSTNAME_REQUEST__INIT;
	Keycustody__SslInput		 ssl = KEYCUSTODY__SSL_INPUT__INIT;

	switch (cl->op) {
	case OP_CREATE:
		cr.zone_id = (char *)b->zone;
		cr.country = (char *)"US";
		cr.state = (char *)"MA";
		cr.locality = (char *)"Boston";
		cr.organization = (char *)"City of Boston";
		cr.organizational_unit = (char *)"Championship Parade Detail";
		cr.common_name = (char *)"app.acme-corp.co.uk";
		cr.sans = bench_sans;
		cr.n_sans = sizeof(bench_sans) / sizeof(bench_sans[0]);
		cr.key_type = (char *)b->keytype;
		req.body_case = KEYCUSTODY__REQUEST__BODY_CREATE_CSR;
		req.create_csr = &cr;
		break;
	case OP_LIST:
		lr.zone_id = (char *)b->zone;
		lr.has_per_page = 1;
		lr.per_page = b->per_page;
		req.body_case = KEYCUSTODY__REQUEST__BODY_LIST_CSRS;
		req.list_csrs = &lr;
		break;
	case OP_GET:
		gr.zone_id = (char *)b->zone;
		gr.id = (char *)bench_id_pick(b);
		req.body_case = KEYCUSTODY__REQUEST__BODY_GET_CSR;
		req.get_csr = &gr;
		break;
	case OP_DELETE:
		dr.zone_id = (char *)b->zone;
		dr.id = cl->taken.id;
		req.body_case = KEYCUSTODY__REQUEST__BODY_DELETE_CSR;
		req.delete_csr = &dr;
		break;
	case OP_UPLOAD:
		hr.zone_id = (char *)b->zone;
		hr.hostname = cl->host;
		ssl.custom_csr_id = cl->taken.id;
		ssl.custom_certificate = cl->cert;
		hr.ssl = &ssl;
		req.body_case = KEYCUSTODY__REQUEST__BODY_CREATE_HOSTNAME;
		req.create_hostname = &hr;
		break;
	}
	return kcc_async_call(b->async, &req, bench_unix_cb, cl);
}

/* --- HTTP --- */

/* Collect ids from a create (result object) or list (result array) answer. */
static void
bench_http_ids(struct bench *b, struct evbuffer *in)
{
	json_t		*root, *res, *v;
	size_t		 i, len = evbuffer_get_length(in);
	const char	*id;

	if ((root = json_loadb((const char *)evbuffer_pullup(in, -1), len, 0, NULL)) == NULL)
		return;
	res = json_object_get(root, "result");
	if (json_is_object(res)) {
		if ((id = json_string_value(json_object_get(res, "id"))) != NULL)
			bench_created(b, id, json_string_value(json_object_get(res, "csr")));
	} else if (json_is_array(res) && b->nids < BENCH_MAXIDS) {
		json_array_foreach(res, i, v)
			if ((id = json_string_value(json_object_get(v, "id"))) != NULL)
				bench_id_add(b, id);
	}
	json_decref(root);
}

static void
bench_http_cb(struct evhttp_request *req, void *arg)
{
	struct bench_client	*cl = arg;
	struct bench		*b = cl->b;
	int			 code, ok = 0;

	if (req == NULL || (code = evhttp_request_get_response_code(req)) == 0)
		bench_error(b, cl->op, "http:connection");
	else if (code != 200 && code != 201)
		bench_error(b, cl->op, "http:%d", code);
	else {
		ok = 1;
		if (cl->op == OP_CREATE || (cl->op == OP_LIST && !b->consuming &&
		    b->nids < BENCH_MAXIDS))
			bench_http_ids(b, evhttp_request_get_input_buffer(req));
		else
			evbuffer_drain(evhttp_request_get_input_buffer(req),
			    evbuffer_get_length(evhttp_request_get_input_buffer(req)));
	}
	bench_finished(cl, ok);
}

static int
bench_http_send(struct bench_client *cl)
{
	struct bench		*b = cl->b;
	struct evhttp_request	*req;
	struct evkeyvalq	*h;
	enum evhttp_cmd_type	 method = EVHTTP_REQ_GET;
	char			 path[512], auth[512], *body;
	json_t			*j;

	if ((req = evhttp_request_new(bench_http_cb, cl)) == NULL)
		return KC_ERR_NOMEM;
	h = evhttp_request_get_output_headers(req);
	snprintf(auth, sizeof(auth), "Bearer %s", b->token);
	evhttp_add_header(h, "Host", b->host);
	evhttp_add_header(h, "Authorization", auth);
	switch (cl->op) {
	case OP_CREATE:
		method = EVHTTP_REQ_POST;
		snprintf(path, sizeof(path), "/client/v4/zones/%s/custom_csrs", b->zone);
		evhttp_add_header(h, "Content-Type", "application/json");
		evbuffer_add(evhttp_request_get_output_buffer(req), b->create_body,
		    strlen(b->create_body));
		break;
	case OP_LIST:
		snprintf(path, sizeof(path), "/client/v4/zones/%s/custom_csrs?per_page=%u",
		    b->zone, b->per_page);
		break;
	case OP_GET:
		snprintf(path, sizeof(path), "/client/v4/zones/%s/custom_csrs/%s", b->zone,
		    bench_id_pick(b));
		break;
	case OP_DELETE:
		method = EVHTTP_REQ_DELETE;
		snprintf(path, sizeof(path), "/client/v4/zones/%s/custom_csrs/%s", b->zone,
		    cl->taken.id);
		break;
	case OP_UPLOAD:
		method = EVHTTP_REQ_POST;
		snprintf(path, sizeof(path), "/client/v4/zones/%s/custom_hostnames", b->zone);
		evhttp_add_header(h, "Content-Type", "application/json");
		j = json_pack("{s:s,s:{s:s,s:s}}", "hostname", cl->host, "ssl", "custom_csr_id",
		    cl->taken.id, "custom_certificate", cl->cert);
		if (j == NULL || (body = json_dumps(j, JSON_COMPACT)) == NULL) {
			json_decref(j);
			evhttp_request_free(req);
			return KC_ERR_NOMEM;
		}
		json_decref(j);
		evbuffer_add(evhttp_request_get_output_buffer(req), body, strlen(body));
		free(body);
		break;
	}
	if (evhttp_make_request(cl->evcon, req, method, path) != 0)
		return KC_ERR_IO;	/* req was freed */
	return 0;
}

/* Start the client's next request, or count it failed and retry on the next tick. */
static void
bench_next(struct bench_client *cl)
{
	struct bench	*b = cl->b;
	int		 r;

	if (cl->deleter && !b->in_prefill) {
		/* Nothing to delete yet: wait for a create (or the next tick). */
		if (!bench_pool_take(b, &cl->taken)) {
			cl->idle = 1;
			return;
		}
		cl->op = OP_DELETE;
		goto send;
	}
	cl->op = bench_pick_op(b);
	if (cl->op == OP_GET && b->nids == 0)
		cl->op = b->weight[OP_LIST] > 0 ? OP_LIST : OP_CREATE;
	/* A delete or upload with no CSR of ours left makes one instead. */
	if ((cl->op == OP_DELETE || cl->op == OP_UPLOAD) && !bench_pool_take(b, &cl->taken))
		cl->op = OP_CREATE;
	if (cl->op == OP_UPLOAD) {
		bench_hostname(b, cl->host, sizeof(cl->host));
		if ((cl->cert = bench_sign(b, cl->taken.pem, cl->host)) == NULL) {
			fprintf(stderr, "keycustody-bench: cannot sign a certificate\n");
			exit(1);
		}
	}
 send:
	cl->t0 = bench_now();
	b->issued++;
	r = b->async != NULL ? bench_unix_send(cl) : bench_http_send(cl);
	if (r != 0) {
		/* A refused send is immediate: back off one tick rather than spin. */
		bench_error(b, cl->op, "send:%s", kc_strerror(r));
		bench_csr_clear(&cl->taken);
		free(cl->cert);
		cl->cert = NULL;
		b->finished++;
		cl->idle = 1;
	}
}

/* Every 100 ms: restart clients whose send was refused, until the run ends. */
static void
bench_tick(evutil_socket_t fd, short ev, void *arg)
{
	struct bench	*b = arg;
	unsigned int	 i;

	(void)fd;
	(void)ev;
	if (b->async != NULL && b->t_start == 0) {
		/* Waiting for the pool to connect, at most 10 s. */
		if ((unsigned int)kcc_async_connected(b->async) < b->nconn &&
		    ++b->ticks < 100)
			return;
		event_base_loopbreak(b->base);
		return;
	}
	for (i = 0; i < b->nconn; i++) {
		if (b->clients[i].idle && bench_more(b)) {
			b->clients[i].idle = 0;
			bench_next(&b->clients[i]);
		}
	}
	if (b->t_start > 0 && !bench_more(b) && b->finished == b->issued) {
		b->t_end = bench_now();
		event_base_loopexit(b->base, NULL);
	}
}

static int
bench_cmp_u32(const void *a, const void *b)
{
	uint32_t	x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static double
bench_pct(const struct bench_lat *l, double p)
{
	size_t	i;

	if (l->n == 0)
		return 0;
	i = (size_t)(p * (double)(l->n - 1) + 0.5);
	return l->v[i] / 1e3;
}

static void
bench_parse_mix(struct bench *b, const char *s)
{
	char	*dup, *tok, *save = NULL, *eq, *end;
	int	 i;


	memset(b->weight, 0, sizeof(b->weight));
	if ((dup = strdup(s)) == NULL)
		exit(1);
	for (tok = strtok_r(dup, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		if ((eq = strchr(tok, '=')) != NULL)
			*eq++ = '\0';
		for (i = 0; i < BENCH_NOPS; i++)
			if (strcmp(tok, bench_opname[i]) == 0)
				break;
		if (i == BENCH_NOPS)
			bench_usage();
		b->weight[i] = eq != NULL ? (unsigned int)strtoul(eq, &end, 10) : 1;
		if (eq != NULL && *end != '\0')
			bench_usage();
	}
	free(dup);
	for (b->wsum = 0, i = 0; i < BENCH_NOPS; i++)
		b->wsum += b->weight[i];
	if (b->wsum == 0)
		bench_usage();
	b->consuming = b->weight[OP_DELETE] > 0 || b->weight[OP_UPLOAD] > 0;
}

static void
bench_parse_url(struct bench *b)
{
	const char	*p = b->url, *colon;

	if (strncmp(p, "http://", 7) != 0)
		bench_usage();
	p += 7;
	if ((colon = strchr(p, ':')) == NULL || (size_t)(colon - p) >= sizeof(b->host))
		bench_usage();
	memcpy(b->host, p, (size_t)(colon - p));
	b->host[colon - p] = '\0';
	b->port = atoi(colon + 1);
	if (b->port <= 0 || b->port > 65535)
		bench_usage();
}

static void	bench_listall_cb(int, Keycustody__Response *, void *);

/* Ask for the next page of the zone's CSRs (50 a page); ends the loop on failure. */
static void
bench_list_page(struct bench *b)
{
	Keycustody__Request		 req = KEYCUSTODY__REQUEST__INIT;
	Keycustody__ListCsrsRequest	 lr = KEYCUSTODY__LIST_CSRS_REQUEST__INIT;

	lr.zone_id = (char *)b->zone;
	lr.has_page = lr.has_per_page = 1;
	lr.page = ++b->list_page;
	lr.per_page = 50;
	req.body_case = KEYCUSTODY__REQUEST__BODY_LIST_CSRS;
	req.list_csrs = &lr;
	if (kcc_async_call(b->async, &req, bench_listall_cb, b) != 0) {
		b->list_failed = 1;
		event_base_loopexit(b->base, NULL);
	}
}

/* One page into the pool (and the gets' ring); then the next, until the last. */
static void
bench_listall_cb(int r, Keycustody__Response *resp, void *arg)
{
	struct bench	*b = arg;
	size_t		 i;

	if (r != 0 || resp->error != NULL ||
	    resp->body_case != KEYCUSTODY__RESPONSE__BODY_LIST_CSRS) {
		b->list_failed = 1;
		event_base_loopexit(b->base, NULL);
		return;
	}
	for (i = 0; i < resp->list_csrs->n_csrs; i++) {
		bench_pool_add(b, resp->list_csrs->csrs[i]->id, resp->list_csrs->csrs[i]->csr);
		if (b->nids < BENCH_MAXIDS)
			bench_id_add(b, resp->list_csrs->csrs[i]->id);
	}
	if ((uint64_t)b->list_page * 50 >= resp->list_csrs->total_count ||
	    resp->list_csrs->n_csrs == 0)
		event_base_loopexit(b->base, NULL);
	else
		bench_list_page(b);
}

/*
 * -L: every CSR of the zone, listed page by page (untimed), is the pool of the deletes and
 * uploads and the ids of the gets: a run can delete what an earlier one made.
 */
static int
bench_listall(struct bench *b)
{
	b->list_page = 0;
	bench_list_page(b);
	if (!b->list_failed)
		event_base_dispatch(b->base);
	if (b->list_failed) {
		fprintf(stderr, "keycustody-bench: listing the zone's CSRs failed\n");
		return -1;
	}
	fprintf(stderr, "keycustody-bench: listed %zu CSRs\n", b->npool);
	return 0;
}

/*
 * Make b->prefill CSRs, untimed, for the deletes and uploads (and, one in four, the gets) of
 * the run that follows; its errors fail the run before it starts.
 */
static int
bench_prefill(struct bench *b)
{
	unsigned long	 count = b->count;
	unsigned int	 i;

	b->count = b->prefill;
	b->in_prefill = 1;
	b->t_start = bench_now();
	for (i = 0; i < b->nconn && bench_more(b); i++)
		bench_next(&b->clients[i]);
	event_base_dispatch(b->base);
	b->in_prefill = 0;
	if (b->errs[OP_CREATE] > 0) {
		fprintf(stderr, "keycustody-bench: prefill: %lu of %lu creates failed\n",
		    b->errs[OP_CREATE], b->prefill);
		return -1;
	}
	fprintf(stderr, "keycustody-bench: prefill: %lu CSRs in %.2f s\n", b->prefill,
	    bench_now() - b->t_start);
	b->count = count;
	b->issued = b->finished = 0;
	b->t_start = b->t_end = 0;
	free(b->lat[OP_CREATE].v);
	memset(&b->lat[OP_CREATE], 0, sizeof(b->lat[OP_CREATE]));
	return 0;
}

static void
bench_report(struct bench *b)
{
	struct bench_lat	 all;
	unsigned long		 ok = 0, err = 0;
	double			 el = b->t_end - b->t_start;
	size_t			 i, j;
	int			 op;

	memset(&all, 0, sizeof(all));
	printf("keycustody-bench: %s %s, %u connection(s), key %s, %.2f s\n",
	    b->async != NULL ? "socket" : "http", b->async != NULL ? b->socket : b->url,
	    b->nconn, b->keytype, el);
	printf("%-8s %9s %7s %10s %8s %8s %8s %8s\n", "op", "ok", "errors", "rate/s",
	    "p50 ms", "p90 ms", "p99 ms", "max ms");
	for (op = 0; op < BENCH_NOPS; op++) {
		struct bench_lat *l = &b->lat[op];

		if (l->n == 0 && b->errs[op] == 0)
			continue;
		if (l->n > 0)
			qsort(l->v, l->n, sizeof(*l->v), bench_cmp_u32);
		for (j = 0; j < l->n; j++)
			bench_lat_add(&all, l->v[j] / 1e6);
		ok += l->n;
		err += b->errs[op];
		printf("%-8s %9zu %7lu %10.1f %8.2f %8.2f %8.2f %8.2f\n", bench_opname[op], l->n,
		    b->errs[op], l->n / el, bench_pct(l, 0.5), bench_pct(l, 0.9),
		    bench_pct(l, 0.99), l->n ? l->v[l->n - 1] / 1e3 : 0.0);
	}
	if (all.n > 0)
		qsort(all.v, all.n, sizeof(*all.v), bench_cmp_u32);
	printf("%-8s %9zu %7lu %10.1f %8.2f %8.2f %8.2f %8.2f\n", "all", all.n, err,
	    all.n / el, bench_pct(&all, 0.5), bench_pct(&all, 0.9), bench_pct(&all, 0.99),
	    all.n ? all.v[all.n - 1] / 1e3 : 0.0);
	for (i = 0; i < b->nerrkinds; i++)
		printf("error %-24s %lu\n", b->errkinds[i].kind, b->errkinds[i].n);
	for (i = 0; i < b->npids; i++)
		printf("rss %-8s pid %ld: %ld kB -> %ld kB (%+.1f%%)\n", b->pids[i].name,
		    b->pids[i].pid, b->pids[i].before_kb, b->pids[i].after_kb,
		    b->pids[i].before_kb > 0 ? 100.0 * (b->pids[i].after_kb -
		    b->pids[i].before_kb) / b->pids[i].before_kb : 0.0);
	/*
	 * CPU per request, from /proc (clock ticks): what a process costs whatever else runs
	 * on the machine, so it compares across runs where the rate, on shared cores, cannot.
	 */
	for (i = 0; i < b->npids; i++)
		if (b->pids[i].cpu_before >= 0 && b->pids[i].cpu_after >= 0 && all.n > 0)
			printf("cpu %-8s %.3f core(s), %.1f us per request\n", b->pids[i].name,
			    (b->pids[i].cpu_after - b->pids[i].cpu_before) / el,
			    (b->pids[i].cpu_after - b->pids[i].cpu_before) * 1e6 / all.n);
	if (all.n > 0)
		printf("cpu %-8s %.3f core(s), %.1f us per request\n", "bench",
		    (b->cpu_after - b->cpu_before) / el,
		    (b->cpu_after - b->cpu_before) * 1e6 / all.n);

	printf("BENCH tag=%s mode=%s conns=%u deleters=%u key=%s "
	    "mix=create:%u,list:%u,get:%u,delete:%u,upload:%u prefill=%lu secs=%.3f ok=%lu "
	    "errors=%lu rate=%.2f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f",
	    b->tag, b->async != NULL ? "socket" : "http", b->nconn - b->ndeleters,
	    b->ndeleters, b->keytype, b->weight[OP_CREATE], b->weight[OP_LIST],
	    b->weight[OP_GET], b->weight[OP_DELETE], b->weight[OP_UPLOAD], b->prefill, el, ok,
	    err,
	    all.n / el, bench_pct(&all, 0.5), bench_pct(&all, 0.9), bench_pct(&all, 0.99),
	    all.n ? all.v[all.n - 1] / 1e3 : 0.0);
	for (op = 0; op < BENCH_NOPS; op++)
		if (b->lat[op].n > 0)
			printf(" %s_rate=%.2f %s_p50_ms=%.3f %s_p99_ms=%.3f", bench_opname[op],
			    b->lat[op].n / el, bench_opname[op], bench_pct(&b->lat[op], 0.5),
			    bench_opname[op], bench_pct(&b->lat[op], 0.99));
	for (i = 0; i < b->npids; i++)
		printf(" rss_%s_before_kb=%ld rss_%s_after_kb=%ld", b->pids[i].name,
		    b->pids[i].before_kb, b->pids[i].name, b->pids[i].after_kb);
	for (i = 0; i < b->npids; i++)
		if (b->pids[i].cpu_before >= 0 && b->pids[i].cpu_after >= 0 && all.n > 0)
			printf(" cpu_%s_us=%.1f", b->pids[i].name,
			    (b->pids[i].cpu_after - b->pids[i].cpu_before) * 1e6 / all.n);
	if (all.n > 0)
		printf(" cpu_bench_us=%.1f", (b->cpu_after - b->cpu_before) * 1e6 / all.n);
	printf("\n");
	free(all.v);
}

/* Everything main() set up, once the run is over (or has nothing to do). */
static void
bench_free(struct bench *b)
{
	size_t	 i;

	kcc_async_free(b->async);
	for (i = 0; i < b->nconn; i++)
		if (b->clients[i].evcon != NULL)
			evhttp_connection_free(b->clients[i].evcon);
	event_free(b->tick);
	event_base_free(b->base);
	for (i = 0; i < b->nids; i++)
		free(b->ids[i]);
	for (i = 0; i < b->npool; i++)
		bench_csr_clear(&b->pool[i]);
	free(b->pool);
	X509_free(b->ca_cert);
	EVP_PKEY_free(b->ca_key);
	for (i = 0; i < BENCH_NOPS; i++)
		free(b->lat[i].v);
	free(b->clients);
	free(b->create_body);
}

int
main(int argc, char *argv[])
{
	struct bench		 b;
	struct timeval		 tv = { 0, 100000 };
	struct bench_pid	*bp;
	const char		*ca_cert = NULL, *ca_key = NULL;
	char			*end, *eq;
	unsigned long		 err;
	unsigned int		 i;
	int			 ch, secs_given = 0;

	memset(&b, 0, sizeof(b));
	b.nconn = 4;
	b.secs = 10;
	b.zone = "023e105f4ecef8ad9ca31a8372d0c353";
	b.keytype = "p256v1";
	b.per_page = 20;
	b.tag = "-";
	b.rng = (unsigned long)getpid() * 2654435761UL + 1;
	b.weight[OP_CREATE] = b.wsum = 1;
	b.token = getenv("KC_BENCH_TOKEN");
	while ((ch = getopt(argc, argv, "a:c:C:d:F:k:K:Lm:n:p:P:s:T:u:x:z:")) != -1) {
		switch (ch) {
		case 'C':
			ca_cert = optarg;
			break;
		case 'F':
			b.prefill = strtoul(optarg, &end, 10);
			if (*end != '\0')
				bench_usage();
			break;
		case 'K':
			ca_key = optarg;
			break;
		case 'L':
			b.from_list = 1;
			break;
		case 'a':
			b.token = optarg;
			break;
		case 'c':
			b.nconn = (unsigned int)strtoul(optarg, &end, 10);
			if (*end != '\0' || b.nconn == 0 || b.nconn > 1024)
				bench_usage();
			break;
		case 'd':
			b.secs = strtod(optarg, &end);
			if (*end != '\0' || b.secs <= 0)
				bench_usage();
			secs_given = 1;
			break;
		case 'k':
			b.keytype = optarg;
			break;
		case 'm':
			bench_parse_mix(&b, optarg);
			break;
		case 'n':
			b.count = strtoul(optarg, &end, 10);
			if (*end != '\0' || b.count == 0)
				bench_usage();
			break;
		case 'p':
			if (b.npids == BENCH_MAXPID || (eq = strchr(optarg, '=')) == NULL)
				bench_usage();
			bp = &b.pids[b.npids++];
			*eq = '\0';
			bp->name = optarg;
			bp->pid = strtol(eq + 1, &end, 10);
			if (*end != '\0' || bp->pid <= 0)
				bench_usage();
			break;
		case 'P':
			b.per_page = (unsigned int)strtoul(optarg, &end, 10);
			if (*end != '\0' || b.per_page == 0 || b.per_page > 50)
				bench_usage();
			break;
		case 's':
			b.socket = optarg;
			break;
		case 'T':
			b.tag = optarg;
			break;
		case 'u':
			b.url = optarg;
			break;
		case 'x':
			b.ndeleters = (unsigned int)strtoul(optarg, &end, 10);
			if (*end != '\0' || b.ndeleters > 64)
				bench_usage();
			break;
		case 'z':
			b.zone = optarg;
			break;
		default:
			bench_usage();
		}
	}
	if (optind != argc || (b.socket == NULL) == (b.url == NULL) ||
	    (b.url != NULL && b.token == NULL) || (ca_cert == NULL) != (ca_key == NULL))
		bench_usage();
	/* -L lists over the socket only. */
	if (b.from_list && b.socket == NULL)
		bench_usage();
	/* Deleters run beside the mix for a time: with a count they could wait for ever. */
	if (b.ndeleters > 0 && b.count > 0)
		bench_usage();
	b.nconn += b.ndeleters;
	if (b.ndeleters > 0)
		b.consuming = 1;
	if (b.weight[OP_UPLOAD] > 0 && ca_cert == NULL) {
		fprintf(stderr, "keycustody-bench: uploads need the CA that signs them"
		    " (-C cert -K key), trusted by the daemon (trust_bundle)\n");
		return 2;
	}
	if (ca_cert != NULL)
		bench_load_ca(&b, ca_cert, ca_key);
	if (asprintf(&b.create_body, "{\"country\":\"US\",\"state\":\"MA\",\"locality\":"
	    "\"Boston\",\"organization\":\"City of Boston\",\"organizational_unit\":"
	    "\"Championship Parade Detail\",\"common_name\":\"app.acme-corp.co.uk\","
	    "\"sans\":[\"app.acme-corp.co.uk\",\"www.acme-corp.co.uk\","
	    "\"blog.acme-corp.co.uk\",\"acme-corp.co.uk\"],\"key_type\":\"%s\"}",
	    b.keytype) == -1)
		return 1;

	if ((b.base = event_base_new()) == NULL)
		return 1;
	b.clients = calloc(b.nconn, sizeof(*b.clients));
	if (b.clients == NULL)
		return 1;
	if ((b.tick = event_new(b.base, -1, EV_PERSIST, bench_tick, &b)) == NULL ||
	    event_add(b.tick, &tv) != 0)
		return 1;
	if (b.socket != NULL) {
		/* Deadline 10 min: an RSA-2048 keygen queue can be long, and we measure it. */
		b.async = kcc_async_new(b.base, b.socket, (int)b.nconn, 600000,
		    (size_t)b.nconn * 2);
		if (b.async == NULL) {
			fprintf(stderr, "keycustody-bench: %s: cannot set up\n", b.socket);
			return 1;
		}
		event_base_dispatch(b.base);	/* until the tick sees every connection up */
		if (kcc_async_connected(b.async) < 1) {
			fprintf(stderr, "keycustody-bench: %s: cannot connect\n", b.socket);
			return 1;
		}
	} else
		bench_parse_url(&b);
	for (i = 0; i < b.nconn; i++) {
		b.clients[i].b = &b;
		b.clients[i].deleter = i >= b.nconn - b.ndeleters;
		if (b.url != NULL && (b.clients[i].evcon = evhttp_connection_base_new(b.base,
		    NULL, b.host, (unsigned short)b.port)) == NULL)
			return 1;
	}
	if (b.from_list && bench_listall(&b) != 0)
		return 1;
	/* -L without -n or -d: one operation per CSR listed (deleting them all). */
	if (b.from_list && b.count == 0 && !secs_given) {
		if (b.npool == 0) {
			printf("keycustody-bench: no CSRs in zone %s: nothing to do\n", b.zone);
			bench_free(&b);
			return 0;
		}
		b.count = b.npool;
	}
	if (b.prefill > 0 && bench_prefill(&b) != 0)
		return 1;
	for (i = 0; i < b.npids; i++) {
		b.pids[i].before_kb = bench_rss_kb(b.pids[i].pid);
		b.pids[i].cpu_before = bench_cpu_s(b.pids[i].pid);
	}
	b.cpu_before = bench_self_cpu_s();

	b.t_start = bench_now();
	for (i = 0; i < b.nconn && bench_more(&b); i++)
		bench_next(&b.clients[i]);
	event_base_dispatch(b.base);
	if (b.t_end == 0)
		b.t_end = bench_now();

	b.cpu_after = bench_self_cpu_s();
	for (i = 0; i < b.npids; i++) {
		b.pids[i].after_kb = bench_rss_kb(b.pids[i].pid);
		b.pids[i].cpu_after = bench_cpu_s(b.pids[i].pid);
	}
	bench_report(&b);

	bench_free(&b);
	for (err = 0, i = 0; i < BENCH_NOPS; i++)
		err += b.errs[i];
	return b.finished > 0 && err == b.finished ? 1 : 0;
}
