/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * fuzz.h: what the fuzz targets share: the libFuzzer entry points, fixed key material and a
 * private scratch directory.
 */
#ifndef KC_FUZZ_H
#define KC_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* The libFuzzer entry points; main.c calls them the same way when replaying a corpus. */
int	 LLVMFuzzerInitialize(int *argc, char ***argv);
int	 LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Fixed test material, generated once with openssl (tests/fuzz/material/README): a P-256
 * root, an intermediate below it, the key that the fake HSM hands out for every key pair
 * and two leaf certificates for that key (SANs shop.keycustody-fuzz.com and
 * *.keycustody-fuzz.com, valid until 2126), one signed by the root, one by the intermediate.
 * The seed corpora carry the same certificates, so their chains verify.
 */
extern const char	 fuzz_ca_pem[];
extern const char	 fuzz_int_pem[];
extern const char	 fuzz_leaf_pem[];
extern const char	 fuzz_leaf2_pem[];
extern const char	 fuzz_key_pem[];	/* PKCS#8, unencrypted */

#define FUZZ_HOSTNAME	"shop.keycustody-fuzz.com"
#define FUZZ_ZONE	"023e105f4ecef8ad9ca31a8372d0c353"
#define FUZZ_CSR_ID	"7b163417-1d2b-4c84-a38a-2fb7a0cd7752"
#define FUZZ_HOST_ID	"24c8c68e-bec2-49b6-868e-f06373780630"

struct evp_pkey_st;

/** The fixed key pair (parsed once, never freed). Aborts when it cannot be parsed. */
struct evp_pkey_st *fuzz_key(void);
/** DER SubjectPublicKeyInfo of fuzz_key() (static storage). */
const uint8_t	*fuzz_spki(size_t *len);

/**
 * A directory of our own for files the code under test insists on (store, audit log, CA
 * bundle): under $KC_FUZZ_TMPDIR when set, else /dev/shm when it is writable (no disk
 * syncs), else $TMPDIR or /tmp. Created on first use, removed with its files at exit
 * (libFuzzer's own exits skip that: contrib/fuzz gives each run a KC_FUZZ_TMPDIR that it
 * removes). Aborts on failure.
 */
const char	*fuzz_dir(void);
/** fuzz_dir() + "/" + name, in a static buffer of the caller's (PATH_MAX). */
void		 fuzz_path(char *buf, size_t len, const char *name);
/** Write len bytes to path (created or truncated). Aborts on failure. */
void		 fuzz_write_file(const char *path, const void *data, size_t len);
/** Quiet the logs of the code under test unless KC_FUZZ_VERBOSE is set. */
void		 fuzz_log_init(void);

#endif /* KC_FUZZ_H */
