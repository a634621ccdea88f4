//! `intelmqctl`: the command-line client of a node's control plane (`intelmq.control.v1`). Parses
//! the command line, connects, runs one command, turns the result into an exit code. Depends on
//! `intelmq-proto` only.

mod bot;
mod check;
mod cli;
mod client;
mod dump;
mod input;
mod list;
mod log;
mod node;
mod queue;
mod render;
mod stats;
mod tls;

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser;

use crate::cli::{Action, Cli};
use crate::client::{connect, read_token, resolve_target, CtlError, Ctx, EXIT_FAILED, EXIT_USAGE};

fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        eprintln!("intelmqctl: internal error: {}", client::one_line(&msg));
    }));
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => return usage_exit(e),
    };
    let action = match cli.command.into_action() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("intelmqctl: {} (see intelmqctl --help)", e.0);
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("intelmqctl: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    match runtime.block_on(execute(&cli.global, action)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("intelmqctl: {e}");
            ExitCode::from(e.code)
        }
    }
}

/// clap's help and version go to stdout with 0; a bad command line is one line and exit code 2.
fn usage_exit(e: clap::Error) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand => {
            let _ = e.print();
            ExitCode::from(EXIT_USAGE)
        }
        _ => {
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("bad arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("intelmqctl: {first} (see intelmqctl --help)");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Local inputs are checked before connecting, so a bad message is exit code 2 with or without a node.
fn precheck(action: &Action) -> Result<(), CtlError> {
    match action {
        Action::Run { msg: Some(m), .. } => input::message_arg("--msg", m).map(drop),
        Action::Inject { msg, .. } => input::messages_arg("--msg", msg).map(drop),
        Action::Log { lines, .. } if *lines < -1 => {
            Err(CtlError::usage(format!("number of lines `{lines}` must be -1 (all) or more")))
        }
        Action::Stats { interval_ms: Some(0), .. } => Err(CtlError::usage("--interval must be at least 1 millisecond")),
        _ => Ok(()),
    }
}

async fn execute(global: &cli::GlobalOpts, action: Action) -> Result<u8, CtlError> {
    let target =
        resolve_target(global, std::env::var("INTELMQ_CTL_ENDPOINT").ok(), std::env::var("INTELMQ_ROOT_DIR").ok());
    precheck(&action)?;
    let token = global.token_file.as_deref().map(read_token).transpose()?;
    let tls = client::TlsFiles { ca: global.ca.clone(), identity: global.cert.clone().zip(global.key.clone()) };
    let client = connect(&target, token.as_deref(), &tls).await?;
    let ctx = &mut Ctx { client, json: global.json() };
    match action {
        Action::Lifecycle { verb, selector } => bot::lifecycle(ctx, verb, selector).await,
        Action::SetEnabled { bot_id, enabled } => bot::set_enabled(ctx, bot_id, enabled).await,
        Action::Run { bot_id, dryrun, show_sent, msg } => bot::run(ctx, bot_id, dryrun, show_sent, msg).await,
        Action::ListBots { listing, selector, enabled_only } => list::bots(ctx, listing, selector, enabled_only).await,
        Action::QueuesAndStatus => list::queues_and_status(ctx).await,
        Action::ListQueues { non_zero, count } => queue::list(ctx, non_zero, count).await,
        Action::ClearQueue { queue } => queue::clear(ctx, queue).await,
        Action::Inject { queue, msg, message_type } => queue::inject(ctx, queue, msg, message_type).await,
        Action::Log { bot_id, lines, level } => log::log(ctx, bot_id, lines, level).await,
        Action::Check { no_connections } => check::check(ctx, no_connections).await,
        Action::Stats { watch, interval_ms, limit } => stats::stats(ctx, watch, interval_ms, limit).await,
        Action::DumpList => dump::list(ctx).await,
        Action::DumpShow { bot_id, ids, truncate } => dump::show(ctx, bot_id, ids, truncate).await,
        Action::DumpDelete { bot_id, ids, all } => dump::delete(ctx, bot_id, ids, all).await,
        Action::DumpRecover { bot_id, ids, all, queue } => dump::recover(ctx, bot_id, ids, all, queue).await,
        Action::DumpEdit { bot_id, id } => dump::edit(ctx, bot_id, id).await,
        Action::DumpExport { bot_id, file } => dump::export(ctx, bot_id, file).await,
        Action::DumpImport { file, bot_id } => dump::import(ctx, file, bot_id).await,
        Action::NodeList => node::list(ctx).await,
    }
}
