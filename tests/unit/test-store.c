/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * test-store.c: unit tests of store.c (records, states, zones, pagination, schema) on a
 * SQLite file in a temporary directory.
 */
#include "config.h"

#include <sys/stat.h>

#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "arena.h"
#include "kc-err.h"
#include "store.h"

#define ZONE_A	"0123456789abcdef0123456789abcdef"
#define ZONE_B	"fedcba9876543210fedcba9876543210"
#define ZONE_C	"00000000000000000000000000000000"

#define NPAGED	23	/* READY records of zone A in the pagination test */
#define NHOSTS	13	/* custom hostnames of zone A in the hostname list test */

#define SCHEMA_VERSION	8	/* the newest migration of store.c */

struct fixture {
	char		 dir[PATH_MAX];
	char		 path[PATH_MAX + 32];
	struct store	*s;
};

/* A record with storage for its strings (store_csr's fields are not const). */
struct tcsr {
	struct store_csr c;
	char		 key_type[16];
	char		 country[4];
	char		 state_name[32];
	char		 locality[32];
	char		 organization[32];
	char		 unit[32];
	char		 cn[64];
	char		 san[3][64];
	char		*sans[3];
	char		 name[32];
};

static const uint8_t	 test_pubkey[] = { 0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x00, 0xff };
static char		 test_pem[] =
    "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n";

/* A custom hostname with storage for its strings. */
struct thost {
	struct store_hostname h;
	char		 hostname[64];
	char		 bundle[16];
	char		 pem[128];
	char		 upload[128];
	char		 issuer[32];
	char		 serial[48];
	char		 sig[32];
	char		 host[2][64];
	char		*hosts[2];
};

/* Remove a database file and its WAL companions. */
static void
remove_db(const char *path)
{
	char	 p[PATH_MAX + 128];

	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-journal", path);
	unlink(p);
}

static int
fx_setup(void **state)
{
	struct fixture	*fx;
	const char	*tmp;
	char		*cause = NULL;

	umask(022);
	if ((fx = calloc(1, sizeof(*fx))) == NULL)
		return -1;
	if ((tmp = getenv("TMPDIR")) == NULL || *tmp == '\0')
		tmp = "/tmp";
	snprintf(fx->dir, sizeof(fx->dir), "%s/test-store.XXXXXX", tmp);
	if (mkdtemp(fx->dir) == NULL) {
		free(fx);
		return -1;
	}
	snprintf(fx->path, sizeof(fx->path), "%s/keycustody.db", fx->dir);
	if (store_open(fx->path, &fx->s, &cause) != 0) {
		fprintf(stderr, "store_open: %s\n", cause);
		free(cause);
		remove_db(fx->path);
		rmdir(fx->dir);
		free(fx);
		return -1;
	}
	*state = fx;
	return 0;
}

static int
fx_teardown(void **state)
{
	struct fixture	*fx = *state;
	char		 p[PATH_MAX + 64];

	store_close(fx->s);
	remove_db(fx->path);
	/* Files of tests that stopped on a failed assertion. */
	snprintf(p, sizeof(p), "%s/fresh.db", fx->dir);
	remove_db(p);
	snprintf(p, sizeof(p), "%s/legacy.db", fx->dir);
	remove_db(p);
	snprintf(p, sizeof(p), "%s/v1.db", fx->dir);
	remove_db(p);
	snprintf(p, sizeof(p), "%s/v2.db", fx->dir);
	remove_db(p);
	rmdir(fx->dir);
	free(fx);
	return 0;
}

/* Record n of zone z: a scrambled UUID so that id order differs from insertion order. */
static void
tcsr_init(struct tcsr *t, unsigned int z, unsigned int n, int64_t created_at_us, size_t nsans)
{
	size_t	 i;

	memset(t, 0, sizeof(*t));
	snprintf(t->c.id, sizeof(t->c.id), "%08x-0000-4000-8000-%012x",
	    (n * 2654435761u) & 0xffffffffu, z * 1000 + n);
	snprintf(t->c.zone_id, sizeof(t->c.zone_id), "%s",
	    z == 0 ? ZONE_A : z == 1 ? ZONE_B : ZONE_C);
	t->c.created_at_us = created_at_us;
	t->c.state = STORE_CSR_READY;	/* ignored by store_csr_insert */
	memset(t->c.key_id, 0xa5, sizeof(t->c.key_id));
	t->c.key_id[0] = (uint8_t)z;
	t->c.key_id[1] = (uint8_t)(n >> 8);
	t->c.key_id[2] = (uint8_t)n;
	snprintf(t->key_type, sizeof(t->key_type), "p256v1");
	snprintf(t->country, sizeof(t->country), "US");
	snprintf(t->state_name, sizeof(t->state_name), "California");
	snprintf(t->locality, sizeof(t->locality), "San Francisco");
	snprintf(t->organization, sizeof(t->organization), "Example Inc");
	snprintf(t->cn, sizeof(t->cn), "host%u.zone%u.example.net", n, z);
	t->c.key_type = t->key_type;
	t->c.country = t->country;
	t->c.state_name = t->state_name;
	t->c.locality = t->locality;
	t->c.organization = t->organization;
	t->c.common_name = t->cn;
	for (i = 0; i < nsans && i < 3; i++) {
		snprintf(t->san[i], sizeof(t->san[i]), "san%zu.host%u.zone%u.example.net",
		    i, n, z);
		t->sans[i] = t->san[i];
	}
	t->c.sans = nsans > 0 ? t->sans : NULL;
	t->c.nsans = nsans;
}

static void
insert_ready(struct store *s, struct tcsr *t)
{
	assert_int_equal(store_csr_insert(s, &t->c), 0);
	assert_int_equal(store_csr_set_ready(s, t->c.id, test_pubkey, sizeof(test_pubkey),
	    test_pem), 0);
}

static void
assert_str_or_null(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

static void
assert_same_csr(const struct store_csr *a, const struct store_csr *b)
{
	size_t	 i;

	assert_string_equal(a->id, b->id);
	assert_string_equal(a->zone_id, b->zone_id);
	assert_int_equal(a->created_at_us, b->created_at_us);
	assert_string_equal(a->key_type, b->key_type);
	assert_memory_equal(a->key_id, b->key_id, STORE_KEY_ID_LEN);
	assert_string_equal(a->country, b->country);
	assert_string_equal(a->state_name, b->state_name);
	assert_string_equal(a->locality, b->locality);
	assert_string_equal(a->organization, b->organization);
	assert_str_or_null(a->organizational_unit, b->organizational_unit);
	assert_string_equal(a->common_name, b->common_name);
	assert_int_equal(a->nsans, b->nsans);
	for (i = 0; i < a->nsans; i++)
		assert_string_equal(a->sans[i], b->sans[i]);
	if (a->nsans == 0)
		assert_null(b->sans);
	assert_str_or_null(a->name, b->name);
	assert_str_or_null(a->description, b->description);
}

/* Open a raw connection on the store's file, as another process would. */
static sqlite3 *
raw_open(const char *path)
{
	sqlite3	*db = NULL;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL),
	    SQLITE_OK);
	return db;
}

static int
raw_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt	*st;
	int		 v;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* A custom hostname using a CSR: what a certificate upload will write. */
