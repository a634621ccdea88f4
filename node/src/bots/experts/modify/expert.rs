//! `intelmq.bots.experts.modify.expert`: applies the rules of a JSON rule file (IntelMQ's format:
//! `[{"rulename": .., "if": {field: condition}, "then": {field: value}}]`) to each event.
//!
//! A condition `""` means the field must be absent; another string is a regex searched in the
//! field's text (case-insensitive unless `case_sensitive`); any other JSON value must equal the
//! field's value (Python equality). Every matching rule applies in file order, up to
//! `maximum_matches`. A `then` value is a Python format string: `{msg[field]}` is a field of the
//! event, `{matches[field][n]}` group `n` (or a named group) of that field's regex match. An action
//! that names a missing field or match is skipped.
//!
//! The rule file is read when the bot is built if its path is absolute, else on the first message
//! (relative to the node root). The old dict-based rule format of IntelMQ 1.x is refused.

use std::path::Path;

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ExpertBot, Level, Outbox, ParamError};
use crate::message::wire::{python_repr, python_str};
use crate::message::{AddOptions, Message};

/// A boolean given as JSON bool or as `"true"`/`"false"`.
fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match Value::deserialize(d)? {
        Value::Bool(b) => Ok(b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        other => Err(serde::de::Error::custom(format!("{other} is not a boolean"))),
    }
}

/// An optional count given as a number, a numeric string or null.
fn lenient_opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::Number(n) => n.as_u64().map(Some).ok_or_else(|| serde::de::Error::custom(format!("{n} is not a count"))),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => {
            s.trim().parse().map(Some).map_err(|_| serde::de::Error::custom(format!("`{s}` is not a count")))
        }
        other => Err(serde::de::Error::custom(format!("{other} is not a count"))),
    }
}

/// Parameters of the modify expert (IntelMQ's names and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModifyExpertParams {
    /// The JSON rule file; default "/opt/intelmq/var/lib/bots/modify/modify.conf".
    pub configuration_path: String,
    /// Regexes are case-sensitive; default true.
    #[serde(deserialize_with = "lenient_bool")]
    pub case_sensitive: bool,
    /// Stop after this many matching rules (null or 0 = no limit); default null.
    #[serde(deserialize_with = "lenient_opt_u64")]
    pub maximum_matches: Option<u64>,
    /// Replace fields that are already set; default true (as IntelMQ's code; its docs say false).
    #[serde(deserialize_with = "lenient_bool")]
    pub overwrite: bool,
}

impl Default for ModifyExpertParams {
    fn default() -> Self {
        ModifyExpertParams {
            configuration_path: "/opt/intelmq/var/lib/bots/modify/modify.conf".to_string(),
            case_sensitive: true,
            maximum_matches: None,
            overwrite: true,
        }
    }
}

/// One condition of a rule.
#[derive(Debug)]
enum Condition {
    /// `""`: the field must be absent.
    Absent,
    /// A regex searched in the field's text.
    Regex(Regex),
    /// Any other value: Python equality.
    Equals(Value),
}

/// One piece of a `then` format string.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    /// A replacement field: `msg` or `matches`, then its item keys, and the conversion.
    Field {
        root: String,
        keys: Vec<Key>,
        repr: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Key {
    Index(usize),
    Name(String),
}

/// A `then` value: a format string, or a non-string value set as it is.
#[derive(Debug)]
enum Action {
    Format(Vec<Piece>),
    Literal(Value),
}

#[derive(Debug)]
struct Rule {
    name: String,
    conditions: Vec<(String, Condition)>,
    actions: Vec<(String, Action)>,
}

/// Parses a Python format string into pieces (`{{`/`}}` escapes, `!s`/`!r` conversions; format
/// specs are not supported).
fn parse_format(text: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                literal.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                literal.push('}');
            }
            '}' => return Err(format!("single `}}` in `{text}`")),
            '{' => {
                let mut inner = String::new();
                let mut depth_bracket = false;
                loop {
                    match chars.next() {
                        None => return Err(format!("unclosed `{{` in `{text}`")),
                        Some('[') => {
                            depth_bracket = true;
                            inner.push('[');
                        }
                        Some(']') => {
                            depth_bracket = false;
                            inner.push(']');
                        }
                        Some('}') if !depth_bracket => break,
                        Some(ch) => inner.push(ch),
                    }
                }
                if !literal.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut literal)));
                }
                pieces.push(parse_field(&inner).map_err(|e| format!("{e} in `{text}`"))?);
            }
            other => literal.push(other),
        }
    }
    if !literal.is_empty() {
        pieces.push(Piece::Text(literal));
    }
    Ok(pieces)
}

