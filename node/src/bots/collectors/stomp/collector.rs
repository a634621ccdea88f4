//! `intelmq.bots.collectors.stomp.collector`: subscribes to `exchange` on a STOMP broker (STOMP
//! 1.2 over TCP, our own client: CONNECT, SUBSCRIBE with `ack:client-individual`, ACK); each
//! MESSAGE body, right-stripped, becomes a Report with `feed.url` = `stomp://server:port/exchange`.
//!
//! Differences from IntelMQ: messages are acknowledged in `committed()`, after their reports are
//! safe (IntelMQ subscribes with `ack:auto`), so a crash or a lost connection before the commit
//! makes the broker deliver them again (at-least-once). The connection lives in the bot between
//! runs: a reader thread takes the frames, answers heart-beats and hands the messages over; each
//! run takes what has arrived, so the documented `rate_limit` default is 1 s (IntelMQ's STOMP
//! collector sleeps 1 s between empty runs). IntelMQ always uses TLS; there is no TLS here, so the
//! extra parameter `use_ssl` (default true, as IntelMQ behaves) must be set to false and the
//! broker reached over plain TCP (RabbitMQ's STOMP plugin listens on 61613), with
//! `auth_by_ssl_client_certificate: false` and `username`/`password`.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::bots::collectors::http::mixin::{self, de};
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, CollectorBot, CollectorOutput, Context, Level, ParamError};

/// Parameters of the STOMP collector (IntelMQ's names and defaults, plus `use_ssl`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StompCollectorParams {
    /// `server`: the broker's host; default "n6stream.cert.pl".
    #[serde(deserialize_with = "de::string")]
    pub server: String,
    /// `port`: the broker's STOMP port; default 61614.
    #[serde(deserialize_with = "de::u16")]
    pub port: u16,
    /// `exchange`: the destination to subscribe to; default "".
    #[serde(deserialize_with = "de::string")]
    pub exchange: String,
    /// `heartbeat`: heart-beat interval in milliseconds, both ways (0 = none); default 6000.
    #[serde(deserialize_with = "de::u32")]
    pub heartbeat: u32,
    /// `ssl_ca_certificate`: CA file of the TLS connection (unused: no TLS); default "ca.pem".
    #[serde(deserialize_with = "de::string")]
    pub ssl_ca_certificate: String,
    /// `auth_by_ssl_client_certificate`: log in with a TLS client certificate (needs TLS); default true.
    #[serde(deserialize_with = "de::bool")]
    pub auth_by_ssl_client_certificate: bool,
    /// `ssl_client_certificate`: the client certificate (unused: no TLS); default "client.pem".
    #[serde(deserialize_with = "de::string")]
    pub ssl_client_certificate: String,
    /// `ssl_client_certificate_key`: its key (unused: no TLS); default "client.key".
    #[serde(deserialize_with = "de::string")]
    pub ssl_client_certificate_key: String,
    /// `username`: STOMP login without client certificate; default "guest".
    #[serde(deserialize_with = "de::string")]
    pub username: String,
    /// `password`: STOMP passcode; default "guest".
    #[serde(deserialize_with = "de::string")]
    pub password: String,
    /// `use_ssl`: connect with TLS as IntelMQ does (refused here: no TLS; set false); default true (ours).
    #[serde(deserialize_with = "de::bool")]
    pub use_ssl: bool,
    /// `rate_limit`: seconds between two reads of what arrived, applied by the runtime; default 1 (ours).
    #[serde(deserialize_with = "de::f64")]
    pub rate_limit: f64,
}

impl Default for StompCollectorParams {
    fn default() -> Self {
        StompCollectorParams {
            server: "n6stream.cert.pl".to_string(),
            port: 61614,
            exchange: String::new(),
            heartbeat: 6000,
            ssl_ca_certificate: "ca.pem".to_string(),
            auth_by_ssl_client_certificate: true,
            ssl_client_certificate: "client.pem".to_string(),
            ssl_client_certificate_key: "client.key".to_string(),
            username: "guest".to_string(),
            password: "guest".to_string(),
            use_ssl: true,
            rate_limit: 1.0,
        }
    }
}

