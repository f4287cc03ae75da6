// The protocol core without sockets or clocks: the time is a number the test moves, the server
// is frames the test writes. Deterministic; mirrors the Rust client core's own tests.
import assert from "node:assert/strict";
import { test } from "node:test";

import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Client } from "../dist/lib/client.js";
import { Backoff } from "../dist/lib/backoff.js";
import { ClientFrameSchema, ServerFrameSchema } from "../dist/lib/gen/beckon_pb.js";
import * as v from "../dist/lib/validate.js";

const server = (kind) => toBinary(ServerFrameSchema, create(ServerFrameSchema, { kind }));
const loginOk = (resumed, lastApplied = 0n) =>
  server({
    case: "loginOk",
    value: {
      uid: 42,
      sessionId: 0xfedc_ba98_7654_3210n, // above 2^53: must survive exactly
      resumeSecret: new Uint8Array([1, 2, 3]),
      heartbeatIntervalMs: 10_000,
      resumed,
      lastAppliedRequestId: lastApplied,
      protocolVersion: 1,
    },
  });
const event = (seq, body) => server({ case: "event", value: { seq: BigInt(seq), body } });
const reply = (seq, requestId, result, code = 0) =>
  event(seq, { case: "reply", value: { requestId: BigInt(requestId), code, result: result ?? { case: undefined } } });
const message = (seq, serverMsgId, msg) =>
  event(seq, { case: "instantMessage", value: { sender: "bob", msg, serverMsgId: BigInt(serverMsgId) } });

function sent(c) {
  const out = [];
  for (let f = c.pollTransmit(); f; f = c.pollTransmit()) out.push(fromBinary(ClientFrameSchema, f).kind);
  return out;
}
function events(c) {
  const out = [];
  for (let e = c.pollEvent(); e; e = c.pollEvent()) out.push(e);
  return out;
}
function commands(c) {
  const out = [];
  for (let x = c.pollConnection(); x; x = c.pollConnection()) out.push(x);
  return out;
}

/** A client logged in at time 0, its outputs drained. */
function loggedIn(config = {}) {
  let r = 0.5;
  const c = new Client({ random: () => (r = (r * 9301 + 49297) % 1), ...config });
  c.login("app", "alice", "_no_need_token", 3, 30, 0);
  assert.deepEqual(commands(c), ["open"]);
  c.handleConnected(0);
  c.handleFrame(loginOk(false), 0);
  events(c);
  sent(c);
  return c;
}

test("login sends app, account, token and protocol version, then reports the uid", () => {
  const c = new Client();
  c.login("app", "alice", "_no_need_token", 0, 0, 0);
  assert.equal(c.status, 1);
  assert.deepEqual(commands(c), ["open"]);
  c.handleConnected(5);
  const [login] = sent(c);
  assert.equal(login.case, "login");
  assert.equal(login.value.appId, "app");
  assert.equal(login.value.account, "alice");
  assert.equal(login.value.protocolVersion, 1);
  assert.equal(login.value.resume, undefined);
  c.handleFrame(loginOk(false), 6);
  assert.deepEqual(events(c), [{ type: "loginSuccess", uid: 42 }]);
  assert.equal(c.status, 2);
});

