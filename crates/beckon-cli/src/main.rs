//! `beckon`: the Beckon command line.
//!
//! - `beckon chat`: an interactive terminal client (commands on stdin, so scripts can drive it);
//! - `beckon admin`: the server's admin API (accounts, kicks, channels, broadcasts, tokens,
//!   reloads, metrics);
//! - `beckon ping`: log in and measure a round trip on each URL given;
//! - `beckon token`: mint a SignalingToken (the same checks as `beckon-server token`);
//! - `beckon bench`: the whole-system load benchmark (`beckon-loadgen`).
//!
//! Exit codes: 0 success, 1 failure (a refused login, an API error, an unreachable server),
//! 2 bad arguments.

mod admin;
mod bench;
mod chat;
mod connect;
mod ping;

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};

use beckon_token::issue::{IssueArgs, issue};

/// Exit code for bad arguments, as clap uses for usage errors.
pub(crate) const EXIT_USAGE: u8 = 2;

#[derive(Debug, Parser)]
#[command(name = "beckon", version, about = "The Beckon command line")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Chat from a terminal: p2p messages, channels, attributes and calls. Type /help.
    Chat(chat::ChatArgs),
    /// Talk to a server's admin API (needs the server's --admin listener).
    Admin(admin::AdminArgs),
    /// Log in and measure the round trip on each URL.
    Ping(ping::PingArgs),
    /// Mint a SignalingToken and print it.
    Token(IssueArgs),
    /// Run the whole-system load benchmark (beckon-loadgen); arguments go to it unchanged.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Token(args) => match issue(&args, unix_now()) {
            Ok(token) => {
                println!("{token}");
                ExitCode::SUCCESS
            }
            Err(why) => {
                eprintln!("beckon token: {why}");
                ExitCode::from(EXIT_USAGE)
            }
        },
        Command::Bench(args) => bench::run(&args),
        Command::Chat(args) => runtime(chat::run(args)),
        Command::Admin(args) => runtime(admin::run(args)),
        Command::Ping(args) => runtime(ping::run(args)),
    }
}

fn runtime(task: impl Future<Output = ExitCode>) -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(task),
        Err(e) => {
            eprintln!("beckon: cannot start the runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `NAME (CODE)` for an error code of SPEC §3, e.g. `LOGIN_E_TOKENWRONG (206)`.
pub(crate) fn code_name(code: i32) -> String {
    match beckon_proto::ErrorCode::from_code(code) {
        Some(c) => format!("{} ({code})", c.name()),
        None => format!("code {code}"),
    }
}
