//! `intelmqctl`: the command-line client of a node's control plane (`intelmq.control.v1`).
//!
//! The control plane (gRPC over `<root>/var/run/control.sock`) is not served by the node yet, so
//! this client only knows its version; every operator verb answers that it is not available.

use std::process::ExitCode;

use clap::Parser;

/// Controls an intelmq-rs node.
#[derive(Parser, Debug)]
#[command(name = "intelmqctl", version, about)]
struct Args {
    /// The verb and its arguments (IntelMQ's: start, stop, status, list, clear, log, check, run, ...).
    verb: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let verb = args.verb.first().map(String::as_str).unwrap_or("");
    eprintln!(
        "intelmqctl: `{verb}` is not available: this node version has no control plane yet; use `intelmq-node --check-config` and the per-bot logs under var/log/"
    );
    ExitCode::from(3)
}
