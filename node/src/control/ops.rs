//! The verbs that need no supervisor: queues, dumps, logs, check, inject, stats. Plain functions
//! over a [`NodeHandle`], so the gRPC service stays a thin translation layer.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use serde_json::Value;

use crate::bots::Level;
use crate::config::{self, Botnet, Group};
use crate::message::{Message, MessageKind};
use crate::runtime::{self, ControlError, NodeHandle};
use crate::store::{DumpEntry, Step};

fn internal(e: impl std::fmt::Display) -> ControlError {
    ControlError::Internal(e.to_string())
}

/// The configured bot consuming `queue`, if any.
pub fn consumer_of<'a>(botnet: &'a Botnet, queue: &'a str) -> Option<&'a config::BotConfig> {
    botnet.consumers_of(queue).next()
}

/// Fails with NOT_FOUND unless `queue` is configured.
pub fn configured_queue(botnet: &Botnet, queue: &str) -> Result<(), ControlError> {
    if botnet.queues().iter().any(|q| q == queue) {
        Ok(())
    } else {
        Err(ControlError::UnknownQueue(queue.to_string()))
    }
}

/// One record of a bot's log file.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LogRecord {
    pub date: String,
    pub bot_id: String,
    pub thread_id: String,
    pub log_level: String,
    pub message: String,
    pub extended_message: String,
}

/// Parses one line in IntelMQ's log format (`<date> - <bot-id>[.N] - <LEVEL> - <message>`).
pub fn parse_log_line(line: &str) -> Option<LogRecord> {
    let mut parts = line.splitn(4, " - ");
    let date = parts.next()?;
    let name = parts.next()?;
    let level = parts.next()?;
    let message = parts.next()?;
    let looks_like_date =
        date.len() >= 19 && date.as_bytes().get(4) == Some(&b'-') && date.as_bytes().get(10) == Some(&b' ');
    if !looks_like_date || Level::parse(level).is_none() {
        return None;
    }
    let (bot_id, thread_id) = match name.rsplit_once('.') {
        Some((b, t)) if t.chars().all(|c| c.is_ascii_digit()) => (b, t),
        _ => (name, ""),
    };
    Some(LogRecord {
        date: date.to_string(),
        bot_id: bot_id.to_string(),
        thread_id: thread_id.to_string(),
        log_level: level.to_string(),
        message: message.to_string(),
        extended_message: String::new(),
    })
}

/// The last `lines` records (all with a negative number) of a bot's log at or above `level`.
pub fn read_log(root: &Path, bot_id: &str, lines: i64, level: Level) -> Result<Vec<LogRecord>, ControlError> {
    let path = root.join("var/log").join(format!("{bot_id}.log"));
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(ControlError::Internal(format!("cannot read {}: {e}", path.display()))),
    };
    let mut records: Vec<LogRecord> = Vec::new();
    for line in text.lines() {
        match parse_log_line(line) {
            Some(r) => records.push(r),
            None => {
                if let Some(last) = records.last_mut() {
                    if !last.extended_message.is_empty() {
                        last.extended_message.push('\n');
                    }
                    last.extended_message.push_str(line);
                }
            }
        }
    }
    records.retain(|r| Level::parse(&r.log_level).is_some_and(|l| l >= level));
    if lines >= 0 {
        let keep = lines as usize;
        if records.len() > keep {
            records.drain(..records.len() - keep);
        }
    }
    Ok(records)
}

/// Queue sizes per bot: (bot id, source queue with size, destination queues with sizes).
pub type BotQueueSizes = (String, Option<(String, u64)>, Vec<(String, u64)>);

