#!/usr/bin/env bash
# Builds the Debian package target/debian/bootherd_<version>-1_<arch>.deb (and its -dbgsym .ddeb) with cargo-deb
# (installed under target/tools on first use): release build, the man pages (`bootherd man`) and
# the command links (`bootherd links`, made relative) generated from the binary, then
# `cargo deb --no-build` with [package.metadata.deb] from Cargo.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS=target/tools
if [ ! -x "$TOOLS/bin/cargo-deb" ]; then
  cargo install --locked --root "$TOOLS" cargo-deb@3.8.0
fi
cargo build --release
X=target/deb-extra
rm -rf "$X"
mkdir -p "$X/bin" "$X/man"
target/release/bootherd links "$X/bin" >/dev/null
for l in "$X"/bin/*; do ln -sfn bootherd "$l"; done
target/release/bootherd man "$X/man" >/dev/null
gzip -9n "$X"/man/*.1
# --dbgsym: the line tables go to bootherd-dbgsym_*.ddeb, the binary in the .deb is stripped.
PATH="$PWD/$TOOLS/bin:$PATH" cargo deb --no-build --dbgsym "$@"
