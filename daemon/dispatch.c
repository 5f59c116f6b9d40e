/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * dispatch.c: the request table and the answer_<op>() handlers. Handlers run on a worker
 * thread (or, for cheap ones, on the loop), build a Response and pack it. The create and
 * delete handlers order their steps so that a crash at any point leaves nothing half-made
 * once start-up reconciliation (keycustodyd.c) has run: see DESIGN.md section 3.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "answer.h"
#include "arena.h"
#include "audit.h"
#include "control.h"
#include "csr.h"
#include "dispatch.h"
#include "hsm.h"
#include "kc-err.h"
#include "kc-proto.h"
#include "keycustodyd.h"
#include "log.h"
#include "pool.h"
#include "store.h"
#include "validate.h"
#include "xmalloc.h"

#define nitems(a)	(sizeof(a) / sizeof((a)[0]))

#define DISP_LOOP	0x01	/* answered on the event loop: no I/O, no HSM */
#define DISP_ACTOR	0x02	/* a gateway must name the acting credential */

static int	answer_create_csr(struct worker *, const Keycustody__Request *,
		    Keycustody__Response *, struct kc_error *);
static int	answer_list_csrs(struct worker *, const Keycustody__Request *,
		    Keycustody__Response *, struct kc_error *);
static int	answer_get_csr(struct worker *, const Keycustody__Request *,
		    Keycustody__Response *, struct kc_error *);
static int	answer_delete_csr(struct worker *, const Keycustody__Request *,
		    Keycustody__Response *, struct kc_error *);

/* One row per request type: the least role that may make it, flags, the handler. */
static const struct disp_entry {
	int		 type;
	int		 role;
	int		 flags;
	disp_fn		 fn;
} disp_table[] = {
	{ KEYCUSTODY__REQUEST__BODY_HEALTH, CTL_ROLE_READER, DISP_LOOP, NULL },
	{ KEYCUSTODY__REQUEST__BODY_CREATE_CSR, CTL_ROLE_GATEWAY, DISP_ACTOR,
	    answer_create_csr },
	{ KEYCUSTODY__REQUEST__BODY_LIST_CSRS, CTL_ROLE_READER, DISP_ACTOR,
	    answer_list_csrs },
	{ KEYCUSTODY__REQUEST__BODY_GET_CSR, CTL_ROLE_READER, DISP_ACTOR, answer_get_csr },
	{ KEYCUSTODY__REQUEST__BODY_DELETE_CSR, CTL_ROLE_GATEWAY, DISP_ACTOR,
	    answer_delete_csr },
	{ KEYCUSTODY__REQUEST__BODY_CREATE_HOSTNAME, CTL_ROLE_GATEWAY, DISP_ACTOR,
	    answer_create_hostname },
	{ KEYCUSTODY__REQUEST__BODY_LIST_HOSTNAMES, CTL_ROLE_READER, DISP_ACTOR,
	    answer_list_hostnames },
	{ KEYCUSTODY__REQUEST__BODY_GET_HOSTNAME, CTL_ROLE_READER, DISP_ACTOR,
	    answer_get_hostname },
	{ KEYCUSTODY__REQUEST__BODY_UPDATE_HOSTNAME, CTL_ROLE_GATEWAY, DISP_ACTOR,
	    answer_update_hostname },
	{ KEYCUSTODY__REQUEST__BODY_DELETE_HOSTNAME, CTL_ROLE_GATEWAY, DISP_ACTOR,
	    answer_delete_hostname },
};

static const struct disp_entry *
disp_lookup(int type)
{
	size_t	 i;

	for (i = 0; i < nitems(disp_table); i++)
		if (disp_table[i].type == type)
			return &disp_table[i];
	return NULL;
}

int
disp_permitted(const Keycustody__Request *req, int role, struct kc_error *err)
{
	const struct disp_entry	*e = disp_lookup(req->body_case);

	if (e == NULL || role < e->role) {
		kc_error_set(err, KC_STATUS_PERMISSION_DENIED, 10000, "Authentication error: "
		    "the %s role may not make %s requests", control_role_name(role),
		    proto_request_name(req->body_case));
		return KC_ERR_DENIED;
	}
	if (role == CTL_ROLE_GATEWAY && (e->flags & DISP_ACTOR) &&
	    (req->actor == NULL || *req->actor == '\0')) {
		kc_error_set(err, KC_STATUS_PERMISSION_DENIED, 10000, "Authentication error: "
		    "a gateway must name the acting credential");
		return KC_ERR_DENIED;
	}
	return 0;
}

