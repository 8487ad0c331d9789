//! Reading a prepaid line's balance out of the operator's USSD answer: an amount, a currency
//! and, when the answer gives one, the date the credit expires. Operators write these answers for
//! people, each in its own way ("Tu saldo es Bs 25,50 vigente hasta 31/12/2026", "Saldo: 12.30
//! Bs.", "Your balance is USD 3.75"), so the reader looks for a number next to a currency or
//! after a word such as "saldo" or "balance", and gives up (the answer is kept as text) rather
//! than guess at a menu or a sentence without either.
//!
//! Numbers are read the way Latin America writes them: `25,50` and `12.30` are decimals;
//! `1.234,56` and `1,234.56` have thousands and decimals; one separator followed by exactly
//! three digits (`1.500`, `15,000`) is taken for thousands.

use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::Decimal;

/// A balance read from an answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Balance {
    /// The amount.
    pub amount: Decimal,
    /// The currency as the operator wrote it, tidied (`Bs`, `$`, `S/`, `USD`), if it did.
    pub currency: Option<String>,
    /// When the credit expires, if the answer says.
    pub expires: Option<NaiveDate>,
}

/// Currency marks, as written, and how they are shown. Longer forms come first so that `US$`
/// is not read as `$`.
const CURRENCIES: [(&str, &str); 32] = [
    ("bs.s", "Bs.S"),
    ("us$", "US$"),
    ("usd", "USD"),
    ("bob", "BOB"),
    ("bs.", "Bs"),
    ("bs", "Bs"),
    ("s/.", "S/"),
    ("s/", "S/"),
    ("pen", "PEN"),
    ("gs.", "Gs"),
    ("gs", "Gs"),
    ("₲", "Gs"),
    ("pyg", "PYG"),
    ("gtq", "GTQ"),
    ("hnl", "HNL"),
    ("c$", "C$"),
    ("nio", "NIO"),
    ("₡", "₡"),
    ("crc", "CRC"),
    ("mxn", "MXN"),
    ("cop", "COP"),
    ("clp", "CLP"),
    ("ars", "ARS"),
    ("uyu", "UYU"),
    ("$u", "$U"),
    ("r$", "R$"),
    ("brl", "BRL"),
    ("eur", "EUR"),
    ("€", "€"),
    ("ves", "VES"),
    ("q", "Q"),
    ("$", "$"),
];

/// Words after which the first number is the balance.
const KEYWORDS: [&str; 6] = [
    "saldo",
    "balance",
    "credito",
    "crédito",
    "disponible",
    "tienes",
];

/// A number found in the text: where it is and what it is worth.
#[derive(Debug)]
struct Found {
    start: usize,
    end: usize,
    amount: Decimal,
}

/// Reads the balance out of an operator's answer; `None` when the answer holds no number next
/// to a currency or after a balance word, or is a menu.
pub fn parse(text: &str) -> Option<Balance> {
    if is_menu(text) {
        return None;
    }
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    // ASCII lower case keeps every byte where it was, so places found in it are places in
    // `text`.
    let lower = text.to_ascii_lowercase();

    // 1. Dates and times are taken out first, so that 31/12/2026 is not read as an amount.
    let mut taken: Vec<(usize, usize)> = Vec::new();
    let mut expires = None;
    for (start, end, date) in dates(text) {
        taken.push((start, end));
        if expires.is_none() {
            expires = date;
        }
    }

    // 2. Every other number that can be an amount, with its currency before or after it.
    let numbers: Vec<Found> = numbers(&chars)
        .into_iter()
        .filter(|n| !taken.iter().any(|(s, e)| n.start < *e && *s < n.end))
        .filter(|n| !is_not_money(text, &lower, n))
        .collect();
    let with_currency =
        |n: &Found| currency_before(text, n.start).or_else(|| currency_after(text, n.end));

    // 3. The first number soon after a balance word; else the first after it with a currency;
    // else the first with a currency anywhere.
    let keyword_end = KEYWORDS
        .iter()
        .filter_map(|k| lower.find(k).map(|at| at + k.len()))
        .min();
    let after_keyword = |n: &&Found| keyword_end.is_some_and(|k| n.start >= k);
    let soon_after = |n: &&Found| keyword_end.is_some_and(|k| n.start >= k && n.start - k <= NEAR);
    let chosen = numbers
        .iter()
        .find(soon_after)
        .or_else(|| {
            numbers
                .iter()
                .filter(after_keyword)
                .find(|n| with_currency(n).is_some())
        })
        .or_else(|| numbers.iter().find(|n| with_currency(n).is_some()))?;
    Some(Balance {
        amount: chosen.amount,
        currency: with_currency(chosen),
        expires,
    })
}