static int
raw_add_hostname(sqlite3 *db, const char *id, const char *zone_id, const char *csr_id)
{
	sqlite3_stmt	*st;
	int		 rc;

	assert_int_equal(sqlite3_prepare_v2(db,
	    "INSERT INTO custom_hostnames (id, zone_id, hostname, csr_id, created_at_us, "
	    "ssl_id, bundle_method, certificate_pem, issuer, serial_number, signature_alg, "
	    "uploaded_on_us, expires_on_us, hosts) VALUES (?1, ?2, 'app.example.net', ?3, 1, "
	    "?1, 'ubiquitous', 'PEM', 'TestCA', '1', 'ECDSAWithSHA256', 1, 2, "
	    "'app.example.net')", -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, zone_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, csr_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc;
}

/*
 * Zones whose zone_counts row (migration 3) disagrees with a count of their rows: READY
 * CSRs and custom hostnames. A zone without a row counts as 0 and 0.
 */
static int
raw_count_mismatches(sqlite3 *db)
{
	return raw_int(db,
	    "SELECT count(*) FROM ("
	    "  SELECT zone_id FROM ("
	    "    SELECT zone_id, csrs_ready AS r, hostnames AS h FROM zone_counts"
	    "    UNION ALL"
	    "    SELECT zone_id, -count(*), 0 FROM csrs WHERE state = 1 GROUP BY zone_id"
	    "    UNION ALL"
	    "    SELECT zone_id, 0, -count(*) FROM custom_hostnames GROUP BY zone_id)"
	    "  GROUP BY zone_id HAVING sum(r) <> 0 OR sum(h) <> 0)");
}

/*
 * The totals a zone's lists give (READY CSRs, custom hostnames) are ready and hosts, and
 * zone_counts agrees with the rows of every zone.
 */
static void
assert_totals(struct store *s, const char *path, const char *zone, uint64_t ready,
    uint64_t hosts)
{
	struct store_hostname	**hv = NULL;
	struct store_csr	**cv = NULL;
	uint64_t		  total;
	size_t			  n;
	sqlite3			 *db;

	assert_int_equal(store_csr_list(s, zone, 1, 50, false, &cv, &n, &total), 0);
	assert_int_equal(total, ready);
	assert_int_equal(n, ready);
	store_csr_free_array(cv, n);
	/* Past the end: the total alone. */
	assert_int_equal(store_csr_list(s, zone, 1000, 50, true, &cv, &n, &total), 0);
	assert_int_equal(total, ready);
	assert_int_equal(n, 0);
	assert_int_equal(store_hostname_list(s, zone, NULL, NULL, 1, 50, false, &hv, &n,
	    &total), 0);
	assert_int_equal(total, hosts);
	assert_int_equal(n, hosts);
	store_hostname_free_array(hv, n);
	db = raw_open(path);
	assert_int_equal(raw_count_mismatches(db), 0);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

/* Every field goes in and comes back; only READY records are visible. */
/*
 * store_csr_list_arena() gives the same records as store_csr_list(), with nothing to free,
 * across resets (the arena itself, past its first block: test-proto).
 */
static void
test_list_arena(void **state)
{
	struct fixture		*fx = *state;
	struct store_csr	**v = NULL, **w = NULL;
	struct tcsr		 t[NPAGED];
	struct kc_arena		 a;
	uint64_t		 total, total2;
	size_t			 n, n2, i, round;
	int			 desc;

	for (i = 0; i < NPAGED; i++) {
		tcsr_init(&t[i], 0, (unsigned int)i, 2000000 + (int64_t)i, (unsigned int)(i % 4));
		insert_ready(fx->s, &t[i]);
	}
	kc_arena_init(&a);
	for (round = 0; round < 3; round++) {
		for (desc = 0; desc <= 1; desc++) {
			assert_int_equal(store_csr_list(fx->s, ZONE_A, 1, 50, desc, &v, &n,
			    &total), 0);
			assert_int_equal(store_csr_list_arena(fx->s, ZONE_A, 1, 50, desc,
			    false, &a, &w, &n2, &total2), 0);
			assert_int_equal(n, NPAGED);
			assert_int_equal(n2, n);
			assert_int_equal(total2, total);
			for (i = 0; i < n; i++) {
				assert_same_csr(v[i], w[i]);
				assert_int_equal(w[i]->pubkey_len, v[i]->pubkey_len);
				assert_memory_equal(w[i]->pubkey_der, v[i]->pubkey_der,
				    v[i]->pubkey_len);
				assert_string_equal(w[i]->csr_pem, v[i]->csr_pem);
			}
			store_csr_free_array(v, n);
			v = NULL;
			kc_arena_reset(&a);
		}
		/* Page past the end and an empty zone: no records, the total still right. */
		assert_int_equal(store_csr_list_arena(fx->s, ZONE_A, 9, 5, false, false, &a,
		    &w, &n2, &total2), 0);
		assert_int_equal(n2, 0);
		assert_int_equal(total2, NPAGED);
		assert_int_equal(store_csr_list_arena(fx->s, ZONE_C, 1, 5, false, false, &a,
		    &w, &n2, &total2), 0);
		assert_int_equal(n2, 0);
		assert_int_equal(total2, 0);
		kc_arena_reset(&a);
	}
	kc_arena_uninit(&a);
}

static void
test_roundtrip(void **state)
{
	struct fixture		*fx = *state;
	struct store_csr	*got = NULL;
	struct tcsr		 a, b;
	static char		 desc[] = "line one\nline two";

	tcsr_init(&a, 0, 1, 1700000000000001LL, 3);
	a.c.organizational_unit = NULL;
	snprintf(a.name, sizeof(a.name), "web front");
	a.c.name = a.name;
	tcsr_init(&b, 0, 2, 1700000000000002LL, 1);
	snprintf(b.unit, sizeof(b.unit), "Ops");
	b.c.organizational_unit = b.unit;
	b.c.description = desc;

	assert_int_equal(store_csr_insert(fx->s, &a.c), 0);
	/* CREATING is not visible yet. */
	assert_int_equal(store_csr_get(fx->s, ZONE_A, a.c.id, &got), KC_ERR_NOT_FOUND);
	assert_null(got);
	assert_int_equal(store_csr_set_ready(fx->s, a.c.id, test_pubkey, sizeof(test_pubkey),
	    test_pem), 0);
	/* Only CREATING -> READY. */
	assert_int_equal(store_csr_set_ready(fx->s, a.c.id, test_pubkey, sizeof(test_pubkey),
	    test_pem), KC_ERR_NOT_FOUND);
	assert_int_equal(store_csr_set_ready(fx->s, "00000000-0000-4000-8000-000000000000",
	    test_pubkey, sizeof(test_pubkey), test_pem), KC_ERR_NOT_FOUND);

	assert_int_equal(store_csr_get(fx->s, ZONE_A, a.c.id, &got), 0);
	assert_non_null(got);
	assert_same_csr(&a.c, got);
	assert_int_equal(got->state, STORE_CSR_READY);
	assert_int_equal(got->pubkey_len, sizeof(test_pubkey));
	assert_memory_equal(got->pubkey_der, test_pubkey, sizeof(test_pubkey));
	assert_string_equal(got->csr_pem, test_pem);
	assert_null(got->organizational_unit);
	assert_null(got->description);
	store_csr_free(got);
	got = NULL;

	insert_ready(fx->s, &b);
	assert_int_equal(store_csr_get(fx->s, ZONE_A, b.c.id, &got), 0);
	assert_same_csr(&b.c, got);
	assert_null(got->name);
	store_csr_free(got);
	got = NULL;

	/* Another zone's record is not found. */
	assert_int_equal(store_csr_get(fx->s, ZONE_B, a.c.id, &got), KC_ERR_NOT_FOUND);
	assert_null(got);
	assert_int_equal(store_ping(fx->s), 0);

	store_csr_free(NULL);
	store_csr_free_array(NULL, 0);
}

/* A record without SANs and one whose only SAN is empty stay distinct. */
static void
test_sans_edge(void **state)
{
	struct fixture		*fx = *state;
	struct store_csr	*got = NULL;
	struct tcsr		 a, b, c;

	tcsr_init(&a, 0, 1, 1, 0);
	insert_ready(fx->s, &a);
	assert_int_equal(store_csr_get(fx->s, ZONE_A, a.c.id, &got), 0);
	assert_int_equal(got->nsans, 0);
	assert_null(got->sans);
	store_csr_free(got);

	tcsr_init(&b, 0, 2, 2, 2);
	b.san[1][0] = '\0';
	insert_ready(fx->s, &b);
	assert_int_equal(store_csr_get(fx->s, ZONE_A, b.c.id, &got), 0);
	assert_same_csr(&b.c, got);
	store_csr_free(got);

	/* A newline would corrupt the encoding: refused. */
	tcsr_init(&c, 0, 3, 3, 2);
	snprintf(c.san[1], sizeof(c.san[1]), "a.example.net\nb.example.net");
	assert_int_equal(store_csr_insert(fx->s, &c.c), KC_ERR_INVALID);
}

static int
cmp_key(const void *a, const void *b)
{
	const struct store_csr	*x = *(const struct store_csr *const *)a;
	const struct store_csr	*y = *(const struct store_csr *const *)b;

	if (x->created_at_us != y->created_at_us)
		return x->created_at_us < y->created_at_us ? -1 : 1;
	return strcmp(x->id, y->id);
}

/* 23 records, pages of 5, both directions, ties on created_at broken by id. */
static void
test_list_pagination(void **state)
{
	struct fixture		*fx = *state;
	struct store_csr	**v = NULL, *order[NPAGED];
	struct tcsr		 t[NPAGED], other[4], hidden[2];
	uint64_t		 total;
	size_t			 n, i, k;
	unsigned int		 page;
	int			 desc;

	for (i = 0; i < NPAGED; i++) {
		/* Groups of three share a timestamp. */
		tcsr_init(&t[i], 0, (unsigned int)i, 1000000 + (int64_t)(i / 3), 2);
		insert_ready(fx->s, &t[i]);
		order[i] = &t[i].c;
	}
	qsort(order, NPAGED, sizeof(order[0]), cmp_key);
	/* The ids really are out of insertion order within a tie. */
	assert_true(strcmp(order[0]->id, t[0].c.id) != 0 ||
	    strcmp(order[1]->id, t[1].c.id) != 0 || strcmp(order[2]->id, t[2].c.id) != 0);
	for (i = 0; i < 4; i++) {
		tcsr_init(&other[i], 1, 100 + (unsigned int)i, 1, 1);
		insert_ready(fx->s, &other[i]);
	}
	/* Neither CREATING nor DELETING records are listed or counted. */
	tcsr_init(&hidden[0], 0, 200, 5, 1);
	assert_int_equal(store_csr_insert(fx->s, &hidden[0].c), 0);
	tcsr_init(&hidden[1], 0, 201, 5, 1);
	insert_ready(fx->s, &hidden[1]);
	assert_int_equal(store_csr_set_deleting(fx->s, ZONE_A, hidden[1].c.id), 0);

	for (desc = 0; desc <= 1; desc++) {
		k = 0;
		for (page = 1; page <= 5; page++) {
			assert_int_equal(store_csr_list(fx->s, ZONE_A, page, 5, desc, &v, &n,
			    &total), 0);
			assert_int_equal(total, NPAGED);
			assert_int_equal(n, page < 5 ? 5 : 3);
			for (i = 0; i < n; i++, k++) {
				assert_string_equal(v[i]->id,
				    order[desc ? NPAGED - 1 - k : k]->id);
				assert_string_equal(v[i]->zone_id, ZONE_A);
				assert_int_equal(v[i]->state, STORE_CSR_READY);
				assert_int_equal(v[i]->nsans, 2);
			}
			store_csr_free_array(v, n);
			v = NULL;
		}
		assert_int_equal(k, NPAGED);
	}
	/* The whole zone on one page is the same order. */
	assert_int_equal(store_csr_list(fx->s, ZONE_A, 1, 50, false, &v, &n, &total), 0);
	assert_int_equal(n, NPAGED);
	for (i = 0; i < n; i++)
		assert_same_csr(order[i], v[i]);
	store_csr_free_array(v, n);

	/* Past the end: no records, no error, still the total. */
	assert_int_equal(store_csr_list(fx->s, ZONE_A, 6, 5, false, &v, &n, &total), 0);
	assert_int_equal(n, 0);
	assert_null(v);
	assert_int_equal(total, NPAGED);
	assert_int_equal(store_csr_list(fx->s, ZONE_A, UINT_MAX, 50, true, &v, &n, &total), 0);
	assert_int_equal(n, 0);
	assert_int_equal(total, NPAGED);
	assert_int_equal(store_csr_list(fx->s, ZONE_A, UINT_MAX, UINT_MAX, false, &v, &n,
	    &total), 0);
	assert_int_equal(n, 0);
	assert_int_equal(total, NPAGED);
	assert_int_equal(store_csr_list(fx->s, ZONE_A, 1, UINT_MAX, false, &v, &n, &total), 0);
	assert_int_equal(n, NPAGED);
	store_csr_free_array(v, n);
	assert_int_equal(store_csr_list(fx->s, ZONE_A, 0, 5, false, &v, &n, &total),
	    KC_ERR_INVALID);

	/* Zones are separate. */
	assert_int_equal(store_csr_list(fx->s, ZONE_B, 1, 5, false, &v, &n, &total), 0);
	assert_int_equal(n, 4);
	assert_int_equal(total, 4);
	for (i = 0; i < n; i++)
		assert_string_equal(v[i]->zone_id, ZONE_B);
	store_csr_free_array(v, n);
	assert_int_equal(store_csr_list(fx->s, ZONE_C, 1, 5, false, &v, &n, &total), 0);
	assert_int_equal(n, 0);
	assert_int_equal(total, 0);

	assert_int_equal(store_csr_count(fx->s, &total), 0);
	assert_int_equal(total, NPAGED + 4);
}

/* Ids and key ids are unique across zones. */
static void
test_conflict(void **state)
{
	struct fixture	*fx = *state;
	struct tcsr	 a, b;

	tcsr_init(&a, 0, 1, 1, 1);
	assert_int_equal(store_csr_insert(fx->s, &a.c), 0);
	assert_int_equal(store_csr_insert(fx->s, &a.c), KC_ERR_CONFLICT);

	/* Same id in another zone. */
	tcsr_init(&b, 1, 2, 1, 1);
	memcpy(b.c.id, a.c.id, sizeof(b.c.id));
	assert_int_equal(store_csr_insert(fx->s, &b.c), KC_ERR_CONFLICT);

	/* Same key id, new record id. */
	tcsr_init(&b, 0, 3, 1, 1);
	memcpy(b.c.key_id, a.c.key_id, sizeof(b.c.key_id));
	assert_int_equal(store_csr_insert(fx->s, &b.c), KC_ERR_CONFLICT);

	/* Nothing half-written: a fresh record still goes in. */
	tcsr_init(&b, 0, 4, 1, 1);
	assert_int_equal(store_csr_insert(fx->s, &b.c), 0);
}

/* READY -> DELETING, refused while a custom hostname uses the record. */
static void
test_deleting(void **state)
{
	struct fixture		*fx = *state;
	struct store_csr	*got = NULL, **v = NULL;
	struct tcsr		 a, c;
	sqlite3			*db;
	size_t			 n;

	tcsr_init(&a, 0, 1, 1, 2);
	insert_ready(fx->s, &a);
	tcsr_init(&c, 0, 2, 2, 1);
	assert_int_equal(store_csr_insert(fx->s, &c.c), 0);

	db = raw_open(fx->path);
	assert_int_equal(raw_add_hostname(db, "11111111-1111-4111-8111-111111111111", ZONE_A,
	    a.c.id), SQLITE_DONE);
	/* A hostname of another zone cannot use this zone's CSR. */
	assert_int_equal(raw_add_hostname(db, "22222222-2222-4222-8222-222222222222", ZONE_B,
	    a.c.id), SQLITE_CONSTRAINT);

	assert_int_equal(store_csr_set_deleting(fx->s, ZONE_B, a.c.id), KC_ERR_NOT_FOUND);
	assert_int_equal(store_csr_set_deleting(fx->s, ZONE_A, a.c.id), KC_ERR_CONFLICT);
	assert_int_equal(store_csr_set_deleting(fx->s, ZONE_A, c.c.id), KC_ERR_NOT_FOUND);
	assert_int_equal(store_csr_set_deleting(fx->s, ZONE_A,
	    "00000000-0000-4000-8000-000000000000"), KC_ERR_NOT_FOUND);
	/* Refused and unchanged. */
	assert_int_equal(store_csr_get(fx->s, ZONE_A, a.c.id, &got), 0);
	store_csr_free(got);
	got = NULL;
	/* Removal is refused too while referenced. */
	assert_int_equal(store_csr_remove(fx->s, a.c.id), KC_ERR_CONFLICT);

	assert_int_equal(sqlite3_exec(db, "DELETE FROM custom_hostnames", NULL, NULL, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);

	assert_int_equal(store_csr_set_deleting(fx->s, ZONE_A, a.c.id), 0);
	assert_int_equal(store_csr_set_deleting(fx->s, ZONE_A, a.c.id), KC_ERR_NOT_FOUND);
	assert_int_equal(store_csr_get(fx->s, ZONE_A, a.c.id, &got), KC_ERR_NOT_FOUND);
	assert_null(got);

	assert_int_equal(store_csr_unfinished(fx->s, &v, &n), 0);
	assert_int_equal(n, 2);
	store_csr_free_array(v, n);

	assert_int_equal(store_csr_remove(fx->s, a.c.id), 0);
	assert_int_equal(store_csr_remove(fx->s, a.c.id), KC_ERR_NOT_FOUND);
	assert_int_equal(store_csr_remove(fx->s, c.c.id), 0);
	assert_int_equal(store_csr_unfinished(fx->s, &v, &n), 0);
	assert_int_equal(n, 0);
	assert_null(v);
}

/* Start-up reconciliation sees CREATING and DELETING records of every zone. */
static void
test_unfinished_and_key_ids(void **state)
{
	struct fixture		*fx = *state;
	struct store_csr	**v = NULL;
	struct tcsr		 creating, deleting, ready;
	uint8_t			*ids = NULL;
	const uint8_t		*id;
	uint64_t		 count;
	size_t			 n, i;
	int			 seen = 0;

	tcsr_init(&creating, 0, 1, 10, 1);
	assert_int_equal(store_csr_insert(fx->s, &creating.c), 0);
	tcsr_init(&deleting, 1, 2, 20, 2);
	insert_ready(fx->s, &deleting);
	assert_int_equal(store_csr_set_deleting(fx->s, ZONE_B, deleting.c.id), 0);
	tcsr_init(&ready, 2, 3, 30, 1);
	insert_ready(fx->s, &ready);

	assert_int_equal(store_csr_unfinished(fx->s, &v, &n), 0);
	assert_int_equal(n, 2);
	assert_same_csr(&creating.c, v[0]);
	assert_int_equal(v[0]->state, STORE_CSR_CREATING);
	assert_null(v[0]->pubkey_der);
	assert_int_equal(v[0]->pubkey_len, 0);
	assert_null(v[0]->csr_pem);
	assert_same_csr(&deleting.c, v[1]);
	assert_int_equal(v[1]->state, STORE_CSR_DELETING);
	assert_int_equal(v[1]->pubkey_len, sizeof(test_pubkey));
	assert_string_equal(v[1]->csr_pem, test_pem);
	store_csr_free_array(v, n);

	assert_int_equal(store_csr_key_ids(fx->s, &ids, &n), 0);
	assert_int_equal(n, 3);
	for (i = 0; i < n; i++) {
		id = ids + i * STORE_KEY_ID_LEN;
		if (memcmp(id, creating.c.key_id, STORE_KEY_ID_LEN) == 0)
			seen |= 1;
		if (memcmp(id, deleting.c.key_id, STORE_KEY_ID_LEN) == 0)
			seen |= 2;
		if (memcmp(id, ready.c.key_id, STORE_KEY_ID_LEN) == 0)
			seen |= 4;
	}
	assert_int_equal(seen, 7);
	free(ids);

	assert_int_equal(store_csr_count(fx->s, &count), 0);
	assert_int_equal(count, 1);
}

/* Closing and opening again keeps the records; migrations run once. */
static void
test_persistence(void **state)
{
	struct fixture		*fx = *state;
	struct store		*second = NULL;
	struct store_csr	*got = NULL;
	struct tcsr		 a;
	struct stat		 sb;
	sqlite3			*db;
	sqlite3_stmt		*st;
	char			*cause = NULL;

	tcsr_init(&a, 0, 1, 1, 3);
	insert_ready(fx->s, &a);
	store_close(fx->s);
	fx->s = NULL;

	assert_int_equal(store_open(fx->path, &fx->s, &cause), 0);
	assert_null(cause);
	/* A second handle on the same file, as each worker thread has. */
	assert_int_equal(store_open(fx->path, &second, &cause), 0);
	assert_int_equal(store_csr_get(second, ZONE_A, a.c.id, &got), 0);
	assert_same_csr(&a.c, got);
	store_csr_free(got);
	store_close(second);
	store_close(NULL);

	db = raw_open(fx->path);
	assert_int_equal(raw_int(db, "PRAGMA user_version"), SCHEMA_VERSION);
	assert_int_equal(raw_int(db, "SELECT count(*) FROM csrs"), 1);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);

	assert_int_equal(stat(fx->path, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0600);
}

struct opener {
	const char	*path;
	int		 r;
};

static void *
opener_run(void *arg)
{
	struct opener	*o = arg;
	struct store	*s = NULL;
	char		*cause = NULL;

	if ((o->r = store_open(o->path, &s, &cause)) == 0)
		o->r = store_ping(s);
	else
		fprintf(stderr, "store_open: %s\n", cause);
	free(cause);
	store_close(s);
	return NULL;
}

/* Worker threads opening a new file at once: one applies the migrations, all succeed. */
static void
test_concurrent_open(void **state)
{
	struct fixture	*fx = *state;
	struct opener	 o[8];
	pthread_t	 th[8];
	sqlite3		*db;
	char		 path[PATH_MAX + 64];
	size_t		 i, started;

	snprintf(path, sizeof(path), "%s/fresh.db", fx->dir);
	for (i = 0; i < 8; i++) {
		o[i].path = path;
		o[i].r = -1;
		if (pthread_create(&th[i], NULL, opener_run, &o[i]) != 0)
			break;
	}
	/* Join them all before any assertion can leave this frame. */
	for (started = i, i = 0; i < started; i++)
		(void)pthread_join(th[i], NULL);
	assert_int_equal(started, 8);
	for (i = 0; i < 8; i++)
		assert_int_equal(o[i].r, 0);
	db = raw_open(path);
	assert_int_equal(raw_int(db, "PRAGMA user_version"), SCHEMA_VERSION);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
	remove_db(path);
}

/*
 * Switching a file to WAL while another connection writes to it in rollback mode: SQLite
 * answers SQLITE_BUSY without waiting, so store_open() must retry by itself.
 */
static void
test_open_while_locked(void **state)
{
	struct fixture	*fx = *state;
	struct opener	 o;
	pthread_t	 th;
	sqlite3		*db;
	char		 path[PATH_MAX + 64];
	int		 started;

	snprintf(path, sizeof(path), "%s/legacy.db", fx->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE t (a); BEGIN IMMEDIATE; "
	    "INSERT INTO t VALUES (1)", NULL, NULL, NULL), SQLITE_OK);
	o.path = path;
	o.r = -1;
	started = pthread_create(&th, NULL, opener_run, &o) == 0;
	usleep(300 * 1000);
	assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	if (started)
		(void)pthread_join(th, NULL);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
	remove_db(path);
	assert_true(started);
	assert_int_equal(o.r, 0);
}

/* A file from a newer program is refused, and so is a path that cannot be opened. */
static void
test_open_refused(void **state)
{
	struct fixture	*fx = *state;
	struct store	*s2 = NULL;
	sqlite3		*db;
	char		*cause = NULL, sql[64];

	db = raw_open(fx->path);
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", SCHEMA_VERSION + 1);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
	assert_int_equal(store_open(fx->path, &s2, &cause), KC_ERR_STORE);
	assert_null(s2);
	assert_non_null(cause);
	assert_non_null(strstr(cause, "newer"));
	free(cause);
	cause = NULL;

	assert_int_equal(store_open("/nonexistent-dir/keycustody.db", &s2, &cause),
	    KC_ERR_STORE);
	assert_null(s2);
	assert_non_null(cause);
	free(cause);
}

/* A writer holding the lock past the busy timeout gives "unavailable"; readers go on. */
static void
test_busy(void **state)
{
	struct fixture		*fx = *state;
	struct store_csr	*got = NULL;
	struct tcsr		 a;
	sqlite3			*db;

	tcsr_init(&a, 0, 1, 1, 1);
	insert_ready(fx->s, &a);
	db = raw_open(fx->path);
	assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);

	assert_int_equal(store_csr_get(fx->s, ZONE_A, a.c.id, &got), 0);
	store_csr_free(got);
	assert_int_equal(store_csr_set_deleting(fx->s, ZONE_A, a.c.id), KC_ERR_UNAVAILABLE);

	assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
	/* The handle is usable again. */
	assert_int_equal(store_csr_set_deleting(fx->s, ZONE_A, a.c.id), 0);
}

/*
 * Custom hostname n using csr: scrambled ids (id order differs from insertion order), one
 * or two hosts. name NULL gives "hN.example.net".
 */
static void
thost_init(struct thost *t, const struct tcsr *csr, unsigned int n, const char *name,
    int64_t created_at_us)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->h.id, sizeof(t->h.id), "%08x-1111-4000-8000-%012x",
	    (n * 2246822519u) & 0xffffffffu, n);
	snprintf(t->h.ssl_id, sizeof(t->h.ssl_id), "%08x-2222-4000-8000-%012x",
	    (n * 3266489917u) & 0xffffffffu, n);
	memcpy(t->h.zone_id, csr->c.zone_id, sizeof(t->h.zone_id));
	memcpy(t->h.csr_id, csr->c.id, sizeof(t->h.csr_id));
	if (name != NULL)
		snprintf(t->hostname, sizeof(t->hostname), "%s", name);
	else
		snprintf(t->hostname, sizeof(t->hostname), "h%u.example.net", n);
	snprintf(t->bundle, sizeof(t->bundle), "ubiquitous");
	snprintf(t->pem, sizeof(t->pem),
	    "-----BEGIN CERTIFICATE-----\nLEAF%u\n-----END CERTIFICATE-----\n", n);
	snprintf(t->issuer, sizeof(t->issuer), "TestCAInc");
	snprintf(t->serial, sizeof(t->serial), "12345678901234567890%u", n);
	snprintf(t->sig, sizeof(t->sig), "ECDSAWithSHA256");
	snprintf(t->host[0], sizeof(t->host[0]), "%s", t->hostname);
	snprintf(t->host[1], sizeof(t->host[1]), "*.w%u.example.net", n);
	t->hosts[0] = t->host[0];
	t->hosts[1] = t->host[1];
	t->h.hostname = t->hostname;
	t->h.created_at_us = created_at_us;
	t->h.bundle_method = t->bundle;
	t->h.certificate_pem = t->pem;
	/* The upload differs from the chain built from it (the intermediates added). */
	snprintf(t->upload, sizeof(t->upload),
	    "-----BEGIN CERTIFICATE-----\nUPLOAD%u\n-----END CERTIFICATE-----\n", n);
	t->h.certificate_uploaded = t->upload;
	t->h.issuer = t->issuer;
	t->h.serial_number = t->serial;
	t->h.signature_alg = t->sig;
	t->h.uploaded_on_us = created_at_us + 5;
	t->h.not_before_us = 1700000000000000LL + n;
	t->h.expires_on_us = 1800000000000000LL + n;
	t->h.hosts = t->hosts;
	t->h.nhosts = 1 + n % 2;
}

