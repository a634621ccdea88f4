//! `intelmq.bots.collectors.rsync.collector_rsync`: runs the local `rsync` binary to copy
//! `<rsync_path>/<file>` into `temp_directory` (default `var/lib/bots/rsync_collector` under the
//! node root), then emits the file as a Report (`raw`). `rsync_file_path_formatting` fills
//! `{time[FORMAT]}` placeholders in both `file` and `rsync_path` (true, or a timedelta like
//! `{"days": -1}`); `extra_params` (a shell-quoted string or a list) go before the paths;
//! `private_key` (written to `var/lib/bots/privkey_dir_<bot-id>/private.key`, mode 0600) or
//! `private_key_path` add `-e "ssh -i <key> -o StrictHostKeyChecking=yes|no"`. Needs the `rsync`
//! binary (Debian package `rsync`); a remote `rsync_path` needs the network. rsync's exit codes
//! for connection problems (5, 10, 12, 30, 35, 255) are `Unavailable` (retried with backoff).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::bots::collectors::http::mixin::{self, de, TimeFormatting};
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, CollectorBot, CollectorOutput, Context, Level, ParamError};

/// Parameters of the rsync collector (IntelMQ's names and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RsyncCollectorParams {
    /// `rsync_path`: the source directory, local or remote (`user@host:dir/`); default "<path>".
    #[serde(deserialize_with = "de::string")]
    pub rsync_path: String,
    /// `file`: the file in `rsync_path`; default "<file>".
    #[serde(deserialize_with = "de::string")]
    pub file: String,
    /// `rsync_file_path_formatting`: fill `{time[FORMAT]}` in `file` and `rsync_path`, true or a timedelta; default false.
    pub rsync_file_path_formatting: TimeFormatting,
    /// `extra_params`: more rsync arguments, a shell-quoted string or a list; default null.
    #[serde(deserialize_with = "shell_words")]
    pub extra_params: Option<Vec<String>>,
    /// `private_key`: an SSH private key (written to a 0600 file); default null.
    #[serde(deserialize_with = "de::opt_string")]
    pub private_key: Option<String>,
    /// `private_key_path`: the file of an SSH private key; default null.
    #[serde(deserialize_with = "de::opt_string")]
    pub private_key_path: Option<String>,
    /// `strict_host_key_checking`: ssh's StrictHostKeyChecking with a key; default false.
    #[serde(deserialize_with = "de::bool")]
    pub strict_host_key_checking: bool,
    /// `temp_directory`: where rsync copies the file (relative to the root); default "var/lib/bots/rsync_collector".
    #[serde(deserialize_with = "de::string")]
    pub temp_directory: String,
    /// `rate_limit`: the fetch interval in seconds, applied by the runtime; default 1000.
    #[serde(deserialize_with = "de::f64")]
    pub rate_limit: f64,
}

impl Default for RsyncCollectorParams {
    fn default() -> Self {
        RsyncCollectorParams {
            rsync_path: "<path>".to_string(),
            file: "<file>".to_string(),
            rsync_file_path_formatting: TimeFormatting::Off,
            extra_params: None,
            private_key: None,
            private_key_path: None,
            strict_host_key_checking: false,
            temp_directory: "var/lib/bots/rsync_collector".to_string(),
            rate_limit: 1000.0,
        }
    }
}

/// `extra_params`: a list, or a string split like Python's `shlex.split`.
fn shell_words<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    let v = Value::deserialize(d)?;
    match &v {
        Value::Null => Ok(None),
        Value::String(s) => shlex_split(s).map(Some).map_err(serde::de::Error::custom),
        Value::Array(_) => {
            de::list_of(&v).map(Some).ok_or_else(|| serde::de::Error::custom("expected a list of strings"))
        }
        other => Err(serde::de::Error::custom(format!("expected a string or a list, got {other}"))),
    }
}

