//! `cargo xtask test [--transport <scheme> | --cluster]`: every test, over every transport.
//!
//! Runs `cargo test --workspace` (whose end-to-end suite talks TCP), then the end-to-end suite
//! (`tests/`) once more for each other scheme, with `BECKON_TEST_TRANSPORT` naming it, and
//! once more over TCP in cluster mode ([`CLUSTER_NODES`] nodes on one Redis per test server,
//! `BECKON_TEST_CLUSTER`; it needs `redis-server`). Every step after the first reuses the
//! workspace pass's build ([`crate::dist::test_build`]): the end-to-end executables run again
//! directly, and the C/C++ and Web steps take the server, the SDK peer and the C/C++ libraries
//! from it, so nothing is compiled twice. Then
//! the C and C++ SDK's step ([`crate::cpp`]), the Web SDK's tests (`crate::web::test`) and,
//! last, every fuzz target for [`FUZZ_SECONDS`] on its corpus ([`crate::fuzz`]): the committed
//! seeds and crash regressions are replayed, and a short search looks for new crashes. With
//! `--transport`, runs just the end-to-end suite over that scheme; with `--cluster`, just its
//! cluster-mode run; with `--cpp`, just the C and C++ step.

use std::process::{Command, ExitCode};

/// The schemes the end-to-end suite runs over after the workspace pass (which is TCP).
const OTHER_SCHEMES: [&str; 4] = ["tls", "quic", "ws", "wss"];
const ALL_SCHEMES: [&str; 5] = ["tcp", "tls", "quic", "ws", "wss"];
/// The nodes of every test server in the end-to-end suite's cluster-mode run
/// (`BECKON_TEST_CLUSTER`): consecutive clients of a test land on different nodes.
const CLUSTER_NODES: &str = "3";
/// Seconds each fuzz target runs for in the test command (six targets: three minutes).
const FUZZ_SECONDS: u64 = 30;

/// The usage line of `cargo xtask test`.
pub(crate) const USAGE: &str = "usage: cargo xtask test [--transport tcp|tls|quic|ws|wss | --cluster] [--cpp] [-- <test args>]";

