//! `stats [--watch [--interval MS] [--limit N]]`: per-bot counters; with --watch the server streams
//! a snapshot every interval (text: a table per snapshot; JSON: one compact object per line).

use std::io::IsTerminal as _;

use intelmq_proto::control::v1::{GetStatsRequest, WatchStatsRequest};

use crate::client::{CtlError, Ctx, EXIT_OK};
use crate::render::{emit, stats_json, stats_text, to_json, warn_notes};

pub async fn stats(ctx: &mut Ctx, watch: bool, interval_ms: Option<u64>, limit: Option<u64>) -> Result<u8, CtlError> {
    if !watch {
        let r = ctx.client.get_stats(GetStatsRequest {}).await?.into_inner();
        warn_notes(&r.notes);
        emit(&if ctx.json { to_json(&stats_json(r.timestamp_ms, &r.bots)) } else { stats_text(&r.bots) });
        return Ok(EXIT_OK);
    }
    if interval_ms == Some(0) {
        return Err(CtlError::usage("--interval must be at least 1 millisecond"));
    }
    let mut stream =
        ctx.client.watch_stats(WatchStatsRequest { interval_ms: interval_ms.unwrap_or(0) }).await?.into_inner();
    let clear = !ctx.json && std::io::stdout().is_terminal();
    let mut seen = 0u64;
    while let Some(snap) = stream.message().await? {
        warn_notes(&snap.notes);
        if ctx.json {
            emit(&format!("{}\n", stats_json(snap.timestamp_ms, &snap.bots)));
        } else {
            let head = format!("Stats at {} UTC", clock(snap.timestamp_ms));
            if clear {
                emit(&format!("\x1b[2J\x1b[H{head}\n{}", stats_text(&snap.bots)));
            } else {
                emit(&format!("{head}\n{}\n", stats_text(&snap.bots)));
            }
        }
        seen += 1;
        if limit.is_some_and(|l| seen >= l) {
            break;
        }
    }
    Ok(EXIT_OK)
}

/// `HH:MM:SS.mmm` of a Unix time in milliseconds.
pub fn clock(ms: u64) -> String {
    let day_ms = ms % 86_400_000;
    let (h, m, s, milli) = (day_ms / 3_600_000, day_ms / 60_000 % 60, day_ms / 1000 % 60, day_ms % 1000);
    format!("{h:02}:{m:02}:{s:02}.{milli:03}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_shows_the_time_of_day() {
        assert_eq!(clock(0), "00:00:00.000");
        assert_eq!(clock(1_714_557_600_123), "10:00:00.123");
    }
}
