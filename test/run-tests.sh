#!/usr/bin/env bash
# test/run-tests.sh — run every test layer against the throwaway server:
#   pg_regress          sql/*.sql against expected/*.out
#   pgTAP               test/pgtap/*.sql, by pg_prove
#   bruteforce          test/bruteforce/run.sh: calculate against an
#                       independent enumeration of every combination, written
#                       from docs/promotions.md alone, on random catalogues
#   future              pg_regress and pgTAP again on a second throwaway
#                       server whose clock runs two years ahead (libfaketime;
#                       LOYALTY_FUTURE=+OFFSET sets another, LOYALTY_SKIP_FUTURE=1
#                       skips it)
#   isolationtester     test/isolation/specs/*.spec, by pg_isolation_regress
#   pg_cron             test/cron/jobs.sql in the database pg_cron serves: the
#                       jobs scheduled, run by pg_cron, unscheduled
#   upgrade             test/upgrade/run.sh: the oldest release, with data,
#                       walked through every delta of src/updates/ one
#                       version at a time; its schema equals a fresh install
#                       (test/describe.sql) where one exists, and at the end;
#                       the summary says how many versions it walked
#   upgraded            the pgTAP suites on a schema installed as the oldest
#                       release and upgraded to the current one
#   docs                test/docs/tables.sh --check: docs/tables.md says what
#                       the catalogue of a fresh install says (make docs
#                       rewrites it)
#   log                 test/log/run.sh: the log of slow calculations
#   pooled              test/pooled/run.sh: tills behind pgbouncer in
#                       transaction mode, a revoke and a grant meanwhile
#   fuzz                test/fuzz/run.sh for a few seconds: no crash
#   bench               test/bench/run.sh in smoke mode: it exits 0 and prints
#                       every expected "bench ..." figure
#   dump                test/dump/run.sh: pg_dump and pg_restore of a database
#                       with the extension and data, compared table by table
#   ha                  test/ha/run.sh: the failover scenarios (kill-leader,
#                       switchover, stall) on a Patroni cluster of its own;
#                       each passes when it prints its "ha ..." line with
#                       nothing lost or duplicated (LOYALTY_SKIP_HA=1 skips)
#   errors              test/docs/errors.pl: every SQLSTATE of docs/errors.md is
#                       raised by a test, and every one the tests raise is
#                       listed (it reads what the layers above wrote)
# The extension must be installed (make install).  Prints a summary and a
# last line "N passed, N failed"; exits non-zero if anything failed.
# LOYALTY_KEEP_SERVER=1 leaves a server this script started running.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
PG_CONFIG=${PG_CONFIG:-pg_config}
PGXS_SRC=$(dirname "$(dirname "$("$PG_CONFIG" --pgxs)")")
PG_REGRESS="$PGXS_SRC/test/regress/pg_regress"
PG_ISOLATION_REGRESS="$PGXS_SRC/test/isolation/pg_isolation_regress"

started=0
if ! test/server.sh status >/dev/null 2>&1; then
	started=1
fi
test/server.sh start || exit 1
stop_main=0
if [ "$started" = 1 ] && [ "${LOYALTY_KEEP_SERVER:-0}" != 1 ]; then
	stop_main=1
fi
# the future layer's server never outlives the run
cleanup() {
	LOYALTY_SERVER=future test/server.sh stop >/dev/null 2>&1
	[ "$stop_main" = 0 ] || test/server.sh stop >/dev/null
}
trap cleanup EXIT
# shellcheck disable=SC1091
. tmp/server.env

declare -a LAYERS PASSED FAILED
record() { LAYERS+=("$1"); PASSED+=("$2"); FAILED+=("$3"); }
# NOTES[i]: what layer i adds to its line of the summary
declare -A NOTES=()

# Count "name ... ok" and "name ... FAILED" lines of a pg_regress run.
regress_counts() {
	local log=$1 ok bad
	ok=$(grep -cE '^(test |     )?[[:space:]]*[A-Za-z0-9_-]+[[:space:]]+\.\.\. ok' "$log")
	bad=$(grep -cE '\.\.\. (FAILED|failed)' "$log")
	echo "$ok $bad"
}

