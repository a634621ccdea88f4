//! Key and value encodings of the store: the only place they are defined.
//!
//! Queue and dump keys are big-endian u64 sequence numbers, so RocksDB's byte order is FIFO order.
//! State values carry an 8-byte big-endian expiry (unix seconds, 0 = never) before the payload.
//! Outbox values carry the 8-byte big-endian incarnation of the store that wrote them before the
//! message, so a message keeps its id (`<node>/<incarnation>/<seq>`) across restarts.

/// `meta` key of the on-disk format version.
pub const META_FORMAT_VERSION: &[u8] = b"format_version";
/// The current on-disk format version.
pub const FORMAT_VERSION: u64 = 1;
/// `meta` key of the incarnation: a counter raised each time the store is opened.
pub const META_INCARNATION: &[u8] = b"incarnation";

/// `meta` key of the persisted head of inbox column family `cf`: every entry below it is consumed.
pub fn head_key(cf: &str) -> Vec<u8> {
    let mut k = b"head:".to_vec();
    k.extend_from_slice(cf.as_bytes());
    k
}

pub fn seq_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

pub fn decode_seq(key: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = key.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// A state value with its expiry (unix seconds; 0 = never expires).
pub fn encode_state(expires_at: u64, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + payload.len());
    v.extend_from_slice(&expires_at.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// The payload of a state value, or `None` when it has expired at `now` (unix seconds).
pub fn decode_state(value: &[u8], now: u64) -> Option<&[u8]> {
    if value.len() < 8 {
        return None;
    }
    let (head, payload) = value.split_at(8);
    let expires_at = u64::from_be_bytes(head.try_into().ok()?);
    if expires_at != 0 && expires_at <= now {
        return None;
    }
    Some(payload)
}

/// An outbox value: the incarnation that wrote it, then the message.
pub fn encode_outbox(incarnation: u64, message: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + message.len());
    v.extend_from_slice(&incarnation.to_be_bytes());
    v.extend_from_slice(message);
    v
}

/// The incarnation and the message of an outbox value.
pub fn decode_outbox(value: &[u8]) -> Option<(u64, &[u8])> {
    if value.len() < 8 {
        return None;
    }
    let (head, message) = value.split_at(8);
    Some((u64::from_be_bytes(head.try_into().ok()?), message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_keys_sort_in_numeric_order() {
        let mut keys: Vec<[u8; 8]> = [300u64, 2, 70000, 1].iter().map(|s| seq_key(*s)).collect();
        keys.sort();
        let seqs: Vec<u64> = keys.iter().filter_map(|k| decode_seq(k)).collect();
        assert_eq!(seqs, vec![1, 2, 300, 70000]);
    }

    #[test]
    fn state_values_expire() {
        let v = encode_state(100, b"x");
        assert_eq!(decode_state(&v, 99), Some(&b"x"[..]));
        assert_eq!(decode_state(&v, 100), None);
        let forever = encode_state(0, b"y");
        assert_eq!(decode_state(&forever, u64::MAX), Some(&b"y"[..]));
    }

    #[test]
    fn outbox_values_carry_their_incarnation() {
        let v = encode_outbox(7, b"msg");
        assert_eq!(decode_outbox(&v), Some((7, &b"msg"[..])));
        assert_eq!(decode_outbox(b"short"), None);
    }
}
