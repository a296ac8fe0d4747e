#!/usr/bin/env bash
# test/valgrind.sh — run the test suite against the throwaway server started
# under valgrind memcheck, and fail if any error report passes through
# loyalty.so.  Reports from PostgreSQL itself or the dynamic loader are
# counted but not judged; test/valgrind.supp suppresses the false reports of
# memory shared between server processes.  Slow: run it when C code that parses input or
# allocates memory changes (make test-valgrind).
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
PG_CONFIG=${PG_CONFIG:-pg_config}
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }

LOGDIR="$REPO/tmp/valgrind"
rm -rf "$LOGDIR"
mkdir -p "$LOGDIR"
chmod 777 "$LOGDIR"
cat >"$LOGDIR/postgres" <<WRAP
#!/bin/sh
exec valgrind --quiet --trace-children=yes --error-limit=no --num-callers=30 \\
	--suppressions="$REPO/test/valgrind.supp" \\
	--log-file="$LOGDIR/vg.%p.log" "$("$PG_CONFIG" --bindir)/postgres" "\$@"
WRAP
chmod 755 "$LOGDIR/postgres"

test/server.sh stop >/dev/null
trap 'test/server.sh stop >/dev/null' EXIT
LOYALTY_SHARED_BUFFERS=128MB LOYALTY_PG_WRAPPER="$LOGDIR/postgres" test/server.sh start || exit 1
# LOYALTY_VALGRIND tells the tests that time searches (calculate_bruteforce)
# that the server runs slowly; the benchmark's one-second runs complete nothing under valgrind, the fuzz
# layer runs outside the server, and the future and failover layers run
# servers of their own (not under valgrind): skip them
LOYALTY_VALGRIND=1 LOYALTY_BRUTEFORCE_ARGS="--catalogues 10 --receipts 20" LOYALTY_KEEP_SERVER=1 LOYALTY_SKIP_BENCH=1 LOYALTY_SKIP_HA=1 LOYALTY_SKIP_FUTURE=1 LOYALTY_FUZZ_SECONDS=0 \
	test/run-tests.sh
rc=$?
test/server.sh stop >/dev/null
trap - EXIT

# One report is the block from "==PID== <Error>" to the next blank report
# line; it is ours if a frame is in loyalty.so or in one of our sources.
# the file names of our sources, src/kinds/ included (frames name the file)
sources=$(cd src && ls *.c kinds/*.c | sed 's|.*/||; s/\./\\./' | paste -sd'|')
ours=$(OURS="loyalty\\.so|\\(($sources):" awk '
	BEGIN { ours = ENVIRON["OURS"] }
	/^==[0-9]+== [A-Z]/ { block = $0; next }
	/^==[0-9]+==    (at|by) / { block = block "\n" $0; next }
	/^==[0-9]+== $/ { if (block ~ ours) print block "\n"; block = "" }' \
	"$LOGDIR"/vg.*.log)
total=$(cat "$LOGDIR"/vg.*.log | grep -cE '^==[0-9]+== [A-Z][a-z]+ ')
echo
echo "valgrind: $total reports in $LOGDIR, $(printf '%s' "$ours" | grep -cE '^==[0-9]+== [A-Z]') in loyalty.so"
if [ -n "$ours" ]; then
	printf '%s\n' "$ours"
	exit 1
fi
exit "$rc"
