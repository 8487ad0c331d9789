//! `/v1/templates`: message texts with `<token>` fields, checked when saved, and rendered
//! against a sample row to see the message a load would make.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, http::header, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::AppState;
use super::caller::Caller;
use super::error::{self, ApiError};
use super::json::JsonBody;
use crate::domain::{
    Encoding, MessageText, Module, PhoneNumber, Row, Template, TemplateProblem, segment_room,
};
use crate::store::{StoreError, TemplateChanges, TemplateRecord};

/// The most characters a message may have when a template does not say: 140, the signature
/// included, as the desktop program allowed.
const DEFAULT_MAX_LENGTH: i64 = 140;
/// The longest template text, in characters.
const MAX_BODY: usize = 1_600;

/// A new template.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTemplateInput {
    /// What operators call it, 1 to 100 characters, unique.
    #[schema(example = "Recordatorio de cuota")]
    pub name: String,
    /// The text, with `<token>` fields for the columns of the source; `<<` and `>>` for
    /// literal brackets.
    #[schema(
        example = "Estimado <nombre>, su cuota <numerocuota> de <moneda> <montocuota> \
        vence el <fechavencimiento>."
    )]
    pub text: String,
    /// The most characters a message made from it may have, signature included (default 140).
    pub max_length: Option<i64>,
}

/// Changes to a template; absent fields keep their value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateChange {
    /// A new name.
    pub name: Option<String>,
    /// A new text.
    pub text: Option<String>,
    /// A new maximum length.
    pub max_length: Option<i64>,
}

/// A stored template.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateView {
    /// Identifier.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its text.
    pub text: String,
    /// The tokens it uses, as written, in order of first use.
    pub tokens: Vec<String>,
    /// The most characters a message made from it may have, signature included.
    pub max_length: i64,
    /// Who made it.
    pub created_by: String,
    /// When it was made.
    pub created_at: String,
    /// When it was last changed.
    pub updated_at: String,
    /// Tokens the configured ERP source has no column for, with their positions; a load from
    /// that source would fail. Empty when no source is set.
    pub source_warnings: Vec<String>,
}

/// A sample row to render a template against.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenderInput {
    /// Column names and their values, as the source would give them.
    #[schema(example = json!({"nombre": "Ana Quispe", "numerocuota": "3", "moneda": "Bs",
        "montocuota": "150,00", "fechavencimiento": "05/12/2026"}))]
    pub row: BTreeMap<String, String>,
}

/// A rendered sample to send to a phone now.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestInput {
    /// The recipient.
    #[schema(example = "71234567")]
    pub to: String,
    /// Column names and their values, as for render.
    pub row: BTreeMap<String, String>,
    /// The modem to send it through; by default the first one that is ready.
    pub modem_id: Option<String>,
}

/// What the network said to a test.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestSent {
    /// The recipient in E.164.
    pub to: String,
    /// The text that went out, signature included.
    pub text: String,
    /// The modem that sent it.
    pub modem_id: String,
    /// The message reference of each segment.
    pub references: Vec<u8>,
}

/// The message a row makes.
#[derive(Debug, Serialize, ToSchema)]
pub struct Rendered {
    /// The text as it would go out, signature included.
    pub text: String,
    /// Its length in characters.
    pub length: usize,
    /// The template's maximum length.
    pub max_length: i64,
    /// Whether the text is within it.
    pub within_limit: bool,
    /// The alphabet it would travel in.
    pub encoding: Encoding,
    /// How many SMS segments it takes.
    pub segments: usize,
    /// What the last segment can still take: characters for GSM-7 (an extension character such
    /// as `€` counts two), UTF-16 units for UCS-2.
    pub remaining: usize,
}

/// Mounts the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        super::resource("/v1/templates")
            .route(web::get().to(list))
            .route(web::post().to(create)),
    )
    .service(
        super::resource("/v1/templates/{id}")
            .route(web::get().to(get))
            .route(web::put().to(update))
            .route(web::delete().to(delete)),
    )
    .service(super::resource("/v1/templates/{id}/render").route(web::post().to(render)))
    .service(super::resource("/v1/templates/{id}/test").route(web::post().to(test)));
}

/// The columns of the configured ERP source, as last checked; none when no source is set.
async fn source_columns(state: &AppState) -> Result<Vec<String>, ApiError> {
    Ok(state
        .loads
        .source()
        .await?
        .map(|s| s.columns)
        .unwrap_or_default())
}

