/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * test-proto.c: framing, size caps, version checks, time formatting, the error table.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arena.h"
#include "kc-err.h"
#include "kc-proto.h"

static void
test_frame_len(void **state)
{
	const uint8_t	 ok[4] = { 0x00, 0x10, 0x00, 0x00 };	/* exactly 1 MiB */
	const uint8_t	 big[4] = { 0x00, 0x10, 0x00, 0x01 };	/* 1 MiB + 1 */
	const uint8_t	 huge[4] = { 0xff, 0xff, 0xff, 0xff };
	const uint8_t	 half[4] = { 0x80, 0x00, 0x00, 0x00 };	/* 2^31: the sign bit */
	const uint8_t	 zero[4] = { 0, 0, 0, 0 };
	size_t		 len = 7;

	assert_int_equal(proto_frame_len(ok, &len), 0);
	assert_int_equal(len, KC_MAX_MSG);
	assert_int_equal(proto_frame_len(big, &len), KC_ERR_MSG_TOO_BIG);
	assert_int_equal(len, KC_MAX_MSG + 1);
	/* Lengths of 2^31 and more are refused and reported whole, without a sign (issue 12). */
	assert_int_equal(proto_frame_len(half, &len), KC_ERR_MSG_TOO_BIG);
	assert_true(len == 0x80000000UL);
	assert_int_equal(proto_frame_len(huge, &len), KC_ERR_MSG_TOO_BIG);
	assert_true(len == 0xffffffffUL);
	assert_int_equal(proto_frame_len(zero, &len), 0);
	assert_int_equal(len, 0);
}

static void
test_roundtrip(void **state)
{
	Keycustody__Request		 req = KEYCUSTODY__REQUEST__INIT, *out = NULL;
	Keycustody__GetCsrRequest	 g = KEYCUSTODY__GET_CSR_REQUEST__INIT;
	uint8_t				*frame = NULL;
	size_t				 len, blen;

	req.version = KC_PROTO_VERSION;
	req.id = 42;
	req.body_case = KEYCUSTODY__REQUEST__BODY_GET_CSR;
	g.zone_id = (char *)"023e105f4ecef8ad9ca31a8372d0c353";
	g.id = (char *)"6a1e8f2c-4c8e-4c47-9a5b-0d2b8a9b5a11";
	req.get_csr = &g;
	assert_int_equal(proto_pack_request(&req, &frame, &len), 0);
	assert_int_equal(proto_frame_len(frame, &blen), 0);
	assert_int_equal(blen + KC_FRAME_HDR, len);
	assert_int_equal(proto_unpack_request(frame + KC_FRAME_HDR, blen, &out), 0);
	assert_non_null(out);
	assert_int_equal(out->id, 42);
	assert_int_equal(out->body_case, KEYCUSTODY__REQUEST__BODY_GET_CSR);
	assert_string_equal(out->get_csr->id, g.id);
	keycustody__request__free_unpacked(out, NULL);

	/* Every strict prefix of the body is refused, never crashes. */
	for (size_t i = 0; i < blen; i++) {
		int r = proto_unpack_request(frame + KC_FRAME_HDR, i, &out);
		assert_int_not_equal(r, 0);
		if (out != NULL)
			keycustody__request__free_unpacked(out, NULL);
	}
	free(frame);
}

static void
test_bad_version(void **state)
{
	Keycustody__Request		 req = KEYCUSTODY__REQUEST__INIT, *out = NULL;
	Keycustody__HealthRequest	 h = KEYCUSTODY__HEALTH_REQUEST__INIT;
	uint8_t				*frame = NULL;
	size_t				 len;

	req.version = KC_PROTO_VERSION + 1;
	req.id = 9;
	req.body_case = KEYCUSTODY__REQUEST__BODY_HEALTH;
	req.health = &h;
	assert_int_equal(proto_pack_request(&req, &frame, &len), 0);
	assert_int_equal(proto_unpack_request(frame + KC_FRAME_HDR, len - KC_FRAME_HDR, &out),
	    KC_ERR_BAD_VERSION);
	/* The request is handed back so that the daemon can answer its id. */
	assert_non_null(out);
	assert_int_equal(out->id, 9);
	keycustody__request__free_unpacked(out, NULL);
	free(frame);
}

