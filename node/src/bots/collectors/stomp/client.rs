//! A STOMP 1.2 client (our own, over [`Stream`]: plain TCP or TLS) shared by the STOMP collector
//! and output: frames, the `CONNECT`/`CONNECTED` exchange with heart-beat negotiation, and reading
//! frames with a deadline while heart-beats go out when due. Incoming bytes are kept in a buffer
//! until a whole frame is there, so a read timeout in the middle of a frame loses nothing.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::bots::outputs::tls::{config_for, Stream, TlsOptions, Verify};
use crate::bots::ParamError;

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

    /// CONNECT and CONNECTED headers are not escaped (STOMP 1.2).
    fn escaped(command: &str) -> bool {
        command != "CONNECT" && command != "CONNECTED"
    }

    /// The frame on the wire (STOMP 1.2 header escaping).
    pub fn encode(&self) -> Vec<u8> {
        let esc = |s: &str| {
            if Self::escaped(&self.command) {
                s.replace('\\', "\\\\").replace('\n', "\\n").replace('\r', "\\r").replace(':', "\\c")
            } else {
                s.to_string()
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

    /// The broker's complaint in an ERROR frame.
    pub fn error_text(&self) -> String {
        format!("{} {}", self.header("message").unwrap_or(""), String::from_utf8_lossy(&self.body).trim())
            .trim()
            .to_string()
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

/// Parses the frame at the start of `buf`: `None` while it is incomplete, else the frame (`None`
/// for a heart-beat: an end of line between frames) and how many bytes it took.
pub fn parse_frame(buf: &[u8]) -> Option<(Option<Frame>, usize)> {
    match buf.first()? {
        b'\n' => return Some((None, 1)),
        b'\r' if buf.get(1) == Some(&b'\n') => return Some((None, 2)),
        b'\r' if buf.len() < 2 => return None,
        _ => {}
    }
    let mut pos = 0;
    let mut lines = Vec::new();
    loop {
        let end = buf[pos..].iter().position(|b| *b == b'\n')?;
        let mut line = &buf[pos..pos + end];
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        pos += end + 1;
        if line.is_empty() {
            break;
        }
        lines.push(String::from_utf8_lossy(line).into_owned());
    }
    let mut frame = Frame { command: lines.first().cloned().unwrap_or_default(), ..Frame::default() };
    let escaped = Frame::escaped(&frame.command);
    for line in lines.iter().skip(1) {
        if let Some((k, v)) = line.split_once(':') {
            let (k, v) = if escaped { (unescape(k), unescape(v)) } else { (k.to_string(), v.to_string()) };
            frame.headers.push((k, v));
        }
    }
    let end = match frame.header("content-length").and_then(|n| n.trim().parse::<usize>().ok()) {
        Some(n) => {
            if buf.len() < pos + n + 1 {
                return None;
            }
            pos + n
        }
        None => pos + buf[pos..].iter().position(|b| *b == 0)?,
    };
    frame.body = buf[pos..end].to_vec();
    Some((Some(frame), end + 1))
}

/// Reads one frame from a blocking reader; `Ok(None)` is a heart-beat.
pub fn read_frame(r: &mut impl Read) -> std::io::Result<Option<Frame>> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        if let Some((frame, _)) = parse_frame(&buf) {
            return Ok(frame);
        }
        if r.read(&mut byte)? == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed"));
        }
        buf.push(byte[0]);
    }
}

/// Where and how to connect.
#[derive(Clone, Debug)]
pub struct StompSettings {
    pub server: String,
    pub port: u16,
    /// Heart-beat interval in milliseconds, offered both ways (0: none).
    pub heartbeat: u32,
    /// The `host` header of CONNECT (RabbitMQ's virtual host).
    pub vhost: String,
    /// `login`/`passcode`; none when the TLS client certificate authenticates.
    pub login: Option<(String, String)>,
    /// TLS, or why it cannot be used; none for plain TCP.
    pub tls: Option<Result<Arc<rustls::ClientConfig>, String>>,
    pub timeout: Duration,
}

/// IntelMQ's STOMP parameters (StompMixin) as given to a bot.
pub struct StompParams<'a> {
    pub server: &'a str,
    pub port: u16,
    pub heartbeat: u32,
    pub vhost: &'a str,
    pub use_ssl: bool,
    pub ssl_ca_certificate: &'a str,
    pub auth_by_ssl_client_certificate: bool,
    pub ssl_client_certificate: &'a str,
    pub ssl_client_certificate_key: &'a str,
    pub username: &'a str,
    pub password: &'a str,
}