static void
assert_same_hostname(const struct store_hostname *a, const struct store_hostname *b)
{
	size_t	 i;

	assert_string_equal(a->id, b->id);
	assert_string_equal(a->zone_id, b->zone_id);
	assert_string_equal(a->hostname, b->hostname);
	assert_string_equal(a->csr_id, b->csr_id);
	assert_int_equal(a->created_at_us, b->created_at_us);
	assert_string_equal(a->ssl_id, b->ssl_id);
	assert_string_equal(a->bundle_method, b->bundle_method);
	assert_string_equal(a->certificate_pem, b->certificate_pem);
	assert_string_equal(a->certificate_uploaded, b->certificate_uploaded);
	assert_string_equal(a->issuer, b->issuer);
	assert_string_equal(a->serial_number, b->serial_number);
	assert_string_equal(a->signature_alg, b->signature_alg);
	assert_int_equal(a->uploaded_on_us, b->uploaded_on_us);
	assert_int_equal(a->not_before_us, b->not_before_us);
	assert_int_equal(a->expires_on_us, b->expires_on_us);
	assert_int_equal(a->nhosts, b->nhosts);
	for (i = 0; i < a->nhosts; i++)
		assert_string_equal(a->hosts[i], b->hosts[i]);
}

/* Every field of a custom hostname goes in and comes back, in its zone only. */
static void
test_hostname_roundtrip(void **state)
{
	struct fixture		*fx = *state;
	struct store_hostname	*got = NULL;
	struct tcsr		 a;
	struct thost		 one, two;

	tcsr_init(&a, 0, 1, 1, 1);
	insert_ready(fx->s, &a);
	thost_init(&one, &a, 1, "app.example.net", 1700000000000001LL);
	thost_init(&two, &a, 2, NULL, 1700000000000002LL);
	assert_int_equal(one.h.nhosts, 2);
	assert_int_equal(two.h.nhosts, 1);
	assert_int_equal(store_hostname_insert(fx->s, &one.h), 0);
	assert_int_equal(store_hostname_insert(fx->s, &two.h), 0);

	assert_int_equal(store_hostname_get(fx->s, ZONE_A, one.h.id, &got), 0);
	assert_non_null(got);
	assert_same_hostname(&one.h, got);
	store_hostname_free(got);
	assert_int_equal(store_hostname_get(fx->s, ZONE_A, two.h.id, &got), 0);
	assert_same_hostname(&two.h, got);
	store_hostname_free(got);
	got = NULL;

	/* Another zone's, or an unknown, id is not found. */
	assert_int_equal(store_hostname_get(fx->s, ZONE_B, one.h.id, &got), KC_ERR_NOT_FOUND);
	assert_null(got);
	assert_int_equal(store_hostname_get(fx->s, ZONE_A,
	    "00000000-0000-4000-8000-000000000000", &got), KC_ERR_NOT_FOUND);
	assert_null(got);

	store_hostname_free(NULL);
	store_hostname_free_array(NULL, 0);
}

