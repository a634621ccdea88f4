//! Several nodes, one botnet: the data plane between nodes. Owns the forwarders and intakes of
//! cross-node queues; depends on `store` and `config`, never on `runtime` (the runtime hands in a
//! [`Waker`] for the consumers of the queues an intake fills).
//!
//! Design:
//! * A queue belongs to the node of the bot consuming it (`config::placement`). A bot sending to a
//!   queue another node owns does not know it: the store writes that put to `outbox:<queue>`
//!   instead of an inbox, in the same `WriteBatch` as the step's acknowledgement
//!   ([`Store::set_remote_queues`]). Nothing leaves a node before its own commit.
//! * One [`Forwarder`] thread per remote queue publishes the outbox to the broker queue
//!   `<queue_prefix><queue>` (a durable RabbitMQ quorum queue) with the message id
//!   `<node>/<incarnation>/<seq>`, and deletes a message from the outbox only once the broker
//!   confirmed it. An unconfirmed message is published again, so the broker may hold a message
//!   twice; never zero times.
//! * One [`Intake`] thread per queue this node owns and other nodes send to consumes the broker
//!   queue, commits each batch into the inbox together with the ids of its messages (state of
//!   [`intake::STATE_ID`], expiring after `broker.dedup_ttl_s`), and only then acknowledges the
//!   broker. A redelivery (after a crash or a lost connection) or a second publish finds its id
//!   and is dropped: exactly once across nodes, as inside a node.
//! * Backpressure: bots count a remote queue's outbox against `max_queue_length` like an inbox,
//!   so a collector pauses while the broker is away; an intake stops taking messages while its
//!   inbox is above the consuming bot's `max_queue_length` (they wait in the broker).
//! * Broker or link down: forwarders and intakes retry with a growing pause (0.1 s to 5 s) and log
//!   once per outage; the node's own bots go on, messages for other nodes pile up in the outboxes.
//! * The broker is reached through [`Transport`], so other brokers (NATS JetStream, Kafka) can
//!   follow without touching the rest.

mod amqp;
mod forwarder;
pub mod intake;
mod transport;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use amqp::AmqpTransport;
pub use forwarder::{message_id, Forwarder};
pub use intake::{Intake, Taken, Waker};
pub use transport::{Incoming, Outgoing, Published, Transport, TransportError};

use crate::config::Botnet;
use crate::store::{Store, StoreError};

/// Why a forwarder, an intake or the start of the cluster failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("broker: {0}")]
    Broker(#[from] TransportError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("cannot read the broker CA file {path}: {source}")]
    CaFile { path: std::path::PathBuf, source: std::io::Error },
}

/// Pause of an idle forwarder before it looks at its outbox again.
const IDLE: Duration = Duration::from_millis(5);
/// Pause of an intake whose inbox is full.
const FULL: Duration = Duration::from_millis(20);
/// The first and the longest pause after a broker error.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Expired message ids of the intakes are purged this often.
const PURGE_EVERY: Duration = Duration::from_secs(3600);
/// How long a stop waits for the threads before leaving them to the process exit.
const STOP_WAIT: Duration = Duration::from_secs(2);

