//! Runs a parsed sieve [`Program`] over one event: evaluates the conditions, applies the actions
//! to the event and decides where it goes (IntelMQ's procedure: a statement either continues,
//! keeps — stop and forward — or drops). Pure: the clock is passed in.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use serde_json::{Number, Value};

use super::parser::{
    parse_relative, parse_utc, Action, AssignOp, Cond, Expr, ListOp, NumOp, Operand, Program, Source, Statement, StrOp,
    Test, TimeSpec,
};
use crate::bots::{BotError, BotLog, Level};
use crate::message::types::IpAddr;
use crate::message::{datetime, wire, AddOptions, Message};

/// What the rules decided for an event.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Send nothing.
    Drop,
    /// Send the event to each of these paths (`_default` unless a `path` action chose others).
    Forward(Vec<String>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Procedure {
    Continue,
    Keep,
    Drop,
}

/// Applies `program` to `event`; `now` is the reference for relative times.
pub fn run(
    program: &Program,
    event: &mut Message,
    now: NaiveDateTime,
    log: &mut dyn BotLog,
) -> Result<Verdict, BotError> {
    let mut run = Run { event, now, log, vars: HashMap::new(), paths: None };
    let procedure = run.statements(&program.statements)?;
    if procedure == Procedure::Drop {
        return Ok(Verdict::Drop);
    }
    Ok(Verdict::Forward(run.paths.unwrap_or_else(|| vec!["_default".to_string()])))
}

struct Run<'a> {
    event: &'a mut Message,
    now: NaiveDateTime,
    log: &'a mut dyn BotLog,
    vars: HashMap<String, Value>,
    paths: Option<Vec<String>>,
}

