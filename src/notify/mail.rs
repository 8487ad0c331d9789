//! The mail queue's two tasks. The fan-out writes a mail for every event a rule asks for (see
//! [`super::texts`]) and queues it in the transaction that marks the event mailed; the sender
//! takes due mails one at a time and hands them to the SMTP server, retrying with back-off for a
//! day while the server is down or refuses them. A mail is marked sent as soon as the server
//! took it; only a crash in between sends it twice, and then with the same `Message-ID`.

use std::sync::Arc;
use std::time::Duration;

use chrono_tz::Tz;
use tokio::sync::Notify;

use super::email::{self, EmailSettings, MailError, Outgoing};
use super::texts;
use crate::store::{MailOutcome, MailRecord, NewMail, Store, now_ms};

/// How long failed mails are retried before they are marked failed.
pub const GIVE_UP_AFTER_MS: i64 = 24 * 60 * 60 * 1000;

/// The longest wait between two attempts at a mail.
const MAX_WAIT_MS: i64 = 30 * 60 * 1000;

/// How long a claimed mail is kept from other claims: longer than a whole SMTP conversation,
/// even one of twenty recipients at 30 s a step.
const LEASE_MS: i64 = 15 * 60 * 1000;

/// The longest the sender pauses after a failure before it looks at the queue again.
const MAX_PAUSE: Duration = Duration::from_secs(300);

/// Events written into mails in one go at most.
const FAN_OUT_BATCH: u32 = 1_000;

/// Starts the fan-out and the sender; `node` names this node in its claims, and `wake` cuts the
/// sender's waits short.
pub fn spawn(
    store: Store,
    tz: Tz,
    retry_ms: u64,
    node: String,
    wake: Arc<Notify>,
) -> tokio::task::JoinHandle<()> {
    let retry_ms = i64::try_from(retry_ms).unwrap_or(i64::MAX).max(1);
    tokio::spawn(async move {
        let _fan = super::AbortOnDrop(tokio::spawn(fan_out(store.clone(), tz)));
        send(store, retry_ms, node, wake).await;
    })
}

