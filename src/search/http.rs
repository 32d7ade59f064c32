//! Handler for GET /app/search. (Being built.)

use crate::error::AppError;

pub async fn search() -> AppError {
    AppError::Internal("search is not built yet".into())
}
