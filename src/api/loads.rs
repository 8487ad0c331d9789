//! `/v1/loads`: messages made from a template, one a row of an uploaded spreadsheet or of the
//! ERP's query; previews, history, deletion, the source and the loads' settings.

use std::collections::BTreeMap;

use actix_multipart::Multipart;
use actix_web::{HttpResponse, http::header, web};
use chrono::NaiveDate;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::caller::Caller;
use super::error::{self, ApiError};
use super::json::{JsonBody, MAX_BODY};
use crate::domain::{Module, Template};
use crate::loads::erp::{self, SourceSettings};
use crate::loads::report;
use crate::loads::{
    Dates, Format, LoadError, LoadKind, LoadSpec, Plan, Planned, RowIssue, ScheduleSettings,
    SourceColumn, table,
};
use crate::store::{Deleted, LoadRecord, LoadRowRecord};

/// Rows a source test shows by default, and at most.
const TEST_ROWS: usize = 10;
const MAX_TEST_ROWS: usize = 100;

/// Loads a listing page shows by default, and at most.
const PAGE: u32 = 50;
const MAX_PAGE: u32 = 500;

/// A load as the history shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoadView {
    /// Identifier.
    pub id: String,
    /// `excel`, `manual` or `automatic`.
    pub kind: String,
    /// `running`, `committed`, `failed` or `deleted`.
    pub status: String,
    /// The template its messages were written from.
    pub template_id: Option<String>,
    /// The uploaded file's name.
    pub file_name: Option<String>,
    /// The ERP reference date.
    pub reference_date: Option<String>,
    /// The day its messages go out.
    pub send_date: String,
    /// Who started it: a username, `key:<name>` or `schedule`.
    pub created_by: String,
    /// When it started.
    pub created_at: String,
    /// When it was committed or failed.
    pub finished_at: Option<String>,
    /// Rows looked at (grows while it runs).
    pub rows_processed: i64,
    /// Messages made.
    pub messages_loaded: i64,
    /// Rows left out: their key was already loaded for the reference date.
    pub rows_skipped: i64,
    /// Rows that made no message.
    pub rows_failed: i64,
    /// Why it failed.
    pub error: Option<String>,
    /// When it was deleted.
    pub deleted_at: Option<String>,
    /// Who deleted it.
    pub deleted_by: Option<String>,
}

/// A load with its rows and messages.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoadDetail {
    /// The load.
    #[serde(flatten)]
    pub load: LoadView,
    /// Rows that made no message, and why.
    pub row_errors: Vec<RowIssue>,
    /// Rows left out as already loaded.
    pub skipped_rows: Vec<RowIssue>,
    /// Its messages by status.
    pub messages_by_status: BTreeMap<String, i64>,
}

/// What a load would make; nothing was stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct Preview {
    /// Always true: this is a preview.
    pub dry_run: bool,
    /// Rows looked at.
    pub rows_processed: usize,
    /// Messages it would make.
    pub messages_loaded: usize,
    /// Segments they would take on the air.
    pub segments: usize,
    /// Rows it would leave out as already loaded.
    pub rows_skipped: usize,
    /// Rows that would make no message.
    pub rows_failed: usize,
    /// Every message, in row order.
    pub messages: Vec<Planned>,
    /// Rows that would make no message, and why.
    pub row_errors: Vec<RowIssue>,
    /// Rows it would leave out.
    pub skipped_rows: Vec<RowIssue>,
}

impl Preview {
    fn of(plan: Plan, rows_processed: usize) -> Preview {
        Preview {
            dry_run: true,
            rows_processed,
            messages_loaded: plan.messages.len(),
            segments: plan.messages.iter().map(|m| m.segments).sum(),
            rows_skipped: plan.skipped.len(),
            rows_failed: plan.errors.len(),
            messages: plan.messages,
            row_errors: plan.errors,
            skipped_rows: plan.skipped,
        }
    }
}

/// An Excel upload, as multipart form fields.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ExcelUpload {
    /// The spreadsheet: .xlsx, .xls or .ods; its first row names the columns.
    #[schema(format = Binary, value_type = String)]
    file: Vec<u8>,
    /// The template the messages are written from.
    template_id: String,
    /// The column holding the phone numbers.
    #[schema(example = "celular")]
    phone_column: String,
    /// The day the messages go out, `yyyy-mm-dd`; today when absent.
    send_date: Option<String>,
    /// `true` to preview only.
    dry_run: Option<bool>,
    /// The sheet to read; the first when absent.
    sheet: Option<String>,
}

