//! `intelmq.bots.collectors.misp.collector`: searches the MISP instance at `misp_url` for events
//! tagged `misp_tag_to_process` (`POST <misp_url>/events/restSearch` with
//! `{"returnFormat": "json", "tags": [tag]}`, header `Authorization: <misp_key>`, as PyMISP does);
//! each event becomes a Report with `raw` = the event as Python's `json.dumps(sort_keys=True)`
//! and `feed.url` = `misp_url`. Then the tag is removed
//! (`POST /tags/removeTagFromObject {"uuid", "tag"}`) and `misp_tag_processed` added
//! (`POST /tags/attachTagToObject`).
//!
//! Difference from IntelMQ, for exactly-once delivery: the re-tagging happens in `committed()`,
//! after the reports are safe, and each emitted event's uuid is recorded in the bot state (with the
//! reports) until its re-tagging succeeded, so an event whose re-tagging failed is re-tagged on the
//! next run without being emitted again. Real use needs the network; tests use a local server.

use serde_json::{json, Value};

use crate::bots::collectors::http::mixin::{self, de, http_params, HttpClient};
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, CollectorBot, CollectorOutput, Context, Level, ParamError};

http_params! {
    /// Parameters of the MISP collector (IntelMQ's names and defaults).
    pub struct MispCollectorParams {
        /// `misp_url`: base URL of the MISP instance; default null (required).
        #[serde(deserialize_with = "de::opt_string")]
        pub misp_url: Option<String> = None,
        /// `misp_key`: the MISP API key; default null (required).
        #[serde(deserialize_with = "de::opt_string")]
        pub misp_key: Option<String> = None,
        /// `misp_tag_to_process`: events with this tag are collected; default null (required).
        #[serde(deserialize_with = "de::opt_string")]
        pub misp_tag_to_process: Option<String> = None,
        /// `misp_tag_processed`: tag added to collected events; default null (none).
        #[serde(deserialize_with = "de::opt_string")]
        pub misp_tag_processed: Option<String> = None,
        /// `rate_limit`: the fetch interval in seconds, applied by the runtime; default 3600.
        #[serde(deserialize_with = "de::f64")]
        pub rate_limit: f64 = 3600.0,
    }
    http_timeout_sec = 30.0;
}

/// Collects tagged MISP events.
pub struct MispCollectorBot {
    url: String,
    key: String,
    tag_to_process: String,
    tag_processed: Option<String>,
    client: HttpClient,
    /// Uuids of events to re-tag once committed.
    to_retag: Vec<String>,
}

impl BuildBot for MispCollectorBot {
    type Params = MispCollectorParams;

    fn build(params: MispCollectorParams) -> Result<Self, ParamError> {
        let url = params.misp_url.clone().ok_or_else(|| ParamError::new("misp_url", "no MISP URL given"))?;
        let key = params.misp_key.clone().ok_or_else(|| ParamError::new("misp_key", "no MISP API key given"))?;
        let tag = params
            .misp_tag_to_process
            .clone()
            .ok_or_else(|| ParamError::new("misp_tag_to_process", "no tag to process given"))?;
        let settings = params.http_settings();
        settings.validate()?;
        Ok(MispCollectorBot {
            url: url.trim_end_matches('/').to_string(),
            key,
            tag_to_process: tag,
            tag_processed: params.misp_tag_processed.clone(),
            client: HttpClient::new(settings),
            to_retag: Vec::new(),
        })
    }
}

fn state_key(uuid: &str) -> Vec<u8> {
    format!("emitted:{uuid}").into_bytes()
}

impl MispCollectorBot {
    fn post(&mut self, path: &str, body: &Value) -> Result<Value, BotError> {
        let headers = [
            ("Authorization", self.key.clone()),
            ("Accept", "application/json".to_string()),
            ("Content-Type", "application/json".to_string()),
        ];
        let url = format!("{}{path}", self.url);
        self.client.post(&url, &headers, body.to_string().as_bytes())?.check_status()?.json()
    }
}