int
disp_in_loop(const Keycustody__Request *req)
{
	const struct disp_entry	*e = disp_lookup(req->body_case);

	return e != NULL && (e->flags & DISP_LOOP);
}

static Keycustody__Response *
disp_response_new(uint64_t id)
{
	Keycustody__Response	*resp = xcalloc(1, sizeof(*resp));

	keycustody__response__init(resp);
	resp->id = id;
	return resp;
}

/*
 * A body built in the worker's arena (answer_list_csrs()) leaves resp before
 * free_unpacked() could free() its parts, and the arena is reset for the next request.
 */
static void
disp_drop_arena_body(struct worker *w, Keycustody__Response *resp)
{
	if (w == NULL || !w->arena_body)
		return;
	resp->body_case = KEYCUSTODY__RESPONSE__BODY__NOT_SET;
	resp->list_csrs = NULL;
	w->arena_body = 0;
	kc_arena_reset(&w->arena);
}

/*
 * Pack resp into a frame, then free it: every part of it was malloc'd, but for a body in
 * w's arena (w NULL: none).
 */
static void
disp_finish(struct worker *w, Keycustody__Response *resp, uint8_t **frame, size_t *len)
{
	int	 r;

	if ((r = proto_pack_response(resp, frame, len)) != 0)
		log_warnx("reply %llu: %s", (unsigned long long)resp->id, kc_strerror(r));
	disp_drop_arena_body(w, resp);
	keycustody__response__free_unpacked(resp, NULL);
}

static void
disp_set_error(Keycustody__Response *resp, const struct kc_error *err,
    unsigned int retry_after)
{
	Keycustody__Error	*e = xcalloc(1, sizeof(*e));

	keycustody__error__init(e);
	e->status = (Keycustody__Status)err->status;
	e->code = (uint32_t)err->code;
	e->message = xstrdup(err->message);
	if (err->status == KC_STATUS_UNAVAILABLE) {
		e->has_retry_after = 1;
		e->retry_after = retry_after > 0 ? retry_after : 1;
	}
	resp->error = e;
}

void
disp_error_frame(uint64_t id, const struct kc_error *err, uint8_t **frame, size_t *len)
{
	Keycustody__Response	*resp = disp_response_new(id);

	disp_set_error(resp, err, 1);
	disp_finish(NULL, resp, frame, len);
}

/* --- health, on the loop --- */

static const char *
disp_hsm_state(enum hsm_state s)
{
	switch (s) {
	case HSM_STATE_OK:
		return "ok";
	case HSM_STATE_LOGIN_FAILED:
		return "login_failed";
	default:
		return "down";
	}
}

void
disp_answer_loop(struct kcd *kcd, const Keycustody__Request *req, uint8_t **frame,
    size_t *len)
{
	Keycustody__Response		*resp = disp_response_new(req->id);
	Keycustody__HealthResponse	*h;
	enum hsm_state			 st = hsm_get_state(kcd->hsm);

	h = xcalloc(1, sizeof(*h));
	keycustody__health_response__init(h);
	h->hsm_state = xstrdup(disp_hsm_state(st));
	if (st == HSM_STATE_OK && (kcd->records_missing_key > 0 || kcd->orphan_keys > 0)) {
		free(h->hsm_state);
		h->hsm_state = xstrdup("degraded");
	}
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
	resp->body_case = KEYCUSTODY__RESPONSE__BODY_HEALTH;
	resp->health = h;
	disp_finish(NULL, resp, frame, len);
}

/* --- on a worker --- */

/*
 * The requester gave up before the answer: undo what a create made, so that a request that
 * "failed" made nothing. Deletions are not undone: the client may retry them.
 */
