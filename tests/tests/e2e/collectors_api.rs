//! The collectors of remote APIs (AlienVault OTX, Blueliv, GitHub, Microsoft Interflow, MISP,
//! Shodan, Shadowserver) through a running node, against an HTTP server the test owns that
//! answers as the real API does (the recorded shapes), reached through the test's TCP proxy. The
//! API is away when the node starts or goes away while it runs: the collector keeps running and
//! says why it waits, the API comes back, and every record arrives exactly once.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use intelmq_tests::{wait_for, DaemonNode, TcpProxy, TestNode};
use serde_json::{json, Value};

use super::collectors_net::{
    assert_exactly_once, assert_waiting, node_with, node_with_parser, record, records, stream_outage, wait_written,
    written, ApiServer, OUT,
};

/// Records `range` as JSON objects (what the JSON parser with `multiple_events` reads).
fn record_list(range: std::ops::Range<usize>) -> Value {
    Value::Array(range.map(|n| serde_json::from_str(&record(n)).expect("record")).collect())
}

/// The API is away when the node starts: the collector (fetching once an hour) waits, the API
/// comes back, and its `n` records arrive once.
fn away_at_start(server: &ApiServer, module: &str, params: impl FnOnce(SocketAddr) -> Value, parser: Value, n: usize) {
    let proxy = TcpProxy::start(server.addr);
    proxy.cut();
    let daemon = DaemonNode::start(node_with_parser(module, params(proxy.addr()), parser));
    assert_waiting(&daemon);
    assert!(written(&daemon.node).is_empty(), "nothing while the API is away");
    proxy.restore();
    wait_written(&daemon, n);
    std::thread::sleep(Duration::from_millis(800));
    assert_exactly_once(&written(&daemon.node), n);
    assert!(daemon.node.read("var/log/collector.log").contains("The far side is available again."));
}

#[test]
fn alienvault_otx_collector_waits_for_the_api() {
    let server = ApiServer::start(|method, path, _, _| {
        if method == "GET" && path.starts_with("/api/v1/pulses/subscribed?limit=50&page=1") {
            (200, json!({"results": record_list(0..6), "next": null, "count": 6}).to_string())
        } else {
            (404, String::new())
        }
    });
    away_at_start(
        &server,
        "intelmq.bots.collectors.alienvault_otx.collector",
        |addr| json!({"api_key": "KEY", "api_url": format!("http://{addr}"), "rate_limit": 3600, "http_timeout_sec": 3}),
        json!({"multiple_events": true}),
        6,
    );
}

#[test]
fn blueliv_collector_waits_for_the_api() {
    let server = ApiServer::start(|method, path, _, _| {
        if method == "GET" && path == "/v1/crimeserver/online" {
            (200, json!({"crimeServers": record_list(0..5), "meta": {}}).to_string())
        } else {
            (404, String::new())
        }
    });
    away_at_start(
        &server,
        "intelmq.bots.collectors.blueliv.collector_crimeserver",
        |addr| json!({"api_key": "TOKEN", "api_url": format!("http://{addr}"), "rate_limit": 3600, "http_timeout_sec": 3}),
        json!({"multiple_events": true}),
        5,
    );
}

#[test]
fn github_contents_collector_waits_for_the_api() {
    let server = ApiServer::start(|_, path, host, _| {
        match path {
        "/repos/cert/feeds/contents" => (
            200,
            json!([
                {"type": "file", "name": "feed.json", "path": "feed.json", "sha": "a1", "size": 10,
                 "download_url": format!("http://{host}/raw/feed.json")},
                {"type": "file", "name": "README.md", "path": "README.md", "sha": "b2", "size": 3,
                 "download_url": format!("http://{host}/raw/README.md")},
                {"type": "dir", "name": "old", "path": "old", "url": format!("http://{host}/repos/cert/feeds/contents/old")},
            ])
            .to_string(),
        ),
        "/repos/cert/feeds/contents/old" => (
            200,
            json!([{"type": "file", "name": "2023.json", "path": "old/2023.json", "sha": "c3", "size": 10,
                    "download_url": format!("http://{host}/raw/old/2023.json")}])
            .to_string(),
        ),
        "/raw/feed.json" => (200, records(0..4)),
        "/raw/old/2023.json" => (200, records(4..7)),
        _ => (404, String::new()),
    }
    });
    away_at_start(
        &server,
        "intelmq.bots.collectors.github_api.collector_github_contents_api",
        |addr| {
            json!({"personal_access_token": "TOKEN", "repository": "cert/feeds", "regex": "\\.json$",
                   "github_api_url": format!("http://{addr}"), "rate_limit": 3600, "http_timeout_sec": 3})
        },
        json!({"splitlines": true}),
        7,
    );
}

