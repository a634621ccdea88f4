//! Changes the configuration files on behalf of operators (`intelmqctl enable/disable`): the bot
//! entry's `enabled` key in `runtime.conf` (JSON) or `runtime.yaml`. As in IntelMQ, the file is
//! rewritten (YAML comments are not kept).

use std::path::Path;

use super::ConfigError;

/// Sets `enabled` of `bot_id` in the runtime file under `<root>/etc/`.
pub fn set_enabled(root: &Path, bot_id: &str, enabled: bool) -> Result<(), ConfigError> {
    let etc = super::etc_dir(root);
    let yaml = etc.join("runtime.yaml");
    let conf = etc.join("runtime.conf");
    let io = |file: &Path| {
        let file = file.to_path_buf();
        move |source| ConfigError::Io { file, source }
    };
    if yaml.exists() {
        let text = std::fs::read_to_string(&yaml).map_err(io(&yaml))?;
        let mut doc: serde_yaml::Value = serde_yaml::from_str(&text).map_err(|e| ConfigError::Yaml {
            file: yaml.clone(),
            line: e.location().map(|l| l.line()).unwrap_or(0),
            column: e.location().map(|l| l.column()).unwrap_or(0),
            reason: e.to_string(),
        })?;
        let entry = doc
            .get_mut(bot_id)
            .and_then(serde_yaml::Value::as_mapping_mut)
            .ok_or_else(|| ConfigError::InvalidBotId { file: yaml.clone(), bot: bot_id.to_string() })?;
        entry.insert("enabled".into(), enabled.into());
        let text = serde_yaml::to_string(&doc).map_err(|e| ConfigError::NodeConf {
            file: yaml.clone(),
            key: bot_id.to_string(),
            reason: e.to_string(),
        })?;
        return write_atomically(&yaml, &text);
    }
    let text = std::fs::read_to_string(&conf).map_err(io(&conf))?;
    let mut doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| ConfigError::Json {
        file: conf.clone(),
        line: e.line(),
        column: e.column(),
        reason: e.to_string(),
    })?;
    let entry = doc
        .get_mut(bot_id)
        .and_then(serde_json::Value::as_object_mut)
        .ok_or_else(|| ConfigError::InvalidBotId { file: conf.clone(), bot: bot_id.to_string() })?;
    entry.insert("enabled".into(), enabled.into());
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    serde::Serialize::serialize(&doc, &mut ser).map_err(|e| ConfigError::NodeConf {
        file: conf.clone(),
        key: bot_id.to_string(),
        reason: e.to_string(),
    })?;
    out.push(b'\n');
    write_atomically(&conf, &String::from_utf8_lossy(&out))
}

/// Writes `text` to a temporary file beside `path` and renames it over `path`.
fn write_atomically(path: &Path, text: &str) -> Result<(), ConfigError> {
    let tmp = path.with_extension("tmp");
    let io = |source| ConfigError::Io { file: path.to_path_buf(), source };
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enabled_is_persisted_in_runtime_conf_and_keeps_other_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("etc")).expect("mkdir");
        let conf = dir.path().join("etc/runtime.conf");
        std::fs::write(&conf, r#"{"a-bot": {"module": "m", "enabled": true, "parameters": {"x": 1}}}"#).expect("write");
        set_enabled(dir.path(), "a-bot", false).expect("disable");
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&conf).expect("read")).expect("json");
        assert_eq!(v["a-bot"]["enabled"], false);
        assert_eq!(v["a-bot"]["parameters"]["x"], 1);
        assert!(set_enabled(dir.path(), "no-bot", true).is_err());
    }

    #[test]
    fn enabled_is_persisted_in_runtime_yaml() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("etc")).expect("mkdir");
        let yaml = dir.path().join("etc/runtime.yaml");
        std::fs::write(&yaml, "a-bot:\n  module: m\n  parameters: {}\n").expect("write");
        set_enabled(dir.path(), "a-bot", false).expect("disable");
        let v: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(&yaml).expect("read")).expect("yaml");
        assert_eq!(v["a-bot"]["enabled"], serde_yaml::Value::Bool(false));
    }
}
