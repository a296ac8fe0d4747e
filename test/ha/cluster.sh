# test/ha/cluster.sh — sourced by test/ha/run.sh: a Patroni cluster of three
# PostgreSQL 15 nodes and one etcd, on loopback only, everything under
# tmp/ha.  PostgreSQL runs as the "postgres" user when started by root.
#
# Ports (LOYALTY_HA_PORT, default 25430): PostgreSQL of node N at base + N,
# its Patroni REST API at base + 10 + N, etcd's client port at base + 20 and
# its peer port at base + 21.
#
# The settings, and why, are in docs/operations.md: synchronous_mode on
# (strict off), ttl 20 / loop_wait 5 / retry_timeout 5, pg_rewind, data
# checksums, replication slots, pg_cron with background workers, no watchdog
# (a test host has none).

HA_DIR="$REPO/tmp/ha"
HA_PORT=${LOYALTY_HA_PORT:-25430}
HA_NODES=(pg1 pg2 pg3)
HA_SCOPE=loyalty-ha
ETCD_CLIENT=$((HA_PORT + 20))
ETCD_PEER=$((HA_PORT + 21))
BINDIR=$(pg_config --bindir)

node_index() { echo "${1#pg}"; }
pg_port() { echo $((HA_PORT + $(node_index "$1"))); }
rest_port() { echo $((HA_PORT + 10 + $(node_index "$1"))); }

if [ "$(id -u)" -eq 0 ]; then
	id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
	as_pg() { (cd / && runuser -u postgres -- "$@"); }
else
	as_pg() { "$@"; }
fi

ha_log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# The multi-host connection string every client uses
ha_dsn() {
	local hosts="" ports="" n
	for n in "${HA_NODES[@]}"; do
		hosts+="${hosts:+,}127.0.0.1"
		ports+="${ports:+,}$(pg_port "$n")"
	done
	echo "host=$hosts port=$ports dbname=loyalty user=postgres target_session_attrs=read-write connect_timeout=2"
}

