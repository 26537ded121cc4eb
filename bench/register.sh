#!/usr/bin/env bash
# Outbound registration benchmark: trunkline's registration engine (crates/trunkline-sip) against
# Kamailio's own `uac` module, both keeping the same accounts registered with one Kamailio
# registrar, in one run.
#
#   bench/register.sh                       # from the repository root, as root (or with sudo)
#   SIDES="A B" bench/register.sh           # skip side C (100,000 registrations)
#   N=2000 WINDOW=60 IDLE_SECS=20 SIDES="A B" RAMPS=3000 bench/register.sh    # a quick check
#   PROFILE_SECS=80 PROFILE_HZ=999 SIDES=B …   # also `perf record` the client in its window
#
# Needs: cargo, curl, awk, ps, and (installed here with apt-get if missing) the Debian 12
# packages kamailio, kamailio-sqlite-modules and sqlite3. Takes about 25 minutes after the
# release build with side C, about 14 without (dominated by the 3-minute refresh windows).
#
# What it measures (see the project's bench-anchors notes (shared/bench-anchors.md) for why each setting is what it is):
#   registrar  ONE Kamailio 5.6 (auth_db + usrloc db_mode 1 on SQLite in WAL mode, one UDP
#              worker, MD5 challenges with qop=auth, nonces valid 300 s, default/max/min expires
#              $EXPIRES, usrloc timer_interval 3600 so that only the worker writes) holding
#              $N subscribers, shared by the sides in turn and restarted with an empty `location`
#              table before each. It counts retransmitted REGISTERs (same Call-ID and CSeq seen
#              within 40 s, in an htable; counted, then processed like any request, as a stateless
#              registrar does) in the statistic script:bench_retransmissions; no per-request xlog.
#   side A     a second Kamailio with the `uac` module (tm, sl, rr, pv, db_sqlite, ctl, kex), its
#              `uacreg` table holding the same $N accounts (expires $EXPIRES), tuned as the
#              anchors say: -M 64 -m 256, reg_timer_interval 10, reg_retry_interval 10,
#              reg_hash_size 12, reg_keep_callid 1, children=1.
#   side B     trunkline (`serve`, TRUNKLINE_OUTBOUND_EXPIRES_SECS=$EXPIRES, TRUNKLINE_LOG=warn),
#              once per ramp in $RAMPS (TRUNKLINE_OUTBOUND_RAMP_PER_SEC; 3000 is its fastest
#              start against this registrar: at 2000 the ramp itself took 5.0 s for 10,000, at
#              4000 the registrar dropped thousands of packets; 200 is the default). Its $N
#              registrations are created
#              beforehand through the real API (POST /api/sip/registrations, Ultravox dialect,
#              proxy=127.0.0.1:$REG_PORT) with the engine off, into a seed that every run copies.
#              A `curl` reads trunkline's event stream (GET /v1/events, SSE) from the launch: the
#              `registration.registered` events streamed by the wave's end and the window's are
#              reported (the outbox is written in the status writer's transactions).
#   side C     trunkline alone with $N_C registrations against a registrar with $N_C subscribers,
#              for how cost grows: RSS per registration and CPU per refresh (CPU seconds in the
#              $WINDOW_C s after the wave / REGISTER transactions completed in it). The registrar
#              (one worker, a write-through SQLite row per save) sustains about 1,000 new
#              bindings/s with 10,000 rows and about 500/s with 100,000 here; 100,000 bindings at
#              expires=60 would need ~2,700 refreshes/s, so side C asks for EXPIRES_C=600 (the
#              same ~270 refreshes/s as side B: cost per refresh at 10x the registrations) and
#              ramps at RAMP_C=400/s, below the registrar's rate (no first refresh before the wave
#              ends). The registrar's nonce lifetime is max(300 s, 2 x expires).
#   For each side, from the client's launch: wall time until the registrar's `location` table
#   holds every binding (sqlite3 COUNT(*) every 0.5 s); CPU seconds (utime+stime from
#   /proc/PID/stat, summed over the process and all its descendants) for that initial wave and
#   for the following $WINDOW s of refreshes; RSS and PSS (smaps_rollup, summed over all
#   processes) at the end, minus the same for an idle instance (empty uacreg / zero
#   registrations, measured for $IDLE_SECS s, whose CPU rate is also subtracted); REGISTER
#   requests (first copies) and bindings saved by them, and retransmissions, as the registrar
#   counts them (its script statistics, read with kamcmd); UDP datagrams dropped for a full
#   receive buffer (/proc/net/snmp, and per socket from /proc/net/udp); the live bindings every
#   10 s of the window; the registrar's own CPU; hypervisor steal and other processes' CPU from
#   /proc/stat (the machine is shared). A refresh is one binding saved in the window.
# Outputs go to bench/out/register-<UTC timestamp>/: results.md (tables), results.tsv (one row per
# run), machine.txt, and per side its configs, logs, statistics snapshots and timeline.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"
SIDES=${SIDES:-"A B C"}
N=${N:-10000}                       # registrations, sides A and B
N_C=${N_C:-100000}                  # registrations, side C
EXPIRES=${EXPIRES:-60}              # asked for by both clients; the registrar's min/default/max
WINDOW=${WINDOW:-180}               # seconds of refreshes measured after the initial wave
WINDOW_C=${WINDOW_C:-240}
EXPIRES_C=${EXPIRES_C:-600}         # side C: see the header
RAMPS=${RAMPS:-"3000 200"}          # trunkline outbound.ramp_per_sec, one side-B run each
RAMP_C=${RAMP_C:-400}
IDLE_SECS=${IDLE_SECS:-60}          # idle baselines (CPU rate, RSS/PSS)
PROFILE_SECS=${PROFILE_SECS:-}      # if set: perf record the client for this long at the window's start
PROFILE_HZ=${PROFILE_HZ:-2999}      # its sampling rate
WAVE_TIMEOUT=${WAVE_TIMEOUT:-600}   # give up waiting for all bindings after this (then measure anyway)
WAVE_TIMEOUT_C=${WAVE_TIMEOUT_C:-900}
REG_PORT=${REG_PORT:-15060}         # registrar, UDP
UAC_PORT=${UAC_PORT:-15062}         # Kamailio uac, UDP
T_SIP_PORT=${T_SIP_PORT:-15064}     # trunkline SIP (UDP and TCP)
T_HTTP_PORT=${T_HTTP_PORT:-18280}   # trunkline HTTP API
REG_MAXBUFFER=${REG_MAXBUFFER:-}   # registrar's UDP receive buffer cap (kamailio -b); empty: Kamailio's default
REALM=bench.test
OUT=${OUT:-$HERE/out/register-$(date -u +%Y%m%dT%H%M%SZ)}
CLK_TCK=$(getconf CLK_TCK)
PATH="$HOME/.cargo/bin:$PATH"

