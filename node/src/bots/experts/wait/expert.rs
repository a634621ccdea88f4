//! `intelmq.bots.experts.wait.expert`: forwards each message after sleeping `sleep_time` seconds
//! (or at once when it is not set).
//!
//! IntelMQ's other mode, waiting until a Redis list (`queue_name`) is short enough, has no Redis to
//! look at here: its parameters are accepted so that configurations load, but setting
//! `queue_name` is refused when the bot is built.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ExpertBot, Outbox, ParamError};
use crate::message::types::parse_py_float;
use crate::message::Message;

/// A number given as a JSON number or a numeric string (null stays null).
fn lenient_opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::Number(n) => Ok(n.as_f64()),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => {
            parse_py_float(&s).map(Some).ok_or_else(|| serde::de::Error::custom(format!("`{s}` is not a number")))
        }
        other => Err(serde::de::Error::custom(format!("{other} is not a number"))),
    }
}

/// Parameters of the wait expert (IntelMQ's names and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WaitExpertParams {
    /// Seconds to sleep before forwarding each message; default null (no sleep).
    #[serde(deserialize_with = "lenient_opt_f64")]
    pub sleep_time: Option<f64>,
    /// Redis queue mode (not supported; must stay null); default null.
    pub queue_name: Option<String>,
    /// Redis queue mode only; default 2.
    pub queue_db: Value,
    /// Redis queue mode only; default "localhost".
    pub queue_host: Value,
    /// Redis queue mode only; default 6379.
    pub queue_port: Value,
    /// Redis queue mode only; default null.
    pub queue_password: Value,
    /// Redis queue mode only; default 0.
    pub queue_size: Value,
    /// Redis queue mode only; default 0.05.
    pub queue_polling_interval: Value,
}

impl Default for WaitExpertParams {
    fn default() -> Self {
        WaitExpertParams {
            sleep_time: None,
            queue_name: None,
            queue_db: Value::from(2),
            queue_host: Value::from("localhost"),
            queue_port: Value::from(6379),
            queue_password: Value::Null,
            queue_size: Value::from(0),
            queue_polling_interval: Value::from(0.05),
        }
    }
}

/// Delays messages.
pub struct WaitExpertBot {
    sleep: Option<Duration>,
}

impl BuildBot for WaitExpertBot {
    type Params = WaitExpertParams;

    fn build(params: WaitExpertParams) -> Result<Self, ParamError> {
        if let Some(queue) = params.queue_name.filter(|q| !q.is_empty()) {
            return Err(ParamError::new(
                "queue_name",
                format!("waiting on the redis queue `{queue}` is not supported (there is no redis); use `sleep_time`"),
            ));
        }
        let sleep = match params.sleep_time {
            None => None,
            Some(s) if s.is_finite() && s >= 0.0 => (s > 0.0).then(|| Duration::from_secs_f64(s)),
            Some(s) => return Err(ParamError::new("sleep_time", format!("{s} is not a number of seconds"))),
        };
        Ok(WaitExpertBot { sleep })
    }
}

impl ExpertBot for WaitExpertBot {
    fn process(&mut self, event: Message, _ctx: &mut Context<'_>, out: &mut Outbox) -> Result<(), BotError> {
        if let Some(sleep) = self.sleep {
            std::thread::sleep(sleep);
        }
        out.send(event);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Instant;

    use serde_json::json;

    use super::*;
    use crate::bots::experts::test_support::{event, harmonization};
    use crate::bots::{MemoryLog, MemoryState};

    fn run(params: Value) -> Duration {
        let h = harmonization();
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let root = std::path::Path::new("/");
        let mut ctx = Context {
            bot_id: "wait",
            harmonization: &h,
            root,
            state: &mut state,
            log: &mut log,
            clock: &crate::bots::SystemClock,
        };
        let mut bot = WaitExpertBot::build(serde_json::from_value(params).unwrap()).unwrap();
        let mut out = Outbox::default();
        let start = Instant::now();
        bot.process(event(&h, json!({"feed.name": "x"})), &mut ctx, &mut out).unwrap();
        assert_eq!(out.sent.len(), 1);
        start.elapsed()
    }

    #[test]
    fn sleeps_only_when_asked() {
        assert!(run(json!({})) < Duration::from_millis(100));
        assert!(run(json!({"sleep_time": "0.2"})) >= Duration::from_millis(200));
    }

    #[test]
    fn queue_mode_is_refused_with_its_parameter_named() {
        let params: WaitExpertParams =
            serde_json::from_value(json!({"queue_name": "x-queue", "queue_size": 10})).unwrap();
        assert_eq!(WaitExpertBot::build(params).err().unwrap().key, "queue_name");
    }
}
