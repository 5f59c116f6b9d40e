/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * http-metrics.c: the shim's Prometheus metrics: per-route counters and histograms, and
 * their text for GET /metrics, with the daemon's figures (MetricsResponse) as fetched for
 * this scrape. docs/METRICS.md lists every name.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "kc-proto.h"
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

/* One family's HELP and TYPE lines. */
static void
http_family(struct evbuffer *b, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One unlabelled sample, with its family's lines. */
static void
http_sample(struct evbuffer *b, const char *name, const char *type, const char *help,
    unsigned long long v)
{
	http_family(b, name, type, help);
	evbuffer_add_printf(b, "%s %llu\n", name, v);
}

/*
 * A daemon histogram (cumulative buckets over bounds) with the labels lab ("" for none,
 * else 'a="x",b="y"').
 */
static void
http_dhist_print(struct evbuffer *b, const char *name, const char *lab,
    const double *bounds, size_t nbounds, const Keycustody__Histogram *hh)
{
	const char	*sep = *lab != '\0' ? "," : "";
	size_t		 i;

	for (i = 0; i < nbounds && i < hh->n_buckets; i++)
		evbuffer_add_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, lab, sep,
		    bounds[i], (unsigned long long)hh->buckets[i]);
	evbuffer_add_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, lab, sep,
	    (unsigned long long)hh->count);
	evbuffer_add_printf(b, "%s_sum%s%s%s %.6f\n", name, *lab ? "{" : "", lab,
	    *lab ? "}" : "", hh->sum);
	evbuffer_add_printf(b, "%s_count%s%s%s %llu\n", name, *lab ? "{" : "", lab,
	    *lab ? "}" : "", (unsigned long long)hh->count);
}

/* The latency family name of op/key_type histograms. */
static void
http_dops_print(struct evbuffer *b, const char *name, const char *help,
    const Keycustody__MetricsResponse *dm, Keycustody__OperationLatency *const *v, size_t n)
{
	char	 lab[160];
	size_t	 i;

	http_family(b, name, "histogram", help);
	for (i = 0; i < n; i++) {
		snprintf(lab, sizeof(lab), "op=\"%s\",key_type=\"%s\"", v[i]->op,
		    v[i]->key_type);
		http_dhist_print(b, name, lab, dm->bucket_bounds, dm->n_bucket_bounds,
		    v[i]->latency);
	}
}

/* A label value (NULL: empty), escaped as the text format wants: \\, \" and \\n. */
static void
http_label_value(struct evbuffer *b, const char *s)
{
	for (; s != NULL && *s != '\0'; s++) {
		if (*s == '\\' || *s == '"')
			evbuffer_add_printf(b, "\\%c", *s);
		else if (*s == '\n')
			evbuffer_add_printf(b, "\\n");
		else
			evbuffer_add(b, s, 1);
	}
}

/* The states of keycustody_hsm_state, as health names them. */
static const char *const http_hsm_states[] = { "ok", "degraded", "down", "login_failed" };

/* The signer role's counts: by key (CKA_ID in hex), peer uid and result. */
static void
http_metrics_signs(struct evbuffer *b, const Keycustody__MetricsResponse *dm)
{
	static const char	 hex[] = "0123456789abcdef";
	const Keycustody__SignCount *c;
	char			 kid[2 * 16 + 1];
	size_t			 i, j;

	http_family(b, "keycustody_signatures_total", "counter", "Sign requests of the "
	    "signer role by key (CKA_ID, hex), peer uid and result: signed, refused (scope, "
	    "binding, input or sign_rate), failed (the token).");
	for (i = 0; i < dm->n_sign_counts; i++) {
		c = dm->sign_counts[i];
		for (j = 0; j < c->key_id.len && j < 16; j++) {
			kid[2 * j] = hex[c->key_id.data[j] >> 4];
			kid[2 * j + 1] = hex[c->key_id.data[j] & 0xf];
		}
		kid[2 * j] = '\0';
		evbuffer_add_printf(b, "keycustody_signatures_total{key_id=\"%s\",uid=\"%u\","
		    "result=\"signed\"} %llu\n", kid, c->uid,
		    (unsigned long long)c->signatures);
		evbuffer_add_printf(b, "keycustody_signatures_total{key_id=\"%s\",uid=\"%u\","
		    "result=\"refused\"} %llu\n", kid, c->uid,
		    (unsigned long long)c->refusals);
		evbuffer_add_printf(b, "keycustody_signatures_total{key_id=\"%s\",uid=\"%u\","
		    "result=\"failed\"} %llu\n", kid, c->uid, (unsigned long long)c->failures);
	}
	http_sample(b, "keycustody_sign_rate_limited_total", "counter", "Sign requests "
	    "refused by sign_rate (per peer uid).", dm->sign_rate_limited);
}

