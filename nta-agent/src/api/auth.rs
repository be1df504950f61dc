//! The API token: who may read alerts and stats.
//!
//! Without a token (the default, with a loopback listen address) every
//! request is served. With one, every request under `/api/` and `/metrics`
//! must carry `Authorization: Bearer <token>`; the live stream also takes
//! `?token=<token>`, because a browser's `EventSource` cannot send headers.
//! The dashboard's files and `/healthz` hold no data and stay public, so a
//! browser can load the page and then ask for the token.

use std::{future::ready, net::SocketAddr, sync::Arc};

use warp::{Filter, Rejection, reject::Reject};

/// Shortest token accepted: 16 characters of a random string are out of
/// reach of guessing over HTTP.
pub const MIN_TOKEN_LEN: usize = 16;

/// The configured token, if any, and the admin token that changes (to the
/// blocklist) always need.
#[derive(Clone, Default)]
pub struct Auth {
    token: Option<Arc<str>>,
    admin: Option<Arc<str>>,
    /// Where the admin token can be read, for the 401 message.
    admin_hint: Option<Arc<str>>,
}

// Not derived: the token must never reach a log line through `{:?}`.
impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("admin", &self.admin.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Why a token setting is refused at startup.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error(
        "--listen {addr} is not a loopback address: anyone who can reach it could read the alerts; \
         pass --token or set NTA_TOKEN (at least {MIN_TOKEN_LEN} characters), or listen on 127.0.0.1"
    )]
    Required { addr: SocketAddr },
    #[error(
        "the API token (--token / NTA_TOKEN) must be at least {MIN_TOKEN_LEN} characters, got {len}"
    )]
    TooShort { len: usize },
    #[error("the API token (--token / NTA_TOKEN) must be printable ASCII without spaces")]
    BadCharacters,
}

impl Auth {
    /// No token: every request is served.
    pub fn open() -> Self {
        Self::default()
    }

    /// The token for an API listening on `listen`: required unless the
    /// address is loopback, and checked for length and characters (it
    /// travels in a header and a query string). An empty one is none, as
    /// `NTA_TOKEN=` left blank in an environment file means.
    pub fn for_listen(listen: SocketAddr, token: Option<&str>) -> Result<Self, TokenError> {
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            if listen.ip().is_loopback() {
                return Ok(Self::open());
            }
            return Err(TokenError::Required { addr: listen });
        };
        if token.len() < MIN_TOKEN_LEN {
            return Err(TokenError::TooShort { len: token.len() });
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TokenError::BadCharacters);
        }
        Ok(Self {
            token: Some(token.into()),
            ..Self::default()
        })
    }

    /// With `admin` as the token that changes need; `hint` says where an
    /// operator finds it (the token file).
    pub fn with_admin(self, admin: String, hint: Option<String>) -> Self {
        Self {
            admin: Some(admin.into()),
            admin_hint: hint.map(Into::into),
            ..self
        }
    }

    /// The read token, if one is required.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Whether requests must carry a token.
    pub fn required(&self) -> bool {
        self.token.is_some()
    }

    /// Whether `presented` (from a header or the query) is the token.
    fn accepts(&self, presented: Option<&str>) -> bool {
        match (&self.token, presented) {
            (None, _) => true,
            (Some(token), Some(presented)) => {
                constant_time_eq(token.as_bytes(), presented.as_bytes())
            }
            (Some(_), None) => false,
        }
    }
}

/// A request without the right token.
#[derive(Debug)]
pub(super) struct Unauthorized {
    /// Where the admin token is, when that is the one missing.
    admin_hint: Option<Arc<str>>,
    admin: bool,
}

impl Unauthorized {
    fn read() -> Self {
        Unauthorized {
            admin_hint: None,
            admin: false,
        }
    }

