/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * answer-csr.c: the custom CSR requests: create, list, get, delete, and the undo of a create
 * whose deadline passed. The order of the steps across token and store is custody.c's.
 */
#include "config.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "audit.h"
#include "conf.h"
#include "custody.h"
#include "hsm.h"
#include "kc-api.h"
#include "kc-err.h"
#include "kc-proto.h"
#include "kcd.h"
#include "store.h"
#include "validate.h"
#include "xmalloc.h"

static int
answer_check_csr_id(const char *id, struct kc_error *err)
{
	if (id == NULL || !val_uuid(id)) {
		kc_error_set(err, KC_STATUS_INVALID_ARGUMENT, KC_API_CSR_ID_INVALID,
		    KC_API_CSR_ID_INVALID_MSG);
		return KC_ERR_INVALID;
	}
	return 0;
}

/*
 * zone_key_quota: a zone that holds that many custom CSRs gets no more. The creates of the
 * zone that run at the same time are not counted (zone_creates of them run at once; one
 * with the default two workers), so the quota can be passed by at most zone_creates - 1.
 */
static int
answer_check_quota(struct worker *w, const char *zone, struct kc_error *err)
{
	unsigned int		 quota = w->kcd->conf->zone_key_quota;
	struct store_csr	**v = NULL;
	size_t			 n = 0;
	uint64_t		 total = 0;
	int			 r;

	if (quota == 0)
		return 0;
	if ((r = store_csr_list(w->st, zone, 1, KC_PER_PAGE_MIN, false, &v, &n,
	    &total)) != 0)
		return r;
	store_csr_free_array(v, n);
	if (total < quota)
		return 0;
	atomic_fetch_add(&w->kcd->creates_over_quota, 1);
	kc_error_set(err, KC_STATUS_PERMISSION_DENIED, KC_API_ZONE_QUOTA,
	    KC_API_ZONE_QUOTA_FMT, quota);
	return KC_ERR_DENIED;
}

/*
 * 1417 for a key type the token cannot make: the message names what it offers, as the
 * API's own 1417 names every type it knows.
 */
static int
answer_check_keytype(struct worker *w, enum hsm_keytype t, struct kc_error *err)
{
	const struct hsm	*h = w->kcd->hsm;
	char			 list[256], why[256];
	size_t			 off = 0, n = 0, total = 0;
	int			 i;

	if (hsm_keytype_info(h, t, why, sizeof(why)))
		return 0;
	for (i = 0; i < HSM_KEY_NTYPES; i++)
		total += hsm_keytype_offered(h, (enum hsm_keytype)i) != 0;
	list[0] = '\0';
	for (i = 0; i < HSM_KEY_NTYPES && off < sizeof(list); i++) {
		if (!hsm_keytype_offered(h, (enum hsm_keytype)i))
			continue;
		n++;
		off += (size_t)snprintf(list + off, sizeof(list) - off, "%s'%s'",
		    n == 1 ? "" : n == total ? " or " : ", ",
		    hsm_keytype_name((enum hsm_keytype)i));
	}
	if (total == 0)
		snprintf(list, sizeof(list), "no type");
	kc_error_set(err, KC_STATUS_INVALID_ARGUMENT, KC_API_KEY_TYPE,
	    KC_API_KEY_TYPE_TOKEN_FMT, list, why);
	return KC_ERR_INVALID;
}

int
answer_create_csr(struct worker *w, const Keycustody__Request *req,
    Keycustody__Response *resp, struct kc_error *err)
{
	const Keycustody__CreateCsrRequest	*m = req->create_csr;
	struct val_csr_fields			 f;
	struct custody_csr			 csr;
	struct custody				 c;
	struct audit_actor			 actor;
	struct store_csr			 rec;
	int					 r;

	if ((r = ans_check_zone(m->zone_id, err)) != 0)
		return r;
	memset(&f, 0, sizeof(f));
	f.subject.country = m->country;
	f.subject.state = m->state;
	f.subject.locality = m->locality;
	f.subject.organization = m->organization;
	f.subject.organizational_unit = m->organizational_unit;
	f.subject.common_name = m->common_name;
	f.subject.sans = (const char *const *)m->sans;
	f.subject.nsans = m->n_sans;
	f.key_type = m->key_type;
	f.name = m->name;
	f.description = m->description;
	if ((r = val_csr_fields(&f, err)) != 0 ||
	    (r = answer_check_quota(w, m->zone_id, err)) != 0)
		return r;

	memset(&csr, 0, sizeof(csr));
	csr.zone_id = m->zone_id;
	csr.subject = &f.subject;
	csr.name = m->name;
	csr.description = m->description;
	if ((r = hsm_keytype_parse(m->key_type != NULL ? m->key_type : "rsa2048",
	    &csr.key_type)) != 0 ||
	    (r = answer_check_keytype(w, csr.key_type, err)) != 0)
		return r;
	ans_custody(w, &c);
	ans_actor(w, req, &actor);
	memset(&rec, 0, sizeof(rec));
	if ((r = custody_create(&c, &actor, &csr, &rec)) == 0) {
		resp->body_case = KEYCUSTODY__RESPONSE__BODY_CSR;
		resp->csr = ans_csr_msg(w, &rec, ANS_COPY);	/* rec borrows its strings */
	} else if (r == KC_ERR_INVALID)
		/* The token refused to make the type just now (CKR_MECHANISM_INVALID...). */
		(void)answer_check_keytype(w, csr.key_type, err);
	custody_csr_uninit(&rec);
	return r;
}

