//! The supervisor: builds every bot of this node, starts one [`BotActor`] per bot on its own
//! Arbiter, wires the wake-ups, restarts a bot whose code panicked (with backoff), watches for
//! idleness (`--until-idle`) and for SIGTERM/SIGINT, and stops everything cleanly.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::bot_actor::{BotActor, Stop, Wake};
use super::log::BotLogger;
use super::{build, open_store, BotShared, BotSummary, Mode, Router, RunState, RunSummary};
use crate::bots::{Bot, Level};
use crate::config::{BotConfig, Botnet};
use crate::store::{Counters, Store};

/// How often the supervisor looks at its bots.
const TICK: Duration = Duration::from_millis(25);
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

struct Supervisor {
    botnet: Arc<Botnet>,
    store: Arc<Store>,
    router: Arc<Router>,
    bots: Vec<Running>,
    mode: Mode,
    idle_ticks: u32,
    shutting_down: bool,
}

#[derive(Message)]
#[rtype(result = "()")]
struct Shutdown;

fn start_actor(
    botnet: &Botnet,
    store: &Arc<Store>,
    router: &Arc<Router>,
    cfg: &BotConfig,
    bot: Bot,
    shared: &Arc<BotShared>,
    until_idle: bool,
) -> anyhow::Result<(Arbiter, Addr<BotActor>)> {
    let level = Level::parse(&cfg.common.logging_level).unwrap_or(Level::Info);
    let logger = BotLogger::open(&botnet.root.join("var/log"), &cfg.id, level)
        .map_err(|e| anyhow::anyhow!("cannot open the log of bot `{}`: {e}", cfg.id))?;
    let arbiter = Arbiter::new();
    let (cfg2, store2, harm, root, router2, shared2) =
        (cfg.clone(), store.clone(), botnet.harmonization.clone(), botnet.root.clone(), router.clone(), shared.clone());
    let addr = BotActor::start_in_arbiter(&arbiter.handle(), move |_| {
        BotActor::new(cfg2, bot, store2, harm, root, router2, shared2, logger, until_idle)
    });
    Ok((arbiter, addr))
}

impl Supervisor {
    /// True when nothing is left to do: collectors ran, no bot is busy, no live consumer has input.
    fn idle(&self) -> bool {
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
                    let delay = Duration::from_secs(1 << b.restarts.min(5));
                    tracing::warn!(bot_id = %b.cfg.id, reason = %reason, delay_s = delay.as_secs(), "bot crashed, restarting");
                    b.restart_at = Some(now + delay);
                }
                Some(at) if now >= at => {
                    b.restart_at = None;
                    b.restarts += 1;
                    let bot = match build(&b.cfg) {
                        Ok(bot) => bot,
                        Err(e) => {
                            b.shared.set_state(RunState::Failed(e.to_string()));
                            continue;
                        }
                    };
                    if let Some(a) = b.arbiter.take() {
                        a.stop();
                    }
                    b.shared.set_state(RunState::Starting);
                    let (cfg, shared) = (b.cfg.clone(), b.shared.clone());
                    match start_actor(
                        &self.botnet,
                        &self.store,
                        &self.router,
                        &cfg,
                        bot,
                        &shared,
                        self.mode == Mode::UntilIdle,
                    ) {
                        Ok((arb, addr)) => {
                            if let Some(q) = &cfg.source_queue {
                                self.router.register(q, shared.clone(), addr.clone().recipient());
                            }
                            addr.do_send(Wake);
                            let b = &mut self.bots[i];
                            b.arbiter = Some(arb);
                            b.addr = Some(addr);
                        }
                        Err(e) => shared.set_state(RunState::Failed(e.to_string())),
                    }
                }
                Some(_) => {}
            }
        }
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(TICK, |sup, ctx| {
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

impl Handler<Shutdown> for Supervisor {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: Shutdown, _ctx: &mut Self::Context) -> Self::Result {
        self.shutting_down = true;
        let addrs: Vec<Addr<BotActor>> = self.bots.iter().filter_map(|b| b.addr.clone()).collect();
        let fut = async move {
            for a in addrs {
                let _ = a.send(Stop).await;
            }
        };
        Box::pin(fut.into_actor(self).map(|_, sup, _| {
            for b in &mut sup.bots {
                if let Some(a) = b.arbiter.take() {
                    a.stop();
                }
            }
            if let Err(e) = sup.store.sync() {
                tracing::error!(error = %e, "final store sync failed");
            }
            System::current().stop();
        }))
    }
}

pub(super) fn run(botnet: Botnet, mode: Mode) -> anyhow::Result<RunSummary> {
    let started = Instant::now();
    super::validate(&botnet)?;
    let store = open_store(&botnet)?;
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
    let botnet = Arc::new(botnet);
    let outcome: Arc<Mutex<Option<anyhow::Result<Vec<(BotConfig, Arc<BotShared>)>>>>> = Arc::new(Mutex::new(None));
    let system = System::new();
    {
        let (botnet, store, outcome) = (botnet.clone(), store.clone(), outcome.clone());
        system.block_on(async move {
            let router = Arc::new(Router::default());
            let mut bots = Vec::new();
            let mut failure = None;
            for (cfg, bot) in built {
                let shared = Arc::new(BotShared::new());
                let Some(bot) = bot else {
                    shared.set_state(RunState::Disabled);
                    bots.push(Running { cfg, shared, addr: None, arbiter: None, restarts: 0, restart_at: None });
                    continue;
                };
                match start_actor(&botnet, &store, &router, &cfg, bot, &shared, mode == Mode::UntilIdle) {
                    Ok((arbiter, addr)) => {
                        if let Some(q) = &cfg.source_queue {
                            router.register(q, shared.clone(), addr.clone().recipient());
                        }
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
                        failure = Some(e);
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
            let report: Vec<(BotConfig, Arc<BotShared>)> =
                bots.iter().map(|b| (b.cfg.clone(), b.shared.clone())).collect();
            let sup = Supervisor { botnet, store, router, bots, mode, idle_ticks: 0, shutting_down: false };
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
            if let Ok(mut o) = outcome.lock() {
                *o = Some(Ok(report));
            }
        });
    }
    system.run()?;
    let report = outcome
        .lock()
        .map_err(|_| anyhow::anyhow!("supervisor state lock poisoned"))?
        .take()
        .unwrap_or_else(|| Err(anyhow::anyhow!("the supervisor did not start")))?;
    let mut bots = Vec::new();
    for (cfg, shared) in report {
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
        bots.push(BotSummary { id: cfg.id.clone(), module: cfg.module.clone(), state: shared.state(), run, output });
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
