//! A ChatGPT plan's usage limits as codex last reported them (`account/rateLimits/updated` on
//! the app-server backend): for `/health`, `/metrics`, and a usage-limit 429's `Retry-After`.

use std::sync::{Arc, Mutex};

/// One rolling window of a plan (codex reports a short one and a weekly one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub used_percent: i64,
    pub window_minutes: Option<i64>,
    /// Unix seconds.
    pub resets_at: Option<i64>,
}

/// The plan's limits; fields stay as last reported, since codex's updates are sparse.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanLimits {
    pub plan_type: Option<String>,
    pub primary: Option<Window>,
    pub secondary: Option<Window>,
}

impl PlanLimits {
    /// Folds a sparse update in: what it leaves out (null) keeps its last value.
    pub fn merge(&mut self, update: PlanLimits) {
        if update.plan_type.is_some() {
            self.plan_type = update.plan_type;
        }
        if update.primary.is_some() {
            self.primary = update.primary;
        }
        if update.secondary.is_some() {
            self.secondary = update.secondary;
        }
    }

    pub fn is_known(&self) -> bool {
        self.primary.is_some() || self.secondary.is_some()
    }

    /// The windows by the names `/health` and `/metrics` use.
    pub fn windows(&self) -> impl Iterator<Item = (&'static str, Window)> + '_ {
        [("primary", self.primary), ("secondary", self.secondary)]
            .into_iter()
            .filter_map(|(name, window)| Some((name, window?)))
    }

    /// Seconds from `now` until the plan can be used again: the latest reset among the
    /// windows that are used up; `None` when none is (a 429 then has another cause).
    pub fn seconds_until_usable(&self, now: i64) -> Option<u64> {
        let at = self
            .windows()
            .filter(|(_, w)| w.used_percent >= 100)
            .filter_map(|(_, w)| w.resets_at)
            .max()?;
        u64::try_from(at.saturating_sub(now))
            .ok()
            .filter(|secs| *secs > 0)
    }
}

/// The limits one app-server reports, shared with whoever reads them.
pub type SharedPlanLimits = Arc<Mutex<PlanLimits>>;

#[cfg(test)]
mod tests {
    use super::*;

    fn window(used: i64, resets_at: i64) -> Option<Window> {
        Some(Window {
            used_percent: used,
            window_minutes: Some(300),
            resets_at: Some(resets_at),
        })
    }

    #[test]
    fn sparse_updates_keep_what_they_leave_out() {
        let mut limits = PlanLimits::default();
        assert!(!limits.is_known());
        limits.merge(PlanLimits {
            plan_type: Some("plus".into()),
            primary: window(40, 1_000),
            secondary: window(10, 9_000),
        });
        limits.merge(PlanLimits {
            primary: window(55, 1_000),
            ..PlanLimits::default()
        });
        assert_eq!(limits.plan_type.as_deref(), Some("plus"));
        assert_eq!(limits.primary.unwrap().used_percent, 55);
        assert_eq!(limits.secondary.unwrap().used_percent, 10);
    }

    #[test]
    fn the_plan_is_usable_again_when_its_spent_windows_reset() {
        let limits = PlanLimits {
            plan_type: None,
            primary: window(100, 1_000),
            secondary: window(30, 9_000),
        };
        assert_eq!(limits.seconds_until_usable(400), Some(600));
        let both_spent = PlanLimits {
            secondary: window(100, 9_000),
            ..limits.clone()
        };
        assert_eq!(both_spent.seconds_until_usable(400), Some(8_600));
        let none_spent = PlanLimits {
            primary: window(20, 1_000),
            ..limits
        };
        assert_eq!(none_spent.seconds_until_usable(400), None);
        assert_eq!(PlanLimits::default().seconds_until_usable(400), None);
    }
}
