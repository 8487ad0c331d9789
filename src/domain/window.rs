//! The sending window: the hours of the day when messages may go out, in the organisation's time
//! zone (08:00–20:00 in `America/La_Paz` unless configured). A window whose end is earlier than
//! its start crosses midnight (22:00–06:00). `24:00` ends a window at midnight, so `00:00–24:00`
//! is the whole day.

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// Why a window was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// A time is not `HH:MM`.
    #[error("`{0}` is not a time of day (HH:MM)")]
    NotATime(String),
    /// Start and end are the same, which would mean an empty (or full) day.
    #[error("the window starts and ends at the same time; use 00:00-24:00 for the whole day")]
    Empty,
}

/// When messages may go out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendingWindow {
    start: NaiveTime,
    /// Midnight when the window was written to end at `24:00`.
    end: NaiveTime,
    /// `00:00-24:00`: never closed.
    all_day: bool,
    tz: Tz,
}

impl std::fmt::Display for SendingWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let end = if self.end == NaiveTime::MIN {
            "24:00".to_owned()
        } else {
            self.end.format("%H:%M").to_string()
        };
        write!(f, "{}-{end}", self.start.format("%H:%M"))
    }
}

impl SendingWindow {
    /// Reads a window from `HH:MM` times in zone `tz`.
    ///
    /// # Errors
    ///
    /// Fails when a time does not parse or both are equal. `end` may be `24:00` (midnight at
    /// the end of the day); `start` may not.
    pub fn parse(start: &str, end: &str, tz: Tz) -> Result<SendingWindow, WindowError> {
        let time = |s: &str| {
            NaiveTime::parse_from_str(s.trim(), "%H:%M")
                .map_err(|_| WindowError::NotATime(s.to_owned()))
        };
        let until_midnight = end.trim() == "24:00";
        let start = time(start)?;
        let end = if until_midnight {
            NaiveTime::MIN
        } else {
            time(end)?
        };
        let all_day = until_midnight && start == NaiveTime::MIN;
        if start == end && !all_day {
            return Err(WindowError::Empty);
        }
        Ok(SendingWindow {
            start,
            end,
            all_day,
            tz,
        })
    }

    /// The time zone the window's hours are in.
    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// Reads `HH:MM-HH:MM` in zone `tz`.
    ///
    /// # Errors
    ///
    /// Fails when the text is not two times or both are equal.
    pub fn parse_range(range: &str, tz: Tz) -> Result<SendingWindow, WindowError> {
        let (start, end) = range
            .split_once('-')
            .ok_or_else(|| WindowError::NotATime(range.to_owned()))?;
        SendingWindow::parse(start, end, tz)
    }

