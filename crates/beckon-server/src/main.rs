//! `beckon-server`: serves Beckon, or mints a token (`beckon-server token …`).
//!
//! With no arguments it serves the zero-config development mode on the loopback interface —
//! TCP and QUIC on port 7400, WebSocket on 7401 (`ws://127.0.0.1:7401/ws`) — keeping user
//! attributes and offline messages in the standard data directory. It prints one line per
//! listener on stdout, `beckon-server listening on <url>`, once every listener is bound.
//!
//! Exit codes: 0 after a clean shutdown (SIGTERM, SIGINT), 1 when the server cannot start or
//! fails (the store cannot be opened, the address is taken, …), 2 for bad arguments or
//! configuration.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};
use tracing::{info, warn};
use tracing_subscriber::EnvFilter;

use beckon_server::{ClusterConfig, Server, ServerConfig, Storage};
use beckon_token::issue::{IssueArgs, issue};

/// mimalloc rather than the system allocator: every message the server routes allocates a few
/// short-lived buffers across threads, which is the pattern mimalloc is built for.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code for bad arguments or configuration, as clap uses for usage errors.
const EXIT_USAGE: u8 = 2;

#[derive(Debug, Parser)]
#[command(name = "beckon-server", version, about = "The Beckon signaling server")]
struct Cli {
    /// Where to listen, as a URL: tcp://HOST:PORT, tls://HOST:PORT, quic://HOST:PORT,
    /// ws://HOST:PORT/PATH or wss://HOST:PORT/PATH (a bare HOST:PORT means tcp). Repeat it to
    /// listen on several; it replaces the config file's list. Port 0 picks a free port.
    /// Default: tcp://127.0.0.1:7400, quic://127.0.0.1:7400 and ws://127.0.0.1:7401/ws.
    #[arg(long, value_name = "URL")]
    listen: Vec<String>,
    /// PEM certificate chain for the tls, quic and wss listeners (with --tls-key). Without
    /// it, a self-signed certificate is made at start, which clients accept only when told to.
    #[arg(long, value_name = "PATH", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// TOML configuration file; without it the server runs in development mode.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Keep user attributes and offline messages in DIR/beckon.redb (created if missing).
    /// Overrides the config file. Default: $XDG_DATA_HOME/beckon or $HOME/.local/share/beckon.
    #[arg(long, value_name = "DIR", conflicts_with = "ephemeral")]
    data_dir: Option<PathBuf>,
    /// Keep user attributes and offline messages in memory only: they are lost when the server
    /// stops. Overrides the config file.
    #[arg(long)]
    ephemeral: bool,
    /// Serve metrics (/metrics), probes (/healthz, /readyz) and the admin API on this plain
    /// HTTP address; without a value, http://127.0.0.1:7480. Overrides the config file's
    /// `admin`. Off by default: without it no metrics are kept.
    #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = "http://127.0.0.1:7480")]
    admin: Option<String>,
    /// Run as one node of a cluster sharing this Redis: redis://HOST:PORT, or
    /// redis+cluster://HOST:PORT,HOST:PORT for a Redis Cluster. Overrides the config file's
    /// `[cluster] url`. Without it (and without `[cluster]`) the server is a single node.
    #[arg(long, value_name = "URL")]
    cluster: Option<String>,
    /// This node's name in the cluster (unique among live nodes); default: a random one.
    #[arg(long, value_name = "ID")]
    node_id: Option<String>,
    /// How log lines look on stderr: `human` (coloured only on a terminal) or `json` (one
    /// object per line, for log collectors).
    #[arg(long, value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Mint a SignalingToken and print it.
    Token(IssueArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Token(args)) => token(&args),
        None => {
            let storage = match (cli.data_dir, cli.ephemeral) {
                (Some(dir), _) => Some(Storage::Dir(dir)),
                (None, true) => Some(Storage::Memory),
                (None, false) => None,
            };
            let tls = cli.tls_cert.zip(cli.tls_key);
            init_logs(cli.log_format);
            let admin = match cli.admin.as_deref().map(beckon_server::parse_admin) {
                None => None,
                Some(Ok(addr)) => Some(addr),
                Some(Err(why)) => {
                    eprintln!("beckon-server: --admin: {why}");
                    return ExitCode::from(EXIT_USAGE);
                }
            };
            let cluster = (cli.cluster, cli.node_id);
            serve(&cli.listen, tls, cli.config, storage, admin, cluster)
        }
    }
}

