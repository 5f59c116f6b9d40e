/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * control.c: the daemon's Unix socket: setup, accept with backoff, peer credentials, and the
 * per-connection framing. One struct conn per client owns its bufferevent and is torn down
 * on one path (conn_lost); replies of jobs still running hold a reference to it.
 */
#include "config.h"

#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "conf.h"
#include "control.h"
#include "dispatch.h"
#include "kc-err.h"
#include "kc-proto.h"
#include "kcd.h"
#include "log.h"
#include "peer.h"
#include "sign.h"
#include "xmalloc.h"

/*
 * Per connection, reading pauses while connection_requests requests are in flight, or while
 * more than connection_unread reply bytes wait for the peer to read them; reading resumes
 * once those are half read. A peer that stays over connection_unread for
 * connection_unread_timeout seconds is cut off: its replies are not the daemon's to keep.
 */
struct conn {
	TAILQ_ENTRY(conn)	 entry;
	struct control		*ctl;
	struct bufferevent	*bev;
	struct event		*unread_ev;	/* the cut-off while over the unread cap */
	uint64_t		 serial;
	struct peer		 peer;
	struct sign_scope	 scope;		/* peer.scope points here when it has one */
	unsigned int		 refs;		/* the connection itself + one per job */
	unsigned int		 inflight;
	int			 over;		/* unread replies over the cap: not reading */
	int			 lost;
	int			 closing;	/* close once the output is flushed */
};
TAILQ_HEAD(connq, conn);

/*
 * One configured role grant: a uid, or a group (its gid and its members' uids). A signer
 * grant (role PEER_ROLE_SIGNER) has its scope; it adds to the other roles, never replaces.
 */
struct role_rule {
	enum peer_role		 role;
	int			 is_group;
	uid_t			 uid;
	gid_t			 gid;
	uid_t			*members;
	size_t			 nmembers;
	struct sign_scope	 scope;
};

struct control {
	struct kcd		*kcd;
	struct role_rule	*rules;
	size_t			 nrules;
	struct evconnlistener	*listener;
	struct event		*resume_ev;	/* accept backoff */
	char			*path;
	struct connq		 conns;
	unsigned int		 nconns;
	unsigned int		 max_conns;
	unsigned int		 role_conns[PEER_ROLE_ADMIN + 1];	/* open, by role */
	unsigned int		 role_max[PEER_ROLE_ADMIN + 1];		/* slots a role may take */
	unsigned int		 conn_requests;
	size_t			 conn_unread;
	struct timeval		 unread_timeout;
	unsigned int		 log_rate;
	struct peer_loglimit	 log_norole;	/* refusals: no role */
	struct peer_loglimit	 log_full;	/* refusals: no slot for the role */
	struct peer_loglimit	 log_cutoff;	/* peers cut off */
	uint64_t		 refused;
	uint64_t		 cut_off;
	unsigned int		 inflight;
	uint64_t		 serial;
};

static void	control_accept(struct evconnlistener *, evutil_socket_t, struct sockaddr *,
		    int, void *);
static void	control_accept_error(struct evconnlistener *, void *);
static void	control_resume(evutil_socket_t, short, void *);
static void	conn_read(struct bufferevent *, void *);
static void	conn_write(struct bufferevent *, void *);
static void	conn_event(struct bufferevent *, short, void *);
static void	conn_lost(struct conn *);
static void	conn_unread_expired(evutil_socket_t, short, void *);
static void	conn_resume(struct conn *);
static void	conn_unref(struct conn *);
static void	conn_reply(void *, uint8_t *, size_t);
static void	conn_frame_free(const void *, size_t, void *);
static void	conn_send(struct conn *, uint8_t *, size_t);

static void
control_add_rule(struct control *c, enum peer_role role, int is_group, uid_t uid,
    gid_t gid)
{
	struct role_rule	*r;

	c->rules = xreallocarray(c->rules, c->nrules + 1, sizeof(*c->rules));
	r = &c->rules[c->nrules++];
	memset(r, 0, sizeof(*r));
	r->role = role;
	r->is_group = is_group;
	r->uid = uid;
	r->gid = gid;
}

/*
 * Resolve one role grant: "name" or a uid, or "@group" / "@gid". Group members are looked
 * up now, at start-up, so that accepting a connection never waits on NSS.
 */
