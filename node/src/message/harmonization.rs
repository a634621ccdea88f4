//! The harmonization: which keys a Report or an Event may hold, their types and constraints,
//! loaded from `harmonization.conf` (IntelMQ's JSON format) with the regexes compiled once.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use regex::{Regex, RegexBuilder};
use serde_json::Value;

use super::MessageKind;

/// The harmonization shipped with intelmq-rs (a verbatim copy of IntelMQ's `harmonization.conf`).
const BUILTIN_HARMONIZATION: &str = include_str!("../../../etc/harmonization.conf");

/// IntelMQ's `HARMONIZATION_KEY_FORMAT`: every key (and every `extra.*` sub-key) must match it.
const KEY_FORMAT: &str = r"^[a-z_][a-z_0-9]+(\.[a-z_0-9]+)*$";

fn key_format() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    // Invariant: the pattern is a constant that compiles.
    RE.get_or_init(|| Regex::new(KEY_FORMAT).expect("constant key format regex compiles"))
}

/// True when `key` matches IntelMQ's harmonization key format.
pub fn is_key_format(key: &str) -> bool {
    key_format().is_match(key)
}

/// Every harmonization type name IntelMQ knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TypeName {
    String,
    LowercaseString,
    UppercaseString,
    Base64,
    Boolean,
    Integer,
    ASN,
    Float,
    Accuracy,
    FQDN,
    IPAddress,
    IPNetwork,
    DateTime,
    ClassificationType,
    ClassificationTaxonomy,
    Registry,
    TLP,
    URL,
    JSON,
    JSONDict,
}

impl TypeName {
    /// All type names, in the order of the enum.
    pub const ALL: [TypeName; 20] = [
        TypeName::String,
        TypeName::LowercaseString,
        TypeName::UppercaseString,
        TypeName::Base64,
        TypeName::Boolean,
        TypeName::Integer,
        TypeName::ASN,
        TypeName::Float,
        TypeName::Accuracy,
        TypeName::FQDN,
        TypeName::IPAddress,
        TypeName::IPNetwork,
        TypeName::DateTime,
        TypeName::ClassificationType,
        TypeName::ClassificationTaxonomy,
        TypeName::Registry,
        TypeName::TLP,
        TypeName::URL,
        TypeName::JSON,
        TypeName::JSONDict,
    ];

    /// The name as written in harmonization.conf (IntelMQ's class name).
    pub fn as_str(self) -> &'static str {
        match self {
            TypeName::String => "String",
            TypeName::LowercaseString => "LowercaseString",
            TypeName::UppercaseString => "UppercaseString",
            TypeName::Base64 => "Base64",
            TypeName::Boolean => "Boolean",
            TypeName::Integer => "Integer",
            TypeName::ASN => "ASN",
            TypeName::Float => "Float",
            TypeName::Accuracy => "Accuracy",
            TypeName::FQDN => "FQDN",
            TypeName::IPAddress => "IPAddress",
            TypeName::IPNetwork => "IPNetwork",
            TypeName::DateTime => "DateTime",
            TypeName::ClassificationType => "ClassificationType",
            TypeName::ClassificationTaxonomy => "ClassificationTaxonomy",
            TypeName::Registry => "Registry",
            TypeName::TLP => "TLP",
            TypeName::URL => "URL",
            TypeName::JSON => "JSON",
            TypeName::JSONDict => "JSONDict",
        }
    }

    /// Parses a type name exactly as IntelMQ spells it.
    pub fn parse(name: &str) -> Option<TypeName> {
        TypeName::ALL.iter().copied().find(|t| t.as_str() == name)
    }

    /// IntelMQ's `<Type>.sanitize(value)`; `None` = the value cannot be repaired.
    pub fn sanitize(self, value: &Value) -> Option<Value> {
        super::types::sanitize(self, value)
    }

    /// IntelMQ's `<Type>.is_valid(value)` (without sanitizing).
    pub fn is_valid(self, value: &Value) -> bool {
        super::types::is_valid(self, value)
    }
}

impl fmt::Display for TypeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One field of the harmonization: its type and the optional `length`, `regex`, `iregex` constraints.
#[derive(Clone, Debug)]
pub struct FieldSpec {
    pub description: String,
    pub type_name: TypeName,
    /// Maximum `len(str(value))` in characters.
    pub length: Option<usize>,
    /// Must match somewhere in `str(value)` (`re.search`).
    pub regex: Option<Regex>,
    /// Like `regex`, case-insensitive.
    pub iregex: Option<Regex>,
}

