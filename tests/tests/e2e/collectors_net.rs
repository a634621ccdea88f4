//! The collectors that talk to real services, through a running node, against far ends the test
//! owns (an HTTP server, a line stream, an IMAP server, a STOMP broker, a local rsync source),
//! reached through the test's TCP proxy: the far side goes away, the collector keeps running and
//! says why it waits, the far side comes back, and every record arrives exactly once.
//!
//! Each feed record is a JSON line `{"classification.type": ..., "source.ip": ..., "extra.n": N}`;
//! the JSON parser (splitlines) turns it into an event and the file output writes it.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use intelmq_tests::{services_required, wait_for, DaemonNode, TcpProxy, TestNode};
use serde_json::{json, Value};

pub(crate) const OUT: &str = "var/lib/bots/file-output/events.txt";

/// The JSON line of record `n`.
pub(crate) fn record(n: usize) -> String {
    json!({"classification.type": "infected-system", "source.ip": format!("192.0.2.{}", n % 250 + 1), "extra.n": n})
        .to_string()
}

pub(crate) fn records(range: std::ops::Range<usize>) -> String {
    range.map(|n| record(n) + "\n").collect()
}

/// A node: `collector` (module, parameters) -> JSON parser -> file output, quick retries.
pub(crate) fn node_with(module: &str, params: Value) -> TestNode {
    node_with_parser(module, params, json!({"splitlines": true}))
}

/// [`node_with`] with the JSON parser's parameters.
pub(crate) fn node_with_parser(module: &str, params: Value, parser: Value) -> TestNode {
    let node = TestNode::empty();
    let runtime = json!({
        "collector": {"group": "Collector", "module": module, "name": "Net Feed", "parameters": params},
        "parser": {"group": "Parser", "module": "intelmq.bots.parsers.json.parser", "parameters": parser},
        "file-output": {"group": "Output", "module": "intelmq.bots.outputs.file.output", "parameters": {"file": OUT}}
    });
    let pipeline = json!({
        "collector": {"destination-queues": ["parser-queue"]},
        "parser": {"source-queue": "parser-queue", "destination-queues": ["file-output-queue"]},
        "file-output": {"source-queue": "file-output-queue"}
    });
    node.write("etc/runtime.conf", serde_json::to_string_pretty(&runtime).expect("json"));
    node.write("etc/pipeline.conf", serde_json::to_string_pretty(&pipeline).expect("json"));
    node.write("etc/defaults.conf", r#"{"error_retry_delay": 0.2, "logging_level": "INFO"}"#);
    node
}

/// `extra.n` of every written event, with how often.
pub(crate) fn written(node: &TestNode) -> BTreeMap<u64, usize> {
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

pub(crate) fn assert_exactly_once(seen: &BTreeMap<u64, usize>, n: usize) {
    let dups: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).collect();
    assert!(dups.is_empty(), "duplicated records: {dups:?}");
    assert_eq!(seen.len(), n, "every record arrives: {seen:?}");
}

/// Waits until the collector logs that the far side is unavailable, then checks that it still
/// runs and that its status says it waits.
pub(crate) fn assert_waiting(daemon: &DaemonNode) {
    wait_for("the collector to report the far side unavailable", Duration::from_secs(20), || {
        daemon.node.read("var/log/collector.log").contains("The far side is unavailable")
    });
    let state = daemon.ctl().run(&["--json", "bot", "status", "collector"]).json();
    assert_eq!(state, "running", "the collector keeps running while it waits");
    let text = daemon.ctl().run(&["bot", "status", "collector"]);
    eprintln!("status while waiting: {}", text.stdout.trim());
}

pub(crate) fn wait_written(daemon: &DaemonNode, n: usize) {
    wait_for(&format!("{n} records written"), Duration::from_secs(30), || written(&daemon.node).len() >= n);
}

/// Reads an HTTP request head: the request line and the headers (names lowercased).
pub(crate) fn read_head(r: &mut impl BufRead) -> Option<(String, Vec<(String, String)>)> {
    let mut first = String::new();
    if r.read_line(&mut first).ok()? == 0 {
        return None;
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    Some((first.trim_end().to_string(), headers))
}

/// What an [`ApiServer`] answers: (method, path with query, Host header, body) -> (status, body).
type Handler = dyn Fn(&str, &str, &str, &[u8]) -> (u16, String) + Send + Sync;

/// An HTTP/1.1 server the test owns, on a real socket: every request gets the handler's answer
/// (one request per connection).
pub(crate) struct ApiServer {
    pub(crate) addr: SocketAddr,
    pub(crate) requests: Arc<AtomicUsize>,
}

impl ApiServer {
    pub(crate) fn start(
        handler: impl Fn(&str, &str, &str, &[u8]) -> (u16, String) + Send + Sync + 'static,
    ) -> ApiServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let requests: Arc<AtomicUsize> = Arc::default();
        let handler: Arc<Handler> = Arc::new(handler);
        let count = requests.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let (handler, count) = (handler.clone(), count.clone());
                std::thread::spawn(move || {
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                    let Ok(clone) = conn.try_clone() else { return };
                    let mut r = BufReader::new(clone);
                    let Some((first, headers)) = read_head(&mut r) else { return };
                    let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
                    let len = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
                    let mut body = vec![0u8; len];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    let mut words = first.split_whitespace();
                    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
                    count.fetch_add(1, Ordering::SeqCst);
                    let (status, text) = handler(method, path, &header("host").unwrap_or_default(), &body);
                    let _ = conn.write_all(
                        format!(
                            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                            text.len()
                        )
                        .as_bytes(),
                    );
                });
            }
        });
        ApiServer { addr, requests }
    }
}

