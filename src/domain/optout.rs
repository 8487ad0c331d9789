//! Opt-out and opt-in keywords: a received text that is nothing but `BAJA` (or `STOP`, `NO`, or
//! whatever the organisation chose) asks to receive no more messages; `ALTA` or `START` asks to
//! receive them again. Keywords match without regard to case, accents, surrounding spaces and
//! punctuation (`Baja.`, ` stop!`), but only as the whole text: `no gracias` is a reply, not an
//! opt-out.

use serde::{Deserialize, Serialize};

use super::fold;

/// The longest keyword, in characters.
const MAX_KEYWORD: usize = 30;

/// Keywords a list may hold at most.
const MAX_KEYWORDS: usize = 20;

/// What a received text asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keyword {
    /// No more messages to this number.
    OptOut,
    /// Messages again.
    OptIn,
}

impl Keyword {
    /// The word used in events and the API: `opt_out` or `opt_in`.
    pub fn as_str(self) -> &'static str {
        match self {
            Keyword::OptOut => "opt_out",
            Keyword::OptIn => "opt_in",
        }
    }
}

/// The organisation's keywords.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keywords {
    /// Texts that put the sender on the suppression list.
    pub opt_out: Vec<String>,
    /// Texts that take the sender off it again.
    pub opt_in: Vec<String>,
}

impl Default for Keywords {
    fn default() -> Keywords {
        Keywords {
            opt_out: vec!["BAJA".into(), "STOP".into(), "NO".into()],
            opt_in: vec!["ALTA".into(), "START".into()],
        }
    }
}

/// Why a keyword list is refused: the field (`opt_out[2]`) and the reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct KeywordError {
    /// The field at fault.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

impl Keywords {
    /// Checks both lists: each keyword one to thirty letters, digits or spaces once folded, no
    /// list longer than twenty, and no keyword in both.
    ///
    /// # Errors
    ///
    /// The first problem found, naming its field.
    pub fn parse(opt_out: Vec<String>, opt_in: Vec<String>) -> Result<Keywords, KeywordError> {
        let check = |name: &str, list: &[String]| -> Result<Vec<String>, KeywordError> {
            if list.len() > MAX_KEYWORDS {
                return Err(KeywordError {
                    field: name.into(),
                    reason: format!("at most {MAX_KEYWORDS} keywords"),
                });
            }
            let mut out: Vec<String> = Vec::with_capacity(list.len());
            for (i, word) in list.iter().enumerate() {
                let folded = normalize(word);
                let ok = !folded.is_empty()
                    && folded.chars().count() <= MAX_KEYWORD
                    && folded.chars().all(|c| c.is_alphanumeric() || c == ' ');
                if !ok {
                    return Err(KeywordError {
                        field: format!("{name}[{i}]"),
                        reason: format!(
                            "a keyword is 1 to {MAX_KEYWORD} letters, digits or spaces"
                        ),
                    });
                }
                if !out.iter().any(|w| normalize(w) == folded) {
                    out.push(word.trim().to_uppercase());
                }
            }
            Ok(out)
        };
        let opt_out = check("opt_out", &opt_out)?;
        let opt_in = check("opt_in", &opt_in)?;
        if let Some((i, word)) = opt_in
            .iter()
            .enumerate()
            .find(|(_, w)| opt_out.iter().any(|o| normalize(o) == normalize(w)))
        {
            return Err(KeywordError {
                field: format!("opt_in[{i}]"),
                reason: format!("`{word}` is an opt-out keyword too"),
            });
        }
        Ok(Keywords { opt_out, opt_in })
    }

    /// What `text` asks for, if it is one of the keywords.
    pub fn classify(&self, text: &str) -> Option<Keyword> {
        let said = normalize(text);
        if said.is_empty() {
            return None;
        }
        let matches = |list: &[String]| list.iter().any(|w| normalize(w) == said);
        if matches(&self.opt_out) {
            Some(Keyword::OptOut)
        } else if matches(&self.opt_in) {
            Some(Keyword::OptIn)
        } else {
            None
        }
    }
}

/// A text as keywords are compared: folded (lower case, no accents, single spaces) and without
/// punctuation or symbols at either end.
fn normalize(text: &str) -> String {
    let folded = fold(text);
    folded
        .trim_matches(|c: char| !c.is_alphanumeric())
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_match_whole_texts_whatever_their_case_accents_and_punctuation() {
        let k = Keywords::default();
        for text in ["BAJA", "baja", " Baja. ", "¡STOP!", "no", "No."] {
            assert_eq!(k.classify(text), Some(Keyword::OptOut), "{text:?}");
        }
        for text in ["alta", "START", "Alta 🙂"] {
            assert_eq!(k.classify(text), Some(Keyword::OptIn), "{text:?}");
        }
        for text in ["no gracias", "bajas", "Ya pagué", "", "!!!", "BAJA BAJA"] {
            assert_eq!(k.classify(text), None, "{text:?}");
        }
    }

    #[test]
    fn keywords_with_accents_match_texts_without_them() {
        let k = Keywords::parse(vec!["Anular suscripción".into()], vec!["Sí".into()]).unwrap();
        assert_eq!(k.classify("ANULAR SUSCRIPCION"), Some(Keyword::OptOut));
        assert_eq!(k.classify("si"), Some(Keyword::OptIn));
        assert_eq!(k.opt_out, ["ANULAR SUSCRIPCIÓN"]);
    }

    #[test]
    fn bad_keyword_lists_name_the_field() {
        let err = Keywords::parse(vec!["BAJA".into(), "  ".into()], vec![]).unwrap_err();
        assert_eq!(err.field, "opt_out[1]");
        let err = Keywords::parse(vec!["BAJA".into()], vec!["baja".into()]).unwrap_err();
        assert_eq!(err.field, "opt_in[0]");
        let err = Keywords::parse(vec!["BA-JA".into()], vec![]).unwrap_err();
        assert_eq!(err.field, "opt_out[0]");
        let many = vec!["X".to_owned(); 21];
        assert_eq!(Keywords::parse(many, vec![]).unwrap_err().field, "opt_out");
    }

    #[test]
    fn repeated_keywords_are_kept_once() {
        let k = Keywords::parse(vec!["baja".into(), "BAJA".into()], vec![]).unwrap();
        assert_eq!(k.opt_out, ["BAJA"]);
    }
}
