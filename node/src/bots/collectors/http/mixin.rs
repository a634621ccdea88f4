//! What the network collectors share (IntelMQ's `HttpMixin`, `utils.unzip` and the URL time
//! formatting): lenient parameter forms, the HTTP parameters and client (ureq, blocking), archive
//! unpacking and `{time[%Y-%m-%d]}` placeholders. Used by the HTTP, mail, rsync and API collectors;
//! no runtime or store access.

use std::collections::HashMap;
use std::io::{Cursor, Read};
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Local, TimeZone};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::bots::{BotError, Context, ParamError};
use crate::message::{AddOptions, Message};

/// IntelMQ's default `http_user_agent`.
pub const DEFAULT_USER_AGENT: &str =
    "Mozilla/5.0 (Windows NT 6.1) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/41.0.2228.0 Safari/537.36";

/// Lenient deserializers: IntelMQ configs write numbers, booleans and lists as strings too.
pub mod de {
    use serde::{Deserialize, Deserializer};
    use serde_json::Value;

    fn expected<E: serde::de::Error>(what: &str, v: &Value) -> E {
        E::custom(format!("expected {what}, got {v}"))
    }

    /// A bool from `true`, `"true"`, `"yes"`, `1`...; `null` is false.
    pub fn bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        let v = Value::deserialize(d)?;
        bool_of(&v).ok_or_else(|| expected("true or false", &v))
    }

    pub(crate) fn bool_of(v: &Value) -> Option<bool> {
        match v {
            Value::Null => Some(false),
            Value::Bool(b) => Some(*b),
            Value::Number(n) => n.as_f64().map(|f| f != 0.0),
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" => Some(true),
                "false" | "no" | "off" | "0" | "" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    /// A number from a number or a numeric string.
    pub fn f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        let v = Value::deserialize(d)?;
        f64_of(&v).ok_or_else(|| expected("a number", &v))
    }

    pub(crate) fn f64_of(v: &Value) -> Option<f64> {
        match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// A non-negative integer from a number or a numeric string.
    pub fn u32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        let v = Value::deserialize(d)?;
        f64_of(&v)
            .filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f <= f64::from(u32::MAX))
            .map(|f| f as u32)
            .ok_or_else(|| expected("a non-negative integer", &v))
    }

    /// An optional port: `null`, `""`, a number or a numeric string.
    pub fn opt_u16<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
        let v = Value::deserialize(d)?;
        match &v {
            Value::Null => Ok(None),
            Value::String(s) if s.trim().is_empty() => Ok(None),
            _ => f64_of(&v)
                .filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f <= f64::from(u16::MAX))
                .map(|f| Some(f as u16))
                .ok_or_else(|| expected("a port number", &v)),
        }
    }

    /// A port: a number or a numeric string.
    pub fn u16<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
        let v = Value::deserialize(d)?;
        f64_of(&v)
            .filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f <= f64::from(u16::MAX))
            .map(|f| f as u16)
            .ok_or_else(|| expected("a port number", &v))
    }

    /// An optional string: `null` and `""` are none; numbers and booleans become their text.
    pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        let v = Value::deserialize(d)?;
        match v {
            Value::Null => Ok(None),
            Value::String(s) if s.is_empty() => Ok(None),
            Value::String(s) => Ok(Some(s)),
            Value::Number(n) => Ok(Some(n.to_string())),
            Value::Bool(b) => Ok(Some(b.to_string())),
            other => Err(expected("a string", &other)),
        }
    }

    /// A string; numbers become their text, `null` the empty string.
    pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Ok(opt_string(d)?.unwrap_or_default())
    }

    /// A list of strings from a list or a comma-separated string (items trimmed, empty ones
    /// dropped); `null` is the empty list.
    pub fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        let v = Value::deserialize(d)?;
        list_of(&v).ok_or_else(|| expected("a list or a comma-separated string", &v))
    }

    /// Like [`string_list`], but `null` stays none (IntelMQ's default of several list parameters).
    pub fn opt_string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
        let v = Value::deserialize(d)?;
        if v.is_null() {
            return Ok(None);
        }
        list_of(&v).map(Some).ok_or_else(|| expected("a list or a comma-separated string", &v))
    }

    pub(crate) fn list_of(v: &Value) -> Option<Vec<String>> {
        match v {
            Value::Null => Some(Vec::new()),
            Value::String(s) => {
                Some(s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect())
            }
            Value::Array(items) => items
                .iter()
                .map(|i| match i {
                    Value::String(s) => Some(s.trim().to_string()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .collect(),
            _ => None,
        }
    }

    /// A JSON object; `null` is empty; a string holding a JSON object is parsed.
    pub fn object<'de, D: Deserializer<'de>>(d: D) -> Result<serde_json::Map<String, Value>, D::Error> {
        let v = Value::deserialize(d)?;
        match v {
            Value::Null => Ok(serde_json::Map::new()),
            Value::Object(m) => Ok(m),
            Value::String(s) if s.trim().is_empty() => Ok(serde_json::Map::new()),
            Value::String(s) => match serde_json::from_str::<Value>(&s) {
                Ok(Value::Object(m)) => Ok(m),
                _ => Err(expected("a JSON object", &Value::String(s))),
            },
            other => Err(expected("a JSON object", &other)),
        }
    }
}

/// `extract_files`: false, true (every file) or a list of names (a list or a comma string).
#[derive(Clone, Debug, PartialEq, Default)]
pub enum ExtractFiles {
    #[default]
    No,
    All,
    Names(Vec<String>),
}

impl ExtractFiles {
    pub fn is_on(&self) -> bool {
        !matches!(self, ExtractFiles::No)
    }

    /// From a parameter value: a bool (or its string form), a list or a comma string.
    pub fn from_value(v: &Value) -> Result<ExtractFiles, String> {
        if let Some(b) = de::bool_of(v) {
            return Ok(if b { ExtractFiles::All } else { ExtractFiles::No });
        }
        match de::list_of(v) {
            Some(names) if names.is_empty() => Ok(ExtractFiles::No),
            Some(names) => Ok(ExtractFiles::Names(names)),
            None => Err(format!("expected true, false, a list of file names or a comma-separated string, got {v}")),
        }
    }
}

impl Serialize for ExtractFiles {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ExtractFiles::No => s.serialize_bool(false),
            ExtractFiles::All => s.serialize_bool(true),
            ExtractFiles::Names(n) => n.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for ExtractFiles {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        ExtractFiles::from_value(&v).map_err(serde::de::Error::custom)
    }
}

/// `http_verify_cert`: a bool or the path of a CA bundle.
#[derive(Clone, Debug, PartialEq)]
pub enum VerifyCert {
    Bool(bool),
    CaPath(String),
}

impl Default for VerifyCert {
    fn default() -> Self {
        VerifyCert::Bool(true)
    }
}

impl Serialize for VerifyCert {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            VerifyCert::Bool(b) => s.serialize_bool(*b),
            VerifyCert::CaPath(p) => s.serialize_str(p),
        }
    }
}

