//! Why a token was refused.

use std::fmt;

/// Why a token was refused by [`verify`](crate::verify) or could not be read by
/// [`peek`](crate::peek).
///
/// [`verify`](crate::verify) checks in a fixed order, and reports the first failure: the
/// token's shape ([`Malformed`](Self::Malformed)), its version
/// ([`UnsupportedVersion`](Self::UnsupportedVersion)), its signature
/// ([`BadSignature`](Self::BadSignature)), then the app, the account, and last the expiry. So
/// a token signed with another certificate is `BadSignature` even if it has also expired.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenError {
    /// The text is not a token of a known shape; the payload says what is wrong.
    Malformed(&'static str),
    /// The token is well formed up to its version, which this crate cannot read.
    UnsupportedVersion(u8),
    /// The signature was not made with this app's certificate (or the token was altered).
    BadSignature,
    /// The token is genuine but expired: `now >= expired_at` (unix seconds).
    Expired {
        /// The token's expiry.
        expired_at: u64,
        /// The time it was checked at.
        now: u64,
    },
    /// The token is genuine but was minted for another app.
    WrongApp,
    /// The token is genuine but was minted for another account.
    WrongAccount,
}

impl TokenError {
    /// Whether the token was refused only because it has expired (the client may ask its token
    /// server for a new one and retry).
    pub fn is_expired(&self) -> bool {
        matches!(self, Self::Expired { .. })
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(what) => write!(f, "malformed token: {what}"),
            Self::UnsupportedVersion(version) => write!(f, "unsupported token version {version}"),
            Self::BadSignature => f.write_str("token signature does not match the app certificate"),
            Self::Expired { expired_at, now } => {
                write!(
                    f,
                    "token expired at {expired_at} (unix s), checked at {now}"
                )
            }
            Self::WrongApp => f.write_str("token was minted for another app"),
            Self::WrongAccount => f.write_str("token was minted for another account"),
        }
    }
}

impl std::error::Error for TokenError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_messages() {
        assert_eq!(
            TokenError::Malformed("missing `bk` prefix").to_string(),
            "malformed token: missing `bk` prefix"
        );
        assert_eq!(
            TokenError::UnsupportedVersion(2).to_string(),
            "unsupported token version 2"
        );
        assert_eq!(
            TokenError::BadSignature.to_string(),
            "token signature does not match the app certificate"
        );
        assert_eq!(
            TokenError::Expired {
                expired_at: 10,
                now: 12
            }
            .to_string(),
            "token expired at 10 (unix s), checked at 12"
        );
        assert_eq!(
            TokenError::WrongApp.to_string(),
            "token was minted for another app"
        );
        assert_eq!(
            TokenError::WrongAccount.to_string(),
            "token was minted for another account"
        );
    }

    #[test]
    fn is_expired_only_for_expired() {
        assert!(
            TokenError::Expired {
                expired_at: 1,
                now: 1
            }
            .is_expired()
        );
        assert!(!TokenError::BadSignature.is_expired());
        assert!(!TokenError::Malformed("x").is_expired());
        assert!(!TokenError::WrongApp.is_expired());
    }

    #[test]
    fn is_a_std_error() {
        fn takes(_: &dyn std::error::Error) {}
        takes(&TokenError::WrongAccount);
    }
}
