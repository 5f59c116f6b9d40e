/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * http.c: keycustody-http's HTTP side: evhttp, routing, authentication, limits and the
 * asynchronous calls to the daemon. Owns evhttp; metrics are http-metrics.c's, TLS is
 * http-tls.c's, evhttp's error pages are http-compat.c's, JSON is json.c's business.
 */
#include "config.h"

#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "kc-api.h"
#include "kc-err.h"
#include "kc-proto.h"
#include "keycustody.h"
#include "log.h"
#include "xmalloc.h"
#include "cred.h"
#include "http.h"
#include "json.h"
#include "http-compat.h"
#include "http-conn.h"
#include "http-int.h"
#include "http-metrics.h"
#include "http-tls.h"

#define HTTP_PREFIX		"/client/v4"
#define HTTP_ZONES		"/client/v4/zones/"
#define HTTP_TOKEN_MAX		256
#define HTTP_RETRY_AFTER	1
#define HTTP_ID_MAX		40	/* an id this long or longer is kept as "-" */
#define HTTP_METRICS_TIMEOUT_MS	2000	/* a scrape waits this long for the daemon */
#define HTTP_METRICS_401	"401 Unauthorized: GET /metrics needs " \
				"\"Authorization: Bearer <token>\" with the token of the " \
				"file metrics_token_file names\n"

struct http {
	struct event_base	*base;
	struct evhttp		*evh;
	struct kcc_async	*daemon;
	struct cred_table	*creds;
	SSL_CTX			*tls;		/* NULL: plain HTTP */
	int			 metrics_on;
	struct evhttp		*mevh;		/* metrics' own listener; NULL: none */
	char			*metrics_token;	/* NULL: /metrics needs no credential */
	struct http_metrics	*m;
	struct http_conns	*conns;
	const char		*names[HTTP_R_MAX];	/* from http_routes[], for logs */
};

/* The server: one per process, as http-compat.c's state is. */
static struct http	*http_self;

/* Query parameters of a list route. Strings are borrowed from the parsed query. */
struct http_list_query {
	uint32_t	 page;
	uint32_t	 per_page;
	int		 has_descending;
	int		 descending;
	const char	*hostname;		/* filters, custom hostnames only */
	const char	*custom_csr_id;
};

/*
 * The other list filters of custom hostnames, passed to the daemon as sent (it checks
 * them); an empty value is no filter. SDK 7 sends the hostname ones with dots.
 */
#define HTTP_HN_FILTERS	11
static const char *const http_hn_filters[HTTP_HN_FILTERS] = {
	"id", "hostname.exact", "hostname.contain", "hostname.startsWith", "ssl",
	"ssl_status", "wildcard", "order", "hostname_status", "certificate_authority",
	"custom_origin_server"
};

struct http_row;

/*
 * A route's handler, called once the path, the method and (unless HTTP_F_OPEN) the
 * credential have passed; zone and id are the path's parameters, "" where it has none.
 */
typedef void	 http_handler_fn(struct http *, struct evhttp_request *,
		    const struct http_row *, const struct cred *, const char *, const char *,
		    double);

/* A row of the route table: one method on one path pattern. */
struct http_row {
	enum evhttp_cmd_type	 method;
	const char		*pattern;	/* segments; ":zone" and ":id" are parameters */
	enum http_route		 route;
	const char		*name;		/* route label in logs and metrics */
	int			 flags;
#define HTTP_F_WRITES	0x01		/* needs a credential that may write */
#define HTTP_F_OPEN	0x02		/* needs no credential */
#define HTTP_F_METRICS	0x04		/* exists only with metrics on */
	http_handler_fn		*handler;
	Keycustody__Request__BodyCase body_case; /* http_get_or_delete(): what to ask */
	const struct http_err	*bad_id;	/* http_get_or_delete(): an id not a UUID */
};

/* A request waiting for the daemon's answer. */
struct http_pending {
	struct http		*h;
	struct evhttp_request	*req;
	struct http_conn	*conn;		/* NULL once the client has gone */
	enum http_route		 route;
	double			 t0;
	double			 tcall;
};

static const struct http_err http_err_noauth = { 400, 9106,
	"Missing X-Auth-Key, X-Auth-Email or Authorization headers", 0, NULL };
static const struct http_err http_err_authz = { 400, 6003, "Invalid request headers",
	6111, "Invalid format for Authorization header" };
static const struct http_err http_err_email = { 400, 6003, "Invalid request headers",
	6102, "Invalid format for X-Auth-Email header" };
static const struct http_err http_err_key = { 400, 6003, "Invalid request headers",
	6103, "Invalid format for X-Auth-Key header" };
static const struct http_err http_err_token = { 403, KC_API_AUTH, KC_API_AUTH_MSG, 0,
	NULL };
static const struct http_err http_err_pair = { 403, 9103,
	"Unknown X-Auth-Key or X-Auth-Email", 0, NULL };
const struct http_err http_err_body = { 400, KC_API_DECODE, KC_API_DECODE_MSG,
	0, NULL };
static const struct http_err http_err_csr_id = { 400, KC_API_CSR_ID_INVALID,
	KC_API_CSR_ID_INVALID_MSG, 0, NULL };
static const struct http_err http_err_hostname_id = { 400, KC_API_HOSTNAME_ID_INVALID,
	KC_API_HOSTNAME_ID_INVALID_MSG, 0, NULL };
const struct http_err http_err_headers = { 400, 6003, "Invalid request headers", 0,
	NULL };
const struct http_err http_err_framing = { 400, 6003, "Invalid request headers", 0,
	NULL };
const struct http_err http_err_too_large = { 431, 6003, "Invalid request headers",
	0, "Request header fields too large" };
const struct http_err http_err_method = { 405, 7001, "Method not allowed for that URI.",
	0, NULL };
const struct http_err http_err_no_route = { 400, 7003, "No route for that URI", 0, NULL };
static const struct http_err http_err_per_page = { 400, KC_API_PARAMS, KC_API_PARAMS_MSG,
	11000, "per_page variable must be a number between 5 and 50" };
static const struct http_err http_err_page = { 400, KC_API_PARAMS, KC_API_PARAMS_MSG,
	11000, KC_API_PAGE_MSG };
static const struct http_err http_err_direction = { 400, KC_API_PARAMS,
	KC_API_PARAMS_MSG, 11000, "direction variable must be asc or desc" };
static const struct http_err http_err_csr_order = { 400, KC_API_PARAMS,
	KC_API_PARAMS_MSG, 11000, "order variable must be name or created_at" };
const struct http_err http_err_internal = { 500, KC_API_INTERNAL,
	"Internal Server Error", 0, NULL };
static const struct http_err http_err_unavailable = { 503, KC_API_UNAVAILABLE,
	"Service Unavailable: the key custody daemon is busy or down, try again later.", 0,
	NULL };

double
http_now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The answer when there is none: rendering failed (out of memory, a malformed reply). */
static const char http_body_internal[] = "{\"result\":null,\"success\":false,\"errors\":"
    "[{\"code\":1500,\"message\":\"Internal Server Error\"}],\"messages\":[]}";

/* evbuffer_add_reference() cleanup: a body is freed once it has been written out. */
static void
http_body_free(const void *data, size_t len, void *arg)
{
	free((void *)data);
}

