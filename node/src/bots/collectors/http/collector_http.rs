//! `intelmq.bots.collectors.http.collector_http`: GETs `http_url` (optionally with
//! `{time[FORMAT]}` placeholders, `http_url_formatting`) and emits the body as a Report with
//! `feed.url`; archives are unpacked into one report per file with `extra.file_name`
//! (`extract_files`; a zip body is unpacked even without it, as in IntelMQ).
//!
//! Our addition: conditional fetches. The `ETag` and `Last-Modified` of the last answer are kept
//! in the bot state (committed with the reports) and sent back as `If-None-Match` /
//! `If-Modified-Since`; a `304 Not Modified` produces no report. A non-2xx answer is an error:
//! 5xx, 429 and connection failures are `Unavailable` (retried with backoff, status shows why).
//! `verify_pgp_signatures` is accepted but `true` is refused: there is no gpg here.

use super::mixin::{self, de, http_params, ExtractFiles, HttpClient, TimeFormatting};
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, CollectorBot, CollectorOutput, Context, Level, ParamError};

http_params! {
    /// Parameters of the HTTP collector (IntelMQ's names and defaults).
    pub struct HttpCollectorParams {
        /// `http_url`: the feed's URL; default "<insert url of feed>".
        #[serde(deserialize_with = "de::string")]
        pub http_url: String = "<insert url of feed>".to_string(),
        /// `http_url_formatting`: fill `{time[%Y-%m-%d]}` placeholders with the local time, true or a timedelta like {"days": -1}; default false.
        pub http_url_formatting: TimeFormatting = TimeFormatting::Off,
        /// `extract_files`: unpack zip/tar/gzip bodies (true, or the file names to take); default false.
        pub extract_files: ExtractFiles = ExtractFiles::No,
        /// `verify_pgp_signatures`: check a PGP signature (refused here: no gpg); default false.
        #[serde(deserialize_with = "de::bool")]
        pub verify_pgp_signatures: bool = false,
        /// `signature_url`: URL of the signature; default null.
        #[serde(deserialize_with = "de::opt_string")]
        pub signature_url: Option<String> = None,
        /// `signature_url_formatting`: like `http_url_formatting` for `signature_url`; default false.
        pub signature_url_formatting: TimeFormatting = TimeFormatting::Off,
        /// `gpg_keyring`: keyring of the signature check; default null.
        #[serde(deserialize_with = "de::opt_string")]
        pub gpg_keyring: Option<String> = None,
        /// `rate_limit`: the fetch interval in seconds, applied by the runtime; default 3600.
        #[serde(deserialize_with = "de::f64")]
        pub rate_limit: f64 = 3600.0,
    }
    http_timeout_sec = 30.0;
}

/// Fetches one URL per run into Reports.
pub struct HttpCollectorBot {
    params: HttpCollectorParams,
    client: HttpClient,
}

impl BuildBot for HttpCollectorBot {
    type Params = HttpCollectorParams;

    fn build(params: HttpCollectorParams) -> Result<Self, ParamError> {
        if params.verify_pgp_signatures {
            return Err(ParamError::new(
                "verify_pgp_signatures",
                "PGP signature checks are not available in intelmq-rs (no gpg); set it to false",
            ));
        }
        if params.http_url.trim().is_empty() {
            return Err(ParamError::new("http_url", "no URL given"));
        }
        if params.http_url_formatting.is_on() {
            params.http_url_formatting.apply(&params.http_url).map_err(|e| ParamError::new("http_url", e))?;
        }
        let settings = params.http_settings();
        settings.validate()?;
        Ok(HttpCollectorBot { client: HttpClient::new(settings), params })
    }
}

/// The state keys of the validators of `url`.
fn etag_key(url: &str) -> Vec<u8> {
    format!("etag:{url}").into_bytes()
}

fn last_modified_key(url: &str) -> Vec<u8> {
    format!("last-modified:{url}").into_bytes()
}

