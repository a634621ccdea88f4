//! [`Forwarder`]: moves the outbox of one remote queue to the broker. Reads a batch from the head
//! of `outbox:<queue>`, publishes it with the message ids `<node>/<incarnation>/<seq>`, and deletes
//! from the outbox exactly the messages the broker confirmed. A message whose confirm never came
//! stays and is published again later: the receiver drops the second copy by its id.

use std::sync::Arc;

use super::transport::{Outgoing, Transport};
use super::ClusterError;
use crate::store::Store;

/// Messages per publish batch.
pub const BATCH: usize = 1024;

/// The id of outbox message `seq` written by `incarnation` of `node`'s store.
pub fn message_id(node: &str, incarnation: u64, seq: u64) -> String {
    format!("{node}/{incarnation}/{seq}")
}

pub struct Forwarder<T: Transport> {
    store: Arc<Store>,
    node: String,
    /// The queue (its outbox here, its inbox on the owning node).
    queue: String,
    /// The broker queue carrying it.
    broker_queue: String,
    transport: T,
    declared: bool,
}

impl<T: Transport> Forwarder<T> {
    pub fn new(store: Arc<Store>, node: &str, queue: &str, broker_queue: &str, transport: T) -> Self {
        Forwarder {
            store,
            node: node.to_string(),
            queue: queue.to_string(),
            broker_queue: broker_queue.to_string(),
            transport,
            declared: false,
        }
    }

    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// Publishes one batch from the outbox; returns how many messages the broker confirmed (0:
    /// the outbox is empty). On an error the confirmed ones are deleted all the same.
    pub fn pump(&mut self) -> Result<usize, ClusterError> {
        let entries = self.store.outbox_read(&self.queue, BATCH)?;
        if entries.is_empty() {
            return Ok(0);
        }
        if !self.declared {
            self.transport.declare(&self.broker_queue)?;
            self.declared = true;
        }
        let ids: Vec<String> = entries.iter().map(|e| message_id(&self.node, e.incarnation, e.seq)).collect();
        let batch: Vec<Outgoing<'_>> =
            entries.iter().zip(&ids).map(|(e, id)| Outgoing { id, data: &e.data, seq: e.seq }).collect();
        let published = self.transport.publish(&self.broker_queue, &batch);
        // The outbox's head moves past what is deleted, so only the confirmed messages from the
        // head on go; one confirmed after an unconfirmed one is published again (and dropped by
        // the receiver).
        let done: Vec<u64> = entries
            .iter()
            .zip(&published.confirmed)
            .take_while(|(e, seq)| e.seq == **seq)
            .map(|(e, _)| e.seq)
            .collect();
        self.store.outbox_confirmed(&self.queue, &done)?;
        match published.failure {
            Some(e) => Err(e.into()),
            None => Ok(done.len()),
        }
    }

    /// Forgets the broker connection after an error.
    pub fn reset(&mut self) {
        self.transport.reset();
        self.declared = false;
    }
}