static void
test_unknown_body(void **state)
{
	Keycustody__Request	 req = KEYCUSTODY__REQUEST__INIT, *out = NULL;
	uint8_t			*frame = NULL;
	size_t			 len;

	req.version = KC_PROTO_VERSION;
	req.id = 1;
	assert_int_equal(proto_pack_request(&req, &frame, &len), 0);
	assert_int_equal(proto_unpack_request(frame + KC_FRAME_HDR, len - KC_FRAME_HDR, &out),
	    KC_ERR_BAD_MESSAGE);
	if (out != NULL)
		keycustody__request__free_unpacked(out, NULL);
	free(frame);
}

static void
test_garbage(void **state)
{
	uint8_t			 buf[512];
	Keycustody__Request	*out;
	unsigned int		 seed = 1;
	size_t			 i, n;

	for (n = 0; n < 2000; n++) {
		for (i = 0; i < sizeof(buf); i++)
			buf[i] = (uint8_t)rand_r(&seed);
		out = NULL;
		if (proto_unpack_request(buf, 1 + n % sizeof(buf), &out) == 0)
			assert_non_null(out);
		if (out != NULL)
			keycustody__request__free_unpacked(out, NULL);
	}
}

/*
 * A list page unpacked into an arena: the same message as a plain unpack, across resets
 * and pages big enough to need more than the arena's first block (which then grows to fit
 * them); garbage is refused.
 */
static void
test_arena(void **state)
{
	Keycustody__Response		 resp = KEYCUSTODY__RESPONSE__INIT, *out;
	Keycustody__ListCsrsResponse	 list = KEYCUSTODY__LIST_CSRS_RESPONSE__INIT;
	Keycustody__Csr			*csrs[50], *c;
	struct kc_arena		 a;
	uint8_t				*frame, *packed, garbage[300];
	char				 pem[4000];
	char				 id[] = "0b5f5ad2-0f6a-4b5c-9f1e-7b8e2a3c4d5e";
	char				 cn[] = "www.example.com";
	unsigned int			 seed = 7;
	size_t				 len, i, n, round;

	(void)state;
	memset(pem, 'A', sizeof(pem) - 1);
	pem[sizeof(pem) - 1] = '\0';
	kc_arena_init(&a);
	for (round = 0; round < 4; round++) {
		n = round % 2 == 0 ? 3 : 50;	/* 50 x 4 kB: past the first block */
		for (i = 0; i < n; i++) {
			c = csrs[i] = calloc(1, sizeof(*c));
			assert_non_null(c);
			keycustody__csr__init(c);
			c->id = id;
			c->common_name = cn;
			c->csr = pem;
			c->created_at_us = (int64_t)(round * 100 + i);
		}
		list.n_csrs = n;
		list.csrs = csrs;
		list.total_count = n;
		resp.id = 40 + round;
		resp.body_case = KEYCUSTODY__RESPONSE__BODY_LIST_CSRS;
		resp.list_csrs = &list;
		assert_int_equal(proto_pack_response(&resp, &frame, &len), 0);

		assert_int_equal(proto_unpack_response_arena(frame + KC_FRAME_HDR,
		    len - KC_FRAME_HDR, &a, &out), 0);
		assert_int_equal(out->id, 40 + round);
		assert_int_equal(out->list_csrs->n_csrs, n);
		for (i = 0; i < n; i++) {
			assert_string_equal(out->list_csrs->csrs[i]->csr, pem);
			assert_int_equal(out->list_csrs->csrs[i]->created_at_us, round * 100 + i);
			/* Every piece is aligned for any type. */
			assert_int_equal((uintptr_t)out->list_csrs->csrs[i] %
			    _Alignof(max_align_t), 0);
		}
		packed = malloc(len);
		assert_non_null(packed);
		assert_int_equal(keycustody__response__get_packed_size(out), len - KC_FRAME_HDR);
		keycustody__response__pack(out, packed);
		assert_memory_equal(packed, frame + KC_FRAME_HDR, len - KC_FRAME_HDR);
		free(packed);
		/*
		 * The first big page needed extra blocks; the reset grew the first block to
		 * fit it, so the next big page needs none.
		 */
		if (round == 1)
			assert_non_null(a.extra);
		else
			assert_null(a.extra);
		kc_arena_reset(&a);
		assert_null(a.extra);
		free(frame);
		for (i = 0; i < n; i++)
			free(csrs[i]);
	}
	for (n = 0; n < 500; n++) {
		for (i = 0; i < sizeof(garbage); i++)
			garbage[i] = (uint8_t)rand_r(&seed);
		if (proto_unpack_response_arena(garbage, 1 + n % sizeof(garbage), &a, &out) == 0)
			assert_non_null(out);
		kc_arena_reset(&a);
	}
	assert_int_equal(proto_unpack_response_arena(garbage, KC_MAX_MSG + 1, &a, &out),
	    KC_ERR_MSG_TOO_BIG);
	assert_null(out);
	kc_arena_uninit(&a);
	kc_arena_uninit(&a);		/* twice is harmless */
}

