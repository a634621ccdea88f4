//! The supervisor: builds every bot of this node, starts one [`BotActor`] per bot on its own
//! Arbiter, wires the wake-ups, restarts a bot whose code panicked (with backoff), watches for
//! idleness (`--until-idle`) and for SIGTERM/SIGINT, answers the control plane's lifecycle verbs
//! (start, stop, restart, reload, status, enable, disable, run) and stops everything cleanly.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::bot_actor::{BotActor, DebugRun, Ping, Stop, Wake};
use super::log::BotLogger;
use super::{build, open_store, BotShared, BotSummary, Mode, NodeHandle, Router, RunState, RunSummary};
use crate::bots::{Bot, Level};
use crate::cluster::Cluster;
use crate::config::{self, BotConfig, Botnet, Group};
use crate::store::{Counters, Store};

/// How often the supervisor looks at its bots.
const TICK: Duration = Duration::from_millis(25);
/// The tick with `--until-idle`: the node exits this soon after the last commit.
const IDLE_TICK: Duration = Duration::from_millis(5);
/// Restarts of a panicking bot before it stays failed.
const MAX_RESTARTS: u32 = 5;

struct Running {
    cfg: BotConfig,
    shared: Arc<BotShared>,
    addr: Option<Addr<BotActor>>,
    arbiter: Option<Arbiter>,
    restarts: u32,
    restart_at: Option<Instant>,
}

pub(super) struct Supervisor {
    botnet: Arc<RwLock<Botnet>>,
    store: Arc<Store>,
    router: Arc<Router>,
    bots: Vec<Running>,
    mode: Mode,
    idle_ticks: u32,
    shutting_down: bool,
    /// Each bot's state when the node stopped (for the summary).
    final_states: Arc<Mutex<HashMap<String, RunState>>>,
}

/// Stop every bot and the node.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct Shutdown;

/// A lifecycle verb of the control plane.
#[derive(Clone, Debug)]
pub enum Command {
    Start,
    Stop,
    Restart,
    Reload,
    Status,
}

/// Which bots a verb applies to.
#[derive(Clone, Debug, Default)]
pub struct Selector {
    /// One bot (empty: see `group`).
    pub bot_id: String,
    /// `collectors`, `parsers`, `experts`, `outputs` (or singular/capitalised); empty: all.
    pub group: String,
}

/// What the supervisor reports about one bot.
#[derive(Clone, Debug)]
pub struct BotStatusInfo {
    pub bot_id: String,
    pub group: String,
    pub module: String,
    pub node: String,
    pub state: RunState,
    pub enabled: bool,
    /// Why a running bot waits (e.g. its far side is unavailable and it retries).
    pub note: Option<String>,
}

/// Why a control verb could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("unknown bot `{0}`")]
    UnknownBot(String),
    #[error("unknown group `{0}` (known: collectors, parsers, experts, outputs)")]
    UnknownGroup(String),
    #[error("unknown queue `{0}`")]
    UnknownQueue(String),
    #[error("no dump entry {id}{}", if bot.is_empty() { String::new() } else { format!(" for bot `{bot}`") })]
    UnknownDump { id: u64, bot: String },
    #[error("{0}")]
    Precondition(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Internal(String),
}

/// Run a lifecycle verb on the selected bots; returns their states afterwards.
#[derive(Message)]
#[rtype(result = "Result<Vec<BotStatusInfo>, ControlError>")]
pub(super) struct Control(pub Command, pub Selector);

/// Persist `enabled` for a bot.
#[derive(Message)]
#[rtype(result = "Result<BotStatusInfo, ControlError>")]
pub(super) struct SetEnabled(pub String, pub bool);

/// The bot debugger.
#[derive(Message)]
#[rtype(result = "Result<DebugRun, ControlError>")]
pub(super) struct RunOnce {
    pub bot_id: String,
    pub message: Option<Vec<u8>>,
    pub dryrun: bool,
}

/// A group as the control plane names it: `collectors`, `Parser`, ... (IntelMQ's `--group` values).
pub fn parse_group(g: &str) -> Option<Group> {
    match g.to_ascii_lowercase().as_str() {
        "collector" | "collectors" => Some(Group::Collector),
        "parser" | "parsers" => Some(Group::Parser),
        "expert" | "experts" => Some(Group::Expert),
        "output" | "outputs" => Some(Group::Output),
        _ => None,
    }
}

