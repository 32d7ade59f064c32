//! Handlers for /app/download-manifest, /app/download-map, /app/map-delete. (Being built.)

use crate::error::AppError;

pub async fn fetch_manifest() -> AppError {
    AppError::Internal("region downloads are not built yet".into())
}
pub async fn download() -> AppError {
    AppError::Internal("region downloads are not built yet".into())
}
pub async fn delete() -> AppError {
    AppError::Internal("region downloads are not built yet".into())
}
