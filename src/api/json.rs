//! Request bodies and query strings, read so that every mistake names its field.
//!
//! actix's own `Json` extractor reports "Json deserialize error" without saying where; this one
//! reads the body itself and tracks the path of the value that failed (`messages[3].send_at`),
//! telling a body that is not JSON (400) from JSON with a wrong or missing field (422).

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::error::{PathError, QueryPayloadError};
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use super::error::ApiError;

/// The largest body any route accepts. A batch of 10,000 reminders of a few hundred bytes each
/// takes a few MiB; 10,000 ten-segment UCS-2 texts written as `\u` escapes would not fit, and
/// such a batch is better split.
pub const MAX_BODY: usize = 32 * 1024 * 1024;

/// A JSON body of type `T`.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|essence| {
                let essence = essence.trim().to_ascii_lowercase();
                essence == "application/json" || essence.ends_with("+json")
            })
            .unwrap_or(false);
        let body = web::Bytes::from_request(req, payload);

        Box::pin(async move {
            if !is_json {
                return Err(ApiError::UnsupportedMediaType);
            }
            let bytes = body.await.map_err(|err| {
                if err.as_response_error().status_code().as_u16() == 413 {
                    ApiError::TooLarge(MAX_BODY)
                } else {
                    ApiError::Malformed {
                        field: None,
                        detail: format!("the body could not be read: {err}"),
                    }
                }
            })?;
            parse(&bytes).map(JsonBody)
        })
    }
}

/// Reads `T` from JSON bytes, naming the failing field.
///
/// # Errors
///
/// [`ApiError::Malformed`] for text that is not JSON, [`ApiError::Invalid`] for JSON of the wrong
/// shape.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // serde reads a struct from a JSON array too (`["7123", "hola"]`); every body of this API
    // is an object, so anything else is refused before it can be misread.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                Ok(_) => ApiError::invalid("body", "the body must be a JSON object"),
                Err(e) => ApiError::Malformed {
                    field: None,
                    detail: format!("the body is not valid JSON: {e}"),
                },
            },
        );
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(from_path_error)?;
    de.end().map_err(|e| ApiError::Malformed {
        field: None,
        detail: format!("the body is not valid JSON: {e}"),
    })?;
    Ok(value)
}

/// Reads `T` from one item of a list left as raw JSON, naming fields under `prefix`. Keeping
/// items raw until here lets each be checked on its own without building a tree of values.
///
/// # Errors
///
/// [`ApiError::Invalid`] for an item of the wrong shape.
pub fn from_raw<T: DeserializeOwned>(raw: &RawValue, prefix: &str) -> Result<T, ApiError> {
    if !raw.get().starts_with('{') {
        return Err(ApiError::invalid(prefix, "each item must be a JSON object"));
    }
    let mut de = serde_json::Deserializer::from_str(raw.get());
    serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let detail = strip_position(&err.into_inner().to_string());
        let field = field_name(prefix, &path, &detail);
        ApiError::Invalid { field, detail }
    })
}

fn from_path_error(err: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = err.path().to_string();
    let inner = err.into_inner();
    if inner.is_syntax() || inner.is_eof() || inner.is_io() {
        return ApiError::Malformed {
            field: None,
            detail: format!("the body is not valid JSON: {inner}"),
        };
    }
    let detail = strip_position(&inner.to_string());
    ApiError::Invalid {
        field: field_name("", &path, &detail),
        detail,
    }
}

/// The full path of the failing field. serde reports a missing field at its parent, so the
/// field's own name is taken from the message.
fn field_name(prefix: &str, path: &str, detail: &str) -> String {
    let mut field = String::from(prefix);
    if path != "." {
        if !field.is_empty() && !path.starts_with('[') {
            field.push('.');
        }
        field.push_str(path);
    }
    if let Some(missing) = detail
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
    {
        if !field.is_empty() {
            field.push('.');
        }
        field.push_str(missing);
    }
    if field.is_empty() {
        "body".into()
    } else {
        field
    }
}

/// Drops serde_json's " at line 1 column 42" tail, which says nothing once the field is named.
fn strip_position(detail: &str) -> String {
    match detail.rfind(" at line ") {
        Some(i) => detail[..i].to_owned(),
        None => detail.to_owned(),
    }
}

/// Turns a query-string error into a problem that names the parameter when it can.
pub fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let detail = match &err {
        QueryPayloadError::Deserialize(e) => e.to_string(),
        other => other.to_string(),
    };
    let field = detail
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split('`').next())
        .map(str::to_owned);
    ApiError::Malformed {
        field,
        detail: format!("the query string is not valid: {detail}"),
    }
    .into()
}

/// Turns a path-segment error into a 404-free, field-naming problem.
pub fn path_error(err: PathError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::Malformed {
        field: None,
        detail: format!("the path is not valid: {err}"),
    }
    .into()
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        to: String,
        count: Option<u32>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Batch {
        items: Vec<Item>,
    }

    fn field_of(err: ApiError) -> Option<String> {
        err.problem().field
    }

    #[test]
    fn text_that_is_not_json_is_malformed() {
        let err = parse::<Item>(b"{\"to\": ").unwrap_err();
        assert!(matches!(err, ApiError::Malformed { .. }));
        assert_eq!(err.problem().status, 400);
    }

    #[test]
    fn a_wrong_type_names_its_field() {
        let err = parse::<Batch>(br#"{"items":[{"to":"1"},{"to":5}]}"#).unwrap_err();
        assert_eq!(field_of(err).as_deref(), Some("items[1].to"));
    }

    #[test]
    fn a_missing_field_names_itself() {
        let err = parse::<Batch>(br#"{"items":[{"count":1}]}"#).unwrap_err();
        assert_eq!(field_of(err).as_deref(), Some("items[0].to"));
        let err = parse::<Item>(b"{}").unwrap_err();
        assert_eq!(field_of(err).as_deref(), Some("to"));
    }

    #[test]
    fn an_unknown_field_is_named() {
        let err = parse::<Item>(br#"{"to":"1","sendat":"x"}"#).unwrap_err();
        assert_eq!(field_of(err).as_deref(), Some("sendat"));
    }

    #[test]
    fn an_array_is_not_read_as_an_object() {
        let err = parse::<Item>(br#"["71234567", 1]"#).unwrap_err();
        assert_eq!(field_of(err).as_deref(), Some("body"));
        let raw = RawValue::from_string(r#"["x"]"#.into()).unwrap();
        let err = from_raw::<Item>(&raw, "messages[0]").unwrap_err();
        assert_eq!(field_of(err).as_deref(), Some("messages[0]"));
    }

    #[test]
    fn values_inside_a_batch_carry_the_prefix() {
        let raw = RawValue::from_string(r#"{"to": 7}"#.into()).unwrap();
        let err = from_raw::<Item>(&raw, "messages[4]").unwrap_err();
        assert_eq!(field_of(err).as_deref(), Some("messages[4].to"));
    }
}