impl<'de> Deserialize<'de> for VerifyCert {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        match &v {
            Value::Null => Ok(VerifyCert::Bool(true)),
            Value::String(s) if de::bool_of(&v).is_none() => Ok(VerifyCert::CaPath(s.clone())),
            _ => de::bool_of(&v)
                .map(VerifyCert::Bool)
                .ok_or_else(|| serde::de::Error::custom(format!("expected true, false or a CA file path, got {v}"))),
        }
    }
}

/// `http_timeout_sec`: one number, or `[connect, read]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HttpTimeout {
    pub connect: f64,
    pub read: f64,
}

impl HttpTimeout {
    pub const fn secs(s: f64) -> HttpTimeout {
        HttpTimeout { connect: s, read: s }
    }
}

impl Serialize for HttpTimeout {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.connect == self.read {
            s.serialize_f64(self.connect)
        } else {
            [self.connect, self.read].serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for HttpTimeout {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        let positive = |f: f64| f.is_finite() && f > 0.0;
        let t = match &v {
            Value::Array(a) if a.len() == 2 => match (de::f64_of(&a[0]), de::f64_of(&a[1])) {
                (Some(c), Some(r)) => Some(HttpTimeout { connect: c, read: r }),
                _ => None,
            },
            _ => de::f64_of(&v).map(HttpTimeout::secs),
        };
        t.filter(|t| positive(t.connect) && positive(t.read)).ok_or_else(|| {
            serde::de::Error::custom(format!("expected a positive number of seconds or [connect, read], got {v}"))
        })
    }
}

/// `http_url_formatting` and friends: off, now, or now shifted by a timedelta
/// (`{"days": -1}`).
#[derive(Clone, Debug, PartialEq, Default)]
pub enum TimeFormatting {
    #[default]
    Off,
    Now,
    Delta(Map<String, Value>),
}

impl TimeFormatting {
    pub fn is_on(&self) -> bool {
        !matches!(self, TimeFormatting::Off)
    }

    /// The shift as a duration (Python `timedelta(**delta)`).
    pub fn delta(&self) -> Result<chrono::Duration, String> {
        let TimeFormatting::Delta(map) = self else {
            return Ok(chrono::Duration::zero());
        };
        let mut micros: f64 = 0.0;
        for (key, value) in map {
            let n = de::f64_of(value).ok_or_else(|| format!("timedelta value of `{key}` is not a number: {value}"))?;
            let unit = match key.as_str() {
                "weeks" => 604_800_000_000.0,
                "days" => 86_400_000_000.0,
                "hours" => 3_600_000_000.0,
                "minutes" => 60_000_000.0,
                "seconds" => 1_000_000.0,
                "milliseconds" => 1_000.0,
                "microseconds" => 1.0,
                other => return Err(format!("unknown timedelta key `{other}`")),
            };
            micros += n * unit;
        }
        Ok(chrono::Duration::microseconds(micros.round() as i64))
    }

