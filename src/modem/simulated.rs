//! The simulated modem's ports: in memory, which is what `modem_port = "sim"` opens (no extra
//! thread, any operating system), and on a pseudo-terminal, which gives tests and
//! `pregonero modem simulate` a real tty path that the production serial-port code opens like
//! any USB modem while the simulator answers on the other side.
//!
//! Both share a [`SimulatedModem`]: the [`Simulator`] state machine behind a lock, with a
//! condition variable that wakes a waiting reader when the host writes or a test injects a
//! received text or a call.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serialport::{SerialPort, TTYPort};

use super::simulator::{SimConfig, Simulator};
use super::transport::Port;

/// One simulated modem, shared by its port and by whoever injects traffic; cheap to clone.
#[derive(Clone, Debug)]
pub struct SimulatedModem {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    simulator: Mutex<Simulator>,
    /// Signalled whenever the simulator may have something new to say.
    changed: Condvar,
}

impl SimulatedModem {
    /// A modem just switched on.
    pub fn new(config: SimConfig) -> SimulatedModem {
        SimulatedModem {
            shared: Arc::new(Shared {
                simulator: Mutex::new(Simulator::new(config)),
                changed: Condvar::new(),
            }),
        }
    }

    /// Acts on the simulator (to deliver a text or ring a call) at the current time, and wakes
    /// a reader waiting on its port.
    pub fn with_simulator<R>(&self, act: impl FnOnce(&mut Simulator, u64) -> R) -> R {
        let result = act(&mut self.lock(), now_ms());
        self.shared.changed.notify_all();
        result
    }

