//! [`AmqpTransport`]: the [`Transport`] over RabbitMQ (AMQP 0-9-1, `lapin`). Broker queues are
//! durable quorum queues (`x-queue-type: quorum`: replicated, and a message survives a broker
//! restart once confirmed); publishes are persistent, `mandatory` (a message no queue takes comes
//! back and counts as not confirmed) and wait for publisher confirms; the receiver consumes with
//! manual acknowledgements and a bounded prefetch. A private current-thread tokio runtime drives
//! lapin, so the callers stay synchronous.

use std::time::Duration;

use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    QueueDeclareOptions,
};
use lapin::publisher_confirm::Confirmation;
use lapin::tcp::OwnedTLSConfig;
use lapin::types::{AMQPValue, FieldTable};
use lapin::uri::AMQPUri;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer};
use tokio_stream::StreamExt as _;

use super::transport::{Incoming, Outgoing, Published, Transport, TransportError};

/// Bound of a connect and of every broker call but a publish.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound of a publish batch and its confirms.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(30);
/// Seconds between heartbeats unless the url says otherwise: a silent broker is noticed.
const HEARTBEAT_S: u16 = 10;
/// Unacknowledged deliveries the broker sends ahead.
const PREFETCH: u16 = 2048;
/// After the first delivery, how long a receive waits for more to fill its batch.
const LINGER: Duration = Duration::from_millis(2);
/// `delivery_mode` of a persistent message.
const PERSISTENT: u8 = 2;

struct Open {
    connection: Connection,
    channel: Channel,
    /// The consumer of the queue this transport receives from, once it receives.
    consumer: Option<Consumer>,
}

/// A connection to RabbitMQ with one channel, opened on first use and again after a reset.
pub struct AmqpTransport {
    uri: AMQPUri,
    /// PEM CA certificates for `amqps://` (`None`: the system's roots).
    ca_pem: Option<String>,
    /// Named in the broker's connection list.
    name: String,
    runtime: Option<tokio::runtime::Runtime>,
    open: Option<Open>,
}

fn err(what: &str, e: impl std::fmt::Display) -> TransportError {
    TransportError(format!("{what}: {e}"))
}

impl AmqpTransport {
    /// For the broker at `url` (`amqp://` or `amqps://`); `ca_pem`: the CA certificates of
    /// `broker.tls_ca_file`. Connects on first use.
    pub fn new(url: &str, ca_pem: Option<String>, name: &str) -> Result<AmqpTransport, TransportError> {
        let mut uri: AMQPUri = url.parse().map_err(|e| err("invalid broker url", e))?;
        if uri.query.heartbeat.is_none() {
            uri.query.heartbeat = Some(HEARTBEAT_S);
        }
        if uri.query.connection_timeout.is_none() {
            uri.query.connection_timeout = Some(u64::try_from(CALL_TIMEOUT.as_millis()).unwrap_or(u64::MAX));
        }
        Ok(AmqpTransport { uri, ca_pem, name: name.to_string(), runtime: None, open: None })
    }

    fn runtime(&mut self) -> Result<&tokio::runtime::Runtime, TransportError> {
        if self.runtime.is_none() {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| err("cannot start the broker runtime", e))?;
            self.runtime = Some(rt);
        }
        self.runtime.as_ref().ok_or_else(|| TransportError("the broker runtime is not running".into()))
    }

    /// Runs `fut` on the private runtime within `limit`.
    fn block<T>(
        &mut self,
        what: &str,
        limit: Duration,
        fut: impl std::future::Future<Output = Result<T, TransportError>>,
    ) -> Result<T, TransportError> {
        self.runtime()?
            .block_on(async { tokio::time::timeout(limit, fut).await })
            .unwrap_or_else(|_| Err(TransportError(format!("{what}: no answer within {limit:?}"))))
    }

    /// The open connection, connecting first when there is none (or it broke).
    fn ensure(&mut self) -> Result<&mut Open, TransportError> {
        let alive =
            self.open.as_ref().is_some_and(|o| o.connection.status().connected() && o.channel.status().connected());
        if !alive {
            self.reset();
            let tls = OwnedTLSConfig { identity: None, cert_chain: self.ca_pem.clone() };
            let (uri, name) = (self.uri.clone(), self.name.clone());
            let open = self.block("cannot connect to the broker", CALL_TIMEOUT, async move {
                let props = ConnectionProperties::default().with_connection_name(name.into());
                let connection = Connection::connect_uri_with_config(uri, props, tls)
                    .await
                    .map_err(|e| err("cannot connect to the broker", e))?;
                let channel = connection.create_channel().await.map_err(|e| err("cannot open a channel", e))?;
                channel
                    .confirm_select(ConfirmSelectOptions::default())
                    .await
                    .map_err(|e| err("cannot turn on publisher confirms", e))?;
                channel
                    .basic_qos(PREFETCH, BasicQosOptions::default())
                    .await
                    .map_err(|e| err("cannot set the prefetch", e))?;
                Ok(Open { connection, channel, consumer: None })
            })?;
            self.open = Some(open);
        }
        self.open.as_mut().ok_or_else(|| TransportError("not connected".into()))
    }
}

