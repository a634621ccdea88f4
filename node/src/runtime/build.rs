//! Turns validated bot configs into bots through the registry; every error names the config file,
//! the bot id and the key.

use crate::bots::parsers::ParserCommon;
use crate::bots::registry::{self, BotEntry};
use crate::bots::{Bot, BotKind};
use crate::config::{BotConfig, Botnet, Group};

/// A bot that cannot be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{file}: bot `{bot}`: unknown bot module `{module}` (known: {known})")]
    UnknownModule { file: String, bot: String, module: String, known: String },
    #[error("{file}: bot `{bot}`: key `{key}`: {reason}")]
    Param { file: String, bot: String, key: String, reason: String },
    #[error("{file}: bot `{bot}`: key `group`: `{group}` does not match module `{module}`, which is a {kind}")]
    Group { file: String, bot: String, group: String, module: String, kind: &'static str },
}

/// The registry entry of a configured bot.
pub fn entry_of(cfg: &BotConfig) -> Result<&'static BotEntry, BuildError> {
    let entry = registry::find(&cfg.module).ok_or_else(|| BuildError::UnknownModule {
        file: cfg.file.display().to_string(),
        bot: cfg.id.clone(),
        module: cfg.module.clone(),
        known: registry::known_modules().join(", "),
    })?;
    if let Some(group) = cfg.group {
        let matches = matches!(
            (group, entry.kind),
            (Group::Collector, BotKind::Collector)
                | (Group::Parser, BotKind::Parser)
                | (Group::Expert, BotKind::Expert)
                | (Group::Output, BotKind::Output)
        );
        if !matches {
            return Err(BuildError::Group {
                file: cfg.file.display().to_string(),
                bot: cfg.id.clone(),
                group: format!("{group:?}"),
                module: cfg.module.clone(),
                kind: entry.kind.as_str(),
            });
        }
    }
    Ok(entry)
}

/// Builds one bot.
pub fn build(cfg: &BotConfig) -> Result<Bot, BuildError> {
    let entry = entry_of(cfg)?;
    (entry.build)(&cfg.params).map_err(|e| BuildError::Param {
        file: cfg.file.display().to_string(),
        bot: cfg.id.clone(),
        key: if e.key.is_empty() { "parameters".to_string() } else { format!("parameters.{}", e.key) },
        reason: e.reason,
    })
}

/// Builds every bot once to check modules and parameters, without starting anything; checks
/// parsers' `default_fields` against the harmonization as IntelMQ does at start.
pub fn validate(botnet: &Botnet) -> Result<(), BuildError> {
    for cfg in &botnet.bots {
        let bot = build(cfg)?;
        if bot.kind() == BotKind::Parser {
            let common = ParserCommon {
                default_fields: cfg.common.default_fields.clone(),
                copy_collector_provided_fields: cfg.common.copy_collector_provided_fields.clone(),
            };
            common.validate(&botnet.harmonization).map_err(|e| BuildError::Param {
                file: cfg.file.display().to_string(),
                bot: cfg.id.clone(),
                key: format!("parameters.{}", if e.key.is_empty() { "default_fields" } else { &e.key }),
                reason: e.reason,
            })?;
        }
    }
    Ok(())
}
