//! `imgexport` / `imgimport`: an osimage moved between appliances in xCAT's bundle layout
//! (`plugins/imgport.pm`), so bundles go both ways between xCAT and bootherd:
//!
//! `<image>.tgz` holds `<image>/manifest.xml` and flat copies of the image's files — the kernel,
//! the ramdisk (`initrd-stateless.gz` / `initrd-statelite.gz`), the packed root (netboot), the
//! template, pkglist, otherpkglist, postinstall, exlist and synclists — plus `extra/` (`-e
//! file:dir`). A statelite image adds `rootimgtree.gz` (its root as a newc cpio) and
//! `litefile.csv`. `manifest.xml` is `<xcatimage>` with an `<osimage>` and a `<linuximage>`
//! element (one child per column), `<kernel>`, `<ramdisk>`, `<rootimg>`, `<rootimgtree>`,
//! `<litefile>` (the absolute paths the files go back to), `<media>required</media>` for install
//! images and `<extra><src/><dest/></extra>` per extra file.
//!
//! Import puts each file back at its manifest path (an existing file is kept as `<file>.ORIG`),
//! writes the definition in one transaction, and with `-f <profile>` renames the image and its
//! rootimgdir to the new profile as xCAT does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use super::spec::{packed_image, ImageSpec};
use crate::store::{table_spec, Audit, Store};