/// A load from the ERP source.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErpLoadInput {
    /// The date the query is run for (`:reference_date`), `yyyy-mm-dd`.
    #[schema(example = "2026-12-04")]
    pub reference_date: String,
    /// The day the messages go out (`:send_date`), `yyyy-mm-dd`; today when absent.
    pub send_date: Option<String>,
    /// `true` to preview only.
    #[serde(default)]
    pub dry_run: bool,
}

/// The ERP source: where the rows come from and how they make messages.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceInput {
    /// `postgres://`, `mysql://`, `mariadb://` or `sqlite://`; a password in it is taken out
    /// and kept apart.
    #[schema(example = "postgres://erp_lector@10.0.0.5:5432/erp")]
    pub url: String,
    /// The database password; never shown again. Absent keeps the stored one; empty clears it.
    pub password: Option<String>,
    /// The query; `:reference_date` and `:send_date` stand for the load's dates.
    #[schema(
        example = "SELECT c.id_cuota, s.nombre, s.celular, c.numero AS numerocuota, \
        c.monto AS montocuota, c.moneda, c.vencimiento AS fechavencimiento FROM cuotas c \
        JOIN socios s ON s.id = c.socio WHERE c.vencimiento = :reference_date + 3"
    )]
    pub query: String,
    /// The column with the phone number.
    #[schema(example = "celular")]
    pub phone_column: String,
    /// The column identifying a row, so a date is not loaded twice.
    #[schema(example = "id_cuota")]
    pub key_column: String,
    /// The template.
    pub template_id: String,
}

/// The ERP source as stored; the password is never shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct SourceView {
    /// The URL, without a password.
    pub url: String,
    /// Whether a password is stored.
    pub password_set: bool,
    /// The query.
    pub query: String,
    /// The phone column.
    pub phone_column: String,
    /// The key column.
    pub key_column: String,
    /// The template.
    pub template_id: String,
    /// The columns the query returned when it was saved.
    pub columns: Vec<String>,
}

/// A trial run of the source.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceTestInput {
    /// The reference date to run it for; today when absent.
    pub reference_date: Option<String>,
    /// Rows to show, 1 to 100 (default 10).
    pub limit: Option<usize>,
}

/// What the source's query returns.
#[derive(Debug, Serialize, ToSchema)]
pub struct SourceTest {
    /// Its columns and their types.
    pub columns: Vec<SourceColumn>,
    /// The first rows, each value as it would be written into a message.
    pub rows: Vec<Vec<Option<String>>>,
}

/// How amounts and dates are written, and when the automatic load runs.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadSettings {
    /// Number and date formats.
    pub format: Format,
    /// The daily automatic load.
    pub schedule: ScheduleSettings,
    /// When the day's summary of loads is made (the `loads.summary` event, mailed by the rules
    /// that ask for it); on at 20:00 by default.
    #[serde(default = "ScheduleSettings::summary_default")]
    pub summary: ScheduleSettings,
}

/// What deleting a load did.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeletedLoad {
    /// The load.
    pub id: String,
    /// Messages cancelled now.
    pub cancelled: i64,
    /// Messages that had already been handed to a modem or had ended.
    pub already_gone: i64,
}

/// A load's report, as it is mailed.
#[derive(Debug, Serialize, ToSchema)]
pub struct Report {
    /// The subject line.
    pub subject: String,
    /// The plain text.
    pub text: String,
    /// When it was mailed; absent until mail is configured.
    pub sent_at: Option<String>,
}

/// A page of loads.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LoadQuery {
    /// At most this many (default 50, at most 500).
    pub limit: Option<u32>,
    /// The `next` cursor of the previous page.
    pub after: Option<String>,
}

/// A page of loads, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoadPage {
    /// The loads.
    pub loads: Vec<LoadView>,
    /// The cursor of the next page, if there is one.
    pub next: Option<String>,
}

/// The day a summary is for.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SummaryQuery {
    /// `yyyy-mm-dd`; today when absent.
    pub date: Option<String>,
}