impl CollectorBot for HttpCollectorBot {
    fn collect(&mut self, ctx: &mut Context<'_>, out: &mut CollectorOutput) -> Result<(), BotError> {
        let url = self
            .params
            .http_url_formatting
            .apply(&self.params.http_url)
            .map_err(|e| BotError::Fatal(format!("cannot format http_url: {e}")))?;
        ctx.log.log(Level::Info, &format!("Downloading report from {url:?}."));
        let mut conditional: Vec<(&str, String)> = Vec::new();
        if let Some(etag) = ctx.state.get(&etag_key(&url)) {
            conditional.push(("If-None-Match", String::from_utf8_lossy(&etag).into_owned()));
        }
        if let Some(lm) = ctx.state.get(&last_modified_key(&url)) {
            conditional.push(("If-Modified-Since", String::from_utf8_lossy(&lm).into_owned()));
        }
        let resp = self.client.get(&url, &conditional)?;
        if resp.status == 304 {
            ctx.log.log(Level::Info, "Report not modified since the last download (HTTP 304), nothing to send.");
            return Ok(());
        }
        if let Some(err) = mixin::status_error(resp.status, &url) {
            ctx.log.log(Level::Debug, &format!("Response headers: {:?}.", resp.headers));
            ctx.log.log(Level::Debug, &format!("Response body: {:?}.", resp.text()));
            return Err(err);
        }
        ctx.log.log(Level::Info, "Report downloaded.");

        let files = if self.params.extract_files.is_on() {
            mixin::unzip(&resp.body, &self.params.extract_files, true, true, true)
                .map_err(|e| BotError::Transient(format!("cannot extract the files of {url}: {e}")))?
        } else {
            match mixin::unzip(&resp.body, &ExtractFiles::All, false, true, false) {
                Ok(files) => {
                    let names: Vec<&str> = files.iter().filter_map(|(n, _)| n.as_deref()).collect();
                    ctx.log.log(Level::Info, &format!("Extracting files: {:?}.", names.join(", ")));
                    files
                }
                Err(_) => vec![(None, resp.body.clone())],
            }
        };
        for (name, data) in files {
            let mut report = mixin::raw_report(ctx, &data)?;
            report.add("feed.url", url.as_str())?;
            if let Some(name) = name {
                report.add("extra.file_name", name)?;
            }
            out.send(report);
        }
        match resp.header("etag") {
            Some(e) => ctx.state.put(&etag_key(&url), e.as_bytes(), None),
            None => ctx.state.delete(&etag_key(&url)),
        }
        match resp.header("last-modified") {
            Some(lm) => ctx.state.put(&last_modified_key(&url), lm.as_bytes(), None),
            None => ctx.state.delete(&last_modified_key(&url)),
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use base64::Engine;
    use serde_json::json;

    use super::super::mixin::test_server::{ok, zip_of, TestServer};
    use super::*;
    use crate::bots::collectors::test_support::harmonization;
    use crate::bots::registry::parse_params;
    use crate::bots::{MemoryLog, MemoryState};

    fn bot(params: serde_json::Value) -> Result<HttpCollectorBot, ParamError> {
        HttpCollectorBot::build(parse_params(params.as_object().unwrap())?)
    }

    fn run(bot: &mut HttpCollectorBot, state: &mut MemoryState) -> Result<Vec<crate::message::Message>, BotError> {
        let h = harmonization();
        let mut log = MemoryLog::default();
        let root = std::path::PathBuf::from("/");
        let mut ctx = Context::new("http-collector", &h, &root, state, &mut log);
        let mut out = CollectorOutput::default();
        bot.collect(&mut ctx, &mut out)?;
        Ok(out.reports)
    }

    fn raw(r: &crate::message::Message) -> String {
        String::from_utf8(r.raw_bytes().unwrap()).unwrap()
    }

    #[test]
    fn body_becomes_a_report_with_feed_url() {
        let server = TestServer::start(|_| ok("a,b\n1,2\n"));
        let url = format!("{}/feed.csv", server.base);
        let mut b = bot(json!({"http_url": url})).unwrap();
        let reports = run(&mut b, &mut MemoryState::default()).unwrap();
        assert_eq!(reports.len(), 1);
        assert_eq!(raw(&reports[0]), "a,b\n1,2\n");
        assert_eq!(reports[0].get_str("feed.url"), Some(url.as_str()));
        assert!(reports[0].get("extra.file_name").is_none());
    }

    #[test]
    fn zip_body_is_unpacked_even_without_extract_files() {
        let z = zip_of(&[("one.csv", b"1\n"), ("two.csv", b"2\n")]);
        let server = TestServer::start(move |_| ok(z.clone()));
        let mut b = bot(json!({"http_url": format!("{}/f.zip", server.base)})).unwrap();
        let reports = run(&mut b, &mut MemoryState::default()).unwrap();
        let got: Vec<(String, String)> =
            reports.iter().map(|r| (r.get_str("extra.file_name").unwrap().to_string(), raw(r))).collect();
        assert_eq!(got, vec![("one.csv".into(), "1\n".into()), ("two.csv".into(), "2\n".into())]);
    }

    #[test]
    fn extract_files_list_takes_only_the_named_files_and_gzip_is_unpacked() {
        let z = zip_of(&[("one.csv", b"1\n"), ("two.csv", b"2\n")]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, b"gzipped\n").unwrap();
        let g = gz.finish().unwrap();
        let server = TestServer::start(move |req| if req.url == "/f.zip" { ok(z.clone()) } else { ok(g.clone()) });
        let mut b = bot(json!({"http_url": format!("{}/f.zip", server.base), "extract_files": "two.csv"})).unwrap();
        let reports = run(&mut b, &mut MemoryState::default()).unwrap();
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].get_str("extra.file_name"), Some("two.csv"));
        let mut b = bot(json!({"http_url": format!("{}/f.gz", server.base), "extract_files": true})).unwrap();
        let reports = run(&mut b, &mut MemoryState::default()).unwrap();
        assert_eq!(raw(&reports[0]), "gzipped\n");
        assert!(reports[0].get("extra.file_name").is_none());
        // extract_files on a body that is no archive is an error, as in IntelMQ.
        let plain = TestServer::start(|_| ok("text"));
        let mut b = bot(json!({"http_url": plain.base.clone(), "extract_files": true})).unwrap();
        assert!(matches!(run(&mut b, &mut MemoryState::default()), Err(BotError::Transient(_))));
    }