    /// Fills the `{time[FORMAT]}` placeholders of `template` with the local time (shifted).
    pub fn apply(&self, template: &str) -> Result<String, String> {
        if !self.is_on() {
            return Ok(template.to_string());
        }
        let now = Local::now() + self.delta()?;
        format_time_placeholders(template, &now)
    }
}

impl Serialize for TimeFormatting {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            TimeFormatting::Off => s.serialize_bool(false),
            TimeFormatting::Now => s.serialize_bool(true),
            TimeFormatting::Delta(m) => m.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for TimeFormatting {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        let parsed = match &v {
            Value::Object(m) => Some(TimeFormatting::Delta(m.clone())),
            Value::String(s) if s.trim_start().starts_with('{') => {
                serde_json::from_str::<Map<String, Value>>(s).ok().map(TimeFormatting::Delta)
            }
            _ => de::bool_of(&v).map(|b| if b { TimeFormatting::Now } else { TimeFormatting::Off }),
        };
        let t = parsed.ok_or_else(|| {
            serde::de::Error::custom(format!(
                "expected true, false or a timedelta object like {{\"days\": -1}}, got {v}"
            ))
        })?;
        t.delta().map_err(serde::de::Error::custom)?;
        Ok(t)
    }
}

/// Python's `template.format(time=Time(...))` restricted to what IntelMQ configs use:
/// `{time[<strftime format>]}` placeholders, `{{` and `}}` escapes. Anything else in braces is an
/// error naming it.
pub fn format_time_placeholders<Tz: TimeZone>(template: &str, now: &DateTime<Tz>) -> Result<String, String>
where
    Tz::Offset: std::fmt::Display,
{
    use chrono::format::{Item, StrftimeItems};
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if tail.starts_with("{{") {
            out.push('{');
            rest = &tail[2..];
        } else if tail.starts_with("}}") {
            out.push('}');
            rest = &tail[2..];
        } else if tail.starts_with('}') {
            return Err(format!("single `}}` in `{template}`"));
        } else {
            let Some(end) = tail.find('}') else {
                return Err(format!("unclosed `{{` in `{template}`"));
            };
            let field = &tail[1..end];
            let Some(fmt) = field.strip_prefix("time[").and_then(|f| f.strip_suffix(']')) else {
                return Err(format!(
                    "unknown placeholder `{{{field}}}` in `{template}` (only {{time[FORMAT]}} is known)"
                ));
            };
            let items: Vec<Item<'_>> = StrftimeItems::new(fmt).collect();
            if items.iter().any(|i| matches!(i, Item::Error)) {
                return Err(format!("invalid time format `{fmt}` in `{template}`"));
            }
            out.push_str(&now.format_with_items(items.into_iter()).to_string());
            rest = &tail[end + 1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Declares a collector's parameter struct: its own fields (each `= default`) followed by
/// IntelMQ's HTTP parameters, plus its `Default` and `http_settings()`.
macro_rules! http_params {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty = $default:expr, )*
        }
        http_timeout_sec = $timeout:expr;
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
            /// `http_username`: user of HTTP basic auth; default null.
            #[serde(deserialize_with = "crate::bots::collectors::http::mixin::de::opt_string")]
            pub http_username: Option<String>,
            /// `http_password`: password of HTTP basic auth; default null.
            #[serde(deserialize_with = "crate::bots::collectors::http::mixin::de::opt_string")]
            pub http_password: Option<String>,
            /// `http_header`: extra request headers; default {}.
            #[serde(deserialize_with = "crate::bots::collectors::http::mixin::de::object")]
            pub http_header: serde_json::Map<String, serde_json::Value>,
            /// `http_verify_cert`: check TLS certificates (true/false or a CA bundle path); default true.
            pub http_verify_cert: crate::bots::collectors::http::mixin::VerifyCert,
            /// `http_timeout_sec`: connect and read timeout, a number or [connect, read]; default 30 (see each bot).
            pub http_timeout_sec: crate::bots::collectors::http::mixin::HttpTimeout,
            /// `http_timeout_max_tries`: attempts when connecting fails; default 3.
            #[serde(deserialize_with = "crate::bots::collectors::http::mixin::de::u32")]
            pub http_timeout_max_tries: u32,
            /// `http_proxy`: proxy for http URLs (used only when `https_proxy` is set too); default null.
            #[serde(deserialize_with = "crate::bots::collectors::http::mixin::de::opt_string")]
            pub http_proxy: Option<String>,
            /// `https_proxy`: proxy for https URLs (used only when `http_proxy` is set too); default null.
            #[serde(deserialize_with = "crate::bots::collectors::http::mixin::de::opt_string")]
            pub https_proxy: Option<String>,
            /// `http_user_agent`: the User-Agent header; default IntelMQ's Chrome 41 string.
            #[serde(deserialize_with = "crate::bots::collectors::http::mixin::de::string")]
            pub http_user_agent: String,
            /// `ssl_client_certificate`: PEM file with a client certificate and its key; default null.
            #[serde(deserialize_with = "crate::bots::collectors::http::mixin::de::opt_string")]
            pub ssl_client_certificate: Option<String>,
        }

        impl Default for $name {
            fn default() -> Self {
                $name {
                    $( $field: $default, )*
                    http_username: None,
                    http_password: None,
                    http_header: serde_json::Map::new(),
                    http_verify_cert: crate::bots::collectors::http::mixin::VerifyCert::Bool(true),
                    http_timeout_sec: crate::bots::collectors::http::mixin::HttpTimeout::secs($timeout),
                    http_timeout_max_tries: 3,
                    http_proxy: None,
                    https_proxy: None,
                    http_user_agent: crate::bots::collectors::http::mixin::DEFAULT_USER_AGENT.to_string(),
                    ssl_client_certificate: None,
                }
            }
        }

        impl $name {
            /// The HTTP client settings of these parameters.
            pub fn http_settings(&self) -> crate::bots::collectors::http::mixin::HttpSettings {
                crate::bots::collectors::http::mixin::HttpSettings {
                    username: self.http_username.clone(),
                    password: self.http_password.clone(),
                    headers: self
                        .http_header
                        .iter()
                        .map(|(k, v)| (k.clone(), match v {
                            serde_json::Value::String(s) => s.clone(),
                            other => other.to_string(),
                        }))
                        .collect(),
                    verify: self.http_verify_cert.clone(),
                    timeout: self.http_timeout_sec,
                    max_tries: self.http_timeout_max_tries.max(1),
                    http_proxy: self.http_proxy.clone(),
                    https_proxy: self.https_proxy.clone(),
                    user_agent: self.http_user_agent.clone(),
                    client_certificate: self.ssl_client_certificate.clone(),
                }
            }
        }
    };
}
pub(crate) use http_params;

