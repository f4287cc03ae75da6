/**
 * The Web seed's object model: `Signal` → `Session` → `Channel` / `Call`, with callbacks as
 * properties, over the protocol core (`client.ts`) and the WebSocket driver
 * (`transport_websocket.ts`).
 *
 * Argument orders and callback names are the seed's. Beckon's extensions, which an app written
 * for the seed never needs: `Signal(appid, {url, WebSocket})`; `Session.onReconnecting(nretry)`,
 * `onReconnected()`, `onMessageSendSuccess(messageID)`, `onMessageSendError(messageID, ecode)`;
 * the message id returned by the two send methods; the error code as a second argument of
 * `Call.onInviteFailed`, and the message type and data after `extra` in `Call.onInviteMsg`.
 */
import { Client, SDK_VERSION_STRING } from "./client.js";
import { Codes } from "./codes.js";
import { Driver, type WebSocketCtor } from "./transport_websocket.js";
import { Status, type CoreEvent, type LogLevel, type StatusValue } from "./types.js";
import { DEFAULT_RETRY_COUNT, DEFAULT_RETRY_TIME_S } from "./backoff.js";

/** Options beyond the seed's `Signal(appid)`. */
export interface SignalOptions {
  /**
   * The server's WebSocket URL, e.g. `wss://signal.example.com/ws`. Default: the page's own
   * origin at `/ws` (`wss://host/ws` on https, `ws://host/ws` on http).
   */
  url?: string;
  /** A WebSocket constructor where the platform has none (older Node.js: the `ws` package). */
  WebSocket?: WebSocketCtor;
}

/** What `onError(evt)` receives. */
export interface ErrorEvent {
  /** The seed name of the call that failed, e.g. "messageInstantSend". */
  name: string;
  /** Its error code (SPEC §3). */
  ecode: number;
  /** What went wrong, for a person. */
  desc: string;
}

type Callback = ((...args: never[]) => unknown) | null | undefined;

const LEVELS: Record<LogLevel, number> = { DEBUG: 0, INFO: 1, WARNING: 2 };

class Logger {
  enabled = false;
  level: LogLevel = "DEBUG";

  log(level: LogLevel, txt: string): void {
    if (!this.enabled || LEVELS[level] < LEVELS[this.level]) return;
    const line = `[beckon] ${level} ${txt}`;
    if (level === "WARNING") console.warn(line);
    else if (level === "INFO") console.info(line);
    else console.debug(line);
  }
}

/**
 * Runs app code (a callback); an exception in it is reported as uncaught (the console shows it)
 * but never thrown into the SDK, so the events after it are still delivered.
 */
function guarded(f: () => void): void {
  try {
    f();
  } catch (e) {
    const report = (globalThis as { reportError?: (e: unknown) => void }).reportError;
    if (report) report(e);
    else
      setTimeout(() => {
        throw e;
      }, 0);
  }
}

/** Calls an app's callback property, if it is set. */
function fire(target: object, name: string, ...args: unknown[]): void {
  const f = (target as Record<string, unknown>)[name];
  if (typeof f === "function") guarded(() => f.apply(target, args));
}

function defaultUrl(): string | undefined {
  const loc = (globalThis as { location?: { protocol: string; host: string } }).location;
  if (!loc || !loc.host || (loc.protocol !== "http:" && loc.protocol !== "https:")) return undefined;
  return `${loc.protocol === "https:" ? "wss:" : "ws:"}//${loc.host}/ws`;
}

/** The object `Signal(appid)` returns. */
export class SignalClient {
  /** @internal */ readonly _logger = new Logger();
  /** @internal */ readonly _options: SignalOptions;
  private _current: Session | undefined;

  constructor(
    readonly appid?: string,
    options?: SignalOptions,
  ) {
    this._options = { ...options };
  }

  /**
   * `login(account, token, reconnect_count, reconnect_time)`: logs in and returns the session at
   * once; `onLoginSuccess` or `onLoginFailed` follows on a later turn. Ignored (returning the
   * session in progress) while logged in or logging in.
   */
  login(account: string, token: string, reconnect_count?: number, reconnect_time?: number): Session {
    const cur = this._current;
    if (cur && cur._status() !== Status.NOT_LOGGED_IN) {
      this._logger.log("INFO", "login ignored: already logged in or logging in");
      return cur;
    }
    const s = new Session(
      this,
      account,
      token,
      typeof reconnect_count === "number" && reconnect_count > 0 ? reconnect_count : DEFAULT_RETRY_COUNT,
      typeof reconnect_time === "number" && reconnect_time > 0 ? reconnect_time : DEFAULT_RETRY_TIME_S,
    );
    this._current = s;
    return s;
  }

