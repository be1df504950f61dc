//! `GET /api/hosts/{ip}`: one host's traffic over a period — totals, a
//! time series, its peers and ports — from the stored flows, and its
//! alerts.

use std::{net::IpAddr, sync::Arc};

use jiff::{SignedDuration, Timestamp};
use warp::{Filter, Rejection, Reply, reply::Response};

use super::{HandlerError, Params, blocking, percent_decode, period, respond, with_arg};
use crate::store::{AlertJson, AlertQuery, HostQuery, HostTraffic, MAX_FLOWS_SCANNED, Store};

/// Query parameters of `GET /api/hosts/{ip}`.
const PARAMS: [&str; 2] = ["since", "until"];
/// Period shown without `since`: the past hour, what ntopng's host pages
/// open on and the dashboard's middle range.
pub(super) const DEFAULT_RANGE: SignedDuration = SignedDuration::from_hours(1);
/// Alerts listed with a host: its most recent, as a table a glance takes in.
const HOST_ALERTS: usize = 20;

/// `GET /api/hosts/{ip}?since=&until=` → [`HostTraffic`] plus `"alerts"`:
/// the host's most recent alerts of the period, as `/api/alerts` serves
/// them, where it is the source or the destination.
pub(super) fn host_handler(
    store: Arc<Store>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("api" / "hosts" / String)
        .and(warp::get())
        .and(warp::query::<Vec<(String, String)>>())
        .and(with_arg(store))
        .then(|ip, params, store| async move { respond(host(ip, params, store).await) })
}

async fn host(
    ip: String,
    params: Vec<(String, String)>,
    store: Arc<Store>,
) -> Result<Response, HandlerError> {
    // IPv6 colons may come percent-encoded, as `encodeURIComponent` writes them.
    let text = percent_decode(&ip);
    let host: IpAddr = text.parse().map_err(|_| {
        HandlerError::bad(
            "host",
            format!("host is not an IP address (IPv4 or IPv6): `{text}`"),
        )
    })?;
    let (since, until) = period(&Params::new(params, &PARAMS)?, DEFAULT_RANGE)?;
    let (traffic, alerts) = blocking(move || {
        let traffic = store.host_traffic(&HostQuery {
            host,
            since,
            until,
            max_scanned: MAX_FLOWS_SCANNED,
        })?;
        let alerts = host_alerts(&store, traffic.host, since, until)?;
        Ok((traffic, alerts))
    })
    .await?;
    Ok(warp::reply::json(&body(&traffic, &alerts)?).into_response())
}

/// The host's alerts as source and as destination, each newest first.
fn host_alerts(
    store: &Store,
    host: IpAddr,
    since: Timestamp,
    until: Timestamp,
) -> Result<Vec<AlertJson>, crate::store::StoreError> {
    let query = AlertQuery {
        since: Some(since),
        until: Some(until),
        limit: HOST_ALERTS,
        ..AlertQuery::default()
    };
    let mut alerts = store
        .alerts_json(&AlertQuery {
            src: Some(host),
            ..query.clone()
        })?
        .alerts;
    alerts.extend(
        store
            .alerts_json(&AlertQuery {
                dst: Some(host),
                ..query
            })?
            .alerts,
    );
    Ok(alerts)
}

