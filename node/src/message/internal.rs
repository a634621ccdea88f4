//! The binary form a node keeps messages in between its own bots (format byte
//! [`INTERNAL_FORMAT`]): the fields as they are, already validated, so reading them back needs no
//! JSON parsing and no harmonization. JSON stays the form at the edges (injected and recovered
//! messages, dumps, gRPC, outputs).
//!
//! Layout (format 3): the format byte, the kind (0 Report, 1 Event), the number of fields and the
//! length of the text (varints), a table with one entry per field, then the text: every key not
//! in [`KNOWN_KEYS`] and every string value, one after the other in field order, UTF-8. A table
//! entry is the key - a varint, `n > 0` for `KNOWN_KEYS[n - 1]`, 0 followed by the length of a
//! key in the text - and the value: a tag byte and its payload - 0 null, 1 false, 2 true, 3 i64
//! (8 bytes LE), 4 u64 (8 bytes LE), 5 f64 (8 bytes LE), 6 string (varint length in the text),
//! 7 an array or object as JSON text (varint length in the text).
//!
//! Why so: the harmonized field names were a third of every entry, written to the write-ahead
//! log and the memtable at each hop; and with all strings in one place, one UTF-8 check of the
//! text when an entry is read lets every later `&str` of it be a slice, not a check again.
//!
//! Format 2 (each key and string inline after its table entry) is still read. Persisted: a new
//! layout takes a new format byte.

use std::sync::LazyLock;

use serde_json::{Number, Value};

use super::{Fields, Key, MessageKind};

/// The format byte of the binary internal form. Never reuse it for another layout.
pub const INTERNAL_FORMAT: u8 = 0x03;

/// The format byte of the previous binary form (keys and strings inline); still read.
pub const INTERNAL_FORMAT_2: u8 = 0x02;

/// The format byte of the first internal form (validated wire JSON); still read.
pub const INTERNAL_JSON_FORMAT: u8 = 0x01;

/// Field names format 3 writes as a number (IntelMQ's harmonized event and report fields).
/// Persisted by position: names may be appended, never moved or removed.
pub const KNOWN_KEYS: [&str; 82] = [
    "classification.identifier",
    "classification.taxonomy",
    "classification.type",
    "comment",
    "destination.abuse_contact",
    "destination.account",
    "destination.allocated",
    "destination.as_name",
    "destination.asn",
    "destination.domain_suffix",
    "destination.fqdn",
    "destination.geolocation.cc",
    "destination.geolocation.city",
    "destination.geolocation.country",
    "destination.geolocation.latitude",
    "destination.geolocation.longitude",
    "destination.geolocation.region",
    "destination.geolocation.state",
    "destination.ip",
    "destination.local_hostname",
    "destination.local_ip",
    "destination.network",
    "destination.port",
    "destination.registry",
    "destination.reverse_dns",
    "destination.tor_node",
    "destination.url",
    "destination.urlpath",
    "event_description.target",
    "event_description.text",
    "event_description.url",
    "event_hash",
    "extra",
    "feed.accuracy",
    "feed.code",
    "feed.documentation",
    "feed.name",
    "feed.provider",
    "feed.url",
    "malware.hash.md5",
    "malware.hash.sha1",
    "malware.hash.sha256",
    "malware.name",
    "malware.version",
    "misp.attribute_uuid",
    "misp.event_uuid",
    "output",
    "protocol.application",
    "protocol.transport",
    "raw",
    "rtir_id",
    "screenshot_url",
    "source.abuse_contact",
    "source.account",
    "source.allocated",
    "source.as_name",
    "source.asn",
    "source.domain_suffix",
    "source.fqdn",
    "source.geolocation.cc",
    "source.geolocation.city",
    "source.geolocation.country",
    "source.geolocation.cymru_cc",
    "source.geolocation.geoip_cc",
    "source.geolocation.latitude",
    "source.geolocation.longitude",
    "source.geolocation.region",
    "source.geolocation.state",
    "source.ip",
    "source.local_hostname",
    "source.local_ip",
    "source.network",
    "source.port",
    "source.registry",
    "source.reverse_dns",
    "source.tor_node",
    "source.url",
    "source.urlpath",
    "status",
    "time.observation",
    "time.source",
    "tlp",
];