/// `name[key][key]...[!conversion]` (attribute access and format specs are refused).
fn parse_field(inner: &str) -> Result<Piece, String> {
    let (name, repr) = match inner.rsplit_once('!') {
        Some((name, "s")) if !name.ends_with('[') => (name, false),
        Some((name, "r" | "a")) => (name, true),
        _ => (inner, false),
    };
    let root_end = name.find(['[', '.', ':']).unwrap_or(name.len());
    let root = &name[..root_end];
    if root.is_empty() {
        return Err("positional replacement fields are not supported".to_string());
    }
    let mut keys = Vec::new();
    let mut rest = &name[root_end..];
    while !rest.is_empty() {
        let Some(after) = rest.strip_prefix('[') else {
            return Err(format!("unsupported replacement field `{{{inner}}}`"));
        };
        let Some(end) = after.find(']') else {
            return Err(format!("missing `]` in `{{{inner}}}`"));
        };
        let key = &after[..end];
        keys.push(match key.parse::<usize>() {
            Ok(i) if key.bytes().all(|b| b.is_ascii_digit()) => Key::Index(i),
            _ => Key::Name(key.to_string()),
        });
        rest = &after[end + 1..];
    }
    Ok(Piece::Field { root: root.to_string(), keys, repr })
}

/// The groups of one regex match: by number and by name.
#[derive(Debug, Clone)]
struct MatchGroups {
    groups: Vec<Option<String>>,
    names: Vec<(String, usize)>,
}

impl MatchGroups {
    fn from_captures(re: &Regex, caps: &regex::Captures<'_>) -> Self {
        MatchGroups {
            groups: caps.iter().map(|m| m.map(|m| m.as_str().to_string())).collect(),
            names: re.capture_names().enumerate().filter_map(|(i, n)| n.map(|n| (n.to_string(), i))).collect(),
        }
    }

    /// `match.group(key)`: `Ok(None)` for a group that did not take part, `Err` for no such group.
    fn group(&self, key: &Key) -> Result<Option<&str>, String> {
        let index = match key {
            Key::Index(i) => *i,
            Key::Name(n) => {
                self.names.iter().find(|(name, _)| name == n).map(|(_, i)| *i).ok_or(format!("no group `{n}`"))?
            }
        };
        self.groups.get(index).map(|g| g.as_deref()).ok_or(format!("no group {index}"))
    }
}

/// Why a format string could not be filled.
enum FormatError {
    /// A missing key: the action is skipped (IntelMQ's `KeyError`).
    Missing(String),
    /// Anything else fails the message.
    Other(String),
}

fn event_value(event: &Message, key: &str) -> Option<Value> {
    event.get(key).cloned().or_else(|| event.get_jsondict(key))
}

fn key_text(key: &Key) -> String {
    match key {
        Key::Index(i) => i.to_string(),
        Key::Name(n) => n.clone(),
    }
}