/// How far after a balance word (in bytes) its amount is looked for first.
const NEAR: usize = 40;

/// Units after which a number is a quantity of something else than money.
const UNITS: [&str; 14] = [
    "mb", "gb", "kb", "megas", "sms", "mensajes", "min", "minutos", "seg", "segundos", "dias",
    "días", "hrs", "horas",
];

/// Whether a number is plainly not an amount: part of a USSD code (`*611#`), of a phone number
/// (`800-10-2000`, or seven digits and more), or a quantity of data, messages or time.
fn is_not_money(text: &str, lower: &str, n: &Found) -> bool {
    let before = text[..n.start].chars().next_back();
    let after = text[n.end..].chars().next();
    let digit_beyond = |s: &str| s.chars().nth(1).is_some_and(|c| c.is_ascii_digit());
    let code = matches!(before, Some('*' | '#')) || after == Some('#');
    let phone = (before == Some('-')
        && text[..n.start]
            .chars()
            .rev()
            .nth(1)
            .is_some_and(|c| c.is_ascii_digit()))
        || (after == Some('-') && digit_beyond(&text[n.end..]))
        || (n.end - n.start >= 7 && text[n.start..n.end].chars().all(|c| c.is_ascii_digit()));
    let rest = lower[n.end..].trim_start();
    let unit = UNITS.iter().any(|u| {
        rest.strip_prefix(u)
            .is_some_and(|tail| tail.chars().next().is_none_or(|c| !c.is_alphanumeric()))
    });
    code || phone || unit
}

/// Whether the text is a menu: two lines or more that start with `1.`, `2)` and the like.
fn is_menu(text: &str) -> bool {
    text.lines()
        .filter(|line| {
            let line = line.trim_start();
            let digits = line.chars().take_while(char::is_ascii_digit).count();
            (1..=2).contains(&digits)
                && line[digits..].starts_with(['.', ')', '-', ':'])
                && line[digits + 1..].starts_with(' ')
        })
        .count()
        >= 2
}

/// The numbers of the text: digits with `.` or `,` between them.
fn numbers(chars: &[(usize, char)]) -> Vec<Found> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].1.is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        let mut end = i;
        while end < chars.len() {
            let c = chars[end].1;
            let joins = (c == '.' || c == ',')
                && chars.get(end + 1).is_some_and(|(_, n)| n.is_ascii_digit());
            if c.is_ascii_digit() || joins {
                end += 1;
            } else {
                break;
            }
        }
        let written: String = chars[start..end].iter().map(|(_, c)| *c).collect();
        let byte_end = chars.get(end).map_or_else(
            || chars.last().map_or(0, |(b, c)| b + c.len_utf8()),
            |(b, _)| *b,
        );
        if let Some(amount) = amount_of(&written) {
            out.push(Found {
                start: chars[start].0,
                end: byte_end,
                amount,
            });
        }
        i = end;
    }
    out
}

