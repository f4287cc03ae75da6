// The Beckon demo: log in, see who is online, chat one to one, meet in a channel (members,
// join/leave events, attributes) and call each other. Written only against the Web SDK's API
// (the global `Signal` of /sdk/beckon-sig.js); plain DOM, no framework.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const PRESENCE_EVERY_MS = 5000;
  const CONTACTS_KEY = "beckon-demo-contacts";

  const state = {
    signal: null,
    session: null,
    me: "",
    people: new Map(), // account -> { online: bool, unread: number }
    convos: new Map(), // "p2p:bob" | "channel:room" -> { items: [] }
    current: "",
    channel: null,
    members: [],
    attrs: new Map(),
    call: null, // { call, role: "caller"|"callee", phase, started }
    presenceTimer: 0,
    callTimer: 0,
  };

  // ---- helpers ---------------------------------------------------------------------------------

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  const PALETTE = ["#4338ca", "#0f766e", "#b45309", "#be185d", "#1d4ed8", "#7c3aed", "#15803d", "#c2410c"];
  function avatar(name, small) {
    const a = el("span", "avatar" + (small ? " small" : ""), (name[0] || "?").toUpperCase());
    let h = 0;
    for (const c of name) h = (h * 31 + c.codePointAt(0)) >>> 0;
    a.style.background = PALETTE[h % PALETTE.length];
    a.setAttribute("aria-hidden", "true");
    return a;
  }

  function time() {
    return new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function log(text) {
    const li = el("li", "", `${new Date().toLocaleTimeString()}  ${text}`);
    $("log").append(li);
    while ($("log").children.length > 200) $("log").firstChild.remove();
    li.scrollIntoView({ block: "nearest" });
  }

  const CODE_NAMES = {};
  for (const [name, code] of Object.entries(Signal.Codes || {})) CODE_NAMES[code] = name;
  const codeText = (code) => (CODE_NAMES[code] ? `${CODE_NAMES[code]} (${code})` : String(code));

  // ---- conversations ---------------------------------------------------------------------------

  function convo(key) {
    let c = state.convos.get(key);
    if (!c) {
      c = { items: [] };
      state.convos.set(key, c);
    }
    return c;
  }

  function addItem(key, item) {
    convo(key).items.push(item);
    if (key === state.current) renderMessages();
    else if (key.startsWith("p2p:")) {
      const p = person(key.slice(4));
      p.unread += 1;
      renderPeople();
    }
    return item;
  }

  function select(key) {
    state.current = key;
    if (key.startsWith("p2p:")) person(key.slice(4)).unread = 0;
    renderPeople();
    renderHead();
    renderMessages();
    $("message-input").focus();
  }

  function renderHead() {
    const key = state.current;
    const input = $("message-input");
    const send = $("send-button");
    if (!key) {
      $("conv-title").textContent = "No conversation";
      $("conv-sub").textContent = "";
      $("call-button").hidden = true;
      input.disabled = send.disabled = true;
      input.placeholder = "Pick a person or join a channel";
      return;
    }
    const [kind, name] = [key.slice(0, key.indexOf(":")), key.slice(key.indexOf(":") + 1)];
    input.disabled = send.disabled = false;
    if (kind === "p2p") {
      const p = person(name);
      $("conv-title").textContent = name;
      $("conv-sub").textContent = p.online ? "online" : "offline";
      $("call-button").hidden = false;
      $("call-button").disabled = !!state.call;
      input.placeholder = `Message ${name}`;
    } else {
      $("conv-title").textContent = `# ${name}`;
      $("conv-sub").textContent = `${state.members.length} member${state.members.length === 1 ? "" : "s"}`;
      $("call-button").hidden = true;
      input.placeholder = `Message #${name}`;
    }
  }

  function renderMessages() {
    const list = $("messages");
    list.replaceChildren();
    const items = state.current ? convo(state.current).items : [];
    if (items.length === 0) {
      const li = el("li", "empty");
      li.textContent = state.current
        ? "No messages yet. Say hello!"
        : "Pick a person on the left, or join a channel on the right.";
      list.append(li);
      return;
    }
    for (const m of items) {
      if (m.system) {
        list.append(el("li", "system", m.text));
        continue;
      }
      const li = el("li", "msg" + (m.mine ? " mine" : "") + (m.failed ? " failed" : ""));
      li.append(avatar(m.from, true));
      const body = el("div");
      const meta = el("div", "meta", `${m.mine ? "You" : m.from} · ${m.at}`);
      if (m.mine && m.p2p) {
        const tick = el("span", "tick", m.failed ? " · failed" : m.delivered ? " · delivered" : " · sending…");
        meta.append(tick);
      }
      body.append(meta, el("div", "bubble", m.text));
      li.append(body);
      list.append(li);
    }
    list.scrollTop = list.scrollHeight;
  }

  // ---- people and presence ---------------------------------------------------------------------

  function person(name) {
    let p = state.people.get(name);
    if (!p) {
      p = { online: false, unread: 0 };
      state.people.set(name, p);
      saveContacts();
    }
    return p;
  }

  function saveContacts() {
    try {
      localStorage.setItem(`${CONTACTS_KEY}:${state.me}`, JSON.stringify([...state.people.keys()]));
    } catch {
      // Storage may be off (private mode): contacts then last for this visit only.
    }
  }

  function loadContacts() {
    try {
      for (const n of JSON.parse(localStorage.getItem(`${CONTACTS_KEY}:${state.me}`) || "[]")) {
        if (typeof n === "string" && n !== state.me) person(n);
      }
    } catch {
      // As in saveContacts.
    }
  }

  function renderPeople() {
    const list = $("people");
    list.replaceChildren();
    const names = [...state.people.keys()].sort((a, b) => {
      const d = Number(state.people.get(b).online) - Number(state.people.get(a).online);
      return d || a.localeCompare(b);
    });
    for (const name of names) {
      const p = state.people.get(name);
      const li = el("li", "person" + (state.current === `p2p:${name}` ? " selected" : ""));
      const open = el("button", "open");
      open.type = "button";
      open.setAttribute("aria-label", `Chat with ${name}, ${p.online ? "online" : "offline"}`);
      const av = avatar(name);
      av.append(el("span", "dot" + (p.online ? " online" : "")));
      const who = el("span", "who");
      who.append(el("span", "name", name), el("span", "state" + (p.online ? " online" : ""), p.online ? "online" : "offline"));
      open.append(av, who);
      open.addEventListener("click", () => select(`p2p:${name}`));
      li.append(open);
      if (p.unread > 0) li.append(el("span", "badge", String(p.unread)));
      list.append(li);
    }
    $("people-hint").hidden = names.length > 0;
  }

  /** Who is online: one `user_query_user_status` per person, every few seconds. */
  function refreshPresence() {
    const s = state.session;
    if (!s || state.signal.getStatus() !== 2) return;
    for (const name of state.people.keys()) {
      s.invoke("io.agora.signal.user_query_user_status", { account: name }, (err, res) => {
        if (err) return;
        const p = state.people.get(name);
        const online = res.status === 1;
        if (p && p.online !== online) {
          p.online = online;
          log(`${name} is ${online ? "online" : "offline"}`);
          renderPeople();
          if (state.current === `p2p:${name}`) renderHead();
        }
      });
    }
  }

  // ---- channel ---------------------------------------------------------------------------------

  function renderChannel() {
    const ch = state.channel;
    $("channel-box").hidden = !ch;
    $("join-form").hidden = !!ch;
    if (!ch) return;
    $("open-channel").textContent = `# ${ch.name}`;
    $("member-count").textContent = String(state.members.length);
    const members = $("members");
    members.replaceChildren();
    for (const m of state.members) {
      const li = el("li");
      li.append(avatar(m, true), el("span", "", m === state.me ? `${m} (you)` : m));
      members.append(li);
    }
    const attrs = $("attrs");
    attrs.replaceChildren();
    for (const [k, v] of [...state.attrs].sort()) {
      const del = el("button", "link del", "Delete");
      del.type = "button";
      del.setAttribute("aria-label", `Delete attribute ${k}`);
      del.addEventListener("click", () => ch.channelDelAttr(k, () => log(`attribute ${k} deleted`)));
      attrs.append(el("dt", "", k), el("dd", "", v), del);
    }
    if (state.attrs.size === 0) attrs.append(el("dd", "muted", "None yet."));
    if (state.current === `channel:${ch.name}`) renderHead();
  }

  function joinChannel(name) {
    const ch = state.session.channelJoin(name);
    const key = `channel:${name}`;
    ch.onChannelJoined = () => {
      state.channel = ch;
      state.members = [];
      state.attrs.clear();
      log(`joined #${ch.name}`);
      addItem(key, { system: true, text: `You joined #${ch.name}` });
      select(key);
      renderChannel();
    };
    ch.onChannelJoinFailed = (ecode) => {
      log(`joining #${name} failed: ${codeText(ecode)}`);
      alertLine(`Could not join #${name}: ${codeText(ecode)}`);
    };
    ch.onChannelUserList = (users) => {
      state.members = users.map((u) => u[0]);
      for (const m of state.members) if (m !== state.me) person(m);
      renderChannel();
      renderPeople();
    };
    ch.onChannelUserJoined = (account) => {
      if (!state.members.includes(account)) state.members.push(account);
      const p = person(account);
      p.online = true;
      addItem(key, { system: true, text: `${account} joined` });
      renderChannel();
      renderPeople();
    };
    ch.onChannelUserLeaved = (account) => {
      state.members = state.members.filter((m) => m !== account);
      addItem(key, { system: true, text: `${account} left` });
      renderChannel();
    };
    ch.onChannelAttrUpdated = (k, v, type) => {
      if (type === "clear") state.attrs.clear();
      else if (type === "del") state.attrs.delete(k);
      else state.attrs.set(k, v);
      const text =
        type === "clear" ? "Attributes cleared" : type === "del" ? `Attribute ${k} deleted` : `${k} = ${v}`;
      addItem(key, { system: true, text });
      renderChannel();
    };
    ch.onMessageChannelReceive = (account, uid, msg) => {
      addItem(key, { from: account, text: msg, mine: account === state.me, at: time() });
    };
    ch.onChannelLeaved = (ecode) => {
      log(`left #${ch.name} (${codeText(ecode)})`);
      addItem(key, { system: true, text: `You left #${ch.name}` });
      if (state.channel === ch) {
        state.channel = null;
        state.members = [];
        state.attrs.clear();
      }
      renderChannel();
    };
  }

  function alertLine(text) {
    if (state.current) addItem(state.current, { system: true, text });
    log(text);
  }

  // ---- calls -----------------------------------------------------------------------------------

  function renderCall() {
    const c = state.call;
    const bar = $("call-bar");
    bar.hidden = !c;
    $("call-button").disabled = !!c;
    if (!c) return;
    const peer = c.call.peer;
    const phases = {
      calling: `Calling ${peer}…`,
      ringing: `Ringing ${peer}…`,
      incoming: `${peer} is calling you`,
      active: `In a call with ${peer}`,
    };
    let text = phases[c.phase] || c.phase;
    if (c.phase === "active" && c.started) {
      const s = Math.floor((Date.now() - c.started) / 1000);
      text += ` · ${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
    }
    $("call-text").textContent = text;
    bar.classList.toggle("ringing", c.phase !== "active");
    $("call-accept").hidden = $("call-refuse").hidden = c.phase !== "incoming";
    $("call-end").hidden = c.phase === "incoming";
  }

  function callEnded(text) {
    const c = state.call;
    if (!c) return;
    clearInterval(state.callTimer);
    state.call = null;
    addItem(`p2p:${c.call.peer}`, { system: true, text });
    log(text);
    renderCall();
    renderHead();
  }

  function track(call, role) {
    state.call = { call, role, phase: role === "caller" ? "calling" : "incoming", started: 0 };
    call.onInviteReceivedByPeer = () => {
      if (state.call && state.call.call === call) state.call.phase = "ringing";
      renderCall();
    };
    call.onInviteAcceptedByPeer = () => {
      state.call.phase = "active";
      state.call.started = Date.now();
      state.callTimer = setInterval(renderCall, 1000);
      addItem(`p2p:${call.peer}`, { system: true, text: `${call.peer} accepted your call` });
      renderCall();
    };
    call.onInviteRefusedByPeer = () => callEnded(`${call.peer} declined the call`);
    call.onInviteFailed = (extra, ecode) => callEnded(`The call to ${call.peer} failed: ${codeText(ecode)}`);
    call.onInviteEndByPeer = () => callEnded(`${call.peer} ended the call`);
    call.onInviteEndByMyself = () => callEnded(`You ended the call with ${call.peer}`);
    renderCall();
  }

  function placeCall(peer) {
    if (state.call) return;
    const channel = `call-${[state.me, peer].sort().join("-")}`;
    const call = state.session.channelInviteUser2(channel, peer, JSON.stringify({ _require_peer_online: 1 }));
    log(`calling ${peer} on ${channel}`);
    track(call, "caller");
  }

  // ---- session ---------------------------------------------------------------------------------

  function setStatus(text, cls) {
    const s = $("status");
    s.textContent = text;
    s.className = "pill" + (cls ? ` ${cls}` : "");
  }

  function login(event) {
    event.preventDefault();
    const account = $("login-account").value.trim();
    const app = $("login-app").value.trim();
    const token = $("login-token").value.trim();
    $("login-error").textContent = "";
    const url = params.get("url");
    state.signal = url ? Signal(app, { url }) : Signal(app);
    const session = state.signal.login(account, token);
    state.session = session;
    state.me = account;
    $("login-button").disabled = true;

    session.onLoginSuccess = (uid) => {
      log(`logged in as ${account} (uid ${uid})`);
      $("login-view").hidden = true;
      $("app-view").hidden = false;
      $("me").hidden = false;
      $("me-name").textContent = account;
      $("me-avatar").replaceWith(Object.assign(avatar(account), { id: "me-avatar" }));
      setStatus("online", "online");
      loadContacts();
      renderPeople();
      renderHead();
      renderMessages();
      refreshPresence();
      state.presenceTimer = setInterval(refreshPresence, PRESENCE_EVERY_MS);
    };
    session.onLoginFailed = (ecode) => {
      $("login-button").disabled = false;
      $("login-error").textContent = `Login failed: ${codeText(ecode)}`;
    };
    session.onLogout = (ecode) => {
      log(`logged out: ${codeText(ecode)}`);
      clearInterval(state.presenceTimer);
      clearInterval(state.callTimer);
      location.reload();
    };
    session.onReconnecting = (n) => setStatus(`reconnecting (${n})`, "busy");
    session.onReconnected = () => setStatus("online", "online");
    session.onError = (evt) => log(`${evt.name}: ${codeText(evt.ecode)} ${evt.desc}`);
    session.onMessageInstantReceive = (account, uid, msg) => {
      const p = person(account);
      p.online = true;
      addItem(`p2p:${account}`, { from: account, text: msg, at: time() });
      renderPeople();
    };
    session.onMessageSendError = (id, ecode) => {
      for (const c of state.convos.values()) {
        for (const m of c.items) if (m.id === id) m.failed = true;
      }
      alertLine(`A message could not be sent: ${codeText(ecode)}`);
      renderMessages();
    };
    session.onInviteReceived = (call) => {
      if (state.call) {
        call.channelInviteRefuse(JSON.stringify({ reason: "busy" }));
        return;
      }
      person(call.peer).online = true;
      log(`${call.peer} is calling (${call.channelName})`);
      track(call, "callee");
      select(`p2p:${call.peer}`);
    };
  }

  function send(event) {
    event.preventDefault();
    const input = $("message-input");
    const text = input.value;
    if (!text.trim() || !state.current) return;
    const key = state.current;
    if (key.startsWith("p2p:")) {
      const peer = key.slice(4);
      const item = { from: state.me, text, mine: true, p2p: true, at: time() };
      addItem(key, item);
      item.id = state.session.messageInstantSend(peer, text, () => {
        item.delivered = true;
        if (state.current === key) renderMessages();
      });
    } else if (state.channel) {
      // Our own channel messages come back like everyone's, in the channel's order.
      state.channel.messageChannelSend(text);
    }
    input.value = "";
  }

  // ---- wiring ----------------------------------------------------------------------------------

  $("login-app").value = params.get("app") || "beckon-demo";
  if (params.get("account")) $("login-account").value = params.get("account");
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", () => state.session && state.session.logout());
  $("composer").addEventListener("submit", send);
  $("contact-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const name = $("contact-input").value.trim();
    if (!name || name === state.me) return;
    person(name);
    $("contact-input").value = "";
    renderPeople();
    refreshPresence();
    select(`p2p:${name}`);
  });
  $("join-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const name = $("channel-input").value.trim();
    if (name) joinChannel(name);
  });
  $("leave-button").addEventListener("click", () => state.channel && state.channel.channelLeave());
  $("open-channel").addEventListener("click", () => state.channel && select(`channel:${state.channel.name}`));
  $("attr-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const k = $("attr-name").value.trim();
    const v = $("attr-value").value;
    if (!state.channel || !k) return;
    state.channel.channelSetAttr(k, v, () => log(`attribute ${k} set`));
    $("attr-name").value = $("attr-value").value = "";
  });
  $("attr-clear").addEventListener("click", () => state.channel && state.channel.channelClearAttr());
  $("call-button").addEventListener("click", () => {
    if (state.current.startsWith("p2p:")) placeCall(state.current.slice(4));
  });
  $("call-accept").addEventListener("click", () => {
    const c = state.call;
    if (!c) return;
    c.call.channelInviteAccept("");
    c.phase = "active";
    c.started = Date.now();
    state.callTimer = setInterval(renderCall, 1000);
    addItem(`p2p:${c.call.peer}`, { system: true, text: `You accepted ${c.call.peer}'s call` });
    renderCall();
  });
  $("call-refuse").addEventListener("click", () => {
    const c = state.call;
    if (!c) return;
    c.call.channelInviteRefuse("");
    callEnded(`You declined ${c.call.peer}'s call`);
  });
  $("call-end").addEventListener("click", () => state.call && state.call.call.channelInviteEnd());
})();
