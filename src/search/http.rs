//! Handler for `GET /app/search?q=Q&lat=LAT&lng=LNG[&zoom=Z]`.

use axum::Json;
use axum::extract::State;

use super::Place;
use crate::app::SharedState;
use crate::error::{ApiQuery, AppError, Result};
use crate::task::blocking;

/// Longest search text, in characters (not bytes: 400 CJK characters are 1,200 bytes).
pub const MAX_QUERY_CHARS: usize = 1000;

/// The parameters of a search, each given at most once.
struct SearchParams {
    q: Option<String>,
    lat: Option<String>,
    lng: Option<String>,
    zoom: Option<String>,
}

impl SearchParams {
    /// Reads the pairs of the query string; a parameter given twice is refused, since which one
    /// was meant cannot be known. Unknown parameters are ignored.
    fn from_pairs(pairs: Vec<(String, String)>) -> Result<SearchParams> {
        let mut params = SearchParams {
            q: None,
            lat: None,
            lng: None,
            zoom: None,
        };
        for (key, value) in pairs {
            let slot = match key.as_str() {
                "q" => &mut params.q,
                "lat" => &mut params.lat,
                "lng" => &mut params.lng,
                "zoom" => &mut params.zoom,
                _ => continue,
            };
            if slot.is_some() {
                return Err(AppError::BadRequest(format!(
                    "Give \"{key}\" only once in the search address."
                )));
            }
            *slot = Some(value);
        }
        Ok(params)
    }
}

pub async fn search(
    State(state): State<SharedState>,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
) -> Result<Json<Vec<Place>>> {
    let params = SearchParams::from_pairs(pairs)?;
    let lat = coordinate(params.lat.as_deref(), "lat", 90.0)?;
    let lng = coordinate(params.lng.as_deref(), "lng", 180.0)?;
    let zoom = zoom(params.zoom.as_deref())?;
    let query = params.q.unwrap_or_default();
    if query.chars().count() > MAX_QUERY_CHARS {
        return Err(AppError::BadRequest(format!(
            "The search text is too long; use at most {MAX_QUERY_CHARS} characters."
        )));
    }
    let _slot = state.search.admission().enter().await?;
    let search = state.search.clone();
    let places = blocking(move || search.search_at(&query, lat, lng, zoom)).await?;
    if state.search.directories_sampled() {
        // The first search after a quiet second walked the sampled directories; the next
        // ones walk the full ones again, read meanwhile.
        let search = state.search.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = search.restore_directories() {
                tracing::debug!("could not read the search directories again: {e}");
            }
        });
    }
    Ok(Json(places))
}

fn coordinate(raw: Option<&str>, name: &str, limit: f64) -> Result<f64> {
    match raw.map(str::trim).map(str::parse::<f64>) {
        Some(Ok(v)) if v.is_finite() && v.abs() <= limit => Ok(v),
        _ => Err(AppError::BadRequest(format!(
            "Give \"{name}\" as a number from {} to {limit}: the point to search around.",
            -limit
        ))),
    }
}

/// The map's zoom, when the client sends one (older clients do not).
fn zoom(raw: Option<&str>) -> Result<Option<f64>> {
    match raw.map(str::trim).filter(|z| !z.is_empty()) {
        None => Ok(None),
        Some(z) => match z.parse::<f64>() {
            Ok(v) if (0.0..=22.0).contains(&v) => Ok(Some(v)),
            _ => Err(AppError::BadRequest(
                "Give \"zoom\" as a number from 0 to 22: how far the map is zoomed in.".into(),
            )),
        },
    }
}
