//! The API's routes (`nta_agent::api::routes`, as `serve` runs them) on
//! fuzzed requests: a path and query string under `/api/alerts`,
//! `/api/alerts/{id}`, `/api/history`, `/api/blocks`, `/api/stream` or `/`,
//! an `Authorization` header (none, a right token, or fuzzed bytes), and for
//! `POST /api/blocks` a fuzzed body, with or without its `Content-Length`.
//!
//! Asserts: no panic; never a 5xx (the one store here is healthy and the
//! blocklist's kernel side never fails, so a 5xx can only be a request
//! turned into a server error); every `/api/` answer is JSON; the state is
//! left as found (a block that a fuzzed body managed to add is removed
//! again, which must succeed), so that every input is reproducible alone.
//!
//! Requests whose target `http::Uri` refuses never reach warp (hyper answers
//! 400 itself), so they are skipped here; `tests/api_hostile.rs` sends them
//! over a real socket.

#![no_main]

use std::{
    net::SocketAddr,
    sync::{Arc, OnceLock},
};

use libfuzzer_sys::fuzz_target;
use nta_agent::{
    alert::fixtures,
    api::{self, ApiState, auth::Auth},
    store::Store,
};
use nta_common::{Counter, GlobalCounters};
use warp::http::{HeaderValue, StatusCode, Uri};

/// The API state the hostile-API suite serves too.
#[path = "../../nta-agent/tests/support/memory_api.rs"]
mod memory_api;

const ADMIN: &str = "fuzz-admin-token-0123456789abcdef";
const READ: &str = "fuzz-read-token-0123456789abcdef";

struct Env {
    runtime: tokio::runtime::Runtime,
    /// No read token (as on loopback), the admin token for changes.
    open: ApiState,
    /// The read token required too.
    guarded: ApiState,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let path = std::env::temp_dir().join(format!("nta-fuzz-api-{}.redb", std::process::id()));
        let store = Arc::new(Store::open(&path).expect("opening the fuzz store"));
        // The open file is all the store needs: nothing is left behind
        // however libFuzzer exits.
        let _ = std::fs::remove_file(&path);
        store
            .put_alerts(&fixtures::five_alerts())
            .expect("storing alerts");
        // 20 seconds of traffic from 2026-01-01T00:00:00Z, for /api/history.
        let start = jiff::Timestamp::from_second(1_767_225_600).expect("time");
        for s in 0..20 {
            let mut deltas = GlobalCounters::ZERO;
            deltas.values[Counter::Packets as usize] = s;
            deltas.values[Counter::TcpSyn as usize] = 2;
            let at = start + jiff::SignedDuration::from_secs(s as i64);
            store.record_history(at, &deltas).expect("storing history");
        }
        let open = memory_api::state(
            store,
            Auth::open().with_admin(ADMIN.into(), Some("/nowhere/token".into())),
        );
        // Streams end after their first event, instead of never.
        open.feed.close();
        let guarded = ApiState {
            auth: Auth::for_listen("0.0.0.0:3000".parse().expect("address"), Some(READ))
                .expect("token")
                .with_admin(ADMIN.into(), None),
            ..open.clone()
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        Env {
            runtime,
            open,
            guarded,
        }
    })
}

/// What one input asks for.
struct Request<'a> {
    method: &'static str,
    path: String,
    authorization: Option<HeaderValue>,
    body: Option<&'a [u8]>,
    /// Sent instead of the body's length, when fuzzed.
    content_length: Option<HeaderValue>,
    guarded: bool,
}

/// Byte 0 chooses the route (bits 0-2), the authorization (bits 3-4), the
/// state (bit 5) and how the body's length is told (bits 6-7); the rest is
/// the path's fuzzed part, then after a `\n`, the header or body bytes.
fn request(data: &[u8]) -> Option<Request<'_>> {
    let (&selector, rest) = data.split_first()?;
    let (tail, extra) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &b""[..]),
    };
    let tail = std::str::from_utf8(tail).ok()?;
    let (method, prefix) = match selector & 7 {
        0 => ("GET", "/api/alerts?"),
        1 => ("GET", "/api/history?"),
        2 => ("GET", "/api/blocks?"),
        3 => ("GET", "/api/alerts/"),
        4 => ("DELETE", "/api/blocks/"),
        5 => ("POST", "/api/blocks?"),
        6 => ("GET", "/api/stream?"),
        _ => ("GET", "/"),
    };
    let path = format!("{prefix}{tail}");
    // Hyper refuses what `Uri` refuses, before any route sees it.
    Uri::try_from(path.as_str()).ok()?;
    let authorization = match (selector >> 3) & 3 {
        0 => None,
        1 => Some(HeaderValue::from_str(&format!("Bearer {ADMIN}")).ok()?),
        2 => Some(HeaderValue::from_str(&format!("Bearer {READ}")).ok()?),
        _ => Some(HeaderValue::from_bytes(extra).ok()?),
    };
    let (body, content_length) = match (method, selector >> 6) {
        ("POST", 0) => (Some(extra), None),
        ("POST", 1) => (None, None),
        ("POST", 2) => (Some(extra), HeaderValue::from_bytes(tail.as_bytes()).ok()),
        _ => (None, None),
    };
    Some(Request {
        method,
        path,
        authorization,
        body,
        content_length,
        guarded: selector & 0x20 != 0,
    })
}

async fn send(state: &ApiState, req: &Request<'_>) -> (StatusCode, Vec<u8>, bool) {
    let mut builder = warp::test::request()
        .method(req.method)
        .path(&req.path)
        .remote_addr(SocketAddr::from(([127, 0, 0, 1], 40_000)));
    if let Some(value) = &req.authorization {
        builder = builder.header("authorization", value.clone());
    }
    if let Some(body) = req.body {
        builder = builder.body(body);
    }
    if let Some(value) = &req.content_length {
        builder = builder.header("content-length", value.clone());
    }
    let response = builder.reply(&api::routes(state.clone())).await;
    let json = response
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    (response.status(), response.body().to_vec(), json)
}

fuzz_target!(|data: &[u8]| {
    let Some(req) = request(data) else {
        return;
    };
    let env = env();
    let state = if req.guarded { &env.guarded } else { &env.open };
    env.runtime.block_on(async {
        let (status, body, json) = send(state, &req).await;
        let shown = String::from_utf8_lossy(&body);
        assert!(
            !status.is_server_error(),
            "{} {} → {status}: {shown}",
            req.method,
            req.path
        );
        if req.path.starts_with("/api/") && !req.path.starts_with("/api/stream") {
            assert!(
                json,
                "{} {} → {status}, not JSON: {shown}",
                req.method, req.path
            );
        }
        // A block added by a fuzzed body is lifted again.
        if req.method == "POST" && status == StatusCode::CREATED {
            let value: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
            let cidr = value["block"]["cidr"]
                .as_str()
                .expect("cidr")
                .replace('/', "%2F");
            let undo = Request {
                method: "DELETE",
                path: format!("/api/blocks/{cidr}"),
                authorization: Some(HeaderValue::from_static(
                    "Bearer fuzz-admin-token-0123456789abcdef",
                )),
                body: None,
                content_length: None,
                guarded: req.guarded,
            };
            let (status, body, _) = send(state, &undo).await;
            assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        }
    });
});
