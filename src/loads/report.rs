//! The words of load reports: one after each load and a summary of the day, in Spanish by
//! default or in English, as the organisations' staff read them. Mail sends these texts; the API
//! shows them.

use std::fmt::Write;

use chrono::NaiveDate;
use chrono_tz::Tz;

use crate::domain::{Language, MessageStatus};
use crate::store::{LoadRecord, LoadRowRecord};

/// Row issues listed one by one in a report; the rest are counted.
const LISTED: usize = 500;

fn kind_words(kind: &str, lang: Language) -> &'static str {
    match kind {
        "excel" => lang.pick("Carga de Excel", "Excel load"),
        "manual" => lang.pick("Carga manual del ERP", "Manual ERP load"),
        "automatic" => lang.pick("Carga automática del ERP", "Automatic ERP load"),
        _ => lang.pick("Carga", "Load"),
    }
}

fn status_words(status: &str, lang: Language) -> &'static str {
    match status {
        "running" => lang.pick("en curso", "running"),
        "committed" => lang.pick("completada", "committed"),
        "failed" => lang.pick("fallida", "failed"),
        "deleted" => lang.pick("eliminada", "deleted"),
        _ => lang.pick("desconocido", "unknown"),
    }
}

/// The subject and text of one load's report.
pub fn load_report(
    load: &LoadRecord,
    rows: &[LoadRowRecord],
    statuses: &[(MessageStatus, i64)],
    tz: Tz,
    lang: Language,
) -> (String, String) {
    let w = |es, en| lang.pick(es, en);
    let subject = format!(
        "{} {}: {} {}, {} {}",
        kind_words(&load.kind, lang),
        status_words(&load.status, lang),
        load.messages_loaded,
        w("mensajes", "messages"),
        load.rows_failed,
        w("filas con error", "rows with errors"),
    );
    let mut text = String::new();
    let _ = writeln!(text, "{}", kind_words(&load.kind, lang));
    let _ = writeln!(text, "{}: {}", w("Identificador", "Id"), load.id);
    let _ = writeln!(
        text,
        "{}: {}",
        w("Estado", "Status"),
        status_words(&load.status, lang)
    );
    let _ = writeln!(
        text,
        "{}: {} {} {}",
        w("Iniciada", "Started"),
        local(load.created_at, tz),
        w("por", "by"),
        load.created_by
    );
    if let Some(file) = &load.file_name {
        let _ = writeln!(text, "{}: {file}", w("Archivo", "File"));
    }
    if let Some(day) = &load.reference_date {
        let _ = writeln!(
            text,
            "{}: {day}",
            w("Fecha de referencia", "Reference date")
        );
    }
    let _ = writeln!(
        text,
        "{}: {}",
        w("Fecha de envío", "Send date"),
        load.send_date
    );
    if let Some(error) = &load.error {
        let _ = writeln!(text, "{}: {error}", w("Motivo del fallo", "Why it failed"));
    }
    let _ = writeln!(text);
    let counts = [
        (w("Filas procesadas", "Rows processed"), load.rows_processed),
        (
            w("Mensajes cargados", "Messages loaded"),
            load.messages_loaded,
        ),
        (
            w(
                "Filas omitidas (ya cargadas)",
                "Rows skipped (loaded before)",
            ),
            load.rows_skipped,
        ),
        (w("Filas con error", "Rows with errors"), load.rows_failed),
    ];
    for (label, n) in counts {
        let _ = writeln!(text, "{label}: {n}");
    }
    if !statuses.is_empty() {
        let parts: Vec<String> = statuses
            .iter()
            .map(|(s, n)| format!("{} {n}", s.as_str()))
            .collect();
        let _ = writeln!(
            text,
            "{}: {}",
            w("Mensajes por estado", "Messages by status"),
            parts.join(", ")
        );
    }
    let errors: Vec<&LoadRowRecord> = rows.iter().filter(|r| !r.skipped).collect();
    if !errors.is_empty() {
        let _ = writeln!(text);
        let _ = writeln!(text, "{}:", w("Filas con error", "Rows with errors"));
        for row in errors.iter().take(LISTED) {
            let column = row
                .column
                .as_deref()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default();
            let _ = writeln!(
                text,
                "  {} {}{column}: {}",
                w("fila", "row"),
                row.row,
                row.reason
            );
        }
        if errors.len() > LISTED {
            let _ = writeln!(
                text,
                "  … {} {} {}",
                w("y", "and"),
                errors.len() - LISTED,
                w("filas más", "more rows")
            );
        }
    }
    (subject, text)
}