/// The arguments of every broker queue: a quorum queue.
fn queue_arguments() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
    args
}

impl Transport for AmqpTransport {
    fn declare(&mut self, queue: &str) -> Result<(), TransportError> {
        let channel = self.ensure()?.channel.clone();
        let options = QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() };
        self.block("cannot declare the broker queue", CALL_TIMEOUT, async move {
            channel
                .queue_declare(queue, options, queue_arguments())
                .await
                .map(|_| ())
                .map_err(|e| err(&format!("cannot declare broker queue `{queue}`"), e))
        })
    }

    fn publish(&mut self, queue: &str, batch: &[Outgoing<'_>]) -> Published {
        let channel = match self.ensure() {
            Ok(open) => open.channel.clone(),
            Err(e) => return Published { confirmed: Vec::new(), failure: Some(e) },
        };
        let mut published = Published::default();
        let outcome = self.block("publishing to the broker", PUBLISH_TIMEOUT, async {
            let options = BasicPublishOptions { mandatory: true, ..BasicPublishOptions::default() };
            let mut pending = Vec::with_capacity(batch.len());
            let mut failure = None;
            for m in batch {
                let props = BasicProperties::default()
                    .with_message_id(m.id.into())
                    .with_delivery_mode(PERSISTENT)
                    .with_app_id("intelmq-rs".into());
                match channel.basic_publish("", queue, options, m.data, props).await {
                    Ok(confirm) => pending.push((m.seq, confirm)),
                    Err(e) => {
                        failure = Some(err("cannot publish", e));
                        break;
                    }
                }
            }
            for (seq, confirm) in pending {
                match confirm.await {
                    Ok(Confirmation::Ack(None)) => published.confirmed.push(seq),
                    Ok(Confirmation::Ack(Some(_))) => {
                        failure.get_or_insert(TransportError(format!("broker queue `{queue}` did not take a message")));
                    }
                    Ok(Confirmation::Nack(_)) => {
                        failure.get_or_insert(TransportError(format!("the broker refused a message for `{queue}`")));
                    }
                    Ok(Confirmation::NotRequested) => {
                        failure.get_or_insert(TransportError("publisher confirms are off".into()));
                    }
                    Err(e) => {
                        failure.get_or_insert(err("no confirm", e));
                    }
                }
            }
            failure.map_or(Ok(()), Err)
        });
        published.failure = outcome.err();
        published
    }

    fn receive(&mut self, queue: &str, max: usize, wait: Duration) -> Result<Vec<Incoming>, TransportError> {
        let open = self.ensure()?;
        if open.consumer.is_none() {
            let channel = open.channel.clone();
            let consumer = self.block("cannot consume", CALL_TIMEOUT, async move {
                channel
                    .basic_consume(queue, "", BasicConsumeOptions::default(), FieldTable::default())
                    .await
                    .map_err(|e| err(&format!("cannot consume broker queue `{queue}`"), e))
            })?;
            if let Some(open) = self.open.as_mut() {
                open.consumer = Some(consumer);
            }
        }
        let Some(mut consumer) = self.open.as_mut().and_then(|o| o.consumer.take()) else {
            return Err(TransportError("not connected".into()));
        };
        let got = self.block("receiving from the broker", wait + CALL_TIMEOUT, async {
            let mut out = Vec::new();
            let mut limit = wait;
            while out.len() < max {
                match tokio::time::timeout(limit, consumer.next()).await {
                    Err(_) => break,
                    Ok(None) => return Err(TransportError(format!("the broker ended the consumer of `{queue}`"))),
                    Ok(Some(Err(e))) => return Err(err("receiving failed", e)),
                    Ok(Some(Ok(d))) => {
                        out.push(Incoming {
                            id: d.properties.message_id().as_ref().map(|s| s.as_str().to_string()),
                            data: d.data,
                            token: d.delivery_tag,
                        });
                        limit = LINGER;
                    }
                }
            }
            Ok(out)
        });
        if got.is_ok() {
            if let Some(open) = self.open.as_mut() {
                open.consumer = Some(consumer);
            }
        }
        got
    }

    fn ack(&mut self, token: u64) -> Result<(), TransportError> {
        let channel =
            self.open.as_ref().map(|o| o.channel.clone()).ok_or_else(|| TransportError("not connected".into()))?;
        self.block("cannot acknowledge", CALL_TIMEOUT, async move {
            channel.basic_ack(token, BasicAckOptions { multiple: true }).await.map_err(|e| err("cannot acknowledge", e))
        })
    }

    fn reset(&mut self) {
        if let Some(open) = self.open.take() {
            if open.connection.status().connected() {
                let _ = self.block("closing", Duration::from_millis(500), async move {
                    open.connection.close(200, "reconnecting").await.map_err(|e| err("close", e))
                });
            }
        }
    }
}

impl Drop for AmqpTransport {
    fn drop(&mut self) {
        self.reset();
    }
}
