//! `intelmq.bots.collectors.blueliv.collector_crimeserver`: the online crime servers of Blueliv's
//! API in one Report whose `raw` is the JSON list (Python `json.dumps`). The request is the SDK's
//! `crime_servers.online()`: `GET <api_url>/v1/crimeserver/online` with
//! `Authorization: bearer <api_key>`; the list is the answer's `crimeServers` (or the answer
//! itself when it is a list). `api_url` is IntelMQ's parameter (default the real API), so tests
//! point it at a local server; real use needs the network.

use serde_json::Value;

use crate::bots::collectors::http::mixin::{self, de, http_params, HttpClient};
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, CollectorBot, CollectorOutput, Context, Level, ParamError};

http_params! {
    /// Parameters of the Blueliv crime server collector (IntelMQ's names and defaults).
    pub struct BluelivCrimeserverCollectorParams {
        /// `api_key`: the Blueliv API token; default null (required).
        #[serde(deserialize_with = "de::opt_string")]
        pub api_key: Option<String> = None,
        /// `api_url`: base URL of the API; default "https://freeapi.blueliv.com".
        #[serde(deserialize_with = "de::string")]
        pub api_url: String = "https://freeapi.blueliv.com".to_string(),
        /// `rate_limit`: the fetch interval in seconds, applied by the runtime; default 3600.
        #[serde(deserialize_with = "de::f64")]
        pub rate_limit: f64 = 3600.0,
    }
    http_timeout_sec = 30.0;
}

/// Collects Blueliv's online crime servers.
pub struct BluelivCrimeserverCollectorBot {
    url: String,
    key: String,
    client: HttpClient,
}

impl BuildBot for BluelivCrimeserverCollectorBot {
    type Params = BluelivCrimeserverCollectorParams;

    fn build(params: BluelivCrimeserverCollectorParams) -> Result<Self, ParamError> {
        let key = params.api_key.clone().ok_or_else(|| ParamError::new("api_key", "no API key given"))?;
        let settings = params.http_settings();
        settings.validate()?;
        Ok(BluelivCrimeserverCollectorBot {
            url: format!("{}/v1/crimeserver/online", params.api_url.trim_end_matches('/')),
            key,
            client: HttpClient::new(settings),
        })
    }
}

impl CollectorBot for BluelivCrimeserverCollectorBot {
    fn collect(&mut self, ctx: &mut Context<'_>, out: &mut CollectorOutput) -> Result<(), BotError> {
        ctx.log.log(Level::Info, "Downloading report through API.");
        let url = self.url.clone();
        let body =
            self.client.get(&url, &[("Authorization", format!("bearer {}", self.key))])?.check_status()?.json()?;
        let items = match body {
            Value::Array(a) => a,
            Value::Object(mut o) => match o.remove("crimeServers") {
                Some(Value::Array(a)) => a,
                _ => return Err(BotError::Transient(format!("Blueliv answered {url} without crimeServers"))),
            },
            other => return Err(BotError::Transient(format!("Blueliv answered {url} with {other}"))),
        };
        ctx.log.log(Level::Info, "Report downloaded.");
        out.send(mixin::raw_report(ctx, mixin::python_json(&Value::Array(items), false).as_bytes())?);
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
    fn crime_servers_become_one_report() {
        let server = TestServer::start(|req| {
            if req.url == "/v1/crimeserver/online" {
                ok(json!({"crimeServers": [{"url": "http://evil.example/", "type": "C_AND_C"}], "meta": {}})
                    .to_string())
            } else {
                (404, Vec::new(), Vec::new())
            }
        });
        let mut bot =
            BluelivCrimeserverCollectorBot::build(params(json!({"api_key": "T", "api_url": server.base.clone()})))
                .unwrap();
        let (r, reports, _) = collect(&mut bot, &mut MemoryState::default());
        r.unwrap();
        assert_eq!(raw(&reports[0]), r#"[{"url": "http://evil.example/", "type": "C_AND_C"}]"#);
        assert_eq!(server.requests()[0].header("authorization"), Some("bearer T"));
    }
}
