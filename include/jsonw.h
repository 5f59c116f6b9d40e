/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * jsonw.h: the JSON output writer (struct json_w) that every reply of the shim, and of
 * keycustodyctl's JSON output, is written with. jsonw.c owns it; it knows no JSON library,
 * no protobuf and does no I/O.
 */
#ifndef KC_JSONW_H
#define KC_JSONW_H

#include <stddef.h>
#include <stdint.h>

/*
 * The output writer: compact JSON written straight into one growing buffer, without a tree
 * of values. Strings are escaped as jansson's json_dumps() escapes them: '"', '\\', and
 * \b \f \n \r \t, other bytes below 0x20 as \u00XX (upper-case hex); '/', DEL and non-ASCII
 * UTF-8 pass unchanged. Ill-formed UTF-8 (protobuf-c does not check what the daemon sends)
 * is replaced, each maximal ill-formed subpart by one U+FFFD (Unicode 15, section 3.9, as
 * WHATWG and Python decode it), so the output is valid JSON whatever the bytes.
 * Errors are sticky: after the first (out of memory, or a call out of place: a key outside
 * an object or twice, a value in an object without its key, an end that does not match,
 * nesting over JSON_W_MAX_DEPTH), the other calls do nothing and json_w_steal() reports it.
 */
#define JSON_W_MAX_DEPTH	64

struct json_w {
	char		*buf;
	size_t		 len;
	size_t		 cap;
	int		 error;		/* 0 or the first KC_ERR_* */
	int		 depth;		/* open containers */
	int		 comma;		/* the open container has a member: ',' before the next */
	int		 key;		/* a key was written: its value comes next */
	uint64_t	 arrays;	/* bit d: the container at depth d + 1 is an array */
};

/**
 * Start writing into w.
 * @param hint bytes to allocate at once (0: on first use); the buffer grows as needed
 */
void	 json_w_init(struct json_w *w, size_t hint);

/** Free w's buffer (after an error, or to drop the text). */
void	 json_w_uninit(struct json_w *w);

/**
 * Make w fail with r (a KC_ERR_*), as a call out of place would: for a caller that refuses
 * what it was about to write. Only the first error counts.
 */
void	 json_w_fail(struct json_w *w, int r);

/**
 * Take the text written: exactly one complete top-level value.
 * @param out on success, the NUL-terminated text (caller frees); NULL on failure
 * @param lenp its length without the NUL; may be NULL
 * @retval 0, KC_ERR_NOMEM, or KC_ERR_INVALID (a call out of place, or not one complete
 *	value); w is uninitialized either way
 */
int	 json_w_steal(struct json_w *w, char **out, size_t *lenp);

void	 json_w_object_begin(struct json_w *w);
void	 json_w_object_end(struct json_w *w);
void	 json_w_array_begin(struct json_w *w);
void	 json_w_array_end(struct json_w *w);

/** The key of the next member of the open object; escaped like a string. */
void	 json_w_key(struct json_w *w, const char *key);

/** A string value, escaped; NULL is written as "". */
void	 json_w_string(struct json_w *w, const char *s);

/**
 * One string value, the concatenation of the n strings of parts (NULL: ""), each escaped
 * on its own: a message built around a caller's string without a copy of it.
 */
void	 json_w_string_parts(struct json_w *w, const char *const *parts, size_t n);

void	 json_w_int(struct json_w *w, int64_t v);
void	 json_w_uint(struct json_w *w, uint64_t v);
void	 json_w_bool(struct json_w *w, int v);
void	 json_w_null(struct json_w *w);

#endif /* KC_JSONW_H */
