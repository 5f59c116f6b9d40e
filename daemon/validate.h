/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * validate.h: the rules of API.md for what clients send (CSR subjects, SANs, hostnames,
 * key types, pagination), each failure with its API error code and message. Pure functions:
 * no I/O, no HSM, so every rule is unit-tested.
 */
#ifndef KC_VALIDATE_H
#define KC_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>

#include "csr.h"
#include "store.h"

struct kc_error;

#define VAL_MAX_SANS		150
#define VAL_MAX_SUBJECT_LEN	64	/* RFC 5280 ub-* for C..CN */
#define VAL_MAX_NAME_LEN	253	/* DNS name */
#define VAL_MAX_FREE_TEXT	1024	/* name, description (extension) */

/* Why a DNS name (SAN or hostname) was refused, in the order the checks run. */
enum val_name {
	VAL_NAME_OK = 0,
	VAL_NAME_SYNTAX,	/* not LDH labels, IP address, special characters, bad '-' */
	VAL_NAME_NONASCII,	/* non-ASCII characters */
	VAL_NAME_RESERVED,	/* reserved TLD: test, example, invalid, localhost, ... */
	VAL_NAME_EXAMPLE,	/* example.com, example.net, example.org, or below */
	VAL_NAME_SUFFIX		/* itself a public suffix, or its suffix is unknown */
};

/**
 * Check one DNS name. Non-ASCII is reported before syntax; then reserved TLDs, example.*,
 * and the Public Suffix List (libpsl's built-in list).
 * @param allow_wildcard accept a single leading "*." label
 * @param reason for VAL_NAME_SUFFIX, a short reason ("... is a public suffix"); may be NULL
 */
enum val_name val_dns_name(const char *name, bool allow_wildcard, char *reason,
	    size_t reasonlen);

/**
 * Bring a hostname, in place, to the form that is stored and compared: DNS names are
 * case-insensitive (RFC 4343), so ASCII letters are lowered, and one trailing dot (the
 * absolute form of the same name, RFC 1034 3.1) is dropped. Other bytes are left for
 * val_dns_name() to judge, so a second trailing dot or a lone "." stays invalid.
 * @param name NUL-terminated, modified in place; NULL is a no-op
 */
void	val_hostname_fold(char *name);
/** val_hostname_fold() without the dot: ASCII letters lowered only (a part of a name). */
void	val_hostname_fold_case(char *name);

/* The filters of a custom hostname list as the client sent them; NULL: absent. */
struct val_host_query {
	const char	*id;
	const char	*hostname;
	const char	*hostname_exact;
	const char	*hostname_contain;
	const char	*hostname_starts_with;
	const char	*custom_csr_id;
	const char	*ssl;
	const char	*ssl_status;
	const char	*wildcard;
	const char	*order;
	const char	*hostname_status;
	const char	*certificate_authority;
	const char	*custom_origin_server;
};

/* The checked filters: f's strings point into this structure or into the query. */
struct val_host_filter {
	struct store_hostname_filter	 f;
	char				 name[VAL_MAX_NAME_LEN + 2];	/* folded */
	char				 exact[VAL_MAX_NAME_LEN + 2];	/* folded */
	char				 contain[VAL_MAX_NAME_LEN + 2];	/* lowered */
	char				 prefix[VAL_MAX_NAME_LEN + 2];	/* lowered */
	char				 origin[VAL_MAX_NAME_LEN + 2];	/* folded */
};

/** The ssl.certificate_authority values, as a message names them. */
#define VAL_CAS_TEXT	"google, lets_encrypt or ssl_com"

/** s if it is one of Cloudflare's certificate authorities (VAL_CAS_TEXT), else NULL. */
const char	*val_certificate_authority(const char *s);

/**
 * Check and fold the list filters of API.md "GET custom_hostnames" into out (its
 * f.descending, f.now_us left 0 for the caller). Refused, status INVALID_ARGUMENT: a
 * malformed id (1435), id with any other filter (1438), a value outside its set or too
 * long, and the filter without a meaning here, hostname_status (1437).
 * @retval 0 or KC_ERR_INVALID with err filled
 */
int	val_hostname_filter(const struct val_host_query *q, struct val_host_filter *out,
	    struct kc_error *err);

/* A create-CSR request as the daemon received it; NULL means the field was absent. */
struct val_csr_fields {
	struct csr_subject	 subject;	/* as the request has it (csr.h) */
	const char		*key_type;	/* NULL: the default, rsa2048 */
	const char		*name;
	const char		*description;
};

/**
 * Apply every rule of API.md "POST custom_csrs" in its order; the first failure fills err
 * (status INVALID_ARGUMENT, code 1405..1417, the message of API.md).
 * @retval 0 or KC_ERR_INVALID
 */
int	val_csr_fields(const struct val_csr_fields *f, struct kc_error *err);

/**
 * Pagination: page >= 1, per_page 5..50 (0 means absent: defaults 1 and 20).
 * @retval 0 or KC_ERR_INVALID with err filled (code 6008 with the detail in the message)
 */
int	val_pagination(unsigned int *page, unsigned int *per_page, struct kc_error *err);

/** A zone id: exactly 32 lowercase hex characters. */
bool	val_zone_id(const char *s);
/** An object id: a lowercase UUID, 36 characters, 8-4-4-4-12. */
bool	val_uuid(const char *s);

#endif /* KC_VALIDATE_H */
