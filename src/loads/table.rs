//! A table of rows with named columns, whatever it was read from: a spreadsheet or a query.

use std::io::Cursor;

use calamine::{Data, Ods, Range, Reader, Sheets, Xls, Xlsx, open_workbook_from_rs};

use super::value::Cell;
use crate::domain::fold;

/// Rows under a header.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    /// The column names, as the source wrote them.
    pub columns: Vec<String>,
    /// The rows, each with one cell a column, and the number a person finds it by (the sheet's
    /// row number, or the query's row counted from 1).
    pub rows: Vec<(u64, Vec<Cell>)>,
}

impl Table {
    /// The index of the column named `name`, matched without regard to case or accents.
    pub fn column(&self, name: &str) -> Option<usize> {
        let wanted = fold(name);
        self.columns.iter().position(|c| fold(c) == wanted)
    }
}

/// Why a file could not be read as a table.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SheetError {
    /// Not a spreadsheet the reader knows, or a damaged one.
    #[error("the file is not a readable .xlsx, .xls or .ods spreadsheet: {0}")]
    Unreadable(String),
    /// The sheet asked for is not in the workbook.
    #[error("the workbook has no sheet named `{0}`")]
    NoSuchSheet(String),
    /// Nothing in the sheet.
    #[error("the sheet is empty; its first row must name the columns")]
    Empty,
    /// The header row is not usable.
    #[error("{0}")]
    Header(String),
}

/// Reads the first sheet of a workbook (or the one named `sheet`); its first row names the
/// columns. The format is told by the file name's extension, or found by trying each.
///
/// # Errors
///
/// See [`SheetError`].
pub fn read_workbook(
    bytes: Vec<u8>,
    file_name: &str,
    sheet: Option<&str>,
) -> Result<Table, SheetError> {
    let extension = file_name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    let cursor = Cursor::new(bytes);
    let unreadable = |e: &dyn std::fmt::Display| SheetError::Unreadable(e.to_string());
    let mut workbook: Sheets<Cursor<Vec<u8>>> = match extension.as_str() {
        "xlsx" | "xlsm" => {
            Sheets::Xlsx(open_workbook_from_rs::<Xlsx<_>, _>(cursor).map_err(|e| unreadable(&e))?)
        }
        "xls" => {
            Sheets::Xls(open_workbook_from_rs::<Xls<_>, _>(cursor).map_err(|e| unreadable(&e))?)
        }
        "ods" => {
            Sheets::Ods(open_workbook_from_rs::<Ods<_>, _>(cursor).map_err(|e| unreadable(&e))?)
        }
        _ => calamine::open_workbook_auto_from_rs(cursor).map_err(|e| unreadable(&e))?,
    };
    let range = match sheet {
        Some(name) => {
            if !workbook.sheet_names().iter().any(|n| n == name) {
                return Err(SheetError::NoSuchSheet(name.to_owned()));
            }
            workbook.worksheet_range(name).map_err(|e| unreadable(&e))?
        }
        None => workbook
            .worksheet_range_at(0)
            .ok_or(SheetError::Empty)?
            .map_err(|e| unreadable(&e))?,
    };
    from_range(&range)
}

fn from_range(range: &Range<Data>) -> Result<Table, SheetError> {
    let Some((first_row, _)) = range.start() else {
        return Err(SheetError::Empty);
    };
    let mut rows = range.rows();
    let header = rows.next().ok_or(SheetError::Empty)?;
    let columns = header_names(header)?;
    let width = columns.len();
    let mut table = Table {
        columns,
        rows: Vec::with_capacity(range.height().saturating_sub(1)),
    };
    for (index, row) in rows.enumerate() {
        let cells: Vec<Cell> = row.iter().take(width).map(cell).collect();
        if cells.iter().all(|c| matches!(c, Cell::Empty)) {
            continue;
        }
        // Sheet rows are numbered from 1, and the header is the range's first row.
        let number = u64::from(first_row) + index as u64 + 2;
        table.rows.push((number, cells));
    }
    Ok(table)
}

