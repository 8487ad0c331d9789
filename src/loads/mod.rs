//! Loads: batches of messages written from a template, one a row of an uploaded sheet or of the
//! ERP's query. A load is previewed (nothing stored) or committed whole in one transaction,
//! with the rows that made no message kept beside it.

pub mod erp;
pub mod plan;
pub mod report;
pub mod schedule;
pub mod table;
pub mod value;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use chrono::{NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::config::Secret;
use crate::dispatch::SendingControl;
use crate::domain::{Channel, Region, Template};
use crate::optout::SuppressionList;
use crate::store::{
    LoadMessage, LoadRecord, LoadRowRecord, NewLoad, NewMessage, Store, StoreError, TemplateRecord,
    load_message_ref,
};
pub use erp::{Dates, SourceColumn, SourceError, SourceSettings};
pub use plan::{Plan, PlanError, Planned, Progress, RowIssue};
pub use table::{SheetError, Table};
pub use value::{Cell, Format};

/// How far ahead a load's send date may be, as for single messages.
const MAX_DAYS_AHEAD: i64 = 366;

/// The kinds of load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LoadKind {
    /// An uploaded spreadsheet.
    Excel,
    /// The ERP's query, started by a person.
    Manual,
    /// The ERP's query, started by the daily schedule.
    Automatic,
}

impl LoadKind {
    /// The kind's name in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            LoadKind::Excel => "excel",
            LoadKind::Manual => "manual",
            LoadKind::Automatic => "automatic",
        }
    }
}

/// The schedule of the automatic load.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScheduleSettings {
    /// Whether the automatic load runs (off until an admin turns it on).
    pub enabled: bool,
    /// The hour it runs at, `HH:MM` in the gateway's time zone (default `08:00`).
    pub at: String,
}

impl Default for ScheduleSettings {
    fn default() -> ScheduleSettings {
        ScheduleSettings {
            enabled: false,
            at: "08:00".into(),
        }
    }
}

impl ScheduleSettings {
    /// The key the schedule is stored under.
    pub const KEY: &'static str = "loads.schedule";

    /// The key the daily summary's hour is stored under.
    pub const SUMMARY_KEY: &'static str = "loads.summary";

    /// The daily summary until an admin changes it: on, at 20:00, when the sending window
    /// closes.
    pub fn summary_default() -> ScheduleSettings {
        ScheduleSettings {
            enabled: true,
            at: "20:00".into(),
        }
    }

    /// The hour and minute of `at`.
    ///
    /// # Errors
    ///
    /// Says what is wrong with `at`.
    pub fn time(&self) -> Result<chrono::NaiveTime, String> {
        chrono::NaiveTime::parse_from_str(&self.at, "%H:%M").map_err(|_| {
            format!(
                "`{}` is not a time of day; write HH:MM, e.g. 08:00",
                self.at
            )
        })
    }
}

/// Why a load could not be previewed or run.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// An input or setting is wrong; `field` names it.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// The load ran and failed; it is recorded as failed under `load_id`.
    #[error("{field}: {reason} (recorded as failed load {load_id})")]
    Failed {
        /// The failed load.
        load_id: String,
        /// The field to blame.
        field: String,
        /// Why.
        reason: String,
    },
    /// The gateway's database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl LoadError {
    fn invalid(field: impl Into<String>, reason: impl ToString) -> LoadError {
        LoadError::Invalid {
            field: field.into(),
            reason: reason.to_string(),
        }
    }
}

impl From<PlanError> for LoadError {
    fn from(err: PlanError) -> LoadError {
        LoadError::invalid(err.field(), err)
    }
}

impl From<SourceError> for LoadError {
    fn from(err: SourceError) -> LoadError {
        LoadError::invalid(format!("source.{}", err.field), err.reason)
    }
}

/// What a load needs besides its rows.
#[derive(Clone, Debug)]
pub struct LoadSpec {
    /// Its kind.
    pub kind: LoadKind,
    /// The template.
    pub template: TemplateRecord,
    /// The phone column.
    pub phone_column: String,
    /// The key column, for ERP loads.
    pub key_column: Option<String>,
    /// The reference date, for ERP loads.
    pub reference_date: Option<NaiveDate>,
    /// The day the messages go out.
    pub send_date: NaiveDate,
    /// The uploaded file's name.
    pub file_name: Option<String>,
    /// Who starts it.
    pub created_by: String,
}

/// Runs loads and keeps the progress of those running.
pub struct Loader {
    store: Store,
    node: String,
    tz: Tz,
    region: Region,
    sending: Arc<SendingControl>,
    suppressions: Arc<SuppressionList>,
    running: Mutex<HashMap<String, Arc<Progress>>>,
}