# --- tools ----------------------------------------------------------------------------------------
missing=()
command -v kamailio >/dev/null || missing+=(kamailio)
[ -e /usr/share/kamailio/db_sqlite/usrloc-create.sql ] || missing+=(kamailio-sqlite-modules)
command -v sqlite3 >/dev/null || missing+=(sqlite3)
command -v curl >/dev/null || missing+=(curl)
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
KAMAILIO=$(command -v kamailio)
KAMCMD=$(command -v kamcmd)
SCHEMA=/usr/share/kamailio/db_sqlite
for port in "$REG_PORT" "$UAC_PORT" "$T_SIP_PORT" "$T_HTTP_PORT"; do
    ! ss -Hlnu "sport = :$port" | grep -q . || die "UDP port $port is in use (set REG_PORT/UAC_PORT/T_SIP_PORT)"
    ! ss -Hlnt "sport = :$port" | grep -q . || die "TCP port $port is in use (set T_HTTP_PORT/T_SIP_PORT)"
done

mkdir -p "$OUT"
log "building (release)"
(cd "$ROOT" && cargo build --release -p trunkline)
TRUNKLINE=$ROOT/target/release/trunkline

# --- processes ------------------------------------------------------------------------------------
REG_PID=""      # the registrar Kamailio
CLIENT_PID=""   # the registering process (uac Kamailio or trunkline)
CLIENT_KIND=""  # kamailio | trunkline

cleanup() {
    stop_pid "$CLIENT_PID"
    stop_pid "$REG_PID"
}
trap cleanup EXIT

# --- measurements ---------------------------------------------------------------------------------
# mem_kb PID: "RSS PSS" in KiB, summed over the process and all its descendants.
mem_kb() {
    local p
    for p in $(family "$1"); do cat "/proc/$p/smaps_rollup" 2>/dev/null || true; done |
        awk '$1 == "Rss:" { r += $2 } $1 == "Pss:" { s += $2 } END { print r + 0, s + 0 }'
}
# stat_of FILE NAME: a value from a `kamcmd stats.get_statistics all` dump (0 if absent).
stat_of() { awk -v k="$2" '$1 == k { v = $3 } END { print v + 0 }' "$1"; }
# metric_of FILE LABEL: trunkline_register_responses_total{code="LABEL"} from a /metrics scrape.
metric_of() {
    awk -v want="code=\"$2\"" 'index($0, "trunkline_register_responses_total{") == 1 && index($0, want) { v += $NF }
        END { print v + 0 }' "$1"
}
metric_total() {
    awk 'index($0, "trunkline_register_responses_total{") == 1 { v += $NF } END { print v + 0 }' "$1"
}

# --- the registrar --------------------------------------------------------------------------------
REG_DIR=$OUT/registrar
REG_DB=$REG_DIR/kamailio.db
REG_SOCK=$REG_DIR/ctl.sock

# registrar_prepare, registrar_start, reg_stats, location_count: bench/lib.sh