/// One STOMP frame.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Frame {
    pub command: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Frame {
    pub fn new(command: &str, headers: &[(&str, &str)]) -> Frame {
        Frame {
            command: command.to_string(),
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            body: Vec::new(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The frame on the wire (STOMP 1.2 header escaping; CONNECT headers are not escaped).
    pub fn encode(&self) -> Vec<u8> {
        let esc = |s: &str| {
            if self.command == "CONNECT" {
                s.to_string()
            } else {
                s.replace('\\', "\\\\").replace('\n', "\\n").replace('\r', "\\r").replace(':', "\\c")
            }
        };
        let mut out = format!("{}\n", self.command);
        for (k, v) in &self.headers {
            out.push_str(&format!("{}:{}\n", esc(k), esc(v)));
        }
        if !self.body.is_empty() {
            out.push_str(&format!("content-length:{}\n", self.body.len()));
        }
        out.push('\n');
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes.push(0);
        bytes
    }
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('c') => out.push(':'),
            Some(o) => out.push(o),
            None => out.push('\\'),
        }
    }
    out
}

/// Reads one frame; `Ok(None)` is a heart-beat (an empty line between frames).
pub fn read_frame(r: &mut impl BufRead) -> std::io::Result<Option<Frame>> {
    let mut line = Vec::new();
    if r.read_until(b'\n', &mut line)? == 0 {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed"));
    }
    // A frame's trailing NUL may be followed by EOLs; a lone EOL is a heart-beat.
    while matches!(line.first(), Some(0)) {
        line.remove(0);
    }
    let command = String::from_utf8_lossy(&line).trim_end_matches(['\n', '\r']).to_string();
    if command.is_empty() {
        return Ok(None);
    }
    let mut frame = Frame { command, ..Frame::default() };
    loop {
        let mut h = Vec::new();
        if r.read_until(b'\n', &mut h)? == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed in a frame"));
        }
        let h = String::from_utf8_lossy(&h).trim_end_matches(['\n', '\r']).to_string();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            frame.headers.push((unescape(k), unescape(v)));
        }
    }
    match frame.header("content-length").and_then(|n| n.trim().parse::<usize>().ok()) {
        Some(n) => {
            let mut body = vec![0u8; n + 1];
            r.read_exact(&mut body)?;
            body.pop();
            frame.body = body;
        }
        None => {
            let mut body = Vec::new();
            r.read_until(0, &mut body)?;
            if body.last() == Some(&0) {
                body.pop();
            }
            frame.body = body;
        }
    }
    Ok(Some(frame))
}

enum StompEvent {
    Message(Frame),
    Failed(String),
}