/*
 * Send body (a JSON text, may be NULL: then a fixed 500) with status; the one way out of
 * every request. 4xx but 429 carry x-should-retry: false, 503 and 429 carry Retry-After.
 * @param body taken over: it goes into the reply buffer as it is, without a copy
 */
static void
http_send(struct http *h, struct evhttp_request *req, enum http_route route, double t0,
    int status, char *body, int retry_after)
{
	struct evkeyvalq	*hdr = evhttp_request_get_output_headers(req);
	struct evbuffer		*buf = evhttp_request_get_output_buffer(req);
	char			 ra[16];

	/* A deadline passed meanwhile, or the next request was refused: the last answer. */
	if (http_conn_closing(http_conn_of(h->conns, req)))
		evhttp_add_header(hdr, "Connection", "close");
	if (body != NULL && evbuffer_add_reference(buf, body, strlen(body), http_body_free,
	    NULL) != 0) {
		free(body);
		body = NULL;
	}
	if (body == NULL) {
		status = 500;
		evbuffer_add_reference(buf, http_body_internal, sizeof(http_body_internal) - 1,
		    NULL, NULL);
	}
	evhttp_remove_header(hdr, "Content-Type");
	evhttp_add_header(hdr, "Content-Type", route == HTTP_R_METRICS ?
	    "text/plain; version=0.0.4; charset=utf-8" : "application/json");
	if (status >= 400 && status < 500 && status != 429)
		evhttp_add_header(hdr, "x-should-retry", "false");
	if (status == 503 || status == 429) {
		snprintf(ra, sizeof(ra), "%d", retry_after > 0 ? retry_after :
		    HTTP_RETRY_AFTER);
		evhttp_add_header(hdr, "Retry-After", ra);
	}
	evhttp_send_reply(req, status, NULL, NULL);
	http_metrics_request(h->m, route, status, t0);
}

static void
http_send_err(struct http *h, struct evhttp_request *req, enum http_route route,
    double t0, const struct http_err *e)
{
	char	*body = NULL;

	json_reply_error(e->code, e->message, e->chain_code, e->chain_message, &body);
	http_send(h, req, route, t0, e->status, body, 0);
}

static void
http_send_no_route(struct http *h, struct evhttp_request *req, const char *path,
    double t0)
{
	char	*body = NULL;

	if (strncmp(path, HTTP_PREFIX "/", sizeof(HTTP_PREFIX)) == 0)
		path += sizeof(HTTP_PREFIX) - 1;
	json_reply_no_route(path, &body);
	http_send(h, req, HTTP_R_NONE, t0, 400, body, 0);
}

static void
http_send_bad_method(struct http *h, struct evhttp_request *req, const char *allow,
    double t0)
{
	char	*body = NULL;

	evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
	json_reply_error(http_err_method.code, http_err_method.message, 0, NULL, &body);
	http_send(h, req, HTTP_R_NONE, t0, 405, body, 0);
}

/* Visible ASCII without blanks, 1 to HTTP_TOKEN_MAX characters. */
static int
http_valid_secret(const char *s)
{
	size_t	 i;

	for (i = 0; s[i] != '\0'; i++) {
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f ||
		    i >= HTTP_TOKEN_MAX)
			return 0;
	}
	return i > 0;
}

static int
http_valid_email(const char *s)
{
	return http_valid_secret(s) && strchr(s, '@') != NULL && strlen(s) <= CRED_EMAIL_MAX;
}

/*
 * Authenticate req (API.md "Authentication").
 * @retval NULL and *credp set, or the error to answer
 */
static const struct http_err *
http_auth(struct http *h, struct evkeyvalq *in, const struct cred **credp)
{
	const char		*authz, *email, *key;

	*credp = NULL;
	authz = evhttp_find_header(in, "Authorization");
	email = evhttp_find_header(in, "X-Auth-Email");
	key = evhttp_find_header(in, "X-Auth-Key");
	if (authz != NULL) {
		if (strncasecmp(authz, "Bearer ", 7) != 0)
			return &http_err_authz;
		authz += 7;
		while (*authz == ' ')
			authz++;
		if (!http_valid_secret(authz))
			return &http_err_authz;
		if ((*credp = cred_find_token(h->creds, authz)) == NULL)
			return &http_err_token;
		return NULL;
	}
	if (email == NULL && key == NULL)
		return &http_err_noauth;
	if (email == NULL || !http_valid_email(email))
		return &http_err_email;
	if (key == NULL || !http_valid_secret(key))
		return &http_err_key;
	if ((*credp = cred_find_key(h->creds, email, key)) == NULL)
		return &http_err_pair;
	return NULL;
}

/* A CSR id: a lowercase UUID (36 characters); the daemon checks the rest. */
static int
http_valid_uuid(const char *s)
{
	size_t	 i;

	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!isdigit((unsigned char)s[i]) && (s[i] < 'a' || s[i] > 'f'))
			return 0;
	}
	return s[i] == '\0';
}

