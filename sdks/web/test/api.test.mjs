// Every method and callback of the Web seed against a real beckon-server.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

// Through the package's own name, as apps import it (its "exports" entry).
import { Signal, SignalClient, Session, Channel, Call } from "beckon-web";
import {
  CALL_CALLBACKS,
  CHANNEL_CALLBACKS,
  SECURE_APP,
  SESSION_CALLBACKS,
  loggedIn,
  mintToken,
  record,
  sleep,
  startServer,
  unique,
} from "./helpers.mjs";

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

const login = (account, opts) => loggedIn(Signal, server.ws, account, opts);

describe("Signal", () => {
  test("is callable with and without new, and reports its version and status", async () => {
    const a = Signal("web-test", { url: server.ws });
    const b = new Signal("web-test", { url: server.ws });
    assert.ok(a instanceof SignalClient && b instanceof SignalClient);
    assert.ok(a instanceof Signal, "instanceof Signal works");
    assert.equal(typeof new Signal().getSDKVersion(), "string");
    assert.match(new Signal().getSDKVersion(), /^\d+\.\d+\.\d+$/);
    assert.equal(Signal.Codes.LOGIN_E_TOKENWRONG, 206);

    assert.equal(a.getStatus(), 0);
    const s = a.login(unique("status"), "_no_need_token");
    assert.ok(s instanceof Session);
    assert.equal(a.getStatus(), 1, "logging in");
    const rec = record(s, SESSION_CALLBACKS, "status");
    await rec.next("onLoginSuccess");
    assert.equal(a.getStatus(), 2);
    s.logout();
    assert.deepEqual(await rec.next("onLogout"), [101]);
    assert.equal(a.getStatus(), 0);
  });

  test("login while logged in is ignored and returns the same session", async () => {
    const account = unique("twice");
    const signal = Signal("web-test", { url: server.ws });
    const s = signal.login(account, "_no_need_token");
    assert.equal(signal.login(account, "_no_need_token"), s, "while logging in");
    const rec = record(s, SESSION_CALLBACKS, account);
    await rec.next("onLoginSuccess");
    assert.equal(signal.login("someone-else", "_no_need_token"), s, "while logged in");
    s.logout();
    await rec.next("onLogout");
    assert.notEqual(signal.login(account, "_no_need_token"), s, "a new session after logout");
  });

  test("setDoLog writes SDK log lines at the chosen level; setDolog is the same", async () => {
    const lines = [];
    const saved = { debug: console.debug, info: console.info, warn: console.warn };
    console.debug = console.info = console.warn = (line) => lines.push(line);
    try {
      const signal = Signal("web-test", { url: server.ws });
      signal.setDoLog(true, "DEBUG");
      const { session, rec } = await loggedIn(() => signal, server.ws, unique("log"));
      assert.ok(lines.some((l) => /DEBUG login/.test(l)), lines.join("\n"));
      assert.ok(lines.some((l) => /INFO logged in as/.test(l)), lines.join("\n"));
      lines.length = 0;
      signal.setDolog(true, "WARNING");
      session.invoke("io.agora.signal.user_query_user_status", { account: "x" }, () => {});
      session.messageInstantSend("", "no peer");
      await rec.next("onError");
      assert.ok(lines.length > 0 && lines.every((l) => /WARNING/.test(l)), lines.join("\n"));
      lines.length = 0;
      signal.setDoLog(false);
      session.messageInstantSend("", "no peer");
      await rec.next("onError");
      assert.deepEqual(lines, []);
      session.logout();
    } finally {
      Object.assign(console, saved);
    }
  });
});

