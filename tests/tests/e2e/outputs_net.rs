//! Network and file outputs and the push collectors through a running node, against far ends the
//! test owns (a TCP collector bot, an HTTP server, an SMTP server, a UDP socket, HTTP clients):
//! the far side goes away while events flow, the output waits (still running, its log says why),
//! the far side comes back, and every event arrives exactly once.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use intelmq_tests::{wait_for, DaemonNode, TestNode};
use serde_json::{json, Value};

const OUT: &str = "var/lib/bots/file-output/events.txt";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// A node root with this botnet and quick retries.
fn node_with(runtime: Value, pipeline: Value) -> TestNode {
    let node = TestNode::empty();
    node.write("etc/runtime.conf", serde_json::to_string_pretty(&runtime).expect("json"));
    node.write("etc/pipeline.conf", serde_json::to_string_pretty(&pipeline).expect("json"));
    node.write("etc/defaults.conf", r#"{"error_retry_delay": 0.2, "logging_level": "INFO"}"#);
    node
}

fn event(i: usize) -> String {
    json!({"classification.type": "infected-system", "source.ip": format!("192.0.2.{}", i % 250 + 1), "extra.n": i})
        .to_string()
}

fn inject(daemon: &DaemonNode, queue: &str, range: std::ops::Range<usize>) {
    for i in range {
        daemon.ctl().run(&["queue", "inject", queue, "--msg", &event(i)]).expect_code(0);
    }
}

/// `extra.n` of every event the file output wrote, with how often.
fn written(node: &TestNode) -> BTreeMap<u64, usize> {
    let mut seen = BTreeMap::new();
    for line in node.read(OUT).lines() {
        let ev: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("bad line {line:?}: {e}"));
        let n = ev["extra.n"]
            .as_u64()
            .or_else(|| ev["extra"]["n"].as_u64())
            .unwrap_or_else(|| panic!("no extra.n in {line}"));
        *seen.entry(n).or_default() += 1;
    }
    seen
}

fn state(daemon: &DaemonNode, bot: &str) -> Value {
    daemon.ctl().run(&["--json", "bot", "status", bot]).json()
}

/// Asserts that the bot runs and its log says it waits for the far side.
fn assert_waiting(daemon: &DaemonNode, bot: &str) {
    let log = format!("var/log/{bot}.log");
    wait_for(&format!("{bot} to report the far side unavailable"), Duration::from_secs(20), || {
        daemon.node.read(&log).contains("The far side is unavailable")
    });
    assert_eq!(state(daemon, bot), "running", "{bot} keeps running while it waits");
    let text = daemon.ctl().run(&["bot", "status", bot]);
    eprintln!("status while waiting: {}", text.stdout.trim());
}

fn assert_exactly_once(seen: &BTreeMap<u64, usize>, n: usize) {
    let dups: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).collect();
    assert!(dups.is_empty(), "duplicated events: {dups:?}");
    assert_eq!(seen.len(), n, "every event arrives: {seen:?}");
}

#[test]
fn tcp_output_feeds_a_tcp_collector_that_goes_away_and_comes_back() {
    let port = free_port();
    let node = node_with(
        json!({
            "tcp-output": {"group": "Output", "module": "intelmq.bots.outputs.tcp.output",
                "parameters": {"ip": "127.0.0.1", "port": port, "counterpart_is_intelmq": true}},
            "tcp-collector": {"group": "Collector", "module": "intelmq.bots.collectors.tcp.collector", "name": "TCP",
                "parameters": {"ip": "127.0.0.1", "port": port.to_string(), "rate_limit": 0.1}},
            "json-parser": {"group": "Parser", "module": "intelmq.bots.parsers.json.parser", "parameters": {}},
            "file-output": {"group": "Output", "module": "intelmq.bots.outputs.file.output", "parameters": {"file": OUT}}
        }),
        json!({
            "tcp-output": {"source-queue": "tcp-output-queue"},
            "tcp-collector": {"destination-queues": ["json-parser-queue"]},
            "json-parser": {"source-queue": "json-parser-queue", "destination-queues": ["file-output-queue"]},
            "file-output": {"source-queue": "file-output-queue"}
        }),
    );
    let daemon = DaemonNode::start(node);
    inject(&daemon, "tcp-output-queue", 0..10);
    wait_for("10 events through TCP", Duration::from_secs(30), || written(&daemon.node).len() >= 10);

    // The far side goes away: the collector bot stops and closes its port.
    daemon.ctl().run(&["stop", "tcp-collector"]).expect_code(0);
    inject(&daemon, "tcp-output-queue", 10..20);
    assert_waiting(&daemon, "tcp-output");
    assert_eq!(written(&daemon.node).len(), 10, "nothing passes while the collector is away");

    daemon.ctl().run(&["start", "tcp-collector"]).expect_code(0);
    inject(&daemon, "tcp-output-queue", 20..30);
    wait_for("all 30 events", Duration::from_secs(30), || written(&daemon.node).len() >= 30);
    std::thread::sleep(Duration::from_millis(500));
    assert_exactly_once(&written(&daemon.node), 30);
    assert_eq!(state(&daemon, "tcp-output"), "running");
}