/// An open subscription: the writer (shared with the reader thread for heart-beats) and the
/// channel of messages.
struct Connection {
    writer: Arc<Mutex<TcpStream>>,
    rx: Receiver<StompEvent>,
    stop: Arc<AtomicBool>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Ok(w) = self.writer.lock() {
            let _ = w.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// Subscribes to a STOMP destination and emits its messages.
pub struct StompCollectorBot {
    params: StompCollectorParams,
    conn: Option<Connection>,
    /// (ack id, message id) of the messages emitted in the last run.
    to_ack: Vec<(String, String)>,
    wait: Duration,
}

impl BuildBot for StompCollectorBot {
    type Params = StompCollectorParams;

    fn build(params: StompCollectorParams) -> Result<Self, ParamError> {
        if params.use_ssl {
            return Err(ParamError::new(
                "use_ssl",
                "TLS for STOMP is not available in intelmq-rs; set use_ssl to false to connect over plain TCP \
                 (e.g. RabbitMQ's STOMP plugin on port 61613)",
            ));
        }
        if params.auth_by_ssl_client_certificate {
            return Err(ParamError::new(
                "auth_by_ssl_client_certificate",
                "client certificate authentication needs TLS; set it to false to log in with username and password",
            ));
        }
        if params.exchange.is_empty() {
            return Err(ParamError::new("exchange", "no destination to subscribe to"));
        }
        Ok(StompCollectorBot { params, conn: None, to_ack: Vec::new(), wait: Duration::from_millis(500) })
    }
}

fn io_unavailable(server: &str, e: impl std::fmt::Display) -> BotError {
    BotError::Unavailable(format!("stomp broker {server}: {e}"))
}

impl StompCollectorBot {
    fn server(&self) -> String {
        format!("{}:{}", self.params.server, self.params.port)
    }

    fn connect(&mut self, ctx: &mut Context<'_>) -> Result<(), BotError> {
        let server = self.server();
        let addr = (self.params.server.as_str(), self.params.port)
            .to_socket_addrs()
            .map_err(|e| io_unavailable(&server, e))?
            .next()
            .ok_or_else(|| io_unavailable(&server, "no address"))?;
        let stream =
            TcpStream::connect_timeout(&addr, Duration::from_secs(30)).map_err(|e| io_unavailable(&server, e))?;
        stream.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| io_unavailable(&server, e))?;
        let mut writer = stream.try_clone().map_err(|e| io_unavailable(&server, e))?;
        let mut reader = BufReader::new(stream);
        let hb = self.params.heartbeat.to_string();
        let heart = format!("{hb},{hb}");
        let connect = Frame::new(
            "CONNECT",
            &[
                ("accept-version", "1.2,1.1"),
                ("host", self.params.server.as_str()),
                ("login", self.params.username.as_str()),
                ("passcode", self.params.password.as_str()),
                ("heart-beat", heart.as_str()),
            ],
        );
        writer.write_all(&connect.encode()).map_err(|e| io_unavailable(&server, e))?;
        let answer = loop {
            match read_frame(&mut reader).map_err(|e| io_unavailable(&server, e))? {
                Some(f) => break f,
                None => continue,
            }
        };
        if answer.command != "CONNECTED" {
            let msg = answer.header("message").unwrap_or("").to_string();
            return Err(BotError::Transient(format!("stomp broker {server} refused the connection: {msg}")));
        }
        // Heart-beats: we send every `cx` ms, the broker every `sy` ms (STOMP 1.2 negotiation).
        let (sx, sy) = answer
            .header("heart-beat")
            .and_then(|h| h.split_once(','))
            .map(|(a, b)| (a.trim().parse::<u64>().unwrap_or(0), b.trim().parse::<u64>().unwrap_or(0)))
            .unwrap_or((0, 0));
        let ours = u64::from(self.params.heartbeat);
        let send_every = if ours == 0 || sy == 0 { 0 } else { ours.max(sy) };
        let expect_every = if ours == 0 || sx == 0 { 0 } else { ours.max(sx) };
        let subscribe = Frame::new(
            "SUBSCRIBE",
            &[("id", "1"), ("destination", self.params.exchange.as_str()), ("ack", "client-individual")],
        );
        writer.write_all(&subscribe.encode()).map_err(|e| io_unavailable(&server, e))?;
        ctx.log.log(Level::Info, "Successfully connected and subscribed.");

        let tick = match (send_every, expect_every) {
            (0, 0) => Duration::from_secs(1),
            (s, e) => Duration::from_millis([s, e].into_iter().filter(|v| *v > 0).min().unwrap_or(1000) / 2)
                .max(Duration::from_millis(50)),
        };
        reader.get_ref().set_read_timeout(Some(tick)).map_err(|e| io_unavailable(&server, e))?;
        let writer = Arc::new(Mutex::new(writer));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = sync_channel(10_000);
        let (w, flag) = (writer.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut last_sent = Instant::now();
            let mut last_seen = Instant::now();
            loop {
                if flag.load(Ordering::Acquire) {
                    return;
                }
                if send_every > 0 && last_sent.elapsed() >= Duration::from_millis(send_every) {
                    if let Ok(mut w) = w.lock() {
                        let _ = w.write_all(b"\n");
                    }
                    last_sent = Instant::now();
                }
                match read_frame(&mut reader) {
                    Ok(None) => last_seen = Instant::now(),
                    Ok(Some(f)) => {
                        last_seen = Instant::now();
                        let event = match f.command.as_str() {
                            "MESSAGE" => StompEvent::Message(f),
                            "ERROR" => StompEvent::Failed(format!(
                                "broker error: {} {}",
                                f.header("message").unwrap_or(""),
                                String::from_utf8_lossy(&f.body).trim()
                            )),
                            _ => continue,
                        };
                        let failed = matches!(event, StompEvent::Failed(_));
                        if tx.send(event).is_err() || failed {
                            return;
                        }
                    }
                    Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                        if expect_every > 0 && last_seen.elapsed() > Duration::from_millis(expect_every * 3) {
                            let _ = tx.send(StompEvent::Failed("no heart-beat from the broker".into()));
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(StompEvent::Failed(e.to_string()));
                        return;
                    }
                }
            }
        });
        self.conn = Some(Connection { writer, rx, stop });
        Ok(())
    }
}

