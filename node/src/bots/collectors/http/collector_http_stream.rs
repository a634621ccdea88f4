//! `intelmq.bots.collectors.http.collector_http_stream`: a streaming GET of `http_url`; every
//! non-empty line becomes a Report (`raw`, `feed.url`), stripped of surrounding whitespace with
//! `strip_lines`. The connection lives in the bot between runs (see [`super::stream`]); each run
//! takes what has arrived. Because the runtime calls `collect` every `rate_limit` seconds, this
//! collector's documented `rate_limit` default is 1 s (IntelMQ's class default of 3600 does not
//! apply to a stream that IntelMQ reads in one endless `process()`). Broken streams are
//! reconnected as in IntelMQ; more than 3 consecutive failures are reported as `Unavailable`.

use super::mixin::{self, de, http_params, HttpClient};
use super::stream::{strip, LineStream};
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, CollectorBot, CollectorOutput, Context, ParamError};

http_params! {
    /// Parameters of the HTTP stream collector (IntelMQ's names and defaults).
    pub struct HttpStreamCollectorParams {
        /// `http_url`: the stream's URL; default null (required).
        #[serde(deserialize_with = "de::opt_string")]
        pub http_url: Option<String> = None,
        /// `strip_lines`: strip whitespace around each line; default true.
        #[serde(deserialize_with = "de::bool")]
        pub strip_lines: bool = true,
        /// `rate_limit`: seconds between two reads of what the stream delivered, applied by the runtime; default 1 (ours).
        #[serde(deserialize_with = "de::f64")]
        pub rate_limit: f64 = 1.0,
    }
    http_timeout_sec = 30.0;
}

/// Reads a line stream into Reports.
pub struct HttpStreamCollectorBot {
    url: String,
    strip_lines: bool,
    stream: LineStream,
}

impl BuildBot for HttpStreamCollectorBot {
    type Params = HttpStreamCollectorParams;

    fn build(params: HttpStreamCollectorParams) -> Result<Self, ParamError> {
        let url = params.http_url.clone().ok_or_else(|| ParamError::new("http_url", "no URL given"))?;
        let settings = params.http_settings();
        settings.validate()?;
        Ok(HttpStreamCollectorBot {
            url,
            strip_lines: params.strip_lines,
            stream: LineStream::new(HttpClient::new(settings)),
        })
    }
}