#[test]
fn interflow_collector_downloads_each_file_once_across_an_outage() {
    let files: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let f = files.clone();
    let server = ApiServer::start(move |_, path, _, _| {
        let files = f.lock().expect("lock");
        if path == "/file/listsharedfiles" {
            let now = chrono::Utc::now().to_rfc3339();
            let list: Vec<Value> = files.iter().map(|(name, _)| json!({"Name": name, "LastModified": now})).collect();
            return (200, Value::Array(list).to_string());
        }
        let wanted = path.strip_prefix("/file/download?fileName=").unwrap_or_default();
        match files.iter().find(|(name, _)| name == wanted) {
            Some((_, text)) => (200, text.clone()),
            None => (404, String::new()),
        }
    });
    files.lock().expect("lock").push(("ctip_1.json".into(), records(0..5)));
    let proxy = TcpProxy::start(server.addr);
    let node = node_with(
        "intelmq.bots.collectors.microsoft.collector_interflow",
        json!({"api_key": "KEY", "api_url": format!("http://{}/file/", proxy.addr()), "file_match": "ctip_",
               "rate_limit": 0.3, "http_timeout_sec": 3}),
    );
    let daemon = DaemonNode::start(node);
    wait_written(&daemon, 5);

    proxy.cut();
    files.lock().expect("lock").push(("ctip_2.json".into(), records(5..11)));
    files.lock().expect("lock").push(("other.json".into(), records(100..102)));
    assert_waiting(&daemon);
    proxy.restore();
    wait_written(&daemon, 11);
    let lists = server.requests.load(Ordering::SeqCst);
    wait_for("two more list requests", Duration::from_secs(20), || server.requests.load(Ordering::SeqCst) >= lists + 2);
    assert_exactly_once(&written(&daemon.node), 11);
}

#[test]
fn shodan_stream_collector_reconnects_after_the_stream_goes_away() {
    stream_outage("intelmq.bots.collectors.shodan.collector_stream", |addr| {
        json!({"api_key": "KEY", "stream_url": format!("http://{addr}"), "rate_limit": 0.2, "http_timeout_sec": 5,
               "http_timeout_max_tries": 1})
    });
}

/// A MISP event with one `ip-dst` attribute per record number.
fn misp_event(id: usize, numbers: std::ops::Range<usize>, tags: &[&str]) -> Value {
    let attributes: Vec<Value> = numbers
        .map(|n| {
            json!({"category": "Network activity", "type": "ip-dst", "value": format!("198.51.100.{n}"),
                   "uuid": format!("00000000-0000-4000-a000-{n:012}"), "comment": format!("n={n}"), "timestamp": "1700000000", "to_ids": true})
        })
        .collect();
    let tags: Vec<Value> = tags.iter().map(|t| json!({"name": t})).collect();
    json!({"id": id.to_string(), "uuid": format!("00000000-0000-4000-b000-{id:012}"), "info": "test", "Tag": tags, "Attribute": attributes})
}

/// A node: MISP collector -> MISP parser -> file output.
fn misp_node(misp_url: String) -> TestNode {
    let node = node_with(
        "intelmq.bots.collectors.misp.collector",
        json!({"misp_url": misp_url, "misp_key": "KEY", "misp_tag_to_process": "to-process",
               "misp_tag_processed": "processed", "rate_limit": 0.3, "http_timeout_sec": 3}),
    );
    let mut runtime: Value = serde_json::from_str(&node.read("etc/runtime.conf")).expect("runtime.conf");
    runtime["parser"]["module"] = json!("intelmq.bots.parsers.misp.parser");
    runtime["parser"]["parameters"] = json!({});
    node.write("etc/runtime.conf", serde_json::to_string_pretty(&runtime).expect("json"));
    node
}

/// How often each record number arrived (from the attribute's `n=` comment).
fn misp_written(node: &TestNode) -> BTreeMap<u64, usize> {
    let mut seen = BTreeMap::new();
    for event in node.events(OUT) {
        let n = event["comment"].as_str().and_then(|c| c.strip_prefix("n=")).and_then(|n| n.parse().ok());
        *seen.entry(n.unwrap_or_else(|| panic!("no record number in {event}"))).or_default() += 1;
    }
    seen
}

