/**
 * The protocol core: the session protocol of `docs/protocol.md` as a state machine with no
 * sockets, no timers and no clock, mirroring the Rust client core (`beckon-client`).
 *
 * Login and resume (session id, resume secret, last event seq), requests with per-session ids
 * resent after a resume, sequenced events acknowledged cumulatively, heartbeats, the reconnect
 * policy (`backoff.ts`), call bookkeeping and message-id de-duplication all live here. The
 * driver (`transport_websocket.ts`) passes the time into every call and carries out what the
 * core asks for. Methods come in four kinds:
 *
 * - API calls (`login`, `messageInstantSend`, `channelJoin`, …), which validate their
 *   arguments (`validate.ts`), queue work and never block;
 * - inputs from the driver: `handleConnected`, `handleFrame`, `handleDisconnected`,
 *   `handleTimeout`;
 * - outputs, drained after every call in this order: `pollConnection`, `pollTransmit`,
 *   `pollEvent`, then `pollTimeout` to arm the one timer;
 * - getters: `status`, `uid`, `account`, `limits`.
 */
import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";

import { Backoff, DEFAULT_BACKOFF, type BackoffConfig } from "./backoff.js";
import { CallError, Codes } from "./codes.js";
import {
  CallEvent_Kind,
  ClientFrameSchema,
  RequestSchema,
  ServerFrameSchema,
  type Event as WireEvent,
  type LoginFailed,
  type LoginOk,
  type Reply,
} from "./gen/beckon_pb.js";
import type { CallEventKind, CoreEvent, DoneFn, LogLevel, StatusValue } from "./types.js";
import { Status } from "./types.js";
import * as v from "./validate.js";

/** The protocol version this core speaks. */
export const PROTOCOL_VERSION = 1;

/** The SDK's version as `1MMmmppbbb` (sent in the login). Kept equal to package.json's. */
export const SDK_VERSION_STRING = "0.1.0";
export const SDK_VERSION_NUMBER = 1_000_000_000 + 0 * 10_000_000 + 1 * 100_000 + 0 * 1000 + 0;

export interface ClientConfig extends BackoffConfig {
  /** How long an event may wait before it is acknowledged. */
  ackDelayMs: number;
  /** Acknowledge at once when this many events are unacknowledged. */
  ackEvery: number;
  /** How long connecting plus logging in may take before the attempt counts as failed. */
  connectTimeoutMs: number;
  /** Server message ids remembered to drop re-deliveries. */
  dedupWindow: number;
  /** A number in [0, 1): message ids and reconnect jitter. */
  random: () => number;
}

export const DEFAULT_CLIENT_CONFIG: Readonly<ClientConfig> = Object.freeze({
  ...DEFAULT_BACKOFF,
  ackDelayMs: 20,
  ackEvery: 32,
  connectTimeoutMs: 10_000,
  dedupWindow: 4096,
  random: Math.random,
});

/** What the core asks its driver to do with the connection. */
export type ConnectionCommand = "open" | "close";

type Link = "idle" | "connecting" | "handshaking" | "ready";

/** A request's operation, as the fields to encode. */
type Op = NonNullable<MessageInitShape<typeof RequestSchema>["op"]>;

type FrameKind = MessageInitShape<typeof ClientFrameSchema>["kind"];

/** What a request was, for its reply or its failure. */
type Pending =
  | { kind: "instantSend"; messageId: string }
  | { kind: "invoke"; callId: string }
  | { kind: "logout" }
  | { kind: "channelJoin"; channel: string }
  | { kind: "channelLeave"; channel: string }
  | { kind: "channelAttr"; what: string }
  | { kind: "channelSend"; messageId: string }
  | { kind: "invite"; channel: string; account: string; extra: string }
  | { kind: "inviteAnswer"; channel: string; account: string; accept: boolean }
  | { kind: "inviteEnd"; channel: string; account: string; asCaller: boolean }
  | { kind: "inviteDtmf" };

interface PendingRequest {
  id: number;
  op: Op;
  what: Pending;
  sent: boolean;
  done?: DoneFn;
}

/** Where a call stands, as far as this client knows. */
type Phase = "waiting" | "accepted" | "ending";

interface Credentials {
  appId: string;
  account: string;
  token: string;
}

interface SessionInfo {
  id: bigint;
  secret: Uint8Array;
  heartbeatMs: number;
}

const callKey = (channel: string, peer: string, caller: boolean) =>
  `${caller ? "o" : "i"}\u0000${channel}\u0000${peer}`;

const KIND_NAMES: Partial<Record<CallEvent_Kind, CallEventKind>> = {
  [CallEvent_Kind.RECEIVED]: "received",
  [CallEvent_Kind.RECEIVED_BY_PEER]: "receivedByPeer",
  [CallEvent_Kind.ACCEPTED_BY_PEER]: "acceptedByPeer",
  [CallEvent_Kind.REFUSED_BY_PEER]: "refusedByPeer",
  [CallEvent_Kind.FAILED]: "failed",
  [CallEvent_Kind.END_BY_PEER]: "endByPeer",
  [CallEvent_Kind.MSG]: "msg",
};