/// The group of a configured bot: its `group`, else what its module path says.
pub fn group_of(cfg: &BotConfig) -> &'static str {
    match cfg.group {
        Some(Group::Collector) => "Collector",
        Some(Group::Parser) => "Parser",
        Some(Group::Expert) => "Expert",
        Some(Group::Output) => "Output",
        None => match super::entry_of(cfg) {
            Ok(e) => e.kind.as_str(),
            Err(_) => "",
        },
    }
}

#[allow(clippy::too_many_arguments)]
fn start_actor(
    root: &std::path::Path,
    harmonization: &Arc<crate::message::Harmonization>,
    store: &Arc<Store>,
    router: &Arc<Router>,
    cfg: &BotConfig,
    bot: Bot,
    shared: &Arc<BotShared>,
    until_idle: bool,
) -> Result<(Arbiter, Addr<BotActor>), ControlError> {
    let level = Level::parse(&cfg.common.logging_level).unwrap_or(Level::Info);
    let logger = BotLogger::open(&root.join("var/log"), &cfg.id, level)
        .map_err(|e| ControlError::Internal(format!("cannot open the log of bot `{}`: {e}", cfg.id)))?;
    if let Some(q) = &cfg.source_queue {
        store.ensure_queue(q).map_err(|e| ControlError::Internal(e.to_string()))?;
    }
    let arbiter = Arbiter::new();
    let (cfg2, store2, harm, root2, router2, shared2) =
        (cfg.clone(), store.clone(), harmonization.clone(), root.to_path_buf(), router.clone(), shared.clone());
    let addr = BotActor::start_in_arbiter(&arbiter.handle(), move |_| {
        BotActor::new(cfg2, bot, store2, harm, root2, router2, shared2, logger, until_idle)
    });
    if let Some(q) = &cfg.source_queue {
        router.register(q, &cfg.id, shared.clone(), addr.clone().recipient());
    }
    Ok((arbiter, addr))
}

impl Supervisor {
    fn status_of(&self, b: &Running) -> BotStatusInfo {
        BotStatusInfo {
            bot_id: b.cfg.id.clone(),
            group: group_of(&b.cfg).to_string(),
            module: b.cfg.module.clone(),
            node: b.cfg.node.clone().unwrap_or_else(|| self.node_id()),
            state: b.shared.state(),
            enabled: b.cfg.enabled,
            note: b.shared.note(),
        }
    }

    fn node_id(&self) -> String {
        self.botnet.read().map(|b| b.node.node_id.clone()).unwrap_or_default()
    }

    /// Indexes of the selected bots.
    fn select(&self, sel: &Selector) -> Result<Vec<usize>, ControlError> {
        if !sel.bot_id.is_empty() {
            return self
                .bots
                .iter()
                .position(|b| b.cfg.id == sel.bot_id)
                .map(|i| vec![i])
                .ok_or_else(|| ControlError::UnknownBot(sel.bot_id.clone()));
        }
        let group = if sel.group.is_empty() {
            None
        } else {
            Some(parse_group(&sel.group).ok_or_else(|| ControlError::UnknownGroup(sel.group.clone()))?)
        };
        Ok((0..self.bots.len())
            .filter(|i| {
                group.is_none_or(|g| {
                    let name = group_of(&self.bots[*i].cfg);
                    parse_group(name) == Some(g)
                })
            })
            .collect())
    }

    fn is_running(&self, i: usize) -> bool {
        self.bots[i].addr.as_ref().is_some_and(|a| a.connected())
            && matches!(self.bots[i].shared.state(), RunState::Running | RunState::Starting)
    }

