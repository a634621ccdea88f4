//! [`ChunkCommitter`]: a parser's events committed chunk by chunk while it parses one report, so
//! a big report (a whole feed) flows on to the next bot before it is parsed to the end, and its
//! events never sit in memory all at once.
//!
//! Each chunk commits the events with a cursor in the parser's state: (report sequence number,
//! report size, events emitted so far). The report itself is acknowledged only by the step that
//! commits the last events and deletes the cursor. After a crash in between, the report is parsed
//! again and the events the cursor counts are skipped: parsing is deterministic, so they are the
//! same events, and each reaches the next queue exactly once.

use crate::bots::{BotError, EventSink};
use crate::message::Message;
use crate::store::{Counters, Step, Store};

use super::Router;

/// Events per chunk.
pub const CHUNK: usize = 2048;

/// The state key of the cursor (no parser uses keys starting with a NUL byte).
pub const CURSOR_KEY: &[u8] = b"\0runtime:parser-cursor";

pub struct ChunkCommitter<'a> {
    store: &'a Store,
    router: &'a Router,
    bot_id: &'a str,
    queues: &'a [String],
    load_balance: bool,
    lb_next: usize,
    report: (u64, u64),
    /// Events of this report emitted so far, by this attempt and earlier ones.
    emitted: u64,
    /// Events an earlier attempt committed: skipped this time.
    skip: u64,
    /// The bot's counters, updated with every chunk.
    pub counters: Counters,
}

fn encode_cursor(seq: u64, size: u64, emitted: u64) -> Vec<u8> {
    [seq, size, emitted].iter().flat_map(|v| v.to_be_bytes()).collect()
}

fn decode_cursor(v: &[u8]) -> Option<(u64, u64, u64)> {
    if v.len() != 24 {
        return None;
    }
    let n = |i: usize| u64::from_be_bytes(v[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
    Some((n(0), n(1), n(2)))
}

impl<'a> ChunkCommitter<'a> {
    /// For the report with sequence number `seq` and `size` bytes; reads the cursor an earlier
    /// attempt left.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: &'a Store,
        router: &'a Router,
        bot_id: &'a str,
        queues: &'a [String],
        load_balance: bool,
        lb_next: usize,
        seq: u64,
        size: u64,
        counters: Counters,
    ) -> Self {
        let skip = match store.state_get(bot_id, CURSOR_KEY) {
            Ok(Some(v)) => match decode_cursor(&v) {
                Some((s, z, emitted)) if s == seq && z == size => emitted,
                _ => 0,
            },
            _ => 0,
        };
        if skip > 0 {
            tracing::info!(bot_id, seq, skip, "resuming a report: skipping the events committed before");
        }
        ChunkCommitter {
            store,
            router,
            bot_id,
            queues,
            load_balance,
            lb_next,
            report: (seq, size),
            emitted: 0,
            skip,
            counters,
        }
    }

    /// The round-robin position for `load_balance`, to carry on with.
    pub fn lb_next(&self) -> usize {
        self.lb_next
    }

    /// Puts `events` (minus those to skip) into the destination queues; returns how many
    /// messages were put.
    pub fn route_into(&mut self, step: &mut Step, events: Vec<Message>) -> u64 {
        let mut sent = 0u64;
        for ev in events {
            self.emitted += 1;
            if self.emitted <= self.skip || self.queues.is_empty() {
                continue;
            }
            let data = ev.to_internal();
            if self.load_balance {
                let q = &self.queues[self.lb_next % self.queues.len()];
                self.lb_next = (self.lb_next + 1) % self.queues.len();
                step.put(q, data);
                sent += 1;
            } else {
                for q in self.queues {
                    step.put(q, data.clone());
                }
                sent += self.queues.len() as u64;
            }
        }
        self.counters.sent += sent;
        sent
    }

    /// The last step of the report: it acknowledges the report, so the cursor goes.
    pub fn finish(&self, step: &mut Step) {
        step.state_delete(self.bot_id, CURSOR_KEY);
    }
}

impl EventSink for ChunkCommitter<'_> {
    fn chunk(&mut self, events: Vec<Message>) -> Result<(), BotError> {
        let mut step = Step::new();
        let sent = self.route_into(&mut step, events);
        if sent == 0 {
            return Ok(());
        }
        let (seq, size) = self.report;
        step.state_put(self.bot_id, CURSOR_KEY, &encode_cursor(seq, size, self.emitted), 0);
        step.counters(self.bot_id, self.counters);
        self.store.commit(step).map_err(|e| BotError::Transient(format!("committing parsed events failed: {e}")))?;
        self.router.wake(self.queues);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Harmonization, MessageKind};
    use crate::store::Durability;

    #[test]
    fn cursor_roundtrip() {
        assert_eq!(decode_cursor(&encode_cursor(7, 1234, 4096)), Some((7, 1234, 4096)));
        assert_eq!(decode_cursor(b"short"), None);
    }

    fn events(n: usize) -> Vec<Message> {
        (0..n)
            .map(|i| {
                let mut m = Message::new(MessageKind::Event, Harmonization::builtin());
                m.add("source.port", serde_json::json!(i)).expect("port");
                m
            })
            .collect()
    }

    fn ports(store: &Store) -> Vec<u64> {
        let h = Harmonization::builtin();
        store
            .read("out", 1000)
            .expect("read")
            .iter()
            .map(|q| Message::decode(h.clone(), &q.data, None).expect("decode").get("source.port").cloned())
            .map(|v| v.and_then(|v| v.as_u64()).expect("port"))
            .collect()
    }

    #[test]
    fn a_resumed_report_skips_what_was_committed_and_the_last_step_clears_the_cursor() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), Durability::Never, &["out".to_string()]).expect("store");
        let router = Router::default();
        let queues = vec!["out".to_string()];
        // First attempt: two chunks committed, then the process "dies" before the last step.
        let mut first = ChunkCommitter::new(&store, &router, "parser", &queues, false, 0, 5, 100, Counters::default());
        first.chunk(events(3)).expect("chunk 1");
        let mut more = events(5);
        first.chunk(more.drain(3..).collect()).expect("chunk 2");
        assert_eq!(ports(&store), vec![0, 1, 2, 3, 4]);
        assert!(store.state_get("parser", CURSOR_KEY).expect("get").is_some());

        // Another report (other size) does not use that cursor.
        let other = ChunkCommitter::new(&store, &router, "parser", &queues, false, 0, 5, 99, Counters::default());
        assert_eq!(other.skip, 0);

        // Second attempt at the same report: the parser emits all 8 events again.
        let mut again = ChunkCommitter::new(&store, &router, "parser", &queues, false, 0, 5, 100, Counters::default());
        again.chunk(events(4)).expect("chunk");
        let mut last = Step::new();
        again.route_into(&mut last, events(8).drain(4..).collect());
        again.finish(&mut last);
        store.commit(last).expect("commit");
        assert_eq!(ports(&store), vec![0, 1, 2, 3, 4, 5, 6, 7], "each event once, in order");
        assert_eq!(again.counters.sent, 3);
        assert!(store.state_get("parser", CURSOR_KEY).expect("get").is_none(), "cursor cleared");
    }
}
