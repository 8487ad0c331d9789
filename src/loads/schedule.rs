//! The daily automatic load: at the configured hour, in the gateway's time zone, the ERP
//! source is loaded for the day. Nodes sharing one database take turns through a row per day:
//! the node that stores it runs the load, the others see it taken.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use std::pin::Pin;

use tokio::sync::watch;

use super::{Dates, LoadError, LoadKind, Loader};
use crate::store::{NewLoad, Store};

/// The job name under which daily runs are claimed.
pub const JOB: &str = "automatic-load";

/// Who automatic loads are recorded as created by.
pub const CREATED_BY: &str = "schedule";

/// The longest sleep between looks at the settings, so that a changed hour or a schedule
/// turned on is seen within it.
const LOOK_EVERY: Duration = Duration::from_secs(30);

/// Where the scheduler reads the time and waits.
pub trait Clock: Send + Sync + 'static {
    /// Now.
    fn now(&self) -> DateTime<Utc>;

    /// Waits for `length` to pass on this clock.
    fn sleep(&self, length: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// The system's clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep(&self, length: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(tokio::time::sleep(length))
    }
}

/// A clock that moves only when told, for driving the schedule through days in tests. (Tokio's
/// paused clock jumps ahead whenever the runtime waits, which also fires the database pool's
/// timeouts while a query runs on SQLite's threads.)
pub struct ManualClock {
    now: watch::Sender<DateTime<Utc>>,
}

impl ManualClock {
    /// A clock reading `start`.
    pub fn starting_at(start: DateTime<Utc>) -> ManualClock {
        ManualClock {
            now: watch::Sender::new(start),
        }
    }

    /// Moves the clock forward, waking the sleepers whose time has come.
    pub fn advance(&self, by: chrono::Duration) {
        self.now.send_modify(|now| *now += by);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.borrow()
    }

    fn sleep(&self, length: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        let until = self.now() + chrono::Duration::from_std(length).unwrap_or_default();
        let mut changes = self.now.subscribe();
        Box::pin(async move {
            // The sender lives as long as the clock, which this future borrows.
            let _ = changes.wait_for(|now| *now >= until).await;
        })
    }
}

/// A claimed run with no load recorded for it after this long was lost to a crash between the
/// claim and the load's start; the node's catch-up at start-up runs it again.
const LOST_CLAIM: chrono::Duration = chrono::Duration::minutes(10);

/// Runs the daily schedule until the task is dropped. On start it catches up with today's run
/// when its hour has passed and no node has run it: the gateway was down at that hour. The
/// hour is read again on every look, so a changed hour counts from the next look.
pub async fn run(loader: Arc<Loader>, store: Store, node: String, clock: Arc<dyn Clock>) {
    let tz = loader.tz();
    // The day whose run comes next, while the schedule is on.
    let mut next_day: Option<NaiveDate> = None;
    let mut starting = true;
    loop {
        let now = clock.now();
        let settings = match loader.schedule().await {
            Ok(s) => s,
            Err(err) => {
                tracing::warn!(error = %err, "schedule not read; will look again");
                clock.sleep(LOOK_EVERY).await;
                continue;
            }
        };
        let (true, Ok(at)) = (settings.enabled, settings.time()) else {
            next_day = None;
            starting = false;
            clock.sleep(LOOK_EVERY).await;
            continue;
        };
        let today = now.with_timezone(&tz).date_naive();
        let day = match next_day {
            // After a long stall the days missed are not loaded; today is.
            Some(day) if day >= today => day,
            Some(_) => today,
            // Turned on after today's hour: the first run is tomorrow's, unless the gateway is
            // just starting, when today's is caught up.
            None if starting || local_time(tz, today, at) > now => today,
            None => today.succ_opt().unwrap_or(today),
        };
        next_day = Some(day);
        let due = local_time(tz, day, at);
        if due > now {
            starting = false;
            let wait = (due - now).to_std().unwrap_or_default().min(LOOK_EVERY);
            clock.sleep(wait).await;
            continue;
        }
        match run_day(&loader, &store, &node, day, starting).await {
            Outcome::Settled => next_day = day.succ_opt(),
            Outcome::Retry => clock.sleep(LOOK_EVERY).await,
        }
        starting = false;
    }
}

