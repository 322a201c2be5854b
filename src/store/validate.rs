//! Values the store refuses to hold because the services would misread them later: node names
//! nodeadd refuses, site settings that are not numbers, ports or addresses, node addresses that
//! are not addresses. Pure functions; [`super::Txn`] calls [`value`] on every write, and the
//! daemon calls [`site_value`] again at start for stores written before these checks.

use std::net::IpAddr;

use super::schema::TableSpec;

/// Node names xCAT would refuse or that break later (DHCP host names, file names under /tftpboot).
pub fn node_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with(['-', '.']);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{}' is not a valid node name (letters, digits, '-', '_' and '.' only)",
            name.escape_debug()
        ))
    }
}

/// A host name: dot-separated labels of letters, digits and '-' (RFC 1123), none empty, none
/// starting or ending with '-'; '_' is let through too, as resolvers do (sites have such names).
pub fn host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.trim_end_matches('.').split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// An xCAT regex value (`/pat/repl/` or `|pat|repl|`): checked when it is resolved, not here.
fn is_regex_value(v: &str) -> bool {
    v.starts_with('/') || v.starts_with('|')
}

/// The site keys whose value is a TCP/UDP port.
const PORT_KEYS: &[&str] = &["httpport", "nfsport", "omapiport", "xcatdport", "xcatiport"];

/// A site setting's value, or why the services could not use it.
pub fn site_value(key: &str, v: &str) -> Result<(), String> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(());
    }
    if PORT_KEYS.contains(&key) {
        return match v.parse::<u32>() {
            Ok(p) if (1..=65535).contains(&p) => Ok(()),
            _ => Err(format!(
                "site.{key} '{}' is not a port: give a number from 1 to 65535",
                v.escape_debug()
            )),
        };
    }
    match key {
        "dhcplease" => match v.parse::<u64>() {
            Ok(s) if s > 0 && s <= u32::MAX as u64 => Ok(()),
            _ => Err(format!(
                "site.dhcplease '{}' is not a lease time: give a positive number of seconds",
                v.escape_debug()
            )),
        },
        "dhcpcachethreshold" => match v.parse::<u8>() {
            Ok(p) if p < 100 => Ok(()),
            _ => Err(format!(
                "site.dhcpcachethreshold '{}' is not a percentage: give a number from 0 (off) to 99",
                v.escape_debug()
            )),
        },
        "master" => {
            if v.parse::<IpAddr>().is_ok() || (host_name(v) && !looks_numeric(v)) {
                Ok(())
            } else {
                Err(format!(
                    "site.master '{}' is neither an IP address nor a host name",
                    v.escape_debug()
                ))
            }
        }
        _ => Ok(()),
    }
}

/// `10.1.2.300` is a mistyped address, not a host name.
fn looks_numeric(v: &str) -> bool {
    v.trim_end_matches('.')
        .split('.')
        .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_digit()))
}

/// Checks one column value about to be written to `table` in the row with `key`.
pub fn value(table: &TableSpec, key: &[&str], col: &str, v: &str) -> Result<(), String> {
    // The node (or group) a node-keyed row is for.
    if col == "node" && table.keys.first() == Some(&"node") {
        // A boot timeline is also kept for clients that are no node yet, under their address.
        if table.name == "bootevents" {
            if let Some(a) = v.strip_prefix("mac:").or_else(|| v.strip_prefix("ip:")) {
                return if !a.is_empty()
                    && a.chars()
                        .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
                {
                    Ok(())
                } else {
                    Err(format!("'{v}' is not mac:<address> or ip:<address>"))
                };
            }
        }
        return node_name(v);
    }
    match (table.name, col) {
        ("site", "value") => site_value(key.first().copied().unwrap_or(""), v),
        ("hosts", "ip") => {
            let t = v.trim();
            if t.is_empty() || is_regex_value(t) || t.parse::<IpAddr>().is_ok() {
                Ok(())
            } else {
                Err(format!(
                    "hosts.ip '{}' of {} is not an IP address",
                    t.escape_debug(),
                    key.first().copied().unwrap_or("?")
                ))
            }
        }
        ("osimage", "nfsrootopts") => nfsroot_options(v),
        _ => Ok(()),
    }
}

