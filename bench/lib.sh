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
