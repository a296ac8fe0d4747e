#!/usr/bin/env bash
# test/fuzz/run.sh — fuzz the condition language (make fuzz).
#
# Builds tmp/fuzz/fuzz_condition with clang -fsanitize=fuzzer,address,undefined
# from test/fuzz/fuzz_condition.c, test/fuzz/shim.c and the condition core
# (src/condparse.c, condcode.c, condeval.c, condindex.c; not the SQL glue in
# src/condition.c), with the core's Asserts enabled, then runs it for
# FUZZ_SECONDS on the growing corpus tmp/fuzz/corpus/ (never committed),
# started from the committed seeds test/fuzz/seeds/, with the dictionary of
# the language's words test/fuzz/condition.dict.  The inputs of crashes found
# and fixed before (test/fuzz/crashes/, committed) are replayed first.
#
# Environment:
#   FUZZ_SECONDS    how long to fuzz (default 60); 15 is a smoke run
#   FUZZ_MAX_LEN    longest input (default 4096)
#   FUZZ_ARGS       more libFuzzer options, e.g. "-seed=1 -jobs=2"
# A crash (a sanitizer report, an abort of the harness's checks, a timeout or
# a leak) leaves its input as tmp/fuzz/crash-* (or leak-*, timeout-*); replay
# it with tmp/fuzz/fuzz_condition FILE.  The libFuzzer log is tmp/fuzz/fuzz.log.
# Prints the executions and the result; exits 1 on a crash, 2 if the build
# or the run itself fails.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
SECONDS_TO_RUN=${FUZZ_SECONDS:-60}
MAX_LEN=${FUZZ_MAX_LEN:-4096}
PG_CONFIG=${PG_CONFIG:-pg_config}
CC_FUZZ=${CC_FUZZ:-clang}
OUT=tmp/fuzz
BIN=$OUT/fuzz_condition
SOURCES=(test/fuzz/fuzz_condition.c test/fuzz/shim.c
	src/condparse.c src/condcode.c src/condeval.c src/condindex.c)
HEADERS=(test/fuzz/shim.h src/condition.h src/condcode.h)
for v in "$SECONDS_TO_RUN" "$MAX_LEN"; do
	[[ "$v" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: \"$v\" is not a positive integer" >&2; exit 2; }
done
command -v "$CC_FUZZ" >/dev/null || { echo "run.sh: no $CC_FUZZ; run 'make deps' (packages clang, libclang-rt-14-dev)" >&2; exit 2; }

mkdir -p "$OUT/corpus"

# Build when the binary is missing or older than a source.
stale=0
[ -x "$BIN" ] || stale=1
for f in "${SOURCES[@]}" "${HEADERS[@]}" test/fuzz/run.sh; do
	if [ "$f" -nt "$BIN" ]; then stale=1; fi
done
if [ "$stale" = 1 ]; then
	echo "== fuzz: building $BIN"
	# -Wno-ignored-attributes: the server headers ask for gnu_printf, which
	# clang does not know.  -fwrapv and -fno-strict-aliasing as the server
	# is built; Asserts on, unlike the packaged server.
	"$CC_FUZZ" -g -O1 -fno-omit-frame-pointer \
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-fwrapv -fno-strict-aliasing -DUSE_ASSERT_CHECKING \
		-Wall -Wextra -Wno-unused-parameter -Wno-ignored-attributes \
		-I src -I test/fuzz -I "$("$PG_CONFIG" --includedir-server)" \
		"${SOURCES[@]}" -o "$BIN.new" || { echo "run.sh: the build failed" >&2; exit 2; }
	mv "$BIN.new" "$BIN"
fi

echo "== fuzz: $BIN for $SECONDS_TO_RUN s, inputs up to $MAX_LEN bytes, corpus $OUT/corpus/ + test/fuzz/seeds/ + test/fuzz/crashes/"
rm -f "$OUT/fuzz.log"
rc=0
# shellcheck disable=SC2086
"$BIN" -max_total_time="$SECONDS_TO_RUN" -max_len="$MAX_LEN" -timeout=10 \
	-dict=test/fuzz/condition.dict -print_final_stats=1 -artifact_prefix="$OUT/" ${FUZZ_ARGS:-} \
	"$OUT/corpus" test/fuzz/seeds test/fuzz/crashes >"$OUT/fuzz.log" 2>&1 || rc=$?

execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$OUT/fuzz.log" | tail -n 1)
if [ -z "$execs" ]; then
	# a crash ends the run before the final stats; the last status line has the count
	execs=$(sed -n 's/^#\([0-9][0-9]*\)[[:space:]].*/\1/p' "$OUT/fuzz.log" | tail -n 1)
fi
corpus=$(find "$OUT/corpus" -type f | wc -l)
cov=$(sed -n 's/.* cov: \([0-9]*\) ft: \([0-9]*\).*/\1 edges, \2 features/p' "$OUT/fuzz.log" | tail -n 1)
artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$OUT/fuzz.log" | tail -n 1)

if [ "$rc" -eq 0 ]; then
	echo "fuzz: ${execs:-?} executions in $SECONDS_TO_RUN s, ${cov:-no coverage figures}, corpus $corpus inputs, no crash"
	exit 0
fi
echo "fuzz: ${execs:-?} executions, CRASHED (libFuzzer exit $rc); log $OUT/fuzz.log"
grep -E -A 30 '^(==[0-9]+==ERROR|fuzz_condition:|shim:|.*runtime error:|==[0-9]+== ERROR: libFuzzer)' "$OUT/fuzz.log" | head -n 60 || tail -n 40 "$OUT/fuzz.log"
if [ -n "$artifact" ]; then
	echo "fuzz: the input is $artifact; replay it with $BIN $artifact"
	exit 1
fi
exit 2