# Run a pg_regress-driven layer: name, driver, output directory, database,
# then driver options up to "--", then the tests.  Sets RUN_OK and RUN_BAD.
run_pg_regress() {
	local name=$1 bin=$2 outputdir=$3 db=$4 opts=() rc
	shift 4
	while [ "$1" != -- ]; do opts+=("$1"); shift; done
	shift
	echo
	echo "== $name: $# tests"
	rm -rf "$outputdir"
	mkdir -p "$outputdir"
	"$bin" "${opts[@]}" --outputdir="$outputdir" --bindir="$PGBINDIR" \
		--dbname="$db" "$@" 2>&1 | tee "tmp/$name.log"
	rc=${PIPESTATUS[0]}
	read -r RUN_OK RUN_BAD < <(regress_counts "tmp/$name.log")
	if [ "$rc" -ne 0 ]; then
		[ "$RUN_BAD" -gt 0 ] || RUN_BAD=1
		if [ -f "$outputdir/regression.diffs" ]; then
			echo "---- $outputdir/regression.diffs"
			cat "$outputdir/regression.diffs"
		fi
	fi
}

# Run the pgTAP files in a fresh database: name (of the log), database, then
# the statements that install the extension, up to "--", then the files.
# Sets RUN_OK and RUN_BAD.
run_pgtap() {
	local name=$1 db=$2 install=() rc
	shift 2
	while [ "$1" != -- ]; do install+=(-c "$1"); shift; done
	shift
	"$PGBINDIR/dropdb" --if-exists "$db"
	"$PGBINDIR/createdb" "$db"
	"$PGBINDIR/psql" -X -q -v ON_ERROR_STOP=1 -d "$db" -c 'CREATE EXTENSION pgtap' "${install[@]}"
	pg_prove -v -d "$db" "$@" 2>&1 | tee "tmp/$name.log"
	rc=${PIPESTATUS[0]}
	RUN_OK=$(grep -cE '^[[:space:]]*ok [0-9]+' "tmp/$name.log")
	RUN_BAD=$(grep -cE '^[[:space:]]*not ok [0-9]+' "tmp/$name.log")
	if [ "$rc" -ne 0 ] && [ "$RUN_BAD" -eq 0 ]; then
		RUN_BAD=1	# a bad plan or a crashed file
	fi
}

# Run a layer whose command prints "ok - ..." and "not ok - ..." lines: name,
# title, then the command.  It fails if a line says "not ok", or if the
# command exits non-zero (a set-up that failed prints no "not ok").
run_ok_lines() {
	local name=$1 title=$2 rc ok bad
	shift 2
	echo
	echo "== $name: $title"
	"$@" 2>&1 | tee "tmp/$name.log"
	rc=${PIPESTATUS[0]}
	ok=$(grep -c '^ok - ' "tmp/$name.log")
	bad=$(grep -c '^not ok - ' "tmp/$name.log")
	[ "$rc" -eq 0 ] || [ "$bad" -gt 0 ] || bad=1
	record "$name" "$ok" "$bad"
}

