/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * http-tls.c: the shim's optional TLS listener: the SSL_CTX made from the configuration
 * (key file checks included), and every connection's bufferevent. Owns libssl.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "kc-err.h"
#include "log.h"
#include "xmalloc.h"
#include "http.h"
#include "http-compat.h"
#include "http-tls.h"

/*
 * TLS 1.2 suites: forward secret and AEAD only (TLS 1.3 ones are OpenSSL's defaults, all
 * of that kind). The security level stays OpenSSL's default, 2.
 */
#define HTTP_TLS_CIPHERS	"ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20"
#define HTTP_TLS_SID_CTX	"keycustody-http"

/* With -dd, say why handshakes fail: the alerts we send. */
static void
http_tls_info(const SSL *ssl, int where, int ret)
{
	if ((where & SSL_CB_ALERT) && (where & SSL_CB_WRITE))
		log_debug("TLS: sent alert %s", SSL_alert_desc_string_long(ret));
}

/* Refuse encrypted keys rather than prompt on the terminal: there is no passphrase. */
static int
http_tls_nopass(char *buf, int size, int rwflag, void *arg)
{
	return -1;
}

/* *cause = "what: OpenSSL's reason"; the error queue is emptied. */
static int
http_tls_error(char **cause, const char *what)
{
	unsigned long	 e = ERR_peek_last_error();
	const char	*reason = e != 0 ? ERR_reason_error_string(e) : NULL;

	xasprintf(cause, "%s: %s", what, reason != NULL ? reason : "failed");
	ERR_clear_error();
	return KC_ERR_CRYPTO;
}

/*
 * Load the private key at path into ctx, from a regular file that only its owner may
 * access (checked on the open descriptor, as keycustodyd checks its PIN file).
 */
static int
http_tls_load_key(SSL_CTX *ctx, const char *path, char **cause)
{
	struct stat	 sb;
	EVP_PKEY	*pkey = NULL;
	BIO		*bio = NULL;
	char		*what = NULL;
	int		 fd, r = 0;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		xasprintf(cause, "TLS key %s: %s", path, strerror(errno));
		return KC_ERR_IO;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		xasprintf(cause, "TLS key %s: not a regular file", path);
		close(fd);
		return KC_ERR_IO;
	}
	if (sb.st_mode & (S_IRWXG | S_IRWXO)) {
		xasprintf(cause, "TLS key %s: mode %03o lets others read it; chmod 600 it",
		    path, (unsigned int)(sb.st_mode & 0777));
		close(fd);
		return KC_ERR_DENIED;
	}
	if ((bio = BIO_new_fd(fd, BIO_CLOSE)) == NULL) {
		close(fd);
		xasprintf(&what, "TLS key %s", path);
		r = http_tls_error(cause, what);
		goto out;
	}
	if ((pkey = PEM_read_bio_PrivateKey(bio, NULL, http_tls_nopass, NULL)) == NULL) {
		xasprintf(&what, "TLS key %s: no usable PEM private key (an encrypted one "
		    "is not)", path);
		r = http_tls_error(cause, what);
		goto out;
	}
	if (SSL_CTX_use_PrivateKey(ctx, pkey) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
		xasprintf(&what, "TLS key %s does not match the certificate", path);
		r = http_tls_error(cause, what);
		goto out;
	}
 out:
	EVP_PKEY_free(pkey);
	BIO_free(bio);
	free(what);
	return r;
}

/*
 * The server's TLS context, made once at start-up from conf: TLS 1.2 or later, no
 * compression, no renegotiation, and with tls_client_ca, a client certificate that this
 * CA signed is required.
 * @retval NULL and *cause set on failure
 */
SSL_CTX *
http_tls_new(const struct http_config *conf, char **cause)
{
	STACK_OF(X509_NAME)	*names;
	SSL_CTX			*ctx;
	char			*what = NULL;

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		http_tls_error(cause, "SSL_CTX_new");
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, HTTP_TLS_CIPHERS) != 1 ||
	    SSL_CTX_set_dh_auto(ctx, 1) != 1 ||
	    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)HTTP_TLS_SID_CTX,
	    sizeof(HTTP_TLS_SID_CTX) - 1) != 1) {
		http_tls_error(cause, "TLS settings");
		goto fail;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_info_callback(ctx, http_tls_info);
	if (SSL_CTX_use_certificate_chain_file(ctx, conf->tls_cert) != 1) {
		xasprintf(&what, "TLS certificate %s", conf->tls_cert);
		http_tls_error(cause, what);
		goto fail;
	}
	if (http_tls_load_key(ctx, conf->tls_key, cause) != 0)
		goto fail;
	if (conf->tls_client_ca != NULL) {
		if (SSL_CTX_load_verify_locations(ctx, conf->tls_client_ca, NULL) != 1 ||
		    (names = SSL_load_client_CA_file(conf->tls_client_ca)) == NULL) {
			xasprintf(&what, "TLS client CA %s", conf->tls_client_ca);
			http_tls_error(cause, what);
			goto fail;
		}
		/* Takes names; the CA list is what the server tells clients to use. */
		SSL_CTX_set_client_CA_list(ctx, names);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
		    NULL);
	}
	free(what);
	return ctx;
 fail:
	free(what);
	SSL_CTX_free(ctx);
	return NULL;
}

/* The TLS options go together: both files or neither, and a client CA only with them. */
int
http_tls_args(const struct http_config *conf, char **cause)
{
	if ((conf->tls_cert == NULL) != (conf->tls_key == NULL)) {
		xasprintf(cause, "a TLS certificate needs its key and a key its "
		    "certificate (--tls-cert and --tls-key)");
		return KC_ERR_INVALID;
	}
	if (conf->tls_cert == NULL && conf->tls_client_ca != NULL) {
		xasprintf(cause, "a TLS client CA needs TLS (--tls-cert and --tls-key)");
		return KC_ERR_INVALID;
	}
	return 0;
}

int
http_tls_check(const struct http_config *conf, char **cause)
{
	SSL_CTX	*ctx;
	int	 r;

	if ((r = http_tls_args(conf, cause)) != 0 || conf->tls_cert == NULL)
		return r;
	if ((ctx = http_tls_new(conf, cause)) == NULL)
		return KC_ERR_INVALID;
	SSL_CTX_free(ctx);
	return 0;
}

/*
 * Every connection's bufferevent (evhttp_set_bevcb(), arg the SSL_CTX or NULL): a socket
 * one, or an OpenSSL one with TLS, its output (the clear text, with TLS) watched by
 * http-compat.c either way.
 */
struct bufferevent *
http_tls_bevcb(struct event_base *base, void *arg)
{
	SSL_CTX			*tls = arg;
	struct bufferevent	*bev;
	SSL			*ssl;

	if (tls == NULL) {
		if ((bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE)) == NULL)
			return NULL;		/* evhttp makes its own */
		if (http_compat_watch(bev) != 0) {
			bufferevent_free(bev);
			return NULL;
		}
		return bev;
	}
	/*
	 * Never NULL with TLS: evhttp would make a plain bufferevent and serve clear text on
	 * the TLS port. Only memory can be short here.
	 */
	if ((ssl = SSL_new(tls)) == NULL)
		fatalx("SSL_new: out of memory");
	/* The SSL is the bufferevent's from here on, freed with it or on failure. */
	if ((bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL)
		fatalx("bufferevent_openssl_socket_new: out of memory");
	/* A client that closes without close_notify is at EOF, not in error. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	if (http_compat_watch(bev) != 0)
		fatalx("evbuffer_add_cb: out of memory");
	return bev;
}
