/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * store.c: owns SQLite: the schema, its migrations and every SQL statement of the daemon.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <sqlite3.h>

#include "arena.h"
#include "kc-err.h"
#include "kc-util.h"
#include "log.h"
#include "store.h"

#ifndef nitems
#endif

#define STORE_BUSY_TIMEOUT_MS	5000

/*
 * The state column holds the enum's values: they are on disk, so never renumber them.
 */
_Static_assert(STORE_CSR_CREATING == 0 && STORE_CSR_READY == 1 && STORE_CSR_DELETING == 2,
    "store_csr_state values are persisted");

/*
 * Schema migrations, applied in order, each in its own transaction. Step i (from 0) brings
 * the schema to version i + 1 and ends by setting PRAGMA user_version to that number; never
 * edit a step that has shipped, append a new one.
 *
 * SANs (and a certificate's hosts) are stored newline-joined in one TEXT column, NULL when
 * there are none: a DNS name can never contain a newline (store_csr_insert refuses one), a
 * record is always read whole, and a page of 50 records stays one indexed range scan with no
 * join or per-record query.
 */
static const char *const store_migrations[] = {
	/* 1: CSR records; custom hostnames (certificate uploads) referencing them. */
	"CREATE TABLE csrs (\n"
	"  id                  TEXT PRIMARY KEY NOT NULL,\n"
	"  zone_id             TEXT NOT NULL,\n"
	"  created_at_us       INTEGER NOT NULL,\n"
	"  state               INTEGER NOT NULL CHECK (state IN (0, 1, 2)),\n"
	"  key_type            TEXT NOT NULL,\n"
	"  key_id              BLOB NOT NULL UNIQUE\n"
	"                      CHECK (typeof(key_id) = 'blob' AND length(key_id) = 16),\n"
	"  country             TEXT NOT NULL,\n"
	"  state_name          TEXT NOT NULL,\n"
	"  locality            TEXT NOT NULL,\n"
	"  organization        TEXT NOT NULL,\n"
	"  organizational_unit TEXT,\n"
	"  common_name         TEXT NOT NULL,\n"
	"  sans                TEXT,\n"
	"  name                TEXT,\n"
	"  description         TEXT,\n"
	"  pubkey              BLOB,\n"
	"  csr_pem             TEXT,\n"
	"  UNIQUE (zone_id, id),\n"
	"  CHECK (state <> 1 OR (pubkey IS NOT NULL AND csr_pem IS NOT NULL))\n"
	");\n"
	"CREATE INDEX csrs_zone_list ON csrs (zone_id, state, created_at_us, id);\n"
	"CREATE TABLE custom_hostnames (\n"
	"  id                  TEXT PRIMARY KEY NOT NULL,\n"
	"  zone_id             TEXT NOT NULL,\n"
	"  hostname            TEXT NOT NULL,\n"
	"  csr_id              TEXT NOT NULL,\n"
	"  created_at_us       INTEGER NOT NULL,\n"
	"  ssl_id              TEXT NOT NULL UNIQUE,\n"
	"  bundle_method       TEXT NOT NULL,\n"
	"  certificate_pem     TEXT NOT NULL,\n"	/* leaf, then intermediates */
	"  issuer              TEXT NOT NULL,\n"
	"  serial_number       TEXT NOT NULL,\n"	/* decimal */
	"  signature_alg       TEXT NOT NULL,\n"
	"  uploaded_on_us      INTEGER NOT NULL,\n"
	"  expires_on_us       INTEGER NOT NULL,\n"	/* the leaf's notAfter */
	"  hosts               TEXT NOT NULL,\n"	/* DNS SANs, newline-joined */
	"  UNIQUE (zone_id, hostname),\n"
	/* A hostname can only use a CSR of its own zone. */
	"  FOREIGN KEY (zone_id, csr_id) REFERENCES csrs (zone_id, id)\n"
	");\n"
	"CREATE INDEX custom_hostnames_csr ON custom_hostnames (csr_id);\n"
	"CREATE INDEX custom_hostnames_list\n"
	"  ON custom_hostnames (zone_id, created_at_us, id);\n"
	"PRAGMA user_version = 1;\n",

	/*
	 * 2: a certificate's notBefore. The list filtered by CSR gets an index in its own
	 * order; it also serves the foreign key and the in-use check, so the index on csr_id
	 * alone goes.
	 */
	"ALTER TABLE custom_hostnames\n"
	"  ADD COLUMN not_before_us INTEGER NOT NULL DEFAULT 0;\n"
	"CREATE INDEX custom_hostnames_zone_csr\n"
	"  ON custom_hostnames (zone_id, csr_id, created_at_us, id);\n"
	"DROP INDEX custom_hostnames_csr;\n"
	"PRAGMA user_version = 2;\n",

	/*
	 * 3: each zone's number of READY (1) CSRs and of custom hostnames, so that a page's
	 * total_count is one primary key lookup instead of a count(*) over the zone's index
	 * entries. Triggers keep the numbers in the transaction that changes the rows, whoever
	 * writes them; a zone's row stays when its numbers fall to 0.
	 */
	"CREATE TABLE zone_counts (\n"
	"  zone_id             TEXT PRIMARY KEY NOT NULL,\n"
	"  csrs_ready          INTEGER NOT NULL DEFAULT 0,\n"
	"  hostnames           INTEGER NOT NULL DEFAULT 0\n"
	") WITHOUT ROWID;\n"
	"INSERT INTO zone_counts (zone_id, csrs_ready, hostnames)\n"
	"  SELECT zone_id, sum(ready), sum(hosts) FROM (\n"
	"    SELECT zone_id, count(*) AS ready, 0 AS hosts FROM csrs WHERE state = 1\n"
	"      GROUP BY zone_id\n"
	"    UNION ALL\n"
	"    SELECT zone_id, 0, count(*) FROM custom_hostnames GROUP BY zone_id)\n"
	"  GROUP BY zone_id;\n"
	"CREATE TRIGGER csrs_count_insert AFTER INSERT ON csrs\n"
	"  WHEN new.state = 1\n"
	"BEGIN\n"
	"  INSERT INTO zone_counts (zone_id, csrs_ready) VALUES (new.zone_id, 1)\n"
	"    ON CONFLICT (zone_id) DO UPDATE SET csrs_ready = csrs_ready + 1;\n"
	"END;\n"
	"CREATE TRIGGER csrs_count_update AFTER UPDATE OF zone_id, state ON csrs\n"
	"  WHEN (old.state = 1 OR new.state = 1) AND\n"
	"    (old.state IS NOT new.state OR old.zone_id IS NOT new.zone_id)\n"
	"BEGIN\n"
	"  UPDATE zone_counts SET csrs_ready = csrs_ready - 1\n"
	"    WHERE old.state = 1 AND zone_id = old.zone_id;\n"
	/* An upsert on INSERT ... SELECT needs the WHERE (the parser's ON ambiguity). */
	"  INSERT INTO zone_counts (zone_id, csrs_ready) SELECT new.zone_id, 1\n"
	"    WHERE new.state = 1\n"
	"    ON CONFLICT (zone_id) DO UPDATE SET csrs_ready = csrs_ready + 1;\n"
	"END;\n"
	"CREATE TRIGGER csrs_count_delete AFTER DELETE ON csrs\n"
	"  WHEN old.state = 1\n"
	"BEGIN\n"
	"  UPDATE zone_counts SET csrs_ready = csrs_ready - 1 WHERE zone_id = old.zone_id;\n"
	"END;\n"
	"CREATE TRIGGER custom_hostnames_count_insert AFTER INSERT ON custom_hostnames\n"
	"BEGIN\n"
	"  INSERT INTO zone_counts (zone_id, hostnames) VALUES (new.zone_id, 1)\n"
	"    ON CONFLICT (zone_id) DO UPDATE SET hostnames = hostnames + 1;\n"
	"END;\n"
	"CREATE TRIGGER custom_hostnames_count_update AFTER UPDATE OF zone_id\n"
	"  ON custom_hostnames WHEN old.zone_id IS NOT new.zone_id\n"
	"BEGIN\n"
	"  UPDATE zone_counts SET hostnames = hostnames - 1 WHERE zone_id = old.zone_id;\n"
	"  INSERT INTO zone_counts (zone_id, hostnames) VALUES (new.zone_id, 1)\n"
	"    ON CONFLICT (zone_id) DO UPDATE SET hostnames = hostnames + 1;\n"
	"END;\n"
	"CREATE TRIGGER custom_hostnames_count_delete AFTER DELETE ON custom_hostnames\n"
	"BEGIN\n"
	"  UPDATE zone_counts SET hostnames = hostnames - 1 WHERE zone_id = old.zone_id;\n"
	"END;\n"
	"PRAGMA user_version = 3;\n",

	/*
	 * 4: the audit log's anchor (issue 12): the seq and SHA-256 of the last record the
	 * daemon wrote, kept outside the log file so that a log cut short or rewritten is
	 * noticed at start-up. One row at most.
	 */
	"CREATE TABLE audit_anchor (\n"
	"  one INTEGER PRIMARY KEY CHECK (one = 1),\n"
	"  seq INTEGER NOT NULL CHECK (seq >= 1),\n"
	"  hash TEXT NOT NULL CHECK (length(hash) = 64)\n"
	") STRICT;\n"
	"PRAGMA user_version = 4;\n",

	/*
	 * 5: hostnames are compared case-insensitively (RFC 4343, issue 13): the daemon
	 * stores them lower case, so UNIQUE (zone_id, hostname) holds whatever the case. Rows
	 * written before are lowered here; two that differ only in case make this step fail
	 * on that constraint and the daemon refuse to start, with nothing changed: which of
	 * the two bindings to keep is the operator's choice (DESIGN.md "Store"), never the
	 * migration's. The triggers keep any later writer to lower case. SQLite's lower()
	 * folds ASCII only, which is all a stored hostname holds.
	 */
	"UPDATE custom_hostnames SET hostname = lower(hostname)\n"
	"  WHERE hostname <> lower(hostname);\n"
	"CREATE TRIGGER custom_hostnames_lower_insert BEFORE INSERT ON custom_hostnames\n"
	"  WHEN new.hostname <> lower(new.hostname)\n"
	"BEGIN\n"
	"  SELECT RAISE(ABORT, 'custom hostname not in lower case');\n"
	"END;\n"
	"CREATE TRIGGER custom_hostnames_lower_update BEFORE UPDATE OF hostname\n"
	"  ON custom_hostnames WHEN new.hostname <> lower(new.hostname)\n"
	"BEGIN\n"
	"  SELECT RAISE(ABORT, 'custom hostname not in lower case');\n"
	"END;\n"
	"PRAGMA user_version = 5;\n",

	/*
	 * 6: the optional fields of a custom hostname (issue 13), stored as the client sent
	 * them and echoed: NULL is "never set". custom_metadata and ssl_settings hold
	 * compact JSON objects that store_json_check() accepted.
	 */
	"ALTER TABLE custom_hostnames ADD COLUMN custom_metadata TEXT;\n"
	"ALTER TABLE custom_hostnames ADD COLUMN custom_origin_server TEXT;\n"
	"ALTER TABLE custom_hostnames ADD COLUMN custom_origin_sni TEXT;\n"
	"ALTER TABLE custom_hostnames ADD COLUMN ssl_method TEXT\n"
	"  CHECK (ssl_method IN ('http', 'txt', 'email'));\n"
	"ALTER TABLE custom_hostnames ADD COLUMN ssl_type TEXT CHECK (ssl_type = 'dv');\n"
	"ALTER TABLE custom_hostnames ADD COLUMN ssl_wildcard INTEGER\n"
	"  CHECK (ssl_wildcard IN (0, 1));\n"
	"ALTER TABLE custom_hostnames ADD COLUMN ssl_settings TEXT;\n"
	"PRAGMA user_version = 6;\n",

	/*
	 * 7: the fallback origin of a zone (issue 13), one row per zone at most: a hostname
	 * the daemon checked and folded to lower case (API.md "fallback_origin").
	 */
	"CREATE TABLE fallback_origins (\n"
	"  zone_id TEXT PRIMARY KEY CHECK (length(zone_id) = 32),\n"
	"  origin TEXT NOT NULL\n"
	"    CHECK (length(origin) BETWEEN 1 AND 253 AND origin = lower(origin)),\n"
	"  created_at_us INTEGER NOT NULL,\n"
	"  updated_at_us INTEGER NOT NULL CHECK (updated_at_us >= created_at_us)\n"
	") STRICT;\n"
	"PRAGMA user_version = 7;\n",

	/*
	 * 8: the certificate as the client uploaded it, echoed as ssl.custom_certificate
	 * (issue 13), beside the chain that bundle_method built from it (certificate_pem);
	 * a bundle_method PATCH rebuilds the chain from it. Hostnames stored before have
	 * only their chain, which stands in for the upload. And ssl.certificate_authority,
	 * as last sent (stored only: certificates are uploaded, never issued here).
	 */
	"ALTER TABLE custom_hostnames ADD COLUMN certificate_uploaded TEXT;\n"
	"UPDATE custom_hostnames SET certificate_uploaded = certificate_pem;\n"
	"ALTER TABLE custom_hostnames ADD COLUMN ssl_certificate_authority TEXT\n"
	"  CHECK (ssl_certificate_authority IN ('google', 'lets_encrypt', 'ssl_com'));\n"
	"PRAGMA user_version = 8;\n",
};

