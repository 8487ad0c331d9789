//! PDU vectors, both ways: the published examples of TS 23.040 encodings, and round trips of
//! what this codec writes through what it reads.

use pregonero::modem::pdu::{
    AddressKind, Concat, PduError, Received, SubmitOptions, decode, encode_submit,
};

fn deliver(hex: &str) -> pregonero::modem::pdu::Deliver {
    match decode(hex) {
        Ok(Received::Deliver(d)) => d,
        other => panic!("not a DELIVER: {other:?}"),
    }
}

#[test]
fn the_textbook_deliver_is_read() {
    // SMSC +27381000015; sender 27838890001 (national plan); 1999-03-29 15:16:59 +02:00;
    // "hellohello".
    let d = deliver("07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37");
    assert_eq!(d.smsc.unwrap().value, "+27381000015");
    assert_eq!(d.address.value, "27838890001");
    assert_eq!(d.text, "hellohello");
    assert_eq!(
        d.timestamp.unwrap().to_rfc3339(),
        "1999-03-29T15:16:59+02:00"
    );
    assert_eq!(d.concat, None);
}

#[test]
fn a_status_report_with_an_impossible_time_still_counts() {
    // The same report with month 13 in the discharge time: the status must not be lost.
    let report = match decode("0006D60B911326880736F4111011719551401131117195714000") {
        Ok(Received::StatusReport(r)) => r,
        other => panic!("not a status report: {other:?}"),
    };
    assert_eq!(report.message_reference, 0xD6);
    assert!(report.submitted.is_some());
    assert_eq!(report.discharged, None);
    assert_eq!(report.status, 0);
}

#[test]
fn a_status_report_is_read() {
    let report = match decode("0006D60B911326880736F4111011719551401110117195714000") {
        Ok(Received::StatusReport(r)) => r,
        other => panic!("not a status report: {other:?}"),
    };
    assert_eq!(report.message_reference, 0xD6);
    assert_eq!(report.recipient.kind, AddressKind::International);
    assert_eq!(report.recipient.value, "+31628870634");
    assert_eq!(
        report.submitted.unwrap().to_rfc3339(),
        "2011-01-11T17:59:15+01:00"
    );
    assert_eq!(
        report.discharged.unwrap().to_rfc3339(),
        "2011-01-11T17:59:17+01:00"
    );
    assert_eq!(report.status, 0);
    assert_eq!(
        report.outcome(),
        pregonero::modem::pdu::ReportOutcome::Delivered
    );
}

#[test]
fn what_is_encoded_decodes_to_the_same_text_part_by_part() {
    let texts = [
        "Hola Juan, su cuota 3 de Bs 250,00 vence el 05/12/2026.".to_owned(),
        "Información: {saldo} [pendiente] ~ €".to_owned(),
        "x".repeat(400),
        format!("{}€", "y".repeat(152)),
        "Ñandú 😀 ".repeat(40),
    ];
    for text in texts {
        let options = SubmitOptions {
            reference: 7,
            status_report: true,
            validity_minutes: Some(60),
        };
        let parts = encode_submit("+59171234567", &text, &options).unwrap();
        let mut rebuilt = String::new();
        for (i, part) in parts.iter().enumerate() {
            assert_eq!(part.tpdu_length * 2 + 2, part.hex.len());
            let submit = match decode(&part.hex).unwrap() {
                Received::Submit(s) => s,
                other => panic!("not a SUBMIT: {other:?}"),
            };
            assert_eq!(submit.address.value, "+59171234567");
            assert!(submit.status_report);
            if parts.len() > 1 {
                let expected = Concat {
                    reference: 7,
                    total: parts.len() as u8,
                    part: i as u8 + 1,
                };
                assert_eq!(submit.concat, Some(expected));
            }
            rebuilt.push_str(&submit.text);
        }
        assert_eq!(rebuilt, text);
    }
}

#[test]
fn garbage_is_an_error_never_a_panic() {
    let cases = [
        "",
        "0",
        "zz",
        "00",
        "0004",
        "07917283010010",
        "0004 0B",
        "000400",
        "00FF",
        "0040FFFFFFFFFFFFFFFFFFFF",
        "0006D60B9113",
        "07917283010010F5440BC8723888",
    ];
    for hex in cases {
        assert!(decode(hex).is_err(), "{hex:?} decoded");
    }
    // Every prefix of a valid PDU is refused cleanly.
    let valid = "07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37";
    for end in (0..valid.len()).step_by(2) {
        let _ = decode(&valid[..end]);
    }
    assert_eq!(decode("0003"), Err(PduError::Unsupported(3)));
}

/// A small deterministic generator, so the random texts are the same on every run.
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn random_texts_round_trip_through_submit_and_decode() {
    // Plain letters, the default alphabet's accents, extension characters, characters only
    // UCS-2 holds, and one outside the basic plane.
    let pool: Vec<char> = "abcXYZ019 .,¿¡ñÑéü€[]{}^~|\\\nñáíóúçÁ😀ß@£$_"
        .chars()
        .collect();
    let mut rng = Xorshift(0x5eed_1234_abcd_0042);
    for round in 0..500 {
        let len = (rng.next() % 700) as usize + 1;
        let text: String = (0..len)
            .map(|_| pool[(rng.next() % pool.len() as u64) as usize])
            .collect();
        let options = SubmitOptions {
            reference: round as u8,
            ..SubmitOptions::default()
        };
        let parts = encode_submit("+59171234567", &text, &options).unwrap();
        let (_, counted) = pregonero::domain::count_segments(&text);
        assert_eq!(parts.len(), counted, "round {round}");

        let rebuilt: String = parts
            .iter()
            .map(|p| match decode(&p.hex) {
                Ok(Received::Submit(s)) => s.text,
                other => panic!("round {round}: {other:?}"),
            })
            .collect();
        assert_eq!(rebuilt, text, "round {round}");
    }
}
