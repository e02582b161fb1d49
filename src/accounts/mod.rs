//! The codex logins requests are spread over (`CODEX_ACCOUNTS`): each account is a backend of
//! its own with its own standing, and the pool decides which one takes a turn. One account
//! (`CODEX_ACCOUNTS` unset) is the pool of one every server has.
//!
//! A key bound to an account (`API_KEYS` `key@account`) uses that account only; other requests
//! go to the account their conversation started on while it is usable, else to the usable one
//! with the fewest running turns. A usage or rate limit cools an account until its reset, a
//! login codex reports as broken takes it out, and a turn refused either way before anything
//! reached the client is tried once more on another account.

pub mod affinity;
pub mod standing;

use std::{
    path::PathBuf,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use crate::{
    codex::{plan_limits::PlanLimits, SharedBackend},
    error::{FailureKind, ProxyError},
};
use affinity::Affinity;
pub use standing::{Standing, State};

/// One codex login and the backend that runs turns with it.
pub struct Account {
    pub name: String,
    pub backend: SharedBackend,
    /// Its codex home, for the login file a fix rewrites.
    home: Option<PathBuf>,
    standing: Mutex<Standing>,
    running: AtomicUsize,
}

impl Account {
    pub fn new(name: impl Into<String>, home: Option<PathBuf>, backend: SharedBackend) -> Self {
        Account {
            name: name.into(),
            backend,
            home,
            standing: Mutex::new(Standing::default()),
            running: AtomicUsize::new(0),
        }
    }

    /// When `auth.json` in its home was last written: `codex login` rewrites it.
    fn login_written(&self) -> Option<SystemTime> {
        let home = self.home.as_ref()?;
        std::fs::metadata(home.join("auth.json"))
            .and_then(|m| m.modified())
            .ok()
    }

    fn standing(&self) -> std::sync::MutexGuard<'_, Standing> {
        self.standing.lock().expect("standing lock")
    }

    /// Until when the account cannot take a turn at `now`, as far as it is known: its
    /// cooldown, or the reset of a plan codex reports as spent. `None`: usable (or logged out,
    /// which has no time).
    fn held_until(&self, now: SystemTime) -> Option<SystemTime> {
        let cooling = self.standing().cooling_until().filter(|until| *until > now);
        let spent = self
            .backend
            .plan_limits()
            .and_then(|limits| limits.seconds_until_usable(unix(now)))
            .map(|secs| now + Duration::from_secs(secs));
        cooling.max(spent)
    }

    fn usable(&self, now: SystemTime) -> bool {
        self.held_until(now).is_none() && self.standing().usable(now, || self.login_written())
    }

    pub fn running(&self) -> usize {
        self.running.load(Ordering::Relaxed)
    }
}

/// What one request asks of the pool.
#[derive(Debug, Clone, Default)]
pub struct Route {
    /// The account the request's key is bound to.
    pub bound: Option<usize>,
    /// The conversation, for staying on its account ([`affinity::conversation_key`]).
    pub conversation: Option<u64>,
}

/// An account taking one turn; counted as running until dropped.
pub struct Lease {
    pub index: usize,
    pub account: Arc<Account>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.account.running.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What became of a turn, for the account's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The account is fine (the turn succeeded, or failed for a reason of its own).
    Kept,
    /// The account was cooled or taken out: another account may take the turn.
    Moved,
}

/// How `/health` shows an account.
#[derive(Debug, Clone)]
pub struct AccountView {
    pub name: String,
    pub state: State,
    pub running: usize,
    /// Unix seconds.
    pub cooling_until: Option<i64>,
    pub plan_limits: Option<PlanLimits>,
}

pub struct Accounts {
    accounts: Vec<Arc<Account>>,
    affinity: Mutex<Affinity>,
}

impl Accounts {
    /// The pool; at least one account.
    pub fn new(accounts: Vec<Account>) -> Self {
        assert!(!accounts.is_empty(), "a server has at least one account");
        Accounts {
            accounts: accounts.into_iter().map(Arc::new).collect(),
            affinity: Mutex::default(),
        }
    }

    /// The pool of one: `backend` as the account `default`.
    pub fn single(backend: SharedBackend) -> Self {
        Accounts::new(vec![Account::new(
            crate::config::DEFAULT_ACCOUNT,
            None,
            backend,
        )])
    }

