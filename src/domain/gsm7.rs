//! The GSM 03.38 default alphabet and its extension table (3GPP TS 23.038 §6.2.1): which
//! characters a GSM-7 text may hold, and the septet codes they travel as.

/// The default alphabet in code order, 0x00–0x7F. 0x1B is the escape to the extension table and
/// not a character of its own; it stands here as a space and is never looked up.
const BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ ÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";

/// The extension table's characters and their codes, each sent after the escape 0x1B.
const EXTENSION: [(u8, char); 10] = [
    (0x0A, '\u{0C}'),
    (0x14, '^'),
    (0x28, '{'),
    (0x29, '}'),
    (0x2F, '\\'),
    (0x3C, '['),
    (0x3D, '~'),
    (0x3E, ']'),
    (0x40, '|'),
    (0x65, '€'),
];

/// The escape septet that introduces an extension character.
pub const ESCAPE: u8 = 0x1B;

/// The default alphabet's characters outside ASCII.
const BASIC_NON_ASCII: &str = "£¥èéùìòÇØøÅåΔΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà";

/// The septets a character takes, or `None` when the default alphabet cannot hold it. Written
/// as ranges so that counting a long text costs a comparison or two a character; a test checks
/// it against the tables.
pub fn cost(c: char) -> Option<usize> {
    match c {
        // 0x20–0x5A of ASCII, from the space to `Z`, are all in the basic table.
        '\n' | '\r' | ' '..='Z' | 'a'..='z' | '_' => Some(1),
        '\u{0C}' | '^' | '{' | '}' | '\\' | '[' | '~' | ']' | '|' | '€' => Some(2),
        c if !c.is_ascii() && BASIC_NON_ASCII.contains(c) => Some(1),
        _ => None,
    }
}

/// Appends the septet codes of `c` (one, or the escape and one), or returns `false` when the
/// default alphabet cannot hold it.
pub fn push_septets(c: char, out: &mut Vec<u8>) -> bool {
    if c != ' '
        && let Some(code) = BASIC.chars().position(|b| b == c)
    {
        out.push(code as u8);
        return true;
    }
    if c == ' ' {
        out.push(0x20);
        return true;
    }
    match EXTENSION.iter().find(|(_, e)| *e == c) {
        Some((code, _)) => {
            out.push(ESCAPE);
            out.push(*code);
            true
        }
        None => false,
    }
}

/// Turns septet codes back into text. An escape before a code the extension table lacks reads
/// as that code's basic character, as TS 23.038 asks of receivers; a trailing escape is dropped.
pub fn decode(septets: &[u8]) -> String {
    let mut text = String::with_capacity(septets.len());
    let mut escaped = false;
    for &code in septets {
        let code = code & 0x7F;
        if escaped {
            escaped = false;
            match EXTENSION.iter().find(|(e, _)| *e == code) {
                Some((_, c)) => text.push(*c),
                None => text.push(basic(code)),
            }
        } else if code == ESCAPE {
            escaped = true;
        } else {
            text.push(basic(code));
        }
    }
    text
}

fn basic(code: u8) -> char {
    BASIC.chars().nth(usize::from(code & 0x7F)).unwrap_or('?')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_basic_table_has_128_codes() {
        assert_eq!(BASIC.chars().count(), 128);
        assert_eq!(basic(0x00), '@');
        assert_eq!(basic(0x11), '_');
        assert_eq!(basic(0x7F), 'à');
    }

    #[test]
    fn the_fast_cost_agrees_with_the_tables() {
        for (code, c) in BASIC.chars().enumerate() {
            assert_eq!(cost(c), Some(1), "basic 0x{code:02X} {c:?}");
        }
        for (_, c) in EXTENSION {
            assert_eq!(cost(c), Some(2), "extension {c:?}");
        }
        for c in ['`', 'á', 'í', 'ó', 'ú', 'Á', '\t', '\u{1B}', '😀', 'ç'] {
            assert_eq!(cost(c), None, "outside {c:?}");
        }
    }

    #[test]
    fn every_character_round_trips() {
        let all: String = BASIC
            .chars()
            .enumerate()
            .filter(|(code, _)| *code != 0x1B)
            .map(|(_, c)| c)
            .chain(EXTENSION.iter().map(|(_, c)| *c))
            .collect();
        let mut septets = Vec::new();
        for c in all.chars() {
            assert!(push_septets(c, &mut septets), "{c:?}");
        }
        assert_eq!(decode(&septets), all);
    }

    #[test]
    fn an_unknown_escape_reads_as_the_basic_character() {
        assert_eq!(decode(&[ESCAPE, 0x41, ESCAPE]), "A");
        assert_eq!(decode(&[ESCAPE, 0x65]), "€");
    }
}
