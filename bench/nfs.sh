#!/usr/bin/env bash
# NFS benchmark, in one run on one machine, with the same files: bootherd vs nfs-ganesha (FSAL_VFS).
#
#   bench/nfs.sh                      run as root (network namespaces), Debian 12
#   environment: MB (1024)           size of the file read with nfs-cat
#                FILES (50000)       files in the tree listed with nfs-ls -R (100 directories)
#                RUNS (3)            timed runs per measurement; the best one is reported
#                BOOTHERD_BIN        a bootherd binary (default: cargo build --release)
#
# Both servers export the same directory read-only from the same ext4 disk; every measurement is
# preceded by one untimed warm-up run, so both serve from the page cache. Clients are libnfs-utils
# 4.0 tools in a second namespace, joined by a veth pair (nothing touches the host's interfaces):
#   ns bhn-srv: bhn0 10.99.81.1/24   <- bootherd (2049, portmapper on 111), then ganesha (12049/12048 + rpcbind)
#   ns bhn-cli: bhn1 10.99.81.2/24   <- nfs-cat / nfs-ls
# nfs-cat MB/s = file size / wall time of the client process (1 MB = 10^6 bytes); nfs-ls -R
# files/s = entries listed / wall time. The byte count and entry count are checked.
# ganesha runs as in the test bed (§4): rpcbind and ganesha.nfsd in a private mount namespace.
# Outputs: bench/out/nfs/results.md, server logs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
[ "$(id -u)" = 0 ] || { echo "$0: run as root (network namespaces)" >&2; exit 1; }
MB=${MB:-1024}
FILES=${FILES:-50000}
RUNS=${RUNS:-3}
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
# best wall time of RUNS runs of a command in the client namespace, after one warm-up run;
# the command's stdout goes to $W/last.out
best() {
    local i t0 t1 b=
    ip netns exec $CLI_NS "$@" > "$W/last.out"
    for i in $(seq 1 "$RUNS"); do
        t0=$(now)
        ip netns exec $CLI_NS "$@" > "$W/last.out"
        t1=$(now)
        b=$(echo "$t0 $t1 ${b:-1e9}" | awk '{d=$2-$1; print (d<$3)?d:$3}')
    done
    echo "$b"
}

declare -A CAT LS
measure() { # measure NAME URL_BASE URL_QUERY
    local name=$1 base=$2 q=$3 t n
    t=$(best sh -c "nfs-cat '$base/big.bin$q' | wc -c")
    n=$(cat "$W/last.out")
    [ "$n" = "$SIZE" ] || { echo "$0: $name: nfs-cat gave $n bytes, not $SIZE" >&2; exit 1; }
    CAT[$name]=$(echo "$SIZE $t" | awk '{printf "%.0f", $1/1e6/$2}')
    log "$name: nfs-cat ${MB} MB in ${t}s = ${CAT[$name]} MB/s"
    t=$(best sh -c "nfs-ls -R '$base/tree$q' | grep -c '/file[0-9]'")
    n=$(cat "$W/last.out")
    [ "$n" = "$NFILES" ] || { echo "$0: $name: nfs-ls -R listed $n files, not $NFILES" >&2; exit 1; }
    LS[$name]=$(echo "$NFILES $t" | awk '{printf "%.0f", $1/$2}')
    log "$name: nfs-ls -R of $NFILES files in ${t}s = ${LS[$name]} files/s"
}

# --- bootherd ---------------------------------------------------------------------------------------
export BOOTHERD_DB=sqlite:$W/bootherd.db
"$BOOTHERD_BIN" mkdef -t osimage -o bench provmethod=statelite rootimgdir="$W/netboot/compute" \
    osvers=rhels8 osarch=x86_64 profile=compute imagetype=linux > /dev/null
RUST_LOG=warn ip netns exec $SRV_NS "$BOOTHERD_BIN" serve --no-dhcp --no-tftp --no-http --no-status-port \
    > "$OUT/bootherd.log" 2>&1 &
PIDS+=($!)
wait_port 2049 || { echo "$0: bootherd did not listen on 2049" >&2; cat "$OUT/bootherd.log" >&2; exit 1; }
measure bootherd "nfs://$SRV_IP$EXP" "?nfsport=2049&mountport=2049"
kill "${PIDS[-1]}"
wait "${PIDS[-1]}" 2> /dev/null || true

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
measure ganesha "nfs://$SRV_IP$EXP" "?nfsport=12049&mountport=12048"

ratio() { echo "$1 $2" | awk '{printf "%.2f", $1/$2}'; }
{
    echo "# NFS benchmark ($(date -u +%Y-%m-%d), $(nproc) CPUs, libnfs-utils $(dpkg-query -W -f '${Version}' libnfs-utils), nfs-ganesha $(dpkg-query -W -f '${Version}' nfs-ganesha))"
    echo
    echo "Best of $RUNS after a warm-up, client and server in two namespaces on one veth pair."
    echo
    echo "| server | nfs-cat $MB MB file (MB/s) | nfs-ls -R $NFILES files (files/s) |"
    echo "|---|---:|---:|"
    echo "| bootherd | ${CAT[bootherd]} | ${LS[bootherd]} |"
    echo "| nfs-ganesha (VFS) | ${CAT[ganesha]} | ${LS[ganesha]} |"
    echo "| ratio bootherd/ganesha | $(ratio "${CAT[bootherd]}" "${CAT[ganesha]}") | $(ratio "${LS[bootherd]}" "${LS[ganesha]}") |"
} | tee "$OUT/results.md"