    /// The first account: what every account shares (the models, how turns are taken) is
    /// asked of it.
    pub fn first(&self) -> &Arc<Account> {
        &self.accounts[0]
    }

    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Account>> {
        self.accounts.iter()
    }

    /// The account to take a turn for `route`, never one in `tried`. The one account of a pool
    /// of one is always taken: codex then answers for its own limits.
    pub fn pick(&self, route: &Route, tried: &[usize]) -> Result<Lease, ProxyError> {
        self.pick_at(route, tried, SystemTime::now())
    }

    fn pick_at(
        &self,
        route: &Route,
        tried: &[usize],
        now: SystemTime,
    ) -> Result<Lease, ProxyError> {
        if self.accounts.len() == 1 && tried.is_empty() {
            return Ok(self.lease(0));
        }
        if let Some(bound) = route.bound {
            let account = &self.accounts[bound];
            return match account.usable(now) && !tried.contains(&bound) {
                true => Ok(self.lease(bound)),
                false => Err(self.unavailable(&[bound], now)),
            };
        }
        let usable: Vec<usize> = (0..self.accounts.len())
            .filter(|i| !tried.contains(i) && self.accounts[*i].usable(now))
            .collect();
        let mut affinity = self.affinity.lock().expect("affinity lock");
        let stuck = route
            .conversation
            .and_then(|key| affinity.get(key))
            .filter(|i| usable.contains(i));
        let chosen =
            match stuck {
                Some(index) => index,
                None => {
                    let Some(index) = usable.iter().copied().min_by_key(|i| {
                        (self.accounts[*i].running(), plan_used(&self.accounts[*i]))
                    }) else {
                        drop(affinity);
                        let all: Vec<usize> = (0..self.accounts.len()).collect();
                        return Err(self.unavailable(&all, now));
                    };
                    if let Some(key) = route.conversation {
                        affinity.set(key, index);
                    }
                    index
                }
            };
        Ok(self.lease(chosen))
    }

    fn lease(&self, index: usize) -> Lease {
        let account = self.accounts[index].clone();
        account.running.fetch_add(1, Ordering::Relaxed);
        Lease { index, account }
    }

