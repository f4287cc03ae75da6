//! The call callbacks (SPEC §8) with the arguments the seeds give them, as the call suites
//! expect them.

use beckon_sdk::Event;

pub fn received(channel: &str, account: &str, extra: &str) -> Event {
    Event::InviteReceived {
        channel: channel.into(),
        account: account.into(),
        uid: 0,
        extra: extra.into(),
    }
}

pub fn received_by_peer(channel: &str, account: &str) -> Event {
    Event::InviteReceivedByPeer {
        channel: channel.into(),
        account: account.into(),
        uid: 0,
    }
}

pub fn accepted(channel: &str, account: &str, extra: &str) -> Event {
    Event::InviteAcceptedByPeer {
        channel: channel.into(),
        account: account.into(),
        uid: 0,
        extra: extra.into(),
    }
}

pub fn refused(channel: &str, account: &str, extra: &str) -> Event {
    Event::InviteRefusedByPeer {
        channel: channel.into(),
        account: account.into(),
        uid: 0,
        extra: extra.into(),
    }
}

pub fn failed(channel: &str, account: &str, ecode: i32, extra: &str) -> Event {
    Event::InviteFailed {
        channel: channel.into(),
        account: account.into(),
        uid: 0,
        ecode,
        extra: extra.into(),
    }
}

pub fn end_by_peer(channel: &str, account: &str) -> Event {
    Event::InviteEndByPeer {
        channel: channel.into(),
        account: account.into(),
        uid: 0,
        extra: String::new(),
    }
}

pub fn end_by_myself(channel: &str, account: &str) -> Event {
    Event::InviteEndByMyself {
        channel: channel.into(),
        account: account.into(),
        uid: 0,
    }
}

pub fn dtmf(channel: &str, account: &str, digits: &str) -> Event {
    Event::InviteMsg {
        channel: channel.into(),
        account: account.into(),
        uid: 0,
        msg_type: "DTMF".into(),
        msg_data: digits.into(),
        extra: String::new(),
    }
}

/// Whether `e` is one of the call callbacks.
pub fn is_call_event(e: &Event) -> bool {
    use Event::*;
    matches!(
        e,
        InviteReceived { .. }
            | InviteReceivedByPeer { .. }
            | InviteAcceptedByPeer { .. }
            | InviteRefusedByPeer { .. }
            | InviteFailed { .. }
            | InviteEndByPeer { .. }
            | InviteEndByMyself { .. }
            | InviteMsg { .. }
    )
}
