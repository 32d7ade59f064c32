//! Handing verified parts from the download to the install while the download goes on.
//!
//! A region's parts are one gzip'd tar cut in pieces, so the install can unpack part `i` as
//! soon as it is downloaded and verified, instead of waiting for the last one: on a link of a
//! few MB/s that hides the unpacking of the tiles behind the download. The install thread
//! blocks here for the next part it needs; a download that stops closes the gate, which
//! ends the wait with an error.

use std::io;
use std::sync::{Condvar, Mutex};

#[derive(Default)]
struct State {
    ready: Vec<bool>,
    closed: bool,
}

pub struct PartGate {
    state: Mutex<State>,
    changed: Condvar,
}

impl PartGate {
    pub fn new(parts: usize) -> PartGate {
        PartGate {
            state: Mutex::new(State {
                ready: vec![false; parts],
                closed: false,
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Part `index` is on disk and verified.
    pub fn ready(&self, index: usize) {
        if let Some(slot) = self.lock().ready.get_mut(index) {
            *slot = true;
        }
        self.changed.notify_all();
    }

    /// The download stopped: whoever waits for a part that is not there gives up.
    pub fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Blocks until part `index` is ready; an error once the gate is closed without it.
    pub fn wait(&self, index: usize) -> io::Result<()> {
        let mut state = self.lock();
        loop {
            if state.ready.get(index).copied().unwrap_or(false) {
                return Ok(());
            }
            if state.closed {
                return Err(io::Error::other("the download stopped"));
            }
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_waiter_gets_its_part_or_an_error_when_the_gate_closes() {
        let gate = Arc::new(PartGate::new(2));
        let waiter = {
            let gate = gate.clone();
            std::thread::spawn(move || (gate.wait(0).is_ok(), gate.wait(1).is_ok()))
        };
        gate.ready(0);
        gate.close();
        assert_eq!(waiter.join().unwrap(), (true, false));
        assert!(gate.wait(0).is_ok(), "a ready part stays ready");
    }
}
