//! `check [--no-connections]`: the node's configuration, store and wiring checks; exit 1 on errors.

use intelmq_proto::control::v1::CheckRequest;

use crate::client::{CtlError, Ctx, EXIT_FAILED, EXIT_OK};
use crate::render::{check_json, check_text, emit, to_json};

pub async fn check(ctx: &mut Ctx, no_connections: bool) -> Result<u8, CtlError> {
    let r = ctx.client.check(CheckRequest { no_connections }).await?.into_inner();
    emit(&if ctx.json { to_json(&check_json(&r.status, &r.lines)) } else { check_text(&r.status, &r.lines) });
    Ok(check_exit(&r.status, r.lines.iter().map(|l| l.level.as_str())))
}

/// 0 for `success`; 1 for `error` or any error-level line.
pub fn check_exit<'a>(status: &str, mut levels: impl Iterator<Item = &'a str>) -> u8 {
    if status == "success" && !levels.any(|l| l.eq_ignore_ascii_case("error")) {
        EXIT_OK
    } else {
        EXIT_FAILED
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_fail_the_check() {
        assert_eq!(check_exit("success", ["info", "warning"].into_iter()), 0);
        assert_eq!(check_exit("error", ["error"].into_iter()), 1);
        assert_eq!(check_exit("success", ["ERROR"].into_iter()), 1);
    }
}
