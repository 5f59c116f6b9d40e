/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * answer.c: what the answer_<op>() handlers share: zone and page checks, the mapping of a
 * CSR record to its message, the audit record of a request.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "arena.h"
#include "audit.h"
#include "custody.h"
#include "hsm.h"
#include "kc-api.h"
#include "kc-err.h"
#include "keycustody.h"
#include "kc-proto.h"
#include "kc-util.h"
#include "kcd.h"
#include "log.h"
#include "peer.h"
#include "store.h"
#include "validate.h"
#include "xmalloc.h"

void
ans_custody(const struct worker *w, struct custody *c)
{
	c->kcd = w->kcd;
	c->hs = w->hs;
	c->st = w->st;
}

int
ans_check_zone(const char *zone, struct kc_error *err)
{
	if (zone == NULL || !val_zone_id(zone)) {
		kc_error_set(err, KC_STATUS_INVALID_ARGUMENT, KC_API_ZONE_INVALID,
		    KC_API_ZONE_INVALID_FMT, zone == NULL ? "" : "<invalid>");
		return KC_ERR_INVALID;
	}
	return 0;
}

int
ans_pagination(int has_page, uint32_t page, int has_per_page, uint32_t per_page,
    unsigned int *pagep, unsigned int *per_pagep, struct kc_error *err)
{
	unsigned int	 pg = has_page ? page : 0, pp = has_per_page ? per_page : 0;
	int		 r;

	if (has_page && pg == 0) {
		kc_error_set(err, KC_STATUS_INVALID_ARGUMENT, KC_API_PARAMS, KC_API_PAGE_MSG);
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
ans_cmp_key_id(const void *a, const void *b)
{
	return memcmp(a, b, STORE_KEY_ID_LEN);
}

int
ans_key_missing(const struct worker *w, const uint8_t *key_id)
{
	return w->kcd->nmissing > 0 && bsearch(key_id, w->kcd->missing_ids,
	    w->kcd->nmissing, STORE_KEY_ID_LEN, ans_cmp_key_id) != NULL;
}

void *
ans_amem(struct worker *w, size_t n)
{
	void	*p;

	if ((p = kc_arena_calloc(&w->arena, 1, n)) == NULL)
		fatalx("reply arena: allocating %zu bytes", n);
	return p;
}

/* Zeroed memory for a message: the arena's or malloc'd. */
static void *
ans_new(struct worker *w, enum ans_how how, size_t n)
{
	return how == ANS_ARENA ? ans_amem(w, n) : xcalloc(1, n);
}

/* A copy of s, in the arena or malloc'd. */
static char *
ans_dup(struct worker *w, enum ans_how how, const char *s)
{
	size_t	 n = strlen(s) + 1;

	return how == ANS_ARENA ? memcpy(ans_amem(w, n), s, n) : xstrdup(s);
}

char *
ans_str(char **sp, enum ans_how how)
{
	char	*s = *sp;

	if (how == ANS_COPY)
		return xstrdup(s);
	*sp = NULL;
	return s;
}

/* As ans_str() for an optional field: NULL or "" is absent (NULL). */
static char *
ans_str_opt(char **sp, enum ans_how how)
{
	if (*sp == NULL || **sp == '\0')
		return NULL;
	return ans_str(sp, how);
}

Keycustody__Csr *
ans_csr_msg(struct worker *w, struct store_csr *c, enum ans_how how)
{
	Keycustody__Csr	*m = ans_new(w, how, sizeof(*m));
	size_t		 i;

	keycustody__csr__init(m);
	m->id = ans_dup(w, how, c->id);
	m->zone_id = ans_dup(w, how, c->zone_id);
	m->created_at_us = c->created_at_us;
	m->key_type = ans_str(&c->key_type, how);
	m->country = ans_str(&c->country, how);
	m->state = ans_str(&c->state_name, how);
	m->locality = ans_str(&c->locality, how);
	m->organization = ans_str(&c->organization, how);
	m->organizational_unit = ans_str_opt(&c->organizational_unit, how);
	m->common_name = ans_str(&c->common_name, how);
	m->n_sans = c->nsans;
	if (c->nsans > 0 && how != ANS_COPY) {
		m->sans = c->sans;
		c->sans = NULL;
		c->nsans = 0;
	} else if (c->nsans > 0) {
		m->sans = xcalloc(c->nsans, sizeof(*m->sans));
		for (i = 0; i < c->nsans; i++)
			m->sans[i] = xstrdup(c->sans[i]);
	}
	m->csr = c->csr_pem != NULL ? ans_str(&c->csr_pem, how) : ans_dup(w, how, "");
	m->name = ans_str_opt(&c->name, how);
	m->description = ans_str_opt(&c->description, how);
	if (how == ANS_ARENA) {
		m->key_uri = ans_amem(w, hsm_key_uri_size(w->kcd->hsm));
		hsm_key_uri_write(w->kcd->hsm, c->key_id, m->key_uri);
	} else
		m->key_uri = hsm_key_uri(w->kcd->hsm, c->key_id);
	m->module_key_uri = ans_new(w, how, kc_p11_key_uri_size(KC_MODULE_TOKEN_LABEL,
	    STORE_KEY_ID_LEN));
	kc_p11_key_uri(KC_MODULE_TOKEN_LABEL, c->key_id, STORE_KEY_ID_LEN, m->module_key_uri);
	m->key_id = ans_new(w, how, 2 * STORE_KEY_ID_LEN + 1);
	kc_hex(c->key_id, STORE_KEY_ID_LEN, m->key_id);
	if (ans_key_missing(w, c->key_id)) {
		m->has_key_missing = 1;
		m->key_missing = 1;
	}
	return m;
}

void
ans_actor(const struct worker *w, const Keycustody__Request *req, struct audit_actor *actor)
{
	memset(actor, 0, sizeof(*actor));
	if (w->peer != NULL) {
		actor->uid = w->peer->uid;
		actor->pid = w->peer->pid;
	}
	/*
	 * Only the gateway speaks for an API credential: a name an admin or reader sends is
	 * ignored, so nobody else can put words in a credential's mouth (issue 12).
	 */
	if (w->peer != NULL && w->peer->role == PEER_ROLE_GATEWAY)
		actor->credential = req->actor;
}

int
ans_audit(struct worker *w, const Keycustody__Request *req, const char *op,
    const char *zone, const char *id, const uint8_t *key_id, int r,
    const struct kc_error *err)
{
	struct audit_actor	 actor;

	ans_actor(w, req, &actor);
	return audit_op(w->kcd->audit, &actor, op, zone, id, key_id, STORE_KEY_ID_LEN, r,
	    err);
}
