//! AT traffic as it comes off the serial line (3GPP TS 27.007 and 27.005): bytes are framed into
//! lines, and each line is told apart as a final result, the `> ` prompt of `AT+CMGS`, an
//! unsolicited result code, or part of the answer to the command in flight.
//!
//! Modems print unsolicited lines (`+CMTI`, `RING`, Huawei's `^RSSI`) whenever they like, in the
//! middle of an answer too. The framer is told which prefixes the command in flight answers
//! with; a line with one of them is part of the answer even if it looks like a URC, and any
//! other line that looks like a URC is routed as an event, never mistaken for a reply.

/// A final result: the end of a command's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Final {
    /// `OK`.
    Ok,
    /// `ERROR`, without a code.
    Error,
    /// `+CME ERROR: n` (TS 27.007 §9.2), an equipment error.
    CmeError(u16),
    /// `+CMS ERROR: n` (TS 27.005 §3.2.5), a message service error.
    CmsError(u16),
    /// `NO CARRIER`, `BUSY`, `NO ANSWER` or `NO DIALTONE`.
    Call(String),
}

/// An unsolicited result code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Urc {
    /// `+CMTI: "SM",3`: a message was stored at this index.
    NewMessage {
        /// The memory, e.g. `SM` or `ME`.
        storage: String,
        /// The index in it.
        index: u32,
    },
    /// `+CMT: ,len` and the PDU line after it: a message routed straight to us.
    Deliver {
        /// The PDU in hex.
        pdu: String,
    },
    /// `+CDS: len` and the PDU line after it: a status report routed straight to us.
    StatusReport {
        /// The PDU in hex.
        pdu: String,
    },
    /// `+CDSI: "SR",2`: a status report was stored at this index.
    NewStatusReport {
        /// The memory.
        storage: String,
        /// The index in it.
        index: u32,
    },
    /// `RING`: a call is coming in.
    Ring,
    /// `+CLIP: "+59171234567",145,...`: the number of the caller.
    CallerId {
        /// The caller's number, as the modem gives it.
        number: String,
    },
    /// `+CUSD: m,"text",dcs`: an answer to a USSD request.
    Ussd {
        /// The line after `+CUSD: `, to be read by the USSD code.
        raw: String,
    },
    /// Huawei `^RSSI: n`: the signal changed (0–31, 99 unknown).
    Rssi(u8),
    /// Huawei `^BOOT:` and `^MODE:`, or any other `^` line: noise to the dispatcher.
    Vendor(String),
}

/// One framed line, classified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    /// A final result.
    Final(Final),
    /// The `> ` prompt: the modem waits for the PDU.
    Prompt,
    /// An unsolicited result code.
    Urc(Urc),
    /// A line of the answer to the command in flight.
    Response(String),
}

/// Turns bytes into lines. One framer per modem; it keeps what it has not framed yet between
/// reads, so a line split over two reads is put back together.
#[derive(Debug, Default)]
pub struct Framer {
    buffer: Vec<u8>,
    /// Set after `+CMT:` or `+CDS:`: the next line is that URC's PDU.
    pdu_follows: Option<PduUrc>,
    /// The last command sent, to drop its echo when the modem has echo on.
    echo: Option<String>,
    /// A prompt `>` ended the bytes read so far: its space may come with the next read.
    prompt_space: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PduUrc {
    Deliver,
    StatusReport,
}

/// A line longer than this without an end is dropped: nothing a modem says is that long.
const MAX_LINE: usize = 4096;

impl Framer {
    /// A framer with nothing buffered.
    pub fn new() -> Framer {
        Framer::default()
    }

    /// Notes the command just written, so that its echo is dropped.
    pub fn sent(&mut self, command: &str) {
        self.echo = Some(command.trim_end().to_owned());
    }

    /// Adds bytes read from the port and returns the lines they complete. `expected` are the
    /// prefixes the command in flight answers with (`+CMGS`, `+CSQ`); empty when none is.
    pub fn push(&mut self, bytes: &[u8], expected: &[&str]) -> Vec<Line> {
        self.buffer.extend_from_slice(bytes);
        let mut lines = Vec::new();
        if self.prompt_space && !self.buffer.is_empty() {
            self.prompt_space = false;
            if self.buffer[0] == b' ' {
                self.buffer.drain(..1);
            }
        }

        loop {
            // The prompt has no line end: it is a `>` (and usually a space) at the start.
            let start = self
                .buffer
                .iter()
                .position(|b| !matches!(b, b'\r' | b'\n'))
                .unwrap_or(self.buffer.len());
            self.buffer.drain(..start);
            if self.buffer.first() == Some(&b'>') && self.pdu_follows.is_none() {
                // The prompt is answered at once, so a read that ends at the `>` leaves its
                // space to the next one.
                let end = match self.buffer.get(1) {
                    Some(b' ') => 2,
                    Some(_) => 1,
                    None => {
                        self.prompt_space = true;
                        1
                    }
                };
                self.buffer.drain(..end);
                lines.push(Line::Prompt);
                continue;
            }

            let Some(end) = line_end(&self.buffer) else {
                if self.buffer.len() > MAX_LINE {
                    self.buffer.clear();
                }
                break;
            };
            let raw: Vec<u8> = self.buffer.drain(..end).collect();
            // Line breaks inside a USSD answer's quotes are part of its text.
            let text = String::from_utf8_lossy(&raw)
                .trim()
                .replace("\r\n", "\n")
                .replace('\r', "\n");
            if text.is_empty() {
                continue;
            }
            if let Some(line) = self.classify(text, expected) {
                lines.push(line);
            }
        }
        lines
    }