export class Client {
  private readonly _config: ClientConfig;
  private _statusValue: StatusValue = Status.NOT_LOGGED_IN;
  private _link: Link = "idle";
  private _creds: Credentials | undefined;
  private _session: SessionInfo | undefined;
  private _uidValue = 0;
  private _limitsValue: v.Limits = { ...v.DEFAULT_LIMITS };
  private _nextRequestId = 1;
  private _pending: PendingRequest[] = [];
  private _lastEventSeq = 0n;
  private _ackedSeq = 0n;
  private _ackDeadline: number | undefined;
  private _lastTx = 0;
  private _lastRx = 0;
  private _linkDeadline: number | undefined;
  private _retryAt: number | undefined;
  private _backoff: Backoff | undefined;
  private _loggingOut = false;
  /** Channels joined, in join order; rejoined after a reconnect that got a fresh session. */
  private _joined: string[] = [];
  /** Calls in progress, in the order they began, mirrored from the broker's truth. */
  private _calls = new Map<string, { channel: string; peer: string; caller: boolean; phase: Phase }>();
  private _seen = new Set<bigint>();
  private _seenOrder: bigint[] = [];
  private _messageCounter = 0;
  private _transmits: Uint8Array[] = [];
  private _events: CoreEvent[] = [];
  private _commands: ConnectionCommand[] = [];

  constructor(config: Partial<ClientConfig> = {}) {
    this._config = { ...DEFAULT_CLIENT_CONFIG, ...config };
  }

  // ---- getters --------------------------------------------------------------------------------

  get status(): StatusValue {
    return this._statusValue;
  }

  /** The uid of the logged-in account, 0 when not logged in. */
  get uid(): number {
    return this._uidValue;
  }

  get account(): string | undefined {
    return this._creds?.account;
  }

  /** The limits in force: the server's, once logged in. */
  get limits(): Readonly<v.Limits> {
    return this._limitsValue;
  }

  /** Requests sent or queued that have no reply yet. */
  get pendingRequests(): number {
    return this._pending.length;
  }

  // ---- API ------------------------------------------------------------------------------------

  /**
   * `login(account, token, reconnect_count, reconnect_time)` of the app `appId`. Ignored while
   * logged in or logging in. Non-positive retry values take the defaults.
   */
  login(
    appId: unknown,
    account: unknown,
    token: unknown,
    retryCount: number,
    retryTimeS: number,
    now: number,
  ): void {
    if (this._statusValue !== Status.NOT_LOGGED_IN) {
      this._log("INFO", "login ignored: already logged in or logging in");
      return;
    }
    let creds: Credentials;
    try {
      const app = v.identifier(v.DEFAULT_LIMITS, "App ID", appId);
      const acct = v.account(this._limitsValue, "account", account);
      const tok = v.text("token", token);
      if (tok === "") {
        throw new CallError(
          Codes.GENERAL_E_WRONG_PARAM,
          "token must not be empty (use _no_need_token where the app allows it)",
        );
      }
      creds = { appId: app, account: acct, token: tok };
    } catch (e) {
      const err = asCallError(e);
      this._events.push({ type: "loginFailed", ecode: err.code });
      this._error("login", err);
      return;
    }
    this._creds = creds;
    this._session = undefined;
    this._statusValue = Status.LOGGING_IN;
    this._backoff = new Backoff(
      this._config,
      retryCount > 0 ? Math.floor(retryCount) : 10,
      (retryTimeS > 0 ? retryTimeS : 30) * 1000,
      this._config.random,
    );
    this._backoff.start(now);
    this._open(now);
  }

  /**
   * `logout()`: ends the session; `onLogout(LOGOUT_E_USER)` follows. During a login it cancels
   * the login (`onLoginFailed(LOGIN_E_CANCEL)`).
   */
  logout(now: number): void {
    switch (this._statusValue) {
      case Status.NOT_LOGGED_IN:
        this._error("logout", new CallError(Codes.LOGOUT_E_ALREADY_LOGOUT, "not logged in"));
        return;
      case Status.LOGGING_IN:
        this._closeLink();
        this._finish({ type: "loginFailed", ecode: Codes.LOGIN_E_CANCEL });
        return;
      case Status.RECONNECTING:
        this._closeLink();
        this._finish({ type: "logout", ecode: Codes.LOGOUT_E_USER });
        return;
      case Status.LOGGED_IN:
        if (this._loggingOut) return;
        this._loggingOut = true;
        this._ackNow(now);
        this._request({ case: "logout", value: {} }, { kind: "logout" }, now);
        return;
    }
  }

  /**
   * `messageInstantSend(peer, msg)`: returns the message id (generated when `msgId` is empty).
   * `onMessageSendSuccess`/`onMessageSendError` events follow with it.
   */
  messageInstantSend(peer: unknown, msg: unknown, msgId: unknown, now: number, done?: DoneFn): string {
    let messageId = typeof msgId === "string" && msgId !== "" ? msgId : "";
    try {
      this._loggedIn();
      const account = v.account(this._limitsValue, "peer", peer);
      const body = v.message(this._limitsValue, "msg", msg);
      messageId = v.id(this._limitsValue, "msgID", msgId) || this._generateMessageId();
      this._request(
        { case: "sendInstantMessage", value: { account, msg: body, msgId: messageId } },
        { kind: "instantSend", messageId },
        now,
        done,
      );
    } catch (e) {
      const err = asCallError(e);
      this._events.push({ type: "messageSendError", messageId, ecode: err.code });
      this._error("messageInstantSend", err);
      this._doneNow(done, err);
    }
    return messageId;
  }

