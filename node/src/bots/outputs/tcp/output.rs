//! `intelmq.bots.outputs.tcp.output`: sends each event as JSON (`to_json(hierarchical)`, `raw`
//! included) over one TCP connection to `ip:port`. Framing as IntelMQ: with `separator` the payload
//! is followed by the separator, otherwise it is preceded by its length as a 4-byte big-endian
//! integer. With `counterpart_is_intelmq` (the default) the far side (IntelMQ's or our TCP
//! collector) answers `Ok` for every message once it has it.
//!
//! A batch is sent in one go and then its `Ok`s are read, in order (the collectors answer in
//! order). `write` returns only when every message of the batch is acknowledged; a connection that
//! cannot be opened, breaks, times out (15 s, as IntelMQ) or answers something other than `Ok` is
//! dropped and `Unavailable` is returned: the runtime keeps the messages and retries, and the bot
//! reconnects on the next `write`. Messages acknowledged before the failure are remembered and not
//! sent again on the retry. Without `counterpart_is_intelmq` there is no acknowledgement: a message
//! counts as delivered once the kernel took it (`sendall`), as in IntelMQ. Deliberate difference:
//! IntelMQ re-sends a message every second while the answer is not `Ok`; here the batch is retried
//! with the runtime's growing delay.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::support::de;
use crate::bots::outputs::delivered::Delivered;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, Level, OutputBot, ParamError};
use crate::message::{ExportOptions, Message};

/// IntelMQ's socket timeout for the TCP output.
const TIMEOUT: Duration = Duration::from_secs(15);

/// Parameters of the TCP output (IntelMQ's names and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TcpOutputParams {
    /// The address to connect to; default null (required).
    #[serde(deserialize_with = "de::opt_string")]
    pub ip: Option<String>,
    /// The port to connect to; default null (required).
    #[serde(deserialize_with = "de::opt_port")]
    pub port: Option<u16>,
    /// Written after each message instead of the length prefix; default null (length prefix).
    #[serde(deserialize_with = "de::opt_string")]
    pub separator: Option<String>,
    /// Nest the dotted keys into objects; default false.
    #[serde(deserialize_with = "de::bool")]
    pub hierarchical_output: bool,
    /// Wait for the far side's `Ok` after each message; default true.
    #[serde(deserialize_with = "de::bool")]
    pub counterpart_is_intelmq: bool,
}

impl Default for TcpOutputParams {
    fn default() -> Self {
        TcpOutputParams {
            ip: None,
            port: None,
            separator: None,
            hierarchical_output: false,
            counterpart_is_intelmq: true,
        }
    }
}

/// Sends events over TCP to an IntelMQ TCP collector or any line/length-framed listener.
pub struct TcpOutputBot {
    params: TcpOutputParams,
    ip: String,
    port: u16,
    con: Option<TcpStream>,
    delivered: Delivered,
}

impl BuildBot for TcpOutputBot {
    type Params = TcpOutputParams;

    fn build(params: TcpOutputParams) -> Result<Self, ParamError> {
        let ip =
            params.ip.clone().filter(|s| !s.is_empty()).ok_or_else(|| ParamError::new("ip", "no address given"))?;
        let port = params.port.ok_or_else(|| ParamError::new("port", "no port given"))?;
        if params.separator.as_deref() == Some("") {
            return Err(ParamError::new("separator", "an empty separator cannot frame messages"));
        }
        Ok(TcpOutputBot { params, ip, port, con: None, delivered: Delivered::default() })
    }
}

