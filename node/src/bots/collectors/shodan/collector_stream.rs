//! `intelmq.bots.collectors.shodan.collector_stream`: the Shodan streaming API. With `countries`
//! the banners of those countries (`/shodan/countries/<cc,cc>`), with `alert` one network alert
//! (`/shodan/alert/<id>`), else all banners (`/shodan/banners`); the API key goes in the `key`
//! query parameter as the Shodan library sends it. Each line becomes a Report with `raw` only.
//! The connection and the error counting are those of the HTTP stream collector
//! ([`crate::bots::collectors::http::stream`]); the documented `rate_limit` default is 1 s.
//! `stream_url` (our addition) is the API's base URL, so tests can point it at a local server;
//! real use needs the network.

use crate::bots::collectors::http::mixin::{self, de, http_params, HttpClient};
use crate::bots::collectors::http::stream::LineStream;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, CollectorBot, CollectorOutput, Context, ParamError};

http_params! {
    /// Parameters of the Shodan stream collector (IntelMQ's names and defaults).
    pub struct ShodanStreamCollectorParams {
        /// `api_key`: the Shodan API key; default null (required).
        #[serde(deserialize_with = "de::opt_string")]
        pub api_key: Option<String> = None,
        /// `countries`: country codes to stream (a list or a comma string); default [].
        #[serde(deserialize_with = "de::string_list")]
        pub countries: Vec<String> = Vec::new(),
        /// `alert`: the id of a network alert to stream; default null.
        #[serde(deserialize_with = "de::opt_string")]
        pub alert: Option<String> = None,
        /// `stream_url`: base URL of the streaming API (our addition); default "https://stream.shodan.io".
        #[serde(deserialize_with = "de::string")]
        pub stream_url: String = "https://stream.shodan.io".to_string(),
        /// `rate_limit`: seconds between two reads of what the stream delivered, applied by the runtime; default 1 (ours).
        #[serde(deserialize_with = "de::f64")]
        pub rate_limit: f64 = 1.0,
    }
    http_timeout_sec = 30.0;
}

/// Reads the Shodan stream into Reports.
pub struct ShodanStreamCollectorBot {
    url: String,
    stream: LineStream,
}

impl BuildBot for ShodanStreamCollectorBot {
    type Params = ShodanStreamCollectorParams;

    fn build(params: ShodanStreamCollectorParams) -> Result<Self, ParamError> {
        let key = params.api_key.clone().ok_or_else(|| ParamError::new("api_key", "no API key given"))?;
        let base = params.stream_url.trim_end_matches('/');
        let key_q: String = url::form_urlencoded::byte_serialize(key.as_bytes()).collect();
        let path = if !params.countries.is_empty() {
            format!("/shodan/countries/{}", params.countries.join(","))
        } else if let Some(alert) = &params.alert {
            format!("/shodan/alert/{alert}")
        } else {
            "/shodan/banners".to_string()
        };
        let url = format!("{base}{path}?key={key_q}");
        url::Url::parse(&url).map_err(|e| ParamError::new("stream_url", format!("invalid URL `{base}`: {e}")))?;
        let settings = params.http_settings();
        settings.validate()?;
        Ok(ShodanStreamCollectorBot { url, stream: LineStream::new(HttpClient::new(settings)) })
    }
}

impl CollectorBot for ShodanStreamCollectorBot {
    fn collect(&mut self, ctx: &mut Context<'_>, out: &mut CollectorOutput) -> Result<(), BotError> {
        let (lines, error) = self.stream.poll(ctx, &self.url, &[]);
        let sent_any = !lines.is_empty();
        for line in lines {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            out.send(mixin::raw_report(ctx, &line)?);
        }
        match error {
            Some(e) if !sent_any => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::{Duration, Instant};

    use serde_json::json;

    use super::*;
    use crate::bots::collectors::http::mixin::test_server::{collect, ok, params, raw, TestServer};
    use crate::bots::MemoryState;

    #[test]
    fn countries_stream_sends_the_key_and_each_banner_is_a_report() {
        let server = TestServer::start(|_| ok("{\"ip_str\": \"1.2.3.4\"}\n\n{\"ip_str\": \"5.6.7.8\"}\n"));
        let mut bot = ShodanStreamCollectorBot::build(params(json!({
            "api_key": "k&y", "countries": "AT,DE", "stream_url": server.base.clone()
        })))
        .unwrap();
        let mut got = Vec::new();
        let start = Instant::now();
        while got.len() < 2 && start.elapsed() < Duration::from_secs(10) {
            let (r, reports, _) = collect(&mut bot, &mut MemoryState::default());
            r.unwrap();
            got.extend(reports.iter().map(raw));
            assert!(reports.iter().all(|r| r.get("feed.url").is_none()));
        }
        assert_eq!(got, vec!["{\"ip_str\": \"1.2.3.4\"}", "{\"ip_str\": \"5.6.7.8\"}"]);
        assert_eq!(server.requests()[0].url, "/shodan/countries/AT,DE?key=k%26y");
    }

    #[test]
    fn alert_and_banners_paths() {
        let alert = ShodanStreamCollectorBot::build(params(json!({"api_key": "k", "alert": "A1"}))).unwrap();
        assert_eq!(alert.url, "https://stream.shodan.io/shodan/alert/A1?key=k");
        let all = ShodanStreamCollectorBot::build(params(json!({"api_key": "k"}))).unwrap();
        assert_eq!(all.url, "https://stream.shodan.io/shodan/banners?key=k");
        assert_eq!(ShodanStreamCollectorBot::build(params(json!({}))).err().unwrap().key, "api_key");
    }
}
