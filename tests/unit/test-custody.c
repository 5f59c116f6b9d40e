/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * test-custody.c: the custody lifecycle (daemon/custody.c) against the fake HSM of
 * tests/fuzz and a real store and audit log in a temporary directory: every step that can
 * fail leaves the token, the store and the counters as custody.h promises, and start-up
 * reconciliation finishes what a failure left.
 */
#include "config.h"

#include <sys/stat.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "audit.h"
#include "csr.h"
#include "custody.h"
#include "fake-hsm.h"
#include "hsm.h"
#include "kc-err.h"
#include "kcd.h"
#include "store.h"

#define ZONE	"023e105f4ecef8ad9ca31a8372d0c353"
#define ZONE2	"372e67954025e0ba6aaa6d586b9e0b59"

struct fixture {
	char			 dir[256];
	char			 db[300];
	char			 log[300];
	struct kcd		 kcd;
	struct custody		 c;
	struct audit_actor	 actor;
};

static const char *const sans[] = { "shop.acme-corp.co.uk", "www.acme-corp.co.uk" };
static const struct csr_subject subject = {
	"us", "Massachusetts", "Boston", "Acme Corp", "", "shop.acme-corp.co.uk", sans, 2
};

static int
fx_setup(void **state)
{
	static const struct hsm_config	 hcfg = {
		.module = "fake", .token_label = "test", .signer = HSM_SIGNER_DIRECT
	};
	struct fixture			*fx;
	const char			*tmp;
	char				*cause = NULL;

	if ((fx = calloc(1, sizeof(*fx))) == NULL)
		return -1;
	if ((tmp = getenv("TMPDIR")) == NULL || *tmp == '\0')
		tmp = "/tmp";
	snprintf(fx->dir, sizeof(fx->dir), "%s/test-custody.XXXXXX", tmp);
	if (mkdtemp(fx->dir) == NULL)
		return -1;
	snprintf(fx->db, sizeof(fx->db), "%s/keycustody.db", fx->dir);
	snprintf(fx->log, sizeof(fx->log), "%s/audit.log", fx->dir);
	fake_hsm_reset();
	if (hsm_open(&hcfg, "", 0, &fx->kcd.hsm, &cause) != 0 ||
	    audit_open(fx->log, NULL, &fx->kcd.audit, &cause) != 0 ||
	    store_open(fx->db, &fx->c.st, &cause) != 0 ||
	    hsm_session_new(fx->kcd.hsm, &fx->c.hs) != 0) {
		fprintf(stderr, "setup: %s\n", cause != NULL ? cause : "failed");
		free(cause);
		return -1;
	}
	fx->c.kcd = &fx->kcd;
	fx->kcd.pending = custody_pending_new();
	fx->actor.uid = 1000;
	fx->actor.pid = 4242;
	fx->actor.credential = "acme-gateway";
	*state = fx;
	return 0;
}

static void
fx_unlink(const char *path, const char *suffix)
{
	char	 p[320];

	snprintf(p, sizeof(p), "%s%s", path, suffix);
	(void)unlink(p);
}

static int
fx_teardown(void **state)
{
	struct fixture	*fx = *state;

	hsm_session_free(fx->c.hs);
	store_close(fx->c.st);
	audit_close(fx->kcd.audit);
	hsm_close(fx->kcd.hsm);
	fx_unlink(fx->db, "");
	fx_unlink(fx->db, "-wal");
	fx_unlink(fx->db, "-shm");
	fx_unlink(fx->log, "");
	(void)rmdir(fx->dir);
	free(fx->kcd.missing_ids);
	custody_pending_free(fx->kcd.pending);
	free(fx);
	fake_hsm_reset();
	return 0;
}

static struct custody_csr
csr_params(const char *zone)
{
	struct custody_csr	 p;

	memset(&p, 0, sizeof(p));
	p.zone_id = zone;
	p.subject = &subject;
	p.key_type = HSM_KEY_P256;
	p.name = "shop";
	return p;
}

