//! QEMU labs: a server namespace with a bridge the VM's tap joins, Debian's boot loaders in a
//! TFTP root, and the VM itself (software emulation, iPXE NIC ROM, serial console to a file).
#![allow(dead_code)]

use super::{Bh, Netns};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The guest kernel, its modules and busybox (tests/prepare-assets.sh puts them there).
pub fn assets() -> PathBuf {
    let a = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-assets");
    assert!(
        a.join("vmlinuz").is_file()
            && a.join("busybox").is_file()
            && a.join("modules/kernel").is_dir(),
        "{} lacks vmlinuz/busybox/modules: tests/run.sh prepares them (tests/prepare-assets.sh)",
        a.display()
    );
    a
}

/// A TFTP root under `bh` with Debian's boot loaders (boot-assets/install.sh), set as site.tftpdir.
pub fn tftp_root(bh: &Bh) -> PathBuf {
    let tftp = bh.path("tftpboot");
    let o = std::process::Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("boot-assets/install.sh"))
        .arg(&tftp)
        .output()
        .expect("boot-assets/install.sh");
    assert!(
        o.status.success(),
        "boot-assets/install.sh failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    bh.ok(&[
        "chtab",
        "key=tftpdir",
        &format!("site.value={}", tftp.display()),
    ]);
    tftp
}

/// A namespace with bridge br0 at `<net>.1/24` (and an IPv6 link-local address) and tap0 in it,
/// for the VM.
pub fn bridge(tag: &str, net: &str) -> Netns {
    let ns = Netns::new(tag);
    ns.exec(&[
        "ip",
        "link",
        "add",
        "br0",
        "type",
        "bridge",
        "forward_delay",
        "0",
        "stp_state",
        "0",
    ]);
    // IPv6 on the bridge only (test namespaces have it off): the server's link-local address is
    // where router advertisements come from.
    ns.exec(&["sysctl", "-qw", "net.ipv6.conf.br0.disable_ipv6=0"]);
    ns.exec(&["ip", "addr", "add", &format!("{net}.1/24"), "dev", "br0"]);
    ns.exec(&["ip", "tuntap", "add", "dev", "tap0", "mode", "tap"]);
    ns.exec(&["ip", "link", "set", "tap0", "master", "br0"]);
    ns.exec(&["ip", "link", "set", "tap0", "up"]);
    ns.exec(&["ip", "link", "set", "br0", "up"]);
    ns
}

