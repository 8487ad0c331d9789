//! The serial line: opening a modem's port with its settings, and listing the ports of the
//! machine. The simulated modem's own ports, in memory and on a pseudo-terminal, are in
//! [`super::simulated`].
//!
//! A blocking `serialport` handle with a short read timeout, owned by one thread per modem, is
//! as fast as an async serial stream and much simpler.

use std::io::{Read, Write};
use std::time::Duration;

use serialport::{DataBits, FlowControl, Parity, SerialPort, SerialPortType, StopBits};

use crate::config::Secret;

/// What the modem actor reads and writes: a serial port, or the simulator's memory port. Reads
/// wait at most the timeout the port was opened with, then fail with
/// [`std::io::ErrorKind::TimedOut`].
pub trait Port: Read + Write + Send {
    /// A second handle on the same port, so that one thread can read while another writes.
    ///
    /// # Errors
    ///
    /// Fails when the operating system refuses to duplicate the handle.
    fn try_clone_port(&self) -> std::io::Result<Box<dyn Port>>;
}

impl Port for Box<dyn SerialPort> {
    fn try_clone_port(&self) -> std::io::Result<Box<dyn Port>> {
        Ok(Box::new(self.try_clone()?))
    }
}

/// How to open a modem's serial port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortSettings {
    /// `/dev/ttyUSB0`, `COM3`, or a pseudo-terminal's path.
    pub path: String,
    /// Bits per second; USB modems mostly ignore it, 115200 is the usual choice.
    pub baud_rate: u32,
    /// Data bits.
    pub data_bits: DataBits,
    /// Parity.
    pub parity: Parity,
    /// Stop bits.
    pub stop_bits: StopBits,
    /// Flow control.
    pub flow_control: FlowControl,
    /// The SIM's PIN, given when the SIM asks for it; never traced or logged.
    pub pin: Option<Secret>,
}

impl PortSettings {
    /// 115200 baud, 8 data bits, no parity, 1 stop bit, no flow control: what GSM USB modems
    /// expect.
    pub fn new(path: impl Into<String>) -> PortSettings {
        PortSettings {
            path: path.into(),
            baud_rate: 115_200,
            data_bits: DataBits::Eight,
            parity: Parity::None,
            stop_bits: StopBits::One,
            flow_control: FlowControl::None,
            pin: None,
        }
    }

    /// Opens the port; reads wait at most `read_timeout` for a byte.
    ///
    /// # Errors
    ///
    /// Fails when the port does not exist, is busy, or refuses the settings.
    pub fn open(&self, read_timeout: Duration) -> Result<Box<dyn SerialPort>, serialport::Error> {
        serialport::new(&self.path, self.baud_rate)
            .data_bits(self.data_bits)
            .parity(self.parity)
            .stop_bits(self.stop_bits)
            .flow_control(self.flow_control)
            .timeout(read_timeout)
            .open()
    }
}

impl PortSettings {
    /// The settings as stored in the database (the PIN too: the modem needs it at every
    /// reconnect; the API never shows it).
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "path": self.path,
            "baud_rate": self.baud_rate,
            "data_bits": data_bits_number(self.data_bits),
            "parity": parity_name(self.parity),
            "stop_bits": stop_bits_number(self.stop_bits),
            "flow_control": flow_control_name(self.flow_control),
            "pin": self.pin.as_ref().map(Secret::expose),
        })
        .to_string()
    }

    /// Reads settings stored by [`PortSettings::to_json`]; what is missing is taken from
    /// `defaults`.
    ///
    /// # Errors
    ///
    /// Fails when the text is not such settings.
    pub fn from_json(text: &str, defaults: &PortSettings) -> Result<PortSettings, String> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let text_of = |key: &str| value.get(key).and_then(serde_json::Value::as_str);
        let number_of = |key: &str| value.get(key).and_then(serde_json::Value::as_u64);
        let bad = |key: &str| format!("`{key}` is not valid");
        Ok(PortSettings {
            path: text_of("path").unwrap_or(&defaults.path).to_owned(),
            baud_rate: match number_of("baud_rate") {
                Some(n) => u32::try_from(n).map_err(|_| bad("baud_rate"))?,
                None => defaults.baud_rate,
            },
            data_bits: match number_of("data_bits") {
                Some(n) => parse_data_bits(n).ok_or_else(|| bad("data_bits"))?,
                None => defaults.data_bits,
            },
            parity: match text_of("parity") {
                Some(p) => parse_parity(p).ok_or_else(|| bad("parity"))?,
                None => defaults.parity,
            },
            stop_bits: match number_of("stop_bits") {
                Some(n) => parse_stop_bits(n).ok_or_else(|| bad("stop_bits"))?,
                None => defaults.stop_bits,
            },
            flow_control: match text_of("flow_control") {
                Some(f) => parse_flow_control(f).ok_or_else(|| bad("flow_control"))?,
                None => defaults.flow_control,
            },
            pin: text_of("pin").map(Secret::new),
        })
    }
}

