#!/usr/bin/env bash
# Inbound registrar benchmark: trunkline's registrar (devices REGISTER with Vobiz credentials)
# against Kamailio 5.6 as a registrar (registrar + auth + auth_db + usrloc on SQLite), driven by
# the same SIPp scenario, in one run.
#
#   bench/registrar.sh                                    # from the repository root, as root (or with sudo)
#   SIDES=kamailio ROUNDS=1 bench/registrar.sh            # one side, one round
#   RATES="500 1000" STEP_SECS=10 bench/registrar.sh      # a quick check
#   TRANSPORT=t1 bench/registrar.sh                       # over TCP (one connection) instead of UDP
#   TRUNKLINE_BIN=target/release/trunkline bench/registrar.sh   # no cargo build
#
# Needs: cargo (trunkline side, unless TRUNKLINE_BIN is given), curl, awk, md5sum, ps, and
# (installed here with apt-get if missing) the Debian 12 packages kamailio,
# kamailio-sqlite-modules, sip-tester (SIPp 3.6.1) and sqlite3. About 25 s per step: with the
# defaults, 3 rounds of both sides take 30-60 minutes (a side stops at its limit).
#
# The load (bench/sipp/register_auth.xml): $USERS distinct users (bu000001.. with passwords
# pw-000001.., from an injection file read SEQUENTIALly), one registration per SIPp call:
# REGISTER -> 401 (digest challenge, MD5, qop=auth) -> REGISTER with the answer -> 200, each call
# with its own Call-ID, Expires 3600, the Contact sip:USER@127.0.0.1:$SIPP_PORT (the same for
# every call of a user, so a registration after the first replaces that user's binding).
# RATE is in registrations (SIPp calls) per second; every registration is 2 REGISTER
# transactions, so REGISTER/s = 2 x RATE.
#
# Sides (see the project's bench-anchors notes for why each setting is what it is):
#   kamailio   bench/kamailio/registrar.cfg: auth_check/auth_challenge (realm = From domain,
#              $KAM_DOMAIN here), auth_db with ha1/ha1b precomputed (calculate_ha1 0), usrloc
#              db_mode 1 (write-through: the row is in SQLite before the 200), registrar
#              min/default/max expires 60/3600/3600, one worker per transport (children=1,
#              tcp_children=1), no per-request xlog. The database (Debian's schema from
#              /usr/share/kamailio/db_sqlite/) is put in WAL mode with the sqlite3 CLI before
#              Kamailio opens it; db_sqlite leaves SQLite's synchronous=FULL: one fsync of the
#              WAL per commit. Listens on UDP and TCP, port $KAM_PORT.
#   trunkline  `trunkline serve` with TRUNKLINE_OUTBOUND_ENABLED=false (no outbound engine),
#              TRUNKLINE_SIP_CHALLENGE_ALGORITHMS=MD5 (SIPp answers only MD5 and reads only the
#              first WWW-Authenticate), TRUNKLINE_SIP_DOMAIN=$T_DOMAIN, SIP on UDP and TCP port
#              $T_SIP_PORT, a fresh data directory. Its store runs WAL with synchronous=FULL. The
#              default tenant's account id and API key are read from the line the first start
#              prints; $USERS credentials are created through the Vobiz API
#              (POST /api/v1/account/{auth_id}/credentials, X-Auth-ID/X-Auth-Token), and SIPp uses
#              the realm they get, {account_id}.$T_DOMAIN, as its domain.
#
# Rounds: ROUNDS times both sides, in the order of SIDES in odd rounds and reversed in even
# ones. Kamailio's single worker waits for one fsync per binding, and this VM's fsync latency
# moves with its neighbours' I/O: Kamailio's sustained rate here moved between 1,250 and 3,000
# registrations/s from one quiet run to the next within half an hour, so the sides are compared
# round by round (the same conditions) and the summary takes medians over the rounds.
#
# Method, per side and round: start the server; a warm-up pass registers every user once at
# $WARMUP_RATE/s (every one must get its 200); the server's idle CPU over $IDLE_SECS s; then one
# SIPp run per rate in $RATES, each `-r RATE -m RATE*STEP_SECS`, with the same local port (same
# Contacts). Before each step the script waits until the server is idle again and, as the
# machine may be shared, until other processes use under $QUIET_CORES cores (at most
# $QUIET_WAIT s); a step that fails while they used more during it runs again ($REPEAT_BUSY times
# at most; every run is listed, a pass is never repeated). A step passes ("sustained") when
# every call ended, under $MAX_FAIL_PCT % of them failed, SIPp retransmitted at most $MAX_RETRANS
# requests (0: none), and the run ended within STEP_SECS + $ON_TIME_SLACK s (an overloaded server
# whose queue still grows passes a failure-only rule). A side stops after $STOP_AFTER_FAILS
# failed steps in a row. The result of a side is its highest passing rate.
# Per step: SIPp's counters (its -trace_stat file, every second, and the final screen;
# -trace_err); the time from the first REGISTER to the 200 (mean, and the worst one-second mean:
# queueing shows there first; SIPp measures whole milliseconds); the wall time; the server's CPU
# (utime+stime from /proc/PID/stat, summed over the process and all its descendants: every
# Kamailio process) divided by the REGISTER transactions of the successful calls (2 per call);
# SIPp's own CPU (so that the client is known not to be the limit); UDP datagrams dropped for a
# full receive buffer (machine-wide and on the server's socket); hypervisor steal and other
# processes' CPU (/proc/stat).
# Outputs go to bench/out/registrar-<UTC timestamp>/: results.md (tables), results.tsv (one row
# per step), machine.txt, and per side the server's log and per step SIPp's files.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"
SIDES=${SIDES:-"kamailio trunkline"}
ROUNDS=${ROUNDS:-3}                 # both sides this many times, alternating their order
USERS=${USERS:-1000}
RATES=${RATES:-"250 500 625 750 875 1000 1250 1500 1750 2000 2500 3000 3500 4000 5000"}  # registrations/s
STEP_SECS=${STEP_SECS:-20}          # length of each step
TRANSPORT=${TRANSPORT:-u1}          # SIPp -t: u1 (UDP, one socket) or t1 (TCP, one connection)
WARMUP_RATE=${WARMUP_RATE:-200}     # the pass that registers every user once before the steps
IDLE_SECS=${IDLE_SECS:-5}           # the server's idle CPU, measured after the warm-up
MAX_FAIL_PCT=${MAX_FAIL_PCT:-0.1}   # a passing step: failed calls under this share (%)
MAX_RETRANS=${MAX_RETRANS:-0}       # ... at most this many retransmissions
ON_TIME_SLACK=${ON_TIME_SLACK:-1}   # ... and SIPp done within STEP_SECS + this (s)
STOP_AFTER_FAILS=${STOP_AFTER_FAILS:-2}  # stop a side after this many failed steps in a row
QUIET_CORES=${QUIET_CORES:-0.3}     # before each step, wait until other processes use less than this
QUIET_WAIT=${QUIET_WAIT:-120}       # ... for at most this long (s), then go on (and say so)
REPEAT_BUSY=${REPEAT_BUSY:-1}       # run a failed step again (this often) if others used > QUIET_CORES during it
RECV_TIMEOUT_MS=${RECV_TIMEOUT_MS:-10000}  # SIPp fails a call that waits longer for an answer
KAM_PORT=${KAM_PORT:-15080}         # Kamailio, UDP and TCP
KAM_MAXBUFFER=${KAM_MAXBUFFER:-}    # Kamailio -b: its UDP receive buffer cap; empty: its default (256 KiB, rb 512 KiB)
T_SIP_PORT=${T_SIP_PORT:-15082}     # trunkline SIP, UDP and TCP
T_HTTP_PORT=${T_HTTP_PORT:-18282}   # trunkline HTTP API
SIPP_PORT=${SIPP_PORT:-15090}       # SIPp's local port (the Contacts)
SIPP_MEDIA_PORT=${SIPP_MEDIA_PORT:-15092}  # SIPp binds a media port even without media
KAM_DOMAIN=${KAM_DOMAIN:-bench.test}       # Kamailio: realm and Request-URI domain
T_DOMAIN=${T_DOMAIN:-sip.bench.test}       # trunkline sip.domain: realm {account_id}.$T_DOMAIN
TRUNKLINE_BIN=${TRUNKLINE_BIN:-}    # a built binary; empty: cargo build --release -p trunkline
OUT=${OUT:-$HERE/out/registrar-$(date -u +%Y%m%dT%H%M%SZ)}
SCENARIO=$HERE/sipp/register_auth.xml
KAM_CFG=$HERE/kamailio/registrar.cfg
CLK_TCK=$(getconf CLK_TCK)
PATH="$HOME/.cargo/bin:$PATH"

