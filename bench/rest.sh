#!/usr/bin/env bash
# REST benchmark: trunkline's Ultravox list and create against a ceiling (bench/ceiling: bare
# axum + sqlx, same SQLite file layout and pragmas, same queries, no auth lookup), in one run.
#
#   bench/rest.sh                 # from the repository root, as root (or with sudo for apt-get)
#   ROUNDS=1 DURATION=20 bench/rest.sh
#   ONLY="list-max create-max" ROUNDS=5 bench/rest.sh     # a subset of the scenarios below
#
# Needs: cargo, curl, and (installed here if missing) wrk, jq and sqlite3 from apt-get, oha from
# crates.io (`cargo install oha --locked --no-default-features --features native-tls`, which
# needs libssl-dev and pkg-config). Takes about 11 minutes after the release build
# (3 rounds).
#
# What it does (see the project's bench-anchors notes (shared/bench-anchors.md) for why):
#   1. builds both binaries with --release and runs private copies of them (others building in
#      the same target directory would otherwise swap the binary between runs);
#   2. starts trunkline on a fresh data dir, seeds $ROWS Ultravox registrations through the real
#      API (POST /api/sip/registrations with the default tenant's key), stops it and checkpoints
#      the WAL into one seed file; with STATUS=1 (default) gives every registration a
#      `registration_status` row (state registered, as the engine would leave it) with sqlite3,
#      so that the LEFT JOIN of the list reads real rows on both sides;
#      The ceiling's copy of the seed has trunkline's per-tenant counters (table tenant_counts
#      and its triggers) removed: its create is one plain INSERT, its list total a COUNT(*);
#   3. for each scenario and round, runs trunkline and the ceiling one after the other (order
#      flipped every round), each on a fresh copy of the seed file, each with a short unmeasured
#      warm-up, after which the database is checkpointed (`PRAGMA wal_checkpoint(TRUNCATE)`,
#      from the sqlite3 CLI while the server is idle) so both sides start measuring from an
#      empty WAL:
#        list-max      GET ?pageSize=$PAGE, wrk -t$WRK_THREADS -c$WRK_CONNS, maximum throughput
#        list-q        GET ?pageSize=$PAGE, oha -q $LIST_RATE --latency-correction (p50/p99)
#        create-max    POST with a unique username per request (wrk + Lua), maximum throughput
#        create-qN     POST at each rate in $CREATE_RATES, oha --latency-correction
#   The SIP engine is off (TRUNKLINE_OUTBOUND_ENABLED=false) unless ENGINE=1: the ceiling models
#   the REST path only, and with the engine on, a freshly started trunkline spends the whole run
#   registering the $ROWS seeded registrations (ramp 200/s) against their proxy and writing their
#   status through the same single writer connection.
#   CEILING_ARGS=--auth-query gives the ceiling trunkline's API-key query (to attribute the gap).
#   Durability is equal on both sides: SQLite WAL with synchronous=FULL, every commit fsynced
#   before its response. The ceiling commits each create alone; trunkline commits concurrent
#   creates together (group commit, see ARCHITECTURE.md) and answers each after that commit.
#   The binaries are taken from $CARGO_TARGET_DIR (default target/) after the build.
#   4. records, per run: hypervisor steal and other processes' CPU from /proc/stat, the server's
#      CPU time per request, non-2xx responses and client errors; prints a Markdown table.
# Outputs go to bench/out/<UTC timestamp>/ (raw tool output, results.tsv, results.md).
#
# Nothing is pinned to cores: the machine has 2 and the load generator must share them with the
# server. Pinning server and client to one core each would halve the server's CPU and measure a
# different thing from the anchors in bench-anchors.md; both sides get the same conditions.
# Maximum-throughput p50/p99 (wrk) are latencies at saturation, closed loop; compare latency at
# the fixed rates. Differences under about 10 % are noise on this machine kind.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
DURATION=${DURATION:-15}        # seconds per measured run
WARMUP=${WARMUP:-3}             # seconds of unmeasured GET load after each start
ROUNDS=${ROUNDS:-3}             # each round runs every scenario on both sides
ROWS=${ROWS:-10000}
PAGE=${PAGE:-100}
LIST_RATE=${LIST_RATE:-200}
CREATE_RATES=${CREATE_RATES:-"200 1000"}
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNS=${WRK_CONNS:-32}
OHA_CONNS=${OHA_CONNS:-32}
T_PORT=${T_PORT:-18080}
C_PORT=${C_PORT:-18090}
OUT=${OUT:-$HERE/out/$(date -u +%Y%m%dT%H%M%SZ)}
STATUS=${STATUS:-1}
ENGINE=${ENGINE:-0}
CEILING_ARGS=${CEILING_ARGS:-}  # e.g. --auth-query: the ceiling then also looks the API key up
CLK_TCK=$(getconf CLK_TCK)
PATH="$HOME/.cargo/bin:$PATH"

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }

