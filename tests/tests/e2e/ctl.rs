//! `intelmqctl` against a real `intelmq-node` daemon on the shipped default pipeline: every verb
//! in both grammars (noun-verb and IntelMQ's flat forms), text and `--json`, and the failure
//! paths with their exit codes (1 failed, 2 not found/usage, 3 no node, 4 authentication).

use std::time::Duration;

use intelmq_tests::{wait_for, Ctl, CtlOutput, DaemonNode, TestNode};
use serde_json::{json, Value};

/// Events the shipped pipeline writes (tests/data/default-pipeline/events.jsonl).
const EXPECTED_EVENTS: usize = 36;
const EVENTS: &str = "var/lib/bots/file-output/events.txt";
const BOTS: [&str; 8] = [
    "urlhaus-collector",
    "c2-blocklist-collector",
    "urlhaus-parser",
    "c2-blocklist-parser",
    "deduplicator-expert",
    "taxonomy-expert",
    "url2fqdn-expert",
    "file-output",
];
const EVENT: &str = r#"{"__type": "Event", "source.ip": "192.0.2.1", "classification.type": "malware-distribution"}"#;

/// A diagnostic is one line on stderr starting with `intelmqctl: `, and nothing else goes there.
fn assert_one_line_diagnostic(o: &CtlOutput) {
    let err = o.stderr.trim_end();
    assert!(err.starts_with("intelmqctl: "), "{o:#?}");
    assert_eq!(err.lines().count(), 1, "{o:#?}");
    assert!(!o.stderr.contains("panicked") && !o.stderr.contains("backtrace"), "{o:#?}");
}

fn idle_daemon() -> DaemonNode {
    let d = DaemonNode::shipped();
    d.wait_idle(EXPECTED_EVENTS);
    d
}

fn wait_state(ctl: &Ctl, bot: &str, state: &str) {
    wait_for(&format!("{bot} to be {state}"), Duration::from_secs(20), || {
        ctl.run(&["status", bot, "--json"]).stdout.trim() == format!("\"{state}\"")
    });
}

fn queue_size(ctl: &Ctl, queue: &str) -> u64 {
    let q = ctl.run(&["list", "queues", "--json"]).expect_code(0).json();
    for (_, bot) in q.as_object().into_iter().flatten() {
        if bot["source_queue"][0] == queue {
            return bot["source_queue"][1].as_u64().unwrap_or(0);
        }
    }
    panic!("no bot consumes {queue}: {q}");
}

#[test]
fn no_node_running_is_exit_code_three_with_a_one_line_message() {
    let node = TestNode::with_shipped_etc();
    let ctl = Ctl::new(node.root());
    let socket = node.root().join("var/run/control.sock");
    for args in [
        &["status"][..],
        &["bot", "status", "file-output"],
        &["list", "queues", "--json"],
        &["queue", "list"],
        &["dump", "list"],
        &["check"],
        &["stats"],
        &["log", "file-output"],
    ] {
        let o = ctl.run(args);
        assert_eq!(o.code, 3, "{args:?}: {o:#?}");
        assert_one_line_diagnostic(&o);
        assert!(
            o.stderr.starts_with(&format!("intelmqctl: cannot connect to the node at {}: ", socket.display())),
            "{o:#?}"
        );
        assert!(o.stderr.trim_end().ends_with("(is intelmq-node running?)"), "{o:#?}");
        assert!(o.stdout.is_empty(), "{o:#?}");
    }
    // The root also comes from $INTELMQ_ROOT_DIR; --socket and --endpoint name the node directly.
    let env = Ctl::new(node.root()).env("INTELMQ_ROOT_DIR", &node.root().display().to_string());
    let o = env.run_raw(&["status"]);
    assert_eq!(o.code, 3, "{o:#?}");
    assert!(o.stderr.contains(&socket.display().to_string()), "{o:#?}");
    let o = ctl.run_raw(&["--socket", "/nonexistent/control.sock", "status"]);
    assert_eq!(o.code, 3, "{o:#?}");
    assert!(o.stderr.contains("/nonexistent/control.sock"), "{o:#?}");
    let o = ctl.run_raw(&["--endpoint", "http://127.0.0.1:1", "status"]);
    assert_eq!(o.code, 3, "{o:#?}");
    assert!(o.stderr.contains("http://127.0.0.1:1"), "{o:#?}");
    let o = Ctl::new(node.root()).env("INTELMQ_CTL_ENDPOINT", "http://127.0.0.1:1").run_raw(&["status"]);
    assert_eq!(o.code, 3, "{o:#?}");
    assert!(o.stderr.contains("http://127.0.0.1:1"), "{o:#?}");
}

#[test]
fn bad_command_lines_and_messages_are_exit_code_two_before_connecting() {
    let node = TestNode::with_shipped_etc();
    let ctl = Ctl::new(node.root());
    for args in [
        &["frobnicate"][..],
        &["run", "taxonomy-expert"],
        &["run", "taxonomy-expert", "console"],
        &["bot", "enable"],
        &["log", "file-output", "5", "LOUD"],
        &["list", "tables"],
        &["dump", "delete", "urlhaus-parser"],
        &["queue", "inject", "file-output-queue", "--msg", "{bad json"],
        &["queue", "inject", "file-output-queue", "--msg", "/no/such/message.json"],
        &["bot", "run", "taxonomy-expert", "--msg", "[1, 2]"],
        &["start", "file-output", "--group", "outputs"],
    ] {
        let o = ctl.run(args);
        assert_eq!(o.code, 2, "{args:?}: {o:#?}");
        assert_one_line_diagnostic(&o);
        assert!(o.stdout.is_empty(), "{o:#?}");
    }
    let help = ctl.run_raw(&["--help"]);
    assert_eq!(help.code, 0);
    for line in ["3  cannot connect", "4  authentication failed", "2  not found or usage"] {
        assert!(help.stdout.contains(line), "{help:#?}");
    }
}