/* Every column of a CSR record, in the order store_csr_from_row() reads them. */
#define STORE_CSR_COLUMNS						\
	"id, zone_id, created_at_us, state, key_type, key_id, "		\
	"country, state_name, locality, organization, "			\
	"organizational_unit, common_name, sans, name, description, "	\
	"pubkey, csr_pem"

/* Every column of a custom hostname, in the order store_hostname_from_row() reads them. */
#define STORE_HOST_COLUMNS						\
	"id, zone_id, hostname, csr_id, created_at_us, ssl_id, "	\
	"bundle_method, certificate_pem, issuer, serial_number, "	\
	"signature_alg, uploaded_on_us, not_before_us, expires_on_us, hosts, "	\
	"custom_metadata, custom_origin_server, custom_origin_sni, "	\
	"ssl_method, ssl_type, ssl_wildcard, ssl_settings, "	\
	"certificate_uploaded, ssl_certificate_authority"

/* A signer row's columns, in the order store_signer_rows() reads them. */
#define STORE_SIGNER_COLUMNS						\
	"c.key_id, c.id, c.key_type, c.pubkey, h.zone_id, h.hostname, h.id, "	\
	"h.certificate_pem"

/* The columns of a fallback origin, in the order store_fallback_row() reads them. */
#define STORE_FALLBACK_COLUMNS	"origin, created_at_us, updated_at_us"

/*
 * The custom hostname list in created_at order comes in two prepared variants, each with
 * its own index: the whole zone (custom_hostnames_list) and one CSR's
 * (custom_hostnames_zone_csr). Their bind indexes agree: ?1 zone, ?3 csr_id, ?4 limit,
 * ?5 offset. The whole zone's total is zone_counts'; one CSR's counts its rows. Any other
 * filter or order is store_host_find_sql()'s statement, prepared per call.
 */
#define STORE_HOST_ZONE		"WHERE zone_id = ?1 "
#define STORE_HOST_CSR		"WHERE zone_id = ?1 AND csr_id = ?3 "
#define STORE_HOST_ASC		"ORDER BY created_at_us ASC, id ASC LIMIT ?4 OFFSET ?5"
#define STORE_HOST_DESC		"ORDER BY created_at_us DESC, id DESC LIMIT ?4 OFFSET ?5"

enum store_stmt {
	STMT_BEGIN,
	STMT_BEGIN_IMMEDIATE,
	STMT_COMMIT,
	STMT_ROLLBACK,
	STMT_PING,
	STMT_CSR_INSERT,
	STMT_CSR_SET_READY,
	STMT_CSR_STATE_IN_ZONE,
	STMT_CSR_IN_USE,
	STMT_CSR_SET_DELETING,
	STMT_CSR_REMOVE,
	STMT_CSR_GET,
	STMT_CSR_COUNT_ZONE,
	STMT_CSR_LIST_ASC,
	STMT_CSR_LIST_DESC,
	STMT_CSR_LIST_NAME_ASC,
	STMT_CSR_LIST_NAME_DESC,
	STMT_CSR_UNFINISHED,
	STMT_CSR_KEY_IDS,
	STMT_CSR_COUNT,
	STMT_HOST_INSERT,
	STMT_HOST_UPDATE,
	STMT_HOST_GET,
	STMT_HOST_DELETE,
	STMT_HOST_COUNT_ZONE,
	STMT_HOST_LIST_ZONE_ASC,
	STMT_HOST_LIST_ZONE_DESC,
	STMT_HOST_COUNT_CSR,
	STMT_HOST_LIST_CSR_ASC,
	STMT_HOST_LIST_CSR_DESC,
	STMT_ANCHOR_GET,
	STMT_ANCHOR_PUT,
	STMT_JSON_OBJECT,
	STMT_JSON_METADATA,
	STMT_JSON_SETTINGS,
	STMT_FALLBACK_GET,
	STMT_FALLBACK_PUT,
	STMT_FALLBACK_DELETE,
	STMT_SIGNER_ALL,
	STMT_SIGNER_ZONE,
	STMT_SIGNER_KEY,
	STMT_MAX
};

/* Prepared once per handle in store_open(); the ?NNN numbers are the bind indexes. */
static const char *const store_sql[STMT_MAX] = {
	[STMT_BEGIN] = "BEGIN",
	[STMT_BEGIN_IMMEDIATE] = "BEGIN IMMEDIATE",
	[STMT_COMMIT] = "COMMIT",
	[STMT_ROLLBACK] = "ROLLBACK",
	[STMT_PING] = "SELECT 1",
	/* store_json_check(): ?1 is the text; the first is run before the others. */
	[STMT_JSON_OBJECT] =
	    "SELECT CASE WHEN json_valid(?1) THEN json_type(?1) = 'object' ELSE 0 END",
	[STMT_JSON_METADATA] =
	    "SELECT EXISTS (SELECT 1 FROM json_each(?1) WHERE type <> 'text')",
	[STMT_JSON_SETTINGS] =
	    "SELECT CASE "
	    "WHEN EXISTS (SELECT 1 FROM json_each(?1) WHERE key NOT IN "
	    "  ('ciphers', 'early_hints', 'http2', 'min_tls_version', 'tls_1_3')) THEN 1434 "
	    "WHEN json_type(?1, '$.http2') IS NOT NULL AND "
	    "  (json_type(?1, '$.http2') <> 'text' OR "
	    "  json_extract(?1, '$.http2') NOT IN ('on', 'off')) THEN 1422 "
	    "WHEN json_type(?1, '$.tls_1_3') IS NOT NULL AND "
	    "  (json_type(?1, '$.tls_1_3') <> 'text' OR "
	    "  json_extract(?1, '$.tls_1_3') NOT IN ('on', 'off')) THEN 1424 "
	    "WHEN json_type(?1, '$.min_tls_version') IS NOT NULL AND "
	    "  (json_type(?1, '$.min_tls_version') <> 'text' OR "
	    "  json_extract(?1, '$.min_tls_version') NOT IN ('1.0', '1.1', '1.2', '1.3')) "
	    "  THEN 1425 "
	    "WHEN json_type(?1, '$.early_hints') IS NOT NULL AND "
	    "  (json_type(?1, '$.early_hints') <> 'text' OR "
	    "  json_extract(?1, '$.early_hints') NOT IN ('on', 'off')) THEN 1434 "
	    "WHEN json_type(?1, '$.ciphers') IS NOT NULL AND "
	    "  (json_type(?1, '$.ciphers') <> 'array' OR "
	    "  EXISTS (SELECT 1 FROM json_each(?1, '$.ciphers') WHERE type <> 'text')) "
	    "  THEN 1442 "
	    "WHEN json_array_length(?1, '$.ciphers') > 0 AND "
	    "  json_extract(?1, '$.min_tls_version') = '1.3' THEN 1443 "
	    "ELSE 0 END",
	[STMT_ANCHOR_GET] = "SELECT seq, hash FROM audit_anchor WHERE one = 1",
	[STMT_ANCHOR_PUT] =
	    "INSERT INTO audit_anchor (one, seq, hash) VALUES (1, ?1, ?2) "
	    "ON CONFLICT (one) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
	/* Each returns the row as STORE_FALLBACK_COLUMNS: read, written or removed. */
	[STMT_FALLBACK_GET] =
	    "SELECT " STORE_FALLBACK_COLUMNS " FROM fallback_origins WHERE zone_id = ?1",
	[STMT_FALLBACK_PUT] =
	    "INSERT INTO fallback_origins (zone_id, origin, created_at_us, updated_at_us) "
	    "VALUES (?1, ?2, ?3, ?3) ON CONFLICT (zone_id) DO UPDATE SET "
	    "origin = excluded.origin, "
	    "updated_at_us = max(excluded.updated_at_us, created_at_us) "
	    "RETURNING " STORE_FALLBACK_COLUMNS,
	[STMT_FALLBACK_DELETE] =
	    "DELETE FROM fallback_origins WHERE zone_id = ?1 RETURNING " STORE_FALLBACK_COLUMNS,
	[STMT_CSR_INSERT] =
	    "INSERT INTO csrs (id, zone_id, created_at_us, state, key_type, key_id, "
	    "country, state_name, locality, organization, organizational_unit, "
	    "common_name, sans, name, description) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
	[STMT_CSR_SET_READY] =
	    "UPDATE csrs SET state = ?1, pubkey = ?2, csr_pem = ?3 "
	    "WHERE id = ?4 AND state = ?5",
	[STMT_CSR_STATE_IN_ZONE] =
	    "SELECT state FROM csrs WHERE id = ?1 AND zone_id = ?2",
	[STMT_CSR_IN_USE] =
	    "SELECT 1 FROM custom_hostnames WHERE zone_id = ?1 AND csr_id = ?2 LIMIT 1",
	[STMT_CSR_SET_DELETING] =
	    "UPDATE csrs SET state = ?1 WHERE id = ?2 AND state = ?3",
	[STMT_CSR_REMOVE] =
	    "DELETE FROM csrs WHERE id = ?1",
	[STMT_CSR_GET] =
	    "SELECT " STORE_CSR_COLUMNS " FROM csrs "
	    "WHERE id = ?1 AND zone_id = ?2 AND state = ?3",
	/* A zone that never had a READY record or a hostname has no row: 0. */
	[STMT_CSR_COUNT_ZONE] =
	    "SELECT coalesce((SELECT csrs_ready FROM zone_counts WHERE zone_id = ?1), 0)",
	[STMT_CSR_LIST_ASC] =
	    "SELECT " STORE_CSR_COLUMNS " FROM csrs "
	    "WHERE zone_id = ?1 AND state = ?2 "
	    "ORDER BY created_at_us ASC, id ASC LIMIT ?3 OFFSET ?4",
	[STMT_CSR_LIST_DESC] =
	    "SELECT " STORE_CSR_COLUMNS " FROM csrs "
	    "WHERE zone_id = ?1 AND state = ?2 "
	    "ORDER BY created_at_us DESC, id DESC LIMIT ?3 OFFSET ?4",
	[STMT_CSR_LIST_NAME_ASC] =
	    "SELECT " STORE_CSR_COLUMNS " FROM csrs "
	    "WHERE zone_id = ?1 AND state = ?2 "
	    "ORDER BY name ASC, created_at_us ASC, id ASC LIMIT ?3 OFFSET ?4",
	[STMT_CSR_LIST_NAME_DESC] =
	    "SELECT " STORE_CSR_COLUMNS " FROM csrs "
	    "WHERE zone_id = ?1 AND state = ?2 "
	    "ORDER BY name DESC, created_at_us DESC, id DESC LIMIT ?3 OFFSET ?4",
	[STMT_CSR_UNFINISHED] =
	    "SELECT " STORE_CSR_COLUMNS " FROM csrs "
	    "WHERE state IN (?1, ?2) ORDER BY created_at_us, id",
	[STMT_CSR_KEY_IDS] =
	    "SELECT key_id FROM csrs",
	[STMT_CSR_COUNT] =
	    "SELECT count(*) FROM csrs WHERE state = ?1",
	/* The certificate's fields are ?1 to ?11 in both, the row ?12 and ?13. */
	[STMT_HOST_INSERT] =
	    "INSERT INTO custom_hostnames (csr_id, ssl_id, bundle_method, certificate_pem, "
	    "issuer, serial_number, signature_alg, uploaded_on_us, not_before_us, "
	    "expires_on_us, hosts, id, zone_id, hostname, created_at_us, "
	    "custom_metadata, custom_origin_server, custom_origin_sni, ssl_method, "
	    "ssl_type, ssl_wildcard, ssl_settings, certificate_uploaded, "
	    "ssl_certificate_authority) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, "
	    "?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24)",
	[STMT_HOST_UPDATE] =
	    "UPDATE custom_hostnames SET csr_id = ?1, ssl_id = ?2, bundle_method = ?3, "
	    "certificate_pem = ?4, issuer = ?5, serial_number = ?6, signature_alg = ?7, "
	    "uploaded_on_us = ?8, not_before_us = ?9, expires_on_us = ?10, hosts = ?11, "
	    "custom_metadata = ?16, custom_origin_server = ?17, custom_origin_sni = ?18, "
	    "ssl_method = ?19, ssl_type = ?20, ssl_wildcard = ?21, ssl_settings = ?22, "
	    "certificate_uploaded = ?23, ssl_certificate_authority = ?24 "
	    "WHERE id = ?12 AND zone_id = ?13",
	[STMT_HOST_GET] =
	    "SELECT " STORE_HOST_COLUMNS " FROM custom_hostnames "
	    "WHERE id = ?1 AND zone_id = ?2",
	/*
	 * The signer's view (issue 16): the keys of READY CSRs bound to a hostname, with the
	 * hostname and its certificate; ?1 a zone. The key's hostnames, ?1 a key id.
	 */
	[STMT_SIGNER_ALL] =
	    "SELECT " STORE_SIGNER_COLUMNS " FROM custom_hostnames h JOIN csrs c "
	    "ON c.zone_id = h.zone_id AND c.id = h.csr_id WHERE c.state = 1 "
	    "ORDER BY c.key_id, h.hostname",
	[STMT_SIGNER_ZONE] =
	    "SELECT " STORE_SIGNER_COLUMNS " FROM custom_hostnames h JOIN csrs c "
	    "ON c.zone_id = h.zone_id AND c.id = h.csr_id WHERE h.zone_id = ?1 AND "
	    "c.state = 1 ORDER BY c.key_id, h.hostname",
	[STMT_SIGNER_KEY] =
	    "SELECT h.zone_id, h.hostname FROM csrs c JOIN custom_hostnames h "
	    "ON h.zone_id = c.zone_id AND h.csr_id = c.id WHERE c.key_id = ?1 AND c.state = 1",
	[STMT_HOST_DELETE] =
	    "DELETE FROM custom_hostnames WHERE id = ?1 AND zone_id = ?2",
	[STMT_HOST_COUNT_ZONE] =
	    "SELECT coalesce((SELECT hostnames FROM zone_counts WHERE zone_id = ?1), 0)",
	[STMT_HOST_LIST_ZONE_ASC] =
	    "SELECT " STORE_HOST_COLUMNS " FROM custom_hostnames "
	    STORE_HOST_ZONE STORE_HOST_ASC,
	[STMT_HOST_LIST_ZONE_DESC] =
	    "SELECT " STORE_HOST_COLUMNS " FROM custom_hostnames "
	    STORE_HOST_ZONE STORE_HOST_DESC,
	[STMT_HOST_COUNT_CSR] =
	    "SELECT count(*) FROM custom_hostnames " STORE_HOST_CSR,
	[STMT_HOST_LIST_CSR_ASC] =
	    "SELECT " STORE_HOST_COLUMNS " FROM custom_hostnames "
	    STORE_HOST_CSR STORE_HOST_ASC,
	[STMT_HOST_LIST_CSR_DESC] =
	    "SELECT " STORE_HOST_COLUMNS " FROM custom_hostnames "
	    STORE_HOST_CSR STORE_HOST_DESC,
};