    /// Starts bot `i` with a freshly built bot.
    fn start(&mut self, i: usize) -> Result<(), ControlError> {
        if self.is_running(i) {
            return Ok(());
        }
        let cfg = self.bots[i].cfg.clone();
        let bot = match build(&cfg) {
            Ok(b) => b,
            Err(e) => {
                self.bots[i].shared.set_state(RunState::Failed(e.to_string()));
                return Ok(());
            }
        };
        if let Some(a) = self.bots[i].arbiter.take() {
            a.stop();
        }
        let shared = Arc::new(BotShared::new());
        let (root, harmonization) = {
            let b = self.botnet.read().map_err(|_| ControlError::Internal("config lock poisoned".into()))?;
            (b.root.clone(), b.harmonization.clone())
        };
        let (arbiter, addr) = start_actor(
            &root,
            &harmonization,
            &self.store,
            &self.router,
            &cfg,
            bot,
            &shared,
            self.mode == Mode::UntilIdle,
        )?;
        addr.do_send(Wake);
        let b = &mut self.bots[i];
        b.shared = shared;
        b.addr = Some(addr);
        b.arbiter = Some(arbiter);
        b.restart_at = None;
        Ok(())
    }

    fn restart_failed(&mut self) {
        let now = Instant::now();
        for i in 0..self.bots.len() {
            let b = &mut self.bots[i];
            let RunState::Failed(reason) = b.shared.state() else { continue };
            if !reason.starts_with("bot panicked") || b.restarts >= MAX_RESTARTS {
                continue;
            }
            match b.restart_at {
                None => {
                    let delay = Duration::from_secs(1 << b.restarts.min(4));
                    tracing::warn!(bot_id = %b.cfg.id, reason = %reason, delay_s = delay.as_secs(), "bot crashed, restarting");
                    b.restart_at = Some(now + delay);
                }
                Some(at) if now >= at => {
                    b.restarts += 1;
                    b.restart_at = None;
                    if let Err(e) = self.start(i) {
                        self.bots[i].shared.set_state(RunState::Failed(e.to_string()));
                    }
                }
                Some(_) => {}
            }
        }
    }

    /// True when nothing is left to do: collectors ran, no bot is busy, no live consumer has input,
    /// no outbox waits for the broker.
    fn idle(&self) -> bool {
        if !self.store.outboxes().is_empty() {
            return false;
        }
        self.bots.iter().all(|b| {
            let live = b.shared.state() == RunState::Running;
            if !live {
                return b.restart_at.is_none();
            }
            if b.shared.busy.load(Ordering::Acquire) || b.shared.notified.load(Ordering::Acquire) {
                return false;
            }
            match &b.cfg.source_queue {
                Some(q) => self.store.queue_len(q) == 0,
                None => b.shared.collected.load(Ordering::Acquire),
            }
        })
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let tick = if self.mode == Mode::UntilIdle { IDLE_TICK } else { TICK };
        ctx.run_interval(tick, |sup, ctx| {
            if sup.shutting_down {
                return;
            }
            sup.restart_failed();
            if sup.mode == Mode::UntilIdle {
                if sup.idle() {
                    sup.idle_ticks += 1;
                } else {
                    sup.idle_ticks = 0;
                }
                // Two quiet looks in a row: a wake-up in flight between them would have shown.
                if sup.idle_ticks >= 2 {
                    ctx.notify(Shutdown);
                }
            }
        });
    }
}

/// Sends `Stop` to the actors and waits until each has handled it (after its current step).
async fn stop_all(addrs: Vec<Addr<BotActor>>) {
    for a in addrs {
        let _ = a.send(Stop).await;
    }
}

impl Handler<Shutdown> for Supervisor {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: Shutdown, _ctx: &mut Self::Context) -> Self::Result {
        self.shutting_down = true;
        let addrs: Vec<Addr<BotActor>> = self.bots.iter().filter_map(|b| b.addr.clone()).collect();
        Box::pin(stop_all(addrs).into_actor(self).map(|_, sup, _| {
            for b in &mut sup.bots {
                if let Some(a) = b.arbiter.take() {
                    a.stop();
                }
            }
            if let Ok(mut m) = sup.final_states.lock() {
                *m = sup.bots.iter().map(|b| (b.cfg.id.clone(), b.shared.state())).collect();
            }
            if let Err(e) = sup.store.sync() {
                tracing::error!(error = %e, "final store sync failed");
            }
            System::current().stop();
        }))
    }
}