    pub(super) fn message(&self) -> String {
        match (self.admin, &self.admin_hint) {
            (false, _) => "this API needs its token: send `Authorization: Bearer <token>` (the stream also takes `?token=`)".into(),
            (true, Some(hint)) => format!(
                "changing the blocklist needs the API token, always: send `Authorization: Bearer <token>` (the agent keeps it in {hint}; `nta-agent block` reads it there)"
            ),
            (true, None) => "changing the blocklist needs the API token, always: send `Authorization: Bearer <token>`".into(),
        }
    }
}

impl Reject for Unauthorized {}

/// Passes requests whose `Authorization: Bearer` header holds the token
/// (all requests when none is configured).
pub(super) fn authorized(auth: Auth) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::header::optional::<String>("authorization")
        .and_then(move |header: Option<String>| {
            let ok = auth.accepts(header.as_deref().and_then(bearer));
            ready(pass(ok, Unauthorized::read))
        })
        .untuple_one()
}

/// Like [`authorized`], also accepting the token as the `token` query
/// parameter, for `EventSource`.
pub(super) fn authorized_or_query(
    auth: Auth,
) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::header::optional::<String>("authorization")
        .and(warp::query::<Vec<(String, String)>>())
        .and_then(
            move |header: Option<String>, query: Vec<(String, String)>| {
                let from_query = query
                    .iter()
                    .find(|(name, _)| name == "token")
                    .map(|(_, value)| value.as_str());
                let ok = auth.accepts(header.as_deref().and_then(bearer).or(from_query));
                ready(pass(ok, Unauthorized::read))
            },
        )
        .untuple_one()
}

/// Passes requests whose `Authorization: Bearer` header holds the admin
/// token; without one configured, nothing passes.
pub(super) fn admin(auth: Auth) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::header::optional::<String>("authorization")
        .and_then(move |header: Option<String>| {
            let ok = match (&auth.admin, header.as_deref().and_then(bearer)) {
                (Some(admin), Some(presented)) => {
                    constant_time_eq(admin.as_bytes(), presented.as_bytes())
                }
                _ => false,
            };
            ready(pass(ok, || Unauthorized {
                admin_hint: auth.admin_hint.clone(),
                admin: true,
            }))
        })
        .untuple_one()
}

/// Lets the request through if `ok`, else rejects it as `refused`.
fn pass(ok: bool, refused: impl FnOnce() -> Unauthorized) -> Result<(), Rejection> {
    if ok {
        Ok(())
    } else {
        Err(warp::reject::custom(refused()))
    }
}

/// The credentials of an `Authorization: Bearer <token>` header.
fn bearer(header: &str) -> Option<&str> {
    let (scheme, credentials) = header.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| credentials.trim())
}

