//! Turning a table into messages: each row becomes a message or a row error.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use super::table::Table;
use super::value::{Cell, Format};
use crate::domain::{Encoding, MessageText, PhoneNumber, Region, Template};

/// How often, in rows, the progress counters are brought up to date.
const PROGRESS_EVERY: usize = 1_000;

/// What a load needs to know to turn rows into messages.
pub struct Recipe<'a> {
    /// The template every message is written from.
    pub template: &'a Template,
    /// The most characters a message may have, signature included.
    pub max_length: usize,
    /// The column that holds the phone number.
    pub phone_column: &'a str,
    /// The column that identifies a row among loads of the same reference date, if any.
    pub key_column: Option<&'a str>,
    /// Keys already loaded for this reference date, with the load that took each.
    pub loaded_keys: &'a HashMap<String, String>,
    /// How amounts and dates are written.
    pub format: &'a Format,
    /// Where national numbers belong.
    pub region: Region,
    /// Adds the signature to a text.
    pub sign: &'a (dyn Fn(&str) -> String + Sync),
    /// Whether a number (E.164) is on the suppression list.
    pub suppressed: &'a (dyn Fn(&str) -> bool + Sync),
}

/// A message a row makes.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Planned {
    /// The row it came from.
    pub row: u64,
    /// The recipient, in E.164.
    pub to: String,
    /// The text as it will go out, signature included.
    pub text: String,
    /// The alphabet it travels in.
    pub encoding: Encoding,
    /// Segments on the air.
    pub segments: usize,
    /// The row's key, when the source has a key column.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// A row that makes no message, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RowIssue {
    /// The row: the sheet's row number, or the query's row counted from 1.
    pub row: u64,
    /// The column at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// What is wrong, in words.
    pub reason: String,
}

/// What a table makes.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// The messages, in row order.
    pub messages: Vec<Planned>,
    /// Rows that make no message because something in them is wrong.
    pub errors: Vec<RowIssue>,
    /// Rows left out because their key was already loaded for the reference date.
    pub skipped: Vec<RowIssue>,
}

/// Counters a running load keeps up to date for those who poll it.
#[derive(Debug, Default)]
pub struct Progress {
    /// Rows read from the source so far.
    pub processed: AtomicU64,
    /// Messages made so far.
    pub loaded: AtomicU64,
    /// Rows skipped so far.
    pub skipped: AtomicU64,
    /// Rows failed so far.
    pub failed: AtomicU64,
}

/// Why a table cannot be loaded at all.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    /// A column the load needs is not in the table; `field` names the setting that asked.
    #[error("{field}: the source has no column `{column}` (it has: {columns})")]
    NoColumn {
        /// The setting or input that named the column.
        field: &'static str,
        /// The column asked for.
        column: String,
        /// The columns there are.
        columns: String,
    },
    /// Template tokens no column provides.
    #[error("template: {0}")]
    Tokens(String),
}

impl PlanError {
    /// The input field to blame.
    pub fn field(&self) -> &'static str {
        match self {
            PlanError::NoColumn { field, .. } => field,
            PlanError::Tokens(_) => "template_id",
        }
    }
}

/// Turns every row of `table` into a message or a row issue.
///
/// # Errors
///
/// Fails when the phone or key column is missing, or a template token names no column.
pub fn plan(table: &Table, recipe: &Recipe<'_>, progress: &Progress) -> Result<Plan, PlanError> {
    let column = |field: &'static str, name: &str| {
        table.column(name).ok_or_else(|| PlanError::NoColumn {
            field,
            column: name.to_owned(),
            columns: table.columns.join(", "),
        })
    };
    let phone = column("phone_column", recipe.phone_column)?;
    let key = recipe
        .key_column
        .map(|name| column("key_column", name))
        .transpose()?;
    let unknown = recipe.template.unknown_tokens(&table.columns);
    if !unknown.is_empty() {
        let words: Vec<String> = unknown.iter().map(ToString::to_string).collect();
        return Err(PlanError::Tokens(words.join("; ")));
    }
    // Each token's column, looked up once rather than once a row.
    let token_columns: HashMap<&str, usize> = recipe
        .template
        .tokens()
        .filter_map(|t| table.column(&t.name).map(|i| (t.key.as_str(), i)))
        .collect();

    let mut out = Plan {
        messages: Vec::with_capacity(table.rows.len()),
        ..Plan::default()
    };
    let mut seen_keys: HashMap<String, u64> = HashMap::new();
    for (i, (number, cells)) in table.rows.iter().enumerate() {
        let number = *number;
        match row(recipe, table, cells, number, phone, key, &token_columns) {
            Err(issue) => out.errors.push(issue),
            Ok(planned) => match &planned.key {
                Some(k) if recipe.loaded_keys.contains_key(k) => out.skipped.push(RowIssue {
                    row: number,
                    column: key.map(|i| table.columns[i].clone()),
                    reason: format!(
                        "`{k}` was already loaded for this reference date (load {})",
                        recipe.loaded_keys[k]
                    ),
                }),
                Some(k) if seen_keys.contains_key(k) => out.skipped.push(RowIssue {
                    row: number,
                    column: key.map(|i| table.columns[i].clone()),
                    reason: format!("`{k}` repeats the key of row {}", seen_keys[k]),
                }),
                Some(k) => {
                    seen_keys.insert(k.clone(), number);
                    out.messages.push(planned);
                }
                None => out.messages.push(planned),
            },
        }
        if (i + 1) % PROGRESS_EVERY == 0 || i + 1 == table.rows.len() {
            store_counts(progress, &out);
        }
    }
    Ok(out)
}