/// A feed on HTTP with ETags: the body can be replaced; a request with the current ETag gets 304.
struct FeedServer {
    addr: SocketAddr,
    body: Arc<Mutex<(u32, String)>>,
    requests: Arc<AtomicUsize>,
    not_modified: Arc<AtomicUsize>,
}

impl FeedServer {
    fn start(body: String) -> FeedServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = FeedServer {
            addr,
            body: Arc::new(Mutex::new((1, body))),
            requests: Arc::default(),
            not_modified: Arc::default(),
        };
        let (body, requests, not_modified) =
            (server.body.clone(), server.requests.clone(), server.not_modified.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let Ok(clone) = conn.try_clone() else { continue };
                let Some((_, headers)) = read_head(&mut BufReader::new(clone)) else { continue };
                requests.fetch_add(1, Ordering::SeqCst);
                let (version, text) = body.lock().expect("lock").clone();
                let etag = format!("\"v{version}\"");
                let conditional = headers.iter().any(|(k, v)| k == "if-none-match" && *v == etag);
                let answer = if conditional {
                    not_modified.fetch_add(1, Ordering::SeqCst);
                    format!("HTTP/1.1 304 Not Modified\r\nETag: {etag}\r\nConnection: close\r\n\r\n")
                } else {
                    format!(
                        "HTTP/1.1 200 OK\r\nETag: {etag}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                        text.len()
                    )
                };
                let _ = conn.write_all(answer.as_bytes());
            }
        });
        server
    }

    fn replace(&self, text: String) {
        let mut b = self.body.lock().expect("lock");
        *b = (b.0 + 1, text);
    }
}

#[test]
fn http_collector_fetches_changes_only_and_waits_out_an_outage() {
    let server = FeedServer::start(records(0..10));
    let proxy = TcpProxy::start(server.addr);
    let node = node_with(
        "intelmq.bots.collectors.http.collector_http",
        json!({"http_url": format!("http://{}/feed.json", proxy.addr()), "rate_limit": 0.3, "http_timeout_sec": 5}),
    );
    let daemon = DaemonNode::start(node);
    wait_written(&daemon, 10);
    // Unchanged feed: the next fetches are answered 304 and produce nothing.
    wait_for("two conditional fetches", Duration::from_secs(20), || server.not_modified.load(Ordering::SeqCst) >= 2);
    assert_eq!(written(&daemon.node).len(), 10);

    proxy.cut();
    server.replace(records(10..20));
    assert_waiting(&daemon);
    assert_eq!(written(&daemon.node).len(), 10, "nothing passes while the server is away");
    proxy.restore();
    wait_written(&daemon, 20);
    std::thread::sleep(Duration::from_millis(800));
    assert_exactly_once(&written(&daemon.node), 20);
    assert!(daemon.node.read("var/log/collector.log").contains("The far side is available again."));
}