case "$TRANSPORT" in
    u1) PROTO=udp ;;
    t1) PROTO=tcp ;;
    *) die "TRANSPORT must be u1 or t1 (Debian's SIPp has no TLS)" ;;
esac

# --- tools ----------------------------------------------------------------------------------------
missing=()
command -v kamailio >/dev/null || missing+=(kamailio)
[ -e /usr/share/kamailio/db_sqlite/usrloc-create.sql ] || missing+=(kamailio-sqlite-modules)
command -v sipp >/dev/null || missing+=(sip-tester)
command -v sqlite3 >/dev/null || missing+=(sqlite3)
command -v curl >/dev/null || missing+=(curl)
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
KAMAILIO=$(command -v kamailio)
SIPP=$(command -v sipp)
SCHEMA=/usr/share/kamailio/db_sqlite
for port in "$KAM_PORT" "$T_SIP_PORT" "$T_HTTP_PORT" "$SIPP_PORT" "$SIPP_MEDIA_PORT"; do
    ! ss -Hlnu "sport = :$port" | grep -q . || die "UDP port $port is in use (set KAM_PORT/T_SIP_PORT/SIPP_PORT/SIPP_MEDIA_PORT)"
    ! ss -Hlnt "sport = :$port" | grep -q . || die "TCP port $port is in use (set KAM_PORT/T_SIP_PORT/T_HTTP_PORT/SIPP_PORT)"
done

