//! The one error type of the program.
//!
//! Every failure a handler can meet becomes an `AppError`, which knows its HTTP status and
//! renders the API's body, `{"error": "<one sentence a person can act on>"}` (docs/api.md).
//! Handlers never build error responses by hand. The extractor `ApiQuery` wraps axum's own so
//! that a malformed query string also answers with that body instead of axum's plain text
//! (request bodies: `crate::json_body`).
//!
//! A failure on our side (`Internal`) keeps its cause as its `source`; the person sees a
//! generic sentence, and [`log_internal_errors`] writes the cause's whole chain to the log
//! with the request's method and path.

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::Next;
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
    /// Something on our side failed; the cause is logged, the user sees a generic sentence.
    #[error(transparent)]
    Internal(Cause),
    /// A service the server asks on the user's behalf (the Sandstorm bridge) could not be
    /// reached or failed (502): `message` says what the person can do, `cause` is logged.
    #[error("{message}")]
    BadGateway { message: String, cause: Cause },
}

/// What failed on our side: what the server was doing, and the error that stopped it.
#[derive(Debug, thiserror::Error)]
#[error("{context}")]
pub struct Cause {
    context: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl From<String> for Cause {
    fn from(context: String) -> Cause {
        Cause {
            context,
            source: None,
        }
    }
}

impl From<&str> for Cause {
    fn from(context: &str) -> Cause {
        Cause::from(context.to_string())
    }
}

impl AppError {
    /// A failure on our side while doing `context`, caused by `err`.
    pub fn internal(
        context: &str,
        err: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        AppError::Internal(Cause {
            context: context.to_string(),
            source: Some(err.into()),
        })
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
            AppError::BadGateway { .. } => StatusCode::BAD_GATEWAY,
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
        let (message, failure) = match &self {
            AppError::Internal(cause) => (
                "Something went wrong on the server; try again, and check the grain's log if it keeps happening.".to_string(),
                Some(InternalFailure(chain(cause))),
            ),
            AppError::BadGateway { message, cause } => {
                (message.clone(), Some(InternalFailure(chain(cause))))
            }
            other => (other.to_string(), None),
        };
        let mut response =
            (status, axum::Json(serde_json::json!({ "error": message }))).into_response();
        if let Some(failure) = failure {
            response.extensions_mut().insert(failure);
        }
        if let AppError::Busy { retry_after, .. } = &self {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(*retry_after),
            );
        }
        response
    }
}

/// An error and its causes, outermost first: `saving a file: No space left on device`.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut next = err.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

/// Carried by a response answering an internal failure (ours or a service's we asked), for
/// [`log_internal_errors`].
#[derive(Clone)]
struct InternalFailure(String);

/// Middleware: logs every internal failure with the method and path of the request that met
/// it. The response itself only tells the person that something went wrong.
pub async fn log_internal_errors(request: Request, next: Next) -> Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    let response = next.run(request).await;
    if let Some(InternalFailure(cause)) = response.extensions().get::<InternalFailure>() {
        tracing::error!("{method} {path}: {cause}");
    }
    response
}

/// `axum::extract::Query` whose rejections answer with the API's error body (docs/api.md §2).
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error;

    #[test]
    fn an_internal_error_keeps_its_cause_and_tells_the_person_only_a_sentence() {
        let disk = std::io::Error::other("the disk went away");
        let err = AppError::internal("saving the tutorial state", disk);
        assert_eq!(err.source().unwrap().to_string(), "the disk went away");
        assert_eq!(chain(&err), "saving the tutorial state: the disk went away");
        let response = err.into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let logged = response.extensions().get::<InternalFailure>().unwrap();
        assert_eq!(logged.0, "saving the tutorial state: the disk went away");
    }

    #[test]
    fn a_full_disk_is_507_whatever_reported_it() {
        let full = std::io::Error::from_raw_os_error(libc::ENOSPC);
        assert_eq!(
            AppError::from(full).status(),
            StatusCode::INSUFFICIENT_STORAGE
        );
    }
}
