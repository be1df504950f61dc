//! `GET /api/alerts` (filtered, paginated list) and `GET /api/alerts/{id}`.

use std::{net::IpAddr, sync::Arc};

use warp::{Filter, Rejection, Reply, reply::Response};

use super::{HandlerError, Params, blocking, limit_up_to, ordered, parse_time, respond, with_arg};
use crate::{
    alert::{AlertKind, AlertState},
    store::{AlertJson, AlertPage, AlertQuery, MAX_ALERT_LIMIT, Store},
};

/// Query parameters of `GET /api/alerts`.
const PARAMS: [&str; 9] = [
    "kind", "src", "dst", "dst_port", "since", "until", "state", "limit", "cursor",
];

/// `GET /api/alerts?kind=&src=&dst=&dst_port=&since=&until=&state=&limit=&cursor=`
/// → `{"alerts": [...], "next": cursor or null}`, newest first; see
/// [`AlertQuery`] for what each filter matches.
pub(super) fn alerts_handler(
    store: Arc<Store>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("api" / "alerts")
        .and(warp::get())
        .and(warp::query::<Vec<(String, String)>>())
        .and(with_arg(store))
        .then(|params, store| async move { respond(list_alerts(params, store).await) })
}

/// `GET /api/alerts/{id}` → the alert, or 404.
pub(super) fn alert_handler(
    store: Arc<Store>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("api" / "alerts" / String)
        .and(warp::get())
        .and(with_arg(store))
        .then(|id, store| async move { respond(get_alert(id, store).await) })
}

async fn list_alerts(
    params: Vec<(String, String)>,
    store: Arc<Store>,
) -> Result<Response, HandlerError> {
    let query = alert_query(&Params::new(params, &PARAMS)?)?;
    let page = blocking(move || store.alerts_json(&query)).await?;
    Ok(json_reply(page_body(&page)))
}

/// `{"alerts": [...], "next": ...}` around the alerts as stored.
fn page_body(page: &AlertPage<AlertJson>) -> Vec<u8> {
    let size: usize = page.alerts.iter().map(|a| a.as_bytes().len() + 1).sum();
    let mut body = Vec::with_capacity(size + 40);
    body.extend_from_slice(b"{\"alerts\":[");
    for (i, alert) in page.alerts.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(alert.as_bytes());
    }
    body.extend_from_slice(b"],\"next\":");
    match page.next {
        Some(next) => body.extend_from_slice(next.to_string().as_bytes()),
        None => body.extend_from_slice(b"null"),
    }
    body.push(b'}');
    body
}

fn json_reply(body: Vec<u8>) -> Response {
    warp::reply::with_header(body, "content-type", "application/json").into_response()
}

async fn get_alert(id: String, store: Arc<Store>) -> Result<Response, HandlerError> {
    let id: u64 = id.parse().map_err(|_| {
        HandlerError::bad(
            "id",
            format!("alert id must be a non-negative integer, got `{id}`"),
        )
    })?;
    match blocking(move || store.alert_json(id)).await? {
        Some(alert) => Ok(json_reply(alert.into_bytes())),
        None => Err(HandlerError::NotFound(format!("no alert with id {id}"))),
    }
}

