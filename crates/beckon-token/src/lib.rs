//! Beckon's SignalingToken: minting and verification (SPEC §10).
//!
//! A token says that whoever holds an app's App Certificate lets one account of that app log in
//! until a given time, with some [`Privileges`]. It is signed with HMAC-SHA256 and checked in
//! constant time; it is opaque, printable (URL-safe ASCII), versioned, and carries its expiry.
//! The server checks it at login with [`verify`]; the server's command line and app token
//! servers mint it with [`mint`].
//!
//! This crate does no I/O and reads no clock: the current time is always an argument, in unix
//! seconds. It is not encryption (anyone holding a token can read its claims, see [`peek`]),
//! and it keeps no revocation list or replay cache (a token is valid until it expires). The
//! legacy `1:<appId>:<expireTs>:<md5>` tokens that SPEC §10 lets an app opt in to are read by
//! the separate [`legacy`] module, so that nothing accepts them by accident.
//!
//! ```
//! use beckon_token::{mint, verify, Privileges, TokenClaims, TokenError};
//!
//! let certificate = b"5cfd2fd1755d40ecb72977518be15d3b";
//! let claims = TokenClaims {
//!     app_id: "970CA35de60c44645bbae8a215061b33".to_owned(),
//!     account: "alice".to_owned(),
//!     issued_at: 1_700_000_000,
//!     expires_at: 1_700_003_600,
//!     privileges: Privileges::NONE,
//! };
//! let token = mint(certificate, &claims);
//! assert!(token.starts_with("bk1."));
//!
//! let now = 1_700_000_060;
//! let checked = verify(certificate, &token, &claims.app_id, "alice", now)?;
//! assert_eq!(checked, claims);
//! assert!(!checked.privileges.contains(Privileges::SERVER));
//!
//! assert_eq!(verify(b"another certificate", &token, &claims.app_id, "alice", now),
//!            Err(TokenError::BadSignature));
//! assert!(verify(certificate, &token, &claims.app_id, "alice", 1_700_003_600)
//!     .unwrap_err()
//!     .is_expired());
//! # Ok::<(), TokenError>(())
//! ```
//!
//! # Format, version 1
//!
//! ```text
//! token   = "bk1." base64url(payload) "." base64url(tag)        (no padding)
//! payload = version u8 (= 1) | issued_at u64 | expires_at u64 | privileges u32
//!         | app_id length u16 | app_id UTF-8 | account length u16 | account UTF-8
//! tag     = HMAC-SHA256(key = App Certificate, message = "bk1." | payload)
//! ```
//!
//! Integers are big-endian. Every part has exactly one encoding (canonical base64, no trailing
//! bytes, decimal version without leading zeros), so changing any character of a token makes
//! it invalid. A token longer than [`MAX_TOKEN_LEN`] bytes is refused before anything is
//! decoded; [`mint`] never makes one, because the app id and account are each limited to
//! [`MAX_FIELD_LEN`] bytes.
//!
//! The certificate is an HMAC key, so, as with any HMAC, two certificates that differ only by
//! trailing zero bytes (and shorter than 64 bytes) sign alike. App Certificates are fixed-length
//! hex strings, for which this cannot happen.
//!
//! # Secrets
//!
//! An App Certificate signs every token of its app, and a token logs its holder in: neither
//! may reach a log. A struct that keeps one holds it as a [`Secret`], which prints `[redacted]`
//! in its place, so the struct can derive `Debug` and still be logged.

mod error;
mod format;
pub mod issue;
pub mod legacy;
mod privileges;
mod secret;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

pub use error::TokenError;
pub use privileges::Privileges;
pub use secret::{REDACTED, Secret};

/// The token format version [`mint`] writes, and the only one [`verify`] reads.
pub const CURRENT_VERSION: u8 = 1;

/// The longest token text, in bytes, that [`verify`] and [`peek`] will look at.
pub const MAX_TOKEN_LEN: usize = 2048;

/// The longest app id or account, in bytes (of UTF-8), that a token can carry.
///
/// SPEC accounts are at most 128 characters, so at most 512 bytes.
pub const MAX_FIELD_LEN: usize = 512;