/// The subject and text of the summary of a day's loads.
pub fn daily_summary(
    day: NaiveDate,
    loads: &[LoadRecord],
    tz: Tz,
    lang: Language,
) -> (String, String) {
    let w = |es, en| lang.pick(es, en);
    let committed: Vec<&LoadRecord> = loads.iter().filter(|l| l.status != "failed").collect();
    let failed = loads.len() - committed.len();
    let sum = |f: fn(&LoadRecord) -> i64| committed.iter().map(|l| f(l)).sum::<i64>();
    let loaded = sum(|l| l.messages_loaded);
    let date = day.format("%d/%m/%Y");
    let subject = format!(
        "{} {date}: {} {}, {loaded} {}, {failed} {}",
        w("Resumen de cargas del", "Loads of"),
        loads.len(),
        w("cargas", "loads"),
        w("mensajes", "messages"),
        w("fallidas", "failed"),
    );
    let mut text = String::new();
    let _ = writeln!(text, "{} {date}", w("Cargas del", "Loads of"));
    let _ = writeln!(
        text,
        "{}: {} ({failed} {})",
        w("Cargas", "Loads"),
        loads.len(),
        w("fallidas", "failed")
    );
    let _ = writeln!(
        text,
        "{}: {loaded}",
        w("Mensajes cargados", "Messages loaded")
    );
    let _ = writeln!(
        text,
        "{}: {}",
        w("Filas omitidas", "Rows skipped"),
        sum(|l| l.rows_skipped)
    );
    let _ = writeln!(
        text,
        "{}: {}",
        w("Filas con error", "Rows with errors"),
        sum(|l| l.rows_failed)
    );
    let _ = writeln!(text);
    for load in loads {
        let _ = writeln!(
            text,
            "{} {} ({}), {}: {} {}, {} {}, {} {}{}",
            local(load.created_at, tz),
            kind_words(&load.kind, lang),
            load.id,
            status_words(&load.status, lang),
            load.messages_loaded,
            w("mensajes", "messages"),
            load.rows_skipped,
            w("omitidas", "skipped"),
            load.rows_failed,
            w("con error", "with errors"),
            load.error
                .as_deref()
                .map(|e| format!("; {e}"))
                .unwrap_or_default()
        );
    }
    (subject, text)
}

/// The first and last millisecond (exclusive) of `day` in `tz`.
pub fn day_bounds(day: NaiveDate, tz: Tz) -> (i64, i64) {
    let start = |d: NaiveDate| super::start_of_day(d, tz).timestamp_millis();
    (start(day), start(day.succ_opt().unwrap_or(day)))
}

/// A time as people read it in reports and mails: `dd/mm/yyyy HH:MM` in `tz`.
pub(crate) fn local(ms: i64, tz: Tz) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.with_timezone(&tz).format("%d/%m/%Y %H:%M").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(status: &str, loaded: i64, failed: i64) -> LoadRecord {
        LoadRecord {
            id: "L".into(),
            kind: "automatic".into(),
            status: status.into(),
            template_id: None,
            file_name: None,
            reference_date: Some("2026-12-04".into()),
            send_date: "2026-12-04".into(),
            created_by: "schedule".into(),
            created_at: 1_796_385_600_000,
            finished_at: None,
            rows_processed: loaded + failed,
            messages_loaded: loaded,
            rows_skipped: 0,
            rows_failed: failed,
            error: (status == "failed").then(|| "source.url: unreachable".into()),
            deleted_at: None,
            deleted_by: None,
            report_sent_at: None,
        }
    }

    #[test]
    fn a_report_lists_its_row_errors() {
        let rows = [LoadRowRecord {
            row: 7,
            skipped: false,
            column: Some("celular".into()),
            reason: "no phone number".into(),
        }];
        let tz: Tz = "America/La_Paz".parse().unwrap();
        let (subject, text) = load_report(&load("committed", 9, 1), &rows, &[], tz, Language::Es);
        assert_eq!(
            subject,
            "Carga automática del ERP completada: 9 mensajes, 1 filas con error"
        );
        assert!(text.contains("fila 7 (celular): no phone number"), "{text}");
        let (subject, text) = load_report(&load("committed", 9, 1), &rows, &[], tz, Language::En);
        assert_eq!(
            subject,
            "Automatic ERP load committed: 9 messages, 1 rows with errors"
        );
        assert!(text.contains("row 7 (celular): no phone number"), "{text}");
    }

    #[test]
    fn a_summary_counts_failed_loads_apart() {
        let tz: Tz = "America/La_Paz".parse().unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap();
        let loads = [load("committed", 10, 2), load("failed", 0, 0)];
        let (subject, text) = daily_summary(day, &loads, tz, Language::Es);
        assert_eq!(
            subject,
            "Resumen de cargas del 04/12/2026: 2 cargas, 10 mensajes, 1 fallidas"
        );
        let (subject, _) = daily_summary(day, &loads, tz, Language::En);
        assert_eq!(
            subject,
            "Loads of 04/12/2026: 2 loads, 10 messages, 1 failed"
        );
        assert!(text.contains("source.url: unreachable"));
        let (from, until) = day_bounds(day, tz);
        assert_eq!(until - from, 86_400_000);
    }

    #[test]
    fn a_day_whose_midnight_is_skipped_starts_after_the_skip() {
        // Santiago moves its clocks from 00:00 to 01:00 on 2026-09-06.
        let tz: Tz = "America/Santiago".parse().unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 9, 6).unwrap();
        let (from, until) = day_bounds(day, tz);
        assert_eq!(until - from, 23 * 3_600_000);
        let start = chrono::DateTime::from_timestamp_millis(from).unwrap();
        assert_eq!(
            start.with_timezone(&tz).to_rfc3339(),
            "2026-09-06T01:00:00-03:00"
        );
        let (_, before_until) = day_bounds(day.pred_opt().unwrap(), tz);
        assert_eq!(before_until, from);
    }
}