/* A decimal integer in [min, max], digits only. */
static int
http_parse_uint(const char *s, unsigned long min, unsigned long max, uint32_t *out)
{
	unsigned long	 v = 0;
	size_t		 i;

	if (s == NULL || *s == '\0' || strlen(s) > 10)
		return -1;
	for (i = 0; s[i] != '\0'; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v < min || v > max)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static void	http_send_metrics(struct http *, struct evhttp_request *, double,
		    const Keycustody__MetricsResponse *);

static void
http_reply_daemon(struct http *h, struct http_pending *p, Keycustody__Response *resp)
{
	const struct http_err	*e = NULL;
	char			*body = NULL;
	int			 status = 200, retry = 0, ok, r = 0;

	if (resp->error != NULL) {
		r = json_reply_daemon_error(resp->error, &status, &body);
		if (resp->error->has_retry_after)
			retry = (int)resp->error->retry_after;
		if (p->route == HTTP_R_HEALTHZ) {
			free(body);
			body = NULL;
			r = json_health(NULL, &ok, &body);
			status = 503;
		}
		if (p->route == HTTP_R_METRICS) {
			free(body);
			log_warnx("daemon refused the metrics request: %s",
			    resp->error->message != NULL ? resp->error->message : "?");
			http_send_metrics(h, p->req, p->t0, NULL);
			return;
		}
		goto send;
	}
	switch (p->route) {
	case HTTP_R_CREATE:
	case HTTP_R_GET:
		if (resp->body_case != KEYCUSTODY__RESPONSE__BODY_CSR)
			goto bad;
		r = json_reply_csr(resp->csr, &body);
		status = p->route == HTTP_R_CREATE ? 201 : 200;
		break;
	case HTTP_R_LIST:
		if (resp->body_case != KEYCUSTODY__RESPONSE__BODY_LIST_CSRS)
			goto bad;
		r = json_reply_csr_list(resp->list_csrs, &body);
		break;
	case HTTP_R_DELETE:
		if (resp->body_case != KEYCUSTODY__RESPONSE__BODY_DELETE_CSR)
			goto bad;
		r = json_reply_id(resp->delete_csr->id, &body);
		break;
	case HTTP_R_HN_CREATE:
	case HTTP_R_HN_GET:
	case HTTP_R_HN_UPDATE:
		if (resp->body_case != KEYCUSTODY__RESPONSE__BODY_HOSTNAME)
			goto bad;
		r = json_reply_hostname(resp->hostname, &body);
		status = p->route == HTTP_R_HN_CREATE ? 201 :
		    p->route == HTTP_R_HN_UPDATE ? 202 : 200;
		break;
	case HTTP_R_HN_LIST:
		if (resp->body_case != KEYCUSTODY__RESPONSE__BODY_LIST_HOSTNAMES)
			goto bad;
		r = json_reply_hostname_list(resp->list_hostnames, &body);
		break;
	case HTTP_R_HN_DELETE:
		/* The bare object, no envelope: what the original sends (API.md). */
		if (resp->body_case != KEYCUSTODY__RESPONSE__BODY_DELETE_HOSTNAME)
			goto bad;
		r = json_id(resp->delete_hostname->id, &body);
		break;
	case HTTP_R_FO_GET:
	case HTTP_R_FO_UPDATE:
	case HTTP_R_FO_DELETE:
		if (resp->body_case != KEYCUSTODY__RESPONSE__BODY_FALLBACK_ORIGIN)
			goto bad;
		r = json_reply_fallback_origin(resp->fallback_origin, &body);
		break;
	case HTTP_R_HEALTHZ:
		if (resp->body_case != KEYCUSTODY__RESPONSE__BODY_HEALTH)
			goto bad;
		r = json_health(resp->health, &ok, &body);
		status = ok ? 200 : 503;
		break;
	case HTTP_R_METRICS:
		if (resp->body_case != KEYCUSTODY__RESPONSE__BODY_METRICS)
			goto bad;
		http_send_metrics(h, p->req, p->t0, resp->metrics);
		return;
	default:
		goto bad;
	}
 send:
	if (r != 0) {
		free(body);
		body = NULL;
	}
	http_send(h, p->req, p->route, p->t0, status, body, retry);
	return;
 bad:
	log_warnx("daemon answered %s with an unexpected body %d", h->names[p->route],
	    (int)resp->body_case);
	e = &http_err_internal;
	http_send_err(h, p->req, p->route, p->t0, e);
}

/* The client of a pending call went away (http-conn.c tells). */
static void
http_pending_gone(void *arg)
{
	struct http_pending	*p = arg;

	/* evhttp detaches the request and frees it on our (later) evhttp_send_reply. */
	log_debug("client went away during %s", p->h->names[p->route]);
	p->conn = NULL;
}

/* Completion of a daemon call: answer the HTTP request, whether or not its client waits. */
static void
http_daemon_cb(int r, Keycustody__Response *resp, void *arg)
{
	struct http_pending	*p = arg;
	struct http		*h = p->h;

	http_metrics_called(h->m, p->route, p->tcall, r != 0, p->conn == NULL);
	http_conn_set_pending(p->conn, NULL, NULL);
	if (r != 0) {
		if (p->route == HTTP_R_HEALTHZ) {
			char	*body = NULL;
			int	 ok;

			json_health(NULL, &ok, &body);
			http_send(h, p->req, p->route, p->t0, 503, body, HTTP_RETRY_AFTER);
		} else if (p->route == HTTP_R_METRICS)
			http_send_metrics(h, p->req, p->t0, NULL);
		else
			http_send_err(h, p->req, p->route, p->t0, r == KC_ERR_NOMEM ?
			    &http_err_internal : &http_err_unavailable);
	} else
		http_reply_daemon(h, p, resp);
	free(p);
}

/* Forward msg to the daemon; the answer goes out from http_daemon_cb(). */
static void
http_call(struct http *h, struct evhttp_request *req, enum http_route route, double t0,
    Keycustody__Request *msg)
{
	struct http_pending	*p;
	int			 r;

	p = xcalloc(1, sizeof(*p));
	p->h = h;
	p->req = req;
	p->conn = http_conn_of(h->conns, req);
	p->route = route;
	p->t0 = t0;
	p->tcall = http_now();
	if (h->daemon == NULL)
		r = KC_ERR_UNAVAILABLE;
	else if (route == HTTP_R_METRICS)
		r = kcc_async_call_timeout(h->daemon, msg, HTTP_METRICS_TIMEOUT_MS,
		    http_daemon_cb, p);
	else
		r = kcc_async_call(h->daemon, msg, http_daemon_cb, p);
	if (r != 0) {
		free(p);
		http_metrics_refused(h->m, route);
		if (route == HTTP_R_METRICS) {
			http_send_metrics(h, req, t0, NULL);
			return;
		}
		if (route == HTTP_R_HEALTHZ) {
			char	*body = NULL;
			int	 ok;

			json_health(NULL, &ok, &body);
			http_send(h, req, route, t0, 503, body, HTTP_RETRY_AFTER);
			return;
		}
		http_send_err(h, req, route, t0, r == KC_ERR_UNAVAILABLE ?
		    &http_err_unavailable : r == KC_ERR_MSG_TOO_BIG ? &http_err_body :
		    &http_err_internal);
		return;
	}
	http_metrics_call(h->m);
	http_conn_set_pending(p->conn, http_pending_gone, p);
}

/*
 * The request body, made contiguous; NULL when empty or over HTTP_BODY_MAX (evhttp refuses
 * longer ones before they reach us, see http-compat.c).
 */
static const char *
http_body(struct evhttp_request *req, size_t *lenp)
{
	struct evbuffer	*in = evhttp_request_get_input_buffer(req);

	*lenp = evbuffer_get_length(in);
	if (*lenp > HTTP_BODY_MAX)
		return NULL;
	return (const char *)evbuffer_pullup(in, -1);
}

static void
http_create(struct http *h, struct evhttp_request *req, const struct http_row *row,
    const struct cred *cred, const char *zone, const char *id, double t0)
{
	Keycustody__Request		 msg = KEYCUSTODY__REQUEST__INIT;
	Keycustody__CreateCsrRequest	*m = NULL;
	const char			*body;
	size_t				 len;
	int				 r;

	if ((body = http_body(req, &len)) == NULL) {
		http_send_err(h, req, row->route, t0, &http_err_body);
		return;
	}
	if ((r = json_create_csr_request(body, len, &m)) != 0) {
		http_send_err(h, req, row->route, t0, r == KC_ERR_INVALID ?
		    &http_err_body : &http_err_internal);
		return;
	}
	m->zone_id = xstrdup(zone);
	msg.actor = (char *)cred->name;
	msg.body_case = KEYCUSTODY__REQUEST__BODY_CREATE_CSR;
	msg.create_csr = m;
	http_call(h, req, row->route, t0, &msg);
	keycustody__create_csr_request__free_unpacked(m, NULL);
}

/*
 * Parse the query of a list route into lq: page, per_page, direction, and the filters
 * hostname and custom_csr_id (an empty filter is no filter). The caller clears q.
 * @retval NULL, or the 6008 error to answer
 */
static const struct http_err *
http_list_query(struct evhttp_request *req, struct evkeyvalq *q, struct http_list_query *lq)
{
	const char	*query, *v;

	memset(lq, 0, sizeof(*lq));
	lq->page = 1;
	lq->per_page = KC_PER_PAGE_DEFAULT;
	query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	if (query != NULL && evhttp_parse_query_str(query, q) != 0)
		return &http_err_page;
	if ((v = evhttp_find_header(q, "per_page")) != NULL &&
	    http_parse_uint(v, KC_PER_PAGE_MIN, KC_PER_PAGE_MAX, &lq->per_page) != 0)
		return &http_err_per_page;
	if ((v = evhttp_find_header(q, "page")) != NULL &&
	    http_parse_uint(v, 1, KC_PAGE_MAX, &lq->page) != 0)
		return &http_err_page;
	if ((v = evhttp_find_header(q, "direction")) != NULL) {
		if (strcmp(v, "desc") == 0)
			lq->descending = 1;
		else if (strcmp(v, "asc") != 0)
			return &http_err_direction;
		lq->has_descending = 1;
	}
	if ((v = evhttp_find_header(q, "hostname")) != NULL && *v != '\0')
		lq->hostname = v;
	if ((v = evhttp_find_header(q, "custom_csr_id")) != NULL && *v != '\0')
		lq->custom_csr_id = v;
	return NULL;
}

static void
http_list(struct http *h, struct evhttp_request *req, const struct http_row *row,
    const struct cred *cred, const char *zone, const char *id, double t0)
{
	Keycustody__Request		 msg = KEYCUSTODY__REQUEST__INIT;
	Keycustody__ListCsrsRequest	 m = KEYCUSTODY__LIST_CSRS_REQUEST__INIT;
	struct evkeyvalq		 q;
	struct http_list_query		 lq;
	const struct http_err		*e;

	TAILQ_INIT(&q);
	if ((e = http_list_query(req, &q, &lq)) != NULL) {
		evhttp_clear_headers(&q);
		http_send_err(h, req, row->route, t0, e);
		return;
	}
	m.zone_id = (char *)zone;
	m.has_page = m.has_per_page = 1;
	m.page = lq.page;
	m.per_page = lq.per_page;
	m.has_descending = lq.has_descending;
	m.descending = lq.descending;
	/*
	 * Cloudflare's orders are name, account_tag and created_at; there are no accounts
	 * here, so account_tag is refused, never ignored. The daemon checks again.
	 */
	m.order = (char *)evhttp_find_header(&q, "order");
	if (m.order != NULL && *m.order != '\0' && strcmp(m.order, "name") != 0 &&
	    strcmp(m.order, "created_at") != 0) {
		evhttp_clear_headers(&q);
		http_send_err(h, req, row->route, t0, &http_err_csr_order);
		return;
	}
	msg.actor = (char *)cred->name;
	msg.body_case = KEYCUSTODY__REQUEST__BODY_LIST_CSRS;
	msg.list_csrs = &m;
	http_call(h, req, row->route, t0, &msg);
	evhttp_clear_headers(&q);
}

static void
http_hn_create(struct http *h, struct evhttp_request *req, const struct http_row *row,
    const struct cred *cred, const char *zone, const char *id, double t0)
{
	Keycustody__Request			 msg = KEYCUSTODY__REQUEST__INIT;
	Keycustody__CreateHostnameRequest	*m = NULL;
	const char				*body;
	size_t					 len;
	int					 r;

	if ((body = http_body(req, &len)) == NULL) {
		http_send_err(h, req, row->route, t0, &http_err_body);
		return;
	}
	if ((r = json_create_hostname_request(body, len, &m)) != 0) {
		http_send_err(h, req, row->route, t0, r == KC_ERR_INVALID ?
		    &http_err_body : &http_err_internal);
		return;
	}
	m->zone_id = xstrdup(zone);
	msg.actor = (char *)cred->name;
	msg.body_case = KEYCUSTODY__REQUEST__BODY_CREATE_HOSTNAME;
	msg.create_hostname = m;
	http_call(h, req, row->route, t0, &msg);
	keycustody__create_hostname_request__free_unpacked(m, NULL);
}

static void
http_hn_update(struct http *h, struct evhttp_request *req, const struct http_row *row,
    const struct cred *cred, const char *zone, const char *id, double t0)
{
	Keycustody__Request			 msg = KEYCUSTODY__REQUEST__INIT;
	Keycustody__UpdateHostnameRequest	*m = NULL;
	const char				*body;
	size_t					 len;
	int					 r;

	if (!http_valid_uuid(id)) {
		http_send_err(h, req, row->route, t0, &http_err_hostname_id);
		return;
	}
	if ((body = http_body(req, &len)) == NULL) {
		http_send_err(h, req, row->route, t0, &http_err_body);
		return;
	}
	if ((r = json_update_hostname_request(body, len, &m)) != 0) {
		http_send_err(h, req, row->route, t0, r == KC_ERR_INVALID ?
		    &http_err_body : &http_err_internal);
		return;
	}
	m->zone_id = xstrdup(zone);
	m->id = xstrdup(id);
	msg.actor = (char *)cred->name;
	msg.body_case = KEYCUSTODY__REQUEST__BODY_UPDATE_HOSTNAME;
	msg.update_hostname = m;
	http_call(h, req, row->route, t0, &msg);
	keycustody__update_hostname_request__free_unpacked(m, NULL);
}

/* The request field of http_hn_filters[i]. */
static char **
http_hn_field(Keycustody__ListHostnamesRequest *m, size_t i)
{
	char	**const fields[HTTP_HN_FILTERS] = {
		&m->id, &m->hostname_exact, &m->hostname_contain, &m->hostname_starts_with,
		&m->ssl, &m->ssl_status, &m->wildcard, &m->order, &m->hostname_status,
		&m->certificate_authority, &m->custom_origin_server
	};

	return fields[i];
}

static void
http_hn_list(struct http *h, struct evhttp_request *req, const struct http_row *row,
    const struct cred *cred, const char *zone, const char *id, double t0)
{
	Keycustody__Request			 msg = KEYCUSTODY__REQUEST__INIT;
	Keycustody__ListHostnamesRequest	 m = KEYCUSTODY__LIST_HOSTNAMES_REQUEST__INIT;
	struct evkeyvalq			 q;
	struct http_list_query			 lq;
	const struct http_err			*e;
	const char				*v;
	size_t					 i;

	TAILQ_INIT(&q);
	if ((e = http_list_query(req, &q, &lq)) != NULL) {
		evhttp_clear_headers(&q);
		http_send_err(h, req, row->route, t0, e);
		return;
	}
	m.zone_id = (char *)zone;
	m.has_page = m.has_per_page = 1;
	m.page = lq.page;
	m.per_page = lq.per_page;
	m.has_descending = lq.has_descending;
	m.descending = lq.descending;
	m.hostname = (char *)lq.hostname;
	m.custom_csr_id = (char *)lq.custom_csr_id;
	for (i = 0; i < HTTP_HN_FILTERS; i++)
		if ((v = evhttp_find_header(&q, http_hn_filters[i])) != NULL && *v != '\0')
			*http_hn_field(&m, i) = (char *)v;
	msg.actor = (char *)cred->name;
	msg.body_case = KEYCUSTODY__REQUEST__BODY_LIST_HOSTNAMES;
	msg.list_hostnames = &m;
	http_call(h, req, row->route, t0, &msg);
	evhttp_clear_headers(&q);	/* after the call: the filters point into it */
}

/* GET or DELETE of one CSR or custom hostname: the row says which, and its bad-id error. */
static void
http_get_or_delete(struct http *h, struct evhttp_request *req, const struct http_row *row,
    const struct cred *cred, const char *zone, const char *id, double t0)
{
	Keycustody__Request			 msg = KEYCUSTODY__REQUEST__INIT;
	Keycustody__GetCsrRequest		 gc = KEYCUSTODY__GET_CSR_REQUEST__INIT;
	Keycustody__DeleteCsrRequest		 dc = KEYCUSTODY__DELETE_CSR_REQUEST__INIT;
	Keycustody__GetHostnameRequest		 gh = KEYCUSTODY__GET_HOSTNAME_REQUEST__INIT;
	Keycustody__DeleteHostnameRequest	 dh = KEYCUSTODY__DELETE_HOSTNAME_REQUEST__INIT;

	if (!http_valid_uuid(id)) {
		http_send_err(h, req, row->route, t0, row->bad_id);
		return;
	}
	gc.zone_id = dc.zone_id = gh.zone_id = dh.zone_id = (char *)zone;
	gc.id = dc.id = gh.id = dh.id = (char *)id;
	msg.actor = (char *)cred->name;
	msg.body_case = row->body_case;
	switch (row->body_case) {
	case KEYCUSTODY__REQUEST__BODY_GET_CSR:
		msg.get_csr = &gc;
		break;
	case KEYCUSTODY__REQUEST__BODY_DELETE_CSR:
		msg.delete_csr = &dc;
		break;
	case KEYCUSTODY__REQUEST__BODY_GET_HOSTNAME:
		msg.get_hostname = &gh;
		break;
	case KEYCUSTODY__REQUEST__BODY_DELETE_HOSTNAME:
		msg.delete_hostname = &dh;
		break;
	default:
		fatalx("route %s is no get or delete", row->name);
	}
	http_call(h, req, row->route, t0, &msg);
}

/* GET, PUT and DELETE of the zone's fallback origin; PUT's body is {"origin": "..."}. */
static void
http_fallback(struct http *h, struct evhttp_request *req, const struct http_row *row,
    const struct cred *cred, const char *zone, const char *id, double t0)
{
	Keycustody__Request			 msg = KEYCUSTODY__REQUEST__INIT;
	Keycustody__GetFallbackOriginRequest	 g = KEYCUSTODY__GET_FALLBACK_ORIGIN_REQUEST__INIT;
	Keycustody__DeleteFallbackOriginRequest	 d =
	    KEYCUSTODY__DELETE_FALLBACK_ORIGIN_REQUEST__INIT;
	Keycustody__UpdateFallbackOriginRequest	*u = NULL;
	const char				*body;
	size_t					 len;
	int					 r;

	(void)id;
	msg.actor = (char *)cred->name;
	msg.body_case = row->body_case;
	switch (row->body_case) {
	case KEYCUSTODY__REQUEST__BODY_GET_FALLBACK_ORIGIN:
		g.zone_id = (char *)zone;
		msg.get_fallback_origin = &g;
		break;
	case KEYCUSTODY__REQUEST__BODY_DELETE_FALLBACK_ORIGIN:
		d.zone_id = (char *)zone;
		msg.delete_fallback_origin = &d;
		break;
	case KEYCUSTODY__REQUEST__BODY_UPDATE_FALLBACK_ORIGIN:
		if ((body = http_body(req, &len)) == NULL) {
			http_send_err(h, req, row->route, t0, &http_err_body);
			return;
		}
		if ((r = json_update_fallback_origin_request(body, len, &u)) != 0) {
			http_send_err(h, req, row->route, t0, r == KC_ERR_INVALID ?
			    &http_err_body : &http_err_internal);
			return;
		}
		u->zone_id = xstrdup(zone);
		msg.update_fallback_origin = u;
		break;
	default:
		fatalx("route %s is no fallback origin route", row->name);
	}
	http_call(h, req, row->route, t0, &msg);
	if (u != NULL)
		keycustody__update_fallback_origin_request__free_unpacked(u, NULL);
}

static void
http_healthz(struct http *h, struct evhttp_request *req, const struct http_row *row,
    const struct cred *cred, const char *zone, const char *id, double t0)
{
	Keycustody__Request		 msg = KEYCUSTODY__REQUEST__INIT;
	Keycustody__HealthRequest	 m = KEYCUSTODY__HEALTH_REQUEST__INIT;

	msg.body_case = KEYCUSTODY__REQUEST__BODY_HEALTH;
	msg.health = &m;
	http_call(h, req, row->route, t0, &msg);
}

/* Whether req carries "Authorization: Bearer <metrics token>" (compared in constant time). */
static int
http_metrics_authorized(const struct http *h, struct evhttp_request *req)
{
	const char	*v;
	size_t		 n;

	if (h->metrics_token == NULL)
		return 1;
	v = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
	if (v == NULL || strncasecmp(v, "Bearer ", 7) != 0)
		return 0;
	v += 7;
	n = strlen(h->metrics_token);
	return strlen(v) == n && CRYPTO_memcmp(v, h->metrics_token, n) == 0;
}

/*
 * GET /metrics: the shim's figures and the daemon's, asked for now (nothing is kept from
 * one scrape to the next); http_send_metrics() answers.
 */
static void
http_metrics(struct http *h, struct evhttp_request *req, const struct http_row *row,
    const struct cred *cred, const char *zone, const char *id, double t0)
{
	Keycustody__Request		 msg = KEYCUSTODY__REQUEST__INIT;
	Keycustody__MetricsRequest	 m = KEYCUSTODY__METRICS_REQUEST__INIT;

	if (!http_metrics_authorized(h, req)) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
		    "Bearer realm=\"metrics\"");
		http_send(h, req, row->route, t0, 401, xstrdup(HTTP_METRICS_401), 0);
		return;
	}
	msg.body_case = KEYCUSTODY__REQUEST__BODY_METRICS;
	msg.metrics = &m;
	http_call(h, req, row->route, t0, &msg);
}