impl CollectorBot for HttpStreamCollectorBot {
    fn collect(&mut self, ctx: &mut Context<'_>, out: &mut CollectorOutput) -> Result<(), BotError> {
        let (lines, error) = self.stream.poll(ctx, &self.url, &[]);
        let sent_any = !lines.is_empty();
        for line in lines {
            let line = if self.strip_lines { strip(&line) } else { &line[..] };
            if line.is_empty() {
                continue;
            }
            let mut report = mixin::raw_report(ctx, line)?;
            report.add("feed.url", self.url.as_str())?;
            out.send(report);
        }
        match error {
            // Lines that arrived before the failure are delivered; the next run reconnects.
            Some(e) if !sent_any => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::time::{Duration, Instant};

    use serde_json::json;

    use super::*;
    use crate::bots::collectors::test_support::harmonization;
    use crate::bots::registry::parse_params;
    use crate::bots::{MemoryLog, MemoryState};
    use crate::message::Message;

    /// A streaming far end: each connection gets the header, then the lines sent on `lines`.
    fn stream_server() -> (String, std::sync::mpsc::Sender<Option<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/stream", listener.local_addr().unwrap());
        let (tx, rx) = std::sync::mpsc::channel::<Option<String>>();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let mut conn = conn.unwrap();
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                loop {
                    let mut l = String::new();
                    if reader.read_line(&mut l).unwrap() == 0 || l == "\r\n" {
                        break;
                    }
                }
                conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n").unwrap();
                // None closes this connection.
                while let Ok(Some(line)) = rx.recv() {
                    if conn.write_all(line.as_bytes()).is_err() {
                        break;
                    }
                }
            }
        });
        (url, tx)
    }

    fn collect(bot: &mut HttpStreamCollectorBot) -> (Result<(), BotError>, Vec<Message>, MemoryLog) {
        let h = harmonization();
        let mut log = MemoryLog::default();
        let mut state = MemoryState::default();
        let root = std::path::PathBuf::from("/");
        let mut out = CollectorOutput::default();
        let r = {
            let mut ctx = Context::new("stream", &h, &root, &mut state, &mut log);
            bot.collect(&mut ctx, &mut out)
        };
        (r, out.reports, log)
    }

    fn raws(reports: &[Message]) -> Vec<String> {
        reports.iter().map(|r| String::from_utf8(r.raw_bytes().unwrap()).unwrap()).collect()
    }

    /// Collects until `n` reports arrived (bounded).
    fn collect_n(bot: &mut HttpStreamCollectorBot, n: usize) -> Vec<String> {
        let mut got = Vec::new();
        let start = Instant::now();
        while got.len() < n && start.elapsed() < Duration::from_secs(10) {
            let (r, reports, _) = collect(bot);
            r.unwrap();
            got.extend(raws(&reports));
        }
        got
    }

    #[test]
    fn lines_become_reports_and_the_connection_survives_between_runs() {
        let (url, tx) = stream_server();
        let mut bot =
            HttpStreamCollectorBot::build(parse_params(json!({"http_url": url}).as_object().unwrap()).unwrap())
                .unwrap();
        tx.send(Some("  first line  \r\n\n".into())).unwrap();
        tx.send(Some("second\n".into())).unwrap();
        assert_eq!(collect_n(&mut bot, 2), vec!["first line", "second"]);
        assert!(bot.stream.is_open());
        tx.send(Some("third\n".into())).unwrap();
        assert_eq!(collect_n(&mut bot, 1), vec!["third"]);
        let (_, reports, _) = collect(&mut bot);
        assert!(reports.is_empty());
    }

    #[test]
    fn strip_lines_false_keeps_surrounding_whitespace() {
        let (url, tx) = stream_server();
        let mut bot = HttpStreamCollectorBot::build(
            parse_params(json!({"http_url": url, "strip_lines": "false"}).as_object().unwrap()).unwrap(),
        )
        .unwrap();
        tx.send(Some("  padded \n".into())).unwrap();
        assert_eq!(collect_n(&mut bot, 1), vec!["  padded "]);
    }

    #[test]
    fn a_closed_stream_is_reconnected_and_goes_on() {
        let (url, tx) = stream_server();
        let mut bot =
            HttpStreamCollectorBot::build(parse_params(json!({"http_url": url}).as_object().unwrap()).unwrap())
                .unwrap();
        tx.send(Some("a\n".into())).unwrap();
        tx.send(None).unwrap();
        assert_eq!(collect_n(&mut bot, 1), vec!["a"]);
        // The end is noticed, then the next run reconnects.
        let start = Instant::now();
        while bot.stream.is_open() && start.elapsed() < Duration::from_secs(5) {
            let _ = collect(&mut bot);
        }
        tx.send(Some("b\n".into())).unwrap();
        assert_eq!(collect_n(&mut bot, 1), vec!["b"]);
    }

    #[test]
    fn refused_connections_are_tolerated_three_times_then_unavailable() {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}/stream");
        let mut bot = HttpStreamCollectorBot::build(
            parse_params(json!({"http_url": url, "http_timeout_max_tries": 1}).as_object().unwrap()).unwrap(),
        )
        .unwrap();
        for _ in 0..3 {
            let (r, _, log) = collect(&mut bot);
            assert!(r.is_ok());
            assert!(log.lines.iter().any(|(_, l)| l.contains("reconnecting")));
        }
        assert!(matches!(collect(&mut bot).0, Err(BotError::Unavailable(_))));
    }

    #[test]
    fn missing_url_is_refused() {
        let err = HttpStreamCollectorBot::build(HttpStreamCollectorParams::default()).err().unwrap();
        assert_eq!(err.key, "http_url");
    }
}
