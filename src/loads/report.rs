//! The words of load reports: one after each load and a summary of the day, in Spanish, as the
//! organisations' staff read them. Mail sends these texts; the API shows them.

use std::fmt::Write;

use chrono::NaiveDate;
use chrono_tz::Tz;

use crate::domain::MessageStatus;
use crate::store::{LoadRecord, LoadRowRecord};

/// Row issues listed one by one in a report; the rest are counted.
const LISTED: usize = 500;

fn kind_words(kind: &str) -> &'static str {
    match kind {
        "excel" => "Carga de Excel",
        "manual" => "Carga manual del ERP",
        "automatic" => "Carga automática del ERP",
        _ => "Carga",
    }
}

fn status_words(status: &str) -> &'static str {
    match status {
        "running" => "en curso",
        "committed" => "completada",
        "failed" => "fallida",
        "deleted" => "eliminada",
        _ => "desconocido",
    }
}

/// The subject and text of one load's report.
pub fn load_report(
    load: &LoadRecord,
    rows: &[LoadRowRecord],
    statuses: &[(MessageStatus, i64)],
    tz: Tz,
) -> (String, String) {
    let subject = format!(
        "{} {}: {} mensajes, {} filas con error",
        kind_words(&load.kind),
        status_words(&load.status),
        load.messages_loaded,
        load.rows_failed
    );
    let mut text = String::new();
    let _ = writeln!(text, "{}", kind_words(&load.kind));
    let _ = writeln!(text, "Identificador: {}", load.id);
    let _ = writeln!(text, "Estado: {}", status_words(&load.status));
    let _ = writeln!(
        text,
        "Iniciada: {} por {}",
        local(load.created_at, tz),
        load.created_by
    );
    if let Some(file) = &load.file_name {
        let _ = writeln!(text, "Archivo: {file}");
    }
    if let Some(day) = &load.reference_date {
        let _ = writeln!(text, "Fecha de referencia: {day}");
    }
    let _ = writeln!(text, "Fecha de envío: {}", load.send_date);
    if let Some(error) = &load.error {
        let _ = writeln!(text, "Motivo del fallo: {error}");
    }
    let _ = writeln!(text);
    let _ = writeln!(text, "Filas procesadas: {}", load.rows_processed);
    let _ = writeln!(text, "Mensajes cargados: {}", load.messages_loaded);
    let _ = writeln!(text, "Filas omitidas (ya cargadas): {}", load.rows_skipped);
    let _ = writeln!(text, "Filas con error: {}", load.rows_failed);
    if !statuses.is_empty() {
        let parts: Vec<String> = statuses
            .iter()
            .map(|(s, n)| format!("{} {n}", s.as_str()))
            .collect();
        let _ = writeln!(text, "Mensajes por estado: {}", parts.join(", "));
    }
    let errors: Vec<&LoadRowRecord> = rows.iter().filter(|r| !r.skipped).collect();
    if !errors.is_empty() {
        let _ = writeln!(text);
        let _ = writeln!(text, "Filas con error:");
        for row in errors.iter().take(LISTED) {
            let column = row
                .column
                .as_deref()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default();
            let _ = writeln!(text, "  fila {}{column}: {}", row.row, row.reason);
        }
        if errors.len() > LISTED {
            let _ = writeln!(text, "  … y {} filas más", errors.len() - LISTED);
        }
    }
    (subject, text)
}

/// The subject and text of the summary of a day's loads.
pub fn daily_summary(day: NaiveDate, loads: &[LoadRecord], tz: Tz) -> (String, String) {
    let committed: Vec<&LoadRecord> = loads.iter().filter(|l| l.status != "failed").collect();
    let failed = loads.len() - committed.len();
    let sum = |f: fn(&LoadRecord) -> i64| committed.iter().map(|l| f(l)).sum::<i64>();
    let loaded = sum(|l| l.messages_loaded);
    let subject = format!(
        "Resumen de cargas del {}: {} cargas, {loaded} mensajes, {failed} fallidas",
        day.format("%d/%m/%Y"),
        loads.len()
    );
    let mut text = String::new();
    let _ = writeln!(text, "Cargas del {}", day.format("%d/%m/%Y"));
    let _ = writeln!(text, "Cargas: {} ({failed} fallidas)", loads.len());
    let _ = writeln!(text, "Mensajes cargados: {loaded}");
    let _ = writeln!(text, "Filas omitidas: {}", sum(|l| l.rows_skipped));
    let _ = writeln!(text, "Filas con error: {}", sum(|l| l.rows_failed));
    let _ = writeln!(text);
    for load in loads {
        let _ = writeln!(
            text,
            "{} {} ({}), {}: {} mensajes, {} omitidas, {} con error{}",
            local(load.created_at, tz),
            kind_words(&load.kind),
            load.id,
            status_words(&load.status),
            load.messages_loaded,
            load.rows_skipped,
            load.rows_failed,
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

fn local(ms: i64, tz: Tz) -> String {
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
        let (subject, text) = load_report(&load("committed", 9, 1), &rows, &[], tz);
        assert_eq!(
            subject,
            "Carga automática del ERP completada: 9 mensajes, 1 filas con error"
        );
        assert!(text.contains("fila 7 (celular): no phone number"), "{text}");
    }

    #[test]
    fn a_summary_counts_failed_loads_apart() {
        let tz: Tz = "America/La_Paz".parse().unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap();
        let loads = [load("committed", 10, 2), load("failed", 0, 0)];
        let (subject, text) = daily_summary(day, &loads, tz);
        assert_eq!(
            subject,
            "Resumen de cargas del 04/12/2026: 2 cargas, 10 mensajes, 1 fallidas"
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