mkdir -p "$OUT"
TRUNKLINE=""
if [[ " $SIDES " == *" trunkline "* ]]; then
    if [ -n "$TRUNKLINE_BIN" ]; then
        TRUNKLINE=$(cd "$(dirname "$TRUNKLINE_BIN")" && pwd)/$(basename "$TRUNKLINE_BIN")
    else
        log "building (release)"
        (cd "$ROOT" && cargo build --release -p trunkline)
        TRUNKLINE=$ROOT/target/release/trunkline
    fi
    [ -x "$TRUNKLINE" ] || die "no trunkline binary at $TRUNKLINE"
fi

# The injection file: one line per user, read in order.
USERS_CSV=$OUT/users.csv
{
    echo SEQUENTIAL
    awk -v n="$USERS" 'BEGIN { for (i = 1; i <= n; i++) printf "bu%06d;pw-%06d\n", i, i }'
} >"$USERS_CSV"

# --- processes ------------------------------------------------------------------------------------
SERVER_PID=""

cleanup() { stop_pid "$SERVER_PID"; }
trap cleanup EXIT

# --- measurements ---------------------------------------------------------------------------------
# wait_idle PID: returns once the process family used under 0.05 cores over 0.5 s (30 s at most):
# a server still working off an earlier step's queue would bill that step's CPU to the next.
wait_idle() {
    local a b i
    for i in $(seq 60); do
        a=$(cpu_ticks "$1"); sleep 0.5; b=$(cpu_ticks "$1")
        if awk -v d="$((b - a))" -v hz="$CLK_TCK" 'BEGIN { exit !(d / hz / 0.5 < 0.05) }'; then return 0; fi
    done
    log "server still busy after 30 s; going on"
}

# wait_sip PORT LOG: until the server answers an OPTIONS (30 s), or dies with its log.
wait_sip() {
    local i
    for i in $(seq 60); do
        kill -0 "$SERVER_PID" 2>/dev/null || { tail -30 "$2" >&2; die "the server exited"; }
        sip_ping "$1" && return 0
        sleep 0.5
    done
    tail -30 "$2" >&2
    die "no answer to OPTIONS on 127.0.0.1:$1"
}

# --- Kamailio -------------------------------------------------------------------------------------
# kamailio_start DIR: a fresh database (WAL) with $USERS subscribers, then Kamailio; returns once
# it answers. Sets SERVER_PID, DOMAIN, TARGET_PORT.
kamailio_start() {
    local dir=$1 db=$1/kamailio.db
    mkdir -p "$dir"
    rm -f "$db" "$db-wal" "$db-shm"
    # ha1 = MD5(user:realm:password), ha1b = MD5(user@realm:realm:password); no plaintext stored.
    {
        echo "PRAGMA journal_mode=WAL;"
        cat "$SCHEMA/standard-create.sql" "$SCHEMA/auth_db-create.sql" "$SCHEMA/usrloc-create.sql"
        echo "BEGIN;"
        local i user password ha1 ha1b
        for i in $(seq "$USERS"); do
            printf -v user 'bu%06d' "$i"
            printf -v password 'pw-%06d' "$i"
            ha1=$(printf '%s' "$user:$KAM_DOMAIN:$password" | md5sum | cut -c1-32)
            ha1b=$(printf '%s' "$user@$KAM_DOMAIN:$KAM_DOMAIN:$password" | md5sum | cut -c1-32)
            echo "INSERT INTO subscriber (username, domain, password, ha1, ha1b) VALUES ('$user', '$KAM_DOMAIN', '', '$ha1', '$ha1b');"
        done
        echo "COMMIT;"
    } | sqlite3 -bail "$db" | grep -qx wal || die "Kamailio database: not in WAL mode"
    [ "$(sqlite3 "$db" 'SELECT COUNT(*) FROM subscriber')" = "$USERS" ] || die "Kamailio: subscriber count"
    local define="DBURL=\"sqlite:///$db\""
    [[ $define == 'DBURL="sqlite:////'* ]] || die "the database path must be absolute"
    local args=(-f "$KAM_CFG" -A "$define" -l "udp:127.0.0.1:$KAM_PORT" -l "tcp:127.0.0.1:$KAM_PORT")
    "$KAMAILIO" -c "${args[@]}" >"$dir/check.log" 2>&1 || { cat "$dir/check.log" >&2; die "Kamailio config"; }
    "$KAMAILIO" -DD -E "${args[@]}" -w "$dir" -P "$dir/kamailio.pid" -m 256 -M 16 ${KAM_MAXBUFFER:+-b "$KAM_MAXBUFFER"} \
        >/dev/null 2>"$dir/server.log" &
    SERVER_PID=$!
    DOMAIN=$KAM_DOMAIN
    TARGET_PORT=$KAM_PORT
    wait_sip "$KAM_PORT" "$dir/server.log"
}

kamailio_check() {  # DIR: every user has one binding
    local n
    n=$(sqlite3 -cmd '.timeout 2000' "$1/kamailio.db" 'SELECT COUNT(*) || " rows, " || COUNT(DISTINCT username) || " users" FROM location')
    log "kamailio: location table: $n"
    echo "$n"
}

