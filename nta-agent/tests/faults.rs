//! Faults end to end: the agent killed with SIGKILL in an alert storm and
//! started again on the same store, its store's disk filling up or turning
//! read-only (an ext4 error) under attack, and the payload-sample ring
//! overrun by a flood. What is checked is what a user would see through the
//! API and the log.
//!
//! The alert storms come from one python3 process in the attacker's
//! namespace that sends UDP from many spoofed sources (198.19.0.0/16, never
//! routed anywhere) with a config whose UDP threshold is 5 packets/s: every
//! source is its own volumetric incident, opened by a kernel event and
//! stored in a transaction of its own, as single events are. That makes
//! hundreds of alerts a second at a rate the test sets, which nmap scans
//! from added addresses (one alert each, seconds apart) cannot.

mod support;

use std::{
    collections::BTreeSet,
    fs,
    io::Write as _,
    path::{Path, PathBuf},
    process::Command,
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;
use support::{
    api::LISTEN,
    lab::{Spawned, alert_log, ms, start_agent},
    netns::{Agent, Topology, VICTIM_ADDR},
};

/// Low thresholds: each storm source (10 UDP packets at once) opens one
/// volumetric incident, closed after a second of quiet.
const STORM_CONFIG: &str = r#"
[volumetric]
udp_rate = 5.0

[incidents]
quiet_period = "1s"
"#;

/// Sends 10 UDP packets from each of `sources` spoofed addresses in turn,
/// `per_sec` sources a second, for at most `secs` seconds.
const STORM_SCRIPT: &str = r#"
import socket, struct, sys, time
first, sources, per_sec, secs = (int(a) for a in sys.argv[1:5])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
dst = socket.inet_aton(sys.argv[5])
payload = b"storm" * 4
start = time.monotonic()
sent = 0
for i in range(first, first + sources):
    if time.monotonic() - start > secs:
        break
    src = bytes([198, 19, (i >> 8) & 255, i & 255])
    udp = struct.pack("!HHHH", 40000 + i % 20000, 9, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, src, dst)
    for _ in range(10):
        s.sendto(ip + udp, (sys.argv[5], 0))
    sent += 1
    wait = start + sent / per_sec - time.monotonic()
    if wait > 0:
        time.sleep(wait)
print("sources", sent, flush=True)
"#;

/// An alert storm from sources `first..first + sources`; killed on drop.
fn storm(net: &Topology, first: u32, sources: u32, per_sec: u32, limit: Duration) -> Spawned {
    let args = [
        first.to_string(),
        sources.to_string(),
        per_sec.to_string(),
        limit.as_secs().to_string(),
    ];
    Spawned::start(
        &net.attacker,
        limit + Duration::from_secs(5),
        &[
            "python3",
            "-c",
            STORM_SCRIPT,
            &args[0],
            &args[1],
            &args[2],
            &args[3],
            VICTIM_ADDR,
        ],
    )
}

/// Writes `text` as the agent's config in `dir`; returns its path.
fn config_file(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("nta.toml");
    fs::write(&path, text).expect("writing the config");
    path
}

/// The ids listed in a `/api/alerts` body.
fn ids(body: &Value) -> Vec<u64> {
    body["alerts"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["id"].as_u64()).collect())
        .unwrap_or_default()
}

