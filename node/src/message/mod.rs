//! IntelMQ's message model: Report and Event, the harmonization types, the wire JSON and the
//! message hash. Owns everything about what a message may hold; depends on nothing of ours.
//!
//! A [`Message`] is a flat map of dotted keys to JSON values, in insertion order, plus its kind.
//! Every `add` sanitizes and validates the value against the harmonization (`etc/harmonization.conf`),
//! exactly as IntelMQ's `Message.add` does (reference: IntelMQ `intelmq/lib/message.py` semantics).

pub mod datetime;
pub mod harmonization;
pub mod hash;
pub mod internal;
pub mod types;
pub mod wire;

use std::sync::Arc;

use serde_json::{Map, Value};

pub use datetime::TimeFormat;
pub use harmonization::{FieldSpec, Harmonization, HarmonizationError, TypeName};
pub use hash::FilterType;

pub use internal::{INTERNAL_FORMAT, INTERNAL_FORMAT_2, INTERNAL_JSON_FORMAT};

/// The two message kinds IntelMQ puts on a pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// Collector output: `raw` holds the fetched data.
    Report,
    /// One parsed record.
    Event,
}

impl MessageKind {
    /// `"Report"` or `"Event"`, as written in `__type`.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Report => "Report",
            MessageKind::Event => "Event",
        }
    }

    /// Parses `"Report"`/`"Event"` (IntelMQ's class names).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "Report" => Some(MessageKind::Report),
            "Event" => Some(MessageKind::Event),
            _ => None,
        }
    }
}

/// Why a field could not be added or a message could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FieldError {
    /// The key is not in the harmonization (and not a valid `extra.*` sub-key).
    #[error("invalid key `{key}`")]
    InvalidKey { key: String },
    /// The value does not fit the field's type or constraints.
    #[error("invalid value {value} for key `{key}`: {reason}")]
    InvalidValue {
        key: String,
        /// The offending value, as JSON text.
        value: String,
        reason: String,
    },
    /// `add` without overwrite on a key that is already set.
    #[error("key `{key}` already exists")]
    KeyExists { key: String },
    /// `change` on a key that is not set.
    #[error("key `{key}` does not exist")]
    KeyNotExists { key: String },
    /// The message text is not a JSON object, or `__type` is unknown or missing.
    #[error("cannot decode message: {reason}")]
    Decode { reason: String },
}

impl FieldError {
    /// True for errors that come from the data (IntelMQ's `InvalidValue`/`InvalidKey`/`DecodingError`):
    /// the runtime dumps such a message without retrying.
    pub fn is_data_error(&self) -> bool {
        true
    }
}

/// Options of [`Message::add_with`]; the defaults are IntelMQ's `add()` defaults.
#[derive(Clone, Copy, Debug)]
pub struct AddOptions {
    /// Run the type's sanitize before validation (default true).
    pub sanitize: bool,
    /// `None`: an existing key is an error (`KeyExists`); `Some(false)`: keep the old value and
    /// return `Ok(false)`; `Some(true)`: replace it (an ignored value then deletes the key).
    pub overwrite: Option<bool>,
    /// `false`: an invalid value returns `Ok(false)` instead of an error.
    pub raise_failure: bool,
}

impl Default for AddOptions {
    fn default() -> Self {
        AddOptions { sanitize: true, overwrite: None, raise_failure: true }
    }
}

/// How [`Message::to_export_json`] renders an event (IntelMQ `OutputBot.export_event` flags).
#[derive(Clone, Copy, Debug, Default)]
pub struct ExportOptions {
    /// Split keys at every dot into nested objects.
    pub hierarchical: bool,
    /// Include `__type`.
    pub with_type: bool,
    /// Collapse each JSONDict field (`extra`) into one JSON string (only with `to_dict`; IntelMQ's
    /// `to_json` ignores it).
    pub jsondict_as_string: bool,
}

/// The fields of a message: dotted keys in insertion order. An `IndexMap` with the Fx hash, not
/// `serde_json::Map` (SipHash): every bot builds and reads these maps for every message, and the
/// keys come from the harmonization, not from an attacker.
///
/// Keys are `CompactString`s: a key of up to 24 bytes (nearly every harmonization key) is stored
/// inline, so decoding or copying a message allocates nothing per key.
pub type Fields = indexmap::IndexMap<Key, Value, rustc_hash::FxBuildHasher>;

/// A field name: a string stored inline up to 24 bytes.
pub type Key = compact_str::CompactString;

/// A Report or an Event: flat dotted keys in insertion order, validated against a harmonization.
///
/// A message read from an inbox keeps its fields encoded ([`internal::Packed`]) until something
/// needs them as [`Value`]s: looking up a string, testing for a key, adding fields, hashing,
/// exporting as JSON and passing it on work on the encoded bytes, so a bot that only reads a
/// field or two and adds one (taxonomy, url2fqdn) or hashes and forwards (deduplicator) neither
/// decodes nor re-encodes the rest. The encoded fields and `fields` (then: the fields added since)
/// are the message; `unpacked` only caches both decoded for the accessors that return `&Value`,
/// and every change drops it.
#[derive(Clone, Debug)]
pub struct Message {
    kind: MessageKind,
    harmonization: Arc<Harmonization>,
    /// All fields, or with `packed`, those added after it (their keys are not in `packed`).
    fields: Fields,
    /// The fields read from the internal form, not decoded.
    packed: Option<internal::Packed>,
    /// `packed` followed by `fields`, decoded on first need.
    unpacked: std::sync::OnceLock<Fields>,
}

impl PartialEq for Message {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.view() == other.view()
    }
}

