#!/usr/bin/env bash
# Helpers shared by the benchmark scripts (sourced, not run): logging, arithmetic, Debian
# packages, stopping a process family, CPU and UDP-drop counters from /proc, a SIP OPTIONS ping.
# `sip_ping` writes its request to "$OUT/ping.sip"; the caller sets OUT.

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"$1\", ($2) }"; }   # calc FORMAT EXPRESSION

apt_install() {
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

# family PID: the process and all its descendants.
family() {
    local pids=("$1") i=0 p
    while [ $i -lt ${#pids[@]} ]; do
        for p in $(ps -o pid= --ppid "${pids[$i]}" 2>/dev/null || true); do pids+=("$p"); done
        i=$((i + 1))
    done
    echo "${pids[@]}"
}

# stop_pid PID: SIGTERM, wait for the process and its descendants (15 s), then SIGKILL them.
stop_pid() {
    local pid=$1 fam i
    [ -n "$pid" ] || return 0
    fam=$(family "$pid")
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 150); do
        local alive=0 p
        for p in $fam; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive -eq 0 ] && break
        sleep 0.1
    done
    for p in $fam; do kill -KILL "$p" 2>/dev/null || true; done
    wait "$pid" 2>/dev/null || true
}

# cpu_ticks PID: utime+stime of the process and all its descendants, in clock ticks.
cpu_ticks() {
    local p
    for p in $(family "$1"); do cat "/proc/$p/stat" 2>/dev/null || true; done |
        awk '{ sub(/^.*\) /, ""); t += $12 + $13 } END { print t + 0 }'
}

# /proc/stat "cpu" line: total ticks, busy ticks (user nice system irq softirq), steal ticks.
sys_cpu() {
    awk '/^cpu / { print $2+$3+$4+$5+$6+$7+$8+$9, $2+$3+$4+$7+$8, $9 }' /proc/stat
}

# udp_rcvbuf_errors: datagrams dropped machine-wide because a receive buffer was full.
udp_rcvbuf_errors() {
    awk '/^Udp:/ { if (!h) { for (i = 2; i <= NF; i++) if ($i == "RcvbufErrors") c = i; h = 1 } else print $c }' /proc/net/snmp
}

# sock_drops PORT: drops counted on the UDP sockets bound to 127.0.0.1:PORT (since they opened).
sock_drops() {
    awk -v port="$(printf '%04X' "$1")" 'NR > 1 { split($2, a, ":"); if (a[2] == port) d += $NF } END { print d + 0 }' /proc/net/udp
}

# sip_ping PORT: an OPTIONS over UDP answered with 200 within 1 s (cat: one write, one datagram).
sip_ping() {
    local port=$1 reply="" n=$RANDOM
    printf 'OPTIONS sip:127.0.0.1:%s SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;rport;branch=z9hG4bK-ping-%s\r\nMax-Forwards: 70\r\nFrom: <sip:ping@127.0.0.1>;tag=p%s\r\nTo: <sip:127.0.0.1:%s>\r\nCall-ID: ping-%s@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n' \
        "$port" "$n" "$n" "$port" "$n" >"$OUT/ping.sip"
    exec 3<>"/dev/udp/127.0.0.1/$port" || return 1
    cat "$OUT/ping.sip" >&3 2>/dev/null || true
    # dd, not read: bash reads one byte at a time, which takes the whole datagram
    reply=$(timeout 1 dd bs=65536 count=1 <&3 2>/dev/null | head -n1) || true
    exec 3<&-
    [[ $reply == "SIP/2.0 200"* ]]
}

# --- the Kamailio registrar the outbound benchmarks register with ---------------------------------
# Used by bench/register.sh and bench/cluster.sh. The caller sets KAMAILIO, KAMCMD, SCHEMA,
# REG_DIR, REG_DB, REG_SOCK, REG_PORT, REALM, EXPIRES (and optionally REG_MAXBUFFER, REG_PID="").
# registrar_prepare USERS: a fresh database (WAL) with USERS subscribers, and the configuration.
registrar_prepare() {
    local users=$1
    stop_pid "$REG_PID"; REG_PID=""
    mkdir -p "$REG_DIR"
    rm -f "$REG_DB" "$REG_DB-wal" "$REG_DB-shm"
    {
        echo "PRAGMA journal_mode=WAL;"
        cat "$SCHEMA/standard-create.sql" "$SCHEMA/auth_db-create.sql" "$SCHEMA/usrloc-create.sql"
        echo "BEGIN;"
        awk -v n="$users" -v realm="$REALM" -v q="'" 'BEGIN { for (i = 1; i <= n; i++)
            printf "INSERT INTO subscriber (username, domain, password) VALUES (%sbu%06d%s, %s%s%s, %spw-%06d%s);\n",
                q, i, q, q, realm, q, q, i, q }'
        echo "COMMIT;"
    } | sqlite3 -bail "$REG_DB" | grep -qx wal || die "registrar database: not in WAL mode"
    [ "$(sqlite3 "$REG_DB" 'SELECT COUNT(*) FROM subscriber')" = "$users" ] || die "registrar: subscriber count"
    cat >"$REG_DIR/kamailio.cfg" <<EOF
#!KAMAILIO
# Registrar for the outbound benchmarks (bench/lib.sh): auth_db + usrloc db_mode 1 (write-through) on SQLite (WAL).
debug=0
log_stderror=yes
children=1
tcp_children=1
disable_tcp=yes
auto_aliases=no
dns=no
rev_dns=no
sip_warning=no
listen=udp:127.0.0.1:$REG_PORT

loadmodule "kex.so"
loadmodule "ctl.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "textops.so"
loadmodule "htable.so"
loadmodule "statistics.so"
loadmodule "db_sqlite.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "auth.so"
loadmodule "auth_db.so"

modparam("ctl", "binrpc", "unix:$REG_SOCK")
modparam("htable", "htable", "seen=>size=17;autoexpire=40;")
modparam("statistics", "variable", "bench_retransmissions")
modparam("statistics", "variable", "bench_requests")
modparam("statistics", "variable", "bench_saved")
modparam("usrloc", "db_url", "sqlite:///$REG_DB")
modparam("usrloc", "db_mode", 1)
modparam("usrloc", "use_domain", 0)
# Only the worker writes to SQLite: db_sqlite 5.6 sets no busy timeout, and the usrloc timer
# deleting lapsed bindings (every 60 s by default) collided with saves ("database is locked": 500s,
# and fresh 401s from auth_db). Expired rows stay in the table; the live count checks expires.
modparam("usrloc", "timer_interval", 3600)
modparam("registrar", "default_expires", $EXPIRES)
modparam("registrar", "min_expires", $EXPIRES)
modparam("registrar", "max_expires", $EXPIRES)
modparam("auth_db", "db_url", "sqlite:///$REG_DB")
modparam("auth_db", "use_domain", 0)
modparam("auth_db", "calculate_ha1", 1)
modparam("auth_db", "password_column", "password")
modparam("auth", "algorithm", "MD5")
modparam("auth", "qop", "auth")
modparam("auth", "nonce_expire", $(( EXPIRES * 2 > 300 ? EXPIRES * 2 : 300 )))

request_route {
    if (is_method("OPTIONS")) {
        sl_send_reply("200", "OK");
        exit;
    }
    if (!is_method("REGISTER")) {
        sl_send_reply("405", "Method Not Allowed");
        exit;
    }
    # A retransmission repeats Call-ID and CSeq; every new request of a client increments CSeq.
    \$var(key) = \$ci + "/" + \$cs;
    if (\$sht(seen=>\$var(key)) != \$null) {
        \$var(retransmission) = 1;
        update_stat("bench_retransmissions", "+1");
    } else {
        \$var(retransmission) = 0;
        \$sht(seen=>\$var(key)) = 1;
        update_stat("bench_requests", "+1");
    }
    if (!www_authenticate("$REALM", "subscriber")) {
        \$var(rc) = \$rc;
        if (\$var(rc) == -4) {
            www_challenge("$REALM", "17");
        } else {
            www_challenge("$REALM", "1");
        }
        exit;
    }
    if (!save("location")) {
        sl_reply_error();
        exit;
    }
    if (\$var(retransmission) == 0) {
        update_stat("bench_saved", "+1");
    }
    exit;
}
EOF
    "$KAMAILIO" -c -f "$REG_DIR/kamailio.cfg" >"$REG_DIR/check.log" 2>&1 || { cat "$REG_DIR/check.log" >&2; die "registrar config"; }
}