impl StompSettings {
    /// The settings of IntelMQ's parameters: TLS verifies the broker against `ssl_ca_certificate`
    /// (empty: the system's CAs) and logs in with the client certificate when
    /// `auth_by_ssl_client_certificate`, else with `username`/`password`.
    pub fn new(p: &StompParams<'_>) -> Result<StompSettings, ParamError> {
        if p.auth_by_ssl_client_certificate && !p.use_ssl {
            return Err(ParamError::new(
                "auth_by_ssl_client_certificate",
                "client certificate authentication needs TLS (use_ssl); set it to false to log in with username and password",
            ));
        }
        let tls = if p.use_ssl {
            let mut files = vec![("ssl_ca_certificate", p.ssl_ca_certificate)];
            if p.auth_by_ssl_client_certificate {
                files.push(("ssl_client_certificate", p.ssl_client_certificate));
                files.push(("ssl_client_certificate_key", p.ssl_client_certificate_key));
            }
            for (key, file) in files {
                if !file.is_empty() && !std::path::Path::new(file).is_file() {
                    return Err(ParamError::new(key, format!("the file {file} does not exist")));
                }
            }
            let file = |s: &str| (!s.is_empty()).then(|| PathBuf::from(s));
            let options = TlsOptions {
                verify: Verify::Full,
                ca_file: file(p.ssl_ca_certificate),
                client_cert: if p.auth_by_ssl_client_certificate {
                    Some((PathBuf::from(p.ssl_client_certificate), PathBuf::from(p.ssl_client_certificate_key)))
                } else {
                    None
                },
            };
            Some(config_for(&options, "ssl_ca_certificate")?)
        } else {
            None
        };
        let login = (!p.auth_by_ssl_client_certificate).then(|| (p.username.to_string(), p.password.to_string()));
        Ok(StompSettings {
            server: p.server.to_string(),
            port: p.port,
            heartbeat: p.heartbeat,
            vhost: p.vhost.to_string(),
            login,
            tls,
            timeout: Duration::from_secs(30),
        })
    }

    /// `host:port`.
    pub fn display(&self) -> String {
        format!("{}:{}", self.server, self.port)
    }
}

/// The [`StompSettings`] of a bot's parameters (a struct with IntelMQ's STOMP fields and our
/// `use_ssl` and `vhost`), with the heart-beat interval `heartbeat` in milliseconds.
macro_rules! stomp_settings {
    ($p:expr, $heartbeat:expr) => {
        $crate::bots::collectors::stomp::client::StompSettings::new(
            &$crate::bots::collectors::stomp::client::StompParams {
                server: &$p.server,
                port: $p.port,
                heartbeat: $heartbeat,
                vhost: &$p.vhost,
                use_ssl: $p.use_ssl,
                ssl_ca_certificate: &$p.ssl_ca_certificate,
                auth_by_ssl_client_certificate: $p.auth_by_ssl_client_certificate,
                ssl_client_certificate: &$p.ssl_client_certificate,
                ssl_client_certificate_key: &$p.ssl_client_certificate_key,
                username: &$p.username,
                password: &$p.password,
            },
        )
    };
}
pub(crate) use stomp_settings;

/// Why talking to the broker failed.
#[derive(Debug)]
pub enum StompError {
    /// The connection failed or broke (the broker is unavailable).
    Io(String),
    /// The broker refused (an ERROR frame).
    Refused(String),
    /// TLS cannot be set up (no CA certificates).
    Setup(String),
}

impl std::fmt::Display for StompError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StompError::Io(why) | StompError::Refused(why) | StompError::Setup(why) => f.write_str(why),
        }
    }
}

/// An open STOMP connection.
pub struct StompConn {
    stream: Stream,
    name: String,
    buf: Vec<u8>,
    /// We send a heart-beat at least this often (ms, 0: never).
    send_every: u64,
    /// The broker sends at least this often (ms, 0: never).
    expect_every: u64,
    last_sent: Instant,
    last_seen: Instant,
}

impl StompConn {
    /// Connects, logs in and negotiates heart-beats.
    pub fn open(s: &StompSettings) -> Result<StompConn, StompError> {
        let name = s.display();
        let io = |e: std::io::Error| StompError::Io(format!("stomp broker {name}: {e}"));
        let mut stream = Stream::connect(&s.server, s.port, s.timeout).map_err(io)?;
        if let Some(tls) = &s.tls {
            let config = tls.clone().map_err(|e| StompError::Setup(format!("stomp broker {name}: {e}")))?;
            stream = stream.start_tls(&s.server, config).map_err(io)?;
        }
        let now = Instant::now();
        let mut conn = StompConn {
            stream,
            name: name.clone(),
            buf: Vec::new(),
            send_every: 0,
            expect_every: 0,
            last_sent: now,
            last_seen: now,
        };
        let heart = format!("{0},{0}", s.heartbeat);
        let mut headers =
            vec![("accept-version", "1.2,1.1"), ("host", s.vhost.as_str()), ("heart-beat", heart.as_str())];
        if let Some((user, pass)) = &s.login {
            headers.push(("login", user.as_str()));
            headers.push(("passcode", pass.as_str()));
        }
        conn.send(&Frame::new("CONNECT", &headers))?;
        let answer = conn
            .next(s.timeout)?
            .ok_or_else(|| StompError::Io(format!("stomp broker {name}: no answer to CONNECT")))?;
        if answer.command != "CONNECTED" {
            return Err(StompError::Refused(format!(
                "stomp broker {name} refused the connection: {}",
                answer.error_text()
            )));
        }
        // Heart-beats: we send every `cx` ms, the broker every `sy` ms (STOMP 1.2 negotiation).
        let (sx, sy) = answer
            .header("heart-beat")
            .and_then(|h| h.split_once(','))
            .map(|(a, b)| (a.trim().parse::<u64>().unwrap_or(0), b.trim().parse::<u64>().unwrap_or(0)))
            .unwrap_or((0, 0));
        let ours = u64::from(s.heartbeat);
        conn.send_every = if ours == 0 || sy == 0 { 0 } else { ours.max(sy) };
        conn.expect_every = if ours == 0 || sx == 0 { 0 } else { ours.max(sx) };
        Ok(conn)
    }

