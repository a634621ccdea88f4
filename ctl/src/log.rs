//! `log BOT [N] [LEVEL]`: the last lines of a bot's log at or above a level.

use intelmq_proto::control::v1::GetLogRequest;

use crate::client::{CtlError, Ctx, EXIT_OK};
use crate::render::{emit, log_json, log_text, to_json};

pub async fn log(ctx: &mut Ctx, bot_id: String, lines: i64, level: String) -> Result<u8, CtlError> {
    if lines < -1 {
        return Err(CtlError::usage(format!("number of lines `{lines}` must be -1 (all) or more")));
    }
    let r = ctx.client.get_log(GetLogRequest { bot_id, lines, level }).await?.into_inner();
    emit(&if ctx.json { to_json(&log_json(&r.lines)) } else { log_text(&r.lines) });
    Ok(EXIT_OK)
}