static void
disp_undo(struct worker *w, const Keycustody__Request *req, const Keycustody__Response *resp)
{
	struct store_csr	*c = NULL;
	int			 r = 0;

	if (resp->body_case == KEYCUSTODY__RESPONSE__BODY_CSR &&
	    req->body_case == KEYCUSTODY__REQUEST__BODY_CREATE_CSR) {
		if ((r = store_csr_get(w->st, resp->csr->zone_id, resp->csr->id, &c)) == 0 &&
		    (r = store_csr_set_deleting(w->st, resp->csr->zone_id, resp->csr->id)) == 0 &&
		    (r = hsm_key_destroy(w->hs, c->key_id)) == 0 &&
		    (r = store_csr_remove(w->st, resp->csr->id)) == 0)
			atomic_fetch_sub(&w->kcd->keys_in_custody, 1);
		store_csr_free(c);
	} else if (resp->body_case == KEYCUSTODY__RESPONSE__BODY_HOSTNAME &&
	    req->body_case == KEYCUSTODY__REQUEST__BODY_CREATE_HOSTNAME)
		r = store_hostname_delete(w->st, resp->hostname->zone_id, resp->hostname->id);
	else
		return;
	if (r != 0)
		log_warnx("request %llu %s: deadline passed, undoing failed (%s); a record in "
		    "state deleting is finished at start-up", (unsigned long long)req->id,
		    proto_request_name(req->body_case), kc_strerror(r));
	else
		log_warnx("request %llu %s: deadline passed; what it made is undone",
		    (unsigned long long)req->id, proto_request_name(req->body_case));
	(void)disp_audit(w, req, "undo_after_deadline", NULL, NULL, NULL, r, NULL);
}

void
disp_answer_worker(struct worker *w, const Keycustody__Request *req,
    const atomic_int *abandoned, uint8_t **frame, size_t *len)
{
	const struct disp_entry	*e = disp_lookup(req->body_case);
	Keycustody__Response	*resp = disp_response_new(req->id);
	struct kc_error		 err;
	int			 r;

	memset(&err, 0, sizeof(err));
	if (e == NULL || e->fn == NULL)
		r = KC_ERR_BAD_MESSAGE;
	else
		r = e->fn(w, req, resp, &err);
	if (r == 0 && abandoned != NULL && atomic_load(abandoned)) {
		disp_undo(w, req, resp);
		r = KC_ERR_TIMEOUT;
		memset(&err, 0, sizeof(err));
	}
	if (r != 0) {
		if (err.status == KC_STATUS_OK)
			kc_error_from(&err, r);
		/* Drop a partly built body: only the error goes back. */
		disp_drop_arena_body(w, resp);
		keycustody__response__free_unpacked(resp, NULL);
		resp = disp_response_new(req->id);
		disp_set_error(resp, &err, hsm_retry_after(w->kcd->hsm));
	}
	disp_finish(w, resp, frame, len);
}

int
disp_uuid(char out[STORE_ID_LEN + 1])
{
	uint8_t	 b[16];

	if (RAND_bytes(b, sizeof(b)) != 1)
		return KC_ERR_CRYPTO;
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	snprintf(out, STORE_ID_LEN + 1,
	    "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	    b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
	    b[13], b[14], b[15]);
	return 0;
}

int64_t
disp_now_us(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void
disp_hex(const uint8_t *b, size_t n, char *out)
{
	static const char	 hex[] = "0123456789abcdef";
	size_t			 i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 0xf];
	}
	out[2 * n] = '\0';
}

static int
disp_cmp_key_id(const void *a, const void *b)
{
	return memcmp(a, b, STORE_KEY_ID_LEN);
}

int
disp_key_missing(const struct worker *w, const uint8_t *key_id)
{
	return w->kcd->nmissing > 0 && bsearch(key_id, w->kcd->missing_ids,
	    w->kcd->nmissing, STORE_KEY_ID_LEN, disp_cmp_key_id) != NULL;
}

/* Zeroed memory from the worker's arena; out of memory is fatal, as for xmalloc(). */
static void *
disp_amem(struct worker *w, size_t n)
{
	void	*p;

	if ((p = kc_arena_calloc(&w->arena, 1, n)) == NULL)
		fatalx("reply arena: allocating %zu bytes", n);
	return p;
}

/* Zeroed memory for a message: the arena's or malloc'd. */
static void *
disp_new(struct worker *w, enum disp_how how, size_t n)
{
	return how == DISP_ARENA ? disp_amem(w, n) : xcalloc(1, n);
}

