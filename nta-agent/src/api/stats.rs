//! `GET /api/stats`: the live view plus the agent's uptime and store size.

use std::sync::PoisonError;

use serde_json::Value;
use warp::{Filter, Rejection, Reply, reply::Response};

use super::{ApiState, HandlerError, respond, with_arg};

/// `GET /api/stats` → [`LiveStats`](crate::stats::LiveStats) as JSON, plus
/// `uptime_secs` and `store_bytes`.
pub(super) fn stats_handler(
    state: ApiState,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("api" / "stats")
        .and(warp::get())
        .and(with_arg(state))
        .map(|state| respond(stats(&state)))
}

fn stats(state: &ApiState) -> Result<Response, HandlerError> {
    Ok(warp::reply::json(&stats_body(state)).into_response())
}

/// The live view plus `uptime_secs` and `store_bytes`: the body of
/// `/api/stats` and of the stream's `stats` events.
pub(super) fn stats_body(state: &ApiState) -> Value {
    let mut body = {
        // A writer that panicked mid-tick leaves at worst a mix of two
        // ticks' values; showing them beats failing every later request.
        let live = state.live.read().unwrap_or_else(PoisonError::into_inner);
        match serde_json::to_value(&*live) {
            Ok(Value::Object(body)) => body,
            // LiveStats is a struct of plain fields: it always serializes
            // to an object.
            _ => serde_json::Map::new(),
        }
    };
    body.insert(
        "uptime_secs".into(),
        state.started.elapsed().as_secs().into(),
    );
    body.insert("store_bytes".into(), state.store.size_bytes().into());
    body.insert(
        "notifications".into(),
        serde_json::to_value(state.notify.report()).unwrap_or_default(),
    );
    body.insert("notifications_failed".into(), state.notify.failed().into());
    Value::Object(body)
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
