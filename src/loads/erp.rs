//! The ERP's database as a source of rows: a SQL query with named parameters, run against the
//! ERP's own PostgreSQL, MySQL/MariaDB or SQLite database through the native drivers, so that
//! dates, exact amounts and integers arrive typed.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use chrono_tz::Tz;
use futures_util::TryStreamExt;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::{Column, ConnectOptions, Connection, Executor, Row, Statement, TypeInfo, ValueRef};

use super::table::Table;
use super::value::Cell;
use crate::config::Secret;

/// How long connecting to the ERP may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// How long the query may run, rows read included.
const QUERY_TIMEOUT: Duration = Duration::from_secs(300);

/// The named parameters a query may use.
pub const PARAMETERS: [&str; 2] = ["reference_date", "send_date"];

/// The source settings, as stored. The password is kept apart from the URL and never shown.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SourceSettings {
    /// The connection URL, without its password.
    pub url: String,
    /// The password, if the database wants one.
    #[serde(default)]
    pub password: Option<String>,
    /// The query; `:reference_date` and `:send_date` stand for the load's dates.
    pub query: String,
    /// The column that holds the phone number.
    pub phone_column: String,
    /// The column that identifies a row (e.g. the installment id).
    pub key_column: String,
    /// The template the messages are written from.
    pub template_id: String,
    /// The columns the query returned when it was last checked.
    #[serde(default)]
    pub columns: Vec<String>,
}

impl SourceSettings {
    /// The key the settings are stored under.
    pub const KEY: &'static str = "loads.source";
}

/// The database kinds a source may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    MySql,
    /// SQLite, opened read-only.
    Sqlite,
}

/// Why the source could not be used; `field` names the setting to look at.
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct SourceError {
    /// `url`, `password` or `query`.
    pub field: &'static str,
    /// What went wrong, in words.
    pub reason: String,
}

fn source_error(field: &'static str, reason: impl Into<String>) -> SourceError {
    SourceError {
        field,
        reason: reason.into(),
    }
}

/// Which database a URL names.
///
/// # Errors
///
/// Names `url` when the scheme is not one of PostgreSQL, MySQL/MariaDB or SQLite.
pub fn dialect(url: &str) -> Result<Dialect, SourceError> {
    let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or_default();
    match scheme.to_ascii_lowercase().as_str() {
        "postgres" | "postgresql" => Ok(Dialect::Postgres),
        "mysql" | "mariadb" => Ok(Dialect::MySql),
        "sqlite" => Ok(Dialect::Sqlite),
        _ => Err(source_error(
            "url",
            "the URL starts with postgres://, mysql://, mariadb:// or sqlite://",
        )),
    }
}

/// Splits a password out of a URL, whether written as `user:password@` or as a `password=`
/// parameter: the URL without it, and the password if there was one.
pub fn split_password(url: &str) -> (String, Option<String>) {
    let (url, from_query) = split_query_password(url);
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url, from_query);
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some((credentials, host)) = authority.rsplit_once('@') else {
        return (url.clone(), from_query);
    };
    match credentials.split_once(':') {
        Some((user, password)) => (
            format!("{scheme}://{user}@{host}{tail}"),
            Some(percent_decode(password)),
        ),
        None => (url.clone(), from_query),
    }
}

/// Takes `password=…` out of a URL's query string.
fn split_query_password(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), None);
    };
    let mut password = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.split_once('=') {
            Some((name, value)) if name.eq_ignore_ascii_case("password") => {
                password = Some(percent_decode(value));
                false
            }
            _ => true,
        })
        .collect();
    if kept.is_empty() {
        (base.to_owned(), password)
    } else {
        (format!("{base}?{}", kept.join("&")), password)
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A query with its named parameters turned into the driver's placeholders, and the order in
/// which the parameters are bound.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prepared {
    /// The SQL for the driver.
    pub sql: String,
    /// Index into [`PARAMETERS`] of each bound value, in order.
    pub binds: Vec<usize>,
}