# --- side A: Kamailio uac ---------------------------------------------------------------------------
# uac_prepare DIR ACCOUNTS: a uacreg database with ACCOUNTS rows (0: empty) and the configuration.
uac_prepare() {
    local dir=$1 accounts=$2
    mkdir -p "$dir"
    rm -f "$dir/uac.db" "$dir/uac.db-wal" "$dir/uac.db-shm"
    {
        echo "PRAGMA journal_mode=WAL;"
        cat "$SCHEMA/standard-create.sql" "$SCHEMA/uac-create.sql"
        echo "BEGIN;"
        awk -v n="$accounts" -v port="$REG_PORT" -v expires="$EXPIRES" -v realm="$REALM" -v q="'" 'BEGIN {
            for (i = 1; i <= n; i++) {
                u = sprintf("bu%06d", i)
                printf "INSERT INTO uacreg (l_uuid, l_username, l_domain, r_username, r_domain, realm, auth_username,"
                printf " auth_password, auth_proxy, expires, flags, reg_delay) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %d, 0, 0);\n",
                    q u q, q u q, q realm q, q u q, q "127.0.0.1:" port q, q q, q u q, q sprintf("pw-%06d", i) q,
                    q "sip:127.0.0.1:" port q, expires
            } }'
        echo "COMMIT;"
    } | sqlite3 -bail "$dir/uac.db" | grep -qx wal || die "uac database: not in WAL mode"
    [ "$(sqlite3 "$dir/uac.db" 'SELECT COUNT(*) FROM uacreg')" = "$accounts" ] || die "uacreg count"
    cat >"$dir/kamailio.cfg" <<EOF
#!KAMAILIO
# Kamailio's uac module registering every row of its uacreg table (bench/register.sh).
debug=0
log_stderror=yes
children=1
tcp_children=1
disable_tcp=yes
auto_aliases=no
dns=no
rev_dns=no
sip_warning=no
listen=udp:127.0.0.1:$UAC_PORT

loadmodule "kex.so"
loadmodule "ctl.so"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "textops.so"
loadmodule "db_sqlite.so"
loadmodule "uac.so"

modparam("ctl", "binrpc", "unix:$dir/ctl.sock")
modparam("uac", "reg_db_url", "sqlite:///$dir/uac.db")
modparam("uac", "reg_contact_addr", "127.0.0.1:$UAC_PORT")
modparam("uac", "reg_timer_interval", 10)
modparam("uac", "reg_retry_interval", 10)
modparam("uac", "reg_hash_size", 12)
modparam("uac", "reg_keep_callid", 1)

request_route {
    if (is_method("OPTIONS")) {
        sl_send_reply("200", "OK");
        exit;
    }
    sl_send_reply("404", "Not Found");
    exit;
}
EOF
    "$KAMAILIO" -c -f "$dir/kamailio.cfg" >"$dir/check.log" 2>&1 || { cat "$dir/check.log" >&2; die "uac config"; }
}

uac_start() {  # DIR
    local dir=$1
    rm -f "$dir/ctl.sock"
    "$KAMAILIO" -DD -E -f "$dir/kamailio.cfg" -w "$dir" -P "$dir/kamailio.pid" -m 256 -M 64 >/dev/null 2>"$dir/client.log" &
    CLIENT_PID=$!
    CLIENT_KIND=kamailio
}

# --- side B/C: trunkline ----------------------------------------------------------------------------
trunkline_env() {  # RAMP ENABLED
    echo TRUNKLINE_LOG=warn TRUNKLINE_SIP_LISTEN="127.0.0.1:$T_SIP_PORT" TRUNKLINE_OUTBOUND_EXPIRES_SECS="$EXPIRES" \
        TRUNKLINE_OUTBOUND_RAMP_PER_SEC="$1" TRUNKLINE_OUTBOUND_ENABLED="$2" TRUNKLINE_OUTBOUND_UNREGISTER_ON_SHUTDOWN=false
}

trunkline_start() {  # DIR RAMP ENABLED
    local dir=$1
    # shellcheck disable=SC2046
    env $(trunkline_env "$2" "$3") "$TRUNKLINE" --data-dir "$dir" serve --listen "127.0.0.1:$T_HTTP_PORT" \
        2>"$dir/client.log" &
    CLIENT_PID=$!
    CLIENT_KIND=trunkline
}

wait_http() {  # LOGFILE
    local i
    for i in $(seq 300); do
        grep -q '^listening on http://' "$1" 2>/dev/null && return 0
        kill -0 "$CLIENT_PID" 2>/dev/null || { cat "$1" >&2; die "trunkline exited"; }
        sleep 0.1
    done
    cat "$1" >&2; die "trunkline did not start"
}

