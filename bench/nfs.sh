#!/usr/bin/env bash
# NFS benchmark, in one run on one machine, with the same files: bootherd vs nfs-ganesha (FSAL_VFS).
#
#   bench/nfs.sh                      run as root (network namespaces), Debian 12
#   environment: MB (1024)           size of the file read with nfs-cat
#                FILES (50000)       files in the tree listed with nfs-ls -R (100 directories)
#                RUNS (5)            timed runs per measurement; the median is reported
#                BOOTHERD_BIN        a bootherd binary (default: cargo build --release)
#
# Both servers export the same directory read-only from the same ext4 disk and run side by side;
# every measurement is preceded by one untimed warm-up run (so both serve from the page cache),
# then the timed runs alternate between the two servers (bootherd, ganesha, ganesha, bootherd, …),
# so a change in the machine's load hits both alike. Clients are libnfs-utils 4.0 tools in a second
# namespace, joined by a veth pair (nothing touches the host's interfaces):
#   ns bhn-srv: bhn0 10.99.81.1/24   <- bootherd (2049, no portmapper), ganesha (12049/12048 + rpcbind)
#   ns bhn-cli: bhn1 10.99.81.2/24   <- nfs-cat / nfs-ls
# nfs-cat MB/s = file size / wall time of the client process (1 MB = 10^6 bytes); nfs-ls -R
# files/s = entries listed / wall time. The byte count and entry count are checked.
# ganesha runs as in the test bed (§4): rpcbind and ganesha.nfsd in a private mount namespace.
# Outputs: bench/out/nfs/results.md (medians, min–max, load average), runs.txt, server logs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
[ "$(id -u)" = 0 ] || { echo "$0: run as root (network namespaces)" >&2; exit 1; }
MB=${MB:-1024}
FILES=${FILES:-50000}
RUNS=${RUNS:-5}
[[ $MB =~ ^[0-9]+$ && $FILES =~ ^[0-9]+$ && $RUNS =~ ^[0-9]+$ ]] || { echo "MB, FILES, RUNS: numbers" >&2; exit 2; }
for c in nfs-cat:libnfs-utils nfs-ls:libnfs-utils ganesha.nfsd:"nfs-ganesha nfs-ganesha-vfs" rpcbind:rpcbind; do
    command -v "${c%%:*}" > /dev/null || { echo "$0: ${c%%:*} missing: apt-get install ${c#*:}" >&2; exit 1; }
done
SRV_NS=bhn-srv CLI_NS=bhn-cli SRV_IP=10.99.81.1 CLI_IP=10.99.81.2
OUT=$ROOT/bench/out/nfs
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

