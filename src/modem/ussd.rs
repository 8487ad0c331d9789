//! USSD, as balance checks use it (3GPP TS 27.007 §7.15): the `AT+CUSD` request and the
//! `+CUSD: <m>[,<str>[,<dcs>]]` answer, which arrives as an unsolicited line seconds later.
//!
//! Modems hand the answer's text back in one of three shapes, whatever the network sent: as
//! plain text, as the hex of packed GSM 7-bit septets (Huawei's habit when the data coding
//! scheme is 15), or as the hex of UCS-2 (scheme 72). [`decode`] tells them apart by the coding
//! scheme and by what the text looks like. Some Huawei firmware also wants the request itself
//! packed; [`request`] writes either form.

use crate::domain::gsm7;
use crate::modem::pdu::septets;

/// The data coding scheme of requests: GSM 7-bit default alphabet, language unspecified
/// (3GPP TS 23.038 §5).
pub const DCS_GSM7: u8 = 15;

/// What `<m>` of `+CUSD` says about the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UssdStatus {
    /// 0: the answer is final.
    Done,
    /// 1: the network waits for more from the user (a menu); the session should be closed.
    MoreWanted,
    /// 2: the network ended the session.
    Terminated,
    /// 3: another local client answered.
    OtherClient,
    /// 4: the operation is not supported.
    NotSupported,
    /// 5: the network did not answer in time.
    NetworkTimeout,
}

/// An answer to a USSD request, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UssdAnswer {
    /// What the network said about the session.
    pub status: UssdStatus,
    /// The text, decoded; empty when there was none.
    pub text: String,
    /// The data coding scheme it came with.
    pub dcs: Option<u8>,
}

