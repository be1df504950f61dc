//! `nta-agent block add|del|list`: the blocklist of the running agent,
//! through its API.

use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use super::token;
use crate::{
    cli::{BlockArgs, BlockCommand},
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
            let answer = send(common, reqwest::Method::POST, "/api/blocks", Some(body)).await?;
            let block = &answer["block"];
            println!(
                "blocked {} {}",
                text(&block["cidr"]),
                match block["expires"].as_str() {
                    Some(until) => format!("until {until}"),
                    None => "until removed".into(),
                }
            );
        }
        BlockCommand::Del { cidr, common } => {
            // Written into the path with its slash escaped.
            let path = format!("/api/blocks/{}", cidr.trim().replace('/', "%2F"));
            let answer = send(common, reqwest::Method::DELETE, &path, None).await?;
            println!("unblocked {}", text(&answer["removed"]["cidr"]));
        }
        BlockCommand::List { common } => {
            let answer = send(common, reqwest::Method::GET, "/api/blocks", None).await?;
            print_list(&answer);
        }
    }
    Ok(())
}

fn text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned)
}

fn print_list(answer: &Value) {
    let blocks = answer["blocks"].as_array().cloned().unwrap_or_default();
    if blocks.is_empty() {
        println!("no blocks");
    } else {
        println!(
            "{:<20} {:>12} {:>14} {:<7} {:<22} reason",
            "cidr", "packets", "bytes", "origin", "expires"
        );
        for b in &blocks {
            println!(
                "{:<20} {:>12} {:>14} {:<7} {:<22} {}",
                text(&b["cidr"]),
                b["packets"],
                b["bytes"],
                text(&b["origin"]),
                b["expires"]
                    .as_str()
                    .map_or("never".into(), |t| t.chars().take(19).collect::<String>()),
                text(&b["reason"]),
            );
        }
    }
    let auto = &answer["auto"];
    let mode = match (auto["enabled"].as_bool(), auto["dry_run"].as_bool()) {
        (_, Some(true)) => "dry run",
        (Some(true), _) => "on",
        _ => "off",
    };
    println!(
        "automatic mitigation: {mode} ({} of at most {} entries)",
        auto["entries"], auto["max_entries"]
    );
}

/// One request to the agent, with the token; the answer's JSON, or the
/// agent's error message.
async fn send(
    args: &BlockArgs,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
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
    let client = crate::notify::webhook::http_client("api", TIMEOUT)?;
    let url = format!("{}{path}", args.api.trim_end_matches('/'));
    let mut request = client.request(method, &url).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.with_context(|| {
        format!("cannot reach the agent at {url}: is it running? (--api, NTA_API)")
    })?;
    let status = response.status();
    let answer: Value = response
        .json()
        .await
        .with_context(|| format!("{url} answered {status} without JSON: is that nta's API?"))?;
    if !status.is_success() {
        bail!(
            "the agent refused ({status}): {}",
            answer["error"].as_str().unwrap_or("no reason given")
        );
    }
    Ok(answer)
}
