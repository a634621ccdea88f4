//! `intelmq.bots.outputs.templated_smtp.output`: one mail per event, every part a Jinja2 template
//! rendered with the event as `event` (flat dotted keys, in the event's order): `subject`,
//! `mail_from`, `mail_to` (comma-separated), `body` (an inline `text/plain; charset="utf-8"` part)
//! and `attachments` (a list of `{content-type, text, name}`, each a base64 attachment; an entry
//! lacking a key is ignored with an error log line at start, as IntelMQ). Templates can call
//! `from_json(text)` (parse JSON) and `joiner(sep)` (Jinja2's), and the common Python string and
//! dict methods (`startswith`, `items()` ...). Rendering uses minijinja: no auto-escaping, the
//! final newline of a template is dropped, a missing key renders empty (as Jinja2); booleans render
//! `true`/`false` where Python writes `True`/`False`.
//!
//! The mail is laid out as Python's `EmailMessage` does (see [`crate::bots::outputs::smtp::mime`]):
//! headers Subject, From, To, then the parts. The envelope sender is the rendered `From`, the
//! recipients the rendered `To` split at commas and trimmed; the `To` header lists them joined with
//! ", ". Sending, TLS and retries as the SMTP output ([`crate::bots::outputs::smtp::client`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use minijinja::value::{Object, ValueKind};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, State};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bots::outputs::delivered::Delivered;
use crate::bots::outputs::smtp::client::{Mail, Session, SmtpServer};
use crate::bots::outputs::smtp::mime;
use crate::bots::outputs::tcp::support::{de, hostname};
use crate::bots::outputs::tls::VerifyCert;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, Level, OutputBot, ParamError};
use crate::message::Message;

/// IntelMQ's default body: every field except `raw`, one `field: value` line each.
const DEFAULT_BODY: &str = "{%- for field in event %}\n    {%- if field != 'raw' %}\n{{ field }}: {{ event[field] }}\n    {%- endif %}\n{%- endfor %}\n";

/// Parameters of the templated SMTP output (IntelMQ's names and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TemplatedSmtpOutputParams {
    /// SMTP server; default "localhost".
    #[serde(deserialize_with = "de::string")]
    pub smtp_host: String,
    /// SMTP port; default 25.
    #[serde(deserialize_with = "de::port")]
    pub smtp_port: u16,
    /// SMTPS (TLS from the start); default false.
    #[serde(deserialize_with = "de::bool")]
    pub ssl: bool,
    /// Use STARTTLS; default false.
    #[serde(deserialize_with = "de::bool")]
    pub starttls: bool,
    /// SMTP user (with `password`); default null.
    #[serde(deserialize_with = "de::opt_string")]
    pub username: Option<String>,
    /// SMTP password (with `username`); default null.
    #[serde(deserialize_with = "de::opt_string")]
    pub password: Option<String>,
    /// Verify the server's TLS certificate against the system's CAs (true), not at all (false),
    /// or (beyond IntelMQ) against a CA file given by its path; default true.
    pub verify_cert: VerifyCert,
    /// Attachments `{content-type, text, name}`, all templates; default [].
    pub attachments: Vec<Value>,
    /// Sender template; default null (required).
    #[serde(deserialize_with = "de::opt_string")]
    pub mail_from: Option<String>,
    /// Recipients template (comma-separated); default null (required).
    #[serde(deserialize_with = "de::opt_string")]
    pub mail_to: Option<String>,
    /// Subject template; default "IntelMQ event".
    #[serde(deserialize_with = "de::string")]
    pub subject: String,
    /// Body template; default every field except raw as `field: value` lines.
    #[serde(deserialize_with = "de::string")]
    pub body: String,
}

impl Default for TemplatedSmtpOutputParams {
    fn default() -> Self {
        TemplatedSmtpOutputParams {
            smtp_host: "localhost".to_string(),
            smtp_port: 25,
            ssl: false,
            starttls: false,
            username: None,
            password: None,
            verify_cert: VerifyCert::Yes,
            attachments: Vec::new(),
            mail_from: None,
            mail_to: None,
            subject: "IntelMQ event".to_string(),
            body: DEFAULT_BODY.to_string(),
        }
    }
}

