//! The HTTP client of everything in nta that makes requests: the webhook
//! and SMS channels, and `nta-agent block` talking to a running agent.

use std::time::Duration;

use reqwest::Client;

/// The HTTP client could not be built (its TLS setup, mostly).
#[derive(Debug, thiserror::Error)]
#[error("HTTP client for {purpose}")]
pub struct ClientError {
    /// What the client was for: `webhook`, `sms`, `api`.
    pub purpose: &'static str,
    /// Why reqwest could not build it.
    #[source]
    pub source: reqwest::Error,
}

/// A client for `purpose` whose `timeout` bounds a whole request, connect to
/// last byte; redirects are errors, not followed.
pub fn build(purpose: &'static str, timeout: Duration) -> Result<Client, ClientError> {
    // reqwest is built without a crypto provider of its own (its default,
    // aws-lc, needs cmake to build) and takes the process default: ring,
    // unless something installed another first (Err), which serves as well.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        // A redirected POST turns into a GET on the way: a message or a
        // block would be lost while the server answers 200.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("nta/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|source| ClientError { purpose, source })
}
