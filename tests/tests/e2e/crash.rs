//! Crash test: kill -9 the node at random moments while it runs, restart it each time; at the end
//! every input event is in the output exactly once and the dump is empty. Once with small reports,
//! once with a whole file per report, so kills also hit a parser that has committed part of a
//! report's events.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use intelmq_node::store::{Durability, Store};
use intelmq_tests::TestNode;
use rand::Rng;

const EVENTS: usize = 60_000;
const OUTPUT: &str = "var/lib/bots/file-output/events.txt";

/// `chunk_size`: the file collector's report size; `None` sends each file as one report.
fn write_config(node: &TestNode, chunk_size: Option<usize>) {
    node.write(
        "etc/runtime.conf",
        &r#"{
  "collector": {"group": "Collector", "module": "intelmq.bots.collectors.file.collector_file", "name": "Crash Feed",
    "parameters": {"path": "in", "postfix": ".csv", "delete_file": false, "chunk_size": CHUNK, "provider": "test"}},
  "parser": {"group": "Parser", "module": "intelmq.bots.parsers.generic.parser_csv",
    "parameters": {"columns": ["extra.id", "source.ip", "source.url"], "type": "malware-distribution", "skip_header": true}},
  "deduplicator": {"group": "Expert", "module": "intelmq.bots.experts.deduplicator.expert",
    "parameters": {"filter_keys": "raw,time.observation", "filter_type": "blacklist"}},
  "taxonomy": {"group": "Expert", "module": "intelmq.bots.experts.taxonomy.expert", "parameters": {}},
  "url2fqdn": {"group": "Expert", "module": "intelmq.bots.experts.url2fqdn.expert", "parameters": {}},
  "output": {"group": "Output", "module": "intelmq.bots.outputs.file.output",
    "parameters": {"file": "var/lib/bots/file-output/events.txt"}}
}"#
        .replace("CHUNK", &chunk_size.map_or("null".to_string(), |c| c.to_string())),
    );
    node.write(
        "etc/pipeline.conf",
        r#"{
  "collector": {"destination-queues": ["parser-queue"]},
  "parser": {"source-queue": "parser-queue", "destination-queues": ["deduplicator-queue"]},
  "deduplicator": {"source-queue": "deduplicator-queue", "destination-queues": ["taxonomy-queue"]},
  "taxonomy": {"source-queue": "taxonomy-queue", "destination-queues": ["url2fqdn-queue"]},
  "url2fqdn": {"source-queue": "url2fqdn-queue", "destination-queues": ["output-queue"]},
  "output": {"source-queue": "output-queue"}
}"#,
    );
    node.write("etc/defaults.conf", r#"{"error_retry_delay": 0, "logging_level": "INFO"}"#);
    for file in 0..4 {
        let mut csv = String::from("id,ip,url\n");
        for i in (file * EVENTS / 4)..((file + 1) * EVENTS / 4) {
            csv.push_str(&format!(
                "{i},10.{}.{}.{},http://host{i}.example.com/p/{i}\n",
                (i >> 16) & 255,
                (i >> 8) & 255,
                i & 255
            ));
        }
        node.write(&format!("in/part-{file}.csv"), csv);
    }
}

fn output_lines(node: &TestNode) -> usize {
    std::fs::read(node.root().join(OUTPUT)).map(|b| b.iter().filter(|c| **c == b'\n').count()).unwrap_or(0)
}

#[test]
fn kill_nine_three_times_loses_and_duplicates_nothing() {
    kill_three_times_then_check(Some(65536));
}

#[test]
fn kill_nine_while_a_parser_is_halfway_through_a_big_report() {
    kill_three_times_then_check(None);
}

fn kill_three_times_then_check(chunk_size: Option<usize>) {
    let node = TestNode::empty();
    write_config(&node, chunk_size);
    let mut rng = rand::thread_rng();
    let mut kills_while_running = 0;
    for round in 0..3 {
        let mut child = node.spawn_until_idle();
        // Let the node make progress beyond the previous round, then kill it at a random moment.
        let before = output_lines(&node);
        let deadline = Instant::now() + Duration::from_secs(60);
        while output_lines(&node) <= before && Instant::now() < deadline && child.try_wait().expect("wait").is_none() {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..150)));
        if child.try_wait().expect("wait").is_none() {
            kills_while_running += 1;
        }
        child.kill().expect("kill -9");
        child.wait().expect("reap");
        eprintln!("round {round}: killed with {} lines in the output", output_lines(&node));
    }
    assert!(kills_while_running >= 3, "every kill must hit a running node (got {kills_while_running})");
    let out = node.run_until_idle();
    assert!(out.status.success(), "final run: {}", String::from_utf8_lossy(&out.stderr));

    let mut seen: HashMap<String, usize> = HashMap::new();
    for ev in node.events(OUTPUT) {
        let id = ev["extra.id"].to_string();
        *seen.entry(id).or_default() += 1;
    }
    let duplicates: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(duplicates.is_empty(), "duplicated events: {duplicates:?}");
    assert_eq!(seen.len(), EVENTS, "every input event arrives");

    let store = Store::open(&node.root().join("var/lib/store"), Durability::Never, &[]).expect("store");
    assert!(store.dumps(None).expect("dumps").is_empty(), "dump is empty");
    for q in store.queue_names() {
        assert_eq!(store.queue_len(&q), 0, "queue {q} drained");
    }
}