/// The manifest, as read from or written to `manifest.xml`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    pub osimage: BTreeMap<String, String>,
    pub linuximage: BTreeMap<String, String>,
    /// Top-level single values: kernel, ramdisk, rootimg, rootimgtree, litefile, media.
    pub top: BTreeMap<String, String>,
    /// `(src, dest)` of each extra file.
    pub extra: Vec<(String, String)>,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn unesc(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

impl Manifest {
    /// XML::Simple's layout (no attributes), as xCAT writes it.
    pub fn to_xml(&self) -> String {
        let mut o = String::from("<?xml version=\"1.0\"?>\n<xcatimage>\n");
        for (k, v) in &self.top {
            o.push_str(&format!("  <{k}>{}</{k}>\n", esc(v)));
        }
        for (src, dest) in &self.extra {
            o.push_str(&format!(
                "  <extra>\n    <dest>{}</dest>\n    <src>{}</src>\n  </extra>\n",
                esc(dest),
                esc(src)
            ));
        }
        for (name, m) in [("linuximage", &self.linuximage), ("osimage", &self.osimage)] {
            o.push_str(&format!("  <{name}>\n"));
            for (k, v) in m {
                o.push_str(&format!("    <{k}>{}</{k}>\n", esc(v)));
            }
            o.push_str(&format!("  </{name}>\n"));
        }
        o.push_str("</xcatimage>\n");
        o
    }

    /// Reads a manifest: elements without attributes, two levels under `<xcatimage>`.
    pub fn parse(xml: &str) -> Result<Manifest, String> {
        let root = parse_elements(xml)?;
        let Some(Node::Elem(name, kids)) = root.into_iter().next() else {
            return Err("manifest.xml holds no element".into());
        };
        if name != "xcatimage" {
            return Err(format!(
                "manifest.xml's root element is <{name}>, not <xcatimage>"
            ));
        }
        let mut m = Manifest::default();
        for k in kids {
            match k {
                Node::Text(_) => {}
                Node::Elem(n, sub) if n == "osimage" || n == "linuximage" => {
                    let map = if n == "osimage" {
                        &mut m.osimage
                    } else {
                        &mut m.linuximage
                    };
                    for s in sub {
                        if let Node::Elem(c, v) = s {
                            map.insert(c, text_of(&v));
                        }
                    }
                }
                Node::Elem(n, sub) if n == "extra" => {
                    let mut src = String::new();
                    let mut dest = String::new();
                    for s in sub {
                        if let Node::Elem(c, v) = s {
                            match c.as_str() {
                                "src" => src = text_of(&v),
                                "dest" => dest = text_of(&v),
                                _ => {}
                            }
                        }
                    }
                    m.extra.push((src, dest));
                }
                Node::Elem(n, sub) => {
                    m.top.insert(n, text_of(&sub));
                }
            }
        }
        Ok(m)
    }
}

#[derive(Debug)]
enum Node {
    Elem(String, Vec<Node>),
    Text(String),
}

fn text_of(nodes: &[Node]) -> String {
    nodes
        .iter()
        .filter_map(|n| match n {
            Node::Text(t) => Some(t.as_str()),
            Node::Elem(..) => None,
        })
        .collect::<String>()
        .trim()
        .to_string()
}

/// A small XML reader: elements, text, `<?…?>` and comments skipped; no attributes kept.
fn parse_elements(xml: &str) -> Result<Vec<Node>, String> {
    let mut stack: Vec<(String, Vec<Node>)> = vec![(String::new(), Vec::new())];
    let mut rest = xml;
    while !rest.is_empty() {
        if stack.len() > 32 {
            return Err("manifest.xml nests too deep".into());
        }
        if let Some(i) = rest.find('<') {
            let text = &rest[..i];
            if !text.trim().is_empty() {
                if let Some(top) = stack.last_mut() {
                    top.1.push(Node::Text(unesc(text)));
                }
            }
            rest = &rest[i..];
            if let Some(r) = rest.strip_prefix("<?") {
                let e = r.find("?>").ok_or("unterminated <? in manifest.xml")?;
                rest = &r[e + 2..];
            } else if let Some(r) = rest.strip_prefix("<!--") {
                let e = r
                    .find("-->")
                    .ok_or("unterminated comment in manifest.xml")?;
                rest = &r[e + 3..];
            } else if let Some(r) = rest.strip_prefix("</") {
                let e = r.find('>').ok_or("unterminated end tag in manifest.xml")?;
                let name = r[..e].trim();
                let (open, kids) = stack.pop().ok_or("unbalanced manifest.xml")?;
                if open != name {
                    return Err(format!("manifest.xml: </{name}> closes <{open}>"));
                }
                stack
                    .last_mut()
                    .ok_or("unbalanced manifest.xml")?
                    .1
                    .push(Node::Elem(open, kids));
                rest = &r[e + 1..];
            } else {
                let r = &rest[1..];
                let e = r.find('>').ok_or("unterminated tag in manifest.xml")?;
                let inner = &r[..e];
                let selfclose = inner.ends_with('/');
                let inner = inner.trim_end_matches('/');
                let name = inner.split_whitespace().next().unwrap_or("").to_string();
                if name.is_empty() {
                    return Err("empty tag in manifest.xml".into());
                }
                if selfclose {
                    stack
                        .last_mut()
                        .ok_or("unbalanced manifest.xml")?
                        .1
                        .push(Node::Elem(name, Vec::new()));
                } else {
                    stack.push((name, Vec::new()));
                }
                rest = &r[e + 1..];
            }
        } else {
            if !rest.trim().is_empty() {
                if let Some(top) = stack.last_mut() {
                    top.1.push(Node::Text(unesc(rest)));
                }
            }
            break;
        }
    }
    if stack.len() != 1 {
        return Err("manifest.xml ends inside an element".into());
    }
    Ok(stack.pop().map(|s| s.1).unwrap_or_default())
}

fn base(p: &str) -> String {
    Path::new(p)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `imgexport <image> [dest] [-e file:dir]…`: writes the bundle; returns its path.
pub fn export(
    store: &Store,
    image: &str,
    dest: Option<&Path>,
    extra: &[String],
    say: &mut dyn FnMut(&str),
) -> anyhow::Result<PathBuf> {
    let spec = ImageSpec::load(store, image)?;
    for (col, what) in [
        ("provmethod", "provmethod"),
        ("profile", "profile"),
        ("osvers", "osvers"),
        ("osarch", "osarch"),
    ] {
        if spec.os(col).is_empty() {
            bail!("The '{what}' field is not set for '{image}' in the osimage table.");
        }
    }
    let pm = spec.provmethod().to_string();
    if !["install", "netboot", "statelite"].contains(&pm.as_str()) {
        bail!("Exporting images with 'provemethod' {pm} is not supported. Hint: install, netboot or statelite");
    }
    let cwd = std::env::current_dir()?;
    let bundle = match dest {
        Some(d) if d.is_dir() => d.join(format!("{image}.tgz")),
        Some(d) => {
            if d.is_absolute() {
                d.to_path_buf()
            } else {
                cwd.join(d)
            }
        }
        None => cwd.join(format!("{image}.tgz")),
    };
    say(&format!("Exporting {image} to {}...", bundle.display()));
    let mut m = Manifest {
        osimage: spec.osimage.clone(),
        linuximage: spec.linuximage.clone(),
        ..Default::default()
    };
    m.osimage.insert("imagename".into(), image.into());
    m.linuximage.insert("imagename".into(), image.into());
    let work = tempfile::Builder::new()
        .prefix("imgexport.")
        .tempdir_in(bundle.parent().unwrap_or(Path::new("/tmp")))
        .context("cannot make a working directory beside the bundle")?;
    let t = work.path().join(image);
    std::fs::create_dir_all(&t)?;
    let mut files: Vec<String> = Vec::new();
    match pm.as_str() {
        "netboot" | "statelite" => {
            let dir = spec.rootimgdir()?;
            let ramdisk = if pm == "netboot" {
                "initrd-stateless.gz"
            } else {
                "initrd-statelite.gz"
            };
            for (k, f) in [("kernel", "kernel"), ("ramdisk", ramdisk)] {
                let p = dir.join(f);
                if !p.is_file() {
                    bail!(
                        "Couldn't find the {k} {} for {image}: run genimage {image}",
                        p.display()
                    );
                }
                m.top.insert(k.into(), p.display().to_string());
                files.push(p.display().to_string());
            }
            if pm == "netboot" {
                let Some(p) = packed_image(&dir) else {
                    bail!("Couldn't find compressed rootimg for {image}");
                };
                m.top.insert("rootimg".into(), p.display().to_string());
                files.push(p.display().to_string());
            } else {
                say("Packing root image. It will take a while");
                let root = dir.join("rootimg");
                if !root.is_dir() {
                    bail!("{} does not exist: run genimage {image}", root.display());
                }
                super::pack::cpio_gz_tree(&root, "rootimg", &t.join("rootimgtree.gz"))?;
                m.top.insert(
                    "rootimgtree".into(),
                    dir.join("rootimgtree.gz").display().to_string(),
                );
                // The image's litefile rows, as tabdump writes them.
                let rows: Vec<_> = store
                    .rows("litefile")?
                    .into_iter()
                    .filter(|r| r.first().cloned().flatten().as_deref() == Some(image))
                    .collect();
                let csv = crate::store::csv::dump(table_spec("litefile")?, &rows);
                std::fs::write(t.join("litefile.csv"), csv)?;
                m.top.insert(
                    "litefile".into(),
                    dir.join("litefile.csv").display().to_string(),
                );
            }
        }
        _ => {
            m.top.insert("media".into(), "required".into());
        }
    }
    for col in [
        "template",
        "pkglist",
        "otherpkglist",
        "postinstall",
        "exlist",
    ] {
        for f in spec
            .li(col)
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            files.push(f.to_string());
        }
    }
    for f in spec
        .os("synclists")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        files.push(f.to_string());
    }
    for f in &files {
        say(f);
        let p = Path::new(f);
        if !p.is_file() {
            say(&format!("Couldn't find file {f} for {image}. Skip."));
            continue;
        }
        std::fs::copy(p, t.join(base(f))).with_context(|| format!("cannot copy {f}"))?;
    }
    if !extra.is_empty() {
        std::fs::create_dir_all(t.join("extra"))?;
    }
    for e in extra {
        let Some((src, d)) = e.split_once(':') else {
            bail!("-e takes file:dir, not '{e}'");
        };
        let p = Path::new(src);
        if !p.is_file() {
            bail!("the extra file {src} does not exist");
        }
        std::fs::copy(p, t.join("extra").join(base(src)))?;
        m.extra.push((src.to_string(), d.to_string()));
    }
    std::fs::write(t.join("manifest.xml"), m.to_xml())?;
    // The tarball, written beside its final name and renamed when complete.
    let tmp = bundle.with_extension("tgz.part");
    let res = (|| -> anyhow::Result<()> {
        let f = std::fs::File::create(&tmp)?;
        let gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
        let mut b = tar::Builder::new(gz);
        b.follow_symlinks(false);
        b.append_dir_all(image, &t)?;
        b.into_inner()?.finish()?;
        Ok(())
    })();
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(e.context(format!("cannot write {}", bundle.display())));
    }
    std::fs::rename(&tmp, &bundle)?;
    say(&format!("Done! The image bundle is {}", bundle.display()));
    Ok(bundle)
}