# --- trunkline ------------------------------------------------------------------------------------
# trunkline_start DIR: a fresh data directory, the server, $USERS Vobiz credentials made through
# the API; returns once SIP answers. Sets SERVER_PID, DOMAIN, TARGET_PORT.
trunkline_start() {
    local dir=$1 data=$1/data i line account key realm
    rm -rf "$data"; mkdir -p -m 700 "$data"   # 0700, as trunkline wants its data directory
    TRUNKLINE_LOG=warn TRUNKLINE_SIP_LISTEN="127.0.0.1:$T_SIP_PORT" TRUNKLINE_SIP_DOMAIN="$T_DOMAIN" \
        TRUNKLINE_SIP_CHALLENGE_ALGORITHMS=MD5 TRUNKLINE_OUTBOUND_ENABLED=false NO_COLOR=1 \
        "$TRUNKLINE" --data-dir "$data" serve --listen "127.0.0.1:$T_HTTP_PORT" 2>"$dir/server.log" &
    SERVER_PID=$!
    for i in $(seq 300); do
        grep -q '^listening on http://' "$dir/server.log" 2>/dev/null && break
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$dir/server.log" >&2; die "trunkline exited"; }
        sleep 0.1
    done
    grep -q '^listening on http://' "$dir/server.log" || { cat "$dir/server.log" >&2; die "trunkline did not start"; }
    line=$(grep -m1 '^default tenant: ' "$dir/server.log") || die "no default tenant line"
    account=$(sed -n 's/.*account_id=\([^ ]*\).*/\1/p' <<<"$line")
    key=$(sed -n 's/.*api_key=\([^ ]*\).*/\1/p' <<<"$line")
    [ -n "$account" ] && [ -n "$key" ] || die "default tenant line without account_id/api_key"
    realm="$account.$T_DOMAIN"
    local base="http://127.0.0.1:$T_HTTP_PORT/api/v1/account/$account"
    # The first credential alone, to read the realm it got and its id.
    curl -s --no-progress-meter -o "$dir/credential-1.json" -w '%{http_code}' "$base/credentials" \
        -H "X-Auth-ID: $account" -H "X-Auth-Token: $key" -H 'Content-Type: application/json' \
        -d '{"username":"bu000001","password":"pw-000001"}' >"$dir/credential-1.code"
    [ "$(cat "$dir/credential-1.code")" = 201 ] || { cat "$dir/credential-1.json" >&2; die "creating a credential: not 201"; }
    grep -q "\"realm\":\"$realm\"" "$dir/credential-1.json" || { cat "$dir/credential-1.json" >&2; die "the credential's realm is not $realm"; }
    # The others: one curl process, 16 requests in flight, one config block per credential.
    if [ "$USERS" -gt 1 ]; then
        awk -v n="$USERS" -v base="$base" -v account="$account" -v key="$key" 'BEGIN { for (i = 2; i <= n; i++) {
            printf "url = \"%s/credentials\"\nheader = \"X-Auth-ID: %s\"\nheader = \"X-Auth-Token: %s\"\n", base, account, key
            printf "header = \"Content-Type: application/json\"\noutput = \"/dev/null\"\nwrite-out = \"%%{http_code}\\n\"\n"
            printf "data = \"{\\\"username\\\":\\\"bu%06d\\\",\\\"password\\\":\\\"pw-%06d\\\"}\"\n", i, i
            if (i < n) print "next" } }' >"$dir/credentials.curl"
        curl -s --no-progress-meter --parallel --parallel-max 16 -K "$dir/credentials.curl" 2>"$dir/credentials.err" |
            sort | uniq -c >"$dir/credentials.codes"
        rm -f "$dir/credentials.curl"
        [ "$(awk '$2 == 201 { print $1 }' "$dir/credentials.codes")" = "$((USERS - 1))" ] ||
            { cat "$dir/credentials.codes" "$dir/credentials.err" >&2; die "creating credentials: not every request was a 201"; }
    fi
    T_ACCOUNT=$account; T_KEY=$key
    DOMAIN=$realm
    TARGET_PORT=$T_SIP_PORT
    wait_sip "$T_SIP_PORT" "$dir/server.log"
}

trunkline_check() {  # DIR: the bindings of the first user, as the API lists them
    local id body
    id=$(sed -n 's/.*"id":"\([^"]*\)".*/\1/p' "$1/credential-1.json")
    body=$(curl -s --no-progress-meter "http://127.0.0.1:$T_HTTP_PORT/api/v1/account/$T_ACCOUNT/credentials/$id/registrations" \
        -H "X-Auth-ID: $T_ACCOUNT" -H "X-Auth-Token: $T_KEY" || true)
    printf '%s\n' "$body" >"$1/bindings-bu000001.json"
    log "trunkline: bindings of bu000001: $(head -c 300 <<<"$body")"
    echo "bu000001: $(grep -o '"contact"' <<<"$body" | wc -l) contact(s) listed"
}

# --- one SIPp run ---------------------------------------------------------------------------------
COLUMNS_TSV=(side round rate attempt secs planned created successful failed failed_pct retransmissions timeouts unexpected
    wall_s on_time achieved_rate resp_ms resp_max_ms server_cpu_s server_cores us_per_register sipp_cpu_s sipp_cores
    udp_drops server_sock_drops steal_pct other_cores pass)

