//! Replay of the output cases of the `outputs-net` group (files, touch, bro, rpz, blackhole, SMTP,
//! templated SMTP, REST API) against real far ends this harness owns: the case's `before` files in
//! a scratch directory, an SMTP listener on loopback that records the envelope and the mail, an
//! HTTP listener that answers as the case's recorded mock did. The bot is built, started and given
//! the case's input; its effects are compared with `expected_effects.json`: file contents (the
//! rpz header's time stamp masked, the recording clock used), directory contents (names are
//! generated), modification times, the mail's envelope, headers and parts (the MIME boundary is
//! random), the HTTP requests (method, body, Content-Type and Authorization).

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{mpsc, Arc};
use std::time::{Duration, SystemTime};

use base64::Engine;
use intelmq_node::bots::{registry, Bot, Context, FixedClock, Level, MemoryLog, MemoryState, SystemClock};
use intelmq_node::message::{Harmonization, Message, MessageKind};
use serde_json::Value;

use super::{read_json, Outcome, HARNESS_KEYS};

/// The modules this replay handles.
pub const MODULES: &[&str] = &[
    "intelmq.bots.outputs.blackhole.output",
    "intelmq.bots.outputs.bro_file.output",
    "intelmq.bots.outputs.files.output",
    "intelmq.bots.outputs.restapi.output",
    "intelmq.bots.outputs.rpz_file.output",
    "intelmq.bots.outputs.smtp.output",
    "intelmq.bots.outputs.templated_smtp.output",
    "intelmq.bots.outputs.touch.output",
];

/// A mail as the test SMTP listener got it.
#[derive(Debug)]
struct Received {
    from: String,
    to: Vec<String>,
    data: String,
}

/// An SMTP listener on loopback: every mail of every connection goes to the channel.
fn smtp_listener() -> (u16, mpsc::Receiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind smtp");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let _ = smtp_session(stream, &tx);
            });
        }
    });
    (port, rx)
}

fn smtp_session(stream: TcpStream, tx: &mpsc::Sender<Received>) -> std::io::Result<()> {
    let mut w = stream.try_clone()?;
    let mut r = BufReader::new(stream);
    w.write_all(b"220 conformance ESMTP\r\n")?;
    let (mut from, mut to) = (String::new(), Vec::new());
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let line = line.trim_end().to_string();
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            w.write_all(b"250-conformance\r\n250 8BITMIME\r\n")?;
        } else if upper.starts_with("MAIL FROM:") {
            from = line[10..].trim().trim_matches(['<', '>']).to_string();
            w.write_all(b"250 ok\r\n")?;
        } else if upper.starts_with("RCPT TO:") {
            to.push(line[8..].trim().trim_matches(['<', '>']).to_string());
            w.write_all(b"250 ok\r\n")?;
        } else if upper == "DATA" {
            w.write_all(b"354 go ahead\r\n")?;
            let mut data = String::new();
            loop {
                let mut l = String::new();
                if r.read_line(&mut l)? == 0 {
                    return Ok(());
                }
                if l == ".\r\n" {
                    break;
                }
                data.push_str(l.strip_prefix('.').unwrap_or(&l));
            }
            w.write_all(b"250 queued\r\n")?;
            let _ = tx.send(Received { from: from.clone(), to: std::mem::take(&mut to), data });
        } else if upper == "QUIT" {
            w.write_all(b"221 bye\r\n")?;
            return Ok(());
        } else {
            w.write_all(b"250 ok\r\n")?;
        }
    }
}

/// A request as the test HTTP listener got it.
#[derive(Debug)]
struct HttpRequest {
    method: String,
    headers: Vec<(String, String)>,
    body: String,
}

/// An HTTP listener answering every request with `status`.
fn http_listener(status: u16) -> (u16, mpsc::Receiver<HttpRequest>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind http");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let Ok(clone) = stream.try_clone() else { continue };
            let mut r = BufReader::new(clone);
            let mut first = String::new();
            if r.read_line(&mut first).is_err() {
                continue;
            }
            let mut headers = Vec::new();
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some((k, v)) = line.split_once(':') {
                    if k.eq_ignore_ascii_case("content-length") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                    headers.push((k.trim().to_string(), v.trim().to_string()));
                }
            }
            let mut body = vec![0u8; len];
            let _ = r.read_exact(&mut body);
            let mut w = stream;
            let _ = write!(w, "HTTP/1.1 {status} Status\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let method = first.split_whitespace().next().unwrap_or("").to_string();
            let _ = tx.send(HttpRequest { method, headers, body: String::from_utf8_lossy(&body).into_owned() });
        }
    });
    (port, rx)
}