describe("Session", () => {
  test("onLoginSuccess gets the server's uid; callbacks assigned after login still fire", async () => {
    const session = Signal("web-test", { url: server.ws }).login(unique("late"), "_no_need_token");
    // Assigned after a macrotask would be too late for a real network answer; after the
    // returning call they are always in time, even for answers produced locally.
    const rec = record(session, SESSION_CALLBACKS, "late");
    const [uid] = await rec.next("onLoginSuccess");
    assert.equal(typeof uid, "number");
    assert.ok(uid > 0);
    session.logout();
  });

  test("local rejections fire on a later turn, never during the call", async () => {
    const { session, rec } = await login(unique("turn"));
    let during = true;
    session.onError = () => assert.equal(during, false, "onError fired inside the call");
    session.messageInstantSend("", "x");
    during = false;
    await sleep(20);
    const ch = session.channelJoin("");
    let failed = false;
    ch.onChannelJoinFailed = (ecode) => {
      failed = ecode;
    };
    await sleep(20);
    assert.equal(failed, 1004);
    session.logout();
    void rec;
  });

  test("an exception in an app's callback is reported and later callbacks still fire", async () => {
    const reported = [];
    globalThis.reportError = (e) => reported.push(e.message);
    try {
      const a = await login(unique("throws"));
      const b = await login(unique("fine"));
      const got = [];
      b.session.onMessageInstantReceive = (account, uid, msg) => {
        got.push(msg);
        throw new Error(`app bug on ${msg}`);
      };
      a.session.messageInstantSend(b.session.account, "one", () => {
        throw new Error("app bug in cb");
      });
      a.session.messageInstantSend(b.session.account, "two");
      await a.rec.next("onMessageSendSuccess");
      await a.rec.next("onMessageSendSuccess");
      const deadline = Date.now() + 5000;
      while (got.length < 2 && Date.now() < deadline) await sleep(10);
      assert.deepEqual(got, ["one", "two"]);
      assert.deepEqual(reported.sort(), ["app bug in cb", "app bug on one", "app bug on two"]);
      a.session.logout();
      b.session.logout();
    } finally {
      delete globalThis.reportError;
    }
  });

  test("login failures: wrong token, empty token, bad account", async () => {
    const wrong = Signal(SECURE_APP, { url: server.ws }).login("alice", "_no_need_token");
    const r1 = record(wrong, SESSION_CALLBACKS, "wrong");
    assert.deepEqual(await r1.next("onLoginFailed"), [206]);
    assert.equal((await r1.next("onError"))[0].ecode, 206);

    const empty = Signal("web-test", { url: server.ws }).login("alice", "");
    const r2 = record(empty, SESSION_CALLBACKS, "empty");
    assert.deepEqual(await r2.next("onLoginFailed"), [1004]);

    const bad = Signal("web-test", { url: server.ws }).login("al ice", "_no_need_token");
    const r3 = record(bad, SESSION_CALLBACKS, "bad");
    assert.deepEqual(await r3.next("onLoginFailed"), [1004]);
    const [evt] = await r3.next("onError");
    assert.equal(evt.name, "login");
    assert.match(evt.desc, /whitespace/);

    const noUrl = Signal("web-test").login("alice", "_no_need_token");
    const r4 = record(noUrl, SESSION_CALLBACKS, "no url");
    assert.deepEqual(await r4.next("onLoginFailed"), [1004]);
    assert.match((await r4.next("onError"))[0].desc, /no server URL/);
  });

  test("a signed token logs in; an expired one is refused", async () => {
    const account = unique("signed");
    const ok = Signal(SECURE_APP, { url: server.ws }).login(account, mintToken(account));
    const r1 = record(ok, SESSION_CALLBACKS, "signed");
    await r1.next("onLoginSuccess");
    ok.logout();
    const other = Signal(SECURE_APP, { url: server.ws }).login(unique("other"), mintToken(account));
    const r2 = record(other, SESSION_CALLBACKS, "other");
    assert.deepEqual(await r2.next("onLoginFailed"), [206], "a token for another account");
  });

  test("logout during login cancels it; logout when logged out is an error", async () => {
    const s = Signal("web-test", { url: server.ws }).login(unique("cancel"), "_no_need_token");
    const rec = record(s, SESSION_CALLBACKS, "cancel");
    s.logout();
    assert.deepEqual(await rec.next("onLoginFailed"), [203]);
    s.logout();
    assert.equal((await rec.next("onError"))[0].ecode, 108);
  });

  test("a second login of the account kicks the first: onLogout(LOGOUT_E_KICKED)", async () => {
    const account = unique("kick");
    const first = await login(account);
    const second = await login(account);
    assert.deepEqual(await first.rec.next("onLogout"), [103]);
    second.session.logout();
  });

  test("messageInstantSend(peer, msg, cb) and onMessageInstantReceive(account, uid, msg)", async () => {
    const a = await login(unique("a"));
    const b = await login(unique("b"));
    let sent = 0;
    const id = a.session.messageInstantSend(b.session.account, "héllo 👋", () => sent++);
    assert.equal(typeof id, "string");
    assert.deepEqual(await b.rec.next("onMessageInstantReceive"), [a.session.account, 0, "héllo 👋"]);
    assert.deepEqual(await a.rec.next("onMessageSendSuccess"), [id]);
    await sleep(10);
    assert.equal(sent, 1);
    // Offline recipients get it at their next login (stored by the server).
    const offline = unique("offline");
    a.session.messageInstantSend(offline, "while you were away", () => sent++);
    await a.rec.next("onMessageSendSuccess");
    const c = await login(offline);
    assert.deepEqual(await c.rec.next("onMessageInstantReceive"), [a.session.account, 0, "while you were away"]);
    for (const x of [a, b, c]) x.session.logout();
  });

  test("invoke(func, args, cb): every function, numbers as numbers", async () => {
    const a = await login(unique("inv"));
    const b = await login(unique("inv-peer"));
    const call = (func, args, session = a.session) =>
      new Promise((resolve) => session.invoke(`io.agora.signal.${func}`, args, (err, res) => resolve([err, res])));
    const me = a.session.account;
    const peer = b.session.account;
    assert.deepEqual(await call("user_query_user_status", { account: peer }), [null, { status: 1 }]);
    assert.deepEqual(await call("user_query_user_status", { account: unique("nobody") }), [null, { status: 0 }]);
    assert.deepEqual(await call("user_set_attr", { name: "color", value: "blue" }), [null, {}]);
    assert.deepEqual(await call("user_get_attr", { account: me, name: "color" }), [null, { value: "blue" }]);
    assert.deepEqual(await call("user_get_attr_all", { account: me }), [null, { color: "blue" }]);
    const ch = unique("inv-room");
    const joined = b.session.channelJoin(ch);
    const jr = record(joined, CHANNEL_CALLBACKS, "inv-room");
    await jr.next("onChannelJoined");
    assert.deepEqual(await call("channel_query_num", { name: ch }), [null, { num: 1 }]);
    assert.deepEqual(await call("channel_query_user_isin", { name: ch, account: peer }), [null, { isin: 1 }]);
    assert.deepEqual(await call("channel_query_user_isin", { name: ch, account: me }), [null, { isin: 0 }]);
    assert.deepEqual(await call("channel_query_userlist", { name: ch }), [null, { num: 1, list: [[peer, 0]] }]);
    assert.deepEqual(await call("channel_query_userlist_all", { name: ch, num: 10 }), [
      null,
      { num: 1, list: [[peer, 0]] },
    ]);
    // Channel attributes: members only.
    const [denied] = await call("channel_set_attr", { channel: ch, name: "k", value: "v" });
    assert.equal(denied, 1001);
    const bs = b.session;
    assert.deepEqual(await call("channel_set_attr", { channel: ch, name: "k", value: "v" }, bs), [null, {}]);
    assert.deepEqual(await jr.next("onChannelAttrUpdated"), ["k", "v", "update"]);
    assert.deepEqual(await call("channel_del_attr", { channel: ch, name: "k" }, bs), [null, {}]);
    assert.deepEqual(await jr.next("onChannelAttrUpdated"), ["k", "", "del"]);
    assert.deepEqual(await call("channel_clear_attr", { channel: ch }, bs), [null, {}]);
    assert.deepEqual((await jr.next("onChannelAttrUpdated"))[2], "clear");
    // Arguments as a JSON string work too.
    assert.deepEqual(await call("user_query_user_status", JSON.stringify({ account: peer })), [null, { status: 1 }]);
    // Errors: the code, and the server's reason.
    const [err, res] = await call("no_such_function", {});
    assert.equal(err, 1004);
    assert.match(res.error, /unknown function/);
    assert.equal((await a.rec.next("onError", (e) => e.ecode === 1004))[0].name, "invoke");
    const [err2] = await call("user_query_user_status", { account: 7 });
    assert.equal(err2, 1004);
    a.session.logout();
    b.session.logout();
  });
});

