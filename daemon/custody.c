/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * custody.c: the custody lifecycle of custody.h: the order of every step across the audit
 * log, the store and the token, so that a crash at any point leaves nothing half-made once
 * custody_reconcile() has run.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "audit.h"
#include "csr.h"
#include "custody.h"
#include "hsm.h"
#include "kc-api.h"
#include "kc-err.h"
#include "kc-util.h"
#include "kcd.h"
#include "log.h"
#include "metrics.h"
#include "signer.h"
#include "store.h"
#include "xmalloc.h"

struct custody_wait {
	char			 id[STORE_ID_LEN + 1];
	uint8_t			 key_id[STORE_KEY_ID_LEN];
};

struct custody_pending {
	pthread_mutex_t		 lock;
	struct custody_wait	*v;
	size_t			 n;
};

_Static_assert(KCD_KEYTYPE_NONE == HSM_KEY_NTYPES, "kcd.h's key type count");

/* Count a token operation that started at t0 in its latency histogram. */
static void
custody_timed(const struct custody *c, enum kcd_hsm_op op, int keytype,
    const struct timespec *t0)
{
	if (keytype < 0 || keytype >= HSM_KEY_NTYPES)
		keytype = KCD_KEYTYPE_NONE;
	metrics_hist_since(&c->kcd->hsm_ops[op][keytype], t0);
}

/* hsm_key_destroy(), timed (its key type is not known here). */
static int
custody_key_destroy(const struct custody *c, const uint8_t *key_id)
{
	struct timespec	 t0;
	int		 r;

	metrics_now(&t0);
	r = hsm_key_destroy(c->hs, key_id);
	custody_timed(c, KCD_HSM_DESTROY, KCD_KEYTYPE_NONE, &t0);
	return r;
}

struct custody_yield {
	pthread_mutex_t		 lock;
	pthread_cond_t		 idle;		/* signalled when creates drops to 0 */
	unsigned int		 creates;	/* queued or running */
	unsigned int		 max_ms;	/* destroy_yield_max; 0: never wait */
	uint64_t		 yielded;	/* destructions that waited */
};

struct custody_yield *
custody_yield_new(unsigned int max_ms)
{
	struct custody_yield	*y = xcalloc(1, sizeof(*y));
	pthread_condattr_t	 attr;

	pthread_mutex_init(&y->lock, NULL);
	/* Waits are timed on the clock the request deadline uses. */
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&y->idle, &attr);
	pthread_condattr_destroy(&attr);
	y->max_ms = max_ms;
	return y;
}

void
custody_yield_free(struct custody_yield *y)
{
	if (y == NULL)
		return;
	pthread_cond_destroy(&y->idle);
	pthread_mutex_destroy(&y->lock);
	free(y);
}

void
custody_yield_create_begin(struct custody_yield *y)
{
	if (y == NULL)
		return;
	pthread_mutex_lock(&y->lock);
	y->creates++;
	pthread_mutex_unlock(&y->lock);
}

void
custody_yield_create_end(struct custody_yield *y)
{
	if (y == NULL)
		return;
	pthread_mutex_lock(&y->lock);
	if (y->creates > 0 && --y->creates == 0)
		pthread_cond_broadcast(&y->idle);
	pthread_mutex_unlock(&y->lock);
}

uint64_t
custody_yield_count(struct custody_yield *y)
{
	uint64_t	 n;

	if (y == NULL)
		return 0;
	pthread_mutex_lock(&y->lock);
	n = y->yielded;
	pthread_mutex_unlock(&y->lock);
	return n;
}

unsigned int
custody_yield_creates(struct custody_yield *y)
{
	unsigned int	 n;

	if (y == NULL)
		return 0;
	pthread_mutex_lock(&y->lock);
	n = y->creates;
	pthread_mutex_unlock(&y->lock);
	return n;
}

/*
 * Before a destruction: wait while creates are queued or running, at most destroy_yield_max
 * and at most half of what is left of the request's deadline, so that the destruction
 * itself still has the other half: a delete is never answered "timed out" for yielding.
 */
static void
custody_yield_wait(struct custody_yield *y, const struct hsm_session *hs, const char *id)
{
	struct timespec	 until;
	unsigned int	 ms, left;
	int		 waited = 0;

	if (y == NULL || y->max_ms == 0)
		return;
	ms = y->max_ms;
	if ((left = hsm_session_time_left(hs)) != UINT_MAX && left / 2 < ms)
		ms = left / 2;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&y->lock);
	while (y->creates > 0 && ms > 0) {
		waited = 1;
		if (pthread_cond_timedwait(&y->idle, &y->lock, &until) == ETIMEDOUT) {
			log_debug("delete %s: creates still running after %u ms; destroying "
			    "anyway", id, ms);
			break;
		}
	}
	if (waited)
		y->yielded++;
	pthread_mutex_unlock(&y->lock);
}

