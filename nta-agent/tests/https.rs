//! The API and dashboard over HTTPS, with the real agent and real clients.
//!
//! The certificate is made by `openssl` as the README says. The agent,
//! started with `--tls-cert`/`--tls-key`, answers curl (`--cacert`) on
//! `/healthz` and, with the token, `/api/alerts`, over HTTP/2 when curl
//! asks; a plain-HTTP request to its port fails and the next HTTPS one is
//! answered; `nta-agent block` adds and lists blocks through it with
//! `--cacert`, and without it says to use `--cacert`. Served on the
//! victim's address, other hosts reach it; served there without TLS, the
//! agent warns that the token travels in clear, and not on 127.0.0.1.
//! Files that cannot be served stop the agent at start, naming them.

mod support;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    time::Duration,
};

use support::{
    api::LISTEN,
    lab::{START_LIMIT, start_agent},
    netns::{Agent, Topology, VICTIM_ADDR},
};

const TOKEN: &str = "https-test-token-0123456789abcdef";

/// What the agent logs when it serves beyond loopback without TLS.
const IN_CLEAR: &str = "travel in clear";

/// Longest one curl or `nta-agent block` may take.
const CLIENT_LIMIT: Duration = Duration::from_secs(20);

/// A self-signed certificate for `localhost`, 127.0.0.1 and the victim's
/// address, made as the README shows, and its key.
struct Certificate {
    dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
}

