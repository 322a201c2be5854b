#!/usr/bin/env bash
# Switch mapping benchmark: a full SNMP poll of simulated switches by bootherd (`switchprobe`),
# against net-snmp's snmpbulkwalk doing the same walks, sequentially and all switches in parallel.
#
#   bench/switchmap.sh          Run as root (network namespace, port 161). Debian 12 + snmpsim, snmp.
#   environment: SWITCHES (10)  simulated switches, one snmpsimd each
#                PORTS (48)     access ports per switch (plus an uplink)
#                MACS (2000)    learned MACs per switch
#                ROUNDS (3)     timed rounds per client (the best is reported, medians in results.md)
#                REPS (25)      GETBULK max-repetitions, for both clients
#
# Every switch is v2c, Q-BRIDGE, ifIndex ≠ bridge port. bootherd walks ifName, ifMtu,
# dot1dBasePortIfIndex, dot1qTpFdbPort and dot1qTpFdbStatus per switch (one switch's walks in
# sequence, switches in parallel); the anchor runs snmpbulkwalk -Cr$REPS on the same five columns per
# switch: first all switches one after another, then one shell per switch, all at once.
# snmpsim (Python) answers each request on one CPU per switch; both clients wait on it the same way.
#
# Topology: ns bhsm (created here, removed on exit): lo carries 10.97.10.1..N, one snmpsimd each on :161;
# the clients run in the same namespace. Outputs: bench/out/switchmap/results.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
[ "$(id -u)" = 0 ] || { echo "$0: run as root (network namespace, port 161)" >&2; exit 1; }
SWITCHES=${SWITCHES:-10} PORTS=${PORTS:-48} MACS=${MACS:-2000} ROUNDS=${ROUNDS:-3} REPS=${REPS:-25}
for v in SWITCHES PORTS MACS ROUNDS REPS; do [[ ${!v} =~ ^[0-9]+$ ]] || { echo "$v: a number" >&2; exit 2; }; done
command -v snmpsimd >/dev/null || { echo "snmpsimd missing: apt-get install snmpsim" >&2; exit 1; }
command -v snmpbulkwalk >/dev/null || { echo "snmpbulkwalk missing: apt-get install snmp" >&2; exit 1; }
NS=bhsm
OUT=$ROOT/bench/out/switchmap
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

PIDS=()
W=
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    ip netns pids $NS 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns del $NS 2>/dev/null || true
    [ -n "$W" ] && rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "building bootherd (release)"
cargo build --release --quiet
BIN=$ROOT/target/release/bootherd
W=$(mktemp -d /tmp/bh-switchmap.XXXXXX)
chmod 755 "$W"
mkdir -p "$OUT"

log "generating $SWITCHES switches × $PORTS ports × $MACS MACs"
for i in $(seq 1 "$SWITCHES"); do
    mkdir -p "$W/sw$i/data" "$W/sw$i/cache"
    /usr/bin/python3 - "$W/sw$i/data/public.snmprec" "$i" "$PORTS" "$MACS" <<'PY'
import sys
path, sw, ports, macs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rows = []
def row(oid, typ, val):
    rows.append((tuple(oid), typ, val))
uplink = ports + 1
row([1,3,6,1,2,1,1,5,0], "4", "bench-sw%d" % sw)
for p in range(1, uplink + 1):
    ifx = 20000 + p                                  # ifIndex differs from the bridge port
    name = ("Te1/0/%d" if p == uplink else "Gi1/0/%d") % p
    row([1,3,6,1,2,1,2,2,1,2,ifx], "4", name)
    row([1,3,6,1,2,1,2,2,1,4,ifx], "2", "1500")
    row([1,3,6,1,2,1,31,1,1,1,1,ifx], "4", name)
    row([1,3,6,1,2,1,17,1,4,1,2,p], "2", str(ifx))
for m in range(macs):
    mac = [0x52, 0x54, sw, (m >> 16) & 255, (m >> 8) & 255, m & 255]
    port = m % ports + 1
    row([1,3,6,1,2,1,17,7,1,2,2,1,2,1] + mac, "2", str(port))
    row([1,3,6,1,2,1,17,7,1,2,2,1,3,1] + mac, "2", "3")
rows.sort()
with open(path, "w") as f:
    for oid, typ, val in rows:
        f.write("%s|%s|%s\n" % (".".join(map(str, oid)), typ, val))
PY
done
chown -R nobody:nogroup "$W"

ip netns add $NS
ip -n $NS link set lo up
for i in $(seq 1 "$SWITCHES"); do
    ip -n $NS addr add "10.97.10.$i/32" dev lo
    ip netns exec $NS snmpsimd --data-dir="$W/sw$i/data" --cache-dir="$W/sw$i/cache" \
        --agent-udpv4-endpoint="10.97.10.$i:161" --process-user=nobody --process-group=nogroup \
        --logging-method=null >/dev/null 2>&1 &
    PIDS+=($!)