/// Mounts the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(super::resource("/v1/loads").route(web::get().to(list)))
        .service(super::resource("/v1/loads/excel").route(web::post().to(excel)))
        .service(super::resource("/v1/loads/erp").route(web::post().to(erp_load)))
        .service(
            super::resource("/v1/loads/source")
                .route(web::get().to(get_source))
                .route(web::put().to(put_source)),
        )
        .service(super::resource("/v1/loads/source/test").route(web::post().to(test_source)))
        .service(
            super::resource("/v1/loads/settings")
                .route(web::get().to(get_settings))
                .route(web::put().to(put_settings)),
        )
        .service(super::resource("/v1/loads/summary").route(web::get().to(summary)))
        .service(
            super::resource("/v1/loads/{id}")
                .route(web::get().to(get))
                .route(web::delete().to(delete)),
        )
        .service(super::resource("/v1/loads/{id}/report").route(web::get().to(report)));
}

fn view(record: LoadRecord, state: &AppState) -> LoadView {
    let tz = state.tz;
    let mut view = LoadView {
        id: record.id,
        kind: record.kind,
        status: record.status,
        template_id: record.template_id,
        file_name: record.file_name,
        reference_date: record.reference_date,
        send_date: record.send_date,
        created_by: record.created_by,
        created_at: super::time::show(record.created_at, tz),
        finished_at: super::time::show_opt(record.finished_at, tz),
        rows_processed: record.rows_processed,
        messages_loaded: record.messages_loaded,
        rows_skipped: record.rows_skipped,
        rows_failed: record.rows_failed,
        error: record.error,
        deleted_at: super::time::show_opt(record.deleted_at, tz),
        deleted_by: record.deleted_by,
    };
    if view.status == "running"
        && let Some(counts) = state.loads.progress(&view.id)
    {
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        view.rows_processed = n(counts.processed);
        view.messages_loaded = n(counts.loaded);
        view.rows_skipped = n(counts.skipped);
        view.rows_failed = n(counts.failed);
    }
    view
}

async fn detail(state: &AppState, record: LoadRecord) -> Result<LoadDetail, ApiError> {
    let rows = state.store.load_rows(&record.id).await?;
    let statuses = state.store.load_statuses(&record.id).await?;
    let (skipped, failed): (Vec<LoadRowRecord>, Vec<LoadRowRecord>) =
        rows.into_iter().partition(|r| r.skipped);
    let issue = |r: LoadRowRecord| RowIssue {
        row: r.row,
        column: r.column,
        reason: r.reason,
    };
    Ok(LoadDetail {
        load: view(record, state),
        row_errors: failed.into_iter().map(issue).collect(),
        skipped_rows: skipped.into_iter().map(issue).collect(),
        messages_by_status: statuses
            .into_iter()
            .map(|(s, n)| (s.as_str().to_owned(), n))
            .collect(),
    })
}

fn load_error(err: LoadError) -> ApiError {
    match err {
        LoadError::Invalid { field, reason } => ApiError::invalid(field, reason),
        LoadError::Failed {
            load_id,
            field,
            reason,
        } => ApiError::invalid(
            field,
            format!("{reason} (recorded as failed load {load_id})"),
        ),
        LoadError::Store(e) => e.into(),
    }
}

fn parse_date(field: &str, raw: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .map_err(|_| ApiError::invalid(field, format!("`{raw}` is not a date; write yyyy-mm-dd")))
}

async fn template(state: &AppState, id: &str) -> Result<crate::store::TemplateRecord, ApiError> {
    state
        .store
        .template(id)
        .await?
        .ok_or_else(|| ApiError::invalid("template_id", format!("there is no template {id}")))
}

/// The fields of an Excel upload.
#[derive(Default)]
struct Upload {
    file: Option<(String, Vec<u8>)>,
    fields: BTreeMap<String, String>,
}

async fn read_upload(mut form: Multipart) -> Result<Upload, ApiError> {
    let mut upload = Upload::default();
    let mut size = 0usize;
    while let Some(field) = form.next().await {
        let mut field = field.map_err(|e| ApiError::Malformed {
            field: None,
            detail: format!("the multipart body cannot be read: {e}"),
        })?;
        let name = field.name().unwrap_or_default().to_owned();
        let file_name = field
            .content_disposition()
            .and_then(|d| d.get_filename())
            .map(str::to_owned);
        let mut bytes = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| ApiError::Malformed {
                field: Some(name.clone()),
                detail: format!("the part cannot be read: {e}"),
            })?;
            size += chunk.len();
            if size > MAX_BODY {
                return Err(ApiError::TooLarge(MAX_BODY));
            }
            bytes.extend_from_slice(&chunk);
        }
        match name.as_str() {
            "file" => upload.file = Some((file_name.unwrap_or_default(), bytes)),
            "template_id" | "phone_column" | "send_date" | "dry_run" | "sheet" => {
                let text = String::from_utf8(bytes)
                    .map_err(|_| ApiError::invalid(name.clone(), "the value is not UTF-8 text"))?;
                upload.fields.insert(name, text.trim().to_owned());
            }
            other => {
                return Err(ApiError::invalid(
                    other,
                    "unknown field; the form takes file, template_id, phone_column, \
                     send_date, dry_run and sheet",
                ));
            }
        }
    }
    Ok(upload)
}

