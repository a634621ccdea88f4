//! `intelmq.bots.outputs.sql.output`: inserts events into a PostgreSQL table laid out as IntelMQ's
//! EventDB (one column per field, named by the dotted field name: `"source.ip"`; see
//! `intelmq-node initdb`). Each event is IntelMQ's `to_dict(jsondict_as_string)`: `extra` as one
//! JSON text by default; only the keys the event has (or, with `fields`, those of `fields` it
//! has) are inserted. IntelMQ's quirk is kept: the six characters `\u0000` in a text value are
//! escaped once more (`\\u0000`) so that PostgreSQL's JSON types accept them.
//!
//! Difference from IntelMQ, for throughput with the same result: IntelMQ commits one `INSERT` per
//! event. Here one `write` inserts the whole batch in one transaction, with one multi-row
//! `INSERT INTO <table> ("k1", "k2", ...) VALUES (...), (...)` (a key an event lacks is `DEFAULT`,
//! as if it were left out), split only to stay under PostgreSQL's 65535 parameters per statement;
//! `Ok` is returned after `COMMIT`, so the node acknowledges only what the database has. Values are
//! sent as text parameters and converted by the server to each column's type (as psycopg2's
//! literals are), so the bot works with `json` or `jsonb` columns, `inet`, `timestamptz` etc.
//! `autocommit` is accepted and has no effect (every batch is its own transaction).
//!
//! Errors: a connection that cannot be opened or breaks, and server errors of the classes
//! "connection exception" (08), "insufficient resources" (53), "operator intervention" (57) and
//! "transaction rollback" (40) make the bot wait and retry (nothing is dropped); with
//! `fail_on_errors` they are ordinary errors instead (retried `error_max_retries` times, then
//! handled by `error_procedure`). Data the table refuses (class 22 "data exception", 23
//! "integrity constraint violation") is dumped; other SQL errors (a missing table or column,
//! class 42) are retried and then handled by `error_procedure`, as IntelMQ does with psycopg2's
//! `ProgrammingError`. If the connection breaks while `COMMIT` is under way, the outcome is
//! unknown and the batch is inserted again (at-least-once).
//!
//! Only `engine: postgresql` is available: `sqlite` and `mssql` need client libraries this build
//! does not have, and are refused with a clear error. TLS follows libpq's `sslmode` (see
//! [`super::tls`]; `sslrootcert` is an addition for the `verify-*` modes).

use std::time::Duration;

use postgres::error::SqlState;
use postgres::types::ToSql;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use text_param::TextParam;

use super::tls::RustlsConnect;
use crate::bots::experts::asn_lookup::lenient;
use crate::bots::outputs::amqptopic::shared::{de_name_list, de_opt_string, de_string, Worker};
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, Level, OutputBot, ParamError};
use crate::message::{ExportOptions, Message};

/// PostgreSQL's limit of bind parameters in one statement.
const MAX_PARAMS: usize = 65_535;

/// Parameters of the SQL output (IntelMQ's names and defaults: `SQLOutputBot` and `SQLMixin`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SqlOutputParams {
    /// `postgresql` (IntelMQ also: `sqlite`, `mssql`, refused here); default null (must be set).
    #[serde(deserialize_with = "de_opt_string")]
    pub engine: Option<String>,
    /// The database; default "intelmq-events".
    pub database: String,
    /// The server; default "localhost".
    pub host: String,
    /// The server port; default "5432".
    #[serde(deserialize_with = "de_string")]
    pub port: String,
    /// The user; default "intelmq".
    pub user: String,
    /// The password; default null.
    #[serde(deserialize_with = "de_opt_string")]
    pub password: Option<String>,
    /// libpq sslmode (`disable`, `allow`, `prefer`, `require`, `verify-ca`, `verify-full`); default "require".
    pub sslmode: String,
    /// Root certificates (PEM file, or `system`) for `verify-ca`/`verify-full` (not IntelMQ's; null:
    /// libpq's `$PGSSLROOTCERT` or `~/.postgresql/root.crt`); default null.
    #[serde(deserialize_with = "de_opt_string")]
    pub sslrootcert: Option<String>,
    /// Seconds to wait for a connection; default 5.
    #[serde(deserialize_with = "lenient::seconds")]
    pub connect_timeout: f64,
    /// The table (or view) to insert into, written into the statement as given; default "events".
    pub table: String,
    /// Only these fields (list or comma-separated string); default null (every field of the event).
    #[serde(deserialize_with = "de_name_list")]
    pub fields: Option<Vec<String>>,
    /// Accepted for compatibility, without effect (one transaction per batch); default true.
    #[serde(deserialize_with = "lenient::bool")]
    pub autocommit: bool,
    /// Insert JSONDict fields (`extra`) as one JSON text; default true.
    #[serde(deserialize_with = "lenient::bool")]
    pub jsondict_as_string: bool,
    /// Seconds to wait before reconnecting after a connection error; default 0.
    #[serde(deserialize_with = "lenient::seconds")]
    pub reconnect_delay: f64,
    /// Treat connection errors as ordinary errors instead of waiting for the database; default false.
    #[serde(deserialize_with = "lenient::bool")]
    pub fail_on_errors: bool,
}

