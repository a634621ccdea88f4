//! One answer for the whole botnet out of the answers of its nodes: where a bot or a queue lives,
//! the queue sizes each from the node holding the queue, stand-ins for the bots of a node that did
//! not answer, and the configuration's order. Pure functions over the configuration and the
//! contract's messages.

use std::collections::HashMap;

use intelmq_proto::control::v1 as pb;

use super::peers::PeerDown;
use crate::config::{BotConfig, Botnet};
use crate::runtime::{group_of, parse_group};

/// The state of a bot whose node did not answer.
pub const UNKNOWN: &str = "unknown";

/// The node a bot is placed on.
pub fn node_of<'a>(botnet: &'a Botnet, b: &'a BotConfig) -> &'a str {
    b.node.as_deref().unwrap_or(&botnet.node.node_id)
}

/// The node holding `queue`: its consumer's, else its first producer's, else this node.
pub fn home_of<'a>(botnet: &'a Botnet, queue: &str) -> &'a str {
    let consumer = botnet.bots.iter().find(|b| b.source_queue.as_deref() == Some(queue));
    let producer = || botnet.bots.iter().find(|b| b.destination_queues.values().flatten().any(|q| q == queue));
    match consumer.or_else(producer) {
        Some(b) => node_of(botnet, b),
        None => &botnet.node.node_id,
    }
}

/// The bots placed on `node` that `group` selects (every bot for an empty group).
fn bots_on<'a>(botnet: &'a Botnet, node: &'a str, group: &'a str) -> impl Iterator<Item = &'a BotConfig> + 'a {
    let group = parse_group(group);
    botnet
        .bots
        .iter()
        .filter(move |b| node_of(botnet, b) == node && group.is_none_or(|g| parse_group(group_of(b)) == Some(g)))
}

/// State `unknown` for the bots of a node that did not answer, the reason naming it.
pub fn unknown_statuses(botnet: &Botnet, down: &PeerDown, group: &str) -> Vec<pb::BotStatus> {
    bots_on(botnet, &down.node, group).map(|b| unknown_status(botnet, b, down)).collect()
}

/// State `unknown` for one bot whose node did not answer.
pub fn unknown_status(botnet: &Botnet, b: &BotConfig, down: &PeerDown) -> pb::BotStatus {
    pb::BotStatus {
        bot_id: b.id.clone(),
        group: group_of(b).to_string(),
        module: b.module.clone(),
        node: node_of(botnet, b).to_string(),
        state: UNKNOWN.to_string(),
        reason: down.to_string(),
        enabled: b.enabled,
    }
}

/// Stats of the bots of a node that did not answer: state `unknown`, no counters.
pub fn unknown_stats(botnet: &Botnet, down: &PeerDown) -> Vec<pb::BotStats> {
    bots_on(botnet, &down.node, "")
        .map(|b| pb::BotStats {
            bot_id: b.id.clone(),
            state: UNKNOWN.to_string(),
            node: down.node.clone(),
            ..Default::default()
        })
        .collect()
}

/// Sorts `items` by their bot's place in the configuration (unknown bots last, by id).
pub fn sort_by_config<T>(botnet: &Botnet, items: &mut [T], id: impl Fn(&T) -> &str) {
    let order: HashMap<&str, usize> = botnet.bots.iter().enumerate().map(|(i, b)| (b.id.as_str(), i)).collect();
    items.sort_by(|a, b| {
        let key = |t: &T| (order.get(id(t)).copied().unwrap_or(usize::MAX), id(t).to_string());
        key(a).cmp(&key(b))
    });
}