fn view(record: TemplateRecord, state: &AppState, columns: &[String]) -> TemplateView {
    let mut tokens: Vec<String> = Vec::new();
    let mut source_warnings = Vec::new();
    if let Ok(template) = Template::parse(&record.body) {
        for token in template.tokens() {
            if !tokens.iter().any(|t| crate::domain::fold(t) == token.key) {
                tokens.push(token.name.clone());
            }
        }
        if !columns.is_empty() {
            source_warnings = template
                .unknown_tokens(columns)
                .iter()
                .map(ToString::to_string)
                .collect();
        }
    }
    TemplateView {
        id: record.id,
        name: record.name,
        text: record.body,
        tokens,
        max_length: record.max_length,
        created_by: record.created_by,
        created_at: super::time::show(record.created_at, state.tz),
        updated_at: super::time::show(record.updated_at, state.tz),
        source_warnings,
    }
}

fn check_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "name",
            "a name has 1 to 100 characters, without line breaks",
        ));
    }
    Ok(name.to_owned())
}

/// Checks a template's text; every problem is named with its position.
fn check_text(text: &str) -> Result<Template, ApiError> {
    if text.chars().count() > MAX_BODY {
        return Err(ApiError::invalid(
            "text",
            format!("a template has at most {MAX_BODY} characters"),
        ));
    }
    Template::parse(text).map_err(|problems| {
        let detail = problems
            .iter()
            .map(TemplateProblem::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        ApiError::invalid("text", detail)
    })
}

fn check_max_length(max_length: i64) -> Result<i64, ApiError> {
    if !(1..=1_530).contains(&max_length) {
        return Err(ApiError::invalid(
            "max_length",
            "between 1 and 1530 characters (ten GSM-7 segments)",
        ));
    }
    Ok(max_length)
}

fn name_taken(err: StoreError) -> ApiError {
    match err {
        StoreError::Duplicate { .. } => ApiError::Conflict {
            field: Some("name".into()),
            detail: "a template with this name exists".into(),
        },
        other => other.into(),
    }
}

/// Every template, by name.
#[utoipa::path(
    get, path = "/v1/templates", tag = "templates",
    responses(
        (status = 200, description = "The templates", body = [TemplateView]),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["dashboard"]))
)]
pub async fn list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Dashboard)?;
    let columns = source_columns(&state).await?;
    let templates: Vec<TemplateView> = state
        .store
        .templates()
        .await?
        .into_iter()
        .map(|t| view(t, &state, &columns))
        .collect();
    Ok(HttpResponse::Ok().json(templates))
}

/// Save a new template; its text is checked first.
#[utoipa::path(
    post, path = "/v1/templates", tag = "templates",
    request_body = NewTemplateInput,
    responses(
        (status = 201, description = "Saved", body = TemplateView),
        (status = 400, response = error::BadRequest),
        (status = 409, response = error::Conflict),
        (status = 422, response = error::Invalid),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["operators"]))
)]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    JsonBody(input): JsonBody<NewTemplateInput>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Operators)?;
    let name = check_name(&input.name)?;
    check_text(&input.text)?;
    let max_length = check_max_length(input.max_length.unwrap_or(DEFAULT_MAX_LENGTH))?;
    let record = state
        .store
        .create_template(&name, &input.text, max_length, &caller.label())
        .await
        .map_err(name_taken)?;
    state.events.record(
        "template.created",
        Some(&caller.label()),
        json!({"id": record.id, "name": record.name}),
    );
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/v1/templates/{}", record.id)))
        .json(view(record, &state, &source_columns(&state).await?)))
}

/// Read a template.
#[utoipa::path(
    get, path = "/v1/templates/{id}", tag = "templates",
    params(("id" = String, Path, description = "The template's id")),
    responses(
        (status = 200, description = "The template", body = TemplateView),
        (status = 404, response = error::NotFound),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["dashboard"]))
)]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Dashboard)?;
    let record = state
        .store
        .template(&id)
        .await?
        .ok_or(ApiError::NotFound("template"))?;
    Ok(HttpResponse::Ok().json(view(record, &state, &source_columns(&state).await?)))
}

