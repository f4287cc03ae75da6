//! `cargo xtask bench [micro] [-- <criterion args>]`: the criterion micro-benchmarks of
//! `benches/` (codec, token, broker routing and fan-out), in release mode.

use std::process::{Command, ExitCode};

/// Runs `cargo bench -p beckon-benches <args>`.
pub(crate) fn run(args: &[String]) -> ExitCode {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(crate::workspace_root());
    cmd.args(["bench", "-p", "beckon-benches"]);
    cmd.args(args);
    match cmd.status() {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("could not run cargo: {e}");
            ExitCode::FAILURE
        }
    }
}
