//! The export table: which directories the NFS service offers, to whom, read-only or read-write.
//! A pure function of the tables and of this host's identity ([`plan`]), plus the reads that
//! gather those facts from the resolver ([`gather`]).
//!
//! Rules (issue #6, statelite):
//! - every osimage with `provmethod=statelite` exports `<linuximage.rootimgdir>/rootimg`
//!   read-only to anyone (the default rootimgdir is `/install/netboot/<osvers>/<osarch>/<profile>`,
//!   as `boot::render` puts on the kernel command line);
//! - a node whose `statelite.statemnt` (after `$node`/`$table.col` substitution) is
//!   `server:/path` with `server` one of this host's addresses, its host name or `site.master`
//!   gets `<path>/<node>` read-write, for its own address (`hosts.ip`) alone;
//! - an export root or a directory inside it can be mounted; a directory above a node's export (`<path>` itself) is
//!   refused, because mounting it would show every node's state.

use std::net::IpAddr;

use sha2::{Digest, Sha256};

use crate::store::resolver::Resolver;
use crate::store::StoreError;

/// Tables whose change can change the export table.
pub const DEPENDS_ON: &[&str] = &[
    "osimage",
    "linuximage",
    "statelite",
    "hosts",
    "nodelist",
    "nodegroup",
    "site",
    "noderes",
    "nodetype",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// A statelite image root: read-only, any client.
    ReadOnly,
    /// A node's persistent state: read-write, that node's address only (`None`: nobody yet).
    ReadWrite { node: String, addr: Option<IpAddr> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSpec {
    /// Normalised absolute path.
    pub path: String,
    pub access: Access,
    /// For log lines: the osimage name(s) or the node.
    pub what: String,
}

impl ExportSpec {
    pub fn id(&self) -> u32 {
        export_id(&self.path)
    }

    pub fn read_only(&self) -> bool {
        self.access == Access::ReadOnly
    }

    /// Whether a client at `peer` may use this export.
    pub fn allows(&self, peer: IpAddr) -> bool {
        match &self.access {
            Access::ReadOnly => true,
            Access::ReadWrite { addr, .. } => *addr == Some(canonical(peer)),
        }
    }
}

/// The id an export's handles carry: stable across restarts (a hash of the path).
pub fn export_id(path: &str) -> u32 {
    let h = Sha256::digest(path.as_bytes());
    u32::from_be_bytes([h[0], h[1], h[2], h[3]])
}

/// IPv4-mapped IPv6 peers (from a dual-stack socket) compare as IPv4.
pub fn canonical(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// `/a//b/` → `/a/b`; `None` for relative paths and for `.`/`..` components (an export path
/// must say plainly where it is).
pub fn normalize(p: &str) -> Option<String> {
    if !p.starts_with('/') {
        return None;
    }
    let mut out = String::with_capacity(p.len());
    for c in p.split('/').filter(|c| !c.is_empty()) {
        if c == "." || c == ".." {
            return None;
        }
        out.push('/');
        out.push_str(c);
    }
    if out.is_empty() {
        out.push('/');
    }
    Some(out)
}

#[derive(Debug, Clone, Default)]
pub struct ImageFacts {
    pub name: String,
    pub provmethod: Option<String>,
    pub rootimgdir: Option<String>,
    pub osvers: Option<String>,
    pub osarch: Option<String>,
    pub profile: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct NodeFacts {
    pub node: String,
    /// `statelite.statemnt` after variable substitution.
    pub statemnt: Option<String>,
    pub ip: Option<String>,
}

/// Who "this appliance" is, for matching the server part of statemnt.
#[derive(Debug, Clone, Default)]
pub struct Local {
    pub addrs: Vec<IpAddr>,
    pub hostname: String,
    pub master: Option<String>,
}

impl Local {
    pub fn is_me(&self, server: &str) -> bool {
        let s = server.trim().trim_start_matches('[').trim_end_matches(']');
        if s.is_empty() {
            return false;
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            if self.addrs.contains(&ip) {
                return true;
            }
        }
        let short = |h: &str| h.split('.').next().unwrap_or("").to_ascii_lowercase();
        let lower = s.to_ascii_lowercase();
        if !self.hostname.is_empty()
            && (lower == self.hostname.to_ascii_lowercase() || lower == short(&self.hostname))
        {
            return true;
        }
        match &self.master {
            Some(m) if !m.is_empty() => {
                lower == m.to_ascii_lowercase()
                    || matches!((s.parse::<IpAddr>(), m.parse::<IpAddr>()), (Ok(a), Ok(b)) if a == b)
            }
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub exports: Vec<ExportSpec>,
    /// Configuration problems, one line each (logged as warnings).
    pub problems: Vec<String>,
    /// Nodes exported read-write that have no `hosts.ip` (nobody can mount their directory).
    pub missing_ip: Vec<String>,
}

impl Plan {
    /// The export a MOUNT of `path` means, and the path inside it (empty for its root; clients
    /// such as libnfs mount the directory of the file they want). `Err(true)` when the path lies
    /// above a read-write export (refused as "access denied", not "no such export").
    pub fn find_mount(&self, path: &str) -> Result<(&ExportSpec, String), bool> {
        let Some(p) = normalize(path) else {
            return Err(false);
        };
        let best = self
            .exports
            .iter()
            .filter(|e| p == e.path || e.path == "/" || p.starts_with(&format!("{}/", e.path)))
            .max_by_key(|e| e.path.len());
        if let Some(e) = best {
            let rest = p[e.path.len()..].trim_start_matches('/').to_string();
            return Ok((e, rest));
        }
        let above = self
            .exports
            .iter()
            .any(|e| !e.read_only() && (p == "/" || e.path.starts_with(&format!("{p}/"))));
        Err(above)
    }
}

/// Computes the export table.
pub fn plan(images: &[ImageFacts], nodes: &[NodeFacts], local: &Local) -> Plan {
    let mut out = Plan::default();
    for img in images {
        if img.provmethod.as_deref().map(str::trim) != Some("statelite") {
            continue;
        }
        let dir = match img
            .rootimgdir
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(d) if d.starts_with('/') => d.to_string(),
            Some(d) => format!("/{d}"),
            None => match (&img.osvers, &img.osarch, &img.profile) {
                (Some(o), Some(a), Some(p)) => format!("/install/netboot/{o}/{a}/{p}"),
                _ => {
                    out.problems.push(format!(
                        "osimage {} is statelite but has neither linuximage.rootimgdir nor osvers/osarch/profile; not exported",
                        img.name
                    ));
                    continue;
                }
            },
        };
        let Some(path) = normalize(&format!("{dir}/rootimg")) else {
            out.problems.push(format!(
                "osimage {}: rootimgdir '{dir}' is not a plain absolute path; not exported",
                img.name
            ));
            continue;
        };
        if let Some(e) = out.exports.iter_mut().find(|e| e.path == path) {
            e.what.push(',');
            e.what.push_str(&img.name);
            continue;
        }
        out.exports.push(ExportSpec {
            path,
            access: Access::ReadOnly,
            what: img.name.clone(),
        });
    }
    for n in nodes {
        let Some(st) = n
            .statemnt
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        else {
            continue;
        };
        let Some((server, dir)) = st.split_once(':') else {
            out.problems.push(format!(
                "node {}: statelite.statemnt '{st}' is not server:/path; not exported",
                n.node
            ));
            continue;
        };
        if !local.is_me(server) {
            continue;
        }
        if n.node.is_empty() || n.node.contains('/') || n.node == "." || n.node == ".." {
            continue;
        }
        let Some(path) = normalize(&format!("{dir}/{}", n.node)) else {
            out.problems.push(format!(
                "node {}: statelite.statemnt path '{dir}' is not a plain absolute path; not exported",
                n.node
            ));
            continue;
        };
        if out.exports.iter().any(|e| e.path == path) {
            out.problems.push(format!(
                "node {}: {path} is already exported (by {}); not exported again",
                n.node,
                out.exports
                    .iter()
                    .find(|e| e.path == path)
                    .map(|e| e.what.as_str())
                    .unwrap_or("")
            ));
            continue;
        }
        let addr =
            n.ip.as_deref()
                .and_then(|ip| ip.trim().parse::<IpAddr>().ok())
                .map(canonical);
        if addr.is_none() {
            out.missing_ip.push(n.node.clone());
        }
        out.exports.push(ExportSpec {
            path,
            access: Access::ReadWrite {
                node: n.node.clone(),
                addr,
            },
            what: n.node.clone(),
        });
    }
    // A node directory inside an image root would be readable by everyone through the image.
    for rw in out.exports.iter().filter(|e| !e.read_only()) {
        for ro in out.exports.iter().filter(|e| e.read_only()) {
            if rw.path.starts_with(&format!("{}/", ro.path)) {
                out.problems.push(format!(
                    "node {}: its state directory {} lies inside the image export {} and is readable by every client through it",
                    rw.what, rw.path, ro.path
                ));
            }
        }
    }
    out
}

/// Reads what [`plan`] needs from the tables.
pub fn gather(r: &Resolver) -> Result<(Vec<ImageFacts>, Vec<NodeFacts>), StoreError> {
    r.preload(DEPENDS_ON)?;
    let osimage = r.table("osimage")?;
    let linuximage = r.table("linuximage")?;
    let col = |t: &crate::store::resolver::TableIndex, row: &crate::store::Row, c: &str| {
        t.spec
            .col_index(c)
            .and_then(|i| row.get(i).cloned().flatten())
            .filter(|v| !v.is_empty())
    };
    let mut images = Vec::new();
    for row in &osimage.rows {
        let Some(name) = col(&osimage, row, "imagename") else {
            continue;
        };
        let rootimgdir = linuximage
            .rows_for(&name)
            .next()
            .and_then(|lr| col(&linuximage, lr, "rootimgdir"));
        images.push(ImageFacts {
            provmethod: col(&osimage, row, "provmethod"),
            osvers: col(&osimage, row, "osvers"),
            osarch: col(&osimage, row, "osarch"),
            profile: col(&osimage, row, "profile"),
            rootimgdir,
            name,
        });
    }
    let members = r.membership()?;
    let mut nodes = Vec::new();
    for node in &members.nodes {
        let Some(st) = r.attr(node, "statelite", "statemnt")? else {
            continue;
        };
        nodes.push(NodeFacts {
            node: node.clone(),
            statemnt: Some(r.substitute_vars(node, &st)),
            ip: r.attr(node, "hosts", "ip")?,
        });
    }
    Ok((images, nodes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> Local {
        Local {
            addrs: vec!["10.0.0.1".parse().unwrap(), "127.0.0.1".parse().unwrap()],
            hostname: "mgmt.cluster".into(),
            master: Some("mn".into()),
        }
    }

    fn img(name: &str, method: &str, dir: Option<&str>) -> ImageFacts {
        ImageFacts {
            name: name.into(),
            provmethod: Some(method.into()),
            rootimgdir: dir.map(str::to_string),
            osvers: Some("rhels8".into()),
            osarch: Some("x86_64".into()),
            profile: Some("compute".into()),
        }
    }

    fn node(n: &str, st: &str, ip: Option<&str>) -> NodeFacts {
        NodeFacts {
            node: n.into(),
            statemnt: Some(st.into()),
            ip: ip.map(str::to_string),
        }
    }

    #[test]
    fn statelite_images_are_exported_read_only() {
        let p = plan(
            &[
                img("a", "statelite", Some("/img/a/")),
                img("b", "netboot", Some("/img/b")),
                img("c", "statelite", None),
                img("d", "statelite", Some("/img/a")),
            ],
            &[],
            &local(),
        );
        let paths: Vec<_> = p.exports.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/img/a/rootimg",
                "/install/netboot/rhels8/x86_64/compute/rootimg"
            ]
        );
        assert!(p.exports.iter().all(|e| e.read_only()));
        assert_eq!(p.exports[0].what, "a,d");
        assert!(p.exports[0].allows("192.168.1.1".parse().unwrap()));
    }

    #[test]
    fn node_state_only_when_statemnt_points_here() {
        let p = plan(
            &[],
            &[
                node("n1", "10.0.0.1:/lite/state", Some("10.0.0.5")),
                node("n2", "mgmt:/lite/state/", Some("10.0.0.6")),
                node("n3", "mn:/lite/state", None),
                node("n4", "otherhost:/lite/state", Some("10.0.0.8")),
                node("n5", "no-colon", Some("10.0.0.9")),
                node("n6", "10.0.0.1:relative", Some("10.0.0.9")),
            ],
            &local(),
        );
        let paths: Vec<_> = p.exports.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            ["/lite/state/n1", "/lite/state/n2", "/lite/state/n3"]
        );
        assert_eq!(p.missing_ip, ["n3"]);
        assert_eq!(p.problems.len(), 2, "{:?}", p.problems);
        let n1 = &p.exports[0];
        assert!(n1.allows("10.0.0.5".parse().unwrap()));
        assert!(n1.allows("::ffff:10.0.0.5".parse().unwrap()));
        assert!(!n1.allows("10.0.0.6".parse().unwrap()));
        assert!(!p.exports[2].allows("10.0.0.5".parse().unwrap()));
    }

    #[test]
    fn mounts_resolve_to_export_roots_only() {
        let p = plan(
            &[img("a", "statelite", Some("/img/a"))],
            &[node("n1", "10.0.0.1:/lite/state", Some("10.0.0.5"))],
            &local(),
        );
        assert_eq!(p.find_mount("/lite/state/n1/").unwrap().0.what, "n1");
        assert_eq!(p.find_mount("//img/a/rootimg").unwrap().0.what, "a");
        let (e, rest) = p.find_mount("/img/a/rootimg/usr//lib/").unwrap();
        assert_eq!((e.what.as_str(), rest.as_str()), ("a", "usr/lib"));
        assert!(p.find_mount("/lite/state").unwrap_err());
        assert!(p.find_mount("/lite").unwrap_err());
        assert!(p.find_mount("/").unwrap_err());
        assert!(!p.find_mount("/img/a").unwrap_err());
        assert!(!p.find_mount("/lite/state/n1/../n2").unwrap_err());
        assert_eq!(p.find_mount("/lite/state/n1/sub").unwrap().1, "sub");
        assert!(!p.find_mount("/lite/state/n10").unwrap_err());
    }

    #[test]
    fn ids_are_stable_and_distinct() {
        assert_eq!(export_id("/a"), export_id("/a"));
        assert_ne!(export_id("/a"), export_id("/b"));
    }

    #[test]
    fn node_inside_image_is_reported() {
        let p = plan(
            &[img("a", "statelite", Some("/img/a"))],
            &[node(
                "n1",
                "10.0.0.1:/img/a/rootimg/state",
                Some("10.0.0.5"),
            )],
            &local(),
        );
        assert_eq!(p.exports.len(), 2);
        assert!(p.problems[0].contains("readable by every client"));
    }
}
