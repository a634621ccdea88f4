//! One store step as a bot actor takes it: read 256 messages from an inbox, then commit one write
//! that puts 256 messages into the next inbox and acknowledges the 256 read (default durability).
//! Two inboxes take turns, so each step reads what the previous one wrote.
//!
//! `cargo bench -p intelmq-node --bench store`

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use intelmq_node::store::{Durability, Step, Store};

const BATCH: usize = 256;
/// About the size of a bench pipeline event in its internal form.
const MESSAGE_BYTES: usize = 600;

fn store_step(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let queues = ["a".to_string(), "b".to_string()];
    let store = Store::open(dir.path(), Durability::Interval(Duration::from_millis(10)), &queues).expect("open store");
    let payload = vec![b'x'; MESSAGE_BYTES];
    let mut fill = Step::new();
    for _ in 0..BATCH {
        fill.put("a", payload.clone());
    }
    store.commit(fill).expect("fill");

    let mut g = c.benchmark_group("store");
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut from_a = true;
    g.bench_function("read 256 + commit 256 puts and acks", |b| {
        b.iter(|| {
            let (src, dst) = if from_a { ("a", "b") } else { ("b", "a") };
            from_a = !from_a;
            let batch = store.read(src, BATCH).expect("read");
            assert_eq!(batch.len(), BATCH);
            let mut step = Step::new();
            for q in &batch {
                step.put(dst, black_box(q.data.clone()));
                step.ack(src, q.seq);
            }
            store.commit(step).expect("commit");
        })
    });
    g.finish();
}

criterion_group!(benches, store_step);
criterion_main!(benches);