/// A load's counters while it runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Rows looked at.
    pub processed: u64,
    /// Messages made.
    pub loaded: u64,
    /// Rows skipped.
    pub skipped: u64,
    /// Rows failed.
    pub failed: u64,
}

impl std::fmt::Debug for Loader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loader")
            .field("tz", &self.tz)
            .finish_non_exhaustive()
    }
}

impl Loader {
    /// A loader writing to `store`, its loads recorded as run by `node`.
    pub fn new(
        store: Store,
        node: String,
        tz: Tz,
        region: Region,
        sending: Arc<SendingControl>,
        suppressions: Arc<SuppressionList>,
    ) -> Loader {
        Loader {
            store,
            node,
            tz,
            region,
            sending,
            suppressions,
            running: Mutex::new(HashMap::new()),
        }
    }

    /// The node this loader's loads are recorded as run by.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The time zone dates are read in.
    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// Today in the gateway's time zone.
    pub fn today(&self) -> NaiveDate {
        Utc::now().with_timezone(&self.tz).date_naive()
    }

    /// The counters of a running load, if it runs on this node.
    pub fn progress(&self, load_id: &str) -> Option<Counts> {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running.get(load_id).map(|p| Counts {
            processed: p.processed.load(Ordering::Relaxed),
            loaded: p.loaded.load(Ordering::Relaxed),
            skipped: p.skipped.load(Ordering::Relaxed),
            failed: p.failed.load(Ordering::Relaxed),
        })
    }

