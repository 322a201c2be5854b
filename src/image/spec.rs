//! One osimage as the image commands see it: the `osimage` and `linuximage` rows by column name,
//! and the paths derived from them (xCAT's defaults where a column is empty).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::bail;

use crate::store::{table_spec, Store};

/// An osimage definition, read from the store.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    pub name: String,
    /// `osimage` columns that have a value.
    pub osimage: BTreeMap<String, String>,
    /// `linuximage` columns that have a value.
    pub linuximage: BTreeMap<String, String>,
    /// `site.installdir` (default `/install`).
    pub installdir: PathBuf,
    /// `site.tftpdir` (default `/tftpboot`).
    pub tftpdir: PathBuf,
}

fn named(table: &str, row: Option<crate::store::Row>) -> anyhow::Result<BTreeMap<String, String>> {
    let spec = table_spec(table)?;
    let mut m = BTreeMap::new();
    if let Some(row) = row {
        for (c, v) in spec.cols.iter().zip(row) {
            if let Some(v) = v.filter(|v| !v.trim().is_empty()) {
                m.insert((*c).to_string(), v.trim().to_string());
            }
        }
    }
    Ok(m)
}

impl ImageSpec {
    /// Reads `name`; an unknown name is xCAT's error.
    pub fn load(store: &Store, name: &str) -> anyhow::Result<ImageSpec> {
        let os = store.get("osimage", &[name])?;
        if os.is_none() {
            bail!("Cannot find image '{name}' in the osimage table.");
        }
        let li = store.get("linuximage", &[name])?;
        Ok(ImageSpec {
            name: name.to_string(),
            osimage: named("osimage", os)?,
            linuximage: named("linuximage", li)?,
            installdir: PathBuf::from(
                store
                    .site("installdir")?
                    .unwrap_or_else(|| "/install".into()),
            ),
            tftpdir: PathBuf::from(store.site("tftpdir")?.unwrap_or_else(|| "/tftpboot".into())),
        })
    }

    pub fn os(&self, col: &str) -> &str {
        self.osimage.get(col).map(String::as_str).unwrap_or("")
    }

    pub fn li(&self, col: &str) -> &str {
        self.linuximage.get(col).map(String::as_str).unwrap_or("")
    }

    pub fn provmethod(&self) -> &str {
        self.os("provmethod")
    }
    pub fn osvers(&self) -> &str {
        self.os("osvers")
    }
    pub fn arch(&self) -> &str {
        self.os("osarch")
    }
    pub fn profile(&self) -> &str {
        self.os("profile")
    }

    /// `linuximage.rootimgdir`, else `<installdir>/netboot/<os>/<arch>/<profile>`.
    pub fn rootimgdir(&self) -> anyhow::Result<PathBuf> {
        let d = self.li("rootimgdir");
        if !d.is_empty() {
            return Ok(PathBuf::from(d));
        }
        if self.osvers().is_empty() || self.arch().is_empty() || self.profile().is_empty() {
            bail!(
                "osimage {} has no linuximage.rootimgdir and no osvers/osarch/profile to derive it from",
                self.name
            );
        }
        Ok(self
            .installdir
            .join("netboot")
            .join(self.osvers())
            .join(self.arch())
            .join(self.profile()))
    }

    /// `<rootimgdir>/rootimg`.
    pub fn rootimg(&self) -> anyhow::Result<PathBuf> {
        Ok(self.rootimgdir()?.join("rootimg"))
    }

    /// `<tftpdir>/xcat/osimage/<image>`: where nodeset's boot files point.
    pub fn tftp_image_dir(&self) -> PathBuf {
        self.tftpdir.join("xcat/osimage").join(&self.name)
    }

    /// A comma-separated file column (pkglist, exlist, …) as paths.
    pub fn files(&self, col: &str) -> Vec<PathBuf> {
        self.li(col)
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .collect()
    }
}

/// The packed root images a rootimgdir may hold, in the order nodeset prefers them (xCAT's
/// `mknetboot`): squashfs, then cpio and tar with each compression.
pub const PACKED_NAMES: &[&str] = &[
    "rootimg.sfs",
    "rootimg.cpio.xz",
    "rootimg.cpio.zst",
    "rootimg.cpio.gz",
    "rootimg.tar.xz",
    "rootimg.tar.zst",
    "rootimg.tar.gz",
];

/// The packed image in `rootimgdir`, if any (the newest when several are there).
pub fn packed_image(rootimgdir: &Path) -> Option<PathBuf> {
    PACKED_NAMES
        .iter()
        .map(|n| rootimgdir.join(n))
        .filter_map(|p| {
            let m = std::fs::metadata(&p).ok()?;
            Some((m.modified().ok()?, p))
        })
        .max_by_key(|(t, _)| *t)
        .map(|(_, p)| p)
}
