//! One control API for a botnet of three nodes: three real `intelmq-node` daemons share one botnet
//! configuration (each runs its own expert and output, so no queue crosses nodes) and listen on TCP
//! with their own tokens. Every verb for a bot of another node works through a node that does not
//! own it, in text and JSON; `node list` answers through each node; a node killed with SIGKILL
//! shows as unreachable with the age of its last answer while the others keep answering, and is
//! reachable again after its restart; a peer token that is wrong shows as refused credentials.

use std::time::Duration;

use intelmq_tests::{wait_for, Ctl, CtlOutput, DaemonNode, TestNode};
use serde_json::{json, Value};

const NODES: [&str; 3] = ["node-a", "node-b", "node-c"];
const DEADLINE: Duration = Duration::from_secs(30);

/// The loopback addresses of the nodes: 127.0.0.2-4, or 127.0.0.1 for all where those cannot be
/// bound; each with a free port.
fn addresses(n: usize) -> Vec<String> {
    let distinct = std::net::TcpListener::bind("127.0.0.2:0").is_ok();
    (0..n)
        .map(|i| {
            let ip = if distinct { format!("127.0.0.{}", i + 2) } else { "127.0.0.1".to_string() };
            let port = std::net::TcpListener::bind(format!("{ip}:0")).expect("bind").local_addr().expect("addr").port();
            format!("{ip}:{port}")
        })
        .collect()
}

/// The shared botnet: `<x>-expert` (taxonomy) -> `<x>-output` (file) on each node `node-<x>`.
fn runtime_yaml(nodes: &[&str]) -> String {
    let mut y = String::new();
    for node in nodes {
        let x = node.trim_start_matches("node-");
        y.push_str(&format!(
            "{x}-expert:\n  module: intelmq.bots.experts.taxonomy.expert\n  name: Taxonomy {x}\n  \
             description: Sets the taxonomy on {node}.\n  node: {node}\n  parameters:\n    \
             destination_queues: {{_default: [{x}-output-queue]}}\n\
             {x}-output:\n  module: intelmq.bots.outputs.file.output\n  name: File {x}\n  \
             description: Writes the events of {node}.\n  node: {node}\n  parameters:\n    \
             file: var/lib/bots/{x}-output/events.txt\n"
        ));
    }
    y
}

/// A node of the test botnet and how to reach it.
struct Member {
    id: String,
    addr: String,
    daemon: DaemonNode,
}

struct Cluster {
    members: Vec<Member>,
}

impl Cluster {
    /// Starts one daemon per node id; `peer_token(from, to)` is the token `from` sends to `to`
    /// (the right one is `token-<to>`).
    fn start(ids: &[&str], peer_token: impl Fn(&str, &str) -> String) -> Cluster {
        let addrs = addresses(ids.len());
        let runtime = runtime_yaml(ids);
        let mut members = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let node = TestNode::empty();
            node.write("etc/runtime.yaml", &runtime);
            node.write("etc/control.token", format!("token-{id}\n"));
            let mut peers = Vec::new();
            for (j, peer) in ids.iter().enumerate().filter(|(j, _)| *j != i) {
                let file = format!("etc/peers/{peer}.token");
                node.write(&file, peer_token(id, peer));
                peers.push(json!({"id": peer, "control": addrs[j], "token_file": file}));
            }
            let conf = json!({
                "node_id": id,
                "control": {"tcp": addrs[i], "token_file": "etc/control.token"},
                "peers": peers,
            });
            node.write("etc/node.conf", conf.to_string());
            members.push(Member { id: id.to_string(), addr: addrs[i].clone(), daemon: DaemonNode::start(node) });
        }
        Cluster { members }
    }

    /// `intelmqctl --endpoint <node i> --token-file <its token> <args>`.
    fn ctl(&self, i: usize, args: &[&str]) -> CtlOutput {
        let m = &self.members[i];
        let endpoint = format!("http://{}", m.addr);
        let token = m.daemon.root().join("etc/control.token");
        let token = token.to_str().expect("utf-8 path");
        let mut all = vec!["--endpoint", endpoint.as_str(), "--token-file", token];
        all.extend_from_slice(args);
        Ctl::new(m.daemon.root()).run_raw(&all)
    }

    /// `--json` output of a command through node `i`, whose exit code must be `code`.
    fn json(&self, i: usize, code: i32, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.ctl(i, &all);
        out.expect_code(code);
        out.json()
    }

    /// Text output of a command through node `i`, whose exit code must be `code`.
    fn text(&self, i: usize, code: i32, args: &[&str]) -> String {
        let out = self.ctl(i, args);
        out.expect_code(code);
        out.stdout
    }

    fn wait_all_running(&self, via: usize) {
        wait_for("every bot of the botnet to run", DEADLINE, || {
            let out = self.ctl(via, &["--json", "status"]);
            out.code == 0 && out.json().as_object().is_some_and(|o| o.len() == 2 * self.members.len())
        });
    }
}

