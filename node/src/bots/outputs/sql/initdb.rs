//! The EventDB schema generator (IntelMQ's `intelmq_psql_initdb`, exposed as `intelmq-node
//! initdb`): PostgreSQL DDL for an `events` table with `"id" BIGSERIAL` and one column per event
//! field of the harmonization, typed by its harmonization type, the btree indices IntelMQ creates,
//! and optionally (`--separate-raws`) a `raws` table, a `v_events` view joining both and an
//! `INSTEAD OF INSERT` trigger that splits rows inserted into the view. A pure function of the
//! harmonization and the options; the text is line for line what IntelMQ writes (plus `--jsonb`,
//! which types JSON fields as `jsonb`).

use crate::message::{Harmonization, MessageKind, TypeName};

/// The columns IntelMQ indexes.
pub const INDICES: &[&str] = &[
    "classification.identifier",
    "classification.taxonomy",
    "classification.type",
    "feed.code",
    "feed.name",
    "source.abuse_contact",
    "source.asn",
    "source.ip",
    "source.fqdn",
    "time.observation",
    "time.source",
];

/// What to generate (IntelMQ's command-line flags).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InitdbOptions {
    /// `--no-events`: leave out the events table and its indices.
    pub no_events: bool,
    /// `--separate-raws`: the `raws` table, the `v_events` view and its insert trigger.
    pub separate_raws: bool,
    /// `--partition-key`: add this field to the primary key (TimescaleDB partitioning); the raws
    /// table then has no foreign key.
    pub partition_key: Option<String>,
    /// `--skip-or-replace`: `IF NOT EXISTS` on tables and indices, `OR REPLACE` on the view,
    /// function and trigger.
    pub skip_or_replace: bool,
    /// `--jsonb`: JSON and JSONDict fields as `jsonb` instead of `json`.
    pub jsonb: bool,
}

/// Why no DDL could be generated.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InitdbError {
    #[error("partition key `{0}` is not an event field of the harmonization")]
    UnknownPartitionKey(String),
    #[error("the harmonization has no event field `raw`, which --separate-raws moves to its own table")]
    NoRawField,
}

/// The PostgreSQL column type of a harmonization type (IntelMQ's mapping); `length` gives
/// `varchar(length)` to the string-like types.
pub fn column_type(type_name: TypeName, length: Option<usize>, jsonb: bool) -> String {
    match type_name {
        TypeName::String
        | TypeName::Base64
        | TypeName::URL
        | TypeName::FQDN
        | TypeName::ClassificationType
        | TypeName::LowercaseString
        | TypeName::UppercaseString
        | TypeName::Registry
        | TypeName::TLP
        | TypeName::ClassificationTaxonomy => match length {
            Some(n) => format!("varchar({n})"),
            None => "text".to_string(),
        },
        TypeName::IPAddress | TypeName::IPNetwork => "inet".to_string(),
        TypeName::DateTime => "timestamp with time zone".to_string(),
        TypeName::Boolean => "boolean".to_string(),
        TypeName::Integer | TypeName::ASN => "integer".to_string(),
        TypeName::Float | TypeName::Accuracy => "real".to_string(),
        TypeName::JSON | TypeName::JSONDict => if jsonb { "jsonb" } else { "json" }.to_string(),
    }
}

/// The event fields and their column types, sorted by name.
pub fn columns(harmonization: &Harmonization, jsonb: bool) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = harmonization
        .fields(MessageKind::Event)
        .map(|(name, spec)| (name.to_string(), column_type(spec.type_name, spec.length, jsonb)))
        .collect();
    fields.sort();
    fields
}

fn events_schema(fields: &[(String, String)], partition_key: Option<&str>, lines: &mut Vec<String>) {
    lines.push("CREATE TABLE{if_not_exist} events (".to_string());
    let id_key = if partition_key.is_none() { " UNIQUE PRIMARY KEY" } else { "" };
    lines.push(format!("    \"id\" BIGSERIAL{id_key},"));
    for (field, ty) in fields {
        lines.push(format!("    \"{field}\" {ty},"));
    }
    match partition_key {
        None => {
            if let Some(last) = lines.last_mut() {
                last.pop();
            }
        }
        Some(key) => lines.push(format!("    PRIMARY KEY (\"id\", \"{key}\")")),
    }
    lines.push(");".to_string());
    for index in INDICES {
        lines.push(format!("CREATE INDEX{{if_not_exist}} \"idx_events_{index}\" ON events USING btree (\"{index}\");"));
    }
}