fn header_names(header: &[Data]) -> Result<Vec<String>, SheetError> {
    // Trailing empty header cells are formatting, not columns.
    let used = header
        .iter()
        .rposition(|d| !matches!(d, Data::Empty))
        .map_or(0, |last| last + 1);
    if used == 0 {
        return Err(SheetError::Empty);
    }
    let mut names: Vec<String> = Vec::with_capacity(used);
    for (i, d) in header[..used].iter().enumerate() {
        let name = match d {
            Data::String(s) => s.trim().to_owned(),
            Data::Empty => String::new(),
            other => other.to_string().trim().to_owned(),
        };
        if name.is_empty() {
            return Err(SheetError::Header(format!(
                "column {} of the header row has no name",
                column_letters(i)
            )));
        }
        if names.iter().any(|n| fold(n) == fold(&name)) {
            return Err(SheetError::Header(format!(
                "the header row names `{name}` twice (column {})",
                column_letters(i)
            )));
        }
        names.push(name);
    }
    Ok(names)
}

/// A spreadsheet's column letters for a 0-based index: A, B, …, Z, AA, …
pub fn column_letters(index: usize) -> String {
    let mut n = index + 1;
    let mut letters = Vec::new();
    while n > 0 {
        let rem = (n - 1) % 26;
        letters.push(b'A' + rem as u8);
        n = (n - 1) / 26;
    }
    letters.reverse();
    String::from_utf8(letters).unwrap_or_default()
}

fn cell(data: &Data) -> Cell {
    match data {
        Data::Empty | Data::Error(_) => Cell::Empty,
        Data::String(s) => Cell::Text(s.clone()),
        Data::Int(n) => Cell::Int(*n),
        Data::Float(f) => Cell::Float(*f),
        Data::Bool(b) => Cell::Bool(*b),
        Data::DateTime(dt) => match dt.as_datetime() {
            Some(t) if dt.is_datetime() => Cell::DateTime(t),
            _ => Cell::Float(dt.as_f64()),
        },
        Data::DateTimeIso(s) => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(Cell::Date)
            .or_else(|_| s.parse::<chrono::NaiveDateTime>().map(Cell::DateTime))
            .unwrap_or_else(|_| Cell::Text(s.clone())),
        Data::DurationIso(s) => Cell::Text(s.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_letters_count_like_a_spreadsheet() {
        assert_eq!(column_letters(0), "A");
        assert_eq!(column_letters(25), "Z");
        assert_eq!(column_letters(26), "AA");
        assert_eq!(column_letters(701), "ZZ");
        assert_eq!(column_letters(702), "AAA");
    }

    #[test]
    fn rows_keep_their_sheet_numbers_and_skip_blank_ones() {
        let mut range = Range::new((2, 0), (5, 1));
        range.set_value((2, 0), Data::String("Nombre".into()));
        range.set_value((2, 1), Data::String("Celular".into()));
        range.set_value((3, 0), Data::String("Ana".into()));
        range.set_value((3, 1), Data::Float(70123456.0));
        range.set_value((5, 0), Data::String("Luis".into()));
        let table = from_range(&range).unwrap();
        assert_eq!(table.columns, ["Nombre", "Celular"]);
        let numbers: Vec<u64> = table.rows.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, [4, 6]);
        assert_eq!(table.column("CELULAR"), Some(1));
    }

    #[test]
    fn a_header_named_twice_is_refused() {
        let mut range = Range::new((0, 0), (1, 1));
        range.set_value((0, 0), Data::String("Año".into()));
        range.set_value((0, 1), Data::String("ano".into()));
        let err = from_range(&range).unwrap_err();
        assert!(err.to_string().contains("twice (column B)"), "{err}");
    }

    #[test]
    fn garbage_is_unreadable() {
        let err = read_workbook(b"not a workbook".to_vec(), "x.xlsx", None).unwrap_err();
        assert!(matches!(err, SheetError::Unreadable(_)));
    }
}
