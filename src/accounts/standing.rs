//! Whether one account may take turns: the state a failure puts it in and what brings it back.
//! Pure: every decision takes the time it is made at, so each rule is a unit test.

use std::time::{Duration, SystemTime};

/// The first pause after a rate limit that names no reset; each further one in a row doubles
/// it, up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(60);
pub const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);

/// How long a logged-out account waits before one request tries it again, unless its login
/// file changes first (`codex login` rewrote it).
pub const LOGIN_RETRY: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Standing {
    #[default]
    Usable,
    /// A usage or rate limit: not used until `until`.
    Cooling {
        until: SystemTime,
        /// Limits in a row without a turn that succeeded, for the backoff.
        strikes: u32,
    },
    /// codex could not authenticate: out until its login changes, or a while has passed.
    LoggedOut {
        since: SystemTime,
        /// When the login file was last written, as it was when the account failed.
        login_written: Option<SystemTime>,
    },
}

/// What `/health` says of an account's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Ready,
    Cooling,
    LoggedOut,
}

impl Standing {
    /// Whether the account may take a turn at `now`; `login_written` is its login file's
    /// modification time now.
    pub fn usable(
        &self,
        now: SystemTime,
        login_written: impl FnOnce() -> Option<SystemTime>,
    ) -> bool {
        match self {
            Standing::Usable => true,
            Standing::Cooling { until, .. } => now >= *until,
            Standing::LoggedOut {
                since,
                login_written: then,
            } => {
                now.duration_since(*since).unwrap_or_default() >= LOGIN_RETRY
                    || login_written() != *then
            }
        }
    }

    /// The state `/health` shows at `now`.
    pub fn state(&self, now: SystemTime) -> State {
        match self {
            Standing::Usable => State::Ready,
            Standing::Cooling { until, .. } if now >= *until => State::Ready,
            Standing::Cooling { .. } => State::Cooling,
            Standing::LoggedOut { .. } => State::LoggedOut,
        }
    }

    /// When a cooling account may be used again.
    pub fn cooling_until(&self) -> Option<SystemTime> {
        match self {
            Standing::Cooling { until, .. } => Some(*until),
            _ => None,
        }
    }

    /// A usage or rate limit at `now`: cooling until the reset codex reported (`reset_in`), or
    /// for a backoff that grows with each limit in a row when it reported none.
    pub fn limited(&mut self, now: SystemTime, reset_in: Option<Duration>) {
        let strikes = match self {
            Standing::Cooling { strikes, .. } => strikes.saturating_add(1),
            _ => 0,
        };
        let pause = reset_in.unwrap_or_else(|| {
            FIRST_BACKOFF
                .saturating_mul(1 << strikes.min(10))
                .min(MAX_BACKOFF)
        });
        *self = Standing::Cooling {
            until: now + pause,
            strikes,
        };
    }

    /// codex could not authenticate at `now`. Returns whether the account was in use until
    /// now (the moment worth an ERROR line).
    pub fn logged_out(&mut self, now: SystemTime, login_written: Option<SystemTime>) -> bool {
        let was_in = !matches!(self, Standing::LoggedOut { .. });
        *self = Standing::LoggedOut {
            since: now,
            login_written,
        };
        was_in
    }

    /// A turn succeeded: whatever held the account is over.
    pub fn succeeded(&mut self) {
        *self = Standing::Usable;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn a_limit_cools_the_account_until_the_reported_reset() {
        let mut standing = Standing::default();
        standing.limited(at(1_000), Some(Duration::from_secs(600)));
        assert!(!standing.usable(at(1_599), || None));
        assert_eq!(standing.state(at(1_599)), State::Cooling);
        assert!(standing.usable(at(1_600), || None));
        assert_eq!(standing.state(at(1_600)), State::Ready);
        assert_eq!(standing.cooling_until(), Some(at(1_600)));
    }

    #[test]
    fn limits_without_a_reset_back_off_longer_each_time_in_a_row() {
        let mut standing = Standing::default();
        let mut pauses = Vec::new();
        for _ in 0..6 {
            standing.limited(at(0), None);
            pauses.push(
                standing
                    .cooling_until()
                    .unwrap()
                    .duration_since(at(0))
                    .unwrap()
                    .as_secs(),
            );
        }
        assert_eq!(pauses, [60, 120, 240, 480, 900, 900]);
        standing.succeeded();
        standing.limited(at(0), None);
        assert_eq!(standing.cooling_until(), Some(at(60)));
    }

    #[test]
    fn a_logged_out_account_returns_when_its_login_is_rewritten_or_after_a_while() {
        let mut standing = Standing::default();
        assert!(standing.logged_out(at(0), Some(at(5))));
        // Failing again while out is not news.
        assert!(!standing.logged_out(at(0), Some(at(5))));
        assert_eq!(standing.state(at(10)), State::LoggedOut);
        assert!(!standing.usable(at(10), || Some(at(5))));
        assert!(
            standing.usable(at(10), || Some(at(9))),
            "codex login wrote the file again"
        );
        assert!(standing.usable(at(LOGIN_RETRY.as_secs()), || Some(at(5))));
    }
}
