//! The event log: one file a day under `<data_dir>/logs`, one JSON object a line.
//!
//! It records what an admin wants to read back later (start and stop, sign-ins, changes to
//! users, keys and settings, errors), separately from the diagnostic `tracing` output. Days are
//! counted in the configured time zone, so "today's log" is the organisation's today.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono_tz::Tz;
use serde_json::{Map, Value, json};

/// Why the event log could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum EventLogError {
    /// A file of the log could not be read, listed or removed.
    #[error("event log file {path}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
}

/// One day's file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDay {
    /// The day, `YYYY-MM-DD`.
    pub day: String,
    /// The file's size in bytes.
    pub size_bytes: u64,
}

/// The daily event log.
#[derive(Debug)]
pub struct EventLog {
    dir: PathBuf,
    tz: Tz,
    write: Mutex<()>,
}

impl EventLog {
    /// A log in `dir` (created when missing) that counts days in `tz`.
    ///
    /// # Errors
    ///
    /// Fails when the folder cannot be created.
    pub fn open(dir: &Path, tz: Tz) -> Result<EventLog, EventLogError> {
        fs::create_dir_all(dir).map_err(|source| EventLogError::Io {
            path: dir.to_owned(),
            source,
        })?;
        Ok(EventLog {
            dir: dir.to_owned(),
            tz,
            write: Mutex::new(()),
        })
    }

    /// Appends an event. `actor` is who did it; `detail` holds further fields, which must not
    /// include secrets or message texts. A failure to write is reported through `tracing`
    /// rather than to the caller: losing a log line must not fail the request that caused it.
    pub fn record(&self, event: &str, actor: Option<&str>, detail: Value) {
        let now = chrono::Utc::now().with_timezone(&self.tz);
        let mut entry = Map::new();
        entry.insert(
            "time".into(),
            json!(now.to_rfc3339_opts(chrono::SecondsFormat::Millis, false)),
        );
        entry.insert("event".into(), json!(event));
        if let Some(actor) = actor {
            entry.insert("actor".into(), json!(actor));
        }
        if !detail.is_null() {
            entry.insert("detail".into(), detail);
        }
        let mut line = Value::Object(entry).to_string();
        line.push('\n');

        let path = self.dir.join(format!("{}.jsonl", now.format("%Y-%m-%d")));
        let _guard = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let written = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| file.write_all(line.as_bytes()));
        if let Err(err) = written {
            tracing::warn!(error = %err, path = %path.display(), "event log line not written");
        }
    }

    /// The days that have a file, newest first.
    ///
    /// # Errors
    ///
    /// Fails when the folder cannot be listed.
    pub fn days(&self) -> Result<Vec<LogDay>, EventLogError> {
        let io = |source| EventLogError::Io {
            path: self.dir.clone(),
            source,
        };
        let mut days = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(day) = name.strip_suffix(".jsonl").filter(|d| is_day(d)) {
                days.push(LogDay {
                    day: day.to_owned(),
                    size_bytes: entry.metadata().map_err(io)?.len(),
                });
            }
        }
        days.sort_by(|a, b| b.day.cmp(&a.day));
        Ok(days)
    }

    /// The entries of one day, oldest first, or `None` when that day has no file. Lines that
    /// are not JSON (a torn last line after a crash) are skipped.
    ///
    /// # Errors
    ///
    /// Fails when the file exists but cannot be read.
    pub fn entries(&self, day: &str) -> Result<Option<Vec<Value>>, EventLogError> {
        if !is_day(day) {
            return Ok(None);
        }
        let path = self.dir.join(format!("{day}.jsonl"));
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(EventLogError::Io { path, source }),
        };
        Ok(Some(
            text.lines()
                .filter_map(|line| serde_json::from_str(line).ok())
                .collect(),
        ))
    }

    /// Removes every day's file and returns how many there were.
    ///
    /// # Errors
    ///
    /// Fails when a file cannot be removed.
    pub fn clear(&self) -> Result<usize, EventLogError> {
        let _guard = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let days = self.days()?;
        for day in &days {
            let path = self.dir.join(format!("{}.jsonl", day.day));
            fs::remove_file(&path).map_err(|source| EventLogError::Io { path, source })?;
        }
        Ok(days.len())
    }
}

/// Whether `s` has the shape `YYYY-MM-DD` and is a real date.
pub fn is_day(s: &str) -> bool {
    s.len() == 10 && chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_read_back_by_day_and_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(dir.path(), chrono_tz::America::La_Paz).unwrap();
        log.record("auth.login", Some("ana"), json!({"ip": "127.0.0.1"}));
        log.record("service.stopped", None, Value::Null);

        let days = log.days().unwrap();
        assert_eq!(days.len(), 1);
        let entries = log.entries(&days[0].day).unwrap().unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0]["event"], "auth.login");
        assert_eq!(entries[0]["actor"], "ana");
        assert_eq!(entries[0]["detail"]["ip"], "127.0.0.1");
        assert!(entries[1].get("actor").is_none());

        assert_eq!(log.clear().unwrap(), 1);
        assert!(log.days().unwrap().is_empty());
        assert!(log.entries(&days[0].day).unwrap().is_none());
    }

    #[test]
    fn only_real_dates_name_a_day() {
        assert!(is_day("2026-12-03"));
        assert!(!is_day("2026-13-03"));
        assert!(!is_day("../../etc"));
        assert!(!is_day("2026-1-3"));
    }
}