/* Answer a scrape with the daemon's figures dm (NULL: the daemon did not answer). */
static void
http_send_metrics(struct http *h, struct evhttp_request *req, double t0,
    const Keycustody__MetricsResponse *dm)
{
	char	*text;

	text = http_metrics_text(h->m, h->daemon != NULL ? kcc_async_connected(h->daemon) :
	    0, dm);
	if (text == NULL) {
		http_send_err(h, req, HTTP_R_METRICS, t0, &http_err_internal);
		return;
	}
	http_send(h, req, HTTP_R_METRICS, t0, 200, text, 0);
}

static const struct http_row http_routes[] = {
	{ EVHTTP_REQ_POST, HTTP_ZONES ":zone/custom_csrs", HTTP_R_CREATE, "create_csr",
	    HTTP_F_WRITES, http_create, 0, NULL },
	{ EVHTTP_REQ_GET, HTTP_ZONES ":zone/custom_csrs", HTTP_R_LIST, "list_csrs", 0,
	    http_list, 0, NULL },
	{ EVHTTP_REQ_GET, HTTP_ZONES ":zone/custom_csrs/:id", HTTP_R_GET, "get_csr", 0,
	    http_get_or_delete, KEYCUSTODY__REQUEST__BODY_GET_CSR, &http_err_csr_id },
	{ EVHTTP_REQ_DELETE, HTTP_ZONES ":zone/custom_csrs/:id", HTTP_R_DELETE,
	    "delete_csr", HTTP_F_WRITES, http_get_or_delete,
	    KEYCUSTODY__REQUEST__BODY_DELETE_CSR, &http_err_csr_id },
	{ EVHTTP_REQ_POST, HTTP_ZONES ":zone/custom_hostnames", HTTP_R_HN_CREATE,
	    "create_hostname", HTTP_F_WRITES, http_hn_create, 0, NULL },
	{ EVHTTP_REQ_GET, HTTP_ZONES ":zone/custom_hostnames", HTTP_R_HN_LIST,
	    "list_hostnames", 0, http_hn_list, 0, NULL },
	{ EVHTTP_REQ_GET, HTTP_ZONES ":zone/custom_hostnames/:id", HTTP_R_HN_GET,
	    "get_hostname", 0, http_get_or_delete, KEYCUSTODY__REQUEST__BODY_GET_HOSTNAME,
	    &http_err_hostname_id },
	{ EVHTTP_REQ_PATCH, HTTP_ZONES ":zone/custom_hostnames/:id", HTTP_R_HN_UPDATE,
	    "update_hostname", HTTP_F_WRITES, http_hn_update, 0, NULL },
	{ EVHTTP_REQ_DELETE, HTTP_ZONES ":zone/custom_hostnames/:id", HTTP_R_HN_DELETE,
	    "delete_hostname", HTTP_F_WRITES, http_get_or_delete,
	    KEYCUSTODY__REQUEST__BODY_DELETE_HOSTNAME, &http_err_hostname_id },
	{ EVHTTP_REQ_GET, HTTP_ZONES ":zone/custom_hostnames/fallback_origin", HTTP_R_FO_GET,
	    "get_fallback_origin", 0, http_fallback,
	    KEYCUSTODY__REQUEST__BODY_GET_FALLBACK_ORIGIN, NULL },
	{ EVHTTP_REQ_PUT, HTTP_ZONES ":zone/custom_hostnames/fallback_origin",
	    HTTP_R_FO_UPDATE, "update_fallback_origin", HTTP_F_WRITES, http_fallback,
	    KEYCUSTODY__REQUEST__BODY_UPDATE_FALLBACK_ORIGIN, NULL },
	{ EVHTTP_REQ_DELETE, HTTP_ZONES ":zone/custom_hostnames/fallback_origin",
	    HTTP_R_FO_DELETE, "delete_fallback_origin", HTTP_F_WRITES, http_fallback,
	    KEYCUSTODY__REQUEST__BODY_DELETE_FALLBACK_ORIGIN, NULL },
	{ EVHTTP_REQ_GET, HTTP_PREFIX "/healthz", HTTP_R_HEALTHZ, "healthz", HTTP_F_OPEN,
	    http_healthz, 0, NULL },
	{ EVHTTP_REQ_GET, "/metrics", HTTP_R_METRICS, "metrics",
	    HTTP_F_OPEN | HTTP_F_METRICS, http_metrics, 0,
	    NULL },
};
#define HTTP_NROUTES	(sizeof(http_routes) / sizeof(http_routes[0]))

