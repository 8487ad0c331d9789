//! `+CMS ERROR` codes (3GPP TS 27.005 §3.2.5, with the network causes of TS 24.011 §8.2.5.4
//! below 128): what each means in words an operator can act on, and whether sending the message
//! again later can help.
//!
//! Transient errors are the network's or the modem's passing trouble: the message is retried
//! with back-off. Permanent errors are about the message or the recipient: retrying would only
//! spend credit, so the message fails at once with the reason.

use std::fmt;

/// A `+CMS ERROR: n` the modem answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CmsError(pub u16);

impl CmsError {
    /// Whether trying again later may succeed.
    pub fn is_transient(self) -> bool {
        match self.0 {
            // Network causes: out of service, out of order, temporary failure, congestion,
            // resources unavailable.
            27 | 38 | 41 | 42 | 47 => true,
            // ME and SIM trouble, memory, no network, network timeout.
            300..=302 | 310..=316 | 320 | 322 | 330..=332 => true,
            // Unknown and manufacturer-specific codes: better one retry too many than a
            // reminder lost to a code nobody documented.
            500..=u16::MAX => true,
            _ => false,
        }
    }

    /// What the code means.
    pub fn reason(self) -> &'static str {
        match self.0 {
            1 => "unassigned number",
            8 => "operator determined barring",
            10 => "call barred",
            21 => "short message transfer rejected",
            27 => "destination out of service",
            28 => "unidentified subscriber",
            29 => "facility rejected",
            30 => "unknown subscriber",
            38 => "network out of order",
            41 => "temporary failure",
            42 => "congestion",
            47 => "resources unavailable",
            50 => "requested facility not subscribed",
            69 => "requested facility not implemented",
            81 => "invalid short message transfer reference",
            95 => "invalid message",
            96 => "invalid mandatory information",
            97 => "message type non-existent or not implemented",
            98 => "message not compatible with the protocol state",
            99 => "information element non-existent or not implemented",
            111 => "protocol error",
            127 => "interworking error",
            128..=255 => "rejected by the service centre (TP failure cause)",
            300 => "modem failure",
            301 => "SMS service of the modem reserved",
            302 => "operation not allowed",
            303 => "operation not supported",
            304 => "invalid PDU mode parameter",
            305 => "invalid text mode parameter",
            310 => "SIM not inserted",
            311 => "SIM PIN required",
            312 => "PH-SIM PIN required",
            313 => "SIM failure",
            314 => "SIM busy",
            315 => "SIM wrong",
            316 => "SIM PUK required",
            320 => "memory failure",
            321 => "invalid memory index",
            322 => "memory full",
            330 => "service centre address unknown",
            331 => "no network service",
            332 => "network timeout",
            340 => "no acknowledgement expected",
            500 => "unknown error",
            _ => "error specific to the modem's manufacturer",
        }
    }
}

impl fmt::Display for CmsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "+CMS ERROR {}: {}", self.0, self.reason())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issue_examples_are_classified() {
        for transient in [38, 42, 331, 332, 500] {
            assert!(CmsError(transient).is_transient(), "{transient}");
        }
        for permanent in [21, 28, 29, 50] {
            assert!(!CmsError(permanent).is_transient(), "{permanent}");
        }
    }

    #[test]
    fn reasons_are_readable() {
        assert_eq!(CmsError(42).to_string(), "+CMS ERROR 42: congestion");
        assert_eq!(CmsError(304).reason(), "invalid PDU mode parameter");
        assert_eq!(
            CmsError(600).reason(),
            "error specific to the modem's manufacturer"
        );
    }

    #[test]
    fn message_faults_are_permanent_and_modem_faults_transient() {
        assert!(!CmsError(304).is_transient());
        assert!(!CmsError(96).is_transient());
        assert!(CmsError(314).is_transient());
        assert!(CmsError(322).is_transient());
    }
}
