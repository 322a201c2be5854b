#!/usr/bin/env bash
# DHCPv4 benchmark with ISC's own tool, perfdhcp (Debian package kea-admin), against bootherd, kea-dhcp4
# (memfile) and dnsmasq in one run, on the same subnets and pools, each server pinned to one core and
# perfdhcp to the other.
#
#   bench/dhcp.sh [SERVERS...]          SERVERS ⊂ {bootherd, kea, dnsmasq, bootherd-pg, kea-pg}, default the
#                                       first three. Run as root. The -pg servers keep their leases in PostgreSQL 15
#                                       (Debian's package; a throwaway cluster started here, fsync and synchronous
#                                       commit on, pinned to the server's core): bootherd with --db postgres://…,
#                                       Kea with its PostgreSQL lease backend (schema from kea-admin's scripts). The
#                                       cluster's CPU (every postgres process) counts as the server's.
#
# environment (defaults in brackets):
#   RATES ["5000 15000 30000 100000"]   offered rates (perfdhcp -r, new exchanges/s) for bootherd and Kea
#   DNSMASQ_RATES ["300"]               offered rates for dnsmasq (it fsyncs its lease file per change)
#   MODES ["relay direct"]              relay: perfdhcp plays a relay agent (giaddr, unicast to the server);
#                                       direct: perfdhcp broadcasts on the server's link like real clients
#   SCENARIOS ["dora renew"]            dora: DISCOVER-OFFER-REQUEST-ACK from CLIENTS random MACs;
#                                       renew: half the offered rate DORAs, half renewals of their leases (-f)
#   CLIENTS [9000]  DUR [6] s per run  ROUNDS [3] (servers interleaved per round; medians and min–max reported)
#   CACHE_THRESHOLD [25]                lease reuse, set alike in both: bootherd's site.dhcpcachethreshold (percent)
#                                       and Kea's cache-threshold (its fraction): a lease younger than this share
#                                       of its length is answered as stored, nothing written (ISC dhcpd's
#                                       dhcp-cache-threshold, default 25 there and in bootherd; Kea's default is off).
#                                       0: off in both. dnsmasq has no such setting.
#   SERVER_CPU [0]  GEN_CPU [1]  BENCH_NICE [-20]  BOOTHERD_BIN (default: cargo build --release)
#   OUT [bench/out/dhcp]
#
# Every run starts its server afresh on an empty lease store. The figure to compare servers by on a small
# or shared machine is the server's CPU time per completed exchange (utime+stime of every process in the
# server's namespace, from /proc/<pid>/stat, over the run, divided by the ACKs perfdhcp received), at
# offered rates both servers sustain; perfdhcp itself tops out near 50-60k packets/s on one core, so peak
# rates cannot show a ratio above ~2.5x here. "overload" rows: offered far above a server's peak.
#
# Topology (two namespaces created here; nothing touches the host's interfaces):
#   ns bhq-srv: bhq0 10.97.0.1/24 (relay link)        bhq2 10.96.0.1/16 (direct link)   <- server
#   ns bhq-cli: bhq1 10.97.0.2/24 + 10.97.128.1/17     bhq3 10.96.255.254/16             <- perfdhcp
# relay: pool 10.97.128.10-10.97.253.9 (32,000) in 10.97.128.0/17 via giaddr 10.97.128.1;
# direct: pool 10.96.1.0-10.96.125.255 (32,000) on the link. 1 h leases, router = giaddr / 10.96.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SERVERS=("$@")
[ ${#SERVERS[@]} -gt 0 ] || SERVERS=(bootherd kea dnsmasq)
for s in "${SERVERS[@]}"; do
    case $s in bootherd | kea | dnsmasq | bootherd-pg | kea-pg) ;; *) echo "unknown server '$s' (bootherd, kea, dnsmasq, bootherd-pg, kea-pg)" >&2; exit 2 ;; esac
