#!/usr/bin/env bash
# test/server.sh — a throwaway PostgreSQL 15 cluster under ./tmp for the demo,
# the tests and the benchmarks.
#
#   test/server.sh start   create the cluster if needed, start it, create the
#                          database "loyalty"; idempotent, recovers a stale one
#   test/server.sh stop    stop it (fast shutdown)
#   test/server.sh status  say whether it runs, and where
#   test/server.sh env     print the libpq variables that reach it
#
# LOYALTY_PG_WRAPPER=/path/to/script starts the server through that script
# instead of the postgres binary (test/valgrind.sh uses it).
# LOYALTY_SERVER=NAME keeps a second cluster beside the first, under
# ./tmp/NAME with its libpq variables in ./tmp/NAME.env (default: ./tmp/pg
# and ./tmp/server.env).
# LOYALTY_FAKETIME=OFFSET (libfaketime's syntax, e.g. +730d) starts the
# server with its clock shifted by OFFSET: libfaketime is loaded into the
# server's processes only, never into the clients (the "future" test layer).
# LOYALTY_SHARED_BUFFERS sets shared_buffers (default 2GB: the benchmark's
# million customers fit, as a production server's working set would; the
# memory is only touched as pages are read).
# The cluster loads pg_cron (cron.database_name = loyalty), listens on a free
# port on 127.0.0.1 and on a socket beside its data.  As root the server runs
# as the "postgres" user (created if missing); otherwise as the caller.  The
# superuser is always "postgres", with trust authentication on loopback only.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TMP="$REPO/tmp"
PG_CONFIG=${PG_CONFIG:-pg_config}
BINDIR=$("$PG_CONFIG" --bindir)
DBNAME=${LOYALTY_DB:-loyalty}
NAME=${LOYALTY_SERVER:-pg}
case "$NAME" in
	pg) ENVFILE="$TMP/server.env" ;;
	*[!a-z0-9_-]* | "") echo "server.sh: LOYALTY_SERVER must be a simple name" >&2; exit 1 ;;
	*) ENVFILE="$TMP/$NAME.env" ;;
esac
FAKETIME_LIB=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1

die() { echo "server.sh: $*" >&2; exit 1; }

[ -x "$BINDIR/initdb" ] || die "no initdb in $BINDIR: install postgresql-15 (make deps)"

# Who runs the server.
if [ "$(id -u)" -eq 0 ]; then
	RUNAS=${LOYALTY_PG_USER:-postgres}
	if ! id "$RUNAS" >/dev/null 2>&1; then
		useradd --system --user-group --home-dir /nonexistent --shell /usr/sbin/nologin "$RUNAS"
	fi
	# from /, since the server user may not be able to enter the checkout
	as_server() { (cd / && runuser -u "$RUNAS" -- "$@"); }
else
	RUNAS=$(id -un)
	as_server() { "$@"; }
fi

