//! IntelMQ's Shadowserver schema format (`shadowserver-schema.json`): loading, checking and
//! compiling it into report types, and the conversion functions its field entries name.
//!
//! The file is a JSON object with one entry per report type (plus an optional `_meta` object):
//! `feed_name`, `file_name`, optional `url` (written to `feed.documentation`), `constant_fields`
//! and the `required_fields` / `optional_fields` lists of `[intelmq_key, csv_column,
//! (conversion), (pass_row)]`. `intelmq_key` is a field name, `"extra."` (store under the column's
//! name in `extra`), `"extra.<name>"` or `false` (ignore the column). Later entries win when two
//! share a `file_name` or `feed_name`, as in IntelMQ.

use std::collections::HashMap;
use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};

use crate::message::types::{base64_decode, parse_py_float, py_strip};
use crate::message::{datetime, TypeName};

/// A schema that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("cannot read shadowserver schema {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("invalid shadowserver schema {path}: {reason}")]
    Invalid { path: String, reason: String },
}

/// Where an entry's value goes.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// An IntelMQ field (`extra.<name>` entries are [`Target::Extra`]).
    Field(String),
    /// `"extra."`: `extra.<column name>`.
    ExtraColumn,
    /// `"extra.<name>"`: `extra.<name>`.
    Extra(String),
    /// `false`: the column is consumed and dropped.
    Ignore,
}

/// The conversion functions of IntelMQ's Shadowserver `_config.py`, plus the `legacy_*` functions
/// of IntelMQ 3.2.1 that the legacy mapping needs.
#[derive(Clone, Debug, PartialEq)]
pub enum Conversion {
    AddUtcToTimestamp,
    ConvertBool,
    ValidateToNone,
    ConvertInt,
    ConvertFloat,
    ConvertHttpHostAndUrl,
    InvalidateZero,
    ValidateIp,
    ValidateNetwork,
    ValidateFqdn,
    ConvertDate,
    ConvertDateUtc,
    ForceBase64,
    ScanExchangeTaxonomy,
    ScanExchangeType,
    ScanExchangeIdentifier,
    CategoryOrDetail,
    ExtractCveFromTag,
    LegacyConvertHttpHostAndUrl,
    LegacyScanExchangeTaxonomy,
    LegacyScanExchangeType,
    LegacyScanExchangeIdentifier,
    /// A name this parser does not know: an optional field keeps the raw value (IntelMQ skips the
    /// conversion), a required field fails the line.
    Unknown(String),
}

impl Conversion {
    /// The conversion named `name` in a schema.
    pub fn from_name(name: &str) -> Conversion {
        match name {
            "add_UTC_to_timestamp" => Conversion::AddUtcToTimestamp,
            "convert_bool" => Conversion::ConvertBool,
            "validate_to_none" => Conversion::ValidateToNone,
            "convert_int" => Conversion::ConvertInt,
            "convert_float" => Conversion::ConvertFloat,
            "convert_http_host_and_url" => Conversion::ConvertHttpHostAndUrl,
            "invalidate_zero" => Conversion::InvalidateZero,
            "validate_ip" => Conversion::ValidateIp,
            "validate_network" => Conversion::ValidateNetwork,
            "validate_fqdn" => Conversion::ValidateFqdn,
            "convert_date" => Conversion::ConvertDate,
            "convert_date_utc" => Conversion::ConvertDateUtc,
            "force_base64" => Conversion::ForceBase64,
            "scan_exchange_taxonomy" => Conversion::ScanExchangeTaxonomy,
            "scan_exchange_type" => Conversion::ScanExchangeType,
            "scan_exchange_identifier" => Conversion::ScanExchangeIdentifier,
            "category_or_detail" => Conversion::CategoryOrDetail,
            "extract_cve_from_tag" => Conversion::ExtractCveFromTag,
            "legacy_convert_http_host_and_url" => Conversion::LegacyConvertHttpHostAndUrl,
            "legacy_scan_exchange_taxonomy" => Conversion::LegacyScanExchangeTaxonomy,
            "legacy_scan_exchange_type" => Conversion::LegacyScanExchangeType,
            "legacy_scan_exchange_identifier" => Conversion::LegacyScanExchangeIdentifier,
            other => Conversion::Unknown(other.to_string()),
        }
    }