/// Alert ids the agent logged as opened (`Alert opened id=N ...`).
fn logged_openings(log: &str) -> BTreeSet<u64> {
    log.lines()
        .filter_map(|l| {
            l.split("Alert opened id=")
                .nth(1)?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

/// Polls until `done` holds for `/api/stats`, or panics with `what` after
/// `limit`; returns the last body.
fn wait_for_stats(
    api: &support::api::Api,
    what: &str,
    limit: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        let stats = api.get("/api/stats");
        if done(&stats) {
            return stats;
        }
        assert!(
            start.elapsed() < limit,
            "not {what} within {limit:?}: {}",
            stats["store"]
        );
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn agent_killed_in_an_alert_storm_restarts_with_every_served_alert_closed() {
    let Some(net) = Topology::privileged(&["python3"]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("nta.redb");
    let config = config_file(dir.path(), STORM_CONFIG);
    let args = [
        "--db",
        db.to_str().expect("UTF-8 path"),
        "--config",
        config.to_str().expect("UTF-8 path"),
    ];
    let mut agent = start_agent(&net, &args);
    let api = support::api::Api::new(&net.victim);

    // 300 new sources a second for up to 40 s: the storm outlives the kill
    // and goes on while the agent starts again.
    let _storm = storm(&net, 0, 12_000, 300, Duration::from_secs(40));
    let start = Instant::now();
    let mut served = BTreeSet::new();
    while served.len() < 1000 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "only {} alerts served in 30 s:\n{}",
            served.len(),
            alert_log(&agent)
        );
        let page = api.get("/api/alerts?limit=1000");
        served.extend(ids(&page));
        thread::sleep(Duration::from_millis(20));
    }
    let open_before = api.get("/api/stats")["open_incidents"].clone();
    let status = agent.stop(libc::SIGKILL, Duration::from_secs(10));
    let killed_after = start.elapsed();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL)
    );
    let logged = logged_openings(&agent.log());
    println!(
        "killed with SIGKILL {} into the storm: {} alert ids served by the API, {} opened \
         per the log, {open_before} incidents open",
        ms(killed_after),
        served.len(),
        logged.len()
    );

    // The same interface and store: nothing left behind blocks either.
    let restart = Instant::now();
    let mut again = start_agent(&net, &args);
    let started_in = restart.elapsed();
    again.wait_for_log(
        "Closed incidents left open by the previous run",
        Duration::from_secs(5),
    );
    let stale = again.log().contains("Replaced a stale nta program");
    for id in &served {
        let alert = api.get(&format!("/api/alerts/{id}"));
        assert_eq!(
            alert["state"], "closed",
            "alert {id} after the restart: {alert}"
        );
        assert!(alert["closed_at"].is_string(), "alert {id}: {alert}");
    }
    let newest = *served.last().expect("some alerts");
    // Detection goes on under the same storm: new alerts, new ids.
    let deadline = Instant::now() + Duration::from_secs(15);
    let fresh = loop {
        let page = api.get("/api/alerts?limit=10");
        if let Some(id) = ids(&page).into_iter().find(|id| *id > newest) {
            break id;
        }
        assert!(
            Instant::now() < deadline,
            "no new alert after the restart:\n{}",
            alert_log(&again)
        );
        thread::sleep(Duration::from_millis(50));
    };
    println!(
        "restarted in {} (attached{}, store opened and repaired, API up); all {} served ids \
         found closed; new alert #{fresh} after the restart",
        ms(started_in),
        if stale {
            ", replacing a stale program"
        } else {
            ""
        },
        served.len()
    );
}

/// A tmpfs the test mounts, unmounted on drop even when the test fails.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().expect("mount point");
        let path = dir.path().to_str().expect("UTF-8 path").to_owned();
        support::netns::run(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "nta-test",
                &path,
            ],
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `name` until the filesystem is full; returns its size.
    fn fill(&self, name: &str) -> u64 {
        let mut file = fs::File::create(self.path().join(name)).expect("filler");
        let chunk = vec![0xa5u8; 64 * 1024];
        let mut written = 0u64;
        // Bounded by the tmpfs's size, which the test chose small.
        while file.write_all(&chunk).is_ok() {
            written += chunk.len() as u64;
        }
        let _ = file.sync_all();
        written
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        unmount(self.dir.path());
    }
}

/// Unmounts `path`, for a guard's drop; if it is still busy (an agent not
/// yet reaped), detaches it now, gone once the last user closes it.
fn unmount(path: &Path) {
    let unmounted = Command::new("umount")
        .arg(path)
        .status()
        .is_ok_and(|s| s.success());
    if !unmounted {
        let _ = Command::new("umount").arg("-l").arg(path).status();
    }
}

