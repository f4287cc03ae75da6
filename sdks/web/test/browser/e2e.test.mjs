// End to end in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core; no
// browser is downloaded): the demo that beckon-server serves, used by two people in two
// windows, and an app written only from the Web seed's API that loads /sdk/beckon-sig.js
// with a script tag. Screenshots of each step go to target/web-e2e/.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { chromium } from "playwright-core";

import { ROOT, SDK_DIR, startAppServer, startServer, unique } from "../helpers.mjs";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const SHOTS = join(ROOT, "target", "web-e2e");
const STEP_MS = 15_000;

let server;
let browser;
before(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  }
  mkdirSync(SHOTS, { recursive: true });
  server = await startServer();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    // Playwright gives Chromium a fresh temporary --user-data-dir of its own; the flags keep
    // it headless, off the network (there is none here) and quiet.
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

/** A page of its own (own storage), failing the test on any page error. */
async function newPage(errors) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`console: ${m.text()}`);
  });
  return page;
}

const shot = (page, name) => page.screenshot({ path: join(SHOTS, `${name}.png`) });

test("the demo: two people chat, meet in a channel and call each other", async () => {
  const errors = [];
  const alice = await newPage(errors);
  const bob = await newPage(errors);
  const [a, b] = [unique("alice"), unique("bob")];
  const room = unique("lobby");

  await alice.goto(`${server.http}/`);
  await shot(alice, "01-login");
  for (const [page, name] of [
    [alice, a],
    [bob, b],
  ]) {
    if (page !== alice) await page.goto(`${server.http}/`);
    await page.getByLabel("Account", { exact: true }).fill(name);
    await page.getByRole("button", { name: "Log in" }).click();
    await page.locator("#status", { hasText: "online" }).waitFor();
  }

  // Who is online, and a p2p chat.
  await alice.getByLabel("Add a person by account").fill(b);
  await alice.getByRole("button", { name: "Add", exact: true }).click();
  await alice.getByRole("button", { name: `Chat with ${b}, online` }).waitFor();
  await alice.getByLabel("Message", { exact: true }).fill(`Hi ${b}, are you there?`);
  await alice.getByRole("button", { name: "Send" }).click();
  await bob.getByRole("button", { name: new RegExp(`Chat with ${a}`) }).click();
  await bob.locator("#app-view").getByText(`Hi ${b}, are you there?`).waitFor();
  await bob.getByLabel("Message", { exact: true }).fill("Yes! Let's meet in the lobby.");
  await bob.getByRole("button", { name: "Send" }).click();
  await alice.locator("#app-view").getByText("Yes! Let's meet in the lobby.").waitFor();
  await alice.locator("#app-view").getByText("delivered").first().waitFor();
  await shot(alice, "02-p2p-alice");
  await shot(bob, "03-p2p-bob");

  // A channel: members, join/leave events, attributes, messages.
  for (const page of [alice, bob]) {
    await page.getByLabel("Channel name").fill(room);
    await page.getByRole("button", { name: "Join" }).click();
    await page.getByText(`You joined #${room}`).waitFor();
  }
  await alice.locator("#app-view").getByText(`${b} joined`).waitFor();
  await alice.locator("#member-count", { hasText: "2" }).waitFor();
  await alice.getByLabel("Attribute name").fill("topic");
  await alice.getByLabel("Attribute value").fill("Friday release");
  await alice.getByRole("button", { name: "Set", exact: true }).click();
  await bob.locator("#app-view").getByText("topic = Friday release").waitFor();
  await bob.getByLabel("Message", { exact: true }).fill("Hello channel");
  await bob.getByRole("button", { name: "Send" }).click();
  await alice.locator("#app-view").getByText("Hello channel").waitFor();
  await alice.getByLabel("Message", { exact: true }).fill("Welcome, everyone");
  await alice.getByRole("button", { name: "Send" }).click();
  await bob.locator("#app-view").getByText("Welcome, everyone").waitFor();
  await shot(alice, "04-channel-alice");
  await shot(bob, "05-channel-bob");

  // A call: ring, refuse; ring again, accept, end.
  await alice.getByRole("button", { name: new RegExp(`Chat with ${b}`) }).click();
  await alice.getByRole("button", { name: "Call", exact: true }).click();
  await bob.getByRole("button", { name: "Refuse" }).click();
  await alice.locator("#app-view").getByText(`${b} declined the call`).waitFor();
  await alice.getByRole("button", { name: "Call", exact: true }).click();
  await alice.locator("#app-view").getByText(`Ringing ${b}`).waitFor();
  await bob.locator("#app-view").getByText(`${a} is calling you`).waitFor();
  await shot(alice, "06-call-ringing-alice");
  await shot(bob, "07-call-incoming-bob");
  await bob.getByRole("button", { name: "Accept" }).click();
  await alice.locator("#app-view").getByText(`In a call with ${b}`).waitFor();
  await bob.locator("#app-view").getByText(`In a call with ${a}`).waitFor();
  await shot(alice, "08-call-active-alice");
  await bob.getByRole("button", { name: "End call" }).click();
  await alice.locator("#app-view").getByText(`${b} ended the call`).waitFor();
  await bob.locator("#app-view").getByText(`You ended the call with ${a}`).waitFor();
  await shot(alice, "09-call-ended-alice");

  // Leaving the channel shows on the other side.
  await alice.locator("#open-channel").click();
  await bob.getByRole("button", { name: "Leave" }).click();
  await alice.locator("#app-view").getByText(`${b} left`).waitFor();
  await alice.locator("#member-count", { hasText: "1" }).waitFor();
  assert.deepEqual(errors, []);
  await alice.context().close();
  await bob.context().close();
});

