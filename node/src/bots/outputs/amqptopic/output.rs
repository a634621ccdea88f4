//! `intelmq.bots.outputs.amqptopic.output`: publishes each event (IntelMQ's `export_event`) to an
//! AMQP exchange (RabbitMQ) with `routing_key`, or with `format_routing_key` the routing key
//! template filled from the event (`{ev[feed.name]}`). The exchange is declared with
//! `exchange_type` and `exchange_durable` when `exchange_name` is set (the default exchange is
//! never declared); messages carry `content_type` and `delivery_mode` (2 = persistent) and are
//! published `mandatory`.
//!
//! A `write` publishes the whole batch and, with `require_confirmation` (the default), returns
//! `Ok` only once the broker has confirmed every message (publisher confirms). A message the
//! broker could not route to any queue (IntelMQ stops the bot: "declare the queue first"), a
//! negative confirm, a lost connection or a timeout make the bot wait and retry the batch; events
//! of that batch the broker had already confirmed are not published again when they come back
//! (see [`Delivered`]), unless the node restarted meanwhile (at-least-once). A refused exchange
//! declaration (it exists with another type, or access is denied) stops the bot. Without
//! `require_confirmation`, `Ok` means the messages were handed to the connection.

use serde::{Deserialize, Serialize};

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::publisher_confirm::Confirmation;
use lapin::BasicProperties;

use super::connection::{AmqpError, AmqpLink, AmqpSettings};
use super::shared::{de_opt_string, de_single_key, export_event, ser_single_key, EventTemplate, ExportFlags, Worker};
use crate::bots::experts::asn_lookup::lenient;
use crate::bots::outputs::delivered::Delivered;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, Level, OutputBot, ParamError};
use crate::message::Message;

/// Parameters of the AMQP topic output (IntelMQ's names and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AmqpTopicOutputParams {
    /// Connection attempts per try; default 3.
    #[serde(deserialize_with = "lenient::u64")]
    pub connection_attempts: u64,
    /// Heartbeat interval in seconds; default 3600.
    #[serde(deserialize_with = "lenient::u64")]
    pub connection_heartbeat: u64,
    /// The broker; default "127.0.0.1".
    pub connection_host: String,
    /// The broker port; default 5672.
    #[serde(deserialize_with = "lenient::u16")]
    pub connection_port: u16,
    /// The virtual host; default null (`/`).
    #[serde(deserialize_with = "de_opt_string")]
    pub connection_vhost: Option<String>,
    /// The messages' content type; default "application/json".
    pub content_type: String,
    /// 1 = transient, 2 = persistent; default 2.
    #[serde(deserialize_with = "lenient::u64")]
    pub delivery_mode: u64,
    /// Declare the exchange durable; default true.
    #[serde(deserialize_with = "lenient::bool")]
    pub exchange_durable: bool,
    /// The exchange; default null (the default exchange, routing to the queue named `routing_key`).
    #[serde(deserialize_with = "de_opt_string")]
    pub exchange_name: Option<String>,
    /// The exchange type (`topic`, `direct`, `fanout`, `headers`); default "topic".
    pub exchange_type: String,
    /// Keep the `raw` field in the message; default false.
    #[serde(deserialize_with = "lenient::bool")]
    pub keep_raw_field: bool,
    /// The password; default null (`guest`).
    #[serde(deserialize_with = "de_opt_string")]
    pub password: Option<String>,
    /// Wait for the broker's publisher confirms; default true.
    #[serde(deserialize_with = "lenient::bool")]
    pub require_confirmation: bool,
    /// The routing key (a `{ev[field]}` template with `format_routing_key`); default null (must be set).
    #[serde(deserialize_with = "de_opt_string")]
    pub routing_key: Option<String>,
    /// Publish only this field; default false.
    #[serde(deserialize_with = "de_single_key", serialize_with = "ser_single_key")]
    pub single_key: Option<String>,
    /// Connect with TLS (amqps); default false.
    #[serde(deserialize_with = "lenient::bool")]
    pub use_ssl: bool,
    /// The user; default null (`guest`).
    #[serde(deserialize_with = "de_opt_string")]
    pub username: Option<String>,
    /// Fill `routing_key` from the event (`{ev[field]}`); default false.
    #[serde(deserialize_with = "lenient::bool")]
    pub format_routing_key: bool,
    /// Nest the dotted keys into objects; default false.
    #[serde(deserialize_with = "lenient::bool")]
    pub message_hierarchical_output: bool,
    /// Include `__type`; default false.
    #[serde(deserialize_with = "lenient::bool")]
    pub message_with_type: bool,
    /// Write JSONDict fields as one JSON string; default false.
    #[serde(deserialize_with = "lenient::bool")]
    pub message_jsondict_as_string: bool,
}