impl Certificate {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let san = format!("subjectAltName=DNS:localhost,IP:127.0.0.1,IP:{VICTIM_ADDR}");
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "365",
            "-subj",
            "/CN=nta",
            "-addext",
            &san,
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-keyout",
            path(&key),
            "-out",
            path(&cert),
        ]);
        Certificate { dir, cert, key }
    }

    /// The key rewritten by `openssl TOOL` (`ec` writes SEC1), as `name`.
    fn key_as(&self, tool: &str, name: &str) -> PathBuf {
        let out = self.dir.path().join(name);
        openssl(&[tool, "-in", path(&self.key), "-out", path(&out)]);
        out
    }

    /// The options that serve HTTPS with this certificate and `key`.
    fn args<'a>(&'a self, key: &'a Path) -> [&'a str; 4] {
        ["--tls-cert", path(&self.cert), "--tls-key", path(key)]
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temporary path")
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("running openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// curl in `ns` with `args`, silent but for errors.
fn curl(net: &Topology, ns: &str, args: &[&str]) -> Output {
    let mut all = vec!["curl", "-sS", "--max-time", "5"];
    all.extend_from_slice(args);
    net.exec(ns, CLIENT_LIMIT, &all)
}

/// `nta-agent block ARGS` in the victim's namespace.
fn block(net: &Topology, args: &[&str]) -> Output {
    let mut all = vec![env!("CARGO_BIN_EXE_nta-agent"), "block"];
    all.extend_from_slice(args);
    net.exec(&net.victim, CLIENT_LIMIT, &all)
}

#[test]
fn the_agent_serves_https_to_curl_and_the_block_command() {
    let Some(net) = Topology::privileged(&["curl", "openssl"]) else {
        return;
    };
    let cert = Certificate::new();
    // SEC1 (`BEGIN EC PRIVATE KEY`), as older tools write keys.
    let sec1 = cert.key_as("ec", "sec1.pem");
    let mut args = vec!["--token", TOKEN];
    args.extend(cert.args(&sec1));
    let mut agent = start_agent(&net, &args);
    agent.assert_logged("dashboard=https://127.0.0.1:3000/");
    assert!(!agent.log().contains(IN_CLEAR), "{}", agent.log());

    let base = format!("https://{LISTEN}");
    let cacert = path(&cert.cert);
    let health = curl(
        &net,
        &net.victim,
        &["--cacert", cacert, &format!("{base}/healthz")],
    );
    assert_eq!(stdout(&health), r#"{"status":"ok"}"#, "{}", stderr(&health));
    let version = curl(
        &net,
        &net.victim,
        &[
            "--http2",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version}",
            "--cacert",
            cacert,
            &format!("{base}/healthz"),
        ],
    );
    assert_eq!(stdout(&version), "2", "ALPN did not pick HTTP/2");
    let alerts = format!("{base}/api/alerts");
    let refused = curl(
        &net,
        &net.victim,
        &[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--cacert",
            cacert,
            &alerts,
        ],
    );
    assert_eq!(stdout(&refused), "401", "{}", stderr(&refused));
    let bearer = format!("Authorization: Bearer {TOKEN}");
    let answer = curl(
        &net,
        &net.victim,
        &["--cacert", cacert, "-H", &bearer, &alerts],
    );
    let body: serde_json::Value = serde_json::from_slice(&answer.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&answer), stderr(&answer)));
    assert!(body["alerts"].is_array(), "{body}");

    // Plain HTTP on the TLS port gets no answer; HTTPS still does.
    let plain = curl(&net, &net.victim, &[&format!("http://{LISTEN}/healthz")]);
    assert!(
        !plain.status.success(),
        "plain HTTP answered: {}",
        stdout(&plain)
    );
    let again = curl(
        &net,
        &net.victim,
        &["--cacert", cacert, &format!("{base}/healthz")],
    );
    assert_eq!(stdout(&again), r#"{"status":"ok"}"#, "{}", stderr(&again));

    let common = ["--api", &base, "--token", TOKEN];
    let trusted = [&common[..], &["--cacert", cacert]].concat();
    let added = block(&net, &[&["add", "198.18.0.77"], &trusted[..]].concat());
    assert!(added.status.success(), "{}", stderr(&added));
    assert!(
        stdout(&added).starts_with("blocked 198.18.0.77/32"),
        "{}",
        stdout(&added)
    );
    let listed = block(&net, &[&["list"], &trusted[..]].concat());
    assert!(listed.status.success(), "{}", stderr(&listed));
    assert!(
        stdout(&listed).contains("198.18.0.77/32"),
        "{}",
        stdout(&listed)
    );

    let untrusted = block(&net, &[&["list"], &common[..]].concat());
    assert!(!untrusted.status.success(), "{}", stdout(&untrusted));
    assert!(
        stderr(&untrusted).contains("--cacert"),
        "{}",
        stderr(&untrusted)
    );
    let plain = block(
        &net,
        &[
            "list",
            "--api",
            &format!("http://{LISTEN}"),
            "--token",
            TOKEN,
        ],
    );
    assert!(!plain.status.success(), "{}", stdout(&plain));
    assert!(stderr(&plain).contains("https://"), "{}", stderr(&plain));

    agent.stop_cleanly(libc::SIGTERM, Duration::from_secs(15));
}

/// Starts the agent listening on `listen` with `extra` options, and waits
/// until it serves.
fn agent_listening_on(net: &Topology, listen: &str, extra: &[&str]) -> Agent {
    let mut args = vec!["--listen", listen, "--token", TOKEN];
    args.extend_from_slice(extra);
    let mut agent = Agent::start(&net.victim, &net.victim_if, &args);
    agent.wait_for_log("API listening", START_LIMIT);
    agent
}

#[test]
fn beyond_loopback_the_token_travels_in_clear_without_tls_and_is_warned_about() {
    let Some(net) = Topology::privileged(&["curl", "openssl"]) else {
        return;
    };
    let victim = format!("{VICTIM_ADDR}:3000");

    let mut agent = agent_listening_on(&net, &victim, &[]);
    agent.assert_logged(IN_CLEAR);
    agent.assert_logged("--tls-cert");
    agent.stop_cleanly(libc::SIGTERM, Duration::from_secs(15));

    let mut agent = agent_listening_on(&net, LISTEN, &[]);
    assert!(!agent.log().contains(IN_CLEAR), "{}", agent.log());
    agent.stop_cleanly(libc::SIGTERM, Duration::from_secs(15));

    // With TLS on the victim's address: no warning, and another host
    // reaches the API over HTTPS.
    let cert = Certificate::new();
    let mut agent = agent_listening_on(&net, &victim, &cert.args(&cert.key));
    assert!(!agent.log().contains(IN_CLEAR), "{}", agent.log());
    agent.assert_logged(&format!("dashboard=https://{victim}/"));
    let bearer = format!("Authorization: Bearer {TOKEN}");
    let answer = curl(
        &net,
        &net.attacker,
        &[
            "--cacert",
            path(&cert.cert),
            "-H",
            &bearer,
            &format!("https://{victim}/api/alerts"),
        ],
    );
    assert!(answer.status.success(), "{}", stderr(&answer));
    assert!(
        stdout(&answer).contains(r#""alerts""#),
        "{}",
        stdout(&answer)
    );
    agent.stop_cleanly(libc::SIGTERM, Duration::from_secs(15));
}

/// `nta-agent run` with `tls` options, which must fail before it needs
/// root or an interface; its error output.
fn refused_at_start(tls: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_nta-agent"))
        .args(["run", "--iface", "lo", "--db"])
        .arg(dir.path().join("nta.redb"))
        .args(tls)
        .env("RUST_LOG", "warn")
        .output()
        .expect("running nta-agent");
    assert!(!out.status.success(), "the agent started: {}", stderr(&out));
    stderr(&out)
}

#[test]
fn files_that_cannot_be_served_stop_the_agent_at_start_naming_them() {
    if !support::have_tool("openssl") {
        return;
    }
    let cert = Certificate::new();
    let missing = cert.dir.path().join("missing.pem");
    let err = refused_at_start(&cert.args(&missing));
    assert!(err.contains(path(&missing)), "{err}");

    // The key where the certificate goes.
    let err = refused_at_start(&["--tls-cert", path(&cert.key), "--tls-key", path(&cert.key)]);
    assert!(
        err.contains(&format!("no certificate in {}", path(&cert.key))),
        "{err}"
    );

    let other = Certificate::new();
    let err = refused_at_start(&cert.args(&other.key));
    assert!(err.contains("does not match"), "{err}");
    assert!(err.contains(path(&other.key)), "{err}");
}

#[test]
fn keys_in_each_pem_form_load() {
    if !support::have_tool("openssl") {
        return;
    }
    let cert = Certificate::new();
    let sec1 = cert.key_as("ec", "sec1.pem");
    for key in [&cert.key, &sec1] {
        nta_agent::api::tls::Tls::load(&cert.cert, key)
            .unwrap_or_else(|e| panic!("{}: {e}", key.display()));
    }
    // RSA, PKCS#1 (`BEGIN RSA PRIVATE KEY`).
    let dir = &cert.dir;
    let (rsa_key, rsa_cert) = (dir.path().join("rsa.pem"), dir.path().join("rsa-cert.pem"));
    openssl(&["genrsa", "-traditional", "-out", path(&rsa_key), "2048"]);
    openssl(&[
        "req",
        "-x509",
        "-new",
        "-key",
        path(&rsa_key),
        "-days",
        "1",
        "-subj",
        "/CN=nta",
        "-out",
        path(&rsa_cert),
    ]);
    let pem = std::fs::read_to_string(&rsa_key).expect("the RSA key");
    assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"), "{pem}");
    nta_agent::api::tls::Tls::load(&rsa_cert, &rsa_key).expect("a PKCS#1 key loads");
}
