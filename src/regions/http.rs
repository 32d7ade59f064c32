//! Handlers for /app/download-manifest, /app/download-map and /app/map-delete: check the
//! caller may download, queue the request, answer at once.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::SharedState;
use crate::error::{AppError, Result};
use crate::grain::{Caller, Permission};
use crate::json_body::JsonBody;
use crate::tile_id::TileId;

#[derive(Deserialize)]
pub struct RegionRequest {
    #[serde(rename = "tile-id")]
    tile_id: Option<Value>,
}

pub async fn fetch_manifest(
    State(state): State<SharedState>,
    caller: Caller,
) -> Result<Json<Value>> {
    caller.require(Permission::Download)?;
    state.regions.request_manifest(state.clone());
    Ok(Json(json!({})))
}

pub async fn download(
    State(state): State<SharedState>,
    caller: Caller,
    body: JsonBody<RegionRequest>,
) -> Result<Json<Value>> {
    caller.require(Permission::Download)?;
    let req = body.parse()?;
    let id = tile_id(&req)?;
    state.regions.request_download(&id)?;
    Ok(Json(json!({})))
}

pub async fn delete(
    State(state): State<SharedState>,
    caller: Caller,
    body: JsonBody<RegionRequest>,
) -> Result<Json<Value>> {
    caller.require(Permission::Download)?;
    let req = body.parse()?;
    if req.tile_id.as_ref().and_then(Value::as_str) == Some("all") {
        state.regions.request_delete(None)?;
    } else {
        state.regions.request_delete(Some(&tile_id(&req)?))?;
    }
    Ok(Json(json!({})))
}

fn tile_id(req: &RegionRequest) -> Result<TileId> {
    req.tile_id
        .as_ref()
        .and_then(Value::as_str)
        .and_then(TileId::parse)
        .ok_or_else(|| {
            AppError::BadRequest(
                "Say which region with \"tile-id\": letters, digits, '-' or '_', as the region list names it."
                    .into(),
            )
        })
}
