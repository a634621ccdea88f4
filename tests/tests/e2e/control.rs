//! The control plane as the truth about the node: failures show in status with their reason, a
//! stopped bot's inbox fills and drains after start, nothing stale survives a restart, TCP needs
//! the token, SIGTERM stops cleanly, rates follow the recent past, check finds unreachable
//! destinations, and a non-Rust gRPC client drives the node.

use std::process::Command;
use std::time::Duration;

use intelmq_tests::{services_required, wait_for, workspace_dir, DaemonNode, TestNode};

const EVENTS: &str = "var/lib/bots/file-output/events.txt";
/// Events the shipped sample feeds produce (see tests/data/default-pipeline/events.jsonl).
const SHIPPED_EVENTS: usize = 36;

fn status_of(node: &DaemonNode, bot: &str) -> serde_json::Value {
    let out = node.ctl().run(&["--json", "bot", "status", bot]);
    out.json()
}

#[test]
fn a_failing_bot_shows_as_failed_with_its_reason() {
    let node = TestNode::with_shipped_etc();
    // An output that cannot create its directory fails for good (a fatal error stops the bot).
    let conf = node
        .read("etc/runtime.conf")
        .replace("var/lib/bots/file-output/events.txt", "/proc/intelmq-no-such-dir/events.txt");
    node.write("etc/runtime.conf", conf);
    let daemon = DaemonNode::start(node);
    wait_for("file-output to fail", Duration::from_secs(30), || {
        daemon.ctl().run(&["--json", "status"]).json()["file-output"] == "failed"
    });
    let text = daemon.ctl().run(&["bot", "status", "file-output"]);
    assert_eq!(text.code, 1, "{text:?}");
    assert!(text.stdout.contains("/proc/intelmq-no-such-dir"), "the reason is shown: {text:?}");
    // The other bots keep running.
    assert_eq!(status_of(&daemon, "taxonomy-expert"), "running");
}

