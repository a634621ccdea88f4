//! `intelmq.bots.outputs.mqtt.output` (IntelMQ has no MQTT output; the module path, parameters and
//! defaults follow its other outputs): publishes each event (IntelMQ's `export_event`) to an MQTT
//! broker on `topic` (a `{ev[field]}` template is filled from the event) with QoS `qos`.
//!
//! A `write` publishes the whole batch and returns `Ok` only once the broker has acknowledged
//! every message: a PUBACK for QoS 1 (the default), a PUBCOMP for QoS 2; with QoS 0, once every
//! message has been written to the connection. A refused or lost connection or a missing
//! acknowledgement within `timeout` seconds makes the bot wait and retry; events of that batch
//! the broker had already acknowledged are not published again when they come back, unless the
//! node restarted meanwhile (at-least-once). The session is clean: nothing is kept on the broker
//! between connections.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use rumqttc::{Client, Connection, Event, MqttOptions, Outgoing, Packet, QoS};
use serde::{Deserialize, Serialize};

use crate::bots::experts::asn_lookup::lenient;
use crate::bots::outputs::amqptopic::shared::{
    de_opt_string, de_single_key, export_event, ser_single_key, EventTemplate, ExportFlags, Worker,
};
use crate::bots::outputs::delivered::Delivered;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, Level, OutputBot, ParamError};
use crate::message::Message;

/// Parameters of the MQTT output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MqttOutputParams {
    /// The broker; default "127.0.0.1".
    pub host: String,
    /// The broker port; default 1883.
    #[serde(deserialize_with = "lenient::u16")]
    pub port: u16,
    /// The topic, may hold `{ev[field]}` placeholders; default "intelmq/events".
    pub topic: String,
    /// Quality of service 0, 1 or 2; default 1.
    #[serde(deserialize_with = "lenient::u64")]
    pub qos: u64,
    /// The MQTT client id; default null ("intelmq-<bot id>").
    #[serde(deserialize_with = "de_opt_string")]
    pub client_id: Option<String>,
    /// The user; default null (anonymous).
    #[serde(deserialize_with = "de_opt_string")]
    pub username: Option<String>,
    /// The password; default null.
    #[serde(deserialize_with = "de_opt_string")]
    pub password: Option<String>,
    /// Keep-alive interval in seconds; default 60.
    #[serde(deserialize_with = "lenient::u64")]
    pub keepalive: u64,
    /// Seconds to wait for the connection and the acknowledgements; default 10.
    #[serde(deserialize_with = "lenient::seconds")]
    pub timeout: f64,
    /// Ask the broker to retain the last message of the topic; default false.
    #[serde(deserialize_with = "lenient::bool")]
    pub retain: bool,
    /// Nest the dotted keys into objects; default false.
    #[serde(deserialize_with = "lenient::bool")]
    pub hierarchical_output: bool,
    /// Include `__type`; default false.
    #[serde(deserialize_with = "lenient::bool")]
    pub with_type: bool,
    /// Publish only this field; default false.
    #[serde(deserialize_with = "de_single_key", serialize_with = "ser_single_key")]
    pub single_key: Option<String>,
    /// Keep the `raw` field; default false.
    #[serde(deserialize_with = "lenient::bool")]
    pub keep_raw_field: bool,
}

impl Default for MqttOutputParams {
    fn default() -> Self {
        MqttOutputParams {
            host: "127.0.0.1".to_string(),
            port: 1883,
            topic: "intelmq/events".to_string(),
            qos: 1,
            client_id: None,
            username: None,
            password: None,
            keepalive: 60,
            timeout: 10.0,
            retain: false,
            hierarchical_output: false,
            with_type: false,
            single_key: None,
            keep_raw_field: false,
        }
    }
}

/// Publishes events to an MQTT broker, acknowledged.
pub struct MqttOutputBot {
    params: MqttOutputParams,
    qos: QoS,
    topic: EventTemplate,
    flags: ExportFlags,
    timeout: Duration,
    /// The MQTT session, on a thread of its own (rumqttc's client blocks on a tokio runtime, which
    /// the node's threads cannot).
    worker: Option<Worker<Option<(Client, Connection)>>>,
    delivered: Delivered,
}

