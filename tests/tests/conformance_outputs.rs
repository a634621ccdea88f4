//! Output conformance: replays every case of IntelMQ's output corpus
//! (`$INTELMQ_OUTPUT_CONFORMANCE_DIR`, default `../shared/conformance-outputs`) whose module is
//! registered, in a scratch directory set up with the `before` state of each file parameter (the
//! corpus' scratch names in `params.json` are replaced by paths in it), and compares the files'
//! `after` content from `expected_effects.json`. Cases of unregistered modules are counted as not
//! implemented.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use intelmq_node::bots::{registry, Bot, Context, Level, MemoryLog, MemoryState};
use intelmq_node::message::{Harmonization, Message, MessageKind};
use serde_json::Value;

/// Global (non bot-specific) parameters the harness may have left in `params.json`.
const HARNESS_KEYS: &[&str] = &[
    "logging_level",
    "logging_path",
    "rate_limit",
    "error_procedure",
    "error_max_retries",
    "error_retry_delay",
    "error_dump_message",
    "error_log_message",
    "error_log_exception",
    "load_balance",
    "testing",
    "enabled",
    "run_mode",
];

#[path = "conformance_outputs/db.rs"]
mod db;
#[path = "conformance_outputs/net.rs"]
mod net;

fn corpus_dir() -> PathBuf {
    std::env::var_os("INTELMQ_OUTPUT_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/conformance-outputs")))
}

fn harmonization() -> Arc<Harmonization> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../etc/harmonization.conf");
    Harmonization::load(Path::new(path)).expect("load etc/harmonization.conf")
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("cannot parse {}: {e}", path.display()))
}