static int
control_resolve(struct control *c, enum peer_role role, const char *spec, char **cause)
{
	struct passwd	*pw;
	struct group	*gr;
	struct role_rule *r;
	unsigned long	 ul;
	char		*end;
	size_t		 i;

	errno = 0;
	if (*spec == '@') {
		ul = strtoul(spec + 1, &end, 10);
		gr = spec[1] != '\0' && *end == '\0' ? getgrgid((gid_t)ul) : getgrnam(spec + 1);
		if (gr == NULL) {
			xasprintf(cause, "%s: unknown group %s", peer_role_name(role), spec + 1);
			return KC_ERR_INVALID;
		}
		control_add_rule(c, role, 1, 0, gr->gr_gid);
		r = &c->rules[c->nrules - 1];
		for (i = 0; gr->gr_mem[i] != NULL; i++)
			if ((pw = getpwnam(gr->gr_mem[i])) != NULL) {
				r->members = xreallocarray(r->members, r->nmembers + 1,
				    sizeof(*r->members));
				r->members[r->nmembers++] = pw->pw_uid;
			}
		return 0;
	}
	ul = strtoul(spec, &end, 10);
	if (*spec != '\0' && *end == '\0') {
		control_add_rule(c, role, 0, (uid_t)ul, 0);
		return 0;
	}
	if ((pw = getpwnam(spec)) == NULL) {
		xasprintf(cause, "%s: unknown user %s", peer_role_name(role), spec);
		return KC_ERR_INVALID;
	}
	control_add_rule(c, role, 0, pw->pw_uid, 0);
	return 0;
}

/*
 * A signer grant: "<principal> <scope item>...", the principal resolved as for the other
 * roles (control_resolve()), the scope by sign_scope_parse().
 */
static int
control_resolve_signer(struct control *c, const char *line, char **cause)
{
	struct sign_scope	 scope;
	size_t			 len = strcspn(line, " \t"), before = c->nrules, i;
	char			*who;
	int			 r;

	if ((r = sign_scope_parse(line + len, &scope, cause)) != 0)
		return r;
	who = xcalloc(1, len + 1);
	memcpy(who, line, len);
	r = control_resolve(c, PEER_ROLE_SIGNER, who, cause);
	free(who);
	/* One rule, or none on an error (the caller frees what was made). */
	for (i = before; r == 0 && i < c->nrules; i++)
		sign_scope_merge(&c->rules[i].scope, &scope);
	sign_scope_free(&scope);
	return r;
}

static bool
control_rule_matches(const struct role_rule *r, uid_t uid, gid_t gid)
{
	size_t	 j;

	if (!r->is_group)
		return r->uid == uid;
	if (r->gid == gid)
		return true;
	for (j = 0; j < r->nmembers; j++)
		if (r->members[j] == uid)
			return true;
	return false;
}

/*
 * The highest role that any rule grants this peer, and in scope the union of its signer
 * grants' scopes. A peer with signer grants alone has the signer role.
 */
static enum peer_role
control_peer_role(const struct control *c, uid_t uid, gid_t gid, struct sign_scope *scope)
{
	const struct role_rule	*r;
	size_t			 i;
	enum peer_role		 role = PEER_ROLE_NONE;

	memset(scope, 0, sizeof(*scope));
	for (i = 0; i < c->nrules; i++) {
		r = &c->rules[i];
		if (!control_rule_matches(r, uid, gid))
			continue;
		if (r->role == PEER_ROLE_SIGNER)
			sign_scope_merge(scope, &r->scope);
		else if (r->role > role)
			role = r->role;
	}
	if (role == PEER_ROLE_NONE && scope->n > 0)
		role = PEER_ROLE_SIGNER;
	return role;
}

static void
control_free_rules(struct control *c)
{
	size_t	 i;

	for (i = 0; i < c->nrules; i++) {
		free(c->rules[i].members);
		sign_scope_free(&c->rules[i].scope);
	}
	free(c->rules);
	c->rules = NULL;
	c->nrules = 0;
}