/// Python `value.format(msg=event, matches=matches)`.
fn fill(pieces: &[Piece], event: &Message, matches: &[(String, MatchGroups)]) -> Result<String, FormatError> {
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Field { root, keys, repr } => {
                let value: Value = match root.as_str() {
                    "msg" => {
                        let Some(first) = keys.first() else {
                            return Err(FormatError::Other("`{msg}` without a field".to_string()));
                        };
                        let mut v = event_value(event, &key_text(first))
                            .ok_or_else(|| FormatError::Missing(key_text(first)))?;
                        for key in &keys[1..] {
                            v = index_value(&v, key)?;
                        }
                        v
                    }
                    "matches" => {
                        let (Some(field), Some(group)) = (keys.first(), keys.get(1)) else {
                            return Err(FormatError::Other("`{matches}` needs a field and a group".to_string()));
                        };
                        let field = key_text(field);
                        let groups = matches
                            .iter()
                            .find(|(f, _)| *f == field)
                            .map(|(_, g)| g)
                            .ok_or_else(|| FormatError::Missing(field.clone()))?;
                        let text = groups.group(group).map_err(FormatError::Other)?;
                        let mut v = text.map_or(Value::Null, |t| Value::String(t.to_string()));
                        for key in &keys[2..] {
                            v = index_value(&v, key)?;
                        }
                        v
                    }
                    other => return Err(FormatError::Missing(other.to_string())),
                };
                out.push_str(&if *repr { python_repr(&value) } else { python_str(&value) });
            }
        }
    }
    Ok(out)
}

/// `value[key]` for nested JSON values and strings (`str[i]` is one character).
fn index_value(v: &Value, key: &Key) -> Result<Value, FormatError> {
    match (v, key) {
        (Value::Object(map), _) => map.get(&key_text(key)).cloned().ok_or_else(|| FormatError::Missing(key_text(key))),
        (Value::Array(items), Key::Index(i)) => {
            items.get(*i).cloned().ok_or_else(|| FormatError::Other(format!("index {i} out of range")))
        }
        (Value::String(s), Key::Index(i)) => s
            .chars()
            .nth(*i)
            .map(|c| Value::String(c.to_string()))
            .ok_or_else(|| FormatError::Other(format!("index {i} out of range"))),
        _ => Err(FormatError::Other(format!("cannot index {v} with `{}`", key_text(key)))),
    }
}

/// Python `==` with numbers and booleans compared numerically.
fn py_eq(a: &Value, b: &Value) -> bool {
    let num = |v: &Value| match v {
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        Value::Number(n) => n.as_f64(),
        _ => None,
    };
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if !x.is_f64() && !y.is_f64() => x == y,
        (Value::Number(_) | Value::Bool(_), Value::Number(_) | Value::Bool(_)) => num(a) == num(b),
        _ => a == b,
    }
}

/// Reads and compiles the rule file.
fn load_rules(path: &Path, case_sensitive: bool) -> Result<Vec<Rule>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("cannot read modify rules {}: {e}", path.display()))?;
    let config: Value =
        serde_json::from_str(&text).map_err(|e| format!("modify rules {} are not valid JSON: {e}", path.display()))?;
    let Value::Array(items) = config else {
        return Err(format!(
            "modify rules {}: expected a list of rules (the dict-based format of IntelMQ 1.x is not supported)",
            path.display()
        ));
    };
    let mut rules = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let name = item.get("rulename").map(python_str).unwrap_or_else(|| format!("#{i}"));
        let culprit = |what: &str| format!("modify rules {}: rule `{name}`: {what}", path.display());
        let Some(Value::Object(conditions)) = item.get("if") else {
            return Err(culprit("`if` is missing or not an object"));
        };
        let Some(Value::Object(actions)) = item.get("then") else {
            return Err(culprit("`then` is missing or not an object"));
        };
        let mut rule = Rule { name: name.clone(), conditions: Vec::new(), actions: Vec::new() };
        for (field, condition) in conditions {
            let condition = match condition {
                Value::String(s) if s.is_empty() => Condition::Absent,
                Value::String(s) => Condition::Regex(
                    RegexBuilder::new(s)
                        .case_insensitive(!case_sensitive)
                        .build()
                        .map_err(|e| culprit(&format!("invalid regex `{s}` for `{field}`: {e}")))?,
                ),
                other => Condition::Equals(other.clone()),
            };
            rule.conditions.push((field.clone(), condition));
        }
        for (field, action) in actions {
            let action = match action {
                Value::String(s) => Action::Format(parse_format(s).map_err(|e| culprit(&e))?),
                other => Action::Literal(other.clone()),
            };
            rule.actions.push((field.clone(), action));
        }
        rules.push(rule);
    }
    Ok(rules)
}