/// A field's value: decoded, or borrowed from the internal form.
#[derive(Clone, Copy, Debug)]
pub enum FieldRef<'a> {
    Value(&'a Value),
    Packed(internal::PackedValue<'a>),
}

impl Message {
    /// An empty message of `kind` (IntelMQ `Report(auto=True)` / `Event()`): nothing is added.
    pub fn new(kind: MessageKind, harmonization: Arc<Harmonization>) -> Self {
        // Room for a typical event, so that building one does not grow the map several times.
        Message::from_fields(kind, harmonization, Fields::with_capacity_and_hasher(16, Default::default()))
    }

    fn from_fields(kind: MessageKind, harmonization: Arc<Harmonization>, fields: Fields) -> Self {
        Message { kind, harmonization, fields, packed: None, unpacked: std::sync::OnceLock::new() }
    }

    /// All fields decoded (for the accessors that hand out `&Value`).
    fn view(&self) -> &Fields {
        match &self.packed {
            None => &self.fields,
            Some(p) => self.unpacked.get_or_init(|| decoded(p, &self.fields)),
        }
    }

    /// Decodes the packed fields into `fields`, before a change the packed form cannot take.
    fn unpack(&mut self) {
        if let Some(p) = self.packed.take() {
            self.fields = self.unpacked.take().unwrap_or_else(|| decoded(&p, &self.fields));
        }
    }

    /// The same message with its fields held encoded: a copy of it then copies one buffer, not
    /// each field (parsers copy their report's event template for every event).
    pub fn packed(self) -> Message {
        match Message::decode(self.harmonization.clone(), &self.to_internal(), Some(self.kind)) {
            Ok(packed) => packed,
            Err(_) => self,
        }
    }

    /// The fields in order, without decoding packed ones.
    pub fn field_refs(&self) -> Vec<(&str, FieldRef<'_>)> {
        let mut out = Vec::with_capacity(self.len());
        if let Some(p) = &self.packed {
            out.extend(p.iter().map(|(k, v)| (k, FieldRef::Packed(v))));
        }
        out.extend(self.fields.iter().map(|(k, v)| (k.as_str(), FieldRef::Value(v))));
        out
    }

    /// A new Report with `time.observation` = now (UTC, whole seconds), as `Report()` does.
    pub fn new_report(harmonization: Arc<Harmonization>) -> Self {
        let mut msg = Message::new(MessageKind::Report, harmonization);
        msg.fields.insert(Key::const_new("time.observation"), Value::String(datetime::now_utc()));
        msg
    }

    /// An Event built from a report (IntelMQ `Event(report)`): copies `feed.accuracy`, `feed.code`,
    /// `feed.documentation`, `feed.name`, `feed.provider`, `feed.url`, `rtir_id`,
    /// `time.observation` and every key in `copy_fields` that the report holds.
    pub fn event_from_report(report: &Message, copy_fields: &[String]) -> Message {
        const TEMPLATE: [&str; 8] = [
            "feed.accuracy",
            "feed.code",
            "feed.documentation",
            "feed.name",
            "feed.provider",
            "feed.url",
            "rtir_id",
            "time.observation",
        ];
        let mut event = Message::new(MessageKind::Event, report.harmonization.clone());
        let keys = TEMPLATE.iter().copied().chain(copy_fields.iter().map(String::as_str));
        for key in keys {
            if event.contains(key) {
                continue;
            }
            let value = match report.get(key) {
                Some(v) => v.clone(),
                None => match report.get_jsondict(key) {
                    // `report['extra']` is the JSON text of the sub-dict.
                    Some(obj) => Value::String(wire::dumps(&obj)),
                    None => continue,
                },
            };
            // Like IntelMQ's constructor: as-is first, then sanitized; a value that fits
            // neither (or a key events do not have) is left out.
            let _ = event.add_lenient(key, value);
        }
        event
    }

    /// A Report holding the keys of `self` that are valid for a report (IntelMQ `Report(event)`),
    /// without adding a `time.observation`.
    pub fn to_report(&self) -> Message {
        let mut report = Message::new(MessageKind::Report, self.harmonization.clone());
        for (key, value) in self.view() {
            if self.harmonization.is_valid_key(MessageKind::Report, key) {
                report.fields.insert(key.clone(), value.clone());
            }
        }
        report
    }

    pub fn kind(&self) -> MessageKind {
        self.kind
    }

    pub fn harmonization(&self) -> &Arc<Harmonization> {
        &self.harmonization
    }

    /// IntelMQ `add(key, value)`: sanitize, validate, store; an existing key is `KeyExists`.
    /// Ignored values (`null`, `""`, `"-"`, `"N/A"`) store nothing and return `Ok(false)`.
    pub fn add(&mut self, key: &str, value: impl Into<Value>) -> Result<bool, FieldError> {
        self.add_with(key, value.into(), AddOptions::default())
    }

    /// IntelMQ `add` with all its options. `Ok(true)` = stored.
    pub fn add_with(&mut self, key: &str, value: Value, opts: AddOptions) -> Result<bool, FieldError> {
        self.unpacked.take();
        let exists = self.contains(key);
        if exists && self.packed.is_some() {
            // Overwriting or removing a packed field: decode them first.
            self.unpack();
        }
        if exists {
            match opts.overwrite {
                None => return Err(FieldError::KeyExists { key: key.to_string() }),
                Some(false) => return Ok(false),
                Some(true) => {}
            }
        }
        if is_ignored(&value) {
            if opts.overwrite == Some(true) && exists {
                self.remove(key);
            }
            return Ok(false);
        }
        if key == "__type" {
            // The kind is fixed; `__type` is written by `to_wire` only.
            return Ok(false);
        }
        let (spec, subitem) = self
            .harmonization
            .resolve(self.kind, key)
            .ok_or_else(|| FieldError::InvalidKey { key: key.to_string() })?;
        let type_name = spec.type_name;
        let value = if opts.sanitize && !subitem {
            match type_name.sanitize(&value) {
                Some(v) => v,
                None => {
                    return fail(opts, key, &value, format!("cannot be sanitized as {type_name}"));
                }
            }
        } else {
            value
        };
        if let Err(reason) = check_value(spec, subitem, &value) {
            return fail(opts, key, &value, reason);
        }
        if type_name == TypeName::JSONDict && !subitem {
            let Some(Value::Object(items)) = value.as_str().and_then(|s| serde_json::from_str::<Value>(s).ok()) else {
                return fail(opts, key, &value, "is not a json object".to_string());
            };
            if opts.overwrite == Some(true) && exists {
                self.remove(key);
            }
            for (sub, sub_value) in items {
                // For `extra` itself empty and ignored values are kept (IntelMQ #1335); other
                // JSONDict fields drop empty values and "-"/"N/A" (but keep null).
                if key != "extra"
                    && (is_empty_container(&sub_value) || (is_ignored(&sub_value) && !sub_value.is_null()))
                {
                    continue;
                }
                self.fields.insert(compact_str::format_compact!("{key}.{sub}"), sub_value);
            }
        } else {
            self.fields.insert(Key::from(key), value);
        }
        Ok(true)
    }

    /// The constructor's way of adding: as-is without raising, then sanitized (raising).
    fn add_lenient(&mut self, key: &str, value: Value) -> Result<bool, FieldError> {
        let as_is = AddOptions { sanitize: false, overwrite: None, raise_failure: false };
        if self.add_with(key, value.clone(), as_is)? {
            return Ok(true);
        }
        self.add_with(key, value, AddOptions::default())
    }

    /// IntelMQ `change(key, value)`: the key must exist; then `add` with overwrite.
    pub fn change(&mut self, key: &str, value: impl Into<Value>) -> Result<bool, FieldError> {
        if !self.contains(key) {
            return Err(FieldError::KeyNotExists { key: key.to_string() });
        }
        self.add_with(key, value.into(), AddOptions { overwrite: Some(true), ..AddOptions::default() })
    }

    /// IntelMQ `is_valid(key, value, sanitize)`: would this value be accepted? (`Err` for a bad key.)
    pub fn is_valid(&self, key: &str, value: &Value, sanitize: bool) -> Result<bool, FieldError> {
        if key == "__type" {
            return Ok(true);
        }
        let (spec, subitem) = self
            .harmonization
            .resolve(self.kind, key)
            .ok_or_else(|| FieldError::InvalidKey { key: key.to_string() })?;
        if is_ignored(value) {
            return Ok(false);
        }
        let sanitized;
        let value = if sanitize && !subitem {
            match spec.type_name.sanitize(value) {
                Some(v) => {
                    sanitized = v;
                    &sanitized
                }
                None => return Ok(false),
            }
        } else {
            value
        };
        Ok(check_value(spec, subitem, value).is_ok())
    }

    /// The stored value of a key (`extra` alone: `None`; use [`Message::get_jsondict`]).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.view().get(key)
    }

    /// The stored value as a string slice, when it is a JSON string.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        if let Some(p) = &self.packed {
            if let Some(v) = p.get(key) {
                return match v {
                    internal::PackedValue::Str(s) => Some(s),
                    _ => None,
                };
            }
        }
        self.fields.get(key).and_then(Value::as_str)
    }

    /// For a JSONDict field such as `extra`: the hierarchical object of its sub-keys, if any.
    pub fn get_jsondict(&self, field: &str) -> Option<Value> {
        let prefix = format!("{field}.");
        let mut root = Map::new();
        let mut any = false;
        for (key, value) in self.view() {
            if let Some(rest) = key.strip_prefix(&prefix) {
                any = true;
                insert_path(&mut root, rest, value.clone());
            }
        }
        any.then_some(Value::Object(root))
    }

    /// `key in msg`: the key is set; for a JSONDict field name, any of its sub-keys is set.
    pub fn contains(&self, key: &str) -> bool {
        if self.fields.contains_key(key) || self.packed.as_ref().is_some_and(|p| p.get(key).is_some()) {
            return true;
        }
        if self.harmonization.is_jsondict_field(self.kind, key) {
            let prefix = format!("{key}.");
            return self.fields.keys().any(|k| k.starts_with(&prefix))
                || self.packed.as_ref().is_some_and(|p| p.iter().any(|(k, _)| k.starts_with(&prefix)));
        }
        false
    }

    /// Removes a key (for a JSONDict field name, all its sub-keys) and returns the old value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        if self.packed.is_some() {
            if !self.contains(key) {
                return None;
            }
            self.unpack();
        }
        self.unpacked.take();
        if let Some(old) = self.fields.shift_remove(key) {
            return Some(old);
        }
        if self.harmonization.is_jsondict_field(self.kind, key) {
            let old = self.get_jsondict(key)?;
            let prefix = format!("{key}.");
            self.fields.retain(|k, _| !k.starts_with(&prefix));
            return Some(old);
        }
        None
    }

    /// The fields in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.view().iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The raw field map (insertion order).
    pub fn fields(&self) -> &Fields {
        self.view()
    }

    pub fn len(&self) -> usize {
        self.fields.len() + self.packed.as_ref().map_or(0, internal::Packed::len)
    }

    /// Makes room for `additional` more fields.
    pub fn reserve(&mut self, additional: usize) {
        self.fields.reserve(additional);
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `raw` base64-decoded, if present and decodable.
    pub fn raw_bytes(&self) -> Option<Vec<u8>> {
        types::base64_decode(self.get_str("raw")?)
    }

    /// IntelMQ `Message.hash(filter_keys, filter_type)`: lowercase hex SHA-256 (section 1.6).
    pub fn hash<S: std::hash::BuildHasher>(
        &self,
        filter_keys: &std::collections::HashSet<String, S>,
        filter_type: FilterType,
    ) -> String {
        hash::message_hash(self, filter_keys, filter_type)
    }

    /// IntelMQ `serialize()`: `json.dumps` with default settings (ASCII-escaped, `", "`/`": "`
    /// separators, insertion order, `__type` last). What goes on the pipeline and into dumps.
    pub fn to_wire(&self) -> String {
        wire_text(self.kind, self.view())
    }

    /// IntelMQ `unserialize` + `MessageFactory.from_dict`: the kind comes from `__type` (or
    /// `default_kind` when missing); every key is added without sanitizing, and again with
    /// sanitizing when that fails.
    pub fn from_wire(
        harmonization: Arc<Harmonization>,
        text: &[u8],
        default_kind: Option<MessageKind>,
    ) -> Result<Message, FieldError> {
        let value: Value = serde_json::from_slice(text).map_err(|e| FieldError::Decode { reason: e.to_string() })?;
        match value {
            Value::Object(map) => Message::from_map(harmonization, map, default_kind),
            other => Err(FieldError::Decode { reason: format!("expected a json object, got {}", json_kind(&other)) }),
        }
    }

    /// The form a node keeps messages in between its own bots (see [`internal`]): binary,
    /// already validated.
    pub fn to_internal(&self) -> Vec<u8> {
        match &self.packed {
            Some(p) => p.encode_with(self.kind, &self.fields),
            None => internal::encode(self.kind, &self.fields),
        }
    }

    /// Reads a queued message: the internal forms without validation, anything else (messages
    /// injected or recovered from outside) through [`Message::from_wire`] with full validation.
    pub fn decode(
        harmonization: Arc<Harmonization>,
        data: &[u8],
        default_kind: Option<MessageKind>,
    ) -> Result<Message, FieldError> {
        match data.first() {
            Some(&INTERNAL_FORMAT | &INTERNAL_FORMAT_2) => {
                let (kind, packed) = internal::Packed::new(data).map_err(|reason| FieldError::Decode { reason })?;
                let mut msg = Message::from_fields(kind, harmonization, Fields::default());
                msg.packed = Some(packed);
                Ok(msg)
            }
            Some(&INTERNAL_JSON_FORMAT) => {
                let map: Map<String, Value> =
                    serde_json::from_slice(&data[1..]).map_err(|e| FieldError::Decode { reason: e.to_string() })?;
                let kind = match map.get("__type").and_then(Value::as_str) {
                    Some(t) => MessageKind::parse(t)
                        .ok_or_else(|| FieldError::Decode { reason: format!("unknown __type `{t}`") })?,
                    None => {
                        default_kind.ok_or_else(|| FieldError::Decode { reason: "__type is missing".to_string() })?
                    }
                };
                let fields = map.into_iter().filter(|(k, _)| k != "__type").map(|(k, v)| (Key::from(k), v)).collect();
                Ok(Message::from_fields(kind, harmonization, fields))
            }
            _ => Message::from_wire(harmonization, data, default_kind),
        }
    }

    /// The JSON text of a queued message: the wire form of an internal one, anything else as is.
    pub fn payload(data: &[u8]) -> std::borrow::Cow<'_, [u8]> {
        match data.first() {
            Some(&INTERNAL_FORMAT | &INTERNAL_FORMAT_2) => match internal::decode(data) {
                Ok((kind, fields)) => std::borrow::Cow::Owned(wire_text(kind, &fields).into_bytes()),
                Err(_) => std::borrow::Cow::Borrowed(data),
            },
            Some(&INTERNAL_JSON_FORMAT) => std::borrow::Cow::Borrowed(&data[1..]),
            _ => std::borrow::Cow::Borrowed(data),
        }
    }

    /// Like [`Message::from_wire`], from an already parsed JSON object.
    pub fn from_map(
        harmonization: Arc<Harmonization>,
        map: Map<String, Value>,
        default_kind: Option<MessageKind>,
    ) -> Result<Message, FieldError> {
        let kind = match map.get("__type") {
            Some(Value::String(t)) => {
                MessageKind::parse(t).ok_or_else(|| FieldError::Decode { reason: format!("unknown __type `{t}`") })?
            }
            Some(other) => {
                return Err(FieldError::Decode { reason: format!("__type is not a string but {}", json_kind(other)) })
            }
            None => default_kind.ok_or_else(|| FieldError::Decode { reason: "__type is missing".to_string() })?,
        };
        let mut msg = Message::new(kind, harmonization);
        for (key, value) in map {
            if key == "__type" {
                continue;
            }
            msg.add_lenient(&key, value)?;
        }
        Ok(msg)
    }

    /// IntelMQ `to_dict(hierarchical, with_type, jsondict_as_string)`.
    pub fn to_dict(&self, opts: ExportOptions) -> Value {
        let mut out = Map::new();
        if opts.with_type {
            out.insert("__type".to_string(), Value::String(self.kind.as_str().to_string()));
        }
        let mut collapsed: Vec<(String, Map<String, Value>)> = Vec::new();
        for (key, value) in self.view() {
            if opts.jsondict_as_string {
                if let Some((field, rest)) = key.split_once('.') {
                    if self.harmonization.is_jsondict_field(self.kind, field) {
                        let pos = match collapsed.iter().position(|(f, _)| f == field) {
                            Some(pos) => pos,
                            None => {
                                collapsed.push((field.to_string(), Map::new()));
                                collapsed.len() - 1
                            }
                        };
                        // Sub-keys stay flat (`{"a.b": 1}`), as IntelMQ collapses them.
                        collapsed[pos].1.insert(rest.to_string(), value.clone());
                        continue;
                    }
                }
            }
            if opts.hierarchical {
                insert_path(&mut out, key, value.clone());
            } else {
                out.insert(key.to_string(), value.clone());
            }
        }
        for (field, obj) in collapsed {
            out.insert(field, Value::String(wire::dumps_unicode(&Value::Object(obj))));
        }
        Value::Object(out)
    }

    /// IntelMQ `to_json(hierarchical, with_type)`: `json.dumps(to_dict(..), ensure_ascii=False,
    /// sort_keys=True)`; what the file output writes per line.
    pub fn to_export_json(&self, opts: ExportOptions) -> String {
        self.to_export_json_without(opts, None)
    }

    /// [`Message::to_export_json`] of the message without field `skip` (what an output that drops
    /// `raw` writes), without copying the message.
    pub fn to_export_json_without(&self, opts: ExportOptions, skip: Option<&str>) -> String {
        if opts.hierarchical {
            let dict = match skip {
                Some(key) if self.contains(key) => {
                    let mut copy = self.clone();
                    copy.remove(key);
                    copy.to_dict(ExportOptions { jsondict_as_string: false, ..opts })
                }
                _ => self.to_dict(ExportOptions { jsondict_as_string: false, ..opts }),
            };
            return wire::dumps_sorted_unicode(&dict);
        }
        // Flat: the same text as the dict's, written from the fields without copying them.
        let kind = opts.with_type.then(|| Value::String(self.kind.as_str().to_string()));
        let mut entries = self.field_refs();
        if let Some(key) = skip {
            entries.retain(|(k, _)| *k != key);
        }
        if let Some(kind) = &kind {
            entries.push(("__type", FieldRef::Value(kind)));
        }
        entries.sort_by(|a, b| a.0.cmp(b.0));
        wire::dumps_entries_unicode(&entries)
    }
}

