//! A small SMTP client over `std::net` for the SMTP outputs (RFC 5321): greeting, `EHLO` (falling
//! back to `HELO`), optional `AUTH PLAIN` or `AUTH LOGIN`, then per mail `MAIL FROM`, `RCPT TO`
//! for every recipient, `DATA` with CRLF line ends and dot-stuffing, and `QUIT`. Several mails go
//! over one connection.
//!
//! TLS (rustls, see [`crate::bots::outputs::tls`]): with `ssl` the connection is TLS from the
//! start (SMTPS); with `starttls` the client sends `STARTTLS` when the server offers it, then
//! greets again over TLS. A server that does not offer STARTTLS gets the mail in clear text with
//! a warning (IntelMQ would fail). The certificate is checked as the bot's `verify_cert` says.
//!
//! What answers mean: no connection, a timeout or a 4xx answer is [`SmtpError::Unavailable`]
//! (retry later); a 5xx answer to a mail is [`SmtpError::Rejected`] (this mail will never be
//! taken); a failed login or a server demanding TLS is [`SmtpError::Fatal`].

use std::io::{BufRead, BufReader, Write};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;

use crate::bots::outputs::tls::{config_for, Stream, VerifyCert};
use crate::bots::{BotError, BotLog, Level, ParamError};

/// How long to wait for the server.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Where and how to send.
#[derive(Clone, Debug)]
pub struct SmtpServer {
    pub host: String,
    pub port: u16,
    /// TLS from the start (SMTPS).
    pub ssl: bool,
    pub starttls: bool,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The TLS client configuration (used with `ssl` or `starttls`), or why there is none (the
    /// system has no CA certificates: an error only when TLS is used).
    pub tls: Option<Result<Arc<rustls::ClientConfig>, String>>,
}

impl SmtpServer {
    /// The TLS client configuration a bot with `ssl`/`starttls` needs (none without either); a
    /// CA file that cannot be used is an error of the parameter `key`.
    pub fn tls_config(
        ssl: bool,
        starttls: bool,
        verify: &VerifyCert,
        key: &str,
    ) -> Result<Option<Result<Arc<rustls::ClientConfig>, String>>, ParamError> {
        if !ssl && !starttls {
            return Ok(None);
        }
        config_for(&verify.options(), key).map(Some)
    }
}

/// One mail: envelope and content (lines ending with "\n" or "\r\n").
#[derive(Clone, Debug, PartialEq)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

/// Why a mail was not sent.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SmtpError {
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Rejected(String),
    #[error("{0}")]
    Fatal(String),
}

impl From<SmtpError> for BotError {
    fn from(e: SmtpError) -> Self {
        match e {
            SmtpError::Unavailable(w) => BotError::Unavailable(w),
            SmtpError::Rejected(w) => BotError::Invalid(w),
            SmtpError::Fatal(w) => BotError::Fatal(w),
        }
    }
}

/// The address inside `<...>` when there is one, else the trimmed text (Python's `parseaddr`).
pub fn address(text: &str) -> String {
    match (text.find('<'), text.rfind('>')) {
        (Some(a), Some(b)) if a < b => text[a + 1..b].trim().to_string(),
        _ => text.trim().to_string(),
    }
}

/// A reply: code and text lines.
struct Reply {
    code: u16,
    lines: Vec<String>,
}

impl Reply {
    fn text(&self) -> String {
        self.lines.join(" / ")
    }
}

/// An open SMTP session.
pub struct Session {
    /// The connection (written through `get_mut`).
    reader: BufReader<Stream>,
    server: String,
}