/* The methods a 405's Allow header may list, in the order it lists them. */
static const struct {
	enum evhttp_cmd_type	 method;
	const char		*name;
} http_methods[] = {
	{ EVHTTP_REQ_GET, "GET" },
	{ EVHTTP_REQ_POST, "POST" },
	{ EVHTTP_REQ_PUT, "PUT" },
	{ EVHTTP_REQ_PATCH, "PATCH" },
	{ EVHTTP_REQ_DELETE, "DELETE" },
};

/* The path's parameters, NUL-terminated; "" where the route has none. */
struct http_params {
	char	 zone[CRED_ZONE_LEN + 1];
	char	 id[HTTP_ID_MAX];
};

/*
 * Match path against pattern, segment by segment: a literal matches itself, ":zone" a
 * zone id (exactly CRED_ZONE_LEN characters that cred_valid_zone() accepts), ":id" any
 * non-empty segment, kept as "-" when it has HTTP_ID_MAX characters or more (no UUID: the
 * handler refuses it after authentication).
 * @retval 1 with pp set, or 0
 */
/*
 * Cloudflare's sub-resources beside the ids of custom hostnames, never a hostname id: the
 * fallback origin has its own rows; quota, which this service does not serve, is an
 * unknown route (400/7003).
 */
static const char *const http_unserved_names[] = { "fallback_origin", "quota" };