done
[ "$(id -u)" = 0 ] || { echo "$0: run as root (network namespaces, port 67)" >&2; exit 1; }

RATES=${RATES:-5000 15000 30000 100000}
DNSMASQ_RATES=${DNSMASQ_RATES:-300}
MODES=${MODES:-relay direct}
SCENARIOS=${SCENARIOS:-dora renew}
CLIENTS=${CLIENTS:-9000}
DUR=${DUR:-6}
ROUNDS=${ROUNDS:-3}
CACHE_THRESHOLD=${CACHE_THRESHOLD:-25}
case $CACHE_THRESHOLD in [0-9] | [1-9][0-9]) ;; *) echo "CACHE_THRESHOLD=$CACHE_THRESHOLD: give a percentage from 0 to 99" >&2; exit 2 ;; esac
KEA_CACHE=
[ "$CACHE_THRESHOLD" = 0 ] || KEA_CACHE=" \"cache-threshold\": $(awk -v p="$CACHE_THRESHOLD" 'BEGIN { printf "%.2f", p / 100 }'),"
SERVER_CPU=${SERVER_CPU-0}
GEN_CPU=${GEN_CPU-1}
BENCH_NICE=${BENCH_NICE--20}
OUT=${OUT:-$ROOT/bench/out/dhcp}
W=$OUT/scratch

SRV_NS=bhq-srv CLI_NS=bhq-cli
R_SRV_IF=bhq0 R_CLI_IF=bhq1 D_SRV_IF=bhq2 D_CLI_IF=bhq3
R_SRV_IP=10.97.0.1 GIADDR=10.97.128.1 R_NET=10.97.128.0 R_MASK=255.255.128.0 R_LEN=17
R_LO=10.97.128.10 R_HI=10.97.253.9
D_SRV_IP=10.96.0.1 D_CLI_IP=10.96.255.254 D_NET=10.96.0.0 D_MASK=255.255.0.0 D_LEN=16
D_LO=10.96.1.0 D_HI=10.96.125.255

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
pin() { # command prefix for a process pinned to CPU $1 at BENCH_NICE, in a session of its own
    echo setsid
    if [ -n "$BENCH_NICE" ]; then echo "nice -n $BENCH_NICE"; fi
    if [ -n "$1" ]; then echo "taskset -c $1"; fi
}
# With the kernel's autogroup scheduling (kernel.sched_autogroup_enabled=1, the default), nice only ranks
# processes within their session's group, and every session's group gets an equal share of a core: a
# server at nice -20 still got ~15 % of its core beside two compiler sessions. So each measured process
# runs in a session of its own (setsid above) whose group gets BENCH_NICE too (/proc/PID/autogroup).
autogroup_nice() { # PID...
    local p
    [ -n "$BENCH_NICE" ] || return 0
    for p in "$@"; do echo "$BENCH_NICE" > "/proc/$p/autogroup" 2> /dev/null || true; done
}

PIDS=()
PGBIN=/usr/lib/postgresql/15/bin PGDIR= PGPORT=5441 PGPID=
stop_pg() {
    [ -n "$PGDIR" ] || return 0
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDIR/data" -m immediate stop > /dev/null 2>&1 || true
    rm -rf "$PGDIR"
    PGDIR=
}
cleanup() {
    local p n
    stop_pg
    for p in "${PIDS[@]}"; do kill "$p" 2> /dev/null || true; done
    sleep 0.3
    for p in "${PIDS[@]}"; do kill -9 "$p" 2> /dev/null || true; done
    for n in $SRV_NS $CLI_NS; do
        for p in $(ip netns pids "$n" 2> /dev/null); do kill -9 "$p" 2> /dev/null || true; done
        ip netns del "$n" 2> /dev/null || true
    done
}
exec 9> /run/lock/bootherd-bench-dhcp.lock
flock -n 9 || { echo "$0: another bench/dhcp.sh run holds /run/lock/bootherd-bench-dhcp.lock" >&2; exit 1; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------------------
need=()
command -v perfdhcp > /dev/null || need+=(kea-admin)
for s in "${SERVERS[@]}"; do
    case $s in
    kea | kea-pg) command -v kea-dhcp4 > /dev/null || need+=(kea-dhcp4-server) ;;
    dnsmasq) command -v dnsmasq > /dev/null || need+=(dnsmasq) ;;
    esac
    case $s in *-pg) [ -x $PGBIN/initdb ] && command -v psql > /dev/null || need+=(postgresql postgresql-client) ;; esac
