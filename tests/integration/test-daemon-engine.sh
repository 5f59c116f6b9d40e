#!/bin/sh
# Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
#
# test-daemon-engine.sh: the whole of test-daemon.sh with libp11's engine as the signer.
KC_SIGNER=engine
export KC_SIGNER
. "$(dirname "$0")/test-daemon.sh"
