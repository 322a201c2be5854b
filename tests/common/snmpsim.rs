//! Simulated switches for the SNMP tests: `.snmprec` data generated here, served by snmpsim
//! (Debian `snmpsim`) on port 161 of an address inside a test network namespace.
//!
//! One `snmpsimd` per switch: snmpsim picks its data file by v1/v2c community (the file name) or
//! by v3 context name, and bootherd, like xCAT, sends no v3 context. An empty context makes
//! snmpsim try the transport id instead, so the same data is also stored as
//! `1.3.6.1.6.1.1.0.snmprec` (UDP/IPv4, first endpoint).
//!
//! snmpsim's pysnmp (4.4) pads AES-CFB ciphertext with zeros to a 16-byte multiple, which RFC 3826
//! does not allow; net-snmp ignores the extra bytes, async-snmp rejects the message. snmpsimd is
//! therefore started through [`SNMPSIMD`], which trims the ciphertext to the plaintext's length
//! (a CFB ciphertext's prefix is the ciphertext of the plaintext's prefix). Its DES adds a whole
//! block of padding to an already aligned plaintext (RFC 3414 pads only up to the next multiple
//! of 8, which async-snmp enforces); the shim drops that block (CBC has the same prefix property).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::Netns;

/// How a switch names its ports (ifName), the styles `switch.port` values are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `Gi1/0/7`, uplink `Te1/0/49` (Cisco ifName).
    Short,
    /// `GigabitEthernet1/0/7`, uplink `TenGigabitEthernet1/0/49` (Cisco ifDescr-like).
    Long,
    /// `7`, uplink `49` (Dell, HP ProCurve).
    Number,
    /// `Ethernet1/7`, uplink `Ethernet1/49` (Nexus, Arista).
    Nexus,
}

/// One simulated switch: `ports` access ports, an uplink (bridge port `ports + 1`) with foreign
/// MACs, a VLAN interface and the switch's own MAC (status self). Bridge port p is ifIndex
/// `ifindex_base + p`, so a consumer that skips dot1dBasePortIfIndex gets every port wrong.
#[derive(Debug, Clone)]
pub struct SimSwitch {
    pub name: String,
    pub ports: u32,
    /// MAC i (0-based) sits on access port `i % ports + 1`.
    pub macs: u32,
    pub style: Style,
    /// Q-BRIDGE-MIB rows as well as BRIDGE-MIB (false: BRIDGE-MIB only).
    pub qbridge: bool,
    pub vlan: u32,
    pub ifindex_base: u32,
    pub mac_prefix: [u8; 3],
    pub uplink_macs: u32,
}

impl SimSwitch {
    pub fn new(name: &str, style: Style, mac_prefix: [u8; 3]) -> SimSwitch {
        SimSwitch {
            name: name.to_string(),
            ports: 48,
            macs: 96,
            style,
            qbridge: true,
            vlan: 10,
            ifindex_base: 10100,
            mac_prefix,
            uplink_macs: 2,
        }
    }

    pub fn port_name(&self, p: u32) -> String {
        match self.style {
            Style::Short if p > self.ports => format!("Te1/0/{p}"),
            Style::Short => format!("Gi1/0/{p}"),
            Style::Long if p > self.ports => format!("TenGigabitEthernet1/0/{p}"),
            Style::Long => format!("GigabitEthernet1/0/{p}"),
            Style::Number => p.to_string(),
            Style::Nexus => format!("Ethernet1/{p}"),
        }
    }

    /// MAC number `i`.
    pub fn mac(&self, i: u32) -> String {
        let p = self.mac_prefix;
        format!(
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            p[0],
            p[1],
            p[2],
            (i >> 16) & 0xff,
            (i >> 8) & 0xff,
            i & 0xff
        )
    }

    /// The access port MAC `i` is on.
    pub fn port_of(&self, i: u32) -> u32 {
        i % self.ports + 1
    }

    /// A MAC on access port `p` (the first one).
    pub fn mac_on(&self, p: u32) -> String {
        self.mac(p - 1)
    }

    /// Uplink foreign MAC `i`.
    pub fn foreign_mac(&self, i: u32) -> String {
        format!(
            "00:1b:21:{:02x}:{:02x}:{:02x}",
            self.mac_prefix[2],
            (i >> 8) & 0xff,
            i & 0xff
        )
    }

    /// The switch's own MAC (listed with dot1qTpFdbStatus self).
    pub fn own_mac(&self) -> String {
        format!("02:00:5e:{:02x}:00:01", self.mac_prefix[2])
    }

