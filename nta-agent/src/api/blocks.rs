//! The blocklist: `GET /api/blocks`, `POST /api/blocks`,
//! `DELETE /api/blocks/{cidr}`. Changes always need the admin token.

use std::sync::{Arc, PoisonError};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use warp::{Filter, Rejection, Reply, http::StatusCode, path::Tail, reply::Response};

use super::{HandlerError, auth, auth::Auth, percent_decode, respond, with_arg};
use crate::{
    block::{
        Added, AutoView, Block, InvalidBlock, Listing, Origin, Removed, check_reason, parse_cidr,
        parse_ttl,
    },
    mitigate::{
        auto::AutoPolicy,
        blocklist::{BlockError, SharedBlocklist},
        protect::ApiClients,
    },
};

/// What the blocklist endpoints read and change.
#[derive(Clone, Default)]
pub struct Mitigation {
    /// The XDP blocklist (none when no sensor is loaded, as in some tests).
    pub blocklist: Option<SharedBlocklist>,
    /// Automatic mitigation's settings, as `/api/blocks` shows them.
    pub policy: AutoPolicy,
    /// Recent authenticated clients, never blocked automatically.
    pub clients: Arc<ApiClients>,
}

/// Largest request body: a CIDR, a duration and a short reason.
const MAX_BODY: u64 = 4096;

/// `POST /api/blocks` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BlockRequest {
    cidr: String,
    /// `10m`, `2h`...; absent: until removed.
    ttl: Option<String>,
    reason: Option<String>,
}

/// `GET /api/blocks` → `{"blocks": [...], "decisions": [...], "auto": {...}}`.
pub(super) fn list_handler(
    mitigation: Mitigation,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("api" / "blocks")
        .and(warp::get())
        .and(with_arg(mitigation))
        .then(|state: Mitigation| async move { respond(list(state).await) })
}

/// `POST /api/blocks` and `DELETE /api/blocks/{cidr}`, behind the admin
/// token.
pub(super) fn change_handlers(
    mitigation: Mitigation,
    auth: Auth,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let add = warp::path!("api" / "blocks")
        .and(warp::post())
        .and(auth::admin(auth.clone()))
        .and(super::record_client(mitigation.clients.clone()))
        .and(warp::body::content_length_limit(MAX_BODY))
        .and(warp::body::bytes())
        .and(with_arg(mitigation.clone()))
        .then(
            |body: warp::hyper::body::Bytes, state: Mitigation| async move {
                respond(add(&body, state).await)
            },
        );
    let remove = warp::path("api")
        .and(warp::path("blocks"))
        .and(warp::path::tail())
        .and(warp::delete())
        .and(auth::admin(auth))
        .and(super::record_client(mitigation.clients.clone()))
        .and(with_arg(mitigation))
        .then(|tail: Tail, state: Mitigation| async move { respond(remove(tail, state).await) });
    add.or(remove)
}

fn blocklist(state: &Mitigation) -> Result<SharedBlocklist, HandlerError> {
    state.blocklist.clone().ok_or_else(|| {
        HandlerError::Unavailable(
            "this agent has no blocklist (its XDP program is not loaded)".into(),
        )
    })
}

/// Runs `call` on the blocklist on the blocking pool: it writes the kernel
/// map and commits to the store.
async fn with_blocklist<T: Send + 'static>(
    state: &Mitigation,
    call: impl FnOnce(&mut crate::mitigate::blocklist::Blocklist) -> Result<T, BlockError>
    + Send
    + 'static,
) -> Result<T, HandlerError> {
    let list = blocklist(state)?;
    tokio::task::spawn_blocking(move || {
        let mut list = list.lock().unwrap_or_else(PoisonError::into_inner);
        call(&mut list)
    })
    .await
    .map_err(|e| HandlerError::Internal(format!("blocklist task failed: {e}")))?
    .map_err(HandlerError::from)
}

async fn list(state: Mitigation) -> Result<Response, HandlerError> {
    let auto = state.policy.clone();
    let (blocks, decisions, auto_entries) = with_blocklist(&state, |list| {
        Ok((list.list()?, list.decisions(), list.auto_entries()))
    })
    .await?;
    Ok(json(&Listing {
        blocks,
        decisions,
        auto: AutoView {
            enabled: auto.enabled,
            dry_run: auto.dry_run,
            ttl_secs: auto.ttl.unsigned_abs().as_secs(),
            max_entries: auto.max_entries,
            entries: auto_entries,
        },
    })?
    .into_response())
}

