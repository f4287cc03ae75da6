//! Admin requests, reloads and the metrics snapshot: what operators ask of the broker. The
//! types are in `crate::admin`.

use std::sync::Arc;
use std::time::Instant;

use beckon_proto::pb;
use beckon_proto::{ErrorCode, validate};
use beckon_token::{Privileges, TokenError};

use super::{Broker, Caller, EndReason, uid_for};
use crate::SessionId;
use crate::admin::{
    AccountInfo, AdminCall, AdminError, AdminErrorKind as K, AdminRequest, AdminResponse,
    AppGauges, ChannelInfo, ChannelSummary, DEVELOPMENT_APP_LABEL, MAX_PAGE, Page, PageRequest,
    ReloadReport, RequestKind, Sent, Snapshot, UNKNOWN_APP_LABEL,
};
use crate::config::{AppConfig, Apps};
use crate::store::{Store, StoreAnswer, StoreBatch, StoreError, StoreOp};

/// What an admin is told when a kick ends its session.
pub const ADMIN_KICK_MESSAGE: &str = "logged out by an administrator";

impl<S: Store> Broker<S> {
    /// Runs one admin request at `now`, once its token is checked: a SignalingToken for
    /// `call.app_id` with the `server` privilege, signed with the app's current certificate
    /// (in development mode, where apps have no certificate, any unexpired token of the app
    /// with the privilege). Outputs it causes are drained as after any input.
    ///
    /// # Errors
    ///
    /// An [`AdminError`]: its kind says whether the token (401, 403), the parameters (400), the
    /// target (404) or the store (500) failed, its code is the SPEC §3 code, and its message
    /// says why. A failed request changes nothing.
    pub fn admin(&mut self, call: AdminCall, now: Instant) -> Result<AdminResponse, AdminError> {
        self.now = now;
        let (app, account) = self.authorize(&call.app_id, &call.token, now)?;
        let me = Caller {
            // No session: the handlers a system sender reaches never look one up.
            sid: super::cluster::ADMIN_SID,
            app,
            account: Arc::from(account),
            privileged: true,
            request: 0,
            kind: None,
        };
        if self.config.cluster {
            let node_local = match &call.request {
                AdminRequest::Accounts(_) | AdminRequest::Account { .. } => Some("accounts"),
                AdminRequest::Kick { .. } => Some("kicking an account"),
                AdminRequest::Channels(_) | AdminRequest::Channel { .. } => Some("channels"),
                AdminRequest::SendChannelMessage { .. } => Some("sending channel messages"),
                _ => None,
            };
            if let Some(what) = node_local {
                let e = crate::cluster::not_cluster_wide(&format!("the admin API's {what}"));
                return Err(AdminError::new(
                    crate::admin::AdminErrorKind::Conflict,
                    e.code,
                    e.message,
                ));
            }
        }
        match call.request {
            AdminRequest::Authorize => Ok(AdminResponse::Authorized {
                account: me.account.to_string(),
            }),
            AdminRequest::Accounts(page) => self.admin_accounts(&me, &page),
            AdminRequest::Account { account } => self.admin_account(&me, &account),
            AdminRequest::Kick { account } => self.admin_kick(&me, &account),
            AdminRequest::Channels(page) => self.admin_channels(&me, &page),
            AdminRequest::Channel { channel } => self.admin_channel(&me, &channel),
            AdminRequest::SendMessage { to, text } => self.admin_send(&me, to, text),
            AdminRequest::SendChannelMessage { channel, text } => {
                self.admin_channel_send(&me, channel, text)
            }
            AdminRequest::MintToken {
                account,
                expire_in,
                server,
            } => self.admin_mint(&me, &account, expire_in, server, now),
        }
    }

