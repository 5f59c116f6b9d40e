/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * http-conn.c: the shim's connections, before evhttp parses anything: admission against
 * the connection caps and the reserve, the header and body deadlines, the header block
 * held back and checked whole (size, line count, NULs, conflicting lengths, duplicate
 * credentials, unknown methods, authentication before a body), and the listener's
 * back-off on accept() errors.
 *
 * Why it is done this way: libevent 2.1 (Debian 12's) has no hook before evhttp reads a
 * request (2.2 has evhttp_set_newreqcb() and evhttp_set_max_connections()). So every
 * connection's input buffer is watched (evbuffer_add_cb runs before evhttp's read
 * callback): the bytes of a header block are moved aside until the block is complete and
 * has passed, then handed back to evhttp in one piece; body bytes are counted through. A refused request is
 * replaced by a bodiless one with "Connection: close", which http_dispatch() answers with
 * the refusal, and whatever the client still sends is dropped as it arrives.
 */
#include "config.h"

#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "kc-api.h"
#include "kc-err.h"
#include "log.h"
#include "xmalloc.h"
#include "http-compat.h"
#include "http-conn.h"
#include "http-int.h"
#include "http-metrics.h"

#define HTTP_CIDR_MAX		64	/* reserve entries */
#define HTTP_BACKOFF_MIN_MS	10	/* listener pause after an accept() error ... */
#define HTTP_BACKOFF_MAX_MS	1000	/* ... doubled up to this */
#define HTTP_FD_SLACK		16	/* descriptors beside connections and fds_other */
#define HTTP_LOG_BURST		5	/* log lines of one kind per second */
#define HTTP_CL_DIGITS		18	/* a Content-Length that fits int64 */

/* The request that stands for a refused one: evhttp answers it through http_dispatch(). */
static const char http_refused_req[] = "GET / HTTP/1.1\r\nConnection: close\r\n\r\n";

/* The answer to a connection over a cap, written before closing it (plain HTTP only). */
#define HTTP_BUSY_BODY	"{\"result\":null,\"success\":false,\"errors\":[{\"code\":%d," \
	"\"message\":\"Too many connections: try again later.\"}],\"messages\":[]}\n"
#define HTTP_BUSY_HEAD	"HTTP/1.1 503 Service Unavailable\r\nContent-Type: " \
	"application/json\r\nRetry-After: 1\r\nConnection: close\r\n" \
	"Content-Length: %d\r\n\r\n%s"

struct http_cidr {
	int		 family;
	uint8_t		 addr[16];
	int		 bits;
};

/* At most HTTP_LOG_BURST lines a second of one kind; the rest counted, then summed up. */
struct http_rl {
	double		 t0;
	int		 n;
	unsigned long	 dropped;
};

enum http_rl_kind { HTTP_RL_ACCEPT, HTTP_RL_REFUSE, HTTP_RL_TIMEOUT, HTTP_RL_BAD,
	HTTP_RL_MAX };

enum http_conn_state {
	HTTP_C_NEW,		/* accepted, not yet admitted */
	HTTP_C_HEAD,		/* between requests, or holding a header block */
	HTTP_C_BODY,		/* counting a Content-Length body through */
	HTTP_C_PASS,		/* a chunked body: everything through, close after */
	HTTP_C_DROP		/* refused: everything dropped */
};

struct http_conn {
	TAILQ_ENTRY(http_conn)	 entry;
	struct http_conns	*cs;
	struct bufferevent	*bev;		/* a reference of ours until teardown */
	struct evhttp_connection *evcon;	/* NULL until admitted */
	struct evbuffer_cb_entry *incb;
	struct evbuffer		*hold;		/* a header block not yet given to evhttp */
	struct event		*timer;		/* admission, then the deadlines */
	struct sockaddr_storage	 ss;
	int			 fd;
	int			 reserved;	/* from a reserve address */
	enum http_conn_state	 state;
	int			 feeding;	/* our own writes to the input: ignore */
	unsigned long		 close_seq;	/* close after answering this one, 0: no */
	enum http_limit		 timer_limit;	/* which deadline the timer is */
	size_t			 scan;		/* hold: start of the first unscanned line */
	size_t			 lines;		/* hold: lines scanned */
	uint64_t		 body_left;	/* HTTP_C_BODY */
	unsigned long		 given;		/* requests handed to evhttp */
	unsigned long		 reached;	/* ... and dispatched by it */
	unsigned long		 refused_seq;	/* the number of the refused one, 0: none */
	const struct http_err	*refused;
	int			 refused_route;
	char			 allow[HTTP_ALLOW_MAX];
	char			*path;		/* of a refusal for no route */
	void			(*gone)(void *);
	void			*gone_arg;
};
TAILQ_HEAD(http_conn_list, http_conn);

