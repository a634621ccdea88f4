//! `intelmq.bots.collectors.mail.collector_mail_attach`: unread mails (see [`super::lib`]); every
//! attachment whose file name matches `attach_regex` (a search) becomes a Report, unpacked into
//! one report per file with `extract_files`; each report has `extra.file_name` (the file in the
//! archive, or the attachment's name) and the `extra.email_*` fields. A mail with a matching
//! attachment is marked `\Seen` after the commit; others stay unread for other collectors.
//! An attachment that cannot be unpacked is logged and its mail left unread.

use super::lib::{mail_params, MailMessage, Mailbox};
use crate::bots::collectors::http::mixin::{self, de, ExtractFiles, VerifyCert};
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, CollectorBot, CollectorOutput, Context, Level, ParamError};
use crate::message::Message;

mail_params! {
    /// Parameters of the mail attachment collector (IntelMQ's names and defaults).
    pub struct MailAttachCollectorParams {
        /// `attach_regex`: attachments whose file name matches (a search) are collected; default "csv.zip".
        #[serde(deserialize_with = "de::string")]
        pub attach_regex: String = "csv.zip".to_string(),
        /// `extract_files`: unpack the attachments (true, or the file names to take); default true.
        pub extract_files: ExtractFiles = ExtractFiles::All,
        /// `attach_unzip`: deprecated form of `extract_files` (used when set); default null.
        #[serde(deserialize_with = "de::opt_string")]
        pub attach_unzip: Option<String> = None,
        /// `http_verify_cert`: check the IMAP server's certificate (no TLS here); default true.
        pub http_verify_cert: VerifyCert = VerifyCert::Bool(true),
    }
}

/// Collects mail attachments.
pub struct MailAttachCollectorBot {
    mailbox: Mailbox,
    attach_regex: regex::Regex,
    extract: ExtractFiles,
}

impl BuildBot for MailAttachCollectorBot {
    type Params = MailAttachCollectorParams;

    fn build(params: MailAttachCollectorParams) -> Result<Self, ParamError> {
        let settings = params.mail_settings()?;
        let attach_regex =
            regex::Regex::new(&params.attach_regex).map_err(|e| ParamError::new("attach_regex", e.to_string()))?;
        let extract = match &params.attach_unzip {
            Some(v) => ExtractFiles::from_value(&serde_json::Value::String(v.clone()))
                .map_err(|e| ParamError::new("attach_unzip", e))?,
            None => params.extract_files.clone(),
        };
        Ok(MailAttachCollectorBot { mailbox: Mailbox::new(settings), attach_regex, extract })
    }
}

impl MailAttachCollectorBot {
    /// The reports of one mail; empty when no attachment matches.
    fn reports_of(&self, ctx: &mut Context<'_>, mail: &MailMessage) -> Result<Vec<Message>, BotError> {
        let mut reports = Vec::new();
        for (filename, content) in &mail.attachments {
            if !self.attach_regex.is_match(filename) {
                continue;
            }
            ctx.log.log(Level::Debug, &format!("Found attachment {filename}."));
            let files = if self.extract.is_on() {
                mixin::unzip(content, &self.extract, true, true, true)
                    .map_err(|e| BotError::Invalid(format!("attachment {filename}: {e}")))?
            } else {
                vec![(Some(filename.clone()), content.clone())]
            };
            for (name, data) in files {
                let mut report = mixin::raw_report(ctx, &data)?;
                if let Some(name) = name {
                    report.add("extra.file_name", name)?;
                }
                mail.add_extras(&mut report)?;
                reports.push(report);
            }
        }
        Ok(reports)
    }
}

impl CollectorBot for MailAttachCollectorBot {
    fn collect(&mut self, ctx: &mut Context<'_>, out: &mut CollectorOutput) -> Result<(), BotError> {
        for mail in self.mailbox.unread(ctx)? {
            match self.reports_of(ctx, &mail) {
                Ok(reports) if reports.is_empty() => {
                    ctx.log.log(
                        Level::Debug,
                        &format!("Mail {} has no matching attachment, leaving it unread.", mail.uid),
                    );
                }
                Ok(reports) => {
                    for r in reports {
                        out.send(r);
                    }
                    self.mailbox.used(ctx, mail.uid);
                    ctx.log.log(Level::Info, "Email report read.");
                }
                Err(e) => ctx.log.log(Level::Error, &format!("Mail {} left unread: {e}.", mail.uid)),
            }
        }
        Ok(())
    }