/// What IntelMQ's `HttpMixin` takes from the parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpSettings {
    pub username: Option<String>,
    pub password: Option<String>,
    pub headers: Vec<(String, String)>,
    pub verify: VerifyCert,
    pub timeout: HttpTimeout,
    pub max_tries: u32,
    pub http_proxy: Option<String>,
    pub https_proxy: Option<String>,
    pub user_agent: String,
    pub client_certificate: Option<String>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            username: None,
            password: None,
            headers: Vec::new(),
            verify: VerifyCert::Bool(true),
            timeout: HttpTimeout::secs(30.0),
            max_tries: 3,
            http_proxy: None,
            https_proxy: None,
            user_agent: DEFAULT_USER_AGENT.to_string(),
            client_certificate: None,
        }
    }
}

impl HttpSettings {
    /// Checks what can be checked without IO (proxy URLs).
    pub fn validate(&self) -> Result<(), ParamError> {
        for (key, proxy) in [("http_proxy", &self.http_proxy), ("https_proxy", &self.https_proxy)] {
            if let Some(p) = proxy {
                ureq::Proxy::new(p).map_err(|e| ParamError::new(key, format!("invalid proxy URL `{p}`: {e}")))?;
            }
        }
        Ok(())
    }

    /// The `Authorization` header of basic auth, when `http_username` is set.
    pub fn basic_auth(&self) -> Option<String> {
        let user = self.username.as_deref()?;
        let pass = self.password.as_deref().unwrap_or("");
        Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))))
    }
}

/// One HTTP answer, body read completely.
#[derive(Clone, Debug)]
pub struct HttpResponse {
    pub url: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A header's value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// 2xx passes; 5xx and 429 are `Unavailable` (retried with backoff); other codes are errors
    /// (IntelMQ: "HTTP response status code was N.").
    pub fn check_status(self) -> Result<HttpResponse, BotError> {
        status_error(self.status, &self.url).map_or(Ok(self), Err)
    }

    /// The body as JSON.
    pub fn json(&self) -> Result<Value, BotError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| BotError::Transient(format!("response of {} is not JSON: {e}", self.url)))
    }
}

/// The error of a non-2xx status, if any.
pub fn status_error(status: u16, url: &str) -> Option<BotError> {
    match status {
        200..=299 => None,
        429 | 500..=599 => Some(BotError::Unavailable(format!("HTTP response status code was {status} for {url}"))),
        _ => Some(BotError::Transient(format!("HTTP response status code was {status} for {url}"))),
    }
}

/// Maps a ureq error: the far side not reachable (connect, reset, timeout) is `Unavailable`,
/// a wrong URL is `Fatal`, the rest `Transient`.
pub fn ureq_error(err: ureq::Error, url: &str) -> BotError {
    use ureq::Error as E;
    match err {
        E::Io(_)
        | E::Timeout(_)
        | E::HostNotFound
        | E::ConnectionFailed
        | E::Protocol(_)
        | E::ConnectProxyFailed(_)
        | E::BodyStalled => BotError::Unavailable(format!("cannot fetch {url}: {err}")),
        E::BadUri(_) | E::Http(_) | E::InvalidProxyUrl => BotError::Fatal(format!("invalid URL `{url}`: {err}")),
        other => BotError::Transient(format!("cannot fetch {url}: {other}")),
    }
}

fn is_connect_error(err: &ureq::Error) -> bool {
    use ureq::Error as E;
    match err {
        E::ConnectionFailed | E::HostNotFound => true,
        E::Io(e) => matches!(
            e.kind(),
            std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::TimedOut
        ),
        E::Timeout(_) => true,
        _ => false,
    }
}

/// A blocking HTTP client with IntelMQ's HttpMixin behaviour: basic auth, `http_header`,
/// certificate checks, proxies, timeouts and `http_timeout_max_tries` attempts on connection
/// failures. Agents are built on first use (no IO while the bot is built).
pub struct HttpClient {
    pub settings: HttpSettings,
    agents: HashMap<bool, ureq::Agent>,
}

impl HttpClient {
    pub fn new(settings: HttpSettings) -> HttpClient {
        HttpClient { settings, agents: HashMap::new() }
    }

