//! `intelmq.bots.outputs.stomp.output`: sends each event, rendered as IntelMQ's `export_event`
//! (the `single_key`, `keep_raw_field` and `message_*` flags), as the body of a STOMP `SEND` to
//! `exchange`, over the client of the STOMP collector (TLS and login as there; the extra
//! parameter `use_ssl`, default true, false for plain TCP).
//!
//! Delivery: a batch goes out in one write, every `SEND` asking for a receipt; `write` returns
//! when the broker has receipted all of them, so the node acknowledges only what the broker took.
//! A connection that breaks, a missing receipt (30 s) or an `ERROR` frame drop the connection
//! and make the bot wait and retry; the events the broker receipted before are remembered and
//! not sent again ([`Delivered`]). IntelMQ sends without receipts. Heart-beats are not used (the
//! output is idle between batches): a connection the broker closed meanwhile is noticed before
//! the next batch and opened again.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::bots::collectors::stomp::client::{stomp_settings, Frame, StompConn, StompSettings};
use crate::bots::collectors::stomp::collector::stomp_error;
use crate::bots::experts::asn_lookup::lenient;
use crate::bots::outputs::amqptopic::shared::{de_single_key, export_event, ser_single_key, ExportFlags};
use crate::bots::outputs::delivered::Delivered;
use crate::bots::outputs::tls::VerifyCert;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, Level, OutputBot, ParamError};
use crate::message::Message;

/// How long to wait for the receipts of a batch.
const RECEIPT_TIMEOUT: Duration = Duration::from_secs(30);

/// Parameters of the STOMP output (IntelMQ's names and defaults, plus `use_ssl`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StompOutputParams {
    /// The broker's host; default "127.0.0.1".
    pub server: String,
    /// The broker's STOMP port; default 61614.
    #[serde(deserialize_with = "lenient::u16")]
    pub port: u16,
    /// The destination; default "/exchange/_push".
    pub exchange: String,
    /// Heart-beat interval in milliseconds (accepted; the output does not use heart-beats);
    /// default 60000.
    #[serde(deserialize_with = "lenient::u64")]
    pub heartbeat: u64,
    /// CA file (PEM) the broker's certificate is verified against ("": the system's CAs); default "ca.pem".
    pub ssl_ca_certificate: String,
    /// Log in with the TLS client certificate instead of username/password; default true.
    #[serde(deserialize_with = "lenient::bool")]
    pub auth_by_ssl_client_certificate: bool,
    /// The client certificate (PEM); default "client.pem".
    pub ssl_client_certificate: String,
    /// Its key (PEM); default "client.key".
    pub ssl_client_certificate_key: String,
    /// STOMP login without client certificate; default "guest".
    pub username: String,
    /// STOMP passcode; default "guest".
    pub password: String,
    /// Accepted for compatibility (the broker is checked against `ssl_ca_certificate`); default true.
    pub http_verify_cert: VerifyCert,
    /// Connect with TLS as IntelMQ always does (false: plain TCP); default true (ours).
    #[serde(deserialize_with = "lenient::bool")]
    pub use_ssl: bool,
    /// `vhost`: the `host` header of CONNECT, RabbitMQ's virtual host (ours); default "/".
    pub vhost: String,
    /// Send only this field; default false.
    #[serde(deserialize_with = "de_single_key", serialize_with = "ser_single_key")]
    pub single_key: Option<String>,
    /// Keep the `raw` field; default false.
    #[serde(deserialize_with = "lenient::bool")]
    pub keep_raw_field: bool,
    /// Nest the dotted keys into objects; default false.
    #[serde(deserialize_with = "lenient::bool")]
    pub message_hierarchical_output: bool,
    /// Include `__type`; default false.
    #[serde(deserialize_with = "lenient::bool")]
    pub message_with_type: bool,
    /// Write JSONDict fields as one JSON string; default false.
    #[serde(deserialize_with = "lenient::bool")]
    pub message_jsondict_as_string: bool,
}

impl Default for StompOutputParams {
    fn default() -> Self {
        StompOutputParams {
            server: "127.0.0.1".to_string(),
            port: 61614,
            exchange: "/exchange/_push".to_string(),
            heartbeat: 60000,
            ssl_ca_certificate: "ca.pem".to_string(),
            auth_by_ssl_client_certificate: true,
            ssl_client_certificate: "client.pem".to_string(),
            ssl_client_certificate_key: "client.key".to_string(),
            username: "guest".to_string(),
            password: "guest".to_string(),
            http_verify_cert: VerifyCert::Yes,
            use_ssl: true,
            vhost: "/".to_string(),
            single_key: None,
            keep_raw_field: false,
            message_hierarchical_output: false,
            message_with_type: false,
            message_jsondict_as_string: false,
        }
    }
}

/// Sends events to a STOMP destination with receipts.
pub struct StompOutputBot {
    exchange: String,
    flags: ExportFlags,
    settings: StompSettings,
    conn: Option<StompConn>,
    /// The number of the next receipt asked for.
    next_receipt: u64,
    delivered: Delivered,
}

impl BuildBot for StompOutputBot {
    type Params = StompOutputParams;