fn flag(field: &str, raw: Option<&String>) -> Result<bool, ApiError> {
    match raw.map(String::as_str) {
        None | Some("" | "false" | "0") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some(other) => Err(ApiError::invalid(
            field,
            format!("`{other}` is not true or false"),
        )),
    }
}

/// Load an uploaded spreadsheet: every row becomes a message or a row error, committed whole,
/// or previewed with `dry_run`.
#[utoipa::path(
    post, path = "/v1/loads/excel", tag = "loads",
    request_body(content = ExcelUpload, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "The preview (dry_run)", body = Preview),
        (status = 201, description = "The load, committed", body = LoadDetail),
        (status = 400, response = error::BadRequest),
        (status = 422, response = error::Invalid),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["operators"]))
)]
pub async fn excel(
    state: web::Data<AppState>,
    caller: Caller,
    form: Multipart,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Operators)?;
    let upload = read_upload(form).await?;
    let required = |name: &'static str| {
        upload
            .fields
            .get(name)
            .filter(|v| !v.is_empty())
            .cloned()
            .ok_or_else(|| ApiError::invalid(name, "this field is required"))
    };
    let (file_name, bytes) = upload
        .file
        .clone()
        .ok_or_else(|| ApiError::invalid("file", "attach the spreadsheet as `file`"))?;
    let template = template(&state, &required("template_id")?).await?;
    let phone_column = required("phone_column")?;
    let send_date = match upload.fields.get("send_date").filter(|v| !v.is_empty()) {
        Some(raw) => parse_date("send_date", raw)?,
        None => state.loads.today(),
    };
    state.loads.check_send_date(send_date).map_err(load_error)?;
    let dry_run = flag("dry_run", upload.fields.get("dry_run"))?;
    let sheet = upload
        .fields
        .get("sheet")
        .filter(|s| !s.is_empty())
        .cloned();

    let name = file_name.clone();
    let table =
        tokio::task::spawn_blocking(move || table::read_workbook(bytes, &name, sheet.as_deref()))
            .await
            .map_err(|e| ApiError::Internal(e.into()))?
            .map_err(|e| ApiError::invalid("file", e))?;

    let spec = LoadSpec {
        kind: LoadKind::Excel,
        template,
        phone_column,
        key_column: None,
        reference_date: None,
        send_date,
        file_name: Some(file_name),
        created_by: caller.label(),
    };
    if dry_run {
        let rows = table.rows.len();
        let plan = state
            .loads
            .preview(&spec, table)
            .await
            .map_err(load_error)?;
        return Ok(HttpResponse::Ok().json(Preview::of(plan, rows)));
    }
    let record = state
        .loads
        .run(spec, |_| async { Ok(table) })
        .await
        .map_err(load_error)?;
    created(&state, record).await
}

async fn created(state: &AppState, record: LoadRecord) -> Result<HttpResponse, ApiError> {
    let location = format!("/v1/loads/{}", record.id);
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, location))
        .json(detail(state, record).await?))
}

