//! The configuration under `<root>/etc/`: `defaults.conf`, `runtime.conf`, `pipeline.conf` (or an
//! IntelMQ 3 `runtime.yaml`), `harmonization.conf` and `node.conf`, loaded into validated runtime
//! types. Raw serde types -> `validate()` -> [`Botnet`]; no IO during validation, no reachability
//! checks. Depends on `message` only (module existence is checked against the registry by the
//! runtime, which names the same file, bot and key).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::message::Harmonization;

mod edit;
mod error;
mod load;
mod node;
mod placement;

pub use edit::set_enabled;
pub use error::ConfigError;
pub use load::{load, load_from};
pub use node::{
    BrokerConfig, NodeConfig, PeerConfig, SyncMode, DEFAULT_DEDUP_TTL_S, DEFAULT_QUEUE_PREFIX, DEFAULT_RATE_WINDOW_MS,
};
pub use placement::{placement, Placement};

/// A bot's group (IntelMQ `group`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Group {
    Collector,
    Parser,
    Expert,
    Output,
}

/// IntelMQ `run_mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunMode {
    #[default]
    Continuous,
    Scheduled,
}

/// IntelMQ `error_procedure`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorProcedure {
    #[default]
    Pass,
    Stop,
}

/// The parameters every bot has, handled by the runtime (IntelMQ's global parameters, section 3.3,
/// plus the node's own). Defaults are IntelMQ's.
#[derive(Clone, Debug, PartialEq)]
pub struct CommonParams {
    /// `error_procedure`, default `pass`.
    pub error_procedure: ErrorProcedure,
    /// `error_max_retries`, default 3.
    pub error_max_retries: u32,
    /// `error_retry_delay` in seconds, default 15.
    pub error_retry_delay: f64,
    /// `error_dump_message`, default true.
    pub error_dump_message: bool,
    /// `error_log_message`, default false.
    pub error_log_message: bool,
    /// `error_log_exception`, default true.
    pub error_log_exception: bool,
    /// `load_balance`, default false.
    pub load_balance: bool,
    /// `rate_limit` in seconds, default 0 (collectors: the fetch interval; the file collector's default is 300).
    /// `None` when neither the global section nor the bot sets it: the bot's own default applies.
    pub rate_limit: Option<f64>,
    /// `logging_level`, default `INFO`.
    pub logging_level: String,
    /// `log_processed_messages_count`, default 500.
    pub log_processed_messages_count: u64,
    /// `log_processed_messages_seconds`, default 900.
    pub log_processed_messages_seconds: u64,
    /// Node: messages taken per processing step, default 256.
    pub batch_size: usize,
    /// Node: high watermark of each destination queue in messages, default 100000 (0 = none).
    pub max_queue_length: u64,
    /// Collector feed parameters (`name`, `accuracy` default 100, `code`, `provider`, `documentation`).
    pub feed_name: Option<String>,
    pub feed_accuracy: f64,
    pub feed_code: Option<String>,
    pub feed_provider: Option<String>,
    pub feed_documentation: Option<String>,
    /// Parser `default_fields` (added to each event without overwriting).
    pub default_fields: serde_json::Map<String, Value>,
    /// Parser `copy_collector_provided_fields`.
    pub copy_collector_provided_fields: Vec<String>,
}

impl Default for CommonParams {
    fn default() -> Self {
        CommonParams {
            error_procedure: ErrorProcedure::Pass,
            error_max_retries: 3,
            error_retry_delay: 15.0,
            error_dump_message: true,
            error_log_message: false,
            error_log_exception: true,
            load_balance: false,
            rate_limit: None,
            logging_level: "INFO".to_string(),
            log_processed_messages_count: 500,
            log_processed_messages_seconds: 900,
            batch_size: 256,
            max_queue_length: 100_000,
            feed_name: None,
            feed_accuracy: 100.0,
            feed_code: None,
            feed_provider: None,
            feed_documentation: None,
            default_fields: serde_json::Map::new(),
            copy_collector_provided_fields: Vec::new(),
        }
    }
}

/// One configured bot, validated.
#[derive(Clone, Debug)]
pub struct BotConfig {
    /// The bot id (`[0-9a-zA-Z-]+`).
    pub id: String,
    /// The file the bot was configured in (for error messages).
    pub file: PathBuf,
    pub group: Option<Group>,
    /// IntelMQ's module path.
    pub module: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub enabled: bool,
    pub run_mode: RunMode,
    /// The node this bot runs on (None: the local node).
    pub node: Option<String>,
    /// The inbox (`<bot-id>-queue` unless set); None for collectors.
    pub source_queue: Option<String>,
    /// Path name (`_default`, `_on_error`, named paths) -> queue names, in config order.
    pub destination_queues: BTreeMap<String, Vec<String>>,
    pub common: CommonParams,
    /// The bot-specific parameters (everything not in [`CommonParams`] and not pipeline wiring).
    pub params: serde_json::Map<String, Value>,
}

/// Which files the botnet was read from.
#[derive(Clone, Debug, PartialEq)]
pub enum ConfigLayout {
    /// `defaults.conf` + `runtime.conf` + `pipeline.conf`.
    Classic { defaults: PathBuf, runtime: PathBuf, pipeline: PathBuf },
    /// IntelMQ 3 `runtime.yaml`.
    RuntimeYaml { runtime: PathBuf },
}

/// Everything a node needs to run, validated.
#[derive(Clone, Debug)]
pub struct Botnet {
    pub root: PathBuf,
    pub layout: ConfigLayout,
    pub node: NodeConfig,
    pub harmonization: Arc<Harmonization>,
    /// Bots in the order of the config file.
    pub bots: Vec<BotConfig>,
    /// Warnings found while loading (ignored IntelMQ-only keys such as Redis settings).
    pub warnings: Vec<String>,
}

impl Botnet {
    pub fn bot(&self, id: &str) -> Option<&BotConfig> {
        self.bots.iter().find(|b| b.id == id)
    }

    /// The bots that consume `queue`.
    pub fn consumers_of<'a>(&'a self, queue: &'a str) -> impl Iterator<Item = &'a BotConfig> + 'a {
        self.bots.iter().filter(move |b| b.source_queue.as_deref() == Some(queue))
    }

    /// The cross-node queues of this node (see [`placement`]).
    pub fn placement(&self) -> Placement {
        placement(&self.bots, &self.node)
    }

    /// Every queue name that appears as a source or destination.
    pub fn queues(&self) -> Vec<String> {
        let mut qs: Vec<String> = Vec::new();
        for b in &self.bots {
            if let Some(q) = &b.source_queue {
                qs.push(q.clone());
            }
            for list in b.destination_queues.values() {
                qs.extend(list.iter().cloned());
            }
        }
        qs.sort();
        qs.dedup();
        qs
    }
}

/// The directory layout under a root.
pub fn etc_dir(root: &Path) -> PathBuf {
    root.join("etc")
}

/// The root directory: `--root`, else `$INTELMQ_ROOT_DIR`, else `/opt/intelmq`.
pub fn resolve_root(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    match std::env::var_os("INTELMQ_ROOT_DIR") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from("/opt/intelmq"),
    }
}