# sipp_run DIR RATE CALLS: one SIPp run against the current server; leaves its files in DIR
# and "wall_s sipp_cpu_s rc" in DIR/run.env.
sipp_run() {
    local dir=$1 rate=$2 calls=$3 t0 t1
    mkdir -p "$dir"
    t0=$(now)
    (
        cd "$dir"
        rc=0
        "$SIPP" "127.0.0.1:$TARGET_PORT" -sf "$SCENARIO" -inf "$USERS_CSV" \
            -key domain "$DOMAIN" -auth_uri "$DOMAIN" \
            -t "$TRANSPORT" -i 127.0.0.1 -p "$SIPP_PORT" -mp "$SIPP_MEDIA_PORT" -buff_size 1048576 \
            -r "$rate" -rp 1000 -m "$calls" -l "$((rate * 20 + 100))" \
            -nd -recv_timeout "$RECV_TIMEOUT_MS" -timeout "$((STEP_SECS * 3 + 30))s" -nostdin \
            -trace_stat -stf stat.csv -fd 1 -trace_err -error_file errors.log \
            -trace_screen -screen_file screen.log >/dev/null 2>sipp.stderr || rc=$?
        echo "$rc" >rc
        # The subshell's children: SIPp alone ("0m1.234s 0m0.567s" on the second line; `times`
        # in a pipeline would run in a subshell of its own, without children).
        times >times.txt
        awk 'NR == 2 { split($0, f, /[ms ]+/); print f[1] * 60 + f[2] + f[3] * 60 + f[4] }' times.txt >sipp.cpu
    )
    t1=$(now)
    echo "$(calc "%.3f" "$t1 - $t0") $(cat "$dir/sipp.cpu") $(cat "$dir/rc")" >"$dir/run.env"
}

# stat_of CSV NAME: a column of the last line of SIPp's -trace_stat file, by its header name.
stat_of() {
    awk -F';' -v k="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == k) c = i; next } { v = $c } END { print v }' "$1"
}
# to_ms "HH:MM:SS:micro" -> milliseconds
to_ms() { awk -F: '{ printf "%.1f", ($1 * 3600 + $2 * 60 + $3) * 1000 + $4 / 1000 }' <<<"$1"; }
# worst_ms CSV: the highest per-second mean of response time 1 (SIPp resolves milliseconds).
worst_ms() {
    awk -F';' 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "ResponseTime1(P)") c = i; next }
        { split($c, t, ":"); v = (t[1] * 3600 + t[2] * 60 + t[3]) * 1000 + t[4] / 1000; if (v > m) m = v }
        END { printf "%.1f", m }' "$1"
}

# wait_quiet: until the machine's busy CPU (anything: the servers are idle between steps) stays
# under QUIET_CORES for a second, at most QUIET_WAIT s. The machine may be shared.
wait_quiet() {
    local a b i
    for i in $(seq "$QUIET_WAIT"); do
        read -r -a a < <(sys_cpu); sleep 1; read -r -a b < <(sys_cpu)
        if awk -v d="$((b[1] - a[1]))" -v hz="$CLK_TCK" -v q="$QUIET_CORES" 'BEGIN { exit !(d / hz < q) }'; then return 0; fi
    done
    log "the machine stayed busy for ${QUIET_WAIT}s (over $QUIET_CORES cores); going on"
}

LAST_OTHER=0   # other processes' cores during the last step

