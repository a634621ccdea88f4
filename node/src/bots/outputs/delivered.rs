//! [`Delivered`]: the memory of events the far side already accepted in a write that failed as a
//! whole (a connection lost after the first mails of a batch, a refused item of a bulk request,
//! the broker gone before the last confirm). The runtime keeps the failed batch in the inbox and
//! offers it again, as one batch or one by one; the events found here are not delivered again.
//! They are forgotten only when a write holding them succeeds (the node acknowledges them then),
//! so a retry that fails too still skips them. Memory only: after a restart they are delivered
//! again (at-least-once to the outside).

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};

use crate::message::Message;

/// A fingerprint of a message: the hash of its wire text.
fn fingerprint(msg: &Message) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    msg.to_wire().hash(&mut h);
    h.finish()
}

/// Events accepted by the far side in failed writes, counted per copy.
#[derive(Debug, Default)]
pub struct Delivered {
    /// Fingerprint -> how many copies were accepted and not yet acknowledged.
    accepted: HashMap<u64, usize>,
    /// Recorded fingerprints, oldest first (entries of acknowledged events go when they come up).
    order: VecDeque<u64>,
}

impl Delivered {
    /// At most this many accepted copies are remembered (the oldest are forgotten).
    const CAP: usize = 100_000;

    /// Records an accepted event.
    pub fn record(&mut self, event: &Message) {
        let fp = fingerprint(event);
        *self.accepted.entry(fp).or_default() += 1;
        self.order.push_back(fp);
        while self.order.len() > Self::CAP {
            if let Some(old) = self.order.pop_front() {
                self.forget(old);
            }
        }
    }

    /// Records accepted events.
    pub fn record_all<'a>(&mut self, events: impl IntoIterator<Item = &'a Message>) {
        for event in events {
            self.record(event);
        }
    }

    /// For each event, whether it still has to be delivered (false for as many copies of an event
    /// as were accepted before). Asking forgets nothing.
    pub fn pending(&self, events: &[Message]) -> Vec<bool> {
        if self.accepted.is_empty() {
            return vec![true; events.len()];
        }
        let mut left: HashMap<u64, usize> = HashMap::new();
        events
            .iter()
            .map(|event| {
                let fp = fingerprint(event);
                let used = left.entry(fp).or_default();
                if *used < self.accepted.get(&fp).copied().unwrap_or(0) {
                    *used += 1;
                    false
                } else {
                    true
                }
            })
            .collect()
    }

    /// The events of `events` that still have to be delivered, in order.
    pub fn undelivered<'a>(&self, events: &'a [Message]) -> Vec<&'a Message> {
        events.iter().zip(self.pending(events)).filter(|(_, p)| *p).map(|(e, _)| e).collect()
    }

    /// A write of `events` succeeded: forgets one accepted copy of each.
    pub fn acknowledged(&mut self, events: &[Message]) {
        if self.accepted.is_empty() {
            return;
        }
        for event in events {
            self.forget(fingerprint(event));
        }
        if self.accepted.is_empty() {
            self.order.clear();
        }
    }

    fn forget(&mut self, fp: u64) {
        if let Some(n) = self.accepted.get_mut(&fp) {
            *n -= 1;
            if *n == 0 {
                self.accepted.remove(&fp);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.accepted.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::bots::outputs::test_support::{event, harmonization};

    #[test]
    fn delivered_events_are_skipped_until_a_write_holding_them_succeeds() {
        let h = harmonization();
        let a = event(&h, json!({"source.ip": "192.0.2.1"}));
        let b = event(&h, json!({"source.ip": "192.0.2.2"}));
        let mut d = Delivered::default();
        d.record(&a);
        let batch = [a.clone(), b.clone(), a.clone()];
        assert_eq!(d.pending(&batch), vec![false, true, true]);
        assert_eq!(d.pending(&batch), vec![false, true, true], "asking does not forget");
        assert_eq!(d.undelivered(&batch), vec![&b, &a]);
        d.acknowledged(std::slice::from_ref(&b));
        assert_eq!(d.pending(std::slice::from_ref(&a)), vec![false]);
        d.acknowledged(std::slice::from_ref(&a));
        assert!(d.is_empty());
        assert_eq!(d.pending(std::slice::from_ref(&a)), vec![true]);
    }

    #[test]
    fn a_retry_that_fails_again_still_skips_what_the_first_try_delivered() {
        let h = harmonization();
        let [a, b, c] = [1, 2, 3].map(|i| event(&h, json!({"source.ip": format!("192.0.2.{i}")})));
        let batch = [a.clone(), b.clone(), c.clone()];
        let mut d = Delivered::default();
        // First try: a accepted, then the far side goes away.
        d.record(&a);
        // Second try: a skipped, b accepted, the far side goes away again.
        assert_eq!(d.undelivered(&batch), vec![&b, &c]);
        d.record(&b);
        // Third try: only c is left; it succeeds and the batch is acknowledged.
        assert_eq!(d.undelivered(&batch), vec![&c]);
        d.acknowledged(&batch);
        assert!(d.is_empty());
    }

    #[test]
    fn the_oldest_copies_are_forgotten_beyond_the_cap() {
        let h = harmonization();
        let a = event(&h, json!({"source.ip": "192.0.2.1"}));
        let b = event(&h, json!({"source.ip": "192.0.2.2"}));
        let mut d = Delivered::default();
        d.record(&a);
        for _ in 0..Delivered::CAP {
            d.record(&b);
        }
        assert_eq!(d.pending(std::slice::from_ref(&a)), vec![true]);
        assert_eq!(d.pending(std::slice::from_ref(&b)), vec![false]);
    }
}
