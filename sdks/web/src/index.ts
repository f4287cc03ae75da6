/**
 * The Beckon Web SDK: the Signaling API's Web object model (`Signal` → `Session` → `Channel` /
 * `Call`, callbacks as properties) over WebSocket.
 *
 * ```js
 * import { Signal } from "beckon-web";
 *
 * const signal = Signal("my-app"); // the page's own server; or Signal("my-app", {url: "wss://host/ws"})
 * const session = signal.login("alice", "_no_need_token");
 * session.onLoginSuccess = (uid) => session.messageInstantSend("bob", "hello", () => console.log("sent"));
 * session.onMessageInstantReceive = (account, uid, msg) => console.log(account, msg);
 * ```
 */
export { Signal, SignalClient, Session, Channel, Call } from "./signal.js";
export type { SignalConstructor, SignalOptions, ErrorEvent } from "./signal.js";
export { Codes, codeName, type CodeName } from "./codes.js";
export { Status, type StatusValue, type LogLevel } from "./types.js";
export type { WebSocketCtor, WebSocketLike } from "./transport_websocket.js";