/// POSIX shell word splitting (quotes and backslashes), as `shlex.split`.
pub fn shlex_split(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(format!("no closing quotation in `{s}`")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(n @ ('"' | '\\' | '$' | '`')) => word.push(n),
                            Some(n) => {
                                word.push('\\');
                                word.push(n);
                            }
                            None => return Err(format!("no closing quotation in `{s}`")),
                        },
                        Some(c) => word.push(c),
                        None => return Err(format!("no closing quotation in `{s}`")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(n) => word.push(n),
                    None => return Err(format!("no escaped character in `{s}`")),
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// Copies one file with rsync per run.
pub struct RsyncCollectorBot {
    params: RsyncCollectorParams,
    /// The key file once `private_key` is written.
    key_file: Option<PathBuf>,
}

impl BuildBot for RsyncCollectorBot {
    type Params = RsyncCollectorParams;

    fn build(params: RsyncCollectorParams) -> Result<Self, ParamError> {
        if params.private_key.is_some() && params.private_key_path.is_some() {
            return Err(ParamError::new(
                "private_key",
                "you must define only one of the variables private_key or private_key_path",
            ));
        }
        if params.file.is_empty() {
            return Err(ParamError::new("file", "no file given"));
        }
        for (key, v) in [("file", &params.file), ("rsync_path", &params.rsync_path)] {
            params.rsync_file_path_formatting.apply(v).map_err(|e| ParamError::new(key, e))?;
        }
        Ok(RsyncCollectorBot { key_file: params.private_key_path.clone().map(PathBuf::from), params })
    }
}

/// The key as an OpenSSH key file (IntelMQ accepts it with or without its armour and line breaks).
fn openssh_key_file(key: &str) -> String {
    let body = if key.contains("-----") { key.split("-----").nth(2).unwrap_or("") } else { key };
    let b64: String = body.split_whitespace().collect();
    let mut lines = vec!["-----BEGIN OPENSSH PRIVATE KEY-----".to_string()];
    let bytes = b64.as_bytes();
    for chunk in bytes.chunks(70) {
        lines.push(String::from_utf8_lossy(chunk).into_owned());
    }
    lines.push("-----END OPENSSH PRIVATE KEY-----".to_string());
    lines.push(String::new());
    lines.join("\n")
}

/// Python's `os.path.join(a, b)` for two parts.
fn path_join(dir: &str, file: &str) -> String {
    if file.starts_with('/') || dir.is_empty() {
        file.to_string()
    } else if dir.ends_with('/') {
        format!("{dir}{file}")
    } else {
        format!("{dir}/{file}")
    }
}

impl RsyncCollectorBot {
    fn write_key(&mut self, ctx: &Context<'_>) -> Result<(), BotError> {
        let Some(key) = &self.params.private_key else { return Ok(()) };
        if self.key_file.is_some() {
            return Ok(());
        }
        let dir = ctx.resolve(&format!("var/lib/bots/privkey_dir_{}", ctx.bot_id));
        let path = dir.join("private.key");
        let io =
            |e: std::io::Error| BotError::Fatal(format!("cannot write the private key file {}: {e}", path.display()));
        std::fs::create_dir_all(&dir).map_err(io)?;
        {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&path)
                .map_err(io)?;
            f.write_all(openssh_key_file(key).as_bytes()).map_err(io)?;
        }
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).map_err(io)?;
        self.key_file = Some(path);
        Ok(())
    }
}

