//! `beckon bench`: a thin front to the load generator, `beckon-loadgen`.
//!
//! It runs, in this order: `$BECKON_LOADGEN`; the `beckon-loadgen` beside this executable
//! (where `cargo build --release -p beckon-cli -p beckon-loadgen -p beckon-server` puts
//! them); else `cargo run --release -p beckon-loadgen --` from the current directory, which
//! must then be inside the Beckon workspace. The arguments go to it unchanged; `cargo xtask
//! bench` is the same benchmark with the NATS and Redis columns built in.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use clap::Args;

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// What `beckon-loadgen` takes: p2p|fanout|idle|login|all [--transport …] [--rounds N]
    /// [--duration TIME] [--peers LIST] …; `beckon bench -- --help` shows its own usage.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    args: Vec<String>,
}

fn beside_me(name: &str) -> Option<PathBuf> {
    let me = std::env::current_exe().ok()?;
    let path = me
        .parent()?
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    path.is_file().then_some(path)
}

pub(crate) fn run(args: &BenchArgs) -> ExitCode {
    let loadgen = std::env::var_os("BECKON_LOADGEN")
        .map(PathBuf::from)
        .or_else(|| beside_me("beckon-loadgen"));
    let mut cmd = match &loadgen {
        Some(path) => Command::new(path),
        None => {
            eprintln!(
                "beckon bench: no beckon-loadgen beside this executable; building it with cargo"
            );
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.args(["run", "--quiet", "--release", "-p", "beckon-loadgen", "--"]);
            cmd
        }
    };
    // The server measured is the one beside this executable, unless the arguments say.
    if !args.args.iter().any(|a| a == "--server-bin")
        && let Some(server) = beside_me("beckon-server")
    {
        cmd.arg("--server-bin").arg(server);
    }
    cmd.args(&args.args);
    match cmd.status() {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => s
            .code()
            .and_then(|c| u8::try_from(c).ok())
            .filter(|c| *c != 0)
            .map_or(ExitCode::FAILURE, ExitCode::from),
        Err(e) => {
            eprintln!(
                "beckon bench: cannot run the load generator ({e}); build it with \
                 `cargo build --release -p beckon-loadgen` or set BECKON_LOADGEN"
            );
            ExitCode::FAILURE
        }
    }
}
