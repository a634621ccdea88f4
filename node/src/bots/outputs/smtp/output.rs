//! `intelmq.bots.outputs.smtp.output`: one mail per event, as IntelMQ's SMTP output builds it: a
//! `multipart/mixed` message with `Subject`, `From` and `To` from the `subject`, `mail_from` and
//! `mail_to` templates (`{ev[<field>]}`, a missing field renders `None`), the `text` template as a
//! text part (unless `text` is null) and, when `fieldnames` is set, an `events.csv` attachment
//! (header line and the event's values, `;`-separated, minimal quoting). The envelope sender is
//! `mail_from` as configured; the recipients are the rendered `mail_to` split at commas.
//!
//! The mails of a batch go over one SMTP connection (see [`super::client`] for the protocol, TLS
//! and what answers mean). `write` returns when the server accepted every mail; mails accepted
//! before a failure are remembered and not sent again when the runtime retries the batch.
//! `smtp_host` "" means localhost.

use serde::{Deserialize, Serialize};

use super::client::{Mail, Session, SmtpServer};
use super::mime;
use crate::bots::outputs::delivered::Delivered;
use crate::bots::outputs::tcp::support::{de, hostname, EvTemplate};
use crate::bots::outputs::tls::VerifyCert;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, Level, OutputBot, ParamError};
use crate::message::wire::python_str;
use crate::message::Message;

/// IntelMQ's default `text` (its code writes `\n` as a literal backslash and `n`).
const DEFAULT_TEXT: &str = "Dear network owner,\\n\\nWe have been informed that the following device might have security problems.\\n\\nYour localhost CERT";

/// Parameters of the SMTP output (IntelMQ's names and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpOutputParams {
    /// The CSV columns (list or comma-separated); null or empty: no attachment; default
    /// "classification.taxonomy,classification.type,classification.identifier,source.ip,source.asn,source.port".
    #[serde(deserialize_with = "de::opt_list", serialize_with = "de::ser_list_as_text")]
    pub fieldnames: Option<Vec<String>>,
    /// Sender template; default "cert@localhost".
    #[serde(deserialize_with = "de::string")]
    pub mail_from: String,
    /// Recipients template (comma-separated); default "{ev[source.abuse_contact]}".
    #[serde(deserialize_with = "de::string")]
    pub mail_to: String,
    /// SMTP server; default "localhost".
    #[serde(deserialize_with = "de::string")]
    pub smtp_host: String,
    /// SMTP password; default null.
    #[serde(deserialize_with = "de::opt_string")]
    pub smtp_password: Option<String>,
    /// SMTP port; default 25.
    #[serde(deserialize_with = "de::port")]
    pub smtp_port: u16,
    /// SMTP user; default null.
    #[serde(deserialize_with = "de::opt_string")]
    pub smtp_username: Option<String>,
    /// SMTPS (TLS from the start); default false.
    #[serde(deserialize_with = "de::bool")]
    pub ssl: bool,
    /// Use STARTTLS (see the client module: absent STARTTLS sends in clear text); default true.
    #[serde(deserialize_with = "de::bool")]
    pub starttls: bool,
    /// Subject template; default "Incident in your AS {ev[source.asn]}".
    #[serde(deserialize_with = "de::string")]
    pub subject: String,
    /// Text template; null: no text part; default a greeting (IntelMQ's, with literal `\n`).
    #[serde(deserialize_with = "de::opt_string")]
    pub text: Option<String>,
    /// Verify the server's TLS certificate against the system's CAs (true), a CA file (its
    /// path) or not at all (false); default true.
    pub http_verify_cert: VerifyCert,
}