/// Load the ERP source for a reference date, or preview it with `dry_run`. Rows whose key was
/// already loaded for that date are skipped.
#[utoipa::path(
    post, path = "/v1/loads/erp", tag = "loads",
    request_body = ErpLoadInput,
    responses(
        (status = 200, description = "The preview (dry_run)", body = Preview),
        (status = 201, description = "The load, committed", body = LoadDetail),
        (status = 400, response = error::BadRequest),
        (status = 422, response = error::Invalid),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["operators"]))
)]
pub async fn erp_load(
    state: web::Data<AppState>,
    caller: Caller,
    JsonBody(input): JsonBody<ErpLoadInput>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Operators)?;
    let reference = parse_date("reference_date", &input.reference_date)?;
    let send = match input.send_date.as_deref() {
        Some(raw) => parse_date("send_date", raw)?,
        None => state.loads.today(),
    };
    state.loads.check_send_date(send).map_err(load_error)?;
    let dates = Dates { reference, send };
    if input.dry_run {
        let (source, spec) = state
            .loads
            .erp_spec(LoadKind::Manual, dates, caller.label())
            .await
            .map_err(load_error)?;
        let fetched = state
            .loads
            .erp_rows(&source, dates, None, None)
            .await
            .map_err(load_error)?;
        let rows = fetched.table.rows.len();
        let plan = state
            .loads
            .preview(&spec, fetched.table)
            .await
            .map_err(load_error)?;
        return Ok(HttpResponse::Ok().json(Preview::of(plan, rows)));
    }
    let record = state
        .loads
        .run_erp(LoadKind::Manual, dates, caller.label())
        .await
        .map_err(load_error)?;
    created(&state, record).await
}

/// The load history, newest first; running loads show their counts as they grow.
#[utoipa::path(
    get, path = "/v1/loads", tag = "loads",
    params(LoadQuery),
    responses(
        (status = 200, description = "A page of loads", body = LoadPage),
        (status = 400, response = error::BadRequest),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["reports"]))
)]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<LoadQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Reports)?;
    let limit = query.limit.unwrap_or(PAGE).clamp(1, MAX_PAGE);
    let after = match query.after.as_deref() {
        None => None,
        Some(cursor) => Some(
            cursor
                .split_once('.')
                .and_then(|(at, id)| Some((at.parse::<i64>().ok()?, id.to_owned())))
                .ok_or_else(|| ApiError::invalid("after", "not a cursor from a previous page"))?,
        ),
    };
    let records = state.store.loads(after, limit + 1).await?;
    let more = records.len() > limit as usize;
    let records: Vec<LoadRecord> = records.into_iter().take(limit as usize).collect();
    let next = more
        .then(|| records.last().map(|r| format!("{}.{}", r.created_at, r.id)))
        .flatten();
    Ok(HttpResponse::Ok().json(LoadPage {
        loads: records.into_iter().map(|r| view(r, &state)).collect(),
        next,
    }))
}

/// One load with its row errors, skipped rows and messages by status.
#[utoipa::path(
    get, path = "/v1/loads/{id}", tag = "loads",
    params(("id" = String, Path, description = "The load's id")),
    responses(
        (status = 200, description = "The load", body = LoadDetail),
        (status = 404, response = error::NotFound),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["reports"]))
)]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Reports)?;
    let record = state
        .store
        .load(&id)
        .await?
        .ok_or(ApiError::NotFound("load"))?;
    Ok(HttpResponse::Ok().json(detail(&state, record).await?))
}

/// Delete a load: every message of it not yet handed to a modem is cancelled; the answer says
/// how many were cancelled and how many had already gone.
#[utoipa::path(
    delete, path = "/v1/loads/{id}", tag = "loads",
    params(("id" = String, Path, description = "The load's id")),
    responses(
        (status = 200, description = "Deleted", body = DeletedLoad),
        (status = 404, response = error::NotFound),
        (status = 409, response = error::Conflict),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["operators"]))
)]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Operators)?;
    match state.store.delete_load(&id, &caller.label()).await? {
        Deleted::Now {
            cancelled,
            already_gone,
        } => {
            tracing::info!(load.id = %id, cancelled, already_gone, "load deleted");
            Ok(HttpResponse::Ok().json(DeletedLoad {
                id: id.into_inner(),
                cancelled,
                already_gone,
            }))
        }
        Deleted::Running => Err(ApiError::Conflict {
            field: None,
            detail: "the load is still running; delete it once it has finished".into(),
        }),
        Deleted::NotFound => Err(ApiError::NotFound("load")),
    }
}

fn source_view(source: SourceSettings) -> SourceView {
    SourceView {
        url: source.url,
        password_set: source.password.is_some(),
        query: source.query,
        phone_column: source.phone_column,
        key_column: source.key_column,
        template_id: source.template_id,
        columns: source.columns,
    }
}

/// The ERP source; the password is never shown.
#[utoipa::path(
    get, path = "/v1/loads/source", tag = "loads",
    responses(
        (status = 200, description = "The source", body = SourceView),
        (status = 404, response = error::NotFound),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn get_source(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Admin)?;
    let source = state
        .loads
        .source()
        .await?
        .ok_or(ApiError::NotFound("source"))?;
    Ok(HttpResponse::Ok().json(source_view(source)))
}

