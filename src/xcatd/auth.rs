//! Logins and tokens, as xcatd checks them: a user name and password against the `passwd` row
//! with `key=xcat` (a crypt(3) `$5$`/`$6$` hash or plain text), and tokens in the `token` table
//! (`site.tokenexpiredays` days, default 1, or `never`).

use crate::boot::template::shacrypt;
use crate::store::table_spec;
use crate::store::{is_disabled, Store};

/// Whether `password` is `user`'s xCAT password.
pub fn check_password(store: &Store, user: &str, password: &str) -> bool {
    if user.is_empty() {
        return false;
    }
    let Ok(spec) = table_spec("passwd") else {
        return false;
    };
    let (Some(k), Some(u), Some(p)) = (
        spec.col_index("key"),
        spec.col_index("username"),
        spec.col_index("password"),
    ) else {
        return false;
    };
    let Ok(rows) = store.rows("passwd") else {
        return false;
    };
    rows.iter()
        .filter(|r| !is_disabled(spec, r))
        .filter(|r| r.get(k).and_then(|v| v.as_deref()) == Some("xcat"))
        .filter(|r| r.get(u).and_then(|v| v.as_deref()) == Some(user))
        .filter_map(|r| r.get(p).and_then(|v| v.clone()))
        .any(|stored| password_matches(&stored, password))
}

/// A stored password (crypt(3) SHA-256/SHA-512 hash, or plain text) against what was typed.
pub fn password_matches(stored: &str, typed: &str) -> bool {
    let computed = if let Some(rest) = stored.strip_prefix("$6$") {
        let (rounds, salt) = crypt_params(rest);
        shacrypt::sha512_crypt(typed.as_bytes(), salt, rounds)
    } else if let Some(rest) = stored.strip_prefix("$5$") {
        let (rounds, salt) = crypt_params(rest);
        shacrypt::sha256_crypt(typed.as_bytes(), salt, rounds)
    } else {
        typed.to_string()
    };
    constant_time_eq(computed.as_bytes(), stored.as_bytes())
}

fn crypt_params(rest: &str) -> (Option<u32>, &str) {
    let (rounds, rest) = match rest.strip_prefix("rounds=") {
        Some(r) => match r.split_once('$') {
            Some((n, tail)) => (n.parse().ok(), tail),
            None => (None, r),
        },
        None => (None, rest),
    };
    (rounds, rest.split('$').next().unwrap_or(""))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `YYYY-MM-DD HH:MM:SS` in UTC (xCAT's `time2string(…, "-")` form).
fn stamp(t: time::OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Creates a token for `user`: (id, expiry as xCAT prints it).
pub fn new_token(store: &Store, user: &str) -> anyhow::Result<(String, String)> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let id = format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    );
    let days = store.site("tokenexpiredays")?.unwrap_or_default();
    let now = time::OffsetDateTime::now_utc();
    let expire = if days.trim().eq_ignore_ascii_case("never") {
        "never".to_string()
    } else {
        let d: i64 = days.trim().parse().unwrap_or(1).max(1);
        stamp(now + time::Duration::days(d))
    };
    let created = stamp(now);
    store.write(None, |tx| {
        tx.set(
            "token",
            &[&id],
            &[
                ("username", Some(user)),
                ("expire", Some(&expire)),
                ("created", Some(&created)),
                ("access", Some(&created)),
            ],
        )
    })?;
    Ok((id, expire))
}

/// The user a token belongs to, when it exists, is enabled and has not expired.
pub fn verify_token(store: &Store, id: &str) -> Option<String> {
    let spec = table_spec("token").ok()?;
    let row = store.get("token", &[id]).ok()??;
    if is_disabled(spec, &row) {
        return None;
    }
    let col = |n: &str| {
        spec.col_index(n)
            .and_then(|i| row.get(i).cloned().flatten())
    };
    let expire = col("expire").unwrap_or_default();
    if expire != "never" && expire <= stamp(time::OffsetDateTime::now_utc()) {
        return None;
    }
    col("username").filter(|u| !u.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_plain_and_hashed() {
        assert!(password_matches("secret", "secret"));
        assert!(!password_matches("secret", "Secret"));
        let h = shacrypt::sha512_crypt(b"pw", "saltsalt", None);
        assert!(password_matches(&h, "pw"));
        assert!(!password_matches(&h, "px"));
        let h = shacrypt::sha256_crypt(b"pw", "abc", Some(10000));
        assert!(h.starts_with("$5$rounds=10000$abc$"), "{h}");
        assert!(password_matches(&h, "pw"));
    }

    #[test]
    fn tokens_belong_to_their_user_until_they_expire() {
        let store = Store::open_in_memory().expect("store");
        let (id, expire) = new_token(&store, "alice").expect("token");
        assert_eq!(verify_token(&store, &id).as_deref(), Some("alice"));
        assert!(expire > stamp(time::OffsetDateTime::now_utc()));
        assert_eq!(verify_token(&store, "nope"), None);
        store
            .write(None, |tx| {
                tx.set("token", &[&id], &[("expire", Some("2001-01-01 00:00:00"))])
            })
            .expect("expire");
        assert_eq!(verify_token(&store, &id), None);
    }
}
