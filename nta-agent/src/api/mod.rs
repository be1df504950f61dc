//! The HTTP API (warp): alerts, live stats and feed, traffic history,
//! metrics, health, and the dashboard.
//!
//! - [`alerts`]: `GET /api/alerts`, `GET /api/alerts/{id}`.
//! - [`blocks`]: `GET`, `POST /api/blocks`, `DELETE /api/blocks/{cidr}`.
//! - [`stats`]: `GET /api/stats`.
//! - [`stream`]: `GET /api/stream` (Server-Sent Events).
//! - [`history`]: `GET /api/history`.
//! - [`flows`]: `GET /api/flows`.
//! - [`hosts`]: `GET /api/hosts/{ip}`.
//! - [`top`]: `GET /api/top`.
//! - [`metrics`]: `GET /metrics` (Prometheus text).
//! - [`health`]: `GET /healthz`.
//! - [`dashboard`]: `GET /` and the page's files.
//! - [`auth`]: the token that `/api/*` and `/metrics` require when set.
//! - [`tls`]: HTTPS: the certificate and key, and the server over them.
//!
//! Every API response is JSON, errors included: `{"error": "..."}`, plus
//! `"parameter"` naming the query parameter a 400 is about.

mod alerts;
pub mod auth;
mod blocks;
mod dashboard;
mod flows;
mod health;
mod history;
mod hosts;
mod metrics;
pub mod rules;
mod stats;
pub mod stream;
pub mod tls;
mod top;

use std::{convert::Infallible, future::Future, net::SocketAddr, sync::Arc};

use serde_json::json;
use tokio::net::TcpListener;
use tracing::warn;
use warp::{
    Filter, Rejection, Reply,
    http::StatusCode,
    reject::{InvalidHeader, InvalidQuery, LengthRequired, MethodNotAllowed},
    reply::Response,
};

use self::{auth::Auth, stream::Feed, tls::Tls};
pub use self::{blocks::Mitigation, stats::Report};
use crate::{
    mitigate::protect::ApiClients,
    notify::NotifyStats,
    stats::LiveView,
    store::{Store, StoreError},
    timings::Timings,
};

/// Everything the API serves, built in one expression by whoever starts
/// it; [`routes`] hands each handler only the parts it reads.
#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<Store>,
    pub live: LiveView,
    pub feed: Feed,
    pub auth: Auth,
    pub timings: Timings,
    /// Notification counts by channel (none configured: empty).
    pub notify: Arc<NotifyStats>,
    pub mitigation: Mitigation,
    /// Rules reloads (`POST /api/rules/reload`).
    pub rules: rules::RulesControl,
}

impl ApiState {
    /// The API over `store` and `live`, with a new feed and timings, no
    /// notification channel and no blocklist: what tests of the read-only
    /// endpoints need. The agent sets every field.
    pub fn new(store: Arc<Store>, live: LiveView, auth: Auth) -> Self {
        Self {
            store,
            live,
            feed: Feed::new(),
            auth,
            timings: Timings::default(),
            notify: Arc::default(),
            mitigation: Mitigation::default(),
            rules: rules::RulesControl::default(),
        }
    }

    /// What `/api/stats`, `/metrics` and the feed's `stats` events report.
    pub fn report(&self) -> Report {
        Report {
            live: self.live.clone(),
            store: self.store.clone(),
            notify: self.notify.clone(),
        }
    }
}

/// Errors of starting the API server.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(
        "cannot listen on {addr} for the API: {source}; choose another address or stop the program using it"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Binds the API's listening socket. Separate from [`serve`] so that a bind
/// failure is an error at startup, and so that tests can bind port 0 and read
/// the address with `local_addr()`.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ApiError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ApiError::Bind { addr, source })
}

/// Serves [`routes`] on `listener` until `shutdown` completes, then lets the
/// requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    state: ApiState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    warp::serve(routes(state))
        .incoming(listener)
        .graceful(shutdown)
        .run()
        .await;
}

