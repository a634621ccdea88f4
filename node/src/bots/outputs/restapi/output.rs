//! `intelmq.bots.outputs.restapi.output`: POSTs each event to `host`, as IntelMQ: a JSON body
//! (`to_dict(hierarchical)`, serialized as Python's `json.dumps`) with `Content-Type:
//! application/json; charset=utf-8` when `use_json`, else a form body (`key=value`, nested values
//! as JSON text). Authentication when both `auth_token_name` and `auth_token` are set:
//! `auth_type` "http_basic_auth" (user `auth_token_name`, password `auth_token`) or "http_header"
//! (header `auth_token_name: auth_token`).
//!
//! One request per event, as IntelMQ; with `batch` (not an IntelMQ parameter, default false) one
//! request per `write` carrying a JSON array of the events. A 2xx answer means accepted. A
//! connection error, a timeout (`http_timeout_sec`), 408, 429 or a 5xx is `Unavailable`: the
//! runtime keeps the events and retries with growing delays; events already accepted before the
//! failure are remembered and not posted again. Any other answer (4xx, 3xx that is not followed)
//! is `Invalid`: the far side will not take this event (it is dumped, as IntelMQ's
//! `raise_for_status` error after its retries).

use std::time::Duration;

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::super::tcp::support::de;
use crate::bots::outputs::delivered::Delivered;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, Level, OutputBot, ParamError};
use crate::message::wire::{dumps, python_str};
use crate::message::{ExportOptions, Message};

/// Parameters of the REST API output (IntelMQ's names and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RestapiOutputParams {
    /// The URL to POST to; default null (required).
    #[serde(deserialize_with = "de::opt_string")]
    pub host: Option<String>,
    /// "http_basic_auth" or "http_header"; default null (no authentication).
    #[serde(deserialize_with = "de::opt_string")]
    pub auth_type: Option<String>,
    /// The password or header value; default null.
    #[serde(deserialize_with = "de::opt_string")]
    pub auth_token: Option<String>,
    /// The user name or header name; default null.
    #[serde(deserialize_with = "de::opt_string")]
    pub auth_token_name: Option<String>,
    /// Nest the dotted keys into objects; default false.
    #[serde(deserialize_with = "de::bool")]
    pub hierarchical_output: bool,
    /// Send a JSON body (else a form body); default true.
    #[serde(deserialize_with = "de::bool")]
    pub use_json: bool,
    /// One request per write with a JSON array (not IntelMQ); default false.
    #[serde(deserialize_with = "de::bool")]
    pub batch: bool,
    /// Request timeout in seconds (IntelMQ's HTTP parameter); default 30.
    pub http_timeout_sec: f64,
    /// Verify the server's TLS certificate (IntelMQ's HTTP parameter); default true.
    #[serde(deserialize_with = "de::bool")]
    pub http_verify_cert: bool,
}

impl Default for RestapiOutputParams {
    fn default() -> Self {
        RestapiOutputParams {
            host: None,
            auth_type: None,
            auth_token: None,
            auth_token_name: None,
            hierarchical_output: false,
            use_json: true,
            batch: false,
            http_timeout_sec: 30.0,
            http_verify_cert: true,
        }
    }
}

/// POSTs events to an HTTP endpoint.
pub struct RestapiOutputBot {
    params: RestapiOutputParams,
    host: String,
    /// Extra headers (authentication).
    headers: Vec<(String, String)>,
    agent: ureq::Agent,
    delivered: Delivered,
}

impl BuildBot for RestapiOutputBot {
    type Params = RestapiOutputParams;