# trunkline_seed DIR COUNT: a data directory holding COUNT registrations made through the API.
trunkline_seed() {
    local dir=$1 count=$2 key
    rm -rf "$dir"; mkdir -p "$dir"
    trunkline_start "$dir" 200 false
    wait_http "$dir/client.log"
    key=$(sed -n 's/^default tenant: .* api_key=\([^ ]*\)$/\1/p' "$dir/client.log")
    [ -n "$key" ] || die "no default tenant line"
    SEED_KEY=$key
    api_seed "$T_HTTP_PORT" "$key" "$count" "$dir"
    stop_pid "$CLIENT_PID"; CLIENT_PID=""
    sqlite3 "$dir/trunkline.db" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null
    rm -f "$dir/trunkline.db-wal" "$dir/trunkline.db-shm"
    [ "$(sqlite3 "$dir/trunkline.db" 'SELECT COUNT(*) FROM registrations')" = "$count" ] || die "seed count"
}

fresh_copy() {  # SEED DIR
    rm -rf "$2"; mkdir -p "$2"
    cp "$1/master.key" "$1/trunkline.db" "$2/"
}

client_stats() {  # FILE: the client's own counters
    if [ "$CLIENT_KIND" = kamailio ]; then
        {
            "$KAMCMD" -s "unix:$CLIENT_DIR/ctl.sock" stats.get_statistics all
            "$KAMCMD" -s "unix:$CLIENT_DIR/ctl.sock" core.shmmem
        } >"$1" 2>&1 || true
    else
        curl -s "http://127.0.0.1:$T_HTTP_PORT/metrics" >"$1" 2>&1 || true
    fi
}

# --- idle baselines ---------------------------------------------------------------------------------
# idle_measure NAME: the running client, untouched for IDLE_SECS: "ticks_per_s rss_kb pss_kb".
idle_measure() {
    local name=$1 c0 c1 t0 t1 mem
    sleep 2
    c0=$(cpu_ticks "$CLIENT_PID"); t0=$(now)
    sleep "$IDLE_SECS"
    c1=$(cpu_ticks "$CLIENT_PID"); t1=$(now)
    mem=$(mem_kb "$CLIENT_PID")
    kill -0 "$CLIENT_PID" 2>/dev/null || die "$name: idle instance exited"
    calc "%.4f" "($c1 - $c0) / ($t1 - $t0)"; echo " $mem"
}

# --- one measured run -------------------------------------------------------------------------------

COLUMNS_TSV=(run users expires registered live_min wave_s first_to_all_s events_wave events_window cpu_wave_s cpu_window_s idle_cpu_s window_s
    saved_window requests_window requests_per_refresh us_per_refresh requests_wave retrans_wave retrans_window
    udp_drops_wave udp_drops_window registrar_sock_drops client_sock_drops
    rss_wave_kb rss_kb pss_kb idle_rss_kb idle_pss_kb rss_kib_per_reg pss_kib_per_reg
    registrar_cores_wave registrar_cores_window steal_pct other_cores client_errors)

