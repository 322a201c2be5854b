#!/usr/bin/env bash
# Guest artefacts for the VM tests, from Debian's packages, cached under target/test-assets:
# a kernel (linux-image-amd64's current version), its modules (the statelite VM loads the NFS
# client and virtio_net from them) and a static busybox for the initramfs the tests build. Nothing
# is installed on the machine: the packages are downloaded and unpacked.
set -euo pipefail
cd "$(dirname "$0")/.."
A=target/test-assets
mkdir -p "$A"
if [ -s "$A/vmlinuz" ] && [ -x "$A/busybox" ] && [ -d "$A/modules/kernel" ]; then exit 0; fi
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$work"
kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
if [ -z "$kpkg" ]; then
  apt-get update -qq
  kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
fi
[ -n "$kpkg" ] || { echo "prepare-assets: cannot find the kernel package behind linux-image-amd64 (apt-get update?)" >&2; exit 1; }
apt-get download -q "$kpkg" busybox-static >/dev/null
for d in ./*.deb; do dpkg -x "$d" x; done
cd - >/dev/null
cp "$(ls "$work"/x/boot/vmlinuz-* | head -1)" "$A/vmlinuz"
cp "$work/x/bin/busybox" "$A/busybox"
rm -rf "$A/modules"
cp -a "$(ls -d "$work"/x/lib/modules/* | head -1)" "$A/modules"
chmod +x "$A/busybox"
echo "test assets: $(ls -la "$A" | tail -n +2 | awk '{print $5, $9}' | tr '\n' ' ')"
