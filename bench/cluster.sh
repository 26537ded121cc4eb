#!/usr/bin/env bash
# Several nodes benchmark: $N outbound registrations kept by $NODES trunkline nodes sharing one
# PostgreSQL database, against the same $N kept by one node on its embedded SQLite, with one
# Kamailio registrar, in one run.
#
#   bench/cluster.sh                        # from the repository root, as root (or with sudo)
#   N=3000 WINDOW=20 bench/cluster.sh       # a quick check
#
# Needs: cargo, curl, awk, and (installed here with apt-get if missing) the Debian 12 packages
# kamailio, kamailio-sqlite-modules, sqlite3 and postgresql. Takes about 15 minutes after the
# release build at N=30000.
#
# What it measures:
#   registrar  ONE Kamailio 5.6, configured as for bench/register.sh (bench/lib.sh: auth_db +
#              usrloc db_mode 1 on SQLite in WAL mode, one UDP worker, MD5 challenges; every
#              binding is on disk before its 200), holding $N subscribers. Its single worker is
#              the limit of both sides' first wave (about 1,000 new bindings/s at 10,000 rows,
#              fewer as the table grows): compare the sides' wave times with that in mind.
#   postgres   PostgreSQL from Debian in a temporary directory, durable defaults (fsync on,
#              synchronous_commit on), pg_stat_statements loaded to count statements.
#   side P     $NODES nodes (node-1…) on that database, started together, each with
#              TRUNKLINE_OUTBOUND_RAMP_PER_SEC=$RAMP, cluster.lease_secs $LEASE and
#              cluster.renew_secs $RENEW (the defaults). The $N registrations are created
#              beforehand through node-1's API with its engine off.
#   side S     one node on SQLite (the default), the same registrations, created the same way.
#   For each side, from the nodes' launch: wall time until the registrar holds exactly one live
#   binding for each of the $N accounts (sqlite3 on its `location` table every 0.5 s). Then
#   $WINDOW s of steady state (refreshes at EXPIRES=$EXPIRES, leases renewed): the nodes' CPU,
#   the database's load (P: statements, transactions and rows inserted/updated/deleted per
#   second from pg_stat_statements / pg_stat_database, and PostgreSQL's own CPU; both: bytes
#   written to disk per second by the database, from /proc/PID/io).
#   Failover (side P): node-$NODES is killed with SIGKILL; the time until the survivors hold all
#   $N leases (registration_leases), and until the registrar again holds exactly one live binding
#   per account, none of them the dead node's (its contacts replaced by the survivors' first
#   REGISTERs, not left to expire).
# Outputs go to bench/out/cluster-<UTC timestamp>/: results.md, the nodes' and servers' logs.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"
N=${N:-30000}
NODES=${NODES:-3}
EXPIRES=${EXPIRES:-180}             # asked for by the nodes; the registrar's min/default/max
RAMP=${RAMP:-1000}                  # per node
LEASE=${LEASE:-15}
RENEW=${RENEW:-5}
WINDOW=${WINDOW:-60}                # seconds of steady state measured
SETTLE=${SETTLE:-180}               # seconds after the wave before the window (refreshes under way: they come at 0.8–0.9 of EXPIRES)
WAVE_TIMEOUT=${WAVE_TIMEOUT:-600}
REG_PORT=${REG_PORT:-15160}
PG_PORT=${PG_PORT:-15432}
HTTP_BASE=${HTTP_BASE:-18380}       # node I listens on HTTP_BASE+I (HTTP) and SIP_BASE+I (SIP)
SIP_BASE=${SIP_BASE:-15170}
REALM=bench.test
OUT=${OUT:-$HERE/out/cluster-$(date -u +%Y%m%dT%H%M%SZ)}
CLK_TCK=$(getconf CLK_TCK)
PATH="$HOME/.cargo/bin:$PATH"

# --- tools ----------------------------------------------------------------------------------------
missing=()
command -v kamailio >/dev/null || missing+=(kamailio)
[ -e /usr/share/kamailio/db_sqlite/usrloc-create.sql ] || missing+=(kamailio-sqlite-modules)
command -v sqlite3 >/dev/null || missing+=(sqlite3)
command -v curl >/dev/null || missing+=(curl)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
KAMAILIO=$(command -v kamailio)
KAMCMD=$(command -v kamcmd)
SCHEMA=/usr/share/kamailio/db_sqlite
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)

