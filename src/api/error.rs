//! The one place errors become HTTP answers: `application/problem+json` (RFC 9457) with a
//! title, the status, a detail a person can act on and, for bad input, the field at fault.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::{ToResponse, ToSchema};

use crate::domain::Module;
use crate::store::StoreError;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error body.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "urn:pregonero:problem:invalid-field",
    "title": "Invalid field",
    "status": 422,
    "detail": "`71234` is not a valid number in its region's numbering plan",
    "field": "to"
}))]
pub struct Problem {
    /// A URI that names the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong this time, in words a person can act on.
    pub detail: String,
    /// The request field at fault, as a path such as `messages[3].to`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// 400 in the OpenAPI document.
#[derive(ToResponse)]
#[response(
    description = "The body is not JSON, or a query parameter is unknown",
    content_type = "application/problem+json"
)]
pub struct BadRequest(#[allow(dead_code)] Problem);

/// 401 in the OpenAPI document.
#[derive(ToResponse)]
#[response(
    description = "No credentials, or a token or key that is wrong, expired or revoked",
    content_type = "application/problem+json"
)]
pub struct Unauthenticated(#[allow(dead_code)] Problem);

/// 403 in the OpenAPI document.
#[derive(ToResponse)]
#[response(
    description = "Valid credentials without the module this route names as its scope",
    content_type = "application/problem+json"
)]
pub struct Forbidden(#[allow(dead_code)] Problem);

/// 404 in the OpenAPI document.
#[derive(ToResponse)]
#[response(
    description = "No such resource",
    content_type = "application/problem+json"
)]
pub struct NotFound(#[allow(dead_code)] Problem);

/// 409 in the OpenAPI document.
#[derive(ToResponse)]
#[response(
    description = "The request contradicts what is stored; `detail` says how",
    content_type = "application/problem+json"
)]
pub struct Conflict(#[allow(dead_code)] Problem);

/// 422 in the OpenAPI document.
#[derive(ToResponse)]
#[response(
    description = "A field is missing or not valid; `field` names it",
    content_type = "application/problem+json"
)]
pub struct Invalid(#[allow(dead_code)] Problem);

/// 503 in the OpenAPI document.
#[derive(ToResponse)]
#[response(
    description = "The database is not available; retry later, with the same `ref`",
    content_type = "application/problem+json"
)]
pub struct Unavailable(#[allow(dead_code)] Problem);

/// 502 in the OpenAPI document.
#[derive(ToResponse)]
#[response(
    description = "The server the gateway asked on the caller's behalf (SMTP, the operator) \
failed; `detail` says how and what to check",
    content_type = "application/problem+json"
)]
pub struct BadGateway(#[allow(dead_code)] Problem);

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request cannot be read: not JSON, a query string that does not parse.
    #[error("{detail}")]
    Malformed {
        /// The field, when the parser could tell.
        field: Option<String>,
        /// What is wrong.
        detail: String,
    },
    /// A field has a value that is not acceptable.
    #[error("{field}: {detail}")]
    Invalid {
        /// The field, as a path.
        field: String,
        /// What is wrong with it.
        detail: String,
    },
    /// No credentials, or credentials that are not (or no longer) valid.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// Valid credentials without the module the route needs.
    #[error("this needs the `{0}` module")]
    Forbidden(Module),
    /// The resource does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The route exists, but not with this method.
    #[error("this route does not take that method")]
    MethodNotAllowed,
    /// The request contradicts the resource's current state.
    #[error("{detail}")]
    Conflict {
        /// The field involved, if one is.
        field: Option<String>,
        /// What the conflict is.
        detail: String,
    },
    /// The body is not JSON by its content type.
    #[error("the body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    /// The body is larger than the route accepts.
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
    /// A server the gateway talks to on the caller's behalf (the SMTP server, a modem's
    /// operator) failed; the detail says how, in words a person can act on.
    #[error("{0}")]
    Upstream(String),
    /// The database could not be reached or refused the write; the client may retry.
    #[error("the database is not available")]
    Unavailable(#[source] StoreError),
    /// A fault of the service itself.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// A field-level validation error.
    pub fn invalid(field: impl Into<String>, detail: impl ToString) -> ApiError {
        ApiError::Invalid {
            field: field.into(),
            detail: detail.to_string(),
        }
    }

    fn kind_and_title(&self) -> (&'static str, &'static str) {
        match self {
            ApiError::Malformed { .. } => ("malformed-request", "Malformed request"),
            ApiError::Invalid { .. } => ("invalid-field", "Invalid field"),
            ApiError::Unauthenticated(_) => ("unauthenticated", "Authentication required"),
            ApiError::Forbidden(_) => ("forbidden", "Permission denied"),
            ApiError::NotFound(_) => ("not-found", "Not found"),
            ApiError::MethodNotAllowed => ("method-not-allowed", "Method not allowed"),
            ApiError::Conflict { .. } => ("conflict", "Conflict"),
            ApiError::UnsupportedMediaType => ("unsupported-media-type", "Unsupported media type"),
            ApiError::TooLarge(_) => ("too-large", "Request too large"),
            ApiError::Upstream(_) => ("upstream", "The other server failed"),
            ApiError::Unavailable(_) => ("unavailable", "Service unavailable"),
            ApiError::Internal(_) => ("internal", "Internal error"),
        }
    }

    /// The body of this error.
    pub fn problem(&self) -> Problem {
        let (kind, title) = self.kind_and_title();
        let (detail, field) = match self {
            ApiError::Malformed { field, detail } => (detail.clone(), field.clone()),
            ApiError::Invalid { field, detail } => (detail.clone(), Some(field.clone())),
            ApiError::Conflict { field, detail } => (detail.clone(), field.clone()),
            ApiError::Internal(_) => ("the service failed; the event log has details".into(), None),
            other => (other.to_string(), None),
        };
        Problem {
            kind: format!("urn:pregonero:problem:{kind}"),
            title: title.into(),
            status: self.status_code().as_u16(),
            detail,
            field,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Database(_) | StoreError::GroupFailed(_) | StoreError::WriterGone => {
                ApiError::Unavailable(err)
            }
            other => ApiError::Internal(other.into()),
        }
    }
}

impl From<crate::eventlog::EventLogError> for ApiError {
    fn from(err: crate::eventlog::EventLogError) -> Self {
        ApiError::Internal(err.into())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Malformed { .. } => StatusCode::BAD_REQUEST,
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Upstream(_) => StatusCode::BAD_GATEWAY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ApiError::Internal(err) => tracing::error!(error = ?err, "request failed"),
            ApiError::Unavailable(err) => tracing::warn!(error = ?err, "database unavailable"),
            other => tracing::debug!(error = %other, "request refused"),
        }

        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)));
        match self {
            ApiError::Unauthenticated(_) => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            ApiError::Unavailable(_) => {
                response.insert_header((header::RETRY_AFTER, "1"));
            }
            _ => {}
        }
        response.body(serde_json::to_vec(&self.problem()).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_problems_name_the_field() {
        let problem = ApiError::invalid("messages[2].to", "not a number").problem();
        assert_eq!(problem.status, 422);
        assert_eq!(problem.field.as_deref(), Some("messages[2].to"));
        assert_eq!(problem.kind, "urn:pregonero:problem:invalid-field");
    }

    #[test]
    fn internal_problems_do_not_leak_the_cause() {
        let err = ApiError::Internal(anyhow::anyhow!("password=hunter2 in connection string"));
        let problem = err.problem();
        assert_eq!(problem.status, 500);
        assert!(!problem.detail.contains("hunter2"));
    }
}
