//! `intelmq.bots.experts.tor_nodes.expert`: an IP of `source`/`destination` found in the Tor exit
//! node list sets `<dir>.tor_node` to true (an existing value is only replaced with `overwrite`).
//! Addresses not in the list get nothing.
//!
//! The list is a text file with one address per line; blank lines and lines starting with `#` are
//! skipped (the form IntelMQ's `--update-database` writes from check.torproject.org's
//! `exit-addresses`; that download helper is not part of this bot). It is read when the first
//! event arrives (a relative path resolves against the node root); a missing file stops the bot.

use std::collections::HashSet;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bots::experts::asn_lookup::lenient;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ExpertBot, Level, Outbox, ParamError};
use crate::message::{AddOptions, Message};

/// Parameters of the Tor nodes expert (IntelMQ's names and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TorNodesExpertParams {
    /// The exit node list; default "/opt/intelmq/var/lib/bots/tor_nodes/tor_nodes.dat".
    pub database: String,
    /// Replace an existing `<dir>.tor_node`; default false.
    #[serde(deserialize_with = "lenient::bool")]
    pub overwrite: bool,
    /// Used by IntelMQ's `--update-database` only, accepted and ignored; default true.
    #[serde(deserialize_with = "lenient::bool")]
    pub autoupdate_cached_database: bool,
}

impl Default for TorNodesExpertParams {
    fn default() -> Self {
        TorNodesExpertParams {
            database: "/opt/intelmq/var/lib/bots/tor_nodes/tor_nodes.dat".to_string(),
            overwrite: false,
            autoupdate_cached_database: true,
        }
    }
}

/// Reads the node list: one address per line, `#` comments and blank lines skipped.
pub fn load_tor_nodes(path: &Path) -> Result<HashSet<String>, std::io::Error> {
    Ok(parse_tor_nodes(&std::fs::read_to_string(path)?))
}

/// Parses the node list text (each line stripped, as IntelMQ does).
pub fn parse_tor_nodes(text: &str) -> HashSet<String> {
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_string).collect()
}

/// Marks Tor exit nodes.
pub struct TorNodesExpertBot {
    database_path: String,
    overwrite: bool,
    nodes: Option<HashSet<String>>,
}

impl BuildBot for TorNodesExpertBot {
    type Params = TorNodesExpertParams;

    fn build(params: TorNodesExpertParams) -> Result<Self, ParamError> {
        Ok(TorNodesExpertBot { database_path: params.database, overwrite: params.overwrite, nodes: None })
    }
}

impl ExpertBot for TorNodesExpertBot {
    fn process(&mut self, mut event: Message, ctx: &mut Context<'_>, out: &mut Outbox) -> Result<(), BotError> {
        if self.nodes.is_none() {
            let path = ctx.resolve(&self.database_path);
            match load_tor_nodes(&path) {
                Ok(nodes) => self.nodes = Some(nodes),
                Err(e) => {
                    ctx.log.log(Level::Critical, "TOR rule not defined or failed on open.");
                    return Err(BotError::Fatal(format!("tor node list {}: {e}", path.display())));
                }
            }
        }
        let Some(nodes) = &self.nodes else {
            return Err(BotError::Fatal("tor node list is not loaded".to_string()));
        };
        for dir in ["source", "destination"] {
            let Some(ip) = event.get_str(&format!("{dir}.ip")) else {
                continue;
            };
            let key = format!("{dir}.tor_node");
            if event.contains(&key) && !self.overwrite {
                continue;
            }
            if nodes.contains(ip) {
                event.add_with(
                    &key,
                    Value::Bool(true),
                    AddOptions { overwrite: Some(true), ..AddOptions::default() },
                )?;
            }
        }
        out.send(event);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::bots::experts::test_support::{event, harmonization};
    use crate::bots::{MemoryLog, MemoryState};

    fn run(overwrite: bool, fields: Value) -> Message {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tor.dat"), "# header\n 192.168.0.1 \n\n2001:db8::1\n").unwrap();
        let params = TorNodesExpertParams { database: "tor.dat".into(), overwrite, ..Default::default() };
        let mut bot = TorNodesExpertBot::build(params).unwrap();
        let h = harmonization();
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let mut ctx = Context {
            bot_id: "tor-expert",
            harmonization: &h,
            root: dir.path(),
            state: &mut state,
            log: &mut log,
            clock: &crate::bots::SystemClock,
        };
        let mut out = Outbox::default();
        bot.process(event(&h, fields), &mut ctx, &mut out).unwrap();
        out.sent.pop().unwrap().1
    }

    #[test]
    fn listed_addresses_are_marked_and_others_left_alone() {
        let msg = run(false, json!({"source.ip": "192.168.0.1", "destination.ip": "192.0.43.8"}));
        assert_eq!(msg.get("source.tor_node"), Some(&json!(true)));
        assert!(!msg.contains("destination.tor_node"));
    }

    #[test]
    fn existing_value_is_kept_unless_overwrite() {
        let fields = json!({"source.ip": "192.168.0.1", "source.tor_node": false});
        assert_eq!(run(false, fields.clone()).get("source.tor_node"), Some(&json!(false)));
        assert_eq!(run(true, fields).get("source.tor_node"), Some(&json!(true)));
    }

    #[test]
    fn comments_and_blank_lines_are_skipped() {
        let nodes = parse_tor_nodes("# x\n\n 10.0.0.1\r\n");
        assert_eq!(nodes.len(), 1);
        assert!(nodes.contains("10.0.0.1"));
    }

    #[test]
    fn defaults_are_intelmqs() {
        let d = TorNodesExpertParams::default();
        assert_eq!(d.database, "/opt/intelmq/var/lib/bots/tor_nodes/tor_nodes.dat");
        assert!(!d.overwrite);
    }
}
