//! Three nodes, one botnet, RabbitMQ between them: node A collects files, node B parses and
//! enriches, node C writes the events to a file. 100,000 events flow from A to C while node B is
//! killed with SIGKILL and started again, the broker is cut off from every node for a while, and
//! node B's own link to the broker is severed and restored. At the end every event is in C's
//! output exactly once. The broker is the machine's RabbitMQ, reached through proxies the test
//! owns (one in front of the broker, one per node); its queues carry a prefix unique to this run
//! and are deleted at the end.

use std::collections::HashSet;
use std::io::{Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use intelmq_tests::{service_available, wait_for, DaemonNode, TcpProxy, TestNode};
use serde_json::json;

const EVENTS: usize = 100_000;
const FILES: usize = 10;
const OUTPUT: &str = "var/lib/bots/file-output/events.txt";
const RABBITMQ: &str = "127.0.0.1:5672";
/// The queues that cross nodes: A -> B and B -> C.
const CROSSING: [&str; 2] = ["parser-queue", "output-queue"];
const NODES: [(&str, &str); 3] = [("node-a", "127.0.0.2"), ("node-b", "127.0.0.3"), ("node-c", "127.0.0.4")];

const RUNTIME: &str = r#"
collector:
  group: Collector
  module: intelmq.bots.collectors.file.collector_file
  name: Multi-node Feed
  node: node-a
  parameters:
    path: in
    postfix: .csv
    delete_file: false
    chunk_size: 65536
    provider: test
    rate_limit: 0.2
    destination_queues: {_default: [parser-queue]}
parser:
  group: Parser
  module: intelmq.bots.parsers.generic.parser_csv
  node: node-b
  parameters:
    columns: [extra.id, source.ip, source.url]
    type: malware-distribution
    skip_header: true
    destination_queues: {_default: [taxonomy-queue]}
taxonomy:
  group: Expert
  module: intelmq.bots.experts.taxonomy.expert
  node: node-b
  parameters:
    destination_queues: {_default: [url2fqdn-queue]}
url2fqdn:
  group: Expert
  module: intelmq.bots.experts.url2fqdn.expert
  node: node-b
  parameters:
    destination_queues: {_default: [output-queue]}
output:
  group: Output
  module: intelmq.bots.outputs.file.output
  node: node-c
  parameters:
    file: var/lib/bots/file-output/events.txt
"#;

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

/// A free TCP port on `ip` (a loopback address).
fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0)).and_then(|l| l.local_addr()).expect("free port").port()
}

/// The broker queues of this run, deleted when dropped (also when the test fails).
struct BrokerQueues {
    prefix: String,
}

impl Drop for BrokerQueues {
    fn drop(&mut self) {
        if std::net::TcpStream::connect(RABBITMQ).is_err() {
            eprintln!("cannot reach RabbitMQ to delete the broker queues of prefix {}", self.prefix);
            return;
        }
        let mut link = crate::outputs_db::amqp_link();
        for q in CROSSING {
            if let Err(e) = link.delete_queue(&format!("{}{q}", self.prefix)) {
                eprintln!("cannot delete broker queue {}{q}: {e}", self.prefix);
            }
        }
    }
}

/// Counts the lines of a growing file, reading only what is new.
struct LineCounter {
    path: PathBuf,
    offset: u64,
    lines: usize,
}

impl LineCounter {
    fn new(path: PathBuf) -> Self {
        LineCounter { path, offset: 0, lines: 0 }
    }

    fn count(&mut self) -> usize {
        if let Ok(mut f) = std::fs::File::open(&self.path) {
            if f.seek(SeekFrom::Start(self.offset)).is_ok() {
                let mut buf = Vec::new();
                if f.read_to_end(&mut buf).is_ok() {
                    // The output cuts away lines of a step that never committed: only whole lines
                    // are counted, and a shrinking file starts the count again.
                    let whole = buf.iter().rposition(|c| *c == b'\n').map_or(0, |i| i + 1);
                    self.lines += buf[..whole].iter().filter(|c| **c == b'\n').count();
                    self.offset += whole as u64;
                }
            }
            if f.metadata().is_ok_and(|m| m.len() < self.offset) {
                self.offset = 0;
                self.lines = 0;
            }
        }
        self.lines
    }
}