impl Default for SqlOutputParams {
    fn default() -> Self {
        SqlOutputParams {
            engine: None,
            database: "intelmq-events".to_string(),
            host: "localhost".to_string(),
            port: "5432".to_string(),
            user: "intelmq".to_string(),
            password: None,
            sslmode: "require".to_string(),
            sslrootcert: None,
            connect_timeout: 5.0,
            table: "events".to_string(),
            fields: None,
            autocommit: true,
            jsondict_as_string: true,
            reconnect_delay: 0.0,
            fail_on_errors: false,
        }
    }
}

/// Text parameters: the value goes to the server in its text form and is converted there to the
/// column's type, whatever it is.
mod text_param {
    use postgres::types::{to_sql_checked, Format, IsNull, ToSql, Type};

    #[derive(Debug)]
    pub struct TextParam(pub String);

    impl ToSql for TextParam {
        fn to_sql(
            &self,
            _ty: &Type,
            out: &mut postgres::types::private::BytesMut,
        ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
            out.extend_from_slice(self.0.as_bytes());
            Ok(IsNull::No)
        }

        fn accepts(_ty: &Type) -> bool {
            true
        }

        fn encode_format(&self, _ty: &Type) -> Format {
            Format::Text
        }

        to_sql_checked!();
    }
}

/// The text form of a value of `to_dict` as PostgreSQL should read it, with IntelMQ's `\u0000`
/// escape for strings.
fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.replace("\\u0000", "\\\\u0000"),
        Value::Bool(true) => "true".to_string(),
        Value::Bool(false) => "false".to_string(),
        other => other.to_string(),
    }
}

/// A double-quoted SQL identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// One row: the value of each column, `None` = `DEFAULT`.
type Row = Vec<Option<String>>;

/// The statements for a batch: the column list (union of the rows' keys in first-seen order) and
/// the rows, in chunks of at most `MAX_PARAMS` parameters.
fn build_rows(events: &[Value], fields: Option<&[String]>) -> (Vec<String>, Vec<Row>) {
    let mut columns: Vec<String> = Vec::new();
    let mut index = std::collections::HashMap::new();
    let mut keyed: Vec<Vec<(usize, String)>> = Vec::with_capacity(events.len());
    for event in events {
        let Value::Object(map) = event else {
            keyed.push(Vec::new());
            continue;
        };
        let keys: Vec<&String> = match fields {
            Some(fields) => fields.iter().filter(|k| map.contains_key(k.as_str())).collect(),
            None => map.keys().collect(),
        };
        let mut row = Vec::with_capacity(keys.len());
        for key in keys {
            let Some(value) = map.get(key.as_str()) else { continue };
            let i = *index.entry(key.clone()).or_insert_with(|| {
                columns.push(key.clone());
                columns.len() - 1
            });
            row.push((i, value_text(value)));
        }
        keyed.push(row);
    }
    let rows = keyed
        .into_iter()
        .map(|pairs| {
            let mut row: Row = vec![None; columns.len()];
            for (i, text) in pairs {
                row[i] = Some(text);
            }
            row
        })
        .collect();
    (columns, rows)
}

