//! The web client, served by this program itself in local mode (in a grain, nginx serves
//! it). Files come from `<assets>/web`, pre-compressed `.gz` siblings sent to browsers that
//! accept gzip. The bundle's files carry a hash of their content in their names, so they are
//! sent as immutable; everything else (the page above all) is checked again on every load.

use std::path::Path;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
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
    let policy = cache_policy(path);
    match files.oneshot(request).await {
        Ok(response) => {
            let mut response = response.into_response();
            if response.status() == StatusCode::OK || response.status() == StatusCode::NOT_MODIFIED
            {
                response
                    .headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static(policy));
            }
            response
        }
        Err(e) => AppError::internal("serving the web client", e).into_response(),
    }
}

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

/// `Cache-Control` for a path of the web client, as nginx's config gives it in a grain:
/// `app-<HASH>.js`, `style-<HASH>.css` (esbuild's 8-character content hash) and everything
/// under `fonts-<hash>/` never change; the page and the rest are revalidated.
fn cache_policy(path: &str) -> &'static str {
    let path = path.trim_start_matches('/');
    let hashed_bundle = path
        .rsplit_once('.')
        .filter(|(_, ext)| matches!(*ext, "js" | "css"))
        .and_then(|(stem, _)| stem.rsplit_once('-'))
        .is_some_and(|(name, hash)| {
            !name.is_empty()
                && !name.contains('/')
                && hash.len() == 8
                && hash
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        });
    let glyphs = path
        .split_once('/')
        .and_then(|(dir, _)| dir.strip_prefix("fonts-"))
        .is_some_and(|hash| hash.len() == 10 && hash.bytes().all(|b| b.is_ascii_hexdigit()));
    if hashed_bundle || glyphs {
        IMMUTABLE
    } else {
        REVALIDATE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_bundle_files_and_glyphs_are_immutable_and_the_page_is_revalidated() {
        assert_eq!(cache_policy("/app-LSI6GNNJ.js"), IMMUTABLE);
        assert_eq!(cache_policy("/style-SBNHO3YQ.css"), IMMUTABLE);
        assert_eq!(
            cache_policy("/fonts-dd3d9ff76b/Noto%20Sans%20Regular/0-255.pbf"),
            IMMUTABLE
        );
        assert_eq!(cache_policy("/"), REVALIDATE);
        assert_eq!(cache_policy("/index.html"), REVALIDATE);
        assert_eq!(cache_policy("/favicon.ico"), REVALIDATE);
        assert_eq!(cache_policy("/app.js"), REVALIDATE);
        assert_eq!(cache_policy("/my-file.js"), REVALIDATE);
        assert_eq!(cache_policy("/fonts/x.pbf"), REVALIDATE);
    }
}
