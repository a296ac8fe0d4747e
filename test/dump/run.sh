#!/usr/bin/env bash
# test/dump/run.sh — pg_dump and pg_restore of a database with the
# extension and its data round-trip: test/dump/data.sql fills a database,
# pg_dump -Fc saves it, pg_restore --single-transaction restores it into a
# fresh one, and test/dump/compare.sql (every table, balances, sequences,
# partitions) must print the same on both; then test/dump/after.sql (a
# checkout, a cancel, ids continuing) must do the same on both.  Last, the
# schema pg_dump --binary-upgrade writes (every object of the extension, as
# pg_upgrade would recreate it) must be the same for a fresh install and for
# one installed as the oldest release and upgraded through every delta.
# Prints "ok - ..." or "not ok - ..." lines; exits non-zero if one is not ok.
# Needs the throwaway server (tmp/server.env) and the extension installed.
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
# shellcheck disable=SC1091
. tmp/server.env
OUT=tmp/dump
SRC=loyalty_dump_src
DST=loyalty_dump_dst
rm -rf "$OUT"
mkdir -p "$OUT"
psql_in() { local db=$1; shift; "$PGBINDIR/psql" -X -q -v ON_ERROR_STOP=1 -d "$db" "$@"; }
bad=0
ok() { echo "ok - $1"; }
notok() { echo "not ok - $1"; bad=1; }

for db in "$SRC" "$DST"; do "$PGBINDIR/dropdb" --if-exists "$db"; done
"$PGBINDIR/createdb" "$SRC" && psql_in "$SRC" -c 'CREATE EXTENSION loyalty' &&
	psql_in "$SRC" -f test/dump/data.sql >"$OUT/data.log" 2>&1 ||
	{ cat "$OUT/data.log"; notok "the database to dump is filled"; exit 1; }
ok "the database to dump is filled (test/dump/data.sql)"

if "$PGBINDIR/pg_dump" -Fc -f "$OUT/loyalty.dump" "$SRC" 2>"$OUT/pg_dump.log"; then
	ok "pg_dump -Fc saves it"
else
	cat "$OUT/pg_dump.log"; notok "pg_dump -Fc saves it"; exit 1
fi
"$PGBINDIR/createdb" "$DST"
if "$PGBINDIR/pg_restore" --single-transaction --exit-on-error -d "$DST" "$OUT/loyalty.dump" >"$OUT/pg_restore.log" 2>&1; then
	ok "pg_restore --single-transaction restores it into a fresh database"
else
	cat "$OUT/pg_restore.log"; notok "pg_restore --single-transaction restores it into a fresh database"; exit 1
fi

psql_in "$SRC" -f test/dump/compare.sql >"$OUT/source.txt" 2>&1
psql_in "$DST" -f test/dump/compare.sql >"$OUT/restored.txt" 2>&1
if [ -s "$OUT/source.txt" ] && ! grep -q ERROR "$OUT/source.txt" && diff -u "$OUT/source.txt" "$OUT/restored.txt" >"$OUT/compare.diff"; then
	ok "every table, balance, sequence and partition is the same after the restore ($(wc -l <"$OUT/source.txt") lines)"
else
	head -60 "$OUT/compare.diff"; grep ERROR "$OUT/source.txt" "$OUT/restored.txt"
	notok "every table, balance, sequence and partition is the same after the restore"
fi

psql_in "$SRC" -f test/dump/after.sql >"$OUT/source.after.txt" 2>&1
psql_in "$DST" -f test/dump/after.sql >"$OUT/restored.after.txt" 2>&1
if [ -s "$OUT/source.after.txt" ] && ! grep -q ERROR "$OUT/source.after.txt" &&
	diff -u "$OUT/source.after.txt" "$OUT/restored.after.txt" >"$OUT/after.diff"; then
	ok "the restored database goes on like the dumped one: a checkout, a cancel, ids continuing"
else
	head -60 "$OUT/after.diff"; grep ERROR "$OUT/source.after.txt" "$OUT/restored.after.txt"
	notok "the restored database goes on like the dumped one: a checkout, a cancel, ids continuing"
fi

# pg_dump --binary-upgrade --schema-only of a fresh install and of an
# upgraded one.  What differs by nature is left out: the OIDs and
# transaction ids pg_upgrade carries over, the OIDs of the configuration
# tables, and the "missing values" of columns added by ALTER TABLE ADD COLUMN
# (rows written before the column existed read its default from there: a
# storage detail of the upgraded tables, not a difference of schema).
normalise_dump() {
	grep -v -e 'binary_upgrade_set_next_' -e 'binary_upgrade_set_missing_value' \
		-e '^-- set missing value\.$' -e '^-- Dumped ' -e '^\\restrict ' -e '^\\unrestrict ' "$1" |
		sed -E -e "s/relfrozenxid = '[0-9]+', relminmxid = '[0-9]+'/relfrozenxid = X, relminmxid = X/" \
			-e "s/WHERE oid = '[0-9]+'/WHERE oid = X/" \
			-e "s/(binary_upgrade_create_empty_extension\('loyalty', 'loyalty', [a-z]+, '[^']*', )'\{[0-9,]*\}'/\1'{OIDS}'/" |
		cat -s
}
oldest=$(ls src/updates/ | sed -n 's/^loyalty--\([0-9.]*\)\.sql$/\1/p' | sort -V | head -1)
for db in loyalty_dump_fresh loyalty_dump_upgraded; do "$PGBINDIR/dropdb" --if-exists "$db" 2>/dev/null; "$PGBINDIR/createdb" "$db"; done
if psql_in loyalty_dump_fresh -c 'CREATE EXTENSION loyalty' &&
	psql_in loyalty_dump_upgraded -c "CREATE EXTENSION loyalty VERSION '$oldest'" -c 'ALTER EXTENSION loyalty UPDATE' &&
	"$PGBINDIR/pg_dump" --schema-only --binary-upgrade -f "$OUT/fresh.sql" loyalty_dump_fresh 2>"$OUT/pg_dump.fresh.log" &&
	"$PGBINDIR/pg_dump" --schema-only --binary-upgrade -f "$OUT/upgraded.sql" loyalty_dump_upgraded 2>"$OUT/pg_dump.upgraded.log"; then
	normalise_dump "$OUT/fresh.sql" >"$OUT/fresh.normalised.sql"
	normalise_dump "$OUT/upgraded.sql" >"$OUT/upgraded.normalised.sql"
	if [ "$(grep -c '^CREATE ' "$OUT/fresh.normalised.sql")" -gt 100 ] &&
		diff -u "$OUT/fresh.normalised.sql" "$OUT/upgraded.normalised.sql" >"$OUT/schema.diff"; then
		ok "pg_dump --binary-upgrade writes the same schema for a fresh install and one upgraded from $oldest ($(grep -c '^CREATE ' "$OUT/fresh.normalised.sql") objects created)"
	else
		head -60 "$OUT/schema.diff"
		notok "pg_dump --binary-upgrade writes the same schema for a fresh install and one upgraded from $oldest (diff: $OUT/schema.diff)"
	fi
else
	cat "$OUT/pg_dump.fresh.log" "$OUT/pg_dump.upgraded.log" 2>/dev/null
	notok "pg_dump --binary-upgrade writes the same schema for a fresh install and one upgraded from $oldest"
fi
for db in loyalty_dump_fresh loyalty_dump_upgraded; do "$PGBINDIR/dropdb" --if-exists "$db" 2>/dev/null; done
exit $bad