impl Handler<Control> for Supervisor {
    type Result = ResponseActFuture<Self, Result<Vec<BotStatusInfo>, ControlError>>;

    fn handle(&mut self, Control(cmd, sel): Control, _ctx: &mut Self::Context) -> Self::Result {
        let selected = match self.select(&sel) {
            Ok(s) => s,
            Err(e) => return Box::pin(actix::fut::ready(Err(e))),
        };
        let whole_botnet = sel.bot_id.is_empty();
        if let Command::Reload = cmd {
            // Re-read the configuration; the bots keep their inboxes.
            let root = match self.botnet.read() {
                Ok(b) => b.root.clone(),
                Err(_) => {
                    return Box::pin(actix::fut::ready(Err(ControlError::Internal("config lock poisoned".into()))))
                }
            };
            let fresh = match config::load(&root).map_err(|e| ControlError::Invalid(e.to_string())).and_then(|b| {
                super::validate(&b).map_err(|e| ControlError::Invalid(e.to_string()))?;
                Ok(b)
            }) {
                Ok(b) => b,
                Err(e) => return Box::pin(actix::fut::ready(Err(e))),
            };
            for &i in &selected {
                match fresh.bot(&self.bots[i].cfg.id) {
                    Some(cfg) => self.bots[i].cfg = cfg.clone(),
                    None => {
                        let id = self.bots[i].cfg.id.clone();
                        return Box::pin(actix::fut::ready(Err(ControlError::Invalid(format!(
                            "bot `{id}` is no longer in the configuration"
                        )))));
                    }
                }
            }
            if let Ok(mut b) = self.botnet.write() {
                *b = fresh;
            }
        }
        let stop_first: Vec<usize> = match cmd {
            Command::Stop | Command::Restart => selected.clone(),
            Command::Reload => selected.iter().copied().filter(|i| self.is_running(*i)).collect(),
            _ => Vec::new(),
        };
        let restart_after: Vec<usize> = match cmd {
            Command::Start => selected.iter().copied().filter(|i| !whole_botnet || self.bots[*i].cfg.enabled).collect(),
            Command::Restart => selected.clone(),
            Command::Reload => stop_first.clone(),
            _ => Vec::new(),
        };
        let addrs: Vec<Addr<BotActor>> = stop_first.iter().filter_map(|i| self.bots[*i].addr.clone()).collect();
        let report = selected.clone();
        let stopped = stop_all(addrs).into_actor(self).map(move |_, sup: &mut Supervisor, _| {
            for &i in &stop_first {
                let b = &mut sup.bots[i];
                b.addr = None;
                if let Some(a) = b.arbiter.take() {
                    a.stop();
                }
                b.restart_at = None;
                b.restarts = 0;
                let state = if b.cfg.enabled { RunState::Stopped } else { RunState::Disabled };
                if !matches!(b.shared.state(), RunState::Failed(_)) || matches!(cmd, Command::Stop | Command::Restart) {
                    b.shared.set_state(state);
                }
            }
            let mut started = Vec::new();
            for &i in &restart_after {
                sup.start(i)?;
                started.extend(sup.bots[i].addr.clone());
            }
            Ok::<_, ControlError>(started)
        });
        // Report once every started actor has run its start-up (so the state is settled).
        Box::pin(
            stopped
                .then(|res, sup, _| {
                    async move {
                        let started = res?;
                        for a in started {
                            let _ = a.send(Ping).await;
                        }
                        Ok::<_, ControlError>(())
                    }
                    .into_actor(sup)
                })
                .map(move |res, sup, _| {
                    res?;
                    Ok(report.iter().map(|i| sup.status_of(&sup.bots[*i])).collect())
                }),
        )
    }
}

impl Handler<SetEnabled> for Supervisor {
    type Result = Result<BotStatusInfo, ControlError>;