/// Serves [`routes`] over HTTPS with `tls` on `listener` until `shutdown`
/// completes, then lets the requests in flight finish, as [`serve`] does.
pub async fn serve_tls(
    listener: TcpListener,
    state: ApiState,
    tls: Tls,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    tls::serve(listener, state, tls, shutdown).await;
}

/// The API's URL on `addr`: `https://` with TLS, else `http://`.
pub fn url(addr: SocketAddr, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{addr}")
}

/// Whether the token, and what the dashboard shows, would cross the
/// network unencrypted: no TLS on an address other hosts can reach.
pub fn in_clear_beyond_loopback(addr: SocketAddr, tls: bool) -> bool {
    !tls && !addr.ip().is_loopback()
}

/// All routes: the API and `/metrics` behind the token (when one is set),
/// the dashboard and `/healthz` open; JSON 401, 404 and 405 for the rest.
pub fn routes(state: ApiState) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let report = state.report();
    let ApiState {
        store,
        feed,
        auth,
        timings,
        mitigation,
        rules,
        ..
    } = state;
    let clients = mitigation.clients.clone();
    let data = alerts::alerts_handler(store.clone())
        .or(alerts::alert_handler(store.clone()))
        .or(stats::stats_handler(report.clone()))
        .or(flows::flows_handler(store.clone()))
        .or(hosts::host_handler(store.clone()))
        .or(top::top_handler(store.clone()))
        .or(history::history_handler(store))
        .or(blocks::list_handler(mitigation.clone()))
        .or(metrics::metrics_handler(
            report.clone(),
            timings,
            feed.clone(),
        ));
    // The stream checks its own token: it also accepts one in the query.
    // Changes to the blocklist need the admin token, always.
    stream::stream_handler(feed, report, auth.clone())
        .or(blocks::change_handlers(mitigation, auth.clone()))
        .or(rules::reload_handler(rules, auth.clone()))
        .or(auth::authorized(auth).and(record_client(clients)).and(data))
        .or(health::health_handler())
        .or(dashboard::dashboard_handler())
        .recover(recover)
        // Browsers must not guess a type for attacker-influenced JSON.
        .with(warp::reply::with::header(
            "x-content-type-options",
            "nosniff",
        ))
}

/// Notes the address of a client that passed the token check, so that
/// automatic mitigation never locks it out.
fn record_client(
    clients: Arc<ApiClients>,
) -> impl Filter<Extract = (), Error = Infallible> + Clone {
    remote_addr()
        .map(move |addr: Option<SocketAddr>| {
            if let Some(addr) = addr {
                clients.saw(addr.ip());
            }
        })
        .untuple_one()
}

/// The client's address of a connection served over TLS, which the TLS
/// server puts in each request: warp's `addr::remote` only knows the
/// connections of its own server.
#[derive(Debug, Clone, Copy)]
struct TlsPeer(SocketAddr);

/// The client's address, whichever server accepted the connection.
fn remote_addr() -> impl Filter<Extract = (Option<SocketAddr>,), Error = Infallible> + Clone {
    warp::addr::remote()
        .and(warp::ext::optional::<TlsPeer>())
        .map(|plain: Option<SocketAddr>, tls: Option<TlsPeer>| {
            plain.or(tls.map(|TlsPeer(addr)| addr))
        })
}

/// Passes a clone of `arg` to the handler.
fn with_arg<T: Clone + Send>(arg: T) -> impl Filter<Extract = (T,), Error = Infallible> + Clone {
    warp::any().map(move || arg.clone())
}

