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

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, ExchangeKind};

use super::connection::{AmqpError, AmqpLink, AmqpSettings};
use super::shared::{
    de_opt_string, de_single_key, export_event, ser_single_key, Delivered, EventTemplate, ExportFlags,
};
use crate::bots::experts::asn_lookup::lenient;
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
    link: AmqpLink,
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
        Ok(AmqpTopicOutputBot {
            params,
            routing_key,
            flags,
            link: AmqpLink::new(settings),
            delivered: Delivered::default(),
        })
    }
}

fn exchange_kind(name: &str) -> ExchangeKind {
    match name {
        "topic" => ExchangeKind::Topic,
        "direct" => ExchangeKind::Direct,
        "fanout" => ExchangeKind::Fanout,
        "headers" => ExchangeKind::Headers,
        other => ExchangeKind::Custom(other.to_string()),
    }
}

impl AmqpTopicOutputBot {
    fn unavailable(&mut self, e: AmqpError, ctx: &mut Context<'_>) -> BotError {
        self.link.drop_connection();
        let text = format!("broker {}: {e}", self.link.settings().display());
        ctx.log.log(Level::Error, &format!("Publishing failed, connecting again: {e}."));
        BotError::Unavailable(text)
    }

    /// Connects and declares the exchange and confirm mode on a new channel.
    fn connect(&mut self, ctx: &mut Context<'_>) -> Result<(), BotError> {
        let fresh = match self.link.ensure() {
            Ok(fresh) => fresh,
            Err(e) => return Err(self.unavailable(e, ctx)),
        };
        if !fresh {
            return Ok(());
        }
        ctx.log.log(Level::Info, &format!("Connected to {}.", self.link.settings().display()));
        let channel = self.link.channel().map_err(|e| BotError::Unavailable(e.to_string()))?;
        if let Some(exchange) = self.params.exchange_name.clone().filter(|e| !e.is_empty()) {
            let kind = exchange_kind(&self.params.exchange_type);
            let options = ExchangeDeclareOptions { durable: self.params.exchange_durable, ..Default::default() };
            let declared = self.link.run(
                "cannot declare the exchange",
                channel.exchange_declare(&exchange, kind, options, FieldTable::default()),
            );
            match declared {
                Ok(()) => {}
                Err(AmqpError::Refused(why)) => {
                    self.link.drop_connection();
                    ctx.log.log(Level::Error, "Access to exchange refused.");
                    return Err(BotError::Fatal(format!("exchange `{exchange}`: {why}")));
                }
                Err(e) => return Err(self.unavailable(e, ctx)),
            }
        }
        if self.params.require_confirmation {
            if let Err(e) =
                self.link.run("cannot enable confirms", channel.confirm_select(ConfirmSelectOptions::default()))
            {
                return Err(self.unavailable(e, ctx));
            }
        }
        Ok(())
    }
}

impl OutputBot for AmqpTopicOutputBot {
    fn write(&mut self, events: &[Message], ctx: &mut Context<'_>) -> Result<(), BotError> {
        // Render everything first: a bad event fails the batch before anything is published.
        let mut messages: Vec<(&Message, String, Vec<u8>)> = Vec::with_capacity(events.len());
        for event in events {
            let key = match &self.routing_key {
                RoutingKey::Fixed(key) => key.clone(),
                RoutingKey::Template(t) => {
                    t.render(event).map_err(|e| BotError::Invalid(format!("routing key: {e}")))?
                }
            };
            messages.push((event, key, export_event(event, &self.flags)?.into_bytes()));
        }
        messages.retain(|(event, _, _)| !self.delivered.take(event));
        if messages.is_empty() {
            self.delivered.clear();
            return Ok(());
        }
        self.connect(ctx)?;
        let channel = self.link.channel().map_err(|e| BotError::Unavailable(e.to_string()))?;
        let exchange = self.params.exchange_name.clone().unwrap_or_default();
        let properties = BasicProperties::default()
            .with_content_type(self.params.content_type.as_str().into())
            .with_delivery_mode(u8::try_from(self.params.delivery_mode).unwrap_or(2));
        let options = BasicPublishOptions { mandatory: true, ..Default::default() };
        let mut confirms = Vec::with_capacity(messages.len());
        for (event, key, body) in &messages {
            let published = self
                .link
                .run("cannot publish", channel.basic_publish(&exchange, key, options, body, properties.clone()));
            match published {
                Ok(confirm) => confirms.push((*event, key.as_str(), confirm)),
                Err(e) => return Err(self.unavailable(e, ctx)),
            }
        }
        let mut problem: Option<String> = None;
        for (event, key, confirm) in confirms {
            match self.link.run("no publisher confirm", confirm) {
                Ok(lapin::publisher_confirm::Confirmation::Ack(None))
                | Ok(lapin::publisher_confirm::Confirmation::NotRequested) => self.delivered.record(event),
                Ok(lapin::publisher_confirm::Confirmation::Ack(Some(_))) => {
                    problem.get_or_insert_with(|| {
                        format!(
                            "exchange `{exchange}` routed a message with routing key `{key}` to no queue; \
                             declare and bind the destination queue first"
                        )
                    });
                }
                Ok(lapin::publisher_confirm::Confirmation::Nack(_)) => {
                    problem.get_or_insert_with(|| "the broker refused a message (negative confirm)".to_string());
                }
                Err(e) => return Err(self.unavailable(e, ctx)),
            }
        }
        if let Some(problem) = problem {
            ctx.log.log(Level::Error, &format!("{problem}."));
            return Err(BotError::Unavailable(format!("broker {}: {problem}", self.link.settings().display())));
        }
        self.delivered.clear();
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::net::{SocketAddr, TcpStream};
    use std::time::Duration;

    use lapin::options::{BasicGetOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions};
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
        bot.write(events, &mut ctx)
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
        let ch = link.channel().unwrap();
        let opts = ExchangeDeclareOptions { durable: true, ..Default::default() };
        link.run("x", ch.exchange_declare(exchange, ExchangeKind::Topic, opts, FieldTable::default())).unwrap();
        link.run("q", ch.queue_declare(queue, QueueDeclareOptions::default(), FieldTable::default())).unwrap();
        link.run("b", ch.queue_bind(queue, exchange, binding, QueueBindOptions::default(), FieldTable::default()))
            .unwrap();
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
        let ch = link.channel().unwrap();
        let _ = link.run("qd", ch.queue_delete(queue, QueueDeleteOptions::default()));
        let _ = link.run("xd", ch.exchange_delete(exchange, Default::default()));
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
        let ch = link.channel().unwrap();
        link.run("b", ch.queue_bind(&queue, &exchange, "events.b", QueueBindOptions::default(), FieldTable::default()))
            .unwrap();
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
