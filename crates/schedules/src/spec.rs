//! `spec`: a schedule's cron expression and timezone, checked, and the instants they name.
//!
//! Owns: parsing (exactly five fields, as the original's `robfig/cron` took them: minute,
//! hour, day of month, month, day of week; ranges, lists, steps and `JAN`/`MON` names; no
//! seconds, no `@daily` descriptors, at most [`MAX_CRON_CHARS`] characters), the IANA timezone
//! (the database is compiled in, so a host without `tzdata` answers the same), and the next
//! fire time after an instant, in UTC.
//!
//! Daylight saving time follows the Open Cron Pattern Specification, as `croner` implements
//! it: a wall-clock time that a spring-forward skips fires at the first real instant after the
//! gap, once; a wall-clock time that a fall-back repeats fires at its first occurrence, once.
//! Jobs that run every hour or more often fire at every real instant that matches.
//!
//! Must not know: storage, HTTP, how a fire is delivered.

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use time::OffsetDateTime;

/// The longest cron expression accepted (the original's later limit).
pub const MAX_CRON_CHARS: usize = 128;

/// What is wrong with a cron expression or a timezone, naming the field to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// `cron_expr` does not parse; `reason` says why.
    #[error("{reason} (got {expr:?})")]
    Cron { expr: String, reason: String },
    /// `timezone` is not an IANA name this server knows.
    #[error("invalid timezone: {0}")]
    Timezone(String),
}

impl SpecError {
    /// The request field at fault.
    pub fn field(&self) -> &'static str {
        match self {
            Self::Cron { .. } => "cron_expr",
            Self::Timezone(_) => "timezone",
        }
    }
}

/// A checked cron expression in a timezone.
#[derive(Debug, Clone)]
pub struct Spec {
    cron: Cron,
    tz: TimeZone,
}

