//! `sdk-peer URL APP_ID ACCOUNT`: one Rust SDK client driven over stdin and stdout, so that tests
//! written in another language (the Web SDK's, `sdks/web/test/`) can exchange messages and calls
//! with the reference SDK through a real server.
//!
//! It logs in at once. Each stdin line is a JSON command `{"op": <snake_case SDK method>, …}`
//! with the method's arguments by name (`peer`, `msg`, `channel`, `account`, `extra`, `dtmf`);
//! each stdout line is a JSON event `{"event": <Event variant>, …}` with the variant's fields.
//! It exits when stdin closes (logging out first) or after a `logout` command's `Logout` event.

use std::io::Write as _;

use std::io::BufRead as _;

use serde_json::{Value, json};

use beckon_sdk::{Config, Event, Instance};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, app_id, account] = args.as_slice() else {
        eprintln!("usage: sdk-peer URL APP_ID ACCOUNT");
        return std::process::ExitCode::from(2);
    };
    let sdk = match Instance::new(Config::new(url.as_str())) {
        Ok(sdk) => sdk,
        Err(e) => {
            eprintln!("sdk-peer: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let mut events = sdk.events();
    sdk.login(app_id, account, "_no_need_token", 0, "");
    // Stdin is read on a thread of its own (blocking reads), line by line.
    let (tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut stdin_open = true;
    loop {
        tokio::select! {
            line = lines.recv(), if stdin_open => match line {
                Some(line) if !line.trim().is_empty() => match serde_json::from_str(&line) {
                    Ok(cmd) => run(&sdk, &cmd),
                    Err(e) => emit(&json!({"event": "BadCommand", "error": e.to_string()})),
                },
                Some(_) => {}
                None => {
                    stdin_open = false;
                    sdk.logout();
                }
            },
            ev = events.next() => {
                let Some(ev) = ev else { break };
                let done = matches!(ev, Event::Logout { .. } | Event::LoginFailed { .. });
                emit(&event_json(&ev));
                if done {
                    break;
                }
            }
        }
    }
    sdk.destroy().await;
    std::process::ExitCode::SUCCESS
}

fn emit(v: &Value) {
    let mut out = std::io::stdout().lock();
    // A closed stdout means the test is gone; there is no one left to tell.
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

fn run(sdk: &Instance, cmd: &Value) {
    let s = |k: &str| cmd.get(k).and_then(Value::as_str).unwrap_or_default();
    match s("op") {
        "message_instant_send" => {
            let id = sdk.message_instant_send(s("peer"), 0, s("msg"), s("msg_id"));
            emit(&json!({"event": "Sending", "message_id": id}));
        }
        "channel_join" => sdk.channel_join(s("channel")),
        "channel_leave" => sdk.channel_leave(s("channel")),
        "channel_set_attr" => sdk.channel_set_attr(s("channel"), s("name"), s("value")),
        "message_channel_send" => {
            let id = sdk.message_channel_send(s("channel"), s("msg"), s("msg_id"));
            emit(&json!({"event": "Sending", "message_id": id}));
        }
        "channel_invite_user2" => sdk.channel_invite_user2(s("channel"), s("account"), s("extra")),
        "channel_invite_accept" => {
            sdk.channel_invite_accept(s("channel"), s("account"), 0, s("extra"));
        }
        "channel_invite_refuse" => {
            sdk.channel_invite_refuse(s("channel"), s("account"), 0, s("extra"));
        }
        "channel_invite_end" => sdk.channel_invite_end(s("channel"), s("account"), 0),
        "channel_invite_dtmf" => sdk.channel_invite_dtmf(s("channel"), s("account"), s("dtmf")),
        "logout" => sdk.logout(),
        other => emit(&json!({"event": "BadCommand", "error": format!("unknown op {other:?}")})),
    }
}

/// The event as JSON: its variant's name and fields (snake_case, as in the Rust enum).
fn event_json(ev: &Event) -> Value {
    match ev {
        Event::LoginSuccess { uid, .. } => json!({"event": "LoginSuccess", "uid": uid}),
        Event::LoginFailed { ecode } => json!({"event": "LoginFailed", "ecode": ecode}),
        Event::Logout { ecode } => json!({"event": "Logout", "ecode": ecode}),
        Event::Error { name, ecode, desc } => {
            json!({"event": "Error", "name": name, "ecode": ecode, "desc": desc})
        }
        Event::MessageSendSuccess { message_id } => {
            json!({"event": "MessageSendSuccess", "message_id": message_id})
        }
        Event::MessageSendError { message_id, ecode } => {
            json!({"event": "MessageSendError", "message_id": message_id, "ecode": ecode})
        }
        Event::MessageInstantReceive { account, msg, .. } => {
            json!({"event": "MessageInstantReceive", "account": account, "msg": msg})
        }
        Event::ChannelJoined { channel } => json!({"event": "ChannelJoined", "channel": channel}),
        Event::ChannelUserList {
            channel, accounts, ..
        } => json!({"event": "ChannelUserList", "channel": channel, "accounts": accounts}),
        Event::ChannelUserJoined {
            channel, account, ..
        } => json!({"event": "ChannelUserJoined", "channel": channel, "account": account}),
        Event::ChannelUserLeaved {
            channel, account, ..
        } => json!({"event": "ChannelUserLeaved", "channel": channel, "account": account}),
        Event::ChannelLeaved { channel, ecode } => {
            json!({"event": "ChannelLeaved", "channel": channel, "ecode": ecode})
        }
        Event::ChannelAttrUpdated {
            channel,
            name,
            value,
            kind,
        } => json!({"event": "ChannelAttrUpdated", "channel": channel, "name": name,
                    "value": value, "kind": kind}),
        Event::MessageChannelReceive {
            channel,
            account,
            msg,
            ..
        } => json!({"event": "MessageChannelReceive", "channel": channel, "account": account,
                    "msg": msg}),
        Event::InviteReceived {
            channel,
            account,
            extra,
            ..
        } => json!({"event": "InviteReceived", "channel": channel, "account": account,
                    "extra": extra}),
        Event::InviteReceivedByPeer {
            channel, account, ..
        } => json!({"event": "InviteReceivedByPeer", "channel": channel, "account": account}),
        Event::InviteAcceptedByPeer {
            channel,
            account,
            extra,
            ..
        } => json!({"event": "InviteAcceptedByPeer", "channel": channel, "account": account,
                    "extra": extra}),
        Event::InviteRefusedByPeer {
            channel,
            account,
            extra,
            ..
        } => json!({"event": "InviteRefusedByPeer", "channel": channel, "account": account,
                    "extra": extra}),
        Event::InviteFailed {
            channel,
            account,
            ecode,
            ..
        } => json!({"event": "InviteFailed", "channel": channel, "account": account,
                    "ecode": ecode}),
        Event::InviteEndByPeer {
            channel, account, ..
        } => json!({"event": "InviteEndByPeer", "channel": channel, "account": account}),
        Event::InviteEndByMyself {
            channel, account, ..
        } => json!({"event": "InviteEndByMyself", "channel": channel, "account": account}),
        Event::InviteMsg {
            channel,
            account,
            msg_type,
            msg_data,
            ..
        } => json!({"event": "InviteMsg", "channel": channel, "account": account,
                    "msg_type": msg_type, "msg_data": msg_data}),
        other => json!({"event": "Other", "debug": format!("{other:?}")}),
    }
}