/// The rules: read at build (absolute path) or on the first message (relative path).
enum Rules {
    Loaded(Vec<Rule>),
    Pending(String),
}

/// Modifies events by the rules of a rule file.
pub struct ModifyExpertBot {
    rules: Rules,
    case_sensitive: bool,
    maximum_matches: Option<u64>,
    overwrite: bool,
}

impl BuildBot for ModifyExpertBot {
    type Params = ModifyExpertParams;

    fn build(params: ModifyExpertParams) -> Result<Self, ParamError> {
        let rules = if Path::new(&params.configuration_path).is_absolute() {
            Rules::Loaded(
                load_rules(Path::new(&params.configuration_path), params.case_sensitive)
                    .map_err(|e| ParamError::new("configuration_path", e))?,
            )
        } else {
            Rules::Pending(params.configuration_path)
        };
        Ok(ModifyExpertBot {
            rules,
            case_sensitive: params.case_sensitive,
            maximum_matches: params.maximum_matches.filter(|m| *m > 0),
            overwrite: params.overwrite,
        })
    }
}

/// The match groups of a rule's regexes, or `None` when the rule does not match.
fn rule_matches(rule: &Rule, event: &Message) -> Option<Vec<(String, MatchGroups)>> {
    let mut groups = Vec::new();
    for (field, condition) in &rule.conditions {
        let value = event_value(event, field);
        match (condition, value) {
            (Condition::Absent, None) => {}
            (Condition::Absent, Some(_)) | (_, None) => return None,
            (Condition::Equals(expected), Some(v)) => {
                if !py_eq(expected, &v) {
                    return None;
                }
            }
            (Condition::Regex(re), Some(v)) => {
                let text = python_str(&v);
                let caps = re.captures(&text)?;
                groups.push((field.clone(), MatchGroups::from_captures(re, &caps)));
            }
        }
    }
    Some(groups)
}

impl ExpertBot for ModifyExpertBot {
    fn process(&mut self, mut event: Message, ctx: &mut Context<'_>, out: &mut Outbox) -> Result<(), BotError> {
        if let Rules::Pending(path) = &self.rules {
            let rules = load_rules(&ctx.resolve(path), self.case_sensitive).map_err(BotError::Fatal)?;
            self.rules = Rules::Loaded(rules);
        }
        let Rules::Loaded(rules) = &self.rules else {
            return Err(BotError::Fatal("modify rules are not loaded".to_string()));
        };
        let opts = AddOptions { sanitize: true, overwrite: Some(self.overwrite), raise_failure: true };
        let mut num_matches = 0u64;
        for rule in rules {
            let Some(matches) = rule_matches(rule, &event) else {
                continue;
            };
            ctx.log.log(Level::Debug, &format!("Apply rule {}.", rule.name));
            for (field, action) in &rule.actions {
                let value = match action {
                    Action::Literal(v) => v.clone(),
                    Action::Format(pieces) => {
                        match fill(pieces, &event, &matches) {
                            Ok(text) => Value::String(text),
                            Err(FormatError::Missing(key)) => {
                                ctx.log.log(
                                Level::Debug,
                                &format!("Could not apply action for {field:?} of rule {}, the key {key:?} does not exist.", rule.name),
                            );
                                continue;
                            }
                            Err(FormatError::Other(e)) => {
                                return Err(BotError::Invalid(format!("rule `{}`, field `{field}`: {e}", rule.name)))
                            }
                        }
                    }
                };
                event.add_with(field, value, opts)?;
            }
            num_matches += 1;
            if self.maximum_matches.is_some_and(|m| num_matches >= m) {
                ctx.log.log(Level::Debug, "Reached maximum number of matches, breaking.");
                break;
            }
        }
        out.send(event);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::bots::experts::test_support::{event, harmonization};
    use crate::bots::{MemoryLog, MemoryState};

    fn run(rules: Value, params: Value, fields: Value) -> Message {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("rules.conf"), rules.to_string()).unwrap();
        let mut params = params;
        params["configuration_path"] = json!("rules.conf");
        let h = harmonization();
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let mut ctx = Context {
            bot_id: "modify-expert",
            harmonization: &h,
            root: dir.path(),
            state: &mut state,
            log: &mut log,
            clock: &crate::bots::SystemClock,
        };
        let mut bot = ModifyExpertBot::build(serde_json::from_value(params).unwrap()).unwrap();
        let mut out = Outbox::default();
        bot.process(event(&h, fields), &mut ctx, &mut out).unwrap();
        out.sent.pop().unwrap().1
    }

