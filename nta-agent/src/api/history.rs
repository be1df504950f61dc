//! `GET /api/history`: one metric's rate over time, for charts.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use nta_common::Counter;
use serde_json::json;
use warp::{Filter, Rejection, Reply, reply::Response};

use super::{HandlerError, Params, blocking, ordered, parse_time, respond, with_arg};
use crate::store::{HistoryQuery, Metric, Store};

/// Query parameters of `GET /api/history`.
const PARAMS: [&str; 4] = ["metric", "since", "until", "step"];

/// Range shown when the request gives no `since`: a glance at "right now".
const DEFAULT_RANGE: SignedDuration = SignedDuration::from_mins(5);

/// `GET /api/history?metric=&since=&until=&step=` →
/// `{"metric": ..., "step": secs, "points": [{"t": ..., "value": ...}]}`.
///
/// `metric` defaults to `packets`, `until` to now, `since` to five minutes
/// before `until`, `step` to 1 second.
pub(super) fn history_handler(
    store: Arc<Store>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("api" / "history")
        .and(warp::get())
        .and(warp::query::<Vec<(String, String)>>())
        .and(with_arg(store))
        .then(|params, store| async move { respond(history(params, store).await) })
}

async fn history(
    params: Vec<(String, String)>,
    store: Arc<Store>,
) -> Result<Response, HandlerError> {
    let params = Params::new(params, &PARAMS)?;
    // The name as asked (`syn`, not `tcp_syn`) is what the answer echoes.
    let (name, metric) = params
        .get("metric", |value| {
            let metric = value.parse::<Metric>().map_err(|e| e.to_string())?;
            Ok((value.to_owned(), metric))
        })?
        .unwrap_or_else(|| ("packets".to_owned(), Metric::Counter(Counter::Packets)));
    let until = params
        .get("until", parse_time("until"))?
        .unwrap_or_else(Timestamp::now);
    let since = match params.get("since", parse_time("since"))? {
        Some(since) => since,
        None => until.checked_sub(DEFAULT_RANGE).map_err(|e| {
            HandlerError::bad(
                "until",
                format!("until is too early to look 5 minutes back: {e}"),
            )
        })?,
    };
    ordered(Some(since), Some(until))?;
    let step_secs = params.get("step", parse_step)?.unwrap_or(1);
    let query = HistoryQuery {
        metric,
        since,
        until,
        step_secs,
    };
    let step = store.history_step(&query);
    let points = blocking(move || store.history(&query)).await?;
    Ok(
        warp::reply::json(&json!({ "metric": name, "step": step, "points": points }))
            .into_response(),
    )
}

/// Step in whole seconds: plain seconds (`10`) or a duration (`10s`, `1m`).
fn parse_step(value: &str) -> Result<u64, String> {
    let secs = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        value
            .parse::<u64>()
            .map_err(|_| format!("step is too large: {value}"))?
    } else {
        let duration = humantime::parse_duration(value).map_err(|e| {
            format!("step is not a number of seconds or a duration like 10s or 1m: `{value}`: {e}")
        })?;
        if duration.subsec_nanos() != 0 {
            return Err(format!(
                "step must be a whole number of seconds, got `{value}`"
            ));
        }
        duration.as_secs()
    };
    if secs == 0 {
        return Err("step must be at least 1 second".into());
    }
    Ok(secs)
}

#[cfg(test)]
mod tests {
    use nta_common::GlobalCounters;
    use serde_json::{Value, json};
    use warp::http::StatusCode;

    use super::*;
    use crate::api::tests::{assert_bad_parameters, get, test_state};

    /// An API whose store holds 20 seconds of traffic from
    /// 2026-01-01T00:00:00Z: second `s` saw `s` packets, 100 bytes and 2 SYNs.
    fn state_with_history() -> (tempfile::TempDir, crate::api::ApiState) {
        let (dir, state) = test_state();
        let start = Timestamp::from_second(1_767_225_600).unwrap();
        assert_eq!(start.to_string(), "2026-01-01T00:00:00Z");
        for s in 0..20 {
            let mut deltas = GlobalCounters::ZERO;
            deltas.values[Counter::Packets as usize] = s;
            deltas.values[Counter::Bytes as usize] = 100;
            deltas.values[Counter::TcpSyn as usize] = 2;
            let at = start
                .checked_add(SignedDuration::from_secs(s as i64))
                .unwrap();
            state.store.record_history(at, &deltas).unwrap();
        }
        (dir, state)
    }

