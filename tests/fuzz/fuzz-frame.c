/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * fuzz-frame.c: the daemon's side of the socket, as control.c drives it: a byte stream cut
 * into frames (proto_frame_len), each unpacked (proto_unpack_request), checked against the
 * peer's role and answered as a worker would (disp_answer_now) by the real handlers, store, certificate checks and audit log, over the fake HSM of fake-hsm.c.
 * Every reply must unpack again and carry the request's id.
 *
 * Input: one control byte, then the stream. Control bits 0-1: the peer's role (0 a signer
 * whose scope is every zone, 1 reader, 2 gateway, 3 admin); bits 2-6: FAKE_HSM_* faults; bit 7: every request is abandoned (its requester's
 * deadline passed while a worker had it). The store starts every input (or every
 * $KC_FUZZ_RESET inputs) from the same template: one READY CSR (FUZZ_CSR_ID, the fixed
 * key) and one custom hostname (FUZZ_HOST_ID) in FUZZ_ZONE, so that inputs can name them.
 */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "arena.h"
#include "audit.h"
#include "cert.h"
#include "conf.h"
#include "answer.h"
#include "dispatch.h"
#include "fake-hsm.h"
#include "fuzz.h"
#include "log.h"
#include "hsm.h"
#include "kc-err.h"
#include "kc-proto.h"
#include "kcd.h"
#include "peer.h"
#include "sign.h"
#include "pool.h"
#include "store.h"
#include "xmalloc.h"

#define FRAME_MAX_FRAMES	32	/* requests answered per input */

static const uint8_t	 frame_key_id[STORE_KEY_ID_LEN] = {
	0x6b, 0x63, 0x2d, 0x66, 0x75, 0x7a, 0x7a, 0x2d,
	0x6b, 0x65, 0x79, 0x2d, 0x30, 0x30, 0x30, 0x31
};

static const enum peer_role frame_roles[4] = {
	PEER_ROLE_SIGNER, PEER_ROLE_READER, PEER_ROLE_GATEWAY, PEER_ROLE_ADMIN
};

static struct {
	struct kcd		 kcd;
	struct worker		 w;
	struct peer		 peer;
	struct sign_scope	 scope;		/* a signer's: every zone */
	char			 store_path[PATH_MAX];
	char			 audit_path[PATH_MAX];
	uint8_t			*template;	/* the seeded store file */
	size_t			 template_len;
	unsigned long		 reset_every;
	unsigned long		 inputs;
	int			 verbose;	/* $KC_FUZZ_VERBOSE: print each reply */
	struct kc_arena		 arena;		/* for the clients' way of unpacking */
} fr;

static __dead void
frame_fail(const char *what, const char *cause)
{
	fprintf(stderr, "fuzz-frame: %s: %s\n", what, cause != NULL ? cause : "failed");
	abort();
}

static void
frame_unlink_store(void)
{
	char	 p[PATH_MAX + 8];

	(void)unlink(fr.store_path);
	(void)snprintf(p, sizeof(p), "%s-wal", fr.store_path);
	(void)unlink(p);
	(void)snprintf(p, sizeof(p), "%s-shm", fr.store_path);
	(void)unlink(p);
}

/* The seeded records, written once into the template store file. */
static void
frame_seed(struct store *st)
{
	static const char *const sans[] = { FUZZ_HOSTNAME, "*.keycustody-fuzz.com" };
	struct store_csr	 c;
	struct store_hostname	 h;
	struct cert_info	*ci = NULL;
	struct kc_error		 err;
	const uint8_t		*spki;
	size_t			 spkilen;
	int			 r;

	spki = fuzz_spki(&spkilen);
	memset(&c, 0, sizeof(c));
	(void)snprintf(c.id, sizeof(c.id), "%s", FUZZ_CSR_ID);
	(void)snprintf(c.zone_id, sizeof(c.zone_id), "%s", FUZZ_ZONE);
	c.created_at_us = 1764000000000000LL;
	c.key_type = (char *)"p256v1";
	memcpy(c.key_id, frame_key_id, sizeof(c.key_id));
	c.country = (char *)"US";
	c.state_name = (char *)"California";
	c.locality = (char *)"San Francisco";
	c.organization = (char *)"Keycustody Fuzz";
	c.common_name = (char *)FUZZ_HOSTNAME;
	c.sans = (char **)sans;
	c.nsans = 2;
	c.name = (char *)"seed";
	if ((r = store_csr_insert(st, &c)) != 0 ||
	    (r = store_csr_set_ready(st, c.id, spki, spkilen,
	    "-----BEGIN CERTIFICATE REQUEST-----\n-----END CERTIFICATE REQUEST-----\n")) != 0)
		frame_fail("seed CSR", kc_strerror(r));

	memset(&err, 0, sizeof(err));
	if ((r = cert_check(fr.kcd.certs, fuzz_leaf_pem, strlen(fuzz_leaf_pem), spki,
	    spkilen, FUZZ_HOSTNAME, CERT_BUNDLE_UBIQUITOUS, (int64_t)time(NULL) * 1000000,
	    &ci, &err)) != 0)
		frame_fail("seed certificate", err.message);
	memset(&h, 0, sizeof(h));
	(void)snprintf(h.id, sizeof(h.id), "%s", FUZZ_HOST_ID);
	(void)snprintf(h.zone_id, sizeof(h.zone_id), "%s", FUZZ_ZONE);
	h.hostname = (char *)FUZZ_HOSTNAME;
	(void)snprintf(h.csr_id, sizeof(h.csr_id), "%s", FUZZ_CSR_ID);
	h.created_at_us = 1764000000000000LL;
	(void)snprintf(h.ssl_id, sizeof(h.ssl_id), "%s", "0d3c2e1f-5a4b-4c6d-8e7f-9a0b1c2d3e4f");
	h.bundle_method = (char *)"ubiquitous";
	h.certificate_pem = ci->chain_pem;
	h.certificate_uploaded = (char *)fuzz_leaf_pem;
	h.issuer = ci->issuer;
	h.serial_number = ci->serial;
	h.signature_alg = ci->signature;
	h.uploaded_on_us = h.created_at_us;
	h.not_before_us = ci->not_before_us;
	h.expires_on_us = ci->not_after_us;
	h.hosts = ci->hosts;
	h.nhosts = ci->nhosts;
	if ((r = store_hostname_insert(st, &h)) != 0)
		frame_fail("seed hostname", kc_strerror(r));
	cert_info_free(ci);
}