/// Writes input file `n` (events `n * per .. (n + 1) * per`) under a temporary name, then renames
/// it, so the collector never sees half a file.
fn drop_file(root: &Path, n: usize) {
    let per = EVENTS / FILES;
    let mut csv = String::from("id,ip,url\n");
    for i in n * per..(n + 1) * per {
        csv.push_str(&format!(
            "{i},10.{}.{}.{},http://host{i}.example.com/p/{i}\n",
            (i >> 16) & 255,
            (i >> 8) & 255,
            i & 255
        ));
    }
    let dir = root.join("in");
    std::fs::create_dir_all(&dir).expect("in dir");
    let tmp = dir.join(format!(".part-{n}.tmp"));
    std::fs::write(&tmp, csv).expect("write input");
    std::fs::rename(&tmp, dir.join(format!("part-{n}.csv"))).expect("rename input");
}

/// Messages waiting on a node: its inboxes and its outboxes.
fn waiting(node: &DaemonNode) -> Option<u64> {
    let out = node.ctl().run(&["queue", "list", "--count", "--json"]);
    (out.code == 0).then(|| out.json()["total-messages"].as_u64()).flatten()
}

/// A bot's outbox on a node (its inbox is on another node).
fn outbox_of(node: &DaemonNode, bot: &str) -> u64 {
    let out = node.ctl().run(&["stats", "--json"]);
    if out.code != 0 {
        return 0;
    }
    let j = out.json();
    j["bots"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|b| b["bot_id"] == bot)
        .and_then(|b| b["outbox_size"].as_u64())
        .unwrap_or(0)
}

