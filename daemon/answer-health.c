/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * answer-health.c: the health and metrics requests, answered on the event loop from the
 * daemon's counters and states (no I/O).
 */
#include "config.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "answer.h"
#include "audit.h"
#include "control.h"
#include "custody.h"
#include "dispatch.h"
#include "hsm.h"
#include "kc-proto.h"
#include "kcd.h"
#include "metrics.h"
#include "pool.h"
#include "xmalloc.h"

/* Duplicates and incomplete pairs of ours degrade; debris, not provably ours, is counted. */
static const char *
answer_hsm_state(const struct kcd *kcd, const struct hsm_stats *st)
{
	switch (hsm_get_state(kcd->hsm)) {
	case HSM_STATE_OK:
		if (atomic_load(&kcd->records_missing_key) > 0 ||
		    atomic_load(&kcd->orphan_keys) > 0 ||
		    st->token_duplicates > 0 || st->token_incomplete > 0 ||
		    custody_pending_count(kcd->pending) > 0)
			return "degraded";
		return "ok";
	case HSM_STATE_LOGIN_FAILED:
		return "login_failed";
	default:
		return "down";
	}
}

/* What the token offers: key types and their mechanisms, refusals, history, the MAC. */
static void
answer_health_keytypes(const struct kcd *kcd, Keycustody__HealthResponse *h)
{
	char		 buf[256];
	const char	*missing;
	int		 i;

	h->hsm_key_types = xcalloc(HSM_KEY_NTYPES, sizeof(*h->hsm_key_types));
	h->hsm_sign_mechanisms = xcalloc(HSM_KEY_NTYPES, sizeof(*h->hsm_sign_mechanisms));
	h->hsm_key_types_refused = xcalloc(HSM_KEY_NTYPES,
	    sizeof(*h->hsm_key_types_refused));
	for (i = 0; i < HSM_KEY_NTYPES; i++) {
		if (hsm_keytype_info(kcd->hsm, (enum hsm_keytype)i, buf, sizeof(buf))) {
			h->hsm_key_types[h->n_hsm_key_types++] =
			    xstrdup(hsm_keytype_name((enum hsm_keytype)i));
			h->hsm_sign_mechanisms[h->n_hsm_sign_mechanisms++] = xstrdup(buf);
		} else
			xasprintf(&h->hsm_key_types_refused[h->n_hsm_key_types_refused++],
			    "%s: %s", hsm_keytype_name((enum hsm_keytype)i), buf);
	}
	if ((missing = hsm_history_missing(kcd->hsm)) != NULL)
		h->hsm_key_history_missing = xstrdup(missing);
	h->hsm_audit_mac = xstrdup(hsm_mac_offered(kcd->hsm) ? "CKM_SHA256_HMAC" : "none");
}

