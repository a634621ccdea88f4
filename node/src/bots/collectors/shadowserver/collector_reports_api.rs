//! `intelmq.bots.collectors.shadowserver.collector_reports_api`: Shadowserver's reports API. Lists
//! the reports of the last two days (`POST <api_url>reports/list` with the body
//! `{ "apikey": "<key>" ,"reports": [...] ,"date": "<today-2d>:<today>" }`, signed with the header
//! `HMAC2` = hex HMAC-SHA256 of the body under `secret`), keeps those of the wanted `types`,
//! skips files already collected, downloads each (`GET <download_url><id>`) into a Report with
//! `raw` and `extra.file_name` (a `.json` extension normalised to `.csv`).
//!
//! IntelMQ remembers collected file names in Redis (`redis_cache_*`); here they are kept in the
//! bot state for `redis_cache_ttl` seconds, written in the same commit as the reports (the
//! `redis_cache_*` parameters are accepted, the TTL is used). `api_url` and `download_url` are
//! our additions (defaults: the real endpoints), so tests can point them at a local server; real
//! use needs the network.

use serde_json::Value;

use crate::bots::collectors::http::mixin::{self, de, http_params, HttpClient};
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, CollectorBot, CollectorOutput, Context, Level, ParamError};

http_params! {
    /// Parameters of the Shadowserver reports API collector (IntelMQ's names and defaults).
    pub struct ShadowserverReportsApiCollectorParams {
        /// `api_key`: the Shadowserver API key; default null (required).
        #[serde(deserialize_with = "de::opt_string")]
        pub api_key: Option<String> = None,
        /// `secret`: the API secret signing the requests; default null (required).
        #[serde(deserialize_with = "de::opt_string")]
        pub secret: Option<String> = None,
        /// `country`: deprecated, appended to `reports`; default null.
        #[serde(deserialize_with = "de::opt_string")]
        pub country: Option<String> = None,
        /// `reports`: report names (mailing lists) to list (list or comma string; empty = all); default null.
        #[serde(deserialize_with = "de::opt_string_list")]
        pub reports: Option<Vec<String>> = None,
        /// `types`: report types to collect (list or comma string; empty = all); default null.
        #[serde(deserialize_with = "de::opt_string_list")]
        pub types: Option<Vec<String>> = None,
        /// `api_url`: base URL of the reports API (our addition); default "https://transform.shadowserver.org/api2/".
        #[serde(deserialize_with = "de::string")]
        pub api_url: String = "https://transform.shadowserver.org/api2/".to_string(),
        /// `download_url`: base URL of report downloads (our addition); default "https://dl.shadowserver.org/".
        #[serde(deserialize_with = "de::string")]
        pub download_url: String = "https://dl.shadowserver.org/".to_string(),
        /// `redis_cache_host`: accepted; collected names are kept in the bot state; default "127.0.0.1".
        #[serde(deserialize_with = "de::string")]
        pub redis_cache_host: String = "127.0.0.1".to_string(),
        /// `redis_cache_port`: accepted, unused; default 6379.
        #[serde(deserialize_with = "de::u16")]
        pub redis_cache_port: u16 = 6379,
        /// `redis_cache_db`: accepted, unused; default 12.
        #[serde(deserialize_with = "de::u32")]
        pub redis_cache_db: u32 = 12,
        /// `redis_cache_password`: accepted, unused; default null.
        #[serde(deserialize_with = "de::opt_string")]
        pub redis_cache_password: Option<String> = None,
        /// `redis_cache_ttl`: seconds a collected file name is remembered; default 864000.
        #[serde(deserialize_with = "de::u32")]
        pub redis_cache_ttl: u32 = 864_000,
        /// `rate_limit`: the fetch interval in seconds, applied by the runtime; default 86400.
        #[serde(deserialize_with = "de::f64")]
        pub rate_limit: f64 = 86400.0,
    }
    http_timeout_sec = 30.0;
}

