//! `cargo xtask`: Beckon's development chores.
//!
//! - `cargo xtask bench [micro] [-- <criterion args>]`: the criterion micro-benchmarks
//!   (codec, token) in release mode.
//!
//! The whole-system load benchmarks (p2p, fan-out, idle, login against peer brokers) are not
//! built yet; asking for them is an error that says so.

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("bench") => bench(&args[1..]),
        _ => {
            eprintln!("usage: cargo xtask bench [micro] [-- <criterion args>]");
            ExitCode::from(2)
        }
    }
}

fn bench(args: &[String]) -> ExitCode {
    let (shape, rest) = match args.first().map(String::as_str) {
        None | Some("--") => ("micro", args),
        Some(s) => (s, &args[1..]),
    };
    if shape != "micro" {
        eprintln!(
            "cargo xtask bench {shape}: the whole-system load benchmarks (p2p, fanout, idle, login) \
             are not implemented yet; `cargo xtask bench micro` runs the criterion micro-benchmarks"
        );
        return ExitCode::from(2);
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["bench", "-p", "beckon-benches"]);
    cmd.args(rest);
    match cmd.status() {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("could not run cargo: {e}");
            ExitCode::FAILURE
        }
    }
}
