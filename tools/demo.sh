#!/usr/bin/env bash
# First-run lab: watch a node network-boot through bootherd, on this machine, in about a minute.
#
# Builds a private lab (nothing on the machine's real interfaces is touched):
#   - a network namespace "bhdemo-<id>" holding a bridge br0 (10.213.0.1/24) and a tap for the VM;
#   - a throwaway store and TFTP root in a temporary directory;
#   - bootherd serve inside the namespace (DHCP on br0 only, TFTP, HTTP, NFS);
#   - one QEMU VM (software emulation, no disk) that PXE-boots from it.
# It defines a small cluster (a network, a node with the VM's MAC, an osimage made of a Debian
# kernel and a tiny busybox initramfs), sets the node to boot that image (nodeset), boots the VM and
# explains each step as the appliance's log and the VM's console show it; then sets the node to
# boot from its disk and tears everything down (also on Ctrl-C or failure).
#
# Needs root (network namespaces), qemu-system-x86 + ipxe-qemu, cpio, iproute2, Debian's boot
# loaders (boot-assets/install.sh installs them with apt when missing) and the guest kernel
# (tests/prepare-assets.sh downloads it into target/test-assets).
# Usage: tools/demo.sh            (BOOTHERD=/path/to/bootherd to use another binary)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

ID=${BOOTHERD_DEMO_ID:-$$}
NS=bhdemo-$ID
NET=10.213.0
MAC=52:54:00:d3:00:01
NODE=demo01
IMG=demo-x86_64-netboot-compute
WAIT=${BOOTHERD_DEMO_TIMEOUT:-240}

