//! `intelmq.bots.outputs.elasticsearch.output`: indexes events in Elasticsearch (or OpenSearch)
//! through the `_bulk` API. Each document is the event's flat `to_dict`; every `flatten_fields`
//! entry holding an object (or a JSON object text) is expanded into `<field>_<key>` entries; with
//! `replacement_char` the dots in keys are replaced. With `rotate_index` (`daily`, `weekly`,
//! `monthly`, `yearly`) the index is `<elastic_index>-<date>`, the date taken from `time.source`,
//! else `time.observation` (each only in the form `YYYY-MM-DDTHH:MM:SS+00:00`, as IntelMQ parses
//! them), else today (UTC, the node clock); `never` writes to `elastic_index`. Before the first
//! write the bot checks, as IntelMQ does at start, that the index template exists (rotating: a
//! missing template stops the bot) or that the index exists (creating it otherwise).
//!
//! Difference from IntelMQ, which indexes one event per request: a `write` sends the batch as one
//! `_bulk` request (NDJSON: an `index` action and the document per event) and returns `Ok` when
//! every item was indexed. Items refused with 429 or 5xx, an HTTP 429/5xx answer and connection
//! errors make the bot wait and retry; items refused otherwise (a mapping conflict) make the batch
//! fail as invalid, and the runtime then writes its events one by one, so only the refused ones are
//! dumped. Events of a batch that were indexed before the batch failed are not indexed again when
//! they come back (see [`Delivered`]), unless the node restarted meanwhile (at-least-once).
//!
//! Deliberate difference: IntelMQ looks for `time.source` after replacing the dots in keys, so with
//! `replacement_char` it never finds the event's time and always uses today; here the event's time
//! is used in every case.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::bots::experts::asn_lookup::lenient;
use crate::bots::outputs::amqptopic::shared::{de_name_list, de_opt_string};
use crate::bots::outputs::delivered::Delivered;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, Level, OutputBot, ParamError};
use crate::message::{ExportOptions, Message};

/// `rotate_index`: a name, or `false`/`null` for `never`.
fn de_rotate<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::Null | Value::Bool(false) => Ok("never".to_string()),
        Value::String(s) => Ok(s),
        other => Err(serde::de::Error::custom(format!("{other} is not one of never, daily, weekly, monthly, yearly"))),
    }
}

/// Parameters of the Elasticsearch output (IntelMQ's names and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ElasticsearchOutputParams {
    /// The server; default "127.0.0.1".
    pub elastic_host: String,
    /// The server port; default 9200.
    #[serde(deserialize_with = "lenient::u16")]
    pub elastic_port: u16,
    /// The index (or the prefix of rotated indices); default "intelmq".
    pub elastic_index: String,
    /// `never`, `daily`, `weekly`, `monthly` or `yearly`; default "never".
    #[serde(deserialize_with = "de_rotate")]
    pub rotate_index: String,
    /// Fields whose object value is expanded into `<field>_<key>` (list or comma string); default ["extra"].
    #[serde(deserialize_with = "de_name_list")]
    pub flatten_fields: Option<Vec<String>>,
    /// Replaces the dots in keys; default null (keep them).
    #[serde(deserialize_with = "de_opt_string")]
    pub replacement_char: Option<String>,
    /// Basic auth user; default null.
    #[serde(deserialize_with = "de_opt_string")]
    pub http_username: Option<String>,
    /// Basic auth password; default null.
    #[serde(deserialize_with = "de_opt_string")]
    pub http_password: Option<String>,
    /// Use HTTPS; default false.
    #[serde(deserialize_with = "lenient::bool")]
    pub use_ssl: bool,
    /// Verify the server's certificate (HTTPS); default false.
    #[serde(deserialize_with = "lenient::bool")]
    pub http_verify_cert: bool,
    /// A PEM file of CA certificates to verify the server with; default null (the built-in roots).
    #[serde(deserialize_with = "de_opt_string")]
    pub ssl_ca_certificate: Option<String>,
    /// Accepted for compatibility (Python's urllib3 warnings), without effect; default true.
    #[serde(deserialize_with = "lenient::bool")]
    pub ssl_show_warnings: bool,
    /// Seconds to wait for an answer; default 30.
    #[serde(deserialize_with = "lenient::seconds")]
    pub http_timeout_sec: f64,
}