    /// A port onto this modem, held in memory; reads wait at most `read_timeout`.
    pub fn open_port(&self, read_timeout: Duration) -> MemoryPort {
        MemoryPort {
            modem: self.clone(),
            pending: Vec::new(),
            read_timeout,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Simulator> {
        self.shared
            .simulator
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

/// A port onto a [`SimulatedModem`] in memory: writes go straight into the simulator, and a
/// read waits (without polling) until the simulator has something to say or the timeout ends.
#[derive(Debug)]
pub struct MemoryPort {
    modem: SimulatedModem,
    /// Output taken from the simulator that did not fit the caller's buffer yet.
    pending: Vec<u8>,
    read_timeout: Duration,
}

impl Read for MemoryPort {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if self.pending.is_empty() {
            self.pending = self.wait_for_output()?;
        }
        let n = self.pending.len().min(buffer.len());
        buffer[..n].copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        Ok(n)
    }
}

impl MemoryPort {
    /// Waits until the simulator has said something, sleeping until its next scheduled output
    /// or until the host or a test wakes it.
    fn wait_for_output(&self) -> io::Result<Vec<u8>> {
        let deadline = Instant::now() + self.read_timeout;
        let mut simulator = self.modem.lock();
        loop {
            let now = now_ms();
            let output = simulator.read(now);
            if !output.is_empty() {
                return Ok(output);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            // Scheduled output is at least a millisecond ahead: what was due has been read.
            let wait = simulator.next_output_at().map_or(left, |at| {
                Duration::from_millis(at.saturating_sub(now)).min(left)
            });
            simulator = self
                .modem
                .shared
                .changed
                .wait_timeout(simulator, wait.max(Duration::from_millis(1)))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl Port for MemoryPort {
    fn try_clone_port(&self) -> io::Result<Box<dyn Port>> {
        Ok(Box::new(self.modem.open_port(self.read_timeout)))
    }
}

impl Write for MemoryPort {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.modem.with_simulator(|sim, now| sim.write(bytes, now));
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A simulated modem answering on the master side of a pseudo-terminal.
pub struct PtyModem {
    path: String,
    modem: SimulatedModem,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl PtyModem {
    /// Opens a pseudo-terminal and starts answering on it.
    ///
    /// # Errors
    ///
    /// Fails when the system has no pseudo-terminal to give.
    pub fn start(config: SimConfig) -> io::Result<PtyModem> {
        let (mut master, slave) = TTYPort::pair().map_err(io::Error::from)?;
        let path = slave
            .name()
            .ok_or_else(|| io::Error::other("the pseudo-terminal has no path"))?;
        master
            .set_timeout(Duration::from_millis(10))
            .map_err(io::Error::from)?;

        let modem = SimulatedModem::new(config);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (modem, stop) = (modem.clone(), stop.clone());
            std::thread::Builder::new()
                .name("modem-simulator".into())
                .spawn(move || {
                    // The slave end stays open here so that the terminal does not hang up
                    // between the times the gateway opens and closes it.
                    let _slave = slave;
                    serve(&mut master, &modem, &stop);
                })?
        };
        Ok(PtyModem {
            path,
            modem,
            stop,
            thread: Some(thread),
        })
    }

    /// The path to open as the modem's serial port.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The simulated modem behind the terminal.
    pub fn modem(&self) -> &SimulatedModem {
        &self.modem
    }

    /// Acts on the simulator (to deliver a text or ring a call) at the current time.
    pub fn with_simulator<R>(&self, act: impl FnOnce(&mut Simulator, u64) -> R) -> R {
        self.modem.with_simulator(act)
    }
}

impl Drop for PtyModem {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Moves bytes between the terminal and the simulator until `stop` is set. The terminal is
/// read with a 10 ms timeout, which is also how late scheduled output may come out.
fn serve(master: &mut TTYPort, modem: &SimulatedModem, stop: &AtomicBool) {
    let mut buffer = [0u8; 1024];
    while !stop.load(Ordering::Relaxed) {
        let input = match master.read(&mut buffer) {
            Ok(n) => &buffer[..n],
            Err(e) if e.kind() == io::ErrorKind::TimedOut => &[],
            // Nobody has the slave open (EIO): wait for the gateway to open it again.
            Err(_) => {
                std::thread::sleep(Duration::from_millis(5));
                &[]
            }
        };
        let output = modem.with_simulator(|sim, now| {
            if !input.is_empty() {
                sim.write(input, now);
            }
            sim.read(now)
        });
        if !output.is_empty() {
            let _ = master.write_all(&output);
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads until `wanted` has been seen, or the port times out.
    fn read_until(port: &mut MemoryPort, wanted: &str) -> String {
        let mut seen = String::new();
        let mut buffer = [0u8; 4];
        while !seen.contains(wanted) {
            match port.read(&mut buffer) {
                Ok(n) => seen.push_str(&String::from_utf8_lossy(&buffer[..n])),
                Err(e) => panic!("{e} after {seen:?}"),
            }
        }
        seen
    }

    #[test]
    fn the_memory_port_answers_commands_in_small_reads() {
        let modem = SimulatedModem::new(SimConfig::default());
        let mut port = modem.open_port(Duration::from_millis(200));
        port.write_all(b"ATE0\r").unwrap();
        // The echo of the command itself comes first, four bytes at a time.
        assert!(read_until(&mut port, "OK").starts_with("ATE0"));
        port.write_all(b"AT+CGMM\r").unwrap();
        assert!(read_until(&mut port, "OK").contains("E303"));
    }

    #[test]
    fn a_quiet_memory_port_times_out() {
        let modem = SimulatedModem::new(SimConfig::default());
        let mut port = modem.open_port(Duration::from_millis(20));
        let started = Instant::now();
        let err = port.read(&mut [0u8; 16]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(20));
    }

    #[test]
    fn an_injected_call_wakes_a_waiting_reader() {
        let modem = SimulatedModem::new(SimConfig::default());
        let mut port = modem.open_port(Duration::from_secs(5));
        let ringer = modem.clone();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            ringer.with_simulator(|sim, now| sim.ring("+59171234567", now));
        });
        let started = Instant::now();
        let seen = read_until(&mut port, "+CLIP");
        thread.join().unwrap();
        assert!(seen.contains("RING"));
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
