//! What the IMAP mail collectors share (IntelMQ's `MailCollectorBot`): the mail parameters, the
//! mailbox (unread mails of `folder`, filtered by `sent_from`, `sent_to` on the server and by
//! `subject_regex` here) and the MIME reading (subject, sender addresses, Message-ID, Date, plain
//! and HTML bodies, attachments), plus the `extra.email_*` fields of every report.
//!
//! Delivery: a mail a collector used is marked `\Seen` in `committed()`, after its reports are
//! safe; until then its UID (with the folder's UIDVALIDITY) is recorded in the bot state, in the
//! same commit as the reports, so a mail whose marking failed (connection lost, crash) is marked
//! on the next run without being emitted twice. IntelMQ marks right after sending.
//!
//! TLS: `mail_ssl` (IntelMQ's default) is IMAP over TLS (port 993 unless `mail_port` says
//! otherwise), `mail_starttls` upgrades a plain connection (port 143); the server's certificate
//! is verified against `ssl_ca_certificate` when given, else against the system's CAs (as imbox
//! does with its default SSL context).

use std::path::PathBuf;
use std::time::Duration;

use regex::Regex;
use serde_json::Value;

use super::imap::{quote, Imap, ImapError, ImapTls};
use crate::bots::outputs::tls::{config_for, TlsOptions, Verify};
use crate::bots::{BotError, Context, Level, ParamError};
use crate::message::Message;

/// Declares a mail collector's parameter struct: IntelMQ's mail parameters, then the bot's own
/// fields (each `= default`), plus its `Default` and `mail_settings()`.
macro_rules! mail_params {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty = $default:expr, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct $name {
            /// `mail_host`: the IMAP server; default "<host>".
            #[serde(deserialize_with = "crate::bots::collectors::http::mixin::de::string")]
            pub mail_host: String,
            /// `mail_user`: the IMAP user; default "<user>".
            #[serde(deserialize_with = "crate::bots::collectors::http::mixin::de::string")]
            pub mail_user: String,
            /// `mail_password`: the IMAP password; default "<password>".
            #[serde(deserialize_with = "crate::bots::collectors::http::mixin::de::string")]
            pub mail_password: String,
            /// `mail_ssl`: IMAP over TLS; default true.
            #[serde(deserialize_with = "crate::bots::collectors::http::mixin::de::bool")]
            pub mail_ssl: bool,
            /// `mail_port`: the IMAP port; default null (143, or 993 with TLS).
            #[serde(deserialize_with = "crate::bots::collectors::http::mixin::de::opt_u16")]
            pub mail_port: Option<u16>,
            /// `mail_starttls`: STARTTLS on a plain connection (when `mail_ssl` is false); default false.
            #[serde(deserialize_with = "crate::bots::collectors::http::mixin::de::bool")]
            pub mail_starttls: bool,
            /// `folder`: the folder to read; default "INBOX".
            #[serde(deserialize_with = "crate::bots::collectors::http::mixin::de::string")]
            pub folder: String,
            /// `subject_regex`: only mails whose subject matches (a search) are read; default "<subject>".
            #[serde(deserialize_with = "crate::bots::collectors::http::mixin::de::opt_string")]
            pub subject_regex: Option<String>,
            /// `sent_from`: only mails from this sender (IMAP SEARCH FROM); default null.
            #[serde(deserialize_with = "crate::bots::collectors::http::mixin::de::opt_string")]
            pub sent_from: Option<String>,
            /// `sent_to`: only mails to this recipient (IMAP SEARCH TO); default null.
            #[serde(deserialize_with = "crate::bots::collectors::http::mixin::de::opt_string")]
            pub sent_to: Option<String>,
            /// `ssl_ca_certificate`: CA file (PEM) the IMAP server's certificate is verified against
            /// (null: the system's CAs); default null.
            #[serde(deserialize_with = "crate::bots::collectors::http::mixin::de::opt_string")]
            pub ssl_ca_certificate: Option<String>,
            /// `rate_limit`: the fetch interval in seconds, applied by the runtime; default 60.
            #[serde(deserialize_with = "crate::bots::collectors::http::mixin::de::f64")]
            pub rate_limit: f64,
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl Default for $name {
            fn default() -> Self {
                $name {
                    mail_host: "<host>".to_string(),
                    mail_user: "<user>".to_string(),
                    mail_password: "<password>".to_string(),
                    mail_ssl: true,
                    mail_port: None,
                    mail_starttls: false,
                    folder: "INBOX".to_string(),
                    subject_regex: Some("<subject>".to_string()),
                    sent_from: None,
                    sent_to: None,
                    ssl_ca_certificate: None,
                    rate_limit: 60.0,
                    $( $field: $default, )*
                }
            }
        }

        impl $name {
            /// The mailbox settings of these parameters.
            pub fn mail_settings(&self) -> Result<crate::bots::collectors::mail::lib::MailSettings, crate::bots::ParamError> {
                crate::bots::collectors::mail::lib::MailSettings::new(
                    &self.mail_host,
                    &self.mail_user,
                    &self.mail_password,
                    self.mail_ssl,
                    self.mail_port,
                    self.mail_starttls,
                    &self.folder,
                    self.subject_regex.as_deref(),
                    self.sent_from.as_deref(),
                    self.sent_to.as_deref(),
                    self.ssl_ca_certificate.as_deref(),
                )
            }
        }
    };
}
pub(crate) use mail_params;

