#!/usr/bin/env bash
# test/upgrade/run.sh — the upgrade path, one delta at a time.
#
# src/updates/ holds the oldest release's whole install script
# (loyalty--0.1.sql) and one delta per later release (loyalty--A--B.sql).
# This script takes the versions from the deltas' file names, checks that
# they chain from the oldest release to loyalty.control's default_version,
# installs the oldest release with some data (test/upgrade/data.sql), and
# walks: ALTER EXTENSION loyalty UPDATE TO each next version in turn.  At
# every version whose whole install script exists (the oldest, and the
# current one, which the Makefile assembles from src/*.sql), the described
# schema (test/describe.sql) must equal that of a fresh install of it; at
# the end the data must read as it did before the walk
# (test/upgrade/snapshot.sql), the customers be found by their identifiers,
# and their wallets take points.  It also checks the parts of the install script: each table
# is created once, and no part alters a table another part created.
#
# Prints "ok - ..." or "not ok - ..." lines and, last, "upgrade walked N
# versions: A to B"; exits non-zero if one is not ok.  Needs the throwaway
# server (tmp/server.env) and the extension installed (make install).
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
# shellcheck disable=SC1091
. tmp/server.env
OUT=tmp/upgrade
rm -rf "$OUT"
mkdir -p "$OUT"
bad=0
ok() { echo "ok - $1"; }
notok() { echo "not ok - $1"; bad=1; }
psql_in() { local db=$1; shift; "$PGBINDIR/psql" -X -q -v ON_ERROR_STOP=1 -d "$db" "$@"; }
fresh_db() { "$PGBINDIR/dropdb" --if-exists "$1" && "$PGBINDIR/createdb" "$1"; }

# --- the parts of the install script (Makefile SQL_PARTS) -------------------
mapfile -t PARTS < <(sed -n '/^SQL_PARTS/,/^[^ ]/p' Makefile | grep -o 'src/[a-z_]*\.sql')
declare -A OWNER=()
twice=()
for part in "${PARTS[@]}"; do
	while read -r table; do
		if [ -n "${OWNER[$table]:-}" ]; then
			twice+=("$table ($part and ${OWNER[$table]})")
		else
			OWNER[$table]=$part
		fi
	done < <(grep -oE '^CREATE TABLE @extschema@\.[a-z_0-9]+' "$part" | sed 's/.*\.//')
