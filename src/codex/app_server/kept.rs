//! Threads kept past their turn, for the MCP tools' `codex-reply`: each stays loaded in the
//! app-server, with its working directory, until it is let go. One turn at a time runs on a
//! kept thread. The MCP layer bounds how many are kept and for how long; [`MAX_KEPT`] is this
//! backend's own backstop.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use super::{
    connection::Connection,
    protocol::{ThreadUnsubscribe, ThreadUnsubscribeParams},
};
use crate::{codex::exec::WorkDir, error::ProxyError};

/// The most threads one process keeps, whatever the layer above allows.
pub const MAX_KEPT: usize = 1024;

/// A kept thread between its turns.
pub struct Kept {
    pub connection: Arc<Connection>,
    pub thread_id: String,
    pub workdir: WorkDir,
}

enum Slot {
    Idle(Kept),
    /// A turn runs on it (or its first turn is being set up); `forget` lets it go after.
    Busy {
        forget: bool,
    },
}

#[derive(Default)]
pub struct KeptThreads {
    slots: Mutex<HashMap<String, Slot>>,
}

impl KeptThreads {
    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        self.slots.lock().expect("kept threads lock")
    }

    pub fn holds(&self, key: &str) -> bool {
        self.slots().contains_key(key)
    }

    /// Holds `key` for a new thread, which [`KeptThreads::put_back`] keeps after its turn.
    pub fn reserve(&self, key: &str) -> Result<(), ProxyError> {
        let mut slots = self.slots();
        if slots.contains_key(key) {
            return Err(ProxyError::invalid(
                format!("the thread {key} already exists"),
                None,
            ));
        }
        if slots.len() >= MAX_KEPT {
            return Err(ProxyError::invalid(
                format!("codex keeps {MAX_KEPT} threads already; let one go first"),
                None,
            ));
        }
        slots.insert(key.to_owned(), Slot::Busy { forget: false });
        Ok(())
    }

    /// The thread kept under `key`, for its next turn.
    pub fn take(&self, key: &str) -> Result<Kept, ProxyError> {
        let mut slots = self.slots();
        match slots.remove(key) {
            Some(Slot::Idle(kept)) if !kept.connection.has_exited() => {
                slots.insert(key.to_owned(), Slot::Busy { forget: false });
                Ok(kept)
            }
            // The process it was loaded in has ended, and the thread with it.
            Some(Slot::Idle(_)) => Err(ProxyError::invalid(
                format!(
                    "the thread {key} ended when codex's app-server restarted; start a new one"
                ),
                None,
            )),
            Some(busy @ Slot::Busy { .. }) => {
                slots.insert(key.to_owned(), busy);
                Err(ProxyError::invalid(
                    format!("a turn is already running on the thread {key}; wait for its answer"),
                    None,
                ))
            }
            None => Err(ProxyError::invalid(
                format!("no thread {key} is kept"),
                None,
            )),
        }
    }

    /// The turn on `key` ended: the thread waits for the next, unless it was let go meanwhile.
    pub fn put_back(&self, key: &str, kept: Kept) {
        let mut slots = self.slots();
        match slots.remove(key) {
            Some(Slot::Busy { forget: false }) => {
                slots.insert(key.to_owned(), Slot::Idle(kept));
            }
            _ => unsubscribe(kept),
        }
    }

    /// A reserved or taken thread whose turn never started; the thread, if any, is let go.
    pub fn release(&self, key: &str) {
        self.slots().remove(key);
    }

    /// Lets the thread under `key` go: now when idle, after its turn when one runs.
    pub fn forget(&self, key: &str) {
        let mut slots = self.slots();
        match slots.remove(key) {
            Some(Slot::Idle(kept)) => unsubscribe(kept),
            Some(Slot::Busy { .. }) => {
                slots.insert(key.to_owned(), Slot::Busy { forget: true });
            }
            None => {}
        }
    }
}

fn unsubscribe(kept: Kept) {
    if !kept.connection.has_exited() {
        tracing::debug!(thread = %kept.thread_id, "letting a kept codex thread go");
        kept.connection
            .request_detached::<ThreadUnsubscribe>(&ThreadUnsubscribeParams {
                thread_id: kept.thread_id,
            });
    }
}

/// Hands a reserved or taken thread back if its turn never starts: a reservation is dropped, a
/// taken thread waits for its next turn again.
pub struct Claim {
    threads: Arc<KeptThreads>,
    key: String,
    taken: Option<Kept>,
    armed: bool,
}

impl Claim {
    pub fn reserved(threads: Arc<KeptThreads>, key: String) -> Self {
        Claim {
            threads,
            key,
            taken: None,
            armed: true,
        }
    }

    pub fn taken(threads: Arc<KeptThreads>, key: String, kept: Kept) -> Self {
        Claim {
            threads,
            key,
            taken: Some(kept),
            armed: true,
        }
    }

    /// The taken thread, which the turn now holds.
    pub fn take_kept(&mut self) -> Option<Kept> {
        self.taken.take()
    }

    /// The turn started: its lease keeps the thread from here on.
    pub fn into_keeping(mut self) -> Keeping {
        self.armed = false;
        Keeping {
            threads: self.threads.clone(),
            key: std::mem::take(&mut self.key),
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        match self.taken.take() {
            Some(kept) => self.threads.put_back(&self.key, kept),
            None => self.threads.release(&self.key),
        }
    }
}

/// What a kept thread's lease needs to hand it back when its turn ends.
pub struct Keeping {
    pub threads: Arc<KeptThreads>,
    pub key: String,
}
