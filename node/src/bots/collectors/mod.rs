//! Collector bots and what all collectors share: the feed parameters (`name`, `accuracy`, `code`,
//! `provider`, `documentation`) and how they become `feed.*` fields of every report (IntelMQ's
//! `CollectorBot`). Pure: no actix, tokio or RocksDB; the runtime calls [`add_feed_fields`].

pub mod alienvault_otx;
pub mod amqp;
pub mod api;
pub mod blueliv;
pub mod file;
pub mod github_api;
pub mod http;
pub mod mail;
pub mod microsoft;
pub mod misp;
pub mod rsync;
pub mod shadowserver;
pub mod shodan;
pub mod stomp;
pub mod tcp;
// mods:collectors-net

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ParamError, Params};
use crate::message::{FieldError, Message};

/// The feed parameters every collector accepts besides its own (IntelMQ `CollectorBot`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CollectorCommon {
    /// `feed.name`; default none.
    pub name: Option<String>,
    /// `feed.accuracy`; default 100.0.
    pub accuracy: f64,
    /// `feed.code`; default none.
    pub code: Option<String>,
    /// `feed.provider`; default none.
    pub provider: Option<String>,
    /// `feed.documentation`; default none.
    pub documentation: Option<String>,
}

impl Default for CollectorCommon {
    fn default() -> Self {
        CollectorCommon { name: None, accuracy: 100.0, code: None, provider: None, documentation: None }
    }
}

/// The parameter keys that belong to [`CollectorCommon`].
pub const FEED_PARAMETERS: &[&str] = &["name", "accuracy", "code", "provider", "documentation"];

impl CollectorCommon {
    /// Takes the feed parameters out of a collector's parameter map, leaving the bot's own keys.
    /// `accuracy` may be a number or a numeric string (IntelMQ configs hold both); `null` keeps the
    /// default.
    pub fn take_from(params: &mut Params) -> Result<CollectorCommon, ParamError> {
        let mut common = CollectorCommon::default();
        for key in FEED_PARAMETERS {
            let Some(value) = params.remove(*key) else {
                continue;
            };
            match *key {
                "accuracy" => {
                    common.accuracy = match &value {
                        Value::Null => common.accuracy,
                        Value::Number(n) => n.as_f64().unwrap_or(common.accuracy),
                        Value::String(s) => s
                            .trim()
                            .parse::<f64>()
                            .map_err(|_| ParamError::new("accuracy", format!("`{s}` is not a number")))?,
                        other => {
                            return Err(ParamError::new("accuracy", format!("{other} is not a number")));
                        }
                    };
                    if !(0.0..=100.0).contains(&common.accuracy) {
                        return Err(ParamError::new(
                            "accuracy",
                            format!("{} is not between 0 and 100", common.accuracy),
                        ));
                    }
                }
                _ => {
                    let text = match value {
                        Value::Null => None,
                        Value::String(s) => Some(s),
                        other => Some(other.to_string()),
                    };
                    match *key {
                        "name" => common.name = text,
                        "code" => common.code = text,
                        "provider" => common.provider = text,
                        _ => common.documentation = text,
                    }
                }
            }
        }
        Ok(common)
    }
}

/// Adds the feed fields to a report as IntelMQ's `CollectorBot` does when sending: `feed.name`,
/// `feed.code`, `feed.documentation`, `feed.provider` and `feed.accuracy`, each only if truthy
/// (a non-empty string; an accuracy other than 0, so the default 100 is always added, as `100.0`).
pub fn add_feed_fields(report: &mut Message, common: &CollectorCommon) -> Result<(), FieldError> {
    let texts = [
        ("feed.name", &common.name),
        ("feed.code", &common.code),
        ("feed.documentation", &common.documentation),
        ("feed.provider", &common.provider),
    ];
    for (key, value) in texts {
        if let Some(text) = value.as_deref().filter(|t| !t.is_empty()) {
            report.add(key, text)?;
        }
    }
    if common.accuracy != 0.0 {
        report.add("feed.accuracy", common.accuracy)?;
    }
    Ok(())
}

/// Shared by the collector tests: the shipped harmonization.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod test_support {
    use std::sync::Arc;

    use crate::message::Harmonization;

    pub(crate) fn harmonization() -> Arc<Harmonization> {
        Harmonization::builtin()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::test_support::harmonization;
    use super::*;
    use crate::message::MessageKind;

    #[test]
    fn feed_fields_are_added_when_truthy_and_accuracy_by_default() {
        let mut report = Message::new(MessageKind::Report, harmonization());
        let common = CollectorCommon {
            name: Some("Example Feed".into()),
            provider: Some(String::new()),
            ..CollectorCommon::default()
        };
        add_feed_fields(&mut report, &common).unwrap();
        assert_eq!(report.get_str("feed.name"), Some("Example Feed"));
        assert!(report.get("feed.provider").is_none());
        assert!(report.get("feed.code").is_none());
        assert_eq!(report.get("feed.accuracy"), Some(&json!(100.0)));
    }

    #[test]
    fn zero_accuracy_is_not_added() {
        let mut report = Message::new(MessageKind::Report, harmonization());
        let common = CollectorCommon { accuracy: 0.0, ..CollectorCommon::default() };
        add_feed_fields(&mut report, &common).unwrap();
        assert!(report.get("feed.accuracy").is_none());
    }

    #[test]
    fn take_from_removes_feed_keys_and_parses_string_accuracy() {
        let mut params: Params = serde_json::from_value(json!({
            "name": "Feed", "accuracy": "50", "provider": "P", "path": "/tmp/"
        }))
        .unwrap();
        let common = CollectorCommon::take_from(&mut params).unwrap();
        assert_eq!(common.name.as_deref(), Some("Feed"));
        assert_eq!(common.provider.as_deref(), Some("P"));
        assert_eq!(common.accuracy, 50.0);
        assert_eq!(params.keys().collect::<Vec<_>>(), vec!["path"]);
    }

    #[test]
    fn take_from_rejects_out_of_range_accuracy() {
        let mut params: Params = serde_json::from_value(json!({"accuracy": 150})).unwrap();
        let err = CollectorCommon::take_from(&mut params).unwrap_err();
        assert_eq!(err.key, "accuracy");
    }
}
