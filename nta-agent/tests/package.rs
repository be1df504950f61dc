//! The Debian package `cargo xtask package` builds, as a user would get it:
//! every file with its owner and mode, the conffiles, the control fields
//! and maintainer scripts; the unit through `systemd-analyze verify` and
//! `security`, with exactly nta's three capabilities; the man pages
//! rendered; the completions loaded by the shells; the default
//! configuration through the packaged agent's own check.
//!
//! `cargo xtask test` builds the package first (a release build) and names
//! it in `NTA_TEST_DEB`; the tests are called `deb_*`, so that
//! `cargo xtask test -- deb_` runs only them.

mod support;

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use tempfile::TempDir;

/// The three capabilities loading and attaching XDP takes; the unit grants
/// these and no more.
const CAPABILITIES: [&str; 3] = ["CAP_BPF", "CAP_NET_ADMIN", "CAP_PERFMON"];

const UNIT: &str = "usr/lib/systemd/system/nta@.service";

/// Every file the package must install, with its mode as `dpkg-deb -c`
/// shows it (all owned by root).
const FILES: [(&str, &str); 16] = [
    ("usr/bin/nta-agent", "-rwxr-xr-x"),
    (UNIT, "-rw-r--r--"),
    ("etc/nta/nta.toml", "-rw-r--r--"),
    // The secrets: root's only.
    ("etc/nta/nta.env", "-rw-------"),
    ("etc/logrotate.d/nta", "-rw-r--r--"),
    ("usr/share/man/man1/nta-agent.1.gz", "-rw-r--r--"),
    ("usr/share/man/man1/nta-agent-run.1.gz", "-rw-r--r--"),
    ("usr/share/man/man1/nta-agent-read.1.gz", "-rw-r--r--"),
    (
        "usr/share/man/man1/nta-agent-config-check.1.gz",
        "-rw-r--r--",
    ),
    ("usr/share/man/man1/nta-agent-block-add.1.gz", "-rw-r--r--"),
    (
        "usr/share/bash-completion/completions/nta-agent",
        "-rw-r--r--",
    ),
    ("usr/share/zsh/vendor-completions/_nta-agent", "-rw-r--r--"),
    (
        "usr/share/fish/vendor_completions.d/nta-agent.fish",
        "-rw-r--r--",
    ),
    ("usr/share/doc/nta/copyright", "-rw-r--r--"),
    ("usr/share/doc/nta/README.Debian", "-rw-r--r--"),
    ("usr/share/doc/nta/examples/nta.example.toml", "-rw-r--r--"),
];

const CONFFILES: [&str; 3] = [
    "/etc/nta/nta.toml",
    "/etc/nta/nta.env",
    "/etc/logrotate.d/nta",
];

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("starting {program}: {e}"))
}

/// Standard output of a command that must succeed.
fn stdout_of(program: &str, args: &[&str]) -> String {
    let output = run(program, args);
    assert!(
        output.status.success(),
        "{program} {args:?}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// The package's files unpacked into a temporary root.
fn unpacked(deb: &Path) -> TempDir {
    let root = tempfile::tempdir().expect("a temporary folder");
    stdout_of(
        "dpkg-deb",
        &["-x", &deb.to_string_lossy(), &root.path().to_string_lossy()],
    );
    root
}

/// One line of `dpkg-deb -c`: mode, owner, size, date, time, path.
#[derive(Debug)]
struct Entry {
    mode: String,
    owner: String,
}

fn listing(deb: &Path) -> BTreeMap<String, Entry> {
    let text = stdout_of("dpkg-deb", &["-c", &deb.to_string_lossy()]);
    text.lines()
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            assert!(fields.len() >= 6, "unexpected dpkg-deb -c line: {line}");
            let path = fields[5].trim_start_matches("./").trim_end_matches('/');
            let entry = Entry {
                mode: fields[0].to_owned(),
                owner: fields[1].to_owned(),
            };
            (path.to_owned(), entry)
        })
        .collect()
}