/// The running forwarders and intakes of this node.
pub struct Cluster {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Cluster {
    /// Declares this node's remote queues to the store (before any bot runs), then starts a
    /// forwarder per remote queue and an intake per queue other nodes send to. `None` when no
    /// message crosses nodes.
    pub fn start(botnet: &Botnet, store: Arc<Store>, wake: Waker) -> Result<Option<Cluster>, ClusterError> {
        let placement = botnet.placement();
        store.set_remote_queues(placement.remote.clone().into_iter().collect())?;
        let Some(broker) = botnet.node.broker.as_ref().filter(|_| placement.crosses_nodes()) else {
            return Ok(None);
        };
        if let Err(e) = store.purge_expired(intake::STATE_ID) {
            tracing::warn!(error = %e, "purging expired message ids failed");
        }
        let ca_pem = match &broker.tls_ca_file {
            Some(p) => {
                let path = crate::bots::resolve_path(&botnet.root, p);
                Some(std::fs::read_to_string(&path).map_err(|source| ClusterError::CaFile { path, source })?)
            }
            None => None,
        };
        let node = botnet.node.node_id.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for (queue, owner) in &placement.remote {
            let transport = AmqpTransport::new(&broker.url, ca_pem.clone(), &format!("{node} forwarder {queue}"))?;
            let broker_queue = format!("{}{queue}", broker.queue_prefix);
            let mut f = Forwarder::new(store.clone(), &node, queue, &broker_queue, transport);
            tracing::info!(queue = %queue, owner = %owner, broker = %broker.display_url(), "forwarding a queue to its node");
            let stop = stop.clone();
            threads.push(spawn(&format!("fwd:{queue}"), move || {
                let mut retry = Retry::new("forwarder", f.queue().to_string());
                while !stop.load(Ordering::Acquire) {
                    match f.pump() {
                        Ok(n) => {
                            retry.ok();
                            if n == 0 {
                                std::thread::sleep(IDLE);
                            }
                        }
                        Err(e) => {
                            f.reset();
                            retry.failed(&e, &stop);
                        }
                    }
                }
            }));
        }
        for queue in &placement.intake {
            let transport = AmqpTransport::new(&broker.url, ca_pem.clone(), &format!("{node} intake {queue}"))?;
            let broker_queue = format!("{}{queue}", broker.queue_prefix);
            let watermark = botnet.consumers_of(queue).next().map_or(0, |b| b.common.max_queue_length);
            let ttl = Duration::from_secs(broker.dedup_ttl_s);
            let mut i = Intake::new(store.clone(), queue, &broker_queue, transport, wake.clone(), ttl, watermark);
            tracing::info!(queue = %queue, broker = %broker.display_url(), "taking in a queue from other nodes");
            let (stop, store) = (stop.clone(), store.clone());
            threads.push(spawn(&format!("intake:{queue}"), move || {
                let mut retry = Retry::new("intake", i.queue().to_string());
                let mut purged = Instant::now();
                while !stop.load(Ordering::Acquire) {
                    if i.full() {
                        std::thread::sleep(FULL);
                        continue;
                    }
                    match i.pump() {
                        Ok(_) => retry.ok(),
                        Err(e) => {
                            i.reset();
                            retry.failed(&e, &stop);
                        }
                    }
                    if purged.elapsed() >= PURGE_EVERY {
                        purged = Instant::now();
                        if let Err(e) = store.purge_expired(intake::STATE_ID) {
                            tracing::warn!(error = %e, "purging expired message ids failed");
                        }
                    }
                }
            }));
        }
        Ok(Some(Cluster { stop, threads }))
    }

    /// Stops the forwarders and intakes after their current batch. What they hold is safe either
    /// way (outbox entries stay until confirmed, broker messages until acknowledged).
    pub fn stop(self) {
        self.stop.store(true, Ordering::Release);
        let deadline = Instant::now() + STOP_WAIT;
        while Instant::now() < deadline && !self.threads.iter().all(JoinHandle::is_finished) {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    // A thread name is cut at 15 bytes by the OS anyway.
    let name: String = name.chars().take(15).collect();
    std::thread::Builder::new().name(name).spawn(f).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot start a cluster thread");
        std::thread::spawn(|| {})
    })
}

/// The pauses and the logging of one forwarder or intake across an outage.
struct Retry {
    what: &'static str,
    queue: String,
    failures: u32,
    since: Option<Instant>,
}

impl Retry {
    fn new(what: &'static str, queue: String) -> Self {
        Retry { what, queue, failures: 0, since: None }
    }

    fn ok(&mut self) {
        if let Some(since) = self.since.take() {
            let down_ms = u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX);
            tracing::info!(queue = %self.queue, down_ms, "{} reconnected to the broker", self.what);
        }
        self.failures = 0;
    }

    /// Logs the first failure of an outage and then every tenth, and pauses (0.1 s doubling to
    /// 5 s), returning early on a stop.
    fn failed(&mut self, e: &ClusterError, stop: &AtomicBool) {
        if self.since.is_none() {
            self.since = Some(Instant::now());
        }
        if self.failures.is_multiple_of(10) {
            tracing::warn!(queue = %self.queue, error = %e, attempt = self.failures + 1, "{} cannot reach the broker, retrying", self.what);
        }
        let pause = BACKOFF_MIN.saturating_mul(1 << self.failures.min(6)).min(BACKOFF_MAX);
        self.failures += 1;
        let until = Instant::now() + pause;
        while Instant::now() < until && !stop.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[cfg(test)]
mod tests;