fn event(url: &str) -> String {
    json!({"classification.type": "phishing", "source.url": url}).to_string()
}

/// An IntelMQ `.dump` document with one entry per (bot, url).
fn dump_doc(entries: &[(&str, &str)]) -> String {
    let mut doc = serde_json::Map::new();
    for (i, (bot, url)) in entries.iter().enumerate() {
        let mut msg: Value = serde_json::from_str(&event(url)).expect("json");
        msg["__type"] = json!("Event");
        doc.insert(
            format!("2024-05-01T10:00:00.{:06}", i + 1),
            json!({"bot_id": bot, "source_queue": format!("{bot}-queue"), "traceback": ["ValueError: test"],
                   "message": msg.to_string()}),
        );
    }
    Value::Object(doc).to_string()
}

fn events(c: &Cluster, i: usize, bot: &str) -> String {
    c.members[i].daemon.node.read(&format!("var/lib/bots/{bot}/events.txt"))
}

#[test]
fn every_verb_for_a_bot_of_another_node_works_through_any_node() {
    let c = Cluster::start(&NODES, |_, to| format!("token-{to}\n"));
    let (a, b, cn) = (0, 1, 2);
    c.wait_all_running(a);

    // Status of the whole botnet through any node, with each bot's node.
    for via in [a, b, cn] {
        let all = c.json(via, 0, &["status"]);
        assert_eq!(all.as_object().map(|o| o.len()), Some(6), "{all}");
        assert!(all.as_object().is_some_and(|o| o.values().all(|s| s == "running")), "{all}");
    }
    let text = c.text(a, 0, &["bot", "status"]);
    assert!(text.contains("[node-b] Bot b-expert is running.\n"), "{text}");
    assert!(text.contains("[node-c] Bot c-output is running.\n"), "{text}");
    assert!(text.contains("[node-a] Bot a-expert is running.\n"), "{text}");
    assert_eq!(text.lines().count(), 6, "{text}");
    let listed = c.text(cn, 0, &["bot", "list"]);
    assert!(
        listed.lines().any(|l| l.starts_with("b-output") && l.contains("running") && l.contains("node-b")),
        "{listed}"
    );
    assert_eq!(c.json(cn, 0, &["status", "--group", "outputs"]).as_object().map(|o| o.len()), Some(3));

    // Lifecycle of node-b's output through node-a and node-c.
    assert_eq!(c.text(a, 0, &["bot", "stop", "b-output"]), "Bot b-output is stopped.\n");
    assert_eq!(c.json(cn, 1, &["status", "b-output"]), json!("stopped"));
    assert_eq!(c.text(cn, 1, &["status", "b-output"]), "Bot b-output is stopped.\n");

    // Queues: inject into the stopped output's inbox through node-c, list and clear through node-a.
    let injected = c.text(cn, 0, &["queue", "inject", "b-output-queue", "--msg", &event("http://one.example/")]);
    assert_eq!(injected, "Injected 1 message into b-output-queue (1 in the queue now).\n");
    let j = c.json(a, 0, &["queue", "inject", "b-output-queue", "--msg", &event("http://two.example/")]);
    assert_eq!(j, json!({"queue": "b-output-queue", "injected": 1, "size": 2}));
    let queues = c.text(a, 0, &["queue", "list"]);
    assert!(queues.starts_with("QUEUE "), "{queues}");
    assert!(queues.lines().next().is_some_and(|h| h.ends_with("NODE")), "{queues}");
    assert!(
        queues
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["b-output-queue", "2", "b-output", "node-b"]),
        "{queues}"
    );
    assert!(queues.ends_with("Total: 2 messages.\n"), "{queues}");
    let qj = c.json(cn, 0, &["list", "queues"]);
    assert_eq!(qj["b-output"]["source_queue"], json!(["b-output-queue", 2]), "{qj}");
    assert_eq!(qj["b-output"]["node"], json!("node-b"), "{qj}");
    assert_eq!(qj["b-expert"]["destination_queues"], json!([["b-output-queue", 2]]), "{qj}");
    assert_eq!(c.json(b, 0, &["queue", "list", "--count"]), json!({"total-messages": 2}));
    assert_eq!(c.json(a, 0, &["queue", "list", "--non-zero"]).as_object().map(|o| o.len()), Some(2));

    // The debugger on node-b's bots: the stopped output's next inbox message, a given message.
    let run = c.text(a, 0, &["bot", "run", "b-output", "--dryrun"]);
    assert!(run.contains("Dry run: nothing was sent or acknowledged."), "{run}");
    let rj = c.json(
        cn,
        0,
        &["run", "b-expert", "process", "--dryrun", "--show-sent", "--msg", &event("http://run.example/")],
    );
    assert_eq!(rj["acknowledged"], json!(false), "{rj}");
    assert_eq!(rj["sent"][0]["queues"], json!(["b-output-queue"]), "{rj}");
    assert_eq!(rj["sent"][0]["message"]["classification.taxonomy"], json!("fraud"), "{rj}");

    let cleared = c.text(a, 0, &["queue", "clear", "b-output-queue"]);
    assert_eq!(cleared, "Queue b-output-queue cleared (2 messages deleted).\n");
    assert_eq!(c.json(cn, 0, &["clear", "b-output-queue"]), json!("success"));
    let unknown = c.ctl(a, &["--json", "clear", "no-such-queue"]);
    assert_eq!((unknown.code, unknown.json()), (2, json!("not-found")), "{unknown:?}");

    assert_eq!(c.text(cn, 0, &["bot", "start", "b-output"]), "Bot b-output is running.\n");
    assert_eq!(c.json(a, 0, &["restart", "b-output"]), json!("running"));
    assert_eq!(c.text(cn, 0, &["bot", "restart", "b-output"]), "Bot b-output is running.\n");
    assert_eq!(c.json(a, 0, &["reload", "b-expert"]), json!("running"));
    assert_eq!(c.text(cn, 0, &["bot", "reload", "c-expert"]), "Bot c-expert is running.\n");

    // Messages reach node-b's output through node-a.
    c.text(a, 0, &["queue", "inject", "b-expert-queue", "--msg", &event("http://flow.example/")]);
    wait_for("the event to reach b-output", DEADLINE, || events(&c, b, "b-output").contains("flow.example"));
    assert!(events(&c, a, "b-output").is_empty(), "nothing is written on other nodes");

    // Enable and disable persist on the bot's own node.
    let off = c.text(a, 0, &["bot", "disable", "b-expert"]);
    assert_eq!(off, "Bot b-expert is disabled; it keeps running until it is stopped.\n");
    assert!(c.members[b].daemon.node.read("etc/runtime.yaml").contains("enabled: false"), "persisted on node-b");
    let listed = c.json(cn, 0, &["bot", "list", "b-expert"]);
    assert_eq!((listed[0]["enabled"].clone(), listed[0]["node"].clone()), (json!(false), json!("node-b")), "{listed}");
    assert_eq!(c.json(cn, 0, &["enable", "b-expert"]), json!("running"));
    assert_eq!(c.text(a, 0, &["bot", "enable", "b-expert"]), "Bot b-expert is enabled. Bot b-expert is running.\n");

    // The log of node-b's expert.
    let log = c.text(a, 0, &["log", "b-expert", "-1", "DEBUG"]);
    assert!(log.lines().any(|l| l.contains(" - b-expert - ")), "{log}");
    let lj = c.json(cn, 0, &["log", "b-expert", "5"]);
    assert!(lj.as_array().is_some_and(|l| !l.is_empty() && l.iter().all(|r| r["bot_id"] == "b-expert")), "{lj}");

    // Dumps: node-b's dump through node-a and node-c.
    let dir = tempfile::tempdir().expect("tempdir");
    let one = dir.path().join("one.dump");
    std::fs::write(&one, dump_doc(&[("b-expert", "http://dump-1.example/")])).expect("write");
    let one = one.to_str().expect("utf-8");
    assert_eq!(c.text(a, 0, &["dump", "import", one]), "Imported 1 dump entry.\n");
    // Entries for bots of two other nodes, imported through the third: each node gets its own.
    let spread = dir.path().join("spread.dump");
    std::fs::write(
        &spread,
        dump_doc(&[("a-expert", "http://dump-a.example/"), ("c-output", "http://dump-c.example/")]),
    )
    .expect("write");
    assert_eq!(c.json(b, 0, &["dump", "import", spread.to_str().expect("utf-8")]), json!({"imported": 2}));
    let counts = c.text(cn, 0, &["dump", "list"]);
    assert!(counts.starts_with("BOT "), "{counts}");
    assert!(
        counts.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["b-expert", "node-b", "1"]),
        "{counts}"
    );
    assert!(
        counts.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["a-expert", "node-a", "1"]),
        "{counts}"
    );
    assert_eq!(c.json(a, 0, &["dump", "list"]), json!({"a-expert": 1, "b-expert": 1, "c-output": 1}));
    let shown = c.json(a, 0, &["dump", "show", "b-expert"]);
    assert_eq!(shown[0]["message"]["source.url"], json!("http://dump-1.example/"), "{shown}");
    let id = shown[0]["id"].as_u64().expect("an id").to_string();
    let text = c.text(cn, 0, &["dump", "show", "b-expert", &id]);
    assert!(text.starts_with(&format!("Entry {id} of b-expert at ")), "{text}");
    let exported = c.text(cn, 0, &["dump", "export", "b-expert"]);
    assert!(exported.contains("dump-1.example"), "{exported}");
    let recovered = c.text(a, 0, &["dump", "recover", "b-expert", &id]);
    assert_eq!(recovered, format!("Recovered 1 dump entry of b-expert (ids {id}).\n"));
    wait_for("the recovered event to reach b-output", DEADLINE, || {
        events(&c, b, "b-output").contains("dump-1.example")
    });
    assert_eq!(c.json(a, 0, &["dump", "import", one, "--bot", "b-expert"]), json!({"imported": 1}));
    let again = c.json(cn, 0, &["dump", "show", "b-expert"]);
    let again_id = again[0]["id"].as_u64().expect("an id").to_string();
    assert_eq!(c.json(cn, 0, &["dump", "recover", "b-expert", "--all"])["recovered"], json!(1));
    assert_eq!(c.json(a, 0, &["dump", "import", one])["imported"], json!(1));
    assert_eq!(c.text(a, 0, &["dump", "delete", "b-expert", "--all"]), "Deleted 1 dump entry of b-expert.\n");
    assert_eq!(c.json(cn, 0, &["dump", "delete", "c-output", "--all"]), json!({"deleted": 1}));
    let missing = c.ctl(a, &["dump", "show", "b-expert", &again_id]);
    assert_eq!(missing.code, 2, "{missing:?}");
    assert!(missing.stderr.contains(&again_id), "{missing:?}");

    // Stats of the whole botnet, with each bot's node.
    let stats = c.text(a, 0, &["stats"]);
    assert!(stats.lines().next().is_some_and(|h| h.starts_with("BOT ") && h.contains(" NODE ")), "{stats}");
    assert!(
        stats.lines().any(|l| l.starts_with("b-expert") && l.contains("node-b") && l.contains("running")),
        "{stats}"
    );
    let sj = c.json(cn, 0, &["stats"]);
    let b_expert = sj["bots"].as_array().and_then(|l| l.iter().find(|s| s["bot_id"] == "b-expert")).cloned();
    let b_expert = b_expert.unwrap_or_else(|| panic!("{sj}"));
    assert_eq!(b_expert["node"], json!("node-b"), "{sj}");
    assert!(b_expert["received"].as_u64().is_some_and(|n| n >= 3), "{sj}");
    assert_eq!(sj["bots"].as_array().map(Vec::len), Some(6), "{sj}");

    // Check merges every node's findings.
    let check = c.json(a, 0, &["check", "--no-connections"]);
    assert_eq!(check["status"], json!("success"), "{check}");
    let lines = check["lines"].to_string();
    assert!(lines.contains("Node node-b: Store at") && lines.contains("Node node-c: Store at"), "{check}");
    assert!(c.text(b, 0, &["check", "--no-connections"]).ends_with("Check result: success.\n"));

    // An unknown bot is still "not found", wherever asked.
    let nope = c.ctl(cn, &["status", "no-such-bot"]);
    assert_eq!(nope.code, 2, "{nope:?}");
}

