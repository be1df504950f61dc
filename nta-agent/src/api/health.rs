//! `GET /healthz`: the agent is up and serving.

use serde_json::json;
use warp::{Filter, Rejection, Reply};

/// `GET /healthz` → `{"status": "ok"}`.
pub(super) fn health_handler() -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("healthz")
        .and(warp::get())
        .map(|| warp::reply::json(&json!({ "status": "ok" })))
}
