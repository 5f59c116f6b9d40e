/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * hsm-map.c: the id -> handle hash table of hsm.c: linear probing, at most 70% full,
 * deletion by backward shift (no tombstones, so a long-lived map never degrades).
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "hsm-map.h"

#define HSM_MAP_MINCAP	64
/* Grow before n / cap passes 7 / 10. */
#define HSM_MAP_FULL(n, cap)	((n) * 10 >= (cap) * 7)

/* MurmurHash3's 64-bit finalizer. */
static uint64_t
hsm_map_mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static size_t
hsm_map_hash(const struct hsm_map *m, const uint8_t *id)
{
	uint64_t	a, b;

	memcpy(&a, id, sizeof(a));
	memcpy(&b, id + sizeof(a), sizeof(b));
	return (size_t)hsm_map_mix(hsm_map_mix(a ^ m->seed) ^ b);
}

void
hsm_map_init(struct hsm_map *m)
{
	memset(m, 0, sizeof(*m));
	if (RAND_bytes((unsigned char *)&m->seed, sizeof(m->seed)) != 1)
		m->seed = (uint64_t)(uintptr_t)m ^ 0x9e3779b97f4a7c15ULL;
}

void
hsm_map_clear(struct hsm_map *m, void (*fn)(struct hsm_map_entry *))
{
	size_t	i;

	for (i = 0; i < m->cap; i++)
		if (m->slots[i].used && fn != NULL)
			fn(&m->slots[i]);
	if (m->cap > 0)
		memset(m->slots, 0, m->cap * sizeof(*m->slots));
	m->n = 0;
}

void
hsm_map_uninit(struct hsm_map *m, void (*fn)(struct hsm_map_entry *))
{
	hsm_map_clear(m, fn);
	free(m->slots);
	m->slots = NULL;
	m->cap = 0;
}

/* The slot of id, or of the empty slot where it would go. */
static size_t
hsm_map_probe(const struct hsm_map *m, const uint8_t *id)
{
	size_t	mask = m->cap - 1, i;

	for (i = hsm_map_hash(m, id) & mask; m->slots[i].used; i = (i + 1) & mask)
		if (memcmp(m->slots[i].id, id, HSM_KEY_ID_LEN) == 0)
			break;
	return i;
}

struct hsm_map_entry *
hsm_map_lookup(const struct hsm_map *m, const uint8_t *id)
{
	size_t	i;

	if (m->n == 0)
		return NULL;
	i = hsm_map_probe(m, id);
	return m->slots[i].used ? &m->slots[i] : NULL;
}

static int
hsm_map_grow(struct hsm_map *m)
{
	struct hsm_map_entry	*old = m->slots, *e;
	size_t			 oldcap = m->cap, cap, i;

	cap = oldcap ? oldcap * 2 : HSM_MAP_MINCAP;
	if (cap < oldcap || (m->slots = calloc(cap, sizeof(*m->slots))) == NULL) {
		m->slots = old;
		return -1;
	}
	m->cap = cap;
	for (i = 0; i < oldcap; i++) {
		if (!old[i].used)
			continue;
		e = &m->slots[hsm_map_probe(m, old[i].id)];
		*e = old[i];
	}
	free(old);
	return 0;
}

struct hsm_map_entry *
hsm_map_insert(struct hsm_map *m, const uint8_t *id, int *made)
{
	struct hsm_map_entry	*e;

	*made = 0;
	if ((e = hsm_map_lookup(m, id)) != NULL)
		return e;
	if ((m->cap == 0 || HSM_MAP_FULL(m->n + 1, m->cap)) && hsm_map_grow(m) != 0)
		return NULL;
	e = &m->slots[hsm_map_probe(m, id)];
	memset(e, 0, sizeof(*e));
	memcpy(e->id, id, HSM_KEY_ID_LEN);
	e->used = 1;
	m->n++;
	*made = 1;
	return e;
}

int
hsm_map_remove(struct hsm_map *m, const uint8_t *id, struct hsm_map_entry *out)
{
	size_t	mask = m->cap - 1, i, j, home;

	if (m->n == 0)
		return 0;
	i = hsm_map_probe(m, id);
	if (!m->slots[i].used)
		return 0;
	if (out != NULL)
		*out = m->slots[i];
	/*
	 * Backward shift: pull each later entry of the run into the hole unless its home
	 * slot lies cyclically in (hole, entry], where it must stay.
	 */
	for (j = (i + 1) & mask; m->slots[j].used; j = (j + 1) & mask) {
		home = hsm_map_hash(m, m->slots[j].id) & mask;
		if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
			continue;
		m->slots[i] = m->slots[j];
		i = j;
	}
	memset(&m->slots[i], 0, sizeof(m->slots[i]));
	m->n--;
	return 1;
}

struct hsm_map_entry *
hsm_map_next(const struct hsm_map *m, size_t *i)
{
	for (; *i < m->cap; (*i)++)
		if (m->slots[*i].used)
			return &m->slots[(*i)++];
	return NULL;
}

size_t
hsm_map_bytes(const struct hsm_map *m)
{
	return m->cap * sizeof(*m->slots);
}