/// Puts a file parameter's `before` state into the scratch directory.
fn set_up(path: &Path, state: &Value) -> Result<(), String> {
    let io = |e: std::io::Error| format!("cannot set up {}: {e}", path.display());
    match state["kind"].as_str() {
        Some("file") => {
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).map_err(io)?;
            }
            fs::write(path, state["content"].as_str().unwrap_or_default()).map_err(io)
        }
        Some("dir") => {
            fs::create_dir_all(path).map_err(io)?;
            for (name, content) in state["content"].as_object().into_iter().flatten() {
                fs::write(path.join(name), content.as_str().unwrap_or_default()).map_err(io)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Compares a file parameter's state after the run with the expected one.
fn check(path: &Path, want: &Value, name: &str) -> Option<String> {
    match want["kind"].as_str() {
        Some("absent") => path.exists().then(|| format!("  {name}: expected absent, but it exists")),
        Some("file") => {
            let expected = want["content"].as_str().unwrap_or_default();
            match fs::read_to_string(path) {
                Ok(got) if got == expected => None,
                Ok(got) => {
                    Some(format!("  {name}: content differs\n    expected: {expected:?}\n    got:      {got:?}"))
                }
                Err(e) => Some(format!("  {name}: cannot read: {e}")),
            }
        }
        Some("dir") => {
            // File names may be generated at run time: compare the contents only.
            let mut expected: Vec<String> = want["content"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(_, c)| c.as_str().unwrap_or_default().to_string())
                .collect();
            let mut got: Vec<String> = match fs::read_dir(path) {
                Ok(entries) => {
                    entries.filter_map(|e| e.ok()).filter_map(|e| fs::read_to_string(e.path()).ok()).collect()
                }
                Err(e) => return Some(format!("  {name}: cannot list: {e}")),
            };
            expected.sort();
            got.sort();
            (expected != got).then(|| {
                format!("  {name}: directory contents differ\n    expected: {expected:?}\n    got:      {got:?}")
            })
        }
        other => Some(format!("  {name}: unknown expected kind {other:?}")),
    }
}

enum Outcome {
    Pass,
    Fail(String),
}

fn run_case(case: &Path, meta: &Value, entry: &registry::BotEntry, h: &Arc<Harmonization>) -> Result<Outcome, String> {
    // The outputs-net group replays its cases against far ends of its own.
    if net::MODULES.contains(&entry.module) {
        return net::run_case(case, meta, entry, h);
    }
    // The outputs-db group replays its cases against the local Redis.
    if db::MODULES.contains(&entry.module) {
        return db::run_case(case, meta, entry, h);
    }
    let Value::Object(mut params) = read_json(&case.join("params.json"))? else {
        return Err("params.json is not an object".to_string());
    };
    for key in HARNESS_KEYS {
        params.remove(*key);
    }
    let effects = read_json(&case.join("expected_effects.json"))?;
    if effects.get("email").is_some_and(|v| !v.is_null()) || effects.get("redis_after").is_some_and(|v| !v.is_null()) {
        return Ok(Outcome::Fail("mail and redis effects cannot be checked by this harness".to_string()));
    }
    let scratch = tempfile::tempdir().map_err(|e| format!("cannot create a temp dir: {e}"))?;
    let files: Vec<&Value> = effects["files"].as_array().into_iter().flatten().collect();
    for file in &files {
        let (Some(param), Some(name)) = (file["parameter"].as_str(), file["path"].as_str()) else {
            continue;
        };
        let abs = scratch.path().join(name);
        set_up(&abs, &file["before"])?;
        if params.get(param).and_then(Value::as_str) == Some(name) {
            params.insert(param.to_string(), Value::String(abs.to_string_lossy().into_owned()));
        }
    }
    let built = (entry.build)(&params);
    if meta.get("expects_exception").is_some_and(|e| !e.is_null()) {
        return Ok(match built {
            Err(_) => Outcome::Pass,
            Ok(_) => Outcome::Fail("expected the bot to refuse its parameters, but it was built".to_string()),
        });
    }
    let mut bot = match built {
        Ok(Bot::Output(bot)) => bot,
        Ok(_) => return Ok(Outcome::Fail(format!("module {} did not build an output", entry.module))),
        Err(e) => return Ok(Outcome::Fail(format!("build failed: {e}"))),
    };
    let mut state = MemoryState::default();
    let mut log = MemoryLog::default();
    let mut errors = Vec::new();
    for (i, input) in read_json(&case.join("input.json"))?.as_array().into_iter().flatten().enumerate() {
        let wire = serde_json::to_vec(input).map_err(|e| e.to_string())?;
        let msg = match Message::from_wire(h.clone(), &wire, Some(MessageKind::Event)) {
            Ok(msg) => msg,
            Err(e) => {
                errors.push(format!("input {i} cannot be read: {e}"));
                continue;
            }
        };
        let mut ctx = Context {
            bot_id: "conformance",
            harmonization: h,
            root: scratch.path(),
            state: &mut state,
            log: &mut log,
            clock: &intelmq_node::bots::SystemClock,
        };
        if let Err(e) = bot.write(std::slice::from_ref(&msg), &mut ctx) {
            errors.push(format!("input {i}: {e}"));
        }
    }
    let mut problems: Vec<String> = files
        .iter()
        .filter_map(|file| {
            let name = file["path"].as_str()?;
            check(&scratch.path().join(name), &file["after"], name)
        })
        .collect();
    let logged_errors: Vec<&String> = log.lines.iter().filter(|(l, _)| *l >= Level::Error).map(|(_, m)| m).collect();
    let allowed = meta["allowed_error_count"].as_u64().unwrap_or(0) as usize;
    if errors.len() + logged_errors.len() > allowed {
        problems.push(format!(
            "  {} error(s), {allowed} allowed: {errors:?} {logged_errors:?}",
            errors.len() + logged_errors.len()
        ));
    }
    Ok(if problems.is_empty() { Outcome::Pass } else { Outcome::Fail(problems.join("\n")) })
}

#[test]
fn output_conformance() {
    let dir = corpus_dir();
    if !dir.is_dir() {
        assert!(
            std::env::var("INTELMQ_REQUIRE_CONFORMANCE").as_deref() != Ok("1"),
            "output conformance corpus {} is missing and INTELMQ_REQUIRE_CONFORMANCE=1",
            dir.display()
        );
        eprintln!("output conformance: skipped, corpus {} not found", dir.display());
        return;
    }
    let h = harmonization();
    let mut cases: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("list the corpus")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("meta.json").is_file())
        .collect();
    cases.sort();

    let (mut passed, mut failed) = (0, 0);
    let mut not_implemented: BTreeMap<String, usize> = BTreeMap::new();
    for case in &cases {
        let name = case.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let meta = match read_json(&case.join("meta.json")) {
            Ok(meta) => meta,
            Err(e) => {
                failed += 1;
                eprintln!("FAIL {name}: {e}");
                continue;
            }
        };
        let module = meta["bot_module"].as_str().unwrap_or_default();
        let Some(entry) = registry::find(module) else {
            *not_implemented.entry(module.to_string()).or_default() += 1;
            continue;
        };
        match run_case(case, &meta, entry, &h) {
            Ok(Outcome::Pass) => passed += 1,
            Ok(Outcome::Fail(diff)) => {
                failed += 1;
                eprintln!("FAIL {name}:\n{diff}");
            }
            Err(e) => {
                failed += 1;
                eprintln!("FAIL {name}: {e}");
            }
        }
    }
    let skipped: usize = not_implemented.values().sum();
    eprintln!("output conformance: {skipped} case(s) of {} module(s) not implemented", not_implemented.len());
    eprintln!("output conformance: {passed} passed, {failed} failed");
    assert_eq!(failed, 0, "output conformance: {failed} case(s) failed");
}
