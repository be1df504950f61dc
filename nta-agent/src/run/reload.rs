//! SIGHUP opens the EVE file again (after logrotate moved it) and reloads
//! the rules.
//!
//! Rules reloads, on SIGHUP or `POST /api/rules/reload`: the files are read
//! and compiled again off the async threads, and the new set replaces the
//! old in the payload pipeline and the flow table's walks at once; a file that fails to load keeps
//! the old set and says why. Incidents, counters and the rules' threshold
//! windows and flow bits go on.

use anyhow::Context as _;
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::{mpsc, oneshot},
    task::JoinHandle,
};
use tracing::{info, warn};

use crate::{
    api::rules::{ReloadAnswer, RulesControl},
    eve::Reopen,
    inspect::RuleSource,
    payload::{ip_only::IpOnlyRules, matcher::Matcher},
    stats::LiveView,
};

/// Reload requests waiting: one is being served, the next ones wait.
const REQUESTS: usize = 4;

/// Reload requests from the API, as they wait for [`start`].
pub(super) struct Requests(mpsc::Receiver<oneshot::Sender<ReloadAnswer>>);

/// The API's handle on reloads, and the requests it will send: made before
/// the API starts, served once the payload pipeline runs.
pub(super) fn channel() -> (RulesControl, Requests) {
    let (requests, received) = mpsc::channel(REQUESTS);
    let control = RulesControl {
        reloads: Some(requests),
    };
    (control, Requests(received))
}

/// Where a reloaded set goes: its payload rules to the payload pipeline,
/// its rules on addresses alone to the flow table's walks.
pub(super) struct Swaps {
    pub matchers: mpsc::Sender<Matcher>,
    pub ip_only: mpsc::Sender<IpOnlyRules>,
}

/// Serves reloads, asked for by the API or SIGHUP, until the agent stops;
/// on SIGHUP, asks `reopen` first.
pub(super) fn start(
    source: RuleSource,
    swaps: Swaps,
    live: LiveView,
    requests: Requests,
    reopen: Option<Reopen>,
) -> anyhow::Result<JoinHandle<()>> {
    let mut sighup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let Requests(mut received) = requests;
    Ok(tokio::spawn(async move {
        loop {
            let answer = tokio::select! {
                Some(answer) = received.recv() => Some(answer),
                Some(()) = sighup.recv() => {
                    if let Some(reopen) = &reopen {
                        reopen.request();
                        info!(message = "EVE file to be opened again (SIGHUP)");
                    }
                    None
                }
                else => break,
            };
            let result = reload(&source, &swaps, &live).await;
            if let Some(answer) = answer {
                // The client may have gone; the reload stands.
                let _ = answer.send(result);
            }
        }
    }))
}

/// Reads, compiles and swaps in the rules of `source`.
async fn reload(source: &RuleSource, swaps: &Swaps, live: &LiveView) -> ReloadAnswer {
    let reading = source.clone();
    let compiled = tokio::task::spawn_blocking(move || reading.compile())
        .await
        .map_err(|e| format!("the rules reload task failed: {e}"))?;
    let reloaded = match compiled {
        Ok(reloaded) => reloaded,
        Err(error) => {
            let error = format!("{error}; the rules loaded before stay in use");
            warn!(message = "Rules reload failed", %error);
            return Err(error);
        }
    };
    for error in &reloaded.first_errors {
        warn!(message = "Rule rejected", %error);
    }
    swaps
        .matchers
        .send(reloaded.matcher)
        .await
        .map_err(|_| "the payload pipeline has stopped".to_owned())?;
    swaps
        .ip_only
        .send(reloaded.ip_only)
        .await
        .map_err(|_| "the flow table's walks have stopped".to_owned())?;
    let counts = reloaded.counts;
    live.rules(counts);
    info!(
        message = "Rules reloaded",
        rules = counts.loaded,
        rejected = counts.rejected
    );
    Ok(counts)
}
