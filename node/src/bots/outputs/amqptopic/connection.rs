//! One AMQP 0-9-1 connection and channel (lapin), driven by a private current-thread tokio runtime
//! so that the bots using it stay synchronous: the amqptopic output and the AMQP collector. Every
//! broker call is bounded by a timeout; a failed call drops the connection so the next use
//! connects again.

use std::future::Future;
use std::time::Duration;

use lapin::options::{
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::uri::{AMQPAuthority, AMQPQueryString, AMQPScheme, AMQPUri, AMQPUserInfo};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};

/// Where and how to connect (IntelMQ's `connection_*`, `username`, `password`, `use_ssl`).
#[derive(Clone, Debug, PartialEq)]
pub struct AmqpSettings {
    pub host: String,
    pub port: u16,
    /// `None`: the default vhost `/`.
    pub vhost: Option<String>,
    /// `None`: RabbitMQ's default `guest`.
    pub username: Option<String>,
    pub password: Option<String>,
    pub use_ssl: bool,
    /// Seconds between heartbeats (0: none).
    pub heartbeat: u16,
    /// How often to try to connect before giving up for this call.
    pub attempts: u32,
    /// Bound of every connect and broker call.
    pub timeout: Duration,
}

impl AmqpSettings {
    /// The broker's address for messages (`amqp://host:port/vhost`, no credentials).
    pub fn display(&self) -> String {
        let scheme = if self.use_ssl { "amqps" } else { "amqp" };
        format!("{scheme}://{}:{}/{}", self.host, self.port, self.vhost.as_deref().unwrap_or("/"))
    }

    fn uri(&self) -> AMQPUri {
        AMQPUri {
            scheme: if self.use_ssl { AMQPScheme::AMQPS } else { AMQPScheme::AMQP },
            authority: AMQPAuthority {
                userinfo: AMQPUserInfo {
                    username: self.username.clone().unwrap_or_else(|| "guest".to_string()),
                    password: self.password.clone().unwrap_or_else(|| "guest".to_string()),
                },
                host: self.host.clone(),
                port: self.port,
            },
            vhost: self.vhost.clone().unwrap_or_else(|| "/".to_string()),
            query: AMQPQueryString {
                heartbeat: Some(self.heartbeat),
                connection_timeout: Some(u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX)),
                ..AMQPQueryString::default()
            },
        }
    }
}

/// A broker call that failed.
#[derive(Debug, thiserror::Error)]
pub enum AmqpError {
    /// The broker could not be reached, the connection broke, or a call timed out.
    #[error("{0}")]
    Unreachable(String),
    /// The broker refused an operation (a channel-level error such as PRECONDITION_FAILED,
    /// NOT_FOUND, ACCESS_REFUSED).
    #[error("{0}")]
    Refused(String),
}

impl AmqpError {
    /// Classifies a lapin error: a protocol error the broker sent is a refusal, the rest is an
    /// unreachable broker.
    pub fn from_lapin(what: &str, e: &lapin::Error) -> AmqpError {
        match e.kind() {
            lapin::ErrorKind::ProtocolError(amqp) => {
                let text = format!("{what}: {e}");
                // Soft errors close the channel (a refused declaration, a missing queue); hard ones
                // the connection (CONNECTION_FORCED on a broker shutdown): an outage.
                if matches!(amqp.kind(), lapin::protocol::AMQPErrorKind::Soft(_)) {
                    AmqpError::Refused(text)
                } else {
                    AmqpError::Unreachable(text)
                }
            }
            _ => AmqpError::Unreachable(format!("{what}: {e}")),
        }
    }
}

/// A lazily opened connection with one channel.
pub struct AmqpLink {
    settings: AmqpSettings,
    runtime: Option<tokio::runtime::Runtime>,
    connection: Option<Connection>,
    channel: Option<Channel>,
}

impl AmqpLink {
    pub fn new(settings: AmqpSettings) -> AmqpLink {
        AmqpLink { settings, runtime: None, connection: None, channel: None }
    }

    pub fn settings(&self) -> &AmqpSettings {
        &self.settings
    }

