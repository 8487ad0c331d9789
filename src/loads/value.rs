//! The values a load reads from a sheet or a query, and how they are written into a message the
//! way the organisation writes amounts and dates.

use chrono::{NaiveDate, NaiveDateTime};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// One value of a row, as typed as its source could tell.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// Nothing: an empty cell or SQL `NULL`.
    Empty,
    /// Text, kept as it came.
    Text(String),
    /// A whole number.
    Int(i64),
    /// A number from a spreadsheet or a floating-point column.
    Float(f64),
    /// An exact number (SQL `NUMERIC`/`DECIMAL`).
    Decimal(Decimal),
    /// A day.
    Date(NaiveDate),
    /// A moment without a zone.
    DateTime(NaiveDateTime),
    /// Yes or no.
    Bool(bool),
}

/// How amounts and dates are written into messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Format {
    /// The decimal separator: `,` (the default, `1.234,50`) or `.` (`1,234.50`).
    pub decimal_separator: char,
    /// The separator of thousands, or none (the default): `.`, `,`, ` ` or empty.
    #[serde(default)]
    pub thousands_separator: Option<char>,
    /// Decimal places a number with a fraction is written with (default 2).
    pub decimals: u32,
    /// How a date is written: `dd`, `mm`, `yyyy` and `yy` stand for its parts (default
    /// `dd/mm/yyyy`).
    pub date_format: String,
}

impl Default for Format {
    fn default() -> Format {
        Format {
            decimal_separator: ',',
            thousands_separator: None,
            decimals: 2,
            date_format: "dd/mm/yyyy".into(),
        }
    }
}

/// The most decimal places a format may ask for.
pub const MAX_DECIMALS: u32 = 6;

impl Format {
    /// The key the format is stored under in the settings.
    pub const KEY: &'static str = "loads.format";

