//! [`BotActor`]: one bot on its own Arbiter. Each step reads a batch from the inbox, runs the bot,
//! and commits the outputs, the acknowledgements, dumps, state and counters as one write.
//! Implements IntelMQ's error handling (`error_procedure`, `error_max_retries`,
//! `error_retry_delay`, `error_dump_message`, `error_log_message`, `error_log_exception`,
//! `_on_error`), `load_balance`, `rate_limit` and backpressure on `max_queue_length`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use base64::Engine as _;

use super::chunks::{ChunkCommitter, CHUNK, CURSOR_KEY};
use super::log::BotLogger;
use super::state::StepState;
use super::{BotShared, Router, RunState};
use crate::bots::collectors::{add_feed_fields, CollectorCommon};
use crate::bots::parsers::{run_parser, run_parser_chunked, ParserCommon};
use crate::bots::{Bot, BotError, BotLog, CollectorOutput, Context as BotContext, EventSink, Level, Outbox};
use crate::config::{BotConfig, ErrorProcedure, RunMode};
use crate::message::{Harmonization, Message, MessageKind};
use crate::store::{Counters, DumpEntry, Queued, Step, Store};

/// How often a bot blocked by a full destination queue looks again.
const BACKPRESSURE_POLL: Duration = Duration::from_millis(20);

/// Run a step now (new data in the inbox, a timer fired).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Wake;

/// Stop after the current step.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Stop;

/// Answered once the actor has started (its start-up has run).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Ping;

/// What a step ended with.
enum Outcome {
    /// More input may be waiting.
    More,
    /// The inbox is empty.
    Idle,
    /// A destination queue is above its watermark.
    Blocked,
    /// `rate_limit`: the next step is due after the delay.
    Pause(Duration),
    /// An error to retry after a delay; the message stays at the head of the inbox.
    RetryAfter(Duration),
    /// The collector's run is done; the next one is due after the delay (None: no more runs).
    Collected(Option<Duration>),
    /// The bot stops (error_procedure stop, fatal error, scheduled run done).
    Stop(Option<String>),
}

pub struct BotActor {
    cfg: BotConfig,
    bot: Bot,
    store: Arc<Store>,
    harmonization: Arc<Harmonization>,
    root: PathBuf,
    router: Arc<Router>,
    shared: Arc<BotShared>,
    log: BotLogger,
    counters: Counters,
    retries: u32,
    lb_next: HashMap<String, usize>,
    warned_paths: Vec<String>,
    parser_common: ParserCommon,
    collector_common: CollectorCommon,
    until_idle: bool,
    processed_since_log: u64,
    last_log: Instant,
    stopping: bool,
    /// While a retry delay runs, wake-ups from upstream do not start a step.
    retry_at: Option<Instant>,
    /// The bot debugger records what is sent: (path, queues, message JSON).
    sent_log: Option<Vec<(String, Vec<String>, String)>>,
    /// Consecutive waits for an unavailable far side (the delay doubles each time).
    backoffs: u32,
}

/// What one run of the bot debugger did (`intelmqctl run <bot> process`).
#[derive(Debug, Default)]
pub struct DebugRun {
    /// The processed message (wire JSON).
    pub input: String,
    /// (path, queues, message JSON) for every message sent, or that would be sent.
    pub sent: Vec<(String, Vec<String>, String)>,
    pub acknowledged: bool,
    pub log: Vec<String>,
    /// The error of a message that failed.
    pub error: Option<String>,
}

