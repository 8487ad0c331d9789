//! Message texts: which alphabet they travel in and how many segments they take on the air.
//!
//! A text that fits the GSM 03.38 default alphabet (with its extension table) is sent as GSM-7:
//! 160 septets alone, 153 a part when concatenated, because the user data header takes the rest.
//! Anything else goes as UCS-2: 70 UTF-16 units alone, 67 a part. Extension characters cost two
//! septets (an escape and the character) and a part never splits them, nor a surrogate pair;
//! the counting here follows the same rule the PDU encoder uses when it cuts the text.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The most segments a message may take; beyond that it is refused at submit.
pub const MAX_SEGMENTS: usize = 10;

const GSM7_SINGLE: usize = 160;
const GSM7_PART: usize = 153;
const UCS2_SINGLE: usize = 70;
const UCS2_PART: usize = 67;

/// The alphabet a message travels in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// The GSM 03.38 default alphabet, 7 bits a character.
    Gsm7,
    /// UCS-2 (UTF-16), 16 bits a unit.
    Ucs2,
}

impl Encoding {
    /// The encoding's name in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Gsm7 => "gsm7",
            Encoding::Ucs2 => "ucs2",
        }
    }

    /// Reads an encoding name.
    pub fn parse(name: &str) -> Option<Encoding> {
        match name {
            "gsm7" => Some(Encoding::Gsm7),
            "ucs2" => Some(Encoding::Ucs2),
            _ => None,
        }
    }
}

/// Why a message text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// The text is empty or only white space.
    #[error("the text is empty")]
    Empty,
    /// The text has a control character an SMS cannot carry.
    #[error("the text contains a control character (U+{0:04X}) at position {1}")]
    ControlCharacter(u32, usize),
    /// The text needs more segments than a message may take.
    #[error(
        "the text needs {segments} segments ({encoding} encoding, {length} characters); \
         at most {max} are allowed"
    )]
    TooLong {
        /// Segments the text would take.
        segments: usize,
        /// The encoding it would travel in.
        encoding: &'static str,
        /// Its length in characters.
        length: usize,
        /// The most segments allowed.
        max: usize,
    },
}

/// A message text that fits in at most [`MAX_SEGMENTS`] segments.
#[derive(Clone, PartialEq, Eq)]
pub struct MessageText {
    text: String,
    encoding: Encoding,
    segments: usize,
}

impl MessageText {
    /// Checks a text and works out its encoding and segment count.
    ///
    /// # Errors
    ///
    /// Fails when the text is blank, holds a control character other than a line break or tab,
    /// or needs more than [`MAX_SEGMENTS`] segments.
    pub fn parse(text: &str) -> Result<MessageText, TextError> {
        if text.trim().is_empty() {
            return Err(TextError::Empty);
        }
        if let Some((position, c)) = text
            .chars()
            .enumerate()
            .find(|(_, c)| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err(TextError::ControlCharacter(c as u32, position));
        }

        let (encoding, segments) = count_segments(text);
        if segments > MAX_SEGMENTS {
            return Err(TextError::TooLong {
                segments,
                encoding: encoding.as_str(),
                length: text.chars().count(),
                max: MAX_SEGMENTS,
            });
        }
        Ok(MessageText {
            text: text.to_owned(),
            encoding,
            segments,
        })
    }

    /// The text itself.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The alphabet it travels in.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// How many segments it takes on the air.
    pub fn segments(&self) -> usize {
        self.segments
    }
}

impl fmt::Debug for MessageText {
    // Message texts are customers' data: debug output says only their shape.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageText")
            .field("chars", &self.text.chars().count())
            .field("encoding", &self.encoding)
            .field("segments", &self.segments)
            .finish()
    }
}

/// The encoding a text needs and the number of segments it takes, without allocating.
pub fn count_segments(text: &str) -> (Encoding, usize) {
    let (encoding, segments, _) = segment_room(text);
    (encoding, segments)
}

/// Like [`count_segments`], with the room left in the last segment: septets for GSM-7 (an
/// extension character takes two), UTF-16 units for UCS-2. The desktop program showed it as
/// "caracteres restantes".
pub fn segment_room(text: &str) -> (Encoding, usize, usize) {
    if text.chars().all(|c| super::gsm7::cost(c).is_some()) {
        let costs = text.chars().map(|c| super::gsm7::cost(c).unwrap_or(2));
        let (segments, left) = pack(costs, GSM7_SINGLE, GSM7_PART);
        (Encoding::Gsm7, segments, left)
    } else {
        let costs = text.chars().map(char::len_utf16);
        let (segments, left) = pack(costs, UCS2_SINGLE, UCS2_PART);
        (Encoding::Ucs2, segments, left)
    }
}

