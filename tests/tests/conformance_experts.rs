//! Expert conformance: replays every case of IntelMQ's expert corpus
//! (`$INTELMQ_EXPERT_CONFORMANCE_DIR`, default `../shared/conformance-experts`) whose module is
//! registered, and compares what the bot sends with `expected.json` under the corpus README's strict
//! rule: per path the same messages in the same order, key by key including `raw`,
//! `time.observation` and `__type`, JSON types kept apart, `output` decoded, minus the case's
//! `ignore_in_comparison` keys (`output.<key>` names a key inside the decoded `output`).
//! Cases of unregistered modules are counted as not implemented.
//!
//! Replay rules: messages sent to a path missing from meta.json `destination_paths` are dropped,
//! as IntelMQ and the runtime drop them; the bot's clock stands at `recorded_at` when the case has
//! one (clock-dependent cases), else it is the system clock; a case with `continues_from` runs on
//! the bot instance and state the named case left (it must have `stop_bot: false`), its clock
//! moved forward by `clock_advance_before_run_seconds`. Only cases with HTTP mocks are skipped.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use intelmq_node::bots::{
    registry, Bot, Clock, Context, ExpertBot, FixedClock, Level, MemoryLog, MemoryState, Outbox, Params, SystemClock,
};
use intelmq_node::message::{Harmonization, Message, MessageKind};
use serde_json::{Map, Value};

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

fn corpus_dir() -> PathBuf {
    std::env::var_os("INTELMQ_EXPERT_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/conformance-experts")))
}

fn harmonization() -> Arc<Harmonization> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../etc/harmonization.conf");
    Harmonization::load(Path::new(path)).expect("load etc/harmonization.conf")
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("cannot parse {}: {e}", path.display()))
}

/// The case's parameters: harness keys dropped, data file names made absolute.
fn case_params(case: &Path, meta: &Value) -> Result<Params, String> {
    let Value::Object(mut params) = read_json(&case.join("params.json"))? else {
        return Err("params.json is not an object".to_string());
    };
    for key in HARNESS_KEYS {
        params.remove(*key);
    }
    for data in meta["data_files"].as_array().into_iter().flatten() {
        let (Some(param), Some(file)) = (data["parameter"].as_str(), data["file"].as_str()) else {
            continue;
        };
        let abs = case.join(file).to_string_lossy().into_owned();
        // `fields.extra.some_text` is the key `extra.some_text` of the object `fields` when there
        // is no top-level parameter of that name (split at the first dot only).
        let slot = if params.contains_key(param) {
            params.get_mut(param)
        } else {
            param.split_once('.').and_then(|(outer, inner)| params.get_mut(outer)?.as_object_mut()?.get_mut(inner))
        };
        if let Some(Value::String(value)) = slot {
            if value.starts_with("file:///") {
                *value = format!("file://{abs}");
            } else if *value == file || Some(value.as_str()) == data["value_in_params"].as_str() {
                *value = abs;
            }
        }
    }
    Ok(params)
}

