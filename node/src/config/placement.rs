//! Where the queues of a multi-node botnet live. A queue belongs to the node of the bot consuming
//! it (a bot without `node:` runs on every node, so each node has its own copy of its queue). For
//! this node, a queue is *remote* when another node owns it and a bot running here sends to it
//! (its messages go through the outbox and the broker), and needs an *intake* when this node owns
//! it and a bot that may run on another node sends to it. Pure functions of the configuration.

use std::collections::BTreeMap;

use super::{BotConfig, NodeConfig};

/// The cross-node queues of one node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Placement {
    /// Queues owned by another node that bots of this node send to: queue -> owning node.
    pub remote: BTreeMap<String, String>,
    /// Queues this node owns that bots on other nodes send to.
    pub intake: Vec<String>,
}

impl Placement {
    /// True when messages cross between this node and others.
    pub fn crosses_nodes(&self) -> bool {
        !self.remote.is_empty() || !self.intake.is_empty()
    }
}

/// Whether `bot` runs on node `id`.
fn runs_on(bot: &BotConfig, id: &str) -> bool {
    bot.node.as_deref().is_none_or(|n| n == id)
}

/// Whether `bot` may run on a node other than `id`.
fn runs_elsewhere(bot: &BotConfig, node: &NodeConfig, id: &str) -> bool {
    match bot.node.as_deref() {
        Some(n) => n != id,
        None => !node.peers.is_empty(),
    }
}

/// The cross-node queues of the node `node.node_id`.
pub fn placement(bots: &[BotConfig], node: &NodeConfig) -> Placement {
    let local = node.node_id.as_str();
    let mut out = Placement::default();
    for consumer in bots {
        let (Some(queue), Some(owner)) = (&consumer.source_queue, consumer.node.as_deref()) else { continue };
        let producers = || bots.iter().filter(move |p| p.destination_queues.values().flatten().any(|q| q == queue));
        if owner != local {
            if producers().any(|p| runs_on(p, local)) {
                out.remote.insert(queue.clone(), owner.to_string());
            }
        } else if producers().any(|p| runs_elsewhere(p, node, local)) && !out.intake.contains(queue) {
            out.intake.push(queue.clone());
        }
    }
    out.intake.sort();
    out
}
