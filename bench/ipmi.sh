#!/usr/bin/env bash
# rpower stat over many simulated BMCs (issue #7): wall time against site.powerfanout, side by
# side with the anchor, ipmitool run the same way (one `ipmitool -I lanplus chassis power status`
# per node under xargs -P <fan-out>). Each node has its own OpenIPMI ipmi_sim on 127.0.0.1.
# Usage: bench/ipmi.sh [NODES] [FANOUTS] [RUNS]     e.g. bench/ipmi.sh 200 "1 8 64 200" 3
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-200}
FANOUTS=${2:-"1 8 64 200"}
RUNS=${3:-3}
BASE=${BASE:-17000}
out=bench/out/ipmi
command -v ipmi_sim >/dev/null && command -v ipmitool >/dev/null \
  || { apt-get update -qq && apt-get install -y -qq openipmi ipmitool; }
rm -rf "$out"; mkdir -p "$out"
cargo build --release --quiet
B=$PWD/target/release/bootherd
export BOOTHERD_DB="sqlite:$PWD/$out/bench.db"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

# One ipmi_sim per node: lan.conf on its own port, a chassis_control script keeping power in a file.
for i in $(seq 0 $((N - 1))); do
  d=$out/sim$i; port=$((BASE + i)); mkdir -p "$d/state"
  echo 1 > "$d/power"
  cat > "$d/cc.sh" <<EOS
#!/bin/sh
case \$2 in
get) echo "power:\$(cat $PWD/$d/power)";;
set) [ "\$3" = power ] && echo \$4 > $PWD/$d/power;;
esac
exit 0
EOS
  chmod +x "$d/cc.sh"
  cat > "$d/lan.conf" <<EOS
name "b$i"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 $port
    priv_limit admin
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  chassis_control "$PWD/$d/cc.sh 0x20"
  user 2 true "admin" "benchpw1" admin 10 none md2 md5 straight
EOS
  printf 'mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02\nmc_enable 0x20\n' > "$d/bmc.emu"
  (cd "$d" && exec ipmi_sim -c lan.conf -f bmc.emu -s state -n -p >sim.log 2>&1) &
  pids+=($!)
done
for _ in $(seq 200); do
  up=$(ss -Huln "sport >= :$BASE and sport < :$((BASE + N))" | wc -l)
  [ "$up" -ge "$N" ] && break; sleep 0.1
done
[ "$up" -ge "$N" ] || { echo "only $up of $N simulators listen" >&2; exit 1; }
echo "$N ipmi_sim processes, $(ps -o rss= -p "$(IFS=,; echo "${pids[*]}")" | awk '{s+=$1} END {printf "%d MB RSS", s/1024}')"

$B nodeadd "bn[001-$(printf %03d "$N")]" groups=bench,all >/dev/null
$B chtab node=bench nodehm.mgt=ipmi "ipmi.bmc=|bn(\d+)|127.0.0.1:(\$1+$((BASE - 1)))|" \
  ipmi.username=admin ipmi.password=benchpw1 >/dev/null
# ipmi_sim has no suite 17: start at 3, as ipmitool -C 3 does (the "17,3" default would add one
# refused Open Session round trip per node; measured separately below).
$B chtab key=ipmiciphersuites site.value=3 >/dev/null

seq 0 $((N - 1)) | awk -v b="$BASE" '{print b + $1}' > "$out/ports"
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ours() { $B rpower bench stat; }
anchor() { xargs -P "$F" -I{} ipmitool -I lanplus -C 3 -H 127.0.0.1 -p {} -U admin -P benchpw1 -N 2 -R 3 chassis power status < "$out/ports"; }

echo "| fan-out | bootherd rpower stat | ipmitool (xargs -P) | ratio | bootherd lines ok | ipmitool lines ok |" | tee "$out/results.md"
echo "|---|---|---|---|---|---|" | tee -a "$out/results.md"
for F in $FANOUTS; do
  $B chtab key=powerfanout site.value="$F" >/dev/null
  a=(); b=()
  for _ in $(seq "$RUNS"); do
    a+=("$( { s=$(date +%s.%N); ours > "$out/ours.out" 2>&1 || true; e=$(date +%s.%N); echo "$e - $s" | bc; } )")
    b+=("$( { s=$(date +%s.%N); anchor > "$out/anchor.out" 2>&1 || true; e=$(date +%s.%N); echo "$e - $s" | bc; } )")
  done
  ma=$(printf '%s\n' "${a[@]}" | median); mb=$(printf '%s\n' "${b[@]}" | median)
  okA=$(grep -c ': on$' "$out/ours.out" || true); okB=$(grep -c 'Chassis Power is on' "$out/anchor.out" || true)
  printf '| %s | %.2f s | %.2f s | %.1f× | %s/%s | %s/%s |\n' "$F" "$ma" "$mb" "$(echo "$mb / $ma" | bc -l)" \
    "$okA" "$N" "$okB" "$N" | tee -a "$out/results.md"
done
# The default suite order (17 first, then 3) costs one refused Open Session per node.
$B chtab key=ipmiciphersuites site.value=17,3 >/dev/null
$B chtab key=powerfanout site.value=64 >/dev/null
s=$(date +%s.%N); ours > "$out/ours17.out" 2>&1 || true; e=$(date +%s.%N)
printf '\nfan-out 64 with the default suite order 17,3 (ipmi_sim refuses 17): %.2f s, %s/%s on\n' \
  "$(echo "$e - $s" | bc)" "$(grep -c ': on$' "$out/ours17.out" || true)" "$N" | tee -a "$out/results.md"