/// Sizes of every configured queue, per bot: its inbox, or for a queue another node owns, its
/// outbox here.
pub fn queue_sizes(node: &NodeHandle) -> Result<Vec<BotQueueSizes>, ControlError> {
    let botnet = node.botnet()?;
    Ok(botnet
        .bots
        .iter()
        .map(|b| {
            let src = b.source_queue.as_ref().map(|q| (q.clone(), node.store.waiting(q)));
            let mut dst: Vec<(String, u64)> = Vec::new();
            for q in b.destination_queues.values().flatten() {
                if !dst.iter().any(|(n, _)| n == q) {
                    dst.push((q.clone(), node.store.waiting(q)));
                }
            }
            (b.id.clone(), src, dst)
        })
        .collect())
}

/// Deletes the messages of a configured queue.
pub fn clear_queue(node: &NodeHandle, queue: &str) -> Result<u64, ControlError> {
    let botnet = node.botnet()?;
    configured_queue(&botnet, queue)?;
    node.store.ensure_queue(queue).map_err(internal)?;
    node.store.clear_queue(queue).map_err(internal)
}

/// Validates a message and appends it to a configured queue; returns the queue's size after.
pub fn inject(node: &NodeHandle, queue: &str, json: &str, default_type: &str) -> Result<u64, ControlError> {
    let botnet = node.botnet()?;
    configured_queue(&botnet, queue)?;
    let kind = match default_type {
        "" | "Event" => MessageKind::Event,
        "Report" => MessageKind::Report,
        other => return Err(ControlError::Invalid(format!("unknown message type `{other}` (Event or Report)"))),
    };
    let msg = Message::from_wire(botnet.harmonization.clone(), json.as_bytes(), Some(kind))
        .map_err(|e| ControlError::Invalid(format!("message rejected: {e}")))?;
    let mut step = Step::new();
    step.put(queue, msg.to_internal());
    node.store.commit(step).map_err(internal)?;
    Ok(node.store.queue_len(queue))
}

/// Dump entries per bot with counts.
pub fn dump_counts(node: &NodeHandle) -> Result<Vec<(String, u64)>, ControlError> {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for (_, e) in node.store.dumps(None).map_err(internal)? {
        *counts.entry(e.bot_id).or_default() += 1;
    }
    Ok(counts.into_iter().collect())
}

/// The dump entries of a bot, all or the given ids (an unknown id is NOT_FOUND).
pub fn dump_entries(node: &NodeHandle, bot_id: &str, ids: &[u64]) -> Result<Vec<(u64, DumpEntry)>, ControlError> {
    let entries = node.store.dumps(Some(bot_id)).map_err(internal)?;
    if ids.is_empty() {
        return Ok(entries);
    }
    let mut out = Vec::new();
    for id in ids {
        match entries.iter().find(|(i, _)| i == id) {
            Some(e) => out.push(e.clone()),
            None => return Err(ControlError::UnknownDump { id: *id, bot: bot_id.to_string() }),
        }
    }
    Ok(out)
}

/// Deletes dump entries of a bot; returns how many.
pub fn delete_dumps(node: &NodeHandle, bot_id: &str, ids: &[u64], all: bool) -> Result<u64, ControlError> {
    let ids: Vec<u64> = if all {
        node.store.dumps(Some(bot_id)).map_err(internal)?.into_iter().map(|(i, _)| i).collect()
    } else {
        dump_entries(node, bot_id, ids)?.into_iter().map(|(i, _)| i).collect()
    };
    node.store.delete_dumps(&ids).map_err(internal)?;
    Ok(ids.len() as u64)
}

