//! `intelmq.bots.experts.filter.expert`: keeps or drops a message by one key/value condition
//! (`filter_key`, `filter_value`, `filter_action` keep|drop, `filter_regex` for a regex search in
//! `str(value)` instead of Python equality) and/or by a time window on `time.source`
//! (`not_before`/`not_after`, absolute or relative such as `"2 days"`).
//!
//! Paths as in IntelMQ: a kept message goes to `_default`; besides, the bot sends to the
//! permissive paths `filter_match`, `filter_no_match` and `action_other` (the runtime drops
//! messages for paths that are not configured). A message outside the time window is dropped
//! before the key/value filter is looked at. Reports are filtered like events.
//!
//! Relative times count back from the step's clock (`ctx.now()`). Absolute times without a zone
//! are taken as UTC (IntelMQ would fail comparing them).

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ExpertBot, Level, Outbox, ParamError};
use crate::message::types::is_falsy;
use crate::message::wire::python_str;
use crate::message::{datetime, Message};

/// Parameters of the filter expert (IntelMQ's names and defaults).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilterExpertParams {
    /// The key the value filter looks at; default null (no value filter).
    pub filter_key: Option<String>,
    /// The value (or regex with `filter_regex`) to compare with; default null.
    pub filter_value: Option<Value>,
    /// `keep` or `drop` the matching messages; default null (no value filter).
    pub filter_action: Option<String>,
    /// A true value makes `filter_value` a regex searched in the value's text; default null.
    pub filter_regex: Option<Value>,
    /// Drop messages whose `time.source` is before this time (absolute or relative); default null.
    pub not_before: Option<String>,
    /// Drop messages whose `time.source` is after this time (absolute or relative); default null.
    pub not_after: Option<String>,
}

/// A time bound: an absolute instant, or a span back from now.
#[derive(Clone, Copy, Debug, PartialEq)]
enum TimeBound {
    Absolute(DateTime<Utc>),
    Relative(Duration),
}

/// IntelMQ's `TIMESPANS` (minutes per unit).
const TIMESPANS: [(&str, i64); 5] =
    [("hour", 60), ("day", 24 * 60), ("week", 7 * 24 * 60), ("month", 30 * 24 * 60), ("year", 365 * 24 * 60)];

/// IntelMQ `parse_relative`: `"<n> <unit>[s]"` with a unit of [`TIMESPANS`], in minutes.
pub fn parse_relative(text: &str) -> Option<i64> {
    // `^(\d+)\s+(\w+[^s])s?$`
    let re = Regex::new(r"^(\d+)\s+(\w+[^s])s?$").ok()?;
    let caps = re.captures(text)?;
    let n: i64 = caps.get(1)?.as_str().parse().ok()?;
    let unit = caps.get(2)?.as_str();
    TIMESPANS.iter().find(|(name, _)| *name == unit).map(|(_, minutes)| n * minutes)
}

/// IntelMQ decides by the presence of a timespan name whether the value is relative.
fn parse_time_bound(key: &str, text: &str) -> Result<TimeBound, ParamError> {
    if TIMESPANS.iter().any(|(name, _)| text.contains(name)) {
        let minutes =
            parse_relative(text).ok_or_else(|| ParamError::new(key, format!("cannot parse relative time `{text}`")))?;
        return Ok(TimeBound::Relative(Duration::minutes(minutes)));
    }
    let canonical =
        datetime::parse_fuzzy(text).ok_or_else(|| ParamError::new(key, format!("cannot parse time `{text}`")))?;
    parse_canonical(&canonical)
        .map(TimeBound::Absolute)
        .ok_or_else(|| ParamError::new(key, format!("cannot parse time `{text}`")))
}

/// A canonical IntelMQ UTC time (`YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00`).
fn parse_canonical(text: &str) -> Option<DateTime<Utc>> {
    let naive = text.strip_suffix("+00:00")?;
    NaiveDateTime::parse_from_str(naive, "%Y-%m-%dT%H:%M:%S%.f").ok().map(|n| n.and_utc())
}

/// Python's `a == b` for JSON-held values: numbers and booleans compare numerically.
pub fn py_eq(a: &Value, b: &Value) -> bool {
    fn num(v: &Value) -> Option<f64> {
        match v {
            Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            Value::Number(n) => n.as_f64(),
            _ => None,
        }
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if !x.is_f64() && !y.is_f64() => x == y,
        (Value::Number(_) | Value::Bool(_), Value::Number(_) | Value::Bool(_)) => num(a) == num(b),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| py_eq(p, q)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| py_eq(v, w)))
        }
        _ => a == b,
    }
}

/// `event.get(key)`: the value, or for a JSONDict field the object of its sub-keys.
fn event_value(event: &Message, key: &str) -> Option<Value> {
    event.get(key).cloned().or_else(|| event.get_jsondict(key))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Keep,
    Drop,
}