    /// Why none of `among` can take a turn: a 429 whose `Retry-After` is the first one's reset
    /// while any is cooling, else their logins.
    fn unavailable(&self, among: &[usize], now: SystemTime) -> ProxyError {
        let names = |list: &[usize]| {
            list.iter()
                .map(|i| self.accounts[*i].name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let first_reset = among
            .iter()
            .filter_map(|i| self.accounts[*i].held_until(now))
            .min();
        let (subject, which) = match among {
            [one] => (format!("The codex account {} is", names(&[*one])), "it"),
            _ => (
                format!("Every codex account ({}) is", names(among)),
                "the first",
            ),
        };
        match first_reset {
            Some(at) => {
                let secs = at.duration_since(now).unwrap_or_default().as_secs().max(1);
                ProxyError::CodexFailed {
                    kind: FailureKind::RateLimited,
                    message: format!(
                        "{subject} at its usage limit; {which} is usable again in {secs} s (Retry-After)."
                    ),
                    reset_in: Some(secs),
                }
            }
            None => ProxyError::CodexFailed {
                kind: FailureKind::Unauthenticated,
                message: format!("{subject} logged out"),
                reset_in: None,
            },
        }
    }

    /// Records how the turn on `lease` ended: `Ok` for an answer, else its error.
    pub fn settle(&self, lease: &Lease, outcome: Result<(), &ProxyError>) -> Verdict {
        self.settle_at(lease, outcome, SystemTime::now())
    }

    fn settle_at(
        &self,
        lease: &Lease,
        outcome: Result<(), &ProxyError>,
        now: SystemTime,
    ) -> Verdict {
        let account = &lease.account;
        let err = match outcome {
            Ok(()) => {
                account.standing().succeeded();
                return Verdict::Kept;
            }
            Err(err) => err,
        };
        match err {
            ProxyError::CodexFailed {
                kind: FailureKind::RateLimited | FailureKind::QuotaExceeded,
                ..
            } => {
                let reset_in = err.retry_after().map(Duration::from_secs);
                let mut standing = account.standing();
                standing.limited(now, reset_in);
                let until = standing.cooling_until().map(unix);
                tracing::warn!(
                    account = %account.name,
                    cooling_until = until,
                    "codex account reached a usage or rate limit; cooling it"
                );
                Verdict::Moved
            }
            ProxyError::CodexFailed {
                kind: FailureKind::Unauthenticated,
                message,
                ..
            } => {
                let login = account.login_written();
                if account.standing().logged_out(now, login) {
                    tracing::error!(
                        account = %account.name,
                        home = ?account.home,
                        "codex account cannot authenticate and takes no turns until it is logged in again (`codex login` with its CODEX_HOME): {message}"
                    );
                }
                Verdict::Moved
            }
            _ => Verdict::Kept,
        }
    }

    /// Each account as `/health` shows it.
    pub fn views(&self) -> Vec<AccountView> {
        let now = SystemTime::now();
        self.accounts
            .iter()
            .map(|account| {
                let standing = account.standing().clone();
                let held = account.held_until(now);
                let state = match standing.state(now) {
                    State::Ready if held.is_some() => State::Cooling,
                    state => state,
                };
                AccountView {
                    name: account.name.clone(),
                    state,
                    running: account.running(),
                    cooling_until: held.map(unix),
                    plan_limits: account.backend.plan_limits(),
                }
            })
            .collect()
    }
}

/// How much of its plan an account has used, as codex last reported (0 when unknown): of two
/// idle accounts, the one with more left takes the turn.
fn plan_used(account: &Account) -> i64 {
    account.backend.plan_limits().map_or(0, |limits| {
        limits
            .windows()
            .map(|(_, w)| w.used_percent)
            .max()
            .unwrap_or(0)
    })
}

fn unix(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codex::{Backend, CodexStatus, RunStream, Turn};
    use futures_util::future::BoxFuture;

    /// A backend that is never run: the pool only asks it for its plan limits.
    struct Idle(Option<PlanLimits>);

    impl Backend for Idle {
        fn run(&self, _turn: Turn) -> BoxFuture<'_, Result<RunStream, ProxyError>> {
            unreachable!("the pool never runs a turn")
        }
        fn status(&self) -> BoxFuture<'_, CodexStatus> {
            unreachable!("the pool never asks")
        }
        fn plan_limits(&self) -> Option<PlanLimits> {
            self.0.clone()
        }
    }