#[test]
fn status_of_the_botnet_a_group_and_one_bot_in_both_grammars() {
    let d = idle_daemon();
    let ctl = d.ctl();
    let text = ctl.run(&["status"]).expect_code(0).stdout.clone();
    for bot in BOTS {
        assert!(text.contains(&format!("Bot {bot} is running.\n")), "{text}");
    }
    assert_eq!(ctl.run(&["bot", "status"]).expect_code(0).stdout, text);

    let all = ctl.run(&["status", "--json"]).expect_code(0).json();
    let expected: serde_json::Map<String, Value> = BOTS.iter().map(|b| (b.to_string(), json!("running"))).collect();
    assert_eq!(all, Value::Object(expected));
    assert_eq!(ctl.run(&["--type", "json", "status"]).json(), all);

    assert_eq!(ctl.run(&["status", "file-output", "--json"]).expect_code(0).json(), json!("running"));
    assert_eq!(ctl.run(&["bot", "status", "file-output"]).expect_code(0).stdout, "Bot file-output is running.\n");
    assert_eq!(
        ctl.run(&["status", "--group", "parsers", "--json"]).expect_code(0).json(),
        json!({"urlhaus-parser": "running", "c2-blocklist-parser": "running"})
    );
    assert_eq!(
        ctl.run(&["bot", "status", "-g", "Output", "--json"]).expect_code(0).json(),
        json!({"file-output": "running"})
    );
}

#[test]
fn stop_start_restart_and_reload_follow_intelmq_exit_codes() {
    let d = idle_daemon();
    let ctl = d.ctl();
    let o = ctl.run(&["stop", "file-output"]).expect_code(0).stdout.clone();
    assert_eq!(o, "Bot file-output is stopped.\n");
    // status of a stopped bot: IntelMQ returns 1.
    assert_eq!(ctl.run(&["status", "file-output"]).expect_code(1).stdout, "Bot file-output is stopped.\n");
    assert_eq!(ctl.run(&["bot", "status", "file-output", "--json"]).expect_code(1).json(), json!("stopped"));
    // The botnet status is 1 while one bot is stopped.
    let all = ctl.run(&["status", "--json"]).expect_code(1).json();
    assert_eq!(all["file-output"], json!("stopped"));
    assert_eq!(all["taxonomy-expert"], json!("running"));
    // Stopping a stopped bot is fine; reloading it is not (it does not run).
    ctl.run(&["bot", "stop", "file-output"]).expect_code(0);

    let started = ctl.run(&["bot", "start", "file-output", "--json"]).expect_code(0).json();
    assert!(started == json!("running") || started == json!("starting"), "{started}");
    wait_state(&ctl, "file-output", "running");
    let again = ctl.run(&["start", "file-output"]).expect_code(0).stdout.clone();
    assert_eq!(again, "Bot file-output is running.\n");

    let restarted = ctl.run(&["restart", "taxonomy-expert"]).expect_code(0).stdout.clone();
    assert!(restarted.starts_with("Bot taxonomy-expert is "), "{restarted}");
    ctl.run(&["bot", "restart", "taxonomy-expert", "--json"]).expect_code(0);
    wait_state(&ctl, "taxonomy-expert", "running");
    ctl.run(&["reload", "url2fqdn-expert"]).expect_code(0);
    let reloaded = ctl.run(&["bot", "reload", "url2fqdn-expert", "--json"]).expect_code(0).json();
    assert!(reloaded == json!("running") || reloaded == json!("starting"), "{reloaded}");

    // Groups.
    let stopped = ctl.run(&["bot", "stop", "--group", "experts", "--json"]).expect_code(0).json();
    assert_eq!(
        stopped,
        json!({"deduplicator-expert": "stopped", "taxonomy-expert": "stopped", "url2fqdn-expert": "stopped"})
    );
    ctl.run(&["reload", "--group", "experts"]).expect_code(1);
    ctl.run(&["start", "--group", "experts"]).expect_code(0);
    wait_state(&ctl, "url2fqdn-expert", "running");
    // The whole botnet.
    ctl.run(&["stop"]).expect_code(0);
    let all = ctl.run(&["status", "--json"]).expect_code(1).json();
    assert!(all.as_object().is_some_and(|o| o.values().all(|s| s == "stopped")), "{all}");
    ctl.run(&["bot", "start"]).expect_code(0);
    for bot in BOTS {
        wait_state(&ctl, bot, "running");
    }
    ctl.run(&["status"]).expect_code(0);
}

