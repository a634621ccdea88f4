//! `intelmq.bots.outputs.blackhole.output`: acknowledges every event and discards it.

use serde::{Deserialize, Serialize};

use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, OutputBot, ParamError};
use crate::message::Message;

/// The blackhole output has no parameters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlackholeOutputParams {}

/// Discards events.
pub struct BlackholeOutputBot;

impl BuildBot for BlackholeOutputBot {
    type Params = BlackholeOutputParams;

    fn build(_params: BlackholeOutputParams) -> Result<Self, ParamError> {
        Ok(BlackholeOutputBot)
    }
}

impl OutputBot for BlackholeOutputBot {
    fn write(&mut self, _events: &[Message], _ctx: &mut Context<'_>) -> Result<(), BotError> {
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::bots::outputs::test_support::{event, harmonization};
    use crate::bots::{MemoryLog, MemoryState};

    #[test]
    fn accepts_everything_and_refuses_parameters() {
        let h = harmonization();
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let mut ctx = Context::new("b", &h, std::path::Path::new("/"), &mut state, &mut log);
        let mut bot = BlackholeOutputBot::build(BlackholeOutputParams::default()).unwrap();
        bot.write(&[event(&h, serde_json::json!({"source.ip": "192.0.2.1"}))], &mut ctx).unwrap();
        assert!(state.entries.is_empty() && log.lines.is_empty());
        assert!(serde_json::from_value::<BlackholeOutputParams>(serde_json::json!({"x": 1})).is_err());
    }
}
