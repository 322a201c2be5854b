#!/usr/bin/env bash
# Image pipeline benchmark, in one run on one machine, on the shipped Debian 12 compute profile:
#
#   bench/images.sh                  run as root (mmdebstrap/debootstrap chroots), Debian 12
#   environment: RUNS (3)            timed runs per measurement; the median is reported
#                MIRROR              Debian mirror (default: this machine's apt source)
#                BOOTHERD_BIN        a bootherd binary (default: cargo build --release)
#
# 1. genimage with a warm package cache (target/image-cache, shared with the tests), against the
#    anchor xCAT's own Debian genimage drives: debootstrap --variant=minbase with the same packages
#    and its own warm --cache-dir. (genimage also installs the node-side files, runs the postinstall,
#    builds the initramfs; debootstrap only makes the root.)
# 2. packimage for each compression (gzip via pigz, xz, zstd; cpio) and squashfs: wall time and
#    size, against the anchor xCAT's packimage runs: `find . <exlist> | cpio -H newc -o | pigz`.
# 3. What a node pays per compression: unpacking the packed image into a tmpfs with the tools the
#    initramfs uses (busybox gunzip/unxz + busybox cpio; zstd), as wall time on this machine's
#    CPU (a booting node's CPU, not this machine's, sets the real figure; the ratios carry over).
# Outputs: bench/out/images/results.md and runs.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
[ "$(id -u)" = 0 ] || { echo "$0: run as root (chroots)" >&2; exit 1; }
RUNS=${RUNS:-3}
[[ $RUNS =~ ^[0-9]+$ ]] || { echo "RUNS: a number" >&2; exit 2; }
for c in mmdebstrap:mmdebstrap debootstrap:debootstrap pigz:pigz xz:xz-utils zstd:zstd mksquashfs:squashfs-tools busybox:busybox cpio:cpio bc:bc; do
    command -v "${c%%:*}" > /dev/null || { echo "$0: ${c%%:*} missing: apt-get install ${c#*:}" >&2; exit 1; }
done
if [ -z "${MIRROR:-}" ]; then
    MIRROR=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources 2> /dev/null | grep -v security | head -n 1)
    [ -n "$MIRROR" ] || MIRROR=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2> /dev/null)
    [ -n "$MIRROR" ] || MIRROR=http://deb.debian.org/debian
fi
BIN=${BOOTHERD_BIN:-}
if [ -z "$BIN" ]; then
    cargo build --release --quiet
    BIN=$ROOT/target/release/bootherd
fi
OUT=$ROOT/bench/out/images
mkdir -p "$OUT"
: > "$OUT/runs.txt"
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
W=$(mktemp -d /var/tmp/bh-images.XXXXXX)
cleanup() {
    umount "$W/unpack" 2> /dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT
export BOOTHERD_DB=sqlite:$W/db
CACHE=$ROOT/target/image-cache
mkdir -p "$CACHE/debootstrap"
PROF=$ROOT/netboot-templates/netboot/debian
"$BIN" chtab key=installdir site.value="$W/install" > /dev/null
"$BIN" chtab key=tftpdir site.value="$W/tftpboot" > /dev/null
"$BIN" chtab key=imagepkgcache site.value="$CACHE" > /dev/null
IMG=$W/install/netboot/debian12/x86_64/compute
"$BIN" mkdef -t osimage -o bench imagetype=linux provmethod=netboot osvers=debian12 osarch=x86_64 profile=compute \
    pkglist="$PROF/compute.pkglist" exlist="$PROF/compute.exlist" postinstall="$PROF/compute.postinstall" \
    "pkgdir=$MIRROR bookworm main" rootimgdir="$IMG" > /dev/null

secs() { # command… → wall seconds
    local s e
    s=$(date +%s.%N)
    "$@" > /dev/null 2>> "$OUT/runs.txt"
    e=$(date +%s.%N)
    echo "$e - $s" | bc -l
}
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f", m}'; }
minmax() { sort -n | awk 'NR==1{mn=$1} {mx=$1} END {printf "%.2f–%.2f", mn, mx}'; }

PKGS=$(grep -v '^#' "$PROF/compute.pkglist" | xargs | tr ' ' ',')
log "warming both package caches (first run downloads)"
"$BIN" genimage bench > /dev/null
rm -rf "$W/ds"
debootstrap --variant=minbase --include="$PKGS,linux-image-amd64,busybox-static" --cache-dir="$CACHE/debootstrap" \
    bookworm "$W/ds" "$MIRROR" > /dev/null 2>> "$OUT/runs.txt"

declare -A T
for i in $(seq "$RUNS"); do
    log "genimage run $i"
    t=$(secs "$BIN" genimage bench); T[gen]+="$t "
    echo "genimage $t" >> "$OUT/runs.txt"
    rm -rf "$W/ds"
    log "debootstrap run $i"
    t=$(secs debootstrap --variant=minbase --include="$PKGS,linux-image-amd64,busybox-static" --cache-dir="$CACHE/debootstrap" bookworm "$W/ds" "$MIRROR")
    T[ds]+="$t "
    echo "debootstrap $t" >> "$OUT/runs.txt"
done

# xCAT's packimage pipeline, exlist as find -path exclusions.
xcat_pack() {
    local args=() l
    while read -r l; do
        case "$l" in '' | '#'* | '+'*) continue ;; esac
        args+=(! -path "$l")
    done < "$PROF/compute.exlist"
    (cd "$IMG/rootimg" && find . "${args[@]}" | cpio -H newc -o --quiet | pigz -c > "$W/xcat.cpio.gz")
}
declare -A SIZE
for i in $(seq "$RUNS"); do
    for c in gzip xz zstd; do
        log "packimage -c $c run $i"
        t=$(secs "$BIN" packimage -c "$c" bench); T[pack_$c]+="$t "
        f=$(ls "$IMG"/rootimg.cpio.*)
        SIZE[$c]=$(stat -c %s "$f")
        cp "$f" "$W/packed.$c"
        echo "packimage-$c $t ${SIZE[$c]}" >> "$OUT/runs.txt"
    done
    log "packimage -m squashfs run $i"
    t=$(secs "$BIN" packimage -m squashfs -c xz bench); T[pack_sfs]+="$t "
    SIZE[sfs]=$(stat -c %s "$IMG/rootimg.sfs")
    echo "packimage-squashfs $t ${SIZE[sfs]}" >> "$OUT/runs.txt"
    log "xCAT pipeline run $i"
    t=$(secs xcat_pack); T[xcat]+="$t "
    SIZE[xcat]=$(stat -c %s "$W/xcat.cpio.gz")
    echo "xcat-find-cpio-pigz $t ${SIZE[xcat]}" >> "$OUT/runs.txt"