/// A line stream: each connection gets the lines queued for it; `connections` counts them.
pub(crate) struct StreamServer {
    pub(crate) addr: SocketAddr,
    queue: Arc<Mutex<VecDeque<String>>>,
    pub(crate) connections: Arc<AtomicUsize>,
}

impl StreamServer {
    pub(crate) fn start() -> StreamServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let queue: Arc<Mutex<VecDeque<String>>> = Arc::default();
        let connections: Arc<AtomicUsize> = Arc::default();
        let (q, c) = (queue.clone(), connections.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let Ok(clone) = conn.try_clone() else { continue };
                if read_head(&mut BufReader::new(clone)).is_none() {
                    continue;
                }
                if conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n").is_err() {
                    continue;
                }
                c.fetch_add(1, Ordering::SeqCst);
                let q = q.clone();
                std::thread::spawn(move || loop {
                    let next = q.lock().expect("lock").pop_front();
                    match next {
                        Some(line) => {
                            if conn.write_all(line.as_bytes()).is_err() {
                                q.lock().expect("lock").push_front(line);
                                return;
                            }
                        }
                        None => {
                            // A keep-alive blank line tells us when the client is gone.
                            std::thread::sleep(Duration::from_millis(50));
                            if conn.write_all(b"\n").is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        StreamServer { addr, queue, connections }
    }

    pub(crate) fn push(&self, range: std::ops::Range<usize>) {
        let mut q = self.queue.lock().expect("lock");
        for n in range {
            q.push_back(record(n) + "\n");
        }
    }
}

#[test]
fn http_stream_collector_reconnects_after_the_stream_goes_away() {
    stream_outage("intelmq.bots.collectors.http.collector_http_stream", |addr| {
        json!({"http_url": format!("http://{addr}/stream"), "rate_limit": 0.2, "http_timeout_sec": 5,
               "http_timeout_max_tries": 1})
    });
}

/// A streaming collector (`params` for the stream's address) reads records, the stream goes away,
/// the collector waits and reconnects, and every record arrives once.
pub(crate) fn stream_outage(module: &str, params: impl FnOnce(SocketAddr) -> Value) {
    let server = StreamServer::start();
    let proxy = TcpProxy::start(server.addr);
    let daemon = DaemonNode::start(node_with(module, params(proxy.addr())));
    server.push(0..5);
    wait_written(&daemon, 5);

    proxy.cut();
    assert_waiting(&daemon);
    let before = server.connections.load(Ordering::SeqCst);
    proxy.restore();
    wait_for("the collector to reconnect", Duration::from_secs(30), || {
        server.connections.load(Ordering::SeqCst) > before
    });
    server.push(5..10);
    wait_written(&daemon, 10);
    std::thread::sleep(Duration::from_millis(500));
    assert_exactly_once(&written(&daemon.node), 10);
}

/// A small IMAP4rev1 server: LOGIN, SELECT, UID SEARCH UNSEEN, UID FETCH BODY.PEEK[],
/// UID STORE +FLAGS (\Seen), LOGOUT.
struct ImapServer {
    addr: SocketAddr,
    /// (uid, message, seen)
    mails: Arc<Mutex<Vec<(u32, Vec<u8>, bool)>>>,
}

impl ImapServer {
    fn start() -> ImapServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mails: Arc<Mutex<Vec<(u32, Vec<u8>, bool)>>> = Arc::default();
        let m = mails.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let m = m.clone();
                std::thread::spawn(move || imap_session(conn, m));
            }
        });
        ImapServer { addr, mails }
    }

    fn deliver(&self, mail: Vec<u8>) {
        let mut mails = self.mails.lock().expect("lock");
        let uid = mails.len() as u32 + 1;
        mails.push((uid, mail, false));
    }

    fn seen(&self) -> Vec<u32> {
        self.mails.lock().expect("lock").iter().filter(|m| m.2).map(|m| m.0).collect()
    }
}