impl Session {
    /// Connects, greets, and logs in when credentials are given.
    pub fn open(server: &SmtpServer, helo_name: &str, log: &mut dyn BotLog) -> Result<Session, SmtpError> {
        let name = format!("{}:{}", server.host, server.port);
        let unavailable =
            |e: std::io::Error| SmtpError::Unavailable(format!("cannot connect to SMTP server {name}: {e}"));
        let host = if server.host.is_empty() { "localhost" } else { server.host.as_str() };
        let tls = || match &server.tls {
            Some(Ok(config)) => Ok(config.clone()),
            Some(Err(why)) => Err(SmtpError::Fatal(format!("TLS to SMTP server {name}: {why}"))),
            None => Err(SmtpError::Fatal(format!("no TLS configuration for SMTP server {name}"))),
        };
        let mut stream = Stream::connect(host, server.port, TIMEOUT).map_err(unavailable)?;
        if server.ssl {
            stream = stream
                .start_tls(host, tls()?)
                .map_err(|e| SmtpError::Unavailable(format!("SMTP server {name}: {e}")))?;
        }
        let mut s = Session { reader: BufReader::new(stream), server: name.clone() };
        let greeting = s.reply()?;
        if greeting.code != 220 {
            return Err(SmtpError::Unavailable(format!(
                "SMTP server {} greets with {} {}",
                s.server,
                greeting.code,
                greeting.text()
            )));
        }
        let mut extensions = s.hello(helo_name)?;
        if server.starttls && !server.ssl {
            if extensions.iter().any(|e| e.split_whitespace().next() == Some("STARTTLS")) {
                let r = s.command("STARTTLS")?;
                if r.code != 220 {
                    return Err(SmtpError::Unavailable(format!(
                        "SMTP server {} refuses STARTTLS: {} {}",
                        s.server,
                        r.code,
                        r.text()
                    )));
                }
                let config = tls()?;
                let stream = s
                    .reader
                    .into_inner()
                    .start_tls(host, config)
                    .map_err(|e| SmtpError::Unavailable(format!("SMTP server {name}: {e}")))?;
                s = Session { reader: BufReader::new(stream), server: name.clone() };
                extensions = s.hello(helo_name)?;
            } else {
                log.log(
                    Level::Warning,
                    &format!("SMTP server {} does not offer STARTTLS, sending without TLS.", s.server),
                );
            }
        }
        if let (Some(user), Some(pass)) =
            (server.username.as_deref().filter(|u| !u.is_empty()), server.password.as_deref().filter(|p| !p.is_empty()))
        {
            s.login(&extensions, user, pass)?;
        }
        Ok(s)
    }

    /// `EHLO` (falling back to `HELO`); the extensions offered, in upper case.
    fn hello(&mut self, helo_name: &str) -> Result<Vec<String>, SmtpError> {
        let mut ehlo = self.command(&format!("EHLO {helo_name}"))?;
        if ehlo.code != 250 {
            ehlo = self.command(&format!("HELO {helo_name}"))?;
            if ehlo.code != 250 {
                return Err(SmtpError::Unavailable(format!(
                    "SMTP server {} refuses HELO: {} {}",
                    self.server,
                    ehlo.code,
                    ehlo.text()
                )));
            }
        }
        Ok(ehlo.lines.iter().skip(1).map(|l| l.to_ascii_uppercase()).collect())
    }

