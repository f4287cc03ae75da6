/**
 * The state of the protocol core and its session: the connection (opening, closing, the
 * connect deadline, reconnect attempts, heartbeats), logging in, resuming or starting afresh,
 * giving up or ending, the acknowledgement of numbered events, the driver's inputs and the
 * outputs it polls. Mirrors `beckon-client`'s `client/{mod,link,session}.rs`.
 *
 * What a reply or a failure reports depends on the request; that is `PendingCore`
 * (`pending.ts`), and the API methods are `Client` (`client.ts`), each a subclass of this one.
 */
import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";

import type { Backoff } from "../backoff.js";
import { CallError, Codes } from "../codes.js";
import {
  ClientFrameSchema,
  ServerFrameSchema,
  type Event as WireEvent,
  type LoginFailed,
  type LoginOk,
  type Reply,
} from "../gen/beckon_pb.js";
import type { CoreEvent, DoneFn, LogLevel, StatusValue } from "../types.js";
import { Status } from "../types.js";
import * as v from "../validate.js";
import { Calls } from "./calls.js";
import {
  DEFAULT_CLIENT_CONFIG,
  PROTOCOL_VERSION,
  SDK_VERSION_NUMBER,
  type ClientConfig,
  type ConnectionCommand,
} from "./config.js";
import { Dedup } from "./dedup.js";
import type { Op, Pending, PendingRequest } from "./pending.js";

type Link = "idle" | "connecting" | "handshaking" | "ready";

type FrameKind = MessageInitShape<typeof ClientFrameSchema>["kind"];

export interface Credentials {
  appId: string;
  account: string;
  token: string;
}

interface SessionInfo {
  id: bigint;
  secret: Uint8Array;
  heartbeatMs: number;
}

export abstract class SessionCore {
  protected readonly _config: ClientConfig;
  protected _statusValue: StatusValue = Status.NOT_LOGGED_IN;
  protected _link: Link = "idle";
  protected _creds: Credentials | undefined;
  protected _session: SessionInfo | undefined;
  protected _uidValue = 0;
  protected _limitsValue: v.Limits = { ...v.DEFAULT_LIMITS };
  protected _nextRequestId = 1;
  protected _pending: PendingRequest[] = [];
  protected _lastEventSeq = 0n;
  protected _ackedSeq = 0n;
  protected _ackDeadline: number | undefined;
  protected _lastTx = 0;
  protected _lastRx = 0;
  protected _linkDeadline: number | undefined;
  protected _retryAt: number | undefined;
  protected _backoff: Backoff | undefined;
  protected _loggingOut = false;
  /** Channels joined, in join order; rejoined after a reconnect that got a fresh session. */
  protected _joined: string[] = [];
  protected _messageCounter = 0;
  protected _transmits: Uint8Array[] = [];
  protected readonly _events: CoreEvent[] = [];
  protected readonly _calls = new Calls(this._events);
  protected readonly _dedup: Dedup;
  protected _commands: ConnectionCommand[] = [];

