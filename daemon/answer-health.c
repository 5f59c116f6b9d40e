/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * answer-health.c: the health request, answered on the event loop from the daemon's
 * counters and states (no I/O).
 */
#include "config.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "answer.h"
#include "audit.h"
#include "control.h"
#include "custody.h"
#include "dispatch.h"
#include "hsm.h"
#include "kc-proto.h"
#include "kcd.h"
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

void
answer_health(struct kcd *kcd, Keycustody__Response *resp)
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
	resp->body_case = KEYCUSTODY__RESPONSE__BODY_HEALTH;
	resp->health = h;
}
