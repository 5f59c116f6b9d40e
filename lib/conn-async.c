/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * conn-async.c: the asynchronous side of libkeycustody: a small pool of connections to the
 * daemon on a libevent loop, request ids, pipelining, per-call deadlines and reconnection.
 */
#include "config.h"

#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "arena.h"
#include "kc-err.h"
#include "kc-proto.h"
#include "keycustody.h"
#include "log.h"

#define KCC_BACKOFF_MIN_MS	100
#define KCC_BACKOFF_MAX_MS	5000

enum kcc_state {
	KCC_DOWN,
	KCC_UP
};

struct kcc_aconn;

struct kcc_call {
	TAILQ_ENTRY(kcc_call)	 entry;
	struct kcc_aconn	*conn;
	uint64_t		 id;
	kcc_async_cb		 cb;
	void			*arg;
	struct event		*timer;
};
TAILQ_HEAD(kcc_calls, kcc_call);

struct kcc_aconn {
	struct kcc_async	*pool;
	int			 idx;
	enum kcc_state		 state;
	struct bufferevent	*bev;
	struct event		*retry;
	int			 backoff_ms;
	int			 warned;	/* logged this outage already */
	struct kcc_calls	 calls;
	size_t			 ncalls;
};

struct kcc_async {
	struct event_base	*base;
	struct sockaddr_un	 sun;
	struct kcc_aconn	*conns;
	int			 nconn;
	int			 timeout_ms;
	size_t			 max_pending;
	size_t			 npending;
	uint64_t		 next_id;
	int			 freeing;
	struct kc_arena		 arena;		/* the response being dispatched */
};

static void	kcc_async_connect(struct kcc_aconn *);

/* Complete a call (already unlinked) with r/resp and free it. */
static void
kcc_call_finish(struct kcc_call *call, int r, Keycustody__Response *resp)
{
	kcc_async_cb	 cb = call->cb;
	void		*arg = call->arg;

	if (call->timer != NULL)
		event_free(call->timer);
	free(call);
	cb(r, resp, arg);
}

static void
kcc_call_unlink(struct kcc_call *call)
{
	struct kcc_aconn	*c = call->conn;

	TAILQ_REMOVE(&c->calls, call, entry);
	c->ncalls--;
	c->pool->npending--;
}

static void
kcc_async_schedule(struct kcc_aconn *c)
{
	struct timeval	 tv;

	if (c->pool->freeing)
		return;
	tv.tv_sec = c->backoff_ms / 1000;
	tv.tv_usec = (c->backoff_ms % 1000) * 1000;
	event_add(c->retry, &tv);
	c->backoff_ms *= 2;
	if (c->backoff_ms > KCC_BACKOFF_MAX_MS)
		c->backoff_ms = KCC_BACKOFF_MAX_MS;
}

/* The one teardown path of a connection: fail its calls with r, reconnect later. */
static void
kcc_async_lost(struct kcc_aconn *c, int r)
{
	struct kcc_calls	 calls;
	struct kcc_call		*call;

	if (c->bev != NULL) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	if (c->state == KCC_UP) {
		log_warnx("daemon connection %d lost: %s", c->idx, kc_strerror(r));
		c->backoff_ms = KCC_BACKOFF_MIN_MS;
		c->warned = 1;
	}
	c->state = KCC_DOWN;
	TAILQ_INIT(&calls);
	TAILQ_CONCAT(&calls, &c->calls, entry);
	c->pool->npending -= c->ncalls;
	c->ncalls = 0;
	kcc_async_schedule(c);
	while ((call = TAILQ_FIRST(&calls)) != NULL) {
		TAILQ_REMOVE(&calls, call, entry);
		kcc_call_finish(call, r, NULL);
	}
}

