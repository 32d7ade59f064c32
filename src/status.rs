//! `GET /app/map-download-status`: the one answer the web client polls to draw its
//! download panel, tutorial and permission-dependent controls (keys fixed by docs/api.md §2).

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::app::SharedState;
use crate::error::Result;
use crate::grain::Caller;

pub async fn get(State(state): State<SharedState>, caller: Caller) -> Result<Json<Value>> {
    let mut body = crate::regions::http::status_json(&state.regions).await?;
    body["tutorial-mode"] = json!(state.tutorial.mode_for(&caller).await?);
    body["permissions"] = json!(caller.permission_names());
    body["connected"] = json!(crate::sandstorm::http::connected(&state));
    body["base-map"] = json!(state.base_map.name());
    Ok(Json(body))
}