/* The health figures. @retval a HealthResponse freed with its Response */
static Keycustody__HealthResponse *
answer_health_new(struct kcd *kcd)
{
	Keycustody__HealthResponse	*h;
	struct hsm_stats		 st;
	struct control_stats		 cs;
	struct disp_stats		 ds;

	hsm_get_stats(kcd->hsm, &st);
	control_stats(kcd->control, &cs);
	disp_stats(kcd->disp, &ds);
	h = xcalloc(1, sizeof(*h));
	keycustody__health_response__init(h);
	h->hsm_state = xstrdup(answer_hsm_state(kcd, &st));
	h->store_ok = kcd->store_ok;
	h->token_label = xstrdup(hsm_token_label(kcd->hsm));
	h->has_keys_in_custody = 1;
	h->keys_in_custody = atomic_load(&kcd->keys_in_custody);
	h->has_queue_depth = 1;
	h->queue_depth = pool_depth(kcd->pool);
	h->has_queue_limit = 1;
	h->queue_limit = pool_limit(kcd->pool);
	h->has_workers = 1;
	h->workers = pool_workers(kcd->pool);
	h->signer = xstrdup(hsm_get_signer(kcd->hsm) == HSM_SIGNER_ENGINE ?
	    "engine" : "direct");
	h->version = xstrdup(PACKAGE_VERSION);
	h->has_uptime_seconds = 1;
	h->uptime_seconds = (uint64_t)(time(NULL) - kcd->started);
	h->has_records_missing_key = 1;
	h->records_missing_key = atomic_load(&kcd->records_missing_key);
	h->has_orphan_keys = 1;
	h->orphan_keys = atomic_load(&kcd->orphan_keys);
	h->has_audit_ok = 1;
	h->audit_ok = audit_ok(kcd->audit);
	h->has_hsm_module_failures = 1;
	h->hsm_module_failures = st.module_failures;
	h->has_hsm_recoveries = 1;
	h->hsm_recoveries = st.recoveries;
	h->has_hsm_recovery_failures = 1;
	h->hsm_recovery_failures = st.recovery_failures;
	h->has_hsm_session_repairs = 1;
	h->hsm_session_repairs = st.session_repairs;
	h->has_hsm_timeouts = 1;
	h->hsm_timeouts = st.timeouts;
	h->has_hsm_refusals = 1;
	h->hsm_refusals = st.refusals;
	h->has_hsm_probe_stalls = 1;
	h->hsm_probe_stalls = st.probe_stalls;
	h->has_unresolved_creates = 1;
	h->unresolved_creates = custody_pending_count(kcd->pending);
	h->has_connections = 1;
	h->connections = cs.conns;
	h->has_connection_limit = 1;
	h->connection_limit = cs.max_conns;
	h->has_admin_connections = 1;
	h->admin_connections = cs.admin_conns;
	h->has_gateway_connections = 1;
	h->gateway_connections = cs.gateway_conns;
	h->has_reader_connections = 1;
	h->reader_connections = cs.reader_conns;
	h->has_connections_refused = 1;
	h->connections_refused = cs.refused;
	h->has_connections_cut_off = 1;
	h->connections_cut_off = cs.cut_off;
	h->has_log_lines_suppressed = 1;
	h->log_lines_suppressed = cs.log_suppressed + ds.log_suppressed;
	h->has_creates_running = 1;
	h->creates_running = ds.creates_running;
	h->has_creates_waiting = 1;
	h->creates_waiting = ds.creates_waiting;
	h->has_creates_rate_limited = 1;
	h->creates_rate_limited = ds.creates_limited;
	h->has_creates_over_quota = 1;
	h->creates_over_quota = atomic_load(&kcd->creates_over_quota);
	h->has_destroys_yielded = 1;
	h->destroys_yielded = custody_yield_count(kcd->yield);
	h->has_token_pairs = 1;
	h->token_pairs = st.token_pairs;
	h->has_token_duplicates = 1;
	h->token_duplicates = st.token_duplicates;
	h->has_token_incomplete = 1;
	h->token_incomplete = st.token_incomplete;
	h->has_token_debris = 1;
	h->token_debris = st.token_debris;
	h->has_hsm_searches = 1;
	h->hsm_searches = st.searches;
	h->has_hsm_scans = 1;
	h->hsm_scans = st.scans;
	answer_health_keytypes(kcd, h);
	return h;
}

void
answer_health(struct kcd *kcd, Keycustody__Response *resp)
{
	resp->body_case = KEYCUSTODY__RESPONSE__BODY_HEALTH;
	resp->health = answer_health_new(kcd);
}

/* The names of enum kcd_hsm_op in MetricsResponse.hsm_operations. */
static const char *const answer_hsm_op_names[KCD_HSM_NOPS] = {
	[KCD_HSM_KEYGEN] = "keygen",
	[KCD_HSM_SIGN] = "sign",
	[KCD_HSM_DESTROY] = "destroy",
};