fn imap_session(conn: TcpStream, mails: Arc<Mutex<Vec<(u32, Vec<u8>, bool)>>>) {
    let Ok(mut w) = conn.try_clone() else { return };
    let mut r = BufReader::new(conn);
    if w.write_all(b"* OK IMAP4rev1 test server ready\r\n").is_err() {
        return;
    }
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        let (tag, cmd) = line.split_once(' ').unwrap_or((line, ""));
        let upper = cmd.to_ascii_uppercase();
        let words: Vec<&str> = cmd.split_whitespace().collect();
        let mut out = Vec::new();
        if upper.starts_with("LOGIN") || upper.starts_with("NOOP") {
            out.extend(format!("{tag} OK done\r\n").as_bytes());
        } else if upper.starts_with("SELECT") {
            let n = mails.lock().expect("lock").len();
            out.extend(
                format!("* {n} EXISTS\r\n* OK [UIDVALIDITY 42] ok\r\n{tag} OK [READ-WRITE] done\r\n").as_bytes(),
            );
        } else if upper.starts_with("UID SEARCH") {
            let uids: Vec<String> =
                mails.lock().expect("lock").iter().filter(|m| !m.2).map(|m| m.0.to_string()).collect();
            out.extend(format!("* SEARCH {}\r\n{tag} OK done\r\n", uids.join(" ")).as_bytes());
        } else if upper.starts_with("UID FETCH") {
            let uid: u32 = words.get(2).and_then(|u| u.parse().ok()).unwrap_or(0);
            if let Some(m) = mails.lock().expect("lock").iter().find(|m| m.0 == uid) {
                out.extend(format!("* {uid} FETCH (UID {uid} BODY[] {{{}}}\r\n", m.1.len()).as_bytes());
                out.extend(&m.1);
                out.extend(b")\r\n");
            }
            out.extend(format!("{tag} OK done\r\n").as_bytes());
        } else if upper.starts_with("UID STORE") {
            let uid: u32 = words.get(2).and_then(|u| u.parse().ok()).unwrap_or(0);
            if let Some(m) = mails.lock().expect("lock").iter_mut().find(|m| m.0 == uid) {
                m.2 = true;
            }
            out.extend(format!("{tag} OK done\r\n").as_bytes());
        } else if upper.starts_with("LOGOUT") {
            let _ = w.write_all(format!("* BYE\r\n{tag} OK done\r\n").as_bytes());
            return;
        } else {
            out.extend(format!("{tag} BAD unknown\r\n").as_bytes());
        }
        if w.write_all(&out).is_err() {
            return;
        }
    }
}

/// A mail carrying `content` as the attachment `name`.
fn mail_with_attachment(subject: &str, name: &str, content: &str) -> Vec<u8> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(content);
    format!(
        "From: Feeds <feeds@example.com>\r\nTo: cert@example.org\r\nSubject: {subject}\r\nMessage-ID: <{name}@example.com>\r\n\
         Date: Mon, 01 Jan 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n\r\n\
         --B\r\nContent-Type: text/plain\r\n\r\nThe report is attached.\r\n\
         --B\r\nContent-Type: application/json; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--B--\r\n"
    )
    .into_bytes()
}