/// The packed fields decoded, followed by the fields added after them.
fn decoded(packed: &internal::Packed, added: &Fields) -> Fields {
    let mut all = packed.to_fields(added.len() + 4);
    all.extend(added.iter().map(|(k, v)| (k.clone(), v.clone())));
    all
}

/// IntelMQ's `_IGNORED_VALUES` plus `None`: adding them stores nothing.
fn is_ignored(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => matches!(s.as_str(), "" | "-" | "N/A"),
        _ => false,
    }
}

/// A value with `len() == 0` in Python (empty string, list or object).
fn is_empty_container(v: &Value) -> bool {
    match v {
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// IntelMQ's value checks after sanitizing: the type's `is_valid` (always true for JSONDict
/// sub-items), then `length`, `regex` and `iregex` on `str(value)`.
fn check_value(spec: &FieldSpec, subitem: bool, value: &Value) -> Result<(), String> {
    if !subitem && !spec.type_name.is_valid(value) {
        return Err(format!("is not a valid {}", spec.type_name));
    }
    if spec.length.is_none() && spec.regex.is_none() && spec.iregex.is_none() {
        return Ok(());
    }
    let text = wire::python_str(value);
    if let Some(max) = spec.length {
        let len = text.chars().count();
        if len > max {
            return Err(format!("too long: {len} > {max}"));
        }
    }
    if let Some(re) = &spec.regex {
        if !re.is_match(&text) {
            return Err(format!("does not match regex `{}`", re.as_str()));
        }
    }
    if let Some(re) = &spec.iregex {
        if !re.is_match(&text) {
            return Err(format!("does not match case-insensitive regex `{}`", re.as_str()));
        }
    }
    Ok(())
}

/// The error (or `Ok(false)` without `raise_failure`) for a value that does not fit.
fn fail(opts: AddOptions, key: &str, value: &Value, reason: String) -> Result<bool, FieldError> {
    if opts.raise_failure {
        Err(FieldError::InvalidValue { key: key.to_string(), value: wire::dumps(value), reason })
    } else {
        Ok(false)
    }
}

/// Inserts `value` at the dotted `path` below `root`, creating objects on the way. A path
/// that runs through a non-object value replaces it (IntelMQ would fail there).
fn insert_path(root: &mut Map<String, Value>, path: &str, value: Value) {
    match path.split_once('.') {
        None => {
            root.insert(path.to_string(), value);
        }
        Some((head, rest)) => {
            let entry = root.entry(head.to_string()).or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            if let Value::Object(child) = entry {
                insert_path(child, rest, value);
            }
        }
    }
}

/// IntelMQ's `serialize()` of a kind and its fields (see [`Message::to_wire`]).
fn wire_text(kind: MessageKind, fields: &Fields) -> String {
    let mut out = String::with_capacity(64 + fields.len() * 32);
    out.push('{');
    for (key, value) in fields {
        out.push_str(&wire::json_string(key, true));
        out.push_str(": ");
        wire::write_json(&mut out, value, true, false);
        out.push_str(", ");
    }
    out.push_str("\"__type\": \"");
    out.push_str(kind.as_str());
    out.push_str("\"}");
    out
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event() -> Message {
        Message::new(MessageKind::Event, Harmonization::builtin())
    }

    fn report() -> Message {
        Message::new(MessageKind::Report, Harmonization::builtin())
    }

    #[test]
    fn add_sanitizes_and_stores() {
        let mut m = event();
        assert_eq!(m.add("source.ip", " 192.0.2.1 "), Ok(true));
        assert_eq!(m.add("source.port", "80"), Ok(true));
        assert_eq!(m.add("classification.type", "Botnet Drone"), Ok(true));
        assert_eq!(m.get("source.ip"), Some(&json!("192.0.2.1")));
        assert_eq!(m.get("source.port"), Some(&json!(80)));
        assert_eq!(m.get_str("classification.type"), Some("infected-system"));
    }

    #[test]
    fn ignored_values_store_nothing() {
        let mut m = event();
        for v in [Value::Null, json!(""), json!("-"), json!("N/A")] {
            assert_eq!(m.add_with("source.ip", v, AddOptions::default()), Ok(false));
        }
        assert!(m.is_empty());
        // Not ignored: whitespace only, which then fails validation.
        assert!(matches!(m.add("comment", " "), Err(FieldError::InvalidValue { .. })));
    }

    #[test]
    fn existing_key_rules() {
        let mut m = event();
        m.add("source.port", 80).expect("first add");
        assert_eq!(m.add("source.port", 81), Err(FieldError::KeyExists { key: "source.port".to_string() }));
        let keep = AddOptions { overwrite: Some(false), ..AddOptions::default() };
        assert_eq!(m.add_with("source.port", json!(81), keep), Ok(false));
        assert_eq!(m.get("source.port"), Some(&json!(80)));
        let replace = AddOptions { overwrite: Some(true), ..AddOptions::default() };
        assert_eq!(m.add_with("source.port", json!(82), replace), Ok(true));
        assert_eq!(m.get("source.port"), Some(&json!(82)));
        // Overwriting with an ignored value deletes the key.
        assert_eq!(m.add_with("source.port", json!("-"), replace), Ok(false));
        assert!(!m.contains("source.port"));
    }

    #[test]
    fn overwrite_keeps_the_key_position() {
        let mut m = event();
        m.add("source.ip", "192.0.2.1").expect("ip");
        m.add("source.port", 80).expect("port");
        m.change("source.ip", "192.0.2.2").expect("change");
        let keys: Vec<&str> = m.fields().keys().map(Key::as_str).collect();
        assert_eq!(keys, ["source.ip", "source.port"]);
    }

    #[test]
    fn invalid_keys_and_values() {
        let mut m = event();
        assert_eq!(m.add("source.foo", "x"), Err(FieldError::InvalidKey { key: "source.foo".to_string() }));
        assert!(matches!(m.add("extra.Bad", 1), Err(FieldError::InvalidKey { .. })));
        assert!(matches!(m.add("comment.sub", "x"), Err(FieldError::InvalidKey { .. })));
        let err = m.add("source.ip", "not an ip").expect_err("bad ip");
        match err {
            FieldError::InvalidValue { key, value, reason } => {
                assert_eq!(key, "source.ip");
                assert_eq!(value, "\"not an ip\"");
                assert!(reason.contains("IPAddress"), "{reason}");
            }
            other => panic!("unexpected {other:?}"),
        }
        let quiet = AddOptions { raise_failure: false, ..AddOptions::default() };
        assert_eq!(m.add_with("source.ip", json!("nope"), quiet), Ok(false));
        let mut r = report();
        assert!(matches!(r.add("source.ip", "192.0.2.1"), Err(FieldError::InvalidKey { .. })));
    }

    #[test]
    fn length_and_regex_constraints() {
        let mut m = event();
        assert!(
            matches!(m.add("source.port", 123456), Err(FieldError::InvalidValue { reason, .. }) if reason.contains("too long"))
        );
        assert_eq!(m.add("destination.port", 123456), Ok(true));
        assert!(matches!(m.add("source.geolocation.cc", "AUT"), Err(FieldError::InvalidValue { .. })));
        assert!(
            matches!(m.add("source.geolocation.cc", "A!"), Err(FieldError::InvalidValue { reason, .. }) if reason.contains("regex"))
        );
        assert_eq!(m.add("source.geolocation.cc", "at"), Ok(true));
        assert_eq!(m.get_str("source.geolocation.cc"), Some("AT"));
        assert_eq!(m.add("protocol.transport", "TCP"), Ok(true));
        assert_eq!(m.get_str("protocol.transport"), Some("tcp"));
        assert!(matches!(m.add("protocol.application", "ü"), Err(FieldError::InvalidValue { .. })));
        assert!(matches!(m.add("fqdn_missing", "x"), Err(FieldError::InvalidKey { .. })));
        assert!(matches!(m.add("source.fqdn", "exa mple.com"), Ok(true)));
    }

    #[test]
    fn without_sanitize_values_must_already_be_valid() {
        let mut m = event();
        let raw = AddOptions { sanitize: false, ..AddOptions::default() };
        assert!(matches!(m.add_with("source.port", json!("80"), raw), Err(FieldError::InvalidValue { .. })));
        assert_eq!(m.add_with("source.port", json!(80), raw), Ok(true));
        assert!(matches!(m.add_with("raw", json!("Hello"), raw), Err(FieldError::InvalidValue { .. })));
    }

    #[test]
    fn change_requires_an_existing_key() {
        let mut m = event();
        assert_eq!(m.change("source.port", 80), Err(FieldError::KeyNotExists { key: "source.port".to_string() }));
        m.add("source.port", 80).expect("add");
        assert_eq!(m.change("source.port", "81"), Ok(true));
        assert_eq!(m.get("source.port"), Some(&json!(81)));
    }

    #[test]
    fn is_valid_checks_without_storing() {
        let m = event();
        assert_eq!(m.is_valid("source.port", &json!("80"), true), Ok(true));
        assert_eq!(m.is_valid("source.port", &json!("80"), false), Ok(false));
        assert_eq!(m.is_valid("source.ip", &json!("x"), true), Ok(false));
        assert_eq!(m.is_valid("source.ip", &json!(""), true), Ok(false));
        assert_eq!(m.is_valid("extra.anything", &json!([1, {"a": null}]), false), Ok(true));
        assert!(matches!(m.is_valid("nope", &json!(1), true), Err(FieldError::InvalidKey { .. })));
        assert!(m.is_empty());
    }

    #[test]
    fn extra_subkeys_keep_json_native_values() {
        let mut m = event();
        assert_eq!(m.add("extra.count", 5), Ok(true));
        assert_eq!(m.add("extra.list", json!([1, "a"])), Ok(true));
        assert_eq!(m.add("extra.obj", json!({"b": {"c": 1}})), Ok(true));
        assert_eq!(m.add("extra.text", " padded "), Ok(true));
        assert_eq!(m.get("extra.count"), Some(&json!(5)));
        assert_eq!(m.get("extra.text"), Some(&json!(" padded ")));
        assert!(m.contains("extra"));
        assert_eq!(m.get("extra"), None);
        assert_eq!(
            m.get_jsondict("extra"),
            Some(json!({"count": 5, "list": [1, "a"], "obj": {"b": {"c": 1}}, "text": " padded "}))
        );
    }

    #[test]
    fn extra_as_a_whole_splits_one_level() {
        let mut m = event();
        assert_eq!(m.add("extra", json!({"z": 1, "a": {"b": 2}, "empty": "", "none": null})), Ok(true));
        let keys: Vec<&str> = m.fields().keys().map(Key::as_str).collect();
        // A dict is dumped with sorted keys before splitting, as IntelMQ does.
        assert_eq!(keys, ["extra.a", "extra.empty", "extra.none", "extra.z"]);
        assert_eq!(m.get("extra.a"), Some(&json!({"b": 2})));
        assert_eq!(m.get("extra.none"), Some(&Value::Null));
        assert_eq!(m.add("extra", json!({"q": 1})), Err(FieldError::KeyExists { key: "extra".to_string() }));
        // A JSON string keeps its own key order; overwrite replaces all sub-keys.
        let replace = AddOptions { overwrite: Some(true), ..AddOptions::default() };
        assert_eq!(m.add_with("extra", json!("{\"y\": 1, \"x\": 2}"), replace), Ok(true));
        let keys: Vec<&str> = m.fields().keys().map(Key::as_str).collect();
        assert_eq!(keys, ["extra.y", "extra.x"]);
        assert!(matches!(m.add_with("extra", json!({}), replace), Err(FieldError::InvalidValue { .. })));
        assert!(matches!(m.add_with("extra", json!("[1]"), replace), Err(FieldError::InvalidValue { .. })));
    }

    #[test]
    fn remove_and_contains_for_jsondict() {
        let mut m = event();
        m.add("extra.a", 1).expect("a");
        m.add("extra.b.c", 2).expect("b.c");
        m.add("comment", "x").expect("comment");
        assert!(m.contains("extra"));
        assert!(m.contains("extra.a"));
        assert!(!m.contains("extra.z"));
        assert_eq!(m.remove("extra"), Some(json!({"a": 1, "b": {"c": 2}})));
        assert!(!m.contains("extra"));
        assert_eq!(m.len(), 1);
        assert_eq!(m.remove("comment"), Some(json!("x")));
        assert_eq!(m.remove("comment"), None);
    }

    #[test]
    fn wire_format_is_python_json() {
        let mut m = report();
        m.add("feed.name", "Test Feed ö").expect("name");
        m.add("feed.accuracy", 100).expect("accuracy");
        m.add("raw", "Hello").expect("raw");
        m.add("time.observation", "2024-01-01T00:00:00+00:00").expect("time");
        assert_eq!(
            m.to_wire(),
            r#"{"feed.name": "Test Feed \u00f6", "feed.accuracy": 100.0, "raw": "SGVsbG8=", "time.observation": "2024-01-01T00:00:00+00:00", "__type": "Report"}"#
        );
        assert_eq!(m.raw_bytes(), Some(b"Hello".to_vec()));
        assert_eq!(event().to_wire(), r#"{"__type": "Event"}"#);
    }

    #[test]
    fn wire_round_trip() {
        let mut m = event();
        m.add("source.ip", "2001:db8::1").expect("ip");
        m.add("extra.list", json!([1, 2.5, "x"])).expect("extra");
        m.add("feed.accuracy", 50.5).expect("accuracy");
        m.add("source.tor_node", true).expect("bool");
        let text = m.to_wire();
        let back = Message::from_wire(Harmonization::builtin(), text.as_bytes(), None).expect("decodes");
        assert_eq!(back, m);
        assert_eq!(back.to_wire(), text);
    }

    #[test]
    fn from_wire_repairs_and_rejects() {
        let h = Harmonization::builtin();
        let text = br#"{"source.port": "80", "source.ip": "192.0.2.1/32", "extra.n": null, "__type": "Event"}"#;
        let m = Message::from_wire(h.clone(), text, None).expect("repairable");
        assert_eq!(m.get("source.port"), Some(&json!(80)));
        assert_eq!(m.get_str("source.ip"), Some("192.0.2.1"));
        assert!(!m.contains("extra.n"));
        let err = Message::from_wire(h.clone(), br#"{"source.ip": "x", "__type": "Event"}"#, None).expect_err("bad ip");
        assert!(matches!(err, FieldError::InvalidValue { .. }));
        let err = Message::from_wire(h.clone(), br#"{"nope": 1, "__type": "Event"}"#, None).expect_err("bad key");
        assert!(matches!(err, FieldError::InvalidKey { .. }));
        assert!(matches!(Message::from_wire(h.clone(), b"[1]", None), Err(FieldError::Decode { .. })));
        assert!(matches!(Message::from_wire(h.clone(), b"{", None), Err(FieldError::Decode { .. })));
        assert!(matches!(
            Message::from_wire(h.clone(), br#"{"__type": "Message"}"#, None),
            Err(FieldError::Decode { .. })
        ));
        assert!(matches!(Message::from_wire(h.clone(), br#"{"comment": "x"}"#, None), Err(FieldError::Decode { .. })));
        let m = Message::from_wire(h, br#"{"comment": "x"}"#, Some(MessageKind::Event)).expect("default kind");
        assert_eq!(m.kind(), MessageKind::Event);
        assert_eq!(m.get_str("comment"), Some("x"));
    }

    #[test]
    fn from_wire_accepts_extra_as_a_string() {
        let text = br#"{"extra": "{\"b\": 1, \"a\": 2}", "__type": "Event"}"#;
        let m = Message::from_wire(Harmonization::builtin(), text, None).expect("valid");
        let keys: Vec<&str> = m.fields().keys().map(Key::as_str).collect();
        assert_eq!(keys, ["extra.b", "extra.a"]);
    }

    #[test]
    fn new_report_sets_time_observation() {
        let r = Message::new_report(Harmonization::builtin());
        assert_eq!(r.kind(), MessageKind::Report);
        assert!(r.get_str("time.observation").is_some_and(datetime::is_valid));
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn event_from_report_copies_the_template_and_copy_fields() {
        let mut r = report();
        r.add("feed.name", "Feed").expect("name");
        r.add("feed.accuracy", 90).expect("accuracy");
        r.add("raw", "data").expect("raw");
        r.add("time.observation", "2024-01-01T00:00:00+00:00").expect("time");
        r.add("extra.file_name", "a.csv").expect("extra");
        let e = Message::event_from_report(&r, &[]);
        assert_eq!(e.kind(), MessageKind::Event);
        let keys: Vec<&str> = e.fields().keys().map(Key::as_str).collect();
        assert_eq!(keys, ["feed.accuracy", "feed.name", "time.observation"]);
        assert_eq!(e.get("feed.accuracy"), Some(&json!(90.0)));
        let e = Message::event_from_report(&r, &["extra.file_name".to_string(), "extra.missing".to_string()]);
        assert_eq!(e.get_str("extra.file_name"), Some("a.csv"));
        let e = Message::event_from_report(&r, &["extra".to_string()]);
        assert_eq!(e.get_str("extra.file_name"), Some("a.csv"));
    }

    #[test]
    fn to_report_keeps_report_keys_only() {
        let mut e = event();
        e.add("feed.name", "Feed").expect("name");
        e.add("source.ip", "192.0.2.1").expect("ip");
        e.add("extra.x", 1).expect("extra");
        let r = e.to_report();
        assert_eq!(r.kind(), MessageKind::Report);
        let keys: Vec<&str> = r.fields().keys().map(Key::as_str).collect();
        assert_eq!(keys, ["feed.name", "extra.x"]);
        assert!(!r.contains("time.observation"));
    }

    #[test]
    fn to_dict_flat_hierarchical_and_jsondict_string() {
        let mut m = event();
        m.add("source.ip", "192.0.2.1").expect("ip");
        m.add("extra.a.b", 1).expect("extra");
        m.add("extra.c", "ö").expect("extra");
        let flat = m.to_dict(ExportOptions::default());
        assert_eq!(flat, json!({"source.ip": "192.0.2.1", "extra.a.b": 1, "extra.c": "ö"}));
        let tree = m.to_dict(ExportOptions { hierarchical: true, with_type: true, ..ExportOptions::default() });
        assert_eq!(tree, json!({"__type": "Event", "source": {"ip": "192.0.2.1"}, "extra": {"a": {"b": 1}, "c": "ö"}}));
        let collapsed = m.to_dict(ExportOptions { jsondict_as_string: true, ..ExportOptions::default() });
        assert_eq!(collapsed, json!({"source.ip": "192.0.2.1", "extra": "{\"a.b\": 1, \"c\": \"ö\"}"}));
    }

    #[test]
    fn export_json_is_sorted_and_unicode() {
        let mut m = event();
        m.add("source.ip", "192.0.2.1").expect("ip");
        m.add("feed.name", "Fé").expect("name");
        m.add("extra.z", 1).expect("extra");
        assert_eq!(
            m.to_export_json(ExportOptions::default()),
            r#"{"extra.z": 1, "feed.name": "Fé", "source.ip": "192.0.2.1"}"#
        );
        assert_eq!(
            m.to_export_json(ExportOptions { hierarchical: true, with_type: true, jsondict_as_string: true }),
            r#"{"__type": "Event", "extra": {"z": 1}, "feed": {"name": "Fé"}, "source": {"ip": "192.0.2.1"}}"#
        );
    }

    #[test]
    fn type_key_is_not_stored() {
        let mut m = event();
        assert_eq!(m.add("__type", "Report"), Ok(false));
        assert!(m.is_empty());
        assert_eq!(m.is_valid("__type", &json!("x"), true), Ok(true));
    }

    #[test]
    fn message_kind_names() {
        assert_eq!(MessageKind::parse("Report"), Some(MessageKind::Report));
        assert_eq!(MessageKind::parse("Event"), Some(MessageKind::Event));
        assert_eq!(MessageKind::parse("event"), None);
        assert_eq!(MessageKind::Event.as_str(), "Event");
    }

    #[test]
    fn equality_ignores_the_harmonization_instance() {
        let mut a = event();
        let mut b = Message::new(MessageKind::Event, Arc::new((*Harmonization::builtin()).clone()));
        a.add("comment", "x").expect("a");
        b.add("comment", "x").expect("b");
        assert_eq!(a, b);
        assert_ne!(a, report());
    }

    /// An event with strings, numbers, a float, a boolean-free JSONDict and non-ASCII text.
    fn rich_event() -> Message {
        let mut m = event();
        m.add("source.ip", "192.0.2.1").expect("ip");
        m.add("source.port", 80).expect("port");
        m.add("feed.accuracy", 90.5).expect("accuracy");
        m.add("source.url", "http://Example.com/ä?x=1").expect("url");
        m.add("classification.type", "malware-distribution").expect("type");
        m.add("extra", r#"{"note": "it's", "n": [1, 2]}"#).expect("extra");
        m.add("raw", "aGVsbG8=").expect("raw");
        m.add("time.observation", "2024-01-01T00:00:00+00:00").expect("time");
        m
    }

    fn packed(m: &Message) -> Message {
        let msg = Message::decode(Harmonization::builtin(), &m.to_internal(), None).expect("decode");
        assert!(msg.packed.is_some(), "the internal form is read packed");
        msg
    }

    #[test]
    fn a_packed_message_reads_like_the_decoded_one() {
        let m = rich_event();
        let p = packed(&m);
        assert_eq!(p, m);
        assert_eq!(p.len(), m.len());
        for (key, value) in m.iter() {
            assert!(p.contains(key), "{key}");
            assert_eq!(p.get_str(key), value.as_str(), "{key}");
        }
        assert!(p.contains("extra"));
        assert!(!p.contains("destination.ip"));
        assert_eq!(p.get_str("source.port"), None);
        assert_eq!(p.get_jsondict("extra"), m.get_jsondict("extra"));
        assert_eq!(p.to_wire(), m.to_wire());
        for opts in [ExportOptions::default(), ExportOptions { with_type: true, ..ExportOptions::default() }] {
            assert_eq!(p.to_export_json(opts), m.to_export_json(opts));
        }
        let keys: std::collections::HashSet<String> = ["raw".to_string()].into();
        for filter in [FilterType::Blacklist, FilterType::Whitelist] {
            assert_eq!(p.hash(&keys, filter), m.hash(&keys, filter));
        }
        // Nothing above needed the fields decoded but `get_jsondict` and `to_wire`.
        assert_eq!(packed(&m).to_internal(), m.to_internal());
    }

    #[test]
    fn changes_to_a_packed_message_match_changes_to_the_decoded_one() {
        type Change = fn(&mut Message);
        let changes: [(&str, Change); 6] = [
            ("add a new key", |m| assert_eq!(m.add("classification.taxonomy", "malicious-code"), Ok(true))),
            ("add an existing key", |m| {
                assert!(matches!(m.add("source.ip", "192.0.2.2"), Err(FieldError::KeyExists { .. })));
            }),
            ("overwrite", |m| {
                let opts = AddOptions { overwrite: Some(true), ..AddOptions::default() };
                assert_eq!(m.add_with("source.port", json!(443), opts), Ok(true));
            }),
            ("change", |m| assert_eq!(m.change("source.ip", "192.0.2.3"), Ok(true))),
            ("remove", |m| assert_eq!(m.remove("raw"), Some(json!("YUdWc2JHOD0=")))),
            ("remove a JSONDict", |m| assert!(m.remove("extra").is_some())),
        ];
        for (what, change) in changes {
            let mut m = rich_event();
            let mut p = packed(&m);
            change(&mut m);
            change(&mut p);
            assert_eq!(p, m, "{what}");
            assert_eq!(
                p.iter().map(|(k, _)| k.to_string()).collect::<Vec<_>>(),
                m.iter().map(|(k, _)| k.to_string()).collect::<Vec<_>>(),
                "{what}: order"
            );
            assert_eq!(packed(&p).to_wire(), m.to_wire(), "{what}: encoded again");
            // A second change after the fields were decoded for a `&Value` accessor.
            let _ = p.get("source.ip");
            p.add("destination.port", 25).expect("add after get");
            m.add("destination.port", 25).expect("add after get");
            assert_eq!(packed(&p).to_wire(), m.to_wire(), "{what}: after get");
        }
    }

    #[test]
    fn exporting_without_a_field_equals_removing_it_first() {
        let m = rich_event();
        for hierarchical in [false, true] {
            let opts = ExportOptions { hierarchical, ..ExportOptions::default() };
            let mut removed = m.clone();
            removed.remove("raw");
            assert_eq!(packed(&m).to_export_json_without(opts, Some("raw")), removed.to_export_json(opts));
            assert_eq!(m.to_export_json_without(opts, Some("raw")), removed.to_export_json(opts));
            assert_eq!(m.to_export_json_without(opts, None), m.to_export_json(opts));
        }
    }

    #[test]
    fn damaged_internal_entries_are_refused() {
        let data = rich_event().to_internal();
        for cut in 1..data.len() {
            assert!(Message::decode(Harmonization::builtin(), &data[..cut], None).is_err(), "cut at {cut}");
        }
        let mut fields = Fields::default();
        fields.insert(Key::from("source.fqdn"), json!("example.com"));
        let good = internal::encode(MessageKind::Event, &fields);
        // The value's first byte made invalid UTF-8.
        let mut bad = good.clone();
        let at = good.len() - "example.com".len();
        bad[at] = 0xff;
        assert!(Message::decode(Harmonization::builtin(), &bad, None).is_err());
        // An array whose JSON text is not JSON.
        let mut fields = Fields::default();
        fields.insert(Key::from("extra.list"), json!([1]));
        let mut bad = internal::encode(MessageKind::Event, &fields);
        let last = bad.len() - 1;
        bad[last] = b'}';
        assert!(Message::decode(Harmonization::builtin(), &bad, None).is_err());
    }
}
