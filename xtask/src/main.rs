//! `cargo xtask`: Beckon's development chores.
//!
//! - `cargo xtask test [--transport <scheme>] [-- <test args>]`: every test, with the
//!   end-to-end suite run over every transport ([`test_cmd`]), then the C and C++ SDK's
//!   suites ([`cpp`]; `--cpp` runs only those), the Web SDK's ([`web`]) and every fuzz
//!   target briefly.
//! - `cargo xtask fuzz [--time S] [target…]`: the libFuzzer targets of `fuzz/`, S seconds each
//!   ([`fuzz`]).
//! - `cargo xtask dist cpp [--debug]`: the C and C++ SDK as a user downloads it ([`dist`]).
//! - `cargo xtask cpp-rtt [rounds]`: the p2p round trip through the C++ API beside the Rust
//!   SDK's ([`cpp`]).
//! - `cargo xtask bench [micro] [-- <criterion args>]`: the criterion micro-benchmarks
//!   (codec, token, broker routing and fan-out) in release mode ([`micro`]); `cargo xtask bench
//!   rtt`: the round trip per transport.
//! - `cargo xtask bench p2p|fanout|callgrind|idle|login|all [options]`: the whole-system load
//!   benchmark, Beckon beside `nats-server`, `redis-server` and a bare forwarder. The xtask
//!   checks the options, builds `beckon-server` and the load generator (`crates/beckon-loadgen`) in
//!   release mode and runs it ([`launch`]).
//! - `cargo xtask web [--check]`: builds the Web SDK and the script the server embeds ([`web`]).
//!
//! `--help` (or `-h`) after any command prints its usage.
//!
//! The xtask itself stays small: it depends on `serde_json` alone (to read cargo's build
//! messages), so `cargo xtask test` builds little beyond the workspace it tests. The load
//! options are parsed by the load generator's own parser (`crates/beckon-loadgen/src/cli.rs`,
//! which uses only the standard library), compiled into the xtask as [`cli`].

#[path = "../../crates/beckon-loadgen/src/cli.rs"]
#[allow(
    dead_code,
    reason = "the load generator uses all of it, the xtask the parser"
)]
mod cli;
mod cpp;
mod dist;
mod fuzz;
mod launch;
mod micro;
mod test_cmd;
mod web;

use std::path::PathBuf;
use std::process::ExitCode;

const BENCH_USAGE: &str = "\
usage: cargo xtask bench [micro] [-- <criterion args>]
       cargo xtask bench rtt
       cargo xtask bench p2p|fanout|callgrind|idle|login|all [options]

shapes:
  micro     the criterion micro-benchmarks (the default)
  rtt       p2p round trip through the SDK over every transport: median, p99, p999
            (BECKON_RTT_ROUNDS round trips per transport, 5,000 by default)";

fn bench_usage() -> String {
    format!(
        "{BENCH_USAGE}\n{}\n\n{}",
        cli::SHAPES_USAGE,
        cli::OPTIONS_USAGE
    )
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or_default();
    match args.first().map(String::as_str) {
        Some("bench") => bench(rest),
        Some("test") => test_cmd::run(rest),
        Some("fuzz") => fuzz::main(rest),
        Some("web") => web::run(rest),
        Some("dist") => dist::main(rest),
        Some("cpp-rtt") => cpp::rtt(rest),
        Some("-h" | "--help" | "help") => {
            println!("{}", usage());
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{}", usage());
            ExitCode::from(2)
        }
    }
}

/// Every command's usage.
fn usage() -> String {
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        test_cmd::USAGE,
        fuzz::USAGE,
        web::USAGE,
        "usage: cargo xtask dist cpp [--debug]",
        "usage: cargo xtask cpp-rtt [rounds]",
        bench_usage()
    )
}

/// `cargo xtask bench …`.
fn bench(args: &[String]) -> ExitCode {
    if let Some(criterion_args) = criterion_args(args) {
        return micro::run(&criterion_args);
    }
    match cli::parse(args) {
        Ok(cli::Request::Run(opts)) => launch::run(&opts),
        Ok(cli::Request::Help) => {
            println!("{}", bench_usage());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cargo xtask bench: {e}\n\n{}", bench_usage());
            ExitCode::from(2)
        }
    }
}

/// The arguments for `cargo bench -p beckon-benches` when `bench` asks for criterion (no
/// shape, `micro`, `rtt` or `--`); `None` for a load shape.
fn criterion_args(args: &[String]) -> Option<Vec<String>> {
    let Some((first, rest)) = args.split_first() else {
        return Some(Vec::new());
    };
    match first.as_str() {
        "--" => Some(args.to_vec()),
        "micro" => Some(rest.to_vec()),
        "rtt" => Some(
            ["--bench", "rtt"]
                .into_iter()
                .map(String::from)
                .chain(rest.iter().cloned())
                .collect(),
        ),
        _ => None,
    }
}

/// The workspace's root directory (the xtask lives one level below it).
fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map_or(manifest.clone(), PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn no_shape_is_micro() {
        assert_eq!(criterion_args(&[]), Some(vec![]));
        assert_eq!(
            criterion_args(&args("-- --quick")),
            Some(args("-- --quick"))
        );
        assert_eq!(
            criterion_args(&args("micro -- --quick")),
            Some(args("-- --quick"))
        );
    }

    #[test]
    fn rtt_runs_the_round_trip_bench() {
        assert_eq!(criterion_args(&args("rtt")), Some(args("--bench rtt")));
    }

    #[test]
    fn shapes_and_help_go_to_the_load_options() {
        assert_eq!(criterion_args(&args("p2p --rounds 1")), None);
        assert_eq!(criterion_args(&args("--help")), None);
        assert!(matches!(
            cli::parse(&args("--help")),
            Ok(cli::Request::Help)
        ));
        let usage = bench_usage();
        for line in ["cargo xtask bench rtt", "  fanout ", "  --conns N"] {
            assert!(usage.contains(line), "{line:?} missing from\n{usage}");
        }
    }
}