/// The moment `at` on `day` in `tz`. A time skipped by a clock change is taken an hour later.
fn local_time(tz: chrono_tz::Tz, day: NaiveDate, at: chrono::NaiveTime) -> DateTime<Utc> {
    let naive = day.and_time(at);
    tz.from_local_datetime(&naive)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(naive + chrono::Duration::hours(1)))
                .earliest()
        })
        .map_or_else(|| Utc.from_utc_datetime(&naive), |t| t.with_timezone(&Utc))
}

/// What became of a day's run.
enum Outcome {
    /// Run here, or by another node: the schedule moves to the next day.
    Settled,
    /// The database could not say who runs it: look again soon.
    Retry,
}

/// Runs the load of `day` if this node is the one to claim it. At start-up (`catching_up`) a
/// day claimed long ago with no load recorded is run again: the node that claimed it stopped
/// before the load began.
async fn run_day(
    loader: &Loader,
    store: &Store,
    node: &str,
    day: NaiveDate,
    catching_up: bool,
) -> Outcome {
    let key = day.to_string();
    match store.claim_run(JOB, &key, node).await {
        Ok(true) => {}
        Ok(false) if catching_up => match store
            .lost_claim(JOB, &key, LOST_CLAIM.num_milliseconds())
            .await
        {
            Ok(true) => {
                tracing::warn!(%day, "automatic load claimed but never started; running it")
            }
            Ok(false) => return Outcome::Settled,
            Err(err) => {
                tracing::warn!(%day, error = %err, "automatic load's claim not read; will retry");
                return Outcome::Retry;
            }
        },
        Ok(false) => {
            tracing::debug!(%day, "automatic load already run by a node");
            return Outcome::Settled;
        }
        Err(err) => {
            tracing::warn!(%day, error = %err, "automatic load not claimed; will retry");
            return Outcome::Retry;
        }
    }
    let dates = Dates {
        reference: day,
        send: day,
    };
    tracing::info!(%day, "automatic load starting");
    match loader
        .run_erp(LoadKind::Automatic, dates, CREATED_BY.into())
        .await
    {
        Ok(_) | Err(LoadError::Failed { .. }) => {}
        Err(LoadError::Invalid { field, reason }) => {
            // It failed before it could start (no source, its template gone): it is still
            // recorded, so that nobody takes silence for success.
            record_failed(store, loader.node(), day, &format!("{field}: {reason}")).await;
        }
        Err(LoadError::Store(err)) => {
            tracing::error!(%day, error = %err, "automatic load failed in the gateway's database");
        }
    }
    Outcome::Settled
}

async fn record_failed(store: &Store, node: &str, day: NaiveDate, reason: &str) {
    let load = NewLoad {
        id: crate::store::new_id(),
        kind: LoadKind::Automatic.as_str(),
        template_id: None,
        file_name: None,
        reference_date: Some(day.to_string()),
        send_date: day.to_string(),
        created_by: CREATED_BY.into(),
        node: node.to_owned(),
    };
    tracing::warn!(%day, %reason, "automatic load failed");
    let recorded = match store.start_load(&load).await {
        Ok(_) => store.fail_load(&load.id, reason).await,
        Err(e) => Err(e),
    };
    if let Err(err) = recorded {
        tracing::error!(%day, error = %err, "failed automatic load not recorded");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_times_follow_the_zone() {
        let tz: chrono_tz::Tz = "America/La_Paz".parse().unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap();
        let eight = chrono::NaiveTime::from_hms_opt(8, 0, 0).unwrap();
        assert_eq!(
            local_time(tz, day, eight).to_rfc3339(),
            "2026-12-04T12:00:00+00:00"
        );
        // 02:30 does not exist on the night clocks go forward in Santiago.
        let santiago: chrono_tz::Tz = "America/Santiago".parse().unwrap();
        let spring = NaiveDate::from_ymd_opt(2026, 9, 6).unwrap();
        let skipped = chrono::NaiveTime::from_hms_opt(0, 30, 0).unwrap();
        let at = local_time(santiago, spring, skipped);
        assert_eq!(at.with_timezone(&santiago).date_naive(), spring);
    }
}
