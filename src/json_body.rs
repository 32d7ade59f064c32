//! Request bodies of the state-changing routes: JSON whatever the `Content-Type`, parsed
//! only once the caller's permission is checked.
//!
//! The old web client posts its JSON with `fetch` and a string body, which browsers send as
//! `text/plain;charset=UTF-8`; those bodies must still be read (docs/api.md §2, "Requests").
//! Parsing happens on demand, not in the extractor, so a handler checks the permission
//! first and a viewer who posts malformed JSON is told 403, not 400:
//!
//! ```ignore
//! pub async fn save(caller: Caller, body: JsonBody<SaveRequest>) -> Result<…> {
//!     caller.require(Permission::Bookmarks)?;
//!     let request = body.parse()?;
//!     …
//! }
//! ```
//!
//! Accepting any content type opens the door to cross-site form posts, which
//! `crate::same_origin` closes.

use std::marker::PhantomData;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::app::BODY_LIMIT;
use crate::error::{AppError, Result};

/// The raw body of a request, to be parsed as JSON into `T` by [`JsonBody::parse`].
pub struct JsonBody<T> {
    bytes: Bytes,
    shape: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> JsonBody<T> {
    /// Parses the body; a mistake answers 400 with a sentence saying what is wrong.
    pub fn parse(self) -> Result<T> {
        parse_json(&self.bytes)
    }
}

/// Parses `bytes` as a JSON `T`, answering 400 with the API's error body on any mistake.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => AppError::BadRequest(format!(
                "The JSON body has the wrong shape: {e}; see docs/api.md for what this route takes."
            )),
            Category::Eof if bytes.iter().all(u8::is_ascii_whitespace) => {
                AppError::BadRequest("The request has no body; send a JSON object.".into())
            }
            Category::Syntax | Category::Eof | Category::Io => {
                AppError::BadRequest("The body is not valid JSON; send a JSON object.".into())
            }
        }
    })
}

impl<S: Send + Sync, T> FromRequest<S> for JsonBody<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        match Bytes::from_request(req, state).await {
            Ok(bytes) => Ok(JsonBody {
                bytes,
                shape: PhantomData,
            }),
            Err(rejection) => Err(body_rejection(rejection)),
        }
    }
}

fn body_rejection(rejection: BytesRejection) -> AppError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::PayloadTooLarge(format!(
            "The request body is too large; the limit is {} MiB.",
            BODY_LIMIT / (1024 * 1024)
        ))
    } else {
        AppError::BadRequest(format!(
            "The request body could not be read: {}.",
            rejection.body_text()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct Named {
        #[allow(dead_code)]
        name: String,
    }

    #[test]
    fn mistakes_are_sentences_naming_what_is_wrong() {
        let message = |body: &str| match parse_json::<Named>(body.as_bytes()) {
            Err(AppError::BadRequest(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(message("").contains("no body"));
        assert!(message("{").contains("not valid JSON"));
        assert!(message("{\"name\": 5}").contains("wrong shape"));
        assert!(parse_json::<Named>(b"{\"name\": \"x\"}").is_ok());
    }
}