/// Turns warp's rejections (no route matched) into JSON errors.
async fn recover(rejection: Rejection) -> Result<Response, Rejection> {
    // Method first: a path that exists with another method is combined with
    // the other routes' "not found".
    let reply = if let Some(unauthorized) = rejection.find::<auth::Unauthorized>() {
        let reply = error_reply(StatusCode::UNAUTHORIZED, &unauthorized.message(), None);
        warp::reply::with_header(reply, "www-authenticate", r#"Bearer realm="nta""#).into_response()
    } else if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        error_reply(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the request body is too large",
            None,
        )
    } else if rejection.find::<LengthRequired>().is_some() {
        // Before the method: a chunked POST to /api/blocks is also rejected
        // by the route's GET, and "method not allowed" would mislead.
        error_reply(
            StatusCode::LENGTH_REQUIRED,
            "the request body needs a Content-Length (chunked bodies are not accepted)",
            None,
        )
    } else if let Some(header) = rejection.find::<InvalidHeader>() {
        // A header a route reads (Authorization) that is not visible ASCII:
        // the client's mistake, not the server's, so a 400 and not a 500.
        error_reply(
            StatusCode::BAD_REQUEST,
            &format!(
                "the {} header cannot be read (only printable ASCII is accepted)",
                header.name()
            ),
            None,
        )
    } else if rejection.find::<MethodNotAllowed>().is_some() {
        error_reply(StatusCode::METHOD_NOT_ALLOWED, "method not allowed", None)
    } else if rejection.is_not_found() {
        error_reply(StatusCode::NOT_FOUND, "not found", None)
    } else if rejection.find::<InvalidQuery>().is_some() {
        error_reply(
            StatusCode::BAD_REQUEST,
            "the query string cannot be decoded",
            None,
        )
    } else {
        warn!(message = "Unhandled API rejection", ?rejection);
        error_reply(StatusCode::INTERNAL_SERVER_ERROR, "internal error", None)
    };
    Ok(reply)
}

/// Why a request failed, as the handlers report it.
#[derive(Debug, thiserror::Error)]
enum HandlerError {
    /// A query or path parameter is missing, unknown or malformed.
    #[error("{message}")]
    BadParameter { parameter: String, message: String },
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
    #[error("{0}")]
    Unavailable(String),
    /// The request was understood but what it asks for failed (a rules
    /// file that does not load).
    #[error("{0}")]
    Unprocessable(String),
}

impl HandlerError {
    fn bad(parameter: &str, message: impl Into<String>) -> Self {
        Self::BadParameter {
            parameter: parameter.to_owned(),
            message: message.into(),
        }
    }

    fn into_response(self) -> Response {
        let status = self.status_code();
        match self {
            Self::BadParameter { parameter, message } => {
                error_reply(status, &message, Some(&parameter))
            }
            Self::Store(StoreError::Query(error)) => {
                error_reply(status, &error.to_string(), Some(error.parameter()))
            }
            // The disk failed: the store writer has logged it once and
            // retries; each request saying so again would flood the log.
            Self::Store(error) if error.failed_handle() => error_reply(
                status,
                &format!(
                    "{error}; detection goes on: new alerts are on /api/stream, the store's state in /api/stats"
                ),
                None,
            ),
            Self::Store(error) => {
                warn!(message = "API request failed in the store", %error);
                error_reply(status, &error.to_string(), None)
            }
            Self::Internal(error) => {
                warn!(message = "API request failed", %error);
                error_reply(status, &error, None)
            }
            Self::NotFound(message) | Self::Unavailable(message) | Self::Unprocessable(message) => {
                error_reply(status, &message, None)
            }
        }
    }
}

/// The HTTP status an error answers with, decided once for each kind of
/// error rather than by each handler that meets it.
trait ErrorStatus {
    fn status_code(&self) -> StatusCode;
}

impl ErrorStatus for HandlerError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadParameter { .. } => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Store(error) => error.status_code(),
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }
}

impl ErrorStatus for StoreError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Query(_) => StatusCode::BAD_REQUEST,
            // A failed handle is reopened by the writer: unavailable for now,
            // not broken.
            error if error.failed_handle() => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The response for a handler's result.
fn respond<T: Reply>(result: Result<T, HandlerError>) -> Response {
    match result {
        Ok(reply) => reply.into_response(),
        Err(error) => error.into_response(),
    }
}

