# Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
#
# pg-common.sh: sourced after common.sh by the tests that need PostgreSQL (issue 17). Starts
# a real server of Debian's postgresql package: initdb in KC_TMP/pg as an unprivileged user
# (the server refuses root), listening on a Unix socket in KC_TMP only (no TCP), on a port
# number of its own (the socket's name). kc_pg_stop at the end; kc_cleanup calls it too.
#
# After kc_pg_start: KC_PG_URI (libpq URI of database "keycustody", user "keycustody", over
# the socket), KC_PG_DIR, KC_PG_SOCKDIR, KC_PG_PORT, KC_PG_PID; kc_psql runs psql on it.

KC_PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
KC_PG_PID=
[ -n "$KC_PG_BIN" ] && [ -x "$KC_PG_BIN/initdb" ] ||
    { echo "SKIP: PostgreSQL's server (Debian package postgresql) is missing"; exit 77; }

# The server's user: the caller's when not root, else nobody (its files are made theirs).
if [ "$(id -u)" -eq 0 ]; then KC_PG_USER=nobody; else KC_PG_USER=$(id -un); fi

kc_pg_as() {
	if [ "$(id -u)" -eq 0 ]; then runuser -u "$KC_PG_USER" -- "$@"; else "$@"; fi
}

# kc_pg_start: initdb (first call only) and start the server; wait until it accepts.
kc_pg_start() {
	KC_PG_DIR=$KC_TMP/pg
	KC_PG_SOCKDIR=$KC_TMP/pgsock
	if [ ! -d "$KC_PG_DIR" ]; then
		: "${KC_PG_PORT:=$(python3 -c 'import random; print(random.randrange(20000, 60000))')}"
		mkdir -p "$KC_PG_DIR" "$KC_PG_SOCKDIR"
		# The path to KC_TMP must be searchable by the server's user.
		chmod 755 "$KC_TMP"
		[ "$(id -u)" -eq 0 ] && chown "$KC_PG_USER" "$KC_PG_DIR" "$KC_PG_SOCKDIR"
		kc_pg_as "$KC_PG_BIN/initdb" -D "$KC_PG_DIR" -U keycustody -A trust \
		    --no-sync -E UTF8 >"$KC_TMP/initdb.log" 2>&1 ||
		    { echo "Bail out: initdb failed"; sed 's/^/#   /' "$KC_TMP/initdb.log"; exit 1; }
		cat >>"$KC_PG_DIR/postgresql.conf" <<EOC
listen_addresses = ''
unix_socket_directories = '$KC_PG_SOCKDIR'
port = $KC_PG_PORT
max_connections = 100
fsync = on
log_min_messages = warning
EOC
	fi
	kc_pg_as "$KC_PG_BIN/postgres" -D "$KC_PG_DIR" >>"$KC_TMP/postgres.log" 2>&1 &
	KC_PG_PID=$!
	local i=0
	while [ $i -lt 300 ]; do
		if kc_pg_as "$KC_PG_BIN/pg_isready" -q -h "$KC_PG_SOCKDIR" -p "$KC_PG_PORT"; then
			break
		fi
		kill -0 "$KC_PG_PID" 2>/dev/null ||
		    { echo "# postgres exited:"; sed 's/^/#   /' "$KC_TMP/postgres.log"; return 1; }
		sleep 0.1; i=$((i + 1))
	done
	[ $i -lt 300 ] || { echo "# postgres did not accept connections"; return 1; }
	KC_PG_URI="postgresql:///keycustody?host=$KC_PG_SOCKDIR&port=$KC_PG_PORT&user=keycustody"
	kc_psql -d postgres -qc "SELECT 1 FROM pg_database WHERE datname = 'keycustody'" \
	    -tA | grep -q 1 || kc_psql -d postgres -qc "CREATE DATABASE keycustody" >/dev/null
	export KC_PG_URI KC_PG_DIR KC_PG_SOCKDIR KC_PG_PORT
}

# kc_psql ARGS...: psql on the test's server (database keycustody unless -d is given).
kc_psql() {
	local db=keycustody
	if [ "${1:-}" = "-d" ]; then db=$2; shift 2; fi
	psql -X -h "$KC_PG_SOCKDIR" -p "$KC_PG_PORT" -U keycustody -d "$db" "$@"
}

# kc_pg_stop [MODE]: stop the server (fast by default; "immediate" is a crash).
kc_pg_stop() {
	[ -n "$KC_PG_PID" ] || return 0
	kc_pg_as "$KC_PG_BIN/pg_ctl" -D "$KC_PG_DIR" -m "${1:-fast}" -w stop >/dev/null 2>&1 ||
	    kill -KILL "$KC_PG_PID" 2>/dev/null
	wait "$KC_PG_PID" 2>/dev/null
	KC_PG_PID=
}

kc_pg_cleanup() { kc_pg_stop; kc_cleanup; }
trap kc_pg_cleanup EXIT
