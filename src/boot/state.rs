//! Boot states as xCAT's `nodeset` and chain know them, and how they are stored.
//!
//! `chain.currstate` holds what the node does next: `install rhels8.6-x86_64-compute`,
//! `netboot …`, `statelite …`, `sysclone …`, `boot`, `shell`, `standby`, `runcmd=<cmd>`,
//! `runimage=<url>`, `shutdown`, `offline`. For osimage states `nodetype.provmethod` names the image.
//! `chain.currchain` holds the steps still to come; `chain.chain` the default chain.

use crate::store::resolver::Resolver;
use crate::store::{StoreError, Txn};

/// A state `nodeset` accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destiny {
    /// `osimage=<img>[:action]` (and `install`/`netboot`/`statelite` with the image from nodetype).
    Osimage {
        image: String,
    },
    /// `install`, `netboot`, `statelite`: the image named after nodetype os-arch-method-profile.
    Shorthand(String),
    Boot,
    Shell,
    Standby,
    Runcmd(String),
    Runimage(String),
    Shutdown,
    Offline,
    Iscsiboot,
}

impl Destiny {
    /// Parses one state word.
    pub fn parse(s: &str) -> Result<Destiny, String> {
        let s = s.trim();
        if let Some(img) = s.strip_prefix("osimage=") {
            let image = img.split(':').next().unwrap_or("").trim();
            if image.is_empty() {
                return Err("osimage= needs an image name".into());
            }
            return Ok(Destiny::Osimage {
                image: image.to_string(),
            });
        }
        if s == "osimage" {
            return Ok(Destiny::Shorthand("osimage".into()));
        }
        if let Some(cmd) = s.strip_prefix("runcmd=") {
            return if cmd.is_empty() {
                Err("runcmd= needs a command".into())
            } else {
                Ok(Destiny::Runcmd(cmd.into()))
            };
        }
        if let Some(url) = s.strip_prefix("runimage=") {
            return if url.is_empty() {
                Err("runimage= needs a URL".into())
            } else {
                Ok(Destiny::Runimage(url.into()))
            };
        }
        Ok(match s {
            "install" | "netboot" | "statelite" => Destiny::Shorthand(s.into()),
            "boot" => Destiny::Boot,
            "shell" => Destiny::Shell,
            "standby" => Destiny::Standby,
            "shutdown" => Destiny::Shutdown,
            "offline" => Destiny::Offline,
            "iscsiboot" => Destiny::Iscsiboot,
            other => return Err(format!("'{other}' is not a boot state (osimage=<image>, install, netboot, statelite, boot, shell, standby, runcmd=<cmd>, runimage=<url>, shutdown, offline, enact, next, stat, show)")),
        })
    }

    /// The `chain.currstate` value for a non-osimage state.
    fn currstate(&self) -> Option<String> {
        Some(match self {
            Destiny::Boot => "boot".into(),
            Destiny::Shell => "shell".into(),
            Destiny::Standby => "standby".into(),
            Destiny::Runcmd(c) => format!("runcmd={c}"),
            Destiny::Runimage(u) => format!("runimage={u}"),
            Destiny::Shutdown => "shutdown".into(),
            Destiny::Offline => "offline".into(),
            Destiny::Iscsiboot => "iscsiboot".into(),
            Destiny::Osimage { .. } | Destiny::Shorthand(_) => return None,
        })
    }
}

/// What the node boots now, as the renderer needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootState {
    /// Install/netboot/statelite/sysclone of `image`; `tag` is `<os>-<arch>-<profile>`.
    Image {
        method: String,
        image: String,
        tag: String,
    },
    Boot,
    /// Genesis with `destiny=<…>` (shell, standby, runcmd=…, runimage=…, shutdown).
    Genesis(String),
    Offline,
    /// No boot state recorded.
    None,
}

