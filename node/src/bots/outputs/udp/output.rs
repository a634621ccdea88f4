//! `intelmq.bots.outputs.udp.output`: sends each event as one UDP datagram to
//! `udp_host:udp_port`: `header` + the event's JSON (`format` "json", sorted keys) or `header` +
//! `|key:value` for every field (`format` "delimited", with `field_delimiter`), control and other
//! Unicode "C" category characters removed, then "\n". `raw` is dropped unless `keep_raw_field`.
//!
//! UDP has no acknowledgements: a datagram counts as delivered once the kernel accepted it, and a
//! far side that is down loses what is sent to it. The socket is connected, so when the far host
//! answers with "port unreachable" the next send fails with "connection refused": that send is
//! reported as `Unavailable` (kept and retried), but the datagram that triggered the answer is
//! already lost. This is the nature of UDP, as in IntelMQ (which logs the error and drops nothing
//! only for errors it sees).

use std::net::{ToSocketAddrs, UdpSocket};

use serde::{Deserialize, Serialize};

use super::super::tcp::support::de;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, Level, OutputBot, ParamError};
use crate::message::wire::python_str;
use crate::message::{ExportOptions, Message};

/// Parameters of the UDP output (IntelMQ's names and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UdpOutputParams {
    /// "json" or "delimited"; default null (required).
    #[serde(deserialize_with = "de::opt_string")]
    pub format: Option<String>,
    /// Between the fields of the delimited format; default "|".
    #[serde(deserialize_with = "de::string")]
    pub field_delimiter: String,
    /// Text at the start of every datagram; default "<header text>".
    #[serde(deserialize_with = "de::string")]
    pub header: String,
    /// Keep the `raw` field; default false.
    #[serde(deserialize_with = "de::bool")]
    pub keep_raw_field: bool,
    /// The host to send to; default "localhost".
    #[serde(deserialize_with = "de::string")]
    pub udp_host: String,
    /// The port to send to; default null (required).
    #[serde(deserialize_with = "de::opt_port")]
    pub udp_port: Option<u16>,
}