# run_side NAME USERS WINDOW WAVE_TIMEOUT IDLE_RATE IDLE_RSS IDLE_PSS START_FUNCTION ARGS...
# Restarts the registrar with an empty location table, launches the client and measures.
run_side() {
    local name=$1 users=$2 window=$3 timeout=$4 idle_rate=$5 idle_rss=$6 idle_pss=$7; shift 7
    local dir=$OUT/$name
    local -A R=([run]=$name [users]=$users [expires]=$EXPIRES [idle_rss_kb]=$idle_rss [idle_pss_kb]=$idle_pss
        [events_wave]=- [events_window]=-)
    CLIENT_DIR=$dir
    log "$name: registrar restart (empty location table)"
    registrar_start "$name"
    reg_stats "$dir/registrar-0.stats"
    local s0 s1 s2 r0 r1 r2 t0 t1 t2 tfirst="" c1 c2 count live u0 u1 u2
    read -r -a s0 < <(sys_cpu)
    r0=$(cpu_ticks "$REG_PID"); u0=$(udp_rcvbuf_errors)
    t0=$(now)
    "$@"
    # trunkline's own event stream, read from its start: how many `registration.registered`
    # events have been streamed when the registrar holds every binding, and by the window's end.
    local stream_pid=""
    if [ "$CLIENT_KIND" = trunkline ] && [ -n "${SEED_KEY:-}" ]; then
        curl -sN --retry 100 --retry-connrefused --retry-delay 0 -H 'Accept: text/event-stream' \
            -H "X-API-Key: $SEED_KEY" "http://127.0.0.1:$T_HTTP_PORT/v1/events?after=0" >"$dir/events.sse" 2>/dev/null &
        stream_pid=$!
    fi
    streamed() { grep -c '^event: registration.registered$' "$dir/events.sse" || true; }
    log "$name: started (pid $CLIENT_PID); waiting for $users bindings"
    local deadline
    deadline=$(calc "%.3f" "$t0 + $timeout")
    while :; do
        read -r count live < <(location_count)
        if [ -z "$tfirst" ] && [ "${count:-0}" -gt 0 ]; then tfirst=$(now); fi
        [ "${count:-0}" -ge "$users" ] && break
        kill -0 "$CLIENT_PID" 2>/dev/null || { tail -20 "$dir/client.log" >&2; die "$name: client exited"; }
        if awk -v n="$(now)" -v d="$deadline" 'BEGIN { exit !(n > d) }'; then
            log "$name: only $count of $users bindings after ${timeout}s; measuring anyway"
            break
        fi
        sleep 0.5
    done
    t1=$(now); c1=$(cpu_ticks "$CLIENT_PID"); r1=$(cpu_ticks "$REG_PID"); u1=$(udp_rcvbuf_errors)
    read -r -a s1 < <(sys_cpu)
    R[rss_wave_kb]=$(mem_kb "$CLIENT_PID" | cut -d' ' -f1)
    reg_stats "$dir/registrar-1.stats"
    client_stats "$dir/client-1.stats"
    R[registered]=$count
    [ -z "$stream_pid" ] || R[events_wave]=$(streamed)
    R[wave_s]=$(calc "%.1f" "$t1 - $t0")
    R[first_to_all_s]=$(calc "%.1f" "$t1 - ${tfirst:-$t1}")
    log "$name: $count bindings after ${R[wave_s]}s (first to all ${R[first_to_all_s]}s), CPU $(calc "%.2f" "$c1 / $CLK_TCK") s"

    # Optional CPU profile of the client for the first PROFILE_SECS of the window (perf adds a
    # little CPU of its own to the window's figure).
    if [ -n "$PROFILE_SECS" ]; then
        perf record -F "$PROFILE_HZ" --call-graph dwarf,16384 -p "$CLIENT_PID" -o "$dir/perf.data" \
            -- sleep "$PROFILE_SECS" >"$dir/perf.log" 2>&1 &
    fi
    # The refresh window: live bindings every 10 s.
    printf 'elapsed_s\trows\tlive\tclient_cpu_s\tclient_rss_kb\n' >"$dir/timeline.tsv"
    local end live_min=$users elapsed left
    end=$(calc "%.3f" "$t1 + $window")
    while awk -v n="$(now)" -v e="$end" 'BEGIN { exit !(n < e) }'; do
        left=$(calc "%.3f" "$end - $(now)")
        sleep "$(calc "%.3f" "($left < 10) ? $left : 10")"
        kill -0 "$CLIENT_PID" 2>/dev/null || die "$name: client exited during the window"
        read -r count live < <(location_count)
        elapsed=$(calc "%.0f" "$(now) - $t1")
        printf '%s\t%s\t%s\t%s\t%s\n' "$elapsed" "$count" "$live" "$(calc "%.2f" "$(cpu_ticks "$CLIENT_PID") / $CLK_TCK")" \
            "$(mem_kb "$CLIENT_PID" | cut -d' ' -f1)" >>"$dir/timeline.tsv"
        if [ "$live" -lt "$live_min" ]; then live_min=$live; fi
    done
    t2=$(now); c2=$(cpu_ticks "$CLIENT_PID"); r2=$(cpu_ticks "$REG_PID"); u2=$(udp_rcvbuf_errors)
    read -r -a s2 < <(sys_cpu)
    read -r R[rss_kb] R[pss_kb] < <(mem_kb "$CLIENT_PID")
    R[registrar_sock_drops]=$(sock_drops "$REG_PORT")
    if [ "$CLIENT_KIND" = kamailio ]; then R[client_sock_drops]=$(sock_drops "$UAC_PORT"); else R[client_sock_drops]=$(sock_drops "$T_SIP_PORT"); fi
    reg_stats "$dir/registrar-2.stats"
    client_stats "$dir/client-2.stats"
    if [ -n "$stream_pid" ]; then
        R[events_window]=$(streamed)
        kill "$stream_pid" 2>/dev/null || true
    fi
    stop_pid "$CLIENT_PID"; CLIENT_PID=""
    R[live_min]=$live_min

    # Registrar counters (bench_* are first copies only: retransmissions are counted apart).
    delta() { echo $(($(stat_of "$dir/registrar-$2.stats" "$1") - $(stat_of "$dir/registrar-$(($2 - 1)).stats" "$1"))); }
    R[saved_window]=$(delta script:bench_saved 2)
    R[requests_window]=$(delta script:bench_requests 2)
    R[requests_wave]=$(delta script:bench_requests 1)
    R[retrans_wave]=$(delta script:bench_retransmissions 1)
    R[retrans_window]=$(delta script:bench_retransmissions 2)
    R[udp_drops_wave]=$((u1 - u0))
    R[udp_drops_window]=$((u2 - u1))
    R[window_s]=$(calc "%.1f" "$t2 - $t1")
    # Idle CPU (the same process with nothing to register) over each period, subtracted.
    R[cpu_wave_s]=$(calc "%.2f" "$c1 / $CLK_TCK - $idle_rate * ($t1 - $t0) / $CLK_TCK")
    R[cpu_window_s]=$(calc "%.2f" "($c2 - $c1) / $CLK_TCK - $idle_rate * ($t2 - $t1) / $CLK_TCK")
    R[idle_cpu_s]=$(calc "%.2f" "$idle_rate * ($t2 - $t0) / $CLK_TCK")
    R[us_per_refresh]=$(calc "%.0f" "${R[saved_window]} > 0 ? ${R[cpu_window_s]} * 1e6 / ${R[saved_window]} : 0")
    R[requests_per_refresh]=$(calc "%.2f" "${R[saved_window]} > 0 ? ${R[requests_window]} / ${R[saved_window]} : 0")
    R[rss_kib_per_reg]=$(calc "%.2f" "(${R[rss_kb]} - $idle_rss) / $users")
    R[pss_kib_per_reg]=$(calc "%.2f" "(${R[pss_kb]} - $idle_pss) / $users")
    R[registrar_cores_wave]=$(calc "%.2f" "($r1 - $r0) / $CLK_TCK / ($t1 - $t0)")
    R[registrar_cores_window]=$(calc "%.2f" "($r2 - $r1) / $CLK_TCK / ($t2 - $t1)")
    R[steal_pct]=$(calc "%.1f" "(${s2[0]} - ${s0[0]}) ? 100 * (${s2[2]} - ${s0[2]}) / (${s2[0]} - ${s0[0]}) : 0")
    # Cores used by anything but the client and the registrar over the whole run.
    R[other_cores]=$(calc "%.2f" "((${s2[1]} - ${s0[1]}) - $c2 - ($r2 - $r0)) / $CLK_TCK / ($t2 - $t0)")
    if [ "$CLIENT_KIND" = kamailio ]; then
        grep 'ERROR' "$dir/client.log" | sed -E 's/^ *[0-9]+\([0-9]+\) //; s/(bu)[0-9]{6}/\1NNNNNN/g' | sort | uniq -c | sort -rn >"$dir/client-errors.txt" || true
    else
        grep -E ' (WARN|ERROR) ' "$dir/client.log" | sed -E 's/^[^ ]+ +//; s/[0-9a-f]{8}-[0-9a-f-]{27}/UUID/g' | sort | uniq -c | sort -rn >"$dir/client-errors.txt" || true
    fi
    R[client_errors]=$(awk '{ n += $1 } END { print n + 0 }' "$dir/client-errors.txt")
    local k line=""
    for k in "${COLUMNS_TSV[@]}"; do line+="${R[$k]}"$'\t'; done
    printf '%s\n' "${line%$'\t'}" >>"$OUT/results.tsv"
    for k in "${COLUMNS_TSV[@]}"; do echo "$k=${R[$k]}"; done >"$dir/result.env"
    if [ "$CLIENT_KIND" = trunkline ]; then
        # What the engine wrote to its own database during the run.
        {
            echo "db_bytes=$(du -cb "$dir"/trunkline.db* | tail -1 | cut -f1)"
            echo "db_registration_attempts_rows=$(sqlite3 "$dir/trunkline.db" 'SELECT COUNT(*) FROM registration_attempts' 2>/dev/null || echo n/a)"
            echo "db_registration_status_rows=$(sqlite3 "$dir/trunkline.db" 'SELECT COUNT(*) FROM registration_status' 2>/dev/null || echo n/a)"
        } >>"$dir/result.env"
    fi
    log "$name: window ${R[window_s]}s CPU ${R[cpu_window_s]}s for ${R[saved_window]} refreshes (${R[us_per_refresh]} µs each)," \
        "live min $live_min, RSS ${R[rss_kb]} KiB (idle $idle_rss), retransmissions ${R[retrans_wave]} + ${R[retrans_window]}," \
        "UDP drops ${R[udp_drops_wave]} + ${R[udp_drops_window]}, client log errors ${R[client_errors]}"
}

