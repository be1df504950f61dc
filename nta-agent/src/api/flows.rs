//! `GET /api/flows`: flow records, filtered and paginated.

use std::{net::IpAddr, sync::Arc};

use warp::{Filter, Rejection, Reply, reply::Response};

use super::{HandlerError, Params, blocking, limit_up_to, ordered, parse_time, respond, with_arg};
use crate::store::{FlowQuery, MAX_FLOW_LIMIT, Store};

/// Query parameters of `GET /api/flows`.
const PARAMS: [&str; 8] = [
    "host",
    "port",
    "proto",
    "app_proto",
    "since",
    "until",
    "limit",
    "cursor",
];

/// `GET /api/flows?host=&port=&proto=&app_proto=&since=&until=&limit=&cursor=`
/// → `{"flows": [...], "next": cursor or null}`, newest first; see
/// [`FlowQuery`] for what each filter matches.
pub(super) fn flows_handler(
    store: Arc<Store>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("api" / "flows")
        .and(warp::get())
        .and(warp::query::<Vec<(String, String)>>())
        .and(with_arg(store))
        .then(|params, store| async move { respond(list_flows(params, store).await) })
}

async fn list_flows(
    params: Vec<(String, String)>,
    store: Arc<Store>,
) -> Result<Response, HandlerError> {
    let query = flow_query(&Params::new(params, &PARAMS)?)?;
    let page = blocking(move || store.flows(&query)).await?;
    Ok(warp::reply::json(&page).into_response())
}

/// A protocol by name or number: `tcp`, `udp`, `icmp`, `icmpv6`, or 0-255.
fn parse_proto(value: &str) -> Result<u8, String> {
    use nta_common::maps::ip_proto;
    match value.to_ascii_lowercase().as_str() {
        "tcp" => Ok(ip_proto::TCP),
        "udp" => Ok(ip_proto::UDP),
        "icmp" => Ok(ip_proto::ICMP),
        "icmpv6" | "ipv6-icmp" => Ok(ip_proto::ICMPV6),
        other => other.parse().map_err(|_| {
            format!("proto must be tcp, udp, icmp, icmpv6 or a number 0-255, got `{value}`")
        }),
    }
}

/// The store query for the request's parameters; each bad one is a 400
/// naming it.
fn flow_query(params: &Params) -> Result<FlowQuery, HandlerError> {
    let query = FlowQuery {
        host: params.get("host", |value| {
            value
                .parse::<IpAddr>()
                .map_err(|_| format!("host is not an IP address: `{value}`"))
        })?,
        port: params.get("port", |value| {
            value
                .parse::<u16>()
                .map_err(|_| format!("port is not a port number (0-65535): `{value}`"))
        })?,
        proto: params.get("proto", parse_proto)?,
        app_proto: params.get("app_proto", |value| Ok::<_, String>(value.to_owned()))?,
        since: params.get("since", parse_time("since"))?,
        until: params.get("until", parse_time("until"))?,
        limit: params
            .get("limit", limit_up_to(MAX_FLOW_LIMIT))?
            .unwrap_or(100),
        cursor: params.get("cursor", |value| {
            value.parse().map_err(|_| {
                format!("cursor must be a flow id (the `next` of the previous page), got `{value}`")
            })
        })?,
    };
    ordered(query.since, query.until)?;
    Ok(query)
}

#[cfg(test)]
mod tests {
    use crate::api::tests::{assert_bad_parameters, get, test_state};

    #[tokio::test]
    async fn flows_are_listed_and_bad_parameters_refused() {
        let (_dir, state) = test_state();
        let (status, body) = get(&state, "GET", "/api/flows?proto=tcp&limit=5").await;
        assert_eq!(status, warp::http::StatusCode::OK, "{body}");
        assert!(body["flows"].is_array(), "{body}");
        assert_eq!(body["next"], serde_json::Value::Null);
        let cases = [
            ("host=nowhere", "host", "not an IP address"),
            ("port=70000", "port", "not a port number"),
            ("proto=sctpx", "proto", "proto must be"),
            ("limit=0", "limit", "between 1 and 1000"),
            ("limit=1001", "limit", "between 1 and 1000"),
            ("cursor=abc", "cursor", "flow id"),
            ("since=yesterday", "since", "since"),
            (
                "since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
                "until",
                "before since",
            ),
            ("colour=red", "colour", "colour"),
        ];
        assert_bad_parameters("/api/flows", &cases).await;
    }
}
