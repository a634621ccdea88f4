//! The CleanMX parser (`intelmq.bots.parsers.cleanmx.parser`): the XML phishing and virus feeds;
//! which one is decided by `feed.url`. Every `<entry>` is one event, `raw` is the entry as Python's
//! ElementTree writes it.

use chrono::DateTime;
use roxmltree::{Document, Node, NodeType};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::bots::parsers::report_text;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ParamError, ParserBot, ParserOutput};
use crate::message::Message;

/// Phishing feed columns and their fields (`extra` = under `extra.<column>`).
const PHISHING: &[(&str, &str)] = &[
    ("line", "__IGNORE__"),
    ("id", "extra"),
    ("first", "time.source"),
    ("firsttime", "__IGNORE__"),
    ("last", "__IGNORE__"),
    ("lasttime", "__IGNORE__"),
    ("phishtank", "extra"),
    ("target", "event_description.target"),
    ("url", "source.url"),
    ("recent", "status"),
    ("response", "extra"),
    ("ip", "source.ip"),
    ("review", "extra"),
    ("domain", "source.fqdn"),
    ("country", "source.geolocation.cc"),
    ("source", "source.registry"),
    ("email", "source.abuse_contact"),
    ("inetnum", "extra"),
    ("netname", "extra"),
    ("descr", "extra"),
    ("ns1", "extra"),
    ("ns2", "extra"),
    ("ns3", "extra"),
    ("ns4", "extra"),
    ("ns5", "extra"),
];

/// Virus feed columns and their fields.
const VIRUS: &[(&str, &str)] = &[
    ("line", "__IGNORE__"),
    ("id", "extra"),
    ("sub", "extra"),
    ("first", "time.source"),
    ("firsttime", "__IGNORE__"),
    ("last", "__IGNORE__"),
    ("lasttime", "__IGNORE__"),
    ("scanner", "extra"),
    ("virusname", "malware.name"),
    ("url", "source.url"),
    ("recent", "status"),
    ("response", "extra"),
    ("ip", "source.ip"),
    ("as", "source.asn"),
    ("review", "extra"),
    ("domain", "source.fqdn"),
    ("country", "source.geolocation.cc"),
    ("source", "extra"),
    ("email", "source.abuse_contact"),
    ("inetnum", "extra"),
    ("netname", "extra"),
    ("descr", "extra"),
    ("ns1", "extra"),
    ("ns2", "extra"),
    ("ns3", "extra"),
    ("ns4", "extra"),
    ("ns5", "extra"),
    ("md5", "malware.hash.md5"),
    ("virustotal", "extra"),
    ("vt_score", "extra"),
    ("vt_info", "extra"),
];

/// The CleanMX parser has no parameters of its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CleanmxParserParams {}

/// The CleanMX parser.
#[derive(Debug)]
pub struct CleanmxParserBot;

impl BuildBot for CleanmxParserBot {
    type Params = CleanmxParserParams;

    fn build(_params: Self::Params) -> Result<Self, ParamError> {
        Ok(CleanmxParserBot)
    }
}

/// ElementTree's text escaping.
fn escape_text(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// ElementTree's attribute escaping.
fn escape_attribute(s: &str) -> String {
    escape_text(s).replace('"', "&quot;").replace('\r', "&#13;").replace('\n', "&#10;").replace('\t', "&#09;")
}

/// The text of the text nodes starting at `first` up to the next element (comments and
/// processing instructions are dropped, as ElementTree's parser drops them).
fn text_run<'a>(mut node: Option<Node<'a, 'a>>) -> String {
    let mut out = String::new();
    while let Some(n) = node {
        match n.node_type() {
            NodeType::Element => break,
            NodeType::Text => out.push_str(n.text().unwrap_or("")),
            _ => {}
        }
        node = n.next_sibling();
    }
    out
}

/// An element's `.text` in ElementTree.
pub fn et_text(node: Node<'_, '_>) -> String {
    text_run(node.first_child())
}

/// `ElementTree.tostring(element)`: the element and its tail.
pub fn et_tostring(node: Node<'_, '_>) -> String {
    let mut out = String::new();
    write_element(node, &mut out);
    out.push_str(&escape_text(&text_run(node.next_sibling())));
    out
}

