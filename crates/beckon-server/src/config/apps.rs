//! One `[[apps]]` table of the configuration file, and its resolution into an [`AppConfig`].

use std::time::Duration;

use serde::{Deserialize, Deserializer};

use beckon_broker::{AppConfig, OfflinePolicy};
use beckon_token::Secret;

use super::ConfigError;
use super::file::{positive, set_positive};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileApp {
    app_id: String,
    #[serde(deserialize_with = "secret")]
    certificate: Secret<String>,
    #[serde(default)]
    allow_no_token: bool,
    #[serde(default)]
    legacy_tokens: bool,
    max_name_chars: Option<usize>,
    max_user_attr_value_chars: Option<usize>,
    max_channel_attr_value_chars: Option<usize>,
    max_message_bytes: Option<usize>,
    max_user_attrs: Option<usize>,
    max_channels_per_session: Option<usize>,
    channel_messages_per_user: Option<u32>,
    channel_messages_per_channel: Option<u32>,
    max_notified_members: Option<usize>,
    channel_ttl_s: Option<u64>,
    max_channel_ttl_s: Option<u64>,
    max_channel_attrs: Option<usize>,
    max_channel_attr_bytes: Option<usize>,
    max_empty_channels_per_account: Option<usize>,
    max_channels: Option<usize>,
    max_invites_per_session: Option<usize>,
    max_invites: Option<usize>,
    offline_messages: Option<bool>,
    offline_max_per_account: Option<usize>,
    offline_max_per_sender: Option<usize>,
    offline_max_bytes: Option<usize>,
    offline_ttl_s: Option<u64>,
}

/// Reads a string straight into a [`Secret`], so it never sits in the model unwrapped.
fn secret<'de, D: Deserializer<'de>>(d: D) -> Result<Secret<String>, D::Error> {
    String::deserialize(d).map(Secret::new)
}

impl FileApp {
    /// The app's configuration; `max_event_bytes` is the largest answer the broker puts in one
    /// event, which a join's answer (members and attributes) must fit in.
    pub(super) fn into_app_config(self, max_event_bytes: usize) -> Result<AppConfig, ConfigError> {
        // The broker checks a login's App ID with the default account rules before it looks the
        // app up, so an app whose id breaks them could never be logged in to.
        if let Err(e) = beckon_proto::validate::app_id(&self.app_id) {
            return Err(ConfigError::InvalidAppId {
                app_id: self.app_id,
                reason: e.message,
            });
        }
        if self.certificate.expose().is_empty() {
            return Err(ConfigError::EmptyCertificate {
                app_id: self.app_id,
            });
        }
        let id = Some(self.app_id.as_str());
        let certificate = self.certificate.expose().as_bytes();
        let mut app = AppConfig::new(self.app_id.clone(), certificate);
        app.allow_no_token = self.allow_no_token;
        app.legacy_tokens = self.legacy_tokens;

        let secs = Duration::from_secs;
        let limits = &mut app.limits;
        set_positive!(id, self.max_name_chars => limits.max_name_chars);
        set_positive!(id, self.max_user_attr_value_chars => limits.max_user_attr_value_chars);
        set_positive!(id, self.max_channel_attr_value_chars => limits.max_channel_attr_value_chars);
        set_positive!(id, self.max_message_bytes => limits.max_message_bytes);
        set_positive!(id, self.max_user_attrs => app.max_user_attrs);
        set_positive!(id, self.max_channels_per_session => app.max_channels_per_session);
        set_positive!(id, self.channel_messages_per_user => app.channel_messages_per_user);
        set_positive!(id, self.channel_messages_per_channel => app.channel_messages_per_channel);
        set_positive!(id, self.max_notified_members => app.max_notified_members);
        set_positive!(id, self.channel_ttl_s => app.default_channel_ttl, secs);
        set_positive!(id, self.max_channel_ttl_s => app.max_channel_ttl, secs);
        set_positive!(id, self.max_channel_attrs => app.max_channel_attrs);
        set_positive!(id, self.max_channel_attr_bytes => app.max_channel_attr_bytes);
        set_positive!(id, self.max_empty_channels_per_account => app.max_empty_channels_per_account);
        set_positive!(id, self.max_channels => app.max_channels);
        set_positive!(id, self.max_invites_per_session => app.max_invites_per_session);
        set_positive!(id, self.max_invites => app.max_invites);

        let mut offline = OfflinePolicy::default();
        if let Some(enabled) = self.offline_messages {
            offline.enabled = enabled;
        }
        set_positive!(id, self.offline_max_per_account => offline.max_per_account);
        set_positive!(id, self.offline_max_per_sender => offline.max_per_sender);
        set_positive!(id, self.offline_max_bytes => offline.max_bytes);
        set_positive!(id, self.offline_ttl_s => offline.ttl, secs);
        app.offline = offline;

        if app.default_channel_ttl > app.max_channel_ttl {
            return Err(ConfigError::InvalidValue {
                app_id: Some(app.app_id),
                key: "channel_ttl_s",
                reason: "must not exceed max_channel_ttl_s",
            });
        }
        if join_answer_bytes(&app) > max_event_bytes {
            return Err(ConfigError::InvalidValue {
                app_id: Some(app.app_id),
                key: "max_channel_attr_bytes",
                reason: "is too large: with 200 members of max_name_chars, a join's answer \
                         would not fit in one event (2 MiB)",
            });
        }
        Ok(app)
    }
}

/// The largest answer a join can get in `app`: the latest 200 members at their longest, every
/// attribute the channel may hold, and each field's framing.
fn join_answer_bytes(app: &AppConfig) -> usize {
    let members = 200 * (app.limits.max_name_chars.saturating_mul(4) + 8);
    let framing = app.max_channel_attrs.saturating_mul(32) + 1024;
    members
        .saturating_add(app.max_channel_attr_bytes)
        .saturating_add(framing)
}
