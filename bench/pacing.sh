#!/usr/bin/env bash
# Call pacing benchmark, each figure beside its ceiling in the same run:
#   1. in memory (criterion): trunkline's MemoryLimiter against raw governor, with an exactness
#      run first (crates/trunkline-pacing/benches/decisions.rs);
#   2. Redis mode: trunkline's RedisLimiter (crates/trunkline-pacing/benches/redis_decisions.rs,
#      one thread, $CONC decisions in flight) against redis-benchmark's plain round trip (GET,
#      one thread, $CONC connections) on the same redis-server, alternating order each round;
#      also redis-benchmark calling the pacing script once per decision, for the batching gain;
#   3. over HTTP: POST /v1/pacing/{trunkId}/admit with wrk against the release binary, in
#      memory and in Redis mode, $TRUNKS trunks at $RATE calls per second each.
# Every run checks for limit violations: no key admitted more than burst + rate · elapsed.
#
#   bench/pacing.sh                                  # from the repository root
#   ROUNDS=1 SECS=5 DURATION=10 bench/pacing.sh
#   TRUNKLINE_BIN=target/release/trunkline CRITERION=0 bench/pacing.sh
#
# Needs cargo, curl, jq, and (installed here if missing) redis-server, redis-tools and wrk.
# Outputs go to bench/out/pacing-<UTC timestamp>/ (raw output, results.md).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

