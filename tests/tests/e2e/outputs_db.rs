//! The database and broker outputs and the AMQP collector through a running node, against the
//! machine's real servers (PostgreSQL, Redis, Mosquitto, RabbitMQ) and, for Elasticsearch, a
//! `_bulk` endpoint this test serves on a real socket. Each test puts its own [`TcpProxy`] between
//! the node and the server: a first part of the events is delivered, the proxy cuts every
//! connection while more events arrive, the bot shows as running and waiting with the reason, the
//! proxy is restored, and in the end every event is there exactly once (count in == count out).
//! Names (databases, keys, topics, exchanges, queues) are unique per run and removed afterwards.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use intelmq_node::bots::outputs::amqptopic::connection::{AmqpLink, AmqpSettings};
use intelmq_tests::{service_available, wait_for, DaemonNode, TcpProxy, TestNode};
use serde_json::{json, Value};

/// Events delivered before the outage, and in all.
const BEFORE: usize = 40;
const TOTAL: usize = 140;

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{prefix}_{}_{nanos}", std::process::id())
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

/// A node: file collector (`in/*.csv`) -> CSV parser -> `out` (the output under test), plus the
/// bots in `extra` (id -> (runtime entry, pipeline entry)).
fn node_with(out_module: &str, out_params: Value, extra: Vec<(&str, Value, Value)>) -> TestNode {
    let node = TestNode::empty();
    let mut runtime = json!({
        "collector": {"group": "Collector", "module": "intelmq.bots.collectors.file.collector_file", "name": "Outage Feed",
            "parameters": {"path": "in", "postfix": ".csv", "delete_file": true, "rate_limit": 0.3, "provider": "test"}},
        "parser": {"group": "Parser", "module": "intelmq.bots.parsers.generic.parser_csv",
            "parameters": {"columns": ["extra.id", "source.ip", "source.url"], "type": "malware-distribution", "skip_header": true}},
        "out": {"group": "Output", "module": out_module, "parameters": out_params},
    });
    let mut pipeline = json!({
        "collector": {"destination-queues": ["parser-queue"]},
        "parser": {"source-queue": "parser-queue", "destination-queues": ["out-queue"]},
        "out": {"source-queue": "out-queue"},
    });
    for (id, bot, pipe) in extra {
        runtime[id] = bot;
        pipeline[id] = pipe;
    }
    node.write("etc/runtime.conf", serde_json::to_string_pretty(&runtime).expect("json"));
    node.write("etc/pipeline.conf", serde_json::to_string_pretty(&pipeline).expect("json"));
    node.write("etc/defaults.conf", r#"{"error_retry_delay": 0.2, "logging_level": "INFO"}"#);
    node
}

/// Drops a CSV with events `ids` into the collector's directory (written aside, then renamed).
fn feed(root: &std::path::Path, ids: std::ops::Range<usize>) {
    let mut csv = String::from("id,ip,url\n");
    for i in ids.clone() {
        csv.push_str(&format!("{i},10.1.{}.{},http://host{i}.example.com/p\n", (i >> 8) & 255, i & 255));
    }
    let dir = root.join("in");
    std::fs::create_dir_all(&dir).expect("create in/");
    let tmp = dir.join(format!("part-{}.tmp", ids.start));
    std::fs::write(&tmp, csv).expect("write feed");
    std::fs::rename(&tmp, dir.join(format!("part-{}.csv", ids.start))).expect("rename feed");
}

/// `bot list --json` entry of `bot`: (state, reason).
fn state_and_reason(daemon: &DaemonNode, bot: &str) -> (String, String) {
    let out = daemon.ctl().run(&["--json", "bot", "list"]);
    if out.code != 0 {
        return (String::new(), String::new());
    }
    let list = out.json();
    let entry = list.as_array().into_iter().flatten().find(|b| b["id"] == json!(bot)).cloned().unwrap_or(Value::Null);
    (entry["state"].as_str().unwrap_or_default().to_string(), entry["reason"].as_str().unwrap_or_default().to_string())
}

/// The outage scenario: `BEFORE` events arrive, the proxy cuts, the rest is fed, `waiting_bot`
/// shows as running and waiting, the proxy is restored, and every event arrives exactly once.
/// `ids` reads the `extra.id` of every event the far side holds.
fn outage(daemon: &DaemonNode, proxy: &TcpProxy, waiting_bot: &str, ids: &dyn Fn() -> Vec<u64>) {
    feed(daemon.root(), 0..BEFORE);
    wait_for("the first events at the far side", Duration::from_secs(30), || ids().len() >= BEFORE);
    // Cut only once the node has its acknowledgements: an answer lost in the cut makes the batch
    // go again (at-least-once), which is not what this test is about.
    wait_for("the node to acknowledge the first events", Duration::from_secs(15), || {
        let out = daemon.ctl().run(&["queue", "list", "--count", "--json"]);
        out.code == 0 && out.json()["total-messages"] == 0
    });

    proxy.cut();
    feed(daemon.root(), BEFORE..TOTAL);
    let mut seen = (String::new(), String::new());
    wait_for("the output to wait for its far side", Duration::from_secs(15), || {
        seen = state_and_reason(daemon, waiting_bot);
        seen.1.contains("waiting")
    });
    assert_eq!(seen.0, "running", "a bot waiting for its far side runs: {seen:?}");
    std::thread::sleep(Duration::from_millis(500));
    assert!(ids().len() <= BEFORE + 1, "nothing passes while the proxy is cut");

    proxy.restore();
    wait_for("every event at the far side", Duration::from_secs(25), || ids().len() >= TOTAL);
    std::thread::sleep(Duration::from_millis(300));
    let got = ids();
    let distinct: BTreeSet<u64> = got.iter().copied().collect();
    let mut sorted = got.clone();
    sorted.sort_unstable();
    let twice: Vec<u64> = sorted.windows(2).filter(|w| w[0] == w[1]).map(|w| w[0]).collect();
    assert_eq!(got.len(), TOTAL, "count in == count out (no duplicates): {} rows, duplicated: {twice:?}", got.len());
    assert_eq!(distinct, (0..TOTAL as u64).collect::<BTreeSet<u64>>(), "every event exactly once");
    wait_for("the waiting note to clear", Duration::from_secs(10), || {
        state_and_reason(daemon, waiting_bot).1.is_empty()
    });
    let dumps = daemon.ctl().run(&["--json", "dump", "list"]);
    assert!(!dumps.stdout.contains("\"out\""), "nothing dumped: {dumps:?}");
}

fn id_of(event: &Value) -> Option<u64> {
    event.get("extra.id").and_then(|v| v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())))
}