/* The statements of one variant of the custom hostname list. */
struct store_host_query {
	enum store_stmt	 count;
	enum store_stmt	 asc;
	enum store_stmt	 desc;
};

static const struct store_host_query store_host_by_zone = {
	STMT_HOST_COUNT_ZONE, STMT_HOST_LIST_ZONE_ASC, STMT_HOST_LIST_ZONE_DESC
};
static const struct store_host_query store_host_by_csr = {
	STMT_HOST_COUNT_CSR, STMT_HOST_LIST_CSR_ASC, STMT_HOST_LIST_CSR_DESC
};

struct store {
	sqlite3		*db;
	sqlite3_stmt	*stmt[STMT_MAX];
};

static int	store_error(struct store *, int, const char *);
static void	store_done(sqlite3_stmt *);
static int	store_step_done(struct store *, enum store_stmt, const char *);
static int	store_begin(struct store *, enum store_stmt);
static int	store_commit(struct store *);
static void	store_rollback(struct store *);
static int	store_bind_text(sqlite3_stmt *, int, const char *);
static int	store_bind_blob(sqlite3_stmt *, int, const void *, size_t);
static int	store_bind_int64(sqlite3_stmt *, int, int64_t);
static int	store_lines_join(char *const *, size_t, const char *, const char *,
		    char **);
static void	*store_mem(struct kc_arena *, size_t);
static int	store_lines_split(const char *, struct kc_arena *, char ***, size_t *);
static int	store_col_null(sqlite3_stmt *, int, int);
static int	store_col_text(sqlite3_stmt *, int, int, struct kc_arena *, char **);
static int	store_col_lines(sqlite3_stmt *, int, int, struct kc_arena *, char ***,
		    size_t *);
static int	store_col_fixed(sqlite3_stmt *, int, char *, size_t);
static int	store_csr_from_row(sqlite3_stmt *, struct kc_arena *, struct store_csr **);
static int	store_csr_rows(struct store *, sqlite3_stmt *, size_t, struct kc_arena *,
		    struct store_csr ***, size_t *);
static int	store_csr_ready_inlock(struct store *, const char *, const char *);
static bool	store_hostname_complete(const struct store_hostname *);
static bool	store_lower(const char *);
static int	store_hostname_bind(sqlite3_stmt *, const struct store_hostname *,
		    const char *);
static int	store_hostname_from_row(sqlite3_stmt *, struct store_hostname **);
static int	store_hostname_rows(struct store *, sqlite3_stmt *, size_t,
		    struct store_hostname ***, size_t *);
static int	store_count(struct store *, enum store_stmt, const char *, uint64_t *);
static bool	store_host_plain(const struct store_hostname_filter *);
static char	*store_like_text(const char *, bool);
static int	store_host_find_sql(struct store *, const char *,
		    const struct store_hostname_filter *, bool, int64_t, int64_t,
		    sqlite3_stmt **);
static int	store_host_find_dynamic(struct store *, const char *,
		    const struct store_hostname_filter *, unsigned int, unsigned int,
		    struct store_hostname ***, size_t *, uint64_t *);
static bool	store_page(unsigned int, unsigned int, uint64_t, uint64_t *, size_t *);
static int	store_user_version(sqlite3 *, int *);
static int	store_wal(sqlite3 *, const char *, char **);
static int	store_migrate(sqlite3 *, char **);
static int	store_file_missing(const char *, int *, char **);
static int	store_fallback_run(struct store *, enum store_stmt, const char *,
		    struct store_fallback *);

/* Translate a SQLite result code, logging what failed unless it is an expected conflict. */
static int
store_error(struct store *s, int rc, const char *what)
{
	const char	*msg = sqlite3_errmsg(s->db);

	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		log_warnx("store: %s: %s (busy for %d ms)", what, msg, STORE_BUSY_TIMEOUT_MS);
		return KC_ERR_UNAVAILABLE;
	case SQLITE_NOMEM:
		log_warnx("store: %s: %s", what, msg);
		return KC_ERR_NOMEM;
	case SQLITE_CONSTRAINT:
		if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE ||
		    rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
			log_debug("store: %s: %s", what, msg);
			return KC_ERR_CONFLICT;
		}
		break;
	}
	log_warnx("store: %s: %s", what, msg);
	return KC_ERR_STORE;
}

/* Make a statement ready for its next use; harmless when it is already. */
static void
store_done(sqlite3_stmt *st)
{
	(void)sqlite3_reset(st);
	(void)sqlite3_clear_bindings(st);
}

/* Run a statement that returns no row (its bindings set by the caller). */
static int
store_step_done(struct store *s, enum store_stmt which, const char *what)
{
	sqlite3_stmt	*st = s->stmt[which];
	int		 rc, r = 0;

	if ((rc = sqlite3_step(st)) != SQLITE_DONE)
		r = store_error(s, rc, what);
	store_done(st);
	return r;
}

/* Open a transaction: STMT_BEGIN (a consistent read) or STMT_BEGIN_IMMEDIATE (a write). */
static int
store_begin(struct store *s, enum store_stmt which)
{
	return store_step_done(s, which, "begin");
}

static int
store_commit(struct store *s)
{
	int	 r;

	if ((r = store_step_done(s, STMT_COMMIT, "commit")) != 0)
		store_rollback(s);
	return r;
}

/* Abandon the open transaction, if any (a failed COMMIT may already have ended it). */
static void
store_rollback(struct store *s)
{
	int	 rc;

	if (sqlite3_get_autocommit(s->db))
		return;
	if ((rc = sqlite3_step(s->stmt[STMT_ROLLBACK])) != SQLITE_DONE)
		log_warnx("store: rollback: %s", sqlite3_errmsg(s->db));
	store_done(s->stmt[STMT_ROLLBACK]);
}

/*
 * Bind helpers. SQLITE_STATIC is safe: every statement is reset and its bindings cleared
 * before the function that bound them returns.
 */
static int
store_bind_text(sqlite3_stmt *st, int idx, const char *v)
{
	if (v == NULL)
		return sqlite3_bind_null(st, idx);
	return sqlite3_bind_text(st, idx, v, -1, SQLITE_STATIC);
}

static int
store_bind_blob(sqlite3_stmt *st, int idx, const void *v, size_t len)
{
	if (v == NULL)
		return sqlite3_bind_null(st, idx);
	return sqlite3_bind_blob64(st, idx, v, len, SQLITE_STATIC);
}

static int
store_bind_int64(sqlite3_stmt *st, int idx, int64_t v)
{
	return sqlite3_bind_int64(st, idx, v);
}

/*
 * The n lines of v (a record's SANs or hosts), newline-joined; NULL when there are none.
 * what and id name the record in the log.
 */
static int
store_lines_join(char *const *v, size_t n, const char *what, const char *id, char **out)
{
	char	*buf = NULL, *p;
	size_t	 i, len, total = 0;
	int	 r = KC_ERR_INVALID;

	*out = NULL;
	if (n == 0) {
		r = 0;
		goto out;
	}
	if (v == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		if (v[i] == NULL || strchr(v[i], '\n') != NULL) {
			log_warnx("store: %s %s: name %zu is missing or has a newline",
			    what, id, i);
			goto out;
		}
		len = strlen(v[i]);
		if (len > SIZE_MAX - total - 1)
			goto out;
		total += len + 1;	/* '\n' or the final NUL */
	}
	if ((buf = malloc(total)) == NULL) {
		r = KC_ERR_NOMEM;
		goto out;
	}
	for (i = 0, p = buf; i < n; i++) {
		len = strlen(v[i]);
		memcpy(p, v[i], len);
		p += len;
		*p++ = (i + 1 < n) ? '\n' : '\0';
	}
	*out = buf;
	buf = NULL;
	r = 0;
 out:
	free(buf);
	return r;
}

/* Memory for a record: from the caller's arena when there is one, else malloc'd. */
static void *
store_mem(struct kc_arena *a, size_t n)
{
	return a != NULL ? kc_arena_alloc(a, n) : malloc(n);
}

/* Undo store_lines_join(); joined NULL gives no lines. */
static int
store_lines_split(const char *joined, struct kc_arena *a, char ***sansp, size_t *np)
{
	char		**sans = NULL;
	const char	 *p, *nl;
	size_t		  i, n = 1;
	int		  r = KC_ERR_NOMEM;

	*sansp = NULL;
	*np = 0;
	if (joined == NULL)
		return 0;
	for (p = joined; (p = strchr(p, '\n')) != NULL; p++)
		n++;
	if (a != NULL ? (sans = kc_arena_calloc(a, n, sizeof(*sans))) == NULL :
	    (sans = calloc(n, sizeof(*sans))) == NULL)
		goto out;
	for (i = 0, p = joined; i < n; i++) {
		if ((nl = strchr(p, '\n')) == NULL)
			nl = p + strlen(p);
		if ((sans[i] = a != NULL ? kc_arena_strndup(a, p, nl - p) :
		    strndup(p, nl - p)) == NULL)
			goto out;
		p = nl + 1;
	}
	*sansp = sans;
	*np = n;
	sans = NULL;
	r = 0;
 out:
	if (sans != NULL && a == NULL) {
		for (i = 0; i < n; i++)
			free(sans[i]);
		free(sans);
	}
	return r;
}

/*
 * Why sqlite3_column_text() gave no text: the column is NULL, an error (a damaged row)
 * unless nullable, or SQLite ran out of memory. Asked only then: rows are read column by
 * column, and a NULL pointer is the rare case.
 */
