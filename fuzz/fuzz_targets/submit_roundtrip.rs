//! Any text the API could accept, encoded into SMS-SUBMIT segments and read back: every segment
//! must decode, carry its part of the concatenation header, and the parts joined must give the
//! text again in as many segments as the API counted, with no escape pair or surrogate pair
//! split between two segments.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pregonero::modem::pdu::{Received, SubmitOptions, decode, encode_submit};

fuzz_target!(|text: &str| {
    let options = SubmitOptions {
        status_report: true,
        validity_minutes: Some(24 * 60),
        reference: 7,
    };
    let Ok(parts) = encode_submit("+59171234567", text, &options) else {
        return;
    };
    // The API counts segments for the counter and the answer; the encoder must agree.
    assert_eq!(parts.len(), pregonero::domain::count_segments(text).1);
    let mut joined = String::new();
    for (n, part) in parts.iter().enumerate() {
        let Ok(Received::Submit(submit)) = decode(&part.hex) else {
            panic!("segment {} of {text:?} does not decode", n + 1);
        };
        assert_eq!(submit.address.value, "+59171234567");
        if parts.len() > 1 {
            let concat = submit.concat.expect("a concatenation header");
            assert_eq!((concat.part, concat.total), (n as u8 + 1, parts.len() as u8));
        }
        joined.push_str(&submit.text);
    }
    assert_eq!(joined, text);
});