/// Recovers dump entries into their source queue (or `queue`), deleting them in the same write.
/// An Event recovered into a parser's queue becomes a Report, as IntelMQ does.
pub fn recover_dumps(
    node: &NodeHandle,
    bot_id: &str,
    ids: &[u64],
    all: bool,
    queue: &str,
) -> Result<Vec<u64>, ControlError> {
    let botnet = node.botnet()?;
    let entries = if all { dump_entries(node, bot_id, &[])? } else { dump_entries(node, bot_id, ids)? };
    let mut step = Step::new();
    let mut done = Vec::new();
    for (id, entry) in entries {
        let target = if queue.is_empty() { entry.source_queue.clone().unwrap_or_default() } else { queue.to_string() };
        if target.is_empty() {
            return Err(ControlError::Invalid(format!(
                "dump entry {id} has no source queue: name a queue to recover it into"
            )));
        }
        if consumer_of(&botnet, &target).is_none() {
            return Err(ControlError::UnknownQueue(target));
        }
        if entry.message.is_empty() {
            step.delete_dump(id);
            continue;
        }
        let data = if entry.message_type.as_deref() == Some("base64") {
            base64::engine::general_purpose::STANDARD
                .decode(entry.message.trim())
                .map_err(|e| ControlError::Invalid(format!("dump entry {id}: bad base64 message: {e}")))?
        } else {
            let to_parser = consumer_of(&botnet, &target).and_then(|c| c.group) == Some(Group::Parser)
                || consumer_of(&botnet, &target).is_some_and(|c| runtime::group_of(c) == "Parser");
            match Message::from_wire(botnet.harmonization.clone(), entry.message.as_bytes(), None) {
                Ok(m) if to_parser && m.kind() == MessageKind::Event => m.to_report().to_wire().into_bytes(),
                _ => entry.message.clone().into_bytes(),
            }
        };
        step.put(&target, data);
        step.delete_dump(id);
        done.push(id);
    }
    node.store.commit(step).map_err(internal)?;
    Ok(done)
}

/// Replaces the message of a dump entry after validating it.
pub fn update_dump(node: &NodeHandle, id: u64, message: &str) -> Result<(u64, DumpEntry), ControlError> {
    let botnet = node.botnet()?;
    let mut entry =
        node.store.dump_entry(id).map_err(internal)?.ok_or(ControlError::UnknownDump { id, bot: String::new() })?;
    let value: Value = serde_json::from_str(message).map_err(|e| ControlError::Invalid(format!("not JSON: {e}")))?;
    let kind = match value.get("__type").and_then(Value::as_str) {
        Some(_) => None,
        None => Some(MessageKind::Event),
    };
    let msg = Message::from_wire(botnet.harmonization.clone(), message.as_bytes(), kind)
        .map_err(|e| ControlError::Invalid(format!("message rejected: {e}")))?;
    entry.message = msg.to_wire();
    entry.message_type = None;
    node.store.put_dump(id, &entry).map_err(internal)?;
    Ok((id, entry))
}