  /** `invoke(func, args)`: `done` gets the response JSON (or the error code and message). */
  invoke(func: unknown, req: unknown, callId: string, now: number, done: DoneFn): void {
    try {
      this._loggedIn();
      const name = v.text("func", func);
      if (name === "") throw new CallError(Codes.GENERAL_E_WRONG_PARAM, "func must not be empty");
      const body = v.message(this._limitsValue, "args", req);
      this._request(
        { case: "invoke", value: { name, req: body, callId } },
        { kind: "invoke", callId },
        now,
        done,
      );
    } catch (e) {
      const err = asCallError(e);
      this._error("invoke", err);
      this._doneNow(done, err);
    }
  }

  /** Channels this client is in, in join order. */
  get joinedChannels(): readonly string[] {
    return this._joined;
  }

  /**
   * `channelJoin(channelID)`: `channelJoined`, `channelUserList`, attributes follow. `raw` is
   * what the app passed (validated), `channel` the name its events carry.
   */
  channelJoin(channel: string, now: number, raw: unknown = channel): void {
    try {
      this._loggedIn();
      v.channel(this._limitsValue, "channelID", raw);
      this._request(
        { case: "channelJoin", value: { channel } },
        { kind: "channelJoin", channel },
        now,
      );
    } catch (e) {
      const err = asCallError(e);
      this._events.push({ type: "channelJoinFailed", channel, ecode: err.code });
      this._error("channelJoin", err);
    }
  }

  /** `channelLeave()`. */
  channelLeave(channel: string, now: number, done?: DoneFn): void {
    this._checked("channelLeave", done, () => {
      v.channel(this._limitsValue, "channelID", channel);
      this._request(
        { case: "channelLeave", value: { channel } },
        { kind: "channelLeave", channel },
        now,
        done,
      );
    });
  }

  /** `channelSetAttr(k, v)`. */
  channelSetAttr(channel: string, name: unknown, value: unknown, now: number, done?: DoneFn): void {
    this._checked("channelSetAttr", done, () => {
      v.channel(this._limitsValue, "channelID", channel);
      const n = v.attrName(this._limitsValue, "k", name);
      const val = v.channelAttrValue(this._limitsValue, "v", value);
      this._request(
        { case: "channelSetAttr", value: { channel, name: n, value: val } },
        { kind: "channelAttr", what: "channelSetAttr" },
        now,
        done,
      );
    });
  }

  /** `channelDelAttr(k)`. */
  channelDelAttr(channel: string, name: unknown, now: number, done?: DoneFn): void {
    this._checked("channelDelAttr", done, () => {
      v.channel(this._limitsValue, "channelID", channel);
      const n = v.attrName(this._limitsValue, "k", name);
      this._request(
        { case: "channelDelAttr", value: { channel, name: n } },
        { kind: "channelAttr", what: "channelDelAttr" },
        now,
        done,
      );
    });
  }

  /** `channelClearAttr()`. */
  channelClearAttr(channel: string, now: number, done?: DoneFn): void {
    this._checked("channelClearAttr", done, () => {
      v.channel(this._limitsValue, "channelID", channel);
      this._request(
        { case: "channelClearAttr", value: { channel } },
        { kind: "channelAttr", what: "channelClearAttr" },
        now,
        done,
      );
    });
  }

  /** `messageChannelSend(msg)`: returns the message id. */
  messageChannelSend(channel: string, msg: unknown, msgId: unknown, now: number, done?: DoneFn): string {
    let messageId = typeof msgId === "string" && msgId !== "" ? msgId : "";
    try {
      this._loggedIn();
      v.channel(this._limitsValue, "channelID", channel);
      const body = v.message(this._limitsValue, "msg", msg);
      messageId = v.id(this._limitsValue, "msgID", msgId) || this._generateMessageId();
      this._request(
        { case: "sendChannelMessage", value: { channel, msg: body, msgId: messageId, force: false } },
        { kind: "channelSend", messageId },
        now,
        done,
      );
    } catch (e) {
      const err = asCallError(e);
      this._events.push({ type: "messageSendError", messageId, ecode: err.code });
      this._error("messageChannelSend", err);
      this._doneNow(done, err);
    }
    return messageId;
  }

  /**
   * `channelInviteUser2(channelID, peer, extra)`: true when the invitation is on its way. A
   * local rejection calls `failed` (with the code, and `extra` as its result) before `onError`,
   * so the object model reports it on the call object it returned rather than on a call in
   * progress under the same name.
   */
  channelInviteUser2(channel: unknown, peer: unknown, extra: unknown, now: number, failed: DoneFn): boolean {
    let ex = typeof extra === "string" ? extra : "";
    try {
      this._loggedIn();
      const ch = v.channel(this._limitsValue, "channelID", channel);
      const acct = v.account(this._limitsValue, "peer", peer);
      ex = v.extra(this._limitsValue, "extra", extra);
      if (acct === this.account) {
        throw new CallError(Codes.GENERAL_E_WRONG_PARAM, "a user cannot invite itself");
      }
      // A call still being ended counts too: its end callback has not come yet.
      if (this._calls.has(callKey(ch, acct, true))) {
        throw new CallError(Codes.INVITE_E_REINVITE, `${acct} is already invited to ${ch}`);
      }
      this._setCall(ch, acct, true, "waiting");
      this._request(
        { case: "invite", value: { channel: ch, account: acct, extra: ex } },
        { kind: "invite", channel: ch, account: acct, extra: ex },
        now,
      );
      return true;
    } catch (e) {
      const err = asCallError(e);
      this._events.push({ type: "done", done: failed, ecode: err.code, desc: err.message, result: ex });
      this._error("channelInviteUser2", err);
      return false;
    }
  }