done
if [ ${#PARTS[@]} -gt 0 ] && [ ${#OWNER[@]} -gt 0 ] && [ ${#twice[@]} -eq 0 ]; then
	ok "each of the ${#OWNER[@]} tables is created once, in one of the ${#PARTS[@]} parts"
else
	notok "each table is created once in the parts: ${twice[*]:-no parts or tables found}"
fi
foreign=()
for part in "${PARTS[@]}"; do
	while read -r table; do
		owner=${OWNER[$table]:-}
		[ -n "$owner" ] && [ "$owner" != "$part" ] && foreign+=("$part alters $table of $owner")
	done < <(grep -oE '^(ALTER TABLE|DROP (TABLE|INDEX)|COMMENT ON (TABLE|COLUMN)|CREATE (UNIQUE )?INDEX [a-z_0-9]+ ON|CREATE POLICY [a-z_0-9]+ ON) @extschema@\.[a-z_0-9]+' "$part" |
		sed 's/.*@extschema@\.//')
done
if [ ${#foreign[@]} -eq 0 ]; then
	ok "no part alters, indexes or comments on a table another part created"
else
	notok "no part alters a table another part created: ${foreign[*]}"
fi
mapfile -t dropped < <(grep -nE '^DROP[[:space:]]' "${PARTS[@]}")
if [ ${#dropped[@]} -eq 0 ]; then
	ok "no part drops what the install script created"
else
	notok "no part drops what the install script created: ${dropped[*]}"
fi

# --- the versions, from the deltas' names ------------------------------------
current=$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" loyalty.control)
mapfile -t FULL < <(ls src/updates/ | sed -n 's/^loyalty--\([0-9.]*\)\.sql$/\1/p' | sort -V)
oldest=${FULL[0]:-}
declare -A NEXT=()
while read -r from to; do
	[ -n "${NEXT[$from]:-}" ] && notok "two deltas start from $from: to ${NEXT[$from]} and to $to"
	NEXT[$from]=$to
done < <(ls src/updates/ | sed -n 's/^loyalty--\([0-9.]*\)--\([0-9.]*\)\.sql$/\1 \2/p' | sort -V)
WALK=("$oldest")
v=$oldest
while [ -n "${NEXT[$v]:-}" ] && [ ${#WALK[@]} -le ${#NEXT[@]} ]; do
	v=${NEXT[$v]}
	WALK+=("$v")
done
if [ -n "$oldest" ] && [ "$v" = "$current" ] && [ $((${#WALK[@]} - 1)) -eq ${#NEXT[@]} ]; then
	ok "the ${#NEXT[@]} deltas of src/updates/ lead from $oldest to $current, one after another"
else
	notok "the deltas of src/updates/ lead from ${oldest:-the oldest release} to $current (the walk ${WALK[*]} uses $((${#WALK[@]} - 1)) of ${#NEXT[@]})"
	exit 1
fi
if [ ${#FULL[@]} -eq 1 ]; then
	ok "src/updates/ holds one whole install script, the oldest release's ($oldest), and deltas"
else
	notok "src/updates/ holds one whole install script, not ${#FULL[*]}: ${FULL[*]}"
fi

# --- a fresh install of every version that has a whole script ----------------
has_script() { [ "$1" = "$current" ] || [ -f "src/updates/loyalty--$1.sql" ]; }
for version in "${WALK[@]}"; do
	has_script "$version" || continue
	db=loyalty_fresh
	fresh_db "$db" && psql_in "$db" -c "CREATE EXTENSION loyalty VERSION '$version'" &&
		psql_in "$db" -f test/describe.sql > "$OUT/fresh-$version.txt" ||
		notok "a fresh install of $version"
done

# --- the walk ------------------------------------------------------------------
db=loyalty_upgrade
if fresh_db "$db" && psql_in "$db" -c "CREATE EXTENSION loyalty VERSION '$oldest'" &&
	psql_in "$db" -f test/upgrade/data.sql > "$OUT/data.log" 2>&1 &&
	psql_in "$db" -f test/upgrade/snapshot.sql > "$OUT/snapshot-before.txt"; then
	ok "installed $oldest with a programme, customers and identifiers ($(wc -l < "$OUT/snapshot-before.txt") rows)"
else
	cat "$OUT/data.log"
	notok "installed $oldest with a programme, customers and identifiers"
	exit 1
fi
walked=0
prev=$oldest
for version in "${WALK[@]}"; do
	if [ "$version" != "$oldest" ]; then
		if psql_in "$db" -c "ALTER EXTENSION loyalty UPDATE TO '$version'" > "$OUT/step-$version.log" 2>&1 &&
			[ "$(psql_in "$db" -Atc "SELECT extversion FROM pg_extension WHERE extname = 'loyalty'")" = "$version" ]; then
			ok "$prev to $version (src/updates/loyalty--$prev--$version.sql)"
			walked=$((walked + 1))
		else
			cat "$OUT/step-$version.log"
			notok "$prev to $version (src/updates/loyalty--$prev--$version.sql)"
			exit 1
		fi
	fi
	prev=$version
	has_script "$version" || continue
	psql_in "$db" -f test/describe.sql > "$OUT/upgraded-$version.txt"
	if diff -u "$OUT/fresh-$version.txt" "$OUT/upgraded-$version.txt" > "$OUT/diff-$version.txt"; then
		ok "at $version the schema equals a fresh install of $version ($(wc -l < "$OUT/fresh-$version.txt") lines of test/describe.sql)"
	else
		head -80 "$OUT/diff-$version.txt"
		notok "at $version the schema equals a fresh install of $version (diff: $OUT/diff-$version.txt)"
	fi
done

# --- the data kept -------------------------------------------------------------
psql_in "$db" -f test/upgrade/snapshot.sql > "$OUT/snapshot-after.txt"
if diff -u "$OUT/snapshot-before.txt" "$OUT/snapshot-after.txt"; then
	ok "the data written at $oldest reads the same at $current"
else
	notok "the data written at $oldest reads the same at $current"
fi
found=$(psql_in "$db" -Atc "
	SELECT count(*) FILTER (WHERE (loyalty.identify('walk', x.ident) ->> 'customer_id')::bigint = x.cid)
	  FROM (VALUES ('+7 912 345 67 89', (SELECT min(id) FROM loyalty.customer)),
	               ('anna@example.com', (SELECT min(id) FROM loyalty.customer)),
	               ('5500000000000004', (SELECT max(id) FROM loyalty.customer))) AS x (ident, cid)" 2>&1)
if [ "$found" = 3 ]; then
	ok "at $current identify finds the customers enrolled at $oldest by phone, e-mail and the replacing card"
else
	notok "at $current identify finds the customers enrolled at $oldest by phone, e-mail and the replacing card: $found"
fi

moved=$(psql_in "$db" -Atc "
	SELECT (loyalty.accrue(c.id, 'bonus', 1000)).balance_after || ' ' || (loyalty.redeem(c.id, 'bonus', 300)).balance_after
	  FROM (SELECT min(id) AS id FROM loyalty.customer) c" 2>&1)
if [ "$moved" = "1000 700" ]; then
	ok "at $current a customer enrolled at $oldest earns 1000 points and spends 300 (balance 700)"
else
	notok "at $current a customer enrolled at $oldest earns 1000 points and spends 300: $moved"
fi

# --- a receipt committed by the previous version, returned by this one --------
penult=${WALK[${#WALK[@]}-2]}
db=loyalty_upgrade_receipt
if fresh_db "$db" && psql_in "$db" -c "CREATE EXTENSION loyalty VERSION '$oldest'" > /dev/null &&
	psql_in "$db" -c "ALTER EXTENSION loyalty UPDATE TO '$penult'" > /dev/null &&
	psql_in "$db" -f test/upgrade/receipt-commit.sql > "$OUT/receipt-commit.log" 2>&1 &&
	psql_in "$db" -c "ALTER EXTENSION loyalty UPDATE TO '$current'" > /dev/null &&
	psql_in "$db" -Atf test/upgrade/receipt-return.sql > "$OUT/receipt-return.txt" 2>&1 &&
	[ "$(tr -d '\n' < "$OUT/receipt-return.txt")" = "t|t|ttt|ttt|t" ]; then
	ok "receipts committed at $penult are returned line by line and cancelled at $current, their points back where they were"
else
	cat "$OUT/receipt-commit.log" "$OUT/receipt-return.txt" 2>/dev/null
	notok "receipts committed at $penult are returned line by line and cancelled at $current, their points back where they were"
fi

# --- challenges as 0.21 kept them, converted by 0.22 ---------------------------
db=loyalty_upgrade_challenges
if fresh_db "$db" && psql_in "$db" -c "CREATE EXTENSION loyalty VERSION '$oldest'" > /dev/null &&
	psql_in "$db" -c "ALTER EXTENSION loyalty UPDATE TO '0.21'" > /dev/null &&
	psql_in "$db" -f test/upgrade/challenges-0.21.sql > "$OUT/challenges.log" 2>&1 &&
	psql_in "$db" -c "ALTER EXTENSION loyalty UPDATE TO '$current'" > /dev/null &&
	psql_in "$db" -Atf test/upgrade/challenges-0.22.sql > "$OUT/challenges.txt" 2>&1 &&
	[ "$(tr -d '\n' < "$OUT/challenges.txt")" = "tttttttt" ]; then
	ok "challenges kept by 0.21 are converted at 0.22: the state of each goal, the receipts' entries, then a return and a late receipt"
else
	cat "$OUT/challenges.log" "$OUT/challenges.txt" 2>/dev/null
	notok "challenges kept by 0.21 are converted at 0.22: the state of each goal, the receipts' entries, then a return and a late receipt"
fi

# --- a tier changed before the last update, and after it ----------------------
db=loyalty_upgrade_tiers
if fresh_db "$db" && psql_in "$db" -c "CREATE EXTENSION loyalty VERSION '$oldest'" > /dev/null &&
	psql_in "$db" -c "ALTER EXTENSION loyalty UPDATE TO '$penult'" > /dev/null &&
	psql_in "$db" -Atv updated=false -f test/upgrade/tiers.sql > "$OUT/tiers.txt" 2>&1 &&
	psql_in "$db" -c "ALTER EXTENSION loyalty UPDATE TO '$current'" > /dev/null &&
	psql_in "$db" -Atv updated=true -f test/upgrade/tiers.sql >> "$OUT/tiers.txt" 2>&1 &&
	[ "$(tr -d '\n' < "$OUT/tiers.txt")" = "tt" ]; then
	ok "a tier changed at $penult and one added at $current each lift the customer at the next commit"
else
	cat "$OUT/tiers.txt" 2>/dev/null
	notok "a tier changed at $penult and one added at $current each lift the customer at the next commit"
fi

echo "upgrade walked $walked versions: $oldest to $current"
exit $bad
