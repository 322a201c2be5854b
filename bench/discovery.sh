#!/usr/bin/env bash
# Discovery: M machines report (findme over HTTP) at once; each is placed by MTM+serial among N
# defined nodes, or — with "seq" — by sequential discovery. Measures the wall time until every
# machine has its answer, and checks every answer. Client and daemon in two network namespaces.
# Usage: bench/discovery.sh [MACHINES] [NODES] [mtms|seq]
set -euo pipefail
cd "$(dirname "$0")/.."
M=${1:-100}
N=${2:-1000}
MODE=${3:-mtms}
out=bench/out/discovery
rm -rf "$out"; mkdir -p "$out/reports"
cargo build --release --quiet
B=$PWD/target/release/bootherd
export BOOTHERD_DB="sqlite:$PWD/$out/bench.db"
S=bhbd-s; C=bhbd-c
cleanup() { if [ -n "${DPID:-}" ]; then kill "$DPID" 2>/dev/null || true; fi; ip netns del $S 2>/dev/null || true; ip netns del $C 2>/dev/null || true; }
trap cleanup EXIT
cleanup
ip netns add $S; ip netns add $C
ip -n $S link add bhs0 type veth peer name bhc0 netns $C
ip -n $S addr add 10.99.200.1/16 dev bhs0; ip -n $S link set bhs0 up; ip -n $S link set lo up
ip -n $C addr add 10.99.100.1/16 dev bhc0; ip -n $C link set bhc0 up; ip -n $C link set lo up

$B mkdef -t network -o mgmt net=10.99.0.0 mask=255.255.0.0 >/dev/null
$B nodeadd "cn[0001-$(printf %04d "$N")]" groups=compute,all >/dev/null
if [ "$MODE" = mtms ]; then
  $B chtab node=compute 'vpd.mtm=BENCH-1' 'vpd.serial=|cn(\d+)|SN($1)|' >/dev/null
  # vpd is read per node: expand the regex rows into real rows so matching sees them.
  $B nodels compute vpd.serial | awk -F': ' '{printf "\"%s\",\"%s\",\"BENCH-1\",,,,,\n", $1, $2}' \
    | (echo "#node,serial,mtm,side,asset,uuid,comments,disable"; cat) > "$out/vpd.csv"
  $B tabrestore "$out/vpd.csv" >/dev/null
else
  $B nodediscoverstart "noderange=cn[0001-$(printf %04d "$N")]" "hostiprange=10.99.1.1-10.99.99.254" >/dev/null
fi
for i in $(seq 1 "$M"); do
  printf 'uuid=00000000-0000-4000-8000-%012d\narch=x86_64\nmtm=BENCH-1\nserial=SN%04d\nmac=virtio_net|eth0|52:54:01:%02x:%02x:%02x|10.99.100.1/16\n' \
    "$i" "$i" $((i / 65536 % 256)) $((i / 256 % 256)) $((i % 256)) > "$out/reports/$i"
done
ip netns exec $S "$B" serve --no-dhcp --no-tftp --no-nfs --no-findme-udp > "$out/daemon.log" 2>&1 &
DPID=$!
for _ in $(seq 50); do grep -q "bootherd ready" "$out/daemon.log" && break; sleep 0.2; done
start=$(date +%s.%N)
ls "$out/reports" | ip netns exec $C xargs -P "$M" -I{} curl -s --data-binary "@$out/reports/{}" \
  -o "$out/reports/{}.answer" http://10.99.200.1/xcat/discovery/findme
end=$(date +%s.%N)
placed=$(cat "$out"/reports/*.answer | grep -c '^restart ' || true)
distinct=$(cat "$out"/reports/*.answer | grep '^restart ' | sort -u | wc -l)
[ "$distinct" = "$placed" ] || { echo "two machines were given the same node ($distinct nodes for $placed machines)" >&2; exit 1; }
secs=$(echo "$end - $start" | bc)
echo "| $M machines at once, $N nodes, $MODE | $secs s | $placed/$M placed |" | tee "$out/results.md"
[ "$placed" = "$M" ] || { echo "not every machine was placed" >&2; exit 1; }