impl CollectorBot for RsyncCollectorBot {
    fn collect(&mut self, ctx: &mut Context<'_>, out: &mut CollectorOutput) -> Result<(), BotError> {
        self.write_key(ctx)?;
        let fmt = &self.params.rsync_file_path_formatting;
        let file = fmt.apply(&self.params.file).map_err(|e| BotError::Fatal(format!("cannot format file: {e}")))?;
        let dir = fmt
            .apply(&self.params.rsync_path)
            .map_err(|e| BotError::Fatal(format!("cannot format rsync_path: {e}")))?;
        let temp = ctx.resolve(&self.params.temp_directory);
        std::fs::create_dir_all(&temp)
            .map_err(|e| BotError::Fatal(format!("cannot create temp_directory {}: {e}", temp.display())))?;
        let mut args = self.params.extra_params.clone().unwrap_or_default();
        if let Some(key) = &self.key_file {
            let check = if self.params.strict_host_key_checking { "yes" } else { "no" };
            args.push("-e".into());
            args.push(format!("ssh -i {} -o StrictHostKeyChecking={check}", key.display()));
        }
        let source = path_join(&dir, &file);
        ctx.log.log(Level::Info, &format!("Updating file {file}."));
        ctx.log.log(Level::Debug, &format!("Executing command: rsync {} {source} {}.", args.join(" "), temp.display()));
        let output = Command::new("rsync")
            .args(&args)
            .arg(&source)
            .arg(&temp)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => {
                    BotError::Fatal("the rsync binary is not installed (Debian package `rsync`)".to_string())
                }
                _ => BotError::Transient(format!("cannot run rsync: {e}")),
            })?;
        if !output.status.success() {
            let code = output.status.code().unwrap_or(-1);
            let why = format!(
                "rsync on file {file:?} failed with exit code {code} and stderr {:?}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
            return Err(match code {
                5 | 10 | 12 | 30 | 35 | 255 => BotError::Unavailable(why),
                _ => BotError::Transient(why),
            });
        }
        let name = Path::new(&file).file_name().map(|n| n.to_os_string()).unwrap_or_default();
        let local = temp.join(name);
        let data = std::fs::read(&local)
            .map_err(|e| BotError::Transient(format!("cannot read the copied file {}: {e}", local.display())))?;
        out.send(mixin::raw_report(ctx, &data)?);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::bots::collectors::http::mixin::test_server::{params, raw};
    use crate::bots::collectors::test_support::harmonization;
    use crate::bots::{MemoryLog, MemoryState};

    fn rsync_present() -> bool {
        let ok = Command::new("rsync").arg("--version").stdout(Stdio::null()).status().is_ok_and(|s| s.success());
        if !ok {
            assert!(
                std::env::var("INTELMQ_REQUIRE_SERVICES").as_deref() != Ok("1"),
                "rsync is required (INTELMQ_REQUIRE_SERVICES=1) but not installed"
            );
            eprintln!("skipped: the rsync binary is not installed (Debian package rsync)");
        }
        ok
    }

    fn run(bot: &mut RsyncCollectorBot, root: &Path) -> (Result<(), BotError>, Vec<crate::message::Message>) {
        let h = harmonization();
        let mut log = MemoryLog::default();
        let mut state = MemoryState::default();
        let mut out = CollectorOutput::default();
        let r = {
            let mut ctx = Context::new("rsync-collector", &h, root, &mut state, &mut log);
            bot.collect(&mut ctx, &mut out)
        };
        (r, out.reports)
    }

    #[test]
    fn shlex_splits_like_python() {
        assert_eq!(
            shlex_split("-a --timeout=5 'x y' \"a\\\"b\" c\\ d").unwrap(),
            vec!["-a", "--timeout=5", "x y", "a\"b", "c d"]
        );
        assert!(shlex_split("'open").is_err());
    }

    #[test]
    fn openssh_keys_are_rewrapped() {
        let k = openssh_key_file("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA BBBB\n-----END OPENSSH PRIVATE KEY-----");
        assert_eq!(k, "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAABBBB\n-----END OPENSSH PRIVATE KEY-----\n");
    }

    #[test]
    fn a_local_file_is_copied_and_reported_with_formatted_names() {
        if !rsync_present() {
            return;
        }
        let src = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let today = chrono::Local::now().format("%Y%m%d").to_string();
        std::fs::write(src.path().join(format!("{today}-feed.csv")), "ip\n1.2.3.4\n").unwrap();
        let mut bot = RsyncCollectorBot::build(params(json!({
            "rsync_path": src.path().display().to_string(), "file": "{time[%Y%m%d]}-feed.csv",
            "rsync_file_path_formatting": true, "extra_params": "--times"
        })))
        .unwrap();
        let (r, reports) = run(&mut bot, root.path());
        r.unwrap();
        assert_eq!(reports.len(), 1);
        assert_eq!(raw(&reports[0]), "ip\n1.2.3.4\n");
        assert!(root.path().join("var/lib/bots/rsync_collector").join(format!("{today}-feed.csv")).is_file());
    }

    #[test]
    fn a_missing_source_is_an_error_naming_the_file() {
        if !rsync_present() {
            return;
        }
        let root = tempfile::tempdir().unwrap();
        let mut bot =
            RsyncCollectorBot::build(params(json!({"rsync_path": "/nonexistent-dir-for-test", "file": "x.csv"})))
                .unwrap();
        let (r, _) = run(&mut bot, root.path());
        assert!(matches!(r, Err(BotError::Transient(m)) if m.contains("x.csv") && m.contains("exit code")));
    }

    #[test]
    fn private_key_and_key_path_exclude_each_other() {
        let err =
            RsyncCollectorBot::build(params(json!({"private_key": "k", "private_key_path": "/k"}))).err().unwrap();
        assert_eq!(err.key, "private_key");
    }
}