/// Where an imported file goes: its manifest path, an existing file kept as `.ORIG`. A path that
/// is not absolute or climbs with `..` is refused (a bundle names where files go; it must say so
/// plainly).
fn put(src: &Path, dest: &Path) -> anyhow::Result<()> {
    if !dest.is_absolute()
        || dest
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        bail!(
            "the bundle names {} as a destination: not an absolute path without '..'",
            dest.display()
        );
    }
    if let Some(d) = dest.parent() {
        std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    if dest.exists() {
        let orig = PathBuf::from(format!("{}.ORIG", dest.display()));
        std::fs::rename(dest, &orig)?;
    }
    std::fs::copy(src, dest).with_context(|| format!("cannot write {}", dest.display()))?;
    Ok(())
}

/// `imgimport <bundle> [-f profile]`: returns the imported image's name.
pub fn import(
    store: &Store,
    bundle: &Path,
    new_profile: Option<&str>,
    say: &mut dyn FnMut(&str),
) -> anyhow::Result<String> {
    let installdir = PathBuf::from(
        store
            .site("installdir")?
            .unwrap_or_else(|| "/install".into()),
    );
    let tftpdir = PathBuf::from(store.site("tftpdir")?.unwrap_or_else(|| "/tftpboot".into()));
    let f = std::fs::File::open(bundle)
        .with_context(|| format!("cannot open the image bundle {}", bundle.display()))?;
    std::fs::create_dir_all(&installdir)?;
    let work = tempfile::Builder::new()
        .prefix(".imgimport.")
        .tempdir_in(&installdir)?;
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(f));
    ar.set_preserve_permissions(true);
    // unpack() refuses entries that would land outside the directory.
    ar.unpack(work.path())
        .with_context(|| format!("{} is not an image bundle (a .tgz)", bundle.display()))?;
    let imgdir = std::fs::read_dir(work.path())?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.join("manifest.xml").is_file())
        .ok_or_else(|| anyhow::anyhow!("Failed to find manifest.xml file in image bundle"))?;
    let xml = std::fs::read_to_string(imgdir.join("manifest.xml"))?;
    let mut m = Manifest::parse(&xml).map_err(|e| {
        anyhow::anyhow!("invalid manifest.xml file inside the bundle.  Please verify the XML ({e})")
    })?;
    for f in ["imagename", "provmethod", "profile", "osvers", "osarch"] {
        if m.osimage.get(f).is_none_or(|v| v.is_empty()) {
            bail!("The '{f}' field is not defined in manifest.xml.");
        }
    }
    let pm = m.osimage["provmethod"].clone();
    match pm.as_str() {
        "netboot" => {
            for f in ["kernel", "ramdisk", "rootimg"] {
                if !m.top.contains_key(f) {
                    bail!("The '{f}' field is not defined in manifest.xml.");
                }
            }
        }
        "statelite" => {
            for f in ["kernel", "ramdisk", "rootimgtree"] {
                if !m.top.contains_key(f) {
                    bail!("The '{f}' field is not defined in manifest.xml.");
                }
            }
        }
        _ => {}
    }
    if let Some(p) = new_profile {
        let os = m.osimage["osvers"].clone();
        let arch = m.osimage["osarch"].clone();
        let name = format!("{os}-{arch}-{pm}-{p}");
        m.osimage.insert("imagename".into(), name.clone());
        m.osimage.insert("profile".into(), p.to_string());
        m.linuximage.insert("imagename".into(), name);
        if m.linuximage.contains_key("rootimgdir") {
            let dir = installdir.join("netboot").join(&os).join(&arch).join(p);
            for k in ["kernel", "ramdisk", "rootimg", "rootimgtree", "litefile"] {
                if let Some(v) = m.top.get(k).cloned() {
                    m.top
                        .insert(k.into(), dir.join(base(&v)).display().to_string());
                }
            }
            m.linuximage
                .insert("rootimgdir".into(), dir.display().to_string());
        }
    }
    let name = m.osimage["imagename"].clone();
    if m.top.get("media").map(String::as_str) == Some("required") {
        let media = installdir
            .join(&m.osimage["osvers"])
            .join(&m.osimage["osarch"]);
        if !media.is_dir() {
            bail!(
                "This image requires the distribution media at {}: run copycds for {} first",
                media.display(),
                m.osimage["osvers"]
            );
        }
    }
    // Files back to their places.
    for k in ["kernel", "ramdisk", "rootimg"] {
        if let Some(dest) = m.top.get(k) {
            let src = imgdir.join(base(dest));
            if !src.is_file() {
                bail!(
                    "the bundle lacks {} (its manifest names {dest})",
                    base(dest)
                );
            }
            put(&src, Path::new(dest))?;
        }
    }
    for col in [
        "template",
        "pkglist",
        "otherpkglist",
        "postinstall",
        "exlist",
    ] {
        let v = m.linuximage.get(col).cloned().unwrap_or_default();
        for dest in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let src = imgdir.join(base(dest));
            if src.is_file() && !Path::new(dest).exists() {
                put(&src, Path::new(dest))?;
            }
        }
    }
    if let Some(tree) = m.top.get("rootimgtree") {
        let dir = Path::new(tree)
            .parent()
            .ok_or_else(|| anyhow::anyhow!("bad rootimgtree path {tree}"))?
            .to_path_buf();
        std::fs::create_dir_all(&dir)?;
        say("Extracting rootimgtree.gz. It will take a while.");
        let src = imgdir.join("rootimgtree.gz");
        let st = Command::new("sh")
            .arg("-c")
            .arg("gzip -dc \"$1\" | cpio -idm --quiet --no-absolute-filenames")
            .arg("sh")
            .arg(&src)
            .current_dir(&dir)
            .status()
            .context("cannot run gzip | cpio")?;
        if !st.success() {
            bail!("cannot unpack rootimgtree.gz into {}", dir.display());
        }
    }
    for (src, dest) in &m.extra {
        let from = imgdir.join("extra").join(base(src));
        if from.is_file() {
            put(&from, &Path::new(dest).join(base(src)))?;
        }
    }
    // The definition, in one transaction (with the statelite rows).
    let audit = Audit {
        command: "imgimport".into(),
        noderange: String::new(),
        args: bundle.display().to_string(),
    };
    // The statelite rows, read as tabrestore reads them, under the (possibly new) image name.
    let litespec = table_spec("litefile")?;
    let mut literows = Vec::new();
    if let Ok(text) = std::fs::read_to_string(imgdir.join("litefile.csv")) {
        let parsed = crate::store::csv::parse(&text)
            .map_err(|e| anyhow::anyhow!("litefile.csv in the bundle: {e}"))?;
        for (_, mut row) in crate::store::csv::to_rows(litespec, &parsed)
            .map_err(|e| anyhow::anyhow!("litefile.csv in the bundle: {e}"))?
        {
            if let Some(first) = row.first_mut() {
                *first = Some(name.clone());
            }
            literows.push(row);
        }
    }
    store.write(Some(&audit), |tx| {
        for (table, map) in [("osimage", &m.osimage), ("linuximage", &m.linuximage)] {
            let spec = table_spec(table)?;
            let vals: Vec<(&str, Option<&str>)> = spec
                .cols
                .iter()
                .filter(|c| **c != "imagename" && map.contains_key(**c))
                .map(|c| (*c, map.get(*c).map(String::as_str)))
                .collect();
            tx.set(table, &[&name], &vals)?;
        }
        for row in literows {
            tx.put("litefile", row)?;
        }
        Ok(())
    })?;
    // Where nodeset's boot files point.
    if pm == "netboot" || pm == "statelite" {
        let dst = tftpdir.join("xcat/osimage").join(&name);
        for k in ["kernel", "ramdisk"] {
            if let Some(p) = m.top.get(k) {
                let fname = if k == "kernel" {
                    "kernel".to_string()
                } else {
                    base(p)
                };
                put(Path::new(p), &dst.join(fname))?;
            }
        }
    }
    say(&format!("Successfully imported the image {name}."));
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trip_and_xcat_layout() {
        let mut m = Manifest::default();
        m.osimage.insert("imagename".into(), "img".into());
        m.osimage.insert("provmethod".into(), "netboot".into());
        m.linuximage
            .insert("pkglist".into(), "/a & b/c.pkglist".into());
        m.top.insert("kernel".into(), "/x/kernel".into());
        m.extra.push(("/etc/motd".into(), "/etc".into()));
        let xml = m.to_xml();
        assert!(xml.starts_with("<?xml version=\"1.0\"?>\n<xcatimage>"));
        assert!(xml.contains("<pkglist>/a &amp; b/c.pkglist</pkglist>"));
        assert_eq!(Manifest::parse(&xml).expect("parse"), m);
    }

    #[test]
    fn an_xcat_manifest_with_empty_elements_parses() {
        let xml = "<?xml version=\"1.0\"?>\n<xcatimage>\n  <kernel>/install/netboot/rhels8/x86_64/compute/kernel</kernel>\n  <linuximage>\n    <imagename>rhels8-x86_64-netboot-compute</imagename>\n    <kerneldir />\n  </linuximage>\n  <osimage>\n    <imagename>rhels8-x86_64-netboot-compute</imagename>\n    <osarch>x86_64</osarch>\n  </osimage>\n</xcatimage>\n";
        let m = Manifest::parse(xml).expect("parse");
        assert_eq!(m.osimage["osarch"], "x86_64");
        assert_eq!(m.linuximage["kerneldir"], "");
        assert!(Manifest::parse("<xcatimage><a></b></xcatimage>").is_err());
        assert!(Manifest::parse("<other/>").is_err());
        assert!(Manifest::parse("").is_err());
    }
}