fn separated_raws_schema(fields: &[(String, String)], partition_key: Option<&str>, lines: &mut Vec<String>) {
    let sorted: Vec<&str> = fields.iter().map(|(f, _)| f.as_str()).filter(|f| *f != "raw").collect();
    lines.push(String::new());
    lines.push("-- Create the table holding only the \"raw\" values".to_string());
    lines.push(
        "\nCREATE TABLE{if_not_exist} public.raws (\n    event_id bigint,\n    raw text,\n    PRIMARY KEY(event_id)"
            .to_string(),
    );
    if partition_key.is_none() {
        if let Some(last) = lines.last_mut() {
            last.push(',');
        }
        lines.push(
            "    CONSTRAINT raws_event_id_fkey FOREIGN KEY (event_id) REFERENCES public.events(id) ON DELETE CASCADE"
                .to_string(),
        );
    }
    lines.push(");".to_string());
    lines.push(String::new());
    lines.push("-- Create the v_events view which joins the tables \"events\" and \"raws\"\n".to_string());
    lines.push("CREATE{or_replace} VIEW public.v_events AS".to_string());
    lines.push("    SELECT".to_string());
    lines.push("        events.id,".to_string());
    for field in &sorted {
        lines.push(format!("        events.\"{field}\","));
    }
    for line in [
        "        raws.\"event_id\",",
        "        raws.\"raw\"",
        "    FROM (",
        "        public.events",
        "        JOIN public.raws ON ((events.id = raws.event_id)));",
        "",
        "-- Establish the INSERT trigger for the events table, splitting the data into events and raws",
        "",
        "CREATE{or_replace} FUNCTION public.process_v_events_insert()",
        "    RETURNS trigger",
        "    LANGUAGE plpgsql",
        "    AS $$",
        "    DECLARE event_id integer;",
        "",
        "    BEGIN",
        "        INSERT INTO",
        "            events (",
    ] {
        lines.push(line.to_string());
    }
    let last = sorted.len().saturating_sub(1);
    for (i, field) in sorted.iter().enumerate() {
        lines.push(format!("                \"{field}\"{}", if i == last { "" } else { "," }));
    }
    lines.push("            )".to_string());
    lines.push("        VALUES".to_string());
    lines.push("            (".to_string());
    for (i, field) in sorted.iter().enumerate() {
        lines.push(format!("                NEW.\"{field}\"{}", if i == last { "" } else { "," }));
    }
    for line in [
        "            )",
        "            RETURNING id INTO event_id;",
        "        INSERT INTO",
        "            raws (\"event_id\", \"raw\")",
        "        VALUES",
        "            (event_id, NEW.raw);",
        "        RETURN NEW;",
        "    END;",
        "$$;",
        "\nCREATE{or_replace} TRIGGER tr_events\n    INSTEAD OF INSERT\n    ON public.v_events\n    FOR EACH ROW\n    EXECUTE FUNCTION public.process_v_events_insert();\n",
    ] {
        lines.push(line.to_string());
    }
}

/// The DDL for `harmonization` (IntelMQ `intelmq_psql_initdb.generate`).
pub fn generate(harmonization: &Harmonization, opts: &InitdbOptions) -> Result<String, InitdbError> {
    let fields = columns(harmonization, opts.jsonb);
    let partition_key = opts.partition_key.as_deref().filter(|k| !k.is_empty());
    if let Some(key) = partition_key {
        if !fields.iter().any(|(f, _)| f == key) {
            return Err(InitdbError::UnknownPartitionKey(key.to_string()));
        }
    }
    if opts.separate_raws && !fields.iter().any(|(f, _)| f == "raw") {
        return Err(InitdbError::NoRawField);
    }
    let mut lines = Vec::new();
    if !opts.no_events {
        events_schema(&fields, partition_key, &mut lines);
    }
    if opts.separate_raws {
        separated_raws_schema(&fields, partition_key, &mut lines);
    }
    let (if_not_exist, or_replace) = if opts.skip_or_replace { (" IF NOT EXISTS", " OR REPLACE") } else { ("", "") };
    Ok(lines
        .iter()
        .map(|l| l.replace("{if_not_exist}", if_not_exist).replace("{or_replace}", or_replace))
        .collect::<Vec<_>>()
        .join("\n"))
}