static void
frame_template(void)
{
	struct store	*st;
	char		*cause = NULL;
	FILE		*f;
	long		 n;

	frame_unlink_store();
	if (store_open(fr.store_path, &st, &cause) != 0)
		frame_fail("store_open", cause);
	frame_seed(st);
	store_close(st);
	if ((f = fopen(fr.store_path, "rb")) == NULL || fseek(f, 0, SEEK_END) != 0 ||
	    (n = ftell(f)) <= 0 || fseek(f, 0, SEEK_SET) != 0)
		frame_fail("template", fr.store_path);
	fr.template_len = (size_t)n;
	fr.template = xmalloc(fr.template_len);
	if (fread(fr.template, 1, fr.template_len, f) != fr.template_len)
		frame_fail("template", "short read");
	fclose(f);
}

/* Back to the template: the store, the audit log, the token, the counters. */
static void
frame_reset(void)
{
	struct hsm_key	*k = NULL;
	int		 maybe;
	char		*cause = NULL;

	store_close(fr.w.st);
	fr.w.st = NULL;
	frame_unlink_store();
	fuzz_write_file(fr.store_path, fr.template, fr.template_len);
	if (store_open(fr.store_path, &fr.w.st, &cause) != 0)
		frame_fail("store_open", cause);

	audit_close(fr.kcd.audit);
	fr.kcd.audit = NULL;
	(void)unlink(fr.audit_path);
	if (audit_open(fr.audit_path, NULL, &fr.kcd.audit, &cause) != 0)
		frame_fail("audit_open", cause);

	/* The seeded CSR's key pair is in the token. */
	fake_hsm_reset();
	if (hsm_keygen(fr.w.hs, HSM_KEY_P256, frame_key_id, FUZZ_CSR_ID, &k, &maybe) != 0)
		frame_fail("seed key", "hsm_keygen");
	hsm_key_free(k);
	atomic_store(&fr.kcd.keys_in_custody, 1);
	atomic_store(&fr.kcd.records_missing_key, 0);
	atomic_store(&fr.kcd.orphan_keys, 0);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const struct hsm_config	 hcfg = {
		.module = "fake", .token_label = "fuzz", .signer = HSM_SIGNER_DIRECT
	};
	const char			*bundles[1], *e;
	char				 ca[PATH_MAX], *cause = NULL;
	static char			 pool_store[PATH_MAX];
	static void			*pool_ctx[1];
	static struct kc_conf		 conf;	/* the defaults: the handlers read limits */

	fuzz_log_init();
	fr.verbose = getenv("KC_FUZZ_VERBOSE") != NULL;
	fr.reset_every = 1;
	if ((e = getenv("KC_FUZZ_RESET")) != NULL && strtoul(e, NULL, 10) > 0)
		fr.reset_every = strtoul(e, NULL, 10);
	fuzz_path(fr.store_path, sizeof(fr.store_path), "store.db");
	fuzz_path(fr.audit_path, sizeof(fr.audit_path), "audit.log");
	fuzz_path(ca, sizeof(ca), "ca.pem");
	fuzz_write_file(ca, fuzz_ca_pem, strlen(fuzz_ca_pem));

	/* The pool's own worker (idle: this file answers) has a store of its own. */
	fuzz_path(pool_store, sizeof(pool_store), "pool.db");
	fr.kcd.store_path = pool_store;
	conf_init(&conf);
	fr.kcd.conf = &conf;
	fr.kcd.started = time(NULL);
	fr.kcd.store_ok = 1;
	bundles[0] = ca;
	if (cert_store_new(false, bundles, 1, &fr.kcd.certs, &cause) != 0)
		frame_fail("cert_store_new", cause);
	if (hsm_open(&hcfg, "", 0, &fr.kcd.hsm, &cause) != 0)
		frame_fail("hsm_open", cause);
	if ((fr.kcd.base = event_base_new()) == NULL)
		frame_fail("event_base_new", NULL);
	/* Health reports the pool's queue; its one thread never gets a job. */
	pool_ctx[0] = NULL;
	fr.kcd.pool = pool_new(fr.kcd.base, pool_ctx, 1, 16);
	fr.w.kcd = &fr.kcd;
	if (hsm_session_new(fr.kcd.hsm, &fr.w.hs) != 0)
		frame_fail("hsm_session_new", NULL);
	if (sign_scope_parse("*", &fr.scope, &cause) != 0)
		frame_fail("sign_scope_parse", cause);
	sign_limiter_init(&fr.kcd.sign_limiter, conf.sign_rate);
	sign_stats_init(&fr.kcd.sign_stats);
	fr.peer.uid = 4242;
	fr.peer.gid = 4242;
	fr.peer.pid = 4242;
	kc_arena_init(&fr.arena);
	frame_template();
	frame_reset();
	return 0;
}