  /** `setDoLog(isEnabled, level)`: level "DEBUG" (default), "INFO" or "WARNING". */
  setDoLog(isEnabled: boolean, level?: LogLevel): void {
    this._logger.enabled = !!isEnabled;
    const l = typeof level === "string" ? (level.toUpperCase() as LogLevel) : "DEBUG";
    this._logger.level = l in LEVELS ? l : "DEBUG";
  }

  /** The seed's sample spells it `setDolog`. */
  setDolog(isEnabled: boolean, level?: LogLevel): void {
    this.setDoLog(isEnabled, level);
  }

  /** `getStatus()`: 0 not logged in, 1 logging in, 2 logged in, 3 reconnecting. */
  getStatus(): StatusValue {
    return this._current ? this._current._status() : Status.NOT_LOGGED_IN;
  }

  /** `getSDKVersion()`: this SDK's version, e.g. "0.1.0". */
  getSDKVersion(): string {
    return SDK_VERSION_STRING;
  }
}

/** A logged-in (or logging-in) account: messages, channels and calls. */
export class Session {
  onLoginSuccess?: ((uid: number) => void) | null;
  onLoginFailed?: ((ecode: number) => void) | null;
  onLogout?: ((ecode: number) => void) | null;
  onError?: ((evt: ErrorEvent) => void) | null;
  onMessageInstantReceive?: ((account: string, uid: number, msg: string) => void) | null;
  onInviteReceived?: ((call: Call) => void) | null;
  /** Extension: the connection was lost; attempt `nretry` (from 1) to get it back. */
  onReconnecting?: ((nretry: number) => void) | null;
  /** Extension: the connection is back and the session resumed (or rejoined). */
  onReconnected?: (() => void) | null;
  /** Extension: a message (p2p or channel) reached the server's delivery. */
  onMessageSendSuccess?: ((messageID: string) => void) | null;
  /** Extension: a message (p2p or channel) failed. */
  onMessageSendError?: ((messageID: string, ecode: number) => void) | null;

  /** The account this session logs in as. */
  readonly account: string;
  private readonly _driver: Driver;
  private readonly _client: Client;
  private readonly _channels = new Map<string, Channel>();
  private readonly _calls = new Map<string, Call>();
  private _invokeCounter = 0;

  /** @internal */
  constructor(
    private readonly _signal: SignalClient,
    account: string,
    token: string,
    retryCount: number,
    retryTimeS: number,
  ) {
    this.account = typeof account === "string" ? account : String(account);
    this._client = new Client();
    const url = _signal._options.url ?? defaultUrl();
    const ws = _signal._options.WebSocket ?? (globalThis as { WebSocket?: WebSocketCtor }).WebSocket;
    this._driver = new Driver(this._client, url ?? "", ws, (ev) => this._deliver(ev));
    const problem = !url
      ? "no server URL: this page has no http(s) origin, so pass Signal(appid, {url: 'wss://host/ws'})"
      : !ws
        ? "this platform has no WebSocket: pass Signal(appid, {WebSocket})"
        : undefined;
    if (problem) {
      // Reported on a later turn, like every outcome of login.
      this._driver.emit({ type: "error", name: "login", ecode: Codes.GENERAL_E_WRONG_PARAM, desc: problem });
      this._driver.emit({ type: "loginFailed", ecode: Codes.GENERAL_E_WRONG_PARAM });
      return;
    }
    _signal._logger.log("DEBUG", `login ${this.account} at ${url}`);
    this._driver.call((c, now) => c.login(_signal.appid, account, token, retryCount, retryTimeS, now));
  }

  /** @internal The login status (what `Signal.getStatus()` reports). */
  _status(): StatusValue {
    return this._client.status;
  }