/* Migration 6: the optional fields go in, come back and are updated; NULL stays NULL. */
static void
test_hostname_optional_fields(void **state)
{
	struct fixture		*fx = *state;
	struct store_hostname	*got = NULL;
	struct tcsr		 a;
	struct thost		 one;

	tcsr_init(&a, 0, 1, 1, 1);
	insert_ready(fx->s, &a);
	thost_init(&one, &a, 1, "app.example.net", 1700000000000001LL);
	one.h.ssl_wildcard = -1;
	assert_int_equal(store_hostname_insert(fx->s, &one.h), 0);
	assert_int_equal(store_hostname_get(fx->s, ZONE_A, one.h.id, &got), 0);
	assert_null(got->custom_metadata);
	assert_null(got->custom_origin_server);
	assert_null(got->custom_origin_sni);
	assert_null(got->ssl_method);
	assert_null(got->ssl_type);
	assert_null(got->ssl_settings);
	assert_int_equal(got->ssl_wildcard, -1);

	got->custom_metadata = strdup("{\"a\":\"b\"}");
	got->custom_origin_server = strdup("origin.example.net");
	got->custom_origin_sni = strdup("sni.example.net");
	got->ssl_method = strdup("txt");
	got->ssl_type = strdup("dv");
	got->ssl_settings = strdup("{\"http2\":\"on\"}");
	got->ssl_wildcard = 1;
	assert_int_equal(store_hostname_update(fx->s, got), 0);
	store_hostname_free(got);
	got = NULL;
	assert_int_equal(store_hostname_get(fx->s, ZONE_A, one.h.id, &got), 0);
	assert_string_equal(got->custom_metadata, "{\"a\":\"b\"}");
	assert_string_equal(got->custom_origin_server, "origin.example.net");
	assert_string_equal(got->custom_origin_sni, "sni.example.net");
	assert_string_equal(got->ssl_method, "txt");
	assert_string_equal(got->ssl_type, "dv");
	assert_string_equal(got->ssl_settings, "{\"http2\":\"on\"}");
	assert_int_equal(got->ssl_wildcard, 1);
	/* The schema refuses what the daemon never writes. */
	free(got->ssl_method);
	got->ssl_method = strdup("pigeon");
	assert_int_equal(store_hostname_update(fx->s, got), KC_ERR_STORE);
	store_hostname_free(got);
}

/* store_json_check(): Cloudflare's codes for custom_metadata and ssl.settings. */
static void
test_json_check(void **state)
{
	struct fixture		*fx = *state;
	static const struct {
		enum store_json_kind	 kind;
		const char		*text;
		unsigned int		 code;
	} t[] = {
		{ STORE_JSON_METADATA, "{}", 0 },
		{ STORE_JSON_METADATA, "{\"a\":\"b\",\"c\":\"\"}", 0 },
		{ STORE_JSON_METADATA, "{\"a\":1}", 1401 },
		{ STORE_JSON_METADATA, "[]", 1401 },
		{ STORE_JSON_METADATA, "{", 1401 },
		{ STORE_JSON_SETTINGS, "{\"http2\":\"on\",\"tls_1_3\":\"off\"}", 0 },
		{ STORE_JSON_SETTINGS, "{\"min_tls_version\":\"1.2\",\"ciphers\":[\"x\"]}", 0 },
		{ STORE_JSON_SETTINGS, "{\"early_hints\":\"on\"}", 0 },
		{ STORE_JSON_SETTINGS, "{\"colour\":\"on\"}", 1434 },
		{ STORE_JSON_SETTINGS, "{\"http2\":\"yes\"}", 1422 },
		{ STORE_JSON_SETTINGS, "{\"tls_1_3\":true}", 1424 },
		{ STORE_JSON_SETTINGS, "{\"min_tls_version\":\"1.4\"}", 1425 },
		{ STORE_JSON_SETTINGS, "{\"early_hints\":null}", 1434 },
		{ STORE_JSON_SETTINGS, "{\"ciphers\":[1]}", 1442 },
		{ STORE_JSON_SETTINGS, "{\"min_tls_version\":\"1.3\",\"ciphers\":[\"x\"]}", 1443 },
		{ STORE_JSON_SETTINGS, "\"on\"", 1434 },
	};
	char			 big[STORE_JSON_MAX + 16];
	unsigned int		 code, i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		code = 99;
		assert_int_equal(store_json_check(fx->s, t[i].kind, t[i].text, &code), 0);
		if (code != t[i].code)
			fail_msg("%s: %u, not %u", t[i].text, code, t[i].code);
	}
	memset(big, 'x', sizeof(big));
	memcpy(big, "{\"a\":\"", 6);
	memcpy(big + sizeof(big) - 3, "\"}", 3);
	assert_int_equal(store_json_check(fx->s, STORE_JSON_METADATA, big, &code), 0);
	assert_int_equal(code, 1401);
}

/* The hostname is unique in its zone only; ids and ssl ids are unique everywhere. */
static void
test_hostname_conflict(void **state)
{
	struct fixture		*fx = *state;
	struct store_hostname	**v = NULL;
	struct tcsr		 a, b;
	struct thost		 one, t;
	uint64_t		 total;
	size_t			 n;

	tcsr_init(&a, 0, 1, 1, 1);
	insert_ready(fx->s, &a);
	tcsr_init(&b, 1, 2, 1, 1);
	insert_ready(fx->s, &b);
	thost_init(&one, &a, 1, "app.example.net", 10);
	assert_int_equal(store_hostname_insert(fx->s, &one.h), 0);

	/* Same hostname, same zone, new ids. */
	thost_init(&t, &a, 2, "app.example.net", 11);
	assert_int_equal(store_hostname_insert(fx->s, &t.h), KC_ERR_CONFLICT);
	/* Same hostname in another zone is another hostname. */
	thost_init(&t, &b, 3, "app.example.net", 12);
	assert_int_equal(store_hostname_insert(fx->s, &t.h), 0);
	/* Same id, or same ssl id, with a new hostname. */
	thost_init(&t, &a, 4, NULL, 13);
	memcpy(t.h.id, one.h.id, sizeof(t.h.id));
	assert_int_equal(store_hostname_insert(fx->s, &t.h), KC_ERR_CONFLICT);
	thost_init(&t, &a, 5, NULL, 14);
	memcpy(t.h.ssl_id, one.h.ssl_id, sizeof(t.h.ssl_id));
	assert_int_equal(store_hostname_insert(fx->s, &t.h), KC_ERR_CONFLICT);

	/* Nothing half-written, and the handle still writes. */
	assert_int_equal(store_hostname_list(fx->s, ZONE_A, NULL, NULL, 1, 50, false, &v, &n,
	    &total), 0);
	assert_int_equal(n, 1);
	assert_int_equal(total, 1);
	assert_same_hostname(&one.h, v[0]);
	store_hostname_free_array(v, n);
	thost_init(&t, &a, 6, NULL, 15);
	assert_int_equal(store_hostname_insert(fx->s, &t.h), 0);
}

/* A hostname needs a READY CSR of its own zone, on insert and on update. */
static void
test_hostname_csr_checks(void **state)
{
	struct fixture		*fx = *state;
	struct store_hostname	*got = NULL;
	struct tcsr		 a, other, creating, deleting;
	struct thost		 t, ok;

	tcsr_init(&a, 0, 1, 1, 1);
	insert_ready(fx->s, &a);
	tcsr_init(&other, 1, 2, 1, 1);
	insert_ready(fx->s, &other);
	tcsr_init(&creating, 0, 3, 1, 1);
	assert_int_equal(store_csr_insert(fx->s, &creating.c), 0);
	tcsr_init(&deleting, 0, 4, 1, 1);
	insert_ready(fx->s, &deleting);
	assert_int_equal(store_csr_set_deleting(fx->s, ZONE_A, deleting.c.id), 0);

	/* Another zone's CSR, named from this zone. */
	thost_init(&t, &a, 1, NULL, 1);
	memcpy(t.h.csr_id, other.c.id, sizeof(t.h.csr_id));
	assert_int_equal(store_hostname_insert(fx->s, &t.h), KC_ERR_NOT_FOUND);
	memcpy(t.h.csr_id, creating.c.id, sizeof(t.h.csr_id));
	assert_int_equal(store_hostname_insert(fx->s, &t.h), KC_ERR_NOT_FOUND);
	memcpy(t.h.csr_id, deleting.c.id, sizeof(t.h.csr_id));
	assert_int_equal(store_hostname_insert(fx->s, &t.h), KC_ERR_NOT_FOUND);
	snprintf(t.h.csr_id, sizeof(t.h.csr_id), "00000000-0000-4000-8000-000000000000");
	assert_int_equal(store_hostname_insert(fx->s, &t.h), KC_ERR_NOT_FOUND);
	assert_int_equal(store_hostname_get(fx->s, ZONE_A, t.h.id, &got), KC_ERR_NOT_FOUND);

	/* The same checks when an update moves a hostname to another CSR. */
	thost_init(&ok, &a, 2, NULL, 2);
	assert_int_equal(store_hostname_insert(fx->s, &ok.h), 0);
	memcpy(ok.h.csr_id, other.c.id, sizeof(ok.h.csr_id));
	assert_int_equal(store_hostname_update(fx->s, &ok.h), KC_ERR_NOT_FOUND);
	memcpy(ok.h.csr_id, creating.c.id, sizeof(ok.h.csr_id));
	assert_int_equal(store_hostname_update(fx->s, &ok.h), KC_ERR_NOT_FOUND);
	memcpy(ok.h.csr_id, deleting.c.id, sizeof(ok.h.csr_id));
	assert_int_equal(store_hostname_update(fx->s, &ok.h), KC_ERR_NOT_FOUND);
	assert_int_equal(store_hostname_get(fx->s, ZONE_A, ok.h.id, &got), 0);
	assert_string_equal(got->csr_id, a.c.id);
	store_hostname_free(got);

	/* Misuse: no hosts, a newline in a host, a missing field. */
	thost_init(&t, &a, 3, NULL, 3);
	t.h.nhosts = 0;
	assert_int_equal(store_hostname_insert(fx->s, &t.h), KC_ERR_INVALID);
	thost_init(&t, &a, 3, NULL, 3);
	snprintf(t.host[0], sizeof(t.host[0]), "a.example.net\nb.example.net");
	assert_int_equal(store_hostname_insert(fx->s, &t.h), KC_ERR_INVALID);
	assert_int_equal(store_hostname_update(fx->s, &t.h), KC_ERR_INVALID);
	thost_init(&t, &a, 3, NULL, 3);
	t.h.issuer = NULL;
	assert_int_equal(store_hostname_insert(fx->s, &t.h), KC_ERR_INVALID);
	thost_init(&t, &a, 3, NULL, 3);
	assert_int_equal(store_hostname_insert(fx->s, &t.h), 0);
}