    /// The .snmprec text: `oid|type|value` rows sorted by OID.
    pub fn snmprec(&self) -> String {
        let mut rows: Vec<(Vec<u32>, &str, String)> = Vec::new();
        let mut add = |oid: &str, extra: &[u32], typ: &'static str, val: String| {
            let mut o: Vec<u32> = oid.split('.').map(|x| x.parse().unwrap()).collect();
            o.extend_from_slice(extra);
            rows.push((o, typ, val));
        };
        let uplink = self.ports + 1;
        add(
            "1.3.6.1.2.1.1.1.0",
            &[],
            "4",
            format!("bootherd test switch {}", self.name),
        );
        add(
            "1.3.6.1.2.1.1.2.0",
            &[],
            "6",
            "1.3.6.1.4.1.8072.3.2.10".into(),
        );
        add("1.3.6.1.2.1.1.3.0", &[], "67", "123456".into());
        add("1.3.6.1.2.1.1.5.0", &[], "4", self.name.clone());
        add("1.3.6.1.2.1.2.1.0", &[], "2", (uplink + 1).to_string());
        let mut ifs: Vec<(u32, String, Option<u32>)> = (1..=uplink)
            .map(|p| (self.ifindex_base + p, self.port_name(p), Some(p)))
            .collect();
        ifs.push((20000 + self.vlan, format!("Vlan{}", self.vlan), None));
        for (i, name, bport) in &ifs {
            let i = *i;
            add("1.3.6.1.2.1.2.2.1.1", &[i], "2", i.to_string());
            add("1.3.6.1.2.1.2.2.1.2", &[i], "4", name.clone());
            add("1.3.6.1.2.1.2.2.1.3", &[i], "2", "6".into());
            add("1.3.6.1.2.1.2.2.1.4", &[i], "2", "1500".into());
            add("1.3.6.1.2.1.2.2.1.6", &[i], "4x", format!("02005e{i:06x}"));
            add("1.3.6.1.2.1.2.2.1.8", &[i], "2", "1".into());
            add("1.3.6.1.2.1.31.1.1.1.1", &[i], "4", name.clone());
            if let Some(p) = bport {
                add("1.3.6.1.2.1.17.1.4.1.1", &[*p], "2", p.to_string());
                add("1.3.6.1.2.1.17.1.4.1.2", &[*p], "2", i.to_string());
            }
        }
        add("1.3.6.1.2.1.17.1.2.0", &[], "2", uplink.to_string());
        let mut entries: Vec<(String, u32, u32)> = (0..self.macs)
            .map(|i| (self.mac(i), self.port_of(i), 3))
            .collect();
        entries.extend((0..self.uplink_macs).map(|i| (self.foreign_mac(i), uplink, 3)));
        entries.push((self.own_mac(), uplink, 4));
        for (mac, port, status) in entries {
            let m: Vec<u32> = mac
                .split(':')
                .map(|h| u32::from_str_radix(h, 16).unwrap())
                .collect();
            if status != 4 {
                add("1.3.6.1.2.1.17.4.3.1.1", &m, "4x", mac.replace(':', ""));
                add("1.3.6.1.2.1.17.4.3.1.2", &m, "2", port.to_string());
                add("1.3.6.1.2.1.17.4.3.1.3", &m, "2", status.to_string());
            }
            if self.qbridge {
                let mut q = vec![self.vlan];
                q.extend(&m);
                add("1.3.6.1.2.1.17.7.1.2.2.1.2", &q, "2", port.to_string());
                add("1.3.6.1.2.1.17.7.1.2.2.1.3", &q, "2", status.to_string());
            }
        }
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = String::with_capacity(rows.len() * 48);
        for (oid, typ, val) in rows {
            let o: Vec<String> = oid.iter().map(u32::to_string).collect();
            out.push_str(&format!("{}|{typ}|{val}\n", o.join(".")));
        }
        out
    }
}

/// An SNMPv3 user snmpsim accepts (`--v3-*` options).
#[derive(Debug, Clone)]
pub struct V3User {
    pub user: String,
    pub auth_proto: String,
    pub auth_key: String,
    /// (protocol, key); `None`: authNoPriv.
    pub privacy: Option<(String, String)>,
}

/// Runs /usr/bin/snmpsimd with pysnmp's AES (RFC 3826) and DES (RFC 3414) padding made exact.
pub const SNMPSIMD: &str = r#"
import runpy, sys
from pyasn1.type import univ
from pysnmp.entity import engine  # imports the privacy modules in their own order
from pysnmp.proto.secmod.rfc3826.priv import aes
_encrypt = aes.Aes.encryptData
def encrypt_unpadded(self, key, params, data):
    cipher, salt = _encrypt(self, key, params, data)
    return univ.OctetString(cipher.asOctets()[:len(data)]), salt
