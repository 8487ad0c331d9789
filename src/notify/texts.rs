//! What a mail about an event says, in Spanish or English, as plain text and as simple HTML.
//! Each mail is first a [`Doc`] (a title, labelled fields, blocks of text), so the two parts
//! always say the same thing.

use std::fmt::Write;

use chrono::NaiveDate;
use chrono_tz::Tz;
use serde_json::Value;

use crate::domain::Language;
use crate::loads::report::{self, local};
use crate::store::{EventRecord, Store, StoreError};

/// A mail's content before it is written out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Doc {
    /// The subject, also the heading of the HTML part.
    pub subject: String,
    /// Label and value, one a line.
    pub fields: Vec<(String, String)>,
    /// Heading and text kept as it is (a message, a report).
    pub blocks: Vec<(String, String)>,
    /// The load whose report it carries.
    pub load_id: Option<String>,
}

impl Doc {
    fn field(&mut self, label: &str, value: impl Into<String>) {
        self.fields.push((label.to_owned(), value.into()));
    }

    fn block(&mut self, heading: &str, text: impl Into<String>) {
        self.blocks.push((heading.to_owned(), text.into()));
    }

    /// The plain-text part.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for (label, value) in &self.fields {
            let _ = writeln!(out, "{label}: {value}");
        }
        for (heading, text) in &self.blocks {
            let _ = writeln!(out);
            if !heading.is_empty() {
                let _ = writeln!(out, "{heading}:");
            }
            let _ = writeln!(out, "{}", text.trim_end());
        }
        let _ = writeln!(out, "\n-- \nPregonero");
        out
    }

    /// The HTML part.
    pub fn html(&self) -> String {
        let mut out = String::from(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"></head>\
             <body style=\"font-family: sans-serif\">",
        );
        let _ = write!(out, "<h2>{}</h2><table>", escape(&self.subject));
        for (label, value) in &self.fields {
            let _ = write!(
                out,
                "<tr><th align=\"left\" valign=\"top\">{}</th><td>{}</td></tr>",
                escape(label),
                escape(value)
            );
        }
        out.push_str("</table>");
        for (heading, text) in &self.blocks {
            if !heading.is_empty() {
                let _ = write!(out, "<h3>{}</h3>", escape(heading));
            }
            let _ = write!(
                out,
                "<pre style=\"white-space: pre-wrap\">{}</pre>",
                escape(text.trim_end())
            );
        }
        out.push_str("<p style=\"color: #777\">Pregonero</p></body></html>");
        out
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn str_of<'a>(data: &'a Value, key: &str) -> &'a str {
    data[key].as_str().unwrap_or("")
}

/// Writes the mail about `event`, reading what it refers to (the last message sent to a number,
/// a load and its rows) as it is now.
///
/// # Errors
///
/// Fails when the database does.
pub async fn compose(
    store: &Store,
    event: &EventRecord,
    tz: Tz,
    lang: Language,
) -> Result<Doc, StoreError> {
    let data: Value = serde_json::from_str(&event.payload).unwrap_or(Value::Null);
    let at = local(event.at, tz);
    let mut doc = Doc::default();
    let kind = event.kind.as_str();
    match kind {
        "sms.received" | "call.received" => {
            received(&mut doc, store, kind, &data, &at, tz, lang).await?;
        }
        "message.sent" | "message.delivered" | "message.failed" => {
            message(&mut doc, kind, &data, &at, lang);
        }
        "load.finished" => load_finished(&mut doc, store, &data, tz, lang).await?,
        "loads.summary" => {
            let day = str_of(&data, "date")
                .parse::<NaiveDate>()
                .unwrap_or_default();
            let (from, until) = report::day_bounds(day, tz);
            let loads = store.loads_between(from, until).await?;
            let (subject, text) = report::daily_summary(day, &loads, tz, lang);
            doc.subject = subject;
            doc.block("", text);
        }
        "balance.checked" | "balance.low" => balance(&mut doc, kind, &data, &at, lang),
        "modem.connected" | "modem.lost" => modem(&mut doc, kind, &data, &at, lang),
        other => {
            doc.subject = format!("Pregonero: {other}");
            doc.field(lang.pick("Hora", "Time"), at);
            doc.block("", serde_json::to_string_pretty(&data).unwrap_or_default());
        }
    }
    Ok(doc)
}

/// A received text or call: who, when, what, and the last message sent to that number.
async fn received(
    doc: &mut Doc,
    store: &Store,
    kind: &str,
    data: &Value,
    at: &str,
    tz: Tz,
    lang: Language,
) -> Result<(), StoreError> {
    let w = |es: &'static str, en: &'static str| lang.pick(es, en);
    let from = str_of(data, "from");
    let call = kind == "call.received";
    doc.subject = if call {
        format!("{} {from}", w("Llamada recibida de", "Call from"))
    } else {
        format!("{} {from}", w("SMS recibido de", "Text from"))
    };
    doc.field(w("De", "From"), from);
    doc.field(w("Recibido", "Received"), at);
    doc.field(w("Módem", "Modem"), str_of(data, "modem_id"));
    if !call {
        let mut text = str_of(data, "text").to_owned();
        if data["complete"] == false {
            text.push_str(w(
                "\n(faltan partes de este mensaje)",
                "\n(parts of this text never came)",
            ));
        }
        doc.block(w("Texto", "Text"), text);
    }
    match data["keyword"].as_str() {
        Some("opt_out") => doc.block(
            "",
            w(
                "El remitente pidió no recibir más mensajes: su número quedó en la lista de \
                 exclusión.",
                "The sender asked to get no more messages: the number is now on the \
                 suppression list.",
            ),
        ),
        Some("opt_in") => doc.block(
            "",
            w(
                "El remitente pidió volver a recibir mensajes.",
                "The sender asked to get messages again.",
            ),
        ),
        _ => {}
    }
    let last = match data["last_message_id"].as_i64() {
        Some(id) => store.message(id).await?,
        None => None,
    };
    match last {
        Some(m) => {
            let when = m.sent_at.map(|t| local(t, tz)).unwrap_or_default();
            let heading = format!(
                "{} ({when}, {})",
                w(
                    "Último mensaje enviado a este número",
                    "Last message sent to this number"
                ),
                m.status.as_str()
            );
            doc.block(&heading, m.text);
        }
        None => doc.block(
            "",
            w(
                "No se envió ningún mensaje a este número.",
                "No message was sent to this number.",
            ),
        ),
    }
    Ok(())
}