/// The redis db the harness used (4), as bot state: string keys with their values.
fn load_state(case: &Path) -> Result<MemoryState, String> {
    let mut state = MemoryState::default();
    let path = case.join("state_before.json");
    if !path.exists() {
        return Ok(state);
    }
    let before = read_json(&path)?;
    for (key, entry) in before["4"].as_object().into_iter().flatten() {
        if entry["type"] == "string" {
            let value = match &entry["value"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            state.entries.insert(key.as_bytes().to_vec(), value.into_bytes());
        }
    }
    Ok(state)
}

/// A message prepared for comparison: `output` decoded, ignored keys removed (`output.ID` is the
/// key `ID` inside the decoded `output`).
fn comparable(mut map: Map<String, Value>, ignore: &[String]) -> Map<String, Value> {
    for key in ignore {
        map.remove(key);
    }
    if let Some(Value::String(text)) = map.get("output") {
        if let Ok(decoded) = serde_json::from_str::<Value>(text) {
            map.insert("output".to_string(), decoded);
        }
    }
    if let Some(Value::Object(output)) = map.get_mut("output") {
        for key in ignore {
            if let Some(inner) = key.strip_prefix("output.") {
                output.remove(inner);
            }
        }
    }
    map
}

/// A readable difference of two messages, or `None` when they are equal.
fn message_diff(expected: &Map<String, Value>, actual: &Map<String, Value>) -> Option<String> {
    let mut lines = Vec::new();
    for (key, want) in expected {
        match actual.get(key) {
            None => lines.push(format!("    - {key}: {want}  (missing)")),
            Some(got) if got != want => lines.push(format!("    ~ {key}: expected {want}, got {got}")),
            Some(_) => {}
        }
    }
    for (key, got) in actual {
        if !expected.contains_key(key) {
            lines.push(format!("    + {key}: {got}  (unexpected)"));
        }
    }
    (!lines.is_empty()).then(|| lines.join("\n"))
}

enum Outcome {
    Pass,
    Fail(String),
}

/// A bot instance that lives on after its case (`stop_bot: false`), for the case that
/// `continues_from` it: the bot, its state, its root and where its clock stood.
struct Session {
    bot: Box<dyn ExpertBot>,
    state: MemoryState,
    root: tempfile::TempDir,
    clock: Option<FixedClock>,
}

/// The clock of a case: a continuation moves its predecessor's clock forward by
/// `clock_advance_before_run_seconds`; other cases stand at `recorded_at` when they have one.
fn case_clock(meta: &Value, previous: Option<&Session>) -> Result<Option<FixedClock>, String> {
    let advance = meta["clock_advance_before_run_seconds"].as_i64();
    if let (Some(clock), Some(seconds)) = (previous.and_then(|s| s.clock), advance) {
        return Ok(Some(clock.advanced(seconds)));
    }
    match meta["recorded_at"].as_str() {
        None => Ok(None),
        Some(text) => FixedClock::parse(text)
            .map(Some)
            .ok_or_else(|| format!("meta.json recorded_at `{text}` is not an RFC 3339 time")),
    }
}

fn run_case(
    case: &Path,
    meta: &Value,
    entry: &registry::BotEntry,
    h: &Arc<Harmonization>,
    previous: Option<Session>,
) -> Result<(Outcome, Option<Session>), String> {
    let clock = case_clock(meta, previous.as_ref())?;
    let Session { mut bot, mut state, root, .. } = match previous {
        Some(session) => session,
        None => {
            let params = case_params(case, meta)?;
            let built = (entry.build)(&params);
            if meta.get("expects_exception").is_some_and(|e| !e.is_null()) {
                let outcome = match built {
                    Err(_) => Outcome::Pass,
                    Ok(_) => Outcome::Fail("expected the bot to refuse its parameters, but it was built".to_string()),
                };
                return Ok((outcome, None));
            }
            let bot = match built {
                Ok(Bot::Expert(bot)) => bot,
                Ok(_) => {
                    let problem = format!("module {} did not build an expert", entry.module);
                    return Ok((Outcome::Fail(problem), None));
                }
                Err(e) => return Ok((Outcome::Fail(format!("build failed: {e}")), None)),
            };
            Session {
                bot,
                state: load_state(case)?,
                root: tempfile::tempdir().map_err(|e| format!("cannot create a temp dir: {e}"))?,
                clock: None,
            }
        }
    };
    let clock_ref: &dyn Clock = match &clock {
        Some(fixed) => fixed,
        None => &SystemClock,
    };
    let mut log = MemoryLog::default();
    let inputs = read_json(&case.join("input.json"))?;
    let mut sent: Vec<(String, Message)> = Vec::new();
    let mut errors = Vec::new();
    for (i, input) in inputs.as_array().into_iter().flatten().enumerate() {
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
            root: root.path(),
            state: &mut state,
            log: &mut log,
            clock: clock_ref,
        };
        let mut out = Outbox::default();
        match bot.process(msg, &mut ctx, &mut out) {
            Ok(()) => sent.extend(out.sent),
            Err(e) => errors.push(format!("input {i}: {e}")),
        }
    }
    // IntelMQ (and the runtime) drop what goes to a path that is not configured.
    if let Some(paths) = meta["destination_paths"].as_array() {
        sent.retain(|(path, _)| paths.iter().any(|p| p.as_str() == Some(path.as_str())));
    }
    let session = (meta["stop_bot"] == Value::Bool(false)).then_some(Session { bot, state, root, clock });

    let ignore: Vec<String> = meta["ignore_in_comparison"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k.as_str().map(str::to_string))
        .collect();
    let mut expected: BTreeMap<String, Vec<Map<String, Value>>> = BTreeMap::new();
    for item in read_json(&case.join("expected.json"))?.as_array().into_iter().flatten() {
        let path = item["path"].as_str().unwrap_or("_default").to_string();
        let Value::Object(message) = item["message"].clone() else {
            return Err("expected message is not an object".into());
        };
        expected.entry(path).or_default().push(comparable(message, &ignore));
    }
    let mut actual: BTreeMap<String, Vec<Map<String, Value>>> = BTreeMap::new();
    for (path, msg) in &sent {
        let Value::Object(map) =
            serde_json::from_str(&msg.to_wire()).map_err(|e| format!("to_wire is not JSON: {e}"))?
        else {
            return Err("to_wire is not a JSON object".to_string());
        };
        actual.entry(path.clone()).or_default().push(comparable(map, &ignore));
    }

    let mut problems = Vec::new();
    let paths: std::collections::BTreeSet<&String> = expected.keys().chain(actual.keys()).collect();
    for path in paths {
        let (want, got) =
            (expected.get(path).map_or(&[][..], Vec::as_slice), actual.get(path).map_or(&[][..], Vec::as_slice));
        if want.len() != got.len() {
            problems.push(format!("  path {path}: expected {} message(s), got {}", want.len(), got.len()));
        }
        for (i, (w, g)) in want.iter().zip(got).enumerate() {
            if let Some(diff) = message_diff(w, g) {
                problems.push(format!("  path {path}, message {i}:\n{diff}"));
            }
        }
        for (i, g) in got.iter().enumerate().skip(want.len()) {
            problems.push(format!("  path {path}, extra message {i}: {}", Value::Object(g.clone())));
        }
        for (i, w) in want.iter().enumerate().skip(got.len()) {
            problems.push(format!("  path {path}, missing message {i}: {}", Value::Object(w.clone())));
        }
    }
    let logged_errors = log.lines.iter().filter(|(level, _)| *level >= Level::Error).count();
    let allowed = meta["allowed_error_count"].as_u64().unwrap_or(0) as usize;
    if errors.len() + logged_errors > allowed {
        problems.push(format!(
            "  {} error(s), {allowed} allowed: {:?} {:?}",
            errors.len() + logged_errors,
            errors,
            log.lines.iter().filter(|(level, _)| *level >= Level::Error).map(|(_, m)| m).collect::<Vec<_>>()
        ));
    }
    let outcome = if problems.is_empty() { Outcome::Pass } else { Outcome::Fail(problems.join("\n")) };
    Ok((outcome, session))
}

