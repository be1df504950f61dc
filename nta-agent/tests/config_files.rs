//! The config files we ship or promise to reject, read the way the agent
//! reads them: the example at the repository root must describe the
//! defaults, and every file in `tests/config/bad` must fail with the message
//! its first line announces (`# expect: ...`), pointing at the line marked
//! `# <-`.

use std::{
    fs,
    path::{Path, PathBuf},
};

use nta_agent::config::{Config, ConfigError};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn the_shipped_example_parses_to_the_defaults() {
    let path = repo_root().join("nta.example.toml");
    let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config, Config::default());
}

/// The example's commented-out allowlist and overrides are what users copy:
/// uncommented, they must be valid and do what they say.
#[test]
fn the_examples_commented_out_in_the_shipped_example_are_valid() {
    let path = repo_root().join("nta.example.toml");
    let text = fs::read_to_string(&path).unwrap();
    let uncommented: String = text
        .lines()
        .filter(|line| *line != "allowlist = []")
        .map(|line| match line.strip_prefix("# ") {
            Some(rest) if rest == "[[override]]" || is_assignment(rest) => rest,
            _ => line,
        })
        .map(|line| format!("{line}\n"))
        .collect();
    let config = Config::parse(&uncommented, &path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.allowlist.len(), 3);
    assert_eq!(config.overrides.len(), 2);
    let web = "198.51.100.10".parse().unwrap();
    assert_eq!(config.syn_flood_for(web).dst_host_syn_rate, 20000.0);
    let lab = "2001:db8:100::1".parse().unwrap();
    assert!(!config.syn_flood_for(lab).enabled);
    assert!(!config.volumetric_for(lab).enabled);
    assert!(!config.flood_for(lab).enabled);
    let web_flood = config.flood_for(web);
    assert_eq!(web_flood.udp.pps, 100000.0);
    assert_eq!(web_flood.udp.mbps, 1000.0, "the class's other rate is kept");
    assert_eq!(web_flood.all.mbps, 40000.0);
    assert!(config.allowlisted("192.0.2.7".parse().unwrap()));
}

/// `key = value` with a lowercase key: TOML, not prose.
fn is_assignment(line: &str) -> bool {
    line.split_once(" = ").is_some_and(|(key, _)| {
        !key.is_empty() && key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
    })
}

#[test]
fn every_bad_config_is_rejected_with_its_message_at_its_line() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/config/bad");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 30, "only {} bad configs", files.len());

    for file in &files {
        let text = fs::read_to_string(file).unwrap();
        let name = file.display();
        let expected = text
            .lines()
            .next()
            .and_then(|first| first.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{name}: first line must be `# expect: <message>`"));
        let marked: Vec<usize> = text
            .lines()
            .enumerate()
            .filter(|(_, line)| line.ends_with("# <-"))
            .map(|(i, _)| i + 1)
            .collect();
        let [marked] = marked[..] else {
            panic!("{name}: mark exactly one line with `# <-`, found {marked:?}");
        };

        let error = match Config::load(file) {
            Ok(config) => panic!("{name}: accepted as {config:?}"),
            Err(error) => error,
        };
        let message = error.to_string();
        assert!(
            !matches!(error, ConfigError::Io { .. }),
            "{name}: {message}"
        );
        assert!(
            message.contains(expected),
            "{name}: expected {expected:?} in\n  {message}"
        );
        let location = error
            .location()
            .unwrap_or_else(|| panic!("{name}: no line in {message}"));
        assert_eq!(location.line, marked, "{name}: wrong line in {message}");
        assert!(
            message.starts_with(&format!("{name}:{marked}:{}: ", location.column)),
            "{name}: message does not start with path:line:col: {message}"
        );
    }
}