impl BuildBot for MqttOutputBot {
    type Params = MqttOutputParams;

    fn build(params: MqttOutputParams) -> Result<Self, ParamError> {
        let qos = match params.qos {
            0 => QoS::AtMostOnce,
            1 => QoS::AtLeastOnce,
            2 => QoS::ExactlyOnce,
            other => return Err(ParamError::new("qos", format!("{other} is not 0, 1 or 2"))),
        };
        if params.topic.is_empty() {
            return Err(ParamError::new("topic", "no topic given"));
        }
        let topic = EventTemplate::parse(&params.topic, "ev").map_err(|e| ParamError::new("topic", e))?;
        if params.keepalive > u64::from(u16::MAX) {
            return Err(ParamError::new("keepalive", format!("{} is more than 65535 seconds", params.keepalive)));
        }
        let flags = ExportFlags {
            single_key: params.single_key.clone(),
            keep_raw_field: params.keep_raw_field,
            hierarchical: params.hierarchical_output,
            with_type: params.with_type,
            jsondict_as_string: false,
        };
        let timeout = Duration::from_secs_f64(params.timeout.max(0.1));
        Ok(MqttOutputBot { params, qos, topic, flags, timeout, worker: None, delivered: Delivered::default() })
    }
}

impl MqttOutputBot {
    fn options(&self, bot_id: &str) -> MqttOptions {
        let id = self.params.client_id.clone().unwrap_or_else(|| format!("intelmq-{bot_id}"));
        let mut options = MqttOptions::new(id, self.params.host.clone(), self.params.port);
        options
            .set_keep_alive(Duration::from_secs(self.params.keepalive.max(5)))
            .set_clean_session(true)
            .set_max_packet_size(256 * 1024 * 1024, 256 * 1024 * 1024);
        if let Some(user) = &self.params.username {
            options.set_credentials(user.clone(), self.params.password.clone().unwrap_or_default());
        }
        options
    }

    fn target(&self) -> String {
        format!("mqtt://{}:{}", self.params.host, self.params.port)
    }

    /// Publishes `messages` on a session and waits for every acknowledgement. `acked` gets the
    /// indices the broker acknowledged.
    fn publish(
        client: &Client,
        connection: &mut Connection,
        messages: &[(String, Vec<u8>)],
        qos: QoS,
        retain: bool,
        timeout: Duration,
        acked: &mut Vec<usize>,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        // Packet ids of sent publishes in order, matched to message indices.
        let mut next_to_send = 0;
        let mut sent_ids: Vec<(u16, usize)> = Vec::new();
        let mut written = 0usize;
        let mut done: HashSet<usize> = HashSet::new();
        loop {
            while next_to_send < messages.len() {
                let (topic, body) = &messages[next_to_send];
                match client.try_publish(topic.clone(), qos, retain, body.clone()) {
                    Ok(()) => next_to_send += 1,
                    Err(rumqttc::ClientError::TryRequest(_)) => break,
                    Err(e) => return Err(format!("cannot publish: {e}")),
                }
            }
            if done.len() == messages.len() {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!(
                    "{} of {} messages unacknowledged after {timeout:?}",
                    messages.len() - done.len(),
                    messages.len()
                ));
            }
            let event = match connection.recv_timeout(left) {
                Ok(Ok(event)) => event,
                Ok(Err(e)) => return Err(format!("connection failed: {e}")),
                Err(_) => continue,
            };
            match event {
                Event::Outgoing(Outgoing::Publish(pkid)) => {
                    let index = written;
                    written += 1;
                    if qos == QoS::AtMostOnce {
                        done.insert(index);
                        acked.push(index);
                    } else {
                        sent_ids.push((pkid, index));
                    }
                }
                Event::Incoming(Packet::PubAck(ack)) if qos == QoS::AtLeastOnce => {
                    if let Some(pos) = sent_ids.iter().position(|(id, _)| *id == ack.pkid) {
                        let (_, index) = sent_ids.remove(pos);
                        done.insert(index);
                        acked.push(index);
                    }
                }
                Event::Incoming(Packet::PubComp(comp)) if qos == QoS::ExactlyOnce => {
                    if let Some(pos) = sent_ids.iter().position(|(id, _)| *id == comp.pkid) {
                        let (_, index) = sent_ids.remove(pos);
                        done.insert(index);
                        acked.push(index);
                    }
                }
                Event::Incoming(Packet::ConnAck(ack)) if ack.code != rumqttc::ConnectReturnCode::Success => {
                    return Err(format!("connection refused: {:?}", ack.code));
                }
                _ => {}
            }
        }
    }
}

