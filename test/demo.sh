#!/usr/bin/env bash
# test/demo.sh — start the throwaway server, install the extension afresh in
# database "loyalty" and run test/demo.sql, which loads a sample programme and
# shows what the extension does.  The server keeps running afterwards.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
test/server.sh start
# shellcheck disable=SC1091
. tmp/server.env
"$PGBINDIR/psql" -X -q -v ON_ERROR_STOP=1 -d loyalty \
	-c 'DROP EXTENSION IF EXISTS loyalty CASCADE' -c 'CREATE EXTENSION loyalty'
"$PGBINDIR/psql" -X -v ON_ERROR_STOP=1 -d loyalty -f test/demo.sql
cat <<TXT

The demo server is still running.  Connect with:
    . tmp/server.env && psql
and stop it with:
    make stop
TXT