/// The store query for the request's parameters; each bad one is a 400
/// naming it.
fn alert_query(params: &Params) -> Result<AlertQuery, HandlerError> {
    let ip = |name: &'static str| {
        move |value: &str| {
            value
                .parse::<IpAddr>()
                .map_err(|_| format!("{name} is not an IP address: `{value}`"))
        }
    };
    let query = AlertQuery {
        kind: params.get("kind", str::parse::<AlertKind>)?,
        src: params.get("src", ip("src"))?,
        dst: params.get("dst", ip("dst"))?,
        dst_port: params.get("dst_port", |value| {
            value
                .parse::<u16>()
                .map_err(|_| format!("dst_port is not a port number (0-65535): `{value}`"))
        })?,
        since: params.get("since", parse_time("since"))?,
        until: params.get("until", parse_time("until"))?,
        state: params.get("state", str::parse::<AlertState>)?,
        limit: params
            .get("limit", limit_up_to(MAX_ALERT_LIMIT))?
            .unwrap_or(100),
        cursor: params.get("cursor", |value| {
            value.parse().map_err(|_| {
                format!(
                    "cursor must be an alert id (the `next` of the previous page), got `{value}`"
                )
            })
        })?,
    };
    ordered(query.since, query.until)?;
    Ok(query)
}

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use warp::http::StatusCode;

    use crate::api::tests::{assert_bad_parameters, get, test_state};

    fn ids(body: &Value) -> Vec<u64> {
        body["alerts"]
            .as_array()
            .expect("alerts array")
            .iter()
            .map(|a| a["id"].as_u64().expect("id"))
            .collect()
    }

    async fn list(path: &str) -> (StatusCode, Value) {
        let (_dir, state) = test_state();
        get(&state, "GET", path).await
    }

    #[tokio::test]
    async fn alerts_are_listed_newest_first() {
        let (status, body) = list("/api/alerts").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(ids(&body), [5, 4, 3, 2, 1]);
        assert_eq!(body["next"], Value::Null);
        let newest = &body["alerts"][0];
        assert_eq!(newest["kind"], "syn_flood");
        assert_eq!(newest["src"], "198.18.0.3");
        assert_eq!(newest["first_seen"], "2026-01-01T00:05:00Z");
    }

    #[tokio::test]
    async fn pages_follow_next() {
        let (_dir, state) = test_state();
        let mut path = "/api/alerts?limit=2".to_owned();
        let mut seen = Vec::new();
        let mut pages = 0;
        loop {
            let (status, body) = get(&state, "GET", &path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            seen.extend(ids(&body));
            pages += 1;
            match body["next"].as_u64() {
                Some(next) => path = format!("/api/alerts?limit=2&cursor={next}"),
                None => break,
            }
        }
        assert_eq!(pages, 3);
        assert_eq!(seen, [5, 4, 3, 2, 1]);
    }

    #[tokio::test]
    async fn each_filter_narrows_the_list() {
        let cases = [
            ("kind=port_scan", vec![4, 2]),
            ("src=198.18.0.3", vec![5, 3, 1]),
            ("dst=10.0.0.2", vec![4, 2]),
            ("dst_port=80", vec![5, 4, 3, 2, 1]),
            ("dst_port=22", vec![4, 2]),
            ("dst_port=8080", vec![]),
            ("since=2026-01-01T00:04:10Z", vec![5, 4]),
            ("until=2026-01-01T00:02:00Z", vec![2, 1]),
            (
                "since=2026-01-01T00:02:15%2B00:00&until=2026-01-01T00:03:00Z",
                vec![3, 2],
            ),
            ("state=open", vec![5, 4, 3]),
            ("state=closed", vec![2, 1]),
            ("kind=syn_flood&state=open", vec![5, 3]),
            ("src=2001:db8::1", vec![]),
            ("cursor=3", vec![2, 1]),
            ("limit=1", vec![5]),
        ];
        let (_dir, state) = test_state();
        for (query, expected) in cases {
            let (status, body) = get(&state, "GET", &format!("/api/alerts?{query}")).await;
            assert_eq!(status, StatusCode::OK, "{query}: {body}");
            assert_eq!(ids(&body), expected, "{query}");
        }
    }

    #[tokio::test]
    async fn every_bad_parameter_is_a_400_naming_it() {
        let cases = [
            (
                "limit=5000",
                "limit",
                "limit must be between 1 and 1000, got 5000",
            ),
            ("limit=0", "limit", "between 1 and 1000"),
            ("limit=-1", "limit", "between 1 and 1000"),
            ("limit=ten", "limit", "got ten"),
            (
                "limit=99999999999999999999999",
                "limit",
                "between 1 and 1000",
            ),
            ("since=yesterday", "since", "since is not an RFC 3339 time"),
            (
                "until=2026-13-01T00:00:00Z",
                "until",
                "until is not an RFC 3339 time",
            ),
            ("kind=flood", "kind", "unknown alert kind `flood`"),
            ("state=maybe", "state", "unknown alert state `maybe`"),
            ("src=10.0.0", "src", "src is not an IP address"),
            ("dst=host.example", "dst", "dst is not an IP address"),
            (
                "dst_port=70000",
                "dst_port",
                "dst_port is not a port number",
            ),
            ("cursor=abc", "cursor", "cursor must be an alert id"),
            ("cursor=-4", "cursor", "cursor must be an alert id"),
            ("foo=1", "foo", "unknown parameter foo"),
            ("limit=1&limit=2", "limit", "more than once"),
            (
                "since=2026-01-01T00:05:00Z&until=2026-01-01T00:01:00Z",
                "until",
                "before since",
            ),
        ];
        assert_bad_parameters("/api/alerts", &cases).await;
    }

    #[tokio::test]
    async fn one_alert_by_id() {
        let (_dir, state) = test_state();
        let (status, body) = get(&state, "GET", "/api/alerts/3").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["id"], 3);
        assert_eq!(body["message"], "alert 3");
        assert_eq!(body["evidence"]["unit"], "SYN/s");
    }

    #[tokio::test]
    async fn a_missing_alert_is_a_404() {
        let (status, body) = list("/api/alerts/42").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"], "no alert with id 42");
    }

    #[tokio::test]
    async fn a_non_numeric_id_is_a_400() {
        let (status, body) = list("/api/alerts/latest").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["parameter"], "id");
        assert!(
            body["error"].as_str().unwrap().contains("`latest`"),
            "{body}"
        );
    }
}
