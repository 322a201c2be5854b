#!/usr/bin/env bash
# The appliance VM: a Debian 12 disk image with the bootherd package installed, whose first boot
# brings bootherd up on its management interface.
#
#   tools/appliance-image.sh [OUTDIR] [--seed DIR] [--deb FILE]   (default OUTDIR: target/appliance)
#
# Makes OUTDIR/disk.img (raw ext4 file system, 2 GiB sparse, label bootherd), OUTDIR/vmlinuz and
# OUTDIR/initrd.img (Debian's kernel and initramfs from the image), and OUTDIR/run.sh which boots
# it with QEMU's direct kernel boot. The management interface is eth0 (net.ifnames=0 on the kernel
# command line), 10.214.0.1/24 by systemd-networkd (edit /etc/systemd/network/10-mgmt.network),
# and the store says site.dhcpinterfaces=eth0. --seed DIR copies DIR into the image as /root/seed and
# runs its seed.sh there (chroot, after the package is installed) to define a cluster in advance.
# --deb FILE installs that package; without it, target/debian/bootherd_*.deb, built by
# tools/build-deb.sh when there is none.
# Not made: a partition table and a boot loader on the disk (the image boots with -kernel/-initrd).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=target/appliance
SEED=
DEB=
while [ $# -gt 0 ]; do
  case "$1" in
    --seed) SEED=$(realpath "$2"); shift 2 ;;
    --deb) DEB=$(realpath "$2"); shift 2 ;;
    *) OUT=$1; shift ;;
  esac
done
mkdir -p "$OUT"
OUT=$(realpath "$OUT")
[ -n "$DEB" ] || DEB=$(ls target/debian/bootherd_*.deb 2>/dev/null | head -1 || true)
if [ -z "$DEB" ]; then
  tools/build-deb.sh >/dev/null
  DEB=$(ls target/debian/bootherd_*.deb | head -1)
fi
DEB=$(realpath "$DEB")
CACHE=$(realpath -m target/pkg-test/archives)
mkdir -p "$CACHE"
ROOT=$(mktemp -d "$OUT/root.XXXXXX")
trap 'rm -rf "$ROOT"' EXIT
SEEDHOOKS=()
if [ -n "$SEED" ]; then
  SEEDHOOKS=(--customize-hook='mkdir -p "$1/root/seed"' --customize-hook="sync-in $SEED /root/seed"
    --customize-hook='chroot "$1" sh -c "cd /root/seed && sh ./seed.sh"' --customize-hook='rm -rf "$1/root/seed"')
fi
APT='chroot "$1" env DEBIAN_FRONTEND=noninteractive apt-get -y -o Dpkg::Options::=--force-confold --no-install-recommends'
mmdebstrap --variant=minbase --mode=root \
  --include=systemd-sysv,udev,dbus,kmod,iproute2,linux-image-amd64,initramfs-tools \
  --dpkgopt=force-unsafe-io \
  --setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
  --setup-hook="sync-in $CACHE /var/cache/apt/archives/" \
  --customize-hook="copy-in $DEB /tmp/" \
  --customize-hook="$APT install /tmp/$(basename "$DEB")" \
  --customize-hook="sync-out /var/cache/apt/archives $CACHE" \
  --customize-hook='rm -f "$1"/tmp/bootherd_*.deb' \
  --customize-hook='echo bootherd > "$1/etc/hostname"' \
  --customize-hook='printf "LABEL=bootherd / ext4 defaults 0 1\n" > "$1/etc/fstab"' \
  --customize-hook='mkdir -p "$1/etc/systemd/network" && printf "[Match]\nName=eth0\n\n[Network]\nAddress=10.214.0.1/24\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n" > "$1/etc/systemd/network/10-mgmt.network"' \
  --customize-hook='chroot "$1" systemctl enable systemd-networkd' \
  --customize-hook='chroot "$1" systemctl enable serial-getty@ttyS0.service' \
  --customize-hook='chroot "$1" passwd -d root' \
  --customize-hook='chroot "$1" bootherd chtab key=dhcpinterfaces site.value=eth0' \
  "${SEEDHOOKS[@]}" \
  bookworm "$ROOT"
cp "$(ls "$ROOT"/boot/vmlinuz-* | head -1)" "$OUT/vmlinuz"
cp "$(ls "$ROOT"/boot/initrd.img-* | head -1)" "$OUT/initrd.img"
rm -f "$OUT/disk.img"
mkfs.ext4 -q -L bootherd -d "$ROOT" "$OUT/disk.img" 2G
cat > "$OUT/run.sh" <<'EOF'
#!/bin/sh
# Boots the appliance VM; its eth0 (the management network) is the tap named by $1 (default tap0).
# Log in on the console as root (no password: set one).
D=$(dirname "$0")
exec qemu-system-x86_64 -machine q35 -m 1024 -nographic \
  -kernel "$D/vmlinuz" -initrd "$D/initrd.img" \
  -append "root=LABEL=bootherd rw console=ttyS0 net.ifnames=0" \
  -drive "file=$D/disk.img,if=virtio,format=raw" \
  -netdev "tap,id=m0,ifname=${1:-tap0},script=no,downscript=no" -device virtio-net-pci,netdev=m0
EOF
chmod +x "$OUT/run.sh"
echo "appliance image: $OUT/disk.img ($(du -h "$OUT/disk.img" | cut -f1) used), boot it with $OUT/run.sh [TAP]"
