//! The threads the MCP `codex` tool started, for `codex-reply`: who owns each (the API key that
//! started it), which account's codex holds it, and when it was last used. Bounded in count
//! and idle time (`MCP_THREADS`, `MCP_THREAD_IDLE_SECS`); a thread past either is let go in
//! codex too. Pure bookkeeping: the caller lets the expired threads go.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

/// Who may continue a thread: the index of the API key that started it (`None` when the server
/// has no keys, and so every caller is the same one).
pub type Owner = Option<usize>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub owner: Owner,
    /// The account whose codex holds the thread.
    pub account: usize,
    last_used: Instant,
}

/// Why a thread cannot be continued, in words an agent can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Unknown,
    NotYours,
}

#[derive(Debug)]
pub struct Threads {
    entries: HashMap<String, Entry>,
    max: usize,
    idle: Duration,
}

impl Threads {
    pub fn new(max: usize, idle: Duration) -> Self {
        Threads {
            entries: HashMap::new(),
            max,
            idle,
        }
    }

    /// Records a new thread at `now`. Returns the ids that must be let go: those idle too long,
    /// and the least recently used ones while more than the limit are kept.
    pub fn add(
        &mut self,
        id: &str,
        owner: Owner,
        account: usize,
        now: Instant,
    ) -> Vec<(String, usize)> {
        let mut gone = self.expire(now);
        self.entries.insert(
            id.to_owned(),
            Entry {
                owner,
                account,
                last_used: now,
            },
        );
        while self.entries.len() > self.max {
            let Some(oldest) = self
                .entries
                .iter()
                .filter(|(key, _)| key.as_str() != id)
                .min_by_key(|(_, entry)| entry.last_used)
                .map(|(key, _)| key.clone())
            else {
                break;
            };
            let entry = self.entries.remove(&oldest).expect("just found");
            gone.push((oldest, entry.account));
        }
        gone
    }

    /// The thread `id` for `owner` to continue at `now`, marked used.
    pub fn continue_as(&mut self, id: &str, owner: Owner, now: Instant) -> Result<Entry, Refusal> {
        let entry = self.entries.get_mut(id).ok_or(Refusal::Unknown)?;
        if entry.owner != owner {
            // Said as "unknown" to the caller, so ids cannot be probed across keys.
            return Err(Refusal::NotYours);
        }
        entry.last_used = now;
        Ok(entry.clone())
    }

    /// Marks `id` used at `now` (its turn ended): its idle time starts again.
    pub fn touch(&mut self, id: &str, now: Instant) {
        if let Some(entry) = self.entries.get_mut(id) {
            entry.last_used = now;
        }
    }

    /// Forgets `id` (its codex thread ended); returns its account if it was kept.
    pub fn remove(&mut self, id: &str) -> Option<usize> {
        self.entries.remove(id).map(|entry| entry.account)
    }

    /// The threads idle past the limit at `now`, forgotten here and returned to be let go.
    pub fn expire(&mut self, now: Instant) -> Vec<(String, usize)> {
        let idle = self.idle;
        let expired: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, entry)| now.duration_since(entry.last_used) >= idle)
            .map(|(id, _)| id.clone())
            .collect();
        expired
            .into_iter()
            .filter_map(|id| self.remove(&id).map(|account| (id, account)))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_belongs_to_the_key_that_started_it() {
        let now = Instant::now();
        let mut threads = Threads::new(8, Duration::from_secs(60));
        assert!(threads.add("t1", Some(0), 1, now).is_empty());
        assert_eq!(threads.continue_as("t1", Some(0), now).unwrap().account, 1);
        assert_eq!(
            threads.continue_as("t1", Some(1), now),
            Err(Refusal::NotYours)
        );
        assert_eq!(threads.continue_as("t1", None, now), Err(Refusal::NotYours));
        assert_eq!(
            threads.continue_as("t2", Some(0), now),
            Err(Refusal::Unknown)
        );
    }

    #[test]
    fn an_idle_thread_expires_and_use_keeps_one_alive() {
        let start = Instant::now();
        let at = |secs| start + Duration::from_secs(secs);
        let mut threads = Threads::new(8, Duration::from_secs(60));
        threads.add("old", None, 0, at(0));
        threads.add("used", None, 1, at(0));
        threads.touch("used", at(50));
        assert_eq!(threads.expire(at(70)), [("old".to_owned(), 0)]);
        assert_eq!(
            threads.continue_as("old", None, at(70)),
            Err(Refusal::Unknown)
        );
        assert!(threads.continue_as("used", None, at(70)).is_ok());
        assert_eq!(threads.expire(at(129)), []);
        assert_eq!(threads.expire(at(130)), [("used".to_owned(), 1)]);
        assert!(threads.is_empty());
    }

    #[test]
    fn past_the_limit_the_least_recently_used_thread_goes() {
        let start = Instant::now();
        let at = |secs| start + Duration::from_secs(secs);
        let mut threads = Threads::new(2, Duration::from_secs(600));
        threads.add("a", None, 0, at(0));
        threads.add("b", None, 0, at(1));
        threads.touch("a", at(2));
        assert_eq!(threads.add("c", None, 1, at(3)), [("b".to_owned(), 0)]);
        assert_eq!(threads.len(), 2);
        assert!(threads.continue_as("a", None, at(3)).is_ok());
        assert!(threads.continue_as("c", None, at(3)).is_ok());
    }
}
