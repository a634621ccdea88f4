//! Message encode/decode: the wire JSON (IntelMQ's `serialize`/`unserialize`, with validation) and
//! the internal form kept in the queues between a node's own bots.
//!
//! `cargo bench -p intelmq-node --bench message`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use intelmq_node::message::{Harmonization, Message, MessageKind};

mod common;

/// An event as the bench pipeline's file output receives it.
fn bench_event() -> Message {
    let h = Harmonization::builtin();
    let mut ev = Message::new(MessageKind::Event, h);
    let feed = [
        ("feed.accuracy", "100.0"),
        ("feed.name", "bench-feed"),
        ("feed.provider", "bench"),
        ("feed.url", "file://localhost/tmp/intelmq-rs-bench/in/feed.csv"),
        ("time.observation", "2026-11-28T10:00:00+00:00"),
    ];
    let enriched = [
        ("raw", "MjAyNi0xMS0xNyAwODo0MTowOSwyMDMuMC4xMTMuNzcsODQ0MyxodHRwOi8va2RqZmhxd2UudG9wL2E4ZDdmNmU1LnBocCxxYWtib3Qsc2VlbiBieSBzZW5zb3IgNDI="),
        ("classification.taxonomy", "malicious-code"),
        ("source.fqdn", "kdjfhqwe.top"),
    ];
    for (key, value) in feed.into_iter().chain(common::BENCH_ROW).chain(enriched) {
        ev.add(key, value).unwrap_or_else(|e| panic!("{key}: {e}"));
    }
    ev
}

fn encode_decode(c: &mut Criterion) {
    let ev = bench_event();
    let h = ev.harmonization().clone();
    let wire = ev.to_wire();
    let internal = ev.to_internal();
    let mut g = c.benchmark_group("message");
    g.throughput(Throughput::Elements(1));
    g.bench_function("to_wire", |b| b.iter(|| black_box(&ev).to_wire()));
    g.bench_function("from_wire (validating)", |b| {
        b.iter(|| Message::from_wire(h.clone(), black_box(wire.as_bytes()), Some(MessageKind::Event)).expect("decodes"))
    });
    g.bench_function("to_internal", |b| b.iter(|| black_box(&ev).to_internal()));
    g.bench_function("decode (internal)", |b| {
        b.iter(|| Message::decode(h.clone(), black_box(&internal), Some(MessageKind::Event)).expect("decodes"))
    });
    g.finish();
}

criterion_group!(benches, encode_decode);
criterion_main!(benches);