done
if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" > /dev/null
    for svc in kea-dhcp4-server dnsmasq; do # only ours run, in the namespace
        if [ -d /run/systemd/system ]; then systemctl disable --now "$svc" > /dev/null 2>&1 || true; fi
    done
fi
B=${BOOTHERD_BIN:-$ROOT/target/release/bootherd}
if [[ " ${SERVERS[*]} " == *" bootherd"* ]] && [ -z "${BOOTHERD_BIN:-}" ]; then
    log "building bootherd (release)"
    cargo build --release --quiet
fi

rm -rf "$OUT"
mkdir -p "$W"
for n in $SRV_NS $CLI_NS; do
    for p in $(ip netns pids "$n" 2> /dev/null); do kill -9 "$p" 2> /dev/null || true; done
    ip netns del "$n" 2> /dev/null || true
    ip netns add "$n"
    ip netns exec "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    ip -n "$n" link set lo up
done
ip -n $SRV_NS link add $R_SRV_IF type veth peer name $R_CLI_IF netns $CLI_NS
ip -n $SRV_NS link add $D_SRV_IF type veth peer name $D_CLI_IF netns $CLI_NS
ip -n $SRV_NS addr add $R_SRV_IP/24 dev $R_SRV_IF
ip -n $SRV_NS addr add $D_SRV_IP/$D_LEN dev $D_SRV_IF
ip -n $CLI_NS addr add 10.97.0.2/24 dev $R_CLI_IF
ip -n $CLI_NS addr add $GIADDR/$R_LEN dev $R_CLI_IF
ip -n $CLI_NS addr add $D_CLI_IP/$D_LEN dev $D_CLI_IF
for i in $R_SRV_IF $D_SRV_IF; do ip -n $SRV_NS link set $i up; done
for i in $R_CLI_IF $D_CLI_IF; do ip -n $CLI_NS link set $i up; done
ip -n $SRV_NS route add $R_NET/$R_LEN via 10.97.0.2