#[test]
fn deb_installs_each_file_owned_by_root_with_its_mode() {
    let Some(deb) = support::deb() else { return };
    let listing = listing(&deb);
    for (path, mode) in FILES {
        let entry = listing
            .get(path)
            .unwrap_or_else(|| panic!("{path} is not in the package: {listing:#?}"));
        assert_eq!(entry.mode, mode, "{path}");
    }
    for (path, entry) in &listing {
        assert_eq!(entry.owner, "root/root", "{path}");
        // Nothing anyone but root may change, nothing set-id.
        let bits: Vec<char> = entry.mode.chars().collect();
        assert!(
            bits[5] != 'w' && bits[8] != 'w' && !entry.mode.contains(['s', 'S']),
            "{path}: {}",
            entry.mode
        );
        if entry.mode.starts_with('d') {
            assert_eq!(entry.mode, "drwxr-xr-x", "{path}");
        }
    }
}

#[test]
fn deb_control_lists_the_conffiles_the_libraries_and_no_instance_to_start() {
    let Some(deb) = support::deb() else { return };
    let deb = deb.to_string_lossy();
    let control = tempfile::tempdir().expect("a temporary folder");
    stdout_of("dpkg-deb", &["-e", &deb, &control.path().to_string_lossy()]);
    let conffiles = fs::read_to_string(control.path().join("conffiles")).expect("conffiles");
    let mut listed: Vec<&str> = conffiles.lines().collect();
    listed.sort_unstable();
    let mut expected = CONFFILES.to_vec();
    expected.sort_unstable();
    assert_eq!(listed, expected);

    let fields = stdout_of("dpkg-deb", &["-f", &deb, "Package", "Section", "Depends"]);
    assert!(fields.contains("Package: nta\n"), "{fields}");
    assert!(fields.contains("Section: net\n"), "{fields}");
    let depends = fields
        .lines()
        .find_map(|line| line.strip_prefix("Depends: "))
        .unwrap_or_else(|| panic!("no Depends: {fields}"));
    for package in ["libc6", "iproute2", "procps"] {
        assert!(depends.contains(package), "{package} in {depends}");
    }
    assert!(
        depends.contains("libhyperscan5") || depends.contains("libvectorscan5"),
        "Hyperscan's runtime library in {depends}"
    );

    for script in ["postinst", "prerm", "postrm"] {
        let path = control.path().join(script);
        stdout_of("sh", &["-n", &path.to_string_lossy()]);
        // Which interface to watch is the administrator's choice.
        let text = fs::read_to_string(&path).expect("a maintainer script");
        let code = text.lines().filter(|l| !l.trim_start().starts_with('#'));
        for line in code {
            assert!(
                !line.contains("systemctl enable") && !line.contains("systemctl start"),
                "{script} enables or starts an instance: {line}"
            );
        }
    }
}

/// The unit's values for `key`, every line of it, in order.
fn unit_values(unit: &str, key: &str) -> Vec<String> {
    unit.lines()
        .filter_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        .map(str::to_owned)
        .collect()
}