test("an app written from the Web seed's API runs in Chromium; the p2p round trip", async () => {
  const errors = [];
  const html = readFileSync(join(SDK_DIR, "test", "browser", "seed-app.html"), "utf8");
  // The app's own web server serves its page and passes the rest — the SDK script and the
  // WebSocket — through to beckon-server, so the SDK finds the server at the page's origin.
  const site = await startAppServer(server.port, { "/seed-app.html": html });
  const open = async () => {
    const page = await newPage(errors);
    await page.goto(`${site.origin}/seed-app.html`);
    return page;
  };
  const alice = await open();
  const bob = await open();
  const [a, b] = [unique("seed-a"), unique("seed-b")];
  const room = unique("seed-room");

  /** Waits until the page recorded an event `name` (whose args satisfy `pred`); returns its args. */
  const seen = async (page, name, pred = "true") => {
    const handle = await page.waitForFunction(
      ([n, p]) => {
        const e = events.find((x) => x.name === n && new Function("args", `return ${p}`)(x.args));
        return e ? e.args : undefined;
      },
      [name, pred],
      { timeout: STEP_MS },
    ).catch(async (e) => {
      const log = await page.evaluate(() => JSON.stringify(events)).catch(() => "?");
      throw new Error(`no ${name}: ${e.message}\nevents: ${log}\nerrors: ${errors.join("; ")}`);
    });
    return handle.jsonValue();
  };

  assert.match(await alice.evaluate(() => app.version()), /^\d+\.\d+\.\d+$/);
  // Read in the same turn as the call: by the next round trip the login may be done already.
  assert.equal(await alice.evaluate((n) => (app.login(n), app.status()), a), 1);
  await bob.evaluate((n) => app.login(n), b);
  const [uid] = await seen(alice, "onLoginSuccess");
  assert.equal(typeof uid, "number");
  await seen(bob, "onLoginSuccess");
  assert.equal(await alice.evaluate(() => app.status()), 2);

  // p2p
  await alice.evaluate((p) => app.send(p, "hello from a seed app"), b);
  assert.deepEqual(await seen(bob, "onMessageInstantReceive"), [a, 0, "hello from a seed app"]);
  await seen(alice, "sent");

  // invoke: parsed results, numbers as numbers
  await alice.evaluate((p) => app.invoke("io.agora.signal.user_query_user_status", { account: p }), b);
  assert.deepEqual(await seen(alice, "invoked"), [null, { status: 1 }]);

  // channels and attributes
  await alice.evaluate((r) => app.join(r), room);
  await seen(alice, "onChannelJoined");
  await bob.evaluate((r) => app.join(r), room);
  assert.deepEqual(await seen(bob, "onChannelUserList"), [
    [
      [a, 0],
      [b, 0],
    ],
  ]);
  assert.deepEqual(await seen(alice, "onChannelUserJoined"), [b, 0]);
  await alice.evaluate(() => app.setAttr("topic", "seed"));
  assert.deepEqual(await seen(bob, "onChannelAttrUpdated", "args[2] === 'update'"), ["topic", "seed", "update"]);
  await seen(alice, "attrSet");
  await bob.evaluate(() => app.delAttr("topic"));
  assert.deepEqual(await seen(alice, "onChannelAttrUpdated", "args[2] === 'del'"), ["topic", "", "del"]);
  await alice.evaluate(() => app.clearAttr());
  await seen(bob, "onChannelAttrUpdated", "args[2] === 'clear'");
  await bob.evaluate(() => app.channelSend("hi channel"));
  assert.deepEqual(await seen(alice, "onMessageChannelReceive"), [b, 0, "hi channel"]);
  await seen(bob, "channelSent");

  // calls
  assert.deepEqual(await alice.evaluate(([r, p]) => app.invite(r, p, '{"k":1}'), [room, b]), [room, b]);
  assert.deepEqual(await seen(bob, "onInviteReceived"), [room, a]);
  await seen(alice, "outgoing.onInviteReceivedByPeer");
  await bob.evaluate(() => app.accept(0));
  await seen(alice, "outgoing.onInviteAcceptedByPeer");
  await alice.evaluate(() => app.dtmf(0, "123#"));
  assert.deepEqual((await seen(bob, "incoming.onInviteMsg")).slice(1), ["DTMF", "123#"]);
  await alice.evaluate(() => app.end(0));
  await seen(alice, "outgoing.onInviteEndByMyself");
  await seen(bob, "incoming.onInviteEndByPeer");

  await shot(bob, "10-seed-app");

  // leave and logout
  await bob.evaluate(() => app.leave());
  assert.deepEqual(await seen(bob, "onChannelLeaved"), [602]);
  await seen(bob, "left");
  assert.deepEqual(await seen(alice, "onChannelUserLeaved"), [b, 0]);
  await alice.evaluate(() => app.logout());
  assert.deepEqual(await seen(alice, "onLogout"), [101]);
  assert.equal(await alice.evaluate(() => app.status()), 0);
  assert.deepEqual(errors, []);
  await site.close();
});