    /// Checks the format, naming the field that is wrong.
    ///
    /// # Errors
    ///
    /// Returns the field and the reason.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if !matches!(self.decimal_separator, ',' | '.') {
            return Err((
                "decimal_separator",
                "the decimal separator is `,` or `.`".into(),
            ));
        }
        if let Some(t) = self.thousands_separator {
            if !matches!(t, '.' | ',' | ' ' | '\'') {
                return Err((
                    "thousands_separator",
                    "the thousands separator is `.`, `,`, a space, `'` or none".into(),
                ));
            }
            if t == self.decimal_separator {
                return Err((
                    "thousands_separator",
                    "the thousands separator must differ from the decimal one".into(),
                ));
            }
        }
        if self.decimals > MAX_DECIMALS {
            return Err(("decimals", format!("at most {MAX_DECIMALS} decimal places")));
        }
        let has_part = ["dd", "mm", "yy"]
            .iter()
            .any(|p| self.date_format.contains(p));
        if !has_part || self.date_format.chars().count() > 40 {
            return Err((
                "date_format",
                "a date format of up to 40 characters using dd, mm, yyyy or yy, e.g. dd/mm/yyyy"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The cell written as text for a message; `None` for an empty cell, which a template
    /// cannot be filled with.
    pub fn write(&self, cell: &Cell) -> Option<String> {
        match cell {
            Cell::Empty => None,
            Cell::Text(t) => {
                let t = t.trim();
                (!t.is_empty()).then(|| t.to_owned())
            }
            Cell::Int(n) => Some(self.number(&n.to_string())),
            Cell::Float(f) if !f.is_finite() => None,
            Cell::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => {
                Some(self.number(&format!("{f:.0}")))
            }
            Cell::Float(f) => Some(self.number(&format!("{f:.*}", self.decimals as usize))),
            Cell::Decimal(d) if d.fract().is_zero() => Some(self.number(&d.trunc().to_string())),
            Cell::Decimal(d) => {
                // Amounts round half away from zero, as people round money (150.125 is 150.13).
                let rounded = d.round_dp_with_strategy(
                    self.decimals,
                    rust_decimal::RoundingStrategy::MidpointAwayFromZero,
                );
                Some(self.number(&format!("{rounded:.*}", self.decimals as usize)))
            }
            Cell::Date(d) => Some(self.date(*d)),
            Cell::DateTime(t) if t.time() == chrono::NaiveTime::MIN => Some(self.date(t.date())),
            Cell::DateTime(t) => Some(format!("{} {}", self.date(t.date()), t.format("%H:%M"))),
            Cell::Bool(true) => Some("1".into()),
            Cell::Bool(false) => Some("0".into()),
        }
    }

    /// The cell as text without formatting, for a key or a phone number: `5.0` from a sheet
    /// is `5`, a date is `yyyy-mm-dd`.
    pub fn plain(cell: &Cell) -> Option<String> {
        match cell {
            Cell::Empty => None,
            Cell::Text(t) => {
                let t = t.trim();
                (!t.is_empty()).then(|| t.to_owned())
            }
            Cell::Int(n) => Some(n.to_string()),
            Cell::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => Some(format!("{f:.0}")),
            Cell::Float(f) => Some(f.to_string()),
            Cell::Decimal(d) => Some(d.normalize().to_string()),
            Cell::Date(d) => Some(d.format("%Y-%m-%d").to_string()),
            Cell::DateTime(t) => Some(t.format("%Y-%m-%d %H:%M:%S").to_string()),
            Cell::Bool(b) => Some(u8::from(*b).to_string()),
        }
    }

    /// A number given as plain digits with `.` for its fraction, written with this format's
    /// separators.
    fn number(&self, plain: &str) -> String {
        let (sign, digits) = match plain.strip_prefix('-') {
            Some(rest) => ("-", rest),
            None => ("", plain),
        };
        let (whole, fraction) = match digits.split_once('.') {
            Some((w, f)) => (w, Some(f)),
            None => (digits, None),
        };
        let mut out = String::with_capacity(plain.len() + whole.len() / 3 + 1);
        out.push_str(sign);
        for (i, digit) in whole.chars().enumerate() {
            if i > 0
                && (whole.len() - i) % 3 == 0
                && let Some(t) = self.thousands_separator
            {
                out.push(t);
            }
            out.push(digit);
        }
        if let Some(fraction) = fraction {
            out.push(self.decimal_separator);
            out.push_str(fraction);
        }
        out
    }

    fn date(&self, date: NaiveDate) -> String {
        let pattern = self
            .date_format
            .replace('%', "%%")
            .replace("yyyy", "%Y")
            .replace("yy", "%y")
            .replace("dd", "%d")
            .replace("mm", "%m");
        date.format(&pattern).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format(decimal: char, thousands: Option<char>) -> Format {
        Format {
            decimal_separator: decimal,
            thousands_separator: thousands,
            ..Format::default()
        }
    }

    #[test]
    fn numbers_follow_the_separators() {
        let comma = format(',', Some('.'));
        assert_eq!(comma.write(&Cell::Float(1234.5)).unwrap(), "1.234,50");
        assert_eq!(comma.write(&Cell::Float(-1234567.0)).unwrap(), "-1.234.567");
        assert_eq!(comma.write(&Cell::Int(999)).unwrap(), "999");
        let point = format('.', Some(','));
        assert_eq!(point.write(&Cell::Float(1234.5)).unwrap(), "1,234.50");
        let bare = Format::default();
        assert_eq!(bare.write(&Cell::Float(25.5)).unwrap(), "25,50");
        assert_eq!(bare.write(&Cell::Float(3.0)).unwrap(), "3");
    }

    #[test]
    fn decimals_are_rounded_to_the_places_asked() {
        let d: Decimal = "150.125".parse().unwrap();
        assert_eq!(
            Format::default().write(&Cell::Decimal(d)).unwrap(),
            "150,13"
        );
        let whole: Decimal = "150.00".parse().unwrap();
        assert_eq!(
            Format::default().write(&Cell::Decimal(whole)).unwrap(),
            "150"
        );
        let three = Format {
            decimals: 3,
            ..Format::default()
        };
        assert_eq!(three.write(&Cell::Float(0.5)).unwrap(), "0,500");
    }

    #[test]
    fn dates_follow_the_pattern() {
        let day = NaiveDate::from_ymd_opt(2026, 3, 7).unwrap();
        assert_eq!(
            Format::default().write(&Cell::Date(day)).unwrap(),
            "07/03/2026"
        );
        let us = Format {
            date_format: "mm-dd-yy".into(),
            ..Format::default()
        };
        assert_eq!(us.write(&Cell::Date(day)).unwrap(), "03-07-26");
        let midnight = day.and_hms_opt(0, 0, 0).unwrap();
        assert_eq!(
            Format::default().write(&Cell::DateTime(midnight)).unwrap(),
            "07/03/2026"
        );
        let later = day.and_hms_opt(14, 5, 0).unwrap();
        assert_eq!(
            Format::default().write(&Cell::DateTime(later)).unwrap(),
            "07/03/2026 14:05"
        );
    }

    #[test]
    fn empty_cells_have_no_value() {
        assert_eq!(Format::default().write(&Cell::Empty), None);
        assert_eq!(Format::default().write(&Cell::Text("  ".into())), None);
        assert_eq!(Format::plain(&Cell::Float(70123456.0)).unwrap(), "70123456");
    }

    #[test]
    fn bad_formats_name_their_field() {
        assert_eq!(
            format(';', None).check().unwrap_err().0,
            "decimal_separator"
        );
        assert_eq!(
            format(',', Some(',')).check().unwrap_err().0,
            "thousands_separator"
        );
        let no_parts = Format {
            date_format: "day".into(),
            ..Format::default()
        };
        assert_eq!(no_parts.check().unwrap_err().0, "date_format");
        assert!(Format::default().check().is_ok());
    }
}