aes.Aes.encryptData = encrypt_unpadded
from pysnmp.proto.secmod.rfc3414.priv import des
_des_encrypt = des.Des.encryptData
def des_encrypt_exact(self, key, params, data):
    cipher, salt = _des_encrypt(self, key, params, data)
    return univ.OctetString(cipher.asOctets()[:(len(data) + 7) // 8 * 8]), salt
des.Des.encryptData = des_encrypt_exact
sys.argv = ['snmpsimd'] + sys.argv[1:]
runpy.run_path('/usr/bin/snmpsimd', run_name='__main__')
"#;

/// One snmpsimd serving one switch on `addr`:161 inside a namespace.
pub struct Snmpsim {
    pub child: Child,
    pub addr: String,
    pub community: String,
    pub log: PathBuf,
}

fn nobody() -> (nix::unistd::Uid, nix::unistd::Gid) {
    let u = nix::unistd::User::from_name("nobody")
        .ok()
        .flatten()
        .expect("user nobody");
    let g = nix::unistd::Group::from_name("nogroup")
        .ok()
        .flatten()
        .map(|g| g.gid)
        .unwrap_or(u.gid);
    (u.uid, g)
}

/// Makes `p` and everything under it belong to nobody (snmpsimd drops to nobody after binding).
fn give_to_nobody(p: &Path) {
    let (u, g) = nobody();
    nix::unistd::chown(p, Some(u), Some(g)).expect("chown");
    if p.is_dir() {
        for e in std::fs::read_dir(p).expect("read_dir").flatten() {
            give_to_nobody(&e.path());
        }
    }
}

impl Snmpsim {
    /// Starts snmpsimd for `sw` on `addr` (an address of `ns`, port 161), serving community
    /// `community` (and v3 `user` with no context), with its files under `dir`.
    pub fn start(
        ns: &Netns,
        dir: &Path,
        addr: &str,
        community: &str,
        sw: &SimSwitch,
        user: Option<&V3User>,
    ) -> Snmpsim {
        Snmpsim::start_rec(ns, dir, addr, community, &sw.snmprec(), user)
    }

    pub fn start_rec(
        ns: &Netns,
        dir: &Path,
        addr: &str,
        community: &str,
        rec: &str,
        user: Option<&V3User>,
    ) -> Snmpsim {
        let base = dir.join(format!("snmpsim-{addr}"));
        let data = base.join("data");
        let cache = base.join("cache");
        std::fs::create_dir_all(&data).expect("mkdir data");
        std::fs::create_dir_all(&cache).expect("mkdir cache");
        std::fs::write(data.join(format!("{community}.snmprec")), rec).expect("write snmprec");
        std::fs::write(data.join("1.3.6.1.6.1.1.0.snmprec"), rec).expect("write snmprec");
        // The scratch directory is root's and private; snmpsimd (as nobody) must reach its files.
        let mut d = Some(dir);
        while let Some(p) = d {
            if p == Path::new("/") || p == Path::new("/tmp") {
                break;
            }
            let _ =
                std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(0o755));
            d = p.parent();
        }
        give_to_nobody(&base);
        let log = base.join("snmpsimd.log");
        let logf = std::fs::File::create(&log).expect("log file");
        let mut c = ns.command("/usr/bin/python3");
        c.args(["-c", SNMPSIMD])
            .arg(format!("--data-dir={}", data.display()))
            .arg(format!("--cache-dir={}", cache.display()))
            .arg(format!("--agent-udpv4-endpoint={addr}:161"))
            .args(["--process-user=nobody", "--process-group=nogroup"]);
        if let Some(u) = user {
            c.arg(format!("--v3-user={}", u.user))
                .arg(format!("--v3-auth-key={}", u.auth_key))
                .arg(format!("--v3-auth-proto={}", u.auth_proto));
            if let Some((proto, key)) = &u.privacy {
                c.arg(format!("--v3-priv-key={key}"))
                    .arg(format!("--v3-priv-proto={proto}"));
            }
        }
        c.stdout(Stdio::null())
            .stderr(logf.try_clone().expect("dup log"));
        let child = c.spawn().expect("start snmpsimd (apt-get install snmpsim)");
        Snmpsim {
            child,
            addr: addr.to_string(),
            community: community.to_string(),
            log,
        }
    }

    /// Waits until the agent answers a v2c GET of sysName (it indexes its data at start).
    pub fn wait_ready(&mut self, ns: &Netns, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let o = ns
                .command("snmpget")
                .env("MIBS", "")
                .args([
                    "-v2c",
                    "-c",
                    &self.community,
                    "-t",
                    "1",
                    "-r",
                    "0",
                    "-On",
                    &self.addr,
                    "1.3.6.1.2.1.1.5.0",
                ])
                .output()
                .expect("snmpget (apt-get install snmp)");
            if o.status.success() {
                return;
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!(
                    "snmpsimd on {} exited ({st}):\n{}",
                    self.addr,
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "snmpsimd on {} did not answer within {secs} s:\n{}",
                self.addr,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Snmpsim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Adds `addr` (no prefix) to the namespace's loopback, for an agent to listen on.
pub fn add_lo_addr(ns: &Netns, addr: &str) {
    super::sh(&[
        "ip",
        "-n",
        &ns.0,
        "addr",
        "add",
        &format!("{addr}/32"),
        "dev",
        "lo",
    ]);
}

/// Runs `args` with snmpsim-style environment (numeric OIDs, no MIB loading) inside `ns`.
pub fn net_snmp(ns: &Netns, args: &[&str]) -> std::process::Output {
    let mut c: Command = ns.command(args[0]);
    c.env("MIBS", "").args(&args[1..]);
    c.output().expect("net-snmp tool")
}
