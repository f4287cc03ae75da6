//! A store that fails: the client hears `GENERAL_E_FAILED` with a generic message and nothing
//! of the detail (paths, database messages); the broker counts the failure, and the session and
//! its connection carry on.

use std::io;
use std::time::{Duration, Instant};

use beckon_broker::{
    Apps, Broker, BrokerConfig, ConnId, PushOutcome, Store, StoreError, StoredMessage,
};
use beckon_proto::pb::{self, request::Op};
use beckon_testkit::wire;

/// What the store knows and the client must not.
const SECRET_DETAIL: &str = "/var/lib/beckon/beckon.redb: No space left on device";

/// Every operation fails.
#[derive(Debug)]
struct BrokenStore;

fn broken() -> StoreError {
    StoreError::Io(io::Error::other(SECRET_DETAIL))
}

#[rustfmt::skip]
impl Store for BrokenStore {
    fn user_attr(&self, _: &str, _: &str, _: &str) -> Result<Option<String>, StoreError> { Err(broken()) }
    fn user_attrs(&self, _: &str, _: &str) -> Result<Vec<(String, String)>, StoreError> { Err(broken()) }
    fn set_user_attr(&mut self, _: &str, _: &str, _: &str, _: Option<&str>) -> Result<(), StoreError> { Err(broken()) }
    fn user_attr_count(&self, _: &str, _: &str) -> Result<usize, StoreError> { Err(broken()) }
    fn push_offline(&mut self, _: &str, _: &str, _: StoredMessage, _: Option<usize>) -> Result<PushOutcome, StoreError> { Err(broken()) }
    fn take_offline(&mut self, _: &str, _: &str) -> Result<Vec<StoredMessage>, StoreError> { Err(broken()) }
}

#[test]
fn store_failures_are_1001_without_their_detail() {
    let now = Instant::now();
    let config = BrokerConfig::new(Apps::development(), [4; 32]);
    let mut b = Broker::new(config, BrokenStore, now, 0);
    // The stored messages cannot be read at login: counted, and the login goes ahead.
    wire::login_acked(&mut b, ConnId(1), "app", "alice", now);
    assert!(b.is_online("app", "alice"));
    assert_eq!(b.stats().store_errors, 1);

    let requests = [
        Op::SetUserAttr(pb::SetUserAttr {
            name: "color".into(),
            value: "blue".into(),
        }),
        Op::SetUserAttr(pb::SetUserAttr {
            name: "color".into(),
            value: String::new(),
        }),
        Op::GetUserAttr(pb::GetUserAttr {
            account: "bob".into(),
            name: "color".into(),
        }),
        Op::GetUserAttrAll(pb::GetUserAttrAll {
            account: "bob".into(),
        }),
        Op::SendInstantMessage(pb::SendInstantMessage {
            account: "bob".into(),
            msg: "hi".into(),
            msg_id: "m1".into(),
        }),
    ];
    let n = requests.len() as u64;
    for (id, op) in (1..).zip(requests) {
        let reply = wire::request(&mut b, ConnId(1), id, op, now);
        assert_eq!(reply.code, 1001, "{reply:?}");
        assert!(!reply.message.is_empty());
        assert!(
            !reply.message.contains("redb") && !reply.message.contains("space"),
            "{}",
            reply.message
        );
    }
    let invoke = wire::invoke_request("io.agora.signal.user_get_attr_all", r#"{"account":"bob"}"#);
    let result = wire::invoke_result(wire::request(&mut b, ConnId(1), n + 1, invoke, now));
    assert_eq!(result.err, "1001");
    assert!(!result.resp.contains("redb"), "{}", result.resp);
    assert_eq!(b.stats().store_errors, 1 + n + 1);
    assert_eq!(b.stats().messages_stored, 0);

    // The grace period cannot be read either: the default serves (120 s).
    b.disconnect(ConnId(1), now);
    assert_eq!(b.stats().store_errors, 1 + n + 2);
    b.handle_timeout(now + Duration::from_secs(119));
    assert!(b.is_online("app", "alice"));
    b.handle_timeout(now + Duration::from_secs(120));
    assert!(!b.is_online("app", "alice"));
}

#[test]
fn the_detail_stays_in_the_error_for_the_log() {
    let e = broken();
    assert!(e.to_string().contains(SECRET_DETAIL), "{e}");
    assert!(std::error::Error::source(&e).is_some());
    let client: beckon_proto::CallError = e.into();
    assert_eq!(client.code.code(), 1001);
    assert!(!client.message.contains("redb"));
}
