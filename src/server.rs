//! `desert-atlas serve`: opens the data directory, starts the background supervisor, binds
//! the port and serves until SIGTERM/SIGINT.
//!
//! Shutdown is one cancellation token, cancelled by the process's one signal listener, which
//! is installed before the port is bound: a signal at any moment after that is seen. The
//! serving loops stop accepting on it and finish the requests in flight; the downloads stop
//! at their next wait (their queue and parts kept for the next start), and the process exits.
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

use std::time::Duration;

use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

use tower::util::MapRequestLayer;

use crate::app::{AppState, router};
use crate::bookmarks::BookmarkStore;
use crate::cli::ServeConfig;
use crate::grain::Mode;
use crate::layout::Layout;
use crate::quiet::{self, Activity};
use crate::regions::{Dependencies, Regions};
use crate::sandstorm::Powerbox;
use crate::search::SearchIndex;
use crate::tiles::TileStore;
use crate::tutorial::TutorialStore;

/// How long an idle blocking thread (SQLite, file work) waits for more work before it exits
/// and hands its stack back. Starting one costs tens of microseconds; an idle grain should
/// not keep a stack per thread that once served a burst (tokio's default is 10 s).
const BLOCKING_THREAD_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_millis(500);
/// How long requests still open at shutdown may take to finish before they are cut.
const REQUEST_GRACE: Duration = Duration::from_secs(5);
/// How long the downloads may take to stop at shutdown (they stop at their next wait, so
/// this is only reached if a file operation hangs).
const BACKGROUND_GRACE: Duration = Duration::from_secs(5);
/// How long blocking work still running when the process ends is waited for. Every write is
/// ordered so that a cut leaves the old state or the new one.
const BLOCKING_GRACE: Duration = Duration::from_secs(1);

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
    let served = runtime.block_on(serve(config));
    runtime.shutdown_timeout(BLOCKING_GRACE);
    served
}

async fn serve(config: ServeConfig) -> Result<(), String> {
    let shutdown = CancellationToken::new();
    listen_for_shutdown(shutdown.clone())?;
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
    // nginx once the port is bound, so its first request finds the server listening.
    let nginx = match &config.start_nginx {
        Some(conf) => Some(crate::nginx::Nginx::start(
            &config.nginx,
            conf,
            &config.data_dir,
        )?),
        None => None,
    };
    let state = open_state(&config, layout, &shutdown).map_err(|e| e.to_string())?;
    state.tiles.refresh().await;
    announce_address(addr);
    state.regions.start();
    let activity = Arc::new(Activity::default());
    let tiles = state.clone();
    tokio::spawn(quiet::release_when_quiet(
        activity.clone(),
        state.search.clone(),
        move || tiles.tiles.release_memory(),
    ));
    crate::basemap::install_in_background(state.clone(), config.assets.clone());

    let regions = state.regions.clone();
    let app = router(state).layer(MapRequestLayer::new(move |request| {
        activity.touch();
        request
    }));
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel(listeners.len() + 1);
    if let Some(nginx) = nginx {
        let done = done_tx.clone();
        let stop = shutdown.clone().cancelled_owned();
        tokio::spawn(async move {
            let _ = done.send(nginx.supervise(stop).await).await;
        });
    }
    let slots = crate::listener::ConnectionSlots::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        let (app, done, stop) = (app.clone(), done_tx.clone(), shutdown.clone());
        let slots = slots.clone();
        let started = std::thread::Builder::new()
            .name(format!("http-{i}"))
            .spawn(move || {
                let _ = done.blocking_send(serve_on(listener, app, slots, stop));
            });
        if let Err(e) = started {
            shutdown.cancel();
            return Err(format!("cannot start a serving thread: {e}"));
        }
    }
    drop(done_tx);
    // Every loop (and nginx) stops on the same token; one that fails stops the process.
    let mut served = Ok(());
    while let Some(result) = done_rx.recv().await {
        if result.is_err() {
            shutdown.cancel();
            served = served.and(result);
        }
    }
    shutdown.cancel();
    if tokio::time::timeout(BACKGROUND_GRACE, regions.stopped())
        .await
        .is_err()
    {
        tracing::warn!("the downloads did not stop within {BACKGROUND_GRACE:?}; exiting anyway");
    }
    served
}

/// The line that tells whoever started the server where it listens, written with one
/// `write(2)`: `eprintln!` writes each formatted piece on its own (the address alone took
/// eleven writes), so a reader of the pipe could take `http://127.0` for the whole address.
/// A write this short to a pipe is atomic.
fn announce_address(addr: std::net::SocketAddr) {
    use std::io::Write;
    let line = format!("desert-atlas: listening on http://{addr}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// The process's one signal listener: SIGTERM (Sandstorm stopping the grain) or SIGINT
/// cancels `shutdown`. Installed before the first listen; a signal from then on is kept
/// until the listening task reads it.
fn listen_for_shutdown(shutdown: CancellationToken) -> Result<(), String> {
    use tokio::signal::unix::{SignalKind, signal};
    let listen = |kind| signal(kind).map_err(|e| format!("cannot listen for signals: {e}"));
    let mut terminate = listen(SignalKind::terminate())?;
    let mut interrupt = listen(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
            () = shutdown.cancelled() => return,
        }
        tracing::info!("shutting down");
        shutdown.cancel();
    });
    Ok(())
}

/// Serves `app` on `listener` with a single-threaded event loop on this thread, until
/// `shutdown` is cancelled and the requests in flight are answered.
fn serve_on(
    listener: std::net::TcpListener,
    app: axum::Router,
    slots: crate::listener::ConnectionSlots,
    shutdown: CancellationToken,
) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(4)
        .thread_keep_alive(BLOCKING_THREAD_KEEP_ALIVE)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a serving event loop: {e}"))?;
    let served = runtime.block_on(async move {
        let listener = TcpListener::from_std(listener)
            .map_err(|e| format!("cannot serve on the listening socket: {e}"))?;
        let serving =
            crate::listener::serve(listener, app, slots, shutdown.clone().cancelled_owned());
        // A client that never finishes its request must not hold the process.
        let grace_over = async {
            shutdown.cancelled().await;
            tokio::time::sleep(REQUEST_GRACE).await;
        };
        tokio::select! {
            () = serving => Ok(()),
            () = grace_over => {
                tracing::warn!("requests still open {REQUEST_GRACE:?} after shutdown were cut");
                Ok(())
            }
        }
    });
    runtime.shutdown_timeout(BLOCKING_GRACE);
    served
}

fn open_state(
    config: &ServeConfig,
    layout: Layout,
    shutdown: &CancellationToken,
) -> crate::error::Result<Arc<AppState>> {
    let grain = config.mode == Mode::Grain;
    let powerbox = Powerbox::open(&layout, &config.map_data_url, grain);
    let search =
        SearchIndex::open_showing_installed(&layout.search_db(), layout.search_imported_dir())?;
    let tiles = Arc::new(TileStore::new(&layout));
    let regions = Regions::open(
        &layout,
        &config.map_data_url,
        Dependencies {
            fetcher: powerbox.fetcher(),
            search: search.clone(),
            tiles: tiles.clone(),
            runtime: Handle::current(),
            shutdown: shutdown.clone(),
        },
    )?;
    Ok(Arc::new(AppState {
        mode: config.mode,
        assets: config.assets.clone(),
        bookmarks: BookmarkStore::open(&layout.bookmarks_db())?,
        tutorial: TutorialStore::open(&layout.tutorial_json())?,
        search,
        tiles,
        regions,
        powerbox,
        layout,
        base_map: Default::default(),
    }))
}
