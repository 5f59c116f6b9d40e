/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * http-metrics.c: the shim's Prometheus metrics: per-route counters and histograms, and
 * their text for GET /metrics.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>

#include <event2/buffer.h>

#include "xmalloc.h"
#include "http-int.h"
#include "http-metrics.h"

/* Prometheus histogram buckets, in seconds. */
static const double http_buckets[] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
};
#define HTTP_NBUCKETS	(sizeof(http_buckets) / sizeof(http_buckets[0]))

struct http_hist {
	uint64_t	 bucket[HTTP_NBUCKETS];	/* non-cumulative */
	uint64_t	 count;
	double		 sum;
};

#define HTTP_NSTATUS	24
struct http_status_count {
	int		 status;
	uint64_t	 count;
};

struct http_metrics {
	const char		*names[HTTP_R_MAX];	/* borrowed */
	struct http_status_count requests[HTTP_R_MAX][HTTP_NSTATUS];
	struct http_hist	 latency[HTTP_R_MAX];
	struct http_hist	 daemon_rtt[HTTP_R_MAX];
	uint64_t		 daemon_errors[HTTP_R_MAX];
	uint64_t		 gone;
	long			 inflight;
	uint64_t		 limited[HTTP_L_MAX];
	uint64_t		 auth_failed[2];	/* malformed, unknown credential */
	int			 conns;
	int			 conns_reserved;
};

/* The label of each enum http_limit in keycustody_http_limited_total. */
static const char *const http_limit_names[HTTP_L_MAX] = {
	[HTTP_L_CONNS] = "connections",
	[HTTP_L_CONNS_ADDR] = "connections_per_address",
	[HTTP_L_HEADER_TIME] = "header_timeout",
	[HTTP_L_BODY_TIME] = "body_timeout",
	[HTTP_L_HEADER_BYTES] = "header_bytes",
	[HTTP_L_HEADERS] = "header_count",
	[HTTP_L_FRAMING] = "framing",
	[HTTP_L_METHOD] = "method",
	[HTTP_L_EARLY_AUTH] = "refused_before_body",
	[HTTP_L_ACCEPT] = "accept_error",
	[HTTP_L_LOG] = "log_suppressed",
};

static void
http_hist_add(struct http_hist *hh, double v)
{
	size_t	 i;

	for (i = 0; i < HTTP_NBUCKETS; i++) {
		if (v <= http_buckets[i]) {
			hh->bucket[i]++;
			break;
		}
	}
	hh->count++;
	hh->sum += v;
}

void
http_metrics_request(struct http_metrics *m, int route, int status, double t0)
{
	struct http_status_count	*sc = m->requests[route];
	size_t				 i;

	for (i = 0; i < HTTP_NSTATUS; i++) {
		if (sc[i].status == status || sc[i].status == 0) {
			sc[i].status = status;
			sc[i].count++;
			break;
		}
	}
	http_hist_add(&m->latency[route], http_now() - t0);
}

static void
http_hist_print(struct evbuffer *b, const char *name, const char *route,
    const struct http_hist *hh)
{
	uint64_t	 cum = 0;
	size_t		 i;

	for (i = 0; i < HTTP_NBUCKETS; i++) {
		cum += hh->bucket[i];
		evbuffer_add_printf(b, "%s_bucket{route=\"%s\",le=\"%g\"} %llu\n", name,
		    route, http_buckets[i], (unsigned long long)cum);
	}
	evbuffer_add_printf(b, "%s_bucket{route=\"%s\",le=\"+Inf\"} %llu\n", name, route,
	    (unsigned long long)hh->count);
	evbuffer_add_printf(b, "%s_sum{route=\"%s\"} %.6f\n", name, route, hh->sum);
	evbuffer_add_printf(b, "%s_count{route=\"%s\"} %llu\n", name, route,
	    (unsigned long long)hh->count);
}

