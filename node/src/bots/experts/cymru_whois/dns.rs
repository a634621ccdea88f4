//! A minimal DNS client for TXT queries (RFC 1035): one question over UDP to one server, the
//! answer's TXT strings, and a retry over TCP when the UDP answer is truncated. Enough for Team
//! Cymru's whois zone; no recursion of its own (the server recurses), no EDNS, no DNSSEC.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

/// The TXT record type.
pub const TYPE_TXT: u16 = 16;
const CLASS_IN: u16 = 1;

/// Why a query got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("dns server {server}: {source}")]
    Io { server: SocketAddr, source: std::io::Error },
    #[error("dns server {server} did not answer within {timeout:?}")]
    Timeout { server: SocketAddr, timeout: Duration },
    #[error("dns server {server} answered rcode {rcode} for {name}")]
    Rcode { server: SocketAddr, name: String, rcode: u8 },
    #[error("malformed dns answer from {server}: {reason}")]
    Malformed { server: SocketAddr, reason: String },
    #[error("`{name}` is not a valid query name")]
    BadName { name: String },
}

/// The answer to a TXT query: `None` for NXDOMAIN, else the TXT records (each one's strings
/// joined), possibly empty (NODATA).
pub type TxtAnswer = Option<Vec<Vec<u8>>>;

/// A random query id.
fn query_id() -> u16 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    (h.finish() & 0xffff) as u16
}

/// Encodes a query for `name`/`qtype` with recursion desired.
pub fn encode_query(id: u16, name: &str, qtype: u16) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(64);
    out.extend(id.to_be_bytes());
    out.extend(0x0100u16.to_be_bytes()); // RD
    out.extend(1u16.to_be_bytes());
    out.extend([0u8; 6]);
    let name = name.trim_end_matches('.');
    if name.len() > 253 {
        return None;
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return None;
        }
        out.push(label.len() as u8);
        out.extend(label.as_bytes());
    }
    out.push(0);
    out.extend(qtype.to_be_bytes());
    out.extend(CLASS_IN.to_be_bytes());
    Some(out)
}

/// Reads a big-endian u16 at `pos`.
fn be16(buf: &[u8], pos: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*buf.get(pos)?, *buf.get(pos + 1)?]))
}

/// The position after the (possibly compressed) name at `pos`.
fn skip_name(buf: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = *buf.get(pos)?;
        match len & 0xc0 {
            0x00 if len == 0 => return Some(pos + 1),
            0x00 => pos += 1 + usize::from(len),
            0xc0 => return Some(pos + 2),
            _ => return None,
        }
    }
}

/// A parsed response header and its TXT answers.
#[derive(Debug, PartialEq)]
pub struct Response {
    pub id: u16,
    pub truncated: bool,
    pub rcode: u8,
    pub txt: Vec<Vec<u8>>,
}

/// Parses a response; `Err` names what is wrong.
pub fn parse_response(buf: &[u8]) -> Result<Response, String> {
    let short = || "answer too short".to_string();
    let id = be16(buf, 0).ok_or_else(short)?;
    let flags = be16(buf, 2).ok_or_else(short)?;
    if flags & 0x8000 == 0 {
        return Err("not a response".to_string());
    }
    let qdcount = be16(buf, 4).ok_or_else(short)?;
    let ancount = be16(buf, 6).ok_or_else(short)?;
    let mut pos = 12;
    for _ in 0..qdcount {
        pos = skip_name(buf, pos).ok_or_else(short)? + 4;
    }
    let mut txt = Vec::new();
    for _ in 0..ancount {
        pos = skip_name(buf, pos).ok_or_else(short)?;
        let rtype = be16(buf, pos).ok_or_else(short)?;
        let rdlen = usize::from(be16(buf, pos + 8).ok_or_else(short)?);
        let start = pos + 10;
        let rdata = buf.get(start..start + rdlen).ok_or_else(short)?;
        pos = start + rdlen;
        if rtype != TYPE_TXT {
            continue;
        }
        let mut text = Vec::new();
        let mut i = 0;
        while i < rdata.len() {
            let len = usize::from(rdata[i]);
            text.extend(rdata.get(i + 1..i + 1 + len).ok_or_else(|| "truncated TXT string".to_string())?);
            i += 1 + len;
        }
        txt.push(text);
    }
    Ok(Response { id, truncated: flags & 0x0200 != 0, rcode: (flags & 0x000f) as u8, txt })
}