/* A copy of s, in the arena or malloc'd. */
static char *
disp_dup(struct worker *w, enum disp_how how, const char *s)
{
	size_t	 n = strlen(s) + 1;

	return how == DISP_ARENA ? memcpy(disp_amem(w, n), s, n) : xstrdup(s);
}

char *
disp_str(char **sp, enum disp_how how)
{
	char	*s = *sp;

	if (how == DISP_COPY)
		return xstrdup(s);
	*sp = NULL;
	return s;
}

/* As disp_str() for an optional field: NULL or "" is absent (NULL). */
static char *
disp_str_opt(char **sp, enum disp_how how)
{
	if (*sp == NULL || **sp == '\0')
		return NULL;
	return disp_str(sp, how);
}

/* The Csr message of a record; the caller still frees c (unless it is in the arena). */
static Keycustody__Csr *
disp_csr_msg(struct worker *w, struct store_csr *c, enum disp_how how)
{
	Keycustody__Csr	*m = disp_new(w, how, sizeof(*m));
	size_t		 i;

	keycustody__csr__init(m);
	m->id = disp_dup(w, how, c->id);
	m->zone_id = disp_dup(w, how, c->zone_id);
	m->created_at_us = c->created_at_us;
	m->key_type = disp_str(&c->key_type, how);
	m->country = disp_str(&c->country, how);
	m->state = disp_str(&c->state_name, how);
	m->locality = disp_str(&c->locality, how);
	m->organization = disp_str(&c->organization, how);
	m->organizational_unit = disp_str_opt(&c->organizational_unit, how);
	m->common_name = disp_str(&c->common_name, how);
	m->n_sans = c->nsans;
	if (c->nsans > 0 && how != DISP_COPY) {
		m->sans = c->sans;
		c->sans = NULL;
		c->nsans = 0;
	} else if (c->nsans > 0) {
		m->sans = xcalloc(c->nsans, sizeof(*m->sans));
		for (i = 0; i < c->nsans; i++)
			m->sans[i] = xstrdup(c->sans[i]);
	}
	m->csr = c->csr_pem != NULL ? disp_str(&c->csr_pem, how) : disp_dup(w, how, "");
	m->name = disp_str_opt(&c->name, how);
	m->description = disp_str_opt(&c->description, how);
	if (how == DISP_ARENA) {
		m->key_uri = disp_amem(w, hsm_key_uri_size(w->kcd->hsm));
		hsm_key_uri_write(w->kcd->hsm, c->key_id, m->key_uri);
	} else
		m->key_uri = hsm_key_uri(w->kcd->hsm, c->key_id);
	m->key_id = disp_new(w, how, 2 * STORE_KEY_ID_LEN + 1);
	disp_hex(c->key_id, STORE_KEY_ID_LEN, m->key_id);
	if (disp_key_missing(w, c->key_id)) {
		m->has_key_missing = 1;
		m->key_missing = 1;
	}
	return m;
}

int
disp_check_zone(const char *zone, struct kc_error *err)
{
	if (zone == NULL || !val_zone_id(zone)) {
		kc_error_set(err, KC_STATUS_INVALID_ARGUMENT, 7003,
		    "Could not route to /zones/%s, perhaps your object identifier is invalid?",
		    zone == NULL ? "" : "<invalid>");
		return KC_ERR_INVALID;
	}
	return 0;
}

/* The direct signer's callback for csr_make(): C_Sign on this worker's session. */
struct disp_sign_ctx {
	struct worker		*w;
	const struct hsm_key	*key;
};

static int
disp_sign(void *arg, const uint8_t *tbs, size_t tbslen, uint8_t **sig, size_t *siglen)
{
	struct disp_sign_ctx	*ctx = arg;

	return hsm_sign(ctx->w->hs, ctx->key, tbs, tbslen, sig, siglen);
}

/* Sign the request for key with the configured signer. */
static int
disp_make_csr(struct worker *w, const struct csr_subject *subj, const struct hsm_key *key,
    char **pem)
{
	struct disp_sign_ctx	 ctx = { w, key };
	EVP_PKEY		*pkey = NULL;
	char			*cause = NULL;
	int			 r;

	if (hsm_get_signer(w->kcd->hsm) == HSM_SIGNER_ENGINE) {
		if ((r = hsm_engine_key(w->hs, key, &pkey)) == 0)
			r = csr_make_with_key(subj, hsm_key_public(key), pkey, pem, &cause);
		EVP_PKEY_free(pkey);
	} else
		r = csr_make(subj, hsm_key_public(key), disp_sign, &ctx, pem, &cause);
	if (r != 0)
		log_warnx("CSR signing failed: %s", cause != NULL ? cause : kc_strerror(r));
	free(cause);
	return r;
}