#[test]
fn a_full_store_disk_loses_no_alert_and_writing_resumes_when_space_is_freed() {
    let Some(net) = Topology::privileged(&["python3"]) else {
        return;
    };
    // Locals drop in reverse order: the agent (and its open store) before
    // the tmpfs, the tmpfs before the namespaces.
    let disk = Tmpfs::mount("16m");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut agent = storm_agent(&net, &disk.path().join("nta.redb"), dir.path());
    let api = support::api::Api::new(&net.victim);
    alerts_stored_before_the_fault(&net, &api);

    // The disk fills up; a storm goes on: new alerts need new pages.
    let filled = disk.fill("filler");
    let mut attack = storm(&net, 1000, 3000, 150, Duration::from_secs(20));
    let failing_after = failure_reported(&api, "No space left on device", Instant::now());
    let outage = outage_reported(&api, &agent, Duration::from_secs(5), StoredAlerts::Served);
    let opened_while_full: BTreeSet<u64> = logged_openings(&agent.log())
        .into_iter()
        .filter(|id| {
            api.try_get(&format!("/api/alerts/{id}"))
                .is_ok_and(|r| r.status == 404)
        })
        .collect();
    assert!(
        !opened_while_full.is_empty(),
        "no alert waits for the disk:\n{}",
        alert_log(&agent)
    );
    println!(
        "disk full ({} KiB filler): failure reported {} after, {} failed writes, {} alerts \
         waiting, {} detected meanwhile and not yet stored; slowest API answer {}",
        filled / 1024,
        ms(failing_after),
        outage.store["failed_writes"],
        outage.store["backlog"],
        opened_while_full.len(),
        ms(outage.slowest)
    );

    // Space freed: the backlog is written, the log says so.
    fs::remove_file(disk.path().join("filler")).expect("removing the filler");
    let (resumed_after, store) =
        backlog_written(&api, &mut agent, &opened_while_full, Instant::now(), true);
    let (status, _) = attack.wait(Duration::from_secs(30));
    assert!(status.success());
    println!(
        "space freed: writing again {} later; all {} alerts of the outage stored; store {store}",
        ms(resumed_after),
        opened_while_full.len(),
    );
}

/// An ext4 filesystem in an image file, loop-mounted with
/// `errors=remount-ro` as a data disk would be. On drop it is unmounted,
/// its loop device detached and the image deleted, even when the test
/// fails.
///
/// It is mounted under a shared bind mount of its own: `ip netns exec`
/// gives the agent (and every tool) a copy of the mount table, a slave of
/// this one once shared, so that unmounting and mounting the disk again
/// here happens in the agent's copy too. With the private mounts of a
/// container, the agent's copy would keep the old, failed filesystem.
struct Ext4Disk {
    /// Holds the image and the shared directory.
    dir: tempfile::TempDir,
    device: Option<String>,
    shared: bool,
    mounted: bool,
    /// Frozen with `fsfreeze`: must be thawed before it can be unmounted.
    frozen: bool,
}

impl Ext4Disk {
    /// Makes and mounts a filesystem of `bytes` (a sparse image).
    fn mount(bytes: u64) -> Self {
        let dir = tempfile::tempdir().expect("temp dir for the disk");
        let image = dir.path().join("disk.img");
        fs::File::create(&image)
            .and_then(|f| f.set_len(bytes))
            .expect("creating the disk image");
        let image = image.to_str().expect("UTF-8 path").to_owned();
        support::netns::run("mkfs.ext4", &["-q", "-F", &image]);
        // From here on, Drop undoes each step that was done.
        let mut disk = Ext4Disk {
            dir,
            device: None,
            shared: false,
            mounted: false,
            frozen: false,
        };
        let shared = disk.shared_dir();
        let shared = shared.to_str().expect("UTF-8 path");
        fs::create_dir_all(disk.path()).expect("mount point");
        support::netns::run("mount", &["--bind", shared, shared]);
        disk.shared = true;
        support::netns::run("mount", &["--make-shared", shared]);
        let out = support::netns::run("losetup", &["--find", "--show", &image]);
        disk.device = Some(String::from_utf8_lossy(&out.stdout).trim().to_owned());
        disk.mount_again();
        disk
    }

    fn shared_dir(&self) -> PathBuf {
        self.dir.path().join("shared")
    }

