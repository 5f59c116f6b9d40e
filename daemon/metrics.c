/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * metrics.c: the one bucket table of the daemon's latency histograms, adding to a
 * histogram, and a histogram's protobuf form.
 */
#include "config.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kc-proto.h"
#include "metrics.h"
#include "xmalloc.h"

/*
 * Upper bounds in seconds: from an ECDSA signature (0.1 ms on SoftHSM2) to an RSA-4096 key
 * generation on a slow token (seconds), docs/DESIGN.md's performance model.
 */
static const double metrics_bounds[METRICS_NBUCKETS] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
	1, 2.5, 10
};

void
metrics_now(struct timespec *ts)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
}

void
metrics_hist_since(struct metrics_hist *h, const struct timespec *t0)
{
	struct timespec	 now;
	int64_t		 ns;
	double		 s;
	size_t		 i;

	metrics_now(&now);
	ns = (int64_t)(now.tv_sec - t0->tv_sec) * 1000000000 + (now.tv_nsec - t0->tv_nsec);
	if (ns < 0)
		ns = 0;
	s = (double)ns / 1e9;
	for (i = 0; i < METRICS_NBUCKETS; i++) {
		if (s <= metrics_bounds[i]) {
			atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
			break;
		}
	}
	atomic_fetch_add_explicit(&h->sum_ns, (uint64_t)ns, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

Keycustody__Histogram *
metrics_hist_pack(const struct metrics_hist *h)
{
	Keycustody__Histogram	*p = xcalloc(1, sizeof(*p));
	uint64_t		 cum = 0, count;
	size_t			 i;

	keycustody__histogram__init(p);
	/* Read the count first: the buckets never add up to more than it says. */
	count = atomic_load_explicit(&h->count, memory_order_relaxed);
	p->n_buckets = METRICS_NBUCKETS;
	p->buckets = xcalloc(METRICS_NBUCKETS, sizeof(*p->buckets));
	for (i = 0; i < METRICS_NBUCKETS; i++) {
		cum += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
		p->buckets[i] = cum < count ? cum : count;
	}
	p->count = count;
	p->sum = (double)atomic_load_explicit(&h->sum_ns, memory_order_relaxed) / 1e9;
	return p;
}

void
metrics_bounds_pack(Keycustody__MetricsResponse *resp)
{
	resp->n_bucket_bounds = METRICS_NBUCKETS;
	resp->bucket_bounds = xcalloc(METRICS_NBUCKETS, sizeof(*resp->bucket_bounds));
	memcpy(resp->bucket_bounds, metrics_bounds, sizeof(metrics_bounds));
}