/// A parsed MIME entity: headers (unfolded) and body ("\n" line ends).
struct Entity {
    headers: Vec<(String, String)>,
    body: String,
}

fn parse_entity(text: &str) -> Entity {
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = headers.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((k, v)) = line.split_once(':') {
            headers.push((k.to_string(), v.trim().to_string()));
        }
    }
    Entity { headers, body: body.to_string() }
}

/// The parts of a multipart body.
fn parts(body: &str, boundary: &str) -> Vec<String> {
    let (open, close) = (format!("--{boundary}"), format!("--{boundary}--"));
    let mut out = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in body.split('\n') {
        if line == open || line == close {
            if let Some(lines) = current.take() {
                out.push(lines.join("\n"));
            }
            if line == close {
                break;
            }
            current = Some(Vec::new());
        } else if let Some(lines) = current.as_mut() {
            lines.push(line);
        }
    }
    out
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// Compares a received mail with the case's `email` effect.
fn check_mail(got: &Received, want: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let kwargs = &want["send_kwargs"];
    if kwargs["from_addr"].as_str() != Some(got.from.as_str()) {
        problems.push(format!("  envelope sender: expected {}, got {:?}", kwargs["from_addr"], got.from));
    }
    let want_to: Vec<&str> = kwargs["to_addrs"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    if want_to != got.to {
        problems.push(format!("  envelope recipients: expected {want_to:?}, got {:?}", got.to));
    }
    let data = got.data.replace("\r\n", "\n");
    let top = parse_entity(&data);
    let strip_boundary = |h: &[(String, String)]| -> Vec<(String, String)> {
        h.iter()
            .map(|(k, v)| {
                if k.eq_ignore_ascii_case("Content-Type") && v.starts_with("multipart/") {
                    (k.clone(), v.split(';').next().unwrap_or("").to_string())
                } else {
                    (k.clone(), v.clone())
                }
            })
            .collect()
    };
    let pairs = |v: &Value| -> Vec<(String, String)> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| Some((p[0].as_str()?.to_string(), p[1].as_str()?.to_string())))
            .collect()
    };
    let message = &want["message"];
    let want_top = pairs(&message["headers"]);
    let got_top = strip_boundary(&top.headers);
    if want_top != got_top {
        problems.push(format!("  mail headers differ\n    expected: {want_top:?}\n    got:      {got_top:?}"));
    }
    let boundary = header(&top.headers, "Content-Type")
        .and_then(|ct| ct.split("boundary=").nth(1))
        .map(|b| b.trim_matches('"').to_string())
        .unwrap_or_default();
    let got_parts: Vec<Entity> = parts(&top.body, &boundary).iter().map(|p| parse_entity(p)).collect();
    let want_parts = message["parts"].as_array().cloned().unwrap_or_default();
    if want_parts.len() != got_parts.len() {
        problems.push(format!("  expected {} part(s), got {}", want_parts.len(), got_parts.len()));
        return problems;
    }
    for (i, (w, g)) in want_parts.iter().zip(&got_parts).enumerate() {
        let want_headers = pairs(&w["headers"]);
        if want_headers != g.headers {
            problems.push(format!(
                "  part {i} headers differ\n    expected: {want_headers:?}\n    got:      {:?}",
                g.headers
            ));
        }
        let base64 = header(&g.headers, "Content-Transfer-Encoding") == Some("base64");
        let decoded = if base64 {
            let compact: String = g.body.chars().filter(|c| !c.is_whitespace()).collect();
            base64::engine::general_purpose::STANDARD
                .decode(compact)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_else(|e| format!("<undecodable: {e}>"))
        } else {
            g.body.clone()
        };
        if w["payload"].as_str() != Some(g.body.as_str()) {
            problems.push(format!(
                "  part {i} payload differs\n    expected: {:?}\n    got:      {:?}",
                w["payload"], g.body
            ));
        }
        if w["payload_decoded"].as_str() != Some(decoded.as_str()) {
            problems.push(format!(
                "  part {i} decoded payload differs\n    expected: {:?}\n    got:      {decoded:?}",
                w["payload_decoded"]
            ));
        }
    }
    problems
}

