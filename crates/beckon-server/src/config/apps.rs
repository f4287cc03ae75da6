//! One `[[apps]]` table of the configuration file, and its resolution into an [`AppConfig`].

use std::time::Duration;

use serde::{Deserialize, Deserializer};

use beckon_broker::{AppConfig, OfflinePolicy};
use beckon_proto::Limits;
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
    max_channel_attrs: Option<usize>,
    offline_messages: Option<bool>,
    offline_max_per_account: Option<usize>,
    offline_ttl_s: Option<u64>,
}

/// Reads a string straight into a [`Secret`], so it never sits in the model unwrapped.
fn secret<'de, D: Deserializer<'de>>(d: D) -> Result<Secret<String>, D::Error> {
    String::deserialize(d).map(Secret::new)
}

impl FileApp {
    pub(super) fn into_app_config(self) -> Result<AppConfig, ConfigError> {
        // The broker checks a login's App ID with the default account rules before it looks the
        // app up, so an app whose id breaks them could never be logged in to.
        if let Err(e) = Limits::default().account("App ID", &self.app_id) {
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
        set_positive!(id, self.max_channel_attrs => app.max_channel_attrs);

        let mut offline = OfflinePolicy::default();
        if let Some(enabled) = self.offline_messages {
            offline.enabled = enabled;
        }
        set_positive!(id, self.offline_max_per_account => offline.max_per_account);
        set_positive!(id, self.offline_ttl_s => offline.ttl, secs);
        app.offline = offline;
        Ok(app)
    }
}
