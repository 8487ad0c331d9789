//! Message templates: text with `<token>` fields that a load fills from each row of its source
//! (`Estimado <nombre>, su cuota <numerocuota> de <moneda> <montocuota> vence el
//! <fechavencimiento>.`). Any column of the source can be a token, and tokens match columns
//! without regard to case or accents, so `<Año>`, `<ano>` and a column `AÑO` are the same.
//!
//! Every `<` opens a token and must be closed by a `>` on the same line; a text that needs a
//! literal `<` or `>` writes it doubled (`<<`, `>>`).

use std::collections::HashMap;
use std::fmt;

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// The longest token name.
const MAX_TOKEN: usize = 64;

/// A parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Token(Token),
}

/// A `<token>` of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// As written between the brackets, trimmed.
    pub name: String,
    /// The name folded for matching: see [`fold`].
    pub key: String,
    /// Where its `<` is, in characters from the start of the template.
    pub at: usize,
}

/// What is wrong with a template, with where (in characters from its start).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateProblem {
    /// Nothing but white space.
    #[error("the template is empty")]
    Empty,
    /// A `<` with no `>` after it on its line.
    #[error("the `<` at position {at} is not closed with `>` (write `<<` for a literal `<`)")]
    Unclosed {
        /// Where the `<` is.
        at: usize,
    },
    /// A `>` that closes nothing.
    #[error("the `>` at position {at} closes no token (write `>>` for a literal `>`)")]
    Unopened {
        /// Where the `>` is.
        at: usize,
    },
    /// `<>`, or a name that is too long or holds characters a column name does not.
    #[error("the token at position {at} is not a name: {reason}")]
    BadToken {
        /// Where its `<` is.
        at: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A token the source does not provide.
    #[error("the token <{name}> at position {at} is not a column of the source")]
    Unknown {
        /// The token as written.
        name: String,
        /// Where its `<` is.
        at: usize,
    },
}

impl TemplateProblem {
    /// Where in the template the problem is, when it is at one place.
    pub fn at(&self) -> Option<usize> {
        match self {
            TemplateProblem::Empty => None,
            TemplateProblem::Unclosed { at }
            | TemplateProblem::Unopened { at }
            | TemplateProblem::BadToken { at, .. }
            | TemplateProblem::Unknown { at, .. } => Some(*at),
        }
    }
}

/// A row's value for a token that has none (the cell is empty, or the column is missing).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("no value for <{token}>")]
pub struct MissingValue {
    /// The token as written in the template.
    pub token: String,
}