/// Packs characters of the given costs into segments: one when the whole fits `single`,
/// otherwise parts of at most `part`, never cutting a character. Returns the segments and the
/// room left in the last one.
fn pack(costs: impl Iterator<Item = usize> + Clone, single: usize, part: usize) -> (usize, usize) {
    let total: usize = costs.clone().sum();
    if total <= single {
        return (1, single - total);
    }

    let mut parts = 1;
    let mut used = 0;
    for cost in costs {
        if used + cost > part {
            parts += 1;
            used = 0;
        }
        used += cost;
    }
    (parts, part - used)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(text: &str) -> (Encoding, usize) {
        let parsed = MessageText::parse(text).unwrap();
        (parsed.encoding(), parsed.segments())
    }

    #[test]
    fn the_room_left_counts_what_the_last_segment_can_still_take() {
        assert_eq!(segment_room("Hola"), (Encoding::Gsm7, 1, 156));
        // An extension character takes two septets.
        assert_eq!(segment_room("10 €"), (Encoding::Gsm7, 1, 155));
        assert_eq!(segment_room(&"a".repeat(160)), (Encoding::Gsm7, 1, 0));
        assert_eq!(segment_room(&"a".repeat(161)), (Encoding::Gsm7, 2, 145));
        assert_eq!(segment_room("Ωmega ✓"), (Encoding::Ucs2, 1, 63));
    }

    #[test]
    fn plain_spanish_without_accents_is_gsm7() {
        assert_eq!(
            shape("Hola Juan, su cuota vence el 05/12."),
            (Encoding::Gsm7, 1)
        );
    }

    #[test]
    fn accents_of_the_default_alphabet_stay_gsm7() {
        assert_eq!(shape("¿Qué tal? ¡Mañana! ñ é ü à"), (Encoding::Gsm7, 1));
    }

    #[test]
    fn an_accent_outside_the_alphabet_needs_ucs2() {
        assert_eq!(shape("Información de su préstamo"), (Encoding::Ucs2, 1));
        assert_eq!(shape("cuota á"), (Encoding::Ucs2, 1));
    }

    #[test]
    fn single_segment_limits() {
        assert_eq!(shape(&"a".repeat(160)), (Encoding::Gsm7, 1));
        assert_eq!(shape(&"a".repeat(161)), (Encoding::Gsm7, 2));
        assert_eq!(shape(&"á".repeat(70)), (Encoding::Ucs2, 1));
        assert_eq!(shape(&"á".repeat(71)), (Encoding::Ucs2, 2));
    }

    #[test]
    fn concatenated_parts_hold_153_septets_or_67_units() {
        assert_eq!(shape(&"a".repeat(306)), (Encoding::Gsm7, 2));
        assert_eq!(shape(&"a".repeat(307)), (Encoding::Gsm7, 3));
        assert_eq!(shape(&"á".repeat(134)), (Encoding::Ucs2, 2));
        assert_eq!(shape(&"á".repeat(135)), (Encoding::Ucs2, 3));
    }

    #[test]
    fn extension_characters_cost_two_septets() {
        assert_eq!(shape(&"€".repeat(80)), (Encoding::Gsm7, 1));
        assert_eq!(shape(&"€".repeat(81)), (Encoding::Gsm7, 2));
    }

    #[test]
    fn an_escape_pair_is_never_split_between_parts() {
        // 152 plain septets and then a euro: the pair cannot start at septet 153, so the first
        // part closes at 152 and the text takes two parts, not one and a bit.
        let text = format!("{}€{}", "a".repeat(152), "a".repeat(100));
        assert_eq!(shape(&text), (Encoding::Gsm7, 2));
        let text = format!("{}€{}", "a".repeat(152), "a".repeat(152));
        assert_eq!(shape(&text), (Encoding::Gsm7, 3));
    }

    #[test]
    fn a_surrogate_pair_is_never_split_between_parts() {
        let text = format!("{}😀{}", "á".repeat(66), "á".repeat(66));
        assert_eq!(shape(&text), (Encoding::Ucs2, 3));
    }

    #[test]
    fn blank_texts_are_refused() {
        assert_eq!(MessageText::parse(""), Err(TextError::Empty));
        assert_eq!(MessageText::parse(" \n "), Err(TextError::Empty));
    }

    #[test]
    fn control_characters_are_refused_with_their_position() {
        assert_eq!(
            MessageText::parse("ab\u{0}c"),
            Err(TextError::ControlCharacter(0, 2))
        );
    }

    #[test]
    fn texts_beyond_ten_segments_are_refused() {
        assert!(MessageText::parse(&"a".repeat(1530)).is_ok());
        assert!(matches!(
            MessageText::parse(&"a".repeat(2000)),
            Err(TextError::TooLong { segments: 14, .. })
        ));
    }

    #[test]
    fn debug_output_hides_the_text() {
        let text = MessageText::parse("secreto").unwrap();
        assert!(!format!("{text:?}").contains("secreto"));
    }
}
