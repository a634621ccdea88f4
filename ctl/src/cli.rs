//! The command line: both grammars (noun-verb `bot start X` and IntelMQ's flat `start X`) parsed
//! by clap and normalised into one [`Action`] each, so the commands never see which form was used.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Exit codes, shown by `--help` and documented in the README.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  ok
  1  error: the verb failed in IntelMQ's sense (e.g. `status` of a bot that is not running,
     a failed start, `check` found errors, a message failed in `run`)
  2  not found or usage: unknown bot, queue or dump id, bad arguments or message
  3  cannot connect to the node (is intelmq-node running?), or TLS failed for another reason
     than a certificate (e.g. the endpoint does not speak TLS)
  4  authentication failed: missing or wrong token, the node refused our client certificate
     (mutual TLS), or the node's certificate is not trusted (--ca)

Several nodes: any node answers for the whole botnet; `node list` shows them (exit code 1 when
one cannot be reached), and a node that does not answer is a warning on stderr.

TLS: `--endpoint https://host:port --ca ca.pem [--cert client.pem --key client.key]`; the
TLS files apply to TCP endpoints only, never to the Unix socket.

Both grammars work: `intelmqctl bot start expert-1` and IntelMQ's `intelmqctl start expert-1`.";

/// Controls an intelmq-rs node over its gRPC control plane.
#[derive(Parser, Debug)]
#[command(name = "intelmqctl", version, about, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Command,
}

/// Options accepted before or after the verb.
#[derive(Args, Debug, Clone, Default)]
pub struct GlobalOpts {
    /// Root directory of the node (the socket is <root>/var/run/control.sock); default
    /// $INTELMQ_ROOT_DIR, else /opt/intelmq.
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// The node's control socket (default <root>/var/run/control.sock).
    #[arg(long, global = true, value_name = "PATH", conflicts_with = "endpoint")]
    pub socket: Option<PathBuf>,
    /// A node's TCP control endpoint, e.g. http://node-1:50051 (default $INTELMQ_CTL_ENDPOINT
    /// when neither --socket nor --endpoint is given).
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint: Option<String>,
    /// File holding the bearer token sent to the node (default $INTELMQ_CTL_TOKEN_FILE).
    #[arg(long, global = true, value_name = "FILE", env = "INTELMQ_CTL_TOKEN_FILE", hide_env_values = true)]
    pub token_file: Option<PathBuf>,
    /// PEM CA certificate(s) the node's TLS certificate must chain to (default $INTELMQ_CTL_CA).
    /// Turns on TLS for --endpoint; an https:// endpoint without it trusts the system's roots.
    #[arg(long, global = true, value_name = "FILE", env = "INTELMQ_CTL_CA")]
    pub ca: Option<PathBuf>,
    /// PEM client certificate for mutual TLS (default $INTELMQ_CTL_CERT); needs --key.
    #[arg(long, global = true, value_name = "FILE", env = "INTELMQ_CTL_CERT", requires = "key")]
    pub cert: Option<PathBuf>,
    /// PEM private key of --cert (default $INTELMQ_CTL_KEY).
    #[arg(long, global = true, value_name = "FILE", env = "INTELMQ_CTL_KEY", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Print IntelMQ's JSON result shapes (indent 4) instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Output type (IntelMQ's --type, given before the verb): text or json.
    #[arg(long = "type", short = 't', value_enum, value_name = "TYPE")]
    pub output_type: Option<OutputType>,
}