  /** `call.channelInviteAccept(extra)` / `call.channelInviteRefuse(extra)` of a received call. */
  channelInviteAnswer(channel: string, caller: string, extra: unknown, accept: boolean, now: number): void {
    const what = accept ? "channelInviteAccept" : "channelInviteRefuse";
    try {
      this._loggedIn();
      const ex = v.extra(this._limitsValue, "extra", extra);
      if (this._calls.get(callKey(channel, caller, false))?.phase !== "waiting") {
        throw noInvitation(channel, caller);
      }
      this._setCall(channel, caller, false, accept ? "accepted" : undefined);
      const value = { channel, account: caller, extra: ex };
      this._request(
        accept ? { case: "inviteAccept", value } : { case: "inviteRefuse", value },
        { kind: "inviteAnswer", channel, account: caller, accept },
        now,
      );
    } catch (e) {
      this._error(what, asCallError(e));
    }
  }

  /** `call.channelInviteEnd()`, by either side, before or after acceptance. */
  channelInviteEnd(channel: string, peer: string, asCaller: boolean, now: number): void {
    try {
      this._loggedIn();
      const phase = this._calls.get(callKey(channel, peer, asCaller))?.phase;
      if (phase === undefined || phase === "ending") throw noInvitation(channel, peer);
      this._setCall(channel, peer, asCaller, "ending");
      this._request(
        { case: "inviteEnd", value: { channel, account: peer, asCaller } },
        { kind: "inviteEnd", channel, account: peer, asCaller },
        now,
      );
    } catch (e) {
      this._error("channelInviteEnd", asCallError(e));
    }
  }

  /** `call.channelInviteDTMF(dtmf)`: digits `[0-9*#]` to the other side. */
  channelInviteDTMF(channel: string, peer: string, asCaller: boolean, dtmf: unknown, now: number): void {
    try {
      this._loggedIn();
      const digits = v.dtmf("dtmf", dtmf);
      const phase = this._calls.get(callKey(channel, peer, asCaller))?.phase;
      if (phase === undefined || phase === "ending") throw noInvitation(channel, peer);
      this._request(
        { case: "inviteDtmf", value: { channel, account: peer, dtmf: digits, asCaller } },
        { kind: "inviteDtmf" },
        now,
      );
    } catch (e) {
      this._error("channelInviteDTMF", asCallError(e));
    }
  }

  // ---- driver inputs --------------------------------------------------------------------------

  /** The connection asked for by `open` is up. */
  handleConnected(now: number): void {
    if (this._link !== "connecting" || !this._creds) return;
    const s = this._session;
    this._link = "handshaking";
    this._lastRx = now;
    this._transmit(
      {
        case: "login",
        value: {
          appId: this._creds.appId,
          account: this._creds.account,
          token: this._creds.token,
          sdkVersion: SDK_VERSION_NUMBER,
          deviceId: "",
          resume: s ? { sessionId: s.id, secret: s.secret, lastEventSeq: this._lastEventSeq } : undefined,
          protocolVersion: PROTOCOL_VERSION,
        },
      },
      now,
    );
  }

  /** The connection failed to open, or broke. */
  handleDisconnected(now: number): void {
    if (this._link === "idle") return;
    this._link = "idle";
    this._linkDeadline = undefined;
    this._ackDeadline = undefined;
    this._transmits = [];
    this._linkLost(now);
  }

  /** One whole frame from the server. */
  handleFrame(payload: Uint8Array, now: number): void {
    if (this._link !== "handshaking" && this._link !== "ready") return;
    this._lastRx = now;
    let frame;
    try {
      frame = fromBinary(ServerFrameSchema, payload);
    } catch (e) {
      this._log("WARNING", `dropping the connection: undecodable frame: ${(e as Error).message}`);
      this._dropLink(now);
      return;
    }
    const k = frame.kind;
    if (k.case === "loginOk" && this._link === "handshaking") {
      this._loggedInOk(k.value, now);
    } else if (k.case === "loginFailed" && this._link === "handshaking") {
      this._loginRefused(k.value, now);
    } else if (k.case === "event" && this._link === "ready") {
      this._handleEvent(k.value, now);
    } else if (k.case === "ping") {
      this._transmit({ case: "pong", value: { nonce: k.value.nonce } }, now);
    } else if (k.case === "pong") {
      // Its arrival already counted as a sign of life.
    } else if (k.case === "kick") {
      this._log("WARNING", `kicked by the server: ${k.value.message}`);
      this._closeLink();
      this._finish({ type: "logout", ecode: k.value.code === 0 ? Codes.LOGOUT_E_OTHER : k.value.code });
    } else if (k.case === "goAway") {
      this._log("INFO", `server going away: ${k.value.message}`);
      this._closeLink();
      this._linkLost(now);
      if (this._retryAt !== undefined) {
        this._retryAt = Math.max(this._retryAt, now + k.value.reconnectAfterMs);
      }
    } else {
      this._log("WARNING", `dropping the connection: unexpected ${k.case ?? "empty"} frame`);
      this._dropLink(now);
    }
  }