int
disp_audit(struct worker *w, const Keycustody__Request *req, const char *op,
    const char *zone, const char *id, const uint8_t *key_id, int r,
    const struct kc_error *err)
{
	struct audit_event	 ev;
	struct kc_error		 e;
	int			 ar;

	memset(&ev, 0, sizeof(ev));
	ev.op = op;
	if (w->peer != NULL) {
		ev.uid = w->peer->uid;
		ev.pid = w->peer->pid;
	}
	ev.credential = req->actor != NULL && *req->actor != '\0' ? req->actor : NULL;
	ev.zone = zone;
	ev.id = id;
	ev.key_id = key_id;
	ev.key_id_len = key_id != NULL ? STORE_KEY_ID_LEN : 0;
	if (r != 0) {
		if (err == NULL || err->status == KC_STATUS_OK) {
			kc_error_from(&e, r);
			err = &e;
		}
		ev.error = err;
	}
	if ((ar = audit_record(w->kcd->audit, &ev)) != 0) {
		log_warnx("audit log: %s not recorded (%s); refusing", op, kc_strerror(ar));
		return KC_ERR_UNAVAILABLE;
	}
	return 0;
}

static int
answer_create_csr(struct worker *w, const Keycustody__Request *req,
    Keycustody__Response *resp, struct kc_error *err)
{
	const Keycustody__CreateCsrRequest	*m = req->create_csr;
	struct val_csr_fields			 f;
	struct store_csr			 rec;
	struct csr_subject			 subj;
	struct hsm_key				*key = NULL;
	enum hsm_keytype			 kt;
	uint8_t					*der = NULL;
	size_t					 derlen;
	char					*pem = NULL, country[3];
	int					 r, begun = 0, inserted = 0, generated = 0;

	memset(&rec, 0, sizeof(rec));
	if ((r = disp_check_zone(m->zone_id, err)) != 0)
		return r;
	memset(&f, 0, sizeof(f));
	f.country = m->country;
	f.state = m->state;
	f.locality = m->locality;
	f.organization = m->organization;
	f.organizational_unit = m->organizational_unit;
	f.common_name = m->common_name;
	f.sans = (const char *const *)m->sans;
	f.nsans = m->n_sans;
	f.key_type = m->key_type;
	f.name = m->name;
	f.description = m->description;
	if ((r = val_csr_fields(&f, err)) != 0)
		return r;
	if ((r = hsm_keytype_parse(m->key_type != NULL ? m->key_type : "rsa2048", &kt)) != 0)
		return r;

	if ((r = disp_uuid(rec.id)) != 0 || RAND_bytes(rec.key_id, sizeof(rec.key_id)) != 1) {
		r = KC_ERR_CRYPTO;
		goto out;
	}
	/* The intent is on record before anything is made (fail closed). */
	if ((r = disp_audit(w, req, "create_csr.begin", m->zone_id, rec.id, rec.key_id, 0,
	    NULL)) != 0)
		goto out;
	begun = 1;

	/* Step 1: the record, state CREATING, key id chosen. */
	snprintf(rec.zone_id, sizeof(rec.zone_id), "%s", m->zone_id);
	rec.created_at_us = disp_now_us();
	rec.state = STORE_CSR_CREATING;
	rec.key_type = (char *)hsm_keytype_name(kt);
	country[0] = (char)toupper((unsigned char)m->country[0]);
	country[1] = (char)toupper((unsigned char)m->country[1]);
	country[2] = '\0';
	rec.country = country;
	rec.state_name = m->state;
	rec.locality = m->locality;
	rec.organization = m->organization;
	rec.organizational_unit = m->organizational_unit != NULL &&
	    *m->organizational_unit != '\0' ? m->organizational_unit : NULL;
	rec.common_name = m->common_name;
	rec.sans = m->sans;
	rec.nsans = m->n_sans;
	rec.name = m->name;
	rec.description = m->description;
	if ((r = store_csr_insert(w->st, &rec)) != 0)
		goto out;
	inserted = 1;

	/* Step 2: the key pair in the token. */
	if ((r = hsm_keygen(w->hs, kt, rec.key_id, rec.id, &key)) != 0)
		goto out;
	generated = 1;

	/* Step 3: the signed request, verified against the token's public key. */
	memset(&subj, 0, sizeof(subj));
	subj.country = rec.country;
	subj.state = rec.state_name;
	subj.locality = rec.locality;
	subj.organization = rec.organization;
	subj.organizational_unit = rec.organizational_unit;
	subj.common_name = rec.common_name;
	subj.sans = (const char *const *)rec.sans;
	subj.nsans = rec.nsans;
	if ((r = disp_make_csr(w, &subj, key, &pem)) != 0 ||
	    (r = csr_pubkey_der(hsm_key_public(key), &der, &derlen)) != 0)
		goto out;

	/* Step 4: READY. Only now does the record become visible. */
	if ((r = store_csr_set_ready(w->st, rec.id, der, derlen, pem)) != 0)
		goto out;
	atomic_fetch_add(&w->kcd->keys_in_custody, 1);

	rec.csr_pem = pem;
	rec.pubkey_der = der;
	rec.pubkey_len = derlen;
	resp->body_case = KEYCUSTODY__RESPONSE__BODY_CSR;
	resp->csr = disp_csr_msg(w, &rec, DISP_COPY);	/* rec borrows its strings */
	r = 0;
 out:
	if (r != 0 && generated && hsm_key_destroy(w->hs, rec.key_id) != 0)
		log_warnx("create %s: key left in the token; start-up reconciliation will "
		    "remove it", rec.id);
	else if (r != 0 && inserted && store_csr_remove(w->st, rec.id) != 0)
		log_warnx("create %s: record left in state creating; start-up "
		    "reconciliation will remove it", rec.id);
	if (begun)
		(void)disp_audit(w, req, "create_csr", m->zone_id, rec.id, rec.key_id,
		    r, err);
	hsm_key_free(key);
	free(pem);
	free(der);
	return r;
}