/// Jinja2's `joiner`: returns "" the first time it is called, then the separator.
#[derive(Debug)]
struct Joiner {
    sep: String,
    used: AtomicBool,
}

impl Object for Joiner {
    fn call(self: &Arc<Self>, _state: &State<'_, '_>, _args: &[minijinja::Value]) -> Result<minijinja::Value, Error> {
        let used = self.used.swap(true, Ordering::Relaxed);
        Ok(minijinja::Value::from(if used { self.sep.as_str() } else { "" }))
    }
}

/// Python string and dict methods templates call.
fn python_method(
    _state: &State<'_, '_>,
    value: &minijinja::Value,
    method: &str,
    args: &[minijinja::Value],
) -> Result<minijinja::Value, Error> {
    use minijinja::Value as V;
    let unknown = || Error::new(ErrorKind::UnknownMethod, format!("{} has no method named {method}", value.kind()));
    let arg = |i: usize| args.get(i).and_then(|a| a.as_str()).map(str::to_string);
    match value.kind() {
        ValueKind::Map => {
            let keys: Vec<V> = value.try_iter()?.collect();
            match method {
                "keys" => Ok(V::from(keys)),
                "values" => Ok(V::from(keys.iter().map(|k| value.get_item(k)).collect::<Result<Vec<_>, _>>()?)),
                "items" => Ok(V::from(
                    keys.into_iter()
                        .map(|k| value.get_item(&k).map(|v| V::from(vec![k, v])))
                        .collect::<Result<Vec<_>, _>>()?,
                )),
                "get" => {
                    let key =
                        args.first().ok_or_else(|| Error::new(ErrorKind::MissingArgument, "get() needs a key"))?;
                    let found = value.get_item(key)?;
                    Ok(if found.is_undefined() { args.get(1).cloned().unwrap_or(V::from(())) } else { found })
                }
                _ => Err(unknown()),
            }
        }
        ValueKind::String => {
            let text = value.as_str().unwrap_or_default();
            match method {
                "upper" => Ok(V::from(text.to_uppercase())),
                "lower" => Ok(V::from(text.to_lowercase())),
                "strip" => Ok(V::from(text.trim())),
                "startswith" => Ok(V::from(text.starts_with(arg(0).unwrap_or_default().as_str()))),
                "endswith" => Ok(V::from(text.ends_with(arg(0).unwrap_or_default().as_str()))),
                "replace" => Ok(V::from(text.replace(&arg(0).unwrap_or_default(), &arg(1).unwrap_or_default()))),
                "split" => Ok(V::from(match arg(0).filter(|s| !s.is_empty()) {
                    Some(sep) => text.split(sep.as_str()).map(V::from).collect::<Vec<_>>(),
                    None => text.split_whitespace().map(V::from).collect::<Vec<_>>(),
                })),
                _ => Err(unknown()),
            }
        }
        _ => Err(unknown()),
    }
}

/// Mails each event rendered through Jinja2 templates.
pub struct TemplatedSmtpOutputBot {
    env: Environment<'static>,
    server: SmtpServer,
    /// Number of usable attachments (templates `att<i>.type`, `att<i>.text`, `att<i>.name`).
    attachments: usize,
    /// Error lines about ignored attachments, logged at start.
    ignored: Vec<String>,
    helo: String,
    delivered: Delivered,
}

impl BuildBot for TemplatedSmtpOutputBot {
    type Params = TemplatedSmtpOutputParams;