test("the browser-to-browser p2p round trip through beckon-server", async () => {
  const errors = [];
  // Two pages at the server's own origin (its demo page, which loads the SDK); each runs a
  // session of its own through the SDK's global Signal.
  const pages = [];
  for (const name of [unique("rtt-a"), unique("rtt-b")]) {
    const page = await newPage(errors);
    await page.goto(`${server.http}/`);
    await page.evaluate(
      (account) =>
        new Promise((resolve, reject) => {
          const s = Signal("rtt").login(account, "_no_need_token");
          window.rtt = { session: s, account };
          s.onLoginSuccess = () => resolve();
          s.onLoginFailed = (e) => reject(new Error(`login failed: ${e}`));
          // The echo side: "ping n" comes back as "pong n".
          s.onMessageInstantReceive = (from, uid, msg) => {
            if (msg.startsWith("ping ")) s.messageInstantSend(from, `pong ${msg.slice(5)}`);
          };
        }),
      name,
    );
    pages.push([page, name]);
  }
  const [[alice], [, b]] = pages;
  // Sequential round trips, each timed with performance.now() in the sending page; the first
  // 20 warm up and are not counted.
  const times = await alice.evaluate(
    ([peer, n]) =>
      new Promise((resolve) => {
        const s = window.rtt.session;
        const times = [];
        let i = 0;
        let start = 0;
        const next = () => {
          start = performance.now();
          s.messageInstantSend(peer, `ping ${i}`);
        };
        s.onMessageInstantReceive = (from, uid, msg) => {
          if (msg !== `pong ${i}`) return;
          times.push(performance.now() - start);
          i += 1;
          if (i === n) resolve(times);
          else next();
        };
        next();
      }),
    [b, 1020],
  );
  const sorted = times.slice(20).sort((x, y) => x - y);
  const pct = (q) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
  const rtt = {
    what:
      "browser-to-browser p2p round trip: page A sends 'ping n', page B answers 'pong n' from its " +
      "onMessageInstantReceive; timed with performance.now() in page A; one at a time; both " +
      "pages in one headless Chromium, connected over ws:// to a debug beckon-server on loopback",
    samples: sorted.length,
    median_ms: Number(pct(0.5).toFixed(2)),
    p99_ms: Number(pct(0.99).toFixed(2)),
    max_ms: Number(sorted.at(-1).toFixed(2)),
  };
  writeFileSync(join(SHOTS, "rtt.json"), `${JSON.stringify(rtt, null, 2)}\n`);
  console.log(`# p2p round trip: median ${rtt.median_ms} ms, p99 ${rtt.p99_ms} ms over ${rtt.samples}`);
  assert.equal(sorted.length, 1000);
  assert.deepEqual(errors, []);
  for (const [page] of pages) await page.context().close();
});