/// 5–8.
pub fn data_bits_number(bits: DataBits) -> u8 {
    match bits {
        DataBits::Five => 5,
        DataBits::Six => 6,
        DataBits::Seven => 7,
        DataBits::Eight => 8,
    }
}

/// Reads 5–8.
pub fn parse_data_bits(n: u64) -> Option<DataBits> {
    Some(match n {
        5 => DataBits::Five,
        6 => DataBits::Six,
        7 => DataBits::Seven,
        8 => DataBits::Eight,
        _ => return None,
    })
}

/// `none`, `odd` or `even`.
pub fn parity_name(parity: Parity) -> &'static str {
    match parity {
        Parity::None => "none",
        Parity::Odd => "odd",
        Parity::Even => "even",
    }
}

/// Reads `none`, `odd` or `even`.
pub fn parse_parity(name: &str) -> Option<Parity> {
    Some(match name {
        "none" => Parity::None,
        "odd" => Parity::Odd,
        "even" => Parity::Even,
        _ => return None,
    })
}

/// 1 or 2.
pub fn stop_bits_number(bits: StopBits) -> u8 {
    match bits {
        StopBits::One => 1,
        StopBits::Two => 2,
    }
}

/// Reads 1 or 2.
pub fn parse_stop_bits(n: u64) -> Option<StopBits> {
    Some(match n {
        1 => StopBits::One,
        2 => StopBits::Two,
        _ => return None,
    })
}

/// `none`, `software` (XON/XOFF) or `hardware` (RTS/CTS).
pub fn flow_control_name(flow: FlowControl) -> &'static str {
    match flow {
        FlowControl::None => "none",
        FlowControl::Software => "software",
        FlowControl::Hardware => "hardware",
    }
}

/// Reads `none`, `software` or `hardware`.
pub fn parse_flow_control(name: &str) -> Option<FlowControl> {
    Some(match name {
        "none" => FlowControl::None,
        "software" => FlowControl::Software,
        "hardware" => FlowControl::Hardware,
        _ => return None,
    })
}

/// A serial port found on the machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundPort {
    /// Its path.
    pub path: String,
    /// USB vendor and product ids, when it is a USB device (`12d1:1506` is a Huawei modem).
    pub usb: Option<(u16, u16)>,
    /// The manufacturer and product the device reports, when it does.
    pub description: Option<String>,
}

/// The serial ports of this machine.
///
/// # Errors
///
/// Fails when the operating system cannot list them.
pub fn list_ports() -> Result<Vec<FoundPort>, serialport::Error> {
    Ok(serialport::available_ports()?
        .into_iter()
        .map(|port| {
            let (usb, description) = match port.port_type {
                SerialPortType::UsbPort(info) => {
                    let description = [info.manufacturer, info.product]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(" ");
                    (
                        Some((info.vid, info.pid)),
                        (!description.is_empty()).then_some(description),
                    )
                }
                _ => (None, None),
            };
            FoundPort {
                path: port.port_name,
                usb,
                description,
            }
        })
        .collect())
}
