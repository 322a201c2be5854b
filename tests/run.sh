#!/usr/bin/env bash
# Runs every bootherd test, installing what the tests need on a fresh Debian 12 machine first.
# Needs root (network-namespace tests) and the registries (apt, crates.io). A missing prerequisite
# is a failure, never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

if [ "$(id -u)" != 0 ]; then
  echo "tests/run.sh: the integration tests create network namespaces and need root" >&2
  exit 1
fi

# Debian packages the tests drive (real peers). Installed only when something is missing.
PKGS=(iproute2 python3-prometheus-client chromium python3-websocket libio-socket-ssl-perl libxml-simple-perl gcc make pkg-config isc-dhcp-client isc-dhcp-server kea-admin busybox python3 python3-venv tftp-hpa atftp curl wget openssh-server openssh-client rsync fdisk dosfstools
  qemu-system-x86 ipxe-qemu pxelinux syslinux-common ipxe grub-efi-amd64-signed shim-signed cpio
  openipmi ipmitool libnfs-utils snmpsim snmp bind9-dnsutils dnsmasq iputils-ping
  xorriso libarchive-tools mmdebstrap squashfs-tools pigz xz-utils zstd rpm createrepo-c dnf ovmf ndisc6
  postgresql openssl systemd-container)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Python peers (pypureomapi) live in a venv under target/, found by the tests there.
VENV=target/test-venv
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import pypureomapi' 2>/dev/null; then
  log "creating $VENV with pypureomapi"
  /usr/bin/python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q pypureomapi==1.1
fi

# Guest kernel and busybox for the VM tests (downloaded from Debian, cached under target/).
bash tests/prepare-assets.sh

if ! command -v cargo >/dev/null; then
  [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
fi
command -v cargo >/dev/null || { echo "tests/run.sh: cargo (Rust toolchain) is required" >&2; exit 1; }

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings

log "cargo test"
cargo test --all-targets 2>&1 | tee target/test-output.txt

# The store-level tests once more, every store in PostgreSQL: a throwaway cluster from Debian's
# package (initdb + pg_ctl as the postgres user, unix socket in a temporary directory).
log "cargo test (stores in PostgreSQL)"
PGBIN=/usr/lib/postgresql/15/bin
PGDIR=$(mktemp -d /tmp/bootherd-pg.XXXXXX)
chown postgres "$PGDIR"
PGPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
stop_pg() { runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDIR/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$PGDIR"; }
trap stop_pg EXIT
runuser -u postgres -- "$PGBIN/initdb" -D "$PGDIR/data" -U postgres --auth-local=trust -N >/dev/null
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/log" -w \
  -o "-k $PGDIR -p $PGPORT -c listen_addresses='' -c fsync=off -c max_connections=300" start >/dev/null
export BOOTHERD_TEST_PG="postgres://postgres@${PGDIR//\//%2F}:$PGPORT"
cargo test --lib -- store:: dhcp::leases 2>&1 | tee -a target/test-output.txt
cargo test --test store_cli --test serve --test xcat_compat --test nodeset --test callbacks --test dhcp 2>&1 | tee -a target/test-output.txt
unset BOOTHERD_TEST_PG
stop_pg
trap - EXIT
