//! `intelmq.bots.collectors.mail.collector_mail_body`: unread mails (see [`super::lib`]); every
//! non-empty inline body whose content type is in `content_types` (`plain`, `html`) becomes a
//! Report with `raw` = the body and the `extra.email_*` fields. A mail that gave a report is
//! marked `\Seen` after the commit.

use serde_json::Value;

use super::lib::{mail_params, Mailbox};
use crate::bots::collectors::http::mixin::{self, de, VerifyCert};
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, CollectorBot, CollectorOutput, Context, Level, ParamError};

mail_params! {
    /// Parameters of the mail body collector (IntelMQ's names and defaults).
    pub struct MailBodyCollectorParams {
        /// `content_types`: body types to collect, `plain` and/or `html` (true/false/null = both; list or comma string); default ["plain", "html"].
        pub content_types: Value = serde_json::json!(["plain", "html"]),
        /// `http_verify_cert`: accepted (the IMAP server's certificate is checked against
        /// `ssl_ca_certificate` or the system's CAs); default true.
        pub http_verify_cert: VerifyCert = VerifyCert::Bool(true),
    }
}

/// Collects mail bodies.
pub struct MailBodyCollectorBot {
    mailbox: Mailbox,
    content_types: Vec<String>,
}

/// `content_types` as IntelMQ reads it.
fn content_types(v: &Value) -> Result<Vec<String>, ParamError> {
    let both = || vec!["plain".to_string(), "html".to_string()];
    let types = match v {
        Value::Null | Value::Bool(_) => both(),
        other => de::list_of(other)
            .ok_or_else(|| ParamError::new("content_types", format!("expected a list, got {other}")))?,
    };
    let types = if types.is_empty() { both() } else { types };
    for t in &types {
        if t != "plain" && t != "html" {
            return Err(ParamError::new("content_types", format!("unknown content type `{t}` (plain or html)")));
        }
    }
    Ok(types)
}

impl BuildBot for MailBodyCollectorBot {
    type Params = MailBodyCollectorParams;

    fn build(params: MailBodyCollectorParams) -> Result<Self, ParamError> {
        let settings = params.mail_settings()?;
        Ok(MailBodyCollectorBot {
            mailbox: Mailbox::new(settings),
            content_types: content_types(&params.content_types)?,
        })
    }
}

impl CollectorBot for MailBodyCollectorBot {
    fn collect(&mut self, ctx: &mut Context<'_>, out: &mut CollectorOutput) -> Result<(), BotError> {
        for mail in self.mailbox.unread(ctx)? {
            let mut used = false;
            for t in &self.content_types {
                let bodies = if t == "plain" { &mail.plain } else { &mail.html };
                for body in bodies.iter().filter(|b| !b.is_empty()) {
                    let mut report = mixin::raw_report(ctx, body.as_bytes())?;
                    mail.add_extras(&mut report)?;
                    out.send(report);
                    used = true;
                }
            }
            if used {
                self.mailbox.used(ctx, mail.uid);
                ctx.log.log(Level::Info, "Email report read.");
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

    use super::super::lib::test_imap::{text_mail, TestImap};
    use super::*;
    use crate::bots::collectors::http::mixin::test_server::{collect, committed, params, raw};
    use crate::bots::MemoryState;

    #[test]
    fn plain_and_html_bodies_become_reports() {
        let server = TestImap::start(vec![text_mail("Alert", "1.2.3.4 is bad", "<b>1.2.3.4</b>")]);
        let mut b = MailBodyCollectorBot::build(params(json!({
            "mail_host": "127.0.0.1", "mail_port": server.port.to_string(), "mail_ssl": "false", "subject_regex": null
        })))
        .unwrap();
        let mut state = MemoryState::default();
        let (r, reports, _) = collect(&mut b, &mut state);
        r.unwrap();
        assert_eq!(reports.iter().map(raw).collect::<Vec<_>>(), vec!["1.2.3.4 is bad", "<b>1.2.3.4</b>"]);
        assert_eq!(reports[0].get_str("extra.email_from"), Some("reports@example.net,other@example.net"));
        committed(&mut b, &mut state).unwrap();
        assert_eq!(server.seen(), vec![1]);
    }

    #[test]
    fn content_types_select_and_validate() {
        assert_eq!(content_types(&json!("html")).unwrap(), vec!["html"]);
        assert_eq!(content_types(&json!(true)).unwrap(), vec!["plain", "html"]);
        assert!(content_types(&json!(["pdf"])).is_err());
        let server = TestImap::start(vec![text_mail("Alert", "plain", "<i>html</i>")]);
        let mut b = MailBodyCollectorBot::build(params(json!({
            "mail_host": "127.0.0.1", "mail_port": server.port, "mail_ssl": false, "subject_regex": "Al",
            "content_types": "html"
        })))
        .unwrap();
        let (_, reports, _) = collect(&mut b, &mut MemoryState::default());
        assert_eq!(reports.iter().map(raw).collect::<Vec<_>>(), vec!["<i>html</i>"]);
    }
}