fn tool(name: &str) -> bool {
    let ok = Command::new(name).arg("--help").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
    if !ok {
        assert!(!intelmq_tests::services_required(), "{name} is required (INTELMQ_REQUIRE_SERVICES=1) but missing");
        eprintln!("skipped: the `{name}` client is not installed");
    }
    ok
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

fn psql(db: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", db, "-v", "ON_ERROR_STOP=1", "-tAc", sql])
        .output()
        .expect("run psql");
    assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct Database(String);

impl Drop for Database {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-c"])
            .arg(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.0))
            .output();
    }
}

#[test]
fn sql_output_fills_the_initdb_schema_and_survives_a_database_outage() {
    if !service_available("PostgreSQL", "127.0.0.1:5432") || !tool("psql") {
        return;
    }
    let db = Database(unique("intelmq_e2e"));
    psql("postgres", &format!("CREATE DATABASE {}", db.0));
    let proxy = TcpProxy::start(addr("127.0.0.1:5432"));
    let node = node_with(
        "intelmq.bots.outputs.sql.output",
        json!({"engine": "postgresql", "host": "127.0.0.1", "port": proxy.addr().port(), "user": "postgres",
            "database": db.0, "sslmode": "prefer", "connect_timeout": 2}),
        vec![],
    );
    // The schema comes from `intelmq-node initdb`, applied with psql.
    let ddl = node.root().join("initdb.sql");
    let out = node.command(&["initdb", "--jsonb", "-o", ddl.to_str().expect("utf8")]).output().expect("initdb");
    assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
    let applied = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", &db.0, "-v", "ON_ERROR_STOP=1", "-q", "-f"])
        .arg(&ddl)
        .output()
        .expect("psql -f");
    assert!(applied.status.success(), "DDL: {}", String::from_utf8_lossy(&applied.stderr));

    let daemon = DaemonNode::start(node);
    let ids = || -> Vec<u64> {
        psql(&db.0, "SELECT extra->>'id' FROM events").lines().filter_map(|l| l.trim().parse().ok()).collect()
    };
    outage(&daemon, &proxy, "out", &ids);
    if psql("postgres", "SHOW ssl").trim() == "on" {
        let encrypted = psql(
            "postgres",
            &format!(
                "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
                 WHERE a.application_name = 'intelmq-sql-output' AND a.datname = '{}' AND s.ssl",
                db.0
            ),
        );
        assert_eq!(encrypted.trim(), "1", "sslmode prefer: the bot's connection is TLS");
    }

    // Rows hold the typed values of the events.
    let row = psql(
        &db.0,
        "SELECT host(\"source.ip\") || '|' || \"source.url\" || '|' || \"classification.type\" || '|' || \"feed.name\" \
         || '|' || (\"time.observation\" IS NOT NULL) || '|' || (raw IS NOT NULL) FROM events WHERE extra->>'id' = '41'",
    );
    assert_eq!(row.trim(), "10.1.0.41|http://host41.example.com/p|malware-distribution|Outage Feed|true|true");
}

