#!/usr/bin/env bash
# test/ha/run.sh — failover scenarios (make test-ha): a Patroni cluster of
# three nodes and one etcd on loopback (test/ha/cluster.sh), the extension
# installed on the leader with a sample programme and its jobs scheduled in
# pg_cron, and for each scenario the load of test/ha/client.py (checkouts
# with redemption, refunds, manual holds; the same request again whenever an
# outcome is unknown) while a fault hits the leader:
#
#   kill-leader  kill -9 of the leader's Patroni and postmaster (the node is
#                started again afterwards and must rejoin as a replica)
#   switchover   patronictl switchover to the synchronous standby
#   stall        SIGSTOP of every process of the leader for longer than the
#                TTL, then SIGCONT: the old leader must not take writes as a
#                second primary, and must rejoin as a replica
#
# After each: every acknowledged receipt is there exactly once, no wallet is
# negative, every wallet's versions are contiguous and its balance chain
# holds, the ledger sums to the wallets' balances, accruals that were due
# before the fault are released by the pg_cron job on the new primary within
# two minutes, and the old primary runs as a replica.  Then every view the
# analyst role reads is read on a replica ("ha replica views N of N").  One
# line each:
#   ha SCENARIO acked N lost N duplicated N unknown N unavailable_s S
# The cluster is always torn down (trap), leaving no process behind.
#
# Usage: test/ha/run.sh [SCENARIO...]   (default: all three)
# Environment: LOYALTY_HA_PORT (base port, default 25430),
#              LOYALTY_HA_LOAD (seconds of load before and after a fault, default 10)
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
source test/ha/cluster.sh

SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(kill-leader switchover stall)
LOAD=${LOYALTY_HA_LOAD:-10}
TTL=20
PY=/usr/bin/python3   # Debian's, with psycopg2
for s in "${SCENARIOS[@]}"; do
	case "$s" in kill-leader | switchover | stall) ;; *) echo "run.sh: unknown scenario \"$s\"" >&2; exit 2 ;; esac
done
for cmd in patroni patronictl etcd curl; do
	command -v "$cmd" >/dev/null || { echo "run.sh: $cmd is missing (make deps)" >&2; exit 1; }
done

client=
trap '[ -z "$client" ] || kill -KILL "$client" 2>/dev/null; ha_stop' EXIT
trap 'exit 130' INT TERM

ha_log "starting etcd and three Patroni nodes under $HA_DIR (ports from $HA_PORT)"
ha_start || exit 1
leader=$(ha_leader)
ha_log "leader $leader, synchronous standby $(ha_sync_standby)"

# The extension and a sample programme: 1 000 customers with 100 000
# points each, accruals queued for 5 seconds (the pg_cron job releases them), a
# promotion and bonus lots so that receipts spend and earn.
ha_psql -c 'CREATE EXTENSION loyalty' || exit 1
ha_psql >/dev/null <<'SQL' || exit 1
BEGIN;
INSERT INTO loyalty.program (code, name, default_currency, accrual_rate_bp, accrual_delay)
VALUES ('ha', 'Failover', 'bonus', 500, '5 seconds');
INSERT INTO loyalty.currency (program_id, code, name, money_per_unit) VALUES (1, 'bonus', 'Bonus', 1);
COMMIT;
INSERT INTO loyalty.product (program_id, sku, name, category)
SELECT 1, 'SKU' || i, 'Product ' || i, CASE WHEN i <= 5 THEN 'shoes' ELSE 'other' END FROM generate_series(1, 20) i;
INSERT INTO loyalty.promotion (program_id, code, name, status, line_condition, benefit)
VALUES (1, 'SHOES10', 'Shoes 10% off', 'active', 'category = ''shoes''', '{"kind": "percent_off", "percent": 10}'),
       (1, 'BONUS', 'Bonus lot on shoes', 'active', 'category = ''shoes''',
        '{"kind": "bonus_lot", "points": 50, "valid_days": 30}');