/* Whether the segment (len bytes) names one of http_unserved_names[]. */
static int
http_unserved(const char *seg, size_t len)
{
	size_t	 i;

	for (i = 0; i < sizeof(http_unserved_names) / sizeof(*http_unserved_names); i++)
		if (strlen(http_unserved_names[i]) == len &&
		    strncmp(http_unserved_names[i], seg, len) == 0)
			return 1;
	return 0;
}

static int
http_match(const char *pattern, const char *path, struct http_params *pp)
{
	size_t	 plen, slen;

	pp->zone[0] = pp->id[0] = '\0';
	for (;;) {
		if (*pattern++ != '/' || *path++ != '/')
			return 0;
		plen = strcspn(pattern, "/");
		slen = strcspn(path, "/");
		if (plen == 5 && strncmp(pattern, ":zone", plen) == 0) {
			if (slen != CRED_ZONE_LEN)
				return 0;
			memcpy(pp->zone, path, slen);
			pp->zone[slen] = '\0';
			if (!cred_valid_zone(pp->zone))
				return 0;
		} else if (plen == 3 && strncmp(pattern, ":id", plen) == 0) {
			if (slen == 0 || http_unserved(path, slen))
				return 0;
			if (slen < sizeof(pp->id)) {
				memcpy(pp->id, path, slen);
				pp->id[slen] = '\0';
			} else
				memcpy(pp->id, "-", 2);
		} else if (plen != slen || strncmp(pattern, path, plen) != 0)
			return 0;
		pattern += plen;
		path += slen;
		if (*pattern == '\0')
			return *path == '\0';
	}
}

/*
 * Whether the API's listener serves row: the metrics route only when metrics are on and
 * have no listener of their own.
 */
static int
http_row_on(const struct http *h, const struct http_row *row)
{
	return (h->metrics_on && h->mevh == NULL) || !(row->flags & HTTP_F_METRICS);
}

/*
 * The row for method on path, with pp set to the path's parameters.
 * @param pathp set when some row has the path, whatever its method
 * @retval the row, or NULL: a 405 when *pathp, else no route
 */
static const struct http_row *
http_route_find(const struct http *h, const char *path, enum evhttp_cmd_type method,
    struct http_params *pp, int *pathp)
{
	size_t	 i;

	*pathp = 0;
	for (i = 0; i < HTTP_NROUTES; i++) {
		if (!http_row_on(h, &http_routes[i]) ||
		    !http_match(http_routes[i].pattern, path, pp))
			continue;
		*pathp = 1;
		if (http_routes[i].method == method)
			return &http_routes[i];
	}
	return NULL;
}

