// Shared by the tests: a real beckon-server on a free loopback port, callback recorders with
// deadlines, a TCP proxy that can cut connections, and the Rust SDK peer (`sdk-peer`).
import { spawn, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export const SDK_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const ROOT = resolve(SDK_DIR, "../..");

/** How long one expected callback may take: generous for a loaded machine, still quick to fail. */
export const TIMEOUT_MS = 10_000;

/** An app that requires signed tokens (its certificate is below); every other App ID is open. */
export const SECURE_APP = "web-secure-app";
export const SECURE_CERT = "0123456789abcdef0123456789abcdef";

export function binary(envVar, name) {
  const path = process.env[envVar] ?? join(ROOT, "target", "debug", name);
  if (!existsSync(path)) {
    throw new Error(`${path} does not exist: build it (cargo build -p beckon-server -p beckon-tests), or set ${envVar}`);
  }
  return path;
}

export const serverBin = () => binary("BECKON_SERVER_BIN", "beckon-server");
export const peerBin = () => binary("BECKON_SDK_PEER_BIN", "sdk-peer");

/**
 * Starts beckon-server on free loopback ports (WebSocket and TCP) in development mode with
 * the secure app, keeping everything in memory. Resolves to its URLs and a `stop()`.
 */
export async function startServer() {
  const dir = mkdtempSync(join(tmpdir(), "beckon-web-test-"));
  const config = join(dir, "beckon.toml");
  writeFileSync(
    config,
    `development = true\nephemeral = true\n\n[[apps]]\napp_id = "${SECURE_APP}"\ncertificate = "${SECURE_CERT}"\n`,
  );
  const child = spawn(
    serverBin(),
    ["--config", config, "--listen", "ws://127.0.0.1:0/ws", "--listen", "tcp://127.0.0.1:0"],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "warn" } },
  );
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += d;
    if (stderr.length > 100_000) stderr = stderr.slice(-50_000);
  });
  const urls = [];
  const lines = createInterface({ input: child.stdout });
  await new Promise((resolveStart, reject) => {
    const timer = setTimeout(() => reject(new Error(`beckon-server did not start:\n${stderr}`)), 20_000);
    child.on("exit", (code) => reject(new Error(`beckon-server exited with ${code}:\n${stderr}`)));
    lines.on("line", (line) => {
      const m = /listening on (\S+)/.exec(line);
      if (m) urls.push(m[1]);
      if (urls.length === 2) {
        clearTimeout(timer);
        resolveStart();
      }
    });
  });
  const ws = urls.find((u) => u.startsWith("ws://"));
  const tcp = urls.find((u) => u.startsWith("tcp://"));
  const port = Number(new URL(ws).port);
  return {
    ws,
    tcp,
    port,
    http: `http://127.0.0.1:${port}`,
    stderr: () => stderr,
    stop: () =>
      new Promise((done) => {
        if (child.exitCode !== null) return done();
        child.removeAllListeners("exit");
        child.on("exit", () => done());
        child.kill("SIGTERM");
      }),
  };
}

/** Mints a token for the secure app with the server's own command line. */
export function mintToken(account, { expireIn = 3600, app = SECURE_APP, cert = SECURE_CERT } = {}) {
  return execFileSync(serverBin(), [
    "token",
    "--app-id",
    app,
    "--certificate",
    cert,
    "--account",
    account,
    "--expire-in",
    String(expireIn),
  ])
    .toString()
    .trim();
}

/**
 * What happened, in order, with a way to wait for the next untaken happening of a kind:
 * `push(name, value)` records one; `next(name, pred)` resolves with the next untaken value of
 * `name` that `pred` accepts, or fails after `timeoutMs` listing everything seen.
 */