# --- machine facts ------------------------------------------------------------------------------------
{
    echo "date: $(date -u +%FT%TZ)"
    echo "commit: $(git -C "$ROOT" rev-parse --short HEAD)"
    if ! git -C "$ROOT" diff --quiet HEAD -- crates Cargo.lock; then
        echo "uncommitted changes built in: $(git -C "$ROOT" diff HEAD -- crates Cargo.lock | sha256sum | cut -c1-12)" \
            "($(git -C "$ROOT" diff --stat HEAD -- crates Cargo.lock | tail -1 | sed 's/^ *//'))"
        git -C "$ROOT" diff HEAD -- crates Cargo.lock >"$OUT/uncommitted.diff"
    fi
    echo "nproc: $(nproc)"
    echo "cpu: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
    echo "memory: $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "kernel: $(uname -r)"
    echo "kamailio: $("$KAMAILIO" -v 2>&1 | head -1)"
    echo "sqlite3: $(sqlite3 --version | cut -d' ' -f1)"
    echo "filesystem of $OUT: $(df -T "$OUT" | awk 'NR == 2 { print $2 }')"
    echo "uptime at start: $(uptime)"
    echo "settings: SIDES='$SIDES' N=$N N_C=$N_C EXPIRES=$EXPIRES EXPIRES_C=$EXPIRES_C WINDOW=$WINDOW WINDOW_C=$WINDOW_C RAMPS='$RAMPS' RAMP_C=$RAMP_C IDLE_SECS=$IDLE_SECS REG_MAXBUFFER=${REG_MAXBUFFER:-default}"
} | tee "$OUT/machine.txt" >&2
(IFS=$'\t'; printf '%s\n' "${COLUMNS_TSV[*]}") >"$OUT/results.tsv"