/* An update replaces the certificate and keeps the hostname's identity. */
static void
test_hostname_update(void **state)
{
	struct fixture		*fx = *state;
	struct store_hostname	*got = NULL;
	struct tcsr		 a, b;
	struct thost		 one, two, renew;

	tcsr_init(&a, 0, 1, 1, 1);
	insert_ready(fx->s, &a);
	tcsr_init(&b, 0, 2, 2, 1);
	insert_ready(fx->s, &b);
	thost_init(&one, &a, 1, "app.example.net", 100);
	assert_int_equal(store_hostname_insert(fx->s, &one.h), 0);
	thost_init(&two, &a, 2, "api.example.net", 200);
	assert_int_equal(store_hostname_insert(fx->s, &two.h), 0);

	/* Another certificate, for b's key; the hostname and created_at passed are ignored. */
	thost_init(&renew, &b, 7, "ignored.example.net", 999);
	memcpy(renew.h.id, one.h.id, sizeof(renew.h.id));
	snprintf(renew.bundle, sizeof(renew.bundle), "force");
	renew.h.nhosts = 2;
	assert_int_equal(store_hostname_update(fx->s, &renew.h), 0);
	assert_int_equal(store_hostname_get(fx->s, ZONE_A, one.h.id, &got), 0);
	assert_string_equal(got->hostname, "app.example.net");
	assert_int_equal(got->created_at_us, 100);
	renew.h.hostname = one.h.hostname;
	renew.h.created_at_us = one.h.created_at_us;
	assert_same_hostname(&renew.h, got);
	store_hostname_free(got);
	got = NULL;
	/* The other hostname is untouched. */
	assert_int_equal(store_hostname_get(fx->s, ZONE_A, two.h.id, &got), 0);
	assert_same_hostname(&two.h, got);
	store_hostname_free(got);
	got = NULL;

	/* Renewal of the same certificate fields: still one row changed. */
	assert_int_equal(store_hostname_update(fx->s, &renew.h), 0);

	/* Another hostname's ssl id. */
	memcpy(renew.h.ssl_id, two.h.ssl_id, sizeof(renew.h.ssl_id));
	assert_int_equal(store_hostname_update(fx->s, &renew.h), KC_ERR_CONFLICT);

	/* Unknown id, or the id named in another zone. */
	thost_init(&renew, &a, 8, NULL, 1);
	assert_int_equal(store_hostname_update(fx->s, &renew.h), KC_ERR_NOT_FOUND);
	thost_init(&renew, &a, 9, NULL, 1);
	memcpy(renew.h.id, one.h.id, sizeof(renew.h.id));
	memcpy(renew.h.zone_id, ZONE_B, sizeof(renew.h.zone_id));
	assert_int_equal(store_hostname_update(fx->s, &renew.h), KC_ERR_NOT_FOUND);
	assert_int_equal(store_hostname_get(fx->s, ZONE_A, one.h.id, &got), 0);
	assert_string_equal(got->csr_id, b.c.id);
	assert_string_equal(got->bundle_method, "force");
	store_hostname_free(got);
}

static int
cmp_host(const void *x, const void *y)
{
	const struct store_hostname	*a = *(const struct store_hostname *const *)x;
	const struct store_hostname	*b = *(const struct store_hostname *const *)y;

	if (a->created_at_us != b->created_at_us)
		return a->created_at_us < b->created_at_us ? -1 : 1;
	return strcmp(a->id, b->id);
}

/* Walk a list in pages of 4 and compare with the expected order. */
static void
check_host_pages(struct store *s, const char *hostname, const char *csr_id,
    struct store_hostname **order, size_t norder)
{
	struct store_hostname	**v = NULL;
	uint64_t		  total;
	size_t			  n, i, k;
	unsigned int		  page;
	int			  desc;

	for (desc = 0; desc <= 1; desc++) {
		k = 0;
		for (page = 1; page <= norder / 4 + 1; page++) {
			assert_int_equal(store_hostname_list(s, ZONE_A, hostname, csr_id, page,
			    4, desc, &v, &n, &total), 0);
			assert_int_equal(total, norder);
			assert_int_equal(n, norder - k < 4 ? norder - k : 4);
			for (i = 0; i < n; i++, k++)
				assert_same_hostname(order[desc ? norder - 1 - k : k], v[i]);
			store_hostname_free_array(v, n);
			v = NULL;
		}
		assert_int_equal(k, norder);
	}
}

/* The zone's hostnames in pages, both directions, with each filter. */
static void
test_hostname_list(void **state)
{
	struct fixture		*fx = *state;
	struct store_hostname	**v = NULL, *order[NHOSTS], *by_csr[NHOSTS], *one[1];
	struct tcsr		 a, b, c;
	struct thost		 t[NHOSTS], other[3];
	uint64_t		 total;
	size_t			 n, i, ncsr = 0;

	tcsr_init(&a, 0, 1, 1, 1);
	insert_ready(fx->s, &a);
	tcsr_init(&b, 0, 2, 1, 1);
	insert_ready(fx->s, &b);
	tcsr_init(&c, 1, 3, 1, 1);
	insert_ready(fx->s, &c);
	for (i = 0; i < NHOSTS; i++) {
		/* Groups of three share a timestamp; every third uses b. */
		thost_init(&t[i], i % 3 == 1 ? &b : &a, (unsigned int)i, NULL,
		    5000 + (int64_t)(i / 3));
		assert_int_equal(store_hostname_insert(fx->s, &t[i].h), 0);
		order[i] = &t[i].h;
	}
	/* Zone B: the same hostnames, which must not show up in zone A's lists. */
	for (i = 0; i < 3; i++) {
		thost_init(&other[i], &c, 100 + (unsigned int)i, t[i].hostname, 1);
		assert_int_equal(store_hostname_insert(fx->s, &other[i].h), 0);
	}
	qsort(order, NHOSTS, sizeof(order[0]), cmp_host);
	assert_true(strcmp(order[0]->id, t[0].h.id) != 0 ||
	    strcmp(order[1]->id, t[1].h.id) != 0 || strcmp(order[2]->id, t[2].h.id) != 0);
	for (i = 0; i < NHOSTS; i++)
		if (strcmp(order[i]->csr_id, b.c.id) == 0)
			by_csr[ncsr++] = order[i];
	assert_int_equal(ncsr, 4);

	check_host_pages(fx->s, NULL, NULL, order, NHOSTS);
	check_host_pages(fx->s, NULL, b.c.id, by_csr, ncsr);
	/* t[4] uses b: the hostname filter alone, and with its CSR. */
	one[0] = &t[4].h;
	check_host_pages(fx->s, t[4].hostname, NULL, one, 1);
	check_host_pages(fx->s, t[4].hostname, b.c.id, one, 1);

	/* Filters that match nothing: no rows, total 0. */
	assert_int_equal(store_hostname_list(fx->s, ZONE_A, t[4].hostname, a.c.id, 1, 4,
	    false, &v, &n, &total), 0);
	assert_int_equal(n, 0);
	assert_null(v);
	assert_int_equal(total, 0);
	assert_int_equal(store_hostname_list(fx->s, ZONE_A, "nowhere.example.net", NULL, 1, 4,
	    false, &v, &n, &total), 0);
	assert_int_equal(n, 0);
	assert_int_equal(total, 0);
	assert_int_equal(store_hostname_list(fx->s, ZONE_A, NULL, c.c.id, 1, 4, false, &v, &n,
	    &total), 0);
	assert_int_equal(n, 0);
	assert_int_equal(total, 0);
	/* Zone B sees its own only, filters included. */
	assert_int_equal(store_hostname_list(fx->s, ZONE_B, t[0].hostname, NULL, 1, 4, false,
	    &v, &n, &total), 0);
	assert_int_equal(n, 1);
	assert_int_equal(total, 1);
	assert_same_hostname(&other[0].h, v[0]);
	store_hostname_free_array(v, n);
	assert_int_equal(store_hostname_list(fx->s, ZONE_B, NULL, NULL, 1, 50, false, &v, &n,
	    &total), 0);
	assert_int_equal(n, 3);
	assert_int_equal(total, 3);
	store_hostname_free_array(v, n);
	assert_int_equal(store_hostname_list(fx->s, ZONE_C, NULL, NULL, 1, 50, true, &v, &n,
	    &total), 0);
	assert_int_equal(n, 0);
	assert_int_equal(total, 0);

	/* Past the end, and pages that would overflow: no rows, still the total. */
	assert_int_equal(store_hostname_list(fx->s, ZONE_A, NULL, NULL, 5, 4, false, &v, &n,
	    &total), 0);
	assert_int_equal(n, 0);
	assert_null(v);
	assert_int_equal(total, NHOSTS);
	assert_int_equal(store_hostname_list(fx->s, ZONE_A, NULL, b.c.id, UINT_MAX, UINT_MAX,
	    true, &v, &n, &total), 0);
	assert_int_equal(n, 0);
	assert_int_equal(total, ncsr);
	assert_int_equal(store_hostname_list(fx->s, ZONE_A, t[4].hostname, NULL, UINT_MAX, 50,
	    false, &v, &n, &total), 0);
	assert_int_equal(n, 0);
	assert_int_equal(total, 1);
	assert_int_equal(store_hostname_list(fx->s, ZONE_A, NULL, NULL, 1, UINT_MAX, false, &v,
	    &n, &total), 0);
	assert_int_equal(n, NHOSTS);
	store_hostname_free_array(v, n);
	assert_int_equal(store_hostname_list(fx->s, ZONE_A, NULL, NULL, 0, 5, false, &v, &n,
	    &total), KC_ERR_INVALID);
	assert_int_equal(store_hostname_list(fx->s, ZONE_A, NULL, NULL, 1, 0, false, &v, &n,
	    &total), KC_ERR_INVALID);
}

/* Issue 4: the CSR delete is refused until its last hostname is deleted. */
static void
test_hostname_delete(void **state)
{
	struct fixture		*fx = *state;
	struct store_hostname	*got = NULL;
	struct tcsr		 a;
	struct thost		 one, two;

	tcsr_init(&a, 0, 1, 1, 1);
	insert_ready(fx->s, &a);
	thost_init(&one, &a, 1, NULL, 1);
	assert_int_equal(store_hostname_insert(fx->s, &one.h), 0);
	thost_init(&two, &a, 2, NULL, 2);
	assert_int_equal(store_hostname_insert(fx->s, &two.h), 0);

	assert_int_equal(store_csr_set_deleting(fx->s, ZONE_A, a.c.id), KC_ERR_CONFLICT);
	/* Not this zone's, not known. */
	assert_int_equal(store_hostname_delete(fx->s, ZONE_B, one.h.id), KC_ERR_NOT_FOUND);
	assert_int_equal(store_hostname_delete(fx->s, ZONE_A,
	    "00000000-0000-4000-8000-000000000000"), KC_ERR_NOT_FOUND);

	assert_int_equal(store_hostname_delete(fx->s, ZONE_A, one.h.id), 0);
	assert_int_equal(store_hostname_delete(fx->s, ZONE_A, one.h.id), KC_ERR_NOT_FOUND);
	assert_int_equal(store_hostname_get(fx->s, ZONE_A, one.h.id, &got), KC_ERR_NOT_FOUND);
	assert_null(got);
	/* One hostname left: still in use. */
	assert_int_equal(store_csr_set_deleting(fx->s, ZONE_A, a.c.id), KC_ERR_CONFLICT);
	assert_int_equal(store_hostname_delete(fx->s, ZONE_A, two.h.id), 0);
	assert_int_equal(store_csr_set_deleting(fx->s, ZONE_A, a.c.id), 0);
	/* A DELETING CSR takes no new hostname. */
	thost_init(&one, &a, 3, NULL, 3);
	assert_int_equal(store_hostname_insert(fx->s, &one.h), KC_ERR_NOT_FOUND);
	assert_int_equal(store_csr_remove(fx->s, a.c.id), 0);
}

