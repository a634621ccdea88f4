//! `bot start|stop|restart|reload|status|enable|disable|run` (and IntelMQ's flat forms): the
//! lifecycle verbs with IntelMQ's exit-code semantics, enable/disable, and one message through a bot.

use serde_json::{json, Map, Value};

use intelmq_proto::control::v1::{
    BotSelector, BotStatus, DisableBotRequest, EnableBotRequest, GetStatusRequest, ReloadBotRequest, RestartBotRequest,
    RunBotRequest, RunBotResponse, StartBotRequest, StopBotRequest,
};

use crate::cli::{Lifecycle, Selector};
use crate::client::{CtlError, Ctx, EXIT_FAILED, EXIT_OK};
use crate::input::message_arg;
use crate::render::{emit, status_json, status_message, status_text, to_json};

pub fn selector(s: &Selector) -> Option<BotSelector> {
    Some(BotSelector { bot_id: s.bot_id.clone().unwrap_or_default(), group: s.group.clone().unwrap_or_default() })
}

/// The states of the selected bots, as the supervisor knows them.
pub async fn statuses(ctx: &mut Ctx, s: &Selector) -> Result<Vec<BotStatus>, CtlError> {
    Ok(ctx.client.get_status(GetStatusRequest { selector: selector(s) }).await?.into_inner().bots)
}

/// start, stop, restart, reload, status.
pub async fn lifecycle(ctx: &mut Ctx, verb: Lifecycle, s: Selector) -> Result<u8, CtlError> {
    let sel = selector(&s);
    let c = &mut ctx.client;
    let bots = match verb {
        Lifecycle::Start => c.start_bot(StartBotRequest { selector: sel }).await?.into_inner().bots,
        Lifecycle::Stop => c.stop_bot(StopBotRequest { selector: sel }).await?.into_inner().bots,
        Lifecycle::Restart => c.restart_bot(RestartBotRequest { selector: sel }).await?.into_inner().bots,
        Lifecycle::Reload => c.reload_bot(ReloadBotRequest { selector: sel }).await?.into_inner().bots,
        Lifecycle::Status => c.get_status(GetStatusRequest { selector: sel }).await?.into_inner().bots,
    };
    let single = s.bot_id.is_some();
    if ctx.json {
        emit(&to_json(&status_json(&bots, single)));
    } else if bots.is_empty() {
        emit("No bots selected.\n");
    } else {
        emit(&status_text(&bots));
    }
    Ok(lifecycle_exit(verb, single, &bots))
}

/// IntelMQ's return codes: start/restart 0 if running (botnet: running or disabled); stop 0 if
/// stopped or disabled (a failed bot is not running either); reload and status 0 if running or
/// disabled; 1 otherwise.
pub fn lifecycle_exit(verb: Lifecycle, single: bool, bots: &[BotStatus]) -> u8 {
    let ok = |b: &BotStatus| {
        let s = b.state.as_str();
        let up = s == "running" || s == "starting";
        match verb {
            Lifecycle::Start | Lifecycle::Restart => up || (!single && s == "disabled"),
            Lifecycle::Stop => matches!(s, "stopped" | "disabled" | "failed"),
            Lifecycle::Reload | Lifecycle::Status => up || s == "disabled",
        }
    };
    if bots.iter().all(ok) {
        EXIT_OK
    } else {
        EXIT_FAILED
    }
}

/// enable / disable: persisted in the configuration; exit 0 when it was written.
pub async fn set_enabled(ctx: &mut Ctx, bot_id: String, enabled: bool) -> Result<u8, CtlError> {
    let bot = if enabled {
        ctx.client.enable_bot(EnableBotRequest { bot_id: bot_id.clone() }).await?.into_inner().bot
    } else {
        ctx.client.disable_bot(DisableBotRequest { bot_id: bot_id.clone() }).await?.into_inner().bot
    };
    let bot = bot.unwrap_or_else(|| BotStatus {
        bot_id: bot_id.clone(),
        enabled,
        state: if enabled { String::new() } else { "disabled".into() },
        ..Default::default()
    });
    if ctx.json {
        emit(&to_json(&Value::String(bot.state.clone())));
    } else {
        emit(&enabled_text(&bot, enabled));
    }
    Ok(EXIT_OK)
}

