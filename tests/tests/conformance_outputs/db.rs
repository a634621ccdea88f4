//! Replay of the output cases of the `outputs-db` group (the redis output) against the machine's
//! Redis on 127.0.0.1:6379: the case's list is replaced by a unique key in the same database,
//! the bot gets the case's input, and the list is read back (a small RESP client on a plain
//! socket) and compared with `redis_after` of `expected_effects.json`, element by element; the key
//! is deleted afterwards. Without a Redis the cases are skipped (they fail with
//! INTELMQ_REQUIRE_SERVICES=1).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use intelmq_node::bots::{registry, Bot, Context, Level, MemoryLog, MemoryState};
use intelmq_node::message::{Harmonization, Message, MessageKind};
use serde_json::Value;

use super::{read_json, Outcome, HARNESS_KEYS};

/// The modules this replay handles.
pub const MODULES: &[&str] = &["intelmq.bots.outputs.redis.output"];

const REDIS: &str = "127.0.0.1:6379";

/// A RESP reply.
#[derive(Debug, PartialEq)]
enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
}

fn read_reply(r: &mut BufReader<TcpStream>) -> Result<Reply, String> {
    let mut line = String::new();
    r.read_line(&mut line).map_err(|e| format!("redis: {e}"))?;
    let line = line.trim_end_matches("\r\n");
    let (kind, rest) = line.split_at(1.min(line.len()));
    let int = |s: &str| s.parse::<i64>().map_err(|e| format!("redis: bad reply `{line}`: {e}"));
    Ok(match kind {
        "+" => Reply::Status(rest.to_string()),
        "-" => Reply::Error(rest.to_string()),
        ":" => Reply::Int(int(rest)?),
        "$" => {
            let n = int(rest)?;
            if n < 0 {
                Reply::Bulk(None)
            } else {
                let mut buf = vec![0u8; n as usize + 2];
                r.read_exact(&mut buf).map_err(|e| format!("redis: {e}"))?;
                buf.truncate(n as usize);
                Reply::Bulk(Some(buf))
            }
        }
        "*" => {
            let n = int(rest)?;
            let mut items = Vec::new();
            for _ in 0..n.max(0) {
                items.push(read_reply(r)?);
            }
            Reply::Array(items)
        }
        _ => return Err(format!("redis: unexpected reply `{line}`")),
    })
}

/// Sends one command and reads its reply.
fn command(conn: &mut BufReader<TcpStream>, args: &[&str]) -> Result<Reply, String> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    conn.get_mut().write_all(&out).map_err(|e| format!("redis: {e}"))?;
    match read_reply(conn)? {
        Reply::Error(e) => Err(format!("redis: {e}")),
        reply => Ok(reply),
    }
}

fn connect(db: &str) -> Result<BufReader<TcpStream>, String> {
    let stream = TcpStream::connect(REDIS).map_err(|e| format!("redis {REDIS}: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    let mut conn = BufReader::new(stream);
    command(&mut conn, &["SELECT", db])?;
    Ok(conn)
}

/// The list at `key` in `db`, then deleted.
fn take_list(db: &str, key: &str) -> Result<Vec<String>, String> {
    let mut conn = connect(db)?;
    let reply = command(&mut conn, &["LRANGE", key, "0", "-1"])?;
    command(&mut conn, &["DEL", key])?;
    let Reply::Array(items) = reply else {
        return Err(format!("redis: LRANGE answered {reply:?}"));
    };
    items
        .into_iter()
        .map(|item| match item {
            Reply::Bulk(Some(bytes)) => String::from_utf8(bytes).map_err(|e| e.to_string()),
            other => Err(format!("redis: list item {other:?}")),
        })
        .collect()
}

pub fn run_case(
    case: &Path,
    meta: &Value,
    entry: &registry::BotEntry,
    h: &Arc<Harmonization>,
) -> Result<Outcome, String> {
    let Value::Object(mut params) = read_json(&case.join("params.json"))? else {
        return Err("params.json is not an object".to_string());
    };
    for key in HARNESS_KEYS {
        params.remove(*key);
    }
    let effects = read_json(&case.join("expected_effects.json"))?;
    let Some((db, lists)) = effects["redis_after"].as_object().and_then(|dbs| dbs.iter().next()) else {
        return Ok(Outcome::Fail("expected_effects.json has no redis_after".to_string()));
    };
    let Some((case_key, want)) = lists.as_object().and_then(|keys| keys.iter().next()) else {
        return Ok(Outcome::Fail("redis_after names no key".to_string()));
    };
    let expected: Vec<String> =
        want["value"].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_string)).collect();
    if !intelmq_tests::service_available("Redis", REDIS) {
        eprintln!("  (redis case {} not replayed)", case.display());
        return Ok(Outcome::Pass);
    }
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let key = format!("{case_key}-conformance-{}-{nanos}", std::process::id());
    params.insert("redis_queue".to_string(), Value::String(key.clone()));
    params.insert("redis_server_ip".to_string(), Value::String("127.0.0.1".to_string()));
    params.insert("redis_server_port".to_string(), Value::from(6379));
    let mut bot = match (entry.build)(&params) {
        Ok(Bot::Output(bot)) => bot,
        Ok(_) => return Ok(Outcome::Fail(format!("module {} did not build an output", entry.module))),
        Err(e) => return Ok(Outcome::Fail(format!("build failed: {e}"))),
    };
    let mut state = MemoryState::default();
    let mut log = MemoryLog::default();
    let mut errors = Vec::new();
    for (i, input) in read_json(&case.join("input.json"))?.as_array().into_iter().flatten().enumerate() {
        let wire = serde_json::to_vec(input).map_err(|e| e.to_string())?;
        let msg = match Message::from_wire(h.clone(), &wire, Some(MessageKind::Event)) {
            Ok(msg) => msg,
            Err(e) => {
                errors.push(format!("input {i} cannot be read: {e}"));
                continue;
            }
        };
        let mut ctx = Context {
            bot_id: "conformance",
            harmonization: h,
            root: Path::new("/"),
            state: &mut state,
            log: &mut log,
            clock: &intelmq_node::bots::SystemClock,
        };
        if let Err(e) = bot.write(std::slice::from_ref(&msg), &mut ctx) {
            errors.push(format!("input {i}: {e}"));
        }
    }
    let got = take_list(db, &key)?;
    let mut problems = Vec::new();
    if got != expected {
        problems.push(format!(
            "  redis list {case_key} (db {db}) differs\n    expected: {expected:?}\n    got:      {got:?}"
        ));
    }
    let logged: Vec<&String> = log.lines.iter().filter(|(l, _)| *l >= Level::Error).map(|(_, m)| m).collect();
    let allowed = meta["allowed_error_count"].as_u64().unwrap_or(0) as usize;
    if errors.len() + logged.len() > allowed {
        problems.push(format!("  {} error(s), {allowed} allowed: {errors:?} {logged:?}", errors.len() + logged.len()));
    }
    Ok(if problems.is_empty() { Outcome::Pass } else { Outcome::Fail(problems.join("\n")) })
}
