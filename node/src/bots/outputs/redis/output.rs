//! `intelmq.bots.outputs.redis.output`: pushes each event onto the Redis list `redis_queue` (in
//! database `redis_db`) as IntelMQ's `to_json(hierarchical_output, with_type)` — sorted keys,
//! `raw` included — with `LPUSH`, so the newest event is at the head, as IntelMQ leaves it.
//!
//! A `write` pushes the whole batch with one `LPUSH key e1 e2 ...` (one command, applied by Redis
//! all at once) and returns `Ok` when Redis has answered with the new length. A refused or broken
//! connection, a timeout (`redis_timeout`, in milliseconds as IntelMQ documents it) or a Redis that
//! cannot take writes for now (loading, read-only replica, out of memory) make the bot wait and
//! retry; if the connection breaks after Redis applied the push but before its answer arrives,
//! the batch is pushed again (at-least-once). A key holding another type than a list, or a refused
//! password, stops the bot.

use std::time::Duration;

use redis::{ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo};
use serde::{Deserialize, Serialize};

use crate::bots::experts::asn_lookup::lenient;
use crate::bots::outputs::amqptopic::shared::de_opt_string;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, Level, OutputBot, ParamError};
use crate::message::{ExportOptions, Message};

/// Parameters of the Redis output (IntelMQ's names and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisOutputParams {
    /// The Redis server; default "127.0.0.1".
    pub redis_server_ip: String,
    /// The Redis port; default 6379.
    #[serde(deserialize_with = "lenient::u16")]
    pub redis_server_port: u16,
    /// The database number; default 2.
    #[serde(deserialize_with = "lenient::u64")]
    pub redis_db: u64,
    /// The password; default null.
    #[serde(deserialize_with = "de_opt_string")]
    pub redis_password: Option<String>,
    /// The list to push onto; default null (must be set).
    #[serde(deserialize_with = "de_opt_string")]
    pub redis_queue: Option<String>,
    /// Connection and command timeout in milliseconds; default 5000.
    #[serde(deserialize_with = "lenient::u64")]
    pub redis_timeout: u64,
    /// Nest the dotted keys into objects; default false.
    #[serde(deserialize_with = "lenient::bool")]
    pub hierarchical_output: bool,
    /// Include `__type`; default true.
    #[serde(deserialize_with = "lenient::bool")]
    pub with_type: bool,
}

impl Default for RedisOutputParams {
    fn default() -> Self {
        RedisOutputParams {
            redis_server_ip: "127.0.0.1".to_string(),
            redis_server_port: 6379,
            redis_db: 2,
            redis_password: None,
            redis_queue: None,
            redis_timeout: 5000,
            hierarchical_output: false,
            with_type: true,
        }
    }
}

/// Pushes events onto a Redis list.
pub struct RedisOutputBot {
    client: redis::Client,
    queue: String,
    timeout: Duration,
    opts: ExportOptions,
    target: String,
    connection: Option<redis::Connection>,
}

impl BuildBot for RedisOutputBot {
    type Params = RedisOutputParams;

    fn build(params: RedisOutputParams) -> Result<Self, ParamError> {
        let Some(queue) = params.redis_queue.clone().filter(|q| !q.is_empty()) else {
            return Err(ParamError::new("redis_queue", "no list given"));
        };
        let db = i64::try_from(params.redis_db)
            .map_err(|_| ParamError::new("redis_db", format!("{} is not a database number", params.redis_db)))?;
        let mut settings = RedisConnectionInfo::default().set_db(db);
        if let Some(password) = params.redis_password.as_deref().filter(|p| !p.is_empty()) {
            settings = settings.set_password(password);
        }
        let info = ConnectionAddr::Tcp(params.redis_server_ip.clone(), params.redis_server_port)
            .into_connection_info()
            .map_err(|e| ParamError::new("redis_server_ip", e.to_string()))?
            .set_redis_settings(settings);
        let client = redis::Client::open(info).map_err(|e| ParamError::new("redis_server_ip", e.to_string()))?;
        let timeout = Duration::from_millis(params.redis_timeout.max(1));
        Ok(RedisOutputBot {
            client,
            queue,
            timeout,
            opts: ExportOptions {
                hierarchical: params.hierarchical_output,
                with_type: params.with_type,
                jsondict_as_string: false,
            },
            target: format!("redis {}:{} db {}", params.redis_server_ip, params.redis_server_port, params.redis_db),
            connection: None,
        })
    }
}

