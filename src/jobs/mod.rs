//! Work that runs once a day at an hour an admin sets, in the gateway's time zone: the daily
//! summary of loads, and each modem's balance check (the automatic load has a runner of its own,
//! in [`crate::loads::schedule`], for its catch-up rules). Nodes sharing one database take turns
//! through a row per job and day: the node that stores it does the work.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use tokio::sync::watch;

use crate::store::{Store, StoreError};

/// The longest sleep between looks at a job's hour, so that a changed hour or a job turned on
/// is seen within it.
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

/// The moment `at` on `day` in `tz`. A time skipped by a clock change is taken an hour later.
pub(crate) fn local_time(
    tz: chrono_tz::Tz,
    day: NaiveDate,
    at: chrono::NaiveTime,
) -> DateTime<Utc> {
    let naive = day.and_time(at);
    tz.from_local_datetime(&naive)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(naive + chrono::Duration::hours(1)))
                .earliest()
        })
        .map_or_else(|| Utc.from_utc_datetime(&naive), |t| t.with_timezone(&Utc))
}

/// A boxed future, as the daily runner's callbacks return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Runs `work` once a day at the hour `hour` gives (`None` while the job is off), on one node of
/// those sharing the database, until the task is dropped. A node that starts after the hour
/// runs the day's work then, unless a node already did. `job` names the job among the daily
/// runs (`loads-summary`, `balance:modem-1`).
pub async fn run_daily<H, W>(
    job: String,
    store: Store,
    node: String,
    tz: Tz,
    clock: Arc<dyn Clock>,
    hour: H,
    work: W,
) where
    H: Fn() -> BoxFuture<'static, Result<Option<NaiveTime>, StoreError>> + Send + Sync,
    W: Fn(NaiveDate) -> BoxFuture<'static, ()> + Send + Sync,
{
    // The last day this node saw settled, by its own run or another node's.
    let mut settled: Option<NaiveDate> = None;
    loop {
        let at = match hour().await {
            Ok(Some(at)) => at,
            Ok(None) => {
                clock.sleep(LOOK_EVERY).await;
                continue;
            }
            Err(err) => {
                tracing::warn!(job = %job, error = %err, "daily job's hour not read; will retry");
                clock.sleep(LOOK_EVERY).await;
                continue;
            }
        };
        let now = clock.now();
        let today = now.with_timezone(&tz).date_naive();
        let due = local_time(tz, today, at);
        if due > now || settled == Some(today) {
            let next = if due > now {
                due
            } else {
                local_time(tz, today.succ_opt().unwrap_or(today), at)
            };
            let wait = (next - now).to_std().unwrap_or_default().min(LOOK_EVERY);
            clock.sleep(wait.max(Duration::from_millis(10))).await;
            continue;
        }
        match store.claim_run(&job, &today.to_string(), &node).await {
            Ok(true) => {
                tracing::info!(job = %job, day = %today, "daily job starting");
                work(today).await;
                settled = Some(today);
            }
            Ok(false) => settled = Some(today),
            Err(err) => {
                tracing::warn!(job = %job, error = %err, "daily job not claimed; will retry");
                clock.sleep(LOOK_EVERY).await;
            }
        }
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
