//! The bots: one trait per kind (collector, parser, expert, output) and one explicit registry.
//!
//! Bot code is pure: it sees messages, its parameters and the small [`BotState`] and [`BotLog`]
//! traits, never actix, tokio or RocksDB. The runtime wraps each bot in an actor, feeds it from its
//! inbox and commits what it sends, its state and the acknowledgement in one write. Depends on
//! `message` only.

pub mod collectors;
pub mod experts;
pub mod outputs;
pub mod parsers;
pub mod registry;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::message::{FieldError, Harmonization, Message};

/// What kind of bot a module is (IntelMQ's `group`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum BotKind {
    Collector,
    Parser,
    Expert,
    Output,
}

impl BotKind {
    /// IntelMQ's group name: `Collector`, `Parser`, `Expert`, `Output`.
    pub fn as_str(self) -> &'static str {
        match self {
            BotKind::Collector => "Collector",
            BotKind::Parser => "Parser",
            BotKind::Expert => "Expert",
            BotKind::Output => "Output",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "Collector" => Some(BotKind::Collector),
            "Parser" => Some(BotKind::Parser),
            "Expert" => Some(BotKind::Expert),
            "Output" => Some(BotKind::Output),
            _ => None,
        }
    }
}

/// A bot's error says what should happen to the message (IntelMQ `error_procedure`).
#[derive(Debug, thiserror::Error)]
pub enum BotError {
    /// The input is bad (harmonization violation, undecodable data): dump it, go on, no retry.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// A field could not be set: like `Invalid`.
    #[error(transparent)]
    Field(#[from] FieldError),
    /// Something that may pass (a busy file, a glitch): retried `error_max_retries` times, then
    /// handled by `error_procedure` (IntelMQ's generic exception).
    #[error("{0}")]
    Transient(String),
    /// The far side (database, broker, server) cannot be reached or refuses for now: the message
    /// stays in the inbox and the bot retries with growing delays for as long as it takes; status
    /// shows why. Nothing is dumped or dropped.
    #[error("{0}")]
    Unavailable(String),
    /// The bot cannot work (bad parameters, missing file): stop it.
    #[error("{0}")]
    Fatal(String),
}

impl BotError {
    /// Errors whose message is dumped at once, without retries (IntelMQ: `InvalidValue`,
    /// `DecodingError`).
    pub fn is_data_error(&self) -> bool {
        matches!(self, BotError::Invalid(_) | BotError::Field(_))
    }
}

/// A bot's parameters could not be used.
#[derive(Debug, thiserror::Error)]
#[error("parameter `{key}`: {reason}")]
pub struct ParamError {
    pub key: String,
    pub reason: String,
}

impl ParamError {
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ParamError { key: key.into(), reason: reason.into() }
    }
}

/// Per-bot persistent state (dedup caches, collector cursors, output offsets). Writes become part
/// of the same atomic commit as the bot's outputs and the acknowledgement of its inputs.
pub trait BotState {
    /// The value of `key`, if set and not expired.
    fn get(&self, key: &[u8]) -> Option<Vec<u8>>;
    /// Sets `key`; with a TTL it expires after that long.
    fn put(&mut self, key: &[u8], value: &[u8], ttl: Option<Duration>);
    /// Removes `key`.
    fn delete(&mut self, key: &[u8]);
}

/// Log levels of the per-bot log file (IntelMQ's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Debug,
    Info,
    Warning,
    Error,
    Critical,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
            Level::Critical => "CRITICAL",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "DEBUG" => Some(Level::Debug),
            "INFO" => Some(Level::Info),
            "WARNING" | "WARN" => Some(Level::Warning),
            "ERROR" => Some(Level::Error),
            "CRITICAL" => Some(Level::Critical),
            _ => None,
        }
    }
}

/// Where a bot writes its log lines (the runtime writes them to `var/log/<bot-id>.log`).
pub trait BotLog {
    fn log(&mut self, level: Level, message: &str);
}

/// A [`BotLog`] that keeps the lines in memory (tests, `intelmqctl run`).
#[derive(Default, Debug)]
pub struct MemoryLog {
    pub lines: Vec<(Level, String)>,
}

impl BotLog for MemoryLog {
    fn log(&mut self, level: Level, message: &str) {
        self.lines.push((level, message.to_string()));
    }
}

/// A [`BotState`] in memory (tests, dry runs).
#[derive(Default, Debug)]
pub struct MemoryState {
    pub entries: std::collections::HashMap<Vec<u8>, Vec<u8>>,
}

impl BotState for MemoryState {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.entries.get(key).cloned()
    }
    fn put(&mut self, key: &[u8], value: &[u8], _ttl: Option<Duration>) {
        self.entries.insert(key.to_vec(), value.to_vec());
    }
    fn delete(&mut self, key: &[u8]) {
        self.entries.remove(key);
    }
}

