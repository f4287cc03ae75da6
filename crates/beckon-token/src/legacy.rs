//! The legacy token format of the product the seeds document (SPEC §10, "migration"), which an
//! app may opt in to accepting so that its existing token server keeps working during a move:
//!
//! ```text
//! 1:<appId>:<expireTs>:<md5(account + appId + certificate + expireTs)>
//! ```
//!
//! `expireTs` is the expiry in Unix seconds, in decimal; the digest is 32 hexadecimal digits.
//!
//! **This format is weak.** It has no HMAC (an MD5 over a concatenation, open to
//! length-extension and to an ambiguity between where the account ends and the App ID begins),
//! carries no privileges, and a token is replayable by anyone who sees it until it expires.
//! Servers accept it only for apps that ask, and say so loudly; [`mint`] exists for tests and for
//! checking a token server during the move, not for new token servers.
//!
//! ```
//! use beckon_token::legacy;
//!
//! let token = legacy::mint(b"5cfd2fd1755d40ecb72977518be15d3b", "myapp", "alice", 1_700_003_600);
//! assert!(legacy::is_legacy(&token));
//! let now = 1_700_000_000;
//! assert_eq!(legacy::verify(b"5cfd2fd1755d40ecb72977518be15d3b", &token, "myapp", "alice", now),
//!            Ok(1_700_003_600));
//! assert!(legacy::verify(b"another certificate", &token, "myapp", "alice", now).is_err());
//! assert!(legacy::verify(b"5cfd2fd1755d40ecb72977518be15d3b", &token, "myapp", "alice", 1_700_003_600)
//!     .unwrap_err()
//!     .is_expired());
//! ```

use md5::{Digest, Md5};

use crate::TokenError;

/// What every legacy token starts with: its version.
const PREFIX: &str = "1:";

/// The longest legacy token looked at, in bytes (a 128-character account is not part of it;
/// App IDs are 32 characters in the product, and at most 512 bytes here).
const MAX_LEN: usize = 1024;

/// Whether `token` has the legacy format's shape (it may still be invalid).
pub fn is_legacy(token: &str) -> bool {
    token.starts_with(PREFIX)
}