    /// The function's name in a schema.
    pub fn name(&self) -> &str {
        match self {
            Conversion::AddUtcToTimestamp => "add_UTC_to_timestamp",
            Conversion::ConvertBool => "convert_bool",
            Conversion::ValidateToNone => "validate_to_none",
            Conversion::ConvertInt => "convert_int",
            Conversion::ConvertFloat => "convert_float",
            Conversion::ConvertHttpHostAndUrl => "convert_http_host_and_url",
            Conversion::InvalidateZero => "invalidate_zero",
            Conversion::ValidateIp => "validate_ip",
            Conversion::ValidateNetwork => "validate_network",
            Conversion::ValidateFqdn => "validate_fqdn",
            Conversion::ConvertDate => "convert_date",
            Conversion::ConvertDateUtc => "convert_date_utc",
            Conversion::ForceBase64 => "force_base64",
            Conversion::ScanExchangeTaxonomy => "scan_exchange_taxonomy",
            Conversion::ScanExchangeType => "scan_exchange_type",
            Conversion::ScanExchangeIdentifier => "scan_exchange_identifier",
            Conversion::CategoryOrDetail => "category_or_detail",
            Conversion::ExtractCveFromTag => "extract_cve_from_tag",
            Conversion::LegacyConvertHttpHostAndUrl => "legacy_convert_http_host_and_url",
            Conversion::LegacyScanExchangeTaxonomy => "legacy_scan_exchange_taxonomy",
            Conversion::LegacyScanExchangeType => "legacy_scan_exchange_type",
            Conversion::LegacyScanExchangeIdentifier => "legacy_scan_exchange_identifier",
            Conversion::Unknown(name) => name,
        }
    }