#[test]
fn mail_attach_collector_marks_mails_after_the_commit_and_waits_out_an_outage() {
    let server = ImapServer::start();
    server.deliver(mail_with_attachment("Daily report 1", "day1.json", &records(0..5)));
    server.deliver(mail_with_attachment("Unrelated", "other.json", &records(100..105)));
    server.deliver(mail_with_attachment("Daily report 2", "day2.json", &records(5..10)));
    let proxy = TcpProxy::start(server.addr);
    let node = node_with(
        "intelmq.bots.collectors.mail.collector_mail_attach",
        json!({"mail_host": "127.0.0.1", "mail_port": proxy.addr().port(), "mail_user": "intelmq", "mail_password": "secret",
               "mail_ssl": false, "subject_regex": "^Daily report", "attach_regex": "\\.json$", "extract_files": false,
               "rate_limit": 0.3}),
    );
    let daemon = DaemonNode::start(node);
    wait_written(&daemon, 10);
    wait_for("both reports marked seen", Duration::from_secs(20), || server.seen() == vec![1, 3]);

    proxy.cut();
    server.deliver(mail_with_attachment("Daily report 3", "day3.json", &records(10..15)));
    assert_waiting(&daemon);
    proxy.restore();
    wait_written(&daemon, 15);
    wait_for("the new mail marked seen", Duration::from_secs(20), || server.seen() == vec![1, 3, 4]);
    std::thread::sleep(Duration::from_millis(800));
    let seen = written(&daemon.node);
    assert_exactly_once(&seen, 15);
    assert!(seen.keys().all(|n| *n < 100), "the unrelated mail is not read");
    assert_eq!(server.seen(), vec![1, 3, 4], "the unrelated mail stays unread");
}

/// A text/plain mail whose body is `body`.
fn text_mail(subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Feeds <feeds@example.com>\r\nTo: cert@example.org\r\nSubject: {subject}\r\nMessage-ID: <{}@example.com>\r\n\
         Date: Mon, 01 Jan 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{}",
        subject.replace(' ', "."),
        body.replace('\n', "\r\n")
    )
    .into_bytes()
}

#[test]
fn mail_body_collector_reads_each_mail_once_across_an_outage() {
    let server = ImapServer::start();
    server.deliver(text_mail("Feed 1", &records(0..5)));
    server.deliver(text_mail("Unrelated", &records(100..103)));
    let proxy = TcpProxy::start(server.addr);
    let node = node_with(
        "intelmq.bots.collectors.mail.collector_mail_body",
        json!({"mail_host": "127.0.0.1", "mail_port": proxy.addr().port(), "mail_user": "intelmq", "mail_password": "secret",
               "mail_ssl": false, "subject_regex": "^Feed", "content_types": "plain", "rate_limit": 0.3}),
    );
    let daemon = DaemonNode::start(node);
    wait_written(&daemon, 5);
    wait_for("the mail marked seen", Duration::from_secs(20), || server.seen() == vec![1]);

    proxy.cut();
    server.deliver(text_mail("Feed 2", &records(5..12)));
    assert_waiting(&daemon);
    proxy.restore();
    wait_written(&daemon, 12);
    wait_for("the new mail marked seen", Duration::from_secs(20), || server.seen() == vec![1, 3]);
    std::thread::sleep(Duration::from_millis(800));
    let seen = written(&daemon.node);
    assert_exactly_once(&seen, 12);
    assert!(seen.keys().all(|n| *n < 100), "the unrelated mail is not read");
    assert_eq!(server.seen(), vec![1, 3], "the unrelated mail stays unread");
}