impl BotActor {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: BotConfig,
        bot: Bot,
        store: Arc<Store>,
        harmonization: Arc<Harmonization>,
        root: PathBuf,
        router: Arc<Router>,
        shared: Arc<BotShared>,
        log: BotLogger,
        until_idle: bool,
    ) -> Self {
        let counters = store.counters(&cfg.id).unwrap_or_default();
        let parser_common = ParserCommon {
            default_fields: cfg.common.default_fields.clone(),
            copy_collector_provided_fields: cfg.common.copy_collector_provided_fields.clone(),
        };
        let collector_common = CollectorCommon {
            name: cfg.common.feed_name.clone(),
            accuracy: cfg.common.feed_accuracy,
            code: cfg.common.feed_code.clone(),
            provider: cfg.common.feed_provider.clone(),
            documentation: cfg.common.feed_documentation.clone(),
        };
        BotActor {
            cfg,
            bot,
            store,
            harmonization,
            root,
            router,
            shared,
            log,
            counters,
            retries: 0,
            lb_next: HashMap::new(),
            warned_paths: Vec::new(),
            parser_common,
            collector_common,
            until_idle,
            processed_since_log: 0,
            last_log: Instant::now(),
            stopping: false,
            retry_at: None,
            sent_log: None,
            backoffs: 0,
        }
    }

    fn id(&self) -> &str {
        &self.cfg.id
    }

    /// Puts `msg` into the queues of `path` (fan-out, or round-robin with `load_balance`).
    fn route(&mut self, step: &mut Step, path: &str, msg: &Message) -> usize {
        if self.cfg.destination_queues.get(path).is_none_or(|q| q.is_empty()) {
            // The debugger still shows what would go to a path that is not wired.
            if let Some(log) = self.sent_log.as_mut() {
                log.push((path.to_string(), Vec::new(), msg.to_wire()));
            }
        }
        let Some(queues) = self.cfg.destination_queues.get(path) else {
            if path != "_on_error" && !self.warned_paths.iter().any(|p| p == path) {
                self.warned_paths.push(path.to_string());
                let text =
                    format!("Path {path:?} is not configured in destination_queues; messages sent to it are dropped.");
                self.log.log(Level::Warning, &text);
            }
            return 0;
        };
        if queues.is_empty() {
            return 0;
        }
        let data = msg.to_internal();
        if let Some(log) = self.sent_log.as_mut() {
            let json = String::from_utf8_lossy(&Message::payload(&data)).into_owned();
            let targets = if self.cfg.common.load_balance {
                let i = self.lb_next.get(path).copied().unwrap_or(0);
                vec![queues[i % queues.len()].clone()]
            } else {
                queues.clone()
            };
            log.push((path.to_string(), targets, json));
        }
        if self.cfg.common.load_balance {
            let i = self.lb_next.entry(path.to_string()).or_insert(0);
            let q = &queues[*i % queues.len()];
            *i = (*i + 1) % queues.len();
            step.put(q, data);
            1
        } else {
            for q in queues {
                step.put(q, data.clone());
            }
            queues.len()
        }
    }

    /// True when some destination queue is above its high watermark (for a queue of another
    /// node: its outbox here, waiting for the broker).
    fn blocked(&self) -> bool {
        let max = self.cfg.common.max_queue_length;
        max > 0 && self.cfg.destination_queues.values().flatten().any(|q| self.store.waiting(q) >= max)
    }

    fn dump_entry(&self, message: String, message_type: Option<String>, error: &str) -> DumpEntry {
        DumpEntry {
            bot_id: self.cfg.id.clone(),
            source_queue: self.cfg.source_queue.clone(),
            time: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
            traceback: error.lines().map(str::to_string).collect(),
            message,
            message_type,
        }
    }

    /// Logs an error the IntelMQ way.
    fn log_error(&mut self, err: &BotError, raw: &[u8]) {
        let text = if self.cfg.common.error_log_exception {
            format!("Bot has found a problem: {err}.")
        } else {
            format!("{err}.")
        };
        self.log.log(Level::Error, &text);
        if self.cfg.common.error_log_message {
            let text = format!("Current Message: {}", String::from_utf8_lossy(&Message::payload(raw)));
            self.log.log(Level::Info, &text);
        }
    }

    /// The far side is unavailable: wait with a doubling delay (from `error_retry_delay`, at most
    /// 5 minutes), keep the message, and say why in the status.
    fn backoff(&mut self, why: &str) -> Outcome {
        let base = self.cfg.common.error_retry_delay.max(0.05);
        let delay = (base * f64::from(1u32 << self.backoffs.min(12))).min(base.max(300.0));
        self.backoffs += 1;
        self.counters.retries += 1;
        let note = format!("waiting: {why} (attempt {}, next in {:.1} s)", self.backoffs, delay);
        let text = format!("The far side is unavailable, keeping the message and retrying in {delay:.1} s: {why}.");
        self.log.log(Level::Warning, &text);
        self.shared.set_note(Some(note));
        Outcome::RetryAfter(Duration::from_secs_f64(delay))
    }

    /// A step went through: clear any waiting note.
    fn recovered(&mut self) {
        if self.backoffs > 0 {
            self.backoffs = 0;
            self.shared.set_note(None);
            self.log.log(Level::Info, "The far side is available again.");
        }
    }

    /// Gives up on a message: dump, `_on_error`, ack. Returns true when the bot must stop.
    fn give_up(&mut self, step: &mut Step, q: &Queued, msg: Option<&Message>, err: &BotError) -> bool {
        let payload = Message::payload(&q.data);
        let (text, mtype) = match std::str::from_utf8(&payload) {
            Ok(s) if msg.is_some() || serde_json::from_str::<serde_json::Value>(s).is_ok() => (s.to_string(), None),
            _ => (base64::engine::general_purpose::STANDARD.encode(&payload), Some("base64".to_string())),
        };
        if self.cfg.common.error_dump_message {
            step.dump(self.dump_entry(text, mtype, &err.to_string()));
            self.counters.dumped += 1;
        } else {
            self.log.log(Level::Warning, "Message will not be dumped (error_dump_message is false).");
        }
        if let Some(m) = msg {
            self.counters.sent += self.route(step, "_on_error", m) as u64;
        }
        if let Some(src) = &self.cfg.source_queue {
            step.ack(src, q.seq);
            if matches!(self.bot, Bot::Parser(_)) {
                // Events of the report committed in chunks before the failure stay sent.
                step.state_delete(&self.cfg.id, CURSOR_KEY);
            }
        }
        self.retries = 0;
        self.cfg.common.error_procedure == ErrorProcedure::Stop
    }

    fn ctx<'a>(
        bot_id: &'a str,
        harmonization: &'a Arc<Harmonization>,
        root: &'a std::path::Path,
        state: &'a mut StepState<'_>,
        log: &'a mut BotLogger,
    ) -> BotContext<'a> {
        BotContext { bot_id, harmonization, root, state, log, clock: &crate::bots::SystemClock }
    }

    /// One step over the inbox (parsers, experts, outputs).
    fn step_inbox(&mut self) -> Result<Outcome, String> {
        let Some(src) = self.cfg.source_queue.clone() else {
            return Ok(Outcome::Idle);
        };
        if self.blocked() {
            return Ok(Outcome::Blocked);
        }
        // With a rate limit, IntelMQ processes one message and then sleeps.
        let rate_limit = self.cfg.common.rate_limit.filter(|r| *r > 0.0).map(Duration::from_secs_f64);
        // A report can hold a whole feed: parsers take one per step, so their events reach the
        // next bot as soon as each report is done.
        let one = rate_limit.is_some() || matches!(self.bot, Bot::Parser(_));
        let max = if one { 1 } else { self.cfg.common.batch_size.max(1) };
        let batch = self.store.read(&src, max).map_err(|e| e.to_string())?;
        if batch.is_empty() {
            return Ok(Outcome::Idle);
        }
        let store = self.store.clone();
        let id = self.cfg.id.clone();
        let harmonization = self.harmonization.clone();
        let root = self.root.clone();
        let mut state = StepState::new(&store, &id);
        let mut step = Step::new();
        let mut outcome = Outcome::More;
        let default_kind = match self.bot {
            Bot::Parser(_) => MessageKind::Report,
            _ => MessageKind::Event,
        };
        let mut done = 0usize;

        if let Bot::Output(_) = self.bot {
            outcome = self.step_output(&batch, &mut state, &mut step, &id, &harmonization, &root);
        } else {
            for q in &batch {
                self.counters.received += 1;
                let msg = match Message::decode(harmonization.clone(), &q.data, Some(default_kind)) {
                    Ok(m) => m,
                    Err(e) => {
                        let err = BotError::Field(e);
                        self.log_error(&err, &q.data);
                        if self.give_up(&mut step, q, None, &err) {
                            outcome = Outcome::Stop(Some(err.to_string()));
                            break;
                        }
                        continue;
                    }
                };
                let report = Some((q.seq, q.data.len() as u64));
                let result = self.process_one(msg, report, &mut state, &mut step, &id, &harmonization, &root);
                match result {
                    Ok(()) => {
                        state.keep();
                        step.ack(&src, q.seq);
                        self.retries = 0;
                        self.recovered();
                        done += 1;
                    }
                    Err(BotError::Unavailable(why)) => {
                        state.rollback();
                        outcome = self.backoff(&why);
                        break;
                    }
                    Err(err) => {
                        state.rollback();
                        self.log_error(&err, &q.data);
                        if err.is_data_error()
                            || matches!(err, BotError::Fatal(_))
                            || self.retries >= self.cfg.common.error_max_retries
                        {
                            let fatal = matches!(err, BotError::Fatal(_));
                            // The bot consumed the message; read it again for `_on_error`.
                            let msg = Message::decode(harmonization.clone(), &q.data, Some(default_kind)).ok();
                            if self.give_up(&mut step, q, msg.as_ref(), &err) || fatal {
                                outcome = Outcome::Stop(Some(err.to_string()));
                                break;
                            }
                        } else {
                            self.retries += 1;
                            self.counters.retries += 1;
                            outcome = Outcome::RetryAfter(Duration::from_secs_f64(
                                self.cfg.common.error_retry_delay.max(0.0),
                            ));
                            break;
                        }
                    }
                }
            }
        }
        state.write_into(&mut step);
        step.counters(&id, self.counters);
        let puts = step.put_counts().into_iter().map(|(q, _)| q.to_string()).collect::<Vec<_>>();
        self.store.commit(step).map_err(|e| e.to_string())?;
        self.router.wake(&puts);
        self.note_processed(done as u64);
        if self.cfg.run_mode == RunMode::Scheduled && !matches!(outcome, Outcome::RetryAfter(_)) {
            return Ok(Outcome::Stop(None));
        }
        if let (Outcome::More, Some(d)) = (&outcome, rate_limit) {
            return Ok(Outcome::Pause(d));
        }
        Ok(outcome)
    }

    /// Runs the bot on one message. `report`: the sequence number and size of a report taken
    /// from the inbox (a parser then commits its events in chunks).
    #[allow(clippy::too_many_arguments)]
    fn process_one(
        &mut self,
        msg: Message,
        report: Option<(u64, u64)>,
        state: &mut StepState<'_>,
        step: &mut Step,
        id: &str,
        harmonization: &Arc<Harmonization>,
        root: &std::path::Path,
    ) -> Result<(), BotError> {
        match &mut self.bot {
            Bot::Expert(bot) => {
                let mut out = Outbox::default();
                {
                    let mut ctx = Self::ctx(id, harmonization, root, state, &mut self.log);
                    caught(|| bot.process(msg, &mut ctx, &mut out))?;
                }
                for (path, m) in &out.sent {
                    self.counters.sent += self.route(step, path, m) as u64;
                }
                Ok(())
            }
            Bot::Parser(bot) => {
                let queues = self.cfg.destination_queues.get("_default").filter(|q| !q.is_empty());
                let parsed = match (report, queues) {
                    // A report taken from the inbox: its events go on in chunks as it is parsed.
                    (Some((seq, size)), Some(queues)) if self.sent_log.is_none() => {
                        let lb = self.lb_next.get("_default").copied().unwrap_or(0);
                        let (store, router) = (self.store.clone(), self.router.clone());
                        let mut chunks = ChunkCommitter::new(
                            &store,
                            &router,
                            id,
                            queues,
                            self.cfg.common.load_balance,
                            lb,
                            seq,
                            size,
                            self.counters,
                        );
                        let result = {
                            let mut ctx = Self::ctx(id, harmonization, root, state, &mut self.log);
                            let common = &self.parser_common;
                            let sink: Option<(&mut dyn EventSink, usize)> = Some((&mut chunks, CHUNK));
                            caught(|| run_parser_chunked(bot.as_mut(), &msg, common, &mut ctx, sink))
                        };
                        self.counters = chunks.counters;
                        let mut parsed = result?;
                        chunks.route_into(step, std::mem::take(&mut parsed.events));
                        chunks.finish(step);
                        self.counters = chunks.counters;
                        self.lb_next.insert("_default".to_string(), chunks.lb_next());
                        parsed
                    }
                    _ => {
                        let parsed = {
                            let mut ctx = Self::ctx(id, harmonization, root, state, &mut self.log);
                            let common = &self.parser_common;
                            caught(|| run_parser(bot.as_mut(), &msg, common, &mut ctx))?
                        };
                        for ev in &parsed.events {
                            self.counters.sent += self.route(step, "_default", ev) as u64;
                        }
                        parsed
                    }
                };
                for (report, error) in &parsed.failed {
                    if self.cfg.common.error_dump_message {
                        step.dump(self.dump_entry(report.to_wire(), None, error));
                        self.counters.dumped += 1;
                    }
                    self.counters.sent += self.route(step, "_on_error", report) as u64;
                }
                Ok(())
            }
            Bot::Collector(_) | Bot::Output(_) => Ok(()),
        }
    }

    fn step_output(
        &mut self,
        batch: &[Queued],
        state: &mut StepState<'_>,
        step: &mut Step,
        id: &str,
        harmonization: &Arc<Harmonization>,
        root: &std::path::Path,
    ) -> Outcome {
        let Some(src) = self.cfg.source_queue.clone() else {
            return Outcome::Idle;
        };
        let mut events = Vec::with_capacity(batch.len());
        let mut good: Vec<&Queued> = Vec::with_capacity(batch.len());
        for q in batch {
            self.counters.received += 1;
            match Message::decode(harmonization.clone(), &q.data, Some(MessageKind::Event)) {
                Ok(m) => {
                    events.push(m);
                    good.push(q);
                }
                Err(e) => {
                    let err = BotError::Field(e);
                    self.log_error(&err, &q.data);
                    if self.give_up(step, q, None, &err) {
                        return Outcome::Stop(Some(err.to_string()));
                    }
                }
            }
        }
        if events.is_empty() {
            return Outcome::More;
        }
        // Write the whole batch; on failure write one by one to find the culprit.
        let Bot::Output(bot) = &mut self.bot else {
            return Outcome::Idle;
        };
        let whole = {
            let mut ctx = Self::ctx(id, harmonization, root, state, &mut self.log);
            caught(|| bot.write(&events, &mut ctx))
        };
        match whole {
            Ok(()) => {
                state.keep();
                for q in &good {
                    step.ack(&src, q.seq);
                }
                self.retries = 0;
                self.recovered();
                self.counters.sent += events.len() as u64;
                return Outcome::More;
            }
            Err(BotError::Unavailable(why)) => {
                state.rollback();
                return self.backoff(&why);
            }
            Err(_) => {}
        }
        state.rollback();
        for (ev, q) in events.iter().zip(good) {
            let result = {
                let Bot::Output(bot) = &mut self.bot else {
                    return Outcome::Idle;
                };
                let mut ctx = Self::ctx(id, harmonization, root, state, &mut self.log);
                caught(|| bot.write(std::slice::from_ref(ev), &mut ctx))
            };
            match result {
                Ok(()) => {
                    state.keep();
                    step.ack(&src, q.seq);
                    self.retries = 0;
                    self.recovered();
                    self.counters.sent += 1;
                }
                Err(BotError::Unavailable(why)) => {
                    state.rollback();
                    return self.backoff(&why);
                }
                Err(err) => {
                    state.rollback();
                    self.log_error(&err, &q.data);
                    if err.is_data_error()
                        || matches!(err, BotError::Fatal(_))
                        || self.retries >= self.cfg.common.error_max_retries
                    {
                        let fatal = matches!(err, BotError::Fatal(_));
                        if self.give_up(step, q, Some(ev), &err) || fatal {
                            return Outcome::Stop(Some(err.to_string()));
                        }
                    } else {
                        self.retries += 1;
                        self.counters.retries += 1;
                        return Outcome::RetryAfter(Duration::from_secs_f64(
                            self.cfg.common.error_retry_delay.max(0.0),
                        ));
                    }
                }
            }
        }
        Outcome::More
    }

    /// The time between two collector runs: `rate_limit` as configured, else the module's own
    /// default (e.g. 300 s for the file collector, 3600 s for HTTP). 0 means "again at once", as in
    /// IntelMQ; a floor of 100 ms keeps an idle collector from spinning.
    fn collect_interval(&self) -> Duration {
        let configured = self.cfg.common.rate_limit.or_else(|| {
            crate::bots::registry::find(&self.cfg.module)
                .and_then(|e| (e.defaults)().get("rate_limit").and_then(serde_json::Value::as_f64))
        });
        Duration::from_secs_f64(configured.unwrap_or(300.0).max(0.1))
    }

    /// One collector run.
    fn step_collect(&mut self) -> Result<Outcome, String> {
        if self.blocked() {
            return Ok(Outcome::Blocked);
        }
        let store = self.store.clone();
        let id = self.cfg.id.clone();
        let harmonization = self.harmonization.clone();
        let root = self.root.clone();
        let mut state = StepState::new(&store, &id);
        let mut step = Step::new();
        let mut out = CollectorOutput::default();
        let interval = Some(self.collect_interval());
        let result = {
            let Bot::Collector(bot) = &mut self.bot else {
                return Ok(Outcome::Idle);
            };
            let mut ctx = Self::ctx(&id, &harmonization, &root, &mut state, &mut self.log);
            caught(|| bot.collect(&mut ctx, &mut out))
        };
        if let Err(BotError::Unavailable(why)) = &result {
            state.rollback();
            return Ok(self.backoff(why));
        }
        if let Err(err) = result {
            state.rollback();
            self.log_error(&err, b"");
            if matches!(err, BotError::Fatal(_)) {
                return Ok(Outcome::Stop(Some(err.to_string())));
            }
            if self.retries < self.cfg.common.error_max_retries {
                self.retries += 1;
                self.counters.retries += 1;
                return Ok(Outcome::RetryAfter(Duration::from_secs_f64(self.cfg.common.error_retry_delay.max(0.0))));
            }
            self.retries = 0;
            if self.cfg.common.error_procedure == ErrorProcedure::Stop {
                return Ok(Outcome::Stop(Some(err.to_string())));
            }
            return Ok(Outcome::Collected(interval));
        }
        self.retries = 0;
        self.recovered();
        let mut sent = 0u64;
        for mut report in out.reports {
            if report.get("raw").is_none() {
                self.log.log(
                    Level::Warning,
                    "Ignoring report without raw field. Possible bug or misconfiguration of this bot.",
                );
                continue;
            }
            if let Err(e) = add_feed_fields(&mut report, &self.collector_common) {
                let text = format!("Cannot add the feed fields to a report: {e}.");
                self.log.log(Level::Error, &text);
                return Ok(Outcome::Stop(Some(e.to_string())));
            }
            self.counters.received += 1;
            sent += self.route(&mut step, "_default", &report) as u64;
        }
        for message in out.unchanged {
            self.counters.received += 1;
            sent += self.route(&mut step, "_default", &message) as u64;
        }
        self.counters.sent += sent;
        state.write_into(&mut step);
        step.counters(&id, self.counters);
        let puts = step.put_counts().into_iter().map(|(q, _)| q.to_string()).collect::<Vec<_>>();
        self.store.commit(step).map_err(|e| e.to_string())?;
        self.router.wake(&puts);
        {
            let mut state = StepState::new(&store, &id);
            let Bot::Collector(bot) = &mut self.bot else {
                return Ok(Outcome::Idle);
            };
            let mut ctx = Self::ctx(&id, &harmonization, &root, &mut state, &mut self.log);
            let cleanup = caught(|| bot.committed(&mut ctx));
            let mut step = Step::new();
            state.write_into(&mut step);
            self.store.commit(step).map_err(|e| e.to_string())?;
            if let Err(e) = cleanup {
                let text = format!("Cleaning up after the run failed: {e}.");
                self.log.log(Level::Error, &text);
                if matches!(e, BotError::Fatal(_)) {
                    return Ok(Outcome::Stop(Some(e.to_string())));
                }
            }
        }
        if sent > 0 {
            let text = format!("Processed {sent} messages since last logging.");
            self.log.log(Level::Info, &text);
        }
        if self.cfg.run_mode == RunMode::Scheduled || self.until_idle {
            return Ok(Outcome::Collected(None));
        }
        Ok(Outcome::Collected(interval))
    }

    /// The bot debugger: runs one message through the bot, outside the actor loop. `given`: the
    /// message to use; `None`: the next message of the inbox (acknowledged unless `dryrun`).
    /// `Err` only for what stops the run before the bot sees a message.
    pub fn debug_run(&mut self, given: Option<Vec<u8>>, dryrun: bool) -> Result<DebugRun, String> {
        self.sent_log = Some(Vec::new());
        let store = self.store.clone();
        let id = self.cfg.id.clone();
        let harmonization = self.harmonization.clone();
        let root = self.root.clone();
        let mut run = DebugRun::default();
        let mut state = StepState::new(&store, &id);
        let mut step = Step::new();

        if let Bot::Collector(bot) = &mut self.bot {
            let mut out = CollectorOutput::default();
            let result = {
                let mut ctx = Self::ctx(&id, &harmonization, &root, &mut state, &mut self.log);
                caught(|| bot.collect(&mut ctx, &mut out))
            };
            if let Err(e) = result {
                run.error = Some(e.to_string());
            }
            for mut report in out.reports {
                if let Err(e) = add_feed_fields(&mut report, &self.collector_common) {
                    run.error = Some(e.to_string());
                    break;
                }
                self.route(&mut step, "_default", &report);
            }
            for message in out.unchanged {
                self.route(&mut step, "_default", &message);
            }
        } else {
            let (data, from_inbox) = match given {
                Some(d) => (d, None),
                None => {
                    let src = self.cfg.source_queue.clone().ok_or("this bot has no inbox")?;
                    let q = self.store.read(&src, 1).map_err(|e| e.to_string())?.pop();
                    let q = q.ok_or_else(|| format!("the inbox `{src}` of bot `{id}` is empty"))?;
                    (q.data.clone(), Some((src, q.seq)))
                }
            };
            run.input = String::from_utf8_lossy(&Message::payload(&data)).into_owned();
            let kind = if matches!(self.bot, Bot::Parser(_)) { MessageKind::Report } else { MessageKind::Event };
            match Message::decode(harmonization.clone(), &data, Some(kind)) {
                Err(e) => run.error = Some(e.to_string()),
                Ok(msg) => {
                    run.input = msg.to_wire();
                    self.counters.received += 1;
                    let result = if let Bot::Output(bot) = &mut self.bot {
                        if dryrun {
                            self.log.log(Level::Info, "DRYRUN: Message would be written by the output now!");
                            Ok(())
                        } else {
                            let mut ctx = Self::ctx(&id, &harmonization, &root, &mut state, &mut self.log);
                            caught(|| bot.write(std::slice::from_ref(&msg), &mut ctx))
                        }
                    } else {
                        self.process_one(msg, None, &mut state, &mut step, &id, &harmonization, &root)
                    };
                    match result {
                        Ok(()) => {
                            state.keep();
                            if matches!(self.bot, Bot::Output(_)) && !dryrun {
                                self.counters.sent += 1;
                            }
                            if let Some((src, seq)) = &from_inbox {
                                step.ack(src, *seq);
                                run.acknowledged = !dryrun;
                            }
                        }
                        Err(e) => {
                            state.rollback();
                            run.error = Some(e.to_string());
                        }
                    }
                }
            }
        }
        run.sent = self.sent_log.take().unwrap_or_default();
        if dryrun {
            for (path, _, _) in &run.sent {
                let text = format!("DRYRUN: Message would be sent now to '{path}'!");
                self.log.log(Level::Info, &text);
            }
            if run.error.is_none() && !matches!(self.bot, Bot::Collector(_)) {
                self.log.log(Level::Info, "DRYRUN: Message would be acknowledged now!");
            }
        } else {
            state.write_into(&mut step);
            if from_counters_changed(&run) {
                step.counters(&id, self.counters);
            }
            let puts = step.put_counts().into_iter().map(|(q, _)| q.to_string()).collect::<Vec<_>>();
            self.store.commit(step).map_err(|e| e.to_string())?;
            self.router.wake(&puts);
        }
        run.log = self.log.take_captured();
        Ok(run)
    }

    /// Runs the start hook outside the actor (offline runs).
    pub fn start_offline(&mut self) -> Result<(), String> {
        self.start_bot()
    }

    /// The bot's start hook (outputs); its state writes commit before the first step.
    fn start_bot(&mut self) -> Result<(), String> {
        let store = self.store.clone();
        let id = self.cfg.id.clone();
        let harmonization = self.harmonization.clone();
        let root = self.root.clone();
        let mut state = StepState::new(&store, &id);
        if let Bot::Output(bot) = &mut self.bot {
            let mut ctx = Self::ctx(&id, &harmonization, &root, &mut state, &mut self.log);
            caught(|| bot.start(&mut ctx)).map_err(|e| e.to_string())?;
        }
        let mut step = Step::new();
        state.write_into(&mut step);
        self.store.commit(step).map_err(|e| e.to_string())
    }

    fn note_processed(&mut self, n: u64) {
        self.processed_since_log += n;
        let c = &self.cfg.common;
        let due = (c.log_processed_messages_count > 0 && self.processed_since_log >= c.log_processed_messages_count)
            || (self.processed_since_log > 0 && self.last_log.elapsed().as_secs() >= c.log_processed_messages_seconds);
        if due {
            let verb = if self.cfg.module.contains("deduplicator") || self.cfg.module.contains("filter") {
                "Forwarded"
            } else {
                "Processed"
            };
            let text = format!("{verb} {} messages since last logging.", self.processed_since_log);
            self.log.log(Level::Info, &text);
            self.processed_since_log = 0;
            self.last_log = Instant::now();
        }
    }

    fn run_step(&mut self, ctx: &mut actix::Context<Self>) {
        if self.stopping {
            return;
        }
        if let Some(at) = self.retry_at {
            if Instant::now() < at {
                return;
            }
            self.retry_at = None;
        }
        self.shared.busy.store(true, Ordering::Release);
        self.shared.notified.store(false, Ordering::Release);
        let outcome = if matches!(self.bot, Bot::Collector(_)) { self.step_collect() } else { self.step_inbox() };
        match outcome {
            Ok(Outcome::More) => ctx.notify(Wake),
            Ok(Outcome::Idle) => {}
            Ok(Outcome::Blocked) => {
                ctx.notify_later(Wake, BACKPRESSURE_POLL);
            }
            Ok(Outcome::Pause(d)) => {
                self.retry_at = Some(Instant::now() + d);
                ctx.notify_later(Wake, d);
            }
            Ok(Outcome::RetryAfter(d)) => {
                let text = format!(
                    "Retrying in {:.1} s (attempt {} of {}).",
                    d.as_secs_f64(),
                    self.retries,
                    self.cfg.common.error_max_retries
                );
                self.log.log(Level::Info, &text);
                self.retry_at = Some(Instant::now() + d);
                ctx.notify_later(Wake, d);
            }
            Ok(Outcome::Collected(next)) => {
                self.shared.collected.store(true, Ordering::Release);
                if let Some(d) = next {
                    ctx.notify_later(Wake, d);
                }
            }
            Ok(Outcome::Stop(reason)) => {
                self.stop_bot(ctx, reason);
            }
            Err(store_err) => {
                let text = format!("Store failure, stopping: {store_err}.");
                self.log.log(Level::Critical, &text);
                self.stop_bot(ctx, Some(format!("store failure: {store_err}")));
            }
        }
        self.shared.busy.store(false, Ordering::Release);
    }

    fn stop_bot(&mut self, ctx: &mut actix::Context<Self>, reason: Option<String>) {
        self.stopping = true;
        let state = match &reason {
            Some(r) => RunState::Failed(r.clone()),
            None => RunState::Stopped,
        };
        self.shared.set_state(state);
        self.log.log(Level::Info, "Bot stopped.");
        ctx.stop();
    }
}