    const RANGE: &str = "since=2026-01-01T00:00:00Z&until=2026-01-01T00:00:19Z";

    fn values(body: &Value) -> Vec<f64> {
        body["points"]
            .as_array()
            .expect("points array")
            .iter()
            .map(|p| p["value"].as_f64().expect("value"))
            .collect()
    }

    #[tokio::test]
    async fn history_returns_rates_per_step() {
        let (_dir, state) = state_with_history();
        let (status, body) = get(
            &state,
            "GET",
            &format!("/api/history?metric=packets&{RANGE}&step=10s"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["metric"], "packets");
        assert_eq!(body["step"], 10);
        assert_eq!(body["points"][1]["t"], "2026-01-01T00:00:10Z");
        assert_eq!(values(&body), [4.5, 14.5]);
    }

    #[tokio::test]
    async fn step_defaults_to_one_second_and_accepts_plain_seconds() {
        let (_dir, state) = state_with_history();
        let (_, by_default) = get(&state, "GET", &format!("/api/history?{RANGE}")).await;
        assert_eq!(by_default["step"], 1);
        assert_eq!(by_default["metric"], "packets");
        assert_eq!(values(&by_default).len(), 20);
        let (_, plain) = get(&state, "GET", &format!("/api/history?{RANGE}&step=5")).await;
        assert_eq!(plain["step"], 5);
        assert_eq!(values(&plain).len(), 4);
    }

    #[tokio::test]
    async fn minute_steps_use_the_minute_rollup() {
        let (_dir, state) = state_with_history();
        let (status, body) = get(
            &state,
            "GET",
            "/api/history?metric=bits&since=2026-01-01T00:00:00Z&until=2026-01-01T00:05:00Z&step=1m",
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["step"], 60);
        // 20 × 100 bytes × 8 bits over one minute.
        assert_eq!(values(&body), [16000.0 / 60.0]);
    }

    #[tokio::test]
    async fn syn_alias_and_default_range() {
        let (_dir, state) = state_with_history();
        let (status, body) = get(&state, "GET", &format!("/api/history?metric=syn&{RANGE}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(values(&body), [2.0; 20]);

        // Without since/until: the last five minutes, which hold nothing here.
        let (status, body) = get(&state, "GET", "/api/history?metric=syn").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["points"], json!([]));
    }

    #[tokio::test]
    async fn every_bad_parameter_is_a_400_naming_it() {
        let cases = [
            ("metric=pakets", "metric", "unknown metric `pakets`"),
            ("since=5m", "since", "since is not an RFC 3339 time"),
            ("until=now", "until", "until is not an RFC 3339 time"),
            (
                "since=2026-01-01T00:01:00Z&until=2026-01-01T00:00:00Z",
                "until",
                "before since",
            ),
            ("step=0", "step", "at least 1 second"),
            ("step=0s", "step", "at least 1 second"),
            ("step=1500ms", "step", "whole number of seconds"),
            ("step=fast", "step", "duration like 10s"),
            ("step=-1", "step", "duration like 10s"),
            (
                "since=2026-01-01T00:00:00Z&until=2026-01-01T03:00:00Z&step=1",
                "step",
                "10801 points",
            ),
            ("metric=packets&metric=bytes", "metric", "more than once"),
            ("limit=5", "limit", "unknown parameter limit"),
        ];
        assert_bad_parameters("/api/history", &cases).await;
    }

    #[test]
    fn steps_parse_as_seconds_or_durations() {
        assert_eq!(parse_step("10"), Ok(10));
        assert_eq!(parse_step("10s"), Ok(10));
        assert_eq!(parse_step("1m"), Ok(60));
        assert_eq!(parse_step("1h 30m"), Ok(5400));
        assert!(parse_step("").is_err());
        assert!(parse_step("99999999999999999999999").is_err());
    }
}
