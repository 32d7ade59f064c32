//! Handler for `GET /app/search?q=Q&lat=LAT&lng=LNG`.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;

use super::Place;
use crate::app::SharedState;
use crate::error::{ApiQuery, AppError, Result};
use crate::task::blocking;

#[derive(Deserialize)]
pub struct SearchParams {
    q: Option<String>,
    lat: Option<String>,
    lng: Option<String>,
}

pub async fn search(
    State(state): State<SharedState>,
    ApiQuery(params): ApiQuery<SearchParams>,
) -> Result<Json<Vec<Place>>> {
    let lat = coordinate(params.lat.as_deref(), "lat", 90.0)?;
    let lng = coordinate(params.lng.as_deref(), "lng", 180.0)?;
    let query = params.q.unwrap_or_default();
    if query.len() > 1000 {
        return Err(AppError::BadRequest(
            "The search text is too long; use at most 1000 characters.".into(),
        ));
    }
    let places = blocking(move || state.search.search(&query, lat, lng)).await?;
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
