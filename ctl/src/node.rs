//! `node list`: the nodes of the botnet as the answering node sees them, itself first: endpoint,
//! reachability, version, load and running bots, and how long ago each peer last answered. Exit
//! code 1 when a node cannot be reached.

use intelmq_proto::control::v1::ListNodesRequest;

use crate::client::{CtlError, Ctx, EXIT_FAILED, EXIT_OK};
use crate::render::{emit, nodes_json, nodes_text, to_json};

pub async fn list(ctx: &mut Ctx) -> Result<u8, CtlError> {
    let r = ctx.client.list_nodes(ListNodesRequest {}).await?.into_inner();
    emit(&if ctx.json { to_json(&nodes_json(&r.nodes)) } else { nodes_text(&r.nodes) });
    Ok(if r.nodes.iter().all(|n| n.local || n.reachable) { EXIT_OK } else { EXIT_FAILED })
}