    fn build(params: RestapiOutputParams) -> Result<Self, ParamError> {
        let host =
            params.host.clone().filter(|h| !h.is_empty()).ok_or_else(|| ParamError::new("host", "no URL given"))?;
        url::Url::parse(&host).map_err(|e| ParamError::new("host", format!("`{host}` is not a URL: {e}")))?;
        if params.batch && !params.use_json {
            return Err(ParamError::new("batch", "a batch is sent as a JSON array and needs use_json"));
        }
        if !(params.http_timeout_sec > 0.0) {
            return Err(ParamError::new("http_timeout_sec", "must be a positive number of seconds"));
        }
        let mut headers = Vec::new();
        if let (Some(name), Some(token)) = (
            params.auth_token_name.as_deref().filter(|s| !s.is_empty()),
            params.auth_token.as_deref().filter(|s| !s.is_empty()),
        ) {
            match params.auth_type.as_deref() {
                Some("http_header") => headers.push((name.to_string(), token.to_string())),
                Some("http_basic_auth") => {
                    let cred = base64::engine::general_purpose::STANDARD.encode(format!("{name}:{token}"));
                    headers.push(("Authorization".to_string(), format!("Basic {cred}")));
                }
                other => {
                    return Err(ParamError::new(
                        "auth_type",
                        format!("unknown auth_type {other:?} (known: http_basic_auth, http_header)"),
                    ))
                }
            }
        }
        let tls = ureq::tls::TlsConfig::builder().disable_verification(!params.http_verify_cert).build();
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs_f64(params.http_timeout_sec)))
            .max_redirects(0)
            .tls_config(tls)
            .build();
        Ok(RestapiOutputBot {
            params,
            host,
            headers,
            agent: ureq::Agent::new_with_config(config),
            delivered: Delivered::default(),
        })
    }
}

/// `application/x-www-form-urlencoded` of a dict as Python's requests writes `data=dict`.
fn form_body(dict: &Value) -> String {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in dict.as_object().into_iter().flatten() {
        let text = match value {
            Value::Object(_) | Value::Array(_) => dumps(value),
            other => python_str(other),
        };
        ser.append_pair(key, &text);
    }
    ser.finish()
}

impl RestapiOutputBot {
    fn body(&self, event: &Message) -> Value {
        event.to_dict(ExportOptions { hierarchical: self.params.hierarchical_output, ..Default::default() })
    }

    /// One POST; `Err` says what the answer means.
    fn post(&self, body: Vec<u8>, content_type: &str, ctx: &mut Context<'_>) -> Result<(), BotError> {
        let mut req = self.agent.post(&self.host).header("Content-Type", content_type);
        for (k, v) in &self.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let mut resp = match req.send(body) {
            Ok(resp) => resp,
            Err(e @ (ureq::Error::BadUri(_) | ureq::Error::Http(_))) => {
                return Err(BotError::Fatal(format!("cannot post to {}: {e}", self.host)))
            }
            Err(e) => return Err(BotError::Unavailable(format!("posting to {} failed: {e}", self.host))),
        };
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            ctx.log.log(Level::Debug, "Sent message.");
            return Ok(());
        }
        let text = resp.body_mut().with_config().limit(64 * 1024).read_to_string().unwrap_or_default();
        ctx.log.log(Level::Debug, &format!("Error during message sending with response body: {text:?}."));
        let why = format!("{} answered HTTP {status}", self.host);
        if status >= 500 || status == 408 || status == 429 {
            Err(BotError::Unavailable(why))
        } else {
            Err(BotError::Invalid(why))
        }
    }
}