/// Collects Shadowserver reports.
pub struct ShadowserverReportsApiCollectorBot {
    api_key: String,
    secret: String,
    reports: Vec<String>,
    types: Vec<String>,
    api_url: String,
    download_url: String,
    ttl: std::time::Duration,
    client: HttpClient,
}

impl BuildBot for ShadowserverReportsApiCollectorBot {
    type Params = ShadowserverReportsApiCollectorParams;

    fn build(params: ShadowserverReportsApiCollectorParams) -> Result<Self, ParamError> {
        let api_key = params.api_key.clone().ok_or_else(|| ParamError::new("api_key", "no api_key provided"))?;
        let secret = params.secret.clone().ok_or_else(|| ParamError::new("secret", "no secret provided"))?;
        let mut reports = params.reports.clone().unwrap_or_default();
        if let Some(c) = &params.country {
            if !reports.contains(c) {
                reports.push(c.clone());
            }
        }
        let settings = params.http_settings();
        settings.validate()?;
        let slash = |s: &str| if s.ends_with('/') { s.to_string() } else { format!("{s}/") };
        Ok(ShadowserverReportsApiCollectorBot {
            api_key,
            secret,
            reports,
            types: params.types.clone().unwrap_or_default(),
            api_url: slash(&params.api_url),
            download_url: slash(&params.download_url),
            ttl: std::time::Duration::from_secs(u64::from(params.redis_cache_ttl)),
            client: HttpClient::new(settings),
        })
    }
}

/// The name under which a report is delivered: a `.json` extension becomes `.csv`.
fn fixed_file_name(name: &str) -> String {
    match name.strip_suffix(".json") {
        Some(stem) => format!("{stem}.csv"),
        None => name.to_string(),
    }
}

impl ShadowserverReportsApiCollectorBot {
    /// The list request body, written as IntelMQ writes it.
    fn list_body(&self, today: chrono::NaiveDate) -> String {
        let mut data = format!("{{ \"apikey\": \"{}\" ", self.api_key);
        if !self.reports.is_empty() {
            let quoted: Vec<String> = self.reports.iter().map(|r| Value::String(r.clone()).to_string()).collect();
            data.push_str(&format!(",\"reports\": [{}] ", quoted.join(", ")));
        }
        let before = today - chrono::Duration::days(2);
        data.push_str(&format!(",\"date\": \"{}:{}\" ", before.format("%Y-%m-%d"), today.format("%Y-%m-%d")));
        data.push('}');
        data
    }

    fn wanted(&self, item: &Value) -> bool {
        if self.types.is_empty() {
            return true;
        }
        match item["type"].as_str() {
            Some(t) => self.types.iter().any(|w| w == t),
            None => item["file"].as_str().is_some_and(|f| self.types.iter().any(|w| f.contains(w.as_str()))),
        }
    }
}

