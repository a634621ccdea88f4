//! The runtime: an actix [`Supervisor`](supervisor) and one [`BotActor`](bot_actor) per bot, each
//! on its own Arbiter (thread), because bot work (parsing, RocksDB) is blocking. Owns routing,
//! wake-ups, backpressure, error handling and the per-bot logs. Depends on `store`, `bots`,
//! `config`, `cluster` (started with the bots, for the queues of other nodes) and `message`;
//! nothing depends on it but the binary and the control plane.

mod bot_actor;
mod build;
mod chunks;
mod log;
mod offline;
mod state;
mod supervisor;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use actix::Recipient;

pub use bot_actor::DebugRun;
pub use build::{build, entry_of, validate, BuildError};
pub use log::{format_line, BotLogger};
pub use offline::{process_offline, OfflineRun};
pub use supervisor::{group_of, parse_group, BotStatusInfo, Command, ControlError, Selector};

use crate::config::{Botnet, SyncMode};
use crate::store::{Counters, Durability, Store};

/// How the node runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Until SIGTERM/SIGINT.
    Daemon,
    /// Until every collector has done its run and every queue is empty.
    UntilIdle,
}

/// The state of one bot as the supervisor knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunState {
    Starting,
    Running,
    Stopped,
    Disabled,
    /// Stopped by an error; the reason.
    Failed(String),
}

impl RunState {
    pub fn as_str(&self) -> &'static str {
        match self {
            RunState::Starting => "starting",
            RunState::Running => "running",
            RunState::Stopped => "stopped",
            RunState::Disabled => "disabled",
            RunState::Failed(_) => "failed",
        }
    }
}

/// What a bot actor shares with the supervisor and its upstream bots.
#[derive(Debug)]
pub struct BotShared {
    /// In a step right now.
    pub busy: AtomicBool,
    /// A wake-up is already on its way (upstreams do not send another).
    pub notified: AtomicBool,
    /// A collector has finished at least one run.
    pub collected: AtomicBool,
    state: Mutex<RunState>,
    /// Why a running bot is waiting (the far side is unavailable), if it is.
    note: Mutex<Option<String>>,
}

impl BotShared {
    pub(crate) fn new() -> Self {
        BotShared {
            busy: AtomicBool::new(false),
            notified: AtomicBool::new(false),
            collected: AtomicBool::new(false),
            state: Mutex::new(RunState::Starting),
            note: Mutex::new(None),
        }
    }

    /// Sets or clears why a running bot is waiting.
    pub fn set_note(&self, note: Option<String>) {
        if let Ok(mut g) = self.note.lock() {
            *g = note;
        }
    }

    pub fn note(&self) -> Option<String> {
        self.note.lock().ok().and_then(|g| g.clone())
    }

    pub fn set_state(&self, s: RunState) {
        if let Ok(mut g) = self.state.lock() {
            *g = s;
        }
    }

    pub fn state(&self) -> RunState {
        self.state.lock().map(|g| g.clone()).unwrap_or(RunState::Failed("state lock poisoned".into()))
    }
}

/// Who consumes which queue, so a commit can wake the consumers of the queues it wrote to.
#[derive(Default)]
pub struct Router {
    consumers: RwLock<HashMap<String, Vec<Consumer>>>,
}

struct Consumer {
    bot_id: String,
    shared: Arc<BotShared>,
    recipient: Recipient<bot_actor::Wake>,
}

impl Router {
    /// Registers (or replaces, after a restart) the actor consuming `queue` for `bot_id`.
    fn register(&self, queue: &str, bot_id: &str, shared: Arc<BotShared>, recipient: Recipient<bot_actor::Wake>) {
        if let Ok(mut m) = self.consumers.write() {
            let list = m.entry(queue.to_string()).or_default();
            list.retain(|c| c.bot_id != bot_id);
            list.push(Consumer { bot_id: bot_id.to_string(), shared, recipient });
        }
    }

    /// Wakes the consumers of `queues` (at most one pending wake-up per consumer).
    pub fn wake(&self, queues: &[String]) {
        let Ok(m) = self.consumers.read() else { return };
        for q in queues {
            for Consumer { shared, recipient: r, .. } in m.get(q).into_iter().flatten() {
                if !shared.notified.swap(true, Ordering::AcqRel) {
                    r.do_send(bot_actor::Wake);
                }
            }
        }
    }
}

/// Per-bot figures of a run.
#[derive(Clone, Debug)]
pub struct BotSummary {
    pub id: String,
    pub module: String,
    pub state: RunState,
    /// Counters of this run only.
    pub run: Counters,
    /// Where an output bot writes, if it writes a file.
    pub output: Option<String>,
}

/// What `--until-idle` prints at the end.
#[derive(Clone, Debug)]
pub struct RunSummary {
    pub root: PathBuf,
    pub bots: Vec<BotSummary>,
    pub dump_entries: usize,
    pub elapsed: Duration,
}