#[test]
fn unknown_bots_groups_and_queues_are_exit_code_two_with_one_line() {
    let d = DaemonNode::shipped();
    let ctl = d.ctl();
    for args in [
        &["status", "no-such-bot"][..],
        &["bot", "status", "no-such-bot", "--json"],
        &["start", "no-such-bot"],
        &["bot", "stop", "no-such-bot"],
        &["restart", "no-such-bot"],
        &["bot", "reload", "no-such-bot"],
        &["enable", "no-such-bot"],
        &["bot", "disable", "no-such-bot"],
        &["log", "no-such-bot"],
        &["run", "no-such-bot", "process", "--msg", EVENT],
        &["bot", "list", "no-such-bot"],
        &["dump", "show", "no-such-bot"],
        &["dump", "delete", "no-such-bot", "--all"],
        &["dump", "recover", "no-such-bot", "--all"],
        &["dump", "export", "no-such-bot"],
    ] {
        let o = ctl.run(args);
        assert_eq!(o.code, 2, "{args:?}: {o:#?}");
        assert_one_line_diagnostic(&o);
        assert!(o.stderr.contains("no-such-bot"), "{args:?}: {o:#?}");
        assert!(o.stdout.is_empty(), "{args:?}: {o:#?}");
    }
    let o = ctl.run(&["status", "--group", "robots"]);
    assert_eq!(o.code, 2, "{o:#?}");
    assert!(o.stderr.contains("robots"), "{o:#?}");
    for args in [&["queue", "clear", "no-such-queue"][..], &["queue", "inject", "no-such-queue", "--msg", EVENT]] {
        let o = ctl.run(args);
        assert_eq!(o.code, 2, "{args:?}: {o:#?}");
        assert_one_line_diagnostic(&o);
        assert!(o.stderr.contains("no-such-queue"), "{o:#?}");
    }
    // IntelMQ's JSON result of clearing an unknown queue.
    let o = ctl.run(&["clear", "no-such-queue", "--json"]);
    assert_eq!(o.code, 2, "{o:#?}");
    assert_eq!(o.json(), json!("not-found"));
}

#[test]
fn enable_and_disable_persist_in_the_configuration() {
    let d = DaemonNode::shipped();
    let ctl = d.ctl();
    let o = ctl.run(&["disable", "file-output"]).expect_code(0).stdout.clone();
    assert!(o.starts_with("Bot file-output is disabled"), "{o}");
    let runtime: Value = serde_json::from_str(&d.node.read("etc/runtime.conf")).expect("runtime.conf is JSON");
    assert_eq!(runtime["file-output"]["enabled"], json!(false), "{runtime}");
    let enabled_only = ctl.run(&["list", "bots", "--configured", "--non-zero", "--json"]).expect_code(0).json();
    let ids: Vec<&str> = enabled_only.as_array().into_iter().flatten().filter_map(|b| b["id"].as_str()).collect();
    assert_eq!(ids.len(), 7, "{enabled_only}");
    assert!(!ids.contains(&"file-output"), "{enabled_only}");
    let listed = ctl.run(&["bot", "list", "file-output", "--json"]).expect_code(0).json();
    assert_eq!(listed[0]["enabled"], json!(false), "{listed}");

    // A disabled bot that is stopped reports `disabled`, which status accepts (exit 0).
    ctl.run(&["stop", "file-output"]).expect_code(0);
    assert_eq!(ctl.run(&["status", "file-output", "--json"]).expect_code(0).json(), json!("disabled"));
    // A botnet-wide start skips it.
    let all = ctl.run(&["start", "--json"]).expect_code(0).json();
    assert_eq!(all["file-output"], json!("disabled"), "{all}");

    let o = ctl.run(&["bot", "enable", "file-output"]).expect_code(0).stdout.clone();
    assert!(o.starts_with("Bot file-output is enabled."), "{o}");
    let runtime: Value = serde_json::from_str(&d.node.read("etc/runtime.conf")).expect("runtime.conf is JSON");
    assert_eq!(runtime["file-output"]["enabled"], json!(true), "{runtime}");
    assert_eq!(ctl.run(&["disable", "file-output", "--json"]).expect_code(0).json(), json!("disabled"));
    ctl.run(&["enable", "file-output", "--json"]).expect_code(0);
}

#[test]
fn list_bots_gives_the_catalogue_or_the_configured_bots() {
    let d = DaemonNode::shipped();
    let ctl = d.ctl();
    let cat = ctl.run(&["list", "bots", "--json"]).expect_code(0).json();
    for group in ["Collector", "Parser", "Expert", "Output"] {
        assert!(cat.get(group).is_some_and(Value::is_object), "{group}: {cat}");
    }
    let modules: Vec<&str> = cat
        .as_object()
        .into_iter()
        .flat_map(|g| g.values())
        .flat_map(|g| g.as_object().into_iter().flat_map(|b| b.values()))
        .filter_map(|b| b["module"].as_str())
        .collect();
    assert!(modules.contains(&"intelmq.bots.outputs.file.output"), "{modules:?}");
    let text = ctl.run(&["list", "bots"]).expect_code(0).stdout.clone();
    assert!(text.starts_with("GROUP"), "{text}");
    assert!(text.contains("intelmq.bots.experts.taxonomy.expert"), "{text}");
    assert_eq!(ctl.run(&["bot", "list", "--available"]).expect_code(0).stdout, text);

    let configured = ctl.run(&["list", "bots", "--configured", "--json"]).expect_code(0).json();
    let items = configured.as_array().expect("a list");
    assert_eq!(items.len(), 8, "{configured}");
    for item in items {
        let keys: Vec<&str> = item.as_object().expect("object").keys().map(String::as_str).collect();
        assert_eq!(keys, ["id", "description"], "{item}");
    }
    assert!(items.iter().any(|b| b["id"] == "taxonomy-expert"
        && b["description"] == "Sets classification.taxonomy from classification.type."));
    let text = ctl.run(&["list", "bots", "-c"]).expect_code(0).stdout.clone();
    assert!(text.lines().count() == 9 && text.contains("file-output"), "{text}");

    let experts = ctl.run(&["bot", "list", "--group", "experts", "--json"]).expect_code(0).json();
    let ids: Vec<&str> = experts.as_array().into_iter().flatten().filter_map(|b| b["id"].as_str()).collect();
    assert_eq!(ids, ["deduplicator-expert", "taxonomy-expert", "url2fqdn-expert"], "{experts}");
    assert_eq!(experts[1]["module"], json!("intelmq.bots.experts.taxonomy.expert"));
    assert!(experts[1]["state"].is_string(), "{experts}");
    let table = ctl.run(&["bot", "list"]).expect_code(0).stdout.clone();
    assert!(table.starts_with("BOT "), "{table}");
    assert_eq!(table.lines().count(), 9, "{table}");
    assert!(table.lines().any(|l| l.starts_with("file-output ") && l.contains("Output")), "{table}");
}