# ---------------------------------------------------------------------------------------------------------
# servers: each start_* launches one in ns bhq-srv on a fresh lease store and sets SPID
SPID= MODE=
start_kea() {
    # memfile, persist=true: one CSV line appended per lease change (write(2), no fsync); kea-lfc off.
    # WARN logging (INFO costs Kea about half its rate). Kea 2.2 as Debian ships it: single-threaded.
    # UDP sockets for relayed traffic (what Kea recommends there); raw sockets where clients have no address yet.
    local stype=udp leasedb=${KEA_LEASE_DB:-}
    [ "$MODE" = direct ] && stype=raw
    [ -n "$leasedb" ] || leasedb='{ "type": "memfile", "persist": true, "name": "'"$W"'/kea-leases4.csv", "lfc-interval": 0 }'
    cat > "$W/kea-dhcp4.json" << EOF
{ "Dhcp4": {
  "interfaces-config": { "interfaces": [ "$R_SRV_IF", "$D_SRV_IF" ], "dhcp-socket-type": "$stype" },
  "lease-database": $leasedb,
  "valid-lifetime": 3600, "renew-timer": 900, "rebind-timer": 1800,$KEA_CACHE
  "subnet4": [ { "id": 1, "subnet": "$R_NET/$R_LEN", "pools": [ { "pool": "$R_LO - $R_HI" } ],
                 "option-data": [ { "name": "routers", "data": "$GIADDR" } ] },
               { "id": 2, "subnet": "$D_NET/$D_LEN", "pools": [ { "pool": "$D_LO - $D_HI" } ],
                 "option-data": [ { "name": "routers", "data": "$D_SRV_IP" } ] } ],
  "loggers": [ { "name": "kea-dhcp4", "output_options": [ { "output": "$W/kea-dhcp4.log" } ], "severity": "WARN" } ]
} }
EOF
    rm -f "$W"/kea-leases4.csv*
    KEA_PIDFILE_DIR=$W KEA_LOCKFILE_DIR=$W ip netns exec $SRV_NS $(pin "$SERVER_CPU") \
        kea-dhcp4 -c "$W/kea-dhcp4.json" > "$W/kea-dhcp4.out" 2>&1 &
    SPID=$!
    PIDS+=("$SPID")
}
start_dnsmasq() {
    # --no-ping (else ~3 s per new lease); lease-max above both pools; no DNS, nothing read from /etc.
    rm -f "$W/dnsmasq.leases"
    ip netns exec $SRV_NS $(pin "$SERVER_CPU") dnsmasq --keep-in-foreground --conf-file=/dev/null --port=0 \
        --no-hosts --no-resolv --user=root --interface=$R_SRV_IF --interface=$D_SRV_IF --bind-interfaces \
        --dhcp-authoritative --no-ping --dhcp-lease-max=100000 --quiet-dhcp \
        --dhcp-range=$R_LO,$R_HI,$R_MASK,1h --dhcp-range=$D_LO,$D_HI,$D_MASK,1h \
        --dhcp-option=tag:$R_SRV_IF,option:router,$GIADDR --dhcp-leasefile="$W/dnsmasq.leases" \
        --pid-file="$W/dnsmasq.pid" --log-facility="$W/dnsmasq.log" > "$W/dnsmasq.out" 2>&1 &
    SPID=$!
    PIDS+=("$SPID")
}
start_bootherd() {
    # a throwaway store; the same networks and pools, defined with bootherd's own commands
    export BOOTHERD_DB=${BOOTHERD_DB_URL:-sqlite:$W/bootherd.db} BOOTHERD_PKI=$W/pki
    rm -f "$W"/bootherd.db*
    {
        "$B" mkdef -t network -o relaylink net=10.97.0.0 mask=255.255.255.0 mgtifname=$R_SRV_IF
        "$B" mkdef -t network -o relaynet net=$R_NET mask=$R_MASK gateway=$GIADDR 'mgtifname=!remote!' \
            dynamicrange=$R_LO-$R_HI
        "$B" mkdef -t network -o directnet net=$D_NET mask=$D_MASK gateway=$D_SRV_IP mgtifname=$D_SRV_IF \
            dynamicrange=$D_LO-$D_HI
        "$B" chtab key=dhcpinterfaces site.value=$R_SRV_IF,$D_SRV_IF
        "$B" chtab key=dhcplease site.value=3600
        "$B" chtab key=dhcpcachethreshold site.value="$CACHE_THRESHOLD"
    } > "$W/bootherd-setup.log" 2>&1
    (cd "$W" && RUST_LOG=warn exec ip netns exec $SRV_NS $(pin "$SERVER_CPU") "$B" serve > "$W/bootherd.log" 2>&1) &
    SPID=$!
    PIDS+=("$SPID")
}
# The PostgreSQL cluster of the -pg servers: started once, on the server's core, reached over a unix socket.
start_pg() {
    [ -z "$PGDIR" ] || return 0
    PGDIR=$(mktemp -d /tmp/bootherd-bench-pg.XXXXXX)
    chown postgres "$PGDIR"
    runuser -u postgres -- "$PGBIN/initdb" -D "$PGDIR/data" -U postgres --auth-local=trust -N > /dev/null
    $(pin "$SERVER_CPU") runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/log" -w \
        -o "-k $PGDIR -p $PGPORT -c listen_addresses=''" start > /dev/null
    PGPID=$(head -1 "$PGDIR/data/postmaster.pid")
    autogroup_nice "$PGPID" $(pgrep -P "$PGPID")
}
pg_fresh_db() { # NAME: an empty database
    psql -h "$PGDIR" -p $PGPORT -U postgres -qAt -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" postgres > /dev/null
}
pg_ticks() { # utime+stime of every process of the cluster
    local t=0 p s
    [ -n "$PGPID" ] || { echo 0; return; }
    for p in $PGPID $(pgrep -P "$PGPID"); do
        s=$(sed 's/.*) //' "/proc/$p/stat" 2> /dev/null) || continue
        read -r -a s <<< "$s"
        t=$((t + s[11] + s[12]))
    done
    echo $t
}
start_kea-pg() {
    start_pg
    pg_fresh_db kea
    psql -h "$PGDIR" -p $PGPORT -U postgres -qAt -d kea -f /usr/share/kea/scripts/pgsql/dhcpdb_create.pgsql > /dev/null
    KEA_LEASE_DB='{ "type": "postgresql", "name": "kea", "user": "postgres", "host": "'"$PGDIR"'", "port": '$PGPORT' }' start_kea
}
start_bootherd-pg() {
    start_pg
    pg_fresh_db bh
    BOOTHERD_DB_URL="postgres://postgres@${PGDIR//\//%2F}:$PGPORT/bh" start_bootherd
}
start_server() {
    "start_$1"
    local i
    for i in $(seq 50); do
        kill -0 "$SPID" 2> /dev/null || { log "$1 exited at start (see $W)"; return 1; }
        [ "$(ip netns exec $SRV_NS ss -Hlun 'sport = :67' | wc -l)" -ge 1 ] && break
        sleep 0.2
    done
    autogroup_nice $(ip netns pids $SRV_NS)
    sleep 1
}
stop_server() {
    kill -TERM "$SPID" 2> /dev/null || true
    for _ in $(seq 50); do kill -0 "$SPID" 2> /dev/null || break; sleep 0.1; done
    kill -9 "$SPID" 2> /dev/null || true
    wait "$SPID" 2> /dev/null || true
}
cpu_ticks() { # utime+stime of every process in the server namespace, and of the PostgreSQL cluster
    local t p s
    t=$(pg_ticks)
    for p in $(ip netns pids $SRV_NS); do
        s=$(sed 's/.*) //' "/proc/$p/stat" 2> /dev/null) || continue
        read -r -a s <<< "$s"
        t=$((t + s[11] + s[12]))
    done
    echo $t
}
other_ticks() { # user+nice+system ticks of the whole machine
    awk '$1 == "cpu" { print $2 + $3 + $4 }' /proc/stat
}
rcvbuf_errors() { # [NS]: datagrams dropped on a full socket buffer in the server's (or NS's) namespace
    ip netns exec "${1:-$SRV_NS}" awk '/^Udp:/ { if (!h) { for (i = 1; i <= NF; i++) if ($i == "RcvbufErrors") c = i; h = 1 } else print $c }' /proc/net/snmp
}
HZ=$(getconf CLK_TCK)