/* Whether a daemon answers on path. */
int
control_in_use(const char *path)
{
	struct sockaddr_un	 sun;
	int			 fd, live;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strncpy(sun.sun_path, path, sizeof(sun.sun_path) - 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return 0;
	live = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
	close(fd);
	return live;
}

struct control *
control_new(struct kcd *kcd, const struct kc_conf *conf, char **cause)
{
	static const enum peer_role roles[3] = { PEER_ROLE_ADMIN, PEER_ROLE_GATEWAY,
				    PEER_ROLE_READER };
	const char		*path = conf->socket_path;
	struct control		*c;
	struct sockaddr_un	 sun;
	struct stat		 sb;
	struct group		*gr;
	mode_t			 old_umask;
	size_t			 i, j, nhier;
	int			 fd;

	c = xcalloc(1, sizeof(*c));
	for (i = 0; i < 3; i++)
		for (j = 0; j < conf->nroles[i]; j++)
			if (control_resolve(c, roles[i], conf->roles[i][j], cause) != 0)
				goto fail;
	nhier = c->nrules;
	for (j = 0; j < conf->nsigners; j++)
		if (control_resolve_signer(c, conf->signers[j], cause) != 0)
			goto fail;
	if (nhier == 0) {
		control_add_rule(c, PEER_ROLE_ADMIN, 0, 0, 0);
		control_add_rule(c, PEER_ROLE_ADMIN, 0, geteuid(), 0);
	}

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		xasprintf(cause, "socket path too long: %s", path);
		goto fail;
	}
	strncpy(sun.sun_path, path, sizeof(sun.sun_path) - 1);
	if (lstat(path, &sb) == 0) {
		if (!S_ISSOCK(sb.st_mode)) {
			xasprintf(cause, "%s exists and is not a socket", path);
			goto fail;
		}
		if (control_in_use(path)) {
			xasprintf(cause, "%s: another keycustodyd is already answering there",
			    path);
			goto fail;
		}
		if (unlink(path) == -1) {
			xasprintf(cause, "unlink %s: %s", path, strerror(errno));
			goto fail;
		}
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) == -1) {
		xasprintf(cause, "socket: %s", strerror(errno));
		goto fail;
	}
	/* Never a moment with a looser mode than 0660. */
	old_umask = umask(S_IXUSR | S_IXGRP | S_IRWXO);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		xasprintf(cause, "bind %s: %s", path, strerror(errno));
		umask(old_umask);
		close(fd);
		goto fail;
	}
	umask(old_umask);
	if (conf->socket_group != NULL) {
		if ((gr = getgrnam(conf->socket_group)) == NULL) {
			xasprintf(cause, "socket_group: unknown group %s", conf->socket_group);
			unlink(path);
			close(fd);
			goto fail;
		}
		if (chown(path, (uid_t)-1, gr->gr_gid) == -1) {
			xasprintf(cause, "chown %s: %s", path, strerror(errno));
			unlink(path);
			close(fd);
			goto fail;
		}
	}
	if (chmod(path, 0660) == -1) {
		xasprintf(cause, "chmod %s: %s", path, strerror(errno));
		unlink(path);
		close(fd);
		goto fail;
	}

	c->kcd = kcd;
	c->path = xstrdup(path);
	c->max_conns = conf->max_conns;
	/* conf_check(): the reservations leave slots for readers. */
	c->role_max[PEER_ROLE_ADMIN] = conf->max_conns;
	c->role_max[PEER_ROLE_GATEWAY] = conf->max_conns - conf->admin_connections;
	c->role_max[PEER_ROLE_READER] = conf->max_conns - conf->admin_connections -
	    conf->gateway_connections;
	c->role_max[PEER_ROLE_SIGNER] = c->role_max[PEER_ROLE_READER];
	c->conn_requests = conf->conn_requests;
	c->conn_unread = conf->conn_unread;
	c->unread_timeout.tv_sec = conf->conn_unread_timeout;
	c->log_rate = conf->refusal_log_rate;
	TAILQ_INIT(&c->conns);
	c->listener = evconnlistener_new(kcd->base, control_accept, c,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 128, fd);
	if (c->listener == NULL) {
		xasprintf(cause, "listen %s: %s", path, strerror(errno));
		unlink(path);
		close(fd);
		goto fail;
	}
	evconnlistener_set_error_cb(c->listener, control_accept_error);
	if ((c->resume_ev = evtimer_new(kcd->base, control_resume, c)) == NULL)
		fatalx("evtimer_new");
	return c;
 fail:
	control_free_rules(c);
	free(c->path);
	free(c);
	return NULL;
}

/* The tail of a rate-limited line that says how many like it were left out. */
static const char *
control_held(uint64_t held, char *buf, size_t len)
{
	if (held == 0)
		return "";
	snprintf(buf, len, " (%llu more suppressed)", (unsigned long long)held);
	return buf;
}