    fn build(params: TemplatedSmtpOutputParams) -> Result<Self, ParamError> {
        let tls = SmtpServer::tls_config(params.ssl, params.starttls, &params.verify_cert, "verify_cert")?;
        let mail_from = params
            .mail_from
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ParamError::new("mail_from", "no sender specified"))?;
        let mail_to = params
            .mail_to
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ParamError::new("mail_to", "no recipient specified"))?;
        let user = params.username.clone().filter(|s| !s.is_empty());
        let pass = params.password.clone().filter(|s| !s.is_empty());
        match (&user, &pass) {
            (Some(_), None) => return Err(ParamError::new("password", "SMTP username provided, but not password")),
            (None, Some(_)) => return Err(ParamError::new("username", "SMTP password provided, but not username")),
            _ => {}
        }
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_unknown_method_callback(python_method);
        env.add_function("from_json", |text: String| -> Result<minijinja::Value, Error> {
            serde_json::from_str::<Value>(&text)
                .map(minijinja::Value::from_serialize)
                .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("from_json: {e}")))
        });
        env.add_function("joiner", |sep: Option<String>| {
            minijinja::Value::from_object(Joiner {
                sep: sep.unwrap_or_else(|| ", ".to_string()),
                used: AtomicBool::new(false),
            })
        });
        let mut add = |name: String, key: &str, source: String| {
            env.add_template_owned(name, source)
                .map_err(|e| ParamError::new(key, format!("invalid jinja template: {e}")))
        };
        add("subject".into(), "subject", params.subject.clone())?;
        add("from".into(), "mail_from", mail_from)?;
        add("to".into(), "mail_to", mail_to)?;
        add("body".into(), "body", params.body.clone())?;
        let mut attachments = 0;
        let mut ignored = Vec::new();
        for att in &params.attachments {
            let get = |k: &str| att.get(k).and_then(Value::as_str).map(str::to_string);
            let missing = ["content-type", "text", "name"].into_iter().find(|k| get(k).is_none());
            if let Some(k) = missing {
                let what = if k == "content-type" { "a content-type".to_string() } else { format!("a {k}") };
                ignored.push(format!("Attachment does not have {what}, ignoring: {att}."));
                continue;
            }
            let i = attachments;
            add(format!("att{i}.type"), "attachments", get("content-type").unwrap_or_default())?;
            add(format!("att{i}.text"), "attachments", get("text").unwrap_or_default())?;
            add(format!("att{i}.name"), "attachments", get("name").unwrap_or_default())?;
            attachments += 1;
        }
        Ok(TemplatedSmtpOutputBot {
            env,
            server: SmtpServer {
                host: params.smtp_host,
                port: params.smtp_port,
                ssl: params.ssl,
                starttls: params.starttls,
                username: user,
                password: pass,
                tls,
            },
            attachments,
            ignored,
            helo: hostname(),
            delivered: Delivered::default(),
        })
    }
}

impl TemplatedSmtpOutputBot {
    fn render(&self, name: &str, event: &Message) -> Result<String, BotError> {
        let template = self.env.get_template(name).map_err(|e| BotError::Fatal(format!("template `{name}`: {e}")))?;
        let mut context = BTreeMap::new();
        context.insert("event", minijinja::Value::from_serialize(event.fields()));
        template.render(context).map_err(|e| BotError::Invalid(format!("rendering the template `{name}` failed: {e}")))
    }

    /// The mail for one event.
    pub fn mail(&self, event: &Message) -> Result<Mail, BotError> {
        let subject = self.render("subject", event)?;
        let from = self.render("from", event)?;
        let to: Vec<String> = self.render("to", event)?.split(',').map(|r| r.trim().to_string()).collect();
        let mut parts = vec![mime::inline_text(&self.render("body", event)?)];
        for i in 0..self.attachments {
            let content_type = self.render(&format!("att{i}.type"), event)?;
            if !content_type.contains('/') {
                return Err(BotError::Invalid(format!(
                    "attachment content-type `{content_type}` is not `<maintype>/<subtype>`"
                )));
            }
            let text = self.render(&format!("att{i}.text"), event)?;
            let name = self.render(&format!("att{i}.name"), event)?;
            parts.push(mime::attachment(text.as_bytes(), &content_type, &name));
        }
        let top = vec![
            ("Subject".to_string(), subject),
            ("From".to_string(), from.clone()),
            ("To".to_string(), to.join(", ")),
            ("Content-Type".to_string(), String::new()),
        ];
        Ok(Mail { from, to, data: mime::multipart(&top, &parts) })
    }
}

impl OutputBot for TemplatedSmtpOutputBot {
    fn start(&mut self, ctx: &mut Context<'_>) -> Result<(), BotError> {
        for line in &self.ignored {
            ctx.log.log(Level::Error, line);
        }
        Ok(())
    }