/// Turns `:reference_date` and `:send_date` into placeholders, leaving string literals, quoted
/// names, comments and PostgreSQL's `::` casts alone.
///
/// # Errors
///
/// Names `query` for an empty query or an unknown parameter.
pub fn prepare(query: &str, dialect: Dialect) -> Result<Prepared, SourceError> {
    let query = query.trim().trim_end_matches(';').trim_end();
    if query.is_empty() {
        return Err(source_error("query", "the query is empty"));
    }
    let chars: Vec<char> = query.chars().collect();
    let mut sql = String::with_capacity(query.len());
    let mut binds = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\'' | '"' | '`' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&d| d == c)
                    .map_or(chars.len(), |p| i + 1 + p + 1);
                sql.extend(&chars[i..end]);
                i = end;
            }
            '-' if chars.get(i + 1) == Some(&'-') => {
                let end = chars[i..]
                    .iter()
                    .position(|&d| d == '\n')
                    .map_or(chars.len(), |p| i + p);
                sql.extend(&chars[i..end]);
                i = end;
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                let end = (i + 2..chars.len().saturating_sub(1))
                    .find(|&j| chars[j] == '*' && chars[j + 1] == '/')
                    .map_or(chars.len(), |j| j + 2);
                sql.extend(&chars[i..end]);
                i = end;
            }
            ':' if chars.get(i + 1) == Some(&':') => {
                sql.push_str("::");
                i += 2;
            }
            ':' if chars
                .get(i + 1)
                .is_some_and(|d| d.is_ascii_alphabetic() || *d == '_') =>
            {
                let end = (i + 1..chars.len())
                    .find(|&j| !(chars[j].is_ascii_alphanumeric() || chars[j] == '_'))
                    .unwrap_or(chars.len());
                let name: String = chars[i + 1..end].iter().collect();
                let index = PARAMETERS
                    .iter()
                    .position(|p| p.eq_ignore_ascii_case(&name))
                    .ok_or_else(|| {
                        source_error(
                            "query",
                            format!(
                                "`:{name}` is not a parameter; the query may use \
                                 :reference_date and :send_date"
                            ),
                        )
                    })?;
                match dialect {
                    Dialect::Postgres => {
                        let n = match binds.iter().position(|&b| b == index) {
                            Some(existing) => existing + 1,
                            None => {
                                binds.push(index);
                                binds.len()
                            }
                        };
                        sql.push('$');
                        sql.push_str(&n.to_string());
                    }
                    Dialect::MySql | Dialect::Sqlite => {
                        binds.push(index);
                        sql.push('?');
                    }
                }
                i = end;
            }
            _ => {
                sql.push(c);
                i += 1;
            }
        }
    }
    Ok(Prepared { sql, binds })
}

/// A column of the query's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SourceColumn {
    /// Its name.
    pub name: String,
    /// The database's name for its type.
    #[serde(rename = "type")]
    pub type_name: String,
}

/// What a query gave.
#[derive(Clone, Debug, Default)]
pub struct Fetched {
    /// The columns with their types.
    pub columns: Vec<SourceColumn>,
    /// The rows, numbered from 1.
    pub table: Table,
}

/// The dates a query's parameters stand for.
#[derive(Clone, Copy, Debug)]
pub struct Dates {
    /// `:reference_date`.
    pub reference: NaiveDate,
    /// `:send_date`.
    pub send: NaiveDate,
}