/// What a token asserts. All times are unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenClaims {
    /// The App ID the token is for.
    pub app_id: String,
    /// The account the token is for.
    pub account: String,
    /// The first second at which the token is no longer accepted.
    pub expires_at: u64,
    /// When the token was minted (informational: [`verify`] does not check it).
    pub issued_at: u64,
    /// What the token allows beyond an ordinary login.
    pub privileges: Privileges,
}

/// Mints a token for `claims`, signed with the app's `certificate`.
///
/// # Panics
///
/// If `claims.app_id` or `claims.account` is longer than [`MAX_FIELD_LEN`] bytes. Validated
/// accounts (at most 128 characters) and App IDs always fit.
pub fn mint(certificate: &[u8], claims: &TokenClaims) -> String {
    assert!(
        claims.app_id.len() <= MAX_FIELD_LEN,
        "token app id is {} bytes, more than MAX_FIELD_LEN ({MAX_FIELD_LEN})",
        claims.app_id.len()
    );
    assert!(
        claims.account.len() <= MAX_FIELD_LEN,
        "token account is {} bytes, more than MAX_FIELD_LEN ({MAX_FIELD_LEN})",
        claims.account.len()
    );
    let payload = format::encode_payload(CURRENT_VERSION, claims);
    let tag = signer(certificate, &payload).finalize().into_bytes();
    format::assemble(&payload, &tag)
}

/// Checks that `token` was minted with `certificate` for `app_id` and `account`, and has not
/// expired at `now_unix`; returns its claims.
///
/// The checks run in this order and the first failure is returned: shape, version, signature
/// (compared in constant time), app id, account, expiry (expired when
/// `now_unix >= expires_at`). Nothing about the claims is reported before the signature has
/// been checked. Never panics, whatever `token` holds.
///
/// # Errors
///
/// See [`TokenError`].
pub fn verify(
    certificate: &[u8],
    token: &str,
    app_id: &str,
    account: &str,
    now_unix: u64,
) -> Result<TokenClaims, TokenError> {
    let parsed = format::parse(token)?;
    signer(certificate, &parsed.payload)
        .verify_slice(&parsed.tag)
        .map_err(|_| TokenError::BadSignature)?;
    let claims = parsed.claims;
    if claims.app_id != app_id {
        return Err(TokenError::WrongApp);
    }
    if claims.account != account {
        return Err(TokenError::WrongAccount);
    }
    if now_unix >= claims.expires_at {
        return Err(TokenError::Expired {
            expired_at: claims.expires_at,
            now: now_unix,
        });
    }
    Ok(claims)
}

/// Reads a token's claims **without checking its signature or expiry**.
///
/// Anyone can forge a token that `peek` accepts: use it only to decide how to check the token
/// (e.g. which app's certificate to load), or for diagnostics, and never trust what it returns.
/// Never panics, whatever `token` holds.
///
/// # Errors
///
/// [`TokenError::Malformed`] or [`TokenError::UnsupportedVersion`].
pub fn peek(token: &str) -> Result<TokenClaims, TokenError> {
    format::parse(token).map(|parsed| parsed.claims)
}

