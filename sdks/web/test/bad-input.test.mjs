// Every bad input of SPEC §2 is refused locally with its code and a clear message: nothing is
// sent, nothing changes, the session stays up.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { Signal } from "../dist/lib/index.js";
import {
  CALL_CALLBACKS,
  CHANNEL_CALLBACKS,
  SESSION_CALLBACKS,
  countingWebSocket,
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

const long = (n, c = "a") => c.repeat(n);

test("bad arguments fail locally with their code, send nothing and change nothing", async () => {
  const { WebSocket, counter } = countingWebSocket();
  const me = unique("strict");
  const session = Signal("web-test", { url: server.ws, WebSocket }).login(me, "_no_need_token");
  const rec = record(session, SESSION_CALLBACKS, me);
  await rec.next("onLoginSuccess");
  const room = unique("room");
  const channel = session.channelJoin(room);
  const rch = record(channel, CHANNEL_CALLBACKS, room);
  await rch.next("onChannelJoined");
  channel.channelSetAttr("kept", "1");
  await rch.next("onChannelAttrUpdated");
  await sleep(50); // let acknowledgements go out
  const sentBefore = counter.sent;

  // [what, the call, the name onError reports, the code]
  const cases = [
    ["p2p to an empty account", () => session.messageInstantSend("", "x"), "messageInstantSend", 1004],
    ["p2p to an account with a space", () => session.messageInstantSend("a b", "x"), "messageInstantSend", 1004],
    ["p2p to an account with a control character", () => session.messageInstantSend("a\u0001", "x"), "messageInstantSend", 1004],
    ["p2p to a 129-character account", () => session.messageInstantSend(long(129), "x"), "messageInstantSend", 1005],
    ["p2p to null", () => session.messageInstantSend(null, "x"), "messageInstantSend", 1004],
    ["p2p body of 8193 bytes", () => session.messageInstantSend("bob", long(8193)), "messageInstantSend", 1005],
    ["p2p body of 4097 two-byte characters", () => session.messageInstantSend("bob", long(4097, "é")), "messageInstantSend", 1005],
    ["p2p body with a lone surrogate", () => session.messageInstantSend("bob", "a\ud800"), "messageInstantSend", 1004],
    ["channel message of 8193 bytes", () => channel.messageChannelSend(long(8193)), "messageChannelSend", 1005],
    ["channel attribute with an empty name", () => channel.channelSetAttr("", "v"), "channelSetAttr", 1004],
    ["channel attribute name of 129 characters", () => channel.channelSetAttr(long(129), "v"), "channelSetAttr", 1005],
    ["channel attribute value of 8097 characters", () => channel.channelSetAttr("k", long(8097)), "channelSetAttr", 1005],
    ["channel attribute value with a control character", () => channel.channelSetAttr("k", "\u0000"), "channelSetAttr", 1004],
    ["deleting an attribute with an empty name", () => channel.channelDelAttr(""), "channelDelAttr", 1004],
    ["invoke without a function name", () => session.invoke("", {}, () => {}), "invoke", 1004],
    ["invoke with 8193 bytes of arguments", () => session.invoke("io.agora.signal.user_set_attr", long(8193), () => {}), "invoke", 1005],
    ["a call with extra that is not JSON", () => session.channelInviteUser2(room, "bob", "{nope"), "channelInviteUser2", 1004],
    ["a call with extra that is a JSON array", () => session.channelInviteUser2(room, "bob", "[1]"), "channelInviteUser2", 1004],
    ["a call with extra of 8193 bytes", () => session.channelInviteUser2(room, "bob", long(8193)), "channelInviteUser2", 1005],
    ["a call to oneself", () => session.channelInviteUser2(room, me, ""), "channelInviteUser2", 1004],
    ["a call on an empty channel name", () => session.channelInviteUser2("", "bob", ""), "channelInviteUser2", 1004],
    ["a call to an account with whitespace", () => session.channelInviteUser2(room, "b ob", ""), "channelInviteUser2", 1004],
  ];
  for (const [what, call, name, code] of cases) {
    call();
    const [evt] = await rec.next("onError");
    assert.equal(evt.name, name, what);
    assert.equal(evt.ecode, code, `${what}: ${evt.desc}`);
    assert.ok(evt.desc.length > 10, `${what}: a clear message, got ${JSON.stringify(evt.desc)}`);
  }
  // Their own failure callbacks fired as well.
  assert.equal(rec.all("onMessageSendError").length, 9);
  // Joining a channel with a bad name fails on that channel object.
  const bad = session.channelJoin(long(129));
  const rbad = record(bad, CHANNEL_CALLBACKS, "bad channel");
  assert.deepEqual(await rbad.next("onChannelJoinFailed"), [1005]);
  assert.equal((await rec.next("onError"))[0].ecode, 1005);
  // A call that failed locally reports it on the call object returned.
  const badCall = session.channelInviteUser2(room, "bob", "[]");
  const rcall = record(badCall, CALL_CALLBACKS, "bad call");
  assert.deepEqual((await rcall.next("onInviteFailed"))[1], 1004);
  await rec.next("onError");
  // DTMF must be digits, * or #.
  const peer = Signal("web-test", { url: server.ws }).login(unique("peer"), "_no_need_token");
  const rpeer = record(peer, SESSION_CALLBACKS, "peer");
  await rpeer.next("onLoginSuccess");
  const call = session.channelInviteUser2(room, peer.account, "");
  const rc = record(call, CALL_CALLBACKS, "call");
  await rc.next("onInviteReceivedByPeer");
  const before = counter.sent;
  call.channelInviteDTMF("12a");
  assert.equal((await rec.next("onError"))[0].ecode, 1004);
  call.channelInviteDTMF("");
  assert.equal((await rec.next("onError"))[0].ecode, 1004);
  // Re-inviting while the call is pending: INVITE_E_REINVITE, locally.
  const again = session.channelInviteUser2(room, peer.account, "");
  const ragain = record(again, CALL_CALLBACKS, "again");
  assert.equal((await ragain.next("onInviteFailed"))[1], 701);
  await rec.next("onError");
  assert.equal(counter.sent, before, "no frame for the rejected call operations");

  // Nothing above reached the server (only acknowledgements of the peer's call events may
  // have gone out), nothing changed, and the session is still up.
  assert.ok(counter.sent - sentBefore <= 3, `frames sent: ${counter.sent - sentBefore}`);
  const attrs = await new Promise((r) =>
    session.invoke("io.agora.signal.channel_query_userlist", { name: room }, (e, res) => r([e, res])),
  );
  assert.deepEqual(attrs, [null, { num: 1, list: [[me, 0]] }]);
  assert.deepEqual(rec.all("onLogout"), []);
  session.logout();
  peer.logout();
});

test("every call before login fails with GENERAL_E_NOT_LOGIN and sends nothing", async () => {
  const { WebSocket, counter } = countingWebSocket();
  // An app the server refuses, so the session never logs in.
  const session = Signal("web-test", { url: server.ws, WebSocket }).login(unique("early"), "_no_need_token");
  const rec = record(session, SESSION_CALLBACKS, "early");
  const ch = session.channelJoin("room");
  const rch = record(ch, CHANNEL_CALLBACKS, "early room");
  session.messageInstantSend("bob", "x");
  session.invoke("io.agora.signal.user_query_user_status", { account: "bob" }, () => {});
  const call = session.channelInviteUser2("room", "bob", "");
  const rc = record(call, CALL_CALLBACKS, "early call");
  assert.deepEqual(await rch.next("onChannelJoinFailed"), [1003]);
  assert.equal((await rc.next("onInviteFailed"))[1], 1003);
  const names = [];
  for (let i = 0; i < 4; i++) {
    const [evt] = await rec.next("onError");
    assert.equal(evt.ecode, 1003);
    names.push(evt.name);
  }
  assert.deepEqual(names.sort(), ["channelInviteUser2", "channelJoin", "invoke", "messageInstantSend"]);
  await rec.next("onLoginSuccess");
  assert.equal(counter.sent, 1, "only the login frame");
  session.logout();
});