impl OutputBot for RestapiOutputBot {
    fn write(&mut self, events: &[Message], ctx: &mut Context<'_>) -> Result<(), BotError> {
        let pending = self.delivered.undelivered(events);
        if pending.is_empty() {
            self.delivered.acknowledged(events);
            return Ok(());
        }
        if self.params.batch {
            let array = Value::Array(pending.iter().map(|e| self.body(e)).collect());
            self.post(dumps(&array).into_bytes(), "application/json; charset=utf-8", ctx)?;
            self.delivered.acknowledged(events);
            return Ok(());
        }
        for (i, event) in pending.iter().enumerate() {
            let dict = self.body(event);
            let result = if self.params.use_json {
                self.post(dumps(&dict).into_bytes(), "application/json; charset=utf-8", ctx)
            } else {
                self.post(form_body(&dict).into_bytes(), "application/x-www-form-urlencoded", ctx)
            };
            if let Err(e) = result {
                self.delivered.record_all(pending[..i].iter().copied());
                return Err(e);
            }
        }
        self.delivered.acknowledged(events);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::mpsc;

    use serde_json::json;

    use super::*;
    use crate::bots::outputs::test_support::{event, harmonization};
    use crate::bots::{MemoryLog, MemoryState};

    /// A one-thread HTTP server answering each request with the next status; sends
    /// (headers, body) of every request.
    fn server(statuses: Vec<u16>) -> (String, mpsc::Receiver<(Vec<String>, String)>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://127.0.0.1:{}/push", listener.local_addr().unwrap().port());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for status in statuses {
                let (s, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(s.try_clone().unwrap());
                let mut headers = Vec::new();
                let mut len = 0;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    let line = line.trim_end().to_string();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                    headers.push(line);
                }
                let mut body = vec![0u8; len];
                reader.read_exact(&mut body).unwrap();
                let mut s = s;
                write!(s, "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
                tx.send((headers, String::from_utf8(body).unwrap())).unwrap();
            }
        });
        (url, rx)
    }

    fn write(bot: &mut RestapiOutputBot, events: &[Message]) -> Result<(), BotError> {
        let h = harmonization();
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let mut ctx = Context::new("r", &h, std::path::Path::new("/"), &mut state, &mut log);
        bot.write(events, &mut ctx)
    }

    fn bot(params: Value) -> RestapiOutputBot {
        RestapiOutputBot::build(serde_json::from_value(params).unwrap()).unwrap()
    }

    #[test]
    fn posts_hierarchical_json_with_basic_auth() {
        let (url, rx) = server(vec![200]);
        let h = harmonization();
        let mut bot = bot(json!({"host": url, "auth_type": "http_basic_auth", "auth_token_name": "username",
            "auth_token": "password", "hierarchical_output": true}));
        write(&mut bot, &[event(&h, json!({"source.ip": "10.0.0.1"}))]).unwrap();
        let (headers, body) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(body, "{\"source\": {\"ip\": \"10.0.0.1\"}}");
        assert!(
            headers.iter().any(|l| l == "Authorization: Basic dXNlcm5hbWU6cGFzc3dvcmQ="
                || l == "authorization: Basic dXNlcm5hbWU6cGFzc3dvcmQ="),
            "{headers:?}"
        );
        assert!(
            headers.iter().any(|l| l.eq_ignore_ascii_case("content-type: application/json; charset=utf-8")),
            "{headers:?}"
        );
    }

    #[test]
    fn server_errors_are_unavailable_client_errors_invalid_and_accepted_events_are_not_posted_again() {
        let (url, rx) = server(vec![200, 503, 200, 400]);
        let h = harmonization();
        let mut bot =
            bot(json!({"host": url, "auth_type": "http_header", "auth_token_name": "X-Key", "auth_token": "k"}));
        let events = [event(&h, json!({"source.ip": "192.0.2.1"})), event(&h, json!({"source.ip": "192.0.2.2"}))];
        assert!(matches!(write(&mut bot, &events), Err(BotError::Unavailable(_))));
        // The retry posts only the second event.
        write(&mut bot, &events).unwrap();
        assert!(matches!(write(&mut bot, &events[..1]), Err(BotError::Invalid(_))));
        let bodies: Vec<String> = (0..4).map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap().1).collect();
        assert_eq!(bodies[0], "{\"source.ip\": \"192.0.2.1\"}");
        assert_eq!(bodies[1], "{\"source.ip\": \"192.0.2.2\"}");
        assert_eq!(bodies[2], "{\"source.ip\": \"192.0.2.2\"}");
        assert_eq!(bodies[3], "{\"source.ip\": \"192.0.2.1\"}");
    }

    #[test]
    fn connection_refused_is_unavailable() {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let h = harmonization();
        let mut bot = bot(json!({"host": format!("http://127.0.0.1:{port}/")}));
        assert!(matches!(write(&mut bot, &[event(&h, json!({}))]), Err(BotError::Unavailable(_))));
    }

    #[test]
    fn batch_posts_one_json_array() {
        let (url, rx) = server(vec![204]);
        let h = harmonization();
        let mut bot = bot(json!({"host": url, "batch": true}));
        let events = [event(&h, json!({"source.port": 1})), event(&h, json!({"source.port": 2}))];
        write(&mut bot, &events).unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap().1, "[{\"source.port\": 1}, {\"source.port\": 2}]");
    }

    #[test]
    fn form_body_encodes_flat_values() {
        assert_eq!(form_body(&json!({"a.b": "x y", "n": 1, "o": {"k": true}})), "a.b=x+y&n=1&o=%7B%22k%22%3A+true%7D");
    }

    #[test]
    fn parameters_are_checked() {
        assert_eq!(RestapiOutputBot::build(RestapiOutputParams::default()).err().unwrap().key, "host");
        let p = RestapiOutputParams {
            host: Some("http://x/".into()),
            auth_type: Some("digest".into()),
            auth_token: Some("t".into()),
            auth_token_name: Some("n".into()),
            ..Default::default()
        };
        assert_eq!(RestapiOutputBot::build(p).err().unwrap().key, "auth_type");
    }
}
