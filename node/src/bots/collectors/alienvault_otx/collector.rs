//! `intelmq.bots.collectors.alienvault_otx.collector`: all subscribed pulses of AlienVault OTX
//! (or, with `modified_pulses_only`, those modified in the last `interval` hours) in one Report
//! whose `raw` is the JSON list (Python `json.dumps`). Requests are those of the OTXv2 SDK:
//! `GET <api_url>/api/v1/pulses/subscribed?limit=50&page=1[&modified_since=<iso>]` with header
//! `X-OTX-API-KEY`, following `next` until it is null. `api_url` (our addition) is the base URL,
//! so tests can point it at a local server; real use needs the network.

use serde_json::Value;

use crate::bots::collectors::http::mixin::{self, de, http_params, HttpClient};
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, CollectorBot, CollectorOutput, Context, Level, ParamError};

/// Pages followed at most (a guard against a `next` loop).
const MAX_PAGES: usize = 10_000;

http_params! {
    /// Parameters of the AlienVault OTX collector (IntelMQ's names and defaults).
    pub struct AlienvaultOtxCollectorParams {
        /// `api_key`: the OTX API key; default null (required).
        #[serde(deserialize_with = "de::opt_string")]
        pub api_key: Option<String> = None,
        /// `modified_pulses_only`: only pulses modified in the last `interval` hours; default false.
        #[serde(deserialize_with = "de::bool")]
        pub modified_pulses_only: bool = false,
        /// `interval`: hours looked back with `modified_pulses_only`; default 24.
        #[serde(deserialize_with = "de::f64")]
        pub interval: f64 = 24.0,
        /// `api_url`: base URL of the OTX API (our addition); default "https://otx.alienvault.com".
        #[serde(deserialize_with = "de::string")]
        pub api_url: String = "https://otx.alienvault.com".to_string(),
        /// `rate_limit`: the fetch interval in seconds, applied by the runtime; default 3600.
        #[serde(deserialize_with = "de::f64")]
        pub rate_limit: f64 = 3600.0,
    }
    http_timeout_sec = 30.0;
}

/// Collects the subscribed OTX pulses.
pub struct AlienvaultOtxCollectorBot {
    params: AlienvaultOtxCollectorParams,
    key: String,
    client: HttpClient,
}

impl BuildBot for AlienvaultOtxCollectorBot {
    type Params = AlienvaultOtxCollectorParams;

    fn build(params: AlienvaultOtxCollectorParams) -> Result<Self, ParamError> {
        let key = params.api_key.clone().ok_or_else(|| ParamError::new("api_key", "no API key given"))?;
        let settings = params.http_settings();
        settings.validate()?;
        Ok(AlienvaultOtxCollectorBot { key, client: HttpClient::new(settings), params })
    }
}

impl CollectorBot for AlienvaultOtxCollectorBot {
    fn collect(&mut self, ctx: &mut Context<'_>, out: &mut CollectorOutput) -> Result<(), BotError> {
        ctx.log.log(Level::Info, "Downloading report through API.");
        let mut url = format!("{}/api/v1/pulses/subscribed?limit=50&page=1", self.params.api_url.trim_end_matches('/'));
        if self.params.modified_pulses_only {
            ctx.log.log(Level::Info, "Fetching only modified pulses.");
            let since = chrono::Local::now().naive_local()
                - chrono::Duration::seconds((self.params.interval * 3600.0).round() as i64);
            let since = since.format("%Y-%m-%dT%H:%M:%S%.6f").to_string();
            let q: String = url::form_urlencoded::byte_serialize(since.as_bytes()).collect();
            url.push_str(&format!("&modified_since={q}"));
        } else {
            ctx.log.log(Level::Info, "Fetching all pulses.");
        }
        let headers = [("X-OTX-API-KEY", self.key.clone())];
        let mut pulses: Vec<Value> = Vec::new();
        let mut next = Some(url);
        let mut pages = 0;
        while let Some(page) = next.take() {
            pages += 1;
            if pages > MAX_PAGES {
                return Err(BotError::Transient("OTX keeps answering with a next page".into()));
            }
            let body = self.client.get(&page, &headers)?.check_status()?.json()?;
            match body.get("results") {
                Some(Value::Array(results)) => pulses.extend(results.iter().cloned()),
                _ => return Err(BotError::Transient(format!("OTX answered {page} without results"))),
            }
            next = body.get("next").and_then(Value::as_str).map(str::to_string);
        }
        ctx.log.log(Level::Info, "Report downloaded.");
        out.send(mixin::raw_report(ctx, mixin::python_json(&Value::Array(pulses), false).as_bytes())?);
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
    fn pages_are_followed_into_one_report() {
        let base = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let b = base.clone();
        let server = TestServer::start(move |req| {
            if req.url.contains("page=1") {
                ok(json!({"results": [{"id": "p1"}], "next": format!("{}/api/v1/pulses/subscribed?limit=50&page=2", b.lock().unwrap())}).to_string())
            } else {
                ok(json!({"results": [{"id": "p2"}], "next": null, "count": 2}).to_string())
            }
        });
        *base.lock().unwrap() = server.base.clone();
        let mut bot = AlienvaultOtxCollectorBot::build(params(json!({
            "api_key": "K", "api_url": server.base.clone(), "modified_pulses_only": true, "interval": 2
        })))
        .unwrap();
        let (r, reports, _) = collect(&mut bot, &mut MemoryState::default());
        r.unwrap();
        assert_eq!(reports.len(), 1);
        assert_eq!(raw(&reports[0]), r#"[{"id": "p1"}, {"id": "p2"}]"#);
        let seen = server.requests();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].header("x-otx-api-key"), Some("K"));
        assert!(seen[0].url.contains("modified_since="), "{}", seen[0].url);
    }
}
