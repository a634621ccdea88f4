//! `dump list|show|delete|recover|edit|export|import`: IntelMQ's intelmqdump as verbs. `edit`
//! opens the message pretty-printed in `$VISUAL`/`$EDITOR` (else `sensible-editor`, else `vi`).

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use serde_json::{json, Value};

use intelmq_proto::control::v1::{
    DeleteDumpsRequest, DumpEntry, ExportDumpsRequest, ImportDumpsRequest, ListDumpsRequest, RecoverDumpsRequest,
    ShowDumpsRequest, UpdateDumpRequest,
};

use crate::client::{CtlError, Ctx, EXIT_OK};
use crate::input::read_file;
use crate::render::{dump_counts_text, dump_entries_json, dump_entries_text, emit, to_json, warn_notes};

pub async fn list(ctx: &mut Ctx) -> Result<u8, CtlError> {
    let r = ctx.client.list_dumps(ListDumpsRequest {}).await?.into_inner();
    warn_notes(&r.notes);
    if ctx.json {
        let mut obj = serde_json::Map::new();
        for d in &r.bots {
            let n = obj.get(&d.bot_id).and_then(Value::as_u64).unwrap_or(0) + d.count;
            obj.insert(d.bot_id.clone(), json!(n));
        }
        emit(&to_json(&Value::Object(obj)));
    } else {
        emit(&dump_counts_text(&r.bots));
    }
    Ok(EXIT_OK)
}

pub async fn show(ctx: &mut Ctx, bot_id: String, ids: Vec<u64>, truncate: i64) -> Result<u8, CtlError> {
    let r = ctx.client.show_dumps(ShowDumpsRequest { bot_id: bot_id.clone(), ids }).await?.into_inner();
    if ctx.json {
        emit(&to_json(&dump_entries_json(&r.entries)));
    } else if r.entries.is_empty() {
        emit(&format!("Bot {bot_id} has no dump entries.\n"));
    } else {
        emit(&dump_entries_text(&r.entries, truncate));
    }
    Ok(EXIT_OK)
}

fn entries(n: u64) -> &'static str {
    if n == 1 {
        "entry"
    } else {
        "entries"
    }
}

pub async fn delete(ctx: &mut Ctx, bot_id: String, ids: Vec<u64>, all: bool) -> Result<u8, CtlError> {
    let r = ctx.client.delete_dumps(DeleteDumpsRequest { bot_id: bot_id.clone(), ids, all }).await?.into_inner();
    if ctx.json {
        emit(&to_json(&json!({"deleted": r.deleted})));
    } else {
        emit(&format!("Deleted {} dump {} of {bot_id}.\n", r.deleted, entries(r.deleted)));
    }
    Ok(EXIT_OK)
}

pub async fn recover(
    ctx: &mut Ctx,
    bot_id: String,
    ids: Vec<u64>,
    all: bool,
    queue: Option<String>,
) -> Result<u8, CtlError> {
    let r = ctx
        .client
        .recover_dumps(RecoverDumpsRequest {
            bot_id: bot_id.clone(),
            ids,
            all,
            queue: queue.clone().unwrap_or_default(),
        })
        .await?
        .into_inner();
    if ctx.json {
        emit(&to_json(&json!({"recovered": r.recovered, "ids": r.ids})));
    } else {
        let into = queue.map(|q| format!(" into {q}")).unwrap_or_default();
        let ids: Vec<String> = r.ids.iter().map(u64::to_string).collect();
        let list = if ids.is_empty() { String::new() } else { format!(" (ids {})", ids.join(", ")) };
        emit(&format!("Recovered {} dump {} of {bot_id}{into}{list}.\n", r.recovered, entries(r.recovered)));
    }
    Ok(EXIT_OK)
}