/// Why a harmonization could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum HarmonizationError {
    /// The text is not JSON.
    #[error("harmonization is not valid json: {reason}")]
    Json { reason: String },
    /// The `event` or `report` section is missing or not an object.
    #[error("harmonization section `{section}` is missing or not a json object")]
    Section { section: String },
    /// A field entry is not an object, or its `type`/`length`/`description` is malformed.
    #[error("harmonization field `{section}.{field}` is malformed: {reason}")]
    Malformed { section: String, field: String, reason: String },
    /// The `type` names no harmonization type.
    #[error("harmonization field `{section}.{field}` has unknown type `{type_name}`")]
    UnknownType { section: String, field: String, type_name: String },
    /// The `regex` or `iregex` does not compile.
    #[error("harmonization field `{section}.{field}` has a bad {which}: {reason}")]
    BadRegex { section: String, field: String, which: &'static str, reason: String },
    /// The key does not match IntelMQ's key format `^[a-z_][a-z_0-9]+(\.[a-z_0-9]+)*$`.
    #[error("harmonization key `{section}.{field}` does not match the key format {KEY_FORMAT}")]
    BadKey { section: String, field: String },
    /// The file could not be read.
    #[error("cannot read harmonization file {}: {reason}", path.display())]
    Io { path: PathBuf, reason: String },
    /// The file was read but its content is wrong.
    #[error("harmonization file {}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: Box<HarmonizationError>,
    },
}

/// The fields of one message kind, in file order, with a name index.
#[derive(Clone, Debug, Default)]
struct Section {
    fields: Vec<(String, FieldSpec)>,
    index: rustc_hash::FxHashMap<String, usize>,
}

impl Section {
    fn get(&self, key: &str) -> Option<&FieldSpec> {
        self.index.get(key).map(|&i| &self.fields[i].1)
    }
}

/// A loaded harmonization: the `event` and `report` sections of harmonization.conf.
#[derive(Clone, Debug)]
pub struct Harmonization {
    event: Section,
    report: Section,
}

impl Harmonization {
    /// Parses harmonization.conf text: `{"event": {field: {description, type, length?, regex?,
    /// iregex?}}, "report": {...}}`. Other top-level sections are ignored.
    pub fn from_json(text: &str) -> Result<Harmonization, HarmonizationError> {
        let root: Value = serde_json::from_str(text).map_err(|e| HarmonizationError::Json { reason: e.to_string() })?;
        let event = parse_section(&root, "event")?;
        let report = parse_section(&root, "report")?;
        Ok(Harmonization { event, report })
    }

    /// Reads and parses a harmonization file; errors name the file.
    pub fn load(path: &Path) -> Result<Arc<Harmonization>, HarmonizationError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| HarmonizationError::Io { path: path.to_path_buf(), reason: e.to_string() })?;
        Harmonization::from_json(&text)
            .map(Arc::new)
            .map_err(|e| HarmonizationError::File { path: path.to_path_buf(), source: Box::new(e) })
    }

    /// The shipped harmonization (`etc/harmonization.conf`), parsed once.
    pub fn builtin() -> Arc<Harmonization> {
        static BUILTIN: OnceLock<Arc<Harmonization>> = OnceLock::new();
        BUILTIN
            .get_or_init(|| {
                // Invariant: the shipped file is a constant checked by the unit tests.
                Arc::new(Harmonization::from_json(BUILTIN_HARMONIZATION).expect("shipped harmonization.conf is valid"))
            })
            .clone()
    }

    fn section(&self, kind: MessageKind) -> &Section {
        match kind {
            MessageKind::Event => &self.event,
            MessageKind::Report => &self.report,
        }
    }

    /// The spec of a harmonization field (exact key; `extra.foo` gives `None`, see [`Self::resolve`]).
    pub fn field(&self, kind: MessageKind, key: &str) -> Option<&FieldSpec> {
        self.section(kind).get(key)
    }

    /// The spec that governs `key` and whether `key` is a sub-item of a JSONDict field
    /// (`extra.foo` → (`extra`'s spec, true)). `None` for an invalid key.
    ///
    /// IntelMQ lets any field's sub-keys past the key check but only JSONDict can store them;
    /// sub-keys of other types (e.g. `comment.x`) are treated as invalid keys here.
    pub fn resolve(&self, kind: MessageKind, key: &str) -> Option<(&FieldSpec, bool)> {
        let section = self.section(kind);
        if let Some(spec) = section.get(key) {
            return Some((spec, false));
        }
        let (first, _) = key.split_once('.')?;
        let spec = section.get(first)?;
        if spec.type_name == TypeName::JSONDict && is_key_format(key) {
            Some((spec, true))
        } else {
            None
        }
    }

    /// IntelMQ's key check: a harmonization field, or a well-formed sub-key of a JSONDict field.
    /// (`__type` is handled by the message itself.)
    pub fn is_valid_key(&self, kind: MessageKind, key: &str) -> bool {
        self.resolve(kind, key).is_some()
    }

    /// The fields of a kind, in file order.
    pub fn fields(&self, kind: MessageKind) -> impl Iterator<Item = (&str, &FieldSpec)> {
        self.section(kind).fields.iter().map(|(k, s)| (k.as_str(), s))
    }

    /// True when `key` is a JSONDict field name (such as `extra`) of `kind`.
    pub fn is_jsondict_field(&self, kind: MessageKind, key: &str) -> bool {
        self.field(kind, key).is_some_and(|s| s.type_name == TypeName::JSONDict)
    }
}

