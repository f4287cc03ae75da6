//! Logging in, as `chat` and `ping` do: the login options and the SDK instance.

use std::time::Duration;

use clap::Args;

use beckon_sdk::{Config, Event, EventStream, Instance};
use beckon_token::Secret;

/// How long a login may take before the command gives up.
pub(crate) const LOGIN_WAIT: Duration = Duration::from_secs(15);

/// Who to log in as, and how.
#[derive(Debug, Clone, Args)]
pub(crate) struct LoginArgs {
    /// The App ID.
    #[arg(long, default_value = "demo")]
    pub(crate) app: String,
    /// The SignalingToken to log in with. Without it (and without --certificate),
    /// `_no_need_token`, which only a development server or an app that allows it accepts.
    #[arg(long, conflicts_with = "certificate")]
    pub(crate) token: Option<Secret<String>>,
    /// Mint the token here with the app's certificate (for development and tests).
    #[arg(long)]
    pub(crate) certificate: Option<Secret<String>>,
    /// Accept any server certificate (tls, quic, wss): only for a development server with a
    /// self-signed certificate.
    #[arg(long)]
    pub(crate) insecure: bool,
}

impl LoginArgs {
    /// The token for `account`.
    pub(crate) fn token_for(&self, account: &str) -> Result<String, String> {
        if let Some(t) = &self.token {
            return Ok(t.expose().clone());
        }
        let Some(cert) = &self.certificate else {
            return Ok(beckon_proto::NO_TOKEN.to_owned());
        };
        let args = beckon_token::issue::IssueArgs {
            app_id: self.app.clone(),
            certificate: cert.clone(),
            account: account.to_owned(),
            expire_in: 24 * 3600,
            server: false,
        };
        beckon_token::issue::issue(&args, crate::unix_now())
    }

    /// An SDK instance for `url` (not logged in yet) and its event stream.
    pub(crate) fn instance(&self, url: &str) -> Result<(Instance, EventStream), String> {
        let mut config = Config::new(url);
        config.tls.dangerous_accept_any_cert = self.insecure;
        let sdk = Instance::new(config).map_err(|e| format!("{url}: {e}"))?;
        let events = sdk.events();
        Ok((sdk, events))
    }
}

/// Waits for the outcome of a login: the uid, or why it failed.
pub(crate) async fn await_login(events: &mut EventStream) -> Result<u32, String> {
    let outcome = tokio::time::timeout(LOGIN_WAIT, async {
        while let Some(e) = events.next().await {
            match e {
                Event::LoginSuccess { uid, .. } => return Ok(uid),
                Event::LoginFailed { ecode } => {
                    return Err(format!("login failed: {}", crate::code_name(ecode)));
                }
                _ => {}
            }
        }
        Err("the SDK instance stopped".to_owned())
    })
    .await;
    outcome.unwrap_or_else(|_| Err(format!("no login within {LOGIN_WAIT:?}")))
}