/// Runs the source's query for `dates`, reading at most `limit` rows when given, and telling
/// `read` after each row how many it has. Times with a zone are shown in `tz`.
///
/// # Errors
///
/// Names `url` or `password` when the database cannot be reached or refuses the login, and
/// `query` when the query fails or returns a type a load cannot read.
pub async fn fetch(
    source: &SourceSettings,
    password: Option<&Secret>,
    dates: Dates,
    limit: Option<usize>,
    tz: Tz,
    read: &(dyn Fn(u64) + Sync),
) -> Result<Fetched, SourceError> {
    let dialect = dialect(&source.url)?;
    let prepared = prepare(&source.query, dialect)?;
    let values: Vec<NaiveDate> = prepared
        .binds
        .iter()
        .map(|&i| if i == 0 { dates.reference } else { dates.send })
        .collect();
    let password = password.map(Secret::expose);
    let work = async {
        match dialect {
            Dialect::Postgres => {
                let mut options = sqlx::postgres::PgConnectOptions::from_str(&source.url)
                    .map_err(|e| source_error("url", e.to_string()))?;
                if let Some(p) = password {
                    options = options.password(p);
                }
                let mut conn = connect(options).await?;
                let out =
                    run::<sqlx::Postgres>(&mut conn, &prepared.sql, &values, limit, tz, read).await;
                let _ = conn.close().await;
                out
            }
            Dialect::MySql => {
                let mut options = sqlx::mysql::MySqlConnectOptions::from_str(&source.url)
                    .map_err(|e| source_error("url", e.to_string()))?;
                if let Some(p) = password {
                    options = options.password(p);
                }
                let mut conn = connect(options).await?;
                let out =
                    run::<sqlx::MySql>(&mut conn, &prepared.sql, &values, limit, tz, read).await;
                let _ = conn.close().await;
                out
            }
            Dialect::Sqlite => {
                let options = sqlx::sqlite::SqliteConnectOptions::from_str(&source.url)
                    .map_err(|e| source_error("url", e.to_string()))?
                    .read_only(true);
                let mut conn = connect(options).await?;
                let out =
                    run::<sqlx::Sqlite>(&mut conn, &prepared.sql, &values, limit, tz, read).await;
                let _ = conn.close().await;
                out
            }
        }
    };
    tokio::time::timeout(QUERY_TIMEOUT, work)
        .await
        .map_err(|_| {
            source_error(
                "query",
                format!("the query ran over {} s", QUERY_TIMEOUT.as_secs()),
            )
        })?
}

async fn connect<O>(options: O) -> Result<O::Connection, SourceError>
where
    O: ConnectOptions,
    O::Connection: Sized,
{
    let options = options.disable_statement_logging();
    match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
        Err(_) => Err(source_error(
            "url",
            format!(
                "the database did not answer within {} s",
                CONNECT_TIMEOUT.as_secs()
            ),
        )),
        Ok(Err(err)) => Err(connect_error(&err)),
        Ok(Ok(conn)) => Ok(conn),
    }
}

fn connect_error(err: &sqlx::Error) -> SourceError {
    match err {
        sqlx::Error::Database(db) => {
            let message = db.message().to_owned();
            let lower = message.to_ascii_lowercase();
            if lower.contains("password") || lower.contains("access denied") {
                source_error(
                    "password",
                    format!("the database refused the login: {message}"),
                )
            } else {
                source_error(
                    "url",
                    format!("the database refused the connection: {message}"),
                )
            }
        }
        sqlx::Error::Io(io) => source_error("url", format!("the database cannot be reached: {io}")),
        other => source_error("url", format!("the database cannot be opened: {other}")),
    }
}

/// A driver whose values a load can read.
trait Driver: sqlx::Database {
    /// The cell for column `i` of `row`, whose type is `type_name`.
    fn cell(row: &Self::Row, i: usize, type_name: &str, tz: Tz) -> Result<Cell, String>;
}