impl Default for AmqpTopicOutputParams {
    fn default() -> Self {
        AmqpTopicOutputParams {
            connection_attempts: 3,
            connection_heartbeat: 3600,
            connection_host: "127.0.0.1".to_string(),
            connection_port: 5672,
            connection_vhost: None,
            content_type: "application/json".to_string(),
            delivery_mode: 2,
            exchange_durable: true,
            exchange_name: None,
            exchange_type: "topic".to_string(),
            keep_raw_field: false,
            password: None,
            require_confirmation: true,
            routing_key: None,
            single_key: None,
            use_ssl: false,
            username: None,
            format_routing_key: false,
            message_hierarchical_output: false,
            message_with_type: false,
            message_jsondict_as_string: false,
        }
    }
}

/// The routing key: fixed or a template.
enum RoutingKey {
    Fixed(String),
    Template(EventTemplate),
}

/// Publishes events to an AMQP exchange with publisher confirms.
pub struct AmqpTopicOutputBot {
    params: AmqpTopicOutputParams,
    routing_key: RoutingKey,
    flags: ExportFlags,
    settings: AmqpSettings,
    /// The connection, on a thread of its own (lapin is driven by a tokio runtime, which the
    /// node's threads cannot block on).
    worker: Option<Worker<AmqpLink>>,
    delivered: Delivered,
}

impl BuildBot for AmqpTopicOutputBot {
    type Params = AmqpTopicOutputParams;

    fn build(params: AmqpTopicOutputParams) -> Result<Self, ParamError> {
        let Some(key) = params.routing_key.clone() else {
            return Err(ParamError::new("routing_key", "no routing key given"));
        };
        let routing_key = if params.format_routing_key {
            RoutingKey::Template(EventTemplate::parse(&key, "ev").map_err(|e| ParamError::new("routing_key", e))?)
        } else {
            RoutingKey::Fixed(key)
        };
        if !matches!(params.delivery_mode, 1 | 2) {
            return Err(ParamError::new("delivery_mode", format!("{} is neither 1 nor 2", params.delivery_mode)));
        }
        if params.exchange_type.trim().is_empty() {
            return Err(ParamError::new("exchange_type", "no exchange type given"));
        }
        let heartbeat = u16::try_from(params.connection_heartbeat).map_err(|_| {
            ParamError::new(
                "connection_heartbeat",
                format!("{} is more than 65535 seconds", params.connection_heartbeat),
            )
        })?;
        let settings = AmqpSettings {
            host: params.connection_host.clone(),
            port: params.connection_port,
            vhost: params.connection_vhost.clone(),
            username: params.username.clone(),
            password: params.password.clone(),
            use_ssl: params.use_ssl,
            heartbeat,
            attempts: u32::try_from(params.connection_attempts).unwrap_or(u32::MAX),
            timeout: std::time::Duration::from_secs(10),
        };
        let flags = ExportFlags {
            single_key: params.single_key.clone(),
            keep_raw_field: params.keep_raw_field,
            hierarchical: params.message_hierarchical_output,
            with_type: params.message_with_type,
            jsondict_as_string: params.message_jsondict_as_string,
        };
        Ok(AmqpTopicOutputBot { params, routing_key, flags, settings, worker: None, delivered: Delivered::default() })
    }
}

/// What one publishing round needs, owned so that it can go to the worker thread.
struct Batch {
    exchange: String,
    /// Exchange to declare on a new channel: name, type, durable.
    declare: Option<(String, String, bool)>,
    confirm: bool,
    properties: BasicProperties,
    /// Routing key and body of each message.
    messages: Vec<(String, Vec<u8>)>,
}

/// Why a publishing round failed.
enum Failure {
    /// Connection problems, timeouts: wait and retry.
    Unreachable(String),
    /// The exchange declaration was refused: stop.
    ExchangeRefused(String),
    /// A message went to no queue, or the broker sent a negative confirm: wait and retry.
    Refused(String),
}