impl Run<'_> {
    fn statements(&mut self, statements: &[Statement]) -> Result<Procedure, BotError> {
        for statement in statements {
            let procedure = self.statement(statement)?;
            if procedure != Procedure::Continue {
                return Ok(procedure);
            }
        }
        Ok(Procedure::Continue)
    }

    fn statement(&mut self, statement: &Statement) -> Result<Procedure, BotError> {
        match statement {
            Statement::Branch(branch) => {
                for clause in &branch.clauses {
                    if self.expr(&clause.expr) {
                        return self.statements(&clause.body);
                    }
                }
                match &branch.otherwise {
                    Some(body) => self.statements(body),
                    None => Ok(Procedure::Continue),
                }
            }
            Statement::Action(action, _) => self.action(action),
            Statement::Assign { name, source, .. } => {
                let value = match source {
                    Source::Key(key) => self.lookup(key).unwrap_or(Value::Null),
                    Source::Literal(v) => v.clone(),
                };
                self.vars.insert(name.clone(), value);
                Ok(Procedure::Continue)
            }
        }
    }

    /// `event[key]`: the stored value; for a JSONDict field name the JSON text of its sub-keys.
    fn lookup(&self, key: &str) -> Option<Value> {
        if let Some(v) = self.event.get(key) {
            return Some(v.clone());
        }
        self.event.get_jsondict(key).map(|v| Value::String(wire::dumps(&v)))
    }

    fn expr(&mut self, expr: &Expr) -> bool {
        expr.any.iter().any(|conj| conj.iter().all(|cond| self.cond(cond)))
    }

    fn cond(&mut self, cond: &Cond) -> bool {
        cond.negated ^ self.test(&cond.test)
    }

    fn test(&mut self, test: &Test) -> bool {
        match test {
            Test::Group(expr) => self.expr(expr),
            Test::Exists { key, exists } => self.event.contains(key) == *exists,
            Test::Str { key, op, values, .. } => {
                let Some(value) = self.lookup(key) else {
                    return matches!(op, StrOp::Ne | StrOp::NotRegex | StrOp::NotContains);
                };
                let text = as_text(&value);
                values.iter().any(|v| match op {
                    StrOp::Eq | StrOp::In => py_eq(&value, &Value::String(v.text.clone())),
                    StrOp::Ne => !py_eq(&value, &Value::String(v.text.clone())),
                    StrOp::Contains | StrOp::ContainsAny => text.contains(&v.text),
                    StrOp::NotContains => !text.contains(&v.text),
                    StrOp::Regex | StrOp::RegexIn => v.regex.as_ref().is_some_and(|r| r.is_match(&text)),
                    StrOp::NotRegex => v.regex.as_ref().is_some_and(|r| !r.is_match(&text)),
                })
            }
            Test::Num { key, op, values } => {
                let Some(lhs) = self.lookup(key).as_ref().and_then(as_f64) else {
                    return false;
                };
                values.iter().filter_map(Number::as_f64).any(|rhs| match op {
                    NumOp::Eq | NumOp::In => lhs == rhs,
                    NumOp::Ne => lhs != rhs,
                    NumOp::Lt => lhs < rhs,
                    NumOp::Le => lhs <= rhs,
                    NumOp::Gt => lhs > rhs,
                    NumOp::Ge => lhs >= rhs,
                })
            }
            Test::IpRange { key, networks } => {
                let Some(value) = self.lookup(key) else {
                    return false;
                };
                let Some(addr) = value.as_str().and_then(IpAddr::parse) else {
                    let message = format!(
                        "Could not parse IP address {key}={} in {}.",
                        wire::python_str(&value),
                        self.event.to_wire()
                    );
                    self.log.log(Level::Warning, &message);
                    return false;
                };
                networks.iter().any(|(net, prefix)| in_network(addr, *net, *prefix))
            }
            Test::Date { key, before, when } => {
                let Some(value) = self.lookup(key).and_then(|v| event_time(&v)) else {
                    return false;
                };
                let reference = match when {
                    TimeSpec::Relative(span) => self.now - *span,
                    TimeSpec::Absolute(t) => *t,
                };
                if *before {
                    value < reference
                } else {
                    value > reference
                }
            }
            Test::List { key, op, values } => {
                let Some(Value::Array(lhs)) = self.lookup(key) else {
                    return false;
                };
                let contains = |set: &[Value], item: &Value| set.iter().any(|x| py_eq(x, item));
                match op {
                    ListOp::Equals => lhs.len() == values.len() && lhs.iter().zip(values).all(|(a, b)| py_eq(a, b)),
                    ListOp::SetEquals => {
                        lhs.iter().all(|x| contains(values, x)) && values.iter().all(|x| contains(&lhs, x))
                    }
                    ListOp::Overlaps => lhs.iter().any(|x| contains(values, x)),
                    ListOp::SubsetOf => lhs.iter().all(|x| contains(values, x)),
                    ListOp::SupersetOf => values.iter().all(|x| contains(&lhs, x)),
                }
            }
            Test::Bool { key, equal, value } => match self.lookup(key) {
                Some(Value::Bool(b)) => (b == *value) == *equal,
                _ => false,
            },
        }
    }

    fn operand(&self, operand: &Operand) -> Value {
        match operand {
            Operand::Literal(v) => v.clone(),
            Operand::Var(name) => self.vars.get(name).cloned().unwrap_or(Value::Null),
        }
    }

    /// The value an assignment stores: the operand itself, or the key's value moved by it.
    fn assigned(&self, key: &str, op: AssignOp, operand: &Operand) -> Result<Value, BotError> {
        let value = self.operand(operand);
        if op == AssignOp::Set {
            return Ok(value);
        }
        let current = self
            .lookup(key)
            .ok_or_else(|| BotError::Invalid(format!("sieve: cannot compute `{key}` += / -=: the key is not set")))?;
        arithmetic(key, &current, op, &value)
    }

    fn action(&mut self, action: &Action) -> Result<Procedure, BotError> {
        match action {
            Action::Drop => return Ok(Procedure::Drop),
            Action::Keep => return Ok(Procedure::Keep),
            Action::Path(paths) => self.paths = Some(paths.clone()),
            Action::Add { key, force, op, value } => {
                if *force {
                    let value = self.assigned(key, *op, value)?;
                    self.event.add_with(key, value, AddOptions { overwrite: Some(true), ..AddOptions::default() })?;
                } else if !self.event.contains(key) {
                    let value = self.assigned(key, *op, value)?;
                    self.event.add(key, value)?;
                }
            }
            Action::Update { key, op, value } => {
                if self.event.contains(key) {
                    let value = self.assigned(key, *op, value)?;
                    self.event.change(key, value)?;
                }
            }
            Action::Remove { key } => {
                self.event.remove(key);
            }
            Action::Append { key, force, value } => {
                let item = self.operand(value);
                let replace = AddOptions { sanitize: false, overwrite: Some(true), raise_failure: true };
                match self.lookup(key) {
                    Some(Value::Array(mut list)) => {
                        list.push(item);
                        self.event.add_with(key, Value::Array(list), replace)?;
                    }
                    // `append` leaves a single value alone; `append!` makes it a list.
                    Some(single) if *force => {
                        self.event.add_with(key, Value::Array(vec![single, item]), replace)?;
                    }
                    Some(_) => {}
                    None => {
                        self.event.add(key, Value::Array(vec![item]))?;
                    }
                }
            }
        }
        Ok(Procedure::Continue)
    }
}

