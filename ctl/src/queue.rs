//! `queue list|clear|inject` and IntelMQ's `list queues` and `clear`.

use serde_json::{json, Value};

use intelmq_proto::control::v1::{ClearQueueRequest, InjectMessageRequest, ListQueuesRequest, ListQueuesResponse};

use crate::client::{CtlError, Ctx, EXIT_OK};
use crate::input::messages_arg;
use crate::render::{emit, queue_count_json, queues_json, queues_text, to_json, unique_queues};

pub async fn fetch(ctx: &mut Ctx, non_zero: bool) -> Result<ListQueuesResponse, CtlError> {
    Ok(ctx.client.list_queues(ListQueuesRequest { non_zero }).await?.into_inner())
}

/// The text of `list queues` for a response.
pub fn list_text(r: &ListQueuesResponse, non_zero: bool, count: bool) -> String {
    if count {
        return format!("{}\n", r.total);
    }
    queues_text(&unique_queues(&r.bots, &r.queues), r.total, non_zero)
}

/// The JSON of `list queues` for a response.
pub fn list_json(r: &ListQueuesResponse, non_zero: bool, count: bool) -> Value {
    if count {
        queue_count_json(r.total)
    } else {
        queues_json(&r.bots, non_zero)
    }
}

pub async fn list(ctx: &mut Ctx, non_zero: bool, count: bool) -> Result<u8, CtlError> {
    let r = fetch(ctx, non_zero).await?;
    if ctx.json {
        emit(&to_json(&list_json(&r, non_zero, count)));
    } else {
        emit(&list_text(&r, non_zero, count));
    }
    Ok(EXIT_OK)
}

/// Clears a queue; IntelMQ's JSON result is `"success"`, or `"not-found"` with exit code 2.
pub async fn clear(ctx: &mut Ctx, queue: String) -> Result<u8, CtlError> {
    match ctx.client.clear_queue(ClearQueueRequest { queue: queue.clone() }).await {
        Ok(r) => {
            let r = r.into_inner();
            if ctx.json {
                emit(&to_json(&json!("success")));
            } else {
                let n = r.cleared;
                emit(&format!(
                    "Queue {queue} cleared ({n} {} deleted).\n",
                    if n == 1 { "message" } else { "messages" }
                ));
            }
            Ok(EXIT_OK)
        }
        Err(status) => {
            let e = CtlError::from(status);
            if ctx.json && e.is_not_found() {
                emit(&to_json(&json!("not-found")));
            }
            Err(e)
        }
    }
}

/// Injects one message (or each of an array) into a queue.
pub async fn inject(ctx: &mut Ctx, queue: String, msg: String, message_type: Option<String>) -> Result<u8, CtlError> {
    let messages = messages_arg("--msg", &msg)?;
    let mut size = 0;
    for m in &messages {
        let r = ctx
            .client
            .inject_message(InjectMessageRequest {
                queue: queue.clone(),
                message_json: m.to_string(),
                default_type: message_type.clone().unwrap_or_default(),
            })
            .await?
            .into_inner();
        size = r.size;
    }
    let n = messages.len();
    if ctx.json {
        emit(&to_json(&json!({"queue": queue, "injected": n, "size": size})));
    } else {
        let what = if n == 1 { "message" } else { "messages" };
        emit(&format!("Injected {n} {what} into {queue} ({size} in the queue now).\n"));
    }
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use intelmq_proto::control::v1::{BotQueues, QueueSize};

    fn response() -> ListQueuesResponse {
        let q = |n: &str, s: u64, c: &str| QueueSize {
            name: n.into(),
            size: s,
            consumer: c.into(),
            outbox_to: String::new(),
        };
        ListQueuesResponse {
            bots: vec![
                BotQueues { bot_id: "col".into(), source_queue: None, destination_queues: vec![q("p-queue", 3, "p")] },
                BotQueues { bot_id: "p".into(), source_queue: Some(q("p-queue", 3, "p")), destination_queues: vec![] },
            ],
            queues: vec![q("p-queue", 3, "p")],
            total: 3,
        }
    }

    #[test]
    fn count_prints_only_the_total() {
        assert_eq!(list_text(&response(), false, true), "3\n");
        assert_eq!(list_json(&response(), false, true), json!({"total-messages": 3}));
    }

    #[test]
    fn list_renders_the_queue_table_and_the_intelmq_dict() {
        let text = list_text(&response(), false, false);
        assert_eq!(text, "QUEUE    MESSAGES  CONSUMER\np-queue         3  p\nTotal: 3 messages.\n");
        assert_eq!(list_json(&response(), false, false)["p"]["source_queue"], json!(["p-queue", 3]));
    }
}