# pg_regress: the tests create the extension themselves.
mapfile -t REGRESS < <(ls sql/*.sql 2>/dev/null | sed 's|sql/||; s|\.sql$||')
if [ ${#REGRESS[@]} -gt 0 ]; then
	run_pg_regress pg_regress "$PG_REGRESS" tmp/regress loyalty_regress \
		--inputdir=. -- "${REGRESS[@]}"
	record pg_regress "$RUN_OK" "$RUN_BAD"
fi

# pgTAP: a fresh database with pgtap and loyalty; each file rolls itself back.
mapfile -t TAP < <(ls test/pgtap/*.sql 2>/dev/null)
if [ ${#TAP[@]} -gt 0 ]; then
	echo
	echo "== pgTAP: ${#TAP[@]} files"
	run_pgtap pgtap loyalty_tap 'CREATE EXTENSION loyalty' -- "${TAP[@]}"
	record pgTAP "$RUN_OK" "$RUN_BAD"
fi

# LOYALTY_BRUTEFORCE_ARGS: further arguments (test/valgrind.sh runs fewer receipts)
# shellcheck disable=SC2086
run_ok_lines bruteforce "calculate against an independent brute force of docs/promotions.md" \
	test/bruteforce/run.sh ${LOYALTY_BRUTEFORCE_ARGS:-}

# future: pg_regress and pgTAP again, on a server of their own whose clock
# runs two years ahead (libfaketime loaded into that server only), so that a
# test holding a date that will pass fails now, not on the day.
# LOYALTY_SKIP_FUTURE=1 skips it.
if [ "${LOYALTY_SKIP_FUTURE:-0}" = 1 ]; then
	echo
	echo "== future: skipped (LOYALTY_SKIP_FUTURE=1)"
else
	echo
	echo "== future: pg_regress and pgTAP on a server whose clock runs ${LOYALTY_FUTURE:-+730d} ahead"
	future_ok=0
	future_bad=0
	rm -f tmp/future.counts
	if LOYALTY_SERVER=future LOYALTY_FAKETIME=${LOYALTY_FUTURE:-+730d} LOYALTY_SHARED_BUFFERS=256MB \
			test/server.sh start; then
		(
			# shellcheck disable=SC1091
			. tmp/future.env
			echo "future: the server's clock reads $("$PGBINDIR/psql" -X -At -d postgres -c 'SELECT now()')"
			future_ok=0
			future_bad=0
			if [ ${#REGRESS[@]} -gt 0 ]; then
				run_pg_regress future-regress "$PG_REGRESS" tmp/future-regress loyalty_regress \
					--inputdir=. -- "${REGRESS[@]}"
				future_ok=$((future_ok + RUN_OK))
				future_bad=$((future_bad + RUN_BAD))
			fi
			if [ ${#TAP[@]} -gt 0 ]; then
				run_pgtap future-pgtap loyalty_tap 'CREATE EXTENSION loyalty' -- "${TAP[@]}"
				future_ok=$((future_ok + RUN_OK))
				future_bad=$((future_bad + RUN_BAD))
			fi
			echo "$future_ok $future_bad" > tmp/future.counts
		)
		read -r future_ok future_bad < tmp/future.counts || future_bad=1
		LOYALTY_SERVER=future test/server.sh stop >/dev/null
	else
		echo "future: the server with the shifted clock did not start"
		future_bad=1
	fi
	record future "$future_ok" "$future_bad"
fi

# isolationtester: pg_isolation_regress creates the database with the extension.
mapfile -t SPECS < <(ls test/isolation/specs/*.spec 2>/dev/null | sed 's|.*/||; s|\.spec$||')
if [ ${#SPECS[@]} -gt 0 ]; then
	run_pg_regress isolation "$PG_ISOLATION_REGRESS" tmp/isolation loyalty_isolation \
		--inputdir=test/isolation --load-extension=loyalty -- "${SPECS[@]}"
	record isolation "$RUN_OK" "$RUN_BAD"
fi

# pg_cron: the jobs scheduled and run for real, in the database pg_cron serves
# (test/cron/jobs.sql polls up to two minutes for the jobs to do their work).
echo
echo "== pg_cron: the jobs scheduled, run and unscheduled in database $PGDATABASE"
if "$PGBINDIR/psql" -X -q -v ON_ERROR_STOP=1 -d "$PGDATABASE" -f test/cron/jobs.sql 2>&1 | tee tmp/cron.log &&
	[ "${PIPESTATUS[0]}" -eq 0 ]; then
	record pg_cron "$(grep -c '^ok - ' tmp/cron.log)" 0
else
	record pg_cron "$(grep -c '^ok - ' tmp/cron.log)" 1
fi

# upgrade: the oldest release (src/updates/loyalty--0.1.sql) with data,
# walked through every delta one version at a time, its schema compared with
# a fresh install where one exists (test/upgrade/run.sh); the summary says
# how many versions it walked
run_ok_lines upgrade "the oldest release walked through every delta" test/upgrade/run.sh
NOTES[$((${#LAYERS[@]} - 1))]=$(sed -n 's/^upgrade \(walked .*\)/\1/p' tmp/upgrade.log)

# upgraded: the pgTAP suites once more, on a schema installed as the oldest
# released version and upgraded step by step to the current one
oldest=$(ls src/updates/ | sed -n 's/^loyalty--\([0-9.]*\)\.sql$/\1/p' | sort -V | head -1)
if [ -n "$oldest" ] && [ ${#TAP[@]} -gt 0 ]; then
	echo
	echo "== upgraded: the pgTAP suites on a schema upgraded from $oldest"
	run_pgtap pgtap-upgraded loyalty_tap_upgraded "CREATE EXTENSION loyalty VERSION '$oldest'" \
		'ALTER EXTENSION loyalty UPDATE' -- "${TAP[@]}"
	record upgraded "$RUN_OK" "$RUN_BAD"
fi

# docs: the generated sections of docs/tables.md against the catalogue of a
# fresh install (test/docs/tables.sh; make docs rewrites them)
run_ok_lines docs "docs/tables.md against the catalogue" test/docs/tables.sh --check

# log: what the extension writes to the server log (test/log/run.sh)
run_ok_lines log "the log of slow calculations" test/log/run.sh

# pooled: checkouts through pgbouncer in transaction mode, with a revoke and
# a grant in the middle; SET LOCAL and LISTEN (test/pooled/run.sh)
run_ok_lines pooled "tills behind pgbouncer in transaction mode" test/pooled/run.sh

# fuzz: the condition core under libFuzzer with ASan and UBSan for a few
# seconds (test/fuzz/run.sh; make fuzz runs it longer), replaying the saved
# crashes first.  LOYALTY_FUZZ_SECONDS sets the time; 0 skips the layer.
fuzz_seconds=${LOYALTY_FUZZ_SECONDS:-15}
if [ "$fuzz_seconds" = 0 ]; then
	echo
	echo "== fuzz: skipped (LOYALTY_FUZZ_SECONDS=0)"
else
	echo
	echo "== fuzz: ${fuzz_seconds} s"
	FUZZ_SECONDS=$fuzz_seconds test/fuzz/run.sh 2>&1 | tee tmp/fuzz.log
	if [ "${PIPESTATUS[0]}" -eq 0 ]; then record fuzz 1 0; else record fuzz 0 1; fi
fi

# bench: the benchmarks in smoke mode (a few seconds), so that they cannot rot.
# LOYALTY_SKIP_BENCH=1 skips them (a server under valgrind completes nothing
# in a one-second run).
if [ "${LOYALTY_SKIP_BENCH:-0}" = 1 ]; then
	echo
	echo "== bench: skipped (LOYALTY_SKIP_BENCH=1)"
else
	BENCH_FIGURES=(update.c4 update.c16 ledger.accrue.c4 ledger.accrue.c16 ledger.redeem.c4 ledger.redeem.c16
		select1.c2 select1.c4 calculate.c2 calculate.c4 calculate.10k.c4 calculate.p50 calculate.p99 calculate.p50.c2 calculate.p99.c2 calculate.answer.c2 calculate.answer.c4
		calculate.explored.p50 calculate.explored.p90 calculate.explored.p99 calculate.explored.max calculate.optimal
		calculate.explored.10k.p50 calculate.explored.10k.p90 calculate.explored.10k.p99 calculate.explored.10k.max calculate.optimal.10k
		calculate.answer_bytes
		condition.match.100 condition.match.1000 condition.match.10000
		checkout.c16 checkout.fraud.c16 checkout.campaigns.c16 checkout.p99 checkout.wal_bytes queue.release checkout.p99.drain expiry.record checkout.p99.expiry
		report.balances report.coupon_usage report.customer_360 report.expiring_points report.job_health
		report.ledger_entries report.liability report.lots report.promotion_performance report.store_days
		report.tier_distribution report.tier_movements)
	echo
	echo "== bench: smoke mode, ${#BENCH_FIGURES[@]} figures"
	env -u BENCH_DURATION -u BENCH_CLIENTS -u BENCH_ROUNDS -u BENCH_WALLETS \
		BENCH_MODE=smoke BENCH_DB=loyalty_bench_smoke test/bench/run.sh 2>&1 | tee tmp/bench.log
	rc=${PIPESTATUS[0]}
	ok=0
	bad=0
	for figure in "${BENCH_FIGURES[@]}"; do
		case "$figure" in
			update.* | select1.*) pattern="^bench ${figure//./\\.} [0-9]+ tps\$" ;;
			calculate.answer_bytes | checkout.wal_bytes) pattern="^bench ${figure//./\\.} [0-9]+ bytes\$" ;;
			calculate.10k.c4) pattern="^bench calculate\\.10k\\.c4 [0-9]+ tps ratio [0-9]+\\.[0-9]{2} vs calculate\\.c4\$" ;;
			calculate.p50 | calculate.p99 | calculate.p50.c2 | calculate.p99.c2) pattern="^bench ${figure//./\\.} [0-9]+\\.[0-9]{2} ms\$" ;;
			calculate.explored.*) pattern="^bench ${figure//./\\.} [0-9]+ combinations\$" ;;
			calculate.optimal*) pattern="^bench ${figure//./\\.} [0-9]+\\.[0-9]{2} percent\$" ;;
			calculate.*) pattern="^bench ${figure//./\\.} [0-9]+ tps ratio [0-9]+\\.[0-9]{2} vs select1\\.${figure##*.}\$" ;;
			condition.match.10000) pattern="^bench ${figure//./\\.} [0-9]+\\.[0-9] us ratio [0-9]+\\.[0-9]{2} vs condition\\.match\\.1000\$" ;;
			condition.match.*) pattern="^bench ${figure//./\\.} [0-9]+\\.[0-9] us\$" ;;
			checkout.c16) pattern="^bench checkout\\.c16 [0-9]+ tps ratio [0-9]+\\.[0-9]{2} vs update\\.c16\$" ;;
			checkout.fraud.c16 | checkout.campaigns.c16) pattern="^bench ${figure//./\\.} [0-9]+ tps ratio [0-9]+\\.[0-9]{2} vs checkout\\.c16\$" ;;
			checkout.p99) pattern="^bench checkout\\.p99 [0-9]+\\.[0-9]{2} ms\$" ;;
			checkout.p99.*) pattern="^bench ${figure//./\\.} [0-9]+\\.[0-9]{2} ms ratio [0-9]+\\.[0-9]{2} vs checkout\\.p99\$" ;;
			queue.release | expiry.record) pattern="^bench ${figure//./\\.} [0-9]+ per_s\$" ;;
			report.*) pattern="^bench ${figure//./\\.} [0-9]+\\.[0-9]{2} ms\$" ;;
			*) pattern="^bench ${figure//./\\.} [0-9]+ tps ratio [0-9]+\\.[0-9]{2} vs update\\.${figure##*.}\$" ;;
		esac
		if [ "$(grep -cE "$pattern" tmp/bench.log)" -eq 1 ]; then
			ok=$((ok + 1))
		else
			echo "bench: no line \"bench $figure ...\" in the output"
			bad=$((bad + 1))
		fi
	done
	if [ "$rc" -ne 0 ]; then
		echo "bench: test/bench/run.sh exited $rc"
		[ "$bad" -gt 0 ] || bad=1
	fi
	record bench "$ok" "$bad"