  /**
   * `invoke(func, args, cb)`: a remote function of SPEC §9. `args` is an object (or its JSON);
   * `cb(err, result)` gets `err` null and the parsed result on success, or the error code and
   * the server's explanation (`{error: "…"}`).
   */
  invoke(func: string, args: unknown, cb?: (err: number | null, result: unknown) => void): void {
    const req = args === undefined || args === null ? "{}" : typeof args === "string" ? args : JSON.stringify(args);
    const callId = `invoke-${++this._invokeCounter}`;
    this._signal._logger.log("DEBUG", `invoke ${String(func)} ${req}`);
    this._call((c, now) =>
      c.invoke(func, req, callId, now, (ecode, desc, resp) => {
        if (typeof cb !== "function") return;
        let result: unknown = resp === undefined || resp === "" ? (ecode === 0 ? {} : { error: desc }) : resp;
        if (typeof result === "string") {
          try {
            result = JSON.parse(result);
          } catch {
            // Not JSON: hand over the text as it came.
          }
        }
        cb(ecode === 0 ? null : ecode, result);
      }),
    );
  }

  /**
   * `messageInstantSend(peer, msg, cb)`: `cb()` once the server delivered or stored the message.
   * A failure goes to `onError` (and `onMessageSendError`). Returns the message id.
   */
  messageInstantSend(peer: string, msg: string, cb?: () => void): string {
    return this._call((c, now) =>
      c.messageInstantSend(peer, msg, "", now, (ecode) => {
        if (ecode === 0 && typeof cb === "function") cb();
      }),
    );
  }

  /** `logout()`: `onLogout(LOGOUT_E_USER)` follows. */
  logout(): void {
    this._signal._logger.log("DEBUG", `logout ${this.account}`);
    this._call((c, now) => c.logout(now));
  }

  /** `channelJoin(channelID)`: the channel object; `onChannelJoined` or `onChannelJoinFailed`. */
  channelJoin(channelID: string): Channel {
    const name = typeof channelID === "string" ? channelID : String(channelID);
    let ch = this._channels.get(name);
    if (!ch) {
      ch = new Channel(this, name);
      this._channels.set(name, ch);
    }
    this._signal._logger.log("DEBUG", `channelJoin ${name}`);
    this._call((c, now) => c.channelJoin(name, now, channelID));
    return ch;
  }

  /**
   * `channelInviteUser2(channelID, peer, extra)`: calls `peer`; `extra` is "" or a JSON object
   * (string or object).
   */
  channelInviteUser2(channelID: string, peer: string, extra?: unknown): Call {
    const call = new Call(this, String(channelID), String(peer), true, "");
    this._signal._logger.log("DEBUG", `channelInviteUser2 ${call.channelName} ${call.peer}`);
    const sent = this._call((c, now) =>
      c.channelInviteUser2(channelID, peer, extra ?? "", now, (ecode, _desc, ex) => {
        fire(call, "onInviteFailed", ex ?? "", ecode);
      }),
    );
    if (sent) this._calls.set(call._key, call);
    return call;
  }

  /** @internal Runs an API call on the core (see `Driver.call`). */
  _call<T>(f: (c: Client, now: number) => T): T {
    return this._driver.call(f);
  }

  /** @internal */
  _forgetChannel(ch: Channel): void {
    if (this._channels.get(ch.name) === ch) this._channels.delete(ch.name);
  }

  private _deliver(ev: CoreEvent): void {
    const log = this._signal._logger;
    switch (ev.type) {
      case "loginSuccess":
        log.log("INFO", `logged in as ${this.account} (uid ${ev.uid})`);
        return fire(this, "onLoginSuccess", ev.uid);
      case "loginFailed":
        log.log("WARNING", `login failed: ${ev.ecode}`);
        return fire(this, "onLoginFailed", ev.ecode);
      case "logout":
        log.log("INFO", `logged out: ${ev.ecode}`);
        return fire(this, "onLogout", ev.ecode);
      case "reconnecting":
        log.log("INFO", `reconnecting, attempt ${ev.nretry}`);
        return fire(this, "onReconnecting", ev.nretry);
      case "reconnected":
        log.log("INFO", "reconnected");
        return fire(this, "onReconnected");
      case "error":
        log.log("WARNING", `${ev.name} failed: ${ev.ecode} ${ev.desc}`);
        return fire(this, "onError", { name: ev.name, ecode: ev.ecode, desc: ev.desc } satisfies ErrorEvent);
      case "log":
        return log.log(ev.level, ev.txt);
      case "done":
        return guarded(() => ev.done(ev.ecode, ev.desc, ev.result));
      case "messageSendSuccess":
        return fire(this, "onMessageSendSuccess", ev.messageId);
      case "messageSendError":
        return fire(this, "onMessageSendError", ev.messageId, ev.ecode);
      case "messageInstantReceive":
        return fire(this, "onMessageInstantReceive", ev.account, 0, ev.msg);
      case "call":
        return this._deliverCall(ev);
      default: {
        const ch = this._channels.get(ev.channel);
        if (ch) ch._deliver(ev);
        return;
      }
    }
  }