/// The first `nameserver` of a resolv.conf, on port 53.
pub fn system_nameserver(resolv_conf: &Path) -> Option<SocketAddr> {
    let text = std::fs::read_to_string(resolv_conf).ok()?;
    text.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some("nameserver"))
            .then(|| words.next())
            .flatten()
            .and_then(|addr| addr.split('%').next()?.parse::<IpAddr>().ok())
            .map(|ip| SocketAddr::new(ip, 53))
    })
}

/// A server address as written in a parameter: `ip`, `ip:port`, `[ipv6]:port`.
pub fn parse_server(text: &str) -> Option<SocketAddr> {
    let text = text.trim();
    text.parse::<SocketAddr>().ok().or_else(|| text.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53)))
}

/// Sends TXT queries to one server.
#[derive(Debug, Clone)]
pub struct TxtClient {
    pub server: SocketAddr,
    pub timeout: Duration,
}

impl TxtClient {
    /// Queries the TXT records of `name`.
    pub fn query_txt(&self, name: &str) -> Result<TxtAnswer, DnsError> {
        let id = query_id();
        let query = encode_query(id, name, TYPE_TXT).ok_or_else(|| DnsError::BadName { name: name.to_string() })?;
        let mut response = self.udp(&query, id)?;
        if response.truncated {
            response = self.tcp(&query, id)?;
        }
        match response.rcode {
            0 => Ok(Some(response.txt)),
            3 => Ok(None),
            rcode => Err(DnsError::Rcode { server: self.server, name: name.to_string(), rcode }),
        }
    }

    fn io(&self, source: std::io::Error) -> DnsError {
        if matches!(source.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) {
            DnsError::Timeout { server: self.server, timeout: self.timeout }
        } else {
            DnsError::Io { server: self.server, source }
        }
    }

    fn udp(&self, query: &[u8], id: u16) -> Result<Response, DnsError> {
        let local: SocketAddr = match self.server {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = UdpSocket::bind(local).map_err(|e| self.io(e))?;
        socket.connect(self.server).map_err(|e| self.io(e))?;
        let deadline = Instant::now() + self.timeout;
        // Two sends: the second after half the time, in case the first datagram was lost.
        let mut sends = 0;
        let mut buf = [0u8; 4096];
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(DnsError::Timeout { server: self.server, timeout: self.timeout });
            }
            if sends == 0 || (sends == 1 && deadline - now <= self.timeout / 2) {
                socket.send(query).map_err(|e| self.io(e))?;
                sends += 1;
            }
            let wait = if sends == 1 { (deadline - now).saturating_sub(self.timeout / 2) } else { deadline - now };
            socket.set_read_timeout(Some(wait.max(Duration::from_millis(1)))).map_err(|e| self.io(e))?;
            match socket.recv(&mut buf) {
                Ok(n) => match parse_response(&buf[..n]) {
                    Ok(r) if r.id == id => return Ok(r),
                    // A stray or late datagram: keep waiting.
                    _ => continue,
                },
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
                Err(e) => return Err(self.io(e)),
            }
        }
    }

    fn tcp(&self, query: &[u8], id: u16) -> Result<Response, DnsError> {
        let mut stream = TcpStream::connect_timeout(&self.server, self.timeout).map_err(|e| self.io(e))?;
        stream.set_read_timeout(Some(self.timeout)).map_err(|e| self.io(e))?;
        stream.set_write_timeout(Some(self.timeout)).map_err(|e| self.io(e))?;
        let mut framed = (query.len() as u16).to_be_bytes().to_vec();
        framed.extend(query);
        stream.write_all(&framed).map_err(|e| self.io(e))?;
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).map_err(|e| self.io(e))?;
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut buf).map_err(|e| self.io(e))?;
        let response = parse_response(&buf).map_err(|reason| DnsError::Malformed { server: self.server, reason })?;
        if response.id != id {
            return Err(DnsError::Malformed { server: self.server, reason: "answer id does not match".to_string() });
        }
        Ok(response)
    }
}