/// The value of a written number, by the rules in the module's notes.
fn amount_of(written: &str) -> Option<Decimal> {
    let dots = written.matches('.').count();
    let commas = written.matches(',').count();
    let plain = match (dots, commas) {
        (0, 0) => written.to_owned(),
        (_, 0) | (0, _) => {
            let sep = if dots > 0 { '.' } else { ',' };
            let last = written.rsplit(sep).next().unwrap_or_default();
            let thousands = dots + commas > 1 || last.len() == 3;
            if thousands {
                written.replace(sep, "")
            } else {
                written.replace(sep, ".")
            }
        }
        _ => {
            // Both: the one that comes last separates the decimals.
            let last_dot = written.rfind('.').unwrap_or(0);
            let last_comma = written.rfind(',').unwrap_or(0);
            let (thousands, decimal) = if last_dot > last_comma {
                (',', '.')
            } else {
                ('.', ',')
            };
            written.replace(thousands, "").replace(decimal, ".")
        }
    };
    Decimal::from_str(&plain).ok()
}

/// The currency written just before byte `at` (with at most one space between), tidied.
fn currency_before(text: &str, at: usize) -> Option<String> {
    let before = text[..at].trim_end_matches(' ');
    if before.len() + 1 < at {
        return None;
    }
    let lower = before.to_lowercase();
    CURRENCIES.iter().find_map(|(mark, shown)| {
        // Ends with the mark, so cutting it off leaves a whole string.
        let rest = lower.strip_suffix(mark)?;
        let starts_word = rest.chars().last().is_none_or(|c| !c.is_alphanumeric());
        starts_word.then(|| (*shown).to_owned())
    })
}

/// The currency written just after byte `at` (with at most one space between), tidied.
fn currency_after(text: &str, at: usize) -> Option<String> {
    let after = &text[at..];
    let trimmed = after.trim_start_matches(' ');
    if after.len() - trimmed.len() > 1 {
        return None;
    }
    let lower = trimmed.to_lowercase();
    CURRENCIES.iter().find_map(|(mark, shown)| {
        let rest = lower.strip_prefix(mark)?;
        let ends_word = rest.chars().next().is_none_or(|c| !c.is_alphanumeric());
        ends_word.then(|| (*shown).to_owned())
    })
}

/// The dates (`31/12/2026`, `31-12-26`, `2026-12-31`) and times (`23:59`) of the text: where each
/// is, and the date when it is a valid one.
fn dates(text: &str) -> Vec<(usize, usize, Option<NaiveDate>)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() || (i > 0 && bytes[i - 1].is_ascii_digit()) {
            i += 1;
            continue;
        }
        // Up to three groups of digits joined by one kind of separator.
        let mut groups: Vec<&str> = Vec::new();
        let mut sep = None;
        let mut j = i;
        loop {
            let start = j;
            while j < bytes.len() && bytes[j].is_ascii_digit() {
                j += 1;
            }
            groups.push(&text[start..j]);
            let next = bytes.get(j).copied();
            let joins = next.is_some_and(|c| matches!(c, b'/' | b'-' | b':'))
                && bytes.get(j + 1).is_some_and(u8::is_ascii_digit)
                && sep.is_none_or(|s| Some(s) == next)
                && groups.len() < 3;
            if !joins {
                break;
            }
            sep = next;
            j += 1;
        }
        let found = match (groups.as_slice(), sep) {
            ([y, m, d], Some(b'-')) if y.len() == 4 => Some(ymd(y, m, d)),
            ([d, m, y], Some(b'/' | b'-')) if d.len() <= 2 && m.len() <= 2 => Some(ymd(y, m, d)),
            ([h, m], Some(b':')) if h.len() <= 2 && m.len() == 2 => Some(None),
            _ => None,
        };
        if let Some(date) = found {
            out.push((i, j, date));
        }
        i = j.max(i + 1);
    }
    out
}