# --- tools ----------------------------------------------------------------------------------------
apt_install() {
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}
command -v wrk >/dev/null || apt_install wrk
command -v jq >/dev/null || apt_install jq
command -v sqlite3 >/dev/null || apt_install sqlite3
if ! command -v oha >/dev/null; then
    { command -v pkg-config >/dev/null && [ -e /usr/include/openssl/ssl.h ]; } || apt_install libssl-dev pkg-config
    cargo install oha --locked --no-default-features --features native-tls
fi

mkdir -p "$OUT"
log "building (release)"
(cd "$ROOT" && cargo build --release -p trunkline -p trunkline-bench-ceiling)
mkdir -p "$OUT/bin"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
cp -p "$TARGET/release/trunkline" "$TARGET/release/ceiling" "$OUT/bin/"
TRUNKLINE=$OUT/bin/trunkline
CEILING=$OUT/bin/ceiling
if [ "$ENGINE" = 1 ]; then export TRUNKLINE_OUTBOUND_ENABLED=true; else export TRUNKLINE_OUTBOUND_ENABLED=false; fi

# --- processes ------------------------------------------------------------------------------------
SERVER_PID=""
# The private copies of the binaries are large; machine.txt keeps their checksum.
cleanup() { [ -z "$SERVER_PID" ] || kill -TERM "$SERVER_PID" 2>/dev/null || true; rm -rf "${OUT:?}/bin"; }
trap cleanup EXIT

# wait_listening LOGFILE: until the server prints its address (30 s at most).
wait_listening() {
    for _ in $(seq 300); do
        grep -q '^listening on http://' "$1" 2>/dev/null && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$1" >&2; log "server exited"; exit 1; }
        sleep 0.1
    done
    log "server did not start"; cat "$1" >&2; exit 1
}

stop_server() {
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

# start_side SIDE DIR: a fresh copy of the seed in DIR, the server for SIDE on it.
start_side() {
    local side=$1 dir=$2
    rm -rf "$dir"; mkdir -p "$dir"
    if [ "$side" = trunkline ]; then
        cp "$SEED/master.key" "$SEED/trunkline.db" "$dir/"
        TRUNKLINE_LOG=warn "$TRUNKLINE" --data-dir "$dir" serve --listen "127.0.0.1:$T_PORT" 2>"$dir/server.log" &
    else
        cp "$SEED/ceiling.db" "$dir/ceiling.db"
        # shellcheck disable=SC2086 # CEILING_ARGS is a list of flags
        "$CEILING" --db "$dir/ceiling.db" --listen "127.0.0.1:$C_PORT" --tenant "$TENANT" $CEILING_ARGS 2>"$dir/server.log" &
    fi
    SERVER_PID=$!
    wait_listening "$dir/server.log"
}

db_of() { if [ "$1" = trunkline ]; then echo "$2/trunkline.db"; else echo "$2/ceiling.db"; fi; }
url_of() { if [ "$1" = trunkline ]; then echo "http://127.0.0.1:$T_PORT"; else echo "http://127.0.0.1:$C_PORT"; fi; }

# --- measurements ---------------------------------------------------------------------------------
# /proc/stat "cpu" line: total ticks, busy ticks (user nice system irq softirq), steal ticks.
cpu_snapshot() {
    awk '/^cpu / { total = $2+$3+$4+$5+$6+$7+$8+$9; print total, $2+$3+$4+$7+$8, $9 }' /proc/stat
}
proc_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# wrk_ms VALUE: wrk's "1.23ms" / "850.00us" / "1.02s" in milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.2f", n }'
}

