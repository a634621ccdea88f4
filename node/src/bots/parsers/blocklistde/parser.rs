//! The Blocklist.de parser (`intelmq.bots.parsers.blocklistde.parser`): one IP address per line;
//! the list's file name in `feed.url` decides the classification and the attacked service.

use serde::{Deserialize, Serialize};

use crate::bots::parsers::text_lines::{feed_url, parse_lines};
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ParamError, ParserBot, ParserOutput};
use crate::message::types::urlsplit;
use crate::message::Message;

/// Per list file: `classification.type`, `protocol.application`, `event_description.text`.
const MAPPING: &[(&str, &str, Option<&str>, Option<&str>)] = &[
    ("all.txt", "blacklist", None, None),
    ("ssh.txt", "ids-alert", Some("ssh"), Some("IP reported as having run attacks on the service SSH")),
    ("mail.txt", "ids-alert", Some("smtp"), Some("IP reported as having run attacks on the service Mail, Postfix")),
    (
        "apache.txt",
        "ids-alert",
        Some("http"),
        Some("IP reported as having run attacks on the service Apache, Apache-DDoS, RFI-Attacks"),
    ),
    ("imap.txt", "ids-alert", Some("imap"), Some("IP reported as having run attacks on the service IMAP, SASL, POP3")),
    ("ftp.txt", "ids-alert", Some("ftp"), Some("IP reported as having run attacks on the service FTP")),
    ("sip.txt", "ids-alert", Some("sip"), Some("IP reported as having run attacks on the service SIP, VOIP, Asterisk")),
    ("bots.txt", "spam", None, Some("IP reported as having spammed on IRC, open forums, wikis or registration forms.")),
    ("strongips.txt", "blacklist", None, Some("IP reported as having run attacks in last 2 months")),
    ("ircbot.txt", "infected-system", Some("irc"), None),
    (
        "bruteforcelogin.txt",
        "brute-force",
        None,
        Some("IP reported as having run attacks on Joomlas, Wordpress and other Web-Logins with Brute-Force Logins"),
    ),
];

/// The Blocklist.de parser has no parameters of its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockListDEParserParams {}

/// The Blocklist.de parser.
#[derive(Debug, Default)]
pub struct BlockListDEParserBot;

impl BuildBot for BlockListDEParserBot {
    type Params = BlockListDEParserParams;

    fn build(_params: Self::Params) -> Result<Self, ParamError> {
        Ok(BlockListDEParserBot)
    }
}

/// The file name of the URL's path (Python `posixpath.basename(urlparse(url).path)`).
fn file_name(url: &str) -> String {
    let path = urlsplit(url).map(|u| u.path).unwrap_or_default();
    path.rsplit('/').next().unwrap_or("").to_string()
}

impl ParserBot for BlockListDEParserBot {
    fn parse(&mut self, report: &Message, _ctx: &mut Context<'_>, out: &mut ParserOutput<'_>) -> Result<(), BotError> {
        parse_lines(report, out, |line, _state, out| {
            let name = file_name(feed_url(report)?);
            let mut event = out.new_event();
            event.add("source.ip", line)?;
            match MAPPING.iter().find(|(file, ..)| *file == name) {
                Some((_, type_, application, text)) => {
                    event.add("classification.type", *type_)?;
                    if let Some(application) = application {
                        event.add("protocol.application", *application)?;
                    }
                    if let Some(text) = text {
                        event.add("event_description.text", *text)?;
                    }
                }
                None => {
                    event.add("classification.type", "blacklist")?;
                }
            }
            event.add("raw", line)?;
            Ok(vec![event])
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bots::parsers::text_lines::testing::{field, run};
    use serde_json::json;

    #[test]
    fn the_list_name_sets_type_and_service() {
        let url = "https://lists.blocklist.de/lists/ssh.txt";
        let parsed = run(&mut BlockListDEParserBot, &[("feed.url", url)], "192.0.2.1\n\n192.0.2.2\n").unwrap();
        assert_eq!(parsed.events.len(), 2);
        assert_eq!(field(&parsed.events[0], "classification.type"), json!("ids-alert"));
        assert_eq!(field(&parsed.events[0], "protocol.application"), json!("ssh"));
        assert_eq!(field(&parsed.events[1], "source.ip"), json!("192.0.2.2"));
    }

    #[test]
    fn unknown_lists_are_blacklists_and_bad_ips_fail_alone() {
        let url = "https://lists.blocklist.de/lists/new.txt?x=1";
        let parsed = run(&mut BlockListDEParserBot, &[("feed.url", url)], "192.0.2.1\nnot-an-ip\n").unwrap();
        assert_eq!(parsed.events.len(), 1);
        assert_eq!(field(&parsed.events[0], "classification.type"), json!("blacklist"));
        assert!(parsed.events[0].get("event_description.text").is_none());
        assert_eq!(parsed.failed.len(), 1);
    }
}