#[test]
fn queues_list_inject_and_clear_in_both_grammars() {
    let d = idle_daemon();
    let ctl = d.ctl();
    // Nothing waits after the run.
    assert_eq!(ctl.run(&["list", "queues", "--count", "--json"]).expect_code(0).json(), json!({"total-messages": 0}));
    assert_eq!(ctl.run(&["queue", "list", "-s"]).expect_code(0).stdout, "0\n");
    let shape = ctl.run(&["list", "queues", "--json"]).expect_code(0).json();
    assert_eq!(shape["urlhaus-collector"], json!({"destination_queues": [["urlhaus-parser-queue", 0]]}), "{shape}");
    assert_eq!(
        shape["taxonomy-expert"],
        json!({"source_queue": ["taxonomy-expert-queue", 0], "destination_queues": [["url2fqdn-expert-queue", 0]]}),
        "{shape}"
    );
    assert_eq!(shape["file-output"]["source_queue"], json!(["file-output-queue", 0]), "{shape}");

    // Messages wait in the inbox of a stopped bot.
    ctl.run(&["stop", "file-output"]).expect_code(0);
    let two = format!("[{EVENT}, {EVENT}]");
    let o = ctl.run(&["queue", "inject", "file-output-queue", "--msg", &two]).expect_code(0).stdout.clone();
    assert_eq!(o, "Injected 2 messages into file-output-queue (2 in the queue now).\n");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("event.json");
    std::fs::write(&file, EVENT).expect("write message");
    let o = ctl.run(&["queue", "inject", "file-output-queue", "--msg", &file.display().to_string(), "--json"]);
    assert_eq!(o.expect_code(0).json(), json!({"queue": "file-output-queue", "injected": 1, "size": 3}));
    assert_eq!(queue_size(&ctl, "file-output-queue"), 3);
    let shape = ctl.run(&["list", "queues", "--json"]).expect_code(0).json();
    assert_eq!(shape["url2fqdn-expert"]["destination_queues"], json!([["file-output-queue", 3]]), "{shape}");
    assert_eq!(ctl.run(&["queue", "list", "--count", "--json"]).json(), json!({"total-messages": 3}));
    let nz = ctl.run(&["list", "queues", "--non-zero", "--json"]).expect_code(0).json();
    assert_eq!(
        nz,
        json!({
            "url2fqdn-expert": {"destination_queues": [["file-output-queue", 3]]},
            "file-output": {"source_queue": ["file-output-queue", 3]},
        })
    );
    let table = ctl.run(&["queue", "list", "--non-zero"]).expect_code(0).stdout.clone();
    assert_eq!(
        table,
        "QUEUE              MESSAGES  CONSUMER\nfile-output-queue         3  file-output\nTotal: 3 messages.\n"
    );
    let full = ctl.run(&["list", "queues"]).expect_code(0).stdout.clone();
    assert!(full.contains("taxonomy-expert-queue") && full.ends_with("Total: 3 messages.\n"), "{full}");

    // queues-and-status: IntelMQ's [queues, statuses]; 1 because file-output is stopped.
    let qs = ctl.run(&["list", "queues-and-status", "--json"]).expect_code(1).json();
    assert_eq!(qs[0]["file-output"]["source_queue"], json!(["file-output-queue", 3]), "{qs}");
    assert_eq!(qs[1]["file-output"], json!("stopped"), "{qs}");
    let text = ctl.run(&["list", "queues-and-status"]).expect_code(1).stdout.clone();
    assert!(text.contains("file-output-queue") && text.contains("Bot file-output is stopped."), "{text}");

    // A message that breaks the harmonization is refused (INVALID_ARGUMENT), naming the field.
    let bad = ctl.run(&["queue", "inject", "file-output-queue", "--msg", r#"{"source.ip": "not-an-ip"}"#]);
    assert_eq!(bad.code, 2, "{bad:#?}");
    assert_one_line_diagnostic(&bad);
    assert!(bad.stderr.contains("source.ip"), "{bad:#?}");
    assert_eq!(queue_size(&ctl, "file-output-queue"), 3);

    // clear: flat and noun forms, text and IntelMQ's "success".
    let o = ctl.run(&["clear", "file-output-queue"]).expect_code(0).stdout.clone();
    assert_eq!(o, "Queue file-output-queue cleared (3 messages deleted).\n");
    assert_eq!(queue_size(&ctl, "file-output-queue"), 0);
    assert_eq!(ctl.run(&["queue", "clear", "file-output-queue", "--json"]).expect_code(0).json(), json!("success"));
    ctl.run(&["start", "file-output"]).expect_code(0);
}

#[test]
fn run_sends_one_message_through_a_bot() {
    let d = idle_daemon();
    let ctl = d.ctl();
    // A given message, dry run, shown: the taxonomy is set, nothing is sent.
    let o = ctl
        .run(&["run", "taxonomy-expert", "process", "--dryrun", "--show-sent", "--msg", EVENT])
        .expect_code(0)
        .stdout
        .clone();
    assert!(o.contains("\"classification.taxonomy\": \"malicious-code\""), "{o}");
    assert!(o.contains("Would send a message to path '_default': url2fqdn-expert-queue."), "{o}");
    assert!(o.contains("Dry run: nothing was sent or acknowledged."), "{o}");
    let j = ctl.run(&["bot", "run", "taxonomy-expert", "-d", "-s", "-m", EVENT, "--json"]).expect_code(0).json();
    assert_eq!(j["sent"][0]["queues"], json!(["url2fqdn-expert-queue"]), "{j}");
    assert_eq!(j["sent"][0]["message"]["classification.taxonomy"], json!("malicious-code"), "{j}");
    assert_eq!(j["acknowledged"], json!(false), "{j}");
    assert_eq!(j["error"], Value::Null, "{j}");
    // Without --show-sent the messages are only listed by path.
    let j = ctl.run(&["bot", "run", "taxonomy-expert", "--dryrun", "--msg", EVENT, "--json"]).expect_code(0).json();
    assert!(j["sent"][0].get("message").is_none(), "{j}");
    assert_eq!(queue_size(&ctl, "url2fqdn-expert-queue"), 0);

    // The next inbox message of a running bot cannot be taken: FAILED_PRECONDITION, exit 1.
    let o = ctl.run(&["run", "file-output", "process"]);
    assert_eq!(o.code, 1, "{o:#?}");
    assert_one_line_diagnostic(&o);
    assert!(o.stderr.contains("file-output"), "{o:#?}");

    // Of a stopped bot: dry run leaves it in the queue, a real run writes and acknowledges it.
    ctl.run(&["stop", "file-output"]).expect_code(0);
    ctl.run(&["queue", "inject", "file-output-queue", "--msg", EVENT]).expect_code(0);
    let j = ctl.run(&["run", "file-output", "process", "--dryrun", "--json"]).expect_code(0).json();
    assert_eq!(j["input"]["source.ip"], json!("192.0.2.1"), "{j}");
    assert_eq!(j["acknowledged"], json!(false), "{j}");
    assert_eq!(queue_size(&ctl, "file-output-queue"), 1);
    let before = d.node.read(EVENTS).lines().count();
    let o = ctl.run(&["run", "file-output", "process"]).expect_code(0).stdout.clone();
    assert!(o.contains("The input message was acknowledged."), "{o}");
    assert_eq!(queue_size(&ctl, "file-output-queue"), 0);
    assert_eq!(d.node.read(EVENTS).lines().count(), before + 1);

    // Messages that are not JSON are refused before anything runs.
    let o = ctl.run(&["run", "taxonomy-expert", "process", "--msg", "{not json"]);
    assert_eq!(o.code, 2, "{o:#?}");
    assert_one_line_diagnostic(&o);
}

#[test]
fn log_shows_the_last_lines_at_or_above_a_level() {
    let d = idle_daemon();
    let ctl = d.ctl();
    let all = ctl.run(&["log", "urlhaus-parser", "-1", "--json"]).expect_code(0).json();
    let lines = all.as_array().expect("a list");
    assert!(!lines.is_empty(), "{all}");
    for l in lines {
        let keys: Vec<&str> = l.as_object().expect("object").keys().map(String::as_str).collect();
        assert!(keys.starts_with(&["date", "bot_id", "thread_id", "log_level", "message"]), "{l}");
        assert_eq!(l["bot_id"], json!("urlhaus-parser"), "{l}");
    }
    assert!(lines.iter().any(|l| l["message"] == "Bot is starting."), "{all}");
    assert_eq!(
        ctl.run(&["log", "urlhaus-parser", "1", "--json"]).expect_code(0).json().as_array().map(Vec::len),
        Some(1)
    );
    let text = ctl.run(&["log", "urlhaus-parser", "-1"]).expect_code(0).stdout.clone();
    assert!(text.lines().any(|l| l.ends_with(" - urlhaus-parser - INFO - Bot is starting.")), "{text}");
    let errors = ctl.run(&["log", "urlhaus-parser", "-1", "error", "--json"]).expect_code(0).json();
    assert!(
        errors.as_array().into_iter().flatten().all(|l| l["log_level"] == "ERROR" || l["log_level"] == "CRITICAL"),
        "{errors}"
    );
    let default = ctl.run(&["log", "urlhaus-parser", "--json"]).expect_code(0).json();
    assert!(default.as_array().is_some_and(|l| l.len() <= 10), "{default}");
}

#[test]
fn check_reports_success_on_the_shipped_configuration() {
    let d = DaemonNode::shipped();
    let ctl = d.ctl();
    let text = ctl.run(&["check"]).expect_code(0).stdout.clone();
    assert!(text.ends_with("Check result: success.\n"), "{text}");
    let j = ctl.run(&["check", "--no-connections", "--json"]).expect_code(0).json();
    assert_eq!(j["status"], json!("success"), "{j}");
    let lines = j["lines"].as_array().expect("lines");
    assert!(lines.iter().all(|l| l.as_array().is_some_and(|p| p.len() == 2 && p[0].is_string())), "{j}");
}

#[test]
fn stats_give_a_snapshot_and_watch_streams_them() {
    let d = idle_daemon();
    let ctl = d.ctl();
    let table = ctl.run(&["stats"]).expect_code(0).stdout.clone();
    assert!(table.starts_with("BOT "), "{table}");
    assert!(table.lines().next().is_some_and(|h| h.contains("RECEIVED") && h.contains("INBOX")), "{table}");
    assert_eq!(table.lines().count(), 9, "{table}");
    let j = ctl.run(&["stats", "--json"]).expect_code(0).json();
    let bots = j["bots"].as_array().expect("bots");
    assert_eq!(bots.len(), 8, "{j}");
    let out = bots.iter().find(|b| b["bot_id"] == "file-output").expect("file-output");
    assert_eq!(out["received"], json!(EXPECTED_EVENTS), "{j}");
    assert_eq!(out["state"], json!("running"), "{j}");
    assert!(j["timestamp_ms"].as_u64().is_some_and(|t| t > 0), "{j}");

    let w = ctl.run(&["stats", "--watch", "--interval", "100", "--limit", "2", "--json"]).expect_code(0).stdout.clone();
    let snaps: Vec<Value> = w.lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect();
    assert_eq!(snaps.len(), 2, "{w}");
    assert!(snaps[1]["timestamp_ms"].as_u64() > snaps[0]["timestamp_ms"].as_u64(), "{w}");
    let w = ctl.run(&["stats", "-w", "--interval", "100", "--limit", "2"]).expect_code(0).stdout.clone();
    assert_eq!(w.matches("Stats at ").count(), 2, "{w}");
}

#[test]
fn dumps_list_show_export_import_edit_recover_and_delete() {
    let d = idle_daemon();
    let ctl = d.ctl();
    // The shipped URLhaus sample has one line that breaks the harmonization.
    assert_eq!(ctl.run(&["dump", "list", "--json"]).expect_code(0).json(), json!({"urlhaus-parser": 1}));
    assert_eq!(ctl.run(&["dump", "list"]).expect_code(0).stdout, "BOT             DUMPS\nurlhaus-parser      1\n");
    let shown = ctl.run(&["dump", "show", "urlhaus-parser", "--json"]).expect_code(0).json();
    let entry = &shown[0];
    let id = entry["id"].as_u64().expect("numeric id");
    assert_eq!(entry["bot_id"], json!("urlhaus-parser"), "{shown}");
    assert_eq!(entry["source_queue"], json!("urlhaus-parser-queue"), "{shown}");
    assert!(entry["traceback"].as_array().is_some_and(|t| !t.is_empty()), "{shown}");
    assert_eq!(entry["message"]["__type"], json!("Report"), "{shown}");
    let id_s = id.to_string();
    let text = ctl.run(&["dump", "show", "urlhaus-parser", &id_s]).expect_code(0).stdout.clone();
    assert!(text.starts_with(&format!("Entry {id} of urlhaus-parser at ")), "{text}");
    let o = ctl.run(&["dump", "show", "urlhaus-parser", "987654321"]);
    assert_eq!(o.code, 2, "{o:#?}");
    assert_one_line_diagnostic(&o);

    // export (file and stdout) in IntelMQ's .dump format, then import under another bot.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("urlhaus-parser.dump");
    let f = file.display().to_string();
    let o = ctl.run(&["dump", "export", "urlhaus-parser", &f]).expect_code(0).stdout.clone();
    assert_eq!(o, format!("Exported 1 dump entry of urlhaus-parser to {f}.\n"));
    let exported: Value = serde_json::from_str(&std::fs::read_to_string(&file).expect("export file")).expect("JSON");
    let (_, record) = exported.as_object().and_then(|o| o.iter().next()).expect("one entry");
    for key in ["bot_id", "source_queue", "traceback", "message"] {
        assert!(record.get(key).is_some(), "{key}: {exported}");
    }
    assert!(record["message"].is_string(), "{exported}");
    let stdout = ctl.run(&["dump", "export", "urlhaus-parser"]).expect_code(0).json();
    assert_eq!(stdout, exported);
    let o = ctl.run(&["dump", "import", &f, "--bot", "taxonomy-expert"]).expect_code(0).stdout.clone();
    assert_eq!(o, "Imported 1 dump entry.\n");
    assert_eq!(ctl.run(&["dump", "list", "--json"]).json(), json!({"taxonomy-expert": 1, "urlhaus-parser": 1}));
    let bad = dir.path().join("bad.dump");
    std::fs::write(&bad, "not json").expect("write");
    let o = ctl.run(&["dump", "import", &bad.display().to_string()]);
    assert_eq!(o.code, 2, "{o:#?}");
    assert_one_line_diagnostic(&o);

    // edit in $EDITOR: the message comes pretty-printed; the change is stored. A rejected edit
    // is kept in $TMPDIR.
    let ctl_tmp = ctl.clone().env("TMPDIR", &dir.path().display().to_string());
    let o = ctl
        .clone()
        .env("EDITOR", "sed -i s/abuse.ch/edited.example/")
        .env("TMPDIR", &dir.path().display().to_string())
        .run(&["dump", "edit", &id_s])
        .expect_code(0)
        .stdout
        .clone();
    assert_eq!(o, format!("Dump entry {id} of urlhaus-parser updated.\n"));
    let shown = ctl.run(&["dump", "show", "urlhaus-parser", &id_s, "--json"]).expect_code(0).json();
    assert_eq!(shown[0]["message"]["feed.provider"], json!("edited.example"), "{shown}");
    let o =
        ctl.clone().env("EDITOR", "true").run(&["dump", "edit", "urlhaus-parser", &id_s]).expect_code(0).stdout.clone();
    assert_eq!(o, format!("Dump entry {id} is unchanged.\n"));
    let o = ctl_tmp.clone().env("EDITOR", "sed -i s/{/[/").run(&["dump", "edit", &id_s]);
    assert_eq!(o.code, 2, "{o:#?}");
    assert_one_line_diagnostic(&o);
    assert!(o.stderr.contains(&format!("kept in {}", dir.path().display())), "{o:#?}");
    let o = ctl.clone().env("EDITOR", "true").run(&["dump", "edit", "987654321"]);
    assert_eq!(o.code, 2, "{o:#?}");

    // recover into a stopped bot's queue: the entry leaves the dump, the message waits there.
    ctl.run(&["stop", "file-output"]).expect_code(0);
    let o = ctl.run(&["dump", "recover", "taxonomy-expert", "--all", "--queue", "file-output-queue", "--json"]);
    let j = o.expect_code(0).json();
    assert_eq!(j["recovered"], json!(1), "{j}");
    assert_eq!(queue_size(&ctl, "file-output-queue"), 1);
    let o = ctl.run(&["dump", "recover", "urlhaus-parser", &id_s, "--queue", "no-such-queue"]);
    assert_eq!(o.code, 2, "{o:#?}");
    assert!(o.stderr.contains("no-such-queue"), "{o:#?}");
    ctl.run(&["clear", "file-output-queue"]).expect_code(0);

    // delete by id, then --all on a bot without entries.
    let o = ctl.run(&["dump", "delete", "urlhaus-parser", &id_s]).expect_code(0).stdout.clone();
    assert_eq!(o, "Deleted 1 dump entry of urlhaus-parser.\n");
    assert_eq!(
        ctl.run(&["dump", "delete", "urlhaus-parser", "--all", "--json"]).expect_code(0).json(),
        json!({"deleted": 0})
    );
    assert_eq!(ctl.run(&["dump", "list"]).expect_code(0).stdout, "No dumps.\n");
    assert_eq!(ctl.run(&["dump", "list", "--json"]).json(), json!({}));
    assert_eq!(
        ctl.run(&["dump", "show", "urlhaus-parser"]).expect_code(0).stdout,
        "Bot urlhaus-parser has no dump entries.\n"
    );
}

#[test]
fn tcp_with_a_bearer_token_is_exit_code_four_without_it() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
    let node = TestNode::with_shipped_etc();
    node.write("etc/control.token", "s3cret-token\n");
    node.write(
        "etc/node.conf",
        format!(
            r#"{{"node_id": "local", "store": {{"path": "var/lib/store", "sync": "interval", "sync_interval_ms": 10}},
               "control": {{"tcp": "127.0.0.1:{port}", "token_file": "etc/control.token"}}, "peers": []}}"#
        ),
    );
    let d = DaemonNode::start(node);
    let endpoint = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().expect("tempdir");
    let (good, wrong) = (dir.path().join("good"), dir.path().join("wrong"));
    std::fs::write(&good, "s3cret-token\n").expect("write");
    std::fs::write(&wrong, "guess").expect("write");
    let ctl = d.ctl();
    // The control socket answers before every bot has finished starting.
    wait_state(&ctl, "file-output", "running");

    let o = ctl.run_raw(&["--endpoint", &endpoint, "queue", "list", "--count"]);
    assert_eq!(o.code, 4, "{o:#?}");
    assert_one_line_diagnostic(&o);
    assert!(o.stderr.starts_with("intelmqctl: authentication failed"), "{o:#?}");
    let o = ctl.run_raw(&["--endpoint", &endpoint, "--token-file", &wrong.display().to_string(), "status"]);
    assert_eq!(o.code, 4, "{o:#?}");
    assert_one_line_diagnostic(&o);

    let o =
        ctl.run_raw(&["--endpoint", &endpoint, "--token-file", &good.display().to_string(), "status", "file-output"]);
    assert_eq!(o.code, 0, "{o:#?}");
    assert_eq!(o.stdout, "Bot file-output is running.\n");
    // The same from the environment.
    let env =
        ctl.clone().env("INTELMQ_CTL_ENDPOINT", &endpoint).env("INTELMQ_CTL_TOKEN_FILE", &good.display().to_string());
    env.run_raw(&["queue", "list", "--count"]).expect_code(0);
    // The Unix socket needs no token.
    ctl.run(&["status", "file-output"]).expect_code(0);
    let o = ctl.run_raw(&["--endpoint", &endpoint, "--token-file", "/no/such/token", "status"]);
    assert_eq!(o.code, 2, "{o:#?}");
    assert_one_line_diagnostic(&o);
}