/// Finds a dump entry by id: in the given bot's dump, else in every bot's.
async fn find_entry(ctx: &mut Ctx, bot_id: Option<String>, id: u64) -> Result<DumpEntry, CtlError> {
    let bots = match bot_id {
        Some(b) => vec![b],
        None => {
            let r = ctx.client.list_dumps(ListDumpsRequest {}).await?.into_inner();
            r.bots.into_iter().filter(|d| d.count > 0).map(|d| d.bot_id).collect()
        }
    };
    for bot in bots {
        let r = ctx.client.show_dumps(ShowDumpsRequest { bot_id: bot, ids: vec![] }).await?.into_inner();
        if let Some(e) = r.entries.into_iter().find(|e| e.id == id) {
            return Ok(e);
        }
    }
    Err(CtlError { not_found: true, ..CtlError::usage(format!("no dump entry {id}")) })
}

/// The text an operator edits: the message pretty-printed, or the decoded bytes of a base64 entry.
pub fn editable_text(e: &DumpEntry) -> String {
    if e.message_type == "base64" {
        if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(e.message.trim()) {
            return String::from_utf8_lossy(&bytes).into_owned();
        }
        return e.message.clone();
    }
    match serde_json::from_str::<Value>(&e.message) {
        Ok(v) => to_json(&v) + "\n",
        Err(_) => e.message.clone(),
    }
}

/// The editor command: `$VISUAL`, `$EDITOR`, else `sensible-editor` when on the PATH, else `vi`.
pub fn editor(visual: Option<String>, editor: Option<String>, path_var: Option<String>) -> String {
    if let Some(e) = visual.into_iter().chain(editor).find(|e| !e.trim().is_empty()) {
        return e;
    }
    let on_path = path_var.is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("sensible-editor").is_file()));
    if on_path { "sensible-editor" } else { "vi" }.to_string()
}

fn edit_in_editor(cmd: &str, file: &Path) -> Result<(), CtlError> {
    // Through the shell, as git does, so EDITOR may hold arguments ("code --wait").
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("{cmd} \"$1\""))
        .arg("intelmqctl")
        .arg(file)
        .status()
        .map_err(|e| CtlError::failed(format!("cannot start the editor `{cmd}`: {e}")))?;
    if !status.success() {
        return Err(CtlError::failed(format!("the editor `{cmd}` exited with {status}; the dump entry is unchanged")));
    }
    Ok(())
}

pub async fn edit(ctx: &mut Ctx, bot_id: Option<String>, id: u64) -> Result<u8, CtlError> {
    let entry = find_entry(ctx, bot_id, id).await?;
    let before = editable_text(&entry);
    let file: PathBuf = std::env::temp_dir().join(format!("intelmqctl-dump-{id}-{}.json", std::process::id()));
    std::fs::write(&file, &before).map_err(|e| CtlError::failed(format!("cannot write {}: {e}", file.display())))?;
    let cmd = editor(std::env::var("VISUAL").ok(), std::env::var("EDITOR").ok(), std::env::var("PATH").ok());
    let edited = edit_in_editor(&cmd, &file).and_then(|()| read_file(&file));
    let after = match edited {
        Ok(a) => a,
        Err(e) => {
            let _ = std::fs::remove_file(&file);
            return Err(e);
        }
    };
    if after.trim() == before.trim() {
        let _ = std::fs::remove_file(&file);
        emit(&if ctx.json {
            to_json(&dump_entries_json(&[entry])[0])
        } else {
            format!("Dump entry {id} is unchanged.\n")
        });
        return Ok(EXIT_OK);
    }
    let message: Value = match serde_json::from_str(&after) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => {
            return Err(CtlError::usage(format!("the edited message is not a JSON object; kept in {}", file.display())))
        }
        Err(e) => {
            return Err(CtlError::usage(format!(
                "the edited message is not valid JSON ({e}); kept in {}",
                file.display()
            )))
        }
    };
    let updated = ctx
        .client
        .update_dump(UpdateDumpRequest { id, message: message.to_string(), bot_id: entry.bot_id.clone() })
        .await;
    let updated = match updated {
        Ok(r) => r.into_inner().entry,
        Err(status) => {
            let e = CtlError::from(status);
            return Err(CtlError::new(e.code, format!("{}; the edit is kept in {}", e.message, file.display())));
        }
    };
    let _ = std::fs::remove_file(&file);
    if ctx.json {
        let entry = updated.unwrap_or(DumpEntry { message: message.to_string(), message_type: String::new(), ..entry });
        emit(&to_json(&dump_entries_json(&[entry])[0]));
    } else {
        emit(&format!("Dump entry {id} of {} updated.\n", entry.bot_id));
    }
    Ok(EXIT_OK)
}