#[test]
fn node_list_and_a_node_that_is_killed_and_restarted() {
    let mut c = Cluster::start(&NODES, |_, to| format!("token-{to}\n"));
    c.wait_all_running(0);

    for (via, id) in NODES.iter().enumerate() {
        let nodes = c.json(via, 0, &["node", "list"]);
        let ids: Vec<&str> = nodes.as_array().expect("a list").iter().filter_map(|n| n["node_id"].as_str()).collect();
        let mut want: Vec<&str> = vec![id];
        want.extend(NODES.iter().copied().filter(|n| n != id));
        assert_eq!(ids, want, "the answering node first: {nodes}");
        for (n, m) in nodes.as_array().expect("a list").iter().zip(&want) {
            let member = c.members.iter().find(|x| x.id == *m).expect("member");
            assert_eq!(n["endpoint"], json!(member.addr), "{nodes}");
            assert_eq!(n["reachable"], json!(true), "{nodes}");
            assert_eq!(n["version"], json!(env!("CARGO_PKG_VERSION")), "{nodes}");
            assert_eq!((n["bots"].clone(), n["running_bots"].clone()), (json!(2), json!(2)), "{nodes}");
            assert!(n["load1"].as_f64().is_some_and(|l| l >= 0.0), "{nodes}");
        }
        assert_eq!(nodes[0]["local"], json!(true));
        let text = c.text(via, 0, &["node", "list"]);
        let rows: Vec<&str> = text.lines().collect();
        assert!(rows[0].starts_with("NODE ") && rows[0].contains("LAST ANSWER"), "{text}");
        assert!(rows[1].starts_with(id) && rows[1].contains(" local "), "{text}");
        assert!(rows[2].contains(" reachable ") && rows[2].contains(" 2/2 ") && rows[2].contains(" now"), "{text}");
    }

    // node-c dies without a word.
    c.members[2].daemon.kill();
    for via in [0, 1] {
        let out = c.ctl(via, &["--json", "status"]);
        assert_eq!(out.code, 1, "not every bot runs: {out:?}");
        let all = out.json();
        assert_eq!(all["c-expert"], json!("unknown"), "{all}");
        assert_eq!(all["b-output"], json!("running"), "{all}");
        let text = c.text(via, 1, &["status"]);
        let line = text.lines().find(|l| l.contains("c-expert")).unwrap_or_else(|| panic!("{text}"));
        assert!(line.starts_with("[node-c] Bot c-expert is in an unknown state: node node-c unreachable ("), "{text}");
        assert!(has_age(line), "the age of the last answer: {line}");
        assert!(text.contains("[node-a] Bot a-expert is running."), "{text}");

        let nodes = c.ctl(via, &["node", "list"]);
        assert_eq!(nodes.code, 1, "{nodes:?}");
        let row = nodes.stdout.lines().find(|l| l.starts_with("node-c")).unwrap_or_else(|| panic!("{nodes:?}"));
        assert!(row.contains(" unreachable ") && has_age(row), "{row}");
        let nj = c.json(via, 1, &["node", "list"]);
        let cj = nj.as_array().and_then(|l| l.iter().find(|n| n["node_id"] == "node-c")).cloned().expect("node-c");
        assert_eq!(cj["reachable"], json!(false), "{nj}");
        assert!(cj["last_answer_ms"].as_u64().is_some(), "it answered before: {nj}");
        assert!(!cj["error"].as_str().unwrap_or("").is_empty(), "{nj}");

        // The rest of the botnet still answers; the silent node is a warning.
        let queues = c.ctl(via, &["queue", "list"]);
        assert_eq!(queues.code, 0, "{queues:?}");
        assert!(queues.stdout.contains("b-output-queue"), "{queues:?}");
        assert!(queues.stderr.starts_with("intelmqctl: warning: node node-c unreachable ("), "{queues:?}");
        let stats = c.json(via, 0, &["stats"]);
        let c_out = stats["bots"].as_array().and_then(|l| l.iter().find(|s| s["bot_id"] == "c-output")).cloned();
        assert_eq!(c_out.map(|s| s["state"].clone()), Some(json!("unknown")), "{stats}");
        assert_eq!(c.json(via, 1, &["status", "c-output"]), json!("unknown"));
    }
    let refused = c.ctl(0, &["bot", "stop", "c-expert"]);
    assert_eq!(refused.code, 3, "{refused:?}");
    assert!(refused.stderr.contains("node node-c unreachable"), "{refused:?}");

    // Back again: reachable, its bots running.
    c.members[2].daemon.restart();
    wait_for("node-c to be reachable again through node-a", DEADLINE, || c.ctl(0, &["node", "list"]).code == 0);
    c.wait_all_running(0);
    let nj = c.json(1, 0, &["node", "list"]);
    assert!(nj.as_array().is_some_and(|l| l.iter().all(|n| n["reachable"] == true)), "{nj}");
    assert_eq!(c.json(1, 0, &["status", "c-expert"]), json!("running"));
}