  /** Runs whatever timer is due. */
  handleTimeout(now: number): void {
    if (this._retryAt !== undefined && this._retryAt <= now) {
      this._retryAt = undefined;
      this._open(now);
    }
    if (this._linkDeadline !== undefined && this._linkDeadline <= now) {
      this._log("WARNING", "connecting took too long");
      this._dropLink(now);
    }
    if (this._link === "ready") {
      if (this._ackDeadline !== undefined && this._ackDeadline <= now) this._ackNow(now);
      const hb = this._session?.heartbeatMs;
      if (hb !== undefined) {
        if (now - this._lastRx >= hb * 3) {
          this._log("WARNING", "no word from the server within three heartbeats");
          this._dropLink(now);
        } else if (now - this._lastTx >= hb) {
          this._transmit({ case: "ping", value: { nonce: 0n } }, now);
        }
      }
    }
  }

  // ---- outputs --------------------------------------------------------------------------------

  pollConnection(): ConnectionCommand | undefined {
    return this._commands.shift();
  }

  /** The next frame to send: one WebSocket binary message. */
  pollTransmit(): Uint8Array | undefined {
    return this._transmits.shift();
  }

  pollEvent(): CoreEvent | undefined {
    return this._events.shift();
  }

  /** When `handleTimeout` should next run, if ever. */
  pollTimeout(): number | undefined {
    let t: number | undefined;
    for (const x of [this._retryAt, this._linkDeadline, this._ackDeadline]) {
      if (x !== undefined && (t === undefined || x < t)) t = x;
    }
    const hb = this._session?.heartbeatMs;
    if (this._link === "ready" && hb !== undefined) {
      const at = Math.min(this._lastTx + hb, this._lastRx + hb * 3);
      if (t === undefined || at < t) t = at;
    }
    return t;
  }

  // ---- internals ------------------------------------------------------------------------------

  private _loggedIn(): void {
    const s = this._statusValue;
    if ((s === Status.LOGGED_IN || s === Status.RECONNECTING) && !this._loggingOut) return;
    throw new CallError(Codes.GENERAL_E_NOT_LOGIN, "not logged in");
  }

  /** Runs `f` after the login check; a rejection goes to `onError` and to `done`. */
  private _checked(name: string, done: DoneFn | undefined, f: () => void): void {
    try {
      this._loggedIn();
      f();
    } catch (e) {
      const err = asCallError(e);
      this._error(name, err);
      this._doneNow(done, err);
    }
  }

  private _doneNow(done: DoneFn | undefined, err: CallError): void {
    if (done) this._events.push({ type: "done", done, ecode: err.code, desc: err.message });
  }

  private _request(op: Op, what: Pending, now: number, done?: DoneFn): void {
    const p: PendingRequest = { id: this._nextRequestId++, op, what, sent: false, done };
    if (this._link === "ready") {
      p.sent = true;
      this._transmit({ case: "request", value: { id: BigInt(p.id), op } }, now);
    }
    this._pending.push(p);
  }

  private _transmit(kind: FrameKind, now: number): void {
    this._lastTx = now;
    this._transmits.push(toBinary(ClientFrameSchema, create(ClientFrameSchema, { kind })));
  }

  private _ackNow(now: number): void {
    this._ackDeadline = undefined;
    if (this._lastEventSeq > this._ackedSeq && this._link === "ready") {
      this._ackedSeq = this._lastEventSeq;
      this._transmit({ case: "ack", value: { upTo: this._lastEventSeq } }, now);
    }
  }

  private _open(now: number): void {
    this._link = "connecting";
    this._linkDeadline = now + this._config.connectTimeoutMs;
    this._commands.push("open");
  }

  private _closeLink(): void {
    if (this._link !== "idle") this._commands.push("close");
    this._link = "idle";
    this._linkDeadline = undefined;
    this._ackDeadline = undefined;
  }

  /** Closes the connection and treats it as lost. */
  private _dropLink(now: number): void {
    this._closeLink();
    this._linkLost(now);
  }

  /** The connection is gone (already marked idle): retry or give up per the login policy. */
  private _linkLost(now: number): void {
    const b = this._backoff;
    switch (this._statusValue) {
      case Status.NOT_LOGGED_IN:
        return;
      case Status.LOGGED_IN:
        if (this._loggingOut) {
          this._finish({ type: "logout", ecode: Codes.LOGOUT_E_USER });
          return;
        }
        this._statusValue = Status.RECONNECTING;
        b?.start(now);
        this._events.push({ type: "reconnecting", nretry: 1 });
        this._retryAt = now + (b?.firstDelay() ?? 0);
        return;
      case Status.LOGGING_IN:
      case Status.RECONNECTING: {
        const delay = b?.next(now);
        if (delay === undefined) {
          this._finish(
            this._statusValue === Status.LOGGING_IN
              ? { type: "loginFailed", ecode: Codes.LOGIN_E_NET }
              : { type: "logout", ecode: Codes.LOGOUT_E_NET },
          );
          return;
        }
        if (this._statusValue === Status.RECONNECTING && b) {
          this._events.push({ type: "reconnecting", nretry: b.attempt });
        }
        this._retryAt = now + delay;
        return;
      }
    }
  }

