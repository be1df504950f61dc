//! A clean Debian machine for the package: a minimal bookworm made with
//! `debootstrap` (once, kept under the target directory), copied afresh for
//! each test and booted with `systemd-nspawn` — systemd as its PID 1, its
//! network a namespace of the test's — and commands run in it with
//! `nsenter`. Powered off and deleted when dropped, even when a test fails.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

/// The Debian release the package is tried on: this machine's own.
const SUITE: &str = "bookworm";
const MIRROR: &str = "http://deb.debian.org/debian";
/// Longest the machine may take to boot, or to stop.
const BOOT_LIMIT: Duration = Duration::from_secs(90);

/// The pristine root file system, made the first time it is needed.
fn pristine() -> PathBuf {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("debian-{SUITE}-rootfs"));
    if root.join("etc/debian_version").is_file() {
        return root;
    }
    let partial = root.with_extension("partial");
    let _ = fs::remove_dir_all(&partial);
    let out = Command::new("debootstrap")
        .args([
            "--variant=minbase",
            "--include=systemd,systemd-sysv,dbus",
            SUITE,
        ])
        .arg(&partial)
        .arg(MIRROR)
        .output()
        .expect("running debootstrap");
    assert!(
        out.status.success(),
        "debootstrap {SUITE} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    fs::rename(&partial, &root).expect("keeping the root file system");
    root
}

/// A booted machine.
pub struct Container {
    root: PathBuf,
    nspawn: Option<Child>,
    /// Its systemd, as the host sees it.
    init: u32,
}

impl Container {
    /// A fresh copy of the pristine machine, named `name`, with `files`
    /// (host path, path inside) copied in and `setup` run in it before it
    /// boots (with the host's network, e.g. to install packages); then
    /// booted in the network namespace `netns`, with the capabilities an
    /// XDP program needs added to nspawn's default set.
    pub fn boot(name: &str, netns: &str, files: &[(&Path, &str)], setup: &str) -> Container {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
        let _ = fs::remove_dir_all(&root);
        let copy = Command::new("cp")
            .arg("-a")
            .arg(pristine())
            .arg(&root)
            .status()
            .expect("running cp");
        assert!(copy.success(), "copying the root file system");
        let mut container = Container {
            root,
            nspawn: None,
            init: 0,
        };
        for (from, to) in files {
            let to = container.path(to);
            fs::copy(from, &to).unwrap_or_else(|e| panic!("copying {}: {e}", from.display()));
        }
        let out = Command::new("systemd-nspawn")
            .args(["-q", "--register=no", "--keep-unit", "-D"])
            .arg(&container.root)
            .args(["bash", "-ec", setup])
            .output()
            .expect("running systemd-nspawn");
        assert!(
            out.status.success(),
            "setting the machine up failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        container.start(name, netns);
        container
    }

    fn start(&mut self, name: &str, netns: &str) {
        let nspawn = Command::new("systemd-nspawn")
            .args([
                "-q",
                "-b",
                "--console=passive",
                "--register=no",
                "--keep-unit",
                &format!("--machine={name}"),
                &format!("--network-namespace-path=/run/netns/{netns}"),
                "--capability=CAP_BPF,CAP_PERFMON,CAP_NET_ADMIN",
                "--system-call-filter=bpf",
                "-D",
            ])
            .arg(&self.root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("booting with systemd-nspawn");
        let nspawn_pid = nspawn.id();
        self.nspawn = Some(nspawn);
        let deadline = Instant::now() + BOOT_LIMIT;
        self.init = loop {
            let children =
                fs::read_to_string(format!("/proc/{nspawn_pid}/task/{nspawn_pid}/children"))
                    .unwrap_or_default();
            let init = children
                .split_whitespace()
                .filter_map(|pid| pid.parse::<u32>().ok())
                .find(|pid| {
                    fs::read_to_string(format!("/proc/{pid}/comm"))
                        .is_ok_and(|comm| comm.trim() == "systemd")
                });
            if let Some(init) = init {
                break init;
            }
            assert!(
                Instant::now() < deadline,
                "the machine's systemd did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        loop {
            let state = self.sh("systemctl is-system-running || true");
            let state = String::from_utf8_lossy(&state.stdout).trim().to_owned();
            if state == "running" || state == "degraded" {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the machine did not boot: {state}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `path` inside the machine, as the host sees it.
    pub fn path(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    /// Runs `script` with bash inside the booted machine.
    pub fn sh(&self, script: &str) -> Output {
        Command::new("nsenter")
            .args([
                "-t",
                &self.init.to_string(),
                "-a",
                "timeout",
                "-s",
                "KILL",
                "60",
            ])
            .args(["bash", "-c", script])
            .output()
            .expect("running nsenter")
    }

    /// [`Container::sh`], which must succeed; its stdout.
    #[track_caller]
    pub fn ok(&self, script: &str) -> String {
        let out = self.sh(script);
        assert!(
            out.status.success(),
            "`{script}` failed in the machine: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if let Some(mut nspawn) = self.nspawn.take() {
            if self.init != 0 {
                let _ = self.sh("systemctl poweroff");
            }
            let deadline = Instant::now() + BOOT_LIMIT;
            while nspawn.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            if self.init != 0 && nspawn.try_wait().ok().flatten().is_none() {
                // Its PID 1: the kernel ends every process of the machine
                // with it.
                // SAFETY: kill has no memory preconditions.
                unsafe { libc::kill(self.init as i32, libc::SIGKILL) };
            }
            let _ = nspawn.kill();
            let _ = nspawn.wait();
        }
        let _ = fs::remove_dir_all(&self.root);
    }
}