/// How a Redis error is handled.
fn classify(e: &redis::RedisError, target: &str, queue: &str) -> BotError {
    use redis::{ErrorKind, ServerErrorKind};
    let text = format!("{target}: cannot push onto `{queue}`: {e}");
    if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal() {
        return BotError::Unavailable(text);
    }
    match e.kind() {
        ErrorKind::Server(
            ServerErrorKind::BusyLoading
            | ServerErrorKind::TryAgain
            | ServerErrorKind::ClusterDown
            | ServerErrorKind::MasterDown
            | ServerErrorKind::ReadOnly,
        ) => BotError::Unavailable(text),
        ErrorKind::AuthenticationFailed | ErrorKind::InvalidClientConfig => BotError::Fatal(text),
        _ if matches!(e.code(), Some("OOM" | "MISCONF" | "LOADING" | "READONLY" | "BUSY")) => {
            BotError::Unavailable(text)
        }
        _ if matches!(e.code(), Some("WRONGTYPE" | "NOAUTH" | "WRONGPASS" | "NOPERM")) => BotError::Fatal(text),
        _ => BotError::Transient(text),
    }
}

impl RedisOutputBot {
    fn connect(&mut self) -> Result<&mut redis::Connection, redis::RedisError> {
        if self.connection.is_none() {
            let connection = self.client.get_connection_with_timeout(self.timeout)?;
            connection.set_read_timeout(Some(self.timeout))?;
            connection.set_write_timeout(Some(self.timeout))?;
            self.connection = Some(connection);
        }
        match self.connection.as_mut() {
            Some(connection) => Ok(connection),
            None => Err(redis::RedisError::from((redis::ErrorKind::Client, "not connected"))),
        }
    }
}

impl OutputBot for RedisOutputBot {
    fn write(&mut self, events: &[Message], ctx: &mut Context<'_>) -> Result<(), BotError> {
        if events.is_empty() {
            return Ok(());
        }
        let values: Vec<String> = events.iter().map(|e| e.to_export_json(self.opts)).collect();
        let mut cmd = redis::cmd("LPUSH");
        cmd.arg(&self.queue).arg(&values);
        let result = self.connect().and_then(|connection| cmd.query::<i64>(connection));
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                self.connection = None;
                let err = classify(&e, &self.target, &self.queue);
                if matches!(err, BotError::Unavailable(_)) {
                    ctx.log.log(Level::Error, &format!("Redis connection problem, connecting again: {e}."));
                }
                Err(err)
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

    fn server_available() -> bool {
        let addr: SocketAddr = "127.0.0.1:6379".parse().unwrap();
        if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
            return true;
        }
        assert!(
            std::env::var("INTELMQ_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "Redis is not reachable and INTELMQ_REQUIRE_SERVICES=1"
        );
        eprintln!("redis output: skipped, no Redis at 127.0.0.1:6379");
        false
    }

    fn unique() -> String {
        format!(
            "intelmq-test-redis-output-{}-{}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
        )
    }

    fn write(bot: &mut RedisOutputBot, events: &[Message]) -> Result<(), BotError> {
        let h = harmonization();
        let mut state = MemoryState::default();
        let mut log = MemoryLog::default();
        let mut ctx = Context {
            bot_id: "redis-output",
            harmonization: &h,
            root: std::path::Path::new("/"),
            state: &mut state,
            log: &mut log,
            clock: &crate::bots::SystemClock,
        };
        bot.write(events, &mut ctx)
    }

    fn side(db: i64) -> redis::Connection {
        let info = ConnectionAddr::Tcp("127.0.0.1".into(), 6379)
            .into_connection_info()
            .unwrap()
            .set_redis_settings(RedisConnectionInfo::default().set_db(db));
        redis::Client::open(info).unwrap().get_connection().unwrap()
    }

    #[test]
    fn a_batch_is_pushed_in_order_with_type_and_raw() {
        if !server_available() {
            return;
        }
        let key = unique();
        let h = harmonization();
        let events =
            [event(&h, json!({"source.ip": "192.0.2.1", "raw": "YQ=="})), event(&h, json!({"source.ip": "192.0.2.2"}))];
        let params = json!({"redis_queue": key, "redis_db": "4", "redis_timeout": "50000"});
        let mut bot = RedisOutputBot::build(serde_json::from_value(params).unwrap()).unwrap();
        write(&mut bot, &events).unwrap();
        let mut c = side(4);
        let list: Vec<String> = redis::cmd("LRANGE").arg(&key).arg(0).arg(-1).query(&mut c).unwrap();
        let _: i64 = redis::cmd("DEL").arg(&key).query(&mut c).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0], r#"{"__type": "Event", "source.ip": "192.0.2.2"}"#);
        let first: Value = serde_json::from_str(&list[1]).unwrap();
        assert_eq!(first["raw"], json!("YQ=="));
    }

