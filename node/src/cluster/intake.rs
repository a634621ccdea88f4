//! [`Intake`]: takes the messages other nodes sent to one queue this node owns from the broker
//! into the queue's inbox. A batch is committed (messages and their ids, one write) before the
//! broker is acknowledged, so a crash or a lost connection in between makes the broker deliver it
//! again; the ids remembered in the state of [`STATE_ID`] (with an expiry) turn such a redelivery,
//! or a second publish of the same message, into nothing.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::transport::Transport;
use super::ClusterError;
use crate::store::{Step, Store};

/// The owner of the intakes' state (message ids seen): not a bot id, which cannot hold `_`.
pub const STATE_ID: &str = "_intake";
/// Messages per commit at most.
pub const BATCH: usize = 1024;
/// How long a receive waits for a first message.
const WAIT: Duration = Duration::from_millis(200);

/// Wakes the consumers of the given queues after a commit.
pub type Waker = Arc<dyn Fn(&[String]) + Send + Sync>;

/// The state key remembering message `id` of `queue`.
fn seen_key(queue: &str, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(queue.len() + 1 + id.len());
    k.extend_from_slice(queue.as_bytes());
    k.push(0);
    k.extend_from_slice(id.as_bytes());
    k
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// What one [`Intake::pump`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Taken {
    /// New messages put into the inbox.
    pub fresh: usize,
    /// Messages seen before (a redelivery or a second publish), acknowledged and dropped.
    pub duplicates: usize,
}

pub struct Intake<T: Transport> {
    store: Arc<Store>,
    queue: String,
    broker_queue: String,
    transport: T,
    wake: Waker,
    /// Seconds a message id is remembered.
    ttl: u64,
    /// The inbox's high watermark: no intake while it holds this many (0: none).
    high_watermark: u64,
    declared: bool,
    warned_without_id: bool,
}

impl<T: Transport> Intake<T> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<Store>,
        queue: &str,
        broker_queue: &str,
        transport: T,
        wake: Waker,
        ttl: Duration,
        high_watermark: u64,
    ) -> Self {
        Intake {
            store,
            queue: queue.to_string(),
            broker_queue: broker_queue.to_string(),
            transport,
            wake,
            ttl: ttl.as_secs().max(1),
            high_watermark,
            declared: false,
            warned_without_id: false,
        }
    }

    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// True while the inbox is above its high watermark (the messages wait in the broker).
    pub fn full(&self) -> bool {
        self.high_watermark > 0 && self.store.queue_len(&self.queue) >= self.high_watermark
    }

    /// Receives one batch, commits it, then acknowledges it to the broker.
    pub fn pump(&mut self) -> Result<Taken, ClusterError> {
        if !self.declared {
            self.transport.declare(&self.broker_queue)?;
            self.declared = true;
        }
        let got = self.transport.receive(&self.broker_queue, BATCH, WAIT)?;
        let Some(last) = got.last().map(|m| m.token) else {
            return Ok(Taken::default());
        };
        let mut step = Step::new();
        let mut taken = Taken::default();
        let mut in_batch: HashSet<&str> = HashSet::new();
        let expires_at = now_secs() + self.ttl;
        for m in &got {
            match &m.id {
                Some(id) => {
                    let key = seen_key(&self.queue, id);
                    if !in_batch.insert(id) || self.store.state_get(STATE_ID, &key)?.is_some() {
                        taken.duplicates += 1;
                        continue;
                    }
                    step.state_put(STATE_ID, &key, b"", expires_at);
                }
                None if !self.warned_without_id => {
                    self.warned_without_id = true;
                    tracing::warn!(queue = %self.queue, "a message without id arrived from the broker: taken without deduplication");
                }
                None => {}
            }
            step.put(&self.queue, m.data.clone());
            taken.fresh += 1;
        }
        self.store.commit(step)?;
        if taken.duplicates > 0 {
            tracing::info!(queue = %self.queue, duplicates = taken.duplicates, "dropped messages taken in before");
        }
        if taken.fresh > 0 {
            (self.wake)(std::slice::from_ref(&self.queue));
        }
        self.transport.ack(last)?;
        Ok(taken)
    }

    /// Forgets the broker connection after an error (unacknowledged messages come again).
    pub fn reset(&mut self) {
        self.transport.reset();
        self.declared = false;
    }
}