static int
store_col_null(sqlite3_stmt *st, int col, int nullable)
{
	if (sqlite3_column_type(st, col) != SQLITE_NULL)
		return KC_ERR_NOMEM;
	return nullable ? 0 : KC_ERR_STORE;
}

/*
 * Copy a TEXT column (malloc'd: it may end up in a protobuf message, which free() frees);
 * NULL is an error (a damaged row) unless nullable.
 */
static int
store_col_text(sqlite3_stmt *st, int col, int nullable, struct kc_arena *a, char **out)
{
	const unsigned char	*t;
	int			 len;

	*out = NULL;
	if ((t = sqlite3_column_text(st, col)) == NULL)
		return store_col_null(st, col, nullable);
	/* SQLite knows the length (and NUL-terminates the text): no strlen() needed. */
	if ((len = sqlite3_column_bytes(st, col)) < 0)
		return KC_ERR_STORE;
	if ((*out = store_mem(a, (size_t)len + 1)) == NULL)
		return KC_ERR_NOMEM;
	memcpy(*out, t, (size_t)len + 1);
	return 0;
}

/* Split a newline-joined TEXT column (store_lines_join()) straight from SQLite's copy. */
static int
store_col_lines(sqlite3_stmt *st, int col, int nullable, struct kc_arena *a, char ***vp,
    size_t *np)
{
	const unsigned char	*t;

	*vp = NULL;
	*np = 0;
	if ((t = sqlite3_column_text(st, col)) == NULL)
		return store_col_null(st, col, nullable);
	return store_lines_split((const char *)t, a, vp, np);
}

/* Copy a TEXT column into a fixed buffer of size bytes (NUL included). */
static int
store_col_fixed(sqlite3_stmt *st, int col, char *buf, size_t size)
{
	const unsigned char	*t;
	int			 len;

	if ((t = sqlite3_column_text(st, col)) == NULL)
		return store_col_null(st, col, 0);
	len = sqlite3_column_bytes(st, col);
	if (len < 0 || (size_t)len >= size)
		return KC_ERR_STORE;
	memcpy(buf, t, len);
	buf[len] = '\0';
	return 0;
}

/* Build a record from the current row of a statement selecting STORE_CSR_COLUMNS. */
static int
store_csr_from_row(sqlite3_stmt *st, struct kc_arena *a, struct store_csr **cp)
{
	struct store_csr	*c = NULL;
	const void		*blob;
	int64_t			 state;
	int			 len, r = KC_ERR_NOMEM;

	*cp = NULL;
	if (a != NULL ? (c = kc_arena_calloc(a, 1, sizeof(*c))) == NULL :
	    (c = calloc(1, sizeof(*c))) == NULL)
		goto out;
	r = KC_ERR_STORE;
	state = sqlite3_column_int64(st, 3);
	if (state < STORE_CSR_CREATING || state > STORE_CSR_DELETING)
		goto out;
	c->state = (enum store_csr_state)state;
	c->created_at_us = sqlite3_column_int64(st, 2);
	if (sqlite3_column_type(st, 5) != SQLITE_BLOB ||
	    sqlite3_column_bytes(st, 5) != STORE_KEY_ID_LEN)
		goto out;
	if ((blob = sqlite3_column_blob(st, 5)) == NULL) {
		r = KC_ERR_NOMEM;
		goto out;
	}
	memcpy(c->key_id, blob, STORE_KEY_ID_LEN);

	if ((r = store_col_fixed(st, 0, c->id, sizeof(c->id))) != 0 ||
	    (r = store_col_fixed(st, 1, c->zone_id, sizeof(c->zone_id))) != 0 ||
	    (r = store_col_text(st, 4, 0, a, &c->key_type)) != 0 ||
	    (r = store_col_text(st, 6, 0, a, &c->country)) != 0 ||
	    (r = store_col_text(st, 7, 0, a, &c->state_name)) != 0 ||
	    (r = store_col_text(st, 8, 0, a, &c->locality)) != 0 ||
	    (r = store_col_text(st, 9, 0, a, &c->organization)) != 0 ||
	    (r = store_col_text(st, 10, 1, a, &c->organizational_unit)) != 0 ||
	    (r = store_col_text(st, 11, 0, a, &c->common_name)) != 0 ||
	    (r = store_col_lines(st, 12, 1, a, &c->sans, &c->nsans)) != 0 ||
	    (r = store_col_text(st, 13, 1, a, &c->name)) != 0 ||
	    (r = store_col_text(st, 14, 1, a, &c->description)) != 0 ||
	    (r = store_col_text(st, 16, 1, a, &c->csr_pem)) != 0)
		goto out;

	if (sqlite3_column_type(st, 15) != SQLITE_NULL) {
		r = KC_ERR_NOMEM;
		len = sqlite3_column_bytes(st, 15);
		if (len > 0) {
			if ((blob = sqlite3_column_blob(st, 15)) == NULL)
				goto out;
			if ((c->pubkey_der = store_mem(a, len)) == NULL)
				goto out;
			memcpy(c->pubkey_der, blob, len);
			c->pubkey_len = len;
		}
	}
	*cp = c;
	c = NULL;
	r = 0;
 out:
	if (r == KC_ERR_STORE)
		log_warnx("store: damaged csr row");
	if (a == NULL)
		store_csr_free(c);
	return r;
}

/*
 * Step st (bindings set by the caller) and collect every row; hint sizes the first
 * allocation. The caller resets st.
 */
static int
store_csr_rows(struct store *s, sqlite3_stmt *st, size_t hint, struct kc_arena *a,
    struct store_csr ***vp, size_t *np)
{
	struct store_csr	**v = NULL, **nv, *c;
	size_t			  n = 0, cap = 0, ncap;
	int			  rc, r = 0;

	*vp = NULL;
	*np = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			ncap = cap == 0 ? (hint > 0 && hint < 1024 ? hint : 16) : cap * 2;
			if (ncap > SIZE_MAX / sizeof(*v)) {
				r = KC_ERR_NOMEM;
				goto out;
			}
			if (a == NULL)
				nv = realloc(v, ncap * sizeof(*v));
			else if ((nv = kc_arena_alloc(a, ncap * sizeof(*v))) != NULL && n > 0)
				memcpy(nv, v, n * sizeof(*v));
			if (nv == NULL) {
				r = KC_ERR_NOMEM;
				goto out;
			}
			v = nv;
			cap = ncap;
		}
		if ((r = store_csr_from_row(st, a, &c)) != 0)
			goto out;
		v[n++] = c;
	}
	if (rc != SQLITE_DONE) {
		r = store_error(s, rc, "read csrs");
		goto out;
	}
	*vp = v;
	*np = n;
	v = NULL;
	n = 0;
 out:
	if (a == NULL)
		store_csr_free_array(v, n);
	return r;
}

/* Run a count(*) statement whose bindings the caller set. */
static int
store_count(struct store *s, enum store_stmt which, const char *what, uint64_t *n)
{
	sqlite3_stmt	*st = s->stmt[which];
	sqlite3_int64	 v;
	int		 rc, r = 0;

	*n = 0;
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		r = store_error(s, rc, what);
		goto out;
	}
	if ((v = sqlite3_column_int64(st, 0)) < 0) {
		r = KC_ERR_STORE;
		goto out;
	}
	*n = (uint64_t)v;
 out:
	store_done(st);
	return r;
}

/*
 * Where a page (from 1) starts, and how many rows it can hold at most; false past the end.
 * (page - 1) * per_page cannot overflow 64 bits, but may exceed SQLite's int64.
 */
static bool
store_page(unsigned int page, unsigned int per_page, uint64_t count, uint64_t *skip,
    size_t *rows)
{
	*skip = (uint64_t)(page - 1) * per_page;
	*rows = 0;
	if (*skip >= count || *skip > INT64_MAX)
		return false;
	*rows = count - *skip < per_page ? (size_t)(count - *skip) : per_page;
	return true;
}

/*
 * Within the caller's transaction: is id a READY record of zone_id?
 * @retval 0, KC_ERR_NOT_FOUND, or the SQLite error
 */
static int
store_csr_ready_inlock(struct store *s, const char *zone_id, const char *id)
{
	sqlite3_stmt	*st = s->stmt[STMT_CSR_STATE_IN_ZONE];
	int		 rc, r;

	if ((rc = store_bind_text(st, 1, id)) != SQLITE_OK ||
	    (rc = store_bind_text(st, 2, zone_id)) != SQLITE_OK ||
	    ((rc = sqlite3_step(st)) != SQLITE_ROW && rc != SQLITE_DONE))
		r = store_error(s, rc, "csr state");
	else if (rc == SQLITE_DONE || sqlite3_column_int64(st, 0) != STORE_CSR_READY)
		r = KC_ERR_NOT_FOUND;
	else
		r = 0;
	store_done(st);
	return r;
}

/*
 * Are the certificate's fields all there? A certificate covers its hostname, so it has DNS
 * names: hosts is never empty (and its column is NOT NULL).
 */
/* No ASCII upper case in s: a hostname as migration 5 and its triggers keep them. */
static bool
store_lower(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			return false;
	return true;
}

static bool
store_hostname_complete(const struct store_hostname *h)
{
	return h->bundle_method != NULL && h->certificate_pem != NULL &&
	    h->certificate_uploaded != NULL && h->issuer != NULL &&
	    h->serial_number != NULL && h->signature_alg != NULL && h->nhosts > 0;
}

/*
 * Bind ?1 to ?13 and ?16 to ?24 of STMT_HOST_INSERT and STMT_HOST_UPDATE; hosts is h's,
 * joined.
 */
static int
store_hostname_bind(sqlite3_stmt *st, const struct store_hostname *h, const char *hosts)
{
	int	 rc;

	if ((rc = store_bind_text(st, 1, h->csr_id)) != SQLITE_OK ||
	    (rc = store_bind_text(st, 2, h->ssl_id)) != SQLITE_OK ||
	    (rc = store_bind_text(st, 3, h->bundle_method)) != SQLITE_OK ||
	    (rc = store_bind_text(st, 4, h->certificate_pem)) != SQLITE_OK ||
	    (rc = store_bind_text(st, 5, h->issuer)) != SQLITE_OK ||
	    (rc = store_bind_text(st, 6, h->serial_number)) != SQLITE_OK ||
	    (rc = store_bind_text(st, 7, h->signature_alg)) != SQLITE_OK ||
	    (rc = store_bind_int64(st, 8, h->uploaded_on_us)) != SQLITE_OK ||
	    (rc = store_bind_int64(st, 9, h->not_before_us)) != SQLITE_OK ||
	    (rc = store_bind_int64(st, 10, h->expires_on_us)) != SQLITE_OK ||
	    (rc = store_bind_text(st, 11, hosts)) != SQLITE_OK ||
	    (rc = store_bind_text(st, 12, h->id)) != SQLITE_OK ||
	    (rc = store_bind_text(st, 13, h->zone_id)) != SQLITE_OK ||
	    (rc = store_bind_text(st, 16, h->custom_metadata)) != SQLITE_OK ||
	    (rc = store_bind_text(st, 17, h->custom_origin_server)) != SQLITE_OK ||
	    (rc = store_bind_text(st, 18, h->custom_origin_sni)) != SQLITE_OK ||
	    (rc = store_bind_text(st, 19, h->ssl_method)) != SQLITE_OK ||
	    (rc = store_bind_text(st, 20, h->ssl_type)) != SQLITE_OK ||
	    (rc = (h->ssl_wildcard < 0 ? sqlite3_bind_null(st, 21) :
	    sqlite3_bind_int(st, 21, h->ssl_wildcard != 0))) != SQLITE_OK ||
	    (rc = store_bind_text(st, 22, h->ssl_settings)) != SQLITE_OK ||
	    (rc = store_bind_text(st, 23, h->certificate_uploaded)) != SQLITE_OK ||
	    (rc = store_bind_text(st, 24, h->ssl_certificate_authority)) != SQLITE_OK)
		return rc;
	return SQLITE_OK;
}