  constructor(config: Partial<ClientConfig> = {}) {
    this._config = { ...DEFAULT_CLIENT_CONFIG, ...config };
    this._dedup = new Dedup(this._config.dedupWindow);
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

  /** Channels this client is in, in join order. */
  get joinedChannels(): readonly string[] {
    return this._joined;
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

  protected _loggedIn(): void {
    const s = this._statusValue;
    if ((s === Status.LOGGED_IN || s === Status.RECONNECTING) && !this._loggingOut) return;
    throw new CallError(Codes.GENERAL_E_NOT_LOGIN, "not logged in");
  }

  /** Runs `f` after the login check; a rejection goes to `onError` and to `done`. */
  protected _checked(name: string, done: DoneFn | undefined, f: () => void): void {
    try {
      this._loggedIn();
      f();
    } catch (e) {
      const err = asCallError(e);
      this._error(name, err);
      this._doneNow(done, err);
    }
  }

  protected _doneNow(done: DoneFn | undefined, err: CallError): void {
    if (done) this._events.push({ type: "done", done, ecode: err.code, desc: err.message });
  }

  protected _request(op: Op, what: Pending, now: number, done?: DoneFn): void {
    const p: PendingRequest = { id: this._nextRequestId++, op, what, sent: false, done };
    if (this._link === "ready") {
      p.sent = true;
      this._transmit({ case: "request", value: { id: BigInt(p.id), op } }, now);
    }
    this._pending.push(p);
  }

  protected _transmit(kind: FrameKind, now: number): void {
    this._lastTx = now;
    this._transmits.push(toBinary(ClientFrameSchema, create(ClientFrameSchema, { kind })));
  }

  protected _ackNow(now: number): void {
    this._ackDeadline = undefined;
    if (this._lastEventSeq > this._ackedSeq && this._link === "ready") {
      this._ackedSeq = this._lastEventSeq;
      this._transmit({ case: "ack", value: { upTo: this._lastEventSeq } }, now);
    }
  }

  protected _open(now: number): void {
    this._link = "connecting";
    this._linkDeadline = now + this._config.connectTimeoutMs;
    this._commands.push("open");
  }

  protected _closeLink(): void {
    if (this._link !== "idle") this._commands.push("close");
    this._link = "idle";
    this._linkDeadline = undefined;
    this._ackDeadline = undefined;
  }

  /** Closes the connection and treats it as lost. */
  protected _dropLink(now: number): void {
    this._closeLink();
    this._linkLost(now);
  }

  /** The connection is gone (already marked idle): retry or give up per the login policy. */
  protected _linkLost(now: number): void {
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

  protected _loggedInOk(ok: LoginOk, now: number): void {
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
      this._calls._dropAll(Codes.INVITE_E_NET);
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

  protected _loginRefused(f: LoginFailed, now: number): void {
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

  protected _handleEvent(ev: WireEvent, now: number): void {
    if (ev.seq <= this._lastEventSeq) return; // Replayed after a resume and already applied.
    this._lastEventSeq = ev.seq;
    const b = ev.body;
    switch (b.case) {
      case "reply":
        this._handleReply(b.value, now);
        break;
      case "instantMessage":
        // Re-deliveries (same server message id) are dropped.
        if (this._dedup._firstTime(b.value.serverMsgId)) {
          this._events.push({
            type: "messageInstantReceive",
            account: b.value.sender,
            msg: b.value.msg,
            offline: b.value.offline,
          });
        }
        break;
      case "channelMessage":
        if (this._dedup._firstTime(b.value.serverMsgId)) {
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
        this._calls._handle(b.value);
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

  /** Ends the login or session: fails what is pending, reports `ev`, forgets the session. */
  protected _finish(ev: CoreEvent): void {
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
    this._calls._dropAll(Codes.INVITE_E_NET);
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

  protected _error(name: string, e: CallError): void {
    this._events.push({ type: "error", name, ecode: e.code, desc: e.message });
  }

  protected _log(level: LogLevel, txt: string): void {
    this._events.push({ type: "log", level, txt });
  }

  protected _generateMessageId(): string {
    this._messageCounter += 1;
    const r = Math.floor(this._config.random() * 0x1_0000_0000)
      .toString(16)
      .padStart(8, "0");
    const s = Math.floor(this._config.random() * 0x1_0000_0000)
      .toString(16)
      .padStart(8, "0");
    return `${r}${s}-${this._messageCounter}`;
  }

  // ---- per request (pending.ts) ---------------------------------------------------------------

  /** The server answered request `r.requestId`: report what the request was for. */
  protected abstract _handleReply(r: Reply, now: number): void;

  /** A request failed with `ecode`: its own failure callback, `onError`, and its `done`. */
  protected abstract _failRequest(p: PendingRequest, ecode: number, desc: string, result?: string): void;
}

/** Any exception as the `CallError` the API reports. */
export function asCallError(e: unknown): CallError {
  if (e instanceof CallError) return e;
  return new CallError(Codes.GENERAL_E_UNKNOWN, String(e));
}