describe("Channel", () => {
  test("join, user list, join/leave events, attributes, messages and leave", async () => {
    const name = unique("room");
    const a = await login(unique("ca"));
    const b = await login(unique("cb"));
    const chA = a.session.channelJoin(name);
    assert.ok(chA instanceof Channel);
    assert.equal(chA.name, name);
    assert.throws(() => {
      "use strict";
      chA.name = "other";
    }, TypeError);
    const ra = record(chA, CHANNEL_CALLBACKS, "ca");
    assert.deepEqual(await ra.next("onChannelJoined"), []);
    assert.deepEqual(await ra.next("onChannelUserList"), [[[a.session.account, 0]]]);

    let setDone = 0;
    chA.channelSetAttr("topic", "launch", () => setDone++);
    assert.deepEqual(await ra.next("onChannelAttrUpdated"), ["topic", "launch", "update"]);

    const chB = b.session.channelJoin(name);
    const rb = record(chB, CHANNEL_CALLBACKS, "cb");
    await rb.next("onChannelJoined");
    const [users] = await rb.next("onChannelUserList");
    assert.deepEqual(users, [
      [a.session.account, 0],
      [b.session.account, 0],
    ]);
    assert.deepEqual(await rb.next("onChannelAttrUpdated"), ["topic", "launch", "update"], "attributes on join");
    assert.deepEqual(await ra.next("onChannelUserJoined"), [b.session.account, 0]);

    let sent = 0;
    chB.messageChannelSend("hi all", () => sent++);
    assert.deepEqual(await ra.next("onMessageChannelReceive"), [b.session.account, 0, "hi all"]);
    assert.deepEqual(await rb.next("onMessageChannelReceive"), [b.session.account, 0, "hi all"], "the sender too");

    let delDone = 0;
    chB.channelDelAttr("topic", () => delDone++);
    assert.deepEqual(await ra.next("onChannelAttrUpdated"), ["topic", "", "del"]);
    chA.channelSetAttr("a", "1");
    await rb.next("onChannelAttrUpdated", (k) => k === "a");
    let clearDone = 0;
    chA.channelClearAttr(() => clearDone++);
    assert.equal((await rb.next("onChannelAttrUpdated", (k, v, t) => t === "clear"))[2], "clear");

    let leaveDone = 0;
    chB.channelLeave(() => leaveDone++);
    assert.deepEqual(await rb.next("onChannelLeaved"), [602]);
    assert.deepEqual(await ra.next("onChannelUserLeaved"), [b.session.account, 0]);
    await sleep(20);
    assert.deepEqual([setDone, sent, delDone, clearDone, leaveDone], [1, 1, 1, 1, 1]);

    // Not a member any more: sending fails with its code.
    chB.messageChannelSend("still here?");
    assert.equal((await b.rec.next("onError"))[0].name, "messageChannelSend");

    // Logging out leaves with LEAVECHANNEL_E_LOGOUT.
    a.session.logout();
    assert.deepEqual(await ra.next("onChannelLeaved"), [603]);
    b.session.logout();
  });

  test("joining another channel leaves the first; special channels need the server privilege", async () => {
    const a = await login(unique("two"));
    const first = a.session.channelJoin(unique("first"));
    const r1 = record(first, CHANNEL_CALLBACKS, "first");
    await r1.next("onChannelJoined");
    const second = a.session.channelJoin(unique("second"));
    const r2 = record(second, CHANNEL_CALLBACKS, "second");
    await r2.next("onChannelJoined");
    assert.deepEqual(await r1.next("onChannelLeaved"), [602]);
    const special = a.session.channelJoin("_agora_user_online");
    const r3 = record(special, CHANNEL_CALLBACKS, "special");
    assert.deepEqual(await r3.next("onChannelJoinFailed"), [301]);
    a.session.logout();
  });
});