  private _loggedInOk(ok: LoginOk, now: number): void {
    this._link = "ready";
    this._linkDeadline = undefined;
    if (ok.limits) this._limitsValue = v.limitsFromWire(ok.limits);
    const was = this._statusValue;
    this._uidValue = ok.uid;
    this._session = {
      id: ok.sessionId,
      secret: ok.resumeSecret,
      heartbeatMs: Math.max(ok.heartbeatIntervalMs, 100),
    };
    this._statusValue = Status.LOGGED_IN;
    this._backoff?.reset();
    if (ok.resumeRefused !== "") {
      this._log("INFO", `the session could not be resumed: ${ok.resumeRefused}`);
    }
    if (ok.resumed) {
      // Requests the server applied have their replies in the replayed events; the rest are
      // sent again, in order.
      const applied = Number(ok.lastAppliedRequestId);
      for (const p of this._pending) {
        if (p.id > applied) {
          p.sent = true;
          this._transmit({ case: "request", value: { id: BigInt(p.id), op: p.op } }, now);
        }
      }
    } else {
      // A fresh session: events and request ids start over. Requests that reached the old
      // session may or may not have been applied, so they fail rather than repeat.
      this._lastEventSeq = 0n;
      this._ackedSeq = 0n;
      this._nextRequestId = 1;
      const old = this._pending;
      this._pending = [];
      // Calls lived in the old session; the broker ended them for the other sides.
      this._dropCalls(Codes.INVITE_E_NET);
      if (was === Status.RECONNECTING) {
        // The old session is gone, and with it its channels: join them again.
        for (const channel of this._joined) {
          this._pending.push({
            id: this._nextRequestId++,
            op: { case: "channelJoin", value: { channel } },
            what: { kind: "channelJoin", channel },
            sent: false,
          });
        }
      }
      for (const p of old) {
        if (p.sent) {
          this._failRequest(p, Codes.GENERAL_E_FAILED, "the connection was lost before the server answered");
        } else {
          this._pending.push({ ...p, id: this._nextRequestId++ });
        }
      }
      for (const p of this._pending) {
        p.sent = true;
        this._transmit({ case: "request", value: { id: BigInt(p.id), op: p.op } }, now);
      }
    }
    // The login callback comes before any event of the new session.
    this._events.push(
      was === Status.RECONNECTING ? { type: "reconnected" } : { type: "loginSuccess", uid: ok.uid },
    );
  }

  private _loginRefused(f: LoginFailed, now: number): void {
    this._closeLink();
    if (f.retryAfterMs > 0 && f.code === Codes.GENERAL_E_OVERLOAD && this._backoff) {
      // Admission control: the server is up and asked for a wait, so this attempt is neither
      // failed nor counted; it runs again when the server said.
      this._log("INFO", `the server is busy (${f.message}); logging in again in ${f.retryAfterMs} ms`);
      this._retryAt = now + this._backoff.serverWait(f.retryAfterMs);
      return;
    }
    this._error("login", new CallError(f.code, f.message));
    if (this._statusValue === Status.RECONNECTING) {
      const ecode =
        f.code === Codes.LOGIN_E_TOKENEXPIRED
          ? Codes.LOGOUT_E_TOKENEXPIRED
          : f.code === Codes.LOGIN_E_TOKENWRONG
            ? Codes.LOGOUT_E_TOKENWRONG
            : f.code === Codes.LOGIN_E_OLDVERSION
              ? Codes.LOGOUT_E_OLDVERSION
              : Codes.LOGOUT_E_OTHER;
      this._finish({ type: "logout", ecode });
    } else {
      this._finish({ type: "loginFailed", ecode: f.code });
    }
  }

  private _handleEvent(ev: WireEvent, now: number): void {
    if (ev.seq <= this._lastEventSeq) return; // Replayed after a resume and already applied.
    this._lastEventSeq = ev.seq;
    const b = ev.body;
    switch (b.case) {
      case "reply":
        this._handleReply(b.value, now);
        break;
      case "instantMessage":
        // Re-deliveries (same server message id) are dropped.
        if (this._remember(b.value.serverMsgId)) {
          this._events.push({
            type: "messageInstantReceive",
            account: b.value.sender,
            msg: b.value.msg,
            offline: b.value.offline,
          });
        }
        break;
      case "channelMessage":
        if (this._remember(b.value.serverMsgId)) {
          this._events.push({
            type: "messageChannelReceive",
            channel: b.value.channel,
            account: b.value.sender,
            msg: b.value.msg,
          });
        }
        break;
      case "channelUserJoined":
        this._events.push({ type: "channelUserJoined", channel: b.value.channel, account: b.value.account });
        break;
      case "channelUserLeft":
        this._events.push({ type: "channelUserLeaved", channel: b.value.channel, account: b.value.account });
        break;
      case "channelAttrUpdated":
        this._events.push({
          type: "channelAttrUpdated",
          channel: b.value.channel,
          name: b.value.name,
          value: b.value.value,
          kind: b.value.type,
        });
        break;
      case "channelLeft":
        this._joined = this._joined.filter((c) => c !== b.value.channel);
        this._events.push({ type: "channelLeaved", channel: b.value.channel, ecode: b.value.code });
        break;
      case "call":
        this._handleCallEvent(b.value);
        break;
      default:
        break;
    }
    if (this._statusValue === Status.NOT_LOGGED_IN) return; // The logout reply ended the session.
    if (this._lastEventSeq - this._ackedSeq >= BigInt(this._config.ackEvery)) {
      this._ackNow(now);
    } else if (this._ackDeadline === undefined) {
      this._ackDeadline = now + this._config.ackDelayMs;
    }
  }

