//! The one task that runs the queue: it starts what may start (a few downloads at once, a
//! delete only when no download of that region runs, and stops such a download for it),
//! installs each region alongside its download, and at start-up removes every trace of an
//! install a crash cut off.
//!
//! Every task it starts is tracked and works under a child of the shutdown token; at
//! shutdown the tokens stop them at their next wait, a download's parts stay on disk and its
//! job stays queued, so the next start resumes it.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use super::download::{self, Stop};
use super::install;
use super::queue::Action;
use super::transfer::RateFloor;
use super::{PARALLEL_REGIONS, Running, Shared, handoff};
use crate::error::Result;
use crate::task::blocking;
use crate::tile_id::{BASE_MAP, TileId};

pub(super) fn start(shared: Arc<Shared>) {
    let runtime = shared.runtime.clone();
    shared.tasks.clone().spawn_on(run(shared), &runtime);
}

async fn run(shared: Arc<Shared>) {
    if let Err(e) = clean_up_interrupted(&shared).await {
        tracing::error!("cleaning up interrupted installs: {e}");
    }
    loop {
        // Created before looking at the queue, so a wake-up in between is not lost.
        let notified = shared.wake.notified();
        if shared.shutdown.is_cancelled() {
            break;
        }
        if let Err(e) = dispatch(&shared).await {
            tracing::error!("reading the download queue: {e}");
        }
        tokio::select! {
            () = notified => {}
            () = shared.shutdown.cancelled() => break,
        }
    }
}

/// Starts whatever queued work may start now.
async fn dispatch(shared: &Arc<Shared>) -> Result<()> {
    let queue = shared.queue.clone();
    let jobs = blocking(move || queue.jobs()).await?;
    for job in jobs {
        if job.failed.is_some() || shared.shutdown.is_cancelled() {
            continue;
        }
        let mut running = shared.running();
        if let Some(under_way) = running.get(&job.tile_id) {
            if under_way.action == Action::Download && job.action == Action::Delete {
                under_way.stop.cancel();
            }
            continue;
        }
        let downloads = running
            .values()
            .filter(|r| r.action == Action::Download)
            .count();
        if job.action == Action::Download && downloads >= PARALLEL_REGIONS {
            continue;
        }
        if job.action == Action::Download {
            // Shown as in progress from the moment it runs.
            let entry = shared.manifest().and_then(|m| m.get(&job.tile_id).cloned());
            let (parts, bytes) = entry.map_or((0, None), |e| (e.parts.len(), e.total_bytes()));
            shared.tracker.start(&job.tile_id, parts, bytes);
        }
        let stop = shared.shutdown.child_token();
        running.insert(
            job.tile_id.clone(),
            Running {
                action: job.action,
                stop: stop.clone(),
            },
        );
        drop(running);
        let task_shared = shared.clone();
        shared.tasks.spawn_on(
            async move {
                let (shared, id) = (task_shared, job.tile_id);
                match job.action {
                    Action::Download => run_download(&shared, &id, &stop).await,
                    Action::Delete => run_delete(&shared, &id).await,
                }
                shared.running().remove(&id);
                shared.wake.notify_one();
            },
            &shared.runtime,
        );
    }
    Ok(())
}

async fn run_download(
    shared: &Arc<Shared>,
    id: &TileId,
    stop: &tokio_util::sync::CancellationToken,
) {
    let outcome = download_and_install(shared, id, stop).await;
    let (queue, job_id) = (shared.queue.clone(), id.clone());
    let recorded = match outcome {
        Ok(()) => {
            tracing::info!("region {id} installed");
            shared.tracker.remove(id);
            blocking(move || queue.finish(&job_id, Action::Download)).await
        }
        Err(Stop::Cancelled) => {
            if shared.shutdown.is_cancelled() {
                tracing::info!(
                    "region {id}: download paused by shutdown; it resumes at the next start"
                );
            } else {
                tracing::info!("region {id}: download stopped for a deletion");
            }
            shared.tracker.remove(id);
            Ok(())
        }
        Err(Stop::NoRoom(message) | Stop::Refused(message)) => {
            tracing::error!("region {id} does not fit: {message}");
            // Kept, the parts would hold the space the grain needs for anything else.
            // The download has returned, so none of its writes is still running. The status
            // says "failed" only once they are gone.
            let dir = shared.layout.big_tmp_dir().join(id.as_str());
            let shown = message.clone();
            let recorded = blocking(move || {
                if let Err(e) = std::fs::remove_dir_all(&dir)
                    && e.kind() != std::io::ErrorKind::NotFound
                {
                    tracing::error!("region {job_id}: cannot remove its partial download: {e}");
                }
                queue.forget_parts(&job_id)?;
                queue.fail(&job_id, &message, None)
            })
            .await;
            shared.tracker.fail(id, &shown);
            recorded
        }
        Err(Stop::Access { key, message }) => {
            tracing::warn!("region {id}: {message}");
            shared.tracker.fail_with_key(id, &message, key);
            {
                let mut fetching = shared.region_list.lock().unwrap_or_else(|e| e.into_inner());
                fetching.status = "error";
                fetching.error = Some(message.clone());
                fetching.error_key = Some(key);
            }
            blocking(move || queue.fail(&job_id, &message, Some(key))).await
        }
        Err(Stop::Failed(message)) => {
            tracing::error!("region {id} failed: {message}");
            shared.tracker.fail(id, &message);
            blocking(move || queue.fail(&job_id, &message, None)).await
        }
    };
    if let Err(e) = recorded {
        tracing::error!("region {id}: {e}");
    }
}

