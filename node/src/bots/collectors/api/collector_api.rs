//! `intelmq.bots.collectors.api.collector_api`: an HTTP push endpoint. The body of every
//! `POST /intelmq/push` becomes a report (`raw`). It listens on TCP `port` (all interfaces, as
//! IntelMQ) or, with `use_socket`, on the Unix socket `socket_path` (mode `socket_perms`, an octal
//! text, and group `socket_group` when set).
//!
//! The answer is `200 OK` only once the report is committed: the HTTP server thread queues each
//! request, `collect` turns what is queued into reports (waiting up to half a second for a first
//! one), and `committed` — called after the reports are safely in the store — answers the waiting
//! requests. A request whose report was never committed (the node crashed or stopped) gets no 2xx
//! (a 500, or the connection closes), so the client sends it again: at-least-once, where IntelMQ
//! answers before the report is sent on. Other paths get 404, other methods 405.
//!
//! `auth_token` (not an IntelMQ parameter; default null: no check): when set, a request must carry
//! `Authorization: Bearer <auth_token>`, else it gets 401 and nothing is collected.
//!
//! IntelMQ's API collector defaults its feed `name` to "API" and `provider` to "APICollector";
//! here the feed parameters are common to all collectors and have no per-bot defaults, so set them
//! in the bot's configuration. Collectors run every `rate_limit` seconds: give this one a short
//! `rate_limit` (IntelMQ calls it continuously).

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bots::outputs::tcp::support::de;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, CollectorBot, CollectorOutput, Context, Level, ParamError};
use crate::message::{AddOptions, Message};

/// How long `collect` waits for a first request.
const WAIT: Duration = Duration::from_millis(500);
/// At most this many requests become reports in one run.
const MAX_PER_RUN: usize = 10_000;
/// The largest body accepted (bytes).
const MAX_BODY: u64 = 256 * 1024 * 1024;

/// Parameters of the API collector (IntelMQ's names and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiCollectorParams {
    /// The TCP port; default 5000.
    #[serde(deserialize_with = "de::port")]
    pub port: u16,
    /// Listen on a Unix socket instead of TCP; default false.
    #[serde(deserialize_with = "de::bool")]
    pub use_socket: bool,
    /// The Unix socket; default "/tmp/imq_api_default_socket".
    #[serde(deserialize_with = "de::string")]
    pub socket_path: String,
    /// The socket's mode, an octal text; default "600".
    #[serde(deserialize_with = "de::string")]
    pub socket_perms: String,
    /// The socket's group (name or number); default "" (unchanged).
    #[serde(deserialize_with = "de::string")]
    pub socket_group: String,
    /// Required bearer token (not IntelMQ); default null (none).
    #[serde(deserialize_with = "de::opt_string")]
    pub auth_token: Option<String>,
}

impl Default for ApiCollectorParams {
    fn default() -> Self {
        ApiCollectorParams {
            port: 5000,
            use_socket: false,
            socket_path: "/tmp/imq_api_default_socket".to_string(),
            socket_perms: "600".to_string(),
            socket_group: String::new(),
            auth_token: None,
        }
    }
}

/// A pushed body and the request waiting for its answer.
struct Push {
    body: Vec<u8>,
    request: tiny_http::Request,
}

struct Server {
    pushes: Receiver<Push>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // The HTTP server (and its socket) is dropped when the thread ends.
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn respond(request: tiny_http::Request, code: u16, text: &str) {
    let _ = request.respond(tiny_http::Response::from_string(text).with_status_code(code));
}

fn serve(server: tiny_http::Server, tx: Sender<Push>, stop: Arc<AtomicBool>, token: Option<String>) {
    while !stop.load(Ordering::Acquire) {
        let mut request = match server.recv_timeout(Duration::from_millis(100)) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(_) => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        let path = request.url().split(['?', '#']).next().unwrap_or("").to_string();
        if path != "/intelmq/push" {
            respond(request, 404, "Not Found");
            continue;
        }
        if *request.method() != tiny_http::Method::Post {
            respond(request, 405, "Method Not Allowed");
            continue;
        }
        if let Some(token) = &token {
            let expected = format!("Bearer {token}");
            let ok = request
                .headers()
                .iter()
                .any(|h| h.field.equiv("Authorization") && h.value.as_str() == expected.as_str());
            if !ok {
                respond(request, 401, "Unauthorized");
                continue;
            }
        }
        let mut body = Vec::new();
        let read = request.as_reader().take(MAX_BODY + 1).read_to_end(&mut body);
        if read.is_err() {
            respond(request, 400, "Bad Request");
            continue;
        }
        if body.len() as u64 > MAX_BODY {
            respond(request, 413, "Payload Too Large");
            continue;
        }
        if let Err(mpsc::SendError(push)) = tx.send(Push { body, request }) {
            respond(push.request, 503, "Service Unavailable");
            return;
        }
    }
}

/// The gid of a group given by name (from /etc/group) or number.
fn group_id(group: &str) -> Option<u32> {
    if let Ok(gid) = group.parse::<u32>() {
        return Some(gid);
    }
    let text = std::fs::read_to_string("/etc/group").ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next() == Some(group)).then(|| f.nth(1).and_then(|g| g.parse().ok())).flatten()
    })
}