    fn authorize(
        &self,
        app_id: &str,
        token: &str,
        now: Instant,
    ) -> Result<(Arc<AppConfig>, String), AdminError> {
        let unauthorized = |code, message: String| AdminError::new(K::Unauthorized, code, message);
        if token.is_empty() {
            return Err(unauthorized(
                ErrorCode::LoginTokenWrong,
                "an admin request needs `Authorization: Bearer <token>`: a SignalingToken \
                 of the app with the server privilege"
                    .into(),
            ));
        }
        validate::app_id(app_id).map_err(AdminError::from)?;
        let app = (self.config.apps.lookup(app_id)).ok_or_else(|| {
            AdminError::new(
                K::NotFound,
                ErrorCode::LoginFailed,
                format!("unknown App ID {app_id:?}"),
            )
        })?;
        let wrong = |e: TokenError| match e {
            TokenError::Expired { .. } => unauthorized(ErrorCode::LoginTokenExpired, e.to_string()),
            e => unauthorized(ErrorCode::LoginTokenWrong, e.to_string()),
        };
        let peeked = beckon_token::peek(token).map_err(wrong)?;
        let now_unix = self.unix_ms(now) / 1000;
        let claims = match app.certificate.as_ref().map(|c| c.expose().as_slice()) {
            Some(cert) => beckon_token::verify(cert, token, app_id, &peeked.account, now_unix)
                .map_err(wrong)?,
            None => {
                // Development mode verifies no signature, as its logins do; the app and the
                // expiry still count.
                if peeked.app_id != app_id {
                    return Err(unauthorized(
                        ErrorCode::LoginTokenWrong,
                        format!("the token is for the app {:?}", peeked.app_id),
                    ));
                }
                if now_unix >= peeked.expires_at {
                    return Err(unauthorized(
                        ErrorCode::LoginTokenExpired,
                        "the token has expired".into(),
                    ));
                }
                peeked
            }
        };
        if !claims.privileges.contains(Privileges::SERVER) {
            return Err(AdminError::new(
                K::Forbidden,
                ErrorCode::GeneralFailed,
                "the token lacks the server privilege that admin requests need",
            ));
        }
        Ok((Arc::new(app), claims.account))
    }

    fn admin_accounts(&self, me: &Caller, page: &PageRequest) -> Result<AdminResponse, AdminError> {
        let names = self
            .apps
            .get(&me.app.app_id)
            .map(|a| a.online.keys().map(|k| &**k).collect::<Vec<_>>())
            .unwrap_or_default();
        let page = paged(names, page, |n| n)?;
        Ok(AdminResponse::Accounts(Page {
            items: page.items.into_iter().map(str::to_owned).collect(),
            next: page.next,
        }))
    }

    fn admin_account(&mut self, me: &Caller, account: &str) -> Result<AdminResponse, AdminError> {
        me.app.limits.account("account", account)?;
        // An operator's read, rare and never on a client's path: it is the one the broker runs
        // on its own store handle, and sees the writes committed so far.
        let read = StoreBatch {
            id: 0,
            ops: vec![StoreOp::Attrs {
                app: me.app.app_id.clone(),
                account: account.to_owned(),
            }],
        };
        let answer = (self.store.execute(vec![read]).pop()).map(|done| {
            done.answers
                .and_then(|mut a| a.pop().unwrap_or(Ok(StoreAnswer::Done)))
        });
        let attributes = match answer {
            Some(Ok(StoreAnswer::Attrs(attrs))) => attrs,
            Some(Err(e)) => return Err(self.store_failed(e).into()),
            other => {
                let e = StoreError::Corrupt(format!("an answer of the wrong kind: {other:?}"));
                return Err(self.store_failed(e).into());
            }
        };
        let mut info = AccountInfo {
            account: account.to_owned(),
            uid: uid_for(&me.app.app_id, account),
            online: false,
            connected: false,
            session_id: None,
            privileged: false,
            channels: Vec::new(),
            unacked_events: 0,
            attributes,
        };
        if let Some(sid) = self.session_of(&me.app.app_id, account)
            && let Some(s) = self.sessions.get(&sid)
        {
            info.online = true;
            info.connected = s.conn.is_some();
            info.session_id = Some(sid.0);
            info.privileged = s.privileged();
            info.channels = s.channels.iter().map(|c| c.to_string()).collect();
            info.unacked_events = s.events.unacked_len();
        }
        Ok(AdminResponse::Account(info))
    }

    fn admin_kick(&mut self, me: &Caller, account: &str) -> Result<AdminResponse, AdminError> {
        me.app.limits.account("account", account)?;
        let sid = self.session_of(&me.app.app_id, account).ok_or_else(|| {
            AdminError::new(
                K::NotFound,
                ErrorCode::LogoutAlreadyLogout,
                format!("{account} is not online"),
            )
        })?;
        self.stats.admin_kicks += 1;
        self.kick_session(sid, ADMIN_KICK_MESSAGE);
        Ok(AdminResponse::Kicked)
    }

    /// Ends a session as a kick: its connection hears `LOGOUT_E_KICKED` and `message`.
    fn kick_session(&mut self, sid: SessionId, message: &str) {
        if let Some(conn) = self.sessions.get(&sid).and_then(|s| s.conn) {
            self.kick(conn, ErrorCode::LogoutKicked, message);
        }
        self.end_session(sid, EndReason::Kicked);
    }