static int
answer_list_csrs(struct worker *w, const Keycustody__Request *req,
    Keycustody__Response *resp, struct kc_error *err)
{
	const Keycustody__ListCsrsRequest	*m = req->list_csrs;
	Keycustody__ListCsrsResponse		*l;
	struct store_csr			**v = NULL;
	size_t					 n = 0, i;
	uint64_t				 total = 0;
	unsigned int				 page, per_page;
	int					 r;

	if ((r = disp_check_zone(m->zone_id, err)) != 0)
		return r;
	if ((r = disp_pagination(m->has_page, m->page, m->has_per_page, m->per_page, &page,
	    &per_page, err)) != 0)
		return r;
	/*
	 * The page's records and the reply built from them live in the worker's arena until
	 * the reply is packed (disp_finish()): no malloc per record or string.
	 */
	w->arena_body = 1;
	if ((r = store_csr_list_arena(w->st, m->zone_id, page, per_page,
	    m->has_descending && m->descending, &w->arena, &v, &n, &total)) != 0)
		return r;
	l = disp_amem(w, sizeof(*l));
	keycustody__list_csrs_response__init(l);
	l->page = page;
	l->per_page = per_page;
	l->total_count = total;
	l->n_csrs = n;
	if (n > 0) {
		l->csrs = disp_amem(w, n * sizeof(*l->csrs));
		for (i = 0; i < n; i++)
			l->csrs[i] = disp_csr_msg(w, v[i], DISP_ARENA);
	}
	resp->body_case = KEYCUSTODY__RESPONSE__BODY_LIST_CSRS;
	resp->list_csrs = l;
	return 0;
}

int
disp_pagination(int has_page, uint32_t page, int has_per_page, uint32_t per_page,
    unsigned int *pagep, unsigned int *per_pagep, struct kc_error *err)
{
	unsigned int	 pg = has_page ? page : 0, pp = has_per_page ? per_page : 0;
	int		 r;

	if (has_page && pg == 0) {
		kc_error_set(err, KC_STATUS_INVALID_ARGUMENT, 6008,
		    "page variable must be a number greater than or equal to 1");
		return KC_ERR_INVALID;
	}
	if (has_per_page && pp == 0)
		pp = 1;		/* an explicit 0 is out of range, not "the default" */
	if ((r = val_pagination(&pg, &pp, err)) != 0)
		return r;
	*pagep = pg;
	*per_pagep = pp;
	return 0;
}