impl CollectorBot for StompCollectorBot {
    fn collect(&mut self, ctx: &mut Context<'_>, out: &mut CollectorOutput) -> Result<(), BotError> {
        self.to_ack.clear();
        if self.conn.is_none() {
            self.connect(ctx)?;
        }
        let feed_url = format!("stomp://{}:{}/{}", self.params.server, self.params.port, self.params.exchange);
        let mut first = true;
        let mut broken = None;
        while let Some(conn) = &self.conn {
            let event = if first {
                first = false;
                match conn.rx.recv_timeout(self.wait) {
                    Ok(e) => e,
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => StompEvent::Failed("reader stopped".into()),
                }
            } else {
                match conn.rx.try_recv() {
                    Ok(e) => e,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => StompEvent::Failed("reader stopped".into()),
                }
            };
            match event {
                StompEvent::Message(f) => {
                    let mut body = f.body.clone();
                    while body.last().is_some_and(u8::is_ascii_whitespace) {
                        body.pop();
                    }
                    let ack = f.header("ack").or(f.header("message-id")).unwrap_or("").to_string();
                    let mid = f.header("message-id").unwrap_or("").to_string();
                    self.to_ack.push((ack, mid));
                    if body.is_empty() {
                        continue;
                    }
                    let mut report = mixin::raw_report(ctx, &body)?;
                    report.add("feed.url", feed_url.as_str())?;
                    out.send(report);
                }
                StompEvent::Failed(why) => {
                    broken = Some(why);
                    break;
                }
            }
        }
        if let Some(why) = broken {
            // Messages taken before the break were not acknowledged: the broker delivers them again.
            ctx.log.log(Level::Info, &format!("Lost the connection to {} ({why}), reconnecting.", self.server()));
            self.conn = None;
            self.to_ack.clear();
            out.reports.clear();
            return Err(BotError::Unavailable(format!("stomp broker {}: {why}", self.server())));
        }
        Ok(())
    }

