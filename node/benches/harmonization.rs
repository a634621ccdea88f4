//! Harmonization per type: `sanitize` of a raw feed value, `is_valid` of the stored value, and
//! `Message::add` (sanitize + validate + store) of a bench feed row's fields.
//!
//! `cargo bench -p intelmq-node --bench harmonization`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};

use intelmq_node::message::{Harmonization, Message, MessageKind, TypeName};

mod common;

/// A raw value per type, as a feed gives it (sanitizing has work to do where the type allows).
fn samples() -> Vec<(&'static str, TypeName, Value)> {
    vec![
        ("IPAddress/v4", TypeName::IPAddress, json!("192.0.2.17")),
        ("IPAddress/v6", TypeName::IPAddress, json!("2001:DB8::17")),
        ("IPNetwork", TypeName::IPNetwork, json!("192.0.2.0/24")),
        ("FQDN", TypeName::FQDN, json!("Malware.Example.COM.")),
        ("URL", TypeName::URL, json!("http://qwertzuio.example.com/gate/panel.php?id=17")),
        ("DateTime", TypeName::DateTime, json!("2026-11-03 12:34:56")),
        ("DateTime/offset", TypeName::DateTime, json!("2026-11-03T12:34:56+02:00")),
        ("Integer", TypeName::Integer, json!("8080")),
        ("ASN", TypeName::ASN, json!("AS64496")),
        ("Float", TypeName::Float, json!("12.5")),
        ("Accuracy", TypeName::Accuracy, json!("75")),
        ("Boolean", TypeName::Boolean, json!("true")),
        ("String", TypeName::String, json!("seen by sensor 17")),
        ("LowercaseString", TypeName::LowercaseString, json!("Emotet")),
        ("UppercaseString", TypeName::UppercaseString, json!("de")),
        ("ClassificationType", TypeName::ClassificationType, json!("malware-distribution")),
        ("ClassificationTaxonomy", TypeName::ClassificationTaxonomy, json!("malicious-code")),
        ("Registry", TypeName::Registry, json!("ripe")),
        ("TLP", TypeName::TLP, json!("amber")),
        ("Base64", TypeName::Base64, json!("dGltZSxpcCxwb3J0LHVybCxtYWx3YXJlLG5vdGUK")),
        ("JSON", TypeName::JSON, json!("{\"a\": [1, 2, 3]}")),
        ("JSONDict", TypeName::JSONDict, json!({"note": "seen by sensor 17", "count": 3})),
    ]
}

fn sanitize_and_validate(c: &mut Criterion) {
    let mut sanitize = c.benchmark_group("sanitize");
    for (name, ty, raw) in samples() {
        assert!(ty.sanitize(&raw).is_some(), "{name}: the sample {raw} cannot be sanitized");
        sanitize.bench_function(name, |b| b.iter(|| black_box(ty).sanitize(black_box(&raw))));
    }
    sanitize.finish();
    let mut validate = c.benchmark_group("is_valid");
    for (name, ty, raw) in samples() {
        let Some(stored) = ty.sanitize(&raw) else { continue };
        assert!(ty.is_valid(&stored), "{name}: the sanitized sample {stored} is not valid");
        validate.bench_function(name, |b| b.iter(|| black_box(ty).is_valid(black_box(&stored))));
    }
    validate.finish();
}

/// One row of the bench feed added field by field, the way the generic CSV parser does.
fn add_event(c: &mut Criterion) {
    let h = Harmonization::builtin();
    c.bench_function("message/add bench row", |b| {
        b.iter(|| {
            let mut ev = Message::new(MessageKind::Event, h.clone());
            for (key, value) in common::BENCH_ROW {
                ev.add(key, black_box(value)).expect("valid bench row");
            }
            ev
        })
    });
}

criterion_group!(benches, sanitize_and_validate, add_event);
criterion_main!(benches);