SELECT count(*) FROM (SELECT loyalty.accrue(loyalty.enroll('ha', card => (30000000 + i)::text), 'bonus', 100000)
                        FROM generate_series(1, 1000) i) a;
SELECT loyalty.schedule_jobs();
SQL

# What must hold after a scenario; prints "lost duplicated" and fails on a
# broken invariant.  $1: the client's summary.
check() {
	local out=$1
	"$PY" -c 'import json,sys; sys.stdout.write("".join(x + "\n" for x in json.load(open(sys.argv[1]))["receipts"]))' "$out" >"$HA_DIR/acked.txt"
	"$PY" -c 'import json,sys; sys.stdout.write("".join(x + "\n" for x in json.load(open(sys.argv[1]))["refunds"]))' "$out" >"$HA_DIR/refunds.txt"
	{
		echo 'CREATE TEMP TABLE acked (receipt_id text);'
		echo "\\copy acked FROM '$HA_DIR/acked.txt'"
		echo "CREATE TEMP TABLE refunds (receipt_id text, refund_id text);"
		echo "\\copy refunds FROM '$HA_DIR/refunds.txt' (DELIMITER ' ')"
		cat <<'SQL'
SELECT (SELECT count(*) FROM acked a WHERE NOT EXISTS (
            SELECT FROM loyalty.receipt_key k WHERE k.program_id = 1 AND k.receipt_id = a.receipt_id))
       || ' ' ||
       (SELECT count(*) FROM (SELECT receipt_id FROM loyalty.receipt GROUP BY program_id, receipt_id
                               HAVING count(*) > 1) d);
DO $$
BEGIN
    IF EXISTS (SELECT FROM refunds f WHERE NOT EXISTS (
                   SELECT FROM loyalty.receipt_refund r
                    WHERE r.program_id = 1 AND r.receipt_id = f.receipt_id AND r.refund_id = f.refund_id)) THEN
        RAISE EXCEPTION 'an acknowledged refund is missing';
    END IF;
    IF EXISTS (SELECT FROM loyalty.wallet WHERE balance < 0) THEN
        RAISE EXCEPTION 'a wallet is negative';
    END IF;
    IF EXISTS (SELECT FROM loyalty.ledger GROUP BY customer_id, currency
                HAVING min(version) <> 1 OR max(version) <> count(*)) THEN
        RAISE EXCEPTION 'a wallet''s ledger versions are not contiguous';
    END IF;
    IF EXISTS (SELECT FROM loyalty.ledger e
                 LEFT JOIN loyalty.ledger p ON p.customer_id = e.customer_id AND p.currency = e.currency
                                           AND p.version = e.version - 1
                WHERE e.balance_after <> COALESCE(p.balance_after, 0) + e.amount) THEN
        RAISE EXCEPTION 'a wallet''s balance chain is broken';
    END IF;
    IF (SELECT sum(amount) FROM loyalty.ledger) <> (SELECT sum(balance) FROM loyalty.wallet)
       OR EXISTS (SELECT FROM loyalty.wallet w
                   WHERE w.balance <> (SELECT balance_after FROM loyalty.ledger e
                                        WHERE e.customer_id = w.customer_id AND e.currency = w.currency
                                        ORDER BY version DESC LIMIT 1)) THEN
        RAISE EXCEPTION 'the ledger does not sum to the wallets'' balances';
    END IF;
    IF EXISTS (SELECT FROM loyalty.receipt r JOIN loyalty.receipt_line l USING (program_id, receipt_id, committed_at)
                GROUP BY r.program_id, r.receipt_id, r.committed_at, r.to_pay HAVING sum(l.to_pay) <> r.to_pay) THEN
        RAISE EXCEPTION 'a receipt''s lines do not add up';
    END IF;
END
$$;
SQL
	} | ha_psql
}

