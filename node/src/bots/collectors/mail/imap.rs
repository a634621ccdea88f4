//! A minimal IMAP4rev1 client (RFC 3501) for the mail collectors, over plain TCP, TLS from the
//! start (IMAPS) or STARTTLS: LOGIN, SELECT, UID SEARCH, UID FETCH BODY.PEEK[], UID STORE +FLAGS
//! (\Seen), LOGOUT. Responses are read line by line with `{n}` literals; only what the
//! collectors need is interpreted.

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::Arc;
use std::time::Duration;

use crate::bots::outputs::tls::Stream;

/// How the connection is encrypted.
#[derive(Clone, Debug)]
pub enum ImapTls {
    Plain,
    /// TLS from the start (IMAPS, port 993).
    Implicit(Arc<rustls::ClientConfig>),
    /// `STARTTLS` after the greeting.
    StartTls(Arc<rustls::ClientConfig>),
}

/// What went wrong talking to the IMAP server.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    /// Connecting, reading or writing failed (the far side is unavailable).
    #[error("imap connection to {server}: {reason}")]
    Io { server: String, reason: String },
    /// The server answered NO or BAD.
    #[error("imap server {server} refused `{command}`: {reason}")]
    Refused { server: String, command: String, reason: String },
    /// The server said something we cannot read.
    #[error("imap server {server} sent an unexpected answer: {reason}")]
    Protocol { server: String, reason: String },
}

/// One untagged answer (`* ...`): its text with literals left out, and the literals.
#[derive(Debug, Default, Clone)]
pub struct Untagged {
    pub text: String,
    pub literals: Vec<Vec<u8>>,
}

/// An open, greeted IMAP connection.
pub struct Imap {
    server: String,
    /// The connection (written through `get_mut`).
    reader: BufReader<Stream>,
    tag: u32,
}