fn token(args: &IssueArgs) -> ExitCode {
    match issue(args, unix_now()) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("beckon-server token: {why}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Logs go to stderr: stdout carries only the "listening on" lines that scripts parse. Colour
/// only when stderr is a terminal, so a log redirected to a file has no escape codes.
fn init_logs(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        // Span fields (the connection's app, account and transport) go on each line.
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Serves with the config file (or development mode), `listen`, `tls` and `storage`
/// overriding it.
fn serve(
    listen: &[String],
    tls: Option<(PathBuf, PathBuf)>,
    config_path: Option<PathBuf>,
    storage: Option<Storage>,
    admin: Option<std::net::SocketAddr>,
    (cluster, node_id): (Option<String>, Option<String>),
) -> ExitCode {
    let mut config = match &config_path {
        Some(path) => match ServerConfig::load(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("beckon-server: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        },
        // The library's development config keeps everything in memory; the binary is what
        // people run, so it keeps attributes and offline messages across restarts.
        None => ServerConfig {
            storage: Storage::StandardDir,
            ..ServerConfig::development()
        },
    };
    if !listen.is_empty() {
        match beckon_server::parse_listen(listen) {
            Ok(endpoints) => config.listen = endpoints,
            Err(why) => {
                eprintln!("beckon-server: --listen: {why}");
                return ExitCode::from(EXIT_USAGE);
            }
        }
    }
    if let Some((cert, key)) = tls {
        match beckon_server::load_tls(&cert, &key) {
            Ok(tls) => config.tls = Some(tls),
            Err(e) => {
                eprintln!("beckon-server: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        }
    }
    if let Some(storage) = storage {
        if storage == Storage::Dir(PathBuf::new()) {
            eprintln!("beckon-server: --data-dir must not be empty");
            return ExitCode::from(EXIT_USAGE);
        }
        config.storage = storage;
    }
    if admin.is_some() {
        config.admin = admin;
    }
    if let Some(url) = cluster {
        match ClusterConfig::new(&url) {
            Ok(mut c) => {
                if let Some(existing) = &config.cluster {
                    c.node_id.clone_from(&existing.node_id);
                    c.node_ttl = existing.node_ttl;
                    c.redis_timeout = existing.redis_timeout;
                }
                config.set_cluster(Some(c));
            }
            Err(why) => {
                eprintln!("beckon-server: --cluster: {why}");
                return ExitCode::from(EXIT_USAGE);
            }
        }
    }
    if let Some(id) = node_id {
        if let Err(why) = beckon_server::check_node_id(&id) {
            eprintln!("beckon-server: --node-id: {why}");
            return ExitCode::from(EXIT_USAGE);
        }
        let Some(c) = config.cluster.as_mut() else {
            eprintln!("beckon-server: --node-id needs --cluster (or [cluster] in the config)");
            return ExitCode::from(EXIT_USAGE);
        };
        c.node_id = id;
    }

    // One worker per core the process may run on (the affinity mask counts, so `taskset -c 0`
    // means one), and on a single core no worker threads at all: the broker task and the
    // connection tasks then hand work to each other without crossing threads.
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let built = if cores == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cores)
            .enable_all()
            .build()
    };
    let runtime = match built {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("beckon-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Served from a spawned task, so that with worker threads the accept loop runs on them
    // too rather than on this thread, which would only add hand-offs.
    let served = runtime.block_on(async {
        tokio::spawn(run(config)).await.unwrap_or_else(|e| {
            Err(std::io::Error::other(format!(
                "the server task failed: {e}"
            )))
        })
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("beckon-server: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: ServerConfig) -> std::io::Result<()> {
    if config.broker.apps.is_development() {
        warn!(
            "DEVELOPMENT MODE: any App ID is accepted, tokens are not verified, \
             _no_need_token is allowed — never expose this server"
        );
    }
    // Registered before binding, so a signal that arrives once the address is printed is
    // never missed.
    let shutdown = shutdown_signal()?;
    let reloads = reload_signal()?;
    let server = Server::bind(config).await?;
    let reloader = server.reloader();
    tokio::spawn(async move {
        let mut reloads = reloads;
        while reloads.next().await {
            info!(signal = "SIGHUP", "reloading the configuration");
            if let Err(why) = reloader.reload().await {
                warn!(reason = %why, "reload failed; the configuration in use is unchanged");
            }
        }
    });
    {
        let mut out = std::io::stdout().lock();
        for endpoint in server.endpoints() {
            writeln!(out, "beckon-server listening on {endpoint}")?;
        }
        if let Some(addr) = server.admin_addr() {
            writeln!(out, "beckon-server admin on http://{addr}")?;
        }
        out.flush()?;
    }
    server.run(shutdown).await
}

/// SIGHUP, each time it arrives.
#[cfg(unix)]
struct Reloads(tokio::signal::unix::Signal);

#[cfg(unix)]
impl Reloads {
    async fn next(&mut self) -> bool {
        self.0.recv().await.is_some()
    }
}

/// Registered before binding, so a SIGHUP never terminates the process (its default action).
#[cfg(unix)]
fn reload_signal() -> std::io::Result<Reloads> {
    use tokio::signal::unix::{SignalKind, signal};
    Ok(Reloads(signal(SignalKind::hangup())?))
}

/// No SIGHUP here: reload through the admin API.
#[cfg(not(unix))]
struct Reloads;

#[cfg(not(unix))]
impl Reloads {
    async fn next(&mut self) -> bool {
        false
    }
}

#[cfg(not(unix))]
fn reload_signal() -> std::io::Result<Reloads> {
    Ok(Reloads)
}

/// Resolves on SIGINT or SIGTERM.
#[cfg(unix)]
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        let name = tokio::select! {
            _ = interrupt.recv() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        };
        info!(signal = name, "shutdown requested");
    })
}

/// Resolves on Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
        info!("shutdown requested");
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subcommand_mints_a_verifiable_token() {
        let cli = Cli::parse_from([
            "beckon-server",
            "token",
            "--app-id",
            "app",
            "--certificate",
            "cert",
            "--account",
            "alice",
            "--expire-in",
            "60",
            "--server",
        ]);
        let Some(Command::Token(args)) = &cli.command else {
            panic!("the token subcommand: {cli:?}");
        };
        let token = issue(args, 1000).unwrap();
        let claims = beckon_token::verify(b"cert", &token, "app", "alice", 1059).unwrap();
        assert_eq!(claims.expires_at, 1060);
        assert!(claims.privileges.contains(beckon_token::Privileges::SERVER));
        let mut bad = args.clone();
        bad.account = "has space".into();
        assert!(issue(&bad, 1000).is_err());
    }

    #[test]
    fn the_certificate_argument_never_prints() {
        let cli = Cli::parse_from([
            "beckon-server",
            "token",
            "--app-id",
            "app",
            "--certificate",
            "5cfd2fd1755d40ecb72977518be15d3b",
            "--account",
            "alice",
        ]);
        let Some(Command::Token(args)) = &cli.command else {
            panic!("the token subcommand: {cli:?}");
        };
        assert_eq!(
            args.certificate.expose(),
            "5cfd2fd1755d40ecb72977518be15d3b"
        );
        for text in [format!("{cli:?}"), format!("{cli:#?}")] {
            assert!(!text.contains("5cfd2fd1"), "{text}");
            assert!(text.contains("certificate: [redacted]"), "{text}");
        }
    }
}
