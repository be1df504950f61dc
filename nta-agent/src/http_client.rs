//! The HTTP client of everything in nta that makes requests: the webhook
//! and SMS channels, and `nta-agent block` talking to a running agent.

use std::time::Duration;

use reqwest::{Certificate, Client, ClientBuilder};

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
    builder(timeout)
        .build()
        .map_err(|source| ClientError { purpose, source })
}

/// Like [`build`], trusting only `roots` for HTTPS, as curl's `--cacert`
/// does: for a server with a self-signed certificate or a private CA.
pub fn build_trusting_only(
    purpose: &'static str,
    timeout: Duration,
    roots: Vec<Certificate>,
) -> Result<Client, ClientError> {
    builder(timeout)
        .tls_certs_only(roots)
        .build()
        .map_err(|source| ClientError { purpose, source })
}

fn builder(timeout: Duration) -> ClientBuilder {
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
}