    /// The agent for http (false) or https (true) URLs.
    pub fn agent(&mut self, https: bool) -> Result<ureq::Agent, BotError> {
        if let Some(a) = self.agents.get(&https) {
            return Ok(a.clone());
        }
        let s = &self.settings;
        let mut tls = ureq::tls::TlsConfig::builder();
        match &s.verify {
            VerifyCert::Bool(false) => tls = tls.disable_verification(true),
            VerifyCert::Bool(true) => {}
            VerifyCert::CaPath(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| BotError::Fatal(format!("cannot read http_verify_cert file {path}: {e}")))?;
                let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
                    .filter_map(|i| match i {
                        Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                        _ => None,
                    })
                    .collect();
                if certs.is_empty() {
                    return Err(BotError::Fatal(format!("http_verify_cert file {path} holds no certificate")));
                }
                tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
            }
        }
        if let Some(path) = &s.client_certificate {
            let pem = std::fs::read(path)
                .map_err(|e| BotError::Fatal(format!("cannot read ssl_client_certificate file {path}: {e}")))?;
            let mut certs = Vec::new();
            let mut key = None;
            for item in ureq::tls::parse_pem(&pem) {
                match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
                    Ok(ureq::tls::PemItem::PrivateKey(k)) => key = Some(k),
                    _ => {}
                }
            }
            let key =
                key.ok_or_else(|| BotError::Fatal(format!("ssl_client_certificate file {path} holds no private key")))?;
            tls = tls.client_cert(Some(ureq::tls::ClientCert::new_with_certs(&certs, key)));
        }
        // IntelMQ uses the proxies only when both are set.
        let proxy = match (&s.http_proxy, &s.https_proxy) {
            (Some(h), Some(hs)) => {
                let p = if https { hs } else { h };
                Some(ureq::Proxy::new(p).map_err(|e| BotError::Fatal(format!("invalid proxy URL `{p}`: {e}")))?)
            }
            _ => None,
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs_f64(s.timeout.connect)))
            .timeout_per_read(Some(Duration::from_secs_f64(s.timeout.read)))
            .user_agent(s.user_agent.as_str())
            .tls_config(tls.build())
            .proxy(proxy)
            .build()
            .into();
        self.agents.insert(https, agent.clone());
        Ok(agent)
    }

    /// The request headers: basic auth, `http_header`, then `extra` (which win).
    fn headers(&self, extra: &[(&str, String)]) -> Vec<(String, String)> {
        let mut h: Vec<(String, String)> = Vec::new();
        if let Some(auth) = self.settings.basic_auth() {
            h.push(("Authorization".into(), auth));
        }
        for (k, v) in self.settings.headers.iter().cloned().chain(extra.iter().map(|(k, v)| (k.to_string(), v.clone())))
        {
            h.retain(|(old, _)| !old.eq_ignore_ascii_case(&k));
            h.push((k, v));
        }
        h
    }

    /// GET `url`, body read completely; the status is not checked.
    pub fn get(&mut self, url: &str, extra_headers: &[(&str, String)]) -> Result<HttpResponse, BotError> {
        self.request("GET", url, extra_headers, None)
    }

    /// POST `body` to `url`; the status is not checked.
    pub fn post(&mut self, url: &str, extra_headers: &[(&str, String)], body: &[u8]) -> Result<HttpResponse, BotError> {
        self.request("POST", url, extra_headers, Some(body))
    }

    /// One request with up to `http_timeout_max_tries` attempts when the connection fails.
    pub fn request(
        &mut self,
        method: &str,
        url: &str,
        extra_headers: &[(&str, String)],
        body: Option<&[u8]>,
    ) -> Result<HttpResponse, BotError> {
        let agent = self.agent(url.starts_with("https:"))?;
        let headers = self.headers(extra_headers);
        let tries = self.settings.max_tries.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match send(&agent, method, url, &headers, body) {
                Ok(r) => return Ok(r),
                Err(e) if attempt < tries && is_connect_error(&e) => continue,
                Err(e) => return Err(ureq_error(e, url)),
            }
        }
    }

    /// A streaming GET: the status and headers, and the body as a reader.
    pub fn open_stream(
        &mut self,
        url: &str,
        extra_headers: &[(&str, String)],
    ) -> Result<(u16, Box<dyn Read + Send>), BotError> {
        let agent = self.agent(url.starts_with("https:"))?;
        let mut req = agent.get(url);
        for (k, v) in self.headers(extra_headers) {
            req = req.header(k.as_str(), v.as_str());
        }
        let resp = req.call().map_err(|e| ureq_error(e, url))?;
        let status = resp.status().as_u16();
        Ok((status, Box::new(resp.into_body().into_reader())))
    }
}

fn send(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: Option<&[u8]>,
) -> Result<HttpResponse, ureq::Error> {
    let resp = match (method, body) {
        ("POST", body) => {
            let mut req = agent.post(url);
            for (k, v) in headers {
                req = req.header(k.as_str(), v.as_str());
            }
            req.send(body.unwrap_or_default())?
        }
        _ => {
            let mut req = agent.get(url);
            for (k, v) in headers {
                req = req.header(k.as_str(), v.as_str());
            }
            req.call()?
        }
    };
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let mut body = Vec::new();
    resp.into_body().into_reader().read_to_end(&mut body).map_err(ureq::Error::Io)?;
    Ok(HttpResponse { url: url.to_string(), status, headers, body })
}

/// A new report holding `data` as `raw` (base64 of the bytes, as IntelMQ's `add("raw", bytes)`).
pub fn raw_report(ctx: &Context<'_>, data: &[u8]) -> Result<Message, BotError> {
    let mut report = Message::new_report(ctx.harmonization.clone());
    let raw = base64::engine::general_purpose::STANDARD.encode(data);
    report.add_with(
        "raw",
        Value::String(raw),
        AddOptions { sanitize: false, overwrite: Some(true), raise_failure: true },
    )?;
    Ok(report)
}

/// Python's `json.dumps(value, sort_keys=...)` text: `", "` and `": "` separators, non-ASCII
/// escaped as `\uXXXX` (what IntelMQ's API collectors put into `raw`).
pub fn python_json(value: &Value, sort_keys: bool) -> String {
    let mut out = String::new();
    write_python_json(&mut out, value, sort_keys);
    out
}

fn write_python_json(out: &mut String, value: &Value, sort_keys: bool) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_python_str(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_python_json(out, item, sort_keys);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            if sort_keys {
                entries.sort_by(|a, b| a.0.cmp(b.0));
            }
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_python_str(out, k);
                out.push_str(": ");
                write_python_json(out, v, sort_keys);
            }
            out.push('}');
        }
    }
}

