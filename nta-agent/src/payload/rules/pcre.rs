//! `pcre:"/PATTERN/FLAGS"`, compiled with the `regex` crate where it can:
//! Perl syntax without backreferences and lookaround, in time linear in
//! the buffer. A pattern with either goes to `fancy-regex`, a backtracking
//! engine, whose steps per match are bounded ([`MAX_BACKTRACK`]) so that
//! no rule can stall the pipeline: a match that would take more is taken
//! as no match.

use std::{
    cell::RefCell,
    collections::HashMap,
    fmt,
    ops::Range,
    sync::{Arc, Weak},
};

use regex::bytes::{Regex, RegexBuilder};

use super::{Buffer, Problem};

/// Compiled program size allowed per pattern: far above real rules'.
const MAX_PROGRAM: usize = 1 << 20;
/// Lazy DFA cache per pattern: small, as thousands of patterns load.
const MAX_DFA_CACHE: usize = 1 << 16;

/// Backtracking steps one match may take: a few milliseconds at most, far
/// above what ET's patterns need on a sampled buffer.
const MAX_BACKTRACK: usize = 100_000;

/// The engine a pattern runs on.
#[derive(Debug)]
pub enum Engine {
    /// Linear time, on bytes.
    Linear(Regex),
    /// Backtracking, bounded. It matches text, so a buffer's bytes are
    /// given to it as the characters U+0000–U+00FF (Latin-1): `\xff` and
    /// `.` then match one byte each, as in PCRE.
    Backtracking(fancy_regex::Regex),
}

impl Engine {
    pub fn is_match(&self, hay: &[u8]) -> bool {
        self.find_at(hay, 0).is_some()
    }

    /// The first match starting at or after `from`, as a range of `hay`.
    pub fn find_at(&self, hay: &[u8], from: usize) -> Option<Range<usize>> {
        match self {
            Engine::Linear(regex) => regex.find_at(hay, from).map(|m| m.range()),
            Engine::Backtracking(regex) => {
                let text: String = hay.iter().map(|&b| char::from(b)).collect();
                // Characters past U+007F take two bytes in the text.
                let to_text = |i: usize| i + hay[..i].iter().filter(|&&b| b >= 0x80).count();
                let to_bytes = |i: usize| text[..i].chars().count();
                let m = regex
                    .find_from_pos(&text, to_text(from.min(hay.len())))
                    .ok()??;
                Some(to_bytes(m.start())..to_bytes(m.end()))
            }
        }
    }
}

/// A compiled `pcre`.
#[derive(Clone)]
pub struct Pcre {
    /// As written, between the quotes.
    pub source: String,
    pub regex: Arc<Engine>,
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
    let modes = Modes {
        nocase,
        dotall,
        multiline,
        extended,
    };
    Ok(Pcre {
        source: text.to_owned(),
        regex: shared(text, || compile(text, pattern, full, modes))?,
        relative,
        buffer,
    })
}

/// How a pattern is matched, from its flags.
#[derive(Clone, Copy)]
struct Modes {
    nocase: bool,
    dotall: bool,
    multiline: bool,
    extended: bool,
}

thread_local! {
    /// The patterns compiled on this thread, by their text, while any rule
    /// holds them: ET repeats some long patterns dozens of times, and one
    /// compiled copy of those can take megabytes.
    static COMPILED: RefCell<HashMap<String, Weak<Engine>>> = RefCell::new(HashMap::new());
}

/// The engine for `text`: the one compiled before if a rule still holds
/// it, else `compile`'s.
fn shared(
    text: &str,
    compile: impl FnOnce() -> Result<Engine, Problem>,
) -> Result<Arc<Engine>, Problem> {
    if let Some(engine) = COMPILED.with_borrow(|c| c.get(text).and_then(Weak::upgrade)) {
        return Ok(engine);
    }
    let engine = Arc::new(compile()?);
    COMPILED.with_borrow_mut(|c| {
        // Forget the patterns of rule sets dropped since, now and then.
        if c.len() % 1024 == 1023 {
            c.retain(|_, e| e.strong_count() > 0);
        }
        c.insert(text.to_owned(), Arc::downgrade(&engine));
    });
    Ok(engine)
}

