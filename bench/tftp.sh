#!/usr/bin/env bash
# TFTP benchmark, in one run on one machine, with the same files: bootherd vs tftpd-hpa vs atftpd.
#
#   bench/tftp.sh [SERVERS...]        SERVERS ⊂ {bootherd, tftpd-hpa, atftpd}, default all three
#   Run as root (network namespaces, port 69). Debian 12.
#   environment: MB (100)            size of the single-transfer file
#                CLIENTS (200)       clients at once in the parallel runs
#                INITRD_MB (30)      file each parallel client fetches
#                PAR_MODES ("lockstep windowed")  which parallel runs: blksize 1468 alone / with windowsize 16
#                SKIP_512 (unset)    set to skip the slow 512-byte lockstep transfer (tftp-hpa client)
#                BOOTHERD_BENCH_LOG (warn) — RUST_LOG for `bootherd serve`
#                BOOTHERD_BIN — a bootherd binary to measure (default: cargo build --release)
#
# Single transfers: one MB-sized random file, fetched once per server and client mode, timed from client
# start to client exit, compared byte for byte. Clients: tftp-hpa (512-byte lockstep, it negotiates
# nothing), curl (blksize 1468, lockstep), atftp (blksize 1468 lockstep, and windowsize 4 — what OVMF asks
# for —, 16 and 64). tftpd-hpa 5.2 does not implement windowsize: it ignores the option and the transfer
# runs lockstep (marked †). Parallel runs: CLIENTS atftp processes started together, each fetching the
# same INITRD_MB file; aggregate MB/s = CLIENTS × INITRD_MB / wall time of the whole run; a transfer fails
# when atftp exits non-zero or the file differs. Clients and server share the machine's CPUs.
#
# tftpd-hpa and atftpd are not installed: `apt-get download` + `dpkg -x` into the scratch directory
# (installing atftpd would replace tftpd-hpa's /usr/sbin/in.tftpd, see the test bed notes), started from
# there. atftpd gets --maxthread 1000 (its default of 100 would refuse half of the 200 clients).
# bootherd runs as `bootherd serve --no-dhcp` on a throwaway store whose site.tftpdir is the same root;
# when it does not answer TFTP (a tree without the TFTP service), its rows say "not available".
#
# Topology (namespaces created here, removed on exit; nothing touches the host's interfaces):
#   ns bht-srv: bht0 10.99.80.1/24  <- one server at a time, UDP 69
#   ns bht-cli: bht1 10.99.80.2/24  <- the clients          (veth, MTU 1500)
# Outputs: bench/out/tftp/results.md (the tables), results.csv (every transfer), server logs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SERVERS=("$@")
[ ${#SERVERS[@]} -gt 0 ] || SERVERS=(bootherd tftpd-hpa atftpd)
for s in "${SERVERS[@]}"; do
    case $s in bootherd | tftpd-hpa | atftpd) ;; *) echo "unknown server '$s' (bootherd, tftpd-hpa, atftpd)" >&2; exit 2 ;; esac
done
[ "$(id -u)" = 0 ] || { echo "$0: run as root (network namespaces, port 69)" >&2; exit 1; }
MB=${MB:-100}
CLIENTS=${CLIENTS:-200}
INITRD_MB=${INITRD_MB:-30}
PAR_MODES=${PAR_MODES:-lockstep windowed}
[[ $MB =~ ^[0-9]+$ && $CLIENTS =~ ^[0-9]+$ && $INITRD_MB =~ ^[0-9]+$ ]] || { echo "MB, CLIENTS, INITRD_MB: numbers" >&2; exit 2; }

