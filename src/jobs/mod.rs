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

use crate::store::{RunState, Store, StoreError};

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

/// A daily run claimed this long ago and never finished was left by a node that died: another
/// node takes it over.
const STALE_RUN_MS: i64 = 15 * 60 * 1000;

/// Runs `work` once a day at the hour `hour` gives (`None` while the job is off), on one node of
/// those sharing the database, until the task is dropped. A node that starts after the hour
/// runs the day's work then, unless a node already did. Work that fails (`Err`, with the
/// reason) is tried again after a while; work whose node died half-way is taken over by another
/// node after a quarter of an hour. `job` names the job among the daily runs (`loads-summary`,
/// `balance:modem-1`).
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
    W: Fn(NaiveDate) -> BoxFuture<'static, Result<(), String>> + Send + Sync,
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
        match run_day(&job, &store, &node, today, &work).await {
            Ok(true) => settled = Some(today),
            Ok(false) => clock.sleep(LOOK_EVERY).await,
            Err(err) => {
                tracing::warn!(job = %job, error = %err, "daily job not claimed; will retry");
                clock.sleep(LOOK_EVERY).await;
            }
        }
    }
}

/// Does `day`'s work if this node is the one to: it claims the run, or takes over one whose
/// node died. `true` once the day is settled (done here or by another node); `false` to look
/// again later (the work failed, or another node is at it).
async fn run_day<W>(
    job: &str,
    store: &Store,
    node: &str,
    day: NaiveDate,
    work: &W,
) -> Result<bool, StoreError>
where
    W: Fn(NaiveDate) -> BoxFuture<'static, Result<(), String>> + Send + Sync,
{
    let key = day.to_string();
    let mine = match store.claim_run(job, &key, node).await? {
        true => true,
        false => match store.run_state(job, &key).await? {
            RunState::Finished => return Ok(true),
            RunState::Running(_) => {
                // Claims are stamped by the machine's clock, so staleness is judged by it too.
                let stale_before = crate::store::now_ms() - STALE_RUN_MS;
                store.take_over_run(job, &key, node, stale_before).await?
            }
            // Released between the two looks: claim it on the next one.
            RunState::Unclaimed => false,
        },
    };
    if !mine {
        return Ok(false);
    }
    tracing::info!(job = %job, %day, "daily job starting");
    match work(day).await {
        Ok(()) => {
            store.finish_run(job, &key).await?;
            Ok(true)
        }
        Err(reason) => {
            tracing::warn!(job = %job, %day, %reason, "daily job failed; will try again");
            store.release_run(job, &key, node).await?;
            Ok(false)
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