/* accept(2) failed (EMFILE, ENFILE, ENOBUFS): pause accepting for a second. */
static void
control_accept_error(struct evconnlistener *l, void *arg)
{
	struct control	*c = arg;
	struct timeval	 tv = { 1, 0 };

	log_warn("accept");
	evconnlistener_disable(l);
	evtimer_add(c->resume_ev, &tv);
}

static void
control_resume(evutil_socket_t fd, short ev, void *arg)
{
	struct control	*c = arg;

	if (c->listener != NULL)
		evconnlistener_enable(c->listener);
}

static void
control_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
    void *arg)
{
	struct control	*c = arg;
	struct conn	*conn;
	struct ucred	 cred;
	socklen_t	 len = sizeof(cred);
	enum peer_role	 role;
	struct sign_scope scope;
	uint64_t	 held;
	char		 note[64];

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1) {
		log_warn("getsockopt SO_PEERCRED");
		close(fd);
		return;
	}
	if ((role = control_peer_role(c, cred.uid, cred.gid, &scope)) == PEER_ROLE_NONE) {
		c->refused++;
		if (peer_loglimit_pass(&c->log_norole, c->log_rate, &held))
			log_warnx("refusing connection from uid %ld gid %ld pid %ld: no role%s",
			    (long)cred.uid, (long)cred.gid, (long)cred.pid,
			    control_held(held, note, sizeof(note)));
		close(fd);
		return;
	}
	/*
	 * Admins may take every slot, gateways all but admin_connections, readers all but
	 * those and gateway_connections: no lesser role can lock a greater one out.
	 */
	if (c->nconns >= c->role_max[role]) {
		c->refused++;
		if (peer_loglimit_pass(&c->log_full, c->log_rate, &held))
			log_warnx("refusing connection from uid %ld pid %ld (role %s): %u "
			    "connections open, %u the most for the role%s", (long)cred.uid,
			    (long)cred.pid, peer_role_name(role), c->nconns, c->role_max[role],
			    control_held(held, note, sizeof(note)));
		sign_scope_free(&scope);
		close(fd);
		return;
	}
	conn = xcalloc(1, sizeof(*conn));
	conn->ctl = c;
	conn->serial = ++c->serial;
	conn->peer.uid = cred.uid;
	conn->peer.gid = cred.gid;
	conn->peer.pid = cred.pid;
	conn->peer.role = role;
	conn->scope = scope;
	conn->peer.scope = scope.n > 0 ? &conn->scope : NULL;
	conn->refs = 1;
	conn->bev = bufferevent_socket_new(c->kcd->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (conn->bev == NULL) {
		log_warnx("bufferevent_socket_new failed");
		close(fd);
		sign_scope_free(&conn->scope);
		free(conn);
		return;
	}
	if ((conn->unread_ev = evtimer_new(c->kcd->base, conn_unread_expired, conn)) == NULL)
		fatalx("evtimer_new");
	bufferevent_setcb(conn->bev, conn_read, conn_write, conn_event, conn);
	/* conn_write() runs once the unread replies are down to half the cap. */
	bufferevent_setwatermark(conn->bev, EV_WRITE, c->conn_unread / 2, 0);
	bufferevent_enable(conn->bev, EV_READ | EV_WRITE);
	TAILQ_INSERT_TAIL(&c->conns, conn, entry);
	c->nconns++;
	c->role_conns[role]++;
	log_debug("connection %llu from uid %ld gid %ld pid %ld, role %s%s",
	    (unsigned long long)conn->serial, (long)conn->peer.uid, (long)conn->peer.gid,
	    (long)conn->peer.pid, peer_role_name(role),
	    conn->peer.scope != NULL && role != PEER_ROLE_SIGNER ? " and signer" : "");
}

