//! `pcre:"/PATTERN/FLAGS"`, compiled with the `regex` crate: Perl syntax
//! without backreferences and lookaround, in time linear in the buffer,
//! so no rule can stall the pipeline.

use std::{fmt, sync::Arc};

use regex::bytes::{Regex, RegexBuilder};

use super::{Buffer, Problem};

/// Compiled program size allowed per pattern: far above real rules'.
const MAX_PROGRAM: usize = 1 << 20;
/// Lazy DFA cache per pattern: small, as thousands of patterns load.
const MAX_DFA_CACHE: usize = 1 << 16;

/// A compiled `pcre`.
#[derive(Clone)]
pub struct Pcre {
    /// As written, between the quotes.
    pub source: String,
    pub regex: Arc<Regex>,
    /// `R`: from the end of the previous match in the buffer.
    pub relative: bool,
    /// The buffer a flag (`U`, `H`, ...) names, over the sticky one.
    pub buffer: Option<Buffer>,
}

impl fmt::Debug for Pcre {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pcre:\"{}\"", self.source)
    }
}

impl PartialEq for Pcre {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Pcre {}

/// Parses and compiles `/PATTERN/FLAGS` (the text between the quotes).
pub fn parse(text: &str) -> Result<Pcre, Problem> {
    let bad = |reason: String| Problem::BadValue {
        option: "pcre".into(),
        reason,
    };
    let body = text
        .strip_prefix('/')
        .ok_or_else(|| bad(format!("`{text}` does not start with `/`")))?;
    let end = body
        .rfind('/')
        .ok_or_else(|| bad(format!("`{text}` has no closing `/`")))?;
    let (pattern, flags) = (&body[..end], &body[end + 1..]);
    let (mut nocase, mut dotall, mut multiline, mut extended, mut anchored) =
        (false, false, false, false, false);
    let mut relative = false;
    let mut buffer = None;
    for flag in flags.chars() {
        match flag {
            'i' => nocase = true,
            's' => dotall = true,
            'm' => multiline = true,
            'x' => extended = true,
            'A' => anchored = true,
            // Dollar at the very end only: the regex crate's `$` already
            // is, outside multi-line mode.
            'E' => {}
            'R' => relative = true,
            'U' => buffer = Some(Buffer::HttpUri),
            'I' => buffer = Some(Buffer::HttpUriRaw),
            'H' => buffer = Some(Buffer::HttpHeader),
            'M' => buffer = Some(Buffer::HttpMethod),
            'V' => buffer = Some(Buffer::HttpUserAgent),
            'W' => buffer = Some(Buffer::HttpHost),
            'P' => buffer = Some(Buffer::HttpRequestBody),
            'Q' => buffer = Some(Buffer::FileData),
            'C' => buffer = Some(Buffer::HttpCookie),
            'S' => buffer = Some(Buffer::HttpStatCode),
            'Y' => buffer = Some(Buffer::HttpStatMsg),
            other => {
                return Err(Problem::UnsupportedOption {
                    name: format!("pcre flag {other}"),
                    hint: String::new(),
                });
            }
        }
    }
    let anchored_pattern;
    let full = if anchored {
        anchored_pattern = format!("^(?:{pattern})");
        &anchored_pattern
    } else {
        pattern
    };
    let mut builder = RegexBuilder::new(full);
    // Bytes, not UTF-8: `\xff` is a byte, `.` any byte.
    builder
        .unicode(false)
        .case_insensitive(nocase)
        .dot_matches_new_line(dotall)
        .multi_line(multiline)
        .ignore_whitespace(extended)
        .size_limit(MAX_PROGRAM)
        .dfa_size_limit(MAX_DFA_CACHE);
    // The crate's messages draw the pattern over several lines; a rule's
    // error is one line, so only the last, which says what is wrong.
    let regex = builder.build().map_err(|e| {
        let message = e.to_string();
        let what = message.lines().last().unwrap_or_default().trim().to_owned();
        if unsupported_perl(pattern) {
            Problem::UnsupportedOption {
                name: "pcre (backreference or lookaround)".into(),
                hint: format!(" (the regex crate matches in linear time and has neither: {what})"),
            }
        } else {
            bad(format!("`{text}`: {what}"))
        }
    })?;
    Ok(Pcre {
        source: text.to_owned(),
        regex: Arc::new(regex),
        relative,
        buffer,
    })
}

/// Whether `pattern` uses what only a backtracking engine does.
fn unsupported_perl(pattern: &str) -> bool {
    ["(?=", "(?!", "(?<=", "(?<!", "(?>"]
        .iter()
        .any(|p| pattern.contains(p))
        || pattern
            .as_bytes()
            .windows(2)
            .any(|w| w[0] == b'\\' && w[1].is_ascii_digit() && w[1] != b'0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_set_the_mode_the_buffer_and_relativity() {
        let p = parse("/^GET \\/a[0-9]+/iRU").unwrap();
        assert!(p.relative);
        assert_eq!(p.buffer, Some(Buffer::HttpUri));
        assert!(p.regex.is_match(b"get /A12"));
        let bytes = parse("/\\xff\\x00./s").unwrap();
        assert!(bytes.regex.is_match(b"\xff\x00\n"));
        let anchored = parse("/b/A").unwrap();
        assert!(!anchored.regex.is_match(b"ab") && anchored.regex.is_match(b"ba"));
        // The request body, Suricata's `http_client_body`.
        assert_eq!(
            parse("/DOCTYPE/P").unwrap().buffer,
            Some(Buffer::HttpRequestBody)
        );
    }

    #[test]
    fn what_the_regex_crate_cannot_do_is_named() {
        for pattern in ["/(a)\\1/", "/a(?=b)/", "/(?<!x)y/"] {
            let err = parse(pattern).unwrap_err().to_string();
            assert!(
                err.contains("backreference or lookaround"),
                "{pattern}: {err}"
            );
        }
        let err = parse("/a/Z").unwrap_err().to_string();
        assert!(err.contains("pcre flag Z"), "{err}");
        let err = parse("/(/").unwrap_err().to_string();
        assert!(err.starts_with("`pcre`: `/(/`"), "{err}");
        assert!(parse("nope").is_err());
    }
}