#[test]
fn flat_and_noun_forms_print_the_same_results() {
    let d = idle_daemon();
    let ctl = d.ctl();
    for (flat, noun) in [
        (&["status", "--json"][..], &["bot", "status", "--json"][..]),
        (&["status", "taxonomy-expert"], &["bot", "status", "taxonomy-expert"]),
        (&["list", "queues", "--json"], &["queue", "list", "--json"]),
        (&["list", "queues", "--non-zero", "--count"], &["queue", "list", "--non-zero", "--count"]),
        (&["list", "bots", "--json"], &["bot", "list", "--available", "--json"]),
        (
            &["run", "taxonomy-expert", "process", "-d", "-s", "-m", EVENT, "--json"],
            &["bot", "run", "taxonomy-expert", "-d", "-s", "-m", EVENT, "--json"],
        ),
    ] {
        let (a, b) = (ctl.run(flat), ctl.run(noun));
        assert_eq!(a.code, b.code, "{flat:?} vs {noun:?}: {a:#?} {b:#?}");
        // The bot's log lines of `run` carry their own timestamps.
        let without_log = |o: &CtlOutput| match serde_json::from_str::<Value>(&o.stdout) {
            Ok(Value::Object(mut m)) if m.contains_key("log") => {
                m.remove("log");
                Value::Object(m).to_string()
            }
            _ => o.stdout.clone(),
        };
        assert_eq!(without_log(&a), without_log(&b), "{flat:?} vs {noun:?}");
    }
}

