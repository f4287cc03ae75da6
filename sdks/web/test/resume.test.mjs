// A dropped connection is resumed: every message sent while it was away arrives once, in
// order, in both directions; channel members see no leave or join.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { Signal } from "../dist/lib/index.js";
import { CHANNEL_CALLBACKS, loggedIn, record, sleep, startProxy, startServer, unique } from "./helpers.mjs";

let server;
let proxy;
before(async () => {
  server = await startServer();
  proxy = await startProxy(server.port);
});
after(async () => {
  await proxy?.close();
  await server?.stop();
});

test("resume after a dropped socket: no loss, no duplicate, no leave/join", async () => {
  const N = 60;
  const room = unique("resume-room");
  // The web client under test connects through the proxy; its peer directly.
  const web = await loggedIn(Signal, proxy.url, unique("web"));
  const peer = await loggedIn(Signal, server.ws, unique("peer"));
  const webCh = web.session.channelJoin(room);
  const rw = record(webCh, CHANNEL_CALLBACKS, "web room");
  await rw.next("onChannelJoined");
  const peerCh = peer.session.channelJoin(room);
  const rp = record(peerCh, CHANNEL_CALLBACKS, "peer room");
  await rp.next("onChannelJoined");
  await rw.next("onChannelUserJoined");

  // Traffic both ways, with the connection cut in the middle of it.
  for (let i = 0; i < N; i++) {
    peer.session.messageInstantSend(web.session.account, `to-web ${i}`);
    web.session.messageInstantSend(peer.session.account, `to-peer ${i}`);
    webCh.messageChannelSend(`web-ch ${i}`);
    if (i === N / 3) {
      await sleep(5);
      proxy.cut();
    }
    if (i === (2 * N) / 3) await web.rec.next("onReconnecting");
  }
  assert.deepEqual(await web.rec.next("onReconnected"), []);

  const want = (prefix) => Array.from({ length: N }, (_, i) => `${prefix} ${i}`);
  const received = async (rec, name, prefix, pick) => {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const got = rec.all(name).map(pick).filter((m) => m.startsWith(prefix));
      if (got.length >= N || Date.now() > deadline) return got;
      await sleep(20);
    }
  };
  assert.deepEqual(await received(web.rec, "onMessageInstantReceive", "to-web", (a) => a[2]), want("to-web"));
  assert.deepEqual(await received(peer.rec, "onMessageInstantReceive", "to-peer", (a) => a[2]), want("to-peer"));
  assert.deepEqual(await received(rp, "onMessageChannelReceive", "web-ch", (a) => a[2]), want("web-ch"));
  assert.deepEqual(await received(rw, "onMessageChannelReceive", "web-ch", (a) => a[2]), want("web-ch"));
  await sleep(200);
  // Exactly once: nothing more arrived after the full set.
  assert.equal(web.rec.all("onMessageInstantReceive").length, N);
  assert.equal(peer.rec.all("onMessageInstantReceive").length, N);
  assert.equal(web.rec.all("onMessageSendSuccess").length, 2 * N, "each send confirmed once");
  assert.deepEqual(web.rec.all("onMessageSendError"), []);
  // The session was resumed, not replaced: nobody saw the web client leave or join again.
  assert.deepEqual(rp.all("onChannelUserLeaved"), []);
  assert.deepEqual(rp.all("onChannelUserJoined"), []);
  assert.deepEqual(rw.all("onChannelJoined").length, 1);
  assert.deepEqual(web.rec.all("onLogout"), []);
  web.session.logout();
  peer.session.logout();
});

test("reconnect gives up after reconnect_count attempts: onLogout(LOGOUT_E_NET)", async () => {
  const dead = await startProxy(server.port);
  const session = Signal("web-test", { url: dead.url }).login(unique("giveup"), "_no_need_token", 2, 30);
  const rec = record(session, ["onLoginSuccess", "onReconnecting", "onLogout", "onError"], "giveup");
  await rec.next("onLoginSuccess");
  await dead.close(); // the proxy is gone: every attempt is refused
  assert.deepEqual(await rec.next("onReconnecting"), [1]);
  assert.deepEqual(await rec.next("onReconnecting"), [2]);
  assert.deepEqual(await rec.next("onLogout"), [102]);
  assert.equal(rec.all("onReconnecting").length, 2);
});
