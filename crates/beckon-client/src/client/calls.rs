//! The client's mirror of its calls: which exist and where each stands, so that it can refuse
//! what cannot apply (answering a call that is not ringing, a second invitation) and report
//! exactly one terminal callback per call.

use beckon_proto::ErrorCode;
use beckon_proto::pb;

use crate::event::Event;

/// A call as this client sees it: the channel, the other side, and who placed it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CallId {
    pub channel: String,
    /// The other side's account (or phone number).
    pub peer: String,
    /// True when this client placed the call, false when it was invited.
    pub outgoing: bool,
}

/// Where a call stands, as far as this client knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// Invited (by us or the peer) and not answered.
    Waiting,
    Accepted,
    /// We asked to end it; the answer is on its way.
    Ending,
}

/// Calls in progress, oldest first, mirrored from the broker's truth.
#[derive(Debug, Default)]
pub(super) struct Calls(Vec<(CallId, Phase)>);

impl Calls {
    /// Every call in progress, oldest first.
    pub(super) fn ids(&self) -> Vec<CallId> {
        self.0.iter().map(|(k, _)| k.clone()).collect()
    }

    /// The most recent call.
    pub(super) fn last(&self) -> Option<&CallId> {
        self.0.last().map(|(k, _)| k)
    }

    /// Where the call stands, if it exists.
    pub(super) fn phase(&self, channel: &str, peer: &str, outgoing: bool) -> Option<Phase> {
        self.position(channel, peer, outgoing).map(|i| self.0[i].1)
    }

    /// Whether the call exists and is not being ended by us.
    pub(super) fn live(&self, channel: &str, peer: &str, outgoing: bool) -> bool {
        self.phase(channel, peer, outgoing)
            .is_some_and(|p| p != Phase::Ending)
    }

    /// Sets (`Some(phase)`) or forgets (`None`) a call.
    pub(super) fn set(&mut self, channel: &str, peer: &str, outgoing: bool, state: Option<Phase>) {
        match (self.position(channel, peer, outgoing), state) {
            (Some(i), Some(a)) => self.0[i].1 = a,
            (Some(i), None) => {
                self.0.remove(i);
            }
            (None, Some(a)) => {
                let id = CallId {
                    channel: channel.to_owned(),
                    peer: peer.to_owned(),
                    outgoing,
                };
                self.0.push((id, a));
            }
            (None, None) => {}
        }
    }

    fn position(&self, channel: &str, peer: &str, outgoing: bool) -> Option<usize> {
        self.0
            .iter()
            .position(|(k, _)| k.channel == channel && k.peer == peer && k.outgoing == outgoing)
    }

    /// Ends every call locally when the session they lived in is gone: one terminal event each.
    pub(super) fn drop_all(&mut self, code: ErrorCode, events: &mut impl Extend<Event>) {
        events.extend(std::mem::take(&mut self.0).into_iter().map(|(id, phase)| {
            let (channel, account) = (id.channel, id.peer);
            if phase == Phase::Ending {
                Event::InviteEndByMyself {
                    channel,
                    account,
                    uid: 0,
                }
            } else if id.outgoing && phase == Phase::Waiting {
                Event::InviteFailed {
                    channel,
                    account,
                    uid: 0,
                    ecode: code.code(),
                    extra: String::new(),
                }
            } else {
                Event::InviteEndByPeer {
                    channel,
                    account,
                    uid: 0,
                    extra: String::new(),
                }
            }
        }));
    }

    /// A call event from the server: updates the mirror and says what to report, or why the
    /// event is dropped.
    pub(super) fn on_event(&mut self, c: pb::CallEvent) -> Result<Option<Event>, String> {
        use pb::call_event::Kind;
        let (channel, account, outgoing) = (c.channel, c.account, c.caller);
        let kind = Kind::try_from(c.kind).unwrap_or(Kind::Unspecified);
        let phase = self.phase(&channel, &account, outgoing);
        if kind != Kind::Received && kind != Kind::Unspecified && phase.is_none() {
            // The call already ended here (we refused or ended it, or it failed): the late
            // event would be a second terminal callback.
            return Err(format!(
                "dropping a {kind:?} event of a finished call with {account} on {channel}"
            ));
        }
        let ev = match kind {
            Kind::Received => {
                self.set(&channel, &account, false, Some(Phase::Waiting));
                Event::InviteReceived {
                    channel,
                    account,
                    uid: 0,
                    extra: c.extra,
                }
            }
            Kind::ReceivedByPeer => Event::InviteReceivedByPeer {
                channel,
                account,
                uid: 0,
            },
            Kind::AcceptedByPeer => {
                if phase == Some(Phase::Ending) {
                    return Ok(None); // We are ending it; our end answer closes it.
                }
                self.set(&channel, &account, true, Some(Phase::Accepted));
                Event::InviteAcceptedByPeer {
                    channel,
                    account,
                    uid: 0,
                    extra: c.extra,
                }
            }
            Kind::RefusedByPeer => {
                self.set(&channel, &account, true, None);
                Event::InviteRefusedByPeer {
                    channel,
                    account,
                    uid: 0,
                    extra: c.extra,
                }
            }
            Kind::Failed => {
                self.set(&channel, &account, true, None);
                Event::InviteFailed {
                    channel,
                    account,
                    uid: 0,
                    ecode: c.code,
                    extra: c.extra,
                }
            }
            Kind::EndByPeer => {
                self.set(&channel, &account, outgoing, None);
                Event::InviteEndByPeer {
                    channel,
                    account,
                    uid: 0,
                    extra: c.extra,
                }
            }
            Kind::Msg => Event::InviteMsg {
                channel,
                account,
                uid: 0,
                msg_type: c.msg_type,
                msg_data: c.msg_data,
                extra: c.extra,
            },
            Kind::Unspecified => return Err("call event of an unknown kind".to_owned()),
        };
        Ok(Some(ev))
    }
}
