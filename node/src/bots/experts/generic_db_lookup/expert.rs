//! `intelmq.bots.experts.generic_db_lookup.expert`: `SELECT "<replace columns>" FROM "<table>"
//! WHERE "<match column>" = <event value> AND ...` on PostgreSQL. Exactly one row: each
//! `replace_fields` column is written to its event field (replacing, a NULL removes it); no row:
//! the event passes unchanged; more than one row: the message fails. Events missing a
//! `match_fields` key pass unchanged, and so do events that already have every `replace_fields`
//! field unless `overwrite`.
//!
//! The connection is opened on the first event and re-opened after a connection error (the message
//! is retried). Parameter and result types follow the table: the event value is converted to the
//! column's type (bool, integers, floats, text); for a column of another type (inet, date, ...)
//! the value is sent as text and cast by the server, and results are read in their text form.
//! Only the `postgresql` engine is available (IntelMQ also knows `sqlite` and `mssql`), and only
//! without TLS: `sslmode` must be `disable`, `allow` or `prefer` (this build has no TLS connector
//! for PostgreSQL). A wrong table or column stops the bot; more than one matching row fails the
//! message (IntelMQ raises a `ValueError`).

use std::time::Duration;

use postgres::types::{ToSql, Type};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bots::experts::asn_lookup::lenient;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ExpertBot, Level, Outbox, ParamError};
use crate::message::{AddOptions, Message};

/// Parameters of the generic DB lookup expert (IntelMQ's names and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GenericDbLookupExpertParams {
    /// `postgresql` (IntelMQ also: `sqlite`, `mssql`); default "<postgresql OR sqlite>" (must be set).
    pub engine: String,
    /// The database name; default "intelmq".
    pub database: String,
    /// The server; default "localhost".
    pub host: String,
    /// The server port; default 5432.
    #[serde(deserialize_with = "lenient::u16")]
    pub port: u16,
    /// The user; default "intelmq".
    pub user: String,
    /// The password; default "<password>".
    pub password: Option<String>,
    /// TLS mode (`disable`, `allow`, `prefer`; the TLS-only modes are refused); default "require".
    pub sslmode: String,
    /// The table; default "contacts".
    pub table: String,
    /// Event field -> column compared with `=`; default {"source.asn": "asn"}.
    pub match_fields: Value,
    /// Column -> event field written from the row; default {"contact": "source.abuse_contact", "note": "comment"}.
    pub replace_fields: Value,
    /// Replace fields the event already has; default false.
    #[serde(deserialize_with = "lenient::bool")]
    pub overwrite: bool,
    /// Seconds to wait for the connection; default 5.
    #[serde(deserialize_with = "lenient::seconds")]
    pub connect_timeout: f64,
    /// Seconds to wait before reconnecting after a connection error; default 0.
    #[serde(deserialize_with = "lenient::seconds")]
    pub reconnect_delay: f64,
}

impl Default for GenericDbLookupExpertParams {
    fn default() -> Self {
        GenericDbLookupExpertParams {
            engine: "<postgresql OR sqlite>".to_string(),
            database: "intelmq".to_string(),
            host: "localhost".to_string(),
            port: 5432,
            user: "intelmq".to_string(),
            password: Some("<password>".to_string()),
            sslmode: "require".to_string(),
            table: "contacts".to_string(),
            match_fields: serde_json::json!({"source.asn": "asn"}),
            replace_fields: serde_json::json!({"contact": "source.abuse_contact", "note": "comment"}),
            overwrite: false,
            connect_timeout: 5.0,
            reconnect_delay: 0.0,
        }
    }
}

/// A mapping parameter as ordered pairs; an object or its JSON text.
fn pairs(key: &str, value: &Value) -> Result<Vec<(String, String)>, ParamError> {
    let parsed;
    let value = match value {
        Value::String(text) => {
            parsed = serde_json::from_str::<Value>(text)
                .map_err(|e| ParamError::new(key, format!("`{text}` is not a JSON object: {e}")))?;
            &parsed
        }
        other => other,
    };
    let Value::Object(map) = value else {
        return Err(ParamError::new(key, format!("{value} is not an object")));
    };
    if map.is_empty() {
        return Err(ParamError::new(key, "must name at least one field"));
    }
    map.iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            other => Err(ParamError::new(key, format!("value {other} of `{k}` is not a string"))),
        })
        .collect()
}

