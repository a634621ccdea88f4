//! `intelmq.bots.collectors.amqp.collector_amqp`: takes the messages waiting in an AMQP queue
//! (RabbitMQ). Each message body becomes a Report with `raw` = the body; with
//! `expect_intelmq_message` the body is an IntelMQ message (wire JSON with `__type`) and is
//! forwarded as it is: no feed fields are added and no `raw` is required (IntelMQ sends it with
//! `auto_add=False`; it does drop an event without `raw`, which is passed on here).
//!
//! Delivery: one run takes up to [`MAX_PER_RUN`] messages (`basic.get`, unacknowledged) and
//! emits them; the broker messages are acknowledged in `committed()`, after the node has committed
//! the reports, with one `basic.ack` (multiple). Nothing is lost: a crash or a lost connection
//! before that ack makes the broker deliver the messages again, so after a crash or an outage at
//! that moment the same reports can be emitted twice (at-least-once). A body that is not an IntelMQ
//! message although `expect_intelmq_message` is set is logged and rejected without requeueing, so
//! the broker dead-letters it if the queue has a dead-letter exchange. Set `rate_limit` to the
//! polling interval (a few seconds): each run drains what is waiting and returns.
//!
//! IntelMQ's collector takes one message per run and acknowledges it right after sending.

use serde::{Deserialize, Serialize};

use base64::Engine;
use lapin::options::{BasicAckOptions, BasicGetOptions, BasicNackOptions};
use serde_json::Value;

use crate::bots::experts::asn_lookup::lenient;
use crate::bots::outputs::amqptopic::connection::{AmqpError, AmqpLink, AmqpSettings};
use crate::bots::outputs::amqptopic::shared::{de_opt_string, Worker};
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, CollectorBot, CollectorOutput, Context, Level, ParamError};
use crate::message::{AddOptions, Message};

/// The most messages one run takes.
pub const MAX_PER_RUN: usize = 1000;

/// Parameters of the AMQP collector (IntelMQ's names and defaults; the feed parameters are
/// common to all collectors).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AmqpCollectorParams {
    /// The broker; default "127.0.0.1".
    pub connection_host: String,
    /// The broker port; default 5672.
    #[serde(deserialize_with = "lenient::u16")]
    pub connection_port: u16,
    /// Connection attempts per run; default 3.
    #[serde(deserialize_with = "lenient::u64")]
    pub connection_attempts: u64,
    /// Heartbeat interval in seconds; default 3600.
    #[serde(deserialize_with = "lenient::u64")]
    pub connection_heartbeat: u64,
    /// The virtual host; default null (`/`).
    #[serde(deserialize_with = "de_opt_string")]
    pub connection_vhost: Option<String>,
    /// The user; default null (`guest`).
    #[serde(deserialize_with = "de_opt_string")]
    pub username: Option<String>,
    /// The password; default null (`guest`).
    #[serde(deserialize_with = "de_opt_string")]
    pub password: Option<String>,
    /// Connect with TLS (amqps); default false.
    #[serde(deserialize_with = "lenient::bool")]
    pub use_ssl: bool,
    /// The queue to consume; default null (must be set).
    #[serde(deserialize_with = "de_opt_string")]
    pub queue_name: Option<String>,
    /// The bodies are IntelMQ messages, forwarded unchanged; default false.
    #[serde(deserialize_with = "lenient::bool")]
    pub expect_intelmq_message: bool,
}

impl Default for AmqpCollectorParams {
    fn default() -> Self {
        AmqpCollectorParams {
            connection_host: "127.0.0.1".to_string(),
            connection_port: 5672,
            connection_attempts: 3,
            connection_heartbeat: 3600,
            connection_vhost: None,
            username: None,
            password: None,
            use_ssl: false,
            queue_name: None,
            expect_intelmq_message: false,
        }
    }
}

/// Consumes an AMQP queue; acknowledges after the node's commit.
pub struct AmqpCollectorBot {
    queue: String,
    expect_intelmq_message: bool,
    settings: AmqpSettings,
    /// The connection, on a thread of its own (lapin is driven by a tokio runtime, which the
    /// node's threads cannot block on).
    worker: Option<Worker<AmqpLink>>,
    /// The last delivery tag emitted in the run not yet acknowledged.
    pending: Option<u64>,
}

