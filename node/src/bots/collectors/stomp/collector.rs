//! `intelmq.bots.collectors.stomp.collector`: subscribes to `exchange` on a STOMP broker (STOMP
//! 1.2, our own client in [`super::client`]: CONNECT, SUBSCRIBE with `ack:client-individual`,
//! ACK); each MESSAGE body, right-stripped, becomes a Report with `feed.url` =
//! `stomp://server:port/exchange`.
//!
//! TLS as IntelMQ: the broker's certificate is verified against `ssl_ca_certificate`, and with
//! `auth_by_ssl_client_certificate` the bot logs in with `ssl_client_certificate` and its key
//! instead of `username`/`password`. The extra parameter `use_ssl` (default true, as IntelMQ
//! always uses TLS) set to false connects over plain TCP (e.g. RabbitMQ's STOMP plugin on 61613).
//!
//! Differences from IntelMQ: messages are acknowledged in `committed()`, after their reports are
//! safe (IntelMQ subscribes with `ack:auto`), so a crash or a lost connection before the commit
//! makes the broker deliver them again. An acknowledgement lost after the commit makes the broker
//! deliver a message that was already collected: the bot remembers what it collected (a hash of
//! each body, in its state, committed with the reports, for an hour) and drops a message the
//! broker marks `redelivered:true` when its body was collected. The connection lives in the bot between
//! runs: a thread owns it, takes the frames, sends heart-beats and acknowledgements and hands the
//! messages over; each run takes what has arrived, so the documented `rate_limit` default is 1 s
//! (IntelMQ's STOMP collector sleeps 1 s between empty runs).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, sync_channel, Receiver, RecvTimeoutError, Sender, SyncSender, TryRecvError};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::client::{stomp_settings, Frame, StompConn, StompError, StompSettings};
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
    /// `ssl_ca_certificate`: CA file (PEM) the broker's certificate is verified against ("": the
    /// system's CAs); default "ca.pem".
    #[serde(deserialize_with = "de::string")]
    pub ssl_ca_certificate: String,
    /// `auth_by_ssl_client_certificate`: log in with a TLS client certificate (needs TLS); default true.
    #[serde(deserialize_with = "de::bool")]
    pub auth_by_ssl_client_certificate: bool,
    /// `ssl_client_certificate`: the client certificate (PEM); default "client.pem".
    #[serde(deserialize_with = "de::string")]
    pub ssl_client_certificate: String,
    /// `ssl_client_certificate_key`: its key (PEM); default "client.key".
    #[serde(deserialize_with = "de::string")]
    pub ssl_client_certificate_key: String,
    /// `username`: STOMP login without client certificate; default "guest".
    #[serde(deserialize_with = "de::string")]
    pub username: String,
    /// `password`: STOMP passcode; default "guest".
    #[serde(deserialize_with = "de::string")]
    pub password: String,
    /// `use_ssl`: connect with TLS as IntelMQ always does (false: plain TCP); default true (ours).
    #[serde(deserialize_with = "de::bool")]
    pub use_ssl: bool,
    /// `vhost`: the `host` header of CONNECT, RabbitMQ's virtual host (ours); default "/".
    #[serde(deserialize_with = "de::string")]
    pub vhost: String,
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
            vhost: "/".to_string(),
            rate_limit: 1.0,
        }
    }
}

enum StompEvent {
    Message(Frame),
    Failed(String),
}

/// An open subscription, owned by a thread: frames to send (acknowledgements) go in, messages
/// come out.
struct Connection {
    out: Sender<Vec<Frame>>,
    rx: Receiver<StompEvent>,
    stop: Arc<AtomicBool>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// Subscribes to a STOMP destination and emits its messages.
pub struct StompCollectorBot {
    params: StompCollectorParams,
    settings: StompSettings,
    conn: Option<Connection>,
    /// (ack id, message id) of the messages emitted in the last run.
    to_ack: Vec<(String, String)>,
    wait: Duration,
}

impl BuildBot for StompCollectorBot {
    type Params = StompCollectorParams;

