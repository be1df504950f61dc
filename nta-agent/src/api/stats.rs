//! `GET /api/stats`: the live view plus the agent's uptime and store size.

use std::sync::Arc;

use serde_json::Value;
use warp::{Filter, Rejection, Reply};

use super::with_arg;
use crate::{notify::NotifyStats, stats::LiveView, store::Store};

/// What a report of the agent's state reads: `/api/stats`, `/metrics` and
/// the feed's `stats` events.
#[derive(Clone)]
pub struct Report {
    pub live: LiveView,
    pub store: Arc<Store>,
    pub notify: Arc<NotifyStats>,
}

/// `GET /api/stats` → [`LiveStats`](crate::stats::LiveStats) as JSON, plus
/// `uptime_secs`, `store_bytes` and the notification counts.
pub(super) fn stats_handler(
    report: Report,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("api" / "stats")
        .and(warp::get())
        .and(with_arg(report))
        .map(|report: Report| warp::reply::json(&report.body()))
}

impl Report {
    /// The live view plus `uptime_secs`, `store_bytes` and the
    /// notification counts: the body of `/api/stats` and of the stream's
    /// `stats` events.
    pub fn body(&self) -> Value {
        let mut body = match serde_json::to_value(&*self.live.read()) {
            Ok(Value::Object(body)) => body,
            // LiveStats is a struct of plain fields: it always serializes
            // to an object.
            _ => serde_json::Map::new(),
        };
        body.insert("uptime_secs".into(), self.live.uptime().as_secs().into());
        body.insert("store_bytes".into(), self.store.size_bytes().into());
        body.insert(
            "notifications".into(),
            serde_json::to_value(self.notify.report()).unwrap_or_default(),
        );
        body.insert("notifications_failed".into(), self.notify.failed().into());
        Value::Object(body)
    }
}

#[cfg(test)]
mod tests {
    use warp::http::StatusCode;

    use crate::api::tests::{get, test_state};

    #[tokio::test]
    async fn stats_has_the_live_view_uptime_and_store_size() {
        let (_dir, state) = test_state();
        let (status, body) = get(&state, "GET", "/api/stats").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["iface"], "eth0");
        assert_eq!(body["xdp_mode"], "native");
        for field in [
            "started_at",
            "rates",
            "totals",
            "top_sources",
            "top_syn_ports",
            "open_incidents",
            "events_lost",
            "samples_lost",
            "updated_at",
            "thresholds",
            "notifications",
            "notifications_failed",
            "store",
        ] {
            assert!(body.get(field).is_some(), "missing {field}: {body}");
        }
        assert!(body["rates"]["packets_per_sec"].is_number(), "{body}");
        assert!(body["uptime_secs"].is_u64(), "{body}");
        assert!(body["store_bytes"].as_u64().unwrap() > 0, "{body}");
        assert_eq!(body["store"]["ok"], true, "{body}");
        assert_eq!(body["store"]["failed_writes"], 0, "{body}");
    }
}