/// Whether a debug run processed something whose counters belong in the store.
fn from_counters_changed(run: &DebugRun) -> bool {
    run.error.is_none() || !run.sent.is_empty()
}

/// Runs bot code, turning a panic into a fatal error so the node keeps running.
fn caught<T>(f: impl FnOnce() -> Result<T, BotError>) -> Result<T, BotError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let text = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(BotError::Fatal(format!("bot panicked: {text}")))
        }
    }
}

impl Actor for BotActor {
    type Context = actix::Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let text = format!(
            "{} initialized with id {} and intelmq-rs {}.",
            self.cfg.module,
            self.id(),
            env!("CARGO_PKG_VERSION")
        );
        self.log.log(Level::Info, &text);
        self.log.log(Level::Info, "Bot is starting.");
        if let Err(reason) = self.start_bot() {
            let text = format!("Bot initialization failed: {reason}.");
            self.log.log(Level::Error, &text);
            self.stop_bot(ctx, Some(reason));
            return;
        }
        self.shared.set_state(RunState::Running);
        self.log.log(Level::Info, "Bot initialization completed.");
    }
}

impl Handler<Wake> for BotActor {
    type Result = ();
    fn handle(&mut self, _: Wake, ctx: &mut Self::Context) {
        self.run_step(ctx);
    }
}

impl Handler<Stop> for BotActor {
    type Result = ();
    fn handle(&mut self, _: Stop, ctx: &mut Self::Context) {
        self.stop_bot(ctx, None);
    }
}

impl Handler<Ping> for BotActor {
    type Result = ();
    fn handle(&mut self, _: Ping, _ctx: &mut Self::Context) {}
}