    fn committed(&mut self, ctx: &mut Context<'_>) -> Result<(), BotError> {
        let acks = std::mem::take(&mut self.to_ack);
        let Some(conn) = &self.conn else { return Ok(()) };
        let mut frames = Vec::new();
        for (ack, mid) in &acks {
            frames.extend(Frame::new("ACK", &[("id", ack), ("message-id", mid), ("subscription", "1")]).encode());
        }
        if frames.is_empty() {
            return Ok(());
        }
        let sent =
            conn.writer.lock().map_err(|_| BotError::Transient("stomp writer poisoned".into())).and_then(|mut w| {
                w.write_all(&frames).map_err(|e| BotError::Unavailable(format!("cannot acknowledge: {e}")))
            });
        if let Err(e) = sent {
            ctx.log.log(
                Level::Warning,
                &format!("Could not acknowledge {} message(s); the broker will deliver them again: {e}.", acks.len()),
            );
            self.conn = None;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::net::TcpListener;

    use serde_json::json;

    use super::*;
    use crate::bots::collectors::http::mixin::test_server::{collect, committed, params, raw};
    use crate::bots::MemoryState;

    /// A tiny STOMP broker: answers CONNECT and SUBSCRIBE, delivers published bodies as MESSAGE
    /// frames, forgets them when ACKed and delivers the unacknowledged ones again to a new
    /// subscriber.
    struct TestBroker {
        port: u16,
        current: Arc<Mutex<Option<TcpStream>>>,
        pending: Arc<Mutex<Vec<(String, String)>>>,
        frames: Arc<Mutex<Vec<Frame>>>,
        next: Mutex<u32>,
    }

    fn message(id: &str, body: &str) -> Vec<u8> {
        let mut m =
            Frame::new("MESSAGE", &[("subscription", "1"), ("message-id", id), ("ack", id), ("destination", "/x")]);
        m.body = body.as_bytes().to_vec();
        m.encode()
    }

    impl TestBroker {
        fn start() -> TestBroker {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            let current: Arc<Mutex<Option<TcpStream>>> = Arc::default();
            let pending: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
            let frames: Arc<Mutex<Vec<Frame>>> = Arc::default();
            let (c, p, f) = (current.clone(), pending.clone(), frames.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    let conn = conn.unwrap();
                    let (c, p, f) = (c.clone(), p.clone(), f.clone());
                    std::thread::spawn(move || {
                        let mut w = conn.try_clone().unwrap();
                        let mut r = BufReader::new(conn);
                        while let Ok(frame) = read_frame(&mut r) {
                            let Some(frame) = frame else { continue };
                            match frame.command.as_str() {
                                "CONNECT" => {
                                    let answer = if frame.header("passcode") == Some("bad") {
                                        Frame::new("ERROR", &[("message", "bad credentials")])
                                    } else {
                                        Frame::new("CONNECTED", &[("version", "1.2"), ("heart-beat", "0,0")])
                                    };
                                    let _ = w.write_all(&answer.encode());
                                }
                                "SUBSCRIBE" => {
                                    for (id, body) in p.lock().unwrap().iter() {
                                        let _ = w.write_all(&message(id, body));
                                    }
                                    *c.lock().unwrap() = Some(w.try_clone().unwrap());
                                }
                                "ACK" => {
                                    let id = frame.header("id").unwrap_or("").to_string();
                                    p.lock().unwrap().retain(|(i, _)| *i != id);
                                }
                                _ => {}
                            }
                            f.lock().unwrap().push(frame);
                        }
                    });
                }
            });
            TestBroker { port, current, pending, frames, next: Mutex::new(0) }
        }

        fn publish(&self, body: &str) {
            let mut n = self.next.lock().unwrap();
            *n += 1;
            let id = format!("m{n}");
            self.pending.lock().unwrap().push((id.clone(), body.to_string()));
            if let Some(w) = self.current.lock().unwrap().as_mut() {
                let _ = w.write_all(&message(&id, body));
            }
        }

        /// Drops the subscriber's connection.
        fn cut(&self) {
            if let Some(w) = self.current.lock().unwrap().take() {
                let _ = w.shutdown(std::net::Shutdown::Both);
            }
        }
    }

    fn bot(port: u16) -> StompCollectorBot {
        StompCollectorBot::build(params(json!({
            "server": "127.0.0.1", "port": port, "use_ssl": false, "auth_by_ssl_client_certificate": "false",
            "exchange": "/exchange/feed", "heartbeat": 0
        })))
        .unwrap()
    }

    /// Runs until `n` reports arrived (bounded), committing after each run.
    fn take(bot: &mut StompCollectorBot, state: &mut MemoryState, n: usize) -> Vec<String> {
        let mut got = Vec::new();
        let start = Instant::now();
        while got.len() < n && start.elapsed() < Duration::from_secs(10) {
            let (r, reports, _) = collect(bot, state);
            if r.is_ok() {
                got.extend(reports.iter().map(raw));
                committed(bot, state).unwrap();
            }
        }
        got
    }

