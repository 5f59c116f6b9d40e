/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * p11-fault.c: a PKCS#11 module for the tests that forwards every call to a real module and
 * fails or delays chosen functions, as a control file that the test rewrites says.
 *
 * Environment:
 *   P11_FAULT_MODULE   the real module (default: SoftHSM2)
 *   P11_FAULT_CONTROL  the control file; re-read whenever it changes (one stat per call)
 *   P11_FAULT_LOG      optional: one line appended per injected fault or delay
 *   P11_FAULT_NEEDS    optional: "shm", "inet" or both: C_GenerateKeyPair first does what
 *                      such modules do (System V shared memory; an IPv4 TCP connection
 *                      attempt to 127.0.0.1), so that a sandbox without them kills it
 *
 * A token more limited than the real one (issue 15), each a comma-separated list of numbers
 * (0x... allowed):
 *   P11_FAULT_HIDE_MECHS   mechanisms left out of C_GetMechanismList; C_GetMechanismInfo,
 *                          C_SignInit, C_GenerateKey(Pair) with them: CKR_MECHANISM_INVALID
 *   P11_FAULT_REFUSE_GEN   mechanisms listed, but C_GenerateKeyPair with them fails with
 *                          CKR_MECHANISM_INVALID (openCryptoki's soft token and EC)
 *   P11_FAULT_REFUSE_PUB   attribute types a public-key template may not hold:
 *                          CKR_ATTRIBUTE_TYPE_INVALID (tpm2-pkcs11: CKA_VERIFY, CKA_ENCRYPT)
 *   P11_FAULT_REFUSE_PRIV  attribute types a private-key template may not hold:
 *                          CKR_ATTRIBUTE_VALUE_INVALID (a token without sensitive keys)
 *   P11_FAULT_NO_ATTRS     attribute types C_GetAttributeValue does not know
 *                          (CKR_ATTRIBUTE_TYPE_INVALID, length CK_UNAVAILABLE_INFORMATION)
 *
 * C_Initialize's pReserved (module arguments, as NSS softoken takes them) is logged as
 * "C_Initialize reserved=TEXT pid=P" and not passed on: SoftHSM2 refuses it.
 *
 * Control file, one rule a line ('#' starts a comment; an empty or missing file means no
 * faults; every rewrite starts every counter again from zero):
 *   FUNCTION CKR_NAME|0xHEX once|every N|from N|always [after] [delay MS]
 *   FUNCTION delay MS
 * "after" (C_GenerateKeyPair only; elsewhere the call fails before it is made): the call is
 * forwarded, and what it made is kept, but the error comes back in place of its result, as
 * when a network HSM's reply is lost.
 * "once" fails the first call after the rule was read, "every N" the Nth, 2Nth, ... call,
 * "from N" the Nth call and every later one. With a delay the failure comes back after MS
 * milliseconds; "FUNCTION delay MS" delays every call and then forwards it. Each rule
 * counts the calls of its function; when several rules fail one call, the first one wins.
 *
 * Log lines: "FUNCTION CKR_NAME call=N pid=P" or "FUNCTION delay=MS call=N pid=P" (so a
 * "FUNCTION delay 0" rule counts the calls of FUNCTION without changing them), and
 * "p11-fault: control line N ignored: TEXT" for a line that does not parse.
 */
#include "config.h"

#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#define FAULT_DEFAULT_MODULE	"/usr/lib/softhsm/libsofthsm2.so"
#define FAULT_MAX_RULES		64

enum fault_fn {
	FAULT_C_Initialize,
	FAULT_C_Finalize,
	FAULT_C_GetInfo,
	FAULT_C_GetSlotList,
	FAULT_C_GetSlotInfo,
	FAULT_C_GetTokenInfo,
	FAULT_C_GetMechanismList,
	FAULT_C_GetMechanismInfo,
	FAULT_C_InitToken,
	FAULT_C_InitPIN,
	FAULT_C_SetPIN,
	FAULT_C_OpenSession,
	FAULT_C_CloseSession,
	FAULT_C_CloseAllSessions,
	FAULT_C_GetSessionInfo,
	FAULT_C_GetOperationState,
	FAULT_C_SetOperationState,
	FAULT_C_Login,
	FAULT_C_Logout,
	FAULT_C_CreateObject,
	FAULT_C_CopyObject,
	FAULT_C_DestroyObject,
	FAULT_C_GetObjectSize,
	FAULT_C_GetAttributeValue,
	FAULT_C_SetAttributeValue,
	FAULT_C_FindObjectsInit,
	FAULT_C_FindObjects,
	FAULT_C_FindObjectsFinal,
	FAULT_C_EncryptInit,
	FAULT_C_Encrypt,
	FAULT_C_EncryptUpdate,
	FAULT_C_EncryptFinal,
	FAULT_C_DecryptInit,
	FAULT_C_Decrypt,
	FAULT_C_DecryptUpdate,
	FAULT_C_DecryptFinal,
	FAULT_C_DigestInit,
	FAULT_C_Digest,
	FAULT_C_DigestUpdate,
	FAULT_C_DigestKey,
	FAULT_C_DigestFinal,
	FAULT_C_SignInit,
	FAULT_C_Sign,
	FAULT_C_SignUpdate,
	FAULT_C_SignFinal,
	FAULT_C_SignRecoverInit,
	FAULT_C_SignRecover,
	FAULT_C_VerifyInit,
	FAULT_C_Verify,
	FAULT_C_VerifyUpdate,
	FAULT_C_VerifyFinal,
	FAULT_C_VerifyRecoverInit,
	FAULT_C_VerifyRecover,
	FAULT_C_DigestEncryptUpdate,
	FAULT_C_DecryptDigestUpdate,
	FAULT_C_SignEncryptUpdate,
	FAULT_C_DecryptVerifyUpdate,
	FAULT_C_GenerateKey,
	FAULT_C_GenerateKeyPair,
	FAULT_C_WrapKey,
	FAULT_C_UnwrapKey,
	FAULT_C_DeriveKey,
	FAULT_C_SeedRandom,
	FAULT_C_GenerateRandom,
	FAULT_C_GetFunctionStatus,
	FAULT_C_CancelFunction,
	FAULT_C_WaitForSlotEvent,
	FAULT_NFN
};

static const char *const fault_fn_names[FAULT_NFN] = {
	[FAULT_C_Initialize] = "C_Initialize",
	[FAULT_C_Finalize] = "C_Finalize",
	[FAULT_C_GetInfo] = "C_GetInfo",
	[FAULT_C_GetSlotList] = "C_GetSlotList",
	[FAULT_C_GetSlotInfo] = "C_GetSlotInfo",
	[FAULT_C_GetTokenInfo] = "C_GetTokenInfo",
	[FAULT_C_GetMechanismList] = "C_GetMechanismList",
	[FAULT_C_GetMechanismInfo] = "C_GetMechanismInfo",
	[FAULT_C_InitToken] = "C_InitToken",
	[FAULT_C_InitPIN] = "C_InitPIN",
	[FAULT_C_SetPIN] = "C_SetPIN",
	[FAULT_C_OpenSession] = "C_OpenSession",
	[FAULT_C_CloseSession] = "C_CloseSession",
	[FAULT_C_CloseAllSessions] = "C_CloseAllSessions",
	[FAULT_C_GetSessionInfo] = "C_GetSessionInfo",
	[FAULT_C_GetOperationState] = "C_GetOperationState",
	[FAULT_C_SetOperationState] = "C_SetOperationState",
	[FAULT_C_Login] = "C_Login",
	[FAULT_C_Logout] = "C_Logout",
	[FAULT_C_CreateObject] = "C_CreateObject",
	[FAULT_C_CopyObject] = "C_CopyObject",
	[FAULT_C_DestroyObject] = "C_DestroyObject",
	[FAULT_C_GetObjectSize] = "C_GetObjectSize",
	[FAULT_C_GetAttributeValue] = "C_GetAttributeValue",
	[FAULT_C_SetAttributeValue] = "C_SetAttributeValue",
	[FAULT_C_FindObjectsInit] = "C_FindObjectsInit",
	[FAULT_C_FindObjects] = "C_FindObjects",
	[FAULT_C_FindObjectsFinal] = "C_FindObjectsFinal",
	[FAULT_C_EncryptInit] = "C_EncryptInit",
	[FAULT_C_Encrypt] = "C_Encrypt",
	[FAULT_C_EncryptUpdate] = "C_EncryptUpdate",
	[FAULT_C_EncryptFinal] = "C_EncryptFinal",
	[FAULT_C_DecryptInit] = "C_DecryptInit",
	[FAULT_C_Decrypt] = "C_Decrypt",
	[FAULT_C_DecryptUpdate] = "C_DecryptUpdate",
	[FAULT_C_DecryptFinal] = "C_DecryptFinal",
	[FAULT_C_DigestInit] = "C_DigestInit",
	[FAULT_C_Digest] = "C_Digest",
	[FAULT_C_DigestUpdate] = "C_DigestUpdate",
	[FAULT_C_DigestKey] = "C_DigestKey",
	[FAULT_C_DigestFinal] = "C_DigestFinal",
	[FAULT_C_SignInit] = "C_SignInit",
	[FAULT_C_Sign] = "C_Sign",
	[FAULT_C_SignUpdate] = "C_SignUpdate",
	[FAULT_C_SignFinal] = "C_SignFinal",
	[FAULT_C_SignRecoverInit] = "C_SignRecoverInit",
	[FAULT_C_SignRecover] = "C_SignRecover",
	[FAULT_C_VerifyInit] = "C_VerifyInit",
	[FAULT_C_Verify] = "C_Verify",
	[FAULT_C_VerifyUpdate] = "C_VerifyUpdate",
	[FAULT_C_VerifyFinal] = "C_VerifyFinal",
	[FAULT_C_VerifyRecoverInit] = "C_VerifyRecoverInit",
	[FAULT_C_VerifyRecover] = "C_VerifyRecover",
	[FAULT_C_DigestEncryptUpdate] = "C_DigestEncryptUpdate",
	[FAULT_C_DecryptDigestUpdate] = "C_DecryptDigestUpdate",
	[FAULT_C_SignEncryptUpdate] = "C_SignEncryptUpdate",
	[FAULT_C_DecryptVerifyUpdate] = "C_DecryptVerifyUpdate",
	[FAULT_C_GenerateKey] = "C_GenerateKey",
	[FAULT_C_GenerateKeyPair] = "C_GenerateKeyPair",
	[FAULT_C_WrapKey] = "C_WrapKey",
	[FAULT_C_UnwrapKey] = "C_UnwrapKey",
	[FAULT_C_DeriveKey] = "C_DeriveKey",
	[FAULT_C_SeedRandom] = "C_SeedRandom",
	[FAULT_C_GenerateRandom] = "C_GenerateRandom",
	[FAULT_C_GetFunctionStatus] = "C_GetFunctionStatus",
	[FAULT_C_CancelFunction] = "C_CancelFunction",
	[FAULT_C_WaitForSlotEvent] = "C_WaitForSlotEvent",
};

#define FAULT_CKR(x)	{ x, #x }
static const struct fault_ckr {
	CK_RV		 rv;
	const char	*name;
} fault_ckrs[] = {
	FAULT_CKR(CKR_OK),
	FAULT_CKR(CKR_CANCEL),
	FAULT_CKR(CKR_HOST_MEMORY),
	FAULT_CKR(CKR_SLOT_ID_INVALID),
	FAULT_CKR(CKR_GENERAL_ERROR),
	FAULT_CKR(CKR_FUNCTION_FAILED),
	FAULT_CKR(CKR_ARGUMENTS_BAD),
	FAULT_CKR(CKR_NO_EVENT),
	FAULT_CKR(CKR_NEED_TO_CREATE_THREADS),
	FAULT_CKR(CKR_CANT_LOCK),
	FAULT_CKR(CKR_ATTRIBUTE_READ_ONLY),
	FAULT_CKR(CKR_ATTRIBUTE_SENSITIVE),
	FAULT_CKR(CKR_ATTRIBUTE_TYPE_INVALID),
	FAULT_CKR(CKR_ATTRIBUTE_VALUE_INVALID),
	FAULT_CKR(CKR_ACTION_PROHIBITED),
	FAULT_CKR(CKR_DATA_INVALID),
	FAULT_CKR(CKR_DATA_LEN_RANGE),
	FAULT_CKR(CKR_DEVICE_ERROR),
	FAULT_CKR(CKR_DEVICE_MEMORY),
	FAULT_CKR(CKR_DEVICE_REMOVED),
	FAULT_CKR(CKR_ENCRYPTED_DATA_INVALID),
	FAULT_CKR(CKR_ENCRYPTED_DATA_LEN_RANGE),
	FAULT_CKR(CKR_FUNCTION_CANCELED),
	FAULT_CKR(CKR_FUNCTION_NOT_PARALLEL),
	FAULT_CKR(CKR_FUNCTION_NOT_SUPPORTED),
	FAULT_CKR(CKR_KEY_HANDLE_INVALID),
	FAULT_CKR(CKR_KEY_SIZE_RANGE),
	FAULT_CKR(CKR_KEY_TYPE_INCONSISTENT),
	FAULT_CKR(CKR_KEY_NOT_NEEDED),
	FAULT_CKR(CKR_KEY_CHANGED),
	FAULT_CKR(CKR_KEY_NEEDED),
	FAULT_CKR(CKR_KEY_INDIGESTIBLE),
	FAULT_CKR(CKR_KEY_FUNCTION_NOT_PERMITTED),
	FAULT_CKR(CKR_KEY_NOT_WRAPPABLE),
	FAULT_CKR(CKR_KEY_UNEXTRACTABLE),
	FAULT_CKR(CKR_MECHANISM_INVALID),
	FAULT_CKR(CKR_MECHANISM_PARAM_INVALID),
	FAULT_CKR(CKR_OBJECT_HANDLE_INVALID),
	FAULT_CKR(CKR_OPERATION_ACTIVE),
	FAULT_CKR(CKR_OPERATION_NOT_INITIALIZED),
	FAULT_CKR(CKR_PIN_INCORRECT),
	FAULT_CKR(CKR_PIN_INVALID),
	FAULT_CKR(CKR_PIN_LEN_RANGE),
	FAULT_CKR(CKR_PIN_EXPIRED),
	FAULT_CKR(CKR_PIN_LOCKED),
	FAULT_CKR(CKR_SESSION_CLOSED),
	FAULT_CKR(CKR_SESSION_COUNT),
	FAULT_CKR(CKR_SESSION_HANDLE_INVALID),
	FAULT_CKR(CKR_SESSION_PARALLEL_NOT_SUPPORTED),
	FAULT_CKR(CKR_SESSION_READ_ONLY),
	FAULT_CKR(CKR_SESSION_EXISTS),
	FAULT_CKR(CKR_SESSION_READ_ONLY_EXISTS),
	FAULT_CKR(CKR_SESSION_READ_WRITE_SO_EXISTS),
	FAULT_CKR(CKR_SIGNATURE_INVALID),
	FAULT_CKR(CKR_SIGNATURE_LEN_RANGE),
	FAULT_CKR(CKR_TEMPLATE_INCOMPLETE),
	FAULT_CKR(CKR_TEMPLATE_INCONSISTENT),
	FAULT_CKR(CKR_TOKEN_NOT_PRESENT),
	FAULT_CKR(CKR_TOKEN_NOT_RECOGNIZED),
	FAULT_CKR(CKR_TOKEN_WRITE_PROTECTED),
	FAULT_CKR(CKR_UNWRAPPING_KEY_SIZE_RANGE),
	FAULT_CKR(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT),
	FAULT_CKR(CKR_USER_ALREADY_LOGGED_IN),
	FAULT_CKR(CKR_USER_NOT_LOGGED_IN),
	FAULT_CKR(CKR_USER_PIN_NOT_INITIALIZED),
	FAULT_CKR(CKR_USER_TYPE_INVALID),
	FAULT_CKR(CKR_USER_ANOTHER_ALREADY_LOGGED_IN),
	FAULT_CKR(CKR_USER_TOO_MANY_TYPES),
	FAULT_CKR(CKR_WRAPPED_KEY_INVALID),
	FAULT_CKR(CKR_WRAPPED_KEY_LEN_RANGE),
	FAULT_CKR(CKR_WRAPPING_KEY_HANDLE_INVALID),
	FAULT_CKR(CKR_WRAPPING_KEY_SIZE_RANGE),
	FAULT_CKR(CKR_WRAPPING_KEY_TYPE_INCONSISTENT),
	FAULT_CKR(CKR_RANDOM_SEED_NOT_SUPPORTED),
	FAULT_CKR(CKR_RANDOM_NO_RNG),
	FAULT_CKR(CKR_DOMAIN_PARAMS_INVALID),
	FAULT_CKR(CKR_CURVE_NOT_SUPPORTED),
	FAULT_CKR(CKR_BUFFER_TOO_SMALL),
	FAULT_CKR(CKR_SAVED_STATE_INVALID),
	FAULT_CKR(CKR_INFORMATION_SENSITIVE),
	FAULT_CKR(CKR_STATE_UNSAVEABLE),
	FAULT_CKR(CKR_CRYPTOKI_NOT_INITIALIZED),
	FAULT_CKR(CKR_CRYPTOKI_ALREADY_INITIALIZED),
	FAULT_CKR(CKR_MUTEX_BAD),
	FAULT_CKR(CKR_MUTEX_NOT_LOCKED),
	FAULT_CKR(CKR_NEW_PIN_MODE),
	FAULT_CKR(CKR_NEXT_OTP),
	FAULT_CKR(CKR_EXCEEDED_MAX_ITERATIONS),
	FAULT_CKR(CKR_FIPS_SELF_TEST_FAILED),
	FAULT_CKR(CKR_LIBRARY_LOAD_FAILED),
	FAULT_CKR(CKR_PIN_TOO_WEAK),
	FAULT_CKR(CKR_PUBLIC_KEY_INVALID),
	FAULT_CKR(CKR_FUNCTION_REJECTED),
};
#undef FAULT_CKR

enum fault_when {
	FAULT_NEVER = 0,	/* delay only */
	FAULT_ONCE,
	FAULT_EVERY,
	FAULT_FROM,
	FAULT_ALWAYS
};

struct fault_rule {
	enum fault_fn	 fn;
	CK_RV		 rv;
	enum fault_when	 when;
	unsigned long	 n;
	unsigned long	 calls;		/* calls of fn seen by this rule */
	unsigned int	 delay_ms;
	int		 after;		/* forward the call, then fail it */
};

/* What the control file looked like when it was last read. */
struct fault_stamp {
	int		 exists;
	dev_t		 dev;
	ino_t		 ino;
	off_t		 size;
	struct timespec	 mtim;
	struct timespec	 ctim;
};

static pthread_mutex_t		 fault_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t		 fault_once = PTHREAD_ONCE_INIT;
static void			*fault_dl;
static CK_FUNCTION_LIST_PTR	 fault_real;
static CK_RV			 fault_load_rv = CKR_GENERAL_ERROR;
static struct fault_rule	 fault_rules[FAULT_MAX_RULES];
static size_t			 fault_nrules;
static struct fault_stamp	 fault_seen;

/* Append one line to P11_FAULT_LOG, if it is set. */
static void
fault_log(const char *fmt, ...) __attribute__((__format__(__printf__, 1, 2)));

static void
fault_log(const char *fmt, ...)
{
	const char	*path = getenv("P11_FAULT_LOG");
	char		 line[512];
	va_list		 ap;
	int		 fd, len;

	if (path == NULL || *path == '\0')
		return;
	va_start(ap, fmt);
	len = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (len < 0)
		return;
	if ((size_t)len > sizeof(line) - 2)
		len = (int)sizeof(line) - 2;
	line[len++] = '\n';
	/* One write(2) per line with O_APPEND: lines from several processes do not mix. */
	if ((fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) == -1)
		return;
	if (write(fd, line, (size_t)len) != (ssize_t)len) {
		/* Nothing to do: the test counts what it finds. */
	}
	close(fd);
}

static int
fault_parse_ulong(const char *s, unsigned long *v)
{
	char	*end;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	*v = strtoul(s, &end, 0);
	return (errno != 0 || *end != '\0') ? -1 : 0;
}

static int
fault_parse_fn(const char *s, enum fault_fn *fn)
{
	int	i;

	for (i = 0; i < FAULT_NFN; i++) {
		if (strcmp(s, fault_fn_names[i]) == 0) {
			*fn = (enum fault_fn)i;
			return 0;
		}
	}
	return -1;
}

static int
fault_parse_ckr(const char *s, CK_RV *rv)
{
	unsigned long	v;
	size_t		i;

	for (i = 0; i < sizeof(fault_ckrs) / sizeof(fault_ckrs[0]); i++) {
		if (strcmp(s, fault_ckrs[i].name) == 0) {
			*rv = fault_ckrs[i].rv;
			return 0;
		}
	}
	if (strncmp(s, "0x", 2) != 0 && strncmp(s, "0X", 2) != 0)
		return -1;
	if (fault_parse_ulong(s, &v) != 0 || v == CKR_OK)
		return -1;
	*rv = v;
	return 0;
}

static const char *
fault_ckr_name(CK_RV rv, char *buf, size_t len)
{
	size_t	i;

	for (i = 0; i < sizeof(fault_ckrs) / sizeof(fault_ckrs[0]); i++)
		if (fault_ckrs[i].rv == rv)
			return fault_ckrs[i].name;
	snprintf(buf, len, "0x%lx", (unsigned long)rv);
	return buf;
}

/* Parse one control line into r. Returns 0, 1 for a blank line, -1 when it is wrong. */
static int
fault_parse_line(char *line, struct fault_rule *r)
{
	char		*w[6], *p, *save = NULL;
	unsigned long	 v;
	int		 n = 0, i;

	if ((p = strchr(line, '#')) != NULL)
		*p = '\0';
	for (p = strtok_r(line, " \t\r\n", &save); p != NULL;
	    p = strtok_r(NULL, " \t\r\n", &save)) {
		if (n == 6)
			return -1;
		w[n++] = p;
	}
	if (n == 0)
		return 1;
	memset(r, 0, sizeof(*r));
	if (n < 3 || fault_parse_fn(w[0], &r->fn) != 0)
		return -1;
	if (strcmp(w[1], "delay") == 0) {
		if (n != 3 || fault_parse_ulong(w[2], &v) != 0 || v > 600000)
			return -1;
		r->when = FAULT_NEVER;
		r->delay_ms = (unsigned int)v;
		return 0;
	}
	if (fault_parse_ckr(w[1], &r->rv) != 0)
		return -1;
	i = 3;
	if (strcmp(w[2], "once") == 0)
		r->when = FAULT_ONCE;
	else if (strcmp(w[2], "always") == 0)
		r->when = FAULT_ALWAYS;
	else if (strcmp(w[2], "every") == 0 || strcmp(w[2], "from") == 0) {
		if (n < 4 || fault_parse_ulong(w[3], &r->n) != 0 || r->n == 0)
			return -1;
		r->when = w[2][0] == 'e' ? FAULT_EVERY : FAULT_FROM;
		i = 4;
	} else
		return -1;
	if (i < n && strcmp(w[i], "after") == 0) {
		r->after = 1;
		i++;
	}
	if (i == n)
		return 0;
	if (n != i + 2 || strcmp(w[i], "delay") != 0 ||
	    fault_parse_ulong(w[i + 1], &v) != 0 || v > 600000)
		return -1;
	r->delay_ms = (unsigned int)v;
	return 0;
}

/* Read the control file again if it changed since the last call. Called with the lock. */
static void
fault_reload_inlock(void)
{
	const char		*path = getenv("P11_FAULT_CONTROL");
	struct fault_stamp	 now;
	struct stat		 sb;
	struct fault_rule	 r;
	FILE			*f;
	char			 line[256], copy[256];
	unsigned int		 lineno = 0;
	int			 rc;

	memset(&now, 0, sizeof(now));
	if (path != NULL && *path != '\0' && stat(path, &sb) == 0) {
		now.exists = 1;
		now.dev = sb.st_dev;
		now.ino = sb.st_ino;
		now.size = sb.st_size;
		now.mtim = sb.st_mtim;
		now.ctim = sb.st_ctim;
	}
	if (memcmp(&now, &fault_seen, sizeof(now)) == 0)
		return;
	fault_seen = now;
	fault_nrules = 0;
	if (!now.exists || (f = fopen(path, "re")) == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		snprintf(copy, sizeof(copy), "%s", line);
		copy[strcspn(copy, "\r\n")] = '\0';
		if ((rc = fault_parse_line(line, &r)) == 1)
			continue;
		if (rc != 0 || fault_nrules == FAULT_MAX_RULES) {
			fault_log("p11-fault: control line %u ignored: %s", lineno, copy);
			continue;
		}
		fault_rules[fault_nrules++] = r;
	}
	fclose(f);
}

/*
 * Count a call of fn against every rule for it. Returns 1 with *rv set when the call is
 * to fail (after its delay), 2 with *rv set when it is to be forwarded and then fail (an
 * "after" rule), 0 when it is to be forwarded (after any delay).
 */
static int
fault_enter(enum fault_fn fn, CK_RV *rv)
{
	struct fault_rule	*r;
	struct timespec		 ts;
	unsigned long		 call = 0;
	unsigned int		 delay = 0;
	size_t			 i;
	char			 buf[32];
	int			 fail = 0, hit;

	pthread_mutex_lock(&fault_lock);
	fault_reload_inlock();
	for (i = 0; i < fault_nrules; i++) {
		r = &fault_rules[i];
		if (r->fn != fn)
			continue;
		r->calls++;
		switch (r->when) {
		case FAULT_NEVER:
			hit = 0;
			delay += r->delay_ms;
			fault_log("%s delay=%u call=%lu pid=%ld", fault_fn_names[fn],
			    r->delay_ms, r->calls, (long)getpid());
			break;
		case FAULT_ONCE:
			hit = r->calls == 1;
			break;
		case FAULT_EVERY:
			hit = r->calls % r->n == 0;
			break;
		case FAULT_FROM:
			hit = r->calls >= r->n;
			break;
		default:
			hit = 1;
			break;
		}
		if (hit && !fail) {
			fail = r->after ? 2 : 1;
			*rv = r->rv;
			delay += r->delay_ms;
			call = r->calls;
		}
	}
	if (fail)
		fault_log("%s %s call=%lu pid=%ld", fault_fn_names[fn],
		    fault_ckr_name(*rv, buf, sizeof(buf)), call, (long)getpid());
	pthread_mutex_unlock(&fault_lock);

	if (delay > 0) {
		ts.tv_sec = delay / 1000;
		ts.tv_nsec = (long)(delay % 1000) * 1000000L;
		while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
			;
	}
	return fail;
}

/* Whether the number v is in the comma-separated list of the environment variable env. */
static int
fault_listed(const char *env, unsigned long v)
{
	const char	*p = getenv(env);
	char		*end;
	unsigned long	 x;

	while (p != NULL && *p != '\0') {
		x = strtoul(p, &end, 0);
		if (end == p)
			return 0;
		if (x == v)
			return 1;
		p = *end == ',' ? end + 1 : end;
	}
	return 0;
}

/* Whether a template holds an attribute type listed in env. */
static int
fault_template_listed(const char *env, const CK_ATTRIBUTE *t, unsigned long n)
{
	unsigned long	i;

	for (i = 0; i < n; i++)
		if (fault_listed(env, t[i].type))
			return 1;
	return 0;
}

/* --- the forwarding functions, one per entry of the 2.40 function list --- */

static CK_RV
fault_C_Initialize(void *init_args)
{
	CK_C_INITIALIZE_ARGS	 args, *in = init_args;
	CK_RV			 rv;

	if (fault_enter(FAULT_C_Initialize, &rv))
		return rv;
	if (in != NULL && in->pReserved != NULL) {
		fault_log("C_Initialize reserved=%s pid=%ld", (const char *)in->pReserved,
		    (long)getpid());
		args = *in;
		args.pReserved = NULL;
		return fault_real->C_Initialize(&args);
	}
	return fault_real->C_Initialize(init_args);
}

static CK_RV
fault_C_Finalize(void *reserved)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_Finalize, &rv))
		return rv;
	return fault_real->C_Finalize(reserved);
}

