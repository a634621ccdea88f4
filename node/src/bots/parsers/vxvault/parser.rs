//! The VXVault parser (`intelmq.bots.parsers.vxvault.parser`): a three-line header (`<pre>`, the
//! title, the date) then one malware URL per line; the host becomes `source.ip` or `source.fqdn`.

use serde::{Deserialize, Serialize};

use crate::bots::parsers::report_text;
use crate::bots::parsers::text_lines::{parse_given_lines, py_splitlines, LineState};
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ParamError, ParserBot, ParserOutput};
use crate::message::types::{py_strip, urlsplit};
use crate::message::{AddOptions, Message};

/// Lines before the URLs; the last of them is the list's date.
const HEADER_LINES: usize = 3;

/// The VXVault parser has no parameters of its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VXVaultParserParams {}

/// The VXVault parser.
#[derive(Debug, Default)]
pub struct VXVaultParserBot;

impl BuildBot for VXVaultParserBot {
    type Params = VXVaultParserParams;

    fn build(_params: Self::Params) -> Result<Self, ParamError> {
        Ok(VXVaultParserBot)
    }
}

/// Python `urlparse(url).hostname` and `.port`: the host lowercased without user info, port or
/// IPv6 brackets; the port must be a number up to 65535.
fn host_and_port(url: &str) -> Result<(Option<String>, Option<u16>), BotError> {
    let split = urlsplit(url).ok_or_else(|| BotError::Invalid(format!("cannot split url `{url}`")))?;
    let netloc = split.netloc.rsplit('@').next().unwrap_or("");
    let (host, port) = if let Some(rest) = netloc.strip_prefix('[') {
        match rest.split_once(']') {
            Some((host, tail)) => (host, tail.strip_prefix(':')),
            None => (rest, None),
        }
    } else {
        match netloc.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (netloc, None),
        }
    };
    let port = match port {
        None | Some("") => None,
        Some(text) => Some(
            text.parse::<u16>().map_err(|_| BotError::Invalid(format!("port `{text}` of url `{url}` is invalid")))?,
        ),
    };
    let host = (!host.is_empty()).then(|| host.to_lowercase());
    Ok((host, port))
}

fn parse_line(row: &str, time: Option<&str>, mut event: Message) -> Result<Vec<Message>, BotError> {
    if !row.starts_with("http") {
        return Ok(Vec::new());
    }
    let (host, port) = host_and_port(row)?;
    let lenient = AddOptions { raise_failure: false, ..AddOptions::default() };
    let host_value = host.map(serde_json::Value::String).unwrap_or(serde_json::Value::Null);
    if !event.add_with("source.ip", host_value.clone(), lenient)? {
        event.add("source.fqdn", host_value)?;
    }
    event.add("classification.type", "malware-distribution")?;
    event.add("source.url", row)?;
    if let Some(port) = port.filter(|p| *p != 0) {
        event.add("source.port", port)?;
    }
    event.add("raw", row)?;
    if let Some(time) = time {
        event.add("time.source", time)?;
    }
    Ok(vec![event])
}

impl ParserBot for VXVaultParserBot {
    fn parse(&mut self, report: &Message, _ctx: &mut Context<'_>, out: &mut ParserOutput<'_>) -> Result<(), BotError> {
        let text = report_text(report)?;
        let lines = py_splitlines(py_strip(&text));
        let header: Vec<String> = lines.iter().take(HEADER_LINES).map(|l| l.to_string()).collect();
        let time = header.get(HEADER_LINES - 1).cloned();
        let state = LineState { tempdata: header };
        let rows = lines.into_iter().skip(HEADER_LINES).map(py_strip);
        parse_given_lines(rows, state, out, |row, _state, out| parse_line(row, time.as_deref(), out.new_event()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bots::parsers::text_lines::testing::{field, run};
    use serde_json::json;

    const HEADER: &str = "<pre>\nVX Vault last 100 Links\nMon, 17 Aug 2015 14:36:19 +0000\n\n";

    #[test]
    fn hosts_become_fqdn_or_ip_with_port() {
        let raw = format!("{HEADER}http://Example.com/bad.exe\nhttp://192.0.2.1:8080/x.exe\nnot-a-url\n");
        let parsed = run(&mut VXVaultParserBot, &[], &raw).unwrap();
        assert_eq!(parsed.events.len(), 2);
        assert_eq!(field(&parsed.events[0], "source.fqdn"), json!("example.com"));
        assert_eq!(field(&parsed.events[0], "time.source"), json!("2015-08-17T14:36:19+00:00"));
        assert_eq!(field(&parsed.events[1], "source.ip"), json!("192.0.2.1"));
        assert_eq!(field(&parsed.events[1], "source.port"), json!(8080));
        assert_eq!(field(&parsed.events[1], "classification.type"), json!("malware-distribution"));
    }

    #[test]
    fn a_bad_port_fails_the_line() {
        let raw = format!("{HEADER}http://example.com:99999/x\n");
        let parsed = run(&mut VXVaultParserBot, &[], &raw).unwrap();
        assert!(parsed.events.is_empty());
        assert_eq!(parsed.failed.len(), 1);
    }
}
