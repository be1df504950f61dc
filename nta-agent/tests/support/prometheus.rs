//! A real Prometheus (Debian's `prometheus`) in a test's namespace,
//! scraping the agent at `127.0.0.1:3000` every second, and asked PromQL
//! over its HTTP API.

use std::{fs, path::Path, time::Duration};

use serde_json::Value;

use super::{lab::Spawned, netns::Topology, wait_for};

/// Where it listens, inside the namespace.
pub const PROMETHEUS: &str = "127.0.0.1:9090";

/// A Prometheus server, stopped when dropped.
pub struct Prometheus {
    ns: String,
    _server: Spawned,
}

impl Prometheus {
    /// Starts one in `ns` with its files in `dir`, scraping the agent with
    /// `token` when one is given.
    pub fn start(ns: &str, dir: &Path, token: Option<&str>) -> Prometheus {
        let authorization = token
            .map(|t| format!("    authorization:\n      credentials: {t}\n"))
            .unwrap_or_default();
        let config = dir.join("prometheus.yml");
        fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: nta\n{authorization}    \
                 static_configs:\n      - targets: ['127.0.0.1:3000']\n"
            ),
        )
        .expect("writing prometheus.yml");
        let server = Spawned::start(
            ns,
            Duration::from_secs(300),
            &[
                "prometheus",
                &format!("--config.file={}", config.display()),
                &format!("--storage.tsdb.path={}", dir.join("data").display()),
                &format!("--web.listen-address={PROMETHEUS}"),
            ],
        );
        Prometheus {
            ns: ns.to_owned(),
            _server: server,
        }
    }

    /// Its answer to PromQL `query`.
    pub fn query(&self, net: &Topology, query: &str) -> Value {
        self.try_query(net, query)
            .unwrap_or_else(|| panic!("Prometheus did not answer {query}"))
    }

    /// [`Prometheus::query`], or `None` while it does not listen yet.
    pub fn try_query(&self, net: &Topology, query: &str) -> Option<Value> {
        let out = net.exec(
            &self.ns,
            Duration::from_secs(10),
            &[
                "curl",
                "-sS",
                "--get",
                &format!("http://{PROMETHEUS}/api/v1/query"),
                "--data-urlencode",
                &format!("query={query}"),
            ],
        );
        if !out.status.success() {
            return None;
        }
        let answer: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
        assert_eq!(answer["status"], "success", "{query}: {answer}");
        Some(answer)
    }

    /// Waits until the agent has been scraped successfully.
    pub fn wait_for_scrape(&self, net: &Topology) {
        wait_for("a successful scrape", Duration::from_secs(60), || {
            let up = self.try_query(net, r#"up{job="nta"}"#);
            (up.as_ref().and_then(value) == Some(1.0)).then_some(())
        });
    }
}

/// The single value of an instant vector, if it has one series.
pub fn value(answer: &Value) -> Option<f64> {
    let result = answer["data"]["result"].as_array()?;
    match result.as_slice() {
        [series] => series["value"][1].as_str()?.parse().ok(),
        _ => None,
    }
}
