/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * fuzz-jsonw.c: the shim's JSON output writer (struct json_w, lib/jsonw.c). The input is
 * a program of writer calls, one byte each (then its operands): begin and end objects and
 * arrays, keys and strings of arbitrary bytes (ill-formed UTF-8 and control characters
 * included), integers, booleans and null. A model of the JSON grammar, kept here apart from
 * the writer's own bookkeeping, says whether the calls make one well-formed value. If they
 * do, the writer must accept them, and its text must parse with jansson; unless keys repeat,
 * it must also hold the first UTF-8 string given, unchanged, and be what jansson writes
 * again from what it parsed (same escapes, same order, compact). If they do not, the writer
 * must refuse them with KC_ERR_INVALID and hand out nothing.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fuzz.h"
#include "kc-err.h"
#include "log.h"
#include "jsonw.h"

#define JSONW_MAX_OPS	512
#define JSONW_MAX_STR	300

static __dead void
jsonw_fail(const char *what, const char *text)
{
	fprintf(stderr, "fuzz-jsonw: %s%s%s\n", what, text != NULL ? ": " : "",
	    text != NULL ? text : "");
	abort();
}

/* The model: a stack of containers ('[' or '{'), and what may come next. */
struct jsonw_model {
	char	 stack[JSON_W_MAX_DEPTH + 1];
	int	 depth;
	int	 want_value;	/* in an object: a key was written */
	int	 has_member;	/* the open container (or the top level) has one */
	int	 bad;		/* the calls so far are not well-formed */
};

static void
jsonw_model_value(struct jsonw_model *m)
{
	if (m->depth == 0) {
		if (m->has_member)
			m->bad = 1;
		m->has_member = 1;
	} else if (m->stack[m->depth - 1] == '{') {
		if (!m->want_value)
			m->bad = 1;
		m->want_value = 0;
	} else
		m->has_member = 1;
}

static void
jsonw_model_begin(struct jsonw_model *m, char c)
{
	jsonw_model_value(m);
	if (m->depth >= JSON_W_MAX_DEPTH) {
		m->bad = 1;
		return;
	}
	m->stack[m->depth++] = c;
	m->has_member = 0;
}

static void
jsonw_model_end(struct jsonw_model *m, char c)
{
	if (m->depth == 0 || m->stack[m->depth - 1] != c || m->want_value) {
		m->bad = 1;
		return;
	}
	m->depth--;
	m->has_member = 1;
}

static void
jsonw_model_key(struct jsonw_model *m)
{
	if (m->depth == 0 || m->stack[m->depth - 1] != '{' || m->want_value)
		m->bad = 1;
	m->want_value = 1;
}

/* Whether s is somewhere in the parsed value v, as a key or a string. */
static int
jsonw_holds(json_t *v, const char *s)
{
	const char	*k;
	json_t		*e;
	size_t		 i;

	if (json_is_string(v))
		return strcmp(json_string_value(v), s) == 0;
	if (json_is_array(v)) {
		json_array_foreach(v, i, e)
			if (jsonw_holds(e, s))
				return 1;
	}
	if (json_is_object(v)) {
		json_object_foreach(v, k, e)
			if (strcmp(k, s) == 0 || jsonw_holds(e, s))
				return 1;
	}
	return 0;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_log_init();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jsonw_model	 m;
	struct json_w		 w;
	json_error_t		 jerr;
	json_t			*root, *probe;
	char			 s[JSONW_MAX_STR + 1], *out, *again, *check = NULL;
	size_t			 i = 0, len, n, ops = 0;
	uint64_t		 u;
	int			 op, r, dups = 0;

	memset(&m, 0, sizeof(m));
	/* A hint from the first byte: 0 (grow from nothing) up to 255 bytes. */
	json_w_init(&w, size > 0 ? data[i++] : 0);
	while (i < size && ops++ < JSONW_MAX_OPS) {
		switch ((op = data[i++] % 11)) {
		case 0:
			json_w_object_begin(&w);
			jsonw_model_begin(&m, '{');
			break;
		case 1:
			json_w_object_end(&w);
			jsonw_model_end(&m, '{');
			break;
		case 2:
			json_w_array_begin(&w);
			jsonw_model_begin(&m, '[');
			break;
		case 3:
			json_w_array_end(&w);
			jsonw_model_end(&m, '[');
			break;
		case 4:
		case 5:
			/* A key or a string: a length byte, then that many bytes (a NUL ends it). */
			n = i < size ? data[i++] : 0;
			if (n > size - i)
				n = size - i;
			if (n > JSONW_MAX_STR)
				n = JSONW_MAX_STR;
			memcpy(s, data + i, n);
			s[n] = '\0';
			i += n;
			if (op == 4) {
				json_w_key(&w, s);
				jsonw_model_key(&m);
			} else {
				json_w_string(&w, s);
				jsonw_model_value(&m);
				/* One UTF-8 string to look for in the output. */
				if (check == NULL && (probe = json_string(s)) != NULL) {
					json_decref(probe);
					if ((check = strdup(s)) == NULL)
						abort();
				}
			}
			break;
		case 6:
		case 7:
			for (u = 0, n = 0; n < 8 && i < size; n++)
				u = u << 8 | data[i++];
			if (op == 6)
				json_w_int(&w, (int64_t)u);
			else
				/* jansson reads up to INT64_MAX; test-json checks beyond */
				json_w_uint(&w, u & INT64_MAX);
			jsonw_model_value(&m);
			break;
		case 8:
			json_w_bool(&w, 1);
			jsonw_model_value(&m);
			break;
		case 9:
			json_w_bool(&w, 0);
			jsonw_model_value(&m);
			break;
		default:
			json_w_null(&w);
			jsonw_model_value(&m);
			break;
		}
	}
	if (m.depth != 0 || m.want_value || !m.has_member)
		m.bad = 1;

	r = json_w_steal(&w, &out, &len);
	if (m.bad) {
		if (r != KC_ERR_INVALID || out != NULL || len != 0)
			jsonw_fail("ill-formed calls were not refused", out);
		free(check);
		return 0;
	}
	if (r != 0 || out == NULL)
		jsonw_fail("well-formed calls were refused", NULL);
	if (len != strlen(out))
		jsonw_fail("length", out);
	/* Keys may repeat (and differ only in bytes that became U+FFFD). */
	if ((root = json_loads(out, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr)) == NULL &&
	    json_error_code(&jerr) == json_error_duplicate_key) {
		dups = 1;
		root = json_loads(out, JSON_DECODE_ANY, &jerr);
	}
	if (root == NULL)
		jsonw_fail("output is not JSON", out);
	/*
	 * The string looked for is there, and, compact, in order, escaped as jansson
	 * escapes, the text is jansson's re-dump of it. Neither holds with repeated keys, of
	 * which jansson keeps the last.
	 */
	if (!dups) {
		if (check != NULL && !jsonw_holds(root, check))
			jsonw_fail("a string did not survive", out);
		again = json_dumps(root, JSON_ENCODE_ANY | JSON_COMPACT | JSON_PRESERVE_ORDER);
		if (again == NULL || strcmp(again, out) != 0)
			jsonw_fail("not jansson's text", out);
		free(again);
	}
	json_decref(root);
	free(out);
	free(check);
	return 0;
}