    /// Where the filesystem is mounted.
    fn path(&self) -> PathBuf {
        self.shared_dir().join("mnt")
    }

    fn device(&self) -> &str {
        self.device.as_deref().expect("a loop device")
    }

    fn mount_again(&mut self) {
        let mount_point = self.path();
        support::netns::run(
            "mount",
            &[
                "-t",
                "ext4",
                "-o",
                "errors=remount-ro",
                self.device(),
                mount_point.to_str().expect("UTF-8 path"),
            ],
        );
        self.mounted = true;
    }

    /// Fails the way a disk error does: ext4 records an error and, as
    /// `errors=remount-ro` asks, stops all writes at once, to files
    /// already open for writing too (which `mount -o remount,ro` refuses
    /// with EBUSY).
    fn fail(&self) {
        let name = self.device().trim_start_matches("/dev/");
        let knob = format!("/sys/fs/ext4/{name}/trigger_fs_error");
        fs::write(&knob, "1\n").unwrap_or_else(|e| panic!("writing {knob}: {e}"));
    }

    /// Hangs the disk as a stalled device does: `fsfreeze` suspends every
    /// write to the filesystem (a write or fsync waits, it does not fail)
    /// until [`Ext4Disk::thaw`].
    fn freeze(&mut self) {
        support::netns::run(
            "fsfreeze",
            &["-f", self.path().to_str().expect("UTF-8 path")],
        );
        self.frozen = true;
    }

    fn thaw(&mut self) {
        support::netns::run(
            "fsfreeze",
            &["-u", self.path().to_str().expect("UTF-8 path")],
        );
        self.frozen = false;
    }

    /// Makes the filesystem writable again, as after a real disk error:
    /// unmount, `e2fsck`, mount. `mount -o remount,rw` is not enough:
    /// ext4 aborted its journal on the error and keeps refusing writes
    /// until it is unmounted (on Linux 6.18 the remount succeeds, but the
    /// mount stays `emergency_ro` and every write is still EROFS).
    /// Unmounting works while the agent runs because the agent no longer
    /// holds the file: its retries closed the failed handle and cannot
    /// reopen it for writing.
    fn repair(&mut self) {
        let mount_point = self.path();
        support::netns::run("umount", &[mount_point.to_str().expect("UTF-8 path")]);
        self.mounted = false;
        // 0: clean, 1: errors corrected; anything else is a real problem
        // (8 with "in use": a mount left somewhere, see the type's doc).
        let fsck = Command::new("e2fsck")
            .args(["-f", "-y", self.device()])
            .output()
            .expect("running e2fsck");
        assert!(
            matches!(fsck.status.code(), Some(0 | 1)),
            "e2fsck {} ({}): {}{}",
            self.device(),
            fsck.status,
            String::from_utf8_lossy(&fsck.stdout),
            String::from_utf8_lossy(&fsck.stderr)
        );
        self.mount_again();
    }
}

impl Drop for Ext4Disk {
    fn drop(&mut self) {
        if self.frozen {
            let _ = Command::new("fsfreeze").arg("-u").arg(self.path()).status();
        }
        if self.mounted {
            unmount(&self.path());
        }
        if self.shared {
            unmount(&self.shared_dir());
        }
        if let Some(device) = &self.device {
            // A device still in use is detached when its last user goes.
            let _ = Command::new("losetup").args(["-d", device]).status();
        }
    }
}

#[test]
fn a_read_only_store_disk_loses_no_alert_and_writing_resumes_when_it_is_writable() {
    if !support::privileged_with(&["python3", "mkfs.ext4", "curl"]) {
        return;
    }
    let mut lab = DiskLab::start();
    let mut attack = lab.storm();
    lab.disk.fail();
    let failing_after = failure_reported(&lab.api, "Read-only file system", Instant::now());

    // Detection goes on: the live feed announces new incidents.
    let live = lab.opened_live("while the disk is read-only");
    let outage = outage_reported(
        &lab.api,
        &lab.agent,
        Duration::from_secs(5),
        StoredAlerts::Unavailable,
    );
    println!(
        "disk read-only: failure reported {} after, {} failed writes, {} alerts waiting, {} \
         opened on the live feed in 3 s; slowest API answer {}",
        ms(failing_after),
        outage.store["failed_writes"],
        outage.store["backlog"],
        live.len(),
        ms(outage.slowest)
    );

    // Writable again: what the feed served is written, and every alert the
    // log says was opened, before and during the outage.
    lab.disk.repair();
    let (resumed_after, store) =
        backlog_written(&lab.api, &mut lab.agent, &live, Instant::now(), true);
    let logged = lab.all_stored(&mut attack);
    println!(
        "unmounted, checked and mounted again: writing again {} later; the {} alerts of the \
         live feed and all {} logged openings stored; store {store}",
        ms(resumed_after),
        live.len(),
        logged
    );
}