/// A double-quoted SQL identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Types converted natively; other columns go through their text form.
fn is_native(ty: &Type) -> bool {
    [Type::BOOL, Type::INT2, Type::INT4, Type::INT8, Type::FLOAT4, Type::FLOAT8].contains(ty) || is_text(ty)
}

fn is_text(ty: &Type) -> bool {
    [Type::TEXT, Type::VARCHAR, Type::BPCHAR, Type::NAME, Type::UNKNOWN].contains(ty)
}

/// The text form of an event value (Python's `str` for the common cases).
fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "true".to_string(),
        Value::Bool(false) => "false".to_string(),
        other => other.to_string(),
    }
}

/// An event value as a parameter of type `ty`.
fn to_param(value: &Value, ty: &Type) -> Result<Box<dyn ToSql + Sync>, String> {
    let text = value_text(value);
    let int = || -> Result<i64, String> {
        match value {
            Value::Number(n) => n.as_i64().ok_or_else(|| format!("{n} is not an integer")),
            Value::Bool(b) => Ok(i64::from(*b)),
            _ => text.trim().parse().map_err(|_| format!("`{text}` is not an integer")),
        }
    };
    let float = || -> Result<f64, String> {
        match value {
            Value::Number(n) => n.as_f64().ok_or_else(|| format!("{n} is not a number")),
            _ => text.trim().parse().map_err(|_| format!("`{text}` is not a number")),
        }
    };
    let out_of_range = |n: i64| format!("{n} is out of range for {ty}");
    Ok(match *ty {
        Type::BOOL => Box::new(match value {
            Value::Bool(b) => *b,
            _ => match text.to_ascii_lowercase().as_str() {
                "true" | "t" | "1" => true,
                "false" | "f" | "0" => false,
                _ => return Err(format!("`{text}` is not a boolean")),
            },
        }),
        Type::INT2 => {
            let n = int()?;
            Box::new(i16::try_from(n).map_err(|_| out_of_range(n))?)
        }
        Type::INT4 => {
            let n = int()?;
            Box::new(i32::try_from(n).map_err(|_| out_of_range(n))?)
        }
        Type::INT8 => Box::new(int()?),
        Type::FLOAT4 => Box::new(float()? as f32),
        Type::FLOAT8 => Box::new(float()?),
        _ => Box::new(text),
    })
}

/// Column `i` of a row as JSON (NULL -> null).
fn column_value(row: &postgres::Row, i: usize) -> Result<Value, postgres::Error> {
    let ty = row.columns()[i].type_().clone();
    Ok(match ty {
        Type::BOOL => row.try_get::<_, Option<bool>>(i)?.map_or(Value::Null, Value::Bool),
        Type::INT2 => row.try_get::<_, Option<i16>>(i)?.map_or(Value::Null, Value::from),
        Type::INT4 => row.try_get::<_, Option<i32>>(i)?.map_or(Value::Null, Value::from),
        Type::INT8 => row.try_get::<_, Option<i64>>(i)?.map_or(Value::Null, Value::from),
        Type::FLOAT4 => row.try_get::<_, Option<f32>>(i)?.map_or(Value::Null, |f| Value::from(f64::from(f))),
        Type::FLOAT8 => row.try_get::<_, Option<f64>>(i)?.map_or(Value::Null, Value::from),
        _ => row.try_get::<_, Option<String>>(i)?.map_or(Value::Null, Value::String),
    })
}

/// Runs a call of the synchronous postgres client on a short-lived thread. The client drives its
/// own tokio runtime, which must not be started, blocked on or dropped on a bot's thread (that
/// thread already runs inside the node's runtime).
fn off_runtime<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(r) => r,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// Drops a client (and its runtime) off the bot's thread.
fn drop_client(client: Option<postgres::Client>) {
    if let Some(c) = client {
        off_runtime(move || drop(c));
    }
}

/// The prepared lookup (its parameter types say how to convert the event values).
struct Prepared {
    statement: postgres::Statement,
}

/// Looks fields up in a PostgreSQL table.
pub struct GenericDbLookupExpertBot {
    config: postgres::Config,
    target: String,
    table: String,
    match_fields: Vec<(String, String)>,
    replace_fields: Vec<(String, String)>,
    overwrite: bool,
    reconnect_delay: Duration,
    client: Option<postgres::Client>,
    prepared: Option<Prepared>,
}

