//! A long-lived streaming GET read line by line, shared by the HTTP stream collector and the
//! Shodan stream collector. The connection lives in the bot between runs: a reader thread owns the
//! response body and hands complete lines over a bounded channel; `poll` takes what has arrived
//! (waiting a short while for the first line) and returns. Errors are counted as IntelMQ's stream
//! collectors do: a broken or failed stream is logged and reconnected on the next run; only after
//! more than `max_errors` consecutive failures is the error returned (as `Unavailable`, so the
//! runtime backs off and the status says why).

use std::io::{BufRead, BufReader, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, TryRecvError};
use std::sync::Arc;
use std::time::Duration;

use super::mixin::{self, HttpClient};
use crate::bots::{BotError, Context, Level};

/// Lines held between runs before the reader waits (backpressure on the connection).
const CHANNEL_LINES: usize = 10_000;
/// Lines taken in one run at most.
const MAX_LINES_PER_RUN: usize = 10_000;

enum StreamEvent {
    Line(Vec<u8>),
    Failed(String),
    Ended,
}

/// An open stream: the reader thread and its channel.
struct OpenStream {
    rx: Receiver<StreamEvent>,
    stop: Arc<AtomicBool>,
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        // The reader stops after its current read (at most one read timeout).
        self.stop.store(true, Ordering::Release);
    }
}

fn spawn_reader(body: Box<dyn Read + Send>) -> OpenStream {
    let (tx, rx) = sync_channel(CHANNEL_LINES);
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(body);
        loop {
            if flag.load(Ordering::Acquire) {
                return;
            }
            let mut line = Vec::new();
            let event = match reader.read_until(b'\n', &mut line) {
                Ok(0) => StreamEvent::Ended,
                Ok(_) => StreamEvent::Line(line),
                Err(e) => StreamEvent::Failed(e.to_string()),
            };
            let last = !matches!(event, StreamEvent::Line(_));
            if tx.send(event).is_err() || last {
                return;
            }
        }
    });
    OpenStream { rx, stop }
}

/// A reconnecting line stream over HTTP.
pub struct LineStream {
    pub client: HttpClient,
    /// Consecutive failures tolerated silently (IntelMQ's `error_max_retries` default, 3).
    pub max_errors: u32,
    /// How long a run waits for the first line.
    pub wait: Duration,
    open: Option<OpenStream>,
    errors: u32,
}

impl LineStream {
    pub fn new(client: HttpClient) -> LineStream {
        LineStream { client, max_errors: 3, wait: Duration::from_millis(500), open: None, errors: 0 }
    }

    /// Whether a connection is open.
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// A failure: logged and reconnected next time, or returned once there were too many in a row.
    fn failed(&mut self, ctx: &mut Context<'_>, why: String) -> Option<BotError> {
        self.open = None;
        self.errors += 1;
        if self.errors > self.max_errors {
            Some(BotError::Unavailable(why))
        } else {
            ctx.log.log(Level::Info, &format!("Got exception {why:?}, reconnecting."));
            None
        }
    }

    /// Connects if needed, then takes the lines that have arrived (line endings removed). The
    /// error, if any, is for the caller to return once it has sent the lines.
    pub fn poll(
        &mut self,
        ctx: &mut Context<'_>,
        url: &str,
        headers: &[(&str, String)],
    ) -> (Vec<Vec<u8>>, Option<BotError>) {
        if self.open.is_none() {
            ctx.log.log(Level::Info, &format!("Connecting to stream at {url:?}."));
            match self.client.open_stream(url, headers) {
                Ok((status, body)) => {
                    if let Some(err) = mixin::status_error(status, url) {
                        return match err {
                            BotError::Unavailable(why) => (Vec::new(), self.failed(ctx, why)),
                            other => (Vec::new(), Some(other)),
                        };
                    }
                    self.open = Some(spawn_reader(body));
                }
                Err(BotError::Unavailable(why)) => return (Vec::new(), self.failed(ctx, why)),
                Err(other) => return (Vec::new(), Some(other)),
            }
        }
        let mut lines = Vec::new();
        let mut error = None;
        let mut first = true;
        while lines.len() < MAX_LINES_PER_RUN {
            let Some(open) = &self.open else { break };
            let event = if first {
                first = false;
                match open.rx.recv_timeout(self.wait) {
                    Ok(e) => e,
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => StreamEvent::Failed("stream reader stopped".into()),
                }
            } else {
                match open.rx.try_recv() {
                    Ok(e) => e,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => StreamEvent::Failed("stream reader stopped".into()),
                }
            };
            match event {
                StreamEvent::Line(mut line) => {
                    self.errors = 0;
                    while matches!(line.last(), Some(b'\n' | b'\r')) {
                        line.pop();
                    }
                    lines.push(line);
                }
                StreamEvent::Ended => {
                    ctx.log.log(Level::Info, "The stream ended, reconnecting on the next run.");
                    self.open = None;
                }
                StreamEvent::Failed(why) => {
                    error = self.failed(ctx, format!("stream from {url} broke: {why}"));
                }
            }
        }
        (lines, error)
    }
}

/// Trims ASCII whitespace at both ends (Python `bytes.strip()`).
pub fn strip(line: &[u8]) -> &[u8] {
    let start = line.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(line.len());
    let end = line.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |e| e + 1);
    &line[start..end.max(start)]
}