impl Default for ElasticsearchOutputParams {
    fn default() -> Self {
        ElasticsearchOutputParams {
            elastic_host: "127.0.0.1".to_string(),
            elastic_port: 9200,
            elastic_index: "intelmq".to_string(),
            rotate_index: "never".to_string(),
            flatten_fields: Some(vec!["extra".to_string()]),
            replacement_char: None,
            http_username: None,
            http_password: None,
            use_ssl: false,
            http_verify_cert: false,
            ssl_ca_certificate: None,
            ssl_show_warnings: true,
            http_timeout_sec: 30.0,
        }
    }
}

/// The strftime format of a rotation (IntelMQ's `ROTATE_OPTIONS`).
fn rotation_format(rotate: &str) -> Result<Option<&'static str>, String> {
    match rotate {
        "never" | "" => Ok(None),
        "daily" => Ok(Some("%Y-%m-%d")),
        "weekly" => Ok(Some("%Y-%W")),
        "monthly" => Ok(Some("%Y-%m")),
        "yearly" => Ok(Some("%Y")),
        other => Err(format!("`{other}` is not one of never, daily, weekly, monthly, yearly")),
    }
}

/// The document of an event: flat `to_dict`, flattened fields, replaced dots.
pub fn document(event: &Message, flatten_fields: &[String], replacement_char: Option<&str>) -> Map<String, Value> {
    let Value::Object(mut doc) = event.to_dict(ExportOptions::default()) else {
        return Map::new();
    };
    for field in flatten_fields {
        let Some(value) = doc.get(field) else { continue };
        let value = match value {
            Value::String(text) => serde_json::from_str::<Value>(text).unwrap_or_else(|_| value.clone()),
            other => other.clone(),
        };
        if let Value::Object(obj) = value {
            doc.shift_remove(field);
            for (key, v) in obj {
                doc.insert(format!("{field}_{key}"), v);
            }
        }
    }
    match replacement_char.filter(|c| !c.is_empty() && *c != ".") {
        Some(c) => replace_keys(doc, c),
        None => doc,
    }
}

fn replace_keys(obj: Map<String, Value>, replacement: &str) -> Map<String, Value> {
    obj.into_iter()
        .map(|(k, v)| {
            let v = match v {
                Value::Object(inner) => Value::Object(replace_keys(inner, replacement)),
                other => other,
            };
            (k.replace('.', replacement), v)
        })
        .collect()
}

/// The date of an event for index rotation: `time.source`, else `time.observation`, in IntelMQ's
/// exact `%Y-%m-%dT%H:%M:%S+00:00` form.
fn event_date(event: &Message) -> Option<chrono::NaiveDate> {
    ["time.source", "time.observation"].iter().find_map(|key| {
        let text = event.get_str(key)?;
        chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S+00:00").ok().map(|dt| dt.date())
    })
}

/// An item of a bulk answer.
#[derive(Debug, PartialEq)]
enum ItemResult {
    Indexed,
    Retry(String),
    Refused(String),
}

/// The per-item results of a `_bulk` answer, in request order.
fn bulk_results(body: &Value, expected: usize) -> Result<Vec<ItemResult>, String> {
    let items = body.get("items").and_then(Value::as_array).ok_or("the bulk answer has no `items`")?;
    if items.len() != expected {
        return Err(format!("the bulk answer has {} items for {expected} documents", items.len()));
    }
    Ok(items
        .iter()
        .map(|item| {
            let result = item.as_object().and_then(|o| o.values().next()).cloned().unwrap_or(Value::Null);
            let status = result.get("status").and_then(Value::as_u64).unwrap_or(0);
            let reason = || {
                let error = result.get("error").cloned().unwrap_or(Value::Null);
                match error.get("reason").and_then(Value::as_str) {
                    Some(r) => format!("{status}: {r}"),
                    None => format!("{status}: {error}"),
                }
            };
            match status {
                200..=299 => ItemResult::Indexed,
                429 | 500..=599 => ItemResult::Retry(reason()),
                _ => ItemResult::Refused(reason()),
            }
        })
        .collect())
}

/// Indexes events in Elasticsearch with the bulk API.
pub struct ElasticsearchOutputBot {
    params: ElasticsearchOutputParams,
    base: String,
    rotation: Option<&'static str>,
    flatten_fields: Vec<String>,
    timeout: Duration,
    agent: Option<ureq::Agent>,
    checked: bool,
    delivered: Delivered,
}

impl BuildBot for ElasticsearchOutputBot {
    type Params = ElasticsearchOutputParams;