    /// Whether the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        self.reader.get_ref().is_tls()
    }

    fn login(&mut self, extensions: &[String], user: &str, pass: &str) -> Result<(), SmtpError> {
        let b64 = |t: &[u8]| base64::engine::general_purpose::STANDARD.encode(t);
        let mechanisms: Vec<&str> = extensions
            .iter()
            .filter_map(|e| e.strip_prefix("AUTH").filter(|r| r.starts_with([' ', '='])))
            .flat_map(|r| r[1..].split_whitespace())
            .collect();
        let reply = if mechanisms.contains(&"PLAIN") {
            self.command(&format!("AUTH PLAIN {}", b64(format!("\0{user}\0{pass}").as_bytes())))?
        } else if mechanisms.contains(&"LOGIN") {
            let r = self.command("AUTH LOGIN")?;
            if r.code != 334 {
                return Err(self.auth_error(&r));
            }
            let r = self.command(&b64(user.as_bytes()))?;
            if r.code != 334 {
                return Err(self.auth_error(&r));
            }
            self.command(&b64(pass.as_bytes()))?
        } else {
            return Err(SmtpError::Fatal(format!(
                "SMTP server {} offers no authentication method this bot knows (PLAIN, LOGIN); it offers {mechanisms:?}",
                self.server
            )));
        };
        if reply.code != 235 {
            return Err(self.auth_error(&reply));
        }
        Ok(())
    }

    fn auth_error(&self, r: &Reply) -> SmtpError {
        let why = format!("SMTP server {} refuses the login: {} {}", self.server, r.code, r.text());
        if (400..500).contains(&r.code) {
            SmtpError::Unavailable(why)
        } else {
            SmtpError::Fatal(why)
        }
    }

    fn io(&self, e: std::io::Error) -> SmtpError {
        SmtpError::Unavailable(format!("connection to SMTP server {} failed: {e}", self.server))
    }

    fn reply(&mut self) -> Result<Reply, SmtpError> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).map_err(|e| self.io(e))?;
            if n == 0 {
                return Err(SmtpError::Unavailable(format!("SMTP server {} closed the connection", self.server)));
            }
            let line = line.trim_end_matches(['\r', '\n']);
            let code = line.get(..3).and_then(|c| c.parse::<u16>().ok()).ok_or_else(|| {
                SmtpError::Unavailable(format!("SMTP server {} sent a malformed reply {line:?}", self.server))
            })?;
            lines.push(line.get(4..).unwrap_or("").to_string());
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(Reply { code, lines });
            }
        }
    }

    fn command(&mut self, line: &str) -> Result<Reply, SmtpError> {
        let writer = self.reader.get_mut();
        let sent = writer.write_all(format!("{line}\r\n").as_bytes()).and_then(|()| writer.flush());
        sent.map_err(|e| self.io(e))?;
        self.reply()
    }

    /// What a negative reply to a mail command means.
    fn refused(&self, what: &str, r: &Reply) -> SmtpError {
        let why = format!("SMTP server {} refuses {what}: {} {}", self.server, r.code, r.text());
        if r.code >= 500 {
            SmtpError::Rejected(why)
        } else {
            SmtpError::Unavailable(why)
        }
    }

    /// Sends one mail; refused recipients are logged as long as one is accepted (Python's
    /// `send_message`).
    pub fn send(&mut self, mail: &Mail, log: &mut dyn BotLog) -> Result<(), SmtpError> {
        let r = self.command(&format!("MAIL FROM:<{}>", address(&mail.from)))?;
        if r.code != 250 {
            let err = self.refused("the sender", &r);
            let _ = self.command("RSET");
            return Err(err);
        }
        let mut accepted = 0;
        let mut worst: Option<SmtpError> = None;
        for to in &mail.to {
            let r = self.command(&format!("RCPT TO:<{}>", address(to)))?;
            if r.code == 250 || r.code == 251 {
                accepted += 1;
            } else {
                log.log(Level::Warning, &format!("Recipient {to:?} refused: {} {}.", r.code, r.text()));
                let err = self.refused(&format!("recipient {to:?}"), &r);
                if worst.is_none() || matches!(err, SmtpError::Unavailable(_)) {
                    worst = Some(err);
                }
            }
        }
        if accepted == 0 {
            let _ = self.command("RSET");
            return Err(worst.unwrap_or_else(|| SmtpError::Rejected("mail without recipients".to_string())));
        }
        let r = self.command("DATA")?;
        if r.code != 354 {
            let err = self.refused("the data", &r);
            let _ = self.command("RSET");
            return Err(err);
        }
        let mut data = String::with_capacity(mail.data.len() + 64);
        for line in mail.data.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.starts_with('.') {
                data.push('.');
            }
            data.push_str(line);
            data.push_str("\r\n");
        }
        if mail.data.ends_with('\n') {
            // split('\n') gave a last empty piece: drop its extra line end.
            data.truncate(data.len() - 2);
        }
        data.push_str(".\r\n");
        let writer = self.reader.get_mut();
        let sent = writer.write_all(data.as_bytes()).and_then(|()| writer.flush());
        sent.map_err(|e| self.io(e))?;
        let r = self.reply()?;
        if r.code != 250 {
            return Err(self.refused("the mail", &r));
        }
        Ok(())
    }

    /// Says goodbye (errors ignored: the mails are already accepted).
    pub fn quit(mut self) {
        let _ = self.command("QUIT");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    use std::sync::mpsc;

    use super::*;
    use crate::bots::outputs::tls::{client_config, test_support, TlsOptions, Verify};
    use crate::bots::MemoryLog;

    trait Rw: Read + Write + Send {}
    impl<T: Read + Write + Send> Rw for T {}

    /// What a test SMTP server received: envelope and un-stuffed data.
    #[derive(Debug, Clone, PartialEq)]
    pub(crate) struct Received {
        pub from: String,
        pub to: Vec<String>,
        pub data: String,
        pub auth: Option<String>,
        /// Whether the mail came over TLS.
        pub tls: bool,
    }

    /// A test SMTP server for one connection; `ehlo` are the extension lines it offers,
    /// `rcpt_code` the answer to every RCPT.
    pub(crate) fn smtp_server(ehlo: &'static [&'static str], rcpt_code: u16) -> (u16, mpsc::Receiver<Received>) {
        smtp_server_with(ehlo, rcpt_code, None)
    }

    /// A test SMTP server with TLS: from the start (`implicit`) or after STARTTLS (offer it in
    /// `ehlo`); also returns the PEM of its certificate.
    pub(crate) fn smtp_tls_server(
        ehlo: &'static [&'static str],
        implicit: bool,
    ) -> (u16, mpsc::Receiver<Received>, String) {
        let (pem, config) = test_support::server();
        let (port, rx) = smtp_server_with(ehlo, 250, Some((config, implicit)));
        (port, rx, pem)
    }

    fn smtp_server_with(
        ehlo: &'static [&'static str],
        rcpt_code: u16,
        tls: Option<(Arc<rustls::ServerConfig>, bool)>,
    ) -> (u16, mpsc::Receiver<Received>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            let raw = s.try_clone().unwrap();
            let tls_stream = |sock: &TcpStream| -> Box<dyn Rw> {
                let config = &tls.as_ref().unwrap().0;
                Box::new(test_support::accept(sock.try_clone().unwrap(), config))
            };
            let implicit = tls.as_ref().is_some_and(|t| t.1);
            let mut encrypted = implicit;
            let mut r: BufReader<Box<dyn Rw>> =
                BufReader::new(if implicit { tls_stream(&raw) } else { Box::new(s) as Box<dyn Rw> });
            if r.get_mut().write_all(b"220 test ESMTP\r\n").is_err() {
                return; // a refused TLS handshake
            }
            let (mut from, mut to, mut auth) = (String::new(), Vec::new(), None);
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                let w = r.get_mut();
                let line = line.trim_end().to_string();
                let upper = line.to_ascii_uppercase();
                if upper == "STARTTLS" && tls.is_some() {
                    w.write_all(b"220 go ahead\r\n").unwrap();
                    r = BufReader::new(tls_stream(&raw));
                    encrypted = true;
                } else if upper.starts_with("EHLO") {
                    let mut reply = String::from("250-test\r\n");
                    for (i, e) in ehlo.iter().enumerate() {
                        reply.push_str(&format!("250{}{e}\r\n", if i + 1 == ehlo.len() { ' ' } else { '-' }));
                    }
                    if ehlo.is_empty() {
                        reply = "250 test\r\n".into();
                    }
                    w.write_all(reply.as_bytes()).unwrap();
                } else if upper.starts_with("AUTH PLAIN") {
                    auth = Some(line[11..].to_string());
                    w.write_all(b"235 ok\r\n").unwrap();
                } else if upper.starts_with("MAIL FROM:") {
                    from = line[10..].trim_matches(['<', '>']).to_string();
                    w.write_all(b"250 ok\r\n").unwrap();
                } else if upper.starts_with("RCPT TO:") {
                    to.push(line[8..].trim_matches(['<', '>']).to_string());
                    w.write_all(format!("{rcpt_code} rcpt\r\n").as_bytes()).unwrap();
                } else if upper == "DATA" {
                    w.write_all(b"354 go\r\n").unwrap();
                    let mut data = String::new();
                    loop {
                        let mut l = String::new();
                        r.read_line(&mut l).unwrap();
                        if l == ".\r\n" {
                            break;
                        }
                        let l = l.strip_prefix('.').unwrap_or(&l).to_string();
                        data.push_str(&l);
                    }
                    r.get_mut().write_all(b"250 queued\r\n").unwrap();
                    let (to, auth) = (std::mem::take(&mut to), auth.clone());
                    tx.send(Received { from: from.clone(), to, data, auth, tls: encrypted }).unwrap();
                } else if upper == "QUIT" {
                    w.write_all(b"221 bye\r\n").unwrap();
                    return;
                } else {
                    w.write_all(b"250 ok\r\n").unwrap();
                }
            }
        });
        (port, rx)
    }

    fn server(port: u16, starttls: bool) -> SmtpServer {
        SmtpServer {
            host: "127.0.0.1".into(),
            port,
            ssl: false,
            starttls,
            username: Some("u".into()),
            password: Some("p".into()),
            tls: None,
        }
    }

    /// A client configuration trusting `pem` only.
    fn trusting(pem: &str) -> (tempfile::TempDir, Arc<rustls::ClientConfig>) {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, pem).unwrap();
        let config = client_config(&TlsOptions { verify: Verify::Full, ca_file: Some(ca), client_cert: None }).unwrap();
        (dir, config)
    }

    fn one_mail(server: &SmtpServer) -> Result<(), SmtpError> {
        let mut log = MemoryLog::default();
        let mut s = Session::open(server, "me", &mut log)?;
        let mail = Mail { from: "a@example.com".into(), to: vec!["b@example.com".into()], data: "x\n".into() };
        s.send(&mail, &mut log)?;
        s.quit();
        Ok(())
    }

    #[test]
    fn sends_with_auth_plain_crlf_and_dot_stuffing() {
        let (port, rx) = smtp_server(&["AUTH PLAIN LOGIN", "8BITMIME"], 250);
        let mut log = MemoryLog::default();
        let mut s = Session::open(&server(port, false), "me", &mut log).unwrap();
        let mail = Mail {
            from: "CERT <cert@example.com>".into(),
            to: vec!["a@example.com".into()],
            data: "Subject: x\n\n.hidden\nend\n".into(),
        };
        s.send(&mail, &mut log).unwrap();
        s.quit();
        let got = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(got.from, "cert@example.com");
        assert_eq!(got.to, vec!["a@example.com"]);
        assert_eq!(got.data, "Subject: x\r\n\r\n.hidden\r\nend\r\n");
        assert_eq!(got.auth.as_deref(), Some("AHUAcA=="));
    }

    #[test]
    fn starttls_encrypts_before_the_login_and_absent_starttls_is_a_warning() {
        let (port, rx, pem) = smtp_tls_server(&["STARTTLS", "AUTH PLAIN"], false);
        let (_dir, config) = trusting(&pem);
        one_mail(&SmtpServer { tls: Some(Ok(config)), ..server(port, true) }).unwrap();
        let got = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(got.tls, "sent over TLS");
        assert_eq!(got.auth.as_deref(), Some("AHUAcA=="), "logged in after STARTTLS");

        let (port, _rx) = smtp_server(&["AUTH PLAIN"], 250);
        let mut log = MemoryLog::default();
        let s = Session::open(&server(port, true), "me", &mut log).unwrap();
        assert!(!s.is_tls());
        assert!(log.lines.iter().any(|(l, m)| *l == Level::Warning && m.contains("STARTTLS")));
    }

    #[test]
    fn smtps_is_tls_from_the_start_and_an_unknown_certificate_is_refused() {
        let (port, rx, pem) = smtp_tls_server(&["AUTH PLAIN"], true);
        let (_dir, config) = trusting(&pem);
        one_mail(&SmtpServer { ssl: true, tls: Some(Ok(config)), ..server(port, false) }).unwrap();
        assert!(rx.recv_timeout(Duration::from_secs(5)).unwrap().tls);

        let (port, _rx, _pem) = smtp_tls_server(&["AUTH PLAIN"], true);
        let (_dir, other) = trusting(&test_support::server().0);
        let err = one_mail(&SmtpServer { ssl: true, tls: Some(Ok(other)), ..server(port, false) }).unwrap_err();
        assert!(matches!(&err, SmtpError::Unavailable(w) if w.contains("TLS handshake")), "{err:?}");
    }

    #[test]
    fn refused_recipients_are_rejected_or_unavailable_by_code() {
        let mut log = MemoryLog::default();
        let mail = Mail { from: "a".into(), to: vec!["b".into()], data: "x\n".into() };
        let (port, _rx) = smtp_server(&[], 550);
        let mut s = Session::open(&SmtpServer { username: None, ..server(port, false) }, "me", &mut log).unwrap();
        assert!(matches!(s.send(&mail, &mut log), Err(SmtpError::Rejected(_))));
        let (port, _rx) = smtp_server(&[], 451);
        let mut s = Session::open(&SmtpServer { username: None, ..server(port, false) }, "me", &mut log).unwrap();
        assert!(matches!(s.send(&mail, &mut log), Err(SmtpError::Unavailable(_))));
    }

    #[test]
    fn no_server_is_unavailable() {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut log = MemoryLog::default();
        assert!(matches!(Session::open(&server(port, false), "me", &mut log), Err(SmtpError::Unavailable(_))));
    }

    #[test]
    fn address_takes_the_angle_bracket_part() {
        assert_eq!(address("Name <a@b>"), "a@b");
        assert_eq!(address(" you "), "you");
    }
}
