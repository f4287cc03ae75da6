// The Web SDK and the Rust SDK (sdk-peer, over TCP) on one server: p2p messages and channel
// traffic both ways, and calls placed from each side.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { Signal } from "../dist/lib/index.js";
import { CALL_CALLBACKS, CHANNEL_CALLBACKS, loggedIn, record, startPeer, startServer, unique } from "./helpers.mjs";

const APP = "web-interop";
let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

test("a Web client and a Rust client message, meet in a channel and call each other", async () => {
  const rustName = unique("rust");
  const rust = startPeer(server.tcp, APP, rustName);
  await rust.next("LoginSuccess");
  const web = await loggedIn(Signal, server.ws, unique("web"), { app: APP });
  const webName = web.session.account;

  // p2p, both ways.
  web.session.messageInstantSend(rustName, "hello from the browser SDK ✓");
  const got = await rust.next("MessageInstantReceive");
  assert.deepEqual([got.account, got.msg], [webName, "hello from the browser SDK ✓"]);
  rust.send({ op: "message_instant_send", peer: webName, msg: "hello from Rust 🦀" });
  assert.deepEqual(await web.rec.next("onMessageInstantReceive"), [rustName, 0, "hello from Rust 🦀"]);
  await rust.next("MessageSendSuccess");

  // A channel: join events, attributes, messages both ways.
  const room = unique("mixed");
  rust.send({ op: "channel_join", channel: room });
  await rust.next("ChannelJoined");
  const ch = web.session.channelJoin(room);
  const rc = record(ch, CHANNEL_CALLBACKS, "web room");
  await rc.next("onChannelJoined");
  assert.deepEqual(await rc.next("onChannelUserList"), [
    [
      [rustName, 0],
      [webName, 0],
    ],
  ]);
  assert.equal((await rust.next("ChannelUserJoined")).account, webName);
  rust.send({ op: "channel_set_attr", channel: room, name: "lang", value: "rust" });
  assert.deepEqual(await rc.next("onChannelAttrUpdated"), ["lang", "rust", "update"]);
  ch.messageChannelSend("web says hi");
  assert.equal((await rust.next("MessageChannelReceive", (e) => e.msg === "web says hi")).account, webName);
  rust.send({ op: "message_channel_send", channel: room, msg: "rust says hi" });
  assert.deepEqual(await rc.next("onMessageChannelReceive", (a, u, m) => m === "rust says hi"), [rustName, 0, "rust says hi"]);

  // Rust calls the browser; the browser accepts, then Rust ends it.
  rust.send({ op: "channel_invite_user2", channel: room, account: webName, extra: '{"from":"rust"}' });
  const [incoming] = await web.rec.next("onInviteReceived");
  assert.deepEqual([incoming.channelName, incoming.peer, incoming.extra], [room, rustName, '{"from":"rust"}']);
  const ri = record(incoming, CALL_CALLBACKS, "incoming");
  await rust.next("InviteReceivedByPeer");
  incoming.channelInviteAccept('{"ok":1}');
  assert.equal((await rust.next("InviteAcceptedByPeer")).extra, '{"ok":1}');
  rust.send({ op: "channel_invite_dtmf", channel: room, account: webName, dtmf: "42#" });
  assert.deepEqual((await ri.next("onInviteMsg")).slice(1), ["DTMF", "42#"]);
  rust.send({ op: "channel_invite_end", channel: room, account: webName });
  await ri.next("onInviteEndByPeer");
  await rust.next("InviteEndByMyself");

  // The browser calls Rust; Rust refuses; then a second call Rust accepts and the browser ends.
  const call = web.session.channelInviteUser2(room, rustName, "");
  const rcall = record(call, CALL_CALLBACKS, "outgoing");
  assert.equal((await rust.next("InviteReceived")).account, webName);
  await rcall.next("onInviteReceivedByPeer");
  rust.send({ op: "channel_invite_refuse", channel: room, account: webName, extra: '{"why":"busy"}' });
  assert.deepEqual(await rcall.next("onInviteRefusedByPeer"), ['{"why":"busy"}']);
  const second = web.session.channelInviteUser2(room, rustName, "");
  const r2 = record(second, CALL_CALLBACKS, "second");
  await rust.next("InviteReceived");
  rust.send({ op: "channel_invite_accept", channel: room, account: webName, extra: "" });
  await r2.next("onInviteAcceptedByPeer");
  second.channelInviteEnd();
  await r2.next("onInviteEndByMyself");
  await rust.next("InviteEndByPeer");

  web.session.logout();
  assert.equal((await rust.next("ChannelUserLeaved")).account, webName);
  await rust.stop();
});