/// Waits for `needle` in the serial log.
pub fn wait_serial(path: &Path, needle: &str, within: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < within {
        // Lossy: boot loaders draw menus with bytes that are not UTF-8 (GRUB's box lines).
        if std::fs::read(path)
            .map(|b| String::from_utf8_lossy(&b).contains(needle))
            .unwrap_or(false)
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    false
}

/// A PXE-booting VM on tap0 in `ns` with `mac`, serial console to `serial`; `extra` QEMU args.
pub fn qemu(
    ns: &Netns,
    serial: &Path,
    mac: &str,
    memory_mb: u32,
    extra: &[&str],
) -> std::process::Child {
    qemu_nic(ns, serial, mac, memory_mb, "", extra)
}

/// UEFI firmware for [`qemu`]: Debian's OVMF (package `ovmf`), code read-only and a private copy
/// of the variable store under `bh`.
pub fn ovmf(bh: &Bh) -> Vec<String> {
    let code = Path::new("/usr/share/OVMF/OVMF_CODE_4M.fd");
    let vars = Path::new("/usr/share/OVMF/OVMF_VARS_4M.fd");
    assert!(
        code.is_file() && vars.is_file(),
        "{} is missing: apt-get install ovmf (tests/run.sh does)",
        code.display()
    );
    let mine = bh.path("OVMF_VARS.fd");
    std::fs::copy(vars, &mine).expect("copy the OVMF variable store");
    vec![
        "-drive".into(),
        format!(
            "if=pflash,format=raw,unit=0,readonly=on,file={}",
            code.display()
        ),
        "-drive".into(),
        format!("if=pflash,format=raw,unit=1,file={}", mine.display()),
    ]
}

/// [`qemu`] with `nic_opts` appended to the NIC's `-device` (`,romfile=` leaves the NIC without
/// its iPXE ROM, so UEFI firmware boots with its own network stack).
pub fn qemu_nic(
    ns: &Netns,
    serial: &Path,
    mac: &str,
    memory_mb: u32,
    nic_opts: &str,
    extra: &[&str],
) -> std::process::Child {
    qemu_tap(ns, "tap0", serial, mac, memory_mb, nic_opts, extra)
}

/// Another tap in `ns`'s bridge br0, for a second VM at the same time.
pub fn add_tap(ns: &Netns, tap: &str) {
    ns.exec(&["ip", "tuntap", "add", "dev", tap, "mode", "tap"]);
    ns.exec(&["ip", "link", "set", tap, "master", "br0"]);
    ns.exec(&["ip", "link", "set", tap, "up"]);
}

/// [`qemu_nic`] on the tap `tap` (made by [`bridge`] or [`add_tap`]).
pub fn qemu_tap(
    ns: &Netns,
    tap: &str,
    serial: &Path,
    mac: &str,
    memory_mb: u32,
    nic_opts: &str,
    extra: &[&str],
) -> std::process::Child {
    ns.command("qemu-system-x86_64")
        .args([
            "-machine",
            "q35",
            "-accel",
            "tcg",
            "-m",
            &memory_mb.to_string(),
            "-smp",
            "1",
        ])
        .args(["-nographic", "-no-reboot", "-monitor", "none"])
        .args([
            "-serial",
            &format!("file:{}", serial.display()),
            "-boot",
            "n",
        ])
        .args([
            "-netdev",
            &format!("tap,id=n0,ifname={tap},script=no,downscript=no"),
            "-device",
            &format!("virtio-net-pci,netdev=n0,mac={mac}{nic_opts}"),
        ])
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start qemu-system-x86_64 (package qemu-system-x86)")
}

/// Runs a VM until `needle` shows on its console (or `within` passes); returns the console.
pub fn run_until(
    ns: &Netns,
    serial: &Path,
    mac: &str,
    memory_mb: u32,
    extra: &[&str],
    needle: &str,
    within: Duration,
) -> (bool, String) {
    let mut vm = qemu(ns, serial, mac, memory_mb, extra);
    let ok = wait_serial(serial, needle, within);
    let _ = vm.kill();
    let _ = vm.wait();
    (ok, std::fs::read_to_string(serial).unwrap_or_default())
}

/// Seconds of the day in a log line's leading timestamp (`2026-12-06T01:04:15.812345Z …`).
fn log_secs(line: &str) -> Option<f64> {
    let plain = super::plain(line);
    let stamp = plain.split_whitespace().next()?;
    let (_, time) = stamp.split_once('T')?;
    let time = time.trim_end_matches('Z');
    let mut parts = time.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

/// From the daemon's own log, for each lease of `ip` (each DHCP ACK, sent after its lease is
/// committed): seconds to the first file the client then asked for (the first TFTP or HTTP log
/// line from `ip` before its next ACK). TFTP lines are written when a transfer ends, so those
/// figures are upper bounds on "lease → first request". Leases followed by no file are left out.
pub fn lease_to_first_file(log: &[String], ip: &str) -> Vec<f64> {
    let ack = format!("Some(Ack) {ip} ");
    let client = format!("client={ip}:");
    let mut out = Vec::new();
    let mut open: Option<f64> = None;
    for l in log {
        if l.contains(&ack) {
            open = log_secs(l);
        } else if l.contains(&client) && (l.contains("TFTP") || l.contains("HTTP")) {
            if let (Some(a), Some(t)) = (open.take(), log_secs(l)) {
                let d = t - a;
                out.push(if d < 0.0 { d + 86400.0 } else { d });
            }
        }
    }
    out
}

/// Seconds from the daemon's first OFFER to `ip` to the first file `ip` asked for (the whole
/// DHCP exchange included).
pub fn offer_to_first_file(log: &[String], ip: &str) -> Option<f64> {
    let offer = format!("Some(Offer) {ip} ");
    let client = format!("client={ip}:");
    let first = log
        .iter()
        .find(|l| l.contains(&offer))
        .and_then(|l| log_secs(l))?;
    let t = log
        .iter()
        .find(|l| l.contains(&client) && (l.contains("TFTP") || l.contains("HTTP")))
        .and_then(|l| log_secs(l))?;
    let d = t - first;
    Some(if d < 0.0 { d + 86400.0 } else { d })
}

/// Seconds of the day (UTC) now: the clock of the daemon's log lines, for [`boot_times`].
#[allow(dead_code)]
pub fn utc_secs_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64() % 86400.0)
        .unwrap_or(0.0)
}

/// One firmware boot of `ip` in the daemon's log, as seconds from `poweron` (seconds of the day
/// UTC, [`utc_secs_now`] when the VM started): to the first OFFER, to the first lease (ACK), to
/// the first file asked for, and to the end of the kernel's download (`kernel` in the path).
/// A line `BOOT-TIMES label=… offer=… lease=… first_file=… kernel=…` for bench/pxeboot.sh.
#[allow(dead_code)]
pub fn boot_times(log: &[String], ip: &str, poweron: f64, label: &str, kernel: &str) -> String {
    let since = |needle: &dyn Fn(&str) -> bool| {
        log.iter()
            .find(|l| needle(l))
            .and_then(|l| log_secs(l))
            .map(|t| {
                let d = t - poweron;
                format!("{:.2}", if d < -43200.0 { d + 86400.0 } else { d })
            })
            .unwrap_or_else(|| "-".into())
    };
    let (offer, ack, client) = (
        format!("Some(Offer) {ip} "),
        format!("Some(Ack) {ip} "),
        format!("client={ip}:"),
    );
    let file = |l: &str| l.contains(&client) && (l.contains("TFTP") || l.contains("HTTP"));
    format!(
        "BOOT-TIMES label={label} offer={} lease={} first_file={} kernel={}",
        since(&|l| l.contains(&offer)),
        since(&|l| l.contains(&ack)),
        since(&file),
        since(&|l| file(l) && l.contains(kernel)),
    )
}
