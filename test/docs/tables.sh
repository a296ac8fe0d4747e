#!/usr/bin/env bash
# test/docs/tables.sh — the reference part of docs/tables.md, generated from
# the catalogue: in a fresh database with the extension (as installed),
# test/docs/tables.sql renders each table's section (its COMMENT, its
# columns with type, default, constraints and COMMENT) and the list of
# tables between the <!-- BEGIN ... --> and <!-- END ... --> markers of the
# document, and keeps everything else as written.
#
#   test/docs/tables.sh --check   (the default) compare: print "ok - ..." or
#                                 "not ok - ..." with a diff, exit 1 when the
#                                 document differs from the catalogue
#   test/docs/tables.sh --write   rewrite docs/tables.md (make docs)
#
# Uses the throwaway server (test/server.sh): starts it when it does not run,
# and stops it again in that case.  The database is loyalty_docs.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
mode=${1:---check}
case "$mode" in
	--check | --write) ;;
	*) echo "usage: $0 [--check | --write]" >&2; exit 2 ;;
esac
DOC=docs/tables.md
DB=loyalty_docs
OUT=tmp/docs/tables.md

started=0
if ! test/server.sh status >/dev/null 2>&1; then
	test/server.sh start >/dev/null || exit 1
	started=1
fi
stop() { [ "$started" = 0 ] || test/server.sh stop >/dev/null; }
trap stop EXIT
# shellcheck disable=SC1091
. tmp/server.env

mkdir -p tmp/docs
"$PGBINDIR/dropdb" --if-exists "$DB" 2>/dev/null || exit 1
"$PGBINDIR/createdb" "$DB" || exit 1
"$PGBINDIR/psql" -X -q -v ON_ERROR_STOP=1 -d "$DB" -c 'CREATE EXTENSION loyalty' || exit 1
# The script prints the document without its last newline; psql adds one.
if ! "$PGBINDIR/psql" -X -q -v ON_ERROR_STOP=1 -v file="$DOC" -d "$DB" \
		-f test/docs/tables.sql > "$OUT"; then
	echo "not ok - $DOC could not be rendered from the catalogue"
	exit 1
fi


if [ "$mode" = --write ]; then
	if cmp -s "$OUT" "$DOC"; then
		echo "$DOC is up to date"
	else
		cp "$OUT" "$DOC"
		echo "$DOC rewritten from the catalogue"
	fi
	exit 0
fi
if diff -u "$DOC" "$OUT"; then
	echo "ok - $DOC says what the catalogue says"
else
	echo "not ok - $DOC differs from the catalogue (above: - the document, + the catalogue);" \
		"change the COMMENTs in src/*.sql (and src/updates/), then run make docs"
	exit 1
fi