test("a resumed session resends only the requests the server has not applied", () => {
  const c = loggedIn();
  c.channelJoin("a", 1);
  c.channelJoin("b", 1);
  c.channelJoin("c", 1);
  assert.equal(sent(c).length, 3);
  c.handleFrame(reply(1, 1, { case: "channelJoined", value: { channel: "a", accounts: ["alice"] } }), 2);
  events(c);
  c.handleDisconnected(3);
  assert.equal(c.status, 3);
  assert.deepEqual(events(c), [{ type: "reconnecting", nretry: 1 }]);
  c.handleTimeout(10_000);
  assert.deepEqual(commands(c), ["open"]);
  c.handleConnected(10_001);
  const [login] = sent(c);
  // Resume names the session exactly (a 64-bit id) and the last event applied.
  assert.equal(login.value.resume.sessionId, 0xfedc_ba98_7654_3210n);
  assert.equal(login.value.resume.lastEventSeq, 1n);
  // The server had applied request 2 (its reply is in the replayed events), not 3.
  c.handleFrame(loginOk(true, 2n), 10_002);
  const resent = sent(c).filter((k) => k.case === "request");
  assert.deepEqual(
    resent.map((k) => [k.value.id, k.value.op.value.channel]),
    [[3n, "c"]],
  );
  assert.deepEqual(events(c), [{ type: "reconnected" }]);
  assert.equal(c.pendingRequests, 2);
});

test("replayed events and re-delivered messages are dropped", () => {
  const c = loggedIn();
  c.handleFrame(message(1, 100, "one"), 1);
  c.handleFrame(message(1, 100, "one"), 2); // the same event again (replay)
  c.handleFrame(message(2, 100, "one"), 3); // the same message in a new event (re-delivery)
  c.handleFrame(message(3, 101, "two"), 4);
  const got = events(c)
    .filter((e) => e.type === "messageInstantReceive")
    .map((e) => e.msg);
  assert.deepEqual(got, ["one", "two"]);
});

test("events are acknowledged cumulatively, after a short delay or every 32", () => {
  const c = loggedIn();
  c.handleFrame(message(1, 1, "m"), 100);
  assert.equal(sent(c).length, 0, "not at once");
  assert.equal(c.pollTimeout(), 120);
  c.handleTimeout(120);
  assert.deepEqual(sent(c), [{ case: "ack", value: create(ClientFrameSchema.field.ack.message, { upTo: 1n }) }]);
  for (let i = 2; i <= 33; i++) c.handleFrame(message(i, i, "m"), 200);
  const acks = sent(c).filter((k) => k.case === "ack");
  assert.deepEqual(
    acks.map((k) => k.value.upTo),
    [33n],
  );
});

test("heartbeats: a ping after a quiet interval, and a silent server is lost after three", () => {
  const c = loggedIn();
  assert.equal(c.pollTimeout(), 10_000);
  c.handleTimeout(10_000);
  assert.deepEqual(
    sent(c).map((k) => k.case),
    ["ping"],
  );
  c.handleTimeout(20_000);
  c.handleTimeout(30_000);
  assert.equal(c.status, 3, "reconnecting once the server was silent for 3 intervals");
  assert.deepEqual(commands(c), ["close"]);
});

test("reconnect attempts are bounded by reconnect_count, then onLogout(LOGOUT_E_NET)", () => {
  const c = loggedIn();
  c.handleDisconnected(0);
  const seen = [];
  let now = 0;
  for (let i = 0; i < 10 && c.status !== 0; i++) {
    now = c.pollTimeout();
    c.handleTimeout(now);
    commands(c);
    c.handleDisconnected(now);
    seen.push(...events(c));
  }
  const nretries = seen.filter((e) => e.type === "reconnecting").map((e) => e.nretry);
  assert.deepEqual(nretries, [1, 2, 3]);
  assert.deepEqual(seen.at(-1), { type: "logout", ecode: 102 });
});

test("a login that never connects ends in onLoginFailed(LOGIN_E_NET)", () => {
  const c = new Client();
  c.login("app", "alice", "_no_need_token", 2, 30, 0);
  commands(c);
  c.handleDisconnected(1);
  const t = c.pollTimeout();
  c.handleTimeout(t);
  c.handleDisconnected(t);
  assert.deepEqual(
    events(c).filter((e) => e.type === "loginFailed"),
    [{ type: "loginFailed", ecode: 201 }],
  );
  assert.equal(c.status, 0);
});

