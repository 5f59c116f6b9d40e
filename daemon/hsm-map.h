/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * hsm-map.h: the id -> handle map of hsm.c, an open-addressing hash table keyed by the
 * 16-byte random CKA_ID. Lookup, insert and remove are O(1) on average, whatever the
 * number of keys. Not thread-safe: hsm.c holds its lock around every call.
 */
#ifndef KC_HSM_MAP_H
#define KC_HSM_MAP_H

#include <stddef.h>
#include <stdint.h>

#include "hsm.h"

struct evp_pkey_st;

#define HSM_MAP_DUP	0x01	/* the token holds more objects of ours with this id */

/*
 * One key pair. Handles are CK_OBJECT_HANDLEs (unsigned long in every PKCS#11 header); 0
 * (CK_INVALID_HANDLE) means that half was not found. pkey is NULL until the public key is
 * first needed; the map holds one reference to it.
 */
struct hsm_map_entry {
	uint8_t			 id[HSM_KEY_ID_LEN];
	unsigned long		 priv;
	unsigned long		 pub;
	struct evp_pkey_st	*pkey;
	uint8_t			 type;		/* enum hsm_keytype; valid when pkey is set */
	uint8_t			 flags;		/* HSM_MAP_* */
	uint8_t			 used;		/* slot occupied */
};

struct hsm_map {
	struct hsm_map_entry	*slots;
	size_t			 cap;		/* a power of two, or 0 */
	size_t			 n;
	uint64_t		 seed;		/* keys the hash: ids in a token are not all ours */
};

/** An empty map with a random hash seed. */
void	hsm_map_init(struct hsm_map *m);
/** Free the table; fn (may be NULL) is called on every entry first. */
void	hsm_map_uninit(struct hsm_map *m, void (*fn)(struct hsm_map_entry *));
/** Empty the map, keeping its table; fn (may be NULL) is called on every entry first. */
void	hsm_map_clear(struct hsm_map *m, void (*fn)(struct hsm_map_entry *));
/** The entry of id, or NULL. Borrowed: valid until the next insert or remove. */
struct hsm_map_entry *hsm_map_lookup(const struct hsm_map *m, const uint8_t *id);
/**
 * The entry of id, made (zeroed but for id) when absent; *made says which. Borrowed like
 * hsm_map_lookup()'s. NULL when the table could not grow (out of memory).
 */
struct hsm_map_entry *hsm_map_insert(struct hsm_map *m, const uint8_t *id, int *made);
/** Remove id; *out (may be NULL) gets the entry. @retval 1 when it was there, else 0 */
int	hsm_map_remove(struct hsm_map *m, const uint8_t *id, struct hsm_map_entry *out);
/** Iterate: *i starts at 0; returns the next entry, or NULL at the end. */
struct hsm_map_entry *hsm_map_next(const struct hsm_map *m, size_t *i);
/** Bytes the table takes (for the memory per key). */
size_t	hsm_map_bytes(const struct hsm_map *m);

#endif /* KC_HSM_MAP_H */
