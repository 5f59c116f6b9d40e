/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * sign.c: the signer role's scope, its rate limit and its counts (sign.h).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kc-err.h"
#include "log.h"
#include "sign.h"
#include "validate.h"
#include "xmalloc.h"

/* A hostname of a scope, folded: letters, digits, hyphens, dots and a leading "*.". */
static bool
sign_hostname(const char *s, size_t len)
{
	size_t	 i;

	if (len == 0 || len > 253)
		return false;
	for (i = 0; i < len; i++) {
		if ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
		    s[i] == '-' || s[i] == '.')
			continue;
		if (i == 0 && s[0] == '*' && len > 2 && s[1] == '.')
			continue;
		return false;
	}
	return true;
}

int
sign_scope_parse(const char *items, struct sign_scope *sc, char **cause)
{
	const char		*p = items, *w;
	struct sign_scope_item	 it;
	size_t			 len;
	char			*host, *word, *slash;

	memset(sc, 0, sizeof(*sc));
	for (;;) {
		p += strspn(p, " \t");
		if (*p == '\0')
			break;
		w = p;
		len = strcspn(p, " \t");
		p += len;
		memset(&it, 0, sizeof(it));
		if (len == 1 && *w == '*') {
			it.any_zone = true;
		} else {
			/* The zone as validate.c checks zone ids, the hostname folded as stored. */
			word = xcalloc(1, len + 1);
			memcpy(word, w, len);
			if ((slash = strchr(word, '/')) != NULL)
				*slash = '\0';
			if (!val_zone_id(word)) {
				xasprintf(cause, "signer: \"%.*s\" is not a zone id (32 lowercase "
				    "hex digits), zone/hostname or *", (int)len, w);
				free(word);
				goto fail;
			}
			memcpy(it.zone, word, 32);
			if (slash != NULL) {
				host = xstrdup(slash + 1);
				val_hostname_fold(host);
				if (!sign_hostname(host, strlen(host))) {
					xasprintf(cause, "signer: \"%s\" is not a hostname", host);
					free(host);
					free(word);
					goto fail;
				}
				it.hostname = host;
			}
			free(word);
		}
		sc->items = xreallocarray(sc->items, sc->n + 1, sizeof(*sc->items));
		sc->items[sc->n++] = it;
	}
	if (sc->n == 0) {
		xasprintf(cause, "signer: no scope: name the zones (zone ids, zone/hostname, "
		    "or * for every zone)");
		return KC_ERR_INVALID;
	}
	return 0;
 fail:
	sign_scope_free(sc);
	return KC_ERR_INVALID;
}

void
sign_scope_merge(struct sign_scope *dst, const struct sign_scope *src)
{
	size_t	 i;

	dst->items = xreallocarray(dst->items, dst->n + src->n, sizeof(*dst->items));
	for (i = 0; i < src->n; i++) {
		dst->items[dst->n] = src->items[i];
		if (src->items[i].hostname != NULL)
			dst->items[dst->n].hostname = xstrdup(src->items[i].hostname);
		dst->n++;
	}
}

void
sign_scope_free(struct sign_scope *sc)
{
	size_t	 i;

	if (sc == NULL)
		return;
	for (i = 0; i < sc->n; i++)
		free(sc->items[i].hostname);
	free(sc->items);
	memset(sc, 0, sizeof(*sc));
}

bool
sign_scope_allows(const struct sign_scope *sc, const char *zone, const char *hostname)
{
	const struct sign_scope_item	*it;
	size_t				 i;

	if (sc == NULL)
		return false;
	for (i = 0; i < sc->n; i++) {
		it = &sc->items[i];
		if (it->any_zone)
			return true;
		if (strcmp(it->zone, zone) != 0)
			continue;
		if (it->hostname == NULL || strcmp(it->hostname, hostname) == 0)
			return true;
	}
	return false;
}

bool
sign_scope_zones_only(const struct sign_scope *sc)
{
	size_t	 i;

	for (i = 0; sc != NULL && i < sc->n; i++)
		if (sc->items[i].any_zone)
			return false;
	return sc != NULL;
}