async fn add(body: &[u8], state: Mitigation) -> Result<Response, HandlerError> {
    let request: BlockRequest = serde_json::from_slice(body).map_err(|e| {
        HandlerError::bad(
            "body",
            format!(r#"expected JSON like {{"cidr": "198.51.100.7", "ttl": "10m", "reason": "..."}}: {e}"#),
        )
    })?;
    let cidr = parse_cidr(&request.cidr)?;
    let now = Timestamp::now();
    let expires = request
        .ttl
        .as_deref()
        .map(parse_ttl)
        .transpose()?
        .map(|ttl| now + ttl);
    let reason = check_reason(request.reason.as_deref().unwrap_or("blocked by hand"))?;
    let block = Block {
        cidr,
        reason,
        origin: Origin::Manual,
        alert_id: None,
        created: now,
        expires,
    };
    let stored = block.clone();
    let new = with_blocklist(&state, move |list| list.add(stored)).await?;
    tracing::warn!(
        target: "nta::mitigate",
        message = "Blocked by hand",
        cidr = %block.cidr,
        reason = %block.reason,
    );
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(warp::reply::with_status(json(&Added { block })?, status).into_response())
}

async fn remove(tail: Tail, state: Mitigation) -> Result<Response, HandlerError> {
    let text = percent_decode(tail.as_str());
    let cidr = parse_cidr(&text)?;
    let block = with_blocklist(&state, move |list| list.remove(&cidr)).await?;
    tracing::warn!(target: "nta::mitigate", message = "Unblocked by hand", cidr = %block.cidr);
    Ok(json(&Removed { removed: block })?.into_response())
}

/// `answer` with its keys in alphabetical order at every level, as these
/// endpoints have always sent them: serde_json's `Value` keeps its objects
/// sorted, where a struct is written in field order.
fn json<T: Serialize>(answer: &T) -> Result<warp::reply::Json, HandlerError> {
    let value = serde_json::to_value(answer)
        .map_err(|e| HandlerError::Internal(format!("encoding the answer: {e}")))?;
    Ok(warp::reply::json(&value))
}

impl From<InvalidBlock> for HandlerError {
    fn from(e: InvalidBlock) -> Self {
        HandlerError::bad(e.field, e.message)
    }
}

impl From<BlockError> for HandlerError {
    fn from(e: BlockError) -> Self {
        match e {
            BlockError::Invalid(e) => e.into(),
            BlockError::Protected { .. } => HandlerError::bad("cidr", e.to_string()),
            BlockError::NotFound(_) => HandlerError::NotFound(e.to_string()),
            BlockError::Kernel(_) => HandlerError::Internal(e.to_string()),
            BlockError::Store(e) => HandlerError::Store(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde_json::Value;

    use super::*;
    use crate::{
        api::{ApiState, routes, tests::test_state},
        mitigate::blocklist::{Blocklist, Protected, tests::FakeKernel},
    };

    const ADMIN: &str = "admin-token-0123456789abcdef";

    /// The test API with a blocklist over a fake kernel map, the admin
    /// token set and reads open (as on loopback without --token).
    fn state() -> (tempfile::TempDir, ApiState, FakeKernel) {
        let (dir, state) = test_state();
        let kernel = FakeKernel::default();
        let clients = Arc::<ApiClients>::default();
        let (list, _) = Blocklist::restore(
            Box::new(kernel.clone()),
            state.store.clone(),
            Protected {
                clients: clients.clone(),
                ..Protected::default()
            },
            Timestamp::now(),
        )
        .unwrap();
        let state = ApiState {
            mitigation: Mitigation {
                blocklist: Some(Arc::new(Mutex::new(list))),
                clients,
                ..Mitigation::default()
            },
            auth: Auth::open().with_admin(ADMIN.into(), None),
            ..state
        };
        (dir, state, kernel)
    }

    async fn call(
        state: &ApiState,
        method: &str,
        path: &str,
        body: Option<&str>,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = warp::test::request().method(method).path(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.reply(&routes(state.clone())).await;
        let body = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
        (response.status(), body)
    }

    /// `POST /api/blocks` with `body`, as the admin.
    async fn add(state: &ApiState, body: &str) -> (StatusCode, Value) {
        call(state, "POST", "/api/blocks", Some(body), Some(ADMIN)).await
    }

    /// `DELETE /api/blocks/{cidr}`, as the admin.
    async fn remove(state: &ApiState, cidr: &str) -> (StatusCode, Value) {
        let path = format!("/api/blocks/{cidr}");
        call(state, "DELETE", &path, None, Some(ADMIN)).await
    }

    #[tokio::test]
    async fn add_list_and_remove_with_the_admin_token() {
        let (_dir, state, kernel) = state();
        let (status, body) = add(
            &state,
            r#"{"cidr": "198.18.0.0/24", "ttl": "10m", "reason": "scanner farm"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["block"]["cidr"], "198.18.0.0/24");
        assert_eq!(body["block"]["origin"], "manual");
        assert!(body["block"]["expires"].is_string(), "{body}");
        kernel.set_dropped("198.18.0.0/24".parse().unwrap(), 42, 2520);

        // Reads need no token here (loopback, no --token).
        let (status, body) = call(&state, "GET", "/api/blocks", None, None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["blocks"][0]["packets"], 42, "{body}");
        assert_eq!(body["blocks"][0]["reason"], "scanner farm");
        assert_eq!(body["auto"]["enabled"], false);

        // Both ways of writing a CIDR in a path.
        let (status, body) = remove(&state, "198.18.0.0%2F24").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["removed"]["cidr"], "198.18.0.0/24");
        assert!(kernel.entries().is_empty());
        let (status, _) = add(&state, r#"{"cidr":"2001:db8::/48"}"#).await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, _) = remove(&state, "2001:db8::/48").await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = remove(&state, "2001:db8::/48").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    }

    #[tokio::test]
    async fn answers_read_back_as_the_block_commands_types_with_keys_sorted() {
        let (_dir, state, _) = state();
        let api = routes(state);
        let reply = |method: &str, path: &str, body: &str| {
            warp::test::request()
                .method(method)
                .path(path)
                .header("authorization", format!("Bearer {ADMIN}"))
                .body(body)
                .reply(&api)
        };
        let added = reply(
            "POST",
            "/api/blocks",
            r#"{"cidr": "198.18.0.2", "reason": "r"}"#,
        )
        .await;
        let text = String::from_utf8_lossy(added.body()).into_owned();
        assert!(
            text.starts_with(r#"{"block":{"cidr":"198.18.0.2/32","created":""#)
                && text.ends_with(r#"","expires":null,"origin":"manual","reason":"r"}}"#),
            "{text}"
        );
        let Added { block } = serde_json::from_slice(added.body()).unwrap();
        assert_eq!(block.origin, Origin::Manual);

        let listing = reply("GET", "/api/blocks", "").await;
        let text = String::from_utf8_lossy(listing.body()).into_owned();
        assert!(
            text.starts_with(r#"{"auto":{"dry_run":false,"enabled":false,"entries":0,"#)
                && text.contains(r#""blocks":[{"bytes":0,"cidr":"198.18.0.2/32","#),
            "{text}"
        );
        let listing: Listing = serde_json::from_slice(listing.body()).unwrap();
        assert_eq!(listing.blocks[0].block, block);

        let removed = reply("DELETE", "/api/blocks/198.18.0.2", "").await;
        let Removed { removed } = serde_json::from_slice(removed.body()).unwrap();
        assert_eq!(removed, block);
    }

    #[tokio::test]
    async fn changes_always_need_the_admin_token() {
        let (_dir, state, kernel) = state();
        for token in [None, Some("wrong-token-wrong-token")] {
            let (status, body) = call(
                &state,
                "POST",
                "/api/blocks",
                Some(r#"{"cidr": "198.18.0.2"}"#),
                token,
            )
            .await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
            let (status, _) = call(&state, "DELETE", "/api/blocks/198.18.0.2", None, token).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
        assert!(kernel.entries().is_empty());
    }

    #[tokio::test]
    async fn bad_requests_name_the_field() {
        let (_dir, state, _) = state();
        let cases = [
            (r#"{"cidr": "10.1.2.3/16"}"#, "cidr", "host bits"),
            (r#"{"cidr": "nope"}"#, "cidr", "`nope`"),
            (r#"{"cidr": "127.0.0.1"}"#, "cidr", "loopback"),
            (
                r#"{"cidr": "198.18.0.2", "ttl": "forever"}"#,
                "ttl",
                "`forever`",
            ),
            (
                r#"{"cidr": "198.18.0.2", "colour": "red"}"#,
                "body",
                "unknown field",
            ),
            (r#"not json"#, "body", "expected JSON"),
        ];
        for (body, parameter, needle) in cases {
            let (status, answer) = add(&state, body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
            assert_eq!(answer["parameter"], parameter, "{body}: {answer}");
            assert!(
                answer["error"].as_str().unwrap().contains(needle),
                "{body}: {answer}"
            );
        }
        let big = format!(
            r#"{{"cidr": "198.18.0.2", "reason": "{}"}}"#,
            "x".repeat(5000)
        );
        let (status, _) = add(&state, &big).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    }
}
