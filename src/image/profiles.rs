//! The osimage definitions `copycds` creates and where their files come from: a profile's
//! template, package list, exclusion list and postinstall script are looked up as xCAT does
//! (`SvrUtils.pm` `get_*_file_name`), first in the site's `<installdir>/custom/<install|netboot>/<family>/`,
//! then in the shipped `netboot-templates/{install,netboot/<family>}/`.

use std::path::{Path, PathBuf};

use super::media::Family;

/// `debian12.5.0` → `debian12`, `rhels9.4` → `rhels9`: the OS name with its major version only.
pub fn generic_os(os: &str) -> String {
    let digits = os.find(|c: char| c.is_ascii_digit()).unwrap_or(os.len());
    let (name, ver) = os.split_at(digits);
    let major = ver.split('.').next().unwrap_or("");
    format!("{name}{major}")
}

/// The names tried for a profile file, most specific first: `prof.os.arch.ext`, `prof.os.ext`,
/// `prof.genos.arch.ext`, `prof.genos.ext`, `prof.arch.ext`, `prof.ext`.
pub fn candidates(profile: &str, os: &str, arch: &str, ext: &str) -> Vec<String> {
    let g = generic_os(os);
    let mut v = vec![
        format!("{profile}.{os}.{arch}.{ext}"),
        format!("{profile}.{os}.{ext}"),
        format!("{profile}.{g}.{arch}.{ext}"),
        format!("{profile}.{g}.{ext}"),
        format!("{profile}.{arch}.{ext}"),
        format!("{profile}.{ext}"),
    ];
    v.dedup();
    v
}

