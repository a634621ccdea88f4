//! `intelmq.bots.experts.jinja.expert`: sets fields to rendered Jinja templates. `fields` maps a
//! field to a template, or to `file:///<absolute path>` of a template file (read when the bot is
//! built). Templates see the event as `msg` (flat dotted keys: `msg['source.ip']`). An existing
//! field is replaced only with `overwrite`.
//!
//! Rendering uses minijinja, which follows Jinja2 (no auto-escaping, the final newline is
//! dropped, missing keys are undefined and render empty). Values print as minijinja prints them
//! (booleans as `true`/`false`, where Python writes `True`/`False`). The Python methods templates
//! commonly call are provided: `dict.items()/keys()/values()/get()` and `str.upper()/lower()/
//! strip()/lstrip()/rstrip()/startswith()/endswith()/replace()/split()`. Map literals keep their
//! order (minijinja's `preserve_order` feature, which the workspace turns on).

use std::collections::BTreeMap;

use minijinja::value::ValueKind;
use minijinja::{AutoEscape, Environment, Error, ErrorKind, State};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ExpertBot, Outbox, ParamError};
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

/// Parameters of the Jinja expert (IntelMQ's names and defaults).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JinjaExpertParams {
    /// Field → template text or `file:///path`; default {}.
    pub fields: Map<String, Value>,
    /// Replace fields that are already set; default false.
    #[serde(deserialize_with = "lenient_bool")]
    pub overwrite: bool,
}

/// Renders templates into fields.
pub struct JinjaExpertBot {
    env: Environment<'static>,
    /// The fields in the configured order (each field's template is named after the field).
    fields: Vec<String>,
    overwrite: bool,
}

impl BuildBot for JinjaExpertBot {
    type Params = JinjaExpertParams;

    fn build(params: JinjaExpertParams) -> Result<Self, ParamError> {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_unknown_method_callback(python_method);
        let mut fields = Vec::with_capacity(params.fields.len());
        for (field, template) in &params.fields {
            let key = format!("fields.{field}");
            let Value::String(template) = template else {
                return Err(ParamError::new(key, format!("expected a template text, got {template}")));
            };
            let source = match template.strip_prefix("file://") {
                Some(path) if template.starts_with("file:///") => std::fs::read_to_string(path)
                    .map_err(|e| ParamError::new(&key, format!("cannot read jinja template {path}: {e}")))?,
                _ => template.clone(),
            };
            env.add_template_owned(field.clone(), source)
                .map_err(|e| ParamError::new(&key, format!("invalid jinja template: {e}")))?;
            fields.push(field.clone());
        }
        Ok(JinjaExpertBot { env, fields, overwrite: params.overwrite })
    }
}

fn str_arg<'a>(args: &'a [minijinja::Value], i: usize, method: &str) -> Result<Option<&'a str>, Error> {
    match args.get(i) {
        None => Ok(None),
        Some(v) if v.is_none() => Ok(None),
        Some(v) => v
            .as_str()
            .map(Some)
            .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, format!("{method}() takes string arguments"))),
    }
}

/// Python methods on maps and strings that Jinja2 templates call (minijinja has none of them).
fn python_method(
    _state: &State<'_, '_>,
    value: &minijinja::Value,
    method: &str,
    args: &[minijinja::Value],
) -> Result<minijinja::Value, Error> {
    use minijinja::Value as V;
    let unknown = || Error::new(ErrorKind::UnknownMethod, format!("{} has no method named {method}", value.kind()));
    match value.kind() {
        ValueKind::Map => {
            let keys: Vec<V> = value.try_iter()?.collect();
            match method {
                "keys" => Ok(V::from(keys)),
                "values" => Ok(V::from(keys.iter().map(|k| value.get_item(k)).collect::<Result<Vec<_>, _>>()?)),
                "items" => Ok(V::from(
                    keys.into_iter()
                        .map(|k| value.get_item(&k).map(|v| V::from(vec![k, v])))
                        .collect::<Result<Vec<_>, _>>()?,
                )),
                "get" => {
                    let key =
                        args.first().ok_or_else(|| Error::new(ErrorKind::MissingArgument, "get() needs a key"))?;
                    let found = value.get_item(key)?;
                    Ok(if found.is_undefined() { args.get(1).cloned().unwrap_or(V::from(())) } else { found })
                }
                _ => Err(unknown()),
            }
        }
        ValueKind::String => {
            let text = value.as_str().unwrap_or_default();
            let chars = |i| str_arg(args, i, method);
            let strip_set = |c: char, set: Option<&str>| match set {
                Some(set) => set.contains(c),
                None => c.is_whitespace(),
            };
            match method {
                "upper" => Ok(V::from(text.to_uppercase())),
                "lower" => Ok(V::from(text.to_lowercase())),
                "strip" => {
                    let set = chars(0)?;
                    Ok(V::from(text.trim_matches(|c| strip_set(c, set))))
                }
                "lstrip" => {
                    let set = chars(0)?;
                    Ok(V::from(text.trim_start_matches(|c| strip_set(c, set))))
                }
                "rstrip" => {
                    let set = chars(0)?;
                    Ok(V::from(text.trim_end_matches(|c| strip_set(c, set))))
                }
                "startswith" => Ok(V::from(text.starts_with(chars(0)?.unwrap_or_default()))),
                "endswith" => Ok(V::from(text.ends_with(chars(0)?.unwrap_or_default()))),
                "replace" => {
                    let (old, new) = (chars(0)?.unwrap_or_default(), chars(1)?.unwrap_or_default());
                    Ok(V::from(text.replace(old, new)))
                }
                "split" => {
                    let parts: Vec<V> = match chars(0)? {
                        Some(sep) if !sep.is_empty() => text.split(sep).map(V::from).collect(),
                        _ => text.split_whitespace().map(V::from).collect(),
                    };
                    Ok(V::from(parts))
                }
                _ => Err(unknown()),
            }
        }
        _ => Err(unknown()),
    }
}