    fn handle(&mut self, SetEnabled(bot_id, enabled): SetEnabled, _ctx: &mut Self::Context) -> Self::Result {
        let i = self
            .bots
            .iter()
            .position(|b| b.cfg.id == bot_id)
            .ok_or_else(|| ControlError::UnknownBot(bot_id.clone()))?;
        let root = self.botnet.read().map(|b| b.root.clone()).map_err(|_| ControlError::Internal("lock".into()))?;
        config::set_enabled(&root, &bot_id, enabled).map_err(|e| ControlError::Internal(e.to_string()))?;
        self.bots[i].cfg.enabled = enabled;
        if let Ok(mut b) = self.botnet.write() {
            if let Some(c) = b.bots.iter_mut().find(|c| c.id == bot_id) {
                c.enabled = enabled;
            }
        }
        let b = &self.bots[i];
        match b.shared.state() {
            RunState::Disabled if enabled => b.shared.set_state(RunState::Stopped),
            RunState::Stopped if !enabled => b.shared.set_state(RunState::Disabled),
            _ => {}
        }
        Ok(self.status_of(&self.bots[i]))
    }
}

impl Handler<RunOnce> for Supervisor {
    type Result = Result<DebugRun, ControlError>;

    fn handle(&mut self, msg: RunOnce, _ctx: &mut Self::Context) -> Self::Result {
        let i = self
            .bots
            .iter()
            .position(|b| b.cfg.id == msg.bot_id)
            .ok_or_else(|| ControlError::UnknownBot(msg.bot_id.clone()))?;
        if msg.message.is_none() && !msg.dryrun && self.is_running(i) {
            return Err(ControlError::Precondition(format!(
                "bot `{}` is running and consumes its inbox itself: stop it first, or give a message, or use dry-run",
                msg.bot_id
            )));
        }
        let cfg = self.bots[i].cfg.clone();
        let bot = build(&cfg).map_err(|e| ControlError::Invalid(e.to_string()))?;
        if let Some(given) = &msg.message {
            // A given message that breaks the harmonization is a bad argument, not a bot failure.
            let kind = if bot.kind() == crate::bots::BotKind::Parser {
                crate::message::MessageKind::Report
            } else {
                crate::message::MessageKind::Event
            };
            let harmonization = self
                .botnet
                .read()
                .map(|b| b.harmonization.clone())
                .map_err(|_| ControlError::Internal("lock".into()))?;
            crate::message::Message::from_wire(harmonization, given, Some(kind))
                .map_err(|e| ControlError::Invalid(format!("message rejected: {e}")))?;
        }
        let (root, harmonization) = {
            let b = self.botnet.read().map_err(|_| ControlError::Internal("config lock poisoned".into()))?;
            (b.root.clone(), b.harmonization.clone())
        };
        let logger = BotLogger::capture(&cfg.id, Level::Debug);
        let shared = Arc::new(BotShared::new());
        let mut actor =
            BotActor::new(cfg, bot, self.store.clone(), harmonization, root, self.router.clone(), shared, logger, true);
        actor.debug_run(msg.message, msg.dryrun).map_err(ControlError::Precondition)
    }
}