impl BuildBot for AmqpCollectorBot {
    type Params = AmqpCollectorParams;

    fn build(params: AmqpCollectorParams) -> Result<Self, ParamError> {
        let Some(queue) = params.queue_name.clone().filter(|q| !q.is_empty()) else {
            return Err(ParamError::new("queue_name", "no queue given"));
        };
        let heartbeat = u16::try_from(params.connection_heartbeat).map_err(|_| {
            ParamError::new(
                "connection_heartbeat",
                format!("{} is more than 65535 seconds", params.connection_heartbeat),
            )
        })?;
        let settings = AmqpSettings {
            host: params.connection_host,
            port: params.connection_port,
            vhost: params.connection_vhost,
            username: params.username,
            password: params.password,
            use_ssl: params.use_ssl,
            heartbeat,
            attempts: u32::try_from(params.connection_attempts).unwrap_or(u32::MAX),
            timeout: std::time::Duration::from_secs(10),
        };
        Ok(AmqpCollectorBot {
            queue,
            expect_intelmq_message: params.expect_intelmq_message,
            settings,
            worker: None,
            pending: None,
        })
    }
}

/// What one run took from the queue: whether it connected, and the delivery tag and body of
/// each message.
type Taken = (bool, Vec<(u64, Vec<u8>)>);

/// Takes up to [`MAX_PER_RUN`] waiting messages, unacknowledged. Runs on the worker thread.
fn take_messages(link: &mut AmqpLink, queue: &str) -> Result<Taken, AmqpError> {
    let connected = match link.ensure() {
        Ok(fresh) => fresh,
        Err(e) => {
            link.drop_connection();
            return Err(e);
        }
    };
    let channel = link.channel()?;
    let mut taken = Vec::new();
    for _ in 0..MAX_PER_RUN {
        match link.run("cannot get a message", channel.basic_get(queue, BasicGetOptions { no_ack: false })) {
            Ok(Some(m)) => taken.push((m.delivery.delivery_tag, m.delivery.data)),
            Ok(None) => break,
            Err(e) => {
                // The messages taken so far go back to the queue with the channel.
                link.drop_connection();
                return Err(e);
            }
        }
    }
    Ok((connected, taken))
}

impl AmqpCollectorBot {
    fn worker(&mut self, ctx: &Context<'_>) -> Result<&Worker<AmqpLink>, BotError> {
        if self.worker.is_none() {
            let worker = Worker::start(&format!("amqp-{}", ctx.bot_id), AmqpLink::new(self.settings.clone()))
                .map_err(BotError::Fatal)?;
            self.worker = Some(worker);
        }
        self.worker.as_ref().ok_or_else(|| BotError::Fatal("the broker thread is not running".to_string()))
    }

    fn failed(&mut self, e: &str, ctx: &mut Context<'_>) -> BotError {
        self.pending = None;
        ctx.log.log(Level::Error, &format!("Consuming failed, connecting again: {e}."));
        BotError::Unavailable(format!("broker {} queue `{}`: {e}", self.settings.display(), self.queue))
    }

    /// The message a body becomes, or `None` when it is rejected.
    fn message(&self, body: &[u8], ctx: &mut Context<'_>) -> Result<Option<Message>, BotError> {
        if self.expect_intelmq_message {
            return match Message::from_wire(ctx.harmonization.clone(), body, None) {
                Ok(msg) => Ok(Some(msg)),
                Err(e) => {
                    ctx.log.log(
                        Level::Error,
                        &format!("Rejecting a message of queue {:?} that is not an IntelMQ message: {e}.", self.queue),
                    );
                    Ok(None)
                }
            };
        }
        let mut report = Message::new_report(ctx.harmonization.clone());
        let raw = base64::engine::general_purpose::STANDARD.encode(body);
        report.add_with(
            "raw",
            Value::String(raw),
            AddOptions { sanitize: false, overwrite: Some(true), raise_failure: true },
        )?;
        Ok(Some(report))
    }
}