impl BuildBot for GenericDbLookupExpertBot {
    type Params = GenericDbLookupExpertParams;

    fn build(params: GenericDbLookupExpertParams) -> Result<Self, ParamError> {
        match params.engine.to_lowercase().as_str() {
            "postgresql" => {}
            "sqlite" | "mssql" => {
                return Err(ParamError::new(
                    "engine",
                    format!("engine `{}` is not available in this build; use `postgresql`", params.engine),
                ))
            }
            other => {
                return Err(ParamError::new("engine", format!("`{other}` is not one of postgresql, sqlite, mssql")))
            }
        }
        let ssl_mode = match params.sslmode.as_str() {
            "disable" => postgres::config::SslMode::Disable,
            "allow" | "prefer" => postgres::config::SslMode::Prefer,
            "require" | "verify-ca" | "verify-full" => {
                return Err(ParamError::new(
                    "sslmode",
                    format!(
                        "`{}` needs TLS, which this build has no connector for; use `disable` or `prefer`",
                        params.sslmode
                    ),
                ))
            }
            other => return Err(ParamError::new("sslmode", format!("`{other}` is not a libpq sslmode"))),
        };
        let mut config = postgres::Config::new();
        config
            .host(&params.host)
            .port(params.port)
            .user(&params.user)
            .dbname(&params.database)
            .ssl_mode(ssl_mode)
            .application_name("intelmq-generic-db-lookup");
        if let Some(password) = &params.password {
            config.password(password);
        }
        if params.connect_timeout > 0.0 {
            config.connect_timeout(Duration::from_secs_f64(params.connect_timeout));
        }
        Ok(GenericDbLookupExpertBot {
            config,
            target: format!("{}@{}:{}/{}", params.user, params.host, params.port, params.database),
            table: params.table,
            match_fields: pairs("match_fields", &params.match_fields)?,
            replace_fields: pairs("replace_fields", &params.replace_fields)?,
            overwrite: params.overwrite,
            reconnect_delay: Duration::from_secs_f64(params.reconnect_delay),
            client: None,
            prepared: None,
        })
    }
}

impl GenericDbLookupExpertBot {
    /// The query. A match column named in `match_casts` takes its parameter as text cast to that
    /// type; a select column flagged in `select_as_text` is read in its text output form.
    fn query(&self, match_casts: &[Option<String>], select_as_text: &[bool]) -> String {
        let select: Vec<String> = self
            .replace_fields
            .iter()
            .zip(select_as_text)
            .map(|((column, _), text)| if *text { format!("format('%s', {})", ident(column)) } else { ident(column) })
            .collect();
        let conditions: Vec<String> = self
            .match_fields
            .iter()
            .zip(match_casts)
            .enumerate()
            .map(|(i, ((_, column), cast))| match cast {
                Some(ty) => format!("{} = ${}::text::{}", ident(column), i + 1, ident(ty)),
                None => format!("{} = ${}", ident(column), i + 1),
            })
            .collect();
        format!("SELECT {} FROM {} WHERE {}", select.join(", "), ident(&self.table), conditions.join(" AND "))
    }

    /// A connection error: drop the connection so the next try reconnects.
    fn connection_lost(&mut self, what: &str, e: &postgres::Error, ctx: &mut Context<'_>) -> BotError {
        ctx.log.log(Level::Error, &format!("Database connection problem, connecting again: {e}."));
        drop_client(self.client.take());
        self.prepared = None;
        if !self.reconnect_delay.is_zero() {
            std::thread::sleep(self.reconnect_delay);
        }
        BotError::Transient(format!("database {}: {what}: {e}", self.target))
    }

    /// A SQL error of the server (a missing table or column): the configuration is wrong.
    fn is_sql_error(e: &postgres::Error) -> bool {
        e.as_db_error().is_some()
    }

