/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * keycustody-pkcs11.c: keycustody-pkcs11.so, a PKCS#11 v2.40 module with one slot and one
 * token ("keycustody") that presents the keys this peer may sign with (SignerKeysRequest)
 * and signs by asking keycustodyd (SignRequest). Owns the function list, sessions, the
 * lock, fork detection and the connections to the daemon. No PIN, no token files, no
 * output: a module never prints, logs or exits in its host process.
 */
#include "config.h"

#include <sys/queue.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#include "kc-err.h"
#include "kc-proto.h"
#include "keycustody.h"
#include "p11-obj.h"
#include "p11-sign.h"

#define KCP_SLOT_ID		1
#define KCP_POOL_MAX		8	/* idle connections kept (one per signing thread) */
#define KCP_TIMEOUT_MS		10000
#define KCP_REFRESH_MS		1000	/* the object list is at most this old */
#define KCP_MANUFACTURER	"keycustody"

struct kcp_conn {
	struct kcc	*c;
	dev_t		 dev;
	ino_t		 ino;
};

struct kcp_session {
	TAILQ_ENTRY(kcp_session) entry;
	CK_SESSION_HANDLE	 handle;
	CK_FLAGS		 flags;
	int			 finding;
	CK_OBJECT_HANDLE	*found;
	size_t			 nfound, foundpos;
	int			 signing;
	struct p11_sign		 sign;
	uint8_t			 key_id[P11_KEY_ID_MAX];
	size_t			 key_id_len;
};

/* The module's state; every field under lock, which is never held across daemon I/O. */
static struct {
	pthread_mutex_t			 lock;
	int				 initialized;
	pid_t				 pid;
	uid_t				 euid;	/* the daemon knows us by it (SO_PEERCRED) */
	unsigned long			 gen;	/* bumped on fork, uid change, finalize */
	struct p11_objset		*objs;
	int64_t				 objs_ms;	/* when objs was fetched; 0: stale */
	struct kcp_conn			 idle[KCP_POOL_MAX];
	size_t				 nidle;
	TAILQ_HEAD(, kcp_session)	 sessions;
	CK_SESSION_HANDLE		 next_session;
} kcp = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.sessions = TAILQ_HEAD_INITIALIZER(kcp.sessions),
};

static pthread_once_t	 kcp_atfork_once = PTHREAD_ONCE_INIT;
static CK_FUNCTION_LIST	 kcp_function_list;

static int64_t
kcp_now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Space-pad src into a fixed PKCS#11 string field. */
static void
kcp_pad(unsigned char *dst, size_t len, const char *src)
{
	size_t	 n = strlen(src);

	memset(dst, ' ', len);
	memcpy(dst, src, n < len ? n : len);
}

/*
 * fork() while another thread holds the lock would leave the child's copy locked forever:
 * take it around fork, as PKCS#11 modules with OS locking do. glibc drops these handlers
 * when the module is unloaded.
 */
static void
kcp_atfork_prepare(void)
{
	pthread_mutex_lock(&kcp.lock);
}

static void
kcp_atfork_release(void)
{
	pthread_mutex_unlock(&kcp.lock);
}

static void
kcp_atfork_register(void)
{
	pthread_atfork(kcp_atfork_prepare, kcp_atfork_release, kcp_atfork_release);
}

/* Close a connection, or, when its descriptor is no longer its socket, only forget it. */
static void
kcp_conn_drop(struct kcp_conn *kc)
{
	struct stat	 st;

	if (fstat(kcc_fd(kc->c), &st) == 0 && st.st_dev == kc->dev && st.st_ino == kc->ino)
		kcc_close(kc->c);
	else
		kcc_abandon(kc->c);
	kc->c = NULL;
}

static void
kcp_drop_idle_inlock(void)
{
	while (kcp.nidle > 0)
		kcp_conn_drop(&kcp.idle[--kcp.nidle]);
}

/*
 * In a child of fork() the parent's connections are the parent's: a request on one would
 * interleave with the parent's. Forget them (closing our copy sends nothing) and make new
 * ones; the objects are kept, but fetched anew, since the child may run as another user.
 * The same after a change of effective uid (a server that loads its keys as root, then
 * drops to its user): the daemon knows a connection by the uid that made it, so new ones
 * must show the new uid.
 */
static void
kcp_check_fork_inlock(void)
{
	pid_t	 pid = getpid();
	uid_t	 euid = geteuid();

	if (pid == kcp.pid && euid == kcp.euid)
		return;
	kcp.pid = pid;
	kcp.euid = euid;
	kcp.gen++;
	kcp_drop_idle_inlock();
	kcp.objs_ms = 0;
}

/* Lock and check that the module is initialized; CKR_OK means the caller must unlock. */
static CK_RV
kcp_enter(void)
{
	pthread_mutex_lock(&kcp.lock);
	if (!kcp.initialized) {
		pthread_mutex_unlock(&kcp.lock);
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	}
	kcp_check_fork_inlock();
	return CKR_OK;
}

static void
kcp_leave(void)
{
	pthread_mutex_unlock(&kcp.lock);
}

static struct kcp_session *
kcp_session_find_inlock(CK_SESSION_HANDLE h)
{
	struct kcp_session	*s;

	TAILQ_FOREACH(s, &kcp.sessions, entry)
		if (s->handle == h)
			return s;
	return NULL;
}