/// "Bot X is enabled." plus its state when that says more.
pub fn enabled_text(b: &BotStatus, enabled: bool) -> String {
    let id = &b.bot_id;
    match (enabled, b.state.as_str()) {
        (true, "") => format!("Bot {id} is enabled.\n"),
        (true, _) => format!("Bot {id} is enabled. {}\n", status_message(b)),
        (false, "running" | "starting") => {
            format!("Bot {id} is disabled; it keeps running until it is stopped.\n")
        }
        (false, _) => format!("Bot {id} is disabled.\n"),
    }
}

/// One message through a bot (IntelMQ's `run BOT process`); exit 1 when the message failed.
pub async fn run(
    ctx: &mut Ctx,
    bot_id: String,
    dryrun: bool,
    show_sent: bool,
    msg: Option<String>,
) -> Result<u8, CtlError> {
    let message_json = match msg {
        Some(m) => message_arg("--msg", &m)?.to_string(),
        None => String::new(),
    };
    let r = ctx
        .client
        .run_bot(RunBotRequest { bot_id: bot_id.clone(), message_json, dryrun, show_sent })
        .await?
        .into_inner();
    if ctx.json {
        emit(&to_json(&run_json(&r)));
    } else {
        emit(&run_text(&bot_id, &r, show_sent, dryrun));
    }
    Ok(if r.error.is_empty() { EXIT_OK } else { EXIT_FAILED })
}

fn parsed_or_string(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.to_string()))
}

