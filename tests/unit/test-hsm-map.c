/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * test-hsm-map.c: the id -> handle hash table (daemon/hsm-map.c): insert, lookup, remove
 * with backward shift, growth, iteration, against a plain array as the reference.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hsm-map.h"

#define T_N	20000

static void
t_id(uint8_t *id, uint32_t i)
{
	memset(id, 0, HSM_KEY_ID_LEN);
	memcpy(id, &i, sizeof(i));
	id[HSM_KEY_ID_LEN - 1] = (uint8_t)(i * 7);
}

static void
test_basic(void **state)
{
	struct hsm_map		 m;
	struct hsm_map_entry	*e, out;
	uint8_t			 id[HSM_KEY_ID_LEN];
	int			 made;

	hsm_map_init(&m);
	t_id(id, 1);
	assert_null(hsm_map_lookup(&m, id));
	assert_int_equal(hsm_map_remove(&m, id, NULL), 0);
	e = hsm_map_insert(&m, id, &made);
	assert_non_null(e);
	assert_int_equal(made, 1);
	assert_int_equal(e->priv, 0);
	e->priv = 11;
	e->pub = 12;
	e = hsm_map_insert(&m, id, &made);
	assert_int_equal(made, 0);
	assert_int_equal(e->priv, 11);
	assert_ptr_equal(hsm_map_lookup(&m, id), e);
	assert_int_equal(m.n, 1);
	assert_int_equal(hsm_map_remove(&m, id, &out), 1);
	assert_int_equal(out.pub, 12);
	assert_null(hsm_map_lookup(&m, id));
	assert_int_equal(m.n, 0);
	hsm_map_uninit(&m, NULL);
}

static int t_freed;

static void
t_count_free(struct hsm_map_entry *e)
{
	(void)e;
	t_freed++;
}

/* Many ids, every other removed, the rest still found; all colliding seeds alike. */
static void
test_many(void **state)
{
	struct hsm_map		 m;
	struct hsm_map_entry	*e;
	uint8_t			 id[HSM_KEY_ID_LEN];
	size_t			 i, it, seen;
	int			 made, pass;

	for (pass = 0; pass < 2; pass++) {
		hsm_map_init(&m);
		if (pass == 1)
			m.seed = 0;	/* a fixed seed: the same result */
		for (i = 0; i < T_N; i++) {
			t_id(id, (uint32_t)i);
			assert_non_null(e = hsm_map_insert(&m, id, &made));
			assert_int_equal(made, 1);
			e->priv = i + 1;
		}
		assert_int_equal(m.n, T_N);
		/* At most 70% full, and a power of two. */
		assert_true(m.n * 10 < m.cap * 7);
		assert_int_equal(m.cap & (m.cap - 1), 0);
		for (i = 0; i < T_N; i += 2) {
			t_id(id, (uint32_t)i);
			assert_int_equal(hsm_map_remove(&m, id, NULL), 1);
		}
		assert_int_equal(m.n, T_N / 2);
		for (i = 0; i < T_N; i++) {
			t_id(id, (uint32_t)i);
			e = hsm_map_lookup(&m, id);
			if (i % 2 == 0)
				assert_null(e);
			else {
				assert_non_null(e);
				assert_int_equal(e->priv, i + 1);
			}
		}
		seen = 0;
		for (it = 0; (e = hsm_map_next(&m, &it)) != NULL;) {
			assert_int_equal(e->priv % 2, 0);	/* odd i: priv even */
			seen++;
		}
		assert_int_equal(seen, T_N / 2);
		assert_int_equal(hsm_map_bytes(&m), m.cap * sizeof(struct hsm_map_entry));
		t_freed = 0;
		hsm_map_clear(&m, t_count_free);
		assert_int_equal(t_freed, T_N / 2);
		assert_int_equal(m.n, 0);
		t_id(id, 1);
		assert_null(hsm_map_lookup(&m, id));
		hsm_map_uninit(&m, NULL);
	}
}

/*
 * Removal inside long probe runs: a small table filled to its limit with random ids,
 * then removed and re-inserted in random order, checked against a reference array.
 */
static void
test_churn(void **state)
{
	struct hsm_map		 m;
	uint8_t			 ids[40][HSM_KEY_ID_LEN];
	int			 in[40] = { 0 }, made, round;
	size_t			 i, j, n = 0;

	hsm_map_init(&m);
	srandom(14);
	for (i = 0; i < 40; i++)
		for (j = 0; j < HSM_KEY_ID_LEN; j++)
			ids[i][j] = (uint8_t)random();
	for (round = 0; round < 20000; round++) {
		i = (size_t)random() % 40;
		if (in[i]) {
			assert_int_equal(hsm_map_remove(&m, ids[i], NULL), 1);
			in[i] = 0;
			n--;
		} else {
			assert_non_null(hsm_map_insert(&m, ids[i], &made));
			assert_int_equal(made, 1);
			in[i] = 1;
			n++;
		}
		assert_int_equal(m.n, n);
		for (j = 0; j < 40; j++)
			assert_int_equal(hsm_map_lookup(&m, ids[j]) != NULL, in[j]);
	}
	hsm_map_uninit(&m, NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_many),
		cmocka_unit_test(test_churn),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