#[test]
fn three_nodes_carry_every_event_once_through_a_kill_a_broker_outage_and_a_severed_link() {
    if !service_available("RabbitMQ", RABBITMQ) {
        return;
    }
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let queues = BrokerQueues { prefix: format!("intelmq-test-{}-{nanos}.", std::process::id()) };
    let broker = TcpProxy::start(addr(RABBITMQ));
    let links: Vec<TcpProxy> = NODES.iter().map(|_| TcpProxy::start(broker.addr())).collect();
    let ports: Vec<u16> = NODES.iter().map(|(_, ip)| free_port(ip)).collect();
    let roots: Vec<TestNode> = NODES
        .iter()
        .enumerate()
        .map(|(i, (id, ip))| {
            let node = TestNode::empty();
            let peers: Vec<_> = NODES
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(j, (peer, peer_ip))| json!({"id": peer, "control": format!("{peer_ip}:{}", ports[j])}))
                .collect();
            let conf = json!({
                "node_id": id,
                "control": {"tcp": format!("{ip}:{}", ports[i])},
                "peers": peers,
                "broker": {
                    "url": format!("amqp://guest:guest@{}/%2f", links[i].addr()),
                    "queue_prefix": queues.prefix,
                },
            });
            node.write("etc/node.conf", serde_json::to_string_pretty(&conf).expect("json"));
            node.write("etc/runtime.yaml", RUNTIME);
            node.write("etc/defaults.conf", r#"{"error_retry_delay": 0, "logging_level": "INFO"}"#);
            node
        })
        .collect();
    let [root_a, root_b, root_c]: [TestNode; 3] = roots.try_into().ok().expect("three roots");
    let input = root_a.root().to_path_buf();
    for n in 0..3 {
        drop_file(&input, n);
    }
    let mut out = LineCounter::new(root_c.root().join(OUTPUT));
    let start = Instant::now();
    let c = DaemonNode::start(root_c);
    let mut b = DaemonNode::start(root_b);
    let a = DaemonNode::start(root_a);
    let long = Duration::from_secs(180);

    // Undisturbed flow first: the rate across the three nodes.
    wait_for("the first events at node C", long, || out.count() > 0);
    let first = Instant::now();
    wait_for("10,000 events at node C", long, || out.count() >= 10_000);
    let steady = out.count() as f64 / first.elapsed().as_secs_f64();

    // kill -9 node B in the middle of the flow, then start it again.
    for n in [&a, &c] {
        n.ctl().run(&["node", "list"]).expect_code(0);
    }
    b.kill();
    let at_kill = out.count();
    drop_file(&input, 3);
    drop_file(&input, 4);
    // What B had sent before it died reaches C's output; then the output stands still.
    wait_for("node C to drain what B sent before dying", long, || waiting(&c) == Some(0));
    // The surviving nodes keep answering for the whole botnet and show B as unreachable.
    for survivor in [&a, &c] {
        let nodes = survivor.ctl().run(&["node", "list", "--json"]);
        assert_eq!(nodes.code, 1, "a node is unreachable: {nodes:?}");
        let nodes = nodes.json();
        let b_entry = nodes.as_array().into_iter().flatten().find(|n| n["node_id"] == "node-b").cloned();
        let b_entry = b_entry.unwrap_or_else(|| panic!("node-b in {nodes}"));
        assert_eq!(b_entry["reachable"], serde_json::json!(false), "{nodes}");
        assert!(b_entry["last_answer_ms"].as_u64().is_some(), "B answered before it died: {nodes}");
        let status = survivor.ctl().run(&["status"]);
        assert!(status.stdout.contains("Bot parser is in an unknown state: node node-b unreachable"), "{status:?}");
        survivor.ctl().run(&["status", "output"]).expect_code(0);
    }
    let before_restart = out.count();
    let restarted = Instant::now();
    b.restart();
    wait_for("node C's output to grow after B's restart", long, || out.count() > before_restart);
    let recovery = restarted.elapsed();
    eprintln!("node B killed at {at_kill} events out; output grows again {recovery:?} after its restart");

    // The broker goes away for every node: A keeps collecting into its outbox.
    wait_for("40,000 events at node C", long, || out.count() >= 40_000);
    broker.cut();
    drop_file(&input, 5);
    drop_file(&input, 6);
    wait_for("node A's outbox to fill while the broker is away", long, || outbox_of(&a, "parser") > 0);
    let outbox_a = outbox_of(&a, "parser");
    broker.restore();
    eprintln!("broker outage: node A held {outbox_a} reports in its outbox");

    // Node B alone loses the broker: its outbox to C fills, the others go on.
    wait_for("60,000 events at node C", long, || out.count() >= 60_000);
    links[1].cut();
    for n in 7..FILES {
        drop_file(&input, n);
    }
    wait_for("node B's outbox to fill while its link is down", long, || outbox_of(&b, "output") > 0);
    let outbox_b = outbox_of(&b, "output");
    links[1].restore();
    eprintln!("severed link: node B held {outbox_b} events in its outbox");

    wait_for("every event at node C", Duration::from_secs(300), || out.count() >= EVENTS);
    for node in [&a, &b, &c] {
        wait_for("every node's queues and outboxes to drain", long, || waiting(node) == Some(0));
    }
    let elapsed = start.elapsed();
    eprintln!(
        "{EVENTS} events through 3 nodes in {:.1} s: {:.0} events/s overall (with the disruptions), {steady:.0} events/s undisturbed",
        elapsed.as_secs_f64(),
        EVENTS as f64 / elapsed.as_secs_f64()
    );

    let lines = std::fs::read_to_string(c.root().join(OUTPUT)).expect("output");
    let mut seen = HashSet::new();
    let mut duplicates = Vec::new();
    for line in lines.lines() {
        let ev: serde_json::Value = serde_json::from_str(line).expect("output line is JSON");
        let id = ev["extra.id"].to_string();
        if !seen.insert(id.clone()) {
            duplicates.push(id);
        }
    }
    assert!(
        duplicates.is_empty(),
        "{} duplicated events, e.g. {:?}",
        duplicates.len(),
        &duplicates[..duplicates.len().min(5)]
    );
    assert_eq!(seen.len(), EVENTS, "every event arrives");
    assert_eq!(lines.lines().count(), EVENTS, "count in == count out");
    for (node, name) in [(&a, "A"), (&b, "B"), (&c, "C")] {
        let dumps = node.ctl().run(&["dump", "list", "--json"]).expect_code(0).json();
        let dumped: u64 = dumps.as_object().into_iter().flatten().filter_map(|(_, n)| n.as_u64()).sum();
        assert_eq!(dumped, 0, "node {name} dumped messages: {dumps}");
    }
}