/// Writes mails for new events, as the rules ask.
async fn fan_out(store: Store, tz: Tz) {
    let mut writes = store.watch_writes();
    loop {
        writes.borrow_and_update();
        match fan_out_once(&store, tz).await {
            Ok(0) => super::wait_for_writes(&mut writes).await,
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(error = %err, "events not written into mails; will retry");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// One round of the fan-out; how many events it took.
async fn fan_out_once(store: &Store, tz: Tz) -> Result<usize, crate::store::StoreError> {
    let events = store.unmailed_events(FAN_OUT_BATCH).await?;
    if events.is_empty() {
        return Ok(0);
    }
    let rules: Vec<_> = store
        .mail_rules()
        .await?
        .into_iter()
        .filter(|r| r.enabled)
        .collect();
    let lang = email::language(store).await?;
    let mut mails = Vec::new();
    for event in &events {
        let wanting: Vec<_> = rules.iter().filter(|r| r.wants(&event.kind)).collect();
        if wanting.is_empty() {
            continue;
        }
        let doc = texts::compose(store, event, tz, lang).await?;
        let (text, html) = (doc.text(), doc.html());
        for rule in wanting {
            mails.push(NewMail {
                event_seq: Some(event.seq),
                rule_id: Some(rule.id.clone()),
                kind: event.kind.clone(),
                recipients: rule.recipients.clone(),
                subject: doc.subject.clone(),
                text: text.clone(),
                html: html.clone(),
                load_id: doc.load_id.clone(),
            });
        }
    }
    let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
    let queued = store.queue_mails(&seqs, &mails).await?;
    if queued > 0 {
        tracing::debug!(mails = queued, "mails queued");
    }
    Ok(events.len())
}

/// Sends due mails while email is set up and on. `wake` cuts its waits short: new settings, or
/// a mail an admin asked to retry.
async fn send(store: Store, retry_ms: i64, node: String, wake: Arc<Notify>) {
    let mut writes = store.watch_writes();
    let nap = |length: Duration| {
        let wake = wake.clone();
        async move {
            let _ = tokio::time::timeout(length, wake.notified()).await;
        }
    };
    loop {
        let settings = match EmailSettings::load(&store).await {
            Ok(Some(s)) if s.enabled => s,
            Ok(_) => {
                nap(Duration::from_secs(1)).await;
                continue;
            }
            Err(err) => {
                tracing::warn!(error = %err, "email settings not read; will retry");
                nap(Duration::from_secs(1)).await;
                continue;
            }
        };
        writes.borrow_and_update();
        let mail = match store.claim_mails(1, LEASE_MS, &node).await {
            Ok(mut due) if !due.is_empty() => due.remove(0),
            Ok(_) => {
                // A mail queued here is a write; one due by its retry time waits a second.
                tokio::select! {
                    () = super::wait_for_writes(&mut writes) => {}
                    () = wake.notified() => {}
                }
                continue;
            }
            Err(err) => {
                tracing::warn!(error = %err, "mails not claimed; will retry");
                nap(Duration::from_secs(1)).await;
                continue;
            }
        };
        let pause = attempt(&store, &settings, &mail, retry_ms, &node).await;
        // A server that failed one mail will likely fail the next: the others wait for the
        // retry of this one (five minutes at most) rather than each costing an attempt.
        if let Some(pause) = pause {
            nap(pause.min(MAX_PAUSE)).await;
        }
    }
}

/// Sends one mail and records what came of it; on failure, how long the sender should pause.
async fn attempt(
    store: &Store,
    settings: &EmailSettings,
    mail: &MailRecord,
    retry_ms: i64,
    node: &str,
) -> Option<Duration> {
    let outgoing = Outgoing {
        to: mail.recipients.clone(),
        subject: mail.subject.clone(),
        text: mail.text.clone(),
        html: mail.html.clone(),
        message_id: message_id(mail, settings),
    };
    let result = settings.send(&outgoing).await;
    let now = now_ms();
    let (outcome, error, pause) = match result {
        Ok(_) => {
            tracing::info!(mail.id = mail.id, mail.kind = %mail.kind, "mail sent");
            (MailOutcome::Sent, None, None)
        }
        Err(err) => {
            let error = match &err {
                MailError::Settings { field, reason } => format!("{field}: {reason}"),
                MailError::Smtp(words) | MailError::Refused(words) => words.clone(),
            };
            let refused = matches!(err, MailError::Refused(_));
            match after_failure(mail, now, retry_ms, super::jitter()) {
                _ if refused => {
                    tracing::error!(mail.id = mail.id, error = %error, "mail refused for good");
                    (MailOutcome::Failed, Some(error), None)
                }
                MailOutcome::RetryAt(at) => {
                    tracing::warn!(mail.id = mail.id, error = %error, "mail not sent; will retry");
                    let pause = Duration::from_millis(u64::try_from(at - now).unwrap_or(0));
                    (MailOutcome::RetryAt(at), Some(error), Some(pause))
                }
                outcome => {
                    tracing::error!(mail.id = mail.id, error = %error, "mail failed for good");
                    (outcome, Some(error), None)
                }
            }
        }
    };
    match store
        .record_mail(mail, &outcome, error.as_deref(), node)
        .await
    {
        Ok(true) => {}
        Ok(false) => tracing::warn!(mail.id = mail.id, "mail outcome came after its claim ended"),
        // The lease brings the mail back; sent, it would go once more.
        Err(err) => tracing::error!(mail.id = mail.id, error = %err, "mail outcome not recorded"),
    }
    pause
}

/// What a failed attempt at `mail` leads to: another try after the back-off, or, once it has
/// failed for a day, the end.
fn after_failure(mail: &MailRecord, now: i64, retry_ms: i64, jitter: f64) -> MailOutcome {
    let since = mail.first_failed_at.unwrap_or(now);
    if now - since >= GIVE_UP_AFTER_MS {
        return MailOutcome::Failed;
    }
    MailOutcome::RetryAt(now + super::backoff_ms(retry_ms, mail.attempts, MAX_WAIT_MS, jitter))
}

/// The same `Message-ID` for every attempt at a mail.
fn message_id(mail: &MailRecord, settings: &EmailSettings) -> String {
    let domain = settings
        .from
        .rsplit_once('@')
        .map(|(_, d)| d.trim_end_matches('>').trim())
        .filter(|d| !d.is_empty())
        .unwrap_or("pregonero.invalid");
    format!("<pregonero.{}.{}@{domain}>", mail.id, mail.created_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(attempts: i64, first_failed_at: Option<i64>) -> MailRecord {
        MailRecord {
            id: 7,
            kind: "sms.received".into(),
            rule_id: None,
            recipients: vec![],
            subject: String::new(),
            text: String::new(),
            html: String::new(),
            load_id: None,
            status: "pending".into(),
            attempts,
            next_at: 0,
            created_at: 1_796_385_600_000,
            first_failed_at,
            sent_at: None,
            last_error: None,
        }
    }

    #[test]
    fn a_mail_is_retried_for_a_day_then_failed() {
        let now = 1_796_400_000_000;
        assert_eq!(
            after_failure(&mail(0, None), now, 30_000, 0.5),
            MailOutcome::RetryAt(now + 30_000)
        );
        let hour = 3_600_000;
        assert_eq!(
            after_failure(&mail(9, Some(now - 23 * hour)), now, 30_000, 0.5),
            MailOutcome::RetryAt(now + MAX_WAIT_MS)
        );
        assert_eq!(
            after_failure(&mail(40, Some(now - 24 * hour)), now, 30_000, 0.5),
            MailOutcome::Failed
        );
    }

    #[test]
    fn a_message_id_is_the_same_on_every_attempt() {
        let settings: EmailSettings = serde_json::from_value(serde_json::json!({
            "enabled": true, "host": "smtp.coop.bo", "port": 587, "security": "starttls",
            "username": null, "password": null, "from": "Avisos <avisos@coop.bo>",
            "ca_certificate": null, "language": "es"
        }))
        .unwrap();
        let first = message_id(&mail(0, None), &settings);
        let again = message_id(&mail(3, Some(0)), &settings);
        assert_eq!(first, "<pregonero.7.1796385600000@coop.bo>");
        assert_eq!(first, again);
    }
}
