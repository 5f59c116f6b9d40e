/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * jsonw.c: the JSON output writer (jsonw.h): escaping, UTF-8 repair, numbers, and the
 * bookkeeping that refuses calls out of place.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kc-err.h"
#include "jsonw.h"

/*
 * The output writer (jsonw.h). Replies are written into one buffer as they go, rather than
 * built as a jansson tree and dumped: the tree, its hash tables and the dump were half of
 * the shim's CPU on list pages (docs/PERFORMANCE.md, section 5).
 */

#define JSON_W_MIN	256	/* first allocation when no hint was given */

/* Record the first error; the writer does nothing from then on. */
void
json_w_fail(struct json_w *w, int r)
{
	if (w->error == 0)
		w->error = r;
}

/* Make room for n more bytes and a NUL (json_w_steal() always finds room for it). */
static int
json_w_grow(struct json_w *w, size_t n)
{
	size_t	 cap;
	char	*p;

	if (w->error != 0)
		return -1;
	if (n > SIZE_MAX / 4 - w->len) {
		json_w_fail(w, KC_ERR_NOMEM);
		return -1;
	}
	cap = w->cap > 0 ? w->cap : JSON_W_MIN;
	while (cap - w->len <= n)
		cap *= 2;
	if ((p = realloc(w->buf, cap)) == NULL) {
		json_w_fail(w, KC_ERR_NOMEM);
		return -1;
	}
	w->buf = p;
	w->cap = cap;
	return 0;
}

static int
json_w_reserve(struct json_w *w, size_t n)
{
	if (w->error == 0 && w->cap - w->len > n)
		return 0;
	return json_w_grow(w, n);
}

static void
json_w_put(struct json_w *w, const char *s, size_t n)
{
	if (json_w_reserve(w, n) != 0)
		return;
	memcpy(w->buf + w->len, s, n);
	w->len += n;
}

static void
json_w_putc(struct json_w *w, char c)
{
	if (json_w_reserve(w, 1) != 0)
		return;
	w->buf[w->len++] = c;
}

/* A byte that goes out as it is: printable ASCII but '"' and '\\' (DEL included). */
static int
json_w_plain(unsigned char c)
{
	return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/*
 * The length of the well-formed UTF-8 sequence that starts at s, a byte >= 0x80 (Unicode
 * 15, table 3-7: no overlong forms, no surrogates, nothing above U+10FFFF); otherwise minus
 * the length of its maximal ill-formed subpart (at least 1), which gets one U+FFFD. The NUL
 * that ends s is never a continuation byte, so nothing past it is read.
 */
static int
json_w_utf8(const unsigned char *s)
{
	unsigned char	 lo = 0x80, hi = 0xbf;
	int		 i, n;

	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		if (s[0] == 0xe0)
			lo = 0xa0;		/* overlong */
		else if (s[0] == 0xed)
			hi = 0x9f;		/* surrogates */
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		if (s[0] == 0xf0)
			lo = 0x90;		/* overlong */
		else if (s[0] == 0xf4)
			hi = 0x8f;		/* above U+10FFFF */
	} else
		return -1;			/* 80..c1, f5..ff: never a first byte */
	for (i = 1; i < n; i++) {
		if (s[i] < lo || s[i] > hi)
			return -i;
		lo = 0x80;
		hi = 0xbf;
	}
	return n;
}

#define JSON_W_ONES	0x0101010101010101ULL
#define JSON_W_HIGHS	0x8080808080808080ULL

/*
 * Whether any of the 8 bytes in v is not json_w_plain(): below 0x20, '"', '\\' or 0x80 and
 * up (the zero- and less-than-byte tests of "Bit Twiddling Hacks", exact about whether one
 * exists; byte order does not matter).
 */
static int
json_w_special8(uint64_t v)
{
	uint64_t	 q = v ^ (JSON_W_ONES * '"'), b = v ^ (JSON_W_ONES * '\\');

	return ((((v - JSON_W_ONES * 0x20) & ~v) | ((q - JSON_W_ONES) & ~q) |
	    ((b - JSON_W_ONES) & ~b) | v) & JSON_W_HIGHS) != 0;
}

/* The escaped contents of the string str, without quotes. */
static void
json_w_escape(struct json_w *w, const char *str)
{
	static const char	 hex[] = "0123456789ABCDEF";
	const unsigned char	*s = (const unsigned char *)str, *run = s, *end;
	uint64_t		 v;
	char			 e[6];
	int			 n;

	end = s + strlen(str);
	for (;;) {
		/*
		 * Runs of bytes that need nothing are copied at once; they are looked for 8
		 * bytes at a time (never past the NUL), then byte by byte.
		 */
		while (end - s >= 8) {
			memcpy(&v, s, sizeof(v));
			if (json_w_special8(v))
				break;
			s += 8;
		}
		while (json_w_plain(*s))
			s++;
		if (*s >= 0x80 && (n = json_w_utf8(s)) > 0) {
			s += n;
			continue;
		}
		if (s > run)
			json_w_put(w, (const char *)run, (size_t)(s - run));
		if (*s == '\0')
			return;
		if (*s >= 0x80) {
			json_w_put(w, "\xef\xbf\xbd", 3);	/* U+FFFD */
			s += -json_w_utf8(s);
			run = s;
			continue;
		}
		e[0] = '\\';
		n = 2;
		switch (*s) {
		case '"':
		case '\\':
			e[1] = (char)*s;
			break;
		case '\b':
			e[1] = 'b';
			break;
		case '\f':
			e[1] = 'f';
			break;
		case '\n':
			e[1] = 'n';
			break;
		case '\r':
			e[1] = 'r';
			break;
		case '\t':
			e[1] = 't';
			break;
		default:
			e[1] = 'u';
			e[2] = '0';
			e[3] = '0';
			e[4] = hex[*s >> 4];
			e[5] = hex[*s & 0xf];
			n = 6;
			break;
		}
		json_w_put(w, e, (size_t)n);
		run = ++s;
	}
}