/* The daemon's part of /metrics, from one MetricsResponse. */
static void
http_metrics_daemon(struct evbuffer *b, const Keycustody__MetricsResponse *dm)
{
	const Keycustody__HealthResponse	*hr = dm->health;
	size_t					 i;

	http_family(b, "keycustody_hsm_state", "gauge", "The token's state as health "
	    "reports it: 1 for the current state, 0 for the others.");
	for (i = 0; i < sizeof(http_hsm_states) / sizeof(http_hsm_states[0]); i++)
		evbuffer_add_printf(b, "keycustody_hsm_state{state=\"%s\"} %d\n",
		    http_hsm_states[i], strcmp(hr->hsm_state, http_hsm_states[i]) == 0);
	http_family(b, "keycustody_info", "gauge", "The daemon's version, signer and "
	    "token label (always 1).");
	evbuffer_add_printf(b, "keycustody_info{version=\"");
	http_label_value(b, hr->version);
	evbuffer_add_printf(b, "\",signer=\"");
	http_label_value(b, hr->signer);
	evbuffer_add_printf(b, "\",token=\"");
	http_label_value(b, hr->token_label);
	evbuffer_add_printf(b, "\"} 1\n");
	http_sample(b, "keycustody_store_ok", "gauge", "1 while the store answers.",
	    hr->store_ok);
	http_sample(b, "keycustody_audit_ok", "gauge", "1 while the audit log takes writes "
	    "(operations are refused while it does not).", hr->audit_ok);
	http_sample(b, "keycustody_uptime_seconds", "gauge", "Seconds since the daemon "
	    "started.", hr->uptime_seconds);
	http_sample(b, "keycustody_keys_in_custody", "gauge", "Key pairs with a finished "
	    "record (READY).", hr->keys_in_custody);
	http_sample(b, "keycustody_records_missing_key", "gauge", "Records whose key the "
	    "start-up reconciliation did not find in the token.", hr->records_missing_key);
	http_sample(b, "keycustody_orphan_keys", "gauge", "Keys of ours in the token that "
	    "no record owns (start-up reconciliation).", hr->orphan_keys);
	http_family(b, "keycustody_token_objects", "gauge", "What the last token scan "
	    "found: pairs of ours, duplicate ids, incomplete pairs, debris.");
	evbuffer_add_printf(b, "keycustody_token_objects{kind=\"pairs\"} %llu\n"
	    "keycustody_token_objects{kind=\"duplicates\"} %llu\n"
	    "keycustody_token_objects{kind=\"incomplete\"} %llu\n"
	    "keycustody_token_objects{kind=\"debris\"} %llu\n",
	    (unsigned long long)hr->token_pairs, (unsigned long long)hr->token_duplicates,
	    (unsigned long long)hr->token_incomplete, (unsigned long long)hr->token_debris);
	http_sample(b, "keycustody_unresolved_creates", "gauge", "Failed creates that may "
	    "have left a key, waiting for the token to answer.", hr->unresolved_creates);
	http_family(b, "keycustody_hsm_events_total", "counter", "The token's history "
	    "since start-up, by event.");
	evbuffer_add_printf(b, "keycustody_hsm_events_total{event=\"module_failure\"} %llu\n"
	    "keycustody_hsm_events_total{event=\"recovery\"} %llu\n"
	    "keycustody_hsm_events_total{event=\"recovery_failure\"} %llu\n"
	    "keycustody_hsm_events_total{event=\"session_repair\"} %llu\n"
	    "keycustody_hsm_events_total{event=\"timeout\"} %llu\n"
	    "keycustody_hsm_events_total{event=\"refusal\"} %llu\n"
	    "keycustody_hsm_events_total{event=\"probe_stall\"} %llu\n"
	    "keycustody_hsm_events_total{event=\"search\"} %llu\n"
	    "keycustody_hsm_events_total{event=\"scan\"} %llu\n",
	    (unsigned long long)hr->hsm_module_failures,
	    (unsigned long long)hr->hsm_recoveries,
	    (unsigned long long)hr->hsm_recovery_failures,
	    (unsigned long long)hr->hsm_session_repairs,
	    (unsigned long long)hr->hsm_timeouts, (unsigned long long)hr->hsm_refusals,
	    (unsigned long long)hr->hsm_probe_stalls, (unsigned long long)hr->hsm_searches,
	    (unsigned long long)hr->hsm_scans);
	http_family(b, "keycustody_pkcs11_errors_total", "counter", "PKCS#11 calls that "
	    "ended in an error, by CKR_* name (a name appears after its first error).");
	for (i = 0; i < dm->n_ckr_errors; i++)
		evbuffer_add_printf(b, "keycustody_pkcs11_errors_total{ckr=\"%s\"} %llu\n",
		    dm->ckr_errors[i]->name, (unsigned long long)dm->ckr_errors[i]->count);
	http_sample(b, "keycustody_queue_depth", "gauge", "Jobs waiting for a worker.",
	    hr->queue_depth);
	http_sample(b, "keycustody_queue_limit", "gauge", "The most jobs that may wait.",
	    hr->queue_limit);
	http_sample(b, "keycustody_workers", "gauge", "Worker threads.", hr->workers);
	http_sample(b, "keycustody_requests_in_flight", "gauge", "Requests accepted and not "
	    "answered yet (waiting, queued or on a worker).", dm->requests_in_flight);
	http_sample(b, "keycustody_creates_running", "gauge", "Key creations on a worker.",
	    hr->creates_running);
	http_sample(b, "keycustody_creates_waiting", "gauge", "Key creations waiting for "
	    "their zone's or credential's turn.", hr->creates_waiting);
	http_family(b, "keycustody_creates_refused_total", "counter", "Key creations "
	    "refused: 429 by the pending-create limits, or over zone_key_quota.");
	evbuffer_add_printf(b, "keycustody_creates_refused_total{reason=\"rate_limited\"} "
	    "%llu\nkeycustody_creates_refused_total{reason=\"over_quota\"} %llu\n",
	    (unsigned long long)hr->creates_rate_limited,
	    (unsigned long long)hr->creates_over_quota);
	http_family(b, "keycustody_connections", "gauge", "Protocol connections open to "
	    "the daemon, by role.");
	evbuffer_add_printf(b, "keycustody_connections{role=\"admin\"} %u\n"
	    "keycustody_connections{role=\"gateway\"} %u\n"
	    "keycustody_connections{role=\"reader\"} %u\n", hr->admin_connections,
	    hr->gateway_connections, hr->reader_connections);
	http_sample(b, "keycustody_connection_limit", "gauge", "The most protocol "
	    "connections.", hr->connection_limit);
	http_sample(b, "keycustody_connections_refused_total", "counter", "Connections "
	    "refused at connect (no role, or no slot left for the role).",
	    hr->connections_refused);
	http_sample(b, "keycustody_connections_cut_off_total", "counter", "Peers cut off "
	    "for leaving replies unread.", hr->connections_cut_off);
	http_sample(b, "keycustody_log_lines_suppressed_total", "counter", "Refusal log "
	    "lines left out by refusal_log_rate.", hr->log_lines_suppressed);
	http_dops_print(b, "keycustody_request_duration_seconds", "Requests answered by a "
	    "worker, by request type (a create also by key type), from start to answer.", dm,
	    dm->requests, dm->n_requests);
	http_dops_print(b, "keycustody_hsm_operation_duration_seconds", "Token operations "
	    "(keygen, sign, destroy) by key type (none: not known).", dm,
	    dm->hsm_operations, dm->n_hsm_operations);
	http_family(b, "keycustody_audit_write_duration_seconds", "histogram", "Audit "
	    "record writes, each a write(2) and its fdatasync.");
	http_dhist_print(b, "keycustody_audit_write_duration_seconds", "",
	    dm->bucket_bounds, dm->n_bucket_bounds, dm->audit_writes);
	http_sample(b, "keycustody_audit_write_failures_total", "counter", "Audit record "
	    "writes that failed (the operation was refused).", dm->audit_write_failures);
	http_sample(b, "keycustody_reconciled_records_total", "counter", "Records the "
	    "start-up reconciliation removed with their key (unfinished creates and deletes).",
	    dm->reconciled_records);
	http_sample(b, "keycustody_resolved_creates_total", "counter", "Failed creates whose "
	    "possible key was removed once the token answered again.", dm->resolved_creates);
	http_metrics_signs(b, dm);
}

char *
http_metrics_text(const struct http_metrics *m, int connections,
    const Keycustody__MetricsResponse *dm)
{
	struct evbuffer		*b;
	char			*text;
	size_t			 len;
	int			 i, j;

	if ((b = evbuffer_new()) == NULL)
		return NULL;
	http_sample(b, "keycustody_daemon_up", "gauge", "1 when the daemon answered this "
	    "scrape's metrics request; 0 and no keycustody_ figures of the daemon otherwise.",
	    dm != NULL && dm->health != NULL && dm->audit_writes != NULL);
	if (dm != NULL && dm->health != NULL && dm->audit_writes != NULL)
		http_metrics_daemon(b, dm);
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