# measure SCENARIO ROUND SIDE: one measured run; appends a row to results.tsv.
measure() {
    local scenario=$1 round=$2 side=$3
    local dir=$OUT/run/$scenario-$round-$side base raw
    start_side "$side" "$dir"
    base=$(url_of "$side")
    local list_url="$base/api/sip/registrations?pageSize=$PAGE"
    local post_url="$base/api/sip/registrations"
    local auth=(-H "X-API-Key: $API_KEY")
    [ "$side" = ceiling ] && [ -z "$CEILING_ARGS" ] && auth=(-H "X-Tenant: $TENANT")
    # sanity: the page is whole and the total is the seeded count
    curl -fsS "${auth[@]}" "$list_url" | jq -e --argjson rows "$ROWS" --argjson page "$PAGE" \
        '.total == $rows and (.results | length) == $page and .next != null' >/dev/null \
        || { log "$side: unexpected list response"; exit 1; }
    wrk -t1 -c4 -d"${WARMUP}s" "${auth[@]}" "$list_url" >/dev/null
    # Both sides start measuring from an empty WAL: what the warm-up and start-up wrote is
    # checkpointed into the database file first (the servers are idle here).
    local checkpoint
    checkpoint=$(sqlite3 -cmd '.timeout 10000' "$(db_of "$side" "$dir")" 'PRAGMA wal_checkpoint(TRUNCATE);')
    [ "${checkpoint%%|*}" = 0 ] || log "$side: checkpoint incomplete ($checkpoint: busy|log|checkpointed)"

    raw=$dir/client.out
    local load1 before after t0 t1 start_s end_s
    load1=$(cut -d' ' -f1 /proc/loadavg)
    read -r -a before < <(cpu_snapshot)
    t0=$(proc_ticks "$SERVER_PID")
    start_s=$(date +%s.%N)
    TIMEFORMAT='%U %S'
    case $scenario in
        list-max)
            { time wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"${DURATION}s" --latency "${auth[@]}" "$list_url" >"$raw"; } 2>"$dir/client.time" ;;
        create-max)
            { time wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"${DURATION}s" --latency -s "$OUT/create.lua" "${auth[@]}" "$post_url" >"$raw"; } 2>"$dir/client.time" ;;
        list-q*)
            { time oha -z "${DURATION}s" -q "$LIST_RATE" --latency-correction -c "$OHA_CONNS" --no-tui \
                --output-format json "${auth[@]}" "$list_url" >"$raw"; } 2>"$dir/client.time" ;;
        create-q*)
            { time oha -z "${DURATION}s" -q "${scenario#create-q}" --latency-correction -c "$OHA_CONNS" --no-tui \
                --output-format json -m POST -T application/json -Z "$OUT/bodies.jsonl" "${auth[@]}" "$post_url" >"$raw"; } 2>"$dir/client.time" ;;
    esac
    end_s=$(date +%s.%N)
    t1=$(proc_ticks "$SERVER_PID")
    read -r -a after < <(cpu_snapshot)
    stop_server
    rm -f "$dir"/*.db "$dir"/*.db-wal "$dir"/*.db-shm "$dir/master.key"

    local rps p50 p99 requests bad errors
    if [[ $scenario == *-max ]]; then
        rps=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$raw")
        p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$raw")")
        p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$raw")")
        requests=$(awk '/requests in/ { print $1 }' "$raw")
        bad=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$raw"); bad=${bad:-0}
        errors=$(awk '/Socket errors:/ { gsub(/,/, ""); print $4 + $6 + $8 + $10 }' "$raw"); errors=${errors:-0}
    else
        rps=$(jq '.summary.requestsPerSec | round' "$raw")
        p50=$(jq '.latencyPercentiles.p50 * 1000 * 100 | round / 100' "$raw")
        p99=$(jq '.latencyPercentiles.p99 * 1000 * 100 | round / 100' "$raw")
        requests=$(jq '[.statusCodeDistribution[]] | add // 0' "$raw")
        bad=$(jq '[.statusCodeDistribution | to_entries[] | select(.key | startswith("2") | not) | .value] | add // 0' "$raw")
        errors=$(jq '[.errorDistribution | to_entries[] | select(.key | test("deadline") | not) | .value] | add // 0' "$raw")
    fi
    local steal other server_us
    steal=$(awk -v a="${before[0]}" -v b="${after[0]}" -v sa="${before[2]}" -v sb="${after[2]}" \
        'BEGIN { printf "%.1f", (b - a) ? 100 * (sb - sa) / (b - a) : 0 }')
    # CPU of everything but the server and the load generator, in cores, over the run.
    other=$(awk -v busy=$((after[1] - before[1])) -v server=$((t1 - t0)) -v hz="$CLK_TCK" \
        -v client="$(tail -n1 "$dir/client.time" | awk '{ print $1 + $2 }')" -v s0="$start_s" -v s1="$end_s" \
        'BEGIN { o = (busy - server) / hz - client; if (o < 0) o = 0; printf "%.2f", o / (s1 - s0) }')
    server_us=$(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" -v n="${requests:-0}" \
        'BEGIN { printf "%.0f", n ? t / hz * 1e6 / n : 0 }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scenario" "$round" "$side" "$rps" "$p50" "$p99" \
        "$requests" "$bad" "$errors" "$server_us" "$steal" "$other/$load1" >>"$OUT/results.tsv"
    log "$scenario round $round $side: ${rps} req/s p50 ${p50} ms p99 ${p99} ms non-2xx $bad errors $errors server ${server_us} µs CPU/req steal ${steal}% other ${other} cores"
}

# --- seed -----------------------------------------------------------------------------------------
{
    echo "date: $(date -u +%FT%TZ)"
    echo "commit: $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- crates || echo ' (crates/ modified)')"
    echo "nproc: $(nproc)"
    echo "cpu: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
    echo "kernel: $(uname -r)"
    echo "wrk: $(wrk -v 2>&1 | head -1)"
    echo "oha: $(oha --version)"
    echo "uptime at start: $(uptime)"
    echo "trunkline binary: sha256 $(sha256sum "$TRUNKLINE" | cut -c1-16), built $(date -u -r "$TRUNKLINE" +%FT%TZ)"
    echo "settings: ENGINE=$ENGINE STATUS=$STATUS CEILING_ARGS='$CEILING_ARGS' DURATION=$DURATION WARMUP=$WARMUP ROUNDS=$ROUNDS ROWS=$ROWS PAGE=$PAGE LIST_RATE=$LIST_RATE CREATE_RATES='$CREATE_RATES' WRK_THREADS=$WRK_THREADS WRK_CONNS=$WRK_CONNS OHA_CONNS=$OHA_CONNS"
} | tee "$OUT/machine.txt" >&2

SEED=$OUT/seed
mkdir -p "$SEED"
log "seeding $ROWS registrations through trunkline's API"
TRUNKLINE_LOG=warn "$TRUNKLINE" --data-dir "$SEED" serve --listen "127.0.0.1:$T_PORT" 2>"$SEED/server.log" &
SERVER_PID=$!
wait_listening "$SEED/server.log"
TENANT=$(sed -n 's/^default tenant: account_id=\([^ ]*\) .*/\1/p' "$SEED/server.log")
API_KEY=$(sed -n 's/^default tenant: .* api_key=\([^ ]*\)$/\1/p' "$SEED/server.log")
if [ -z "$TENANT" ] || [ -z "$API_KEY" ]; then log "no default tenant line"; exit 1; fi
# Request bodies, one per line; oha -Z picks a line at random per request.
awk -v n=$((ROWS * 2)) 'BEGIN { for (i = 1; i <= n; i++)
    printf "{\"username\":\"user%06d\",\"password\":\"s3cret-pw-%d\",\"proxy\":\"sip.example.com\",\"authUser\":\"auth%d\"}\n", i, i, i }' \
    >"$OUT/bodies.jsonl"