/// Whether a line tells the age of a node's last answer (`last answer N s ago` or `N s ago`).
fn has_age(line: &str) -> bool {
    let words: Vec<&str> = line.split_whitespace().collect();
    words
        .windows(3)
        .any(|w| w[0].trim_start_matches('(').parse::<u64>().is_ok() && w[1] == "s" && w[2].starts_with("ago"))
}

#[test]
fn a_wrong_peer_token_shows_the_peer_as_refusing_not_a_crash() {
    // node-a sends node-b a wrong token; node-b sends node-a the right one.
    let c =
        Cluster::start(
            &NODES[..2],
            |from, to| if from == "node-a" { "not-the-token\n".into() } else { format!("token-{to}\n") },
        );
    c.wait_all_running(1);

    let nodes = c.ctl(0, &["node", "list"]);
    assert_eq!(nodes.code, 1, "{nodes:?}");
    let row = nodes.stdout.lines().find(|l| l.starts_with("node-b")).unwrap_or_else(|| panic!("{nodes:?}"));
    assert!(row.contains(" unreachable ") && row.contains("refused this node's credentials"), "{row}");
    let nj = c.json(0, 1, &["node", "list"]);
    assert!(nj[1]["error"].as_str().is_some_and(|e| e.contains("wrong token")), "{nj}");
    assert_eq!(nj[1]["last_answer_ms"], Value::Null, "{nj}");

    let text = c.text(0, 1, &["status"]);
    assert!(text.contains("[node-a] Bot a-expert is running."), "{text}");
    assert!(
        text.contains(
            "[node-b] Bot b-expert is in an unknown state: node node-b unreachable (it refused this node's credentials"
        ),
        "{text}"
    );
    let stop = c.ctl(0, &["stop", "b-expert"]);
    assert_eq!(stop.code, 3, "{stop:?}");
    assert_eq!(stop.stderr.lines().count(), 1, "{stop:?}");
    assert!(stop.stderr.contains("refused this node's credentials"), "{stop:?}");
    // node-a is still there, and node-b answers for both.
    assert_eq!(c.json(0, 0, &["status", "a-expert"]), json!("running"));
    assert_eq!(c.json(1, 0, &["status", "a-expert"]), json!("running"));
    assert_eq!(
        c.json(1, 0, &["node", "list"]).as_array().map(|l| l.iter().all(|n| n["reachable"] == true)),
        Some(true)
    );
}