impl ExpertBot for JinjaExpertBot {
    fn process(&mut self, mut event: Message, _ctx: &mut Context<'_>, out: &mut Outbox) -> Result<(), BotError> {
        let opts = AddOptions { overwrite: Some(self.overwrite), ..AddOptions::default() };
        for field in &self.fields {
            let template = self
                .env
                .get_template(field)
                .map_err(|e| BotError::Fatal(format!("jinja template of `{field}`: {e}")))?;
            let mut context = BTreeMap::new();
            context.insert("msg", minijinja::Value::from_serialize(event.fields()));
            let rendered = template
                .render(context)
                .map_err(|e| BotError::Invalid(format!("rendering the jinja template of `{field}` failed: {e}")))?;
            event.add_with(field, Value::String(rendered), opts)?;
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

    fn run(params: Value, fields: Value) -> Message {
        let h = harmonization();
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let root = std::path::Path::new("/");
        let mut ctx = Context {
            bot_id: "jinja",
            harmonization: &h,
            root,
            state: &mut state,
            log: &mut log,
            clock: &crate::bots::SystemClock,
        };
        let mut bot = JinjaExpertBot::build(serde_json::from_value(params).unwrap()).unwrap();
        let mut out = Outbox::default();
        bot.process(event(&h, fields), &mut ctx, &mut out).unwrap();
        out.sent.pop().unwrap().1
    }

    #[test]
    fn templates_see_the_event_as_msg() {
        let fields = json!({"feed.url": "https://cert.at", "source.ip": "192.0.2.1"});
        let msg =
            run(json!({"fields": {"feed.url": "{{ msg['feed.url'] | upper }}"}, "overwrite": true}), fields.clone());
        assert_eq!(msg.get_str("feed.url"), Some("HTTPS://CERT.AT"));
        let kept = run(json!({"fields": {"feed.url": "{{ msg['feed.url'] | upper }}"}}), fields);
        assert_eq!(kept.get_str("feed.url"), Some("https://cert.at"));
    }

    #[test]
    fn template_files_and_missing_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.j2");
        std::fs::write(&path, "{% if msg['time.source'] %}src{% else %}{{ msg['time.observation'] }}{% endif %}<b>\n")
            .unwrap();
        let params = json!({"fields": {"extra.text": format!("file://{}", path.display())}});
        let msg = run(params, json!({"time.observation": "2015-01-01T00:00:00+00:00"}));
        assert_eq!(msg.get_str("extra.text"), Some("2015-01-01T00:00:00+00:00<b>"));
    }

    #[test]
    fn python_methods_work() {
        let template = "{{ msg.items() | length }} {{ msg.get('x', 'd') }} {{ msg['feed.name'].strip('-').upper() }} {{ msg['feed.name'].split('-') | join('+') }}";
        let msg = run(json!({"fields": {"comment": template}}), json!({"feed.name": "-a-b-"}));
        assert_eq!(msg.get_str("comment"), Some("1 d A-B +a+b+"));
    }

    /// Needs minijinja's `preserve_order` feature (IntelMQ's ecs.j2 template relies on it).
    #[test]
    fn dict_literals_keep_their_order_and_whitespace_control_is_jinjas() {
        let template = "{\n  \"t\": {{ msg['time.observation'] }},\n{%- set fields = { 'z.ip': 'source.ip', 'a.fqdn': 'source.fqdn', 'm.ip': 'destination.ip' } -%}\n{% for key, value in fields.items() %}\n{% if msg[value] %}  \"{{ key }}\": {{ msg[value] }}{% if not loop.last %},{% endif %}{% endif %}\n{%- endfor %}\n}\n";
        let msg = run(
            json!({"fields": {"extra.text": template}}),
            json!({"time.observation": "2015-01-01T00:00:00+00:00", "source.ip": "192.0.2.1", "destination.ip": "192.0.2.2"}),
        );
        assert_eq!(
            msg.get_str("extra.text"),
            // Jinja2 3.1.6 renders exactly this: `-%}` eats the newline after `set`, so only the
            // skipped `a.fqdn` leaves an empty line.
            Some("{\n  \"t\": 2015-01-01T00:00:00+00:00,\n  \"z.ip\": 192.0.2.1,\n\n  \"m.ip\": 192.0.2.2\n}")
        );
    }

    #[test]
    fn bad_templates_are_refused_at_build() {
        let params: JinjaExpertParams = serde_json::from_value(json!({"fields": {"comment": "{% if %}"}})).unwrap();
        assert_eq!(JinjaExpertBot::build(params).err().unwrap().key, "fields.comment");
    }
}
