//! Handing verified parts from the download to the install while the download goes on.
//!
//! A region's parts are one gzip'd tar cut in pieces, so the install can unpack part `i` as
//! soon as it is downloaded and verified, instead of waiting for the last one: on a link of a
//! few MB/s that hides the unpacking of the tiles behind the download. The download owns the
//! sending side; however it ends (done, failed, cancelled, or its task dropped at shutdown),
//! the sender is dropped with it, and an install still waiting for a part gets an error at
//! once instead of waiting forever.

use std::io;
use std::sync::Mutex;

use tokio::sync::mpsc;

/// The download's side: announces each verified part.
#[derive(Clone)]
pub struct PartSender(mpsc::UnboundedSender<usize>);

/// The install's side, read from a blocking thread.
pub struct PartReceiver {
    state: Mutex<Received>,
}

struct Received {
    parts: mpsc::UnboundedReceiver<usize>,
    ready: Vec<bool>,
}

pub fn channel(parts: usize) -> (PartSender, PartReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    let receiver = PartReceiver {
        state: Mutex::new(Received {
            parts: rx,
            ready: vec![false; parts],
        }),
    };
    (PartSender(tx), receiver)
}

impl PartSender {
    /// Part `index` is on disk and verified.
    pub fn ready(&self, index: usize) {
        // The install may have ended already (it failed); nothing waits then.
        let _ = self.0.send(index);
    }
}

impl PartReceiver {
    /// Blocks until part `index` is ready; an error once every sender is gone without it.
    /// Call it from a blocking thread, never from an async task.
    pub fn wait(&self, index: usize) -> io::Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if state.ready.get(index).copied().unwrap_or(false) {
                return Ok(());
            }
            match state.parts.blocking_recv() {
                Some(i) => {
                    if let Some(slot) = state.ready.get_mut(i) {
                        *slot = true;
                    }
                }
                None => return Err(io::Error::other("the download stopped")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiter_gets_its_part_or_an_error_once_the_sender_is_dropped() {
        let (tx, rx) = channel(3);
        let waiter = std::thread::spawn(move || {
            (
                rx.wait(1).is_ok(),
                rx.wait(0).is_ok(),
                rx.wait(2).is_ok(),
                rx.wait(1).is_ok(),
            )
        });
        tx.ready(0);
        tx.ready(1);
        drop(tx);
        assert_eq!(waiter.join().unwrap(), (true, true, false, true));
    }
}