    fn build(params: StompCollectorParams) -> Result<Self, ParamError> {
        if params.exchange.is_empty() {
            return Err(ParamError::new("exchange", "no destination to subscribe to"));
        }
        let settings = stomp_settings!(params, params.heartbeat)?;
        Ok(StompCollectorBot { params, settings, conn: None, to_ack: Vec::new(), wait: Duration::from_millis(500) })
    }
}

/// What a failed connection means for the bot.
pub fn stomp_error(e: StompError) -> BotError {
    match e {
        StompError::Io(why) => BotError::Unavailable(why),
        StompError::Refused(why) => BotError::Transient(why),
        StompError::Setup(why) => BotError::Fatal(why),
    }
}

/// The connection's thread: sends what comes on `out`, hands messages to `tx`, stops on `stop`
/// or when the connection fails (after telling why).
fn pump(mut conn: StompConn, out: Receiver<Vec<Frame>>, tx: SyncSender<StompEvent>, stop: Arc<AtomicBool>) {
    loop {
        if stop.load(Ordering::Acquire) {
            conn.close();
            return;
        }
        while let Ok(frames) = out.try_recv() {
            if let Err(e) = conn.send_all(&frames) {
                let _ = tx.send(StompEvent::Failed(e.to_string()));
                return;
            }
        }
        // Short reads, so that acknowledgements go out soon after the commit.
        match conn.next(Duration::from_millis(25)) {
            Ok(None) => {}
            Ok(Some(f)) if f.command == "MESSAGE" => {
                if tx.send(StompEvent::Message(f)).is_err() {
                    return;
                }
            }
            Ok(Some(f)) if f.command == "ERROR" => {
                let _ = tx.send(StompEvent::Failed(format!("broker error: {}", f.error_text())));
                return;
            }
            Ok(Some(_)) => {}
            Err(e) => {
                let _ = tx.send(StompEvent::Failed(e.to_string()));
                return;
            }
        }
    }
}

impl StompCollectorBot {
    fn connect(&mut self, ctx: &mut Context<'_>) -> Result<(), BotError> {
        let mut conn = StompConn::open(&self.settings).map_err(stomp_error)?;
        let subscribe = Frame::new(
            "SUBSCRIBE",
            &[("id", "1"), ("destination", self.params.exchange.as_str()), ("ack", "client-individual")],
        );
        conn.send(&subscribe).map_err(stomp_error)?;
        ctx.log.log(Level::Info, "Successfully connected and subscribed.");
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = sync_channel(10_000);
        let (out, out_rx) = channel();
        let flag = stop.clone();
        std::thread::Builder::new()
            .name(format!("stomp-{}", ctx.bot_id))
            .spawn(move || pump(conn, out_rx, tx, flag))
            .map_err(|e| BotError::Fatal(format!("cannot start the STOMP thread: {e}")))?;
        self.conn = Some(Connection { out, rx, stop });
        Ok(())
    }
}

/// How long the collector remembers a collected message, to recognise its redelivery after an
/// acknowledgement lost with the connection.
const REDELIVERY_MEMORY: Duration = Duration::from_secs(3600);

/// The state key of a collected message body: `delivered:` and its SHA-256 (state keys are bytes).
fn delivered_key(body: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    [b"delivered:".as_slice(), Sha256::digest(body).as_slice()].concat()
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
                    // A redelivery of a message whose reports were committed (its ACK was lost with
                    // the connection) is acknowledged again, not collected again. Brokers give a
                    // redelivered message a new message-id, so the body identifies it.
                    let key = delivered_key(&body);
                    if f.header("redelivered") == Some("true") && ctx.state.get(&key).is_some() {
                        ctx.log.log(Level::Debug, "Skipping a redelivered message that was already collected.");
                        continue;
                    }
                    ctx.state.put(&key, b"", Some(REDELIVERY_MEMORY));
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
            let server = self.settings.display();
            ctx.log.log(Level::Info, &format!("Lost the connection to {server} ({why}), reconnecting."));
            self.conn = None;
            self.to_ack.clear();
            out.reports.clear();
            return Err(BotError::Unavailable(format!("stomp broker {server}: {why}")));
        }
        Ok(())
    }

    fn committed(&mut self, ctx: &mut Context<'_>) -> Result<(), BotError> {
        let acks = std::mem::take(&mut self.to_ack);
        let Some(conn) = &self.conn else { return Ok(()) };
        let frames: Vec<Frame> = acks
            .iter()
            .map(|(ack, mid)| Frame::new("ACK", &[("id", ack), ("message-id", mid), ("subscription", "1")]))
            .collect();
        if frames.is_empty() {
            return Ok(());
        }
        if conn.out.send(frames).is_err() {
            ctx.log.log(
                Level::Warning,
                &format!(
                    "Could not acknowledge {} message(s), the connection is gone; the broker will deliver them again.",
                    acks.len()
                ),
            );
            self.conn = None;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::{BufReader, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::Mutex;
    use std::time::Instant;

    use serde_json::json;

    use super::super::client::read_frame;
    use super::*;
    use crate::bots::collectors::http::mixin::test_server::{collect, committed, params, raw};
    use crate::bots::MemoryState;

    /// A tiny STOMP broker: answers CONNECT and SUBSCRIBE, delivers published bodies as MESSAGE
    /// frames, forgets them when ACKed and delivers the unacknowledged ones again to a new
    /// subscriber.
    struct TestBroker {
        port: u16,
        current: Arc<Mutex<Option<TcpStream>>>,
        /// (id, body, delivered once already)
        pending: Arc<Mutex<Vec<(String, String, bool)>>>,
        frames: Arc<Mutex<Vec<Frame>>>,
        next: Mutex<u32>,
    }

    fn message(id: &str, body: &str, redelivered: bool) -> Vec<u8> {
        let flag = if redelivered { "true" } else { "false" };
        let headers =
            [("subscription", "1"), ("message-id", id), ("redelivered", flag), ("ack", id), ("destination", "/x")];
        let mut m = Frame::new("MESSAGE", &headers);
        m.body = body.as_bytes().to_vec();
        m.encode()
    }

    impl TestBroker {
        fn start() -> TestBroker {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            let current: Arc<Mutex<Option<TcpStream>>> = Arc::default();
            let pending: Arc<Mutex<Vec<(String, String, bool)>>> = Arc::default();
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
                                    // What was delivered before and not acknowledged comes
                                    // again, marked as RabbitMQ marks it.
                                    for (id, body, delivered) in p.lock().unwrap().iter_mut() {
                                        let _ = w.write_all(&message(id, body, *delivered));
                                        *delivered = true;
                                    }
                                    *c.lock().unwrap() = Some(w.try_clone().unwrap());
                                }
                                "ACK" => {
                                    let id = frame.header("id").unwrap_or("").to_string();
                                    p.lock().unwrap().retain(|(i, _, _)| *i != id);
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
            let mut current = self.current.lock().unwrap();
            self.pending.lock().unwrap().push((id.clone(), body.to_string(), current.is_some()));
            if let Some(w) = current.as_mut() {
                let _ = w.write_all(&message(&id, body, false));
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
        let reports = collect_until_reports(&mut b, &mut state);
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

    /// Collects until a report comes (at most 10 s) and returns the reports of that run.
    fn collect_until_reports(b: &mut StompCollectorBot, state: &mut MemoryState) -> Vec<crate::message::Message> {
        let start = Instant::now();
        loop {
            let (_, reports, _) = collect(b, state);
            if !reports.is_empty() || start.elapsed() > Duration::from_secs(10) {
                return reports;
            }
        }
    }

    #[test]
    fn a_redelivery_of_a_collected_message_whose_ack_was_lost_is_acked_not_collected_again() {
        let broker = TestBroker::start();
        let mut b = bot(broker.port);
        let mut state = MemoryState::default();
        collect(&mut b, &mut state).0.unwrap();
        broker.publish("same body");
        let reports = collect_until_reports(&mut b, &mut state);
        assert_eq!(reports.iter().map(raw).collect::<Vec<_>>(), vec!["same body"]);
        // The reports are committed, but the connection goes before the ACK reaches the broker.
        broker.cut();
        committed(&mut b, &mut state).unwrap();
        assert_eq!(broker.pending.lock().unwrap().len(), 1, "the broker has no ACK");
        broker.publish("another body");
        // Run as the node does (collect, and after each successful run `committed`) until the
        // broker holds nothing unacknowledged: the redelivered message is acked, not collected.
        let mut got = Vec::new();
        let start = Instant::now();
        while (got.is_empty() || !broker.pending.lock().unwrap().is_empty())
            && start.elapsed() < Duration::from_secs(10)
        {
            let (r, reports, _) = collect(&mut b, &mut state);
            if r.is_ok() {
                got.extend(reports.iter().map(raw));
                committed(&mut b, &mut state).unwrap();
            }
        }
        assert_eq!(got, vec!["another body"]);
        assert!(broker.pending.lock().unwrap().is_empty(), "both acknowledged");
        let frames = broker.frames.lock().unwrap().clone();
        let redelivered_acks = frames.iter().filter(|f| f.command == "ACK" && f.header("id") == Some("m1")).count();
        assert_eq!(redelivered_acks, 1, "the redelivered message was acknowledged");
    }

    #[test]
    fn certificate_files_are_checked_when_built() {
        let err = StompCollectorBot::build(params(json!({"exchange": "/x"}))).err().unwrap();
        assert_eq!(err.key, "ssl_ca_certificate", "the default ca.pem does not exist here: {err}");
        let err = StompCollectorBot::build(params(json!({"use_ssl": false, "exchange": "/x"}))).err().unwrap();
        assert_eq!(err.key, "auth_by_ssl_client_certificate");
        let p = json!({"exchange": "/x", "auth_by_ssl_client_certificate": false, "ssl_ca_certificate": "/nonexistent/ca.pem"});
        let err = StompCollectorBot::build(params(p)).err().unwrap();
        assert_eq!(err.key, "ssl_ca_certificate");
        assert!(err.reason.contains("/nonexistent/ca.pem"), "{err}");
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