/// Publishes on the kept session (or a new one) and waits for the acknowledgements; a kept
/// session that fails before any acknowledgement is replaced once (the broker may have closed it
/// meanwhile). Runs on the worker thread. Returns the acknowledged indices, whether a new session
/// was opened, and the failure.
fn publish_round(
    session: &mut Option<(Client, Connection)>,
    options: MqttOptions,
    messages: &[(String, Vec<u8>)],
    qos: QoS,
    retain: bool,
    timeout: Duration,
) -> (Vec<usize>, bool, Result<(), String>) {
    let mut opened = false;
    for attempt in 0..2 {
        let reused = session.is_some();
        let (client, mut connection) = match session.take() {
            Some(s) => s,
            None => {
                opened = true;
                Client::new(options.clone(), 64)
            }
        };
        let mut acked = Vec::new();
        let result = MqttOutputBot::publish(&client, &mut connection, messages, qos, retain, timeout, &mut acked);
        match result {
            Ok(()) => {
                *session = Some((client, connection));
                return (acked, opened, Ok(()));
            }
            Err(_) if reused && attempt == 0 && acked.is_empty() => continue,
            Err(why) => return (acked, opened, Err(why)),
        }
    }
    (Vec::new(), opened, Err("cannot publish".to_string()))
}

impl OutputBot for MqttOutputBot {
    fn write(&mut self, events: &[Message], ctx: &mut Context<'_>) -> Result<(), BotError> {
        let pending = self.delivered.pending(events);
        let mut indices = Vec::with_capacity(events.len());
        let mut messages: Vec<(String, Vec<u8>)> = Vec::with_capacity(events.len());
        for (i, event) in events.iter().enumerate() {
            let topic = self.topic.render(event).map_err(|e| BotError::Invalid(format!("topic: {e}")))?;
            let body = export_event(event, &self.flags)?.into_bytes();
            if pending[i] {
                indices.push(i);
                messages.push((topic, body));
            }
        }
        if messages.is_empty() {
            self.delivered.acknowledged(events);
            return Ok(());
        }
        if self.worker.is_none() {
            let worker = Worker::start(&format!("mqtt-{}", ctx.bot_id), None).map_err(BotError::Fatal)?;
            self.worker = Some(worker);
        }
        let Some(worker) = &self.worker else {
            return Err(BotError::Fatal("the broker thread is not running".to_string()));
        };
        let options = self.options(ctx.bot_id);
        let (qos, retain, timeout) = (self.qos, self.params.retain, self.timeout);
        let outcome = worker.call(move |session| publish_round(session, options, &messages, qos, retain, timeout));
        let (acked, opened, result) = match outcome {
            Ok(outcome) => outcome,
            Err(why) => {
                self.worker = None;
                (Vec::new(), false, Err(why))
            }
        };
        for i in acked {
            self.delivered.record(&events[indices[i]]);
        }
        match result {
            Ok(()) => {
                if opened {
                    ctx.log.log(Level::Info, &format!("Connected to {}.", self.target()));
                }
                self.delivered.acknowledged(events);
                Ok(())
            }
            Err(why) => {
                ctx.log.log(Level::Error, &format!("Publishing to {} failed: {why}.", self.target()));
                Err(BotError::Unavailable(format!("broker {}: {why}", self.target())))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::net::{SocketAddr, TcpStream};

    use serde_json::{json, Value};

    use super::*;
    use crate::bots::outputs::test_support::{event, harmonization};
    use crate::bots::{MemoryLog, MemoryState};

    fn broker_available() -> bool {
        let addr: SocketAddr = "127.0.0.1:1883".parse().unwrap();
        if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
            return true;
        }
        assert!(
            std::env::var("INTELMQ_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "Mosquitto is not reachable and INTELMQ_REQUIRE_SERVICES=1"
        );
        eprintln!("mqtt output: skipped, no MQTT broker at 127.0.0.1:1883");
        false
    }

    fn write(bot: &mut MqttOutputBot, events: &[Message]) -> Result<(), BotError> {
        let h = harmonization();
        let mut state = MemoryState::default();
        let mut log = MemoryLog::default();
        let mut ctx = Context {
            bot_id: "mqtt-output",
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

    /// A subscriber on the test side (rumqttc), subscribed before the bot publishes.
    fn subscriber(topic: &str) -> (Client, Connection) {
        let id = format!("intelmq-test-sub-{}", std::process::id());
        let mut options = MqttOptions::new(id, "127.0.0.1", 1883);
        options.set_clean_session(true);
        let (client, mut connection) = Client::new(options, 16);
        client.subscribe(topic, QoS::AtLeastOnce).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            assert!(Instant::now() < deadline, "no SUBACK");
            if let Ok(Ok(Event::Incoming(Packet::SubAck(_)))) = connection.recv_timeout(Duration::from_secs(1)) {
                break;
            }
        }
        (client, connection)
    }

    fn receive(connection: &mut Connection, n: usize) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while out.len() < n && Instant::now() < deadline {
            if let Ok(Ok(Event::Incoming(Packet::Publish(p)))) = connection.recv_timeout(Duration::from_millis(500)) {
                out.push((p.topic.clone(), serde_json::from_slice(&p.payload).unwrap()));
            }
        }
        out
    }

    #[test]
    fn a_batch_is_published_and_acknowledged() {
        if !broker_available() {
            return;
        }
        let base = format!(
            "intelmq-test/{}/{}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
        );
        let (_sub, mut incoming) = subscriber(&format!("{base}/#"));
        let h = harmonization();
        let events: Vec<Message> = (0..150)
            .map(|i| event(&h, json!({"feed.name": if i % 2 == 0 { "a" } else { "b" }, "extra.i": i, "raw": "YQ=="})))
            .collect();
        let params = json!({"topic": format!("{base}/{{ev[feed.name]}}"), "client_id": format!("intelmq-test-{}", std::process::id())});
        let mut bot = MqttOutputBot::build(serde_json::from_value(params).unwrap()).unwrap();
        write(&mut bot, &events[..100]).unwrap();
        write(&mut bot, &events[100..]).unwrap();
        let got = receive(&mut incoming, 150);
        assert_eq!(got.len(), 150);
        assert_eq!(got[0].0, format!("{base}/a"));
        assert_eq!(got[1].0, format!("{base}/b"));
        assert_eq!(got[3].1, json!({"extra.i": 3, "feed.name": "b"}));
    }

    #[test]
    fn an_unreachable_broker_is_unavailable() {
        let h = harmonization();
        let params = json!({"port": 1, "timeout": 2});
        let mut bot = MqttOutputBot::build(serde_json::from_value(params).unwrap()).unwrap();
        let err = write(&mut bot, &[event(&h, json!({"feed.name": "a"}))]).unwrap_err();
        assert!(matches!(err, BotError::Unavailable(_)), "{err:?}");
    }

    #[test]
    fn parameters_are_checked() {
        let bad = |p: Value| MqttOutputBot::build(serde_json::from_value(p).unwrap()).err().map(|e| e.key);
        assert_eq!(bad(json!({"qos": 3})), Some("qos".into()));
        assert_eq!(bad(json!({"topic": "{x}"})), Some("topic".into()));
        assert_eq!(bad(json!({"qos": "2"})), None);
        let d = serde_json::to_value(MqttOutputParams::default()).unwrap();
        assert_eq!(d["qos"], json!(1));
        assert_eq!(d["port"], json!(1883));
    }
}