struct custody_pending *
custody_pending_new(void)
{
	struct custody_pending	*p = xcalloc(1, sizeof(*p));

	pthread_mutex_init(&p->lock, NULL);
	return p;
}

void
custody_pending_free(struct custody_pending *p)
{
	if (p == NULL)
		return;
	pthread_mutex_destroy(&p->lock);
	free(p->v);
	free(p);
}

size_t
custody_pending_count(struct custody_pending *p)
{
	size_t	 n;

	if (p == NULL)
		return 0;
	pthread_mutex_lock(&p->lock);
	n = p->n;
	pthread_mutex_unlock(&p->lock);
	return n;
}

static void
custody_pending_add(struct custody_pending *p, const struct store_csr *rec)
{
	struct custody_wait	*w;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->v = xreallocarray(p->v, p->n + 1, sizeof(*p->v));
	w = &p->v[p->n++];
	memcpy(w->id, rec->id, sizeof(w->id));
	memcpy(w->key_id, rec->key_id, sizeof(w->key_id));
	pthread_mutex_unlock(&p->lock);
}

size_t
custody_finish_pending(const struct custody *c)
{
	struct custody_pending	*p = c->kcd->pending;
	struct custody_wait	 w;
	size_t			 i = 0, n;
	int			 r;

	if (p == NULL)
		return 0;
	for (;;) {
		pthread_mutex_lock(&p->lock);
		if (i >= p->n) {
			n = p->n;
			pthread_mutex_unlock(&p->lock);
			return n;
		}
		w = p->v[i];
		pthread_mutex_unlock(&p->lock);
		/* Not found is done too: reconciliation or a restart may have been first. */
		if ((r = custody_key_destroy(c, w.key_id)) == 0 &&
		    ((r = store_csr_remove(c->st, w.id)) == 0 || r == KC_ERR_NOT_FOUND)) {
			log_info("create %s: the token is back; the record and any key the "
			    "failed key generation made are removed", w.id);
			atomic_fetch_add(&c->kcd->resolved_creates, 1);
			pthread_mutex_lock(&p->lock);
			/* Only this function removes: index i still holds w. */
			p->v[i] = p->v[--p->n];
			pthread_mutex_unlock(&p->lock);
		} else
			i++;
	}
}

static int
custody_audit(const struct custody *c, const struct audit_actor *actor, const char *op,
    const char *zone, const char *id, const uint8_t *key_id, int r,
    const struct kc_error *err)
{
	return audit_op(c->kcd->audit, actor, op, zone, id, key_id, STORE_KEY_ID_LEN, r, err);
}

/*
 * Step 1's record, CREATING, from csr: strings borrowed, but for the country, copied as
 * sent (echoed so; the CSR's subject has it upper case, step 3).
 */
static int
custody_record(const struct custody_csr *csr, struct store_csr *rec)
{
	const struct csr_subject	*s = csr->subject;

	if (kc_uuid(rec->id) != 0 || RAND_bytes(rec->key_id, sizeof(rec->key_id)) != 1)
		return KC_ERR_CRYPTO;
	(void)snprintf(rec->zone_id, sizeof(rec->zone_id), "%s", csr->zone_id);
	rec->created_at_us = kc_now_us();
	rec->state = STORE_CSR_CREATING;
	rec->key_type = (char *)hsm_keytype_name(csr->key_type);
	rec->country = xstrdup(s->country);
	rec->state_name = (char *)s->state;
	rec->locality = (char *)s->locality;
	rec->organization = (char *)s->organization;
	rec->organizational_unit = s->organizational_unit != NULL &&
	    *s->organizational_unit != '\0' ? (char *)s->organizational_unit : NULL;
	rec->common_name = (char *)s->common_name;
	rec->sans = (char **)s->sans;
	rec->nsans = s->nsans;
	rec->name = (char *)csr->name;
	rec->description = (char *)csr->description;
	return 0;
}

