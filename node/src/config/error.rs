//! `ConfigError`: every way the files under `<root>/etc/` can be refused. Each variant names the
//! file and, where there is one, the bot (or section: `global`, `defaults`) and the key.

use std::path::PathBuf;

/// A configuration error found while loading or validating `<root>/etc/`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("cannot read `{}`: {source}", file.display())]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Neither `runtime.yaml` nor `runtime.conf` exists.
    #[error(
        "no botnet configuration in `{}`: expected `runtime.yaml` or `runtime.conf`",
        etc.display()
    )]
    NoRuntime { etc: PathBuf },

    /// Both layouts are present, so it is unclear which one is meant.
    #[error(
        "both `{}` and `{}` exist: keep one of them (intelmqctl can convert between the two)",
        yaml.display(),
        conf.display()
    )]
    BothLayouts { yaml: PathBuf, conf: PathBuf },

    /// The file is not valid JSON.
    #[error("invalid json in `{}` at line {line} column {column}: {reason}", file.display())]
    Json { file: PathBuf, line: usize, column: usize, reason: String },

    /// The file is not valid YAML.
    #[error("invalid yaml in `{}` at line {line} column {column}: {reason}", file.display())]
    Yaml { file: PathBuf, line: usize, column: usize, reason: String },

    /// The harmonization file could not be loaded (the reason names the file and field).
    #[error("invalid harmonization `{}`: {reason}", file.display())]
    Harmonization { file: PathBuf, reason: String },

    /// A bot id that does not fully match `[0-9a-zA-Z-]+`.
    #[error(
        "invalid bot id `{bot}` in `{}`: only letters, digits and `-` are allowed",
        file.display()
    )]
    InvalidBotId { file: PathBuf, bot: String },

    /// The same bot id appears twice in one file.
    #[error("duplicate bot id `{bot}` in `{}`", file.display())]
    DuplicateBotId { file: PathBuf, bot: String },

    /// A key the bot entry (or `pipeline.conf` entry, or `node.conf`) does not know.
    #[error(
        "unknown key `{key}` for bot `{bot}` in `{}` (known: {known})",
        file.display()
    )]
    UnknownKey { file: PathBuf, bot: String, key: String, known: String },

    /// A bot entry without `module`.
    #[error("bot `{bot}` in `{}` has no `module`", file.display())]
    MissingModule { file: PathBuf, bot: String },

    /// `group` is not Collector, Parser, Expert or Output.
    #[error(
        "invalid `group` value `{value}` for bot `{bot}` in `{}` (expected Collector, Parser, Expert or Output)",
        file.display()
    )]
    InvalidGroup { file: PathBuf, bot: String, value: String },

    /// `run_mode` is not continuous or scheduled.
    #[error(
        "invalid `run_mode` value `{value}` for bot `{bot}` in `{}` (expected continuous or scheduled)",
        file.display()
    )]
    InvalidRunMode { file: PathBuf, bot: String, value: String },

    /// `error_procedure` is not pass or stop.
    #[error(
        "invalid `error_procedure` value `{value}` for bot `{bot}` in `{}` (expected pass or stop)",
        file.display()
    )]
    InvalidErrorProcedure { file: PathBuf, bot: String, value: String },

    /// Any other value of the wrong type or out of range.
    #[error(
        "invalid value `{value}` for `{key}` of bot `{bot}` in `{}`: expected {expected}",
        file.display()
    )]
    InvalidValue { file: PathBuf, bot: String, key: String, value: String, expected: String },

    /// `pipeline.conf` wires a bot that `runtime.conf` does not configure.
    #[error(
        "`{}` has an entry for bot `{bot}`, which is not configured in `{}`",
        file.display(),
        runtime.display()
    )]
    PipelineUnknownBot { file: PathBuf, runtime: PathBuf, bot: String },

    /// A destination queue that no configured bot reads.
    #[error(
        "destination queue `{queue}` (path `{path}`) of bot `{bot}` in `{}` is not the source queue of any configured bot",
        file.display()
    )]
    DanglingQueue { file: PathBuf, bot: String, path: String, queue: String },

    /// Two bots read the same source queue.
    #[error(
        "bots `{first}` and `{bot}` in `{}` both read source queue `{queue}`",
        file.display()
    )]
    DuplicateSourceQueue { file: PathBuf, first: String, bot: String, queue: String },

    /// Bots on different nodes consume one queue: a queue belongs to one node. `claims` names the
    /// two nodes and their bots.
    #[error(
        "queue `{queue}` in `{}` is claimed by two nodes: {claims}; the bots consuming a queue must run on one node",
        file.display()
    )]
    QueueOnTwoNodes { file: PathBuf, queue: String, claims: String },

    /// Messages cross nodes but `node.conf` names no broker to carry them.
    #[error(
        "queue `{queue}` (bot `{bot}` in `{}`) crosses nodes: it is on node `{owner}` and bots on other nodes send to it, or the other way round; set `broker` in `{}` to carry messages between nodes",
        file.display(),
        node_conf.display()
    )]
    NoBroker { file: PathBuf, node_conf: PathBuf, queue: String, bot: String, owner: String },

    /// A bad key or value in `node.conf` (`key` is the dotted path, e.g. `store.sync`).
    #[error("invalid `{key}` in `{}`: {reason}", file.display())]
    NodeConf { file: PathBuf, key: String, reason: String },

    /// A bot placed on a node that `node.conf` does not know.
    #[error(
        "bot `{bot}` in `{}` is placed on unknown node `{node}` (known: {known})",
        file.display()
    )]
    UnknownNode { file: PathBuf, bot: String, node: String, known: String },
}

impl ConfigError {
    /// The file the error is about.
    pub fn file(&self) -> &std::path::Path {
        match self {
            ConfigError::Io { file, .. }
            | ConfigError::Json { file, .. }
            | ConfigError::Yaml { file, .. }
            | ConfigError::Harmonization { file, .. }
            | ConfigError::InvalidBotId { file, .. }
            | ConfigError::DuplicateBotId { file, .. }
            | ConfigError::UnknownKey { file, .. }
            | ConfigError::MissingModule { file, .. }
            | ConfigError::InvalidGroup { file, .. }
            | ConfigError::InvalidRunMode { file, .. }
            | ConfigError::InvalidErrorProcedure { file, .. }
            | ConfigError::InvalidValue { file, .. }
            | ConfigError::PipelineUnknownBot { file, .. }
            | ConfigError::DanglingQueue { file, .. }
            | ConfigError::DuplicateSourceQueue { file, .. }
            | ConfigError::QueueOnTwoNodes { file, .. }
            | ConfigError::NoBroker { file, .. }
            | ConfigError::NodeConf { file, .. }
            | ConfigError::UnknownNode { file, .. } => file,
            ConfigError::NoRuntime { etc } => etc,
            ConfigError::BothLayouts { yaml, .. } => yaml,
        }
    }
}