/*
 * The schema as version 1 shipped it (migration 1 of store.c, frozen here): a file written
 * by that program must open and migrate.
 */
static const char v1_schema[] =
	"CREATE TABLE csrs (\n"
	"  id                  TEXT PRIMARY KEY NOT NULL,\n"
	"  zone_id             TEXT NOT NULL,\n"
	"  created_at_us       INTEGER NOT NULL,\n"
	"  state               INTEGER NOT NULL CHECK (state IN (0, 1, 2)),\n"
	"  key_type            TEXT NOT NULL,\n"
	"  key_id              BLOB NOT NULL UNIQUE\n"
	"                      CHECK (typeof(key_id) = 'blob' AND length(key_id) = 16),\n"
	"  country             TEXT NOT NULL,\n"
	"  state_name          TEXT NOT NULL,\n"
	"  locality            TEXT NOT NULL,\n"
	"  organization        TEXT NOT NULL,\n"
	"  organizational_unit TEXT,\n"
	"  common_name         TEXT NOT NULL,\n"
	"  sans                TEXT,\n"
	"  name                TEXT,\n"
	"  description         TEXT,\n"
	"  pubkey              BLOB,\n"
	"  csr_pem             TEXT,\n"
	"  UNIQUE (zone_id, id),\n"
	"  CHECK (state <> 1 OR (pubkey IS NOT NULL AND csr_pem IS NOT NULL))\n"
	");\n"
	"CREATE INDEX csrs_zone_list ON csrs (zone_id, state, created_at_us, id);\n"
	"CREATE TABLE custom_hostnames (\n"
	"  id                  TEXT PRIMARY KEY NOT NULL,\n"
	"  zone_id             TEXT NOT NULL,\n"
	"  hostname            TEXT NOT NULL,\n"
	"  csr_id              TEXT NOT NULL,\n"
	"  created_at_us       INTEGER NOT NULL,\n"
	"  ssl_id              TEXT NOT NULL UNIQUE,\n"
	"  bundle_method       TEXT NOT NULL,\n"
	"  certificate_pem     TEXT NOT NULL,\n"
	"  issuer              TEXT NOT NULL,\n"
	"  serial_number       TEXT NOT NULL,\n"
	"  signature_alg       TEXT NOT NULL,\n"
	"  uploaded_on_us      INTEGER NOT NULL,\n"
	"  expires_on_us       INTEGER NOT NULL,\n"
	"  hosts               TEXT NOT NULL,\n"
	"  UNIQUE (zone_id, hostname),\n"
	"  FOREIGN KEY (zone_id, csr_id) REFERENCES csrs (zone_id, id)\n"
	");\n"
	"CREATE INDEX custom_hostnames_csr ON custom_hostnames (csr_id);\n"
	"CREATE INDEX custom_hostnames_list\n"
	"  ON custom_hostnames (zone_id, created_at_us, id);\n"
	"PRAGMA user_version = 1;\n";

/* A version-1 file with a CSR and a hostname in use migrates to 2 and keeps both. */
static void
test_migrate_v1(void **state)
{
	struct fixture		*fx = *state;
	struct store		*s = NULL;
	struct store_hostname	*got = NULL, **v = NULL;
	struct store_csr	*csr = NULL;
	struct tcsr		 a;
	struct thost		 t;
	sqlite3			*db;
	uint64_t		 total;
	size_t			 n;
	char			 path[PATH_MAX + 64], *cause = NULL, sql[256];

	snprintf(path, sizeof(path), "%s/v1.db", fx->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, v1_schema, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);

	/* The CSR through a store on the v1 file would migrate it: write it raw instead. */
	tcsr_init(&a, 0, 1, 1, 1);
	db = raw_open(path);
	assert_int_equal(sqlite3_exec(db,
	    "INSERT INTO csrs (id, zone_id, created_at_us, state, key_type, key_id, country, "
	    "state_name, locality, organization, common_name, sans, pubkey, csr_pem) "
	    "VALUES ('aaaaaaaa-0000-4000-8000-000000000001', '" ZONE_A "', 1, 1, 'p256v1', "
	    "x'000102030405060708090a0b0c0d0e0f', 'US', 'CA', 'SF', 'Example Inc', "
	    "'a.example.net', 'a.example.net', x'3059', 'PEM')", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(raw_add_hostname(db, "11111111-1111-4111-8111-111111111111", ZONE_A,
	    "aaaaaaaa-0000-4000-8000-000000000001"), SQLITE_DONE);
	assert_int_equal(raw_int(db, "PRAGMA user_version"), 1);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);

	assert_int_equal(store_open(path, &s, &cause), 0);
	assert_null(cause);

	/* The old row reads back, notBefore unknown (0). */
	assert_int_equal(store_hostname_get(s, ZONE_A, "11111111-1111-4111-8111-111111111111",
	    &got), 0);
	assert_string_equal(got->hostname, "app.example.net");
	assert_string_equal(got->csr_id, "aaaaaaaa-0000-4000-8000-000000000001");
	assert_int_equal(got->not_before_us, 0);
	assert_int_equal(got->expires_on_us, 2);
	assert_int_equal(got->nhosts, 1);
	assert_string_equal(got->hosts[0], "app.example.net");
	store_hostname_free(got);
	got = NULL;
	/* The old CSR is in use; new hostnames go in beside the old one. */
	assert_int_equal(store_csr_get(s, ZONE_A, "aaaaaaaa-0000-4000-8000-000000000001",
	    &csr), 0);
	store_csr_free(csr);
	assert_int_equal(store_csr_set_deleting(s, ZONE_A,
	    "aaaaaaaa-0000-4000-8000-000000000001"), KC_ERR_CONFLICT);
	snprintf(a.c.id, sizeof(a.c.id), "aaaaaaaa-0000-4000-8000-000000000001");
	thost_init(&t, &a, 5, NULL, 3);
	assert_int_equal(store_hostname_insert(s, &t.h), 0);
	assert_int_equal(store_hostname_list(s, ZONE_A, NULL, a.c.id, 1, 10, false, &v, &n,
	    &total), 0);
	assert_int_equal(n, 2);
	assert_int_equal(total, 2);
	assert_int_equal(v[0]->not_before_us, 0);
	assert_same_hostname(&t.h, v[1]);
	store_hostname_free_array(v, n);
	store_close(s);

	db = raw_open(path);
	assert_int_equal(raw_int(db, "PRAGMA user_version"), SCHEMA_VERSION);
	assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'index' "
	    "AND name = 'custom_hostnames_zone_csr'"), 1);
	assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'index' "
	    "AND name = 'custom_hostnames_csr'"), 0);
	assert_int_equal(raw_int(db, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
	/* Migration 8: a hostname stored before has its chain standing in for the upload. */
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM custom_hostnames WHERE "
	    "certificate_uploaded IS NULL OR (id <> '%s' AND "
	    "certificate_uploaded <> certificate_pem)", t.h.id);
	assert_int_equal(raw_int(db, sql), 0);
	assert_int_equal(raw_int(db, "SELECT count(*) FROM custom_hostnames"), 2);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
	remove_db(path);
}

/*
 * The per-zone totals (zone_counts, kept by triggers) follow every state change: a create
 * counts once READY, a delete as soon as it is DELETING; hostnames count from insert to
 * delete, in their own zone only.
 */
