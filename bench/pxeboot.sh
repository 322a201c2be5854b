#!/usr/bin/env bash
# Per-node boot time with real firmware: a QEMU VM (SeaBIOS with Debian's iPXE ROM) PXE-boots from
# `bootherd serve` in a network namespace — xNBA script over HTTP, then kernel and initramfs — and the
# daemon's own log timestamps give, from power-on: the first OFFER, the lease (ACK, sent after the lease
# is committed), the first file the firmware asks for, and the end of the kernel's download; the console
# gives the time the initramfs's /init runs. Each boot runs with bootherd's router advertisements (the
# default) and without them (site.routeradvertisements=no), which shows what the RA saves: without one,
# iPXE's IPv6 autoconfiguration keeps it waiting after its lease (issue 21). Offers and ACKs to iPXE carry
# 175.176 (no-pxedhcp) = 1 in both variants.
#
#   bench/pxeboot.sh [ROUNDS]       default 3 boots per variant, interleaved. Run as root (namespaces, KVM
#                                   if present). Uses the QEMU test of tests/pxe_vm.rs and its assets
#                                   (bash tests/prepare-assets.sh fetches them).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
OUT=bench/out/pxeboot
mkdir -p "$OUT"
[ -d target/test-assets ] || bash tests/prepare-assets.sh
cargo test --quiet --no-run --test pxe_vm 2> /dev/null
: > "$OUT/runs.txt"
for ((r = 1; r <= ROUNDS; r++)); do
    for ra in yes no; do
        # the test's own assertion (no wait after the lease) fails without RA: that is the point here
        BOOTHERD_BENCH_RA=$ra cargo test --quiet --test pxe_vm a_vm_with_netboot_xnba -- --nocapture \
            > "$OUT/boot-$ra-$r.log" 2>&1 || true
        line=$(grep -m1 '^BOOT-TIMES' "$OUT/boot-$ra-$r.log" || echo "BOOT-TIMES label=ra=$ra failed")
        echo "$line" | tee -a "$OUT/runs.txt"
    done
done
{
    echo "# Per-node PXE boot time, SeaBIOS + iPXE ROM (QEMU), bootherd, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "$(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), $( [ -w /dev/kvm ] && echo KVM || echo 'TCG (no KVM)'); $ROUNDS boots per variant; median (min–max), seconds from power-on."
    echo
    echo "| router advertisement | first OFFER | lease (ACK) | first file | kernel downloaded | initramfs /init | lease → first file |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    for ra in yes no; do
        grep "ra=$ra " "$OUT/runs.txt" | awk -v ra="$ra" '
        function med(a, n,   i, j, t) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
            return n == 0 ? "–" : sprintf("%.2f (%.2f–%.2f)", (n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2), a[1], a[n]) }
        { for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
          if (v["lease"] != "-" && v["first_file"] != "-") { n++; o[n] = v["offer"]; l[n] = v["lease"]; f[n] = v["first_file"]
            k[n] = v["kernel"]; it[n] = v["initramfs"]; w[n] = v["first_file"] - v["lease"] } }
        END { printf "| %s | %s | %s | %s | %s | %s | %s |\n", (ra == "yes" ? "bootherd answers (default)" : "none (site.routeradvertisements=no)"),
            med(o, n), med(l, n), med(f, n), med(k, n), med(it, n), med(w, n) }'
    done
} > "$OUT/results.md"
cat "$OUT/results.md"