  private _handleCallEvent(c: {
    kind: CallEvent_Kind;
    channel: string;
    account: string;
    extra: string;
    code: number;
    msgType: string;
    msgData: string;
    caller: boolean;
  }): void {
    const kind = KIND_NAMES[c.kind];
    const { channel, account, caller } = c;
    if (kind === undefined) {
      this._log("WARNING", "call event of an unknown kind");
      return;
    }
    const phase = this._calls.get(callKey(channel, account, caller))?.phase;
    if (kind !== "received" && phase === undefined) {
      // The call already ended here (we refused or ended it, or it failed): the late event
      // would be a second terminal callback.
      this._log("DEBUG", `dropping a ${kind} event of a finished call with ${account} on ${channel}`);
      return;
    }
    switch (kind) {
      case "received":
        this._setCall(channel, account, false, "waiting");
        break;
      case "acceptedByPeer":
        if (phase === "ending") return; // We are ending it; our end answer closes it.
        this._setCall(channel, account, true, "accepted");
        break;
      case "refusedByPeer":
      case "failed":
        this._setCall(channel, account, true, undefined);
        break;
      case "endByPeer":
        this._setCall(channel, account, caller, undefined);
        break;
      default:
        break;
    }
    this._events.push({
      type: "call",
      kind,
      channel,
      peer: account,
      caller: kind === "received" ? false : caller,
      extra: c.extra,
      ecode: c.code,
      msgType: c.msgType,
      msgData: c.msgData,
    });
  }

  private _callEvent(kind: CallEventKind, channel: string, peer: string, caller: boolean, extra: string, ecode: number): void {
    this._events.push({ type: "call", kind, channel, peer, caller, extra, ecode, msgType: "", msgData: "" });
  }

  private _setCall(channel: string, peer: string, caller: boolean, phase: Phase | undefined): void {
    const key = callKey(channel, peer, caller);
    if (phase === undefined) {
      this._calls.delete(key);
    } else {
      const c = this._calls.get(key);
      if (c) c.phase = phase;
      else this._calls.set(key, { channel, peer, caller, phase });
    }
  }

  /** Ends every call locally when the session they lived in is gone. */
  private _dropCalls(code: number): void {
    const calls = [...this._calls.values()];
    this._calls.clear();
    for (const c of calls) {
      if (c.phase === "ending") this._callEvent("endByMyself", c.channel, c.peer, c.caller, "", 0);
      else if (c.caller && c.phase === "waiting") this._callEvent("failed", c.channel, c.peer, true, "", code);
      else this._callEvent("endByPeer", c.channel, c.peer, c.caller, "", 0);
    }
  }

  /** Records a server message id; false if it was seen before. */
  private _remember(id: bigint): boolean {
    if (this._seen.has(id)) return false;
    this._seen.add(id);
    this._seenOrder.push(id);
    if (this._seenOrder.length > this._config.dedupWindow) {
      this._seen.delete(this._seenOrder.shift()!);
    }
    return true;
  }

  private _handleReply(r: Reply, now: number): void {
    const pos = this._pending.findIndex((p) => BigInt(p.id) === r.requestId);
    if (pos < 0) {
      this._log("DEBUG", `reply to unknown request ${r.requestId}`);
      return;
    }
    const [p] = this._pending.splice(pos, 1);
    if (r.code !== 0) {
      this._failRequest(p, r.code, r.message);
      return;
    }
    const w = p.what;
    const res = r.result;
    let result: string | undefined;
    switch (w.kind) {
      case "instantSend":
      case "channelSend":
        this._events.push({ type: "messageSendSuccess", messageId: w.messageId });
        break;
      case "invoke":
        if (res.case !== "invokeResult") return this._malformed(p, res.case);
        if (res.value.err !== "") {
          const ecode = Number.parseInt(res.value.err, 10);
          this._failRequest(p, Number.isFinite(ecode) ? ecode : Codes.GENERAL_E, res.value.resp, res.value.resp);
          return;
        }
        result = res.value.resp;
        break;
      case "logout":
        this._ackNow(now);
        this._closeLink();
        this._finish({ type: "logout", ecode: Codes.LOGOUT_E_USER });
        return;
      case "channelJoin": {
        if (res.case !== "channelJoined") return this._malformed(p, res.case);
        const j = res.value;
        for (const old of j.left) {
          this._joined = this._joined.filter((c) => c !== old);
          this._events.push({ type: "channelLeaved", channel: old, ecode: Codes.LEAVECHANNEL_E_BYUSER });
        }
        if (!this._joined.includes(j.channel)) this._joined.push(j.channel);
        this._events.push({ type: "channelJoined", channel: j.channel });
        this._events.push({ type: "channelUserList", channel: j.channel, accounts: [...j.accounts] });
        for (const a of j.attrs) {
          this._events.push({
            type: "channelAttrUpdated",
            channel: j.channel,
            name: a.name,
            value: a.value,
            kind: "update",
          });
        }
        break;
      }
      case "channelLeave":
        this._joined = this._joined.filter((c) => c !== w.channel);
        this._events.push({ type: "channelLeaved", channel: w.channel, ecode: Codes.LEAVECHANNEL_E_BYUSER });
        break;
      case "inviteEnd":
        // The broker ended whatever call it had under this key when the request got there.
        this._setCall(w.channel, w.account, w.asCaller, undefined);
        this._callEvent("endByMyself", w.channel, w.account, w.asCaller, "", 0);
        break;
      default:
        break;
    }
    if (p.done) this._events.push({ type: "done", done: p.done, ecode: 0, desc: "", result });
  }