async fn run<D>(
    conn: &mut D::Connection,
    sql: &str,
    values: &[NaiveDate],
    limit: Option<usize>,
    tz: Tz,
    read: &(dyn Fn(u64) + Sync),
) -> Result<Fetched, SourceError>
where
    D: Driver,
    usize: sqlx::ColumnIndex<D::Row>,
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
    for<'q> D::Arguments<'q>: sqlx::IntoArguments<'q, D>,
    for<'q> NaiveDate: sqlx::Encode<'q, D> + sqlx::Type<D>,
{
    let query_error = |e: sqlx::Error| match e {
        sqlx::Error::Database(db) => source_error("query", db.message().to_owned()),
        other => source_error("query", other.to_string()),
    };
    let statement = (&mut *conn).prepare(sql).await.map_err(query_error)?;
    let mut columns: Vec<SourceColumn> = statement
        .columns()
        .iter()
        .map(|c| SourceColumn {
            name: c.name().to_owned(),
            type_name: c.type_info().name().to_owned(),
        })
        .collect();
    let mut query = statement.query();
    for v in values {
        query = query.bind(*v);
    }
    let mut table = Table {
        columns: columns.iter().map(|c| c.name.clone()).collect(),
        rows: Vec::new(),
    };
    let mut rows = query.fetch(&mut *conn);
    while limit.is_none_or(|l| table.rows.len() < l) {
        let Some(row) = rows.try_next().await.map_err(query_error)? else {
            break;
        };
        let mut cells = Vec::with_capacity(columns.len());
        for (i, column) in columns.iter_mut().enumerate() {
            // SQLite knows a value's type only from the value; the statement may say NULL.
            let raw = row.try_get_raw(i).map_err(query_error)?;
            if raw.is_null() {
                cells.push(Cell::Empty);
                continue;
            }
            let value_type = raw.type_info().name().to_owned();
            let type_name = if column.type_name == "NULL" {
                value_type.as_str()
            } else {
                column.type_name.as_str()
            };
            let cell = D::cell(&row, i, type_name, tz).map_err(|reason| {
                source_error(
                    "query",
                    format!(
                        "column `{}` ({type_name}) cannot be read: {reason}; cast it to text \
                         in the query",
                        column.name
                    ),
                )
            })?;
            cells.push(cell);
        }
        let number = table.rows.len() as u64 + 1;
        table.rows.push((number, cells));
        read(number);
    }
    Ok(Fetched { columns, table })
}

fn text_or_err<T>(r: Result<T, sqlx::Error>) -> Result<T, String> {
    r.map_err(|e| e.to_string())
}

fn zoned(at: DateTime<Utc>, tz: Tz) -> Cell {
    Cell::DateTime(at.with_timezone(&tz).naive_local())
}

impl Driver for sqlx::Postgres {
    fn cell(row: &Self::Row, i: usize, type_name: &str, tz: Tz) -> Result<Cell, String> {
        Ok(match type_name {
            "BOOL" => Cell::Bool(text_or_err(row.try_get(i))?),
            "INT2" => Cell::Int(text_or_err(row.try_get::<i16, _>(i))?.into()),
            "INT4" => Cell::Int(text_or_err(row.try_get::<i32, _>(i))?.into()),
            "INT8" => Cell::Int(text_or_err(row.try_get(i))?),
            "FLOAT4" => Cell::Float(text_or_err(row.try_get::<f32, _>(i))?.into()),
            "FLOAT8" => Cell::Float(text_or_err(row.try_get(i))?),
            "NUMERIC" => Cell::Decimal(text_or_err(row.try_get::<Decimal, _>(i))?),
            "DATE" => Cell::Date(text_or_err(row.try_get(i))?),
            "TIMESTAMP" => Cell::DateTime(text_or_err(row.try_get::<NaiveDateTime, _>(i))?),
            "TIMESTAMPTZ" => zoned(text_or_err(row.try_get(i))?, tz),
            _ => Cell::Text(text_or_err(row.try_get(i))?),
        })
    }
}

impl Driver for sqlx::MySql {
    fn cell(row: &Self::Row, i: usize, type_name: &str, tz: Tz) -> Result<Cell, String> {
        Ok(match type_name {
            "BOOLEAN" => Cell::Bool(text_or_err(row.try_get(i))?),
            "TINYINT" | "SMALLINT" | "INT" | "MEDIUMINT" | "BIGINT" | "YEAR" => {
                Cell::Int(text_or_err(row.try_get(i))?)
            }
            t if t.ends_with("UNSIGNED") => {
                let n: u64 = text_or_err(row.try_get(i))?;
                i64::try_from(n).map_or(Cell::Text(n.to_string()), Cell::Int)
            }
            "FLOAT" => Cell::Float(text_or_err(row.try_get::<f32, _>(i))?.into()),
            "DOUBLE" => Cell::Float(text_or_err(row.try_get(i))?),
            "DECIMAL" => Cell::Decimal(text_or_err(row.try_get(i))?),
            "DATE" => Cell::Date(text_or_err(row.try_get(i))?),
            "DATETIME" => Cell::DateTime(text_or_err(row.try_get(i))?),
            "TIMESTAMP" => zoned(text_or_err(row.try_get(i))?, tz),
            t if t.contains("BLOB") || t.contains("BINARY") => {
                let bytes: Vec<u8> = text_or_err(row.try_get(i))?;
                Cell::Text(String::from_utf8_lossy(&bytes).into_owned())
            }
            _ => Cell::Text(text_or_err(row.try_get(i))?),
        })
    }
}