static void
kcc_async_dispatch(struct kcc_aconn *c, Keycustody__Response *resp)
{
	struct kcc_call	*call;

	TAILQ_FOREACH(call, &c->calls, entry) {
		if (call->id == resp->id)
			break;
	}
	if (call == NULL) {
		/* The call timed out already. */
		log_debug("daemon connection %d: late response %llu dropped", c->idx,
		    (unsigned long long)resp->id);
		return;
	}
	kcc_call_unlink(call);
	kcc_call_finish(call, 0, resp);
}

static void
kcc_async_read_cb(struct bufferevent *bev, void *arg)
{
	struct kcc_aconn	*c = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	Keycustody__Response	*resp;
	uint8_t			 hdr[KC_FRAME_HDR], *body;
	size_t			 len;
	int			 r;

	while (c->bev == bev && evbuffer_get_length(in) >= KC_FRAME_HDR) {
		evbuffer_copyout(in, hdr, sizeof(hdr));
		if ((r = proto_frame_len(hdr, &len)) != 0) {
			log_warnx("daemon connection %d: frame too large", c->idx);
			kcc_async_lost(c, KC_ERR_BAD_MESSAGE);
			return;
		}
		if (evbuffer_get_length(in) < KC_FRAME_HDR + len) {
			bufferevent_setwatermark(bev, EV_READ, KC_FRAME_HDR + len, 0);
			return;
		}
		bufferevent_setwatermark(bev, EV_READ, 0, 0);
		if ((body = evbuffer_pullup(in, KC_FRAME_HDR + len)) == NULL) {
			kcc_async_lost(c, KC_ERR_NOMEM);
			return;
		}
		r = proto_unpack_response_arena(body + KC_FRAME_HDR, len, &c->pool->arena,
		    &resp);
		evbuffer_drain(in, KC_FRAME_HDR + len);
		if (r != 0) {
			kc_arena_reset(&c->pool->arena);
			log_warnx("daemon connection %d: bad response: %s", c->idx,
			    kc_strerror(r));
			kcc_async_lost(c, KC_ERR_BAD_MESSAGE);
			return;
		}
		/* The callback is done with resp when it returns (keycustody.h). */
		kcc_async_dispatch(c, resp);
		kc_arena_reset(&c->pool->arena);
	}
}

static void
kcc_async_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct kcc_aconn	*c = arg;

	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		kcc_async_lost(c, KC_ERR_CLOSED);
}

static void
kcc_async_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	kcc_async_connect(arg);
}

