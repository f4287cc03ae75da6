//! Call signals between nodes (see `docs/cluster.md`, Calls): a call event for an account
//! with its session on another node is published on that node's topic, naming the node's
//! instance and the session, so a signal meant for an earlier run of the node, or for a
//! session that has ended, changes nothing there. Every signal is answered to the broker
//! that sent it (`ClusterIn::CallSent`): handed over, the account is on no live node, or
//! Redis could not be asked.

use redis::Value;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use beckon_broker::{CallSignal, ClusterIn};

use super::{Node, NodeMessage, node_key, node_topic, parse_presence, presence_key};
use crate::server::Input;

/// A call signal as it travels on a node's topic.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct WireSignal {
    kind: i32,
    channel: String,
    account: String,
    to_caller: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    extra: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    code: i32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    msg_type: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    msg_data: String,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's `skip_serializing_if` passes a reference.
fn is_zero(n: &i32) -> bool {
    *n == 0
}

impl From<CallSignal> for WireSignal {
    fn from(s: CallSignal) -> Self {
        Self {
            kind: s.kind,
            channel: s.channel,
            account: s.account,
            to_caller: s.to_caller,
            extra: s.extra,
            code: s.code,
            msg_type: s.msg_type,
            msg_data: s.msg_data,
        }
    }
}

impl From<WireSignal> for CallSignal {
    fn from(s: WireSignal) -> Self {
        Self {
            kind: s.kind,
            channel: s.channel,
            account: s.account,
            to_caller: s.to_caller,
            extra: s.extra,
            code: s.code,
            msg_type: s.msg_type,
            msg_data: s.msg_data,
        }
    }
}

/// Carries a call signal to the account's session and answers the broker with what became
/// of it.
pub(super) async fn signal(
    node: &Node,
    inputs: &mpsc::Sender<Input>,
    query: u64,
    app: String,
    account: String,
    signal: CallSignal,
) -> Option<ClusterIn> {
    let delivered = deliver(node, inputs, app, account, signal).await;
    if let Err(e) = &delivered {
        node.health.failed(e);
    }
    Some(ClusterIn::CallSent { query, delivered })
}

/// `Ok(true)`: handed to the node that holds the account's session (this one included);
/// `Ok(false)`: the account is on no live node, or its node is not listening.
async fn deliver(
    node: &Node,
    inputs: &mpsc::Sender<Input>,
    app: String,
    account: String,
    signal: CallSignal,
) -> Result<bool, String> {
    let mut get = redis::cmd("GET");
    get.arg(presence_key(&app, &account));
    let entry: Option<String> = node.run(&get).await?;
    let Some((held_on, instance, session)) = entry.as_deref().and_then(parse_presence) else {
        node.health.ok();
        return Ok(false);
    };
    if held_on == node.config.node_id && instance == node.instance {
        // The account logged in here after the broker looked.
        let input = ClusterIn::CallSignal {
            app,
            account,
            session,
            signal,
        };
        node.health.ok();
        return Ok(inputs.send(Input::Cluster(input)).await.is_ok());
    }
    let mut alive = redis::cmd("GET");
    alive.arg(node_key(held_on));
    let registered: Option<String> = node.run(&alive).await?;
    if registered.as_deref() != Some(instance) {
        node.health.ok();
        return Ok(false); // Its node died (or restarted): the session is gone.
    }
    let message = NodeMessage::Call {
        instance: instance.to_owned(),
        app,
        account,
        session,
        signal: signal.into(),
    };
    let payload = serde_json::to_vec(&message).expect("a call signal serialises");
    let mut publish = redis::cmd("PUBLISH");
    publish.arg(node_topic(held_on)).arg(payload);
    let receivers: Value = node.run(&publish).await?;
    node.health.ok();
    // No subscriber: the node is not listening (its subscription is down, or it just died).
    Ok(matches!(receivers, Value::Int(n) if n > 0))
}

/// What a call signal on this node's topic asks of the broker, if it is for this run.
pub(super) fn input(
    node: &Node,
    instance: &str,
    app: String,
    account: String,
    session: u64,
    signal: WireSignal,
) -> Option<ClusterIn> {
    (instance == node.instance).then(|| ClusterIn::CallSignal {
        app,
        account,
        session,
        signal: signal.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_round_trip_on_the_wire() {
        let s = CallSignal {
            kind: 5,
            channel: "c".into(),
            account: "bob".into(),
            to_caller: true,
            code: 703,
            ..CallSignal::default()
        };
        let json = serde_json::to_string(&WireSignal::from(s.clone())).unwrap();
        assert!(!json.contains("extra"), "{json}");
        let back: WireSignal = serde_json::from_str(&json).unwrap();
        assert_eq!(CallSignal::from(back), s);
    }
}