    fn build(params: StompOutputParams) -> Result<Self, ParamError> {
        if params.exchange.is_empty() {
            return Err(ParamError::new("exchange", "no destination given"));
        }
        let settings = stomp_settings!(params, 0)?;
        let flags = ExportFlags {
            single_key: params.single_key.clone(),
            keep_raw_field: params.keep_raw_field,
            hierarchical: params.message_hierarchical_output,
            with_type: params.message_with_type,
            jsondict_as_string: params.message_jsondict_as_string,
        };
        Ok(StompOutputBot {
            exchange: params.exchange,
            flags,
            settings,
            conn: None,
            next_receipt: 1,
            delivered: Delivered::default(),
        })
    }
}

impl StompOutputBot {
    /// An open connection: the kept one if the broker has not closed it, else a new one.
    fn connection(&mut self, ctx: &mut Context<'_>) -> Result<&mut StompConn, BotError> {
        if let Some(conn) = self.conn.as_mut() {
            match conn.next(Duration::ZERO) {
                Ok(None) => {}
                Ok(Some(frame)) => {
                    let why = if frame.command == "ERROR" { frame.error_text() } else { frame.command.clone() };
                    ctx.log.log(Level::Info, &format!("The broker said {why:?} meanwhile, connecting again."));
                    self.conn = None;
                }
                Err(e) => {
                    ctx.log.log(Level::Info, &format!("Connecting again: {e}."));
                    self.conn = None;
                }
            }
        }
        if self.conn.is_none() {
            let conn = StompConn::open(&self.settings).map_err(stomp_error)?;
            ctx.log.log(Level::Info, &format!("Connected to {}.", self.settings.display()));
            self.conn = Some(conn);
        }
        self.conn.as_mut().ok_or_else(|| BotError::Transient("stomp connection lost".to_string()))
    }

    /// Sends `bodies` and waits for their receipts; on failure, how many were receipted.
    fn send(&mut self, bodies: Vec<String>, ctx: &mut Context<'_>) -> Result<(), (usize, BotError)> {
        let first = self.next_receipt;
        self.next_receipt += bodies.len() as u64;
        let exchange = self.exchange.clone();
        let frames: Vec<Frame> = bodies
            .into_iter()
            .enumerate()
            .map(|(i, body)| {
                let receipt = format!("r{}", first + i as u64);
                let mut frame =
                    Frame::new("SEND", &[("destination", exchange.as_str()), ("receipt", receipt.as_str())]);
                frame.body = body.into_bytes();
                frame
            })
            .collect();
        let n = frames.len();
        let server = self.settings.display();
        let conn = self.connection(ctx).map_err(|e| (0, e))?;
        conn.send_all(&frames).map_err(|e| (0, stomp_error(e)))?;
        let mut done = 0;
        while done < n {
            match conn.next(RECEIPT_TIMEOUT) {
                Ok(Some(f)) if f.command == "RECEIPT" => {
                    let id = f.header("receipt-id").unwrap_or("");
                    // Receipts come in the order of the frames; a later one covers the earlier.
                    if let Some(k) = id.strip_prefix('r').and_then(|k| k.parse::<u64>().ok()) {
                        if k >= first && k < first + n as u64 {
                            done = done.max((k - first) as usize + 1);
                        }
                    }
                }
                Ok(Some(f)) if f.command == "ERROR" => {
                    let why = format!("stomp broker {server} refused a message: {}", f.error_text());
                    return Err((done, BotError::Unavailable(why)));
                }
                Ok(Some(_)) => {}
                Ok(None) => {
                    let why = format!("no receipt from stomp broker {server} within {RECEIPT_TIMEOUT:?}");
                    return Err((done, BotError::Unavailable(why)));
                }
                Err(e) => return Err((done, stomp_error(e))),
            }
        }
        Ok(())
    }
}

impl OutputBot for StompOutputBot {
    fn write(&mut self, events: &[Message], ctx: &mut Context<'_>) -> Result<(), BotError> {
        let pending = self.delivered.undelivered(events);
        if pending.is_empty() {
            self.delivered.acknowledged(events);
            return Ok(());
        }
        let bodies = pending.iter().map(|e| export_event(e, &self.flags)).collect::<Result<Vec<_>, _>>()?;
        match self.send(bodies, ctx) {
            Ok(()) => {
                self.delivered.acknowledged(events);
                Ok(())
            }
            Err((done, e)) => {
                self.delivered.record_all(pending[..done].iter().copied());
                if let Some(conn) = self.conn.take() {
                    conn.close();
                }
                ctx.log.log(Level::Warning, &format!("Sending failed, connecting again: {e}."));
                Err(e)
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn defaults_are_intelmqs_and_files_are_checked() {
        let d = serde_json::to_value(StompOutputParams::default()).unwrap();
        assert_eq!(d["exchange"], json!("/exchange/_push"));
        assert_eq!(d["port"], json!(61614));
        assert_eq!(d["single_key"], json!(false));
        assert_eq!(d["http_verify_cert"], json!(true));
        let err = StompOutputBot::build(StompOutputParams::default()).err().unwrap();
        assert_eq!(err.key, "ssl_ca_certificate");
        let plain = StompOutputParams { use_ssl: false, auth_by_ssl_client_certificate: false, ..Default::default() };
        assert!(StompOutputBot::build(plain).is_ok());
    }
}