/// An HMAC-SHA256 over the version prefix and `payload`, keyed by `certificate`.
fn signer(certificate: &[u8], payload: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length (longer keys are hashed), so this cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(certificate)
        .expect("HMAC accepts keys of any length");
    mac.update(format::V1_PREFIX.as_bytes());
    mac.update(payload);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &[u8] = b"5cfd2fd1755d40ecb72977518be15d3b";
    const APP: &str = "970CA35de60c44645bbae8a215061b33";
    const NOW: u64 = 1_700_000_000;

    fn claims() -> TokenClaims {
        TokenClaims {
            app_id: APP.to_owned(),
            account: "alice".to_owned(),
            issued_at: NOW,
            expires_at: NOW + 3600,
            privileges: Privileges::NONE,
        }
    }

    #[test]
    fn round_trip() {
        let c = claims();
        let token = mint(CERT, &c);
        assert_eq!(verify(CERT, &token, APP, "alice", NOW), Ok(c.clone()));
        assert_eq!(peek(&token), Ok(c));
    }

    #[test]
    fn server_privilege_round_trips() {
        let c = TokenClaims {
            privileges: Privileges::SERVER,
            ..claims()
        };
        let checked = verify(CERT, &mint(CERT, &c), APP, "alice", NOW).unwrap();
        assert!(checked.privileges.contains(Privileges::SERVER));
    }

    /// Pins the version 1 format: other minters (token servers in other languages) rely on it.
    /// Cross-checked with Python's `hmac`, `struct` and `base64` modules.
    #[test]
    fn known_token() {
        let c = TokenClaims {
            app_id: "app".to_owned(),
            account: "bob".to_owned(),
            issued_at: 1,
            expires_at: 2,
            privileges: Privileges::SERVER,
        };
        assert_eq!(
            mint(b"cert", &c),
            "bk1.AQAAAAAAAAABAAAAAAAAAAIAAAABAANhcHAAA2JvYg.\
             Mq2mBVAyXKfUz0HwiZ0NkR2NW_iCbUmbFaV8NEWC8BM"
        );
    }

    #[test]
    fn token_is_printable_url_safe_ascii() {
        let token = mint(CERT, &claims());
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
            "{token}"
        );
        assert_eq!(token.matches('.').count(), 2);
    }

    #[test]
    fn wrong_certificate_is_bad_signature_before_anything_else() {
        let token = mint(CERT, &claims());
        assert_eq!(
            verify(b"other", &token, APP, "alice", NOW),
            Err(TokenError::BadSignature)
        );
        // Even when it is also for another app and account, and expired.
        assert_eq!(
            verify(b"other", &token, "other-app", "mallory", u64::MAX),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn wrong_app_then_wrong_account_then_expiry() {
        let token = mint(CERT, &claims());
        assert_eq!(
            verify(CERT, &token, "other-app", "mallory", u64::MAX),
            Err(TokenError::WrongApp)
        );
        assert_eq!(
            verify(CERT, &token, APP, "mallory", u64::MAX),
            Err(TokenError::WrongAccount)
        );
        assert_eq!(
            verify(CERT, &token, APP, "Alice", NOW),
            Err(TokenError::WrongAccount)
        );
    }

    #[test]
    fn expiry_boundary() {
        let c = claims();
        let token = mint(CERT, &c);
        assert!(verify(CERT, &token, APP, "alice", c.expires_at - 1).is_ok());
        let err = verify(CERT, &token, APP, "alice", c.expires_at).unwrap_err();
        assert_eq!(
            err,
            TokenError::Expired {
                expired_at: c.expires_at,
                now: c.expires_at
            }
        );
        assert!(err.is_expired());
        assert!(
            verify(CERT, &token, APP, "alice", u64::MAX)
                .unwrap_err()
                .is_expired()
        );
        // Expired tokens can still be peeked at.
        assert_eq!(peek(&token), Ok(c));
    }

    #[test]
    fn zero_expiry_is_always_expired() {
        let c = TokenClaims {
            expires_at: 0,
            ..claims()
        };
        let token = mint(CERT, &c);
        assert!(
            verify(CERT, &token, APP, "alice", 0)
                .unwrap_err()
                .is_expired()
        );
    }

    #[test]
    fn longest_fields_fit() {
        let c = TokenClaims {
            app_id: "a".repeat(MAX_FIELD_LEN),
            account: "\u{1F600}".repeat(MAX_FIELD_LEN / 4),
            issued_at: u64::MAX,
            expires_at: u64::MAX,
            privileges: Privileges::from_bits_retain(u32::MAX),
        };
        let token = mint(CERT, &c);
        assert!(token.len() <= MAX_TOKEN_LEN, "{}", token.len());
        assert_eq!(
            verify(CERT, &token, &c.app_id, &c.account, u64::MAX - 1),
            Ok(c)
        );
    }

    #[test]
    fn empty_fields_round_trip() {
        let c = TokenClaims {
            app_id: String::new(),
            account: String::new(),
            ..claims()
        };
        assert_eq!(verify(b"", &mint(b"", &c), "", "", NOW), Ok(c));
    }

    #[test]
    fn mint_refuses_overlong_fields() {
        let long = "a".repeat(MAX_FIELD_LEN + 1);
        let account = TokenClaims {
            account: long.clone(),
            ..claims()
        };
        let app_id = TokenClaims {
            app_id: long,
            ..claims()
        };
        for (field, c) in [("account", account), ("app id", app_id)] {
            let panic = std::panic::catch_unwind(|| mint(CERT, &c)).expect_err(field);
            let message = panic.downcast_ref::<String>().expect("a formatted message");
            assert!(message.contains(field), "{message}");
            assert!(message.contains("MAX_FIELD_LEN"), "{message}");
        }
    }
}