/// `INSERT INTO <table> ("c1", ...) VALUES ($1, DEFAULT, ...), (...)` for `rows`, with the
/// parameters in order.
fn insert_statement(table: &str, columns: &[String], rows: &[Row]) -> (String, Vec<TextParam>) {
    if columns.is_empty() {
        return (format!("INSERT INTO {table} DEFAULT VALUES"), Vec::new());
    }
    let cols: Vec<String> = columns.iter().map(|c| ident(c)).collect();
    let mut sql = format!("INSERT INTO {table} ({}) VALUES ", cols.join(", "));
    let mut params = Vec::new();
    for (r, row) in rows.iter().enumerate() {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for (c, value) in row.iter().enumerate() {
            if c > 0 {
                sql.push_str(", ");
            }
            match value {
                Some(text) => {
                    params.push(TextParam(text.clone()));
                    sql.push_str(&format!("${}", params.len()));
                }
                None => sql.push_str("DEFAULT"),
            }
        }
        sql.push(')');
    }
    (sql, params)
}

/// How a PostgreSQL error is handled.
#[derive(Debug, PartialEq, Eq)]
enum Failure {
    /// The connection failed or the server cannot take the data now.
    Connection,
    /// The data is refused.
    Data,
    /// Anything else the server said (missing table or column, permissions).
    Sql,
}

fn classify(e: &postgres::Error) -> Failure {
    let Some(db) = e.as_db_error() else {
        return Failure::Connection;
    };
    let code = db.code().code();
    match &code[..2.min(code.len())] {
        "08" | "53" | "57" | "40" | "58" => Failure::Connection,
        "22" | "23" => Failure::Data,
        _ if *db.code() == SqlState::READ_ONLY_SQL_TRANSACTION => Failure::Connection,
        _ => Failure::Sql,
    }
}

/// The connection, owned by the bot's worker thread.
struct SqlConnection {
    config: postgres::Config,
    tls: RustlsConnect,
    client: Option<postgres::Client>,
}

/// Why an insert failed: how to handle it, and the error text.
type InsertError = (Failure, String);

impl SqlConnection {
    /// Inserts the rows in one transaction (connecting first if needed); `Ok(true)` when it
    /// connected for this.
    fn insert(&mut self, table: &str, columns: &[String], rows: &[Row]) -> Result<bool, InsertError> {
        if self.client.as_ref().is_some_and(postgres::Client::is_closed) {
            self.client = None;
        }
        let connected = self.client.is_none();
        if connected {
            let client = self
                .config
                .connect(self.tls.clone())
                .map_err(|e| (Failure::Connection, format!("cannot connect: {e}")))?;
            self.client = Some(client);
        }
        let result = match self.client.as_mut() {
            Some(client) => Self::transaction(client, table, columns, rows),
            None => return Err((Failure::Connection, "not connected".to_string())),
        };
        match result {
            Ok(()) => Ok(connected),
            Err(e) => {
                let failure = classify(&e);
                if failure == Failure::Connection {
                    self.client = None;
                }
                Err((failure, e.to_string()))
            }
        }
    }

    fn transaction(
        client: &mut postgres::Client,
        table: &str,
        columns: &[String],
        rows: &[Row],
    ) -> Result<(), postgres::Error> {
        let mut tx = client.transaction()?;
        if columns.is_empty() {
            for _ in rows {
                tx.execute(&format!("INSERT INTO {table} DEFAULT VALUES"), &[])?;
            }
        } else {
            let per_statement = (MAX_PARAMS / columns.len()).max(1);
            for chunk in rows.chunks(per_statement) {
                let (sql, params) = insert_statement(table, columns, chunk);
                let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
                tx.execute(sql.as_str(), &refs)?;
            }
        }
        tx.commit()
    }
}

/// Inserts events into a PostgreSQL table. The connection lives on a worker thread of the bot
/// (the synchronous client blocks on a tokio runtime of its own, which the node's threads cannot).
pub struct SqlOutputBot {
    params: SqlOutputParams,
    config: postgres::Config,
    tls: RustlsConnect,
    target: String,
    worker: Option<Worker<SqlConnection>>,
}

impl BuildBot for SqlOutputBot {
    type Params = SqlOutputParams;

