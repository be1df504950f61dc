//! Suricata's own verification suite as an external corpus: every test in
//! `../shared/suricata-verify/` (GPL-2.0 test data, read in place) run
//! through `nta-agent read --rules ... --eve`, its alert counts per sid
//! compared with what Suricata expects (`index.json`).
//!
//! A test passes when every rule it uses loads in nta and every expected
//! count is met. Those that do not are listed, each with its reason, in
//! `suricata_verify_gaps.txt`; the list is a ratchet: an unlisted test
//! that fails fails here, and so does a listed one that passes (take it
//! off the list).

mod support;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::Value;

const GAPS: &str = include_str!("suricata_verify_gaps.txt");

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/suricata-verify")
}

/// The listed gaps: test name → reason.
fn gaps() -> BTreeMap<String, String> {
    GAPS.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (test, reason) = l.split_once(": ").unwrap_or((l, ""));
            (test.trim().to_owned(), reason.trim().to_owned())
        })
        .collect()
}

fn nta(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_nta-agent"))
        .args(args)
        .output()
        .expect("running nta-agent")
}

/// Why `test` does not pass, or `None` if it does.
fn run(test: &Value, out_dir: &Path) -> Option<String> {
    let dir = corpus().join(test["dir"].as_str()?);
    let files = |key: &str| -> Vec<String> {
        test[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f.as_str())
            .map(|f| dir.join(f).display().to_string())
            .collect()
    };
    let (rules, pcaps) = (files("rules"), files("pcaps"));
    for rule_file in &rules {
        let check = nta(&["rules", "check", rule_file]);
        if !check.status.success() {
            let errors = String::from_utf8_lossy(&check.stderr);
            let first = errors.lines().next().unwrap_or("rejected").to_owned();
            return Some(format!("rule not loaded: {first}"));
        }
    }
    let eve = out_dir.join(format!("{}.json", test["test"].as_str()?.replace('/', "_")));
    let mut args = vec![
        "read".to_owned(),
        "--eve".to_owned(),
        eve.display().to_string(),
    ];
    for r in &rules {
        args.extend(["--rules".to_owned(), r.clone()]);
    }
    args.extend(pcaps);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = nta(&args);
    if !out.status.success() {
        return Some(format!(
            "read failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let events: Vec<Value> = std::fs::read_to_string(&eve)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|e: &Value| e["event_type"] == "alert")
        .collect();
    // Checks on one sid that the index cannot tell apart (they differ in
    // a field it drops, e.g. `pcap_cnt`: two packets alerting once each)
    // count together.
    let mut expected: Vec<(Option<u64>, u64)> = Vec::new();
    for e in test["expected"].as_array()? {
        let (sid, count) = (e["sid"].as_u64(), e["count"].as_u64()?);
        match expected.iter_mut().find(|(s, _)| *s == sid) {
            Some((_, total)) => *total += count,
            None => expected.push((sid, count)),
        }
    }
    let mut wrong = Vec::new();
    for (sid, want) in expected {
        let got = match sid {
            Some(sid) => events
                .iter()
                .filter(|e| e["alert"]["signature_id"] == sid)
                .count(),
            None => events.len(),
        } as u64;
        if got != want {
            let sid = sid.map_or("any".into(), |s| s.to_string());
            wrong.push(format!("sid {sid}: {got} alerts, Suricata {want}"));
        }
    }
    (!wrong.is_empty()).then(|| wrong.join("; "))
}

#[test]
fn suricata_verify_tests_pass_or_are_listed_gaps() {
    let index = corpus().join("index.json");
    if !index.is_file() {
        support::missing(
            &format!("{} is missing", index.display()),
            "the suricata-verify corpus sits beside the project in ../shared",
        );
        return;
    }
    let tests: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(&index).expect("index.json"))
            .expect("index.json parses");
    let out_dir = tempfile::tempdir().expect("temp dir");
    let listed = gaps();
    let mut passed = Vec::new();
    let mut problems = Vec::new();
    let mut report = String::new();
    for test in &tests {
        let name = test["test"].as_str().expect("a test name").to_owned();
        let outcome = run(test, out_dir.path());
        match (&outcome, listed.get(&name)) {
            (None, None) => passed.push(name.clone()),
            (None, Some(_)) => {
                problems.push(format!("{name} passes now: take it off the gaps list"))
            }
            (Some(why), None) => problems.push(format!("{name} fails and is not listed: {why}")),
            (Some(_), Some(_)) => {}
        }
        report.push_str(&format!(
            "{name}: {}\n",
            outcome.as_deref().unwrap_or("PASS")
        ));
    }
    for name in listed.keys() {
        if !tests.iter().any(|t| t["test"] == name.as_str()) {
            problems.push(format!("{name} is listed but no such test exists"));
        }
    }
    println!(
        "suricata-verify: {} of {} pass\n{report}",
        passed.len(),
        tests.len()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