static int
disp_check_csr_id(const char *id, struct kc_error *err)
{
	if (id == NULL || !val_uuid(id)) {
		kc_error_set(err, KC_STATUS_INVALID_ARGUMENT, 1418,
		    "The custom CSR ID is invalid.");
		return KC_ERR_INVALID;
	}
	return 0;
}

static int
answer_get_csr(struct worker *w, const Keycustody__Request *req,
    Keycustody__Response *resp, struct kc_error *err)
{
	const Keycustody__GetCsrRequest	*m = req->get_csr;
	struct store_csr		*c = NULL;
	int				 r;

	if ((r = disp_check_zone(m->zone_id, err)) != 0 ||
	    (r = disp_check_csr_id(m->id, err)) != 0)
		return r;
	if ((r = store_csr_get(w->st, m->zone_id, m->id, &c)) == KC_ERR_NOT_FOUND) {
		kc_error_set(err, KC_STATUS_NOT_FOUND, 1419, "The custom CSR was not found.");
		return r;
	}
	if (r != 0)
		return r;
	resp->body_case = KEYCUSTODY__RESPONSE__BODY_CSR;
	resp->csr = disp_csr_msg(w, c, DISP_MOVE);
	store_csr_free(c);
	return 0;
}

static int
answer_delete_csr(struct worker *w, const Keycustody__Request *req,
    Keycustody__Response *resp, struct kc_error *err)
{
	const Keycustody__DeleteCsrRequest	*m = req->delete_csr;
	Keycustody__DeleteCsrResponse		*d;
	struct store_csr			*c = NULL;
	uint8_t					 key_id[STORE_KEY_ID_LEN];
	int					 r;

	if ((r = disp_check_zone(m->zone_id, err)) != 0 ||
	    (r = disp_check_csr_id(m->id, err)) != 0)
		return r;
	/* The key id, and proof that the record is READY in this zone. */
	if ((r = store_csr_get(w->st, m->zone_id, m->id, &c)) == KC_ERR_NOT_FOUND)
		goto notfound;
	if (r != 0)
		return r;
	memcpy(key_id, c->key_id, sizeof(key_id));
	store_csr_free(c);

	if ((r = disp_audit(w, req, "delete_csr.begin", m->zone_id, m->id, key_id, 0, NULL)) != 0)
		return r;
	/* Step 1: DELETING, unless a custom hostname still uses it. */
	r = store_csr_set_deleting(w->st, m->zone_id, m->id);
	if (r == KC_ERR_NOT_FOUND)
		goto notfound;
	if (r == KC_ERR_CONFLICT) {
		kc_error_set(err, KC_STATUS_CONFLICT, 1420, "The custom CSR is associated "
		    "with an active certificate pack. You will need to delete all associated "
		    "active certificate packs before you can delete the custom CSR.");
		goto out;
	}
	if (r != 0)
		goto out;
	atomic_fetch_sub(&w->kcd->keys_in_custody, 1);
	/* Step 2: both key objects. Step 3: the record. */
	if ((r = hsm_key_destroy(w->hs, key_id)) != 0) {
		log_warnx("delete %s: key destruction failed (%s); the record stays in state "
		    "deleting and is finished at start-up", m->id, kc_strerror(r));
		goto out;
	}
	if ((r = store_csr_remove(w->st, m->id)) != 0)
		goto out;
	d = xcalloc(1, sizeof(*d));
	keycustody__delete_csr_response__init(d);
	d->id = xstrdup(m->id);
	resp->body_case = KEYCUSTODY__RESPONSE__BODY_DELETE_CSR;
	resp->delete_csr = d;
 out:
	(void)disp_audit(w, req, "delete_csr", m->zone_id, m->id, key_id, r, err);
	return r;
 notfound:
	kc_error_set(err, KC_STATUS_NOT_FOUND, 1419, "The custom CSR was not found.");
	return KC_ERR_NOT_FOUND;
}