impl Spec {
    /// Checks `expr` (five fields) and `timezone` (an IANA name; empty means `UTC`).
    pub fn parse(expr: &str, timezone: &str) -> Result<Self, SpecError> {
        let cron_error = |reason: String| SpecError::Cron {
            expr: expr.to_owned(),
            reason,
        };
        let trimmed = expr.trim();
        if trimmed.is_empty() {
            return Err(cron_error("must not be empty".into()));
        }
        if trimmed.chars().count() > MAX_CRON_CHARS {
            return Err(cron_error(format!("at most {MAX_CRON_CHARS} characters")));
        }
        if trimmed.starts_with('@') {
            return Err(cron_error(
                "descriptors such as @daily are not supported; write the five fields (e.g. `0 0 * * *`)".into(),
            ));
        }
        let fields = trimmed.split_whitespace().count();
        if fields != 5 {
            return Err(cron_error(format!(
                "needs exactly 5 fields (minute hour day-of-month month day-of-week), found {fields}"
            )));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(trimmed)
            .map_err(|e| cron_error(e.to_string()))?;
        let name = match timezone.trim() {
            "" => "UTC",
            t => t,
        };
        let tz = TimeZone::get(name).map_err(|_| SpecError::Timezone(name.to_owned()))?;
        Ok(Self { cron, tz })
    }

    /// The first fire time strictly after `after`, in UTC; `None` when the pattern never
    /// matches again (e.g. `0 0 30 2 *`).
    pub fn next_after(&self, after: OffsetDateTime) -> Option<OffsetDateTime> {
        let at = Timestamp::from_nanosecond(after.unix_timestamp_nanos()).ok()?;
        let zoned = at.to_zoned(self.tz.clone());
        let next = self.cron.find_next_occurrence(&zoned, false).ok()?;
        OffsetDateTime::from_unix_timestamp_nanos(next.timestamp().as_nanosecond()).ok()
    }

    /// Twice the gap between the next two fire times after `now`: how long without a run
    /// before the admin health view calls a schedule stale (0 when it cannot tell).
    pub fn stale_threshold(&self, now: OffsetDateTime) -> time::Duration {
        match self.next_after(now).and_then(|a| Some((a, self.next_after(a)?))) {
            Some((a, b)) => (b - a) * 2,
            None => time::Duration::ZERO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn fires(spec: &Spec, from: OffsetDateTime, until: OffsetDateTime) -> Vec<OffsetDateTime> {
        let mut out = Vec::new();
        let mut at = from;
        while let Some(next) = spec.next_after(at) {
            if next > until {
                break;
            }
            out.push(next);
            at = next;
        }
        out
    }

    #[test]
    fn five_fields_only_and_the_reason_is_said() {
        for (expr, says) in [
            ("", "must not be empty"),
            ("0 0 * * * *", "exactly 5 fields"),
            ("* * *", "exactly 5 fields"),
            ("@daily", "descriptors"),
            ("61 * * * *", ""),
            ("0 25 * * *", ""),
        ] {
            let e = Spec::parse(expr, "UTC").unwrap_err();
            assert_eq!(e.field(), "cron_expr", "{expr}");
            assert!(e.to_string().contains(says), "{expr}: {e}");
        }
        let long = format!("0 0 * * {}", "1,".repeat(70));
        assert!(
            Spec::parse(&long, "UTC")
                .unwrap_err()
                .to_string()
                .contains("at most 128")
        );
        for ok in ["*/5 * * * *", "0 9 * * MON-FRI", "15 2 1,15 JAN,JUL *", "0 0 * * 0"] {
            Spec::parse(ok, "UTC").unwrap();
        }
    }

    #[test]
    fn an_unknown_timezone_names_the_field() {
        let e = Spec::parse("0 9 * * *", "Mars/Olympus_Mons").unwrap_err();
        assert_eq!(e.field(), "timezone");
        assert_eq!(e.to_string(), "invalid timezone: Mars/Olympus_Mons");
        Spec::parse("0 9 * * *", "").unwrap();
        Spec::parse("0 9 * * *", "America/New_York").unwrap();
    }

    /// 02:30 every day, across both of the year's transitions: one fire each day, in the gap
    /// at the first instant after it, in the overlap at the first 02:30.
    fn daily_0230_across(tz: &str, spring: (OffsetDateTime, OffsetDateTime), fall: (OffsetDateTime, OffsetDateTime)) {
        let spec = Spec::parse("30 2 * * *", tz).unwrap();
        for (from, until) in [spring, fall] {
            let got = fires(&spec, from, until);
            assert_eq!(got.len(), 3, "{tz}: one fire a day over three days: {got:?}");
        }
    }

    #[test]
    fn a_daily_job_fires_once_on_both_transition_days_in_berlin() {
        // 2026-03-29: 02:00 CET → 03:00 CEST (02:30 does not exist);
        // 2026-10-25: 03:00 CEST → 02:00 CET (02:30 happens twice).
        let spec = Spec::parse("30 2 * * *", "Europe/Berlin").unwrap();
        let spring = fires(&spec, datetime!(2026-03-28 12:00 UTC), datetime!(2026-03-30 12:00 UTC));
        assert_eq!(
            spring,
            [datetime!(2026-03-29 01:00 UTC), datetime!(2026-03-30 00:30 UTC)],
            "the day before at 02:30 CET; on the day at 03:00 CEST, the first instant after the gap"
        );
        let spec_day = fires(&spec, datetime!(2026-03-28 00:00 UTC), datetime!(2026-03-28 23:59 UTC));
        assert_eq!(spec_day, [datetime!(2026-03-28 01:30 UTC)]);
        let fall = fires(&spec, datetime!(2026-10-24 12:00 UTC), datetime!(2026-10-26 12:00 UTC));
        assert_eq!(
            fall,
            [datetime!(2026-10-25 00:30 UTC), datetime!(2026-10-26 01:30 UTC)],
            "once on the day, at the first 02:30 (CEST), not again at 02:30 CET"
        );
        daily_0230_across(
            "Europe/Berlin",
            (datetime!(2026-03-28 00:00 UTC), datetime!(2026-03-30 23:00 UTC)),
            (datetime!(2026-10-24 00:00 UTC), datetime!(2026-10-26 23:00 UTC)),
        );
    }

    #[test]
    fn a_daily_job_fires_once_on_both_transition_days_in_new_york() {
        // 2026-03-08: 02:00 EST → 03:00 EDT; 2026-11-01: 02:00 EDT → 01:00 EST.
        let spec = Spec::parse("30 2 * * *", "America/New_York").unwrap();
        let spring = fires(&spec, datetime!(2026-03-07 12:00 UTC), datetime!(2026-03-09 12:00 UTC));
        assert_eq!(
            spring,
            [datetime!(2026-03-08 07:00 UTC), datetime!(2026-03-09 06:30 UTC)],
            "on the day at 03:00 EDT (07:00 UTC), once"
        );
        // 01:30 happens twice on the fall-back day: once.
        let spec = Spec::parse("30 1 * * *", "America/New_York").unwrap();
        let fall = fires(&spec, datetime!(2026-10-31 12:00 UTC), datetime!(2026-11-02 12:00 UTC));
        assert_eq!(
            fall,
            [datetime!(2026-11-01 05:30 UTC), datetime!(2026-11-02 06:30 UTC)],
            "once, at the first 01:30 (EDT)"
        );
        daily_0230_across(
            "America/New_York",
            (datetime!(2026-03-07 00:00 UTC), datetime!(2026-03-09 23:00 UTC)),
            (datetime!(2026-10-31 00:00 UTC), datetime!(2026-11-02 23:00 UTC)),
        );
    }

    #[test]
    fn the_stale_threshold_is_twice_the_next_gap() {
        let spec = Spec::parse("*/15 * * * *", "UTC").unwrap();
        assert_eq!(
            spec.stale_threshold(datetime!(2026-01-01 00:01 UTC)),
            time::Duration::minutes(30)
        );
        let never = Spec::parse("0 0 30 2 *", "UTC").unwrap();
        assert_eq!(never.next_after(datetime!(2026-01-01 00:00 UTC)), None);
        assert_eq!(
            never.stale_threshold(datetime!(2026-01-01 00:00 UTC)),
            time::Duration::ZERO
        );
    }
}