# run_step SIDE RATE ATTEMPT DIR: one measured step; appends a row to results.tsv; returns 1 if
# it fails.
run_step() {
    local side=$1 rate=$2 attempt=$3 dir=$4 calls=$(($2 * STEP_SECS))
    local -A R=([side]=$side [round]=$ROUND [rate]=$rate [attempt]=$attempt [secs]=$STEP_SECS [planned]=$calls)
    local c0 c1 u0 u1 d0 d1 s0 s1 wall sipp_cpu rc
    wait_idle "$SERVER_PID"
    wait_quiet
    read -r -a s0 < <(sys_cpu)
    c0=$(cpu_ticks "$SERVER_PID"); u0=$(udp_rcvbuf_errors); d0=$(sock_drops "$TARGET_PORT")
    sipp_run "$dir" "$rate" "$calls"
    c1=$(cpu_ticks "$SERVER_PID"); u1=$(udp_rcvbuf_errors); d1=$(sock_drops "$TARGET_PORT")
    read -r -a s1 < <(sys_cpu)
    kill -0 "$SERVER_PID" 2>/dev/null || die "$side: the server exited during the $rate/s step"
    read -r wall sipp_cpu rc <"$dir/run.env"
    local csv=$dir/stat.csv
    [ -s "$csv" ] || { cat "$dir/sipp.stderr" >&2; die "$side: SIPp wrote no statistics (exit $rc)"; }
    R[created]=$(stat_of "$csv" "TotalCallCreated")
    R[successful]=$(stat_of "$csv" "SuccessfulCall(C)")
    R[failed]=$(stat_of "$csv" "FailedCall(C)")
    R[retransmissions]=$(stat_of "$csv" "Retransmissions(C)")
    R[timeouts]=$(($(stat_of "$csv" "FailedMaxUDPRetrans(C)") + $(stat_of "$csv" "FailedTimeoutOnRecv(C)")))
    R[unexpected]=$(stat_of "$csv" "FailedUnexpectedMessage(C)")
    R[resp_ms]=$(to_ms "$(stat_of "$csv" "ResponseTime1(C)")")
    R[resp_max_ms]=$(worst_ms "$csv")
    R[failed_pct]=$(calc "%.3f" "100 * ($calls - ${R[successful]}) / $calls")
    R[wall_s]=$(calc "%.2f" "$wall")
    R[on_time]=$(awk -v w="$wall" -v s="$STEP_SECS" -v k="$ON_TIME_SLACK" 'BEGIN { print ((w <= s + k) ? "yes" : "no") }')
    R[achieved_rate]=$(calc "%.0f" "(${R[successful]} + ${R[failed]}) / $wall")
    R[server_cpu_s]=$(calc "%.2f" "($c1 - $c0) / $CLK_TCK")
    R[server_cores]=$(calc "%.2f" "($c1 - $c0) / $CLK_TCK / $wall")
    R[us_per_register]=$(calc "%.1f" "${R[successful]} > 0 ? ($c1 - $c0) / $CLK_TCK * 1e6 / (2 * ${R[successful]}) : 0")
    R[sipp_cpu_s]=$(calc "%.2f" "$sipp_cpu")
    R[sipp_cores]=$(calc "%.2f" "$sipp_cpu / $wall")
    R[udp_drops]=$((u1 - u0))
    R[server_sock_drops]=$((d1 - d0))
    R[steal_pct]=$(calc "%.1f" "(${s1[0]} - ${s0[0]}) ? 100 * (${s1[2]} - ${s0[2]}) / (${s1[0]} - ${s0[0]}) : 0")
    R[other_cores]=$(calc "%.2f" "((${s1[1]} - ${s0[1]}) / $CLK_TCK - ($c1 - $c0) / $CLK_TCK - $sipp_cpu) / $wall")
    LAST_OTHER=${R[other_cores]}
    # Every planned call ended (none left open), failures (any call not successful) under the
    # limit, no more retransmissions than allowed, on time.
    if [ "$((R[successful] + R[failed]))" -eq "$calls" ] &&
        awk -v f="${R[failed_pct]}" -v m="$MAX_FAIL_PCT" 'BEGIN { exit !(f < m) }' &&
        [ "${R[retransmissions]}" -le "$MAX_RETRANS" ] && [ "${R[on_time]}" = yes ]; then
        R[pass]=yes
    else
        R[pass]=no
    fi
    local k line=""
    for k in "${COLUMNS_TSV[@]}"; do line+="${R[$k]}"$'\t'; done
    printf '%s\n' "${line%$'\t'}" >>"$OUT/results.tsv"
    log "$side $rate/s (attempt $attempt): ${R[successful]}/$calls ok, ${R[failed]} failed, ${R[retransmissions]} retransmissions," \
        "${R[wall_s]} s, server ${R[server_cores]} cores (${R[us_per_register]} µs/REGISTER), SIPp ${R[sipp_cores]} cores," \
        "mean ${R[resp_ms]} ms (worst second ${R[resp_max_ms]} ms), steal ${R[steal_pct]} %, other ${R[other_cores]} cores: pass ${R[pass]}"
    [ "${R[pass]}" = yes ]
}

# run_side SIDE: start, warm up, idle baseline, the steps, stop (round $ROUND).
run_side() {
    local side=$1 dir=$OUT/$1-r$ROUND rate fails=0
    mkdir -p "$dir"
    log "$side: round $ROUND: starting"
    "${side}_start" "$dir"
    log "$side: domain $DOMAIN, SIP 127.0.0.1:$TARGET_PORT ($PROTO); warm-up: $USERS registrations at $WARMUP_RATE/s"
    sipp_run "$dir/warmup" "$WARMUP_RATE" "$USERS"
    local ok
    ok=$(stat_of "$dir/warmup/stat.csv" "SuccessfulCall(C)")
    [ "$ok" = "$USERS" ] || { tail -20 "$dir/warmup/errors.log" >&2 || true; die "$side: warm-up: $ok of $USERS registrations succeeded"; }
    echo "$side round $ROUND after warm-up: $("${side}_check" "$dir")" >>"$OUT/machine.txt"
    # Retransmissions here come from datagrams dropped on a full receive buffer while the server
    # is busy (or waiting for an fsync): the buffer each side runs with is part of the result.
    echo "$side round $ROUND UDP receive buffer: $(ss -Huanm "sport = :$TARGET_PORT" | grep -o 'rb[0-9]*' | head -1)" >>"$OUT/machine.txt"
    wait_idle "$SERVER_PID"
    local c0 c1 t0 t1
    c0=$(cpu_ticks "$SERVER_PID"); t0=$(now)
    sleep "$IDLE_SECS"
    c1=$(cpu_ticks "$SERVER_PID"); t1=$(now)
    echo "$side round $ROUND idle: $(calc "%.3f" "($c1 - $c0) / $CLK_TCK / ($t1 - $t0)") cores over $IDLE_SECS s" | tee -a "$OUT/machine.txt" >&2
    local attempt passed
    for rate in $RATES; do
        attempt=1
        while :; do
            passed=0
            run_step "$side" "$rate" "$attempt" "$dir/step-$rate-$attempt" && passed=1
            # A failure while other processes were busy gets another run (a pass never does).
            if [ $passed -eq 1 ] || [ "$attempt" -gt "$REPEAT_BUSY" ] ||
                ! awk -v o="$LAST_OTHER" -v q="$QUIET_CORES" 'BEGIN { exit !(o > q) }'; then
                break
            fi
            log "$side $rate/s: failed while others used $LAST_OTHER cores; once more"
            attempt=$((attempt + 1))
        done
        if [ $passed -eq 1 ]; then
            fails=0
        else
            fails=$((fails + 1))
            if [ "$fails" -ge "$STOP_AFTER_FAILS" ]; then
                log "$side: $fails failed steps in a row; no higher rates"
                break
            fi
        fi
    done
    echo "$side round $ROUND at the end: $("${side}_check" "$dir")" >>"$OUT/machine.txt"
    stop_pid "$SERVER_PID"; SERVER_PID=""
    rm -f "$dir"/kamailio.db* "$dir"/data/trunkline.db*
}

