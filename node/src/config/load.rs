//! Reading `<root>/etc/` into a [`Botnet`]: the layout detection (IntelMQ 3 `runtime.yaml` or the
//! classic `defaults.conf` + `runtime.conf` + `pipeline.conf`), the raw parse into ordered entries,
//! then `validate`, which does no IO: IntelMQ's parameter precedence (built-in defaults <
//! `defaults.conf` / `global:` < the bot's top-level `name` < the bot's `parameters`), the split
//! into [`CommonParams`], pipeline wiring and bot-specific parameters, and the cross-bot checks
//! (duplicate source queues, dangling destination queues, unknown nodes, a queue claimed by two
//! nodes, messages crossing nodes without a broker).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::error::ConfigError;
use super::node::NodeConfig;
use super::{etc_dir, BotConfig, Botnet, CommonParams, ConfigLayout, ErrorProcedure, Group, RunMode};
use crate::message::Harmonization;

/// The keys a bot entry may have at its top level.
const BOT_KEYS: &[&str] =
    &["group", "groupname", "bot_id", "module", "name", "description", "enabled", "run_mode", "parameters", "node"];

/// The keys of a `pipeline.conf` entry.
const PIPELINE_KEYS: &[&str] = &["source-queue", "destination-queues"];

/// The parameters that end up in [`CommonParams`].
const COMMON_KEYS: &[&str] = &[
    "error_procedure",
    "error_max_retries",
    "error_retry_delay",
    "error_dump_message",
    "error_log_message",
    "error_log_exception",
    "load_balance",
    "rate_limit",
    "logging_level",
    "log_processed_messages_count",
    "log_processed_messages_seconds",
    "batch_size",
    "max_queue_length",
    "name",
    "accuracy",
    "code",
    "provider",
    "documentation",
    "default_fields",
    "copy_collector_provided_fields",
];

/// Section name used in errors for `defaults.conf`.
const DEFAULTS_SECTION: &str = "defaults";
/// Section name used in errors for the `global:` section.
const GLOBAL_SECTION: &str = "global";

/// Reads and validates `<root>/etc/`.
pub fn load(root: &Path) -> Result<Botnet, ConfigError> {
    load_from(root, &etc_dir(root))
}

/// Reads and validates the configuration in `etc` for a node whose root is `root`.
pub fn load_from(root: &Path, etc: &Path) -> Result<Botnet, ConfigError> {
    let node = NodeConfig::load(&etc.join("node.conf"))?;
    let harmonization = load_harmonization(&etc.join("harmonization.conf"))?;
    let raw = read_raw(etc)?;
    let (bots, warnings) = validate(&raw, &node)?;
    Ok(Botnet { root: root.to_path_buf(), layout: raw.layout, node, harmonization, bots, warnings })
}

fn load_harmonization(file: &Path) -> Result<Arc<Harmonization>, ConfigError> {
    if file.exists() {
        let h = Harmonization::load(file)
            .map_err(|e| ConfigError::Harmonization { file: file.to_path_buf(), reason: e.to_string() })?;
        Ok(h.into())
    } else {
        Ok(Harmonization::builtin().into())
    }
}

// ---------------------------------------------------------------------------------------------
// Raw files

/// The files as parsed, before validation.
#[derive(Clone, Debug)]
pub(crate) struct RawBotnet {
    pub layout: ConfigLayout,
    /// `runtime.yaml` or `runtime.conf`.
    pub runtime_file: PathBuf,
    /// Global parameter layers, lowest precedence first.
    pub globals: Vec<RawGlobal>,
    /// Bot id -> entry, in file order (duplicates kept, so validation can refuse them).
    pub bots: Vec<(String, Value)>,
    /// The classic `pipeline.conf`, if the layout has one and it exists.
    pub pipeline: Option<RawPipeline>,
}

#[derive(Clone, Debug)]
pub(crate) struct RawGlobal {
    pub file: PathBuf,
    /// `defaults` (defaults.conf) or `global` (the `global:` section).
    pub section: &'static str,
    pub params: Map<String, Value>,
}

#[derive(Clone, Debug)]
pub(crate) struct RawPipeline {
    pub file: PathBuf,
    pub entries: Vec<(String, Value)>,
}

/// A JSON/YAML mapping read as ordered entries, duplicates kept.
struct Entries(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct EntriesVisitor;
        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    out.push((k, v));
                }
                Ok(Entries(out))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Entries, E> {
                Ok(Entries(Vec::new()))
            }
        }
        d.deserialize_map(EntriesVisitor)
    }
}

/// Strips the " at line N column M" suffix serde adds; the variant carries them separately.
fn strip_location(msg: String) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    }
}

fn read_file(file: &Path) -> Result<Option<String>, ConfigError> {
    match std::fs::read_to_string(file) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ConfigError::Io { file: file.to_path_buf(), source }),
    }
}

fn parse_json(file: &Path, text: &str) -> Result<Vec<(String, Value)>, ConfigError> {
    serde_json::from_str::<Entries>(text).map(|e| e.0).map_err(|e| ConfigError::Json {
        file: file.to_path_buf(),
        line: e.line(),
        column: e.column(),
        reason: strip_location(e.to_string()),
    })
}

fn parse_yaml(file: &Path, text: &str) -> Result<Vec<(String, Value)>, ConfigError> {
    if text.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#') || l.trim() == "---") {
        return Ok(Vec::new());
    }
    serde_yaml::from_str::<Entries>(text).map(|e| e.0).map_err(|e| {
        let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
        ConfigError::Yaml { file: file.to_path_buf(), line, column, reason: strip_location(e.to_string()) }
    })
}