/// A name folded for matching: lower case, without accents or other combining marks, with
/// runs of white space as one space. `Fecha  Vencimiento` and `fecha vencimiento` fold alike.
pub fn fold(name: &str) -> String {
    let plain: String = name
        .nfd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect();
    plain.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Template {
    /// Parses a template, reporting every problem found, in order.
    ///
    /// # Errors
    ///
    /// The problems, when there is any.
    pub fn parse(text: &str) -> Result<Template, Vec<TemplateProblem>> {
        if text.trim().is_empty() {
            return Err(vec![TemplateProblem::Empty]);
        }
        let chars: Vec<char> = text.chars().collect();
        let mut pieces = Vec::new();
        let mut problems = Vec::new();
        let mut literal = String::new();
        let mut at = 0;
        while let Some(&c) = chars.get(at) {
            match c {
                '<' if chars.get(at + 1) == Some(&'<') => {
                    literal.push('<');
                    at += 2;
                }
                '>' if chars.get(at + 1) == Some(&'>') => {
                    literal.push('>');
                    at += 2;
                }
                '>' => {
                    problems.push(TemplateProblem::Unopened { at });
                    at += 1;
                }
                '<' => {
                    let close = chars[at + 1..]
                        .iter()
                        .position(|c| matches!(c, '>' | '<' | '\n'))
                        .map(|n| at + 1 + n)
                        .filter(|&end| chars[end] == '>');
                    let Some(end) = close else {
                        problems.push(TemplateProblem::Unclosed { at });
                        at += 1;
                        continue;
                    };
                    let name: String = chars[at + 1..end].iter().collect();
                    match token_name(&name) {
                        Ok(name) => {
                            if !literal.is_empty() {
                                pieces.push(Piece::Text(std::mem::take(&mut literal)));
                            }
                            pieces.push(Piece::Token(Token {
                                key: fold(name),
                                name: name.to_owned(),
                                at,
                            }));
                        }
                        Err(reason) => problems.push(TemplateProblem::BadToken { at, reason }),
                    }
                    at = end + 1;
                }
                other => {
                    literal.push(other);
                    at += 1;
                }
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        if problems.is_empty() {
            Ok(Template { pieces })
        } else {
            Err(problems)
        }
    }

    /// The tokens, in the order they appear.
    pub fn tokens(&self) -> impl Iterator<Item = &Token> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Token(token) => Some(token),
            Piece::Text(_) => None,
        })
    }

    /// The tokens that none of `columns` provides, as problems.
    pub fn unknown_tokens<S: AsRef<str>>(&self, columns: &[S]) -> Vec<TemplateProblem> {
        let known: Vec<String> = columns.iter().map(|c| fold(c.as_ref())).collect();
        self.tokens()
            .filter(|t| !known.contains(&t.key))
            .map(|t| TemplateProblem::Unknown {
                name: t.name.clone(),
                at: t.at,
            })
            .collect()
    }

    /// Fills the tokens from `values`, keyed by folded column name (see [`Row`]).
    ///
    /// # Errors
    ///
    /// Names the first token whose value is missing or blank.
    pub fn render(&self, row: &Row) -> Result<String, MissingValue> {
        self.fill(|token| row.get(&token.key))
    }

    /// Fills each token with what `value` gives for it.
    ///
    /// # Errors
    ///
    /// Names the first token whose value is missing or blank.
    pub fn fill<'v, S: AsRef<str> + 'v>(
        &self,
        mut value: impl FnMut(&Token) -> Option<S>,
    ) -> Result<String, MissingValue> {
        let mut text = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(literal) => text.push_str(literal),
                Piece::Token(token) => match value(token) {
                    Some(v) if !v.as_ref().trim().is_empty() => text.push_str(v.as_ref().trim()),
                    _ => {
                        return Err(MissingValue {
                            token: token.name.clone(),
                        });
                    }
                },
            }
        }
        Ok(text)
    }
}

impl fmt::Display for Template {
    /// The template as it would be written, literal brackets doubled.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for piece in &self.pieces {
            match piece {
                Piece::Text(literal) => {
                    f.write_str(&literal.replace('<', "<<").replace('>', ">>"))?;
                }
                Piece::Token(token) => write!(f, "<{}>", token.name)?,
            }
        }
        Ok(())
    }
}

/// One row of a source, its values already written as text, keyed by folded column name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Row {
    values: HashMap<String, String>,
}

impl Row {
    /// A row from (column, value) pairs.
    pub fn new<K: AsRef<str>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Row {
        Row {
            values: pairs
                .into_iter()
                .map(|(k, v)| (fold(k.as_ref()), v.into()))
                .collect(),
        }
    }

    /// The value of a column, by its folded name.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }
}

