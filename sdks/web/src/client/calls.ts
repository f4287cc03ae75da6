/**
 * The client's mirror of its calls: which exist and where each stands, so that it can refuse
 * what cannot apply (answering a call that is not ringing, a second invitation) and report
 * exactly one terminal callback per call. Mirrors `beckon-client`'s `client/calls.rs`.
 */
import { CallEvent_Kind, type CallEvent } from "../gen/beckon_pb.js";
import type { CallEventKind, CoreEvent } from "../types.js";

/** Where a call stands, as far as this client knows. */
export type Phase = "waiting" | "accepted" | "ending";

interface Call {
  channel: string;
  peer: string;
  caller: boolean;
  phase: Phase;
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

/** Calls in progress, in the order they began, mirrored from the broker's truth. */
export class Calls {
  private readonly _byKey = new Map<string, Call>();
  /** Where the call events this mirror reports go: the client's event queue. */
  private readonly _events: CoreEvent[];

  constructor(events: CoreEvent[]) {
    this._events = events;
  }

  /** The phase of the call with `peer` on `channel` (`caller`: placed by us), if it exists. */
  _phase(channel: string, peer: string, caller: boolean): Phase | undefined {
    return this._byKey.get(callKey(channel, peer, caller))?.phase;
  }

  _has(channel: string, peer: string, caller: boolean): boolean {
    return this._byKey.has(callKey(channel, peer, caller));
  }

  /** Records where a call stands; `undefined` forgets it. */
  _set(channel: string, peer: string, caller: boolean, phase: Phase | undefined): void {
    const key = callKey(channel, peer, caller);
    if (phase === undefined) {
      this._byKey.delete(key);
    } else {
      const c = this._byKey.get(key);
      if (c) c.phase = phase;
      else this._byKey.set(key, { channel, peer, caller, phase });
    }
  }

  /** Reports a call event this client decided itself (no message type or data). */
  _report(
    kind: CallEventKind,
    channel: string,
    peer: string,
    caller: boolean,
    extra: string,
    ecode: number,
  ): void {
    this._events.push({ type: "call", kind, channel, peer, caller, extra, ecode, msgType: "", msgData: "" });
  }

  /** Ends every call locally when the session they lived in is gone. */
  _dropAll(code: number): void {
    const calls = [...this._byKey.values()];
    this._byKey.clear();
    for (const c of calls) {
      if (c.phase === "ending") this._report("endByMyself", c.channel, c.peer, c.caller, "", 0);
      else if (c.caller && c.phase === "waiting") this._report("failed", c.channel, c.peer, true, "", code);
      else this._report("endByPeer", c.channel, c.peer, c.caller, "", 0);
    }
  }

  /** A call event from the server: updates the mirror and reports it, unless it is stale. */
  _handle(c: CallEvent): void {
    const kind = KIND_NAMES[c.kind];
    const { channel, account, caller } = c;
    if (kind === undefined) {
      this._log("WARNING", "call event of an unknown kind");
      return;
    }
    const phase = this._phase(channel, account, caller);
    if (kind !== "received" && phase === undefined) {
      // The call already ended here (we refused or ended it, or it failed): the late event
      // would be a second terminal callback.
      this._log("DEBUG", `dropping a ${kind} event of a finished call with ${account} on ${channel}`);
      return;
    }
    switch (kind) {
      case "received":
        this._set(channel, account, false, "waiting");
        break;
      case "acceptedByPeer":
        if (phase === "ending") return; // We are ending it; our end answer closes it.
        this._set(channel, account, true, "accepted");
        break;
      case "refusedByPeer":
      case "failed":
        this._set(channel, account, true, undefined);
        break;
      case "endByPeer":
        this._set(channel, account, caller, undefined);
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

  private _log(level: "DEBUG" | "WARNING", txt: string): void {
    this._events.push({ type: "log", level, txt });
  }
}
