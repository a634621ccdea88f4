//! `intelmq.bots.outputs.rpz_file.output`: writes a DNS Response Policy Zone file. A new or empty
//! `file` gets the zone header when the bot starts (`$TTL`, the SOA record from `rpz_domain`,
//! `hostmaster_rpz_domain`, `serial`, `refresh`, `retry`, `expire`, `ncachttl`, `NS localhost.`,
//! comment lines with `organization_name`, the generation time, `rpz_domain` and `rpz_email`, and
//! a `test_domain` record when set). Every event with `source.fqdn` adds two records, for the
//! domain (a leading `www.` removed) and for `www.` + the domain: `<name> <dns_record_type>
//! <cname>`. Events without `source.fqdn` write nothing.
//!
//! `serial` and `generate_time` default to the time the bot starts (UTC; IntelMQ takes the local
//! time when the module is imported and labels it UTC). Exactly-once as the file output: the
//! committed length of the file is kept in the bot state and bytes of a step that never committed
//! are cut off before the next write. The file output flags are accepted without effect;
//! `format_filename` is refused.

use serde::{Deserialize, Serialize};

use crate::bots::outputs::tcp::support::{append_committed, cut_uncommitted, de, ensure_parent, record_len};
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, Level, OutputBot, ParamError};
use crate::message::Message;

/// Parameters of the RPZ file output (IntelMQ's names and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RpzFileOutputParams {
    /// The zone file (relative paths resolve against the node root); default
    /// "/opt/intelmq/var/lib/bots/file-output/rpz".
    #[serde(deserialize_with = "de::string")]
    pub file: String,
    /// The target of every record; default "".
    #[serde(deserialize_with = "de::string")]
    pub cname: String,
    /// Named in the header comment; default "".
    #[serde(deserialize_with = "de::string")]
    pub organization_name: String,
    /// The zone's domain (SOA and terms of use); default "".
    #[serde(deserialize_with = "de::string")]
    pub rpz_domain: String,
    /// The SOA's hostmaster domain; default "".
    #[serde(deserialize_with = "de::string")]
    pub hostmaster_rpz_domain: String,
    /// The contact in the header comment; default "".
    #[serde(deserialize_with = "de::string")]
    pub rpz_email: String,
    /// `$TTL`; default 3600.
    #[serde(deserialize_with = "de::uint")]
    pub ttl: u64,
    /// The header's "Last updated" time; default null (the start time, `%Y-%m-%d %H:%M:%S`).
    #[serde(deserialize_with = "de::opt_string")]
    pub generate_time: Option<String>,
    /// SOA negative-caching TTL; default 60.
    #[serde(deserialize_with = "de::uint")]
    pub ncachttl: u64,
    /// SOA serial; default null (the start time as `%y%m%d%H%M`).
    #[serde(deserialize_with = "de::opt_string")]
    pub serial: Option<String>,
    /// SOA refresh; default 60.
    #[serde(deserialize_with = "de::uint")]
    pub refresh: u64,
    /// SOA retry; default 60.
    #[serde(deserialize_with = "de::uint")]
    pub retry: u64,
    /// SOA expire; default 432000.
    #[serde(deserialize_with = "de::uint")]
    pub expire: u64,
    /// The record type; default "CNAME".
    #[serde(deserialize_with = "de::string")]
    pub dns_record_type: String,
    /// A record written with the header, for tests of the zone; default "" (none).
    #[serde(deserialize_with = "de::string")]
    pub test_domain: String,
    /// Not supported (must be false); default false.
    #[serde(deserialize_with = "de::bool")]
    pub format_filename: bool,
    /// Accepted without effect; default false.
    #[serde(deserialize_with = "de::bool")]
    pub hierarchical_output: bool,
    /// Accepted without effect; default false.
    #[serde(deserialize_with = "de::bool")]
    pub keep_raw_field: bool,
    /// Accepted without effect; default false.
    #[serde(deserialize_with = "de::bool")]
    pub message_jsondict_as_string: bool,
    /// Accepted without effect; default false.
    #[serde(deserialize_with = "de::bool")]
    pub message_with_type: bool,
    /// Accepted without effect; default false.
    #[serde(deserialize_with = "de::single_key", serialize_with = "de::ser_single_key")]
    pub single_key: Option<String>,
    /// Accepted without effect; default "strict".
    #[serde(deserialize_with = "de::string")]
    pub encoding_errors_mode: String,
}

impl Default for RpzFileOutputParams {
    fn default() -> Self {
        RpzFileOutputParams {
            file: "/opt/intelmq/var/lib/bots/file-output/rpz".to_string(),
            cname: String::new(),
            organization_name: String::new(),
            rpz_domain: String::new(),
            hostmaster_rpz_domain: String::new(),
            rpz_email: String::new(),
            ttl: 3600,
            generate_time: None,
            ncachttl: 60,
            serial: None,
            refresh: 60,
            retry: 60,
            expire: 432000,
            dns_record_type: "CNAME".to_string(),
            test_domain: String::new(),
            format_filename: false,
            hierarchical_output: false,
            keep_raw_field: false,
            message_jsondict_as_string: false,
            message_with_type: false,
            single_key: None,
            encoding_errors_mode: "strict".to_string(),
        }
    }
}