/// A JSON value with the keys of every object sorted (IntelMQ's `sort_keys=True`).
pub fn sorted(v: Value) -> Value {
    match v {
        Value::Object(o) => {
            let mut entries: Vec<(String, Value)> = o.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect::<Map<_, _>>())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// The result of `run` as JSON: `{input, sent: [{path, queues[, message]}], acknowledged, log, error}`.
pub fn run_json(r: &RunBotResponse) -> Value {
    let sent: Vec<Value> = r
        .sent
        .iter()
        .map(|s| {
            let mut o = Map::new();
            o.insert("path".into(), json!(s.path));
            o.insert("queues".into(), json!(s.queues));
            if !s.message_json.is_empty() {
                o.insert("message".into(), parsed_or_string(&s.message_json));
            }
            Value::Object(o)
        })
        .collect();
    json!({
        "input": if r.input_json.is_empty() { Value::Null } else { parsed_or_string(&r.input_json) },
        "sent": sent,
        "acknowledged": r.acknowledged,
        "log": r.log,
        "error": if r.error.is_empty() { Value::Null } else { json!(r.error) },
    })
}

/// The result of `run` for people: the bot's log, where each message went (pretty-printed with
/// --show-sent), and what happened to the input.
pub fn run_text(bot_id: &str, r: &RunBotResponse, show_sent: bool, dryrun: bool) -> String {
    let mut out = String::new();
    for l in &r.log {
        out.push_str(l);
        out.push('\n');
    }
    for s in &r.sent {
        let to = if s.queues.is_empty() { "no queue".to_string() } else { s.queues.join(", ") };
        let verb = if dryrun { "Would send" } else { "Sent" };
        out.push_str(&format!("{verb} a message to path '{}': {to}.\n", s.path));
        if show_sent && !s.message_json.is_empty() {
            out.push_str(&to_json(&sorted(parsed_or_string(&s.message_json))));
            out.push('\n');
        }
    }
    if !r.error.is_empty() {
        out.push_str(&format!("Bot {bot_id} failed on the message: {}\n", r.error.trim()));
    } else if r.acknowledged {
        out.push_str("The input message was acknowledged.\n");
    } else if dryrun {
        out.push_str("Dry run: nothing was sent or acknowledged.\n");
    } else if r.sent.is_empty() {
        out.push_str("The bot sent nothing.\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use intelmq_proto::control::v1::SentMessage;

    fn st(id: &str, state: &str) -> BotStatus {
        BotStatus { bot_id: id.into(), state: state.into(), ..Default::default() }
    }

    #[test]
    fn status_exits_zero_only_for_running_or_disabled_bots() {
        assert_eq!(lifecycle_exit(Lifecycle::Status, true, &[st("a", "running")]), 0);
        assert_eq!(lifecycle_exit(Lifecycle::Status, true, &[st("a", "disabled")]), 0);
        assert_eq!(lifecycle_exit(Lifecycle::Status, true, &[st("a", "stopped")]), 1);
        assert_eq!(lifecycle_exit(Lifecycle::Status, true, &[st("a", "failed")]), 1);
        assert_eq!(lifecycle_exit(Lifecycle::Status, false, &[st("a", "running"), st("b", "stopped")]), 1);
    }

    #[test]
    fn start_of_the_botnet_tolerates_disabled_bots_but_one_bot_must_run() {
        assert_eq!(lifecycle_exit(Lifecycle::Start, false, &[st("a", "running"), st("b", "disabled")]), 0);
        assert_eq!(lifecycle_exit(Lifecycle::Start, true, &[st("b", "disabled")]), 1);
        assert_eq!(lifecycle_exit(Lifecycle::Start, true, &[st("a", "failed")]), 1);
        assert_eq!(lifecycle_exit(Lifecycle::Restart, true, &[st("a", "starting")]), 0);
    }

    #[test]
    fn stop_succeeds_when_nothing_runs_any_more() {
        assert_eq!(
            lifecycle_exit(Lifecycle::Stop, false, &[st("a", "stopped"), st("b", "disabled"), st("c", "failed")]),
            0
        );
        assert_eq!(lifecycle_exit(Lifecycle::Stop, true, &[st("a", "running")]), 1);
        assert_eq!(lifecycle_exit(Lifecycle::Reload, true, &[st("a", "stopped")]), 1);
    }

    #[test]
    fn enable_and_disable_say_what_changed() {
        let mut b = st("a", "running");
        assert_eq!(enabled_text(&b, false), "Bot a is disabled; it keeps running until it is stopped.\n");
        assert_eq!(enabled_text(&b, true), "Bot a is enabled. Bot a is running.\n");
        b.state = "disabled".into();
        assert_eq!(enabled_text(&b, false), "Bot a is disabled.\n");
    }

    fn response() -> RunBotResponse {
        RunBotResponse {
            input_json: r#"{"__type": "Event", "source.ip": "1.2.3.4"}"#.into(),
            sent: vec![SentMessage {
                path: "_default".into(),
                queues: vec!["out-queue".into()],
                message_json: r#"{"source.ip": "1.2.3.4", "__type": "Event"}"#.into(),
            }],
            acknowledged: false,
            log: vec!["DRYRUN: Message would be sent now to '_default'!".into()],
            error: String::new(),
        }
    }

    #[test]
    fn run_text_shows_log_destinations_and_sorted_messages() {
        let text = run_text("e", &response(), true, true);
        assert_eq!(
            text,
            "DRYRUN: Message would be sent now to '_default'!\n\
             Would send a message to path '_default': out-queue.\n\
             {\n    \"__type\": \"Event\",\n    \"source.ip\": \"1.2.3.4\"\n}\n\
             Dry run: nothing was sent or acknowledged.\n"
        );
        let mut failed = response();
        failed.sent.clear();
        failed.error = "invalid value for source.ip".into();
        assert!(run_text("e", &failed, false, false)
            .ends_with("Bot e failed on the message: invalid value for source.ip\n"));
    }

    #[test]
    fn run_json_parses_the_messages() {
        let v = run_json(&response());
        assert_eq!(v["input"]["source.ip"], json!("1.2.3.4"));
        assert_eq!(v["sent"][0]["queues"], json!(["out-queue"]));
        assert_eq!(v["sent"][0]["message"]["__type"], json!("Event"));
        assert_eq!(v["error"], Value::Null);
        assert_eq!(v["acknowledged"], json!(false));
    }
}