/// The result of a publishing round: whether it connected, the messages the broker confirmed,
/// and what failed.
struct Round {
    connected: bool,
    confirmed: Vec<usize>,
    failure: Option<Failure>,
}

/// Connects if needed (declaring the exchange and confirm mode on a new channel), publishes
/// every message and waits for the confirms. Runs on the worker thread.
fn publish_round(link: &mut AmqpLink, batch: Batch) -> Round {
    let mut round = Round { connected: false, confirmed: Vec::new(), failure: None };
    let fail = |link: &mut AmqpLink, mut round: Round, failure: Failure| {
        link.drop_connection();
        round.failure = Some(failure);
        round
    };
    match link.ensure() {
        Ok(fresh) => round.connected = fresh,
        Err(e) => return fail(link, round, Failure::Unreachable(e.to_string())),
    }
    if round.connected {
        if let Some((name, kind, durable)) = &batch.declare {
            match link.declare_exchange(name, kind, *durable) {
                Ok(()) => {}
                Err(AmqpError::Refused(why)) => {
                    return fail(link, round, Failure::ExchangeRefused(format!("exchange `{name}`: {why}")))
                }
                Err(e) => return fail(link, round, Failure::Unreachable(e.to_string())),
            }
        }
        if batch.confirm {
            let channel = match link.channel() {
                Ok(c) => c,
                Err(e) => return fail(link, round, Failure::Unreachable(e.to_string())),
            };
            if let Err(e) = link.run("cannot enable confirms", channel.confirm_select(ConfirmSelectOptions::default()))
            {
                return fail(link, round, Failure::Unreachable(e.to_string()));
            }
        }
    }
    let channel = match link.channel() {
        Ok(c) => c,
        Err(e) => return fail(link, round, Failure::Unreachable(e.to_string())),
    };
    let options = BasicPublishOptions { mandatory: true, ..Default::default() };
    let mut confirms = Vec::with_capacity(batch.messages.len());
    for (key, body) in &batch.messages {
        let published = link.run(
            "cannot publish",
            channel.basic_publish(&batch.exchange, key, options, body, batch.properties.clone()),
        );
        match published {
            Ok(confirm) => confirms.push((key.clone(), confirm)),
            Err(e) => return fail(link, round, Failure::Unreachable(e.to_string())),
        }
    }
    for (index, (key, confirm)) in confirms.into_iter().enumerate() {
        match link.run("no publisher confirm", confirm) {
            Ok(Confirmation::Ack(None)) | Ok(Confirmation::NotRequested) => round.confirmed.push(index),
            Ok(Confirmation::Ack(Some(_))) => {
                round.failure.get_or_insert_with(|| {
                    Failure::Refused(format!(
                        "exchange `{}` routed a message with routing key `{key}` to no queue; \
                         declare and bind the destination queue first",
                        batch.exchange
                    ))
                });
            }
            Ok(Confirmation::Nack(_)) => {
                round.failure.get_or_insert_with(|| {
                    Failure::Refused("the broker refused a message (negative confirm)".to_string())
                });
            }
            Err(e) => return fail(link, round, Failure::Unreachable(e.to_string())),
        }
    }
    round
}