    fn build(params: SqlOutputParams) -> Result<Self, ParamError> {
        match params.engine.as_deref().map(str::to_lowercase).as_deref() {
            Some("postgresql") => {}
            Some(engine @ ("sqlite" | "mssql")) => {
                return Err(ParamError::new(
                    "engine",
                    format!("engine `{engine}` is not available in this build (no client library); use `postgresql`"),
                ))
            }
            Some(other) => {
                return Err(ParamError::new("engine", format!("`{other}` is not one of postgresql, sqlite, mssql")))
            }
            None => return Err(ParamError::new("engine", "no engine given; set `postgresql`")),
        }
        let port: u16 = params
            .port
            .trim()
            .parse()
            .map_err(|_| ParamError::new("port", format!("`{}` is not a port number", params.port)))?;
        let (ssl_mode, tls) = super::tls::for_sslmode(&params.sslmode, params.sslrootcert.as_deref())?;
        if params.table.trim().is_empty() {
            return Err(ParamError::new("table", "no table given"));
        }
        let mut config = postgres::Config::new();
        config
            .host(&params.host)
            .port(port)
            .user(&params.user)
            .dbname(&params.database)
            .ssl_mode(ssl_mode)
            .application_name("intelmq-sql-output")
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30))
            .keepalives_interval(Duration::from_secs(5))
            .keepalives_retries(3);
        if let Some(password) = &params.password {
            config.password(password);
        }
        if params.connect_timeout > 0.0 {
            config.connect_timeout(Duration::from_secs_f64(params.connect_timeout));
        }
        let target = format!("{}@{}:{}/{}", params.user, params.host, port, params.database);
        Ok(SqlOutputBot { params, config, tls, target, worker: None })
    }
}