/* End the session's find and sign operations. */
static void
kcp_session_reset(struct kcp_session *s)
{
	free(s->found);
	s->found = NULL;
	s->nfound = s->foundpos = 0;
	s->finding = 0;
	if (s->signing)
		p11_sign_uninit(&s->sign);
	s->signing = 0;
}

static void
kcp_session_free_inlock(struct kcp_session *s)
{
	TAILQ_REMOVE(&kcp.sessions, s, entry);
	kcp_session_reset(s);
	free(s);
}

/* Lock, and find session h: CKR_OK means the caller must unlock. */
static CK_RV
kcp_enter_session(CK_SESSION_HANDLE h, struct kcp_session **sp)
{
	CK_RV	 rv;

	if ((rv = kcp_enter()) != CKR_OK)
		return rv;
	if ((*sp = kcp_session_find_inlock(h)) == NULL) {
		kcp_leave();
		return CKR_SESSION_HANDLE_INVALID;
	}
	return CKR_OK;
}

/* Free everything but the lock; the module is no longer initialized. */
static void
kcp_reset_inlock(void)
{
	while (!TAILQ_EMPTY(&kcp.sessions))
		kcp_session_free_inlock(TAILQ_FIRST(&kcp.sessions));
	kcp_drop_idle_inlock();
	p11_objset_free(kcp.objs);
	kcp.objs = NULL;
	kcp.objs_ms = 0;
	kcp.gen++;
	kcp.initialized = 0;
}

/* --- the daemon --- */

static int
kcp_conn_open(struct kcp_conn *kc)
{
	struct stat	 st;
	int		 r;

	/* NULL: $KEYCUSTODY_SOCKET, else keycustodyctl's default. The cause is not shown. */
	if ((r = kcc_open(NULL, &kc->c, NULL)) != 0)
		return r;
	if (fstat(kcc_fd(kc->c), &st) == -1) {
		kcc_close(kc->c);
		kc->c = NULL;
		return KC_ERR_IO;
	}
	kc->dev = st.st_dev;
	kc->ino = st.st_ino;
	return 0;
}

/*
 * One request and its response, without the lock. An idle connection is reused; if the
 * daemon went away under it (a restart), the request is sent once more on a new one.
 * @param respp caller frees with keycustody__response__free_unpacked()
 */
static int
kcp_call(Keycustody__Request *req, Keycustody__Response **respp)
{
	struct kcp_conn	 kc = { NULL, 0, 0 };
	unsigned long	 gen;
	int		 r, reused = 0;

	pthread_mutex_lock(&kcp.lock);
	kcp_check_fork_inlock();
	gen = kcp.gen;
	if (kcp.nidle > 0) {
		kc = kcp.idle[--kcp.nidle];
		reused = 1;
	}
	pthread_mutex_unlock(&kcp.lock);

	for (;;) {
		if (kc.c == NULL && (r = kcp_conn_open(&kc)) != 0)
			return r;
		if ((r = kcc_call(kc.c, req, KCP_TIMEOUT_MS, respp)) == 0)
			break;
		kcc_close(kc.c);
		kc.c = NULL;
		if (!reused || (r != KC_ERR_CLOSED && r != KC_ERR_IO))
			return r;
		reused = 0;
	}

	pthread_mutex_lock(&kcp.lock);
	if (gen == kcp.gen && kcp.nidle < KCP_POOL_MAX) {
		kcp.idle[kcp.nidle++] = kc;
		kc.c = NULL;
	}
	pthread_mutex_unlock(&kcp.lock);
	if (kc.c != NULL)
		kcp_conn_drop(&kc);
	return 0;
}

/*
 * Fetch the object list, unless the one we have is younger than KCP_REFRESH_MS. A peer
 * that is not a signer (PERMISSION_DENIED) has no objects.
 */
static CK_RV
kcp_refresh(void)
{
	Keycustody__Request		 req = KEYCUSTODY__REQUEST__INIT;
	Keycustody__SignerKeysRequest	 skr = KEYCUSTODY__SIGNER_KEYS_REQUEST__INIT;
	Keycustody__SignerKeysResponse	 none = KEYCUSTODY__SIGNER_KEYS_RESPONSE__INIT;
	Keycustody__Response		*resp = NULL;
	const Keycustody__SignerKeysResponse *keys;
	struct p11_objset		*set = NULL;
	int64_t				 now = kcp_now_ms();
	CK_RV				 rv = CKR_DEVICE_ERROR;
	int				 fresh;

	pthread_mutex_lock(&kcp.lock);
	fresh = kcp.objs != NULL && kcp.objs_ms != 0 && now - kcp.objs_ms < KCP_REFRESH_MS;
	pthread_mutex_unlock(&kcp.lock);
	if (fresh)
		return CKR_OK;

	req.body_case = KEYCUSTODY__REQUEST__BODY_SIGNER_KEYS;
	req.signer_keys = &skr;
	if (kcp_call(&req, &resp) != 0)
		goto out;
	if (resp->error != NULL) {
		if (resp->error->status != KEYCUSTODY__STATUS__PERMISSION_DENIED)
			goto out;
		keys = &none;
	} else if (resp->body_case == KEYCUSTODY__RESPONSE__BODY_SIGNER_KEYS &&
	    resp->signer_keys != NULL)
		keys = resp->signer_keys;
	else
		goto out;
	if (p11_objset_new(keys, &set) != 0) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	pthread_mutex_lock(&kcp.lock);
	p11_objset_free(kcp.objs);
	kcp.objs = set;
	kcp.objs_ms = now == 0 ? 1 : now;
	pthread_mutex_unlock(&kcp.lock);
	rv = CKR_OK;
 out:
	if (resp != NULL)
		keycustody__response__free_unpacked(resp, NULL);
	return rv;
}