  private _malformed(p: PendingRequest, got: string | undefined): void {
    this._log("WARNING", `malformed reply (${got ?? "no result"}) to ${p.what.kind}`);
    this._failRequest(p, Codes.GENERAL_E_FAILED, "malformed reply from the server");
  }

  /** A request failed with `ecode`: its own failure callback, `onError`, and its `done`. */
  private _failRequest(p: PendingRequest, ecode: number, desc: string, result?: string): void {
    const w = p.what;
    if ((w.kind === "instantSend" || w.kind === "channelSend") && ecode === Codes.GENERAL_E_FAILED) {
      ecode = Codes.SENDMESSAGE_E_TIMEOUT;
    }
    let name: string;
    switch (w.kind) {
      case "instantSend":
        this._events.push({ type: "messageSendError", messageId: w.messageId, ecode });
        name = "messageInstantSend";
        break;
      case "channelSend":
        this._events.push({ type: "messageSendError", messageId: w.messageId, ecode });
        name = "messageChannelSend";
        break;
      case "invoke":
        name = "invoke";
        break;
      case "logout":
        name = "logout";
        break;
      case "channelJoin":
        this._events.push({ type: "channelJoinFailed", channel: w.channel, ecode });
        name = "channelJoin";
        break;
      case "channelLeave":
        name = "channelLeave";
        break;
      case "channelAttr":
        name = w.what;
        break;
      case "invite":
        // A re-invitation fails without touching the call already in progress.
        if (ecode !== Codes.INVITE_E_REINVITE && this._calls.has(callKey(w.channel, w.account, true))) {
          this._setCall(w.channel, w.account, true, undefined);
        }
        this._callEvent("failed", w.channel, w.account, true, w.extra, ecode);
        name = "channelInviteUser2";
        break;
      case "inviteAnswer":
        // The broker had no such ringing call: it ended meanwhile.
        if (w.accept && this._calls.get(callKey(w.channel, w.account, false))?.phase === "accepted") {
          this._setCall(w.channel, w.account, false, undefined);
          this._callEvent("endByPeer", w.channel, w.account, false, "", 0);
        }
        name = w.accept ? "channelInviteAccept" : "channelInviteRefuse";
        break;
      case "inviteEnd":
        // The broker has no such call any more, yet no terminal event reached us: the call is
        // over all the same.
        if (this._calls.get(callKey(w.channel, w.account, w.asCaller))?.phase === "ending") {
          this._setCall(w.channel, w.account, w.asCaller, undefined);
          this._callEvent("endByMyself", w.channel, w.account, w.asCaller, "", 0);
        }
        name = "channelInviteEnd";
        break;
      case "inviteDtmf":
        name = "channelInviteDTMF";
        break;
    }
    this._events.push({ type: "error", name, ecode, desc });
    if (p.done) this._events.push({ type: "done", done: p.done, ecode, desc, result });
  }

  /** Ends the login or session: fails what is pending, reports `ev`, forgets the session. */
  private _finish(ev: CoreEvent): void {
    const pending = this._pending;
    this._pending = [];
    for (const p of pending) {
      if (p.what.kind !== "logout") {
        this._failRequest(p, Codes.GENERAL_E_FAILED, "the session ended before the server answered");
      }
    }
    let leave: number | undefined;
    if (ev.type === "logout") {
      leave =
        ev.ecode === Codes.LOGOUT_E_USER
          ? Codes.LEAVECHANNEL_E_LOGOUT
          : ev.ecode === Codes.LOGOUT_E_KICKED
            ? Codes.LEAVECHANNEL_E_KICKED
            : Codes.LEAVECHANNEL_E_DISCONN;
    }
    this._dropCalls(Codes.INVITE_E_NET);
    const joined = this._joined;
    this._joined = [];
    if (leave !== undefined) {
      for (const channel of joined) this._events.push({ type: "channelLeaved", channel, ecode: leave });
    }
    this._statusValue = Status.NOT_LOGGED_IN;
    this._session = undefined;
    this._uidValue = 0;
    this._loggingOut = false;
    this._retryAt = undefined;
    this._linkDeadline = undefined;
    this._ackDeadline = undefined;
    this._backoff?.reset();
    this._lastEventSeq = 0n;
    this._ackedSeq = 0n;
    this._nextRequestId = 1;
    this._events.push(ev);
  }

  private _error(name: string, e: CallError): void {
    this._events.push({ type: "error", name, ecode: e.code, desc: e.message });
  }

  private _log(level: LogLevel, txt: string): void {
    this._events.push({ type: "log", level, txt });
  }

  private _generateMessageId(): string {
    this._messageCounter += 1;
    const r = Math.floor(this._config.random() * 0x1_0000_0000)
      .toString(16)
      .padStart(8, "0");
    const s = Math.floor(this._config.random() * 0x1_0000_0000)
      .toString(16)
      .padStart(8, "0");
    return `${r}${s}-${this._messageCounter}`;
  }
}

function asCallError(e: unknown): CallError {
  if (e instanceof CallError) return e;
  return new CallError(Codes.GENERAL_E_UNKNOWN, String(e));
}

function noInvitation(channel: string, account: string): CallError {
  return new CallError(Codes.GENERAL_E_WRONG_PARAM, `there is no call with ${account} on ${channel}`);
}
