#!/usr/bin/env bash
# nodeset over 10,000 nodes (issue #4's aim: under 2 s; a Cobbler sync of a couple of thousand
# systems takes over 10 minutes, cobbler#2601). Usage: bench/nodeset.sh [NODES]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
out=bench/out/nodeset
rm -rf "$out"; mkdir -p "$out/tftpboot/xcat/osimage/img"
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time; }
cargo build --release --quiet
B=$PWD/target/release/bootherd
export BOOTHERD_DB="sqlite:$PWD/$out/bench.db"
touch "$out/tftpboot/xcat/osimage/img/vmlinuz" "$out/tftpboot/xcat/osimage/img/initrd.img"
$B chtab key=tftpdir "site.value=$PWD/$out/tftpboot" >/dev/null
$B mkdef -t osimage -o img imagetype=linux provmethod=install osvers=rhels8.6 osarch=x86_64 profile=compute >/dev/null
$B nodeadd "node[00001-$(printf %05d "$N")]" groups=compute,all >/dev/null
$B chtab node=compute 'hosts.ip=|node(\d+)|10.(($1/65536)%256).(($1/256)%256).($1%256)|' \
  'mac.mac=|node(\d+)|52:54:00:(($1/65536)%256):(($1/256)%256):($1%256)|' noderes.netboot=xnba >/dev/null
t() {
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$out/time.txt" "$@" > "$out/$label.out"
  read -r secs kb < "$out/time.txt"
  printf '| %s | %s s | %s MB | %s lines |\n' "$label" "$secs" "$((kb / 1024))" "$(wc -l < "$out/$label.out")" | tee -a "$out/results.md"
}
echo "| step ($N nodes) | wall | peak RSS | output |" | tee "$out/results.md"
echo "|---|---|---|---|" | tee -a "$out/results.md"
t "nodeset-osimage" "$B" nodeset compute osimage=img
t "nodeset-next" "$B" nodeset compute next
t "nodeset-stat" "$B" nodeset compute stat
t "nodeset-show" "$B" nodeset compute show