int
answer_undo_create_csr(struct worker *w, const Keycustody__Request *req,
    const Keycustody__Response *resp)
{
	struct custody	 c;

	ans_custody(w, &c);
	return custody_undo_create(&c, resp->csr->zone_id, resp->csr->id);
}

int
answer_list_csrs(struct worker *w, const Keycustody__Request *req,
    Keycustody__Response *resp, struct kc_error *err)
{
	const Keycustody__ListCsrsRequest	*m = req->list_csrs;
	Keycustody__ListCsrsResponse		*l;
	struct store_csr			**v = NULL;
	size_t					 n = 0, i;
	uint64_t				 total = 0;
	unsigned int				 page, per_page;
	bool					 by_name = false;
	int					 r;

	if ((r = ans_check_zone(m->zone_id, err)) != 0)
		return r;
	if ((r = ans_pagination(m->has_page, m->page, m->has_per_page, m->per_page, &page,
	    &per_page, err)) != 0)
		return r;
	/* Cloudflare's orders; account_tag has no meaning here (no accounts): refused. */
	if (m->order != NULL && *m->order != '\0' && strcmp(m->order, "created_at") != 0) {
		if (strcmp(m->order, "name") != 0) {
			kc_error_set(err, KC_STATUS_INVALID_ARGUMENT, KC_API_PARAMS,
			    "order variable must be name or created_at");
			return KC_ERR_INVALID;
		}
		by_name = true;
	}
	/*
	 * The page's records and the reply built from them live in the worker's arena until
	 * the reply is packed: no malloc per record or string.
	 */
	w->arena_body = 1;
	if ((r = store_csr_list_arena(w->st, m->zone_id, page, per_page,
	    m->has_descending && m->descending, by_name, &w->arena, &v, &n, &total)) != 0)
		return r;
	l = ans_amem(w, sizeof(*l));
	keycustody__list_csrs_response__init(l);
	l->page = page;
	l->per_page = per_page;
	l->total_count = total;
	l->n_csrs = n;
	if (n > 0) {
		l->csrs = ans_amem(w, n * sizeof(*l->csrs));
		for (i = 0; i < n; i++)
			l->csrs[i] = ans_csr_msg(w, v[i], ANS_ARENA);
	}
	resp->body_case = KEYCUSTODY__RESPONSE__BODY_LIST_CSRS;
	resp->list_csrs = l;
	return 0;
}

int
answer_get_csr(struct worker *w, const Keycustody__Request *req,
    Keycustody__Response *resp, struct kc_error *err)
{
	const Keycustody__GetCsrRequest	*m = req->get_csr;
	struct store_csr		*c = NULL;
	int				 r;

	if ((r = ans_check_zone(m->zone_id, err)) != 0 ||
	    (r = answer_check_csr_id(m->id, err)) != 0)
		return r;
	if ((r = store_csr_get(w->st, m->zone_id, m->id, &c)) == KC_ERR_NOT_FOUND) {
		kc_error_set(err, KC_STATUS_NOT_FOUND, KC_API_CSR_NOT_FOUND,
		    KC_API_CSR_NOT_FOUND_MSG);
		return r;
	}
	if (r != 0)
		return r;
	resp->body_case = KEYCUSTODY__RESPONSE__BODY_CSR;
	resp->csr = ans_csr_msg(w, c, ANS_MOVE);
	store_csr_free(c);
	return 0;
}

int
answer_delete_csr(struct worker *w, const Keycustody__Request *req,
    Keycustody__Response *resp, struct kc_error *err)
{
	const Keycustody__DeleteCsrRequest	*m = req->delete_csr;
	Keycustody__DeleteCsrResponse		*d;
	struct custody				 c;
	struct audit_actor			 actor;
	int					 r;

	if ((r = ans_check_zone(m->zone_id, err)) != 0 ||
	    (r = answer_check_csr_id(m->id, err)) != 0)
		return r;
	ans_custody(w, &c);
	ans_actor(w, req, &actor);
	if ((r = custody_delete(&c, &actor, m->zone_id, m->id, err)) != 0)
		return r;
	d = xcalloc(1, sizeof(*d));
	keycustody__delete_csr_response__init(d);
	d->id = xstrdup(m->id);
	resp->body_case = KEYCUSTODY__RESPONSE__BODY_DELETE_CSR;
	resp->delete_csr = d;
	return 0;
}