static CK_RV
fault_C_GetInfo(CK_INFO *info)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_GetInfo, &rv))
		return rv;
	return fault_real->C_GetInfo(info);
}

static CK_RV
fault_C_GetSlotList(unsigned char token_present, CK_SLOT_ID *slot_list,
    unsigned long *count)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_GetSlotList, &rv))
		return rv;
	return fault_real->C_GetSlotList(token_present, slot_list, count);
}

static CK_RV
fault_C_GetSlotInfo(CK_SLOT_ID slot_id, CK_SLOT_INFO *info)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_GetSlotInfo, &rv))
		return rv;
	return fault_real->C_GetSlotInfo(slot_id, info);
}

static CK_RV
fault_C_GetTokenInfo(CK_SLOT_ID slot_id, CK_TOKEN_INFO *info)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_GetTokenInfo, &rv))
		return rv;
	return fault_real->C_GetTokenInfo(slot_id, info);
}

static CK_RV
fault_C_GetMechanismList(CK_SLOT_ID slot_id, CK_MECHANISM_TYPE *mechanism_list,
    unsigned long *count)
{
	CK_RV	rv;

	CK_MECHANISM_TYPE	*all;
	unsigned long		 n = 0, i, kept = 0;

	if (fault_enter(FAULT_C_GetMechanismList, &rv))
		return rv;
	if (getenv("P11_FAULT_HIDE_MECHS") == NULL)
		return fault_real->C_GetMechanismList(slot_id, mechanism_list, count);
	if ((rv = fault_real->C_GetMechanismList(slot_id, NULL, &n)) != CKR_OK)
		return rv;
	if ((all = calloc(n + 1, sizeof(*all))) == NULL)
		return CKR_HOST_MEMORY;
	if ((rv = fault_real->C_GetMechanismList(slot_id, all, &n)) != CKR_OK) {
		free(all);
		return rv;
	}
	for (i = 0; i < n; i++)
		if (!fault_listed("P11_FAULT_HIDE_MECHS", all[i]))
			all[kept++] = all[i];
	if (mechanism_list != NULL && *count < kept)
		rv = CKR_BUFFER_TOO_SMALL;
	else if (mechanism_list != NULL)
		memcpy(mechanism_list, all, kept * sizeof(*all));
	*count = kept;
	free(all);
	return rv;
}

