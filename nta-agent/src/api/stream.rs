//! `GET /api/stream`: the live feed, as Server-Sent Events.
//!
//! - `event: stats`: the `/api/stats` object, once on connect and then once
//!   per tick.
//! - `event: alert`: `{"event": "opened"|"updated"|"closed", "alert": {...}}`
//!   for every alert event, in the order the detectors produced them.
//! - `event: resync`: `{"missed": n}` when this client fell more than
//!   [`FEED_CAPACITY`] messages behind and `n` were dropped for it; the
//!   client re-reads `/api/alerts`, so it loses no alert.
//!
//! A slow client never slows the agent: each one reads a bounded broadcast
//! channel at its own pace and is told when it fell behind.

use std::{convert::Infallible, sync::Arc, time::Duration};

use futures_util::{Stream, StreamExt as _, stream};
use tokio::sync::{broadcast, watch};
use tracing::warn;
use warp::{Filter, Rejection, Reply, sse::Event};

use super::{Report, auth::Auth, auth::authorized_or_query, with_arg};
use crate::alert::AlertEvent;

/// Messages kept for the slowest client: about 15 minutes of ticks, or a
/// burst of a thousand alert events.
pub const FEED_CAPACITY: usize = 1024;

/// How often an idle stream sends a comment, so that proxies and browsers
/// keep the connection open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// How long a browser waits before reconnecting a dropped stream.
const RETRY: Duration = Duration::from_secs(2);

/// One message of the feed, serialized once for every client.
#[derive(Debug, Clone)]
enum Message {
    Stats(Arc<str>),
    Alert(Arc<str>),
}

/// The sending side of the live feed, shared by the agent's loop and the
/// API.
#[derive(Clone)]
pub struct Feed {
    tx: broadcast::Sender<Message>,
    closing: Arc<watch::Sender<bool>>,
}

impl Default for Feed {
    fn default() -> Self {
        Self::new()
    }
}

impl Feed {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(FEED_CAPACITY);
        Self {
            tx,
            closing: Arc::new(watch::Sender::new(false)),
        }
    }

    /// Publishes the current stats to every client.
    pub fn stats(&self, report: &Report) {
        if self.tx.receiver_count() == 0 {
            return;
        }
        match serde_json::to_string(&report.body()) {
            // No receivers between the check and the send is fine: nobody
            // was listening.
            Ok(json) => drop(self.tx.send(Message::Stats(json.into()))),
            Err(error) => warn!(message = "Cannot serialize the live stats", %error),
        }
    }

    /// Publishes alert events to every client.
    pub fn alerts(&self, events: &[AlertEvent]) {
        if self.tx.receiver_count() == 0 {
            return;
        }
        for event in events {
            match serde_json::to_string(event) {
                Ok(json) => drop(self.tx.send(Message::Alert(json.into()))),
                Err(error) => warn!(message = "Cannot serialize an alert event", %error),
            }
        }
    }

    /// Ends every open stream, so that the server's graceful shutdown does
    /// not wait for browsers that would never hang up.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Clients connected now.
    pub fn clients(&self) -> usize {
        self.tx.receiver_count()
    }
}

/// `GET /api/stream` → `text/event-stream`.
pub(super) fn stream_handler(
    feed: Feed,
    report: Report,
    auth: Auth,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("api" / "stream")
        .and(warp::get())
        .and(authorized_or_query(auth))
        .and(with_arg((feed, report)))
        .map(|(feed, report): (Feed, Report)| {
            let events = events(&feed, &report);
            warp::sse::reply(warp::sse::keep_alive().interval(KEEP_ALIVE).stream(events))
        })
}