impl OutputBot for SqlOutputBot {
    fn write(&mut self, events: &[Message], ctx: &mut Context<'_>) -> Result<(), BotError> {
        if events.is_empty() {
            return Ok(());
        }
        let opts = ExportOptions { jsondict_as_string: self.params.jsondict_as_string, ..ExportOptions::default() };
        let dicts: Vec<Value> = events.iter().map(|e| e.to_dict(opts)).collect();
        let (columns, rows) = build_rows(&dicts, self.params.fields.as_deref());
        if self.worker.is_none() {
            let connection = SqlConnection { config: self.config.clone(), tls: self.tls.clone(), client: None };
            let worker = Worker::start(&format!("sql-{}", ctx.bot_id), connection).map_err(BotError::Fatal)?;
            self.worker = Some(worker);
        }
        let Some(worker) = &self.worker else {
            return Err(BotError::Fatal("the database thread is not running".to_string()));
        };
        let table = self.params.table.clone();
        let n = rows.len();
        let result = worker.call(move |conn| conn.insert(&table, &columns, &rows));
        let result = match result {
            Ok(result) => result,
            Err(why) => {
                self.worker = None;
                Err((Failure::Connection, why))
            }
        };
        match result {
            Ok(connected) => {
                if connected {
                    ctx.log.log(Level::Info, "Connected to database.");
                }
                ctx.log.log(Level::Debug, &format!("Inserted {n} events into {}.", self.params.table));
                Ok(())
            }
            Err((Failure::Connection, e)) => {
                ctx.log.log(Level::Error, &format!("Database connection problem, connecting again: {e}."));
                if self.params.reconnect_delay > 0.0 {
                    std::thread::sleep(Duration::from_secs_f64(self.params.reconnect_delay));
                }
                let text = format!("database {}: {e}", self.target);
                Err(if self.params.fail_on_errors { BotError::Transient(text) } else { BotError::Unavailable(text) })
            }
            Err((Failure::Data, e)) => Err(BotError::Invalid(format!(
                "database {} refused the data for table {}: {e}",
                self.target, self.params.table
            ))),
            Err((Failure::Sql, e)) => Err(BotError::Transient(format!(
                "database {}: insert into table {} failed: {e}",
                self.target, self.params.table
            ))),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::net::{SocketAddr, TcpStream};

    use serde_json::json;

    use super::*;
    use crate::bots::outputs::sql::initdb::{generate, InitdbOptions};
    use crate::bots::outputs::test_support::{event, harmonization};
    use crate::bots::{MemoryLog, MemoryState};

    const SERVER: &str = "127.0.0.1:5432";

    fn server_available() -> bool {
        let addr: SocketAddr = SERVER.parse().unwrap();
        if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
            return true;
        }
        assert!(
            std::env::var("INTELMQ_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "PostgreSQL at {SERVER} is not reachable and INTELMQ_REQUIRE_SERVICES=1"
        );
        eprintln!("sql output: skipped, no PostgreSQL at {SERVER}");
        false
    }

    fn admin(db: &str) -> postgres::Client {
        postgres::Config::new()
            .host("127.0.0.1")
            .port(5432)
            .user("postgres")
            .dbname(db)
            .connect(postgres::NoTls)
            .unwrap()
    }

    /// A fresh database with the EventDB schema; dropped when the guard goes.
    struct TempDb {
        name: String,
    }

    impl TempDb {
        fn new(opts: &InitdbOptions) -> TempDb {
            let name = format!(
                "intelmq_sql_test_{}_{}",
                std::process::id(),
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
            );
            admin("postgres").batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
            let ddl = generate(&harmonization(), opts).unwrap();
            admin(&name).batch_execute(&ddl).unwrap();
            TempDb { name }
        }
    }

    impl Drop for TempDb {
        fn drop(&mut self) {
            let _ = admin("postgres").batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        }
    }

    fn bot(db: &str, extra: Value) -> SqlOutputBot {
        let mut params = json!({"engine": "postgresql", "host": "127.0.0.1", "port": 5432, "user": "postgres",
            "database": db, "sslmode": "disable"});
        for (k, v) in extra.as_object().unwrap() {
            params[k] = v.clone();
        }
        SqlOutputBot::build(serde_json::from_value(params).unwrap()).unwrap()
    }

    fn write(bot: &mut SqlOutputBot, events: &[Message]) -> Result<(), BotError> {
        let h = harmonization();
        let mut state = MemoryState::default();
        let mut log = MemoryLog::default();
        let mut ctx = Context {
            bot_id: "sql-output",
            harmonization: &h,
            root: std::path::Path::new("/"),
            state: &mut state,
            log: &mut log,
            clock: &crate::bots::SystemClock,
        };
        // Inside a tokio runtime, as on the node's actix threads.
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async { bot.write(events, &mut ctx) })
    }

    #[test]
    fn rows_take_the_union_of_keys_and_default_for_missing_ones() {
        let dicts = [json!({"a": "1", "b": 2}), json!({"c": true, "a": "x\\u0000"})];
        let (columns, rows) = build_rows(&dicts, None);
        assert_eq!(columns, vec!["a", "b", "c"]);
        assert_eq!(rows[0], vec![Some("1".into()), Some("2".into()), None]);
        assert_eq!(rows[1], vec![Some("x\\\\u0000".into()), None, Some("true".into())]);
        let (sql, params) = insert_statement("events", &columns, &rows);
        assert_eq!(sql, "INSERT INTO events (\"a\", \"b\", \"c\") VALUES ($1, $2, DEFAULT), ($3, DEFAULT, $4)");
        assert_eq!(params.len(), 4);
        let fields = vec!["c".to_string(), "z".to_string()];
        let (columns, rows) = build_rows(&dicts, Some(&fields));
        assert_eq!(columns, vec!["c"]);
        assert_eq!(rows, vec![vec![None], vec![Some("true".into())]]);
    }

    #[test]
    fn engine_and_sslmode_are_checked() {
        let build = |p: Value| SqlOutputBot::build(serde_json::from_value(p).unwrap()).err().map(|e| e.key);
        assert_eq!(build(json!({})), Some("engine".into()));
        let err = SqlOutputBot::build(serde_json::from_value(json!({"engine": "sqlite"})).unwrap()).err().unwrap();
        assert!(err.reason.contains("not available"), "{err}");
        assert_eq!(build(json!({"engine": "postgresql"})), None, "require: TLS without checking the certificate");
        assert_eq!(build(json!({"engine": "postgresql", "sslmode": "verify"})), Some("sslmode".into()));
        let missing = json!({"engine": "postgresql", "sslmode": "verify-full", "sslrootcert": "/nonexistent/root.crt"});
        assert_eq!(build(missing), Some("sslrootcert".into()));
        assert_eq!(build(json!({"engine": "postgresql", "sslmode": "disable", "port": "x"})), Some("port".into()));
        assert_eq!(build(json!({"engine": "postgresql", "sslmode": "disable", "port": "5433"})), None);
    }

    #[test]
    fn defaults_are_intelmqs() {
        let d = serde_json::to_value(SqlOutputParams::default()).unwrap();
        assert_eq!(d["engine"], Value::Null);
        assert_eq!(d["database"], json!("intelmq-events"));
        assert_eq!(d["port"], json!("5432"));
        assert_eq!(d["table"], json!("events"));
        assert_eq!(d["jsondict_as_string"], json!(true));
        assert_eq!(d["fields"], Value::Null);
    }

    /// Whether the server speaks TLS (the TLS tests skip with a message when not).
    fn server_has_tls() -> bool {
        let on = admin("postgres").query_one("SHOW ssl", &[]).unwrap().get::<_, String>(0) == "on";
        if !on {
            eprintln!("sql output: TLS test skipped, the PostgreSQL server at {SERVER} has ssl off");
        }
        on
    }

    #[test]
    fn sslmodes_encrypt_and_check_the_server_as_libpq_does() {
        if !server_available() || !server_has_tls() {
            return;
        }
        let ssl_of = |mode: &str, root: Option<&str>| -> Result<bool, String> {
            let (ssl_mode, tls) = super::super::tls::for_sslmode(mode, root).map_err(|e| e.to_string())?;
            let mut c = postgres::Config::new()
                .host("127.0.0.1")
                .port(5432)
                .user("postgres")
                .dbname("postgres")
                .ssl_mode(ssl_mode)
                .connect(tls)
                .map_err(|e| format!("{e}: {:?}", std::error::Error::source(&e)))?;
            Ok(c.query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).unwrap().get(0))
        };
        assert_eq!(ssl_of("disable", None), Ok(false));
        assert_eq!(ssl_of("prefer", None), Ok(true));
        assert_eq!(ssl_of("require", None), Ok(true));
        // The server's own (self-signed) certificate as the root: the chain is good.
        let cert: String = admin("postgres").query_one("SHOW ssl_cert_file", &[]).unwrap().get(0);
        assert_eq!(ssl_of("verify-ca", Some(&cert)), Ok(true));
        // A root that did not sign it: refused.
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("other.pem");
        std::fs::write(&other, crate::bots::outputs::tls::test_support::server().0).unwrap();
        let err = ssl_of("verify-full", other.to_str()).unwrap_err();
        assert!(
            err.contains("TLS handshake") && (err.contains("UnknownIssuer") || err.contains("unknown issuer")),
            "{err}"
        );
    }

