//! `intelmq.bots.collectors.tcp.collector`: a TCP server on `ip:port` that takes messages framed as
//! IntelMQ's TCP output sends them (a 4-byte big-endian length, then the payload) and emits each
//! payload as a report (`raw`). Every message is answered with `Ok`, in order, as IntelMQ's
//! collector does; a connection that ends in the middle of a message gets `Incomplete message`.
//!
//! The `Ok` is sent only once the report is committed: a server thread reads the frames of every
//! connection into a queue, `collect` takes what is queued (waiting up to half a second for the
//! first one) and turns it into reports, and `committed` — called after the reports are safely in
//! the store — answers `Ok` for each. A crash before the commit leaves the sender without an `Ok`,
//! so it sends again (at-least-once; IntelMQ answers before the report is sent on). Messages on one
//! connection may be sent without waiting for each `Ok` (the answers come in order).
//!
//! The server starts on the first `collect` and stops when the bot is dropped (connections are
//! closed, the port is released). Collectors run every `rate_limit` seconds: give this one a short
//! `rate_limit` (IntelMQ calls such collectors continuously).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bots::outputs::tcp::support::de;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, CollectorBot, CollectorOutput, Context, Level, ParamError};
use crate::message::{AddOptions, Message};

/// How long `collect` waits for a first message.
const WAIT: Duration = Duration::from_millis(500);
/// At most this many messages become reports in one run.
const MAX_PER_RUN: usize = 10_000;
/// The largest message accepted (bytes).
const MAX_MESSAGE: u64 = 512 * 1024 * 1024;

/// Parameters of the TCP collector (IntelMQ's names; IntelMQ's defaults are the placeholders
/// "<ip>" and "<port>", so both must be set).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TcpCollectorParams {
    /// The address to listen on; default null (required; IntelMQ "<ip>").
    #[serde(deserialize_with = "de::opt_string")]
    pub ip: Option<String>,
    /// The port to listen on; default null (required; IntelMQ "<port>").
    #[serde(deserialize_with = "de::opt_port")]
    pub port: Option<u16>,
}

/// One received message and the connection to answer on.
struct Frame {
    payload: Vec<u8>,
    reply: TcpStream,
}

