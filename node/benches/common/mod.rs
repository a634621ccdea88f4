//! What several benchmarks share: a row of the bench feed as the generic CSV parser maps it.

/// One row of `../shared/bench/gen_feed.py`'s feed, field by field, with the parser's `type`.
pub const BENCH_ROW: [(&str, &str); 7] = [
    ("time.source", "2026-11-17 08:41:09"),
    ("source.ip", "203.0.113.77"),
    ("source.port", "8443"),
    ("source.url", "http://kdjfhqwe.top/a8d7f6e5.php"),
    ("malware.name", "qakbot"),
    ("extra.note", "seen by sensor 42"),
    ("classification.type", "malware-distribution"),
];