/// A legacy token for `account` of `app_id`, valid until `expires_at` (Unix seconds), made with
/// the app's `certificate`.
pub fn mint(certificate: &[u8], app_id: &str, account: &str, expires_at: u64) -> String {
    let digest = digest(certificate, app_id, account, expires_at);
    let mut hex = String::with_capacity(32);
    for b in digest {
        hex.push(char::from(HEX[usize::from(b >> 4)]));
        hex.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    format!("{PREFIX}{app_id}:{expires_at}:{hex}")
}

/// Checks a legacy token for `account` of `app_id` at `now_unix`; returns its expiry.
///
/// The checks run in this order: shape, digest (compared in constant time), app, expiry
/// (expired when `now_unix >= expireTs`). A digest in upper-case hexadecimal is accepted.
/// Never panics, whatever `token` holds.
///
/// # Errors
///
/// [`TokenError::Malformed`], [`TokenError::BadSignature`], [`TokenError::WrongApp`] or
/// [`TokenError::Expired`]. A token for another account fails as `BadSignature`: the account
/// is only in the digest.
pub fn verify(
    certificate: &[u8],
    token: &str,
    app_id: &str,
    account: &str,
    now_unix: u64,
) -> Result<u64, TokenError> {
    if token.len() > MAX_LEN {
        return Err(TokenError::Malformed("longer than 1024 bytes"));
    }
    let rest = token
        .strip_prefix(PREFIX)
        .ok_or(TokenError::Malformed("a legacy token starts with `1:`"))?;
    // The App ID may not hold a `:`, so the last two fields are found from the end.
    let (rest, hex) = rest
        .rsplit_once(':')
        .ok_or(TokenError::Malformed("a legacy token has four fields"))?;
    let (token_app, expires) = rest
        .rsplit_once(':')
        .ok_or(TokenError::Malformed("a legacy token has four fields"))?;
    let canonical = !expires.is_empty()
        && expires.bytes().all(|b| b.is_ascii_digit())
        && (expires == "0" || !expires.starts_with('0'));
    let expires_at: u64 = match expires.parse() {
        Ok(t) if canonical => t,
        _ => {
            return Err(TokenError::Malformed(
                "the expiry is not a number of seconds",
            ));
        }
    };
    let given = decode_hex(hex).ok_or(TokenError::Malformed(
        "the signature is not 32 hexadecimal digits",
    ))?;
    let expected = digest(certificate, token_app, account, expires_at);
    let differ = given
        .iter()
        .zip(expected.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if differ != 0 {
        return Err(TokenError::BadSignature);
    }
    if token_app != app_id {
        return Err(TokenError::WrongApp);
    }
    if now_unix >= expires_at {
        return Err(TokenError::Expired {
            expired_at: expires_at,
            now: now_unix,
        });
    }
    Ok(expires_at)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn digest(certificate: &[u8], app_id: &str, account: &str, expires_at: u64) -> [u8; 16] {
    let mut md5 = Md5::new();
    md5.update(account.as_bytes());
    md5.update(app_id.as_bytes());
    md5.update(certificate);
    md5.update(expires_at.to_string().as_bytes());
    md5.finalize().into()
}

/// 32 hexadecimal digits (either case) as 16 bytes.
fn decode_hex(hex: &str) -> Option<[u8; 16]> {
    if hex.len() != 32 {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = [0u8; 16];
    for (i, pair) in hex.as_bytes().chunks_exact(2).enumerate() {
        out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const CERT: &[u8] = b"5cfd2fd1755d40ecb72977518be15d3b";

    /// The digest is MD5 over the four fields as text, as the legacy token servers compute it
    /// (cross-checked with Python: `hashlib.md5(b"bob" + b"app" + b"cert" + b"2").hexdigest()`).
    #[test]
    fn known_token() {
        assert_eq!(
            mint(b"cert", "app", "bob", 2),
            "1:app:2:b29f273ba76b74a96ffd1e4a42f00fd1"
        );
    }

    #[test]
    fn every_refusal_has_its_reason() {
        let token = mint(CERT, "app", "alice", 100);
        assert_eq!(verify(CERT, &token, "app", "alice", 99), Ok(100));
        assert_eq!(
            verify(
                CERT,
                &token.to_uppercase().replace("1:APP", "1:app"),
                "app",
                "alice",
                99
            ),
            Ok(100),
            "upper-case digits"
        );
        assert_eq!(
            verify(b"other", &token, "app", "alice", 99),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            verify(CERT, &token, "app", "bob", 99),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            verify(CERT, &token, "other", "alice", 99),
            Err(TokenError::WrongApp)
        );
        assert!(
            verify(CERT, &token, "app", "alice", 100)
                .unwrap_err()
                .is_expired()
        );
        let forged_expiry = token.replace(":100:", ":200:");
        assert_eq!(
            verify(CERT, &forged_expiry, "app", "alice", 150),
            Err(TokenError::BadSignature)
        );
        for bad in [
            "",
            "1:",
            "2:app:100:7d8fe8b2a1e9bf8d4fd1c2be0c58a6b1",
            "1:app:7d8fe8b2a1e9bf8d4fd1c2be0c58a6b1",
            "1:app:0100:7d8fe8b2a1e9bf8d4fd1c2be0c58a6b1",
            "1:app:-1:7d8fe8b2a1e9bf8d4fd1c2be0c58a6b1",
            "1:app:100:7d8fe8b2a1e9bf8d4fd1c2be0c58a6b",
            "1:app:100:7d8fe8b2a1e9bf8d4fd1c2be0c58a6bz",
            "1:app:99999999999999999999999:7d8fe8b2a1e9bf8d4fd1c2be0c58a6b1",
        ] {
            assert!(
                matches!(
                    verify(CERT, bad, "app", "alice", 0),
                    Err(TokenError::Malformed(_))
                ),
                "{bad:?}"
            );
        }
        assert!(!is_legacy("bk1.x") && is_legacy(&token));
    }

    proptest! {
        #[test]
        fn any_text_is_refused_cleanly(token in ".{0,80}", app in "[a-z]{1,8}") {
            let r = verify(CERT, &token, &app, "alice", 0);
            prop_assert!(r.is_err() || token == mint(CERT, &app, "alice", r.unwrap()));
        }

        #[test]
        fn minted_tokens_verify_until_they_expire(app in "[0-9a-f]{1,32}", account in "[a-z0-9]{1,20}", expires in 1u64..u64::MAX) {
            let token = mint(CERT, &app, &account, expires);
            prop_assert_eq!(verify(CERT, &token, &app, &account, expires - 1), Ok(expires));
            prop_assert!(verify(CERT, &token, &app, &account, expires).unwrap_err().is_expired());
        }
    }
}
