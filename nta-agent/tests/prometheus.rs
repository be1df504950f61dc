//! A real Prometheus (Debian's `prometheus`) scraping the agent's
//! `/metrics` with its token, in the victim's namespace: the SYNs of an
//! `hping3` burst, asked for in PromQL over Prometheus's API, are exactly
//! what was sent; and every query of the Grafana dashboard shipped in
//! `docs/grafana/` answers with data.

mod support;

use std::{fs, path::Path, time::Duration};

use serde_json::Value;
use support::{
    netns::{Agent, Topology, VICTIM_ADDR},
    prometheus::{Prometheus, value},
    wait_for,
};

const TOKEN: &str = "prometheus-scrape-token-0123";

#[test]
fn prometheus_scrapes_the_agent_and_counts_every_syn_of_a_burst() {
    if !support::privileged_with(&["prometheus", "hping3", "curl"]) {
        return;
    }
    let net = Topology::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("nta.toml");
    fs::write(
        &config,
        format!(
            "sensor_name = \"edge-prom\"\n[eve]\nfile = \"{}\"\n",
            dir.path().join("eve.json").display()
        ),
    )
    .expect("writing the config");
    let mut agent = Agent::start(
        &net.victim,
        &net.victim_if,
        &[
            "--listen",
            "127.0.0.1:3000",
            "--token",
            TOKEN,
            "--config",
            config.to_str().expect("a UTF-8 path"),
        ],
    );
    agent.wait_for_log("API listening", Duration::from_secs(30));
    let prometheus = Prometheus::start(&net.victim, dir.path(), Some(TOKEN));
    // Scraped, with the token, and the sensor named.
    prometheus.wait_for_scrape(&net);
    let sensor = prometheus.query(&net, "nta_sensor");
    assert_eq!(
        sensor["data"]["result"][0]["metric"]["sensor_name"], "edge-prom",
        "{sensor}"
    );

    let syns = r#"nta_kernel_total{counter="tcp_syn"}"#;
    let before = wait_for("the SYN counter", Duration::from_secs(30), || {
        value(&prometheus.query(&net, syns))
    });
    let burst = net.exec(
        &net.attacker,
        Duration::from_secs(30),
        &[
            "hping3",
            "-S",
            "-p",
            "80",
            "-c",
            "1000",
            "-i",
            "u2000",
            VICTIM_ADDR,
        ],
    );
    assert!(burst.status.code().is_some(), "hping3: {burst:?}");
    let after = wait_for("the burst in Prometheus", Duration::from_secs(30), || {
        value(&prometheus.query(&net, syns)).filter(|v| *v >= before + 1000.0)
    });
    assert_eq!(after - before, 1000.0, "every SYN of the burst, no more");
    // The same as a rate over the burst's minute.
    let increase = value(&prometheus.query(
        &net,
        &format!("max_over_time({syns}[2m]) - min_over_time({syns}[2m])"),
    ))
    .expect("an increase");
    assert_eq!(increase, after - before);

    // Every query of the shipped dashboard answers with data.
    let dashboard: Value = serde_json::from_str(
        &fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/grafana/nta-sensors.json"),
        )
        .expect("the dashboard"),
    )
    .expect("the dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut asked = 0;
    for panel in panels {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"]
                .as_str()
                .expect("expr")
                .replace("$instance", ".*");
            let answer = prometheus.query(&net, &expr);
            let series = answer["data"]["result"].as_array().map_or(0, Vec::len);
            assert!(
                series > 0,
                "{}: {expr} has no data: {answer}",
                panel["title"]
            );
            asked += 1;
        }
    }
    assert!(asked >= 10, "{asked} queries");
    agent.stop_cleanly(libc::SIGTERM, Duration::from_secs(15));
}