    /// How amounts and dates are written.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn format(&self) -> Result<Format, StoreError> {
        Ok(self
            .store
            .setting(Format::KEY)
            .await?
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default())
    }

    /// The automatic load's schedule.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn schedule(&self) -> Result<ScheduleSettings, StoreError> {
        Ok(self
            .store
            .setting(ScheduleSettings::KEY)
            .await?
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default())
    }

    /// When the daily summary of loads is made.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn summary(&self) -> Result<ScheduleSettings, StoreError> {
        Ok(self
            .store
            .setting(ScheduleSettings::SUMMARY_KEY)
            .await?
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_else(ScheduleSettings::summary_default))
    }

    /// The ERP source, when one is set.
    ///
    /// # Errors
    ///
    /// Fails when the database does.
    pub async fn source(&self) -> Result<Option<SourceSettings>, StoreError> {
        Ok(self
            .store
            .setting(SourceSettings::KEY)
            .await?
            .and_then(|s| serde_json::from_str(&s).ok()))
    }

    /// Checks a send date: today or later.
    ///
    /// # Errors
    ///
    /// Names `send_date` when it is in the past.
    pub fn check_send_date(&self, send_date: NaiveDate) -> Result<(), LoadError> {
        let today = self.today();
        if send_date < today {
            return Err(LoadError::invalid(
                "send_date",
                format!("{send_date} is in the past; today is {today}"),
            ));
        }
        if send_date > today + chrono::Duration::days(MAX_DAYS_AHEAD) {
            return Err(LoadError::invalid(
                "send_date",
                format!("{send_date} is more than a year ahead"),
            ));
        }
        Ok(())
    }

    /// What `table` would make, storing nothing.
    ///
    /// # Errors
    ///
    /// Fails when a column the load needs is missing or the template does not parse.
    pub async fn preview(&self, spec: &LoadSpec, table: Table) -> Result<Plan, LoadError> {
        let progress = Arc::new(Progress::default());
        self.plan(spec, table, progress).await
    }

    /// Runs a load: records it as running, reads its rows from `rows`, and commits its
    /// messages and row issues in one transaction. A failure after it started is recorded as
    /// a failed load with the reason.
    ///
    /// # Errors
    ///
    /// [`LoadError::Failed`] for a load that started and failed; [`LoadError::Store`] when the
    /// load could not even be recorded.
    pub async fn run<R, F>(&self, spec: LoadSpec, rows: R) -> Result<LoadRecord, LoadError>
    where
        R: FnOnce(Arc<Progress>) -> F,
        F: Future<Output = Result<Table, LoadError>>,
    {
        let load = NewLoad {
            id: crate::store::new_id(),
            kind: spec.kind.as_str(),
            template_id: Some(spec.template.id.clone()),
            file_name: spec.file_name.clone(),
            reference_date: spec.reference_date.map(|d| d.to_string()),
            send_date: spec.send_date.to_string(),
            created_by: spec.created_by.clone(),
            node: self.node.clone(),
        };
        self.store.start_load(&load).await?;
        let progress = Arc::new(Progress::default());
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(load.id.clone(), progress.clone());
        let outcome = self
            .run_started(&load, &spec, rows(progress.clone()), progress)
            .await;
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&load.id);
        match outcome {
            Ok(()) => {}
            Err(err) => {
                let (field, reason) = match &err {
                    LoadError::Invalid { field, reason }
                    | LoadError::Failed { field, reason, .. } => (field.clone(), reason.clone()),
                    LoadError::Store(e) => ("load".to_owned(), format!("not stored: {e}")),
                };
                tracing::warn!(load.id = %load.id, kind = load.kind, %field, %reason,
                    "load failed");
                if let Err(e) = self
                    .store
                    .fail_load(&load.id, &format!("{field}: {reason}"))
                    .await
                {
                    tracing::error!(load.id = %load.id, error = %e, "failed load not recorded");
                }
                return Err(match err {
                    // The gateway's own database failing is not the caller's input.
                    LoadError::Store(e) => LoadError::Store(e),
                    _ => LoadError::Failed {
                        load_id: load.id,
                        field,
                        reason,
                    },
                });
            }
        }
        let record = self
            .store
            .load(&load.id)
            .await?
            .ok_or(StoreError::GroupFailed(
                "a committed load could not be read".into(),
            ))?;
        tracing::info!(load.id = %record.id, kind = load.kind, loaded = record.messages_loaded,
            skipped = record.rows_skipped, failed = record.rows_failed, "load committed");
        Ok(record)
    }

    async fn run_started<F>(
        &self,
        load: &NewLoad,
        spec: &LoadSpec,
        rows: F,
        progress: Arc<Progress>,
    ) -> Result<(), LoadError>
    where
        F: Future<Output = Result<Table, LoadError>>,
    {
        let started = std::time::Instant::now();
        let table = rows.await?;
        let read = started.elapsed();
        let processed = table.rows.len() as u64;
        progress.processed.store(processed, Ordering::Relaxed);
        let plan = self.plan(spec, table, progress).await?;
        let planned = started.elapsed();
        let send_at = self.send_at(spec.send_date);
        let messages: Vec<LoadMessage> = plan
            .messages
            .into_iter()
            .map(|p| LoadMessage {
                message: NewMessage {
                    client_ref: load_message_ref(&load.id, p.row),
                    to: p.to,
                    text: p.text,
                    encoding: p.encoding,
                    segments: p.segments as i64,
                    load_id: Some(load.id.clone()),
                    channel: Channel::Load,
                    created_by: load.created_by.clone(),
                    send_at,
                },
                row: p.row,
                key: p.key,
            })
            .collect();
        let issues: Vec<LoadRowRecord> = plan
            .errors
            .into_iter()
            .map(|i| issue_record(i, false))
            .chain(plan.skipped.into_iter().map(|i| issue_record(i, true)))
            .collect();
        self.store
            .commit_load(
                &load.id,
                load.reference_date.as_deref(),
                messages,
                issues,
                processed,
            )
            .await?;
        tracing::debug!(
            load.id = %load.id,
            read_ms = read.as_millis() as u64,
            plan_ms = (planned - read).as_millis() as u64,
            commit_ms = (started.elapsed() - planned).as_millis() as u64,
            "load phases"
        );
        Ok(())
    }

    async fn plan(
        &self,
        spec: &LoadSpec,
        table: Table,
        progress: Arc<Progress>,
    ) -> Result<Plan, LoadError> {
        let template = Template::parse(&spec.template.body).map_err(|problems| {
            let words: Vec<String> = problems.iter().map(ToString::to_string).collect();
            LoadError::invalid("template_id", words.join("; "))
        })?;
        let loaded_keys = match (&spec.key_column, spec.reference_date) {
            (Some(_), Some(day)) => self.store.loaded_keys(&day.to_string()).await?,
            _ => HashMap::new(),
        };
        let format = self.format().await?;
        let region = self.region;
        let sending = self.sending.clone();
        let suppressions = self.suppressions.clone();
        let spec = spec.clone();
        // Rendering and checking many rows is CPU work; it runs off the async threads.
        let planned = tokio::task::spawn_blocking(move || {
            let sign = move |t: &str| sending.sign(t);
            let suppressed = move |phone: &str| suppressions.contains(phone);
            let recipe = plan::Recipe {
                template: &template,
                max_length: usize::try_from(spec.template.max_length).unwrap_or(usize::MAX),
                phone_column: &spec.phone_column,
                key_column: spec.key_column.as_deref(),
                loaded_keys: &loaded_keys,
                format: &format,
                region,
                sign: &sign,
                suppressed: &suppressed,
            };
            plan::plan(&table, &recipe, &progress)
        })
        .await
        .map_err(|e| LoadError::invalid("load", format!("the load stopped: {e}")))?;
        Ok(planned?)
    }

    /// When a load's messages may go out: now for today, the start of the day otherwise (the
    /// sending window then decides the hour).
    fn send_at(&self, send_date: NaiveDate) -> Option<i64> {
        if send_date <= self.today() {
            return None;
        }
        Some(start_of_day(send_date, self.tz).timestamp_millis())
    }

    /// Reads the ERP source's rows for `dates`, at most `limit`.
    ///
    /// # Errors
    ///
    /// Names the source setting at fault.
    pub async fn erp_rows(
        &self,
        source: &SourceSettings,
        dates: Dates,
        limit: Option<usize>,
        progress: Option<&Progress>,
    ) -> Result<erp::Fetched, LoadError> {
        let password = source.password.clone().map(Secret::new);
        let read = |n: u64| {
            if let Some(p) = progress {
                p.processed.store(n, Ordering::Relaxed);
            }
        };
        Ok(erp::fetch(source, password.as_ref(), dates, limit, self.tz, &read).await?)
    }

    /// The spec of an ERP load from the stored source.
    ///
    /// # Errors
    ///
    /// Names `source` when none is set or its template is gone.
    pub async fn erp_spec(
        &self,
        kind: LoadKind,
        dates: Dates,
        created_by: String,
    ) -> Result<(SourceSettings, LoadSpec), LoadError> {
        let source = self.source().await?.ok_or_else(|| {
            LoadError::invalid("source", "no ERP source is set; PUT /v1/loads/source first")
        })?;
        let template = self
            .store
            .template(&source.template_id)
            .await?
            .ok_or_else(|| {
                LoadError::invalid(
                    "source.template_id",
                    format!(
                        "the source's template {} no longer exists",
                        source.template_id
                    ),
                )
            })?;
        let spec = LoadSpec {
            kind,
            template,
            phone_column: source.phone_column.clone(),
            key_column: Some(source.key_column.clone()),
            reference_date: Some(dates.reference),
            send_date: dates.send,
            file_name: None,
            created_by,
        };
        Ok((source, spec))
    }

    /// Runs the ERP load for `dates` and records it, failed or committed.
    ///
    /// # Errors
    ///
    /// See [`Loader::run`]; an unset source fails before anything is recorded.
    pub async fn run_erp(
        &self,
        kind: LoadKind,
        dates: Dates,
        created_by: String,
    ) -> Result<LoadRecord, LoadError> {
        let (source, spec) = self.erp_spec(kind, dates, created_by).await?;
        self.run(spec, |progress| async move {
            let fetched = self.erp_rows(&source, dates, None, Some(&progress)).await?;
            Ok(fetched.table)
        })
        .await
    }
}

