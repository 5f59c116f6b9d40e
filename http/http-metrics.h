/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * http-metrics.h: the shim's Prometheus metrics (http-metrics.c). Routes are the values
 * of http-int.h's enum http_route; those before HTTP_R_METRICS call the daemon.
 */
#ifndef KC_HTTP_METRICS_H
#define KC_HTTP_METRICS_H

struct http_metrics;
struct Keycustody__MetricsResponse;

/**
 * @param names HTTP_R_MAX route names, borrowed for the life of the metrics
 * @retval the metrics, all zero; free with http_metrics_free()
 */
struct http_metrics *http_metrics_new(const char *const *names);

/** NULL is a no-op. */
void		 http_metrics_free(struct http_metrics *m);

/** A request answered with status, received at t0 (http_now()). */
void		 http_metrics_request(struct http_metrics *m, int route, int status,
		    double t0);

/** A daemon call sent: one more in flight. */
void		 http_metrics_call(struct http_metrics *m);

/**
 * A daemon call sent at tcall is over: failed when it got no answer, gone when its client
 * had left.
 */
void		 http_metrics_called(struct http_metrics *m, int route, double tcall,
		    int failed, int gone);

/** A daemon call that could not be sent at all. */
void		 http_metrics_refused(struct http_metrics *m, int route);

/** A limit of http-conn.c refused something (enum http_limit). */
void		 http_metrics_limit(struct http_metrics *m, int limit);
/** A request refused at authentication: malformed (0) or an unknown credential (1). */
void		 http_metrics_auth_failed(struct http_metrics *m, int unknown);

/** The connections open now, and how many of them from reserve addresses. */
void		 http_metrics_conns(struct http_metrics *m, int open, int reserved);

/**
 * The text of GET /metrics; connections is how many daemon connections are up, dm the
 * daemon's answer to this scrape's MetricsRequest (borrowed; NULL: none came, and
 * keycustody_daemon_up is 0).
 * @retval NUL-terminated text (caller frees), or NULL when out of memory
 */
char		*http_metrics_text(const struct http_metrics *m, int connections,
		    const struct Keycustody__MetricsResponse *dm);

#endif /* KC_HTTP_METRICS_H */
