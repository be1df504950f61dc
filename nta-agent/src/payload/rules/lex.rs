//! The lexical layer of rule files: logical lines, header fields, options,
//! quoted strings and content bytes.

use super::Problem;

/// Longest rule accepted, joined lines included. Real rules are under 2 KiB;
/// the bound keeps a runaway continuation (a file of lines ending in `\`)
/// from becoming one huge allocation.
pub const MAX_RULE_LEN: usize = 64 * 1024;

/// One rule's text and the line it starts on (1-based).
pub struct LogicalLine {
    pub line: usize,
    pub text: Result<String, Problem>,
}

/// Splits a rules file into rules: comments (`#`) and blank lines dropped,
/// lines ending in `\` joined with the next.
pub fn logical_lines(text: &str) -> Vec<LogicalLine> {
    struct Pending {
        line: usize,
        text: String,
        too_long: bool,
    }
    fn finish(p: Pending) -> LogicalLine {
        LogicalLine {
            line: p.line,
            text: if p.too_long {
                Err(Problem::TooLong { max: MAX_RULE_LEN })
            } else {
                Ok(p.text)
            },
        }
    }

    let mut out = Vec::new();
    let mut current: Option<Pending> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end();
        if current.is_none() {
            let start = line.trim_start();
            if start.is_empty() || start.starts_with('#') {
                continue;
            }
        }
        let (body, continues) = match line.strip_suffix('\\') {
            Some(body) => (body, true),
            None => (line, false),
        };
        let pending = current.get_or_insert_with(|| Pending {
            line: i + 1,
            text: String::new(),
            too_long: false,
        });
        if pending.text.len() + body.len() <= MAX_RULE_LEN {
            pending.text.push_str(body);
        } else {
            pending.too_long = true;
        }
        if !continues && let Some(pending) = current.take() {
            out.push(finish(pending));
        }
    }
    // A file may end inside a continuation: parse what there is.
    out.extend(current.take().map(finish));
    out
}

/// Splits the header at spaces, keeping `[...]` lists (which may contain
/// spaces) whole.
pub fn header_fields(header: &str) -> Result<Vec<&str>, Problem> {
    let mut fields = Vec::new();
    let mut depth = 0usize;
    let mut start = None;
    for (i, c) in header.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| Problem::Syntax("`]` without `[` in the rule header".into()))?;
            }
            _ => {}
        }
        if c.is_whitespace() && depth == 0 {
            if let Some(s) = start.take() {
                fields.push(&header[s..i]);
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if depth != 0 {
        return Err(Problem::Syntax("`[` without `]` in the rule header".into()));
    }
    if let Some(s) = start {
        fields.push(&header[s..]);
    }
    Ok(fields)
}

/// An option's value as written.
#[derive(Debug, PartialEq, Eq)]
pub struct Value<'a> {
    /// Between the quotes (escapes not yet processed) or, unquoted, trimmed.
    pub text: &'a str,
    pub quoted: bool,
    /// Written `!"..."`.
    pub negated: bool,
}

/// One `name` or `name:value` option.
#[derive(Debug, PartialEq, Eq)]
pub struct RawOption<'a> {
    pub name: &'a str,
    pub value: Option<Value<'a>>,
}

