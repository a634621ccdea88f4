//! The default pipeline on the shipped sample feeds, end to end.

use std::collections::HashSet;

use intelmq_node::store::{Durability, Store};
use intelmq_tests::{workspace_dir, TestNode};
use serde_json::Value;

const EVENTS: &str = "var/lib/bots/file-output/events.txt";

fn without_observation(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("time.observation");
    }
    v
}

fn open_store(node: &TestNode) -> Store {
    Store::open(&node.root().join("var/lib/store"), Durability::Never, &[]).expect("open store")
}

#[test]
fn default_pipeline_produces_the_expected_events() {
    let node = TestNode::with_shipped_etc();
    let out = node.run_until_idle();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "node failed: {stdout}\n{stderr}");

    // feed.url holds the root of the run; the expectation writes it as @ROOT@.
    let root = node.root().display().to_string();
    let got: Vec<Value> = node
        .events(EVENTS)
        .into_iter()
        .map(without_observation)
        .map(|mut v| {
            if let Some(u) = v.get("feed.url").and_then(Value::as_str).map(|u| u.replace(&root, "@ROOT@")) {
                v["feed.url"] = Value::String(u);
            }
            v
        })
        .collect();
    let expected_text = std::fs::read_to_string(workspace_dir().join("tests/data/default-pipeline/events.jsonl"))
        .expect("checked-in expectation");
    let expected: Vec<Value> = expected_text
        .lines()
        .map(|l| without_observation(serde_json::from_str(l).expect("expectation line")))
        .collect();
    assert_eq!(got.len(), expected.len(), "event count\n{stdout}");
    // The two feeds are parsed by two parsers in parallel, so compare as sets of lines.
    let as_set = |v: &[Value]| v.iter().map(|e| e.to_string()).collect::<HashSet<_>>();
    let (g, e) = (as_set(&got), as_set(&expected));
    let missing: Vec<_> = e.difference(&g).collect();
    let extra: Vec<_> = g.difference(&e).collect();
    assert!(missing.is_empty() && extra.is_empty(), "missing: {missing:#?}\nunexpected: {extra:#?}");

    // Every event went through the taxonomy expert and kept no raw (file output default).
    for ev in &got {
        assert!(ev.get("classification.taxonomy").is_some(), "{ev}");
        assert!(ev.get("raw").is_none(), "{ev}");
    }
    // The summary names every bot and where the output is.
    for bot in ["urlhaus-collector", "urlhaus-parser", "deduplicator-expert", "file-output"] {
        assert!(stdout.contains(bot), "summary lacks {bot}: {stdout}");
    }
    assert!(stdout.contains("events.txt"), "{stdout}");
    // Per-bot logs in IntelMQ's format.
    let log = node.read("var/log/urlhaus-parser.log");
    assert!(log.lines().any(|l| l.contains(" - urlhaus-parser - INFO - Bot is starting.")), "{log}");
}

#[test]
fn a_line_that_breaks_the_harmonization_is_dumped_and_the_rest_goes_on() {
    let node = TestNode::with_shipped_etc();
    let out = node.run_until_idle();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let store = open_store(&node);
    let dumps = store.dumps(Some("urlhaus-parser")).expect("dumps");
    assert_eq!(dumps.len(), 1, "{dumps:#?}");
    let entry = &dumps[0].1;
    assert_eq!(entry.source_queue.as_deref(), Some("urlhaus-parser-queue"));
    let reason = entry.traceback.join("\n");
    assert!(reason.contains("source.url") || reason.contains("time.source"), "reason names the field: {reason}");
    let msg: Value = serde_json::from_str(&entry.message).expect("dumped message is JSON");
    assert_eq!(msg["__type"], "Report");
    let raw = msg["raw"].as_str().expect("raw");
    use base64::Engine as _;
    let line = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(raw).expect("base64")).expect("utf8");
    assert!(line.contains("3301099"), "the dumped raw is the bad line: {line}");
    // The other lines of the same report went through.
    let events = node.events(EVENTS);
    assert!(events.iter().any(|e| e["source.url"] == "http://cdn-update.example.com/files/payload.zip"));
}

#[test]
fn a_second_run_on_the_same_root_collects_nothing_new() {
    let node = TestNode::with_shipped_etc();
    assert!(node.run_until_idle().status.success());
    let first = node.read(EVENTS);
    let out = node.run_until_idle();
    assert!(out.status.success());
    assert_eq!(node.read(EVENTS), first, "unchanged feeds are not collected twice");
}
