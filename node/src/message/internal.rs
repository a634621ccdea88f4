//! The binary form a node keeps messages in between its own bots (format byte
//! [`INTERNAL_FORMAT`]): the fields as they are, already validated, so reading them back needs no
//! JSON parsing and no harmonization. JSON stays the form at the edges (injected and recovered
//! messages, dumps, gRPC, outputs).
//!
//! Layout: the format byte, the kind (0 Report, 1 Event), the number of fields (varint), then per
//! field the key (varint length + UTF-8) and the value: a tag byte and its payload - 0 null,
//! 1 false, 2 true, 3 i64 (8 bytes LE), 4 u64 (8 bytes LE), 5 f64 (8 bytes LE), 6 string (varint
//! length + UTF-8), 7 an array or object as JSON text (varint length + UTF-8). Persisted: a new
//! layout takes a new format byte.

use serde_json::{Number, Value};

use super::{Fields, Key, MessageKind};

/// The format byte of the binary internal form. Never reuse it for another layout.
pub const INTERNAL_FORMAT: u8 = 0x02;

/// The format byte of the first internal form (validated wire JSON); still read.
pub const INTERNAL_JSON_FORMAT: u8 = 0x01;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Encodes a message's kind and fields.
pub fn encode(kind: MessageKind, fields: &Fields) -> Vec<u8> {
    let size: usize = fields.iter().map(|(k, v)| k.len() + v.as_str().map_or(16, str::len) + 4).sum();
    let mut out = Vec::with_capacity(size + 8);
    put_header(&mut out, kind, fields.len());
    encode_fields_into(&mut out, fields);
    out
}

/// The format byte, the kind and the number of fields.
fn put_header(out: &mut Vec<u8>, kind: MessageKind, count: usize) {
    out.push(INTERNAL_FORMAT);
    out.push(match kind {
        MessageKind::Report => 0,
        MessageKind::Event => 1,
    });
    put_varint(out, count as u64);
}

/// Appends the fields, each as [`encode`] writes it.
fn encode_fields_into(out: &mut Vec<u8>, fields: &Fields) {
    for (k, v) in fields {
        put_bytes(out, k.as_bytes());
        match v {
            Value::Null => out.push(0),
            Value::Bool(false) => out.push(1),
            Value::Bool(true) => out.push(2),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    out.push(3);
                    out.extend_from_slice(&i.to_le_bytes());
                } else if let Some(u) = n.as_u64() {
                    out.push(4);
                    out.extend_from_slice(&u.to_le_bytes());
                } else {
                    out.push(5);
                    out.extend_from_slice(&n.as_f64().unwrap_or(f64::NAN).to_le_bytes());
                }
            }
            Value::String(s) => {
                out.push(6);
                put_bytes(out, s.as_bytes());
            }
            Value::Array(_) | Value::Object(_) => {
                out.push(7);
                put_bytes(out, serde_json::to_string(v).unwrap_or_default().as_bytes());
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

/// Reads one value (tag and payload); strings are checked for UTF-8.
fn read_value<'a>(r: &mut Reader<'a>) -> Result<PackedValue<'a>, String> {
    let text = |r: &mut Reader<'a>| -> Result<&'a str, String> {
        let n = r.varint()? as usize;
        std::str::from_utf8(r.take(n)?).map_err(|e| e.to_string())
    };
    Ok(match r.byte()? {
        0 => PackedValue::Null,
        1 => PackedValue::Bool(false),
        2 => PackedValue::Bool(true),
        3 => PackedValue::I64(i64::from_le_bytes(r.eight()?)),
        4 => PackedValue::U64(u64::from_le_bytes(r.eight()?)),
        5 => PackedValue::F64(f64::from_le_bytes(r.eight()?)),
        6 => PackedValue::Str(text(r)?),
        7 => PackedValue::Json(text(r)?),
        t => return Err(format!("unknown value tag {t}")),
    })
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

/// The fields of a message in the internal form, kept encoded: reading a field or passing the
/// message on needs no allocation per field. [`Packed::new`] checks the whole entry once (layout,
/// UTF-8, finite floats, JSON of arrays and objects), so reading it later cannot fail.
#[derive(Clone, Debug, PartialEq)]
pub struct Packed {
    data: Box<[u8]>,
    /// Offset of the first field.
    start: usize,
    /// Where each field's key starts and how long it is (its value follows it), so that looking
    /// up a key compares keys only.
    index: smallvec::SmallVec<[(u32, u32); 20]>,
}

impl Packed {
    /// Checks `data` (starting with the format byte) and keeps a copy.
    pub fn new(data: &[u8]) -> Result<(MessageKind, Packed), String> {
        let mut r = Reader { data, pos: 0 };
        if r.byte()? != INTERNAL_FORMAT {
            return Err("not the binary internal format".to_string());
        }
        let kind = match r.byte()? {
            0 => MessageKind::Report,
            1 => MessageKind::Event,
            k => return Err(format!("unknown kind {k}")),
        };
        let count = r.varint()? as usize;
        let start = r.pos;
        let mut index = smallvec::SmallVec::with_capacity(count.min(1024));
        for _ in 0..count {
            let n = r.varint()? as usize;
            let key_start = r.pos;
            std::str::from_utf8(r.take(n)?).map_err(|e| e.to_string())?;
            let at = |v: usize| u32::try_from(v).map_err(|_| "an entry over 4 GB".to_string());
            index.push((at(key_start)?, at(n)?));
            match read_value(&mut r)? {
                PackedValue::F64(f) if !f.is_finite() => return Err("a float that is not finite".to_string()),
                PackedValue::Json(text) => {
                    serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(|e| e.to_string())?;
                }
                _ => {}
            }
        }
        if r.pos != data.len() {
            return Err(format!("{} bytes after the last field", data.len() - r.pos));
        }
        Ok((kind, Packed { data: data.into(), start, index }))
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The fields in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, PackedValue<'_>)> {
        self.index.iter().filter_map(|&(start, len)| {
            let key = std::str::from_utf8(self.data.get(start as usize..(start + len) as usize)?).ok()?;
            Some((key, self.value_at((start + len) as usize)?))
        })
    }

    /// The value that starts at `pos` (checked by [`Packed::new`]: never `None`).
    fn value_at(&self, pos: usize) -> Option<PackedValue<'_>> {
        read_value(&mut Reader { data: &self.data, pos }).ok()
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<PackedValue<'_>> {
        let key = key.as_bytes();
        let &(start, len) = self.index.iter().find(|&&(start, len)| {
            len as usize == key.len() && self.data.get(start as usize..(start + len) as usize) == Some(key)
        })?;
        self.value_at((start + len) as usize)
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
        if more.is_empty() {
            return self.data.to_vec();
        }
        let body = &self.data[self.start..];
        let size: usize = more.iter().map(|(k, v)| k.len() + v.as_str().map_or(16, str::len) + 4).sum();
        let mut out = Vec::with_capacity(body.len() + size + 12);
        put_header(&mut out, kind, self.len() + more.len());
        out.extend_from_slice(body);
        encode_fields_into(&mut out, more);
        out
    }
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
