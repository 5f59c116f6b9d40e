/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * http-compat.c: the libevent 2.1 workaround for evhttp's own HTML error pages: they are
 * rewritten into the JSON envelope, and their connections linger so that the client reads
 * them. Delete this file (and http_compat_* in http.c and http-tls.c) when libevent 2.2,
 * whose evhttp_set_errorcb() and evhttp_set_newreqcb() do this, is the oldest supported.
 */
#include "config.h"

#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "log.h"
#include "xmalloc.h"
#include "json.h"
#include "http-int.h"
#include "http-compat.h"
#include "http-metrics.h"

/* The tail and the start of the body of evhttp's own error pages (evhttp_send_error()). */
#define HTTP_PAGE_TAIL		"</BODY></HTML>\n"
#define HTTP_PAGE_HEAD		"\r\n\r\n<HTML><HEAD>\n<TITLE>"
#define HTTP_PAGE_HEADERS_MAX	1024	/* evhttp's header lines of such a page */
#define HTTP_LINGER_S		5		/* reading what follows such a page, at most */
#define HTTP_LINGER_MAX		(64 * 1024 * 1024)	/* ... and this much */

/*
 * The socket of a connection that evhttp ends after one of its pages, kept open (a dup) to
 * read and drop what the client still sends: closed with unread data, it would be reset,
 * and the client could lose the answer (evhttp lingers only for Content-Length bodies).
 */
struct http_linger {
	TAILQ_ENTRY(http_linger) entry;
	struct bufferevent	*bev;		/* until the answer is written, then NULL */
	struct event		*ev;		/* a timer until then, then fd's reader */
	int			 fd;
	size_t			 left;
};
TAILQ_HEAD(http_lingers, http_linger);
/* One per process: the callbacks of evhttp's connection buffers get only their bufferevent. */
static struct {
	struct event_base	*base;
	struct http_metrics	*m;
	struct http_lingers	 lingers;
} http_compat;

static void
http_linger_free(struct http_linger *l)
{
	TAILQ_REMOVE(&http_compat.lingers, l, entry);
	if (l->ev != NULL)
		event_free(l->ev);
	close(l->fd);
	free(l);
}

/* Drop what arrives on a lingering socket; close it at EOF, on error, or when time is up. */
static void
http_linger_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_linger	*l = arg;
	char			 buf[16384];
	ssize_t			 n;

	if (what & EV_TIMEOUT) {
		http_linger_free(l);
		return;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		if ((size_t)n >= l->left) {
			http_linger_free(l);
			return;
		}
		l->left -= (size_t)n;
	}
	if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
		http_linger_free(l);
}

/*
 * Start lingering on bev's socket (best effort: on failure, evhttp's plain close). Until
 * the answer is written only a timer runs: reading the socket under the bufferevent, which
 * still reads it, would steal bytes from it, and with TLS parts of records, which breaks
 * the session before the answer is out.
 */
static void
http_linger_start(struct bufferevent *bev)
{
	struct http_linger	*l;
	struct timeval		 tv = { HTTP_LINGER_S, 0 };
	int			 fd;

	if ((fd = bufferevent_getfd(bev)) == -1 || (fd = dup(fd)) == -1)
		return;
	l = xcalloc(1, sizeof(*l));
	l->bev = bev;
	l->fd = fd;
	l->left = HTTP_LINGER_MAX;
	if ((l->ev = evtimer_new(http_compat.base, http_linger_cb, l)) == NULL ||
	    evtimer_add(l->ev, &tv) != 0) {
		if (l->ev != NULL)
			event_free(l->ev);
		close(fd);
		free(l);
		return;
	}
	TAILQ_INSERT_TAIL(&http_compat.lingers, l, entry);
}

/*
 * bev's output has just been written out: if its connection lingers, its answer is sent,
 * and the client may see the end of it (evhttp closes its own descriptor next); from now
 * on what the client still sends is read and dropped.
 */
static void
http_linger_flushed(struct bufferevent *bev)
{
	struct http_linger	*l, *next;
	struct timeval		 tv = { HTTP_LINGER_S, 0 };

	for (l = TAILQ_FIRST(&http_compat.lingers); l != NULL; l = next) {
		next = TAILQ_NEXT(l, entry);
		if (l->bev != bev)
			continue;
		l->bev = NULL;
		shutdown(l->fd, SHUT_WR);
		event_free(l->ev);
		if ((l->ev = event_new(http_compat.base, l->fd, EV_READ | EV_PERSIST, http_linger_cb,
		    l)) == NULL || event_add(l->ev, &tv) != 0)
			http_linger_free(l);
	}
}

/*
 * XXX libevent 2.1 answers some requests by itself with an HTML page, before any callback
 * of ours runs: 413 for a body over the size limit (Content-Length or chunked), 400 for a
 * malformed request line or header block, 417 for an unknown Expect. It has no hook to
 * change that nor one before the body is read (2.2 has evhttp_set_errorcb and
 * evhttp_set_newreqcb). So each connection's output buffer is watched: when such a page
 * has just been queued, and before a byte of it is written, it is replaced by the JSON
 * envelope (413 becomes API.md's 400/1400). evhttp sends these pages with Connection:
 * close, last on their connection; their header lines are evhttp's own, so the last
 * "HTTP/1." before the page body starts it. The connection then lingers (http_linger_*). Our own edits of the buffer call us again: harmless, as
 * they neither end with such a page nor empty it by a write.
 */