SRV_NS=bht-srv CLI_NS=bht-cli
SRV_IF=bht0 CLI_IF=bht1
SRV_IP=10.99.80.1 CLI_IP=10.99.80.2
OUT=$ROOT/bench/out/tftp

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
exec 9> /run/lock/bootherd-bench-tftp.lock
flock -n 9 || { echo "$0: another bench/tftp.sh run holds /run/lock/bootherd-bench-tftp.lock" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------------------
# clients (installed when missing; none of them replaces a server binary)
need_pkgs=()
for c in atftp:atftp tftp:tftp-hpa curl:curl ss:iproute2 flock:util-linux cmp:diffutils; do
    command -v "${c%%:*}" > /dev/null || need_pkgs+=("${c#*:}")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
    log "installing ${need_pkgs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" > /dev/null
fi

# scratch: world-traversable (tftpd-hpa and atftpd serve as nobody), on the machine's disk, removed on exit
W=$(mktemp -d /tmp/bootherd-bench-tftp.XXXXXX)
chmod 755 "$W"
TROOT=$W/root
OPT=$W/opt
mkdir -p "$TROOT" "$OPT/debs" "$W/dl"
chmod 755 "$TROOT"
rm -rf "$OUT"
mkdir -p "$OUT"

# servers from their .debs, unpacked (never installed); their libraries too when the host lacks them
unpack() { # unpack PACKAGE...
    (cd "$OPT/debs" && apt-get download "$@" > /dev/null 2>&1) || return 1
    local d
    for d in "$OPT"/debs/*.deb; do dpkg -x "$d" "$OPT/tree"; done
}
LIBPATH=$OPT/tree/lib/x86_64-linux-gnu:$OPT/tree/usr/lib/x86_64-linux-gnu
TFTPD_HPA=$OPT/tree/usr/sbin/in.tftpd
ATFTPD=$OPT/tree/usr/sbin/atftpd
want_debs=()
for s in "${SERVERS[@]}"; do
    case $s in tftpd-hpa | atftpd) want_debs+=("$s") ;; esac
done
if [ ${#want_debs[@]} -gt 0 ]; then
    log "unpacking ${want_debs[*]} into the scratch directory"
    unpack "${want_debs[@]}" || { echo "$0: apt-get download ${want_debs[*]} failed (apt-get update?)" >&2; exit 1; }
    # their libraries (libwrap0; libpcre2 for atftpd), unpacked too when the host lacks them
    if (for b in "$TFTPD_HPA" "$ATFTPD"; do [ -x "$b" ] && LD_LIBRARY_PATH=$LIBPATH ldd "$b"; done) | grep -q 'not found'; then
        log "unpacking libwrap0 and libpcre2-8-0"
        unpack libwrap0 libpcre2-8-0 || true
    fi
fi

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
log "writing ${MB} MB and ${INITRD_MB} MB random files"
head -c $((MB * 1024 * 1024)) /dev/urandom > "$TROOT/big.bin"
head -c $((INITRD_MB * 1024 * 1024)) /dev/urandom > "$TROOT/initrd.img"
echo probe > "$TROOT/probe.txt"
chmod 644 "$TROOT"/*

# ---------------------------------------------------------------------------------------------------------
# servers. Each start_* launches the server in ns bht-srv and sets SPID (or NOTE and returns non-zero).
SPID=
NOTE=

start_tftpd-hpa() {
    [ -x "$TFTPD_HPA" ] || { NOTE="not available (no in.tftpd in the unpacked tftpd-hpa)"; return 1; }
    # -L: foreground; -s: chroot to the root; -u nobody; -B: largest blksize granted (65464, the RFC's)
    LD_LIBRARY_PATH=$LIBPATH ip netns exec $SRV_NS "$TFTPD_HPA" -L -v -a $SRV_IP:69 -s -u nobody -B 65464 \
        "$TROOT" > "$OUT/tftpd-hpa.log" 2>&1 &
    SPID=$!
    PIDS+=("$SPID")
}

start_atftpd() {
    [ -x "$ATFTPD" ] || { NOTE="not available (no atftpd in the unpacked atftpd)"; return 1; }
    LD_LIBRARY_PATH=$LIBPATH ip netns exec $SRV_NS "$ATFTPD" --daemon --no-fork --bind-address $SRV_IP \
        --port 69 --user nobody --group nogroup --maxthread 1000 --logfile "$OUT/atftpd.log" "$TROOT" \
        > "$OUT/atftpd.out" 2>&1 &
    SPID=$!
    PIDS+=("$SPID")
}

# ====================================== BOOTHERD SETUP ===================================================
# A throwaway store in the scratch dir whose site.tftpdir is the shared root; `serve --no-dhcp`. A bootherd
# without a TFTP service starts fine and answers nothing: the probe transfer below turns that into
# "not available".
start_bootherd() {
    log "building bootherd (cargo build --release, unless BOOTHERD_BIN is set)"
    if [ -z "${BOOTHERD_BIN:-}" ] && ! (cd "$ROOT" && cargo build --release --quiet) > "$OUT/bootherd-build.log" 2>&1; then
        NOTE="not available (cargo build failed, see bench/out/tftp/bootherd-build.log)"
        return 1
    fi
    local B=${BOOTHERD_BIN:-$ROOT/target/release/bootherd}
    export BOOTHERD_DB=sqlite:$W/b.db
    if ! "$B" chtab key=tftpdir site.value="$TROOT" > "$OUT/bootherd-setup.log" 2>&1; then
        NOTE="not available (store setup failed, see bench/out/tftp/bootherd-setup.log)"
        return 1
    fi
    RUST_LOG=${BOOTHERD_BENCH_LOG:-warn} ip netns exec $SRV_NS "$B" serve --no-dhcp > "$OUT/bootherd.log" 2>&1 &
    SPID=$!
    PIDS+=("$SPID")
}
# =========================================================================================================

listening69() { ip netns exec $SRV_NS ss -Hlun 'sport = :69' | grep -q .; }

start_server() { # $1 = name; returns non-zero with NOTE set if it does not serve a probe file
    local i
    SPID= NOTE=
    "start_$1" || return 1
    for i in $(seq 25); do
        kill -0 "$SPID" 2> /dev/null || { NOTE="not available (exited at start, see bench/out/tftp/$1.log)"; return 1; }
        listening69 && break
        sleep 0.2
    done
    rm -f "$W/dl/probe"
    if ! ip netns exec $CLI_NS timeout 10 atftp -g -r probe.txt -l "$W/dl/probe" $SRV_IP > /dev/null 2>&1 ||
        ! cmp -s "$W/dl/probe" "$TROOT/probe.txt"; then
        NOTE="not available (no answer to a TFTP read on $SRV_IP:69)"
        return 1
    fi
}

stop_server() {
    [ -n "$SPID" ] || return 0
    kill -TERM "$SPID" 2> /dev/null || true
    for _ in $(seq 50); do kill -0 "$SPID" 2> /dev/null || break; sleep 0.1; done
    kill -9 "$SPID" 2> /dev/null || true
    wait "$SPID" 2> /dev/null || true
    # tftpd-hpa forks per transfer: nothing of this server may outlive it
    for p in $(ip netns pids $SRV_NS); do kill -9 "$p" 2> /dev/null || true; done
    SPID=
}

# ---------------------------------------------------------------------------------------------------------
# single-transfer modes: "key|client|options", the command in mode_cmd
MODES=(
    "hpa512|tftp-hpa|512, lockstep (no options)"
    "curl1468|curl|blksize 1468, lockstep"
    "atftp1468|atftp|blksize 1468, lockstep"
    "ws4|atftp|blksize 1468, windowsize 4 (as OVMF)"
    "ws16|atftp|blksize 1468, windowsize 16"
    "ws64|atftp|blksize 1468, windowsize 64"
)
[ -n "${SKIP_512:-}" ] && MODES=("${MODES[@]:1}")
mode_cmd() { # mode_cmd KEY OUTFILE -> CMD array
    local a=(atftp --option "blksize 1468")
    case $1 in
    hpa512) CMD=(tftp -m binary $SRV_IP -c get big.bin "$2") ;;
    curl1468) CMD=(curl -sS --tftp-blksize 1468 -o "$2" "tftp://$SRV_IP/big.bin") ;;
    atftp1468) CMD=("${a[@]}" -g -r big.bin -l "$2" $SRV_IP) ;;
    ws4 | ws16 | ws64) CMD=("${a[@]}" --option "windowsize ${1#ws}" -g -r big.bin -l "$2" $SRV_IP) ;;
    esac
}

now() { date +%s.%N; }
declare -A RES # RES[server,key] = "seconds ok|FAIL" or a note
echo "server,client,options,seconds,MB_per_s,ok" > "$OUT/results.csv"

single() { # single SERVER KEY CLIENT OPTIONS
    local srv=$1 key=$2 cli=$3 opts=$4 t0 t1 rc=0 ok=yes secs
    local f=$W/dl/big.$srv.$key
    rm -f "$f"
    mode_cmd "$key" "$f"
    t0=$(now)
    ip netns exec $CLI_NS timeout 300 "${CMD[@]}" > "$W/client.log" 2>&1 || rc=$?
    t1=$(now)
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    if [ $rc != 0 ] || ! cmp -s "$f" "$TROOT/big.bin"; then
        ok=no
        log "$srv / $cli $opts: FAILED (rc=$rc): $(tail -c 300 "$W/client.log" | tr '\n' ' ')"
    fi
    rm -f "$f"
    RES[$srv,$key]="$secs $ok"
    echo "$srv,$cli,$opts,$secs,$(awk -v s="$secs" -v m="$MB" 'BEGIN { printf "%.1f", m / s }'),$ok" >> "$OUT/results.csv"
    log "$srv / $cli $opts: $secs s ($ok)"
}

# parallel runs: CLIENTS atftp processes at once, each fetching initrd.img
cat > "$W/par.sh" << 'EOF'
#!/usr/bin/env bash
# par.sh N SERVER DIR OPTS...: N atftp clients at once; DIR/rc.I holds each exit status
n=$1 srv=$2 dir=$3; shift 3
for i in $(seq "$n"); do
    ( timeout 600 atftp "$@" -g -r initrd.img -l "$dir/initrd.$i" "$srv" > "$dir/log.$i" 2>&1; echo $? > "$dir/rc.$i" ) &
done
wait
EOF
chmod 755 "$W/par.sh"
parallel() { # parallel SERVER MODE(lockstep|windowed)
    local srv=$1 mode=$2 t0 t1 i fails=0 secs d=$W/dl/par
    local opts=(--option "blksize 1468")
    [ "$mode" = windowed ] && opts+=(--option "windowsize 16")
    rm -rf "$d"
    mkdir -p "$d"
    log "$srv: $CLIENTS clients at once, ${INITRD_MB} MB each, $mode"
    t0=$(now)
    ip netns exec $CLI_NS "$W/par.sh" "$CLIENTS" $SRV_IP "$d" "${opts[@]}"
    t1=$(now)
    for i in $(seq "$CLIENTS"); do
        if [ "$(cat "$d/rc.$i" 2> /dev/null)" != 0 ] || ! cmp -s "$d/initrd.$i" "$TROOT/initrd.img"; then
            fails=$((fails + 1))
        fi
        rm -f "$d/initrd.$i"
    done
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    RES[$srv,par-$mode]="$secs $fails"
    echo "$srv,atftp x$CLIENTS,${opts[*]} ($mode),$secs,$(awk -v s="$secs" -v n="$CLIENTS" -v m="$INITRD_MB" 'BEGIN { printf "%.1f", n * m / s }'),failed=$fails" >> "$OUT/results.csv"
    log "$srv: $CLIENTS × $mode: $secs s, $fails failed"
}

for srv in "${SERVERS[@]}"; do
    log "== $srv"
    if ! start_server "$srv"; then
        log "$srv: $NOTE"
        RES[$srv,note]="$NOTE"
        stop_server
        continue
    fi
    for m in "${MODES[@]}"; do
        IFS='|' read -r key cli opts <<< "$m"
        single "$srv" "$key" "$cli" "$opts"
    done
    for mode in $PAR_MODES; do parallel "$srv" "$mode"; done
    stop_server
done

# ---------------------------------------------------------------------------------------------------------
# report
cell() { # cell SERVER KEY: "s (MB/s)" or the note
    local r=${RES[$1,$2]:-} s ok
    if [ -n "${RES[$1,note]:-}" ]; then echo "not available"; return; fi
    [ -n "$r" ] || { echo "–"; return; }
    read -r s ok <<< "$r"
    local mark=""
    [ "$1" = tftpd-hpa ] && [[ $2 == ws* ]] && mark=" †"
    [ "$ok" = yes ] || { echo "FAILED ($s s)"; return; }
    awk -v s="$s" -v m="$MB" -v k="$mark" 'BEGIN { printf "%.2f s (%.0f MB/s)%s", s, m / s, k }'
}
ratio() { # ratio OTHER KEY: how many times faster bootherd is than OTHER (other time / bootherd time)
    local a=${RES[bootherd,$2]:-} b=${RES[$1,$2]:-}
    [ -n "$a" ] && [ -n "$b" ] && [ -z "${RES[bootherd,note]:-}" ] && [ -z "${RES[$1,note]:-}" ] || { echo "–"; return; }
    read -r as aok <<< "$a"
    read -r bs bok <<< "$b"
    [ "$aok" = yes ] && [ "$bok" = yes ] || { echo "–"; return; }
    awk -v a="$as" -v b="$bs" 'BEGIN { printf "%.2f×", b / a }'
}
pcell() { # pcell SERVER MODE: "MB/s (wall s, failed)"
    local r=${RES[$1,par-$2]:-} s f
    if [ -n "${RES[$1,note]:-}" ]; then echo "not available"; return; fi
    [ -n "$r" ] || { echo "–"; return; }
    read -r s f <<< "$r"
    local mark=""
    [ "$1" = tftpd-hpa ] && [ "$2" = windowed ] && mark=" †"
    awk -v s="$s" -v f="$f" -v n="$CLIENTS" -v m="$INITRD_MB" -v k="$mark" \
        'BEGIN { printf "%.0f MB/s (%.1f s, %d failed)%s", n * m / s, s, f, k }'
}
pratio() {
    local a=${RES[bootherd,par-$2]:-} b=${RES[$1,par-$2]:-}
    [ -n "$a" ] && [ -n "$b" ] && [ -z "${RES[bootherd,note]:-}" ] && [ -z "${RES[$1,note]:-}" ] || { echo "–"; return; }
    awk -v a="${a%% *}" -v b="${b%% *}" 'BEGIN { printf "%.2f×", b / a }'
}
has() { local s; for s in "${SERVERS[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }
others=()
for s in tftpd-hpa atftpd; do has $s && others+=("$s"); done
{
    echo "# TFTP: bootherd vs tftpd-hpa vs atftpd"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), kernel $(uname -r)."
    echo "Servers: $(for s in "${SERVERS[@]}"; do
        case $s in
        bootherd) printf 'bootherd (this tree); ' ;;
        tftpd-hpa) printf 'tftpd-hpa %s; ' "$(dpkg-deb -f "$OPT"/debs/tftpd-hpa_*.deb Version 2> /dev/null || echo '?')" ;;
        atftpd) printf 'atftpd %s (--maxthread 1000); ' "$(dpkg-deb -f "$OPT"/debs/atftpd_*.deb Version 2> /dev/null || echo '?')" ;;
        esac
    done)clients: atftp $(dpkg-query -W -f '${Version}' atftp 2> /dev/null), tftp-hpa $(dpkg-query -W -f '${Version}' tftp-hpa 2> /dev/null), curl $(dpkg-query -W -f '${Version}' curl 2> /dev/null)."
    echo "Over a veth pair between two network namespaces (MTU 1500); clients and servers share the CPUs."
    echo
    echo "## One ${MB} MB transfer"
    echo
    printf '| client | options |'
    for s in "${SERVERS[@]}"; do printf ' %s |' "$s"; done
    has bootherd && for o in "${others[@]}"; do printf ' bootherd vs %s |' "$o"; done
    echo
    printf '|---|---|'
    for s in "${SERVERS[@]}"; do printf -- '---:|'; done
    has bootherd && for o in "${others[@]}"; do printf -- '---:|'; done
    echo
    for m in "${MODES[@]}"; do
        IFS='|' read -r key cli opts <<< "$m"
        printf '| %s | %s |' "$cli" "$opts"
        for s in "${SERVERS[@]}"; do printf ' %s |' "$(cell "$s" "$key")"; done
        has bootherd && for o in "${others[@]}"; do printf ' %s |' "$(ratio "$o" "$key")"; done
        echo
    done
    echo
    echo "## ${CLIENTS} clients at once, ${INITRD_MB} MB each (atftp, blksize 1468)"
    echo
    printf '| run |'
    for s in "${SERVERS[@]}"; do printf ' %s |' "$s"; done
    has bootherd && for o in "${others[@]}"; do printf ' bootherd vs %s |' "$o"; done
    echo
    printf '|---|'
    for s in "${SERVERS[@]}"; do printf -- '---:|'; done
    has bootherd && for o in "${others[@]}"; do printf -- '---:|'; done
    echo
    for mode in $PAR_MODES; do
        label="lockstep"
        [ "$mode" = windowed ] && label="windowsize 16"
        printf '| %s |' "$label"
        for s in "${SERVERS[@]}"; do printf ' %s |' "$(pcell "$s" "$mode")"; done
        has bootherd && for o in "${others[@]}"; do printf ' %s |' "$(pratio "$o" "$mode")"; done
        echo
    done
    echo
    echo "Ratios: the other server's time divided by bootherd's (above 1: bootherd is faster)."
    has tftpd-hpa && echo "† tftpd-hpa does not implement windowsize (RFC 7440): it ignores the option and sends lockstep."
    for s in "${SERVERS[@]}"; do
        [ -n "${RES[$s,note]:-}" ] && echo "$s: ${RES[$s,note]}"
    done
    echo "Every transfer: bench/out/tftp/results.csv."
} > "$OUT/results.md"
echo
cat "$OUT/results.md"