#[test]
fn mail_url_collector_waits_for_the_mailbox_and_the_download() {
    let files: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
    let f = files.clone();
    let web = ApiServer::start(move |_, path, _, _| match f.lock().expect("lock").get(path) {
        Some(text) => (200, text.clone()),
        None => (404, String::new()),
    });
    let web_proxy = TcpProxy::start(web.addr);
    let mail = |subject: &str, name: &str| {
        text_mail(subject, &format!("Your report is ready: http://{}/{name} (valid for a week)\n", web_proxy.addr()))
    };
    files.lock().expect("lock").insert("/r1.json".into(), records(0..4));
    let server = ImapServer::start();
    server.deliver(mail("Report 1", "r1.json"));
    let imap_proxy = TcpProxy::start(server.addr);
    let node = node_with(
        "intelmq.bots.collectors.mail.collector_mail_url",
        json!({"mail_host": "127.0.0.1", "mail_port": imap_proxy.addr().port(), "mail_user": "intelmq",
               "mail_password": "secret", "mail_ssl": false, "subject_regex": "^Report", "url_regex": "http://\\S+",
               "rate_limit": 0.3, "http_timeout_sec": 3, "http_timeout_max_tries": 1}),
    );
    let daemon = DaemonNode::start(node);
    wait_written(&daemon, 4);
    wait_for("the mail marked seen", Duration::from_secs(20), || server.seen() == vec![1]);

    // The mailbox goes away.
    imap_proxy.cut();
    files.lock().expect("lock").insert("/r2.json".into(), records(4..9));
    server.deliver(mail("Report 2", "r2.json"));
    assert_waiting(&daemon);
    imap_proxy.restore();
    wait_written(&daemon, 9);
    wait_for("the second mail marked seen", Duration::from_secs(20), || server.seen() == vec![1, 2]);

    // The download goes away: the mail stays unread until it can be fetched.
    web_proxy.cut();
    files.lock().expect("lock").insert("/r3.json".into(), records(9..15));
    server.deliver(mail("Report 3", "r3.json"));
    wait_for("the failed download to be logged", Duration::from_secs(20), || {
        daemon.node.read("var/log/collector.log").contains("left unread for the next run")
    });
    assert_eq!(server.seen(), vec![1, 2], "not marked while the download fails");
    web_proxy.restore();
    wait_written(&daemon, 15);
    wait_for("the third mail marked seen", Duration::from_secs(20), || server.seen() == vec![1, 2, 3]);
    std::thread::sleep(Duration::from_millis(800));
    assert_exactly_once(&written(&daemon.node), 15);
    let events = daemon.node.events(OUT);
    assert_eq!(events[0]["feed.url"], format!("http://{}/r1.json", web_proxy.addr()));
}

/// A tiny STOMP broker: CONNECT, SUBSCRIBE, MESSAGE, ACK; unacknowledged messages are delivered
/// again to the next subscriber.
struct StompBroker {
    addr: SocketAddr,
    current: Arc<Mutex<Option<TcpStream>>>,
    /// (message id, body) not yet acknowledged.
    pending: Arc<Mutex<Vec<(String, String)>>>,
    next: AtomicUsize,
}

fn stomp_frame(r: &mut impl BufRead) -> Option<(String, Vec<(String, String)>)> {
    let mut command = String::new();
    loop {
        command.clear();
        if r.read_line(&mut command).ok()? == 0 {
            return None;
        }
        let c = command.trim_matches(|ch: char| ch == '\0' || ch.is_whitespace());
        if !c.is_empty() {
            command = c.to_string();
            break;
        }
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).ok()?;
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.to_string(), v.to_string()));
        }
    }
    let mut body = Vec::new();
    r.read_until(0, &mut body).ok()?;
    Some((command, headers))
}

fn stomp_message(id: &str, body: &str) -> Vec<u8> {
    format!(
        "MESSAGE\nsubscription:1\nmessage-id:{id}\nack:{id}\ndestination:/exchange/feed\ncontent-length:{}\n\n{body}\0",
        body.len()
    )
    .into_bytes()
}