static void
test_zone_counts(void **state)
{
	struct fixture		*fx = *state;
	struct tcsr		 a[4], b;
	struct thost		 h1, h2, h3;
	sqlite3			*db;
	size_t			 i;

	assert_totals(fx->s, fx->path, ZONE_A, 0, 0);

	/* CREATING does not count; READY does. */
	for (i = 0; i < 4; i++) {
		tcsr_init(&a[i], 0, (unsigned int)i, (int64_t)i, 1);
		assert_int_equal(store_csr_insert(fx->s, &a[i].c), 0);
	}
	assert_totals(fx->s, fx->path, ZONE_A, 0, 0);
	for (i = 0; i < 4; i++) {
		assert_int_equal(store_csr_set_ready(fx->s, a[i].c.id, test_pubkey,
		    sizeof(test_pubkey), test_pem), 0);
		assert_totals(fx->s, fx->path, ZONE_A, i + 1, 0);
	}
	/* A refused transition changes nothing. */
	assert_int_equal(store_csr_set_ready(fx->s, a[0].c.id, test_pubkey,
	    sizeof(test_pubkey), test_pem), KC_ERR_NOT_FOUND);
	tcsr_init(&b, 1, 9, 9, 0);
	insert_ready(fx->s, &b);
	assert_totals(fx->s, fx->path, ZONE_A, 4, 0);
	assert_totals(fx->s, fx->path, ZONE_B, 1, 0);

	/* Hostnames: insert, update (no change), delete; zone B untouched. */
	thost_init(&h1, &a[0], 1, NULL, 1);
	thost_init(&h2, &a[1], 2, NULL, 2);
	thost_init(&h3, &b, 3, NULL, 3);
	assert_int_equal(store_hostname_insert(fx->s, &h1.h), 0);
	assert_int_equal(store_hostname_insert(fx->s, &h2.h), 0);
	assert_int_equal(store_hostname_insert(fx->s, &h3.h), 0);
	/* A refused insert (the hostname taken) changes nothing. */
	assert_int_equal(store_hostname_insert(fx->s, &h1.h), KC_ERR_CONFLICT);
	assert_totals(fx->s, fx->path, ZONE_A, 4, 2);
	assert_totals(fx->s, fx->path, ZONE_B, 1, 1);
	memcpy(h2.h.csr_id, a[2].c.id, sizeof(h2.h.csr_id));
	assert_int_equal(store_hostname_update(fx->s, &h2.h), 0);
	assert_totals(fx->s, fx->path, ZONE_A, 4, 2);
	assert_int_equal(store_hostname_delete(fx->s, ZONE_A, h1.h.id), 0);
	assert_int_equal(store_hostname_delete(fx->s, ZONE_A, h1.h.id), KC_ERR_NOT_FOUND);
	assert_totals(fx->s, fx->path, ZONE_A, 4, 1);
	assert_totals(fx->s, fx->path, ZONE_B, 1, 1);

	/* READY -> DELETING leaves the total at once; refused while in use. */
	assert_int_equal(store_csr_set_deleting(fx->s, ZONE_A, a[0].c.id), 0);
	assert_totals(fx->s, fx->path, ZONE_A, 3, 1);
	assert_int_equal(store_csr_set_deleting(fx->s, ZONE_A, a[2].c.id), KC_ERR_CONFLICT);
	assert_totals(fx->s, fx->path, ZONE_A, 3, 1);
	/* Removing a DELETING record: already out of the total. */
	assert_int_equal(store_csr_remove(fx->s, a[0].c.id), 0);
	assert_totals(fx->s, fx->path, ZONE_A, 3, 1);
	/* Removing a READY record (the undo after a deadline) and a CREATING one. */
	assert_int_equal(store_csr_remove(fx->s, a[3].c.id), 0);
	assert_totals(fx->s, fx->path, ZONE_A, 2, 1);
	tcsr_init(&a[3], 0, 3, 3, 1);
	assert_int_equal(store_csr_insert(fx->s, &a[3].c), 0);
	assert_int_equal(store_csr_remove(fx->s, a[3].c.id), 0);
	assert_totals(fx->s, fx->path, ZONE_A, 2, 1);

	/*
	 * Writes from outside the store (another SQLite client) keep the numbers too, the
	 * transitions the daemon never makes included: back to READY, and a zone change.
	 */
	db = raw_open(fx->path);
	assert_int_equal(sqlite3_exec(db, "BEGIN; "
	    "UPDATE csrs SET state = 2 WHERE state = 1 AND zone_id = '" ZONE_B "'; "
	    "UPDATE csrs SET state = 1 WHERE zone_id = '" ZONE_B "'; "
	    "UPDATE csrs SET zone_id = '" ZONE_C "' WHERE zone_id = '" ZONE_A "' AND "
	    "  id NOT IN (SELECT csr_id FROM custom_hostnames); "
	    "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(raw_count_mismatches(db), 0);
	/* A rolled back change leaves them as they were. */
	assert_int_equal(sqlite3_exec(db, "BEGIN; DELETE FROM custom_hostnames; "
	    "DELETE FROM csrs; ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
	assert_totals(fx->s, fx->path, ZONE_A, 1, 1);
	assert_totals(fx->s, fx->path, ZONE_B, 1, 1);
	assert_totals(fx->s, fx->path, ZONE_C, 1, 0);

	/* Every hostname and CSR gone: the totals are 0, rows or not. */
	assert_int_equal(store_hostname_delete(fx->s, ZONE_A, h2.h.id), 0);
	assert_int_equal(store_hostname_delete(fx->s, ZONE_B, h3.h.id), 0);
	assert_int_equal(store_csr_set_deleting(fx->s, ZONE_A, a[2].c.id), 0);
	assert_int_equal(store_csr_set_deleting(fx->s, ZONE_B, b.c.id), 0);
	assert_int_equal(store_csr_set_deleting(fx->s, ZONE_C, a[1].c.id), 0);
	assert_totals(fx->s, fx->path, ZONE_A, 0, 0);
	assert_totals(fx->s, fx->path, ZONE_B, 0, 0);
	assert_totals(fx->s, fx->path, ZONE_C, 0, 0);
}

/* Migration 2 as it shipped (frozen here), to make a version-2 file. */
static const char v2_migration[] =
	"ALTER TABLE custom_hostnames\n"
	"  ADD COLUMN not_before_us INTEGER NOT NULL DEFAULT 0;\n"
	"CREATE INDEX custom_hostnames_zone_csr\n"
	"  ON custom_hostnames (zone_id, csr_id, created_at_us, id);\n"
	"DROP INDEX custom_hostnames_csr;\n"
	"PRAGMA user_version = 2;\n";

/* A CSR written raw into a version-2 file: n of zone z, in state st. */
static void
raw_add_csr(sqlite3 *db, unsigned int z, unsigned int n, int st)
{
	char	 sql[1024];

	snprintf(sql, sizeof(sql),
	    "INSERT INTO csrs (id, zone_id, created_at_us, state, key_type, key_id, country, "
	    "state_name, locality, organization, common_name, sans, pubkey, csr_pem) "
	    "VALUES ('aaaaaaaa-0000-4000-8000-%012u', '%s', %u, %d, 'p256v1', "
	    "x'00%02x%02x030405060708090a0b0c0d0e0f', 'US', 'CA', 'SF', 'Example Inc', "
	    "'a.example.net', 'a.example.net', %s, %s)", z * 1000 + n,
	    z == 0 ? ZONE_A : z == 1 ? ZONE_B : ZONE_C, n, st, z, n,
	    st == 0 ? "NULL" : "x'3059'", st == 0 ? "NULL" : "'PEM'");
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
}

/*
 * A version-2 file with CSRs in every state and hostnames, in two zones, migrates to 3 with
 * the right totals, and they follow the changes made after.
 */
static void
test_migrate_v2(void **state)
{
	struct fixture		*fx = *state;
	struct store		*s = NULL;
	struct tcsr		 a;
	struct thost		 t;
	sqlite3			*db;
	char			 path[PATH_MAX + 64], *cause = NULL;

	snprintf(path, sizeof(path), "%s/v2.db", fx->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, v1_schema, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, v2_migration, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);

	/* Zone A: 3 READY, 1 CREATING, 1 DELETING, 2 hostnames; zone B: 2 READY, 1. */
	db = raw_open(path);
	raw_add_csr(db, 0, 1, 1);
	raw_add_csr(db, 0, 2, 1);
	raw_add_csr(db, 0, 3, 1);
	raw_add_csr(db, 0, 4, 0);
	raw_add_csr(db, 0, 5, 2);
	raw_add_csr(db, 1, 1, 1);
	raw_add_csr(db, 1, 2, 1);
	assert_int_equal(raw_add_hostname(db, "11111111-1111-4111-8111-111111111111", ZONE_A,
	    "aaaaaaaa-0000-4000-8000-000000000001"), SQLITE_DONE);
	assert_int_equal(sqlite3_exec(db,
	    "INSERT INTO custom_hostnames (id, zone_id, hostname, csr_id, created_at_us, "
	    "ssl_id, bundle_method, certificate_pem, issuer, serial_number, signature_alg, "
	    "uploaded_on_us, not_before_us, expires_on_us, hosts) VALUES "
	    "('22222222-2222-4222-8222-222222222222', '" ZONE_A "', 'b.example.net', "
	    "'aaaaaaaa-0000-4000-8000-000000000002', 2, '22222222-2222-4222-8222-222222222223', "
	    "'ubiquitous', 'PEM', 'TestCA', '2', 'ECDSAWithSHA256', 2, 1, 3, 'b.example.net'), "
	    "('33333333-3333-4333-8333-333333333333', '" ZONE_B "', 'c.example.net', "
	    "'aaaaaaaa-0000-4000-8000-000000001001', 3, '33333333-3333-4333-8333-333333333334', "
	    "'ubiquitous', 'PEM', 'TestCA', '3', 'ECDSAWithSHA256', 3, 1, 4, 'c.example.net')",
	    NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(raw_int(db, "PRAGMA user_version"), 2);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);

	assert_int_equal(store_open(path, &s, &cause), 0);
	assert_null(cause);
	db = raw_open(path);
	assert_int_equal(raw_int(db, "PRAGMA user_version"), SCHEMA_VERSION);
	assert_int_equal(raw_int(db, "SELECT csrs_ready FROM zone_counts WHERE zone_id = '"
	    ZONE_A "'"), 3);
	assert_int_equal(raw_int(db, "SELECT hostnames FROM zone_counts WHERE zone_id = '"
	    ZONE_A "'"), 2);
	assert_int_equal(raw_int(db, "SELECT count(*) FROM zone_counts"), 2);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
	assert_totals(s, path, ZONE_A, 3, 2);
	assert_totals(s, path, ZONE_B, 2, 1);
	assert_totals(s, path, ZONE_C, 0, 0);

	/* The daemon's transitions on the migrated file. */
	tcsr_init(&a, 0, 50, 50, 2);
	assert_int_equal(store_csr_insert(s, &a.c), 0);
	assert_totals(s, path, ZONE_A, 3, 2);
	assert_int_equal(store_csr_set_ready(s, a.c.id, test_pubkey, sizeof(test_pubkey),
	    test_pem), 0);
	assert_totals(s, path, ZONE_A, 4, 2);
	thost_init(&t, &a, 7, NULL, 7);
	assert_int_equal(store_hostname_insert(s, &t.h), 0);
	assert_totals(s, path, ZONE_A, 4, 3);
	assert_int_equal(store_hostname_delete(s, ZONE_A, t.h.id), 0);
	assert_int_equal(store_hostname_delete(s, ZONE_A,
	    "11111111-1111-4111-8111-111111111111"), 0);
	assert_totals(s, path, ZONE_A, 4, 1);
	assert_int_equal(store_csr_set_deleting(s, ZONE_A, a.c.id), 0);
	assert_int_equal(store_csr_set_deleting(s, ZONE_A,
	    "aaaaaaaa-0000-4000-8000-000000000001"), 0);
	assert_totals(s, path, ZONE_A, 2, 1);
	/* The old DELETING and CREATING records finish, as at start-up. */
	assert_int_equal(store_csr_remove(s, "aaaaaaaa-0000-4000-8000-000000000004"), 0);
	assert_int_equal(store_csr_remove(s, "aaaaaaaa-0000-4000-8000-000000000005"), 0);
	assert_int_equal(store_csr_remove(s, a.c.id), 0);
	assert_totals(s, path, ZONE_A, 2, 1);
	assert_totals(s, path, ZONE_B, 2, 1);
	store_close(s);

	/* Opened again: no second migration, the same totals. */
	assert_int_equal(store_open(path, &s, &cause), 0);
	assert_totals(s, path, ZONE_A, 2, 1);
	store_close(s);
	remove_db(path);
}

/* The hostnames of a store_hostname_find() page, space-joined, for one comparison. */
static void
find_names(struct store *s, const struct store_hostname_filter *f, char *buf, size_t len,
    uint64_t *total)
{
	struct store_hostname	**v = NULL;
	size_t			  n, i, off = 0;

	buf[0] = '\0';
	assert_int_equal(store_hostname_find(s, ZONE_A, f, 1, 50, &v, &n, total), 0);
	for (i = 0; i < n; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s", i > 0 ? " " : "",
		    v[i]->hostname);
	assert_int_equal(n, *total);
	store_hostname_free_array(v, n);
}

/*
 * store_hostname_find(): each filter alone and combined, LIKE's '%' and '_' taken
 * literally, the certificate status against now_us, its order, the custom origin server
 * (exact), and the refusal of a hostname in upper case.
 */
static void
test_hostname_find(void **state)
{
	struct fixture			*fx = *state;
	struct store_hostname_filter	 f;
	struct tcsr			 a, b;
	struct thost			 t[5];
	const char			*names[5] = { "shop.acme.example.net",
					    "*.shop.acme.example.net", "ab.example.net",
					    "a_b.example.net", "a%b.example.net" };
	char				 got[512];
	uint64_t			 total;
	size_t				 i;

	tcsr_init(&a, 0, 1, 1, 1);
	insert_ready(fx->s, &a);
	tcsr_init(&b, 1, 2, 1, 1);
	insert_ready(fx->s, &b);
	for (i = 0; i < 5; i++) {
		thost_init(&t[i], &a, (unsigned int)i, names[i], 100 + (int64_t)i);
		t[i].h.expires_on_us = i % 2 == 0 ? 1000 : 3000;	/* even: expired at 2000 */
		if (i == 1 || i == 2)
			t[i].h.custom_origin_server = (char *)"origin.example.net";
		assert_int_equal(store_hostname_insert(fx->s, &t[i].h), 0);
	}

	memset(&f, 0, sizeof(f));
	find_names(fx->s, &f, got, sizeof(got), &total);
	assert_string_equal(got, "shop.acme.example.net *.shop.acme.example.net "
	    "ab.example.net a_b.example.net a%b.example.net");
	f.id = t[2].h.id;
	find_names(fx->s, &f, got, sizeof(got), &total);
	assert_string_equal(got, "ab.example.net");
	f.id = b.c.id;		/* no such hostname */
	find_names(fx->s, &f, got, sizeof(got), &total);
	assert_string_equal(got, "");

	memset(&f, 0, sizeof(f));
	f.hostname = "a_b.example.net";
	find_names(fx->s, &f, got, sizeof(got), &total);
	assert_string_equal(got, "a_b.example.net");
	f.hostname = NULL;
	f.contains = "shop.acme";
	find_names(fx->s, &f, got, sizeof(got), &total);
	assert_string_equal(got, "shop.acme.example.net *.shop.acme.example.net");
	f.contains = "_";
	find_names(fx->s, &f, got, sizeof(got), &total);
	assert_string_equal(got, "a_b.example.net");
	f.contains = "%";
	find_names(fx->s, &f, got, sizeof(got), &total);
	assert_string_equal(got, "a%b.example.net");
	f.contains = NULL;
	f.prefix = "a_";
	find_names(fx->s, &f, got, sizeof(got), &total);
	assert_string_equal(got, "a_b.example.net");
	f.prefix = "shop.";
	find_names(fx->s, &f, got, sizeof(got), &total);
	assert_string_equal(got, "shop.acme.example.net");
	f.prefix = NULL;

	f.origin = "origin.example.net";
	find_names(fx->s, &f, got, sizeof(got), &total);
	assert_string_equal(got, "*.shop.acme.example.net ab.example.net");
	assert_int_equal(total, 2);
	f.prefix = "ab";
	find_names(fx->s, &f, got, sizeof(got), &total);
	assert_string_equal(got, "ab.example.net");
	f.prefix = NULL;
	f.origin = "example.net";	/* exact, not a suffix */
	find_names(fx->s, &f, got, sizeof(got), &total);
	assert_string_equal(got, "");
	f.origin = NULL;

	f.wildcard = STORE_MATCH_YES;
	find_names(fx->s, &f, got, sizeof(got), &total);
	assert_string_equal(got, "*.shop.acme.example.net");
	f.wildcard = STORE_MATCH_NO;
	f.contains = "shop";
	find_names(fx->s, &f, got, sizeof(got), &total);
	assert_string_equal(got, "shop.acme.example.net");
	f.contains = NULL;
	f.wildcard = STORE_MATCH_ANY;

	f.now_us = 2000;
	f.ssl_status = STORE_SSL_ACTIVE;
	find_names(fx->s, &f, got, sizeof(got), &total);
	assert_string_equal(got, "*.shop.acme.example.net a_b.example.net");
	f.ssl_status = STORE_SSL_EXPIRED;
	find_names(fx->s, &f, got, sizeof(got), &total);
	assert_string_equal(got, "shop.acme.example.net ab.example.net a%b.example.net");
	f.ssl_status = STORE_SSL_NONE;
	find_names(fx->s, &f, got, sizeof(got), &total);
	assert_string_equal(got, "");
	f.ssl_status = STORE_SSL_ANY;
	f.none = true;
	find_names(fx->s, &f, got, sizeof(got), &total);
	assert_string_equal(got, "");
	f.none = false;

	f.order = STORE_ORDER_SSL_STATUS;
	find_names(fx->s, &f, got, sizeof(got), &total);
	assert_string_equal(got, "*.shop.acme.example.net a_b.example.net "
	    "shop.acme.example.net ab.example.net a%b.example.net");
	f.descending = true;
	find_names(fx->s, &f, got, sizeof(got), &total);
	assert_string_equal(got, "a%b.example.net ab.example.net shop.acme.example.net "
	    "a_b.example.net *.shop.acme.example.net");

	/* Another zone's filter sees nothing of zone A; upper case is refused. */
	memset(&f, 0, sizeof(f));
	f.csr_id = b.c.id;
	find_names(fx->s, &f, got, sizeof(got), &total);
	assert_string_equal(got, "");
	thost_init(&t[0], &a, 9, "Upper.example.net", 1);
	assert_int_equal(store_hostname_insert(fx->s, &t[0].h), KC_ERR_INVALID);
}

/* A version-4 file with hostnames in upper case: migration 5 lowers them, or refuses. */
static void
test_migrate_v4_case(void **state)
{
	struct fixture		*fx = *state;
	struct store		*s = NULL;
	sqlite3			*db;
	char			 path[PATH_MAX + 64], *cause = NULL;
	int			 dup;

	for (dup = 0; dup <= 1; dup++) {
		snprintf(path, sizeof(path), "%s/v4-%d.db", fx->dir, dup);
		assert_int_equal(store_open(path, &s, &cause), 0);
		store_close(s);
		s = NULL;
		/*
		 * Back to version 4: no triggers, no columns of migrations 6 and 8, no
		 * table of migration 7, rows as an older daemon wrote them.
		 */
		db = raw_open(path);
		assert_int_equal(sqlite3_exec(db,
		    "ALTER TABLE custom_hostnames DROP COLUMN certificate_uploaded;"
		    "ALTER TABLE custom_hostnames DROP COLUMN ssl_certificate_authority;"
		    "DROP TABLE fallback_origins;"
		    "DROP TRIGGER custom_hostnames_lower_insert;"
		    "DROP TRIGGER custom_hostnames_lower_update;"
		    "ALTER TABLE custom_hostnames DROP COLUMN custom_metadata;"
		    "ALTER TABLE custom_hostnames DROP COLUMN custom_origin_server;"
		    "ALTER TABLE custom_hostnames DROP COLUMN custom_origin_sni;"
		    "ALTER TABLE custom_hostnames DROP COLUMN ssl_method;"
		    "ALTER TABLE custom_hostnames DROP COLUMN ssl_type;"
		    "ALTER TABLE custom_hostnames DROP COLUMN ssl_wildcard;"
		    "ALTER TABLE custom_hostnames DROP COLUMN ssl_settings;"
		    "PRAGMA user_version = 4;", NULL, NULL, NULL), SQLITE_OK);
		raw_add_csr(db, 0, 1, 1);
		assert_int_equal(raw_add_hostname(db, "11111111-1111-4111-8111-111111111111",
		    ZONE_A, "aaaaaaaa-0000-4000-8000-000000000001"), SQLITE_DONE);
		assert_int_equal(sqlite3_exec(db, dup ?
		    "UPDATE custom_hostnames SET hostname = 'App.Example.NET';"
		    "INSERT INTO custom_hostnames SELECT '22222222-2222-4222-8222-222222222222',"
		    " zone_id, 'app.example.net', csr_id, created_at_us, "
		    "'22222222-2222-4222-8222-222222222223', bundle_method, certificate_pem, "
		    "issuer, serial_number, signature_alg, uploaded_on_us, expires_on_us, "
		    "hosts, not_before_us FROM custom_hostnames" :
		    "UPDATE custom_hostnames SET hostname = 'App.Example.NET'",
		    NULL, NULL, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_close(db), SQLITE_OK);

		if (dup) {
			/* Two bindings of one name: refused, nothing changed. */
			assert_int_equal(store_open(path, &s, &cause), KC_ERR_STORE);
			assert_non_null(cause);
			assert_non_null(strstr(cause, "migration 5"));
			free(cause);
			cause = NULL;
			db = raw_open(path);
			assert_int_equal(raw_int(db, "PRAGMA user_version"), 4);
			assert_int_equal(raw_int(db, "SELECT count(*) FROM custom_hostnames "
			    "WHERE hostname = 'App.Example.NET'"), 1);
			assert_int_equal(sqlite3_close(db), SQLITE_OK);
		} else {
			assert_int_equal(store_open(path, &s, &cause), 0);
			db = raw_open(path);
			assert_int_equal(raw_int(db, "PRAGMA user_version"), SCHEMA_VERSION);
			assert_int_equal(raw_int(db, "SELECT count(*) FROM custom_hostnames "
			    "WHERE hostname = 'app.example.net'"), 1);
			/* The triggers hold for any writer. */
			assert_int_not_equal(sqlite3_exec(db, "UPDATE custom_hostnames SET "
			    "hostname = 'APP.example.net'", NULL, NULL, NULL), SQLITE_OK);
			assert_int_equal(sqlite3_close(db), SQLITE_OK);
			store_close(s);
			s = NULL;
		}
		remove_db(path);
	}
}

/*
 * The fallback origin: none before it is set, created then replaced (created_at kept),
 * one per zone, removed with what was removed returned; the schema refuses upper case.
 */
static void
test_fallback_origin(void **state)
{
	struct fixture		*fx = *state;
	struct store_fallback	 f, g;
	sqlite3			*db;
	char			*cause = NULL;
	char			 longname[STORE_ORIGIN_MAX + 2];

	assert_int_equal(store_fallback_get(fx->s, ZONE_A, &f), KC_ERR_NOT_FOUND);
	assert_int_equal(store_fallback_delete(fx->s, ZONE_A, &f), KC_ERR_NOT_FOUND);

	assert_int_equal(store_fallback_put(fx->s, ZONE_A, "origin.acme-corp.co.uk", 1000,
	    &f), 0);
	assert_string_equal(f.origin, "origin.acme-corp.co.uk");
	assert_int_equal(f.created_at_us, 1000);
	assert_int_equal(f.updated_at_us, 1000);
	assert_int_equal(store_fallback_get(fx->s, ZONE_A, &g), 0);
	assert_string_equal(g.origin, f.origin);
	assert_int_equal(g.created_at_us, 1000);

	/* Replaced: created_at kept, updated_at moves (never before created_at). */
	assert_int_equal(store_fallback_put(fx->s, ZONE_A, "fallback.acme-corp.co.uk", 5000,
	    &f), 0);
	assert_string_equal(f.origin, "fallback.acme-corp.co.uk");
	assert_int_equal(f.created_at_us, 1000);
	assert_int_equal(f.updated_at_us, 5000);
	assert_int_equal(store_fallback_put(fx->s, ZONE_A, "fallback.acme-corp.co.uk", 10,
	    &f), 0);
	assert_int_equal(f.updated_at_us, 1000);

	/* Another zone's is its own. */
	assert_int_equal(store_fallback_get(fx->s, ZONE_B, &g), KC_ERR_NOT_FOUND);
	assert_int_equal(store_fallback_put(fx->s, ZONE_B, "b.acme-corp.co.uk", 7, &g), 0);

	/* Refused before SQL: upper case, empty, too long. */
	assert_int_equal(store_fallback_put(fx->s, ZONE_A, "Origin.acme-corp.co.uk", 1,
	    &g), KC_ERR_INVALID);
	assert_int_equal(store_fallback_put(fx->s, ZONE_A, "", 1, &g), KC_ERR_INVALID);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(store_fallback_put(fx->s, ZONE_A, longname, 1, &g),
	    KC_ERR_INVALID);
	/* And by the schema, for any other writer. */
	db = raw_open(fx->path);
	assert_int_not_equal(sqlite3_exec(db, "INSERT INTO fallback_origins VALUES ('"
	    ZONE_C "', 'Origin.acme-corp.co.uk', 1, 1)", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);

	assert_int_equal(store_fallback_delete(fx->s, ZONE_A, &g), 0);
	assert_string_equal(g.origin, "fallback.acme-corp.co.uk");
	assert_int_equal(g.created_at_us, 1000);
	assert_int_equal(store_fallback_get(fx->s, ZONE_A, &g), KC_ERR_NOT_FOUND);
	assert_int_equal(store_fallback_delete(fx->s, ZONE_A, &g), KC_ERR_NOT_FOUND);
	assert_int_equal(store_fallback_get(fx->s, ZONE_B, &g), 0);
	assert_string_equal(g.origin, "b.acme-corp.co.uk");

	/* Persisted: a new handle sees zone B's. */
	store_close(fx->s);
	fx->s = NULL;
	assert_int_equal(store_open(fx->path, &fx->s, &cause), 0);
	free(cause);
	assert_int_equal(store_fallback_get(fx->s, ZONE_B, &g), 0);
	assert_int_equal(g.created_at_us, 7);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_sans_edge, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_list_arena, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_list_pagination, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_conflict, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_deleting, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_unfinished_and_key_ids, fx_setup,
		    fx_teardown),
		cmocka_unit_test_setup_teardown(test_persistence, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_open, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_open_while_locked, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_open_refused, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_busy, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_hostname_roundtrip, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_hostname_conflict, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_hostname_csr_checks, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_hostname_update, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_hostname_list, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_hostname_find, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_migrate_v4_case, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_hostname_delete, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_hostname_optional_fields, fx_setup,
		    fx_teardown),
		cmocka_unit_test_setup_teardown(test_json_check, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_migrate_v1, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_zone_counts, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_migrate_v2, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_fallback_origin, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