static CK_RV
fault_C_GetMechanismInfo(CK_SLOT_ID slot_id, CK_MECHANISM_TYPE type,
    CK_MECHANISM_INFO *info)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_GetMechanismInfo, &rv))
		return rv;
	if (fault_listed("P11_FAULT_HIDE_MECHS", type))
		return CKR_MECHANISM_INVALID;
	return fault_real->C_GetMechanismInfo(slot_id, type, info);
}

static CK_RV
fault_C_InitToken(CK_SLOT_ID slot_id, unsigned char *pin, unsigned long pin_len,
    unsigned char *label)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_InitToken, &rv))
		return rv;
	return fault_real->C_InitToken(slot_id, pin, pin_len, label);
}

static CK_RV
fault_C_InitPIN(CK_SESSION_HANDLE session, unsigned char *pin, unsigned long pin_len)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_InitPIN, &rv))
		return rv;
	return fault_real->C_InitPIN(session, pin, pin_len);
}

static CK_RV
fault_C_SetPIN(CK_SESSION_HANDLE session, unsigned char *old_pin, unsigned long old_len,
    unsigned char *new_pin, unsigned long new_len)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_SetPIN, &rv))
		return rv;
	return fault_real->C_SetPIN(session, old_pin, old_len, new_pin, new_len);
}