impl TcpOutputBot {
    fn addr(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    fn connect(&mut self, ctx: &mut Context<'_>) -> Result<(), BotError> {
        if self.con.is_some() {
            return Ok(());
        }
        let unavailable = |e: std::io::Error| BotError::Unavailable(format!("cannot connect to {}: {e}", self.addr()));
        let addrs: Vec<SocketAddr> = (self.ip.as_str(), self.port).to_socket_addrs().map_err(unavailable)?.collect();
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, TIMEOUT) {
                Ok(con) => {
                    con.set_read_timeout(Some(TIMEOUT)).map_err(unavailable)?;
                    con.set_write_timeout(Some(TIMEOUT)).map_err(unavailable)?;
                    let _ = con.set_nodelay(true);
                    ctx.log.log(Level::Info, &format!("Connected successfully to {}:{}.", self.ip, self.port));
                    self.con = Some(con);
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
        }
        Err(unavailable(last.unwrap_or_else(|| std::io::Error::other("the name resolves to no address"))))
    }

    /// The bytes of one message on the wire.
    fn frame(&self, event: &Message) -> Vec<u8> {
        let data =
            event.to_export_json(ExportOptions { hierarchical: self.params.hierarchical_output, ..Default::default() });
        let data = data.into_bytes();
        match &self.params.separator {
            Some(sep) => [data.as_slice(), sep.as_bytes()].concat(),
            None => {
                let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
                [len.to_be_bytes().as_slice(), data.as_slice()].concat()
            }
        }
    }

    /// Sends the events and waits for their `Ok`s; returns how many were acknowledged before an
    /// error.
    fn send(&mut self, events: &[&Message]) -> Result<(), (usize, String)> {
        let frames: Vec<u8> = events.iter().flat_map(|e| self.frame(e)).collect();
        let addr = self.addr();
        let Some(con) = self.con.as_mut() else {
            return Err((0, format!("not connected to {addr}")));
        };
        con.write_all(&frames).map_err(|e| (0, format!("sending to {addr} failed: {e}")))?;
        con.flush().map_err(|e| (0, format!("sending to {addr} failed: {e}")))?;
        if !self.params.counterpart_is_intelmq {
            return Ok(());
        }
        for i in 0..events.len() {
            let mut answer = [0u8; 2];
            con.read_exact(&mut answer).map_err(|e| (i, format!("no answer from {addr}: {e}")))?;
            if &answer != b"Ok" {
                return Err((i, format!("{addr} answered {:?} instead of \"Ok\"", String::from_utf8_lossy(&answer))));
            }
        }
        Ok(())
    }
}

impl OutputBot for TcpOutputBot {
    fn write(&mut self, events: &[Message], ctx: &mut Context<'_>) -> Result<(), BotError> {
        let pending = self.delivered.undelivered(events);
        if pending.is_empty() {
            self.delivered.acknowledged(events);
            return Ok(());
        }
        self.connect(ctx)?;
        match self.send(&pending) {
            Ok(()) => {
                self.delivered.acknowledged(events);
                Ok(())
            }
            Err((acked, why)) => {
                self.delivered.record_all(pending[..acked].iter().copied());
                self.con = None;
                ctx.log.log(Level::Warning, &format!("Reconnecting, {why}."));
                Err(BotError::Unavailable(why))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::net::TcpListener;
    use std::sync::mpsc;

    use serde_json::json;

    use super::*;
    use crate::bots::outputs::test_support::{event, harmonization};
    use crate::bots::{MemoryLog, MemoryState};

    fn bot(params: serde_json::Value) -> TcpOutputBot {
        TcpOutputBot::build(serde_json::from_value(params).unwrap()).unwrap()
    }

    fn write(bot: &mut TcpOutputBot, events: &[Message]) -> Result<(), BotError> {
        let h = harmonization();
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let root = std::path::Path::new("/");
        let mut ctx = Context {
            bot_id: "tcp-output",
            harmonization: &h,
            root,
            state: &mut state,
            log: &mut log,
            clock: &crate::bots::SystemClock,
        };
        bot.write(events, &mut ctx)
    }

    /// One length-prefixed frame; `None` when the connection ends.
    fn read_frame(s: &mut TcpStream) -> Option<String> {
        let mut len = [0u8; 4];
        s.read_exact(&mut len).ok()?;
        let mut data = vec![0u8; u32::from_be_bytes(len) as usize];
        s.read_exact(&mut data).ok()?;
        Some(String::from_utf8(data).unwrap())
    }

    /// A far side that reads `n` length-prefixed frames and answers each with `answer(i)`.
    fn far_side(n: usize, answer: fn(usize) -> &'static [u8]) -> (u16, mpsc::Receiver<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut got = Vec::new();
            while got.len() < n {
                let (mut s, _) = listener.accept().unwrap();
                while let Some(data) = read_frame(&mut s) {
                    let reply = answer(got.len());
                    got.push(data);
                    if s.write_all(reply).is_err() || reply != b"Ok" {
                        got.pop();
                        break;
                    }
                    if got.len() == n {
                        break;
                    }
                }
            }
            tx.send(got).unwrap();
        });
        (port, rx)
    }

    #[test]
    fn sends_length_prefixed_json_and_waits_for_ok() {
        let h = harmonization();
        let (port, rx) = far_side(2, |_| b"Ok");
        let mut bot = bot(json!({"ip": "127.0.0.1", "port": port.to_string(), "hierarchical_output": true}));
        let events = [event(&h, json!({"source.ip": "192.0.2.1"})), event(&h, json!({"source.ip": "192.0.2.2"}))];
        write(&mut bot, &events).unwrap();
        let got = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(got, vec!["{\"source\": {\"ip\": \"192.0.2.1\"}}", "{\"source\": {\"ip\": \"192.0.2.2\"}}"]);
    }

    #[test]
    fn a_refused_connection_is_unavailable() {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let h = harmonization();
        let mut bot = bot(json!({"ip": "127.0.0.1", "port": port}));
        let err = write(&mut bot, &[event(&h, json!({}))]).unwrap_err();
        assert!(matches!(err, BotError::Unavailable(_)), "{err:?}");
    }

    #[test]
    fn a_wrong_answer_is_unavailable_and_acknowledged_messages_are_not_sent_again() {
        let h = harmonization();
        // The far side acknowledges the first message, then refuses the second.
        let (port, _rx) = far_side(2, |i| if i == 0 { b"Ok" } else { b"No" });
        let mut bot = bot(json!({"ip": "127.0.0.1", "port": port}));
        let events = [event(&h, json!({"source.ip": "192.0.2.1"})), event(&h, json!({"source.ip": "192.0.2.2"}))];
        let err = write(&mut bot, &events).unwrap_err();
        assert!(matches!(err, BotError::Unavailable(ref w) if w.contains("\"No\"")), "{err:?}");
        assert!(bot.con.is_none(), "the connection is dropped");
        // The retry sends only the second message.
        let (port2, rx2) = far_side(1, |_| b"Ok");
        bot.port = port2;
        write(&mut bot, &events).unwrap();
        let got = rx2.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(got, vec!["{\"source.ip\": \"192.0.2.2\"}"]);
    }

    /// A far side that acknowledges one message per connection and drops the connection at the
    /// next one, until it holds `n` messages.
    fn one_per_connection(n: usize) -> (u16, mpsc::Receiver<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut got = Vec::new();
            while got.len() < n {
                let (mut s, _) = listener.accept().unwrap();
                let Some(data) = read_frame(&mut s) else { continue };
                got.push(data);
                s.write_all(b"Ok").unwrap();
                if got.len() < n {
                    // Wait for the next message, then go away without answering it (the rest of
                    // the batch is read and dropped until the bot closes the connection).
                    let _ = read_frame(&mut s);
                    let _ = s.shutdown(std::net::Shutdown::Write);
                    let _ = std::io::copy(&mut s, &mut std::io::sink());
                }
            }
            tx.send(got).unwrap();
        });
        (port, rx)
    }