    fn prepare(&mut self, ctx: &mut Context<'_>) -> Result<(), BotError> {
        if self.client.as_ref().is_some_and(postgres::Client::is_closed) {
            drop_client(self.client.take());
            self.prepared = None;
        }
        if self.client.is_none() {
            let config = &self.config;
            match off_runtime(|| config.connect(postgres::NoTls)) {
                Ok(client) => {
                    ctx.log.log(Level::Info, "Connected to database.");
                    self.client = Some(client);
                }
                Err(e) => return Err(self.connection_lost("cannot connect", &e, ctx)),
            }
        }
        if self.prepared.is_some() {
            return Ok(());
        }
        let mut match_casts: Vec<Option<String>> = vec![None; self.match_fields.len()];
        let mut select_text = vec![false; self.replace_fields.len()];
        for _ in 0..2 {
            let query = self.query(&match_casts, &select_text);
            let Some(client) = self.client.as_mut() else {
                return Err(BotError::Transient(format!("database {}: not connected", self.target)));
            };
            let statement = match off_runtime(|| client.prepare(&query)) {
                Ok(s) => s,
                Err(e) if Self::is_sql_error(&e) => {
                    return Err(BotError::Fatal(format!("database {}: query `{query}` is refused: {e}", self.target)))
                }
                Err(e) => return Err(self.connection_lost("cannot prepare the lookup", &e, ctx)),
            };
            let columns_native: Vec<bool> = statement.columns().iter().map(|c| is_native(c.type_())).collect();
            if statement.params().iter().all(is_native) && columns_native.iter().all(|n| *n) {
                self.prepared = Some(Prepared { statement });
                return Ok(());
            }
            for (i, ty) in statement.params().iter().enumerate() {
                if !is_native(ty) {
                    match_casts[i] = Some(ty.name().to_string());
                }
            }
            for (i, native) in columns_native.iter().enumerate() {
                select_text[i] |= !native;
            }
        }
        Err(BotError::Fatal(format!("database {}: cannot map the column types of table {}", self.target, self.table)))
    }
}

impl Drop for GenericDbLookupExpertBot {
    fn drop(&mut self) {
        self.prepared = None;
        drop_client(self.client.take());
    }
}

impl ExpertBot for GenericDbLookupExpertBot {
    fn process(&mut self, mut event: Message, ctx: &mut Context<'_>, out: &mut Outbox) -> Result<(), BotError> {
        let mut values = Vec::with_capacity(self.match_fields.len());
        for (field, _) in &self.match_fields {
            match event.get(field) {
                Some(value) => values.push(value.clone()),
                None => {
                    ctx.log.log(Level::Debug, &format!("{field} not present in event. Skipping event."));
                    out.send(event);
                    return Ok(());
                }
            }
        }
        if !self.overwrite && self.replace_fields.iter().all(|(_, field)| event.contains(field)) {
            out.send(event);
            return Ok(());
        }
        self.prepare(ctx)?;
        let Some(prepared) = &self.prepared else {
            return Err(BotError::Transient(format!("database {}: lookup not prepared", self.target)));
        };
        let mut params: Vec<Box<dyn ToSql + Sync>> = Vec::with_capacity(values.len());
        for ((value, ty), (field, column)) in values.iter().zip(prepared.statement.params()).zip(&self.match_fields) {
            let param = to_param(value, ty).map_err(|e| {
                BotError::Invalid(format!("{field} cannot be compared with column {column} ({ty}): {e}"))
            })?;
            params.push(param);
        }
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref()).collect();
        let statement = prepared.statement.clone();
        let Some(client) = self.client.as_mut() else {
            return Err(BotError::Transient(format!("database {}: not connected", self.target)));
        };
        let rows = match off_runtime(|| client.query(&statement, &refs)) {
            Ok(rows) => rows,
            Err(e) if Self::is_sql_error(&e) => {
                return Err(BotError::Transient(format!("database {}: lookup failed: {e}", self.target)))
            }
            Err(e) => return Err(self.connection_lost("lookup failed", &e, ctx)),
        };
        match rows.len() {
            0 => ctx.log.log(Level::Debug, "No row found."),
            1 => {
                let overwrite = AddOptions { overwrite: Some(true), ..AddOptions::default() };
                for (i, (column, field)) in self.replace_fields.iter().enumerate() {
                    let value = column_value(&rows[0], i)
                        .map_err(|e| BotError::Transient(format!("database {}: column {column}: {e}", self.target)))?;
                    event.add_with(field, value, overwrite)?;
                }
                ctx.log.log(Level::Debug, "Applied.");
            }
            n => {
                return Err(BotError::Transient(format!(
                    "lookup in table {} returned {n} rows, expected at most one; please inspect the database",
                    self.table
                )))
            }
        }
        out.send(event);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::net::{SocketAddr, TcpStream};

    use serde_json::json;

    use super::*;
    use crate::bots::experts::test_support::{event, harmonization};
    use crate::bots::{MemoryLog, MemoryState};