describe("Call", () => {
  test("invite, ring, accept, DTMF and end; the callee ends too", async () => {
    const a = await login(unique("caller"));
    const b = await login(unique("callee"));
    const channel = unique("call");
    const call = a.session.channelInviteUser2(channel, b.session.account, { destMediaUid: 123 });
    assert.ok(call instanceof Call);
    assert.equal(call.channelName, channel);
    assert.equal(call.peer, b.session.account);
    const rc = record(call, CALL_CALLBACKS, "caller");

    const [incoming] = await b.rec.next("onInviteReceived");
    assert.ok(incoming instanceof Call);
    assert.equal(incoming.channelName, channel);
    assert.equal(incoming.peer, a.session.account);
    assert.deepEqual(JSON.parse(incoming.extra), { destMediaUid: 123 });
    const ri = record(incoming, CALL_CALLBACKS, "callee");
    await rc.next("onInviteReceivedByPeer");

    incoming.channelInviteAccept(JSON.stringify({ answer: "yes" }));
    assert.deepEqual(JSON.parse((await rc.next("onInviteAcceptedByPeer"))[0]), { answer: "yes" });

    call.channelInviteDTMF("12#");
    const [, type, digits] = await ri.next("onInviteMsg");
    assert.deepEqual([type, digits], ["DTMF", "12#"]);
    incoming.channelInviteDTMF("9*");
    assert.deepEqual((await rc.next("onInviteMsg")).slice(1), ["DTMF", "9*"]);

    incoming.channelInviteEnd();
    await ri.next("onInviteEndByMyself");
    await rc.next("onInviteEndByPeer");

    // The caller ends a second call before it is answered.
    const again = a.session.channelInviteUser2(channel, b.session.account, "");
    const ra = record(again, CALL_CALLBACKS, "again");
    const [ringing] = await b.rec.next("onInviteReceived");
    const rr = record(ringing, CALL_CALLBACKS, "ringing");
    await ra.next("onInviteReceivedByPeer");
    again.channelInviteEnd();
    await ra.next("onInviteEndByMyself");
    await rr.next("onInviteEndByPeer");
    a.session.logout();
    b.session.logout();
  });

  test("refuse, re-invite while pending, and a callee that is offline", async () => {
    const a = await login(unique("caller2"));
    const b = await login(unique("callee2"));
    const channel = unique("call2");
    const call = a.session.channelInviteUser2(channel, b.session.account);
    const rc = record(call, CALL_CALLBACKS, "caller2");
    const [incoming] = await b.rec.next("onInviteReceived");
    const dup = a.session.channelInviteUser2(channel, b.session.account);
    const rd = record(dup, CALL_CALLBACKS, "dup");
    assert.equal((await rd.next("onInviteFailed"))[1], 701);
    incoming.channelInviteRefuse(JSON.stringify({ reason: "busy" }));
    assert.deepEqual(JSON.parse((await rc.next("onInviteRefusedByPeer"))[0]), { reason: "busy" });
    assert.deepEqual(rc.all("onInviteFailed"), [], "the re-invite did not touch the call");

    const gone = a.session.channelInviteUser2(channel, unique("nobody"), { _require_peer_online: 1 });
    const rg = record(gone, CALL_CALLBACKS, "gone");
    assert.equal((await rg.next("onInviteFailed"))[1], 703);
    a.session.logout();
    b.session.logout();
  });
});
