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
    let live = {
        // A writer that panicked mid-tick leaves at worst a mix of two
        // ticks' values; showing them beats failing every later request.
        let live = state.live.read().unwrap_or_else(PoisonError::into_inner);
        serde_json::to_value(&*live)
    }
    .map_err(|e| HandlerError::Internal(format!("cannot serialize live stats: {e}")))?;
    let Value::Object(mut body) = live else {
        return Err(HandlerError::Internal(
            "live stats did not serialize to an object".into(),
        ));
    };
    body.insert(
        "uptime_secs".into(),
        state.started.elapsed().as_secs().into(),
    );
    body.insert("store_bytes".into(), state.store.size_bytes().into());
    Ok(warp::reply::json(&body).into_response())
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
        ] {
            assert!(body.get(field).is_some(), "missing {field}: {body}");
        }
        assert!(body["rates"]["packets_per_sec"].is_number(), "{body}");
        assert!(body["uptime_secs"].is_u64(), "{body}");
        assert!(body["store_bytes"].as_u64().unwrap() > 0, "{body}");
    }
}
