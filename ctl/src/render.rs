//! Output for people (aligned tables, IntelMQ's status messages) and for machines (IntelMQ's JSON
//! result shapes, indent 4). Pure functions from responses to text or JSON values; [`emit`] writes.

use std::io::Write as _;

use serde::Serialize as _;
use serde_json::{json, Map, Value};

use intelmq_proto::control::v1::{
    BotQueues, BotStats, BotStatus, CheckLine, DumpCount, DumpEntry, LogLine, NodeInfo, QueueSize,
};

/// Writes text to stdout; a closed pipe (`| head`) is not an error.
pub fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    if !text.is_empty() && !text.ends_with('\n') {
        let _ = out.write_all(b"\n");
    }
    let _ = out.flush();
}

/// What the answering node says about nodes that did not answer: one diagnostic line each on
/// stderr; the data from the other nodes still goes to stdout.
pub fn warn_notes(notes: &[String]) {
    for n in notes {
        eprintln!("intelmqctl: warning: {n}");
    }
}

/// Whether the listed items span more than one node: then tables get a NODE column.
pub fn several_nodes<'a>(nodes: impl IntoIterator<Item = &'a str>) -> bool {
    let mut first: Option<&str> = None;
    for n in nodes.into_iter().filter(|n| !n.is_empty()) {
        match first {
            None => first = Some(n),
            Some(f) if f != n => return true,
            Some(_) => {}
        }
    }
    false
}

/// JSON with an indent of 4, as IntelMQ's `json.dumps(result, indent=4)`.
pub fn to_json(v: &Value) -> String {
    let mut buf = Vec::new();
    let mut ser =
        serde_json::Serializer::with_formatter(&mut buf, serde_json::ser::PrettyFormatter::with_indent(b"    "));
    if v.serialize(&mut ser).is_err() {
        // Serialising a Value into memory cannot fail; keep a compact form just in case.
        return v.to_string();
    }
    String::from_utf8(buf).unwrap_or_else(|_| v.to_string())
}