/// Receives HTTP pushes into reports.
pub struct ApiCollectorBot {
    params: ApiCollectorParams,
    perms: u32,
    server: Option<Server>,
    /// Requests to answer once the last run's reports are committed.
    pending: Vec<tiny_http::Request>,
}

impl BuildBot for ApiCollectorBot {
    type Params = ApiCollectorParams;

    fn build(params: ApiCollectorParams) -> Result<Self, ParamError> {
        let perms = u32::from_str_radix(params.socket_perms.trim(), 8)
            .map_err(|_| ParamError::new("socket_perms", format!("`{}` is not an octal mode", params.socket_perms)))?;
        if params.use_socket && params.socket_path.is_empty() {
            return Err(ParamError::new("socket_path", "no socket path given"));
        }
        if !params.socket_group.is_empty() && group_id(&params.socket_group).is_none() {
            return Err(ParamError::new("socket_group", format!("unknown group `{}`", params.socket_group)));
        }
        if params.auth_token.as_deref() == Some("") {
            return Err(ParamError::new(
                "auth_token",
                "an empty token would let anyone in; leave it null for no check",
            ));
        }
        Ok(ApiCollectorBot { params, perms, server: None, pending: Vec::new() })
    }
}

impl ApiCollectorBot {
    fn start_server(&mut self, ctx: &mut Context<'_>) -> Result<(), BotError> {
        if self.server.is_some() {
            return Ok(());
        }
        let (server, name) = if self.params.use_socket {
            let path = PathBuf::from(&self.params.socket_path);
            let name = path.display().to_string();
            // A socket file left by an earlier run.
            if std::fs::symlink_metadata(&path).is_ok() && std::os::unix::net::UnixStream::connect(&path).is_err() {
                let _ = std::fs::remove_file(&path);
            }
            let server = tiny_http::Server::http_unix(&path)
                .map_err(|e| BotError::Unavailable(format!("cannot listen on socket {name}: {e}")))?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(self.perms))
                .map_err(|e| BotError::Fatal(format!("cannot set the mode of socket {name}: {e}")))?;
            if let Some(gid) = Some(&self.params.socket_group).filter(|g| !g.is_empty()).and_then(|g| group_id(g)) {
                std::os::unix::fs::chown(&path, None, Some(gid))
                    .map_err(|e| BotError::Fatal(format!("cannot set the group of socket {name}: {e}")))?;
            }
            (server, name)
        } else {
            let name = format!("0.0.0.0:{}", self.params.port);
            let server = tiny_http::Server::http(("0.0.0.0", self.params.port))
                .map_err(|e| BotError::Unavailable(format!("cannot listen on {name}: {e}")))?;
            (server, name)
        };
        let (tx, pushes) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let (s, token) = (stop.clone(), self.params.auth_token.clone());
        let thread = std::thread::Builder::new()
            .name("api-collector".into())
            .spawn(move || serve(server, tx, s, token))
            .map_err(|e| BotError::Fatal(format!("cannot start the HTTP server thread: {e}")))?;
        ctx.log.log(Level::Info, &format!("Listening on {name}."));
        self.server = Some(Server { pushes, stop, thread: Some(thread) });
        Ok(())
    }
}

impl CollectorBot for ApiCollectorBot {
    fn collect(&mut self, ctx: &mut Context<'_>, out: &mut CollectorOutput) -> Result<(), BotError> {
        // Requests of a run that was never committed are dropped here (answered 500).
        self.pending.clear();
        self.start_server(ctx)?;
        let Some(server) = &self.server else {
            return Ok(());
        };
        let mut pushes = Vec::new();
        match server.pushes.recv_timeout(WAIT) {
            Ok(p) => pushes.push(p),
            Err(RecvTimeoutError::Timeout) => return Ok(()),
            Err(RecvTimeoutError::Disconnected) => {
                self.server = None;
                return Err(BotError::Unavailable("the HTTP server thread ended; restarting it".to_string()));
            }
        }
        while pushes.len() < MAX_PER_RUN {
            match server.pushes.try_recv() {
                Ok(p) => pushes.push(p),
                Err(_) => break,
            }
        }
        for push in pushes {
            let mut report = Message::new_report(ctx.harmonization.clone());
            if !push.body.is_empty() {
                let raw = base64::engine::general_purpose::STANDARD.encode(&push.body);
                report.add_with(
                    "raw",
                    Value::String(raw),
                    AddOptions { sanitize: false, overwrite: Some(true), raise_failure: true },
                )?;
            }
            out.send(report);
            self.pending.push(push.request);
        }
        Ok(())
    }

