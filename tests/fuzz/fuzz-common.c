/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * fuzz-common.c: what the fuzz targets share: the fixed key material (a copy of
 * tests/fuzz/material/), the fixed key pair and the scratch directory.
 */
#include "config.h"

#include <sys/stat.h>

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "fuzz.h"
#include "log.h"

/* --- tests/fuzz/material/{ca,int,leaf,leaf2,key}.pem --- */

const char fuzz_ca_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIB2TCCAX+gAwIBAgIULWOvBjDtA21jj5LnkcYROJ542yIwCgYIKoZIzj0EAwIw\n"
    "OTEYMBYGA1UECgwPS2V5Y3VzdG9keSBGdXp6MR0wGwYDVQQDDBRLZXljdXN0b2R5\n"
    "IEZ1enogUm9vdDAgFw0yNjExMjYxNTQ2MDhaGA8yMTI2MTEwMjE1NDYwOFowOTEY\n"
    "MBYGA1UECgwPS2V5Y3VzdG9keSBGdXp6MR0wGwYDVQQDDBRLZXljdXN0b2R5IEZ1\n"
    "enogUm9vdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABAH3xewFstXk+WuQAybQ\n"
    "AKuozPQ+M2252WlG5dbf9VhCW4uTigjrUz0WCvq/tSae5Pyc4zACYdyLz421lNf+\n"
    "K/qjYzBhMB0GA1UdDgQWBBSuWAzcPT0bznPK61PSngn3ZAmm3DAfBgNVHSMEGDAW\n"
    "gBSuWAzcPT0bznPK61PSngn3ZAmm3DAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB\n"
    "/wQEAwIBBjAKBggqhkjOPQQDAgNIADBFAiEAhKn8kMnSkweOigcD5RW60gPvbO2N\n"
    "hn2tvfxhQSTvDlECIEdqgofeMhL4WWtNJHfQL6fjdX+1IweJry6wcpJAgCVh\n"
    "-----END CERTIFICATE-----\n";

const char fuzz_int_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIB0DCCAXegAwIBAgIBBzAKBggqhkjOPQQDAzA5MRgwFgYDVQQKDA9LZXljdXN0\n"
    "b2R5IEZ1enoxHTAbBgNVBAMMFEtleWN1c3RvZHkgRnV6eiBSb290MCAXDTI2MTEy\n"
    "NjE1NDYxM1oYDzIxMjYxMTAyMTU0NjEzWjBBMRgwFgYDVQQKDA9LZXljdXN0b2R5\n"
    "IEZ1enoxJTAjBgNVBAMMHEtleWN1c3RvZHkgRnV6eiBJbnRlcm1lZGlhdGUwWTAT\n"
    "BgcqhkjOPQIBBggqhkjOPQMBBwNCAAQux+d2OT8MS3K5En9BmUoeXOa/elYJByl3\n"
    "CmezKopzLP1gZuNcNa8/uZZkAtiwLQ5Mb3D9mUey4DPF9ql4lkCOo2YwZDASBgNV\n"
    "HRMBAf8ECDAGAQH/AgEAMA4GA1UdDwEB/wQEAwIBBjAdBgNVHQ4EFgQUTBTHmmmm\n"
    "giFpbV0X5DlFF47C5XIwHwYDVR0jBBgwFoAUrlgM3D09G85zyutT0p4J92QJptww\n"
    "CgYIKoZIzj0EAwMDRwAwRAIgbbXSJ97XzwI6BILne9ba9UeyidpuiUgdRVU99Wtj\n"
    "fxsCIFYJrtlgBQNW1db8GwVNWB9Vu7QTvr87elIpHSq3I1FO\n"
    "-----END CERTIFICATE-----\n";

const char fuzz_leaf_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIB/jCCAaSgAwIBAgICEJIwCgYIKoZIzj0EAwIwOTEYMBYGA1UECgwPS2V5Y3Vz\n"
    "dG9keSBGdXp6MR0wGwYDVQQDDBRLZXljdXN0b2R5IEZ1enogUm9vdDAgFw0yNjEx\n"
    "MjYxNTQ2MDlaGA8yMTI2MTEwMjE1NDYwOVowIzEhMB8GA1UEAwwYc2hvcC5rZXlj\n"
    "dXN0b2R5LWZ1enouY29tMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE4B8uhfzO\n"
    "P62q+U9DHb/Qmi6nJilGnvvuf4++AbBbYF3kTdtF73XuICPyRZNq7AMP7tYceU/1\n"
    "NyipBM+G3jNNOKOBrzCBrDAJBgNVHRMEAjAAMA4GA1UdDwEB/wQEAwIHgDATBgNV\n"
    "HSUEDDAKBggrBgEFBQcDATA6BgNVHREEMzAxghhzaG9wLmtleWN1c3RvZHktZnV6\n"
    "ei5jb22CFSoua2V5Y3VzdG9keS1mdXp6LmNvbTAdBgNVHQ4EFgQUl3kQYhBO8jZk\n"
    "zC5qSJLZmBkdSSwwHwYDVR0jBBgwFoAUrlgM3D09G85zyutT0p4J92QJptwwCgYI\n"
    "KoZIzj0EAwIDSAAwRQIgeoYqoUgWjSQs/QTXWBqSjbkJNq2+peCxmZjiWi1AsC0C\n"
    "IQDZpnWXvZAtH1KGRSj55UOq3zdtvCldlXJZczosgfb09w==\n"
    "-----END CERTIFICATE-----\n";