impl OutputBot for AmqpTopicOutputBot {
    fn write(&mut self, events: &[Message], ctx: &mut Context<'_>) -> Result<(), BotError> {
        // Render everything first: a bad event fails the batch before anything is published.
        let pending = self.delivered.pending(events);
        let mut indices = Vec::with_capacity(events.len());
        let mut messages = Vec::with_capacity(events.len());
        for (i, event) in events.iter().enumerate() {
            let key = match &self.routing_key {
                RoutingKey::Fixed(key) => key.clone(),
                RoutingKey::Template(t) => {
                    t.render(event).map_err(|e| BotError::Invalid(format!("routing key: {e}")))?
                }
            };
            let body = export_event(event, &self.flags)?.into_bytes();
            if pending[i] {
                indices.push(i);
                messages.push((key, body));
            }
        }
        if messages.is_empty() {
            self.delivered.acknowledged(events);
            return Ok(());
        }
        if self.worker.is_none() {
            let worker = Worker::start(&format!("amqp-{}", ctx.bot_id), AmqpLink::new(self.settings.clone()))
                .map_err(BotError::Fatal)?;
            self.worker = Some(worker);
        }
        let Some(worker) = &self.worker else {
            return Err(BotError::Fatal("the broker thread is not running".to_string()));
        };
        let batch = Batch {
            exchange: self.params.exchange_name.clone().unwrap_or_default(),
            declare: self
                .params
                .exchange_name
                .clone()
                .filter(|e| !e.is_empty())
                .map(|name| (name, self.params.exchange_type.clone(), self.params.exchange_durable)),
            confirm: self.params.require_confirmation,
            properties: BasicProperties::default()
                .with_content_type(self.params.content_type.as_str().into())
                .with_delivery_mode(u8::try_from(self.params.delivery_mode).unwrap_or(2)),
            messages,
        };
        let round = match worker.call(move |link| publish_round(link, batch)) {
            Ok(round) => round,
            Err(why) => {
                self.worker = None;
                Round { connected: false, confirmed: Vec::new(), failure: Some(Failure::Unreachable(why)) }
            }
        };
        if round.connected {
            ctx.log.log(Level::Info, &format!("Connected to {}.", self.settings.display()));
        }
        for i in &round.confirmed {
            self.delivered.record(&events[indices[*i]]);
        }
        let broker = self.settings.display();
        match round.failure {
            None => {
                self.delivered.acknowledged(events);
                Ok(())
            }
            Some(Failure::Unreachable(why)) => {
                ctx.log.log(Level::Error, &format!("Publishing failed, connecting again: {why}."));
                Err(BotError::Unavailable(format!("broker {broker}: {why}")))
            }
            Some(Failure::Refused(why)) => {
                ctx.log.log(Level::Error, &format!("{why}."));
                Err(BotError::Unavailable(format!("broker {broker}: {why}")))
            }
            Some(Failure::ExchangeRefused(why)) => {
                ctx.log.log(Level::Error, "Access to exchange refused.");
                Err(BotError::Fatal(format!("broker {broker}: {why}")))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::net::{SocketAddr, TcpStream};
    use std::time::Duration;

    use lapin::options::BasicGetOptions;
    use serde_json::{json, Value};

    use super::*;
    use crate::bots::outputs::test_support::{event, harmonization};
    use crate::bots::{MemoryLog, MemoryState};

    const BROKER: &str = "127.0.0.1:5672";

    fn broker_available() -> bool {
        let addr: SocketAddr = BROKER.parse().unwrap();
        if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
            return true;
        }
        assert!(
            std::env::var("INTELMQ_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "RabbitMQ at {BROKER} is not reachable and INTELMQ_REQUIRE_SERVICES=1"
        );
        eprintln!("amqptopic output: skipped, no RabbitMQ at {BROKER}");
        false
    }

    fn unique(prefix: &str) -> String {
        format!(
            "{prefix}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
        )
    }

    fn build(params: Value) -> AmqpTopicOutputBot {
        AmqpTopicOutputBot::build(serde_json::from_value(params).unwrap()).unwrap()
    }

    fn write(bot: &mut AmqpTopicOutputBot, events: &[Message]) -> Result<(), BotError> {
        let h = harmonization();
        let mut state = MemoryState::default();
        let mut log = MemoryLog::default();
        let mut ctx = Context {
            bot_id: "amqp-output",
            harmonization: &h,
            root: std::path::Path::new("/"),
            state: &mut state,
            log: &mut log,
            clock: &crate::bots::SystemClock,
        };
        // Inside a tokio runtime, as on the node's actix threads.
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async { bot.write(events, &mut ctx) })
    }

    /// A test-side link with a queue bound to the exchange.
    fn consumer(exchange: &str, queue: &str, binding: &str) -> AmqpLink {
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
        link.declare_exchange(exchange, "topic", true).unwrap();
        link.declare_queue(queue, false).unwrap();
        link.bind_queue(queue, exchange, binding).unwrap();
        link
    }

    fn drain(link: &mut AmqpLink, queue: &str) -> Vec<(String, Vec<u8>)> {
        let ch = link.channel().unwrap();
        let mut out = Vec::new();
        while let Some(m) = link.run("get", ch.basic_get(queue, BasicGetOptions { no_ack: true })).unwrap() {
            out.push((m.delivery.routing_key.to_string(), m.delivery.data));
        }
        out
    }

    fn cleanup(link: &mut AmqpLink, exchange: &str, queue: &str) {
        let _ = link.delete_queue(queue);
        let _ = link.delete_exchange(exchange);
    }

    #[test]
    fn routing_key_is_required_and_templates_are_checked() {
        let err = AmqpTopicOutputBot::build(AmqpTopicOutputParams::default()).err().unwrap();
        assert_eq!(err.key, "routing_key");
        let params = json!({"routing_key": "{event[x]}", "format_routing_key": true});
        let err = AmqpTopicOutputBot::build(serde_json::from_value(params).unwrap()).err().unwrap();
        assert_eq!(err.key, "routing_key");
    }

    #[test]
    fn defaults_are_intelmqs() {
        let d = serde_json::to_value(AmqpTopicOutputParams::default()).unwrap();
        assert_eq!(d["connection_host"], json!("127.0.0.1"));
        assert_eq!(d["connection_port"], json!(5672));
        assert_eq!(d["exchange_type"], json!("topic"));
        assert_eq!(d["delivery_mode"], json!(2));
        assert_eq!(d["require_confirmation"], json!(true));
        assert_eq!(d["single_key"], json!(false));
    }

    #[test]
    fn a_batch_is_published_with_formatted_routing_keys_and_confirmed() {
        if !broker_available() {
            return;
        }
        let exchange = unique("intelmq-test-x");
        let queue = unique("intelmq-test-q");
        let mut link = consumer(&exchange, &queue, "events.#");
        let h = harmonization();
        let events = [
            event(&h, json!({"feed.name": "a", "source.ip": "192.0.2.1", "raw": "YQ=="})),
            event(&h, json!({"feed.name": "b", "source.ip": "192.0.2.2"})),
        ];
        let mut bot = build(json!({"exchange_name": exchange, "routing_key": "events.{ev[feed.name]}",
            "format_routing_key": true, "message_with_type": "true"}));
        write(&mut bot, &events).unwrap();
        let got = drain(&mut link, &queue);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, "events.a");
        assert_eq!(got[1].0, "events.b");
        let body: Value = serde_json::from_slice(&got[0].1).unwrap();
        assert_eq!(body, json!({"__type": "Event", "feed.name": "a", "source.ip": "192.0.2.1"}));
        cleanup(&mut link, &exchange, &queue);
    }

    #[test]
    fn an_unroutable_message_makes_the_bot_wait_and_confirmed_ones_are_not_sent_twice() {
        if !broker_available() {
            return;
        }
        let exchange = unique("intelmq-test-x");
        let queue = unique("intelmq-test-q");
        let mut link = consumer(&exchange, &queue, "events.a");
        let h = harmonization();
        let events = [event(&h, json!({"feed.name": "a"})), event(&h, json!({"feed.name": "b"}))];
        let mut bot = build(json!({"exchange_name": exchange, "routing_key": "events.{ev[feed.name]}",
            "format_routing_key": true}));
        let err = write(&mut bot, &events).unwrap_err();
        assert!(matches!(err, BotError::Unavailable(ref why) if why.contains("no queue")), "{err:?}");
        // Someone binds the missing route; the retry publishes only the unrouted event.
        link.bind_queue(&queue, &exchange, "events.b").unwrap();
        write(&mut bot, &events).unwrap();
        let keys: Vec<String> = drain(&mut link, &queue).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec!["events.a", "events.b"]);
        cleanup(&mut link, &exchange, &queue);
    }

    #[test]
    fn an_unreachable_broker_is_unavailable() {
        let h = harmonization();
        let mut bot = build(json!({"connection_port": 1, "routing_key": "k", "connection_attempts": 1}));
        let err = write(&mut bot, &[event(&h, json!({"feed.name": "a"}))]).unwrap_err();
        assert!(matches!(err, BotError::Unavailable(_)), "{err:?}");
    }

    #[test]
    fn a_conflicting_exchange_declaration_stops_the_bot() {
        if !broker_available() {
            return;
        }
        let exchange = unique("intelmq-test-x");
        let queue = unique("intelmq-test-q");
        let mut link = consumer(&exchange, &queue, "#");
        let h = harmonization();
        let mut bot = build(json!({"exchange_name": exchange, "exchange_type": "fanout", "routing_key": "k"}));
        let err = write(&mut bot, &[event(&h, json!({"feed.name": "a"}))]).unwrap_err();
        assert!(matches!(err, BotError::Fatal(_)), "{err:?}");
        cleanup(&mut link, &exchange, &queue);
    }
}
