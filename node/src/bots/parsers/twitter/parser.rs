//! The Twitter parser (`intelmq.bots.parsers.twitter.parser`): finds URLs in the text of tweets.
//! After the configured substitutions (to undo defanging such as `[.]`), every word that looks like
//! a domain with a known top-level domain becomes a normalized URL (Python `url-normalize`).

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::tlds::TLDS;
use crate::bots::parsers::report_text;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ParamError, ParserBot, ParserOutput};
use crate::message::Message;

/// A word that looks like a domain, possibly with a path (group 2).
static DOMAIN_IN_WORD: LazyLock<Regex> = LazyLock::new(|| {
    // Invariant: a constant, valid pattern.
    #[allow(clippy::unwrap_used)]
    Regex::new(r"(//|^)([a-z0-9.-]*[a-z]\.[a-z][a-z-]*?(?:[/:].*|$))").unwrap()
});

/// `utm_source` tracking parameters, which `url-normalize` removes.
static UTM_SOURCE: LazyLock<Regex> = LazyLock::new(|| {
    // Invariant: a constant, valid pattern.
    #[allow(clippy::unwrap_used)]
    Regex::new(r"utm_source=[^&]+&?").unwrap()
});

/// Parameters of the Twitter parser.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TwitterParserParams {
    /// Default: none. The scheme put before URLs without one (`url-normalize` uses `https`).
    pub default_scheme: Option<String>,
    /// Default: `"t.co"`. Comma-separated regexes; matching domains are skipped.
    pub domain_whitelist: String,
    /// Default: `".net;[.]net"`. `;`-separated pairs `old;new` replaced in the text first.
    pub substitutions: String,
    /// Default: `"blacklist"`. The events' `classification.type` (`unknown` if invalid).
    pub classification_type: String,
}

impl Default for TwitterParserParams {
    fn default() -> Self {
        TwitterParserParams {
            default_scheme: None,
            domain_whitelist: "t.co".to_string(),
            substitutions: ".net;[.]net".to_string(),
            classification_type: "blacklist".to_string(),
        }
    }
}

/// The Twitter parser.
#[derive(Debug)]
pub struct TwitterParserBot {
    default_scheme: String,
    whitelist: Vec<Regex>,
    substitutions: Vec<(String, String)>,
    classification_type: String,
}

impl BuildBot for TwitterParserBot {
    type Params = TwitterParserParams;

    fn build(params: Self::Params) -> Result<Self, ParamError> {
        let mut whitelist = Vec::new();
        if !params.domain_whitelist.is_empty() {
            for pattern in params.domain_whitelist.split(',') {
                whitelist.push(
                    Regex::new(pattern)
                        .map_err(|e| ParamError::new("domain_whitelist", format!("invalid regex `{pattern}`: {e}")))?,
                );
            }
        }
        let mut substitutions = Vec::new();
        if !params.substitutions.is_empty() {
            let parts: Vec<&str> = params.substitutions.split(';').collect();
            if parts.len() % 2 != 0 {
                return Err(ParamError::new(
                    "substitutions",
                    format!("expected an even number of ; separated strings, got `{}`", params.substitutions),
                ));
            }
            for pair in parts.chunks(2) {
                substitutions.push((pair[0].to_string(), pair[1].to_string()));
            }
        }
        let harmonization = crate::message::Harmonization::builtin();
        let probe = Message::new(crate::message::MessageKind::Event, harmonization);
        let valid =
            probe.is_valid("classification.type", &params.classification_type.clone().into(), false).unwrap_or(false);
        Ok(TwitterParserBot {
            default_scheme: params.default_scheme.unwrap_or_else(|| "https".to_string()),
            whitelist,
            substitutions,
            classification_type: if valid { params.classification_type } else { "unknown".to_string() },
        })
    }
}