/// `intelmq-node initdb`: generates the DDL from `harmonization_file` (default: the shipped
/// harmonization) and writes it to `output`, or to stdout without one. Unlike IntelMQ, an existing
/// output file is replaced (IntelMQ then writes a temporary file instead).
pub fn run(
    opts: &InitdbOptions,
    harmonization_file: Option<&std::path::Path>,
    output: Option<&std::path::Path>,
) -> Result<(), String> {
    let harmonization = match harmonization_file {
        Some(path) => Harmonization::load(path).map_err(|e| e.to_string())?,
        None => Harmonization::builtin(),
    };
    let mut sql = generate(&harmonization, opts).map_err(|e| e.to_string())?;
    if !sql.ends_with('\n') {
        sql.push('\n');
    }
    match output {
        Some(path) => std::fs::write(path, sql).map_err(|e| format!("cannot write {}: {e}", path.display())),
        None => {
            use std::io::Write as _;
            std::io::stdout().write_all(sql.as_bytes()).map_err(|e| format!("cannot write to stdout: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> std::sync::Arc<Harmonization> {
        Harmonization::builtin()
    }

    #[test]
    fn events_table_has_a_typed_column_per_field_sorted() {
        let sql = generate(&shipped(), &InitdbOptions::default()).unwrap_or_default();
        let lines: Vec<&str> = sql.lines().collect();
        assert_eq!(lines[0], "CREATE TABLE events (");
        assert_eq!(lines[1], "    \"id\" BIGSERIAL UNIQUE PRIMARY KEY,");
        assert!(lines.contains(&"    \"source.ip\" inet,"), "{sql}");
        assert!(lines.contains(&"    \"time.source\" timestamp with time zone,"));
        assert!(lines.contains(&"    \"source.asn\" integer,"));
        assert!(lines.contains(&"    \"feed.accuracy\" real,"));
        assert!(lines.contains(&"    \"extra\" json,"));
        assert!(lines.contains(&"    \"raw\" text,"));
        assert!(lines.contains(&"    \"classification.taxonomy\" varchar(100),"));
        let columns: Vec<&str> = lines[2..].iter().take_while(|l| l.starts_with("    \"")).copied().collect();
        let mut sorted = columns.clone();
        sorted.sort();
        assert_eq!(columns, sorted);
        assert_eq!(columns.len(), shipped().fields(MessageKind::Event).count());
        assert!(!columns.last().unwrap_or(&"").ends_with(','), "last column has no comma");
        assert_eq!(lines[2 + columns.len()], ");");
        assert_eq!(
            lines[3 + columns.len()],
            "CREATE INDEX \"idx_events_classification.identifier\" ON events USING btree (\"classification.identifier\");"
        );
        assert_eq!(lines.len(), 3 + columns.len() + INDICES.len());
    }

    #[test]
    fn jsonb_and_skip_or_replace_change_types_and_clauses() {
        let opts = InitdbOptions { jsonb: true, skip_or_replace: true, separate_raws: true, ..Default::default() };
        let sql = generate(&shipped(), &opts).unwrap_or_default();
        assert!(sql.starts_with("CREATE TABLE IF NOT EXISTS events ("));
        assert!(sql.contains("    \"extra\" jsonb,"));
        assert!(sql.contains("CREATE INDEX IF NOT EXISTS \"idx_events_time.source\""));
        assert!(sql.contains("CREATE OR REPLACE VIEW public.v_events AS"));
        assert!(sql.contains("CREATE OR REPLACE TRIGGER tr_events"));
        assert!(!sql.contains('{'), "no placeholders left");
    }

    #[test]
    fn separate_raws_builds_table_view_function_and_trigger() {
        let opts = InitdbOptions { separate_raws: true, no_events: true, ..Default::default() };
        let sql = generate(&shipped(), &opts).unwrap_or_default();
        assert!(!sql.contains("CREATE TABLE events"));
        assert!(sql.starts_with("\n-- Create the table holding only the \"raw\" values\n\nCREATE TABLE public.raws ("));
        assert!(sql.contains("    PRIMARY KEY(event_id),\n    CONSTRAINT raws_event_id_fkey FOREIGN KEY"));
        assert!(!sql.contains("events.\"raw\""), "raw is not a column of the events part of the view");
        assert!(sql.contains("        raws.\"raw\"\n    FROM (\n"));
        assert!(sql.contains("            (event_id, NEW.raw);"));
        assert!(sql.contains("                NEW.\"tlp\"\n            )\n            RETURNING id INTO event_id;"));
        assert!(sql.ends_with("EXECUTE FUNCTION public.process_v_events_insert();\n"));
    }

    #[test]
    fn partition_key_joins_the_primary_key_and_drops_the_foreign_key() {
        let opts =
            InitdbOptions { partition_key: Some("time.source".into()), separate_raws: true, ..Default::default() };
        let sql = generate(&shipped(), &opts).unwrap_or_default();
        assert!(sql.contains("    \"id\" BIGSERIAL,\n"));
        assert!(sql.contains("    \"tlp\" text,\n    PRIMARY KEY (\"id\", \"time.source\")\n);"));
        assert!(!sql.contains("FOREIGN KEY"));
        assert!(sql.contains("    PRIMARY KEY(event_id)\n);"));
        let bad = InitdbOptions { partition_key: Some("no.such".into()), ..Default::default() };
        assert_eq!(generate(&shipped(), &bad), Err(InitdbError::UnknownPartitionKey("no.such".into())));
    }

    #[test]
    fn every_harmonization_type_has_a_column_type() {
        for t in TypeName::ALL {
            assert!(!column_type(t, None, false).is_empty());
        }
        assert_eq!(column_type(TypeName::URL, Some(2000), false), "varchar(2000)");
        assert_eq!(column_type(TypeName::JSONDict, None, true), "jsonb");
    }
}