    #[test]
    fn hierarchical_without_type() {
        if !server_available() {
            return;
        }
        let key = unique();
        let h = harmonization();
        let params = json!({"redis_queue": key, "redis_db": 4, "hierarchical_output": true, "with_type": false});
        let mut bot = RedisOutputBot::build(serde_json::from_value(params).unwrap()).unwrap();
        write(&mut bot, &[event(&h, json!({"source.ip": "192.0.2.1"}))]).unwrap();
        let mut c = side(4);
        let list: Vec<String> = redis::cmd("LRANGE").arg(&key).arg(0).arg(-1).query(&mut c).unwrap();
        let _: i64 = redis::cmd("DEL").arg(&key).query(&mut c).unwrap();
        assert_eq!(list, vec![r#"{"source": {"ip": "192.0.2.1"}}"#.to_string()]);
    }

    #[test]
    fn a_key_of_another_type_stops_the_bot() {
        if !server_available() {
            return;
        }
        let key = unique();
        let mut c = side(4);
        let _: () = redis::cmd("SET").arg(&key).arg("x").query(&mut c).unwrap();
        let h = harmonization();
        let params = json!({"redis_queue": key, "redis_db": 4});
        let mut bot = RedisOutputBot::build(serde_json::from_value(params).unwrap()).unwrap();
        let err = write(&mut bot, &[event(&h, json!({"source.ip": "192.0.2.1"}))]).unwrap_err();
        let _: i64 = redis::cmd("DEL").arg(&key).query(&mut c).unwrap();
        assert!(matches!(err, BotError::Fatal(_)), "{err:?}");
    }

    #[test]
    fn an_unreachable_server_is_unavailable() {
        let h = harmonization();
        let params = json!({"redis_queue": "k", "redis_server_port": 1, "redis_timeout": 500});
        let mut bot = RedisOutputBot::build(serde_json::from_value(params).unwrap()).unwrap();
        let err = write(&mut bot, &[event(&h, json!({"source.ip": "192.0.2.1"}))]).unwrap_err();
        assert!(matches!(err, BotError::Unavailable(_)), "{err:?}");
    }

    #[test]
    fn defaults_are_intelmqs_and_the_list_is_required() {
        let d = serde_json::to_value(RedisOutputParams::default()).unwrap();
        assert_eq!(d["redis_db"], json!(2));
        assert_eq!(d["redis_timeout"], json!(5000));
        assert_eq!(d["with_type"], json!(true));
        assert_eq!(RedisOutputBot::build(RedisOutputParams::default()).err().unwrap().key, "redis_queue");
    }
}