fn write_python_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// HMAC-SHA256 of `data` under `key`, hex (Python `hmac.new(key, data, sha256).hexdigest()`).
pub fn hmac_sha256_hex(key: &[u8], data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    const BLOCK: usize = 64;
    let mut k = if key.len() > BLOCK { Sha256::digest(key).to_vec() } else { key.to_vec() };
    k.resize(BLOCK, 0);
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new().chain_update(&ipad).chain_update(data).finalize();
    let outer = Sha256::new().chain_update(&opad).chain_update(inner).finalize();
    outer.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why data could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum UnzipError {
    #[error("could not unpack the given data (neither zip, tar nor gzip)")]
    Unknown,
    #[error("file `{0}` is not in the archive")]
    Missing(String),
    #[error("broken archive: {0}")]
    Broken(String),
}

/// IntelMQ's `utils.unzip(..., return_names=True)`: tries zip, then tar (plain or gzip-compressed),
/// then gzip. `extract` names the files to take (`All` or `No`: every regular file). Gzip data
/// yields one file without a name.
pub fn unzip(
    data: &[u8],
    extract: &ExtractFiles,
    try_gzip: bool,
    try_zip: bool,
    try_tar: bool,
) -> Result<Vec<(Option<String>, Vec<u8>)>, UnzipError> {
    let names = match extract {
        ExtractFiles::Names(n) => Some(n.as_slice()),
        _ => None,
    };
    if try_zip && (data.starts_with(b"PK\x03\x04") || data.starts_with(b"PK\x05\x06")) {
        return unzip_zip(data, names);
    }
    let gunzipped = if data.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(data)
            .read_to_end(&mut out)
            .map_err(|e| UnzipError::Broken(format!("gzip: {e}")))
            .map(|_| Some(out))?
    } else {
        None
    };
    if try_tar {
        let tar_data = gunzipped.as_deref().unwrap_or(data);
        if is_tar(tar_data) {
            return untar(tar_data, names);
        }
    }
    if try_gzip {
        if let Some(out) = gunzipped {
            return Ok(vec![(None, out)]);
        }
    }
    Err(UnzipError::Unknown)
}

fn unzip_zip(data: &[u8], names: Option<&[String]>) -> Result<Vec<(Option<String>, Vec<u8>)>, UnzipError> {
    let broken = |e: zip::result::ZipError| UnzipError::Broken(format!("zip: {e}"));
    let mut archive = zip::ZipArchive::new(Cursor::new(data)).map_err(broken)?;
    let wanted: Vec<String> = match names {
        Some(n) => n.to_vec(),
        None => {
            let mut all = Vec::new();
            for i in 0..archive.len() {
                let f = archive.by_index(i).map_err(broken)?;
                if !f.is_dir() {
                    all.push(f.name().to_string());
                }
            }
            all
        }
    };
    let mut out = Vec::new();
    for name in wanted {
        let mut f = match archive.by_name(&name) {
            Ok(f) => f,
            Err(zip::result::ZipError::FileNotFound) => return Err(UnzipError::Missing(name)),
            Err(e) => return Err(broken(e)),
        };
        let mut buf = Vec::new();
        f.read_to_end(&mut buf).map_err(|e| UnzipError::Broken(format!("zip entry {name}: {e}")))?;
        out.push((Some(name), buf));
    }
    Ok(out)
}

fn is_tar(data: &[u8]) -> bool {
    data.len() >= 512 && data.get(257..262) == Some(b"ustar".as_slice())
}

fn untar(data: &[u8], names: Option<&[String]>) -> Result<Vec<(Option<String>, Vec<u8>)>, UnzipError> {
    let broken = |e: std::io::Error| UnzipError::Broken(format!("tar: {e}"));
    let mut archive = tar::Archive::new(Cursor::new(data));
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for entry in archive.entries().map_err(broken)? {
        let mut entry = entry.map_err(broken)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry.path().map_err(broken)?.to_string_lossy().into_owned();
        let mut buf = Vec::new();
        entry.read_to_end(&mut buf).map_err(broken)?;
        files.push((name, buf));
    }
    match names {
        None => Ok(files.into_iter().map(|(n, d)| (Some(n), d)).collect()),
        Some(names) => names
            .iter()
            .map(|n| {
                files
                    .iter()
                    .find(|(f, _)| f == n)
                    .map(|(f, d)| (Some(f.clone()), d.clone()))
                    .ok_or_else(|| UnzipError::Missing(n.clone()))
            })
            .collect(),
    }
}

/// IntelMQ's `utils.parse_relative("<n> <unit>[s]")` in minutes.
pub fn parse_relative(text: &str) -> Option<i64> {
    let mut parts = text.split_whitespace();
    let n: i64 = parts.next()?.parse().ok()?;
    let unit = parts.next()?.to_ascii_lowercase();
    if parts.next().is_some() {
        return None;
    }
    let minutes = match unit.trim_end_matches('s') {
        "second" => return Some(n / 60),
        "minute" => 1,
        "hour" => 60,
        "day" => 1440,
        "week" => 10080,
        "month" => 43200,
        "year" => 525_600,
        _ => return None,
    };
    Some(n * minutes)
}

