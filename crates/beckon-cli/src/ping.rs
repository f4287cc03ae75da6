//! `beckon ping`: log in on each URL and measure round trips there.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;

use beckon_sdk::Event;

use crate::connect::{LoginArgs, await_login};

/// How long one round trip may take before it counts as lost.
const ROUND_TRIP_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Args)]
pub(crate) struct PingArgs {
    /// One or more servers, e.g. tcp://127.0.0.1:7400 quic://127.0.0.1:7400
    /// ws://127.0.0.1:7401/ws.
    #[arg(required = true, value_name = "URL")]
    urls: Vec<String>,
    /// The account to log in as [ping-<process id>].
    #[arg(long)]
    account: Option<String>,
    /// Round trips per URL (a presence query answered by the server).
    #[arg(long, default_value_t = 5)]
    count: u32,
    #[command(flatten)]
    login: LoginArgs,
}

pub(crate) async fn run(args: PingArgs) -> ExitCode {
    let account = (args.account.clone()).unwrap_or_else(|| format!("ping-{}", std::process::id()));
    let token = match args.login.token_for(&account) {
        Ok(t) => t,
        Err(why) => {
            eprintln!("beckon ping: {why}");
            return ExitCode::from(crate::EXIT_USAGE);
        }
    };
    let mut failed = false;
    for url in &args.urls {
        match ping(&args, url, &account, &token).await {
            Ok(line) => println!("{url}: {line}"),
            Err(why) => {
                println!("{url}: FAILED: {why}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

async fn ping(args: &PingArgs, url: &str, account: &str, token: &str) -> Result<String, String> {
    let (sdk, mut events) = args.login.instance(url)?;
    let start = Instant::now();
    sdk.login(&args.login.app, account, token, 0, "");
    let login = await_login(&mut events).await;
    let login_took = start.elapsed();
    if let Err(why) = login {
        sdk.destroy().await;
        return Err(why);
    }
    let mut rtts = Vec::new();
    for _ in 0..args.count.max(1) {
        let start = Instant::now();
        sdk.query_user_status(account);
        let answered = tokio::time::timeout(ROUND_TRIP_WAIT, async {
            while let Some(e) = events.next().await {
                if matches!(e, Event::QueryUserStatusResult { .. }) {
                    return true;
                }
            }
            false
        })
        .await;
        if answered != Ok(true) {
            sdk.destroy().await;
            return Err(format!("no answer within {ROUND_TRIP_WAIT:?}"));
        }
        rtts.push(start.elapsed());
    }
    sdk.destroy().await;
    rtts.sort();
    Ok(format!(
        "login {}, round trip min {} median {} max {} ({} queries)",
        ms(login_took),
        ms(rtts[0]),
        ms(rtts[rtts.len() / 2]),
        ms(rtts[rtts.len() - 1]),
        rtts.len()
    ))
}