// ---------------------------------------------------------------------------------------------
// Redis

fn redis_list(db: u8, key: &str) -> Vec<Value> {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-n", &db.to_string(), "LRANGE", key, "0", "-1"])
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

#[test]
fn redis_output_pushes_every_event_once_across_an_outage() {
    if !service_available("Redis", "127.0.0.1:6379") || !tool("redis-cli") {
        return;
    }
    let key = unique("intelmq-e2e-redis");
    let proxy = TcpProxy::start(addr("127.0.0.1:6379"));
    let node = node_with(
        "intelmq.bots.outputs.redis.output",
        json!({"redis_server_ip": "127.0.0.1", "redis_server_port": proxy.addr().port(), "redis_db": 6,
            "redis_queue": key, "redis_timeout": 2000}),
        vec![],
    );
    let daemon = DaemonNode::start(node);
    let ids = || -> Vec<u64> { redis_list(6, &key).iter().filter_map(id_of).collect() };
    outage(&daemon, &proxy, "out", &ids);
    let list = redis_list(6, &key);
    // LPUSH: the newest event at the head; IntelMQ's to_json with __type and raw.
    assert_eq!(id_of(&list[list.len() - 1]), Some(0));
    assert_eq!(list[0]["__type"], json!("Event"));
    assert!(list[0]["raw"].is_string());
    let _ = Command::new("redis-cli").args(["-n", "6", "DEL", &key]).output();
}

// ---------------------------------------------------------------------------------------------
// MQTT (Mosquitto)

/// `mosquitto_sub` on `topic`, its lines collected.
struct Subscriber {
    child: std::process::Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Subscriber {
    fn start(topic: &str) -> Subscriber {
        let mut child = Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", "1883", "-q", "1", "-t", topic])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_sub");
        let stdout = child.stdout.take().expect("stdout");
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().expect("lock").push(line);
            }
        });
        let sub = Subscriber { child, lines };
        // Ready once a probe published after the start comes back.
        wait_for("mosquitto_sub to subscribe", Duration::from_secs(10), || {
            let _ = Command::new("mosquitto_pub")
                .args(["-h", "127.0.0.1", "-p", "1883", "-q", "1", "-t", topic, "-m", r#"{"probe": true}"#])
                .status();
            std::thread::sleep(Duration::from_millis(100));
            sub.lines.lock().expect("lock").iter().any(|l| l.contains("probe"))
        });
        sub
    }

    fn events(&self) -> Vec<Value> {
        self.lines
            .lock()
            .expect("lock")
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v.get("probe").is_none())
            .collect()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn mqtt_output_publishes_every_event_once_across_an_outage() {
    if !service_available("Mosquitto", "127.0.0.1:1883") || !tool("mosquitto_sub") {
        return;
    }
    let topic = format!("intelmq-e2e/{}", unique("mqtt"));
    let sub = Subscriber::start(&topic);
    let proxy = TcpProxy::start(addr("127.0.0.1:1883"));
    let node = node_with(
        "intelmq.bots.outputs.mqtt.output",
        json!({"host": "127.0.0.1", "port": proxy.addr().port(), "topic": topic, "client_id": unique("intelmq-e2e"),
            "timeout": 3}),
        vec![],
    );
    let daemon = DaemonNode::start(node);
    let ids = || -> Vec<u64> { sub.events().iter().filter_map(id_of).collect() };
    outage(&daemon, &proxy, "out", &ids);
    let first = sub.events().into_iter().find(|e| id_of(e) == Some(0)).expect("event 0");
    assert!(first.get("raw").is_none(), "raw is left out by default: {first}");
    assert_eq!(first["feed.name"], json!("Outage Feed"));
}

// ---------------------------------------------------------------------------------------------
// RabbitMQ: amqptopic output -> exchange -> queue -> AMQP collector -> file output

/// A connection to the machine's RabbitMQ as guest (also used by the multi-node test).
pub(crate) fn amqp_link() -> AmqpLink {
    let mut link = AmqpLink::new(AmqpSettings {
        host: "127.0.0.1".into(),
        port: 5672,
        vhost: None,
        username: None,
        password: None,
        use_ssl: false,
        heartbeat: 60,
        attempts: 1,
        timeout: Duration::from_secs(10),
    });
    link.ensure().expect("connect to RabbitMQ");
    link
}

#[test]
fn amqp_output_and_collector_carry_every_event_once_across_a_broker_outage() {
    if !service_available("RabbitMQ", "127.0.0.1:5672") {
        return;
    }
    let exchange = unique("intelmq-e2e-x");
    let queue = unique("intelmq-e2e-q");
    let mut link = amqp_link();
    link.declare_exchange(&exchange, "topic", true).expect("exchange");
    link.declare_queue(&queue, true).expect("queue");
    link.bind_queue(&queue, &exchange, "events.#").expect("bind");

    let proxy = TcpProxy::start(addr("127.0.0.1:5672"));
    let port = proxy.addr().port();
    let node = node_with(
        "intelmq.bots.outputs.amqptopic.output",
        json!({"connection_host": "127.0.0.1", "connection_port": port, "connection_attempts": 1,
            "exchange_name": exchange, "routing_key": "events.{ev[classification.type]}", "format_routing_key": true,
            "message_with_type": true}),
        vec![
            (
                "amqp-in",
                // The forwarded events pass as they are: neither this feed's name and accuracy nor a
                // missing `raw` (the output leaves it out) change them.
                json!({"group": "Collector", "module": "intelmq.bots.collectors.amqp.collector_amqp", "name": "Relay Feed",
                    "parameters": {"connection_host": "127.0.0.1", "connection_port": port, "connection_attempts": 1,
                        "queue_name": queue, "expect_intelmq_message": true, "rate_limit": 0.3, "accuracy": 50}}),
                json!({"destination-queues": ["file-out-queue"]}),
            ),
            (
                "file-out",
                json!({"group": "Output", "module": "intelmq.bots.outputs.file.output",
                    "parameters": {"file": "var/lib/bots/file-output/events.txt"}}),
                json!({"source-queue": "file-out-queue"}),
            ),
        ],
    );
    let daemon = DaemonNode::start(node);
    let ids = || file_out_ids(&daemon);
    outage(&daemon, &proxy, "out", &ids);
    let events = daemon.node.events("var/lib/bots/file-output/events.txt");
    let first = events.iter().find(|e| id_of(e) == Some(0)).expect("event 0");
    assert_eq!(first["feed.name"], json!("Outage Feed"), "passed on as it is: {first}");
    assert_eq!(first["feed.accuracy"], json!(100.0), "passed on as it is: {first}");
    assert!(first.get("raw").is_none(), "no raw added: {first}");
    assert_eq!(link.declare_queue(&queue, true).expect("queue"), 0, "the collector acknowledged everything");
    let _ = link.delete_queue(&queue);
    let _ = link.delete_exchange(&exchange);
}

// ---------------------------------------------------------------------------------------------
// Elasticsearch: a `_bulk` endpoint served by the test (no Elasticsearch on this machine)

#[derive(Default)]
struct Elastic {
    indices: BTreeSet<String>,
    docs: Vec<(String, Value)>,
    requests: Vec<String>,
}

/// An HTTP/1.1 server on a real socket implementing what the output uses: `HEAD /<index>` (404
/// until created), `PUT /<index>`, and `POST /_bulk` (NDJSON `index` actions, per-item results).
fn elastic_listener() -> (SocketAddr, Arc<Mutex<Elastic>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let state: Arc<Mutex<Elastic>> = Arc::default();
    let shared = state.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let state = shared.clone();
            std::thread::spawn(move || {
                let _ = serve_http(stream, &state);
            });
        }
    });
    (addr, state)
}

