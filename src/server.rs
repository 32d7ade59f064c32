//! `desert-atlas serve`: opens the data directory, starts the background supervisor, binds
//! the port and serves until SIGTERM/SIGINT.
//!
//! Start-up is on the path of every grain wake-up, so it does only what the first request
//! needs: open files, no scans of region data.
//!
//! Requests are served the way nginx's workers serve them: one single-threaded event loop per
//! core, each accepting on the one listening socket (a duplicated descriptor, so a port
//! already in use is still refused), a connection staying on the thread that accepted it.
//! A shared work-stealing pool served more requests per second but made the slowest
//! requests wait longer, handing connections from thread to thread. Background work
//! (downloads, the base map) runs on the main thread's own event loop.

use std::sync::Arc;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

use tower::util::MapRequestLayer;

use crate::app::{AppState, router};
use crate::bookmarks::BookmarkStore;
use crate::cli::ServeConfig;
use crate::layout::Layout;
use crate::quiet::{self, Activity};
use crate::regions::Regions;
use crate::search::SearchIndex;
use crate::tiles::TileStore;
use crate::tutorial::TutorialStore;

/// How long an idle blocking thread (SQLite, file work) waits for more work before it exits
/// and hands its stack back. Starting one costs tens of microseconds; an idle grain should
/// not keep a stack per thread that once served a burst (tokio's default is 10 s).
const BLOCKING_THREAD_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_millis(500);

pub fn run(config: ServeConfig) -> Result<(), String> {
    crate::memory::use_one_heap();
    // `DESERT_ATLAS_LOG` takes `level` or `target=level,...` (e.g. `desert_atlas=debug`).
    // A grain's log is a file, so no colour codes.
    let filter = std::env::var("DESERT_ATLAS_LOG")
        .ok()
        .and_then(|v| v.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(filter)
        .init();
    // Background work only (the supervisor, downloads, the base map): its heavy parts run on
    // the blocking pool, so this thread just drives them.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(8)
        .thread_keep_alive(BLOCKING_THREAD_KEEP_ALIVE)
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
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let bind_error = |e: std::io::Error| format!("cannot listen on {}: {e}", config.listen);
    let first = TcpListener::bind(config.listen).await.map_err(bind_error)?;
    let addr = first
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    let first = first.into_std().map_err(bind_error)?;
    let mut listeners = Vec::with_capacity(threads);
    for _ in 1..threads {
        listeners.push(first.try_clone().map_err(bind_error)?);
    }
    listeners.push(first);
    let state = open_state(&config, layout).map_err(|e| e.to_string())?;
    state.tiles.refresh().await;
    eprintln!("desert-atlas: listening on http://{addr}");
    state.regions.start(state.clone());
    let activity = Arc::new(Activity::default());
    tokio::spawn(quiet::release_when_quiet(
        activity.clone(),
        state.search.clone(),
    ));
    crate::basemap::install_in_background(state.clone(), config.assets.clone());

    let app = router(state).layer(MapRequestLayer::new(move |request| {
        activity.touch();
        request
    }));
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel(listeners.len());
    for (i, listener) in listeners.into_iter().enumerate() {
        let (app, done) = (app.clone(), done_tx.clone());
        std::thread::Builder::new()
            .name(format!("http-{i}"))
            .spawn(move || {
                let _ = done.blocking_send(serve_on(listener, app));
            })
            .map_err(|e| format!("cannot start a serving thread: {e}"))?;
    }
    drop(done_tx);
    // Every loop stops on the same signal; a loop that fails stops the process.
    while let Some(result) = done_rx.recv().await {
        result?;
    }
    Ok(())
}

/// Serves `app` on `listener` with a single-threaded event loop on this thread, until
/// SIGTERM/SIGINT.
fn serve_on(listener: std::net::TcpListener, app: axum::Router) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(4)
        .thread_keep_alive(BLOCKING_THREAD_KEEP_ALIVE)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a serving event loop: {e}"))?;
    runtime.block_on(async move {
        let listener = TcpListener::from_std(listener)
            .map_err(|e| format!("cannot serve on the listening socket: {e}"))?;
        // As nginx does on keep-alive connections: a response's last segment is not held
        // back waiting for the client's ACK of the previous one.
        let listener = listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!("cannot set TCP_NODELAY: {e}");
            }
        });
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await
            .map_err(|e| format!("the server stopped: {e}"))
    })
}

fn open_state(config: &ServeConfig, layout: Layout) -> crate::error::Result<Arc<AppState>> {
    Ok(Arc::new(AppState {
        mode: config.mode,
        assets: config.assets.clone(),
        bookmarks: BookmarkStore::open(&layout.bookmarks_db())?,
        tutorial: TutorialStore::open(&layout.tutorial_json())?,
        search: SearchIndex::open_showing_installed(
            &layout.search_db(),
            layout.search_imported_dir(),
        )?,
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