test("back-off grows, keeps to its bounds, and spreads with jitter", () => {
  const delays = [];
  for (const r of [0, 0.999]) {
    const b = new Backoff({ firstAttemptJitterMs: 500, initialBackoffMs: 1000, maxBackoffMs: 8000 }, 10, 30_000, () => r);
    b.start(0);
    const d = [];
    for (let i = 0; i < 6; i++) d.push(b.next(0));
    delays.push(d);
  }
  assert.deepEqual(delays[0], [500, 1000, 2000, 4000, 4000, 4000]);
  assert.deepEqual(delays[1], [999, 1999, 3998, 7996, 7996, 7996]);
  const b = new Backoff({ firstAttemptJitterMs: 500, initialBackoffMs: 1000, maxBackoffMs: 8000 }, 10, 30_000, () => 0);
  b.start(0);
  assert.equal(b.next(30_000), undefined, "out of time");
});

const overloaded = (retryAfterMs) =>
  server({ case: "loginFailed", value: { code: 1007, message: "busy", retryAfterMs } });

test("the server's retry-after is honoured and costs no attempt (admission control)", () => {
  const c = new Client({ random: () => 0.5 });
  c.login("app", "alice", "_no_need_token", 2, 30, 0);
  assert.deepEqual(commands(c), ["open"]);
  let t = 0;
  for (let i = 0; i < 10; i++) {
    c.handleConnected(t);
    sent(c);
    c.handleFrame(overloaded(20_000), t);
    assert.deepEqual(commands(c), ["close"]);
    const evs = events(c);
    assert.ok(evs.some((e) => e.type === "log" && e.txt.includes("busy")), JSON.stringify(evs));
    assert.ok(!evs.some((e) => e.type === "loginFailed"), "not a failure");
    assert.equal(c.status, 1, "still logging in");
    const next = c.pollTimeout();
    assert.ok(next - t >= 20_000 && next - t <= 20_250, `waited ${next - t}`);
    c.handleTimeout(next - 1);
    assert.deepEqual(commands(c), [], "not before the server said");
    t = next;
    c.handleTimeout(t);
    assert.deepEqual(commands(c), ["open"]);
  }
  assert.ok(t > 200_000, "far past the 30 s login time, with 2 attempts");
  c.handleConnected(t);
  sent(c);
  c.handleFrame(loginOk(false), t);
  assert.deepEqual(
    events(c).filter((e) => e.type !== "log"),
    [{ type: "loginSuccess", uid: 42 }],
  );

  // Reconnecting: the refusals add no onReconnecting.
  c.handleDisconnected(t);
  assert.deepEqual(
    events(c).filter((e) => e.type === "reconnecting"),
    [{ type: "reconnecting", nretry: 1 }],
  );
  for (let i = 0; i < 5; i++) {
    t = c.pollTimeout();
    c.handleTimeout(t);
    commands(c);
    c.handleConnected(t);
    sent(c);
    c.handleFrame(overloaded(1_000), t);
    assert.ok(!events(c).some((e) => e.type === "reconnecting" || e.type === "logout"));
  }
  t = c.pollTimeout();
  c.handleTimeout(t);
  commands(c);
  c.handleConnected(t);
  sent(c);
  c.handleFrame(loginOk(false), t);
  assert.deepEqual(
    events(c).filter((e) => e.type !== "log"),
    [{ type: "reconnected" }],
  );
});

test("an overload refusal without a retry-after fails the login", () => {
  const c = new Client();
  c.login("app", "alice", "_no_need_token", 5, 60, 0);
  commands(c);
  c.handleConnected(0);
  sent(c);
  c.handleFrame(overloaded(0), 0);
  assert.ok(events(c).some((e) => e.type === "loginFailed" && e.ecode === 1007));
});