/* The daemon's refusal of a SignRequest as a CKR. */
static CK_RV
kcp_sign_error(const Keycustody__Error *e)
{
	switch (e->status) {
	case KEYCUSTODY__STATUS__PERMISSION_DENIED:
	case KEYCUSTODY__STATUS__NOT_FOUND:
		/* Out of scope now (a hostname deleted): the key is gone for us. */
		pthread_mutex_lock(&kcp.lock);
		kcp.objs_ms = 0;
		pthread_mutex_unlock(&kcp.lock);
		return CKR_KEY_HANDLE_INVALID;
	case KEYCUSTODY__STATUS__INVALID_ARGUMENT:
		return CKR_DATA_INVALID;
	case KEYCUSTODY__STATUS__RATE_LIMITED:
		return CKR_FUNCTION_FAILED;
	default:
		return CKR_DEVICE_ERROR;
	}
}

/* Sign in with the daemon; sig has sig_len bytes. */
static CK_RV
kcp_sign_call(const uint8_t *key_id, size_t key_id_len, const struct p11_sign *op,
    const uint8_t *in, size_t inlen, uint8_t *sig)
{
	Keycustody__Request	 req = KEYCUSTODY__REQUEST__INIT;
	Keycustody__SignRequest	 sr = KEYCUSTODY__SIGN_REQUEST__INIT;
	Keycustody__Response	*resp = NULL;
	const ProtobufCBinaryData *out;
	CK_RV			 rv = CKR_DEVICE_ERROR;

	sr.key_id.data = (uint8_t *)key_id;
	sr.key_id.len = key_id_len;
	sr.mechanism = op->wire_mech;
	sr.data.data = (uint8_t *)in;
	sr.data.len = inlen;
	if (op->wire_mech == KEYCUSTODY__SIGN_MECHANISM__SIGN_RSA_PKCS_PSS) {
		sr.has_pss_hash = sr.has_pss_mgf_hash = sr.has_pss_salt_len = 1;
		sr.pss_hash = op->pss_hash;
		sr.pss_mgf_hash = op->pss_mgf_hash;
		sr.pss_salt_len = (uint32_t)op->pss_salt_len;
	}
	req.body_case = KEYCUSTODY__REQUEST__BODY_SIGN;
	req.sign = &sr;
	if (kcp_call(&req, &resp) != 0)
		goto out;
	if (resp->error != NULL) {
		rv = kcp_sign_error(resp->error);
		goto out;
	}
	if (resp->body_case != KEYCUSTODY__RESPONSE__BODY_SIGN || resp->sign == NULL)
		goto out;
	out = &resp->sign->signature;
	if (out->len == op->sig_len)
		memcpy(sig, out->data, out->len);
	else if (op->wire_mech != KEYCUSTODY__SIGN_MECHANISM__SIGN_ECDSA &&
	    out->len > 0 && out->len < op->sig_len) {
		/* An RSA signature is an integer below the modulus: pad it to its length. */
		memset(sig, 0, op->sig_len - out->len);
		memcpy(sig + op->sig_len - out->len, out->data, out->len);
	} else
		goto out;
	rv = CKR_OK;
 out:
	if (resp != NULL)
		keycustody__response__free_unpacked(resp, NULL);
	return rv;
}

/* --- general purpose, slot and token --- */

static CK_RV
kcp_C_Initialize(CK_VOID_PTR init_args)
{
	CK_C_INITIALIZE_ARGS	*a = init_args;
	int			 fns;

	if (a != NULL) {
		if (a->pReserved != NULL)
			return CKR_ARGUMENTS_BAD;
		fns = (a->CreateMutex != NULL) + (a->DestroyMutex != NULL) +
		    (a->LockMutex != NULL) + (a->UnlockMutex != NULL);
		if (fns != 0 && fns != 4)
			return CKR_ARGUMENTS_BAD;
		/* Only our own (pthread) locking: with the caller's only, we cannot lock. */
		if (fns == 4 && !(a->flags & CKF_OS_LOCKING_OK))
			return CKR_CANT_LOCK;
	}
	pthread_once(&kcp_atfork_once, kcp_atfork_register);
	pthread_mutex_lock(&kcp.lock);
	if (kcp.initialized && kcp.pid == getpid()) {
		pthread_mutex_unlock(&kcp.lock);
		return CKR_CRYPTOKI_ALREADY_INITIALIZED;
	}
	/* In a child of fork(), C_Initialize starts afresh (PKCS#11 v2.40 section 6.7.1). */
	if (kcp.initialized) {
		kcp.pid = getpid();
		kcp_reset_inlock();
	}
	kcp.initialized = 1;
	kcp.pid = getpid();
	kcp.euid = geteuid();
	kcp.next_session = 1;
	pthread_mutex_unlock(&kcp.lock);
	return CKR_OK;
}