/// The `ListQueues` answer for the configured bots; `size(node, queue)` gives the messages of a
/// queue held by a node.
pub fn queues(botnet: &Botnet, non_zero: bool, size: impl Fn(&str, &str) -> u64) -> pb::ListQueuesResponse {
    let qs = |name: &str| {
        let node = home_of(botnet, name);
        pb::QueueSize {
            name: name.to_string(),
            size: size(node, name),
            consumer: botnet.consumers_of(name).next().map(|c| c.id.clone()).unwrap_or_default(),
            node: node.to_string(),
            outbox_to: String::new(),
        }
    };
    let mut bots = Vec::new();
    let mut all: Vec<pb::QueueSize> = Vec::new();
    let mut total = 0;
    for b in &botnet.bots {
        let source_queue = b.source_queue.as_deref().map(qs).filter(|q| !non_zero || q.size > 0);
        let mut destination_queues: Vec<pb::QueueSize> = Vec::new();
        for q in b.destination_queues.values().flatten() {
            if !destination_queues.iter().any(|d| &d.name == q) {
                destination_queues.push(qs(q));
            }
        }
        destination_queues.retain(|q| !non_zero || q.size > 0);
        for q in source_queue.iter().chain(destination_queues.iter()) {
            if !all.iter().any(|a| a.name == q.name) {
                total += q.size;
                all.push(q.clone());
            }
        }
        if non_zero && source_queue.is_none() && destination_queues.is_empty() {
            continue;
        }
        bots.push(pb::BotQueues {
            bot_id: b.id.clone(),
            source_queue,
            destination_queues,
            node: node_of(botnet, b).to_string(),
        });
    }
    all.sort_by(|a, b| a.name.cmp(&b.name));
    pb::ListQueuesResponse { bots, queues: all, total, notes: Vec::new() }
}

/// Queue sizes by (node, queue) out of each node's own `ListQueues` answer.
pub fn sizes_by_node<'a>(
    answers: impl IntoIterator<Item = (&'a str, &'a pb::ListQueuesResponse)>,
) -> HashMap<(String, String), u64> {
    let mut sizes = HashMap::new();
    for (node, r) in answers {
        for q in &r.queues {
            sizes.insert((node.to_string(), q.name.clone()), q.size);
        }
    }
    sizes
}

/// One note per non-empty outbox in the nodes' own answers: messages a node holds for a queue
/// another node owns, not yet confirmed by the broker.
pub fn outbox_notes<'a>(answers: impl IntoIterator<Item = (&'a str, &'a pb::ListQueuesResponse)>) -> Vec<String> {
    let mut notes = Vec::new();
    for (node, r) in answers {
        for q in r.queues.iter().filter(|q| !q.outbox_to.is_empty() && q.size > 0) {
            notes.push(format!(
                "node {node} holds {} message(s) for {} in its outbox to node {}",
                q.size, q.name, q.outbox_to
            ));
        }
    }
    notes
}

