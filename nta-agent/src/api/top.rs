//! `GET /api/top`: the hosts that moved the most over a period, from the
//! stored flows.

use std::sync::Arc;

use warp::{Filter, Rejection, Reply, reply::Response};

use super::{
    HandlerError, Params, blocking, hosts::DEFAULT_RANGE, limit_up_to, period, respond, with_arg,
};
use crate::store::{MAX_FLOWS_SCANNED, MAX_TOP_LIMIT, Store, TopBy, TopQuery};

/// Query parameters of `GET /api/top`.
const PARAMS: [&str; 4] = ["since", "until", "by", "limit"];

/// `GET /api/top?since=&until=&by=bytes|flows|pkts&limit=` →
/// [`TopHosts`](crate::store::TopHosts): each host's bytes, packets and
/// flows both ways, both ends of every flow counted. Defaults: the past
/// hour, by bytes, 10 hosts.
pub(super) fn top_handler(
    store: Arc<Store>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("api" / "top")
        .and(warp::get())
        .and(warp::query::<Vec<(String, String)>>())
        .and(with_arg(store))
        .then(|params, store| async move { respond(top(params, store).await) })
}

async fn top(params: Vec<(String, String)>, store: Arc<Store>) -> Result<Response, HandlerError> {
    let params = Params::new(params, &PARAMS)?;
    let (since, until) = period(&params, DEFAULT_RANGE)?;
    let query = TopQuery {
        since,
        until,
        by: params
            .get("by", str::parse::<TopBy>)?
            .unwrap_or(TopBy::Bytes),
        limit: params
            .get("limit", limit_up_to(MAX_TOP_LIMIT))?
            .unwrap_or(10),
        max_scanned: MAX_FLOWS_SCANNED,
    };
    let top = blocking(move || store.top_hosts(&query)).await?;
    Ok(warp::reply::json(&top).into_response())
}

#[cfg(test)]
mod tests {
    use warp::http::StatusCode;

    use crate::{
        api::tests::{assert_bad_parameters, get, test_state},
        flows::{FlowRecord, Reason},
    };

    #[tokio::test]
    async fn top_talkers_are_ranked_as_asked() {
        let (_dir, state) = test_state();
        let t = |s: &str| s.parse().expect("a timestamp");
        let flow = |client: &str, port: u16, bytes: u64| FlowRecord {
            client: (client.parse().expect("address"), port),
            server: ("10.0.0.2".parse().expect("address"), 80),
            proto: 6,
            pkts_toserver: 1,
            pkts_toclient: 1,
            bytes_toserver: bytes,
            bytes_toclient: 0,
            start: t("2026-01-01T00:01:00Z"),
            end: t("2026-01-01T00:01:10Z"),
            tcp_flags_toserver: 0,
            tcp_flags_toclient: 0,
            reason: Reason::Timeout,
            app_proto: None,
            alerts: Vec::new(),
        };
        state
            .store
            .put_flows(&[
                flow("198.18.0.3", 40_000, 5000),
                flow("198.18.0.4", 40_001, 100),
                flow("198.18.0.4", 40_002, 100),
                flow("2001:db8::4", 40_003, 1),
            ])
            .expect("writing");
        let period = "since=2026-01-01T00:00:00Z&until=2026-01-01T01:00:00Z";
        let (status, body) = get(&state, "GET", &format!("/api/top?{period}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["by"], "bytes");
        assert_eq!(body["hosts"][0]["ip"], "10.0.0.2");
        assert_eq!(body["hosts"][0]["bytes_in"], 5201);
        assert_eq!(body["hosts"][1]["ip"], "198.18.0.3");
        assert_eq!(body["hosts"][3]["ip"], "2001:db8::4");
        assert_eq!(
            (body["flows"].as_u64(), body["truncated"].as_bool()),
            (Some(4), Some(false))
        );
        let (_, by_flows) = get(
            &state,
            "GET",
            &format!("/api/top?{period}&by=flows&limit=2"),
        )
        .await;
        let hosts = by_flows["hosts"].as_array().expect("hosts");
        assert_eq!(hosts.len(), 2);
        assert_eq!(
            (hosts[1]["ip"].as_str(), hosts[1]["flows"].as_u64()),
            (Some("198.18.0.4"), Some(2))
        );
        // Without a period: the past hour, empty here.
        let (status, recent) = get(&state, "GET", "/api/top").await;
        assert_eq!(status, StatusCode::OK, "{recent}");
        assert_eq!(recent["hosts"], serde_json::json!([]));
    }

    #[tokio::test]
    async fn a_bad_parameter_is_a_400_naming_it() {
        let cases = [
            (
                "by=size",
                "by",
                "by must be bytes, flows or pkts, got `size`",
            ),
            ("limit=0", "limit", "between 1 and 1000"),
            ("limit=1001", "limit", "between 1 and 1000"),
            ("since=an+hour+ago", "since", "RFC 3339"),
            (
                "since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
                "until",
                "before since",
            ),
            ("host=10.0.0.1", "host", "unknown parameter host"),
        ];
        assert_bad_parameters("/api/top", &cases).await;
    }
}