static CK_RV
fault_C_OpenSession(CK_SLOT_ID slot_id, CK_FLAGS flags, void *application,
    CK_NOTIFY notify, CK_SESSION_HANDLE *session)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_OpenSession, &rv))
		return rv;
	return fault_real->C_OpenSession(slot_id, flags, application, notify, session);
}

static CK_RV
fault_C_CloseSession(CK_SESSION_HANDLE session)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_CloseSession, &rv))
		return rv;
	return fault_real->C_CloseSession(session);
}

static CK_RV
fault_C_CloseAllSessions(CK_SLOT_ID slot_id)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_CloseAllSessions, &rv))
		return rv;
	return fault_real->C_CloseAllSessions(slot_id);
}

static CK_RV
fault_C_GetSessionInfo(CK_SESSION_HANDLE session, CK_SESSION_INFO *info)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_GetSessionInfo, &rv))
		return rv;
	return fault_real->C_GetSessionInfo(session, info);
}

static CK_RV
fault_C_GetOperationState(CK_SESSION_HANDLE session, unsigned char *operation_state,
    unsigned long *operation_state_len)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_GetOperationState, &rv))
		return rv;
	return fault_real->C_GetOperationState(session, operation_state,
	    operation_state_len);
}

static CK_RV
fault_C_SetOperationState(CK_SESSION_HANDLE session, unsigned char *operation_state,
    unsigned long operation_state_len, CK_OBJECT_HANDLE encryption_key,
    CK_OBJECT_HANDLE authentiation_key)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_SetOperationState, &rv))
		return rv;
	return fault_real->C_SetOperationState(session, operation_state, operation_state_len,
	    encryption_key, authentiation_key);
}