/* Whether the open container is an array. */
static int
json_w_in_array(const struct json_w *w)
{
	return w->depth > 0 && (w->arrays & (uint64_t)1 << (w->depth - 1)) != 0;
}

/*
 * Before a value: the ',' before an array element, or the check that an object member's
 * key came first. Only one value at the top level.
 * @retval 0, or -1 when nothing is to be written
 */
static int
json_w_value(struct json_w *w)
{
	if (w->error != 0)
		return -1;
	if (w->depth > 0 && !json_w_in_array(w)) {
		if (!w->key) {
			json_w_fail(w, KC_ERR_INVALID);
			return -1;
		}
		w->key = 0;
		return 0;
	}
	if (w->comma) {
		if (w->depth == 0) {
			json_w_fail(w, KC_ERR_INVALID);
			return -1;
		}
		json_w_putc(w, ',');
	}
	w->comma = 1;
	return 0;
}

void
json_w_init(struct json_w *w, size_t hint)
{
	memset(w, 0, sizeof(*w));
	if (hint > 0 && (w->buf = malloc(hint)) == NULL)
		json_w_fail(w, KC_ERR_NOMEM);
	else
		w->cap = hint;
}

void
json_w_uninit(struct json_w *w)
{
	free(w->buf);
	memset(w, 0, sizeof(*w));
}

int
json_w_steal(struct json_w *w, char **out, size_t *lenp)
{
	int	 r;

	*out = NULL;
	if (lenp != NULL)
		*lenp = 0;
	/* Not one complete value: nothing written, or something left open. */
	if (w->depth != 0 || w->key || !w->comma)
		json_w_fail(w, KC_ERR_INVALID);
	if ((r = w->error) != 0) {
		json_w_uninit(w);
		return r;
	}
	w->buf[w->len] = '\0';		/* json_w_reserve() kept room for it */
	*out = w->buf;
	if (lenp != NULL)
		*lenp = w->len;
	w->buf = NULL;
	json_w_uninit(w);
	return 0;
}

static void
json_w_begin(struct json_w *w, int array)
{
	if (json_w_value(w) != 0)
		return;
	if (w->depth >= JSON_W_MAX_DEPTH) {
		json_w_fail(w, KC_ERR_INVALID);
		return;
	}
	if (array)
		w->arrays |= (uint64_t)1 << w->depth;
	else
		w->arrays &= ~((uint64_t)1 << w->depth);
	w->depth++;
	w->comma = 0;
	json_w_putc(w, array ? '[' : '{');
}

static void
json_w_end(struct json_w *w, int array)
{
	if (w->error != 0)
		return;
	if (w->depth == 0 || json_w_in_array(w) != array || w->key) {
		json_w_fail(w, KC_ERR_INVALID);
		return;
	}
	w->depth--;
	w->comma = 1;		/* the container was a value of its parent */
	json_w_putc(w, array ? ']' : '}');
}

void
json_w_object_begin(struct json_w *w)
{
	json_w_begin(w, 0);
}

void
json_w_object_end(struct json_w *w)
{
	json_w_end(w, 0);
}

void
json_w_array_begin(struct json_w *w)
{
	json_w_begin(w, 1);
}

void
json_w_array_end(struct json_w *w)
{
	json_w_end(w, 1);
}

void
json_w_key(struct json_w *w, const char *key)
{
	if (w->error != 0)
		return;
	if (w->depth == 0 || json_w_in_array(w) || w->key) {
		json_w_fail(w, KC_ERR_INVALID);
		return;
	}
	if (w->comma)
		json_w_putc(w, ',');
	w->comma = 1;
	w->key = 1;
	json_w_putc(w, '"');
	json_w_escape(w, key != NULL ? key : "");
	json_w_put(w, "\":", 2);
}

void
json_w_string(struct json_w *w, const char *s)
{
	if (json_w_value(w) != 0)
		return;
	json_w_putc(w, '"');
	json_w_escape(w, s != NULL ? s : "");
	json_w_putc(w, '"');
}

/* A decimal integer: the magnitude v, with a '-' when neg. */
static void
json_w_number(struct json_w *w, uint64_t v, int neg)
{
	char	 d[21];		/* "-18446744073709551615" */
	size_t	 i = sizeof(d);

	do {
		d[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	if (neg)
		d[--i] = '-';
	if (json_w_value(w) != 0)
		return;
	json_w_put(w, d + i, sizeof(d) - i);
}

void
json_w_int(struct json_w *w, int64_t v)
{
	/* The magnitude in unsigned arithmetic: INT64_MIN has no positive int64_t. */
	json_w_number(w, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v, v < 0);
}

void
json_w_uint(struct json_w *w, uint64_t v)
{
	json_w_number(w, v, 0);
}

void
json_w_bool(struct json_w *w, int v)
{
	if (json_w_value(w) != 0)
		return;
	if (v)
		json_w_put(w, "true", 4);
	else
		json_w_put(w, "false", 5);
}

void
json_w_null(struct json_w *w)
{
	if (json_w_value(w) != 0)
		return;
	json_w_put(w, "null", 4);
}

void
json_w_string_parts(struct json_w *w, const char *const *parts, size_t n)
{
	size_t	 i;

	if (json_w_value(w) != 0)
		return;
	json_w_putc(w, '"');
	for (i = 0; i < n; i++)
		json_w_escape(w, parts[i] != NULL ? parts[i] : "");
	json_w_putc(w, '"');
}
