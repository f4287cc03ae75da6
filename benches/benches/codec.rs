//! Frame codec costs: encoding and decoding the frames that dominate traffic.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use beckon_proto::codec::{
    FrameDecoder, decode_client, decode_server, encode_client, encode_server, write_frame,
};
use beckon_proto::pb::{self, client_frame, request, server_frame};

fn send_request(body: usize) -> client_frame::Kind {
    client_frame::Kind::Request(pb::Request {
        id: 123_456,
        op: Some(request::Op::SendInstantMessage(pb::SendInstantMessage {
            account: "bob-the-recipient".into(),
            msg: "x".repeat(body),
            msg_id: "0123456789abcdef-42".into(),
        })),
    })
}

fn delivery(body: usize) -> server_frame::Kind {
    server_frame::Kind::Event(pb::Event {
        seq: 987_654,
        body: Some(pb::event::Body::InstantMessage(pb::InstantMessage {
            sender: "alice-the-sender".into(),
            msg: "x".repeat(body),
            server_msg_id: 0x1234_5678_9abc_def0,
            sent_at_ms: 1_800_000_000_000,
            offline: false,
        })),
    })
}

fn codec(c: &mut Criterion) {
    for body in [256usize, 4096] {
        let mut g = c.benchmark_group(format!("codec/{body}B"));
        g.throughput(Throughput::Elements(1));
        let req = send_request(body);
        g.bench_function("encode_request", |b| {
            b.iter(|| encode_client(black_box(req.clone())))
        });
        let encoded = encode_client(req.clone());
        g.bench_function("decode_request", |b| {
            b.iter(|| decode_client(black_box(&encoded)).unwrap())
        });
        let ev = delivery(body);
        g.bench_function("encode_delivery", |b| {
            b.iter(|| encode_server(black_box(ev.clone())))
        });
        let encoded_ev = encode_server(ev);
        g.bench_function("decode_delivery", |b| {
            b.iter(|| decode_server(black_box(&encoded_ev)).unwrap())
        });

        // The stream framing alone: 64 frames written, then split off one buffer.
        let mut wire = BytesMut::new();
        for _ in 0..64 {
            write_frame(&mut wire, &encoded);
        }
        let wire = wire.freeze();
        let dec = FrameDecoder::default();
        g.throughput(Throughput::Elements(64));
        g.bench_function("split_64_frames", |b| {
            b.iter(|| {
                let mut buf = BytesMut::from(&wire[..]);
                let mut n = 0;
                while let Some(f) = dec.decode(&mut buf).unwrap() {
                    n += f.len();
                }
                black_box(n)
            })
        });
        g.finish();
    }
}

criterion_group!(benches, codec);
criterion_main!(benches);
