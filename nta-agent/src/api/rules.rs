//! `POST /api/rules/reload`: reads the rules files again and swaps the new
//! set in, behind the admin token, as SIGHUP does.

use tokio::sync::{mpsc, oneshot};
use warp::{Filter, Rejection, Reply, reply::Response};

use super::{HandlerError, auth, auth::Auth, respond, with_arg};
use crate::payload::rules::LoadCounts;

/// What a reload answers: the new set's counts, or why the old set stays.
pub type ReloadAnswer = Result<LoadCounts, String>;

/// Asks whoever reloads the rules (the running agent) to do it now.
#[derive(Clone, Default)]
pub struct RulesControl {
    /// `None` where nothing reloads rules (tests of the other endpoints).
    pub reloads: Option<mpsc::Sender<oneshot::Sender<ReloadAnswer>>>,
}

/// `POST /api/rules/reload` → `{"loaded": N, "rejected": M}`, or 422 with
/// the reason the rules in use stay.
pub(super) fn reload_handler(
    control: RulesControl,
    auth: Auth,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("api" / "rules" / "reload")
        .and(warp::post())
        .and(auth::admin(auth))
        .and(with_arg(control))
        .then(|control: RulesControl| async move { respond(reload(control).await) })
}

async fn reload(control: RulesControl) -> Result<Response, HandlerError> {
    let unavailable = || HandlerError::Unavailable("this agent does not reload rules".into());
    let requests = control.reloads.ok_or_else(unavailable)?;
    let (answer, answered) = oneshot::channel();
    requests.send(answer).await.map_err(|_| unavailable())?;
    let counts = answered
        .await
        .map_err(|_| HandlerError::Internal("the rules reload stopped".into()))?
        .map_err(HandlerError::Unprocessable)?;
    Ok(warp::reply::json(&counts).into_response())
}

#[cfg(test)]
mod tests {
    use warp::http::StatusCode;

    use super::*;
    use crate::api::{ApiState, routes, tests::test_state};

    const ADMIN: &str = "admin-token-0123456789abcdef";

    /// The API with a reloader that gives each request `answer`.
    fn with_reloader(answer: ReloadAnswer) -> (tempfile::TempDir, ApiState) {
        let (dir, state) = test_state();
        let (reloads, mut requests) = mpsc::channel::<oneshot::Sender<ReloadAnswer>>(1);
        tokio::spawn(async move {
            while let Some(reply) = requests.recv().await {
                let _ = reply.send(answer.clone());
            }
        });
        let state = ApiState {
            auth: Auth::open().with_admin(ADMIN.into(), None),
            rules: RulesControl {
                reloads: Some(reloads),
            },
            ..state
        };
        (dir, state)
    }

    async fn post(state: &ApiState, token: Option<&str>) -> (StatusCode, serde_json::Value) {
        let mut request = warp::test::request()
            .method("POST")
            .path("/api/rules/reload");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = request.reply(&routes(state.clone())).await;
        let body = serde_json::from_slice(response.body()).unwrap_or_default();
        (response.status(), body)
    }

    #[tokio::test]
    async fn a_reload_answers_the_new_counts_and_needs_the_admin_token() {
        let counts = LoadCounts {
            loaded: 12,
            rejected: 3,
        };
        let (_dir, state) = with_reloader(Ok(counts));
        assert_eq!(post(&state, None).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(
            post(&state, Some("wrong-token-wrong-token")).await.0,
            StatusCode::UNAUTHORIZED
        );
        let (status, body) = post(&state, Some(ADMIN)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, serde_json::json!({"loaded": 12, "rejected": 3}));
    }

    #[tokio::test]
    async fn a_failed_reload_is_a_422_saying_why() {
        let why = "cannot read rules file /x.rules: gone; the rules loaded before stay in use";
        let (_dir, state) = with_reloader(Err(why.into()));
        let (status, body) = post(&state, Some(ADMIN)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["error"], why);
    }

    #[tokio::test]
    async fn without_a_reloader_it_is_unavailable() {
        let (_dir, state) = test_state();
        let state = ApiState {
            auth: Auth::open().with_admin(ADMIN.into(), None),
            ..state
        };
        assert_eq!(
            post(&state, Some(ADMIN)).await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