/// Where bots read the current time. The runtime gives the system clock; replays and tests give
/// a clock standing at the instant they need (relative time windows, aggregation timespans).
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock (`Utc::now()`); `&SystemClock` is a `&'static dyn Clock`.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock standing still at one instant (replays, tests).
#[derive(Clone, Copy, Debug)]
pub struct FixedClock(pub DateTime<Utc>);

impl FixedClock {
    /// A clock at an RFC 3339 time (`2026-11-28T06:09:20Z`); `None` if `text` is not one.
    pub fn parse(text: &str) -> Option<Self> {
        DateTime::parse_from_rfc3339(text).ok().map(|t| FixedClock(t.with_timezone(&Utc)))
    }

    /// This clock moved forward by `seconds` (backwards when negative).
    pub fn advanced(self, seconds: i64) -> Self {
        FixedClock(self.0 + chrono::Duration::seconds(seconds))
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// What a bot gets besides its input for one step.
pub struct Context<'a> {
    pub bot_id: &'a str,
    pub harmonization: &'a Arc<Harmonization>,
    /// The node's root directory (relative paths in parameters resolve against it).
    pub root: &'a Path,
    pub state: &'a mut dyn BotState,
    pub log: &'a mut dyn BotLog,
    /// The current time: bots ask `ctx.now()` instead of the system clock.
    pub clock: &'a dyn Clock,
}

impl<'a> Context<'a> {
    /// A context on the system clock.
    pub fn new(
        bot_id: &'a str,
        harmonization: &'a Arc<Harmonization>,
        root: &'a Path,
        state: &'a mut dyn BotState,
        log: &'a mut dyn BotLog,
    ) -> Self {
        Context { bot_id, harmonization, root, state, log, clock: &SystemClock }
    }
}

impl Context<'_> {
    /// A path parameter resolved against the root (absolute paths stay as they are).
    pub fn resolve(&self, path: &str) -> PathBuf {
        resolve_path(self.root, path)
    }

    /// The current time of this step's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}

/// Resolves `path` against `root` unless it is absolute.
pub fn resolve_path(root: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        root.join(p)
    }
}

/// Messages an expert sends in one `process` call, each with its path (`_default` or a named path).
#[derive(Default, Debug)]
pub struct Outbox {
    pub sent: Vec<(String, Message)>,
}

impl Outbox {
    /// Sends to the `_default` path.
    pub fn send(&mut self, msg: Message) {
        self.sent.push(("_default".to_string(), msg));
    }

    /// Sends to a named path (`filter_match`, `_on_error`, a sieve path ...).
    pub fn send_to(&mut self, path: &str, msg: Message) {
        self.sent.push((path.to_string(), msg));
    }
}

/// A line of a report that could not be parsed: it is dumped as a report with `raw` = the line.
#[derive(Debug, Clone)]
pub struct FailedLine {
    /// The recovered source text (with a header line where the parser keeps one).
    pub raw: String,
    pub error: String,
}

/// Takes a parser's events in chunks while it parses a report, so a big report reaches the next
/// bot before it is parsed to the end (the runtime commits each chunk).
pub trait EventSink {
    /// The next events of the report, in order. An error stops further chunks; the parse then fails.
    fn chunk(&mut self, events: Vec<Message>) -> Result<(), BotError>;
}

/// What a parser produces from one report.
pub struct ParserOutput<'r> {
    report: &'r Message,
    copy_fields: &'r [String],
    pub events: Vec<Message>,
    pub failed: Vec<FailedLine>,
    /// Where full chunks go, and the chunk size.
    sink: Option<(&'r mut dyn EventSink, usize)>,
    sink_error: Option<BotError>,
    /// The report's event template, built on the first `new_event`: the same for every event.
    template: std::cell::OnceCell<Message>,
}

impl<'r> ParserOutput<'r> {
    pub fn new(report: &'r Message, copy_fields: &'r [String]) -> Self {
        ParserOutput {
            report,
            copy_fields,
            events: Vec::new(),
            failed: Vec::new(),
            sink: None,
            sink_error: None,
            template: std::cell::OnceCell::new(),
        }
    }

    /// Like [`ParserOutput::new`], handing every `chunk` events to `sink` as they come.
    pub fn chunked(report: &'r Message, copy_fields: &'r [String], sink: &'r mut dyn EventSink, chunk: usize) -> Self {
        let mut out = ParserOutput::new(report, copy_fields);
        out.sink = Some((sink, chunk.max(1)));
        out
    }

    /// A new event with the report's feed fields and `time.observation` (IntelMQ `new_event(report)`).
    /// The fields come from the report alone, so they are worked out (looked up, validated) once
    /// per report and copied for each event.
    pub fn new_event(&self) -> Message {
        let mut event =
            self.template.get_or_init(|| Message::event_from_report(self.report, self.copy_fields).packed()).clone();
        event.reserve(12);
        event
    }