fn serve_http(stream: TcpStream, state: &Mutex<Elastic>) -> std::io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let path = parts.next().unwrap_or_default().to_string();
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 {
                return Ok(());
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body)?;
        let (status, answer) = {
            let mut s = state.lock().expect("lock");
            s.requests.push(format!("{method} {path}"));
            match method.as_str() {
                "HEAD" => (if s.indices.contains(&path) { 200 } else { 404 }, String::new()),
                "PUT" => {
                    s.indices.insert(path.clone());
                    (200, r#"{"acknowledged": true}"#.to_string())
                }
                "POST" if path == "/_bulk" => {
                    let text = String::from_utf8_lossy(&body).into_owned();
                    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
                    let mut items = Vec::new();
                    for pair in lines.chunks(2) {
                        let action: Value = serde_json::from_str(pair[0]).unwrap_or(Value::Null);
                        let doc: Value = pair.get(1).and_then(|d| serde_json::from_str(d).ok()).unwrap_or(Value::Null);
                        let index = action["index"]["_index"].as_str().unwrap_or_default().to_string();
                        if doc.is_object() {
                            s.docs.push((index.clone(), doc));
                            items.push(json!({"index": {"_index": index, "status": 201, "result": "created"}}));
                        } else {
                            items.push(json!({"index": {"_index": index, "status": 400,
                                "error": {"type": "parse_exception", "reason": "no document"}}}));
                        }
                    }
                    let errors = items.iter().any(|i| i["index"]["status"] != json!(201));
                    (200, json!({"took": 1, "errors": errors, "items": items}).to_string())
                }
                _ => (404, r#"{"error": "not found"}"#.to_string()),
            }
        };
        let sent = if method == "HEAD" { "" } else { answer.as_str() };
        write!(
            writer,
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{sent}",
            if method == "HEAD" { 0 } else { answer.len() }
        )?;
        writer.flush()?;
    }
}