/// A tiny HTTP server the test switches: up (200), failing (503) or gone (port closed).
struct HttpFarEnd {
    port: u16,
    mode: Arc<Mutex<&'static str>>,
    bodies: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl HttpFarEnd {
    fn start() -> HttpFarEnd {
        let port = free_port();
        let far = HttpFarEnd {
            port,
            mode: Arc::new(Mutex::new("up")),
            bodies: Arc::default(),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let (mode, bodies, stop) = (far.mode.clone(), far.bodies.clone(), far.stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Acquire) {
                if *mode.lock().expect("lock") == "gone" {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
                let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind far end");
                listener.set_nonblocking(true).expect("nonblocking");
                while *mode.lock().expect("lock") != "gone" && !stop.load(Ordering::Acquire) {
                    match listener.accept() {
                        Ok((s, _)) => {
                            let _ = s.set_nonblocking(false);
                            let status = if *mode.lock().expect("lock") == "up" { 200 } else { 503 };
                            if let Some(body) = answer(s, status) {
                                if status == 200 {
                                    bodies.lock().expect("lock").push(body);
                                }
                            }
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            }
        });
        far
    }

    fn set(&self, mode: &'static str) {
        *self.mode.lock().expect("lock") = mode;
    }
}

impl Drop for HttpFarEnd {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// Reads one request and answers it; returns the body once the answer is written.
fn answer(s: TcpStream, status: u16) -> Option<String> {
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut r = BufReader::new(s.try_clone().ok()?);
    let mut len = 0usize;
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    loop {
        let mut line = String::new();
        r.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).ok()?;
    let mut w = s;
    write!(w, "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").ok()?;
    w.flush().ok()?;
    Some(String::from_utf8_lossy(&body).into_owned())
}

#[test]
fn restapi_output_waits_for_a_failing_then_missing_server() {
    let far = HttpFarEnd::start();
    let node = node_with(
        json!({"rest-output": {"group": "Output", "module": "intelmq.bots.outputs.restapi.output",
            "parameters": {"host": format!("http://127.0.0.1:{}/events", far.port), "auth_type": "http_header",
                "auth_token_name": "X-Token", "auth_token": "t", "http_timeout_sec": 5}}}),
        json!({"rest-output": {"source-queue": "rest-output-queue"}}),
    );
    let daemon = DaemonNode::start(node);
    inject(&daemon, "rest-output-queue", 0..10);
    wait_for("10 posts", Duration::from_secs(30), || far.bodies.lock().expect("lock").len() >= 10);
    far.set("failing");
    inject(&daemon, "rest-output-queue", 10..15);
    assert_waiting(&daemon, "rest-output");
    far.set("gone");
    inject(&daemon, "rest-output-queue", 15..20);
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(far.bodies.lock().expect("lock").len(), 10);
    far.set("up");
    wait_for("all 20 posts", Duration::from_secs(30), || far.bodies.lock().expect("lock").len() >= 20);
    std::thread::sleep(Duration::from_millis(500));
    let mut seen = BTreeMap::new();
    for body in far.bodies.lock().expect("lock").iter() {
        let ev: Value = serde_json::from_str(body).expect("json body");
        *seen.entry(ev["extra.n"].as_u64().expect("extra.n")).or_default() += 1;
    }
    assert_exactly_once(&seen, 20);
}

/// A tiny SMTP server the test switches: up, or refusing with 421 at the greeting.
fn smtp_far_end(up: Arc<AtomicBool>, mails: Arc<Mutex<Vec<String>>>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind smtp");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(s) = s else { continue };
            let (up, mails) = (up.clone(), mails.clone());
            std::thread::spawn(move || {
                let _ = smtp_session(s, &up, &mails);
            });
        }
    });
    port
}

fn smtp_session(s: TcpStream, up: &AtomicBool, mails: &Mutex<Vec<String>>) -> std::io::Result<()> {
    let mut w = s.try_clone()?;
    if !up.load(Ordering::Acquire) {
        w.write_all(b"421 try again later\r\n")?;
        return Ok(());
    }
    let mut r = BufReader::new(s);
    w.write_all(b"220 test\r\n")?;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_ascii_uppercase();
        if cmd == "DATA" {
            w.write_all(b"354 go\r\n")?;
            let mut data = String::new();
            loop {
                let mut l = String::new();
                if r.read_line(&mut l)? == 0 {
                    return Ok(());
                }
                if l == ".\r\n" {
                    break;
                }
                data.push_str(&l);
            }
            if !up.load(Ordering::Acquire) {
                w.write_all(b"451 local error\r\n")?;
                continue;
            }
            w.write_all(b"250 queued\r\n")?;
            mails.lock().expect("lock").push(data);
        } else if cmd == "QUIT" {
            w.write_all(b"221 bye\r\n")?;
            return Ok(());
        } else {
            w.write_all(b"250 ok\r\n")?;
        }
    }
}

#[test]
fn smtp_outputs_wait_for_a_refusing_server() {
    let up = Arc::new(AtomicBool::new(true));
    let mails: Arc<Mutex<Vec<String>>> = Arc::default();
    let port = smtp_far_end(up.clone(), mails.clone());
    let node = node_with(
        json!({
            "smtp-output": {"group": "Output", "module": "intelmq.bots.outputs.smtp.output",
                "parameters": {"smtp_host": "127.0.0.1", "smtp_port": port, "starttls": false, "mail_to": "abuse@example.com",
                    "subject": "n={ev[extra.n]}", "text": "Event {ev[extra.n]}", "fieldnames": "source.ip,extra.n"}},
            "templated-output": {"group": "Output", "module": "intelmq.bots.outputs.templated_smtp.output",
                "parameters": {"smtp_host": "127.0.0.1", "smtp_port": port, "mail_from": "cert@example.com",
                    "mail_to": "abuse@example.com", "subject": "t={{ event['extra.n'] }}"}}
        }),
        json!({"smtp-output": {"source-queue": "smtp-output-queue"}, "templated-output": {"source-queue": "templated-output-queue"}}),
    );
    let daemon = DaemonNode::start(node);
    inject(&daemon, "smtp-output-queue", 0..5);
    inject(&daemon, "templated-output-queue", 0..5);
    wait_for("10 mails", Duration::from_secs(30), || mails.lock().expect("lock").len() >= 10);
    up.store(false, Ordering::Release);
    inject(&daemon, "smtp-output-queue", 5..10);
    inject(&daemon, "templated-output-queue", 5..10);
    assert_waiting(&daemon, "smtp-output");
    assert_waiting(&daemon, "templated-output");
    up.store(true, Ordering::Release);
    wait_for("20 mails", Duration::from_secs(30), || mails.lock().expect("lock").len() >= 20);
    std::thread::sleep(Duration::from_millis(500));
    let mails = mails.lock().expect("lock");
    for prefix in ["Subject: n=", "Subject: t="] {
        let mut seen = BTreeMap::new();
        for mail in mails.iter() {
            if let Some(rest) = mail.split(prefix).nth(1) {
                let n: u64 = rest.split("\r\n").next().unwrap_or("").parse().expect("number in subject");
                *seen.entry(n).or_default() += 1;
            }
        }
        assert_exactly_once(&seen, 10);
    }
}

#[test]
fn api_collector_answers_after_the_commit_and_clients_retry_across_a_node_restart() {
    let port = free_port();
    let node = node_with(
        json!({
            "api-collector": {"group": "Collector", "module": "intelmq.bots.collectors.api.collector_api", "name": "API collector",
                "parameters": {"name": "API", "provider": "APICollector", "port": port, "auth_token": "s3cret", "rate_limit": 0.1}},
            "json-parser": {"group": "Parser", "module": "intelmq.bots.parsers.json.parser", "parameters": {}},
            "file-output": {"group": "Output", "module": "intelmq.bots.outputs.file.output", "parameters": {"file": OUT}}
        }),
        json!({
            "api-collector": {"destination-queues": ["json-parser-queue"]},
            "json-parser": {"source-queue": "json-parser-queue", "destination-queues": ["file-output-queue"]},
            "file-output": {"source-queue": "file-output-queue"}
        }),
    );
    let mut daemon = DaemonNode::start(node);
    /// POSTs until the answer is 2xx; returns the number of attempts.
    fn push(port: u16, body: &str) -> usize {
        for attempt in 1..=600 {
            let ok = (|| -> std::io::Result<bool> {
                let mut s = TcpStream::connect(("127.0.0.1", port))?;
                s.set_read_timeout(Some(Duration::from_secs(10)))?;
                write!(
                    s,
                    "POST /intelmq/push HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )?;
                let mut answer = String::new();
                s.read_to_string(&mut answer)?;
                Ok(answer.starts_with("HTTP/1.1 2"))
            })();
            if ok.unwrap_or(false) {
                return attempt;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("push never accepted");
    }
    let clients = std::thread::spawn(move || (0..30).map(|i| push(port, &event(i))).sum::<usize>());
    wait_for("some events", Duration::from_secs(30), || written(&daemon.node).len() >= 10);
    // The node goes away mid-stream and comes back on the same root.
    daemon.stop();
    let TestNode { dir } = std::mem::replace(&mut daemon.node, TestNode::empty());
    let daemon = DaemonNode::start(TestNode { dir });
    let attempts = clients.join().expect("clients");
    wait_for("all 30 events", Duration::from_secs(30), || written(&daemon.node).len() >= 30);
    std::thread::sleep(Duration::from_millis(500));
    assert_exactly_once(&written(&daemon.node), 30);
    eprintln!("30 pushes took {attempts} attempts");
    // Without the token nothing is collected.
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.write_all(b"POST /intelmq/push HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
        .expect("write");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("read");
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
}

#[test]
fn udp_and_file_outputs_through_a_node() {
    let far = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    far.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let udp_port = far.local_addr().expect("addr").port();
    let node = node_with(
        json!({
            "taxonomy": {"group": "Expert", "module": "intelmq.bots.experts.taxonomy.expert", "parameters": {}},
            "udp-output": {"group": "Output", "module": "intelmq.bots.outputs.udp.output",
                "parameters": {"format": "delimited", "udp_host": "127.0.0.1", "udp_port": udp_port, "header": "intelmq"}},
            "files-output": {"group": "Output", "module": "intelmq.bots.outputs.files.output",
                "parameters": {"dir": "var/lib/bots/files-output/incoming", "tmp": "var/lib/bots/files-output/tmp"}},
            "bro-output": {"group": "Output", "module": "intelmq.bots.outputs.bro_file.output",
                "parameters": {"file": "var/lib/bots/file-output/bro"}},
            "rpz-output": {"group": "Output", "module": "intelmq.bots.outputs.rpz_file.output",
                "parameters": {"file": "var/lib/bots/file-output/rpz", "cname": "block.example."}}
        }),
        json!({
            "taxonomy": {"source-queue": "taxonomy-queue",
                "destination-queues": ["udp-output-queue", "files-output-queue", "bro-output-queue", "rpz-output-queue"]},
            "udp-output": {"source-queue": "udp-output-queue"},
            "files-output": {"source-queue": "files-output-queue"},
            "bro-output": {"source-queue": "bro-output-queue"},
            "rpz-output": {"source-queue": "rpz-output-queue"}
        }),
    );
    let daemon = DaemonNode::start(node);
    for i in 0..5 {
        let msg = json!({"classification.type": "phishing", "source.fqdn": format!("www.host{i}.example.com"),
            "feed.accuracy": 90.0, "feed.provider": "P"})
        .to_string();
        daemon.ctl().run(&["queue", "inject", "taxonomy-queue", "--msg", &msg]).expect_code(0);
    }
    let mut datagrams = Vec::new();
    let mut buf = [0u8; 65536];
    while datagrams.len() < 5 {
        let n = far.recv(&mut buf).expect("a datagram");
        datagrams.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(
        datagrams
            .iter()
            .all(|d| d.starts_with("intelmq|") && d.ends_with('\n') && d.contains("|classification.taxonomy:fraud")),
        "{datagrams:?}"
    );
    let incoming = daemon.root().join("var/lib/bots/files-output/incoming");
    wait_for("5 files", Duration::from_secs(30), || std::fs::read_dir(&incoming).map(|d| d.count()).unwrap_or(0) == 5);
    wait_for("bro and rpz lines", Duration::from_secs(30), || {
        daemon.node.read("var/lib/bots/file-output/bro").lines().count() == 6
            && daemon.node.read("var/lib/bots/file-output/rpz").matches("CNAME block.example.").count() == 10
    });
    let bro = daemon.node.read("var/lib/bots/file-output/bro");
    assert!(bro.starts_with("#fields\tindicator\t"), "{bro}");
    assert!(bro.contains("www.host0.example.com\tIntel::DOMAIN\tphishing\t90\tP\n"), "{bro}");
    let rpz = daemon.node.read("var/lib/bots/file-output/rpz");
    assert!(
        rpz.contains("\nhost3.example.com CNAME block.example.\nwww.host3.example.com CNAME block.example.\n"),
        "{rpz}"
    );
}

/// `stats --json` entry of `bot`.
fn stats_of(daemon: &DaemonNode, bot: &str) -> Value {
    let stats = daemon.ctl().run(&["--json", "stats"]).json();
    stats["bots"].as_array().into_iter().flatten().find(|b| b["bot_id"] == bot).cloned().unwrap_or(Value::Null)
}

#[test]
fn touch_output_waits_for_its_file_and_blackhole_takes_everything() {
    let node = node_with(
        json!({
            "touch-out": {"group": "Output", "module": "intelmq.bots.outputs.touch.output",
                "parameters": {"path": "var/lib/touched"}},
            "blackhole-out": {"group": "Output", "module": "intelmq.bots.outputs.blackhole.output", "parameters": {}}
        }),
        json!({
            "touch-out": {"source-queue": "touch-queue"},
            "blackhole-out": {"source-queue": "blackhole-queue"}
        }),
    );
    let file = node.root().join("var/lib/touched");
    node.write("var/lib/touched", "");
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    let set_old = || std::fs::File::options().write(true).open(&file).expect("open").set_modified(old).expect("mtime");
    set_old();
    let touched =
        || std::fs::metadata(&file).and_then(|m| m.modified()).is_ok_and(|t| t > old + Duration::from_secs(1800));
    let daemon = DaemonNode::start(node);
    let drained = |bot: &str| {
        let s = stats_of(&daemon, bot);
        s["queue_size"] == 0 && s["dumped"] == 0
    };
    inject(&daemon, "touch-queue", 0..5);
    inject(&daemon, "blackhole-queue", 0..5);
    wait_for("the file touched", Duration::from_secs(20), touched);
    wait_for("both inboxes drained", Duration::from_secs(20), || drained("touch-out") && drained("blackhole-out"));

    // The file goes away: the events wait in the inbox.
    std::fs::remove_file(&file).expect("remove");
    inject(&daemon, "touch-queue", 5..10);
    inject(&daemon, "blackhole-queue", 5..12);
    assert_waiting(&daemon, "touch-out");
    assert!(stats_of(&daemon, "touch-out")["queue_size"].as_u64().unwrap_or(0) > 0, "the events wait");
    std::fs::write(&file, "").expect("recreate");
    set_old();
    wait_for("the file touched again", Duration::from_secs(30), touched);
    wait_for("both inboxes drained", Duration::from_secs(30), || drained("touch-out") && drained("blackhole-out"));
    assert_eq!(stats_of(&daemon, "blackhole-out")["received"], 12, "every event taken once");
    let dumps = daemon.ctl().run(&["--json", "dump", "list"]);
    assert!(!dumps.stdout.contains("touch-out"), "nothing dumped: {dumps:?}");
}
