/**
 * Requests awaiting their reply: what each request is (`Pending`), and what its reply and its
 * failure report — the one place that knows any particular request. The session layer
 * (`session.ts`) only queues, sends and resends them. Mirrors `beckon-client`'s
 * `client/{requests.rs,api/pending.rs}`.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";

import { Codes } from "../codes.js";
import type { RequestSchema, Reply } from "../gen/beckon_pb.js";
import type { DoneFn } from "../types.js";
import { SessionCore } from "./session.js";

/** A request's operation, as the fields to encode. */
export type Op = NonNullable<MessageInitShape<typeof RequestSchema>["op"]>;

/** What a request was, for its reply or its failure. */
export type Pending =
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

export interface PendingRequest {
  id: number;
  op: Op;
  what: Pending;
  sent: boolean;
  done?: DoneFn;
}

/** The session layer, with what each request reports on its reply or its failure. */
export abstract class PendingCore extends SessionCore {
  protected override _handleReply(r: Reply, now: number): void {
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
        this._calls._set(w.channel, w.account, w.asCaller, undefined);
        this._calls._report("endByMyself", w.channel, w.account, w.asCaller, "", 0);
        break;
      default:
        break;
    }
    if (p.done) this._events.push({ type: "done", done: p.done, ecode: 0, desc: "", result });
  }

  protected _malformed(p: PendingRequest, got: string | undefined): void {
    this._log("WARNING", `malformed reply (${got ?? "no result"}) to ${p.what.kind}`);
    this._failRequest(p, Codes.GENERAL_E_FAILED, "malformed reply from the server");
  }

  /** A request failed with `ecode`: its own failure callback, `onError`, and its `done`. */
  protected override _failRequest(p: PendingRequest, ecode: number, desc: string, result?: string): void {
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
        if (ecode !== Codes.INVITE_E_REINVITE && this._calls._has(w.channel, w.account, true)) {
          this._calls._set(w.channel, w.account, true, undefined);
        }
        this._calls._report("failed", w.channel, w.account, true, w.extra, ecode);
        name = "channelInviteUser2";
        break;
      case "inviteAnswer":
        // The broker had no such ringing call: it ended meanwhile.
        if (w.accept && this._calls._phase(w.channel, w.account, false) === "accepted") {
          this._calls._set(w.channel, w.account, false, undefined);
          this._calls._report("endByPeer", w.channel, w.account, false, "", 0);
        }
        name = w.accept ? "channelInviteAccept" : "channelInviteRefuse";
        break;
      case "inviteEnd":
        // The broker has no such call any more, yet no terminal event reached us: the call is
        // over all the same.
        if (this._calls._phase(w.channel, w.account, w.asCaller) === "ending") {
          this._calls._set(w.channel, w.account, w.asCaller, undefined);
          this._calls._report("endByMyself", w.channel, w.account, w.asCaller, "", 0);
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
}
