//! The router: every route of the HTTP API in one place, and the state handlers share.
//!
//! Nothing else happens here. Handlers live beside the module that owns their data and stay
//! thin: parse, check the caller's permission, call the module, answer.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Uri};
use axum::routing::{get, post};

use crate::bookmarks::BookmarkStore;
use crate::error::AppError;
use crate::grain::Mode;
use crate::layout::Layout;
use crate::regions::Regions;
use crate::sandstorm::Powerbox;
use crate::search::SearchIndex;
use crate::tiles::TileStore;
use crate::tutorial::TutorialStore;
use crate::{bookmarks, regions, same_origin, sandstorm, search, status, tiles, tutorial};

/// Request bodies are small JSON objects; anything larger is refused before it is read.
pub const BODY_LIMIT: usize = 1024 * 1024;

pub struct AppState {
    pub mode: Mode,
    /// The generated assets: `web/` (the client, served here in local mode) and `base-map/`.
    pub assets: PathBuf,
    pub layout: Layout,
    pub bookmarks: BookmarkStore,
    pub tutorial: TutorialStore,
    pub search: SearchIndex,
    pub tiles: Arc<TileStore>,
    pub regions: Regions,
    pub powerbox: Powerbox,
    /// Whether this start has installed the base map yet.
    pub base_map: crate::basemap::Progress,
}

pub type SharedState = Arc<AppState>;

pub fn router(state: SharedState) -> Router {
    let api = Router::new()
        .route("/app/bookmarks", get(bookmarks::http::list))
        .route("/app/bookmark", post(bookmarks::http::save))
        .route("/app/bookmark-delete", post(bookmarks::http::delete))
        .route("/app/export.kmz", get(bookmarks::http::export_kmz))
        .route("/app/search", get(search::http::search))
        .route("/app/map-download-status", get(status::get))
        .route(
            "/app/download-manifest",
            post(regions::http::fetch_manifest),
        )
        .route("/app/download-map", post(regions::http::download))
        .route("/app/map-delete", post(regions::http::delete))
        .route("/app/powerbox", get(sandstorm::http::descriptor))
        .route("/app/powerbox-claim", post(sandstorm::http::claim))
        .route("/app/tutorial-mode", post(tutorial::http::set_mode))
        .route("/app-go/tutorial-mode", post(tutorial::http::set_mode))
        .route("/tiles/tiles.json", get(tiles::http::tilejson))
        .route("/tiles/{archive}", get(tiles::http::archive))
        .route("/tiles/{z}/{x}/{y}", get(tiles::http::tile))
        .method_not_allowed_fallback(method_not_allowed);
    let api = match state.mode {
        // In local mode there is no nginx in front: serve the web client too.
        Mode::Local => api.fallback_service(crate::web::client(&state.assets)),
        Mode::Grain => api.fallback(not_found),
    };
    api.layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(same_origin::refuse_cross_site))
        .layer(axum::middleware::from_fn(crate::error::log_internal_errors))
        .with_state(state)
}

async fn method_not_allowed(method: Method, uri: Uri) -> AppError {
    AppError::MethodNotAllowed(format!("{} does not accept {method} requests.", uri.path()))
}

async fn not_found(uri: Uri) -> AppError {
    AppError::NotFound(format!("There is nothing at {}.", uri.path()))
}
