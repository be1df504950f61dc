//! Bounded, escaped views of attacker-controlled bytes.
//!
//! An excerpt is plain printable ASCII: bytes 0x20..=0x7e stay as they are
//! (so `<script>` remains readable text; HTML escaping is the dashboard's
//! job), a backslash becomes `\\`, everything else `\xNN`. Its length is
//! bounded however hostile the input, so an alert's evidence cannot grow
//! with the payload.

/// Longest excerpt, in bytes of escaped text: about three lines on a
/// dashboard, enough to see a header or URI around the match, and small
/// enough that a flood of matches cannot bloat the store.
pub const MAX_EXCERPT: usize = 256;

/// How much of the excerpt, at most, shows what comes before the match:
/// a little context, while most of the budget goes to the match itself.
const CONTEXT_BEFORE: usize = MAX_EXCERPT / 4;

/// `bytes` escaped as printable ASCII, cut to at most `max` bytes (never in
/// the middle of an escape).
pub fn escape(bytes: &[u8], max: usize) -> String {
    let mut out = String::with_capacity(max.min(bytes.len() * 4));
    for &b in bytes {
        if out.len() + escaped_len(b) > max {
            break;
        }
        push_escaped(&mut out, b);
    }
    out
}

/// An escaped view of `buffer` around the match starting at `at`: some
/// context before it, then the match and what follows, at most
/// [`MAX_EXCERPT`] bytes in all.
pub fn around(buffer: &[u8], at: usize) -> String {
    let at = at.min(buffer.len());
    let mut start = at;
    let mut before = 0;
    while start > 0 && before + escaped_len(buffer[start - 1]) <= CONTEXT_BEFORE {
        start -= 1;
        before += escaped_len(buffer[start]);
    }
    escape(&buffer[start..], MAX_EXCERPT)
}

fn escaped_len(b: u8) -> usize {
    match b {
        b'\\' => 2,
        0x20..=0x7e => 1,
        _ => 4,
    }
}

fn push_escaped(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match b {
        b'\\' => out.push_str("\\\\"),
        0x20..=0x7e => out.push(char::from(b)),
        _ => {
            out.push_str("\\x");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_stays_text_and_control_bytes_are_escaped() {
        let shown = escape(b"<script>alert(1)</script>\r\n\x00\xff\\", MAX_EXCERPT);
        assert_eq!(shown, r"<script>alert(1)</script>\x0d\x0a\x00\xff\\");
    }

    #[test]
    fn excerpts_are_bounded_and_never_cut_an_escape() {
        let hostile: Vec<u8> = (0..10_000u32).map(|i| (i % 256) as u8).collect();
        for at in [0, 1, 100, 5000, 9999, 10_000, 20_000] {
            let shown = around(&hostile, at);
            assert!(shown.len() <= MAX_EXCERPT, "{} bytes", shown.len());
            assert!(shown.bytes().all(|b| (0x20..=0x7e).contains(&b)));
            // Every backslash starts a complete escape.
            let mut rest = shown.as_str();
            while let Some(i) = rest.find('\\') {
                let esc = &rest[i..];
                assert!(
                    esc.starts_with("\\\\") || (esc.len() >= 4 && esc.starts_with("\\x")),
                    "cut escape in {shown:?}"
                );
                rest = &esc[if esc.starts_with("\\\\") { 2 } else { 4 }..];
            }
        }
    }

    #[test]
    fn an_excerpt_shows_some_context_then_the_match() {
        let buffer = b"GET /index.php?page=../../../../etc/passwd HTTP/1.1";
        let at = buffer
            .windows(11)
            .position(|w| w == b"/etc/passwd")
            .unwrap();
        let shown = around(buffer, at);
        assert_eq!(shown, String::from_utf8_lossy(buffer));

        let long = [b"A".repeat(1000), b"cmd.exe".to_vec(), b"B".repeat(1000)].concat();
        let shown = around(&long, 1000);
        assert_eq!(shown.len(), MAX_EXCERPT);
        assert_eq!(shown.find("cmd.exe"), Some(CONTEXT_BEFORE));
    }
}