PIDS=()
W=
cleanup() {
    local p n
    for p in "${PIDS[@]}"; do kill "$p" 2> /dev/null || true; done
    sleep 0.3
    for n in $SRV_NS $CLI_NS; do
        for p in $(ip netns pids "$n" 2> /dev/null); do kill -9 "$p" 2> /dev/null || true; done
        ip netns del "$n" 2> /dev/null || true
    done
    [ -n "$W" ] && rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
exec 9> /run/lock/bootherd-bench-nfs.lock
flock -n 9 || { echo "$0: another bench/nfs.sh run is going on" >&2; exit 1; }

if [ -z "${BOOTHERD_BIN:-}" ]; then
    log "cargo build --release"
    cargo build --release --quiet
    BOOTHERD_BIN=$ROOT/target/release/bootherd
fi

W=$(mktemp -d /tmp/bootherd-bench-nfs.XXXXXX)
chmod 755 "$W"
rm -rf "$OUT"
mkdir -p "$OUT"
EXP=$W/netboot/compute/rootimg
mkdir -p "$EXP/tree"
log "writing a $MB MB file and a tree of $FILES files under $EXP"
dd if=/dev/urandom of="$EXP/big.bin" bs=1M count="$MB" status=none
PER=$(((FILES + 99) / 100))
for d in $(seq 0 99); do
    mkdir "$EXP/tree/d$d"
    (cd "$EXP/tree/d$d" && seq -f "file%05g" 0 $((PER - 1)) | xargs touch)
done
NFILES=$(find "$EXP/tree" -type f | wc -l)
SIZE=$(stat -c %s "$EXP/big.bin")

ip netns add $SRV_NS
ip netns add $CLI_NS
ip -n $SRV_NS link set lo up
ip -n $CLI_NS link set lo up
ip -n $SRV_NS link add bhn0 type veth peer name bhn1 netns $CLI_NS
ip -n $SRV_NS addr add $SRV_IP/24 dev bhn0
ip -n $CLI_NS addr add $CLI_IP/24 dev bhn1
ip -n $SRV_NS link set bhn0 up
ip -n $CLI_NS link set bhn1 up

wait_port() { # wait_port PORT
    local i
    for i in $(seq 1 100); do
        ip netns exec $SRV_NS ss -ltn "sport = :$1" | grep -q LISTEN && return 0
        sleep 0.1
    done
    return 1
}

now() { date +%s.%N; }
# one timed run of a command in the client namespace: prints its wall time; stdout to $W/last.out
timed() {
    local t0 t1
    t0=$(now)
    ip netns exec $CLI_NS "$@" > "$W/last.out"
    t1=$(now)
    echo "$t0 $t1" | awk '{print $2-$1}'
}
check() { # check WHAT WANT
    local n
    n=$(cat "$W/last.out")
    [ "$n" = "$2" ] || { echo "$0: $1 gave $n, not $2" >&2; exit 1; }
}
median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

# --- bootherd ---------------------------------------------------------------------------------------
export BOOTHERD_DB=sqlite:$W/bootherd.db
"$BOOTHERD_BIN" mkdef -t osimage -o bench provmethod=statelite rootimgdir="$W/netboot/compute" \
    osvers=rhels8 osarch=x86_64 profile=compute imagetype=linux > /dev/null
# Only nodes' addresses may connect: the client is a node.
"$BOOTHERD_BIN" mkdef -t node -o benchnode groups=compute,all ip=$CLI_IP > /dev/null
# No portmapper: rpcbind (for ganesha) takes port 111 here; the clients name the ports.
RUST_LOG=warn ip netns exec $SRV_NS "$BOOTHERD_BIN" serve --no-dhcp --no-tftp --no-http --no-status-port \
    --no-portmapper > "$OUT/bootherd.log" 2>&1 &
PIDS+=($!)
wait_port 2049 || { echo "$0: bootherd did not listen on 2049" >&2; cat "$OUT/bootherd.log" >&2; exit 1; }

# --- nfs-ganesha ------------------------------------------------------------------------------------
mkdir -p "$W/ganesha/recov"
cat > "$W/ganesha/ganesha.conf" << CONF
NFS_CORE_PARAM { NFS_Port = 12049; MNT_Port = 12048; NLM_Port = 12047; Rquota_Port = 12046;
                 Enable_NLM = false; Enable_RQUOTA = false; Protocols = 3; }
NFSv4 { Graceless = true; RecoveryRoot = "$W/ganesha/recov"; }
EXPORT { Export_Id = 1; Path = "$EXP"; Pseudo = "$EXP"; Access_Type = RO;
         Squash = No_Root_Squash; SecType = sys; Protocols = 3; Transports = TCP; FSAL { Name = VFS; } }
LOG { Default_Log_Level = EVENT; }
CONF
ip netns exec $SRV_NS unshare -m --propagation private sh -c "
    mount -t tmpfs bhn-run /run && mkdir -p /run/rpcbind && (rpcbind -f &) && sleep 0.5
    exec ganesha.nfsd -F -L '$OUT/ganesha.log' -f '$W/ganesha/ganesha.conf' -p '$W/ganesha/pid' -N NIV_EVENT" &
PIDS+=($!)
wait_port 12049 || { echo "$0: ganesha did not listen on 12049" >&2; cat "$OUT/ganesha.log" >&2; exit 1; }
sleep 1

# --- measurements -----------------------------------------------------------------------------------
declare -A Q=([bootherd]="?nfsport=2049&mountport=2049" [ganesha]="?nfsport=12049&mountport=12048")
declare -A TCAT TLS CAT LS SPREAD
BASE="nfs://$SRV_IP$EXP"
cat_cmd() { echo "nfs-cat '$BASE/big.bin${Q[$1]}' | wc -c"; }
ls_cmd() { echo "nfs-ls -R '$BASE/tree${Q[$1]}' | grep -c '/file[0-9]'"; }
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
for s in bootherd ganesha; do # warm-up
    timed sh -c "$(cat_cmd $s)" > /dev/null && check "$s: nfs-cat" "$SIZE"
    timed sh -c "$(ls_cmd $s)" > /dev/null && check "$s: nfs-ls -R" "$NFILES"
done
for i in $(seq 1 "$RUNS"); do
    order="bootherd ganesha" # who goes first alternates too
    [ $((i % 2)) = 0 ] && order="ganesha bootherd"
    for s in $order; do
        t=$(timed sh -c "$(cat_cmd $s)") && check "$s: nfs-cat" "$SIZE"
        TCAT[$s]+=" $t"
        echo "run $i $s nfs-cat ${t}s" >> "$OUT/runs.txt"
    done
    for s in $order; do
        t=$(timed sh -c "$(ls_cmd $s)") && check "$s: nfs-ls -R" "$NFILES"
        TLS[$s]+=" $t"
        echo "run $i $s nfs-ls ${t}s" >> "$OUT/runs.txt"
    done
done
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
rate() { echo "$1 $2" | awk '{printf "%.0f", $1/$2}'; }
MBYTES=$(echo "$SIZE" | awk '{print $1/1e6}')
range() { # range NUMERATOR TIMES: "min–max" of the rates
    for t in $2; do rate "$1" "$t"; echo; done | sort -g | awk '{v[NR]=$1} END {printf "%s–%s", v[1], v[NR]}'
}
for s in bootherd ganesha; do
    CAT[$s]=$(rate "$MBYTES" "$(echo "${TCAT[$s]}" | median)")
    LS[$s]=$(rate "$NFILES" "$(echo "${TLS[$s]}" | median)")
    SPREAD[$s]="$(range "$MBYTES" "${TCAT[$s]}") MB/s, $(range "$NFILES" "${TLS[$s]}") files/s"
    log "$s: nfs-cat ${CAT[$s]} MB/s, nfs-ls -R ${LS[$s]} files/s (median of $RUNS; ranges ${SPREAD[$s]})"
done

ratio() { echo "$1 $2" | awk '{printf "%.2f", $1/$2}'; }
{
    echo "# NFS benchmark ($(date -u +%Y-%m-%d), $(nproc) CPUs, libnfs-utils $(dpkg-query -W -f '${Version}' libnfs-utils), nfs-ganesha $(dpkg-query -W -f '${Version}' nfs-ganesha))"
    echo
    echo "Median of $RUNS runs after a warm-up, the two servers alternating run by run; client and server"
    echo "in two namespaces on one veth pair. Load average before: $LOAD0; after: $LOAD1."
    echo
    echo "| server | nfs-cat $MB MB file (MB/s) | nfs-ls -R $NFILES files (files/s) | range of the runs |"
    echo "|---|---:|---:|---|"
    echo "| bootherd | ${CAT[bootherd]} | ${LS[bootherd]} | ${SPREAD[bootherd]} |"
    echo "| nfs-ganesha (VFS) | ${CAT[ganesha]} | ${LS[ganesha]} | ${SPREAD[ganesha]} |"
    echo "| ratio bootherd/ganesha | $(ratio "${CAT[bootherd]}" "${CAT[ganesha]}") | $(ratio "${LS[bootherd]}" "${LS[ganesha]}") | |"
} | tee "$OUT/results.md"