const char fuzz_leaf2_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIICBjCCAaygAwIBAgICEPcwCgYIKoZIzj0EAwIwQTEYMBYGA1UECgwPS2V5Y3Vz\n"
    "dG9keSBGdXp6MSUwIwYDVQQDDBxLZXljdXN0b2R5IEZ1enogSW50ZXJtZWRpYXRl\n"
    "MCAXDTI2MTEyNjE1NDYxM1oYDzIxMjYxMTAyMTU0NjEzWjAjMSEwHwYDVQQDDBhz\n"
    "aG9wLmtleWN1c3RvZHktZnV6ei5jb20wWTATBgcqhkjOPQIBBggqhkjOPQMBBwNC\n"
    "AATgHy6F/M4/rar5T0Mdv9CaLqcmKUae++5/j74BsFtgXeRN20Xvde4gI/JFk2rs\n"
    "Aw/u1hx5T/U3KKkEz4beM004o4GvMIGsMAkGA1UdEwQCMAAwDgYDVR0PAQH/BAQD\n"
    "AgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMBMDoGA1UdEQQzMDGCGHNob3Aua2V5Y3Vz\n"
    "dG9keS1mdXp6LmNvbYIVKi5rZXljdXN0b2R5LWZ1enouY29tMB0GA1UdDgQWBBSX\n"
    "eRBiEE7yNmTMLmpIktmYGR1JLDAfBgNVHSMEGDAWgBRMFMeaaaaCIWltXRfkOUUX\n"
    "jsLlcjAKBggqhkjOPQQDAgNIADBFAiEAwOiVu0JGuAH1LvB9k0z3Fbe9+p0GA8Gd\n"
    "U+qJ3L2G3ksCIEAnK+dMID50WKmZC9uOhf6Tpp5KIU+ZPBJWAvoYKARL\n"
    "-----END CERTIFICATE-----\n";

const char fuzz_key_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgvBruMcZoHZdnT7d8\n"
    "tBDrdluN4s9NMLbKmDA35Z0MRwuhRANCAATgHy6F/M4/rar5T0Mdv9CaLqcmKUae\n"
    "++5/j74BsFtgXeRN20Xvde4gI/JFk2rsAw/u1hx5T/U3KKkEz4beM004\n"
    "-----END PRIVATE KEY-----\n";

static char	 fuzz_dirname[PATH_MAX];

EVP_PKEY *
fuzz_key(void)
{
	static EVP_PKEY	*key;
	BIO		*b;

	if (key != NULL)
		return key;
	if ((b = BIO_new_mem_buf(fuzz_key_pem, -1)) == NULL ||
	    (key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL)) == NULL) {
		fprintf(stderr, "fuzz: cannot parse the fixed key\n");
		abort();
	}
	BIO_free(b);
	return key;
}

const uint8_t *
fuzz_spki(size_t *len)
{
	static uint8_t	 der[256];
	static size_t	 derlen;
	uint8_t		*p = der;
	int		 n;

	if (derlen == 0) {
		if ((n = i2d_PUBKEY(fuzz_key(), NULL)) <= 0 || (size_t)n > sizeof(der) ||
		    i2d_PUBKEY(fuzz_key(), &p) != n) {
			fprintf(stderr, "fuzz: cannot encode the fixed public key\n");
			abort();
		}
		derlen = (size_t)n;
	}
	*len = derlen;
	return der;
}

/* At exit: remove the scratch directory and what the code under test left in it. */
static void
fuzz_dir_remove(void)
{
	DIR		*d;
	struct dirent	*de;

	if (fuzz_dirname[0] == '\0' || (d = opendir(fuzz_dirname)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		(void)unlinkat(dirfd(d), de->d_name, 0);
	}
	(void)closedir(d);
	(void)rmdir(fuzz_dirname);
}

const char *
fuzz_dir(void)
{
	const char	*base;

	if (fuzz_dirname[0] != '\0')
		return fuzz_dirname;
	if ((base = getenv("KC_FUZZ_TMPDIR")) == NULL || *base == '\0') {
		if (access("/dev/shm", W_OK) == 0)
			base = "/dev/shm";
		else if ((base = getenv("TMPDIR")) == NULL || *base == '\0')
			base = "/tmp";
	}
	if ((size_t)snprintf(fuzz_dirname, sizeof(fuzz_dirname), "%s/kc-fuzz.XXXXXX",
	    base) >= sizeof(fuzz_dirname) || mkdtemp(fuzz_dirname) == NULL) {
		fprintf(stderr, "fuzz: cannot make a directory under %s\n", base);
		abort();
	}
	(void)atexit(fuzz_dir_remove);
	return fuzz_dirname;
}

void
fuzz_path(char *buf, size_t len, const char *name)
{
	if ((size_t)snprintf(buf, len, "%s/%s", fuzz_dir(), name) >= len) {
		fprintf(stderr, "fuzz: path too long\n");
		abort();
	}
}

void
fuzz_write_file(const char *path, const void *data, size_t len)
{
	const char	*p = data;
	ssize_t		 n;
	int		 fd;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) == -1) {
		fprintf(stderr, "fuzz: %s: cannot create\n", path);
		abort();
	}
	while (len > 0) {
		if ((n = write(fd, p, len)) <= 0) {
			fprintf(stderr, "fuzz: %s: cannot write\n", path);
			abort();
		}
		p += n;
		len -= (size_t)n;
	}
	(void)close(fd);
}

void
fuzz_log_init(void)
{
	/*
	 * To stderr, never syslog: a fuzzer must not flood the journal. contrib/fuzz closes
	 * the targets' stderr (-close_fd_mask=2) unless KC_FUZZ_VERBOSE is set; sanitizer
	 * reports still reach libFuzzer's own descriptor.
	 */
	log_init(getenv("KC_FUZZ_VERBOSE") != NULL ? 2 : 1, LOG_DAEMON);
}