impl CollectorBot for AmqpCollectorBot {
    fn collect(&mut self, ctx: &mut Context<'_>, out: &mut CollectorOutput) -> Result<(), BotError> {
        // Messages of a run whose commit never came are still unacknowledged on this channel:
        // close it so the broker delivers them again.
        if self.pending.take().is_some() {
            let worker = self.worker(ctx)?;
            let _ = worker.call(|link| link.drop_connection());
        }
        let queue = self.queue.clone();
        let worker = self.worker(ctx)?;
        let result = worker.call(move |link| take_messages(link, &queue));
        let (connected, taken) = match result {
            Ok(Ok(taken)) => taken,
            Ok(Err(e)) => return Err(self.failed(&e.to_string(), ctx)),
            Err(why) => {
                self.worker = None;
                return Err(self.failed(&why, ctx));
            }
        };
        if connected {
            ctx.log.log(Level::Info, &format!("Connected to {}.", self.settings.display()));
        }
        let mut rejected = Vec::new();
        for (tag, body) in taken {
            match self.message(&body, ctx)? {
                Some(msg) if self.expect_intelmq_message => {
                    out.send_unchanged(msg);
                    self.pending = Some(tag);
                }
                Some(msg) => {
                    out.send(msg);
                    self.pending = Some(tag);
                }
                None => rejected.push(tag),
            }
        }
        if !rejected.is_empty() {
            let worker = self.worker(ctx)?;
            let result = worker.call(move |link| -> Result<(), AmqpError> {
                let channel = link.channel()?;
                for tag in rejected {
                    let nack = BasicNackOptions { multiple: false, requeue: false };
                    link.run("cannot reject a message", channel.basic_nack(tag, nack))?;
                }
                Ok(())
            });
            match result {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(self.failed(&e.to_string(), ctx)),
                Err(why) => return Err(self.failed(&why, ctx)),
            }
        }
        Ok(())
    }