/// The operator's dump roundtrip: the shipped URLhaus sample's bad line is dumped, shown, edited
/// into a valid line, recovered, and its event reaches the output; an IntelMQ `.dump` file (its
/// format: timestamp keys, a traceback list, the message as a JSON string, a base64 entry for a
/// message that could not be decoded) imports, and its event recovers into the pipeline.
#[test]
fn a_dumped_message_edited_to_be_valid_and_an_intelmq_dump_recover_into_the_output() {
    let d = idle_daemon();
    let ctl = d.ctl();
    let shown = ctl.run(&["dump", "show", "urlhaus-parser", "--json"]).expect_code(0).json();
    let id = shown[0]["id"].as_u64().expect("id").to_string();
    let mut message = shown[0]["message"].clone();
    let raw = message["raw"].as_str().expect("raw");
    let line = String::from_utf8(base64_decode(raw)).expect("utf-8 line");
    assert!(line.contains("yesterday-ish") && line.contains(",http://,"), "{line}");
    let fixed =
        line.replace("yesterday-ish", "2026-11-27 10:00:00").replace(",http://,", ",http://fixed.example/dl.exe,");
    message["raw"] = json!(base64_encode(fixed.as_bytes()));

    // The "editor" replaces the file it is given with the fixed message.
    let dir = tempfile::tempdir().expect("tempdir");
    let edited = dir.path().join("edited.json");
    std::fs::write(&edited, serde_json::to_string_pretty(&message).expect("json")).expect("write");
    let editor = format!("cp {}", edited.display());
    let o = ctl.clone().env("EDITOR", &editor).run(&["dump", "edit", "urlhaus-parser", &id]);
    assert_eq!(o.expect_code(0).stdout, format!("Dump entry {id} of urlhaus-parser updated.\n"));
    let o = ctl.run(&["dump", "recover", "urlhaus-parser", &id]);
    assert!(o.expect_code(0).stdout.starts_with("Recovered 1 dump entry of urlhaus-parser"), "{o:#?}");
    wait_for("the fixed line's event in the output", Duration::from_secs(30), || {
        d.node.read(EVENTS).contains(r#""source.url": "http://fixed.example/dl.exe""#)
    });
    assert_eq!(d.node.read(EVENTS).lines().count(), EXPECTED_EVENTS + 1);
    assert_eq!(ctl.run(&["dump", "list", "--json"]).expect_code(0).json(), json!({}));

    // A dump file as IntelMQ writes it (indent 4, sorted keys).
    let event = json!({"__type": "Event", "classification.type": "phishing", "feed.name": "Imported",
        "source.url": "http://imported.example/login"});
    let intelmq_dump = json!({
        "2026-11-27T09:12:01.123456": {
            "bot_id": "taxonomy-expert",
            "message": event.to_string(),
            "source_queue": "taxonomy-expert-queue",
            "traceback": ["Traceback (most recent call last):\n", "  File \"bot.py\", line 1, in process\n",
                "intelmq.lib.exceptions.PipelineError: pipeline failed - ConnectionError('Redis went away')\n"]
        },
        "2026-11-27T09:12:02.000001": {
            "bot_id": "taxonomy-expert",
            "message": base64_encode(b"\xff\xfenot json"),
            "message_type": "base64",
            "source_queue": "taxonomy-expert-queue",
            "traceback": ["Traceback (most recent call last):\n",
                "UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff in position 0\n"]
        }
    });
    let file = dir.path().join("taxonomy-expert.dump");
    std::fs::write(&file, serde_json::to_string_pretty(&intelmq_dump).expect("json")).expect("write");
    let o = ctl.run(&["dump", "import", &file.display().to_string()]);
    assert_eq!(o.expect_code(0).stdout, "Imported 2 dump entries.\n");
    let entries = ctl.run(&["dump", "show", "taxonomy-expert", "--json"]).expect_code(0).json();
    let entries = entries.as_array().expect("entries");
    assert_eq!(entries.len(), 2, "{entries:?}");
    let decoded = entries.iter().find(|e| e["message"]["__type"] == "Event").expect("the event entry");
    assert_eq!(decoded["message"]["source.url"], json!("http://imported.example/login"), "{decoded}");
    assert_eq!(decoded["source_queue"], json!("taxonomy-expert-queue"));
    let undecodable = entries.iter().find(|e| e["message_type"] == "base64").expect("the base64 entry");
    let event_id = decoded["id"].as_u64().expect("id").to_string();
    ctl.run(&["dump", "recover", "taxonomy-expert", &event_id]).expect_code(0);
    wait_for("the imported event in the output", Duration::from_secs(30), || {
        d.node.read(EVENTS).contains(r#""source.url": "http://imported.example/login""#)
    });
    let left = ctl.run(&["dump", "show", "taxonomy-expert", "--json"]).expect_code(0).json();
    assert_eq!(left.as_array().map(|a| a.len()), Some(1), "{left}");
    assert_eq!(left[0]["id"], undecodable["id"], "{left}");
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text).expect("base64")
}
