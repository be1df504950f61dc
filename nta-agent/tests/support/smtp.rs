//! A real SMTP server for the notification tests: Python's aiosmtpd
//! running `tests/notify/smtp_server.py`, which prints one JSON line per
//! message it accepts.

use std::{
    io::{BufRead as _, BufReader},
    path::Path,
    process::{Child, ChildStdin, Command, Stdio},
    sync::mpsc,
    thread,
    time::Duration,
};

use base64::Engine as _;
use serde_json::Value;

/// Longest the SMTP server script may take to start (Python, imports).
const SERVER_START_LIMIT: Duration = Duration::from_secs(20);

/// Longest a delivered message may take to show up in the server's record.
pub const RECORD_LIMIT: Duration = Duration::from_secs(10);

/// Whether python3 with aiosmtpd is there; like the support helpers, a
/// missing one is a failure under CI and a skip elsewhere.
pub fn have_aiosmtpd() -> bool {
    if !super::have_tool("python3") {
        return false;
    }
    let imported = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    imported
        || super::missing(
            "Python's aiosmtpd is not installed",
            "`cargo xtask setup --test-tools`",
        )
}

/// One message as the SMTP server received it.
#[derive(Debug)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    /// The message as it came after DATA.
    pub data: Vec<u8>,
    pub tls: bool,
    pub login: Option<String>,
}

/// `tests/notify/smtp_server.py`, running; killed when dropped.
pub struct SmtpServer {
    child: Child,
    /// Held open: the script exits when it closes, should we die unclean.
    _stdin: ChildStdin,
    pub port: u16,
    lines: mpsc::Receiver<String>,
}

impl SmtpServer {
    /// The server with the script's `args` (none: plain SMTP, no login).
    pub fn start(args: &[&str]) -> Self {
        Self::spawn(Command::new("python3"), args)
    }

    /// Like [`SmtpServer::start`], in network namespace `ns` (still on its
    /// 127.0.0.1), for an agent running there.
    pub fn start_in(ns: &str, args: &[&str]) -> Self {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", ns, "python3"]);
        Self::spawn(command, args)
    }

    fn spawn(mut command: Command, args: &[&str]) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/notify/smtp_server.py");
        let mut child = command
            .arg(&script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting python3 {}: {e}", script.display()));
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (send, lines) = mpsc::channel();
        // A thread, so that every wait on the server can have a time limit.
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = SmtpServer {
            child,
            _stdin: stdin,
            port: 0,
            lines,
        };
        let ready = server
            .lines
            .recv_timeout(SERVER_START_LIMIT)
            .unwrap_or_else(|e| {
                panic!(
                    "the SMTP server did not say `ready PORT` within {SERVER_START_LIMIT:?}: {e}"
                )
            });
        server.port = ready
            .strip_prefix("ready ")
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("the SMTP server said {ready:?}, not `ready PORT`"));
        server
    }

    /// The next message the server accepted.
    pub fn next_message(&self) -> Received {
        self.next_message_within(RECORD_LIMIT).unwrap_or_else(|| {
            panic!("the SMTP server recorded no message within {RECORD_LIMIT:?}")
        })
    }

    /// The next message the server accepts within `limit`, if any.
    pub fn next_message_within(&self, limit: Duration) -> Option<Received> {
        let line = self.lines.recv_timeout(limit).ok()?;
        let record: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the SMTP server printed {line:?}: {e}"));
        let text = |key: &str| record[key].as_str().unwrap_or_default().to_owned();
        Some(Received {
            mail_from: text("mail_from"),
            rcpt_tos: record["rcpt_tos"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|to| to.as_str().map(str::to_owned))
                .collect(),
            data: base64::engine::general_purpose::STANDARD
                .decode(text("data"))
                .expect("base64 data"),
            tls: record["tls"] == true,
            login: record["login"].as_str().map(str::to_owned),
        })
    }

    /// Fails if the server accepted any message (it prints one line each,
    /// right when it accepts it, so none by now means none at all).
    pub fn assert_nothing_received(&self) {
        if let Ok(line) = self.lines.try_recv() {
            panic!("the SMTP server accepted a message: {line}");
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