/* Connect c; a Unix socket connects at once or fails, so no connecting state. */
static void
kcc_async_connect(struct kcc_aconn *c)
{
	struct kcc_async	*a = c->pool;
	int			 fd;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1 || connect(fd, (struct sockaddr *)&a->sun, sizeof(a->sun)) == -1) {
		if (!c->warned)
			log_warn("daemon connection %d: %s", c->idx, a->sun.sun_path);
		c->warned = 1;
		if (fd != -1)
			close(fd);
		kcc_async_schedule(c);
		return;
	}
	if ((c->bev = bufferevent_socket_new(a->base, fd, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		close(fd);
		kcc_async_schedule(c);
		return;
	}
	bufferevent_setcb(c->bev, kcc_async_read_cb, NULL, kcc_async_event_cb, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->state = KCC_UP;
	c->backoff_ms = KCC_BACKOFF_MIN_MS;
	if (c->warned)
		log_info("daemon connection %d up", c->idx);
	c->warned = 0;
}

struct kcc_async *
kcc_async_new(struct event_base *base, const char *path, int nconn, int timeout_ms,
    size_t max_pending)
{
	struct kcc_async	*a;
	int			 i;

	if (path == NULL && (path = getenv("KEYCUSTODY_SOCKET")) == NULL)
		path = KC_DEFAULT_SOCKET;
	if (nconn < 1 || strlen(path) >= sizeof(a->sun.sun_path))
		return NULL;
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	a->base = base;
	a->sun.sun_family = AF_UNIX;
	memcpy(a->sun.sun_path, path, strlen(path) + 1);
	a->timeout_ms = timeout_ms;
	a->max_pending = max_pending;
	a->next_id = 1;
	kc_arena_init(&a->arena);
	if ((a->conns = calloc((size_t)nconn, sizeof(*a->conns))) == NULL) {
		free(a);
		return NULL;
	}
	a->nconn = nconn;
	for (i = 0; i < nconn; i++) {
		a->conns[i].pool = a;
		a->conns[i].idx = i;
		a->conns[i].backoff_ms = KCC_BACKOFF_MIN_MS;
		TAILQ_INIT(&a->conns[i].calls);
		if ((a->conns[i].retry = evtimer_new(base, kcc_async_retry_cb,
		    &a->conns[i])) == NULL) {
			a->nconn = i;
			kcc_async_free(a);
			return NULL;
		}
	}
	for (i = 0; i < nconn; i++)
		kcc_async_connect(&a->conns[i]);
	return a;
}

void
kcc_async_free(struct kcc_async *a)
{
	int	 i;

	if (a == NULL)
		return;
	a->freeing = 1;
	for (i = 0; i < a->nconn; i++) {
		event_free(a->conns[i].retry);
		a->conns[i].retry = NULL;
		kcc_async_lost(&a->conns[i], KC_ERR_CLOSED);
	}
	free(a->conns);
	kc_arena_uninit(&a->arena);
	free(a);
}

static void
kcc_async_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct kcc_call	*call = arg;

	log_warnx("daemon call %llu timed out", (unsigned long long)call->id);
	kcc_call_unlink(call);
	kcc_call_finish(call, KC_ERR_TIMEOUT, NULL);
}

int
kcc_async_call(struct kcc_async *a, Keycustody__Request *req, kcc_async_cb cb, void *arg)
{
	return kcc_async_call_timeout(a, req, a->timeout_ms, cb, arg);
}

int
kcc_async_call_timeout(struct kcc_async *a, Keycustody__Request *req, int timeout_ms,
    kcc_async_cb cb, void *arg)
{
	struct kcc_aconn	*c = NULL;
	struct kcc_call		*call;
	struct timeval		 tv;
	uint8_t			*frame = NULL;
	size_t			 len;
	int			 i, r;

	if (a->npending >= a->max_pending)
		return KC_ERR_UNAVAILABLE;
	for (i = 0; i < a->nconn; i++) {
		if (a->conns[i].state == KCC_UP &&
		    (c == NULL || a->conns[i].ncalls < c->ncalls))
			c = &a->conns[i];
	}
	if (c == NULL)
		return KC_ERR_UNAVAILABLE;
	req->version = KC_PROTO_VERSION;
	req->id = a->next_id++;
	if ((r = proto_pack_request(req, &frame, &len)) != 0)
		return r;
	if ((call = calloc(1, sizeof(*call))) == NULL) {
		free(frame);
		return KC_ERR_NOMEM;
	}
	call->conn = c;
	call->id = req->id;
	call->cb = cb;
	call->arg = arg;
	if (timeout_ms > 0) {
		if ((call->timer = evtimer_new(a->base, kcc_async_timeout_cb,
		    call)) == NULL) {
			free(call);
			free(frame);
			return KC_ERR_NOMEM;
		}
		tv.tv_sec = timeout_ms / 1000;
		tv.tv_usec = (timeout_ms % 1000) * 1000;
		evtimer_add(call->timer, &tv);
	}
	if (bufferevent_write(c->bev, frame, len) != 0) {
		free(frame);
		if (call->timer != NULL)
			event_free(call->timer);
		free(call);
		return KC_ERR_NOMEM;
	}
	free(frame);
	TAILQ_INSERT_TAIL(&c->calls, call, entry);
	c->ncalls++;
	a->npending++;
	return 0;
}

int
kcc_async_connected(const struct kcc_async *a)
{
	int	 i, n = 0;

	for (i = 0; i < a->nconn; i++)
		n += a->conns[i].state == KCC_UP;
	return n;
}

size_t
kcc_async_pending(const struct kcc_async *a)
{
	return a->npending;
}
