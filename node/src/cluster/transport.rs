//! [`Transport`]: what the forwarders and intakes need of a broker, and nothing more. RabbitMQ
//! ([`super::amqp::AmqpTransport`]) implements it; a NATS JetStream or Kafka transport would
//! implement the same four calls. Blocking calls, one transport per thread; every call is bounded
//! in time, and after an error the caller calls [`Transport::reset`] and tries again later.

use std::time::Duration;

/// The broker could not do what was asked (unreachable, connection lost, a refusal, a timeout).
/// Always worth another try after a pause: nothing has been lost.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(pub String);

/// One message to publish.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// The message id (`<node>/<incarnation>/<seq>`), kept by the broker for the receiver.
    pub id: &'a str,
    pub data: &'a [u8],
    /// The outbox sequence number, returned in [`Published::confirmed`].
    pub seq: u64,
}

/// What a publish achieved.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Published {
    /// Outbox sequence numbers of the messages the broker confirmed (they are durable there).
    pub confirmed: Vec<u64>,
    /// Why the others were not confirmed, if some were not.
    pub failure: Option<TransportError>,
}

/// One message received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// The sender's message id; `None` for a message published by something else.
    pub id: Option<String>,
    pub data: Vec<u8>,
    /// Acknowledges this message and every earlier one received on the same connection.
    pub token: u64,
}

/// A connection to a broker holding one durable queue per cross-node queue.
pub trait Transport: Send {
    /// Makes sure the durable, replicated broker queue `queue` exists.
    fn declare(&mut self, queue: &str) -> Result<(), TransportError>;

    /// Publishes `batch` to `queue` in order and waits for the broker's confirms.
    fn publish(&mut self, queue: &str, batch: &[Outgoing<'_>]) -> Published;

    /// Up to `max` messages of `queue`, waiting at most `wait` for the first. They stay the
    /// broker's until acknowledged; unacknowledged ones are delivered again after a reconnect.
    fn receive(&mut self, queue: &str, max: usize, wait: Duration) -> Result<Vec<Incoming>, TransportError>;

    /// Acknowledges every received message up to `token`.
    fn ack(&mut self, token: u64) -> Result<(), TransportError>;

    /// Forgets the connection after an error; the next call connects again.
    fn reset(&mut self);
}