pub(super) fn run(
    botnet: Botnet,
    mode: Mode,
    on_start: Box<dyn FnOnce(NodeHandle) + Send>,
) -> anyhow::Result<RunSummary> {
    let started = Instant::now();
    super::validate(&botnet)?;
    let store = open_store(&botnet)?;
    // Queues of other nodes go to outboxes from the first step on; their forwarders and the
    // intakes of this node's queues run beside the bots.
    let router = Arc::new(Router::default());
    let wake_router = router.clone();
    let cluster = Cluster::start(&botnet, store.clone(), Arc::new(move |qs: &[String]| wake_router.wake(qs)))?;
    let local = botnet.node.node_id.clone();
    // Build every bot first: nothing starts on an invalid configuration.
    let mut built: Vec<(BotConfig, Option<Bot>)> = Vec::new();
    for cfg in &botnet.bots {
        if cfg.node.as_deref().is_some_and(|n| n != local) {
            continue;
        }
        let bot = if cfg.enabled { Some(build(cfg)?) } else { None };
        built.push((cfg.clone(), bot));
    }
    let mut before: HashMap<String, Counters> = HashMap::new();
    for (cfg, _) in &built {
        before.insert(cfg.id.clone(), store.counters(&cfg.id)?);
        if let Err(e) = store.purge_expired(&cfg.id) {
            tracing::warn!(bot_id = %cfg.id, error = %e, "purging expired state failed");
        }
    }
    let root = botnet.root.clone();
    let harmonization = botnet.harmonization.clone();
    let botnet = Arc::new(RwLock::new(botnet));
    let outcome: Arc<Mutex<Option<anyhow::Result<()>>>> = Arc::new(Mutex::new(None));
    let final_states: Arc<Mutex<HashMap<String, RunState>>> = Arc::new(Mutex::new(HashMap::new()));
    let system = System::new();
    {
        let (botnet, store, outcome, final_states) =
            (botnet.clone(), store.clone(), outcome.clone(), final_states.clone());
        system.block_on(async move {
            let mut bots = Vec::new();
            let mut failure = None;
            for (cfg, bot) in built {
                let shared = Arc::new(BotShared::new());
                let Some(bot) = bot else {
                    shared.set_state(RunState::Disabled);
                    bots.push(Running { cfg, shared, addr: None, arbiter: None, restarts: 0, restart_at: None });
                    continue;
                };
                match start_actor(&root, &harmonization, &store, &router, &cfg, bot, &shared, mode == Mode::UntilIdle) {
                    Ok((arbiter, addr)) => {
                        bots.push(Running {
                            cfg,
                            shared,
                            addr: Some(addr),
                            arbiter: Some(arbiter),
                            restarts: 0,
                            restart_at: None,
                        });
                    }
                    Err(e) => {
                        failure = Some(anyhow::anyhow!("{e}"));
                        break;
                    }
                }
            }
            // Every consumer is registered: now let them all take their first step.
            for b in &bots {
                if let Some(a) = &b.addr {
                    a.do_send(Wake);
                }
            }
            let sup = Supervisor {
                botnet: botnet.clone(),
                store: store.clone(),
                router: router.clone(),
                bots,
                mode,
                idle_ticks: 0,
                shutting_down: false,
                final_states,
            };
            let addr = sup.start();
            if let Some(e) = failure {
                addr.do_send(Shutdown);
                if let Ok(mut o) = outcome.lock() {
                    *o = Some(Err(e));
                }
                return;
            }
            let sig_addr = addr.clone();
            actix::spawn(async move {
                wait_for_signal().await;
                sig_addr.do_send(Shutdown);
            });
            on_start(NodeHandle { supervisor: addr, router, store, botnet });
            if let Ok(mut o) = outcome.lock() {
                *o = Some(Ok(()));
            }
        });
    }
    system.run()?;
    if let Some(c) = cluster {
        c.stop();
    }
    outcome
        .lock()
        .map_err(|_| anyhow::anyhow!("supervisor state lock poisoned"))?
        .take()
        .unwrap_or_else(|| Err(anyhow::anyhow!("the supervisor did not start")))?;
    let statuses = final_states.lock().map(|m| m.clone()).unwrap_or_default();
    let botnet = botnet.read().map_err(|_| anyhow::anyhow!("config lock poisoned"))?;
    let mut bots = Vec::new();
    for cfg in botnet.bots.iter().filter(|c| c.node.as_deref().is_none_or(|n| n == local)) {
        let now = store.counters(&cfg.id)?;
        let then = before.get(&cfg.id).copied().unwrap_or_default();
        let run = Counters {
            received: now.received.saturating_sub(then.received),
            sent: now.sent.saturating_sub(then.sent),
            dumped: now.dumped.saturating_sub(then.dumped),
            retries: now.retries.saturating_sub(then.retries),
        };
        let output = cfg
            .params
            .get("file")
            .and_then(|f| f.as_str())
            .filter(|_| cfg.module.starts_with("intelmq.bots.outputs."))
            .map(|f| crate::bots::resolve_path(&botnet.root, f).display().to_string());
        let state = statuses.get(&cfg.id).cloned().unwrap_or(RunState::Stopped);
        bots.push(BotSummary { id: cfg.id.clone(), module: cfg.module.clone(), state, run, output });
    }
    let dump_entries = store.dumps(None)?.len();
    Ok(RunSummary { root: botnet.root.clone(), bots, dump_entries, elapsed: started.elapsed() })
}

/// Resolves on SIGTERM or SIGINT.
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