# registrar_start LOGNAME: empties `location` and starts the registrar; returns once it answers.
registrar_start() {
    local name=$1 i
    stop_pid "$REG_PID"; REG_PID=""
    sqlite3 "$REG_DB" 'DELETE FROM location; DELETE FROM location_attrs; PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null
    rm -f "$REG_SOCK"
    "$KAMAILIO" -DD -E -f "$REG_DIR/kamailio.cfg" -w "$REG_DIR" -P "$REG_DIR/kamailio.pid" -m 1024 -M 64 \
        ${REG_MAXBUFFER:+-b "$REG_MAXBUFFER"} >/dev/null \
        2>"$REG_DIR/$name.log" &
    REG_PID=$!
    for i in $(seq 100); do
        kill -0 "$REG_PID" 2>/dev/null || { tail -20 "$REG_DIR/$name.log" >&2; die "registrar exited"; }
        if [ -S "$REG_SOCK" ] && sip_ping "$REG_PORT"; then return 0; fi
        sleep 0.2
    done
    die "registrar does not answer"
}

reg_stats() { "$KAMCMD" -s "unix:$REG_SOCK" stats.get_statistics all >"$1" 2>&1 || true; }
# location_count: every row, and the rows not yet expired (db_sqlite stores Julian days, UTC).
location_count() {
    sqlite3 -cmd '.timeout 2000' "$REG_DB" \
        "SELECT COUNT(*), COALESCE(SUM(expires > julianday('now')), 0) FROM location" 2>/dev/null | tr '|' ' ' || echo "0 0"
}