fn store_counts(progress: &Progress, plan: &Plan) {
    progress
        .loaded
        .store(plan.messages.len() as u64, Ordering::Relaxed);
    progress
        .skipped
        .store(plan.skipped.len() as u64, Ordering::Relaxed);
    progress
        .failed
        .store(plan.errors.len() as u64, Ordering::Relaxed);
}

fn row(
    recipe: &Recipe<'_>,
    table: &Table,
    cells: &[Cell],
    number: u64,
    phone: usize,
    key: Option<usize>,
    token_columns: &HashMap<&str, usize>,
) -> Result<Planned, RowIssue> {
    let issue = |column: Option<usize>, reason: String| RowIssue {
        row: number,
        column: column.map(|i| table.columns[i].clone()),
        reason,
    };
    let cell = |i: usize| cells.get(i).unwrap_or(&Cell::Empty);

    let raw_phone =
        Format::plain(cell(phone)).ok_or_else(|| issue(Some(phone), "no phone number".into()))?;
    let to = PhoneNumber::parse(&raw_phone, recipe.region).map_err(|e| {
        issue(
            Some(phone),
            format!("`{raw_phone}` is not a valid phone: {e}"),
        )
    })?;
    if (recipe.suppressed)(to.as_str()) {
        return Err(issue(
            Some(phone),
            format!("{} is on the suppression list (opted out)", to.as_str()),
        ));
    }
    let key = match key {
        Some(k) => {
            Some(Format::plain(cell(k)).ok_or_else(|| issue(Some(k), "the key is empty".into()))?)
        }
        None => None,
    };
    let body = recipe
        .template
        .fill(|token| {
            token_columns
                .get(token.key.as_str())
                .and_then(|&i| recipe.format.write(cell(i)))
        })
        .map_err(|missing| {
            let column = token_columns
                .get(crate::domain::fold(&missing.token).as_str())
                .copied();
            issue(column, format!("no value for <{}>", missing.token))
        })?;
    let signed = (recipe.sign)(&body);
    let length = signed.chars().count();
    if length > recipe.max_length {
        return Err(issue(
            None,
            format!(
                "the text has {length} characters, over the template's limit of {}",
                recipe.max_length
            ),
        ));
    }
    let text = MessageText::parse(&signed).map_err(|e| issue(None, e.to_string()))?;
    Ok(Planned {
        row: number,
        to: to.as_str().to_owned(),
        encoding: text.encoding(),
        segments: text.segments(),
        text: text.as_str().to_owned(),
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: &[&[Cell]]) -> Table {
        Table {
            columns: vec![
                "Nombre".into(),
                "Celular".into(),
                "Monto".into(),
                "Cuota".into(),
            ],
            rows: rows
                .iter()
                .enumerate()
                .map(|(i, r)| (i as u64 + 2, r.to_vec()))
                .collect(),
        }
    }

    fn text(s: &str) -> Cell {
        Cell::Text(s.into())
    }

    static FORMAT: std::sync::LazyLock<Format> = std::sync::LazyLock::new(Format::default);

    fn recipe<'a>(template: &'a Template, loaded: &'a HashMap<String, String>) -> Recipe<'a> {
        Recipe {
            template,
            max_length: 60,
            phone_column: "celular",
            key_column: None,
            loaded_keys: loaded,
            format: &FORMAT,
            region: Region::parse("BO").unwrap(),
            sign: &|t: &str| format!("{t} -Coop"),
            suppressed: &|_: &str| false,
        }
    }

    fn run(table: &Table, key: Option<&str>, loaded: &HashMap<String, String>) -> Plan {
        let template = Template::parse("Hola <nombre>, su cuota <cuota> de Bs <monto>").unwrap();
        let recipe = Recipe {
            key_column: key,
            ..recipe(&template, loaded)
        };
        plan(table, &recipe, &Progress::default()).unwrap()
    }

    #[test]
    fn each_row_is_a_message_or_a_reason() {
        let t = table(&[
            &[
                text("Ana"),
                Cell::Float(70123456.0),
                Cell::Float(150.5),
                Cell::Int(3),
            ],
            &[text("Luis"), Cell::Empty, Cell::Float(10.0), Cell::Int(1)],
            &[text("Eva"), text("12"), Cell::Float(10.0), Cell::Int(1)],
            &[
                Cell::Empty,
                text("71234567"),
                Cell::Float(10.0),
                Cell::Int(1),
            ],
            &[
                text(&"x".repeat(40)),
                text("71234567"),
                Cell::Float(10.0),
                Cell::Int(1),
            ],
        ]);
        let plan = run(&t, None, &HashMap::new());
        assert_eq!(plan.messages.len(), 1);
        assert_eq!(plan.messages[0].to, "+59170123456");
        assert_eq!(
            plan.messages[0].text,
            "Hola Ana, su cuota 3 de Bs 150,50 -Coop"
        );
        let reasons: Vec<(u64, Option<&str>)> = plan
            .errors
            .iter()
            .map(|e| (e.row, e.column.as_deref()))
            .collect();
        assert_eq!(
            reasons,
            [
                (3, Some("Celular")),
                (4, Some("Celular")),
                (5, Some("Nombre")),
                (6, None)
            ]
        );
        assert!(plan.errors[0].reason.contains("no phone"));
        assert!(plan.errors[2].reason.contains("<nombre>"));
        assert!(
            plan.errors[3]
                .reason
                .contains("over the template's limit of 60")
        );
    }

    #[test]
    fn keys_already_loaded_or_repeated_are_skipped() {
        let t = table(&[
            &[
                text("Ana"),
                text("70123456"),
                Cell::Float(1.0),
                Cell::Int(7),
            ],
            &[
                text("Luis"),
                text("70123457"),
                Cell::Float(1.0),
                Cell::Int(8),
            ],
            &[
                text("Eva"),
                text("70123458"),
                Cell::Float(1.0),
                Cell::Int(8),
            ],
        ]);
        let loaded = HashMap::from([("7".to_owned(), "L1".to_owned())]);
        let plan = run(&t, Some("cuota"), &loaded);
        assert_eq!(plan.messages.len(), 1);
        assert_eq!(plan.messages[0].key.as_deref(), Some("8"));
        assert_eq!(plan.skipped.len(), 2);
        assert!(plan.skipped[0].reason.contains("load L1"));
        assert!(plan.skipped[1].reason.contains("row 3"));
    }

    #[test]
    fn numbers_on_the_suppression_list_are_row_errors() {
        let t = table(&[
            &[
                text("Ana"),
                text("70123456"),
                Cell::Float(1.0),
                Cell::Int(1),
            ],
            &[
                text("Luis"),
                text("70123457"),
                Cell::Float(1.0),
                Cell::Int(1),
            ],
        ]);
        let template = Template::parse("Hola <nombre>").unwrap();
        let none = HashMap::new();
        let recipe = Recipe {
            suppressed: &|phone: &str| phone == "+59170123457",
            ..recipe(&template, &none)
        };
        let plan = plan(&t, &recipe, &Progress::default()).unwrap();
        assert_eq!(plan.messages.len(), 1);
        assert_eq!(plan.messages[0].to, "+59170123456");
        assert_eq!(plan.errors.len(), 1);
        assert_eq!(plan.errors[0].row, 3);
        assert!(plan.errors[0].reason.contains("suppression list"));
    }

    #[test]
    fn a_missing_column_stops_the_whole_load() {
        let template = Template::parse("Hola <cliente>").unwrap();
        let none = HashMap::new();
        let recipe = recipe(&template, &none);
        let err = plan(&table(&[]), &recipe, &Progress::default()).unwrap_err();
        assert_eq!(err.field(), "template_id");
        let recipe = Recipe {
            phone_column: "telefono",
            ..recipe
        };
        let err = plan(&table(&[]), &recipe, &Progress::default()).unwrap_err();
        assert_eq!(err.field(), "phone_column");
    }
}