#[test]
fn elasticsearch_output_bulk_indexes_every_event_once_across_an_outage() {
    let (server, state) = elastic_listener();
    let proxy = TcpProxy::start(server);
    let node = node_with(
        "intelmq.bots.outputs.elasticsearch.output",
        json!({"elastic_host": "127.0.0.1", "elastic_port": proxy.addr().port(), "elastic_index": "intelmq-e2e",
            "http_timeout_sec": 3}),
        vec![],
    );
    let daemon = DaemonNode::start(node);
    let ids = || -> Vec<u64> { state.lock().expect("lock").docs.iter().filter_map(|(_, d)| id_of(d)).collect() };
    outage(&daemon, &proxy, "out", &ids);
    let s = state.lock().expect("lock");
    assert_eq!(s.requests[..2], ["HEAD /intelmq-e2e".to_string(), "PUT /intelmq-e2e".to_string()]);
    let bulks = s.requests.iter().filter(|r| r.as_str() == "POST /_bulk").count();
    assert!(bulks >= 2 && bulks < TOTAL, "events go in bulk requests ({bulks} for {TOTAL} events)");
    assert!(s.docs.iter().all(|(index, _)| index == "intelmq-e2e"));
    let doc = &s.docs.iter().find(|(_, d)| id_of(d) == Some(7)).expect("doc 7").1;
    assert_eq!(doc["source.ip"], json!("10.1.0.7"));
    assert!(doc.get("raw").is_some(), "the document is the whole event (IntelMQ's to_dict)");
}

// ---------------------------------------------------------------------------------------------
// STOMP (RabbitMQ's STOMP plugin): stomp output -> queue -> stomp collector -> file output

const STOMP: &str = "127.0.0.1:61613";

