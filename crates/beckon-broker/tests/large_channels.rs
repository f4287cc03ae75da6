//! A channel of thousands of members: member lists through invoke, counts, and the silence of
//! join/leave events above the notification threshold.

use std::time::Instant;

use beckon_broker::{AdmissionConfig, Apps, Broker, BrokerConfig, ConnId, MemoryStore};
use beckon_proto::pb::{self, event::Body, request::Op, server_frame};
use beckon_testkit::wire;

const MEMBERS: u64 = 5_000;

#[test]
fn invoke_lists_every_member_of_a_large_channel() {
    let now = Instant::now();
    let mut config = BrokerConfig::new(Apps::development(), [3; 32]);
    // Five thousand members log in in one instant.
    config.admission = AdmissionConfig::unlimited();
    let mut b = Broker::new(config, MemoryStore::new(), now, 0);
    let mut member_events = 0usize;
    for i in 0..MEMBERS {
        let conn = ConnId(i);
        b.connect(conn, now);
        let login = wire::login_frame("app", &format!("u{i:05}"), "_no_need_token");
        b.handle_frame(conn, &login, now);
        let join = Op::ChannelJoin(pb::ChannelJoin {
            channel: "big".into(),
        });
        b.handle_frame(conn, &wire::request_frame(1, join), now);
        b.handle_frame(conn, &wire::ack_all_frame(), now);
        member_events += wire::drain(&mut b)
            .iter()
            .filter(|(_, k)| {
                matches!(
                    k,
                    server_frame::Kind::Event(pb::Event {
                        body: Some(Body::ChannelUserJoined(_)),
                        ..
                    })
                )
            })
            .count();
    }
    // Join events stop once the channel passes 512 members (SPEC §7), so a crowd arriving costs
    // O(n), not O(n²).
    assert!(member_events <= 512 * 512, "{member_events} join events");
    assert_eq!(b.channel_members("app", "big").len(), MEMBERS as usize);

    let invoke =
        |b: &mut Broker<MemoryStore>, id: u64, name: &str, req: &str| -> serde_json::Value {
            let reply = wire::request(b, ConnId(0), id, wire::invoke_request(name, req), now);
            let r = wire::invoke_result(reply);
            assert_eq!(r.err, "", "{}", r.resp);
            serde_json::from_str(&r.resp).unwrap()
        };
    let all = invoke(
        &mut b,
        2,
        "io.agora.signal.channel_query_userlist_all",
        r#"{"name":"big"}"#,
    );
    assert_eq!(all["num"], MEMBERS);
    let list = all["list"].as_array().unwrap();
    assert_eq!(list.len(), MEMBERS as usize);
    assert_eq!(list[0], serde_json::json!(["u00000", 0]));
    let some = invoke(
        &mut b,
        3,
        "io.agora.signal.channel_query_userlist_all",
        r#"{"name":"big","num":10}"#,
    );
    assert_eq!(some["num"], MEMBERS);
    assert_eq!(some["list"].as_array().unwrap().len(), 10);
    let latest = invoke(
        &mut b,
        4,
        "io.agora.signal.channel_query_userlist",
        r#"{"name":"big"}"#,
    );
    assert_eq!(latest["list"].as_array().unwrap().len(), 200);
    assert_eq!(
        latest["list"][199],
        serde_json::json!([format!("u{:05}", MEMBERS - 1), 0])
    );
    let num = invoke(
        &mut b,
        5,
        "io.agora.signal.channel_query_num",
        r#"{"name":"big"}"#,
    );
    assert_eq!(num["num"], MEMBERS);
}
