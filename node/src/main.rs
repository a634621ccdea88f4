//! `intelmq-node`: runs the botnet configured under `<root>/etc/`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use intelmq_node::{config, runtime};

/// Bots allocate many small strings per message; mimalloc handles that far better than glibc's
/// allocator across the bots' threads.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs an IntelMQ botnet on this node.
#[derive(Parser, Debug)]
#[command(name = "intelmq-node", version, about)]
struct Args {
    /// Root directory (etc/, var/); default $INTELMQ_ROOT_DIR, else /opt/intelmq.
    #[arg(long)]
    root: Option<PathBuf>,
    /// Run until every collector has done its run and every queue is empty, print a summary, exit.
    #[arg(long)]
    until_idle: bool,
    /// Only load and validate the configuration, then exit.
    #[arg(long)]
    check_config: bool,
    /// Print the BOTS catalogue (every registered module with its default parameters) and exit.
    #[arg(long)]
    print_bots: bool,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run one bot on messages offline and print what it sends, one JSON line per message
    /// (`{"path": .., "message": {..}}`); dumped messages and errors go to stderr. Exit 1 if
    /// anything was dumped or failed.
    Process {
        /// IntelMQ's module path, e.g. intelmq.bots.parsers.generic.parser_csv.
        #[arg(long)]
        module: String,
        /// The bot's parameters: a JSON object, or a file holding one.
        #[arg(long)]
        params: Option<String>,
        /// The input: a file (or `-` for stdin) with a JSON message, a JSON array of messages, or
        /// one message per line. Collectors take none.
        #[arg(long)]
        input: Option<PathBuf>,
    },
    /// Print the PostgreSQL schema of IntelMQ's EventDB for the SQL output (IntelMQ's
    /// `intelmq_psql_initdb`): the events table with a column per field and its indices.
    Initdb {
        /// JSON fields as `jsonb` instead of `json`.
        #[arg(long)]
        jsonb: bool,
        /// Also a `raws` table, the `v_events` view joining both and its INSERT trigger.
        #[arg(long)]
        separate_raws: bool,
        /// Add this field to the primary key (partitioning, e.g. TimescaleDB).
        #[arg(long)]
        partition_key: Option<String>,
        /// Leave out the events table.
        #[arg(long)]
        no_events: bool,
        /// IF NOT EXISTS / OR REPLACE on everything created.
        #[arg(long)]
        skip_or_replace: bool,
        /// The harmonization file; default <root>/etc/harmonization.conf if present, else the shipped one.
        #[arg(long)]
        harmonization: Option<PathBuf>,
        /// Write to this file instead of stdout.
        #[arg(short = 'o', long = "outputfile", visible_alias = "output")]
        output: Option<PathBuf>,
    },
}

/// A JSON value given inline or in a file.
fn json_arg(arg: &str) -> anyhow::Result<serde_json::Value> {
    let text = if arg.trim_start().starts_with('{') || arg.trim_start().starts_with('[') {
        arg.to_string()
    } else {
        std::fs::read_to_string(arg).map_err(|e| anyhow::anyhow!("cannot read {arg}: {e}"))?
    };
    serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{arg}: not JSON: {e}"))
}

/// Messages from a file: one JSON object, an array of them, or one per line.
fn read_messages(path: &std::path::Path) -> anyhow::Result<Vec<serde_json::Value>> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?
    };
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Array(a)) => Ok(a),
        Ok(v) => Ok(vec![v]),
        Err(_) => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, l)| {
                serde_json::from_str(l).map_err(|e| anyhow::anyhow!("{} line {}: {e}", path.display(), i + 1))
            })
            .collect(),
    }
}

