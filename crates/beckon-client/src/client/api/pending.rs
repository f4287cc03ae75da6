//! [`Pending`]: what each request of the API is, described in one place — the frame it sends,
//! what queueing it does to the call mirror, and what its reply and its failure report.
//!
//! The request queue (`requests.rs`) and the reply and failure paths (`mod.rs`, `session.rs`)
//! know nothing of any particular request: they call [`Pending::op`], [`Pending::submitted`],
//! [`Pending::succeeded`] and [`Pending::failed`]. A new request is a new variant here and an
//! API method in `api/mod.rs`.

use std::time::Instant;

use beckon_proto::pb::{self, reply, request};
use beckon_proto::{CallError, ErrorCode};

use crate::client::Client;
use crate::client::calls::Phase;
use crate::client::requests::Failure;
use crate::event::Event;

/// A request of the API, with everything needed to send it again and to report its outcome.
#[derive(Clone, Debug)]
pub(in crate::client) enum Pending {
    Logout,
    InstantSend {
        account: String,
        msg: String,
        message_id: String,
    },
    QueryUserStatus {
        account: String,
    },
    SetAttr {
        name: String,
        value: String,
    },
    /// `getAttr` or `getUserAttr`, named by `call`.
    GetAttr {
        call: &'static str,
        account: String,
        name: String,
    },
    /// `getAttrAll` or `getUserAttrAll`, named by `call`.
    GetAttrAll {
        call: &'static str,
        account: String,
    },
    Invoke {
        name: String,
        req: String,
        call_id: String,
    },
    ChannelJoin {
        channel: String,
    },
    ChannelLeave {
        channel: String,
    },
    ChannelQueryUserNum {
        channel: String,
    },
    ChannelQueryUserIsIn {
        channel: String,
        account: String,
    },
    ChannelSetAttr {
        channel: String,
        name: String,
        value: String,
    },
    ChannelDelAttr {
        channel: String,
        name: String,
    },
    ChannelClearAttr {
        channel: String,
    },
    /// `messageChannelSend`, or with `force` `messageChannelSendForce`.
    ChannelSend {
        channel: String,
        msg: String,
        message_id: String,
        force: bool,
    },
    /// `channelInviteUser2` or `channelInvitePhone3`, named by `call`.
    Invite {
        call: &'static str,
        channel: String,
        account: String,
        extra: String,
    },
    /// `channelInviteAccept`, or without `accept` `channelInviteRefuse`.
    InviteAnswer {
        channel: String,
        account: String,
        extra: String,
        accept: bool,
    },
    InviteEnd {
        channel: String,
        account: String,
        as_caller: bool,
    },
    InviteDtmf {
        channel: String,
        account: String,
        dtmf: String,
        as_caller: bool,
    },
}