    pub fn report(&self) -> &'r Message {
        self.report
    }

    /// Emits one event.
    pub fn event(&mut self, event: Message) {
        self.events.push(event);
        if let Some((sink, chunk)) = &mut self.sink {
            if self.events.len() >= *chunk && self.sink_error.is_none() {
                if let Err(e) = sink.chunk(std::mem::take(&mut self.events)) {
                    self.sink_error = Some(e);
                }
            }
        }
    }

    /// Records a line that failed; the other lines go on.
    pub fn fail(&mut self, raw: impl Into<String>, error: impl std::fmt::Display) {
        self.failed.push(FailedLine { raw: raw.into(), error: error.to_string() });
    }

    /// The events not handed to the sink yet and the failed lines; the sink's error, if it failed.
    pub fn finish(self) -> Result<(Vec<Message>, Vec<FailedLine>), BotError> {
        match self.sink_error {
            Some(e) => Err(e),
            None => Ok((self.events, self.failed)),
        }
    }
}

/// Reports a collector emits in one run.
#[derive(Default, Debug)]
pub struct CollectorOutput {
    pub reports: Vec<Message>,
    /// Messages that already are IntelMQ messages (reports or events), passed on as they are: the
    /// runtime adds no feed fields and does not require `raw` (IntelMQ's `auto_add=False`).
    pub unchanged: Vec<Message>,
}

impl CollectorOutput {
    pub fn send(&mut self, report: Message) {
        self.reports.push(report);
    }

    /// Passes on a message as it is (see [`CollectorOutput::unchanged`]).
    pub fn send_unchanged(&mut self, message: Message) {
        self.unchanged.push(message);
    }
}

/// A collector fetches data and emits Reports. The runtime adds the feed fields (`name`,
/// `accuracy`, `code`, `provider`, `documentation`) and calls `collect` every `rate_limit` seconds.
pub trait CollectorBot: Send {
    /// One collection run. State written through `ctx.state` commits with the reports.
    fn collect(&mut self, ctx: &mut Context<'_>, out: &mut CollectorOutput) -> Result<(), BotError>;

    /// Called after the reports of a run are committed (e.g. delete the files that were read).
    fn committed(&mut self, _ctx: &mut Context<'_>) -> Result<(), BotError> {
        Ok(())
    }
}

/// A parser turns one Report into Events; a bad line is recorded with `out.fail` and the rest go on.
pub trait ParserBot: Send {
    fn parse(&mut self, report: &Message, ctx: &mut Context<'_>, out: &mut ParserOutput<'_>) -> Result<(), BotError>;
}

/// An expert enriches, filters or routes one Event; sending nothing drops it.
pub trait ExpertBot: Send {
    fn process(&mut self, event: Message, ctx: &mut Context<'_>, out: &mut Outbox) -> Result<(), BotError>;
}

/// An output delivers Events; returning `Ok` means the far side has them.
pub trait OutputBot: Send {
    /// Called once when the bot starts, before its first `write`; state written here is committed
    /// before the first step (the file output records the length its file starts with).
    fn start(&mut self, _ctx: &mut Context<'_>) -> Result<(), BotError> {
        Ok(())
    }

    fn write(&mut self, events: &[Message], ctx: &mut Context<'_>) -> Result<(), BotError>;
}

/// A built bot of any kind.
pub enum Bot {
    Collector(Box<dyn CollectorBot>),
    Parser(Box<dyn ParserBot>),
    Expert(Box<dyn ExpertBot>),
    Output(Box<dyn OutputBot>),
}

impl Bot {
    pub fn kind(&self) -> BotKind {
        match self {
            Bot::Collector(_) => BotKind::Collector,
            Bot::Parser(_) => BotKind::Parser,
            Bot::Expert(_) => BotKind::Expert,
            Bot::Output(_) => BotKind::Output,
        }
    }
}

/// A parameter map as given in the config (bot-specific keys only).
pub type Params = serde_json::Map<String, Value>;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fixed_clock_parses_rfc3339_and_moves_forward() {
        let clock = FixedClock::parse("2026-11-28T06:09:20Z").unwrap();
        assert_eq!(clock.now().to_rfc3339(), "2026-11-28T06:09:20+00:00");
        assert_eq!(clock.advanced(5400).now().to_rfc3339(), "2026-11-28T07:39:20+00:00");
        assert!(FixedClock::parse("yesterday").is_none());
    }

    #[test]
    fn context_asks_its_clock_for_the_time() {
        let h = Harmonization::builtin();
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let clock = FixedClock::parse("2001-02-03T04:05:06+02:00").unwrap();
        let mut ctx = Context::new("b", &h, Path::new("/"), &mut state, &mut log);
        assert!((Utc::now() - ctx.now()).num_seconds().abs() < 60);
        ctx.clock = &clock;
        assert_eq!(ctx.now().to_rfc3339(), "2001-02-03T02:05:06+00:00");
    }
}