static CK_RV
kcp_C_Finalize(CK_VOID_PTR reserved)
{
	CK_RV	 rv;

	if (reserved != NULL)
		return CKR_ARGUMENTS_BAD;
	if ((rv = kcp_enter()) != CKR_OK)
		return rv;
	kcp_reset_inlock();
	kcp_leave();
	return CKR_OK;
}

static CK_RV
kcp_C_GetInfo(CK_INFO_PTR info)
{
	CK_RV	 rv;

	if (info == NULL)
		return CKR_ARGUMENTS_BAD;
	if ((rv = kcp_enter()) != CKR_OK)
		return rv;
	kcp_leave();
	memset(info, 0, sizeof(*info));
	info->cryptokiVersion.major = 2;
	info->cryptokiVersion.minor = 40;
	kcp_pad(info->manufacturerID, sizeof(info->manufacturerID), KCP_MANUFACTURER);
	kcp_pad(info->libraryDescription, sizeof(info->libraryDescription),
	    "keycustodyd signer");
	info->libraryVersion.major = 0;
	info->libraryVersion.minor = 1;
	return CKR_OK;
}

static CK_RV
kcp_C_GetSlotList(CK_BBOOL token_present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count)
{
	CK_RV	 rv = CKR_OK;

	if (count == NULL)
		return CKR_ARGUMENTS_BAD;
	if ((rv = kcp_enter()) != CKR_OK)
		return rv;
	kcp_leave();
	if (list != NULL && *count < 1)
		rv = CKR_BUFFER_TOO_SMALL;
	else if (list != NULL)
		list[0] = KCP_SLOT_ID;
	*count = 1;
	return rv;
}

static CK_RV
kcp_C_GetSlotInfo(CK_SLOT_ID slot, CK_SLOT_INFO_PTR info)
{
	CK_RV	 rv;

	if (info == NULL)
		return CKR_ARGUMENTS_BAD;
	if ((rv = kcp_enter()) != CKR_OK)
		return rv;
	kcp_leave();
	if (slot != KCP_SLOT_ID)
		return CKR_SLOT_ID_INVALID;
	memset(info, 0, sizeof(*info));
	kcp_pad(info->slotDescription, sizeof(info->slotDescription), "keycustodyd");
	kcp_pad(info->manufacturerID, sizeof(info->manufacturerID), KCP_MANUFACTURER);
	info->flags = CKF_TOKEN_PRESENT;
	return CKR_OK;
}

static CK_RV
kcp_C_GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
	CK_RV	 rv;

	if (info == NULL)
		return CKR_ARGUMENTS_BAD;
	if ((rv = kcp_enter()) != CKR_OK)
		return rv;
	kcp_leave();
	if (slot != KCP_SLOT_ID)
		return CKR_SLOT_ID_INVALID;
	memset(info, 0, sizeof(*info));
	kcp_pad(info->label, sizeof(info->label), KC_MODULE_TOKEN_LABEL);
	kcp_pad(info->manufacturerID, sizeof(info->manufacturerID), KCP_MANUFACTURER);
	kcp_pad(info->model, sizeof(info->model), "keycustodyd");
	kcp_pad(info->serialNumber, sizeof(info->serialNumber), "1");
	kcp_pad(info->utcTime, sizeof(info->utcTime), "");
	/* No CKF_LOGIN_REQUIRED: the daemon knows the peer by its uid, not by a PIN. */
	info->flags = CKF_TOKEN_INITIALIZED | CKF_WRITE_PROTECTED;
	info->ulMaxSessionCount = CK_EFFECTIVELY_INFINITE;
	info->ulSessionCount = CK_UNAVAILABLE_INFORMATION;
	info->ulMaxRwSessionCount = 0;
	info->ulRwSessionCount = 0;
	info->ulTotalPublicMemory = CK_UNAVAILABLE_INFORMATION;
	info->ulFreePublicMemory = CK_UNAVAILABLE_INFORMATION;
	info->ulTotalPrivateMemory = CK_UNAVAILABLE_INFORMATION;
	info->ulFreePrivateMemory = CK_UNAVAILABLE_INFORMATION;
	info->hardwareVersion.major = 0;
	info->firmwareVersion.major = 0;
	return CKR_OK;
}

static CK_RV
kcp_C_GetMechanismList(CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list, CK_ULONG_PTR count)
{
	CK_RV	 rv = CKR_OK;
	size_t	 i;

	if (count == NULL)
		return CKR_ARGUMENTS_BAD;
	if ((rv = kcp_enter()) != CKR_OK)
		return rv;
	kcp_leave();
	if (slot != KCP_SLOT_ID)
		return CKR_SLOT_ID_INVALID;
	if (list != NULL && *count < p11_nmechs)
		rv = CKR_BUFFER_TOO_SMALL;
	else if (list != NULL)
		for (i = 0; i < p11_nmechs; i++)
			list[i] = p11_mechs[i].mech;
	*count = p11_nmechs;
	return rv;
}

static CK_RV
kcp_C_GetMechanismInfo(CK_SLOT_ID slot, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR info)
{
	const struct p11_mech_info	*mi;
	CK_RV				 rv;

	if (info == NULL)
		return CKR_ARGUMENTS_BAD;
	if ((rv = kcp_enter()) != CKR_OK)
		return rv;
	kcp_leave();
	if (slot != KCP_SLOT_ID)
		return CKR_SLOT_ID_INVALID;
	if ((mi = p11_mech_find(type)) == NULL)
		return CKR_MECHANISM_INVALID;
	info->ulMinKeySize = mi->min_bits;
	info->ulMaxKeySize = mi->max_bits;
	info->flags = mi->flags;
	return CKR_OK;
}