# perfdhcp output -> "key=value ..." for the fields we report
parse() {
    awk '
    /^Rate:/ { rate = $2 }
    /^\*\*\*Statistics for: / { sec = $0; sub(/^\*\*\*Statistics for: /, "", sec); sub(/\*\*\*$/, "", sec) }
    /^sent packets:/ { sent[sec] = $3 } /^received packets:/ { recv[sec] = $3 }
    /^drops ratio:/ { dr[sec] = $3 } /^avg delay:/ { avg[sec] = $3 }
    END {
        r = "REQUEST-ACK"; n = "REQUEST-ACK (renewal)"
        printf "rate=%s do_sent=%d do_recv=%d do_drop=%s do_ms=%s ra_sent=%d ra_recv=%d ra_drop=%s ra_ms=%s rn_sent=%d rn_recv=%d rn_drop=%s rn_ms=%s\n",
            rate + 0, sent["DISCOVER-OFFER"], recv["DISCOVER-OFFER"], dr["DISCOVER-OFFER"] + 0, avg["DISCOVER-OFFER"] + 0,
            sent[r], recv[r], dr[r] + 0, avg[r] + 0, sent[n], recv[n], dr[n] + 0, avg[n] + 0
    }' "$1"
}

CSV=$OUT/runs.csv
echo "server,mode,scenario,offered,round,exch_per_s,acks,do_drop_pct,ra_drop_pct,renew_per_s,renew_drop_pct,do_ms,ra_ms,cpu_s,cpu_us_per_exch,rcvbuf_drops,other_load_pct,perfdhcp_rcvbuf_drops" > "$CSV"