static void
test_time_format(void **state)
{
	char	 buf[32];

	proto_time_format(0, 0, buf, sizeof(buf));
	assert_string_equal(buf, "1970-01-01T00:00:00Z");
	proto_time_format(1764170185123456LL, 1, buf, sizeof(buf));
	assert_string_equal(buf, "2025-11-26T15:16:25.123456Z");
	proto_time_format(1764170185123456LL, 0, buf, sizeof(buf));
	assert_string_equal(buf, "2025-11-26T15:16:25Z");
}

static void
test_error_table(void **state)
{
	struct kc_error	 e;

	assert_int_equal(kc_status_http(kc_err_status(KC_ERR_NOT_FOUND)), 404);
	assert_int_equal(kc_status_http(kc_err_status(KC_ERR_CONFLICT)), 409);
	assert_int_equal(kc_status_http(kc_err_status(KC_ERR_INVALID)), 400);
	assert_int_equal(kc_status_http(kc_err_status(KC_ERR_UNAVAILABLE)), 503);
	/* A failed HSM operation is a 503 with Retry-After (1503), never a 500. */
	assert_int_equal(kc_status_http(kc_err_status(KC_ERR_HSM)), 503);
	/* A zone's or credential's limit (issue 12): 429 and Cloudflare's 971. */
	assert_int_equal(kc_status_http(kc_err_status(KC_ERR_RATE_LIMITED)), 429);
	assert_int_equal(KC_STATUS_RATE_LIMITED, KEYCUSTODY__STATUS__RATE_LIMITED);
	assert_string_equal(kc_status_name(KC_STATUS_RATE_LIMITED), "rate_limited");
	kc_error_from(&e, KC_ERR_RATE_LIMITED);
	assert_int_equal(e.code, KC_API_RATE_LIMITED);
	assert_string_equal(e.message, KC_API_RATE_LIMITED_MSG);
	assert_int_equal(kc_status_http(kc_err_status(-999)), 500);
	for (int r = KC_ERR_MAX; r <= 0; r++)
		assert_string_not_equal(kc_strerror(r), "unknown error");
	kc_error_from(&e, KC_ERR_UNAVAILABLE);
	assert_int_equal(e.code, KC_API_UNAVAILABLE);
	kc_error_from(&e, KC_ERR_STORE);
	assert_int_equal(e.code, KC_API_INTERNAL);
	assert_string_equal(e.message, "Internal Server Error");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_len),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_bad_version),
		cmocka_unit_test(test_unknown_body),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_arena),
		cmocka_unit_test(test_time_format),
		cmocka_unit_test(test_error_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