fn error_reply(status: StatusCode, message: &str, parameter: Option<&str>) -> Response {
    let body = match parameter {
        Some(parameter) => json!({ "error": message, "parameter": parameter }),
        None => json!({ "error": message }),
    };
    warp::reply::with_status(warp::reply::json(&body), status).into_response()
}

/// Runs a store call on tokio's blocking pool: redb reads and writes are
/// synchronous file I/O and would otherwise stall the server's workers.
async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, HandlerError> {
    tokio::task::spawn_blocking(call)
        .await
        .map_err(|e| HandlerError::Internal(format!("store task failed: {e}")))?
        .map_err(HandlerError::from)
}

/// A request's query parameters, checked against the ones its endpoint knows.
struct Params(Vec<(String, String)>);

impl Params {
    /// Refuses unknown and repeated parameters, so that a typo (`?lmit=5`)
    /// is an error rather than silently ignored.
    fn new(pairs: Vec<(String, String)>, known: &[&str]) -> Result<Self, HandlerError> {
        for (i, (name, _)) in pairs.iter().enumerate() {
            if !known.contains(&name.as_str()) {
                return Err(HandlerError::bad(
                    name,
                    format!(
                        "unknown parameter {name} (expected one of {})",
                        known.join(", ")
                    ),
                ));
            }
            if pairs[..i].iter().any(|(n, _)| n == name) {
                return Err(HandlerError::bad(
                    name,
                    format!("parameter {name} is given more than once"),
                ));
            }
        }
        Ok(Self(pairs))
    }

    /// Parses parameter `name` if present; `parse`'s message becomes the 400.
    fn get<T>(
        &self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, HandlerError> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, value)| parse(value).map_err(|message| HandlerError::bad(name, message)))
            .transpose()
    }
}

/// Parses an RFC 3339 time parameter.
fn parse_time(name: &str) -> impl FnOnce(&str) -> Result<jiff::Timestamp, String> + '_ {
    move |value| {
        value.parse().map_err(|e| {
            format!("{name} is not an RFC 3339 time (like 2026-01-01T12:00:00Z): `{value}`: {e}")
        })
    }
}

/// A `limit` between 1 and `max`; a huge number is out of range, not
/// "not a number".
fn limit_up_to(max: usize) -> impl Fn(&str) -> Result<usize, String> {
    move |value| {
        let out_of_range = || format!("limit must be between 1 and {max}, got {value}");
        let limit: u128 = value.parse().map_err(|_| out_of_range())?;
        usize::try_from(limit)
            .ok()
            .filter(|l| (1..=max).contains(l))
            .ok_or_else(out_of_range)
    }
}

/// The period of `since` and `until`: `until` defaults to now, `since` to
/// `default` before `until`; a 400 names the one that is wrong.
fn period(
    params: &Params,
    default: jiff::SignedDuration,
) -> Result<(jiff::Timestamp, jiff::Timestamp), HandlerError> {
    let until = params
        .get("until", parse_time("until"))?
        .unwrap_or_else(jiff::Timestamp::now);
    let since = match params.get("since", parse_time("since"))? {
        Some(since) => since,
        None => until.checked_sub(default).map_err(|e| {
            HandlerError::bad(
                "until",
                format!("until is too early to look {default:#} back: {e}"),
            )
        })?,
    };
    ordered(Some(since), Some(until))?;
    Ok((since, until))
}