    const SERVER: &str = "127.0.0.1:5432";

    /// True when the local PostgreSQL answers; otherwise the test skips, or fails with
    /// INTELMQ_REQUIRE_SERVICES=1.
    fn server_available() -> bool {
        let addr: SocketAddr = SERVER.parse().unwrap();
        if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
            return true;
        }
        assert!(
            std::env::var("INTELMQ_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "PostgreSQL at {SERVER} is not reachable and INTELMQ_REQUIRE_SERVICES=1"
        );
        eprintln!("generic_db_lookup: skipped, no PostgreSQL at {SERVER}");
        false
    }

    fn admin() -> postgres::Client {
        postgres::Config::new()
            .host("127.0.0.1")
            .port(5432)
            .user("postgres")
            .dbname("test")
            .connect(postgres::NoTls)
            .unwrap()
    }

    /// A table of its own, dropped at the end.
    struct Table {
        name: String,
    }

    impl Table {
        fn create(columns: &str, rows: &str) -> Table {
            static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
            let name = format!("intelmq_rs_gdl_{}_{n}_{nanos}", std::process::id());
            let mut c = admin();
            c.batch_execute(&format!("CREATE TABLE \"{name}\" ({columns}); INSERT INTO \"{name}\" VALUES {rows};"))
                .unwrap();
            Table { name }
        }
    }

    impl Drop for Table {
        fn drop(&mut self) {
            let _ = admin().batch_execute(&format!("DROP TABLE IF EXISTS \"{}\"", self.name));
        }
    }

    fn bot(table: &Table, extra: Value) -> GenericDbLookupExpertBot {
        let mut params = json!({
            "engine": "postgresql", "host": "127.0.0.1", "port": "5432", "user": "postgres", "password": null,
            "database": "test", "sslmode": "disable", "table": table.name,
        });
        for (k, v) in extra.as_object().unwrap() {
            params[k] = v.clone();
        }
        GenericDbLookupExpertBot::build(serde_json::from_value(params).unwrap()).unwrap()
    }

    fn run(bot: &mut GenericDbLookupExpertBot, fields: Value) -> Result<Message, BotError> {
        let h = harmonization();
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let root = std::path::Path::new("/");
        let mut ctx = Context {
            bot_id: "db-lookup",
            harmonization: &h,
            root,
            state: &mut state,
            log: &mut log,
            clock: &crate::bots::SystemClock,
        };
        let mut out = Outbox::default();
        bot.process(event(&h, fields), &mut ctx, &mut out)?;
        Ok(out.sent.pop().unwrap().1)
    }

    #[test]
    fn one_row_replaces_the_fields_and_none_passes_unchanged() {
        if !server_available() {
            return;
        }
        let table = Table::create(
            "asn integer, contact text, note text",
            "(64496, 'abuse@example.com', 'Hello'), (64497, 'x@example.net', NULL)",
        );
        let mut bot = bot(&table, json!({}));
        let msg = run(&mut bot, json!({"source.asn": 64496})).unwrap();
        assert_eq!(msg.get_str("source.abuse_contact"), Some("abuse@example.com"));
        assert_eq!(msg.get_str("comment"), Some("Hello"));
        let none = run(&mut bot, json!({"source.asn": 1})).unwrap();
        assert!(!none.contains("source.abuse_contact"));
        let no_asn = run(&mut bot, json!({"source.ip": "192.0.2.1"})).unwrap();
        assert!(!no_asn.contains("source.abuse_contact"));
        let partial = run(&mut bot, json!({"source.asn": 64497, "comment": "old"})).unwrap();
        assert_eq!(partial.get_str("source.abuse_contact"), Some("x@example.net"));
        assert!(!partial.contains("comment"), "a NULL column removes the field");
    }

    /// Bots run on the node's actix threads, inside a tokio runtime: the synchronous client must
    /// still connect, look up and be dropped there without panicking.
    #[test]
    fn lookups_work_on_a_thread_inside_a_tokio_runtime() {
        if !server_available() {
            return;
        }
        let table = Table::create("asn integer, contact text, note text", "(64496, 'abuse@example.com', 'Hi')");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let _inside = rt.enter();
        let mut bot = bot(&table, json!({}));
        let msg = run(&mut bot, json!({"source.asn": 64496})).unwrap();
        assert_eq!(msg.get_str("source.abuse_contact"), Some("abuse@example.com"));
        drop(bot);
    }