/// An aligned text table: a header row, then one row per item; numeric columns align right.
#[derive(Debug, Clone)]
pub struct Table {
    headers: Vec<&'static str>,
    numeric: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// Headers ending in `>` are numeric (right-aligned); the `>` is not shown.
    pub fn new(headers: &[&'static str]) -> Self {
        Table {
            headers: headers.iter().map(|h| h.trim_end_matches('>')).collect(),
            numeric: headers.iter().map(|h| h.ends_with('>')).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn render(&self) -> String {
        let n = self.headers.len();
        let mut width: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(n) {
                width[i] = width[i].max(c.chars().count());
            }
        }
        let mut out = String::new();
        let header: Vec<String> = self.headers.iter().map(|h| h.to_string()).collect();
        for cells in std::iter::once(&header).chain(self.rows.iter()) {
            let mut line = String::new();
            for (i, (w, numeric)) in width.iter().zip(&self.numeric).enumerate() {
                let cell = cells.get(i).map(String::as_str).unwrap_or("");
                let pad = w.saturating_sub(cell.chars().count());
                if i > 0 {
                    line.push_str("  ");
                }
                if *numeric {
                    line.push_str(&" ".repeat(pad));
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    if i + 1 < n {
                        line.push_str(&" ".repeat(pad));
                    }
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Ends a sentence with a period unless it already ends with punctuation.
fn sentence(s: &str) -> String {
    let s = s.trim();
    if s.ends_with(['.', '!', '?', ':']) {
        s.to_string()
    } else {
        format!("{s}.")
    }
}

/// IntelMQ's status message for a bot: "Bot X is running.", "Bot X failed: reason.".
pub fn status_message(b: &BotStatus) -> String {
    let id = &b.bot_id;
    match b.state.as_str() {
        "running" if b.reason.trim().is_empty() => format!("Bot {id} is running."),
        // A running bot that waits for its far side says why.
        "running" => format!("Bot {id} is running, {}", sentence(&b.reason)),
        "stopped" => format!("Bot {id} is stopped."),
        "disabled" => format!("Bot {id} is disabled."),
        "starting" => format!("Bot {id} is starting."),
        "failed" if b.reason.trim().is_empty() => format!("Bot {id} failed."),
        "failed" => format!("Bot {id} failed: {}", sentence(&b.reason)),
        // The bot's node did not answer; the reason names it.
        "unknown" if !b.reason.trim().is_empty() => format!("Bot {id} is in an unknown state: {}", sentence(&b.reason)),
        other => format!("Status of Bot {id} is unknown: {other:?}."),
    }
}

/// One status message per bot, after its node in brackets when the bots span several nodes.
pub fn status_text(bots: &[BotStatus]) -> String {
    let nodes = several_nodes(bots.iter().map(|b| b.node.as_str()));
    bots.iter()
        .map(|b| if nodes { format!("[{}] {}\n", b.node, status_message(b)) } else { status_message(b) + "\n" })
        .collect()
}

/// IntelMQ's status result: the status string for one bot, `{bot_id: status}` otherwise.
pub fn status_json(bots: &[BotStatus], single: bool) -> Value {
    match bots {
        [b] if single => Value::String(b.state.clone()),
        _ => Value::Object(bots.iter().map(|b| (b.bot_id.clone(), Value::String(b.state.clone()))).collect()),
    }
}

fn queue_pair(q: &QueueSize) -> Value {
    json!([q.name, q.size])
}

/// IntelMQ's `list queues` result: `{bot_id: {"source_queue": [name, n], "destination_queues":
/// [[name, n], ...]}}` (no source queue for collectors), plus `"node"` when the bots span several
/// nodes. With `non_zero`, empty queues and bots left without queues are omitted.
pub fn queues_json(bots: &[BotQueues], non_zero: bool) -> Value {
    let keep = |q: &QueueSize| !non_zero || q.size > 0;
    let nodes = several_nodes(bots.iter().map(|b| b.node.as_str()));
    let mut out = Map::new();
    for b in bots {
        let mut entry = Map::new();
        if let Some(src) = b.source_queue.as_ref().filter(|q| keep(q)) {
            entry.insert("source_queue".into(), queue_pair(src));
        }
        let dest: Vec<Value> = b.destination_queues.iter().filter(|q| keep(q)).map(queue_pair).collect();
        if !(non_zero && dest.is_empty()) {
            entry.insert("destination_queues".into(), Value::Array(dest));
        }
        if non_zero && entry.is_empty() {
            continue;
        }
        if nodes {
            entry.insert("node".into(), json!(b.node));
        }
        out.insert(b.bot_id.clone(), Value::Object(entry));
    }
    Value::Object(out)
}

/// `{"total-messages": N}` (IntelMQ's `list queues --count`).
pub fn queue_count_json(total: u64) -> Value {
    json!({ "total-messages": total })
}

/// Every queue once, when the node did not list them: taken from the bots' queues.
pub fn unique_queues(bots: &[BotQueues], queues: &[QueueSize]) -> Vec<QueueSize> {
    if !queues.is_empty() {
        return queues.to_vec();
    }
    let mut seen: Vec<QueueSize> = Vec::new();
    for b in bots {
        if let Some(src) = &b.source_queue {
            let mut q = src.clone();
            if q.consumer.is_empty() {
                q.consumer = b.bot_id.clone();
            }
            seen.retain(|s| s.name != q.name);
            seen.push(q);
        }
        for d in &b.destination_queues {
            if !seen.iter().any(|s| s.name == d.name) {
                seen.push(d.clone());
            }
        }
    }
    seen
}

/// A table of queues with their sizes and consumers (and the node holding each when they span
/// several), then the total.
pub fn queues_text(queues: &[QueueSize], total: u64, non_zero: bool) -> String {
    let nodes = several_nodes(queues.iter().map(|q| q.node.as_str()));
    let mut t = Table::new(if nodes {
        &["QUEUE", "MESSAGES>", "CONSUMER", "NODE"]
    } else {
        &["QUEUE", "MESSAGES>", "CONSUMER"]
    });
    for q in queues.iter().filter(|q| !non_zero || q.size > 0) {
        let consumer = if q.outbox_to.is_empty() {
            q.consumer.clone()
        } else {
            format!("{} (outbox to node {})", q.consumer, q.outbox_to)
        };
        let mut row = vec![q.name.clone(), q.size.to_string(), consumer];
        if nodes {
            row.push(q.node.clone());
        }
        t.row(row);
    }
    let mut out = if t.is_empty() { "No queues hold messages.\n".to_string() } else { t.render() };
    out.push_str(&format!("Total: {total} {}.\n", plural(total, "message", "messages")));
    out
}

fn plural<'a>(n: u64, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// The catalogue of available bots as a table: group and module, and the name when the
/// catalogue names bots other than by their module path.
pub fn catalogue_text(catalogue: &Value) -> String {
    let mut rows = Vec::new();
    for (group, bots) in catalogue.as_object().into_iter().flatten() {
        for (name, spec) in bots.as_object().into_iter().flatten() {
            let module = spec.get("module").and_then(Value::as_str).unwrap_or("").to_string();
            rows.push((group.clone(), name.clone(), module));
        }
    }
    let named = rows.iter().any(|(_, name, module)| name != module);
    let mut t = Table::new(if named { &["GROUP", "NAME", "MODULE"] } else { &["GROUP", "MODULE"] });
    for (group, name, module) in rows {
        t.row(if named { vec![group, name, module] } else { vec![group, module] });
    }
    t.render()
}

/// A log line in IntelMQ's format, continuation lines below it.
pub fn log_text(lines: &[LogLine]) -> String {
    let mut out = String::new();
    for l in lines {
        let thread = if l.thread_id.is_empty() { String::new() } else { format!(".{}", l.thread_id) };
        out.push_str(&format!("{} - {}{} - {} - {}\n", l.date, l.bot_id, thread, l.log_level, l.message));
        for ext in l.extended_message.lines() {
            out.push_str(ext);
            out.push('\n');
        }
    }
    out
}

/// IntelMQ's `log` result: `[{date, bot_id, thread_id, log_level, message[, extended_message]}]`.
pub fn log_json(lines: &[LogLine]) -> Value {
    Value::Array(
        lines
            .iter()
            .map(|l| {
                let mut o = Map::new();
                o.insert("date".into(), json!(l.date));
                o.insert("bot_id".into(), json!(l.bot_id));
                o.insert("thread_id".into(), if l.thread_id.is_empty() { Value::Null } else { json!(l.thread_id) });
                o.insert("log_level".into(), json!(l.log_level));
                o.insert("message".into(), json!(l.message));
                if !l.extended_message.is_empty() {
                    o.insert("extended_message".into(), json!(l.extended_message));
                }
                Value::Object(o)
            })
            .collect(),
    )
}

/// IntelMQ's `check` result: `{"status": ..., "lines": [[level, message], ...]}`.
pub fn check_json(status: &str, lines: &[CheckLine]) -> Value {
    json!({
        "status": status,
        "lines": lines.iter().map(|l| json!([l.level, l.message])).collect::<Vec<_>>(),
    })
}

/// One finding per line (`ERROR: ...`), then the result.
pub fn check_text(status: &str, lines: &[CheckLine]) -> String {
    let mut out = String::new();
    for l in lines {
        out.push_str(&format!("{}: {}\n", l.level.to_uppercase(), l.message));
    }
    out.push_str(&format!("Check result: {status}.\n"));
    out
}

/// Per-bot counters as a table (with the bots' nodes when they span several).
pub fn stats_text(bots: &[BotStats]) -> String {
    let nodes = several_nodes(bots.iter().map(|b| b.node.as_str()));
    let mut headers = vec!["BOT", "STATE", "RECEIVED>", "SENT>", "DUMPED>", "RETRIES>", "RATE/S>", "INBOX>", "OUTBOX>"];
    if nodes {
        headers.insert(1, "NODE");
    }
    let mut t = Table::new(&headers);
    for b in bots {
        let mut row = vec![
            b.bot_id.clone(),
            b.state.clone(),
            b.received.to_string(),
            b.sent.to_string(),
            b.dumped.to_string(),
            b.retries.to_string(),
            format!("{:.1}", b.rate),
            b.queue_size.to_string(),
            b.outbox_size.to_string(),
        ];
        if nodes {
            row.insert(1, b.node.clone());
        }
        t.row(row);
    }
    t.render()
}

/// A stats snapshot as JSON.
pub fn stats_json(timestamp_ms: u64, bots: &[BotStats]) -> Value {
    json!({
        "timestamp_ms": timestamp_ms,
        "bots": bots.iter().map(|b| json!({
            "bot_id": b.bot_id,
            "state": b.state,
            "received": b.received,
            "sent": b.sent,
            "dumped": b.dumped,
            "retries": b.retries,
            "rate": b.rate,
            "queue_size": b.queue_size,
            "node": b.node,
            "outbox_size": b.outbox_size,
        })).collect::<Vec<_>>(),
    })
}

/// A dumped message as JSON: the parsed message, or the string when it is not JSON (base64).
pub fn dump_message_value(e: &DumpEntry) -> Value {
    if e.message_type != "base64" {
        if let Ok(v) = serde_json::from_str::<Value>(&e.message) {
            return v;
        }
    }
    Value::String(e.message.clone())
}

/// Dump entries as JSON objects (the message parsed).
pub fn dump_entries_json(entries: &[DumpEntry]) -> Value {
    Value::Array(
        entries
            .iter()
            .map(|e| {
                let mut o = Map::new();
                o.insert("id".into(), json!(e.id));
                o.insert("bot_id".into(), json!(e.bot_id));
                o.insert("source_queue".into(), json!(e.source_queue));
                o.insert("time".into(), json!(e.time));
                o.insert("traceback".into(), json!(e.traceback));
                o.insert("message".into(), dump_message_value(e));
                if !e.message_type.is_empty() {
                    o.insert("message_type".into(), json!(e.message_type));
                }
                Value::Object(o)
            })
            .collect(),
    )
}

fn truncate(s: &str, limit: i64) -> String {
    match usize::try_from(limit) {
        Ok(n) if n > 0 && s.chars().count() > n => {
            let cut: String = s.chars().take(n).collect();
            format!("{cut}...")
        }
        _ => s.to_string(),
    }
}

/// Dump entries for people: header, traceback, message pretty-printed (`raw` and base64 cut at
/// `limit` characters, as intelmqdump's --truncate).
pub fn dump_entries_text(entries: &[DumpEntry], limit: i64) -> String {
    let mut out = String::new();
    for e in entries {
        out.push_str(&format!("Entry {} of {} at {}, from queue {}:\n", e.id, e.bot_id, e.time, e.source_queue));
        if !e.traceback.is_empty() {
            out.push_str("  traceback:\n");
            for t in e.traceback.iter().flat_map(|t| t.lines()) {
                out.push_str(&format!("    {t}\n"));
            }
        }
        out.push_str("  message:\n");
        let mut msg = dump_message_value(e);
        match &mut msg {
            Value::String(s) => *s = truncate(s, limit),
            Value::Object(o) => {
                if let Some(Value::String(raw)) = o.get_mut("raw") {
                    *raw = truncate(raw, limit);
                }
            }
            _ => {}
        }
        let text = match &msg {
            Value::String(s) if e.message_type == "base64" => format!("(base64) {s}"),
            Value::String(s) => s.clone(),
            other => to_json(other),
        };
        for line in text.lines() {
            out.push_str(&format!("    {line}\n"));
        }
    }
    out
}

/// Dump counts per bot as a table (with the node holding them when they span several).
pub fn dump_counts_text(counts: &[DumpCount]) -> String {
    if counts.is_empty() {
        return "No dumps.\n".into();
    }
    let nodes = several_nodes(counts.iter().map(|c| c.node.as_str()));
    let mut t = Table::new(if nodes { &["BOT", "NODE", "DUMPS>"] } else { &["BOT", "DUMPS>"] });
    for c in counts {
        let mut row = vec![c.bot_id.clone(), c.count.to_string()];
        if nodes {
            row.insert(1, c.node.clone());
        }
        t.row(row);
    }
    t.render()
}

/// How long ago a node last answered: `now` for a node that just answered, `never` without an
/// answer.
pub fn answer_age(ms: Option<u64>, reachable: bool) -> String {
    match ms {
        None => "never".into(),
        Some(ms) if reachable && ms < 1000 => "now".into(),
        Some(ms) => format!("{} s ago", ms / 1000),
    }
}

/// The nodes of the botnet as a table; an unreachable node's columns stay empty but for the age
/// of its last answer and why it cannot be reached.
pub fn nodes_text(nodes: &[NodeInfo]) -> String {
    let mut t = Table::new(&["NODE", "ENDPOINT", "STATE", "VERSION", "LOAD>", "BOTS>", "LAST ANSWER", "NOTE"]);
    for n in nodes {
        let state = match (n.local, n.reachable) {
            (true, _) => "local",
            (false, true) => "reachable",
            (false, false) => "unreachable",
        };
        let up = n.reachable || n.local;
        t.row(vec![
            n.node_id.clone(),
            n.endpoint.clone(),
            state.to_string(),
            if up { n.version.clone() } else { String::new() },
            if up { format!("{:.2}", n.load1) } else { String::new() },
            if up { format!("{}/{}", n.running_bots, n.bots) } else { String::new() },
            if n.local { "-".to_string() } else { answer_age(n.last_answer_ms, n.reachable) },
            n.error.clone(),
        ]);
    }
    t.render()
}

/// The nodes as JSON objects.
pub fn nodes_json(nodes: &[NodeInfo]) -> Value {
    Value::Array(
        nodes
            .iter()
            .map(|n| {
                json!({
                    "node_id": n.node_id,
                    "endpoint": n.endpoint,
                    "local": n.local,
                    "reachable": n.reachable || n.local,
                    "version": n.version,
                    "load1": n.load1,
                    "running_bots": n.running_bots,
                    "bots": n.bots,
                    "last_answer_ms": n.last_answer_ms,
                    "error": n.error,
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(id: &str, state: &str, reason: &str) -> BotStatus {
        BotStatus { bot_id: id.into(), state: state.into(), reason: reason.into(), ..Default::default() }
    }

    fn bq(bot: &str, source_queue: Option<QueueSize>, destination_queues: Vec<QueueSize>) -> BotQueues {
        BotQueues { bot_id: bot.into(), source_queue, destination_queues, ..Default::default() }
    }

    fn q(name: &str, size: u64) -> QueueSize {
        QueueSize { name: name.into(), size, ..Default::default() }
    }

    #[test]
    fn status_messages_follow_intelmq() {
        assert_eq!(status_message(&st("a", "running", "")), "Bot a is running.");
        assert_eq!(
            status_message(&st("a", "running", "waiting: connection refused")),
            "Bot a is running, waiting: connection refused."
        );
        assert_eq!(status_message(&st("a", "stopped", "")), "Bot a is stopped.");
        assert_eq!(status_message(&st("a", "disabled", "")), "Bot a is disabled.");
        assert_eq!(status_message(&st("a", "failed", "cannot open file x")), "Bot a failed: cannot open file x.");
        assert_eq!(status_message(&st("a", "failed", "Broken!")), "Bot a failed: Broken!");
        assert_eq!(status_message(&st("a", "failed", "")), "Bot a failed.");
        assert_eq!(status_message(&st("a", "weird", "")), "Status of Bot a is unknown: \"weird\".");
    }

    #[test]
    fn status_json_is_a_string_for_one_bot_and_a_dict_for_many() {
        let one = [st("a", "running", "")];
        assert_eq!(status_json(&one, true), json!("running"));
        assert_eq!(status_json(&one, false), json!({"a": "running"}));
        let two = [st("b", "stopped", ""), st("a", "running", "")];
        assert_eq!(to_json(&status_json(&two, false)), "{\n    \"b\": \"stopped\",\n    \"a\": \"running\"\n}");
    }

    #[test]
    fn queues_json_has_intelmq_shape() {
        let bots = vec![
            bq("c", None, vec![q("p-queue", 2)]),
            bq("p", Some(q("p-queue", 2)), vec![q("o-queue", 0)]),
            bq("o", Some(q("o-queue", 0)), vec![]),
        ];
        assert_eq!(
            queues_json(&bots, false),
            json!({
                "c": {"destination_queues": [["p-queue", 2]]},
                "p": {"source_queue": ["p-queue", 2], "destination_queues": [["o-queue", 0]]},
                "o": {"source_queue": ["o-queue", 0], "destination_queues": []},
            })
        );
        assert_eq!(
            queues_json(&bots, true),
            json!({
                "c": {"destination_queues": [["p-queue", 2]]},
                "p": {"source_queue": ["p-queue", 2]},
            })
        );
        assert_eq!(to_json(&queue_count_json(7)), "{\n    \"total-messages\": 7\n}");
    }

    #[test]
    fn unique_queues_come_from_the_bots_when_the_node_gives_none() {
        let bots = vec![bq("c", None, vec![q("p-queue", 2)]), bq("p", Some(q("p-queue", 2)), vec![])];
        let u = unique_queues(&bots, &[]);
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].consumer, "p");
        let given = vec![q("x", 1)];
        assert_eq!(unique_queues(&bots, &given), given);
    }

    #[test]
    fn tables_align_text_left_and_numbers_right() {
        let mut t = Table::new(&["QUEUE", "MESSAGES>", "CONSUMER"]);
        t.row(vec!["a-long-queue".into(), "5".into(), "bot".into()]);
        t.row(vec!["q".into(), "12345678901".into(), "".into()]);
        assert_eq!(
            t.render(),
            "QUEUE            MESSAGES  CONSUMER\n\
             a-long-queue            5  bot\n\
             q             12345678901\n"
        );
    }

    #[test]
    fn queue_text_shows_the_total_and_hides_empty_queues_with_non_zero() {
        let text = queues_text(&[q("a", 0), q("b", 3)], 3, true);
        assert!(!text.contains("\na "), "{text}");
        assert!(text.contains("b"), "{text}");
        assert!(text.ends_with("Total: 3 messages.\n"), "{text}");
        assert_eq!(queues_text(&[q("a", 0)], 0, true), "No queues hold messages.\nTotal: 0 messages.\n");
        assert!(queues_text(&[q("a", 1)], 1, false).ends_with("Total: 1 message.\n"));
    }

    #[test]
    fn log_lines_render_in_intelmq_format_and_shape() {
        let lines = vec![
            LogLine {
                date: "2024-01-01 12:00:00,123".into(),
                bot_id: "p".into(),
                thread_id: String::new(),
                log_level: "ERROR".into(),
                message: "Bot has found a problem.".into(),
                extended_message: "Traceback:\n  line".into(),
            },
            LogLine {
                date: "2024-01-01 12:00:01,000".into(),
                bot_id: "p".into(),
                thread_id: "1".into(),
                log_level: "INFO".into(),
                message: "Bot is starting.".into(),
                extended_message: String::new(),
            },
        ];
        assert_eq!(
            log_text(&lines),
            "2024-01-01 12:00:00,123 - p - ERROR - Bot has found a problem.\nTraceback:\n  line\n\
             2024-01-01 12:00:01,000 - p.1 - INFO - Bot is starting.\n"
        );
        assert_eq!(
            log_json(&lines),
            json!([
                {"date": "2024-01-01 12:00:00,123", "bot_id": "p", "thread_id": null, "log_level": "ERROR",
                 "message": "Bot has found a problem.", "extended_message": "Traceback:\n  line"},
                {"date": "2024-01-01 12:00:01,000", "bot_id": "p", "thread_id": "1", "log_level": "INFO",
                 "message": "Bot is starting."},
            ])
        );
    }

    #[test]
    fn check_result_has_intelmq_shape() {
        let lines = vec![
            CheckLine { level: "info".into(), message: "Reading configuration files.".into() },
            CheckLine { level: "error".into(), message: "Bot 'x': no destination queue.".into() },
        ];
        assert_eq!(
            check_json("error", &lines),
            json!({"status": "error", "lines": [["info", "Reading configuration files."], ["error", "Bot 'x': no destination queue."]]})
        );
        assert_eq!(
            check_text("error", &lines),
            "INFO: Reading configuration files.\nERROR: Bot 'x': no destination queue.\nCheck result: error.\n"
        );
    }

    #[test]
    fn catalogue_text_lists_group_name_and_module() {
        let cat = json!({"Collector": {"File": {"module": "intelmq.bots.collectors.file.collector_file", "parameters": {}}},
                         "Output": {"File": {"module": "intelmq.bots.outputs.file.output"}}});
        let text = catalogue_text(&cat);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[1].starts_with("Collector  File  intelmq.bots.collectors.file.collector_file"), "{text}");
        let by_module =
            json!({"Output": {"intelmq.bots.outputs.file.output": {"module": "intelmq.bots.outputs.file.output"}}});
        assert_eq!(catalogue_text(&by_module), "GROUP   MODULE\nOutput  intelmq.bots.outputs.file.output\n");
    }

    fn entry(message: &str, message_type: &str) -> DumpEntry {
        DumpEntry {
            id: 4,
            bot_id: "p".into(),
            source_queue: "p-queue".into(),
            time: "2024-05-01T10:00:00.123456".into(),
            traceback: vec!["Traceback:\n  x".into(), "ValueError: bad".into()],
            message: message.into(),
            message_type: message_type.into(),
        }
    }

    #[test]
    fn dump_entries_show_the_parsed_message_and_cut_raw() {
        let e = entry(r#"{"__type": "Report", "raw": "QUFBQUFBQUFBQQ=="}"#, "");
        assert_eq!(dump_message_value(&e), json!({"__type": "Report", "raw": "QUFBQUFBQUFBQQ=="}));
        let text = dump_entries_text(std::slice::from_ref(&e), 4);
        assert!(text.starts_with("Entry 4 of p at 2024-05-01T10:00:00.123456, from queue p-queue:\n"), "{text}");
        assert!(text.contains("    ValueError: bad\n"), "{text}");
        assert!(text.contains("\"raw\": \"QUFB...\""), "{text}");
        let full = dump_entries_text(std::slice::from_ref(&e), 0);
        assert!(full.contains("QUFBQUFBQUFBQQ=="), "{full}");
        let b = entry("AAEC", "base64");
        assert_eq!(dump_message_value(&b), json!("AAEC"));
        assert_eq!(dump_entries_json(&[b])[0]["message_type"], json!("base64"));
        assert!(dump_entries_json(&[e])[0].get("message_type").is_none());
    }

    #[test]
    fn dump_counts_render_as_a_table_or_a_note() {
        assert_eq!(dump_counts_text(&[]), "No dumps.\n");
        let c = |b: &str, n: &str, count| DumpCount { bot_id: b.into(), count, node: n.into() };
        assert_eq!(dump_counts_text(&[c("p", "a", 3)]), "BOT  DUMPS\np        3\n");
        assert_eq!(
            dump_counts_text(&[c("p", "a", 3), c("q", "b", 1)]),
            "BOT  NODE  DUMPS\np    a         3\nq    b         1\n"
        );
    }

    #[test]
    fn several_nodes_add_the_node_to_tables_and_messages() {
        assert!(!several_nodes(["a", "a", ""]));
        assert!(several_nodes(["a", "", "b"]));
        let mut a = st("x", "running", "");
        a.node = "node-a".into();
        let mut b = st("y", "unknown", "node node-b unreachable (connection refused), last answer 3 s ago");
        b.node = "node-b".into();
        assert_eq!(status_text(std::slice::from_ref(&a)), "Bot x is running.\n");
        assert_eq!(
            status_text(&[a, b]),
            "[node-a] Bot x is running.\n[node-b] Bot y is in an unknown state: node node-b unreachable \
             (connection refused), last answer 3 s ago.\n"
        );
        let mut qa = q("a-queue", 1);
        qa.node = "node-a".into();
        let mut qb = q("b-queue", 2);
        qb.node = "node-b".into();
        assert_eq!(
            queues_text(&[qa, qb], 3, false),
            "QUEUE    MESSAGES  CONSUMER  NODE\na-queue         1            node-a\nb-queue         2            node-b\nTotal: 3 messages.\n"
        );
        let bots = vec![
            BotQueues { bot_id: "a".into(), source_queue: None, destination_queues: vec![], node: "node-a".into() },
            BotQueues { bot_id: "b".into(), source_queue: None, destination_queues: vec![], node: "node-b".into() },
        ];
        assert_eq!(queues_json(&bots, false)["b"], json!({"destination_queues": [], "node": "node-b"}));
        assert_eq!(queues_json(&bots[..1], false)["a"], json!({"destination_queues": []}));
    }

    #[test]
    fn nodes_show_reachability_and_the_age_of_the_last_answer() {
        let nodes = vec![
            NodeInfo {
                node_id: "node-a".into(),
                endpoint: "127.0.0.2:7600".into(),
                local: true,
                reachable: true,
                version: "0.1.0".into(),
                load1: 0.5,
                running_bots: 2,
                bots: 2,
                last_answer_ms: Some(0),
                error: String::new(),
            },
            NodeInfo {
                node_id: "node-c".into(),
                endpoint: "127.0.0.4:7600".into(),
                last_answer_ms: Some(12_300),
                error: "tcp connect error".into(),
                ..Default::default()
            },
        ];
        assert_eq!(
            nodes_text(&nodes),
            "NODE    ENDPOINT        STATE        VERSION  LOAD  BOTS  LAST ANSWER  NOTE\n\
             node-a  127.0.0.2:7600  local        0.1.0    0.50   2/2  -\n\
             node-c  127.0.0.4:7600  unreachable                       12 s ago     tcp connect error\n"
        );
        let v = nodes_json(&nodes);
        assert_eq!(v[1]["reachable"], json!(false));
        assert_eq!(v[1]["last_answer_ms"], json!(12_300));
        assert_eq!(answer_age(None, false), "never");
        assert_eq!(answer_age(Some(400), true), "now");
        assert_eq!(answer_age(Some(400), false), "0 s ago");
    }

    #[test]
    fn stats_render_with_one_decimal_rate() {
        let b = BotStats {
            bot_id: "p".into(),
            state: "running".into(),
            received: 10,
            sent: 9,
            dumped: 1,
            retries: 0,
            rate: 2.26,
            queue_size: 0,
            node: "local".into(),
            outbox_size: 0,
        };
        let text = stats_text(std::slice::from_ref(&b));
        assert!(text.lines().nth(1).is_some_and(|l| l.starts_with("p    running") && l.contains(" 2.3 ")), "{text}");
        assert_eq!(stats_json(5, &[b])["bots"][0]["sent"], json!(9));
    }
}
