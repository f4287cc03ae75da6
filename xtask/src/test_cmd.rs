//! `cargo xtask test [--transport <scheme>]`: every test, over every transport.
//!
//! Runs `cargo test --workspace` (whose end-to-end suite talks TCP), then the end-to-end suite
//! (`cargo test -p beckon-tests`) once more for each other scheme, with `BECKON_TEST_TRANSPORT`
//! naming it. The test binaries are built once; the passes differ only in that variable. Last,
//! every fuzz target runs for [`FUZZ_SECONDS`] on its corpus ([`crate::fuzz`]): the committed
//! seeds and crash regressions are replayed, and a short search looks for new crashes. With
//! `--transport`, runs just the end-to-end suite over that scheme.

use std::process::{Command, ExitCode};

/// The schemes the end-to-end suite runs over after the workspace pass (which is TCP).
const OTHER_SCHEMES: [&str; 4] = ["tls", "quic", "ws", "wss"];
const ALL_SCHEMES: [&str; 5] = ["tcp", "tls", "quic", "ws", "wss"];
/// Seconds each fuzz target runs for in the test command (six targets: three minutes).
const FUZZ_SECONDS: u64 = 30;

pub(crate) fn run(args: &[String]) -> ExitCode {
    let mut only = None;
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
            "--" => {
                rest = tail;
                break;
            }
            other => {
                eprintln!(
                    "cargo xtask test: unknown argument {other:?}\n\
                     usage: cargo xtask test [--transport tcp|tls|quic|ws|wss] [-- <test args>]"
                );
                return ExitCode::from(2);
            }
        }
    }
    let passes: Vec<(String, Vec<&str>)> = match &only {
        Some(scheme) => vec![(scheme.clone(), vec!["-p", "beckon-tests"])],
        None => std::iter::once(("tcp".to_owned(), vec!["--workspace"]))
            .chain(
                OTHER_SCHEMES
                    .iter()
                    .map(|s| ((*s).to_owned(), vec!["-p", "beckon-tests"])),
            )
            .collect(),
    };
    for (scheme, selection) in passes {
        eprintln!(
            "== cargo test {} (BECKON_TEST_TRANSPORT={scheme})",
            selection.join(" ")
        );
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .arg("test")
            .args(&selection)
            .args(if rest.is_empty() {
                &[][..]
            } else {
                &["--"][..]
            })
            .args(rest)
            .env("BECKON_TEST_TRANSPORT", &scheme)
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
    if only.is_none() {
        eprintln!("== cargo xtask fuzz --time {FUZZ_SECONDS} (every target)");
        let targets: Vec<String> = crate::fuzz::TARGETS.map(String::from).to_vec();
        return crate::fuzz::run(&targets, FUZZ_SECONDS, &[]);
    }
    ExitCode::SUCCESS
}