/// The answer: the traffic's fields and the newest [`HOST_ALERTS`] of
/// `alerts`, once each (an alert from the host to itself is in both lists).
fn body(traffic: &HostTraffic, alerts: &[AlertJson]) -> Result<serde_json::Value, HandlerError> {
    let internal =
        |e: serde_json::Error| HandlerError::Internal(format!("encoding the answer: {e}"));
    let mut alerts = alerts
        .iter()
        .map(|a| serde_json::from_slice::<serde_json::Value>(a.as_bytes()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(internal)?;
    let id = |a: &serde_json::Value| a["id"].as_u64().unwrap_or(0);
    alerts.sort_by_key(|a| std::cmp::Reverse(id(a)));
    alerts.dedup_by_key(|a| id(a));
    alerts.truncate(HOST_ALERTS);
    let mut body = serde_json::to_value(traffic).map_err(internal)?;
    body["alerts"] = serde_json::Value::Array(alerts);
    Ok(body)
}

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use warp::http::StatusCode;

    use crate::{
        api::tests::{assert_bad_parameters, get, test_state},
        flows::{FlowRecord, Reason},
    };

    /// The test alerts' attacker (source of alerts 5, 3 and 1) and a
    /// victim (destination of 4 and 2), with one flow between them.
    fn state_with_a_flow() -> (tempfile::TempDir, crate::api::ApiState) {
        let (dir, state) = test_state();
        let t = |s: &str| s.parse().expect("a timestamp");
        state
            .store
            .put_flows(&[FlowRecord {
                client: ("198.18.0.3".parse().expect("address"), 40_000),
                server: ("10.0.0.2".parse().expect("address"), 80),
                proto: 6,
                pkts_toserver: 4,
                pkts_toclient: 3,
                bytes_toserver: 400,
                bytes_toclient: 3000,
                start: t("2026-01-01T00:01:00Z"),
                end: t("2026-01-01T00:01:10Z"),
                tcp_flags_toserver: 0x1b,
                tcp_flags_toclient: 0x1b,
                reason: Reason::Timeout,
                app_proto: None,
                alerts: Vec::new(),
            }])
            .expect("writing");
        (dir, state)
    }

    const PERIOD: &str = "since=2026-01-01T00:00:00Z&until=2026-01-01T01:00:00Z";

    fn alert_ids(body: &Value) -> Vec<u64> {
        body["alerts"]
            .as_array()
            .expect("alerts")
            .iter()
            .map(|a| a["id"].as_u64().expect("id"))
            .collect()
    }

    #[tokio::test]
    async fn a_host_is_served_with_its_flows_figures_and_alerts() {
        let (_dir, state) = state_with_a_flow();
        let (status, body) = get(&state, "GET", &format!("/api/hosts/198.18.0.3?{PERIOD}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["host"], "198.18.0.3");
        assert_eq!(body["since"], "2026-01-01T00:00:00Z");
        assert_eq!(
            (body["bytes_out"].as_u64(), body["bytes_in"].as_u64()),
            (Some(400), Some(3000))
        );
        assert_eq!(
            (body["pkts_out"].as_u64(), body["flows"].as_u64()),
            (Some(4), Some(1))
        );
        assert_eq!(body["peers"][0]["ip"], "10.0.0.2");
        assert_eq!(body["ports"][0]["port"], 80);
        assert_eq!(body["ports"][0]["proto"], 6);
        assert_eq!(body["truncated"], false);
        assert!(body["series"].as_array().expect("series").len() <= 120);
        // Its alerts as a source, newest first, in /api/alerts' shape.
        assert_eq!(alert_ids(&body), [5, 3, 1]);
        assert_eq!(body["alerts"][0]["kind"], "syn_flood");
        // The other end: alerts where it is the destination.
        let (_, victim) = get(&state, "GET", &format!("/api/hosts/10.0.0.2?{PERIOD}")).await;
        assert_eq!(alert_ids(&victim), [4, 2]);
        assert_eq!(victim["bytes_in"], 400);
    }

    #[tokio::test]
    async fn ipv6_in_the_path_plain_or_percent_encoded_and_a_default_period() {
        let (_dir, state) = test_state();
        for path in ["/api/hosts/2001:db8::1", "/api/hosts/2001%3Adb8%3A%3A1"] {
            let (status, body) = get(&state, "GET", path).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
            assert_eq!(body["host"], "2001:db8::1", "{path}");
            assert_eq!(body["flows"], 0);
            // The past hour: the test alerts of 2026 are not in it.
            let since: jiff::Timestamp = body["since"]
                .as_str()
                .expect("since")
                .parse()
                .expect("time");
            let until: jiff::Timestamp = body["until"]
                .as_str()
                .expect("until")
                .parse()
                .expect("time");
            assert_eq!(
                until.duration_since(since),
                jiff::SignedDuration::from_hours(1)
            );
        }
    }

    #[tokio::test]
    async fn a_bad_address_or_period_is_a_400_naming_it() {
        for (path, parameter, message) in [
            (
                "/api/hosts/nowhere",
                "host",
                "host is not an IP address (IPv4 or IPv6): `nowhere`",
            ),
            ("/api/hosts/10.0.0", "host", "not an IP address"),
            ("/api/hosts/fe80::1%25eth0", "host", "`fe80::1%eth0`"),
            ("/api/hosts/10.0.0.1?since=yesterday", "since", "RFC 3339"),
            (
                "/api/hosts/10.0.0.1?until=2026-02-30T00:00:00Z",
                "until",
                "RFC 3339",
            ),
            ("/api/hosts/10.0.0.1?limit=5", "limit", "unknown parameter"),
            (
                "/api/hosts/10.0.0.1?until=-009999-01-02T01:59:59Z",
                "until",
                "too early",
            ),
        ] {
            let (_dir, state) = test_state();
            let (status, body) = get(&state, "GET", path).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
            assert_eq!(body["parameter"], parameter, "{path}: {body}");
            let error = body["error"].as_str().expect("error");
            assert!(error.contains(message), "{path}: {error}");
        }
        let cases = [
            (
                "since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
                "until",
                "before since",
            ),
            (
                "since=2026-01-02T00:00:00Z&since=2026-01-01T00:00:00Z",
                "since",
                "more than once",
            ),
        ];
        assert_bad_parameters("/api/hosts/10.0.0.1", &cases).await;
    }
}