#[test]
fn a_stopped_bots_inbox_fills_and_drains_after_start() {
    let daemon = DaemonNode::shipped();
    daemon.wait_idle(SHIPPED_EVENTS);
    let ctl = daemon.ctl();
    ctl.run(&["stop", "file-output"]).expect_code(0);
    assert_eq!(status_of(&daemon, "file-output"), "stopped");
    for i in 0..5 {
        let msg = format!(r#"{{"classification.type": "phishing", "source.url": "http://stopped-{i}.example.com/"}}"#);
        ctl.run(&["queue", "inject", "taxonomy-expert-queue", "--msg", &msg]).expect_code(0);
    }
    wait_for("the messages to reach the stopped output's inbox", Duration::from_secs(30), || {
        let q = ctl.run(&["--json", "list", "queues"]).json();
        q["file-output"]["source_queue"][1] == 5
    });
    assert_eq!(daemon.node.read(EVENTS).lines().count(), SHIPPED_EVENTS, "nothing is written while stopped");
    ctl.run(&["start", "file-output"]).expect_code(0);
    wait_for("the inbox to drain", Duration::from_secs(30), || {
        daemon.node.read(EVENTS).lines().count() == SHIPPED_EVENTS + 5
    });
    assert!(daemon.node.read(EVENTS).contains("stopped-4.example.com"));
}

#[test]
fn no_stale_state_after_a_node_restart() {
    let mut daemon = DaemonNode::shipped();
    daemon.wait_idle(SHIPPED_EVENTS);
    daemon.ctl().run(&["stop", "taxonomy-expert"]).expect_code(0);
    let status = daemon.stop().expect("node ran");
    assert!(status.success(), "SIGTERM stops the node cleanly: {status:?}");
    assert!(!daemon.socket().exists(), "the control socket is removed at exit");
    // kill -9 leaves a socket file behind; the next node replaces it.
    let TestNode { dir } = std::mem::replace(&mut daemon.node, TestNode::empty());
    let node = TestNode { dir };
    let mut child = node.command(&[]).spawn().expect("spawn");
    wait_for("the socket", Duration::from_secs(30), || {
        std::os::unix::net::UnixStream::connect(node.root().join("var/run/control.sock")).is_ok()
    });
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    assert!(node.root().join("var/run/control.sock").exists(), "a killed node leaves its socket file");
    let daemon = DaemonNode::start(node);
    // Every bot runs again: a stop before the restart is not remembered, nothing reads a pid file.
    let all = daemon.ctl().run(&["--json", "status"]).json();
    for (bot, state) in all.as_object().expect("object") {
        assert_eq!(state, "running", "{bot}");
    }
}

#[test]
fn tcp_calls_need_the_token() {
    let node = TestNode::with_shipped_etc();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    node.write("etc/control.token", "s3cret-token\n");
    node.write("etc/wrong.token", "not-the-token\n");
    node.write(
        "etc/node.conf",
        format!(r#"{{"control": {{"tcp": "127.0.0.1:{port}", "token_file": "etc/control.token"}}}}"#),
    );
    let daemon = DaemonNode::start(node);
    let endpoint = format!("http://127.0.0.1:{port}");
    let ctl = daemon.ctl();
    let token = daemon.root().join("etc/control.token");
    let wrong = daemon.root().join("etc/wrong.token");
    let no_token = ctl.run_raw(&["--endpoint", &endpoint, "status"]);
    assert_eq!(no_token.code, 4, "no token: {no_token:?}");
    let bad = ctl.run_raw(&["--endpoint", &endpoint, "--token-file", wrong.to_str().expect("utf8"), "status"]);
    assert_eq!(bad.code, 4, "wrong token: {bad:?}");
    let good = ctl.run_raw(&["--endpoint", &endpoint, "--token-file", token.to_str().expect("utf8"), "status"]);
    assert_eq!(good.code, 0, "right token: {good:?}");
    assert!(good.stdout.contains("file-output"));
}

#[test]
fn a_python_grpc_client_lists_stops_starts_and_reads_stats() {
    let have_grpc = Command::new("python3").args(["-c", "import grpc, grpc_tools"]).status().is_ok_and(|s| s.success());
    if !have_grpc {
        assert!(!services_required(), "python3 with grpcio and grpcio-tools is required (make pydeps installs them)");
        eprintln!("skipped: python3 with grpcio/grpcio-tools is not installed (make pydeps installs them)");
        return;
    }
    let daemon = DaemonNode::shipped();
    daemon.wait_idle(SHIPPED_EVENTS);
    let target = format!("unix:{}", daemon.socket().display());
    let out = Command::new("python3")
        .arg(workspace_dir().join("tests/python/soc_client.py"))
        .arg(workspace_dir().join("proto"))
        .arg(&target)
        .arg("taxonomy-expert")
        .output()
        .expect("run python");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(seen["configured"].as_array().expect("list").iter().any(|b| b == "file-output"), "{seen}");
    assert_eq!(seen["catalogue_groups"], serde_json::json!(["Collector", "Expert", "Output", "Parser"]));
    assert_eq!(seen["after_stop"], serde_json::json!(["stopped"]));
    assert_eq!(seen["status_stopped"], serde_json::json!(["stopped"]));
    assert_eq!(seen["after_start"], serde_json::json!(["running"]));
    assert_eq!(seen["stats"]["file-output"]["sent"], SHIPPED_EVENTS);
    assert_eq!(seen["unknown_bot"], "NOT_FOUND");
}

/// `rate` of every bot from `stats --json`.
fn rates(node: &DaemonNode) -> serde_json::Map<String, serde_json::Value> {
    let j = node.ctl().run(&["stats", "--json"]).expect_code(0).json();
    j["bots"]
        .as_array()
        .expect("bots")
        .iter()
        .map(|b| (b["bot_id"].as_str().expect("bot_id").to_string(), b["rate"].clone()))
        .collect()
}

#[test]
fn rates_show_recent_processing_and_fall_back_to_zero() {
    let node = TestNode::with_shipped_etc();
    node.write("etc/node.conf", r#"{"control": {"rate_window_ms": 1000}}"#);
    let daemon = DaemonNode::start(node);
    daemon.wait_idle(SHIPPED_EVENTS);
    // Idle: a window after the last processing every rate is 0, whatever was processed before.
    // The shipped pipeline can be done well within the first window of the node's life, when the
    // rates still cover it.
    let idle_since = std::time::Instant::now();
    wait_for("every rate to be 0 a window after going idle", Duration::from_secs(10), || {
        idle_since.elapsed() > Duration::from_millis(1000) && rates(&daemon).values().all(|r| r.as_f64() == Some(0.0))
    });
    for i in 0..20 {
        let msg = format!(r#"{{"classification.type": "phishing", "source.url": "http://rate-{i}.example.com/"}}"#);
        daemon.ctl().run(&["queue", "inject", "taxonomy-expert-queue", "--msg", &msg]).expect_code(0);
    }
    let mut seen = serde_json::Map::new();
    wait_for("the expert and the output to show a rate", Duration::from_secs(10), || {
        seen = rates(&daemon);
        ["taxonomy-expert", "file-output"].iter().all(|b| seen[*b].as_f64().is_some_and(|r| r > 0.0))
    });
    // The collectors had nothing to do.
    for bot in seen.keys().filter(|b| b.contains("collector")) {
        assert_eq!(seen[bot], 0.0, "{bot}: {seen:?}");
    }
    wait_for("the rates to fall back to 0", Duration::from_secs(10), || {
        rates(&daemon).values().all(|r| r.as_f64() == Some(0.0))
    });
    assert_eq!(daemon.node.read(EVENTS).lines().count(), SHIPPED_EVENTS + 20);
}

#[test]
fn check_warns_about_an_unreachable_destination() {
    let node = TestNode::with_shipped_etc();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let open = listener.local_addr().expect("addr").port();
    let mut runtime: serde_json::Value = serde_json::from_str(&node.read("etc/runtime.conf")).expect("runtime.conf");
    let mut pipeline: serde_json::Value = serde_json::from_str(&node.read("etc/pipeline.conf")).expect("pipeline");
    for (id, port) in [("closed-tcp-output", closed), ("open-tcp-output", open)] {
        runtime[id] = serde_json::json!({"group": "Output", "module": "intelmq.bots.outputs.tcp.output",
            "name": "TCP", "description": "a TCP output",
            "parameters": {"ip": "127.0.0.1", "port": port}});
        pipeline[id] = serde_json::json!({"source-queue": format!("{id}-queue")});
    }
    node.write("etc/runtime.conf", runtime.to_string());
    node.write("etc/pipeline.conf", pipeline.to_string());
    let daemon = DaemonNode::start(node);
    let ctl = daemon.ctl();
    let started = std::time::Instant::now();
    let j = ctl.run(&["check", "--json"]).json();
    assert!(started.elapsed() < Duration::from_secs(5), "connection checks are quick");
    let warnings: Vec<&str> = j["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .filter(|l| l[0] == "warning")
        .filter_map(|l| l[1].as_str())
        .collect();
    let about = |bot: &str| warnings.iter().filter(|w| w.contains(bot)).copied().collect::<Vec<_>>();
    let closed_lines = about("closed-tcp-output");
    assert_eq!(closed_lines.len(), 1, "{j}");
    assert!(closed_lines[0].contains(&format!("127.0.0.1:{closed}")), "names the address: {j}");
    assert!(closed_lines[0].contains("`ip`/`port`"), "names the parameters: {j}");
    assert!(about("open-tcp-output").iter().all(|w| !w.contains("unreachable")), "{j}");
    // Warnings do not fail the check; --no-connections skips the probe.
    assert_eq!(j["status"], "success", "{j}");
    let quiet = ctl.run(&["check", "--no-connections", "--json"]).json();
    assert!(!quiet.to_string().contains("unreachable"), "{quiet}");
    drop(listener);
}