int
custody_create(const struct custody *c, const struct audit_actor *actor,
    const struct custody_csr *csr, struct store_csr *rec)
{
	struct csr_subject	 subj;
	struct hsm_key		*key = NULL;
	struct timespec		 t0;
	char			 country[3];
	uint8_t			*der = NULL;
	size_t			 derlen;
	char			*pem = NULL;
	int			 r, begun = 0, inserted = 0, generated = 0, kept = 0;
	int			 maybe_made = 0;

	if ((r = custody_record(csr, rec)) != 0)
		goto out;
	/* The intent is on record before anything is made (fail closed). */
	if ((r = custody_audit(c, actor, "create_csr.begin", rec->zone_id, rec->id,
	    rec->key_id, 0, NULL)) != 0)
		goto out;
	begun = 1;

	/* Step 1: the record, state CREATING, key id chosen. */
	if ((r = store_csr_insert(c->st, rec)) != 0)
		goto out;
	inserted = 1;

	/*
	 * Step 2: the key pair in the token. A call that failed may still have made it (a
	 * network HSM whose reply was lost): hsm_keygen() says so, and the pair is looked
	 * for by its CKA_ID and destroyed (out:). When that cannot be done now, the record
	 * stays CREATING in the pending list until the token answers; it is never served.
	 */
	metrics_now(&t0);
	r = hsm_keygen(c->hs, csr->key_type, rec->key_id, rec->id, &key, &maybe_made);
	custody_timed(c, KCD_HSM_KEYGEN, (int)csr->key_type, &t0);
	if (r != 0)
		goto out;
	generated = 1;

	/* Step 3: the signed request, verified against the token's public key. */
	/* ISO 3166 codes are upper case in a subject (validated: two ASCII letters). */
	country[0] = (char)toupper((unsigned char)rec->country[0]);
	country[1] = (char)toupper((unsigned char)rec->country[1]);
	country[2] = '\0';
	subj.country = country;
	subj.state = rec->state_name;
	subj.locality = rec->locality;
	subj.organization = rec->organization;
	subj.organizational_unit = rec->organizational_unit;
	subj.common_name = rec->common_name;
	subj.sans = (const char *const *)rec->sans;
	subj.nsans = rec->nsans;
	metrics_now(&t0);
	r = signer_csr(c->kcd->hsm, c->hs, key, &subj, &pem);
	custody_timed(c, KCD_HSM_SIGN, (int)csr->key_type, &t0);
	if (r != 0 || (r = csr_pubkey_der(hsm_key_public(key), &der, &derlen)) != 0)
		goto out;

	/* Step 4: READY. Only now does the record become visible. */
	if ((r = store_csr_set_ready(c->st, rec->id, der, derlen, pem)) != 0)
		goto out;
	atomic_fetch_add(&c->kcd->keys_in_custody, 1);
	rec->state = STORE_CSR_READY;
	rec->csr_pem = pem;
	rec->pubkey_der = der;
	rec->pubkey_len = derlen;
	pem = NULL;
	der = NULL;
 out:
	if (r != 0 && (generated || maybe_made) &&
	    custody_key_destroy(c, rec->key_id) != 0) {
		kept = 1;
		custody_pending_add(c->kcd->pending, rec);
		log_warnx("create %s: failed (%s), and a key it %s made could not be "
		    "destroyed yet; the record stays in state creating until the token "
		    "answers, then goes with the key", rec->id, kc_strerror(r),
		    generated ? "has" : "may have");
	}
	if (r != 0 && inserted && !kept && store_csr_remove(c->st, rec->id) != 0)
		log_warnx("create %s: record left in state creating; start-up "
		    "reconciliation will remove it", rec->id);
	if (begun)
		(void)custody_audit(c, actor, "create_csr", rec->zone_id, rec->id, rec->key_id,
		    r, NULL);
	hsm_key_free(key);
	free(pem);
	free(der);
	return r;
}

void
custody_csr_uninit(struct store_csr *rec)
{
	free(rec->country);
	free(rec->csr_pem);
	free(rec->pubkey_der);
	rec->country = NULL;
	rec->csr_pem = NULL;
	rec->pubkey_der = NULL;
	rec->pubkey_len = 0;
}

int
custody_delete(const struct custody *c, const struct audit_actor *actor, const char *zone,
    const char *id, struct kc_error *err)
{
	struct store_csr	*rec = NULL;
	uint8_t			 key_id[STORE_KEY_ID_LEN];
	int			 r;

	/* The key id, and proof that the record is READY in this zone. */
	if ((r = store_csr_get(c->st, zone, id, &rec)) == KC_ERR_NOT_FOUND)
		goto notfound;
	if (r != 0)
		return r;
	memcpy(key_id, rec->key_id, sizeof(key_id));
	store_csr_free(rec);

	if ((r = custody_audit(c, actor, "delete_csr.begin", zone, id, key_id, 0, NULL)) != 0)
		return r;
	/* Step 1: DELETING, unless a custom hostname still uses it. */
	r = store_csr_set_deleting(c->st, zone, id);
	if (r == KC_ERR_NOT_FOUND) {
		/* Deleted by a concurrent request since the read above. */
		kc_error_set(err, KC_STATUS_NOT_FOUND, KC_API_CSR_NOT_FOUND,
		    KC_API_CSR_NOT_FOUND_MSG);
		goto out;
	}
	if (r == KC_ERR_CONFLICT) {
		kc_error_set(err, KC_STATUS_CONFLICT, KC_API_CSR_IN_USE, KC_API_CSR_IN_USE_MSG);
		goto out;
	}
	if (r != 0)
		goto out;
	atomic_fetch_sub(&c->kcd->keys_in_custody, 1);
	/* Step 2: both key objects, once creates have had the token. Step 3: the record. */
	custody_yield_wait(c->kcd->yield, c->hs, id);
	if ((r = custody_key_destroy(c, key_id)) != 0) {
		log_warnx("delete %s: key destruction failed (%s); the record stays in state "
		    "deleting and is finished at start-up", id, kc_strerror(r));
		goto out;
	}
	r = store_csr_remove(c->st, id);
 out:
	(void)custody_audit(c, actor, "delete_csr", zone, id, key_id, r, err);
	return r;
 notfound:
	kc_error_set(err, KC_STATUS_NOT_FOUND, KC_API_CSR_NOT_FOUND, KC_API_CSR_NOT_FOUND_MSG);
	return KC_ERR_NOT_FOUND;
}