    fn io(&self, e: impl std::fmt::Display) -> StompError {
        StompError::Io(format!("stomp broker {}: {e}", self.name))
    }

    /// Sends frames in one write.
    pub fn send_all(&mut self, frames: &[Frame]) -> Result<(), StompError> {
        let bytes: Vec<u8> = frames.iter().flat_map(Frame::encode).collect();
        let sent = self.stream.write_all(&bytes).and_then(|()| self.stream.flush());
        sent.map_err(|e| self.io(e))?;
        self.last_sent = Instant::now();
        Ok(())
    }

    pub fn send(&mut self, frame: &Frame) -> Result<(), StompError> {
        self.send_all(std::slice::from_ref(frame))
    }

    /// The next frame arriving within `wait` (`None` if none did; with no wait, what has arrived);
    /// sends heart-beats when due and fails when the broker's heart-beats stop or the connection
    /// is closed.
    pub fn next(&mut self, wait: Duration) -> Result<Option<Frame>, StompError> {
        let deadline = Instant::now() + wait;
        let mut tried = false;
        loop {
            while let Some((frame, used)) = parse_frame(&self.buf) {
                self.buf.drain(..used);
                self.last_seen = Instant::now();
                if frame.is_some() {
                    return Ok(frame);
                }
            }
            if self.send_every > 0 && self.last_sent.elapsed() >= Duration::from_millis(self.send_every) {
                self.stream.write_all(b"\n").map_err(|e| self.io(e))?;
                self.last_sent = Instant::now();
            }
            if self.expect_every > 0 && self.last_seen.elapsed() > Duration::from_millis(self.expect_every * 3) {
                return Err(self.io("no heart-beat from the broker"));
            }
            let now = Instant::now();
            if now >= deadline && tried {
                return Ok(None);
            }
            tried = true;
            // Wake up for the next heart-beat to send, and at the deadline.
            let mut slice = deadline.saturating_duration_since(now);
            if self.send_every > 0 {
                slice = slice.min(Duration::from_millis(self.send_every / 2).max(Duration::from_millis(50)));
            }
            let mut chunk = [0u8; 16 * 1024];
            let read = if slice.is_zero() {
                // Only what has arrived.
                let tcp = self.stream.tcp();
                let _ = tcp.set_nonblocking(true);
                let read = self.stream.read(&mut chunk);
                let _ = self.stream.tcp().set_nonblocking(false);
                read
            } else {
                let _ = self.stream.tcp().set_read_timeout(Some(slice));
                self.stream.read(&mut chunk)
            };
            match read {
                Ok(0) => return Err(self.io("connection closed")),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io(e)),
            }
        }
    }

    /// Ends the connection (DISCONNECT without waiting for a receipt).
    pub fn close(mut self) {
        let _ = self.send(&Frame::new("DISCONNECT", &[]));
        let _ = self.stream.tcp().shutdown(std::net::Shutdown::Both);
    }

    /// The TCP connection underneath.
    pub fn tcp(&self) -> &std::net::TcpStream {
        self.stream.tcp()
    }

    pub fn is_tls(&self) -> bool {
        self.stream.is_tls()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_with_escaping_and_content_length() {
        let mut f = Frame::new("MESSAGE", &[("a:b", "line\nnext")]);
        f.body = b"body\0with nul".to_vec();
        let bytes = f.encode();
        let (back, used) = parse_frame(&bytes).unwrap();
        assert_eq!(used, bytes.len());
        let back = back.unwrap();
        assert_eq!(back.header("a:b"), Some("line\nnext"));
        assert_eq!(back.body, b"body\0with nul");
        let stream = b"\nCONNECTED\nversion:1.2\n\n\0";
        assert_eq!(parse_frame(stream), Some((None, 1)));
        let mut r = &stream[..];
        assert_eq!(read_frame(&mut r).unwrap(), None);
        assert_eq!(read_frame(&mut r).unwrap().unwrap().command, "CONNECTED");
    }

    #[test]
    fn incomplete_frames_wait_for_more_bytes() {
        let mut f = Frame::new("MESSAGE", &[("message-id", "1")]);
        f.body = b"0123456789".to_vec();
        let bytes = f.encode();
        for cut in 1..bytes.len() {
            assert_eq!(parse_frame(&bytes[..cut]), None, "cut at {cut}");
        }
        let plain = b"RECEIPT\nreceipt-id:7\n\n\0MESSAGE";
        let (frame, used) = parse_frame(plain).unwrap();
        assert_eq!(frame.unwrap().header("receipt-id"), Some("7"));
        assert_eq!(&plain[used..], b"MESSAGE");
    }
}