/// The check lines of the whole botnet: this node's, then each peer's that this node did not
/// find itself (the configuration is the same), prefixed with the peer's id.
pub fn check_lines(
    mut local: Vec<pb::CheckLine>,
    peers: impl IntoIterator<Item = (String, Result<Vec<pb::CheckLine>, String>)>,
) -> Vec<pb::CheckLine> {
    let mut more = Vec::new();
    for (node, answer) in peers {
        match answer {
            Ok(lines) => {
                for l in lines {
                    if !local.iter().any(|m| m.level == l.level && m.message == l.message) {
                        more.push(pb::CheckLine { level: l.level, message: format!("Node {node}: {}", l.message) });
                    }
                }
            }
            Err(note) => {
                more.push(pb::CheckLine { level: "warning".into(), message: format!("{}.", capitalised(&note)) })
            }
        }
    }
    local.extend(more);
    local
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    fn botnet() -> Botnet {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path().join("etc");
        std::fs::create_dir_all(&etc).unwrap();
        let expert = |node: &str, dest: &str| {
            format!(
                r#"{{"module": "intelmq.bots.experts.taxonomy.expert", "node": "{node}",
                    "parameters": {{"destination_queues": {{"_default": ["{dest}"]}}}}}}"#
            )
        };
        let output = |node: &str| {
            format!(r#"{{"module": "intelmq.bots.outputs.file.output", "node": "{node}", "parameters": {{}}}}"#)
        };
        let runtime = format!(
            r#"{{"a-expert": {}, "a-output": {}, "b-expert": {}, "b-output": {}}}"#,
            expert("node-a", "a-output-queue"),
            output("node-a"),
            expert("node-b", "b-output-queue"),
            output("node-b")
        );
        std::fs::write(etc.join("runtime.yaml"), runtime).unwrap();
        std::fs::write(
            etc.join("node.conf"),
            r#"{"node_id": "node-a", "peers": [{"id": "node-b", "control": "127.0.0.1:1"}]}"#,
        )
        .unwrap();
        config::load(dir.path()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn down() -> PeerDown {
        PeerDown { node: "node-b".into(), reason: "connection refused".into(), last_answer: None }
    }

    #[test]
    fn queues_live_with_their_consumer() {
        let b = botnet();
        assert_eq!(home_of(&b, "b-output-queue"), "node-b");
        assert_eq!(home_of(&b, "a-expert-queue"), "node-a");
        assert_eq!(home_of(&b, "no-such-queue"), "node-a");
        let a = b.bot("a-expert").unwrap();
        assert_eq!(node_of(&b, a), "node-a");
    }

    #[test]
    fn merged_queue_sizes_come_from_the_node_holding_each_queue() {
        let b = botnet();
        let mine = queues(&b, false, |_, q| if q == "a-output-queue" { 2 } else { 7 });
        let theirs = queues(&b, false, |_, q| if q == "b-output-queue" { 3 } else { 0 });
        let sizes = sizes_by_node([("node-a", &mine), ("node-b", &theirs)]);
        let merged = queues(&b, false, |n, q| sizes.get(&(n.to_string(), q.to_string())).copied().unwrap_or(0));
        // a-* queues from node-a (a-expert-queue holds 7 there), b-* from node-b.
        assert_eq!(merged.total, 2 + 7 + 3);
        let b_out = merged.queues.iter().find(|q| q.name == "b-output-queue").unwrap();
        assert_eq!((b_out.size, b_out.node.as_str(), b_out.consumer.as_str()), (3, "node-b", "b-output"));
        let non_zero = queues(&b, true, |n, q| sizes.get(&(n.to_string(), q.to_string())).copied().unwrap_or(0));
        // b-expert's own inbox is empty; the queue it feeds is not.
        let b_expert = non_zero.bots.iter().find(|bq| bq.bot_id == "b-expert").unwrap();
        assert!(b_expert.source_queue.is_none() && b_expert.destination_queues.len() == 1, "{non_zero:?}");
        assert_eq!(non_zero.bots.iter().find(|bq| bq.bot_id == "b-output").map(|bq| bq.node.as_str()), Some("node-b"));
    }

    #[test]
    fn a_silent_nodes_bots_are_unknown_and_keep_their_group() {
        let b = botnet();
        let all = unknown_statuses(&b, &down(), "");
        assert_eq!(all.iter().map(|s| s.bot_id.as_str()).collect::<Vec<_>>(), ["b-expert", "b-output"]);
        assert!(all.iter().all(|s| s.state == UNKNOWN && s.reason.starts_with("node node-b unreachable")));
        let outputs = unknown_statuses(&b, &down(), "outputs");
        assert_eq!(outputs.len(), 1);
        assert_eq!(outputs[0].group, "Output");
        assert_eq!(unknown_stats(&b, &down()).len(), 2);
    }

    #[test]
    fn merged_lists_follow_the_configuration() {
        let b = botnet();
        let mut ids = vec!["b-output", "zz", "a-expert", "b-expert"];
        sort_by_config(&b, &mut ids, |s| s);
        assert_eq!(ids, ["a-expert", "b-expert", "b-output", "zz"]);
    }

    #[test]
    fn peers_add_the_check_lines_this_node_did_not_find() {
        let line = |l: &str, m: &str| pb::CheckLine { level: l.into(), message: m.into() };
        let local = vec![line("warning", "Bot \"x\" has no name."), line("info", "Store at /a is open.")];
        let lines = check_lines(
            local,
            [
                (
                    "node-b".to_string(),
                    Ok(vec![line("warning", "Bot \"x\" has no name."), line("info", "Store at /b is open.")]),
                ),
                ("node-c".to_string(), Err("node node-c unreachable (refused), no answer yet".to_string())),
            ],
        );
        let text: Vec<String> = lines.iter().map(|l| format!("{}: {}", l.level, l.message)).collect();
        assert_eq!(
            text,
            [
                "warning: Bot \"x\" has no name.",
                "info: Store at /a is open.",
                "info: Node node-b: Store at /b is open.",
                "warning: Node node-c unreachable (refused), no answer yet."
            ]
        );
    }
}
