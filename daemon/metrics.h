/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * metrics.h: the daemon's latency histograms (metrics.c), kept with atomics so that any
 * worker may add to them without a lock, and their protobuf form for MetricsResponse.
 */
#ifndef KC_METRICS_H
#define KC_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct Keycustody__Histogram;
struct Keycustody__MetricsResponse;

/* The bucket table's length; the bounds themselves are metrics.c's. */
#define METRICS_NBUCKETS	15

/* One histogram: non-cumulative bucket counts, the count (+Inf) and the sum in ns. */
struct metrics_hist {
	_Atomic uint64_t	 bucket[METRICS_NBUCKETS];
	_Atomic uint64_t	 count;
	_Atomic uint64_t	 sum_ns;
};

/** A CLOCK_MONOTONIC time stamp, for metrics_hist_since(). */
void	 metrics_now(struct timespec *ts);

/** Add the time since t0 (metrics_now()) to h; any thread. */
void	 metrics_hist_since(struct metrics_hist *h, const struct timespec *t0);

/**
 * The protobuf form of h.
 * @retval a Histogram the caller frees with keycustody__histogram__free_unpacked()
 */
struct Keycustody__Histogram *metrics_hist_pack(const struct metrics_hist *h);

/** Fill resp's bucket_bounds (malloc'd, freed with resp). */
void	 metrics_bounds_pack(struct Keycustody__MetricsResponse *resp);

#endif /* KC_METRICS_H */
