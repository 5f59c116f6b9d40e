/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * validate.c: what a client may send (API.md): CSR subjects, SANs and hostnames, key types,
 * pagination and identifiers; the only user of libpsl.
 */
#include "config.h"

#include <sys/socket.h>

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <libpsl.h>

#include "kc-api.h"
#include "kc-err.h"
#include "kc-util.h"
#include "validate.h"

/* API.md "POST custom_csrs" codes. */
#define VAL_CODE_COUNTRY	1405
#define VAL_CODE_STATE		1406
#define VAL_CODE_LOCALITY	1407
#define VAL_CODE_ORG		1408
#define VAL_CODE_CN		1409
#define VAL_CODE_CN_LONG	1410
#define VAL_CODE_SAN_NONE	1411
#define VAL_CODE_SAN_SYNTAX	1412
#define VAL_CODE_SAN_NONASCII	1413
#define VAL_CODE_SAN_RESERVED	1414
#define VAL_CODE_SAN_SUFFIX	1415
#define VAL_CODE_SAN_EXAMPLE	1416
#define VAL_CODE_KEY_TYPE	KC_API_KEY_TYPE
#define VAL_CODE_PARAMS		KC_API_PARAMS

/* Cloudflare's messages of 1405 to 1415 end so (status-codes/custom-csrs). */
#define VAL_MSG_END		" Check your input and try again."
#define VAL_MSG_COUNTRY		"Country field is required." VAL_MSG_END
#define VAL_MSG_SAN_NONE						\
	"At least one subject alternative name (SAN) is required." VAL_MSG_END
#define VAL_MSG_SAN_SYNTAX						\
	"Invalid subject alternative name(s) (SAN). SANs have to be smaller than 256 " \
	"characters in length, cannot be IP addresses, cannot contain any special " \
	"characters such as ~`!@#$%^&*()=+{}[]|\\;:'\",<>/? and cannot begin or end " \
	"with a '-' character." VAL_MSG_END
#define VAL_MSG_SAN_NONASCII						\
	"Subject Alternative Names (SANs) with non-ASCII characters are not supported." \
	VAL_MSG_END
#define VAL_MSG_SAN_RESERVED						\
	"Reserved top domain subject alternative names (SAN), such as 'test', " \
	"'example', 'invalid' or 'localhost', is not supported." VAL_MSG_END
#define VAL_MSG_SAN_EXAMPLE						\
	"Subject Alternative Names (SANs) ending in example.com, example.net, or " \
	"example.org are prohibited." VAL_MSG_END
#define VAL_MSG_SAN_SUFFIX						\
	"Unable to parse subject alternative name(s) (SAN) - %s." VAL_MSG_END
/* Names exactly val_key_types[] (test-validate checks that). */
#define VAL_MSG_KEY_TYPE						\
	"Invalid key type. Only 'rsa2048', 'p256v1', 'rsa3072', 'rsa4096' or 'p384v1' " \
	"is accepted." VAL_MSG_END

#define VAL_MAX_LABEL_LEN	63

/* What val_text_check() found in a free-text field. */
enum val_text {
	VAL_TEXT_OK = 0,
	VAL_TEXT_BADCHAR,	/* invalid UTF-8, or a control character (C0, DEL, C1) */
	VAL_TEXT_BLANK,		/* empty, or nothing but spaces */
	VAL_TEXT_LONG		/* more than the limit, counted in code points */
};

/* One subject field after the country, in the order of API.md. */
struct val_subject {
	const char	*value;
	const char	*label;		/* as the messages name it */
	int		 code;
	bool		 required;
};

static const char *const val_key_types[] = { KC_KEY_TYPE_NAMES };

/*
 * Top-level domains that never name a host a CA certifies: RFC 2606 and RFC 6761 (test,
 * example, invalid, localhost), RFC 6762 (local), RFC 7686 (onion), RFC 9476 (alt), ICANN's
 * private-use reservation of 2024 (internal), and arpa, the infrastructure TLD of RFC 3172
 * (reverse DNS, and the special-use home.arpa, resolver.arpa, service.arpa, ipv4only.arpa).
 */