/// IntelMQ's `.dump` JSON to a file or stdout.
pub async fn export(ctx: &mut Ctx, bot_id: String, file: Option<PathBuf>) -> Result<u8, CtlError> {
    let r = ctx.client.export_dumps(ExportDumpsRequest { bot_id: bot_id.clone() }).await?.into_inner();
    let Some(file) = file else {
        emit(&r.dump_json);
        return Ok(EXIT_OK);
    };
    let n = serde_json::from_str::<Value>(&r.dump_json)
        .ok()
        .and_then(|v| v.as_object().map(|o| o.len() as u64))
        .unwrap_or(0);
    let mut text = r.dump_json;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    std::fs::write(&file, text).map_err(|e| CtlError::failed(format!("cannot write {}: {e}", file.display())))?;
    if ctx.json {
        emit(&to_json(&json!({"bot_id": bot_id, "file": file.display().to_string(), "entries": n})));
    } else {
        emit(&format!("Exported {n} dump {} of {bot_id} to {}.\n", entries(n), file.display()));
    }
    Ok(EXIT_OK)
}

/// Adds the entries of an IntelMQ `.dump` file.
pub async fn import(ctx: &mut Ctx, file: PathBuf, bot_id: Option<String>) -> Result<u8, CtlError> {
    let text = read_file(&file)?;
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(_)) => {}
        Ok(_) => return Err(CtlError::usage(format!("{} is not an IntelMQ dump (a JSON object)", file.display()))),
        Err(e) => return Err(CtlError::usage(format!("{} is not valid JSON: {e}", file.display()))),
    }
    let r = ctx
        .client
        .import_dumps(ImportDumpsRequest { dump_json: text, bot_id: bot_id.unwrap_or_default() })
        .await?
        .into_inner();
    if ctx.json {
        emit(&to_json(&json!({"imported": r.imported})));
    } else {
        emit(&format!("Imported {} dump {}.\n", r.imported, entries(r.imported)));
    }
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::EXIT_FAILED;

    fn entry(message: &str, message_type: &str) -> DumpEntry {
        DumpEntry {
            id: 1,
            bot_id: "p".into(),
            message: message.into(),
            message_type: message_type.into(),
            ..Default::default()
        }
    }

    #[test]
    fn editable_text_is_pretty_json_or_decoded_bytes() {
        assert_eq!(editable_text(&entry(r#"{"a":1}"#, "")), "{\n    \"a\": 1\n}\n");
        assert_eq!(editable_text(&entry("aGVsbG8=", "base64")), "hello");
        assert_eq!(editable_text(&entry("not json", "")), "not json");
    }

    #[test]
    fn the_editor_comes_from_visual_then_editor_then_a_fallback() {
        assert_eq!(editor(Some("nano".into()), Some("vim".into()), None), "nano");
        assert_eq!(editor(Some("".into()), Some("vim -n".into()), None), "vim -n");
        assert_eq!(editor(None, None, Some("/nonexistent".into())), "vi");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("sensible-editor"), "").expect("write");
        assert_eq!(editor(None, None, Some(dir.path().display().to_string())), "sensible-editor");
    }

    #[test]
    fn the_editor_edits_the_file_in_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("m.json");
        std::fs::write(&f, "{\"a\": 1}").expect("write");
        edit_in_editor("sed -i s/1/2/", &f).expect("edits");
        assert_eq!(std::fs::read_to_string(&f).expect("read"), "{\"a\": 2}");
        assert_eq!(edit_in_editor("false", &f).map_err(|e| e.code), Err(EXIT_FAILED));
    }
}