fn parse_section(root: &Value, section: &str) -> Result<Section, HarmonizationError> {
    let obj = root
        .get(section)
        .and_then(Value::as_object)
        .ok_or_else(|| HarmonizationError::Section { section: section.to_string() })?;
    let mut out = Section::default();
    for (key, entry) in obj {
        let malformed = |reason: &str| HarmonizationError::Malformed {
            section: section.to_string(),
            field: key.clone(),
            reason: reason.to_string(),
        };
        if !is_key_format(key) {
            return Err(HarmonizationError::BadKey { section: section.to_string(), field: key.clone() });
        }
        let entry = entry.as_object().ok_or_else(|| malformed("the entry is not a json object"))?;
        let type_str = entry
            .get("type")
            .ok_or_else(|| malformed("`type` is missing"))?
            .as_str()
            .ok_or_else(|| malformed("`type` is not a string"))?;
        let mut type_name = TypeName::parse(type_str).ok_or_else(|| HarmonizationError::UnknownType {
            section: section.to_string(),
            field: key.clone(),
            type_name: type_str.to_string(),
        })?;
        // IntelMQ silently upgrades an `extra` of type JSON to JSONDict.
        if key == "extra" && type_name == TypeName::JSON {
            type_name = TypeName::JSONDict;
        }
        let description = match entry.get("description") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(malformed("`description` is not a string")),
        };
        let length = match entry.get("length") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| malformed("`length` is not a non-negative integer"))?,
            ),
        };
        let regex = compile(entry.get("regex"), false, section, key, "regex")?;
        let iregex = compile(entry.get("iregex"), true, section, key, "iregex")?;
        out.index.insert(key.clone(), out.fields.len());
        out.fields.push((key.clone(), FieldSpec { description, type_name, length, regex, iregex }));
    }
    Ok(out)
}