struct sign_bucket {
	struct sign_bucket	*next;
	uid_t			 uid;
	double			 tokens;
	struct timespec		 last;
};

void
sign_limiter_init(struct sign_limiter *l, unsigned int rate)
{
	memset(l, 0, sizeof(*l));
	l->rate = rate;
}

bool
sign_limiter_take(struct sign_limiter *l, uid_t uid)
{
	struct sign_bucket	*b;
	struct timespec		 now;
	double			 dt;

	if (l->rate == 0)
		return true;
	clock_gettime(CLOCK_MONOTONIC, &now);
	for (b = l->buckets; b != NULL && b->uid != uid; b = b->next)
		;
	if (b == NULL) {
		b = xcalloc(1, sizeof(*b));
		b->uid = uid;
		b->tokens = l->rate;
		b->last = now;
		b->next = l->buckets;
		l->buckets = b;
	}
	dt = (double)(now.tv_sec - b->last.tv_sec) +
	    (double)(now.tv_nsec - b->last.tv_nsec) / 1e9;
	b->last = now;
	if (dt > 0) {
		b->tokens += dt * l->rate;
		if (b->tokens > l->rate)
			b->tokens = l->rate;
	}
	if (b->tokens < 1) {
		l->limited++;
		return false;
	}
	b->tokens -= 1;
	return true;
}

void
sign_limiter_free(struct sign_limiter *l)
{
	struct sign_bucket	*b;

	while ((b = l->buckets) != NULL) {
		l->buckets = b->next;
		free(b);
	}
}

void
sign_stats_init(struct sign_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (pthread_mutex_init(&st->mu, NULL) != 0)
		fatalx("pthread_mutex_init");
}

/* Where (key_id, uid) is or would go in the sorted array. */
static size_t
sign_stats_find(const struct sign_stats *st, const uint8_t *key_id, uid_t uid, bool *found)
{
	size_t	 lo = 0, hi = st->n, mid;
	int	 c;

	*found = false;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = memcmp(st->v[mid].key_id, key_id, SIGN_KEY_ID_LEN);
		if (c == 0)
			c = st->v[mid].uid < uid ? -1 : st->v[mid].uid > uid;
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

void
sign_stats_add(struct sign_stats *st, const uint8_t *key_id, uid_t uid, enum sign_outcome o)
{
	static const uint8_t	 zero[SIGN_KEY_ID_LEN];
	struct sign_count	*c;
	size_t			 i;
	bool			 found;

	if (key_id == NULL)
		key_id = zero;
	pthread_mutex_lock(&st->mu);
	i = sign_stats_find(st, key_id, uid, &found);
	if (!found) {
		if (st->n == st->cap) {
			st->cap = st->cap ? st->cap * 2 : 16;
			st->v = xreallocarray(st->v, st->cap, sizeof(*st->v));
		}
		memmove(&st->v[i + 1], &st->v[i], (st->n - i) * sizeof(*st->v));
		st->n++;
		c = &st->v[i];
		memset(c, 0, sizeof(*c));
		memcpy(c->key_id, key_id, SIGN_KEY_ID_LEN);
		c->uid = uid;
	}
	st->v[i].total[o]++;
	st->v[i].period[o]++;
	pthread_mutex_unlock(&st->mu);
}

void
sign_stats_snapshot(struct sign_stats *st, bool period, struct sign_count **vp, size_t *n)
{
	struct sign_count	*v;
	size_t			 i, j = 0, k;
	uint64_t		 any;

	pthread_mutex_lock(&st->mu);
	v = xcalloc(st->n ? st->n : 1, sizeof(*v));
	for (i = 0; i < st->n; i++) {
		for (any = 0, k = 0; k < SIGN_NOUTCOMES; k++)
			any |= st->v[i].period[k];
		if (period && any == 0)
			continue;
		v[j++] = st->v[i];
		if (period)
			memset(st->v[i].period, 0, sizeof(st->v[i].period));
	}
	pthread_mutex_unlock(&st->mu);
	*vp = v;
	*n = j;
}

void
sign_stats_free(struct sign_stats *st)
{
	pthread_mutex_destroy(&st->mu);
	free(st->v);
	memset(st, 0, sizeof(*st));
}
