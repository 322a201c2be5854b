//! Ethernet MAC addresses as discovery compares them: six bytes, printed lower-case with colons
//! (the form xCAT stores in `mac.mac` and prints in `switchprobe`).

use std::fmt;
use std::str::FromStr;

/// A 48-bit MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The MAC a bridge table index ends with: its last six sub-identifiers, each an octet.
    /// `None` when the index is shorter or a sub-identifier is not an octet (a broken agent).
    pub fn from_index_tail(index: &[u32]) -> Option<MacAddr> {
        let tail = index.get(index.len().checked_sub(6)?..)?;
        let mut b = [0u8; 6];
        for (d, s) in b.iter_mut().zip(tail) {
            *d = u8::try_from(*s).ok()?;
        }
        Some(MacAddr(b))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// The error for a string that is not a MAC address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a MAC address")]
pub struct BadMac(pub String);

impl FromStr for MacAddr {
    type Err = BadMac;

    /// `aa:bb:cc:dd:ee:ff`, with `-` instead of `:`, or twelve bare hex digits; any case.
    /// Single-digit groups (`0:1b:…`, as some tools print) are accepted.
    fn from_str(s: &str) -> Result<MacAddr, BadMac> {
        let bad = || BadMac(s.to_string());
        let t = s.trim();
        let mut b = [0u8; 6];
        if t.len() == 12 && t.bytes().all(|c| c.is_ascii_hexdigit()) {
            for (i, d) in b.iter_mut().enumerate() {
                let h = t.get(i * 2..i * 2 + 2).ok_or_else(bad)?;
                *d = u8::from_str_radix(h, 16).map_err(|_| bad())?;
            }
            return Ok(MacAddr(b));
        }
        let parts: Vec<&str> = t.split([':', '-']).collect();
        if parts.len() != 6 {
            return Err(bad());
        }
        for (d, p) in b.iter_mut().zip(parts) {
            if p.is_empty() || p.len() > 2 {
                return Err(bad());
            }
            *d = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        Ok(MacAddr(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let m: MacAddr = "52:54:00:AB:cd:0F".parse().unwrap();
        assert_eq!(m.to_string(), "52:54:00:ab:cd:0f");
        assert_eq!("52-54-00-ab-cd-0f".parse::<MacAddr>().unwrap(), m);
        assert_eq!("525400abcd0f".parse::<MacAddr>().unwrap(), m);
        assert_eq!(
            "0:1b:21:0:0:1".parse::<MacAddr>().unwrap().to_string(),
            "00:1b:21:00:00:01"
        );
        for bad in [
            "",
            "52:54:00:ab:cd",
            "52:54:00:ab:cd:0f:11",
            "52:54:00:ab:cd:xg",
            "525:4:00:ab:cd:0f",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn index_tail() {
        assert_eq!(
            MacAddr::from_index_tail(&[10, 82, 84, 0, 18, 52, 86]).map(|m| m.to_string()),
            Some("52:54:00:12:34:56".into())
        );
        assert_eq!(MacAddr::from_index_tail(&[1, 2, 3]), None);
        assert_eq!(MacAddr::from_index_tail(&[1, 2, 3, 4, 5, 256]), None);
    }
}