fn process(
    root: &std::path::Path,
    module: &str,
    params: Option<&str>,
    input: Option<&std::path::Path>,
) -> anyhow::Result<bool> {
    let params = match params {
        Some(p) => match json_arg(p)? {
            serde_json::Value::Object(m) => m,
            _ => anyhow::bail!("--params must be a JSON object"),
        },
        None => serde_json::Map::new(),
    };
    let inputs = match input {
        Some(p) => read_messages(p)?,
        None => Vec::new(),
    };
    let run = runtime::process_offline(root, module, params, &inputs)?;
    for (path, json) in &run.sent {
        let message: serde_json::Value = serde_json::from_str(json)?;
        use std::io::Write as _;
        if writeln!(std::io::stdout(), "{}", serde_json::json!({"path": path, "message": message})).is_err() {
            break;
        }
    }
    for d in &run.dumps {
        eprintln!("dumped: {}: {}", d.traceback.join(" | "), d.message);
    }
    for e in &run.errors {
        eprintln!("failed: {e}");
    }
    Ok(run.dumps.is_empty() && run.errors.is_empty())
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("INTELMQ_NODE_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    if args.print_bots {
        match serde_json::to_string_pretty(&intelmq_node::bots::registry::catalogue()) {
            Ok(text) => {
                use std::io::Write as _;
                // A closed pipe (`| head`) is not an error worth a message.
                let _ = writeln!(std::io::stdout(), "{text}");
                return ExitCode::SUCCESS;
            }
            Err(e) => {
                eprintln!("intelmq-node: {e}");
                return ExitCode::from(1);
            }
        }
    }
    if let Some(Cmd::Initdb {
        jsonb,
        separate_raws,
        partition_key,
        no_events,
        skip_or_replace,
        harmonization,
        output,
    }) = &args.command
    {
        use intelmq_node::bots::outputs::sql::initdb;
        let opts = initdb::InitdbOptions {
            no_events: *no_events,
            separate_raws: *separate_raws,
            partition_key: partition_key.clone(),
            skip_or_replace: *skip_or_replace,
            jsonb: *jsonb,
        };
        let root_file = args.root.as_ref().map(|r| r.join("etc/harmonization.conf")).filter(|p| p.exists());
        return match initdb::run(&opts, harmonization.as_deref().or(root_file.as_deref()), output.as_deref()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("intelmq-node initdb: {e}");
                ExitCode::from(2)
            }
        };
    }
    if let Some(Cmd::Process { module, params, input }) = &args.command {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        let root = args.root.clone().unwrap_or(cwd);
        return match process(&root, module, params.as_deref(), input.as_deref()) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(e) => {
                eprintln!("intelmq-node process: {e:#}");
                ExitCode::from(2)
            }
        };
    }
    let root = config::resolve_root(args.root.as_deref());
    let botnet = match config::load(&root) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("intelmq-node: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    for w in &botnet.warnings {
        eprintln!("intelmq-node: warning: {w}");
    }
    if let Err(e) = runtime::validate(&botnet) {
        eprintln!("intelmq-node: configuration error: {e}");
        return ExitCode::from(2);
    }
    if args.check_config {
        println!("configuration under {} is valid ({} bots)", root.join("etc").display(), botnet.bots.len());
        return ExitCode::SUCCESS;
    }
    let mode = if args.until_idle { runtime::Mode::UntilIdle } else { runtime::Mode::Daemon };
    let served = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let control_failed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (flag, failed) = (served.clone(), control_failed.clone());
    let result = runtime::run(botnet, mode, move |node| match intelmq_node::control::spawn(node.clone()) {
        Ok(()) => flag.store(true, std::sync::atomic::Ordering::Release),
        Err(e) => {
            eprintln!("intelmq-node: control plane: {e}");
            failed.store(true, std::sync::atomic::Ordering::Release);
            node.shutdown();
        }
    });
    // The socket is only there while this node runs.
    if served.load(std::sync::atomic::Ordering::Acquire) {
        let _ = std::fs::remove_file(intelmq_node::control::socket_path(&root));
    }
    match result {
        Ok(summary) => {
            if args.until_idle {
                print!("{}", summary.render());
            }
            if summary.failed_bots().is_empty() && !control_failed.load(std::sync::atomic::Ordering::Acquire) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("intelmq-node: {e:#}");
            ExitCode::from(1)
        }
    }
}