/* --- sessions --- */

static CK_RV
kcp_C_OpenSession(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify,
    CK_SESSION_HANDLE_PTR hp)
{
	struct kcp_session	*s;
	CK_RV			 rv;

	if (hp == NULL)
		return CKR_ARGUMENTS_BAD;
	if ((rv = kcp_enter()) != CKR_OK)
		return rv;
	if (slot != KCP_SLOT_ID)
		rv = CKR_SLOT_ID_INVALID;
	else if (!(flags & CKF_SERIAL_SESSION))
		rv = CKR_SESSION_PARALLEL_NOT_SUPPORTED;
	else if (flags & CKF_RW_SESSION)
		rv = CKR_TOKEN_WRITE_PROTECTED;
	else if ((s = calloc(1, sizeof(*s))) == NULL)
		rv = CKR_HOST_MEMORY;
	else {
		s->handle = kcp.next_session++;
		if (kcp.next_session == 0)
			kcp.next_session = 1;
		s->flags = flags;
		TAILQ_INSERT_TAIL(&kcp.sessions, s, entry);
		*hp = s->handle;
	}
	kcp_leave();
	return rv;
}

static CK_RV
kcp_C_CloseSession(CK_SESSION_HANDLE h)
{
	struct kcp_session	*s;
	CK_RV			 rv;

	if ((rv = kcp_enter_session(h, &s)) != CKR_OK)
		return rv;
	kcp_session_free_inlock(s);
	kcp_leave();
	return CKR_OK;
}

static CK_RV
kcp_C_CloseAllSessions(CK_SLOT_ID slot)
{
	CK_RV	 rv;

	if ((rv = kcp_enter()) != CKR_OK)
		return rv;
	if (slot != KCP_SLOT_ID)
		rv = CKR_SLOT_ID_INVALID;
	else
		while (!TAILQ_EMPTY(&kcp.sessions))
			kcp_session_free_inlock(TAILQ_FIRST(&kcp.sessions));
	kcp_leave();
	return rv;
}

static CK_RV
kcp_C_GetSessionInfo(CK_SESSION_HANDLE h, CK_SESSION_INFO_PTR info)
{
	struct kcp_session	*s;
	CK_RV			 rv;

	if (info == NULL)
		return CKR_ARGUMENTS_BAD;
	if ((rv = kcp_enter_session(h, &s)) != CKR_OK)
		return rv;
	info->slotID = KCP_SLOT_ID;
	/* Always as if logged in: the keys are usable without a login. */
	info->state = CKS_RO_USER_FUNCTIONS;
	info->flags = s->flags;
	info->ulDeviceError = 0;
	kcp_leave();
	return CKR_OK;
}

/*
 * No PIN here: the daemon knows the caller by its uid. A login is accepted, as on a token
 * that needs none, so that tools which always log in work; the PIN is never looked at.
 */
static CK_RV
kcp_C_Login(CK_SESSION_HANDLE h, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len)
{
	struct kcp_session	*s;
	CK_RV			 rv;

	if ((rv = kcp_enter_session(h, &s)) != CKR_OK)
		return rv;
	kcp_leave();
	if (user != CKU_USER && user != CKU_CONTEXT_SPECIFIC)
		return CKR_USER_TYPE_INVALID;
	return CKR_OK;
}

static CK_RV
kcp_C_Logout(CK_SESSION_HANDLE h)
{
	struct kcp_session	*s;
	CK_RV			 rv;

	if ((rv = kcp_enter_session(h, &s)) != CKR_OK)
		return rv;
	kcp_leave();
	return CKR_OK;
}

/* --- objects --- */

static CK_RV
kcp_C_GetAttributeValue(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE oh, CK_ATTRIBUTE_PTR tmpl,
    CK_ULONG n)
{
	struct kcp_session	*s;
	const struct p11_obj	*obj;
	CK_RV			 rv;

	if (tmpl == NULL && n > 0)
		return CKR_ARGUMENTS_BAD;
	if ((rv = kcp_enter_session(h, &s)) != CKR_OK)
		return rv;
	if ((obj = p11_objset_find(kcp.objs, oh)) == NULL)
		rv = CKR_OBJECT_HANDLE_INVALID;
	else
		rv = p11_obj_get_attrs(obj, tmpl, n);
	kcp_leave();
	return rv;
}

static CK_RV
kcp_C_FindObjectsInit(CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR tmpl, CK_ULONG n)
{
	struct kcp_session	*s;
	size_t			 i;
	CK_RV			 rv;

	if (tmpl == NULL && n > 0)
		return CKR_ARGUMENTS_BAD;
	if ((rv = kcp_enter_session(h, &s)) != CKR_OK)
		return rv;
	rv = s->finding ? CKR_OPERATION_ACTIVE : CKR_OK;
	kcp_leave();
	/* New hostnames appear, and deleted ones go, within KCP_REFRESH_MS. */
	if (rv != CKR_OK || (rv = kcp_refresh()) != CKR_OK)
		return rv;

	if ((rv = kcp_enter_session(h, &s)) != CKR_OK)
		return rv;
	if (s->finding)
		rv = CKR_OPERATION_ACTIVE;
	else if (kcp.objs != NULL && kcp.objs->n > 0 &&
	    (s->found = calloc(kcp.objs->n, sizeof(*s->found))) == NULL)
		rv = CKR_HOST_MEMORY;
	else {
		s->nfound = s->foundpos = 0;
		for (i = 0; kcp.objs != NULL && i < kcp.objs->n; i++)
			if (p11_obj_match(&kcp.objs->objs[i], tmpl, n))
				s->found[s->nfound++] = kcp.objs->objs[i].handle;
		s->finding = 1;
	}
	kcp_leave();
	return rv;
}