    fn write(&mut self, events: &[Message], ctx: &mut Context<'_>) -> Result<(), BotError> {
        let pending = self.delivered.undelivered(events);
        if pending.is_empty() {
            self.delivered.acknowledged(events);
            return Ok(());
        }
        let mails = pending.iter().map(|e| self.mail(e)).collect::<Result<Vec<_>, _>>()?;
        let mut session = Session::open(&self.server, &self.helo, &mut *ctx.log)?;
        for (i, mail) in mails.iter().enumerate() {
            ctx.log.log(Level::Info, &format!("Sending mail to {:?}.", mail.to));
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

    use super::*;
    use crate::bots::outputs::smtp::client::tests::smtp_server;
    use crate::bots::outputs::test_support::{event, harmonization};
    use crate::bots::{MemoryLog, MemoryState};

    fn bot(params: Value) -> TemplatedSmtpOutputBot {
        TemplatedSmtpOutputBot::build(serde_json::from_value(params).unwrap()).unwrap()
    }

    #[test]
    fn default_body_lists_every_field_but_raw() {
        let h = harmonization();
        let bot = bot(json!({"mail_from": "me", "mail_to": "you,yourself"}));
        let ev = event(&h, json!({"source.ip": "127.0.0.1", "malware.name": "m", "raw": "YQ=="}));
        let mail = bot.mail(&ev).unwrap();
        assert_eq!(mail.to, vec!["you", "yourself"]);
        assert!(
            mail.data
                .starts_with("Subject: IntelMQ event\nFrom: me\nTo: you, yourself\nContent-Type: multipart/mixed;"),
            "{}",
            mail.data
        );
        assert!(
            mail.data.contains("MIME-Version: 1.0\n\n\nsource.ip: 127.0.0.1\nmalware.name: m\n\n--"),
            "{}",
            mail.data
        );
    }

    #[test]
    fn attachments_use_joiner_startswith_and_from_json() {
        let h = harmonization();
        let bot = bot(json!({"mail_from": "me", "mail_to": "you",
            "body": "{%- set o = from_json(event['output']) %}{{ o['title'] }}",
            "attachments": [{"content-type": "application/json", "name": "r.json",
                "text": "{%- set c = joiner(\", \") %}{% for k in event %}{% if k.startswith('source.') %}{{ c() }}{{ k }}{% endif %}{% endfor %}"},
                {"content-type": "text/plain", "name": "no text"}]}));
        let ev = event(&h, json!({"source.ip": "127.0.0.1", "source.port": 80, "output": "{\"title\": \"T\"}"}));
        let mail = bot.mail(&ev).unwrap();
        assert!(mail.data.contains("\n\nT\n\n--"), "{}", mail.data);
        assert!(mail.data.contains("filename=\"r.json\""));
        assert!(mail.data.contains("c291cmNlLmlwLCBzb3VyY2UucG9ydA==\n"), "{}", mail.data); // "source.ip, source.port"
        assert_eq!(
            bot.ignored,
            vec!["Attachment does not have a text, ignoring: {\"content-type\":\"text/plain\",\"name\":\"no text\"}."]
        );
    }

    #[test]
    fn sends_over_smtp() {
        let (port, rx) = smtp_server(&[], 250);
        let h = harmonization();
        let mut bot = bot(
            json!({"mail_from": "me", "mail_to": "{{ event['source.abuse_contact'] }}", "smtp_host": "127.0.0.1", "smtp_port": port}),
        );
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let mut ctx = Context::new("t", &h, std::path::Path::new("/"), &mut state, &mut log);
        bot.write(&[event(&h, json!({"source.abuse_contact": "a@example.com, b@example.com"}))], &mut ctx).unwrap();
        let got = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(got.to, vec!["a@example.com", "b@example.com"]);
        assert_eq!(got.from, "me");
    }

    #[test]
    fn sender_and_recipient_are_required_and_credentials_go_together() {
        assert_eq!(TemplatedSmtpOutputBot::build(TemplatedSmtpOutputParams::default()).err().unwrap().key, "mail_from");
        let p = TemplatedSmtpOutputParams {
            mail_from: Some("a".into()),
            mail_to: Some("b".into()),
            username: Some("u".into()),
            ..Default::default()
        };
        assert_eq!(TemplatedSmtpOutputBot::build(p).err().unwrap().key, "password");
    }
}