    fn classify(&mut self, text: String, expected: &[&str]) -> Option<Line> {
        if let Some(kind) = self.pdu_follows.take() {
            let pdu = text;
            return Some(Line::Urc(match kind {
                PduUrc::Deliver => Urc::Deliver { pdu },
                PduUrc::StatusReport => Urc::StatusReport { pdu },
            }));
        }
        if self.echo.as_deref() == Some(text.as_str()) {
            self.echo = None;
            return None;
        }
        if let Some(result) = final_result(&text) {
            return Some(Line::Final(result));
        }
        if expected.iter().any(|prefix| text.starts_with(prefix)) {
            return Some(Line::Response(text));
        }
        match urc(&text) {
            Some(Parsed::Urc(urc)) => Some(Line::Urc(urc)),
            Some(Parsed::PduFollows(kind)) => {
                self.pdu_follows = Some(kind);
                None
            }
            None => Some(Line::Response(text)),
        }
    }
}

/// Where the line at the start of `buffer` ends, if it has: at the first CR or LF, except that
/// a `+CUSD` answer's quoted text may span lines (menus do), so its line ends at the first
/// line end after the closing quote.
fn line_end(buffer: &[u8]) -> Option<usize> {
    let is_end = |b: &u8| matches!(b, b'\r' | b'\n');
    let plain = buffer.iter().position(is_end);
    if !buffer.starts_with(b"+CUSD:") {
        return plain;
    }
    let Some(open) = buffer.iter().position(|&b| b == b'"') else {
        return plain;
    };
    if plain.is_some_and(|end| end < open) {
        // `+CUSD: 4` and the like: no text on this line.
        return plain;
    }
    let close = open + 1 + buffer[open + 1..].iter().position(|&b| b == b'"')?;
    buffer[close..]
        .iter()
        .position(is_end)
        .map(|end| close + end)
}

fn final_result(text: &str) -> Option<Final> {
    let code = |prefix: &str| text.strip_prefix(prefix)?.trim().parse::<u16>().ok();
    match text {
        "OK" => Some(Final::Ok),
        "ERROR" => Some(Final::Error),
        "NO CARRIER" | "BUSY" | "NO ANSWER" | "NO DIALTONE" => Some(Final::Call(text.to_owned())),
        _ => code("+CMS ERROR:")
            .map(Final::CmsError)
            .or_else(|| code("+CME ERROR:").map(Final::CmeError)),
    }
}

enum Parsed {
    Urc(Urc),
    PduFollows(PduUrc),
}

fn urc(text: &str) -> Option<Parsed> {
    if text == "RING" {
        return Some(Parsed::Urc(Urc::Ring));
    }
    let (name, rest) = text.split_once(':').unwrap_or((text, ""));
    let rest = rest.trim();
    let urc = match name {
        "+CMTI" => {
            let (storage, index) = storage_and_index(rest)?;
            Urc::NewMessage { storage, index }
        }
        "+CDSI" => {
            let (storage, index) = storage_and_index(rest)?;
            Urc::NewStatusReport { storage, index }
        }
        "+CMT" => return Some(Parsed::PduFollows(PduUrc::Deliver)),
        "+CDS" => return Some(Parsed::PduFollows(PduUrc::StatusReport)),
        "+CLIP" => Urc::CallerId {
            number: rest.split(',').next()?.trim_matches('"').to_owned(),
        },
        "+CUSD" => Urc::Ussd {
            raw: rest.to_owned(),
        },
        "^RSSI" => Urc::Rssi(rest.parse().ok()?),
        _ if name.starts_with('^') => Urc::Vendor(text.to_owned()),
        _ => return None,
    };
    Some(Parsed::Urc(urc))
}

/// Reads `"SM",3`.
fn storage_and_index(rest: &str) -> Option<(String, u32)> {
    let (storage, index) = rest.split_once(',')?;
    Some((
        storage.trim().trim_matches('"').to_owned(),
        index.trim().parse().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ussd_answer_over_several_lines_is_one_urc() {
        let answer: &[u8] = b"\r\n+CUSD: 1,\"1. Saldo\r\n2. Recargas\",15\r\n\r\nOK\r\n";
        // However the bytes are cut, the same lines come out.
        for cut in 1..answer.len() {
            let lines = frame(&[&answer[..cut], &answer[cut..]], &[]);
            assert_eq!(
                lines,
                [
                    Line::Urc(Urc::Ussd {
                        raw: "1,\"1. Saldo\n2. Recargas\",15".into()
                    }),
                    Line::Final(Final::Ok)
                ],
                "cut at {cut}"
            );
        }
        let bare = frame(&[b"\r\n+CUSD: 4\r\nOK\r\n"], &[]);
        assert_eq!(bare[0], Line::Urc(Urc::Ussd { raw: "4".into() }));
    }

    fn frame(chunks: &[&[u8]], expected: &[&str]) -> Vec<Line> {
        let mut framer = Framer::new();
        chunks
            .iter()
            .flat_map(|chunk| framer.push(chunk, expected))
            .collect()
    }

    #[test]
    fn an_answer_and_its_final_result() {
        let lines = frame(&[b"\r\n+CSQ: 17,99\r\n\r\nOK\r\n"], &["+CSQ"]);
        assert_eq!(
            lines,
            [Line::Response("+CSQ: 17,99".into()), Line::Final(Final::Ok)]
        );
    }

    #[test]
    fn error_codes_are_read() {
        let lines = frame(
            &[b"\r\n+CMS ERROR: 331\r\n+CME ERROR: 10\r\nERROR\r\n"],
            &[],
        );
        assert_eq!(
            lines,
            [
                Line::Final(Final::CmsError(331)),
                Line::Final(Final::CmeError(10)),
                Line::Final(Final::Error)
            ]
        );
    }

    #[test]
    fn a_line_split_across_reads_is_put_back_together() {
        let lines = frame(&[b"\r\n+CMGS: 1", b"2\r\n\r\nO", b"K\r\n"], &["+CMGS"]);
        assert_eq!(
            lines,
            [Line::Response("+CMGS: 12".into()), Line::Final(Final::Ok)]
        );
    }

    #[test]
    fn the_prompt_is_seen_without_a_line_end() {
        assert_eq!(frame(&[b"\r\n> "], &[]), [Line::Prompt]);
        // The space may come in a read of its own; what follows it is framed as if it had not.
        // (Found by the `at_framer` fuzz target: the space used to start a line of its own.)
        let whole = frame(&[b"\r\n> > "], &[">"]);
        let split = frame(&[b"\r\n>", b" > "], &[">"]);
        assert_eq!(whole, [Line::Prompt, Line::Prompt]);
        assert_eq!(split, whole);
    }

    #[test]
    fn urcs_in_the_middle_of_an_answer_are_routed_apart() {
        let lines = frame(
            &[b"\r\n+CMGS: 7\r\n\r\n^RSSI:14\r\n\r\n+CMTI: \"SM\",3\r\n\r\nRING\r\n\r\nOK\r\n"],
            &["+CMGS"],
        );
        assert_eq!(
            lines,
            [
                Line::Response("+CMGS: 7".into()),
                Line::Urc(Urc::Rssi(14)),
                Line::Urc(Urc::NewMessage {
                    storage: "SM".into(),
                    index: 3
                }),
                Line::Urc(Urc::Ring),
                Line::Final(Final::Ok),
            ]
        );
    }

    #[test]
    fn pdu_urcs_take_the_next_line_as_their_pdu() {
        let lines = frame(&[b"\r\n+CMT: ,24\r\n0791AA\r\n+CDS: 26\r\n0006D6\r\n"], &[]);
        assert_eq!(
            lines,
            [
                Line::Urc(Urc::Deliver {
                    pdu: "0791AA".into()
                }),
                Line::Urc(Urc::StatusReport {
                    pdu: "0006D6".into()
                }),
            ]
        );
    }

    #[test]
    fn an_expected_prefix_wins_over_a_urc() {
        let lines = frame(&[b"\r\n+CLIP: 0,1\r\nOK\r\n"], &["+CLIP"]);
        assert_eq!(lines[0], Line::Response("+CLIP: 0,1".into()));
        let lines = frame(&[b"\r\n+CLIP: \"+59171234567\",145,,,,0\r\n"], &[]);
        assert_eq!(
            lines[0],
            Line::Urc(Urc::CallerId {
                number: "+59171234567".into()
            })
        );
    }

    #[test]
    fn the_echo_of_the_command_is_dropped() {
        let mut framer = Framer::new();
        framer.sent("AT+CGMI\r");
        let lines = framer.push(b"AT+CGMI\r\r\nhuawei\r\n\r\nOK\r\n", &[]);
        assert_eq!(
            lines,
            [Line::Response("huawei".into()), Line::Final(Final::Ok)]
        );
    }

    #[test]
    fn vendor_noise_is_an_event() {
        let lines = frame(&[b"\r\n^BOOT:123,0,0,0,72\r\n^MODE:5,4\r\n"], &[]);
        assert!(matches!(lines[0], Line::Urc(Urc::Vendor(_))));
        assert!(matches!(lines[1], Line::Urc(Urc::Vendor(_))));
    }

    #[test]
    fn garbage_never_panics_and_endless_lines_are_dropped() {
        let mut framer = Framer::new();
        let noise: Vec<u8> = (0..10_000u32).map(|i| (i * 7919 % 256) as u8).collect();
        let _ = framer.push(&noise, &["+X"]);
        let _ = framer.push(&vec![b'A'; MAX_LINE + 10], &[]);
        assert_eq!(
            framer.push(b"\r\nOK\r\n", &[]).last(),
            Some(&Line::Final(Final::Ok))
        );
    }
}