/// Takes the `global` entry out of `entries` (an object or null), as a global layer.
fn take_global(
    file: &Path,
    entries: &mut Vec<(String, Value)>,
    globals: &mut Vec<RawGlobal>,
) -> Result<(), ConfigError> {
    let mut found = false;
    let mut err = None;
    entries.retain(|(k, v)| {
        if k != GLOBAL_SECTION {
            return true;
        }
        if found {
            err = Some(ConfigError::DuplicateBotId { file: file.to_path_buf(), bot: GLOBAL_SECTION.to_string() });
        }
        found = true;
        match v {
            Value::Object(m) => {
                globals.push(RawGlobal { file: file.to_path_buf(), section: GLOBAL_SECTION, params: m.clone() })
            }
            Value::Null => {}
            other => {
                err.get_or_insert(ConfigError::InvalidValue {
                    file: file.to_path_buf(),
                    bot: GLOBAL_SECTION.to_string(),
                    key: GLOBAL_SECTION.to_string(),
                    value: show(other),
                    expected: "a mapping of parameters".to_string(),
                });
            }
        }
        false
    });
    match err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Reads the files of whichever layout `etc` holds.
pub(crate) fn read_raw(etc: &Path) -> Result<RawBotnet, ConfigError> {
    let yaml = etc.join("runtime.yaml");
    let conf = etc.join("runtime.conf");
    let yaml_text = read_file(&yaml)?;
    let conf_text = read_file(&conf)?;
    match (yaml_text, conf_text) {
        (Some(_), Some(_)) => Err(ConfigError::BothLayouts { yaml, conf }),
        (None, None) => Err(ConfigError::NoRuntime { etc: etc.to_path_buf() }),
        (Some(text), None) => {
            let mut bots = parse_yaml(&yaml, &text)?;
            let mut globals = Vec::new();
            take_global(&yaml, &mut bots, &mut globals)?;
            Ok(RawBotnet {
                layout: ConfigLayout::RuntimeYaml { runtime: yaml.clone() },
                runtime_file: yaml,
                globals,
                bots,
                pipeline: None,
            })
        }
        (None, Some(text)) => {
            let defaults = etc.join("defaults.conf");
            let pipeline = etc.join("pipeline.conf");
            let mut globals = Vec::new();
            if let Some(t) = read_file(&defaults)? {
                let params: Map<String, Value> = parse_json(&defaults, &t)?.into_iter().collect();
                globals.push(RawGlobal { file: defaults.clone(), section: DEFAULTS_SECTION, params });
            }
            let mut bots = parse_json(&conf, &text)?;
            take_global(&conf, &mut bots, &mut globals)?;
            let raw_pipeline = match read_file(&pipeline)? {
                Some(t) => Some(RawPipeline { file: pipeline.clone(), entries: parse_json(&pipeline, &t)? }),
                None => None,
            };
            Ok(RawBotnet {
                layout: ConfigLayout::Classic { defaults, runtime: conf.clone(), pipeline },
                runtime_file: conf,
                globals,
                bots,
                pipeline: raw_pipeline,
            })
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Validation (no IO)

/// What a parameter key means here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyKind {
    /// A [`CommonParams`] field.
    Common,
    /// `destination_queues` / `source_queue`.
    Wiring,
    /// IntelMQ's broker, statistics, process manager, log-file and threading settings: no
    /// meaning here. Dropped; a warning when a bot's own section sets them.
    Dropped,
    /// A bot entry's top-level key written inside `parameters`: ignored with a warning.
    System,
    /// `http_*`, `https_proxy`, `ssl_ca_certificate`: global defaults of IntelMQ's HTTP mixin.
    /// Dropped from global; kept in a bot's `params` when its own section sets them.
    BotOnlyGlobal,
    /// A bot-specific parameter.
    Other,
}

fn classify(key: &str) -> KeyKind {
    if key == "destination_queues" || key == "source_queue" {
        KeyKind::Wiring
    } else if COMMON_KEYS.contains(&key) {
        KeyKind::Common
    } else if key.starts_with("source_pipeline_")
        || key.starts_with("destination_pipeline_")
        || key.starts_with("statistics_")
        || key.starts_with("intelmqctl_")
        || matches!(
            key,
            "process_manager"
                | "instances_threads"
                | "logging_handler"
                | "logging_path"
                | "logging_syslog"
                | "logging_max_size"
                | "logging_max_copies"
        )
    {
        KeyKind::Dropped
    } else if matches!(key, "enabled" | "run_mode" | "group" | "groupname" | "bot_id" | "module" | "description") {
        KeyKind::System
    } else if key.starts_with("http_") || key == "https_proxy" || key == "ssl_ca_certificate" {
        KeyKind::BotOnlyGlobal
    } else {
        KeyKind::Other
    }
}

/// A value for error messages: strings bare, everything else as JSON.
fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Why a value was refused.
enum Bad {
    Expected(&'static str),
    ErrorProcedure,
}

fn to_bool(v: &Value) -> Result<bool, Bad> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(Bad::Expected("true or false")),
    }
}

fn to_u64(v: &Value) -> Result<u64, Bad> {
    const EXPECTED: &str = "a non-negative integer";
    match v {
        Value::Number(n) => match (n.as_u64(), n.as_f64()) {
            (Some(u), _) => Ok(u),
            (None, Some(f)) if f >= 0.0 && f.fract() == 0.0 && f <= u64::MAX as f64 => Ok(f as u64),
            _ => Err(Bad::Expected(EXPECTED)),
        },
        Value::String(s) => s.trim().parse().map_err(|_| Bad::Expected(EXPECTED)),
        _ => Err(Bad::Expected(EXPECTED)),
    }
}

fn to_f64(v: &Value) -> Result<f64, Bad> {
    const EXPECTED: &str = "a non-negative number";
    let f = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    f.filter(|f| f.is_finite() && *f >= 0.0).ok_or(Bad::Expected(EXPECTED))
}

fn to_opt_string(v: &Value) -> Result<Option<String>, Bad> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) => Ok(Some(n.to_string())),
        _ => Err(Bad::Expected("a string")),
    }
}

fn to_logging_level(v: &Value) -> Result<String, Bad> {
    const EXPECTED: &str = "one of DEBUG, INFO, WARNING, ERROR, CRITICAL";
    let s = v.as_str().ok_or(Bad::Expected(EXPECTED))?.to_ascii_uppercase();
    match s.as_str() {
        "DEBUG" | "INFO" | "WARNING" | "ERROR" | "CRITICAL" => Ok(s),
        "WARN" => Ok("WARNING".to_string()),
        "FATAL" => Ok("CRITICAL".to_string()),
        _ => Err(Bad::Expected(EXPECTED)),
    }
}

/// Applies one [`CommonParams`] key. `null` resets the optional fields and leaves the others at
/// the value of the lower layer.
fn apply_common(c: &mut CommonParams, key: &str, v: &Value) -> Result<(), Bad> {
    if v.is_null() {
        match key {
            "rate_limit" => c.rate_limit = None,
            "name" => c.feed_name = None,
            "code" => c.feed_code = None,
            "provider" => c.feed_provider = None,
            "documentation" => c.feed_documentation = None,
            "default_fields" => c.default_fields = Map::new(),
            "copy_collector_provided_fields" => c.copy_collector_provided_fields = Vec::new(),
            _ => {}
        }
        return Ok(());
    }
    let u32_of =
        |v: &Value| to_u64(v).and_then(|u| u32::try_from(u).map_err(|_| Bad::Expected("an integer below 2^32")));
    match key {
        "error_procedure" => {
            c.error_procedure = match v.as_str().map(|s| s.trim().to_ascii_lowercase()) {
                Some(s) if s == "pass" => ErrorProcedure::Pass,
                Some(s) if s == "stop" => ErrorProcedure::Stop,
                _ => return Err(Bad::ErrorProcedure),
            }
        }
        "error_max_retries" => c.error_max_retries = u32_of(v)?,
        "error_retry_delay" => c.error_retry_delay = to_f64(v)?,
        "error_dump_message" => c.error_dump_message = to_bool(v)?,
        "error_log_message" => c.error_log_message = to_bool(v)?,
        "error_log_exception" => c.error_log_exception = to_bool(v)?,
        "load_balance" => c.load_balance = to_bool(v)?,
        "rate_limit" => c.rate_limit = Some(to_f64(v)?),
        "logging_level" => c.logging_level = to_logging_level(v)?,
        "log_processed_messages_count" => c.log_processed_messages_count = to_u64(v)?,
        "log_processed_messages_seconds" => c.log_processed_messages_seconds = to_u64(v)?,
        "batch_size" => {
            let n = to_u64(v)?;
            c.batch_size = usize::try_from(n).ok().filter(|n| *n > 0).ok_or(Bad::Expected("a positive integer"))?;
        }
        "max_queue_length" => c.max_queue_length = to_u64(v)?,
        "name" => c.feed_name = to_opt_string(v)?,
        "accuracy" => {
            let a = to_f64(v).map_err(|_| Bad::Expected("a number from 0 to 100"))?;
            if a > 100.0 {
                return Err(Bad::Expected("a number from 0 to 100"));
            }
            c.feed_accuracy = a;
        }
        "code" => c.feed_code = to_opt_string(v)?,
        "provider" => c.feed_provider = to_opt_string(v)?,
        "documentation" => c.feed_documentation = to_opt_string(v)?,
        "default_fields" => {
            c.default_fields = v.as_object().cloned().ok_or(Bad::Expected("a mapping of field names to values"))?
        }
        "copy_collector_provided_fields" => {
            const EXPECTED: &str = "a list of field names";
            c.copy_collector_provided_fields = match v {
                Value::String(s) => s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect(),
                Value::Array(items) => items
                    .iter()
                    .map(|i| i.as_str().map(String::from).ok_or(Bad::Expected(EXPECTED)))
                    .collect::<Result<_, _>>()?,
                _ => return Err(Bad::Expected(EXPECTED)),
            }
        }
        // Invariant: `apply_common` is only called for keys in COMMON_KEYS, all matched above.
        _ => {}
    }
    Ok(())
}