impl Driver for sqlx::Sqlite {
    fn cell(row: &Self::Row, i: usize, type_name: &str, _tz: Tz) -> Result<Cell, String> {
        let raw = row.try_get_raw(i).map_err(|e| e.to_string())?;
        let stored = raw.type_info().name().to_owned();
        Ok(match (type_name, stored.as_str()) {
            (_, "INTEGER") if type_name == "BOOLEAN" => Cell::Bool(text_or_err(row.try_get(i))?),
            (_, "INTEGER") => Cell::Int(text_or_err(row.try_get(i))?),
            (_, "REAL") => Cell::Float(text_or_err(row.try_get(i))?),
            (_, "BLOB") => {
                let bytes: Vec<u8> = text_or_err(row.try_get(i))?;
                Cell::Text(String::from_utf8_lossy(&bytes).into_owned())
            }
            ("DATE", _) => {
                let text: String = text_or_err(row.try_get(i))?;
                NaiveDate::parse_from_str(&text, "%Y-%m-%d").map_or(Cell::Text(text), Cell::Date)
            }
            ("DATETIME", _) => {
                let text: String = text_or_err(row.try_get(i))?;
                NaiveDateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S")
                    .map_or(Cell::Text(text), Cell::DateTime)
            }
            _ => Cell::Text(text_or_err(row.try_get(i))?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_parameters_become_placeholders() {
        let q = "SELECT * FROM cuotas WHERE vence = :reference_date AND x::text <> ':send_date' \
                 -- :nope\n AND envio = :send_date AND otra = :reference_date;";
        let pg = prepare(q, Dialect::Postgres).unwrap();
        assert_eq!(
            pg.sql,
            "SELECT * FROM cuotas WHERE vence = $1 AND x::text <> ':send_date' \
             -- :nope\n AND envio = $2 AND otra = $1"
        );
        assert_eq!(pg.binds, [0, 1]);
        let my = prepare(q, Dialect::MySql).unwrap();
        assert_eq!(my.binds, [0, 1, 0]);
        assert_eq!(my.sql.matches('?').count(), 3);
    }

    #[test]
    fn unknown_parameters_and_empty_queries_name_the_query() {
        let err = prepare("SELECT :fecha", Dialect::Sqlite).unwrap_err();
        assert_eq!(err.field, "query");
        assert!(err.reason.contains(":fecha"));
        assert_eq!(prepare(" ; ", Dialect::Sqlite).unwrap_err().field, "query");
    }

    #[test]
    fn passwords_come_out_of_urls() {
        assert_eq!(
            split_password("postgres://erp:s%40cret@db.local:5432/erp?sslmode=require"),
            (
                "postgres://erp@db.local:5432/erp?sslmode=require".to_owned(),
                Some("s@cret".to_owned())
            )
        );
        assert_eq!(
            split_password("mysql://erp@db/erp"),
            ("mysql://erp@db/erp".to_owned(), None)
        );
        assert_eq!(split_password("sqlite:///srv/erp.db").1, None);
        assert_eq!(
            split_password("postgres://erp@db/erp?sslmode=require&password=s3%26cret"),
            (
                "postgres://erp@db/erp?sslmode=require".to_owned(),
                Some("s3&cret".to_owned())
            )
        );
        assert_eq!(
            split_password("mysql://erp@db/erp?password=x"),
            ("mysql://erp@db/erp".to_owned(), Some("x".to_owned()))
        );
    }

    #[test]
    fn dialects_come_from_the_scheme() {
        assert_eq!(dialect("mariadb://x/y").unwrap(), Dialect::MySql);
        assert_eq!(dialect("sqlite://a.db").unwrap(), Dialect::Sqlite);
        assert_eq!(dialect("oracle://x").unwrap_err().field, "url");
    }
}
