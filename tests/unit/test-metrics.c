/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * test-metrics.c: the daemon's latency histograms (daemon/metrics.c): which bucket an
 * observation lands in, the cumulative protobuf form, the bucket table sent with it.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "kc-proto.h"
#include "metrics.h"

/* A time stamp ms milliseconds before now (negative: after). */
static void
t_ago(struct timespec *ts, long ms)
{
	long long	 ns;

	metrics_now(ts);
	ns = (long long)ts->tv_sec * 1000000000LL + ts->tv_nsec - ms * 1000000LL;
	ts->tv_sec = (time_t)(ns / 1000000000LL);
	ts->tv_nsec = (long)(ns % 1000000000LL);
}

static void
test_bounds(void **state)
{
	Keycustody__MetricsResponse	 m = KEYCUSTODY__METRICS_RESPONSE__INIT;
	size_t				 i;

	(void)state;
	metrics_bounds_pack(&m);
	assert_int_equal(m.n_bucket_bounds, METRICS_NBUCKETS);
	for (i = 1; i < m.n_bucket_bounds; i++)
		assert_true(m.bucket_bounds[i - 1] < m.bucket_bounds[i]);
	/* From an ECDSA signature to a slow RSA-4096 key generation. */
	assert_true(m.bucket_bounds[0] <= 0.0001);
	assert_true(m.bucket_bounds[m.n_bucket_bounds - 1] >= 10);
	free(m.bucket_bounds);
}

static void
test_buckets(void **state)
{
	static struct metrics_hist	 h;	/* zero, as in struct kcd */
	Keycustody__MetricsResponse	 m = KEYCUSTODY__METRICS_RESPONSE__INIT;
	Keycustody__Histogram		*p;
	struct timespec			 t0;
	size_t				 i, b3 = 0, b20 = 0;

	(void)state;
	metrics_bounds_pack(&m);
	/* The first bounds above 3 ms and 20 ms: where those observations must go. */
	while (m.bucket_bounds[b3] < 0.003)
		b3++;
	while (m.bucket_bounds[b20] < 0.020)
		b20++;
	t_ago(&t0, 3);
	metrics_hist_since(&h, &t0);
	t_ago(&t0, 3);
	metrics_hist_since(&h, &t0);
	t_ago(&t0, 20);
	metrics_hist_since(&h, &t0);
	t_ago(&t0, 20000);		/* past the last bound: +Inf only */
	metrics_hist_since(&h, &t0);
	t_ago(&t0, -1000);		/* a clock that went back counts as 0 */
	metrics_hist_since(&h, &t0);

	/* 3 ms and the time of the call itself stay below the next bound. */
	assert_true(m.bucket_bounds[b3] >= 0.004);
	p = metrics_hist_pack(&h);
	assert_int_equal(p->count, 5);
	assert_int_equal(p->n_buckets, METRICS_NBUCKETS);
	for (i = 0; i < p->n_buckets; i++) {
		uint64_t	 want = 1 + (i >= b3 ? 2 : 0) + (i >= b20 ? 1 : 0);

		assert_int_equal(p->buckets[i], want);
	}
	assert_int_equal(p->buckets[p->n_buckets - 1], 4);
	assert_true(p->sum >= 20.026 && p->sum < 20.5);
	keycustody__histogram__free_unpacked(p, NULL);
	free(m.bucket_bounds);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_buckets),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
