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
 *
 * It is split by concern, as `beckon-client`'s `client/` is: this file holds the API methods;
 * `client/session.ts` the state, the connection and the session, the driver's inputs and the
 * outputs; `client/pending.ts` the requests and what each reports on its reply or failure;
 * `client/calls.ts` the mirror of calls; `client/dedup.ts` the filter of re-delivered messages;
 * `client/config.ts` the configuration.
 */
import { Backoff } from "./backoff.js";
import { CallError, Codes } from "./codes.js";
import type { DoneFn } from "./types.js";
import { Status } from "./types.js";
import * as v from "./validate.js";
import type { Credentials } from "./client/session.js";
import { asCallError } from "./client/session.js";
import { PendingCore } from "./client/pending.js";

export {
  DEFAULT_CLIENT_CONFIG,
  PROTOCOL_VERSION,
  SDK_VERSION_NUMBER,
  SDK_VERSION_STRING,
  type ClientConfig,
  type ConnectionCommand,
} from "./client/config.js";

/** The protocol core: the API methods on top of the session and request layers. */
export class Client extends PendingCore {
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
      if (this._calls._has(ch, acct, true)) {
        throw new CallError(Codes.INVITE_E_REINVITE, `${acct} is already invited to ${ch}`);
      }
      this._calls._set(ch, acct, true, "waiting");
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
      if (this._calls._phase(channel, caller, false) !== "waiting") {
        throw noInvitation(channel, caller);
      }
      this._calls._set(channel, caller, false, accept ? "accepted" : undefined);
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
      const phase = this._calls._phase(channel, peer, asCaller);
      if (phase === undefined || phase === "ending") throw noInvitation(channel, peer);
      this._calls._set(channel, peer, asCaller, "ending");
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
      const phase = this._calls._phase(channel, peer, asCaller);
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
}

function noInvitation(channel: string, account: string): CallError {
  return new CallError(Codes.GENERAL_E_WRONG_PARAM, `there is no call with ${account} on ${channel}`);
}
