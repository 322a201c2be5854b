#!/usr/bin/env bash
# HTTP benchmark, in one run on one machine, with the same files: bootherd vs nginx, measured by wrk.
#
#   bench/http.sh [SERVERS...]          SERVERS ⊂ {bootherd, nginx}, default both
#   Run as root (network namespaces, port 80). Debian 12.
#   environment: ROUNDS (3)             rounds; each runs every server once, the order alternating
#                SECS (5)               seconds of load per wrk run
#                CONNS_SMALL (32)       wrk connections for the 1 MiB file
#                CONNS_LARGE (8)        wrk connections for the 100 MiB file
#                THREADS (2)            wrk threads
#                BOOTHERD_BENCH_LOG (warn) — RUST_LOG for `bootherd serve`
#                BOOTHERD_BIN — a bootherd binary to measure (default: cargo build --release)
#
# Each server serves the same two random files, 1 MiB and 100 MiB, as /install/1M.bin and
# /install/100M.bin (bootherd: site.installdir; nginx: root above it). Each time a server starts:
# a byte-exact check of both files with curl; then per file one warm-up request and `wrk -d SECS`
# with keep-alive connections. Requests/s is wrk's; MiB/s is requests/s × file size (bodies only).
# On a small shared machine two identical runs differ by up to ±10%, and whichever server runs
# first tends to do better, so there are ROUNDS rounds in alternating order (1: A B, 2: B A, …)
# and the table shows each cell's median with the range.
# nginx runs with sendfile on, tcp_nopush on, access_log off, worker_processes auto — its usual
# static-file setup — from its own config in the scratch directory (never the system service;
# policy-rc.d keeps apt from starting that). bootherd runs `serve --no-dhcp --no-tftp` on a
# throwaway store. wrk, nginx and curl are installed with apt when missing.
#
# Topology (namespaces created here, removed on exit; nothing touches the host's interfaces):
#   ns bhh-srv: bhh0 10.99.85.1/24  <- one server at a time, TCP 80
#   ns bhh-cli: bhh1 10.99.85.2/24  <- wrk and curl            (veth; client and server share the CPUs)
# Outputs: bench/out/http/results.md (the table), results.csv, wrk outputs and server logs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SERVERS=("$@")
[ ${#SERVERS[@]} -gt 0 ] || SERVERS=(bootherd nginx)
for s in "${SERVERS[@]}"; do
    case $s in bootherd | nginx) ;; *) echo "unknown server '$s' (bootherd, nginx)" >&2; exit 2 ;; esac