/// A store whose disk stops answering (frozen, as a stalled device or a
/// hung network volume): the detection loop never waits for it, and what
/// queued meanwhile is written once the disk answers again.
#[test]
fn a_hung_store_disk_holds_up_no_detection_and_every_alert_is_written_when_it_resumes() {
    if !support::privileged_with(&["python3", "mkfs.ext4", "fsfreeze", "curl"]) {
        return;
    }
    let mut lab = DiskLab::start();
    let mut attack = lab.storm();
    lab.disk.freeze();
    // The first write after the freeze hangs; everything after it queues.
    let updated = |api: &support::api::Api| api.get("/api/stats")["updated_at"].clone();
    let before = updated(&lab.api);
    let live = lab.opened_live("while the disk hangs");
    let asked = Instant::now();
    let after = updated(&lab.api);
    let answered = asked.elapsed();
    assert_ne!(
        before, after,
        "the live view stopped being refreshed while the disk hangs"
    );
    let store = lab.api.get("/api/stats")["store"].clone();
    assert_eq!(
        store["failed_writes"], 0,
        "a hung write is not a failed one: {store}"
    );
    assert!(
        store["stalled_since"].is_string(),
        "the hung write is reported: {store}"
    );
    println!(
        "disk frozen: {} alerts opened on the live feed in 3 s, /api/stats answered in {}, store {store}",
        live.len(),
        ms(answered)
    );

    lab.disk.thaw();
    let (written_after, store) =
        backlog_written(&lab.api, &mut lab.agent, &live, Instant::now(), false);
    assert!(store["stalled_since"].is_null(), "{store}");
    let logged = lab.all_stored(&mut attack);
    println!(
        "thawed: everything written {} later; the {} alerts of the live feed and all {} \
         logged openings stored; store {store}",
        ms(written_after),
        live.len(),
        logged
    );
}

/// An agent whose store is on an ext4 disk of its own, with 50 alerts
/// stored. Fields drop in order: the agent before the disk, the disk
/// before the namespaces.
struct DiskLab {
    agent: Agent,
    api: support::api::Api,
    _dir: tempfile::TempDir,
    disk: Ext4Disk,
    net: Topology,
}

impl DiskLab {
    fn start() -> Self {
        let net = Topology::new();
        let disk = Ext4Disk::mount(64 << 20);
        let dir = tempfile::tempdir().expect("temp dir");
        // A directory of the disk's own: while the disk is unmounted for a
        // repair, the store's path leads nowhere rather than into the
        // mount point underneath.
        let db_dir = disk.path().join("nta");
        fs::create_dir(&db_dir).expect("store directory");
        let agent = storm_agent(&net, &db_dir.join("nta.redb"), dir.path());
        let api = support::api::Api::new(&net.victim);
        alerts_stored_before_the_fault(&net, &api);
        Self {
            agent,
            api,
            _dir: dir,
            disk,
            net,
        }
    }

    /// The storm the disk tests run while the disk fails: 3000 sources
    /// from source 1000 on, 150 a second, for up to 20 s.
    fn storm(&self) -> Spawned {
        storm(&self.net, 1000, 3000, 150, Duration::from_secs(20))
    }

    /// The incidents the live feed announces in 3 s, which must be some:
    /// detection goes on `when` (while the disk fails).
    #[track_caller]
    fn opened_live(&self, when: &str) -> BTreeSet<u64> {
        let live = opened_live(&self.net, Duration::from_secs(3));
        assert!(
            !live.is_empty(),
            "no alert on the live feed {when}:\n{}",
            alert_log(&self.agent)
        );
        live
    }