/// Compares without stopping at the first difference, so that response
/// times do not tell an attacker how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::tests::DATA_PATHS;

    const TOKEN: &str = "s3cret-token-0123456789";

    #[test]
    fn loopback_needs_no_token_but_other_addresses_do() {
        let auth = Auth::for_listen("127.0.0.1:3000".parse().unwrap(), None).unwrap();
        assert!(!auth.required());
        let auth = Auth::for_listen("[::1]:3000".parse().unwrap(), None).unwrap();
        assert!(!auth.required());
        let addr: SocketAddr = "0.0.0.0:3000".parse().unwrap();
        let err = Auth::for_listen(addr, None).unwrap_err();
        assert_eq!(err, TokenError::Required { addr });
        assert!(err.to_string().contains("0.0.0.0:3000"), "{err}");
        assert!(err.to_string().contains("NTA_TOKEN"), "{err}");
        // Left blank (`NTA_TOKEN=` in an environment file): none.
        let auth = Auth::for_listen("127.0.0.1:3000".parse().unwrap(), Some("")).unwrap();
        assert!(!auth.required());
        let err = Auth::for_listen(addr, Some("")).unwrap_err();
        assert_eq!(err, TokenError::Required { addr });
    }

    #[test]
    fn short_or_unprintable_tokens_are_refused() {
        let addr: SocketAddr = "0.0.0.0:3000".parse().unwrap();
        assert_eq!(
            Auth::for_listen(addr, Some("short")).unwrap_err(),
            TokenError::TooShort { len: 5 }
        );
        assert_eq!(
            Auth::for_listen(addr, Some("has a space in it, long enough")).unwrap_err(),
            TokenError::BadCharacters
        );
        assert!(Auth::for_listen(addr, Some(TOKEN)).unwrap().required());
    }

    #[test]
    fn the_token_is_compared_whole() {
        let auth = Auth::for_listen("0.0.0.0:1".parse().unwrap(), Some(TOKEN)).unwrap();
        assert!(auth.accepts(Some(TOKEN)));
        assert!(!auth.accepts(Some(&TOKEN[..TOKEN.len() - 1])));
        assert!(!auth.accepts(Some(&format!("{TOKEN}x"))));
        assert!(!auth.accepts(Some("")));
        assert!(!auth.accepts(None));
        assert!(Auth::open().accepts(None));
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer"), None);
    }

    #[test]
    fn debug_output_hides_the_token() {
        let auth = Auth::for_listen("0.0.0.0:1".parse().unwrap(), Some(TOKEN)).unwrap();
        let shown = format!("{auth:?}");
        assert!(!shown.contains(TOKEN), "{shown}");
    }

    /// Routes over the test store, with `TOKEN` required.
    fn guarded() -> (
        tempfile::TempDir,
        impl Filter<Extract = (impl warp::Reply,), Error = Rejection> + Clone,
    ) {
        let (dir, state) = crate::api::tests::test_state();
        let state = crate::api::ApiState {
            auth: Auth::for_listen("0.0.0.0:3000".parse().unwrap(), Some(TOKEN)).unwrap(),
            ..state
        };
        (dir, crate::api::routes(state))
    }

    #[tokio::test]
    async fn with_a_token_every_data_path_needs_it() {
        let (_dir, routes) = guarded();
        for path in DATA_PATHS.into_iter().chain([
            "/metrics",
            "/api/stream",
            "/api/stream?token=wrong-token-wrong-token",
        ]) {
            let response = warp::test::request().path(path).reply(&routes).await;
            assert_eq!(response.status(), 401, "{path}");
            assert_eq!(
                response.headers()["www-authenticate"],
                r#"Bearer realm="nta""#,
                "{path}"
            );
            let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
            assert!(body["error"].as_str().unwrap().contains("token"), "{body}");

            let response = warp::test::request()
                .path(path)
                .header("authorization", "Bearer nope-nope-nope-nope")
                .reply(&routes)
                .await;
            assert_eq!(response.status(), 401, "{path} with a wrong token");
        }
    }

    #[tokio::test]
    async fn the_right_token_opens_the_api_and_the_stream() {
        let (_dir, routes) = guarded();
        for path in ["/api/alerts", "/api/stats", "/metrics"] {
            let response = warp::test::request()
                .path(path)
                .header("authorization", format!("Bearer {TOKEN}"))
                .reply(&routes)
                .await;
            assert_eq!(response.status(), 200, "{path}");
        }
        // The stream never ends by itself: check the status line only.
        for request in [
            warp::test::request()
                .path("/api/stream")
                .header("authorization", format!("Bearer {TOKEN}")),
            warp::test::request().path(&format!("/api/stream?token={TOKEN}")),
        ] {
            let reply = request
                .filter(&routes)
                .await
                .map_err(|_| "rejected")
                .unwrap();
            let (head, _) = warp::Reply::into_response(reply).into_parts();
            assert_eq!(head.status, 200);
            assert_eq!(head.headers["content-type"], "text/event-stream");
        }
    }

    #[tokio::test]
    async fn the_page_and_healthz_stay_open() {
        let (_dir, routes) = guarded();
        for path in ["/", "/healthz"] {
            let response = warp::test::request().path(path).reply(&routes).await;
            assert_eq!(response.status(), 200, "{path}");
        }
    }
}