/// Set the ERP source. The query is run once, for today and limited to one row, to learn its
/// columns: the phone and key columns and the template's tokens must be among them.
#[utoipa::path(
    put, path = "/v1/loads/source", tag = "loads",
    request_body = SourceInput,
    responses(
        (status = 200, description = "Saved", body = SourceView),
        (status = 400, response = error::BadRequest),
        (status = 422, response = error::Invalid),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn put_source(
    state: web::Data<AppState>,
    caller: Caller,
    JsonBody(input): JsonBody<SourceInput>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Admin)?;
    let dialect = erp::dialect(&input.url).map_err(|e| ApiError::invalid(e.field, e.reason))?;
    erp::prepare(&input.query, dialect).map_err(|e| ApiError::invalid(e.field, e.reason))?;
    let (url, in_url) = erp::split_password(input.url.trim());
    let stored = state.loads.source().await?;
    let password = match (input.password, in_url) {
        (Some(p), _) if p.is_empty() => None,
        (Some(p), _) => Some(p),
        (None, Some(p)) => Some(p),
        (None, None) => stored.and_then(|s| s.password),
    };
    let template_record = template(&state, &input.template_id).await?;
    let mut source = SourceSettings {
        url,
        password,
        query: input.query.trim().to_owned(),
        phone_column: input.phone_column.trim().to_owned(),
        key_column: input.key_column.trim().to_owned(),
        template_id: input.template_id,
        columns: Vec::new(),
    };
    let today = state.loads.today();
    let dates = Dates {
        reference: today,
        send: today,
    };
    let fetched = state
        .loads
        .erp_rows(&source, dates, Some(1), None)
        .await
        .map_err(|e| match e {
            // The request's own fields are named `url`, `password` and `query`.
            LoadError::Invalid { field, reason } => ApiError::invalid(
                field.strip_prefix("source.").unwrap_or(&field).to_owned(),
                reason,
            ),
            other => load_error(other),
        })?;
    source.columns = fetched.columns.iter().map(|c| c.name.clone()).collect();
    let has = |name: &str| fetched.table.column(name).is_some();
    for (field, column) in [
        ("phone_column", &source.phone_column),
        ("key_column", &source.key_column),
    ] {
        if !has(column) {
            return Err(ApiError::invalid(
                field,
                format!(
                    "the query returns no column `{column}` (it returns: {})",
                    source.columns.join(", ")
                ),
            ));
        }
    }
    if let Ok(parsed) = Template::parse(&template_record.body) {
        let unknown = parsed.unknown_tokens(&source.columns);
        if !unknown.is_empty() {
            let words: Vec<String> = unknown.iter().map(ToString::to_string).collect();
            return Err(ApiError::invalid("template_id", words.join("; ")));
        }
    }
    let text = serde_json::to_string(&source).map_err(|e| ApiError::Internal(e.into()))?;
    state.store.set_setting(SourceSettings::KEY, &text).await?;
    state.events.record(
        "loads.source_changed",
        Some(&caller.label()),
        json!({"url": source.url, "columns": source.columns}),
    );
    Ok(HttpResponse::Ok().json(source_view(source)))
}

/// Run the source's query with a limit: its columns and first rows, written as they would go
/// into messages. Nothing is stored.
#[utoipa::path(
    post, path = "/v1/loads/source/test", tag = "loads",
    request_body = SourceTestInput,
    responses(
        (status = 200, description = "What the query returns", body = SourceTest),
        (status = 400, response = error::BadRequest),
        (status = 404, response = error::NotFound),
        (status = 422, response = error::Invalid),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["operators"]))
)]
pub async fn test_source(
    state: web::Data<AppState>,
    caller: Caller,
    JsonBody(input): JsonBody<SourceTestInput>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Operators)?;
    let source = state
        .loads
        .source()
        .await?
        .ok_or(ApiError::NotFound("source"))?;
    let reference = match input.reference_date.as_deref() {
        Some(raw) => parse_date("reference_date", raw)?,
        None => state.loads.today(),
    };
    let limit = input.limit.unwrap_or(TEST_ROWS);
    if !(1..=MAX_TEST_ROWS).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("1 to {MAX_TEST_ROWS} rows"),
        ));
    }
    let dates = Dates {
        reference,
        send: state.loads.today(),
    };
    let fetched = state
        .loads
        .erp_rows(&source, dates, Some(limit), None)
        .await
        .map_err(load_error)?;
    let format = state.loads.format().await?;
    Ok(HttpResponse::Ok().json(SourceTest {
        columns: fetched.columns,
        rows: fetched
            .table
            .rows
            .iter()
            .map(|(_, cells)| cells.iter().map(|c| format.write(c)).collect())
            .collect(),
    }))
}