/* Read every complete frame and dispatch it. */
static void
conn_read(struct bufferevent *bev, void *arg)
{
	struct conn		*conn = arg;
	struct control		*c = conn->ctl;
	struct evbuffer		*in = bufferevent_get_input(bev);
	Keycustody__Request	*req;
	uint8_t			 hdr[KC_FRAME_HDR], *body, *frame;
	size_t			 len, flen;
	int			 r;

	while (!conn->lost && !conn->closing) {
		if (conn->inflight >= c->conn_requests || conn->over) {
			bufferevent_disable(bev, EV_READ);
			return;
		}
		if (evbuffer_copyout(in, hdr, sizeof(hdr)) < (ssize_t)sizeof(hdr))
			return;
		if (proto_frame_len(hdr, &len) != 0) {
			log_warnx("connection %llu (uid %ld pid %ld): frame of %zu bytes "
			    "exceeds the limit; closing",
			    (unsigned long long)conn->serial, (long)conn->peer.uid,
			    (long)conn->peer.pid, len);
			conn_lost(conn);
			return;
		}
		if (evbuffer_get_length(in) < KC_FRAME_HDR + len) {
			/* Wake up only when the whole frame is there. */
			bufferevent_setwatermark(bev, EV_READ, KC_FRAME_HDR + len, 0);
			return;
		}
		bufferevent_setwatermark(bev, EV_READ, 0, 0);
		evbuffer_drain(in, KC_FRAME_HDR);
		body = evbuffer_pullup(in, len);
		r = proto_unpack_request(body, len, &req);
		evbuffer_drain(in, len);
		if (r == KC_ERR_BAD_VERSION) {
			log_warnx("connection %llu (uid %ld pid %ld): protocol version %u, "
			    "expected %u; closing", (unsigned long long)conn->serial,
			    (long)conn->peer.uid, (long)conn->peer.pid, req->version, KC_PROTO_VERSION);
			disp_bad_version(req, &frame, &flen);
			keycustody__request__free_unpacked(req, NULL);
			conn_send(conn, frame, flen);
			conn->closing = 1;
			return;
		}
		if (r != 0) {
			log_warnx("connection %llu (uid %ld pid %ld): %s request; closing",
			    (unsigned long long)conn->serial, (long)conn->peer.uid,
			    (long)conn->peer.pid, r == KC_ERR_BAD_MESSAGE && req != NULL ?
			    "unknown" : "malformed");
			if (req != NULL)
				keycustody__request__free_unpacked(req, NULL);
			conn_lost(conn);
			return;
		}
		log_debug("connection %llu: request %llu %s",
		    (unsigned long long)conn->serial, (unsigned long long)req->id,
		    proto_request_name(req->body_case));
		conn->refs++;
		conn->inflight++;
		c->inflight++;
		disp_request(c->kcd->disp, req, &conn->peer, conn_reply, conn);
	}
}

/* evbuffer_add_reference() cleanup: a frame that conn_send() queued is written or dropped. */
static void
conn_frame_free(const void *data, size_t len, void *arg)
{
	free((void *)data);
}

/*
 * Queue a packed reply (takes ownership of frame). The output buffer references the frame
 * instead of copying it (a page of CSRs is tens of kB) and frees it when done with it.
 */
static void
conn_send(struct conn *conn, uint8_t *frame, size_t len)
{
	if (frame == NULL) {
		log_warnx("connection %llu: reply could not be built; closing",
		    (unsigned long long)conn->serial);
		conn_lost(conn);
		return;
	}
	if (conn->lost) {
		free(frame);
		return;
	}
	/* On failure the cleanup is not called: the frame is still ours. */
	if (evbuffer_add_reference(bufferevent_get_output(conn->bev), frame, len,
	    conn_frame_free, NULL) != 0) {
		log_warnx("connection %llu: evbuffer_add_reference failed; closing",
		    (unsigned long long)conn->serial);
		free(frame);
		conn_lost(conn);
		return;
	}
	if (!conn->over &&
	    evbuffer_get_length(bufferevent_get_output(conn->bev)) > conn->ctl->conn_unread) {
		/* Stop taking requests until the peer reads; cut it off if it never does. */
		conn->over = 1;
		bufferevent_disable(conn->bev, EV_READ);
		evtimer_add(conn->unread_ev, &conn->ctl->unread_timeout);
		log_debug("connection %llu: over %zu unread reply bytes; not reading",
		    (unsigned long long)conn->serial, conn->ctl->conn_unread);
	}
}

/* Read requests again, unless a cap still holds. */
static void
conn_resume(struct conn *conn)
{
	if (conn->lost || conn->closing || conn->over ||
	    conn->inflight >= conn->ctl->conn_requests ||
	    (bufferevent_get_enabled(conn->bev) & EV_READ))
		return;
	bufferevent_enable(conn->bev, EV_READ);
	conn_read(conn->bev, conn);
}