# Where the cluster lives: ./tmp/pg, unless the server user cannot reach it or
# the socket path would be too long for a Unix socket; then a directory under
# /tmp named after the checkout, linked from ./tmp/pg.
mkdir -p "$TMP"
STATE="$TMP/$NAME"
state_usable() {
	[ ${#1} -lt 80 ] || return 1
	mkdir -p "$1" && { [ "$(id -u)" -ne 0 ] || chown "$RUNAS" "$1"; } && as_server test -w "$1" -a -x "$1"
}
if [ -L "$STATE" ] || ! state_usable "$STATE" 2>/dev/null; then
	ALT="/tmp/loyalty-$NAME-$(printf '%s' "$REPO" | md5sum | cut -c1-10)"
	state_usable "$ALT" || die "cannot make a directory the server user $RUNAS can use"
	[ -L "$STATE" ] || rm -rf "$STATE"
	ln -sfn "$ALT" "$STATE"
	STATE="$ALT"
fi
DATA="$STATE/data"
SOCK="$STATE/sock"
LOG="$STATE/server.log"

running() {
	as_server "$BINDIR/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

current_port() {
	sed -n "s/^port = \([0-9]*\)$/\1/p" "$DATA/loyalty_server.conf" 2>/dev/null
}

port_free() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && [ ! -e "$SOCK/.s.PGSQL.$1" ]
}

pick_port() {
	local p=${LOYALTY_PGPORT:-$((54320 + $(printf '%s' "$REPO" | cksum | cut -d' ' -f1) % 500))}
	for _ in $(seq 1 200); do
		port_free "$p" && { echo "$p"; return; }
		p=$((p + 1))
	done
	die "no free port found"
}

write_env() {
	cat >"$ENVFILE" <<ENV
export PGHOST='$SOCK'
export PGPORT='$1'
export PGUSER='postgres'
export PGDATABASE='$DBNAME'
export PGBINDIR='$BINDIR'
ENV
}

# A postmaster.pid whose process is gone, or is not a postgres, is stale.
clear_stale_pid() {
	local pidfile="$DATA/postmaster.pid" pid
	[ -f "$pidfile" ] || return 0
	pid=$(head -n 1 "$pidfile")
	if [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q postgres; then
		return 0
	fi
	echo "server.sh: removing stale $pidfile (pid $pid is gone)"
	rm -f "$pidfile"
}

init_cluster() {
	# An initdb cut short leaves a directory without PG_VERSION: start over.
	if [ ! -f "$DATA/PG_VERSION" ]; then
		rm -rf "$DATA"
		mkdir -p "$DATA"
		[ "$(id -u)" -ne 0 ] || chown "$RUNAS" "$DATA"
		as_server "$BINDIR/initdb" -D "$DATA" -U postgres -A trust -E UTF8 \
			--locale=C.UTF-8 --no-sync >"$STATE/initdb.log" 2>&1 ||
			{ cat "$STATE/initdb.log" >&2; die "initdb failed"; }
		echo "include_if_exists = 'loyalty_server.conf'" | as_server tee -a "$DATA/postgresql.conf" >/dev/null
	fi
}

start() {
	mkdir -p "$SOCK"
	[ "$(id -u)" -ne 0 ] || chown "$RUNAS" "$SOCK"
	init_cluster
	local port
	if running; then
		port=$(current_port)
	else
		clear_stale_pid
		port=$(pick_port)
		as_server tee "$DATA/loyalty_server.conf" >/dev/null <<CONF
# written by test/server.sh at every start
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$SOCK'
shared_preload_libraries = 'pg_cron'
cron.database_name = '$DBNAME'
max_connections = 100
shared_buffers = '${LOYALTY_SHARED_BUFFERS:-2GB}'
max_prepared_transactions = 10
wal_compression = lz4
log_min_messages = warning
log_line_prefix = '%m [%p] %q%u@%d '
CONF
		local wrapper=${LOYALTY_PG_WRAPPER:-$BINDIR/postgres}
		if [ -n "${LOYALTY_FAKETIME:-}" ] && [ -z "${LOYALTY_PG_WRAPPER:-}" ]; then
			[ -f "$FAKETIME_LIB" ] || die "LOYALTY_FAKETIME needs libfaketime (apt-get install libfaketime)"
			wrapper="$STATE/postgres-faketime"
			cat >"$wrapper" <<WRAP
#!/bin/sh
# written by test/server.sh: the server's clock shifted by $LOYALTY_FAKETIME
export LD_PRELOAD='$FAKETIME_LIB'
export FAKETIME='$LOYALTY_FAKETIME'
export FAKETIME_DONT_FAKE_MONOTONIC=1
exec '$BINDIR/postgres' "\$@"
WRAP
			chmod 755 "$wrapper"
		fi
		as_server "$BINDIR/pg_ctl" -D "$DATA" -l "$LOG" -w -t 120 \
			-p "$wrapper" start >/dev/null ||
			{ tail -n 20 "$LOG" >&2; die "the server did not start (log: $LOG)"; }
	fi
	write_env "$port"
	# shellcheck disable=SC1090
	. "$ENVFILE"
	if [ "$("$BINDIR/psql" -X -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DBNAME'")" != 1 ]; then
		"$BINDIR/createdb" "$DBNAME"
	fi
	echo "server.sh: PostgreSQL $("$BINDIR/postgres" --version | awk '{print $3}') runs as $RUNAS on port $port, socket $SOCK"
}

stop() {
	if [ -f "$DATA/PG_VERSION" ] && running; then
		as_server "$BINDIR/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null
		echo "server.sh: stopped"
	else
		echo "server.sh: not running"
	fi
}

case "${1:-}" in
	start) start ;;
	stop) stop ;;
	status)
		if running; then echo "running on port $(current_port), socket $SOCK, data $DATA"; else echo "not running"; exit 3; fi ;;
	env)
		running || die "not running: test/server.sh start"
		cat "$ENVFILE" ;;
	*) die "usage: test/server.sh start|stop|status|env" ;;
esac