/// The position of a known key in [`KNOWN_KEYS`].
fn known_id(key: &str) -> Option<u8> {
    static IDS: LazyLock<rustc_hash::FxHashMap<&'static str, u8>> =
        LazyLock::new(|| KNOWN_KEYS.iter().zip(0u8..).map(|(k, i)| (*k, i)).collect());
    IDS.get(key).copied()
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Encodes a message's kind and fields.
pub fn encode(kind: MessageKind, fields: &Fields) -> Vec<u8> {
    Packed::default().encode_with(kind, fields)
}

/// The format byte, the kind, the number of fields and the length of the text.
fn put_header(out: &mut Vec<u8>, kind: MessageKind, count: usize, text_len: usize) {
    out.push(INTERNAL_FORMAT);
    out.push(match kind {
        MessageKind::Report => 0,
        MessageKind::Event => 1,
    });
    put_varint(out, count as u64);
    put_varint(out, text_len as u64);
}

/// One table entry of format 3: the key, the value's tag and its payload or length.
fn put_entry(out: &mut Vec<u8>, key: KeyAt, value: ValueAt) {
    match key {
        KeyAt::Known(id) => put_varint(out, u64::from(id) + 1),
        KeyAt::Text(_, n) => {
            out.push(0);
            put_varint(out, u64::from(n));
        }
    }
    let (tag, eight, length) = match value {
        ValueAt::Null => (0, None, None),
        ValueAt::Bool(b) => (1 + u8::from(b), None, None),
        ValueAt::I64(i) => (3, Some(i.to_le_bytes()), None),
        ValueAt::U64(u) => (4, Some(u.to_le_bytes()), None),
        ValueAt::F64(f) => (5, Some(f.to_le_bytes()), None),
        ValueAt::Str(_, n) => (6, None, Some(n)),
        ValueAt::Json(_, n) => (7, None, Some(n)),
    };
    out.push(tag);
    if let Some(bytes) = eight {
        out.extend_from_slice(&bytes);
    }
    if let Some(n) = length {
        put_varint(out, u64::from(n));
    }
}

/// Decoded fields on their way into the encoded form: their table entries (stretches counted
/// from the start of their own text) and the length of that text (arrays and objects serialised
/// once, for both).
struct Tail {
    entries: Vec<(KeyAt, ValueAt)>,
    text_len: usize,
    json: Vec<String>,
}

impl Tail {
    fn of(fields: &Fields) -> Tail {
        let mut t = Tail { entries: Vec::with_capacity(fields.len()), text_len: 0, json: Vec::new() };
        let stretch = |text_len: &mut usize, n: usize| {
            let at = *text_len as u32;
            *text_len += n;
            (at, n as u32)
        };
        for (k, v) in fields {
            let key = match known_id(k) {
                Some(id) => KeyAt::Known(id),
                None => {
                    let (at, n) = stretch(&mut t.text_len, k.len());
                    KeyAt::Text(at, n)
                }
            };
            let value = match v {
                Value::Null => ValueAt::Null,
                Value::Bool(b) => ValueAt::Bool(*b),
                Value::Number(n) => match (n.as_i64(), n.as_u64()) {
                    (Some(i), _) => ValueAt::I64(i),
                    (None, Some(u)) => ValueAt::U64(u),
                    (None, None) => ValueAt::F64(n.as_f64().unwrap_or(f64::NAN)),
                },
                Value::String(s) => {
                    let (at, n) = stretch(&mut t.text_len, s.len());
                    ValueAt::Str(at, n)
                }
                Value::Array(_) | Value::Object(_) => {
                    let text = serde_json::to_string(v).unwrap_or_default();
                    let (at, n) = stretch(&mut t.text_len, text.len());
                    t.json.push(text);
                    ValueAt::Json(at, n)
                }
            };
            t.entries.push((key, value));
        }
        t
    }

    /// Appends the text of `fields` (the fields this tail was made of).
    fn write_text(&self, out: &mut Vec<u8>, fields: &Fields) {
        let mut json = self.json.iter();
        for ((k, v), (key, value)) in fields.iter().zip(&self.entries) {
            if let KeyAt::Text(..) = key {
                out.extend_from_slice(k.as_bytes());
            }
            match (v, value) {
                (Value::String(s), _) => out.extend_from_slice(s.as_bytes()),
                (_, ValueAt::Json(..)) => out.extend_from_slice(json.next().map_or(&b""[..], |s| s.as_bytes())),
                _ => {}
            }
        }
    }
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, String> {
        let b = *self.data.get(self.pos).ok_or("truncated")?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, String> {
        // Most varints here (key numbers, lengths) are one byte.
        if let Some(b) = self.data.get(self.pos).filter(|b| **b < 0x80) {
            self.pos += 1;
            return Ok(u64::from(*b));
        }
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint too long".to_string())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.data.len()).ok_or("truncated")?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn eight(&mut self) -> Result<[u8; 8], String> {
        let b = self.take(8)?;
        b.try_into().map_err(|_| "truncated".to_string())
    }
}

/// Decodes what [`encode`] wrote (`data` starts with the format byte).
pub fn decode(data: &[u8]) -> Result<(MessageKind, Fields), String> {
    let (kind, packed) = Packed::new(data)?;
    Ok((kind, packed.to_fields(0)))
}

/// A value of the internal form, borrowed from the encoded bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PackedValue<'a> {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(&'a str),
    /// An array or object, as JSON text.
    Json(&'a str),
}

impl PackedValue<'_> {
    /// The JSON value it stands for.
    pub fn to_value(self) -> Value {
        match self {
            PackedValue::Null => Value::Null,
            PackedValue::Bool(b) => Value::Bool(b),
            PackedValue::I64(i) => Value::Number(i.into()),
            PackedValue::U64(u) => Value::Number(u.into()),
            // Finite: checked when the bytes were packed.
            PackedValue::F64(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
            PackedValue::Str(s) => Value::String(s.to_string()),
            // Valid JSON: checked when the bytes were packed.
            PackedValue::Json(text) => serde_json::from_str(text).unwrap_or(Value::Null),
        }
    }
}

/// Where a field's key is: a known name, or a stretch of the text.
#[derive(Clone, Copy, Debug, PartialEq)]
enum KeyAt {
    Known(u8),
    Text(u32, u32),
}

/// A field's value: inline, or a stretch of the text.
#[derive(Clone, Copy, Debug, PartialEq)]
enum ValueAt {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(u32, u32),
    Json(u32, u32),
}

/// The fields of a message in the internal form, kept encoded: reading a field or passing the
/// message on needs no allocation per field. [`Packed::new`] checks the whole entry once (layout,
/// UTF-8, finite floats, JSON of arrays and objects), so reading it later cannot fail.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Packed {
    /// Keys not known by number and string values, one after the other.
    text: Box<str>,
    fields: Vec<(KeyAt, ValueAt)>,
}

/// Reads a value's tag and payload; a string's stretch of the text comes from `string`.
fn read_tagged<'a>(
    r: &mut Reader<'a>,
    mut string: impl FnMut(&mut Reader<'a>) -> Result<(u32, u32), String>,
) -> Result<ValueAt, String> {
    Ok(match r.byte()? {
        0 => ValueAt::Null,
        1 => ValueAt::Bool(false),
        2 => ValueAt::Bool(true),
        3 => ValueAt::I64(i64::from_le_bytes(r.eight()?)),
        4 => ValueAt::U64(u64::from_le_bytes(r.eight()?)),
        5 => ValueAt::F64(f64::from_le_bytes(r.eight()?)),
        6 => {
            let (a, n) = string(r)?;
            ValueAt::Str(a, n)
        }
        7 => {
            let (a, n) = string(r)?;
            ValueAt::Json(a, n)
        }
        t => return Err(format!("unknown value tag {t}")),
    })
}

/// The stretch of `n` bytes of the text at `*text_at`, which moves past it.
fn next_stretch(text_at: &mut usize, n: u64) -> Result<(u32, u32), String> {
    let at = u32::try_from(*text_at).map_err(|_| "an entry over 4 GB".to_string())?;
    let n = u32::try_from(n).map_err(|_| "an entry over 4 GB".to_string())?;
    *text_at += n as usize;
    Ok((at, n))
}

impl Packed {
    /// Checks `data` (starting with the format byte, 3 or 2) and keeps it.
    pub fn new(data: &[u8]) -> Result<(MessageKind, Packed), String> {
        let mut r = Reader { data, pos: 0 };
        let format = r.byte()?;
        if format != INTERNAL_FORMAT && format != INTERNAL_FORMAT_2 {
            return Err("not the binary internal format".to_string());
        }
        let kind = match r.byte()? {
            0 => MessageKind::Report,
            1 => MessageKind::Event,
            k => return Err(format!("unknown kind {k}")),
        };
        let count = r.varint()? as usize;
        let packed =
            if format == INTERNAL_FORMAT { Packed::read_3(&mut r, count)? } else { Packed::read_2(&mut r, count)? };
        for (_, v) in &packed.fields {
            match *v {
                ValueAt::F64(f) if !f.is_finite() => return Err("a float that is not finite".to_string()),
                ValueAt::Json(at, n) => {
                    serde_json::from_str::<serde::de::IgnoredAny>(packed.stretch(at, n)).map_err(|e| e.to_string())?;
                }
                _ => {}
            }
        }
        Ok((kind, packed))
    }

    /// The table and the text of format 3.
    fn read_3(r: &mut Reader<'_>, count: usize) -> Result<Packed, String> {
        let text_len = r.varint()? as usize;
        let mut fields = Vec::with_capacity(count.min(1024));
        let mut text_at = 0usize;
        for _ in 0..count {
            let key = match r.varint()? {
                0 => {
                    let (at, n) = next_stretch(&mut text_at, r.varint()?)?;
                    KeyAt::Text(at, n)
                }
                n => {
                    let id = u8::try_from(n - 1).ok().filter(|id| usize::from(*id) < KNOWN_KEYS.len());
                    KeyAt::Known(id.ok_or_else(|| format!("unknown key number {n}"))?)
                }
            };
            let value = read_tagged(r, |r| next_stretch(&mut text_at, r.varint()?))?;
            fields.push((key, value));
        }
        let rest = data_rest(r);
        if rest.len() != text_len || text_at != text_len {
            return Err(format!("a text of {} bytes where the table says {text_len} and uses {text_at}", rest.len()));
        }
        let text: Box<str> = std::str::from_utf8(rest).map_err(|e| e.to_string())?.into();
        let packed = Packed { text, fields };
        // Every stretch must start and end on a character boundary.
        for (k, v) in &packed.fields {
            let stretches = [
                if let KeyAt::Text(a, n) = k { Some((*a, *n)) } else { None },
                if let ValueAt::Str(a, n) | ValueAt::Json(a, n) = v { Some((*a, *n)) } else { None },
            ];
            for (a, n) in stretches.into_iter().flatten() {
                if packed.text.get(a as usize..(a + n) as usize).is_none() {
                    return Err("a string that splits a UTF-8 character".to_string());
                }
            }
        }
        Ok(packed)
    }

    /// Format 2: each key and string inline, gathered into the text.
    fn read_2(r: &mut Reader<'_>, count: usize) -> Result<Packed, String> {
        let mut text = String::new();
        let mut fields = Vec::with_capacity(count.min(1024));
        let append = |r: &mut Reader<'_>, text: &mut String| -> Result<(u32, u32), String> {
            let n = r.varint()? as usize;
            let s = std::str::from_utf8(r.take(n)?).map_err(|e| e.to_string())?;
            let at = u32::try_from(text.len()).map_err(|_| "an entry over 4 GB".to_string())?;
            text.push_str(s);
            Ok((at, n as u32))
        };
        for _ in 0..count {
            let (a, n) = append(r, &mut text)?;
            let key = match text.get(a as usize..).and_then(known_id) {
                Some(id) => {
                    text.truncate(a as usize);
                    KeyAt::Known(id)
                }
                None => KeyAt::Text(a, n),
            };
            let value = read_tagged(r, |r| append(r, &mut text))?;
            fields.push((key, value));
        }
        if r.pos != r.data.len() {
            return Err(format!("{} bytes after the last field", r.data.len() - r.pos));
        }
        Ok(Packed { text: text.into(), fields })
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    fn stretch(&self, at: u32, n: u32) -> &str {
        // Checked by `Packed::new`: never the empty default.
        self.text.get(at as usize..(at + n) as usize).unwrap_or_default()
    }

    fn key(&self, k: KeyAt) -> &str {
        match k {
            KeyAt::Known(id) => KNOWN_KEYS.get(usize::from(id)).copied().unwrap_or_default(),
            KeyAt::Text(at, n) => self.stretch(at, n),
        }
    }

    fn value(&self, v: ValueAt) -> PackedValue<'_> {
        match v {
            ValueAt::Null => PackedValue::Null,
            ValueAt::Bool(b) => PackedValue::Bool(b),
            ValueAt::I64(i) => PackedValue::I64(i),
            ValueAt::U64(u) => PackedValue::U64(u),
            ValueAt::F64(f) => PackedValue::F64(f),
            ValueAt::Str(at, n) => PackedValue::Str(self.stretch(at, n)),
            ValueAt::Json(at, n) => PackedValue::Json(self.stretch(at, n)),
        }
    }

    /// The fields in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, PackedValue<'_>)> {
        self.fields.iter().map(|(k, v)| (self.key(*k), self.value(*v)))
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<PackedValue<'_>> {
        self.fields.iter().find(|(k, _)| self.key(*k) == key).map(|(_, v)| self.value(*v))
    }

    /// The fields, decoded.
    pub fn to_fields(&self, extra: usize) -> Fields {
        let mut fields = Fields::with_capacity_and_hasher(self.len() + extra, Default::default());
        for (k, v) in self.iter() {
            fields.insert(Key::from(k), v.to_value());
        }
        fields
    }

    /// The encoded form of these fields followed by `more` (whose keys are not among them).
    pub fn encode_with(&self, kind: MessageKind, more: &Fields) -> Vec<u8> {
        let tail = Tail::of(more);
        let text_len = self.text.len() + tail.text_len;
        // At most 11 bytes an entry (a number: key, tag, 8 bytes; or an unknown key and a string).
        let mut out = Vec::with_capacity((self.len() + more.len()) * 11 + text_len + 12);
        put_header(&mut out, kind, self.len() + more.len(), text_len);
        for (key, value) in self.fields.iter().chain(&tail.entries) {
            put_entry(&mut out, *key, *value);
        }
        out.extend_from_slice(self.text.as_bytes());
        tail.write_text(&mut out, more);
        out
    }
}

