// Compiled (not run) by `npm run test:types`, part of `npm run build`: an app's TypeScript, importing the package by its
// name, type-checks against the published declarations.
import { Signal, Codes, type Call, type ErrorEvent, type Session } from "beckon-web";

const session: Session = Signal("app", { url: "wss://signal.example.com/ws" }).login("alice", "_no_need_token", 10, 30);
session.onLoginSuccess = (uid: number) => void uid;
session.onError = (evt: ErrorEvent) => console.warn(evt.name, evt.ecode, evt.desc);
session.onInviteReceived = (call: Call) => call.channelInviteAccept("");
session.invoke("io.agora.signal.user_query_user_status", { account: "bob" }, (err, result) => void [err, result]);
const channel = session.channelJoin("room");
channel.onChannelUserList = (users) => users.map(([account, uid]) => `${account}:${uid}`);
channel.channelSetAttr("topic", "launch", () => {});
const call = session.channelInviteUser2("room", "bob", { _require_peer_online: 1 });
call.onInviteFailed = (extra: string, ecode: number) => void [extra, ecode];
const code: number = Codes.INVITE_E_PEEROFFLINE;
void [code, new Signal().getSDKVersion(), call.channelName, call.peer, channel.name];