    /// Converts one cell. `Ok(None)`: no value (the field is not set). `Err`: the text the line
    /// fails with (IntelMQ re-raises conversion errors).
    pub fn apply(&self, value: &str, row: &Row<'_>) -> Result<Option<Value>, String> {
        let text = |s: String| Ok(Some(Value::String(s)));
        match self {
            Conversion::AddUtcToTimestamp => text(format!("{value} UTC")),
            Conversion::ConvertBool => Ok(match value.to_lowercase().as_str() {
                "y" | "yes" | "true" | "enabled" | "1" => Some(Value::Bool(true)),
                "n" | "no" | "false" | "disabled" | "0" => Some(Value::Bool(false)),
                _ => None,
            }),
            Conversion::ValidateToNone => {
                if value.is_empty() || value == "0" || value == "unknown" {
                    Ok(None)
                } else {
                    text(value.to_string())
                }
            }
            Conversion::ConvertInt => {
                if value.is_empty() {
                    return Ok(None);
                }
                py_int(value).map(|i| Some(Value::from(i)))
            }
            Conversion::ConvertFloat => {
                if value.is_empty() {
                    return Ok(None);
                }
                let f = parse_py_float(value).ok_or_else(|| format!("could not convert string to float: {value:?}"))?;
                serde_json::Number::from_f64(f)
                    .map(|n| Some(Value::Number(n)))
                    .ok_or_else(|| format!("float {value:?} cannot be stored in JSON"))
            }
            Conversion::InvalidateZero => {
                if value.is_empty() {
                    return Ok(None);
                }
                let i = py_int(value)?;
                Ok((i != 0).then(|| Value::from(i)))
            }
            Conversion::ValidateIp => {
                let keep = value != "0.0.0.0" && !value.contains('/') && valid_sanitized(TypeName::IPAddress, value);
                Ok(keep.then(|| Value::String(value.to_string())))
            }
            Conversion::ValidateNetwork => {
                let keep = value.contains('/') && valid_sanitized(TypeName::IPNetwork, value);
                Ok(keep.then(|| Value::String(value.to_string())))
            }
            Conversion::ValidateFqdn => {
                let keep = !value.is_empty() && valid_sanitized(TypeName::FQDN, value);
                Ok(keep.then(|| Value::String(value.to_string())))
            }
            Conversion::ConvertDate => Ok(datetime::sanitize(value).map(Value::String)),
            Conversion::ConvertDateUtc => Ok(datetime::sanitize(&format!("{value}+00:00")).map(Value::String)),
            Conversion::ForceBase64 => Ok(force_base64(value).map(Value::String)),
            Conversion::ScanExchangeTaxonomy => {
                text(if value.contains("webshell") { "intrusions" } else { "vulnerable" }.to_string())
            }
            Conversion::ScanExchangeType => {
                text(if value.contains("webshell") { "system-compromise" } else { "vulnerable-system" }.to_string())
            }
            Conversion::ScanExchangeIdentifier => text(
                if value.contains("webshell") { "exchange-server-webshell" } else { "vulnerable-exchange-server" }
                    .to_string(),
            ),
            Conversion::LegacyScanExchangeTaxonomy => {
                text(if value == "exchange;webshell" { "intrusions" } else { "vulnerable" }.to_string())
            }
            Conversion::LegacyScanExchangeType => {
                text(if value == "exchange;webshell" { "system-compromise" } else { "infected-system" }.to_string())
            }
            Conversion::LegacyScanExchangeIdentifier => text(
                if value == "exchange;webshell" { "exchange-server-webshell" } else { "vulnerable-exchange-server" }
                    .to_string(),
            ),
            Conversion::CategoryOrDetail => match row.get("category").filter(|c| !c.is_empty()) {
                Some(category) => text(category.to_string()),
                None => text(row.get("detail").unwrap_or("").to_string()),
            },
            Conversion::ExtractCveFromTag => Ok(extract_cve_from_tag(value).map(Value::String)),
            Conversion::ConvertHttpHostAndUrl => {
                let non_empty = |col: &str| row.get(col).filter(|v| !v.is_empty());
                let host = ["cc_dns", "http_host", "hostname", "ip"].iter().find_map(|c| non_empty(c)).unwrap_or("");
                let path = ["url", "http_url"].iter().find_map(|c| non_empty(c)).unwrap_or("");
                text(join_host_and_path(value, host, path, row))
            }
            Conversion::LegacyConvertHttpHostAndUrl => {
                // IntelMQ 3.2.1: the first column present wins, even when it is empty.
                let first_present =
                    |cols: &[&str]| cols.iter().find(|c| row.has(c)).map(|c| row.get(c).unwrap_or("")).unwrap_or("");
                let host = first_present(&["cc_dns", "http_host"]);
                let path = first_present(&["url", "http_url"]);
                text(join_host_and_path(value, host, path, row))
            }
            Conversion::Unknown(name) => Err(format!("unknown conversion function `{name}`")),
        }
    }
}

/// `<scheme>://<host><path>` when both are non-empty (the path loses anything before its first
/// `/` and from its first whitespace on); otherwise the value unchanged.
fn join_host_and_path(value: &str, host: &str, path: &str, row: &Row<'_>) -> String {
    if host.is_empty() || path.is_empty() {
        return value.to_string();
    }
    let path = match path.find('/') {
        Some(i) => &path[i..],
        None => "",
    };
    let path = match path.find(char::is_whitespace) {
        Some(i) => &path[..i],
        None => path,
    };
    let scheme = row.get("application").filter(|app| matches!(*app, "http" | "https")).unwrap_or("http");
    format!("{scheme}://{host}{path}")
}

/// Python `int(text)` for a cell: blanks around, an optional sign, decimal digits (underscores
/// between digits allowed).
fn py_int(value: &str) -> Result<i64, String> {
    let bad = || format!("invalid literal for int() with base 10: {value:?}");
    let s = py_strip(value);
    let (sign, digits) = match s.as_bytes().first() {
        Some(b'-') => (-1, &s[1..]),
        Some(b'+') => (1, &s[1..]),
        _ => (1, s),
    };
    if digits.is_empty() || digits.starts_with('_') || digits.ends_with('_') || digits.contains("__") {
        return Err(bad());
    }
    let cleaned: String = digits.chars().filter(|c| *c != '_').collect();
    if !cleaned.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    cleaned.parse::<i64>().map(|i| sign * i).map_err(|_| bad())
}