static CK_RV
kcp_C_FindObjects(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE_PTR list, CK_ULONG max,
    CK_ULONG_PTR count)
{
	struct kcp_session	*s;
	CK_RV			 rv;

	if (list == NULL || count == NULL)
		return CKR_ARGUMENTS_BAD;
	if ((rv = kcp_enter_session(h, &s)) != CKR_OK)
		return rv;
	*count = 0;
	if (!s->finding)
		rv = CKR_OPERATION_NOT_INITIALIZED;
	else
		while (*count < max && s->foundpos < s->nfound)
			list[(*count)++] = s->found[s->foundpos++];
	kcp_leave();
	return rv;
}

static CK_RV
kcp_C_FindObjectsFinal(CK_SESSION_HANDLE h)
{
	struct kcp_session	*s;
	CK_RV			 rv;

	if ((rv = kcp_enter_session(h, &s)) != CKR_OK)
		return rv;
	if (!s->finding)
		rv = CKR_OPERATION_NOT_INITIALIZED;
	else {
		free(s->found);
		s->found = NULL;
		s->nfound = s->foundpos = 0;
		s->finding = 0;
	}
	kcp_leave();
	return rv;
}

/* --- signing --- */

static CK_RV
kcp_sign_init_inlock(struct kcp_session *s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE key)
{
	const struct p11_obj	*obj;
	CK_RV			 rv;

	if (s->signing)
		return CKR_OPERATION_ACTIVE;
	if ((obj = p11_objset_find(kcp.objs, key)) == NULL)
		return CKR_KEY_HANDLE_INVALID;
	if (obj->klass != CKO_PRIVATE_KEY)
		return CKR_KEY_FUNCTION_NOT_PERMITTED;
	if ((rv = p11_sign_init(&s->sign, m, obj->key_type, obj->sig_len)) != CKR_OK)
		return rv;
	memcpy(s->key_id, obj->key_id, obj->key_id_len);
	s->key_id_len = obj->key_id_len;
	s->signing = 1;
	return CKR_OK;
}

static CK_RV
kcp_C_SignInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE key)
{
	struct kcp_session	*s;
	CK_RV			 rv;

	if (m == NULL)
		return CKR_ARGUMENTS_BAD;
	if ((rv = kcp_enter_session(h, &s)) != CKR_OK)
		return rv;
	rv = kcp_sign_init_inlock(s, m, key);
	kcp_leave();
	if (rv != CKR_KEY_HANDLE_INVALID)
		return rv;
	/* A handle from before a fork or a restart, or one we have not fetched yet. */
	if ((rv = kcp_refresh()) != CKR_OK)
		return rv;
	if ((rv = kcp_enter_session(h, &s)) != CKR_OK)
		return rv;
	rv = kcp_sign_init_inlock(s, m, key);
	kcp_leave();
	return rv;
}

/*
 * The end of a sign operation: C_Sign (data, then the signature) or C_SignFinal (data
 * NULL). A length query or a short buffer leaves the operation going; anything else ends it.
 */
static CK_RV
kcp_sign_finish(CK_SESSION_HANDLE h, const uint8_t *data, size_t len, CK_BYTE_PTR sig,
    CK_ULONG_PTR siglen)
{
	struct kcp_session	*s;
	struct p11_sign		 op;
	uint8_t			 key_id[P11_KEY_ID_MAX], in[P11_SIGN_MAX_INPUT];
	size_t			 key_id_len, inlen;
	CK_RV			 rv;

	if ((rv = kcp_enter_session(h, &s)) != CKR_OK)
		return rv;
	if (!s->signing) {
		kcp_leave();
		return CKR_OPERATION_NOT_INITIALIZED;
	}
	if (siglen == NULL) {
		rv = CKR_ARGUMENTS_BAD;
		goto end;
	}
	if (sig == NULL || *siglen < s->sign.sig_len) {
		rv = sig == NULL ? CKR_OK : CKR_BUFFER_TOO_SMALL;
		*siglen = s->sign.sig_len;
		kcp_leave();
		return rv;
	}
	if ((rv = p11_sign_update(&s->sign, data, len)) != CKR_OK ||
	    (rv = p11_sign_input(&s->sign, in, &inlen)) != CKR_OK)
		goto end;
	/* The operation ends here; the daemon is asked without the lock. */
	op = s->sign;
	op.md = NULL;
	memcpy(key_id, s->key_id, s->key_id_len);
	key_id_len = s->key_id_len;
	p11_sign_uninit(&s->sign);
	s->signing = 0;
	kcp_leave();

	if ((rv = kcp_sign_call(key_id, key_id_len, &op, in, inlen, sig)) == CKR_OK)
		*siglen = op.sig_len;
	return rv;
 end:
	p11_sign_uninit(&s->sign);
	s->signing = 0;
	kcp_leave();
	return rv;
}