/// The first moment of `day` in `tz`. Where the clocks skip midnight (a change to summer time at
/// 00:00, as in Santiago), it is the first moment after the skip.
pub fn start_of_day(day: NaiveDate, tz: Tz) -> chrono::DateTime<Utc> {
    (0..=24 * 4)
        .filter_map(|quarter| {
            let local = day.and_hms_opt(0, 0, 0)? + chrono::Duration::minutes(15 * quarter);
            tz.from_local_datetime(&local).earliest()
        })
        .next()
        .map_or_else(
            || Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).unwrap_or_default()),
            |t| t.with_timezone(&Utc),
        )
}

fn issue_record(issue: RowIssue, skipped: bool) -> LoadRowRecord {
    LoadRowRecord {
        row: issue.row,
        skipped,
        column: issue.column,
        reason: issue.reason,
    }
}

/// Records the `loads.summary` event of each day at the hour the settings give, on one node of
/// those sharing the database; mail rules that ask for it send the day's summary.
pub async fn daily_summary(
    loader: Arc<Loader>,
    store: Store,
    node: String,
    clock: Arc<dyn crate::jobs::Clock>,
) {
    let tz = loader.tz();
    let hour = {
        let loader = loader.clone();
        move || -> crate::jobs::BoxFuture<'static, Result<Option<chrono::NaiveTime>, StoreError>> {
            let loader = loader.clone();
            Box::pin(async move {
                let settings = loader.summary().await?;
                Ok(settings.enabled.then(|| settings.time().ok()).flatten())
            })
        }
    };
    let work = {
        let store = store.clone();
        move |day: NaiveDate| -> crate::jobs::BoxFuture<'static, Result<(), String>> {
            let store = store.clone();
            Box::pin(async move {
                let (from, until) = report::day_bounds(day, tz);
                let loads = store
                    .loads_between(from, until)
                    .await
                    .map_err(|e| format!("loads of the day not read: {e}"))?;
                let failed = loads.iter().filter(|l| l.status == "failed").count();
                let payload = serde_json::json!({
                    "date": day.to_string(),
                    "loads": loads.len(),
                    "failed": failed,
                    "messages_loaded": loads.iter().map(|l| l.messages_loaded).sum::<i64>(),
                });
                store
                    .record_event("loads.summary", &payload)
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("daily summary not recorded: {e}"))
            })
        }
    };
    crate::jobs::run_daily("loads-summary".into(), store, node, tz, clock, hour, work).await;
}
