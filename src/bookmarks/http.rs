//! Handlers for /app/bookmarks, /app/bookmark, /app/bookmark-delete and /app/export.kmz.
//!
//! Request bodies are checked here, field by field, so that every mistake a client can make
//! answers 400 with a sentence naming the field.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Bookmark, NewBookmark, kml};
use crate::app::SharedState;
use crate::error::{AppError, Result};
use crate::grain::{Caller, Permission};
use crate::json_body::JsonBody;
use crate::task::blocking;

/// Longest bookmark name accepted, in characters.
const MAX_NAME_CHARS: usize = 500;

#[derive(Deserialize)]
pub struct SaveRequest {
    id: Option<Value>,
    version: Option<Value>,
    name: Option<Value>,
    latlng: Option<Value>,
}

#[derive(Deserialize)]
pub struct DeleteRequest {
    id: Option<Value>,
}

pub async fn list(State(state): State<SharedState>) -> Result<Json<BTreeMap<String, Bookmark>>> {
    let list = blocking(move || state.bookmarks.list()).await?;
    Ok(Json(list.into_iter().map(|b| (b.id.clone(), b)).collect()))
}

pub async fn save(
    State(state): State<SharedState>,
    caller: Caller,
    body: JsonBody<SaveRequest>,
) -> Result<Json<Value>> {
    caller.require(Permission::Bookmarks)?;
    let req = body.parse()?;
    let new = validate(&req)?;
    let saved = match (&req.id, &req.version) {
        (None, _) | (Some(Value::Null), _) => {
            blocking(move || state.bookmarks.create(&new)).await?
        }
        (Some(id), version) => {
            let id = text_id(id)?;
            let version = version.as_ref().and_then(Value::as_i64).ok_or_else(|| {
                AppError::BadRequest(
                    "To change a bookmark, send its \"version\" as a whole number along with its \"id\"."
                        .into(),
                )
            })?;
            blocking(move || state.bookmarks.update(&id, version, &new)).await?
        }
    };
    Ok(Json(json!([saved.id, saved])))
}

pub async fn delete(
    State(state): State<SharedState>,
    caller: Caller,
    body: JsonBody<DeleteRequest>,
) -> Result<Json<Value>> {
    caller.require(Permission::Bookmarks)?;
    let req = body.parse()?;
    let id = match &req.id {
        Some(id) => text_id(id)?,
        None => {
            return Err(AppError::NotFound(
                "Say which bookmark to delete with its \"id\".".into(),
            ));
        }
    };
    blocking(move || state.bookmarks.delete(&id)).await?;
    Ok(Json(json!({})))
}

pub async fn export_kmz(State(state): State<SharedState>) -> Result<impl IntoResponse> {
    let body = blocking(move || kml::kmz(&state.bookmarks.list()?)).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/vnd.google-earth.kmz"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=export.kmz",
            ),
        ],
        body,
    ))
}

fn text_id(id: &Value) -> Result<String> {
    match id.as_str() {
        Some(s) if !s.is_empty() && s.len() <= 200 => Ok(s.to_string()),
        _ => Err(AppError::BadRequest(
            "A bookmark \"id\" is the text the server gave when the bookmark was created.".into(),
        )),
    }
}

fn validate(req: &SaveRequest) -> Result<NewBookmark> {
    let name = match &req.name {
        Some(Value::String(s)) => s.trim().to_string(),
        _ => {
            return Err(AppError::BadRequest(
                "A bookmark needs a \"name\", given as text.".into(),
            ));
        }
    };
    if name.chars().any(is_refused_control) {
        return Err(AppError::BadRequest(
            "A bookmark's \"name\" cannot hold control characters (other than tab and newline); remove them.".into(),
        ));
    }
    if name.is_empty() {
        return Err(AppError::BadRequest(
            "A bookmark's \"name\" cannot be empty.".into(),
        ));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(AppError::BadRequest(format!(
            "A bookmark's \"name\" can be at most {MAX_NAME_CHARS} characters long."
        )));
    }
    let latlng =
        req.latlng
            .as_ref()
            .and_then(Value::as_object)
            .ok_or_else(|| {
                AppError::BadRequest(
            "A bookmark needs a \"latlng\" object such as {\"lat\": 43.77, \"lng\": 11.25}.".into(),
        )
            })?;
    let coordinate = |key: &str, limit: f64| -> Result<f64> {
        match latlng.get(key).and_then(Value::as_f64) {
            Some(v) if v.is_finite() && v.abs() <= limit => Ok(v),
            _ => Err(AppError::BadRequest(format!(
                "\"latlng.{key}\" must be a number from {} to {limit}.",
                -limit
            ))),
        }
    };
    Ok(NewBookmark {
        name,
        lat: coordinate("lat", 90.0)?,
        lng: coordinate("lng", 180.0)?,
    })
}

/// Control characters other than tab and newline: invisible, and most of them not allowed in
/// the XML of the KMZ export.
fn is_refused_control(c: char) -> bool {
    c < ' ' && c != '\t' && c != '\n'
}
