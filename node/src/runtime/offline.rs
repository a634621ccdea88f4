//! Runs one bot on given messages without a running node (`intelmq-node process`): operators try
//! a feed or a rule file before wiring it in. Uses a throw-away store, so stateful bots (dedup,
//! aggregate) see the messages of the same run.

use std::path::Path;

use serde_json::{Map, Value};

use super::bot_actor::BotActor;
use super::log::BotLogger;
use super::{build, validate, BotShared, Router};
use crate::bots::Level;
use crate::config;
use crate::store::{DumpEntry, Durability, Store};

/// What an offline run produced.
#[derive(Debug, Default)]
pub struct OfflineRun {
    /// (path, message JSON) in emission order.
    pub sent: Vec<(String, String)>,
    /// Failed messages or lines, as they would be dumped.
    pub dumps: Vec<DumpEntry>,
    /// Errors of messages that failed as a whole.
    pub errors: Vec<String>,
    /// The bot's log lines.
    pub log: Vec<String>,
}

/// Runs `module` with `params` on each input message (flat IntelMQ JSON objects). Relative paths in
/// the parameters resolve against `root`.
pub fn process_offline(
    root: &Path,
    module: &str,
    params: Map<String, Value>,
    inputs: &[Value],
) -> anyhow::Result<OfflineRun> {
    let scratch = tempfile_dir()?;
    let etc = scratch.join("etc");
    std::fs::create_dir_all(&etc)?;
    let mut entry = Map::new();
    entry.insert("module".into(), Value::String(module.to_string()));
    entry.insert("parameters".into(), Value::Object(params));
    let mut doc = Map::new();
    doc.insert("process-bot".into(), Value::Object(entry));
    std::fs::write(etc.join("runtime.conf"), Value::Object(doc).to_string())?;
    let botnet = config::load_from(root, &etc)?;
    validate(&botnet)?;
    let cfg = botnet.bot("process-bot").ok_or_else(|| anyhow::anyhow!("internal: the bot vanished"))?.clone();
    let store = std::sync::Arc::new(Store::open(&scratch.join("store"), Durability::Never, &botnet.queues())?);
    let mut actor = BotActor::new(
        cfg.clone(),
        build(&cfg)?,
        store.clone(),
        botnet.harmonization.clone(),
        root.to_path_buf(),
        std::sync::Arc::new(Router::default()),
        std::sync::Arc::new(BotShared::new()),
        BotLogger::capture(&cfg.id, Level::Debug),
        true,
    );
    actor.start_offline().map_err(|e| anyhow::anyhow!(e))?;
    let mut out = OfflineRun::default();
    let runs: Vec<Option<Vec<u8>>> = if cfg.source_queue.is_none() {
        vec![None]
    } else {
        inputs.iter().map(|v| Some(v.to_string().into_bytes())).collect()
    };
    for input in runs {
        let run = actor.debug_run(input, false).map_err(|e| anyhow::anyhow!(e))?;
        out.sent.extend(run.sent.into_iter().map(|(path, _, json)| (path, json)));
        out.errors.extend(run.error);
        out.log.extend(run.log);
    }
    out.dumps = store.dumps(None)?.into_iter().map(|(_, d)| d).collect();
    drop(actor);
    drop(store);
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(out)
}

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let base = std::env::temp_dir();
    for i in 0..1000u32 {
        let p = base.join(format!("intelmq-process-{}-{i}", std::process::id()));
        match std::fs::create_dir(&p) {
            Ok(()) => return Ok(p),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("cannot create a scratch directory"))
}