    #[test]
    fn complete_events_pass_unless_overwrite() {
        if !server_available() {
            return;
        }
        let table = Table::create("asn bigint, contact varchar(50), note text", "(64496, 'abuse@example.com', 'n')");
        let fields = json!({"source.asn": 64496, "source.abuse_contact": "old@example.org", "comment": "c"});
        let kept = run(&mut bot(&table, json!({})), fields.clone()).unwrap();
        assert_eq!(kept.get_str("source.abuse_contact"), Some("old@example.org"));
        let replaced = run(&mut bot(&table, json!({"overwrite": "true"})), fields).unwrap();
        assert_eq!(replaced.get_str("source.abuse_contact"), Some("abuse@example.com"));
        assert_eq!(replaced.get_str("comment"), Some("n"));
    }

    #[test]
    fn other_column_types_are_compared_as_text_and_several_rows_fail() {
        if !server_available() {
            return;
        }
        let table = Table::create(
            "ip inet, cc char(2), seen date",
            "('192.0.2.1', 'AT', '2020-01-02'), ('192.0.2.2', 'DE', NULL), ('192.0.2.2', 'CH', NULL)",
        );
        let mut bot = bot(
            &table,
            json!({"match_fields": {"source.ip": "ip"}, "replace_fields": {"cc": "source.geolocation.cc", "seen": "extra.seen"}}),
        );
        let msg = run(&mut bot, json!({"source.ip": "192.0.2.1"})).unwrap();
        assert_eq!(msg.get_str("source.geolocation.cc"), Some("AT"));
        assert_eq!(msg.get_str("extra.seen"), Some("2020-01-02"));
        let err = run(&mut bot, json!({"source.ip": "192.0.2.2"})).err().unwrap();
        assert!(err.to_string().contains("2 rows"), "{err}");
    }

    #[test]
    fn a_missing_table_stops_the_bot() {
        if !server_available() {
            return;
        }
        let table = Table { name: "intelmq_rs_gdl_does_not_exist".to_string() };
        let err = run(&mut bot(&table, json!({})), json!({"source.asn": 1})).err().unwrap();
        assert!(matches!(err, BotError::Fatal(_)), "{err}");
    }

    #[test]
    fn an_unreachable_server_is_a_transient_error() {
        let mut params: GenericDbLookupExpertParams = serde_json::from_value(json!({
            "engine": "postgresql", "host": "127.0.0.1", "port": 1, "sslmode": "disable", "connect_timeout": 1
        }))
        .unwrap();
        params.password = None;
        let mut bot = GenericDbLookupExpertBot::build(params).unwrap();
        let err = run(&mut bot, json!({"source.asn": 1})).err().unwrap();
        assert!(matches!(err, BotError::Transient(_)), "{err}");
    }

    #[test]
    fn engine_and_sslmode_are_checked() {
        let build = |v: Value| GenericDbLookupExpertBot::build(serde_json::from_value(v).unwrap()).err().map(|e| e.key);
        assert_eq!(build(json!({})), Some("engine".to_string()));
        assert_eq!(build(json!({"engine": "sqlite", "sslmode": "disable"})), Some("engine".to_string()));
        assert_eq!(build(json!({"engine": "postgresql"})), Some("sslmode".to_string()));
        assert_eq!(build(json!({"engine": "postgresql", "sslmode": "disable"})), None);
        assert_eq!(
            build(json!({"engine": "postgresql", "sslmode": "disable", "match_fields": {}})),
            Some("match_fields".to_string())
        );
    }

    #[test]
    fn query_quotes_identifiers_and_casts_on_request() {
        let bot = GenericDbLookupExpertBot::build(
            serde_json::from_value(json!({"engine": "postgresql", "sslmode": "disable", "table": "my\"table",
                "match_fields": {"source.asn": "asn", "source.ip": "ip"}}))
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            bot.query(&[None, Some("inet".to_string())], &[false, true]),
            "SELECT \"contact\", format('%s', \"note\") FROM \"my\"\"table\" WHERE \"asn\" = $1 AND \"ip\" = $2::text::\"inet\""
        );
        let defaults = serde_json::to_value(GenericDbLookupExpertParams::default()).unwrap();
        assert_eq!(defaults["match_fields"], json!({"source.asn": "asn"}));
        assert_eq!(defaults["sslmode"], json!("require"));
    }
}
