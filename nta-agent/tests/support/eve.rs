//! Checking EVE output against Suricata's published schema
//! (`../shared/eve/schema.json`, GPL-2.0 test data read in place) with
//! Python's jsonschema.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::Value;

/// Suricata's EVE schema, shipped beside the project as test data.
pub fn schema() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/eve/schema.json")
}

/// Whether this test can check EVE output (python3 with jsonschema, and
/// the schema); like the other prerequisites, a failure under CI.
pub fn can_validate() -> bool {
    assert!(schema().is_file(), "{} is missing", schema().display());
    super::have_tool("python3") && super::python_module("jsonschema")
}

/// Validates every line of `eve` against [`schema`]; panics with the
/// first line that does not, and why. Returns the events.
#[track_caller]
pub fn validated(eve: &Path) -> Vec<Value> {
    let script = "
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
validator = jsonschema.Draft202012Validator(schema)
for n, line in enumerate(open(sys.argv[2]), 1):
    errors = sorted(validator.iter_errors(json.loads(line)), key=str)
    if errors:
        sys.exit(f'line {n}: {errors[0].message} at {list(errors[0].absolute_path)}: {line}')
";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(schema())
        .arg(eve)
        .output()
        .expect("running python3");
    assert!(
        out.status.success(),
        "EVE output does not validate against Suricata's schema: {}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    std::fs::read_to_string(eve)
        .expect("reading the EVE output")
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object a line"))
        .collect()
}

/// The alert events of `events` with signature id `sid`.
pub fn alerts_with_sid(events: &[Value], sid: u64) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| e["event_type"] == "alert" && e["alert"]["signature_id"] == sid)
        .collect()
}