fn write_element(node: Node<'_, '_>, out: &mut String) {
    let tag = node.tag_name().name();
    out.push('<');
    out.push_str(tag);
    for attr in node.attributes() {
        out.push(' ');
        out.push_str(attr.name());
        out.push_str("=\"");
        out.push_str(&escape_attribute(attr.value()));
        out.push('"');
    }
    let text = et_text(node);
    let children: Vec<Node<'_, '_>> = node.children().filter(Node::is_element).collect();
    if text.is_empty() && children.is_empty() {
        out.push_str(" />");
        return;
    }
    out.push('>');
    out.push_str(&escape_text(&text));
    for child in children {
        write_element(child, out);
        out.push_str(&escape_text(&text_run(child.next_sibling())));
    }
    out.push_str("</");
    out.push_str(tag);
    out.push('>');
}

/// One entry as an event.
fn parse_entry(
    entry: Node<'_, '_>,
    mapping: &[(&str, &str)],
    ctype: &str,
    raw: &str,
    out: &mut ParserOutput<'_>,
) -> Result<Message, BotError> {
    let mut event = out.new_event();
    let mut extra = Map::new();
    for item in entry.children().filter(Node::is_element) {
        let key_orig = item.tag_name().name();
        let mut value = et_text(item);
        if value.is_empty() || value == "undef" {
            continue;
        }
        let key = mapping
            .iter()
            .find(|(k, _)| *k == key_orig)
            .map(|(_, v)| *v)
            .ok_or_else(|| BotError::Invalid(format!("unknown column `{key_orig}`")))?;
        if key == "__IGNORE__" {
            continue;
        }
        let as_value = Value::String(value.clone());
        if key == "source.fqdn" && event.is_valid("source.ip", &as_value, true)? {
            continue;
        }
        if key == "source.ip" && event.is_valid("source.fqdn", &as_value, true)? {
            continue;
        }
        if key == "time.source" {
            let secs: i64 = value
                .trim()
                .parse()
                .map_err(|_| BotError::Invalid(format!("invalid timestamp {value:?} in `{key_orig}`")))?;
            let dt = DateTime::from_timestamp(secs, 0)
                .ok_or_else(|| BotError::Invalid(format!("timestamp {secs} out of range")))?;
            value = dt.format("%Y-%m-%dT%H:%M:%S UTC").to_string();
        }
        if key == "source.asn" {
            let upper = value.to_uppercase();
            if upper.starts_with("ASNA") {
                continue;
            }
            for asn in upper.split(',') {
                if asn.starts_with("AS") {
                    value = asn.split("AS").nth(1).unwrap_or("").to_string();
                    break;
                }
            }
        }
        if key == "status" {
            if value == "down" {
                value = "offline".to_string();
            } else if value == "up" {
                value = "online".to_string();
            }
        }
        if key == "extra" {
            extra.insert(key_orig.to_string(), Value::String(value));
            continue;
        }
        event.add(key, value)?;
    }
    if !extra.is_empty() {
        event.add("extra", crate::message::wire::dumps(&Value::Object(extra)))?;
    }
    event.add("classification.type", ctype)?;
    event.add("raw", raw)?;
    Ok(event)
}

impl ParserBot for CleanmxParserBot {
    fn parse(&mut self, report: &Message, _ctx: &mut Context<'_>, out: &mut ParserOutput<'_>) -> Result<(), BotError> {
        let url = report.get_str("feed.url").unwrap_or("");
        if url.contains("format=csv") {
            return Err(BotError::Fatal(
                "cleanmx: only the XML format is supported; point the collector's http_url at the XML feed".to_string(),
            ));
        }
        let (mapping, ctype) = if url.contains("xmlphishing") {
            (PHISHING, "phishing")
        } else if url.contains("xmlviruses") {
            (VIRUS, "malware-distribution")
        } else {
            return Err(BotError::Invalid(format!(
                "unknown report: feed.url {url:?} is neither xmlphishing nor xmlviruses"
            )));
        };
        let text = report_text(report)?;
        let document = Document::parse(&text).map_err(|e| BotError::Invalid(format!("cannot parse xml: {e}")))?;
        for entry in document.descendants().filter(|n| n.is_element() && n.tag_name().name() == "entry") {
            let raw = et_tostring(entry);
            match parse_entry(entry, mapping, ctype, &raw, out) {
                Ok(event) => out.event(event),
                Err(e) => out.fail(raw, e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_serialised_like_elementtree() {
        let doc =
            Document::parse("<r><entry a='x&amp;y'>\n\t<u><![CDATA[a&b]]></u>\n\t<e></e><!-- c -->\n</entry>\n</r>")
                .unwrap();
        let entry = doc.descendants().find(|n| n.has_tag_name("entry")).unwrap();
        assert_eq!(et_tostring(entry), "<entry a=\"x&amp;y\">\n\t<u>a&amp;b</u>\n\t<e />\n</entry>\n");
    }
}
