#!/usr/bin/env bash
# Table-store benchmark: 100,000 nodes in 100 groups, with regex rows, as issue #2 asks.
# Measures `nodels all nodetype.os hosts.ip` and `lsdef -t node -l` over the whole range (wall time
# and peak RSS from GNU time), plus the time to load the tables.
# Usage: bench/store.sh [NODES] [sqlite|postgres]
# `postgres` runs the same steps on a throwaway PostgreSQL cluster from Debian's package (default
# settings: fsync and synchronous commit on), reached over its unix socket.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
BACKEND=${2:-sqlite}
GROUPS_N=100
out=bench/out/store-$BACKEND
rm -rf "$out"; mkdir -p "$out"
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time; }
cargo build --release --quiet
B=$PWD/target/release/bootherd
case $BACKEND in
  sqlite) export BOOTHERD_DB="sqlite:$PWD/$out/bench.db" ;;
  postgres)
    PGBIN=/usr/lib/postgresql/15/bin
    [ -x "$PGBIN/initdb" ] || { apt-get update -qq && apt-get install -y -qq postgresql; }
    PGDIR=$(mktemp -d /tmp/bootherd-bench-pg.XXXXXX)
    chown postgres "$PGDIR"
    stop_pg() { runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDIR/data" -m fast stop >/dev/null 2>&1 || true; rm -rf "$PGDIR"; }
    trap stop_pg EXIT
    runuser -u postgres -- "$PGBIN/initdb" -D "$PGDIR/data" -U postgres --auth-local=trust -N >/dev/null 2>&1
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/log" -w \
      -o "-k $PGDIR -p 5439 -c listen_addresses=''" start >/dev/null
    export BOOTHERD_DB="postgres://postgres@${PGDIR//\//%2F}:5439/bench" ;;
  *) echo "bench/store.sh: backend is sqlite or postgres" >&2; exit 2 ;;
esac

python3 - "$N" "$GROUPS_N" "$out" <<'PY'
import sys
n, g, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
with open(f"{out}/nodelist.csv", "w") as f:
    f.write("#node,groups,status,statustime,appstatus,appstatustime,primarysn,hidden,updatestatus,updatestatustime,zonename,comments,disable\n")
    for i in range(1, n + 1):
        f.write(f'"node{i:06d}","rack{i % g:03d},compute,all",,,,,,,,,,,\n')
with open(f"{out}/nodetype.csv", "w") as f:
    f.write("#node,os,arch,profile,provmethod,supportedarchs,nodetype,comments,disable\n")
    for r in range(g):
        f.write(f'"rack{r:03d}","rhels8.{r % 10}","x86_64","compute",,,,,\n')
    f.write('"compute","rhels8.6","x86_64","compute",,,,,\n')
with open(f"{out}/hosts.csv", "w") as f:
    f.write("#node,ip,hostnames,otherinterfaces,comments,disable\n")
    # Every node's IP comes from its rack group's regex row (integer arithmetic on the node number).
    for r in range(g):
        f.write(f'"rack{r:03d}","|node(\\d+)|10.(($1/65536)%256).(($1/256)%256).($1%256)|",,"|node(\\d+)|-bmc:10.200.(($1/256)%256).($1%256)|",,\n')
with open(f"{out}/ipmi.csv", "w") as f:
    f.write("#node,bmc,bmcport,taggedvlan,bmcid,username,password,comments,disable\n")
    f.write('"compute","/\\z/-bmc/",,,,"ADMIN",,,\n')
PY

t() { # label, command...
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$out/time.txt" "$@" > "$out/$label.out"
  read -r secs kb < "$out/time.txt"
  printf '| %s | %s s | %s MB | %s lines |\n' "$label" "$secs" "$((kb / 1024))" "$(wc -l < "$out/$label.out")" | tee -a "$out/results.md"
}

echo "| step | wall | peak RSS | output |" | tee "$out/results.md"
echo "|---|---|---|---|" | tee -a "$out/results.md"
for tab in nodelist nodetype hosts ipmi; do
  t "tabrestore-$tab" "$B" tabrestore "$out/$tab.csv"
done
t "nodels-all-os-ip" "$B" nodels all nodetype.os hosts.ip
t "lsdef-node-l" "$B" lsdef -t node -l
t "nodels-all" "$B" nodels all
t "noderange-rack-intersection" "$B" nodels 'rack007@compute,-node000007'
head -3 "$out/nodels-all-os-ip.out"
grep -A12 '^Object name: node000007$' "$out/lsdef-node-l.out" | head -14
echo "(N=$N nodes, $GROUPS_N groups, $BACKEND; results in $out/results.md)"
