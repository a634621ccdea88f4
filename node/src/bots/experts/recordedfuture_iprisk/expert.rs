//! `intelmq.bots.experts.recordedfuture_iprisk.expert`: the risk score of `source.ip` and
//! `destination.ip` from a local Recorded Future IP risk list goes to `extra.rf_iprisk.source` /
//! `extra.rf_iprisk.destination`, 0 for addresses not in the list. An existing score is only
//! replaced with `overwrite`.
//!
//! The list is Recorded Future's CSV export (header `"Name","Risk","RiskString","EvidenceDetails"`;
//! `Name` is the address, `Risk` an integer). It is read when the first event arrives (a relative
//! path resolves against the node root); a missing or malformed file stops the bot. The
//! `--update-database` download helper (api.recordedfuture.com, `api_token`) is not part of this bot.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bots::experts::asn_lookup::lenient;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ExpertBot, Outbox, ParamError};
use crate::message::{AddOptions, Message};

/// Parameters of the Recorded Future IP risk expert (IntelMQ's names and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordedfutureIpriskExpertParams {
    /// The risk list CSV; default "/opt/intelmq/var/lib/bots/recordedfuture_iprisk/rfiprisk.dat".
    pub database: String,
    /// Used by IntelMQ's `--update-database` only, accepted and ignored; default
    /// "<insert Recorded Future IPRisk API token>".
    pub api_token: Option<String>,
    /// Replace an existing `extra.rf_iprisk.*`; default false.
    #[serde(deserialize_with = "lenient::bool")]
    pub overwrite: bool,
    /// Used by IntelMQ's `--update-database` only, accepted and ignored; default true.
    #[serde(deserialize_with = "lenient::bool")]
    pub autoupdate_cached_database: bool,
}

impl Default for RecordedfutureIpriskExpertParams {
    fn default() -> Self {
        RecordedfutureIpriskExpertParams {
            database: "/opt/intelmq/var/lib/bots/recordedfuture_iprisk/rfiprisk.dat".to_string(),
            api_token: Some("<insert Recorded Future IPRisk API token>".to_string()),
            overwrite: false,
            autoupdate_cached_database: true,
        }
    }
}

/// Why the risk list could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RiskListError {
    #[error("recorded future risk list {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("recorded future risk list {path}: {reason}")]
    Format { path: String, reason: String },
}

/// Reads the risk list: `Name` -> `Risk`.
pub fn load_risk_list(path: &Path) -> Result<HashMap<String, i64>, RiskListError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| RiskListError::Io { path: shown.clone(), source })?;
    parse_risk_list(&text).map_err(|reason| RiskListError::Format { path: shown, reason })
}

/// Parses the CSV text (Python's `csv.DictReader`: the first row names the columns).
pub fn parse_risk_list(text: &str) -> Result<HashMap<String, i64>, String> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|e| e.to_string())?.clone();
    let column =
        |name: &str| headers.iter().position(|h| h == name).ok_or_else(|| format!("no `{name}` column in the header"));
    let (name_col, risk_col) = (column("Name")?, column("Risk")?);
    let mut list = HashMap::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| e.to_string())?;
        if record.iter().all(str::is_empty) {
            continue;
        }
        let name = record.get(name_col).unwrap_or_default();
        let risk = record.get(risk_col).unwrap_or_default();
        let risk: i64 =
            risk.trim().parse().map_err(|_| format!("row {}: risk `{risk}` of `{name}` is not an integer", i + 2))?;
        list.insert(name.to_string(), risk);
    }
    Ok(list)
}

/// Adds Recorded Future risk scores.
pub struct RecordedfutureIpriskExpertBot {
    database_path: String,
    overwrite: bool,
    list: Option<HashMap<String, i64>>,
}

impl BuildBot for RecordedfutureIpriskExpertBot {
    type Params = RecordedfutureIpriskExpertParams;