/// One client's events: the stats now, then the feed until it closes.
fn events(
    feed: &Feed,
    report: &Report,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + use<> {
    // Subscribe before reading the current stats, so that nothing published
    // in between is missed.
    let rx = feed.tx.subscribe();
    let closing = feed.closing.subscribe();
    let first = serde_json::to_string(&report.body())
        .ok()
        .map(|json| Event::default().event("stats").retry(RETRY).data(json));
    // `wait_for` sees a feed closed before this client connected, too.
    let rest = stream::unfold((rx, closing), |(mut rx, mut closing)| async move {
        let event = tokio::select! {
            message = rx.recv() => match message {
                Ok(Message::Stats(json)) => Event::default().event("stats").data(&*json),
                Ok(Message::Alert(json)) => Event::default().event("alert").data(&*json),
                Err(broadcast::error::RecvError::Lagged(missed)) => Event::default()
                    .event("resync")
                    .data(format!(r#"{{"missed":{missed}}}"#)),
                Err(broadcast::error::RecvError::Closed) => return None,
            },
            _ = closing.wait_for(|closing| *closing) => return None,
        };
        Some((Ok(event), (rx, closing)))
    });
    stream::iter(first.map(Ok)).chain(rest)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures_util::StreamExt as _;

    use super::*;
    use crate::{
        alert::{Alert, AlertKind, AlertState, fixtures},
        api::tests::test_state,
    };

    fn alert(id: u64) -> Alert {
        Alert {
            message: "<script>alert(1)</script>".into(),
            ..fixtures::alert(id, AlertKind::Signature)
        }
    }

    /// The next event of `events` as `(name, data)`, parsed from the SSE
    /// text warp would send.
    async fn next(
        events: &mut (impl Stream<Item = Result<Event, Infallible>> + Unpin),
    ) -> (String, serde_json::Value) {
        let event = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .expect("an event within 5 s")
            .expect("the stream is open")
            .unwrap();
        let text = event.to_string();
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}:")))
                .map(str::to_owned)
        };
        let data = field("data").unwrap_or_else(|| panic!("no data in {text:?}"));
        (
            field("event").unwrap_or_default(),
            serde_json::from_str(&data).unwrap_or_else(|e| panic!("{e}: {data}")),
        )
    }

    #[tokio::test]
    async fn a_client_gets_the_stats_then_alerts_and_ticks_in_order() {
        let (_dir, state) = test_state();
        let mut events = Box::pin(events(&state.feed, &state.report()));
        let (name, data) = next(&mut events).await;
        assert_eq!(name, "stats");
        assert_eq!(data["iface"], "eth0");
        assert!(data["uptime_secs"].is_u64(), "{data}");

        state.feed.alerts(&[
            AlertEvent::Opened(alert(7)),
            AlertEvent::Closed(Alert {
                state: AlertState::Closed,
                ..alert(7)
            }),
        ]);
        state.feed.stats(&state.report());
        let (name, data) = next(&mut events).await;
        assert_eq!(name, "alert");
        assert_eq!(data["event"], "opened");
        assert_eq!(data["alert"]["id"], 7);
        // Attacker-controlled text is data, escaped by JSON, never markup.
        assert_eq!(data["alert"]["message"], "<script>alert(1)</script>");
        let (name, data) = next(&mut events).await;
        assert_eq!((name.as_str(), &data["event"]), ("alert", &"closed".into()));
        let (name, _) = next(&mut events).await;
        assert_eq!(name, "stats");
    }

    #[tokio::test]
    async fn a_client_that_falls_behind_is_told_how_much_it_missed() {
        let (_dir, state) = test_state();
        let mut events = Box::pin(events(&state.feed, &state.report()));
        next(&mut events).await;
        let burst: Vec<_> = (0..FEED_CAPACITY as u64 + 10)
            .map(|id| AlertEvent::Opened(alert(id)))
            .collect();
        state.feed.alerts(&burst);
        let (name, data) = next(&mut events).await;
        assert_eq!(name, "resync");
        assert_eq!(data["missed"], 10);
        // Then the newest FEED_CAPACITY events, oldest first.
        let (_, data) = next(&mut events).await;
        assert_eq!(data["alert"]["id"], 10);
    }

    #[tokio::test]
    async fn closing_the_feed_ends_open_streams() {
        let (_dir, state) = test_state();
        let mut events = Box::pin(events(&state.feed, &state.report()));
        next(&mut events).await;
        assert_eq!(state.feed.clients(), 1);
        state.feed.close();
        let end = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .expect("the stream ends within 5 s");
        assert!(end.is_none());
    }

    #[test]
    fn publishing_without_clients_does_nothing() {
        let feed = Feed::new();
        feed.alerts(&[AlertEvent::Opened(alert(1))]);
        assert_eq!(feed.clients(), 0);
    }
}