static CK_RV
fault_C_Login(CK_SESSION_HANDLE session, CK_USER_TYPE user_type, unsigned char *pin,
    unsigned long pin_len)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_Login, &rv))
		return rv;
	return fault_real->C_Login(session, user_type, pin, pin_len);
}

static CK_RV
fault_C_Logout(CK_SESSION_HANDLE session)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_Logout, &rv))
		return rv;
	return fault_real->C_Logout(session);
}

static CK_RV
fault_C_CreateObject(CK_SESSION_HANDLE session, CK_ATTRIBUTE *templ,
    unsigned long count, CK_OBJECT_HANDLE *object)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_CreateObject, &rv))
		return rv;
	return fault_real->C_CreateObject(session, templ, count, object);
}

static CK_RV
fault_C_CopyObject(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
    CK_ATTRIBUTE *templ, unsigned long count, CK_OBJECT_HANDLE *new_object)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_CopyObject, &rv))
		return rv;
	return fault_real->C_CopyObject(session, object, templ, count, new_object);
}

static CK_RV
fault_C_DestroyObject(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_DestroyObject, &rv))
		return rv;
	return fault_real->C_DestroyObject(session, object);
}

static CK_RV
fault_C_GetObjectSize(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
    unsigned long *size)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_GetObjectSize, &rv))
		return rv;
	return fault_real->C_GetObjectSize(session, object, size);
}