/// `+=`/`-=`: a relative time on a timestamp, or a number on a number.
fn arithmetic(key: &str, current: &Value, op: AssignOp, operand: &Value) -> Result<Value, BotError> {
    let sign = if op == AssignOp::Sub { -1 } else { 1 };
    match operand {
        Value::String(span) => {
            let span = parse_relative(span)
                .ok_or_else(|| BotError::Invalid(format!("sieve: `{span}` is not a relative time (for `{key}`)")))?;
            let time = event_time(current)
                .ok_or_else(|| BotError::Invalid(format!("sieve: `{key}` holds no time: {current}")))?;
            let moved = if sign < 0 { time - span } else { time + span };
            Ok(Value::String(datetime::format_utc(moved)))
        }
        Value::Number(n) => {
            let Value::Number(c) = current else {
                return Err(BotError::Invalid(format!("sieve: `{key}` holds no number: {current}")));
            };
            if let (Some(a), Some(b)) = (c.as_i64(), n.as_i64()) {
                if let Some(r) = if sign < 0 { a.checked_sub(b) } else { a.checked_add(b) } {
                    return Ok(Value::Number(Number::from(r)));
                }
            }
            let (a, b) = (c.as_f64().unwrap_or(f64::NAN), n.as_f64().unwrap_or(f64::NAN));
            let r = if sign < 0 { a - b } else { a + b };
            Number::from_f64(r)
                .map(Value::Number)
                .ok_or_else(|| BotError::Invalid(format!("sieve: `{key}` arithmetic gives no finite number")))
        }
        other => Err(BotError::Invalid(format!("sieve: cannot add {other} to `{key}`"))),
    }
}

/// A value as a timestamp (IntelMQ's DateTime parsing; naive times are UTC).
fn event_time(value: &Value) -> Option<NaiveDateTime> {
    let text = value.as_str()?;
    parse_utc(&datetime::sanitize(text)?)
}

/// The text a string operator looks at: strings as they are, lists and objects as JSON, other
/// scalars as Python's `str()`.
fn as_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(_) | Value::Object(_) => wire::dumps(value),
        other => wire::python_str(other),
    }
}

/// A number for numeric comparisons (Python compares `bool` as 0/1).
fn as_f64(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

/// Python's `==` on the values JSON stands for: `1 == 1.0 == True`, lists element-wise.
fn py_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_) | Value::Bool(_), Value::Number(_) | Value::Bool(_)) => {
            if let (Value::Number(x), Value::Number(y)) = (a, b) {
                if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                    return x == y;
                }
            }
            as_f64(a) == as_f64(b)
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| py_eq(p, q)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| py_eq(v, w)))
        }
        _ => a == b,
    }
}