/// Where and what to read.
#[derive(Clone, Debug)]
pub struct MailSettings {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub folder: String,
    pub subject_regex: Option<Regex>,
    pub sent_from: Option<String>,
    pub sent_to: Option<String>,
    pub timeout: Duration,
    /// The encryption, or why TLS cannot be used (no CA certificates on the system).
    pub tls: Result<ImapTls, String>,
}

impl MailSettings {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        host: &str,
        user: &str,
        password: &str,
        ssl: bool,
        port: Option<u16>,
        starttls: bool,
        folder: &str,
        subject_regex: Option<&str>,
        sent_from: Option<&str>,
        sent_to: Option<&str>,
        ca_file: Option<&str>,
    ) -> Result<MailSettings, ParamError> {
        let tls = if ssl || starttls {
            let options = TlsOptions {
                verify: Verify::Full,
                ca_file: ca_file.filter(|f| !f.is_empty()).map(PathBuf::from),
                client_cert: None,
            };
            config_for(&options, "ssl_ca_certificate")?.map(|config| {
                if ssl {
                    ImapTls::Implicit(config)
                } else {
                    ImapTls::StartTls(config)
                }
            })
        } else {
            Ok(ImapTls::Plain)
        };
        if host.is_empty() {
            return Err(ParamError::new("mail_host", "no IMAP server given"));
        }
        for (key, v) in [("mail_user", user), ("mail_password", password), ("folder", folder)] {
            quote(v).map_err(|e| ParamError::new(key, e))?;
        }
        for (key, v) in [("sent_from", sent_from), ("sent_to", sent_to)] {
            if let Some(v) = v {
                quote(v).map_err(|e| ParamError::new(key, e))?;
            }
        }
        let subject_regex = match subject_regex {
            Some(r) => Some(Regex::new(r).map_err(|e| ParamError::new("subject_regex", e.to_string()))?),
            None => None,
        };
        Ok(MailSettings {
            host: host.to_string(),
            port: port.unwrap_or(if ssl { 993 } else { 143 }),
            user: user.to_string(),
            password: password.to_string(),
            folder: folder.to_string(),
            subject_regex,
            sent_from: sent_from.map(str::to_string),
            sent_to: sent_to.map(str::to_string),
            timeout: Duration::from_secs(30),
            tls,
        })
    }
}

/// A mail as the collectors see it (imbox's `message`).
#[derive(Clone, Debug, Default)]
pub struct MailMessage {
    pub uid: u32,
    pub subject: String,
    /// The sender addresses, comma-separated (IntelMQ `','.join(x['email'] for x in sent_from)`).
    pub from: String,
    pub message_id: String,
    pub date: String,
    /// Inline `text/plain` parts.
    pub plain: Vec<String>,
    /// Inline `text/html` parts.
    pub html: Vec<String>,
    /// Attachments with a file name: (file name, decoded content).
    pub attachments: Vec<(String, Vec<u8>)>,
}