    #[test]
    fn format_strings_take_fields_and_groups() {
        let rules = json!([
            {"rulename": "a", "if": {"malware.name": "^scorecard-(.*)$", "classification.identifier": ""},
             "then": {"classification.identifier": "{matches[malware.name][1]}", "comment": "{msg[malware.name]}!"}}
        ]);
        let msg = run(rules, json!({}), json!({"malware.name": "scorecard-xy"}));
        assert_eq!(msg.get_str("classification.identifier"), Some("xy"));
        assert_eq!(msg.get_str("comment"), Some("scorecard-xy!"));
    }

    #[test]
    fn absent_condition_and_numbers_as_text() {
        let rules = json!([
            {"rulename": "port", "if": {"source.port": "^(80|443)$"}, "then": {"protocol.application": "http"}},
            {"rulename": "absent", "if": {"source.port": ""}, "then": {"comment": "no port"}}
        ]);
        let msg = run(rules, json!({}), json!({"source.port": 443}));
        assert_eq!(msg.get_str("protocol.application"), Some("http"));
        assert!(!msg.contains("comment"));
    }

    #[test]
    fn overwrite_false_keeps_values_and_maximum_matches_stops() {
        let rules = json!([
            {"rulename": "one", "if": {"classification.type": "infected-system"}, "then": {"classification.type": "vulnerable-system"}},
            {"rulename": "two", "if": {}, "then": {"comment": "second"}}
        ]);
        let fields = json!({"classification.type": "infected-system"});
        let kept = run(rules.clone(), json!({"overwrite": false}), fields.clone());
        assert_eq!(kept.get_str("classification.type"), Some("infected-system"));
        assert_eq!(kept.get_str("comment"), Some("second"));
        let first = run(rules, json!({"maximum_matches": "1"}), fields);
        assert_eq!(first.get_str("classification.type"), Some("vulnerable-system"));
        assert!(!first.contains("comment"));
    }

    #[test]
    fn case_insensitive_and_equality_conditions() {
        let rules = json!([
            {"rulename": "ci", "if": {"feed.name": "^abuse$", "source.asn": 64496}, "then": {"comment": "hit"}}
        ]);
        let msg = run(rules, json!({"case_sensitive": false}), json!({"feed.name": "Abuse", "source.asn": 64496}));
        assert_eq!(msg.get_str("comment"), Some("hit"));
    }

    #[test]
    fn missing_key_skips_the_action() {
        let rules = json!([{"rulename": "m", "if": {}, "then": {"comment": "{msg[malware.name]}"}}]);
        let msg = run(rules, json!({}), json!({"feed.name": "x"}));
        assert!(!msg.contains("comment"));
    }

    #[test]
    fn format_parser_handles_escapes() {
        assert_eq!(
            parse_format("{{x}} {msg[a.b]!r}").unwrap(),
            vec![
                Piece::Text("{x} ".to_string()),
                Piece::Field { root: "msg".to_string(), keys: vec![Key::Name("a.b".to_string())], repr: true }
            ]
        );
        assert!(parse_format("{msg[a]").is_err());
    }
}