/// IntelMQ `<Type>.is_valid(value, sanitize=True)`.
fn valid_sanitized(ty: TypeName, value: &str) -> bool {
    ty.sanitize(&Value::String(value.to_string())).is_some_and(|v| ty.is_valid(&v))
}

/// `force_base64`: empty gives nothing; strict base64 stays; anything else is encoded.
fn force_base64(value: &str) -> Option<String> {
    use base64::Engine as _;
    static STRICT: LazyLock<Regex> = LazyLock::new(|| {
        // Invariant: a constant, valid pattern.
        #[allow(clippy::unwrap_used)]
        Regex::new(r"^[A-Za-z0-9+/]*={0,2}$").unwrap()
    });
    if value.is_empty() {
        return None;
    }
    if STRICT.is_match(value) && base64_decode(value).is_some() {
        Some(value.to_string())
    } else {
        Some(base64::engine::general_purpose::STANDARD.encode(value.as_bytes()))
    }
}

/// `extract_cve_from_tag`: the distinct `cve-N-N` tags of a `;`-separated list, sorted and joined
/// with `;`; nothing when there is none.
fn extract_cve_from_tag(tag: &str) -> Option<String> {
    static CVE: LazyLock<Regex> = LazyLock::new(|| {
        // Invariant: a constant, valid pattern.
        #[allow(clippy::unwrap_used)]
        Regex::new(r"^cve-[0-9]+-[0-9]+$").unwrap()
    });
    let mut cves: Vec<&str> = tag.split(';').filter(|t| CVE.is_match(t)).collect();
    cves.sort_unstable();
    cves.dedup();
    (!cves.is_empty()).then(|| cves.join(";"))
}

/// A CSV row seen as IntelMQ's `DictReader` dict: the header's names and the row's cells.
#[derive(Clone, Copy, Debug)]
pub struct Row<'a> {
    pub names: &'a [String],
    pub cells: &'a [String],
}

impl<'a> Row<'a> {
    /// `column in row`: the header has the column.
    pub fn has(&self, column: &str) -> bool {
        self.names.iter().any(|n| n == column)
    }

    /// `row.get(column)`: the cell (the last one of a repeated name, as in a dict); `None` when the
    /// header lacks the column or the row is shorter than the header.
    pub fn get(&self, column: &str) -> Option<&'a str> {
        let index = self.names.iter().rposition(|n| n == column)?;
        self.cells.get(index).map(String::as_str)
    }
}

/// One field entry of a report type.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldMapping {
    pub target: Target,
    pub column: String,
    pub conversion: Option<Conversion>,
    /// The 4th element: the function also gets the row (ours always see the row).
    pub pass_row: bool,
}

/// One report type of the schema.
#[derive(Clone, Debug)]
pub struct ReportType {
    /// The entry's key in the schema file.
    pub key: String,
    pub feed_name: String,
    pub file_name: String,
    /// Written to `feed.documentation`.
    pub url: Option<String>,
    pub required_fields: Vec<FieldMapping>,
    pub optional_fields: Vec<FieldMapping>,
    pub constant_fields: Vec<(String, Value)>,
}

/// A compiled schema: the report types and the two lookups.
#[derive(Clone, Debug, Default)]
pub struct Schema {
    reports: Vec<ReportType>,
    by_file_name: HashMap<String, usize>,
    by_feed_name: HashMap<String, usize>,
    /// The `_meta` object, when the file has one.
    pub meta: Option<Value>,
}

impl Schema {
    /// Parses and checks a schema from its JSON text; `origin` names it in errors.
    pub fn from_json(text: &str, origin: &str) -> Result<Schema, SchemaError> {
        let invalid = |reason: String| SchemaError::Invalid { path: origin.to_string(), reason };
        let root: Value = serde_json::from_str(text).map_err(|e| invalid(format!("not JSON: {e}")))?;
        let Value::Object(entries) = root else {
            return Err(invalid("the top level must be a JSON object".to_string()));
        };
        let mut schema = Schema::default();
        for (key, entry) in entries {
            if key == "_meta" {
                schema.meta = Some(entry);
                continue;
            }
            let report = compile_report(&key, &entry).map_err(|reason| invalid(format!("report `{key}`: {reason}")))?;
            let index = schema.reports.len();
            // Later entries win, as in IntelMQ's `reload()`.
            schema.by_file_name.insert(report.file_name.clone(), index);
            schema.by_feed_name.insert(report.feed_name.clone(), index);
            schema.reports.push(report);
        }
        Ok(schema)
    }