    fn committed(&mut self, ctx: &mut Context<'_>) -> Result<(), BotError> {
        let Some(tag) = self.pending.take() else {
            return Ok(());
        };
        let worker = self.worker(ctx)?;
        let result = worker.call(move |link| -> Result<(), AmqpError> {
            let channel = link.channel()?;
            let acked = link.run("cannot acknowledge", channel.basic_ack(tag, BasicAckOptions { multiple: true }));
            if acked.is_err() {
                link.drop_connection();
            }
            acked
        });
        let error = match result {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => e.to_string(),
            Err(why) => why,
        };
        ctx.log.log(
            Level::Warning,
            &format!("Acknowledging the messages failed; the broker will deliver them again: {error}."),
        );
        Err(BotError::Unavailable(format!("cannot acknowledge queue `{}`: {error}", self.queue)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::net::{SocketAddr, TcpStream};
    use std::time::Duration;

    use lapin::options::BasicPublishOptions;
    use lapin::BasicProperties;
    use serde_json::json;

    use super::*;
    use crate::bots::collectors::test_support::harmonization;
    use crate::bots::{MemoryLog, MemoryState};

    fn broker_available() -> bool {
        let addr: SocketAddr = "127.0.0.1:5672".parse().unwrap();
        if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
            return true;
        }
        assert!(
            std::env::var("INTELMQ_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "RabbitMQ is not reachable and INTELMQ_REQUIRE_SERVICES=1"
        );
        eprintln!("amqp collector: skipped, no RabbitMQ at 127.0.0.1:5672");
        false
    }

    fn unique() -> String {
        format!(
            "intelmq-test-collector-{}-{}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
        )
    }

    fn side_link() -> AmqpLink {
        let mut link = AmqpLink::new(AmqpSettings {
            host: "127.0.0.1".into(),
            port: 5672,
            vhost: None,
            username: None,
            password: None,
            use_ssl: false,
            heartbeat: 60,
            attempts: 1,
            timeout: Duration::from_secs(10),
        });
        link.ensure().unwrap();
        link
    }

    fn publish(link: &mut AmqpLink, queue: &str, bodies: &[&[u8]]) {
        link.declare_queue(queue, false).unwrap();
        let ch = link.channel().unwrap();
        for body in bodies {
            link.run(
                "p",
                ch.basic_publish("", queue, BasicPublishOptions::default(), body, BasicProperties::default()),
            )
            .unwrap();
        }
    }

    fn count(link: &mut AmqpLink, queue: &str) -> u32 {
        link.declare_queue(queue, false).unwrap()
    }

    fn run(bot: &mut AmqpCollectorBot, commit: bool) -> CollectorOutput {
        let h = harmonization();
        let mut state = MemoryState::default();
        let mut log = MemoryLog::default();
        let mut ctx = Context {
            bot_id: "amqp-collector",
            harmonization: &h,
            root: std::path::Path::new("/"),
            state: &mut state,
            log: &mut log,
            clock: &crate::bots::SystemClock,
        };
        let mut out = CollectorOutput::default();
        // Inside a tokio runtime, as on the node's actix threads.
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            bot.collect(&mut ctx, &mut out).unwrap();
            if commit {
                bot.committed(&mut ctx).unwrap();
            }
        });
        out
    }

    #[test]
    fn queue_name_is_required() {
        assert_eq!(AmqpCollectorBot::build(AmqpCollectorParams::default()).err().unwrap().key, "queue_name");
    }

    #[test]
    fn bodies_become_reports_and_are_acknowledged_after_the_commit() {
        if !broker_available() {
            return;
        }
        let queue = unique();
        let mut link = side_link();
        publish(&mut link, &queue, &[b"line one", b"line two"]);
        let params = json!({"queue_name": queue});
        let mut bot = AmqpCollectorBot::build(serde_json::from_value(params).unwrap()).unwrap();
        // A run whose commit never happens: the messages come again.
        let first = run(&mut bot, false).reports;
        assert_eq!(first.len(), 2);
        let again = run(&mut bot, true).reports;
        let raws: Vec<Vec<u8>> = again.iter().map(|r| r.raw_bytes().unwrap()).collect();
        assert_eq!(raws, vec![b"line one".to_vec(), b"line two".to_vec()]);
        assert_eq!(count(&mut link, &queue), 0, "acknowledged after the commit");
        assert!(run(&mut bot, true).reports.is_empty());
        link.delete_queue(&queue).unwrap();
    }

    #[test]
    fn intelmq_messages_are_forwarded_unchanged_and_others_rejected() {
        if !broker_available() {
            return;
        }
        let queue = unique();
        let mut link = side_link();
        let wire = br#"{"source.ip": "192.0.2.1", "feed.name": "x", "__type": "Event"}"#;
        publish(&mut link, &queue, &[wire, b"not json"]);
        let params = json!({"queue_name": queue, "expect_intelmq_message": "true"});
        let mut bot = AmqpCollectorBot::build(serde_json::from_value(params).unwrap()).unwrap();
        let out = run(&mut bot, true);
        assert!(out.reports.is_empty(), "no report is made of them");
        let got = out.unchanged;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].kind(), crate::message::MessageKind::Event);
        assert_eq!(got[0].get_str("source.ip"), Some("192.0.2.1"));
        assert_eq!(count(&mut link, &queue), 0);
        link.delete_queue(&queue).unwrap();
    }

    #[test]
    fn an_unreachable_broker_is_unavailable() {
        let params = json!({"queue_name": "q", "connection_port": 1, "connection_attempts": 1});
        let mut bot = AmqpCollectorBot::build(serde_json::from_value(params).unwrap()).unwrap();
        let h = harmonization();
        let mut state = MemoryState::default();
        let mut log = MemoryLog::default();
        let mut ctx = Context {
            bot_id: "amqp-collector",
            harmonization: &h,
            root: std::path::Path::new("/"),
            state: &mut state,
            log: &mut log,
            clock: &crate::bots::SystemClock,
        };
        let err = bot.collect(&mut ctx, &mut CollectorOutput::default()).unwrap_err();
        assert!(matches!(err, BotError::Unavailable(_)), "{err:?}");
    }
}
