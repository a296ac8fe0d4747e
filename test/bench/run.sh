#!/usr/bin/env bash
# test/bench/run.sh — the project's benchmarks (make bench).
#
# Starts the throwaway server if needed, recreates the database loyalty_bench
# with the extension, loads test/bench/data.sql (one programme, one currency,
# N customers with one wallet of three lots each, and the baseline table
# bench_counter of N rows), VACUUM ANALYZE, then runs pgbench
# (-n -M prepared -j 2) on every benchmark below for every client count.
#
# The machine's speed drifts, so every figure is measured beside its baseline:
# for each client count, ROUNDS rounds each run every benchmark once (the order
# rotates from round to round).  A benchmark's tps is the median over rounds;
# its ratio is the median over rounds of (its tps / its baseline's tps in the
# same round), which cancels drift slower than a round.
#
# Before that, without the server, the condition matching micro-benchmark:
# test/bench/condition_match.c (built with gcc and the server's CFLAGS into
# tmp/condition_match/, linked with the core of loyalty.condition and
# test/fuzz/shim.c) matches 200 receipts of 50 lines against 100, 1 000 and
# 10 000 rules through the index and prints microseconds per receipt.
#
# To add a benchmark: write a pgbench script in test/bench/ (it may use the
# variables :customers, :currency and pgbench's own :client_id; extend
# data.sql if it needs more data) and add a line "name script baseline" to
# BENCHES; a baseline is "-" for a baseline itself.  Its figures appear as
#   bench NAME.cC TPS tps ratio R vs BASELINE.cC
#
# Then the receipt calculation, in a database of its own (BENCH_DB_calc,
# loaded by test/bench/calculate_data.sql: customers with a card and three
# lots, 1 000 active promotions of a realistic mix and 9 000 more paused,
# 20 000 products, receipts of 20 lines).  At 2 and 4 clients, each round
# runs the baseline select1.sql (SELECT 1), calculate.sql (calculate of a
# random stored receipt) and answer.sql (the stored answer of a random
# receipt: what reading, printing and sending an answer alone costs, the
# ceiling of calculate's figure); at 4 clients it then switches the 9 000
# paused promotions on, runs calculate again (the 10k figure) and switches
# them off.  Latencies come from pgbench's per-transaction log of the 1k
# runs: calculate.p50 and .p99 at 4 clients (two per core), .p50.c2 and
# .p99.c2 at 2.  Figures:
#   bench calculate.c2 1669 tps ratio 0.01 vs select1.c2
#   bench calculate.answer.c2 11503 tps ratio 0.08 vs select1.c2
#   bench calculate.p99 5.46 ms
#   bench calculate.10k.c4 1067 tps ratio 0.60 vs calculate.c4
# Then each stored receipt once, with 1 000 and with 10 000 promotions
# (test/bench/explored.sql): percentiles of the combinations the search
# evaluated to the end, and the share of answers proven optimal:
#   bench calculate.explored.p99 8 combinations
#   bench calculate.optimal.10k 100.00 percent
# and the size of the default answer of those receipts:
#   bench calculate.answer_bytes 14800 bytes
#
# Last, in the same database, the checkout: checkout.sql (calculate and
# commit of a stored receipt spending points, one transaction) against
# update.sql at 16 clients, round by round (checkout.c16, and checkout.p99
# from its per-transaction log), and again in each round with the fraud
# rules on; then a backlog of due accruals
# (test/bench/backlog.sql; smoke 20 000, quick 200 000, full 1 000 000)
# drained by two workers (CALL loyalty.run_job) while the checkout runs
# (queue.release per second, checkout.p99.drain), and as many expired lots
# recorded the same way (expiry.record, checkout.p99.expiry).  Figures:
#   bench checkout.c16 1200 tps ratio 0.30 vs update.c16
#   bench checkout.fraud.c16 1150 tps ratio 0.96 vs checkout.c16
# (the checkout with the 20 velocity rules of test/bench/fraud_rules.sql
# on, 15 of them counting what a commit adds: each round runs the checkouts
# without rules and with them side by side, switching the rules' active,
# odd rounds without them first, even rounds with them first; the ratio is
# the geometric mean of the rounds' with / without over the first even
# number of rounds, so that each order counts as often: the run second in
# a round is slower (a checkpoint begins in most rounds), and a median of
# five rounds, three of them with the rules second, read that as the rules'
# cost; the run fails if a rule opened a case or counted nothing)
#   bench checkout.campaigns.c16 1100 tps ratio 0.92 vs checkout.c16
# (the checkout with the 50 challenges and the experiment of
# test/bench/campaigns.sql on, in rounds of their own beside the checkout
# without them, the same way; the run fails if no challenge counted)
#   bench checkout.wal_bytes 27500 bytes
# (the WAL a checkout writes in the steady state: the median over the rounds
# during which no checkpoint began, whose full-page images are counted
# apart)
#   bench queue.release 15000 per_s
#   bench checkout.p99.drain 40.00 ms ratio 1.50 vs checkout.p99
#
# Then, in the same database, the reports: a year of history (receipts:
# smoke 20 000, quick 1 000 000, full 10 000 000; test/bench/reports_data.sql)
# and the typical query of each view (test/bench/reports.sql, as an analyst
# bound to the programme; the median of 5 runs):
#   bench report.promotion_performance 95.20 ms
#
# Environment:
#   BENCH_MODE      smoke (200 wallets, 1 s runs, 1 round; 2 000 customers
#                   for calculate),
#                   quick (10 000 wallets, 3 s runs, 5 rounds; 100 000
#                   customers; the default),
#                   full (100 000 wallets, 20 s runs, 5 rounds; 1 000 000
#                   customers)
#   BENCH_CUSTOMERS customers of the calculate data set (overrides the mode)
#   BENCH_BACKLOG   accruals and expired lots of the drains (overrides the mode)
#   BENCH_HISTORY   receipts of the reports' history (overrides the mode)
#   BENCH_DURATION  seconds per pgbench run     (overrides the mode)
#   BENCH_CLIENTS   client counts, e.g. "4 16"  (default 4 16)
#   BENCH_ROUNDS    rounds per client count     (overrides the mode)
#   BENCH_WALLETS   customers with one wallet   (overrides the mode)
#   BENCH_DB        database (default loyalty_bench; dropped and recreated)
#   BENCH_MATCH_SECONDS  seconds per rule count of condition_match (smoke 0.3,
#                   quick 2, full 5)
#   LOYALTY_KEEP_SERVER=1 leaves a server this script started running.
# Prints a table, then one line per figure (the names are a contract):
#   bench update.c4 8491 tps
#   bench ledger.accrue.c4 3755 tps ratio 0.54 vs update.c4
#   bench condition.match.100 25.8 us
#   bench condition.match.10000 1178.6 us ratio 12.77 vs condition.match.1000
# Exits non-zero if the set-up or any pgbench run fails (then no bench lines).
set -euo pipefail