/* The Allow header of a 405 on path: the methods of every row that has it. */
static void
http_allow(const struct http *h, const char *path, char *buf, size_t len)
{
	struct http_params	 pp;
	size_t			 i, j, off = 0;
	int			 n;

	*buf = '\0';
	for (i = 0; i < sizeof(http_methods) / sizeof(http_methods[0]); i++) {
		for (j = 0; j < HTTP_NROUTES; j++) {
			if (http_routes[j].method == http_methods[i].method &&
			    http_row_on(h, &http_routes[j]) &&
			    http_match(http_routes[j].pattern, path, &pp))
				break;
		}
		if (j == HTTP_NROUTES || off >= len)
			continue;
		n = snprintf(buf + off, len - off, "%s%s", off > 0 ? ", " : "",
		    http_methods[i].name);
		off += n > 0 ? (size_t)n : 0;
	}
}

/*
 * The router: every request comes here (evhttp_set_gencb), because paths carry
 * parameters. Order: route and zone syntax (400 7003/7000), method (405),
 * authentication (400/403), zone and access (403), then the route's own checks.
 */
/*
 * The checks of a request's head, in http_dispatch()'s order; on success *rowp, pp and
 * *credp (NULL for an open route) are set.
 */
static const struct http_err *
http_check(struct http *h, int method, const char *path, struct evkeyvalq *headers,
    const struct http_row **rowp, struct http_params *pp, const struct cred **credp,
    char *allow, size_t len)
{
	const struct http_row		*row;
	const struct http_err		*e;
	int				 known;

	*credp = NULL;
	*rowp = row = http_route_find(h, path, (enum evhttp_cmd_type)method, pp, &known);
	if (row == NULL && known) {
		http_allow(h, path, allow, len);
		return &http_err_method;
	}
	if (row == NULL)
		return &http_err_no_route;
	if (row->flags & HTTP_F_OPEN)
		return NULL;
	if ((e = http_auth(h, headers, credp)) != NULL) {
		http_metrics_auth_failed(h->m, e == &http_err_token || e == &http_err_pair);
		return e;
	}
	if (!cred_allows(*credp, pp->zone, (row->flags & HTTP_F_WRITES) != 0))
		return &http_err_token;
	return NULL;
}

const struct http_err *
http_head_check(struct http *h, int method, const char *path, struct evkeyvalq *headers,
    int *route, char *allow, size_t len)
{
	const struct http_row		*row;
	const struct cred		*cred;
	const struct http_err		*e;
	struct http_params		 pp;

	e = http_check(h, method, path, headers, &row, &pp, &cred, allow, len);
	*route = row != NULL ? (int)row->route : HTTP_R_NONE;
	return e;
}

/* Answer e, from http_head_check() or a refusal of http-conn.c. */
static void
http_send_check(struct http *h, struct evhttp_request *req, const struct http_err *e,
    int route, const char *path, const char *allow, double t0)
{
	if (e == &http_err_method)
		http_send_bad_method(h, req, allow, t0);
	else if (e == &http_err_no_route)
		http_send_no_route(h, req, path, t0);
	else
		http_send_err(h, req, (enum http_route)route, t0, e);
}

/*
 * The router: every request comes here (evhttp_set_gencb), because paths carry
 * parameters. Order: route and zone syntax (400 7003/7000), method (405),
 * authentication (400/403), zone and access (403), then the route's own checks. A
 * request that http-conn.c refused before evhttp read it gets that refusal.
 */
static void
http_dispatch(struct evhttp_request *req, void *arg)
{
	struct http			*h = arg;
	const struct evhttp_uri		*uri = evhttp_request_get_evhttp_uri(req);
	const struct http_row		*row;
	const struct cred		*cred = NULL;
	const struct http_err		*e;
	struct http_params		 pp;
	const char			*path = NULL, *allow, *rpath;
	char				 allowbuf[HTTP_ALLOW_MAX];
	double				 t0 = http_now();
	int				 route;

	e = http_conn_refused(http_conn_dispatched(h->conns, req), &route, &allow, &rpath);
	if (e != NULL) {
		http_send_check(h, req, e, route, rpath, allow, t0);
		return;
	}
	if (uri != NULL)
		path = evhttp_uri_get_path(uri);
	if (path == NULL || *path == '\0')
		path = "/";
	if ((e = http_check(h, evhttp_request_get_command(req), path,
	    evhttp_request_get_input_headers(req), &row, &pp, &cred, allowbuf,
	    sizeof(allowbuf))) != NULL) {
		http_send_check(h, req, e, row != NULL ? (int)row->route : HTTP_R_NONE, path,
		    allowbuf, t0);
		return;
	}
	row->handler(h, req, row, cred, pp.zone, pp.id, t0);
}

/*
 * The metrics listener's router (metrics_port): GET /metrics, with its token when one is
 * set, and nothing else; no API credential is asked or accepted here.
 */
static void
http_dispatch_metrics(struct evhttp_request *req, void *arg)
{
	struct http			*h = arg;
	const struct evhttp_uri		*uri = evhttp_request_get_evhttp_uri(req);
	const struct http_err		*e;
	const char			*path = NULL, *allow, *rpath;
	double				 t0 = http_now();
	size_t				 i;
	int				 route;

	e = http_conn_refused(http_conn_dispatched(h->conns, req), &route, &allow, &rpath);
	if (e != NULL) {
		http_send_check(h, req, e, route, rpath, allow, t0);
		return;
	}
	if (uri != NULL)
		path = evhttp_uri_get_path(uri);
	if (path == NULL || strcmp(path, "/metrics") != 0) {
		http_send_no_route(h, req, path != NULL && *path != '\0' ? path : "/", t0);
		return;
	}
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		http_send_bad_method(h, req, "GET", t0);
		return;
	}
	for (i = 0; i < HTTP_NROUTES; i++)
		if (http_routes[i].route == HTTP_R_METRICS)
			break;
	http_metrics(h, req, &http_routes[i], NULL, "", "", t0);
}

/* Every connection's bufferevent: TLS or not (http-tls.c), watched by http-conn.c. */
static struct bufferevent *
http_bevcb(struct event_base *base, void *arg)
{
	struct http	*h = arg;

	return http_conns_watch(h->conns, http_tls_bevcb(base, h->tls));
}

/*
 * An evhttp server of ours: every method accepted (so that a wrong one gets our JSON 405,
 * not evhttp's HTML), connections watched by http-conn.c (whose header cap comes first;
 * evhttp's is a backstop), evhttp's idle timeout, requests to cb.
 */
