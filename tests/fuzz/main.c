/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * main.c: the replay driver, linked into each fuzz target in place of libFuzzer so that its
 * corpus runs under `make check` with the normal compiler. Usage: replay-NAME [PATH ...]:
 * each PATH is a file or a directory of files ("-" is stdin); with none, the corpus
 * $top_srcdir/tests/fuzz/corpus/NAME. Fails when no input was found; a crash fails too.
 */
#include "config.h"

#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

#ifndef FUZZ_NAME
#error "FUZZ_NAME must name the target"
#endif

static unsigned long	 replayed;

/* Read all of f; the buffer is one byte longer than *len (a NUL nobody may rely on). */
static uint8_t *
replay_read(FILE *f, size_t *len)
{
	uint8_t	*buf = NULL, *nbuf;
	size_t	 cap = 0, n;

	*len = 0;
	for (;;) {
		if (cap - *len < 4096) {
			cap = cap == 0 ? 65536 : cap * 2;
			if ((nbuf = realloc(buf, cap + 1)) == NULL) {
				free(buf);
				return NULL;
			}
			buf = nbuf;
		}
		if ((n = fread(buf + *len, 1, cap - *len, f)) == 0)
			break;
		*len += n;
	}
	if (ferror(f)) {
		free(buf);
		return NULL;
	}
	buf[*len] = '\0';
	return buf;
}

static int
replay_file(const char *path)
{
	FILE	*f;
	uint8_t	*buf, *copy;
	size_t	 len;

	if (strcmp(path, "-") == 0)
		f = stdin;
	else if ((f = fopen(path, "rb")) == NULL) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	buf = replay_read(f, &len);
	if (f != stdin)
		fclose(f);
	if (buf == NULL) {
		fprintf(stderr, "replay: %s: cannot read\n", path);
		return -1;
	}
	/* An exact-size copy, as libFuzzer gives it: over-reads hit the redzone. */
	if ((copy = malloc(len > 0 ? len : 1)) == NULL) {
		free(buf);
		return -1;
	}
	memcpy(copy, buf, len);
	free(buf);
	if (getenv("KC_REPLAY_VERBOSE") != NULL)
		fprintf(stderr, "replay: %s (%zu bytes)\n", path, len);
	(void)LLVMFuzzerTestOneInput(copy, len);
	free(copy);
	replayed++;
	return 0;
}

static int
replay_path(const char *path)
{
	struct dirent	**names;
	struct stat	 sb;
	char		 p[PATH_MAX];
	int		 i, n, r = 0;

	if (strcmp(path, "-") == 0 || stat(path, &sb) == -1 || !S_ISDIR(sb.st_mode))
		return replay_file(path);
	/* Sorted, so that a run is the same run everywhere. */
	if ((n = scandir(path, &names, NULL, alphasort)) == -1) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (names[i]->d_name[0] != '.' && (size_t)snprintf(p, sizeof(p), "%s/%s",
		    path, names[i]->d_name) < sizeof(p) && replay_file(p) != 0)
			r = -1;
		free(names[i]);
	}
	free(names);
	return r;
}

int
main(int argc, char *argv[])
{
	const char	*top;
	char		 corpus[PATH_MAX];
	int		 i, r = 0;

	(void)LLVMFuzzerInitialize(&argc, &argv);
	if (argc < 2) {
		if ((top = getenv("top_srcdir")) == NULL)
			top = ".";
		(void)snprintf(corpus, sizeof(corpus), "%s/tests/fuzz/corpus/%s", top,
		    FUZZ_NAME);
		r = replay_path(corpus);
	}
	for (i = 1; i < argc; i++)
		if (replay_path(argv[i]) != 0)
			r = -1;
	printf("replay-%s: %lu inputs replayed\n", FUZZ_NAME, replayed);
	if (replayed == 0) {
		fprintf(stderr, "replay-%s: no input found\n", FUZZ_NAME);
		return 1;
	}
	return r == 0 ? 0 : 1;
}