static CK_RV
fault_C_GetAttributeValue(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
    CK_ATTRIBUTE *templ, unsigned long count)
{
	CK_RV	rv;

	CK_RV	rv2 = CKR_OK;
	unsigned long i;

	if (fault_enter(FAULT_C_GetAttributeValue, &rv))
		return rv;
	rv = fault_real->C_GetAttributeValue(session, object, templ, count);
	if (getenv("P11_FAULT_NO_ATTRS") == NULL || (rv != CKR_OK &&
	    rv != CKR_ATTRIBUTE_TYPE_INVALID && rv != CKR_ATTRIBUTE_SENSITIVE))
		return rv;
	for (i = 0; i < count; i++)
		if (fault_listed("P11_FAULT_NO_ATTRS", templ[i].type)) {
			templ[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
			rv2 = CKR_ATTRIBUTE_TYPE_INVALID;
		}
	return rv != CKR_OK ? rv : rv2;
}

static CK_RV
fault_C_SetAttributeValue(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
    CK_ATTRIBUTE *templ, unsigned long count)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_SetAttributeValue, &rv))
		return rv;
	return fault_real->C_SetAttributeValue(session, object, templ, count);
}

static CK_RV
fault_C_FindObjectsInit(CK_SESSION_HANDLE session, CK_ATTRIBUTE *templ,
    unsigned long count)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_FindObjectsInit, &rv))
		return rv;
	return fault_real->C_FindObjectsInit(session, templ, count);
}

static CK_RV
fault_C_FindObjects(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE *object,
    unsigned long max_object_count, unsigned long *object_count)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_FindObjects, &rv))
		return rv;
	return fault_real->C_FindObjects(session, object, max_object_count, object_count);
}

static CK_RV
fault_C_FindObjectsFinal(CK_SESSION_HANDLE session)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_FindObjectsFinal, &rv))
		return rv;
	return fault_real->C_FindObjectsFinal(session);
}

static CK_RV
fault_C_EncryptInit(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism,
    CK_OBJECT_HANDLE key)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_EncryptInit, &rv))
		return rv;
	return fault_real->C_EncryptInit(session, mechanism, key);
}

static CK_RV
fault_C_Encrypt(CK_SESSION_HANDLE session, unsigned char *data, unsigned long data_len,
    unsigned char *encrypted_data, unsigned long *encrypted_data_len)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_Encrypt, &rv))
		return rv;
	return fault_real->C_Encrypt(session, data, data_len, encrypted_data,
	    encrypted_data_len);
}

static CK_RV
fault_C_EncryptUpdate(CK_SESSION_HANDLE session, unsigned char *part,
    unsigned long part_len, unsigned char *encrypted_part,
    unsigned long *encrypted_part_len)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_EncryptUpdate, &rv))
		return rv;
	return fault_real->C_EncryptUpdate(session, part, part_len, encrypted_part,
	    encrypted_part_len);
}

static CK_RV
fault_C_EncryptFinal(CK_SESSION_HANDLE session, unsigned char *last_encrypted_part,
    unsigned long *last_encrypted_part_len)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_EncryptFinal, &rv))
		return rv;
	return fault_real->C_EncryptFinal(session, last_encrypted_part,
	    last_encrypted_part_len);
}

static CK_RV
fault_C_DecryptInit(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism,
    CK_OBJECT_HANDLE key)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_DecryptInit, &rv))
		return rv;
	return fault_real->C_DecryptInit(session, mechanism, key);
}

static CK_RV
fault_C_Decrypt(CK_SESSION_HANDLE session, unsigned char *encrypted_data,
    unsigned long encrypted_data_len, unsigned char *data, unsigned long *data_len)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_Decrypt, &rv))
		return rv;
	return fault_real->C_Decrypt(session, encrypted_data, encrypted_data_len, data,
	    data_len);
}

static CK_RV
fault_C_DecryptUpdate(CK_SESSION_HANDLE session, unsigned char *encrypted_part,
    unsigned long encrypted_part_len, unsigned char *part, unsigned long *part_len)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_DecryptUpdate, &rv))
		return rv;
	return fault_real->C_DecryptUpdate(session, encrypted_part, encrypted_part_len, part,
	    part_len);
}

static CK_RV
fault_C_DecryptFinal(CK_SESSION_HANDLE session, unsigned char *last_part,
    unsigned long *last_part_len)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_DecryptFinal, &rv))
		return rv;
	return fault_real->C_DecryptFinal(session, last_part, last_part_len);
}

static CK_RV
fault_C_DigestInit(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_DigestInit, &rv))
		return rv;
	return fault_real->C_DigestInit(session, mechanism);
}

static CK_RV
fault_C_Digest(CK_SESSION_HANDLE session, unsigned char *data, unsigned long data_len,
    unsigned char *digest, unsigned long *digest_len)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_Digest, &rv))
		return rv;
	return fault_real->C_Digest(session, data, data_len, digest, digest_len);
}

static CK_RV
fault_C_DigestUpdate(CK_SESSION_HANDLE session, unsigned char *part,
    unsigned long part_len)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_DigestUpdate, &rv))
		return rv;
	return fault_real->C_DigestUpdate(session, part, part_len);
}

static CK_RV
fault_C_DigestKey(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_DigestKey, &rv))
		return rv;
	return fault_real->C_DigestKey(session, key);
}

static CK_RV
fault_C_DigestFinal(CK_SESSION_HANDLE session, unsigned char *digest,
    unsigned long *digest_len)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_DigestFinal, &rv))
		return rv;
	return fault_real->C_DigestFinal(session, digest, digest_len);
}

static CK_RV
fault_C_SignInit(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism,
    CK_OBJECT_HANDLE key)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_SignInit, &rv))
		return rv;
	if (mechanism != NULL && fault_listed("P11_FAULT_HIDE_MECHS", mechanism->mechanism))
		return CKR_MECHANISM_INVALID;
	return fault_real->C_SignInit(session, mechanism, key);
}

static CK_RV
fault_C_Sign(CK_SESSION_HANDLE session, unsigned char *data, unsigned long data_len,
    unsigned char *signature, unsigned long *signature_len)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_Sign, &rv))
		return rv;
	return fault_real->C_Sign(session, data, data_len, signature, signature_len);
}

static CK_RV
fault_C_SignUpdate(CK_SESSION_HANDLE session, unsigned char *part, unsigned long part_len)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_SignUpdate, &rv))
		return rv;
	return fault_real->C_SignUpdate(session, part, part_len);
}

static CK_RV
fault_C_SignFinal(CK_SESSION_HANDLE session, unsigned char *signature,
    unsigned long *signature_len)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_SignFinal, &rv))
		return rv;
	return fault_real->C_SignFinal(session, signature, signature_len);
}

static CK_RV
fault_C_SignRecoverInit(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism,
    CK_OBJECT_HANDLE key)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_SignRecoverInit, &rv))
		return rv;
	return fault_real->C_SignRecoverInit(session, mechanism, key);
}

static CK_RV
fault_C_SignRecover(CK_SESSION_HANDLE session, unsigned char *data,
    unsigned long data_len, unsigned char *signature, unsigned long *signature_len)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_SignRecover, &rv))
		return rv;
	return fault_real->C_SignRecover(session, data, data_len, signature, signature_len);
}