/* Build a custom hostname from the current row of a statement selecting STORE_HOST_COLUMNS. */
static int
store_hostname_from_row(sqlite3_stmt *st, struct store_hostname **hp)
{
	struct store_hostname	*h = NULL;
	int			 r = KC_ERR_NOMEM;

	*hp = NULL;
	if ((h = calloc(1, sizeof(*h))) == NULL)
		goto out;
	h->created_at_us = sqlite3_column_int64(st, 4);
	h->uploaded_on_us = sqlite3_column_int64(st, 11);
	h->not_before_us = sqlite3_column_int64(st, 12);
	h->expires_on_us = sqlite3_column_int64(st, 13);
	if ((r = store_col_fixed(st, 0, h->id, sizeof(h->id))) != 0 ||
	    (r = store_col_fixed(st, 1, h->zone_id, sizeof(h->zone_id))) != 0 ||
	    (r = store_col_text(st, 2, 0, NULL, &h->hostname)) != 0 ||
	    (r = store_col_fixed(st, 3, h->csr_id, sizeof(h->csr_id))) != 0 ||
	    (r = store_col_fixed(st, 5, h->ssl_id, sizeof(h->ssl_id))) != 0 ||
	    (r = store_col_text(st, 6, 0, NULL, &h->bundle_method)) != 0 ||
	    (r = store_col_text(st, 7, 0, NULL, &h->certificate_pem)) != 0 ||
	    (r = store_col_text(st, 8, 0, NULL, &h->issuer)) != 0 ||
	    (r = store_col_text(st, 9, 0, NULL, &h->serial_number)) != 0 ||
	    (r = store_col_text(st, 10, 0, NULL, &h->signature_alg)) != 0 ||
	    (r = store_col_lines(st, 14, 0, NULL, &h->hosts, &h->nhosts)) != 0 ||
	    (r = store_col_text(st, 15, 1, NULL, &h->custom_metadata)) != 0 ||
	    (r = store_col_text(st, 16, 1, NULL, &h->custom_origin_server)) != 0 ||
	    (r = store_col_text(st, 17, 1, NULL, &h->custom_origin_sni)) != 0 ||
	    (r = store_col_text(st, 18, 1, NULL, &h->ssl_method)) != 0 ||
	    (r = store_col_text(st, 19, 1, NULL, &h->ssl_type)) != 0 ||
	    (r = store_col_text(st, 21, 1, NULL, &h->ssl_settings)) != 0 ||
	    (r = store_col_text(st, 22, 0, NULL, &h->certificate_uploaded)) != 0 ||
	    (r = store_col_text(st, 23, 1, NULL, &h->ssl_certificate_authority)) != 0)
		goto out;
	h->ssl_wildcard = sqlite3_column_type(st, 20) == SQLITE_NULL ? -1 :
	    sqlite3_column_int(st, 20) != 0;
	*hp = h;
	h = NULL;
	r = 0;
 out:
	if (r == KC_ERR_STORE)
		log_warnx("store: damaged custom hostname row");
	store_hostname_free(h);
	return r;
}

/* As store_csr_rows(), for statements selecting STORE_HOST_COLUMNS. */
static int
store_hostname_rows(struct store *s, sqlite3_stmt *st, size_t hint,
    struct store_hostname ***vp, size_t *np)
{
	struct store_hostname	**v = NULL, **nv, *h;
	size_t			  n = 0, cap = 0, ncap;
	int			  rc, r = 0;

	*vp = NULL;
	*np = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			ncap = cap == 0 ? (hint > 0 && hint < 1024 ? hint : 16) : cap * 2;
			if (ncap > SIZE_MAX / sizeof(*v) ||
			    (nv = realloc(v, ncap * sizeof(*v))) == NULL) {
				r = KC_ERR_NOMEM;
				goto out;
			}
			v = nv;
			cap = ncap;
		}
		if ((r = store_hostname_from_row(st, &h)) != 0)
			goto out;
		v[n++] = h;
	}
	if (rc != SQLITE_DONE) {
		r = store_error(s, rc, "read custom hostnames");
		goto out;
	}
	*vp = v;
	*np = n;
	v = NULL;
	n = 0;
 out:
	store_hostname_free_array(v, n);
	return r;
}

static int
store_user_version(sqlite3 *db, int *version)
{
	sqlite3_stmt	*st = NULL;
	int		 r = KC_ERR_STORE;

	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW)
		goto out;
	*version = sqlite3_column_int(st, 0);
	r = 0;
 out:
	sqlite3_finalize(st);
	return r;
}

/*
 * Switch to WAL. On a new file several handles may try at once; the switch then fails with
 * SQLITE_BUSY without waiting (the statement holds a read lock while it asks for the write
 * lock, so the busy handler is not called), hence a retry of our own within the busy timeout.
 * The pragma answers with the mode in force: some filesystems cannot do WAL.
 */
static int
store_wal(sqlite3 *db, const char *path, char **cause)
{
	sqlite3_stmt	*st = NULL;
	const char	*mode;
	int		 rc, waited = 0, r = KC_ERR_STORE;

	if (sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &st, NULL) != SQLITE_OK) {
		kc_cause(cause, "%s: journal_mode: %s", path, sqlite3_errmsg(db));
		goto out;
	}
	while ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		if ((rc & 0xff) != SQLITE_BUSY || waited >= STORE_BUSY_TIMEOUT_MS) {
			kc_cause(cause, "%s: journal_mode: %s", path, sqlite3_errmsg(db));
			goto out;
		}
		(void)sqlite3_reset(st);
		(void)sqlite3_sleep(10);
		waited += 10;
	}
	mode = (const char *)sqlite3_column_text(st, 0);
	if (mode == NULL || strcasecmp(mode, "wal") != 0) {
		kc_cause(cause, "%s: cannot use WAL (journal mode %s)", path,
		    mode != NULL ? mode : "unknown");
		goto out;
	}
	r = 0;
 out:
	/* Finalized here: an unfinished statement would block the migrations' COMMIT. */
	sqlite3_finalize(st);
	return r;
}

/*
 * Bring the schema to the newest version, one transaction per step. BEGIN IMMEDIATE and a
 * second look at user_version under the write lock let several handles open the same file
 * at once.
 */
static int
store_migrate(sqlite3 *db, char **cause)
{
	const int	 newest = (int)nitems(store_migrations);
	char		*errmsg = NULL;
	int		 version, i, r = KC_ERR_STORE;

	if (store_user_version(db, &version) != 0) {
		kc_cause(cause, "read schema version: %s", sqlite3_errmsg(db));
		goto out;
	}
	for (i = version; i < newest; i++) {
		if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &errmsg) != SQLITE_OK) {
			kc_cause(cause, "migration %d: begin: %s", i + 1, errmsg);
			goto out;
		}
		if (store_user_version(db, &version) != 0) {
			kc_cause(cause, "read schema version: %s", sqlite3_errmsg(db));
			goto out;
		}
		if (version > i) {
			/* Another handle did this step meanwhile. */
			if (sqlite3_exec(db, "COMMIT", NULL, NULL, &errmsg) != SQLITE_OK) {
				kc_cause(cause, "commit: %s", errmsg);
				goto out;
			}
			i = version - 1;
			continue;
		}
		if (sqlite3_exec(db, store_migrations[i], NULL, NULL, &errmsg) != SQLITE_OK) {
			kc_cause(cause, "migration %d: %s", i + 1, errmsg);
			goto out;
		}
		if (store_user_version(db, &version) != 0 || version != i + 1) {
			kc_cause(cause, "migration %d did not set the schema version",
			    i + 1);
			goto out;
		}
		if (sqlite3_exec(db, "COMMIT", NULL, NULL, &errmsg) != SQLITE_OK) {
			kc_cause(cause, "migration %d: commit: %s", i + 1, errmsg);
			goto out;
		}
		log_info("store: schema migrated to version %d", i + 1);
	}
	if (version > newest) {
		kc_cause(cause, "schema version %d is newer than this program's (%d)",
		    version, newest);
		goto out;
	}
	r = 0;
 out:
	if (r != 0 && !sqlite3_get_autocommit(db))
		(void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_free(errmsg);
	return r;
}

/*
 * Whether the store file is yet to be made, asked by name: the daemon never opens the
 * database file with a descriptor of its own. Closing any descriptor on the file drops every
 * POSIX lock the process holds on it, SQLite's too; another process (an operator's sqlite3
 * shell) would then find itself the last connection at its close, checkpoint and delete the
 * WAL that this process goes on writing to, and the next crash would lose what it wrote.
 */
static int
store_file_missing(const char *path, int *missing, char **cause)
{
	struct stat	 sb;

	*missing = 0;
	if (stat(path, &sb) == 0)
		return 0;
	if (errno != ENOENT) {
		kc_cause(cause, "%s: %s", path, strerror(errno));
		return KC_ERR_STORE;
	}
	*missing = 1;
	return 0;
}

int
store_open(const char *path, struct store **sp, char **cause)
{
	static const char *const pragmas[] = {
		"PRAGMA synchronous = FULL",
		"PRAGMA foreign_keys = ON",
		"PRAGMA trusted_schema = OFF",
	};
	struct store	*s = NULL;
	char		*errmsg = NULL;
	size_t		 i;
	int		 created, rc, r = KC_ERR_STORE;

	if (cause != NULL)
		*cause = NULL;
	*sp = NULL;
	return_val_if_fail(path != NULL, KC_ERR_INVALID);

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		kc_cause(cause, "out of memory");
		r = KC_ERR_NOMEM;
		goto out;
	}
	if (store_file_missing(path, &created, cause) != 0)
		goto out;
	rc = sqlite3_open_v2(path, &s->db,
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		kc_cause(cause, "%s: %s", path,
		    s->db != NULL ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		goto out;
	}
	/*
	 * SQLite made a new file with the umask's mode: 0600 before anything is written, so
	 * that the -wal and -shm files, which take the database's mode, are private too. An
	 * existing file keeps the mode it has.
	 */
	if (created && chmod(path, S_IRUSR | S_IWUSR) == -1) {
		kc_cause(cause, "%s: chmod: %s", path, strerror(errno));
		goto out;
	}
	(void)sqlite3_extended_result_codes(s->db, 1);
	(void)sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);

	if (store_wal(s->db, path, cause) != 0)
		goto out;
	for (i = 0; i < nitems(pragmas); i++) {
		if (sqlite3_exec(s->db, pragmas[i], NULL, NULL, &errmsg) != SQLITE_OK) {
			kc_cause(cause, "%s: %s: %s", path, pragmas[i], errmsg);
			goto out;
		}
	}
	if (store_migrate(s->db, cause) != 0)
		goto out;
	for (i = 0; i < STMT_MAX; i++) {
		if (sqlite3_prepare_v3(s->db, store_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
		    &s->stmt[i], NULL) != SQLITE_OK) {
			kc_cause(cause, "%s: prepare statement %zu: %s", path, i,
			    sqlite3_errmsg(s->db));
			goto out;
		}
	}
	*sp = s;
	s = NULL;
	r = 0;
 out:
	if (r != 0 && cause != NULL && *cause == NULL)
		kc_cause(cause, "%s: cannot open the store", path != NULL ? path : "");
	sqlite3_free(errmsg);
	store_close(s);
	return r;
}

void
store_close(struct store *s)
{
	size_t	 i;

	if (s == NULL)
		return;
	for (i = 0; i < STMT_MAX; i++)
		sqlite3_finalize(s->stmt[i]);
	if (s->db != NULL && sqlite3_close(s->db) != SQLITE_OK)
		log_warnx("store: close: %s", sqlite3_errmsg(s->db));
	free(s);
}

int
store_csr_insert(struct store *s, const struct store_csr *c)
{
	sqlite3_stmt	*st;
	char		*sans = NULL;
	int		 rc, r;

	return_val_if_fail(s != NULL && c != NULL, KC_ERR_INVALID);
	st = s->stmt[STMT_CSR_INSERT];
	if ((r = store_lines_join(c->sans, c->nsans, "csr", c->id, &sans)) != 0)
		goto out;
	if ((rc = store_bind_text(st, 1, c->id)) != SQLITE_OK ||
	    (rc = store_bind_text(st, 2, c->zone_id)) != SQLITE_OK ||
	    (rc = store_bind_int64(st, 3, c->created_at_us)) != SQLITE_OK ||
	    (rc = store_bind_int64(st, 4, STORE_CSR_CREATING)) != SQLITE_OK ||
	    (rc = store_bind_text(st, 5, c->key_type)) != SQLITE_OK ||
	    (rc = store_bind_blob(st, 6, c->key_id, STORE_KEY_ID_LEN)) != SQLITE_OK ||
	    (rc = store_bind_text(st, 7, c->country)) != SQLITE_OK ||
	    (rc = store_bind_text(st, 8, c->state_name)) != SQLITE_OK ||
	    (rc = store_bind_text(st, 9, c->locality)) != SQLITE_OK ||
	    (rc = store_bind_text(st, 10, c->organization)) != SQLITE_OK ||
	    (rc = store_bind_text(st, 11, c->organizational_unit)) != SQLITE_OK ||
	    (rc = store_bind_text(st, 12, c->common_name)) != SQLITE_OK ||
	    (rc = store_bind_text(st, 13, sans)) != SQLITE_OK ||
	    (rc = store_bind_text(st, 14, c->name)) != SQLITE_OK ||
	    (rc = store_bind_text(st, 15, c->description)) != SQLITE_OK ||
	    (rc = sqlite3_step(st)) != SQLITE_DONE) {
		r = store_error(s, rc, "insert csr");
		goto out;
	}
	r = 0;
 out:
	store_done(st);
	free(sans);
	return r;
}