/// Change a template's name, text or maximum length; a new text is checked first.
#[utoipa::path(
    put, path = "/v1/templates/{id}", tag = "templates",
    params(("id" = String, Path, description = "The template's id")),
    request_body = TemplateChange,
    responses(
        (status = 200, description = "Changed", body = TemplateView),
        (status = 400, response = error::BadRequest),
        (status = 404, response = error::NotFound),
        (status = 409, response = error::Conflict),
        (status = 422, response = error::Invalid),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["operators"]))
)]
pub async fn update(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    JsonBody(change): JsonBody<TemplateChange>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Operators)?;
    let changes = TemplateChanges {
        name: change.name.as_deref().map(check_name).transpose()?,
        body: match change.text {
            Some(text) => {
                check_text(&text)?;
                Some(text)
            }
            None => None,
        },
        max_length: change.max_length.map(check_max_length).transpose()?,
    };
    let record = state
        .store
        .update_template(&id, changes)
        .await
        .map_err(name_taken)?
        .ok_or(ApiError::NotFound("template"))?;
    state.events.record(
        "template.changed",
        Some(&caller.label()),
        json!({"id": record.id, "name": record.name}),
    );
    Ok(HttpResponse::Ok().json(view(record, &state, &source_columns(&state).await?)))
}

/// Delete a template.
#[utoipa::path(
    delete, path = "/v1/templates/{id}", tag = "templates",
    params(("id" = String, Path, description = "The template's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, response = error::NotFound),
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
    if !state.store.delete_template(&id).await? {
        return Err(ApiError::NotFound("template"));
    }
    state.events.record(
        "template.deleted",
        Some(&caller.label()),
        json!({"id": *id}),
    );
    Ok(HttpResponse::NoContent().finish())
}

/// Render a template against a sample row: the message as it would go out, signature
/// included, with its encoding, segments and the room left in the last segment.
#[utoipa::path(
    post, path = "/v1/templates/{id}/render", tag = "templates",
    params(("id" = String, Path, description = "The template's id")),
    request_body = RenderInput,
    responses(
        (status = 200, description = "The message the row makes", body = Rendered),
        (status = 400, response = error::BadRequest),
        (status = 404, response = error::NotFound),
        (status = 422, response = error::Invalid),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["dashboard"]))
)]
pub async fn render(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    JsonBody(input): JsonBody<RenderInput>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Dashboard)?;
    let record = state
        .store
        .template(&id)
        .await?
        .ok_or(ApiError::NotFound("template"))?;
    let text = signed_text(&state, &record, input.row)?;
    let length = text.chars().count();
    let (encoding, segments, remaining) = segment_room(&text);
    Ok(HttpResponse::Ok().json(Rendered {
        within_limit: i64::try_from(length).unwrap_or(i64::MAX) <= record.max_length,
        length,
        max_length: record.max_length,
        text,
        encoding,
        segments,
        remaining,
    }))
}

/// The message a row makes from a template, signed.
fn signed_text(
    state: &AppState,
    record: &TemplateRecord,
    row: BTreeMap<String, String>,
) -> Result<String, ApiError> {
    let template = check_text(&record.body)?;
    let body = template.render(&Row::new(row)).map_err(|missing| {
        ApiError::invalid(
            format!("row.{}", missing.token),
            format!("the row has no value for <{}>", missing.token),
        )
    })?;
    Ok(state.sending.sign(&body))
}

/// Send a template rendered against a sample row to a phone now, through a modem, outside the
/// queue and the sending window, to see it as the recipients will.
#[utoipa::path(
    post, path = "/v1/templates/{id}/test", tag = "templates",
    params(("id" = String, Path, description = "The template's id")),
    request_body = TestInput,
    responses(
        (status = 200, description = "The network accepted it", body = TestSent),
        (status = 400, response = error::BadRequest),
        (status = 404, response = error::NotFound),
        (status = 409, response = error::Conflict),
        (status = 422, response = error::Invalid),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["operators"]))
)]
pub async fn test(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    JsonBody(input): JsonBody<TestInput>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Operators)?;
    let to = PhoneNumber::parse(&input.to, state.region).map_err(|e| ApiError::invalid("to", e))?;
    let record = state
        .store
        .template(&id)
        .await?
        .ok_or(ApiError::NotFound("template"))?;
    let text = signed_text(&state, &record, input.row)?;
    let checked = MessageText::parse(&text).map_err(|e| ApiError::invalid("row", e))?;
    let modem_id = match input.modem_id {
        Some(modem_id) => modem_id,
        None => state
            .fleet
            .list()
            .into_iter()
            .find(|m| m.ready)
            .map(|m| m.id)
            .ok_or_else(|| ApiError::Conflict {
                field: None,
                detail: "no modem is ready to send it".into(),
            })?,
    };
    let references = super::modems::send_now(&state, &modem_id, &to, &checked).await?;
    state.events.record(
        "template.test",
        Some(&caller.label()),
        json!({"template": record.id, "modem": modem_id, "to": to.as_str()}),
    );
    Ok(HttpResponse::Ok().json(TestSent {
        to: to.as_str().to_owned(),
        text,
        modem_id,
        references,
    }))
}