    /// Once the disk is back: checks that every alert the log says was
    /// opened is stored and that `attack` ran to its end; returns how many
    /// were logged.
    fn all_stored(&self, attack: &mut Spawned) -> usize {
        let logged = logged_openings_stored(&self.api, &self.agent);
        let (status, _) = attack.wait(Duration::from_secs(30));
        assert!(status.success());
        logged
    }
}

/// Checks that every alert the log says was opened is stored; returns
/// how many.
fn logged_openings_stored(api: &support::api::Api, agent: &Agent) -> usize {
    let logged = logged_openings(&agent.log());
    for id in &logged {
        let alert = api
            .try_get(&format!("/api/alerts/{id}"))
            .unwrap_or_else(|e| panic!("alert {id}: {e}"));
        assert_eq!(alert.status, 200, "alert {id}: {}", alert.body);
    }
    logged.len()
}

/// Alert ids that `/api/stream` announces as opened during `period`.
fn opened_live(net: &Topology, period: Duration) -> BTreeSet<u64> {
    let secs = period.as_secs().to_string();
    let url = format!("http://{LISTEN}/api/stream");
    let out = net.exec(
        &net.victim,
        period + Duration::from_secs(5),
        &["curl", "-sN", "--max-time", &secs, &url],
    );
    // 28: the time was up, as it always is for a stream that never ends.
    assert_eq!(
        out.status.code(),
        Some(28),
        "curl {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut opened = BTreeSet::new();
    let mut event = "";
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("event:") {
            event = name.trim();
        } else if let Some(data) = line.strip_prefix("data:")
            && event == "alert"
        {
            let message: Value = serde_json::from_str(data.trim()).unwrap_or_default();
            if message["event"] == "opened"
                && let Some(id) = message["alert"]["id"].as_u64()
            {
                opened.insert(id);
            }
        } else if line.is_empty() {
            event = "";
        }
    }
    opened
}

/// The agent on the victim's veth with the storm config (written in
/// `dir`) and its store at `db`.
fn storm_agent(net: &Topology, db: &Path, dir: &Path) -> Agent {
    let config = config_file(dir, STORM_CONFIG);
    start_agent(
        net,
        &[
            "--db",
            db.to_str().expect("UTF-8 path"),
            "--config",
            config.to_str().expect("UTF-8 path"),
        ],
    )
}

/// The state before a fault: a short storm's 50 alerts stored, and no
/// failed write.
fn alerts_stored_before_the_fault(net: &Topology, api: &support::api::Api) {
    let (status, _) = storm(net, 0, 50, 100, Duration::from_secs(5)).wait(Duration::from_secs(15));
    assert!(status.success());
    let stats = wait_for_stats(api, "50 alerts stored", Duration::from_secs(10), |s| {
        s["store"]["ok"] == true
            && api.get("/api/alerts?limit=1000")["alerts"]
                .as_array()
                .map_or(0, Vec::len)
                >= 50
    });
    assert_eq!(stats["store"]["failed_writes"], 0, "{}", stats["store"]);
}

/// Waits until `/api/stats` reports the store failing because of `cause`;
/// returns how long after `since`.
fn failure_reported(api: &support::api::Api, cause: &str, since: Instant) -> Duration {
    let stats = wait_for_stats(api, "reporting the failure", Duration::from_secs(20), |s| {
        s["store"]["ok"] == false
    });
    let after = since.elapsed();
    let store = &stats["store"];
    assert!(
        store["error"].as_str().unwrap_or_default().contains(cause),
        "expected `{cause}`: {store}"
    );
    assert!(store["since"].is_string(), "{store}");
    after
}

/// What a user saw while the store could not be written.
struct Outage {
    /// `store` of `/api/stats` at the end.
    store: Value,
    /// The slowest API answer.
    slowest: Duration,
}

