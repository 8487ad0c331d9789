//! The daily automatic load: at the configured hour, in the gateway's time zone, the ERP
//! source is loaded for the day. Nodes sharing one database take turns through a row per day:
//! the node that stores it runs the load, the others see it taken.

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;

use crate::jobs::local_time;
pub use crate::jobs::{Clock, ManualClock, SystemClock};

use super::{Dates, LoadError, LoadKind, Loader};
use crate::store::{NewLoad, Store};

/// The job name under which daily runs are claimed.
pub const JOB: &str = "automatic-load";

/// Who automatic loads are recorded as created by.
pub const CREATED_BY: &str = "schedule";

/// The longest sleep between looks at the settings, so that a changed hour or a schedule
/// turned on is seen within it.
const LOOK_EVERY: Duration = Duration::from_secs(30);

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