/* How many keys the fake token holds; whether one of them has this id. */
static size_t
token_keys(struct fixture *fx, const uint8_t *id, int *found)
{
	uint8_t	*ids = NULL;
	size_t	 n = 0, i;

	assert_int_equal(hsm_key_list(fx->c.hs, &ids, &n), 0);
	if (found != NULL) {
		*found = 0;
		for (i = 0; i < n; i++)
			if (memcmp(ids + i * HSM_KEY_ID_LEN, id, HSM_KEY_ID_LEN) == 0)
				*found = 1;
	}
	free(ids);
	return n;
}

static size_t
unfinished(struct fixture *fx)
{
	struct store_csr	**v = NULL;
	size_t			 n = 0;

	assert_int_equal(store_csr_unfinished(fx->c.st, &v, &n), 0);
	store_csr_free_array(v, n);
	return n;
}

/* The audit log's lines with op (an exact "op":"..." match). */
static int
audit_count(struct fixture *fx, const char *op, const char *id)
{
	char	 line[8192], want[128];
	FILE	*f;
	int	 n = 0;

	snprintf(want, sizeof(want), "\"op\":\"%s\"", op);
	assert_non_null(f = fopen(fx->log, "r"));
	while (fgets(line, sizeof(line), f) != NULL)
		if (strstr(line, want) != NULL && (id == NULL || strstr(line, id) != NULL))
			n++;
	fclose(f);
	return n;
}

static void
make_csr(struct fixture *fx, const char *zone, struct store_csr *rec)
{
	struct custody_csr	 p = csr_params(zone);

	memset(rec, 0, sizeof(*rec));
	assert_int_equal(custody_create(&fx->c, &fx->actor, &p, rec), 0);
}

static void
test_create(void **state)
{
	struct fixture		*fx = *state;
	struct store_csr	 rec, *got = NULL;
	int			 found;

	make_csr(fx, ZONE, &rec);
	assert_int_equal(rec.state, STORE_CSR_READY);
	assert_string_equal(rec.country, "us");		/* stored as sent (issue 13) */
	assert_null(rec.organizational_unit);		/* "" is absent */
	assert_non_null(strstr(rec.csr_pem, "BEGIN CERTIFICATE REQUEST"));
	assert_true(rec.pubkey_len > 0);
	assert_int_equal(token_keys(fx, rec.key_id, &found), 1);
	assert_true(found);
	assert_int_equal(store_csr_get(fx->c.st, ZONE, rec.id, &got), 0);
	assert_int_equal(got->state, STORE_CSR_READY);
	assert_memory_equal(got->key_id, rec.key_id, STORE_KEY_ID_LEN);
	assert_string_equal(got->csr_pem, rec.csr_pem);
	assert_int_equal(atomic_load(&fx->kcd.keys_in_custody), 1);
	assert_int_equal(audit_count(fx, "create_csr.begin", rec.id), 1);
	assert_int_equal(audit_count(fx, "create_csr", rec.id), 1);
	/* Another zone does not see it. */
	store_csr_free(got);
	got = NULL;
	assert_int_equal(store_csr_get(fx->c.st, ZONE2, rec.id, &got), KC_ERR_NOT_FOUND);
	custody_csr_uninit(&rec);
}

/* A failed key generation or signature leaves no record and no key. */
static void
test_create_fails_clean(void **state)
{
	static const unsigned int	 faults[] = { FAKE_HSM_KEYGEN, FAKE_HSM_SIGN,
					    FAKE_HSM_DOWN };
	struct fixture			*fx = *state;
	struct custody_csr		 p = csr_params(ZONE);
	struct store_csr		 rec;
	uint64_t			 n;
	size_t				 i;

	for (i = 0; i < sizeof(faults) / sizeof(faults[0]); i++) {
		memset(&rec, 0, sizeof(rec));
		fake_hsm_set_faults(faults[i]);
		assert_int_not_equal(custody_create(&fx->c, &fx->actor, &p, &rec), 0);
		fake_hsm_set_faults(0);
		custody_csr_uninit(&rec);
		assert_int_equal(token_keys(fx, NULL, NULL), 0);
		assert_int_equal(unfinished(fx), 0);
		assert_int_equal(store_csr_count(fx->c.st, &n), 0);
		assert_int_equal(n, 0);
		/* The intent and its failed outcome are on the audit log. */
		assert_int_equal(audit_count(fx, "create_csr.begin", rec.id), 1);
		assert_int_equal(audit_count(fx, "create_csr", rec.id), 1);
	}
	assert_int_equal(atomic_load(&fx->kcd.keys_in_custody), 0);
}