# --- idle baselines -----------------------------------------------------------------------------------
IDLE_A="0 0 0"; IDLE_T="0 0 0"
if [[ " $SIDES " == *" A "* ]]; then
    log "idle baseline: Kamailio uac with an empty uacreg table (${IDLE_SECS}s)"
    CLIENT_DIR=$OUT/idle-uac
    uac_prepare "$CLIENT_DIR" 0
    uac_start "$CLIENT_DIR"
    IDLE_A=$(idle_measure idle-uac)
    client_stats "$CLIENT_DIR/client-idle.stats"
    stop_pid "$CLIENT_PID"; CLIENT_PID=""
    log "idle uac: ticks/s RSS PSS = $IDLE_A"
fi
if [[ " $SIDES " == *" B "* || " $SIDES " == *" C "* ]]; then
    log "idle baseline: trunkline with zero registrations (${IDLE_SECS}s)"
    CLIENT_DIR=$OUT/idle-trunkline
    rm -rf "$CLIENT_DIR"; mkdir -p "$CLIENT_DIR"
    trunkline_start "$CLIENT_DIR" 2000 true
    wait_http "$CLIENT_DIR/client.log"
    IDLE_T=$(idle_measure idle-trunkline)
    client_stats "$CLIENT_DIR/client-idle.stats"
    stop_pid "$CLIENT_PID"; CLIENT_PID=""
    log "idle trunkline: ticks/s RSS PSS = $IDLE_T"
fi
echo "idle uac (ticks/s rss_kb pss_kb): $IDLE_A" >>"$OUT/machine.txt"
echo "idle trunkline (ticks/s rss_kb pss_kb): $IDLE_T" >>"$OUT/machine.txt"

# --- sides A and B ------------------------------------------------------------------------------------
if [[ " $SIDES " == *" A "* || " $SIDES " == *" B "* ]]; then
    log "registrar: $N subscribers"
    registrar_prepare "$N"
fi
if [[ " $SIDES " == *" A "* ]]; then
    mkdir -p "$OUT/A-uac"
    uac_prepare "$OUT/A-uac" "$N"
    # shellcheck disable=SC2086
    run_side A-uac "$N" "$WINDOW" "$WAVE_TIMEOUT" $IDLE_A uac_start "$OUT/A-uac"
fi
if [[ " $SIDES " == *" B "* ]]; then
    log "seeding $N trunkline registrations through the API (engine off)"
    trunkline_seed "$OUT/seed-$N" "$N"
    for ramp in $RAMPS; do
        fresh_copy "$OUT/seed-$N" "$OUT/B-trunkline-ramp$ramp"
        # shellcheck disable=SC2086
        run_side "B-trunkline-ramp$ramp" "$N" "$WINDOW" "$WAVE_TIMEOUT" $IDLE_T \
            trunkline_start "$OUT/B-trunkline-ramp$ramp" "$ramp" true
    done
    rm -rf "$OUT/seed-$N"
fi

# --- side C -------------------------------------------------------------------------------------------
if [[ " $SIDES " == *" C "* ]]; then
    EXPIRES=$EXPIRES_C
    log "registrar: $N_C subscribers, expires $EXPIRES"
    registrar_prepare "$N_C"
    log "seeding $N_C trunkline registrations through the API (engine off)"
    trunkline_seed "$OUT/seed-$N_C" "$N_C"
    fresh_copy "$OUT/seed-$N_C" "$OUT/C-trunkline-ramp$RAMP_C"
    rm -rf "$OUT/seed-$N_C"
    # shellcheck disable=SC2086
    run_side "C-trunkline-ramp$RAMP_C" "$N_C" "$WINDOW_C" "$WAVE_TIMEOUT_C" $IDLE_T \
        trunkline_start "$OUT/C-trunkline-ramp$RAMP_C" "$RAMP_C" true
fi
stop_pid "$REG_PID"; REG_PID=""
rm -f "$REG_DB" "$REG_DB-wal" "$REG_DB-shm" "$OUT"/*/trunkline.db* "$OUT"/*/uac.db*
echo "uptime at end: $(uptime)" | tee -a "$OUT/machine.txt" >&2

