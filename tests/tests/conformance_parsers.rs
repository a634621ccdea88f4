//! The parser conformance harness: runs every case of the IntelMQ parser corpus
//! (`$INTELMQ_CONFORMANCE_DIR`, default `../shared/conformance`) through our parser of the same
//! module and compares the events by IntelMQ's rule (the corpus README). Cases whose module is not
//! registered yet are listed as not implemented, not counted as failures.

use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context as _};
use serde_json::{Map, Value};

use intelmq_node::bots::parsers::{run_parser, ParserCommon};
use intelmq_node::bots::registry;
use intelmq_node::bots::{Bot, BotKind, Context, MemoryLog, MemoryState};
use intelmq_node::message::{Harmonization, Message, MessageKind};
use intelmq_tests::conformance::{
    case_dirs, case_name, corpus_dir, corpus_required, load_object, load_objects, CompareRule, JsonMessage,
};

/// Parameters the recording harness set that do not belong to the bot.
const HARNESS_ONLY_PARAMETERS: &[&str] = &["logging_level"];

/// What happened to one case.
enum Outcome {
    Passed,
    Failed(String),
    NotImplemented,
}

fn harmonization() -> Arc<Harmonization> {
    Harmonization::builtin()
}

fn corpus() -> Option<std::path::PathBuf> {
    let dir = corpus_dir("INTELMQ_CONFORMANCE_DIR", "conformance");
    if dir.is_dir() {
        return Some(dir);
    }
    if corpus_required() {
        panic!("conformance corpus {} not found and INTELMQ_REQUIRE_CONFORMANCE=1", dir.display());
    }
    println!("conformance: corpus {} not found, skipped", dir.display());
    None
}

/// Runs one case folder.
fn run_case(dir: &Path, harmonization: &Arc<Harmonization>) -> anyhow::Result<Outcome> {
    let meta = load_object(&dir.join("meta.json"))?;
    let module = meta.get("parser").and_then(Value::as_str).ok_or_else(|| anyhow!("meta.json has no `parser`"))?;
    let Some(entry) = registry::find(module) else {
        return Ok(Outcome::NotImplemented);
    };

    let mut params = load_object(&dir.join("params.json"))?;
    for key in HARNESS_ONLY_PARAMETERS {
        params.remove(*key);
    }
    let common = ParserCommon::take_from(&mut params).map_err(|e| anyhow!("{e}"))?;
    let mut bot = match (entry.build)(&params) {
        Ok(Bot::Parser(bot)) => bot,
        Ok(other) => bail!("module {module} is registered as {:?}, not as a parser", other.kind()),
        Err(e) => return Ok(Outcome::Failed(format!("  cannot build the bot: {e}\n"))),
    };
    if let Err(e) = common.validate(harmonization) {
        return Ok(Outcome::Failed(format!("  invalid common parameters: {e}\n")));
    }

    let reports = load_objects(&dir.join("report.json"))?;
    let expected = load_objects(&dir.join("expected.json"))?;

    let mut state = MemoryState::default();
    let mut log = MemoryLog::default();
    let mut events: Vec<Message> = Vec::new();
    let mut failed_lines = 0usize;
    let mut bot_errors: Vec<String> = Vec::new();
    for report in reports {
        let report = Message::from_map(harmonization.clone(), report, Some(MessageKind::Report))
            .map_err(|e| anyhow!("report.json: {e}"))?;
        let mut ctx = Context {
            bot_id: "conformance-parser",
            harmonization,
            root: dir,
            state: &mut state,
            log: &mut log,
            clock: &intelmq_node::bots::SystemClock,
        };
        match run_parser(bot.as_mut(), &report, &common, &mut ctx) {
            Ok(parsed) => {
                events.extend(parsed.events);
                failed_lines += parsed.failed.len();
            }
            Err(e) => bot_errors.push(e.to_string()),
        }
    }

    let mut problems = String::new();

    // The generic checks: every event survives the wire and has `raw` and `classification.type`.
    let mut actual: Vec<JsonMessage> = Vec::with_capacity(events.len());
    for (i, event) in events.iter().enumerate() {
        let wire = event.to_wire();
        if let Err(e) = Message::from_wire(harmonization.clone(), wire.as_bytes(), None) {
            problems.push_str(&format!("  event #{i} does not re-parse from the wire: {e}\n"));
        }
        match serde_json::from_str::<Value>(&wire) {
            Ok(Value::Object(map)) => {
                for key in ["raw", "classification.type"] {
                    if !map.contains_key(key) {
                        problems.push_str(&format!("  event #{i} has no `{key}`\n"));
                    }
                }
                actual.push(map);
            }
            _ => problems.push_str(&format!("  event #{i} is not a JSON object on the wire: {wire}\n")),
        }
    }

    // Errors IntelMQ logged: failed lines, or a failure of the whole report.
    let logged: Vec<&str> = meta
        .get("logged_errors")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let expected_failed_lines = logged.iter().filter(|e| e.starts_with("Failed to parse line.")).count();
    let expects_bot_error = logged.iter().any(|e| e.starts_with("Bot has found a problem."));
    if failed_lines != expected_failed_lines {
        problems.push_str(&format!(
            "  {failed_lines} failed line(s), IntelMQ logged {expected_failed_lines}: {logged:?}\n"
        ));
        for (level, line) in &log.lines {
            problems.push_str(&format!("    log {}: {line}\n", level.as_str()));
        }
    }
    if !bot_errors.is_empty() && !expects_bot_error {
        problems.push_str(&format!("  the bot failed on the report: {}\n", bot_errors.join("; ")));
    }
    if bot_errors.is_empty() && expects_bot_error {
        problems.push_str(&format!("  IntelMQ failed on the report ({logged:?}), we did not\n"));
    }

    // Dates without a year get the current year in IntelMQ (and here): the expectation holds the
    // year the corpus was recorded in, so it is moved to the year this test runs in.
    let mut expected = expected;
    if meta.get("current_year_dependent").and_then(Value::as_bool).unwrap_or(false) {
        let year = intelmq_node::message::datetime::now_utc()[..4].to_string();
        for ev in &mut expected {
            if let Some(Value::String(t)) = ev.get_mut("time.source") {
                if t.len() >= 4 {
                    t.replace_range(..4, &year);
                }
            }
        }
    }
    let rule = CompareRule::intelmq();
    if let Err(diff) = rule.compare_lists(&expected, &actual) {
        problems.push_str(&diff);
    }

    Ok(if problems.is_empty() { Outcome::Passed } else { Outcome::Failed(problems) })
}

