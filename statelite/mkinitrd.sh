#!/bin/sh
# Builds bootherd's statelite initramfs (the `initrd-statelite.gz` nodeset points at) from a
# kernel's modules directory and a static busybox — both from Debian packages, for example:
#
#   apt-get download linux-image-amd64 busybox-static (the versioned kernel package behind it)
#   dpkg -x linux-image-*.deb x; dpkg -x busybox-static*.deb x
#   statelite/mkinitrd.sh -m x/lib/modules/<version> -b x/bin/busybox \
#       -o <tftpdir>/xcat/osimage/<image>/initrd-statelite.gz [-a extra_module …]
#   cp x/boot/vmlinuz-<version> <tftpdir>/xcat/osimage/<image>/kernel
#
# Its /init is statelite/initrd-init (DHCP, NFS root read-only, the image's statelite script,
# switch_root); the NFS client and common NIC drivers are in.
here=$(cd "$(dirname "$0")" && pwd)
exec sh "$here/../initrd/mkinitramfs.sh" -i "$here/initrd-init" "$@"
