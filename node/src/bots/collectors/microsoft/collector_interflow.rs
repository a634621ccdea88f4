//! `intelmq.bots.collectors.microsoft.collector_interflow`: Microsoft Interflow's shared files.
//! Lists `<api_url>listsharedfiles` (header `Ocp-Apim-Subscription-Key: <api_key>`), keeps files
//! whose `Name` matches `file_match` (anchored at the start) and whose `LastModified` is not older
//! than `not_older_than` (relative like "2 days", or an absolute time), skips files already
//! collected, downloads each (`<api_url>download?fileName=<name>`, gunzipped when the name ends
//! with `.gz`) into a Report with `raw` and `feed.url`.
//!
//! IntelMQ remembers collected names in Redis; here they are kept in the bot state for
//! `redis_cache_ttl` seconds, committed with the reports (the `redis_cache_*` parameters are
//! accepted). `api_url` is our addition (default: the real endpoint), so tests can point it at a
//! local server; real use needs the network.

use std::io::Read;

use serde_json::Value;

use crate::bots::collectors::http::mixin::{self, de, http_params, HttpClient};
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, CollectorBot, CollectorOutput, Context, Level, ParamError};

http_params! {
    /// Parameters of the Interflow collector (IntelMQ's names and defaults).
    pub struct MicrosoftInterflowCollectorParams {
        /// `api_key`: the Interflow subscription key; default "" (required).
        #[serde(deserialize_with = "de::string")]
        pub api_key: String = String::new(),
        /// `file_match`: regex the file names must match (at their start); default null (all).
        #[serde(deserialize_with = "de::opt_string")]
        pub file_match: Option<String> = None,
        /// `not_older_than`: relative ("2 days") or absolute time limit of `LastModified`; default "2 days".
        #[serde(deserialize_with = "de::opt_string")]
        pub not_older_than: Option<String> = Some("2 days".to_string()),
        /// `api_url`: base URL of the file API (our addition); default "https://interflow.azure-api.net/file/api/file/".
        #[serde(deserialize_with = "de::string")]
        pub api_url: String = "https://interflow.azure-api.net/file/api/file/".to_string(),
        /// `redis_cache_host`: accepted; collected names are kept in the bot state; default "127.0.0.1".
        #[serde(deserialize_with = "de::string")]
        pub redis_cache_host: String = "127.0.0.1".to_string(),
        /// `redis_cache_port`: accepted, unused; default 6379.
        #[serde(deserialize_with = "de::u16")]
        pub redis_cache_port: u16 = 6379,
        /// `redis_cache_db`: accepted, unused; default 5.
        #[serde(deserialize_with = "de::u32")]
        pub redis_cache_db: u32 = 5,
        /// `redis_cache_password`: accepted, unused; default null.
        #[serde(deserialize_with = "de::opt_string")]
        pub redis_cache_password: Option<String> = None,
        /// `redis_cache_ttl`: seconds a collected file name is remembered; default 604800.
        #[serde(deserialize_with = "de::u32")]
        pub redis_cache_ttl: u32 = 604_800,
        /// `rate_limit`: the fetch interval in seconds, applied by the runtime; default 3600.
        #[serde(deserialize_with = "de::f64")]
        pub rate_limit: f64 = 3600.0,
    }
    http_timeout_sec = 300.0;
}

/// `not_older_than`, parsed.
#[derive(Clone, Copy, Debug, PartialEq)]
enum TimeLimit {
    None,
    Relative(chrono::Duration),
    Absolute(chrono::DateTime<chrono::Utc>),
}

/// Collects Interflow files.
pub struct MicrosoftInterflowCollectorBot {
    api_key: String,
    api_url: String,
    file_match: Option<regex::Regex>,
    limit: TimeLimit,
    ttl: chrono::Duration,
    client: HttpClient,
}

impl BuildBot for MicrosoftInterflowCollectorBot {
    type Params = MicrosoftInterflowCollectorParams;

    fn build(params: MicrosoftInterflowCollectorParams) -> Result<Self, ParamError> {
        if params.api_key.is_empty() {
            return Err(ParamError::new("api_key", "no api_key given"));
        }
        let file_match = match &params.file_match {
            Some(p) => Some(
                regex::Regex::new(&format!("^(?:{p})")).map_err(|e| ParamError::new("file_match", e.to_string()))?,
            ),
            None => None,
        };
        let ttl = chrono::Duration::seconds(i64::from(params.redis_cache_ttl));
        let limit = match &params.not_older_than {
            None => TimeLimit::None,
            Some(text) => match mixin::parse_relative(text) {
                Some(minutes) => {
                    let d = chrono::Duration::minutes(minutes);
                    if ttl < d {
                        return Err(ParamError::new(
                            "not_older_than",
                            "the cache's TTL (redis_cache_ttl) must be higher than not_older_than, otherwise the same data is processed over and over again",
                        ));
                    }
                    TimeLimit::Relative(d)
                }
                None => TimeLimit::Absolute(mixin::parse_datetime(text).ok_or_else(|| {
                    ParamError::new(
                        "not_older_than",
                        format!("`{text}` is neither a relative time like \"2 days\" nor a date"),
                    )
                })?),
            },
        };
        let settings = params.http_settings();
        settings.validate()?;
        let api_url =
            if params.api_url.ends_with('/') { params.api_url.clone() } else { format!("{}/", params.api_url) };
        Ok(MicrosoftInterflowCollectorBot {
            api_key: params.api_key.clone(),
            api_url,
            file_match,
            limit,
            ttl,
            client: HttpClient::new(settings),
        })
    }
}