    fn admin_channels(&self, me: &Caller, page: &PageRequest) -> Result<AdminResponse, AdminError> {
        let all = self.channels.summaries(&me.app.app_id);
        let page = paged(all, page, |(name, _)| name)?;
        Ok(AdminResponse::Channels(Page {
            items: (page.items.into_iter())
                .map(|(channel, members)| ChannelSummary {
                    channel: channel.to_owned(),
                    members,
                })
                .collect(),
            next: page.next,
        }))
    }

    fn admin_channel(&self, me: &Caller, channel: &str) -> Result<AdminResponse, AdminError> {
        me.app.limits.channel("channel", channel)?;
        let attributes = self.channel_attrs(&me.app.app_id, channel).ok_or_else(|| {
            AdminError::new(
                K::NotFound,
                ErrorCode::GeneralFailed,
                format!("no channel {channel:?}"),
            )
        })?;
        Ok(AdminResponse::Channel(ChannelInfo {
            channel: channel.to_owned(),
            members: self.channel_members(&me.app.app_id, channel),
            attributes,
        }))
    }

    fn admin_send(
        &mut self,
        me: &Caller,
        to: String,
        text: String,
    ) -> Result<AdminResponse, AdminError> {
        let online = self.is_online(&me.app.app_id, &to);
        let before = self.next_position();
        let m = pb::SendInstantMessage {
            account: to,
            msg: text,
            msg_id: "admin".into(),
        };
        if self.config.cluster {
            // In a cluster the recipient may be on another node: the message waits for the
            // cluster to say where, as a session's does, and so does the answer.
            let id = self.next_admin_id();
            let me = Caller {
                request: id,
                ..me.clone()
            };
            if self.send_instant_held(&me, m)? {
                return Ok(AdminResponse::Waiting { id });
            }
        } else {
            self.send_instant(me, m)?;
        }
        self.stats.admin_messages += 1;
        Ok(AdminResponse::Sent(Sent {
            server_msg_id: self.p2p_message_id(before),
            online,
            recipients: usize::from(online),
        }))
    }

    fn admin_channel_send(
        &mut self,
        me: &Caller,
        channel: String,
        text: String,
    ) -> Result<AdminResponse, AdminError> {
        let recipients = (self.channels.get(&me.app.app_id, &channel)).map_or(0, |c| c.len());
        let before = self.next_message;
        let m = pb::SendChannelMessage {
            channel,
            msg: text,
            msg_id: "admin".into(),
            force: true,
        };
        self.channel_send(me, m)?;
        self.stats.admin_messages += 1;
        Ok(AdminResponse::Sent(Sent {
            server_msg_id: self.last_message_id(before),
            online: recipients > 0,
            recipients,
        }))
    }

    /// The id of the message just sent, if one was made since `before` (a forced message to an
    /// empty channel makes none).
    fn last_message_id(&self, before: u64) -> u64 {
        if self.next_message == before {
            return 0;
        }
        self.message_id_of(self.next_message)
    }

    fn admin_mint(
        &self,
        me: &Caller,
        account: &str,
        expire_in: u64,
        server: bool,
        now: Instant,
    ) -> Result<AdminResponse, AdminError> {
        let Some(cert) = me.app.certificate.as_ref().map(|c| c.expose().as_slice()) else {
            return Err(AdminError::new(
                K::Conflict,
                ErrorCode::GeneralFailed,
                "this app has no certificate (development mode): it verifies no tokens",
            ));
        };
        let now_unix = self.unix_ms(now) / 1000;
        let privileges = if server {
            Privileges::SERVER
        } else {
            Privileges::NONE
        };
        let token = beckon_token::issue::issue_with(
            cert,
            &me.app.app_id,
            account,
            expire_in,
            privileges,
            now_unix,
        )
        .map_err(|why| AdminError::new(K::BadRequest, ErrorCode::GeneralWrongParam, why))?;
        Ok(AdminResponse::Token {
            token,
            expires_at: now_unix.saturating_add(expire_in),
        })
    }

    // ---- reload -------------------------------------------------------------------------------

