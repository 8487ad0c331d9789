//! Any bytes from the serial line, cut into reads of any size, with any answer prefixes
//! expected: the framer must never panic, and whatever it frames must be the same however the
//! bytes were split into reads.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pregonero::modem::at::{Framer, Line};

/// Frames `bytes` in reads of the sizes given by `cuts` (1–16 bytes each, cycling).
fn frame(bytes: &[u8], cuts: &[u8], expected: &[&str]) -> Vec<Line> {
    let mut framer = Framer::new();
    framer.sent("AT+CMGS=23");
    let mut lines = Vec::new();
    let mut rest = bytes;
    let mut n = 0;
    while !rest.is_empty() {
        let size = cuts.get(n % cuts.len().max(1)).map_or(rest.len(), |c| 1 + usize::from(c % 16));
        let (read, after) = rest.split_at(size.min(rest.len()));
        lines.extend(framer.push(read, expected));
        rest = after;
        n += 1;
    }
    lines
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks what the command in flight answers with; the next eight cut reads.
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let (cuts, bytes) = rest.split_at(rest.len().min(8));
    let expected: &[&str] = match pick % 4 {
        0 => &[],
        1 => &["+CMGS"],
        2 => &["+CMGL"],
        _ => &["+CSQ", "+CREG"],
    };
    let whole = frame(bytes, &[], expected);
    let split = frame(bytes, cuts, expected);
    assert_eq!(whole, split, "framing depends on how the reads were cut");
});
