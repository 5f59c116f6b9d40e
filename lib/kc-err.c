/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * kc-err.c: error text and the single table from KC_ERR_* to status classes and HTTP.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kc-err.h"
#include "kc-util.h"

static const struct {
	int		 err;
	int		 status;
	const char	*text;
} kc_err_table[] = {
	{ KC_ERR_SUCCESS,	KC_STATUS_OK,			"success" },
	{ KC_ERR_INTERNAL,	KC_STATUS_INTERNAL,		"internal error" },
	{ KC_ERR_NOMEM,		KC_STATUS_INTERNAL,		"out of memory" },
	{ KC_ERR_INVALID,	KC_STATUS_INVALID_ARGUMENT,	"invalid argument" },
	{ KC_ERR_NOT_FOUND,	KC_STATUS_NOT_FOUND,		"not found" },
	{ KC_ERR_CONFLICT,	KC_STATUS_CONFLICT,		"conflict" },
	{ KC_ERR_DENIED,	KC_STATUS_PERMISSION_DENIED,	"permission denied" },
	{ KC_ERR_UNAVAILABLE,	KC_STATUS_UNAVAILABLE,		"service unavailable" },
	{ KC_ERR_MSG_TOO_BIG,	KC_STATUS_INVALID_ARGUMENT,	"message too big" },
	{ KC_ERR_BAD_MESSAGE,	KC_STATUS_INVALID_ARGUMENT,	"malformed message" },
	{ KC_ERR_BAD_VERSION,	KC_STATUS_INVALID_ARGUMENT,	"protocol version mismatch" },
	{ KC_ERR_IO,		KC_STATUS_UNAVAILABLE,		"input/output error" },
	{ KC_ERR_CLOSED,	KC_STATUS_UNAVAILABLE,		"connection closed" },
	{ KC_ERR_HSM,		KC_STATUS_UNAVAILABLE,		"HSM operation failed" },
	{ KC_ERR_PIN_INCORRECT,	KC_STATUS_UNAVAILABLE,		"token PIN incorrect" },
	{ KC_ERR_PIN_LOCKED,	KC_STATUS_UNAVAILABLE,		"token PIN locked" },
	{ KC_ERR_TOKEN_NOT_PRESENT, KC_STATUS_UNAVAILABLE,	"token not present" },
	{ KC_ERR_CRYPTO,	KC_STATUS_INTERNAL,		"cryptographic operation failed" },
	{ KC_ERR_STORE,		KC_STATUS_INTERNAL,		"store operation failed" },
	{ KC_ERR_TIMEOUT,	KC_STATUS_UNAVAILABLE,		"timed out" },
	{ KC_ERR_KEY_UNSAFE,	KC_STATUS_INTERNAL,		"generated key has unsafe attributes" },
	{ KC_ERR_RATE_LIMITED,	KC_STATUS_RATE_LIMITED,		"too many requests" },
};

static const struct {
	int		 status;
	int		 http;
	const char	*name;
} kc_status_table[] = {
	{ KC_STATUS_OK,			200, "ok" },
	{ KC_STATUS_INVALID_ARGUMENT,	400, "invalid_argument" },
	{ KC_STATUS_NOT_FOUND,		404, "not_found" },
	{ KC_STATUS_CONFLICT,		409, "conflict" },
	{ KC_STATUS_PERMISSION_DENIED,	403, "permission_denied" },
	{ KC_STATUS_UNAVAILABLE,	503, "unavailable" },
	{ KC_STATUS_INTERNAL,		500, "internal" },
	{ KC_STATUS_RATE_LIMITED,	429, "rate_limited" },
};

const char *
kc_strerror(int r)
{
	size_t	 i;

	for (i = 0; i < nitems(kc_err_table); i++)
		if (kc_err_table[i].err == r)
			return kc_err_table[i].text;
	return "unknown error";
}

int
kc_err_status(int r)
{
	size_t	 i;

	for (i = 0; i < nitems(kc_err_table); i++)
		if (kc_err_table[i].err == r)
			return kc_err_table[i].status;
	return KC_STATUS_INTERNAL;
}

int
kc_status_http(int status)
{
	size_t	 i;

	for (i = 0; i < nitems(kc_status_table); i++)
		if (kc_status_table[i].status == status)
			return kc_status_table[i].http;
	return 500;
}

const char *
kc_status_name(int status)
{
	size_t	 i;

	for (i = 0; i < nitems(kc_status_table); i++)
		if (kc_status_table[i].status == status)
			return kc_status_table[i].name;
	return "unknown";
}

void
kc_error_set(struct kc_error *err, int status, int code, const char *fmt, ...)
{
	va_list	 ap;

	if (err == NULL)
		return;
	err->status = status;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
}

void
kc_error_from(struct kc_error *err, int r)
{
	int	 status = kc_err_status(r);

	if (status == KC_STATUS_UNAVAILABLE)
		kc_error_set(err, status, KC_API_UNAVAILABLE,
		    "Service Unavailable: %s. Please try again later.", kc_strerror(r));
	else if (status == KC_STATUS_RATE_LIMITED)
		kc_error_set(err, status, KC_API_RATE_LIMITED, KC_API_RATE_LIMITED_MSG);
	else if (status == KC_STATUS_INTERNAL)
		kc_error_set(err, status, KC_API_INTERNAL, "Internal Server Error");
	else
		kc_error_set(err, status, KC_API_INTERNAL, "%s", kc_strerror(r));
}
