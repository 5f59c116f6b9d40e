/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * arena.h: a bump allocator for short-lived trees of small objects (an unpacked reply, a
 * page of records and the reply built from it). Its first block is kept from one use to
 * the next, so that in the steady state a whole page costs no malloc; a bigger use gets
 * extra blocks, and the reset grows the first block to the size that use took (up to
 * 4 MiB). Everything allocated lives until kc_arena_reset(); nothing is freed one by one.
 * One thread at a time.
 */
#ifndef KC_ARENA_H
#define KC_ARENA_H

#include <stddef.h>

struct kc_arena_chunk;
struct kc_arena {
	struct kc_arena_chunk	*first;		/* kept across resets */
	struct kc_arena_chunk	*extra;		/* for big uses: freed by a reset */
	struct kc_arena_chunk	*cur;
	size_t			 used;		/* of cur */
};

/** An empty arena (its first block is allocated on first use). */
void	 kc_arena_init(struct kc_arena *a);

/**
 * n bytes, aligned for any type.
 * @retval NULL out of memory (or n absurdly large)
 */
void	*kc_arena_alloc(struct kc_arena *a, size_t n);

/** n objects of size bytes, zeroed; NULL on overflow or out of memory. */
void	*kc_arena_calloc(struct kc_arena *a, size_t n, size_t size);

/** A NUL-terminated copy of the n bytes at s; NULL out of memory. */
char	*kc_arena_strndup(struct kc_arena *a, const char *s, size_t n);

/** Invalidate everything allocated from a; keep the first block, grown, for the next use. */
void	 kc_arena_reset(struct kc_arena *a);

/** Free all of a's memory; a can be used again after kc_arena_init(). */
void	 kc_arena_uninit(struct kc_arena *a);

#endif /* KC_ARENA_H */