# name            script       baseline
BENCHES=(
	"update         update.sql   -"
	"ledger.accrue  accrue.sql   update"
	"ledger.redeem  redeem.sql   update"
)

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
BENCH=test/bench
MODE=${BENCH_MODE:-quick}
case "$MODE" in
	smoke) wallets=200    duration=1  rounds=1 match_seconds=0.3 customers=2000 ;;
	quick) wallets=10000  duration=3  rounds=5 match_seconds=2 customers=100000 ;;
	full)  wallets=100000 duration=20 rounds=5 match_seconds=5 customers=1000000 ;;
	*) echo "run.sh: BENCH_MODE must be smoke, quick or full, not \"$MODE\"" >&2; exit 2 ;;
esac
wallets=${BENCH_WALLETS:-$wallets}
customers=${BENCH_CUSTOMERS:-$customers}
duration=${BENCH_DURATION:-$duration}
rounds=${BENCH_ROUNDS:-$rounds}
read -ra CLIENTS <<<"$(echo "${BENCH_CLIENTS:-4 16}" | tr ',' ' ')"
DB=${BENCH_DB:-loyalty_bench}
CURRENCY=bonus
receipts=5000
for v in "$wallets" "$customers" "$duration" "$rounds" "${CLIENTS[@]}"; do
	[[ "$v" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: \"$v\" is not a positive integer" >&2; exit 2; }
done
match_seconds=${BENCH_MATCH_SECONDS:-$match_seconds}
[[ "$match_seconds" =~ ^[0-9]*\.?[0-9]+$ ]] || { echo "run.sh: \"$match_seconds\" is not a number of seconds" >&2; exit 2; }

# The condition matching micro-benchmark, while the machine is quiet; it is
# rebuilt when a source is newer than the binary.
MATCH_DIR=tmp/condition_match
MATCH_BIN=$MATCH_DIR/condition_match
MATCH_SOURCES=(test/bench/condition_match.c test/fuzz/shim.c
	src/condparse.c src/condcode.c src/condeval.c src/condindex.c)
declare -a MATCH_FIGURES=()
match_failed=0
mkdir -p "$MATCH_DIR"
match_stale=0
[ -x "$MATCH_BIN" ] || match_stale=1
for f in "${MATCH_SOURCES[@]}" test/fuzz/shim.h src/condition.h src/condcode.h; do
	if [ "$f" -nt "$MATCH_BIN" ]; then match_stale=1; fi
done
PG_CONFIG=${PG_CONFIG:-pg_config}
# shellcheck disable=SC2046
if { [ "$match_stale" = 0 ] ||
		gcc $("$PG_CONFIG" --cflags) -Wextra -Wno-unused-parameter -I src -I test/fuzz \
			-I "$("$PG_CONFIG" --includedir-server)" "${MATCH_SOURCES[@]}" -lm -o "$MATCH_BIN"; } &&
	"$MATCH_BIN" -t "$match_seconds" >"$MATCH_DIR/condition_match.out"; then
	grep -v '^bench ' "$MATCH_DIR/condition_match.out"
	mapfile -t MATCH_FIGURES < <(grep '^bench ' "$MATCH_DIR/condition_match.out")
else
	echo "run.sh: the condition matching benchmark failed ($MATCH_DIR/condition_match.out)" >&2
	match_failed=1
fi

started=0
if ! test/server.sh status >/dev/null 2>&1; then
	started=1
fi
test/server.sh start >/dev/null
if [ "$started" = 1 ] && [ "${LOYALTY_KEEP_SERVER:-0}" != 1 ]; then
	trap 'test/server.sh stop >/dev/null' EXIT
fi
# shellcheck disable=SC1091
. tmp/server.env
LOGDIR=tmp/$DB
rm -rf "$LOGDIR"
mkdir -p "$LOGDIR"

echo "== bench: mode $MODE, $wallets wallets, clients ${CLIENTS[*]}, $rounds round(s) of ${duration} s runs, $(nproc) CPUs"
echo "   $("$PGBINDIR/postgres" --version), database $DB, logs in $LOGDIR/"

# The data set, in a fresh database.
t0=$SECONDS
"$PGBINDIR/dropdb" --if-exists "$DB" 2>/dev/null
"$PGBINDIR/createdb" "$DB"
psql_bench() { "$PGBINDIR/psql" -X -q -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
psql_bench -c 'CREATE EXTENSION loyalty'
psql_bench -v customers="$wallets" -v currency="$CURRENCY" -f "$BENCH/data.sql" >"$LOGDIR/data.log"
psql_bench -c 'VACUUM ANALYZE' -c 'CHECKPOINT'
echo "   data set loaded in $((SECONDS - t0)) s"

# Parse the benchmark list.
declare -a NAMES SCRIPTS BASES
for def in "${BENCHES[@]}"; do
	read -r name script base <<<"$def"
	[ -f "$BENCH/$script" ] || { echo "run.sh: no $BENCH/$script for $name" >&2; exit 2; }
	NAMES+=("$name"); SCRIPTS+=("$script"); BASES+=("$base")
done
for base in "${BASES[@]}"; do
	[ "$base" = - ] || [[ " ${NAMES[*]} " == *" $base "* ]] || { echo "run.sh: unknown baseline $base" >&2; exit 2; }
done

# One pgbench run: prints its tps, or fails after showing what went wrong.
pgbench_tps() {
	local script=$1 clients=$2 log=$3 db=${4:-$DB} tps failed
	shift $(($# < 4 ? $# : 4))
	if ! "$PGBINDIR/pgbench" -n -M prepared -j $((clients < 2 ? clients : 2)) -c "$clients" \
		-T "$duration" -D customers="$wallets" -D currency="$CURRENCY" -D receipts="$receipts" \
		"$@" -f "$BENCH/$script" "$db" >"$log" 2>&1; then
		echo "run.sh: pgbench failed ($log):" >&2
		grep -E 'error|ERROR|abort|DETAIL|HINT' "$log" | sort | uniq -c | sort -rn | head -n 20 >&2 || tail -n 20 "$log" >&2
		return 1
	fi
	failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$log")
	tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$log")
	if [ -z "$tps" ] || [ "${failed:-0}" != 0 ]; then
		echo "run.sh: pgbench reported ${failed:-?} failed transactions, tps ${tps:-none} ($log)" >&2
		return 1
	fi
	echo "$tps"
}

# median of the arguments
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# The geometric mean of per-round ratios taken in turn in either order (odd
# rounds A then B, even rounds B then A): over the first even number of
# rounds, so that each order counts as often and the cost of running second
# in a round cancels out; all of them if there is only one.
balanced() {
	local n=$#
	[ "$n" -gt 1 ] && n=$((n - n % 2))
	printf '%s\n' "${@:1:$n}" | awk '{ s += log($1) } END { printf "%.6f\n", exp(s / NR) }'
}

# TPS[name,clients] and RATIOS[name,clients]: space-separated values per round
declare -A TPS RATIOS
errors=0
n=${#NAMES[@]}
for c in "${CLIENTS[@]}"; do
	for ((r = 1; r <= rounds; r++)); do
		declare -A round=()
		line="   c$c round $r/$rounds:"
		for ((k = 0; k < n; k++)); do
			i=$(((k + r - 1) % n))
			name=${NAMES[$i]}
			if tps=$(pgbench_tps "${SCRIPTS[$i]}" "$c" "$LOGDIR/$name.c$c.r$r.log"); then
				round[$name]=$tps
				TPS[$name,$c]+="$tps "
				line+=" $name $(printf '%.0f' "$tps")"
			else
				errors=$((errors + 1))
				line+=" $name FAILED"
			fi
		done
		echo "$line"
		for i in "${!NAMES[@]}"; do
			name=${NAMES[$i]} base=${BASES[$i]}
			if [ "$base" != - ] && [ -n "${round[$name]:-}" ] && [ -n "${round[$base]:-}" ]; then
				RATIOS[$name,$c]+="$(awk -v a="${round[$name]}" -v b="${round[$base]}" 'BEGIN { printf "%.6f", a / b }') "
			fi
		done
		unset round
	done
done

# The table, then the figures.
echo
printf '%-16s %7s %9s %13s %7s   %s\n' name clients tps "baseline tps" ratio "tps per round"
declare -a FIGURES
for i in "${!NAMES[@]}"; do
	name=${NAMES[$i]} base=${BASES[$i]}
	for c in "${CLIENTS[@]}"; do
		if [ -z "${TPS[$name,$c]:-}" ]; then
			printf '%-16s %7s %9s\n' "$name" "$c" FAILED
			continue
		fi
		# shellcheck disable=SC2086
		tps=$(printf '%.0f' "$(median ${TPS[$name,$c]})")
		per_round=$(for v in ${TPS[$name,$c]}; do printf '%.0f ' "$v"; done)
		per_round=${per_round% }
		if [ "$base" = - ]; then
			printf '%-16s %7s %9s %13s %7s   %s\n' "$name" "$c" "$tps" - - "$per_round"
			FIGURES+=("bench $name.c$c $tps tps")
		elif [ -n "${RATIOS[$name,$c]:-}" ] && [ -n "${TPS[$base,$c]:-}" ]; then
			# shellcheck disable=SC2086
			btps=$(printf '%.0f' "$(median ${TPS[$base,$c]})")
			# shellcheck disable=SC2086
			ratio=$(printf '%.2f' "$(median ${RATIOS[$name,$c]})")
			printf '%-16s %7s %9s %13s %7s   %s\n' "$name" "$c" "$tps" "$btps" "$ratio" "$per_round"
			FIGURES+=("bench $name.c$c $tps tps ratio $ratio vs $base.c$c")
		else
			printf '%-16s %7s %9s %13s %7s   %s\n' "$name" "$c" "$tps" FAILED - "$per_round"
		fi
	done
done
echo "(tps: median over rounds; ratio: median over rounds of tps / baseline tps in the same round)"

# The receipt calculation: its own data set, SELECT 1 as the baseline.
CDB=${DB}_calc
[ "$MODE" = smoke ] && receipts=500
t0=$SECONDS
"$PGBINDIR/dropdb" --if-exists "$CDB" 2>/dev/null
"$PGBINDIR/createdb" "$CDB"
psql_calc() { "$PGBINDIR/psql" -X -q -v ON_ERROR_STOP=1 -d "$CDB" "$@"; }
psql_calc -c 'CREATE EXTENSION loyalty'
psql_calc -v customers="$customers" -v receipts="$receipts" -f "$BENCH/calculate_data.sql" >"$LOGDIR/calculate_data.log"
psql_calc -c 'VACUUM ANALYZE' -c 'CHECKPOINT'
echo
echo "== calculate: $customers customers, 1 000 + 9 000 promotions, $receipts receipts of 20 lines, loaded in $((SECONDS - t0)) s"
declare -A CTPS CRATIO
# the values of the rounds, as whole numbers
rounds_of() { for v in $1; do printf '%.0f ' "$v"; done; }
rounds_ratio() { for v in "$@"; do printf '%.2f ' "$v"; done; }
LATDIR=$LOGDIR/latency
rm -rf "$LATDIR"
mkdir -p "$LATDIR"
set_extra() { psql_calc -c "UPDATE loyalty.promotion SET status = '$2' WHERE status = '$1' AND id > 1000"; }
for c in 2 4; do
	for ((r = 1; r <= rounds; r++)); do
		line="   c$c round $r/$rounds:"
		if s1=$(pgbench_tps select1.sql "$c" "$LOGDIR/select1.c$c.r$r.log" "$CDB") &&
			ct=$(pgbench_tps calculate.sql "$c" "$LOGDIR/calculate.c$c.r$r.log" "$CDB" \
				-l --log-prefix="$LATDIR/calc$c") &&
			ca=$(pgbench_tps answer.sql "$c" "$LOGDIR/answer.c$c.r$r.log" "$CDB"); then
			CTPS[select1,$c]+="$s1 "
			CTPS[calculate,$c]+="$ct "
			CRATIO[calculate,$c]+="$(awk -v a="$ct" -v b="$s1" 'BEGIN { printf "%.6f", a / b }') "
			CTPS[calculate.answer,$c]+="$ca "
			CRATIO[calculate.answer,$c]+="$(awk -v a="$ca" -v b="$s1" 'BEGIN { printf "%.6f", a / b }') "
			line+=" select1 $(printf '%.0f' "$s1") calculate $(printf '%.0f' "$ct") answer $(printf '%.0f' "$ca")"
			if [ "$c" = 4 ]; then
				set_extra paused active
				if tk=$(pgbench_tps calculate.sql "$c" "$LOGDIR/calculate.10k.c$c.r$r.log" "$CDB"); then
					CTPS[calculate.10k,$c]+="$tk "
					CRATIO[calculate.10k,$c]+="$(awk -v a="$tk" -v b="$ct" 'BEGIN { printf "%.6f", a / b }') "
					line+=" calculate.10k $(printf '%.0f' "$tk")"
				else
					errors=$((errors + 1))
					line+=" calculate.10k FAILED"
				fi
				set_extra active paused
			fi
		else
			errors=$((errors + 1))
			line+=" FAILED"
		fi
		echo "$line"
	done
done
echo
printf '%-16s %7s %9s %13s %7s   %s\n' name clients tps "baseline tps" ratio "tps per round"
for c in 2 4; do
	if [ -n "${CTPS[select1,$c]:-}" ]; then
		# shellcheck disable=SC2086
		tps=$(printf '%.0f' "$(median ${CTPS[select1,$c]})")
		printf '%-16s %7s %9s %13s %7s   %s\n' select1 "$c" "$tps" - - "$(rounds_of "${CTPS[select1,$c]}")"
		FIGURES+=("bench select1.c$c $tps tps")
	fi
	for name in calculate calculate.answer calculate.10k; do
		[ -n "${CTPS[$name,$c]:-}" ] || continue
		base=select1.c$c
		basetps=${CTPS[select1,$c]}
		[ "$name" = calculate.10k ] && { base=calculate.c$c; basetps=${CTPS[calculate,$c]}; }
		# shellcheck disable=SC2086
		tps=$(printf '%.0f' "$(median ${CTPS[$name,$c]})")
		# shellcheck disable=SC2086
		btps=$(printf '%.0f' "$(median $basetps)")
		# shellcheck disable=SC2086
		ratio=$(printf '%.2f' "$(median ${CRATIO[$name,$c]})")
		printf '%-16s %7s %9s %13s %7s   %s\n' "$name" "$c" "$tps" "$btps" "$ratio" "$(rounds_of "${CTPS[$name,$c]}")"
		FIGURES+=("bench $name.c$c $tps tps ratio $ratio vs $base")
	done
done
# latency percentiles over every calculate of the 1k runs, at 4 clients and at 2
for c in 4 2; do
	compgen -G "$LATDIR/calc$c.*" >/dev/null || continue
	read -r p50 p99 n < <(cat "$LATDIR"/calc"$c".* | awk '{ print $3 }' | sort -n |
		awk '{ v[NR] = $1 } END { i50 = int(NR * 0.50); i99 = int(NR * 0.99); if (i50 < 1) i50 = 1; if (i99 < 1) i99 = 1;
			printf "%.2f %.2f %d\n", v[i50] / 1000, v[i99] / 1000, NR }')
	echo "(calculate at $c clients: p50 $p50 ms, p99 $p99 ms over $n calls; tps: median over rounds)"
	suffix=
	if [ "$c" = 2 ]; then suffix=.c2; fi
	FIGURES+=("bench calculate.p50$suffix $p50 ms" "bench calculate.p99$suffix $p99 ms")
done

# How much the search does on the same receipts, with 1 000 and with 10 000
# promotions: percentiles of the combinations it evaluated to the end, and
# the share of answers proven optimal within its time budget (explored.sql).
echo
if psql_calc -f "$BENCH/explored.sql" >"$LOGDIR/explored.log" 2>&1 &&
	set_extra paused active >/dev/null &&
	psql_calc -v tag=.10k -f "$BENCH/explored.sql" >>"$LOGDIR/explored.log" 2>&1 &&
	set_extra active paused >/dev/null; then
	mapfile -t EXPLORED_FIGURES < <(grep '^bench calculate\.' "$LOGDIR/explored.log")
	printf '(search: %s)\n' "$(sed 's/^bench calculate\.//' "$LOGDIR/explored.log" | paste -sd, | sed 's/,/, /g')"
	FIGURES+=("${EXPLORED_FIGURES[@]}")
else
	errors=$((errors + 1))
	echo "run.sh: the search figures failed; see $LOGDIR/explored.log" >&2
fi
# The size of the default answer on the stored receipts (bench_answer: one
# calculate of each, with no option): bytes of its text, as the till receives
# it, averaged.
if answer_bytes=$(psql_calc -Atc 'SELECT round(avg(octet_length(r::text))) FROM bench_answer') &&
	[ -n "$answer_bytes" ]; then
	echo "(the default answer: $answer_bytes bytes on average over the stored receipts of 20 lines)"
	FIGURES+=("bench calculate.answer_bytes $answer_bytes bytes")
else
	errors=$((errors + 1))
fi

# The checkout (calculate + commit with redemption, one transaction) at 16
# clients against the single-row UPDATE in the same database, then its p99
# while two workers drain a queue of due accruals and while two workers
# record expired lots: the rate of each drain and the checkout's p99 in the
# drain's time, against the p99 without it.
psql_calc -c 'CREATE TABLE bench_counter (id int PRIMARY KEY, x bigint NOT NULL DEFAULT 0)' \
	-c "INSERT INTO bench_counter (id) SELECT generate_series(1, GREATEST($wallets, $customers))" \
	-c 'VACUUM ANALYZE bench_counter'
case "$MODE" in
	smoke) backlog=20000 ;;
	quick) backlog=200000 ;;
	full) backlog=1000000 ;;
esac
backlog=${BENCH_BACKLOG:-$backlog}
echo
echo "== checkout: calculate + commit spending points, 16 clients; drains of $backlog accruals and $backlog expired lots"
CO_LAT=$LATDIR/checkout
declare -A KTPS KRATIO
KWAL=
KWAL_CKPT=
# WAL position, receipts committed and checkpoints begun, around each round's
# checkouts: the WAL a checkout writes in the steady state of a running
# server (none forced).  A round during which a checkpoint began (in its
# update run or its checkouts) is right after one: every page it touches
# first then is written whole (with a million customers, nearly every page
# a checkout touches), so it counts apart (checkout.wal_bytes is the median
# of the other rounds; of all, if every round had one).
wal_mark() {
	psql_calc -Atc "SELECT pg_current_wal_insert_lsn() || ' ' || (SELECT count(*) FROM loyalty.receipt_key)
	                       || ' ' || (SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter)"
}
# The fraud rules of checkout.fraud.c16 (test/bench/fraud_rules.sql: 20
# rules, 15 of them counting what a commit adds), loaded inactive after the
# programme's cases, tallies and rules are cleared, so that nothing a
# previous run counted is in the windows.  fraud_active true|false switches
# them all (the catalogue's generation changes: each backend compiles it
# again at its next checkout).
psql_calc -c 'TRUNCATE loyalty.fraud_case_operation, loyalty.fraud_case, loyalty.fraud_tally' \
	-c 'DELETE FROM loyalty.fraud_rule' -f "$BENCH/fraud_rules.sql" >"$LOGDIR/fraud_rules.log"
# The challenges and the experiment of checkout.campaigns.c16
# (test/bench/campaigns.sql: 50 challenges of every goal, one experiment of
# two variants), loaded inactive after what a previous run left is cleared;
# campaigns_active true|false switches them all.
psql_calc -c 'TRUNCATE loyalty.customer_achievement, loyalty.challenge_receipt, loyalty.challenge_state,
                       loyalty.challenge_step, loyalty.challenge, loyalty.achievement,
                       loyalty.experiment_variant, loyalty.experiment' \
	-f "$BENCH/campaigns.sql" >"$LOGDIR/campaigns.log"
campaigns_active() {
	psql_calc -c "UPDATE loyalty.challenge SET active = $1 WHERE active <> $1" \
		-c "UPDATE loyalty.experiment SET active = $1 WHERE active <> $1"
}
fraud_active() { psql_calc -c "UPDATE loyalty.fraud_rule SET active = $1 WHERE active <> $1"; }
# A round of checkouts with the rules on: prints its tps, or fails; the
# rules are off again either way.
fraud_round() {
	local r=$1 tps rc=0
	fraud_active true >/dev/null || return 1
	tps=$(pgbench_tps checkout.sql 16 "$LOGDIR/checkout.fraud.c16.r$r.log" "$CDB" --max-tries=10 \
		-l --log-prefix="$CO_FRAUD_LAT") || rc=1
	fraud_active false >/dev/null || rc=1
	[ "$rc" = 0 ] && echo "$tps"
}
CO_FRAUD_LAT=$LATDIR/checkout_fraud
# first a round that is not measured: the caches warm up, and the pages the
# checkouts touch get their first write since the data set's checkpoints
pgbench_tps checkout.sql 16 "$LOGDIR/checkout.c16.warmup.log" "$CDB" --max-tries=10 >/dev/null ||
	errors=$((errors + 1))
# Each round: the update run, the checkouts without rules (checkout.c16) and
# the checkouts with the 20 rules on (checkout.fraud.c16), the last two
# side by side, in turn in either order (odd rounds without rules first,
# even rounds with them first) so that a drift over the rounds weighs on
# both alike.  The checkpoints begun are counted from the end of the
# previous round's checkouts (its run with rules, if last, included).
ck_prev=
for ((r = 1; r <= rounds; r++)); do
	f=
	if { [ -n "$ck_prev" ] && ck0=$ck_prev || read -r _ _ ck0 < <(wal_mark); } &&
		u=$(pgbench_tps update.sql 16 "$LOGDIR/update16.calc.r$r.log" "$CDB") &&
		{ [ $((r % 2)) = 1 ] || f=$(fraud_round "$r"); } &&
		read -r lsn0 n0 _ < <(wal_mark) &&
		k=$(pgbench_tps checkout.sql 16 "$LOGDIR/checkout.c16.r$r.log" "$CDB" --max-tries=10 \
			-l --log-prefix="$CO_LAT") &&
		read -r lsn1 n1 ck1 < <(wal_mark) &&
		ck_prev=$ck1 &&
		{ [ $((r % 2)) = 0 ] || f=$(fraud_round "$r"); } &&
		[ "$n1" -gt "$n0" ] &&
		w=$(psql_calc -Atc "SELECT round(pg_wal_lsn_diff('$lsn1', '$lsn0') / ($n1 - $n0))"); then
		KTPS[update]+="$u "
		KTPS[checkout]+="$k "
		KRATIO[checkout]+="$(awk -v a="$k" -v b="$u" 'BEGIN { printf "%.6f", a / b }') "
		KTPS[fraud]+="$f "
		KRATIO[fraud]+="$(awk -v a="$f" -v b="$k" 'BEGIN { printf "%.6f", a / b }') "
		if [ "$ck1" -gt "$ck0" ]; then
			KWAL_CKPT+="$w "
			ck=", a checkpoint began"
		else
			KWAL+="$w "
			ck=
		fi
		echo "   c16 round $r/$rounds: update $(printf '%.0f' "$u") checkout $(printf '%.0f' "$k") with rules $(printf '%.0f' "$f") ($w bytes of WAL a checkout$ck)"
	else
		ck_prev=
		errors=$((errors + 1))
		echo "   c16 round $r/$rounds: FAILED"
	fi
done
# Then the checkouts with the 50 challenges and the experiment on
# (checkout.campaigns.c16) beside the checkouts without them, in turn in
# either order as the fraud rounds are.
CO_CAMP_LAT=$LATDIR/checkout_campaigns
campaigns_round() {
	local r=$1 tps rc=0
	campaigns_active true >/dev/null || return 1
	tps=$(pgbench_tps checkout.sql 16 "$LOGDIR/checkout.campaigns.c16.r$r.log" "$CDB" --max-tries=10 \
		-l --log-prefix="$CO_CAMP_LAT") || rc=1
	campaigns_active false >/dev/null || rc=1
	[ "$rc" = 0 ] && echo "$tps"
}
for ((r = 1; r <= rounds; r++)); do
	g=
	if { [ $((r % 2)) = 1 ] || g=$(campaigns_round "$r"); } &&
		k=$(pgbench_tps checkout.sql 16 "$LOGDIR/checkout.plain.c16.r$r.log" "$CDB" --max-tries=10) &&
		{ [ $((r % 2)) = 0 ] || g=$(campaigns_round "$r"); }; then
		KTPS[campaigns]+="$g "
		KRATIO[campaigns]+="$(awk -v a="$g" -v b="$k" 'BEGIN { printf "%.6f", a / b }') "
		echo "   c16 round $r/$rounds: checkout $(printf '%.0f' "$k") with campaigns $(printf '%.0f' "$g")"
	else
		errors=$((errors + 1))
		echo "   c16 round $r/$rounds (campaigns): FAILED"
	fi
done
# p99 in ms of the checkouts that ended within [from, to] (epoch seconds) of
# the logs given, leaving out each connection's first (which compiles the
# promotion catalogue in a new backend)
p99_between() {
	local from=$1 to=$2
	shift 2
	cat "$@" | awk -v from="$from" -v to="$to" '{ t = $5 + $6 / 1e6; if ($2 > 0 && t >= from && t <= to) print $3 }' | sort -n |
		awk '{ v[NR] = $1 } END { if (NR == 0) { print "none"; exit } i = int(NR * 0.99); if (i < 1) i = 1; printf "%.2f\n", v[i] / 1000 }'
}
# A drain by two workers (CALL loyalty.run_job) while the checkout runs:
# prints "rate p99" (per second; ms), or fails.
drain() {
	local kind=$1 job=$2 t0 t1 w1 w2 rc=0 k
	psql_calc -v kind="$kind" -v n="$backlog" -f "$BENCH/backlog.sql" >"$LOGDIR/backlog.$kind.log" || return 1
	t0=$(date +%s.%N)
	# each worker prints when it finished
	psql_calc -At -c "CALL loyalty.run_job('$job', '30 minutes')" \
		-c 'SELECT extract(epoch FROM clock_timestamp())' >"$LOGDIR/drain.$kind.1.log" 2>&1 &
	w1=$!
	psql_calc -At -c "CALL loyalty.run_job('$job', '30 minutes')" \
		-c 'SELECT extract(epoch FROM clock_timestamp())' >"$LOGDIR/drain.$kind.2.log" 2>&1 &
	w2=$!
	k=$(pgbench_tps checkout.sql 16 "$LOGDIR/checkout.$kind.log" "$CDB" --max-tries=10 \
		-l --log-prefix="$LATDIR/$kind") || rc=1
	wait "$w1" || rc=1
	wait "$w2" || rc=1
	t1=$(tail -qn 1 "$LOGDIR/drain.$kind.1.log" "$LOGDIR/drain.$kind.2.log" | sort -g | tail -n 1)
	[ "$rc" = 0 ] || { echo "run.sh: the $kind drain failed ($LOGDIR/drain.$kind.*.log)" >&2; return 1; }
	left=$(psql_calc -At -c "$( [ "$kind" = queue ] && echo 'SELECT count(*) FROM loyalty.accrual_queue' ||
		echo 'SELECT count(*) FROM loyalty.lot WHERE live AND valid_to <= now()')")
	[ "$left" = 0 ] || { echo "run.sh: the $kind drain left $left rows" >&2; return 1; }
	printf '%.0f %s\n' "$(awk -v n="$backlog" -v a="$t0" -v b="$t1" 'BEGIN { print n / (b - a) }')" \
		"$(p99_between "$t0" "$t1" "$LATDIR/$kind".*)"
}
if [ -n "${KTPS[checkout]:-}" ]; then
	# shellcheck disable=SC2086
	ktps=$(printf '%.0f' "$(median ${KTPS[checkout]})")
	# shellcheck disable=SC2086
	kratio=$(printf '%.2f' "$(median ${KRATIO[checkout]})")
	# shellcheck disable=SC2086
	utps=$(printf '%.0f' "$(median ${KTPS[update]})")
	kp99=$(p99_between 0 9999999999 "$CO_LAT".*)
	printf '%-16s %7s %9s %13s %7s   %s\n' checkout 16 "$ktps" "$utps" "$kratio" "$(rounds_of "${KTPS[checkout]}")"
	echo "(checkout at 16 clients: p99 $kp99 ms; baseline: update.sql at 16 clients in the same database)"
	if [ -n "$KWAL" ]; then
		# shellcheck disable=SC2086
		kwal=$(printf '%.0f' "$(median $KWAL)")
		echo "(WAL a checkout writes: $kwal bytes, median over the rounds without a checkpoint of the WAL written during the round's checkouts over the receipts they committed)"
	else
		# shellcheck disable=SC2086
		kwal=$(printf '%.0f' "$(median $KWAL_CKPT)")
		echo "(WAL a checkout writes: $kwal bytes, median over all rounds: a checkpoint began in each)"
	fi
	if [ -n "$KWAL" ] && [ -n "$KWAL_CKPT" ]; then
		# shellcheck disable=SC2086
		echo "(in the rounds during which a checkpoint began, with the full pages after it: $(printf '%.0f' "$(median $KWAL_CKPT)") bytes a checkout, median of $(echo $KWAL_CKPT | wc -w))"
	fi
	FIGURES+=("bench checkout.c16 $ktps tps ratio $kratio vs update.c16" "bench checkout.p99 $kp99 ms"
		"bench checkout.wal_bytes $kwal bytes")
	# With the 20 fraud rules: tps the median of the rounds with rules, ratio
	# the median over rounds of (with rules / without, side by side).  The
	# rules must have counted (tally rows of customers and of cards) and
	# none tripped: a case or a refusal would change what is measured.
	if [ -n "${KTPS[fraud]:-}" ]; then
		# shellcheck disable=SC2086
		ftps=$(printf '%.0f' "$(median ${KTPS[fraud]})")
		# shellcheck disable=SC2086
		fratio=$(printf '%.2f' "$(balanced ${KRATIO[fraud]})")
		printf '%-16s %7s %9s %13s %7s   %s\n' checkout.fraud 16 "$ftps" "$ktps" "$fratio" "$(rounds_of "${KTPS[fraud]}")"
		echo "(with the 20 rules of test/bench/fraud_rules.sql on; baseline: the checkouts without them beside them in the same round; ratio: the geometric mean of the rounds' with / without over the first even number of rounds, each order as often; per round: $(rounds_ratio ${KRATIO[fraud]}); p99 $(p99_between 0 9999999999 "$CO_FRAUD_LAT".*) ms)"
		if read -r fcases fcust fcard fshare fcode < <(psql_calc -AtF ' ' -c "
			WITH w AS (
			    SELECT r.code, CASE WHEN r.measure LIKE 'distinct%' THEN count(*) ELSE sum(u.amount) END::numeric
			                   / GREATEST(r.threshold, 1) AS share
			      FROM loyalty.fraud_tally t
			     CROSS JOIN LATERAL unnest(t.rule_id, t.amount) u (rule, amount)
			      JOIN loyalty.fraud_rule r ON r.id = u.rule
			     GROUP BY r.code, r.measure, r.threshold, t.subject_kind, t.subject),
			top AS (SELECT code, share FROM w ORDER BY share DESC LIMIT 1)
			SELECT (SELECT count(*) FROM loyalty.fraud_case),
			       (SELECT count(*) FROM loyalty.fraud_tally WHERE subject_kind = 'customer'),
			       (SELECT count(*) FROM loyalty.fraud_tally WHERE subject_kind = 'identifier'),
			       COALESCE((SELECT round(100 * share, 1) FROM top), 0), COALESCE((SELECT code FROM top), '-')") &&
			[ "$fcases" = 0 ] && [ "$fcust" -gt 0 ] && [ "$fcard" -gt 0 ]; then
			echo "(the rules counted $fcust customers and $fcard cards, opened no case; the fullest window held at most $fshare % of its threshold, $fcode)"
			FIGURES+=("bench checkout.fraud.c16 $ftps tps ratio $fratio vs checkout.c16")
		else
			echo "run.sh: the fraud rules opened ${fcases:-?} case(s) or counted nothing (${fcust:-?} customers, ${fcard:-?} cards): raise the thresholds of $BENCH/fraud_rules.sql; see loyalty.fraud_case in $CDB" >&2
			psql_calc -c 'SELECT rule_code, subject_kind, count(*) AS cases, max(tally) AS tally, max(threshold) AS threshold FROM loyalty.fraud_case GROUP BY 1, 2 ORDER BY 1' >&2 || true
			errors=$((errors + 1))
		fi
	fi
	# With the challenges and the experiment: as the fraud rules' figure;
	# the challenges must have counted receipts of some customers.
	if [ -n "${KTPS[campaigns]:-}" ]; then
		# shellcheck disable=SC2086
		gtps=$(printf '%.0f' "$(median ${KTPS[campaigns]})")
		# shellcheck disable=SC2086
		gratio=$(printf '%.2f' "$(balanced ${KRATIO[campaigns]})")
		printf '%-16s %7s %9s %13s %7s   %s\n' checkout.campaigns 16 "$gtps" "$ktps" "$gratio" "$(rounds_of "${KTPS[campaigns]}")"
		echo "(with the 50 challenges and the experiment of test/bench/campaigns.sql on; baseline: the checkouts without them beside them in the same round; ratio as checkout.fraud's; per round: $(rounds_ratio ${KRATIO[campaigns]}); p99 $(p99_between 0 9999999999 "$CO_CAMP_LAT".*) ms)"
		if read -r gcust greceipts gdone < <(psql_calc -AtF ' ' -c "
			SELECT (SELECT count(*) FROM loyalty.challenge_progress), (SELECT count(*) FROM loyalty.challenge_receipt),
			       (SELECT count(*) FROM loyalty.challenge_progress WHERE completions > 0)") &&
			[ "$gcust" -gt 0 ] && [ "$greceipts" -gt 0 ]; then
			echo "(the challenges counted $greceipts receipts of $gcust enrolments; $gdone completed)"
			FIGURES+=("bench checkout.campaigns.c16 $gtps tps ratio $gratio vs checkout.c16")
		else
			echo "run.sh: the challenges counted nothing ($gcust enrolments, $greceipts receipts): see $BENCH/campaigns.sql" >&2
			errors=$((errors + 1))
		fi
	fi
	# each drain: kind, job, its figures, and what it does
	for d in "queue release_accruals queue.release checkout.p99.drain due_accruals_released" \
		"expiry expire_due expiry.record checkout.p99.expiry expired_lots_recorded"; do
		read -r kind job rate_name p99_name what <<<"$d"
		if read -r rate p99 < <(drain "$kind" "$job") && [ "$p99" != none ]; then
			echo "($kind: $backlog ${what//_/ } by two workers at $rate per second; checkout p99 meanwhile $p99 ms)"
			FIGURES+=("bench $rate_name $rate per_s"
				"bench $p99_name $p99 ms ratio $(awk -v a="$p99" -v b="$kp99" 'BEGIN { printf "%.2f", a / b }') vs checkout.p99")
		else
			errors=$((errors + 1))
		fi
	done
fi

# The reports: a year of history in the same database (reports_data.sql:
# receipts over 365 days, tier changes, coupon uses), then the typical query
# of each view, timed as an analyst bound to the programme (reports.sql).
case "$MODE" in
	smoke) history=20000 ;;
	quick) history=1000000 ;;
	full) history=10000000 ;;
esac
history=${BENCH_HISTORY:-$history}
echo
echo "== reports: $customers customers, $history receipts over a year; the typical query of each view"
if psql_calc -v history="$history" -f "$BENCH/reports_data.sql" >"$LOGDIR/reports_data.log" 2>&1 &&
	psql_calc -c "VACUUM ANALYZE" >>"$LOGDIR/reports_data.log" 2>&1 &&
	psql_calc -f "$BENCH/reports.sql" >"$LOGDIR/reports.log" 2>&1; then
	while read -r _ name ms _; do
		printf '%-24s %10s ms\n' "${name#report.}" "$ms"
	done < <(grep '^bench report\.' "$LOGDIR/reports.log")
	mapfile -t REPORT_FIGURES < <(grep '^bench report\.' "$LOGDIR/reports.log")
	FIGURES+=("${REPORT_FIGURES[@]}")
else
	echo "run.sh: the reports benchmark failed; see $LOGDIR/reports_data.log and $LOGDIR/reports.log" >&2
	errors=$((errors + 1))
fi

if [ "$errors" -gt 0 ]; then
	echo "run.sh: $errors pgbench run(s) failed; see $LOGDIR/" >&2
	exit 1
fi
if [ "$match_failed" = 1 ]; then
	echo "run.sh: the condition matching benchmark failed; see $MATCH_DIR/condition_match.out" >&2
	exit 1
fi
FIGURES+=("${MATCH_FIGURES[@]}")
echo
printf '%s\n' "${FIGURES[@]}"