int
store_csr_set_ready(struct store *s, const char *id, const uint8_t *pubkey, size_t publen,
    const char *csr_pem)
{
	sqlite3_stmt	*st;
	int		 rc, r;

	return_val_if_fail(s != NULL && id != NULL, KC_ERR_INVALID);
	return_val_if_fail(pubkey != NULL && publen > 0 && csr_pem != NULL, KC_ERR_INVALID);
	st = s->stmt[STMT_CSR_SET_READY];
	if ((rc = store_bind_int64(st, 1, STORE_CSR_READY)) != SQLITE_OK ||
	    (rc = store_bind_blob(st, 2, pubkey, publen)) != SQLITE_OK ||
	    (rc = store_bind_text(st, 3, csr_pem)) != SQLITE_OK ||
	    (rc = store_bind_text(st, 4, id)) != SQLITE_OK ||
	    (rc = store_bind_int64(st, 5, STORE_CSR_CREATING)) != SQLITE_OK ||
	    (rc = sqlite3_step(st)) != SQLITE_DONE) {
		r = store_error(s, rc, "set csr ready");
		goto out;
	}
	r = sqlite3_changes(s->db) == 1 ? 0 : KC_ERR_NOT_FOUND;
 out:
	store_done(st);
	return r;
}

int
store_csr_set_deleting(struct store *s, const char *zone_id, const char *id)
{
	sqlite3_stmt	*st = NULL;
	int		 rc, r;

	return_val_if_fail(s != NULL && zone_id != NULL && id != NULL, KC_ERR_INVALID);
	/* IMMEDIATE: no hostname can start using the record between check and update. */
	if ((r = store_begin(s, STMT_BEGIN_IMMEDIATE)) != 0)
		return r;
	if ((r = store_csr_ready_inlock(s, zone_id, id)) != 0)
		goto out;

	/* The foreign key keeps hostnames in their CSR's zone. */
	st = s->stmt[STMT_CSR_IN_USE];
	if ((rc = store_bind_text(st, 1, zone_id)) != SQLITE_OK ||
	    (rc = store_bind_text(st, 2, id)) != SQLITE_OK ||
	    ((rc = sqlite3_step(st)) != SQLITE_ROW && rc != SQLITE_DONE)) {
		r = store_error(s, rc, "csr in use");
		goto out;
	}
	if (rc == SQLITE_ROW) {
		r = KC_ERR_CONFLICT;
		goto out;
	}
	store_done(st);

	st = s->stmt[STMT_CSR_SET_DELETING];
	if ((rc = store_bind_int64(st, 1, STORE_CSR_DELETING)) != SQLITE_OK ||
	    (rc = store_bind_text(st, 2, id)) != SQLITE_OK ||
	    (rc = store_bind_int64(st, 3, STORE_CSR_READY)) != SQLITE_OK ||
	    (rc = sqlite3_step(st)) != SQLITE_DONE) {
		r = store_error(s, rc, "set csr deleting");
		goto out;
	}
	if (sqlite3_changes(s->db) != 1) {
		r = KC_ERR_NOT_FOUND;
		goto out;
	}
	store_done(st);
	st = NULL;
	r = store_commit(s);
 out:
	if (st != NULL)
		store_done(st);
	if (r != 0)
		store_rollback(s);
	return r;
}

int
store_csr_remove(struct store *s, const char *id)
{
	sqlite3_stmt	*st;
	int		 rc, r;

	return_val_if_fail(s != NULL && id != NULL, KC_ERR_INVALID);
	st = s->stmt[STMT_CSR_REMOVE];
	if ((rc = store_bind_text(st, 1, id)) != SQLITE_OK ||
	    (rc = sqlite3_step(st)) != SQLITE_DONE) {
		/* A hostname still referencing the record gives KC_ERR_CONFLICT. */
		r = store_error(s, rc, "remove csr");
		goto out;
	}
	r = sqlite3_changes(s->db) == 1 ? 0 : KC_ERR_NOT_FOUND;
 out:
	store_done(st);
	return r;
}

int
store_csr_get(struct store *s, const char *zone_id, const char *id, struct store_csr **cp)
{
	sqlite3_stmt	*st;
	int		 rc, r;

	return_val_if_fail(cp != NULL, KC_ERR_INVALID);
	*cp = NULL;
	return_val_if_fail(s != NULL && zone_id != NULL && id != NULL, KC_ERR_INVALID);
	st = s->stmt[STMT_CSR_GET];
	if ((rc = store_bind_text(st, 1, id)) != SQLITE_OK ||
	    (rc = store_bind_text(st, 2, zone_id)) != SQLITE_OK ||
	    (rc = store_bind_int64(st, 3, STORE_CSR_READY)) != SQLITE_OK) {
		r = store_error(s, rc, "get csr");
		goto out;
	}
	if ((rc = sqlite3_step(st)) == SQLITE_DONE)
		r = KC_ERR_NOT_FOUND;
	else if (rc == SQLITE_ROW)
		r = store_csr_from_row(st, NULL, cp);
	else
		r = store_error(s, rc, "get csr");
 out:
	store_done(st);
	return r;
}

int
store_csr_list_arena(struct store *s, const char *zone_id, unsigned int page,
    unsigned int per_page, bool descending, bool by_name, struct kc_arena *a,
    struct store_csr ***vp, size_t *n, uint64_t *total)
{
	sqlite3_stmt	*st = NULL;
	uint64_t	 count, skip;
	size_t		 rows;
	int		 rc, r;

	return_val_if_fail(vp != NULL && n != NULL && total != NULL, KC_ERR_INVALID);
	*vp = NULL;
	*n = 0;
	*total = 0;
	return_val_if_fail(s != NULL && zone_id != NULL, KC_ERR_INVALID);
	return_val_if_fail(page >= 1 && per_page >= 1, KC_ERR_INVALID);

	/* One read transaction, so that the total and the page agree. */
	if ((r = store_begin(s, STMT_BEGIN)) != 0)
		return r;
	st = s->stmt[STMT_CSR_COUNT_ZONE];
	if ((rc = store_bind_text(st, 1, zone_id)) != SQLITE_OK) {
		r = store_error(s, rc, "count csrs");
		goto out;
	}
	if ((r = store_count(s, STMT_CSR_COUNT_ZONE, "count csrs", &count)) != 0)
		goto out;

	if (!store_page(page, per_page, count, &skip, &rows)) {
		st = NULL;
		r = store_commit(s);
		goto out;
	}
	if (by_name)
		st = s->stmt[descending ? STMT_CSR_LIST_NAME_DESC : STMT_CSR_LIST_NAME_ASC];
	else
		st = s->stmt[descending ? STMT_CSR_LIST_DESC : STMT_CSR_LIST_ASC];
	if ((rc = store_bind_text(st, 1, zone_id)) != SQLITE_OK ||
	    (rc = store_bind_int64(st, 2, STORE_CSR_READY)) != SQLITE_OK ||
	    (rc = store_bind_int64(st, 3, per_page)) != SQLITE_OK ||
	    (rc = store_bind_int64(st, 4, (int64_t)skip)) != SQLITE_OK) {
		r = store_error(s, rc, "list csrs");
		goto out;
	}
	if ((r = store_csr_rows(s, st, rows, a, vp, n)) != 0)
		goto out;
	store_done(st);
	st = NULL;
	if ((r = store_commit(s)) != 0) {
		if (a == NULL)
			store_csr_free_array(*vp, *n);
		*vp = NULL;
		*n = 0;
	}
 out:
	if (st != NULL)
		store_done(st);
	if (r != 0)
		store_rollback(s);
	else
		*total = count;
	return r;
}

int
store_csr_list(struct store *s, const char *zone_id, unsigned int page, unsigned int per_page,
    bool descending, struct store_csr ***vp, size_t *n, uint64_t *total)
{
	return store_csr_list_arena(s, zone_id, page, per_page, descending, false, NULL, vp,
	    n, total);
}

int
store_csr_unfinished(struct store *s, struct store_csr ***vp, size_t *n)
{
	sqlite3_stmt	*st;
	int		 rc, r;

	return_val_if_fail(s != NULL && vp != NULL && n != NULL, KC_ERR_INVALID);
	*vp = NULL;
	*n = 0;
	st = s->stmt[STMT_CSR_UNFINISHED];
	if ((rc = store_bind_int64(st, 1, STORE_CSR_CREATING)) != SQLITE_OK ||
	    (rc = store_bind_int64(st, 2, STORE_CSR_DELETING)) != SQLITE_OK) {
		r = store_error(s, rc, "unfinished csrs");
		goto out;
	}
	r = store_csr_rows(s, st, 0, NULL, vp, n);
 out:
	store_done(st);
	return r;
}

int
store_csr_key_ids(struct store *s, uint8_t **ids, size_t *n)
{
	sqlite3_stmt	*st;
	const void	*blob;
	uint8_t		*v = NULL, *nv;
	size_t		 nv_n = 0, cap = 0, ncap;
	int		 rc, r = 0;

	return_val_if_fail(s != NULL && ids != NULL && n != NULL, KC_ERR_INVALID);
	*ids = NULL;
	*n = 0;
	st = s->stmt[STMT_CSR_KEY_IDS];
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (sqlite3_column_bytes(st, 0) != STORE_KEY_ID_LEN) {
			log_warnx("store: damaged key id");
			r = KC_ERR_STORE;
			goto out;
		}
		if ((blob = sqlite3_column_blob(st, 0)) == NULL) {
			r = KC_ERR_NOMEM;
			goto out;
		}
		if (nv_n == cap) {
			ncap = cap == 0 ? 64 : cap * 2;
			if (ncap > SIZE_MAX / STORE_KEY_ID_LEN ||
			    (nv = realloc(v, ncap * STORE_KEY_ID_LEN)) == NULL) {
				r = KC_ERR_NOMEM;
				goto out;
			}
			v = nv;
			cap = ncap;
		}
		memcpy(v + nv_n * STORE_KEY_ID_LEN, blob, STORE_KEY_ID_LEN);
		nv_n++;
	}
	if (rc != SQLITE_DONE) {
		r = store_error(s, rc, "key ids");
		goto out;
	}
	*ids = v;
	*n = nv_n;
	v = NULL;
 out:
	store_done(st);
	free(v);
	return r;
}

int
store_csr_count(struct store *s, uint64_t *n)
{
	sqlite3_stmt	*st;
	int		 rc;

	return_val_if_fail(s != NULL && n != NULL, KC_ERR_INVALID);
	*n = 0;
	st = s->stmt[STMT_CSR_COUNT];
	if ((rc = store_bind_int64(st, 1, STORE_CSR_READY)) != SQLITE_OK) {
		store_done(st);
		return store_error(s, rc, "count csrs");
	}
	return store_count(s, STMT_CSR_COUNT, "count csrs", n);
}

int
store_ping(struct store *s)
{
	sqlite3_stmt	*st;
	int		 rc, r = 0;

	return_val_if_fail(s != NULL, KC_ERR_INVALID);
	st = s->stmt[STMT_PING];
	if ((rc = sqlite3_step(st)) != SQLITE_ROW)
		r = store_error(s, rc, "ping");
	store_done(st);
	return r;
}

/* The integer of the one row that st, ?1 bound to text, selects. */
static int
store_json_int(struct store *s, enum store_stmt which, const char *text, int64_t *v)
{
	sqlite3_stmt	*st = s->stmt[which];
	int		 rc, r = 0;

	if ((rc = store_bind_text(st, 1, text)) != SQLITE_OK ||
	    (rc = sqlite3_step(st)) != SQLITE_ROW)
		r = store_error(s, rc, "check JSON");
	else
		*v = sqlite3_column_int64(st, 0);
	store_done(st);
	return r;
}

int
store_json_check(struct store *s, enum store_json_kind kind, const char *text,
    unsigned int *code)
{
	int64_t		 v = 0;
	unsigned int	 bad = kind == STORE_JSON_METADATA ? 1401 : 1434;
	int		 r;

	return_val_if_fail(s != NULL && text != NULL && code != NULL, KC_ERR_INVALID);
	*code = bad;
	if (strlen(text) > STORE_JSON_MAX)
		return 0;
	if ((r = store_json_int(s, STMT_JSON_OBJECT, text, &v)) != 0 || v == 0)
		return r;
	if ((r = store_json_int(s, kind == STORE_JSON_METADATA ? STMT_JSON_METADATA :
	    STMT_JSON_SETTINGS, text, &v)) != 0)
		return r;
	if (kind == STORE_JSON_METADATA)
		*code = v != 0 ? bad : 0;
	else
		*code = (unsigned int)v;
	return 0;
}

