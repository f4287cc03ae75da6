//! Broker-core fan-out: one channel message to 1, 100 and 10,000 members.
//!
//! Measures the sans-IO broker alone (no sockets): a member's send, the fan-out to every
//! member's session stream, draining the outputs, and the members' acknowledgements (one every
//! 32 events, as clients send them). Throughput is per delivery.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use beckon_broker::{AdmissionConfig, AppConfig, Apps, Broker, BrokerConfig, ConnId, MemoryStore};
use beckon_proto::codec::encode_client;
use beckon_proto::pb::{self, client_frame::Kind, request::Op};
use beckon_testkit::wire;

fn rig(members: u64) -> (Broker<MemoryStore>, Instant) {
    let mut template = AppConfig::development("");
    template.channel_messages_per_user = u32::MAX;
    template.channel_messages_per_channel = u32::MAX;
    let mut apps = Apps::default();
    apps.development = Some(template);
    let mut config = BrokerConfig::new(apps, [9; 32]);
    config.max_unacked_events = usize::MAX;
    config.max_unacked_bytes = usize::MAX;
    // Thousands of members log in in one instant.
    config.admission = AdmissionConfig::unlimited();
    let now = Instant::now();
    let mut b = Broker::new(config, MemoryStore::new(), now, 0);
    for i in 0..members {
        wire::login_acked(&mut b, ConnId(i), "bench", &format!("user{i}"), now);
        let join = Op::ChannelJoin(pb::ChannelJoin {
            channel: "room".into(),
        });
        b.handle_frame(ConnId(i), &wire::request_frame(1, join), now);
    }
    // Everything so far is acknowledged.
    for i in 0..members {
        wire::ack_all(&mut b, ConnId(i), now);
    }
    (b, now)
}

fn fanout(c: &mut Criterion) {
    let mut g = c.benchmark_group("fanout");
    for members in [1u64, 100, 10_000] {
        let (mut b, mut now) = rig(members);
        let mut req_id = 1u64;
        let mut round = 0u64;
        let msg = "x".repeat(256);
        g.throughput(Throughput::Elements(members));
        if members >= 10_000 {
            g.sample_size(20);
        }
        g.bench_function(BenchmarkId::from_parameter(members), |bench| {
            bench.iter(|| {
                req_id += 1;
                round += 1;
                now += Duration::from_millis(1);
                let send = pb::Request {
                    id: req_id,
                    op: Some(Op::SendChannelMessage(pb::SendChannelMessage {
                        channel: "room".into(),
                        msg: msg.clone(),
                        msg_id: String::new(),
                        force: false,
                    })),
                };
                b.handle_frame(ConnId(0), &encode_client(Kind::Request(send)), now);
                let mut bytes = 0usize;
                while let Some(out) = b.poll_output() {
                    if let beckon_broker::Output::Send { frame, .. } = out {
                        bytes += frame.len();
                    }
                }
                if round.is_multiple_of(32) {
                    let ack = wire::ack_all_frame();
                    for i in 0..members {
                        b.handle_frame(ConnId(i), &ack, now);
                    }
                }
                black_box(bytes)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
