//! Between key paths (`override[1].syn_flood.dst_host_syn_rate`) and places
//! in the text, using toml's spanned document.
//!
//! Both directions parse the text again; they only run once something is
//! wrong, and a config file is small.

use std::ops::Range;

use toml::{
    Spanned,
    de::{DeTable, DeValue},
};

use super::Location;

/// Where the value at `key` is written, or its nearest written ancestor;
/// `None` if the text does not mention it.
pub(super) fn value_of(text: &str, key: &str) -> Option<Location> {
    let root = parse(text)?;
    let mut found: Option<&Spanned<DeValue>> = None;
    for part in key.split('.') {
        let (name, index) = match part.split_once('[') {
            Some((name, rest)) => (name, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        let parent = found.map_or(&root, |v| v.get_ref());
        let Some(value) = parent.get(name) else {
            break;
        };
        found = Some(value);
        if let Some(i) = index {
            match value.get_ref().get(i) {
                Some(item) => found = Some(item),
                None => break,
            }
        }
    }
    found.map(|v| Location::of(text, v.span().start))
}

/// The path of the key whose value is at byte `offset`; for an offset on a
/// key itself (toml reports unknown keys there), the path of its table.
/// Empty at the top level or when the text does not parse.
pub(super) fn key_at(text: &str, offset: usize) -> String {
    let Some(root) = parse(text) else {
        return String::new();
    };
    let mut path = String::new();
    match &root {
        DeValue::Table(table) => in_table(table, offset, &mut path),
        _ => None,
    }
    .unwrap_or_default()
}

fn parse(text: &str) -> Option<DeValue<'_>> {
    DeTable::parse(text)
        .ok()
        .map(|doc| DeValue::Table(doc.into_inner()))
}

fn in_table(table: &DeTable, offset: usize, path: &mut String) -> Option<String> {
    for (key, value) in table.iter() {
        if contains(key.span(), offset) {
            return Some(path.clone());
        }
        let len = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key.get_ref());
        let found = in_value(value, offset, path);
        path.truncate(len);
        if found.is_some() {
            return found;
        }
    }
    None
}

fn in_value(value: &Spanned<DeValue>, offset: usize, path: &mut String) -> Option<String> {
    // Children first: a table's span may cover only its header, or all of
    // its contents, depending on how it was written.
    let inner = match value.get_ref() {
        DeValue::Table(table) => in_table(table, offset, path),
        DeValue::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            let len = path.len();
            path.push_str(&format!("[{i}]"));
            let found = in_value(item, offset, path);
            path.truncate(len);
            found
        }),
        _ => None,
    };
    inner.or_else(|| contains(value.span(), offset).then(|| path.clone()))
}

fn contains(span: Range<usize>, offset: usize) -> bool {
    span.start <= offset && offset < span.end.max(span.start + 1)
}
