//! Handlers for /app/bookmarks, /app/bookmark, /app/bookmark-delete, /app/export.kmz. (Being built.)

use crate::error::AppError;

pub async fn list() -> AppError {
    AppError::Internal("bookmarks are not built yet".into())
}
pub async fn save() -> AppError {
    AppError::Internal("bookmarks are not built yet".into())
}
pub async fn delete() -> AppError {
    AppError::Internal("bookmarks are not built yet".into())
}
pub async fn export_kmz() -> AppError {
    AppError::Internal("bookmarks are not built yet".into())
}