  private _deliverCall(ev: Extract<CoreEvent, { type: "call" }>): void {
    if (ev.kind === "received") {
      const call = new Call(this, ev.channel, ev.peer, false, ev.extra);
      this._calls.set(call._key, call);
      fire(this, "onInviteReceived", call);
      return;
    }
    const key = Call._keyOf(ev.channel, ev.peer, ev.caller);
    const call = this._calls.get(key);
    if (!call) return;
    switch (ev.kind) {
      case "receivedByPeer":
        return fire(call, "onInviteReceivedByPeer", ev.extra);
      case "acceptedByPeer":
        return fire(call, "onInviteAcceptedByPeer", ev.extra);
      case "msg":
        return fire(call, "onInviteMsg", ev.extra, ev.msgType, ev.msgData);
      default:
        break;
    }
    // The rest end the call.
    this._calls.delete(key);
    switch (ev.kind) {
      case "refusedByPeer":
        return fire(call, "onInviteRefusedByPeer", ev.extra);
      case "failed":
        return fire(call, "onInviteFailed", ev.extra, ev.ecode);
      case "endByPeer":
        return fire(call, "onInviteEndByPeer", ev.extra);
      case "endByMyself":
        return fire(call, "onInviteEndByMyself", ev.extra);
    }
  }
}

type ChannelEvent = Exclude<
  CoreEvent,
  { type: "loginSuccess" | "loginFailed" | "logout" | "reconnecting" | "reconnected" | "error" | "log" | "done" }
  | { type: "messageSendSuccess" | "messageSendError" | "messageInstantReceive" | "call" }
>;

/** A channel: its members, attributes and messages. */
export class Channel {
  onChannelJoined?: (() => void) | null;
  onChannelJoinFailed?: ((ecode: number) => void) | null;
  onChannelLeaved?: ((ecode: number) => void) | null;
  onChannelUserJoined?: ((account: string, uid: number) => void) | null;
  onChannelUserLeaved?: ((account: string, uid: number) => void) | null;
  onChannelUserList?: ((users: [string, number][]) => void) | null;
  onChannelAttrUpdated?: ((k: string, v: string, type: string) => void) | null;
  onMessageChannelReceive?: ((account: string, uid: number, msg: string) => void) | null;

  /** @internal */
  constructor(
    private readonly _session: Session,
    private readonly _channelName: string,
  ) {}

  /** The channel's name. */
  get name(): string {
    return this._channelName;
  }

  /** `messageChannelSend(msg, cb)`: every member, the sender included, receives it. */
  messageChannelSend(msg: string, cb?: () => void): string {
    return this._session._call((c, now) =>
      c.messageChannelSend(this._channelName, msg, "", now, (ecode) => {
        if (ecode === 0 && typeof cb === "function") cb();
      }),
    );
  }

  /** `channelLeave(cb)`: `onChannelLeaved(LEAVECHANNEL_E_BYUSER)` and `cb()` follow. */
  channelLeave(cb?: () => void): void {
    this._session._call((c, now) => c.channelLeave(this._channelName, now, success(cb)));
  }

  /** `channelSetAttr(k, v, cb)`: every member gets `onChannelAttrUpdated(k, v, "update")`. */
  channelSetAttr(k: string, v: string, cb?: () => void): void {
    this._session._call((c, now) => c.channelSetAttr(this._channelName, k, v, now, success(cb)));
  }

  /** `channelDelAttr(k, cb)`. */
  channelDelAttr(k: string, cb?: () => void): void {
    this._session._call((c, now) => c.channelDelAttr(this._channelName, k, now, success(cb)));
  }

  /** `channelClearAttr(cb)`. */
  channelClearAttr(cb?: () => void): void {
    this._session._call((c, now) => c.channelClearAttr(this._channelName, now, success(cb)));
  }