    fn committed(&mut self, _ctx: &mut Context<'_>) -> Result<(), BotError> {
        for request in self.pending.drain(..) {
            respond(request, 200, "");
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::sync::Arc as StdArc;

    use super::*;
    use crate::bots::collectors::test_support::harmonization;
    use crate::bots::{MemoryLog, MemoryState};
    use crate::message::Harmonization;

    fn run(bot: &mut ApiCollectorBot, h: &StdArc<Harmonization>, commit: bool) -> Vec<Message> {
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let mut ctx = Context::new("api", h, std::path::Path::new("/"), &mut state, &mut log);
        let mut out = CollectorOutput::default();
        bot.collect(&mut ctx, &mut out).unwrap();
        if commit {
            bot.committed(&mut ctx).unwrap();
        }
        out.reports
    }

    /// Sends a raw HTTP request in a thread; the answer's status line comes back on the channel.
    fn post(port: u16, path: &str, headers: &str, body: &str) -> mpsc::Receiver<String> {
        let (tx, rx) = mpsc::channel();
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n{body}",
            body.len()
        );
        std::thread::spawn(move || {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.write_all(req.as_bytes()).unwrap();
            let mut answer = String::new();
            let _ = s.read_to_string(&mut answer);
            let _ = tx.send(answer.lines().next().unwrap_or("").to_string());
        });
        rx
    }

    #[test]
    fn answers_200_only_after_the_commit_and_checks_the_token() {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let h = harmonization();
        let mut bot = ApiCollectorBot::build(
            serde_json::from_value(serde_json::json!({"port": port, "auth_token": "s3cret"})).unwrap(),
        )
        .unwrap();
        assert!(run(&mut bot, &h, true).is_empty());
        let pushed = post(port, "/intelmq/push", "Authorization: Bearer s3cret\r\n", "{\"source.ip\": \"192.0.2.1\"}");
        let refused = post(port, "/intelmq/push", "Authorization: Bearer wrong\r\n", "x");
        let lost = post(port, "/other", "", "x");
        assert!(refused.recv_timeout(Duration::from_secs(5)).unwrap().contains("401"));
        assert!(lost.recv_timeout(Duration::from_secs(5)).unwrap().contains("404"));
        let reports = run(&mut bot, &h, false);
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].raw_bytes().unwrap(), b"{\"source.ip\": \"192.0.2.1\"}");
        assert!(pushed.recv_timeout(Duration::from_millis(300)).is_err(), "no answer before the commit");
        bot.committed(&mut Context::new(
            "api",
            &h,
            std::path::Path::new("/"),
            &mut MemoryState::default(),
            &mut MemoryLog::default(),
        ))
        .unwrap();
        assert!(pushed.recv_timeout(Duration::from_secs(5)).unwrap().contains("200"));
    }

    #[test]
    fn an_uncommitted_push_gets_no_2xx_and_unix_sockets_work() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api.sock");
        let h = harmonization();
        let params =
            serde_json::json!({"use_socket": true, "socket_path": path.to_str().unwrap(), "socket_perms": "660"});
        let mut bot = ApiCollectorBot::build(serde_json::from_value(params).unwrap()).unwrap();
        run(&mut bot, &h, true);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o660);
        let (tx, rx) = mpsc::channel();
        let p = path.clone();
        std::thread::spawn(move || {
            let mut s = std::os::unix::net::UnixStream::connect(p).unwrap();
            s.write_all(b"POST /intelmq/push HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx")
                .unwrap();
            let mut answer = String::new();
            let _ = s.read_to_string(&mut answer);
            let _ = tx.send(answer);
        });
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(run(&mut bot, &h, false).len(), 1);
        drop(bot); // a crash before the commit
        let answer = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(!answer.starts_with("HTTP/1.1 2"), "{answer}");
    }

    #[test]
    fn parameters_are_checked() {
        let d = serde_json::to_value(ApiCollectorParams::default()).unwrap();
        assert_eq!(d["port"], serde_json::json!(5000));
        assert_eq!(d["socket_perms"], serde_json::json!("600"));
        let p = ApiCollectorParams { socket_perms: "9x".into(), ..Default::default() };
        assert_eq!(ApiCollectorBot::build(p).err().unwrap().key, "socket_perms");
    }
}
