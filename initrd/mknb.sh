#!/bin/sh
# Builds genesis, bootherd's discovery image, into a TFTP root (what `bootherd mknb` runs):
#   <tftpdir>/xcat/genesis.kernel.<arch>   the kernel
#   <tftpdir>/xcat/genesis.fs.<arch>.gz    busybox, NIC/IPMI modules, ipmitool, initrd/genesis-init
#                                          as /init and initrd/bmcsetup
#
#   initrd/mknb.sh <arch> <tftpdir> [-k vmlinuz -m lib/modules/VERSION -b busybox] [-x ipmitool]
#
# Without -k/-m/-b the kernel (linux-image-amd64's current version) and busybox-static are
# downloaded from the machine's Debian mirrors with apt-get download and cached in
# $BOOTHERD_CACHE (/var/cache/bootherd). ipmitool is this machine's (/usr/bin/ipmitool) unless -x
# names another; without one genesis still discovers but cannot run bmcsetup.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
[ $# -ge 2 ] || { echo "usage: $0 <arch> <tftpdir> [-k vmlinuz -m modules -b busybox] [-x ipmitool]" >&2; exit 2; }
ARCH=$1
TFTP=$2
shift 2
K=
M=
B=
X=$(command -v ipmitool || true)
while getopts k:m:b:x: opt; do
    case $opt in
    k) K=$OPTARG ;;
    m) M=$OPTARG ;;
    b) B=$OPTARG ;;
    x) X=$OPTARG ;;
    *) exit 2 ;;
    esac
done
if [ -z "$K" ] || [ -z "$M" ] || [ -z "$B" ]; then
    [ "$ARCH" = x86_64 ] || { echo "mknb: for $ARCH give -k, -m and -b (only x86_64 is fetched from Debian)" >&2; exit 1; }
    CACHE=${BOOTHERD_CACHE:-/var/cache/bootherd}/genesis-$ARCH
    if [ ! -d "$CACHE/x/lib/modules" ]; then
        mkdir -p "$CACHE"
        kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
        [ -n "$kpkg" ] || { echo "mknb: cannot find linux-image-amd64's kernel package (apt-get update?)" >&2; exit 1; }
        (cd "$CACHE" && apt-get download -q "$kpkg" busybox-static >/dev/null) || { echo "mknb: apt-get download $kpkg busybox-static failed" >&2; exit 1; }
        for d in "$CACHE"/*.deb; do dpkg -x "$d" "$CACHE/x"; done
    fi
    K=$(ls "$CACHE"/x/boot/vmlinuz-* | head -n 1)
    M=$(ls -d "$CACHE"/x/lib/modules/* | head -n 1)
    B=$CACHE/x/bin/busybox
fi
mkdir -p "$TFTP/xcat"
xopt=
if [ -n "$X" ] && [ -x "$X" ]; then
    xopt="-x $X"
else
    echo "mknb: no ipmitool: genesis will discover but cannot run bmcsetup" >&2
fi
# sysclone's deploy: this server's partitioning, filesystem and archive tools (util-linux, e2fsprogs,
# dosfstools, xfsprogs, GNU tar), each with its libraries; missing ones are named.
for t in sfdisk blkid mkswap mke2fs mkfs.vfat mkfs.xfs tar; do
    p=$(PATH=/usr/sbin:/usr/bin:/sbin:/bin command -v $t || true)
    if [ -n "$p" ]; then xopt="$xopt -x $p"; else echo "mknb: no $t here: genesis cannot use it for sysclone" >&2; fi
done
[ -f /etc/mke2fs.conf ] && xopt="$xopt -f /etc/mke2fs.conf:etc/mke2fs.conf"
# shellcheck disable=SC2086
sh "$here/mkinitramfs.sh" -m "$M" -b "$B" -i "$here/genesis-init" -f "$here/bmcsetup:bin/bmcsetup" \
    -a ipmi_si -a ipmi_devintf -a ipmi_ssif -a virtio_blk -a nvme -a ahci -a sd_mod \
    -a crc32c_generic -a ext4 -a vfat -a nls_cp437 -a nls_ascii -a nls_utf8 -a xfs -a efivarfs $xopt \
    -o "$TFTP/xcat/genesis.fs.$ARCH.gz.new"
cp "$K" "$TFTP/xcat/genesis.kernel.$ARCH.new"
mv "$TFTP/xcat/genesis.kernel.$ARCH.new" "$TFTP/xcat/genesis.kernel.$ARCH"
mv "$TFTP/xcat/genesis.fs.$ARCH.gz.new" "$TFTP/xcat/genesis.fs.$ARCH.gz"
echo "mknb: $TFTP/xcat/genesis.kernel.$ARCH and $TFTP/xcat/genesis.fs.$ARCH.gz"