impl BootState {
    /// From `chain.currstate` and `nodetype.provmethod`.
    pub fn from_tables(currstate: Option<&str>, provmethod: Option<&str>) -> BootState {
        let Some(cs) = currstate.map(str::trim).filter(|c| !c.is_empty()) else {
            return BootState::None;
        };
        let (word, rest) = cs.split_once(' ').unwrap_or((cs, ""));
        match word {
            "install" | "netboot" | "statelite" | "sysclone" => BootState::Image {
                method: word.into(),
                image: provmethod.unwrap_or("").to_string(),
                tag: rest.trim().to_string(),
            },
            "boot" | "iscsiboot" => BootState::Boot,
            "offline" => BootState::Offline,
            w if w == "shell"
                || w == "standby"
                || w == "shutdown"
                || w.starts_with("runcmd=")
                || w.starts_with("runimage=") =>
            {
                BootState::Genesis(cs.to_string())
            }
            _ => BootState::Genesis(cs.to_string()),
        }
    }

    /// The `#…` line xCAT puts at the top of a node's file (`nodeset stat` prints it).
    pub fn label(&self) -> String {
        match self {
            BootState::Image { method, tag, .. } => format!("{method} {tag}"),
            BootState::Boot => "boot".into(),
            BootState::Genesis(s) => s.clone(),
            BootState::Offline => "offline".into(),
            BootState::None => "none".into(),
        }
    }
}

/// Where an osimage's kernel and initrd are, relative to the TFTP root.
pub fn image_files(method: &str, image: &str) -> (String, String) {
    match method {
        "install" => (
            format!("xcat/osimage/{image}/vmlinuz"),
            format!("xcat/osimage/{image}/initrd.img"),
        ),
        "statelite" => (
            format!("xcat/osimage/{image}/kernel"),
            format!("xcat/osimage/{image}/initrd-statelite.gz"),
        ),
        _ => (
            format!("xcat/osimage/{image}/kernel"),
            format!("xcat/osimage/{image}/initrd-stateless.gz"),
        ),
    }
}

/// An osimage's facts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Osimage {
    pub name: String,
    pub provmethod: String,
    pub os: String,
    pub arch: String,
    pub profile: String,
}

/// Reads an osimage row.
pub fn osimage(r: &Resolver, name: &str) -> Result<Option<Osimage>, StoreError> {
    let t = r.table("osimage")?;
    let Some(row) = t.rows_for(name).next() else {
        return Ok(None);
    };
    let get = |c: &str| {
        t.spec
            .col_index(c)
            .and_then(|i| row.get(i))
            .cloned()
            .flatten()
            .unwrap_or_default()
    };
    Ok(Some(Osimage {
        name: name.to_string(),
        provmethod: get("provmethod"),
        os: get("osvers"),
        arch: get("osarch"),
        profile: get("profile"),
    }))
}

/// Applies `nodeset`'s state to `node` inside `tx`: chain and, for osimage states, nodetype.
pub fn apply(
    tx: &mut Txn<'_>,
    node: &str,
    first: &Destiny,
    image: Option<&Osimage>,
    rest: &[String],
) -> Result<String, StoreError> {
    let currchain = if rest.is_empty() {
        None
    } else {
        Some(rest.join(","))
    };
    let currstate = match (first, image) {
        (Destiny::Osimage { .. } | Destiny::Shorthand(_), Some(img)) => {
            tx.set(
                "nodetype",
                &[node],
                &[
                    ("os", Some(&img.os)),
                    ("arch", Some(&img.arch)),
                    ("profile", Some(&img.profile)),
                    ("provmethod", Some(&img.name)),
                ],
            )?;
            let cs = format!("{} {}-{}-{}", img.provmethod, img.os, img.arch, img.profile);
            // After an install the node boots from disk; diskless images stay where they are.
            // After an install the node boots from disk (xCAT's setdestiny sets currchain=boot,
            // also when the chain has just run out onto this osimage step); diskless images
            // keep whatever chain is left.
            let chain = match (&currchain, img.provmethod.as_str()) {
                (_, "netboot" | "statelite") => currchain.clone(),
                (Some(c), _) if !c.starts_with("osimage") => Some(c.clone()),
                _ => Some("boot".to_string()),
            };
            tx.set(
                "chain",
                &[node],
                &[("currstate", Some(&cs)), ("currchain", chain.as_deref())],
            )?;
            cs
        }
        (d, _) => {
            let cs = d
                .currstate()
                .ok_or_else(|| StoreError::Invalid("osimage state without an image".into()))?;
            // A single state is its own chain: `next` then finds it done (shell → standby, boot stays boot).
            let chain = currchain.clone().unwrap_or_else(|| cs.clone());
            tx.set(
                "chain",
                &[node],
                &[("currstate", Some(&cs)), ("currchain", Some(&chain))],
            )?;
            cs
        }
    };
    Ok(currstate)
}