static CK_RV
fault_C_VerifyInit(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism,
    CK_OBJECT_HANDLE key)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_VerifyInit, &rv))
		return rv;
	return fault_real->C_VerifyInit(session, mechanism, key);
}

static CK_RV
fault_C_Verify(CK_SESSION_HANDLE session, unsigned char *data, unsigned long data_len,
    unsigned char *signature, unsigned long signature_len)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_Verify, &rv))
		return rv;
	return fault_real->C_Verify(session, data, data_len, signature, signature_len);
}

static CK_RV
fault_C_VerifyUpdate(CK_SESSION_HANDLE session, unsigned char *part,
    unsigned long part_len)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_VerifyUpdate, &rv))
		return rv;
	return fault_real->C_VerifyUpdate(session, part, part_len);
}

static CK_RV
fault_C_VerifyFinal(CK_SESSION_HANDLE session, unsigned char *signature,
    unsigned long signature_len)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_VerifyFinal, &rv))
		return rv;
	return fault_real->C_VerifyFinal(session, signature, signature_len);
}

static CK_RV
fault_C_VerifyRecoverInit(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism,
    CK_OBJECT_HANDLE key)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_VerifyRecoverInit, &rv))
		return rv;
	return fault_real->C_VerifyRecoverInit(session, mechanism, key);
}

static CK_RV
fault_C_VerifyRecover(CK_SESSION_HANDLE session, unsigned char *signature,
    unsigned long signature_len, unsigned char *data, unsigned long *data_len)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_VerifyRecover, &rv))
		return rv;
	return fault_real->C_VerifyRecover(session, signature, signature_len, data,
	    data_len);
}

static CK_RV
fault_C_DigestEncryptUpdate(CK_SESSION_HANDLE session, unsigned char *part,
    unsigned long part_len, unsigned char *encrypted_part,
    unsigned long *encrypted_part_len)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_DigestEncryptUpdate, &rv))
		return rv;
	return fault_real->C_DigestEncryptUpdate(session, part, part_len, encrypted_part,
	    encrypted_part_len);
}

static CK_RV
fault_C_DecryptDigestUpdate(CK_SESSION_HANDLE session, unsigned char *encrypted_part,
    unsigned long encrypted_part_len, unsigned char *part, unsigned long *part_len)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_DecryptDigestUpdate, &rv))
		return rv;
	return fault_real->C_DecryptDigestUpdate(session, encrypted_part, encrypted_part_len,
	    part, part_len);
}

static CK_RV
fault_C_SignEncryptUpdate(CK_SESSION_HANDLE session, unsigned char *part,
    unsigned long part_len, unsigned char *encrypted_part,
    unsigned long *encrypted_part_len)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_SignEncryptUpdate, &rv))
		return rv;
	return fault_real->C_SignEncryptUpdate(session, part, part_len, encrypted_part,
	    encrypted_part_len);
}

static CK_RV
fault_C_DecryptVerifyUpdate(CK_SESSION_HANDLE session, unsigned char *encrypted_part,
    unsigned long encrypted_part_len, unsigned char *part, unsigned long *part_len)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_DecryptVerifyUpdate, &rv))
		return rv;
	return fault_real->C_DecryptVerifyUpdate(session, encrypted_part, encrypted_part_len,
	    part, part_len);
}

static CK_RV
fault_C_GenerateKey(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism,
    CK_ATTRIBUTE *templ, unsigned long count, CK_OBJECT_HANDLE *key)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_GenerateKey, &rv))
		return rv;
	if (mechanism != NULL && fault_listed("P11_FAULT_HIDE_MECHS", mechanism->mechanism))
		return CKR_MECHANISM_INVALID;
	return fault_real->C_GenerateKey(session, mechanism, templ, count, key);
}

/* What P11_FAULT_NEEDS names: the system calls of modules that need more than SoftHSM2. */
static void
fault_needs(void)
{
	const char		*needs = getenv("P11_FAULT_NEEDS");
	struct sockaddr_in	 sin;
	void			*p;
	int			 id, fd;

	if (needs == NULL)
		return;
	if (strstr(needs, "shm") != NULL &&
	    (id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600)) != -1) {
		if ((p = shmat(id, NULL, 0)) != (void *)-1)
			(void)shmdt(p);
		(void)shmctl(id, IPC_RMID, NULL);
	}
	if (strstr(needs, "inet") != NULL &&
	    (fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) != -1) {
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = htons(9);	/* discard: refused, and that is enough */
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		(void)connect(fd, (struct sockaddr *)&sin, sizeof(sin));
		(void)close(fd);
	}
}

static CK_RV
fault_C_GenerateKeyPair(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism,
    CK_ATTRIBUTE *public_key_template, unsigned long public_key_attribute_count,
    CK_ATTRIBUTE *private_key_template, unsigned long private_key_attribute_count,
    CK_OBJECT_HANDLE *public_key, CK_OBJECT_HANDLE *private_key)
{
	CK_RV	rv, real;
	int	fail;

	if ((fail = fault_enter(FAULT_C_GenerateKeyPair, &rv)) == 1)
		return rv;
	if (mechanism != NULL && (fault_listed("P11_FAULT_HIDE_MECHS", mechanism->mechanism) ||
	    fault_listed("P11_FAULT_REFUSE_GEN", mechanism->mechanism)))
		return CKR_MECHANISM_INVALID;
	if (fault_template_listed("P11_FAULT_REFUSE_PUB", public_key_template,
	    public_key_attribute_count))
		return CKR_ATTRIBUTE_TYPE_INVALID;
	if (fault_template_listed("P11_FAULT_REFUSE_PRIV", private_key_template,
	    private_key_attribute_count))
		return CKR_ATTRIBUTE_VALUE_INVALID;
	fault_needs();
	real = fault_real->C_GenerateKeyPair(session, mechanism, public_key_template,
	    public_key_attribute_count, private_key_template, private_key_attribute_count,
	    public_key, private_key);
	return fail == 2 ? rv : real;
}

static CK_RV
fault_C_WrapKey(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism,
    CK_OBJECT_HANDLE wrapping_key, CK_OBJECT_HANDLE key, unsigned char *wrapped_key,
    unsigned long *wrapped_key_len)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_WrapKey, &rv))
		return rv;
	return fault_real->C_WrapKey(session, mechanism, wrapping_key, key, wrapped_key,
	    wrapped_key_len);
}

static CK_RV
fault_C_UnwrapKey(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism,
    CK_OBJECT_HANDLE unwrapping_key, unsigned char *wrapped_key,
    unsigned long wrapped_key_len, CK_ATTRIBUTE *templ,
    unsigned long attribute_count, CK_OBJECT_HANDLE *key)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_UnwrapKey, &rv))
		return rv;
	return fault_real->C_UnwrapKey(session, mechanism, unwrapping_key, wrapped_key,
	    wrapped_key_len, templ, attribute_count, key);
}

static CK_RV
fault_C_DeriveKey(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism,
    CK_OBJECT_HANDLE base_key, CK_ATTRIBUTE *templ, unsigned long attribute_count,
    CK_OBJECT_HANDLE *key)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_DeriveKey, &rv))
		return rv;
	return fault_real->C_DeriveKey(session, mechanism, base_key, templ, attribute_count,
	    key);
}