struct http_conns {
	struct event_base	*base;
	struct http		*h;
	struct http_metrics	*m;
	struct http_limits	 lim;
	int			 tls;
	struct http_cidr	 reserve[HTTP_CIDR_MAX];
	size_t			 nreserve;
	struct http_conn_list	 list;
	struct http_conn	**byfd;		/* admitted connections by descriptor */
	size_t			 nbyfd;
	int			 open;
	int			 open_reserved;
	struct evconnlistener	*listeners[HTTP_MAX_LISTENERS];	/* the API's, metrics' */
	size_t			 nlisteners;
	struct event		*resume;
	int			 backoff_ms;
	struct http_rl		 rl[HTTP_RL_MAX];
};

/* One server per process: the listener's error callback gets evhttp's argument. */
static struct http_conns	*http_conns_self;

static void	http_conn_feed(struct http_conn *, struct evbuffer *);

/* Whether a line of kind may be logged now. */
static int
http_rl_ok(struct http_conns *cs, enum http_rl_kind kind)
{
	struct http_rl	*rl = &cs->rl[kind];
	double		 now = http_now();

	if (now - rl->t0 >= 1.0) {
		if (rl->dropped > 0)
			log_warnx("%lu similar messages suppressed", rl->dropped);
		rl->t0 = now;
		rl->n = 0;
		rl->dropped = 0;
	}
	if (rl->n < HTTP_LOG_BURST) {
		rl->n++;
		return 1;
	}
	rl->dropped++;
	http_metrics_limit(cs->m, HTTP_L_LOG);
	return 0;
}

/* The peer address of c, for logs. */
static const char *
http_conn_addr(const struct http_conn *c, char *buf, size_t len)
{
	const struct sockaddr_in	*sin = (const struct sockaddr_in *)&c->ss;
	const struct sockaddr_in6	*sin6 = (const struct sockaddr_in6 *)&c->ss;

	const char			*s = NULL;

	if (c->ss.ss_family == AF_INET)
		s = inet_ntop(AF_INET, &sin->sin_addr, buf, (socklen_t)len);
	else if (c->ss.ss_family == AF_INET6)
		s = inet_ntop(AF_INET6, &sin6->sin6_addr, buf, (socklen_t)len);
	return s != NULL ? s : "-";
}

/* The address of ss as family and bytes; an IPv4-mapped IPv6 address is IPv4. */
static int
http_addr_bytes(const struct sockaddr_storage *ss, uint8_t out[16])
{
	const struct sockaddr_in	*sin = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6	*sin6 = (const struct sockaddr_in6 *)ss;

	if (ss->ss_family == AF_INET) {
		memcpy(out, &sin->sin_addr, 4);
		return AF_INET;
	}
	if (ss->ss_family == AF_INET6) {
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			memcpy(out, sin6->sin6_addr.s6_addr + 12, 4);
			return AF_INET;
		}
		memcpy(out, &sin6->sin6_addr, 16);
		return AF_INET6;
	}
	return -1;
}

static int
http_same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	uint8_t	 x[16], y[16];
	int	 fx, fy;

	fx = http_addr_bytes(a, x);
	fy = http_addr_bytes(b, y);
	return fx != -1 && fx == fy && memcmp(x, y, fx == AF_INET ? 4 : 16) == 0;
}

static int
http_in_reserve(const struct http_conns *cs, const struct sockaddr_storage *ss)
{
	uint8_t	 a[16];
	size_t	 i;
	int	 f, full, rest;

	if ((f = http_addr_bytes(ss, a)) == -1)
		return 0;
	for (i = 0; i < cs->nreserve; i++) {
		if (cs->reserve[i].family != f)
			continue;
		full = cs->reserve[i].bits / 8;
		rest = cs->reserve[i].bits % 8;
		if (memcmp(a, cs->reserve[i].addr, (size_t)full) != 0)
			continue;
		if (rest == 0 || ((a[full] ^ cs->reserve[i].addr[full]) &
		    (0xff << (8 - rest))) == 0)
			return 1;
	}
	return 0;
}

/* One reserve entry: an IPv4 or IPv6 address, optionally /bits. */
static int
http_cidr_parse(const char *s, struct http_cidr *c)
{
	char		 buf[INET6_ADDRSTRLEN + 4], *slash, *end;
	long		 bits;
	int		 max;

	if (strlen(s) >= sizeof(buf))
		return -1;
	memcpy(buf, s, strlen(s) + 1);
	if ((slash = strchr(buf, '/')) != NULL)
		*slash++ = '\0';
	memset(c, 0, sizeof(*c));
	if (inet_pton(AF_INET, buf, c->addr) == 1) {
		c->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, c->addr) == 1) {
		c->family = AF_INET6;
		max = 128;
	} else
		return -1;
	c->bits = max;
	if (slash != NULL) {
		errno = 0;
		bits = strtol(slash, &end, 10);
		if (*slash == '\0' || *end != '\0' || errno != 0 || bits < 0 || bits > max)
			return -1;
		c->bits = (int)bits;
	}
	return 0;
}