static const char *const val_reserved_tlds[] = {
	"alt", "arpa", "example", "internal", "invalid", "local", "localhost", "onion", "test"
};

/* RFC 2606 second-level names: refused with their own code (1416), subdomains included. */
static const char *const val_example_domains[] = {
	"example.com", "example.net", "example.org"
};

static void	val_fail(struct kc_error *, int, const char *, ...)
		    __attribute__((__format__(__printf__, 3, 4)));

/* Fill err (when given) with an INVALID_ARGUMENT error. */
static void
val_fail(struct kc_error *err, int code, const char *fmt, ...)
{
	char	buf[sizeof(err->message)];
	va_list	ap;

	if (err == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	kc_error_set(err, KC_STATUS_INVALID_ARGUMENT, code, "%s", buf);
}

/*
 * Decode one UTF-8 sequence at *sp and advance past it. Refuses what RFC 3629 refuses:
 * stray continuation bytes, truncated and overlong sequences, surrogates, above U+10FFFF.
 */
static int
val_utf8_next(const unsigned char **sp, uint32_t *cpp)
{
	const unsigned char	*s = *sp;
	uint32_t		 cp, min;
	size_t			 n, i;

	if (s[0] < 0x80) {
		*cpp = s[0];
		*sp = s + 1;
		return 0;
	}
	if ((s[0] & 0xe0) == 0xc0) {
		n = 2;
		cp = s[0] & 0x1f;
		min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3;
		cp = s[0] & 0x0f;
		min = 0x800;
	} else if ((s[0] & 0xf8) == 0xf0) {
		n = 4;
		cp = s[0] & 0x07;
		min = 0x10000;
	} else
		return -1;
	/* A NUL terminator is not a continuation byte, so this never reads past it. */
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return -1;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	*cpp = cp;
	*sp = s + n;
	return 0;
}

/* Unicode general category Cc: C0, DEL and C1. */
static bool
val_is_control(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

/* Classify a free-text field against a limit of maxchars code points. */
static enum val_text
val_text_check(const char *s, size_t maxchars)
{
	const unsigned char	*p = (const unsigned char *)s;
	uint32_t		 cp;
	size_t			 nchars = 0;
	bool			 blank = true;

	while (*p != '\0') {
		if (val_utf8_next(&p, &cp) != 0 || val_is_control(cp))
			return VAL_TEXT_BADCHAR;
		if (cp != ' ')
			blank = false;
		nchars++;
	}
	if (blank)
		return VAL_TEXT_BLANK;
	if (nchars > maxchars)
		return VAL_TEXT_LONG;
	return VAL_TEXT_OK;
}

static bool
val_is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
val_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool
val_is_lowerhex(char c)
{
	return val_is_digit(c) || (c >= 'a' && c <= 'f');
}

/*
 * Check that name (lower-cased ASCII) is dot-separated LDH labels of 1 to 63 characters,
 * none beginning or ending with '-'. An empty label refuses a leading or trailing dot and "..".
 * @param tldp the last label
 */
static bool
val_ldh_labels(const char *name, const char **tldp)
{
	const char	*label = name, *p;
	size_t		 len;

	for (;;) {
		for (p = label; *p != '\0' && *p != '.'; p++) {
			if (!val_is_alpha(*p) && !val_is_digit(*p) && *p != '-')
				return false;
		}
		len = (size_t)(p - label);
		if (len == 0 || len > VAL_MAX_LABEL_LEN)
			return false;
		if (label[0] == '-' || p[-1] == '-')
			return false;
		if (*p == '\0')
			break;
		label = p + 1;
	}
	*tldp = label;
	return true;
}

/*
 * A last label that inet_aton(3) would read as a number (decimal, or 0x hex) makes the
 * name an IPv4 address or something a resolver may take for one; no TLD is numeric.
 */
static bool
val_is_numeric_label(const char *label)
{
	const char	*p = label;

	if (p[0] == '0' && p[1] == 'x' && p[2] != '\0') {
		for (p += 2; *p != '\0'; p++)
			if (!val_is_lowerhex(*p))
				return false;
		return true;
	}
	for (; *p != '\0'; p++)
		if (!val_is_digit(*p))
			return false;
	return true;
}

/* Is name equal to domain or below it? Both lower-case. */
static bool
val_is_within(const char *name, const char *domain)
{
	size_t	nlen = strlen(name), dlen = strlen(domain);

	if (nlen == dlen)
		return strcmp(name, domain) == 0;
	return nlen > dlen && name[nlen - dlen - 1] == '.' &&
	    strcmp(name + nlen - dlen, domain) == 0;
}

/*
 * The Public Suffix List check, on a syntactically valid lower-case name. Two failures:
 * the top-level domain is not in the list at all (libpsl's implicit "*" rule would make any
 * TLD a public suffix, so this lookup has PSL_TYPE_NO_STAR_RULE), or the name is itself a
 * public suffix, ICANN or private section ("co.uk", "foo.ck" by the *.ck rule, "github.io").
 * psl_builtin() is compiled-in, read-only data: sharing it across threads is safe, and no
 * file is read at run time. Names reach libpsl in ASCII only, so it never calls libidn2.
 */
static bool
val_psl_ok(const char *name, const char *tld, char *reason, size_t reasonlen)
{
	const psl_ctx_t	*psl;

	if ((psl = psl_builtin()) == NULL) {
		/* libpsl built without its list: fail closed. */
		if (reason != NULL && reasonlen > 0)
			snprintf(reason, reasonlen, "no Public Suffix List is available");
		return false;
	}
	if (!psl_is_public_suffix2(psl, tld, PSL_TYPE_ANY | PSL_TYPE_NO_STAR_RULE)) {
		if (reason != NULL && reasonlen > 0)
			snprintf(reason, reasonlen, "%s has an unknown top-level domain",
			    name);
		return false;
	}
	if (psl_is_public_suffix2(psl, name, PSL_TYPE_ANY)) {
		if (reason != NULL && reasonlen > 0)
			snprintf(reason, reasonlen, "%s is a public suffix", name);
		return false;
	}
	return true;
}

/*
 * Notes on the rules (API.md gives the outline):
 * - Length: at most 253 characters, the longest name DNS can carry (255 octets on the wire);
 *   API.md's "smaller than 256" is the bound the message quotes. No trailing dot.
 * - A single-label name ("localhost", "com", "foo") is not a syntax error: the reserved-TLD
 *   and Public Suffix rules refuse every one of them, with the more telling code.
 * - Upper case is accepted (DNS is case-insensitive); every comparison is on a lower-cased
 *   copy. The caller keeps and uses the name as sent.
 * - A wildcard is one leading "*." label; the rules after syntax apply to what follows it,
 *   so "*.co.uk" is refused as a public suffix and "*.example.com" as example.*.
 */
enum val_name
val_dns_name(const char *name, bool allow_wildcard, char *reason, size_t reasonlen)
{
	char		 buf[VAL_MAX_NAME_LEN + 1];
	const char	*base, *tld;
	size_t		 len, i;

	if (reason != NULL && reasonlen > 0)
		reason[0] = '\0';
	if (name == NULL)
		return VAL_NAME_SYNTAX;

	/* Non-ASCII first: otherwise every such name would fail as syntax and 1413 would
	 * never be sent. This includes invalid UTF-8 and C1 controls. */
	for (len = 0; name[len] != '\0'; len++)
		if ((unsigned char)name[len] >= 0x80)
			return VAL_NAME_NONASCII;

	if (len == 0 || len > VAL_MAX_NAME_LEN)
		return VAL_NAME_SYNTAX;
	for (i = 0; i <= len; i++) {
		buf[i] = name[i];
		if (buf[i] >= 'A' && buf[i] <= 'Z')
			buf[i] += 'a' - 'A';
	}

	base = buf;
	if (allow_wildcard && buf[0] == '*' && buf[1] == '.')
		base = buf + 2;
	if (!val_ldh_labels(base, &tld) || val_is_numeric_label(tld))
		return VAL_NAME_SYNTAX;

	for (i = 0; i < sizeof(val_reserved_tlds) / sizeof(val_reserved_tlds[0]); i++)
		if (strcmp(tld, val_reserved_tlds[i]) == 0)
			return VAL_NAME_RESERVED;
	for (i = 0; i < sizeof(val_example_domains) / sizeof(val_example_domains[0]); i++)
		if (val_is_within(base, val_example_domains[i]))
			return VAL_NAME_EXAMPLE;
	if (!val_psl_ok(base, tld, reason, reasonlen))
		return VAL_NAME_SUFFIX;
	return VAL_NAME_OK;
}

/* Country: required, exactly two ASCII letters, either case (the daemon stores it upper). */
static int
val_country(const char *c, struct kc_error *err)
{
	if (c == NULL || !val_is_alpha(c[0]) || !val_is_alpha(c[1]) || c[2] != '\0') {
		val_fail(err, VAL_CODE_COUNTRY, "%s", VAL_MSG_COUNTRY);
		return KC_ERR_INVALID;
	}
	return 0;
}

/*
 * A subject field after the country. A required field that is absent, empty or blank gets
 * API.md's "... field is required."; control characters or invalid UTF-8 get "... field
 * contains control characters or invalid UTF-8.", and more than 64 characters "The
 * specified ... is too long. Maximum allowed length is 64 characters." (API.md's 1410 text
 * for the Common Name), all with the field's own code, except that a Common Name that is
 * too long has its own code, 1410.
 * An optional field (organizational_unit) that is absent or empty is simply not given; a
 * blank one is refused ("... field is blank.") rather than put in the subject as spaces.
 */
static int
val_subject(const struct val_subject *s, struct kc_error *err)
{
	enum val_text	t;

	if (s->value == NULL || (!s->required && s->value[0] == '\0')) {
		if (!s->required)
			return 0;
		val_fail(err, s->code, "%s field is required." VAL_MSG_END, s->label);
		return KC_ERR_INVALID;
	}
	switch ((t = val_text_check(s->value, VAL_MAX_SUBJECT_LEN))) {
	case VAL_TEXT_OK:
		return 0;
	case VAL_TEXT_BADCHAR:
		val_fail(err, s->code, "%s field contains control characters or invalid "
		    "UTF-8." VAL_MSG_END, s->label);
		break;
	case VAL_TEXT_BLANK:
		if (s->required)
			val_fail(err, s->code, "%s field is required." VAL_MSG_END, s->label);
		else
			val_fail(err, s->code, "%s field is blank." VAL_MSG_END, s->label);
		break;
	case VAL_TEXT_LONG:
		val_fail(err, s->code == VAL_CODE_CN ? VAL_CODE_CN_LONG : s->code,
		    "The specified %s is too long. Maximum allowed length is %d characters."
		    VAL_MSG_END, s->label, VAL_MAX_SUBJECT_LEN);
		break;
	}
	return KC_ERR_INVALID;
}

/*
 * The SANs. More than 150 is 1412 before any name is looked at. Then every SAN is
 * classified by val_dns_name() (wildcards allowed) and the failure reported is the one
 * that comes first in API.md's table, whichever SAN has it: syntax 1412, non-ASCII 1413,
 * reserved 1414, example.* 1416, public suffix 1415 (enum val_name is in that order); among
 * SANs with the same failure the first one names the reason. So a request is answered as if
 * each rule of the table had been run over all SANs in turn.
 */
static int
val_sans(const char *const *sans, size_t nsans, struct kc_error *err)
{
	char		 reason[VAL_MAX_NAME_LEN + 64], r[sizeof(reason)];
	enum val_name	 worst = VAL_NAME_OK, v;
	size_t		 i;

	if (sans == NULL || nsans == 0) {
		val_fail(err, VAL_CODE_SAN_NONE, "%s", VAL_MSG_SAN_NONE);
		return KC_ERR_INVALID;
	}
	if (nsans > VAL_MAX_SANS) {
		val_fail(err, VAL_CODE_SAN_SYNTAX, "%s", VAL_MSG_SAN_SYNTAX);
		return KC_ERR_INVALID;
	}
	reason[0] = '\0';
	for (i = 0; i < nsans && worst != VAL_NAME_SYNTAX; i++) {
		if ((v = val_dns_name(sans[i], true, r, sizeof(r))) == VAL_NAME_OK)
			continue;
		if (worst == VAL_NAME_OK || v < worst) {
			worst = v;
			snprintf(reason, sizeof(reason), "%s", r);
		}
	}
	switch (worst) {
	case VAL_NAME_OK:
		return 0;
	case VAL_NAME_SYNTAX:
		val_fail(err, VAL_CODE_SAN_SYNTAX, "%s", VAL_MSG_SAN_SYNTAX);
		break;
	case VAL_NAME_NONASCII:
		val_fail(err, VAL_CODE_SAN_NONASCII, "%s", VAL_MSG_SAN_NONASCII);
		break;
	case VAL_NAME_RESERVED:
		val_fail(err, VAL_CODE_SAN_RESERVED, "%s", VAL_MSG_SAN_RESERVED);
		break;
	case VAL_NAME_EXAMPLE:
		val_fail(err, VAL_CODE_SAN_EXAMPLE, "%s", VAL_MSG_SAN_EXAMPLE);
		break;
	case VAL_NAME_SUFFIX:
		val_fail(err, VAL_CODE_SAN_SUFFIX, VAL_MSG_SAN_SUFFIX, reason);
		break;
	}
	return KC_ERR_INVALID;
}

/* Key type: NULL is the default (rsa2048); otherwise one of val_key_types, exactly. */
static int
val_key_type(const char *kt, struct kc_error *err)
{
	size_t	i;

	if (kt == NULL)
		return 0;
	for (i = 0; i < sizeof(val_key_types) / sizeof(val_key_types[0]); i++)
		if (strcmp(kt, val_key_types[i]) == 0)
			return 0;
	val_fail(err, VAL_CODE_KEY_TYPE, "%s", VAL_MSG_KEY_TYPE);
	return KC_ERR_INVALID;
}

/*
 * The extension fields name and description: optional (absent or empty is fine), at most
 * 1024 characters, valid UTF-8, no control characters. API.md gives them no code, so a
 * violation is 1400, the code for a body field the server cannot take, with a message that
 * names the field and its limit. They are checked last, after key_type, so that a request
 * the original API would refuse gets the original's answer.
 */
static int
val_free_text(const char *s, const char *label, struct kc_error *err)
{
	enum val_text	t;

	if (s == NULL)
		return 0;
	if ((t = val_text_check(s, VAL_MAX_FREE_TEXT)) == VAL_TEXT_OK || t == VAL_TEXT_BLANK)
		return 0;
	val_fail(err, KC_API_DECODE, "The %s field is invalid: at most %d characters of "
	    "UTF-8 text without control characters.", label, VAL_MAX_FREE_TEXT);
	return KC_ERR_INVALID;
}

/*
 * The order is API.md's: country 1405, state 1406, locality 1407, organization 1408, then
 * organizational_unit, which the table does not list: its violations use 1408, the code of
 * its neighbour organization, with messages that name the Organizational Unit; then the
 * common name 1409/1410, the SANs 1411..1416, key_type 1417, and name/description (1400).
 */
int
val_csr_fields(const struct val_csr_fields *f, struct kc_error *err)
{
	struct val_subject	subj[] = {
		{ NULL, "State", VAL_CODE_STATE, true },
		{ NULL, "Locality", VAL_CODE_LOCALITY, true },
		{ NULL, "Organization", VAL_CODE_ORG, true },
		{ NULL, "Organizational Unit", VAL_CODE_ORG, false },
		{ NULL, "Common Name", VAL_CODE_CN, true },
	};
	size_t			i;
	int			r;

	if (f == NULL) {
		val_fail(err, KC_API_DECODE, "%s", KC_API_DECODE_MSG);
		return KC_ERR_INVALID;
	}
	subj[0].value = f->subject.state;
	subj[1].value = f->subject.locality;
	subj[2].value = f->subject.organization;
	subj[3].value = f->subject.organizational_unit;
	subj[4].value = f->subject.common_name;

	if ((r = val_country(f->subject.country, err)) != 0)
		return r;
	for (i = 0; i < sizeof(subj) / sizeof(subj[0]); i++)
		if ((r = val_subject(&subj[i], err)) != 0)
			return r;
	if ((r = val_sans(f->subject.sans, f->subject.nsans, err)) != 0 ||
	    (r = val_key_type(f->key_type, err)) != 0 ||
	    (r = val_free_text(f->name, "name", err)) != 0 ||
	    (r = val_free_text(f->description, "description", err)) != 0)
		return r;
	return 0;
}

/*
 * The daemon's own check of what the shim already parsed from the query string (the
 * protocol carries unsigned integers, so 0 can only mean "absent"). The error is the 6008
 * "Invalid request parameters" of API.md; err->message carries the text of its 11000
 * error_chain entry, from which the shim builds the chain. page and per_page are only
 * written on success.
 */
int
val_pagination(unsigned int *page, unsigned int *per_page, struct kc_error *err)
{
	unsigned int	pg, pp;

	if (page == NULL || per_page == NULL) {
		val_fail(err, VAL_CODE_PARAMS, "Invalid request parameters");
		return KC_ERR_INVALID;
	}
	pg = *page == 0 ? 1 : *page;
	pp = *per_page == 0 ? KC_PER_PAGE_DEFAULT : *per_page;
	if (pg > KC_PAGE_MAX) {
		val_fail(err, VAL_CODE_PARAMS, "page variable must be a number between 1 "
		    "and %u", KC_PAGE_MAX);
		return KC_ERR_INVALID;
	}
	if (pp < KC_PER_PAGE_MIN || pp > KC_PER_PAGE_MAX) {
		val_fail(err, VAL_CODE_PARAMS, "per_page variable must be a number between "
		    "%d and %d", KC_PER_PAGE_MIN, KC_PER_PAGE_MAX);
		return KC_ERR_INVALID;
	}
	*page = pg;
	*per_page = pp;
	return 0;
}

bool
val_zone_id(const char *s)
{
	size_t	i;

	if (s == NULL)
		return false;
	for (i = 0; i < 32; i++)
		if (!val_is_lowerhex(s[i]))
			return false;
	return s[32] == '\0';
}

/*
 * Any lowercase 8-4-4-4-12 form, whatever its version and variant bits: we only issue v4
 * ids, and a well-formed id we never issued is simply not found.
 */
void
val_hostname_fold(char *name)
{
	size_t	 len;

	if (name == NULL)
		return;
	val_hostname_fold_case(name);
	if ((len = strlen(name)) > 1 && name[len - 1] == '.')
		name[len - 1] = '\0';
}

/*
 * Cloudflare's ssl.status values (SDK 7.3.0's list filter). Only "active" and "expired"
 * occur here (the certificate is uploaded and served at once); the others select nothing.
 */
static const char *const val_ssl_statuses[] = {
	"initializing", "pending_validation", "deleted", "pending_issuance",
	"pending_deployment", "pending_deletion", "pending_expiration", "expired", "active",
	"initializing_timed_out", "validation_timed_out", "issuance_timed_out",
	"deployment_timed_out", "deletion_timed_out", "pending_cleanup", "staging_deployment",
	"staging_active", "deactivating", "inactive", "backup_issued", "holding_deployment",
};

/* Cloudflare's certificate authorities (SDK 7.3.0); store.c's migration 8 CHECKs them too. */
static const char *const val_cas[] = { "google", "lets_encrypt", "ssl_com" };

const char *
val_certificate_authority(const char *s)
{
	size_t	 i;

	for (i = 0; s != NULL && i < nitems(val_cas); i++)
		if (strcmp(s, val_cas[i]) == 0)
			return val_cas[i];
	return NULL;
}

static int
val_filter_refuse(struct kc_error *err, int code, const char *msg)
{
	kc_error_set(err, KC_STATUS_INVALID_ARGUMENT, code, "%s", msg);
	return KC_ERR_INVALID;
}

/*
 * A hostname.contain or hostname.startsWith value: a part of a hostname, so letters,
 * digits, hyphens and dots (startsWith may begin with the "*." of a wildcard), not an IP
 * address, at most 253 characters; lowered into out (1437, Cloudflare's rule).
 */
static int
val_name_part(const char *param, const char *v, bool prefix, char *out, size_t outsz,
    struct kc_error *err)
{
	unsigned char	 addr[16];
	size_t		 i;
	bool		 ok = strlen(v) <= VAL_MAX_NAME_LEN;

	for (i = 0; ok && v[i] != '\0'; i++)
		ok = val_is_alpha(v[i]) || val_is_digit(v[i]) || v[i] == '-' ||
		    v[i] == '.' || (prefix && i == 0 && v[0] == '*' && v[1] == '.');
	/* The characters above leave IPv4 only (an IPv6 address has colons). */
	if (ok)
		ok = inet_pton(AF_INET, v, addr) != 1;
	if (!ok) {
		kc_error_set(err, KC_STATUS_INVALID_ARGUMENT, KC_API_HOSTNAME_FILTER,
		    "Invalid %s query parameter. The %s query parameter has to be smaller "
		    "than 256 characters in length, cannot be IP addresses and cannot "
		    "contain any special characters such as ~`!@#$%%^&*()=+{}[]|\\;:'\",<>/?."
		    " Check your input and try again.", param, param);
		return KC_ERR_INVALID;
	}
	snprintf(out, outsz, "%s", v);
	val_hostname_fold_case(out);
	return 0;
}

/* An exact hostname filter, folded into out as hostnames are stored. */
static int
val_name_exact(const char *param, const char *v, char *out, size_t outsz,
    struct kc_error *err)
{
	if (strlen(v) > VAL_MAX_NAME_LEN + 1) {
		kc_error_set(err, KC_STATUS_INVALID_ARGUMENT, KC_API_HOSTNAME_FILTER, "The %s "
		    "filter is too long: a hostname has at most 253 characters. Check your "
		    "input and try again.", param);
		return KC_ERR_INVALID;
	}
	snprintf(out, outsz, "%s", v);
	val_hostname_fold(out);
	return 0;
}

int
val_hostname_filter(const struct val_host_query *q, struct val_host_filter *out,
    struct kc_error *err)
{
	struct store_hostname_filter	*f = &out->f;
	size_t				 i;
	int				 r;

	memset(out, 0, sizeof(*out));
	if (q->id != NULL && (q->hostname != NULL || q->hostname_exact != NULL ||
	    q->hostname_contain != NULL || q->hostname_starts_with != NULL ||
	    q->custom_csr_id != NULL || q->ssl != NULL || q->ssl_status != NULL ||
	    q->wildcard != NULL || q->hostname_status != NULL ||
	    q->certificate_authority != NULL || q->custom_origin_server != NULL))
		return val_filter_refuse(err, KC_API_HOSTNAME_FILTERS, "Cannot specify other "
		    "filter parameters in addition to `id`. Only one must be specified. "
		    "Check your input and try again.");
	if (q->id != NULL) {
		if (!val_uuid(q->id))
			return val_filter_refuse(err, KC_API_HOSTNAME_ID_INVALID,
			    KC_API_HOSTNAME_ID_INVALID_MSG);
		f->id = q->id;
	}
	if (q->hostname_status != NULL)
		return val_filter_refuse(err, KC_API_HOSTNAME_FILTER, "The hostname_status filter is not "
		    "supported: a custom hostname here has no activation step, its status is "
		    "its certificate's (filter by ssl_status). Check your input and try "
		    "again.");
	if (q->certificate_authority != NULL) {
		/* As stored: ssl.certificate_authority, as the client last set it. */
		if ((f->ca = val_certificate_authority(q->certificate_authority)) == NULL)
			return val_filter_refuse(err, KC_API_HOSTNAME_FILTER, "The "
			    "certificate_authority filter must be " VAL_CAS_TEXT ". Check your "
			    "input and try again.");
	}
	if (q->custom_origin_server != NULL) {
		/* Matched as stored: folded like the origins that PATCH and POST store. */
		if ((r = val_name_exact("custom_origin_server", q->custom_origin_server,
		    out->origin, sizeof(out->origin), err)) != 0)
			return r;
		f->origin = out->origin;
	}

	/* The hostname filters are ANDed; two exact ones that differ select nothing. */
	if (q->hostname != NULL) {
		if ((r = val_name_exact("hostname", q->hostname, out->name,
		    sizeof(out->name), err)) != 0)
			return r;
		f->hostname = out->name;
	}
	if (q->hostname_exact != NULL) {
		if ((r = val_name_exact("hostname.exact", q->hostname_exact, out->exact,
		    sizeof(out->exact), err)) != 0)
			return r;
		if (f->hostname != NULL && strcmp(f->hostname, out->exact) != 0)
			f->none = true;
		f->hostname = out->exact;
	}
	if (q->hostname_contain != NULL) {
		if ((r = val_name_part("hostname.contain", q->hostname_contain, false,
		    out->contain, sizeof(out->contain), err)) != 0)
			return r;
		f->contains = out->contain;
	}
	if (q->hostname_starts_with != NULL) {
		if ((r = val_name_part("hostname.startsWith", q->hostname_starts_with, true,
		    out->prefix, sizeof(out->prefix), err)) != 0)
			return r;
		f->prefix = out->prefix;
	}
	f->csr_id = q->custom_csr_id;

	if (q->ssl != NULL) {
		/* Every custom hostname here has its certificate: ssl=0 selects none. */
		if (strcmp(q->ssl, "0") == 0)
			f->none = true;
		else if (strcmp(q->ssl, "1") != 0)
			return val_filter_refuse(err, KC_API_HOSTNAME_FILTER, "The ssl filter "
			    "must be 0 or 1. Check your input and try again.");
	}
	if (q->ssl_status != NULL) {
		for (i = 0; i < nitems(val_ssl_statuses); i++)
			if (strcmp(q->ssl_status, val_ssl_statuses[i]) == 0)
				break;
		if (i == nitems(val_ssl_statuses))
			return val_filter_refuse(err, KC_API_HOSTNAME_FILTER, "The ssl_status filter "
			    "is not a certificate status. Check your input and try again.");
		f->ssl_status = strcmp(q->ssl_status, "active") == 0 ? STORE_SSL_ACTIVE :
		    strcmp(q->ssl_status, "expired") == 0 ? STORE_SSL_EXPIRED :
		    STORE_SSL_NONE;
	}
	if (q->wildcard != NULL) {
		if (strcmp(q->wildcard, "true") == 0 || strcmp(q->wildcard, "1") == 0)
			f->wildcard = STORE_MATCH_YES;
		else if (strcmp(q->wildcard, "false") == 0 || strcmp(q->wildcard, "0") == 0)
			f->wildcard = STORE_MATCH_NO;
		else
			return val_filter_refuse(err, KC_API_HOSTNAME_FILTER, "The wildcard filter "
			    "must be true or false. Check your input and try again.");
	}
	if (q->order != NULL) {
		/* "ssl": every hostname has SSL, so its created_at order decides. */
		if (strcmp(q->order, "ssl_status") == 0)
			f->order = STORE_ORDER_SSL_STATUS;
		else if (strcmp(q->order, "ssl") != 0)
			return val_filter_refuse(err, KC_API_HOSTNAME_FILTER, "The order parameter "
			    "must be ssl or ssl_status. Check your input and try again.");
	}
	return 0;
}

void
val_hostname_fold_case(char *name)
{
	for (; name != NULL && *name != '\0'; name++)
		if (*name >= 'A' && *name <= 'Z')
			*name = (char)(*name - 'A' + 'a');
}

bool
val_uuid(const char *s)
{
	size_t	i;

	if (s == NULL)
		return false;
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!val_is_lowerhex(s[i]))
			return false;
	}
	return s[36] == '\0';
}