fn common_error(file: &Path, bot: &str, key: &str, v: &Value, bad: Bad) -> ConfigError {
    match bad {
        Bad::ErrorProcedure => {
            ConfigError::InvalidErrorProcedure { file: file.to_path_buf(), bot: bot.to_string(), value: show(v) }
        }
        Bad::Expected(expected) => ConfigError::InvalidValue {
            file: file.to_path_buf(),
            bot: bot.to_string(),
            key: key.to_string(),
            value: show(v),
            expected: expected.to_string(),
        },
    }
}

/// `destination_queues` in any of IntelMQ's forms: a list (-> `_default`), a whitespace-separated
/// string (-> split, `_default`), or a mapping path -> string | list.
fn parse_destination_queues(v: &Value) -> Result<BTreeMap<String, Vec<String>>, String> {
    fn queue_list(v: &Value) -> Result<Vec<String>, String> {
        match v {
            Value::Null => Ok(Vec::new()),
            Value::String(s) => Ok(s.split_whitespace().map(String::from).collect()),
            Value::Array(items) => items
                .iter()
                .map(|i| match i {
                    Value::String(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
                    other => Err(format!("queue name `{}` is not a non-empty string", show(other))),
                })
                .collect(),
            other => Err(format!("`{}` is not a queue name or a list of them", show(other))),
        }
    }
    let mut out = BTreeMap::new();
    match v {
        Value::Null => {}
        Value::Object(paths) => {
            for (path, queues) in paths {
                out.insert(path.clone(), queue_list(queues).map_err(|e| format!("path `{path}`: {e}"))?);
            }
        }
        other => {
            out.insert("_default".to_string(), queue_list(other)?);
        }
    }
    Ok(out)
}

fn parse_source_queue(v: &Value) -> Result<Option<String>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
        other => Err(format!("`{}` is not a queue name", show(other))),
    }
}

