//! How busy the dispatcher keeps simulated modems, and how fast it moves messages.
//!
//! `cargo run --release --example modem_bench -- <modems> <ms per segment> <messages> [pty]`
//! stores the messages in a fresh SQLite database (WAL, `synchronous=FULL`, as in production,
//! with each modem's journal beside it), starts the modems (each a simulated E303 driven by the
//! production actor: in memory, as `modem_port = "sim"` runs it, or with `pty` on its own
//! pseudo-terminal through the serial-port code), starts sending and waits until the database
//! has every message as sent. It prints the rate, and for each modem the share of the run spent
//! on the air and the idle gaps between a `+CMGS` answer and the next `AT+CMGS`. BENCHMARKS.md
//! has the runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pregonero::dispatch::SendingControl;
use pregonero::dispatch::fleet::Fleet;
use pregonero::domain::{Channel, Encoding, MessageStatus, Region, SendingWindow};
use pregonero::eventlog::EventLog;
use pregonero::modem::simulated::PtyModem;
use pregonero::modem::simulator::SimConfig;
use pregonero::modem::transport::PortSettings;
use pregonero::store::{MessageWriter, NewMessage, Store};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let pty = args.last().is_some_and(|a| a == "pty");
    if pty {
        args.pop();
    }
    let args: Vec<u64> = args.iter().map(|a| a.parse()).collect::<Result<_, _>>()?;
    let [modems, segment_ms, messages] = args[..] else {
        anyhow::bail!("usage: modem_bench <modems> <ms per segment> <messages> [pty]");
    };

    let dir = tempfile::tempdir()?;
    let store = Store::connect(&format!("sqlite://{}", dir.path().join("b.db").display())).await?;
    store.migrate().await?;
    store.spawn_checkpointer();
    let writer = MessageWriter::spawn(store.clone());
    for chunk in (0..messages).collect::<Vec<_>>().chunks(1_000) {
        let batch = chunk
            .iter()
            .map(|n| NewMessage {
                client_ref: format!("bench-{n}"),
                to: format!("+591{}", 70_000_000 + n),
                text: format!("Recordatorio {n}: su cuota vence el 05/12/2026."),
                encoding: Encoding::Gsm7,
                segments: 1,
                load_id: None,
                channel: Channel::Api,
                created_by: "bench".into(),
                send_at: None,
            })
            .collect();
        writer.insert(batch).await?;
    }

    let window = SendingWindow::parse("00:00", "24:00", chrono_tz::UTC)?;
    let control = Arc::new(SendingControl::new(false, window));
    let events = Arc::new(EventLog::open(&dir.path().join("logs"), chrono_tz::UTC)?);
    let ids: Vec<String> = (1..=modems).map(|i| format!("sim-{i}")).collect();
    let config = SimConfig {
        segment_time_ms: segment_ms,
        report_delay_ms: segment_ms.max(10),
        ..SimConfig::default()
    };
    let ptys = if pty {
        (0..modems)
            .map(|_| PtyModem::start(config.clone()))
            .collect::<Result<Vec<_>, _>>()?
    } else {
        Vec::new()
    };
    let ports: Vec<PortSettings> = if pty {
        ptys.iter().map(|p| PortSettings::new(p.path())).collect()
    } else {
        ids.iter().map(|_| PortSettings::new("sim")).collect()
    };
    let fleet = Fleet::new(
        store.clone(),
        control.clone(),
        events,
        Region::parse("BO")?,
        config,
        dir.path().join("journal"),
        ids.iter().cloned().zip(ports).collect(),
    );
    fleet.start().await?;
    while !fleet.list().iter().all(|m| m.ready) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut simulated = Vec::new();
    for (n, id) in ids.iter().enumerate() {
        simulated.push(match ptys.get(n) {
            Some(pty) => pty.modem().clone(),
            None => fleet.simulator(id).await?,
        });
    }

    let started = Instant::now();
    control.set_started(true);
    // Watching the modems' own counts keeps the database free for the dispatcher while it runs.
    let accepted = || -> u64 {
        simulated
            .iter()
            .map(|s| s.with_simulator(|s, _| s.accepted()))
            .sum()
    };
    while accepted() < messages {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The run ends when the database has every message as sent: after the last `+CMGS`
    // answer, and after the journal's last batch.
    loop {
        let counts = store.count_messages_by_status().await?;
        let count = |s: MessageStatus| counts.iter().find(|(c, _)| *c == s).map_or(0, |c| c.1);
        let done = count(MessageStatus::Sent) + count(MessageStatus::Delivered);
        let failed = count(MessageStatus::Failed);
        anyhow::ensure!(failed == 0, "{failed} messages failed");
        if done >= messages as i64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    println!(
        "{modems} modem(s), {segment_ms} ms a segment, {messages} messages sent and recorded in \
         {:.2} s: {:.1} messages/s",
        elapsed.as_secs_f64(),
        messages as f64 / elapsed.as_secs_f64()
    );

    let mut busiest = 0.0_f64;
    let mut idlest = 100.0_f64;
    for (id, simulated) in ids.iter().zip(&simulated) {
        let (air, mut gaps) = simulated.with_simulator(|s, _| (s.air_ms(), s.gaps_ms().to_vec()));
        gaps.sort_unstable();
        let busy = 100.0 * air as f64 / elapsed.as_millis() as f64;
        busiest = busiest.max(busy);
        idlest = idlest.min(busy);
        let at = |q: f64| gaps.get(((gaps.len() as f64 - 1.0) * q) as usize).copied();
        if modems <= 4 {
            println!(
                "  {id}: on the air {busy:.2}% of the run; gap +CMGS → AT+CMGS p50 {:?} ms, \
                 p99 {:?} ms, max {:?} ms over {} gaps",
                at(0.5),
                at(0.99),
                gaps.last(),
                gaps.len()
            );
        }
    }
    if segment_ms > 0 {
        println!("  busy: least {idlest:.2}%, most {busiest:.2}% of the run");
    }
    Ok(())
}