/// Why a `+CUSD` line could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`+CUSD: {line}` cannot be read: {reason}")]
pub struct UssdError {
    /// The line after `+CUSD: `.
    pub line: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// The `AT+CUSD` command that asks `code` (`*105#`), the code as text or packed.
pub fn request(code: &str, packed: bool) -> String {
    let code = if packed {
        pack_hex(code)
    } else {
        code.to_owned()
    };
    format!("AT+CUSD=1,\"{code}\",{DCS_GSM7}")
}

/// The hex of `text` as packed GSM 7-bit septets; characters outside the alphabet are left out.
pub fn pack_hex(text: &str) -> String {
    let mut codes = Vec::with_capacity(text.len());
    for c in text.chars() {
        gsm7::push_septets(c, &mut codes);
    }
    septets::pack(&codes, 0)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// The text of the hex of packed GSM 7-bit septets, without guessing whether it is: seven
/// spare bits at the end, read as one more septet, are dropped (CR by the rule for padding, or
/// @ from modems that leave them clear).
pub fn unpack_hex(hex: &str) -> Option<String> {
    if !hex.len().is_multiple_of(2) || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let octets: Vec<u8> = (0..hex.len())
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect();
    let codes = septets::unpack(&octets, octets.len() * 8 / 7, 0)?;
    let text = gsm7::decode(&codes);
    Some(
        text.strip_suffix('\r')
            .or_else(|| text.strip_suffix('@'))
            .unwrap_or(&text)
            .to_owned(),
    )
}

/// Reads the line after `+CUSD: `.
///
/// # Errors
///
/// When `<m>` is missing or not a known value, or the text's quotes are not closed.
pub fn parse(line: &str) -> Result<UssdAnswer, UssdError> {
    let fail = |reason| UssdError {
        line: line.to_owned(),
        reason,
    };
    let line = line.trim();
    let (m, rest) = match line.split_once(',') {
        Some((m, rest)) => (m.trim(), Some(rest.trim())),
        None => (line, None),
    };
    let status = match m {
        "0" => UssdStatus::Done,
        "1" => UssdStatus::MoreWanted,
        "2" => UssdStatus::Terminated,
        "3" => UssdStatus::OtherClient,
        "4" => UssdStatus::NotSupported,
        "5" => UssdStatus::NetworkTimeout,
        _ => return Err(fail("the status is not 0 to 5")),
    };
    let Some(rest) = rest else {
        return Ok(UssdAnswer {
            status,
            text: String::new(),
            dcs: None,
        });
    };
    // The text is quoted and may itself hold commas; the scheme follows the closing quote.
    let body = rest
        .strip_prefix('"')
        .ok_or_else(|| fail("the text is not quoted"))?;
    let close = body
        .rfind('"')
        .ok_or_else(|| fail("the text's quote is not closed"))?;
    let raw = &body[..close];
    let dcs = body[close + 1..]
        .trim()
        .trim_start_matches(',')
        .trim()
        .parse::<u8>()
        .ok();
    Ok(UssdAnswer {
        status,
        text: decode(raw, dcs),
        dcs,
    })
}

/// Whether a data coding scheme says UCS-2 (3GPP TS 23.038 §5: 0x11, and the general groups
/// 0x40–0x7F with bits 3–2 set to 10).
fn is_ucs2(dcs: u8) -> bool {
    dcs == 0x11 || (dcs & 0xC0 == 0x40 && dcs & 0x0C == 0x08) || dcs == 0x48
}

/// Decodes the text of an answer, whichever shape the modem gave it.
pub fn decode(raw: &str, dcs: Option<u8>) -> String {
    let hex = !raw.is_empty()
        && raw.len().is_multiple_of(2)
        && raw.chars().all(|c| c.is_ascii_hexdigit());
    if hex {
        let octets: Vec<u8> = (0..raw.len())
            .step_by(2)
            .filter_map(|i| u8::from_str_radix(&raw[i..i + 2], 16).ok())
            .collect();
        if dcs.is_some_and(is_ucs2) && octets.len().is_multiple_of(2) {
            let units: Vec<u16> = octets
                .chunks(2)
                .map(|p| u16::from_be_bytes([p[0], p[1]]))
                .collect();
            // 0x11 puts two characters of language before the text.
            let skip = if dcs == Some(0x11) {
                1.min(units.len())
            } else {
                0
            };
            return String::from_utf16_lossy(&units[skip..]);
        }
        if dcs.is_none_or(|d| d <= 0x0F || (d & 0xC0 == 0x40 && d & 0x0C == 0))
            && let Some(text) = unpack_hex(raw).filter(|t| looks_like_words(t))
        {
            return text;
        }
    }
    raw.to_owned()
}

/// The letters of the default alphabet that Spanish and English texts use besides ASCII.
const LATIN: &str = "áéíóúÁÉÍÓÚñÑüÜàèìòùÇçäöÄÖ¿¡£¥€";

/// Whether decoded text looks like a sentence rather than noise from a wrong guess: four
/// characters or more, at least three ASCII letters, and nothing but ASCII, the Latin letters
/// above and line breaks (a wrong guess yields Greek capitals and symbols).
fn looks_like_words(text: &str) -> bool {
    let letters = text.chars().filter(char::is_ascii_alphabetic).count();
    text.chars().count() >= 4
        && letters >= 3
        && text.chars().all(|c| {
            c == '\n' || c == '\r' || c.is_ascii_graphic() || c == ' ' || LATIN.contains(c)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_written_as_text_or_packed() {
        assert_eq!(request("*105#", false), "AT+CUSD=1,\"*105#\",15");
        // *100# packs to AA180C3602, the vector modem manuals quote; *105# differs in its
        // fourth septet.
        assert_eq!(pack_hex("*100#"), "AA180C3602");
        assert_eq!(request("*105#", true), "AT+CUSD=1,\"AA18AC3602\",15");
    }

    #[test]
    fn plain_answers_are_taken_as_they_are() {
        let a = parse(r#"0,"Tu saldo es Bs 25,50 vigente hasta 31/12/2026",15"#).unwrap();
        assert_eq!(a.status, UssdStatus::Done);
        assert_eq!(a.text, "Tu saldo es Bs 25,50 vigente hasta 31/12/2026");
        assert_eq!(a.dcs, Some(15));
    }

    #[test]
    fn packed_answers_are_unpacked() {
        let text = "Saldo: 12.30 Bs.";
        let line = format!("0,\"{}\",15", pack_hex(text));
        assert_eq!(parse(&line).unwrap().text, text);
        // "Hello", the textbook vector.
        assert_eq!(decode("C8329BFD06", Some(15)), "Hello");
    }

    #[test]
    fn ucs2_answers_are_read_as_ucs2() {
        assert_eq!(
            decode("00530061006C0064006F00200042007300200035", Some(72)),
            "Saldo Bs 5"
        );
        let accents: String = "Crédito"
            .encode_utf16()
            .map(|u| format!("{u:04X}"))
            .collect();
        assert_eq!(decode(&accents, Some(0x48)), "Crédito");
    }

    #[test]
    fn statuses_without_text_and_bad_lines() {
        assert_eq!(parse("4").unwrap().status, UssdStatus::NotSupported);
        assert_eq!(parse("2").unwrap().text, "");
        assert!(parse("9,\"x\",15").is_err());
        assert!(parse("0,\"unclosed,15").is_err());
        assert!(parse("0,x,15").is_err());
    }

    #[test]
    fn a_hex_looking_plain_answer_is_not_taken_for_packed_text() {
        assert_eq!(decode("1234", Some(15)), "1234");
        assert_eq!(decode("CAFE", None), "CAFE");
    }
}