impl CollectorBot for MicrosoftInterflowCollectorBot {
    fn collect(&mut self, ctx: &mut Context<'_>, out: &mut CollectorOutput) -> Result<(), BotError> {
        let now = ctx.now();
        if let TimeLimit::Absolute(t) = self.limit {
            if now - self.ttl > t {
                return Err(BotError::Fatal(
                    "the cache's TTL must be higher than 'not_older_than', otherwise the bot is processing the same data over and over again".into(),
                ));
            }
        }
        let headers = [("Ocp-Apim-Subscription-Key", self.api_key.clone())];
        ctx.log.log(Level::Debug, "Downloading file list.");
        let list = self.client.get(&format!("{}listsharedfiles", self.api_url), &headers)?.check_status()?.json()?;
        let Value::Array(files) = list else {
            return Err(BotError::Transient(format!("unexpected Interflow file list: {list}")));
        };
        ctx.log.log(Level::Debug, &format!("Downloaded file list, {} entries.", files.len()));
        for file in files {
            let Some(name) = file["Name"].as_str() else { continue };
            let key = format!("file:{name}").into_bytes();
            if ctx.state.get(&key).is_some() {
                ctx.log.log(Level::Debug, &format!("Processed file {name} already."));
                continue;
            }
            if self.file_match.as_ref().is_some_and(|r| !r.is_match(name)) {
                ctx.log.log(Level::Debug, &format!("File {name:?} does not match filename filter."));
                continue;
            }
            let modified = file["LastModified"].as_str().and_then(mixin::parse_datetime);
            let too_old = match (self.limit, modified) {
                (TimeLimit::Absolute(t), Some(m)) => m < t,
                (TimeLimit::Relative(d), Some(m)) => m < now - d,
                _ => false,
            };
            if too_old {
                ctx.log.log(Level::Debug, &format!("File {name:?} does not match the time filter."));
                continue;
            }
            ctx.log.log(Level::Debug, &format!("Processing file {name:?}."));
            let q: String = url::form_urlencoded::byte_serialize(name.as_bytes()).collect();
            let download_url = format!("{}download?fileName={q}", self.api_url);
            let data = self.client.get(&download_url, &headers)?.check_status()?;
            let raw = if download_url.ends_with(".gz") {
                let mut out = Vec::new();
                flate2::read::MultiGzDecoder::new(&data.body[..])
                    .read_to_end(&mut out)
                    .map_err(|e| BotError::Transient(format!("cannot gunzip {name}: {e}")))?;
                out
            } else {
                data.body
            };
            let mut report = mixin::raw_report(ctx, &raw)?;
            report.add("feed.url", download_url.as_str())?;
            out.send(report);
            let ttl = self.ttl.to_std().unwrap_or_default();
            ctx.state.put(&key, b"1", Some(ttl));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::Write;

    use serde_json::json;

    use super::*;
    use crate::bots::collectors::http::mixin::test_server::{collect, ok, params, raw, TestServer};
    use crate::bots::MemoryState;

    #[test]
    fn new_matching_files_are_downloaded_once_and_gz_unpacked() {
        let recent = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
        let old = (chrono::Utc::now() - chrono::Duration::days(5)).to_rfc3339();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"{\"a\": 1}\n").unwrap();
        let gz = gz.finish().unwrap();
        let server = TestServer::start(move |req| {
            if req.header("ocp-apim-subscription-key") != Some("KEY") {
                return (401, Vec::new(), Vec::new());
            }
            match req.url.as_str() {
                "/api/listsharedfiles" => ok(json!([
                    {"Name": "ctip_1.json.gz", "LastModified": recent},
                    {"Name": "ctip_old.json", "LastModified": old},
                    {"Name": "other.json", "LastModified": recent}
                ])
                .to_string()),
                "/api/download?fileName=ctip_1.json.gz" => ok(gz.clone()),
                _ => (404, Vec::new(), Vec::new()),
            }
        });
        let mut bot = MicrosoftInterflowCollectorBot::build(params(json!({
            "api_key": "KEY", "file_match": "ctip_", "api_url": format!("{}/api", server.base)
        })))
        .unwrap();
        let mut state = MemoryState::default();
        let (r, reports, _) = collect(&mut bot, &mut state);
        r.unwrap();
        assert_eq!(reports.len(), 1);
        assert_eq!(raw(&reports[0]), "{\"a\": 1}\n");
        assert_eq!(
            reports[0].get_str("feed.url"),
            Some(format!("{}/api/download?fileName=ctip_1.json.gz", server.base).as_str())
        );
        let (r, reports, _) = collect(&mut bot, &mut state);
        r.unwrap();
        assert!(reports.is_empty());
    }

    #[test]
    fn api_key_is_required_and_ttl_must_cover_the_window() {
        assert_eq!(MicrosoftInterflowCollectorBot::build(params(json!({}))).err().unwrap().key, "api_key");
        let err = MicrosoftInterflowCollectorBot::build(params(json!({
            "api_key": "k", "not_older_than": "30 days", "redis_cache_ttl": 3600
        })))
        .err()
        .unwrap();
        assert_eq!(err.key, "not_older_than");
        assert_eq!(MicrosoftInterflowCollectorParams::default().http_timeout_sec, mixin::HttpTimeout::secs(300.0));
    }
}