say()  { printf '\n\033[1m== %s\033[0m\n' "$*"; }
note() { printf '   %s\n' "$*"; }
die()  { printf '\ndemo: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (it creates a network namespace)"
for p in ip qemu-system-x86_64 cpio; do
  command -v "$p" >/dev/null || die "$p is missing (apt-get install iproute2 qemu-system-x86 ipxe-qemu cpio)"
done

if [ -n "${BOOTHERD:-}" ]; then
  BH=$BOOTHERD
elif [ -x target/release/bootherd ]; then
  BH=$REPO/target/release/bootherd
elif command -v bootherd >/dev/null; then
  BH=$(command -v bootherd)
else
  say "Building bootherd (cargo build --release)"
  cargo build --release
  BH=$REPO/target/release/bootherd
fi

DIR=$(mktemp -d /tmp/bootherd-demo.XXXXXX)
DAEMON=
VM=
cleanup() {
  set +e
  [ -n "$VM" ] && kill "$VM" 2>/dev/null && wait "$VM" 2>/dev/null
  [ -n "$DAEMON" ] && kill "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null
  ip netns del "$NS" 2>/dev/null
  rm -rf "$DIR"
  printf '\n== cleaned up: namespace %s, the VM, the appliance and %s are gone\n' "$NS" "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export BOOTHERD_DB=sqlite:$DIR/demo.db
bh() { "$BH" "$@"; }

say "1. The guest: a Debian kernel and a busybox initramfs"
bash tests/prepare-assets.sh >/dev/null
A=$REPO/target/test-assets
mkdir -p "$DIR/initrd/bin" "$DIR/initrd/proc" "$DIR/initrd/sys" "$DIR/initrd/dev"
cp "$A/busybox" "$DIR/initrd/bin/busybox"
for a in sh mount echo cat poweroff sleep; do ln -s busybox "$DIR/initrd/bin/$a"; done
cat > "$DIR/initrd/init" <<'EOF'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo "DEMO-NODE: the node's own /init is running"
echo "DEMO-NODE: kernel command line from bootherd: $(cat /proc/cmdline)"
poweroff -f
EOF
chmod +x "$DIR/initrd/init"
note "kernel $(du -h "$A/vmlinuz" | cut -f1), initramfs with busybox: /init prints the command line it was given, then powers off"

say "2. The appliance's files: a store and a TFTP root with Debian's boot loaders"
TFTP=$DIR/tftpboot
bash boot-assets/install.sh "$TFTP" | sed 's/^/   /'
mkdir -p "$TFTP/xcat/osimage/$IMG"
cp "$A/vmlinuz" "$TFTP/xcat/osimage/$IMG/vmlinuz"
(cd "$DIR/initrd" && find . | cpio -o -H newc --quiet) | gzip -1 > "$TFTP/xcat/osimage/$IMG/initrd.img"
note "store: $BOOTHERD_DB"

say "3. A small cluster, with xCAT's commands"
run() { printf '   $ bootherd %s\n' "${*:2}"; "$@" 2>&1 | sed 's/^/     /'; }
run bh chtab key=tftpdir site.value="$TFTP"
run bh chtab key=installdir site.value="$DIR/install"
run bh chtab key=dhcpinterfaces site.value=br0
run bh mkdef -t network -o demonet net=$NET.0 mask=255.255.255.0 dynamicrange=$NET.100-$NET.120
run bh mkdef -t osimage -o $IMG imagetype=linux provmethod=install osvers=rhels9.4 osarch=x86_64 profile=compute
run bh mkdef -t node -o $NODE groups=compute,all mac=$MAC ip=$NET.11 netboot=pxe serialport=0 serialspeed=115200
run bh nodeset $NODE osimage=$IMG
note "nodeset rendered the node's boot file (by MAC, by IP, ...); what pxelinux will be sent"
note "(an install image: the kernel gets the installer's command line, inst.repo= inst.ks=):"
bh nodeset $NODE show 2>&1 | sed -n '1,7p' | sed 's/^/     /'

say "4. The private network: namespace $NS, bridge br0 at $NET.1, a tap for the VM"
ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" link add br0 type bridge forward_delay 0 stp_state 0
ip -n "$NS" addr add $NET.1/24 dev br0
ip -n "$NS" tuntap add dev tap0 mode tap
ip -n "$NS" link set tap0 master br0
ip -n "$NS" link set tap0 up
ip -n "$NS" link set br0 up
note "nothing leaves this namespace: the machine's own interfaces are not involved"

say "5. bootherd serve, inside the namespace"
ip netns exec "$NS" env RUST_LOG=info,bootherd=debug "$BH" serve >"$DIR/appliance.log" 2>&1 &
DAEMON=$!
for _ in $(seq 100); do grep -q "bootherd ready" "$DIR/appliance.log" && break; sleep 0.2; done
grep -q "bootherd ready" "$DIR/appliance.log" || { cat "$DIR/appliance.log"; die "bootherd did not start"; }
grep -E "listening" "$DIR/appliance.log" | sed -E 's/^[^ ]+ +//; s/^/   /'

say "6. Power on the VM (QEMU, SeaBIOS + iPXE network ROM, MAC $MAC)"
ip netns exec "$NS" qemu-system-x86_64 -machine q35 -accel tcg -m 512 -smp 1 \
  -nographic -no-reboot -monitor none -serial "file:$DIR/console.txt" -boot n \
  -netdev tap,id=n0,ifname=tap0,script=no,downscript=no \
  -device virtio-net-pci,netdev=n0,mac=$MAC >/dev/null 2>&1 &
VM=$!
note "software emulation: the firmware takes a few seconds"

# Each milestone: a pattern in the appliance's log or the VM's console, and what it means.
seen() { grep -aq -- "$2" "$DIR/$1" 2>/dev/null; }
steps=(
  "appliance.log|Offer.*for $MAC|the firmware asked for an address: bootherd knows $MAC as $NODE and offers $NET.11 with next-server and the boot file (pxelinux.0)"
  "appliance.log|Ack.*for $MAC|the firmware accepted: the lease is recorded in the store (dhcpleases)"
  "appliance.log|TFTP sent.*pxelinux.0|the firmware fetched pxelinux.0 over TFTP (Debian's own, copied by boot-assets/install.sh)"
  "appliance.log|TFTP sent.*pxelinux.cfg/01-52-54-00-d3-00-01|pxelinux fetched its configuration by MAC: the file nodeset rendered"
  "appliance.log|TFTP sent.*xcat/osimage/$IMG/vmlinuz|pxelinux loaded the image's kernel"
  "appliance.log|TFTP sent.*xcat/osimage/$IMG/initrd.img|... and its initramfs"
  "console.txt|DEMO-NODE: the node's own /init|the node is running the image bootherd chose for it"
)
start=$SECONDS
for s in "${steps[@]}"; do
  file=${s%%|*}; rest=${s#*|}; pat=${rest%%|*}; what=${rest#*|}
  until seen "$file" "$pat"; do
    kill -0 "$VM" 2>/dev/null || [ "$file" != console.txt ] || seen console.txt "DEMO-NODE" || die "the VM stopped early; console: $(tr -d '\r' < "$DIR/console.txt" | tail -5)"
    [ $((SECONDS - start)) -lt "$WAIT" ] || { tail -20 "$DIR/appliance.log"; die "no sign of: $what (after ${WAIT}s)"; }
    sleep 0.5
  done
  printf '   [%3ss] %s\n' $((SECONDS - start)) "$what"
  if [ "$file" = appliance.log ]; then
    grep -a -- "$pat" "$DIR/appliance.log" | head -1 | sed -E 's/^[^ ]+ +//' | cut -c1-150 | sed 's/^/           log: /'
  fi
done
grep -a "DEMO-NODE: kernel command line" "$DIR/console.txt" | tr -d "\r" | sed 's/^/           console: /'
for _ in $(seq 40); do kill -0 "$VM" 2>/dev/null || break; sleep 0.25; done

say "7. Next boot from the local disk"
run bh nodeset $NODE boot
run bh nodeset $NODE stat
note "pxelinux would now be told LOCALBOOT: the node boots its installed system"

say "Done: $NODE was booted end to end through bootherd in $((SECONDS - start)) s"
