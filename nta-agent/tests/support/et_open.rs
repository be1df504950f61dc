//! The Emerging Threats Open ruleset beside the project
//! (`../shared/rulesets/`, BSD/GPL), read where it lies, never copied.

use std::{
    fs,
    path::{Path, PathBuf},
};

/// The ruleset's folder, or `None` (failing under CI) when it is missing.
pub fn ruleset() -> Option<PathBuf> {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/rulesets/et-open-2024-04-21");
    if dir.is_dir() {
        Some(dir)
    } else {
        super::missing(
            &format!("the ET Open ruleset is not at {}", dir.display()),
            "it sits beside the project in ../shared/rulesets",
        );
        None
    }
}

/// Every `.rules` file of the set, in name order.
pub fn rule_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .expect("reading the ruleset")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rules"))
        .collect();
    files.sort();
    files
}