mkdir -p "$OUT"
log "building (release)"
(cd "$ROOT" && cargo build --release -p trunkline)
# A private copy: another build in the same target directory would swap the binary mid-run.
cp "$ROOT/target/release/trunkline" "$OUT/trunkline"
TRUNKLINE=$OUT/trunkline

# --- processes ------------------------------------------------------------------------------------
REG_PID=""
NODE_PIDS=()
PG_DIR=""

stop_nodes() {
    local pid
    for pid in "${NODE_PIDS[@]}"; do stop_pid "$pid"; done
    NODE_PIDS=()
}
as_postgres() {  # PostgreSQL refuses to run as root
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
cleanup() {
    stop_nodes
    stop_pid "$REG_PID"
    if [ -n "$PG_DIR" ]; then
        as_postgres "$PGBIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
        cp "$PG_DIR/postgres.log" "$OUT/" 2>/dev/null || true
        rm -rf "$PG_DIR"
    fi
}
trap cleanup EXIT

REG_DIR=$OUT/registrar
REG_DB=$REG_DIR/kamailio.db
REG_SOCK=$REG_DIR/ctl.sock

pg_start() {
    # Under /tmp: the user postgres must reach it.
    PG_DIR=$(mktemp -d /tmp/trunkline-bench-pg.XXXXXX)
    chmod 755 "$PG_DIR"
    [ "$(id -u)" -ne 0 ] || chown postgres "$PG_DIR"
    as_postgres "$PGBIN/initdb" -D "$PG_DIR/data" -A trust -U postgres -E UTF8 --locale=C >"$OUT/initdb.log"
    as_postgres "$PGBIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w \
        -o "-p $PG_PORT -h 127.0.0.1 -k $PG_DIR -c max_connections=200 -c shared_preload_libraries=pg_stat_statements" \
        start >/dev/null
    psql_do postgres "CREATE DATABASE trunkline"
    psql_do trunkline "CREATE EXTENSION pg_stat_statements"
    PG_URL=postgres://postgres@127.0.0.1:$PG_PORT/trunkline
}
psql_do() {  # DB SQL: one line of unaligned output
    "$PGBIN/psql" -X -A -t -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d "$1" -c "$2"
}
pg_postmaster() { head -1 "$PG_DIR/data/postmaster.pid"; }

# node_start I ENABLED DATA_DIR [DATABASE_URL]
node_start() {
    local i=$1 enabled=$2 dir=$3 url=${4:-}
    env TRUNKLINE_LOG=warn TRUNKLINE_NODE_ID="node-$i" TRUNKLINE_SIP_LISTEN="127.0.0.1:$((SIP_BASE + i))" \
        TRUNKLINE_OUTBOUND_ENABLED="$enabled" TRUNKLINE_OUTBOUND_EXPIRES_SECS="$EXPIRES" \
        TRUNKLINE_OUTBOUND_RAMP_PER_SEC="$RAMP" TRUNKLINE_CLUSTER_LEASE_SECS="$LEASE" \
        TRUNKLINE_CLUSTER_RENEW_SECS="$RENEW" ${url:+TRUNKLINE_DATABASE_URL="$url"} \
        "$TRUNKLINE" --data-dir "$dir" serve --listen "127.0.0.1:$((HTTP_BASE + i))" \
        2>>"$OUT/node-$i.log" &
    NODE_PIDS+=($!)
}
wait_http() {  # I
    local i
    for i in $(seq 300); do
        curl -fs "http://127.0.0.1:$((HTTP_BASE + $1))/healthz" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    tail -20 "$OUT/node-$1.log" >&2; die "node-$1 did not start"
}

# seed DIR [DATABASE_URL]: the $N registrations, through node-1's API with its engine off.
seed() {
    local dir=$1 url=${2:-} key
    : >"$OUT/node-1.log"
    node_start 1 false "$dir" "$url"
    wait_http 1
    key=$(sed -n 's/^default tenant: .* api_key=\([^ ]*\)$/\1/p' "$OUT/node-1.log")
    [ -n "$key" ] || die "no default tenant line"
    api_seed "$((HTTP_BASE + 1))" "$key" "$N" "$dir"
    stop_nodes
}

# registered [DEAD_PORT]: "yes" once every account has exactly one live binding (none from
# 127.0.0.1:DEAD_PORT).
registered() {
    local dead=${1:-0}
    sqlite3 -cmd '.timeout 2000' "$REG_DB" "SELECT COUNT(*) = $N AND COUNT(DISTINCT username) = $N
        AND COALESCE(SUM(contact LIKE '%@127.0.0.1:$dead;%'), 0) = 0
        FROM location WHERE expires > julianday('now')" 2>/dev/null | grep -qx 1 && echo yes || echo no
}
wait_registered() {  # LABEL [DEAD_PORT]: seconds taken, or dies
    local t0 t
    t0=$(now)
    while [ "$(registered "${2:-0}")" != yes ]; do
        t=$(calc %.1f "$(now) - $t0")
        awk -v t="$t" -v m="$WAVE_TIMEOUT" 'BEGIN { exit !(t > m) }' && die "$1: not all registered after ${WAVE_TIMEOUT}s ($(location_count))"
        sleep 0.5
    done
    calc %.1f "$(now) - $t0"
}
held_without() {  # NODE: the leases held by nodes other than NODE ("": by any node)
    psql_do trunkline "SELECT COUNT(*) FROM registration_leases WHERE node_id NOT IN ('', '$1')"
}
nodes_cpu() {
    local pid t=0
    for pid in "${NODE_PIDS[@]}"; do t=$((t + $(cpu_ticks "$pid"))); done
    echo "$t"
}
write_bytes() {  # PID…: bytes written to storage, summed over the processes and descendants
    local p pid
    for pid in "$@"; do
        for p in $(family "$pid"); do cat "/proc/$p/io" 2>/dev/null || true; done
    done | awk '$1 == "write_bytes:" { s += $2 } END { print s + 0 }'
}
pg_counters() {  # statements transactions inserted updated deleted
    psql_do trunkline "SELECT (SELECT COALESCE(SUM(calls), 0) FROM pg_stat_statements),
        xact_commit + xact_rollback, tup_inserted, tup_updated, tup_deleted
        FROM pg_stat_database WHERE datname = 'trunkline'" | tr '|' ' '
}

RESULTS=$OUT/results.md
{
    echo "# bench/cluster.sh, $(date -u +%FT%TZ), commit $(git -C "$ROOT" rev-parse --short HEAD)"
    echo
    echo "N=$N NODES=$NODES EXPIRES=$EXPIRES RAMP=$RAMP/node LEASE=$LEASE RENEW=$RENEW WINDOW=$WINDOW"
    echo "$(nproc) cores; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
    echo
    echo "| side | first wave (s) | nodes' CPU in window (cores) | DB CPU (cores) | DB writes (KiB/s) | statements/s | transactions/s | rows inserted/updated/deleted per s |"
    echo "|---|---|---|---|---|---|---|---|"
} >"$RESULTS"

log "registrar with $N subscribers"
registrar_prepare "$N"

# --- side S: one node on SQLite -------------------------------------------------------------------
log "side S: seeding $N registrations (SQLite)"
S_DIR=$OUT/sqlite; mkdir -p "$S_DIR"
seed "$S_DIR"
registrar_start sqlite
log "side S: one node registering"
node_start 1 true "$S_DIR"
wave=$(wait_registered "side S")
log "side S: all $N registered after ${wave}s; settling ${SETTLE}s, then a ${WINDOW}s window"
sleep "$SETTLE"
c0=$(nodes_cpu); w0=$(write_bytes "${NODE_PIDS[@]}"); t0=$(now)
sleep "$WINDOW"
c1=$(nodes_cpu); w1=$(write_bytes "${NODE_PIDS[@]}"); t1=$(now)
el=$(calc %.3f "$t1 - $t0")
echo "| S: 1 node, SQLite | $wave | $(calc %.3f "($c1 - $c0) / $CLK_TCK / $el") | (in the node) | $(calc %.0f "($w1 - $w0) / 1024 / $el") | — | — | — |" >>"$RESULTS"
stop_nodes

# --- side P: $NODES nodes on PostgreSQL -----------------------------------------------------------
log "side P: PostgreSQL, seeding $N registrations"
pg_start
P_DIR=$OUT/postgres; mkdir -p "$P_DIR"
seed "$P_DIR" "$PG_URL"
registrar_start postgres
log "side P: $NODES nodes registering"
t_start=$(now)
for i in $(seq "$NODES"); do node_start "$i" true "$P_DIR" "$PG_URL"; done
while [ "$(held_without "")" -ne "$N" ]; do sleep 0.2; done
all_claimed=$(calc %.1f "$(now) - $t_start")
wait_registered "side P" >/dev/null
wave=$(calc %.1f "$(now) - $t_start")
log "side P: all $N leases claimed after ${all_claimed}s"
log "side P: all $N registered after ${wave}s; settling ${SETTLE}s, then a ${WINDOW}s window"
sleep "$SETTLE"
pg=$(pg_postmaster)
psql_do trunkline "SELECT pg_stat_statements_reset()" >/dev/null
read -r q0 x0 i0 u0 d0 <<<"$(pg_counters)"
c0=$(nodes_cpu); p0=$(cpu_ticks "$pg"); w0=$(write_bytes "$pg"); t0=$(now)
sleep "$WINDOW"
read -r q1 x1 i1 u1 d1 <<<"$(pg_counters)"
c1=$(nodes_cpu); p1=$(cpu_ticks "$pg"); w1=$(write_bytes "$pg"); t1=$(now)
el=$(calc %.3f "$t1 - $t0")
per() { calc %.1f "($2 - $1) / $el"; }
echo "| P: $NODES nodes, PostgreSQL | $wave | $(calc %.3f "($c1 - $c0) / $CLK_TCK / $el") | $(calc %.3f "($p1 - $p0) / $CLK_TCK / $el") | $(calc %.0f "($w1 - $w0) / 1024 / $el") | $(per "$q0" "$q1") | $(per "$x0" "$x1") | $(per "$i0" "$i1") / $(per "$u0" "$u1") / $(per "$d0" "$d1") |" >>"$RESULTS"
psql_do trunkline "SELECT node_id || ': ' || owned FROM cluster_nodes ORDER BY node_id" >"$OUT/owned.txt"
# What the window's statements were, by calls, and the rows each table took.
psql_do trunkline "SELECT calls || ' calls, ' || rows || ' rows: ' || left(regexp_replace(query, '\s+', ' ', 'g'), 160)
    FROM pg_stat_statements ORDER BY calls DESC LIMIT 25" >"$OUT/statements.txt"
psql_do trunkline "SELECT relname || ' ins ' || n_tup_ins || ' upd ' || n_tup_upd || ' del ' || n_tup_del
    FROM pg_stat_user_tables ORDER BY n_tup_ins + n_tup_upd + n_tup_del DESC" >"$OUT/tables.txt"

log "side P: killing node-$NODES"
dead_port=$((SIP_BASE + NODES))
kill -KILL "${NODE_PIDS[$((NODES - 1))]}"
t_kill=$(now)
unset "NODE_PIDS[$((NODES - 1))]"
while [ "$(held_without "node-$NODES")" -ne "$N" ]; do sleep 0.2; done
claimed=$(calc %.1f "$(now) - $t_kill")
wait_registered "failover" "$dead_port" >/dev/null
back=$(calc %.1f "$(now) - $t_kill")
{
    echo
    echo "Side P: every lease claimed ${all_claimed}s after the nodes' launch. Leases per node before the kill: $(tr '\n' ' ' <"$OUT/owned.txt")"
    echo
    echo "Failover after SIGKILL of node-$NODES (lease ${LEASE}s, renew ${RENEW}s): all $N leases held by the survivors after ${claimed}s; one live binding per account, none of the dead node's, after ${back}s."
} >>"$RESULTS"
stop_nodes
cat "$RESULTS"
