//! Builds what the whole-system benchmark runs, in release mode, and hands over to it.
//!
//! `cargo xtask` runs a debug build of the xtask, which would make a slow load generator and a
//! slow bare forwarder. So this step runs `$CARGO build --release -p beckon-server -p xtask`
//! (wherever the target directory is: `CARGO_TARGET_DIR` and cargo's configuration are
//! honoured, because the binaries' paths are taken from cargo's own build messages), then runs
//! the release xtask as `xtask load-run --server-bin <beckon-server> <options>` and passes its
//! exit code on.

use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

use crate::cli::Options;

/// Builds, then runs the benchmark.
pub(crate) fn run(opts: &Options) -> ExitCode {
    match build() {
        Ok((server, xtask)) => {
            let status = Command::new(&xtask)
                .arg("load-run")
                .arg("--server-bin")
                .arg(&server)
                .args(opts.to_args())
                .status();
            match status {
                Ok(s) if s.success() => ExitCode::SUCCESS,
                Ok(_) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("cannot run {}: {e}", xtask.display());
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Builds beckon-server and the xtask in release mode; returns both executables.
fn build() -> Result<(PathBuf, PathBuf), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("building beckon-server and the load generator in release mode…");
    let out = Command::new(&cargo)
        .current_dir(crate::workspace_root())
        .args([
            "build",
            "--release",
            "-p",
            "beckon-server",
            "-p",
            "xtask",
            "--message-format=json-render-diagnostics",
        ])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {cargo}: {e}"))?;
    if !out.status.success() {
        return Err("the release build failed".into());
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let server = executable(&stdout, "beckon-server")?;
    let xtask = executable(&stdout, "xtask")?;
    Ok((server, xtask))
}

/// The executable cargo reported for the binary target `name`.
fn executable(messages: &str, name: &str) -> Result<PathBuf, String> {
    messages
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| format!("cargo reported no executable for {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_executable_in_cargo_messages() {
        let messages = r#"{"reason":"compiler-artifact","target":{"name":"beckon-server","kind":["lib"]},"executable":null}
{"reason":"compiler-artifact","target":{"name":"beckon-server","kind":["bin"]},"executable":"/t/release/beckon-server"}
{"reason":"build-finished","success":true}"#;
        assert_eq!(
            executable(messages, "beckon-server").unwrap(),
            PathBuf::from("/t/release/beckon-server")
        );
        assert!(executable(messages, "xtask").is_err());
    }
}