/// The project's own cases (same layout), for parsers and inputs the corpus lacks.
fn own_cases() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/conformance")
}

#[test]
fn parsers_match_intelmq() {
    let Some(corpus) = corpus() else { return };
    run_corpus("conformance", &corpus);
}

#[test]
fn parsers_match_the_projects_own_cases() {
    run_corpus("conformance (project cases)", &own_cases());
}

fn run_corpus(label: &str, corpus: &Path) {
    let harmonization = harmonization();
    let dirs = case_dirs(corpus).expect("the corpus is readable");

    let (mut passed, mut failed) = (0usize, Vec::new());
    let mut not_implemented = Vec::new();
    for dir in &dirs {
        let name = case_name(dir);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_case(dir, &harmonization)))
            .unwrap_or_else(|panic| {
                let text = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                Ok(Outcome::Failed(format!("  panicked: {text}\n")))
            })
            .with_context(|| format!("case {name}"));
        match outcome {
            Ok(Outcome::Passed) => passed += 1,
            Ok(Outcome::NotImplemented) => not_implemented.push(name),
            Ok(Outcome::Failed(diff)) => {
                println!("FAILED {name}\n{diff}");
                failed.push(name);
            }
            Err(e) => {
                println!("FAILED {name}\n  {e:#}\n");
                failed.push(name);
            }
        }
    }

    println!("{label}: {} case(s) not implemented: {}", not_implemented.len(), not_implemented.join(", "));
    if !failed.is_empty() {
        println!("{label}: failed cases: {}", failed.join(", "));
    }
    println!("{label}: {passed} passed, {} failed", failed.len());
    assert_eq!(failed.len(), 0, "parser conformance failures: {}", failed.join(", "));
}

#[test]
fn every_registered_parser_has_a_case() {
    let Some(corpus) = corpus() else { return };
    let mut covered = std::collections::HashSet::new();
    let mut dirs = case_dirs(&corpus).expect("the corpus is readable");
    dirs.extend(case_dirs(&own_cases()).expect("the project's cases are readable"));
    for dir in dirs {
        let meta: Map<String, Value> = load_object(&dir.join("meta.json")).expect("meta.json is readable");
        if let Some(module) = meta.get("parser").and_then(Value::as_str) {
            covered.insert(module.to_string());
        }
    }
    let missing: Vec<&str> = registry::REGISTRY
        .iter()
        .filter(|e| e.kind == BotKind::Parser && !covered.contains(e.module))
        .map(|e| e.module)
        .collect();
    assert!(missing.is_empty(), "registered parsers without a conformance case: {missing:?}");
}
