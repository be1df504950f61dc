//! `nta-agent block add|del|list`: the blocklist of the running agent,
//! through its API.

use std::{fs, io, path::Path, time::Duration};

use anyhow::{Context as _, bail};
use rustls::pki_types::{CertificateDer, pem::PemObject as _};
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::{Value, json};

use super::token;
use crate::{
    block::{Added, Listing, Origin, Removed},
    cli::{BlockArgs, BlockCommand},
    http_client,
    store::Store,
};

/// Longest one request may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Runs one `block` command and prints its result.
pub async fn run(command: &BlockCommand) -> anyhow::Result<()> {
    match command {
        BlockCommand::Add {
            cidr,
            ttl,
            reason,
            common,
        } => {
            let mut body = json!({ "cidr": cidr });
            if let Some(ttl) = ttl {
                body["ttl"] = json!(ttl);
            }
            if let Some(reason) = reason {
                body["reason"] = json!(reason);
            }
            let Added { block } =
                send(common, reqwest::Method::POST, "/api/blocks", Some(body)).await?;
            println!(
                "blocked {} {}",
                block.cidr,
                match block.expires {
                    Some(until) => format!("until {until}"),
                    None => "until removed".into(),
                }
            );
        }
        BlockCommand::Del { cidr, common } => {
            // Written into the path with its slash escaped.
            let path = format!("/api/blocks/{}", cidr.trim().replace('/', "%2F"));
            let Removed { removed } = send(common, reqwest::Method::DELETE, &path, None).await?;
            println!("unblocked {}", removed.cidr);
        }
        BlockCommand::List { common } => {
            let listing = send(common, reqwest::Method::GET, "/api/blocks", None).await?;
            print_list(&listing);
        }
    }
    Ok(())
}

fn print_list(listing: &Listing) {
    if listing.blocks.is_empty() {
        println!("no blocks");
    } else {
        println!(
            "{:<20} {:>12} {:>14} {:<7} {:<22} reason",
            "cidr", "packets", "bytes", "origin", "expires"
        );
        for b in &listing.blocks {
            println!(
                "{:<20} {} {} {:<7} {:<22} {}",
                b.block.cidr.to_string(),
                b.packets,
                b.bytes,
                origin(b.block.origin),
                b.block.expires.map_or("never".into(), |t| t
                    .to_string()
                    .chars()
                    .take(19)
                    .collect::<String>()),
                b.block.reason,
            );
        }
    }
    let auto = &listing.auto;
    let mode = if auto.dry_run {
        "dry run"
    } else if auto.enabled {
        "on"
    } else {
        "off"
    };
    println!(
        "automatic mitigation: {mode} ({} of at most {} entries)",
        auto.entries, auto.max_entries
    );
}

fn origin(origin: Origin) -> &'static str {
    match origin {
        Origin::Manual => "manual",
        Origin::Auto => "auto",
    }
}

/// The body of a refusal: every error the API sends says why in `error`.
#[derive(Deserialize)]
struct Refusal {
    error: Option<String>,
}

/// One request to the agent, with the token; its answer, or the agent's
/// error message.
async fn send<T: DeserializeOwned>(
    args: &BlockArgs,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<T> {
    // A blank NTA_TOKEN (an environment file's placeholder) is none.
    let token = match args.token.as_ref().filter(|t| !t.is_empty()) {
        Some(token) => token.clone(),
        None => {
            let db = match &args.db {
                Some(db) => db.clone(),
                None => Store::default_path()
                    .context("no --db and no home directory: pass --token or --db")?,
            };
            token::read(&token::path_for(&db))?
        }
    };
    let client = match &args.cacert {
        Some(path) => http_client::build_trusting_only("api", TIMEOUT, trusted(path)?)?,
        None => http_client::build("api", TIMEOUT)?,
    };
    let url = format!("{}{path}", args.api.trim_end_matches('/'));
    let mut request = client.request(method, &url).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) => {
            let message = unreachable(&url, &error);
            return Err(anyhow::Error::new(error).context(message));
        }
    };
    let status = response.status();
    let not_nta = || format!("{url} answered {status} without JSON: is that nta's API?");
    let body = response.bytes().await.with_context(not_nta)?;
    if !status.is_success() {
        let refusal: Refusal = serde_json::from_slice(&body).with_context(not_nta)?;
        bail!(
            "the agent refused ({status}): {}",
            refusal.error.as_deref().unwrap_or("no reason given")
        );
    }
    serde_json::from_slice(&body).with_context(not_nta)
}

/// The certificates of `--cacert`; a file that has none is an error naming
/// it, rather than a client that trusts nothing.
fn trusted(path: &Path) -> anyhow::Result<Vec<reqwest::Certificate>> {
    let pem = fs::read(path)
        .with_context(|| format!("cannot read the --cacert file {}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("the --cacert file {} is not valid PEM", path.display()))?;
    if certs.is_empty() {
        bail!(
            "no certificate in the --cacert file {}: expected PEM `-----BEGIN CERTIFICATE-----` blocks",
            path.display()
        );
    }
    certs
        .iter()
        .map(|der| {
            reqwest::Certificate::from_der(der).with_context(|| {
                format!(
                    "a certificate in the --cacert file {} is refused",
                    path.display()
                )
            })
        })
        .collect()
}

/// Why no answer came from `url`, with what to try.
fn unreachable(url: &str, error: &reqwest::Error) -> String {
    match tls_error(error) {
        Some(rustls::Error::InvalidCertificate(_)) => format!(
            "the agent at {url} sent a certificate this command does not accept: give that \
             certificate (or its CA's) with --cacert (NTA_CACERT), and in --api the name or \
             address it is issued for"
        ),
        Some(_) => format!(
            "no TLS session with {url}: is the agent serving HTTPS? Without --tls-cert it \
             serves http:// (--api, NTA_API)"
        ),
        None if url.starts_with("http://") => format!(
            "cannot reach the agent at {url}: is it running? (--api, NTA_API; an agent started \
             with --tls-cert answers on https:// only)"
        ),
        None => format!("cannot reach the agent at {url}: is it running? (--api, NTA_API)"),
    }
}

/// The TLS error behind a failed request, if one is: reqwest and hyper
/// wrap it, the innermost in `io::Error`s, whose `source` skips the error
/// they hold.
fn tls_error<'e>(error: &'e (dyn std::error::Error + 'static)) -> Option<&'e rustls::Error> {
    if let Some(tls) = error.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    let held = error
        .downcast_ref::<io::Error>()
        .and_then(io::Error::get_ref)
        .and_then(|inner| tls_error(inner));
    held.or_else(|| error.source().and_then(tls_error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tls_error_is_found_inside_nested_io_errors() {
        let refused = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let nested = io::Error::other(io::Error::new(io::ErrorKind::InvalidData, refused));
        assert!(matches!(
            tls_error(&nested),
            Some(rustls::Error::InvalidCertificate(_))
        ));
        assert!(tls_error(&io::Error::other("refused")).is_none());
    }
}
