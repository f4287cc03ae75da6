/**
 * What the protocol core reports to the object model: one typed event per happening, in the
 * order the application must see them.
 */

/** `getStatus()`: 0 not logged in, 1 logging in, 2 logged in, 3 reconnecting. */
export const Status = {
  NOT_LOGGED_IN: 0,
  LOGGING_IN: 1,
  LOGGED_IN: 2,
  RECONNECTING: 3,
} as const;
export type StatusValue = (typeof Status)[keyof typeof Status];

/** Log levels of `setDoLog(isEnabled, level)`, most verbose first. */
export type LogLevel = "DEBUG" | "INFO" | "WARNING";

/** How a request ended: `ecode` 0 on success; `result` is what the reply carried, if anything. */
export type DoneFn = (ecode: number, desc: string, result?: string) => void;

/** The kinds of call event the server sends (mirrors `CallEvent.Kind` of the wire protocol). */
export type CallEventKind =
  | "received"
  | "receivedByPeer"
  | "acceptedByPeer"
  | "refusedByPeer"
  | "failed"
  | "endByPeer"
  | "endByMyself"
  | "msg";

export type CoreEvent =
  | { type: "loginSuccess"; uid: number }
  | { type: "loginFailed"; ecode: number }
  | { type: "logout"; ecode: number }
  | { type: "reconnecting"; nretry: number }
  | { type: "reconnected" }
  /** A rejected call (`onError`): `name` is the seed name of the call that failed. */
  | { type: "error"; name: string; ecode: number; desc: string }
  | { type: "log"; level: LogLevel; txt: string }
  /** A request ended; the object model calls `done` (the app's `cb`, or its own bookkeeping). */
  | { type: "done"; done: DoneFn; ecode: number; desc: string; result?: string }
  | { type: "messageSendSuccess"; messageId: string }
  | { type: "messageSendError"; messageId: string; ecode: number }
  | { type: "messageInstantReceive"; account: string; msg: string; offline: boolean }
  | { type: "channelJoined"; channel: string }
  | { type: "channelJoinFailed"; channel: string; ecode: number }
  | { type: "channelLeaved"; channel: string; ecode: number }
  | { type: "channelUserJoined"; channel: string; account: string }
  | { type: "channelUserLeaved"; channel: string; account: string }
  | { type: "channelUserList"; channel: string; accounts: string[] }
  | { type: "channelAttrUpdated"; channel: string; name: string; value: string; kind: string }
  | { type: "messageChannelReceive"; channel: string; account: string; msg: string }
  /**
   * Something happened to a call: `caller` is true when this session placed it. `ecode` is set
   * for `failed`; `msgType`/`msgData` for `msg` (e.g. "DTMF").
   */
  | {
      type: "call";
      kind: CallEventKind;
      channel: string;
      peer: string;
      caller: boolean;
      extra: string;
      ecode: number;
      msgType: string;
      msgData: string;
    };