#[test]
fn deb_unit_grants_exactly_the_three_capabilities_and_sandboxes_the_rest() {
    let Some(deb) = support::deb() else { return };
    let root = unpacked(&deb);
    let unit = fs::read_to_string(root.path().join(UNIT)).expect("the unit");
    for key in ["AmbientCapabilities", "CapabilityBoundingSet"] {
        let values = unit_values(&unit, key);
        assert_eq!(values.len(), 1, "one {key} line: {values:?}");
        let mut capabilities: Vec<&str> = values[0].split_whitespace().collect();
        capabilities.sort_unstable();
        assert_eq!(capabilities, CAPABILITIES, "{key}");
    }
    for (key, value) in [
        ("DynamicUser", "yes"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictNamespaces", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("SystemCallArchitectures", "native"),
        ("StateDirectory", "nta/%i"),
        ("LogsDirectory", "nta"),
        (
            "RestrictAddressFamilies",
            "AF_INET AF_INET6 AF_UNIX AF_NETLINK",
        ),
        ("SystemCallFilter", "@system-service bpf"),
    ] {
        assert_eq!(unit_values(&unit, key), [value], "{key}");
    }
    assert_eq!(
        unit_values(&unit, "EnvironmentFile"),
        ["-/etc/nta/nta.env", "-/etc/nta/%i.env"]
    );
    let exec_start = unit_values(&unit, "ExecStart");
    assert_eq!(exec_start.len(), 1, "{exec_start:?}");
    assert!(
        exec_start[0].starts_with("/usr/bin/nta-agent run --iface %i ")
            && exec_start[0].contains("--db /var/lib/nta/%i/")
            && exec_start[0].contains("--config /etc/nta/nta.toml"),
        "{}",
        exec_start[0]
    );
}

/// The unpacked package, made a root that systemd-analyze can load the
/// unit in: the host's targets (the unit's dependencies) and `kill` (its
/// ExecReload) beside the package's files; `man` finds the package's pages.
fn analyzable(deb: &Path) -> TempDir {
    let root = unpacked(deb);
    let units = root.path().join("usr/lib/systemd/system");
    for entry in fs::read_dir("/usr/lib/systemd/system").expect("the host's systemd units") {
        let path = entry.expect("a unit").path();
        if path.extension().is_some_and(|e| e == "target") && path.is_file() {
            let name = path.file_name().expect("a unit name");
            fs::copy(&path, units.join(name)).expect("copying a target");
        }
    }
    fs::create_dir_all(root.path().join("bin")).expect("bin/");
    fs::copy("/bin/kill", root.path().join("bin/kill")).expect("copying kill");
    root
}

fn systemd_analyze(root: &Path, args: &[&str]) -> Output {
    Command::new("systemd-analyze")
        .args(args)
        .arg(format!("--root={}", root.display()))
        .arg("nta@eth0.service")
        // Documentation=man:nta-agent-run(1) must name a page the package ships.
        .env("MANPATH", root.join("usr/share/man"))
        .output()
        .expect("running systemd-analyze")
}

#[test]
fn deb_unit_passes_systemd_analyze_verify_and_security() {
    let Some(deb) = support::deb() else { return };
    if !support::have_tool("systemd-analyze") || !support::have_tool("man") {
        return;
    }
    let root = analyzable(&deb);
    // verify exits 0 on unknown keys and bad values, which it only prints:
    // any output is a failure.
    let verify = systemd_analyze(root.path(), &["verify"]);
    let said = String::from_utf8_lossy(&verify.stderr).into_owned()
        + &String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success() && said.trim().is_empty(), "{said}");

    let security = systemd_analyze(root.path(), &["security", "--offline=yes"]);
    let report = String::from_utf8_lossy(&security.stdout);
    assert!(security.status.success(), "{report}");
    let exposure: f64 = report
        .lines()
        .find_map(|line| {
            line.split("Overall exposure level for nta@eth0.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in {report}"));
    println!("systemd-analyze security: exposure {exposure} of 10");
    // 10 is a root service with no sandbox, under 2 "OK". What is left is
    // what nta exists for: BPF, the network and its configuration.
    assert!(exposure <= 2.0, "exposure {exposure}:\n{report}");
}

#[test]
fn deb_man_pages_render_and_document_run_and_iface() {
    let Some(deb) = support::deb() else { return };
    if !support::have_tool("man") {
        return;
    }
    let root = unpacked(&deb);
    let man1 = root.path().join("usr/share/man/man1");
    let render = |page: &str| {
        let output = Command::new("man")
            // No hyphenation or justification: words stay whole to search.
            .args(["--warnings", "--nh", "--nj", "-l"])
            .arg(man1.join(page))
            .env("MANWIDTH", "100")
            .env("MANPAGER", "cat")
            .output()
            .expect("running man");
        let warnings = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{page}: {warnings}");
        assert!(warnings.trim().is_empty(), "{page}: {warnings}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let top = render("nta-agent.1.gz");
    assert!(top.contains("nta-agent-run(1)"), "{top}");
    assert!(!top.contains("generate"), "the hidden command shows: {top}");
    let run = render("nta-agent-run.1.gz");
    for text in ["--iface", "--config", "--db", "NTA_TOKEN"] {
        assert!(run.contains(text), "{text} in nta-agent-run(1):\n{run}");
    }
    for entry in fs::read_dir(&man1).expect("man1/") {
        let name = entry.expect("a page").file_name();
        render(&name.to_string_lossy());
    }
}

#[test]
fn deb_completions_load_and_complete_run_and_iface() {
    let Some(deb) = support::deb() else { return };
    let root = unpacked(&deb);
    let bash = root
        .path()
        .join("usr/share/bash-completion/completions/nta-agent");
    // What bash does on `nta-agent r<TAB>` and `nta-agent run --if<TAB>`.
    let script = format!(
        "source '{}' || exit 1\n\
         complete -p nta-agent || exit 1\n\
         function=$(complete -p nta-agent | sed -n 's/.*-F \\([^ ]*\\).*/\\1/p')\n\
         COMP_WORDS=(nta-agent r); COMP_CWORD=1; $function nta-agent r nta-agent\n\
         echo \"words: ${{COMPREPLY[*]}}\"\n\
         COMP_WORDS=(nta-agent run --if); COMP_CWORD=2; $function nta-agent --if run\n\
         echo \"flags: ${{COMPREPLY[*]}}\"",
        bash.display()
    );
    let output = stdout_of("bash", &["-c", &script]);
    assert!(
        output
            .lines()
            .any(|l| l.starts_with("complete ") && l.ends_with(" nta-agent")),
        "{output}"
    );
    let words = output.lines().find_map(|l| l.strip_prefix("words: "));
    assert!(
        words.is_some_and(|w| w.split(' ').any(|w| w == "run")),
        "{output}"
    );
    let flags = output.lines().find_map(|l| l.strip_prefix("flags: "));
    assert!(
        flags.is_some_and(|f| f.split(' ').any(|f| f == "--iface")),
        "{output}"
    );

    // Syntax checks where those shells are installed (setup does not add
    // them: the scripts are clap's, only bash is everywhere).
    for (shell, path) in [
        ("zsh", "usr/share/zsh/vendor-completions/_nta-agent"),
        ("fish", "usr/share/fish/vendor_completions.d/nta-agent.fish"),
    ] {
        if run("sh", &["-c", &format!("command -v {shell}")])
            .status
            .success()
        {
            stdout_of(shell, &["-n", &root.path().join(path).to_string_lossy()]);
        } else {
            println!("{shell} is not installed: its completions are not checked");
        }
    }
}

#[test]
fn deb_default_config_passes_the_packaged_agents_check() {
    let Some(deb) = support::deb() else { return };
    let root = unpacked(&deb);
    let agent = root.path().join("usr/bin/nta-agent");
    let config = root.path().join("etc/nta/nta.toml");
    let summary = stdout_of(
        &agent.to_string_lossy(),
        &["config", "check", &config.to_string_lossy()],
    );
    assert!(summary.contains("OK"), "{summary}");
    let text = fs::read_to_string(&config).expect("nta.toml");
    // The unit lets the agent write below /var/log/nta only.
    assert!(text.contains("file = \"/var/log/nta/eve.json\""), "{text}");
}

/// The variables of an EnvironmentFile: `NAME=value` lines, comments and
/// blank lines skipped (the packaged file quotes nothing).
fn environment_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (name, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("not NAME=value: {line}"));
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

#[test]
fn deb_agent_started_as_the_unit_starts_it_gets_as_far_as_the_interface() {
    let Some(deb) = support::deb() else { return };
    if !support::privileged() {
        return;
    }
    let root = unpacked(&deb);
    let unit = fs::read_to_string(root.path().join(UNIT)).expect("the unit");
    let exec_start = unit_values(&unit, "ExecStart").remove(0);
    let work = tempfile::tempdir().expect("a temporary folder");
    let db = work.path().join("state/nta.redb");
    // The unit's command line, for an interface that does not exist: the
    // packaged binary, configuration and secrets template, the store in a
    // folder of the test's own, no NTA_OPTS.
    let mut words = exec_start.split_whitespace().map(|word| match word {
        "/usr/bin/nta-agent" => root.path().join("usr/bin/nta-agent"),
        "/etc/nta/nta.toml" => root.path().join("etc/nta/nta.toml"),
        "/var/lib/nta/%i/nta.redb" => db.clone(),
        word => PathBuf::from(word.replace("%i", "nta-pkg-none0")),
    });
    let program = words.next().expect("a program");
    let args: Vec<PathBuf> = words.filter(|w| w != Path::new("$NTA_OPTS")).collect();
    let env = fs::read_to_string(root.path().join("etc/nta/nta.env")).expect("nta.env");
    let output = Command::new(program)
        .args(&args)
        .env_clear()
        .envs(environment_file(&env))
        // The configuration's EVE file is /var/log/nta's: not the host's.
        .env("NTA_EVE", work.path().join("eve.json"))
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("running the packaged agent");
    let log = String::from_utf8_lossy(&output.stderr);
    // Settings, secrets, store, notifications, program and rules all
    // accepted: only the missing interface stops it.
    assert!(!output.status.success(), "{log}");
    assert!(log.contains("Rules loaded"), "{log}");
    assert!(log.contains("attaching to nta-pkg-none0"), "{log}");
    assert!(db.is_file(), "no store at {}: {log}", db.display());
}
