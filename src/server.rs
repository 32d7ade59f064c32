//! `desert-atlas serve`: opens the data directory, starts the background supervisor, binds
//! the port and serves until SIGTERM/SIGINT.
//!
//! Start-up is on the path of every grain wake-up, so it does only what the first request
//! needs: open files, no scans of region data.

use std::sync::Arc;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;

use crate::app::{AppState, router};
use crate::bookmarks::BookmarkStore;
use crate::cli::ServeConfig;
use crate::layout::Layout;
use crate::regions::Regions;
use crate::search::SearchIndex;
use crate::tiles::TileStore;
use crate::tutorial::TutorialStore;

pub fn run(config: ServeConfig) -> Result<(), String> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DESERT_ATLAS_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(8)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(serve(config))
}

async fn serve(config: ServeConfig) -> Result<(), String> {
    let layout = Layout::new(&config.data_dir);
    layout
        .prepare()
        .map_err(|e| format!("the data directory is unusable: {e}"))?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let state = open_state(&config, layout).map_err(|e| e.to_string())?;
    state.tiles.refresh().await;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    eprintln!("desert-atlas: listening on http://{addr}");
    state.regions.start(state.clone());
    crate::basemap::install_in_background(state.clone(), config.assets.clone());
    // As nginx does on keep-alive connections: a response's last segment is not held back
    // waiting for the client's ACK of the previous one.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
    });
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| format!("the server stopped: {e}"))
}

fn open_state(config: &ServeConfig, layout: Layout) -> crate::error::Result<Arc<AppState>> {
    Ok(Arc::new(AppState {
        mode: config.mode,
        assets: config.assets.clone(),
        bookmarks: BookmarkStore::open(&layout.bookmarks_db())?,
        tutorial: TutorialStore::open(&layout.tutorial_json())?,
        search: SearchIndex::open(&layout.search_db())?,
        tiles: TileStore::new(&layout),
        regions: Regions::open(&layout, &config.map_data_url)?,
        layout,
    }))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}
