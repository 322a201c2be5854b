#!/usr/bin/env bash
# Builds the Debian package target/debian/bootherd_<version>-1_<arch>.deb (and its -dbgsym .ddeb) with cargo-deb
# (installed under target/tools on first use): release build, the man pages (`bootherd man`) and
# the command links (`bootherd links`, made relative) generated from the binary, then
# `cargo deb --no-build` with [package.metadata.deb] from Cargo.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
#   tools/build-deb.sh [--dev] [cargo-deb options…]
# --dev packages the debug build already made (target/debug/bootherd, as `cargo test` leaves it)
# instead of building the release binary: stripped, no -dbgsym, fast compression. The tests use it
# (tests/package.rs, tests/appliance_vm.rs) to check the packaging without a second, 5-minute
# optimised build; the package's files, unit and scripts are the same, only the code is slower.
PROFILE=release
if [ "${1:-}" = --dev ]; then
  PROFILE=dev
  shift
fi
TOOLS=target/tools
if [ ! -x "$TOOLS/bin/cargo-deb" ]; then
  cargo install --locked --root "$TOOLS" cargo-deb@3.8.0
fi
if [ "$PROFILE" = release ]; then
  cargo build --release
  BIN=target/release/bootherd
  DEBARGS=(--dbgsym)
else
  BIN=target/debug/bootherd
  [ -x "$BIN" ] || cargo build
  DEBARGS=(--profile dev --strip --fast)
fi
X=target/deb-extra
rm -rf "$X"
mkdir -p "$X/bin" "$X/man"
"$BIN" links "$X/bin" >/dev/null
for l in "$X"/bin/*; do ln -sfn bootherd "$l"; done
"$BIN" man "$X/man" >/dev/null
gzip -9n "$X"/man/*.1
# Release: --dbgsym puts the line tables in bootherd-dbgsym_*.ddeb; the binary in the .deb is stripped.
PATH="$PWD/$TOOLS/bin:$PATH" cargo deb --no-build "${DEBARGS[@]}" "$@"
