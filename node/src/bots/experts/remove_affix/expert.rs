//! `intelmq.bots.experts.remove_affix.expert`: removes a prefix (default `www.`) or a suffix from
//! one field (default `source.fqdn`).

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ExpertBot, Outbox, ParamError};
use crate::message::Message;

/// A boolean given as JSON bool or as `"true"`/`"false"`.
fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match Value::deserialize(d)? {
        Value::Bool(b) => Ok(b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        other => Err(serde::de::Error::custom(format!("{other} is not a boolean"))),
    }
}

/// Parameters of the remove affix expert (IntelMQ's names and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RemoveAffixExpertParams {
    /// Remove a prefix (true) or a suffix (false); default true.
    #[serde(deserialize_with = "lenient_bool")]
    pub remove_prefix: bool,
    /// The text removed; default "www.".
    pub affix: String,
    /// The field; default "source.fqdn".
    pub field: String,
}

impl Default for RemoveAffixExpertParams {
    fn default() -> Self {
        RemoveAffixExpertParams { remove_prefix: true, affix: "www.".to_string(), field: "source.fqdn".to_string() }
    }
}

/// Removes a prefix or suffix from a field.
pub struct RemoveAffixExpertBot {
    params: RemoveAffixExpertParams,
}

impl BuildBot for RemoveAffixExpertBot {
    type Params = RemoveAffixExpertParams;

    fn build(params: RemoveAffixExpertParams) -> Result<Self, ParamError> {
        Ok(RemoveAffixExpertBot { params })
    }
}

impl ExpertBot for RemoveAffixExpertBot {
    fn process(&mut self, mut event: Message, _ctx: &mut Context<'_>, out: &mut Outbox) -> Result<(), BotError> {
        let p = &self.params;
        if let Some(value) = event.get_str(&p.field) {
            let cut = if p.remove_prefix {
                value.strip_prefix(p.affix.as_str())
            } else {
                value.strip_suffix(p.affix.as_str())
            };
            if let Some(cut) = cut {
                let cut = cut.to_string();
                event.change(&p.field, cut)?;
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

    fn run(params: Value, fields: Value) -> Message {
        let h = harmonization();
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let root = std::path::Path::new("/");
        let mut ctx = Context {
            bot_id: "remove-affix",
            harmonization: &h,
            root,
            state: &mut state,
            log: &mut log,
            clock: &crate::bots::SystemClock,
        };
        let mut bot = RemoveAffixExpertBot::build(serde_json::from_value(params).unwrap()).unwrap();
        let mut out = Outbox::default();
        bot.process(event(&h, fields), &mut ctx, &mut out).unwrap();
        out.sent.pop().unwrap().1
    }

    #[test]
    fn prefix_and_suffix_are_removed() {
        assert_eq!(run(json!({}), json!({"source.fqdn": "www.google.lt"})).get_str("source.fqdn"), Some("google.lt"));
        let msg = run(json!({"remove_prefix": "false", "affix": ".lt"}), json!({"source.fqdn": "www.google.lt"}));
        assert_eq!(msg.get_str("source.fqdn"), Some("www.google"));
    }

    #[test]
    fn other_values_stay() {
        assert_eq!(run(json!({}), json!({"source.fqdn": "google.lt"})).get_str("source.fqdn"), Some("google.lt"));
        assert!(!run(json!({}), json!({"feed.name": "x"})).contains("source.fqdn"));
    }
}