async fn download_and_install(
    shared: &Arc<Shared>,
    id: &TileId,
    stop: &tokio_util::sync::CancellationToken,
) -> std::result::Result<(), Stop> {
    let layout = shared.layout.clone();
    let installed_id = id.clone();
    if blocking(move || Ok(layout.installed_regions().contains(&installed_id))).await? {
        return Ok(());
    }
    let manifest = shared
        .manifest()
        .ok_or_else(|| Stop::Failed("the region list is not available; fetch it again".into()))?;
    let entry = manifest
        .get(id)
        .ok_or_else(|| Stop::Failed("this region is no longer in the region list".into()))?;
    let dir = shared.layout.big_tmp_dir().join(id.as_str());
    let known_bytes = entry.total_bytes();
    if let Some(bytes) = known_bytes {
        // The parts, the unpacked tiles and the search rows: about three times the parts.
        super::disk::ensure_room(
            shared.layout.root(),
            bytes.saturating_mul(super::disk::INSTALL_FACTOR),
        )
        .map_err(Stop::NoRoom)?;
    }
    // The install unpacks each part as soon as it is verified, alongside the download.
    let (sender, receiver) = handoff::channel(entry.parts.len());
    let parts: Vec<_> = (0..entry.parts.len())
        .map(|i| download::part_path(&dir, i))
        .collect();
    let mut installing = {
        let (shared, id, dir, stop) = (shared.clone(), id.clone(), dir.clone(), stop.clone());
        tokio::task::spawn_blocking(move || {
            install::install(
                &shared.layout,
                &shared.search,
                &id,
                install::Parts {
                    paths: parts,
                    wait: &|i| receiver.wait(i),
                },
                &dir,
                &stop,
                &mut |step| match step {
                    install::Step::SearchRows(n) => shared.tracker.search_rows(&id, n),
                    install::Step::SearchImported(n) => shared.tracker.search_imported(&id, n),
                },
            )
        })
    };
    // Stops the download when the install failed: the rest is not worth fetching.
    let download_stop = stop.child_token();
    let job = download::Job {
        fetcher: &shared.fetcher,
        base_url: &shared.base_url,
        id,
        entry,
        dir: &dir,
        queue: &shared.queue,
        tracker: &shared.tracker,
        connections: &shared.connections,
        stop: &download_stop,
        disk_root: shared.layout.root(),
        floor: RateFloor::from_env(),
        room_checked: AtomicBool::new(false),
    };
    let downloading = download::download(&job, sender);
    tokio::pin!(downloading);
    let (downloaded, installed, install_failed_first) = tokio::select! {
        biased;
        downloaded = &mut downloading => {
            if downloaded.is_ok() {
                shared.tracker.installing(id);
            }
            (downloaded, (&mut installing).await, false)
        }
        installed = &mut installing => {
            // The install can only succeed once every part is in; if it failed, the parts
            // still on the way (maybe held by a slow server) are not worth waiting for.
            let failed = !matches!(installed, Ok(Ok(_)));
            if failed {
                download_stop.cancel();
            }
            (downloading.await, installed, failed)
        }
    };
    let installed = installed
        .map_err(|e| Stop::Failed(format!("the install stopped unexpectedly: {e}")))
        .and_then(|r| r);
    // An install that got as far as its marker counts, whatever came meanwhile.
    if installed.is_err() && stop.is_cancelled() {
        return Err(Stop::Cancelled);
    }
    // A failed install stops the download; otherwise the download's own failure is why.
    if !install_failed_first {
        downloaded?;
    }
    let report = installed?;
    if report.bad_rows > 0 {
        tracing::warn!(
            "region {id}: {} malformed search rows skipped",
            report.bad_rows
        );
    }
    shared.tiles.refresh().await;
    let (queue, id, dir) = (shared.queue.clone(), id.clone(), dir.clone());
    blocking(move || {
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            tracing::warn!("region {id}: cannot remove its download folder: {e}");
        }
        queue.forget_parts(&id)
    })
    .await?;
    Ok(())
}

