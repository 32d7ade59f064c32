//! At most a few searches at once, so that a flood of them leaves the cores to bookmarks and
//! tiles. Sixteen clients looping one search used to make a bookmark write wait 28 s: every
//! search ran at once on the blocking pool and took both cores. Now a search waits briefly for
//! one of [`Admission::slots`] and is otherwise answered 503 with `Retry-After`.

use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::error::{AppError, Result};

/// How long a search waits for a slot before it is turned away: many times a typical search
/// (a few milliseconds), a moment for a person typing.
pub const QUEUE_WAIT: Duration = Duration::from_millis(200);
/// What `Retry-After` tells a turned-away client, in seconds.
pub const RETRY_AFTER_SECONDS: u64 = 1;

pub struct Admission {
    slots: Semaphore,
    count: usize,
}

impl Admission {
    /// One search per core but one, and at least one: the core left over serves everything else.
    pub fn for_this_machine() -> Admission {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Admission::with_slots(cores.saturating_sub(1).max(1))
    }

    pub fn with_slots(count: usize) -> Admission {
        Admission {
            slots: Semaphore::new(count),
            count,
        }
    }

    pub fn slots(&self) -> usize {
        self.count
    }

    /// A slot, held until the permit drops; `AppError::Busy` after [`QUEUE_WAIT`].
    pub async fn enter(&self) -> Result<SemaphorePermit<'_>> {
        match tokio::time::timeout(QUEUE_WAIT, self.slots.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(AppError::Busy {
                message: "The server is busy with other searches; try again in a moment.".into(),
                retry_after: RETRY_AFTER_SECONDS,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_search_waits_for_a_slot_then_is_turned_away() {
        let admission = Admission::with_slots(1);
        let held = admission.enter().await.unwrap();
        let turned_away = admission.enter().await.err().unwrap();
        assert_eq!(
            turned_away.status(),
            axum::http::StatusCode::SERVICE_UNAVAILABLE
        );
        drop(held);
        assert!(admission.enter().await.is_ok());
        assert!(Admission::for_this_machine().slots() >= 1);
    }
}