oha -n "$ROWS" -c 8 --no-tui --output-format json -m POST -T application/json -Z "$OUT/bodies.jsonl" \
    -H "X-API-Key: $API_KEY" "http://127.0.0.1:$T_PORT/api/sip/registrations" >"$SEED/seed.json"
jq -e --argjson rows "$ROWS" '.statusCodeDistribution == {"201": $rows}' "$SEED/seed.json" >/dev/null \
    || { log "seeding: not every request was a 201"; jq .statusCodeDistribution "$SEED/seed.json" >&2; exit 1; }
stop_server
sqlite3 "$SEED/trunkline.db" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null
rm -f "$SEED/trunkline.db-wal" "$SEED/trunkline.db-shm"
[ "$(sqlite3 "$SEED/trunkline.db" 'SELECT COUNT(*) FROM registrations')" = "$ROWS" ] || { log "seed count"; exit 1; }
if [ "$STATUS" = 1 ]; then
    # What the engine leaves behind for a registration that succeeded: the join has a row to read.
    sqlite3 "$SEED/trunkline.db" "
        DELETE FROM registration_status;
        INSERT INTO registration_status (registration_id, tenant_id, state, last_code, last_phrase,
            last_attempt_at, expires_at, next_attempt_at, consecutive_failures, transport, remote,
            updated_at)
        SELECT id, tenant_id, 'registered', 200, 'OK', created_at, created_at + 3600000000,
            created_at + 3300000000, 0, 'udp', '192.0.2.10:5060', created_at FROM registrations;
        PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
fi
# The ceiling's copy without trunkline's per-tenant counters (migration tenant_counts): its
# create is one INSERT with no trigger, its list counts with COUNT(*) as before.
cp "$SEED/trunkline.db" "$SEED/ceiling.db"
sqlite3 "$SEED/ceiling.db" "
    DROP TRIGGER registrations_count_insert; DROP TRIGGER registrations_count_delete;
    DROP TRIGGER trunks_count_insert; DROP TRIGGER trunks_count_delete;
    DROP TRIGGER phone_numbers_count_insert; DROP TRIGGER phone_numbers_count_delete;
    DROP TRIGGER inbound_credentials_count_insert; DROP TRIGGER inbound_credentials_count_delete;
    DROP TABLE tenant_counts;
    PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