/// A date or time as APIs write them (RFC 3339, RFC 2822, `YYYY-MM-DD[ T]HH:MM:SS[.f]`, a date),
/// naive values taken as UTC.
pub fn parse_datetime(text: &str) -> Option<DateTime<chrono::Utc>> {
    use chrono::{NaiveDate, NaiveDateTime, Utc};
    let t = text.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Some(d.with_timezone(&Utc));
    }
    if let Ok(d) = DateTime::parse_from_rfc2822(t) {
        return Some(d.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"] {
        if let Ok(d) = NaiveDateTime::parse_from_str(t, f) {
            return Some(d.and_utc());
        }
    }
    NaiveDate::parse_from_str(t, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|d| d.and_utc())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod test_server {
    //! A tiny_http far end for the collector tests: serves canned answers and records requests.

    use std::sync::{Arc, Mutex};

    /// One recorded request.
    #[derive(Clone, Debug)]
    #[allow(dead_code)]
    pub struct Seen {
        pub method: String,
        pub url: String,
        pub headers: Vec<(String, String)>,
        pub body: Vec<u8>,
    }

    impl Seen {
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
        }
    }

    /// What to answer: status, headers, body.
    pub type Answer = (u16, Vec<(String, String)>, Vec<u8>);

    pub struct TestServer {
        pub base: String,
        pub seen: Arc<Mutex<Vec<Seen>>>,
        server: Arc<tiny_http::Server>,
    }

    impl TestServer {
        /// Serves `handler(request) -> answer` on 127.0.0.1 (a free port).
        pub fn start(handler: impl Fn(&Seen) -> Answer + Send + 'static) -> TestServer {
            let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
            let base = format!("http://{}", server.server_addr().to_ip().unwrap());
            let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
            let (s, log) = (server.clone(), seen.clone());
            std::thread::spawn(move || {
                for mut req in s.incoming_requests() {
                    let mut body = Vec::new();
                    let _ = req.as_reader().read_to_end(&mut body);
                    let entry = Seen {
                        method: req.method().as_str().to_string(),
                        url: req.url().to_string(),
                        headers: req
                            .headers()
                            .iter()
                            .map(|h| (h.field.as_str().as_str().to_string(), h.value.as_str().to_string()))
                            .collect(),
                        body,
                    };
                    let (status, headers, body) = handler(&entry);
                    log.lock().unwrap().push(entry);
                    let mut resp = tiny_http::Response::from_data(body).with_status_code(status);
                    for (k, v) in headers {
                        resp.add_header(tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).unwrap());
                    }
                    let _ = req.respond(resp);
                }
            });
            TestServer { base, seen, server }
        }

        pub fn requests(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }
    }

    impl Drop for TestServer {
        fn drop(&mut self) {
            self.server.unblock();
        }
    }

    pub fn ok(body: impl Into<Vec<u8>>) -> Answer {
        (200, Vec::new(), body.into())
    }

    /// One `collect` run on a memory state; returns the result, the reports and the log lines.
    pub fn collect(
        bot: &mut dyn crate::bots::CollectorBot,
        state: &mut crate::bots::MemoryState,
    ) -> (Result<(), crate::bots::BotError>, Vec<crate::message::Message>, Vec<String>) {
        let h = crate::bots::collectors::test_support::harmonization();
        let mut log = crate::bots::MemoryLog::default();
        let root = std::env::temp_dir();
        let mut out = crate::bots::CollectorOutput::default();
        let r = {
            let mut ctx = crate::bots::Context::new("test-collector", &h, &root, state, &mut log);
            bot.collect(&mut ctx, &mut out)
        };
        (r, out.reports, log.lines.into_iter().map(|(_, l)| l).collect())
    }

    /// `committed` after a run, on the same memory state.
    pub fn committed(
        bot: &mut dyn crate::bots::CollectorBot,
        state: &mut crate::bots::MemoryState,
    ) -> Result<(), crate::bots::BotError> {
        let h = crate::bots::collectors::test_support::harmonization();
        let mut log = crate::bots::MemoryLog::default();
        let root = std::env::temp_dir();
        let mut ctx = crate::bots::Context::new("test-collector", &h, &root, state, &mut log);
        bot.committed(&mut ctx)
    }

    /// The `raw` of a report as text.
    pub fn raw(r: &crate::message::Message) -> String {
        String::from_utf8(r.raw_bytes().unwrap()).unwrap()
    }

    /// Parameters from JSON, as the registry parses them.
    pub fn params<P: serde::de::DeserializeOwned>(v: serde_json::Value) -> P {
        crate::bots::registry::parse_params(v.as_object().unwrap()).unwrap()
    }

    /// A zip archive of `files`.
    pub fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        use std::io::Write;
        let mut buf = std::io::Cursor::new(Vec::new());
        {
            let mut w = zip::ZipWriter::new(&mut buf);
            for (name, data) in files {
                w.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
                w.write_all(data).unwrap();
            }
            w.finish().unwrap();
        }
        buf.into_inner()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::Write;

    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    #[test]
    fn time_placeholders_are_filled_and_escapes_kept() {
        let t = chrono::Utc.with_ymd_and_hms(2024, 3, 5, 7, 8, 9).unwrap();
        let s = format_time_placeholders("http://x/{time[%Y-%m-%d]}/f{{x}}_{time[%H]}.csv", &t).unwrap();
        assert_eq!(s, "http://x/2024-03-05/f{x}_07.csv");
        assert!(format_time_placeholders("http://x/{other}", &t).unwrap_err().contains("{other}"));
    }

    #[test]
    fn time_formatting_accepts_bools_strings_and_timedelta_objects() {
        let f: TimeFormatting = serde_json::from_value(json!({"days": -1})).unwrap();
        assert_eq!(f.delta().unwrap(), chrono::Duration::days(-1));
        let f: TimeFormatting = serde_json::from_value(json!("true")).unwrap();
        assert_eq!(f, TimeFormatting::Now);
        let f: TimeFormatting = serde_json::from_value(json!("{\"hours\": 2}")).unwrap();
        assert_eq!(f.delta().unwrap(), chrono::Duration::hours(2));
        assert!(serde_json::from_value::<TimeFormatting>(json!({"fortnights": 1})).is_err());
        let yesterday = (Local::now() - chrono::Duration::days(1)).format("%Y-%m-%d").to_string();
        let f = TimeFormatting::Delta(json!({"days": -1}).as_object().unwrap().clone());
        assert_eq!(f.apply("{time[%Y-%m-%d]}").unwrap(), yesterday);
    }

    #[test]
    fn extract_files_takes_bools_lists_and_comma_strings() {
        let e = |v| serde_json::from_value::<ExtractFiles>(v).unwrap();
        assert_eq!(e(json!(true)), ExtractFiles::All);
        assert_eq!(e(json!("false")), ExtractFiles::No);
        assert_eq!(e(json!("a.csv, b.csv")), ExtractFiles::Names(vec!["a.csv".into(), "b.csv".into()]));
        assert_eq!(e(json!(["a.csv"])), ExtractFiles::Names(vec!["a.csv".into()]));
        assert_eq!(e(json!(null)), ExtractFiles::No);
    }

    #[test]
    fn timeout_takes_a_number_a_string_or_a_pair() {
        let t = |v| serde_json::from_value::<HttpTimeout>(v).unwrap();
        assert_eq!(t(json!(5)), HttpTimeout::secs(5.0));
        assert_eq!(t(json!("7.5")), HttpTimeout::secs(7.5));
        assert_eq!(t(json!([1, 20])), HttpTimeout { connect: 1.0, read: 20.0 });
        assert!(serde_json::from_value::<HttpTimeout>(json!(0)).is_err());
    }

    fn tar_gz_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let mut b = tar::Builder::new(gz);
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn unzip_reads_zip_tar_gz_and_gzip_and_selects_names() {
        let z = test_server::zip_of(&[("a.csv", b"1\n"), ("b.csv", b"2\n")]);
        let all = unzip(&z, &ExtractFiles::All, true, true, true).unwrap();
        assert_eq!(all, vec![(Some("a.csv".into()), b"1\n".to_vec()), (Some("b.csv".into()), b"2\n".to_vec())]);
        let one = unzip(&z, &ExtractFiles::Names(vec!["b.csv".into()]), true, true, true).unwrap();
        assert_eq!(one, vec![(Some("b.csv".into()), b"2\n".to_vec())]);
        assert!(matches!(
            unzip(&z, &ExtractFiles::Names(vec!["c.csv".into()]), true, true, true),
            Err(UnzipError::Missing(_))
        ));

        let t = tar_gz_of(&[("x/y.txt", b"hello")]);
        assert_eq!(
            unzip(&t, &ExtractFiles::All, true, true, true).unwrap(),
            vec![(Some("x/y.txt".into()), b"hello".to_vec())]
        );

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"plain data").unwrap();
        let g = gz.finish().unwrap();
        assert_eq!(unzip(&g, &ExtractFiles::All, true, true, true).unwrap(), vec![(None, b"plain data".to_vec())]);
        assert!(matches!(unzip(&g, &ExtractFiles::All, false, true, true), Err(UnzipError::Unknown)));
        assert!(matches!(unzip(b"just text", &ExtractFiles::All, true, true, true), Err(UnzipError::Unknown)));
    }

    #[test]
    fn python_json_matches_json_dumps() {
        let v = json!({"b": [1, 2.5, null], "a": "x\u{e9}\"\n", "c": {"z": true, "y": false}});
        assert_eq!(python_json(&v, true), r#"{"a": "x\u00e9\"\n", "b": [1, 2.5, null], "c": {"y": false, "z": true}}"#);
        assert_eq!(python_json(&json!("\u{1F600}"), false), r#""\ud83d\ude00""#);
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        assert_eq!(
            hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn relative_times_are_minutes() {
        assert_eq!(parse_relative("2 days"), Some(2880));
        assert_eq!(parse_relative("1 hour"), Some(60));
        assert_eq!(parse_relative("soon"), None);
    }

    #[test]
    fn datetimes_in_common_api_forms_parse() {
        let want = chrono::Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(parse_datetime("2024-01-02T03:04:05Z"), Some(want));
        assert_eq!(parse_datetime("2024-01-02 03:04:05"), Some(want));
        assert_eq!(parse_datetime("Tue, 02 Jan 2024 03:04:05 +0000"), Some(want));
    }

    #[test]
    fn client_sends_basic_auth_headers_and_maps_statuses() {
        let server = test_server::TestServer::start(|req| match req.url.as_str() {
            "/ok" => test_server::ok("fine"),
            "/busy" => (503, Vec::new(), b"later".to_vec()),
            _ => (404, Vec::new(), Vec::new()),
        });
        let mut settings = HttpSettings {
            username: Some("u".into()),
            password: Some("p".into()),
            headers: vec![("X-Test".into(), "1".into())],
            ..HttpSettings::default()
        };
        settings.timeout = HttpTimeout::secs(5.0);
        let mut client = HttpClient::new(settings);
        let r = client.get(&format!("{}/ok", server.base), &[]).unwrap().check_status().unwrap();
        assert_eq!(r.body, b"fine");
        let seen = server.requests();
        assert_eq!(seen[0].header("authorization"), Some("Basic dTpw"));
        assert_eq!(seen[0].header("x-test"), Some("1"));
        assert_eq!(seen[0].header("user-agent"), Some(DEFAULT_USER_AGENT));
        let busy = client.get(&format!("{}/busy", server.base), &[]).unwrap().check_status();
        assert!(matches!(busy, Err(BotError::Unavailable(_))));
        let gone = client.get(&format!("{}/gone", server.base), &[]).unwrap().check_status();
        assert!(matches!(gone, Err(BotError::Transient(ref m)) if m.contains("404")));
    }

    #[test]
    fn connection_refused_is_unavailable() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut client = HttpClient::new(HttpSettings { max_tries: 2, ..HttpSettings::default() });
        let err = client.get(&format!("http://127.0.0.1:{port}/x"), &[]).unwrap_err();
        assert!(matches!(err, BotError::Unavailable(_)), "{err:?}");
    }
}