    #[test]
    fn a_batch_goes_over_tls_with_sslmode_require() {
        if !server_available() || !server_has_tls() {
            return;
        }
        let db = TempDb::new(&InitdbOptions::default());
        let h = harmonization();
        let mut b = bot(&db.name, json!({"sslmode": "require"}));
        write(&mut b, &[event(&h, json!({"source.ip": "192.0.2.7"}))]).unwrap();
        let n: i64 = admin(&db.name).query_one("SELECT count(*) FROM events", &[]).unwrap().get(0);
        assert_eq!(n, 1);
        let ssl: i64 = admin("postgres")
            .query_one(
                "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
                 WHERE a.application_name = 'intelmq-sql-output' AND a.datname = $1 AND s.ssl",
                &[&db.name],
            )
            .unwrap()
            .get(0);
        assert_eq!(ssl, 1, "the bot's connection is encrypted");
    }

    #[test]
    fn a_batch_lands_in_the_eventdb_table_with_typed_columns() {
        if !server_available() {
            return;
        }
        let db = TempDb::new(&InitdbOptions::default());
        let h = harmonization();
        let events = [
            event(
                &h,
                json!({"source.ip": "192.0.2.1", "source.port": 80, "time.source": "2020-01-02T03:04:05+00:00",
                "extra.a": 1, "extra.b": "x\u{0}y", "feed.accuracy": 90.5, "raw": "YQ==", "source.asn": 64496}),
            ),
            event(&h, json!({"source.fqdn": "example.com", "classification.type": "phishing"})),
        ];
        let mut b = bot(&db.name, json!({}));
        write(&mut b, &events).unwrap();
        let mut c = admin(&db.name);
        let rows = c
            .query(
                "SELECT host(\"source.ip\"), \"source.port\", \"time.source\" = '2020-01-02T03:04:05Z'::timestamptz,
                 \"extra\"::text, \"feed.accuracy\", \"raw\", \"source.fqdn\", \"classification.type\" FROM events ORDER BY id",
                &[],
            )
            .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].get::<_, Option<String>>(0).as_deref(), Some("192.0.2.1"));
        assert_eq!(rows[0].get::<_, Option<i32>>(1), Some(80));
        assert_eq!(rows[0].get::<_, Option<bool>>(2), Some(true));
        let extra: Value = serde_json::from_str(&rows[0].get::<_, String>(3)).unwrap();
        assert_eq!(extra["a"], json!(1));
        assert_eq!(rows[0].get::<_, Option<f32>>(4), Some(90.5));
        assert_eq!(rows[0].get::<_, Option<String>>(5).as_deref(), Some("YQ=="));
        assert_eq!(rows[1].get::<_, Option<String>>(6).as_deref(), Some("example.com"));
        assert_eq!(rows[1].get::<_, Option<String>>(0), None);
        assert_eq!(rows[1].get::<_, Option<String>>(7).as_deref(), Some("phishing"));
    }

    #[test]
    fn separate_raws_view_takes_inserts_through_its_trigger() {
        if !server_available() {
            return;
        }
        let db = TempDb::new(&InitdbOptions { separate_raws: true, jsonb: true, ..Default::default() });
        let h = harmonization();
        let events = [
            event(&h, json!({"source.ip": "192.0.2.1", "raw": "YQ==", "extra.k": "v"})),
            event(&h, json!({"source.ip": "192.0.2.2", "raw": "Yg=="})),
        ];
        let mut b = bot(&db.name, json!({"table": "v_events"}));
        write(&mut b, &events).unwrap();
        let mut c = admin(&db.name);
        let raws: Vec<String> =
            c.query("SELECT raw FROM raws ORDER BY event_id", &[]).unwrap().iter().map(|r| r.get(0)).collect();
        assert_eq!(raws, vec!["YQ==", "Yg=="]);
        let n: i64 = c.query_one("SELECT count(*) FROM events WHERE extra->>'k' = 'v'", &[]).unwrap().get(0);
        assert_eq!(n, 1);
    }

    #[test]
    fn refused_data_is_invalid_and_nothing_of_the_batch_is_kept() {
        if !server_available() {
            return;
        }
        let db = TempDb::new(&InitdbOptions::default());
        let h = harmonization();
        let events = [event(&h, json!({"source.ip": "192.0.2.1"})), event(&h, json!({"comment": "nul \u{0} char"}))];
        let mut b = bot(&db.name, json!({}));
        assert!(matches!(write(&mut b, &events), Err(BotError::Invalid(_))));
        let n: i64 = admin(&db.name).query_one("SELECT count(*) FROM events", &[]).unwrap().get(0);
        assert_eq!(n, 0, "the transaction was rolled back");
        write(&mut b, &events[..1]).unwrap();
        let n: i64 = admin(&db.name).query_one("SELECT count(*) FROM events", &[]).unwrap().get(0);
        assert_eq!(n, 1, "the connection still works after the refused batch");
    }

    #[test]
    fn unreachable_database_is_unavailable_or_transient_with_fail_on_errors() {
        let h = harmonization();
        let events = [event(&h, json!({"source.ip": "192.0.2.1"}))];
        let mut b = bot("x", json!({"port": 1, "connect_timeout": 1}));
        assert!(matches!(write(&mut b, &events), Err(BotError::Unavailable(_))));
        let mut b = bot("x", json!({"port": 1, "connect_timeout": 1, "fail_on_errors": true}));
        assert!(matches!(write(&mut b, &events), Err(BotError::Transient(_))));
    }

    #[test]
    fn a_missing_column_is_an_sql_error_not_an_outage() {
        if !server_available() {
            return;
        }
        let db = TempDb::new(&InitdbOptions::default());
        admin(&db.name).batch_execute("CREATE TABLE small (\"source.ip\" inet)").unwrap();
        let h = harmonization();
        let mut b = bot(&db.name, json!({"table": "small"}));
        let err = write(&mut b, &[event(&h, json!({"source.ip": "192.0.2.1", "source.port": 1}))]).unwrap_err();
        assert!(matches!(err, BotError::Transient(_)), "{err:?}");
        let mut b = bot(&db.name, json!({"table": "small", "fields": "source.ip"}));
        write(&mut b, &[event(&h, json!({"source.ip": "192.0.2.1", "source.port": 1}))]).unwrap();
    }
}
