//! Running blocking work (SQLite, file copies) off the async threads.

use crate::error::{AppError, Result};

pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| AppError::internal("a background task failed", e))?
}