static CK_RV
kcp_C_Sign(CK_SESSION_HANDLE h, CK_BYTE_PTR data, CK_ULONG len, CK_BYTE_PTR sig,
    CK_ULONG_PTR siglen)
{
	if (data == NULL && len > 0)
		return CKR_ARGUMENTS_BAD;
	return kcp_sign_finish(h, data, len, sig, siglen);
}

static CK_RV
kcp_C_SignUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR data, CK_ULONG len)
{
	struct kcp_session	*s;
	CK_RV			 rv;

	if (data == NULL && len > 0)
		return CKR_ARGUMENTS_BAD;
	if ((rv = kcp_enter_session(h, &s)) != CKR_OK)
		return rv;
	if (!s->signing)
		rv = CKR_OPERATION_NOT_INITIALIZED;
	else if ((rv = p11_sign_update(&s->sign, data, len)) != CKR_OK) {
		p11_sign_uninit(&s->sign);
		s->signing = 0;
	}
	kcp_leave();
	return rv;
}

static CK_RV
kcp_C_SignFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR sig, CK_ULONG_PTR siglen)
{
	return kcp_sign_finish(h, NULL, 0, sig, siglen);
}

/* --- what this token does not do --- */

static CK_RV
kcp_C_InitToken(CK_SLOT_ID slot, CK_UTF8CHAR_PTR pin, CK_ULONG len, CK_UTF8CHAR_PTR label)
{
	return CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV
kcp_C_InitPIN(CK_SESSION_HANDLE h, CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
	return CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV
kcp_C_SetPIN(CK_SESSION_HANDLE h, CK_UTF8CHAR_PTR old, CK_ULONG oldlen, CK_UTF8CHAR_PTR pin,
    CK_ULONG len)
{
	return CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV
kcp_C_GetOperationState(CK_SESSION_HANDLE h, CK_BYTE_PTR state, CK_ULONG_PTR len)
{
	return CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV
kcp_C_SetOperationState(CK_SESSION_HANDLE h, CK_BYTE_PTR state, CK_ULONG len,
    CK_OBJECT_HANDLE enc, CK_OBJECT_HANDLE auth)
{
	return CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV
kcp_C_CreateObject(CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR tmpl, CK_ULONG n,
    CK_OBJECT_HANDLE_PTR oh)
{
	return CKR_TOKEN_WRITE_PROTECTED;
}

static CK_RV
kcp_C_CopyObject(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE oh, CK_ATTRIBUTE_PTR tmpl,
    CK_ULONG n, CK_OBJECT_HANDLE_PTR newh)
{
	return CKR_TOKEN_WRITE_PROTECTED;
}

static CK_RV
kcp_C_DestroyObject(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE oh)
{
	return CKR_TOKEN_WRITE_PROTECTED;
}

static CK_RV
kcp_C_GetObjectSize(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE oh, CK_ULONG_PTR size)
{
	return CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV
kcp_C_SetAttributeValue(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE oh, CK_ATTRIBUTE_PTR tmpl,
    CK_ULONG n)
{
	return CKR_TOKEN_WRITE_PROTECTED;
}

static CK_RV
kcp_C_OpInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE key)
{
	return CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV
kcp_C_OpOnePart(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG inlen, CK_BYTE_PTR out,
    CK_ULONG_PTR outlen)
{
	return CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV
kcp_C_OpUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG inlen)
{
	return CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV
kcp_C_OpFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG_PTR outlen)
{
	return CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV
kcp_C_DigestInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m)
{
	return CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV
kcp_C_DigestKey(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE key)
{
	return CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV
kcp_C_Verify(CK_SESSION_HANDLE h, CK_BYTE_PTR data, CK_ULONG len, CK_BYTE_PTR sig,
    CK_ULONG siglen)
{
	return CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV
kcp_C_VerifyFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR sig, CK_ULONG siglen)
{
	return CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV
kcp_C_VerifyRecover(CK_SESSION_HANDLE h, CK_BYTE_PTR sig, CK_ULONG siglen, CK_BYTE_PTR data,
    CK_ULONG_PTR len)
{
	return CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV
kcp_C_GenerateKey(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR tmpl, CK_ULONG n,
    CK_OBJECT_HANDLE_PTR key)
{
	return CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV
kcp_C_GenerateKeyPair(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR pub,
    CK_ULONG npub, CK_ATTRIBUTE_PTR priv, CK_ULONG npriv, CK_OBJECT_HANDLE_PTR pubh,
    CK_OBJECT_HANDLE_PTR privh)
{
	return CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV
kcp_C_WrapKey(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE wrapping,
    CK_OBJECT_HANDLE key, CK_BYTE_PTR out, CK_ULONG_PTR outlen)
{
	return CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV
kcp_C_UnwrapKey(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE unwrapping,
    CK_BYTE_PTR in, CK_ULONG inlen, CK_ATTRIBUTE_PTR tmpl, CK_ULONG n,
    CK_OBJECT_HANDLE_PTR key)
{
	return CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV
kcp_C_DeriveKey(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE base,
    CK_ATTRIBUTE_PTR tmpl, CK_ULONG n, CK_OBJECT_HANDLE_PTR key)
{
	return CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV
kcp_C_SeedRandom(CK_SESSION_HANDLE h, CK_BYTE_PTR seed, CK_ULONG len)
{
	return CKR_RANDOM_SEED_NOT_SUPPORTED;
}

static CK_RV
kcp_C_GenerateRandom(CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG len)
{
	return CKR_RANDOM_NO_RNG;
}

static CK_RV
kcp_C_GetFunctionStatus(CK_SESSION_HANDLE h)
{
	return CKR_FUNCTION_NOT_PARALLEL;
}

static CK_RV
kcp_C_CancelFunction(CK_SESSION_HANDLE h)
{
	return CKR_FUNCTION_NOT_PARALLEL;
}

static CK_RV
kcp_C_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID_PTR slot, CK_VOID_PTR reserved)
{
	return CKR_FUNCTION_NOT_SUPPORTED;
}

__attribute__((visibility("default"))) CK_RV
C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
	if (list == NULL)
		return CKR_ARGUMENTS_BAD;
	*list = &kcp_function_list;
	return CKR_OK;
}

static CK_FUNCTION_LIST kcp_function_list = {
	.version = { 2, 40 },
	.C_Initialize = kcp_C_Initialize,
	.C_Finalize = kcp_C_Finalize,
	.C_GetInfo = kcp_C_GetInfo,
	.C_GetFunctionList = C_GetFunctionList,
	.C_GetSlotList = kcp_C_GetSlotList,
	.C_GetSlotInfo = kcp_C_GetSlotInfo,
	.C_GetTokenInfo = kcp_C_GetTokenInfo,
	.C_GetMechanismList = kcp_C_GetMechanismList,
	.C_GetMechanismInfo = kcp_C_GetMechanismInfo,
	.C_InitToken = kcp_C_InitToken,
	.C_InitPIN = kcp_C_InitPIN,
	.C_SetPIN = kcp_C_SetPIN,
	.C_OpenSession = kcp_C_OpenSession,
	.C_CloseSession = kcp_C_CloseSession,
	.C_CloseAllSessions = kcp_C_CloseAllSessions,
	.C_GetSessionInfo = kcp_C_GetSessionInfo,
	.C_GetOperationState = kcp_C_GetOperationState,
	.C_SetOperationState = kcp_C_SetOperationState,
	.C_Login = kcp_C_Login,
	.C_Logout = kcp_C_Logout,
	.C_CreateObject = kcp_C_CreateObject,
	.C_CopyObject = kcp_C_CopyObject,
	.C_DestroyObject = kcp_C_DestroyObject,
	.C_GetObjectSize = kcp_C_GetObjectSize,
	.C_GetAttributeValue = kcp_C_GetAttributeValue,
	.C_SetAttributeValue = kcp_C_SetAttributeValue,
	.C_FindObjectsInit = kcp_C_FindObjectsInit,
	.C_FindObjects = kcp_C_FindObjects,
	.C_FindObjectsFinal = kcp_C_FindObjectsFinal,
	.C_EncryptInit = kcp_C_OpInit,
	.C_Encrypt = kcp_C_OpOnePart,
	.C_EncryptUpdate = kcp_C_OpOnePart,
	.C_EncryptFinal = kcp_C_OpFinal,
	.C_DecryptInit = kcp_C_OpInit,
	.C_Decrypt = kcp_C_OpOnePart,
	.C_DecryptUpdate = kcp_C_OpOnePart,
	.C_DecryptFinal = kcp_C_OpFinal,
	.C_DigestInit = kcp_C_DigestInit,
	.C_Digest = kcp_C_OpOnePart,
	.C_DigestUpdate = kcp_C_OpUpdate,
	.C_DigestKey = kcp_C_DigestKey,
	.C_DigestFinal = kcp_C_OpFinal,
	.C_SignInit = kcp_C_SignInit,
	.C_Sign = kcp_C_Sign,
	.C_SignUpdate = kcp_C_SignUpdate,
	.C_SignFinal = kcp_C_SignFinal,
	.C_SignRecoverInit = kcp_C_OpInit,
	.C_SignRecover = kcp_C_OpOnePart,
	.C_VerifyInit = kcp_C_OpInit,
	.C_Verify = kcp_C_Verify,
	.C_VerifyUpdate = kcp_C_OpUpdate,
	.C_VerifyFinal = kcp_C_VerifyFinal,
	.C_VerifyRecoverInit = kcp_C_OpInit,
	.C_VerifyRecover = kcp_C_VerifyRecover,
	.C_DigestEncryptUpdate = kcp_C_OpOnePart,
	.C_DecryptDigestUpdate = kcp_C_OpOnePart,
	.C_SignEncryptUpdate = kcp_C_OpOnePart,
	.C_DecryptVerifyUpdate = kcp_C_OpOnePart,
	.C_GenerateKey = kcp_C_GenerateKey,
	.C_GenerateKeyPair = kcp_C_GenerateKeyPair,
	.C_WrapKey = kcp_C_WrapKey,
	.C_UnwrapKey = kcp_C_UnwrapKey,
	.C_DeriveKey = kcp_C_DeriveKey,
	.C_SeedRandom = kcp_C_SeedRandom,
	.C_GenerateRandom = kcp_C_GenerateRandom,
	.C_GetFunctionStatus = kcp_C_GetFunctionStatus,
	.C_CancelFunction = kcp_C_CancelFunction,
	.C_WaitForSlotEvent = kcp_C_WaitForSlotEvent,
};
