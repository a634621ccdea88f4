//! The generic CSV parser on the bench feed (`../shared/bench/gen_feed.py 2000`, committed in
//! `benches/data/`), with the bench pipeline's parameters, in MB of CSV per second.
//!
//! `cargo bench -p intelmq-node --bench csv_parser`

use std::hint::black_box;
use std::path::Path;

use base64::Engine;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::{json, Value};

use intelmq_node::bots::{registry, Bot, Context, MemoryLog, MemoryState, ParserOutput};
use intelmq_node::message::{AddOptions, Harmonization, Message};

const FEED: &str = include_str!("data/bench-feed-2000.csv");

fn csv_parser(c: &mut Criterion) {
    let h = Harmonization::builtin();
    let params = json!({
        "columns": ["time.source", "source.ip", "source.port", "source.url", "malware.name", "extra.note"],
        "skip_header": true,
        "type": "malware-distribution",
        "time_format": null,
    });
    let Value::Object(params) = params else { unreachable!("a JSON object literal") };
    let entry =
        registry::find("intelmq.bots.parsers.generic.parser_csv").expect("the generic CSV parser is registered");
    let Ok(Bot::Parser(mut bot)) = (entry.build)(&params) else { panic!("the bench parameters build a parser") };

    let mut report = Message::new_report(h.clone());
    report.add("feed.name", "bench-feed").expect("feed.name");
    report.add("feed.url", "file://localhost/tmp/in/bench-feed-2000.csv").expect("feed.url");
    let raw = base64::engine::general_purpose::STANDARD.encode(FEED);
    report
        .add_with("raw", Value::String(raw), AddOptions { sanitize: false, overwrite: Some(true), raise_failure: true })
        .expect("raw");
    let rows = FEED.lines().count() - 1;

    let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
    let mut g = c.benchmark_group("generic_csv_parser");
    g.throughput(Throughput::Bytes(FEED.len() as u64));
    g.bench_function(format!("bench feed, {rows} rows"), |b| {
        b.iter(|| {
            let mut ctx = Context::new("csv-parser", &h, Path::new("/"), &mut state, &mut log);
            let mut out = ParserOutput::new(&report, &[]);
            bot.parse(black_box(&report), &mut ctx, &mut out).expect("the bench feed parses");
            assert_eq!(out.events.len(), rows);
            out.events
        })
    });
    g.finish();
}

criterion_group!(benches, csv_parser);
criterion_main!(benches);