/// Whether RabbitMQ's STOMP plugin answers; when it does not and this runs as root next to a
/// running RabbitMQ, the plugin is enabled (`rabbitmq-plugins enable` does not restart the
/// broker). Skips with a message otherwise; with INTELMQ_REQUIRE_SERVICES=1 a plugin that exists
/// but could not be enabled fails the test.
fn stomp_available() -> bool {
    let answers = || TcpStream::connect_timeout(&addr(STOMP), Duration::from_secs(2)).is_ok();
    if answers() {
        return true;
    }
    let root = std::fs::read_to_string("/proc/self/status")
        .is_ok_and(|s| s.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0")));
    let listed = Command::new("rabbitmq-plugins")
        .arg("list")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("rabbitmq_stomp"));
    if root && listed && TcpStream::connect_timeout(&addr("127.0.0.1:5672"), Duration::from_secs(2)).is_ok() {
        let enabled = Command::new("rabbitmq-plugins").args(["enable", "rabbitmq_stomp"]).output();
        eprintln!("enabling rabbitmq_stomp: {enabled:?}");
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_secs(30) && !answers() {
            std::thread::sleep(Duration::from_millis(200));
        }
        if answers() {
            return true;
        }
    }
    assert!(
        !(intelmq_tests::services_required() && listed),
        "RabbitMQ's STOMP plugin exists but does not answer at {STOMP} (INTELMQ_REQUIRE_SERVICES=1)"
    );
    eprintln!("skipped: no STOMP at {STOMP} (RabbitMQ's rabbitmq_stomp plugin; enabling it needs root)");
    false
}

/// The collector bot that takes the STOMP queue back into the node: stomp collector -> JSON
/// parser -> file output.
fn stomp_back(params: Value) -> Vec<(&'static str, Value, Value)> {
    vec![
        (
            "stomp-in",
            json!({"group": "Collector", "module": "intelmq.bots.collectors.stomp.collector", "parameters": params}),
            json!({"destination-queues": ["back-parser-queue"]}),
        ),
        (
            "back-parser",
            json!({"group": "Parser", "module": "intelmq.bots.parsers.json.parser", "parameters": {}}),
            json!({"source-queue": "back-parser-queue", "destination-queues": ["file-out-queue"]}),
        ),
        (
            "file-out",
            json!({"group": "Output", "module": "intelmq.bots.outputs.file.output",
                "parameters": {"file": "var/lib/bots/file-output/events.txt"}}),
            json!({"source-queue": "file-out-queue"}),
        ),
    ]
}

fn file_out_ids(daemon: &DaemonNode) -> Vec<u64> {
    daemon
        .node
        .read("var/lib/bots/file-output/events.txt")
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|e| id_of(&e))
        .collect()
}

#[test]
fn stomp_output_and_collector_carry_every_event_once_across_a_broker_outage() {
    if !stomp_available() {
        return;
    }
    let queue = format!("/queue/{}", unique("intelmq-e2e-stomp"));
    let proxy = TcpProxy::start(addr(STOMP));
    let port = proxy.addr().port();
    let plain = json!({"server": "127.0.0.1", "port": port, "use_ssl": false, "auth_by_ssl_client_certificate": false,
        "username": "guest", "password": "guest", "exchange": queue});
    let mut collector = plain.clone();
    collector["rate_limit"] = json!(0.2);
    collector["heartbeat"] = json!(1000);
    let node = node_with("intelmq.bots.outputs.stomp.output", plain, stomp_back(collector));
    let daemon = DaemonNode::start(node);
    let ids = || file_out_ids(&daemon);
    outage(&daemon, &proxy, "out", &ids);
    let events = daemon.node.events("var/lib/bots/file-output/events.txt");
    let first = events.iter().find(|e| id_of(e) == Some(0)).expect("event 0");
    assert_eq!(first["source.url"], json!("http://host0.example.com/p"));
}

/// A TLS front the test owns before a plain service: its own CA signs the server certificate
/// (for 127.0.0.1 and localhost) and the client certificate it demands; the bytes go on in
/// plain text to `target`.
struct TlsFront {
    addr: SocketAddr,
    dir: tempfile::TempDir,
    /// Handshakes that presented a client certificate.
    clients: Arc<std::sync::atomic::AtomicUsize>,
}

