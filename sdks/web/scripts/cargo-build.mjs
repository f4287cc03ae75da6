// Before `npm test`: the tests need the server and the Rust SDK peer. Builds both with cargo
// (debug) unless BECKON_SERVER_BIN and BECKON_SDK_PEER_BIN name them already (as
// `cargo xtask test` does after building them itself).
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

if (process.env.BECKON_SERVER_BIN && process.env.BECKON_SDK_PEER_BIN) process.exit(0);
const root = fileURLToPath(new URL("../../..", import.meta.url));
execFileSync(
  process.env.CARGO ?? "cargo",
  ["build", "--quiet", "-p", "beckon-server", "--bin", "beckon-server", "-p", "beckon-tests", "--bin", "sdk-peer"],
  { cwd: root, stdio: "inherit" },
);
