/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * kc-api.h: the API's error codes and messages that more than one file gives (docs/API.md),
 * its page limits and its key types: one table that the daemon, the shim and the CLI include.
 * Codes that one module alone gives (validate.c's 1405..1417, cert.c's 1421..1429) stay
 * there.
 */
#ifndef KC_API_H
#define KC_API_H

/* Not tied to one request (docs/API.md "Server errors"). */
#define KC_API_INTERNAL			1500
#define KC_API_UNAVAILABLE		1503
/* What Cloudflare's API answers with HTTP 429 (a rate limit): KC_STATUS_RATE_LIMITED. */
#define KC_API_RATE_LIMITED		971
#define KC_API_RATE_LIMITED_MSG		"Please wait and consider throttling your request speed"
/*
 * An extension (Cloudflare's documentation names no code for it): the zone holds
 * zone_key_quota custom CSRs already; 403, not worth retrying until one is deleted.
 */
#define KC_API_ZONE_QUOTA		1499
#define KC_API_ZONE_QUOTA_FMT						\
	"The zone has reached its quota of %u custom CSRs. Delete one before creating another."

#define KC_API_AUTH			10000	/* the message starts with this: */
#define KC_API_AUTH_MSG			"Authentication error"

#define KC_API_ZONE_INVALID		7003	/* printf: the zone, or "<invalid>" */
#define KC_API_ZONE_INVALID_FMT						\
	"Could not route to /zones/%s, perhaps your object identifier is invalid?"

/* The request body is not the JSON it should be (the shim and the daemon both say so). */
#define KC_API_DECODE			1400
#define KC_API_DECODE_MSG						\
	"Unable to decode the JSON request body. Check your input and try again."

#define KC_API_PARAMS			6008
#define KC_API_PARAMS_MSG		"Invalid request parameters"
#define KC_API_PAGE_MSG			"page variable must be a number greater than or equal to 1"

#define KC_API_CSR_ID_INVALID		1418
#define KC_API_CSR_ID_INVALID_MSG					\
	"The custom CSR ID is invalid. Check your input and try again."
#define KC_API_CSR_NOT_FOUND		1419
#define KC_API_CSR_NOT_FOUND_MSG	"The custom CSR was not found."
#define KC_API_CSR_IN_USE		1420
#define KC_API_CSR_IN_USE_MSG						\
	"The custom CSR is associated with an active certificate pack. You will need to " \
	"delete all associated active certificate packs before you can delete the custom CSR."
#define KC_API_HOSTNAME_ID_INVALID	1435
#define KC_API_HOSTNAME_ID_INVALID_MSG					\
	"The custom hostname ID is invalid. Check your input and try again."
#define KC_API_HOSTNAME_FILTER		1437	/* a list filter's value is refused */
#define KC_API_HOSTNAME_FILTERS		1438	/* id and hostname filters combined */
#define KC_API_HOSTNAME_NOT_FOUND	1436
/*
 * Extension: an upload to a custom CSR whose key start-up found missing from the token
 * (409). Not one of Cloudflare's codes (its 1432 is a validation-method error).
 */
#define KC_API_CSR_KEY_MISSING		1490
#define KC_API_HOSTNAME_NOT_FOUND_MSG	"The custom hostname was not found."

/* The zone has no fallback origin (Cloudflare's 1551, a 404). */
#define KC_API_FALLBACK_NOT_FOUND	1551
#define KC_API_FALLBACK_NOT_FOUND_MSG	"Fallback origin not found."

/* Pages of a list: page 1..KC_PAGE_MAX, per_page KC_PER_PAGE_MIN..KC_PER_PAGE_MAX. */
#define KC_PAGE_MAX			100000000U
#define KC_PER_PAGE_MIN			5
#define KC_PER_PAGE_MAX			50
#define KC_PER_PAGE_DEFAULT		20

/*
 * The key types a CSR can ask for, the first the default (docs/API.md, 1417): as an array
 * initializer and as usage text. validate.c's 1417 message names the same (test-validate
 * checks that).
 */
#define KC_KEY_TYPE_NAMES		"rsa2048", "p256v1", "rsa3072", "rsa4096", "p384v1"
#define KC_KEY_TYPES_USAGE		"rsa2048|p256v1|rsa3072|rsa4096|p384v1"
/*
 * 1417 again, for a type the API knows but the daemon's token cannot make (validate.c
 * refuses unknown names; answer-csr.c these): printf, the offered types as the API's
 * message lists them ("'rsa2048' or 'rsa3072'"), and why this one is not.
 */
#define KC_API_KEY_TYPE			1417
#define KC_API_KEY_TYPE_TOKEN_FMT					\
	"Invalid key type. Only %s is accepted by this server's token (%s)."

#endif /* KC_API_H */