impl Pending {
    /// The seed's name of the call, as `onError` reports it.
    pub(in crate::client) fn name(&self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::InstantSend { .. } => "messageInstantSend",
            Self::QueryUserStatus { .. } => "queryUserStatus",
            Self::SetAttr { .. } => "setAttr",
            Self::GetAttr { call, .. } | Self::GetAttrAll { call, .. } => call,
            Self::Invite { call, .. } => call,
            Self::Invoke { .. } => "invoke",
            Self::ChannelJoin { .. } => "channelJoin",
            Self::ChannelLeave { .. } => "channelLeave",
            Self::ChannelQueryUserNum { .. } => "channelQueryUserNum",
            Self::ChannelQueryUserIsIn { .. } => "channelQueryUserIsIn",
            Self::ChannelSetAttr { .. } => "channelSetAttr",
            Self::ChannelDelAttr { .. } => "channelDelAttr",
            Self::ChannelClearAttr { .. } => "channelClearAttr",
            Self::ChannelSend { force: false, .. } => "messageChannelSend",
            Self::ChannelSend { force: true, .. } => "messageChannelSendForce",
            Self::InviteAnswer { accept: true, .. } => "channelInviteAccept",
            Self::InviteAnswer { accept: false, .. } => "channelInviteRefuse",
            Self::InviteEnd { .. } => "channelInviteEnd",
            Self::InviteDtmf { .. } => "channelInviteDTMF",
        }
    }

    /// The request as it goes on the wire.
    pub(in crate::client) fn op(&self) -> request::Op {
        use request::Op;
        let s = String::clone;
        match self {
            Self::Logout => Op::Logout(pb::Logout {}),
            Self::InstantSend {
                account,
                msg,
                message_id,
            } => Op::SendInstantMessage(pb::SendInstantMessage {
                account: s(account),
                msg: s(msg),
                msg_id: s(message_id),
            }),
            Self::QueryUserStatus { account } => Op::QueryUserStatus(pb::QueryUserStatus {
                account: s(account),
            }),
            Self::SetAttr { name, value } => Op::SetUserAttr(pb::SetUserAttr {
                name: s(name),
                value: s(value),
            }),
            Self::GetAttr { account, name, .. } => Op::GetUserAttr(pb::GetUserAttr {
                account: s(account),
                name: s(name),
            }),
            Self::GetAttrAll { account, .. } => Op::GetUserAttrAll(pb::GetUserAttrAll {
                account: s(account),
            }),
            Self::Invoke { name, req, call_id } => Op::Invoke(pb::Invoke {
                name: s(name),
                req: s(req),
                call_id: s(call_id),
            }),
            Self::ChannelJoin { channel } => Op::ChannelJoin(pb::ChannelJoin {
                channel: s(channel),
            }),
            Self::ChannelLeave { channel } => Op::ChannelLeave(pb::ChannelLeave {
                channel: s(channel),
            }),
            Self::ChannelQueryUserNum { channel } => {
                Op::ChannelQueryUserNum(pb::ChannelQueryUserNum {
                    channel: s(channel),
                })
            }
            Self::ChannelQueryUserIsIn { channel, account } => {
                Op::ChannelQueryUserIsIn(pb::ChannelQueryUserIsIn {
                    channel: s(channel),
                    account: s(account),
                })
            }
            Self::ChannelSetAttr {
                channel,
                name,
                value,
            } => Op::ChannelSetAttr(pb::ChannelSetAttr {
                channel: s(channel),
                name: s(name),
                value: s(value),
            }),
            Self::ChannelDelAttr { channel, name } => Op::ChannelDelAttr(pb::ChannelDelAttr {
                channel: s(channel),
                name: s(name),
            }),
            Self::ChannelClearAttr { channel } => Op::ChannelClearAttr(pb::ChannelClearAttr {
                channel: s(channel),
            }),
            Self::ChannelSend {
                channel,
                msg,
                message_id,
                force,
            } => Op::SendChannelMessage(pb::SendChannelMessage {
                channel: s(channel),
                msg: s(msg),
                msg_id: s(message_id),
                force: *force,
            }),
            Self::Invite {
                channel,
                account,
                extra,
                ..
            } => Op::Invite(pb::Invite {
                channel: s(channel),
                account: s(account),
                extra: s(extra),
            }),
            Self::InviteAnswer {
                channel,
                account,
                extra,
                accept,
            } => {
                let m = pb::InviteAnswer {
                    channel: s(channel),
                    account: s(account),
                    extra: s(extra),
                };
                if *accept {
                    Op::InviteAccept(m)
                } else {
                    Op::InviteRefuse(m)
                }
            }
            Self::InviteEnd {
                channel,
                account,
                as_caller,
            } => Op::InviteEnd(pb::InviteEnd {
                channel: s(channel),
                account: s(account),
                as_caller: *as_caller,
            }),
            Self::InviteDtmf {
                channel,
                account,
                dtmf,
                as_caller,
            } => Op::InviteDtmf(pb::InviteDtmf {
                channel: s(channel),
                account: s(account),
                dtmf: s(dtmf),
                as_caller: *as_caller,
            }),
        }
    }

    /// What queueing the request does to the client's own state: the call mirror runs ahead
    /// of the broker's answer, so a second call on the same key is refused at once.
    pub(in crate::client) fn submitted(&self, c: &mut Client) {
        match self {
            Self::Invite {
                channel, account, ..
            } => c.calls.set(channel, account, true, Some(Phase::Waiting)),
            Self::InviteAnswer {
                channel,
                account,
                accept,
                ..
            } => c
                .calls
                .set(channel, account, false, accept.then_some(Phase::Accepted)),
            Self::InviteEnd {
                channel,
                account,
                as_caller,
            } => c
                .calls
                .set(channel, account, *as_caller, Some(Phase::Ending)),
            _ => {}
        }
    }

    /// The server applied the request: report its result. A result of the wrong kind fails the
    /// request.
    pub(in crate::client) fn succeeded(
        self,
        result: Option<reply::Result>,
        c: &mut Client,
        now: Instant,
    ) {
        use reply::Result as R;
        let ev = match (self, result) {
            (Self::Logout, _) => {
                return c.logged_out(now);
            }
            (Self::InstantSend { message_id, .. } | Self::ChannelSend { message_id, .. }, _) => {
                Event::MessageSendSuccess { message_id }
            }
            (Self::QueryUserStatus { account }, Some(R::UserStatus(s))) => {
                Event::QueryUserStatusResult {
                    name: account,
                    status: if s.online { "1" } else { "0" }.into(),
                }
            }
            (Self::GetAttr { account, name, .. }, Some(R::AttrValue(v))) => Event::UserAttrResult {
                account,
                name,
                value: v.value,
            },
            (Self::GetAttrAll { account, .. }, Some(R::AttrAll(a))) => Event::UserAttrAllResult {
                account,
                value: a.json,
            },
            (Self::Invoke { call_id, .. }, Some(R::InvokeResult(res))) => {
                if !res.err.is_empty() {
                    let ecode = res.err.parse().unwrap_or(ErrorCode::General.code());
                    c.events.push_back(Event::Error {
                        name: "invoke".into(),
                        ecode,
                        desc: res.resp.clone(),
                    });
                }
                Event::InvokeRet {
                    call_id,
                    err: res.err,
                    resp: res.resp,
                }
            }
            (Self::ChannelJoin { .. }, Some(R::ChannelJoined(j))) => {
                return channel_joined(c, j);
            }
            (Self::ChannelLeave { channel }, _) => {
                c.joined.retain(|j| *j != channel);
                Event::ChannelLeaved {
                    channel,
                    ecode: ErrorCode::LeaveChannelByUser.code(),
                }
            }
            (Self::ChannelQueryUserNum { channel }, Some(R::ChannelUserNum(n))) => {
                Event::ChannelQueryUserNumResult {
                    channel,
                    ecode: 0,
                    num: i32::try_from(n.num).unwrap_or(i32::MAX),
                }
            }
            (Self::ChannelQueryUserIsIn { channel, account }, Some(R::ChannelIsIn(i))) => {
                Event::ChannelQueryUserIsIn {
                    channel,
                    account,
                    is_in: i32::from(i.is_in),
                }
            }
            (
                Self::SetAttr { .. }
                | Self::ChannelSetAttr { .. }
                | Self::ChannelDelAttr { .. }
                | Self::ChannelClearAttr { .. }
                | Self::Invite { .. }
                | Self::InviteAnswer { .. }
                | Self::InviteDtmf { .. },
                _,
            ) => return,
            (
                Self::InviteEnd {
                    channel,
                    account,
                    as_caller,
                },
                _,
            ) => {
                // The broker ended whatever call it had under this key when the request got
                // there, which may be a newer one than the call this request was about.
                c.calls.set(&channel, &account, as_caller, None);
                Event::InviteEndByMyself {
                    channel,
                    account,
                    uid: 0,
                }
            }
            (what, result) => {
                c.log(&format!("malformed reply {result:?} to {what:?}"));
                return what.failed(Failure::Unanswered("malformed reply from the server"), c);
            }
        };
        c.events.push_back(ev);
    }

    /// The request failed: settle the call mirror (for a request that was queued), then report
    /// the request's own failure callback, if it has one, and `onError`.
    pub(in crate::client) fn failed(self, failure: Failure, c: &mut Client) {
        let (ecode, e) = match failure {
            Failure::Refused(e) => (e.code.code(), e),
            Failure::Answered { ecode, error } => {
                self.undo(error.code, c);
                (ecode, error)
            }
            Failure::Unanswered(desc) => {
                // A message without an answer is a send timeout, whatever cut it short.
                let code = match self {
                    Self::InstantSend { .. } | Self::ChannelSend { .. } => {
                        ErrorCode::SendMessageTimeout
                    }
                    _ => ErrorCode::GeneralFailed,
                };
                self.undo(code, c);
                (code.code(), CallError::new(code, desc))
            }
        };
        let name = self.name();
        let ev = match self {
            Self::InstantSend { message_id, .. } | Self::ChannelSend { message_id, .. } => {
                Some(Event::MessageSendError { message_id, ecode })
            }
            Self::Invoke { call_id, .. } => Some(Event::InvokeRet {
                call_id,
                err: ecode.to_string(),
                resp: String::new(),
            }),
            Self::ChannelJoin { channel } => Some(Event::ChannelJoinFailed { channel, ecode }),
            Self::ChannelQueryUserNum { channel } => Some(Event::ChannelQueryUserNumResult {
                channel,
                ecode,
                num: 0,
            }),
            Self::Invite {
                channel,
                account,
                extra,
                ..
            } => Some(Event::InviteFailed {
                channel,
                account,
                uid: 0,
                ecode,
                extra,
            }),
            _ => None,
        };
        c.events.extend(ev);
        c.events.push_back(Event::Error {
            name: name.into(),
            ecode,
            desc: e.message,
        });
    }

    /// What a failure of a queued request means for the call mirror (see `submitted`).
    fn undo(&self, code: ErrorCode, c: &mut Client) {
        match self {
            // A re-invitation fails without touching the call already in progress.
            Self::Invite {
                channel, account, ..
            } if code != ErrorCode::InviteReinvite => c.calls.set(channel, account, true, None),
            // The broker had no such ringing call: it ended meanwhile, so the accept did not
            // take and the call is over for this side.
            Self::InviteAnswer {
                channel,
                account,
                accept: true,
                ..
            } if c.calls.phase(channel, account, false) == Some(Phase::Accepted) => {
                c.calls.set(channel, account, false, None);
                c.events.push_back(Event::InviteEndByPeer {
                    channel: channel.clone(),
                    account: account.clone(),
                    uid: 0,
                    extra: String::new(),
                });
            }
            // The broker has no such call any more, yet no terminal event reached us: the call
            // is over all the same.
            Self::InviteEnd {
                channel,
                account,
                as_caller,
            } if c.calls.phase(channel, account, *as_caller) == Some(Phase::Ending) => {
                c.calls.set(channel, account, *as_caller, None);
                c.events.push_back(Event::InviteEndByMyself {
                    channel: channel.clone(),
                    account: account.clone(),
                    uid: 0,
                });
            }
            _ => {}
        }
    }
}

/// The join was applied: the channels it made this session leave, then the joined callback,
/// the member list and the channel's attributes.
fn channel_joined(c: &mut Client, j: pb::ChannelJoined) {
    for old in j.left {
        c.joined.retain(|ch| *ch != old);
        c.events.push_back(Event::ChannelLeaved {
            channel: old,
            ecode: ErrorCode::LeaveChannelByUser.code(),
        });
    }
    if !c.joined.contains(&j.channel) {
        c.joined.push(j.channel.clone());
    }
    c.events.push_back(Event::ChannelJoined {
        channel: j.channel.clone(),
    });
    let uids = vec![0; j.accounts.len()];
    c.events.push_back(Event::ChannelUserList {
        channel: j.channel.clone(),
        accounts: j.accounts,
        uids,
    });
    for a in j.attrs {
        c.events.push_back(Event::ChannelAttrUpdated {
            channel: j.channel.clone(),
            name: a.name,
            value: a.value,
            kind: "update".into(),
        });
    }
}
