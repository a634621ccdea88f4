//! The FireEye parser (`intelmq.bots.parsers.fireeye.parser`): an OpenIOC alert of a FireEye MAS.
//! The sample's hashes become a `malware` event; a nested network indicator becomes a second,
//! `malware-distribution`, event with the contacted destination.

use roxmltree::{Document, Node};
use serde::{Deserialize, Serialize};

use crate::bots::parsers::report_text;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, Level, ParamError, ParserBot, ParserOutput};
use crate::message::Message;

/// The FireEye parser has no parameters of its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FireeyeParserParams {}

/// The FireEye parser.
#[derive(Debug)]
pub struct FireeyeParserBot;

impl BuildBot for FireeyeParserBot {
    type Params = FireeyeParserParams;

    fn build(_params: Self::Params) -> Result<Self, ParamError> {
        Ok(FireeyeParserBot)
    }
}

fn child<'a>(node: Node<'a, 'a>, name: &str) -> Option<Node<'a, 'a>> {
    node.children().find(|c| c.is_element() && c.tag_name().name() == name)
}

/// Python's `str.split(sep)[index]`.
fn split_nth<'s>(s: &'s str, sep: &str, index: usize) -> Result<&'s str, BotError> {
    s.split(sep).nth(index).ok_or_else(|| BotError::Invalid(format!("alert has no part {index} split at {sep:?}")))
}

/// The second event: the network indicator's destination (IntelMQ reads it from the XML text).
fn network_event(indicator: &str, event: &mut Message) -> Result<(), BotError> {
    let mut fqdn = String::new();
    let mut urlpath = String::new();
    for item in indicator.split("<IndicatorItem condition") {
        if !item.contains("search=") {
            continue;
        }
        for part in item.split("search=\"") {
            let mut classification = "";
            if part.contains("\"/>") {
                classification = match split_nth(part, "\"/>", 0)? {
                    "Network/HTTP/RequestURI" => "destination.urlpath",
                    "Network/HTTP/Host" => "destination.ip",
                    "Network/Connection/RemotePort" => "destination.port",
                    "Network/Connection/Protocol" => "protocol.transport",
                    "Network/DNS" => "destination.fqdn",
                    _ => "",
                };
            }
            if part.contains("Content") {
                let content = split_nth(split_nth(part, "\">", 1)?, "</Content>", 0)?;
                if !fqdn.is_empty() && !urlpath.is_empty() {
                    event.add("destination.url", format!("http://{fqdn}{urlpath}"))?;
                    urlpath.clear();
                }
                match classification {
                    "destination.ip" => {
                        if is_ipv4_network(content) {
                            event.add("destination.ip", content)?;
                        }
                        break;
                    }
                    "destination.fqdn" => {
                        fqdn = content.to_string();
                        event.add(classification, content)?;
                    }
                    "destination.urlpath" => {
                        urlpath = content.to_string();
                        event.add(classification, content)?;
                    }
                    "destination.port" => {
                        let port: i64 = content
                            .trim()
                            .parse()
                            .map_err(|_| BotError::Invalid(format!("invalid port {content:?}")))?;
                        event.add(classification, port)?;
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

/// Python's `ipaddress.IPv4Network(text)` (strict) accepts the text.
fn is_ipv4_network(text: &str) -> bool {
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let Ok(ip) = addr.parse::<std::net::Ipv4Addr>() else { return false };
    match prefix {
        None => true,
        Some(p) => match p.parse::<u32>() {
            Ok(bits) if bits <= 32 => {
                let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
                u32::from(ip) & !mask == 0
            }
            _ => false,
        },
    }
}

impl ParserBot for FireeyeParserBot {
    fn parse(&mut self, report: &Message, ctx: &mut Context<'_>, out: &mut ParserOutput<'_>) -> Result<(), BotError> {
        let raw = report_text(report)?;
        let document = Document::parse(&raw).map_err(|e| BotError::Invalid(format!("cannot parse xml: {e}")))?;
        let root = document.root_element();
        let items: Option<Vec<Node<'_, '_>>> = (root.tag_name().name() == "OpenIOC")
            .then(|| child(root, "criteria"))
            .flatten()
            .and_then(|c| child(c, "Indicator"))
            .map(|ind| ind.children().filter(|c| c.is_element() && c.tag_name().name() == "IndicatorItem").collect());
        let Some(items) = items.filter(|i| !i.is_empty()) else {
            ctx.log.log(Level::Info, "No IOCs Available.");
            return Ok(());
        };
        let mut event = out.new_event();
        let mut md5 = None;
        for item in items {
            let search = child(item, "Context").and_then(|c| c.attribute("search"));
            let content = child(item, "Content").and_then(|c| c.text()).unwrap_or("").to_string();
            let Some(search) = search else {
                ctx.log.log(Level::Info, "No IOCs Available.");
                return Ok(());
            };
            if search == "FileItem/Md5sum" {
                event.add("malware.hash.md5", content.as_str())?;
                md5 = Some(content.clone());
            }
            if search == "FileItem/Sha256sum" {
                event.add("malware.hash.sha256", content.as_str())?;
                event.add("classification.type", "malware")?;
                event.add("raw", raw.as_str())?;
                out.event(event);
                let data: Vec<&str> = raw.split("<Indicator id").collect();
                split_nth(data[0], "\"alert_id\">", 1)?;
                let indicator =
                    data.get(2).ok_or_else(|| BotError::Invalid("alert has no nested indicator".to_string()))?;
                event = out.new_event();
                if indicator.contains("Network") {
                    let md5 = md5
                        .clone()
                        .ok_or_else(|| BotError::Invalid("alert has no md5 before its sha256".to_string()))?;
                    event.add("classification.type", "malware-distribution")?;
                    event.add("raw", raw.as_str())?;
                    event.add("malware.hash.sha256", content.as_str())?;
                    event.add("malware.hash.md5", md5)?;
                    network_event(indicator, &mut event)?;
                    out.event(event);
                    event = out.new_event();
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_networks_are_strict() {
        assert!(is_ipv4_network("192.0.2.1"));
        assert!(is_ipv4_network("192.0.2.0/24"));
        assert!(!is_ipv4_network("192.0.2.1/24"));
        assert!(!is_ipv4_network("shop.example.com"));
    }
}