fn compile(
    pattern: Option<&Value>,
    case_insensitive: bool,
    section: &str,
    field: &str,
    which: &'static str,
) -> Result<Option<Regex>, HarmonizationError> {
    let bad = |reason: String| HarmonizationError::BadRegex {
        section: section.to_string(),
        field: field.to_string(),
        which,
        reason,
    };
    match pattern {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(p)) => {
            RegexBuilder::new(p).case_insensitive(case_insensitive).build().map(Some).map_err(|e| bad(e.to_string()))
        }
        Some(_) => Err(bad("it is not a string".to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_has_82_event_and_10_report_fields() {
        let h = Harmonization::builtin();
        assert_eq!(h.fields(MessageKind::Event).count(), 82);
        assert_eq!(h.fields(MessageKind::Report).count(), 10);
        assert_eq!(h.field(MessageKind::Event, "source.ip").map(|s| s.type_name), Some(TypeName::IPAddress));
        assert_eq!(h.field(MessageKind::Report, "source.ip").map(|s| s.type_name), None);
        let port = h.field(MessageKind::Event, "source.port").map(|s| s.length);
        assert_eq!(port, Some(Some(5)));
    }

    #[test]
    fn builtin_compiles_regex_and_iregex() {
        let h = Harmonization::builtin();
        let transport = h.field(MessageKind::Event, "protocol.transport").and_then(|s| s.iregex.as_ref());
        assert!(transport.is_some_and(|r| r.is_match("TCP")));
        let cc = h.field(MessageKind::Event, "source.geolocation.cc").and_then(|s| s.regex.as_ref());
        assert!(cc.is_some_and(|r| r.is_match("AT") && !r.is_match("A")));
    }

    #[test]
    fn keys_are_fields_or_extra_subkeys() {
        let h = Harmonization::builtin();
        assert!(h.is_valid_key(MessageKind::Event, "source.ip"));
        assert!(h.is_valid_key(MessageKind::Event, "extra.foo"));
        assert!(h.is_valid_key(MessageKind::Event, "extra.foo.bar_1"));
        assert!(h.is_valid_key(MessageKind::Event, "extra.1x"));
        assert!(h.is_valid_key(MessageKind::Report, "extra.file_name"));
        assert!(h.is_valid_key(MessageKind::Event, "extra"));
        assert!(!h.is_valid_key(MessageKind::Event, "extra.Foo"));
        assert!(!h.is_valid_key(MessageKind::Event, "extra.foo-bar"));
        assert!(!h.is_valid_key(MessageKind::Event, "extra."));
        assert!(!h.is_valid_key(MessageKind::Event, "comment.x"));
        assert!(!h.is_valid_key(MessageKind::Event, "source.foo"));
        assert!(!h.is_valid_key(MessageKind::Report, "source.ip"));
        assert!(!h.is_valid_key(MessageKind::Event, "__type"));
    }

    #[test]
    fn resolve_marks_subitems() {
        let h = Harmonization::builtin();
        let (spec, sub) = h.resolve(MessageKind::Event, "extra.a").expect("extra.a resolves");
        assert_eq!(spec.type_name, TypeName::JSONDict);
        assert!(sub);
        let (_, sub) = h.resolve(MessageKind::Event, "extra").expect("extra resolves");
        assert!(!sub);
    }

    #[test]
    fn unknown_type_names_the_field() {
        let err = Harmonization::from_json(r#"{"event": {"foo": {"type": "Strange"}}, "report": {}}"#)
            .expect_err("unknown type");
        let text = err.to_string();
        assert!(text.contains("event.foo") && text.contains("Strange"), "{text}");
    }

    #[test]
    fn bad_regex_names_the_field() {
        let err = Harmonization::from_json(r#"{"event": {"foo": {"type": "String", "regex": "("}}, "report": {}}"#)
            .expect_err("bad regex");
        assert!(matches!(err, HarmonizationError::BadRegex { ref field, .. } if field == "foo"));
    }

    #[test]
    fn bad_key_format_is_rejected() {
        let err =
            Harmonization::from_json(r#"{"event": {"Foo": {"type": "String"}}, "report": {}}"#).expect_err("bad key");
        assert!(matches!(err, HarmonizationError::BadKey { ref field, .. } if field == "Foo"));
        let err =
            Harmonization::from_json(r#"{"event": {"a.b-c": {"type": "String"}}, "report": {}}"#).expect_err("bad key");
        assert!(matches!(err, HarmonizationError::BadKey { .. }));
    }

    #[test]
    fn missing_section_and_bad_json_are_errors() {
        assert!(matches!(
            Harmonization::from_json(r#"{"event": {}}"#),
            Err(HarmonizationError::Section { ref section }) if section == "report"
        ));
        assert!(matches!(Harmonization::from_json("{"), Err(HarmonizationError::Json { .. })));
        assert!(matches!(
            Harmonization::from_json(r#"{"event": {"foo": {"type": "String", "length": "x"}}, "report": {}}"#),
            Err(HarmonizationError::Malformed { .. })
        ));
    }

    #[test]
    fn extra_of_type_json_becomes_jsondict() {
        let h = Harmonization::from_json(r#"{"event": {"extra": {"type": "JSON"}}, "report": {}}"#).expect("valid");
        assert_eq!(h.field(MessageKind::Event, "extra").map(|s| s.type_name), Some(TypeName::JSONDict));
    }

    #[test]
    fn load_names_the_file() {
        let err = Harmonization::load(Path::new("/nonexistent/harmonization.conf")).expect_err("missing file");
        assert!(err.to_string().contains("/nonexistent/harmonization.conf"));
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("harmonization.conf");
        std::fs::write(&path, "[]").expect("write");
        let err = Harmonization::load(&path).expect_err("bad content");
        assert!(err.to_string().contains("harmonization.conf"), "{err}");
        std::fs::write(&path, BUILTIN_HARMONIZATION).expect("write");
        assert!(Harmonization::load(&path).is_ok());
    }

    #[test]
    fn type_names_round_trip() {
        for t in TypeName::ALL {
            assert_eq!(TypeName::parse(t.as_str()), Some(t));
        }
        assert_eq!(TypeName::parse("string"), None);
    }
}
