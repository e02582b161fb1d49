//! When a ChatGPT plan's usage limit resets, as codex's message says it, for `Retry-After`.
//!
//! codex words it two ways: a duration ("try again in 3 days 2 hours 5 minutes") or a time of
//! day in the local time of the machine codex runs on, which is this one ("try again at 3:51
//! PM", "try again at Sep 29th, 2026 12:55 AM"). Anything else gives no reset.

use std::time::{SystemTime, UNIX_EPOCH};

/// The longest reset a message may announce; a later one is taken as misread.
const MAX_SECS: u64 = 31 * 24 * 3600;

/// Seconds from `now` until the reset `message` announces, if it announces one.
pub fn seconds_until_reset(message: &str, now: SystemTime) -> Option<u64> {
    let lower = message.to_lowercase();
    let secs = if let Some(rest) = after(&lower, "try again in ") {
        duration(rest)
    } else if let Some(rest) = after(&lower, "try again at ") {
        let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs() as i64;
        let offset = local_offset_secs(now);
        let reset = local_time(rest, now + offset)? - offset;
        u64::try_from(reset - now).ok()
    } else {
        None
    }?;
    (1..=MAX_SECS).contains(&secs).then_some(secs)
}

fn after<'a>(text: &'a str, marker: &str) -> Option<&'a str> {
    text.find(marker).map(|at| &text[at + marker.len()..])
}

/// "3 days 2 hours 5 minutes", up to the first word that is not a number or a unit.
fn duration(text: &str) -> Option<u64> {
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    let mut total = 0u64;
    let mut seen = false;
    for pair in words.chunks(2) {
        let [number, unit] = pair else { break };
        let Ok(number) = number.parse::<u64>() else {
            break;
        };
        let unit = unit.trim_end_matches('.');
        let scale = match unit.trim_end_matches('s') {
            "day" => 86_400,
            "hour" | "hr" | "h" => 3_600,
            "minute" | "min" | "m" => 60,
            "second" | "sec" => 1,
            _ => break,
        };
        total = total.saturating_add(number.saturating_mul(scale));
        seen = true;
        if unit.len() != pair[1].len() {
            break; // the sentence ended after this unit
        }
    }
    seen.then_some(total)
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// "3:51 pm" (the next such time after `local_now`) or "sep 29th, 2026 12:55 am", as local
/// seconds since the epoch.
fn local_time(text: &str, local_now: i64) -> Option<i64> {
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    let (date, clock) = match MONTHS
        .iter()
        .position(|m| words.first().is_some_and(|w| w.starts_with(m)))
    {
        Some(month) => {
            let day: i64 = words
                .get(1)?
                .trim_end_matches(char::is_alphabetic)
                .parse()
                .ok()?;
            let year: i64 = words.get(2)?.parse().ok()?;
            if !(1..=31).contains(&day) || !(1970..=9999).contains(&year) {
                return None;
            }
            (Some((year, month as i64 + 1, day)), &words[3..])
        }
        None => (None, &words[..]),
    };
    let (hour, minute) = clock.first()?.split_once(':')?;
    if hour.starts_with(['-', '+']) || minute.starts_with(['-', '+']) {
        return None;
    }
    let (mut hour, minute): (i64, i64) = (
        hour.parse().ok()?,
        minute.trim_end_matches('.').parse().ok()?,
    );
    match clock.get(1).map(|w| w.trim_end_matches('.')) {
        Some("pm") if hour < 12 => hour += 12,
        Some("am") if hour == 12 => hour = 0,
        _ => {}
    }
    if !(0..24).contains(&hour) || !(0..60).contains(&minute) {
        return None;
    }
    let time_of_day = hour * 3600 + minute * 60;
    match date {
        Some((year, month, day)) => Some(days_from_civil(year, month, day) * 86_400 + time_of_day),
        None => {
            let today = local_now.div_euclid(86_400) * 86_400;
            let at = today + time_of_day;
            Some(if at <= local_now { at + 86_400 } else { at })
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// This machine's offset from UTC at `now`, as codex sees it (its `TZ` is passed through).
fn local_offset_secs(now: i64) -> i64 {
    let time = now as libc::time_t;
    // SAFETY: localtime_r writes only into `tm`, which lives for the call.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let converted = unsafe { libc::localtime_r(&time, &mut tm) };
    if converted.is_null() {
        0
    } else {
        tm.tm_gmtoff
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + std::time::Duration::from_secs(secs)
    }

    #[test]
    fn durations_add_up_to_the_sentence_end() {
        let now = at(1_800_000_000);
        let cases = [
            ("You've hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), or try again in 3 days 2 hours 5 minutes.", Some(3 * 86_400 + 2 * 3600 + 5 * 60)),
            ("You've hit your usage limit. Try again in 59 minutes.", Some(59 * 60)),
            ("try again in 1 hour, 30 minutes", Some(5_400)),
            ("You've hit your usage limit. Try again later.", None),
            ("exceeded retry limit, last status: 429 Too Many Requests", None),
        ];
        for (message, expected) in cases {
            assert_eq!(seconds_until_reset(message, now), expected, "{message}");
        }
    }

    #[test]
    fn times_of_day_are_the_next_such_local_time() {
        // 2027-01-15 12:00:00 UTC; the offsets here are read from this machine's zone.
        let now_secs = days_from_civil(2027, 1, 15) * 86_400 + 12 * 3600;
        let offset = local_offset_secs(now_secs);
        let local_noon = now_secs + offset;
        let until = |message: &str| seconds_until_reset(message, at(now_secs as u64));
        let expect = |local: i64| Some((local - offset - now_secs) as u64);
        let today = local_noon.div_euclid(86_400) * 86_400;
        let next = |h: i64, m: i64| {
            let t = today + h * 3600 + m * 60;
            if t <= local_noon {
                t + 86_400
            } else {
                t
            }
        };
        assert_eq!(
            until("You've hit your usage limit. Try again at 3:51 PM."),
            expect(next(15, 51))
        );
        assert_eq!(until("… try again at 11:05 AM"), expect(next(11, 5)));
        assert_eq!(until("… try again at 12:30 AM."), expect(next(0, 30)));
        assert_eq!(
            until("You've hit your usage limit. Please try again at Jan 16th, 2027 12:55 AM."),
            expect(days_from_civil(2027, 1, 16) * 86_400 + 55 * 60)
        );
        assert_eq!(until("try again at 25:00 PM"), None);
        assert_eq!(until("try again at -1:30 pm"), None);
        assert_eq!(
            until("try again at Jan 1st, 99999999999999999 1:00 AM"),
            None
        );
        assert_eq!(until("try again at Jan 99th, 2027 1:00 AM"), None);
    }

    #[test]
    fn civil_dates_count_from_the_epoch() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2026, 12, 1), 20_788);
    }
}