    fn committed(&mut self, ctx: &mut Context<'_>) -> Result<(), BotError> {
        self.mailbox.committed(ctx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::super::lib::test_imap::{mail_with_attachment, TestImap};
    use super::*;
    use crate::bots::collectors::http::mixin::test_server::{collect, committed, params, raw, zip_of};
    use crate::bots::MemoryState;

    fn bot(port: u16, extra: serde_json::Value) -> MailAttachCollectorBot {
        let mut p = json!({
            "mail_host": "127.0.0.1", "mail_port": port, "mail_user": "u", "mail_password": "p",
            "mail_ssl": false, "subject_regex": "^Daily"
        });
        for (k, v) in extra.as_object().unwrap() {
            p[k] = v.clone();
        }
        MailAttachCollectorBot::build(params(p)).unwrap()
    }

    #[test]
    fn zipped_attachments_are_unpacked_with_email_extras_and_marked_after_commit() {
        let zip = zip_of(&[("report.csv", b"ip\n1.2.3.4\n")]);
        let server = TestImap::start(vec![
            mail_with_attachment("Daily report", "feed@example.com", "report.csv.zip", &zip),
            mail_with_attachment("Other subject", "feed@example.com", "x.csv.zip", &zip),
            mail_with_attachment("Daily without zip", "feed@example.com", "notes.txt", b"hello"),
        ]);
        let mut b = bot(server.port, json!({}));
        let mut state = MemoryState::default();
        let (r, reports, _) = collect(&mut b, &mut state);
        r.unwrap();
        assert_eq!(reports.len(), 1);
        let rep = &reports[0];
        assert_eq!(raw(rep), "ip\n1.2.3.4\n");
        assert_eq!(rep.get_str("extra.file_name"), Some("report.csv"));
        assert_eq!(rep.get_str("extra.email_subject"), Some("Daily report"));
        assert_eq!(rep.get_str("extra.email_from"), Some("feed@example.com"));
        assert_eq!(rep.get_str("extra.email_message_id"), Some("<report.csv.zip@example.org>"));
        assert_eq!(rep.get_str("extra.email_date"), Some("Mon, 01 Jan 2024 10:00:00 +0000"));
        assert!(server.seen().is_empty(), "not marked before the commit");
        committed(&mut b, &mut state).unwrap();
        assert_eq!(server.seen(), vec![1]);
        assert!(state.entries.is_empty());
        let (r, reports, _) = collect(&mut b, &mut state);
        r.unwrap();
        assert!(reports.is_empty());
        let cmds = server.commands.lock().unwrap().clone();
        assert!(cmds.iter().any(|c| c.ends_with("UID FETCH 1 (BODY.PEEK[])")));
    }

    #[test]
    fn without_extraction_the_attachment_is_the_report_and_sent_from_filters() {
        let server = TestImap::start(vec![
            mail_with_attachment("Daily a", "a@example.com", "a.csv", b"a\n"),
            mail_with_attachment("Daily b", "b@example.com", "b.csv", b"b\n"),
        ]);
        let mut b =
            bot(server.port, json!({"attach_regex": "\\.csv$", "extract_files": false, "sent_from": "b@example.com"}));
        let (r, reports, _) = collect(&mut b, &mut MemoryState::default());
        r.unwrap();
        assert_eq!(reports.len(), 1);
        assert_eq!(raw(&reports[0]), "b\n");
        assert_eq!(reports[0].get_str("extra.file_name"), Some("b.csv"));
    }

    #[test]
    fn a_mail_used_before_a_crash_is_marked_without_being_emitted_again() {
        let server = TestImap::start(vec![mail_with_attachment("Daily", "f@example.com", "r.csv", b"x\n")]);
        let mut b = bot(server.port, json!({"attach_regex": "csv", "extract_files": false}));
        let mut state = MemoryState::default();
        let (_, reports, _) = collect(&mut b, &mut state);
        assert_eq!(reports.len(), 1);
        // Crash before committed(): a new bot on the committed state.
        let mut b = bot(server.port, json!({"attach_regex": "csv", "extract_files": false}));
        let (r, reports, _) = collect(&mut b, &mut state);
        r.unwrap();
        assert!(reports.is_empty());
        committed(&mut b, &mut state).unwrap();
        assert_eq!(server.seen(), vec![1]);
    }

    #[test]
    fn unreachable_server_is_unavailable_and_tls_is_the_default() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut b = bot(port, json!({}));
        assert!(matches!(collect(&mut b, &mut MemoryState::default()).0, Err(BotError::Unavailable(_))));
        let b = MailAttachCollectorBot::build(MailAttachCollectorParams::default()).ok().unwrap();
        assert_eq!(b.mailbox.settings.port, 993, "IMAPS");
        let p =
            MailAttachCollectorParams { ssl_ca_certificate: Some("/nonexistent/ca.pem".into()), ..Default::default() };
        let err = MailAttachCollectorBot::build(p).err().unwrap();
        assert_eq!(err.key, "ssl_ca_certificate");
        assert!(err.reason.contains("/nonexistent/ca.pem"), "{err}");
    }
}