/// What `/api/alerts` answers while the store cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoredAlerts {
    /// The stored alerts, as usual: the agent reopened the file after the
    /// failed write and reads it (a full disk).
    Served,
    /// 503, naming the store: the agent cannot reopen the file for writing
    /// (a read-only filesystem) and holds no handle on it, so none to read
    /// with either. Holding one open read-only would keep the filesystem
    /// busy, and it could not be unmounted and repaired while the agent
    /// runs (see [`Ext4Disk::repair`]).
    Unavailable,
}

/// For `period`, while the store cannot be written: the live views
/// (`/api/stats`, `/metrics`) answer, `/api/alerts` as `stored` says, the
/// store stays failing with retries, a backlog and nothing dropped, the
/// failures show in `/metrics`, and the log says it once.
fn outage_reported(
    api: &support::api::Api,
    agent: &Agent,
    period: Duration,
    stored: StoredAlerts,
) -> Outage {
    let mut slowest = Duration::ZERO;
    let watch = Instant::now();
    while watch.elapsed() < period {
        let asked = Instant::now();
        api.get("/api/stats");
        slowest = slowest.max(asked.elapsed());
        let asked = Instant::now();
        api.get_text("/metrics");
        slowest = slowest.max(asked.elapsed());
        for path in ["/api/alerts?limit=100", "/api/alerts?kind=volumetric"] {
            let asked = Instant::now();
            let answer = api.try_get(path).unwrap_or_else(|e| panic!("{path}: {e}"));
            slowest = slowest.max(asked.elapsed());
            let expected = match stored {
                StoredAlerts::Served => 200,
                StoredAlerts::Unavailable => 503,
            };
            assert_eq!(
                answer.status, expected,
                "GET {path} while the store cannot be written: {}",
                answer.body
            );
            if stored == StoredAlerts::Unavailable {
                let error = answer.body["error"].as_str().unwrap_or_default();
                assert!(
                    error.starts_with("store ") && error.contains("/api/stream"),
                    "{}",
                    answer.body
                );
            }
        }
        thread::sleep(Duration::from_millis(100));
    }
    let store = api.get("/api/stats")["store"].clone();
    assert_eq!(store["ok"], false, "{store}");
    assert!(
        store["failed_writes"].as_u64().unwrap_or(0) >= 2,
        "retried: {store}"
    );
    assert!(
        store["backlog"].as_u64().unwrap_or(0) > 0,
        "alerts wait: {store}"
    );
    assert_eq!(store["dropped"], 0, "{store}");
    let metrics = api.get_text("/metrics");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("nta_store_write_failures_total ") && !l.ends_with(" 0")),
        "{metrics}"
    );
    let log = agent.log();
    assert!(
        !log.contains("API request failed in the store"),
        "each refused read logged again:\n{}",
        alert_log(agent)
    );
    let reports = log.matches("Failed to write to the store").count();
    assert_eq!(
        reports,
        1,
        "once per run of failures:\n{}",
        alert_log(agent)
    );
    Outage { store, slowest }
}

/// Once the store can be written again (from `since`): the backlog is
/// written, the log says so if writes had `failed` (a hung write is not a
/// failure), and each of `waiting` can be read. Returns how long it took
/// and the final `store` of `/api/stats`.
fn backlog_written(
    api: &support::api::Api,
    agent: &mut Agent,
    waiting: &BTreeSet<u64>,
    since: Instant,
    failed: bool,
) -> (Duration, Value) {
    let stats = wait_for_stats(api, "writing again", Duration::from_secs(10), |s| {
        s["store"]["ok"] == true && s["store"]["backlog"] == 0
    });
    let after = since.elapsed();
    if failed {
        agent.wait_for_log("Store writable again", Duration::from_secs(5));
    }
    for id in waiting {
        let alert = api
            .try_get(&format!("/api/alerts/{id}"))
            .unwrap_or_else(|e| panic!("alert {id}: {e}"));
        assert_eq!(
            alert.status, 200,
            "alert {id} opened during the outage: {}",
            alert.body
        );
    }
    (after, stats["store"].clone())
}