/// A tiny authoritative TXT server for tests: answers from a table, NXDOMAIN otherwise.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod test_server {
    use std::collections::HashMap;
    use std::net::{SocketAddr, UdpSocket};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    /// The question name of a query, lowercased, without the trailing dot, and where it ends.
    fn question(buf: &[u8]) -> Option<(String, usize)> {
        let mut pos = 12;
        let mut labels = Vec::new();
        loop {
            let len = usize::from(*buf.get(pos)?);
            if len == 0 {
                return Some((labels.join(".").to_lowercase(), pos + 1 + 4));
            }
            labels.push(String::from_utf8_lossy(buf.get(pos + 1..pos + 1 + len)?).into_owned());
            pos += 1 + len;
        }
    }

    /// The response to `query`: each TXT string list of `records` as one record.
    pub fn answer(query: &[u8], records: Option<&Vec<Vec<&'static str>>>) -> Vec<u8> {
        let (_, end) = question(query).unwrap();
        let mut out = query[..2].to_vec();
        let rcode: u16 = if records.is_some() { 0 } else { 3 };
        out.extend((0x8180u16 | rcode).to_be_bytes());
        out.extend(1u16.to_be_bytes());
        out.extend((records.map_or(0, Vec::len) as u16).to_be_bytes());
        out.extend([0u8; 4]);
        out.extend(&query[12..end]);
        for strings in records.into_iter().flatten() {
            out.extend([0xc0, 12]); // pointer to the question name
            out.extend(16u16.to_be_bytes());
            out.extend(1u16.to_be_bytes());
            out.extend(3600u32.to_be_bytes());
            let rdata: Vec<u8> = strings.iter().flat_map(|s| std::iter::once(s.len() as u8).chain(s.bytes())).collect();
            out.extend((rdata.len() as u16).to_be_bytes());
            out.extend(rdata);
        }
        out
    }

    /// A server on 127.0.0.1 with a random port. It stops after `max_queries` queries or 30 s
    /// without a query.
    pub struct TestServer {
        pub addr: SocketAddr,
        pub queries: Arc<AtomicUsize>,
    }

    pub fn start(table: HashMap<String, Vec<Vec<&'static str>>>, max_queries: usize) -> TestServer {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let addr = socket.local_addr().unwrap();
        let queries = Arc::new(AtomicUsize::new(0));
        let counter = queries.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            for _ in 0..max_queries {
                let Ok((n, peer)) = socket.recv_from(&mut buf) else {
                    return;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                let Some((name, _)) = question(&buf[..n]) else {
                    continue;
                };
                let _ = socket.send_to(&answer(&buf[..n], table.get(&name)), peer);
            }
        });
        TestServer { addr, queries }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn query_encodes_the_labels_and_type() {
        let q = encode_query(0x1234, "AS23028.asn.cymru.com.", TYPE_TXT).unwrap();
        assert_eq!(&q[..4], &[0x12, 0x34, 0x01, 0x00]);
        assert_eq!(&q[12..20], b"\x07AS23028");
        assert_eq!(&q[q.len() - 4..], &[0, 16, 0, 1]);
        assert!(encode_query(1, "a..b", TYPE_TXT).is_none());
    }

    #[test]
    fn answers_with_several_strings_are_joined_and_nxdomain_is_none() {
        let records = vec![vec!["23028 | US | arin", " | 2002-01-04"]];
        let query = encode_query(7, "x.example", TYPE_TXT).unwrap();
        let parsed = parse_response(&test_server::answer(&query, Some(&records))).unwrap();
        assert_eq!(parsed.id, 7);
        assert_eq!(parsed.txt, vec![b"23028 | US | arin | 2002-01-04".to_vec()]);
        let nx = parse_response(&test_server::answer(&query, None)).unwrap();
        assert_eq!(nx.rcode, 3);
    }

    #[test]
    fn client_talks_to_a_local_server() {
        let table = HashMap::from([("x.example".to_string(), vec![vec!["hello"], vec!["world"]])]);
        let server = test_server::start(table, 2);
        let client = TxtClient { server: server.addr, timeout: Duration::from_secs(2) };
        assert_eq!(client.query_txt("X.example").unwrap(), Some(vec![b"hello".to_vec(), b"world".to_vec()]));
        assert_eq!(client.query_txt("y.example").unwrap(), None);
    }

    #[test]
    fn silence_is_a_timeout() {
        // A bound socket that never answers.
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = TxtClient { server: silent.local_addr().unwrap(), timeout: Duration::from_millis(200) };
        let err = client.query_txt("x.example").err().unwrap();
        assert!(matches!(err, DnsError::Timeout { .. }), "{err}");
    }

    #[test]
    fn server_addresses_and_resolv_conf_are_read() {
        assert_eq!(parse_server("127.0.0.1"), Some("127.0.0.1:53".parse().unwrap()));
        assert_eq!(parse_server("[::1]:5353"), Some("[::1]:5353".parse().unwrap()));
        assert_eq!(parse_server("nope"), None);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resolv.conf");
        std::fs::write(&path, "# x\nsearch example\nnameserver 192.0.2.53\nnameserver 192.0.2.54\n").unwrap();
        assert_eq!(system_nameserver(&path), Some("192.0.2.53:53".parse().unwrap()));
    }
}
