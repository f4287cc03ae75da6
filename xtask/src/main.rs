//! `cargo xtask`: Beckon's development chores.
//!
//! - `cargo xtask bench [micro] [-- <criterion args>]`: the criterion micro-benchmarks
//!   (codec, token, broker routing and fan-out) in release mode.
//! - `cargo xtask bench p2p|fanout|idle|login|all [options]`: the whole-system load benchmark,
//!   Beckon beside `nats-server`, `redis-server` and a bare forwarder, on this machine, with
//!   one load generator, in one run; `cargo xtask bench --help` lists the options.
//! - `cargo xtask test [--transport <scheme>] [-- <test args>]`: every test, with the
//!   end-to-end suite run over every transport ([`test_cmd`]), then the C and C++ SDK's
//!   suites ([`cpp`]; `--cpp` runs only those).
//! - `cargo xtask dist cpp [--debug]`: the C and C++ SDK as a user downloads it ([`dist`]).
//! - `cargo xtask cpp-rtt [rounds]`: the p2p round trip through the C++ API beside the Rust
//!   SDK's ([`cpp`]).
//!
//! Modules: [`cli`] parses the command line; [`launch`] builds the release binaries and hands
//! over to [`run`], which drives rounds, shapes and systems and prints the [`report`]; [`load`]
//! holds what every load shares (windows, pacing, recording); [`beckon`], [`nats`],
//! [`redis_pubsub`] and [`forwarder`] start their servers and generate their load; [`procs`]
//! owns child processes and reads `/proc`.
//!
//! Two subcommands are internal: `load-run` (the benchmark proper, run by [`launch`] from the
//! release build) and `forwarder` (the bare forwarder's server process).

mod beckon;
mod cli;
mod cpp;
mod dist;
mod forwarder;
mod launch;
mod load;
mod micro;
mod nats;
mod procs;
mod redis_pubsub;
mod report;
mod run;
mod test_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

/// The load generator and the bare forwarder allocate per message like the servers they drive;
/// they use the allocator beckon-server uses, so the harness costs every system as little as it
/// can.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or_default();
    match args.first().map(String::as_str) {
        Some("bench") => match cli::parse_bench(rest) {
            Ok(cli::Bench::Micro(criterion_args)) => micro::run(&criterion_args),
            Ok(cli::Bench::Load(opts)) => launch::run(&opts),
            Err(e) => {
                if !e.is_empty() {
                    eprintln!("cargo xtask bench: {e}\n");
                }
                eprintln!("{}", cli::USAGE);
                ExitCode::from(2)
            }
        },
        Some("test") => test_cmd::run(rest),
        Some("dist") => dist::main(rest),
        Some("cpp-rtt") => cpp::rtt(rest),
        Some("load-run") => run::main(rest),
        Some("forwarder") => forwarder::main(rest),
        _ => {
            eprintln!(
                "usage: cargo xtask test [--transport tcp|tls|quic|ws|wss] [--cpp] [-- <test args>]\n\
                 \x20      cargo xtask dist cpp [--debug]\n\
                 \x20      cargo xtask cpp-rtt [rounds]\n{}",
                cli::USAGE
            );
            ExitCode::from(2)
        }
    }
}

/// The workspace's root directory (the xtask lives one level below it).
fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map_or(manifest.clone(), PathBuf::from)
}