impl Default for SmtpOutputParams {
    fn default() -> Self {
        SmtpOutputParams {
            fieldnames: Some(
                "classification.taxonomy,classification.type,classification.identifier,source.ip,source.asn,source.port"
                    .split(',')
                    .map(str::to_string)
                    .collect(),
            ),
            mail_from: "cert@localhost".to_string(),
            mail_to: "{ev[source.abuse_contact]}".to_string(),
            smtp_host: "localhost".to_string(),
            smtp_password: None,
            smtp_port: 25,
            smtp_username: None,
            ssl: false,
            starttls: true,
            subject: "Incident in your AS {ev[source.asn]}".to_string(),
            text: Some(DEFAULT_TEXT.to_string()),
            http_verify_cert: VerifyCert::Yes,
        }
    }
}

/// Mails each event with a CSV attachment.
pub struct SmtpOutputBot {
    server: SmtpServer,
    mail_from: String,
    from: EvTemplate,
    to: EvTemplate,
    subject: EvTemplate,
    text: Option<EvTemplate>,
    fieldnames: Vec<String>,
    helo: String,
    delivered: Delivered,
}

impl BuildBot for SmtpOutputBot {
    type Params = SmtpOutputParams;

    fn build(params: SmtpOutputParams) -> Result<Self, ParamError> {
        let tls = SmtpServer::tls_config(params.ssl, params.starttls, &params.http_verify_cert, "http_verify_cert")?;
        let t = |key: &str, text: &str| EvTemplate::parse(text).map_err(|e| ParamError::new(key, e));
        Ok(SmtpOutputBot {
            server: SmtpServer {
                host: params.smtp_host.clone(),
                port: params.smtp_port,
                ssl: params.ssl,
                starttls: params.starttls,
                username: params.smtp_username.clone(),
                password: params.smtp_password.clone(),
                tls,
            },
            mail_from: params.mail_from.clone(),
            from: t("mail_from", &params.mail_from)?,
            to: t("mail_to", &params.mail_to)?,
            subject: t("subject", &params.subject)?,
            text: params.text.as_deref().map(|x| t("text", x)).transpose()?,
            fieldnames: params.fieldnames.unwrap_or_default().into_iter().filter(|f| !f.is_empty()).collect(),
            helo: hostname(),
            delivered: Delivered::default(),
        })
    }
}