/// The key/value condition.
struct ValueFilter {
    key: String,
    value: Value,
    action: Action,
    regex: Option<Regex>,
}

/// Filters messages by a key/value condition and a time window.
pub struct FilterExpertBot {
    value_filter: Option<ValueFilter>,
    not_before: Option<TimeBound>,
    not_after: Option<TimeBound>,
    /// The time window is active (IntelMQ also counts empty strings as given).
    time_filter: bool,
    /// Info lines from the start, logged with the first message.
    pending_info: Vec<String>,
}

impl BuildBot for FilterExpertBot {
    type Params = FilterExpertParams;

    fn build(params: FilterExpertParams) -> Result<Self, ParamError> {
        let mut pending_info = Vec::new();
        let mut bound = |key: &str, value: &Option<String>| -> Result<Option<TimeBound>, ParamError> {
            match value.as_deref() {
                Some(text) if !text.is_empty() => {
                    let parsed = parse_time_bound(key, text)?;
                    pending_info.push(match parsed {
                        TimeBound::Relative(d) => {
                            format!("Filtering out events to (relative time) {} minutes.", d.num_minutes())
                        }
                        TimeBound::Absolute(t) => format!("Filtering out events to (absolute time) {t}."),
                    });
                    Ok(Some(parsed))
                }
                _ => Ok(None),
            }
        };
        let not_before = bound("not_before", &params.not_before)?;
        let not_after = bound("not_after", &params.not_after)?;
        let time_filter = params.not_before.is_some() || params.not_after.is_some();

        let value_filter = match (&params.filter_key, &params.filter_value, params.filter_action.as_deref()) {
            (None, _, _) => {
                pending_info.push("No filter_key parameter found.".to_string());
                None
            }
            (Some(_), None, _) => {
                pending_info.push("No filter_value parameter found.".to_string());
                None
            }
            (Some(_), Some(_), None) => {
                pending_info.push("No filter_action parameter found.".to_string());
                None
            }
            (Some(key), Some(value), Some(action)) => {
                let action = match action {
                    "keep" => Some(Action::Keep),
                    "drop" => Some(Action::Drop),
                    _ => {
                        pending_info.push("Filter_action parameter definition unknown.".to_string());
                        None
                    }
                };
                match action {
                    None => None,
                    Some(action) => {
                        let regex = match &params.filter_regex {
                            Some(flag) if !is_falsy(flag) => {
                                let Value::String(pattern) = value else {
                                    return Err(ParamError::new(
                                        "filter_value",
                                        format!("a regex filter needs a string, got {value}"),
                                    ));
                                };
                                Some(Regex::new(pattern).map_err(|e| {
                                    ParamError::new("filter_value", format!("invalid regex `{pattern}`: {e}"))
                                })?)
                            }
                            _ => None,
                        };
                        Some(ValueFilter { key: key.clone(), value: value.clone(), action, regex })
                    }
                }
            }
        };
        if value_filter.is_none() && !time_filter {
            return Err(ParamError::new("filter_key", "no relevant filter configuration found"));
        }
        Ok(FilterExpertBot { value_filter, not_before, not_after, time_filter, pending_info })
    }
}

impl FilterExpertBot {
    /// True when the time window filters the message out.
    fn outside_window(&self, event: &Message, ctx: &mut Context<'_>) -> bool {
        let Some(source) = event.get("time.source") else {
            return false;
        };
        let text = python_str(source);
        let Some(event_time) =
            parse_canonical(&text).or_else(|| datetime::parse_fuzzy(&text).and_then(|c| parse_canonical(&c)))
        else {
            ctx.log.log(Level::Error, &format!("Could not parse time.source {text}."));
            return false;
        };
        let now = ctx.now();
        let after = match self.not_after {
            Some(TimeBound::Absolute(t)) => event_time > t,
            Some(TimeBound::Relative(d)) => event_time > now - d,
            None => false,
        };
        let before = match self.not_before {
            Some(TimeBound::Absolute(t)) => event_time < t,
            Some(TimeBound::Relative(d)) => event_time < now - d,
            None => false,
        };
        if after || before {
            ctx.log.log(Level::Debug, &format!("Filtered out event with time.source {text}."));
        }
        after || before
    }

    fn matches(filter: &ValueFilter, event: &Message) -> bool {
        let Some(value) = event_value(event, &filter.key) else {
            return false;
        };
        match &filter.regex {
            Some(re) => re.is_match(&python_str(&value)),
            None => py_eq(&value, &filter.value),
        }
    }
}

