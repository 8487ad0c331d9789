//! A modem's session on top of its actor: the init sequence, its identity, and the status the
//! API shows (signal, registration, operator).

use std::time::Duration;

use super::actor::{ModemError, ModemHandle};

/// How long an ordinary command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// Who the modem and its SIM are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// `AT+CGMI`, e.g. `huawei`.
    pub manufacturer: String,
    /// `AT+CGMM`, e.g. `E303`.
    pub model: String,
    /// `AT+CGMR`, the firmware.
    pub revision: String,
    /// `AT+CGSN`.
    pub imei: String,
    /// `AT+CIMI`, the SIM's subscriber identity.
    pub imsi: String,
}

/// Signal strength from `+CSQ` (TS 27.007 §8.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signal {
    /// The raw RSSI, 0–31, or 99 when unknown.
    pub rssi: u8,
    /// The strength in dBm (`-113 + 2 * rssi`), unless unknown.
    pub dbm: Option<i32>,
    /// 0–5 bars, as a phone would show.
    pub bars: u8,
}

impl Signal {
    /// The signal for an RSSI value.
    pub fn from_rssi(rssi: u8) -> Signal {
        let known = rssi <= 31;
        Signal {
            rssi,
            dbm: known.then(|| -113 + 2 * i32::from(rssi)),
            bars: match rssi {
                2..=7 => 1,
                8..=12 => 2,
                13..=17 => 3,
                18..=22 => 4,
                23..=31 => 5,
                _ => 0,
            },
        }
    }
}

/// Network registration from `+CREG` (TS 27.007 §7.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Registration {
    /// Not registered and not searching.
    NotRegistered,
    /// Registered on the home network.
    Home,
    /// Searching for a network.
    Searching,
    /// Registration denied.
    Denied,
    /// Unknown.
    Unknown,
    /// Registered, roaming.
    Roaming,
}

impl Registration {
    /// Whether messages can go out.
    pub fn is_registered(self) -> bool {
        matches!(self, Registration::Home | Registration::Roaming)
    }
}

/// What `GET /v1/modems/{id}` shows of the network side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkStatus {
    /// Signal strength.
    pub signal: Signal,
    /// Registration.
    pub registration: Registration,
    /// The operator's name, when registered.
    pub operator: Option<String>,
}

/// Reads the identity of a modem whose actor has run the init sequence
/// ([`super::actor::INIT`]).
///
/// # Errors
///
/// Fails with the first command the modem refuses or does not answer.
pub async fn initialize(modem: &ModemHandle) -> Result<Identity, ModemError> {
    let read = |command: &'static str| async move {
        let lines = modem.command(command, &[], COMMAND_TIMEOUT).await?;
        Ok::<_, ModemError>(identity_value(command, &lines))
    };
    Ok(Identity {
        manufacturer: read("AT+CGMI").await?,
        model: read("AT+CGMM").await?,
        revision: read("AT+CGMR").await?,
        imei: read("AT+CGSN").await?,
        imsi: read("AT+CIMI").await?,
    })
}

/// Reads signal, registration and operator.
///
/// # Errors
///
/// Fails when the modem refuses or does not answer one of the queries.
pub async fn network_status(modem: &ModemHandle) -> Result<NetworkStatus, ModemError> {
    let csq = modem.command("AT+CSQ", &["+CSQ"], COMMAND_TIMEOUT).await?;
    let creg = modem
        .command("AT+CREG?", &["+CREG"], COMMAND_TIMEOUT)
        .await?;
    let cops = modem
        .command("AT+COPS?", &["+COPS"], COMMAND_TIMEOUT)
        .await?;
    Ok(NetworkStatus {
        signal: csq
            .iter()
            .find_map(|l| parse_csq(l))
            .unwrap_or(Signal::from_rssi(99)),
        registration: creg
            .iter()
            .find_map(|l| parse_creg(l))
            .unwrap_or(Registration::Unknown),
        operator: cops.iter().find_map(|l| parse_cops(l)),
    })
}

/// The value of an identity query: the first answer line, without an echoed `+CGMI:` prefix
/// that some firmware adds.
fn identity_value(command: &str, lines: &[String]) -> String {
    let prefix = format!("{}:", command.trim_start_matches("AT"));
    lines
        .first()
        .map(|l| {
            l.strip_prefix(&prefix)
                .unwrap_or(l)
                .trim()
                .trim_matches('"')
        })
        .unwrap_or_default()
        .to_owned()
}

/// Reads `+CSQ: 17,99`.
pub fn parse_csq(line: &str) -> Option<Signal> {
    let rssi = line.strip_prefix("+CSQ:")?.split(',').next()?.trim();
    Some(Signal::from_rssi(rssi.parse().ok()?))
}

/// Reads `+CREG: 0,1` (or the unsolicited `+CREG: 1`).
pub fn parse_creg(line: &str) -> Option<Registration> {
    let fields: Vec<&str> = line.strip_prefix("+CREG:")?.split(',').collect();
    let stat = match fields.as_slice() {
        [stat] => stat,
        [_, stat, ..] => stat,
        [] => return None,
    };
    Some(match stat.trim().parse::<u8>().ok()? {
        0 => Registration::NotRegistered,
        1 => Registration::Home,
        2 => Registration::Searching,
        3 => Registration::Denied,
        5 => Registration::Roaming,
        _ => Registration::Unknown,
    })
}

/// Reads `+COPS: 0,0,"Tigo",2`; `None` when no operator is selected.
pub fn parse_cops(line: &str) -> Option<String> {
    let operator = line.strip_prefix("+COPS:")?.split(',').nth(2)?;
    let operator = operator.trim().trim_matches('"');
    (!operator.is_empty()).then(|| operator.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_is_read_in_dbm_and_bars() {
        assert_eq!(
            parse_csq("+CSQ: 17,99"),
            Some(Signal {
                rssi: 17,
                dbm: Some(-79),
                bars: 3
            })
        );
        assert_eq!(parse_csq("+CSQ: 31,0").unwrap().bars, 5);
        assert_eq!(parse_csq("+CSQ: 99,99").unwrap().dbm, None);
        assert_eq!(parse_csq("+CSQ: x"), None);
    }

    #[test]
    fn registration_is_read_from_both_forms() {
        assert_eq!(parse_creg("+CREG: 0,1"), Some(Registration::Home));
        assert_eq!(
            parse_creg("+CREG: 2,5,\"00C3\",\"0010\""),
            Some(Registration::Roaming)
        );
        assert_eq!(parse_creg("+CREG: 3"), Some(Registration::Denied));
        assert!(!Registration::Searching.is_registered());
    }

    #[test]
    fn the_operator_name_is_unquoted() {
        assert_eq!(parse_cops("+COPS: 0,0,\"Tigo\",2"), Some("Tigo".into()));
        assert_eq!(parse_cops("+COPS: 0"), None);
    }

    #[test]
    fn identity_values_lose_an_echoed_prefix() {
        assert_eq!(
            identity_value("AT+CGMI", &["+CGMI: huawei".into()]),
            "huawei"
        );
        assert_eq!(
            identity_value("AT+CGSN", &["861234567890123".into()]),
            "861234567890123"
        );
    }
}