    fn pool(names: &[&str]) -> Accounts {
        Accounts::new(
            names
                .iter()
                .map(|name| Account::new(*name, None, Arc::new(Idle(None))))
                .collect(),
        )
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn limit(in_secs: u64) -> ProxyError {
        ProxyError::codex_failed(format!(
            "You've hit your usage limit. Try again in {in_secs} seconds."
        ))
    }

    fn conversation(key: u64) -> Route {
        Route {
            bound: None,
            conversation: Some(key),
        }
    }

    #[test]
    fn a_new_conversation_goes_to_the_account_with_the_fewest_running_turns() {
        let pool = pool(&["alice", "bob"]);
        let busy = pool.pick_at(&conversation(1), &[], at(0)).unwrap();
        assert_eq!(busy.account.name, "alice");
        let next = pool.pick_at(&conversation(2), &[], at(0)).unwrap();
        assert_eq!(next.account.name, "bob");
        drop(next);
        // Conversation 1 stays on alice although bob is idle.
        let again = pool.pick_at(&conversation(1), &[], at(0)).unwrap();
        assert_eq!(again.account.name, "alice");
        assert_eq!(pool.first().running(), 2);
    }

    #[test]
    fn a_cooling_account_is_skipped_and_its_conversations_move() {
        let pool = pool(&["alice", "bob"]);
        let lease = pool.pick_at(&conversation(1), &[], at(0)).unwrap();
        assert_eq!(
            pool.settle_at(&lease, Err(&limit(600)), at(0)),
            Verdict::Moved
        );
        drop(lease);
        let moved = pool.pick_at(&conversation(1), &[], at(10)).unwrap();
        assert_eq!(moved.account.name, "bob");
        drop(moved);
        // Once alice has reset, conversation 1 stays where it moved.
        let later = pool.pick_at(&conversation(1), &[], at(700)).unwrap();
        assert_eq!(later.account.name, "bob");
    }

    #[test]
    fn when_every_account_is_cooling_the_earliest_reset_is_the_retry_after() {
        let pool = pool(&["alice", "bob"]);
        for (secs, expected) in [(900, "alice"), (300, "bob")] {
            let lease = pool.pick_at(&Route::default(), &[], at(0)).unwrap();
            assert_eq!(lease.account.name, expected);
            pool.settle_at(&lease, Err(&limit(secs)), at(0));
        }
        let Err(err) = pool.pick_at(&Route::default(), &[], at(100)) else {
            panic!("no account is usable");
        };
        assert_eq!(err.status().as_u16(), 429);
        assert_eq!(err.retry_after(), Some(200));
        assert!(
            err.message().contains("Every codex account (alice, bob)"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn a_bound_key_stays_on_its_account_even_when_another_is_idle() {
        let pool = pool(&["alice", "bob"]);
        let bound = Route {
            bound: Some(1),
            conversation: None,
        };
        let first = pool.pick_at(&bound, &[], at(0)).unwrap();
        let second = pool.pick_at(&bound, &[], at(0)).unwrap();
        assert_eq!((first.index, second.index), (1, 1));
        pool.settle_at(&first, Err(&limit(60)), at(0));
        let Err(err) = pool.pick_at(&bound, &[], at(1)) else {
            panic!("bob is cooling and alice is not bob");
        };
        assert_eq!(err.retry_after(), Some(59));
        assert!(
            err.message().contains("The codex account bob is"),
            "{}",
            err.message()
        );
        // And no second try elsewhere for it.
        assert!(pool.pick_at(&bound, &[1], at(100)).is_err());
    }

    #[test]
    fn a_failed_login_takes_the_account_out_and_other_failures_do_not() {
        let pool = pool(&["alice", "bob"]);
        let lease = pool.pick_at(&Route::default(), &[], at(0)).unwrap();
        let unauthenticated =
            ProxyError::codex_failed("unexpected status 401 Unauthorized: bad key");
        assert_eq!(
            pool.settle_at(&lease, Err(&unauthenticated), at(0)),
            Verdict::Moved
        );
        assert_eq!(pool.views()[0].state, State::LoggedOut);
        let other = pool.pick_at(&Route::default(), &[], at(1)).unwrap();
        assert_eq!(other.account.name, "bob");
        let overloaded = ProxyError::codex_failed("We're currently experiencing high demand");
        assert_eq!(
            pool.settle_at(&other, Err(&overloaded), at(1)),
            Verdict::Kept
        );
        assert_eq!(pool.views()[1].state, State::Ready);
        drop((lease, other));
        let Err(err) = pool.pick_at(&Route::default(), &[1], at(2)) else {
            panic!("alice is out and bob was tried");
        };
        assert_eq!(err.status().as_u16(), 502);
    }

    #[test]
    fn an_account_whose_plan_codex_reports_spent_is_cooling_until_it_resets() {
        let spent = PlanLimits {
            plan_type: Some("plus".into()),
            primary: Some(crate::codex::plan_limits::Window {
                used_percent: 100,
                window_minutes: Some(300),
                resets_at: Some(500),
            }),
            secondary: None,
        };
        let pool = Accounts::new(vec![
            Account::new("alice", None, Arc::new(Idle(Some(spent)))),
            Account::new("bob", None, Arc::new(Idle(None))),
        ]);
        assert_eq!(
            pool.pick_at(&Route::default(), &[], at(100))
                .unwrap()
                .account
                .name,
            "bob"
        );
        assert_eq!(
            pool.pick_at(&Route::default(), &[1], at(100))
                .err()
                .unwrap()
                .retry_after(),
            Some(400)
        );
        assert_eq!(
            pool.pick_at(&Route::default(), &[1], at(600))
                .unwrap()
                .account
                .name,
            "alice"
        );
    }

    #[test]
    fn the_one_account_of_a_pool_of_one_is_always_taken() {
        let pool = pool(&["default"]);
        let lease = pool.pick_at(&Route::default(), &[], at(0)).unwrap();
        pool.settle_at(&lease, Err(&limit(600)), at(0));
        assert!(pool.pick_at(&Route::default(), &[], at(1)).is_ok());
        assert!(
            pool.pick_at(&Route::default(), &[0], at(1)).is_err(),
            "no second try"
        );
    }
}