impl CollectorBot for ShadowserverReportsApiCollectorBot {
    fn collect(&mut self, ctx: &mut Context<'_>, out: &mut CollectorOutput) -> Result<(), BotError> {
        let body = self.list_body(chrono::Local::now().date_naive());
        ctx.log.log(Level::Debug, &format!("Downloading report list with data: {body}."));
        let sig = mixin::hmac_sha256_hex(self.secret.as_bytes(), body.as_bytes());
        let url = format!("{}reports/list", self.api_url);
        let list = self.client.post(&url, &[("HMAC2", sig)], body.as_bytes())?.check_status()?.json()?;
        let items = match list {
            Value::Array(a) => a,
            Value::Object(o) if o.contains_key("error") => {
                return Err(BotError::Transient(format!("Shadowserver refused the report list: {}", o["error"])));
            }
            other => return Err(BotError::Transient(format!("unexpected report list from {url}: {other}"))),
        };
        let total = items.len();
        let mut downloaded = 0;
        let wanted: Vec<Value> = items.into_iter().filter(|i| self.wanted(i)).collect();
        for item in wanted {
            let (Some(file), Some(id)) = (item["file"].as_str(), item["id"].as_str()) else {
                ctx.log.log(Level::Warning, &format!("Skipping a report list entry without file or id: {item}."));
                continue;
            };
            let key = format!("file:{file}").into_bytes();
            let fixed = fixed_file_name(file);
            if ctx.state.get(&key).is_some() {
                ctx.log.log(Level::Debug, &format!("Processed file {file:?} (fixed: {fixed:?}) already."));
                continue;
            }
            let data = self.client.get(&format!("{}{id}", self.download_url), &[])?.check_status()?;
            let mut report = mixin::raw_report(ctx, &data.body)?;
            report.add("extra.file_name", fixed)?;
            out.send(report);
            ctx.state.put(&key, b"1", Some(self.ttl));
            downloaded += 1;
        }
        ctx.log.log(Level::Info, &format!("Downloaded {downloaded} of {total} available reports."));
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::bots::collectors::http::mixin::test_server::{collect, ok, params, raw, TestServer};
    use crate::bots::MemoryState;

    #[test]
    fn list_is_signed_filtered_and_files_are_collected_once() {
        let server = TestServer::start(|req| match req.url.as_str() {
            "/api2/reports/list" => {
                let sig = mixin::hmac_sha256_hex(b"s3cret", &req.body);
                if req.header("hmac2") != Some(sig.as_str()) {
                    return (401, Vec::new(), b"{\"error\": \"bad signature\"}".to_vec());
                }
                ok(json!([
                    {"id": "A1", "type": "scan_http", "file": "2024-01-01-scan_http-at.csv"},
                    {"id": "B2", "type": "device_id", "file": "2024-01-01-device_id-at.json"},
                    {"id": "C3", "type": "event4_sinkhole", "file": "2024-01-01-sinkhole-at.csv"}
                ])
                .to_string())
            }
            "/dl/A1" => ok("ip,port\n1.2.3.4,80\n"),
            "/dl/B2" => ok("ip\n5.6.7.8\n"),
            _ => (404, Vec::new(), Vec::new()),
        });
        let mut bot = ShadowserverReportsApiCollectorBot::build(params(json!({
            "api_key": "KEY", "secret": "s3cret", "reports": "austria", "types": ["scan_http", "device_id"],
            "api_url": format!("{}/api2", server.base), "download_url": format!("{}/dl/", server.base)
        })))
        .unwrap();
        let mut state = MemoryState::default();
        let (r, reports, _) = collect(&mut bot, &mut state);
        r.unwrap();
        let got: Vec<(String, String)> =
            reports.iter().map(|r| (r.get_str("extra.file_name").unwrap().to_string(), raw(r))).collect();
        assert_eq!(
            got,
            vec![
                ("2024-01-01-scan_http-at.csv".into(), "ip,port\n1.2.3.4,80\n".into()),
                ("2024-01-01-device_id-at.csv".into(), "ip\n5.6.7.8\n".into())
            ]
        );
        let body = String::from_utf8(server.requests()[0].body.clone()).unwrap();
        assert!(body.starts_with("{ \"apikey\": \"KEY\" ,\"reports\": [\"austria\"] ,\"date\": \""), "{body}");
        // The second run lists again but downloads nothing new.
        let (r, reports, _) = collect(&mut bot, &mut state);
        r.unwrap();
        assert!(reports.is_empty());
        assert_eq!(server.requests().iter().filter(|r| r.url.starts_with("/dl/")).count(), 2);
    }

    #[test]
    fn key_and_secret_are_required() {
        assert_eq!(
            ShadowserverReportsApiCollectorBot::build(params(json!({"secret": "s"}))).err().unwrap().key,
            "api_key"
        );
        assert_eq!(
            ShadowserverReportsApiCollectorBot::build(params(json!({"api_key": "k"}))).err().unwrap().key,
            "secret"
        );
    }
}
