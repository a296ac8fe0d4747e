#!/usr/bin/env bash
# test/pooled/run.sh — the extension behind pgbouncer in transaction mode,
# as docs/tour-backend.md recommends for tills.  Starts pgbouncer (Debian's
# package) on a free port of 127.0.0.1, in front of the throwaway server's
# 127.0.0.1 listener, with its configuration, log and pid under tmp/pooled;
# prepares the database loyalty_pooled (programmes north and south, a till
# role bound to each, a customer per client and one more); then
# test/pooled/client.py
# runs checkouts of both tills through the pool while an admin revokes and
# grants the north till's programme on a direct connection, and checks
# SET LOCAL and LISTEN (see client.py).  Prints "ok -" or "not ok -" per
# check and exits non-zero if any fails.  Run by test/run-tests.sh against
# the throwaway server (libpq variables set).
#
# pgbouncer runs as the server's user ("postgres") when started by root.
# Pools: default_pool_size 2 per till, so that each till's 3 clients share
# its server connections; the database alias loyalty_one has one server
# connection per till, so that consecutive clients meet the same backend.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BINDIR=${PGBINDIR:-$(pg_config --bindir)}
DB=loyalty_pooled
TILLS=(pooled_till_north pooled_till_south)
CLIENTS=3

die() { echo "not ok - $*"; exit 1; }

command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || die "pgbouncer is not installed (make deps)"
PGBOUNCER=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
PY=/usr/bin/python3   # Debian's, with psycopg 3
"$PY" -c 'import psycopg' 2>/dev/null || die "psycopg 3 is not installed (make deps: python3-psycopg)"
[ -n "${PGPORT:-}" ] || die "PGPORT is not set: run under test/run-tests.sh or after . tmp/server.env"

# Who runs pgbouncer: never root.
if [ "$(id -u)" -eq 0 ]; then
	RUNAS=${LOYALTY_PG_USER:-postgres}
	as_runner() { (cd / && runuser -u "$RUNAS" -- "$@"); }
else
	RUNAS=$(id -un)
	as_runner() { "$@"; }
fi

# Its directory: tmp/pooled, or one under /tmp when the runner cannot use it.
STATE="$REPO/tmp/pooled"
usable() {
	mkdir -p "$1" && { [ "$(id -u)" -ne 0 ] || chown "$RUNAS" "$1"; } && as_runner test -w "$1" -a -x "$1"
}
if [ -L "$STATE" ] || ! usable "$STATE" 2>/dev/null; then
	ALT="/tmp/loyalty-pooled-$(printf '%s' "$REPO" | md5sum | cut -c1-10)"
	usable "$ALT" || die "no directory that $RUNAS can use for pgbouncer"
	[ -L "$STATE" ] || rm -rf "$STATE"
	ln -sfn "$ALT" "$STATE"
	STATE=$ALT
fi
PIDFILE="$STATE/pgbouncer.pid"

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=$((56400 + $(printf '%s' "$REPO" | cksum | cut -d' ' -f1) % 500))
for _ in $(seq 1 200); do
	port_free "$port" && break
	port=$((port + 1))
done
port_free "$port" || die "no free port for pgbouncer"

stop_pgbouncer() {
	local pid
	pid=$(cat "$PIDFILE" 2>/dev/null) || return 0
	[ -n "$pid" ] && kill "$pid" 2>/dev/null
	for _ in $(seq 1 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	rm -f "$PIDFILE"
}
cleanup() {
	stop_pgbouncer
	"$BINDIR/dropdb" --if-exists --force "$DB" 2>/dev/null
	for till in "${TILLS[@]}"; do
		"$BINDIR/psql" -X -q -d postgres -c "DROP ROLE IF EXISTS $till" 2>/dev/null
	done
}
trap cleanup EXIT
stop_pgbouncer	# one left by a run that was killed

# The database, the programmes, the tills and their customers.
"$BINDIR/dropdb" --if-exists "$DB" 2>/dev/null
"$BINDIR/createdb" "$DB" || die "createdb $DB"
"$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -v clients="$CLIENTS" -d "$DB" >/dev/null <<'SQL' || die "the set-up of $DB failed"
SET client_min_messages = warning;
CREATE EXTENSION loyalty;
BEGIN;
INSERT INTO loyalty.program (code, name, default_currency, accrual_rate_bp)
VALUES ('north', 'North', 'pts', 500), ('south', 'South', 'pts', 500);
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit)
SELECT id, 'pts', 'Points', 1 FROM loyalty.program;
COMMIT;
INSERT INTO loyalty.promotion (program_id, code, name, status, line_condition, benefit)
SELECT id, 'TEA10', 'Tea 10% off', 'active', 'sku = ''TEA''', '{"kind": "percent_off", "percent": 10}'
  FROM loyalty.program;
SELECT loyalty.enroll(p, card => (CASE p WHEN 'north' THEN '7001' ELSE '7002' END) || lpad(c::text, 4, '0'))
  FROM unnest(ARRAY['north', 'south']) p, generate_series(1, :clients + 1) c;
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['pooled_till_north', 'pooled_till_south'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I LOGIN IN ROLE loyalty_cashier', r);
        END IF;
    END LOOP;
END
$$;
SELECT loyalty.grant_program('north', 'pooled_till_north'), loyalty.grant_program('south', 'pooled_till_south');
SQL

# pgbouncer: transaction pooling, trust (the server trusts its loopback).
{
	echo '[databases]'
	echo "$DB = host=127.0.0.1 port=$PGPORT dbname=$DB"
	echo "loyalty_one = host=127.0.0.1 port=$PGPORT dbname=$DB pool_size=1"
	echo '[pgbouncer]'
	echo 'listen_addr = 127.0.0.1'
	echo "listen_port = $port"
	echo 'unix_socket_dir ='
	echo 'auth_type = trust'
	echo "auth_file = $STATE/userlist.txt"
	echo 'pool_mode = transaction'
	echo 'default_pool_size = 2'
	echo 'max_client_conn = 100'
	echo 'ignore_startup_parameters = extra_float_digits'
	echo "logfile = $STATE/pgbouncer.log"
	echo "pidfile = $PIDFILE"
} >"$STATE/pgbouncer.ini"
printf '"%s" ""\n' "${TILLS[@]}" >"$STATE/userlist.txt"
[ "$(id -u)" -ne 0 ] || chown "$RUNAS" "$STATE/pgbouncer.ini" "$STATE/userlist.txt"
: >"$STATE/pgbouncer.log" && { [ "$(id -u)" -ne 0 ] || chown "$RUNAS" "$STATE/pgbouncer.log"; }
as_runner "$PGBOUNCER" -d "$STATE/pgbouncer.ini" || die "pgbouncer did not start (see $STATE/pgbouncer.log)"
for _ in $(seq 1 50); do
	port_free "$port" || break
	sleep 0.1
done
port_free "$port" && die "pgbouncer does not listen on 127.0.0.1:$port (see $STATE/pgbouncer.log)"
echo "pooled: $("$PGBOUNCER" -V | head -1), pool_mode transaction, 127.0.0.1:$port, $CLIENTS clients per till"

POOLED_PORT=$port POOLED_CLIENTS=$CLIENTS PGDATABASE=$DB "$PY" "$REPO/test/pooled/client.py"
exit $?
