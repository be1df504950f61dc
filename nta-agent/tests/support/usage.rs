//! What a process costs, from /proc (CPU seconds, resident memory), and
//! what an attached XDP program costs, from the kernel's BPF statistics:
//! the figures the flood and peer benchmarks hold side by side.

use std::{collections::BTreeMap, fs, os::fd::OwnedFd, time::Duration};

use serde_json::Value;

use super::netns::run;

/// CPU seconds the process has used so far, user + system, all threads.
pub fn cpu_secs(pid: u32) -> f64 {
    let path = format!("/proc/{pid}/stat");
    let stat = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    // Fields after the command name, which is in parentheses and may hold
    // spaces: utime and stime are the 12th and 13th after it.
    let rest = stat
        .rfind(')')
        .and_then(|end| stat.get(end + 2..))
        .unwrap_or_else(|| panic!("{path}: no command name in {stat}"));
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> f64 {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .unwrap_or_else(|| panic!("{path}: no field {i} after the name in {stat}"))
    };
    // SAFETY: sysconf has no preconditions.
    let ticks_per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (field(11) + field(12)) / ticks_per_sec
}

/// The CPU time each thread of a process has run so far, to the
/// nanosecond (the first field of `/proc/PID/task/TID/schedstat`): for
/// windows too short for [`cpu_secs`]'s clock ticks (10 ms).
pub struct ThreadCpu(BTreeMap<u32, u64>);

impl ThreadCpu {
    pub fn of(pid: u32) -> Self {
        let dir = format!("/proc/{pid}/task");
        let tasks = fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}"));
        let times = tasks
            .filter_map(|task| {
                let tid: u32 = task.ok()?.file_name().to_str()?.parse().ok()?;
                // A thread may end between the listing and the read.
                let stat = fs::read_to_string(format!("{dir}/{tid}/schedstat")).ok()?;
                Some((tid, stat.split_whitespace().next()?.parse().ok()?))
            })
            .collect();
        ThreadCpu(times)
    }

    /// CPU seconds run between `earlier` and this snapshot by the threads
    /// alive now: a thread that ended in between takes its share with it.
    pub fn secs_since(&self, earlier: &ThreadCpu) -> f64 {
        let ns: u64 = self
            .0
            .iter()
            .map(|(tid, now)| now.saturating_sub(earlier.0.get(tid).copied().unwrap_or(0)))
            .sum();
        ns as f64 / 1e9
    }
}

/// VmRSS and VmHWM (peak resident memory) of the process, in MiB, less
/// the BPF maps it has mapped (see [`mapped_maps_mib`]): those are the
/// kernel's memory, counted with its maps, and a mapping of one is
/// resident whole from the moment it is made, so the peak less them is
/// the process's own.
pub fn memory_mib(pid: u32) -> (f64, f64) {
    let path = format!("/proc/{pid}/status");
    let status = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map(|kib| kib / 1024.0)
            .unwrap_or_else(|| panic!("{path}: no {name} in\n{status}"))
    };
    let mapped = mapped_maps_mib(pid);
    (field("VmRSS:") - mapped, field("VmHWM:") - mapped)
}

/// Resident memory of the BPF maps the process has mapped (the tables it
/// reads in place, the rings), in MiB: the `Rss` of its
/// `anon_inode:bpf-map` mappings.
pub fn mapped_maps_mib(pid: u32) -> f64 {
    let path = format!("/proc/{pid}/smaps");
    let smaps = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut in_map = false;
    let mut kib = 0.0;
    for line in smaps.lines() {
        let Some(first) = line.split_whitespace().next() else {
            continue;
        };
        if !first.ends_with(':') {
            // A mapping's header: address range, permissions, offset,
            // device, inode, and a name for most.
            in_map = line.ends_with("anon_inode:bpf-map");
        } else if first == "Rss:" && in_map {
            kib += line
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or_else(|| panic!("{path}: {line}"));
        }
    }
    kib / 1024.0
}

/// Kernel BPF statistics (each program's run time and count) on while the
/// guard lives, through `BPF_ENABLE_STATS`: the kernel keeps them on while
/// any such descriptor is open, so two guards that overlap, or a test
/// killed before its guard drops, leave them as they were. A guard that
/// wrote the `kernel.bpf_stats_enabled` sysctl and restored what it had
/// read would leave them on after two overlapping runs, and every XDP
/// figure taken after would pay the statistics' two clock reads a run
/// (83 → 133 ns for a known source's SYN on the machine of BENCHMARKS.md).
pub struct BpfStats(#[expect(dead_code, reason = "held: closing it ends the statistics")] OwnedFd);

impl BpfStats {
    pub fn on() -> Self {
        BpfStats(
            aya::sys::enable_stats(aya::sys::Stats::RunTime)
                .expect("enabling BPF statistics (BPF_ENABLE_STATS)"),
        )
    }
}

/// The id of the XDP program attached to `dev` in `ns`, per `ip -d link`.
pub fn attached_xdp_id(ns: &str, dev: &str) -> u64 {
    let out = run("ip", &["-j", "-d", "-n", ns, "link", "show", "dev", dev]);
    let links: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("`ip -j -d link show dev {dev}` in {ns}: {e}"));
    links[0]["xdp"]["prog"]["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no XDP program on {dev} in {ns}: {links}"))
}

/// `bpftool prog show id ID`, as JSON.
fn prog_show(id: u64) -> Value {
    let out = run("bpftool", &["-j", "prog", "show", "id", &id.to_string()]);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("`bpftool -j prog show id {id}`: {e}"))
}

/// How long the program with this id has run (counted while [`BpfStats`]
/// are on), and how many times.
pub fn prog_run_time(id: u64) -> (Duration, u64) {
    let prog = prog_show(id);
    (
        Duration::from_nanos(prog["run_time_ns"].as_u64().unwrap_or(0)),
        prog["run_cnt"].as_u64().unwrap_or(0),
    )
}

/// The ids of the maps the program with this id uses.
pub fn prog_map_ids(id: u64) -> Vec<u64> {
    prog_show(id)["map_ids"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_u64)
        .collect()
}

/// Kernel memory of these maps (`bytes_memlock`), in MiB.
pub fn map_memory_mib(ids: &[u64]) -> f64 {
    let bytes: u64 = ids
        .iter()
        .filter_map(|id| {
            let out = std::process::Command::new("bpftool")
                .args(["-j", "map", "show", "id", &id.to_string()])
                .output()
                .ok()?;
            serde_json::from_slice::<Value>(&out.stdout).ok()?["bytes_memlock"].as_u64()
        })
        .sum();
    bytes as f64 / 1024.0 / 1024.0
}