    #[test]
    fn basic_auth_headers_and_url_formatting_reach_the_server() {
        let server = TestServer::start(|_| ok("x"));
        let mut b = bot(json!({
            "http_url": format!("{}/{{time[%Y]}}.csv", server.base),
            "http_url_formatting": {"days": 0},
            "http_username": "user", "http_password": "secret",
            "http_header": {"X-Api": "k"}
        }))
        .unwrap();
        run(&mut b, &mut MemoryState::default()).unwrap();
        let req = &server.requests()[0];
        assert_eq!(req.url, format!("/{}.csv", chrono::Local::now().format("%Y")));
        let auth = base64::engine::general_purpose::STANDARD.encode("user:secret");
        assert_eq!(req.header("authorization"), Some(format!("Basic {auth}").as_str()));
        assert_eq!(req.header("x-api"), Some("k"));
    }

    #[test]
    fn unchanged_feed_answers_304_and_produces_no_report() {
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        let server = TestServer::start(move |req| {
            h.fetch_add(1, Ordering::SeqCst);
            if req.header("if-none-match") == Some("\"v1\"") {
                (304, Vec::new(), Vec::new())
            } else {
                (
                    200,
                    vec![
                        ("ETag".into(), "\"v1\"".into()),
                        ("Last-Modified".into(), "Mon, 01 Jan 2024 00:00:00 GMT".into()),
                    ],
                    b"data\n".to_vec(),
                )
            }
        });
        let mut b = bot(json!({"http_url": server.base.clone()})).unwrap();
        let mut state = MemoryState::default();
        assert_eq!(run(&mut b, &mut state).unwrap().len(), 1);
        assert_eq!(run(&mut b, &mut state).unwrap().len(), 0);
        let second = &server.requests()[1];
        assert_eq!(second.header("if-none-match"), Some("\"v1\""));
        assert_eq!(second.header("if-modified-since"), Some("Mon, 01 Jan 2024 00:00:00 GMT"));
        assert_eq!(hits.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn server_errors_are_unavailable_and_client_errors_are_errors() {
        let server = TestServer::start(|req| {
            if req.url == "/down" {
                (502, Vec::new(), Vec::new())
            } else {
                (403, Vec::new(), Vec::new())
            }
        });
        let mut b = bot(json!({"http_url": format!("{}/down", server.base)})).unwrap();
        assert!(matches!(run(&mut b, &mut MemoryState::default()), Err(BotError::Unavailable(_))));
        let mut b = bot(json!({"http_url": format!("{}/secret", server.base)})).unwrap();
        assert!(matches!(run(&mut b, &mut MemoryState::default()), Err(BotError::Transient(m)) if m.contains("403")));
    }

    #[test]
    fn pgp_verification_is_refused_with_a_clear_message() {
        let err = bot(json!({"http_url": "http://x/", "verify_pgp_signatures": true})).err().unwrap();
        assert_eq!(err.key, "verify_pgp_signatures");
        assert!(err.reason.contains("gpg"));
    }

    #[test]
    fn defaults_are_intelmqs() {
        let d = serde_json::to_value(HttpCollectorParams::default()).unwrap();
        assert_eq!(d["http_url"], "<insert url of feed>");
        assert_eq!(d["extract_files"], false);
        assert_eq!(d["http_timeout_sec"], 30.0);
        assert_eq!(d["http_timeout_max_tries"], 3);
        assert_eq!(d["http_verify_cert"], true);
        assert_eq!(d["rate_limit"], 3600.0);
    }
}