int
store_hostname_insert(struct store *s, const struct store_hostname *h)
{
	sqlite3_stmt	*st = NULL;
	char		*hosts = NULL;
	int		 rc, r;

	return_val_if_fail(s != NULL && h != NULL && h->hostname != NULL, KC_ERR_INVALID);
	return_val_if_fail(store_hostname_complete(h), KC_ERR_INVALID);
	return_val_if_fail(store_lower(h->hostname), KC_ERR_INVALID);
	if ((r = store_lines_join(h->hosts, h->nhosts, "custom hostname", h->id, &hosts)) != 0)
		return r;
	/* IMMEDIATE: the CSR cannot leave READY between the check and the insert. */
	if ((r = store_begin(s, STMT_BEGIN_IMMEDIATE)) != 0 ||
	    (r = store_csr_ready_inlock(s, h->zone_id, h->csr_id)) != 0)
		goto out;
	st = s->stmt[STMT_HOST_INSERT];
	if ((rc = store_hostname_bind(st, h, hosts)) != SQLITE_OK ||
	    (rc = store_bind_text(st, 14, h->hostname)) != SQLITE_OK ||
	    (rc = store_bind_int64(st, 15, h->created_at_us)) != SQLITE_OK ||
	    (rc = sqlite3_step(st)) != SQLITE_DONE) {
		/* The hostname in the zone, the id or the ssl id taken: KC_ERR_CONFLICT. */
		r = store_error(s, rc, "insert custom hostname");
		goto out;
	}
	store_done(st);
	st = NULL;
	r = store_commit(s);
 out:
	if (st != NULL)
		store_done(st);
	if (r != 0)
		store_rollback(s);
	free(hosts);
	return r;
}

int
store_hostname_update(struct store *s, const struct store_hostname *h)
{
	sqlite3_stmt	*st = NULL;
	char		*hosts = NULL;
	int		 rc, r;

	return_val_if_fail(s != NULL && h != NULL, KC_ERR_INVALID);
	return_val_if_fail(store_hostname_complete(h), KC_ERR_INVALID);
	if ((r = store_lines_join(h->hosts, h->nhosts, "custom hostname", h->id, &hosts)) != 0)
		return r;
	if ((r = store_begin(s, STMT_BEGIN_IMMEDIATE)) != 0 ||
	    (r = store_csr_ready_inlock(s, h->zone_id, h->csr_id)) != 0)
		goto out;
	st = s->stmt[STMT_HOST_UPDATE];
	if ((rc = store_hostname_bind(st, h, hosts)) != SQLITE_OK ||
	    (rc = sqlite3_step(st)) != SQLITE_DONE) {
		r = store_error(s, rc, "update custom hostname");
		goto out;
	}
	if (sqlite3_changes(s->db) != 1) {
		r = KC_ERR_NOT_FOUND;
		goto out;
	}
	store_done(st);
	st = NULL;
	r = store_commit(s);
 out:
	if (st != NULL)
		store_done(st);
	if (r != 0)
		store_rollback(s);
	free(hosts);
	return r;
}

int
store_hostname_get(struct store *s, const char *zone_id, const char *id,
    struct store_hostname **hp)
{
	sqlite3_stmt	*st;
	int		 rc, r;

	return_val_if_fail(hp != NULL, KC_ERR_INVALID);
	*hp = NULL;
	return_val_if_fail(s != NULL && zone_id != NULL && id != NULL, KC_ERR_INVALID);
	st = s->stmt[STMT_HOST_GET];
	if ((rc = store_bind_text(st, 1, id)) != SQLITE_OK ||
	    (rc = store_bind_text(st, 2, zone_id)) != SQLITE_OK) {
		r = store_error(s, rc, "get custom hostname");
		goto out;
	}
	if ((rc = sqlite3_step(st)) == SQLITE_DONE)
		r = KC_ERR_NOT_FOUND;
	else if (rc == SQLITE_ROW)
		r = store_hostname_from_row(st, hp);
	else
		r = store_error(s, rc, "get custom hostname");
 out:
	store_done(st);
	return r;
}

int
store_hostname_list(struct store *s, const char *zone_id, const char *hostname,
    const char *csr_id, unsigned int page, unsigned int per_page, bool descending,
    struct store_hostname ***vp, size_t *n, uint64_t *total)
{
	struct store_hostname_filter	 f;

	memset(&f, 0, sizeof(f));
	f.hostname = hostname;
	f.csr_id = csr_id;
	f.descending = descending;
	return store_hostname_find(s, zone_id, &f, page, per_page, vp, n, total);
}

/* Whether f is served by a prepared statement: at most a CSR filter, created_at order. */
static bool
store_host_plain(const struct store_hostname_filter *f)
{
	return f->id == NULL && f->hostname == NULL && f->contains == NULL &&
	    f->prefix == NULL && f->origin == NULL && f->ca == NULL &&
	    f->wildcard == STORE_MATCH_ANY &&
	    f->ssl_status == STORE_SSL_ANY && !f->none && f->order == STORE_ORDER_CREATED;
}

/*
 * The LIKE pattern (ESCAPE '\\') that matches text literally, as a substring or (prefix)
 * a prefix. NULL out of memory.
 */
static char *
store_like_text(const char *text, bool prefix)
{
	size_t	 len = strlen(text), i, j = 0;
	char	*p;

	if (len > (SIZE_MAX - 3) / 2 || (p = malloc(2 * len + 3)) == NULL)
		return NULL;
	if (!prefix)
		p[j++] = '%';
	for (i = 0; i < len; i++) {
		if (text[i] == '%' || text[i] == '_' || text[i] == '\\')
			p[j++] = '\\';
		p[j++] = text[i];
	}
	p[j++] = '%';
	p[j] = '\0';
	return p;
}

/*
 * Prepare the count (count true) or the page of f. Only fixed fragments go into the SQL;
 * every value is bound: ?1 zone, ?2 id, ?3 hostname, ?4 contains, ?5 prefix, ?6 csr_id,
 * ?7 now_us, ?8 limit, ?9 offset, ?10 custom_origin_server, ?11 ssl_certificate_authority.
 * The strings of f are bound, not copied: they must outlive the statement.
 */
static int
store_host_find_sql(struct store *s, const char *zone_id,
    const struct store_hostname_filter *f, bool count, int64_t limit, int64_t offset,
    sqlite3_stmt **stp)
{
	char		 sql[1024], *contains = NULL, *prefix = NULL;
	const char	*dir = f->descending ? "DESC" : "ASC";
	sqlite3_stmt	*st = NULL;
	bool		 uses_now;
	int		 rc = SQLITE_OK, r = 0;
	int		 len;

	*stp = NULL;
	uses_now = f->ssl_status == STORE_SSL_ACTIVE || f->ssl_status == STORE_SSL_EXPIRED ||
	    (!count && f->order == STORE_ORDER_SSL_STATUS);
	if ((f->contains != NULL && (contains = store_like_text(f->contains, false)) == NULL) ||
	    (f->prefix != NULL && (prefix = store_like_text(f->prefix, true)) == NULL)) {
		r = KC_ERR_NOMEM;
		goto out;
	}
	len = snprintf(sql, sizeof(sql),
	    "SELECT %s FROM custom_hostnames WHERE zone_id = ?1%s%s%s%s%s%s%s%s%s%s",
	    count ? "count(*)" : STORE_HOST_COLUMNS,
	    f->id != NULL ? " AND id = ?2" : "",
	    f->hostname != NULL ? " AND hostname = ?3" : "",
	    contains != NULL ? " AND hostname LIKE ?4 ESCAPE '\\'" : "",
	    prefix != NULL ? " AND hostname LIKE ?5 ESCAPE '\\'" : "",
	    f->csr_id != NULL ? " AND csr_id = ?6" : "",
	    f->origin != NULL ? " AND custom_origin_server = ?10" : "",
	    f->ca != NULL ? " AND ssl_certificate_authority = ?11" : "",
	    f->wildcard == STORE_MATCH_YES ? " AND substr(hostname, 1, 2) = '*.'" :
	    f->wildcard == STORE_MATCH_NO ? " AND substr(hostname, 1, 2) <> '*.'" : "",
	    f->ssl_status == STORE_SSL_ACTIVE ? " AND ?7 < expires_on_us" :
	    f->ssl_status == STORE_SSL_EXPIRED ? " AND ?7 >= expires_on_us" :
	    f->ssl_status == STORE_SSL_NONE ? " AND 0" : "",
	    f->none ? " AND 0" : "");
	if (len > 0 && (size_t)len < sizeof(sql) && !count)
		len += snprintf(sql + len, sizeof(sql) - (size_t)len,
		    " ORDER BY %s created_at_us %s, id %s LIMIT ?8 OFFSET ?9",
		    f->order == STORE_ORDER_SSL_STATUS ?
		    (f->descending ? "(?7 >= expires_on_us) DESC," :
		    "(?7 >= expires_on_us) ASC,") : "", dir, dir);
	if (len < 0 || (size_t)len >= sizeof(sql)) {
		r = KC_ERR_INVALID;	/* the fragments are fixed: cannot happen */
		goto out;
	}
	if ((rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL)) != SQLITE_OK ||
	    (rc = store_bind_text(st, 1, zone_id)) != SQLITE_OK ||
	    (f->id != NULL && (rc = store_bind_text(st, 2, f->id)) != SQLITE_OK) ||
	    (f->hostname != NULL && (rc = store_bind_text(st, 3, f->hostname)) != SQLITE_OK) ||
	    /* Copied: the patterns are freed below, before the statement runs. */
	    (contains != NULL && (rc = sqlite3_bind_text(st, 4, contains, -1,
	    SQLITE_TRANSIENT)) != SQLITE_OK) ||
	    (prefix != NULL && (rc = sqlite3_bind_text(st, 5, prefix, -1,
	    SQLITE_TRANSIENT)) != SQLITE_OK) ||
	    (f->csr_id != NULL && (rc = store_bind_text(st, 6, f->csr_id)) != SQLITE_OK) ||
	    (f->origin != NULL && (rc = store_bind_text(st, 10, f->origin)) != SQLITE_OK) ||
	    (f->ca != NULL && (rc = store_bind_text(st, 11, f->ca)) != SQLITE_OK) ||
	    (uses_now && (rc = store_bind_int64(st, 7, f->now_us)) != SQLITE_OK) ||
	    (!count && ((rc = store_bind_int64(st, 8, limit)) != SQLITE_OK ||
	    (rc = store_bind_int64(st, 9, offset)) != SQLITE_OK))) {
		r = store_error(s, rc, "prepare custom hostname search");
		goto out;
	}
	*stp = st;
	st = NULL;
 out:
	sqlite3_finalize(st);
	free(contains);
	free(prefix);
	return r;
}

/* store_hostname_find() for a filter no prepared statement serves; in its transaction. */
static int
store_host_find_dynamic(struct store *s, const char *zone_id,
    const struct store_hostname_filter *f, unsigned int page, unsigned int per_page,
    struct store_hostname ***vp, size_t *n, uint64_t *total)
{
	sqlite3_stmt	*st = NULL;
	sqlite3_int64	 v;
	uint64_t	 skip;
	size_t		 rows;
	int		 rc, r;

	if ((r = store_host_find_sql(s, zone_id, f, true, 0, 0, &st)) != 0)
		goto out;
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		r = store_error(s, rc, "count custom hostnames");
		goto out;
	}
	if ((v = sqlite3_column_int64(st, 0)) < 0) {
		r = KC_ERR_STORE;
		goto out;
	}
	*total = (uint64_t)v;
	sqlite3_finalize(st);
	st = NULL;
	if (!store_page(page, per_page, *total, &skip, &rows))
		goto out;
	if ((r = store_host_find_sql(s, zone_id, f, false, per_page, (int64_t)skip,
	    &st)) != 0 ||
	    (r = store_hostname_rows(s, st, rows, vp, n)) != 0)
		goto out;
 out:
	sqlite3_finalize(st);
	return r;
}

int
store_hostname_find(struct store *s, const char *zone_id,
    const struct store_hostname_filter *f, unsigned int page, unsigned int per_page,
    struct store_hostname ***vp, size_t *n, uint64_t *total)
{
	const struct store_host_query	*q;
	sqlite3_stmt			*st = NULL;
	uint64_t			 count = 0, skip;
	size_t				 rows;
	int				 rc, r;

	return_val_if_fail(vp != NULL && n != NULL && total != NULL, KC_ERR_INVALID);
	*vp = NULL;
	*n = 0;
	*total = 0;
	return_val_if_fail(s != NULL && zone_id != NULL && f != NULL, KC_ERR_INVALID);
	return_val_if_fail(page >= 1 && per_page >= 1, KC_ERR_INVALID);