/// Compiles `full` (`pattern`, anchored if asked) with `modes`.
fn compile(text: &str, pattern: &str, full: &str, modes: Modes) -> Result<Engine, Problem> {
    let bad = |reason: String| Problem::BadValue {
        option: "pcre".into(),
        reason,
    };
    let Modes {
        nocase,
        dotall,
        multiline,
        extended,
    } = modes;
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
    match builder.build() {
        Ok(regex) => Ok(Engine::Linear(regex)),
        Err(_) if unsupported_perl(pattern) => {
            let modes = [
                (nocase, 'i'),
                (dotall, 's'),
                (multiline, 'm'),
                (extended, 'x'),
            ];
            let flags: String = modes.iter().filter(|m| m.0).map(|m| m.1).collect();
            let full = if flags.is_empty() {
                full.to_owned()
            } else {
                format!("(?{flags}){full}")
            };
            let regex = fancy_regex::RegexBuilder::new(&named_backrefs(&full))
                .backtrack_limit(MAX_BACKTRACK)
                .delegate_size_limit(MAX_PROGRAM)
                .build()
                .map_err(|e| match e.to_string() {
                    // Counted repetitions of a class, compiled for text:
                    // `[^\x27]{1075,}` spans every UTF-8 form of a char.
                    m if m.contains("building NFA") => Problem::UnsupportedOption {
                        name: "pcre (too large to backtrack)".into(),
                        hint: format!(
                            " (with backreferences or lookaround, its parts compile to more \
                             than {} KiB)",
                            MAX_PROGRAM / 1024
                        ),
                    },
                    m => bad(format!("`{text}`: {m}")),
                })?;
            Ok(Engine::Backtracking(regex))
        }
        Err(e) => {
            let message = e.to_string();
            let what = message.lines().last().unwrap_or_default().trim().to_owned();
            Err(bad(format!("`{text}`: {what}")))
        }
    }
}

/// `pattern` with PCRE's named backreferences, `(?P=name)`, in the form
/// `fancy-regex` reads, `\k<name>`.
fn named_backrefs(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some(at) = rest.find("(?P=") {
        let after = &rest[at + 4..];
        let Some(end) = after.find(')') else {
            break;
        };
        out.push_str(&rest[..at]);
        out.push_str(&format!("\\k<{}>", &after[..end]));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Whether `pattern` uses what only a backtracking engine does.
fn unsupported_perl(pattern: &str) -> bool {
    ["(?=", "(?!", "(?<=", "(?<!", "(?>", "(?P="]
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
    fn backreferences_and_lookaround_run_bounded_on_bytes() {
        let twice = parse("/(ab)\\1/i").unwrap();
        assert!(matches!(*twice.regex, Engine::Backtracking(_)));
        assert_eq!(twice.regex.find_at(b"xxABab", 0), Some(2..6));
        assert_eq!(twice.regex.find_at(b"xxABab", 3), None);
        let ahead = parse("/a(?=\\xff)/").unwrap();
        // Bytes past 0x7f count one each, before and after the match.
        assert_eq!(ahead.regex.find_at(b"\xfea\xfe\xe9a\xff", 0), Some(4..5));
        assert!(!ahead.regex.is_match(b"a\xfe"));
        let named = parse("/(?P<h>[a-f]{2})-(?P=h)/").unwrap();
        assert!(named.regex.is_match(b"ab-ab") && !named.regex.is_match(b"ab-cd"));
        let behind = parse("/(?<!x)y/").unwrap();
        assert!(behind.regex.is_match(b"ay") && !behind.regex.is_match(b"xy"));
        // Catastrophic backtracking: past the bound, no match, at once.
        let slow = parse("/^(a+)+\\1b/").unwrap();
        let hay = [b'a'; 64];
        let start = std::time::Instant::now();
        assert!(!slow.regex.is_match(&hay));
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn what_the_regex_crates_cannot_do_is_named() {
        let err = parse("/(a)\\1[^b]{9000}/").unwrap_err().to_string();
        assert!(err.contains("pcre (too large to backtrack)"), "{err}");
        let err = parse("/(a)\\2/").unwrap_err().to_string();
        assert!(err.starts_with("`pcre`: `/(a)\\2/`"), "{err}");
        let err = parse("/a/Z").unwrap_err().to_string();
        assert!(err.contains("pcre flag Z"), "{err}");
        let err = parse("/(/").unwrap_err().to_string();
        assert!(err.starts_with("`pcre`: `/(/`"), "{err}");
        assert!(parse("nope").is_err());
    }
}