    /// Reads and compiles a schema file.
    pub fn load(path: &Path) -> Result<Schema, SchemaError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| SchemaError::Read { path: path.display().to_string(), reason: e.to_string() })?;
        Schema::from_json(&text, &path.display().to_string())
    }

    /// The report type whose `file_name` is `name`.
    pub fn by_file_name(&self, name: &str) -> Option<&ReportType> {
        self.by_file_name.get(name).and_then(|i| self.reports.get(*i))
    }

    /// The report type whose `feed_name` is `name`.
    pub fn by_feed_name(&self, name: &str) -> Option<&ReportType> {
        self.by_feed_name.get(name).and_then(|i| self.reports.get(*i))
    }

    /// The report types in file order.
    pub fn reports(&self) -> &[ReportType] {
        &self.reports
    }
}

fn compile_report(key: &str, entry: &Value) -> Result<ReportType, String> {
    let Value::Object(entry) = entry else {
        return Err("must be a JSON object".to_string());
    };
    let string = |name: &str| match entry.get(name) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!("`{name}` must be a string, got {other}")),
        None => Err(format!("`{name}` is missing")),
    };
    let url = match entry.get("url") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => return Err(format!("`url` must be a string, got {other}")),
    };
    let constant_fields = match entry.get("constant_fields") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(map)) => map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        Some(other) => return Err(format!("`constant_fields` must be an object, got {other}")),
    };
    Ok(ReportType {
        key: key.to_string(),
        feed_name: string("feed_name")?,
        file_name: string("file_name")?,
        url,
        required_fields: compile_fields(entry, "required_fields")?,
        optional_fields: compile_fields(entry, "optional_fields")?,
        constant_fields,
    })
}

fn compile_fields(entry: &Map<String, Value>, name: &str) -> Result<Vec<FieldMapping>, String> {
    let items = match entry.get(name) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => return Err(format!("`{name}` must be a list, got {other}")),
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| compile_field(item).map_err(|reason| format!("`{name}` entry {i} ({item}): {reason}")))
        .collect()
}