/// The listening side, running in its own threads.
struct Server {
    frames: Receiver<Frame>,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<HashMap<u64, TcpStream>>>,
    acceptor: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(listener: TcpListener) -> std::io::Result<Server> {
        listener.set_nonblocking(true)?;
        let (tx, frames) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<HashMap<u64, TcpStream>>> = Arc::default();
        let (s, c) = (stop.clone(), conns.clone());
        let acceptor =
            std::thread::Builder::new().name("tcp-collector".into()).spawn(move || accept_loop(listener, tx, s, c))?;
        Ok(Server { frames, stop, conns, acceptor: Some(acceptor) })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Ok(mut conns) = self.conns.lock() {
            for (_, c) in conns.drain() {
                let _ = c.shutdown(Shutdown::Both);
            }
        }
        // The listener closes when the accept loop ends (within its 20 ms poll).
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn accept_loop(
    listener: TcpListener,
    tx: Sender<Frame>,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<HashMap<u64, TcpStream>>>,
) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    while !stop.load(Ordering::Acquire) {
        match listener.accept() {
            Ok((stream, _)) => {
                let id = NEXT.fetch_add(1, Ordering::Relaxed);
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_nodelay(true);
                if let Ok(clone) = stream.try_clone() {
                    if let Ok(mut c) = conns.lock() {
                        c.insert(id, clone);
                    }
                }
                // A collector that stops after this check still closes the connection below.
                if stop.load(Ordering::Acquire) {
                    let _ = stream.shutdown(Shutdown::Both);
                    break;
                }
                let (tx, conns) = (tx.clone(), conns.clone());
                let _ = std::thread::Builder::new().name("tcp-collector-conn".into()).spawn(move || {
                    read_frames(stream, &tx);
                    if let Ok(mut c) = conns.lock() {
                        c.remove(&id);
                    }
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Reads length-prefixed frames until the connection ends.
fn read_frames(mut stream: TcpStream, tx: &Sender<Frame>) {
    loop {
        let mut len = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            match stream.read(&mut len[got..]) {
                Ok(0) | Err(_) => {
                    if got > 0 {
                        let _ = stream.write_all(b"Incomplete message");
                    }
                    return;
                }
                Ok(n) => got += n,
            }
        }
        let len = u64::from(u32::from_be_bytes(len));
        if len > MAX_MESSAGE {
            let _ = stream.write_all(b"Incomplete message");
            return;
        }
        let mut payload = Vec::new();
        match (&mut stream).take(len).read_to_end(&mut payload) {
            Ok(n) if n as u64 == len => {}
            _ => {
                let _ = stream.write_all(b"Incomplete message");
                return;
            }
        }
        let Ok(reply) = stream.try_clone() else {
            return;
        };
        if tx.send(Frame { payload, reply }).is_err() {
            return;
        }
    }
}

/// Receives length-framed messages over TCP into reports.
pub struct TcpCollectorBot {
    ip: String,
    port: u16,
    server: Option<Server>,
    /// Connections to answer `Ok` once the last run's reports are committed.
    pending: Vec<TcpStream>,
}

impl BuildBot for TcpCollectorBot {
    type Params = TcpCollectorParams;

    fn build(params: TcpCollectorParams) -> Result<Self, ParamError> {
        let ip = params
            .ip
            .filter(|s| !s.is_empty() && s != "<ip>")
            .ok_or_else(|| ParamError::new("ip", "no address given"))?;
        let port = params.port.ok_or_else(|| ParamError::new("port", "no port given"))?;
        Ok(TcpCollectorBot { ip, port, server: None, pending: Vec::new() })
    }
}

impl TcpCollectorBot {
    fn server(&mut self, ctx: &mut Context<'_>) -> Result<&Server, BotError> {
        if self.server.is_none() {
            let name = format!("{}:{}", self.ip, self.port);
            let addrs: Vec<SocketAddr> = (self.ip.as_str(), self.port)
                .to_socket_addrs()
                .map_err(|e| BotError::Fatal(format!("cannot listen on {name}: {e}")))?
                .collect();
            let listener = TcpListener::bind(&addrs[..]).map_err(|e| {
                if e.kind() == std::io::ErrorKind::AddrInUse {
                    BotError::Unavailable(format!("cannot listen on {name}: {e}"))
                } else {
                    BotError::Fatal(format!("cannot listen on {name}: {e}"))
                }
            })?;
            let server =
                Server::start(listener).map_err(|e| BotError::Fatal(format!("cannot listen on {name}: {e}")))?;
            ctx.log.log(Level::Info, &format!("Listening on {name}."));
            self.server = Some(server);
        }
        self.server.as_ref().ok_or_else(|| BotError::Fatal("no server".to_string()))
    }
}

impl CollectorBot for TcpCollectorBot {
    fn collect(&mut self, ctx: &mut Context<'_>, out: &mut CollectorOutput) -> Result<(), BotError> {
        // Answers a crash of the runtime between collect and committed never gave are dropped:
        // those senders get no `Ok` and send again.
        self.pending.clear();
        let mut frames = Vec::new();
        {
            let server = self.server(ctx)?;
            match server.frames.recv_timeout(WAIT) {
                Ok(f) => frames.push(f),
                Err(RecvTimeoutError::Timeout) => return Ok(()),
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(BotError::Fatal("the TCP collector's server thread ended".to_string()))
                }
            }
            while frames.len() < MAX_PER_RUN {
                match server.frames.try_recv() {
                    Ok(f) => frames.push(f),
                    Err(_) => break,
                }
            }
        }
        for frame in frames {
            let mut report = Message::new_report(ctx.harmonization.clone());
            if !frame.payload.is_empty() {
                let raw = base64::engine::general_purpose::STANDARD.encode(&frame.payload);
                report.add_with(
                    "raw",
                    Value::String(raw),
                    AddOptions { sanitize: false, overwrite: Some(true), raise_failure: true },
                )?;
            }
            out.send(report);
            self.pending.push(frame.reply);
        }
        Ok(())
    }

    fn committed(&mut self, _ctx: &mut Context<'_>) -> Result<(), BotError> {
        for mut reply in self.pending.drain(..) {
            let _ = reply.set_write_timeout(Some(Duration::from_secs(5)));
            // A sender that is gone sends again: nothing to do here.
            let _ = reply.write_all(b"Ok");
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc as StdArc;

    use super::*;
    use crate::bots::collectors::test_support::harmonization;
    use crate::bots::{MemoryLog, MemoryState};
    use crate::message::Harmonization;

    fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }

    fn run(bot: &mut TcpCollectorBot, h: &StdArc<Harmonization>, commit: bool) -> Vec<Message> {
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let mut ctx = Context::new("tcp", h, std::path::Path::new("/"), &mut state, &mut log);
        let mut out = CollectorOutput::default();
        bot.collect(&mut ctx, &mut out).unwrap();
        if commit {
            bot.committed(&mut ctx).unwrap();
        }
        out.reports
    }

    fn frame(data: &[u8]) -> Vec<u8> {
        [(data.len() as u32).to_be_bytes().as_slice(), data].concat()
    }

    #[test]
    fn answers_ok_only_after_the_commit() {
        let port = free_port();
        let h = harmonization();
        let mut bot = TcpCollectorBot::build(
            serde_json::from_value(serde_json::json!({"ip": "127.0.0.1", "port": port.to_string()})).unwrap(),
        )
        .unwrap();
        assert!(run(&mut bot, &h, true).is_empty(), "starts the server, nothing yet");
        let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        client.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        client.write_all(&[frame(b"{\"a\": 1}"), frame(b"second")].concat()).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let reports = run(&mut bot, &h, false);
        assert_eq!(reports.len(), 2);
        assert_eq!(reports[0].raw_bytes().unwrap(), b"{\"a\": 1}");
        let mut buf = [0u8; 4];
        assert!(client.read(&mut buf).is_err(), "no Ok before the commit");
        bot.committed(&mut Context::new(
            "tcp",
            &h,
            std::path::Path::new("/"),
            &mut MemoryState::default(),
            &mut MemoryLog::default(),
        ))
        .unwrap();
        client.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"OkOk");
    }

    #[test]
    fn an_uncommitted_run_gets_no_ok_and_the_port_is_released_on_drop() {
        let port = free_port();
        let h = harmonization();
        let params = TcpCollectorParams { ip: Some("127.0.0.1".into()), port: Some(port) };
        let mut bot = TcpCollectorBot::build(params.clone()).unwrap();
        run(&mut bot, &h, true);
        let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        client.write_all(&frame(b"x")).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(run(&mut bot, &h, false).len(), 1);
        drop(bot); // a crash before the commit
        client.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut rest = Vec::new();
        let _ = client.read_to_end(&mut rest);
        assert!(rest.is_empty(), "closed without Ok: {rest:?}");
        let mut again = TcpCollectorBot::build(params).unwrap();
        run(&mut again, &h, true);
        TcpStream::connect(("127.0.0.1", port)).unwrap();
    }

    #[test]
    fn incomplete_message_is_answered_so() {
        let port = free_port();
        let h = harmonization();
        let mut bot =
            TcpCollectorBot::build(TcpCollectorParams { ip: Some("127.0.0.1".into()), port: Some(port) }).unwrap();
        run(&mut bot, &h, true);
        let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        client.write_all(&[0, 0, 0, 10, b'a']).unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let mut answer = String::new();
        client.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        client.read_to_string(&mut answer).unwrap();
        assert_eq!(answer, "Incomplete message");
    }

    #[test]
    fn address_is_required() {
        assert_eq!(TcpCollectorBot::build(TcpCollectorParams::default()).err().unwrap().key, "ip");
    }
}
