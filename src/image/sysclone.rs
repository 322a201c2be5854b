//! sysclone: capture a running, hand-tuned diskful node (the golden node) with
//! `imgcapture <node> -t sysclone -o <image>`, and the deploy script genesis runs to clone it
//! onto other nodes' disks (xCAT's SystemImager flow, reference §10, done with ssh, rsync, tar,
//! sfdisk, mkfs and grub).
//!
//! Capture: a probe script run over the system's `ssh` reports the node's OS, architecture and
//! root disk: its partition table (`sfdisk -d`) and each partition's filesystem type, UUID,
//! label and mount point ([`Probe::parse`], pure). Each mounted filesystem of that disk is then
//! copied by `rsync -x` over the same ssh into `<installdir>/sysclone/images/<image>/` (one
//! filesystem per mount point; /proc, /sys, /dev, /run, /tmp, the node's network identity and
//! the image's exlist left out; a re-capture only transfers what changed), packed as
//! `<installdir>/sysclone/images/<image>.tar` for the deploy, and the layout is written beside
//! the deploy script in `<installdir>/sysclone/scripts/` ([`deploy_script`], pure). The osimage is
//! then defined with `provmethod=sysclone`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context};

use crate::store::{Audit, Store};

/// What the golden node reports (run with `sh -s` over ssh; POSIX sh, util-linux tools).
pub const PROBE_SCRIPT: &str = r#"LC_ALL=C; export LC_ALL
PATH=/usr/sbin:/usr/bin:/sbin:/bin; export PATH
[ -r /etc/os-release ] && . /etc/os-release
echo "os=${ID:-}${VERSION_ID:-}"
echo "arch=$(uname -m)"
for t in rsync sfdisk blkid findmnt; do
    if command -v $t >/dev/null 2>&1; then echo "$t=yes"; else echo "$t=no"; fi
done
if [ -d /sys/firmware/efi ]; then echo firmware=uefi; else echo firmware=bios; fi
src=$(findmnt -n -o SOURCE / 2>/dev/null | head -n 1)
echo "rootdev=$src"
dev=$(readlink -f "$src" 2>/dev/null)
name=${dev##*/}
[ -n "$name" ] && [ -r "/sys/class/block/$name/partition" ] || exit 0
disk=$(basename "$(readlink -f "/sys/class/block/$name/..")")
[ -r "/sys/block/$disk/size" ] || exit 0
echo "disk=/dev/$disk"
echo "disksize=$(($(cat "/sys/block/$disk/size") * 512))"
for p in /sys/block/$disk/$disk*; do
    [ -r "$p/partition" ] || continue
    d=/dev/${p##*/}
    fs=$(blkid -p -o value -s TYPE "$d" 2>/dev/null)
    uuid=$(blkid -p -o value -s UUID "$d" 2>/dev/null)
    label=$(blkid -p -o value -s LABEL "$d" 2>/dev/null)
    mnt=$(findmnt -n -o TARGET --source "$d" 2>/dev/null | head -n 1)
    if [ "$fs" = swap ] && grep -q "^$d " /proc/swaps 2>/dev/null; then mnt=swap; fi
    printf 'part\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(cat "$p/partition")" "$d" "$fs" "$uuid" "$label" "$mnt"
done
echo sfdisk-begin
sfdisk -d "/dev/$disk" 2>/dev/null
echo sfdisk-end
"#;

/// One partition of the golden node's root disk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Part {
    pub num: u32,
    pub dev: String,
    /// Sectors (512 bytes), from the partition table.
    pub start: u64,
    pub size: u64,
    /// The partition type (MBR hex or GPT GUID), as sfdisk writes it.
    pub ptype: String,
    pub bootable: bool,
    /// GPT partition name.
    pub name: String,
    /// Filesystem type (`ext4`, `xfs`, `vfat`, `swap`, …) or empty.
    pub fstype: String,
    pub uuid: String,
    pub label: String,
    /// Mount point (absolute), `swap` for active swap, or empty.
    pub mount: String,
}

/// The golden node as the probe saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Probe {
    /// xCAT-style OS version (`debian12`, `rhels9.4`, `ubuntu22.04`, `sles15.5`…).
    pub osvers: String,
    pub arch: String,
    pub tools: BTreeMap<String, bool>,
    pub uefi: bool,
    pub rootdev: String,
    pub disk: String,
    pub disk_bytes: u64,
    /// `dos` or `gpt`.
    pub label: String,
    pub parts: Vec<Part>,
}

/// Filesystem types the deploy can make.
pub const FSTYPES: &[&str] = &["ext2", "ext3", "ext4", "xfs", "vfat", "btrfs", "swap"];

fn clean(s: &str, what: &str, ok: impl Fn(char) -> bool) -> Result<String, String> {
    if s.len() > 256 || !s.chars().all(ok) {
        return Err(format!("unexpected {what} '{}'", s.escape_debug()));
    }
    Ok(s.to_string())
}

fn xcat_osvers(id: &str) -> String {
    // os-release ID + VERSION_ID → xCAT's names.
    let (id, ver) = match id.find(|c: char| c.is_ascii_digit()) {
        Some(i) => id.split_at(i),
        None => (id, ""),
    };
    let id = match id {
        "rhel" => "rhels",
        "sles" | "sled" | "opensuse-leap" => "sles",
        other => other,
    };
    format!("{id}{ver}")
}

impl Probe {
    /// Parses the probe's output. Pure; anything unexpected is an error naming it.
    pub fn parse(text: &str) -> Result<Probe, String> {
        let mut p = Probe::default();
        let mut lines = text.lines();
        let mut dump = Vec::new();
        let mut in_dump = false;
        for l in lines.by_ref() {
            if in_dump {
                if l == "sfdisk-end" {
                    in_dump = false;
                    continue;
                }
                dump.push(l);
                continue;
            }
            if l == "sfdisk-begin" {
                in_dump = true;
                continue;
            }
            if let Some(rest) = l.strip_prefix("part\t") {
                let f: Vec<&str> = rest.split('\t').collect();
                if f.len() != 6 {
                    return Err(format!("bad partition line '{}'", l.escape_debug()));
                }
                let num: u32 = f[0]
                    .parse()
                    .map_err(|_| format!("bad partition number '{}'", f[0].escape_debug()))?;
                let part = Part {
                    num,
                    dev: clean(f[1], "device", |c| {
                        c.is_ascii_alphanumeric() || "/_-.:".contains(c)
                    })?,
                    fstype: clean(f[2], "filesystem type", |c| {
                        c.is_ascii_alphanumeric() || c == '_'
                    })?,
                    uuid: clean(f[3], "UUID", |c| c.is_ascii_hexdigit() || c == '-')?,
                    label: clean(f[4], "label", |c| {
                        c.is_ascii_alphanumeric() || "._-".contains(c)
                    })?,
                    mount: clean(f[5], "mount point", |c| {
                        !c.is_control() && c != '\'' && c != '\\'
                    })?,
                    ..Part::default()
                };
                if !part.mount.is_empty()
                    && part.mount != "swap"
                    && (!part.mount.starts_with('/') || part.mount.split('/').any(|c| c == ".."))
                {
                    return Err(format!("bad mount point '{}'", part.mount));
                }
                p.parts.push(part);
                continue;
            }
            let Some((k, v)) = l.split_once('=') else {
                continue;
            };
            match k {
                "os" => {
                    let v = clean(v, "OS", |c| c.is_ascii_alphanumeric() || "._-".contains(c))?;
                    p.osvers = xcat_osvers(&v);
                }
                "arch" => {
                    p.arch = clean(v, "architecture", |c| c.is_ascii_alphanumeric() || c == '_')?
                }
                "firmware" => p.uefi = v == "uefi",
                "rootdev" => p.rootdev = clean(v, "root device", |c| !c.is_control())?,
                "disk" => {
                    p.disk = clean(v, "disk", |c| {
                        c.is_ascii_alphanumeric() || "/_-.:".contains(c)
                    })?
                }
                "disksize" => {
                    p.disk_bytes = v
                        .parse()
                        .map_err(|_| format!("bad disk size '{}'", v.escape_debug()))?
                }
                "rsync" | "sfdisk" | "blkid" | "findmnt" => {
                    p.tools.insert(k.to_string(), v == "yes");
                }
                _ => {}
            }
        }
        if in_dump {
            return Err("the partition table dump is cut short".into());
        }
        p.parse_dump(&dump)?;
        Ok(p)
    }