run_one() { # SERVER MODE SCENARIO RATE ROUND
    local srv=$1 mode=$2 scen=$3 rate=$4 round=$5 f target args c0 c1 o0 o1 x0 x1 y0 y1 t0 t1
    f=$W/perfdhcp-$srv-$mode-$scen-$rate-$round.txt
    MODE=$mode
    if [ "$mode" = relay ]; then target=(-l $GIADDR $R_SRV_IP); else target=(-l $D_CLI_IF); fi
    # renew: half the offered rate new DORAs, half renewals of the leases they got (perfdhcp wants -f <= -r)
    if [ "$scen" = dora ]; then args=(-r "$rate"); else args=(-r $((rate / 2)) -f $((rate / 2))); fi
    start_server "$srv" || { echo "$srv,$mode,$scen,$rate,$round,,,,,,,,,,,," >> "$CSV"; return; }
    c0=$(cpu_ticks) o0=$(other_ticks) x0=$(rcvbuf_errors) y0=$(rcvbuf_errors $CLI_NS) t0=$(date +%s.%N)
    ip netns exec $CLI_NS $(pin "$GEN_CPU") timeout $((DUR + 30)) perfdhcp -4 -R "$CLIENTS" -p "$DUR" "${args[@]}" \
        "${target[@]}" > "$f" 2>&1 &
    local gpid=$!
    sleep 0.05
    autogroup_nice $(ip netns pids $CLI_NS)
    wait $gpid || true
    c1=$(cpu_ticks) o1=$(other_ticks) x1=$(rcvbuf_errors) y1=$(rcvbuf_errors $CLI_NS) t1=$(date +%s.%N)
    stop_server
    local kv
    kv=$(parse "$f")
    local rate_ do_sent do_recv do_drop do_ms ra_sent ra_recv ra_drop ra_ms rn_sent rn_recv rn_drop rn_ms
    eval "$(echo "$kv" | sed 's/rate=/rate_=/')"
    # completed exchanges: ACKs of DORAs (+ ACKs of renewals in the renew scenario)
    awk -v s="$srv" -v m="$mode" -v sc="$scen" -v r="$rate" -v rd="$round" -v ra="$ra_recv" -v rn="$rn_recv" \
        -v dur="$DUR" -v ncpu="$(nproc)" -v c=$((c1 - c0)) -v o=$((o1 - o0)) -v hz="$HZ" -v dd="$do_drop" -v rad="$ra_drop" \
        -v rnd="$rn_drop" -v dms="$do_ms" -v rms="$ra_ms" -v x=$((x1 - x0)) -v y=$((y1 - y0)) -v t="$(echo "$t1 - $t0" | bc)" 'BEGIN {
        acks = ra + rn; cpu = c / hz
        other = (o - c) / hz / t / ncpu * 100; if (other < 0) other = 0   # % of all cores, perfdhcp included
        printf "%s,%s,%s,%s,%s,%.0f,%d,%.2f,%.2f,%.0f,%.2f,%.3f,%.3f,%.2f,%.1f,%d,%.0f,%d\n", s, m, sc, r, rd,
            acks / dur, acks, dd, rad, rn / dur, rnd, dms, rms, cpu, (acks > 0 ? cpu * 1e6 / acks : 0), x, other, y }' >> "$CSV"
    log "$(tail -1 "$CSV")"
}

