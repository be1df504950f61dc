//! `nta-agent block add|del|list`: the blocklist of the running agent,
//! through its API.

use std::time::Duration;

use anyhow::{Context as _, bail};
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
    let token = match &args.token {
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
    let client = http_client::build("api", TIMEOUT)?;
    let url = format!("{}{path}", args.api.trim_end_matches('/'));
    let mut request = client.request(method, &url).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.with_context(|| {
        format!("cannot reach the agent at {url}: is it running? (--api, NTA_API)")
    })?;
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
