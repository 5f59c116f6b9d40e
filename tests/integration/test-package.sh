#!/bin/sh
# Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
#
# test-package.sh (issue 18): the Debian packages built, checked with lintian, installed,
# the daemon and the shim started from their units' command lines as the packaged users,
# a CSR made through the shim, the packages purged (contrib/package-test). It installs
# packages and users on this machine, so it runs only when asked: KC_PACKAGE_TEST=1 (CI,
# as root, on a Debian 12 machine without keycustody installed). About a minute.
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
if [ "${KC_PACKAGE_TEST:-0}" != 1 ]; then
	echo "SKIP: installs packages and users on this machine; set KC_PACKAGE_TEST=1 to run it"
	exit 77
fi
exec "$top_srcdir/contrib/package-test"
