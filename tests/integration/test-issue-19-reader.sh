#!/bin/sh
# Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
#
# test-issue-19-reader.sh: an operator who reads the live store with the sqlite3 shell costs
# no record (issue 19, point 1). The shell's close must not find itself the last connection
# (which it would if the daemon had dropped its own POSIX locks), checkpoint and delete the
# WAL under the daemon's feet: writes acknowledged after it would then go to an unlinked file
# and be lost at the next crash. So: CSRs created, the shell run against the live store
# several times between more creates, the daemon killed with SIGKILL, and every acknowledged
# record must be in the store afterwards, readable and served after a restart.

. "$(dirname "$0")/common.sh"

for t in sqlite3 jq; do
	command -v $t >/dev/null 2>&1 || { echo "SKIP: $t missing"; exit 77; }
done

kc_setup
db=$KC_TMP/keycustody.db
: >"$KC_TMP/acked"

# create N: N CSRs through the CLI, each acknowledged id appended to acked.
create() {
	local i=0
	while [ $i -lt "$1" ]; do
		i=$((i + 1))
		if kc_csr p256v1 "r$round-$i.acme-corp.co.uk" "r$round-$i.acme-corp.co.uk" >"$KC_TMP/c.json" 2>"$KC_TMP/c.err"; then
			jq -r .id <"$KC_TMP/c.json" >>"$KC_TMP/acked"
		else
			not_ok "create answered"; sed 's/^/#   /' "$KC_TMP/c.err"
		fi
	done
}

round=0; create 3
# The shell as an operator runs it: open, read, close; then the daemon goes on writing.
for round in 1 2 3; do
	n=$(sqlite3 "$db" 'select count(*) from csrs' 2>"$KC_TMP/sqlite.err")
	check_eq "sqlite3 reads the live store (round $round)" "$(wc -l <"$KC_TMP/acked")" "$n"
	[ -e "$db-wal" ] && ok "the WAL is still there after the reader (round $round)" ||
	    not_ok "the WAL is still there after the reader (round $round)"
	create 3
done
acked=$(wc -l <"$KC_TMP/acked")
check_eq "every create was acknowledged" 12 "$acked"

kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null
DAEMON_PID=

# Read the store as it is after the crash (the WAL replayed by this reader, as at restart).
sqlite3 "$db" 'select id from csrs where state = 1' 2>&1 | sort >"$KC_TMP/stored"
sort "$KC_TMP/acked" >"$KC_TMP/acked.sorted"
lost=$(comm -23 "$KC_TMP/acked.sorted" "$KC_TMP/stored" | wc -l)
check_eq "no acknowledged record lost to the reader and the crash" 0 "$lost"

kc_start_daemon || { echo "Bail out: restart failed"; exit 1; }
ctl --json csr list --zone "$KC_ZONE" --per-page 50 >"$KC_TMP/list.json"
check_eq "the restarted daemon serves every acknowledged record" "$acked" \
    "$(jq length <"$KC_TMP/list.json")"
if grep -q 'have no record\|have no key' "$KC_TMP/keycustodyd.log"; then
	not_ok "no orphan key and no record without its key after the restart"
	grep 'reconcile' "$KC_TMP/keycustodyd.log" | sed 's/^/#   /'
else
	ok "no orphan key and no record without its key after the restart"
fi

kc_done
