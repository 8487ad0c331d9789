//! `GET /v1/events`: the events as Server-Sent Events, live, for dashboards; a stream that
//! reconnects with `Last-Event-ID` first gets what it missed, from the events still stored.

use std::sync::Arc;
use std::time::Duration;

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use tokio::sync::{broadcast, mpsc};
use utoipa::IntoParams;

use super::AppState;
use super::caller::Caller;
use super::error::{self, ApiError};
use crate::domain::Module;
use crate::notify::{EVENT_TYPES, event_json};
use crate::store::{EventRecord, PING, Store};

/// A comment sent when nothing else was for this long, so that proxies keep the connection and
/// a client that left is noticed.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Stored events sent in one read while catching up.
const CATCH_UP_PAGE: u32 = 500;

/// Query of the stream.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Only these event types, comma-separated (all when absent).
    #[param(example = "sms.received,message.failed")]
    pub types: Option<String>,
    /// Resume after this event, as the `Last-Event-ID` header does (the header wins).
    pub last_event_id: Option<String>,
}

/// Mounts the route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(super::resource("/v1/events").route(web::get().to(stream)));
}

/// The events as they happen, as `text/event-stream`. Each has `id` (the event id), `event`
/// (its type) and `data` (the same JSON a webhook gets). With `Last-Event-ID` (sent by browsers
/// when they reconnect), the events after that one that are still stored come first.
#[utoipa::path(
    get, path = "/v1/events", tag = "events",
    params(
        EventsQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event"),
    ),
    responses(
        (status = 200, description = "A stream of events that stays open",
         content_type = "text/event-stream", body = String),
        (status = 422, response = error::Invalid),
        (status = 401, response = error::Unauthenticated),
        (status = 403, response = error::Forbidden),
    ),
    security(("bearer" = ["dashboard"]))
)]
pub async fn stream(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    query: web::Query<EventsQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Module::Dashboard)?;
    let query = query.into_inner();
    let types = match query.types.as_deref() {
        Some(list) => Some(parse_types(list)?),
        None => None,
    };
    let header = req
        .headers()
        .get("last-event-id")
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    let (field, last) = match header {
        Some(id) => ("Last-Event-ID", Some(id)),
        None => ("last_event_id", query.last_event_id),
    };
    let resume = match last.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(id) => Some(resume_after(&state.store, id, field).await?),
    };

    // Subscribed before the catch-up reads the table, so nothing falls between the two.
    let live = state.feed.subscribe();
    let (out, frames) = mpsc::channel::<Bytes>(64);
    tokio::spawn(pump(state.store.clone(), live, resume, types, out));
    let body = futures_util::stream::unfold(frames, |mut frames| async move {
        frames
            .recv()
            .await
            .map(|frame| (Ok::<_, actix_web::Error>(frame), frames))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}

fn parse_types(list: &str) -> Result<Vec<String>, ApiError> {
    let types: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    if types.is_empty() {
        return Err(ApiError::invalid("types", "name at least one event type"));
    }
    if let Some(bad) = types.iter().find(|t| !EVENT_TYPES.contains(&t.as_str())) {
        return Err(ApiError::invalid(
            "types",
            format!(
                "`{bad}` is not an event type; use {}",
                EVENT_TYPES.join(", ")
            ),
        ));
    }
    Ok(types)
}

/// The number after which a stream resumes. An id no longer stored is resumed by its time,
/// which event ids carry (UUIDv7: the first 48 bits are Unix milliseconds).
async fn resume_after(store: &Store, id: &str, field: &str) -> Result<i64, ApiError> {
    if let Some(seq) = store.event_seq(id).await? {
        return Ok(seq);
    }
    let at = id
        .strip_prefix("evt_")
        .filter(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .and_then(|hex| hex.get(..12))
        .and_then(|ms| i64::from_str_radix(ms, 16).ok())
        .ok_or_else(|| ApiError::invalid(field, "an event id, `evt_` and 32 hex digits"))?;
    Ok(store.event_seq_before(at).await?)
}

/// Writes the stream's frames until the client goes: stored events after `resume` first, then
/// live ones; a stream that falls too far behind the live feed catches up from the table.
async fn pump(
    store: Store,
    mut live: broadcast::Receiver<Arc<EventRecord>>,
    mut resume: Option<i64>,
    types: Option<Vec<String>>,
    out: mpsc::Sender<Bytes>,
) {
    let wanted =
        |e: &EventRecord| e.kind != PING && types.as_ref().is_none_or(|t| t.contains(&e.kind));
    // Tells the browser how long to wait before reconnecting.
    if out
        .send(Bytes::from_static(b"retry: 3000\n\n"))
        .await
        .is_err()
    {
        return;
    }
    // What this stream has handed on (or passed over), so that an event is never sent twice
    // when catch-up and the live feed overlap, while one that commits late (PostgreSQL hands
    // out numbers before commit) is still sent when it comes.
    let mut recent = Recent::default();
    loop {
        if let Some(mut after) = resume.take() {
            loop {
                let events = match store.events_after(after, CATCH_UP_PAGE).await {
                    Ok(events) => events,
                    Err(err) => {
                        tracing::warn!(error = %err, "events not read for a stream");
                        return;
                    }
                };
                let Some(last) = events.last() else { break };
                after = last.seq;
                for event in &events {
                    if recent.insert(event.seq)
                        && wanted(event)
                        && out.send(frame(event)).await.is_err()
                    {
                        return;
                    }
                }
            }
        }
        let sent = match tokio::time::timeout(KEEP_ALIVE, live.recv()).await {
            Err(_) => out.send(Bytes::from_static(b": keep-alive\n\n")).await,
            Ok(Ok(event)) if recent.insert(event.seq) && wanted(&event) => {
                out.send(frame(&event)).await
            }
            Ok(Ok(_)) => Ok(()),
            Ok(Err(broadcast::error::RecvError::Lagged(missed))) => {
                tracing::debug!(missed, "a stream fell behind; catching up from the table");
                resume = Some(recent.oldest().map_or(0, |seq| seq - 1));
                Ok(())
            }
            Ok(Err(broadcast::error::RecvError::Closed)) => return,
        };
        if sent.is_err() {
            return;
        }
    }
}

/// Event numbers a stream has seen lately: enough to cover the overlap of catching up with the
/// live feed, and the seconds in which PostgreSQL may commit a number out of order.
#[derive(Debug, Default)]
struct Recent {
    order: std::collections::VecDeque<i64>,
    seen: std::collections::HashSet<i64>,
}

impl Recent {
    /// Numbers remembered at most.
    const KEPT: usize = 16_384;

    /// Notes `seq`; `false` when it was seen before.
    fn insert(&mut self, seq: i64) -> bool {
        if !self.seen.insert(seq) {
            return false;
        }
        self.order.push_back(seq);
        if self.order.len() > Self::KEPT
            && let Some(old) = self.order.pop_front()
        {
            self.seen.remove(&old);
        }
        true
    }

    /// The smallest number remembered.
    fn oldest(&self) -> Option<i64> {
        self.order.iter().copied().min()
    }
}

/// One event as an SSE frame.
fn frame(event: &EventRecord) -> Bytes {
    Bytes::from(format!(
        "id: {}\nevent: {}\ndata: {}\n\n",
        event.id,
        event.kind,
        event_json(event)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_handed_on_once_and_a_late_one_still_is() {
        let mut recent = Recent::default();
        assert!(recent.insert(41));
        assert!(recent.insert(43));
        assert!(
            !recent.insert(43),
            "the live copy of one sent while catching up"
        );
        assert!(recent.insert(42), "committed late, below the last one sent");
        assert_eq!(recent.oldest(), Some(41));
    }

    #[test]
    fn the_memory_of_a_stream_is_bounded() {
        let mut recent = Recent::default();
        for seq in 0..(Recent::KEPT as i64 + 10) {
            recent.insert(seq);
        }
        assert_eq!(recent.order.len(), Recent::KEPT);
        assert_eq!(recent.seen.len(), Recent::KEPT);
        assert_eq!(recent.oldest(), Some(10));
    }
}