char *
http_metrics_text(const struct http_metrics *m, int connections)
{
	struct evbuffer		*b;
	char			*text;
	size_t			 len;
	int			 i, j;

	if ((b = evbuffer_new()) == NULL)
		return NULL;
	evbuffer_add_printf(b, "# HELP keycustody_http_requests_total HTTP requests "
	    "answered, by route and status.\n"
	    "# TYPE keycustody_http_requests_total counter\n");
	for (i = 0; i < HTTP_R_MAX; i++) {
		for (j = 0; j < HTTP_NSTATUS && m->requests[i][j].status != 0; j++)
			evbuffer_add_printf(b, "keycustody_http_requests_total{route=\"%s\","
			    "status=\"%d\"} %llu\n", m->names[i],
			    m->requests[i][j].status,
			    (unsigned long long)m->requests[i][j].count);
	}
	evbuffer_add_printf(b, "# HELP keycustody_http_request_duration_seconds Time "
	    "from request to reply.\n"
	    "# TYPE keycustody_http_request_duration_seconds histogram\n");
	for (i = 0; i < HTTP_R_MAX; i++)
		http_hist_print(b, "keycustody_http_request_duration_seconds",
		    m->names[i], &m->latency[i]);
	evbuffer_add_printf(b, "# HELP keycustody_http_daemon_duration_seconds Daemon "
	    "round-trip time.\n"
	    "# TYPE keycustody_http_daemon_duration_seconds histogram\n");
	for (i = 0; i < HTTP_R_METRICS; i++)
		http_hist_print(b, "keycustody_http_daemon_duration_seconds",
		    m->names[i], &m->daemon_rtt[i]);
	evbuffer_add_printf(b, "# HELP keycustody_http_daemon_errors_total Daemon calls "
	    "that got no answer (unavailable, timeout, connection lost).\n"
	    "# TYPE keycustody_http_daemon_errors_total counter\n");
	for (i = 0; i < HTTP_R_METRICS; i++)
		evbuffer_add_printf(b, "keycustody_http_daemon_errors_total{route=\"%s\"} "
		    "%llu\n", m->names[i], (unsigned long long)m->daemon_errors[i]);
	evbuffer_add_printf(b,
	    "# HELP keycustody_http_in_flight Requests waiting for the daemon.\n"
	    "# TYPE keycustody_http_in_flight gauge\n"
	    "keycustody_http_in_flight %ld\n"
	    "# HELP keycustody_http_daemon_connections Daemon connections up.\n"
	    "# TYPE keycustody_http_daemon_connections gauge\n"
	    "keycustody_http_daemon_connections %d\n"
	    "# HELP keycustody_http_clients_gone_total Clients that left before their "
	    "answer.\n"
	    "# TYPE keycustody_http_clients_gone_total counter\n"
	    "keycustody_http_clients_gone_total %llu\n",
	    m->inflight, connections,
	    (unsigned long long)m->gone);
	evbuffer_add_printf(b,
	    "# HELP keycustody_http_connections Client connections open.\n"
	    "# TYPE keycustody_http_connections gauge\n"
	    "keycustody_http_connections %d\n"
	    "# HELP keycustody_http_connections_reserved Of those, from reserve "
	    "addresses.\n"
	    "# TYPE keycustody_http_connections_reserved gauge\n"
	    "keycustody_http_connections_reserved %d\n"
	    "# HELP keycustody_http_limited_total Connections and requests refused by a "
	    "limit, accept() errors, log lines suppressed.\n"
	    "# TYPE keycustody_http_limited_total counter\n", m->conns, m->conns_reserved);
	for (i = 0; i < HTTP_L_MAX; i++)
		evbuffer_add_printf(b, "keycustody_http_limited_total{limit=\"%s\"} %llu\n",
		    http_limit_names[i], (unsigned long long)m->limited[i]);
	evbuffer_add_printf(b,
	    "# HELP keycustody_http_auth_failures_total Requests refused at authentication: "
	    "credentials missing or malformed, or not known (a wrong token or key).\n"
	    "# TYPE keycustody_http_auth_failures_total counter\n"
	    "keycustody_http_auth_failures_total{reason=\"malformed\"} %llu\n"
	    "keycustody_http_auth_failures_total{reason=\"unknown\"} %llu\n",
	    (unsigned long long)m->auth_failed[0], (unsigned long long)m->auth_failed[1]);
	len = evbuffer_get_length(b);
	text = xmalloc(len + 1);
	evbuffer_remove(b, text, len);
	text[len] = '\0';
	evbuffer_free(b);
	return text;
}

struct http_metrics *
http_metrics_new(const char *const *names)
{
	struct http_metrics	*m;
	int			 i;

	m = xcalloc(1, sizeof(*m));
	for (i = 0; i < HTTP_R_MAX; i++)
		m->names[i] = names[i];
	return m;
}

void
http_metrics_free(struct http_metrics *m)
{
	free(m);
}

void
http_metrics_call(struct http_metrics *m)
{
	m->inflight++;
}

void
http_metrics_called(struct http_metrics *m, int route, double tcall, int failed, int gone)
{
	m->inflight--;
	http_hist_add(&m->daemon_rtt[route], http_now() - tcall);
	if (gone)
		m->gone++;
	if (failed)
		m->daemon_errors[route]++;
}

void
http_metrics_refused(struct http_metrics *m, int route)
{
	m->daemon_errors[route]++;
}

void
http_metrics_auth_failed(struct http_metrics *m, int unknown)
{
	m->auth_failed[unknown != 0]++;
}

void
http_metrics_limit(struct http_metrics *m, int limit)
{
	if (limit >= 0 && limit < HTTP_L_MAX)
		m->limited[limit]++;
}

void
http_metrics_conns(struct http_metrics *m, int open, int reserved)
{
	m->conns = open;
	m->conns_reserved = reserved;
}