function journal(label, show) {
  const items = [];
  const waiters = new Set();
  return {
    items,
    push(name, value) {
      items.push({ name, value, taken: false });
      for (const w of [...waiters]) w();
    },
    next(name, pred, timeoutMs = TIMEOUT_MS) {
      return new Promise((resolveNext, reject) => {
        const check = () => {
          const it = items.find((x) => !x.taken && x.name === name && pred(x.value));
          if (!it) return;
          it.taken = true;
          waiters.delete(check);
          clearTimeout(timer);
          resolveNext(it.value);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          const seen = items.map((x) => show(x.name, x.value)).join("\n  ");
          reject(new Error(`${label}: no ${name} within ${timeoutMs} ms; seen:\n  ${seen}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
  };
}

/**
 * Records the callbacks `names` of `target` (assigning them as an app would) and lets a test
 * wait for them: `await rec.next("onLoginSuccess")` resolves to the arguments of the next such
 * call not yet taken.
 */
export function record(target, names, label = "") {
  const j = journal(label, (name, args) => `${name}(${JSON.stringify(args)})`);
  for (const name of names) target[name] = (...args) => j.push(name, args);
  return {
    /** The arguments of every call of `name` so far. */
    all: (name) => j.items.filter((c) => c.name === name).map((c) => c.value),
    /** Resolves with the arguments of the next untaken call of `name` that `pred` accepts. */
    next: (name, pred = () => true, timeoutMs = TIMEOUT_MS) => j.next(name, (args) => pred(...args), timeoutMs),
  };
}

export const SESSION_CALLBACKS = [
  "onLoginSuccess",
  "onLoginFailed",
  "onLogout",
  "onError",
  "onMessageInstantReceive",
  "onInviteReceived",
  "onReconnecting",
  "onReconnected",
  "onMessageSendSuccess",
  "onMessageSendError",
];

export const CHANNEL_CALLBACKS = [
  "onChannelJoined",
  "onChannelJoinFailed",
  "onChannelLeaved",
  "onChannelUserJoined",
  "onChannelUserLeaved",
  "onChannelUserList",
  "onChannelAttrUpdated",
  "onMessageChannelReceive",
];

export const CALL_CALLBACKS = [
  "onInviteReceivedByPeer",
  "onInviteAcceptedByPeer",
  "onInviteRefusedByPeer",
  "onInviteFailed",
  "onInviteEndByPeer",
  "onInviteEndByMyself",
  "onInviteMsg",
];

/** Logs `account` in and waits for success; returns the session and its recorder. */
export async function loggedIn(Signal, url, account, { app = "web-test", token = "_no_need_token", options = {} } = {}) {
  const session = Signal(app, { url, ...options }).login(account, token);
  const rec = record(session, SESSION_CALLBACKS, account);
  await rec.next("onLoginSuccess");
  return { session, rec };
}

/** A unique name per call, so tests sharing a server never meet by accident. */
let counter = 0;
export function unique(prefix) {
  counter += 1;
  return `${prefix}-${process.pid}-${counter}`;
}

/** A WebSocket that counts the frames it sends (to prove a rejected call sent nothing). */
export function countingWebSocket() {
  const counter = { sent: 0 };
  class Counting extends WebSocket {
    send(data) {
      counter.sent += 1;
      super.send(data);
    }
  }
  return { WebSocket: Counting, counter };
}

/**
 * A TCP proxy on a free loopback port in front of `port`. `cut()` destroys every connection
 * through it at once, as a network failure would (no WebSocket close handshake).
 */
export async function startProxy(port) {
  const pairs = new Set();
  const server = net.createServer({ noDelay: true }, (client) => {
    const upstream = net.connect({ port, host: "127.0.0.1", noDelay: true });
    const pair = [client, upstream];
    pairs.add(pair);
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", end);
    upstream.on("error", end);
    client.on("close", end);
    upstream.on("close", end);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `ws://127.0.0.1:${server.address().port}/ws`,
    get connections() {
      return pairs.size;
    },
    cut() {
      for (const [a, b] of pairs) {
        a.resetAndDestroy?.() ?? a.destroy();
        b.destroy();
      }
      pairs.clear();
    },
    close: () =>
      new Promise((r) => {
        for (const [a, b] of pairs) {
          a.destroy();
          b.destroy();
        }
        server.close(() => r());
      }),
  };
}

/**
 * The Rust SDK as a peer process (`sdk-peer URL APP ACCOUNT`): `send(cmd)` writes a JSON
 * command; `next(event, pred)` resolves with the next matching JSON event.
 */
export function startPeer(url, app, account) {
  const child = spawn(peerBin(), [url, app, account], { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const j = journal(`sdk-peer ${account}`, (name, ev) => JSON.stringify(ev));
  createInterface({ input: child.stdout }).on("line", (line) => {
    const ev = JSON.parse(line);
    j.push(ev.event, ev);
  });
  return {
    send(cmd) {
      child.stdin.write(`${JSON.stringify(cmd)}\n`);
    },
    next: (event, pred = () => true, timeoutMs = TIMEOUT_MS) =>
      j.next(event, pred, timeoutMs).catch((e) => {
        throw new Error(`${e.message}\n${stderr}`);
      }),
    stop: () =>
      new Promise((done) => {
        if (child.exitCode !== null) return done();
        child.on("exit", () => done());
        child.stdin.end();
        setTimeout(() => child.kill("SIGKILL"), 5000).unref();
      }),
  };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * An app's own web server on a free loopback port, as apps deploy behind a reverse proxy: it
 * serves `files` (path → HTML) itself and passes every other request, the SDK script and the
 * WebSocket upgrade included, through to beckon-server on `port`.
 */
export async function startAppServer(port, files) {
  const http = await import("node:http");
  const sockets = new Set();
  const server = http.createServer((req, res) => {
    const body = files[req.url.split("?")[0]];
    if (body !== undefined) {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end(body);
      return;
    }
    const up = http.request({ host: "127.0.0.1", port, path: req.url, method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    });
    up.on("error", () => res.destroy());
    req.pipe(up);
  });
  server.on("upgrade", (req, socket, head) => {
    socket.setNoDelay(true);
    const up = net.connect({ port, host: "127.0.0.1", noDelay: true }, () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      up.write(`${lines.join("\r\n")}\r\n\r\n`);
      if (head.length) up.write(head);
      socket.pipe(up);
      up.pipe(socket);
    });
    for (const s of [socket, up]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {
        socket.destroy();
        up.destroy();
      });
    }
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return {
    origin: `http://127.0.0.1:${server.address().port}`,
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.closeAllConnections?.();
        server.close(() => r());
      }),
  };
}