static void
http_page_cb(struct evbuffer *out, const struct evbuffer_cb_info *info, void *arg)
{
	static const char	 tail[] = HTTP_PAGE_TAIL, head[] = HTTP_PAGE_HEAD;
	struct bufferevent	*bev = arg;
	const struct http_err	*e;
	struct evbuffer		*prefix = NULL;
	struct evbuffer_ptr	 pos, page, found;
	char			 buf[sizeof(tail)], line[16], *body = NULL;
	size_t			 len, start;
	ev_ssize_t		 n;
	int			 status, frozen = 0;

	len = evbuffer_get_length(out);
	if (info->n_deleted > 0 && len == 0 && !TAILQ_EMPTY(&http_compat.lingers)) {
		http_linger_flushed(bev);
		return;
	}
	if (info->n_added == 0 || len < sizeof(tail) - 1 ||
	    evbuffer_ptr_set(out, &pos, len - (sizeof(tail) - 1), EVBUFFER_PTR_SET) != 0)
		return;
	/*
	 * A socket bufferevent keeps the start of its output frozen between writes (it thaws
	 * it around each one), which fails the copies and the drain below: thaw it meanwhile.
	 */
	if ((n = evbuffer_copyout_from(out, &pos, buf, sizeof(tail) - 1)) == -1) {
		evbuffer_unfreeze(out, 1);
		frozen = 1;
		n = evbuffer_copyout_from(out, &pos, buf, sizeof(tail) - 1);
	}
	if (n != (ev_ssize_t)(sizeof(tail) - 1) || memcmp(buf, tail, sizeof(tail) - 1) != 0)
		goto out;
	page = evbuffer_search(out, head, sizeof(head) - 1, NULL);
	if (page.pos == -1)
		goto out;
	if (evbuffer_ptr_set(out, &pos, page.pos > HTTP_PAGE_HEADERS_MAX ?
	    (size_t)page.pos - HTTP_PAGE_HEADERS_MAX : 0, EVBUFFER_PTR_SET) != 0)
		goto out;
	start = len;
	for (;;) {
		found = evbuffer_search_range(out, "HTTP/1.", 7, &pos, &page);
		if (found.pos == -1)
			break;
		start = (size_t)found.pos;
		if (evbuffer_ptr_set(out, &pos, start + 1, EVBUFFER_PTR_SET) != 0)
			break;
	}
	if (start == len || evbuffer_ptr_set(out, &pos, start, EVBUFFER_PTR_SET) != 0 ||
	    evbuffer_copyout_from(out, &pos, line, 12) != 12)
		goto out;
	line[12] = '\0';		/* "HTTP/1.1 413" */
	status = atoi(line + 9);
	if (status == 413)
		e = &http_err_body;
	else if (status >= 500)
		e = &http_err_internal;
	else
		e = &http_err_headers;
	if (json_reply_error(e->code, e->message, 0, NULL, &body) != 0 ||
	    (prefix = evbuffer_new()) == NULL)
		goto out;	/* out of memory: the HTML goes out */

	/* Keep the earlier answers not yet written, drop the page. */
	evbuffer_remove_buffer(out, prefix, start);
	evbuffer_drain(out, evbuffer_get_length(out));
	evbuffer_add_buffer(out, prefix);
	status = status == 413 ? e->status : status >= 500 ? 500 : status;
	evbuffer_add_printf(out, "HTTP/1.%c %d %s\r\nContent-Type: application/json\r\n"
	    "%sConnection: close\r\nContent-Length: %zu\r\n\r\n%s", line[7], status,
	    status == 400 ? "Bad Request" : status == 417 ? "Expectation Failed" :
	    status == 500 ? "Internal Server Error" : "Error",
	    status < 500 ? "x-should-retry: false\r\n" : "", strlen(body), body);
	log_debug("evhttp refused a request (%s): answered %d/%d", line + 9, status,
	    e->code);
	http_metrics_request(http_compat.m, HTTP_R_NONE, status, http_now());
	http_linger_start(bev);
 out:
	if (frozen)
		evbuffer_freeze(out, 1);
	if (prefix != NULL)
		evbuffer_free(prefix);
	free(body);
}


void
http_compat_init(struct event_base *base, struct http_metrics *m)
{
	http_compat.base = base;
	http_compat.m = m;
	TAILQ_INIT(&http_compat.lingers);
}

int
http_compat_watch(struct bufferevent *bev)
{
	if (evbuffer_add_cb(bufferevent_get_output(bev), http_page_cb, bev) == NULL)
		return -1;
	return 0;
}

void
http_compat_linger(struct bufferevent *bev)
{
	http_linger_start(bev);
}

void
http_compat_uninit(void)
{
	while (!TAILQ_EMPTY(&http_compat.lingers))
		http_linger_free(TAILQ_FIRST(&http_compat.lingers));
	memset(&http_compat, 0, sizeof(http_compat));
}