# api_seed HTTP_PORT API_KEY COUNT DIR: COUNT Ultravox registrations bu000001… (password
# pw-000001…, proxy 127.0.0.1:$REG_PORT) created through trunkline's API on HTTP_PORT: one curl
# process, 16 requests in flight. Dies unless every answer is a 201.
api_seed() {
    local port=$1 key=$2 count=$3 dir=$4
    awk -v n="$count" -v key="$key" -v port="$REG_PORT" -v http="$port" 'BEGIN { for (i = 1; i <= n; i++) {
        printf "url = \"http://127.0.0.1:%s/api/sip/registrations\"\nheader = \"X-API-Key: %s\"\n", http, key
        printf "header = \"Content-Type: application/json\"\noutput = \"/dev/null\"\nwrite-out = \"%%{http_code}\\n\"\n"
        printf "data = \"{\\\"username\\\":\\\"bu%06d\\\",\\\"password\\\":\\\"pw-%06d\\\",\\\"proxy\\\":\\\"127.0.0.1:%s\\\"}\"\n", i, i, port
        if (i < n) print "next" } }' >"$dir/seed.curl"
    curl -s --no-progress-meter --parallel --parallel-max 16 -K "$dir/seed.curl" 2>"$dir/seed.err" | sort | uniq -c >"$dir/seed.codes"
    rm -f "$dir/seed.curl"
    [ "$(awk '$2 == 201 { print $1 }' "$dir/seed.codes")" = "$count" ] || { cat "$dir/seed.codes" "$dir/seed.err" >&2; die "seeding: not every request was a 201"; }
}
