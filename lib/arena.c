/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * arena.c: the bump allocator of arena.h.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"

/*
 * The first block: a page of 50 CSRs with RSA-4096 PEMs unpacks into about 150 kB, the
 * usual list page of 20 P-256 ones into about 30 kB.
 */
#define KC_ARENA_CHUNK	(64 * 1024)
#define KC_ARENA_KEEP_MAX	(4 * 1024 * 1024)	/* the first block grows to at most */
#define KC_ARENA_ALIGN	_Alignof(max_align_t)

struct kc_arena_chunk {
	struct kc_arena_chunk	*next;
	size_t			 size;		/* of data */
	max_align_t		 data[];
};

static struct kc_arena_chunk *
kc_arena_chunk_new(size_t size)
{
	struct kc_arena_chunk	*c;

	if (size > SIZE_MAX - sizeof(*c) || (c = malloc(sizeof(*c) + size)) == NULL)
		return NULL;
	c->next = NULL;
	c->size = size;
	return c;
}

void
kc_arena_init(struct kc_arena *a)
{
	memset(a, 0, sizeof(*a));
}

void *
kc_arena_alloc(struct kc_arena *a, size_t size)
{
	struct kc_arena_chunk	*c;
	size_t			 n, want;
	void			*p;

	/* Rounded up so that every allocation stays aligned for any type. */
	if (size > SIZE_MAX - KC_ARENA_ALIGN)
		return NULL;
	n = (size + KC_ARENA_ALIGN - 1) & ~(size_t)(KC_ARENA_ALIGN - 1);
	if (a->cur == NULL) {
		if (a->first == NULL && (a->first = kc_arena_chunk_new(KC_ARENA_CHUNK)) == NULL)
			return NULL;
		a->cur = a->first;
		a->used = 0;
	}
	if (a->cur->size - a->used < n) {
		/* A new block, at least twice the last: few blocks even for a 1 MiB frame. */
		want = a->cur->size <= SIZE_MAX / 2 ? 2 * a->cur->size : SIZE_MAX;
		if (want < n)
			want = n;
		if ((c = kc_arena_chunk_new(want)) == NULL)
			return NULL;
		c->next = a->extra;
		a->extra = c;
		a->cur = c;
		a->used = 0;
	}
	p = (char *)a->cur->data + a->used;
	a->used += n;
	return p;
}

void *
kc_arena_calloc(struct kc_arena *a, size_t n, size_t size)
{
	void	*p;

	if (size != 0 && n > SIZE_MAX / size)
		return NULL;
	if ((p = kc_arena_alloc(a, n * size)) != NULL)
		memset(p, 0, n * size);
	return p;
}

char *
kc_arena_strndup(struct kc_arena *a, const char *s, size_t n)
{
	char	*p;

	if (n == SIZE_MAX || (p = kc_arena_alloc(a, n + 1)) == NULL)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

void
kc_arena_reset(struct kc_arena *a)
{
	struct kc_arena_chunk	*c, *big;
	size_t			 total = a->first != NULL ? a->first->size : 0;

	while ((c = a->extra) != NULL) {
		a->extra = c->next;
		total += c->size;
		free(c);
	}
	/*
	 * A use that outgrew the first block is likely to come again (the next page of 50
	 * RSA-4096 CSRs): the first block grows to what it took, up to KC_ARENA_KEEP_MAX, so
	 * that such pages do not allocate and free big blocks (mmap and munmap) every time.
	 */
	if (a->first != NULL && total > a->first->size && total <= KC_ARENA_KEEP_MAX &&
	    (big = kc_arena_chunk_new(total)) != NULL) {
		free(a->first);
		a->first = big;
	}
	a->cur = a->first;
	a->used = 0;
}

void
kc_arena_uninit(struct kc_arena *a)
{
	kc_arena_reset(a);
	free(a->first);
	a->first = a->cur = NULL;
}