impl RunSummary {
    pub fn failed_bots(&self) -> Vec<&BotSummary> {
        self.bots.iter().filter(|b| matches!(b.state, RunState::Failed(_))).collect()
    }

    /// A one-screen table: per bot in, out, dumped; where the output is.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let w = self.bots.iter().map(|b| b.id.len()).max().unwrap_or(3).max(3);
        let _ =
            writeln!(s, "intelmq-node: idle after {:.2} s (root {})", self.elapsed.as_secs_f64(), self.root.display());
        let _ = writeln!(s, "{:<w$}  {:>9}  {:>9}  {:>7}  {:>7}  state", "bot", "in", "out", "dumped", "retries");
        for b in &self.bots {
            let state = match &b.state {
                RunState::Failed(r) => format!("failed: {r}"),
                other => other.as_str().to_string(),
            };
            let _ = writeln!(
                s,
                "{:<w$}  {:>9}  {:>9}  {:>7}  {:>7}  {}",
                b.id, b.run.received, b.run.sent, b.run.dumped, b.run.retries, state
            );
        }
        for b in &self.bots {
            if let Some(o) = &b.output {
                let _ = writeln!(s, "output of {}: {}", b.id, o);
            }
        }
        if self.dump_entries > 0 {
            let _ = writeln!(s, "dump: {} entries in the store (intelmqctl dump list)", self.dump_entries);
        }
        s
    }
}

/// The store's durability from `node.conf`.
pub fn durability(sync: SyncMode, interval_ms: u64) -> Durability {
    match sync {
        SyncMode::Always => Durability::Always,
        SyncMode::Interval => Durability::Interval(Duration::from_millis(interval_ms.max(1))),
        SyncMode::Never => Durability::Never,
    }
}

/// Opens the node's store for a botnet, with an inbox for every configured queue.
pub fn open_store(botnet: &Botnet) -> anyhow::Result<Arc<Store>> {
    let path = crate::bots::resolve_path(&botnet.root, &botnet.node.store.path);
    // The state column families of the bots that run here are made in the same opening.
    let local = &botnet.node.node_id;
    let bots: Vec<String> = botnet
        .bots
        .iter()
        .filter(|b| b.enabled && b.node.as_deref().is_none_or(|n| n == local))
        .map(|b| b.id.clone())
        .collect();
    let sync = durability(botnet.node.store.sync, botnet.node.store.sync_interval_ms);
    let store = Store::open_for(&path, sync, &botnet.queues(), &bots)?;
    Ok(Arc::new(store))
}

/// Runs the botnet until idle (or until a signal in daemon mode) and returns the summary.
/// `on_start` gets a [`NodeHandle`] once every bot is started (the control plane serves it).
pub fn run(
    botnet: Botnet,
    mode: Mode,
    on_start: impl FnOnce(NodeHandle) + Send + 'static,
) -> anyhow::Result<RunSummary> {
    supervisor::run(botnet, mode, Box::new(on_start))
}

/// What the control plane holds of a running node: the supervisor's address, the store and the
/// configuration. Cheap to clone; usable from any thread or async runtime.
#[derive(Clone)]
pub struct NodeHandle {
    supervisor: actix::Addr<supervisor::Supervisor>,
    router: Arc<Router>,
    pub store: Arc<Store>,
    pub botnet: Arc<RwLock<Botnet>>,
}

fn gone(_: actix::MailboxError) -> ControlError {
    ControlError::Internal("the node is shutting down".to_string())
}

impl NodeHandle {
    /// Runs a lifecycle verb (start, stop, restart, reload, status) on the selected bots.
    pub async fn control(&self, cmd: Command, sel: Selector) -> Result<Vec<BotStatusInfo>, ControlError> {
        self.supervisor.send(supervisor::Control(cmd, sel)).await.map_err(gone)?
    }

    /// Persists `enabled` for a bot in its configuration file.
    pub async fn set_enabled(&self, bot_id: &str, enabled: bool) -> Result<BotStatusInfo, ControlError> {
        self.supervisor.send(supervisor::SetEnabled(bot_id.to_string(), enabled)).await.map_err(gone)?
    }

    /// The bot debugger: one message through a bot.
    pub async fn run_once(
        &self,
        bot_id: &str,
        message: Option<Vec<u8>>,
        dryrun: bool,
    ) -> Result<DebugRun, ControlError> {
        self.supervisor.send(supervisor::RunOnce { bot_id: bot_id.to_string(), message, dryrun }).await.map_err(gone)?
    }

    /// Wakes the running consumers of `queues` (after messages were put there from outside).
    pub fn wake(&self, queues: &[String]) {
        self.router.wake(queues);
    }

    /// Stops every bot and the node.
    pub fn shutdown(&self) {
        self.supervisor.do_send(supervisor::Shutdown);
    }

    /// A copy of the current configuration.
    pub fn botnet(&self) -> Result<Botnet, ControlError> {
        self.botnet.read().map(|b| b.clone()).map_err(|_| ControlError::Internal("config lock poisoned".into()))
    }
}