done

mkdir -p "$W/unpack"
mount -t tmpfs -o size=4g tmpfs "$W/unpack"
unpack() { # compression
    rm -rf "${W:?}/unpack/"*
    case $1 in
    gzip) (cd "$W/unpack" && busybox gunzip -c "$W/packed.gzip" | busybox cpio -idm 2> /dev/null) ;;
    xz) (cd "$W/unpack" && busybox unxz -c "$W/packed.xz" | busybox cpio -idm 2> /dev/null) ;;
    zstd) (cd "$W/unpack" && zstd -dc "$W/packed.zstd" | busybox cpio -idm 2> /dev/null) ;;
    esac
}
for i in $(seq "$RUNS"); do
    for c in gzip xz zstd; do
        log "node-side unpack $c run $i"
        t=$(secs unpack "$c"); T[un_$c]+="$t "
        echo "unpack-$c $t" >> "$OUT/runs.txt"
    done
done
ROOTSIZE=$(du -sb "$W/unpack" | cut -f1)

m() { echo "${T[$1]}" | tr ' ' '\n' | grep . | median; }
r() { echo "${T[$1]}" | tr ' ' '\n' | grep . | minmax; }
mib() { echo "scale=1; $1 / 1048576" | bc -l; }
ratio() { echo "scale=2; $1 / $2" | bc -l; }
{
    echo "# Image pipeline — $(date -u +%Y-%m-%d), $(nproc) cores, $RUNS runs each (median, min–max in seconds)"
    echo
    echo "Debian 12 compute profile ($(grep -vc '^#' "$PROF/compute.pkglist") packages + kernel + busybox-static), warm package caches, mirror $MIRROR."
    echo "Unpacked root after the exlist: $(mib "$ROOTSIZE") MiB. Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
    echo
    echo "| step | bootherd | anchor | ratio (anchor / bootherd) |"
    echo "|---|---|---|---|"
    echo "| genimage (root + node-side + postinstall + initramfs) vs debootstrap (root only) | $(m gen) s ($(r gen)) | $(m ds) s ($(r ds)) | $(ratio "$(m ds)" "$(m gen)") |"
    echo "| packimage cpio+gzip (pigz) vs xCAT's find \\| cpio \\| pigz | $(m pack_gzip) s ($(r pack_gzip)), $(mib "${SIZE[gzip]}") MiB | $(m xcat) s ($(r xcat)), $(mib "${SIZE[xcat]}") MiB | $(ratio "$(m xcat)" "$(m pack_gzip)") |"
    echo
    echo "| compression | packimage | size | node-side unpack (busybox / zstd into tmpfs) |"
    echo "|---|---|---|---|"
    for c in gzip xz zstd; do
        echo "| cpio + $c | $(m pack_$c) s ($(r pack_$c)) | $(mib "${SIZE[$c]}") MiB | $(m un_$c) s ($(r un_$c)) |"
    done
    echo "| squashfs (xz) | $(m pack_sfs) s ($(r pack_sfs)) | $(mib "${SIZE[sfs]}") MiB | none (mounted, read on demand) |"
} > "$OUT/results.md"
cat "$OUT/results.md"