pub(crate) fn run(args: &[String]) -> ExitCode {
    let mut only = None;
    let mut cpp_only = false;
    let mut cluster_only = false;
    let mut rest: &[String] = args;
    while let Some((first, tail)) = rest.split_first() {
        match first.as_str() {
            "--transport" => {
                let Some((scheme, tail)) = tail.split_first() else {
                    eprintln!(
                        "cargo xtask test: --transport needs a scheme (tcp, tls, quic, ws, wss)"
                    );
                    return ExitCode::from(2);
                };
                if !ALL_SCHEMES.contains(&scheme.as_str()) {
                    eprintln!(
                        "cargo xtask test: unknown transport {scheme:?}; expected one of {}",
                        ALL_SCHEMES.join(", ")
                    );
                    return ExitCode::from(2);
                }
                only = Some(scheme.clone());
                rest = tail;
            }
            "--cluster" => {
                cluster_only = true;
                rest = tail;
            }
            "--cpp" => {
                cpp_only = true;
                rest = tail;
            }
            "--" => {
                rest = tail;
                break;
            }
            "-h" | "--help" => {
                println!(
                    "{USAGE}\n\n\
                     Runs `cargo test --workspace` (the end-to-end suite over TCP), then the\n\
                     end-to-end suite again over tls, quic, ws and wss, and over tcp with every\n\
                     test server a cluster of three nodes on one Redis (needs redis-server), then\n\
                     the C and C++ SDK's checks and the Web SDK's tests; with --transport, just\n\
                     the end-to-end suite over that scheme; with --cluster, just its cluster run;\n\
                     with --cpp, just the C and C++ checks. Arguments after -- go to the tests."
                );
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("cargo xtask test: unknown argument {other:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    if cpp_only {
        return crate::cpp::test();
    }
    if cluster_only && only.is_some() {
        eprintln!("cargo xtask test: --cluster runs over tcp; leave out --transport\n{USAGE}");
        return ExitCode::from(2);
    }
    let passes: Vec<(String, Vec<&str>)> = match &only {
        Some(scheme) => vec![(scheme.clone(), vec!["-p", "beckon-tests"])],
        None if cluster_only => vec![("tcp".to_owned(), vec!["-p", "beckon-tests"])],
        None => vec![("tcp".to_owned(), vec!["--workspace"])],
    };
    let cluster = if cluster_only { CLUSTER_NODES } else { "" };
    for (scheme, selection) in passes {
        eprintln!(
            "== cargo test {} (BECKON_TEST_TRANSPORT={scheme}{})",
            selection.join(" "),
            if cluster_only {
                format!(" BECKON_TEST_CLUSTER={CLUSTER_NODES}")
            } else {
                String::new()
            }
        );
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = crate::dist::clean_cargo_env(&mut Command::new(cargo))
            .arg("test")
            .args(&selection)
            .args(if rest.is_empty() {
                &[][..]
            } else {
                &["--"][..]
            })
            .args(rest)
            .env("BECKON_TEST_TRANSPORT", &scheme)
            .env("BECKON_TEST_CLUSTER", cluster)
            .status();
        match status {
            Ok(s) if s.success() => {}
            Ok(_) => {
                eprintln!("cargo xtask test: the {scheme} pass failed");
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("cargo xtask test: could not run cargo: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    if only.is_none() && !cluster_only {
        if !other_schemes(rest) {
            return ExitCode::FAILURE;
        }
        if crate::cpp::test() != ExitCode::SUCCESS {
            return ExitCode::FAILURE;
        }
        if !crate::web::test() {
            return ExitCode::FAILURE;
        }
        eprintln!("== cargo xtask fuzz --time {FUZZ_SECONDS} (every target)");
        let targets: Vec<String> = crate::fuzz::TARGETS.map(String::from).to_vec();
        return crate::fuzz::run(&targets, FUZZ_SECONDS, &[]);
    }
    ExitCode::SUCCESS
}

/// The end-to-end suite over each of [`OTHER_SCHEMES`], then over TCP in cluster mode: its
/// test executables from the workspace pass's build, run as `cargo test` runs them (from the
/// package's directory), with `BECKON_TEST_TRANSPORT` naming the scheme (and
/// `BECKON_TEST_CLUSTER` the nodes, for the last run).
fn other_schemes(rest: &[String]) -> bool {
    let built = match crate::dist::test_build() {
        Ok(built) => built,
        Err(e) => {
            eprintln!("cargo xtask test: {e}");
            return false;
        }
    };
    let dir = crate::workspace_root().join("tests");
    let runs = OTHER_SCHEMES
        .iter()
        .map(|scheme| (*scheme, ""))
        .chain(std::iter::once(("tcp", CLUSTER_NODES)));
    for (scheme, cluster) in runs {
        if cluster.is_empty() {
            eprintln!(
                "== the end-to-end suite (tests/) over {scheme} (BECKON_TEST_TRANSPORT={scheme})"
            );
        } else {
            eprintln!(
                "== the end-to-end suite (tests/) over {scheme}, {cluster} cluster nodes per test \
                 server (BECKON_TEST_TRANSPORT={scheme} BECKON_TEST_CLUSTER={cluster})"
            );
        }
        for exe in &built.e2e {
            let status = crate::dist::clean_cargo_env(&mut Command::new(exe))
                .args(rest)
                .current_dir(&dir)
                .env("BECKON_TEST_TRANSPORT", scheme)
                .env("BECKON_TEST_CLUSTER", cluster)
                .status();
            match status {
                Ok(s) if s.success() => {}
                Ok(s) => {
                    let mode = if cluster.is_empty() {
                        ""
                    } else {
                        " in cluster mode"
                    };
                    eprintln!(
                        "cargo xtask test: {} over {scheme}{mode} failed ({s})",
                        exe.display()
                    );
                    return false;
                }
                Err(e) => {
                    eprintln!("cargo xtask test: could not run {}: {e}", exe.display());
                    return false;
                }
            }
        }
    }
    true
}
