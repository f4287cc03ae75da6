//! `beckon admin`: the server's admin API from a terminal. Answers print as JSON on stdout;
//! an error prints its HTTP status, SPEC code and message on stderr and exits 1.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use reqwest::{Method, Url};
use serde_json::{Value, json};

use beckon_token::Secret;

#[derive(Debug, Args)]
pub(crate) struct AdminArgs {
    /// The server's admin listener (its --admin).
    #[arg(
        long,
        default_value = "http://127.0.0.1:7480",
        env = "BECKON_ADMIN_URL"
    )]
    url: String,
    /// A SignalingToken of the app with the server privilege (`beckon token --server`).
    #[arg(long, env = "BECKON_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<Secret<String>>,
    /// The App ID the request is about.
    #[arg(long, default_value = "demo", env = "BECKON_APP")]
    app: String,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Whether the server is alive (GET /healthz).
    Health,
    /// Whether the server is ready: listeners up, broker answering (GET /readyz).
    Ready,
    /// The Prometheus metrics, as text (GET /metrics).
    Metrics,
    /// Online accounts, a page at a time.
    Accounts {
        /// Start after this account (the previous page's `next`).
        #[arg(long)]
        after: Option<String>,
        /// Accounts per page, 1 to 1000.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// One account: session, channels, attributes.
    Account { account: String },
    /// Log an account out: its client hears LOGOUT_E_KICKED (103).
    Kick { account: String },
    /// Channels, a page at a time.
    Channels {
        #[arg(long)]
        after: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// One channel: members and attributes.
    Channel { channel: String },
    /// Send a p2p message from the token's account (stored if the account is offline).
    Send { account: String, text: String },
    /// Send a message to every member of a channel, from the token's account.
    Broadcast { channel: String, text: String },
    /// Mint a token for an account of the app.
    Mint {
        account: String,
        /// Seconds until it expires.
        #[arg(long, default_value_t = 3600)]
        expire_in: u64,
        /// Grant the server privilege.
        #[arg(long)]
        server: bool,
    },
    /// Re-read the server's configuration file: apps, certificates, limits (sessions stay).
    Reload,
}

/// One request: method, path segments, query, body.
struct Request {
    method: Method,
    segments: Vec<String>,
    query: Vec<(&'static str, String)>,
    body: Option<Value>,
}

fn get(segments: &[&str]) -> Request {
    Request {
        method: Method::GET,
        segments: segments.iter().map(|s| (*s).to_owned()).collect(),
        query: Vec::new(),
        body: None,
    }
}

fn post(segments: &[&str], body: Value) -> Request {
    Request {
        method: Method::POST,
        body: Some(body),
        ..get(segments)
    }
}

fn paged(mut r: Request, after: Option<String>, limit: usize) -> Request {
    if let Some(after) = after {
        r.query.push(("after", after));
    }
    r.query.push(("limit", limit.to_string()));
    r
}

fn request(args: &AdminArgs) -> Request {
    let app = args.app.as_str();
    match &args.command {
        AdminCommand::Health => get(&["healthz"]),
        AdminCommand::Ready => get(&["readyz"]),
        AdminCommand::Metrics => get(&["metrics"]),
        AdminCommand::Accounts { after, limit } => {
            paged(get(&["v1", "apps", app, "accounts"]), after.clone(), *limit)
        }
        AdminCommand::Account { account } => get(&["v1", "apps", app, "accounts", account]),
        AdminCommand::Kick { account } => {
            post(&["v1", "apps", app, "accounts", account, "kick"], json!({}))
        }
        AdminCommand::Channels { after, limit } => {
            paged(get(&["v1", "apps", app, "channels"]), after.clone(), *limit)
        }
        AdminCommand::Channel { channel } => get(&["v1", "apps", app, "channels", channel]),
        AdminCommand::Send { account, text } => post(
            &["v1", "apps", app, "accounts", account, "messages"],
            json!({ "text": text }),
        ),
        AdminCommand::Broadcast { channel, text } => post(
            &["v1", "apps", app, "channels", channel, "messages"],
            json!({ "text": text }),
        ),
        AdminCommand::Mint {
            account,
            expire_in,
            server,
        } => post(
            &["v1", "apps", app, "tokens"],
            json!({ "account": account, "expire_in": expire_in, "server": server }),
        ),
        AdminCommand::Reload => post(&["v1", "reload"], json!({})),
    }
}

pub(crate) async fn run(args: AdminArgs) -> ExitCode {
    match call(&args).await {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("beckon admin: {why}");
            ExitCode::FAILURE
        }
    }
}

async fn call(args: &AdminArgs) -> Result<String, String> {
    let r = request(args);
    let mut url = Url::parse(&args.url).map_err(|e| format!("--url {}: {e}", args.url))?;
    url.path_segments_mut()
        .map_err(|()| format!("--url {} cannot take a path", args.url))?
        .pop_if_empty()
        .extend(&r.segments);
    if !r.query.is_empty() {
        url.query_pairs_mut().extend_pairs(&r.query);
    }
    let http = reqwest::Client::new();
    let mut req = http.request(r.method, url.clone());
    if let Some(token) = &args.token {
        req = req.bearer_auth(token.expose());
    }
    if let Some(body) = r.body {
        req = req
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let resp = req
        .send()
        .await
        .map_err(|e| format!("{url}: {e} (is the server running with --admin?)"))?;
    let status = resp.status();
    let text = resp.text().await.map_err(|e| format!("{url}: {e}"))?;
    let parsed: Option<Value> = serde_json::from_str(&text).ok();
    if !status.is_success() {
        return Err(match parsed {
            Some(v) if v["code"].is_i64() => format!(
                "{status}: {}: {}",
                crate::code_name(
                    v["code"]
                        .as_i64()
                        .and_then(|c| i32::try_from(c).ok())
                        .unwrap_or(-1)
                ),
                v["message"].as_str().unwrap_or_default()
            ),
            _ => format!("{status}: {text}"),
        });
    }
    Ok(match parsed {
        Some(v) => serde_json::to_string_pretty(&v).unwrap_or(text),
        None => text.trim_end().to_owned(),
    })
}