# psql on one node, or on whichever is the primary
ha_psql_node() { local n=$1; shift; "$BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$(pg_port "$n")" -U postgres -d loyalty "$@"; }
ha_psql() { "$BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 "$(ha_dsn)" "$@"; }

# HTTP status of a Patroni REST endpoint of a node (000 if it does not answer)
rest_status() { curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$(rest_port "$1")/$2" || true; }

# The first node whose REST endpoint answers 200, or nothing
ha_first() {
	local n
	for n in "${HA_NODES[@]}"; do
		if [ "$(rest_status "$n" "$1")" = 200 ]; then echo "$n"; return 0; fi
	done
	return 1
}
# The node holding the leader lock; the current synchronous standby
ha_leader() { ha_first primary; }
ha_sync_standby() { ha_first sync; }

# Wait until a leader is up (and not the one given); print it
ha_wait_leader() {
	local not=${1:-} deadline=$((SECONDS + ${2:-120})) l
	while [ $SECONDS -lt $deadline ]; do
		l=$(ha_leader || true)
		if [ -n "$l" ] && [ "$l" != "$not" ]; then echo "$l"; return 0; fi
		sleep 0.5
	done
	return 1
}

# Wait until a node runs as a streaming replica
ha_wait_replica() {
	local n=$1 deadline=$((SECONDS + ${2:-180}))
	while [ $SECONDS -lt $deadline ]; do
		if [ "$(rest_status "$n" replica)" = 200 ] &&
			[ "$(ha_psql_node "$n" -d postgres -c 'SELECT pg_is_in_recovery() AND EXISTS (SELECT FROM pg_stat_wal_receiver)' 2>/dev/null)" = t ]; then
			return 0
		fi
		sleep 1
	done
	return 1
}

write_config() {
	local n=$1 dir="$HA_DIR/$1"
	mkdir -p "$dir/run"
	cat >"$dir/patroni.yml" <<YAML
scope: $HA_SCOPE
namespace: /loyalty/
name: $n
log:
  level: INFO
restapi:
  listen: 127.0.0.1:$(rest_port "$n")
  connect_address: 127.0.0.1:$(rest_port "$n")
etcd:
  hosts: 127.0.0.1:$ETCD_CLIENT
  protocol: http
bootstrap:
  dcs:
    ttl: 20
    loop_wait: 5
    retry_timeout: 5
    maximum_lag_on_failover: 1048576
    synchronous_mode: true
    synchronous_mode_strict: false
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        max_connections: 100
        max_worker_processes: 16
        max_wal_senders: 10
        max_replication_slots: 10
        wal_level: replica
        wal_log_hints: "on"
        wal_keep_size: 1GB
        wal_compression: lz4
        shared_preload_libraries: pg_cron
        cron.database_name: loyalty
        cron.use_background_workers: "on"
        cron.max_running_jobs: 8
  initdb:
    - data-checksums
    - encoding: UTF8
    - locale: C.UTF-8
postgresql:
  listen: 127.0.0.1:$(pg_port "$n")
  connect_address: 127.0.0.1:$(pg_port "$n")
  data_dir: $dir/data
  bin_dir: $BINDIR
  pgpass: $dir/pgpass
  authentication:
    superuser: {username: postgres, password: loyalty-ha}
    replication: {username: replicator, password: loyalty-ha}
    rewind: {username: rewinder, password: loyalty-ha}
  parameters:
    unix_socket_directories: $dir/run
    log_min_messages: warning
  basebackup:
    - checkpoint: fast
  pg_hba:
    - local all all trust
    - host all all 127.0.0.1/32 trust
    - host replication replicator 127.0.0.1/32 trust
watchdog:
  mode: "off"
YAML
}

start_etcd() {
	mkdir -p "$HA_DIR/etcd"
	etcd --name etcd0 --data-dir "$HA_DIR/etcd/data" \
		--listen-client-urls "http://127.0.0.1:$ETCD_CLIENT" --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT" \
		--listen-peer-urls "http://127.0.0.1:$ETCD_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
		--initial-cluster "etcd0=http://127.0.0.1:$ETCD_PEER" --initial-cluster-state new \
		--initial-cluster-token loyalty-ha --enable-v2=true \
		>"$HA_DIR/etcd/etcd.log" 2>&1 &
	echo $! >"$HA_DIR/etcd/pid"
	local deadline=$((SECONDS + 30))
	until curl -sf -m 2 "http://127.0.0.1:$ETCD_CLIENT/health" | grep -q true; do
		[ $SECONDS -lt $deadline ] || { ha_log "etcd did not start"; tail -20 "$HA_DIR/etcd/etcd.log" >&2; return 1; }
		sleep 0.2
	done
}

start_node() {
	local n=$1
	[ "$(id -u)" -ne 0 ] || chown -R postgres: "$HA_DIR/$n"
	# setsid: its own process group, so that a fault hits this node only
	as_pg setsid patroni "$HA_DIR/$n/patroni.yml" >>"$HA_DIR/$n/patroni.log" 2>&1 &
	echo $! >"$HA_DIR/$n/patroni.pid"
}

# The pid of a node's Patroni and of its postmaster
patroni_pid() { pgrep -f "bin/patroni $HA_DIR/$1/patroni.yml" | head -1; }
postmaster_pid() { head -1 "$HA_DIR/$1/data/postmaster.pid" 2>/dev/null; }
# Every process of a node: Patroni, the postmaster and its children
node_pids() {
	local p m
	p=$(patroni_pid "$1")
	m=$(postmaster_pid "$1")
	echo $p $m
	[ -z "$m" ] || pgrep -P "$m"
}

ha_start() {
	ha_stop
	rm -rf "$HA_DIR"
	mkdir -p "$HA_DIR"
	[ "$(id -u)" -ne 0 ] || chown postgres: "$HA_DIR"
	start_etcd || return 1
	local n
	for n in "${HA_NODES[@]}"; do write_config "$n"; done
	start_node pg1
	ha_wait_leader "" 120 >/dev/null || { ha_log "pg1 did not become the leader"; tail -30 "$HA_DIR/pg1/patroni.log" >&2; return 1; }
	# the database pg_cron works in (cron.database_name), before the replicas copy it
	ha_psql_node pg1 -d postgres -c 'CREATE DATABASE loyalty' &&
		ha_psql_node pg1 -c 'CREATE EXTENSION pg_cron' || return 1
	start_node pg2
	start_node pg3
	for n in pg2 pg3; do
		ha_wait_replica "$n" 180 || { ha_log "$n did not become a replica"; tail -30 "$HA_DIR/$n/patroni.log" >&2; return 1; }
	done
	local deadline=$((SECONDS + 60))
	until ha_sync_standby >/dev/null; do
		[ $SECONDS -lt $deadline ] || { ha_log "no synchronous standby"; return 1; }
		sleep 1
	done
}

# Stop everything started under tmp/ha, and leave no process behind
ha_stop() {
	local pids n p
	for n in "${HA_NODES[@]}"; do
		[ -d "$HA_DIR/$n" ] || continue
		pids=$(node_pids "$n")
		[ -z "$pids" ] || kill -CONT $pids 2>/dev/null
		p=$(patroni_pid "$n")
		[ -z "$p" ] || kill -TERM "$p" 2>/dev/null
	done
	local deadline=$((SECONDS + 20))
	while [ $SECONDS -lt $deadline ] && pgrep -f "$HA_DIR/pg[0-9]" >/dev/null; do sleep 0.5; done
	pids=$(pgrep -f "$HA_DIR/pg[0-9]" || true)
	[ -z "$pids" ] || kill -KILL $pids 2>/dev/null
	for n in "${HA_NODES[@]}"; do
		p=$(postmaster_pid "$n")
		if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
			kill -KILL "$p" $(pgrep -P "$p") 2>/dev/null
		fi
	done
	if [ -f "$HA_DIR/etcd/pid" ]; then
		kill -TERM "$(cat "$HA_DIR/etcd/pid")" 2>/dev/null
		sleep 0.5
		kill -KILL "$(cat "$HA_DIR/etcd/pid")" 2>/dev/null
		rm -f "$HA_DIR/etcd/pid"
	fi
	true
}