/// xCAT's nextdestiny: the next step of the node's chain. Returns the new currstate step, or
/// `None` when the node has no chain to follow.
pub fn next_step(
    currstate: Option<&str>,
    currchain: Option<&str>,
    chain: Option<&str>,
) -> Option<(String, String)> {
    let currchain = currchain
        .filter(|c| !c.is_empty())
        .or(chain.filter(|c| !c.is_empty()))?;
    let mut cc = currchain.to_string();
    if !cc.contains([',', ';']) {
        if let Some(cs) = currstate.filter(|c| !c.is_empty()) {
            // A chain that is just the current state again: the node has finished it.
            let first_word = cs.split(' ').next().unwrap_or(cs);
            let finished = cc.contains(cs)
                || cc == first_word
                || (cc.starts_with("osimage") && cs.contains(' '));
            if finished && cc != "boot" {
                cc = "standby".into();
            }
        }
    }
    let mut steps: Vec<String> = cc
        .split([',', ';'])
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if steps.is_empty() {
        return None;
    }
    let now = steps.remove(0);
    let rest = if steps.is_empty() {
        now.clone()
    } else {
        steps.join(",")
    };
    Some((now, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_parse() {
        assert_eq!(
            Destiny::parse("osimage=rhels8.6-x86_64-install-compute"),
            Ok(Destiny::Osimage {
                image: "rhels8.6-x86_64-install-compute".into()
            })
        );
        assert_eq!(
            Destiny::parse("osimage=img:reboot4deploy"),
            Ok(Destiny::Osimage {
                image: "img".into()
            })
        );
        assert_eq!(
            Destiny::parse("runcmd=bmcsetup"),
            Ok(Destiny::Runcmd("bmcsetup".into()))
        );
        assert!(Destiny::parse("frobnicate")
            .unwrap_err()
            .contains("not a boot state"));
        assert!(Destiny::parse("osimage=").is_err());
    }

    #[test]
    fn boot_state_from_tables() {
        assert_eq!(
            BootState::from_tables(Some("install rhels8.6-x86_64-compute"), Some("img")),
            BootState::Image {
                method: "install".into(),
                image: "img".into(),
                tag: "rhels8.6-x86_64-compute".into()
            }
        );
        assert_eq!(BootState::from_tables(Some("boot"), None), BootState::Boot);
        assert_eq!(
            BootState::from_tables(Some("runcmd=bmcsetup"), None),
            BootState::Genesis("runcmd=bmcsetup".into())
        );
        assert_eq!(BootState::from_tables(None, None), BootState::None);
    }

    #[test]
    fn next_destiny_follows_xcats_rules() {
        // runcmd=bmcsetup,osimage=img: bmcsetup first, then the image.
        assert_eq!(
            next_step(None, None, Some("runcmd=bmcsetup,osimage=img")),
            Some(("runcmd=bmcsetup".into(), "osimage=img".into()))
        );
        assert_eq!(
            next_step(Some("runcmd=bmcsetup"), Some("osimage=img"), None),
            Some(("osimage=img".into(), "osimage=img".into()))
        );
        // An install has currchain=boot: next is boot, and boot stays boot.
        assert_eq!(
            next_step(Some("install rhels8-x86_64-compute"), Some("boot"), None),
            Some(("boot".into(), "boot".into()))
        );
        assert_eq!(
            next_step(Some("boot"), Some("boot"), None),
            Some(("boot".into(), "boot".into()))
        );
        // A finished single-step chain goes to standby.
        assert_eq!(
            next_step(Some("shell"), Some("shell"), None),
            Some(("standby".into(), "standby".into()))
        );
        assert_eq!(next_step(None, None, None), None);
    }
}