fn in_network(addr: IpAddr, net: IpAddr, prefix: u32) -> bool {
    let (a, n, bits) = match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => (u128::from(u32::from(a)), u128::from(u32::from(n)), 32),
        (IpAddr::V6(a), IpAddr::V6(n)) => (u128::from(a), u128::from(n), 128),
        _ => return false,
    };
    if prefix == 0 {
        return true;
    }
    let shift = bits - prefix.min(bits);
    (a >> shift) == (n >> shift)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::bots::experts::sieve::parser::parse;
    use crate::bots::experts::test_support::{event, harmonization};
    use crate::bots::MemoryLog;

    fn now() -> NaiveDateTime {
        parse_utc("2024-03-01T12:00:00+00:00").unwrap()
    }

    fn apply(rules: &str, fields: Value) -> (Verdict, Message, MemoryLog) {
        let h = harmonization();
        let program = parse(rules, "t.sieve", &h).unwrap();
        let mut msg = event(&h, fields);
        let mut log = MemoryLog::default();
        let verdict = run(&program, &mut msg, now(), &mut log).unwrap();
        (verdict, msg, log)
    }

    fn default_path() -> Verdict {
        Verdict::Forward(vec!["_default".to_string()])
    }

    #[test]
    fn first_matching_clause_runs_and_else_catches_the_rest() {
        let rules = "if comment == 'a' { update comment = 'A' } elif comment == 'b' { update comment = 'B' } else { update comment = 'C' }";
        for (input, output) in [("a", "A"), ("b", "B"), ("z", "C")] {
            let (_, msg, _) = apply(rules, json!({"comment": input}));
            assert_eq!(msg.get_str("comment"), Some(output));
        }
    }

    #[test]
    fn keep_stops_processing_and_drop_sends_nothing() {
        let (verdict, msg, _) = apply("if :exists comment { keep }\nadd extra.x = 1", json!({"comment": "x"}));
        assert_eq!(verdict, default_path());
        assert!(!msg.contains("extra.x"));
        let (verdict, _, _) = apply("drop\nadd extra.x = 1", json!({"comment": "x"}));
        assert_eq!(verdict, Verdict::Drop);
    }

    #[test]
    fn path_chooses_the_destinations() {
        let (verdict, _, _) = apply("path ['a', 'b']\nkeep", json!({}));
        assert_eq!(verdict, Verdict::Forward(vec!["a".into(), "b".into()]));
        let (verdict, _, _) = apply("path 'other-way'", json!({}));
        assert_eq!(verdict, Verdict::Forward(vec!["other-way".into()]));
    }

    #[test]
    fn missing_keys_match_only_the_negative_string_operators() {
        let (_, msg, _) = apply("if source.url != 'x' { add extra.ne = true }\nif source.url !~ 'x' { add extra.nr = true }\nif source.url == 'x' { add extra.eq = true }\nif source.url :in ['x'] { add extra.in = true }", json!({}));
        assert!(msg.contains("extra.ne") && msg.contains("extra.nr"));
        assert!(!msg.contains("extra.eq") && !msg.contains("extra.in"));
    }

    #[test]
    fn string_list_operators() {
        let rules = "if source.fqdn :containsany ['.mx', '.zz'] { add extra.a = 1 }\nif extra.tag :regexin ['ee$', 'ab.d'] { add extra.b = 1 }\nif classification.type :in ['c2-server', 'phishing'] { add extra.c = 1 }";
        let (_, msg, _) =
            apply(rules, json!({"source.fqdn": "x.zz", "extra.tag": "xxee", "classification.type": "phishing"}));
        assert!(msg.contains("extra.a") && msg.contains("extra.b") && msg.contains("extra.c"));
        let (_, msg, _) =
            apply(rules, json!({"source.fqdn": "x.yy", "extra.tag": "eex", "classification.type": "spam"}));
        assert!(!msg.contains("extra.a") && !msg.contains("extra.b") && !msg.contains("extra.c"));
    }

    #[test]
    fn numbers_compare_across_int_and_float() {
        let (verdict, _, _) = apply("if feed.accuracy == 100 { drop }", json!({"feed.accuracy": 100.0}));
        assert_eq!(verdict, Verdict::Drop);
        let (verdict, _, _) = apply("if feed.accuracy <= 90 { drop }", json!({"feed.accuracy": 95.0}));
        assert_eq!(verdict, default_path());
        let (verdict, _, _) = apply("if destination.asn :in [1, 6939] { drop }", json!({"destination.asn": 6939}));
        assert_eq!(verdict, Verdict::Drop);
    }

    #[test]
    fn ip_ranges_match_by_prefix_and_bad_addresses_warn() {
        let rules = "if source.ip << ['192.0.0.0/24', '169.254.0.0/16', '2001:620::/29'] { add comment = 'in' }";
        for (ip, inside) in
            [("169.254.3.1", true), ("169.255.2.1", false), ("2001:620:0:ff::56", true), ("8.8.8.8", false)]
        {
            let (_, msg, _) = apply(rules, json!({"source.ip": ip}));
            assert_eq!(msg.contains("comment"), inside, "{ip}");
        }
        let (_, _, log) = apply("if comment << '10.0.0.0/8' { drop }", json!({"comment": "300.300.300.300"}));
        assert_eq!(log.lines.len(), 1);
        assert_eq!(log.lines[0].0, Level::Warning);
        assert!(log.lines[0].1.starts_with("Could not parse IP address comment=300.300.300.300 in "));
    }

    #[test]
    fn dates_compare_with_absolute_and_relative_times() {
        let rules = "if time.source :before '1 week' { append extra.l 'old' }\nif time.source :after '2 days' { append extra.l 'recent' }\nif time.source :after '2023-06-01 15:00' { append extra.l 'after' }";
        let (_, msg, _) = apply(rules, json!({"time.source": "2024-02-20T00:00:00+00:00"}));
        assert_eq!(msg.get("extra.l"), Some(&json!(["old", "after"])));
        let (_, msg, _) = apply(rules, json!({"time.source": "2024-03-01T10:00:00+00:00"}));
        assert_eq!(msg.get("extra.l"), Some(&json!(["recent", "after"])));
        let (_, msg, _) = apply(rules, json!({"time.source": "2023-06-01T15:00:00+00:00"}));
        assert_eq!(msg.get("extra.l"), Some(&json!(["old"])));
    }

    #[test]
    fn list_and_bool_operators_use_python_equality() {
        let rules = "if extra.list :equals [true, 2.1, 'three', 4] { add extra.eq = 1 }\nif extra.list :setequals [4, 'three', 2.1, 1, 4] { add extra.set = 1 }\nif extra.list :supersetof ['three'] { add extra.sup = 1 }\nif extra.list :subsetof ['x'] { add extra.sub = 1 }\nif extra.flag == false { add extra.f = 1 }";
        let (_, msg, _) = apply(rules, json!({"extra.list": [true, 2.1, "three", 4], "extra.flag": false}));
        for key in ["extra.eq", "extra.set", "extra.sup", "extra.f"] {
            assert!(msg.contains(key), "{key}");
        }
        assert!(!msg.contains("extra.sub"));
    }

    #[test]
    fn add_update_remove_follow_their_existence_rules() {
        let rules = "add comment = 'new'\nadd source.ip = '10.0.0.2'\nadd! destination.ip = '10.0.0.3'\nupdate source.port = 80\nupdate source.ip = '10.0.0.4'\nremove classification.type";
        let (_, msg, _) =
            apply(rules, json!({"comment": "old", "source.ip": "10.0.0.1", "classification.type": "spam"}));
        assert_eq!(msg.get_str("comment"), Some("old"));
        assert_eq!(msg.get_str("source.ip"), Some("10.0.0.4"));
        assert_eq!(msg.get_str("destination.ip"), Some("10.0.0.3"));
        assert!(!msg.contains("source.port") && !msg.contains("classification.type"));
    }

    #[test]
    fn append_and_forced_append() {
        let rules =
            "append extra.list 'c'\nappend extra.single 'no'\nappend extra.new 'n'\nappend! extra.single2 'more'";
        let (_, msg, _) = apply(rules, json!({"extra.list": ["a", "b"], "extra.single": "s", "extra.single2": "s"}));
        assert_eq!(msg.get("extra.list"), Some(&json!(["a", "b", "c"])));
        assert_eq!(msg.get("extra.single"), Some(&json!("s")));
        assert_eq!(msg.get("extra.new"), Some(&json!(["n"])));
        assert_eq!(msg.get("extra.single2"), Some(&json!(["s", "more"])));
    }

    #[test]
    fn time_and_number_arithmetic() {
        let rules = "add! time.observation += '1 hour'\nupdate time.source -= '1 day'\nupdate extra.n += 2\nadd time.source += '5 hours'";
        let (_, msg, _) = apply(
            rules,
            json!({"time.observation": "2017-01-01T00:00:00+00:00", "time.source": "2017-01-01T00:00:00+00:00", "extra.n": 40}),
        );
        assert_eq!(msg.get_str("time.observation"), Some("2017-01-01T01:00:00+00:00"));
        assert_eq!(msg.get_str("time.source"), Some("2016-12-31T00:00:00+00:00"));
        assert_eq!(msg.get("extra.n"), Some(&json!(42)));
    }

    #[test]
    fn arithmetic_on_a_missing_key_is_an_invalid_message() {
        let h = harmonization();
        let program = parse("add time.source += '1 hour'", "t.sieve", &h).unwrap();
        let mut msg = event(&h, json!({}));
        let err = run(&program, &mut msg, now(), &mut MemoryLog::default()).unwrap_err();
        assert!(err.is_data_error());
    }

    #[test]
    fn variables_carry_values_between_statements() {
        let (_, msg, _) = apply(
            "$foo = source.abuse_contact\nadd! extra.email = $foo\nadd extra.none = $unset",
            json!({"source.abuse_contact": "abuse@example.com"}),
        );
        assert_eq!(msg.get_str("extra.email"), Some("abuse@example.com"));
        assert!(!msg.contains("extra.none"));
    }

    #[test]
    fn negation_and_grouping() {
        let rules = "if comment == 'm' && ! ( extra.text == 'test' ) { update comment = 'x' }\nif ! extra.text != 'a' || ! extra.text != 'b' { add extra.y = 1 }";
        let (_, msg, _) = apply(rules, json!({"comment": "m", "extra.text": "b"}));
        assert_eq!(msg.get_str("comment"), Some("x"));
        assert!(msg.contains("extra.y"));
    }
}
