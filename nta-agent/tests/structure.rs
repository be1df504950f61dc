//! The agent's shape, checked on its source text: dependencies between its
//! modules point one way, in the order `lib.rs` lists them (packet sources
//! → detection → store, notify, mitigation → API → run), and no function
//! grows past what a reader takes in at once.

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
};

/// Longest function, in lines, signature and closing brace included.
const MAX_FUNCTION_LINES: usize = 100;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file below `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The crate's top-level modules that `text` names after `crate::`, in
/// paths and in `use crate::{a::b, c}` groups alike.
fn crate_modules(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        let Some(group) = rest.strip_prefix('{') else {
            found.extend(leading_ident(rest));
            continue;
        };
        let mut depth = 1;
        let mut item_start = 0;
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' | ',' if depth == 1 => {
                    found.extend(leading_ident(&group[item_start..i]));
                    item_start = i + 1;
                    if c == '}' {
                        break;
                    }
                }
                '}' => depth -= 1,
                _ => {}
            }
        }
    }
    found
}

fn leading_ident(text: &str) -> Option<String> {
    let ident: String = text
        .trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!ident.is_empty()).then_some(ident)
}

/// The top-level module a file belongs to: `store` for `src/store/x.rs`
/// and `src/store.rs`.
fn module_of(file: &Path) -> String {
    let relative = file.strip_prefix(src()).expect("a file under src");
    let first = relative.components().next().expect("a path");
    first
        .as_os_str()
        .to_string_lossy()
        .trim_end_matches(".rs")
        .to_owned()
}

/// The modules in the order of `lib.rs`'s table of contents (`//! - [`x`]`),
/// from the packets up.
fn layers() -> Vec<String> {
    let lib = fs::read_to_string(src().join("lib.rs")).expect("lib.rs");
    lib.lines()
        .filter_map(|l| l.strip_prefix("//! - [`"))
        .filter_map(|l| l.split_once('`').map(|(name, _)| name.to_owned()))
        .collect()
}

#[test]
fn every_module_is_in_the_table_of_contents() {
    let layers = layers();
    let lib = fs::read_to_string(src().join("lib.rs")).expect("lib.rs");
    let declared: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .filter_map(|l| l.strip_suffix(';'))
        .collect();
    assert!(!declared.is_empty(), "no `pub mod` in lib.rs");
    for module in &declared {
        assert!(
            layers.iter().any(|l| l == module),
            "lib.rs declares `{module}` but its table of contents does not list it"
        );
    }
    for module in &layers {
        assert!(
            declared.contains(&module.as_str()),
            "lib.rs lists `{module}`, which it does not declare"
        );
    }
}

#[test]
fn dependencies_between_modules_point_one_way() {
    let layers = layers();
    let rank = |module: &str| layers.iter().position(|l| l == module);
    let mut breaches = Vec::new();
    for file in rust_files(&src()) {
        let module = module_of(&file);
        let Some(own) = rank(&module) else {
            continue;
        };
        let text = fs::read_to_string(&file).expect("a readable source file");
        // Code only: a doc comment may name any item.
        let code: Vec<String> = text.lines().map(code_of).collect();
        for used in crate_modules(&code.join("\n")) {
            if rank(&used).is_some_and(|theirs| theirs > own) {
                breaches.push(format!(
                    "{} ({module}) uses crate::{used}, listed below it in lib.rs",
                    file.display()
                ));
            }
        }
    }
    assert!(
        breaches.is_empty(),
        "dependencies that climb back up:\n{}",
        breaches.join("\n")
    );
}

#[test]
fn the_store_keeps_its_health_bookkeeping_private() {
    let store = fs::read_to_string(src().join("store/mod.rs")).expect("store/mod.rs");
    assert!(
        store.lines().any(|l| l.trim() == "mod health;"),
        "store::health is to be private"
    );
    for file in rust_files(&src()) {
        if module_of(&file) == "store" {
            continue;
        }
        let text = fs::read_to_string(&file).expect("a readable source file");
        assert!(
            !text.contains("store::health") && !text.contains("health::{"),
            "{} reaches into store::health",
            file.display()
        );
    }
}

/// Functions longer than [`MAX_FUNCTION_LINES`] as `file:line name (lines)`.
fn long_functions(file: &Path) -> Vec<String> {
    let text = fs::read_to_string(file).expect("a readable source file");
    let lines: Vec<&str> = text.lines().collect();
    let mut long = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        let Some(name) = function_name(line) else {
            continue;
        };
        let mut depth = 0i64;
        let mut opened = false;
        for (end, body_line) in lines.iter().enumerate().skip(start) {
            for c in code_of(body_line).chars() {
                match c {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            if opened && depth <= 0 {
                let length = end - start + 1;
                if length > MAX_FUNCTION_LINES {
                    long.push(format!(
                        "{}:{} {name} ({length} lines)",
                        file.display(),
                        start + 1
                    ));
                }
                break;
            }
            if !opened && body_line.trim_end().ends_with(';') {
                break;
            }
        }
    }
    long
}

/// The name of the function `line` starts, if it starts one.
fn function_name(line: &str) -> Option<&str> {
    let mut words = line.split_whitespace().peekable();
    while let Some(word) = words.next() {
        match word {
            "fn" => {
                let name = words.next()?;
                return Some(name.split(['(', '<']).next().unwrap_or(name));
            }
            "pub" | "async" | "unsafe" | "const" | "extern" => {}
            w if w.starts_with("pub(") => {}
            _ => return None,
        }
    }
    None
}

/// `line` without its comment, string and char literals (their braces
/// are not code).
fn code_of(line: &str) -> String {
    let mut code = String::new();
    let mut chars = line.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '/' if chars.peek() == Some(&'/') => break,
            '\'' => {
                // A char literal ('{', '\''), or a lifetime ('a).
                let rest: String = chars.clone().take(3).collect();
                if rest.starts_with('\\') {
                    chars.nth(2);
                } else if rest.chars().nth(1) == Some('\'') {
                    chars.nth(1);
                }
            }
            _ => code.push(c),
        }
    }
    code
}

#[test]
fn no_function_is_longer_than_a_hundred_lines() {
    let long: Vec<String> = rust_files(&src())
        .iter()
        .flat_map(|f| long_functions(f))
        .collect();
    assert!(
        long.is_empty(),
        "functions over {MAX_FUNCTION_LINES} lines (split them into steps named for what \
         they do):\n{}",
        long.join("\n")
    );
}

#[test]
fn the_checks_see_what_they_look_for() {
    let text = "use crate::{\n    alert::Alert,\n    mitigate::{a, b},\n    store,\n};\n\
                let x = crate::api::routes(s);";
    let found: Vec<String> = crate_modules(text).into_iter().collect();
    assert_eq!(found, ["alert", "api", "mitigate", "store"]);

    assert_eq!(
        function_name("    pub(crate) async fn run(args: X) {"),
        Some("run")
    );
    assert_eq!(function_name("fn parse<T>(x: T)"), Some("parse"));
    assert_eq!(function_name("    let f = fn_ptr;"), None);
    assert_eq!(
        code_of(r#"let c = '{'; let s = "}{"; // {"#),
        "let c = ; let s = ; "
    );

    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("long.rs");
    let body = "    x += 1;\n".repeat(MAX_FUNCTION_LINES);
    fs::write(&file, format!("fn short() {{}}\nfn long() {{\n{body}}}\n")).expect("write");
    let long = long_functions(&file);
    assert_eq!(long.len(), 1, "{long:?}");
    assert!(long[0].ends_with(&format!("long ({} lines)", MAX_FUNCTION_LINES + 2)));
}