impl Default for UdpOutputParams {
    fn default() -> Self {
        UdpOutputParams {
            format: None,
            field_delimiter: "|".to_string(),
            header: "<header text>".to_string(),
            keep_raw_field: false,
            udp_host: "localhost".to_string(),
            udp_port: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Format {
    Json,
    Delimited,
}

/// Sends events as UDP datagrams.
pub struct UdpOutputBot {
    params: UdpOutputParams,
    format: Format,
    port: u16,
    socket: Option<UdpSocket>,
}

impl BuildBot for UdpOutputBot {
    type Params = UdpOutputParams;

    fn build(params: UdpOutputParams) -> Result<Self, ParamError> {
        let format = match params.format.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("json") => Format::Json,
            Some("delimited") => Format::Delimited,
            Some(other) => {
                return Err(ParamError::new("format", format!("unknown format `{other}` (known: json, delimited)")))
            }
            None => return Err(ParamError::new("format", "no format given (json or delimited)")),
        };
        let port = params.udp_port.ok_or_else(|| ParamError::new("udp_port", "no port given"))?;
        if params.udp_host.is_empty() {
            return Err(ParamError::new("udp_host", "no host given"));
        }
        Ok(UdpOutputBot { params, format, port, socket: None })
    }
}

/// Unicode category "C" (control, format, private use), as far as known without tables.
fn is_other_char(c: char) -> bool {
    let cp = c as u32;
    c.is_control()
        || matches!(cp,
            0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x8E2 | 0x180E | 0x200B..=0x200F | 0x202A..=0x202E
            | 0x2060..=0x2064 | 0x2066..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB | 0x110BD | 0x110CD
            | 0x13430..=0x1343F | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A | 0xE0001 | 0xE0020..=0xE007F
            | 0xE000..=0xF8FF | 0xF0000..=0xFFFFD | 0x100000..=0x10FFFD)
}

impl UdpOutputBot {
    /// The datagram for one event.
    fn datagram(&self, event: &Message) -> Vec<u8> {
        let mut event = event.clone();
        if !self.params.keep_raw_field {
            event.remove("raw");
        }
        let line = match self.format {
            Format::Json => format!("{}{}", self.params.header, event.to_export_json(ExportOptions::default())),
            Format::Delimited => {
                let mut line = self.params.header.clone();
                for (key, value) in event.iter() {
                    line.push_str(&self.params.field_delimiter);
                    line.push_str(key);
                    line.push(':');
                    line.push_str(&python_str(value));
                }
                line
            }
        };
        let mut text: String = line.chars().filter(|c| !is_other_char(*c)).collect();
        text.push('\n');
        text.into_bytes()
    }

    fn socket(&mut self) -> Result<&UdpSocket, BotError> {
        if self.socket.is_none() {
            let target = format!("{}:{}", self.params.udp_host, self.port);
            let unavailable = |e: std::io::Error| BotError::Unavailable(format!("cannot reach {target}: {e}"));
            let addr = (self.params.udp_host.as_str(), self.port)
                .to_socket_addrs()
                .map_err(unavailable)?
                .find(|a| a.is_ipv4())
                .ok_or_else(|| BotError::Unavailable(format!("{target} resolves to no IPv4 address")))?;
            let socket = UdpSocket::bind(("0.0.0.0", 0)).map_err(unavailable)?;
            socket.connect(addr).map_err(unavailable)?;
            self.socket = Some(socket);
        }
        self.socket.as_ref().ok_or_else(|| BotError::Unavailable("no socket".to_string()))
    }
}

impl OutputBot for UdpOutputBot {
    fn write(&mut self, events: &[Message], ctx: &mut Context<'_>) -> Result<(), BotError> {
        let target = format!("{}:{}", self.params.udp_host, self.port);
        for event in events {
            let data = self.datagram(event);
            let sent = self.socket()?.send(&data);
            if let Err(e) = sent {
                self.socket = None;
                ctx.log.log(Level::Error, &format!("Failed to send message to {target}: {e}."));
                return Err(BotError::Unavailable(format!("sending to {target} failed: {e}")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::bots::outputs::test_support::{event, harmonization};
    use crate::bots::{MemoryLog, MemoryState};

    fn bot(params: serde_json::Value) -> UdpOutputBot {
        UdpOutputBot::build(serde_json::from_value(params).unwrap()).unwrap()
    }

    fn receive(sock: &UdpSocket) -> String {
        let mut buf = [0u8; 4096];
        let n = sock.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn json_and_delimited_datagrams_as_intelmq() {
        let far = UdpSocket::bind("127.0.0.1:0").unwrap();
        far.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let port = far.local_addr().unwrap().port();
        let h = harmonization();
        let ev = event(&h, json!({"source.port": 80, "source.ip": "192.0.2.1", "raw": "YQ==", "comment": "a\tb"}));
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let mut ctx = Context::new("u", &h, std::path::Path::new("/"), &mut state, &mut log);
        let mut json_bot = bot(json!({"format": "json", "udp_host": "127.0.0.1", "udp_port": port, "header": "H "}));
        json_bot.write(std::slice::from_ref(&ev), &mut ctx).unwrap();
        assert_eq!(receive(&far), "H {\"comment\": \"a\\tb\", \"source.ip\": \"192.0.2.1\", \"source.port\": 80}\n");
        let mut delimited = bot(
            json!({"format": "Delimited", "udp_host": "127.0.0.1", "udp_port": port.to_string(), "header": "H", "keep_raw_field": true}),
        );
        delimited.write(std::slice::from_ref(&ev), &mut ctx).unwrap();
        assert_eq!(receive(&far), "H|source.port:80|source.ip:192.0.2.1|raw:YQ==|comment:ab\n");
    }

    #[test]
    fn format_and_port_are_required() {
        assert_eq!(UdpOutputBot::build(UdpOutputParams::default()).err().unwrap().key, "format");
        let p = UdpOutputParams { format: Some("xml".into()), udp_port: Some(1), ..Default::default() };
        assert_eq!(UdpOutputBot::build(p).err().unwrap().key, "format");
        let p = UdpOutputParams { format: Some("json".into()), ..Default::default() };
        assert_eq!(UdpOutputBot::build(p).err().unwrap().key, "udp_port");
    }
}