static CK_RV
fault_C_SeedRandom(CK_SESSION_HANDLE session, unsigned char *seed, unsigned long seed_len)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_SeedRandom, &rv))
		return rv;
	return fault_real->C_SeedRandom(session, seed, seed_len);
}

static CK_RV
fault_C_GenerateRandom(CK_SESSION_HANDLE session, unsigned char *random_data,
    unsigned long random_len)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_GenerateRandom, &rv))
		return rv;
	return fault_real->C_GenerateRandom(session, random_data, random_len);
}

static CK_RV
fault_C_GetFunctionStatus(CK_SESSION_HANDLE session)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_GetFunctionStatus, &rv))
		return rv;
	return fault_real->C_GetFunctionStatus(session);
}

static CK_RV
fault_C_CancelFunction(CK_SESSION_HANDLE session)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_CancelFunction, &rv))
		return rv;
	return fault_real->C_CancelFunction(session);
}

static CK_RV
fault_C_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID *slot, void *reserved)
{
	CK_RV	rv;

	if (fault_enter(FAULT_C_WaitForSlotEvent, &rv))
		return rv;
	return fault_real->C_WaitForSlotEvent(flags, slot, reserved);
}

static CK_FUNCTION_LIST fault_list = {
	.version = { CRYPTOKI_VERSION_MAJOR, CRYPTOKI_VERSION_MINOR },
	.C_Initialize = fault_C_Initialize,
	.C_Finalize = fault_C_Finalize,
	.C_GetInfo = fault_C_GetInfo,
	.C_GetFunctionList = C_GetFunctionList,
	.C_GetSlotList = fault_C_GetSlotList,
	.C_GetSlotInfo = fault_C_GetSlotInfo,
	.C_GetTokenInfo = fault_C_GetTokenInfo,
	.C_GetMechanismList = fault_C_GetMechanismList,
	.C_GetMechanismInfo = fault_C_GetMechanismInfo,
	.C_InitToken = fault_C_InitToken,
	.C_InitPIN = fault_C_InitPIN,
	.C_SetPIN = fault_C_SetPIN,
	.C_OpenSession = fault_C_OpenSession,
	.C_CloseSession = fault_C_CloseSession,
	.C_CloseAllSessions = fault_C_CloseAllSessions,
	.C_GetSessionInfo = fault_C_GetSessionInfo,
	.C_GetOperationState = fault_C_GetOperationState,
	.C_SetOperationState = fault_C_SetOperationState,
	.C_Login = fault_C_Login,
	.C_Logout = fault_C_Logout,
	.C_CreateObject = fault_C_CreateObject,
	.C_CopyObject = fault_C_CopyObject,
	.C_DestroyObject = fault_C_DestroyObject,
	.C_GetObjectSize = fault_C_GetObjectSize,
	.C_GetAttributeValue = fault_C_GetAttributeValue,
	.C_SetAttributeValue = fault_C_SetAttributeValue,
	.C_FindObjectsInit = fault_C_FindObjectsInit,
	.C_FindObjects = fault_C_FindObjects,
	.C_FindObjectsFinal = fault_C_FindObjectsFinal,
	.C_EncryptInit = fault_C_EncryptInit,
	.C_Encrypt = fault_C_Encrypt,
	.C_EncryptUpdate = fault_C_EncryptUpdate,
	.C_EncryptFinal = fault_C_EncryptFinal,
	.C_DecryptInit = fault_C_DecryptInit,
	.C_Decrypt = fault_C_Decrypt,
	.C_DecryptUpdate = fault_C_DecryptUpdate,
	.C_DecryptFinal = fault_C_DecryptFinal,
	.C_DigestInit = fault_C_DigestInit,
	.C_Digest = fault_C_Digest,
	.C_DigestUpdate = fault_C_DigestUpdate,
	.C_DigestKey = fault_C_DigestKey,
	.C_DigestFinal = fault_C_DigestFinal,
	.C_SignInit = fault_C_SignInit,
	.C_Sign = fault_C_Sign,
	.C_SignUpdate = fault_C_SignUpdate,
	.C_SignFinal = fault_C_SignFinal,
	.C_SignRecoverInit = fault_C_SignRecoverInit,
	.C_SignRecover = fault_C_SignRecover,
	.C_VerifyInit = fault_C_VerifyInit,
	.C_Verify = fault_C_Verify,
	.C_VerifyUpdate = fault_C_VerifyUpdate,
	.C_VerifyFinal = fault_C_VerifyFinal,
	.C_VerifyRecoverInit = fault_C_VerifyRecoverInit,
	.C_VerifyRecover = fault_C_VerifyRecover,
	.C_DigestEncryptUpdate = fault_C_DigestEncryptUpdate,
	.C_DecryptDigestUpdate = fault_C_DecryptDigestUpdate,
	.C_SignEncryptUpdate = fault_C_SignEncryptUpdate,
	.C_DecryptVerifyUpdate = fault_C_DecryptVerifyUpdate,
	.C_GenerateKey = fault_C_GenerateKey,
	.C_GenerateKeyPair = fault_C_GenerateKeyPair,
	.C_WrapKey = fault_C_WrapKey,
	.C_UnwrapKey = fault_C_UnwrapKey,
	.C_DeriveKey = fault_C_DeriveKey,
	.C_SeedRandom = fault_C_SeedRandom,
	.C_GenerateRandom = fault_C_GenerateRandom,
	.C_GetFunctionStatus = fault_C_GetFunctionStatus,
	.C_CancelFunction = fault_C_CancelFunction,
	.C_WaitForSlotEvent = fault_C_WaitForSlotEvent,
};

/* Load the real module once per process. */
static void
fault_load(void)
{
	CK_C_GetFunctionList	 getfl;
	const char		*path = getenv("P11_FAULT_MODULE");

	if (path == NULL || *path == '\0')
		path = FAULT_DEFAULT_MODULE;
	if ((fault_dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		fault_log("p11-fault: cannot load %s: %s", path, dlerror());
		return;
	}
	if ((getfl = (CK_C_GetFunctionList)dlsym(fault_dl, "C_GetFunctionList")) == NULL ||
	    (fault_load_rv = getfl(&fault_real)) != CKR_OK || fault_real == NULL) {
		fault_log("p11-fault: %s has no usable C_GetFunctionList", path);
		fault_real = NULL;
		fault_load_rv = CKR_GENERAL_ERROR;
		dlclose(fault_dl);
		fault_dl = NULL;
	}
}

CK_RV
C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
	if (list == NULL)
		return CKR_ARGUMENTS_BAD;
	pthread_once(&fault_once, fault_load);
	if (fault_real == NULL)
		return fault_load_rv;
	*list = &fault_list;
	return CKR_OK;
}

static void fault_unload(void) __attribute__((__destructor__));

/* The process unloads us (dlclose or exit): let the real module go too. */
static void
fault_unload(void)
{
	if (fault_dl != NULL)
		dlclose(fault_dl);
	fault_dl = NULL;
	fault_real = NULL;
}