# --- report ---------------------------------------------------------------------------------------------
# One row per run; then, if side A and a side-B run both ran, the ratios of the first side-B run
# (the highest ramp) to side A against the issue's targets.
awk -F'\t' '
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    { for (k in col) v[NR, k] = $col[k]; rows[++n] = NR; if ($1 == "A-uac") uac = NR; if (!trk && $1 ~ /^B-/) trk = NR }
    function g(r, k) { return v[r, k] }
    function ratio(a, b) { return b > 0 ? sprintf("%.2f", a / b) : "n/a" }
    END {
        print "| run | bound / wanted | expires (s) | time to all (s) | first→all (s) | registered events streamed at wave end / window end | CPU wave (s) | CPU window (s) | window (s) | refreshes in window | REGISTERs per refresh | µs CPU per refresh | RSS KiB/reg | PSS KiB/reg | RSS after wave → end (MiB) | retransmissions wave / window | UDP drops wave / window | live bindings, min in window | registrar cores wave / window | steal % / other cores | client log errors |"
        print "|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|---:|---|---|---:|"
        for (i = 1; i <= n; i++) { r = rows[i]
            printf "| %s | %d / %d | %s | %s | %s | %s / %s | %.2f | %.2f | %s | %d | %s | %d | %.2f | %.2f | %.1f → %.1f | %d / %d | %d / %d | %d | %s / %s | %s / %s | %d |\n",
                g(r, "run"), g(r, "registered"), g(r, "users"), g(r, "expires"), g(r, "wave_s"), g(r, "first_to_all_s"),
                g(r, "events_wave"), g(r, "events_window"), g(r, "cpu_wave_s"),
                g(r, "cpu_window_s"), g(r, "window_s"), g(r, "saved_window"), g(r, "requests_per_refresh"), g(r, "us_per_refresh"),
                g(r, "rss_kib_per_reg"), g(r, "pss_kib_per_reg"), g(r, "rss_wave_kb") / 1024, g(r, "rss_kb") / 1024,
                g(r, "retrans_wave"), g(r, "retrans_window"), g(r, "udp_drops_wave"), g(r, "udp_drops_window"), g(r, "live_min"),
                g(r, "registrar_cores_wave"), g(r, "registrar_cores_window"), g(r, "steal_pct"), g(r, "other_cores"),
                g(r, "client_errors") }
        if (uac && trk) {
            print ""
            print "Ratios, " g(trk, "run") " / A-uac (targets: CPU <= 1.0x, time <= 1.0x, RSS <= 4 KiB per registration):"
            print ""
            print "| measure | trunkline | Kamailio uac | ratio | target | met |"
            print "|---|---:|---:|---:|---|---|"
            a = g(trk, "wave_s"); b = g(uac, "wave_s")
            printf "| time until all registered (s) | %s | %s | %s | <= 1.0x | %s |\n", a, b, ratio(a, b), a <= b ? "yes" : "no"
            a = g(trk, "cpu_wave_s"); b = g(uac, "cpu_wave_s")
            printf "| CPU, initial wave (s) | %.2f | %.2f | %s | <= 1.0x | %s |\n", a, b, ratio(a, b), a <= b ? "yes" : "no"
            a = g(trk, "cpu_window_s"); b = g(uac, "cpu_window_s")
            printf "| CPU, %s s of refreshes (s) | %.2f | %.2f | %s | <= 1.0x | %s |\n", g(trk, "window_s"), a, b, ratio(a, b), a <= b ? "yes" : "no"
            a = g(trk, "cpu_wave_s") + g(trk, "cpu_window_s"); b = g(uac, "cpu_wave_s") + g(uac, "cpu_window_s")
            printf "| CPU, wave + refreshes (s) | %.2f | %.2f | %s | <= 1.0x | %s |\n", a, b, ratio(a, b), a <= b ? "yes" : "no"
            a = g(trk, "us_per_refresh"); b = g(uac, "us_per_refresh")
            printf "| CPU per refresh (µs) | %d | %d | %s | (normalised for refresh rate) | %s |\n", a, b, ratio(a, b), a <= b ? "yes" : "no"
            a = g(trk, "rss_kib_per_reg"); b = g(uac, "rss_kib_per_reg")
            printf "| RSS per registration (KiB) | %.2f | %.2f | %s | <= 4 KiB | %s |\n", a, b, ratio(a, b), a <= 4 ? "yes" : "no"
            a = g(trk, "pss_kib_per_reg"); b = g(uac, "pss_kib_per_reg")
            printf "| PSS per registration (KiB) | %.2f | %.2f | %s | (shared pages split) | |\n", a, b, ratio(a, b)
        }
    }' "$OUT/results.tsv" >"$OUT/results.md"
echo
cat "$OUT/results.md"
echo
echo "outputs: $OUT"