impl GlobalOpts {
    /// Whether JSON output was asked for (`--json` or `--type json`).
    pub fn json(&self) -> bool {
        self.json || self.output_type == Some(OutputType::Json)
    }
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputType {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Bots: start, stop, restart, reload, status, enable, disable, run, list.
    #[command(subcommand)]
    Bot(BotCommand),
    /// Queues: list, clear, inject.
    #[command(subcommand)]
    Queue(QueueCommand),
    /// The dump of failed messages (IntelMQ's intelmqdump).
    #[command(subcommand)]
    Dump(DumpCommand),
    /// Checks the configuration, the store and the pipeline wiring.
    Check(CheckArgs),
    /// The last lines of a bot's log: `log BOT [N] [LEVEL]` (N = -1: all lines).
    Log(LogArgs),
    /// Per-bot counters, rates and inbox sizes; `--watch` repeats them.
    Stats(StatsArgs),
    /// The nodes of the botnet: list.
    #[command(subcommand)]
    Node(NodeCommand),
    /// Starts a bot, a group or every enabled bot (IntelMQ form of `bot start`).
    Start(SelectorArgs),
    /// Stops a bot, a group or every bot.
    Stop(SelectorArgs),
    /// Stops, then starts.
    Restart(SelectorArgs),
    /// Reloads the configuration of the selected bots.
    Reload(SelectorArgs),
    /// The state of a bot, a group or every bot.
    Status(SelectorArgs),
    /// Sets `enabled: true` for a bot in the configuration.
    Enable(BotIdArg),
    /// Sets `enabled: false` for a bot in the configuration.
    Disable(BotIdArg),
    /// IntelMQ's `list bots|queues|queues-and-status`.
    List(ListArgs),
    /// Deletes every message of a queue (IntelMQ form of `queue clear`).
    Clear(QueueArg),
    /// IntelMQ's `run BOT process [--dryrun] [--show-sent] [--msg JSON|FILE]`.
    Run(FlatRunArgs),
}

#[derive(Subcommand, Debug)]
pub enum BotCommand {
    /// Starts a bot, a group or every enabled bot.
    Start(SelectorArgs),
    /// Stops a bot, a group or every bot.
    Stop(SelectorArgs),
    /// Stops, then starts.
    Restart(SelectorArgs),
    /// Re-reads the configuration of the selected bots and restarts them.
    Reload(SelectorArgs),
    /// The state of a bot, a group or every bot.
    Status(SelectorArgs),
    /// Sets `enabled: true` in the configuration (starts nothing).
    Enable(BotIdArg),
    /// Sets `enabled: false` in the configuration (a running bot keeps running).
    Disable(BotIdArg),
    /// Runs one message through a bot: the given one or the next of its inbox.
    Run(BotRunArgs),
    /// The configured bots (or one, or a group) with their state.
    List(BotListArgs),
}

#[derive(Subcommand, Debug)]
pub enum QueueCommand {
    /// Queue sizes.
    List(QueueListArgs),
    /// Deletes every message of a queue.
    Clear(QueueArg),
    /// Validates a message and appends it to a queue.
    Inject(InjectArgs),
}

#[derive(Subcommand, Debug)]
pub enum NodeCommand {
    /// The nodes with their endpoint, reachability, version, load, running bots and the age of
    /// their last answer; the answering node first.
    List,
}

#[derive(Subcommand, Debug)]
pub enum DumpCommand {
    /// Dump entries per bot.
    List,
    /// Shows the dump entries of a bot (all or the given ids).
    Show(DumpShowArgs),
    /// Deletes dump entries (the given ids or --all).
    Delete(DumpIdsArgs),
    /// Puts dumped messages back into their source queue or --queue, removing them from the dump.
    Recover(DumpRecoverArgs),
    /// Edits the message of a dump entry in $EDITOR: `dump edit [BOT] ID`.
    Edit(DumpEditArgs),
    /// Writes a bot's dump in IntelMQ's `.dump` JSON format to FILE or stdout.
    Export(DumpExportArgs),
    /// Adds the entries of an IntelMQ `.dump` JSON file (`-` = stdin).
    Import(DumpImportArgs),
}

/// One bot, a group, or every bot.
#[derive(Args, Debug, Clone)]
pub struct SelectorArgs {
    /// The bot id (empty: every bot, or the --group).
    pub bot_id: Option<String>,
    /// collectors, parsers, experts or outputs.
    #[arg(long, short = 'g', conflicts_with = "bot_id")]
    pub group: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct BotIdArg {
    pub bot_id: String,
}

#[derive(Args, Debug, Clone)]
pub struct QueueArg {
    pub queue: String,
}

#[derive(Args, Debug, Clone)]
pub struct CheckArgs {
    /// Skip the checks that connect to external systems.
    #[arg(long, short = 'C')]
    pub no_connections: bool,
}

#[derive(Args, Debug, Clone)]
#[command(allow_negative_numbers = true)]
pub struct LogArgs {
    pub bot_id: String,
    /// How many lines (default 10; -1 = all).
    pub lines: Option<i64>,
    /// The lowest level shown: DEBUG, INFO (default), WARNING, ERROR or CRITICAL.
    #[arg(value_parser = parse_level)]
    pub level: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct StatsArgs {
    /// Print a new snapshot every --interval until interrupted.
    #[arg(long, short = 'w')]
    pub watch: bool,
    /// Milliseconds between snapshots with --watch (default 1000).
    #[arg(long, requires = "watch", value_name = "MS")]
    pub interval: Option<u64>,
    /// With --watch: stop after this many snapshots.
    #[arg(long, requires = "watch", value_name = "N")]
    pub limit: Option<u64>,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListWhat {
    Bots,
    Queues,
    QueuesAndStatus,
}

#[derive(Args, Debug, Clone)]
pub struct ListArgs {
    pub what: ListWhat,
    /// bots: the configured bots instead of the available modules.
    #[arg(long, short = 'c')]
    pub configured: bool,
    /// bots: only enabled ones; queues: only queues holding messages.
    #[arg(long, short = 'q', visible_alias = "quiet")]
    pub non_zero: bool,
    /// queues: only the total number of messages.
    #[arg(long, short = 's', visible_alias = "sum")]
    pub count: bool,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    /// One process() step.
    Process,
}

#[derive(Args, Debug, Clone)]
pub struct RunFlags {
    /// Send and acknowledge nothing; show what would happen.
    #[arg(long, short = 'd')]
    pub dryrun: bool,
    /// Print the messages the bot sent.
    #[arg(long, short = 's')]
    pub show_sent: bool,
    /// The message to process, JSON or a file holding it (default: the next inbox message).
    #[arg(long, short = 'm', value_name = "JSON|FILE")]
    pub msg: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct FlatRunArgs {
    pub bot_id: String,
    /// Only `process` is available (one message through the bot).
    pub mode: RunMode,
    #[command(flatten)]
    pub flags: RunFlags,
}

#[derive(Args, Debug, Clone)]
pub struct BotRunArgs {
    pub bot_id: String,
    #[command(flatten)]
    pub flags: RunFlags,
}

#[derive(Args, Debug, Clone)]
pub struct BotListArgs {
    /// One bot.
    pub bot_id: Option<String>,
    /// collectors, parsers, experts or outputs.
    #[arg(long, short = 'g', conflicts_with = "bot_id")]
    pub group: Option<String>,
    /// Only enabled bots.
    #[arg(long)]
    pub enabled: bool,
    /// The catalogue of available bot modules instead of the configured bots.
    #[arg(long, conflicts_with_all = ["bot_id", "group", "enabled"])]
    pub available: bool,
}

#[derive(Args, Debug, Clone)]
pub struct QueueListArgs {
    /// Only queues holding messages.
    #[arg(long, short = 'q', visible_alias = "quiet")]
    pub non_zero: bool,
    /// Only the total number of messages.
    #[arg(long, short = 's', visible_alias = "sum")]
    pub count: bool,
}

#[derive(Args, Debug, Clone)]
pub struct InjectArgs {
    pub queue: String,
    /// The message (flat IntelMQ JSON; an array injects several), or a file holding it.
    #[arg(long, short = 'm', value_name = "JSON|FILE")]
    pub msg: String,
    /// The type of a message without `__type`: Event (default) or Report.
    #[arg(long = "type", value_name = "TYPE", value_parser = parse_message_type)]
    pub message_type: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct DumpShowArgs {
    pub bot_id: String,
    pub ids: Vec<u64>,
    /// Text output: cut `raw` and base64 messages after this many characters (< 1: never).
    #[arg(long, default_value_t = 1000, allow_negative_numbers = true)]
    pub truncate: i64,
}

#[derive(Args, Debug, Clone)]
pub struct DumpIdsArgs {
    pub bot_id: String,
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub ids: Vec<u64>,
    /// Every entry of the bot.
    #[arg(long)]
    pub all: bool,
}

#[derive(Args, Debug, Clone)]
pub struct DumpRecoverArgs {
    #[command(flatten)]
    pub which: DumpIdsArgs,
    /// The queue to put the messages in (default: each entry's source queue).
    #[arg(long)]
    pub queue: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct DumpEditArgs {
    /// `ID` or `BOT ID`.
    #[arg(num_args = 1..=2, required = true, value_name = "[BOT] ID")]
    pub args: Vec<String>,
}

#[derive(Args, Debug, Clone)]
pub struct DumpExportArgs {
    pub bot_id: String,
    /// Default: stdout.
    pub file: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct DumpImportArgs {
    /// An IntelMQ `.dump` JSON file; `-` reads stdin.
    pub file: PathBuf,
    /// Put every entry under this bot id.
    #[arg(long)]
    pub bot: Option<String>,
}

fn parse_level(s: &str) -> Result<String, String> {
    let up = s.to_ascii_uppercase();
    match up.as_str() {
        "DEBUG" | "INFO" | "WARNING" | "ERROR" | "CRITICAL" => Ok(up),
        _ => Err(format!("unknown log level `{s}` (DEBUG, INFO, WARNING, ERROR or CRITICAL)")),
    }
}

fn parse_message_type(s: &str) -> Result<String, String> {
    match s.to_ascii_lowercase().as_str() {
        "event" => Ok("Event".into()),
        "report" => Ok("Report".into()),
        _ => Err(format!("unknown message type `{s}` (Event or Report)")),
    }
}

/// The lifecycle verbs that act on a [`Selector`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    Start,
    Stop,
    Restart,
    Reload,
    Status,
}

/// One bot, a group, or every bot (both empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    pub bot_id: Option<String>,
    pub group: Option<String>,
}

impl From<SelectorArgs> for Selector {
    fn from(a: SelectorArgs) -> Self {
        Selector { bot_id: a.bot_id, group: a.group }
    }
}

/// How `list bots` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BotListing {
    /// The catalogue of available modules.
    Catalogue,
    /// IntelMQ's `list bots --configured`: `[{"id", "description"}]`.
    Configured,
    /// `bot list`: the configured bots with group, module, enabled, node and state.
    Detailed,
}

/// What to do, whichever grammar asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Lifecycle { verb: Lifecycle, selector: Selector },
    SetEnabled { bot_id: String, enabled: bool },
    ListBots { listing: BotListing, selector: Selector, enabled_only: bool },
    ListQueues { non_zero: bool, count: bool },
    QueuesAndStatus,
    ClearQueue { queue: String },
    Inject { queue: String, msg: String, message_type: Option<String> },
    Log { bot_id: String, lines: i64, level: String },
    Check { no_connections: bool },
    Run { bot_id: String, dryrun: bool, show_sent: bool, msg: Option<String> },
    Stats { watch: bool, interval_ms: Option<u64>, limit: Option<u64> },
    DumpList,
    DumpShow { bot_id: String, ids: Vec<u64>, truncate: i64 },
    DumpDelete { bot_id: String, ids: Vec<u64>, all: bool },
    DumpRecover { bot_id: String, ids: Vec<u64>, all: bool, queue: Option<String> },
    DumpEdit { bot_id: Option<String>, id: u64 },
    DumpExport { bot_id: String, file: Option<PathBuf> },
    DumpImport { file: PathBuf, bot_id: Option<String> },
    NodeList,
}

/// A command line that clap accepted but that makes no sense (exit code 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl Command {
    /// The [`Action`] this command asks for.
    pub fn into_action(self) -> Result<Action, UsageError> {
        use Lifecycle::*;
        let lifecycle = |verb, s: SelectorArgs| Action::Lifecycle { verb, selector: s.into() };
        Ok(match self {
            Command::Start(s) | Command::Bot(BotCommand::Start(s)) => lifecycle(Start, s),
            Command::Stop(s) | Command::Bot(BotCommand::Stop(s)) => lifecycle(Stop, s),
            Command::Restart(s) | Command::Bot(BotCommand::Restart(s)) => lifecycle(Restart, s),
            Command::Reload(s) | Command::Bot(BotCommand::Reload(s)) => lifecycle(Reload, s),
            Command::Status(s) | Command::Bot(BotCommand::Status(s)) => lifecycle(Status, s),
            Command::Enable(b) | Command::Bot(BotCommand::Enable(b)) => {
                Action::SetEnabled { bot_id: b.bot_id, enabled: true }
            }
            Command::Disable(b) | Command::Bot(BotCommand::Disable(b)) => {
                Action::SetEnabled { bot_id: b.bot_id, enabled: false }
            }
            Command::Bot(BotCommand::Run(r)) => run_action(r.bot_id, r.flags),
            Command::Run(r) => match r.mode {
                RunMode::Process => run_action(r.bot_id, r.flags),
            },
            Command::Bot(BotCommand::List(l)) => {
                if l.available {
                    Action::ListBots {
                        listing: BotListing::Catalogue,
                        selector: Selector::default(),
                        enabled_only: false,
                    }
                } else {
                    Action::ListBots {
                        listing: BotListing::Detailed,
                        selector: Selector { bot_id: l.bot_id, group: l.group },
                        enabled_only: l.enabled,
                    }
                }
            }
            Command::List(l) => match l.what {
                ListWhat::Bots => {
                    if l.count {
                        return Err(UsageError("`list bots` takes no --count".into()));
                    }
                    let listing = if l.configured { BotListing::Configured } else { BotListing::Catalogue };
                    Action::ListBots { listing, selector: Selector::default(), enabled_only: l.non_zero }
                }
                ListWhat::Queues => {
                    if l.configured {
                        return Err(UsageError("`list queues` takes no --configured".into()));
                    }
                    Action::ListQueues { non_zero: l.non_zero, count: l.count }
                }
                ListWhat::QueuesAndStatus => {
                    if l.configured || l.count || l.non_zero {
                        return Err(UsageError("`list queues-and-status` takes no flags".into()));
                    }
                    Action::QueuesAndStatus
                }
            },
            Command::Queue(QueueCommand::List(q)) => Action::ListQueues { non_zero: q.non_zero, count: q.count },
            Command::Clear(q) | Command::Queue(QueueCommand::Clear(q)) => Action::ClearQueue { queue: q.queue },
            Command::Queue(QueueCommand::Inject(i)) => {
                Action::Inject { queue: i.queue, msg: i.msg, message_type: i.message_type }
            }
            Command::Log(l) => Action::Log {
                bot_id: l.bot_id,
                lines: l.lines.unwrap_or(10),
                level: l.level.unwrap_or_else(|| "INFO".into()),
            },
            Command::Check(c) => Action::Check { no_connections: c.no_connections },
            Command::Stats(s) => Action::Stats { watch: s.watch, interval_ms: s.interval, limit: s.limit },
            Command::Node(NodeCommand::List) => Action::NodeList,
            Command::Dump(d) => match d {
                DumpCommand::List => Action::DumpList,
                DumpCommand::Show(s) => Action::DumpShow { bot_id: s.bot_id, ids: s.ids, truncate: s.truncate },
                DumpCommand::Delete(w) => Action::DumpDelete { bot_id: w.bot_id, ids: w.ids, all: w.all },
                DumpCommand::Recover(r) => {
                    Action::DumpRecover { bot_id: r.which.bot_id, ids: r.which.ids, all: r.which.all, queue: r.queue }
                }
                DumpCommand::Edit(e) => {
                    let (bot_id, id) = match e.args.as_slice() {
                        [id] => (None, id),
                        [bot, id] => (Some(bot.clone()), id),
                        _ => return Err(UsageError("`dump edit` takes `[BOT] ID`".into())),
                    };
                    let id =
                        id.parse::<u64>().map_err(|_| UsageError(format!("dump entry id `{id}` is not a number")))?;
                    Action::DumpEdit { bot_id, id }
                }
                DumpCommand::Export(x) => Action::DumpExport { bot_id: x.bot_id, file: x.file },
                DumpCommand::Import(i) => Action::DumpImport { file: i.file, bot_id: i.bot },
            },
        })
    }
}

fn run_action(bot_id: String, f: RunFlags) -> Action {
    Action::Run { bot_id, dryrun: f.dryrun, show_sent: f.show_sent, msg: f.msg }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(args: &[&str]) -> Action {
        let mut argv = vec!["intelmqctl"];
        argv.extend_from_slice(args);
        let cli = Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        cli.command.into_action().unwrap_or_else(|e| panic!("{args:?}: {e:?}"))
    }

    fn rejected(args: &[&str]) -> bool {
        let mut argv = vec!["intelmqctl"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv) {
            Err(_) => true,
            Ok(cli) => cli.command.into_action().is_err(),
        }
    }

    fn one(bot: &str) -> Selector {
        Selector { bot_id: Some(bot.into()), group: None }
    }

    #[test]
    fn flat_and_noun_lifecycle_verbs_give_the_same_action() {
        for (flat, verb) in [
            ("start", Lifecycle::Start),
            ("stop", Lifecycle::Stop),
            ("restart", Lifecycle::Restart),
            ("reload", Lifecycle::Reload),
            ("status", Lifecycle::Status),
        ] {
            let want = Action::Lifecycle { verb, selector: one("taxonomy-expert") };
            assert_eq!(action(&[flat, "taxonomy-expert"]), want);
            assert_eq!(action(&["bot", flat, "taxonomy-expert"]), want);
        }
    }

    #[test]
    fn a_lifecycle_verb_takes_a_group_or_nothing() {
        let g = Action::Lifecycle {
            verb: Lifecycle::Stop,
            selector: Selector { bot_id: None, group: Some("parsers".into()) },
        };
        assert_eq!(action(&["stop", "--group", "parsers"]), g);
        assert_eq!(action(&["bot", "stop", "-g", "parsers"]), g);
        assert_eq!(action(&["status"]), Action::Lifecycle { verb: Lifecycle::Status, selector: Selector::default() });
        assert!(rejected(&["start", "file-output", "--group", "outputs"]));
    }

    #[test]
    fn enable_and_disable_need_a_bot() {
        let on = Action::SetEnabled { bot_id: "file-output".into(), enabled: true };
        assert_eq!(action(&["enable", "file-output"]), on);
        assert_eq!(action(&["bot", "enable", "file-output"]), on);
        let off = Action::SetEnabled { bot_id: "file-output".into(), enabled: false };
        assert_eq!(action(&["disable", "file-output"]), off);
        assert_eq!(action(&["bot", "disable", "file-output"]), off);
        assert!(rejected(&["enable"]));
        assert!(rejected(&["bot", "disable"]));
    }

    #[test]
    fn flat_run_needs_process_and_matches_bot_run() {
        let want =
            Action::Run { bot_id: "taxonomy-expert".into(), dryrun: true, show_sent: true, msg: Some("{}".into()) };
        assert_eq!(action(&["run", "taxonomy-expert", "process", "--dryrun", "--show-sent", "--msg", "{}"]), want);
        assert_eq!(action(&["run", "taxonomy-expert", "process", "-d", "-s", "-m", "{}"]), want);
        assert_eq!(action(&["bot", "run", "taxonomy-expert", "--dryrun", "--show-sent", "--msg", "{}"]), want);
        assert!(rejected(&["run", "taxonomy-expert"]));
        assert!(rejected(&["run", "taxonomy-expert", "console"]));
    }

    #[test]
    fn list_bots_is_the_catalogue_unless_configured() {
        assert_eq!(
            action(&["list", "bots"]),
            Action::ListBots { listing: BotListing::Catalogue, selector: Selector::default(), enabled_only: false }
        );
        assert_eq!(
            action(&["list", "bots", "--configured", "--non-zero"]),
            Action::ListBots { listing: BotListing::Configured, selector: Selector::default(), enabled_only: true }
        );
        assert_eq!(
            action(&["bot", "list", "--group", "experts", "--enabled"]),
            Action::ListBots {
                listing: BotListing::Detailed,
                selector: Selector { bot_id: None, group: Some("experts".into()) },
                enabled_only: true
            }
        );
        assert_eq!(
            action(&["bot", "list", "--available"]),
            Action::ListBots { listing: BotListing::Catalogue, selector: Selector::default(), enabled_only: false }
        );
        assert!(rejected(&["list", "bots", "--count"]));
        assert!(rejected(&["list", "tables"]));
    }

    #[test]
    fn list_queues_flags_match_queue_list() {
        let want = Action::ListQueues { non_zero: true, count: true };
        assert_eq!(action(&["list", "queues", "--non-zero", "--count"]), want);
        assert_eq!(action(&["list", "queues", "-q", "-s"]), want);
        assert_eq!(action(&["list", "queues", "--quiet", "--sum"]), want);
        assert_eq!(action(&["queue", "list", "--non-zero", "--count"]), want);
        assert_eq!(action(&["list", "queues-and-status"]), Action::QueuesAndStatus);
        assert!(rejected(&["list", "queues-and-status", "--count"]));
    }

    #[test]
    fn clear_and_inject_name_a_queue() {
        let want = Action::ClearQueue { queue: "file-output-queue".into() };
        assert_eq!(action(&["clear", "file-output-queue"]), want);
        assert_eq!(action(&["queue", "clear", "file-output-queue"]), want);
        assert_eq!(
            action(&["queue", "inject", "q", "--msg", "{\"a\": 1}", "--type", "report"]),
            Action::Inject { queue: "q".into(), msg: "{\"a\": 1}".into(), message_type: Some("Report".into()) }
        );
        assert!(rejected(&["queue", "inject", "q"]));
        assert!(rejected(&["queue", "inject", "q", "--msg", "{}", "--type", "Alert"]));
    }

    #[test]
    fn log_takes_optional_count_and_level_including_minus_one() {
        assert_eq!(
            action(&["log", "file-output"]),
            Action::Log { bot_id: "file-output".into(), lines: 10, level: "INFO".into() }
        );
        assert_eq!(
            action(&["log", "file-output", "-1", "debug"]),
            Action::Log { bot_id: "file-output".into(), lines: -1, level: "DEBUG".into() }
        );
        assert_eq!(
            action(&["log", "file-output", "5"]),
            Action::Log { bot_id: "file-output".into(), lines: 5, level: "INFO".into() }
        );
        assert!(rejected(&["log", "file-output", "5", "LOUD"]));
        assert!(rejected(&["log", "file-output", "many"]));
    }

    #[test]
    fn check_and_stats_flags() {
        assert_eq!(action(&["check"]), Action::Check { no_connections: false });
        assert_eq!(action(&["check", "--no-connections"]), Action::Check { no_connections: true });
        assert_eq!(action(&["stats"]), Action::Stats { watch: false, interval_ms: None, limit: None });
        assert_eq!(
            action(&["stats", "--watch", "--interval", "200", "--limit", "3"]),
            Action::Stats { watch: true, interval_ms: Some(200), limit: Some(3) }
        );
        assert!(rejected(&["stats", "--interval", "200"]));
    }

    #[test]
    fn dump_verbs_take_ids_or_all() {
        assert_eq!(action(&["dump", "list"]), Action::DumpList);
        assert_eq!(
            action(&["dump", "show", "p", "3", "4"]),
            Action::DumpShow { bot_id: "p".into(), ids: vec![3, 4], truncate: 1000 }
        );
        assert_eq!(
            action(&["dump", "delete", "p", "--all"]),
            Action::DumpDelete { bot_id: "p".into(), ids: vec![], all: true }
        );
        assert_eq!(
            action(&["dump", "recover", "p", "1", "2", "--queue", "q"]),
            Action::DumpRecover { bot_id: "p".into(), ids: vec![1, 2], all: false, queue: Some("q".into()) }
        );
        assert!(rejected(&["dump", "delete", "p"]));
        assert!(rejected(&["dump", "delete", "p", "1", "--all"]));
        assert!(rejected(&["dump", "show", "p", "x"]));
        assert_eq!(action(&["dump", "edit", "7"]), Action::DumpEdit { bot_id: None, id: 7 });
        assert_eq!(action(&["dump", "edit", "p", "7"]), Action::DumpEdit { bot_id: Some("p".into()), id: 7 });
        assert!(rejected(&["dump", "edit", "p"]));
        assert!(rejected(&["dump", "edit"]));
        assert_eq!(
            action(&["dump", "export", "p", "out.dump"]),
            Action::DumpExport { bot_id: "p".into(), file: Some("out.dump".into()) }
        );
        assert_eq!(
            action(&["dump", "import", "in.dump", "--bot", "p"]),
            Action::DumpImport { file: "in.dump".into(), bot_id: Some("p".into()) }
        );
    }

    #[test]
    fn node_list_is_a_verb() {
        assert_eq!(action(&["node", "list"]), Action::NodeList);
        assert_eq!(action(&["node", "list", "--json"]), Action::NodeList);
        assert!(rejected(&["node"]));
        assert!(rejected(&["node", "show"]));
    }

    #[test]
    fn global_options_go_before_or_after_the_verb() {
        let cli = Cli::try_parse_from(["intelmqctl", "status", "--json", "--socket", "/tmp/s"]).expect("parses");
        assert!(cli.global.json());
        assert_eq!(cli.global.socket.as_deref(), Some(std::path::Path::new("/tmp/s")));
        let cli =
            Cli::try_parse_from(["intelmqctl", "--type", "json", "--root", "/r", "list", "queues"]).expect("parses");
        assert!(cli.global.json());
        assert_eq!(cli.global.root.as_deref(), Some(std::path::Path::new("/r")));
        let cli = Cli::try_parse_from(["intelmqctl", "-t", "text", "status"]).expect("parses");
        assert!(!cli.global.json());
        assert!(Cli::try_parse_from(["intelmqctl", "--socket", "/s", "--endpoint", "http://h:1", "status"]).is_err());
    }

    #[test]
    fn client_certificate_and_key_come_together() {
        let cli = Cli::try_parse_from(["intelmqctl", "status", "--ca", "ca.pem", "--cert", "c.pem", "--key", "c.key"])
            .expect("parses");
        assert_eq!(cli.global.ca.as_deref(), Some(std::path::Path::new("ca.pem")));
        assert_eq!(cli.global.key.as_deref(), Some(std::path::Path::new("c.key")));
        assert!(Cli::try_parse_from(["intelmqctl", "status", "--cert", "c.pem"]).is_err());
        assert!(Cli::try_parse_from(["intelmqctl", "--key", "c.key", "status"]).is_err());
    }

    #[test]
    fn help_documents_the_exit_codes() {
        use clap::CommandFactory;
        let help = Cli::command().render_long_help().to_string();
        for code in ["0  ok", "2  not found or usage", "3  cannot connect", "4  authentication failed"] {
            assert!(help.contains(code), "{help}");
        }
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