/* On the loop: the peer left its replies over the cap for too long. */
static void
conn_unread_expired(evutil_socket_t fd, short ev, void *arg)
{
	struct conn	*conn = arg;
	struct control	*c = conn->ctl;
	uint64_t	 held;
	char		 note[64];

	c->cut_off++;
	if (peer_loglimit_pass(&c->log_cutoff, c->log_rate, &held))
		log_warnx("connection %llu (uid %ld pid %ld): %zu reply bytes unread for "
		    "%lds; cutting it off%s", (unsigned long long)conn->serial,
		    (long)conn->peer.uid, (long)conn->peer.pid,
		    evbuffer_get_length(bufferevent_get_output(conn->bev)),
		    (long)c->unread_timeout.tv_sec, control_held(held, note, sizeof(note)));
	conn_lost(conn);
}

/* On the loop: the reply to a request of conn (disp_request()). */
static void
conn_reply(void *arg, uint8_t *frame, size_t len)
{
	struct conn	*conn = arg;

	conn->inflight--;
	conn->ctl->inflight--;
	if (conn->lost)
		free(frame);
	else {
		conn_send(conn, frame, len);
		conn_resume(conn);
	}
	conn_unref(conn);
}

static void
conn_write(struct bufferevent *bev, void *arg)
{
	struct conn	*conn = arg;
	size_t		 out = evbuffer_get_length(bufferevent_get_output(bev));

	if (conn->closing && out == 0) {
		conn_lost(conn);
		return;
	}
	if (conn->over && out <= conn->ctl->conn_unread / 2) {
		conn->over = 0;
		evtimer_del(conn->unread_ev);
		conn_resume(conn);
	}
}

static void
conn_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn	*conn = arg;

	if (what & BEV_EVENT_ERROR)
		log_debug("connection %llu: %s", (unsigned long long)conn->serial,
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		conn_lost(conn);
}

/* The one teardown path: close the socket now, free once no job refers to conn. */
static void
conn_lost(struct conn *conn)
{
	struct control	*c = conn->ctl;

	if (conn->lost)
		return;
	conn->lost = 1;
	log_debug("connection %llu closed", (unsigned long long)conn->serial);
	event_free(conn->unread_ev);
	conn->unread_ev = NULL;
	bufferevent_free(conn->bev);
	conn->bev = NULL;
	TAILQ_REMOVE(&c->conns, conn, entry);
	c->nconns--;
	c->role_conns[conn->peer.role]--;
	conn_unref(conn);
}

static void
conn_unref(struct conn *conn)
{
	if (--conn->refs == 0) {
		sign_scope_free(&conn->scope);
		free(conn);
	}
}

void
control_stop_accepting(struct control *c)
{
	if (c->listener != NULL) {
		evconnlistener_free(c->listener);
		c->listener = NULL;
	}
}

unsigned int
control_nconns(struct control *c)
{
	return c->nconns;
}

unsigned int
control_inflight(struct control *c)
{
	return c->inflight;
}

size_t
control_unsent(struct control *c)
{
	struct conn	*conn;
	size_t		 n = 0;

	TAILQ_FOREACH(conn, &c->conns, entry)
		if (!conn->lost && conn->bev != NULL)
			n += evbuffer_get_length(bufferevent_get_output(conn->bev));
	return n;
}

void
control_stats(const struct control *c, struct control_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (c == NULL)
		return;
	st->conns = c->nconns;
	st->max_conns = c->max_conns;
	st->admin_conns = c->role_conns[PEER_ROLE_ADMIN];
	st->gateway_conns = c->role_conns[PEER_ROLE_GATEWAY];
	st->reader_conns = c->role_conns[PEER_ROLE_READER];
	st->refused = c->refused;
	st->cut_off = c->cut_off;
	st->log_suppressed = c->log_norole.suppressed + c->log_full.suppressed +
	    c->log_cutoff.suppressed;
}

void
control_free(struct control *c)
{
	struct conn	*conn;

	if (c == NULL)
		return;
	control_stop_accepting(c);
	while ((conn = TAILQ_FIRST(&c->conns)) != NULL)
		conn_lost(conn);
	event_free(c->resume_ev);
	if (unlink(c->path) == -1 && errno != ENOENT)
		log_warn("unlink %s", c->path);
	control_free_rules(c);
	free(c->path);
	free(c);
}