# --- machine facts ------------------------------------------------------------------------------------
{
    echo "date: $(date -u +%FT%TZ)"
    echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo n/a)"
    if [ -n "$TRUNKLINE" ]; then
        echo "trunkline binary: sha256 $(sha256sum "$TRUNKLINE" | cut -c1-16)…"
        if ! git -C "$ROOT" diff --quiet HEAD -- crates Cargo.lock 2>/dev/null; then
            echo "uncommitted changes in crates/ or Cargo.lock: $(git -C "$ROOT" diff HEAD -- crates Cargo.lock | sha256sum | cut -c1-12)"
            git -C "$ROOT" diff HEAD -- crates Cargo.lock >"$OUT/uncommitted.diff"
        fi
    fi
    echo "nproc: $(nproc)"
    echo "cpu: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
    echo "memory: $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "kernel: $(uname -r)"
    echo "kamailio: $("$KAMAILIO" -v 2>&1 | head -1)"
    echo "sipp: $("$SIPP" -v 2>&1 | awk 'NF { print; exit }' | sed 's/^ *//')"
    echo "sqlite3: $(sqlite3 --version | cut -d' ' -f1)"
    echo "net.core.rmem_max: $(cat /proc/sys/net/core/rmem_max), rmem_default: $(cat /proc/sys/net/core/rmem_default)"
    echo "filesystem of $OUT: $(df -T "$OUT" | awk 'NR == 2 { print $2 }')"
    echo "uptime at start: $(uptime)"
    echo "settings: SIDES='$SIDES' ROUNDS=$ROUNDS USERS=$USERS RATES='$RATES' STEP_SECS=$STEP_SECS TRANSPORT=$TRANSPORT WARMUP_RATE=$WARMUP_RATE MAX_FAIL_PCT=$MAX_FAIL_PCT MAX_RETRANS=$MAX_RETRANS ON_TIME_SLACK=$ON_TIME_SLACK KAM_MAXBUFFER=${KAM_MAXBUFFER:-default} STOP_AFTER_FAILS=$STOP_AFTER_FAILS RECV_TIMEOUT_MS=$RECV_TIMEOUT_MS QUIET_CORES=$QUIET_CORES QUIET_WAIT=$QUIET_WAIT REPEAT_BUSY=$REPEAT_BUSY"
} | tee "$OUT/machine.txt" >&2
(IFS=$'\t'; printf '%s\n' "${COLUMNS_TSV[*]}") >"$OUT/results.tsv"

for side in $SIDES; do
    case "$side" in
        kamailio | trunkline) ;;
        *) die "unknown side $side (kamailio, trunkline)" ;;
    esac
done
REVERSED=$(printf '%s\n' $SIDES | tac | tr '\n' ' ')
for ROUND in $(seq "$ROUNDS"); do
    if [ $((ROUND % 2)) -eq 1 ]; then order=$SIDES; else order=$REVERSED; fi
    for side in $order; do run_side "$side"; done
done
echo "uptime at end: $(uptime)" | tee -a "$OUT/machine.txt" >&2

