//! `beckon-loadgen`: Beckon's whole-system load benchmark. It measures `beckon-server` beside
//! `nats-server`, `redis-server` and a bare forwarder, on this machine, with one load
//! generator, in one run, and prints a Markdown table of medians with Beckon/peer ratios.
//!
//! `cargo xtask bench p2p|fanout|callgrind|idle|login|all [options]` builds it and
//! `beckon-server` in release mode and runs it; `docs/benchmarks.md` says what each shape
//! measures.
//!
//! Layout: [`cli`] parses the options (the xtask compiles the same file to check them);
//! [`run`] drives rounds, shapes and systems and prints the [`report`]; [`measure`] is one
//! measurement of one shape on any system, and [`callgrind`] the instruction count of a fixed
//! workload; [`shapes`] writes each shape once, against the [`driver::Driver`] trait that
//! [`beckon`], [`nats`], [`redis_pubsub`] and [`forwarder`] implement; [`load`] holds what
//! every load shares (windows, pacing, recording); [`net`] connects from many loopback
//! addresses; [`procs`] owns child processes and reads `/proc`.
//!
//! The NATS and Redis drivers (and their client crates) are behind the `peers` feature, so
//! that the workspace's tests do not build them; without it, those columns are skipped.
//!
//! `beckon-loadgen forwarder --listen ADDR` is the bare forwarder's server process, which the
//! benchmark starts from its own executable.

mod beckon;
mod callgrind;
mod cli;
mod driver;
mod forwarder;
mod load;
mod measure;
#[cfg(feature = "peers")]
mod nats;
mod net;
mod procs;
#[cfg(feature = "peers")]
mod redis_pubsub;
mod report;
mod run;
mod shapes;

use std::path::PathBuf;
use std::process::ExitCode;

/// The load generator and the bare forwarder allocate per message like the servers they drive;
/// they use the allocator beckon-server uses, so the harness costs every system as little as it
/// can.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "\
usage: beckon-loadgen [--server-bin PATH] p2p|fanout|callgrind|idle|login|all [options]
       beckon-loadgen forwarder --listen ADDR

Beckon's whole-system load benchmark (`cargo xtask bench` builds and runs it).
--server-bin names the beckon-server to measure [the one beside this executable];
`forwarder` runs the bare forwarder the benchmark compares with.

shapes:";

fn usage() -> String {
    format!("{USAGE}\n{}\n\n{}", cli::SHAPES_USAGE, cli::OPTIONS_USAGE)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [command, rest @ ..] = args.as_slice()
        && command == "forwarder"
    {
        return forwarder::main(rest);
    }
    let (server_bin, rest) = match args.as_slice() {
        [flag, path, rest @ ..] if flag == "--server-bin" => (Some(PathBuf::from(path)), rest),
        [flag] if flag == "--server-bin" => return usage_error("--server-bin needs a path"),
        rest => (None, rest),
    };
    let opts = match cli::parse(rest) {
        Ok(cli::Request::Run(opts)) => opts,
        Ok(cli::Request::Help) => {
            println!("{}", usage());
            return ExitCode::SUCCESS;
        }
        Err(e) => return usage_error(&e),
    };
    let server_bin = match server_bin.map_or_else(beside_this_executable, Ok) {
        Ok(bin) => bin,
        Err(e) => return usage_error(&e),
    };
    match run::main(&opts, &server_bin) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\nbench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage_error(e: &str) -> ExitCode {
    eprintln!("beckon-loadgen: {e}\n\n{}", usage());
    ExitCode::from(2)
}

/// `beckon-server` in the directory of this executable (cargo builds both into one).
fn beside_this_executable() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    let server = exe.with_file_name("beckon-server");
    if server.is_file() {
        Ok(server)
    } else {
        Err(format!(
            "no beckon-server beside this executable ({}); build it or give --server-bin",
            server.display()
        ))
    }
}