    #[test]
    fn messages_become_reports_and_are_acked_after_the_commit() {
        let broker = TestBroker::start();
        let mut b = bot(broker.port);
        let mut state = MemoryState::default();
        let (r, reports, _) = collect(&mut b, &mut state);
        r.unwrap();
        assert!(reports.is_empty());
        broker.publish("line one  \n");
        let start = Instant::now();
        let reports = loop {
            let (_, reports, _) = collect(&mut b, &mut state);
            if !reports.is_empty() || start.elapsed() > Duration::from_secs(10) {
                break reports;
            }
        };
        assert_eq!(reports.iter().map(raw).collect::<Vec<_>>(), vec!["line one"]);
        assert_eq!(
            reports[0].get_str("feed.url"),
            Some(format!("stomp://127.0.0.1:{}//exchange/feed", broker.port).as_str())
        );
        assert_eq!(broker.pending.lock().unwrap().len(), 1, "nothing acked before the commit");
        committed(&mut b, &mut state).unwrap();
        let start = Instant::now();
        while !broker.pending.lock().unwrap().is_empty() && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(broker.pending.lock().unwrap().is_empty());
        broker.publish("line two");
        assert_eq!(take(&mut b, &mut state, 1), vec!["line two"]);
        let frames = broker.frames.lock().unwrap().clone();
        let sub = frames.iter().find(|f| f.command == "SUBSCRIBE").unwrap();
        assert_eq!(sub.header("ack"), Some("client-individual"));
        assert_eq!(sub.header("destination"), Some("/exchange/feed"));
        let connect = frames.iter().find(|f| f.command == "CONNECT").unwrap();
        assert_eq!(connect.header("login"), Some("guest"));
    }

    #[test]
    fn a_lost_connection_is_reported_and_unacked_messages_come_again() {
        let broker = TestBroker::start();
        let mut b = bot(broker.port);
        let mut state = MemoryState::default();
        collect(&mut b, &mut state).0.unwrap();
        broker.publish("first");
        assert_eq!(take(&mut b, &mut state, 1), vec!["first"]);
        let start = Instant::now();
        while !broker.pending.lock().unwrap().is_empty() && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
        }
        broker.cut();
        broker.publish("second");
        let start = Instant::now();
        loop {
            let (r, _, _) = collect(&mut b, &mut state);
            if matches!(r, Err(BotError::Unavailable(_))) || start.elapsed() > Duration::from_secs(5) {
                break;
            }
        }
        assert_eq!(take(&mut b, &mut state, 1), vec!["second"]);
    }

    #[test]
    fn frames_round_trip_with_escaping_and_content_length() {
        let mut f = Frame::new("MESSAGE", &[("a:b", "line\nnext")]);
        f.body = b"body\0with nul".to_vec();
        let bytes = f.encode();
        let mut r = BufReader::new(&bytes[..]);
        let back = read_frame(&mut r).unwrap().unwrap();
        assert_eq!(back.header("a:b"), Some("line\nnext"));
        assert_eq!(back.body, b"body\0with nul");
        let mut hb = BufReader::new(&b"\nCONNECTED\nversion:1.2\n\n\0"[..]);
        assert_eq!(read_frame(&mut hb).unwrap(), None);
        assert_eq!(read_frame(&mut hb).unwrap().unwrap().command, "CONNECTED");
    }

    #[test]
    fn tls_and_certificate_auth_are_refused_with_clear_messages() {
        assert_eq!(StompCollectorBot::build(StompCollectorParams::default()).err().unwrap().key, "use_ssl");
        let err = StompCollectorBot::build(params(json!({"use_ssl": false, "exchange": "/x"}))).err().unwrap();
        assert_eq!(err.key, "auth_by_ssl_client_certificate");
    }

    #[test]
    fn unreachable_broker_is_unavailable() {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut bot = StompCollectorBot::build(params(json!({
            "server": "127.0.0.1", "port": port, "use_ssl": false, "auth_by_ssl_client_certificate": false,
            "exchange": "/exchange/x"
        })))
        .unwrap();
        assert!(matches!(collect(&mut bot, &mut MemoryState::default()).0, Err(BotError::Unavailable(_))));
    }
}
