//! The web client, served by this program itself in local mode (in a grain, nginx serves
//! it). Files come from `<assets>/web`, pre-compressed `.gz` siblings sent to browsers that
//! accept gzip.

use std::path::Path;

use axum::Router;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;
use tower_http::services::ServeDir;

use crate::error::AppError;

/// A router answering every path not routed elsewhere with a file of the web client; API
/// paths that match no route still answer the API's JSON 404.
pub fn client(assets: &Path) -> Router {
    let dir = assets.join("web");
    if !dir.join("index.html").exists() {
        tracing::warn!(
            "no web client in {}: run scripts/build-assets, or pass --assets",
            dir.display()
        );
    }
    let files = ServeDir::new(dir)
        .precompressed_gzip()
        .append_index_html_on_directories(true);
    Router::new().fallback(move |request: Request| {
        let files = files.clone();
        async move { serve(files, request).await }
    })
}

async fn serve(files: ServeDir, request: Request) -> Response {
    let path = request.uri().path();
    if ["/app/", "/app-go/", "/tiles/"]
        .iter()
        .any(|p| path.starts_with(p))
    {
        return AppError::NotFound(format!("There is nothing at {path}.")).into_response();
    }
    match files.oneshot(request).await {
        Ok(response) => response.into_response(),
        Err(e) => AppError::internal("serving the web client", e).into_response(),
    }
}
