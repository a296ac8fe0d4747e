#!/usr/bin/env bash
# test/log/run.sh — what the extension writes to the server log: the log of
# slow calculations (loyalty.log_min_duration_calculate).  The LOG lines are
# read as a client sees them (client_min_messages = log): at 0 every
# calculation and recomputation is logged with its programme, receipt id,
# lines and search work, and nothing of the customer; at a threshold no
# calculation reaches, none is; at -1 (the default) none is.  Prints "ok -"
# or "not ok -" per check and exits non-zero if any fails.  Run by
# test/run-tests.sh against the throwaway server (libpq variables set).
set -uo pipefail

BINDIR=${PGBINDIR:-$(pg_config --bindir)}
DB=loyalty_log
failed=0
check() {	# check NAME COMMAND...: run the command, report
	local name=$1
	shift
	if "$@"; then echo "ok - $name"; else echo "not ok - $name"; failed=1; fi
}
psql_log() {	# psql_log SETTING SQL: run SQL with the setting, LOG lines shown
	"$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -d "$DB" \
		-c "SET client_min_messages = log" -c "SET loyalty.log_min_duration_calculate = '$1'" -c "$2" 2>&1
}

"$BINDIR/dropdb" --if-exists "$DB"
"$BINDIR/createdb" "$DB"
"$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -d "$DB" >/dev/null <<'SQL' || exit 1
CREATE EXTENSION loyalty;
BEGIN;
INSERT INTO loyalty.program (code, name, default_currency, accrual_rate_bp) VALUES ('logp', 'Log', 'pts', 500);
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit) SELECT id, 'pts', 'Points', 1 FROM loyalty.program;
INSERT INTO loyalty.promotion (program_id, code, name, status, benefit)
SELECT id, 'TEN', 'Ten percent', 'active', '{"kind": "percent_off", "percent": 10}' FROM loyalty.program;
COMMIT;
SELECT loyalty.enroll('logp', card => '55550001', email => 'secret.person@example.com');
SQL

receipt='{"program": "logp", "receipt_id": "R-77", "customer": {"card": "55550001"},
          "lines": [{"line": 1, "qty": 1, "price": 100}, {"line": 2, "qty": 3, "price": 250}]}'

out=$(psql_log 0 "SELECT loyalty.calculate('$receipt') IS NOT NULL AS calculated")
check "at 0 a calculation is logged with its duration" \
	grep -Eq '^LOG:  loyalty\.calculate took [0-9]+\.[0-9]{3} ms$' <<<"$out"
check "the log names the programme, the receipt, its lines and the search" \
	grep -Eq '^DETAIL:  Programme "logp", receipt "R-77", 2 lines, 1 candidate promotions, [0-9]+ combinations explored, optimal\.$' <<<"$out"
check "the log holds nothing of the customer" \
	bash -c '! grep -Eq "55550001|secret\.person" <<<"$1"' _ "$out"
check "the log does not repeat the statement" bash -c '! grep -q "^STATEMENT:" <<<"$1"' _ "$out"

out=$(psql_log 0 "SELECT loyalty.commit('$receipt') ->> 'status'")
check "commit's calculation is logged too" grep -Eq '^LOG:  loyalty\.calculate took' <<<"$out"
out=$(psql_log 0 "SELECT loyalty.refund('logp', 'R-77', '[{\"line\": 2, \"qty\": 1}]', 'RET-1') ->> 'status'")
check "a refund's recomputation is logged as recompute" grep -Eq '^LOG:  loyalty\.recompute took' <<<"$out"

out=$(psql_log 1h "SELECT loyalty.calculate('$receipt') IS NOT NULL AS calculated")
check "a calculation below the threshold is not logged" bash -c '! grep -q "^LOG:" <<<"$1"' _ "$out"
out=$(psql_log -1 "SELECT loyalty.calculate('$receipt') IS NOT NULL AS calculated")
check "at -1 nothing is logged" bash -c '! grep -q "^LOG:" <<<"$1"' _ "$out"

"$BINDIR/dropdb" --if-exists "$DB"
exit $failed