/// `%2F` → `/` and the like: a CIDR or an IPv6 address in a path is
/// written either way.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = text
                .get(i + 1..i + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A 400 naming `until` when it comes before `since`.
fn ordered(
    since: Option<jiff::Timestamp>,
    until: Option<jiff::Timestamp>,
) -> Result<(), HandlerError> {
    match (since, until) {
        (Some(since), Some(until)) if until < since => Err(HandlerError::bad(
            "until",
            format!("until ({until}) is before since ({since})"),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        alert::fixtures, sensor::AttachedMode, stats::LiveStats, store::tests::temp_store,
    };

    /// The paths that read data, one of each kind.
    pub(super) const DATA_PATHS: [&str; 6] = [
        "/api/alerts",
        "/api/alerts/1",
        "/api/stats",
        "/api/history",
        "/api/hosts/10.0.0.1",
        "/api/top",
    ];

    /// Each `(query, parameter, message)`: `GET {path}?{query}` is a 400
    /// naming `parameter`, its error containing `message`.
    pub(super) async fn assert_bad_parameters(path: &str, cases: &[(&str, &str, &str)]) {
        let (_dir, state) = test_state();
        for (query, parameter, message) in cases {
            let (status, body) = get(&state, "GET", &format!("{path}?{query}")).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
            assert_eq!(body["parameter"], *parameter, "{query}: {body}");
            let error = body["error"].as_str().expect("error string");
            assert!(error.contains(message), "{query}: {error}");
        }
    }

    /// A store holding [`fixtures::five_alerts`] and an API over it.
    pub(super) fn test_state() -> (tempfile::TempDir, ApiState) {
        let (dir, store) = temp_store();
        store.put_alerts(&fixtures::five_alerts()).unwrap();
        let live = LiveView::new(LiveStats {
            iface: "eth0".into(),
            xdp_mode: Some(AttachedMode::Native),
            ..LiveStats::default()
        });
        let state = ApiState::new(Arc::new(store), live, Auth::open());
        (dir, state)
    }

    /// Status and JSON body of a request against [`routes`].
    pub(super) async fn get(
        state: &ApiState,
        method: &str,
        path: &str,
    ) -> (StatusCode, serde_json::Value) {
        let response = warp::test::request()
            .method(method)
            .path(path)
            .reply(&routes(state.clone()))
            .await;
        assert_eq!(
            response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/json"),
            "{method} {path}"
        );
        let body = serde_json::from_slice(response.body())
            .unwrap_or_else(|e| panic!("{method} {path}: body is not JSON: {e}"));
        (response.status(), body)
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("198.18.0.0%2F24"), "198.18.0.0/24");
        assert_eq!(percent_decode("2001%3Adb8%3A%3A%2f48"), "2001:db8::/48");
        assert_eq!(percent_decode("100%"), "100%");
    }

    #[tokio::test]
    async fn healthz_says_ok() {
        let (_dir, state) = test_state();
        let (status, body) = get(&state, "GET", "/healthz").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, json!({"status": "ok"}));
    }

    #[tokio::test]
    async fn unknown_paths_are_a_json_404() {
        let (_dir, state) = test_state();
        for path in ["/api", "/api/alert", "/api/alerts/1/extra"] {
            let (status, body) = get(&state, "GET", path).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
            assert_eq!(body, json!({"error": "not found"}), "{path}");
        }
    }

    #[tokio::test]
    async fn wrong_methods_are_a_json_405() {
        let (_dir, state) = test_state();
        for path in DATA_PATHS.into_iter().chain(["/healthz"]) {
            let (status, body) = get(&state, "POST", path).await;
            assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{path}");
            assert_eq!(body, json!({"error": "method not allowed"}), "{path}");
        }
        let (status, _) = get(&state, "POST", "/nowhere").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    /// An Authorization header that is not visible ASCII is the client's
    /// error (`tests/api_hostile.rs` and the `api_query` fuzz target send
    /// such headers).
    #[tokio::test]
    async fn an_unreadable_authorization_header_is_a_400_not_a_500() {
        let (_dir, state) = test_state();
        for (path, value) in [
            ("/api/alerts", &b"Bearer \xff\xfe\xfd"[..]),
            ("/nowhere", b"\xc3\x28"),
            // The fuzzer's input, `\x1fhealrtez\nahBer \xff\xfe`: route `/`,
            // the bytes after `\n` as the header.
            ("/healrtez", b"ahBer \xff\xfe"),
        ] {
            let response = warp::test::request()
                .path(path)
                .header(
                    "authorization",
                    warp::http::HeaderValue::from_bytes(value).unwrap(),
                )
                .reply(&routes(state.clone()))
                .await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
            let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
            assert!(
                body["error"]
                    .as_str()
                    .unwrap()
                    .contains("authorization header"),
                "{body}"
            );
        }
        // A header the API does not read may hold anything.
        let response = warp::test::request()
            .path("/api/alerts")
            .header(
                "x-note",
                warp::http::HeaderValue::from_bytes(b"caf\xe9").unwrap(),
            )
            .reply(&routes(state))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
    }

    /// A POST without Content-Length (chunked) is told what is missing,
    /// not "method not allowed" (`tests/api_hostile.rs` sends such posts).
    #[tokio::test]
    async fn a_post_without_content_length_is_a_411() {
        let (_dir, state) = test_state();
        let state = ApiState {
            auth: Auth::open().with_admin("admin-token-0123456789abcdef".into(), None),
            ..state
        };
        let response = warp::test::request()
            .method("POST")
            .path("/api/blocks")
            .header("authorization", "Bearer admin-token-0123456789abcdef")
            .header("transfer-encoding", "chunked")
            .reply(&routes(state))
            .await;
        assert_eq!(response.status(), StatusCode::LENGTH_REQUIRED);
    }

    /// A [`serve`] task and the sender that shuts it down.
    struct Running {
        stop: tokio::sync::oneshot::Sender<()>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Running {
        /// Shuts the server down, which must stop within 5 s (`expected`
        /// says why it should).
        async fn stops(self, expected: &str) {
            self.stop.send(()).unwrap();
            tokio::time::timeout(std::time::Duration::from_secs(5), self.task)
                .await
                .expect(expected)
                .unwrap();
        }
    }

    /// [`serve`] on a loopback port, and a connection to it.
    async fn serve_and_connect(state: ApiState) -> (tokio::net::TcpStream, Running) {
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, state, async {
            let _ = stopped.await;
        }));
        let conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        (conn, Running { stop, task })
    }

    #[tokio::test]
    async fn serve_answers_on_the_bound_port_and_stops_on_shutdown() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let (_dir, state) = test_state();
        let (mut conn, server) = serve_and_connect(state).await;
        conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: nta\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut response = String::new();
        conn.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.ends_with(r#"{"status":"ok"}"#), "{response}");

        server.stops("server stops after shutdown").await;
    }

    #[tokio::test]
    async fn shutdown_ends_open_streams_once_the_feed_closes() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let (_dir, state) = test_state();
        let feed = state.feed.clone();
        let (mut conn, server) = serve_and_connect(state).await;
        conn.write_all(b"GET /api/stream HTTP/1.1\r\nHost: nta\r\n\r\n")
            .await
            .unwrap();
        let mut head = vec![0; 4096];
        let n = conn.read(&mut head).await.unwrap();
        let head = String::from_utf8_lossy(&head[..n]);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.contains("text/event-stream"), "{head}");

        // As `run` does: close the feed, then stop the server, which waits
        // for requests in flight: the stream must not be one forever.
        feed.close();
        server.stops("server stops with a stream open").await;
    }

    #[test]
    fn the_url_says_https_with_tls_and_the_clear_beyond_loopback_is_told() {
        let any: SocketAddr = "0.0.0.0:3000".parse().unwrap();
        let loopback: SocketAddr = "[::1]:3000".parse().unwrap();
        assert_eq!(url(any, true), "https://0.0.0.0:3000");
        assert_eq!(url(loopback, false), "http://[::1]:3000");
        assert!(in_clear_beyond_loopback(any, false));
        assert!(!in_clear_beyond_loopback(any, true));
        assert!(!in_clear_beyond_loopback(loopback, false));
        assert!(!in_clear_beyond_loopback(
            "127.0.0.1:3000".parse().unwrap(),
            false
        ));
    }

    #[tokio::test]
    async fn binding_a_used_address_names_it() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let err = bind(addr).await.expect_err("address in use");
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
    }
}
