//! Date periods: the `period` key of a job (`last_2_days`, `last_week`, ...) turned into dates.
//!
//! sosw 0.7 tried a list of regular expressions with `re.match` and called the subclass method named after
//! the pattern. Here a [`PeriodRegistry`] maps patterns to plain functions, and "today" is passed in, so
//! tests and replays pin it.
//!
//! A pattern is a list of `_`-separated segments; a segment that is exactly `N` stands for a whole number
//! (`[0-9]+` in sosw 0.7), every other segment is literal. A period matches a pattern only as a whole:
//! sosw 0.7 matched prefixes (`last_3_days_please` ran `last_3_days`); trailing text is rejected here with an
//! error that names the pattern it started with.

use std::fmt;

use chrono::{Datelike, Days, NaiveDate};

use crate::error::{Error, Result};

/// Largest `N` accepted in a pattern, and the longest date list a period may produce: 100 years of days.
/// It keeps `last_99999999_days` from allocating millions of dates.
pub const MAX_PERIOD_DAYS: u32 = 36_525;

/// The key path used in period errors.
const PERIOD_PATH: &str = "period";

/// A period handler: the dates for `today`, given the number matched by the pattern's `N` segment
/// (`None` when the pattern has no `N`).
pub type PeriodFn = fn(today: NaiveDate, n: Option<u32>) -> Result<Vec<NaiveDate>>;

/// One segment of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// Text that must appear as is.
    Literal(String),
    /// `N`: one or more ASCII digits.
    Number,
}

impl Segment {
    /// Whether some period segment matches both `self` and `other`.
    fn overlaps(&self, other: &Segment) -> bool {
        match (self, other) {
            (Segment::Literal(a), Segment::Literal(b)) => a == b,
            (Segment::Number, Segment::Number) => true,
            (Segment::Number, Segment::Literal(text))
            | (Segment::Literal(text), Segment::Number) => is_number(text),
        }
    }

    /// The number this segment captures from `text`, `Some(None)` for a matching literal, `None` otherwise.
    fn capture<'t>(&self, text: &'t str) -> Option<Option<&'t str>> {
        match self {
            Segment::Literal(lit) => (lit == text).then_some(None),
            Segment::Number => is_number(text).then_some(Some(text)),
        }
    }
}

/// `[0-9]+`, as sosw 0.7's patterns spell a number.
fn is_number(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// A parsed pattern such as `last_N_days`.
#[derive(Debug, Clone)]
struct Pattern {
    text: String,
    segments: Vec<Segment>,
}

impl Pattern {
    fn parse(text: &str) -> Result<Self> {
        let bad = |why: &str| Error::invalid("period pattern", format!("`{text}` {why}"));
        if text.is_empty() {
            return Err(bad("is empty"));
        }
        let mut segments = Vec::new();
        for part in text.split('_') {
            if part.is_empty() {
                return Err(bad("has an empty segment: use single `_` between words"));
            }
            segments.push(if part == "N" {
                Segment::Number
            } else {
                Segment::Literal(part.to_owned())
            });
        }
        if segments.iter().filter(|s| **s == Segment::Number).count() > 1 {
            return Err(bad("has more than one `N` segment"));
        }
        Ok(Pattern {
            text: text.to_owned(),
            segments,
        })
    }

    /// Whether one period could match both patterns.
    fn overlaps(&self, other: &Pattern) -> bool {
        self.segments.len() == other.segments.len()
            && self
                .segments
                .iter()
                .zip(&other.segments)
                .all(|(a, b)| a.overlaps(b))
    }

    /// `Some(n)` when `parts` match the whole pattern (`n` is the text of the `N` segment, if any).
    fn matches<'p>(&self, parts: &[&'p str]) -> Option<Option<&'p str>> {
        if parts.len() != self.segments.len() {
            return None;
        }
        self.matches_prefix(parts)
    }

    /// Like [`Pattern::matches`] but `parts` may continue after the pattern (sosw 0.7's `re.match`).
    fn matches_prefix<'p>(&self, parts: &[&'p str]) -> Option<Option<&'p str>> {
        if parts.len() < self.segments.len() {
            return None;
        }
        let mut number = None;
        for (segment, part) in self.segments.iter().zip(parts) {
            if let Some(captured) = segment.capture(part)? {
                number = Some(captured);
            }
        }
        Some(number)
    }
}