/// A message sent, delivered or failed.
fn message(doc: &mut Doc, kind: &str, data: &Value, at: &str, lang: Language) {
    let w = |es: &'static str, en: &'static str| lang.pick(es, en);
    let id = data["message_id"].as_i64().unwrap_or_default();
    let to = str_of(data, "to");
    let what = match kind {
        "message.sent" => w("enviado", "sent"),
        "message.delivered" => w("entregado", "delivered"),
        _ => w("fallido", "failed"),
    };
    doc.subject = format!("{} {id} {what}: {to}", w("Mensaje", "Message"));
    doc.field(w("Para", "To"), to);
    doc.field(w("Referencia", "Reference"), str_of(data, "ref"));
    doc.field(w("Módem", "Modem"), str_of(data, "modem_id"));
    doc.field(w("Hora", "Time"), at);
    if let Some(error) = data["error"].as_str() {
        doc.field(w("Error", "Error"), error);
    }
}

/// A load's report.
async fn load_finished(
    doc: &mut Doc,
    store: &Store,
    data: &Value,
    tz: Tz,
    lang: Language,
) -> Result<(), StoreError> {
    let id = str_of(data, "load_id").to_owned();
    match store.load(&id).await? {
        Some(load) => {
            let rows = store.load_rows(&id).await?;
            let statuses = store.load_statuses(&id).await?;
            let (subject, text) = report::load_report(&load, &rows, &statuses, tz, lang);
            doc.subject = subject;
            doc.block("", text);
        }
        None => {
            doc.subject = format!("{} {id}", lang.pick("Carga", "Load"));
            doc.block(
                "",
                lang.pick("La carga ya no existe.", "The load no longer exists."),
            );
        }
    }
    doc.load_id = Some(id);
    Ok(())
}

/// A balance checked, or found low.
fn balance(doc: &mut Doc, kind: &str, data: &Value, at: &str, lang: Language) {
    let w = |es: &'static str, en: &'static str| lang.pick(es, en);
    let modem = str_of(data, "modem_id");
    let shown = match (data["amount"].as_str(), data["currency"].as_str()) {
        (Some(amount), Some(currency)) => format!("{currency} {amount}"),
        (Some(amount), None) => amount.to_owned(),
        _ => w("no se pudo leer", "could not be read").to_owned(),
    };
    doc.subject = if kind == "balance.low" {
        format!("{} {modem}: {shown}", w("Saldo bajo en", "Low balance on"))
    } else {
        format!("{} {modem}: {shown}", w("Saldo de", "Balance of"))
    };
    doc.field(w("Módem", "Modem"), modem);
    doc.field(w("Saldo", "Balance"), shown);
    if let Some(expires) = data["expires"].as_str() {
        doc.field(w("Vence", "Expires"), expires);
    }
    if let Some(threshold) = data["threshold"].as_str() {
        doc.field(w("Umbral", "Threshold"), threshold);
    }
    doc.field(w("Consultado", "Checked"), at);
    if let Some(error) = data["error"].as_str() {
        doc.field(w("Error", "Error"), error);
    }
    doc.block(
        w("Respuesta del operador", "The operator's answer"),
        str_of(data, "text"),
    );
    if data["paused"] == true {
        doc.block(
            "",
            w(
                "El envío por este módem quedó en pausa hasta que el saldo se recupere.",
                "Sending through this modem is paused until the balance is back.",
            ),
        );
    }
}

/// A modem that came up or went away.
fn modem(doc: &mut Doc, kind: &str, data: &Value, at: &str, lang: Language) {
    let w = |es: &'static str, en: &'static str| lang.pick(es, en);
    let modem = str_of(data, "modem_id");
    let state = if kind == "modem.connected" {
        w("conectado", "connected")
    } else {
        w("perdido", "lost")
    };
    doc.subject = format!("{} {modem} {state}", w("Módem", "Modem"));
    doc.field(w("Módem", "Modem"), modem);
    doc.field(w("Hora", "Time"), at);
    if let Some(model) = data["model"].as_str() {
        doc.field(w("Modelo", "Model"), model);
    }
    if let Some(reason) = data["reason"].as_str() {
        doc.field(w("Motivo", "Reason"), reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_parts_say_the_same_and_html_is_escaped() {
        let mut doc = Doc {
            subject: "SMS recibido de +59171234567".into(),
            ..Doc::default()
        };
        doc.field("De", "+59171234567");
        doc.block("Texto", "<b>Ya pagué</b> & gracias");
        let text = doc.text();
        assert!(text.contains("De: +59171234567"));
        assert!(text.contains("Texto:\n<b>Ya pagué</b> & gracias"), "{text}");
        let html = doc.html();
        assert!(
            html.contains("&lt;b&gt;Ya pagué&lt;/b&gt; &amp; gracias"),
            "{html}"
        );
        assert!(!html.contains("<b>Ya"));
        assert!(html.contains("<h2>SMS recibido de +59171234567</h2>"));
    }
}