#[test]
fn misp_collector_retags_after_the_commit_and_waits_out_an_outage() {
    // MISP's events: id -> (event, tags).
    let events: Arc<Mutex<BTreeMap<String, Value>>> = Arc::default();
    let e = events.clone();
    let server = ApiServer::start(move |method, path, _, body| {
        let mut events = e.lock().expect("lock");
        let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let has = |ev: &Value, tag: &str| ev["Tag"].as_array().into_iter().flatten().any(|t| t["name"] == tag);
        match (method, path) {
            ("POST", "/events/restSearch") => {
                let tag = body["tags"][0].as_str().unwrap_or_default().to_string();
                let found: Vec<Value> =
                    events.values().filter(|ev| has(ev, &tag)).map(|ev| json!({"Event": ev})).collect();
                (200, json!({"response": found}).to_string())
            }
            ("POST", "/tags/removeTagFromObject" | "/tags/attachTagToObject") => {
                let uuid = body["uuid"].as_str().unwrap_or_default();
                let tag = body["tag"].clone();
                let Some(ev) = events.values_mut().find(|ev| ev["uuid"] == uuid) else {
                    return (404, String::new());
                };
                let tags = ev["Tag"].as_array_mut().expect("tags");
                if path.contains("remove") {
                    tags.retain(|t| t["name"] != tag);
                } else {
                    tags.push(json!({"name": tag}));
                }
                (200, json!({"saved": true}).to_string())
            }
            _ => (404, String::new()),
        }
    });
    let c2 = "ecsirt:malicious-code=\"c2server\"";
    events.lock().expect("lock").insert("1".into(), misp_event(1, 0..3, &[c2, "to-process"]));
    events.lock().expect("lock").insert("2".into(), misp_event(2, 100..102, &[c2]));
    let proxy = TcpProxy::start(server.addr);
    let daemon = DaemonNode::start(misp_node(format!("http://{}", proxy.addr())));
    wait_for("3 records written", Duration::from_secs(30), || misp_written(&daemon.node).len() >= 3);
    let retagged = |id: &str| {
        let events = events.lock().expect("lock");
        let names: Vec<String> = events[id]["Tag"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["name"].as_str().map(String::from))
            .collect();
        names.contains(&"processed".to_string()) && !names.contains(&"to-process".to_string())
    };
    wait_for("event 1 re-tagged", Duration::from_secs(20), || retagged("1"));

    proxy.cut();
    events.lock().expect("lock").insert("3".into(), misp_event(3, 3..8, &[c2, "to-process"]));
    assert_waiting(&daemon);
    proxy.restore();
    wait_for("8 records written", Duration::from_secs(30), || misp_written(&daemon.node).len() >= 8);
    wait_for("event 3 re-tagged", Duration::from_secs(20), || retagged("3"));
    std::thread::sleep(Duration::from_millis(800));
    let seen = misp_written(&daemon.node);
    assert_exactly_once(&seen, 8);
    assert!(seen.keys().all(|n| *n < 100), "the event without the tag is not collected");
    let first = daemon.node.events(OUT).into_iter().next().expect("an event");
    assert_eq!(first["classification.type"], "c2-server");
}

#[test]
fn shadowserver_collector_downloads_each_report_once_across_an_outage() {
    let reports: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let lists: Arc<std::sync::atomic::AtomicUsize> = Arc::default();
    let (r, l) = (reports.clone(), lists.clone());
    let server = ApiServer::start(move |method, path, _, _| {
        let reports = r.lock().expect("lock");
        if method == "POST" && path == "/api2/reports/list" {
            l.fetch_add(1, Ordering::SeqCst);
            let list: Vec<Value> = reports
                .iter()
                .map(|(id, _)| json!({"id": id, "type": "scan_http", "file": format!("2024-01-01-{id}.csv")}))
                .collect();
            return (200, Value::Array(list).to_string());
        }
        let wanted = path.strip_prefix("/dl/").unwrap_or_default();
        match reports.iter().find(|(id, _)| id == wanted) {
            Some((_, text)) => (200, text.clone()),
            None => (404, String::new()),
        }
    });
    reports.lock().expect("lock").push(("r1".into(), records(0..4)));
    let proxy = TcpProxy::start(server.addr);
    let node = node_with(
        "intelmq.bots.collectors.shadowserver.collector_reports_api",
        json!({"api_key": "KEY", "secret": "SECRET", "api_url": format!("http://{}/api2/", proxy.addr()),
               "download_url": format!("http://{}/dl/", proxy.addr()), "rate_limit": 0.3, "http_timeout_sec": 3}),
    );
    let daemon = DaemonNode::start(node);
    wait_written(&daemon, 4);
    wait_for("three list requests", Duration::from_secs(20), || lists.load(Ordering::SeqCst) >= 3);

    proxy.cut();
    reports.lock().expect("lock").push(("r2".into(), records(4..9)));
    assert_waiting(&daemon);
    proxy.restore();
    wait_written(&daemon, 9);
    let seen = lists.load(Ordering::SeqCst);
    wait_for("two more list requests", Duration::from_secs(20), || lists.load(Ordering::SeqCst) >= seen + 2);
    assert_exactly_once(&written(&daemon.node), 9);
}