rm -f "$SEED/ceiling.db-wal" "$SEED/ceiling.db-shm"

# wrk: a unique username per request (thread number, start time, counter).
cat >"$OUT/create.lua" <<'LUA'
wrk.headers["Content-Type"] = "application/json"
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  prefix = "w" .. tostring(tid) .. "t" .. tostring(os.time()) .. "n"
  counter = 0
end
function request()
  counter = counter + 1
  local body = '{"username":"' .. prefix .. counter ..
    '","password":"s3cret-pw","proxy":"sip.example.com","authUser":"bench"}'
  return wrk.format("POST", nil, nil, body)
end
LUA

# --- runs -----------------------------------------------------------------------------------------
printf 'scenario\tround\tside\trps\tp50_ms\tp99_ms\trequests\tnon2xx\terrors\tserver_us_per_req\tsteal_pct\tother_cores/load1\n' >"$OUT/results.tsv"
SCENARIOS=(list-max "list-q$LIST_RATE" create-max)
for rate in $CREATE_RATES; do SCENARIOS+=("create-q$rate"); done
[ -z "${ONLY:-}" ] || read -r -a SCENARIOS <<<"$ONLY"
for round in $(seq "$ROUNDS"); do
    for scenario in "${SCENARIOS[@]}"; do
        if [ $((round % 2)) -eq 1 ]; then order=(trunkline ceiling); else order=(ceiling trunkline); fi
        for side in "${order[@]}"; do measure "$scenario" "$round" "$side"; done
    done
done
echo "uptime at end: $(uptime)" | tee -a "$OUT/machine.txt" >&2

# --- report ---------------------------------------------------------------------------------------
# Per scenario and side: the median over rounds (robust to one disturbed run); ratio = trunkline /
# ceiling (req/s: higher is better, target >= 0.7; p99 at a fixed rate: lower is better). "other"
# is CPU used by neither the server nor the load generator (other tenants of the machine), in
# cores; a run with more than about 0.2 is disturbed.
awk -F'\t' '
    function median(list,    v, n, i, j, x) {
        n = split(list, v, " ")
        for (i = 2; i <= n; i++) { x = v[i] + 0; for (j = i - 1; j >= 1 && v[j] + 0 > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
        return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }
    NR == 1 { next }
    {
        key = $1 SUBSEP $3
        if (!(($1) in seen)) { seen[$1] = 1; order[++n] = $1 }
        rps[key] = rps[key] " " $4; p50[key] = p50[key] " " $5; p99[key] = p99[key] " " $6
        cpu[key] = cpu[key] " " $10; bad[key] += $8 + $9
        split($12, o, "/"); noise[$1] = noise[$1] $11 "/" o[1] " "
    }
    END {
        print "| scenario | trunkline req/s | p50 ms | p99 ms | µs CPU/req | ceiling req/s | p50 ms | p99 ms | µs CPU/req | req/s ratio | p99 ratio | non-2xx+errors (t/c) | steal % / other cores, per run |"
        print "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"
        for (i = 1; i <= n; i++) {
            s = order[i]; t = s SUBSEP "trunkline"; c = s SUBSEP "ceiling"
            tr = median(rps[t]); cr = median(rps[c]); t99 = median(p99[t]); c99 = median(p99[c])
            printf "| %s | %.0f | %.2f | %.2f | %.0f | %.0f | %.2f | %.2f | %.0f | %.2f | %.2f | %d / %d | %s|\n", s,
                tr, median(p50[t]), t99, median(cpu[t]), cr, median(p50[c]), c99, median(cpu[c]),
                cr ? tr / cr : 0, c99 ? t99 / c99 : 0, bad[t], bad[c], noise[s]
        }
    }' "$OUT/results.tsv" >"$OUT/results.md"
{
    echo
    echo "Per run:"
    echo
    echo "| $(head -1 "$OUT/results.tsv" | sed 's/\t/ | /g') |"
    echo "|$(head -1 "$OUT/results.tsv" | awk -F'\t' '{ for (i = 1; i <= NF; i++) printf "---|" }')"
    tail -n +2 "$OUT/results.tsv" | sed 's/\t/ | /g; s/^/| /; s/$/ |/'
} >>"$OUT/results.md"
echo
cat "$OUT/results.md"
echo
echo "outputs: $OUT"