    /// Serves `apps` from now on: new logins are checked against the new certificates and
    /// limits, sessions of apps still served stay connected and take the new limits, and the
    /// sessions of apps no longer served are logged out (`LOGOUT_E_KICKED`, saying so).
    pub fn reconfigure(&mut self, apps: Apps, now: Instant) -> ReloadReport {
        self.now = now;
        self.config.apps = apps;
        let mut report = ReloadReport::default();
        let mut ids: Vec<String> = self.apps.keys().cloned().collect();
        ids.sort();
        for id in ids {
            match self.config.apps.lookup(&id) {
                Some(config) => {
                    let config = Arc::new(config);
                    let Some(state) = self.apps.get_mut(&id) else {
                        continue;
                    };
                    state.config = config.clone();
                    let sids: Vec<SessionId> = state.online.values().copied().collect();
                    for sid in sids {
                        if let Some(s) = self.sessions.get_mut(&sid) {
                            s.app = config.clone();
                        }
                    }
                    report.apps_updated += 1;
                }
                None => {
                    let sids: Vec<SessionId> = (self.apps.get(&id))
                        .map(|a| a.online.values().copied().collect())
                        .unwrap_or_default();
                    let why = format!("the app {id} is no longer served by this server");
                    for sid in sids {
                        self.kick_session(sid, &why);
                        report.sessions_ended += 1;
                    }
                    self.apps.remove(&id);
                    report.apps_removed.push(id);
                }
            }
        }
        report
    }

    /// The (app, account) logged in on `conn`, if it is; for a driver's log context.
    pub fn conn_identity(&self, conn: crate::ConnId) -> Option<(&str, &str)> {
        let sid = self.conns.get(&conn)?.session?;
        let s = self.sessions.get(&sid)?;
        Some((&s.app.app_id, &s.account))
    }

    // ---- metrics ------------------------------------------------------------------------------

    /// The label an app's metrics carry (see [`Tallies`](crate::Tallies)).
    pub(super) fn app_label<'a>(&self, app_id: &'a str) -> &'a str {
        if self.config.apps.is_configured(app_id) {
            app_id
        } else if self.config.apps.is_development() {
            DEVELOPMENT_APP_LABEL
        } else {
            UNKNOWN_APP_LABEL
        }
    }

    pub(super) fn tally_login(&mut self, app_id: &str, code: ErrorCode) {
        let label = self.app_label(app_id);
        *self
            .tallies
            .app(label)
            .logins
            .entry(code.code())
            .or_default() += 1;
    }

    pub(super) fn tally_request(&mut self, app_id: &str, kind: RequestKind, code: i32) {
        let label = self.app_label(app_id);
        *(self.tallies.app(label).requests)
            .entry((kind, code))
            .or_default() += 1;
    }

    /// Counters and gauges for a metrics scrape, consistent with each other. Walks every
    /// session and channel once: cheap at scrape intervals, not meant for every input.
    pub fn snapshot(&self) -> Snapshot {
        let mut gauges = std::collections::BTreeMap::<String, AppGauges>::new();
        for (id, app) in &self.apps {
            let g = gauges.entry(self.app_label(id).to_owned()).or_default();
            for sid in app.online.values() {
                g.sessions += 1;
                if self.sessions.get(sid).is_some_and(|s| s.conn.is_none()) {
                    g.sessions_in_grace += 1;
                }
            }
        }
        // In cluster mode a node's channels are its replicas: the channels it has members
        // of, with its own members of them.
        let replicas = self.cluster_channels.per_app();
        for (app, channels, members) in self.channels.per_app().chain(replicas) {
            let g = gauges.entry(self.app_label(app).to_owned()).or_default();
            g.channels += channels;
            g.channel_members += members;
        }
        Snapshot {
            stats: self.stats(),
            tallies: self.tallies.clone(),
            gauges,
            calls_in_progress: self.calls.len(),
        }
    }
}

/// The page of `all` (in any order) after `req.after`, sorted by `name`.
fn paged<T>(
    mut all: Vec<T>,
    req: &PageRequest,
    name: impl Fn(&T) -> &str,
) -> Result<Page<T>, AdminError> {
    if req.limit == 0 || req.limit > MAX_PAGE {
        return Err(AdminError::new(
            K::BadRequest,
            ErrorCode::GeneralWrongParam,
            format!("limit must be 1 to {MAX_PAGE}"),
        ));
    }
    if let Some(after) = &req.after {
        all.retain(|t| name(t) > after.as_str());
    }
    all.sort_unstable_by(|a, b| name(a).cmp(name(b)));
    let more = all.len() > req.limit;
    all.truncate(req.limit);
    let next = more
        .then(|| all.last().map(|t| name(t).to_owned()))
        .flatten();
    Ok(Page { items: all, next })
}