/// Splits the text between the parentheses into options. Quoted values may
/// contain `;`; backslash escapes are skipped over here and decoded later.
pub fn options(body: &str) -> Result<Vec<RawOption<'_>>, Problem> {
    let bytes = body.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        // `>=`: a value without a final `;` leaves `i` one past the end.
        if i >= bytes.len() {
            return Ok(out);
        }
        let name_start = i;
        while i < bytes.len() && bytes[i] != b':' && bytes[i] != b';' {
            i += 1;
        }
        let name = body[name_start..i].trim();
        if name.is_empty() {
            return Err(Problem::Syntax(format!(
                "empty option at `{}`",
                shorten(&body[name_start..])
            )));
        }
        if name.contains(|c: char| c.is_whitespace()) {
            return Err(Problem::Syntax(format!(
                "missing `;` before `{}`",
                shorten(name.split_whitespace().nth(1).unwrap_or(name))
            )));
        }
        if i == bytes.len() || bytes[i] == b';' {
            i += 1;
            out.push(RawOption { name, value: None });
            continue;
        }
        // `:` — a value follows.
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let negated = bytes.get(i) == Some(&b'!');
        let mut j = i + usize::from(negated);
        while negated && j < bytes.len() && bytes[j].is_ascii_whitespace() {
            j += 1;
        }
        if bytes.get(j) == Some(&b'"') {
            let start = j + 1;
            let mut k = start;
            loop {
                match bytes.get(k) {
                    None => {
                        return Err(Problem::UnterminatedString {
                            option: name.to_owned(),
                        });
                    }
                    Some(b'\\') => k += 2,
                    Some(b'"') => break,
                    Some(_) => k += 1,
                }
            }
            let text = &body[start..k];
            i = k + 1;
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            match bytes.get(i) {
                None => {}
                Some(b';') => i += 1,
                Some(_) => {
                    return Err(Problem::Syntax(format!(
                        "unexpected `{}` after the quoted value of `{name}` (missing `;`?)",
                        shorten(&body[i..])
                    )));
                }
            }
            out.push(RawOption {
                name,
                value: Some(Value {
                    text,
                    quoted: true,
                    negated,
                }),
            });
        } else {
            let start = i;
            while i < bytes.len() && bytes[i] != b';' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            let end = i.min(bytes.len());
            i = end + 1;
            out.push(RawOption {
                name,
                value: Some(Value {
                    text: body[start..end].trim(),
                    quoted: false,
                    negated,
                }),
            });
        }
    }
}

/// A string value with `\"`, `\;` and `\\` decoded.
pub fn unescape(option: &str, text: &str) -> Result<String, Problem> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(e @ ('"' | ';' | '\\' | ':')) => out.push(e),
                other => return Err(bad_escape(option, other)),
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// Content bytes: text with escapes, and `|41 42|` hex segments.
pub fn content_bytes(text: &str) -> Result<Vec<u8>, Problem> {
    let bad = |reason: String| Problem::BadValue {
        option: "content".into(),
        reason,
    };
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'\\' => match bytes.next() {
                Some(e @ (b'"' | b';' | b'\\' | b':')) => out.push(e),
                other => return Err(bad_escape("content", other.map(char::from))),
            },
            b'|' => {
                let mut high: Option<u8> = None;
                loop {
                    match bytes.next() {
                        None => return Err(bad("`|` hex segment is not closed".into())),
                        Some(b'|') if high.is_none() => break,
                        Some(b'|') => {
                            return Err(bad("odd number of hex digits between `|`".into()));
                        }
                        Some(b' ') if high.is_none() => {}
                        Some(h) => {
                            let Some(v) = char::from(h).to_digit(16) else {
                                return Err(bad(format!(
                                    "`{}` is not a hex digit (between `|`)",
                                    char::from(h).escape_default()
                                )));
                            };
                            let v = v as u8;
                            match high.take() {
                                None => high = Some(v),
                                Some(hi) => out.push(hi << 4 | v),
                            }
                        }
                    }
                }
            }
            b'"' | b';' => {
                return Err(bad(format!(
                    "`{}` must be escaped as `\\{}`",
                    char::from(b),
                    char::from(b)
                )));
            }
            _ => out.push(b),
        }
    }
    Ok(out)
}

fn bad_escape(option: &str, after: Option<char>) -> Problem {
    Problem::BadValue {
        option: option.to_owned(),
        reason: match after {
            Some(c) => format!(
                "unknown escape `\\{}` (only `\\\"`, `\\;`, `\\:` and `\\\\`; use `|hex|` for other bytes)",
                c.escape_default()
            ),
            None => "`\\` at the end of the string".into(),
        },
    }
}

/// The start of `text`, for messages about it.
fn shorten(text: &str) -> String {
    const SHOWN: usize = 20;
    match text.char_indices().nth(SHOWN) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}
