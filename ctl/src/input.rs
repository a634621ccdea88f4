//! Messages given on the command line (`--msg JSON|FILE`) and files read by commands: read,
//! checked to be JSON, with errors naming the argument or file (exit code 2).

use std::io::Read as _;
use std::path::Path;

use serde_json::Value;

use crate::client::CtlError;

/// `--msg` as JSON text or as the path of a file holding it (IntelMQ's `--msg JSON-or-filepath`).
pub fn json_arg(flag: &str, arg: &str) -> Result<Value, CtlError> {
    let trimmed = arg.trim_start();
    let (text, origin) = if trimmed.starts_with(['{', '[', '"']) {
        (arg.to_string(), format!("{flag} value"))
    } else {
        let path = Path::new(arg);
        if !path.is_file() {
            return Err(CtlError::usage(format!("{flag} `{arg}` is neither a JSON object nor a readable file")));
        }
        (read_file(path)?, format!("{flag} file {arg}"))
    };
    serde_json::from_str(&text).map_err(|e| CtlError::usage(format!("{origin} is not valid JSON: {e}")))
}

/// One message: a JSON object.
pub fn message_arg(flag: &str, arg: &str) -> Result<Value, CtlError> {
    let v = json_arg(flag, arg)?;
    if !v.is_object() {
        return Err(CtlError::usage(format!("{flag} must be a JSON object (a flat IntelMQ message)")));
    }
    Ok(v)
}

/// One or more messages: a JSON object, or an array of objects.
pub fn messages_arg(flag: &str, arg: &str) -> Result<Vec<Value>, CtlError> {
    match json_arg(flag, arg)? {
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_object) => Ok(items),
        v @ Value::Object(_) => Ok(vec![v]),
        _ => Err(CtlError::usage(format!("{flag} must be a JSON object or a non-empty array of objects"))),
    }
}

/// A file's text; `-` reads stdin.
pub fn read_file(path: &Path) -> Result<String, CtlError> {
    if path == Path::new("-") {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).map_err(|e| CtlError::usage(format!("cannot read stdin: {e}")))?;
        return Ok(s);
    }
    std::fs::read_to_string(path).map_err(|e| CtlError::usage(format!("cannot read {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn msg_is_json_text_or_a_file() {
        assert_eq!(message_arg("--msg", r#"{"source.ip": "1.2.3.4"}"#), Ok(json!({"source.ip": "1.2.3.4"})));
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("m.json");
        std::fs::write(&f, r#"{"__type": "Report"}"#).expect("write");
        assert_eq!(message_arg("--msg", &f.display().to_string()), Ok(json!({"__type": "Report"})));
    }

    #[test]
    fn bad_msg_values_are_usage_errors_naming_the_flag() {
        let e = message_arg("--msg", "{not json").expect_err("bad json");
        assert_eq!(e.code, crate::client::EXIT_USAGE);
        assert!(e.message.starts_with("--msg value is not valid JSON"), "{}", e.message);
        let e = message_arg("--msg", "/no/such/file").expect_err("no file");
        assert!(e.message.contains("/no/such/file"), "{}", e.message);
        assert!(message_arg("--msg", "[1]").is_err());
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("bad.json");
        std::fs::write(&f, "nope").expect("write");
        let e = message_arg("--msg", &f.display().to_string()).expect_err("bad file");
        assert!(e.message.contains("bad.json") && e.message.contains("not valid JSON"), "{}", e.message);
    }

    #[test]
    fn inject_accepts_an_array_of_messages() {
        assert_eq!(messages_arg("--msg", r#"[{"a": 1}, {"b": 2}]"#).map(|v| v.len()), Ok(2));
        assert_eq!(messages_arg("--msg", r#"{"a": 1}"#).map(|v| v.len()), Ok(1));
        assert!(messages_arg("--msg", "[]").is_err());
        assert!(messages_arg("--msg", "[1, 2]").is_err());
    }
}
