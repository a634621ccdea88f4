//! [`StepState`]: a bot's [`BotState`] for one step, reading through to the store and collecting
//! writes so they commit in the step's batch. Writes of a message that fails are rolled back.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::bots::BotState;
use crate::store::{Step, Store};

/// Fx-hashed: the keys are a bot's own (dedup hashes, file names), looked up for every message.
type Pending = rustc_hash::FxHashMap<Vec<u8>, Option<(Vec<u8>, u64)>>;

pub struct StepState<'s> {
    store: &'s Store,
    bot_id: &'s str,
    /// Writes of messages already done in this step.
    done: Pending,
    /// Writes of the message being processed.
    current: Pending,
}

impl<'s> StepState<'s> {
    pub fn new(store: &'s Store, bot_id: &'s str) -> Self {
        StepState { store, bot_id, done: Pending::default(), current: Pending::default() }
    }

    /// The current message succeeded: keep its writes.
    pub fn keep(&mut self) {
        self.done.extend(self.current.drain());
    }

    /// The current message failed: forget its writes.
    pub fn rollback(&mut self) {
        self.current.clear();
    }

    /// Moves the kept writes into the step.
    pub fn write_into(&mut self, step: &mut Step) {
        self.keep();
        for (k, v) in self.done.drain() {
            match v {
                Some((value, expires_at)) => step.state_put(self.bot_id, &k, &value, expires_at),
                None => step.state_delete(self.bot_id, &k),
            }
        }
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl BotState for StepState<'_> {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let pending = self.current.get(key).or_else(|| self.done.get(key));
        match pending {
            Some(Some((v, exp))) if *exp == 0 || *exp > now() => Some(v.clone()),
            Some(_) => None,
            None => match self.store.state_get(self.bot_id, key) {
                Ok(v) => v,
                Err(e) => {
                    tracing::error!(bot_id = self.bot_id, error = %e, "state read failed");
                    None
                }
            },
        }
    }

    fn put(&mut self, key: &[u8], value: &[u8], ttl: Option<Duration>) {
        let expires_at = ttl.map(|t| now() + t.as_secs().max(1)).unwrap_or(0);
        self.current.insert(key.to_vec(), Some((value.to_vec(), expires_at)));
    }

    fn delete(&mut self, key: &[u8]) {
        self.current.insert(key.to_vec(), None);
    }
}