/// GETs `/api/stats` and `/api/alerts` every 100 ms for `period`; each
/// must answer 200 within a second. Returns the slowest and the count.
fn api_stays_responsive(api: &support::api::Api, period: Duration) -> (Duration, usize) {
    let start = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut requests = 0;
    while start.elapsed() < period {
        for path in ["/api/stats", "/api/alerts?limit=100"] {
            let asked = Instant::now();
            let answer = api
                .try_get(path)
                .unwrap_or_else(|e| panic!("{path} under the flood: {e}"));
            let took = asked.elapsed();
            assert_eq!(answer.status, 200, "{path}: {}", answer.body);
            assert!(
                took < Duration::from_secs(1),
                "{path} took {} under the flood",
                ms(took)
            );
            slowest = slowest.max(took);
            requests += 1;
        }
        thread::sleep(Duration::from_millis(100));
    }
    (slowest, requests)
}

#[test]
fn a_payload_flood_overruns_the_sample_ring_and_the_api_stays_responsive() {
    let Some(net) = Topology::privileged(&["hping3"]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    // No rate cap to speak of: every payload to port 80 is copied, far
    // more than the agent's queue holds.
    let config = config_file(dir.path(), "[sampling]\nmax_per_sec = 10000000\n");
    let agent = start_agent(&net, &["--config", config.to_str().expect("UTF-8 path")]);
    let api = support::api::Api::new(&net.victim);
    let before = api.get("/api/stats");

    let flood_secs = 9;
    let args = [
        "hping3",
        "-A",
        "-p",
        "80",
        "-d",
        "1200",
        "--flood",
        VICTIM_ADDR,
    ];
    let mut floods: Vec<Spawned> = (0..2)
        .map(|_| Spawned::start(&net.attacker, Duration::from_secs(flood_secs), &args))
        .collect();
    let (slowest, requests) = api_stays_responsive(&api, Duration::from_secs(5));
    let first = api.get("/api/stats");
    let queue_lost = first["samples_lost"].as_u64().unwrap_or(0);
    let ring_first = first["totals"]["samples_lost"].as_u64().unwrap_or(0);

    // The agent reads the ring faster than two hping3s fill it, so its own
    // queue overflows, not the ring. A stalled agent (here SIGSTOP, for
    // half a second; the ring holds ~75 ms of this flood) lets the ring
    // overrun, which the kernel counts.
    let pid = agent.pid().expect("agent running") as i32;
    // SAFETY: signals to the agent this test started, still its child.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    thread::sleep(Duration::from_millis(500));
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    let (slowest_after, requests_after) = api_stays_responsive(&api, Duration::from_secs(2));

    for flood in &mut floods {
        let (status, out) = flood.wait(Duration::from_secs(10));
        assert_eq!(
            status.code(),
            Some(124),
            "hping3 ended early ({status}):\n{out}"
        );
    }
    thread::sleep(Duration::from_millis(1500));

    let stats = api.get("/api/stats");
    let totals = &stats["totals"];
    let lost = stats["samples_lost"].as_u64().unwrap_or(0);
    let ring_lost = totals["samples_lost"].as_u64().unwrap_or(0);
    let context = || format!("totals {totals}; agent:\n{}", alert_log(&agent));
    assert!(
        queue_lost > 0,
        "no samples lost under the flood; {}",
        context()
    );
    assert!(
        ring_lost > ring_first,
        "the ring did not overrun; {}",
        context()
    );
    assert!(lost >= ring_lost, "samples_lost {lost}; {}", context());
    println!(
        "2 × hping3 -A -d 1200 --flood to port 80 for {flood_secs} s: {} payload packets, {} \
         samples taken; {queue_lost} lost in the first 5 s ({ring_first} of them in the kernel \
         ring), then {} lost in the ring during a 500 ms SIGSTOP of the agent; \
         {lost} lost in all, {} capped; API: {requests} requests under the flood, slowest \
         {}, {requests_after} after the stall, slowest {}",
        totals["tcp_packets"].as_u64().unwrap_or(0)
            - before["totals"]["tcp_packets"].as_u64().unwrap_or(0),
        totals["samples_taken"],
        ring_lost - ring_first,
        totals["samples_capped"],
        ms(slowest),
        ms(slowest_after)
    );
}