#[test]
fn expert_conformance() {
    let dir = corpus_dir();
    run_corpus("expert conformance", &dir);
}

/// The project's own expert cases (same layout), for modules and inputs the corpus lacks.
#[test]
fn expert_conformance_own_cases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/conformance-experts");
    run_corpus("expert conformance (project cases)", &dir);
}

fn run_corpus(label: &str, dir: &Path) {
    let dir = dir.to_path_buf();
    if !dir.is_dir() {
        assert!(
            std::env::var("INTELMQ_REQUIRE_CONFORMANCE").as_deref() != Ok("1"),
            "{label}: corpus {} is missing and INTELMQ_REQUIRE_CONFORMANCE=1",
            dir.display()
        );
        eprintln!("{label}: skipped, corpus {} not found", dir.display());
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
    let mut unsupported = Vec::new();
    // Bot instances of `stop_bot: false` cases, by case name, for their continuations.
    let mut sessions: HashMap<String, Session> = HashMap::new();
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
        if meta.get("http_mocks").is_some_and(|v| !v.is_null()) {
            // Mocked HTTP cannot be replayed without an HTTP mock.
            unsupported.push(name);
            continue;
        }
        let previous = match meta["continues_from"].as_str() {
            None => None,
            Some(from) => match sessions.remove(from) {
                Some(session) => Some(session),
                None => {
                    failed += 1;
                    eprintln!("FAIL {name}: continues from {from}, which left no bot instance");
                    continue;
                }
            },
        };
        match run_case(case, &meta, entry, &h, previous) {
            Ok((outcome, session)) => {
                if let Some(session) = session {
                    sessions.insert(name.clone(), session);
                }
                match outcome {
                    Outcome::Pass => passed += 1,
                    Outcome::Fail(diff) => {
                        failed += 1;
                        let clock =
                            meta["recorded_at"].as_str().map(|at| format!(" (clock at {at})")).unwrap_or_default();
                        eprintln!("FAIL {name}{clock}:\n{diff}");
                    }
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("FAIL {name}: {e}");
            }
        }
    }
    let skipped: usize = not_implemented.values().sum();
    eprintln!("{label}: {skipped} case(s) of {} module(s) not implemented", not_implemented.len());
    for (module, count) in &not_implemented {
        eprintln!("{label}:   not implemented: {module} ({count} case(s))");
    }
    if !unsupported.is_empty() {
        eprintln!("{label}: {} case(s) not replayable (HTTP mocks): {}", unsupported.len(), unsupported.join(", "));
    }
    eprintln!("{label}: {passed} passed, {failed} failed");
    assert_eq!(failed, 0, "{label}: {failed} case(s) failed");
}