/// The first existing candidate in `dirs`, in order.
pub fn find(dirs: &[PathBuf], profile: &str, os: &str, arch: &str, ext: &str) -> Option<PathBuf> {
    for d in dirs {
        for c in candidates(profile, os, arch, ext) {
            let p = d.join(&c);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Directories searched for a stateless/statelite profile's files.
pub fn netboot_dirs(installdir: &Path, family: Family) -> Vec<PathBuf> {
    vec![
        installdir.join("custom/netboot").join(family.dir()),
        crate::boot::template::shipped_root()
            .join("netboot")
            .join(family.dir()),
    ]
}

/// Directories searched for an install profile's files (`compute.rhels.tmpl` naming in the shipped
/// tree, which has one flat directory).
pub fn install_dirs(installdir: &Path, family: Family) -> Vec<PathBuf> {
    vec![
        installdir.join("custom/install").join(family.dir()),
        crate::boot::template::shipped_root().join("install"),
    ]
}

/// The shipped install templates are named after the installer (`compute.rhels.tmpl`).
pub fn install_os_key(family: Family) -> &'static str {
    match family {
        Family::Rh => "rhels",
        Family::Sles => "sles",
        Family::Debian => "debian",
        Family::Ubuntu => "ubuntu",
    }
}

/// One osimage definition: the osimage row and the linuximage row, as (column, value) pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageDef {
    pub name: String,
    pub osimage: Vec<(&'static str, String)>,
    pub linuximage: Vec<(&'static str, String)>,
}

/// The definitions copycds makes for a medium copied to `pkgdir`: install (compute and service),
/// netboot and statelite (compute). A profile is defined only when its package list (netboot) or
/// template (install) is found.
pub fn definitions(
    installdir: &Path,
    distname: &str,
    arch: &str,
    family: Family,
    pkgdir: &str,
) -> Vec<ImageDef> {
    let mut out = Vec::new();
    let osdistro = format!("{distname}-{arch}");
    let otherpkgdir = format!("{}/post/otherpkgs/{distname}/{arch}", installdir.display());
    let base = |name: &str, provmethod: &str, profile: &str| -> Vec<(&'static str, String)> {
        let _ = name;
        vec![
            ("imagetype", "linux".to_string()),
            ("provmethod", provmethod.to_string()),
            ("profile", profile.to_string()),
            ("osname", "Linux".to_string()),
            ("osvers", distname.to_string()),
            ("osarch", arch.to_string()),
            ("osdistroname", osdistro.clone()),
        ]
    };
    let s = |p: &Path| p.display().to_string();
    let idirs = install_dirs(installdir, family);
    let key = install_os_key(family);
    for profile in ["compute", "service"] {
        let tmpl = find(&idirs, profile, distname, arch, "tmpl")
            .or_else(|| find(&idirs, profile, key, arch, "tmpl"));
        let Some(tmpl) = tmpl else { continue };
        let pkglist = find(&idirs, profile, distname, arch, "pkglist")
            .or_else(|| find(&idirs, profile, key, arch, "pkglist"));
        let name = format!("{distname}-{arch}-install-{profile}");
        let mut os = base(&name, "install", profile);
        if profile == "service" {
            os.push(("postscripts", "servicenode".into()));
        }
        let mut li = vec![("template", s(&tmpl)), ("pkgdir", pkgdir.to_string())];
        if let Some(p) = pkglist {
            li.push(("pkglist", s(&p)));
        }
        li.push(("otherpkgdir", otherpkgdir.clone()));
        out.push(ImageDef {
            name,
            osimage: os,
            linuximage: li,
        });
    }
    let ndirs = netboot_dirs(installdir, family);
    if let Some(pkglist) = find(&ndirs, "compute", distname, arch, "pkglist") {
        for provmethod in ["netboot", "statelite"] {
            let name = format!("{distname}-{arch}-{provmethod}-compute");
            let mut li = vec![("pkglist", s(&pkglist)), ("pkgdir", pkgdir.to_string())];
            if let Some(p) = find(&ndirs, "compute", distname, arch, "otherpkgs.pkglist") {
                li.push(("otherpkglist", s(&p)));
            }
            li.push(("otherpkgdir", otherpkgdir.clone()));
            if let Some(p) = find(&ndirs, "compute", distname, arch, "exlist") {
                li.push(("exlist", s(&p)));
            }
            if let Some(p) = find(&ndirs, "compute", distname, arch, "postinstall") {
                li.push(("postinstall", s(&p)));
            }
            li.push((
                "rootimgdir",
                format!("{}/netboot/{distname}/{arch}/compute", installdir.display()),
            ));
            out.push(ImageDef {
                name: name.clone(),
                osimage: base(&name, provmethod, "compute"),
                linuximage: li,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generic_names() {
        assert_eq!(generic_os("debian12.5.0"), "debian12");
        assert_eq!(generic_os("rhels9.4"), "rhels9");
        assert_eq!(generic_os("rocky8"), "rocky8");
    }

    #[test]
    fn lookup_order_is_most_specific_first() {
        assert_eq!(
            candidates("compute", "rhels9.4", "x86_64", "pkglist"),
            vec![
                "compute.rhels9.4.x86_64.pkglist",
                "compute.rhels9.4.pkglist",
                "compute.rhels9.x86_64.pkglist",
                "compute.rhels9.pkglist",
                "compute.x86_64.pkglist",
                "compute.pkglist"
            ]
        );
    }

    #[test]
    fn custom_directory_wins() {
        let d = tempfile::tempdir().expect("tmp");
        let custom = d.path().join("custom/netboot/debian");
        std::fs::create_dir_all(&custom).expect("mkdir");
        std::fs::write(custom.join("compute.debian12.pkglist"), "bash\n").expect("write");
        let defs = definitions(d.path(), "debian12.5.0", "x86_64", Family::Debian, "/x");
        let nb = defs
            .iter()
            .find(|d| d.name == "debian12.5.0-x86_64-netboot-compute")
            .expect("netboot def");
        assert!(nb.linuximage.iter().any(|(k, v)| *k == "pkglist"
            && v.ends_with("custom/netboot/debian/compute.debian12.pkglist")));
        assert!(defs
            .iter()
            .any(|d| d.name == "debian12.5.0-x86_64-install-compute"));
        assert!(defs
            .iter()
            .any(|d| d.name == "debian12.5.0-x86_64-statelite-compute"));
    }
}
