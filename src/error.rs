//! The one error type of the program.
//!
//! Every failure a handler can meet becomes an `AppError`, which knows its HTTP status and
//! renders the contract's body, `{"error": "<one sentence a person can act on>"}`. Handlers
//! never build error responses by hand. The extractors `ApiJson` and `ApiQuery` wrap axum's
//! own so that malformed input also answers with that body instead of axum's plain text.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

pub type Result<T, E = AppError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request itself is wrong; the message says how to fix it.
    #[error("{0}")]
    BadRequest(String),
    /// The caller lacks a permission; the message names it.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// Someone else changed the thing first, or the request comes too early.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    RangeNotSatisfiable(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    /// Storage has no room left.
    #[error("{0}")]
    InsufficientStorage(String),
    /// Too much is going on; the client may try again after `retry_after` seconds (503).
    #[error("{message}")]
    Busy { message: String, retry_after: u64 },
    /// Something on our side failed; the detail is logged, the user sees a generic sentence.
    #[error("{0}")]
    Internal(String),
}

impl AppError {
    pub fn internal(context: &str, err: impl std::fmt::Display) -> Self {
        AppError::Internal(format!("{context}: {err}"))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::RangeNotSatisfiable(_) => StatusCode::RANGE_NOT_SATISFIABLE,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            AppError::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
            AppError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// What a person is told when the grain's disk is full, wherever it happened.
pub const DISK_FULL: &str = "The grain's disk is full; delete a region to make room and try again.";

/// Whether an I/O error means the disk is full.
pub fn is_disk_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull || e.raw_os_error() == Some(libc::ENOSPC)
}

impl From<rusqlite::Error> for AppError {
    fn from(err: rusqlite::Error) -> Self {
        if err.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
            return AppError::InsufficientStorage(DISK_FULL.into());
        }
        AppError::internal("database error", err)
    }
}

impl From<std::io::Error> for AppError {
    fn from(err: std::io::Error) -> Self {
        if is_disk_full(&err) {
            return AppError::InsufficientStorage(DISK_FULL.into());
        }
        AppError::internal("file error", err)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            AppError::Internal(detail) => {
                tracing::error!("{detail}");
                "Something went wrong on the server; try again, and check the grain's log if it keeps happening.".to_string()
            }
            other => other.to_string(),
        };
        let mut response =
            (status, axum::Json(serde_json::json!({ "error": message }))).into_response();
        if let AppError::Busy { retry_after, .. } = &self {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(*retry_after),
            );
        }
        response
    }
}

/// `axum::Json` whose rejections answer with the contract's error body.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> AppError {
    match rejection {
        JsonRejection::JsonDataError(e) => AppError::BadRequest(format!(
            "The JSON body has the wrong shape: {}.",
            e.body_text()
        )),
        JsonRejection::JsonSyntaxError(_) => {
            AppError::BadRequest("The body is not valid JSON; send a JSON object.".into())
        }
        JsonRejection::MissingJsonContentType(_) => AppError::BadRequest(
            "Send the body as JSON with the header Content-Type: application/json.".into(),
        ),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            AppError::PayloadTooLarge("The request body is too large; the limit is 1 MiB.".into())
        }
        other => AppError::BadRequest(format!(
            "The request body could not be read: {}.",
            other.body_text()
        )),
    }
}

/// `axum::extract::Query` whose rejections answer with the contract's error body.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // serde_urlencoded decodes invalid UTF-8 lossily; a query that is not text is refused.
        let query = parts.uri.query().unwrap_or_default().replace('+', " ");
        if percent_encoding::percent_decode_str(&query)
            .decode_utf8()
            .is_err()
        {
            return Err(AppError::BadRequest(
                "The query string is not valid UTF-8 text; encode it as UTF-8.".into(),
            ));
        }
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(query_rejection(rejection)),
        }
    }
}

fn query_rejection(rejection: QueryRejection) -> AppError {
    AppError::BadRequest(format!(
        "The query string is not valid: {}.",
        rejection.body_text()
    ))
}