    fn build(params: ElasticsearchOutputParams) -> Result<Self, ParamError> {
        let rotation = rotation_format(&params.rotate_index).map_err(|e| ParamError::new("rotate_index", e))?;
        if params.elastic_index.is_empty() {
            return Err(ParamError::new("elastic_index", "no index given"));
        }
        let scheme = if params.use_ssl { "https" } else { "http" };
        let host = if params.elastic_host.contains(':') && !params.elastic_host.starts_with('[') {
            format!("[{}]", params.elastic_host)
        } else {
            params.elastic_host.clone()
        };
        let base = format!("{scheme}://{host}:{}", params.elastic_port);
        let flatten_fields = params.flatten_fields.clone().unwrap_or_default();
        let timeout = Duration::from_secs_f64(params.http_timeout_sec.max(0.1));
        Ok(ElasticsearchOutputBot {
            params,
            base,
            rotation,
            flatten_fields,
            timeout,
            agent: None,
            checked: false,
            delivered: Delivered::default(),
        })
    }
}

/// A response: status and body text.
struct Answer {
    status: u16,
    body: String,
}

impl ElasticsearchOutputBot {
    fn agent(&mut self) -> Result<ureq::Agent, BotError> {
        if let Some(agent) = &self.agent {
            return Ok(agent.clone());
        }
        let mut tls = ureq::tls::TlsConfig::builder().disable_verification(!self.params.http_verify_cert);
        if let Some(path) = &self.params.ssl_ca_certificate {
            let pem = std::fs::read(path)
                .map_err(|e| BotError::Fatal(format!("cannot read ssl_ca_certificate {path}: {e}")))?;
            let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            if certs.is_empty() {
                return Err(BotError::Fatal(format!("ssl_ca_certificate {path} holds no PEM certificate")));
            }
            tls = tls.root_certs(ureq::tls::RootCerts::Specific(Arc::new(certs)));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(self.timeout))
            .http_status_as_error(false)
            .tls_config(tls.build())
            .build()
            .into();
        self.agent = Some(agent.clone());
        Ok(agent)
    }

    fn auth(&self) -> Option<String> {
        let user = self.params.http_username.as_deref()?;
        let password = self.params.http_password.as_deref().unwrap_or_default();
        Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))))
    }

    /// One request; transport errors are `Unavailable`.
    fn request(&mut self, method: &str, path: &str, body: Option<&str>) -> Result<Answer, BotError> {
        let agent = self.agent()?;
        let url = format!("{}{path}", self.base);
        let auth = self.auth();
        let result = match (method, body) {
            ("HEAD", _) => {
                let mut req = agent.head(&url);
                if let Some(a) = &auth {
                    req = req.header("Authorization", a);
                }
                req.call()
            }
            ("PUT", _) => {
                let mut req = agent.put(&url);
                if let Some(a) = &auth {
                    req = req.header("Authorization", a);
                }
                req.send_empty()
            }
            (_, body) => {
                let mut req = agent.post(&url).header("Content-Type", "application/x-ndjson");
                if let Some(a) = &auth {
                    req = req.header("Authorization", a);
                }
                req.send(body.unwrap_or_default())
            }
        };
        let mut response = match result {
            Ok(r) => r,
            Err(e) => {
                self.agent = None;
                return Err(BotError::Unavailable(format!("elasticsearch {}: {method} {path}: {e}", self.base)));
            }
        };
        let status = response.status().as_u16();
        let body = if method == "HEAD" {
            String::new()
        } else {
            response.body_mut().with_config().limit(256 * 1024 * 1024).read_to_string().map_err(|e| {
                self.agent = None;
                BotError::Unavailable(format!(
                    "elasticsearch {}: {method} {path}: cannot read the answer: {e}",
                    self.base
                ))
            })?
        };
        Ok(Answer { status, body })
    }

    /// An HTTP status that is not success, as the error it means.
    fn status_error(&self, what: &str, answer: &Answer) -> BotError {
        let text = format!("elasticsearch {}: {what}: HTTP {}: {}", self.base, answer.status, answer.body.trim());
        match answer.status {
            429 | 500..=599 => BotError::Unavailable(text),
            401 | 403 => BotError::Fatal(text),
            _ => BotError::Transient(text),
        }
    }

    /// IntelMQ's start check: the template of rotated indices exists, or the index exists (it is
    /// created otherwise).
    fn check_index(&mut self, ctx: &mut Context<'_>) -> Result<(), BotError> {
        if self.checked {
            return Ok(());
        }
        let index = self.params.elastic_index.clone();
        if self.rotation.is_some() {
            let answer = self.request("HEAD", &format!("/_template/{index}"), None)?;
            match answer.status {
                200..=299 => {}
                404 => {
                    return Err(BotError::Fatal(format!(
                        "No template with the name '{index}' exists on the Elasticsearch host, but 'rotate_index' is set. Have you created the template?"
                    )))
                }
                _ => return Err(self.status_error("template check", &answer)),
            }
        } else {
            let answer = self.request("HEAD", &format!("/{index}"), None)?;
            match answer.status {
                200..=299 => {}
                404 => {
                    let created = self.request("PUT", &format!("/{index}"), None)?;
                    // 400: created meanwhile (resource_already_exists_exception), as IntelMQ ignores.
                    if !(200..=299).contains(&created.status) && created.status != 400 {
                        return Err(self.status_error("index creation", &created));
                    }
                    ctx.log.log(Level::Info, &format!("Created index {index:?}."));
                }
                _ => return Err(self.status_error("index check", &answer)),
            }
        }
        self.checked = true;
        Ok(())
    }

    fn index_name(&self, event: &Message, today: chrono::NaiveDate) -> String {
        match self.rotation {
            None => self.params.elastic_index.clone(),
            Some(format) => {
                let date = event_date(event).unwrap_or(today);
                format!("{}-{}", self.params.elastic_index, date.format(format))
            }
        }
    }
}

