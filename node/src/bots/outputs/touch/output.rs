//! `intelmq.bots.outputs.touch.output`: sets the access and modification time of the file `path`
//! to now for every event (IntelMQ's `os.utime(path, (now, now))`); a batch touches it once, which
//! has the same effect. The file must exist. Difference from IntelMQ (whose `FileNotFoundError`
//! ends in `error_procedure`): a missing file or one that cannot be touched is the far side being
//! away, so the events wait in the inbox and the bot retries until the file is back.

use std::fs::{FileTimes, OpenOptions};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::super::tcp::support::de;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, OutputBot, ParamError};
use crate::message::Message;

/// Parameters of the touch output (IntelMQ's names and defaults).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TouchOutputParams {
    /// The file to touch (relative paths resolve against the node root); default null (required).
    #[serde(deserialize_with = "de::opt_string")]
    pub path: Option<String>,
}

/// Touches a file per event.
pub struct TouchOutputBot {
    path: String,
}

impl BuildBot for TouchOutputBot {
    type Params = TouchOutputParams;

    fn build(params: TouchOutputParams) -> Result<Self, ParamError> {
        let path = params.path.filter(|p| !p.is_empty()).ok_or_else(|| ParamError::new("path", "no path given"))?;
        Ok(TouchOutputBot { path })
    }
}

impl OutputBot for TouchOutputBot {
    fn write(&mut self, events: &[Message], ctx: &mut Context<'_>) -> Result<(), BotError> {
        if events.is_empty() {
            return Ok(());
        }
        let path = ctx.resolve(&self.path);
        let err = |e: std::io::Error| BotError::Unavailable(format!("cannot touch file {}: {e}", path.display()));
        let file = OpenOptions::new().write(true).open(&path).map_err(err)?;
        let now = SystemTime::now();
        file.set_times(FileTimes::new().set_accessed(now).set_modified(now)).map_err(err)?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::bots::outputs::test_support::{event, harmonization};
    use crate::bots::{MemoryLog, MemoryState};

    #[test]
    fn moves_the_modification_time_forward_and_waits_for_a_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("touched");
        std::fs::write(&path, "").unwrap();
        let old = SystemTime::now() - Duration::from_secs(3600);
        std::fs::File::options().write(true).open(&path).unwrap().set_modified(old).unwrap();
        let h = harmonization();
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let mut ctx = Context::new("t", &h, dir.path(), &mut state, &mut log);
        let mut bot = TouchOutputBot::build(TouchOutputParams { path: Some("touched".into()) }).unwrap();
        bot.write(&[event(&h, serde_json::json!({}))], &mut ctx).unwrap();
        let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
        assert!(mtime > old + Duration::from_secs(3000));
        let mut missing = TouchOutputBot::build(TouchOutputParams { path: Some("nope".into()) }).unwrap();
        assert!(matches!(missing.write(&[event(&h, serde_json::json!({}))], &mut ctx), Err(BotError::Unavailable(_))));
        assert_eq!(TouchOutputBot::build(TouchOutputParams::default()).err().unwrap().key, "path");
    }
}