static int
http_reserve_parse(struct http_conns *cs, const char *list, char **cause)
{
	char	*copy, *p, *tok;

	if (list == NULL)
		return 0;
	copy = p = xstrdup(list);
	while ((tok = strsep(&p, " ,\t")) != NULL) {
		if (*tok == '\0')
			continue;
		if (cs->nreserve == HTTP_CIDR_MAX) {
			xasprintf(cause, "reserve: more than %d entries", HTTP_CIDR_MAX);
			free(copy);
			return KC_ERR_INVALID;
		}
		if (http_cidr_parse(tok, &cs->reserve[cs->nreserve]) != 0) {
			xasprintf(cause, "reserve: not an address or CIDR: %s", tok);
			free(copy);
			return KC_ERR_INVALID;
		}
		cs->nreserve++;
	}
	free(copy);
	return 0;
}

/* Defaults for unset limits, the connection cap fitted to the descriptor limit. */
static void
http_limits_fit(struct http_limits *l, int fds_other)
{
	struct rlimit	 rl;
	long		 avail;

	if (l->max_conns <= 0)
		l->max_conns = HTTP_DEF_MAX_CONNS;
	if (l->max_conns_addr <= 0)
		l->max_conns_addr = HTTP_DEF_MAX_CONNS_ADDR;
	if (l->reserved_conns < 0)
		l->reserved_conns = HTTP_DEF_RESERVED_CONNS;
	if (l->header_timeout_ms <= 0)
		l->header_timeout_ms = HTTP_DEF_HEADER_TIMEOUT_MS;
	if (l->body_timeout_ms <= 0)
		l->body_timeout_ms = HTTP_DEF_BODY_TIMEOUT_MS;
	if (l->max_header_bytes <= 0)
		l->max_header_bytes = HTTP_DEF_MAX_HEADER_BYTES;
	if (l->max_headers <= 0)
		l->max_headers = HTTP_DEF_MAX_HEADERS;
	/* A lingering refusal holds a second descriptor (http-compat.c): count two. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
		avail = ((long)rl.rlim_cur - fds_other - HTTP_FD_SLACK) / 2;
		if (avail < 1)
			avail = 1;
		if (l->max_conns > avail) {
			log_info("max_connections lowered from %d to %ld: the descriptor limit "
			    "is %ld", l->max_conns, avail, (long)rl.rlim_cur);
			l->max_conns = (int)avail;
		}
	}
	if (l->reserved_conns >= l->max_conns)
		l->reserved_conns = l->max_conns / 2;
}

struct http_conns *
http_conns_new(struct event_base *base, struct http *h, const struct http_limits *lim,
    int fds_other, int tls, struct http_metrics *m, char **cause)
{
	struct http_conns	*cs;

	cs = xcalloc(1, sizeof(*cs));
	cs->base = base;
	cs->tls = tls;
	cs->h = h;
	cs->m = m;
	cs->lim = *lim;
	cs->lim.reserve = NULL;		/* parsed, not kept */
	TAILQ_INIT(&cs->list);
	cs->backoff_ms = HTTP_BACKOFF_MIN_MS;
	if (http_reserve_parse(cs, lim->reserve, cause) != 0) {
		free(cs);
		return NULL;
	}
	if (cs->nreserve == 0)
		cs->lim.reserved_conns = 0;	/* nobody to keep them for */
	http_limits_fit(&cs->lim, fds_other);
	log_debug("connections: %d in all, %d per address, %d reserved for %zu "
	    "address(es); headers in %d ms, bodies in %d ms; headers %d bytes, %d lines",
	    cs->lim.max_conns, cs->lim.max_conns_addr, cs->lim.reserved_conns, cs->nreserve,
	    cs->lim.header_timeout_ms, cs->lim.body_timeout_ms, cs->lim.max_header_bytes,
	    cs->lim.max_headers);
	return cs;
}

/* Pause on accept() errors. */
static void
http_conns_resume(evutil_socket_t fd, short what, void *arg)
{
	struct http_conns	*cs = arg;
	size_t			 i;

	for (i = 0; i < cs->nlisteners; i++)
		evconnlistener_enable(cs->listeners[i]);
}

static void
http_conns_accept_error(struct evconnlistener *l, void *arg)
{
	struct http_conns	*cs = http_conns_self;
	struct timeval		 tv;
	size_t			 i;
	int			 e = EVUTIL_SOCKET_ERROR();

	(void)l;

	http_metrics_limit(cs->m, HTTP_L_ACCEPT);
	if (e != EMFILE && e != ENFILE && e != ENOBUFS && e != ENOMEM) {
		if (http_rl_ok(cs, HTTP_RL_ACCEPT))
			log_warnx("accept: %s", strerror(e));
		return;
	}
	if (http_rl_ok(cs, HTTP_RL_ACCEPT))
		log_warnx("accept: %s: not accepting for %d ms (%d connections open)",
		    strerror(e), cs->backoff_ms, cs->open);
	/* Descriptors and memory are the process's: every listener waits. */
	for (i = 0; i < cs->nlisteners; i++)
		evconnlistener_disable(cs->listeners[i]);
	tv.tv_sec = cs->backoff_ms / 1000;
	tv.tv_usec = (cs->backoff_ms % 1000) * 1000;
	evtimer_add(cs->resume, &tv);
	cs->backoff_ms *= 2;
	if (cs->backoff_ms > HTTP_BACKOFF_MAX_MS)
		cs->backoff_ms = HTTP_BACKOFF_MAX_MS;
}