impl TlsFront {
    fn start(target: SocketAddr) -> TlsFront {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

        let ca_key = KeyPair::generate().expect("key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).expect("CA");
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf = |names: Vec<String>| {
            let key = KeyPair::generate().expect("key");
            let cert = CertificateParams::new(names).expect("params").signed_by(&key, &issuer).expect("sign");
            (cert, key)
        };
        let (server_cert, server_key) = leaf(vec!["localhost".into(), "127.0.0.1".into()]);
        let (client_cert, client_key) = leaf(vec!["intelmq-client".into()]);
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).expect("write");
        std::fs::write(dir.path().join("client.pem"), client_cert.pem()).expect("write");
        std::fs::write(dir.path().join("client.key"), client_key.serialize_pem()).expect("write");

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from(ca.der().to_vec())).expect("root");
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .expect("verifier");
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![CertificateDer::from(server_cert.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
            )
            .expect("server config");
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let clients: Arc<std::sync::atomic::AtomicUsize> = Arc::default();
        let counter = clients.clone();
        std::thread::spawn(move || {
            for sock in listener.incoming() {
                let Ok(sock) = sock else { continue };
                let (config, counter) = (config.clone(), counter.clone());
                std::thread::spawn(move || tls_front_session(sock, target, config, &counter));
            }
        });
        TlsFront { addr, dir, clients }
    }

    fn file(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

/// One connection through the TLS front: the TLS side is read (briefly, under a lock) by this
/// thread and written by the thread copying from the service.
fn tls_front_session(
    sock: TcpStream,
    target: SocketAddr,
    config: Arc<rustls::ServerConfig>,
    clients: &std::sync::atomic::AtomicUsize,
) {
    let Ok(conn) = rustls::ServerConnection::new(config) else { return };
    let mut tls = rustls::StreamOwned::new(conn, sock);
    while tls.conn.is_handshaking() {
        if tls.conn.complete_io(&mut tls.sock).is_err() {
            return;
        }
    }
    if tls.conn.peer_certificates().is_some_and(|c| !c.is_empty()) {
        clients.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    let Ok(upstream) = TcpStream::connect(target) else { return };
    let Ok(mut from_service) = upstream.try_clone() else { return };
    let mut to_service = upstream;
    let _ = tls.sock.set_read_timeout(Some(Duration::from_millis(20)));
    let tls = Arc::new(Mutex::new(tls));
    let back = tls.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = match from_service.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let Ok(mut tls) = back.lock() else { break };
            if tls.write_all(&buf[..n]).and_then(|()| tls.flush()).is_err() {
                break;
            }
        }
        if let Ok(mut tls) = back.lock() {
            tls.conn.send_close_notify();
            let _ = tls.flush();
            let _ = tls.sock.shutdown(std::net::Shutdown::Both);
        }
    });
    let mut buf = [0u8; 16 * 1024];
    loop {
        let read = match tls.lock() {
            Ok(mut tls) => tls.read(&mut buf),
            Err(_) => break,
        };
        match read {
            Ok(0) => break,
            Ok(n) => {
                if to_service.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = to_service.shutdown(std::net::Shutdown::Both);
}

#[test]
fn stomp_over_tls_logs_in_with_the_client_certificate() {
    if !stomp_available() {
        return;
    }
    let queue = format!("/queue/{}", unique("intelmq-e2e-stomps"));
    let front = TlsFront::start(addr(STOMP));
    let tls = json!({"server": "127.0.0.1", "port": front.addr.port(), "exchange": queue,
        "ssl_ca_certificate": front.file("ca.pem"), "auth_by_ssl_client_certificate": true,
        "ssl_client_certificate": front.file("client.pem"), "ssl_client_certificate_key": front.file("client.key")});
    let mut collector = tls.clone();
    collector["rate_limit"] = json!(0.2);
    let node = node_with("intelmq.bots.outputs.stomp.output", tls, stomp_back(collector));
    let daemon = DaemonNode::start(node);
    feed(daemon.root(), 0..30);
    wait_for("30 events through STOMP over TLS", Duration::from_secs(30), || file_out_ids(&daemon).len() >= 30);
    std::thread::sleep(Duration::from_millis(300));
    let got: BTreeSet<u64> = file_out_ids(&daemon).into_iter().collect();
    assert_eq!(got, (0..30).collect::<BTreeSet<u64>>());
    assert_eq!(file_out_ids(&daemon).len(), 30, "no duplicates");
    assert!(front.clients.load(std::sync::atomic::Ordering::SeqCst) >= 2, "both bots showed the client certificate");
}
