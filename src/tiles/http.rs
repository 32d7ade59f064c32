//! Handlers for /tiles/ID.pmtiles and /tiles/{z}/{x}/{y}.mvt. (Being built.)

use crate::error::AppError;

pub async fn archive() -> AppError {
    AppError::NotFound("tiles are not built yet".into())
}
pub async fn tile() -> AppError {
    AppError::NotFound("tiles are not built yet".into())
}