void
http_conns_listen(struct http_conns *cs, struct evconnlistener *l)
{
	if (cs->nlisteners == HTTP_MAX_LISTENERS)
		fatalx("http_conns_listen: more than %d listeners", HTTP_MAX_LISTENERS);
	cs->listeners[cs->nlisteners++] = l;
	http_conns_self = cs;
	if (cs->resume == NULL &&
	    (cs->resume = evtimer_new(cs->base, http_conns_resume, cs)) == NULL)
		fatalx("evtimer_new: out of memory");
	evconnlistener_set_error_cb(l, http_conns_accept_error);
}

static void
http_conn_timer_set(struct http_conn *c, enum http_limit which)
{
	struct timeval	 tv;
	int		 ms;

	ms = which == HTTP_L_HEADER_TIME ? c->cs->lim.header_timeout_ms :
	    c->cs->lim.body_timeout_ms;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	c->timer_limit = which;
	evtimer_add(c->timer, &tv);
}

/* Teardown, whoever ends the connection: evhttp's close callback, or a refusal of ours. */
static void
http_conn_free(struct http_conn *c)
{
	struct http_conns	*cs = c->cs;

	if (c->gone != NULL)
		c->gone(c->gone_arg);
	if (c->evcon != NULL) {
		cs->open--;
		if (c->reserved)
			cs->open_reserved--;
		if (c->fd >= 0 && (size_t)c->fd < cs->nbyfd && cs->byfd[c->fd] == c)
			cs->byfd[c->fd] = NULL;
		http_metrics_conns(cs->m, cs->open, cs->open_reserved);
	}
	TAILQ_REMOVE(&cs->list, c, entry);
	if (c->incb != NULL)
		evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->incb);
	event_free(c->timer);
	evbuffer_free(c->hold);
	bufferevent_decref(c->bev);
	free(c->path);
	free(c);
}

static void
http_conn_closed(struct evhttp_connection *evcon, void *arg)
{
	http_conn_free(arg);
}