/// Checks what is between a token's brackets and returns it trimmed.
fn token_name(raw: &str) -> Result<&str, &'static str> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("it is empty");
    }
    if name.chars().count() > MAX_TOKEN {
        return Err("it is longer than 64 characters");
    }
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ' '))
    {
        return Err("only letters, digits, spaces, `_`, `-` and `.` may name a column");
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REMINDER: &str = "Estimado <nombre>, su cuota <numerocuota> de <moneda> <montocuota> \
        vence el <fechavencimiento>.";

    fn row() -> Row {
        Row::new([
            ("NOMBRE", "Ana Quispe"),
            ("NumeroCuota", "3"),
            ("moneda", "Bs"),
            ("montocuota", "150,00"),
            ("Fecha Vencimiento", "05/12/2026"),
            ("fechavencimiento", "05/12/2026"),
        ])
    }

    #[test]
    fn the_usual_reminder_renders_from_a_row() {
        let template = Template::parse(REMINDER).unwrap();
        let names: Vec<&str> = template.tokens().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "nombre",
                "numerocuota",
                "moneda",
                "montocuota",
                "fechavencimiento"
            ]
        );
        assert_eq!(
            template.render(&row()).unwrap(),
            "Estimado Ana Quispe, su cuota 3 de Bs 150,00 vence el 05/12/2026."
        );
    }

    #[test]
    fn tokens_match_columns_without_regard_to_case_or_accents() {
        assert_eq!(fold("Año  Fiscal"), "ano fiscal");
        assert_eq!(fold("FECHAVENCIMIENTO"), "fechavencimiento");
        let template = Template::parse("<Año> <CIUDAD>").unwrap();
        let row = Row::new([("ano", "2026"), ("ciudad", "Sucre")]);
        assert_eq!(template.render(&row).unwrap(), "2026 Sucre");
        assert!(template.unknown_tokens(&["AÑO", "Ciudad"]).is_empty());
    }

    #[test]
    fn every_problem_is_reported_with_its_position() {
        let problems = Template::parse("Hola <nombre> tu > cuota <> vence <fecha").unwrap_err();
        assert_eq!(
            problems,
            [
                TemplateProblem::Unopened { at: 17 },
                TemplateProblem::BadToken {
                    at: 25,
                    reason: "it is empty"
                },
                TemplateProblem::Unclosed { at: 34 },
            ]
        );
        // A `<` closed further on is read as a token, and its name judged.
        assert!(matches!(
            Template::parse("Hola <nombre, tu> cuota").unwrap_err()[..],
            [TemplateProblem::BadToken { at: 5, .. }]
        ));
        assert_eq!(
            Template::parse("  \n ").unwrap_err(),
            [TemplateProblem::Empty]
        );
        assert_eq!(
            Template::parse("<a>b<c\n>").unwrap_err(),
            [
                TemplateProblem::Unclosed { at: 4 },
                TemplateProblem::Unopened { at: 7 }
            ]
        );
    }

    #[test]
    fn tokens_the_source_lacks_are_named() {
        let template = Template::parse(REMINDER).unwrap();
        let problems = template.unknown_tokens(&["nombre", "moneda", "montocuota"]);
        assert_eq!(
            problems,
            [
                TemplateProblem::Unknown {
                    name: "numerocuota".into(),
                    at: 28
                },
                TemplateProblem::Unknown {
                    name: "fechavencimiento".into(),
                    at: 76
                },
            ]
        );
        assert_eq!(problems[1].at(), Some(76));
    }

    #[test]
    fn a_missing_or_blank_value_names_its_token() {
        let template = Template::parse("Hola <Nombre>, saldo <saldo>").unwrap();
        let blank = Row::new([("nombre", "Ana"), ("saldo", "  ")]);
        assert_eq!(
            template.render(&blank).unwrap_err(),
            MissingValue {
                token: "saldo".into()
            }
        );
        let missing = Row::new([("saldo", "10")]);
        assert_eq!(template.render(&missing).unwrap_err().token, "Nombre");
    }

    #[test]
    fn doubled_brackets_are_literal_and_survive_a_round_trip() {
        let text = "Pague <<ya>> a <nombre> -> gracias";
        let problems = Template::parse(text).unwrap_err();
        assert_eq!(problems, [TemplateProblem::Unopened { at: 25 }]);
        let text = "Pague <<ya>> a <nombre> ->> gracias";
        let template = Template::parse(text).unwrap();
        assert_eq!(template.to_string(), text);
        assert_eq!(
            template.render(&Row::new([("nombre", "Ana")])).unwrap(),
            "Pague <ya> a Ana -> gracias"
        );
    }

    #[test]
    fn a_token_name_must_look_like_a_column() {
        let problems = Template::parse("<a;drop> <x>").unwrap_err();
        assert!(matches!(
            problems[..],
            [TemplateProblem::BadToken { at: 0, .. }]
        ));
        let long = format!("<{}>", "a".repeat(65));
        assert!(matches!(
            Template::parse(&long).unwrap_err()[..],
            [TemplateProblem::BadToken { at: 0, .. }]
        ));
    }
}
