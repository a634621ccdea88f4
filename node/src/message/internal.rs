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

use super::{Fields, MessageKind};

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
    out.push(INTERNAL_FORMAT);
    out.push(match kind {
        MessageKind::Report => 0,
        MessageKind::Event => 1,
    });
    put_varint(&mut out, fields.len() as u64);
    for (k, v) in fields {
        put_bytes(&mut out, k.as_bytes());
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
                put_bytes(&mut out, s.as_bytes());
            }
            Value::Array(_) | Value::Object(_) => {
                out.push(7);
                put_bytes(&mut out, serde_json::to_string(v).unwrap_or_default().as_bytes());
            }
        }
    }
    out
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

    fn string(&mut self) -> Result<String, String> {
        let n = self.varint()? as usize;
        let b = self.take(n)?;
        std::str::from_utf8(b).map(str::to_string).map_err(|e| e.to_string())
    }

    fn eight(&mut self) -> Result<[u8; 8], String> {
        let b = self.take(8)?;
        b.try_into().map_err(|_| "truncated".to_string())
    }
}

/// Decodes what [`encode`] wrote (`data` starts with the format byte).
pub fn decode(data: &[u8]) -> Result<(MessageKind, Fields), String> {
    let mut r = Reader { data, pos: 0 };
    if r.byte()? != INTERNAL_FORMAT {
        return Err("not the binary internal format".to_string());
    }
    let kind = match r.byte()? {
        0 => MessageKind::Report,
        1 => MessageKind::Event,
        k => return Err(format!("unknown kind {k}")),
    };
    let n = r.varint()? as usize;
    // Room for a few more: most bots add a field or two (taxonomy, fqdn) before passing it on.
    let mut fields = Fields::with_capacity_and_hasher(n.min(1024) + 4, Default::default());
    for _ in 0..n {
        let key = r.string()?;
        let value = match r.byte()? {
            0 => Value::Null,
            1 => Value::Bool(false),
            2 => Value::Bool(true),
            3 => Value::Number(i64::from_le_bytes(r.eight()?).into()),
            4 => Value::Number(u64::from_le_bytes(r.eight()?).into()),
            5 => {
                let f = f64::from_le_bytes(r.eight()?);
                Value::Number(Number::from_f64(f).ok_or("a float that is not finite")?)
            }
            6 => Value::String(r.string()?),
            7 => serde_json::from_str(&r.string()?).map_err(|e| e.to_string())?,
            t => return Err(format!("unknown value tag {t}")),
        };
        fields.insert(key, value);
    }
    if r.pos != data.len() {
        return Err(format!("{} bytes after the last field", data.len() - r.pos));
    }
    Ok((kind, fields))
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
        let fields: Fields = map.into_iter().collect();
        let data = encode(MessageKind::Event, &fields);
        let (kind, back) = decode(&data).unwrap();
        assert_eq!(kind, MessageKind::Event);
        assert_eq!(back, fields);
        assert_eq!(back.keys().collect::<Vec<_>>(), fields.keys().collect::<Vec<_>>());
    }

    #[test]
    fn truncated_or_trailing_data_is_refused() {
        let Value::Object(map) = json!({"a": "b"}) else { unreachable!() };
        let fields: Fields = map.into_iter().collect();
        let data = encode(MessageKind::Report, &fields);
        for cut in 1..data.len() {
            assert!(decode(&data[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = data.clone();
        longer.push(0);
        assert!(decode(&longer).is_err());
    }
}
