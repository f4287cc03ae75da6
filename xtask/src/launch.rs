//! Builds what the whole-system benchmark runs, in release mode, and hands over to it.
//!
//! The load generator is its own binary, `beckon-loadgen` (`crates/beckon-loadgen`), so the
//! xtask does not carry its dependencies. This step runs `$CARGO build --release -p
//! beckon-server -p beckon-loadgen --features beckon-loadgen/peers` (wherever the target
//! directory is: `CARGO_TARGET_DIR` and cargo's configuration are honoured, because the
//! binaries' paths are taken from cargo's own build messages), then runs `beckon-loadgen
//! --server-bin <beckon-server> <options>` and passes its exit code on.

use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

use crate::cli::Options;

/// The load generator's binary target.
const LOADGEN: &str = "beckon-loadgen";

/// Builds, then runs the benchmark.
pub(crate) fn run(opts: &Options) -> ExitCode {
    let (server, loadgen) = match build() {
        Ok(built) => built,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let status = Command::new(&loadgen)
        .arg("--server-bin")
        .arg(&server)
        .args(opts.to_args())
        .status();
    match status {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => s
            .code()
            .and_then(|c| u8::try_from(c).ok())
            .filter(|c| *c != 0)
            .map_or(ExitCode::FAILURE, ExitCode::from),
        Err(e) => {
            eprintln!("cannot run {}: {e}", loadgen.display());
            ExitCode::FAILURE
        }
    }
}

/// Builds beckon-server and the load generator (with its NATS and Redis drivers) in release
/// mode; returns both executables.
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
            LOADGEN,
            "--features",
            "beckon-loadgen/peers",
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
    let loadgen = executable(&stdout, LOADGEN)?;
    Ok((server, loadgen))
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
        assert!(executable(messages, LOADGEN).is_err());
    }
}