    /// `sfdisk -d` output: `label:` and one line per partition.
    fn parse_dump(&mut self, lines: &[&str]) -> Result<(), String> {
        let mut sector = 512u64;
        for l in lines {
            let l = l.trim();
            if let Some(v) = l.strip_prefix("label:") {
                self.label = clean(v.trim(), "partition table type", |c| {
                    c.is_ascii_alphanumeric()
                })?;
                continue;
            }
            if let Some(v) = l.strip_prefix("sector-size:") {
                sector = v
                    .trim()
                    .parse()
                    .map_err(|_| format!("bad sector size '{}'", v.escape_debug()))?;
                if !(512..=65536).contains(&sector) || !sector.is_multiple_of(512) {
                    return Err(format!("bad sector size {sector}"));
                }
                continue;
            }
            let Some((dev, spec)) = l.split_once(" : ") else {
                continue;
            };
            let dev = dev.trim();
            let Some(part) = self.parts.iter_mut().find(|p| p.dev == dev) else {
                return Err(format!(
                    "the partition table names {} but the probe did not",
                    dev.escape_debug()
                ));
            };
            let scale = sector / 512;
            for item in split_fields(spec) {
                let (k, v) = item
                    .split_once('=')
                    .map(|(k, v)| (k.trim(), v.trim()))
                    .unwrap_or((item.trim(), ""));
                let num = |v: &str| {
                    v.parse::<u64>()
                        .map_err(|_| format!("bad {k} '{}' for {dev}", v.escape_debug()))
                };
                match k {
                    "start" => {
                        part.start = num(v)?
                            .checked_mul(scale)
                            .ok_or("partition start overflows")?
                    }
                    "size" => {
                        part.size = num(v)?
                            .checked_mul(scale)
                            .ok_or("partition size overflows")?
                    }
                    "type" | "Id" => {
                        part.ptype =
                            clean(v, "partition type", |c| c.is_ascii_hexdigit() || c == '-')?
                    }
                    "bootable" => part.bootable = true,
                    "name" => {
                        part.name = clean(v.trim_matches('"'), "partition name", |c| {
                            c.is_ascii_alphanumeric() || "._- ".contains(c)
                        })?
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Why this node cannot be captured, if it cannot.
    pub fn check(&self) -> Result<(), String> {
        if self.disk.is_empty() {
            return Err(format!(
                "the root filesystem ({}) is not on a partition of a disk (LVM, RAID and whole-disk filesystems are not cloned)",
                if self.rootdev.is_empty() { "unknown" } else { &self.rootdev }
            ));
        }
        for t in ["rsync", "sfdisk", "blkid", "findmnt"] {
            if self.tools.get(t) != Some(&true) {
                return Err(format!(
                    "the node has no {t} (install it on the golden node: package {})",
                    match t {
                        "rsync" => "rsync",
                        "sfdisk" => "fdisk or util-linux",
                        _ => "util-linux",
                    }
                ));
            }
        }
        if self.label != "dos" && self.label != "gpt" {
            return Err(format!(
                "the partition table of {} is '{}' (dos or gpt expected)",
                self.disk, self.label
            ));
        }
        if !self.parts.iter().any(|p| p.mount == "/") {
            return Err(format!("no partition of {} is mounted at /", self.disk));
        }
        for p in &self.parts {
            if p.size == 0 {
                return Err(format!("{} is not in the partition table", p.dev));
            }
            if !p.mount.is_empty() && !FSTYPES.contains(&p.fstype.as_str()) {
                return Err(format!(
                    "{} ({}) has filesystem type '{}', which the deploy cannot make ({})",
                    p.dev,
                    p.mount,
                    p.fstype,
                    FSTYPES.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// Filesystems to copy, parents before children.
    pub fn filesystems(&self) -> Vec<&Part> {
        let mut v: Vec<&Part> = self
            .parts
            .iter()
            .filter(|p| p.mount.starts_with('/') && p.fstype != "swap")
            .collect();
        v.sort_by_key(|p| {
            (
                p.mount.matches('/').count() - usize::from(p.mount == "/"),
                p.mount.clone(),
            )
        });
        v
    }

    /// Bytes the partitions need: the end of the last one.
    pub fn needed_bytes(&self) -> u64 {
        self.parts
            .iter()
            .map(|p| (p.start + p.size) * 512)
            .max()
            .unwrap_or(0)
    }

    /// The layout, as a human reads it (written beside the deploy script).
    pub fn layout_text(&self, image: &str) -> String {
        let mut s = format!(
            "# sysclone layout of {image}: captured from {} ({} bytes, {} table, {} firmware)\n# num start size type fstype uuid label mount\n",
            self.disk, self.disk_bytes, self.label, if self.uefi { "UEFI" } else { "BIOS" }
        );
        for p in &self.parts {
            let _ = writeln!(
                s,
                "{} {} {} {}{} {} {} {} {}",
                p.num,
                p.start,
                p.size,
                p.ptype,
                if p.bootable { ",bootable" } else { "" },
                or_dash(&p.fstype),
                or_dash(&p.uuid),
                or_dash(&p.label),
                or_dash(&p.mount)
            );
        }
        s
    }
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}

/// Splits `start=1, size=2, name="a, b"` at commas outside quotes.
fn split_fields(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut q = false;
    let mut from = 0;
    for (i, c) in s.char_indices() {
        match c {
            '"' => q = !q,
            ',' if !q => {
                out.push(&s[from..i]);
                from = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[from..]);
    out.into_iter()
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .collect()
}

/// A string quoted for a POSIX shell.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// What the capture leaves out of every image: kernel filesystems, scratch space and the node's
/// network identity (ssh host keys, machine-id, persistent net rules, DHCP leases). rsync
/// patterns, anchored at the node's `/`.
pub const BUILTIN_EXCLUDES: &[&str] = &[
    "/proc/*",
    "/sys/*",
    "/dev/*",
    "/run/*",
    "/tmp/*",
    "/var/tmp/*",
    "/mnt/*",
    "/media/*",
    "/lost+found",
    "/swapfile",
    "/etc/ssh/ssh_host_*",
    "/etc/machine-id",
    "/var/lib/dbus/machine-id",
    "/var/lib/systemd/random-seed",
    "/var/lib/systemd/credential.secret",
    "/etc/udev/rules.d/70-persistent-net.rules",
    "/etc/udev/rules.d/70-persistent-cd.rules",
    "/var/lib/dhcp/*",
    "/var/lib/dhclient/*",
    "/var/lib/NetworkManager/*.lease",
    "/var/lib/NetworkManager/*.leases",
    "/var/lib/systemd/network/*",
    "/var/lib/udhcpc/*",
    "/var/lib/wicked/*",
    "/var/cache/apt/archives/*.deb",
    "/var/cache/dnf/*",
    "/var/cache/yum/*",
    "/var/log/journal/*",
    "/xcatpost/mypostscript*",
];

/// The rsync patterns that apply to the filesystem mounted at `mount`: anchored patterns under
/// it, re-anchored at its root; unanchored ones as they are. Patterns under a deeper mount point
/// belong to that filesystem.
pub fn excludes_for(mount: &str, all_mounts: &[&str], patterns: &[String]) -> Vec<String> {
    let owner = |path: &str| -> String {
        all_mounts
            .iter()
            .filter(|m| {
                **m == "/"
                    || path == **m
                    || path.starts_with(&format!("{}/", m.trim_end_matches('/')))
            })
            .max_by_key(|m| m.len())
            .map(|m| m.to_string())
            .unwrap_or_else(|| "/".into())
    };
    let mut out = Vec::new();
    for p in patterns {
        let p = p.trim();
        if p.is_empty() || p.starts_with('#') {
            continue;
        }
        if !p.starts_with('/') {
            out.push(p.to_string());
            continue;
        }
        if owner(p) != mount {
            continue;
        }
        let rest = if mount == "/" { p } else { &p[mount.len()..] };
        if !rest.is_empty() {
            out.push(rest.to_string());
        }
    }
    out
}

/// The deploy script genesis runs (`SCRIPTNAME=<image>`, xCAT's `<image>.master`): check the
/// disk is big enough before touching it, partition, make the filesystems, stream the image by
/// HTTP, give the clone its own identity, install the boot loader, report, next, reboot.
/// Genesis sets BASE (http://server:port), SERVER, HTTPPORT, NODE, IF and MAC.
pub fn deploy_script(image: &str, probe: &Probe, needs: &BTreeMap<u32, u64>) -> String {
    let q = sh_quote;
    let mut s = String::new();
    let _ = writeln!(s, "#!/bin/sh\n# bootherd sysclone deploy of image {image}, written by imgcapture from the golden node's layout.\n# Run by genesis (SCRIPTNAME={image}) with BASE, SERVER, HTTPPORT, NODE, IF and MAC set.");
    s.push_str(
        r#"set -u
set -o pipefail 2>/dev/null
PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
say() { echo "sysclone: $*" >/dev/console; }
status() { wget -q -O /dev/null "$BASE/xcat/node/installstatus/$1" 2>/dev/null || say "cannot report $1"; }
fail() { say "FAILED: $*"; status failed; exit 1; }
"#,
    );
    let _ = writeln!(
        s,
        "IMAGE={}\nNEED={}\nLABEL={}",
        q(image),
        probe.needed_bytes(),
        q(&probe.label)
    );
    s.push_str(
        r#"DISK=
for b in /sys/block/vd* /sys/block/sd* /sys/block/nvme*n* /sys/block/xvd* /sys/block/hd*; do
    [ -r "$b/size" ] || continue
    [ "$(cat "$b/removable" 2>/dev/null)" = 1 ] && continue
    [ "$(cat "$b/size")" -gt 0 ] || continue
    DISK=/dev/${b##*/}
    break
done
[ -n "$DISK" ] || fail "no disk found (virtio, SCSI/SATA, NVMe)"
HAVE=$(($(cat "/sys/block/${DISK#/dev/}/size") * 512))
# The real tools mknb copied in, by path: busybox's applets of the same names (mke2fs, mkswap,
# blkid, tar) lack what the deploy needs, and its shell may prefer them over $PATH.
real() { for d in /usr/sbin /usr/bin; do [ -x "$d/$1" ] && { echo "$d/$1"; return; }; done; }
SFDISK=$(real sfdisk) BLKID=$(real blkid) TAR=$(real tar) MKSWAP=$(real mkswap) MKE2FS=$(real mke2fs)
MKFS_VFAT=$(real mkfs.vfat) MKFS_XFS=$(real mkfs.xfs) MKFS_BTRFS=$(real mkfs.btrfs)
[ -n "$SFDISK" ] && [ -n "$BLKID" ] && [ -n "$TAR" ] || fail "genesis lacks sfdisk, blkid or GNU tar: rebuild it with mknb on a server that has them"
part() { case "$DISK" in *[0-9]) echo "${DISK}p$1" ;; *) echo "$DISK$1" ;; esac; }
"#,
    );
    // What each partition of the image must hold, for a partition file (linuximage.partitionfile).
    let _ = write!(s, "PNEED='");
    let mut first = true;
    for p in probe.parts.iter().filter(|p| !p.fstype.is_empty()) {
        if !first {
            s.push(' ');
        }
        first = false;
        let _ = write!(
            s,
            "{}:{}",
            p.num,
            needs.get(&p.num).copied().unwrap_or(1 << 20)
        );
    }
    s.push_str("'\npdesc() {\n    case $1 in\n");
    for p in probe.parts.iter().filter(|p| !p.fstype.is_empty()) {
        let what = if p.mount.is_empty() || p.mount == "swap" {
            p.fstype.clone()
        } else {
            format!("{} ({})", p.mount, p.fstype)
        };
        let _ = writeln!(s, "    {}) echo {} ;;", p.num, q(&what));
    }
    s.push_str("    esac\n}\n");
    s.push_str(FIT_CHECK);
    s.push_str(
        r##"# The partitioning nodeset staged from linuximage.partitionfile (none: the golden layout).
PARTS=
wget -q -O /tmp/parts "$BASE/install/sysclone/scripts/$IMAGE.partitions" || fail "cannot fetch $IMAGE.partitions (run nodeset again): the disk was not touched"
case "$(head -n 1 /tmp/parts)" in
"#bootherd-partitions none") ;;
"#bootherd-partitions sfdisk")
    tail -n +2 /tmp/parts >/tmp/parts.sfdisk
    PARTS=/tmp/parts.sfdisk ;;
"#bootherd-partitions script")
    tail -n +2 /tmp/parts >/tmp/parts.sh
    rm -f /tmp/partitionfile
    DISK=$DISK HAVE=$HAVE sh /tmp/parts.sh >/tmp/parts.sfdisk 2>/tmp/parts.err || fail "the partition script (linuximage.partitionfile s:) failed: $(tail -n 2 /tmp/parts.err): the disk was not touched"
    # xCAT's convention: the script writes /tmp/partitionfile; printing the table works too.
    if [ -s /tmp/partitionfile ]; then PARTS=/tmp/partitionfile; else PARTS=/tmp/parts.sfdisk; fi ;;
*) fail "$IMAGE.partitions is not understood (run nodeset again): the disk was not touched" ;;
esac
if [ -n "$PARTS" ]; then
    fit || fail "$FITERR: the disk was not touched"
else
    [ "$HAVE" -ge "$NEED" ] || fail "disk $DISK has $HAVE bytes; image $IMAGE needs $NEED: the disk was not touched"
fi
status installing
if [ -n "$PARTS" ]; then
    say "partitioning $DISK ($HAVE bytes) from the partition file"
    "$SFDISK" -q --wipe always --wipe-partitions always "$DISK" <"$PARTS" >/dev/console 2>&1 || fail "sfdisk $DISK"
else
say "partitioning $DISK ($HAVE bytes) as $LABEL"
"$SFDISK" -q --wipe always --wipe-partitions always "$DISK" <<SFDISK >/dev/console 2>&1 || fail "sfdisk $DISK"
"##,
    );
    let _ = writeln!(s, "label: {}\nunit: sectors", probe.label);
    let mut parts: Vec<&Part> = probe.parts.iter().collect();
    parts.sort_by_key(|p| p.start);
    let last_num = parts.last().map(|p| p.num);
    for p in &parts {
        let mut line = format!("$(part {}) : start={}", p.num, p.start);
        if Some(p.num) != last_num {
            let _ = write!(line, ", size={}", p.size);
        }
        if !p.ptype.is_empty() {
            let _ = write!(line, ", type={}", p.ptype);
        }
        if p.bootable {
            line.push_str(", bootable");
        }
        if !p.name.is_empty() && probe.label == "gpt" {
            let _ = write!(line, ", name=\"{}\"", p.name);
        }
        // Named by device, so partition numbers survive gaps.
        let _ = writeln!(s, "{line}");
    }
    s.push_str("SFDISK\nfi\n");
    s.push_str(
        r#"i=0
while [ $i -lt 20 ]; do
    ok=1
"#,
    );
    for p in parts.iter().filter(|p| !p.fstype.is_empty()) {
        let _ = writeln!(s, "    [ -b \"$(part {})\" ] || ok=0", p.num);
    }
    s.push_str(
        r#"    [ $ok = 1 ] && break
    i=$((i + 1)); sleep 1
done
[ $ok = 1 ] || fail "the new partitions of $DISK did not appear"
"#,
    );
    // Filesystems. Swap keeps the golden node's UUID (the initramfs's resume setting names it);
    // everything else gets a new one and the clone's fstab follows.
    let mut subst = Vec::new();
    for p in &parts {
        let dev = format!("\"$(part {})\"", p.num);
        let label = |flag: &str| {
            if p.label.is_empty() {
                String::new()
            } else {
                format!(" {flag} {}", q(&p.label))
            }
        };
        let cmd = match p.fstype.as_str() {
            "ext2" | "ext3" | "ext4" => {
                format!("\"$MKE2FS\" -F -q -t {}{} {dev}", p.fstype, label("-L"))
            }
            "xfs" => format!("\"$MKFS_XFS\" -f -q{} {dev}", label("-L")),
            "btrfs" => format!("\"$MKFS_BTRFS\" -f -q{} {dev}", label("-L")),
            "vfat" => format!("\"$MKFS_VFAT\"{} {dev}", label("-n")),
            "swap" => {
                let u = if p.uuid.is_empty() {
                    String::new()
                } else {
                    format!(" -U {}", q(&p.uuid))
                };
                format!("\"$MKSWAP\"{u}{} {dev}", label("-L"))
            }
            _ => continue,
        };
        let _ = writeln!(
            s,
            "say \"making {} on $(part {})\"\n{cmd} >/dev/null 2>/tmp/mkfs.err || fail \"{} on $(part {}): $(tail -n 3 /tmp/mkfs.err)\"",
            p.fstype, p.num, p.fstype, p.num
        );
        if p.fstype != "swap" && !p.uuid.is_empty() {
            let _ = writeln!(
                s,
                "NEW{}=$(\"$BLKID\" -p -o value -s UUID \"$(part {})\")",
                p.num, p.num
            );
            subst.push((p.uuid.clone(), format!("$NEW{}", p.num)));
        }
    }
    // Mounts, parents first.
    s.push_str("T=/sysroot\nmkdir -p $T\n");
    let fss = probe.filesystems();
    for p in &fss {
        let dir = if p.mount == "/" {
            "$T".to_string()
        } else {
            format!("$T{}", q(&p.mount))
        };
        let _ = writeln!(
            s,
            "mkdir -p {dir} && mount -t {} \"$(part {})\" {dir} || fail \"mount $(part {}) on \"{}",
            p.fstype,
            p.num,
            p.num,
            q(&p.mount)
        );
    }
    s.push_str(
        r#"say "streaming $IMAGE from $SERVER"
start=$(date +%s)
wget -q -O - "$BASE/install/sysclone/images/$IMAGE.tar" | "$TAR" -C $T --numeric-owner --xattrs --xattrs-include='*' -xpf - || fail "copying the image"
say "image copied in $(($(date +%s) - start)) s"
for d in proc sys dev run tmp; do mkdir -p $T/$d; done
chmod 1777 $T/tmp
"#,
    );
    for (old, new) in &subst {
        let _ = writeln!(s, "for f in $T/etc/fstab $T/etc/crypttab $T/etc/default/grub $T/boot/grub/grub.cfg $T/boot/grub2/grub.cfg; do [ -f \"$f\" ] && sed -i \"s/{old}/{new}/g\" \"$f\"; done");
    }
    s.push_str(IDENTITY);
    let esp = fss
        .iter()
        .find(|p| p.fstype == "vfat" && p.mount.starts_with("/boot"));
    let _ = writeln!(s, "ESP={}", q(esp.map(|p| p.mount.as_str()).unwrap_or("")));
    s.push_str(BOOTLOADER);
    for p in fss.iter().rev() {
        let dir = if p.mount == "/" {
            "$T".to_string()
        } else {
            format!("$T{}", q(&p.mount))
        };
        let _ = writeln!(s, "umount {dir} 2>/dev/null || umount -l {dir}");
    }
    s.push_str(
        r#"sync
say "$NODE is cloned from $IMAGE; rebooting from $DISK"
status booting
wget -q -O /dev/null "$BASE/xcat/node/next" || say "cannot move to the next chain step"
exit 0
"#,
    );
    s
}

/// `fit`: whether the partition file `$PARTS` fits a disk of `$HAVE` bytes and gives every
/// partition in `$PNEED` (`num:bytes` …) at least its bytes; tried on a sparse file of the disk's
/// size, so the disk itself is not touched. Sets `FITERR` when it does not.
pub const FIT_CHECK: &str = r#"fit() {
    FT=${FITDIR:-/tmp}
    F=$FT/fit.img
    rm -f $F
    dd if=/dev/zero of=$F bs=512 count=0 seek=$((HAVE / 512)) 2>/dev/null || { FITERR="cannot try the partition file"; return 1; }
    if ! "$SFDISK" -q $F <"$PARTS" >$FT/fit.err 2>&1; then
        FITERR="the partition file does not fit $DISK ($HAVE bytes): $(grep -v '^ *$' $FT/fit.err | tail -n 2 | tr '\n' ' ')"
        rm -f $F; return 1
    fi
    "$SFDISK" -d $F >$FT/fit.dump 2>/dev/null
    rm -f $F
    for pn in $PNEED; do
        n=${pn%%:*}; need=${pn#*:}
        size=$(sed -n "s|^$F$n : .*size= *\([0-9]*\).*|\1|p" $FT/fit.dump)
        if [ -z "$size" ]; then
            FITERR="the partition file has no partition $n, which holds $(pdesc $n) of the image"
            return 1
        fi
        if [ "$size" = 0 ]; then
            FITERR="the partition file does not fit $DISK ($HAVE bytes): partition $n gets no space"
            return 1
        fi
        if [ $((size * 512)) -lt "$need" ]; then
            FITERR="partition $n of the partition file has $((size * 512)) bytes; $(pdesc $n) of the image needs $need"
            return 1
        fi
    done
    return 0
}
"#;

const IDENTITY: &str = r#"say "giving the clone its identity ($NODE, $MAC)"
echo "$NODE" >$T/etc/hostname
if [ -f $T/etc/hosts ] && grep -q '^127\.0\.1\.1' $T/etc/hosts; then
    sed -i "s/^127\.0\.1\.1.*/127.0.1.1\t$NODE/" $T/etc/hosts
else
    printf '127.0.1.1\t%s\n' "$NODE" >>$T/etc/hosts
fi
: >$T/etc/machine-id
[ -L $T/var/lib/dbus/machine-id ] || rm -f $T/var/lib/dbus/machine-id
rm -f $T/etc/ssh/ssh_host_*
if [ -d $T/etc/systemd/network ] && [ -n "$MAC" ]; then
    printf '[Match]\nMACAddress=%s\n\n[Network]\nDHCP=ipv4\n' "$MAC" >$T/etc/systemd/network/05-bootherd-clone.network
fi
mkdir -p $T/opt/xcat
printf 'XCATSERVER=%s\nHTTPPORT=%s\nNODE=%s\nINSTALLDIR=/install\n' "$SERVER" "$HTTPPORT" "$NODE" >$T/opt/xcat/xcatinfo
cp $T/opt/xcat/xcatinfo $T/etc/xcatinfo
if [ ! -x $T/opt/xcat/xcatdsklspost ]; then
    wget -q -O $T/opt/xcat/xcatdsklspost "$BASE/install/postscripts/xcatdsklspost" && chmod 755 $T/opt/xcat/xcatdsklspost
    if [ -d $T/etc/systemd/system ]; then
        printf '[Unit]\nDescription=xCAT postscripts (bootherd)\nAfter=network-online.target\nWants=network-online.target\n\n[Service]\nType=oneshot\nExecStart=/opt/xcat/xcatdsklspost\nRemainAfterExit=yes\n\n[Install]\nWantedBy=multi-user.target\n' >$T/etc/systemd/system/xcatpostinit1.service
        mkdir -p $T/etc/systemd/system/multi-user.target.wants
        ln -sf /etc/systemd/system/xcatpostinit1.service $T/etc/systemd/system/multi-user.target.wants/xcatpostinit1.service
    fi
fi
mount --bind /dev $T/dev && mount -t proc proc $T/proc && mount -t sysfs sys $T/sys || fail "mounting /dev, /proc, /sys in the clone"
if [ -x $T/usr/bin/ssh-keygen ]; then
    for t in ed25519 ecdsa; do chroot $T ssh-keygen -q -t $t -N '' -f /etc/ssh/ssh_host_${t}_key >/dev/null 2>&1; done
fi
"#;

const BOOTLOADER: &str = r#"say "installing the boot loader on $DISK"
if [ -d /sys/firmware/efi ] && [ -n "$ESP" ]; then
    mount -t efivarfs efivarfs $T/sys/firmware/efi/efivars 2>/dev/null
    for g in grub-install grub2-install; do
        if [ -x $T/usr/sbin/$g ]; then
            chroot $T $g --target=x86_64-efi --efi-directory="$ESP" --removable --no-nvram >/dev/console 2>&1 || fail "$g (UEFI)"
            break
        fi
    done
    umount $T/sys/firmware/efi/efivars 2>/dev/null
else
    done=0
    for g in grub-install grub2-install; do
        if [ -x $T/usr/sbin/$g ]; then
            chroot $T $g --target=i386-pc "$DISK" >/dev/console 2>&1 || fail "$g $DISK"
            done=1
            break
        fi
    done
    [ $done = 1 ] || fail "the image has no grub-install: install grub on the golden node"
fi
if [ -x $T/usr/sbin/update-grub ]; then
    chroot $T update-grub >/dev/null 2>/tmp/grub.err || fail "update-grub: $(tail -n 3 /tmp/grub.err)"
elif [ -x $T/usr/sbin/grub2-mkconfig ]; then
    chroot $T grub2-mkconfig -o /boot/grub2/grub.cfg >/dev/null 2>/tmp/grub.err || fail "grub2-mkconfig: $(tail -n 3 /tmp/grub.err)"
fi
umount $T/sys $T/proc $T/dev 2>/dev/null
"#;

/// Bytes of the tree under `dir` as a filesystem stores them (files rounded up to 4 KiB blocks,
/// one block per directory and link); the directories in `skip` (nested filesystems) are not
/// counted.
fn tree_bytes(dir: &Path, skip: &[PathBuf]) -> u64 {
    let mut total = 0u64;
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let path = e.path();
            let Ok(md) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if md.is_dir() {
                total += 4096;
                if !skip.contains(&path) {
                    todo.push(path);
                }
            } else {
                total += md.len().div_ceil(4096).max(1) * 4096;
            }
        }
    }
    total
}

/// What each partition with a filesystem needs at least, for a partition file: its data from the
/// captured tree plus a tenth and the filesystem's own overhead (journal, tables); swap 1 MiB.
pub fn fs_needs(tree: &Path, probe: &Probe) -> BTreeMap<u32, u64> {
    let fss = probe.filesystems();
    let dir_of = |m: &str| {
        if m == "/" {
            tree.to_path_buf()
        } else {
            tree.join(m.trim_start_matches('/'))
        }
    };
    let mut out = BTreeMap::new();
    for p in &probe.parts {
        let need = match p.fstype.as_str() {
            "" => continue,
            "swap" => 1 << 20,
            _ if p.mount.starts_with('/') => {
                let skip: Vec<PathBuf> = fss
                    .iter()
                    .filter(|o| o.mount != p.mount)
                    .filter(|o| p.mount == "/" || o.mount.starts_with(&format!("{}/", p.mount)))
                    .map(|o| dir_of(&o.mount))
                    .collect();
                let data = tree_bytes(&dir_of(&p.mount), &skip);
                let overhead: u64 = if p.fstype == "vfat" {
                    1 << 20
                } else {
                    64 << 20
                };
                data + data / 10 + overhead
            }
            // A filesystem the golden node had but did not mount: made empty.
            _ => 64 << 20,
        };
        out.insert(p.num, need);
    }
    out
}

/// Stages `linuximage.partitionfile` for the deploy (nodeset runs this): writes
/// `<installdir>/sysclone/scripts/<image>.partitions`, whose first line says what follows:
/// `#bootherd-partitions none` (replay the golden node's layout), `… sfdisk` (an sfdisk script,
/// the value's file) or `… script` (`s:<file>`: a shell script genesis runs with `DISK` and
/// `HAVE` set, whose output is the sfdisk script). Pure apart from reading the named file and
/// writing the staged one.
pub fn stage_partitions(
    installdir: &Path,
    image: &str,
    partitionfile: Option<&str>,
) -> Result<(), String> {
    let p = paths(installdir, image);
    let pf = partitionfile.map(str::trim).filter(|v| !v.is_empty());
    let body = match pf {
        None => "#bootherd-partitions none\n".to_string(),
        Some(v) => {
            let master = std::fs::read_to_string(&p.script).unwrap_or_default();
            if !master.contains("#bootherd-partitions") {
                return Err(format!(
                    "osimage '{image}' was captured before partition files were supported: capture it again (imgcapture <node> -t sysclone -o {image}) to use linuximage.partitionfile"
                ));
            }
            if v.contains(',')
                || v.starts_with("d:")
                || v.starts_with("c:")
                || v.starts_with("s:d:")
                || v.starts_with("s:c:")
            {
                return Err(format!(
                    "osimage '{image}': linuximage.partitionfile '{v}': a sysclone image takes one sfdisk script file, or s:<script> that prints one"
                ));
            }
            let (kind, file) = match v.strip_prefix("s:") {
                Some(f) => ("script", f),
                None => ("sfdisk", v),
            };
            let text = std::fs::read_to_string(file).map_err(|e| {
                format!("osimage '{image}': cannot read linuximage.partitionfile {file}: {e}")
            })?;
            if text.trim().is_empty() {
                return Err(format!(
                    "osimage '{image}': linuximage.partitionfile {file} is empty"
                ));
            }
            let mut b = format!("#bootherd-partitions {kind}\n{text}");
            if !b.ends_with('\n') {
                b.push('\n');
            }
            b
        }
    };
    let dest = p.script.with_extension("partitions");
    let tmp = p.script.with_extension("partitions.new");
    std::fs::write(&tmp, body)
        .and_then(|_| std::fs::rename(&tmp, &dest))
        .map_err(|e| format!("cannot write {}: {e}", dest.display()))
}

/// Where a sysclone image's files are under `installdir`.
pub struct Paths {
    pub tree: PathBuf,
    pub tar: PathBuf,
    pub script: PathBuf,
    pub layout: PathBuf,
    pub sfdisk: PathBuf,
}

pub fn paths(installdir: &Path, image: &str) -> Paths {
    let s = installdir.join("sysclone");
    Paths {
        tree: s.join("images").join(image),
        tar: s.join("images").join(format!("{image}.tar")),
        script: s.join("scripts").join(format!("{image}.master")),
        layout: s.join("scripts").join(format!("{image}.layout")),
        sfdisk: s.join("scripts").join(format!("{image}.sfdisk")),
    }
}

/// What `imgcapture -t sysclone` needs.
pub struct CaptureReq {
    pub node: String,
    pub image: String,
    pub user: String,
    pub ssh_options: Vec<String>,
    /// Files of rsync exclude patterns (recorded as linuximage.exlist).
    pub exlist: Vec<PathBuf>,
}

fn ssh_base(opts: &[String]) -> Vec<String> {
    let mut v: Vec<String> = [
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=accept-new",
        "-o",
        "ConnectTimeout=10",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for o in opts {
        v.push("-o".into());
        v.push(o.clone());
    }
    v
}

fn valid_image_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 128
        && !n.starts_with('.')
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// Captures `req.node` into `req.image`; `say` gets progress lines.
pub fn capture(
    store: &std::sync::Arc<Store>,
    req: &CaptureReq,
    say: &mut dyn FnMut(&str),
) -> anyhow::Result<()> {
    if !valid_image_name(&req.image) {
        bail!(
            "'{}' is not a usable image name (letters, digits, '.', '_', '-')",
            req.image
        );
    }
    let r = crate::store::resolver::Resolver::new(store.clone());
    if store.get("nodelist", &[&req.node])?.is_none() {
        bail!("'{}' is not a node (nodels)", req.node);
    }
    let existing = store.get("osimage", &[&req.image])?;
    let old = if existing.is_some() {
        Some(super::spec::ImageSpec::load(store, &req.image)?)
    } else {
        None
    };
    if let Some(o) = &old {
        let pm = o.os("provmethod");
        if pm != "sysclone" {
            bail!("osimage '{}' exists with provmethod '{pm}': choose another name for the sysclone image", req.image);
        }
    }
    let exlist: Vec<PathBuf> = if !req.exlist.is_empty() {
        req.exlist.clone()
    } else {
        old.as_ref()
            .and_then(|o| o.linuximage.get("exlist").cloned())
            .map(|e| {
                e.split(',')
                    .map(|s| PathBuf::from(s.trim()))
                    .filter(|p| !p.as_os_str().is_empty())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut patterns: Vec<String> = BUILTIN_EXCLUDES.iter().map(|s| s.to_string()).collect();
    for f in &exlist {
        let t = std::fs::read_to_string(f)
            .with_context(|| format!("cannot read the exclude list {}", f.display()))?;
        patterns.extend(
            t.lines()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty() && !l.starts_with('#')),
        );
    }
    for t in ["ssh", "rsync", "tar"] {
        if !crate::image::genimage::tool_present(t) {
            bail!("imgcapture needs {t} on this server");
        }
    }
    let addr = r
        .attr(&req.node, "hosts", "ip")?
        .unwrap_or_else(|| req.node.clone());
    let target = format!("{}@{addr}", req.user);
    let ssh = ssh_base(&req.ssh_options);

    // 1. What the node is.
    say(&format!(
        "imgcapture: probing {} ({addr}) over ssh",
        req.node
    ));
    let mut c = Command::new("ssh");
    c.args(&ssh)
        .arg(&target)
        .arg("sh -s")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().context("cannot run ssh")?;
    if let Some(mut i) = child.stdin.take() {
        use std::io::Write;
        let _ = i.write_all(PROBE_SCRIPT.as_bytes());
    }
    let out = child.wait_with_output().context("ssh")?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err
            .lines()
            .rfind(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .to_string();
        bail!(
            "cannot reach {} over ssh as {}: {}; nothing was changed",
            req.node,
            req.user,
            if last.is_empty() {
                format!("ssh exited with {}", out.status)
            } else {
                last
            }
        );
    }
    let probe = Probe::parse(&String::from_utf8_lossy(&out.stdout)).map_err(|e| {
        anyhow::anyhow!(
            "{}: the probe's answer is not understood: {e}; nothing was changed",
            req.node
        )
    })?;
    probe
        .check()
        .map_err(|e| anyhow::anyhow!("{}: {e}; nothing was changed", req.node))?;
    if probe.osvers.is_empty() || probe.arch.is_empty() {
        bail!(
            "{}: /etc/os-release or uname gave no OS version or architecture; nothing was changed",
            req.node
        );
    }
    say(&format!(
        "imgcapture: {} runs {} {} from {} ({} bytes, {} partitions)",
        req.node,
        probe.osvers,
        probe.arch,
        probe.disk,
        probe.disk_bytes,
        probe.parts.len()
    ));

    let installdir = PathBuf::from(
        store
            .site("installdir")?
            .unwrap_or_else(|| "/install".into()),
    );
    let p = paths(&installdir, &req.image);
    std::fs::create_dir_all(&p.tree)
        .with_context(|| format!("cannot create {}", p.tree.display()))?;
    if let Some(parent) = p.script.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    // One capture of an image at a time (the lock lives outside the tree, which is copied).
    let _lock =
        super::genimage::lock_image(&installdir.join("sysclone").join("locks").join(&req.image))?;

    // 2. Each filesystem, parents first.
    let fss = probe.filesystems();
    let mounts: Vec<&str> = fss.iter().map(|f| f.mount.as_str()).collect();
    let rsh = ssh
        .iter()
        .map(|a| {
            if a.contains(' ') {
                sh_quote(a)
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    let t0 = std::time::Instant::now();
    for fs in &fss {
        let dest = if fs.mount == "/" {
            p.tree.clone()
        } else {
            p.tree.join(fs.mount.trim_start_matches('/'))
        };
        std::fs::create_dir_all(&dest)
            .with_context(|| format!("cannot create {}", dest.display()))?;
        let mut c = Command::new("rsync");
        c.args([
            "-aHAXx",
            "--protect-args",
            "--numeric-ids",
            "--delete",
            "--delete-excluded",
            "--stats",
            "-e",
        ])
        .arg(format!("ssh {rsh}"));
        for e in excludes_for(&fs.mount, &mounts, &patterns) {
            c.arg(format!("--exclude={e}"));
        }
        // Nested filesystems' contents are theirs: this copy neither sends nor deletes them.
        for m in &mounts {
            if *m != fs.mount && (fs.mount == "/" || m.starts_with(&format!("{}/", fs.mount))) {
                let rel = if fs.mount == "/" {
                    m.to_string()
                } else {
                    m[fs.mount.len()..].to_string()
                };
                c.arg(format!("--filter=P {rel}/**"));
            }
        }
        let src = if fs.mount == "/" {
            "/".to_string()
        } else {
            format!("{}/", fs.mount)
        };
        c.arg(format!("{target}:{src}"))
            .arg(format!("{}/", dest.display()));
        say(&format!(
            "imgcapture: copying {} ({} on {})",
            fs.mount, fs.fstype, fs.dev
        ));
        let o = c.output().context("cannot run rsync")?;
        // 24: files vanished during the transfer, normal on a running system.
        if !o.status.success() && o.status.code() != Some(24) {
            let err = String::from_utf8_lossy(&o.stderr);
            bail!(
                "rsync of {}:{} failed ({}): {}",
                req.node,
                fs.mount,
                o.status,
                err.lines()
                    .rfind(|l| !l.trim().is_empty())
                    .unwrap_or("")
                    .trim()
            );
        }
        let stats = String::from_utf8_lossy(&o.stdout);
        if let Some(l) = stats
            .lines()
            .find(|l| l.starts_with("Total transferred file size"))
        {
            say(&format!("imgcapture:   {}", l.trim()));
        }
    }
    // Empty mount points for what was left out.
    for d in ["proc", "sys", "dev", "run", "tmp"] {
        let _ = std::fs::create_dir_all(p.tree.join(d));
    }
    say(&format!(
        "imgcapture: copied in {:.1} s; packing {}",
        t0.elapsed().as_secs_f64(),
        p.tar.display()
    ));

    // 3. The tar the deploy streams.
    let tmp = p.tar.with_extension("tar.new");
    let o = Command::new("tar")
        .args(["--numeric-owner", "--xattrs", "--xattrs-include=*", "-C"])
        .arg(&p.tree)
        .arg("-cf")
        .arg(&tmp)
        .arg(".")
        .output()
        .context("cannot run tar")?;
    if !o.status.success() {
        let _ = std::fs::remove_file(&tmp);
        bail!(
            "tar of {} failed: {}",
            p.tree.display(),
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    std::fs::rename(&tmp, &p.tar).with_context(|| format!("cannot write {}", p.tar.display()))?;

    // 4. Layout and deploy script.
    let write = |path: &Path, text: &str| -> anyhow::Result<()> {
        let t = path.with_extension("new");
        std::fs::write(&t, text).with_context(|| format!("cannot write {}", t.display()))?;
        std::fs::rename(&t, path).with_context(|| format!("cannot write {}", path.display()))
    };
    write(&p.layout, &probe.layout_text(&req.image))?;
    let dump: String = {
        let text = String::from_utf8_lossy(&out.stdout);
        let mut s = String::new();
        let mut on = false;
        for l in text.lines() {
            if l == "sfdisk-end" {
                on = false;
            }
            if on {
                s.push_str(l);
                s.push('\n');
            }
            if l == "sfdisk-begin" {
                on = true;
            }
        }
        s
    };
    write(&p.sfdisk, &dump)?;
    write(
        &p.script,
        &deploy_script(&req.image, &probe, &fs_needs(&p.tree, &probe)),
    )?;

    // 5. The osimage definition.
    let audit = Audit {
        command: "imgcapture".into(),
        noderange: req.node.clone(),
        args: format!("-t sysclone -o {}", req.image),
    };
    let tree = p.tree.display().to_string();
    let ex = exlist
        .iter()
        .map(|e| e.display().to_string())
        .collect::<Vec<_>>()
        .join(",");
    store.write(Some(&audit), |tx| {
        tx.set(
            "osimage",
            &[&req.image],
            &[
                ("imagetype", Some("linux")),
                ("provmethod", Some("sysclone")),
                ("osname", Some("Linux")),
                ("osvers", Some(probe.osvers.as_str())),
                ("osarch", Some(probe.arch.as_str())),
            ],
        )?;
        tx.set(
            "linuximage",
            &[&req.image],
            &[
                ("rootimgdir", Some(tree.as_str())),
                (
                    "exlist",
                    if ex.is_empty() {
                        None
                    } else {
                        Some(ex.as_str())
                    },
                ),
            ],
        )?;
        Ok(())
    })?;
    say(&format!(
        "imgcapture: osimage {} (provmethod=sysclone) captured from {}: {}",
        req.image,
        req.node,
        p.tree.display()
    ));
    Ok(())
}

/// Removes a sysclone image's files (the tree, its tar, layout and deploy script).
pub fn remove(installdir: &Path, image: &str, say: &mut dyn FnMut(&str)) -> anyhow::Result<()> {
    let p = paths(installdir, image);
    if p.tree.exists() {
        say(&format!("Removing directory {}", p.tree.display()));
        std::fs::remove_dir_all(&p.tree)
            .with_context(|| format!("cannot remove {}", p.tree.display()))?;
    }
    let staged = p.script.with_extension("partitions");
    for f in [&p.tar, &p.script, &p.layout, &p.sfdisk, &staged] {
        if f.exists() {
            say(&format!("Removing file {}", f.display()));
            std::fs::remove_file(f).with_context(|| format!("cannot remove {}", f.display()))?;
        }
    }
    let _ = std::fs::remove_dir_all(installdir.join("sysclone").join("locks").join(image));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "os=debian12\narch=x86_64\nrsync=yes\nsfdisk=yes\nblkid=yes\nfindmnt=yes\nfirmware=bios\nrootdev=/dev/vda1\ndisk=/dev/vda\ndisksize=2147483648\npart\t1\t/dev/vda1\text4\t0b9c3e4a-1111-2222-3333-444455556666\tgoldroot\t/\npart\t2\t/dev/vda2\tswap\taaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee\t\tswap\npart\t3\t/dev/vda3\text4\t12345678-1111-2222-3333-444455556666\t\t/var/lib/data\nsfdisk-begin\nlabel: dos\nlabel-id: 0x1234abcd\ndevice: /dev/vda\nunit: sectors\nsector-size: 512\n\n/dev/vda1 : start=        2048, size=     3000000, type=83, bootable\n/dev/vda2 : start=     3002048, size=      500000, type=82\n/dev/vda3 : start=     3502048, size=      100000, type=83\nsfdisk-end\n";

    #[test]
    fn parses_the_probe() {
        let p = Probe::parse(SAMPLE).expect("parses");
        assert_eq!(p.osvers, "debian12");
        assert_eq!(p.disk, "/dev/vda");
        assert_eq!(p.label, "dos");
        assert_eq!(p.parts.len(), 3);
        assert_eq!(p.parts[0].start, 2048);
        assert!(p.parts[0].bootable);
        assert_eq!(p.parts[1].ptype, "82");
        assert_eq!(p.needed_bytes(), (3502048 + 100000) * 512);
        p.check().expect("capturable");
        let fs: Vec<&str> = p.filesystems().iter().map(|f| f.mount.as_str()).collect();
        assert_eq!(fs, ["/", "/var/lib/data"]);
    }

    #[test]
    fn os_release_names_become_xcat_names() {
        assert_eq!(xcat_osvers("rhel9.4"), "rhels9.4");
        assert_eq!(xcat_osvers("ubuntu22.04"), "ubuntu22.04");
        assert_eq!(xcat_osvers("sles15.5"), "sles15.5");
        assert_eq!(xcat_osvers("debian12"), "debian12");
    }

    #[test]
    fn refuses_what_it_cannot_clone() {
        let lvm = SAMPLE
            .replace("disk=/dev/vda\n", "")
            .replace("rootdev=/dev/vda1", "rootdev=/dev/mapper/vg-root");
        let p = Probe::parse(&lvm).expect("parses");
        assert!(p.check().unwrap_err().contains("not on a partition"));
        let norsync = SAMPLE.replace("rsync=yes", "rsync=no");
        assert!(Probe::parse(&norsync)
            .expect("parses")
            .check()
            .unwrap_err()
            .contains("no rsync"));
        assert!(Probe::parse(&SAMPLE.replace("goldroot", "gold'root")).is_err());
        assert!(Probe::parse(&SAMPLE.replace("\t/var/lib/data", "\t/var/../etc")).is_err());
        assert!(Probe::parse(&SAMPLE.replace("/dev/vda3 :", "/dev/vdz3 :")).is_err());
        assert!(Probe::parse(SAMPLE.trim_end().trim_end_matches("sfdisk-end")).is_err());
    }

    #[test]
    fn excludes_follow_their_filesystem() {
        let mounts = ["/", "/var/lib/data", "/boot"];
        let pats: Vec<String> = ["/tmp/*", "/var/lib/data/cache/*", "/boot/old", "*.pyc"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(excludes_for("/", &mounts, &pats), ["/tmp/*", "*.pyc"]);
        assert_eq!(
            excludes_for("/var/lib/data", &mounts, &pats),
            ["/cache/*", "*.pyc"]
        );
        assert_eq!(excludes_for("/boot", &mounts, &pats), ["/old", "*.pyc"]);
    }

    #[test]
    fn the_deploy_script_checks_the_disk_first_and_lets_the_last_partition_grow() {
        let p = Probe::parse(SAMPLE).expect("parses");
        let s = deploy_script("gold", &p, &BTreeMap::new());
        let check = s.find("the disk was not touched").expect("size check");
        let sfdisk = s.find("\"$SFDISK\" -q --wipe").expect("sfdisk");
        assert!(
            check < sfdisk,
            "the size check comes before the disk is written"
        );
        assert!(s.contains(&format!("NEED={}", (3502048u64 + 100000) * 512)));
        assert!(s.contains("start=2048, size=3000000, type=83, bootable"));
        assert!(s.contains("start=3502048, type=83\n"), "{s}");
        assert!(s.contains("\"$MKSWAP\" -U 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee'"));
        assert!(s.contains("\"$MKE2FS\" -F -q -t ext4 -L 'goldroot'"));
        assert!(s.contains("s/0b9c3e4a-1111-2222-3333-444455556666/$NEW1/g"));
        assert!(s.contains("$T'/var/lib/data'"));
    }

    /// The deploy's check of a partition file, run here with this machine's sfdisk on sparse
    /// files in a scratch directory (as genesis does in its RAM).
    fn fit(parts: &str, have_mib: u64, needs: &[(u32, u64)]) -> (bool, String) {
        let dir = tempfile::tempdir().expect("scratch");
        let p = Probe::parse(SAMPLE).expect("parses");
        let needs: BTreeMap<u32, u64> = needs.iter().copied().collect();
        let script = deploy_script("gold", &p, &needs);
        let from = script.find("PNEED=").expect("PNEED");
        let to = script
            .find("# The partitioning nodeset staged")
            .expect("fit");
        let pf = dir.path().join("parts.sfdisk");
        std::fs::write(&pf, parts).expect("write");
        let sfdisk = ["/usr/sbin/sfdisk", "/sbin/sfdisk"]
            .into_iter()
            .find(|p| Path::new(p).is_file())
            .expect("sfdisk (package fdisk) on this machine");
        let sh = format!(
            "SFDISK={sfdisk}\nDISK=/dev/vda\nHAVE={}\nPARTS={}\nFITDIR={}\n{}\nif fit; then echo FIT; else echo \"NOFIT $FITERR\"; fi\n",
            have_mib << 20,
            pf.display(),
            dir.path().display(),
            &script[from..to]
        );
        let o = Command::new("sh").arg("-c").arg(&sh).output().expect("sh");
        let out = String::from_utf8_lossy(&o.stdout).trim().to_string();
        assert!(
            !dir.path().join("fit.img").exists(),
            "the trial image is removed"
        );
        (out == "FIT", out)
    }

    #[test]
    fn a_partition_file_must_fit_the_disk_and_the_image() {
        const MIB: u64 = 1 << 20;
        let three = "label: dos\nsize=1000MiB, type=83, bootable\nsize=64MiB, type=82\ntype=83\n";
        let needs = [(1, 600 * MIB), (2, MIB), (3, 10 * MIB)];
        assert_eq!(fit(three, 2048, &needs), (true, "FIT".into()));
        // The root partition is smaller than the image's root.
        let (ok, why) = fit(three, 2048, &[(1, 1200 * MIB), (2, MIB), (3, MIB)]);
        assert!(!ok);
        assert!(
            why.contains("partition 1 of the partition file has 1048576000 bytes; / (ext4) of the image needs 1258291200"),
            "{why}"
        );
        // A filesystem of the image has no partition.
        let (ok, why) = fit(
            "label: dos\nsize=1000MiB, type=83\nsize=64MiB, type=82\n",
            2048,
            &needs,
        );
        assert!(!ok);
        assert!(
            why.contains("has no partition 3, which holds /var/lib/data (ext4) of the image"),
            "{why}"
        );
        // The disk is too small for the file's partitions.
        let (ok, why) = fit(three, 512, &needs);
        assert!(!ok);
        assert!(
            why.contains("the partition file does not fit /dev/vda (536870912 bytes)"),
            "{why}"
        );
        // Not an sfdisk script at all.
        let (ok, why) = fit("this is not a table\n", 2048, &needs);
        assert!(!ok, "{why}");
    }

    #[test]
    fn nodeset_stages_the_partition_file() {
        let dir = tempfile::tempdir().expect("scratch");
        let p = paths(dir.path(), "gold");
        std::fs::create_dir_all(p.script.parent().expect("scripts")).expect("mkdir");
        let staged = dir.path().join("sysclone/scripts/gold.partitions");
        // An image captured before partition files: refused only when one is asked for.
        std::fs::write(&p.script, "#!/bin/sh\nexit 0\n").expect("old master");
        stage_partitions(dir.path(), "gold", None).expect("none");
        assert_eq!(
            std::fs::read_to_string(&staged).expect("staged"),
            "#bootherd-partitions none\n"
        );
        let pf = dir.path().join("layout.sfdisk");
        std::fs::write(&pf, "label: gpt\nsize=100MiB\n").expect("pf");
        let e = stage_partitions(dir.path(), "gold", pf.to_str()).unwrap_err();
        assert!(e.contains("capture it again"), "{e}");
        let probe = Probe::parse(SAMPLE).expect("parses");
        std::fs::write(&p.script, deploy_script("gold", &probe, &BTreeMap::new())).expect("master");
        stage_partitions(dir.path(), "gold", pf.to_str()).expect("file");
        assert_eq!(
            std::fs::read_to_string(&staged).expect("staged"),
            "#bootherd-partitions sfdisk\nlabel: gpt\nsize=100MiB\n"
        );
        let s = format!("s:{}", pf.display());
        stage_partitions(dir.path(), "gold", Some(&s)).expect("script");
        assert!(std::fs::read_to_string(&staged)
            .expect("staged")
            .starts_with("#bootherd-partitions script\n"));
        let e = stage_partitions(dir.path(), "gold", Some("/nonexistent/layout")).unwrap_err();
        assert!(
            e.contains("cannot read linuximage.partitionfile /nonexistent/layout"),
            "{e}"
        );
        let e = stage_partitions(dir.path(), "gold", Some("d:/x")).unwrap_err();
        assert!(e.contains("one sfdisk script file, or s:<script>"), "{e}");
        stage_partitions(dir.path(), "gold", Some("")).expect("unset again");
        assert!(std::fs::read_to_string(&staged)
            .expect("staged")
            .starts_with("#bootherd-partitions none"));
    }
}