impl CollectorBot for MispCollectorBot {
    fn collect(&mut self, ctx: &mut Context<'_>, out: &mut CollectorOutput) -> Result<(), BotError> {
        self.to_retag.clear();
        let body = json!({"returnFormat": "json", "tags": [self.tag_to_process]});
        let result = self.post("/events/restSearch", &body)?;
        let items = match &result {
            Value::Array(a) => a.clone(),
            Value::Object(o) => match o.get("response") {
                Some(Value::Array(a)) => a.clone(),
                _ => {
                    return Err(BotError::Transient(format!("MISP search answered without events: {result}")));
                }
            },
            _ => return Err(BotError::Transient(format!("MISP search answered without events: {result}"))),
        };
        for item in items {
            let event = item.get("Event").cloned().unwrap_or(item);
            let Some(uuid) = event["uuid"].as_str().map(str::to_string) else {
                ctx.log.log(Level::Warning, "Skipping a MISP event without uuid.");
                continue;
            };
            if ctx.state.get(&state_key(&uuid)).is_none() {
                let mut report = mixin::raw_report(ctx, mixin::python_json(&event, true).as_bytes())?;
                report.add("feed.url", self.url.as_str())?;
                out.send(report);
                ctx.state.put(&state_key(&uuid), b"1", None);
            }
            self.to_retag.push(uuid);
        }
        Ok(())
    }

    fn committed(&mut self, ctx: &mut Context<'_>) -> Result<(), BotError> {
        for uuid in std::mem::take(&mut self.to_retag) {
            let untag = self.post("/tags/removeTagFromObject", &json!({"uuid": uuid, "tag": self.tag_to_process}));
            let tag = match (&untag, self.tag_processed.clone()) {
                (Ok(_), Some(t)) => self.post("/tags/attachTagToObject", &json!({"uuid": uuid, "tag": t})).map(|_| ()),
                (Ok(_), None) => Ok(()),
                (Err(_), _) => Ok(()),
            };
            match untag.and(tag) {
                Ok(()) => ctx.state.delete(&state_key(&uuid)),
                Err(e) => ctx
                    .log
                    .log(Level::Error, &format!("Could not re-tag MISP event {uuid}, retrying on the next run: {e}.")),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::bots::collectors::http::mixin::test_server::{collect, committed, ok, params, raw, TestServer};
    use crate::bots::MemoryState;

    #[test]
    fn tagged_events_are_reported_then_retagged_after_the_commit() {
        let tag_fails = Arc::new(AtomicBool::new(true));
        let fails = tag_fails.clone();
        let server = TestServer::start(move |req| match req.url.as_str() {
            "/events/restSearch" => ok(json!({"response": [
                {"Event": {"uuid": "u1", "info": "b\u{e9}", "Attribute": [{"value": "1.2.3.4"}]}}
            ]})
            .to_string()),
            "/tags/removeTagFromObject" if fails.load(Ordering::SeqCst) => (500, Vec::new(), Vec::new()),
            _ => ok("{\"saved\": true}"),
        });
        let mut bot = MispCollectorBot::build(params(json!({
            "misp_url": server.base.clone(), "misp_key": "K", "misp_tag_to_process": "todo",
            "misp_tag_processed": "done"
        })))
        .unwrap();
        let mut state = MemoryState::default();
        let (r, reports, _) = collect(&mut bot, &mut state);
        r.unwrap();
        assert_eq!(reports.len(), 1);
        assert_eq!(raw(&reports[0]), r#"{"Attribute": [{"value": "1.2.3.4"}], "info": "b\u00e9", "uuid": "u1"}"#);
        assert_eq!(reports[0].get_str("feed.url"), Some(server.base.as_str()));
        let search = &server.requests()[0];
        assert_eq!(search.header("authorization"), Some("K"));
        assert_eq!(serde_json::from_slice::<Value>(&search.body).unwrap()["tags"], json!(["todo"]));

        // Re-tagging fails: the event is not emitted again, re-tagging is retried.
        committed(&mut bot, &mut state).unwrap();
        let (r, reports, _) = collect(&mut bot, &mut state);
        r.unwrap();
        assert!(reports.is_empty());
        tag_fails.store(false, Ordering::SeqCst);
        committed(&mut bot, &mut state).unwrap();
        assert!(state.entries.is_empty());
        let urls: Vec<String> = server.requests().iter().map(|r| r.url.clone()).collect();
        assert_eq!(urls.last().unwrap(), "/tags/attachTagToObject");
        let last = server.requests().last().unwrap().clone();
        assert_eq!(serde_json::from_slice::<Value>(&last.body).unwrap(), json!({"uuid": "u1", "tag": "done"}));
    }
}