/// Named date-period handlers, tried in registration order.
///
/// [`PeriodRegistry::default`] holds sosw 0.7's built-in periods:
///
/// | Pattern | Dates (today = D) |
/// |---|---|
/// | `today` | D |
/// | `yesterday` | D−1 |
/// | `N_days_back` | D−N |
/// | `last_N_days` | D−N … D−1, ascending (today excluded) |
/// | `previous_N_days` | D−2N … D−N−1 (the N days before `last_N_days`) |
/// | `last_week` | the Sunday→Saturday week that ended at least one day before the Monday of D's week |
///
/// Custom periods (sosw 0.7's `custom_period_patterns` plus a subclass method) are registered in code:
///
/// ```
/// use chrono::{Datelike, NaiveDate, Weekday};
/// use sosw_core::job::PeriodRegistry;
///
/// fn last_n_weekdays(today: NaiveDate, n: Option<u32>) -> sosw_core::Result<Vec<NaiveDate>> {
///     let mut dates = Vec::new();
///     let mut day = today;
///     while dates.len() < n.unwrap_or(1) as usize {
///         day = day
///             .pred_opt()
///             .ok_or_else(|| sosw_core::Error::invalid_job("period", "before the calendar"))?;
///         if !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
///             dates.insert(0, day);
///         }
///     }
///     Ok(dates)
/// }
///
/// let mut periods = PeriodRegistry::default();
/// periods.register("last_N_weekdays", last_n_weekdays)?;
/// let monday = NaiveDate::from_ymd_opt(2026, 11, 23).expect("a valid date");
/// assert_eq!(
///     periods.date_strings("last_2_weekdays", monday)?,
///     ["2026-11-19", "2026-11-20"]
/// );
/// # Ok::<(), sosw_core::Error>(())
/// ```
#[derive(Clone)]
pub struct PeriodRegistry {
    entries: Vec<(Pattern, PeriodFn)>,
}

impl fmt::Debug for PeriodRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeriodRegistry")
            .field("patterns", &self.patterns().collect::<Vec<_>>())
            .finish()
    }
}

impl Default for PeriodRegistry {
    /// The six periods built into sosw 0.7.
    fn default() -> Self {
        let mut registry = PeriodRegistry::empty();
        let builtins: [(&str, PeriodFn); 6] = [
            ("last_N_days", last_n_days),
            ("N_days_back", n_days_back),
            ("yesterday", yesterday),
            ("today", today),
            ("previous_N_days", previous_n_days),
            ("last_week", last_week),
        ];
        for (pattern, handler) in builtins {
            // The built-in patterns are valid and distinct; a failure here would be a bug caught by tests.
            if let Ok(parsed) = Pattern::parse(pattern) {
                registry.entries.push((parsed, handler));
            }
        }
        registry
    }
}

impl PeriodRegistry {
    /// A registry without any period, not even the built-in ones.
    pub fn empty() -> Self {
        PeriodRegistry {
            entries: Vec::new(),
        }
    }

    /// Adds a pattern such as `get_june_days` or `last_N_weekdays` (`N` is the number placeholder).
    /// Fails when the pattern is malformed or when some period would match both it and a registered one.
    pub fn register(&mut self, pattern: &str, handler: PeriodFn) -> Result<&mut Self> {
        let parsed = Pattern::parse(pattern)?;
        if let Some((existing, _)) = self.entries.iter().find(|(p, _)| p.overlaps(&parsed)) {
            return Err(Error::invalid(
                "period pattern",
                format!(
                    "`{pattern}` overlaps the registered pattern `{}`: some period would match both",
                    existing.text
                ),
            ));
        }
        self.entries.push((parsed, handler));
        Ok(self)
    }