fi

# dump: pg_dump and pg_restore round-trip a database with the extension
run_ok_lines dump "pg_dump, pg_restore into a fresh database, compared" test/dump/run.sh

# ha: the failover scenarios, on a cluster of their own under tmp/ha
if [ "${LOYALTY_SKIP_HA:-0}" = 1 ]; then
	echo
	echo "== ha: skipped (LOYALTY_SKIP_HA=1)"
else
	echo
	echo "== ha: kill-leader, switchover, stall on Patroni and etcd"
	test/ha/run.sh 2>&1 | tee tmp/ha.log
	rc=${PIPESTATUS[0]}
	ok=0
	bad=0
	for scenario in kill-leader switchover stall; do
		if grep -qE "^ha $scenario acked [1-9][0-9]* lost 0 duplicated 0 unknown [0-9]+ unavailable_s [0-9.]+\$" tmp/ha.log; then
			ok=$((ok + 1))
		else
			echo "ha: scenario $scenario did not pass"
			bad=$((bad + 1))
		fi
	done
	if grep -qE '^ha replica views ([1-9][0-9]*) of \1$' tmp/ha.log; then
		ok=$((ok + 1))
	else
		echo "ha: the views did not all answer on a replica"
		bad=$((bad + 1))
	fi
	if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
		echo "ha: test/ha/run.sh exited $rc"
		bad=1
	fi
	record ha "$ok" "$bad"
fi

# errors: every SQLSTATE that docs/errors.md lists is raised by some test, and
# every SQLSTATE the tests show is listed; read from the outputs the layers
# above wrote (tmp/regress/results, tmp/isolation/results) and from the
# tests' expected outputs and sources
run_ok_lines errors "the SQLSTATEs of docs/errors.md against the tests" perl test/docs/errors.pl

total_ok=0
total_bad=0
echo
echo "== summary"
printf '%-12s %8s %8s\n' layer passed failed
for i in "${!LAYERS[@]}"; do
	printf '%-12s %8d %8d%s\n' "${LAYERS[$i]}" "${PASSED[$i]}" "${FAILED[$i]}" "${NOTES[$i]:+   ${NOTES[$i]}}"
	total_ok=$((total_ok + PASSED[i]))
	total_bad=$((total_bad + FAILED[i]))
done
echo "$total_ok passed, $total_bad failed"
[ "$total_bad" -eq 0 ] && [ "$total_ok" -gt 0 ]
