#!/bin/sh
# Builds bootherd's statelite initramfs (the `initrd-statelite.gz` nodeset points at) from a
# kernel's modules directory and a static busybox — both from Debian packages, for example:
#
#   apt-get download linux-image-amd64-dependency busybox-static; dpkg -x … x
#   statelite/mkinitrd.sh -m x/lib/modules/6.1.0-56-amd64 -b x/bin/busybox \
#       -o /tftpboot/xcat/osimage/<image>/initrd-statelite.gz [-a extra_module …]
#
# The kernel itself must be the same version (copy its vmlinuz as xcat/osimage/<image>/kernel).
# Modules: the NFS client and common NIC drivers, each with the modules it depends on (read from
# the module's own .modinfo, so no depmod or modinfo is needed), loaded in dependency order.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
MODS=
BB=
OUT=
EXTRA=
usage() {
    echo "usage: $0 -m <lib/modules/VERSION> -b <static busybox> -o <out.gz> [-a module]…" >&2
    exit 2
}
while getopts m:b:o:a: opt; do
    case $opt in
    m) MODS=$OPTARG ;;
    b) BB=$OPTARG ;;
    o) OUT=$OPTARG ;;
    a) EXTRA="$EXTRA $OPTARG" ;;
    *) usage ;;
    esac
done
[ -n "$MODS" ] && [ -n "$BB" ] && [ -n "$OUT" ] || usage
[ -d "$MODS/kernel" ] || { echo "mkinitrd: $MODS has no kernel/ directory" >&2; exit 1; }
[ -x "$BB" ] || { echo "mkinitrd: $BB is not an executable busybox" >&2; exit 1; }
for t in cpio gzip find; do
    command -v $t >/dev/null || { echo "mkinitrd: needs $t" >&2; exit 1; }
done

WANT="nfsv3 virtio_net virtio_pci e1000 e1000e igb ixgbe tg3 bnx2 bnxt_en i40e $EXTRA"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/root/bin" "$work/root/lib/modules" "$work/root/etc"

# Module name → file (names use _ and - interchangeably).
find "$MODS/kernel" -name '*.ko' |
    awk -F/ '{ n = $NF; sub(/\.ko$/, "", n); gsub(/-/, "_", n); print n, $0 }' >"$work/index"
path_of() {
    awk -v n="$(echo "$1" | tr '-' '_')" '$1 == n { print $2; found = 1; exit } END { exit !found }' "$work/index"
}
# Depth-first: dependencies before the module itself.
: >"$work/order"
add() {
    grep -qx "$1" "$work/seen" 2>/dev/null && return 0
    echo "$1" >>"$work/seen"
    f=$(path_of "$1") || { echo "mkinitrd: module $1 not found (built in?)" >&2; return 0; }
    deps=$(tr '\0' '\n' <"$f" | sed -n 's/^depends=//p' | head -n 1 | tr ',' ' ')
    for d in $deps; do add "$d"; done
    echo "$f" >>"$work/order"
}
for m in $WANT; do add "$m"; done

: >"$work/root/modules.order"
while read -r f; do
    cp "$f" "$work/root/lib/modules/"
    basename "$f" >>"$work/root/modules.order"
done <"$work/order"

cp "$BB" "$work/root/bin/busybox"
cp "$here/initrd-init" "$work/root/init"
cat >"$work/root/etc/udhcpc.script" <<'EOF'
#!/bin/sh
# udhcpc hook: configure the interface from the lease.
case "$1" in
bound | renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route add default via "${router%% *}" dev "$interface"
    echo "$hostname" >/etc/hostname
    [ -n "$hostname" ] && hostname "$hostname"
    ;;
esac
exit 0
EOF
chmod 755 "$work/root/init" "$work/root/etc/udhcpc.script" "$work/root/bin/busybox"
(cd "$work/root" && find . | cpio -o -H newc --quiet) | gzip -9 >"$OUT"
echo "mkinitrd: $OUT ($(wc -c <"$OUT") bytes, $(wc -l <"$work/root/modules.order") modules)"