    #[test]
    fn retries_after_repeated_partial_failures_send_each_message_once() {
        let h = harmonization();
        let (port, rx) = one_per_connection(3);
        let mut bot = bot(json!({"ip": "127.0.0.1", "port": port}));
        let events: Vec<Message> = (1..=3).map(|i| event(&h, json!({"source.ip": format!("192.0.2.{i}")}))).collect();
        // The runtime offers the same batch again after each failure.
        assert!(matches!(write(&mut bot, &events), Err(BotError::Unavailable(_))));
        assert!(matches!(write(&mut bot, &events), Err(BotError::Unavailable(_))));
        write(&mut bot, &events).unwrap();
        let got = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(
            got,
            vec!["{\"source.ip\": \"192.0.2.1\"}", "{\"source.ip\": \"192.0.2.2\"}", "{\"source.ip\": \"192.0.2.3\"}"]
        );
        // Acknowledged as a whole: a later batch with the same event is delivered again.
        assert!(bot.delivered.is_empty());
    }

    #[test]
    fn separator_frames_without_waiting_when_the_counterpart_is_not_intelmq() {
        let h = harmonization();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut bot = bot(json!({"ip": "127.0.0.1", "port": port, "separator": "\n", "counterpart_is_intelmq": false}));
        write(&mut bot, &[event(&h, json!({"source.port": 80}))]).unwrap();
        drop(bot);
        let (mut s, _) = listener.accept().unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        assert_eq!(text, "{\"source.port\": 80}\n");
    }

    #[test]
    fn defaults_are_intelmqs_and_address_is_required() {
        let d = serde_json::to_value(TcpOutputParams::default()).unwrap();
        assert_eq!(
            d,
            json!({"ip": null, "port": null, "separator": null, "hierarchical_output": false, "counterpart_is_intelmq": true})
        );
        assert_eq!(TcpOutputBot::build(TcpOutputParams::default()).err().unwrap().key, "ip");
    }
}
