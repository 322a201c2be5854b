#!/bin/sh
# Builds a busybox initramfs (newc cpio, gzip) with kernel modules, for bootherd's statelite
# initrd (statelite/mkinitrd.sh) and genesis (initrd/mknb.sh):
#
#   initrd/mkinitramfs.sh -m <lib/modules/VERSION> -b <static busybox> -i <init script> -o <out.gz>
#       [-a module]… [-f source:dest]… [-x /path/to/dynamic/binary]…
#
# Modules: the NFS client and common NIC drivers plus `-a` ones, each with the modules it depends
# on (read from the module's own .modinfo, so no depmod or modinfo is needed), listed in
# dependency order in /modules.order for the init to insmod. `-f` copies a file in; `-x` copies a
# dynamically linked program with the libraries `ldd` names. The kernel booting it must be the
# version of the modules.
set -eu

MODS=
BB=
OUT=
INIT=
EXTRA=
FILES=
BINS=
usage() {
    echo "usage: $0 -m <lib/modules/VERSION> -b <static busybox> -i <init> -o <out.gz> [-a module]… [-f src:dest]… [-x program]…" >&2
    exit 2
}
while getopts m:b:o:a:i:f:x: opt; do
    case $opt in
    m) MODS=$OPTARG ;;
    b) BB=$OPTARG ;;
    o) OUT=$OPTARG ;;
    i) INIT=$OPTARG ;;
    a) EXTRA="$EXTRA $OPTARG" ;;
    f) FILES="$FILES $OPTARG" ;;
    x) BINS="$BINS $OPTARG" ;;
    *) usage ;;
    esac
done
[ -n "$MODS" ] && [ -n "$BB" ] && [ -n "$OUT" ] && [ -n "$INIT" ] || usage
[ -f "$INIT" ] || { echo "mkinitramfs: no init script $INIT" >&2; exit 1; }
[ -d "$MODS/kernel" ] || { echo "mkinitramfs: $MODS has no kernel/ directory" >&2; exit 1; }
[ -x "$BB" ] || { echo "mkinitramfs: $BB is not an executable busybox" >&2; exit 1; }
for t in cpio gzip find; do
    command -v $t >/dev/null || { echo "mkinitramfs: needs $t" >&2; exit 1; }
done

WANT="nfsv3 virtio_net virtio_pci e1000 e1000e igb ixgbe tg3 bnx2 bnxt_en i40e $EXTRA"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/root/bin" "$work/root/lib/modules" "$work/root/etc"

# Module name → file (names use _ and - interchangeably). Compressed modules (.ko.xz, .ko.zst,
# .ko.gz: RHEL, newer Debian) are read and copied uncompressed, so busybox insmod loads them.
find "$MODS/kernel" \( -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' -o -name '*.ko.gz' \) |
    awk -F/ '{ n = $NF; sub(/\.ko(\.(xz|zst|gz))?$/, "", n); gsub(/-/, "_", n); print n, $0 }' >"$work/index"
raw() {
    case "$1" in
    *.xz) xz -dc "$1" ;;
    *.zst) zstd -dc "$1" ;;
    *.gz) gzip -dc "$1" ;;
    *) cat "$1" ;;
    esac
}
path_of() {
    awk -v n="$(echo "$1" | tr '-' '_')" '$1 == n { print $2; found = 1; exit } END { exit !found }' "$work/index"
}
# Depth-first: dependencies before the module itself. sh has no local variables, so nothing set
# before a recursive call is used after it: the path is looked up again.
: >"$work/order"
: >"$work/seen"
add() {
    grep -qx "$1" "$work/seen" && return 0
    echo "$1" >>"$work/seen"
    path_of "$1" >/dev/null || { echo "mkinitramfs: module $1 not found (built in?)" >&2; return 0; }
    for d in $(raw "$(path_of "$1")" | tr '\0' '\n' | sed -n 's/^depends=//p' | head -n 1 | tr ',' ' '); do
        add "$d"
    done
    path_of "$1" >>"$work/order"
}
for m in $WANT; do add "$m"; done

: >"$work/root/modules.order"
while read -r f; do
    b=$(basename "$f")
    b=${b%.xz}
    b=${b%.zst}
    b=${b%.gz}
    raw "$f" >"$work/root/lib/modules/$b"
    echo "$b" >>"$work/root/modules.order"
done <"$work/order"

cp "$BB" "$work/root/bin/busybox"
# The init's #!/bin/sh must exist before it can install the other applets.
ln -s busybox "$work/root/bin/sh"
cp "$INIT" "$work/root/init"
for f in $FILES; do
    src=${f%%:*}
    dst=$work/root/${f#*:}
    mkdir -p "$(dirname "$dst")"
    cp "$src" "$dst"
    chmod 755 "$dst"
done
for b in $BINS; do
    [ -x "$b" ] || { echo "mkinitramfs: $b is not a program" >&2; exit 1; }
    mkdir -p "$work/root/usr/bin"
    cp "$b" "$work/root/usr/bin/"
    for lib in $(ldd "$b" 2>/dev/null | awk '/=> \// { print $3 } /^\t\/lib/ { print $1 }'); do
        mkdir -p "$work/root$(dirname "$lib")"
        cp -L "$lib" "$work/root$lib"
    done
done
cat >"$work/root/etc/udhcpc.script" <<'EOF'
#!/bin/sh
# udhcpc hook: configure the interface from the lease.
case "$1" in
bound | renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route add default via "${router%% *}" dev "$interface"
    [ -n "$serverid" ] && echo "$serverid" >/tmp/dhcp-server
    [ -n "$hostname" ] && hostname "$hostname"
    ;;
esac
exit 0
EOF
chmod 755 "$work/root/init" "$work/root/etc/udhcpc.script" "$work/root/bin/busybox"
(cd "$work/root" && find . | cpio -o -H newc --quiet) | gzip -9 >"$OUT"
echo "mkinitramfs: $OUT ($(wc -c <"$OUT") bytes, $(wc -l <"$work/root/modules.order") modules)"
