//! The language of what reaches people: notification mails and load reports. The API itself
//! speaks English whatever this says.

use serde::{Deserialize, Serialize};

/// Spanish (the default) or English.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// Español.
    #[default]
    Es,
    /// English.
    En,
}

impl Language {
    /// Picks the Spanish or the English of a pair of words.
    pub fn pick<'a>(self, es: &'a str, en: &'a str) -> &'a str {
        match self {
            Language::Es => es,
            Language::En => en,
        }
    }
}