done
[ "$(id -u)" = 0 ] || { echo "$0: run as root (network namespaces, port 80)" >&2; exit 1; }
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-5}
CONNS_SMALL=${CONNS_SMALL:-32}
CONNS_LARGE=${CONNS_LARGE:-8}
THREADS=${THREADS:-2}
for v in "$ROUNDS" "$SECS" "$CONNS_SMALL" "$CONNS_LARGE" "$THREADS"; do
    [[ $v =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS, SECS, CONNS_SMALL, CONNS_LARGE, THREADS: positive numbers" >&2; exit 2; }
done

SRV_NS=bhh-srv CLI_NS=bhh-cli
SRV_IF=bhh0 CLI_IF=bhh1
SRV_IP=10.99.85.1 CLI_IP=10.99.85.2
OUT=$ROOT/bench/out/http

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---------------------------------------------------------------------------------------------------------
# cleanup: kill what we started (by PID), then whatever still lives in our namespaces, then delete them
PIDS=()
NETNS=()
W=
cleanup() {
    local p n
    for p in "${PIDS[@]}"; do kill "$p" 2> /dev/null || true; done
    sleep 0.3
    for p in "${PIDS[@]}"; do kill -9 "$p" 2> /dev/null || true; done
    for n in "${NETNS[@]}"; do
        for p in $(ip netns pids "$n" 2> /dev/null); do kill -9 "$p" 2> /dev/null || true; done
        ip netns del "$n" 2> /dev/null || true
    done
    [ -n "$W" ] && rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# one run at a time: the namespace names are fixed
exec 9> /run/lock/bootherd-bench-http.lock
flock -n 9 || { echo "$0: another bench/http.sh run holds /run/lock/bootherd-bench-http.lock" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------------------
# tools (installed when missing; nginx's service is never started: policy-rc.d forbids it, and we keep it so)
need_pkgs=()
for c in wrk:wrk curl:curl ss:iproute2 flock:util-linux cmp:diffutils; do
    command -v "${c%%:*}" > /dev/null || need_pkgs+=("${c#*:}")
done
for s in "${SERVERS[@]}"; do
    [ "$s" = nginx ] && ! command -v nginx > /dev/null && [ ! -x /usr/sbin/nginx ] && need_pkgs+=(nginx)
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
    log "installing ${need_pkgs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" > /dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# scratch: world-traversable (nginx workers run as nobody), on the machine's disk, removed on exit
W=$(mktemp -d /tmp/bootherd-bench-http.XXXXXX)
chmod 755 "$W"
mkdir -p "$W/install" "$W/tftpboot" "$W/dl" "$W/ngx"
chmod 755 "$W/install" "$W/tftpboot"
rm -rf "$OUT"
mkdir -p "$OUT"

# namespaces: the veth pair is created inside them, never in the host namespace
for n in $SRV_NS $CLI_NS; do # left over from an interrupted run (the lock says none is running)
    for p in $(ip netns pids "$n" 2> /dev/null); do kill -9 "$p" 2> /dev/null || true; done
    ip netns del "$n" 2> /dev/null || true
done
ip netns add $SRV_NS && NETNS+=($SRV_NS)
ip netns add $CLI_NS && NETNS+=($CLI_NS)
ip -n $SRV_NS link add $SRV_IF type veth peer name $CLI_IF netns $CLI_NS
for n in $SRV_NS $CLI_NS; do
    ip netns exec "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 2> /dev/null || true
    ip -n "$n" link set lo up
done
ip -n $SRV_NS addr add $SRV_IP/24 dev $SRV_IF
ip -n $CLI_NS addr add $CLI_IP/24 dev $CLI_IF
ip -n $SRV_NS link set $SRV_IF up
ip -n $CLI_NS link set $CLI_IF up

# the files: random, world-readable
log "writing the 1 MiB and 100 MiB files"
head -c $((1024 * 1024)) /dev/urandom > "$W/install/1M.bin"
head -c $((100 * 1024 * 1024)) /dev/urandom > "$W/install/100M.bin"
chmod 644 "$W"/install/*
FILES=("1M.bin|1|$CONNS_SMALL" "100M.bin|100|$CONNS_LARGE")

# ---------------------------------------------------------------------------------------------------------
# servers. Each start_* launches the server in ns bhh-srv and sets SPID (or NOTE and returns non-zero).
SPID=
NOTE=

start_nginx() {
    [ -x "$NGINX" ] || { NOTE="not available (no nginx binary)"; return 1; }
    mkdir -p "$W/ngx/tmp"
    cat > "$W/ngx/nginx.conf" << EOF
worker_processes auto;
daemon off;
pid $W/ngx/nginx.pid;
error_log $OUT/nginx-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 30s;
    keepalive_requests 1000000;
    default_type application/octet-stream;
    client_body_temp_path $W/ngx/tmp/body;
    proxy_temp_path $W/ngx/tmp/proxy;
    fastcgi_temp_path $W/ngx/tmp/fastcgi;
    uwsgi_temp_path $W/ngx/tmp/uwsgi;
    scgi_temp_path $W/ngx/tmp/scgi;
    server {
        listen 80 reuseport;
        root $W;
        autoindex on;
    }
}
EOF
    ip netns exec $SRV_NS "$NGINX" -p "$W/ngx" -e "$OUT/nginx-error.log" -c "$W/ngx/nginx.conf" \
        > "$OUT/nginx.log" 2>&1 &
    SPID=$!
    PIDS+=("$SPID")
}

# ====================================== BOOTHERD SETUP ===================================================
# A throwaway store in the scratch dir whose site.installdir is the shared directory;
# `serve --no-dhcp --no-tftp`. A tree without the HTTP service answers nothing on port 80: the probe
# below turns that into "not available".
BUILT=
start_bootherd() {
    local B=${BOOTHERD_BIN:-$ROOT/target/release/bootherd}
    if [ -z "$BUILT" ]; then
        log "building bootherd (cargo build --release, unless BOOTHERD_BIN is set)"
        if [ -z "${BOOTHERD_BIN:-}" ] && ! (cd "$ROOT" && cargo build --release --quiet) > "$OUT/bootherd-build.log" 2>&1; then
            NOTE="not available (cargo build failed, see bench/out/http/bootherd-build.log)"
            return 1
        fi
        export BOOTHERD_DB=sqlite:$W/b.db
        if ! { "$B" chtab key=installdir site.value="$W/install" && "$B" chtab key=tftpdir site.value="$W/tftpboot"; } \
            > "$OUT/bootherd-setup.log" 2>&1; then
            NOTE="not available (store setup failed, see bench/out/http/bootherd-setup.log)"
            return 1
        fi
        BUILT=1
    fi
    RUST_LOG=${BOOTHERD_BENCH_LOG:-warn} ip netns exec $SRV_NS "$B" serve --no-dhcp --no-tftp \
        > "$OUT/bootherd.log" 2>&1 &
    SPID=$!
    PIDS+=("$SPID")
}
# =========================================================================================================

listening80() { ip netns exec $SRV_NS ss -Hltn 'sport = :80' | grep -q .; }

start_server() { # $1 = name; returns non-zero with NOTE set if it does not serve the files
    local i f
    SPID= NOTE=
    "start_$1" || return 1
    for i in $(seq 50); do
        kill -0 "$SPID" 2> /dev/null || { NOTE="not available (exited at start, see bench/out/http/$1.log)"; return 1; }
        listening80 && break
        sleep 0.2
    done
    for f in 1M.bin 100M.bin; do
        rm -f "$W/dl/$f"
        if ! ip netns exec $CLI_NS timeout 60 curl -sS --fail -o "$W/dl/$f" "http://$SRV_IP/install/$f" > /dev/null 2>&1 ||
            ! cmp -s "$W/dl/$f" "$W/install/$f"; then
            NOTE="not available (no byte-exact answer for /install/$f on $SRV_IP:80)"
            return 1
        fi
        rm -f "$W/dl/$f"
    done
}

stop_server() {
    [ -n "$SPID" ] || return 0
    kill -TERM "$SPID" 2> /dev/null || true
    for _ in $(seq 50); do kill -0 "$SPID" 2> /dev/null || break; sleep 0.1; done
    kill -9 "$SPID" 2> /dev/null || true
    wait "$SPID" 2> /dev/null || true
    # nginx's workers: nothing of this server may outlive it
    for p in $(ip netns pids $SRV_NS); do kill -9 "$p" 2> /dev/null || true; done
    SPID=
}

declare -A RES # RES[server,file] = "rps rps …" (one per round); ERR[server,file] = errors summed
declare -A ERR
echo "round,server,file,connections,seconds,requests_per_s,MiB_per_s,errors" > "$OUT/results.csv"

load() { # load ROUND SERVER FILE MIB CONNS
    local r=$1 srv=$2 f=$3 mib=$4 c=$5 out rps errs mbs
    out=$OUT/wrk-$srv-$f-round$r.txt
    ip netns exec $CLI_NS wrk -t"$THREADS" -c"$c" -d"${SECS}s" --timeout 60s --latency \
        "http://$SRV_IP/install/$f" > "$out" 2>&1 || true
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
    [ -n "$rps" ] || rps=0
    # socket errors and non-2xx answers, summed
    errs=$(awk '/Socket errors:/ { gsub(/,/, ""); s += $4 + $6 + $8 + $10 } /Non-2xx/ { s += $NF } END { print s + 0 }' "$out")
    mbs=$(awk -v r="$rps" -v m="$mib" 'BEGIN { printf "%.1f", r * m }')
    RES[$srv,$f]="${RES[$srv,$f]:-} $rps"
    ERR[$srv,$f]=$((${ERR[$srv,$f]:-0} + errs))
    echo "$r,$srv,$f,$c,$SECS,$rps,$mbs,$errs" >> "$OUT/results.csv"
    log "round $r, $srv, /install/$f ($c connections): $rps req/s, $mbs MiB/s, $errs errors"
}

for r in $(seq "$ROUNDS"); do
    order=("${SERVERS[@]}")
    if [ $((r % 2)) = 0 ]; then # every other round the other way round
        order=()
        for ((i = ${#SERVERS[@]} - 1; i >= 0; i--)); do order+=("${SERVERS[i]}"); done
    fi
    for srv in "${order[@]}"; do
        [ -n "${RES[$srv,note]:-}" ] && continue
        log "== round $r: $srv"
        if ! start_server "$srv"; then
            log "$srv: $NOTE"
            RES[$srv,note]="$NOTE"
            stop_server
            continue
        fi
        for spec in "${FILES[@]}"; do
            IFS='|' read -r f mib c <<< "$spec"
            # warm-up: the page cache and the server's first-request paths
            ip netns exec $CLI_NS curl -sS -o /dev/null "http://$SRV_IP/install/$f" || true
            load "$r" "$srv" "$f" "$mib" "$c"
        done
        stop_server
    done
done

# ---------------------------------------------------------------------------------------------------------
# report
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
range() { tr ' ' '\n' | grep . | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.1f–%.1f", lo, hi }'; }
cell() { # cell SERVER FILE MIB: "median req/s (range) | median MiB/s"
    local v=${RES[$1,$2]:-} m e=""
    if [ -n "${RES[$1,note]:-}" ]; then echo "not available | –"; return; fi
    [ -n "$v" ] || { echo "– | –"; return; }
    m=$(median <<< "$v")
    [ "${ERR[$1,$2]:-0}" != 0 ] && e=", ${ERR[$1,$2]} errors"
    if [ "$ROUNDS" -gt 1 ]; then
        printf '%.1f (%s%s) | %.0f' "$m" "$(range <<< "$v")" "$e" "$(awk -v r="$m" -v s="$3" 'BEGIN { print r * s }')"
    else
        printf '%.1f%s | %.0f' "$m" "$e" "$(awk -v r="$m" -v s="$3" 'BEGIN { print r * s }')"
    fi
}
ratio() { # ratio FILE: bootherd's median requests/s over nginx's
    local a=${RES[bootherd,$1]:-} b=${RES[nginx,$1]:-}
    [ -n "$a" ] && [ -n "$b" ] && [ -z "${RES[bootherd,note]:-}" ] && [ -z "${RES[nginx,note]:-}" ] || { echo "–"; return; }
    awk -v a="$(median <<< "$a")" -v b="$(median <<< "$b")" 'BEGIN { if (b > 0) printf "%.2f×", a / b; else print "–" }'
}
has() { local s; for s in "${SERVERS[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }
{
    echo "# HTTP: bootherd vs nginx (wrk)"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), kernel $(uname -r)."
    echo "Servers: $(for s in "${SERVERS[@]}"; do
        case $s in
        bootherd) printf 'bootherd (this tree, release build); ' ;;
        nginx) printf 'nginx %s (sendfile on, tcp_nopush on, worker_processes auto, access_log off); ' "$("$NGINX" -v 2>&1 | sed 's|.*/||')" ;;
        esac
    done)client: wrk $(dpkg-query -W -f '${Version}' wrk 2> /dev/null), $THREADS threads, keep-alive, ${SECS} s per run."
    echo "$ROUNDS round(s), the servers' order alternating; each cell is the median over the rounds (range in brackets)."
    echo "Over a veth pair between two network namespaces; wrk and the server share the machine's CPUs."
    echo
    printf '| file | connections |'
    for s in "${SERVERS[@]}"; do printf ' %s req/s | %s MiB/s |' "$s" "$s"; done
    has bootherd && has nginx && printf ' bootherd / nginx |'
    echo
    printf '|---|---:|'
    for s in "${SERVERS[@]}"; do printf -- '---:|---:|'; done
    has bootherd && has nginx && printf -- '---:|'
    echo
    for spec in "${FILES[@]}"; do
        IFS='|' read -r f mib c <<< "$spec"
        printf '| %s MiB | %s |' "$mib" "$c"
        for s in "${SERVERS[@]}"; do printf ' %s |' "$(cell "$s" "$f" "$mib")"; done
        has bootherd && has nginx && printf ' %s |' "$(ratio "$f")"
        echo
    done
    echo
    echo "MiB/s = requests/s × file size (bodies only). Ratio: bootherd's median requests/s over nginx's (above 1: bootherd is faster)."
    for s in "${SERVERS[@]}"; do
        [ -n "${RES[$s,note]:-}" ] && echo "$s: ${RES[$s,note]}"
    done
    echo "wrk's full output: bench/out/http/wrk-*.txt; every run: bench/out/http/results.csv."
} > "$OUT/results.md"
echo
cat "$OUT/results.md"