/// The bytes of `r` not read yet.
fn data_rest<'a>(r: &Reader<'a>) -> &'a [u8] {
    r.data.get(r.pos..).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn roundtrip_keeps_order_and_types() {
        let Value::Object(map) = json!({
            "source.ip": "192.0.2.1", "source.port": 80, "big": u64::MAX, "neg": -3, "f": 0.5,
            "t": true, "n": null, "extra": {"a": [1, "ü"]}, "raw": "aGVsbG8=", "empty": ""
        }) else {
            unreachable!()
        };
        let fields: Fields = map.into_iter().map(|(k, v)| (Key::from(k), v)).collect();
        let data = encode(MessageKind::Event, &fields);
        let (kind, back) = decode(&data).unwrap();
        assert_eq!(kind, MessageKind::Event);
        assert_eq!(back, fields);
        assert_eq!(back.keys().collect::<Vec<_>>(), fields.keys().collect::<Vec<_>>());
    }

    fn fields_of(value: Value) -> Fields {
        let Value::Object(map) = value else { unreachable!() };
        map.into_iter().map(|(k, v)| (Key::from(k), v)).collect()
    }

    /// Format 2, as earlier versions wrote it (queues persisted by them are still read).
    fn encode_2(kind: MessageKind, fields: &Fields) -> Vec<u8> {
        let mut out = vec![INTERNAL_FORMAT_2, kind as u8];
        put_varint(&mut out, fields.len() as u64);
        let bytes = |out: &mut Vec<u8>, b: &[u8]| {
            put_varint(out, b.len() as u64);
            out.extend_from_slice(b);
        };
        for (k, v) in fields {
            bytes(&mut out, k.as_bytes());
            match v {
                Value::Null => out.push(0),
                Value::Bool(b) => out.push(1 + u8::from(*b)),
                Value::Number(n) if n.is_i64() => {
                    out.push(3);
                    out.extend_from_slice(&n.as_i64().unwrap_or_default().to_le_bytes());
                }
                Value::Number(n) if n.is_u64() => {
                    out.push(4);
                    out.extend_from_slice(&n.as_u64().unwrap_or_default().to_le_bytes());
                }
                Value::Number(n) => {
                    out.push(5);
                    out.extend_from_slice(&n.as_f64().unwrap_or_default().to_le_bytes());
                }
                Value::String(s) => {
                    out.push(6);
                    bytes(&mut out, s.as_bytes());
                }
                other => {
                    out.push(7);
                    bytes(&mut out, other.to_string().as_bytes());
                }
            }
        }
        out
    }

    #[test]
    fn format_2_entries_read_as_they_were_and_pass_on_in_format_3() {
        let fields = fields_of(json!({
            "source.ip": "192.0.2.1", "extra.note": "ü", "source.port": 80, "big": u64::MAX, "f": 0.5,
            "t": true, "n": null, "extra": {"a": [1, "ü"]}, "raw": "aGVsbG8="
        }));
        let old = encode_2(MessageKind::Event, &fields);
        let (kind, packed) = Packed::new(&old).unwrap();
        assert_eq!(kind, MessageKind::Event);
        assert_eq!(packed.to_fields(0), fields);
        assert_eq!(packed.get("extra.note"), Some(PackedValue::Str("ü")));
        let added = fields_of(json!({"source.fqdn": "example.com"}));
        let passed_on = packed.encode_with(kind, &added);
        assert_eq!(passed_on[0], INTERNAL_FORMAT);
        let mut all = fields.clone();
        all.extend(added);
        assert_eq!(decode(&passed_on).unwrap(), (MessageKind::Event, all));
    }

    #[test]
    fn known_keys_take_one_byte_and_others_are_spelled_out() {
        let fields = fields_of(json!({"source.ip": "192.0.2.1", "extra.sensor": "s1"}));
        let data = encode(MessageKind::Event, &fields);
        let text = String::from_utf8_lossy(&data);
        assert!(!text.contains("source.ip"), "known key spelled out: {text:?}");
        assert!(text.contains("extra.sensor"), "unknown key missing: {text:?}");
        // format, kind, count, text length, 2 table entries (1-byte key + tag + length, and
        // 0 + key length + tag + length), then the text.
        let text_len = "192.0.2.1".len() + "extra.sensor".len() + "s1".len();
        assert_eq!(data.len(), 4 + 3 + 4 + text_len);
        assert!(KNOWN_KEYS.len() < 128, "every known key number fits one varint byte");
    }

    #[test]
    fn a_string_that_splits_a_character_is_refused() {
        let fields = fields_of(json!({"source.fqdn": "é", "comment": "x"}));
        let mut data = encode(MessageKind::Event, &fields);
        // The two length bytes of the table: 2 ("é") then 1 ("x"); make them 1 and 2.
        let first = data.iter().position(|b| *b == 6).unwrap() + 1;
        let second = first + 1 + data[first + 1..].iter().position(|b| *b == 6).unwrap() + 1;
        assert_eq!((data[first], data[second]), (2, 1));
        (data[first], data[second]) = (1, 2);
        assert!(Packed::new(&data).is_err());
    }

    #[test]
    fn truncated_or_trailing_data_is_refused() {
        let Value::Object(map) = json!({"a": "b"}) else { unreachable!() };
        let fields: Fields = map.into_iter().map(|(k, v)| (Key::from(k), v)).collect();
        let data = encode(MessageKind::Report, &fields);
        for cut in 1..data.len() {
            assert!(decode(&data[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = data.clone();
        longer.push(0);
        assert!(decode(&longer).is_err());
    }
}