fn compile_field(item: &Value) -> Result<FieldMapping, String> {
    let Value::Array(parts) = item else {
        return Err("must be a list".to_string());
    };
    if !(2..=4).contains(&parts.len()) {
        return Err(format!("must have 2 to 4 elements, has {}", parts.len()));
    }
    let target = match &parts[0] {
        Value::Bool(false) => Target::Ignore,
        Value::String(s) if s == "extra." => Target::ExtraColumn,
        Value::String(s) => match s.strip_prefix("extra.") {
            Some(name) => Target::Extra(name.to_string()),
            None => Target::Field(s.clone()),
        },
        other => return Err(format!("the IntelMQ key must be a string or false, got {other}")),
    };
    let column = match &parts[1] {
        Value::String(s) => s.clone(),
        other => return Err(format!("the column must be a string, got {other}")),
    };
    let conversion = match parts.get(2) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(Conversion::from_name(s)),
        Some(other) => return Err(format!("the conversion must be a function name, got {other}")),
    };
    let pass_row = match parts.get(3) {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(format!("the 4th element must be a bool, got {other}")),
    };
    Ok(FieldMapping { target, column, conversion, pass_row })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row<'a>(names: &'a [String], cells: &'a [String]) -> Row<'a> {
        Row { names, cells }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn convert(name: &str, value: &str) -> Result<Option<Value>, String> {
        let names = strings(&[]);
        Conversion::from_name(name).apply(value, &row(&names, &names))
    }

    #[test]
    fn simple_conversions_follow_intelmq() {
        assert_eq!(convert("add_UTC_to_timestamp", "2020-01-01 00:00:00"), Ok(Some(json!("2020-01-01 00:00:00 UTC"))));
        assert_eq!(convert("convert_bool", "Enabled"), Ok(Some(json!(true))));
        assert_eq!(convert("convert_bool", "N"), Ok(Some(json!(false))));
        assert_eq!(convert("convert_bool", ""), Ok(None));
        assert_eq!(convert("validate_to_none", "unknown"), Ok(None));
        assert_eq!(convert("validate_to_none", "0"), Ok(None));
        assert_eq!(convert("validate_to_none", "N"), Ok(Some(json!("N"))));
        assert_eq!(convert("convert_int", " 42 "), Ok(Some(json!(42))));
        assert_eq!(convert("convert_int", ""), Ok(None));
        assert!(convert("convert_int", "4.2").is_err());
        assert_eq!(convert("convert_float", "27.00"), Ok(Some(json!(27.0))));
        assert_eq!(convert("invalidate_zero", "0"), Ok(None));
        assert_eq!(convert("invalidate_zero", "517311"), Ok(Some(json!(517311))));
        assert!(convert("invalidate_zero", "x").is_err());
    }

    #[test]
    fn validators_keep_the_original_value_or_drop_it() {
        assert_eq!(convert("validate_ip", "192.0.2.1"), Ok(Some(json!("192.0.2.1"))));
        assert_eq!(convert("validate_ip", "0.0.0.0"), Ok(None));
        assert_eq!(convert("validate_ip", "192.0.2.0/24"), Ok(None));
        assert_eq!(convert("validate_network", "192.0.2.0/24"), Ok(Some(json!("192.0.2.0/24"))));
        assert_eq!(convert("validate_network", "192.0.2.1"), Ok(None));
        assert_eq!(convert("validate_fqdn", "example.com"), Ok(Some(json!("example.com"))));
        assert_eq!(convert("validate_fqdn", ""), Ok(None));
    }

    #[test]
    fn dates_are_sanitized_to_utc() {
        assert_eq!(
            convert("convert_date", "Thu, 19 Apr 2018 00:02:28 GMT"),
            Ok(Some(json!("2018-04-19T00:02:28+00:00")))
        );
        assert_eq!(convert("convert_date", "not a date at all"), Ok(None));
    }

    #[test]
    fn force_base64_encodes_only_what_is_not_base64() {
        assert_eq!(convert("force_base64", ""), Ok(None));
        assert_eq!(convert("force_base64", "aGVsbG8="), Ok(Some(json!("aGVsbG8="))));
        assert_eq!(convert("force_base64", "GET / HTTP/1.1"), Ok(Some(json!("R0VUIC8gSFRUUC8xLjE="))));
    }

    #[test]
    fn exchange_functions_differ_between_head_and_legacy() {
        assert_eq!(convert("scan_exchange_type", "exchange;cve-2021-26855"), Ok(Some(json!("vulnerable-system"))));
        assert_eq!(convert("legacy_scan_exchange_type", "exchange;cve-2021-26855"), Ok(Some(json!("infected-system"))));
        assert_eq!(convert("scan_exchange_taxonomy", "webshell;exchange"), Ok(Some(json!("intrusions"))));
        assert_eq!(convert("legacy_scan_exchange_taxonomy", "webshell;exchange"), Ok(Some(json!("vulnerable"))));
        assert_eq!(
            convert("legacy_scan_exchange_identifier", "exchange;webshell"),
            Ok(Some(json!("exchange-server-webshell")))
        );
    }

    #[test]
    fn cves_are_extracted_sorted_and_unique() {
        assert_eq!(
            convert("extract_cve_from_tag", "cve-2021-2;exchange;cve-2020-1;cve-2021-2"),
            Ok(Some(json!("cve-2020-1;cve-2021-2")))
        );
        assert_eq!(convert("extract_cve_from_tag", "exchange"), Ok(None));
    }

    #[test]
    fn urls_are_built_from_host_and_path() {
        let names = strings(&["url", "http_host", "application", "ip"]);
        let cells = strings(&["GET /a/b?c HTTP/1.1", "example.com", "https", "192.0.2.1"]);
        let r = row(&names, &cells);
        let head = Conversion::ConvertHttpHostAndUrl.apply("GET /a/b?c HTTP/1.1", &r);
        assert_eq!(head, Ok(Some(json!("https://example.com/a/b?c"))));
        let legacy = Conversion::LegacyConvertHttpHostAndUrl.apply("GET /a/b?c HTTP/1.1", &r);
        assert_eq!(legacy, Ok(Some(json!("https://example.com/a/b?c"))));

        // Without a host column the legacy function keeps the value; HEAD's falls back to `ip`.
        let names = strings(&["url", "ip"]);
        let cells = strings(&["https://example.net/x", "192.0.2.1"]);
        let r = row(&names, &cells);
        let legacy = Conversion::LegacyConvertHttpHostAndUrl.apply("https://example.net/x", &r);
        assert_eq!(legacy, Ok(Some(json!("https://example.net/x"))));
        let head = Conversion::ConvertHttpHostAndUrl.apply("https://example.net/x", &r);
        assert_eq!(head, Ok(Some(json!("http://192.0.2.1//example.net/x"))));
    }

    #[test]
    fn category_or_detail_prefers_a_non_empty_category() {
        let names = strings(&["category", "detail"]);
        let cells = strings(&["", "detail text"]);
        assert_eq!(Conversion::CategoryOrDetail.apply("", &row(&names, &cells)), Ok(Some(json!("detail text"))));
        let cells = strings(&["cat", "detail text"]);
        assert_eq!(Conversion::CategoryOrDetail.apply("", &row(&names, &cells)), Ok(Some(json!("cat"))));
    }

    #[test]
    fn unknown_conversions_are_kept_by_name_and_fail_when_applied() {
        assert_eq!(Conversion::from_name("nope"), Conversion::Unknown("nope".to_string()));
        for name in ["add_UTC_to_timestamp", "legacy_scan_exchange_type", "extract_cve_from_tag", "nope"] {
            assert_eq!(Conversion::from_name(name).name(), name);
        }
        assert!(convert("nope", "x").is_err());
    }

    #[test]
    fn schema_compiles_targets_and_later_entries_win() {
        let text = json!({
            "_meta": {"date_created": "today"},
            "a": {"feed_name": "A", "file_name": "same", "constant_fields": {"classification.type": "scanner"},
                  "required_fields": [["source.ip", "ip", "validate_ip"]],
                  "optional_fields": [["extra.", "tag"], ["extra.source.naics", "naics", "invalidate_zero"],
                                      [false, "junk"], ["source.url", "url", "convert_http_host_and_url", true]]},
            "b": {"feed_name": "B", "file_name": "same", "url": "https://example.com/doc"}
        })
        .to_string();
        let schema = Schema::from_json(&text, "test").unwrap();
        assert_eq!(schema.reports().len(), 2);
        assert!(schema.meta.is_some());
        assert_eq!(schema.by_file_name("same").unwrap().feed_name, "B");
        assert_eq!(schema.by_file_name("same").unwrap().url.as_deref(), Some("https://example.com/doc"));
        let a = schema.by_feed_name("A").unwrap();
        assert_eq!(a.required_fields[0].conversion, Some(Conversion::ValidateIp));
        assert_eq!(a.optional_fields[0].target, Target::ExtraColumn);
        assert_eq!(a.optional_fields[1].target, Target::Extra("source.naics".to_string()));
        assert_eq!(a.optional_fields[2].target, Target::Ignore);
        assert!(a.optional_fields[3].pass_row);
    }

    #[test]
    fn broken_schemas_name_the_report_and_the_problem() {
        let err = Schema::from_json(r#"{"x": {"file_name": "x"}}"#, "s.json").unwrap_err().to_string();
        assert!(err.contains("s.json") && err.contains("report `x`") && err.contains("feed_name"), "{err}");
        let err = Schema::from_json(r#"{"x": {"feed_name": "X", "file_name": "x", "required_fields": [["a"]]}}"#, "s")
            .unwrap_err()
            .to_string();
        assert!(err.contains("2 to 4 elements"), "{err}");
        assert!(Schema::from_json("[]", "s").is_err());
    }

    #[test]
    fn rows_behave_like_dict_reader_dicts() {
        let names = strings(&["a", "b", "c"]);
        let cells = strings(&["1", "2"]);
        let r = row(&names, &cells);
        assert!(r.has("c"));
        assert_eq!(r.get("b"), Some("2"));
        assert_eq!(r.get("c"), None);
        assert_eq!(r.get("d"), None);
    }
}
