/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * test-validate.c: table-driven unit tests of daemon/validate.c (API.md's request rules).
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "kc-api.h"
#include "kc-err.h"
#include "kc-util.h"
#include "validate.h"

#define END		" Check your input and try again."
#define MSG_COUNTRY	"Country field is required." END
#define MSG_STATE	"State field is required." END
#define MSG_LOCALITY	"Locality field is required." END
#define MSG_ORG		"Organization field is required." END
#define MSG_CN		"Common Name field is required." END
#define MSG_CN_LONG							\
	"The specified Common Name is too long. Maximum allowed length is 64 characters." END
#define MSG_SAN_NONE	"At least one subject alternative name (SAN) is required." END
#define MSG_SAN_SYNTAX							\
	"Invalid subject alternative name(s) (SAN). SANs have to be smaller than 256 " \
	"characters in length, cannot be IP addresses, cannot contain any special " \
	"characters such as ~`!@#$%^&*()=+{}[]|\\;:'\",<>/? and cannot begin or end " \
	"with a '-' character." END
#define MSG_SAN_NONASCII						\
	"Subject Alternative Names (SANs) with non-ASCII characters are not supported." END
#define MSG_SAN_RESERVED						\
	"Reserved top domain subject alternative names (SAN), such as 'test', " \
	"'example', 'invalid' or 'localhost', is not supported." END
#define MSG_SAN_EXAMPLE							\
	"Subject Alternative Names (SANs) ending in example.com, example.net, or " \
	"example.org are prohibited." END
#define MSG_SAN_SUFFIX(r)	"Unable to parse subject alternative name(s) (SAN) - " r "." END
#define MSG_KEY_TYPE							\
	"Invalid key type. Only 'rsa2048', 'p256v1', 'rsa3072', 'rsa4096' or 'p384v1' " \
	"is accepted." END

/* Strings built once by test_setup(), referenced by address from the tables. */
static char	ascii64[65], ascii65[66];
static char	utf8_64[64 * 2 + 1], utf8_65[65 * 2 + 1];	/* "é" x n */
static char	cjk64[64 * 3 + 1];				/* "漢" x 64 */
static char	text1024[1025], text1025[1026];
static char	label63[120], label64[120];			/* <label>.co.uk */
static char	name253[254], name254[255], name256[257];
static char	san_buf[VAL_MAX_SANS + 1][32];
static const char *sans151[VAL_MAX_SANS + 1];

/* Fill buf with n copies of unit and a terminator. */
static void
test_repeat(char *buf, const char *unit, size_t n)
{
	size_t	ul = strlen(unit), i;

	for (i = 0; i < n; i++)
		memcpy(buf + i * ul, unit, ul);
	buf[n * ul] = '\0';
}

/* A DNS name of exactly len characters, labels of 63, ending in ".com". */
static void
test_dns_name(char *buf, size_t len)
{
	size_t	i, body = len - 4;

	for (i = 0; i < body; i++)
		buf[i] = (i % 64 == 63) ? '.' : 'a';
	assert_true(body % 64 != 0);	/* no empty label before ".com" */
	memcpy(buf + body, ".com", 5);
}

static int
test_setup(void **state)
{
	size_t	i;

	test_repeat(ascii64, "c", 64);
	test_repeat(ascii65, "c", 65);
	test_repeat(utf8_64, "\xc3\xa9", 64);
	test_repeat(utf8_65, "\xc3\xa9", 65);
	test_repeat(cjk64, "\xe6\xbc\xa2", 64);
	test_repeat(text1024, "d", 1024);
	test_repeat(text1025, "d", 1025);
	test_repeat(label63, "a", 63);
	strcat(label63, ".co.uk");
	test_repeat(label64, "a", 64);
	strcat(label64, ".co.uk");
	test_dns_name(name253, 253);
	test_dns_name(name254, 254);
	test_dns_name(name256, 256);
	assert_int_equal(strlen(name253), 253);
	assert_int_equal(strlen(name256), 256);
	for (i = 0; i < nitems(san_buf); i++) {
		snprintf(san_buf[i], sizeof(san_buf[i]), "h%zu.acme-corp.co.uk", i);
		sans151[i] = san_buf[i];
	}
	return 0;
}

/* --- val_dns_name --- */

struct dns_case {
	const char	*name;
	bool		 wildcard;
	enum val_name	 want;
	const char	*reason;	/* for VAL_NAME_SUFFIX, or NULL */
};

static const struct dns_case dns_cases[] = {
	/* accepted */
	{ "shop.acme-corp.co.uk", false, VAL_NAME_OK, NULL },
	{ "acme.com", false, VAL_NAME_OK, NULL },
	{ "WWW.Acme.COM", false, VAL_NAME_OK, NULL },
	{ "a-b.c-d.de", false, VAL_NAME_OK, NULL },
	{ "xn--bcher-kva.de", false, VAL_NAME_OK, NULL },
	{ "3com.com", false, VAL_NAME_OK, NULL },
	{ "www.ck", false, VAL_NAME_OK, NULL },		/* !www.ck exception */
	{ "notexample.com", false, VAL_NAME_OK, NULL },
	{ "example.com.au", false, VAL_NAME_OK, NULL },
	{ "*.shop.acme-corp.co.uk", true, VAL_NAME_OK, NULL },
	{ "*.acme.com", true, VAL_NAME_OK, NULL },
	{ label63, false, VAL_NAME_OK, NULL },
	{ name253, false, VAL_NAME_OK, NULL },
	/* syntax */
	{ NULL, false, VAL_NAME_SYNTAX, NULL },
	{ "", false, VAL_NAME_SYNTAX, NULL },
	{ label64, false, VAL_NAME_SYNTAX, NULL },
	{ name254, false, VAL_NAME_SYNTAX, NULL },
	{ name256, false, VAL_NAME_SYNTAX, NULL },
	{ "-acme.com", false, VAL_NAME_SYNTAX, NULL },
	{ "acme-.com", false, VAL_NAME_SYNTAX, NULL },
	{ "www.acme.-com", false, VAL_NAME_SYNTAX, NULL },
	{ "www.acme.com-", false, VAL_NAME_SYNTAX, NULL },
	{ "192.168.1.1", false, VAL_NAME_SYNTAX, NULL },
	{ "10.0.0.1", true, VAL_NAME_SYNTAX, NULL },
	{ "*.10.0.0.1", true, VAL_NAME_SYNTAX, NULL },
	{ "1.2.3.0x4", false, VAL_NAME_SYNTAX, NULL },
	{ "::1", false, VAL_NAME_SYNTAX, NULL },
	{ "[::1]", false, VAL_NAME_SYNTAX, NULL },
	{ "2001:db8::1", false, VAL_NAME_SYNTAX, NULL },
	{ "acme.com.", false, VAL_NAME_SYNTAX, NULL },
	{ ".acme.com", false, VAL_NAME_SYNTAX, NULL },
	{ "www..acme.com", false, VAL_NAME_SYNTAX, NULL },
	{ "ac me.com", false, VAL_NAME_SYNTAX, NULL },
	{ "ac_me.com", false, VAL_NAME_SYNTAX, NULL },
	{ "acme.com/x", false, VAL_NAME_SYNTAX, NULL },
	{ "user@acme.com", false, VAL_NAME_SYNTAX, NULL },
	{ "acme.com:443", false, VAL_NAME_SYNTAX, NULL },
	{ "ac~me.com", false, VAL_NAME_SYNTAX, NULL },
	{ "ac\"me.com", false, VAL_NAME_SYNTAX, NULL },
	{ "ac\\me.com", false, VAL_NAME_SYNTAX, NULL },
	{ "ac\x01me.com", false, VAL_NAME_SYNTAX, NULL },
	{ "ac\x7fme.com", false, VAL_NAME_SYNTAX, NULL },
	{ "acme.com\n", false, VAL_NAME_SYNTAX, NULL },
	{ "*.acme.com", false, VAL_NAME_SYNTAX, NULL },	/* wildcard not allowed */
	{ "*", true, VAL_NAME_SYNTAX, NULL },
	{ "*.", true, VAL_NAME_SYNTAX, NULL },
	{ "a.*.b.com", true, VAL_NAME_SYNTAX, NULL },
	{ "*.*.acme.com", true, VAL_NAME_SYNTAX, NULL },
	{ "*acme.com", true, VAL_NAME_SYNTAX, NULL },
	{ "w*.acme.com", true, VAL_NAME_SYNTAX, NULL },
	{ "www.acme.*", true, VAL_NAME_SYNTAX, NULL },
	/* non-ASCII, before syntax */
	{ "b\xc3\xbc" "cher.de", false, VAL_NAME_NONASCII, NULL },
	{ "b\xc3\xbc" "cher de", false, VAL_NAME_NONASCII, NULL },
	{ "acme.com\xc2\x85", false, VAL_NAME_NONASCII, NULL },	/* C1 NEL */
	{ "acme\xff.com", false, VAL_NAME_NONASCII, NULL },		/* invalid UTF-8 */
	/* reserved TLDs */
	{ "foo.test", false, VAL_NAME_RESERVED, NULL },
	{ "test", false, VAL_NAME_RESERVED, NULL },
	{ "localhost", false, VAL_NAME_RESERVED, NULL },
	{ "www.localhost", false, VAL_NAME_RESERVED, NULL },
	{ "foo.example", false, VAL_NAME_RESERVED, NULL },
	{ "foo.invalid", false, VAL_NAME_RESERVED, NULL },
	{ "printer.local", false, VAL_NAME_RESERVED, NULL },
	{ "abcdefghijklmnop.onion", false, VAL_NAME_RESERVED, NULL },
	{ "foo.alt", false, VAL_NAME_RESERVED, NULL },
	{ "foo.internal", false, VAL_NAME_RESERVED, NULL },
	{ "router.home.arpa", false, VAL_NAME_RESERVED, NULL },
	{ "FOO.TEST", false, VAL_NAME_RESERVED, NULL },
	{ "*.foo.test", true, VAL_NAME_RESERVED, NULL },
	/* example.* */
	{ "example.com", false, VAL_NAME_EXAMPLE, NULL },
	{ "example.net", false, VAL_NAME_EXAMPLE, NULL },
	{ "example.org", false, VAL_NAME_EXAMPLE, NULL },
	{ "sub.example.com", false, VAL_NAME_EXAMPLE, NULL },
	{ "a.b.example.org", false, VAL_NAME_EXAMPLE, NULL },
	{ "Www.Example.Net", false, VAL_NAME_EXAMPLE, NULL },
	{ "*.example.com", true, VAL_NAME_EXAMPLE, NULL },
	/* public suffix */
	{ "co.uk", false, VAL_NAME_SUFFIX, "co.uk is a public suffix" },
	{ "com", false, VAL_NAME_SUFFIX, "com is a public suffix" },
	{ "*.co.uk", true, VAL_NAME_SUFFIX, "co.uk is a public suffix" },
	{ "*.com", true, VAL_NAME_SUFFIX, "com is a public suffix" },
	{ "foo.ck", false, VAL_NAME_SUFFIX, "foo.ck is a public suffix" },	/* *.ck */
	{ "github.io", false, VAL_NAME_SUFFIX, "github.io is a public suffix" },
	{ "foo.unknowntld", false, VAL_NAME_SUFFIX,
	    "foo.unknowntld has an unknown top-level domain" },
	{ "unknowntld", false, VAL_NAME_SUFFIX,
	    "unknowntld has an unknown top-level domain" },
	{ "Foo.UnknownTLD", false, VAL_NAME_SUFFIX,
	    "foo.unknowntld has an unknown top-level domain" },
};

static void
test_dns_names(void **state)
{
	char	reason[300];
	size_t	i;

	for (i = 0; i < nitems(dns_cases); i++) {
		const struct dns_case	*c = &dns_cases[i];
		enum val_name		 got;

		got = val_dns_name(c->name, c->wildcard, reason, sizeof(reason));
		if (got != c->want)
			fail_msg("case %zu \"%s\" (wildcard %d): got %d, want %d", i,
			    c->name ? c->name : "(null)", c->wildcard, got, c->want);
		if (c->reason != NULL)
			assert_string_equal(reason, c->reason);
	}
	/* reason is optional */
	assert_int_equal(val_dns_name("co.uk", false, NULL, 0), VAL_NAME_SUFFIX);
}

/* --- val_csr_fields --- */

enum fld {
	F_NONE, F_C, F_ST, F_L, F_O, F_OU, F_CN, F_KEY, F_NAME, F_DESC
};

/* Marker for "field absent" in a table, distinct from every real string. */
static const char	absent[] = "<absent>";

static const char *const sans_ok[] = { "shop.acme-corp.co.uk", "*.acme-corp.co.uk" };
static const char *const sans_none[] = { NULL };
static const char *const sans_ip[] = { "shop.acme-corp.co.uk", "192.168.1.1" };
static const char *const sans_syn_first[] = { "b\xc3\xbc" "cher.de", "a b.com" };
static const char *const sans_na[] = { "foo.test", "b\xc3\xbc" "cher.de" };
static const char *const sans_res[] = { "co.uk", "www.example.com", "foo.localhost" };
static const char *const sans_ex[] = { "co.uk", "www.example.com" };
static const char *const sans_ps[] = { "acme.com", "co.uk", "foo.unknowntld" };
static const char *const sans_unk[] = { "acme.com", "foo.unknowntld", "co.uk" };
static const char *const sans_wc[] = { "*.co.uk" };
static const char *const sans_wcbad[] = { "a.*.b.com" };
static const char *const sans_ctl[] = { "acme.com\x01" };
static const char *const sans_c1[] = { "acme.com\xc2\x9b" };
static const char *const sans_nullsan[] = { "acme.com", NULL };

struct csr_case {
	const char		*what;
	enum fld		 f1;
	const char		*v1;
	enum fld		 f2;
	const char		*v2;
	const char *const	*sans;		/* NULL: sans_ok */
	size_t			 nsans;
	int			 code;		/* 0: accepted */
	const char		*msg;		/* NULL: not checked */
};

#define SANS(a)		(a), nitems(a)
#define DEF_SANS	NULL, 0

static const struct csr_case csr_cases[] = {
	{ "valid", F_NONE, NULL, F_NONE, NULL, DEF_SANS, 0, NULL },
	{ "lower-case country", F_C, "us", F_NONE, NULL, DEF_SANS, 0, NULL },
	{ "mixed-case country", F_C, "gB", F_NONE, NULL, DEF_SANS, 0, NULL },
	{ "no OU", F_OU, absent, F_NONE, NULL, DEF_SANS, 0, NULL },
	{ "empty OU", F_OU, "", F_NONE, NULL, DEF_SANS, 0, NULL },
	{ "CN 64", F_CN, ascii64, F_NONE, NULL, DEF_SANS, 0, NULL },
	{ "CN 64 x 2-byte", F_CN, utf8_64, F_NONE, NULL, DEF_SANS, 0, NULL },
	{ "CN 64 x 3-byte", F_CN, cjk64, F_NONE, NULL, DEF_SANS, 0, NULL },
	{ "state 64", F_ST, utf8_64, F_NONE, NULL, DEF_SANS, 0, NULL },
	{ "OU 64", F_OU, ascii64, F_NONE, NULL, DEF_SANS, 0, NULL },
	{ "150 SANs", F_NONE, NULL, F_NONE, NULL, sans151, VAL_MAX_SANS, 0, NULL },
	{ "name 1024", F_NAME, text1024, F_DESC, text1024, DEF_SANS, 0, NULL },
	{ "empty name", F_NAME, "", F_DESC, "", DEF_SANS, 0, NULL },

	/* 1405 */
	{ "no country", F_C, absent, F_NONE, NULL, DEF_SANS, 1405, MSG_COUNTRY },
	{ "empty country", F_C, "", F_NONE, NULL, DEF_SANS, 1405, MSG_COUNTRY },
	{ "country USA", F_C, "USA", F_NONE, NULL, DEF_SANS, 1405, MSG_COUNTRY },
	{ "country U1", F_C, "U1", F_NONE, NULL, DEF_SANS, 1405, MSG_COUNTRY },
	{ "country U", F_C, "U", F_NONE, NULL, DEF_SANS, 1405, MSG_COUNTRY },
	{ "country space", F_C, " US", F_NONE, NULL, DEF_SANS, 1405, MSG_COUNTRY },
	{ "country ctl", F_C, "U\x01", F_NONE, NULL, DEF_SANS, 1405, MSG_COUNTRY },
	{ "country utf8", F_C, "\xc3\x9c" "S", F_NONE, NULL, DEF_SANS, 1405, MSG_COUNTRY },
	/* 1406 */
	{ "no state", F_ST, absent, F_NONE, NULL, DEF_SANS, 1406, MSG_STATE },
	{ "empty state", F_ST, "", F_NONE, NULL, DEF_SANS, 1406, MSG_STATE },
	{ "blank state", F_ST, "   ", F_NONE, NULL, DEF_SANS, 1406, MSG_STATE },
	{ "state ctl", F_ST, "Cali\x01" "fornia", F_NONE, NULL, DEF_SANS, 1406,
	    "State field contains control characters or invalid UTF-8." END },
	{ "state tab", F_ST, "\t", F_NONE, NULL, DEF_SANS, 1406, NULL },
	{ "state 65", F_ST, ascii65, F_NONE, NULL, DEF_SANS, 1406,
	    "The specified State is too long. Maximum allowed length is 64 characters." END },
	{ "state 65 x 2-byte", F_ST, utf8_65, F_NONE, NULL, DEF_SANS, 1406, NULL },
	/* 1407 */
	{ "no locality", F_L, absent, F_NONE, NULL, DEF_SANS, 1407, MSG_LOCALITY },
	{ "blank locality", F_L, " ", F_NONE, NULL, DEF_SANS, 1407, MSG_LOCALITY },
	{ "locality DEL", F_L, "San\x7f", F_NONE, NULL, DEF_SANS, 1407,
	    "Locality field contains control characters or invalid UTF-8." END },
	{ "locality 65", F_L, ascii65, F_NONE, NULL, DEF_SANS, 1407, NULL },
	/* 1408 */
	{ "no org", F_O, absent, F_NONE, NULL, DEF_SANS, 1408, MSG_ORG },
	{ "empty org", F_O, "", F_NONE, NULL, DEF_SANS, 1408, MSG_ORG },
	{ "org C1", F_O, "Acme\xc2\x80", F_NONE, NULL, DEF_SANS, 1408,
	    "Organization field contains control characters or invalid UTF-8." END },
	{ "org newline", F_O, "Acme\nInc", F_NONE, NULL, DEF_SANS, 1408, NULL },
	{ "org 65", F_O, ascii65, F_NONE, NULL, DEF_SANS, 1408, NULL },
	{ "org bad UTF-8", F_O, "Acme\xff", F_NONE, NULL, DEF_SANS, 1408, NULL },
	{ "org overlong", F_O, "\xc0\xaf", F_NONE, NULL, DEF_SANS, 1408, NULL },
	{ "org surrogate", F_O, "\xed\xa0\x80", F_NONE, NULL, DEF_SANS, 1408, NULL },
	{ "org truncated", F_O, "Acme\xe6\xbc", F_NONE, NULL, DEF_SANS, 1408, NULL },
	/* organizational_unit: 1408 too (documented in validate.c) */
	{ "OU ctl", F_OU, "IT\x1b", F_NONE, NULL, DEF_SANS, 1408,
	    "Organizational Unit field contains control characters or invalid UTF-8." END },
	{ "OU 65", F_OU, utf8_65, F_NONE, NULL, DEF_SANS, 1408,
	    "The specified Organizational Unit is too long. Maximum allowed length is 64 "
	    "characters." END },
	{ "blank OU", F_OU, "  ", F_NONE, NULL, DEF_SANS, 1408,
	    "Organizational Unit field is blank." END },
	/* 1409, 1410 */
	{ "no CN", F_CN, absent, F_NONE, NULL, DEF_SANS, 1409, MSG_CN },
	{ "empty CN", F_CN, "", F_NONE, NULL, DEF_SANS, 1409, MSG_CN },
	{ "blank CN", F_CN, "    ", F_NONE, NULL, DEF_SANS, 1409, MSG_CN },
	{ "CN ctl", F_CN, "acme.com\r", F_NONE, NULL, DEF_SANS, 1409,
	    "Common Name field contains control characters or invalid UTF-8." END },
	{ "CN C1", F_CN, "\xc2\x9f" "acme", F_NONE, NULL, DEF_SANS, 1409, NULL },
	{ "CN bad UTF-8", F_CN, "\x80", F_NONE, NULL, DEF_SANS, 1409, NULL },
	{ "CN 65", F_CN, ascii65, F_NONE, NULL, DEF_SANS, 1410, MSG_CN_LONG },
	{ "CN 65 x 2-byte", F_CN, utf8_65, F_NONE, NULL, DEF_SANS, 1410, MSG_CN_LONG },
	/* 1411 .. 1416 */
	{ "no SANs", F_NONE, NULL, F_NONE, NULL, sans_ok, 0, 1411, MSG_SAN_NONE },
	{ "NULL SANs", F_NONE, NULL, F_NONE, NULL, sans_none, 0, 1411, MSG_SAN_NONE },
	{ "151 SANs", F_NONE, NULL, F_NONE, NULL, sans151, VAL_MAX_SANS + 1, 1412,
	    MSG_SAN_SYNTAX },
	{ "IP SAN", F_NONE, NULL, F_NONE, NULL, SANS(sans_ip), 1412, MSG_SAN_SYNTAX },
	{ "NULL SAN", F_NONE, NULL, F_NONE, NULL, SANS(sans_nullsan), 1412,
	    MSG_SAN_SYNTAX },
	{ "SAN ctl", F_NONE, NULL, F_NONE, NULL, SANS(sans_ctl), 1412, MSG_SAN_SYNTAX },
	{ "bad wildcard", F_NONE, NULL, F_NONE, NULL, SANS(sans_wcbad), 1412,
	    MSG_SAN_SYNTAX },
	{ "syntax beats non-ASCII", F_NONE, NULL, F_NONE, NULL, SANS(sans_syn_first), 1412,
	    MSG_SAN_SYNTAX },
	{ "SAN C1", F_NONE, NULL, F_NONE, NULL, SANS(sans_c1), 1413, MSG_SAN_NONASCII },
	{ "non-ASCII beats reserved", F_NONE, NULL, F_NONE, NULL, SANS(sans_na), 1413,
	    MSG_SAN_NONASCII },
	{ "reserved beats example", F_NONE, NULL, F_NONE, NULL, SANS(sans_res), 1414,
	    MSG_SAN_RESERVED },
	{ "example beats suffix", F_NONE, NULL, F_NONE, NULL, SANS(sans_ex), 1416,
	    MSG_SAN_EXAMPLE },
	{ "public suffix", F_NONE, NULL, F_NONE, NULL, SANS(sans_ps), 1415,
	    MSG_SAN_SUFFIX("co.uk is a public suffix") },
	{ "unknown TLD", F_NONE, NULL, F_NONE, NULL, SANS(sans_unk), 1415,
	    MSG_SAN_SUFFIX("foo.unknowntld has an unknown top-level domain") },
	{ "wildcard public suffix", F_NONE, NULL, F_NONE, NULL, SANS(sans_wc), 1415,
	    MSG_SAN_SUFFIX("co.uk is a public suffix") },
	/* 1417 */
	{ "key default", F_KEY, absent, F_NONE, NULL, DEF_SANS, 0, NULL },
	{ "key rsa2048", F_KEY, "rsa2048", F_NONE, NULL, DEF_SANS, 0, NULL },
	{ "key p256v1", F_KEY, "p256v1", F_NONE, NULL, DEF_SANS, 0, NULL },
	{ "key rsa3072", F_KEY, "rsa3072", F_NONE, NULL, DEF_SANS, 0, NULL },
	{ "key rsa4096", F_KEY, "rsa4096", F_NONE, NULL, DEF_SANS, 0, NULL },
	{ "key p384v1", F_KEY, "p384v1", F_NONE, NULL, DEF_SANS, 0, NULL },
	{ "key empty", F_KEY, "", F_NONE, NULL, DEF_SANS, 1417, MSG_KEY_TYPE },
	{ "key rsa1024", F_KEY, "rsa1024", F_NONE, NULL, DEF_SANS, 1417, MSG_KEY_TYPE },
	{ "key RSA2048", F_KEY, "RSA2048", F_NONE, NULL, DEF_SANS, 1417, MSG_KEY_TYPE },
	{ "key p521v1", F_KEY, "p521v1", F_NONE, NULL, DEF_SANS, 1417, MSG_KEY_TYPE },
	{ "key prefix", F_KEY, "rsa2048 ", F_NONE, NULL, DEF_SANS, 1417, MSG_KEY_TYPE },
	/* name, description: 1400 (documented in validate.c) */
	{ "name 1025", F_NAME, text1025, F_NONE, NULL, DEF_SANS, 1400,
	    "The name field is invalid: at most 1024 characters of UTF-8 text without "
	    "control characters." },
	{ "name ctl", F_NAME, "a\nb", F_NONE, NULL, DEF_SANS, 1400, NULL },
	{ "description ctl", F_DESC, "a\x7f", F_NONE, NULL, DEF_SANS, 1400,
	    "The description field is invalid: at most 1024 characters of UTF-8 text "
	    "without control characters." },
	{ "description bad UTF-8", F_DESC, "\xfe", F_NONE, NULL, DEF_SANS, 1400, NULL },

	/* order: two errors at once, the earlier code wins */
	{ "country before state", F_C, "USA", F_ST, absent, DEF_SANS, 1405, MSG_COUNTRY },
	{ "state before locality", F_L, "", F_ST, "", DEF_SANS, 1406, MSG_STATE },
	{ "locality before org", F_O, absent, F_L, ascii65, DEF_SANS, 1407, NULL },
	{ "org before OU", F_OU, "\x01", F_O, "", DEF_SANS, 1408, MSG_ORG },
	{ "OU before CN", F_CN, absent, F_OU, ascii65, DEF_SANS, 1408, NULL },
	{ "CN before SANs", F_CN, absent, F_NONE, NULL, sans_ok, 0, 1409, MSG_CN },
	{ "CN length before SANs", F_CN, ascii65, F_NONE, NULL, SANS(sans_ip), 1410,
	    MSG_CN_LONG },
	{ "SANs before key", F_KEY, "dsa", F_NONE, NULL, SANS(sans_ex), 1416,
	    MSG_SAN_EXAMPLE },
	{ "key before name", F_KEY, "dsa", F_NAME, text1025, DEF_SANS, 1417,
	    MSG_KEY_TYPE },
	{ "country before key", F_KEY, "dsa", F_C, "", DEF_SANS, 1405, MSG_COUNTRY },
};

/* Point one field of f at v ("absent" means NULL). */
static void
test_set(struct val_csr_fields *f, enum fld which, const char *v)
{
	if (v == absent)
		v = NULL;
	switch (which) {
	case F_NONE:
		break;
	case F_C:
		f->subject.country = v;
		break;
	case F_ST:
		f->subject.state = v;
		break;
	case F_L:
		f->subject.locality = v;
		break;
	case F_O:
		f->subject.organization = v;
		break;
	case F_OU:
		f->subject.organizational_unit = v;
		break;
	case F_CN:
		f->subject.common_name = v;
		break;
	case F_KEY:
		f->key_type = v;
		break;
	case F_NAME:
		f->name = v;
		break;
	case F_DESC:
		f->description = v;
		break;
	}
}

static void
test_csr_cases(void **state)
{
	struct val_csr_fields	 f;
	struct kc_error		 err;
	size_t			 i;
	int			 r;

	for (i = 0; i < nitems(csr_cases); i++) {
		const struct csr_case	*c = &csr_cases[i];

		memset(&f, 0, sizeof(f));
		f.subject.country = "US";
		f.subject.state = "California";
		f.subject.locality = "San Francisco";
		f.subject.organization = "Acme Corp";
		f.subject.organizational_unit = "IT";
		f.subject.common_name = "shop.acme-corp.co.uk";
		f.subject.sans = sans_ok;
		f.subject.nsans = nitems(sans_ok);
		f.key_type = "p256v1";
		f.name = "shop";
		f.description = "the shop's certificate";
		if (c->sans != NULL) {
			f.subject.sans = c->sans == sans_none ? NULL : c->sans;
			f.subject.nsans = c->nsans;
		}
		test_set(&f, c->f1, c->v1);
		test_set(&f, c->f2, c->v2);

		memset(&err, 0, sizeof(err));
		r = val_csr_fields(&f, &err);
		if (c->code == 0) {
			if (r != 0)
				fail_msg("case \"%s\": refused with %d \"%s\"", c->what,
				    err.code, err.message);
			continue;
		}
		if (r != KC_ERR_INVALID || err.code != c->code)
			fail_msg("case \"%s\": r %d code %d \"%s\", want code %d", c->what,
			    r, err.code, err.message, c->code);
		assert_int_equal(err.status, KC_STATUS_INVALID_ARGUMENT);
		if (c->msg != NULL && strcmp(err.message, c->msg) != 0)
			fail_msg("case \"%s\": message \"%s\", want \"%s\"", c->what,
			    err.message, c->msg);
	}
}

/* Every type that the 1417 message names is accepted, and nothing else is named. */
static void
test_key_type_message(void **state)
{
	struct val_csr_fields	 f;
	struct kc_error		 err;
	char			 msg[sizeof(err.message)], *p, *q;
	size_t			 ntypes = 0;

	memset(&f, 0, sizeof(f));
	f.subject.country = "US";
	f.subject.state = f.subject.locality = f.subject.organization = "x";
	f.subject.common_name = "acme";
	f.subject.sans = sans_ok;
	f.subject.nsans = nitems(sans_ok);
	f.key_type = "dsa";
	assert_int_equal(val_csr_fields(&f, &err), KC_ERR_INVALID);
	assert_int_equal(err.code, 1417);
	memcpy(msg, err.message, sizeof(msg));
	for (p = msg; (p = strchr(p, '\'')) != NULL; p = q + 1) {
		assert_non_null(q = strchr(p + 1, '\''));
		*q = '\0';
		f.key_type = p + 1;
		if (val_csr_fields(&f, &err) != 0)
			fail_msg("named type '%s' refused: %s", p + 1, err.message);
		ntypes++;
	}
	assert_int_equal(ntypes, 5);
}

static void
test_csr_null(void **state)
{
	struct kc_error	err;

	memset(&err, 0, sizeof(err));
	assert_int_equal(val_csr_fields(NULL, &err), KC_ERR_INVALID);
	assert_int_equal(err.code, 1400);
}

/* --- val_pagination --- */

struct page_case {
	unsigned int	 page, per_page;
	int		 want;
	unsigned int	 out_page, out_per_page;
	const char	*msg;
};

static const struct page_case page_cases[] = {
	{ 0, 0, 0, 1, 20, NULL },
	{ 1, 20, 0, 1, 20, NULL },
	{ 3, 0, 0, 3, 20, NULL },
	{ 0, 5, 0, 1, 5, NULL },
	{ 7, 50, 0, 7, 50, NULL },
	{ KC_PAGE_MAX, 50, 0, KC_PAGE_MAX, 50, NULL },	/* the shim's limit too */
	{ 1, 4, KC_ERR_INVALID, 0, 0, "per_page variable must be a number between 5 and 50" },
	{ 1, 1, KC_ERR_INVALID, 0, 0, "per_page variable must be a number between 5 and 50" },
	{ 1, 51, KC_ERR_INVALID, 0, 0, "per_page variable must be a number between 5 and 50" },
	{ 0, 4294967295U, KC_ERR_INVALID, 0, 0, NULL },
	{ KC_PAGE_MAX + 1, 20, KC_ERR_INVALID, 0, 0,
	    "page variable must be a number between 1 and 100000000" },
	{ 2147483648U, 20, KC_ERR_INVALID, 0, 0,
	    "page variable must be a number between 1 and 100000000" },
};

static void
test_pagination(void **state)
{
	struct kc_error	err;
	unsigned int	pg, pp;
	size_t		i;

	for (i = 0; i < nitems(page_cases); i++) {
		const struct page_case	*c = &page_cases[i];

		pg = c->page;
		pp = c->per_page;
		memset(&err, 0, sizeof(err));
		if (val_pagination(&pg, &pp, &err) != c->want)
			fail_msg("case %zu (%u, %u): want %d", i, c->page, c->per_page,
			    c->want);
		if (c->want == 0) {
			assert_int_equal(pg, c->out_page);
			assert_int_equal(pp, c->out_per_page);
			continue;
		}
		/* left alone on failure */
		assert_int_equal(pg, c->page);
		assert_int_equal(pp, c->per_page);
		assert_int_equal(err.status, KC_STATUS_INVALID_ARGUMENT);
		assert_int_equal(err.code, 6008);
		if (c->msg != NULL)
			assert_string_equal(err.message, c->msg);
	}
}

/* --- identifiers --- */

struct id_case {
	const char	*s;
	bool		 want;
};

static const struct id_case zone_cases[] = {
	{ "023e105f4ecef8ad9ca31a8372d0c353", true },
	{ "00000000000000000000000000000000", true },
	{ "023E105F4ECEF8AD9CA31A8372D0C353", false },
	{ "023e105f4ecef8ad9ca31a8372d0c35", false },
	{ "023e105f4ecef8ad9ca31a8372d0c3530", false },
	{ "023e105f4ecef8ad9ca31a8372d0c35g", false },
	{ "023e105f-ecef-8ad9-ca31-a8372d0c", false },
	{ "", false },
	{ NULL, false },
};

static const struct id_case uuid_cases[] = {
	{ "7f3c2b1a-9d4e-4c8b-a6f1-0e2d3c4b5a69", true },
	{ "00000000-0000-0000-0000-000000000000", true },
	{ "7f3c2b1a-9d4e-1c8b-a6f1-0e2d3c4b5a69", true },	/* any version */
	{ "7F3C2B1A-9D4E-4C8B-A6F1-0E2D3C4B5A69", false },
	{ "7f3c2b1a9d4e4c8ba6f10e2d3c4b5a69", false },
	{ "7f3c2b1a-9d4e-4c8b-a6f1-0e2d3c4b5a6", false },
	{ "7f3c2b1a-9d4e-4c8b-a6f1-0e2d3c4b5a690", false },
	{ "7f3c2b1a-9d4e-4c8b-a6f10e2d3c4b5a69-", false },
	{ "{7f3c2b1a-9d4e-4c8b-a6f1-0e2d3c4b5a6}", false },
	{ "7f3c2b1a-9d4e-4c8b-a6f1-0e2d3c4b5z69", false },
	{ "", false },
	{ NULL, false },
};

static void
test_ids(void **state)
{
	size_t	i;

	for (i = 0; i < nitems(zone_cases); i++)
		if (val_zone_id(zone_cases[i].s) != zone_cases[i].want)
			fail_msg("zone id case %zu", i);
	for (i = 0; i < nitems(uuid_cases); i++)
		if (val_uuid(uuid_cases[i].s) != uuid_cases[i].want)
			fail_msg("uuid case %zu", i);
}

/* val_hostname_fold(): lower case, one trailing dot dropped, the rest left to judge. */
static const struct {
	const char	*in;
	const char	*want;
	enum val_name	 check;		/* val_dns_name() of the folded name */
} fold_cases[] = {
	{ "shop.acme-corp.co.uk", "shop.acme-corp.co.uk", VAL_NAME_OK },
	{ "SHOP.ACME-CORP.CO.UK", "shop.acme-corp.co.uk", VAL_NAME_OK },
	{ "Shop.Acme-Corp.co.uk.", "shop.acme-corp.co.uk", VAL_NAME_OK },
	{ "*.Shop.acme-corp.co.uk", "*.shop.acme-corp.co.uk", VAL_NAME_OK },
	{ "shop.acme-corp.co.uk..", "shop.acme-corp.co.uk.", VAL_NAME_SYNTAX },
	{ ".", ".", VAL_NAME_SYNTAX },
	{ "", "", VAL_NAME_SYNTAX },
	{ "SH\xc3\x96P.acme-corp.co.uk", "sh\xc3\x96p.acme-corp.co.uk", VAL_NAME_NONASCII },
	{ "EXAMPLE.COM.", "example.com", VAL_NAME_EXAMPLE },
};

static void
test_hostname_fold(void **state)
{
	char	 buf[64];
	size_t	 i;

	for (i = 0; i < nitems(fold_cases); i++) {
		snprintf(buf, sizeof(buf), "%s", fold_cases[i].in);
		val_hostname_fold(buf);
		if (strcmp(buf, fold_cases[i].want) != 0)
			fail_msg("fold case %zu: \"%s\"", i, buf);
		if (val_dns_name(buf, true, NULL, 0) != fold_cases[i].check)
			fail_msg("fold case %zu: check %d", i, val_dns_name(buf, true, NULL, 0));
	}
	val_hostname_fold(NULL);
}

int
main(void)
{
	const struct CMUnitTest	tests[] = {
		cmocka_unit_test(test_dns_names),
		cmocka_unit_test(test_csr_cases),
		cmocka_unit_test(test_key_type_message),
		cmocka_unit_test(test_csr_null),
		cmocka_unit_test(test_pagination),
		cmocka_unit_test(test_ids),
		cmocka_unit_test(test_hostname_fold),
	};

	return cmocka_run_group_tests(tests, test_setup, NULL);
}