    /// Whether `at` falls inside the window.
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        let local = at.with_timezone(&self.tz).time();
        if self.all_day {
            true
        } else if self.start < self.end {
            self.start <= local && local < self.end
        } else {
            local >= self.start || local < self.end
        }
    }

    /// `at` itself when it is inside the window, otherwise the next moment the window opens.
    pub fn next_open(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        if self.contains(at) {
            return at;
        }
        let local = at.with_timezone(&self.tz);
        let today = local.date_naive();
        // The opening today if it is still ahead, otherwise tomorrow's (or the day after, should
        // a daylight-saving jump swallow an opening).
        (0..3)
            .filter_map(|days| {
                let day = today + Duration::days(days);
                self.tz
                    .from_local_datetime(&day.and_time(self.start))
                    .earliest()
                    .map(|t| t.with_timezone(&Utc))
            })
            .find(|open| *open > at)
            .unwrap_or(at + Duration::hours(24))
    }

    /// When the window that contains `at` closes; `None` when `at` is outside it, or the
    /// window is the whole day.
    pub fn closes_at(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.all_day || !self.contains(at) {
            return None;
        }
        let local = at.with_timezone(&self.tz);
        let today = local.date_naive();
        (0..3).find_map(|days| {
            let close = self
                .tz
                .from_local_datetime(&(today + Duration::days(days)).and_time(self.end))
                .earliest()?
                .with_timezone(&Utc);
            (close > at).then_some(close)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LA_PAZ: Tz = chrono_tz::America::La_Paz;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_day_window_holds_its_hours_in_the_local_zone() {
        let window = SendingWindow::parse("08:00", "20:00", LA_PAZ).unwrap();
        // 12:00 UTC is 08:00 in La Paz (UTC-4): the window has just opened.
        assert!(window.contains(utc("2026-12-03T12:00:00Z")));
        assert!(!window.contains(utc("2026-12-03T11:59:59Z")));
        assert!(window.contains(utc("2026-12-03T23:59:59Z")));
        assert!(!window.contains(utc("2026-12-04T00:00:00Z")));
    }

    #[test]
    fn after_closing_the_next_opening_is_tomorrow_morning() {
        let window = SendingWindow::parse("08:00", "20:00", LA_PAZ).unwrap();
        assert_eq!(
            window.next_open(utc("2026-12-04T01:00:00Z")),
            utc("2026-12-04T12:00:00Z")
        );
        assert_eq!(
            window.next_open(utc("2026-12-03T09:00:00Z")),
            utc("2026-12-03T12:00:00Z")
        );
        let inside = utc("2026-12-03T15:00:00Z");
        assert_eq!(window.next_open(inside), inside);
        assert_eq!(window.closes_at(inside), Some(utc("2026-12-04T00:00:00Z")));
    }

    #[test]
    fn a_window_may_cross_midnight() {
        let window = SendingWindow::parse("22:00", "06:00", LA_PAZ).unwrap();
        assert!(window.contains(utc("2026-12-04T03:00:00Z"))); // 23:00 local
        assert!(window.contains(utc("2026-12-04T09:00:00Z"))); // 05:00 local
        assert!(!window.contains(utc("2026-12-04T12:00:00Z"))); // 08:00 local
        assert_eq!(
            window.next_open(utc("2026-12-04T12:00:00Z")),
            utc("2026-12-05T02:00:00Z")
        );
        assert_eq!(
            window.closes_at(utc("2026-12-04T03:00:00Z")),
            Some(utc("2026-12-04T10:00:00Z"))
        );
    }

    #[test]
    fn a_window_is_shown_as_it_is_written() {
        let window = SendingWindow::parse("08:00", "20:30", LA_PAZ).unwrap();
        assert_eq!(window.to_string(), "08:00-20:30");
    }

    #[test]
    fn twenty_four_hundred_ends_the_day() {
        let whole = SendingWindow::parse_range("00:00-24:00", LA_PAZ).unwrap();
        for hour in 0..24 {
            assert!(whole.contains(utc(&format!("2026-12-03T{hour:02}:59:59Z"))));
        }
        assert_eq!(whole.closes_at(utc("2026-12-03T12:00:00Z")), None);
        assert_eq!(whole.to_string(), "00:00-24:00");

        let evening = SendingWindow::parse_range("18:00-24:00", LA_PAZ).unwrap();
        assert!(evening.contains(utc("2026-12-04T03:59:59Z"))); // 23:59:59 local
        assert!(!evening.contains(utc("2026-12-04T04:00:00Z"))); // midnight local
        assert_eq!(evening.to_string(), "18:00-24:00");
        assert!(SendingWindow::parse_range("24:00-08:00", LA_PAZ).is_err());
    }

    #[test]
    fn bad_windows_are_refused() {
        assert_eq!(
            SendingWindow::parse("8am", "20:00", LA_PAZ),
            Err(WindowError::NotATime("8am".into()))
        );
        assert_eq!(
            SendingWindow::parse("08:00", "08:00", LA_PAZ),
            Err(WindowError::Empty)
        );
    }

    #[test]
    fn daylight_saving_zones_still_open_every_day() {
        // Santiago moves its clocks; the window opens at 08:00 local on either side of a change.
        let window = SendingWindow::parse("08:00", "20:00", chrono_tz::America::Santiago).unwrap();
        let mut at = utc("2026-09-01T00:00:00Z");
        for _ in 0..60 {
            let open = window.next_open(at);
            assert!(open > at || window.contains(at));
            let local = open.with_timezone(&chrono_tz::America::Santiago).time();
            assert!(window.contains(open), "{open} ({local}) should be inside");
            at += Duration::days(1);
        }
    }
}