  /** @internal */
  _deliver(ev: ChannelEvent): void {
    switch (ev.type) {
      case "channelJoined":
        return fire(this, "onChannelJoined");
      case "channelJoinFailed":
        this._session._forgetChannel(this);
        return fire(this, "onChannelJoinFailed", ev.ecode);
      case "channelLeaved":
        this._session._forgetChannel(this);
        return fire(this, "onChannelLeaved", ev.ecode);
      case "channelUserJoined":
        return fire(this, "onChannelUserJoined", ev.account, 0);
      case "channelUserLeaved":
        return fire(this, "onChannelUserLeaved", ev.account, 0);
      case "channelUserList":
        return fire(
          this,
          "onChannelUserList",
          ev.accounts.map((a): [string, number] => [a, 0]),
        );
      case "channelAttrUpdated":
        return fire(this, "onChannelAttrUpdated", ev.name, ev.value, ev.kind);
      case "messageChannelReceive":
        return fire(this, "onMessageChannelReceive", ev.account, 0, ev.msg);
    }
  }
}

function success(cb: (() => void) | undefined) {
  return (ecode: number) => {
    if (ecode === 0 && typeof cb === "function") cb();
  };
}

/** A call: placed by this session (`channelInviteUser2`) or received (`onInviteReceived`). */
export class Call {
  onInviteReceivedByPeer?: ((extra: string) => void) | null;
  onInviteAcceptedByPeer?: ((extra: string) => void) | null;
  onInviteRefusedByPeer?: ((extra: string) => void) | null;
  /** `onInviteFailed(extra)`; Beckon adds the error code. */
  onInviteFailed?: ((extra: string, ecode: number) => void) | null;
  onInviteEndByPeer?: ((extra: string) => void) | null;
  onInviteEndByMyself?: ((extra: string) => void) | null;
  /** `onInviteMsg(extra)`; Beckon adds the message type (e.g. "DTMF") and its data. */
  onInviteMsg?: ((extra: string, msgType: string, msgData: string) => void) | null;

  /** @internal */
  constructor(
    private readonly _session: Session,
    private readonly _channel: string,
    private readonly _peerAccount: string,
    /** True when this session placed the call. */
    readonly isCaller: boolean,
    private readonly _inviteExtra: string,
  ) {}

  /** @internal */
  static _keyOf(channel: string, peer: string, caller: boolean): string {
    return `${caller ? "o" : "i"}\u0000${channel}\u0000${peer}`;
  }

  /** @internal */
  get _key(): string {
    return Call._keyOf(this._channel, this._peerAccount, this.isCaller);
  }

  /** The channel the call invites to. */
  get channelName(): string {
    return this._channel;
  }

  /** The other side: the callee for a call placed, the caller for a call received. */
  get peer(): string {
    return this._peerAccount;
  }

  /** The `extra` the caller sent with the invitation ("" for a call placed). */
  get extra(): string {
    return this._inviteExtra;
  }

  /** `channelInviteAccept(extra)`: the caller gets `onInviteAcceptedByPeer(extra)`. */
  channelInviteAccept(extra?: unknown): void {
    this._session._call((c, now) => c.channelInviteAnswer(this._channel, this._peerAccount, extra ?? "", true, now));
  }

  /** `channelInviteRefuse(extra)`: the caller gets `onInviteRefusedByPeer(extra)`. */
  channelInviteRefuse(extra?: unknown): void {
    this._session._call((c, now) => c.channelInviteAnswer(this._channel, this._peerAccount, extra ?? "", false, now));
  }

  /** `channelInviteDTMF(dtmf)`: the other side gets `onInviteMsg`. */
  channelInviteDTMF(dtmf: string): void {
    this._session._call((c, now) => c.channelInviteDTMF(this._channel, this._peerAccount, this.isCaller, dtmf, now));
  }

  /** `channelInviteEnd()`: `onInviteEndByMyself` here, `onInviteEndByPeer` there. */
  channelInviteEnd(): void {
    this._session._call((c, now) => c.channelInviteEnd(this._channel, this._peerAccount, this.isCaller, now));
  }
}

/** `Signal(appid)` or `new Signal(appid)`: both return the signal object. */
export interface SignalConstructor {
  new (appid?: string, options?: SignalOptions): SignalClient;
  (appid?: string, options?: SignalOptions): SignalClient;
  readonly prototype: SignalClient;
  /** The error codes (SPEC §3) by name. */
  readonly Codes: typeof Codes;
}

export const Signal = function Signal(appid?: string, options?: SignalOptions): SignalClient {
  return new SignalClient(appid, options);
} as unknown as SignalConstructor;
(Signal as { prototype: SignalClient }).prototype = SignalClient.prototype;
Object.defineProperty(Signal, "Codes", { value: Codes, enumerable: true });