test("a fresh session after a lost one rejoins channels and fails what was in flight", () => {
  const c = loggedIn();
  c.channelJoin("room", 1);
  c.handleFrame(reply(1, 1, { case: "channelJoined", value: { channel: "room", accounts: ["alice"] } }), 1);
  const done = [];
  c.channelSetAttr("room", "k", "v", 2, (ecode) => done.push(ecode));
  events(c);
  sent(c);
  c.handleDisconnected(3);
  c.handleTimeout(c.pollTimeout());
  commands(c);
  c.handleConnected(1000);
  sent(c);
  c.handleFrame(loginOk(false), 1000);
  const rejoin = sent(c).filter((k) => k.case === "request");
  assert.deepEqual(
    rejoin.map((k) => [k.value.id, k.value.op.case, k.value.op.value.channel]),
    [[1n, "channelJoin", "room"]],
  );
  const evs = events(c);
  const doneEv = evs.find((e) => e.type === "done");
  doneEv.done(doneEv.ecode);
  assert.deepEqual(done, [1001]);
  assert.ok(evs.some((e) => e.type === "error" && e.name === "channelSetAttr" && e.ecode === 1001));
});

test("a kick ends the session: channels left, calls failed, no reconnect", () => {
  const c = loggedIn();
  c.channelJoin("room", 1);
  c.handleFrame(reply(1, 1, { case: "channelJoined", value: { channel: "room", accounts: ["alice"] } }), 1);
  assert.equal(c.channelInviteUser2("room", "bob", "", 2, () => {}), true);
  events(c);
  c.handleFrame(server({ case: "kick", value: { code: 103, message: "another login" } }), 3);
  const evs = events(c).filter((e) => e.type !== "log" && e.type !== "error" && e.type !== "done");
  assert.deepEqual(
    evs.map((e) => [e.type, e.kind ?? e.channel ?? "", e.ecode]),
    [
      ["call", "failed", 1001],
      ["channelLeaved", "room", 601],
      ["logout", "", 103],
    ],
  );
  assert.equal(c.pollTimeout(), undefined);
  assert.equal(c.status, 0);
});

test("an undecodable frame drops the connection and reconnects", () => {
  const c = loggedIn();
  c.handleFrame(new Uint8Array([0xff, 0xff, 0xff]), 1);
  assert.equal(c.status, 3);
  assert.deepEqual(commands(c), ["close"]);
});