fn ymd(y: &str, m: &str, d: &str) -> Option<NaiveDate> {
    let mut year: i32 = y.parse().ok()?;
    if y.len() == 2 {
        year += 2000;
    }
    NaiveDate::from_ymd_opt(year, m.parse().ok()?, d.parse().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Option<(String, Option<String>, Option<String>)> {
        parse(text).map(|b| {
            (
                b.amount.to_string(),
                b.currency,
                b.expires.map(|d| d.to_string()),
            )
        })
    }

    fn some(
        amount: &str,
        currency: Option<&str>,
        expires: Option<&str>,
    ) -> Option<(String, Option<String>, Option<String>)> {
        Some((
            amount.to_owned(),
            currency.map(str::to_owned),
            expires.map(str::to_owned),
        ))
    }

    #[test]
    fn the_usual_spanish_and_english_answers_are_read() {
        let cases = [
            (
                "Tu saldo es Bs 25,50 vigente hasta 31/12/2026",
                some("25.50", Some("Bs"), Some("2026-12-31")),
            ),
            ("Saldo: 12.30 Bs.", some("12.30", Some("Bs"), None)),
            (
                "Your balance is Bs 10.00, valid until 2026-12-31",
                some("10.00", Some("Bs"), Some("2026-12-31")),
            ),
            ("Your balance is USD 3.75", some("3.75", Some("USD"), None)),
            (
                "Saldo principal: $15.000,00. Vence 05-01-2027 23:59",
                some("15000.00", Some("$"), Some("2027-01-05")),
            ),
            (
                "Tienes S/ 8.50 de saldo hasta el 12/01/27",
                some("8.50", Some("S/"), Some("2027-01-12")),
            ),
            ("Saldo Bs0,00", some("0.00", Some("Bs"), None)),
            (
                "Estimado cliente, su saldo es de 1.500 Bs",
                some("1500", Some("Bs"), None),
            ),
            (
                "Your balance: 1,234.56 GTQ",
                some("1234.56", Some("GTQ"), None),
            ),
            ("Saldo: 45", some("45", None, None)),
            (
                "Recarga 10 Bs y recibe 20 MB. Tu saldo: Bs 3,20",
                some("3.20", Some("Bs"), None),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(read(text), expected, "{text}");
        }
    }

    #[test]
    fn codes_phones_and_quantities_are_not_amounts() {
        assert_eq!(
            read("Tu saldo: 3,20. Recarga Bs 10"),
            some("3.20", None, None)
        );
        assert_eq!(
            read("Tu saldo de datos es 500 MB y de voz Bs 3,20"),
            some("3.20", Some("Bs"), None)
        );
        assert_eq!(
            read("Saldo 12 SMS y Bs 4,00 hasta 31/12/2026"),
            some("4.00", Some("Bs"), Some("2026-12-31"))
        );
    }

    #[test]
    fn answers_without_a_balance_are_not_guessed_at() {
        for text in [
            "Servicio no disponible",
            "1. Consultar saldo\n2. Recargas\n3. Paquetes",
            "Su linea 70123456 fue activada el 01/12/2026",
            "No tienes saldo. Marca *611",
            "Saldo insuficiente, recarga al 800-10-2000",
            "Saldo insuficiente. Llama al 71234567",
            "",
        ] {
            assert_eq!(read(text), None, "{text}");
        }
    }

    #[test]
    fn odd_text_never_panics() {
        // Multi-byte letters next to numbers and marks, whose lower case is longer or shorter
        // than themselves, separators at the ends, and lone marks.
        for text in [
            "İİ5",
            "5İİ",
            "ẞ 5 ẞ",
            "Saldo: ₲5",
            "5₲",
            "₡",
            "$",
            "saldo $",
            "9,",
            ",9",
            "1.2.3,4,5",
            "99999999999999999999999999999999 Bs",
            "31/12/9999",
            "00/00/0000",
            "2026-13-45",
            "Saldo 🙂12🙂",
            "bs.s5",
            "5 \u{0301}Bs",
            "12:",
            ":30",
            "1:2:3",
        ] {
            let _ = parse(text);
        }
    }

    #[test]
    fn a_currency_inside_a_word_is_not_a_currency() {
        // `bs` in `Subs` and `q` in `quedan` are not currencies.
        assert_eq!(read("Saldo 7 quedan"), some("7", None, None));
        assert_eq!(read("Subs 5"), None);
    }
}
