//! `intelmq.bots.experts.domain_valid.expert`: forwards an event only when its `domain_field`
//! holds a syntactically valid domain name (the `validators.domain` rule on the IDNA form, no
//! `_`) whose top-level domain is in the IANA list file `tlds_domains_list`. Events without the
//! field are dropped as well.
//!
//! The TLD file is read when the bot is built if its path is absolute, else on the first message
//! (relative to the node root).

use std::collections::HashSet;
use std::path::Path;
use std::sync::OnceLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ExpertBot, Level, Outbox, ParamError};
use crate::message::types::idna2003_encode;
use crate::message::Message;

/// Parameters of the domain valid expert (IntelMQ's names and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DomainValidExpertParams {
    /// The field holding the domain; default "source.fqdn".
    pub domain_field: String,
    /// The IANA TLD list (one TLD a line, `#` comments); default
    /// "/opt/intelmq/var/lib/bots/domain_valid/tlds-alpha-by-domain.txt".
    pub tlds_domains_list: String,
}

impl Default for DomainValidExpertParams {
    fn default() -> Self {
        DomainValidExpertParams {
            domain_field: "source.fqdn".to_string(),
            tlds_domains_list: "/opt/intelmq/var/lib/bots/domain_valid/tlds-alpha-by-domain.txt".to_string(),
        }
    }
}

/// The TLDs: read at build (absolute path) or on the first message (relative path).
enum Tlds {
    Loaded(HashSet<String>),
    Pending(String),
}

/// Reads the TLD list: lowercased, comments and empty lines skipped.
fn load_tlds(path: &Path) -> Result<HashSet<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read tld list {}: {e}", path.display()))?;
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.trim().to_lowercase())
        .filter(|l| !l.is_empty())
        .collect())
}

/// `validators.domain(value)` (validators 0.34 defaults): no whitespace, and the IDNA form matches
/// labels of letters, digits, `-` and `_` that start and end with a letter or digit, with a TLD
/// ending in a letter.
pub fn is_valid_domain(value: &str) -> bool {
    static PATTERN: OnceLock<Option<Regex>> = OnceLock::new();
    let pattern = PATTERN.get_or_init(|| {
        Regex::new(r"(?i)^(?:[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?\.)+[a-z0-9][a-z0-9_-]{0,61}[a-z]$").ok()
    });
    if value.is_empty() || value.chars().any(char::is_whitespace) {
        return false;
    }
    let Some(encoded) = idna2003_encode(value) else {
        return false;
    };
    pattern.as_ref().is_some_and(|re| re.is_match(&encoded))
}

/// Drops events with an invalid domain.
pub struct DomainValidExpertBot {
    domain_field: String,
    tlds: Tlds,
}

impl BuildBot for DomainValidExpertBot {
    type Params = DomainValidExpertParams;

    fn build(params: DomainValidExpertParams) -> Result<Self, ParamError> {
        let tlds = if Path::new(&params.tlds_domains_list).is_absolute() {
            Tlds::Loaded(
                load_tlds(Path::new(&params.tlds_domains_list)).map_err(|e| ParamError::new("tlds_domains_list", e))?,
            )
        } else {
            Tlds::Pending(params.tlds_domains_list)
        };
        Ok(DomainValidExpertBot { domain_field: params.domain_field, tlds })
    }
}

impl ExpertBot for DomainValidExpertBot {
    fn process(&mut self, event: Message, ctx: &mut Context<'_>, out: &mut Outbox) -> Result<(), BotError> {
        if let Tlds::Pending(path) = &self.tlds {
            self.tlds = Tlds::Loaded(load_tlds(&ctx.resolve(path)).map_err(BotError::Fatal)?);
        }
        let Tlds::Loaded(tlds) = &self.tlds else {
            return Err(BotError::Fatal("tld list is not loaded".to_string()));
        };
        let Some(domain) = event.get_str(&self.domain_field) else {
            ctx.log.log(Level::Debug, &format!("Filtered out event without {}.", self.domain_field));
            return Ok(());
        };
        let reason = if !is_valid_domain(domain) {
            Some("is invalid")
        } else if domain.contains('_') {
            Some("contains an underscore")
        } else if !domain.rsplit('.').next().is_some_and(|tld| tlds.contains(&tld.to_lowercase())) {
            Some("has an unknown TLD")
        } else {
            None
        };
        match reason {
            Some(reason) => {
                ctx.log.log(Level::Debug, &format!("Filtered out event with domain {domain:?}: it {reason}."))
            }
            None => out.send(event),
        }
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

    #[test]
    fn validators_rule() {
        assert!(is_valid_domain("soltane-tel-injas-heh.digital"));
        assert!(is_valid_domain("so6_ltane-tel-injas-heh.digital"));
        assert!(!is_valid_domain("-apk.info"));
        assert!(!is_valid_domain("example"));
        assert!(!is_valid_domain("exa mple.com"));
        assert!(!is_valid_domain("example.c0"));
    }

    #[test]
    fn drops_invalid_underscore_unknown_tld_and_missing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tlds.txt"), "# Version 1\nAAA\nDIGITAL\nINFO\n").unwrap();
        let h = harmonization();
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let mut ctx = Context {
            bot_id: "dv",
            harmonization: &h,
            root: dir.path(),
            state: &mut state,
            log: &mut log,
            clock: &crate::bots::SystemClock,
        };
        let params = json!({"tlds_domains_list": "tlds.txt"});
        let mut bot = DomainValidExpertBot::build(serde_json::from_value(params).unwrap()).unwrap();
        let mut forwarded = Vec::new();
        for fqdn in ["soltane.digital", "-soltane.digital", "so_ltane.digital", "example.com"] {
            let mut out = Outbox::default();
            bot.process(event(&h, json!({"source.fqdn": fqdn})), &mut ctx, &mut out).unwrap();
            forwarded.push(out.sent.len());
        }
        let mut out = Outbox::default();
        bot.process(event(&h, json!({"feed.name": "x"})), &mut ctx, &mut out).unwrap();
        forwarded.push(out.sent.len());
        assert_eq!(forwarded, [1, 0, 0, 0, 0]);
    }
}
