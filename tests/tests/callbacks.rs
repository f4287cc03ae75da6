//! `beckon_sdk::dispatch`: every event reaches the callback of the same name with the seed's
//! arguments, and callbacks an application does not override do nothing. No server is needed:
//! the events are built here and handed to `dispatch` directly.

use std::sync::Mutex;

use beckon_sdk::{Callbacks, Event, dispatch};
use beckon_tests::Recorder;

/// Only `on_error` is overridden (with its `desc`, which [`Recorder`] leaves out): every other
/// callback keeps the trait's default.
#[derive(Default)]
struct ErrorsOnly(Mutex<Vec<String>>);

impl Callbacks for ErrorsOnly {
    fn on_error(&self, name: &str, ecode: i32, desc: &str) {
        let mut seen = self.0.lock().expect("not poisoned");
        seen.push(format!("{name} {ecode} {desc}"));
    }
}

fn s(v: &str) -> String {
    v.to_owned()
}

/// Dispatches `events` to a [`Recorder`] and to [`ErrorsOnly`]; returns what each recorded.
fn dispatched(events: &[Event]) -> (Vec<String>, Vec<String>) {
    let (all, errors) = (Recorder::default(), ErrorsOnly::default());
    for ev in events {
        dispatch(&all, ev);
        dispatch(&errors, ev);
    }
    let errors = errors.0.into_inner().expect("not poisoned");
    (all.calls(), errors)
}

#[test]
fn events_reach_their_callback_and_defaults_do_nothing() {
    let (all, errors) = dispatched(&[
        Event::LoginSuccess { uid: 7, fd: 0 },
        Event::Logout { ecode: 101 },
        Event::Error {
            name: s("login"),
            ecode: 1004,
            desc: s("bad"),
        },
        Event::MessageInstantReceive {
            account: s("bob"),
            uid: 0,
            msg: s("hi"),
        },
        Event::InvokeRet {
            call_id: s("c"),
            err: String::new(),
            resp: s("{}"),
        },
    ]);
    assert_eq!(errors, ["login 1004 bad"]);
    assert_eq!(
        all,
        [
            "on_login_success(7, 0)",
            "on_logout(101)",
            "on_error(login, 1004)",
            "on_message_instant_receive(bob, 0, hi)",
            "on_invoke_ret(c, , {})",
        ]
    );
}

#[test]
fn channel_and_call_events_reach_their_callbacks() {
    let (all, errors) = dispatched(&[
        Event::ChannelJoined { channel: s("c") },
        Event::ChannelJoinFailed {
            channel: s("_agora_user_online"),
            ecode: 301,
        },
        Event::ChannelLeaved {
            channel: s("c"),
            ecode: 602,
        },
        Event::ChannelUserJoined {
            channel: s("c"),
            account: s("bob"),
            uid: 0,
        },
        Event::ChannelUserLeaved {
            channel: s("c"),
            account: s("bob"),
            uid: 0,
        },
        Event::ChannelUserList {
            channel: s("c"),
            accounts: vec![s("alice"), s("bob")],
            uids: vec![0, 0],
        },
        Event::ChannelQueryUserNumResult {
            channel: s("c"),
            ecode: 0,
            num: 2,
        },
        Event::ChannelQueryUserIsIn {
            channel: s("c"),
            account: s("bob"),
            is_in: 1,
        },
        Event::ChannelAttrUpdated {
            channel: s("c"),
            name: s("color"),
            value: s("blue"),
            kind: s("update"),
        },
        Event::MessageChannelReceive {
            channel: s("c"),
            account: s("bob"),
            uid: 0,
            msg: s("hi"),
        },
        Event::InviteReceived {
            channel: s("c"),
            account: s("bob"),
            uid: 0,
            extra: s("{}"),
        },
        Event::InviteReceivedByPeer {
            channel: s("c"),
            account: s("bob"),
            uid: 0,
        },
        Event::InviteAcceptedByPeer {
            channel: s("c"),
            account: s("bob"),
            uid: 0,
            extra: s("{\"a\":1}"),
        },
        Event::InviteRefusedByPeer {
            channel: s("c"),
            account: s("bob"),
            uid: 0,
            extra: s("{\"r\":1}"),
        },
        Event::InviteFailed {
            channel: s("c"),
            account: s("bob"),
            uid: 0,
            ecode: 704,
            extra: s(""),
        },
        Event::InviteEndByMyself {
            channel: s("c"),
            account: s("bob"),
            uid: 0,
        },
        Event::InviteEndByPeer {
            channel: s("c"),
            account: s("bob"),
            uid: 0,
            extra: s(""),
        },
        Event::InviteMsg {
            channel: s("c"),
            account: s("bob"),
            uid: 0,
            msg_type: s("DTMF"),
            msg_data: s("12#"),
            extra: s(""),
        },
    ]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        all,
        [
            "on_channel_joined(c)",
            "on_channel_join_failed(_agora_user_online, 301)",
            "on_channel_leaved(c, 602)",
            "on_channel_user_joined(bob, 0)",
            "on_channel_user_leaved(bob, 0)",
            "on_channel_user_list([alice, bob], [0, 0])",
            "on_channel_query_user_num_result(c, 0, 2)",
            "on_channel_query_user_is_in(c, bob, 1)",
            "on_channel_attr_updated(c, color, blue, update)",
            "on_message_channel_receive(c, bob, 0, hi)",
            "on_invite_received(c, bob, 0, {})",
            "on_invite_received_by_peer(c, bob, 0)",
            "on_invite_accepted_by_peer(c, bob, 0, {\"a\":1})",
            "on_invite_refused_by_peer(c, bob, 0, {\"r\":1})",
            "on_invite_failed(c, bob, 0, 704, )",
            "on_invite_end_by_myself(c, bob, 0)",
            "on_invite_end_by_peer(c, bob, 0, )",
            "on_invite_msg(c, bob, 0, DTMF, 12#, )",
        ]
    );
}
