//! Minting for people: the checks a command line or an admin API runs before it mints, so a
//! token that no login could ever use is refused with a reason rather than handed out.
//!
//! `beckon-server token`, `beckon token` and the admin API's token endpoint all go through
//! [`issue`], so they refuse the same things with the same words.

use crate::{MAX_FIELD_LEN, Privileges, Secret, TokenClaims};

/// What to mint: the arguments of `beckon token` (and of `beckon-server token`).
#[derive(Debug, Clone)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct IssueArgs {
    /// The App ID the token is for.
    #[cfg_attr(feature = "clap", arg(long))]
    pub app_id: String,
    /// The app's App Certificate (the signing key).
    #[cfg_attr(feature = "clap", arg(long))]
    pub certificate: Secret<String>,
    /// The account the token is for.
    #[cfg_attr(feature = "clap", arg(long))]
    pub account: String,
    /// Seconds from now until the token expires.
    #[cfg_attr(
        feature = "clap",
        arg(long, default_value_t = 3600, value_name = "SECONDS")
    )]
    pub expire_in: u64,
    /// Grant the server privilege (special channels, forced sends, admin queries).
    #[cfg_attr(feature = "clap", arg(long))]
    pub server: bool,
}

/// Checks `args` as the server will check a login, then mints a token valid from `now_unix`
/// for `expire_in` seconds (see [`issue_with`]).
///
/// # Errors
///
/// As [`issue_with`], or an empty certificate.
pub fn issue(args: &IssueArgs, now_unix: u64) -> Result<String, String> {
    if args.certificate.expose().is_empty() {
        return Err("the certificate must not be empty".into());
    }
    issue_with(
        args.certificate.expose().as_bytes(),
        &args.app_id,
        &args.account,
        args.expire_in,
        if args.server {
            Privileges::SERVER
        } else {
            Privileges::NONE
        },
        now_unix,
    )
}

/// Checks the app id and account as the server checks a login (1–128 visible characters
/// without whitespace, at most [`MAX_FIELD_LEN`] bytes) and the lifetime (at least one second),
/// then mints with `certificate`.
///
/// # Errors
///
/// A sentence naming the field (`app id`, `account`, `expire_in`) and what is wrong with it.
pub fn issue_with(
    certificate: &[u8],
    app_id: &str,
    account: &str,
    expire_in: u64,
    privileges: Privileges,
    now_unix: u64,
) -> Result<String, String> {
    for (what, value) in [("app id", app_id), ("account", account)] {
        if value.len() > MAX_FIELD_LEN {
            return Err(format!(
                "the {what} is {} bytes; a token holds at most {MAX_FIELD_LEN}",
                value.len()
            ));
        }
        beckon_proto::Limits::default()
            .account(what, value)
            .map_err(|e| e.message)?;
    }
    if expire_in == 0 {
        return Err("expire_in must be at least 1 second".into());
    }
    let expires_at = now_unix
        .checked_add(expire_in)
        .ok_or("expire_in is too large")?;
    let claims = TokenClaims {
        app_id: app_id.to_owned(),
        account: account.to_owned(),
        issued_at: now_unix,
        expires_at,
        privileges,
    };
    Ok(crate::mint(certificate, &claims))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(app_id: &str, account: &str) -> IssueArgs {
        IssueArgs {
            app_id: app_id.into(),
            account: account.into(),
            certificate: Secret::new("cert".into()),
            expire_in: 60,
            server: false,
        }
    }

    #[test]
    fn mints_a_verifiable_token() {
        let mut a = args("app", "alice");
        a.server = true;
        let token = issue(&a, 1000).unwrap();
        let claims = crate::verify(b"cert", &token, "app", "alice", 1059).unwrap();
        assert_eq!(claims.issued_at, 1000);
        assert_eq!(claims.expires_at, 1060);
        assert!(claims.privileges.contains(Privileges::SERVER));
    }

    #[test]
    fn rejects_what_a_login_would_reject() {
        assert!(issue(&args("app", "has space"), 0).is_err());
        assert!(issue(&args("app", ""), 0).is_err());
        assert!(issue(&args("", "alice"), 0).is_err());
        assert!(issue(&args("app", &"a".repeat(129)), 0).is_err());
        assert!(
            issue(&args(&"é".repeat(300), "alice"), 0)
                .unwrap_err()
                .contains("bytes")
        );
        let mut a = args("app", "alice");
        a.expire_in = 0;
        assert!(issue(&a, 0).is_err());
        a.expire_in = u64::MAX;
        assert!(issue(&a, 1).is_err());
        let mut a = args("app", "alice");
        a.certificate = Secret::new(String::new());
        assert!(issue(&a, 0).is_err());
    }
}