/// Writes an RPZ zone file.
pub struct RpzFileOutputBot {
    params: RpzFileOutputParams,
}

impl BuildBot for RpzFileOutputBot {
    type Params = RpzFileOutputParams;

    fn build(params: RpzFileOutputParams) -> Result<Self, ParamError> {
        if params.file.is_empty() {
            return Err(ParamError::new("file", "no file given"));
        }
        if params.format_filename {
            return Err(ParamError::new("format_filename", "not supported by this bot"));
        }
        Ok(RpzFileOutputBot { params })
    }
}

impl RpzFileOutputBot {
    /// The zone header as of `now`.
    pub fn header(&self, now: chrono::DateTime<chrono::Utc>) -> String {
        let p = &self.params;
        let serial = p.serial.clone().unwrap_or_else(|| now.format("%y%m%d%H%M").to_string());
        let generated = p.generate_time.clone().unwrap_or_else(|| now.format("%Y-%m-%d %H:%M:%S").to_string());
        let mut header = format!(
            "$TTL {}\n@ SOA {}. {}. {serial} {} {} {} {}\n NS localhost.\n;\n; {} Response Policy Zones (RPZ)\n; Last updated: {generated} (UTC)\n;\n; Terms Of Use: https://{}\n; For questions please contact {}\n;\n",
            p.ttl, p.rpz_domain, p.hostmaster_rpz_domain, p.refresh, p.retry, p.expire, p.ncachttl, p.organization_name,
            p.rpz_domain, p.rpz_email
        );
        if !p.test_domain.is_empty() {
            header.push_str(&format!("{} {} {}\n", p.test_domain, p.dns_record_type, p.cname));
        }
        header
    }

    /// The two records of an event, or "" without `source.fqdn`.
    pub fn records(&self, event: &Message) -> String {
        let Some(fqdn) = event.get_str("source.fqdn").filter(|f| !f.is_empty()) else {
            return String::new();
        };
        let domain = fqdn.strip_prefix("www.").unwrap_or(fqdn);
        let (kind, cname) = (&self.params.dns_record_type, &self.params.cname);
        format!("{domain} {kind} {cname}\nwww.{domain} {kind} {cname}\n")
    }
}

impl OutputBot for RpzFileOutputBot {
    /// Cuts off uncommitted bytes, writes the header into a new or empty file, and records the
    /// length (committed before the first step).
    fn start(&mut self, ctx: &mut Context<'_>) -> Result<(), BotError> {
        let path = ctx.resolve(&self.params.file);
        ensure_parent(&path)?;
        let len = cut_uncommitted(&path, ctx)?;
        record_len(ctx, &path, len);
        if len == 0 {
            append_committed(&path, self.header(ctx.now()).as_bytes(), ctx)?;
        }
        Ok(())
    }

    fn write(&mut self, events: &[Message], ctx: &mut Context<'_>) -> Result<(), BotError> {
        let mut data = String::new();
        for event in events {
            let records = self.records(event);
            if records.is_empty() {
                ctx.log.log(Level::Debug, "Event did not have RPZ indicator types.");
            }
            data.push_str(&records);
        }
        if data.is_empty() {
            return Ok(());
        }
        let path = ctx.resolve(&self.params.file);
        append_committed(&path, data.as_bytes(), ctx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;
    use crate::bots::outputs::test_support::{event, harmonization};
    use crate::bots::{MemoryLog, MemoryState};

    #[test]
    fn header_matches_intelmqs_layout() {
        let bot =
            RpzFileOutputBot::build(RpzFileOutputParams { cname: "cert.aa.".into(), ..Default::default() }).unwrap();
        let now = chrono::Utc.with_ymd_and_hms(2026, 11, 28, 6, 9, 20).unwrap();
        assert_eq!(
            bot.header(now),
            "$TTL 3600\n@ SOA . . 2611280609 60 60 432000 60\n NS localhost.\n;\n;  Response Policy Zones (RPZ)\n; Last updated: 2026-11-28 06:09:20 (UTC)\n;\n; Terms Of Use: https://\n; For questions please contact \n;\n"
        );
    }

    #[test]
    fn two_records_per_fqdn_and_header_only_in_an_empty_file() {
        let root = tempfile::tempdir().unwrap();
        let h = harmonization();
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let mut ctx = Context::new("r", &h, root.path(), &mut state, &mut log);
        let params = RpzFileOutputParams {
            file: "rpz".into(),
            cname: "c.".into(),
            test_domain: "t.example".into(),
            ..Default::default()
        };
        let mut bot = RpzFileOutputBot::build(params.clone()).unwrap();
        bot.start(&mut ctx).unwrap();
        bot.write(
            &[event(&h, json!({"source.fqdn": "www.example.com"})), event(&h, json!({"source.ip": "192.0.2.1"}))],
            &mut ctx,
        )
        .unwrap();
        RpzFileOutputBot::build(params).unwrap().start(&mut ctx).unwrap();
        let text = std::fs::read_to_string(root.path().join("rpz")).unwrap();
        assert_eq!(text.matches("$TTL").count(), 1);
        assert!(text.ends_with(";\nt.example CNAME c.\nexample.com CNAME c.\nwww.example.com CNAME c.\n"), "{text}");
    }
}