    /// The registered patterns, in the order they are tried.
    pub fn patterns(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(p, _)| p.text.as_str())
    }

    /// The dates of `period` for `today`. Unknown periods, trailing text, `N` above [`MAX_PERIOD_DAYS`] and
    /// dates out of the calendar's range are [`Error::InvalidJob`] at `period`.
    pub fn dates(&self, period: &str, today: NaiveDate) -> Result<Vec<NaiveDate>> {
        let parts: Vec<&str> = period.split('_').collect();
        for (pattern, handler) in &self.entries {
            if let Some(number) = pattern.matches(&parts) {
                let n = number.map(|text| parse_n(period, text)).transpose()?;
                let dates = handler(today, n)?;
                return check_length(period, dates);
            }
        }
        Err(self.unknown(period, &parts))
    }

    /// [`PeriodRegistry::dates`] formatted as `YYYY-MM-DD`, the shape of a task's `date_list`.
    pub fn date_strings(&self, period: &str, today: NaiveDate) -> Result<Vec<String>> {
        let dates = self.dates(period, today)?;
        Ok(dates
            .iter()
            .map(|d| d.format("%Y-%m-%d").to_string())
            .collect())
    }

    /// The error for a period no pattern matches, pointing out sosw 0.7's prefix matching where it applies.
    fn unknown(&self, period: &str, parts: &[&str]) -> Error {
        let known = self
            .patterns()
            .map(|p| format!("`{p}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let prefix = self
            .entries
            .iter()
            .find(|(p, _)| p.matches_prefix(parts).is_some());
        let message = match prefix {
            Some((pattern, _)) => format!(
                "`{period}` has text after the period `{}`; sosw 0.7 ignored it, this version rejects it. \
                 Known periods: {known} (N is a whole number)",
                pattern.text
            ),
            None => {
                format!("unknown period `{period}`; known periods: {known} (N is a whole number)")
            }
        };
        Error::invalid_job(PERIOD_PATH, message)
    }
}

/// The `N` of a period, at most [`MAX_PERIOD_DAYS`].
fn parse_n(period: &str, text: &str) -> Result<u32> {
    text.parse::<u32>()
        .ok()
        .filter(|n| *n <= MAX_PERIOD_DAYS)
        .ok_or_else(|| {
            Error::invalid_job(
                PERIOD_PATH,
                format!("`{period}`: the number must be at most {MAX_PERIOD_DAYS}"),
            )
        })
}

/// Custom handlers could return anything; the length limit protects the task count.
fn check_length(period: &str, dates: Vec<NaiveDate>) -> Result<Vec<NaiveDate>> {
    if dates.len() > MAX_PERIOD_DAYS as usize {
        return Err(Error::invalid_job(
            PERIOD_PATH,
            format!(
                "`{period}` produced {} dates; the limit is {MAX_PERIOD_DAYS}",
                dates.len()
            ),
        ));
    }
    Ok(dates)
}

/// `today - days`, or an error when that leaves the calendar.
fn days_before(today: NaiveDate, days: u64) -> Result<NaiveDate> {
    today.checked_sub_days(Days::new(days)).ok_or_else(|| {
        Error::invalid_job(
            PERIOD_PATH,
            format!("{days} days before {today} is out of the calendar's range"),
        )
    })
}

/// The `N` of a numbered pattern; the registry always passes it, a direct call without it is an error.
fn required_n(n: Option<u32>) -> Result<u64> {
    n.map(u64::from)
        .ok_or_else(|| Error::invalid_job(PERIOD_PATH, "this period needs a number `N`"))
}

/// `today - from`, `today - from + 1`, ..., `today - to`, for `from >= to`.
fn days_back_range(today: NaiveDate, from: u64, to: u64) -> Result<Vec<NaiveDate>> {
    (to..=from)
        .rev()
        .map(|back| days_before(today, back))
        .collect()
}

/// `today`: `[D]`.
fn today(today: NaiveDate, _n: Option<u32>) -> Result<Vec<NaiveDate>> {
    Ok(vec![today])
}

/// `yesterday`: `[D-1]`.
fn yesterday(today: NaiveDate, _n: Option<u32>) -> Result<Vec<NaiveDate>> {
    Ok(vec![days_before(today, 1)?])
}

/// `N_days_back`: `[D-N]`.
fn n_days_back(today: NaiveDate, n: Option<u32>) -> Result<Vec<NaiveDate>> {
    Ok(vec![days_before(today, required_n(n)?)?])
}

/// `last_N_days`: `[D-N, ..., D-1]`; `last_0_days` is empty, as in sosw 0.7.
fn last_n_days(today: NaiveDate, n: Option<u32>) -> Result<Vec<NaiveDate>> {
    let n = required_n(n)?;
    if n == 0 {
        return Ok(Vec::new());
    }
    days_back_range(today, n, 1)
}

/// `previous_N_days`: `[D-2N, ..., D-N-1]`.
fn previous_n_days(today: NaiveDate, n: Option<u32>) -> Result<Vec<NaiveDate>> {
    let n = required_n(n)?;
    if n == 0 {
        return Ok(Vec::new());
    }
    days_back_range(today, 2 * n, n + 1)
}

/// `last_week`: 7 days from `D - (weekday + 8)` (Monday = 0), i.e. Sunday to Saturday of the week before
/// the one that ended on the Sunday just past.
fn last_week(today: NaiveDate, _n: Option<u32>) -> Result<Vec<NaiveDate>> {
    let start = days_before(today, u64::from(today.weekday().num_days_from_monday()) + 8)?;
    (0..7)
        .map(|offset| {
            start.checked_add_days(Days::new(offset)).ok_or_else(|| {
                Error::invalid_job(PERIOD_PATH, "last week is out of the calendar's range")
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("a valid test date")
    }

    fn dates(period: &str, today: NaiveDate) -> Vec<String> {
        PeriodRegistry::default()
            .date_strings(period, today)
            .expect("a known period")
    }

    fn error_message(period: &str) -> String {
        match PeriodRegistry::default().dates(period, day(2019, 1, 30)) {
            Err(Error::InvalidJob { path, message }) => {
                assert_eq!(path, "period");
                message
            }
            other => panic!("expected InvalidJob for {period}, got {other:?}"),
        }
    }

    #[test]
    fn today_and_yesterday_are_single_dates() {
        assert_eq!(dates("today", day(2019, 4, 10)), ["2019-04-10"]);
        assert_eq!(dates("yesterday", day(2019, 4, 11)), ["2019-04-10"]);
        assert_eq!(dates("yesterday", day(2024, 3, 1)), ["2024-02-29"]);
    }

    #[test]
    fn n_days_back_is_one_date_n_days_ago() {
        let today = day(2019, 1, 30);
        assert_eq!(dates("1_days_back", today), ["2019-01-29"]);
        assert_eq!(dates("7_days_back", today), ["2019-01-23"]);
        assert_eq!(dates("30_days_back", today), ["2018-12-31"]);
        assert_eq!(dates("0_days_back", today), ["2019-01-30"]);
    }

    #[test]
    fn last_n_days_ascend_and_exclude_today() {
        let today = day(2019, 1, 30);
        assert_eq!(
            dates("last_3_days", today),
            ["2019-01-27", "2019-01-28", "2019-01-29"]
        );
        assert_eq!(dates("last_5_days", today).len(), 5);
        assert_eq!(
            dates("last_05_days", today).len(),
            5,
            "leading zeros as int() reads them"
        );
        assert!(dates("last_0_days", today).is_empty());
    }

    #[test]
    fn previous_n_days_are_the_n_days_before_last_n_days() {
        let today = day(2019, 4, 30);
        assert_eq!(
            dates("previous_2_days", today),
            ["2019-04-26", "2019-04-27"]
        );
        assert_eq!(
            dates("previous_3_days", today),
            ["2019-04-24", "2019-04-25", "2019-04-26"]
        );
    }

    #[test]
    fn last_week_is_sunday_to_saturday_of_the_week_before_last() {
        let expected = [
            "2026-11-15",
            "2026-11-16",
            "2026-11-17",
            "2026-11-18",
            "2026-11-19",
            "2026-11-20",
            "2026-11-21",
        ];
        for d in 23..=29 {
            assert_eq!(
                dates("last_week", day(2026, 11, d)),
                expected,
                "today = 2026-11-{d}"
            );
        }
        assert_eq!(dates("last_week", day(2026, 11, 30))[0], "2026-11-22");
        // sosw 0.7's own unit test: Tuesday 2019-04-30.
        assert_eq!(dates("last_week", day(2019, 4, 30))[0], "2019-04-21");
        assert_eq!(dates("last_week", day(2019, 4, 30))[6], "2019-04-27");
    }

    #[test]
    fn unknown_period_lists_the_known_patterns() {
        let message = error_message("putin_the_best");
        assert!(
            message.contains("unknown period `putin_the_best`"),
            "{message}"
        );
        for pattern in ["`last_N_days`", "`N_days_back`", "`today`", "`last_week`"] {
            assert!(message.contains(pattern), "{message}");
        }
    }

    #[test]
    fn trailing_text_is_rejected_where_sosw_matched_a_prefix() {
        let message = error_message("last_3_days_please");
        assert!(
            message.contains("text after the period `last_N_days`"),
            "{message}"
        );
        assert!(error_message("todays").contains("unknown period"));
        assert!(error_message("last__days").contains("unknown period"));
    }

    #[test]
    fn oversized_numbers_are_rejected_before_allocating() {
        assert!(error_message("last_99999999999_days").contains("at most 36525"));
        assert!(error_message("last_36526_days").contains("at most 36525"));
        assert_eq!(dates("last_36525_days", day(2026, 1, 1)).len(), 36_525);
    }

    #[test]
    fn dates_out_of_the_calendar_are_errors_not_panics() {
        let result = PeriodRegistry::default().dates("last_week", NaiveDate::MIN);
        assert!(
            matches!(result, Err(Error::InvalidJob { .. })),
            "{result:?}"
        );
    }

    fn june_days(_today: NaiveDate, _n: Option<u32>) -> Result<Vec<NaiveDate>> {
        Ok(vec![day(2020, 6, 24), day(2020, 6, 23), day(2020, 6, 22)])
    }

    fn n_mondays(today: NaiveDate, n: Option<u32>) -> Result<Vec<NaiveDate>> {
        Ok(vec![today; n.unwrap_or(0) as usize])
    }

    #[test]
    fn custom_patterns_are_registered_in_code() {
        let mut periods = PeriodRegistry::default();
        periods
            .register("get_june_days", june_days)
            .and_then(|p| p.register("last_N_mondays", n_mondays))
            .expect("distinct patterns register");
        assert_eq!(
            periods
                .date_strings("get_june_days", day(2026, 1, 1))
                .expect("registered"),
            ["2020-06-24", "2020-06-23", "2020-06-22"]
        );
        assert_eq!(
            periods
                .dates("last_2_mondays", day(2026, 1, 5))
                .expect("registered")
                .len(),
            2
        );
        assert_eq!(periods.patterns().count(), 8);
    }

    #[test]
    fn overlapping_or_malformed_patterns_are_refused() {
        let mut periods = PeriodRegistry::default();
        for bad in ["last_N_days", "last_7_days", "N_N", "", "a__b", "_a"] {
            assert!(periods.register(bad, june_days).is_err(), "{bad}");
        }
        assert!(periods.register("last_N_weeks", june_days).is_ok());
    }

    #[test]
    fn custom_handlers_cannot_exceed_the_date_limit() {
        fn huge(today: NaiveDate, _n: Option<u32>) -> Result<Vec<NaiveDate>> {
            Ok(vec![today; MAX_PERIOD_DAYS as usize + 1])
        }
        let mut periods = PeriodRegistry::empty();
        periods.register("everything", huge).expect("valid pattern");
        assert!(periods.dates("everything", day(2026, 1, 1)).is_err());
    }
}