# Accruals due before the fault ($1, epoch) released by the job on the new
# primary; prints the seconds it took after the new leader was up ($2)
wait_released() {
	local fault=$1 up=$2 left deadline=$((SECONDS + 150))
	while [ $SECONDS -lt $deadline ]; do
		left=$(ha_psql -c "SELECT count(*) FROM loyalty.accrual_queue WHERE release_at <= to_timestamp($fault)" 2>/dev/null)
		if [ "$left" = 0 ]; then
			awk -v a="$(date +%s.%N)" -v b="$up" 'BEGIN { printf "%.1f", a - b }'
			return 0
		fi
		sleep 1
	done
	return 1
}

# A durable write straight to a node, bypassing the connection string: does
# the node take writes?
probe_write() {
	"$BINDIR/psql" -X -q -At -h 127.0.0.1 -p "$(pg_port "$1")" -U postgres -d loyalty \
		-c "SET statement_timeout = '2s'" \
		-c "INSERT INTO ha_probe VALUES ('$2', '$1') RETURNING 1" 2>/dev/null | tail -1
}

failed=0
LINES=()
round=0
for scenario in "${SCENARIOS[@]}"; do
	round=$((round + 1))
	old=$(ha_wait_leader "" 60) || { ha_log "no leader before $scenario"; failed=1; break; }
	# a healthy cluster first: a synchronous standby chosen
	deadline=$((SECONDS + 60))
	until ha_sync_standby >/dev/null; do
		[ $SECONDS -lt $deadline ] || { ha_log "no synchronous standby before $scenario"; failed=1; break 2; }
		sleep 1
	done
	out="$HA_DIR/$scenario.json"
	stop="$HA_DIR/$scenario.stop"
	rm -f "$stop"
	ha_log "== $scenario: leader $old, synchronous standby $(ha_sync_standby); load for ${LOAD}s"
	"$PY" test/ha/client.py --dsn "$(ha_dsn)" --prefix "$scenario" --seed "$round" \
		--stop-file "$stop" --out "$out" 2>"$HA_DIR/$scenario.client.log" &
	client=$!
	sleep "$LOAD"
	fault=$(date +%s.%N)
	split=0
	case "$scenario" in
	kill-leader)
		pids="$(patroni_pid "$old") $(postmaster_pid "$old")"
		ha_log "kill -9 of $old's Patroni and postmaster ($pids)"
		kill -KILL $pids
		;;
	switchover)
		target=$(ha_sync_standby)
		ha_log "switchover from $old to $target"
		patronictl -c "$HA_DIR/$old/patroni.yml" switchover --leader "$old" --candidate "$target" --force \
			>"$HA_DIR/$scenario.patronictl.log" 2>&1
		;;
	stall)
		ha_psql -c 'CREATE TABLE IF NOT EXISTS ha_probe (id text PRIMARY KEY, node text)'
		pids=$(node_pids "$old")
		ha_log "SIGSTOP of every process of $old for $((TTL + 10))s"
		kill -STOP $pids
		;;
	esac
	new=$(ha_wait_leader "$old" 120) || { ha_log "no new leader after $scenario"; failed=1; touch "$stop"; wait "$client"; break; }
	up=$(date +%s.%N)
	to_leader=$(awk -v a="$up" -v b="$fault" 'BEGIN { printf "%.1f", a - b }')
	ha_log "new leader $new after ${to_leader}s"
	case "$scenario" in
	kill-leader)
		ha_log "starting $old's Patroni again"
		start_node "$old"
		;;
	stall)
		rest=$(awk -v f="$fault" -v n="$(date +%s.%N)" -v t=$((TTL + 10)) 'BEGIN { r = t - (n - f); print (r > 0 ? r : 0) }')
		sleep "$rest"
		ha_log "SIGCONT of $old; probing it for writes"
		kill -CONT $pids
		for i in $(seq 1 20); do
			if [ "$(probe_write "$old" "p$i")" = 1 ]; then
				split=$((split + 1))
				ha_log "$old took write p$i after SIGCONT"
			fi
			sleep 0.25
		done
		ha_log "$old took $split of 20 writes sent to it directly after SIGCONT"
		;;
	esac
	sleep "$LOAD"
	touch "$stop"
	wait "$client" || { ha_log "the client failed"; cat "$HA_DIR/$scenario.client.log" >&2; failed=1; break; }
	cat "$HA_DIR/$scenario.client.log" >&2
	"$PY" -c 'import json, sys; print("client counts:", json.load(open(sys.argv[1]))["counts"])' "$out" >&2

	read -r lost duplicated < <(check "$out" | tail -1)
	if [ -z "${lost:-}" ]; then
		ha_log "$scenario: the checks failed"
		failed=1
	fi
	if [ "$split" -gt 0 ]; then
		kept=$(ha_psql -c "SELECT count(*) FROM ha_probe WHERE node = '$old'")
		ha_log "$scenario: the old leader took $split writes; $kept of them survive on the new primary"
		[ "$kept" = "$split" ] || failed=1
	fi
	released=$(wait_released "$(awk -v f="$fault" 'BEGIN { printf "%d", f }')" "$up") &&
		awk -v r="$released" 'BEGIN { exit !(r <= 120) }' || {
		ha_log "$scenario: accruals due before the fault were not released within two minutes of the new leader (${released:-never})"
		failed=1
	}
	ha_wait_replica "$old" 180 || { ha_log "$scenario: $old did not rejoin as a replica"; failed=1; }
	read -r acked unknown resolved gap < <("$PY" -c '
import json, sys
s = json.load(open(sys.argv[1]))
print(len(s["receipts"]), s["unknown"], s["resolved"], s["unavailable_s"])' "$out")
	ha_log "$scenario: new leader after ${to_leader}s; queued accruals released ${released}s after; $old rejoined; unknown outcomes resolved: $resolved of $unknown"
	LINES+=("ha $scenario acked $acked lost ${lost:-?} duplicated ${duplicated:-?} unknown $unknown unavailable_s $gap")
	if [ "${lost:-1}" != 0 ] || [ "${duplicated:-1}" != 0 ] || [ "$resolved" != "$unknown" ]; then
		failed=1
	fi
	[ "$failed" = 0 ] || break
done

# The reports on a replica: every view the analyst role reads answers on a
# hot standby, read as an analyst bound to every programme.
if [ "$failed" = 0 ]; then
	ha_psql -c "DO \$\$ BEGIN
	                IF (SELECT count(*) FROM pg_roles WHERE rolname = 'ha_analyst') = 0 THEN
	                    CREATE ROLE ha_analyst IN ROLE loyalty_analyst;
	                END IF;
	            END \$\$" -c "SELECT loyalty.grant_program(NULL, 'ha_analyst')" >/dev/null
	replica=$(ha_first replica) || { ha_log "no replica for the reports"; failed=1; }
	views_ok=0
	views=0
	if [ -n "${replica:-}" ]; then
		deadline=$((SECONDS + 60))
		until [ "$(ha_psql_node "$replica" -c "SELECT count(*) FROM loyalty.program_access WHERE role = 'ha_analyst'::regrole" 2>/dev/null)" = 1 ]; do
			[ $SECONDS -lt $deadline ] || { ha_log "the replica $replica did not replay the analyst's binding"; failed=1; break; }
			sleep 1
		done
		for view in $(ha_psql_node "$replica" -c "SELECT c.oid::regclass FROM pg_class c
		                                           WHERE c.relnamespace = 'loyalty'::regnamespace AND c.relkind = 'v'
		                                             AND has_table_privilege('loyalty_analyst', c.oid, 'SELECT') ORDER BY 1"); do
			views=$((views + 1))
			if rows=$(ha_psql_node "$replica" -c "SET ROLE ha_analyst" -c "SELECT count(*) FROM $view" 2>"$HA_DIR/replica-view.err"); then
				views_ok=$((views_ok + 1))
				ha_log "on replica $replica: $view, $rows rows"
			else
				ha_log "on replica $replica: $view failed: $(cat "$HA_DIR/replica-view.err")"
				failed=1
			fi
		done
	fi
	LINES+=("ha replica views $views_ok of $views")
fi

echo
printf '%s\n' "${LINES[@]}"
exit $failed