/*
 * A key generation whose reply was lost made the pair all the same: it is found by its
 * CKA_ID and destroyed at once; when the token cannot destroy it yet, the record stays
 * CREATING in the pending list (counted live) until custody_finish_pending() can.
 */
static void
test_create_lost_reply(void **state)
{
	struct fixture		*fx = *state;
	struct custody_csr	 p = csr_params(ZONE);
	struct store_csr	 rec;
	uint64_t		 n;

	memset(&rec, 0, sizeof(rec));
	fake_hsm_set_faults(FAKE_HSM_KEYGEN_LOST);
	assert_int_equal(custody_create(&fx->c, &fx->actor, &p, &rec), KC_ERR_UNAVAILABLE);
	custody_csr_uninit(&rec);
	assert_int_equal(token_keys(fx, NULL, NULL), 0);
	assert_int_equal(unfinished(fx), 0);
	assert_int_equal(custody_pending_count(fx->kcd.pending), 0);

	memset(&rec, 0, sizeof(rec));
	fake_hsm_set_faults(FAKE_HSM_KEYGEN_LOST | FAKE_HSM_DESTROY);
	assert_int_equal(custody_create(&fx->c, &fx->actor, &p, &rec), KC_ERR_UNAVAILABLE);
	custody_csr_uninit(&rec);
	assert_int_equal(token_keys(fx, NULL, NULL), 1);
	assert_int_equal(unfinished(fx), 1);
	assert_int_equal(custody_pending_count(fx->kcd.pending), 1);
	/* Still refusing: nothing is forgotten. */
	assert_int_equal(custody_finish_pending(&fx->c), 1);
	assert_int_equal(token_keys(fx, NULL, NULL), 1);

	fake_hsm_set_faults(0);
	assert_int_equal(custody_finish_pending(&fx->c), 0);
	assert_int_equal(token_keys(fx, NULL, NULL), 0);
	assert_int_equal(unfinished(fx), 0);
	assert_int_equal(store_csr_count(fx->c.st, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(atomic_load(&fx->kcd.keys_in_custody), 0);
}

static void
test_delete(void **state)
{
	struct fixture		*fx = *state;
	struct store_csr	 rec, *got = NULL;
	struct kc_error		 err;

	make_csr(fx, ZONE, &rec);
	memset(&err, 0, sizeof(err));
	/* Another zone's id is not found, and changes nothing. */
	assert_int_equal(custody_delete(&fx->c, &fx->actor, ZONE2, rec.id, &err),
	    KC_ERR_NOT_FOUND);
	assert_int_equal(err.code, 1419);
	assert_int_equal(token_keys(fx, NULL, NULL), 1);

	memset(&err, 0, sizeof(err));
	assert_int_equal(custody_delete(&fx->c, &fx->actor, ZONE, rec.id, &err), 0);
	assert_int_equal(token_keys(fx, NULL, NULL), 0);
	assert_int_equal(store_csr_get(fx->c.st, ZONE, rec.id, &got), KC_ERR_NOT_FOUND);
	assert_int_equal(atomic_load(&fx->kcd.keys_in_custody), 0);
	assert_int_equal(audit_count(fx, "delete_csr.begin", rec.id), 1);
	assert_int_equal(audit_count(fx, "delete_csr", rec.id), 1);

	/* Deleted twice: not found, no second begin on the audit log. */
	memset(&err, 0, sizeof(err));
	assert_int_equal(custody_delete(&fx->c, &fx->actor, ZONE, rec.id, &err),
	    KC_ERR_NOT_FOUND);
	assert_int_equal(audit_count(fx, "delete_csr.begin", rec.id), 1);
	custody_csr_uninit(&rec);
}

/* A key that cannot be destroyed leaves the record DELETING; reconciliation finishes it. */
static void
test_delete_fails_then_reconcile(void **state)
{
	struct fixture		*fx = *state;
	struct custody_report	 rep;
	struct store_csr	 rec, *got = NULL;
	struct kc_error		 err;

	make_csr(fx, ZONE, &rec);
	memset(&err, 0, sizeof(err));
	fake_hsm_set_faults(FAKE_HSM_DESTROY);
	assert_int_not_equal(custody_delete(&fx->c, &fx->actor, ZONE, rec.id, &err), 0);
	fake_hsm_set_faults(0);
	assert_int_equal(unfinished(fx), 1);
	assert_int_equal(token_keys(fx, NULL, NULL), 1);
	/* Not served while DELETING. */
	assert_int_equal(store_csr_get(fx->c.st, ZONE, rec.id, &got), KC_ERR_NOT_FOUND);
	assert_int_equal(audit_count(fx, "delete_csr", rec.id), 1);

	assert_int_equal(custody_reconcile(&fx->c, &rep), 0);
	assert_int_equal(unfinished(fx), 0);
	assert_int_equal(token_keys(fx, NULL, NULL), 0);
	assert_int_equal(rep.ready, 0);
	assert_int_equal(rep.orphans, 0);
	assert_int_equal(rep.missing, 0);
	free(rep.missing_ids);
	custody_csr_uninit(&rec);
}

static void
test_undo(void **state)
{
	struct fixture		*fx = *state;
	struct store_csr	 rec, keep, *got = NULL;

	make_csr(fx, ZONE, &keep);
	make_csr(fx, ZONE, &rec);
	assert_int_equal(atomic_load(&fx->kcd.keys_in_custody), 2);
	assert_int_equal(custody_undo_create(&fx->c, ZONE, rec.id), 0);
	assert_int_equal(store_csr_get(fx->c.st, ZONE, rec.id, &got), KC_ERR_NOT_FOUND);
	assert_int_equal(token_keys(fx, NULL, NULL), 1);
	assert_int_equal(atomic_load(&fx->kcd.keys_in_custody), 1);
	/* The other record is untouched. */
	assert_int_equal(store_csr_get(fx->c.st, ZONE, keep.id, &got), 0);
	store_csr_free(got);
	custody_csr_uninit(&rec);
	custody_csr_uninit(&keep);
}

/* Reconciliation counts a key without a record and a record without a key. */
static void
test_reconcile_counts(void **state)
{
	static const uint8_t	 stray[HSM_KEY_ID_LEN] = { 0x5a, 0x5a, 0x01 };
	struct fixture		*fx = *state;
	struct custody_report	 rep;
	struct store_csr	 a, b;
	struct hsm_key		*k = NULL;
	int			 maybe;

	make_csr(fx, ZONE, &a);
	make_csr(fx, ZONE2, &b);
	assert_int_equal(hsm_keygen(fx->c.hs, HSM_KEY_P256, stray, "stray", &k, &maybe), 0);
	hsm_key_free(k);
	assert_int_equal(hsm_key_destroy(fx->c.hs, b.key_id), 0);

	assert_int_equal(custody_reconcile(&fx->c, &rep), 0);
	assert_int_equal(rep.ready, 2);
	assert_int_equal(rep.orphans, 1);
	assert_int_equal(rep.missing, 1);
	assert_int_equal(rep.token_keys, 2);
	assert_memory_equal(rep.missing_ids, b.key_id, STORE_KEY_ID_LEN);
	/* Counted, never destroyed: the stray key may be another's. */
	assert_int_equal(token_keys(fx, stray, NULL), 2);
	free(rep.missing_ids);
	custody_csr_uninit(&a);
	custody_csr_uninit(&b);
}

int
main(void)
{
	const struct CMUnitTest	 tests[] = {
		cmocka_unit_test_setup_teardown(test_create, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_create_fails_clean, fx_setup,
		    fx_teardown),
		cmocka_unit_test_setup_teardown(test_create_lost_reply, fx_setup,
		    fx_teardown),
		cmocka_unit_test_setup_teardown(test_delete, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_delete_fails_then_reconcile, fx_setup,
		    fx_teardown),
		cmocka_unit_test_setup_teardown(test_undo, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_reconcile_counts, fx_setup,
		    fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
