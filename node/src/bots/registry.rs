//! The one explicit list of every bot module this node can run, keyed by IntelMQ's module path.
//! Grepping this file shows everything that exists.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::{collectors, experts, outputs, parsers, Bot, BotKind, ParamError, Params};

/// A bot type that can be built from its typed parameters.
pub trait BuildBot: Sized + 'static {
    /// The bot's parameters: a serde struct with `deny_unknown_fields` and a written `Default`.
    type Params: DeserializeOwned + Serialize + Default;
    /// Checks the parameters and builds the bot (no network or store access here).
    fn build(params: Self::Params) -> Result<Self, ParamError>;
}

/// One registered module.
pub struct BotEntry {
    /// IntelMQ's module path, e.g. `intelmq.bots.parsers.generic.parser_csv`.
    pub module: &'static str,
    pub kind: BotKind,
    /// The parameters and their defaults, for the BOTS catalogue.
    pub defaults: fn() -> Value,
    /// Builds the bot from its bot-specific parameters.
    pub build: fn(&Params) -> Result<Bot, ParamError>,
}

/// Deserializes a bot's parameters; an unknown or mistyped key names the key.
pub fn parse_params<P: DeserializeOwned>(params: &Params) -> Result<P, ParamError> {
    serde_json::from_value(Value::Object(params.clone())).map_err(|e| {
        let text = e.to_string();
        let key = text
            .split('`')
            .nth(1)
            .filter(|_| text.starts_with("unknown field") || text.starts_with("missing field"))
            .unwrap_or("")
            .to_string();
        ParamError { key, reason: text }
    })
}

fn defaults_of<B: BuildBot>() -> Value {
    serde_json::to_value(B::Params::default()).unwrap_or(Value::Null)
}

macro_rules! entry {
    ($kind:ident, $module:literal, $ty:ty) => {
        BotEntry {
            module: $module,
            kind: BotKind::$kind,
            defaults: defaults_of::<$ty>,
            build: |p| {
                let params = parse_params::<<$ty as BuildBot>::Params>(p)?;
                Ok(Bot::$kind(Box::new(<$ty as BuildBot>::build(params)?)))
            },
        }
    };
}

/// Every module this node knows, one line each.
pub static REGISTRY: &[BotEntry] = &[
    entry!(
        Collector,
        "intelmq.bots.collectors.file.collector_file",
        collectors::file::collector_file::FileCollectorBot
    ),
    // -- parsers (alphabetical within each block) --
    entry!(Parser, "intelmq.bots.parsers.generic.parser_csv", parsers::generic::parser_csv::GenericCsvParserBot),
    // registry:parsers-json
    // registry:parsers-shadowserver
    // registry:parsers-text
    // registry:parsers-markup
    // -- experts --
    entry!(Expert, "intelmq.bots.experts.deduplicator.expert", experts::deduplicator::expert::DeduplicatorExpertBot),
    entry!(Expert, "intelmq.bots.experts.taxonomy.expert", experts::taxonomy::expert::TaxonomyExpertBot),
    entry!(Expert, "intelmq.bots.experts.url2fqdn.expert", experts::url2fqdn::expert::Url2fqdnExpertBot),
    // registry:experts-sieve
    // registry:experts-general
    // registry:experts-lookup
    // -- outputs --
    entry!(Output, "intelmq.bots.outputs.file.output", outputs::file::output::FileOutputBot),
];

/// The entry of a module, if registered.
pub fn find(module: &str) -> Option<&'static BotEntry> {
    REGISTRY.iter().find(|e| e.module == module)
}

/// The registered module paths, for error messages.
pub fn known_modules() -> Vec<&'static str> {
    REGISTRY.iter().map(|e| e.module).collect()
}

/// The BOTS catalogue (IntelMQ's `BOTS` file shape): group -> bot name -> module and default
/// parameters. `etc/BOTS` is this, and `intelmq-node --print-bots` prints it.
pub fn catalogue() -> Value {
    let mut groups = serde_json::Map::new();
    for kind in [BotKind::Collector, BotKind::Parser, BotKind::Expert, BotKind::Output] {
        let mut bots = serde_json::Map::new();
        for e in REGISTRY.iter().filter(|e| e.kind == kind) {
            let mut entry = serde_json::Map::new();
            entry.insert("module".into(), Value::String(e.module.to_string()));
            entry.insert("parameters".into(), (e.defaults)());
            bots.insert(e.module.to_string(), Value::Object(entry));
        }
        groups.insert(kind.as_str().to_string(), Value::Object(bots));
    }
    Value::Object(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_is_listed_once_and_builds_from_its_defaults_or_names_the_key() {
        let mut seen = std::collections::HashSet::new();
        for e in REGISTRY {
            assert!(seen.insert(e.module), "{} registered twice", e.module);
            assert!(e.module.starts_with("intelmq.bots."), "{}", e.module);
            assert!((e.defaults)().is_object(), "{} defaults are an object", e.module);
        }
    }

    #[test]
    fn unknown_parameter_names_the_key() {
        let entry = find("intelmq.bots.experts.taxonomy.expert").expect("registered");
        let mut p = Params::new();
        p.insert("no_such_key".into(), Value::Bool(true));
        let err = (entry.build)(&p).err().expect("refused");
        assert_eq!(err.key, "no_such_key");
    }
}