START=$(date -u '+%Y-%m-%d %H:%M UTC')
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
for mode in $MODES; do
    for scen in $SCENARIOS; do
        for ((round = 1; round <= ROUNDS; round++)); do
            for srv in "${SERVERS[@]}"; do
                rates=$RATES
                [ "$srv" = dnsmasq ] && rates=$DNSMASQ_RATES
                for rate in $rates; do run_one "$srv" "$mode" "$scen" "$rate" "$round"; done
            done
        done
    done
done
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------------------------------------------------
# report: median and min–max over the rounds, per server, mode, scenario and offered rate
summary() {
    awk -F, 'NR > 1 && $6 != "" {
        k = $1 "," $2 "," $3 "," $4; n[k]++
        x[k, n[k]] = $6; c[k, n[k]] = $15; d[k, n[k]] = $8; q[k, n[k]] = $9; rn[k, n[k]] = $10; rnd[k, n[k]] = $11
        lo[k, n[k]] = $12; la[k, n[k]] = $13; oth[k, n[k]] = $17; sx[k, n[k]] = $16; gx[k, n[k]] = $18
        if (!(k in seen)) { seen[k] = 1; order[++m] = k }
    }
    function med(a, k, cnt,   i, j, t, v) { for (i = 1; i <= cnt; i++) v[i] = a[k, i] + 0
        for (i = 1; i <= cnt; i++) for (j = i + 1; j <= cnt; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
        lo_ = v[1]; hi_ = v[cnt]; return (cnt % 2 ? v[(cnt + 1) / 2] : (v[cnt / 2] + v[cnt / 2 + 1]) / 2) }
    END { for (i = 1; i <= m; i++) { k = order[i]; cnt = n[k]
        mx = med(x, k, cnt); xl = lo_; xh = hi_; mc = med(c, k, cnt); cl = lo_; ch = hi_
        printf "%s,%d,%.0f,%.0f,%.0f,%.1f,%.1f,%.1f,%.2f,%.2f,%.0f,%.2f,%.2f,%.2f,%.0f,%.0f,%.0f\n", k, cnt, mx, xl, xh, mc, cl, ch,
            med(d, k, cnt), med(q, k, cnt), med(rn, k, cnt), med(rnd, k, cnt), med(lo, k, cnt), med(la, k, cnt), med(oth, k, cnt),
            med(sx, k, cnt), med(gx, k, cnt) } }' "$CSV"
}
summary > "$OUT/summary.csv"
fmt() { awk -v x="$1" 'BEGIN { s = sprintf("%.0f", x); o = ""; while (length(s) > 3) { o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3) } print s o }'; }
{
    echo "# DHCPv4 under ISC perfdhcp: bootherd vs Kea memfile vs dnsmasq"
    echo
    echo "$START, $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), kernel $(uname -r);"
    echo "load average $LOAD0 at the start, $LOAD1 at the end. perfdhcp $(perfdhcp -v 2>&1 | awk '{print $2}'), Kea $(kea-dhcp4 -v 2> /dev/null || echo '?'),"
    echo "dnsmasq $(dnsmasq --version 2> /dev/null | awk 'NR==1{print $3}'), bootherd $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet || echo '+dirty')."
    echo "$CLIENTS client MACs (perfdhcp -R), $DUR s per run, $ROUNDS rounds (median, min–max), server pinned to CPU ${SERVER_CPU:-any},"
    echo "perfdhcp to CPU ${GEN_CPU:-any}, both at nice ${BENCH_NICE:-0}. Command: \`sudo bench/dhcp.sh\` (settings above in its header)."
    echo
    echo "| mode | scenario | server | offered/s | exchanges/s (min–max) | DISCOVER drops | REQUEST drops | renewals/s (drops) | OFFER / ACK ms | server CPU µs per exchange (min–max) | Kea CPU ÷ this (-pg: Kea PostgreSQL's) | socket drops server / perfdhcp | other load |"
    echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    while IFS=, read -r srv mode scen rate cnt mx xl xh mc cl ch d q rn rnd lo la oth sx gx; do
        anchor=kea
        [[ $srv == *-pg ]] && anchor=kea-pg
        kc=$(awk -F, -v a="$anchor" -v m="$mode" -v s="$scen" -v r="$rate" '$1 == a && $2 == m && $3 == s && $4 == r { print $9 }' "$OUT/summary.csv")
        ratio="–"
        [ -n "$kc" ] && ratio=$(awk -v a="$kc" -v b="$mc" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "–" }')
        rens="–"
        [ "$scen" = renew ] && rens="$(fmt "$rn") ($rnd %)"
        echo "| $mode | $scen | $srv | $(fmt "$rate") | $(fmt "$mx") ($(fmt "$xl")–$(fmt "$xh")) | $d % | $q % | $rens | $lo / $la | $mc ($cl–$ch) | $ratio | $(fmt "$sx") / $(fmt "$gx") | $oth % |"
    done < "$OUT/summary.csv"
    echo
    echo "- exchanges/s: exchanges completed (ACK received by perfdhcp) per second of the run. In the renew scenario half the"
    echo "  offered rate is new DORAs and half renewals of their leases (REQUEST with ciaddr, perfdhcp -f); both count."
    echo "- DISCOVER / REQUEST drops: perfdhcp's drops ratio (no answer in time) for DISCOVER-OFFER and REQUEST-ACK."
    echo "- server CPU µs per exchange: utime+stime of the server's processes over the run ÷ ACKs received (DORA + renewal)."
    echo "  Kea CPU ÷ this: Kea's figure at the same mode, scenario and offered rate divided by this server's."
    echo "- socket drops: datagrams the kernel dropped on a full socket buffer (median per run), in the server's namespace"
    echo "  and in perfdhcp's: the latter are answers perfdhcp could not take in time (counted as drops above, not the server's)."
    echo "- other load: CPU used meanwhile by everything but the server (perfdhcp included), as % of all cores."
    echo "- Durability: Kea memfile appends a CSV line per lease change (write(2), no fsync); dnsmasq rewrites and fsyncs"
    echo "  its lease file per change; bootherd commits every ACKed lease to SQLite (WAL, synchronous=FULL) before the ACK"
    echo "  leaves, one commit (one fsync) for all ACKs decided within 5 ms. -pg: leases in PostgreSQL 15 (fsync and"
    echo "  synchronous_commit on): Kea writes each lease in its own transaction; bootherd one transaction per 5 ms batch."
    if [ "$CACHE_THRESHOLD" = 0 ]; then
        echo "- Lease reuse off in both (CACHE_THRESHOLD=0): every ACK writes its lease."
    else
        echo "- Lease reuse alike in both (CACHE_THRESHOLD=$CACHE_THRESHOLD): a lease younger than $CACHE_THRESHOLD % of its length is"
        echo "  ACKed as stored, with its remaining time, and not written again (bootherd site.dhcpcachethreshold, Kea cache-threshold)."
    fi
    echo "- All runs: bench/out/dhcp/runs.csv; perfdhcp's own reports: bench/out/dhcp/scratch/perfdhcp-*.txt."
} > "$OUT/results.md"
cat "$OUT/results.md"