int
custody_undo_create(const struct custody *c, const char *zone, const char *id)
{
	struct store_csr	*rec = NULL;
	int			 r;

	if ((r = store_csr_get(c->st, zone, id, &rec)) == 0 &&
	    (r = store_csr_set_deleting(c->st, zone, id)) == 0 &&
	    (r = custody_key_destroy(c, rec->key_id)) == 0 &&
	    (r = store_csr_remove(c->st, id)) == 0)
		atomic_fetch_sub(&c->kcd->keys_in_custody, 1);
	store_csr_free(rec);
	return r;
}

static int
custody_cmp_key_id(const void *a, const void *b)
{
	return memcmp(a, b, STORE_KEY_ID_LEN);
}

int
custody_reconcile(const struct custody *c, struct custody_report *report)
{
	struct store_csr	**v = NULL;
	uint8_t			*tok = NULL, *rec = NULL;
	size_t			 n = 0, ntok = 0, nrec = 0, i;
	int			 r;

	memset(report, 0, sizeof(*report));
	if ((r = store_csr_unfinished(c->st, &v, &n)) != 0)
		goto out;
	for (i = 0; i < n; i++) {
		if ((r = custody_key_destroy(c, v[i]->key_id)) != 0) {
			log_warnx("reconcile: record %s (%s): key destruction failed: %s",
			    v[i]->id, v[i]->state == STORE_CSR_CREATING ? "creating" :
			    "deleting", kc_strerror(r));
			goto out;
		}
		if ((r = store_csr_remove(c->st, v[i]->id)) != 0 && r != KC_ERR_NOT_FOUND)
			goto out;
		atomic_fetch_add(&c->kcd->reconciled_records, 1);
		log_info("reconcile: %s record %s (zone %s) removed with its key",
		    v[i]->state == STORE_CSR_CREATING ? "unfinished" : "half-deleted",
		    v[i]->id, v[i]->zone_id);
	}

	if ((r = hsm_key_list(c->hs, &tok, &ntok)) != 0 ||
	    (r = store_csr_key_ids(c->st, &rec, &nrec)) != 0 ||
	    (r = store_csr_count(c->st, &report->ready)) != 0)
		goto out;
	report->token_keys = ntok;
	if (ntok > 0)
		qsort(tok, ntok, STORE_KEY_ID_LEN, custody_cmp_key_id);
	if (nrec > 0)
		qsort(rec, nrec, STORE_KEY_ID_LEN, custody_cmp_key_id);
	for (i = 0; i < ntok; i++)
		if (nrec == 0 || bsearch(tok + i * STORE_KEY_ID_LEN, rec, nrec,
		    STORE_KEY_ID_LEN, custody_cmp_key_id) == NULL)
			report->orphans++;
	for (i = 0; i < nrec; i++)
		if (ntok == 0 || bsearch(rec + i * STORE_KEY_ID_LEN, tok, ntok,
		    STORE_KEY_ID_LEN, custody_cmp_key_id) == NULL) {
			/* Remembered: such a record is flagged, never served as healthy. */
			report->missing_ids = xreallocarray(report->missing_ids,
			    report->missing + 1, STORE_KEY_ID_LEN);
			memcpy(report->missing_ids + report->missing * STORE_KEY_ID_LEN,
			    rec + i * STORE_KEY_ID_LEN, STORE_KEY_ID_LEN);
			report->missing++;	/* sorted: rec was */
		}
	if (report->orphans > 0)
		log_warnx("reconcile: %llu key(s) labelled %s* in the token have no record",
		    (unsigned long long)report->orphans, HSM_LABEL_PREFIX);
	if (report->missing > 0)
		log_warnx("reconcile: %llu record(s) have no key in the token",
		    (unsigned long long)report->missing);
	log_info("reconcile: %llu key(s) in custody", (unsigned long long)report->ready);
	r = 0;
 out:
	store_csr_free_array(v, n);
	free(tok);
	free(rec);
	if (r != 0) {
		free(report->missing_ids);
		report->missing_ids = NULL;
	}
	return r;
}