/// Compares a recorded request with the one the bot made.
fn check_request(got: &HttpRequest, want: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    if want["method"].as_str() != Some(got.method.as_str()) {
        problems.push(format!("  method: expected {}, got {}", want["method"], got.method));
    }
    if want["body"].as_str() != Some(got.body.as_str()) {
        problems.push(format!("  body: expected {}, got {:?}", want["body"], got.body));
    }
    for name in ["Content-Type", "Authorization"] {
        let expected = want["headers"][name].as_str();
        let have = header(&got.headers, name);
        if expected != have {
            problems.push(format!("  header {name}: expected {expected:?}, got {have:?}"));
        }
    }
    problems
}

/// Masks the time stamps of an rpz header (the serial and "Last updated").
fn mask_rpz(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.starts_with("; Last updated: ") {
                "; Last updated: <time> (UTC)".to_string()
            } else if l.starts_with("@ SOA ") {
                let mut f: Vec<&str> = l.split(' ').collect();
                if f.len() > 4 {
                    f[4] = "<serial>";
                }
                f.join(" ")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn list_dir(path: &Path) -> Result<Vec<String>, String> {
    let mut got: Vec<String> = fs::read_dir(path)
        .map_err(|e| format!("cannot list {}: {e}", path.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| fs::read_to_string(e.path()).ok())
        .collect();
    got.sort();
    Ok(got)
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
    let scratch = tempfile::tempdir().map_err(|e| format!("cannot create a temp dir: {e}"))?;
    let files: Vec<Value> = effects["files"].as_array().cloned().unwrap_or_default();
    let old = SystemTime::now() - Duration::from_secs(3600);
    for file in &files {
        let (Some(param), Some(name)) = (file["parameter"].as_str(), file["path"].as_str()) else { continue };
        let abs = scratch.path().join(name);
        match file["before"]["kind"].as_str() {
            Some("file") => {
                fs::write(&abs, file["before"]["content"].as_str().unwrap_or_default()).map_err(|e| e.to_string())?;
                let f = fs::File::options().write(true).open(&abs).map_err(|e| e.to_string())?;
                f.set_modified(old).map_err(|e| e.to_string())?;
            }
            Some("dir") => fs::create_dir_all(&abs).map_err(|e| e.to_string())?,
            _ => {}
        }
        let abs_text = abs.to_string_lossy().into_owned();
        for value in params.values_mut() {
            if value.as_str() == Some(name) {
                *value = Value::String(abs_text.clone());
            }
        }
        let _ = param;
    }
    // Far ends.
    let mail = effects.get("email").filter(|v| !v.is_null());
    let mut smtp = None;
    if mail.is_some() {
        let (port, rx) = smtp_listener();
        params.insert("smtp_host".into(), Value::String("127.0.0.1".into()));
        params.insert("smtp_port".into(), Value::from(port));
        smtp = Some(rx);
    }
    let mocks = if meta.get("http_mocks").is_some_and(|m| !m.is_null()) {
        Some(read_json(&case.join("http_mocks.json"))?)
    } else {
        None
    };
    let mut http = None;
    if let Some(mocks) = &mocks {
        let status = mocks["registered"][0]["status_code"].as_u64().unwrap_or(200) as u16;
        let (port, rx) = http_listener(status);
        params.insert("host".into(), Value::String(format!("http://127.0.0.1:{port}/")));
        http = Some(rx);
    }
    let clock = meta["recorded_at"].as_str().and_then(FixedClock::parse);
    let clock: &dyn intelmq_node::bots::Clock = match &clock {
        Some(c) => c,
        None => &SystemClock,
    };

    let mut state = MemoryState::default();
    let mut log = MemoryLog::default();
    let mut errors = Vec::new();
    let built = (entry.build)(&params);
    let expects_exception = meta.get("expects_exception").is_some_and(|e| !e.is_null());
    let mut bot = match built {
        Ok(Bot::Output(bot)) => bot,
        Ok(_) => return Ok(Outcome::Fail(format!("module {} did not build an output", entry.module))),
        Err(e) if expects_exception => {
            let _ = e;
            return Ok(Outcome::Pass);
        }
        Err(e) => return Ok(Outcome::Fail(format!("build failed: {e}"))),
    };
    {
        let mut ctx = Context::new("conformance", h, scratch.path(), &mut state, &mut log);
        ctx.clock = clock;
        if let Err(e) = bot.start(&mut ctx) {
            return Ok(if expects_exception { Outcome::Pass } else { Outcome::Fail(format!("start failed: {e}")) });
        }
    }
    if expects_exception {
        return Ok(Outcome::Fail("expected the bot to fail at start, but it started".to_string()));
    }
    for (i, input) in read_json(&case.join("input.json"))?.as_array().into_iter().flatten().enumerate() {
        let wire = serde_json::to_vec(input).map_err(|e| e.to_string())?;
        let msg = match Message::from_wire(h.clone(), &wire, Some(MessageKind::Event)) {
            Ok(msg) => msg,
            Err(e) => {
                errors.push(format!("input {i} cannot be read: {e}"));
                continue;
            }
        };
        let mut ctx = Context::new("conformance", h, scratch.path(), &mut state, &mut log);
        ctx.clock = clock;
        if let Err(e) = bot.write(std::slice::from_ref(&msg), &mut ctx) {
            errors.push(format!("input {i}: {e}"));
        }
    }
    let mut problems = Vec::new();
    for file in &files {
        let Some(name) = file["path"].as_str() else { continue };
        let abs = scratch.path().join(name);
        let after = &file["after"];
        match after["kind"].as_str() {
            Some("file") => {
                let want = after["content"].as_str().unwrap_or_default();
                match fs::read_to_string(&abs) {
                    Ok(got) => {
                        let (want, got) = if entry.module.contains("rpz_file") {
                            (mask_rpz(want), mask_rpz(&got))
                        } else {
                            (want.to_string(), got)
                        };
                        if want != got {
                            problems.push(format!(
                                "  {name}: content differs\n    expected: {want:?}\n    got:      {got:?}"
                            ));
                        }
                    }
                    Err(e) => problems.push(format!("  {name}: cannot read: {e}")),
                }
                if let Some(changed) = file["mtime_changed"].as_bool() {
                    let mtime = fs::metadata(&abs).and_then(|m| m.modified()).map_err(|e| e.to_string())?;
                    let moved = mtime > old + Duration::from_secs(1);
                    if moved != changed {
                        problems.push(format!("  {name}: modification time changed: expected {changed}, got {moved}"));
                    }
                }
            }
            Some("dir") => {
                let mut want: Vec<String> = after["files"]
                    .as_object()
                    .or_else(|| after["content"].as_object())
                    .into_iter()
                    .flatten()
                    .map(|(_, c)| c.as_str().unwrap_or_default().to_string())
                    .collect();
                want.sort();
                let got = list_dir(&abs)?;
                if want != got {
                    problems.push(format!(
                        "  {name}: directory contents differ\n    expected: {want:?}\n    got:      {got:?}"
                    ));
                }
            }
            Some("absent") if abs.exists() => problems.push(format!("  {name}: expected absent, but it exists")),
            _ => {}
        }
    }
    if let (Some(want), Some(rx)) = (mail, smtp) {
        match rx.recv_timeout(Duration::from_secs(5)) {
            Ok(got) => problems.extend(check_mail(&got, want)),
            Err(_) => problems.push("  no mail reached the SMTP listener".to_string()),
        }
    }
    if let (Some(mocks), Some(rx)) = (&mocks, http) {
        for (i, want) in mocks["requests_made"].as_array().into_iter().flatten().enumerate() {
            match rx.recv_timeout(Duration::from_secs(5)) {
                Ok(got) => problems.extend(check_request(&got, want).into_iter().map(|p| format!("  request {i}:{p}"))),
                Err(_) => problems.push(format!("  request {i} never reached the HTTP listener")),
            }
        }
    }
    let logged_errors: BTreeMap<usize, &String> =
        log.lines.iter().filter(|(l, _)| *l >= Level::Error).map(|(_, m)| m).enumerate().collect();
    let allowed = meta["allowed_error_count"].as_u64().unwrap_or(0) as usize;
    if errors.len() + logged_errors.len() > allowed {
        problems.push(format!(
            "  {} error(s), {allowed} allowed: {errors:?} {:?}",
            errors.len() + logged_errors.len(),
            logged_errors.values().collect::<Vec<_>>()
        ));
    }
    Ok(if problems.is_empty() { Outcome::Pass } else { Outcome::Fail(problems.join("\n")) })
}
