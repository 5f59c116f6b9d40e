/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * conn.c: the synchronous client side of the daemon protocol (libkeycustody): connect,
 * frame, match responses to requests by id.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kc-err.h"
#include "kc-proto.h"
#include "keycustody.h"

struct kcc {
	int		 fd;
	uint64_t	 next_id;
};

static int	kcc_write_all(int, const uint8_t *, size_t, int64_t);
static int	kcc_read_all(int, uint8_t *, size_t, int64_t);

int
kcc_open(const char *path, struct kcc **cp, char **cause)
{
	struct sockaddr_un	 sun;
	struct kcc		*c;
	int			 fd;

	*cp = NULL;
	if (path == NULL && (path = getenv("KEYCUSTODY_SOCKET")) == NULL)
		path = KC_DEFAULT_SOCKET;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		if (cause != NULL && asprintf(cause, "socket path too long: %s", path) == -1)
			*cause = NULL;
		return KC_ERR_INVALID;
	}
	strncpy(sun.sun_path, path, sizeof(sun.sun_path) - 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		if (cause != NULL && asprintf(cause, "connect to %s: %s", path,
		    strerror(errno)) == -1)
			*cause = NULL;
		if (fd != -1)
			close(fd);
		return KC_ERR_IO;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		close(fd);
		return KC_ERR_NOMEM;
	}
	c->fd = fd;
	c->next_id = 1;
	*cp = c;
	return 0;
}

void
kcc_close(struct kcc *c)
{
	if (c == NULL)
		return;
	close(c->fd);
	free(c);
}

int
kcc_fd(const struct kcc *c)
{
	return c->fd;
}

void
kcc_abandon(struct kcc *c)
{
	free(c);
}

/* Milliseconds left until deadline (a CLOCK_MONOTONIC ms value); -1 when none. */
static int
kcc_remaining(int64_t deadline)
{
	struct timespec	 ts;
	int64_t		 now;

	if (deadline == 0)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	return now >= deadline ? 0 : (int)(deadline - now);
}

static int64_t
kcc_deadline(int timeout_ms)
{
	struct timespec	 ts;

	if (timeout_ms <= 0)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + timeout_ms;
}

static int
kcc_wait(int fd, short events, int64_t deadline)
{
	struct pollfd	 pfd = { .fd = fd, .events = events };
	int		 n, left;

	for (;;) {
		left = kcc_remaining(deadline);
		if (left == 0)
			return KC_ERR_TIMEOUT;
		n = poll(&pfd, 1, left);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return KC_ERR_IO;
		if (n == 0)
			return KC_ERR_TIMEOUT;
		return 0;
	}
}

static int
kcc_write_all(int fd, const uint8_t *buf, size_t len, int64_t deadline)
{
	ssize_t	 n;
	int	 r;

	while (len > 0) {
		if ((r = kcc_wait(fd, POLLOUT, deadline)) != 0)
			return r;
		n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n == -1)
			return errno == EPIPE ? KC_ERR_CLOSED : KC_ERR_IO;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
kcc_read_all(int fd, uint8_t *buf, size_t len, int64_t deadline)
{
	ssize_t	 n;
	int	 r;

	while (len > 0) {
		if ((r = kcc_wait(fd, POLLIN, deadline)) != 0)
			return r;
		n = read(fd, buf, len);
		if (n == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n == -1)
			return KC_ERR_IO;
		if (n == 0)
			return KC_ERR_CLOSED;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int
kcc_call(struct kcc *c, Keycustody__Request *req, int timeout_ms,
    Keycustody__Response **respp)
{
	Keycustody__Response	*resp = NULL;
	uint8_t			*frame = NULL, *body = NULL, hdr[KC_FRAME_HDR];
	size_t			 len, blen;
	int64_t			 deadline = kcc_deadline(timeout_ms);
	int			 r;

	*respp = NULL;
	req->version = KC_PROTO_VERSION;
	req->id = c->next_id++;
	if ((r = proto_pack_request(req, &frame, &len)) != 0 ||
	    (r = kcc_write_all(c->fd, frame, len, deadline)) != 0)
		goto out;
	/* Responses to other ids cannot arrive: this connection has one call in flight. */
	if ((r = kcc_read_all(c->fd, hdr, sizeof(hdr), deadline)) != 0 ||
	    (r = proto_frame_len(hdr, &blen)) != 0)
		goto out;
	if ((body = malloc(blen ? blen : 1)) == NULL) {
		r = KC_ERR_NOMEM;
		goto out;
	}
	if ((r = kcc_read_all(c->fd, body, blen, deadline)) != 0 ||
	    (r = proto_unpack_response(body, blen, &resp)) != 0)
		goto out;
	if (resp->id != req->id) {
		r = KC_ERR_BAD_MESSAGE;
		goto out;
	}
	*respp = resp;
	resp = NULL;
 out:
	if (resp != NULL)
		keycustody__response__free_unpacked(resp, NULL);
	free(frame);
	free(body);
	return r;
}
