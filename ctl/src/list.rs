//! IntelMQ's `list bots` (the catalogue or the configured bots), `bot list` (configured bots with
//! their state) and `list queues-and-status`.

use serde_json::{json, Map, Value};

use intelmq_proto::control::v1::{BotStatus, ConfiguredBot, ListBotsRequest};

use crate::bot::{lifecycle_exit, statuses};
use crate::cli::{BotListing, Lifecycle, Selector};
use crate::client::{CtlError, Ctx, EXIT_FAILED, EXIT_OK};
use crate::queue;
use crate::render::{catalogue_text, emit, status_json, status_text, to_json, Table};

pub async fn bots(ctx: &mut Ctx, listing: BotListing, sel: Selector, enabled_only: bool) -> Result<u8, CtlError> {
    let configured = listing != BotListing::Catalogue;
    let r = ctx.client.list_bots(ListBotsRequest { configured, enabled_only }).await?.into_inner();
    match listing {
        BotListing::Catalogue => {
            let cat: Value = serde_json::from_str(&r.catalogue_json)
                .map_err(|e| CtlError::failed(format!("the node sent a catalogue that is not JSON: {e}")))?;
            emit(&if ctx.json { to_json(&cat) } else { catalogue_text(&cat) });
        }
        BotListing::Configured => {
            emit(&if ctx.json { to_json(&configured_json(&r.bots)) } else { configured_text(&r.bots) });
        }
        BotListing::Detailed => {
            let states = statuses(ctx, &sel).await?;
            let selected = |b: &&ConfiguredBot| {
                (sel.bot_id.is_none() && sel.group.is_none()) || states.iter().any(|s| s.bot_id == b.bot_id)
            };
            let bots: Vec<&ConfiguredBot> = r.bots.iter().filter(selected).collect();
            emit(&if ctx.json { to_json(&detailed_json(&bots, &states)) } else { detailed_text(&bots, &states) });
        }
    }
    Ok(EXIT_OK)
}

/// IntelMQ's `list bots --configured` result: `[{"id", "description"}]`.
pub fn configured_json(bots: &[ConfiguredBot]) -> Value {
    Value::Array(bots.iter().map(|b| json!({"id": b.bot_id, "description": b.description})).collect())
}

pub fn configured_text(bots: &[ConfiguredBot]) -> String {
    let mut t = Table::new(&["BOT", "GROUP", "ENABLED", "MODULE", "DESCRIPTION"]);
    for b in bots {
        t.row(vec![b.bot_id.clone(), b.group.clone(), yes_no(b.enabled), b.module.clone(), b.description.clone()]);
    }
    t.render()
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

fn state_of<'a>(states: &'a [BotStatus], id: &str) -> Option<&'a BotStatus> {
    states.iter().find(|s| s.bot_id == id)
}

/// `bot list --json`: IntelMQ's `{"id", "description"}` plus group, module, enabled, node, state
/// and parameters.
pub fn detailed_json(bots: &[&ConfiguredBot], states: &[BotStatus]) -> Value {
    Value::Array(
        bots.iter()
            .map(|b| {
                let st = state_of(states, &b.bot_id);
                let mut o = Map::new();
                o.insert("id".into(), json!(b.bot_id));
                o.insert("description".into(), json!(b.description));
                o.insert("group".into(), json!(b.group));
                o.insert("module".into(), json!(b.module));
                o.insert("enabled".into(), json!(enabled(b, st)));
                o.insert("node".into(), json!(b.node));
                o.insert("state".into(), st.map_or(Value::Null, |s| json!(s.state)));
                if let Some(s) = st.filter(|s| !s.reason.is_empty()) {
                    o.insert("reason".into(), json!(s.reason));
                }
                let params = serde_json::from_str(&b.parameters_json).unwrap_or_else(|_| json!({}));
                o.insert("parameters".into(), params);
                Value::Object(o)
            })
            .collect(),
    )
}

pub fn detailed_text(bots: &[&ConfiguredBot], states: &[BotStatus]) -> String {
    let mut t = Table::new(&["BOT", "GROUP", "STATE", "ENABLED", "NODE", "MODULE"]);
    for b in bots {
        let st = state_of(states, &b.bot_id);
        let state = st.map_or_else(|| "unknown".to_string(), |s| s.state.clone());
        let enabled = yes_no(enabled(b, st));
        t.row(vec![b.bot_id.clone(), b.group.clone(), state, enabled, b.node.clone(), b.module.clone()]);
    }
    t.render()
}

/// Whether a bot is enabled: as its own node says (which persisted the last enable or disable),
/// else as the configuration read by the answering node says.
fn enabled(b: &ConfiguredBot, st: Option<&BotStatus>) -> bool {
    match st {
        Some(s) if s.state != "unknown" => s.enabled,
        _ => b.enabled,
    }
}

/// IntelMQ's `list queues-and-status`: JSON `[queues, statuses]`; exit code 1 unless every bot
/// runs or is disabled.
pub async fn queues_and_status(ctx: &mut Ctx) -> Result<u8, CtlError> {
    let q = queue::fetch(ctx, false).await?;
    let states = statuses(ctx, &Selector::default()).await?;
    if ctx.json {
        emit(&to_json(&json!([queue::list_json(&q, false, false), status_json(&states, false)])));
    } else {
        emit(&format!("{}\n{}", queue::list_text(&q, false, false), status_text(&states)));
    }
    Ok(match lifecycle_exit(Lifecycle::Status, false, &states) {
        EXIT_OK => EXIT_OK,
        _ => EXIT_FAILED,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bot(id: &str, enabled: bool) -> ConfiguredBot {
        ConfiguredBot {
            bot_id: id.into(),
            description: format!("{id} bot"),
            group: "Expert".into(),
            module: "intelmq.bots.experts.taxonomy.expert".into(),
            enabled,
            node: "local".into(),
            parameters_json: r#"{"overwrite": false}"#.into(),
        }
    }

    #[test]
    fn configured_json_is_intelmqs_id_and_description_list() {
        assert_eq!(configured_json(&[bot("t", true)]), json!([{"id": "t", "description": "t bot"}]));
    }

    #[test]
    fn detailed_listing_joins_the_state() {
        let b = bot("t", false);
        let states = vec![BotStatus { bot_id: "t".into(), state: "disabled".into(), ..Default::default() }];
        let v = detailed_json(&[&b], &states);
        assert_eq!(v[0]["state"], json!("disabled"));
        assert_eq!(v[0]["parameters"], json!({"overwrite": false}));
        assert_eq!(v[0]["id"], json!("t"));
        let text = detailed_text(&[&b], &states);
        assert_eq!(
            text.lines().nth(1),
            Some("t    Expert  disabled  no       local  intelmq.bots.experts.taxonomy.expert")
        );
        assert!(detailed_text(&[&b], &[]).contains("unknown"));
    }
}