# --- report ---------------------------------------------------------------------------------------------
# Per side and round: every step, then the sustained rate (the highest passing step). With both
# sides: per round, the ratios against the targets (rate >= 2x Kamailio's; CPU per REGISTER <=
# 1.0x its own, at each side's sustained rate and at the highest rate both sustained in that
# round), and the medians over the rounds.
awk -F'\t' -v proto="$PROTO" -v rounds="$ROUNDS" '
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    { n++; for (k in col) v[n, k] = $col[k]
      s = $col["side"]; q = $col["round"]
      if (!((s, q) in seen)) { seen[s, q] = 1; order[++ng] = s SUBSEP q }
      if ($col["pass"] == "yes") {
          if (!((s, q) in bestrow) || $col["rate"] + 0 > v[bestrow[s, q], "rate"] + 0) bestrow[s, q] = n
          passed[s, q, $col["rate"]] = n } }
    function g(r, k) { return v[r, k] }
    function ratio(a, b) { return b > 0 ? sprintf("%.2f", a / b) : "n/a" }
    function fmt(x) { return x == "n/a" ? x : sprintf("%.2f", x) }
    function median(list,    m, a, i, j, t) {   # list: space-separated numbers
        m = split(list, a, " ")
        if (m == 0) return "n/a"
        for (i = 2; i <= m; i++) for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
        return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
    }
    END {
        for (j = 1; j <= ng; j++) { split(order[j], sq, SUBSEP); s = sq[1]; q = sq[2]
            printf "### %s, round %s (%s)\n\n", s, q, proto
            print "| registrations/s | run | REGISTER/s | ok / planned | failed % | retransmissions | wall (s) | on time | 1st REGISTER→200, mean / worst second (ms) | server cores | server µs CPU / REGISTER | SIPp cores | UDP drops (all / server socket) | steal % / other cores | sustained |"
            print "|---:|---:|---:|---|---:|---:|---:|---|---:|---:|---:|---:|---|---|---|"
            for (r = 1; r <= n; r++) if (g(r, "side") == s && g(r, "round") == q)
                printf "| %d | %d | %d | %d / %d | %s | %d | %s | %s | %s / %s | %s | %s | %s | %d / %d | %s / %s | %s |\n",
                    g(r, "rate"), g(r, "attempt"), 2 * g(r, "rate"), g(r, "successful"), g(r, "planned"), g(r, "failed_pct"), g(r, "retransmissions"),
                    g(r, "wall_s"), g(r, "on_time"), g(r, "resp_ms"), g(r, "resp_max_ms"), g(r, "server_cores"), g(r, "us_per_register"), g(r, "sipp_cores"),
                    g(r, "udp_drops"), g(r, "server_sock_drops"), g(r, "steal_pct"), g(r, "other_cores"), g(r, "pass")
            print ""
            if ((s, q) in bestrow) { r = bestrow[s, q]
                printf "**%s, round %s, sustained: %d registrations/s = %d REGISTER/s**, server %s µs CPU per REGISTER (%s cores), SIPp %s cores.\n\n",
                    s, q, g(r, "rate"), 2 * g(r, "rate"), g(r, "us_per_register"), g(r, "server_cores"), g(r, "sipp_cores")
            } else printf "**%s, round %s, sustained no step.**\n\n", s, q
        }
        both = 0
        for (q = 1; q <= rounds; q++) if ((("kamailio", q) in seen) && (("trunkline", q) in seen)) both++
        if (!both) exit
        print "### trunkline / Kamailio, round by round\n"
        print "| round | sustained REGISTER/s, trunkline / Kamailio | ratio (target >= 2.0) | µs CPU per REGISTER at its own sustained rate, trunkline / Kamailio | ratio (target <= 1.0) | highest REGISTER/s both sustained | µs CPU per REGISTER there, trunkline / Kamailio | ratio (target <= 1.0) |"
        print "|---:|---|---:|---|---:|---:|---|---:|"
        for (q = 1; q <= rounds; q++) {
            if (!((("kamailio", q) in seen) && (("trunkline", q) in seen))) continue
            k = (("kamailio", q) in bestrow) ? bestrow["kamailio", q] : 0
            t = (("trunkline", q) in bestrow) ? bestrow["trunkline", q] : 0
            kr = k ? 2 * g(k, "rate") : 0; tr = t ? 2 * g(t, "rate") : 0
            ku = k ? g(k, "us_per_register") : 0; tu = t ? g(t, "us_per_register") : 0
            common = 0
            for (r = 1; r <= n; r++) if (g(r, "side") == "kamailio" && g(r, "round") == q && g(r, "pass") == "yes" &&
                (("trunkline", q, g(r, "rate")) in passed) && g(r, "rate") + 0 > common) common = g(r, "rate") + 0
            cu = "n/a"; cr = "n/a"
            if (common) {
                a = g(passed["trunkline", q, common], "us_per_register"); b = g(passed["kamailio", q, common], "us_per_register")
                cu = a " / " b; cr = ratio(a, b); crs = crs " " cr
            }
            rr = ratio(tr, kr); ur = ratio(tu, ku)
            if (rr != "n/a") rrs = rrs " " rr
            if (ur != "n/a") urs = urs " " ur
            trs = trs " " tr; krs = krs " " kr
            printf "| %d | %d / %d | %s | %s / %s | %s | %d | %s | %s |\n", q, tr, kr, rr, tu, ku, ur, 2 * common, cu, cr
        }
        m1 = fmt(median(rrs)); m2 = fmt(median(urs)); m3 = fmt(median(crs))
        printf "| median | %d / %d | %s | | %s | | | %s |\n\n", median(trs), median(krs), m1, m2, m3
        printf "Against the targets (medians over %d rounds): sustained rate %s (>= 2.0: %s); CPU per REGISTER %s at their sustained rates, %s at the highest rate both sustained (<= 1.0: %s).\n",
            both, m1, (m1 != "n/a" && m1 + 0 >= 2.0) ? "met" : "not met", m2, m3, (m3 != "n/a" && m3 + 0 <= 1.0) ? "met" : "not met"
    }' "$OUT/results.tsv" >"$OUT/results.md"
echo
cat "$OUT/results.md"
echo
echo "outputs: $OUT"