/// How amounts and dates are written into messages, and the automatic load's schedule.
#[utoipa::path(
    get, path = "/v1/loads/settings", tag = "loads",
    responses(
        (status = 200, description = "The settings", body = LoadSettings),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["dashboard"]))
)]
pub async fn get_settings(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Dashboard)?;
    Ok(HttpResponse::Ok().json(LoadSettings {
        format: state.loads.format().await?,
        schedule: state.loads.schedule().await?,
        summary: state.loads.summary().await?,
    }))
}

/// Change the formats and the schedule.
#[utoipa::path(
    put, path = "/v1/loads/settings", tag = "loads",
    request_body = LoadSettings,
    responses(
        (status = 200, description = "Saved", body = LoadSettings),
        (status = 400, response = error::BadRequest),
        (status = 422, response = error::Invalid),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn put_settings(
    state: web::Data<AppState>,
    caller: Caller,
    JsonBody(input): JsonBody<LoadSettings>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Admin)?;
    input
        .format
        .check()
        .map_err(|(field, reason)| ApiError::invalid(format!("format.{field}"), reason))?;
    input
        .schedule
        .time()
        .map_err(|reason| ApiError::invalid("schedule.at", reason))?;
    input
        .summary
        .time()
        .map_err(|reason| ApiError::invalid("summary.at", reason))?;
    let internal = |e: serde_json::Error| ApiError::Internal(e.into());
    let format = serde_json::to_string(&input.format).map_err(internal)?;
    let schedule = serde_json::to_string(&input.schedule).map_err(internal)?;
    let summary = serde_json::to_string(&input.summary).map_err(internal)?;
    state.store.set_setting(Format::KEY, &format).await?;
    state
        .store
        .set_setting(ScheduleSettings::KEY, &schedule)
        .await?;
    state
        .store
        .set_setting(ScheduleSettings::SUMMARY_KEY, &summary)
        .await?;
    state.events.record(
        "loads.settings_changed",
        Some(&caller.label()),
        json!({"schedule": input.schedule, "format": input.format}),
    );
    Ok(HttpResponse::Ok().json(input))
}

/// A load's report, as it is mailed: counts and every row error.
#[utoipa::path(
    get, path = "/v1/loads/{id}/report", tag = "loads",
    params(("id" = String, Path, description = "The load's id")),
    responses(
        (status = 200, description = "The report", body = Report),
        (status = 404, response = error::NotFound),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["reports"]))
)]
pub async fn report(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Reports)?;
    let record = state
        .store
        .load(&id)
        .await?
        .ok_or(ApiError::NotFound("load"))?;
    let rows = state.store.load_rows(&record.id).await?;
    let statuses = state.store.load_statuses(&record.id).await?;
    let lang = crate::notify::email::language(&state.store).await?;
    let (subject, text) = report::load_report(&record, &rows, &statuses, state.tz, lang);
    Ok(HttpResponse::Ok().json(Report {
        subject,
        text,
        sent_at: super::time::show_opt(record.report_sent_at, state.tz),
    }))
}

/// The day's loads in one summary, as it is mailed once a day.
#[utoipa::path(
    get, path = "/v1/loads/summary", tag = "loads",
    params(SummaryQuery),
    responses(
        (status = 200, description = "The summary", body = Report),
        (status = 400, response = error::BadRequest),
        (status = 422, response = error::Invalid),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["reports"]))
)]
pub async fn summary(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<SummaryQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Reports)?;
    let day = match query.date.as_deref() {
        Some(raw) => parse_date("date", raw)?,
        None => state.loads.today(),
    };
    let (from, until) = report::day_bounds(day, state.tz);
    let loads = state.store.loads_between(from, until).await?;
    let lang = crate::notify::email::language(&state.store).await?;
    let (subject, text) = report::daily_summary(day, &loads, state.tz, lang);
    Ok(HttpResponse::Ok().json(Report {
        subject,
        text,
        sent_at: None,
    }))
}