/// IMAP quoted string (RFC 3501 `quoted`); CR and LF cannot be sent this way.
pub fn quote(s: &str) -> Result<String, String> {
    if s.contains(['\r', '\n']) {
        return Err(format!("{s:?} contains a line break"));
    }
    Ok(format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")))
}

impl Imap {
    /// Connects (with TLS as `tls` says) and reads the greeting.
    pub fn connect(host: &str, port: u16, timeout: Duration, tls: &ImapTls) -> Result<Imap, ImapError> {
        let server = format!("{host}:{port}");
        let io = |e: std::io::Error| ImapError::Io { server: server.clone(), reason: e.to_string() };
        let mut stream = Stream::connect(host, port, timeout).map_err(io)?;
        if let ImapTls::Implicit(config) = tls {
            stream = stream.start_tls(host, config.clone()).map_err(io)?;
        }
        let mut imap = Imap { server: server.clone(), reader: BufReader::new(stream), tag: 0 };
        let (greeting, _) = imap.read_logical_line()?;
        if !greeting.starts_with("* OK") && !greeting.starts_with("* PREAUTH") {
            return Err(ImapError::Protocol { server, reason: format!("greeting {greeting:?}") });
        }
        if let ImapTls::StartTls(config) = tls {
            imap.command("STARTTLS")?;
            let Imap { server, reader, tag } = imap;
            let stream = reader.into_inner().start_tls(host, config.clone()).map_err(io)?;
            imap = Imap { server, reader: BufReader::new(stream), tag };
        }
        Ok(imap)
    }

    /// Whether the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        self.reader.get_ref().is_tls()
    }

    fn io(&self, e: std::io::Error) -> ImapError {
        ImapError::Io { server: self.server.clone(), reason: e.to_string() }
    }

    /// One response line with its literals (`{n}` followed by n bytes, then the line goes on).
    fn read_logical_line(&mut self) -> Result<(String, Vec<Vec<u8>>), ImapError> {
        let mut text = String::new();
        let mut literals = Vec::new();
        loop {
            let mut raw = Vec::new();
            let n = self.reader.read_until(b'\n', &mut raw).map_err(|e| self.io(e))?;
            if n == 0 {
                return Err(self.io(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed")));
            }
            while matches!(raw.last(), Some(b'\n' | b'\r')) {
                raw.pop();
            }
            let line = String::from_utf8_lossy(&raw).into_owned();
            let literal_len = line
                .strip_suffix('}')
                .and_then(|l| l.rfind('{').map(|i| &l[i + 1..]))
                .and_then(|n| n.parse::<usize>().ok());
            match literal_len {
                Some(len) => {
                    let cut = line.rfind('{').unwrap_or(line.len());
                    text.push_str(&line[..cut]);
                    let mut data = vec![0u8; len];
                    self.reader.read_exact(&mut data).map_err(|e| self.io(e))?;
                    literals.push(data);
                }
                None => {
                    text.push_str(&line);
                    return Ok((text, literals));
                }
            }
        }
    }

    /// Sends a command and reads until its tagged completion; NO/BAD are errors.
    pub fn command(&mut self, command: &str) -> Result<Vec<Untagged>, ImapError> {
        self.tag += 1;
        let tag = format!("a{}", self.tag);
        let writer = self.reader.get_mut();
        let sent = writer.write_all(format!("{tag} {command}\r\n").as_bytes()).and_then(|()| writer.flush());
        sent.map_err(|e| self.io(e))?;
        let shown = if command.starts_with("LOGIN ") { "LOGIN ..." } else { command };
        let mut untagged = Vec::new();
        loop {
            let (text, literals) = self.read_logical_line()?;
            if let Some(rest) = text.strip_prefix(&format!("{tag} ")) {
                let mut words = rest.splitn(2, ' ');
                let status = words.next().unwrap_or("").to_ascii_uppercase();
                let reason = words.next().unwrap_or("").to_string();
                return match status.as_str() {
                    "OK" => Ok(untagged),
                    _ => Err(ImapError::Refused { server: self.server.clone(), command: shown.to_string(), reason }),
                };
            }
            if text.starts_with('*') {
                untagged.push(Untagged { text, literals });
            }
            // Continuation requests and other lines are not used by these commands.
        }
    }

    pub fn login(&mut self, user: &str, password: &str) -> Result<(), ImapError> {
        let q = |s: &str| quote(s).map_err(|reason| ImapError::Protocol { server: self.server.clone(), reason });
        let cmd = format!("LOGIN {} {}", q(user)?, q(password)?);
        self.command(&cmd).map(|_| ())
    }

    /// Selects a folder; returns its UIDVALIDITY (0 when the server gives none).
    pub fn select(&mut self, folder: &str) -> Result<u32, ImapError> {
        let q = quote(folder).map_err(|reason| ImapError::Protocol { server: self.server.clone(), reason })?;
        let answers = self.command(&format!("SELECT {q}"))?;
        Ok(answers
            .iter()
            .find_map(|a| {
                let i = a.text.find("[UIDVALIDITY ")?;
                a.text[i + 13..].split(']').next()?.trim().parse().ok()
            })
            .unwrap_or(0))
    }

    /// `UID SEARCH <criteria>`: the matching UIDs.
    pub fn uid_search(&mut self, criteria: &str) -> Result<Vec<u32>, ImapError> {
        let answers = self.command(&format!("UID SEARCH {criteria}"))?;
        let mut uids = Vec::new();
        for a in answers {
            if let Some(rest) = a.text.strip_prefix("* SEARCH") {
                uids.extend(rest.split_whitespace().filter_map(|n| n.parse::<u32>().ok()));
            }
        }
        Ok(uids)
    }

    /// `UID FETCH <uid> (BODY.PEEK[])`: the whole message, without setting \Seen.
    pub fn uid_fetch_body(&mut self, uid: u32) -> Result<Option<Vec<u8>>, ImapError> {
        let answers = self.command(&format!("UID FETCH {uid} (BODY.PEEK[])"))?;
        Ok(answers.into_iter().find(|a| a.text.contains("FETCH")).and_then(|a| a.literals.into_iter().next()))
    }

    /// `UID STORE <uid> +FLAGS (\Seen)`.
    pub fn uid_mark_seen(&mut self, uid: u32) -> Result<(), ImapError> {
        self.command(&format!("UID STORE {uid} +FLAGS (\\Seen)")).map(|_| ())
    }

    pub fn logout(mut self) {
        let _ = self.command("LOGOUT");
    }
}