/// Python `urllib.parse.quote(text, safe)` on UTF-8.
fn quote(text: &str, safe: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        let c = b as char;
        if b.is_ascii_alphanumeric() || "_.-~".contains(c) || (b.is_ascii() && safe.contains(c)) {
            out.push(c);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Python `urllib.parse.unquote`.
fn unquote(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `url_normalize.normalize_path`.
fn normalize_path(path: &str, scheme: &str) -> String {
    let mut path = quote(&unquote(path), "~:/?#[]@!$&'()*+,;=");
    if matches!(scheme, "" | "http" | "https" | "ftp" | "file") {
        let parts: Vec<&str> = path.split('/').collect();
        let mut output: Vec<&str> = Vec::new();
        for part in &parts {
            match *part {
                "" => {
                    if output.is_empty() {
                        output.push("");
                    }
                }
                "." => {}
                ".." => {
                    if output.len() > 1 {
                        output.pop();
                    }
                }
                other => output.push(other),
            }
        }
        if matches!(parts.last().copied(), Some("" | "." | "..")) {
            output.push("");
        }
        path = output.join("/");
    }
    if path.is_empty() && matches!(scheme, "http" | "https" | "ftp" | "file") {
        path = "/".to_string();
    }
    path
}

/// `url_normalize.url_normalize(url, default_scheme=...)`; `None` where it raises.
pub fn url_normalize(url: &str, default_scheme: &str) -> Option<String> {
    if url.is_empty() {
        return Some(String::new());
    }
    let head: String = url.chars().take(7).collect();
    let universal = url.starts_with("//");
    let file_path = url == "-" || (url.starts_with('/') && !universal);
    let mut url = if head.contains(':') || file_path {
        url.to_string()
    } else if universal {
        format!("{default_scheme}:{url}")
    } else {
        format!("{default_scheme}://{url}")
    };
    url = url.replace("#!", "?_escaped_fragment_=");
    url = UTM_SOURCE.replace_all(&url, "").into_owned();
    url = url.trim_end_matches(['&', '?', ' ']).to_string();

    // urlsplit
    let (scheme, rest) = match url.find(':') {
        Some(p) if url[..p].chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) && p > 0 => {
            (url[..p].to_lowercase(), &url[p + 1..])
        }
        _ => (String::new(), url.as_str()),
    };
    let (netloc, rest) = match rest.strip_prefix("//") {
        Some(r) => {
            let end = r.find(['/', '?', '#']).unwrap_or(r.len());
            (&r[..end], &r[end..])
        }
        None => ("", rest),
    };
    let (rest, fragment) = match rest.split_once('#') {
        Some((a, f)) => (a, Some(f)),
        None => (rest, None),
    };
    let (path, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let (userinfo, hostport) = match netloc.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, netloc),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || hostport.starts_with('[') => (h, Some(p)),
        _ => (hostport, None),
    };
    let host = host.to_lowercase();
    let host = host.trim_matches('.');
    let host = if host.is_empty() {
        String::new()
    } else if host.is_ascii() {
        host.to_string()
    } else {
        idna::domain_to_ascii(host).ok()?
    };
    let port = match port {
        Some("") | None => None,
        Some(p) => {
            let default = match scheme.as_str() {
                "http" => Some("80"),
                "https" => Some("443"),
                "ftp" => Some("21"),
                _ => None,
            };
            let trimmed = p.trim_start_matches('0');
            if Some(p) == default || Some(trimmed) == default {
                None
            } else {
                Some(p.to_string())
            }
        }
    };
    let path = normalize_path(path, &scheme);
    let mut out = String::new();
    if !scheme.is_empty() {
        out.push_str(&scheme);
        out.push(':');
    }
    if !netloc.is_empty() || !host.is_empty() {
        out.push_str("//");
        if let Some(u) = userinfo {
            out.push_str(u);
            out.push('@');
        }
        out.push_str(&host);
        if let Some(p) = port {
            out.push(':');
            out.push_str(&p);
        }
    }
    out.push_str(&path);
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        let mut params: Vec<String> = q
            .split('&')
            .map(|p| p.splitn(2, '=').map(|t| quote(&unquote(t), "~:/?#[]@!$'()*+,;=")).collect::<Vec<_>>().join("="))
            .collect();
        params.sort();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    if let Some(f) = fragment.filter(|f| !f.is_empty()) {
        out.push('#');
        out.push_str(&quote(&unquote(f), "~"));
    }
    Some(out)
}

/// `tld.get_tld(url, fail_silently=True)` is truthy: the host ends in a known top-level domain
/// below which there is a name.
fn has_known_tld(url: &str) -> bool {
    let Some(rest) = url.split_once("://").map(|(_, r)| r) else { return false };
    let netloc = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host = netloc.rsplit_once('@').map_or(netloc, |(_, h)| h);
    let host = host.split(':').next().unwrap_or("").to_lowercase();
    let labels: Vec<&str> = host.split('.').collect();
    if labels.len() < 2 || labels.iter().any(|l| l.is_empty()) {
        return false;
    }
    labels.last().is_some_and(|tld| TLDS.binary_search(tld).is_ok())
}

impl TwitterParserBot {
    fn domain_of(&self, word: &str) -> Option<String> {
        let caps = DOMAIN_IN_WORD.captures(word)?;
        let dom = caps.get(2)?.as_str();
        if self.whitelist.iter().any(|re| re.is_match(dom)) {
            return None;
        }
        let url = url_normalize(dom, &self.default_scheme)?;
        has_known_tld(&url).then_some(url)
    }
}

impl ParserBot for TwitterParserBot {
    fn parse(&mut self, report: &Message, _ctx: &mut Context<'_>, out: &mut ParserOutput<'_>) -> Result<(), BotError> {
        let text = report_text(report)?;
        let mut replaced = text.clone();
        for (old, new) in &self.substitutions {
            if !old.is_empty() {
                replaced = replaced.replace(old.as_str(), new);
            }
        }
        for word in replaced.split_whitespace() {
            let word = word.to_lowercase();
            if let Some(url) = self.domain_of(&word) {
                let mut event = out.new_event();
                event.add("raw", text.as_str())?;
                event.add("source.url", url)?;
                event.add("classification.type", self.classification_type.as_str())?;
                out.event(event);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_normalized_like_url_normalize() {
        assert_eq!(url_normalize("ghzz.com", "http").as_deref(), Some("http://ghzz.com/"));
        assert_eq!(url_normalize("Example.COM:80/a/./b/../c", "http").as_deref(), Some("http://example.com/a/c"));
        assert_eq!(url_normalize("a.com/x?b=2&a=1", "http").as_deref(), Some("http://a.com/x?a=1&b=2"));
    }

    #[test]
    fn only_known_top_level_domains_count() {
        assert!(has_known_tld("http://cc.pro/images.html"));
        assert!(!has_known_tld("http://sales.exe/"));
        assert!(!has_known_tld("http://com/"));
    }
}