/* Over a cap: say so (plain HTTP: TLS has not even shaken hands) and close. */
static void
http_conn_refuse(struct http_conn *c, enum http_limit why, struct evhttp_connection *evcon,
    int tls)
{
	char	 a[INET6_ADDRSTRLEN], body[256], reply[512];
	int	 blen, n;

	http_metrics_limit(c->cs->m, why);
	if (http_rl_ok(c->cs, HTTP_RL_REFUSE))
		log_warnx("%s: connection refused: %s (%d open)", http_conn_addr(c, a,
		    sizeof(a)), why == HTTP_L_CONNS ? "too many connections" :
		    "too many connections from this address", c->cs->open);
	if (!tls) {
		blen = snprintf(body, sizeof(body), HTTP_BUSY_BODY, KC_API_UNAVAILABLE);
		n = snprintf(reply, sizeof(reply), HTTP_BUSY_HEAD, blen, body);
		if (blen > 0 && n > 0 && (size_t)n < sizeof(reply))
			(void)send(c->fd, reply, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
	}
	http_conn_free(c);
	evhttp_connection_free(evcon);
}

static int
http_conn_count_addr(const struct http_conns *cs, const struct http_conn *c)
{
	const struct http_conn	*o;
	int			 n = 0;

	TAILQ_FOREACH(o, &cs->list, entry) {
		if (o != c && o->evcon != NULL && http_same_addr(&o->ss, &c->ss))
			n++;
	}
	return n;
}

static void
http_conn_byfd(struct http_conns *cs, struct http_conn *c)
{
	size_t	 n;

	if ((size_t)c->fd >= cs->nbyfd) {
		n = (size_t)c->fd + 64;
		cs->byfd = xreallocarray(cs->byfd, n, sizeof(*cs->byfd));
		memset(cs->byfd + cs->nbyfd, 0, (n - cs->nbyfd) * sizeof(*cs->byfd));
		cs->nbyfd = n;
	}
	cs->byfd[c->fd] = c;
}

/*
 * Right after evhttp has set the connection up (an event made active from bevcb runs
 * before the loop polls again, so before evhttp reads a byte): find its evhttp
 * connection, check the caps, start the header deadline.
 */
static void
http_conn_admit(struct http_conn *c)
{
	struct http_conns		*cs = c->cs;
	struct evhttp_connection	*evcon;
	bufferevent_data_cb		 rcb;
	void				*arg;
	socklen_t			 len = sizeof(c->ss);
	int				 tls;

	bufferevent_getcb(c->bev, &rcb, NULL, NULL, &arg);
	if (rcb == NULL || (c->fd = bufferevent_getfd(c->bev)) == -1) {
		http_conn_free(c);	/* evhttp gave up on it already */
		return;
	}
	/* evhttp's callbacks take its connection as their argument (2.1 and 2.2). */
	evcon = arg;
	if (evhttp_connection_get_bufferevent(evcon) != c->bev)
		fatalx("evhttp: cannot find the connection of a bufferevent");
	tls = cs->tls;
	if (getpeername(c->fd, (struct sockaddr *)&c->ss, &len) == -1)
		memset(&c->ss, 0, sizeof(c->ss));
	c->reserved = http_in_reserve(cs, &c->ss);
	if (cs->open >= cs->lim.max_conns - (c->reserved ? 0 : cs->lim.reserved_conns)) {
		http_conn_refuse(c, HTTP_L_CONNS, evcon, tls);
		return;
	}
	if (!c->reserved && http_conn_count_addr(cs, c) >= cs->lim.max_conns_addr) {
		http_conn_refuse(c, HTTP_L_CONNS_ADDR, evcon, tls);
		return;
	}
	cs->backoff_ms = HTTP_BACKOFF_MIN_MS;	/* accepting works again */
	c->evcon = evcon;
	cs->open++;
	if (c->reserved)
		cs->open_reserved++;
	http_conn_byfd(cs, c);
	http_metrics_conns(cs->m, cs->open, cs->open_reserved);
	evhttp_connection_set_closecb(evcon, http_conn_closed, c);
	c->state = HTTP_C_HEAD;
	http_conn_timer_set(c, HTTP_L_HEADER_TIME);
	/* Bytes held before admission: none as the loop runs, but be safe. */
	if (evbuffer_get_length(c->hold) > 0)
		http_conn_feed(c, bufferevent_get_input(c->bev));
}

/*
 * A deadline passed. Close, unless a daemon call of this connection is in flight (evhttp
 * would free the request under it): then close after its answer.
 */
static void
http_conn_timer(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn	*c = arg;
	char			 a[INET6_ADDRSTRLEN];

	if (c->state == HTTP_C_NEW) {
		http_conn_admit(c);
		return;
	}
	http_metrics_limit(c->cs->m, c->timer_limit);
	if (http_rl_ok(c->cs, HTTP_RL_TIMEOUT))
		log_warnx("%s: %s not complete within %d ms: closed",
		    http_conn_addr(c, a, sizeof(a)), c->timer_limit == HTTP_L_HEADER_TIME ?
		    "request headers" : "request body", c->timer_limit == HTTP_L_HEADER_TIME ?
		    c->cs->lim.header_timeout_ms : c->cs->lim.body_timeout_ms);
	if (c->gone != NULL) {
		c->close_seq = c->reached;	/* the one in flight */
		return;
	}
	evhttp_connection_free(c->evcon);	/* calls http_conn_closed() */
}

/*
 * Move the last n bytes of in to the end of c->hold. The front of in holds bytes already
 * given to evhttp and not yet read by it; they stay.
 */
static void
http_conn_take_tail(struct http_conn *c, struct evbuffer *in, size_t n)
{
	struct evbuffer	*front;
	size_t		 keep = evbuffer_get_length(in) - n;

	c->feeding = 1;
	if (keep == 0)
		evbuffer_add_buffer(c->hold, in);
	else {
		if ((front = evbuffer_new()) == NULL)
			fatalx("evbuffer_new: out of memory");
		evbuffer_remove_buffer(in, front, keep);
		evbuffer_add_buffer(c->hold, in);
		if (evbuffer_prepend_buffer(in, front) != 0)
			fatalx("evbuffer_prepend_buffer failed");
		evbuffer_free(front);
	}
	c->feeding = 0;
}

/*
 * Append to in, the input of c's bufferevent. Within a read its end is open; outside one
 * (admission, on a timer) a socket bufferevent keeps it frozen: thaw it meanwhile.
 */
static void
http_conn_append(struct http_conn *c, struct evbuffer *in, const char *data, size_t n)
{
	int	 r;

	c->feeding = 1;
	r = data != NULL ? evbuffer_add(in, data, n) :
	    evbuffer_remove_buffer(c->hold, in, n) == (int)n ? 0 : -1;
	if (r != 0) {
		evbuffer_unfreeze(in, 0);
		r = data != NULL ? evbuffer_add(in, data, n) :
		    evbuffer_remove_buffer(c->hold, in, n) == (int)n ? 0 : -1;
		evbuffer_freeze(in, 0);
	}
	c->feeding = 0;
	if (r != 0)
		fatalx("http_conn_append: out of memory");
}

/* Hand the first n bytes of c->hold to evhttp. */
static void
http_conn_give(struct http_conn *c, struct evbuffer *in, size_t n)
{
	http_conn_append(c, in, NULL, n);
}

/*
 * Refuse the request held: evhttp gets a bodiless stand-in that http_dispatch() answers
 * with e, the connection closes after it, and the rest of what the client sends is
 * dropped unread by us (and read to its end by http-compat.c's lingering close).
 */
static void
http_conn_refuse_req(struct http_conn *c, struct evbuffer *in, enum http_limit why,
    const struct http_err *e, int route)
{
	char	 a[INET6_ADDRSTRLEN];

	http_metrics_limit(c->cs->m, why);
	if (http_rl_ok(c->cs, HTTP_RL_BAD))
		log_warnx("%s: request refused before evhttp read it: %d/%d (%s)",
		    http_conn_addr(c, a, sizeof(a)), e->status, e->code,
		    e->chain_message != NULL ? e->chain_message : e->message);
	evtimer_del(c->timer);
	evbuffer_drain(c->hold, evbuffer_get_length(c->hold));
	c->refused = e;
	c->refused_route = route;
	c->refused_seq = ++c->given;
	c->state = HTTP_C_DROP;
	c->close_seq = c->refused_seq;
	http_conn_append(c, in, http_refused_req, sizeof(http_refused_req) - 1);
	http_compat_linger(c->bev);
}

/*
 * Scan c->hold for the end of the header block, from where the last scan stopped, with
 * evhttp's line ends (LF, optionally after CR).
 * @retval 1 complete (c->scan is its length), 0 more to come, -1 a cap exceeded (*why)
 */
static int
http_conn_scan(struct http_conn *c, enum http_limit *why)
{
	struct evbuffer_ptr	 p;
	size_t			 eol;

	for (;;) {
		if (evbuffer_ptr_set(c->hold, &p, c->scan, EVBUFFER_PTR_SET) != 0)
			break;
		p = evbuffer_search_eol(c->hold, &p, &eol, EVBUFFER_EOL_CRLF);
		if (p.pos == -1)
			break;
		if ((size_t)p.pos == c->scan && c->lines == 0) {
			/* An empty line before the request line: RFC 9112 2.2 ignores it. */
			evbuffer_drain(c->hold, eol);
			continue;
		}
		if ((size_t)p.pos == c->scan) {
			c->scan += eol;
			return 1;
		}
		c->scan = (size_t)p.pos + eol;
		if (++c->lines > (size_t)c->cs->lim.max_headers + 1) {
			*why = HTTP_L_HEADERS;
			return -1;
		}
		if (c->scan > (size_t)c->cs->lim.max_header_bytes)
			break;
	}
	if (evbuffer_get_length(c->hold) > (size_t)c->cs->lim.max_header_bytes) {
		*why = HTTP_L_HEADER_BYTES;
		return -1;
	}
	return 0;
}

/* Keep path for the no-route answer of a refusal (API.md names the path in it). */
static void
http_conn_keep_path(struct http_conn *c, const char *path)
{
	free(c->path);
	c->path = xstrdup(path);
}

/* The methods evhttp 2.1 knows; any other is refused here with 405 (evhttp says 501). */
static const struct {
	const char		*name;
	enum evhttp_cmd_type	 type;
} http_conn_methods[] = {
	{ "GET", EVHTTP_REQ_GET }, { "POST", EVHTTP_REQ_POST },
	{ "HEAD", EVHTTP_REQ_HEAD }, { "PUT", EVHTTP_REQ_PUT },
	{ "DELETE", EVHTTP_REQ_DELETE }, { "OPTIONS", EVHTTP_REQ_OPTIONS },
	{ "TRACE", EVHTTP_REQ_TRACE }, { "CONNECT", EVHTTP_REQ_CONNECT },
	{ "PATCH", EVHTTP_REQ_PATCH },
};

/* How often key occurs in hdrs, and its first value. */
static int
http_conn_count(struct evkeyvalq *hdrs, const char *key, const char **first)
{
	struct evkeyval	*kv;
	int		 n = 0;

	*first = NULL;
	TAILQ_FOREACH(kv, hdrs, next) {
		if (strcasecmp(kv->key, key) != 0)
			continue;
		if (n++ == 0)
			*first = kv->value;
	}
	return n;
}

/*
 * The framing rules evhttp does not keep (RFC 9112 6.3): every Content-Length the same
 * decimal number, no Transfer-Encoding but "chunked", never both; one of each credential
 * header.
 * @param body set to the body's length, UINT64_MAX for chunked
 * @retval 0, or -1 to refuse
 */
static int
http_conn_framing(struct evkeyvalq *hdrs, uint64_t *body)
{
	struct evkeyval	*kv;
	const char	*cl, *te, *v;
	size_t		 i;
	int		 ncl, nte;

	*body = 0;
	ncl = http_conn_count(hdrs, "Content-Length", &cl);
	nte = http_conn_count(hdrs, "Transfer-Encoding", &te);
	if (http_conn_count(hdrs, "Authorization", &v) > 1 ||
	    http_conn_count(hdrs, "X-Auth-Email", &v) > 1 ||
	    http_conn_count(hdrs, "X-Auth-Key", &v) > 1)
		return -1;
	if (nte > 0) {
		if (ncl > 0 || nte > 1 || strcasecmp(te, "chunked") != 0)
			return -1;
		*body = UINT64_MAX;
		return 0;
	}
	if (ncl == 0)
		return 0;
	TAILQ_FOREACH(kv, hdrs, next) {
		if (strcasecmp(kv->key, "Content-Length") == 0 && strcmp(kv->value, cl) != 0)
			return -1;
	}
	if (*cl == '\0' || strlen(cl) > HTTP_CL_DIGITS)
		return -1;
	for (i = 0; cl[i] != '\0'; i++) {
		if (!isdigit((unsigned char)cl[i]))
			return -1;
		*body = *body * 10 + (uint64_t)(cl[i] - '0');
	}
	return 0;
}

/*
 * Parse the header lines of a block (NUL-terminated lines, the request line gone) into
 * hdrs: "name: value", no blank in the name, no obsolete line folding (RFC 9112 5).
 * @retval 0 or -1
 */
static int
http_conn_headers(char *p, struct evkeyvalq *hdrs)
{
	char	*line, *value, *end;

	while ((line = strsep(&p, "\n")) != NULL) {
		if ((end = strchr(line, '\0')) > line && end[-1] == '\r')
			*--end = '\0';
		if (*line == '\0')
			break;			/* the empty line at the end */
		if ((value = strchr(line, ':')) == NULL || value == line)
			return -1;
		*value++ = '\0';
		if (strpbrk(line, " \t") != NULL)
			return -1;		/* also a folded line: it starts blank */
		value += strspn(value, " \t");
		while (end > value && (end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		if (evhttp_add_header(hdrs, line, value) != 0)
			return -1;
	}
	return 0;
}

/*
 * Check a complete header block (len bytes at buf, modified): NULs, the request line, the
 * header lines and their framing; with a body, also the route and the credential, so
 * that no byte of a body is read for a request that will be refused anyway.
 * @param body set to the body's length (UINT64_MAX: chunked)
 * @retval NULL (hand it to evhttp), or the refusal (*why, *route, c->allow set)
 */
static const struct http_err *
http_conn_check(struct http_conn *c, char *buf, size_t len, uint64_t *body,
    enum http_limit *why, int *route)
{
	struct evkeyvalq	 hdrs;
	struct evhttp_uri	*uri = NULL;
	const struct http_err	*e = NULL;
	const char		*path;
	char			*p = buf, *line, *method, *target;
	size_t			 i;
	int			 type = 0;

	*route = HTTP_R_NONE;
	*why = HTTP_L_FRAMING;
	TAILQ_INIT(&hdrs);
	if (memchr(buf, '\0', len) != NULL)
		return &http_err_framing;
	buf[len] = '\0';
	line = strsep(&p, "\n");
	method = strsep(&line, " ");
	for (i = 0; i < sizeof(http_conn_methods) / sizeof(http_conn_methods[0]); i++) {
		if (strcmp(method, http_conn_methods[i].name) == 0)
			type = (int)http_conn_methods[i].type;
	}
	/* The URI as evhttp parses it (CONNECT's authority form has no path: "/"). */
	if ((target = strsep(&line, " ")) == NULL || line == NULL || *target == '\0' ||
	    (type != EVHTTP_REQ_CONNECT && (uri = evhttp_uri_parse_with_flags(target,
	    EVHTTP_URI_NONCONFORMANT)) == NULL) ||
	    http_conn_headers(p, &hdrs) != 0 || http_conn_framing(&hdrs, body) != 0) {
		e = &http_err_framing;
		goto out;
	}
	if (uri == NULL || (path = evhttp_uri_get_path(uri)) == NULL || *path == '\0')
		path = "/";
	/* evhttp reads no body after HEAD or TRACE: it would parse one as a request. */
	if (*body > 0 && (type == EVHTTP_REQ_HEAD || type == EVHTTP_REQ_TRACE)) {
		e = &http_err_framing;
		goto out;
	}
	if (type == 0 || *body > 0) {
		/* An unknown method matches no row: the same 405 (or 400) as ever. */
		*why = type == 0 ? HTTP_L_METHOD : HTTP_L_EARLY_AUTH;
		e = http_head_check(c->cs->h, type, path, &hdrs, route, c->allow,
		    sizeof(c->allow));
		if (e == &http_err_no_route)
			http_conn_keep_path(c, path);
	}
 out:
	evhttp_clear_headers(&hdrs);
	if (uri != NULL)
		evhttp_uri_free(uri);
	return e;
}

/* Hand over or refuse what c->hold has, request by request, while it has whole heads. */
static void
http_conn_feed(struct http_conn *c, struct evbuffer *in)
{
	const struct http_err	*e;
	enum http_limit		 why;
	uint64_t		 body;
	size_t			 len, n;
	char			*buf;
	int			 r, route;

	while (c->state == HTTP_C_HEAD && evbuffer_get_length(c->hold) > 0) {
		if (!evtimer_pending(c->timer, NULL))
			http_conn_timer_set(c, HTTP_L_HEADER_TIME);
		if ((r = http_conn_scan(c, &why)) == 0)
			return;
		if (r < 0) {
			http_conn_refuse_req(c, in, why, &http_err_too_large, HTTP_R_NONE);
			return;
		}
		len = c->scan;
		buf = xmalloc(len + 1);
		evbuffer_copyout(c->hold, buf, len);
		e = http_conn_check(c, buf, len, &body, &why, &route);
		free(buf);
		c->scan = c->lines = 0;
		if (e != NULL) {
			http_conn_refuse_req(c, in, why, e, route);
			return;
		}
		evtimer_del(c->timer);
		c->given++;
		http_conn_give(c, in, len);
		if (body == UINT64_MAX) {
			/* Chunked: no count to follow; nothing after it on this connection. */
			c->state = HTTP_C_PASS;
			c->close_seq = c->given;
			http_conn_timer_set(c, HTTP_L_BODY_TIME);
			http_conn_give(c, in, evbuffer_get_length(c->hold));
			return;
		}
		if (body == 0)
			continue;
		n = evbuffer_get_length(c->hold);
		if (n > body)
			n = (size_t)body;
		http_conn_give(c, in, n);
		if ((c->body_left = body - n) > 0) {
			c->state = HTTP_C_BODY;
			http_conn_timer_set(c, HTTP_L_BODY_TIME);
			return;
		}
	}
}

/* Bytes arrived on c (the last info->n_added of in), before evhttp sees them. */
static void
http_conn_input(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg)
{
	struct http_conn	*c = arg;
	size_t			 n = info->n_added, extra;

	if (c->feeding || n == 0)
		return;
	switch (c->state) {
	case HTTP_C_NEW:
		http_conn_take_tail(c, in, n);	/* admission feeds it */
		break;
	case HTTP_C_DROP:
		http_conn_take_tail(c, in, n);
		evbuffer_drain(c->hold, evbuffer_get_length(c->hold));
		break;
	case HTTP_C_PASS:
		break;
	case HTTP_C_BODY:
		if (n < c->body_left) {
			c->body_left -= n;
			break;
		}
		extra = n - (size_t)c->body_left;
		c->body_left = 0;
		evtimer_del(c->timer);
		c->state = HTTP_C_HEAD;
		if (extra > 0) {
			http_conn_take_tail(c, in, extra);
			http_conn_feed(c, in);
		}
		break;
	case HTTP_C_HEAD:
		http_conn_take_tail(c, in, n);
		http_conn_feed(c, in);
		break;
	}
}

struct bufferevent *
http_conns_watch(struct http_conns *cs, struct bufferevent *bev)
{
	struct http_conn	*c;

	if (bev == NULL)
		return NULL;
	c = xcalloc(1, sizeof(*c));
	c->cs = cs;
	c->bev = bev;
	c->fd = -1;
	bufferevent_incref(bev);
	if ((c->hold = evbuffer_new()) == NULL ||
	    (c->timer = evtimer_new(cs->base, http_conn_timer, c)) == NULL ||
	    (c->incb = evbuffer_add_cb(bufferevent_get_input(bev), http_conn_input,
	    c)) == NULL)
		fatalx("http_conns_watch: out of memory");
	TAILQ_INSERT_TAIL(&cs->list, c, entry);
	/* Runs once evhttp has the connection, before the loop polls its socket. */
	event_active(c->timer, EV_TIMEOUT, 1);
	return bev;
}

struct http_conn *
http_conn_of(struct http_conns *cs, struct evhttp_request *req)
{
	struct evhttp_connection	*evcon;
	struct http_conn		*c;
	int				 fd;

	if ((evcon = evhttp_request_get_connection(req)) == NULL ||
	    (fd = bufferevent_getfd(evhttp_connection_get_bufferevent(evcon))) < 0 ||
	    (size_t)fd >= cs->nbyfd || (c = cs->byfd[fd]) == NULL || c->evcon != evcon)
		return NULL;
	return c;
}

struct http_conn *
http_conn_dispatched(struct http_conns *cs, struct evhttp_request *req)
{
	struct http_conn	*c;

	if ((c = http_conn_of(cs, req)) == NULL)
		return NULL;
	c->reached++;
	if (c->state == HTTP_C_PASS && c->reached == c->given)
		evtimer_del(c->timer);		/* the chunked body is in */
	return c;
}

const struct http_err *
http_conn_refused(const struct http_conn *c, int *route, const char **allow,
    const char **path)
{
	if (c == NULL || c->refused == NULL || c->reached != c->refused_seq)
		return NULL;
	*route = c->refused_route;
	*allow = c->allow;
	*path = c->path != NULL ? c->path : "/";
	return c->refused;
}

int
http_conn_closing(const struct http_conn *c)
{
	return c != NULL && c->close_seq != 0 && c->reached >= c->close_seq;
}

void
http_conn_set_pending(struct http_conn *c, void (*gone)(void *), void *arg)
{
	if (c == NULL)
		return;
	c->gone = gone;
	c->gone_arg = arg;
}

void
http_conns_free(struct http_conns *cs)
{
	if (cs == NULL)
		return;
	while (!TAILQ_EMPTY(&cs->list))
		http_conn_free(TAILQ_FIRST(&cs->list));
	if (cs->resume != NULL)
		event_free(cs->resume);
	if (http_conns_self == cs)
		http_conns_self = NULL;
	free(cs->byfd);
	free(cs);
}