done
log "waiting for the agents to index their data"
export MIBS=""
for i in $(seq 1 "$SWITCHES"); do
    for _ in $(seq 1 300); do
        ip netns exec $NS snmpget -v2c -c public -t 1 -r 0 -On "10.97.10.$i" 1.3.6.1.2.1.1.5.0 >/dev/null 2>&1 && break
        sleep 0.2
    done
done

export BOOTHERD_DB=sqlite:$W/bootherd.db
{
    echo "#switch,snmpversion,username,password,privacy,auth,linkports,sshusername,sshpassword,protocol,switchtype,comments,disable"
    for i in $(seq 1 "$SWITCHES"); do echo "sw$i,2c,,public,,,,,,,,,"; done
} > "$W/switches.csv"
{
    echo "#node,ip,hostnames,otherinterfaces,comments,disable"
    for i in $(seq 1 "$SWITCHES"); do echo "sw$i,10.97.10.$i,,,,"; done
} > "$W/hosts.csv"
"$BIN" tabrestore "$W/switches.csv"
"$BIN" tabrestore "$W/hosts.csv"

COLS="1.3.6.1.2.1.31.1.1.1.1 1.3.6.1.2.1.2.2.1.4 1.3.6.1.2.1.17.1.4.1.2 1.3.6.1.2.1.17.7.1.2.2.1.2 1.3.6.1.2.1.17.7.1.2.2.1.3"
walk_switch() {   # the five walks of one switch, in sequence; prints the row count
    local n=0 c
    for c in $COLS; do
        n=$((n + $(ip netns exec $NS snmpbulkwalk -v2c -c public -Cr"$REPS" -t 5 -r 2 -On "10.97.10.$1" "$c" | wc -l)))
    done
    echo "$n"
}
now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

log "warm-up round"
ip netns exec $NS "$BIN" switchprobe -V >/dev/null || { echo "warm-up switchprobe failed" >&2; exit 1; }
expected=$(( SWITCHES * (MACS + 0) ))
declare -A T
for r in $(seq 1 "$ROUNDS"); do
    t0=$(now)
    ip netns exec $NS "$BIN" switchprobe > "$W/probe.txt"
    t1=$(now)
    got=$(grep -c '^sw' "$W/probe.txt" || true)
    [ "$got" -ge "$expected" ] || { echo "switchprobe listed $got MAC rows, expected $expected" >&2; exit 1; }
    T[bootherd]+="$(echo "$t1 - $t0" | bc) "

    t0=$(now)
    for i in $(seq 1 "$SWITCHES"); do walk_switch "$i" >/dev/null; done
    t1=$(now)
    T[seq]+="$(echo "$t1 - $t0" | bc) "

    t0=$(now)
    walkers=()
    for i in $(seq 1 "$SWITCHES"); do walk_switch "$i" > "$W/par.$i" & walkers+=($!); done
    wait "${walkers[@]}"
    t1=$(now)
    T[par]+="$(echo "$t1 - $t0" | bc) "
    log "round $r: bootherd $(echo "${T[bootherd]}" | awk '{print $NF}') s, snmpbulkwalk sequential $(echo "${T[seq]}" | awk '{print $NF}') s, parallel $(echo "${T[par]}" | awk '{print $NF}') s"
done
rows_one=$(cat "$W/par.1")
b=$(echo "${T[bootherd]}" | tr ' ' '\n' | grep . | median)
s=$(echo "${T[seq]}" | tr ' ' '\n' | grep . | median)
p=$(echo "${T[par]}" | tr ' ' '\n' | grep . | median)
{
    echo "# Switch mapping: $SWITCHES switches × $PORTS ports × $MACS MACs (snmpsim, v2c, GETBULK $REPS)"
    echo
    echo "Median of $ROUNDS rounds, wall time of a full poll (five columns per switch, $rows_one rows per switch)."
    echo
    echo "| client | seconds | bootherd ÷ client |"
    echo "|---|---:|---:|"
    printf '| bootherd switchprobe (parallel switches) | %.2f | 1.00 |\n' "$b"
    printf '| snmpbulkwalk, switches one after another | %.2f | %.2f |\n' "$s" "$(echo "$b / $s" | bc -l)"
    printf '| snmpbulkwalk, %d switches in parallel | %.2f | %.2f |\n' "$SWITCHES" "$p" "$(echo "$b / $p" | bc -l)"
    echo
    echo "rounds (s): bootherd ${T[bootherd]}; sequential ${T[seq]}; parallel ${T[par]}"
    echo "machine: $(nproc) CPUs, $(uname -r)"
} | tee "$OUT/results.md"