fn valid_bot_id(id: &str) -> bool {
    !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// A bot's wiring as written, and where.
struct Wiring {
    file: PathBuf,
    source_queue: Option<Value>,
    destination_queues: Option<Value>,
}

/// Validates the raw files into bots (in file order) and warnings. No IO.
pub(crate) fn validate(raw: &RawBotnet, node: &NodeConfig) -> Result<(Vec<BotConfig>, Vec<String>), ConfigError> {
    let mut warnings = Vec::new();

    // The global layers, validated once so a bad global value names its own section.
    let mut base = CommonParams::default();
    for g in &raw.globals {
        for (key, v) in &g.params {
            match classify(key) {
                KeyKind::Common => apply_common(&mut base, key, v)
                    .map_err(|bad| common_error(&g.file, g.section, key, v, bad))?,
                KeyKind::Wiring | KeyKind::Dropped | KeyKind::System | KeyKind::BotOnlyGlobal => {}
                KeyKind::Other => warnings.push(format!(
                    "`{}`: global parameter `{key}` is not applied to the bots (only error handling, logging, rate, feed and node parameters are); set it in each bot's parameters",
                    g.file.display()
                )),
            }
        }
    }

    // Bot ids.
    let mut seen = HashSet::new();
    for (id, _) in &raw.bots {
        if !valid_bot_id(id) {
            return Err(ConfigError::InvalidBotId { file: raw.runtime_file.clone(), bot: id.clone() });
        }
        if !seen.insert(id.as_str()) {
            return Err(ConfigError::DuplicateBotId { file: raw.runtime_file.clone(), bot: id.clone() });
        }
    }

    // The classic pipeline.conf, by bot id.
    let mut pipeline: HashMap<&str, Wiring> = HashMap::new();
    if let Some(p) = &raw.pipeline {
        let mut pseen = HashSet::new();
        for (id, entry) in &p.entries {
            if !pseen.insert(id.as_str()) {
                return Err(ConfigError::DuplicateBotId { file: p.file.clone(), bot: id.clone() });
            }
            if !seen.contains(id.as_str()) {
                return Err(ConfigError::PipelineUnknownBot {
                    file: p.file.clone(),
                    runtime: raw.runtime_file.clone(),
                    bot: id.clone(),
                });
            }
            let obj = entry.as_object().ok_or_else(|| ConfigError::InvalidValue {
                file: p.file.clone(),
                bot: id.clone(),
                key: id.clone(),
                value: show(entry),
                expected: "a mapping with `source-queue` and `destination-queues`".to_string(),
            })?;
            if let Some(key) = obj.keys().find(|k| !PIPELINE_KEYS.contains(&k.as_str())) {
                return Err(ConfigError::UnknownKey {
                    file: p.file.clone(),
                    bot: id.clone(),
                    key: key.clone(),
                    known: PIPELINE_KEYS.join(", "),
                });
            }
            pipeline.insert(
                id.as_str(),
                Wiring {
                    file: p.file.clone(),
                    source_queue: obj.get("source-queue").cloned(),
                    destination_queues: obj.get("destination-queues").cloned(),
                },
            );
        }
    }

    let mut bots = Vec::with_capacity(raw.bots.len());
    let mut wiring_files = Vec::with_capacity(raw.bots.len());
    for (id, entry) in &raw.bots {
        let (bot, wiring_file) =
            validate_bot(raw, node, &base, id, entry, pipeline.remove(id.as_str()), &mut warnings)?;
        bots.push(bot);
        wiring_files.push(wiring_file);
    }

    // Bots on two nodes consuming one queue: the queue would belong to both.
    let mut placed: HashMap<&str, &BotConfig> = HashMap::new();
    for (bot, wiring_file) in bots.iter().zip(&wiring_files) {
        let Some(q) = &bot.source_queue else { continue };
        match placed.get(q.as_str()) {
            Some(first) if first.node != bot.node => {
                let on = |b: &BotConfig| match &b.node {
                    Some(n) => format!("node `{n}`"),
                    None => "every node (no `node:`)".to_string(),
                };
                return Err(ConfigError::QueueOnTwoNodes {
                    file: wiring_file.clone(),
                    queue: q.clone(),
                    claims: format!("{} (bot `{}`) and {} (bot `{}`)", on(first), first.id, on(bot), bot.id),
                });
            }
            Some(_) => {}
            None => {
                placed.insert(q.as_str(), bot);
            }
        }
    }
    // Two bots on one source queue.
    let mut consumers: HashMap<&str, &str> = HashMap::new();
    for (bot, wiring_file) in bots.iter().zip(&wiring_files) {
        if let Some(q) = &bot.source_queue {
            if let Some(first) = consumers.insert(q.as_str(), bot.id.as_str()) {
                return Err(ConfigError::DuplicateSourceQueue {
                    file: wiring_file.clone(),
                    first: first.to_string(),
                    bot: bot.id.clone(),
                    queue: q.clone(),
                });
            }
        }
    }
    // Destination queues nobody reads.
    for (bot, wiring_file) in bots.iter().zip(&wiring_files) {
        for (path, queues) in &bot.destination_queues {
            if let Some(q) = queues.iter().find(|q| !consumers.contains_key(q.as_str())) {
                return Err(ConfigError::DanglingQueue {
                    file: wiring_file.clone(),
                    bot: bot.id.clone(),
                    path: path.clone(),
                    queue: q.clone(),
                });
            }
        }
    }
    // Messages between nodes need a broker.
    if node.broker.is_none() {
        let p = super::placement(&bots, node);
        if let Some(q) = p.remote.keys().chain(p.intake.iter()).next() {
            let consumer = bots.iter().zip(&wiring_files).find(|(b, _)| b.source_queue.as_ref() == Some(q));
            if let Some((c, wiring_file)) = consumer {
                return Err(ConfigError::NoBroker {
                    file: wiring_file.clone(),
                    node_conf: raw.runtime_file.with_file_name("node.conf"),
                    queue: q.clone(),
                    bot: c.id.clone(),
                    owner: c.node.clone().unwrap_or_default(),
                });
            }
        }
    }
    Ok((bots, warnings))
}

fn is_collector(group: Option<Group>, module: &str) -> bool {
    match group {
        Some(g) => g == Group::Collector,
        None => module.starts_with("intelmq.bots.collectors."),
    }
}

fn validate_bot(
    raw: &RawBotnet,
    node: &NodeConfig,
    base: &CommonParams,
    id: &str,
    entry: &Value,
    pipeline: Option<Wiring>,
    warnings: &mut Vec<String>,
) -> Result<(BotConfig, PathBuf), ConfigError> {
    let file = &raw.runtime_file;
    let invalid = |key: &str, v: &Value, expected: &str| ConfigError::InvalidValue {
        file: file.clone(),
        bot: id.to_string(),
        key: key.to_string(),
        value: show(v),
        expected: expected.to_string(),
    };
    let obj = entry.as_object().ok_or_else(|| invalid(id, entry, "a mapping with `module` and `parameters`"))?;
    if let Some(key) = obj.keys().find(|k| !BOT_KEYS.contains(&k.as_str())) {
        return Err(ConfigError::UnknownKey {
            file: file.clone(),
            bot: id.to_string(),
            key: key.clone(),
            known: BOT_KEYS.join(", "),
        });
    }
    let get = |key: &str| obj.get(key).filter(|v| !v.is_null());
    let opt_string = |key: &str| -> Result<Option<String>, ConfigError> {
        match get(key) {
            None => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(invalid(key, other, "a string")),
        }
    };

    let module = match get("module") {
        None => None,
        Some(Value::String(s)) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        Some(other) => return Err(invalid("module", other, "a module path")),
    }
    .ok_or_else(|| ConfigError::MissingModule { file: file.clone(), bot: id.to_string() })?;

    let group = match get("group") {
        None => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(v) => Some(match v.as_str().map(str::to_ascii_lowercase).as_deref() {
            Some("collector") => Group::Collector,
            Some("parser") => Group::Parser,
            Some("expert") => Group::Expert,
            Some("output") => Group::Output,
            _ => return Err(ConfigError::InvalidGroup { file: file.clone(), bot: id.to_string(), value: show(v) }),
        }),
    };

    let run_mode = match get("run_mode") {
        None => RunMode::Continuous,
        Some(Value::String(s)) if s.is_empty() => RunMode::Continuous,
        Some(v) => match v.as_str().map(str::to_ascii_lowercase).as_deref() {
            Some("continuous") => RunMode::Continuous,
            Some("scheduled") => RunMode::Scheduled,
            _ => return Err(ConfigError::InvalidRunMode { file: file.clone(), bot: id.to_string(), value: show(v) }),
        },
    };

    let enabled = match get("enabled") {
        None => true,
        Some(v) => to_bool(v).map_err(|_| invalid("enabled", v, "true or false"))?,
    };
    let name = opt_string("name")?;
    let description = opt_string("description")?;
    let bot_node = opt_string("node")?;
    if let Some(n) = &bot_node {
        let known = node.node_ids();
        if !known.contains(&n.as_str()) {
            return Err(ConfigError::UnknownNode {
                file: file.clone(),
                bot: id.to_string(),
                node: n.clone(),
                known: known.join(", "),
            });
        }
    }

    let empty = Map::new();
    let params_in = match get("parameters") {
        None => &empty,
        Some(Value::Object(m)) => m,
        Some(other) => return Err(invalid("parameters", other, "a mapping of parameters")),
    };

    // Precedence: defaults < global layers (in `base`) < top-level name < parameters.
    let mut common = base.clone();
    if let Some(n) = &name {
        common.feed_name = Some(n.clone());
    }
    let mut params = Map::new();
    let mut wiring = Wiring { file: file.clone(), source_queue: None, destination_queues: None };
    for (key, v) in params_in {
        match classify(key) {
            KeyKind::Common => apply_common(&mut common, key, v)
                .map_err(|bad| common_error(file, id, key, v, bad))?,
            KeyKind::Wiring => {
                if key == "source_queue" {
                    wiring.source_queue = Some(v.clone());
                } else {
                    wiring.destination_queues = Some(v.clone());
                }
            }
            KeyKind::Dropped => warnings.push(format!(
                "bot `{id}` in `{}`: ignoring parameter `{key}`, an IntelMQ broker, statistics, process or log-file setting that has no meaning here",
                file.display()
            )),
            KeyKind::System => warnings.push(format!(
                "bot `{id}` in `{}`: ignoring parameter `{key}`; set it at the bot's top level, next to `module`",
                file.display()
            )),
            KeyKind::BotOnlyGlobal | KeyKind::Other => {
                params.insert(key.clone(), v.clone());
            }
        }
    }
    if let Some(p) = pipeline {
        if wiring.source_queue.is_some() || wiring.destination_queues.is_some() {
            warnings.push(format!(
                "bot `{id}`: the queues in `{}` override `source_queue`/`destination_queues` in `{}`",
                p.file.display(),
                file.display()
            ));
        }
        wiring = p;
    }

    let wiring_invalid = |key: &str, v: &Value, reason: String| ConfigError::InvalidValue {
        file: wiring.file.clone(),
        bot: id.to_string(),
        key: key.to_string(),
        value: show(v),
        expected: reason,
    };
    let (dq_key, sq_key) = if raw.pipeline.as_ref().is_some_and(|p| p.file == wiring.file) {
        ("destination-queues", "source-queue")
    } else {
        ("destination_queues", "source_queue")
    };
    let destination_queues = match &wiring.destination_queues {
        None => BTreeMap::new(),
        Some(v) => parse_destination_queues(v).map_err(|reason| {
            wiring_invalid(
                dq_key,
                v,
                format!("a queue list, a space-separated string or a mapping of paths to queues ({reason})"),
            )
        })?,
    };
    let explicit_source = match &wiring.source_queue {
        None => None,
        Some(v) => {
            parse_source_queue(v).map_err(|reason| wiring_invalid(sq_key, v, format!("a queue name ({reason})")))?
        }
    };
    let source_queue = if is_collector(group, &module) {
        if let Some(q) = explicit_source {
            warnings.push(format!(
                "bot `{id}` in `{}`: a collector reads no queue, ignoring source queue `{q}`",
                wiring.file.display()
            ));
        }
        None
    } else {
        Some(explicit_source.unwrap_or_else(|| format!("{id}-queue")))
    };

    let bot = BotConfig {
        id: id.to_string(),
        file: file.clone(),
        group,
        module,
        name,
        description,
        enabled,
        run_mode,
        node: bot_node,
        source_queue,
        destination_queues,
        common,
        params,
    };
    Ok((bot, wiring.file))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTELMQ_35_RUNTIME: &str = include_str!("testdata/intelmq-3.5-runtime.yaml");
    const BENCH_RUNTIME: &str = include_str!("testdata/bench-runtime.yaml");

    /// A temp root with `etc/` holding `files`.
    fn root_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path().join("etc");
        std::fs::create_dir_all(&etc).unwrap();
        for (name, text) in files {
            std::fs::write(etc.join(name), text).unwrap();
        }
        dir
    }

    /// Everything `load` does except the harmonization.
    fn load_bots(files: &[(&str, &str)]) -> Result<(RawBotnet, Vec<BotConfig>, Vec<String>), ConfigError> {
        let dir = root_with(files);
        let etc = dir.path().join("etc");
        let node = NodeConfig::load(&etc.join("node.conf"))?;
        let raw = read_raw(&etc)?;
        let (bots, warnings) = validate(&raw, &node)?;
        Ok((raw, bots, warnings))
    }

    fn bots_of(files: &[(&str, &str)]) -> Vec<BotConfig> {
        match load_bots(files) {
            Ok((_, bots, _)) => bots,
            Err(e) => panic!("config refused: {e}"),
        }
    }

    fn err_of(files: &[(&str, &str)]) -> ConfigError {
        match load_bots(files) {
            Ok(_) => panic!("config accepted"),
            Err(e) => e,
        }
    }

    fn bot<'a>(bots: &'a [BotConfig], id: &str) -> &'a BotConfig {
        bots.iter().find(|b| b.id == id).unwrap()
    }

    fn dq(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        pairs.iter().map(|(p, qs)| (p.to_string(), qs.iter().map(|q| q.to_string()).collect())).collect()
    }

    const CLASSIC_DEFAULTS: &str = r#"{
        "error_max_retries": 5, "logging_level": "INFO", "rate_limit": 0,
        "source_pipeline_host": "127.0.0.1", "statistics_port": 6379, "process_manager": "intelmq",
        "http_timeout_sec": 30, "logging_path": "/opt/intelmq/var/log/"
    }"#;
    const CLASSIC_RUNTIME: &str = r#"{
        "file-collector": {"group": "Collector", "module": "intelmq.bots.collectors.file.collector_file",
            "name": "File", "description": "reads files", "enabled": true, "run_mode": "continuous",
            "parameters": {"path": "/tmp/in", "postfix": ".csv", "rate_limit": 300, "provider": "bench"}},
        "csv-parser": {"group": "Parser", "module": "intelmq.bots.parsers.generic.parser_csv",
            "name": "Generic CSV", "parameters": {"columns": ["source.ip"], "error_max_retries": "7"}},
        "taxonomy-expert": {"group": "Expert", "module": "intelmq.bots.experts.taxonomy.expert",
            "enabled": false, "run_mode": "scheduled"},
        "file-output": {"group": "Output", "module": "intelmq.bots.outputs.file.output",
            "parameters": {"file": "/tmp/out.txt"}},
        "error-output": {"group": "Output", "module": "intelmq.bots.outputs.file.output",
            "parameters": {"file": "/tmp/err.txt"}}
    }"#;
    const CLASSIC_PIPELINE: &str = r#"{
        "file-collector": {"destination-queues": ["csv-parser-queue"]},
        "csv-parser": {"source-queue": "csv-parser-queue",
            "destination-queues": {"_default": "taxonomy-expert-queue", "_on_error": ["error-output-queue"]}},
        "taxonomy-expert": {"source-queue": "taxonomy-expert-queue", "destination-queues": "file-output-queue"},
        "file-output": {"source-queue": "file-output-queue"}
    }"#;

    fn classic() -> Vec<(&'static str, &'static str)> {
        vec![
            ("defaults.conf", CLASSIC_DEFAULTS),
            ("runtime.conf", CLASSIC_RUNTIME),
            ("pipeline.conf", CLASSIC_PIPELINE),
        ]
    }

    fn classic_with(name: &'static str, text: &'static str) -> Vec<(&'static str, &'static str)> {
        let mut files = classic();
        files.retain(|(n, _)| *n != name);
        files.push((name, text));
        files
    }

    fn bench_yaml() -> String {
        BENCH_RUNTIME.replace("@ROOT@", "/srv/bench").replace("@REDIS_PORT@", "6379")
    }

    #[test]
    fn classic_layout_loads_with_wiring_from_pipeline_conf() {
        let (raw, bots, warnings) = load_bots(&classic()).unwrap();
        assert!(matches!(raw.layout, ConfigLayout::Classic { .. }));
        assert!(warnings.is_empty(), "{warnings:?}");
        let ids: Vec<&str> = bots.iter().map(|b| b.id.as_str()).collect();
        assert_eq!(ids, ["file-collector", "csv-parser", "taxonomy-expert", "file-output", "error-output"]);

        let c = bot(&bots, "file-collector");
        assert_eq!(c.group, Some(Group::Collector));
        assert_eq!(c.source_queue, None);
        assert_eq!(c.destination_queues, dq(&[("_default", &["csv-parser-queue"])]));
        assert_eq!(c.common.rate_limit, Some(300.0));
        assert_eq!(c.common.feed_name.as_deref(), Some("File"));
        assert_eq!(c.common.feed_provider.as_deref(), Some("bench"));
        assert_eq!(c.description.as_deref(), Some("reads files"));
        assert_eq!(c.params.keys().collect::<Vec<_>>(), ["path", "postfix"]);
        assert!(c.file.ends_with("etc/runtime.conf"));

        let p = bot(&bots, "csv-parser");
        assert_eq!(p.source_queue.as_deref(), Some("csv-parser-queue"));
        assert_eq!(
            p.destination_queues,
            dq(&[("_default", &["taxonomy-expert-queue"]), ("_on_error", &["error-output-queue"])])
        );
        assert_eq!(p.common.error_max_retries, 7);

        let t = bot(&bots, "taxonomy-expert");
        assert!(!t.enabled);
        assert_eq!(t.run_mode, RunMode::Scheduled);
        assert_eq!(t.destination_queues, dq(&[("_default", &["file-output-queue"])]));
        assert_eq!(t.common.error_max_retries, 5);
        assert_eq!(t.common.rate_limit, Some(0.0));

        // No pipeline.conf entry: the default source queue, no destinations.
        let e = bot(&bots, "error-output");
        assert_eq!(e.source_queue.as_deref(), Some("error-output-queue"));
        assert!(e.destination_queues.is_empty());
        // Global http_* and IntelMQ-only keys never reach a bot's params.
        assert!(bots.iter().all(|b| !b.params.contains_key("http_timeout_sec")));
        assert!(bots.iter().all(|b| !b.params.contains_key("logging_path")));
    }

    #[test]
    fn classic_layout_without_defaults_and_pipeline_uses_builtin_defaults() {
        let bots = bots_of(&[("runtime.conf", r#"{"expert": {"module": "intelmq.bots.experts.taxonomy.expert"}}"#)]);
        assert_eq!(bots[0].common, CommonParams::default());
        assert_eq!(bots[0].source_queue.as_deref(), Some("expert-queue"));
        assert_eq!(bots[0].group, None);
        assert!(bots[0].enabled);
    }

    #[test]
    fn intelmq_3_5_default_runtime_yaml_loads_unchanged() {
        let (raw, bots, warnings) = load_bots(&[("runtime.yaml", INTELMQ_35_RUNTIME)]).unwrap();
        assert!(matches!(raw.layout, ConfigLayout::RuntimeYaml { .. }));
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(bots.len(), 11);
        assert_eq!(bots[0].id, "cymru-whois-expert");

        let c = bot(&bots, "feodo-tracker-collector");
        assert_eq!(c.module, "intelmq.bots.collectors.http.collector_http");
        assert_eq!(c.source_queue, None);
        assert_eq!(c.destination_queues, dq(&[("_default", &["feodo-tracker-parser-queue"])]));
        assert_eq!(c.common.feed_name.as_deref(), Some("Feodo Tracker"));
        assert_eq!(c.name.as_deref(), Some("URL Fetcher"));
        assert_eq!(c.common.feed_provider.as_deref(), Some("Abuse.ch"));
        assert_eq!(c.common.rate_limit, Some(86400.0));
        assert_eq!(
            c.params.keys().collect::<Vec<_>>(),
            [
                "extract_files",
                "http_password",
                "http_url",
                "http_url_formatting",
                "http_username",
                "ssl_client_certificate"
            ]
        );
        assert_eq!(c.params["http_url"], "https://feodotracker.abuse.ch/downloads/ipblocklist.json");

        let spamhaus = bot(&bots, "spamhaus-drop-collector");
        assert_eq!(spamhaus.common.feed_name.as_deref(), Some("Drop"));
        assert_eq!(spamhaus.description, None);

        let dedup = bot(&bots, "deduplicator-expert");
        assert_eq!(dedup.source_queue.as_deref(), Some("deduplicator-expert-queue"));
        assert_eq!(dedup.params["filter_keys"], "raw,time.observation");
        assert_eq!(dedup.params["redis_cache_ttl"], 86400);

        let url = bot(&bots, "url-expert");
        assert!(url.common.load_balance);
        assert_eq!(
            url.destination_queues,
            dq(&[("_default", &["gethostbyname-1-expert-queue", "gethostbyname-2-expert-queue"])])
        );
        assert_eq!(url.params.keys().collect::<Vec<_>>(), ["overwrite"]);

        let out = bot(&bots, "file-output");
        assert!(out.destination_queues.is_empty());
        assert_eq!(out.params["single_key"], Value::Null);
        assert_eq!(out.group, Some(Group::Output));
    }

    #[test]
    fn bench_runtime_yaml_loads_with_its_global_section() {
        let yaml = bench_yaml();
        let (_, bots, warnings) = load_bots(&[("runtime.yaml", &yaml)]).unwrap();
        // Global broker, statistics and process-manager keys are dropped silently.
        assert!(warnings.is_empty(), "{warnings:?}");
        let ids: Vec<&str> = bots.iter().map(|b| b.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "file-collector",
                "csv-parser",
                "deduplicator-expert",
                "taxonomy-expert",
                "url2fqdn-expert",
                "file-output"
            ]
        );
        assert!(bots.iter().all(|b| b.common.logging_level == "WARNING"));
        assert!(bots.iter().all(|b| b.common.error_procedure == ErrorProcedure::Pass));
        let c = bot(&bots, "file-collector");
        assert_eq!(c.params["path"], "/srv/bench/in");
        assert_eq!(c.params["chunk_size"], 1048576);
        assert_eq!(c.common.feed_name.as_deref(), Some("bench-feed"));
        let p = bot(&bots, "csv-parser");
        assert_eq!(p.params["columns"][1], "source.ip");
        assert_eq!(p.destination_queues, dq(&[("_default", &["deduplicator-expert-queue"])]));
        assert_eq!(bot(&bots, "file-output").params["file"], "/srv/bench/out/events.txt");
    }

    #[test]
    fn load_reads_node_conf_and_the_builtin_harmonization() {
        let dir = root_with(&[
            ("runtime.yaml", INTELMQ_35_RUNTIME),
            ("node.conf", r#"{"node_id": "node-a", "store": {"sync": "always"}}"#),
        ]);
        let botnet = load(dir.path()).unwrap();
        assert_eq!(botnet.root, dir.path());
        assert_eq!(botnet.node.node_id, "node-a");
        assert_eq!(botnet.node.store.sync, crate::config::SyncMode::Always);
        assert_eq!(botnet.bots.len(), 11);
        assert_eq!(botnet.consumers_of("cymru-whois-expert-queue").count(), 1);
    }

    #[test]
    fn bot_parameters_override_global_which_overrides_builtin_defaults() {
        let bots = bots_of(&[(
            "runtime.yaml",
            r#"
global:
  error_max_retries: "5"
  error_dump_message: "false"
  rate_limit: 10
  http_timeout_sec: 60
  logging_level: debug
exp-a:
  module: intelmq.bots.experts.taxonomy.expert
  name: Taxonomy
  parameters:
    error_max_retries: 1
    error_procedure: stop
    http_timeout_sec: 5
exp-b:
  module: intelmq.bots.experts.taxonomy.expert
  name: Taxonomy
  parameters:
    name: Feed B
    batch_size: "16"
"#,
        )]);
        let a = bot(&bots, "exp-a");
        assert_eq!(a.common.error_max_retries, 1);
        assert_eq!(a.common.error_procedure, ErrorProcedure::Stop);
        assert!(!a.common.error_dump_message);
        assert_eq!(a.common.rate_limit, Some(10.0));
        assert_eq!(a.common.logging_level, "DEBUG");
        assert_eq!(a.common.error_retry_delay, 15.0);
        assert_eq!(a.common.feed_name.as_deref(), Some("Taxonomy"));
        assert_eq!(a.params["http_timeout_sec"], 5);
        let b = bot(&bots, "exp-b");
        assert_eq!(b.common.error_max_retries, 5);
        assert_eq!(b.common.error_procedure, ErrorProcedure::Pass);
        assert_eq!(b.common.batch_size, 16);
        assert_eq!(b.common.feed_name.as_deref(), Some("Feed B"));
        assert!(!b.params.contains_key("http_timeout_sec"));
        assert!(b.params.is_empty());
    }

    #[test]
    fn intelmq_only_keys_warn_in_a_bot_section_and_not_in_global() {
        let (_, bots, warnings) = load_bots(&[(
            "runtime.yaml",
            r#"
global:
  source_pipeline_host: 127.0.0.1
  statistics_port: 6379
  redis_cache_host: 127.0.0.1
exp:
  module: intelmq.bots.experts.taxonomy.expert
  parameters:
    destination_pipeline_port: 6380
    process_manager: intelmq
"#,
        )])
        .unwrap();
        assert!(bots[0].params.is_empty());
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(warnings[0].contains("global parameter `redis_cache_host`"), "{warnings:?}");
        assert!(warnings[1].contains("bot `exp`") && warnings[1].contains("`destination_pipeline_port`"));
        assert!(warnings[2].contains("`process_manager`"));
    }

    #[test]
    fn destination_queues_accept_list_string_and_path_mapping() {
        let bots = bots_of(&[(
            "runtime.yaml",
            r#"
a:
  module: intelmq.bots.experts.filter.expert
  parameters:
    destination_queues: [x-queue, y-queue]
b:
  module: intelmq.bots.experts.filter.expert
  parameters:
    destination_queues: "x-queue  y-queue"
c:
  module: intelmq.bots.experts.filter.expert
  parameters:
    destination_queues:
      _default: x-queue y-queue
      filter_match: [z-queue]
      _on_error: z-queue
x:
  module: intelmq.bots.outputs.file.output
  parameters: {source_queue: x-queue}
y:
  module: intelmq.bots.outputs.file.output
  parameters: {source_queue: y-queue}
z:
  module: intelmq.bots.outputs.file.output
  parameters: {source_queue: z-queue}
"#,
        )]);
        let both = dq(&[("_default", &["x-queue", "y-queue"])]);
        assert_eq!(bot(&bots, "a").destination_queues, both);
        assert_eq!(bot(&bots, "b").destination_queues, both);
        assert_eq!(
            bot(&bots, "c").destination_queues,
            dq(&[("_default", &["x-queue", "y-queue"]), ("_on_error", &["z-queue"]), ("filter_match", &["z-queue"])])
        );
        assert_eq!(bot(&bots, "x").source_queue.as_deref(), Some("x-queue"));
    }

    #[test]
    fn collectors_read_no_queue_even_without_a_group() {
        let (_, bots, warnings) = load_bots(&[(
            "runtime.yaml",
            r#"
col:
  module: intelmq.bots.collectors.file.collector_file
  parameters: {source_queue: col-queue, destination_queues: [p-queue]}
p:
  module: intelmq.bots.parsers.generic.parser_csv
  parameters: {source_queue: p-queue}
"#,
        )])
        .unwrap();
        assert_eq!(bots[0].group, None);
        assert_eq!(bots[0].source_queue, None);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("ignoring source queue `col-queue`"));
    }

    #[test]
    fn both_layouts_present_is_refused_naming_both_files() {
        let e = err_of(&[("runtime.yaml", ""), ("runtime.conf", "{}")]);
        assert!(matches!(e, ConfigError::BothLayouts { .. }), "{e}");
        let msg = e.to_string();
        assert!(msg.contains("etc/runtime.yaml`") && msg.contains("etc/runtime.conf`"), "{msg}");
    }

    #[test]
    fn no_runtime_file_is_refused() {
        let e = err_of(&[("defaults.conf", "{}")]);
        assert!(matches!(e, ConfigError::NoRuntime { .. }), "{e}");
    }

    #[test]
    fn invalid_json_names_file_line_and_column() {
        let e = err_of(&classic_with("pipeline.conf", "{\n  \"a\": {\"source-queue\": \"q\"},\n  oops\n}"));
        match &e {
            ConfigError::Json { file, line, column, .. } => {
                assert!(file.ends_with("pipeline.conf"));
                assert_eq!((*line, *column), (3, 3));
            }
            other => panic!("{other}"),
        }
        assert!(e.to_string().starts_with("invalid json in `"), "{e}");
        assert!(e.to_string().contains("pipeline.conf` at line 3 column 3: "), "{e}");
    }

    #[test]
    fn invalid_yaml_names_file_line_and_column() {
        let e = err_of(&[("runtime.yaml", "a:\n  module: x\n  parameters: [unclosed\n")]);
        match &e {
            ConfigError::Yaml { file, line, .. } => {
                assert!(file.ends_with("runtime.yaml"));
                assert!(*line >= 3, "{e}");
            }
            other => panic!("{other}"),
        }
        // The unsubstituted bench placeholder is not YAML either.
        let e = err_of(&[("runtime.yaml", BENCH_RUNTIME)]);
        assert!(matches!(e, ConfigError::Yaml { line: 5, .. }), "{e}");
    }

    #[test]
    fn unknown_top_level_key_is_refused_naming_file_bot_and_key() {
        let e = err_of(&[(
            "runtime.yaml",
            "a:\n  module: intelmq.bots.experts.taxonomy.expert\n  destination_queues: [b-queue]\n",
        )]);
        assert!(
            matches!(&e, ConfigError::UnknownKey { bot, key, .. } if bot == "a" && key == "destination_queues"),
            "{e}"
        );
        let msg = e.to_string();
        assert!(msg.starts_with("unknown key `destination_queues` for bot `a` in `"), "{msg}");
        assert!(msg.contains("runtime.yaml`") && msg.contains("(known: group, groupname"), "{msg}");
    }

    #[test]
    fn unknown_pipeline_conf_key_is_refused() {
        let e = err_of(&classic_with(
            "pipeline.conf",
            r#"{"file-collector": {"destination_queues": ["csv-parser-queue"]}}"#,
        ));
        assert!(
            matches!(&e, ConfigError::UnknownKey { bot, key, file, .. }
            if bot == "file-collector" && key == "destination_queues" && file.ends_with("pipeline.conf")),
            "{e}"
        );
    }

    #[test]
    fn bad_bot_ids_are_refused() {
        for id in ["my_bot", "my.bot", "my bot", ""] {
            let text = format!("{{\"{id}\": {{\"module\": \"intelmq.bots.experts.taxonomy.expert\"}}}}");
            let dir = root_with(&[("runtime.conf", &text)]);
            let e = load(dir.path()).unwrap_err();
            assert!(matches!(&e, ConfigError::InvalidBotId { bot, .. } if bot == id), "{e}");
            assert!(e.to_string().starts_with(&format!("invalid bot id `{id}` in `")), "{e}");
        }
    }

    #[test]
    fn duplicate_bot_ids_are_refused_in_json_and_yaml() {
        let e = err_of(&[("runtime.conf", r#"{"a": {"module": "m.x"}, "a": {"module": "m.y"}}"#)]);
        assert!(matches!(&e, ConfigError::DuplicateBotId { bot, .. } if bot == "a"), "{e}");
        let e = err_of(&[("runtime.yaml", "a:\n  module: m.x\na:\n  module: m.y\n")]);
        assert!(matches!(&e, ConfigError::DuplicateBotId { bot, .. } if bot == "a"), "{e}");
        assert!(e.to_string().starts_with("duplicate bot id `a` in `"), "{e}");
    }

    #[test]
    fn missing_module_is_refused() {
        let e = err_of(&[("runtime.yaml", "a:\n  name: A\n  module: ''\n")]);
        assert!(matches!(&e, ConfigError::MissingModule { bot, .. } if bot == "a"), "{e}");
        assert!(e.to_string().ends_with("runtime.yaml` has no `module`"), "{e}");
    }

    #[test]
    fn bad_group_run_mode_and_error_procedure_are_refused() {
        let e = err_of(&[("runtime.yaml", "a:\n  module: m.x\n  group: Enricher\n")]);
        assert!(matches!(&e, ConfigError::InvalidGroup { bot, value, .. } if bot == "a" && value == "Enricher"), "{e}");
        assert!(e.to_string().starts_with("invalid `group` value `Enricher` for bot `a` in `"), "{e}");

        let e = err_of(&[("runtime.yaml", "a:\n  module: m.x\n  run_mode: cron\n")]);
        assert!(matches!(&e, ConfigError::InvalidRunMode { bot, value, .. } if bot == "a" && value == "cron"), "{e}");

        let e = err_of(&[("runtime.yaml", "a:\n  module: m.x\n  parameters:\n    error_procedure: retry\n")]);
        assert!(
            matches!(&e, ConfigError::InvalidErrorProcedure { bot, value, .. } if bot == "a" && value == "retry"),
            "{e}"
        );
        assert!(e.to_string().contains("(expected pass or stop)"), "{e}");
    }

    #[test]
    fn bad_global_value_names_the_global_section_and_its_file() {
        let e = err_of(&classic_with("defaults.conf", r#"{"error_procedure": "explode"}"#));
        assert!(
            matches!(&e, ConfigError::InvalidErrorProcedure { bot, file, .. }
            if bot == "defaults" && file.ends_with("defaults.conf")),
            "{e}"
        );
        let e = err_of(&[("runtime.yaml", "global:\n  error_max_retries: many\n")]);
        assert_eq!(
            e.to_string().split_once(" in `").unwrap().0,
            "invalid value `many` for `error_max_retries` of bot `global`"
        );
    }

    #[test]
    fn uncoercible_values_are_refused_with_what_was_expected() {
        let e = err_of(&[("runtime.yaml", "a:\n  module: m.x\n  parameters:\n    error_dump_message: yes please\n")]);
        assert!(
            matches!(&e, ConfigError::InvalidValue { bot, key, .. } if bot == "a" && key == "error_dump_message"),
            "{e}"
        );
        assert!(e.to_string().ends_with(": expected true or false"), "{e}");
        let e = err_of(&[("runtime.yaml", "a:\n  module: m.x\n  parameters:\n    accuracy: 150\n")]);
        assert!(matches!(&e, ConfigError::InvalidValue { key, .. } if key == "accuracy"), "{e}");
        let e = err_of(&[("runtime.yaml", "a:\n  module: m.x\n  parameters: [1]\n")]);
        assert!(matches!(&e, ConfigError::InvalidValue { key, .. } if key == "parameters"), "{e}");
        let e =
            err_of(&[("runtime.yaml", "a:\n  module: m.x\n  parameters:\n    destination_queues: {_default: [1]}\n")]);
        assert!(matches!(&e, ConfigError::InvalidValue { key, .. } if key == "destination_queues"), "{e}");
    }

    #[test]
    fn pipeline_entry_for_unknown_bot_is_refused() {
        let e = err_of(&classic_with("pipeline.conf", r#"{"ghost": {"source-queue": "ghost-queue"}}"#));
        assert!(matches!(&e, ConfigError::PipelineUnknownBot { bot, .. } if bot == "ghost"), "{e}");
        let msg = e.to_string();
        assert!(msg.contains("pipeline.conf` has an entry for bot `ghost`, which is not configured in `"), "{msg}");
    }

    #[test]
    fn dangling_destination_queue_is_refused() {
        let e = err_of(&classic_with(
            "pipeline.conf",
            r#"{"file-collector": {"destination-queues": {"_default": ["csv-parser-queue"], "_on_error": "nowhere-queue"}}}"#,
        ));
        assert!(
            matches!(&e, ConfigError::DanglingQueue { bot, path, queue, file }
            if bot == "file-collector" && path == "_on_error" && queue == "nowhere-queue" && file.ends_with("pipeline.conf")),
            "{e}"
        );
        assert!(
            e.to_string()
                .starts_with("destination queue `nowhere-queue` (path `_on_error`) of bot `file-collector` in `"),
            "{e}"
        );
        // A queue only a collector would "read" is dangling too.
        let e = err_of(&[(
            "runtime.yaml",
            "a:\n  module: m.x\n  parameters: {destination_queues: [c-queue]}\nc:\n  group: Collector\n  module: m.c\n",
        )]);
        assert!(matches!(&e, ConfigError::DanglingQueue { queue, .. } if queue == "c-queue"), "{e}");
    }

    #[test]
    fn two_bots_on_one_source_queue_are_refused() {
        let e = err_of(&[(
            "runtime.yaml",
            "a:\n  module: m.x\nb:\n  module: m.y\n  parameters: {source_queue: a-queue}\n",
        )]);
        assert!(
            matches!(&e, ConfigError::DuplicateSourceQueue { first, bot, queue, .. }
            if first == "a" && bot == "b" && queue == "a-queue"),
            "{e}"
        );
        assert!(e.to_string().starts_with("bots `a` and `b` in `"), "{e}");
    }

    #[test]
    fn bot_on_an_unknown_node_is_refused() {
        let e = err_of(&[
            ("runtime.yaml", "a:\n  module: m.x\n  node: node-z\n"),
            ("node.conf", r#"{"node_id": "node-a", "peers": [{"id": "node-b", "control": "h:7600"}]}"#),
        ]);
        assert!(matches!(&e, ConfigError::UnknownNode { bot, node, .. } if bot == "a" && node == "node-z"), "{e}");
        assert!(e.to_string().ends_with("(known: node-a, node-b)"), "{e}");
        let bots = bots_of(&[
            ("runtime.yaml", "a:\n  module: m.x\n  node: node-b\n"),
            ("node.conf", r#"{"node_id": "node-a", "peers": [{"id": "node-b", "control": "h:7600"}]}"#),
        ]);
        assert_eq!(bots[0].node.as_deref(), Some("node-b"));
    }

    const THREE_NODES: &str = r#"{"node_id": "node-a", "peers": [{"id": "node-b", "control": "h:7600"},
        {"id": "node-c", "control": "h:7601"}], "broker": {"url": "amqp://127.0.0.1:5672"}}"#;

    #[test]
    fn a_queue_consumed_on_two_nodes_is_refused_naming_the_queue_and_the_nodes() {
        let e = err_of(&[
            (
                "runtime.conf",
                r#"{"col": {"module": "m.c", "node": "node-a"}, "p1": {"module": "m.p", "node": "node-b"},
                    "p2": {"module": "m.p", "node": "node-c"}}"#,
            ),
            (
                "pipeline.conf",
                r#"{"col": {"destination-queues": ["shared-queue"]}, "p1": {"source-queue": "shared-queue"},
                    "p2": {"source-queue": "shared-queue"}}"#,
            ),
            ("node.conf", THREE_NODES),
        ]);
        assert!(
            matches!(&e, ConfigError::QueueOnTwoNodes { queue, claims, .. }
                if queue == "shared-queue" && claims == "node `node-b` (bot `p1`) and node `node-c` (bot `p2`)"),
            "{e}"
        );
        assert!(e.to_string().starts_with("queue `shared-queue` in `"), "{e}");
        // A bot without `node:` runs on every node, so it claims its queue on node-b too.
        let e = err_of(&[
            ("runtime.conf", r#"{"p1": {"module": "m.p", "node": "node-b"}, "p2": {"module": "m.p"}}"#),
            ("pipeline.conf", r#"{"p1": {"source-queue": "q"}, "p2": {"source-queue": "q"}}"#),
            ("node.conf", THREE_NODES),
        ]);
        assert!(
            matches!(&e, ConfigError::QueueOnTwoNodes { claims, .. } if claims.ends_with("every node (no `node:`) (bot `p2`)")),
            "{e}"
        );
    }

    #[test]
    fn queues_crossing_nodes_are_placed_and_need_a_broker() {
        let runtime = r#"a:
  module: intelmq.bots.collectors.file.collector_file
  node: node-a
  parameters: {destination_queues: {_default: [b-queue]}}
b:
  module: intelmq.bots.parsers.generic.parser_csv
  node: node-b
  parameters: {destination_queues: {_default: [c-queue]}}
c:
  module: intelmq.bots.outputs.file.output
  node: node-c
"#;
        let (_, bots, _) = load_bots(&[("runtime.yaml", runtime), ("node.conf", THREE_NODES)]).unwrap();
        let base = NodeConfig::from_value(Path::new("node.conf"), &serde_json::from_str(THREE_NODES).unwrap()).unwrap();
        let on = |id: &str| {
            let mut n = base.clone();
            n.node_id = id.to_string();
            n.peers.retain(|p| p.id != id);
            super::super::placement(&bots, &n)
        };
        let a = on("node-a");
        assert_eq!(a.remote.into_iter().collect::<Vec<_>>(), vec![("b-queue".to_string(), "node-b".to_string())]);
        assert!(a.intake.is_empty());
        let b = on("node-b");
        assert_eq!(b.remote.into_iter().collect::<Vec<_>>(), vec![("c-queue".to_string(), "node-c".to_string())]);
        assert_eq!(b.intake, ["b-queue"]);
        let c = on("node-c");
        assert!(c.remote.is_empty());
        assert_eq!(c.intake, ["c-queue"]);

        let no_broker = r#"{"node_id": "node-a", "peers": [{"id": "node-b", "control": "h:1"},
            {"id": "node-c", "control": "h:2"}]}"#;
        let e = err_of(&[("runtime.yaml", runtime), ("node.conf", no_broker)]);
        assert!(
            matches!(&e, ConfigError::NoBroker { queue, owner, .. } if queue == "b-queue" && owner == "node-b"),
            "{e}"
        );
        assert!(e.to_string().contains("set `broker` in `"), "{e}");
        // One node alone needs no broker.
        let single = "a:\n  module: m.c\n  parameters: {destination_queues: [b-queue]}\nb:\n  module: m.p\n";
        assert!(load_bots(&[("runtime.yaml", single)]).is_ok());
    }

    #[test]
    fn pipeline_conf_wiring_overrides_parameters_with_a_warning() {
        let (_, bots, warnings) = load_bots(&[
            (
                "runtime.conf",
                r#"{"a": {"module": "m.x", "parameters": {"destination_queues": ["zzz"]}},
                    "b": {"module": "m.y"}}"#,
            ),
            ("pipeline.conf", r#"{"a": {"destination-queues": "b-queue"}}"#),
        ])
        .unwrap();
        assert_eq!(bots[0].destination_queues, dq(&[("_default", &["b-queue"])]));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
    }

    #[test]
    fn shipped_defaults_conf_equals_the_builtin_defaults() {
        let text = include_str!("../../../etc/defaults.conf");
        let bots = bots_of(&[("defaults.conf", text), ("runtime.conf", r#"{"a": {"module": "m.x"}}"#)]);
        assert_eq!(bots[0].common, CommonParams::default());
        let (_, _, warnings) =
            load_bots(&[("defaults.conf", text), ("runtime.conf", r#"{"a": {"module": "m.x"}}"#)]).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn shipped_node_conf_equals_the_builtin_defaults() {
        let text = include_str!("../../../etc/node.conf");
        let v: Value = serde_json::from_str(text).unwrap();
        assert_eq!(NodeConfig::from_value(Path::new("etc/node.conf"), &v).unwrap(), NodeConfig::default());
    }

    #[test]
    fn shipped_etc_loads_when_it_has_a_botnet() {
        // The shipped etc/ gets its runtime file from another part of the project; once it is
        // there, it must load as a whole (harmonization.conf included).
        let etc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../etc");
        if etc.join("runtime.conf").exists() || etc.join("runtime.yaml").exists() {
            let botnet = load_from(Path::new("/opt/intelmq"), &etc).unwrap();
            assert!(!botnet.bots.is_empty());
        }
    }
}