/* The token operations' latencies: each operation once, and by each key type it saw. */
static void
answer_metrics_hsm_ops(struct kcd *kcd, Keycustody__MetricsResponse *m)
{
	Keycustody__OperationLatency	*ol;
	size_t				 n = 0;
	int				 op, t;

	m->hsm_operations = xcalloc(KCD_HSM_NOPS * KCD_NKEYTYPES,
	    sizeof(*m->hsm_operations));
	for (op = 0; op < KCD_HSM_NOPS; op++) {
		for (t = 0; t < KCD_NKEYTYPES; t++) {
			if (t != KCD_KEYTYPE_NONE &&
			    atomic_load(&kcd->hsm_ops[op][t].count) == 0)
				continue;
			ol = xcalloc(1, sizeof(*ol));
			keycustody__operation_latency__init(ol);
			ol->op = xstrdup(answer_hsm_op_names[op]);
			ol->key_type = xstrdup(t == KCD_KEYTYPE_NONE ? "none" :
			    hsm_keytype_name((enum hsm_keytype)t));
			ol->latency = metrics_hist_pack(&kcd->hsm_ops[op][t]);
			m->hsm_operations[n++] = ol;
		}
	}
	m->n_hsm_operations = n;
}

#define ANSWER_MAX_CKR	128

/* The signer role's counts by key and peer uid, and its rate limit's refusals. */
static void
answer_metrics_signs(struct kcd *kcd, Keycustody__MetricsResponse *m)
{
	Keycustody__SignCount	*c;
	struct sign_count	*v;
	size_t			 n, i;

	sign_stats_snapshot(&kcd->sign_stats, false, &v, &n);
	m->sign_counts = xcalloc(n > 0 ? n : 1, sizeof(*m->sign_counts));
	for (i = 0; i < n; i++) {
		c = m->sign_counts[i] = xcalloc(1, sizeof(*c));
		keycustody__sign_count__init(c);
		c->key_id.data = xmalloc(SIGN_KEY_ID_LEN);
		memcpy(c->key_id.data, v[i].key_id, SIGN_KEY_ID_LEN);
		c->key_id.len = SIGN_KEY_ID_LEN;
		c->uid = (uint32_t)v[i].uid;
		c->signatures = v[i].total[SIGN_OK];
		c->refusals = v[i].total[SIGN_REFUSED];
		c->failures = v[i].total[SIGN_FAILED];
	}
	m->n_sign_counts = n;
	free(v);
	m->has_sign_rate_limited = 1;
	m->sign_rate_limited = kcd->sign_limiter.limited;
}

void
answer_metrics(struct kcd *kcd, Keycustody__Response *resp)
{
	Keycustody__MetricsResponse	*m;
	struct hsm_ckr_count		 ckr[ANSWER_MAX_CKR];
	size_t				 i, n;

	m = xcalloc(1, sizeof(*m));
	keycustody__metrics_response__init(m);
	m->health = answer_health_new(kcd);
	metrics_bounds_pack(m);
	disp_metrics(kcd->disp, m);
	answer_metrics_hsm_ops(kcd, m);
	n = hsm_ckr_errors(ckr, ANSWER_MAX_CKR);
	m->ckr_errors = xcalloc(n > 0 ? n : 1, sizeof(*m->ckr_errors));
	for (i = 0; i < n; i++) {
		m->ckr_errors[i] = xcalloc(1, sizeof(**m->ckr_errors));
		keycustody__ckr_count__init(m->ckr_errors[i]);
		m->ckr_errors[i]->name = xstrdup(ckr[i].name);
		m->ckr_errors[i]->count = ckr[i].count;
	}
	m->n_ckr_errors = n;
	m->audit_writes = metrics_hist_pack(audit_write_latency(kcd->audit));
	m->has_audit_write_failures = 1;
	m->audit_write_failures = audit_write_failures(kcd->audit);
	m->has_reconciled_records = 1;
	m->reconciled_records = atomic_load(&kcd->reconciled_records);
	m->has_resolved_creates = 1;
	m->resolved_creates = atomic_load(&kcd->resolved_creates);
	answer_metrics_signs(kcd, m);
	resp->body_case = KEYCUSTODY__RESPONSE__BODY_METRICS;
	resp->metrics = m;
}