impl OutputBot for ElasticsearchOutputBot {
    fn write(&mut self, events: &[Message], ctx: &mut Context<'_>) -> Result<(), BotError> {
        let pending = self.delivered.pending(events);
        let todo: Vec<&Message> = events.iter().zip(&pending).filter(|(_, p)| **p).map(|(e, _)| e).collect();
        if todo.is_empty() {
            self.delivered.acknowledged(events);
            return Ok(());
        }
        self.check_index(ctx)?;
        let today = ctx.now().date_naive();
        let mut body = String::new();
        for event in &todo {
            let action = serde_json::json!({"index": {"_index": self.index_name(event, today)}});
            let doc = document(event, &self.flatten_fields, self.params.replacement_char.as_deref());
            body.push_str(&action.to_string());
            body.push('\n');
            body.push_str(&Value::Object(doc).to_string());
            body.push('\n');
        }
        let answer = self.request("POST", "/_bulk", Some(&body))?;
        if !(200..=299).contains(&answer.status) {
            return Err(self.status_error("bulk request", &answer));
        }
        let parsed: Value = serde_json::from_str(&answer.body).map_err(|e| {
            BotError::Transient(format!("elasticsearch {}: the bulk answer is not JSON: {e}", self.base))
        })?;
        let results = bulk_results(&parsed, todo.len())
            .map_err(|e| BotError::Transient(format!("elasticsearch {}: {e}", self.base)))?;
        let mut retry = None;
        let mut refused = None;
        for (event, result) in todo.iter().zip(results) {
            match result {
                ItemResult::Indexed => self.delivered.record(event),
                ItemResult::Retry(why) => {
                    retry.get_or_insert(why);
                }
                ItemResult::Refused(why) => {
                    refused.get_or_insert(why);
                }
            }
        }
        if let Some(why) = retry {
            ctx.log.log(Level::Warning, &format!("Elasticsearch could not index everything now: {why}."));
            return Err(BotError::Unavailable(format!("elasticsearch {}: item not indexed: {why}", self.base)));
        }
        if let Some(why) = refused {
            return Err(BotError::Invalid(format!("elasticsearch {} refused the event: {why}", self.base)));
        }
        self.delivered.acknowledged(events);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Mutex;

    use serde_json::json;

    use super::*;
    use crate::bots::outputs::test_support::{event, harmonization};
    use crate::bots::{MemoryLog, MemoryState};

    /// A `_bulk` endpoint on a real socket: keeps the documents per index; refuses documents whose
    /// `comment` is "refuse" with 400 and answers 429 to those with "busy" once.
    struct FakeElastic {
        server: Arc<tiny_http::Server>,
        docs: Arc<Mutex<Vec<(String, Value)>>>,
        requests: Arc<Mutex<Vec<String>>>,
        templates: bool,
    }

    impl FakeElastic {
        fn start(templates: bool) -> FakeElastic {
            let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
            let docs: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
            let requests: Arc<Mutex<Vec<String>>> = Arc::default();
            let (s, d, r) = (server.clone(), docs.clone(), requests.clone());
            std::thread::spawn(move || {
                let mut busy_once = true;
                let mut indices = std::collections::HashSet::new();
                for mut req in s.incoming_requests() {
                    let path = req.url().to_string();
                    let method = req.method().to_string();
                    r.lock().unwrap().push(format!("{method} {path}"));
                    let mut body = String::new();
                    let _ = std::io::Read::read_to_string(req.as_reader(), &mut body);
                    let (status, answer) = match (method.as_str(), path.as_str()) {
                        ("HEAD", p) if p.starts_with("/_template/") => {
                            (if templates { 200 } else { 404 }, String::new())
                        }
                        ("HEAD", p) => (if indices.contains(p) { 200 } else { 404 }, String::new()),
                        ("PUT", p) => {
                            indices.insert(p.to_string());
                            (200, "{\"acknowledged\": true}".to_string())
                        }
                        ("POST", "/_bulk") => {
                            let lines: Vec<&str> = body.lines().collect();
                            let mut items = Vec::new();
                            for pair in lines.chunks(2) {
                                let action: Value = serde_json::from_str(pair[0]).unwrap();
                                let doc: Value = serde_json::from_str(pair[1]).unwrap();
                                let index = action["index"]["_index"].as_str().unwrap().to_string();
                                let item = if doc["comment"] == json!("refuse") {
                                    json!({"index": {"_index": index, "status": 400,
                                        "error": {"type": "mapper_parsing_exception", "reason": "failed to parse"}}})
                                } else if doc["comment"] == json!("busy") && busy_once {
                                    busy_once = false;
                                    json!({"index": {"_index": index, "status": 429,
                                        "error": {"type": "es_rejected_execution_exception", "reason": "queue full"}}})
                                } else {
                                    d.lock().unwrap().push((index.clone(), doc));
                                    json!({"index": {"_index": index, "status": 201, "result": "created"}})
                                };
                                items.push(item);
                            }
                            let errors = items.iter().any(|i| i["index"]["status"] != json!(201));
                            (200, json!({"took": 1, "errors": errors, "items": items}).to_string())
                        }
                        _ => (404, String::new()),
                    };
                    let _ = req.respond(tiny_http::Response::from_string(answer).with_status_code(status));
                }
            });
            FakeElastic { server, docs, requests, templates }
        }

        fn port(&self) -> u16 {
            self.server.server_addr().to_ip().unwrap().port()
        }
    }

    impl Drop for FakeElastic {
        fn drop(&mut self) {
            self.server.unblock();
        }
    }

    fn bot(port: u16, extra: Value) -> ElasticsearchOutputBot {
        let mut params = json!({"elastic_port": port});
        for (k, v) in extra.as_object().unwrap() {
            params[k] = v.clone();
        }
        ElasticsearchOutputBot::build(serde_json::from_value(params).unwrap()).unwrap()
    }

    fn write(bot: &mut ElasticsearchOutputBot, events: &[Message]) -> Result<(), BotError> {
        let h = harmonization();
        let mut state = MemoryState::default();
        let mut log = MemoryLog::default();
        let mut ctx = Context {
            bot_id: "es-output",
            harmonization: &h,
            root: std::path::Path::new("/"),
            state: &mut state,
            log: &mut log,
            clock: &crate::bots::SystemClock,
        };
        bot.write(events, &mut ctx)
    }

    #[test]
    fn documents_are_flat_with_flattened_fields_and_replaced_dots() {
        let h = harmonization();
        let ev = event(&h, json!({"source.ip": "192.0.2.1", "extra.a": 1, "output": "{\"k\": \"v\"}"}));
        let doc = document(&ev, &["output".to_string()], None);
        assert_eq!(Value::Object(doc), json!({"source.ip": "192.0.2.1", "extra.a": 1, "output_k": "v"}));
        let doc = document(&ev, &["extra".to_string()], Some("_"));
        assert_eq!(doc.get("source_ip"), Some(&json!("192.0.2.1")));
        assert_eq!(doc.get("extra_a"), Some(&json!(1)));
    }

    #[test]
    fn rotated_index_names_use_the_event_time() {
        let h = harmonization();
        let today = chrono::NaiveDate::from_ymd_opt(2024, 2, 29).unwrap();
        let ev = event(
            &h,
            json!({"time.source": "2018-03-04T05:06:07+00:00", "time.observation": "2019-01-01T00:00:00+00:00"}),
        );
        for (rotate, name) in [
            ("daily", "intelmq-2018-03-04"),
            ("weekly", "intelmq-2018-09"),
            ("monthly", "intelmq-2018-03"),
            ("yearly", "intelmq-2018"),
            ("never", "intelmq"),
        ] {
            assert_eq!(bot(1, json!({"rotate_index": rotate})).index_name(&ev, today), name);
        }
        let ev = event(&h, json!({"time.observation": "2019-01-01T00:00:00+00:00"}));
        let untimed = event(&h, json!({"source.port": 1}));
        assert_eq!(bot(1, json!({"rotate_index": "monthly"})).index_name(&untimed, today), "intelmq-2024-02");
        assert_eq!(bot(1, json!({"rotate_index": "yearly"})).index_name(&ev, today), "intelmq-2019");
        assert!(
            ElasticsearchOutputBot::build(serde_json::from_value(json!({"rotate_index": "hourly"})).unwrap()).is_err()
        );
    }

    #[test]
    fn a_batch_goes_in_one_bulk_request_after_creating_the_index() {
        let es = FakeElastic::start(false);
        let h = harmonization();
        let events: Vec<Message> = (0..3).map(|i| event(&h, json!({"source.port": i, "extra.k": "v"}))).collect();
        let mut b = bot(es.port(), json!({"elastic_index": "events"}));
        write(&mut b, &events).unwrap();
        write(&mut b, &events[..1]).unwrap();
        let docs = es.docs.lock().unwrap().clone();
        assert_eq!(docs.len(), 4);
        assert_eq!(docs[0], ("events".to_string(), json!({"source.port": 0, "extra.k": "v"})));
        let requests = es.requests.lock().unwrap().clone();
        assert_eq!(requests, vec!["HEAD /events", "PUT /events", "POST /_bulk", "POST /_bulk"]);
    }

    #[test]
    fn rotation_without_template_stops_the_bot() {
        let es = FakeElastic::start(false);
        assert!(!es.templates);
        let h = harmonization();
        let mut b = bot(es.port(), json!({"rotate_index": "daily"}));
        let err = write(&mut b, &[event(&h, json!({"source.port": 1}))]).unwrap_err();
        assert!(matches!(err, BotError::Fatal(ref why) if why.contains("template")), "{err:?}");
    }

    #[test]
    fn refused_items_fail_the_batch_and_indexed_ones_are_not_sent_again() {
        let es = FakeElastic::start(true);
        let h = harmonization();
        let events = [
            event(&h, json!({"source.port": 1})),
            event(&h, json!({"source.port": 2, "comment": "refuse"})),
            event(&h, json!({"source.port": 3, "comment": "busy"})),
        ];
        let mut b = bot(es.port(), json!({"rotate_index": "yearly"}));
        // 429 for one item: wait and retry the batch.
        assert!(matches!(write(&mut b, &events), Err(BotError::Unavailable(_))));
        // The retry: the busy item goes in now; the refused one makes the batch invalid.
        assert!(matches!(write(&mut b, &events), Err(BotError::Invalid(_))));
        // The runtime writes them one by one: only the refused one fails.
        assert!(write(&mut b, &events[..1]).is_ok());
        assert!(matches!(write(&mut b, &events[1..2]), Err(BotError::Invalid(_))));
        assert!(write(&mut b, &events[2..]).is_ok());
        let ports: Vec<Value> = es.docs.lock().unwrap().iter().map(|(_, d)| d["source.port"].clone()).collect();
        assert_eq!(ports, vec![json!(1), json!(3)], "each indexed exactly once");
    }

    #[test]
    fn an_unreachable_server_and_5xx_are_unavailable() {
        let h = harmonization();
        let mut b = bot(1, json!({"http_timeout_sec": 2}));
        assert!(matches!(write(&mut b, &[event(&h, json!({"source.port": 1}))]), Err(BotError::Unavailable(_))));
    }

    #[test]
    fn defaults_are_intelmqs() {
        let d = serde_json::to_value(ElasticsearchOutputParams::default()).unwrap();
        assert_eq!(d["elastic_port"], json!(9200));
        assert_eq!(d["flatten_fields"], json!(["extra"]));
        assert_eq!(d["rotate_index"], json!("never"));
        assert_eq!(d["http_verify_cert"], json!(false));
    }
}