    /// Runs `fut` on the private runtime, bounded by the settings' timeout.
    pub fn run<T, F>(&mut self, what: &str, fut: F) -> Result<T, AmqpError>
    where
        F: Future<Output = Result<T, lapin::Error>>,
    {
        let timeout = self.settings.timeout;
        let runtime = self.runtime()?;
        match runtime.block_on(async { tokio::time::timeout(timeout, fut).await }) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(AmqpError::from_lapin(what, &e)),
            Err(_) => Err(AmqpError::Unreachable(format!("{what}: no answer within {timeout:?}"))),
        }
    }

    /// Runs a future that cannot fail on the private runtime, bounded by the timeout.
    pub fn run_plain<T, F: Future<Output = T>>(&mut self, what: &str, fut: F) -> Result<T, AmqpError> {
        let timeout = self.settings.timeout;
        let runtime = self.runtime()?;
        runtime
            .block_on(async { tokio::time::timeout(timeout, fut).await })
            .map_err(|_| AmqpError::Unreachable(format!("{what}: no answer within {timeout:?}")))
    }

    fn runtime(&mut self) -> Result<&tokio::runtime::Runtime, AmqpError> {
        if self.runtime.is_none() {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| AmqpError::Unreachable(format!("cannot start the AMQP runtime: {e}")))?;
            self.runtime = Some(runtime);
        }
        self.runtime.as_ref().ok_or_else(|| AmqpError::Unreachable("the AMQP runtime is not running".to_string()))
    }

    /// True when the channel is open.
    pub fn is_open(&self) -> bool {
        self.channel.as_ref().is_some_and(|c| c.status().connected())
            && self.connection.as_ref().is_some_and(|c| c.status().connected())
    }

    /// The open channel, connecting first if needed; `Ok(true)` when it was just opened (the caller
    /// declares what it needs then).
    pub fn ensure(&mut self) -> Result<bool, AmqpError> {
        if self.is_open() {
            return Ok(false);
        }
        self.drop_connection();
        let uri = self.settings.uri();
        let attempts = self.settings.attempts.max(1);
        let mut last = None;
        for _ in 0..attempts {
            let uri = uri.clone();
            match self.run("cannot connect", Connection::connect_uri(uri, ConnectionProperties::default())) {
                Ok(connection) => {
                    self.connection = Some(connection);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let Some(connection) = self.connection.take() else {
            return Err(last.unwrap_or_else(|| AmqpError::Unreachable("cannot connect".to_string())));
        };
        let opened = self.run("cannot open a channel", connection.create_channel());
        self.connection = Some(connection);
        match opened {
            Ok(channel) => {
                self.channel = Some(channel);
                Ok(true)
            }
            Err(e) => {
                self.drop_connection();
                Err(e)
            }
        }
    }

    /// The open channel (after [`Self::ensure`]).
    pub fn channel(&self) -> Result<Channel, AmqpError> {
        self.channel.clone().ok_or_else(|| AmqpError::Unreachable("no open channel".to_string()))
    }

    /// Declares an exchange of `kind` (`topic`, `direct`, `fanout`, `headers` or a plugin's type).
    pub fn declare_exchange(&mut self, name: &str, kind: &str, durable: bool) -> Result<(), AmqpError> {
        let kind = match kind {
            "topic" => ExchangeKind::Topic,
            "direct" => ExchangeKind::Direct,
            "fanout" => ExchangeKind::Fanout,
            "headers" => ExchangeKind::Headers,
            other => ExchangeKind::Custom(other.to_string()),
        };
        let channel = self.channel()?;
        let options = ExchangeDeclareOptions { durable, ..Default::default() };
        self.run("cannot declare the exchange", channel.exchange_declare(name, kind, options, FieldTable::default()))
    }

    /// Declares a queue; returns the number of messages in it.
    pub fn declare_queue(&mut self, name: &str, durable: bool) -> Result<u32, AmqpError> {
        let channel = self.channel()?;
        let options = QueueDeclareOptions { durable, ..Default::default() };
        self.run("cannot declare the queue", channel.queue_declare(name, options, FieldTable::default()))
            .map(|q| q.message_count())
    }

    /// Binds a queue to an exchange with a routing key (pattern).
    pub fn bind_queue(&mut self, queue: &str, exchange: &str, key: &str) -> Result<(), AmqpError> {
        let channel = self.channel()?;
        self.run(
            "cannot bind the queue",
            channel.queue_bind(queue, exchange, key, QueueBindOptions::default(), FieldTable::default()),
        )
    }

    /// Deletes a queue.
    pub fn delete_queue(&mut self, name: &str) -> Result<(), AmqpError> {
        let channel = self.channel()?;
        self.run("cannot delete the queue", channel.queue_delete(name, QueueDeleteOptions::default())).map(|_| ())
    }

    /// Deletes an exchange.
    pub fn delete_exchange(&mut self, name: &str) -> Result<(), AmqpError> {
        let channel = self.channel()?;
        self.run("cannot delete the exchange", channel.exchange_delete(name, ExchangeDeleteOptions::default()))
    }

    /// Closes what is open (best effort, without waiting long) and forgets it.
    pub fn drop_connection(&mut self) {
        let channel = self.channel.take();
        let connection = self.connection.take();
        if let Some(connection) = connection {
            if connection.status().connected() {
                let saved = self.settings.timeout;
                self.settings.timeout = Duration::from_millis(500);
                if let Some(channel) = channel {
                    let _ = self.run("close channel", async move { channel.close(200, "bye").await });
                }
                let _ = self.run("close connection", async move { connection.close(200, "bye").await });
                self.settings.timeout = saved;
            }
        }
    }
}

impl Drop for AmqpLink {
    fn drop(&mut self) {
        self.drop_connection();
    }
}