test("validation mirrors beckon_proto::validate", () => {
  const L = v.DEFAULT_LIMITS;
  const code = (f) => {
    try {
      f();
      return 0;
    } catch (e) {
      return e.code;
    }
  };
  assert.equal(code(() => v.account(L, "a", "alice")), 0);
  assert.equal(code(() => v.account(L, "a", "")), 1004);
  assert.equal(code(() => v.account(L, "a", "al ice")), 1004);
  assert.equal(code(() => v.account(L, "a", "al\tice")), 1004);
  assert.equal(code(() => v.account(L, "a", "al\u00a0ice")), 1004, "Unicode whitespace");
  assert.equal(code(() => v.account(L, "a", "al\u0007ice")), 1004);
  assert.equal(code(() => v.account(L, "a", "a".repeat(128))), 0);
  assert.equal(code(() => v.account(L, "a", "a".repeat(129))), 1005);
  assert.equal(code(() => v.account(L, "a", "é".repeat(128))), 0, "characters, not bytes");
  assert.equal(code(() => v.account(L, "a", "😀".repeat(128))), 0, "characters, not UTF-16 units");
  assert.equal(code(() => v.account(L, "a", "😀".repeat(129))), 1005);
  assert.equal(code(() => v.account(L, "a", "a\ud800b")), 1004, "lone surrogate");
  assert.equal(code(() => v.account(L, "a", null)), 1004);
  assert.equal(code(() => v.account(L, "a", {})), 1004);
  assert.equal(v.account(L, "a", 12345), "12345", "numeric accounts are read as text");
  assert.equal(code(() => v.account(L, "a", "_system")), 1004, "reserved");
  assert.equal(code(() => v.account(L, "a", "_x")), 1004, "reserved");
  assert.equal(code(() => v.account(L, "a", "a_")), 0);
  assert.equal(code(() => v.identifier(L, "App ID", "_app")), 0, "App IDs are not accounts");
  assert.equal(code(() => v.channel(L, "c", "room")), 0);
  assert.equal(code(() => v.channel(L, "c", "a b")), 0);
  assert.equal(code(() => v.channel(L, "c", "_agora_user_online")), 0);
  assert.equal(code(() => v.channel(L, "c", "_agora_channel_event")), 0);
  assert.equal(code(() => v.channel(L, "c", "_agora_other")), 1004);
  assert.equal(code(() => v.channel(L, "c", "_")), 1004);
  assert.equal(code(() => v.userAttrValue(L, "v", "x".repeat(1024))), 0);
  assert.equal(code(() => v.userAttrValue(L, "v", "x".repeat(1025))), 1005);
  assert.equal(code(() => v.channelAttrValue(L, "v", "x".repeat(8096))), 0);
  assert.equal(code(() => v.channelAttrValue(L, "v", "x".repeat(8097))), 1005);
  assert.equal(code(() => v.message(L, "m", "x".repeat(8192))), 0);
  assert.equal(code(() => v.message(L, "m", "x".repeat(8193))), 1005);
  assert.equal(code(() => v.message(L, "m", "é".repeat(4097))), 1005, "bytes of UTF-8");
  assert.equal(code(() => v.message(L, "m", "line\nbreaks are fine")), 0);
  assert.equal(code(() => v.userAttrWrite(L, "color", "blue")), 0);
  assert.equal(code(() => v.userAttrWrite(L, "_conn_timeout", "30")), 0);
  assert.equal(code(() => v.userAttrWrite(L, "_conn_timeout", "")), 0);
  assert.equal(code(() => v.userAttrWrite(L, "_conn_timeout", "soon")), 1004);
  assert.equal(code(() => v.userAttrWrite(L, "_conn_timeout", "99999999999")), 1004);
  assert.equal(code(() => v.userAttrWrite(L, "_member_num", "3")), 1004);
  assert.equal(code(() => v.extra(L, "e", "")), 0);
  assert.equal(code(() => v.extra(L, "e", '{"a":1}')), 0);
  assert.equal(code(() => v.extra(L, "e", "[1]")), 1004);
  assert.equal(code(() => v.extra(L, "e", "{")), 1004);
  assert.equal(v.extra(L, "e", { a: 1 }), '{"a":1}');
  assert.equal(code(() => v.dtmf("d", "12*#")), 0);
  assert.equal(code(() => v.dtmf("d", "12a")), 1004);
  assert.equal(code(() => v.dtmf("d", "")), 1004);
  // Limits announced by the server replace the defaults; zeros keep them.
  const l = v.limitsFromWire({ maxNameChars: 7, maxUserAttrValueChars: 0, maxChannelAttrValueChars: 0, maxMessageBytes: 0 });
  assert.equal(l.maxNameChars, 7);
  assert.equal(l.maxMessageBytes, 8192);
  assert.equal(code(() => v.account(l, "a", "12345678")), 1005);
});

test("the login reply's limits apply to later calls", () => {
  const c = new Client();
  c.login("app", "alice", "_no_need_token", 0, 0, 0);
  commands(c);
  c.handleConnected(0);
  sent(c);
  c.handleFrame(
    server({
      case: "loginOk",
      value: { uid: 1, sessionId: 1n, heartbeatIntervalMs: 10_000, limits: { maxMessageBytes: 4 } },
    }),
    0,
  );
  events(c);
  c.messageInstantSend("bob", "12345", "", 1);
  assert.equal(sent(c).length, 0, "nothing sent");
  const evs = events(c);
  assert.ok(evs.some((e) => e.type === "messageSendError" && e.ecode === 1005));
  assert.ok(evs.some((e) => e.type === "error" && e.ecode === 1005 && /4 bytes/.test(e.desc)));
});
