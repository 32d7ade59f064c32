//! Handlers for /app/download-manifest, /app/download-map and /app/map-delete: check the
//! caller may download, queue the request, answer at once. And the download part of
//! /app/map-download-status, read from the queue off the serving loop.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Regions;
use super::progress::Progress;
use super::queue::Action;
use crate::app::SharedState;
use crate::error::{AppError, Result};
use crate::grain::{Caller, Permission};
use crate::json_body::JsonBody;
use crate::tile_id::{BASE_MAP, TileId};

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
    state.regions.request_manifest();
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
    state.regions.request_download(&id).await?;
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
        state.regions.request_delete(None).await?;
    } else {
        state.regions.request_delete(Some(&tile_id(&req)?)).await?;
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

/// The download part of the status answer (docs/api.md §2).
pub async fn status_json(regions: &Regions) -> Result<Value> {
    let shared = &regions.shared;
    // Read in the order work moves through them (running, then progress, then the queue,
    // then the map), so that a region finishing meanwhile is seen in one place or the next,
    // never in none and never queued again.
    let running = shared.running().clone();
    let mut in_progress = shared.tracker.snapshot();
    let queue = shared.queue.clone();
    let jobs = crate::task::blocking(move || queue.jobs()).await?;
    // Done is what the map serves: the tile store takes in a region once its marker is
    // written and lets it go, after its marker is removed, in one swap.
    let installed = shared.tiles.installed();
    let (list_status, list_error, list_error_key) = {
        let fetching = shared.region_list.lock().unwrap_or_else(|e| e.into_inner());
        (fetching.status, fetching.error.clone(), fetching.error_key)
    };
    let mut queued_download = Vec::new();
    let mut queued_delete = Vec::new();
    for job in &jobs {
        match (job.action, &job.failed) {
            (Action::Download, Some(message)) => {
                in_progress
                    .entry(job.tile_id.clone())
                    .or_insert_with(|| Progress::failed(message, job.failed_key));
            }
            (Action::Download, None) if !running.contains_key(&job.tile_id) => {
                queued_download.push(job.tile_id.to_string());
            }
            (Action::Delete, _) => queued_delete.push(job.tile_id.to_string()),
            _ => {}
        }
    }
    // Installed is installed, whatever the download's last words.
    in_progress.retain(|id, _| !installed.contains_key(id.as_str()));
    let done: Vec<&String> = installed.keys().filter(|id| *id != BASE_MAP).collect();
    Ok(json!({
        "available-areas": shared.manifest().map(|m| m.areas_json()),
        "available-areas-bytes": shared.manifest().map(|m| m.sizes_json()),
        "available-areas-status": list_status,
        "available-areas-error": list_error,
        "available-areas-error-key": list_error_key,
        "in-progress": in_progress
            .into_iter()
            .map(|(id, p)| (id.to_string(), json!(p)))
            .collect::<serde_json::Map<String, Value>>(),
        "queued-for-download": queued_download,
        "queued-for-deletion": queued_delete,
        "done": done,
    }))
}