static struct evhttp *
http_evhttp_new(struct http *h, const struct http_config *conf, size_t body_max,
    void (*cb)(struct evhttp_request *, void *))
{
	struct evhttp	*evh;
	struct timeval	 tv;

	if ((evh = evhttp_new(h->base)) == NULL)
		return NULL;
	evhttp_set_allowed_methods(evh, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	    EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
	    EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
	evhttp_set_max_body_size(evh, body_max);
	evhttp_set_bevcb(evh, http_bevcb, h);
	evhttp_set_max_headers_size(evh, conf->limits.max_header_bytes > 0 ?
	    (size_t)conf->limits.max_header_bytes : HTTP_DEF_MAX_HEADER_BYTES);
	tv.tv_sec = conf->http_timeout_s > 0 ? conf->http_timeout_s : 30;
	tv.tv_usec = 0;
	evhttp_set_timeout_tv(evh, &tv);
	evhttp_set_gencb(evh, cb, h);
	return evh;
}

/*
 * The metrics listener (metrics_address, metrics_port): plain HTTP, under the same
 * connection limits as the API's (http-conn.c watches its connections too).
 */
static int
http_metrics_listen(struct http *h, const struct http_config *conf, char **cause)
{
	const char			*addr = conf->metrics_address != NULL ?
					    conf->metrics_address : conf->address;
	struct evhttp_bound_socket	*bound;

	if (conf->tls_cert != NULL) {
		/* Connections are watched as TLS or not all alike (http_conns_new()). */
		xasprintf(cause, "metrics_port cannot be used with TLS; scrape /metrics on "
		    "the TLS listener");
		return KC_ERR_INVALID;
	}
	if ((h->mevh = http_evhttp_new(h, conf, 0, http_dispatch_metrics)) == NULL) {
		xasprintf(cause, "evhttp_new failed");
		return KC_ERR_NOMEM;
	}
	if ((bound = evhttp_bind_socket_with_handle(h->mevh, addr,
	    (ev_uint16_t)conf->metrics_port)) == NULL) {
		xasprintf(cause, "cannot listen for metrics on %s port %d", addr,
		    conf->metrics_port);
		return KC_ERR_INTERNAL;
	}
	http_conns_listen(h->conns, evhttp_bound_socket_get_listener(bound));
	log_info("metrics on %s port %d%s", addr, conf->metrics_port,
	    h->metrics_token != NULL ? " (bearer token required)" : "");
	return 0;
}

struct http *
http_new(struct event_base *base, const struct http_config *conf, struct cred_table *creds,
    char **cause)
{
	struct http		*h;
	struct evhttp_bound_socket *bound;
	evutil_socket_t		 fd;
	size_t			 i;
	int			 one = 1;

	if (http_self != NULL) {
		xasprintf(cause, "one server per process");
		return NULL;
	}
	h = xcalloc(1, sizeof(*h));
	h->base = base;
	http_self = h;
	for (i = 0; i < HTTP_NROUTES; i++)
		h->names[http_routes[i].route] = http_routes[i].name;
	h->names[HTTP_R_NONE] = "none";
	for (i = 0; i < HTTP_R_MAX; i++) {
		if (h->names[i] == NULL)
			fatalx("route %zu has no row", i);
	}
	h->m = http_metrics_new(h->names);
	http_compat_init(base, h->m);
	h->creds = creds;
	h->metrics_on = conf->metrics;
	if (http_tls_args(conf, cause) != 0)
		goto fail;
	if (conf->tls_cert != NULL && (h->tls = http_tls_new(conf, cause)) == NULL)
		goto fail;
	/* Our connection limits; the daemon's sockets, the listener and logs beside. */
	if ((h->conns = http_conns_new(base, h, &conf->limits, (conf->daemon_conns > 0 ?
	    conf->daemon_conns : 4) + 4, conf->tls_cert != NULL, h->m, cause)) == NULL)
		goto fail;
	/*
	 * evhttp refuses bodies over HTTP_BODY_MAX itself, chunked ones included, and
	 * http-compat.c turns its 413 into our 400/1400. Lingering close: a body with a
	 * Content-Length is read to its end (and dropped) before that answer, so that the
	 * client, still sending, does not get a reset instead of it.
	 */
	if ((h->evh = http_evhttp_new(h, conf, HTTP_BODY_MAX, http_dispatch)) == NULL) {
		xasprintf(cause, "evhttp_new failed");
		goto fail;
	}
	evhttp_set_flags(h->evh, EVHTTP_SERVER_LINGERING_CLOSE);
	evhttp_set_default_content_type(h->evh, "application/json");
	if ((bound = evhttp_bind_socket_with_handle(h->evh, conf->address,
	    (ev_uint16_t)conf->port)) == NULL) {
		xasprintf(cause, "cannot listen on %s port %d", conf->address, conf->port);
		goto fail;
	}
	/*
	 * Small JSON replies must not wait for the client's delayed ACK (Nagle): measured,
	 * list/get p50 went from 44 ms to 5.6 ms. Accepted sockets inherit the option.
	 */
	http_conns_listen(h->conns, evhttp_bound_socket_get_listener(bound));
	fd = evhttp_bound_socket_get_fd(bound);
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1)
		log_warn("setsockopt TCP_NODELAY");
	if (conf->metrics_token != NULL)
		h->metrics_token = xstrdup(conf->metrics_token);
	if (h->metrics_on && conf->metrics_port > 0 && http_metrics_listen(h, conf,
	    cause) != 0)
		goto fail;
	return h;
 fail:
	h->creds = NULL;	/* the caller still owns them on failure */
	http_free(h);
	return NULL;
}

/*
 * Try the daemon's socket once as whoever we are now: a refusal by its mode or group
 * would otherwise only show as a pool that never comes up.
 */
static int
http_probe_daemon(const char *path, char **cause)
{
	struct sockaddr_un	 sun;
	int			 fd, e = 0;

	if (path == NULL && (path = getenv("KEYCUSTODY_SOCKET")) == NULL)
		path = KC_DEFAULT_SOCKET;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		xasprintf(cause, "daemon socket path too long: %s", path);
		return KC_ERR_INVALID;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		xasprintf(cause, "socket: %s", strerror(errno));
		return KC_ERR_INTERNAL;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
		e = errno;
	close(fd);
	if (e == EACCES || e == EPERM) {
		xasprintf(cause, "daemon socket %s: %s for uid %u gid %u: give the shim's "
		    "user or group (--group) access to it", path, strerror(e),
		    (unsigned)geteuid(), (unsigned)getegid());
		return KC_ERR_DENIED;
	}
	if (e != 0)
		log_warnx("daemon socket %s: %s: retrying", path, strerror(e));
	return 0;
}

int
http_connect(struct http *h, const struct http_config *conf, char **cause)
{
	int	 r;

	*cause = NULL;
	if (h->daemon != NULL) {
		xasprintf(cause, "already connected");
		return KC_ERR_INTERNAL;
	}
	if ((r = http_probe_daemon(conf->socket, cause)) != 0)
		return r;
	h->daemon = kcc_async_new(h->base, conf->socket, conf->daemon_conns > 0 ?
	    conf->daemon_conns : 4, conf->daemon_timeout_ms, conf->max_pending > 0 ?
	    (size_t)conf->max_pending : 256);
	if (h->daemon == NULL) {
		xasprintf(cause, "cannot set up the daemon connections (socket path?)");
		return KC_ERR_INTERNAL;
	}
	return 0;
}

void
http_set_creds(struct http *h, struct cred_table *creds)
{
	/* No request keeps a credential across the loop: msg.actor is packed at once. */
	cred_table_free(h->creds);
	h->creds = creds;
}

void
http_free(struct http *h)
{
	if (h == NULL)
		return;
	/* First: answers to pending calls go out through evhttp, which must still exist. */
	kcc_async_free(h->daemon);
	if (h->evh != NULL)
		evhttp_free(h->evh);
	if (h->mevh != NULL)
		evhttp_free(h->mevh);
	http_conns_free(h->conns);	/* after evhttp_free(): it closes the connections */
	http_compat_uninit();
	http_metrics_free(h->m);
	SSL_CTX_free(h->tls);		/* after the connections, whose SSLs hold it */
	cred_table_free(h->creds);
	if (h->metrics_token != NULL)
		freezero_kc(h->metrics_token, strlen(h->metrics_token));
	if (http_self == h)
		http_self = NULL;
	free(h);
}
