//! `intelmq-node`: runs the botnet configured under `<root>/etc/`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use intelmq_node::{config, runtime};

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
                println!("{text}");
                return ExitCode::SUCCESS;
            }
            Err(e) => {
                eprintln!("intelmq-node: {e}");
                return ExitCode::from(1);
            }
        }
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
    let result = runtime::run(botnet, mode, |node| {
        if let Err(e) = intelmq_node::control::spawn(node.clone()) {
            eprintln!("intelmq-node: control plane: {e}");
            node.shutdown();
        }
    });
    match result {
        Ok(summary) => {
            if args.until_idle {
                print!("{}", summary.render());
            }
            if summary.failed_bots().is_empty() {
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
