#!/usr/bin/env bash
# Installs the boot loaders nodes fetch into the TFTP root, from Debian's packages, at the paths
# bootherd's DHCP answers and boot files name (xCAT's layout):
#   pxelinux.0, ldlinux.c32 (+ menu modules)    pxe        (pxelinux, syslinux-common)
#   xcat/xnba.kpxe, xcat/xnba.efi               xnba       (ipxe: undionly.kpxe, ipxe.efi)
#   boot/grub2/grub2.x86_64, shimx64.efi        grub2      (grub-efi-amd64-signed, shim-signed)
# Not shipped by Debian 12, supply by hand if you need them: elilo (xcat/elilo-x64.efi, used by
# xNBA's UEFI fallback for kernels without an EFI stub), yaboot (ppc64 before RHEL 7 / SLES 11.4),
# grub2.ppc / grub2.aarch64 binaries.
# Usage: boot-assets/install.sh [--no-apt] [TFTPDIR]   (default: site.tftpdir from the store, else /tftpboot)
#   --no-apt  install only what the installed packages provide, never run apt-get (the Debian
#             package's postinst and triggers use it: dpkg holds the lock then)
set -euo pipefail
NOAPT=
if [ "${1:-}" = --no-apt ]; then NOAPT=1; shift; fi
T=${1:-}
if [ -z "$T" ]; then
  T=$(bootherd tabdump -w key==tftpdir site 2>/dev/null | sed -n 2p | cut -d'"' -f4 || true)
  T=${T:-/tftpboot}
fi
PKGS=(pxelinux syslinux-common ipxe grub-efi-amd64-signed shim-signed)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ] && [ -n "$NOAPT" ]; then
  echo "boot-assets: not installed, so not copied: ${missing[*]}"
elif [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
install -d "$T" "$T/xcat" "$T/boot/grub2" "$T/pxelinux.cfg"
copied=()
put() { # source, destination under $T
  if [ -f "$1" ]; then install -m 0644 "$1" "$T/$2"; copied+=("$2"); fi
}
put /usr/lib/PXELINUX/pxelinux.0 pxelinux.0
for m in ldlinux.c32 libutil.c32 libcom32.c32 menu.c32 vesamenu.c32; do
  put "/usr/lib/syslinux/modules/bios/$m" "$m"
done
put /usr/lib/ipxe/undionly.kpxe xcat/xnba.kpxe
put /usr/lib/ipxe/ipxe.efi xcat/xnba.efi
put /usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed boot/grub2/grub2.x86_64
put /usr/lib/shim/shimx64.efi.signed boot/grub2/shimx64.efi
echo "boot loaders installed in $T: ${copied[*]}"