/// A bot's dump in IntelMQ's `.dump` format (indent 4, sorted keys).
pub fn export_dumps(node: &NodeHandle, bot_id: &str) -> Result<String, ControlError> {
    let mut doc: BTreeMap<String, Value> = BTreeMap::new();
    for (_, e) in node.store.dumps(Some(bot_id)).map_err(internal)? {
        let mut key = e.time.clone();
        let mut n = 0;
        while doc.contains_key(&key) {
            n += 1;
            key = format!("{}-{n}", e.time);
        }
        let mut v = serde_json::Map::new();
        v.insert("bot_id".into(), Value::String(e.bot_id.clone()));
        v.insert("message".into(), Value::String(e.message.clone()));
        if let Some(t) = &e.message_type {
            v.insert("message_type".into(), Value::String(t.clone()));
        }
        v.insert("source_queue".into(), e.source_queue.clone().map(Value::String).unwrap_or(Value::Null));
        v.insert("traceback".into(), Value::Array(e.traceback.iter().cloned().map(Value::String).collect()));
        doc.insert(key, Value::Object(v));
    }
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    serde::Serialize::serialize(&doc, &mut ser).map_err(internal)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Adds the entries of an IntelMQ `.dump` document; `bot_id` overrides the entries' bot.
pub fn import_dumps(node: &NodeHandle, json: &str, bot_id: &str) -> Result<u64, ControlError> {
    let doc: serde_json::Map<String, Value> = serde_json::from_str(json)
        .map_err(|e| ControlError::Invalid(format!("not an IntelMQ dump (a JSON object): {e}")))?;
    let mut step = Step::new();
    let mut n = 0;
    for (time, v) in doc {
        let field = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let bot = if bot_id.is_empty() {
            field("bot_id").ok_or_else(|| ControlError::Invalid(format!("dump entry {time}: no bot_id")))?
        } else {
            bot_id.to_string()
        };
        let message = match v.get("message") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        let traceback = match v.get("traceback") {
            Some(Value::Array(a)) => {
                a.iter().map(|l| l.as_str().map(str::to_string).unwrap_or_else(|| l.to_string())).collect()
            }
            Some(Value::String(s)) => s.lines().map(str::to_string).collect(),
            _ => Vec::new(),
        };
        step.dump(DumpEntry {
            bot_id: bot,
            source_queue: field("source_queue"),
            time: time.clone(),
            traceback,
            message,
            message_type: field("message_type"),
        });
        n += 1;
    }
    node.store.commit(step).map_err(internal)?;
    Ok(n)
}

/// IntelMQ's `intelmqctl check`, adapted: configuration, bots, harmonization, store and wiring,
/// and with `connections` the outputs' destinations (a TCP connect each; up to a second).
/// Returns (level, message) lines; level is `info`, `warning` or `error`.
pub fn check(root: &Path, node: Option<&NodeHandle>, connections: bool) -> Vec<(String, String)> {
    let mut lines: Vec<(String, String)> = Vec::new();
    let mut add = |level: &str, msg: String| lines.push((level.to_string(), msg));
    let botnet = match config::load(root) {
        Ok(b) => b,
        Err(e) => {
            add("error", format!("Configuration cannot be loaded: {e}."));
            return lines;
        }
    };
    for w in &botnet.warnings {
        add("warning", format!("{w}."));
    }
    let harm = &botnet.harmonization;
    if harm.field(MessageKind::Event, "extra").map(|f| f.type_name) != Some(crate::message::TypeName::JSONDict) {
        add("error", "Harmonization: event field `extra` must be of type JSONDict.".to_string());
    }
    for b in &botnet.bots {
        if b.description.as_deref().unwrap_or("").is_empty() {
            add("warning", format!("Bot {:?} has no description.", b.id));
        }
        if b.name.as_deref().unwrap_or("").is_empty() {
            add("warning", format!("Bot {:?} has no name.", b.id));
        }
        let group = runtime::group_of(b);
        if matches!(group, "Collector" | "Parser" | "Expert")
            && b.destination_queues.get("_default").is_none_or(|q| q.is_empty())
        {
            add("error", format!("Bot {:?}: no (default) destination queue.", b.id));
        }
        if let Err(e) = runtime::build(b) {
            add("error", format!("Bot {:?}: {e}.", b.id));
        }
        for q in b.destination_queues.values().flatten() {
            if let Some(c) = consumer_of(&botnet, q) {
                if !c.enabled {
                    add("warning", format!("Bot {:?} sends to {q:?}, whose consumer {:?} is disabled.", b.id, c.id));
                }
            }
        }
    }
    let invalid = runtime::validate(&botnet).err().map(|e| e.to_string());
    if let Some(e) = invalid {
        if !lines.iter().any(|(_, m)| m.contains(&e)) {
            lines.push(("error".into(), format!("{e}.")));
        }
    }
    let mut add = |level: &str, msg: String| lines.push((level.to_string(), msg));
    if connections {
        for w in super::destinations::unreachable(&botnet, super::destinations::CONNECT_TIMEOUT) {
            add("warning", w);
        }
    }
    if let Some(node) = node {
        let configured = botnet.queues();
        let names = node.store.queue_names();
        let total: u64 = names.iter().map(|q| node.store.queue_len(q)).sum();
        add(
            "info",
            format!("Store at {} is open: {} queues, {total} messages.", node.store.path().display(), names.len()),
        );
        for q in names {
            let n = node.store.queue_len(&q);
            if n > 0 && !configured.contains(&q) {
                add("warning", format!("Orphaned queue {q:?} holds {n} messages and is not in the configuration."));
            }
        }
    }
    lines
}