/// A statelite image's extra NFS root mount options (xCAT's `_parse_statelite_nfsroot_options`):
/// a comma-separated list without blanks; never `rw` or `defaults`, the root is read-only.
pub fn nfsroot_options(v: &str) -> Result<(), String> {
    if v.is_empty() {
        return Ok(());
    }
    for option in v.split(',') {
        if option.is_empty() || option.chars().any(char::is_whitespace) {
            return Err(
                "nfsrootopts must be a comma-separated list without whitespace or empty options"
                    .into(),
            );
        }
        let name = option.split('=').next().unwrap_or("").to_ascii_lowercase();
        if name == "rw" || name == "defaults" {
            return Err(format!(
                "nfsrootopts cannot contain '{name}'; statelite NFS roots are always read-only"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_times() {
        assert!(site_value("dhcplease", "43200").is_ok());
        for bad in ["0", "-5", "abc", "1.5", "99999999999"] {
            let e = site_value("dhcplease", bad).unwrap_err();
            assert!(e.contains(&format!("'{bad}'")), "{e}");
        }
    }

    #[test]
    fn cache_thresholds() {
        for good in ["0", "25", "99"] {
            assert!(site_value("dhcpcachethreshold", good).is_ok(), "{good}");
        }
        for bad in ["100", "-1", "25%", "0.25"] {
            let e = site_value("dhcpcachethreshold", bad).unwrap_err();
            assert!(e.contains(&format!("'{bad}'")), "{e}");
        }
    }

    #[test]
    fn ports() {
        assert!(site_value("nfsport", "2049").is_ok());
        for bad in ["0", "65536", "-1", "nfs"] {
            assert!(site_value("nfsport", bad).is_err(), "{bad}");
        }
        assert!(site_value("httpport", "0").is_err());
    }

    #[test]
    fn masters() {
        for ok in ["10.0.0.1", "fd00::1", "mn1", "mn1.cluster.example", "mn_1"] {
            assert!(site_value("master", ok).is_ok(), "{ok}");
        }
        for bad in ["not..an..ip", "10.0.0.300", "-mn", "a b", "mn/1"] {
            assert!(site_value("master", bad).is_err(), "{bad}");
        }
    }

    fn spec(name: &str) -> &'static TableSpec {
        crate::store::schema::table(name).expect("table")
    }

    #[test]
    fn node_addresses() {
        let h = spec("hosts");
        assert!(value(h, &["n1"], "ip", "10.99.77.30").is_ok());
        assert!(value(h, &["n1"], "ip", "|n(\\d+)|10.0.0.($1)|").is_ok());
        assert!(value(h, &["n1"], "ip", "10.99.77.300").is_err());
        assert!(value(h, &["n1"], "ip", "n1-bmc").is_err());
    }

    #[test]
    fn nfs_root_options() {
        assert!(nfsroot_options("noac,vers=3").is_ok());
        for bad in ["rw", "noac,RW", "defaults", "noac,", "a b"] {
            assert!(nfsroot_options(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn node_names() {
        assert!(node_name("cn-01.rack_2").is_ok());
        for bad in ["a b", "n1,n2", "[1-3]", "n\u{1}", "", "-x", ".x"] {
            assert!(node_name(bad).is_err(), "{bad:?}");
        }
        // The timeline of a client that is no node yet.
        let ev = spec("bootevents");
        assert!(value(
            ev,
            &["mac:52:54:00:aa:bb:cc", "1"],
            "node",
            "mac:52:54:00:aa:bb:cc"
        )
        .is_ok());
        assert!(value(ev, &["ip:10.0.0.7", "1"], "node", "ip:10.0.0.7").is_ok());
        assert!(value(ev, &["mac:x y", "1"], "node", "mac:x y").is_err());
        assert!(value(
            spec("nodelist"),
            &["mac:52:54:00:aa:bb:cc"],
            "node",
            "mac:52:54:00:aa:bb:cc"
        )
        .is_err());
        assert!(value(spec("nodelist"), &["a b"], "node", "a b").is_err());
        assert!(value(spec("hosts"), &["n1,n2"], "node", "n1,n2").is_err());
        assert!(value(spec("site"), &["a b"], "key", "a b").is_ok());
    }
}