/// The `events.csv` content: header and one row (Python's `csv.DictWriter`, `;`, minimal quoting,
/// "\n" line ends, missing fields empty).
pub fn csv_attachment(fieldnames: &[String], event: &Message) -> Result<String, BotError> {
    let mut w = csv::WriterBuilder::new()
        .delimiter(b';')
        .terminator(csv::Terminator::Any(b'\n'))
        .quote_style(csv::QuoteStyle::Necessary)
        .from_writer(Vec::new());
    let err = |e: csv::Error| BotError::Transient(format!("cannot write the CSV attachment: {e}"));
    w.write_record(fieldnames).map_err(err)?;
    let row: Vec<String> = fieldnames.iter().map(|f| event.get(f).map(python_str).unwrap_or_default()).collect();
    w.write_record(&row).map_err(err)?;
    let bytes = w.into_inner().map_err(|e| BotError::Transient(format!("cannot write the CSV attachment: {e}")))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

impl SmtpOutputBot {
    /// The mail for one event.
    pub fn mail(&self, event: &Message) -> Result<Mail, BotError> {
        let to = self.to.render(event);
        let mut parts = Vec::new();
        if let Some(text) = &self.text {
            parts.push(mime::mime_text(&text.render(event), "plain"));
        }
        if !self.fieldnames.is_empty() {
            let csv = csv_attachment(&self.fieldnames, event)?;
            parts.push(mime::with_attachment_name(mime::mime_text(&csv, "csv"), "events.csv"));
        }
        let top = vec![
            ("Content-Type".to_string(), String::new()),
            ("MIME-Version".to_string(), "1.0".to_string()),
            ("Subject".to_string(), self.subject.render(event)),
            ("From".to_string(), self.from.render(event)),
            ("To".to_string(), to.clone()),
        ];
        Ok(Mail {
            from: self.mail_from.clone(),
            to: to.split(',').map(str::to_string).collect(),
            data: mime::multipart(&top, &parts),
        })
    }
}

impl OutputBot for SmtpOutputBot {
    fn write(&mut self, events: &[Message], ctx: &mut Context<'_>) -> Result<(), BotError> {
        let pending = self.delivered.undelivered(events);
        if pending.is_empty() {
            self.delivered.acknowledged(events);
            return Ok(());
        }
        let mails = pending.iter().map(|e| self.mail(e)).collect::<Result<Vec<_>, _>>()?;
        let mut session = Session::open(&self.server, &self.helo, &mut *ctx.log)?;
        for (i, mail) in mails.iter().enumerate() {
            ctx.log.log(Level::Debug, &format!("Sending mail to {:?}.", mail.to));
            if let Err(e) = session.send(mail, &mut *ctx.log) {
                self.delivered.record_all(pending[..i].iter().copied());
                return Err(e.into());
            }
        }
        session.quit();
        self.delivered.acknowledged(events);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::super::client::tests::smtp_server;
    use super::*;
    use crate::bots::outputs::test_support::{event, harmonization};
    use crate::bots::{MemoryLog, MemoryState};

    fn bot(params: serde_json::Value) -> SmtpOutputBot {
        SmtpOutputBot::build(serde_json::from_value(params).unwrap()).unwrap()
    }

    #[test]
    fn mails_each_event_with_subject_text_and_csv() {
        let (port, rx) = smtp_server(&["AUTH PLAIN"], 250);
        let h = harmonization();
        let mut bot = bot(json!({"fieldnames": "source.ip,time.source,source.url", "smtp_host": "127.0.0.1",
            "smtp_port": port, "text": "foobar {ev[source.ip]}", "subject": "type: {ev[classification.type]}",
            "mail_from": "myself", "mail_to": "{ev[source.abuse_contact]}", "starttls": false}));
        let ev = event(
            &h,
            json!({"source.ip": "127.0.0.1", "source.url": "http://example.com/;x", "source.abuse_contact": "one@example.com,two@example.com"}),
        );
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let mut ctx = Context::new("s", &h, std::path::Path::new("/"), &mut state, &mut log);
        bot.write(&[ev], &mut ctx).unwrap();
        let got = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(got.from, "myself");
        assert_eq!(got.to, vec!["one@example.com", "two@example.com"]);
        assert!(got.data.contains("Subject: type: None\r\n"), "{}", got.data);
        assert!(got.data.contains("To: one@example.com,two@example.com\r\n"));
        assert!(got.data.contains("\r\n\r\nfoobar 127.0.0.1\r\n--"));
        assert!(got.data.contains("Content-Disposition: attachment; filename=\"events.csv\"\r\n\r\nsource.ip;time.source;source.url\r\n127.0.0.1;;\"http://example.com/;x\"\r\n\r\n--"), "{}", got.data);
    }

    #[test]
    fn no_fieldnames_means_no_attachment_and_a_bad_ca_file_is_named() {
        let h = harmonization();
        let bot = bot(json!({"fieldnames": null, "text": "t", "mail_to": "a"}));
        let mail = bot.mail(&event(&h, json!({}))).unwrap();
        assert!(!mail.data.contains("events.csv"));
        let p = SmtpOutputParams {
            ssl: true,
            http_verify_cert: VerifyCert::CaFile("/nonexistent.pem".into()),
            ..Default::default()
        };
        let err = SmtpOutputBot::build(p).err().unwrap();
        assert_eq!(err.key, "http_verify_cert");
        assert!(err.reason.contains("/nonexistent.pem"), "{err}");
    }

    #[test]
    fn defaults_are_intelmqs() {
        let d = serde_json::to_value(SmtpOutputParams::default()).unwrap();
        assert_eq!(d["mail_to"], json!("{ev[source.abuse_contact]}"));
        assert_eq!(d["starttls"], json!(true));
        assert_eq!(d["smtp_port"], json!(25));
        assert_eq!(d["fieldnames"], json!("classification.taxonomy,classification.type,classification.identifier,source.ip,source.asn,source.port"));
    }
}