/* A reply must be a whole frame that unpacks as a Response for the request's id. */
static void
frame_check_reply(uint64_t id, uint8_t *frame, size_t len)
{
	Keycustody__Response	*resp = NULL;
	uint8_t			*packed;
	size_t			 blen;

	if (frame == NULL)
		frame_fail("reply", "no frame");
	if (len < KC_FRAME_HDR || proto_frame_len(frame, &blen) != 0 ||
	    blen != len - KC_FRAME_HDR)
		frame_fail("reply", "bad frame header");
	if (proto_unpack_response(frame + KC_FRAME_HDR, blen, &resp) != 0)
		frame_fail("reply", "does not unpack");
	if (resp->id != id)
		frame_fail("reply", "wrong id");
	if (fr.verbose)
		fprintf(stderr, "fuzz-frame: reply %llu: %s%s%u %s\n", (unsigned long long)id,
		    resp->error != NULL ? "error " : "ok",
		    resp->error != NULL ? "" : " body ",
		    resp->error != NULL ? resp->error->code : (unsigned int)resp->body_case,
		    resp->error != NULL ? resp->error->message : "");
	keycustody__response__free_unpacked(resp, NULL);

	/* The clients unpack into an arena: the same message, packed back to the same bytes. */
	if (proto_unpack_response_arena(frame + KC_FRAME_HDR, blen, &fr.arena, &resp) != 0)
		frame_fail("reply", "does not unpack into an arena");
	if (keycustody__response__get_packed_size(resp) != blen)
		frame_fail("reply", "arena copy packs to another size");
	if ((packed = malloc(blen + 1)) == NULL)
		abort();
	keycustody__response__pack(resp, packed);
	if (memcmp(packed, frame + KC_FRAME_HDR, blen) != 0)
		frame_fail("reply", "arena copy packs to other bytes");
	free(packed);
	kc_arena_reset(&fr.arena);
	free(frame);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Keycustody__Request	*req;
	struct kc_error		 err;
	int			 abandoned;
	uint8_t			*frame;
	size_t			 len, flen;
	int			 i, r;

	if (size < 1)
		return 0;
	if (fr.inputs++ % fr.reset_every == 0 && fr.inputs > 1)
		frame_reset();
	fr.peer.role = frame_roles[data[0] & 0x03];
	fr.peer.scope = fr.peer.role == PEER_ROLE_SIGNER ? &fr.scope : NULL;
	fake_hsm_set_faults((data[0] >> 2) & FAKE_HSM_MASK);
	abandoned = (data[0] & 0x80) != 0;
	data++;
	size--;

	for (i = 0; i < FRAME_MAX_FRAMES && size >= KC_FRAME_HDR; i++) {
		if (proto_frame_len(data, &len) != 0)
			break;			/* control.c closes the connection */
		data += KC_FRAME_HDR;
		size -= KC_FRAME_HDR;
		if (len > size)
			break;			/* the rest never comes */
		req = NULL;
		r = proto_unpack_request(data, len, &req);
		data += len;
		size -= len;
		memset(&err, 0, sizeof(err));
		frame = NULL;
		flen = 0;
		if (r == KC_ERR_BAD_VERSION) {
			disp_bad_version(req, &frame, &flen);
			frame_check_reply(req->id, frame, flen);
			keycustody__request__free_unpacked(req, NULL);
			break;
		}
		if (r != 0) {
			/* An unknown body comes back unpacked too (control.c frees it). */
			if (req != NULL)
				keycustody__request__free_unpacked(req, NULL);
			break;
		}
		disp_answer_now(&fr.kcd, &fr.w, req, &fr.peer, abandoned, &frame, &flen);
		frame_check_reply(req->id, frame, flen);
		keycustody__request__free_unpacked(req, NULL);
	}
	fake_hsm_set_faults(0);
	return 0;
}
