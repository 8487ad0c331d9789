//! Times on the wire: stored in UTC milliseconds, shown in the configured time zone as RFC 3339,
//! and read either with an explicit offset or as a local time in that zone.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// An RFC 3339 time in `tz` for a stored time in ms.
pub fn show(ms: i64, tz: Tz) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .with_timezone(&tz)
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
}

/// [`show`] for optional times.
pub fn show_opt(ms: Option<i64>, tz: Tz) -> Option<String> {
    ms.map(|ms| show(ms, tz))
}

/// Reads a time given with an offset (`2026-12-03T09:00:00-04:00`, `…Z`) or as a local time in
/// `tz` (`2026-12-03T09:00:00`, `2026-12-03 09:00`), into ms.
pub fn parse_time(input: &str, tz: Tz) -> Option<i64> {
    let input = input.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(input) {
        return Some(t.timestamp_millis());
    }
    [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|format| NaiveDateTime::parse_from_str(input, format).ok())
    .and_then(|naive| local_ms(naive, tz))
}

/// Reads a time as [`parse_time`] does, or a bare date (`2026-12-03`) as its local midnight.
pub fn parse_time_or_date(input: &str, tz: Tz) -> Option<i64> {
    parse_time(input, tz).or_else(|| {
        NaiveDate::parse_from_str(input.trim(), "%Y-%m-%d")
            .ok()
            .and_then(|date| local_ms(date.and_hms_opt(0, 0, 0)?, tz))
    })
}

/// The start of the current month and of the next one in `tz`, in ms.
pub fn current_month(tz: Tz) -> (i64, i64) {
    month_of(Utc::now().timestamp_millis(), tz)
}

/// The start of the month that holds `ms` and of the next one in `tz`, in ms.
pub fn month_of(ms: i64, tz: Tz) -> (i64, i64) {
    let today = DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .with_timezone(&tz)
        .date_naive();
    let first = today.with_day(1).unwrap_or(today);
    let next = if first.month() == 12 {
        NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
    }
    .unwrap_or(first);
    let at_midnight = |d: NaiveDate| d.and_hms_opt(0, 0, 0).and_then(|n| local_ms(n, tz));
    (
        at_midnight(first).unwrap_or(0),
        at_midnight(next).unwrap_or(i64::MAX),
    )
}

/// A local time in `tz` as ms; in a daylight-saving gap the later instant is taken.
fn local_ms(naive: NaiveDateTime, tz: Tz) -> Option<i64> {
    tz.from_local_datetime(&naive)
        .earliest()
        .or_else(|| {
            let later = naive.checked_add_signed(chrono::Duration::hours(1))?;
            tz.from_local_datetime(&later).earliest()
        })
        .map(|t| t.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LA_PAZ: Tz = chrono_tz::America::La_Paz;

    #[test]
    fn times_are_shown_in_the_configured_zone() {
        assert_eq!(show(0, LA_PAZ), "1969-12-31T20:00:00.000-04:00");
    }

    #[test]
    fn local_times_and_offsets_read_alike() {
        let with_offset = parse_time("2026-12-03T09:00:00-04:00", LA_PAZ).unwrap();
        let local = parse_time("2026-12-03T09:00:00", LA_PAZ).unwrap();
        let utc = parse_time("2026-12-03T13:00:00Z", LA_PAZ).unwrap();
        assert_eq!(with_offset, local);
        assert_eq!(with_offset, utc);
        assert!(parse_time("tomorrow", LA_PAZ).is_none());
    }

    #[test]
    fn times_at_the_edge_of_the_calendar_do_not_panic() {
        assert!(parse_time("+262143-12-31T23:30:00", LA_PAZ).is_none());
        assert!(parse_time_or_date("+262143-12-31", LA_PAZ).is_none());
    }

    #[test]
    fn a_bare_date_is_local_midnight() {
        let midnight = parse_time_or_date("2026-12-03", LA_PAZ).unwrap();
        assert_eq!(show(midnight, LA_PAZ), "2026-12-03T00:00:00.000-04:00");
    }

    #[test]
    fn the_current_month_spans_from_the_first_to_the_next_first() {
        let (from, until) = current_month(LA_PAZ);
        assert!(show(from, LA_PAZ).contains("-01T00:00:00.000"));
        assert!(show(until, LA_PAZ).contains("-01T00:00:00.000"));
        let now = Utc::now().timestamp_millis();
        assert!(from <= now && now < until);
    }
}
