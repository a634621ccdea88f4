//! `intelmq.bots.experts.taxonomy.expert`: fills in `classification.taxonomy` from
//! `classification.type` (IntelMQ's table; an unknown type gives `other`), and the defaults when
//! they are missing: no taxonomy and no type → `other`/`undetermined`; a taxonomy without a type →
//! type `undetermined`. Events with both are left as they are.

use serde::{Deserialize, Serialize};

use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ExpertBot, Outbox, ParamError};
use crate::message::types::taxonomy_of;
use crate::message::Message;

/// The taxonomy expert has no parameters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaxonomyExpertParams {}

/// Sets the classification taxonomy (and defaults) of each event.
pub struct TaxonomyExpertBot;

impl BuildBot for TaxonomyExpertBot {
    type Params = TaxonomyExpertParams;

    fn build(_params: TaxonomyExpertParams) -> Result<Self, ParamError> {
        Ok(TaxonomyExpertBot)
    }
}

impl ExpertBot for TaxonomyExpertBot {
    fn process(&mut self, mut event: Message, _ctx: &mut Context<'_>, out: &mut Outbox) -> Result<(), BotError> {
        if !event.contains("classification.taxonomy") {
            let taxonomy = match event.get_str("classification.type") {
                Some(kind) => taxonomy_of(kind).unwrap_or("other"),
                None => "other",
            };
            event.add("classification.taxonomy", taxonomy)?;
        }
        if !event.contains("classification.type") {
            event.add("classification.type", "undetermined")?;
        }
        out.send(event);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::bots::experts::test_support::{event, harmonization};
    use crate::bots::{MemoryLog, MemoryState};

    fn process(fields: Value) -> Message {
        let h = harmonization();
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let root = std::path::Path::new("/");
        let mut ctx = Context {
            bot_id: "taxonomy-expert",
            harmonization: &h,
            root,
            state: &mut state,
            log: &mut log,
            clock: &crate::bots::SystemClock,
        };
        let mut out = Outbox::default();
        TaxonomyExpertBot.process(event(&h, fields), &mut ctx, &mut out).unwrap();
        assert_eq!(out.sent.len(), 1);
        let (path, msg) = out.sent.pop().unwrap();
        assert_eq!(path, "_default");
        msg
    }

    #[test]
    fn taxonomy_follows_the_type() {
        let msg = process(json!({"classification.type": "phishing"}));
        assert_eq!(msg.get_str("classification.taxonomy"), Some("fraud"));
        let msg = process(json!({"classification.type": "unauthorised-information-modification"}));
        assert_eq!(msg.get_str("classification.taxonomy"), Some("information-content-security"));
    }

    #[test]
    fn missing_classification_becomes_other_and_undetermined_in_that_order() {
        let msg = process(json!({"time.observation": "2015-01-01T00:00:00+00:00"}));
        let keys: Vec<_> = msg.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec!["time.observation", "classification.taxonomy", "classification.type"]);
        assert_eq!(msg.get_str("classification.taxonomy"), Some("other"));
        assert_eq!(msg.get_str("classification.type"), Some("undetermined"));
    }

    #[test]
    fn taxonomy_without_type_gets_undetermined_and_both_set_stay() {
        let msg = process(json!({"classification.taxonomy": "vulnerable"}));
        assert_eq!(msg.get_str("classification.type"), Some("undetermined"));
        let msg = process(json!({"classification.taxonomy": "vulnerable", "classification.type": "phishing"}));
        assert_eq!(msg.get_str("classification.taxonomy"), Some("vulnerable"));
        assert_eq!(msg.get_str("classification.type"), Some("phishing"));
    }
}