	/* One read transaction, so that the total and the page agree. */
	if ((r = store_begin(s, STMT_BEGIN)) != 0)
		return r;
	if (!store_host_plain(f)) {
		if ((r = store_host_find_dynamic(s, zone_id, f, page, per_page, vp, n,
		    &count)) != 0)
			goto out;
		r = store_commit(s);
		goto out;
	}

	q = f->csr_id != NULL ? &store_host_by_csr : &store_host_by_zone;
	st = s->stmt[q->count];
	if ((rc = store_bind_text(st, 1, zone_id)) != SQLITE_OK ||
	    (f->csr_id != NULL && (rc = store_bind_text(st, 3, f->csr_id)) != SQLITE_OK)) {
		r = store_error(s, rc, "count custom hostnames");
		goto out;
	}
	if ((r = store_count(s, q->count, "count custom hostnames", &count)) != 0)
		goto out;

	if (!store_page(page, per_page, count, &skip, &rows)) {
		st = NULL;
		r = store_commit(s);
		goto out;
	}
	st = s->stmt[f->descending ? q->desc : q->asc];
	if ((rc = store_bind_text(st, 1, zone_id)) != SQLITE_OK ||
	    (f->csr_id != NULL && (rc = store_bind_text(st, 3, f->csr_id)) != SQLITE_OK) ||
	    (rc = store_bind_int64(st, 4, per_page)) != SQLITE_OK ||
	    (rc = store_bind_int64(st, 5, (int64_t)skip)) != SQLITE_OK) {
		r = store_error(s, rc, "list custom hostnames");
		goto out;
	}
	if ((r = store_hostname_rows(s, st, rows, vp, n)) != 0)
		goto out;
	store_done(st);
	st = NULL;
	r = store_commit(s);
 out:
	if (st != NULL)
		store_done(st);
	if (r != 0) {
		store_rollback(s);
		store_hostname_free_array(*vp, *n);
		*vp = NULL;
		*n = 0;
	} else
		*total = count;
	return r;
}

int
store_hostname_delete(struct store *s, const char *zone_id, const char *id)
{
	sqlite3_stmt	*st;
	int		 rc, r;

	return_val_if_fail(s != NULL && zone_id != NULL && id != NULL, KC_ERR_INVALID);
	st = s->stmt[STMT_HOST_DELETE];
	if ((rc = store_bind_text(st, 1, id)) != SQLITE_OK ||
	    (rc = store_bind_text(st, 2, zone_id)) != SQLITE_OK ||
	    (rc = sqlite3_step(st)) != SQLITE_DONE) {
		r = store_error(s, rc, "delete custom hostname");
		goto out;
	}
	r = sqlite3_changes(s->db) == 1 ? 0 : KC_ERR_NOT_FOUND;
 out:
	store_done(st);
	return r;
}

void
store_hostname_free(struct store_hostname *h)
{
	size_t	 i;

	if (h == NULL)
		return;
	free(h->hostname);
	free(h->bundle_method);
	free(h->certificate_pem);
	free(h->issuer);
	free(h->serial_number);
	free(h->signature_alg);
	for (i = 0; i < h->nhosts && h->hosts != NULL; i++)
		free(h->hosts[i]);
	free(h->hosts);
	free(h->custom_metadata);
	free(h->custom_origin_server);
	free(h->custom_origin_sni);
	free(h->ssl_method);
	free(h->ssl_type);
	free(h->ssl_settings);
	free(h->certificate_uploaded);
	free(h->ssl_certificate_authority);
	free(h);
}

void
store_hostname_free_array(struct store_hostname **v, size_t n)
{
	size_t	 i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++)
		store_hostname_free(v[i]);
	free(v);
}

void
store_csr_free(struct store_csr *c)
{
	size_t	 i;

	if (c == NULL)
		return;
	free(c->key_type);
	free(c->country);
	free(c->state_name);
	free(c->locality);
	free(c->organization);
	free(c->organizational_unit);
	free(c->common_name);
	for (i = 0; i < c->nsans && c->sans != NULL; i++)
		free(c->sans[i]);
	free(c->sans);
	free(c->name);
	free(c->description);
	free(c->pubkey_der);
	free(c->csr_pem);
	free(c);
}

void
store_csr_free_array(struct store_csr **v, size_t n)
{
	size_t	 i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++)
		store_csr_free(v[i]);
	free(v);
}

int
store_audit_anchor_get(struct store *s, uint64_t *seq, char *hash)
{
	sqlite3_stmt		*st;
	const unsigned char	*h;
	sqlite3_int64		 v;
	int			 rc, r;

	return_val_if_fail(s != NULL && seq != NULL && hash != NULL, KC_ERR_INVALID);
	st = s->stmt[STMT_ANCHOR_GET];
	if ((rc = sqlite3_step(st)) == SQLITE_DONE) {
		r = KC_ERR_NOT_FOUND;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		r = store_error(s, rc, "audit anchor");
		goto out;
	}
	v = sqlite3_column_int64(st, 0);
	h = sqlite3_column_text(st, 1);
	if (v < 1 || h == NULL || strlen((const char *)h) != STORE_ANCHOR_HASH_LEN) {
		log_warnx("store: the audit anchor row is malformed");
		r = KC_ERR_STORE;
		goto out;
	}
	*seq = (uint64_t)v;
	memcpy(hash, h, STORE_ANCHOR_HASH_LEN + 1);
	r = 0;
 out:
	store_done(st);
	return r;
}

int
store_audit_anchor_put(struct store *s, uint64_t seq, const char *hash)
{
	sqlite3_stmt	*st;
	int		 rc;

	return_val_if_fail(s != NULL && hash != NULL && seq >= 1 && seq <= INT64_MAX &&
	    strlen(hash) == STORE_ANCHOR_HASH_LEN, KC_ERR_INVALID);
	st = s->stmt[STMT_ANCHOR_PUT];
	if ((rc = store_bind_int64(st, 1, (int64_t)seq)) != SQLITE_OK ||
	    (rc = store_bind_text(st, 2, hash)) != SQLITE_OK) {
		store_done(st);
		return store_error(s, rc, "audit anchor bind");
	}
	return store_step_done(s, STMT_ANCHOR_PUT, "audit anchor update");
}

/*
 * Run one of the fallback origin statements (its bindings set by the caller) and read the
 * one row it returns into f; none is KC_ERR_NOT_FOUND.
 */
static int
store_fallback_run(struct store *s, enum store_stmt which, const char *what,
    struct store_fallback *f)
{
	sqlite3_stmt	*st = s->stmt[which];
	int		 rc, r;

	if ((rc = sqlite3_step(st)) == SQLITE_DONE) {
		r = KC_ERR_NOT_FOUND;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		r = store_error(s, rc, what);
		goto out;
	}
	if ((r = store_col_fixed(st, 0, f->origin, sizeof(f->origin))) != 0) {
		log_warnx("store: %s: the origin column is malformed", what);
		goto out;
	}
	f->created_at_us = sqlite3_column_int64(st, 1);
	f->updated_at_us = sqlite3_column_int64(st, 2);
	/* To SQLITE_DONE: a RETURNING statement's changes are final there. */
	if ((rc = sqlite3_step(st)) != SQLITE_DONE)
		r = store_error(s, rc, what);
 out:
	store_done(st);
	return r;
}

int
store_fallback_get(struct store *s, const char *zone_id, struct store_fallback *f)
{
	int	 rc;

	return_val_if_fail(s != NULL && zone_id != NULL && f != NULL, KC_ERR_INVALID);
	if ((rc = store_bind_text(s->stmt[STMT_FALLBACK_GET], 1, zone_id)) != SQLITE_OK) {
		store_done(s->stmt[STMT_FALLBACK_GET]);
		return store_error(s, rc, "fallback origin bind");
	}
	return store_fallback_run(s, STMT_FALLBACK_GET, "get fallback origin", f);
}

int
store_fallback_put(struct store *s, const char *zone_id, const char *origin,
    int64_t now_us, struct store_fallback *f)
{
	sqlite3_stmt	*st;
	int		 rc;

	return_val_if_fail(s != NULL && zone_id != NULL && origin != NULL && f != NULL &&
	    *origin != '\0' && strlen(origin) <= STORE_ORIGIN_MAX && store_lower(origin),
	    KC_ERR_INVALID);
	st = s->stmt[STMT_FALLBACK_PUT];
	if ((rc = store_bind_text(st, 1, zone_id)) != SQLITE_OK ||
	    (rc = store_bind_text(st, 2, origin)) != SQLITE_OK ||
	    (rc = store_bind_int64(st, 3, now_us)) != SQLITE_OK) {
		store_done(st);
		return store_error(s, rc, "fallback origin bind");
	}
	return store_fallback_run(s, STMT_FALLBACK_PUT, "put fallback origin", f);
}

int
store_fallback_delete(struct store *s, const char *zone_id, struct store_fallback *f)
{
	int	 rc;

	return_val_if_fail(s != NULL && zone_id != NULL && f != NULL, KC_ERR_INVALID);
	if ((rc = store_bind_text(s->stmt[STMT_FALLBACK_DELETE], 1, zone_id)) != SQLITE_OK) {
		store_done(s->stmt[STMT_FALLBACK_DELETE]);
		return store_error(s, rc, "fallback origin bind");
	}
	return store_fallback_run(s, STMT_FALLBACK_DELETE, "delete fallback origin", f);
}

int
store_signer_rows(struct store *s, const char *zone_id, store_signer_fn fn, void *arg)
{
	struct store_signer_row	 row;
	sqlite3_stmt		*st;
	const void		*kid;
	int			 rc, r = 0;

	return_val_if_fail(s != NULL && fn != NULL, KC_ERR_INVALID);
	st = s->stmt[zone_id != NULL ? STMT_SIGNER_ZONE : STMT_SIGNER_ALL];
	if (zone_id != NULL && (rc = store_bind_text(st, 1, zone_id)) != SQLITE_OK) {
		r = store_error(s, rc, "signer keys");
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&row, 0, sizeof(row));
		kid = sqlite3_column_blob(st, 0);
		if (kid == NULL || sqlite3_column_bytes(st, 0) != STORE_KEY_ID_LEN ||
		    sqlite3_column_type(st, 3) != SQLITE_BLOB) {
			log_warnx("store: damaged row in the signer's view");
			r = KC_ERR_STORE;
			goto out;
		}
		memcpy(row.key_id, kid, STORE_KEY_ID_LEN);
		row.csr_id = (const char *)sqlite3_column_text(st, 1);
		row.key_type = (const char *)sqlite3_column_text(st, 2);
		row.pubkey = sqlite3_column_blob(st, 3);
		row.pubkey_len = (size_t)sqlite3_column_bytes(st, 3);
		row.zone_id = (const char *)sqlite3_column_text(st, 4);
		row.hostname = (const char *)sqlite3_column_text(st, 5);
		row.hostname_id = (const char *)sqlite3_column_text(st, 6);
		row.certificate_pem = (const char *)sqlite3_column_text(st, 7);
		if (row.csr_id == NULL || row.key_type == NULL || row.zone_id == NULL ||
		    row.hostname == NULL || row.hostname_id == NULL ||
		    row.certificate_pem == NULL) {
			r = KC_ERR_NOMEM;
			goto out;
		}
		if ((r = fn(arg, &row)) != 0)
			goto out;
	}
	if (rc != SQLITE_DONE)
		r = store_error(s, rc, "signer keys");
 out:
	store_done(st);
	return r;
}

int
store_key_hostnames(struct store *s, const uint8_t key_id[STORE_KEY_ID_LEN],
    store_key_host_fn fn, void *arg)
{
	sqlite3_stmt	*st;
	const char	*zone, *host;
	int		 rc, r = 0;

	return_val_if_fail(s != NULL && key_id != NULL && fn != NULL, KC_ERR_INVALID);
	st = s->stmt[STMT_SIGNER_KEY];
	if ((rc = store_bind_blob(st, 1, key_id, STORE_KEY_ID_LEN)) != SQLITE_OK) {
		r = store_error(s, rc, "key hostnames");
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		zone = (const char *)sqlite3_column_text(st, 0);
		host = (const char *)sqlite3_column_text(st, 1);
		if (zone == NULL || host == NULL) {
			r = KC_ERR_NOMEM;
			goto out;
		}
		if ((r = fn(arg, zone, host)) != 0)
			goto out;
	}
	if (rc != SQLITE_DONE)
		r = store_error(s, rc, "key hostnames");
 out:
	store_done(st);
	return r;
}