impl StompBroker {
    fn start() -> StompBroker {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let current: Arc<Mutex<Option<TcpStream>>> = Arc::default();
        let pending: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let (c, p) = (current.clone(), pending.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (c, p) = (c.clone(), p.clone());
                std::thread::spawn(move || {
                    let Ok(mut w) = conn.try_clone() else { return };
                    let mut r = BufReader::new(conn);
                    while let Some((command, headers)) = stomp_frame(&mut r) {
                        let header = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                        match command.as_str() {
                            "CONNECT" | "STOMP" => {
                                let _ = w.write_all(b"CONNECTED\nversion:1.2\nheart-beat:0,0\n\n\0");
                            }
                            "SUBSCRIBE" => {
                                // Hold the lock while redelivering so no publish interleaves.
                                let mut cur = c.lock().expect("lock");
                                for (id, body) in p.lock().expect("lock").iter() {
                                    let _ = w.write_all(&stomp_message(id, body));
                                }
                                *cur = w.try_clone().ok();
                            }
                            "ACK" => {
                                let id = header("id").unwrap_or_default();
                                p.lock().expect("lock").retain(|(i, _)| *i != id);
                            }
                            _ => {}
                        }
                    }
                });
            }
        });
        StompBroker { addr, current, pending, next: AtomicUsize::new(0) }
    }

    fn publish(&self, body: &str) {
        let mut cur = self.current.lock().expect("lock");
        let id = format!("m{}", self.next.fetch_add(1, Ordering::SeqCst));
        self.pending.lock().expect("lock").push((id.clone(), body.to_string()));
        if let Some(w) = cur.as_mut() {
            if w.write_all(&stomp_message(&id, body)).is_err() {
                *cur = None;
            }
        }
    }

    fn forget_subscriber(&self) {
        *self.current.lock().expect("lock") = None;
    }
}

#[test]
fn stomp_collector_acks_after_the_commit_and_resubscribes_after_an_outage() {
    if std::net::TcpStream::connect("127.0.0.1:61613").is_ok() {
        eprintln!("note: a STOMP broker listens on 61613; this test uses its own broker anyway");
    }
    let broker = StompBroker::start();
    let proxy = TcpProxy::start(broker.addr);
    let node = node_with(
        "intelmq.bots.collectors.stomp.collector",
        json!({"server": "127.0.0.1", "port": proxy.addr().port(), "exchange": "/exchange/feed", "use_ssl": false,
               "auth_by_ssl_client_certificate": false, "username": "guest", "password": "guest", "heartbeat": 0,
               "rate_limit": 0.2}),
    );
    let daemon = DaemonNode::start(node);
    wait_for("the collector to subscribe", Duration::from_secs(20), || broker.current.lock().expect("lock").is_some());
    for n in 0..5 {
        broker.publish(&record(n));
    }
    wait_written(&daemon, 5);
    wait_for("every message acknowledged", Duration::from_secs(20), || broker.pending.lock().expect("lock").is_empty());

    proxy.cut();
    broker.forget_subscriber();
    for n in 5..10 {
        broker.publish(&record(n));
    }
    assert_waiting(&daemon);
    proxy.restore();
    wait_written(&daemon, 10);
    wait_for("every message acknowledged", Duration::from_secs(20), || broker.pending.lock().expect("lock").is_empty());
    std::thread::sleep(Duration::from_millis(500));
    assert_exactly_once(&written(&daemon.node), 10);
}

#[test]
fn rsync_collector_copies_a_local_file_into_a_report() {
    let present = std::process::Command::new("rsync")
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !present {
        assert!(!services_required(), "rsync is required (INTELMQ_REQUIRE_SERVICES=1) but not installed");
        eprintln!("skipped: the rsync binary is not installed (Debian package rsync)");
        return;
    }
    let source = tempfile::tempdir().expect("tempdir");
    std::fs::write(source.path().join("feed.json"), records(0..7)).expect("write source");
    let node = node_with(
        "intelmq.bots.collectors.rsync.collector_rsync",
        json!({"rsync_path": source.path().display().to_string(), "file": "feed.json", "rate_limit": 3600}),
    );
    let daemon = DaemonNode::start(node);
    wait_written(&daemon, 7);
    assert!(daemon.root().join("var/lib/bots/rsync_collector/feed.json").is_file(), "copied into temp_directory");
    std::thread::sleep(Duration::from_millis(500));
    assert_exactly_once(&written(&daemon.node), 7);
    let events = daemon.node.events(OUT);
    assert_eq!(events[0]["feed.name"], "Net Feed");
}