impl ExpertBot for FilterExpertBot {
    fn process(&mut self, event: Message, ctx: &mut Context<'_>, out: &mut Outbox) -> Result<(), BotError> {
        for line in self.pending_info.drain(..) {
            ctx.log.log(Level::Info, &line);
        }
        if self.time_filter && self.outside_window(&event, ctx) {
            return Ok(());
        }
        let Some(filter) = &self.value_filter else {
            out.send(event);
            return Ok(());
        };
        let matched = Self::matches(filter, &event);
        match (filter.action, matched) {
            (Action::Drop, true) => {
                out.send_to("action_other", event.clone());
                out.send_to("filter_match", event);
            }
            (Action::Drop, false) => {
                out.send_to("filter_no_match", event.clone());
                out.send(event);
            }
            (Action::Keep, true) => {
                out.send_to("filter_match", event.clone());
                out.send(event);
            }
            (Action::Keep, false) => {
                out.send_to("action_other", event.clone());
                out.send_to("filter_no_match", event);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::bots::experts::test_support::{event, harmonization};
    use crate::bots::{Clock, FixedClock, MemoryLog, MemoryState};

    fn run(params: Value, fields: Value) -> Vec<(String, Message)> {
        run_at(&crate::bots::SystemClock, params, fields)
    }

    fn run_at(clock: &dyn Clock, params: Value, fields: Value) -> Vec<(String, Message)> {
        let h = harmonization();
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let root = std::path::Path::new("/");
        let mut ctx =
            Context { bot_id: "filter-expert", harmonization: &h, root, state: &mut state, log: &mut log, clock };
        let mut bot = FilterExpertBot::build(serde_json::from_value(params).unwrap()).unwrap();
        let mut out = Outbox::default();
        bot.process(event(&h, fields), &mut ctx, &mut out).unwrap();
        out.sent
    }

    fn paths(sent: &[(String, Message)]) -> Vec<&str> {
        sent.iter().map(|(p, _)| p.as_str()).collect()
    }

    const EVENT: fn() -> Value = || {
        json!({"classification.type": "unauthorised-information-modification",
               "time.source": "2005-01-01T00:00:00+00:00", "source.asn": 123,
               "extra.test1": true, "extra.test2": "bla"})
    };

    #[test]
    fn drop_sends_a_match_to_match_and_other_paths_only() {
        let sent = run(json!({"filter_key": "extra.test1", "filter_value": true, "filter_action": "drop"}), EVENT());
        assert_eq!(paths(&sent), ["action_other", "filter_match"]);
    }

    #[test]
    fn keep_forwards_a_match_and_diverts_a_miss() {
        let params = json!({"filter_key": "extra.test2", "filter_value": "bla", "filter_action": "keep"});
        assert_eq!(paths(&run(params, EVENT())), ["filter_match", "_default"]);
        let params = json!({"filter_key": "extra.test2", "filter_value": "foo", "filter_action": "keep"});
        assert_eq!(paths(&run(params, EVENT())), ["action_other", "filter_no_match"]);
    }

    #[test]
    fn equality_is_pythons() {
        assert!(py_eq(&json!(1), &json!(true)));
        assert!(py_eq(&json!(1.0), &json!(1)));
        assert!(!py_eq(&json!(123), &json!("123")));
        let params = json!({"filter_key": "source.asn", "filter_value": "", "filter_action": "drop",
                            "not_before": "", "not_after": ""});
        assert_eq!(paths(&run(params, EVENT())), ["filter_no_match", "_default"]);
    }

    #[test]
    fn regex_searches_the_value_text() {
        let params = json!({"filter_key": "source.asn", "filter_value": "^12", "filter_action": "keep",
                            "filter_regex": "true"});
        assert_eq!(paths(&run(params, EVENT())), ["filter_match", "_default"]);
    }

    #[test]
    fn time_window_drops_outside_and_forwards_inside() {
        assert!(run(json!({"not_before": "2006-01-01T00:00:00+00:00"}), EVENT()).is_empty());
        assert_eq!(paths(&run(json!({"not_after": "2006-01-01"}), EVENT())), ["_default"]);
        assert_eq!(paths(&run(json!({"not_after": "2 days"}), EVENT())), ["_default"]);
        assert!(run(json!({"not_before": "2 weeks"}), EVENT()).is_empty());
    }

    #[test]
    fn relative_windows_are_measured_from_the_contexts_clock() {
        let params = json!({"not_before": "1 week"});
        let clock = FixedClock::parse("2005-01-05T00:00:00Z").unwrap();
        assert_eq!(paths(&run_at(&clock, params.clone(), EVENT())), ["_default"]);
        assert!(run_at(&clock.advanced(8 * 24 * 3600), params, EVENT()).is_empty());
    }

    #[test]
    fn relative_times_are_intelmqs() {
        assert_eq!(parse_relative("1 month"), Some(30 * 24 * 60));
        assert_eq!(parse_relative("30 years"), Some(30 * 365 * 24 * 60));
        assert_eq!(parse_relative("3 minutes"), None);
    }

    #[test]
    fn no_configuration_is_refused() {
        assert!(FilterExpertBot::build(FilterExpertParams::default()).is_err());
    }
}