impl MailMessage {
    /// Reads a message's MIME structure.
    pub fn parse(uid: u32, data: &[u8]) -> Result<MailMessage, String> {
        use mailparse::MailHeaderMap;
        let mail = mailparse::parse_mail(data).map_err(|e| e.to_string())?;
        let header = |name: &str| mail.headers.get_first_value(name).unwrap_or_default();
        let from = mail
            .headers
            .get_first_header("From")
            .and_then(|h| mailparse::addrparse_header(h).ok())
            .map(|list| {
                list.iter()
                    .flat_map(|a| match a {
                        mailparse::MailAddr::Single(s) => vec![s.addr.clone()],
                        mailparse::MailAddr::Group(g) => g.addrs.iter().map(|s| s.addr.clone()).collect(),
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        let mut msg = MailMessage {
            uid,
            subject: header("Subject"),
            from,
            message_id: header("Message-ID"),
            date: header("Date"),
            ..MailMessage::default()
        };
        for part in mail.parts() {
            let mimetype = part.ctype.mimetype.to_ascii_lowercase();
            if mimetype.starts_with("multipart/") {
                continue;
            }
            let disposition = part.headers.get_first_value("Content-Disposition");
            let inline = disposition.as_deref().is_none_or(|d| d.trim().to_ascii_lowercase().starts_with("inline"));
            if mimetype == "text/plain" && inline {
                msg.plain.push(part.get_body().map_err(|e| e.to_string())?);
            } else if mimetype == "text/html" && inline {
                msg.html.push(part.get_body().map_err(|e| e.to_string())?);
            } else if disposition.is_some() {
                let cd = part.get_content_disposition();
                let name = cd
                    .params
                    .get("filename")
                    .or_else(|| cd.params.get("filename*"))
                    .or_else(|| part.ctype.params.get("name"))
                    .cloned();
                if let Some(name) = name {
                    let name = name.trim_matches('"').to_string();
                    msg.attachments.push((name, part.get_body_raw().map_err(|e| e.to_string())?));
                }
            }
        }
        Ok(msg)
    }

    /// Adds `extra.email_subject`, `extra.email_from`, `extra.email_message_id`, `extra.email_date`.
    pub fn add_extras(&self, report: &mut Message) -> Result<(), BotError> {
        for (key, value) in [
            ("extra.email_subject", &self.subject),
            ("extra.email_from", &self.from),
            ("extra.email_message_id", &self.message_id),
            ("extra.email_date", &self.date),
        ] {
            report.add(key, Value::String(value.clone()))?;
        }
        Ok(())
    }
}

fn imap_error(e: ImapError) -> BotError {
    match e {
        ImapError::Io { .. } => BotError::Unavailable(e.to_string()),
        other => BotError::Transient(other.to_string()),
    }
}

/// The IMAP side of a mail collector: one connection per run, kept until `committed()`.
pub struct Mailbox {
    pub settings: MailSettings,
    conn: Option<Imap>,
    uidvalidity: u32,
    /// Mails used in this run (or used earlier and not yet marked), to mark `\Seen`.
    to_mark: Vec<u32>,
}

impl Mailbox {
    pub fn new(settings: MailSettings) -> Mailbox {
        Mailbox { settings, conn: None, uidvalidity: 0, to_mark: Vec::new() }
    }

    fn state_key(&self, uid: u32) -> Vec<u8> {
        let s = &self.settings;
        format!("mail:{}@{}:{}/{}/{}/{uid}", s.user, s.host, s.port, s.folder, self.uidvalidity).into_bytes()
    }

    fn open(&mut self) -> Result<&mut Imap, BotError> {
        if self.conn.is_none() {
            let s = &self.settings;
            let tls = s.tls.as_ref().map_err(|e| BotError::Fatal(format!("imap server {}:{}: {e}", s.host, s.port)))?;
            let mut imap = Imap::connect(&s.host, s.port, s.timeout, tls).map_err(imap_error)?;
            imap.login(&s.user, &s.password).map_err(imap_error)?;
            self.uidvalidity = imap.select(&s.folder).map_err(imap_error)?;
            self.conn = Some(imap);
        }
        self.conn.as_mut().ok_or_else(|| BotError::Transient("imap connection lost".into()))
    }

    /// The unread mails that pass the filters. Mails recorded as used but not yet marked are not
    /// returned; they are marked after this run's commit.
    pub fn unread(&mut self, ctx: &mut Context<'_>) -> Result<Vec<MailMessage>, BotError> {
        self.to_mark.clear();
        let result = self.unread_inner(ctx);
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    fn unread_inner(&mut self, ctx: &mut Context<'_>) -> Result<Vec<MailMessage>, BotError> {
        let mut criteria = String::from("UNSEEN");
        for (word, v) in [("FROM", &self.settings.sent_from), ("TO", &self.settings.sent_to)] {
            if let Some(v) = v {
                criteria.push_str(&format!(" {word} {}", quote(v).map_err(BotError::Fatal)?));
            }
        }
        let uids = self.open()?.uid_search(&criteria).map_err(imap_error)?;
        let mut mails = Vec::new();
        for uid in uids {
            if ctx.state.get(&self.state_key(uid)).is_some() {
                self.to_mark.push(uid);
                continue;
            }
            let Some(data) = self.open()?.uid_fetch_body(uid).map_err(imap_error)? else {
                continue;
            };
            let mail = match MailMessage::parse(uid, &data) {
                Ok(m) => m,
                Err(e) => {
                    ctx.log.log(Level::Error, &format!("Could not parse mail {uid}, leaving it unread: {e}."));
                    continue;
                }
            };
            if let Some(re) = &self.settings.subject_regex {
                let subject = fold_subject(&mail.subject);
                if !re.is_match(&subject) {
                    ctx.log.log(
                        Level::Debug,
                        &format!(
                            "Message with date {} skipped because subject {:?} does not match.",
                            mail.date, mail.subject
                        ),
                    );
                    continue;
                }
            }
            ctx.log.log(Level::Info, &format!("Processing message {uid}."));
            mails.push(mail);
        }
        Ok(mails)
    }

    /// Records that a mail was used: it is marked `\Seen` once the reports are committed.
    pub fn used(&mut self, ctx: &mut Context<'_>, uid: u32) {
        ctx.state.put(&self.state_key(uid), b"1", None);
        self.to_mark.push(uid);
    }

    /// Marks the used mails `\Seen` (reconnecting once if needed) and logs out.
    pub fn committed(&mut self, ctx: &mut Context<'_>) -> Result<(), BotError> {
        let uids = std::mem::take(&mut self.to_mark);
        let mut failed = None;
        for uid in uids {
            let mut result = self.open().and_then(|c| c.uid_mark_seen(uid).map_err(imap_error));
            if result.is_err() {
                self.conn = None;
                result = self.open().and_then(|c| c.uid_mark_seen(uid).map_err(imap_error));
            }
            match result {
                Ok(()) => {
                    ctx.state.delete(&self.state_key(uid));
                    ctx.log.log(Level::Debug, "Email report read.");
                }
                Err(e) => {
                    self.conn = None;
                    ctx.log.log(
                        Level::Error,
                        &format!("Could not mark mail {uid} as seen, marking it on the next run: {e}."),
                    );
                    failed = Some(e);
                    break;
                }
            }
        }
        if let Some(conn) = self.conn.take() {
            conn.logout();
        }
        failed.map_or(Ok(()), Err)
    }
}

/// IntelMQ's `re.sub(r"\r\n\s", " ", subject)`.
fn fold_subject(subject: &str) -> String {
    let mut out = String::with_capacity(subject.len());
    let mut chars = subject.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' && chars.peek() == Some(&'\n') {
            chars.next();
            if chars.peek().is_some_and(|n| n.is_whitespace()) {
                chars.next();
                out.push(' ');
                continue;
            }
            out.push_str("\r\n");
            continue;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod test_imap {
    //! A small IMAP4rev1 server for the mail collector tests (real sockets, std::net).

    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    use crate::bots::outputs::tls::test_support;

    trait Rw: Read + Write + Send {}
    impl<T: Read + Write + Send> Rw for T {}

    /// The server's TLS: its configuration and whether TLS starts at once (else on STARTTLS).
    type Tls = Option<(Arc<rustls::ServerConfig>, bool)>;

    #[derive(Clone, Debug)]
    pub struct StoredMail {
        pub uid: u32,
        pub data: Vec<u8>,
        pub seen: bool,
    }

    pub struct TestImap {
        pub port: u16,
        pub mails: Arc<Mutex<Vec<StoredMail>>>,
        pub commands: Arc<Mutex<Vec<String>>>,
    }

    impl TestImap {
        pub fn start(mails: Vec<Vec<u8>>) -> TestImap {
            Self::start_with(mails, None)
        }

        /// A server with TLS from the start (`implicit`) or on STARTTLS; also returns the PEM of
        /// its certificate.
        pub fn start_tls(mails: Vec<Vec<u8>>, implicit: bool) -> (TestImap, String) {
            let (pem, config) = test_support::server();
            (Self::start_with(mails, Some((config, implicit))), pem)
        }

        fn start_with(mails: Vec<Vec<u8>>, tls: Tls) -> TestImap {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            let mails = Arc::new(Mutex::new(
                mails
                    .into_iter()
                    .enumerate()
                    .map(|(i, data)| StoredMail { uid: i as u32 + 1, data, seen: false })
                    .collect(),
            ));
            let commands: Arc<Mutex<Vec<String>>> = Arc::default();
            let (m, c) = (mails.clone(), commands.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    let Ok(conn) = conn else { continue };
                    let (m, c, tls) = (m.clone(), c.clone(), tls.clone());
                    std::thread::spawn(move || serve(conn, m, c, tls));
                }
            });
            TestImap { port, mails, commands }
        }

        pub fn seen(&self) -> Vec<u32> {
            self.mails.lock().unwrap().iter().filter(|m| m.seen).map(|m| m.uid).collect()
        }
    }

    fn header_of(data: &[u8], name: &str) -> String {
        let text = String::from_utf8_lossy(data);
        text.lines()
            .take_while(|l| !l.is_empty())
            .find(|l| l.to_ascii_lowercase().starts_with(&format!("{}:", name.to_ascii_lowercase())))
            .map(|l| l[name.len() + 1..].trim().to_string())
            .unwrap_or_default()
    }

    fn serve(
        conn: std::net::TcpStream,
        mails: Arc<Mutex<Vec<StoredMail>>>,
        commands: Arc<Mutex<Vec<String>>>,
        tls: Tls,
    ) {
        let raw = conn.try_clone().unwrap();
        let tls_stream = |sock: &std::net::TcpStream| -> Box<dyn Rw> {
            Box::new(test_support::accept(sock.try_clone().unwrap(), &tls.as_ref().unwrap().0))
        };
        let implicit = tls.as_ref().is_some_and(|t| t.1);
        let mut r: BufReader<Box<dyn Rw>> =
            BufReader::new(if implicit { tls_stream(&raw) } else { Box::new(conn) as Box<dyn Rw> });
        let _ = r.get_mut().write_all(b"* OK test IMAP4rev1 ready\r\n");
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end().to_string();
            commands.lock().unwrap().push(line.clone());
            let (tag, rest) = line.split_once(' ').unwrap_or((&line, ""));
            let upper = rest.to_ascii_uppercase();
            let mut out: Vec<u8> = Vec::new();
            if upper == "STARTTLS" && tls.is_some() {
                let _ = r.get_mut().write_all(format!("{tag} OK begin TLS\r\n").as_bytes());
                r = BufReader::new(tls_stream(&raw));
                continue;
            } else if upper.starts_with("LOGIN") {
                if rest.contains("\"wrong\"") {
                    out.extend(format!("{tag} NO [AUTHENTICATIONFAILED] invalid credentials\r\n").as_bytes());
                } else {
                    out.extend(format!("{tag} OK LOGIN completed\r\n").as_bytes());
                }
            } else if upper.starts_with("SELECT") {
                let n = mails.lock().unwrap().len();
                out.extend(
                    format!(
                        "* {n} EXISTS\r\n* OK [UIDVALIDITY 7] UIDs valid\r\n{tag} OK [READ-WRITE] SELECT completed\r\n"
                    )
                    .as_bytes(),
                );
            } else if upper.starts_with("UID SEARCH") {
                let quoted: Vec<String> = rest.split('"').skip(1).step_by(2).map(str::to_string).collect();
                let mut q = quoted.into_iter();
                let from = if upper.contains(" FROM ") { q.next() } else { None };
                let to = if upper.contains(" TO ") { q.next() } else { None };
                let uids: Vec<String> = mails
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|m| !m.seen)
                    .filter(|m| from.as_ref().is_none_or(|f| header_of(&m.data, "From").contains(f.as_str())))
                    .filter(|m| to.as_ref().is_none_or(|t| header_of(&m.data, "To").contains(t.as_str())))
                    .map(|m| m.uid.to_string())
                    .collect();
                out.extend(format!("* SEARCH {}\r\n{tag} OK SEARCH completed\r\n", uids.join(" ")).as_bytes());
            } else if upper.starts_with("UID FETCH") {
                let uid: u32 = rest.split_whitespace().nth(2).and_then(|u| u.parse().ok()).unwrap_or(0);
                let mails = mails.lock().unwrap();
                if let Some((i, m)) = mails.iter().enumerate().find(|(_, m)| m.uid == uid) {
                    out.extend(format!("* {} FETCH (UID {uid} BODY[] {{{}}}\r\n", i + 1, m.data.len()).as_bytes());
                    out.extend(&m.data);
                    out.extend(b")\r\n");
                }
                out.extend(format!("{tag} OK FETCH completed\r\n").as_bytes());
            } else if upper.starts_with("UID STORE") {
                let uid: u32 = rest.split_whitespace().nth(2).and_then(|u| u.parse().ok()).unwrap_or(0);
                let mut mails = mails.lock().unwrap();
                if let Some(m) = mails.iter_mut().find(|m| m.uid == uid) {
                    m.seen = true;
                    out.extend(format!("* {uid} FETCH (FLAGS (\\Seen))\r\n").as_bytes());
                }
                out.extend(format!("{tag} OK STORE completed\r\n").as_bytes());
            } else if upper.starts_with("LOGOUT") {
                let bye = format!("* BYE logging out\r\n{tag} OK LOGOUT completed\r\n");
                let _ = r.get_mut().write_all(bye.as_bytes());
                return;
            } else {
                out.extend(format!("{tag} BAD unknown command\r\n").as_bytes());
            }
            if r.get_mut().write_all(&out).and_then(|()| r.get_mut().flush()).is_err() {
                return;
            }
        }
    }

    /// A mail with a CSV (or any) attachment, base64-encoded.
    pub fn mail_with_attachment(subject: &str, from: &str, filename: &str, content: &[u8]) -> Vec<u8> {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(content);
        format!(
            "From: Feed <{from}>\r\nTo: cert@example.org\r\nSubject: {subject}\r\nMessage-ID: <{filename}@example.org>\r\n\
             Date: Mon, 01 Jan 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"BOUND\"\r\n\r\n\
             --BOUND\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee attachment. http://example.com/not-this\r\n\
             --BOUND\r\nContent-Type: application/octet-stream; name=\"{filename}\"\r\n\
             Content-Disposition: attachment; filename=\"{filename}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n\
             --BOUND--\r\n"
        )
        .into_bytes()
    }

    /// A text mail with a plain and an HTML body.
    pub fn text_mail(subject: &str, plain: &str, html: &str) -> Vec<u8> {
        format!(
            "From: \"Reporter\" <reports@example.net>, other@example.net\r\nTo: cert@example.org\r\nSubject: {subject}\r\n\
             Message-ID: <text@example.net>\r\nDate: Tue, 02 Jan 2024 11:00:00 +0000\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/alternative; boundary=\"ALT\"\r\n\r\n\
             --ALT\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{plain}\r\n\
             --ALT\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--ALT--\r\n"
        )
        .into_bytes()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::test_imap::*;
    use super::*;
    use crate::bots::outputs::tls::test_support;

    #[test]
    fn mime_parts_are_read_like_imbox() {
        let m = MailMessage::parse(
            3,
            &mail_with_attachment("Report =?utf-8?q?f=C3=BCr?= you", "feed@example.com", "a.csv", b"x,y\n"),
        )
        .unwrap();
        assert_eq!(m.subject, "Report für you");
        assert_eq!(m.from, "feed@example.com");
        assert_eq!(m.message_id, "<a.csv@example.org>");
        assert_eq!(m.date, "Mon, 01 Jan 2024 10:00:00 +0000");
        assert_eq!(m.plain.len(), 1);
        assert_eq!(m.attachments, vec![("a.csv".to_string(), b"x,y\n".to_vec())]);
        let t = MailMessage::parse(1, &text_mail("s", "plain text", "<p>html</p>")).unwrap();
        assert_eq!(t.from, "reports@example.net,other@example.net");
        assert_eq!(t.plain, vec!["plain text"]);
        assert_eq!(t.html, vec!["<p>html</p>"]);
        assert!(t.attachments.is_empty());
    }

    #[test]
    fn subject_folding_matches_intelmq() {
        assert_eq!(fold_subject("a\r\n b"), "a b");
        assert_eq!(fold_subject("plain"), "plain");
    }

    /// Logs in over `tls` and reads the unread UIDs.
    fn unread_over(port: u16, tls: &ImapTls) -> Result<(bool, Vec<u32>), ImapError> {
        let mut imap = Imap::connect("127.0.0.1", port, Duration::from_secs(5), tls)?;
        imap.login("user", "secret")?;
        imap.select("INBOX")?;
        let uids = imap.uid_search("UNSEEN")?;
        let encrypted = imap.is_tls();
        imap.logout();
        Ok((encrypted, uids))
    }

    #[test]
    fn imaps_and_starttls_verify_the_server_against_the_ca_file() {
        let dir = tempfile::tempdir().unwrap();
        for implicit in [true, false] {
            let (server, pem) =
                TestImap::start_tls(vec![mail_with_attachment("one", "a@example.com", "1.csv", b"1")], implicit);
            let ca = dir.path().join("ca.pem");
            // The TLS settings of a mailbox trusting the certificate `pem` only.
            let trusting = |pem: &str| {
                std::fs::write(&ca, pem).unwrap();
                let (port, ca) = (Some(server.port), ca.to_str());
                let s =
                    MailSettings::new("127.0.0.1", "u", "p", implicit, port, !implicit, "INBOX", None, None, None, ca);
                s.unwrap().tls.unwrap()
            };
            assert_eq!(unread_over(server.port, &trusting(&pem)).unwrap(), (true, vec![1]), "implicit: {implicit}");
            let logins = server.commands.lock().unwrap().iter().filter(|c| c.contains("LOGIN")).count();
            assert_eq!(logins, 1);
            // A certificate the CA file does not hold is refused.
            let err = unread_over(server.port, &trusting(&test_support::server().0)).unwrap_err();
            assert!(matches!(&err, ImapError::Io { reason, .. } if reason.contains("TLS handshake")), "{err}");
        }
    }

    #[test]
    fn imap_client_searches_fetches_and_marks() {
        let server = TestImap::start(vec![
            mail_with_attachment("one", "a@example.com", "1.csv", b"1"),
            mail_with_attachment("two", "b@example.com", "2.csv", b"2"),
        ]);
        let mut imap = Imap::connect("127.0.0.1", server.port, Duration::from_secs(5), &ImapTls::Plain).unwrap();
        imap.login("user", "pa\"ss").unwrap();
        assert_eq!(imap.select("INBOX").unwrap(), 7);
        assert_eq!(imap.uid_search("UNSEEN").unwrap(), vec![1, 2]);
        assert_eq!(imap.uid_search("UNSEEN FROM \"b@example.com\"").unwrap(), vec![2]);
        let body = imap.uid_fetch_body(2).unwrap().unwrap();
        assert!(String::from_utf8_lossy(&body).contains("Subject: two"));
        imap.uid_mark_seen(2).unwrap();
        assert_eq!(imap.uid_search("UNSEEN").unwrap(), vec![1]);
        imap.logout();
        assert!(server.commands.lock().unwrap().iter().any(|c| c.contains("LOGIN \"user\" \"pa\\\"ss\"")));
        let mut bad = Imap::connect("127.0.0.1", server.port, Duration::from_secs(5), &ImapTls::Plain).unwrap();
        assert!(matches!(bad.login("u", "wrong"), Err(ImapError::Refused { .. })));
    }
}