/// Removes a region. Its marker goes first: from that moment it is not installed, so
/// neither `done` nor search shows it; then its tiles leave the map, then its rows and any
/// download leftovers go. A crash in between leaves what the next start cleans up.
async fn run_delete(shared: &Arc<Shared>, id: &TileId) {
    let result = delete_files(shared, id).await;
    shared.tracker.remove(id);
    let (queue, job_id) = (shared.queue.clone(), id.clone());
    let recorded = match result {
        Ok(()) => {
            tracing::info!("region {id} deleted");
            let reserve_shared = shared.clone();
            blocking(move || {
                reserve_shared.reserve.refill();
                Ok(())
            })
            .await
            .ok();
            blocking(move || queue.finish(&job_id, Action::Delete)).await
        }
        Err(e) => {
            tracing::error!("region {id}: deleting failed: {e}");
            blocking(move || queue.fail(&job_id, &format!("deleting failed: {e}"), None)).await
        }
    };
    if let Err(e) = recorded {
        tracing::error!("region {id}: {e}");
    }
}

async fn delete_files(shared: &Arc<Shared>, id: &TileId) -> Result<()> {
    let marker = shared.layout.installed_marker(id);
    blocking(move || Ok(remove_if_present(&marker)?)).await?;
    shared.tiles.refresh().await;
    let (shared, id) = (shared.clone(), id.clone());
    blocking(move || {
        remove_if_present(&shared.layout.tiles_file(&id))?;
        shared.search.delete_region(&id)?;
        let dir = shared.layout.big_tmp_dir().join(id.as_str());
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        shared.queue.forget_parts(&id)
    })
    .await
}

/// An install cut off by a crash (this version's or the previous one's) leaves, without its
/// marker, a tiles file, search rows and files in big_tmp: all removed here, except the parts
/// a queued download will resume from. The base map installs itself (see `basemap`).
async fn clean_up_interrupted(shared: &Arc<Shared>) -> Result<()> {
    let shared = shared.clone();
    blocking(move || {
        let layout = &shared.layout;
        let queued: Vec<TileId> = shared
            .queue
            .jobs()?
            .into_iter()
            .filter(|j| j.action == Action::Download)
            .map(|j| j.tile_id)
            .collect();
        let installed = layout.installed_regions();
        let is_leftover = |id: &TileId| !installed.contains(id) && id.as_str() != BASE_MAP;
        for entry in std::fs::read_dir(layout.tiles_dir())?.flatten() {
            let name = entry.file_name();
            let id = name
                .to_str()
                .and_then(|n| n.strip_suffix(".pmtiles"))
                .and_then(TileId::parse);
            if id.as_ref().is_some_and(is_leftover) {
                tracing::info!("removing the tiles of an interrupted install: {name:?}");
                remove_if_present(&entry.path())?;
            }
        }
        for id in shared.search.imported_regions()? {
            if is_leftover(&id) {
                tracing::info!("region {id}: removing the search rows of an interrupted install");
                shared.search.delete_region(&id)?;
            }
        }
        // A marker without its tiles file is no installed region either.
        for entry in std::fs::read_dir(layout.search_imported_dir())?.flatten() {
            if let Some(id) = entry.file_name().to_str().and_then(TileId::parse)
                && is_leftover(&id)
            {
                remove_if_present(&entry.path())?;
            }
        }
        for entry in std::fs::read_dir(layout.big_tmp_dir())?.flatten() {
            let keep = entry
                .file_name()
                .to_str()
                .and_then(TileId::parse)
                .is_some_and(|id| queued.contains(&id));
            if !keep {
                let path = entry.path();
                let removed = if path.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
                if let Err(e) = removed {
                    tracing::warn!("cannot remove {}: {e}", path.display());
                }
            }
        }
        Ok(())
    })
    .await
}

fn remove_if_present(path: &std::path::Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