    fn build(params: RecordedfutureIpriskExpertParams) -> Result<Self, ParamError> {
        Ok(RecordedfutureIpriskExpertBot { database_path: params.database, overwrite: params.overwrite, list: None })
    }
}

impl ExpertBot for RecordedfutureIpriskExpertBot {
    fn process(&mut self, mut event: Message, ctx: &mut Context<'_>, out: &mut Outbox) -> Result<(), BotError> {
        if self.list.is_none() {
            let list = load_risk_list(&ctx.resolve(&self.database_path)).map_err(|e| BotError::Fatal(e.to_string()))?;
            self.list = Some(list);
        }
        let Some(list) = &self.list else {
            return Err(BotError::Fatal("recorded future risk list is not loaded".to_string()));
        };
        for dir in ["source", "destination"] {
            let Some(ip) = event.get_str(&format!("{dir}.ip")) else {
                continue;
            };
            let key = format!("extra.rf_iprisk.{dir}");
            if event.contains(&key) && !self.overwrite {
                continue;
            }
            let risk = list.get(ip).copied().unwrap_or(0);
            event.add_with(&key, Value::from(risk), AddOptions { overwrite: Some(true), ..AddOptions::default() })?;
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

    const LIST: &str =
        "\"Name\",\"Risk\",\"RiskString\",\"EvidenceDetails\"\n\"192.168.0.1\",\"65\",\"1/1\",\"{a, b}\"\n";

    fn run(overwrite: bool, fields: Value) -> Message {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("rf.dat"), LIST).unwrap();
        let params = RecordedfutureIpriskExpertParams { database: "rf.dat".into(), overwrite, ..Default::default() };
        let mut bot = RecordedfutureIpriskExpertBot::build(params).unwrap();
        let h = harmonization();
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let mut ctx = Context {
            bot_id: "rf-expert",
            harmonization: &h,
            root: dir.path(),
            state: &mut state,
            log: &mut log,
            clock: &crate::bots::SystemClock,
        };
        let mut out = Outbox::default();
        bot.process(event(&h, fields), &mut ctx, &mut out).unwrap();
        out.sent.pop().unwrap().1
    }

    #[test]
    fn listed_address_gets_its_score_and_others_zero() {
        let msg = run(false, json!({"source.ip": "192.168.0.1", "destination.ip": "192.0.43.8"}));
        assert_eq!(msg.get("extra.rf_iprisk.source"), Some(&json!(65)));
        assert_eq!(msg.get("extra.rf_iprisk.destination"), Some(&json!(0)));
    }

    #[test]
    fn existing_score_is_kept_unless_overwrite() {
        let fields = json!({"source.ip": "192.168.0.1", "extra.rf_iprisk.source": 10});
        assert_eq!(run(false, fields.clone()).get("extra.rf_iprisk.source"), Some(&json!(10)));
        assert_eq!(run(true, fields).get("extra.rf_iprisk.source"), Some(&json!(65)));
    }

    #[test]
    fn a_non_integer_risk_is_refused_with_its_row() {
        let err = parse_risk_list("Name,Risk\n1.2.3.4,high\n").err().unwrap();
        assert!(err.contains("row 2") && err.contains("high"), "{err}");
    }

    #[test]
    fn missing_file_stops_the_bot() {
        let mut bot = RecordedfutureIpriskExpertBot::build(RecordedfutureIpriskExpertParams {
            database: "/nonexistent/rf.dat".into(),
            ..Default::default()
        })
        .unwrap();
        let h = harmonization();
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let root = Path::new("/");
        let mut ctx = Context {
            bot_id: "rf-expert",
            harmonization: &h,
            root,
            state: &mut state,
            log: &mut log,
            clock: &crate::bots::SystemClock,
        };
        let err =
            bot.process(event(&h, json!({"source.ip": "10.0.0.1"})), &mut ctx, &mut Outbox::default()).err().unwrap();
        assert!(matches!(err, BotError::Fatal(_)));
    }
}