ROUNDS=${ROUNDS:-3}
CRITERION=${CRITERION:-1}       # 0: skip the in-memory criterion run
CONC=${CONC:-50}                # decisions in flight (Redis driver) = redis-benchmark -c
SECS=${SECS:-10}                # seconds per Redis-mode run
REQUESTS=${REQUESTS:-600000}    # redis-benchmark -n
DURATION=${DURATION:-15}        # seconds per HTTP run
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNS=${WRK_CONNS:-32}
TRUNKS=${TRUNKS:-100}
RATE=${RATE:-50}                # cpsLimit of every trunk in the HTTP runs
HTTP_PORT=${HTTP_PORT:-18180}
TRUNKLINE_BIN=${TRUNKLINE_BIN:-}
OUT=${OUT:-$HERE/out/pacing-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-benchmark >/dev/null || need+=(redis-tools)
command -v wrk >/dev/null || need+=(wrk)
command -v jq >/dev/null || need+=(jq)
[ ${#need[@]} -eq 0 ] || { log "installing ${need[*]}"; apt_install "${need[@]}"; }

cd "$ROOT"
if [ -n "$TRUNKLINE_BIN" ]; then
    TRUNKLINE=$(cd "$(dirname "$TRUNKLINE_BIN")" && pwd)/$(basename "$TRUNKLINE_BIN")
else
    log "building (release)"
    cargo build --release -p trunkline
    TRUNKLINE=$ROOT/target/release/trunkline
fi
cp "$TRUNKLINE" "$OUT/trunkline"
log "building the Redis-mode driver"
cargo bench -p trunkline-pacing --bench redis_decisions --no-run 2>"$OUT/driver-build.txt"
DRIVER=$(grep -o 'target/release/deps/redis_decisions-[0-9a-f]*' "$OUT/driver-build.txt" | tail -1)
[ -n "$DRIVER" ] || die "redis_decisions driver not found (see $OUT/driver-build.txt)"
cp "$DRIVER" "$OUT/redis_decisions"

REDIS_PID=""; SERVER_PID=""
cleanup() { stop_pid "$SERVER_PID"; stop_pid "$REDIS_PID"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
REDIS_PORT=$(free_port)
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir "$OUT" --logfile "$OUT/redis.log" &
REDIS_PID=$!
for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" PING >/dev/null 2>&1 && break; sleep 0.1; done
REDIS_URL="redis://127.0.0.1:$REDIS_PORT/"
log "redis-server $(redis-server --version | grep -o 'v=[0-9.]*') on port $REDIS_PORT"

RESULTS=$OUT/results.tsv
printf 'part\tround\tside\tper_sec\tviolations\tnote\n' >"$RESULTS"
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RESULTS"; }

# --- 1. in memory (criterion) --------------------------------------------------------------------
if [ "$CRITERION" = 1 ]; then
    log "criterion: MemoryLimiter vs governor"
    cargo bench -p trunkline-pacing --bench decisions -- --noplot >"$OUT/criterion.txt" 2>&1
    grep -E '^exactness' "$OUT/criterion.txt" | tee -a "$OUT/summary.txt"
    awk '/^[a-z_0-9]+\/[a-z_]+/ { name = $1 } /thrpt:/ && name { print name, $4, $5; name = "" }' \
        "$OUT/criterion.txt" | tee "$OUT/criterion-thrpt.txt"
fi

# --- 2. Redis mode against redis-benchmark ---------------------------------------------------------
SCRIPT_ONE=$(python3 - "$ROOT/crates/trunkline-pacing/src/redis_limiter.rs" <<'PY'
import re, sys
print(re.search(r'const GCRA_SCRIPT: &str = r"\n(.*?)";', open(sys.argv[1]).read(), re.S).group(1))
PY
)
SHA=$(redis-cli -p "$REDIS_PORT" SCRIPT LOAD "$SCRIPT_ONE")
rb() {  # redis-benchmark one command, prints requests per second
    redis-benchmark -p "$REDIS_PORT" -c "$CONC" -n "$REQUESTS" -r 1000 --csv "$@" 2>/dev/null |
        awk -F'","' 'NR == 2 { print $2 + 0 }'
}
driver() {
    PACING_BENCH_REDIS_URL=$REDIS_URL CONCURRENCY=$CONC SECS=$SECS KEYS=1000 RATE=100 \
        "$OUT/redis_decisions" | tee -a "$OUT/driver.txt"
}
for round in $(seq "$ROUNDS"); do
    log "Redis round $round/$ROUNDS"
    run_ceiling() {
        record redis "$round" get "$(rb GET 'k:__rand_int__')" - "redis-benchmark GET -c $CONC"
        record redis "$round" script_per_decision \
            "$(rb EVALSHA "$SHA" 1 'pace:__rand_int__' 10000 0 0)" - "redis-benchmark EVALSHA, 1 key"
    }
    run_ours() {
        local line
        line=$(driver)
        record redis "$round" trunkline "$(sed -E 's/.*per_sec=([0-9]+).*/\1/' <<<"$line")" \
            "$(sed -E 's/.*violations=([0-9]+).*/\1/' <<<"$line")" "RedisLimiter, $CONC in flight"
    }
    if [ $((round % 2)) -eq 1 ]; then run_ceiling; run_ours; else run_ours; run_ceiling; fi
done

# --- 3. over HTTP -------------------------------------------------------------------------------------
http_run() {  # http_run MODE ROUND
    local mode=$1 round=$2 dir env=() key base ticks0 ticks1 t0 t1 elapsed
    dir=$(mktemp -d "$OUT/http-$mode-XXXX")
    [ "$mode" = redis ] && env=(TRUNKLINE_PACING_REDIS_URL="$REDIS_URL")
    redis-cli -p "$REDIS_PORT" FLUSHALL >/dev/null
    env "${env[@]}" TRUNKLINE_OUTBOUND_ENABLED=false TRUNKLINE_REGISTRAR_ENABLED=false \
        TRUNKLINE_LOG=warn "$OUT/trunkline" --data-dir "$dir" serve --listen "127.0.0.1:$HTTP_PORT" \
        2>"$dir/stderr" &
    SERVER_PID=$!
    for _ in $(seq 100); do grep -q '^listening on' "$dir/stderr" 2>/dev/null && break; sleep 0.1; done
    key=$(sed -nE 's/^default tenant: .* api_key=([^ ]+).*/\1/p' "$dir/stderr")
    base="http://127.0.0.1:$HTTP_PORT"
    : >"$dir/paths.lua"
    for i in $(seq "$TRUNKS"); do
        id=$(curl -sf -H "Authorization: Bearer $key" -H 'content-type: application/json' \
            -d "{\"server\": \"sip.example.com\", \"cpsLimit\": $RATE}" \
            "$base/api/v1/sip-credentials" | jq -r .id)
        printf 'paths[#paths + 1] = "/v1/pacing/%s/admit"\n' "$id" >>"$dir/paths.lua"
    done
    cat >"$dir/admit.lua" <<LUA
paths = {}
$(cat "$dir/paths.lua")
local i = 0
wrk.method = "POST"
wrk.headers["X-API-Key"] = "$key"
request = function()
  i = i % #paths + 1
  return wrk.format(nil, paths[i])
end
LUA
    # Warm-up (connections, SQLite cache, Redis script), then a fresh budget for the measured run.
    wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d3s -s "$dir/admit.lua" "$base" >/dev/null
    redis-cli -p "$REDIS_PORT" FLUSHALL >/dev/null
    curl -s "$base/metrics" >"$dir/metrics-before.txt"
    ticks0=$(cpu_ticks "$SERVER_PID"); t0=$(now)
    wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"${DURATION}s" -s "$dir/admit.lua" "$base" >"$dir/wrk.txt"
    t1=$(now); ticks1=$(cpu_ticks "$SERVER_PID")
    curl -s "$base/metrics" >"$dir/metrics-after.txt"
    stop_pid "$SERVER_PID"; SERVER_PID=""
    elapsed=$(calc %.3f "$t1 - $t0")
    # Admissions per key in the measured run; the in-memory budget carries over from the
    # warm-up, so "burst + rate · elapsed" bounds both modes.
    local violations rps unavailable cpu_us
    violations=$(python3 - "$dir/metrics-before.txt" "$dir/metrics-after.txt" "$RATE" "$elapsed" <<'PY'
import re, sys
def admitted(path):
    out = {}
    for line in open(path):
        m = re.match(r'trunkline_pacing_decisions_total\{(.*)\} (\S+)', line)
        if m and 'outcome="admitted"' in m.group(1):
            key = re.search(r'key="([^"]*)"', m.group(1)).group(1)
            out[key] = float(m.group(2))
    return out
before, after = admitted(sys.argv[1]), admitted(sys.argv[2])
bound = 1 + float(sys.argv[3]) * float(sys.argv[4])
print(sum(1 for k, v in after.items() if v - before.get(k, 0) > bound + 1e-9))
PY
)
    rps=$(awk '/^Requests\/sec/ { print $2 }' "$dir/wrk.txt")
    unavailable=$(awk '/^trunkline_pacing_decisions_total.*outcome="(unavailable|unenforced)"/ { n += $2 } END { print n + 0 }' "$dir/metrics-after.txt")
    cpu_us=$(calc %.1f "($ticks1 - $ticks0) * 1000000 / $(getconf CLK_TCK) / ($rps * $elapsed)")
    record "http" "$round" "$mode" "$rps" "$violations" "cpu ${cpu_us} us/decision, errors $unavailable, $(grep -c . "$dir/paths.lua") trunks"
}
for round in $(seq "$ROUNDS"); do
    log "HTTP round $round/$ROUNDS"
    if [ $((round % 2)) -eq 1 ]; then http_run memory "$round"; http_run redis "$round"
    else http_run redis "$round"; http_run memory "$round"; fi
done

# --- summary -----------------------------------------------------------------------------------------
python3 - "$RESULTS" >"$OUT/results.md" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter='\t'))
def med(part, side):
    v = [float(r['per_sec']) for r in rows if r['part'] == part and r['side'] == side]
    return statistics.median(v) if v else float('nan')
print('| part | side | median per second | rounds | violations |')
print('|---|---|---|---|---|')
for part, side in [('redis', 'get'), ('redis', 'script_per_decision'), ('redis', 'trunkline'), ('http', 'memory'), ('http', 'redis')]:
    rs = [r for r in rows if r['part'] == part and r['side'] == side]
    each = ', '.join('{:,.0f}'.format(float(r['per_sec'])) for r in rs)
    violations = ', '.join(r['violations'] for r in rs)
    print('| {} | {} | {:,.0f} | {} | {} |'.format(part, side, med(part, side), each, violations))
print()
print(f"Redis mode / plain round trip (GET): {med('redis','trunkline') / med('redis','get'):.2f}x")
print(f"Redis mode / script once per decision: {med('redis','trunkline') / med('redis','script_per_decision'):.2f}x")
for r in rows:
    if r['part'] == 'http':
        print(f"- http round {r['round']} {r['side']}: {r['note']}")
PY
cat "$OUT/results.md"
log "outputs in $OUT"
