//! Handlers for `/tiles/ID.pmtiles` (byte ranges of one archive), `/tiles/{z}/{x}/{y}.mvt`
//! (the merged tile source) and `/tiles/tiles.json`.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::ranges::{Wanted, wanted};
use super::{grid, merged};
use crate::app::SharedState;
use crate::error::{ApiQuery, AppError, Result};
use crate::tile_id::TileId;

const MVT_TYPE: &str = "application/vnd.mapbox-vector-tile";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RangeQuery {
    range_first: Option<String>,
    range_last: Option<String>,
}

pub async fn archive(
    State(state): State<SharedState>,
    Path(name): Path<String>,
    ApiQuery(query): ApiQuery<RangeQuery>,
    request: Request,
) -> Result<Response> {
    let headers = request.headers();
    let not_found = || AppError::NotFound(format!("There is no installed region called {name}."));
    let id = name
        .strip_suffix(".pmtiles")
        .and_then(TileId::parse)
        .ok_or_else(not_found)?;
    let installed = state.tiles.installed();
    let archive = installed.get(id.as_str()).ok_or_else(not_found)?;
    let size = archive.bytes.len() as u64;
    let range_header = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let wanted = wanted(
        query.range_first.as_deref(),
        query.range_last.as_deref(),
        range_header,
        size,
    )?;
    let mut response = match wanted {
        Wanted::Whole => (StatusCode::OK, Body::from(archive.bytes.clone())).into_response(),
        Wanted::Part(range) => {
            let (first, last) = (*range.start(), *range.end());
            // Both ends are within the file, so they fit in usize.
            let part = archive.bytes.slice(first as usize..=last as usize);
            let mut r = (StatusCode::PARTIAL_CONTENT, Body::from(part)).into_response();
            r.headers_mut().insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes {first}-{last}/{size}")),
            );
            r
        }
        Wanted::Unsatisfiable => {
            let mut r = AppError::RangeNotSatisfiable(format!(
                "The requested bytes start past the end of {name}, which is {size} bytes long."
            ))
            .into_response();
            r.headers_mut().insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes */{size}")),
            );
            r
        }
    };
    let h = response.headers_mut();
    if !h.contains_key(header::CONTENT_TYPE) {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
    }
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::ETAG, archive.etag.clone());
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    Ok(response)
}

pub async fn tile(
    State(state): State<SharedState>,
    Path((z, x, y)): Path<(String, String, String)>,
    request: Request,
) -> Result<Response> {
    let headers = request.headers();
    let (z, x, y) = parse_coordinates(&z, &x, &y)?;
    let installed = state.tiles.installed();
    let covering: Vec<_> = installed
        .values()
        .filter(|a| a.covers(z, x, y))
        .cloned()
        .collect();
    let gzip_ok = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let etag = tile_etag(
        z,
        x,
        y,
        covering.iter().map(|a| a.identity.as_str()),
        gzip_ok,
    );
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        return Ok(tile_response(
            StatusCode::NOT_MODIFIED,
            Body::empty(),
            &etag,
            false,
        ));
    }

    let answer = merged::tile(&installed.merged, &covering, (z, x, y), gzip_ok).await?;
    Ok(match answer {
        None => tile_response(StatusCode::NO_CONTENT, Body::empty(), &etag, false),
        Some(answer) => tile_response(
            StatusCode::OK,
            Body::from(answer.bytes),
            &etag,
            answer.gzipped,
        ),
    })
}

pub async fn tilejson(State(state): State<SharedState>) -> impl IntoResponse {
    (
        [
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Json(super::tilejson::describe(&state.tiles.installed())),
    )
}

fn parse_coordinates(z: &str, x: &str, y: &str) -> Result<(u8, u32, u32)> {
    let bad = || {
        AppError::BadRequest(
            "A tile address is /tiles/Z/X/Y.mvt with whole numbers inside the zoom level's grid."
                .into(),
        )
    };
    let y = y.strip_suffix(".mvt").ok_or_else(bad)?;
    let z: u8 = z.parse().ok().filter(|z| *z <= 30).ok_or_else(bad)?;
    let x: u32 = x.parse().map_err(|_| bad())?;
    let y: u32 = y.parse().map_err(|_| bad())?;
    if !grid::on_grid(z, x, y) {
        return Err(bad());
    }
    Ok((z, x, y))
}

fn tile_etag<'a>(
    z: u8,
    x: u32,
    y: u32,
    identities: impl Iterator<Item = &'a str>,
    gzip: bool,
) -> String {
    let mut hash = Sha256::new();
    hash.update(format!("{z}/{x}/{y}/{gzip}"));
    for identity in identities {
        hash.update(identity);
    }
    format!("\"{}\"", hex::encode(&hash.finalize()[..12]))
}

fn tile_response(status: StatusCode, body: Body, etag: &str, gzipped: bool) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    if status == StatusCode::OK {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(MVT_TYPE));
    }
    if gzipped {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    h.insert(header::ETAG, header_value(etag));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    r
}

fn header_value(text: &str) -> HeaderValue {
    // Only ASCII text built by this module reaches here.
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}
