//! `intelmq.bots.experts.sieve.expert`: filters, changes and routes events with the rules of a
//! sieve file (the language is described in `parser.rs`). Each event runs through the rules; a
//! `drop` sends nothing, otherwise the event goes to every path the last `path` action named, or
//! to `_default`.
//!
//! The file is read and parsed once. An absolute `file` is parsed when the bot is built, so a
//! missing file or a rule error stops the bot before it reads anything (IntelMQ fails in `init`).
//! A relative `file` is resolved against the node root, which only the first `process` call
//! knows (`ctx.resolve`): it is parsed then, and an error there is fatal for the bot.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::eval::{run, Verdict};
use super::parser::{parse, Program};
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ExpertBot, Outbox, ParamError};
use crate::message::{Harmonization, Message};

/// IntelMQ's default rule file.
const DEFAULT_FILE: &str = "/opt/intelmq/var/lib/bots/sieve/filter.sieve";

/// Parameters of the sieve expert (IntelMQ's names and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SieveExpertParams {
    /// The sieve rule file; default "/opt/intelmq/var/lib/bots/sieve/filter.sieve" (a relative
    /// path resolves against the node root).
    pub file: String,
}

impl Default for SieveExpertParams {
    fn default() -> Self {
        SieveExpertParams { file: DEFAULT_FILE.to_string() }
    }
}

/// Runs every event through the rules of a sieve file.
pub struct SieveExpertBot {
    file: String,
    /// Parsed at build time for absolute paths, on the first event otherwise.
    program: Option<Program>,
}

/// Reads and parses a sieve file; errors name the file (and the line and column for rule errors).
fn load(path: &Path, h: &Harmonization) -> Result<Program, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read sieve file {}: {e}", path.display()))?;
    parse(&text, &path.display().to_string(), h).map_err(|e| e.to_string())
}

impl BuildBot for SieveExpertBot {
    type Params = SieveExpertParams;

    fn build(params: SieveExpertParams) -> Result<Self, ParamError> {
        if params.file.trim().is_empty() {
            return Err(ParamError::new("file", "the sieve file name is empty"));
        }
        let path = Path::new(&params.file);
        let program = if path.is_absolute() {
            Some(load(path, &Harmonization::builtin()).map_err(|e| ParamError::new("file", e))?)
        } else {
            None
        };
        Ok(SieveExpertBot { file: params.file, program })
    }
}

impl ExpertBot for SieveExpertBot {
    fn process(&mut self, mut event: Message, ctx: &mut Context<'_>, out: &mut Outbox) -> Result<(), BotError> {
        let program = match self.program.take() {
            Some(program) => program,
            None => load(&ctx.resolve(&self.file), ctx.harmonization).map_err(BotError::Fatal)?,
        };
        let program = self.program.insert(program);
        let now = ctx.now().naive_utc();
        match run(program, &mut event, now, ctx.log)? {
            Verdict::Drop => {}
            Verdict::Forward(paths) => {
                if let Some((last, rest)) = paths.split_last() {
                    for path in rest {
                        out.send_to(path, event.clone());
                    }
                    out.send_to(last, event);
                }
            }
        }
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

    fn write(dir: &Path, name: &str, text: &str) -> String {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    }

    fn process(bot: &mut SieveExpertBot, root: &Path, fields: serde_json::Value) -> Vec<(String, Message)> {
        let h = harmonization();
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let mut ctx = Context {
            bot_id: "sieve-expert",
            harmonization: &h,
            root,
            state: &mut state,
            log: &mut log,
            clock: &crate::bots::SystemClock,
        };
        let mut out = Outbox::default();
        bot.process(event(&h, fields), &mut ctx, &mut out).unwrap();
        out.sent
    }

    #[test]
    fn defaults_are_intelmqs() {
        assert_eq!(SieveExpertParams::default().file, "/opt/intelmq/var/lib/bots/sieve/filter.sieve");
        let params: SieveExpertParams = serde_json::from_value(json!({})).unwrap();
        assert_eq!(params, SieveExpertParams::default());
    }

    #[test]
    fn absolute_file_is_parsed_at_build_and_routes_events() {
        let dir = tempfile::tempdir().unwrap();
        let file =
            write(dir.path(), "r.sieve", "if comment == 'drop' { drop }\nif comment == 'other' { path ['a', 'b'] }\n");
        let mut bot = SieveExpertBot::build(SieveExpertParams { file }).unwrap();
        assert!(process(&mut bot, dir.path(), json!({"comment": "drop"})).is_empty());
        let sent = process(&mut bot, dir.path(), json!({"comment": "other"}));
        let paths: Vec<_> = sent.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, vec!["a", "b"]);
        let sent = process(&mut bot, dir.path(), json!({"comment": "x"}));
        assert_eq!(sent[0].0, "_default");
    }

    #[test]
    fn parse_errors_name_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "bad.sieve",
            "if comment == 'a' {\n    add comment = 'b'\n}\nif source.fqdn == 2 { drop }\n",
        );
        let err = SieveExpertBot::build(SieveExpertParams { file: file.clone() }).err().unwrap();
        assert_eq!(err.key, "file");
        assert!(err.reason.starts_with(&format!("sieve file {file}:4:19: incompatible type: FQDN")), "{}", err.reason);
    }

    #[test]
    fn missing_absolute_file_is_refused() {
        let err = SieveExpertBot::build(SieveExpertParams { file: "/nonexistent/x.sieve".into() }).err().unwrap();
        assert_eq!(err.key, "file");
        assert!(err.reason.contains("/nonexistent/x.sieve"));
    }

    #[test]
    fn relative_file_resolves_against_the_root_on_first_use() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "rules.sieve", "add comment = 'seen'");
        let mut bot = SieveExpertBot::build(SieveExpertParams { file: "rules.sieve".into() }).unwrap();
        let sent = process(&mut bot, dir.path(), json!({}));
        assert_eq!(sent[0].1.get_str("comment"), Some("seen"));
    }

    #[test]
    fn relative_file_that_is_missing_is_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let mut bot = SieveExpertBot::build(SieveExpertParams { file: "missing.sieve".into() }).unwrap();
        let h = harmonization();
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let mut ctx = Context {
            bot_id: "s",
            harmonization: &h,
            root: dir.path(),
            state: &mut state,
            log: &mut log,
            clock: &crate::bots::SystemClock,
        };
        let err = bot.process(event(&h, json!({})), &mut ctx, &mut Outbox::default()).unwrap_err();
        assert!(matches!(err, BotError::Fatal(ref m) if m.contains("missing.sieve")), "{err}");
    }

    #[test]
    fn empty_file_forwards_everything_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "empty.sieve", "# nothing\n");
        let mut bot = SieveExpertBot::build(SieveExpertParams { file }).unwrap();
        let sent = process(&mut bot, dir.path(), json!({"comment": "x"}));
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].1.get_str("comment"), Some("x"));
    }
}
