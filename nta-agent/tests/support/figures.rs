//! Benchmark figures: each benchmark prints its figures and, when
//! `cargo xtask bench` runs it (`NTA_BENCH_OUT` set), appends them as JSON
//! lines for the table and the JSON report. Shared by the integration
//! tests (`support::figures`) and the library's own benchmarks (included
//! by path), so that both write the same format.

use std::{fs::OpenOptions, io::Write as _};

/// What a figure is held against.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    AtMost(f64),
    AtLeast(f64),
    /// Must equal (losses: sent vs counted).
    Exactly(f64),
}

impl Target {
    fn met(self, value: f64) -> bool {
        match self {
            Target::AtMost(t) => value <= t,
            Target::AtLeast(t) => value >= t,
            Target::Exactly(t) => value == t,
        }
    }

    fn describe(self) -> String {
        match self {
            Target::AtMost(t) => format!("<= {t}"),
            Target::AtLeast(t) => format!(">= {t}"),
            Target::Exactly(t) => format!("= {t}"),
        }
    }
}

/// Prints one figure and records it for `cargo xtask bench`.
pub fn record(group: &str, name: &str, value: f64, unit: &str, target: Option<Target>, note: &str) {
    let verdict = match target {
        Some(t) if t.met(value) => format!(" (target {} {unit}: met)", t.describe()),
        Some(t) => format!(" (target {} {unit}: MISSED)", t.describe()),
        None => String::new(),
    };
    println!(
        "figure: {group} / {name}: {value:.3} {unit}{verdict}{}",
        if note.is_empty() {
            String::new()
        } else {
            format!(" — {note}")
        }
    );
    let Some(path) = std::env::var_os("NTA_BENCH_OUT") else {
        return;
    };
    let line = serde_json::json!({
        "group": group,
        "name": name,
        "value": value,
        "unit": unit,
        "target": target.map(Target::describe),
        "met": target.map(|t| t.met(value)),
        "note": note,
    });
    let written = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut file| writeln!(file, "{line}"));
    if let Err(error) = written {
        eprintln!(
            "cannot record the figure in {}: {error}",
            path.to_string_lossy()
        );
    }
}
