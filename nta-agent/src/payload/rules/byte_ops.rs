//! `byte_test` and `byte_jump`: a number read from the buffer, compared
//! with a value or used to move on, as Suricata reads them.
//!
//! ```text
//! byte_test:4,>,1000,2,relative,little;   # the u32 LE 2 bytes on > 1000
//! byte_test:2,!&,0x8000,0;                # its top bit clear
//! byte_test:3,>,100,0,string,dec;         # "123" read as text
//! byte_jump:4,0,relative,little,align;    # skip a length-prefixed field
//! ```
//!
//! Both are steps in a rule's sequence of contents: `relative` counts from
//! the end of the previous match, and `byte_jump` moves that point for the
//! contents after it. A read past the buffer's end fails the step.
//! Refused: `dce` (DCE/RPC byte order, which needs the DCE/RPC parser) and
//! values from `byte_extract` variables.

use super::{Problem, bad};

/// Most bytes one read takes: 8 as a number, 20 as text (a u64 in decimal).
const MAX_BYTES: usize = 8;
const MAX_STRING_BYTES: usize = 20;

/// How the bytes read become a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Big,
    Little,
    /// ASCII digits in this base (`string,dec|hex|oct`).
    Text(u32),
}

/// Where and how a number is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Read {
    pub bytes: usize,
    /// From the buffer's start, or from the previous match's end when
    /// `relative` (then it may be negative).
    pub offset: i64,
    pub relative: bool,
    pub encoding: Encoding,
    /// `bitmask`: ANDed with the number, which is then shifted right by the
    /// mask's trailing zeros.
    pub bitmask: Option<u64>,
}

/// `byte_test`'s comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    Less,
    Greater,
    Equal,
    LessEqual,
    GreaterEqual,
    /// Any bit of the value set.
    And,
    /// Any bit different from the value.
    Xor,
}

/// A `byte_test` or `byte_jump`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteOp {
    Test {
        read: Read,
        compare: Compare,
        /// `!` before the operator.
        negated: bool,
        value: u64,
    },
    Jump {
        read: Read,
        multiplier: u64,
        /// Rounded up to a multiple of 4.
        align: bool,
        /// From the buffer's start, or its end, rather than after the
        /// bytes read.
        from: JumpFrom,
        post_offset: i64,
    },
}

/// Where `byte_jump` counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JumpFrom {
    AfterRead,
    Beginning,
    End,
}

impl ByteOp {
    /// Whether it reads after the previous match.
    pub fn is_relative(&self) -> bool {
        match self {
            ByteOp::Test { read, .. } | ByteOp::Jump { read, .. } => read.relative,
        }
    }

    /// Applies it to `buf`, the previous match having ended at `prev_end`:
    /// `None` if it fails, else where the next relative step counts from
    /// (moved by a jump, the same for a test).
    pub fn apply(&self, buf: &[u8], prev_end: usize) -> Option<usize> {
        match *self {
            ByteOp::Test {
                read,
                compare,
                negated,
                value,
            } => {
                let (n, _) = read.number(buf, prev_end)?;
                (compare.holds(n, value) != negated).then_some(prev_end)
            }
            ByteOp::Jump {
                read,
                multiplier,
                align,
                from,
                post_offset,
            } => {
                let (n, after) = read.number(buf, prev_end)?;
                let mut jump = n.checked_mul(multiplier)?;
                if align {
                    jump = jump.checked_add(3)? & !3;
                }
                let base = match from {
                    JumpFrom::AfterRead => after,
                    JumpFrom::Beginning => 0,
                    JumpFrom::End => buf.len(),
                };
                let to = i64::try_from(base)
                    .ok()?
                    .checked_add(i64::try_from(jump).ok()?)?
                    .checked_add(post_offset)?;
                usize::try_from(to).ok().filter(|&to| to <= buf.len())
            }
        }
    }
}

impl Read {
    /// The number at its place in `buf`, and where its bytes end.
    fn number(&self, buf: &[u8], prev_end: usize) -> Option<(u64, usize)> {
        let base = if self.relative { prev_end } else { 0 };
        let start = usize::try_from(i64::try_from(base).ok()?.checked_add(self.offset)?).ok()?;
        let end = start.checked_add(self.bytes)?;
        let bytes = buf.get(start..end)?;
        let n = match self.encoding {
            Encoding::Big => bytes.iter().fold(0u64, |n, &b| n << 8 | u64::from(b)),
            Encoding::Little => bytes.iter().rev().fold(0u64, |n, &b| n << 8 | u64::from(b)),
            // Its leading digits, as `strtoull` reads them: `12\r\n`
            // with 4 bytes is 12.
            Encoding::Text(base) => {
                let digits = bytes
                    .iter()
                    .take_while(|b| char::from(**b).is_digit(base))
                    .count();
                let text = std::str::from_utf8(&bytes[..digits]).ok()?;
                u64::from_str_radix(text, base).ok()?
            }
        };
        let n = match self.bitmask {
            Some(mask) if mask != 0 => (n & mask) >> mask.trailing_zeros(),
            _ => n,
        };
        Some((n, end))
    }
}

impl Compare {
    fn holds(self, n: u64, value: u64) -> bool {
        match self {
            Compare::Less => n < value,
            Compare::Greater => n > value,
            Compare::Equal => n == value,
            Compare::LessEqual => n <= value,
            Compare::GreaterEqual => n >= value,
            Compare::And => n & value != 0,
            Compare::Xor => n ^ value != 0,
        }
    }
}

/// A number as rules write them: decimal, or hex after `0x`.
fn number(option: &str, text: &str) -> Result<u64, Problem> {
    let text = text.trim();
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|_| bad(option, &format!("`{text}` is not a number")))
}

/// A signed offset.
fn offset(option: &str, text: &str) -> Result<i64, Problem> {
    let text = text.trim();
    text.parse()
        .map_err(|_| bad(option, &format!("`{text}` is not an offset")))
}

/// The flags both keywords take, and those left for the keyword itself.
struct ReadFlags<'t> {
    encoding: Encoding,
    relative: bool,
    bitmask: Option<u64>,
    rest: Vec<&'t str>,
}

/// The flags after the fixed fields.
fn read_flags<'t>(option: &str, flags: &[&'t str]) -> Result<ReadFlags<'t>, Problem> {
    let (mut big, mut little, mut string, mut base) = (false, false, false, None);
    let (mut relative, mut bitmask, mut rest) = (false, None, Vec::new());
    for &flag in flags {
        match flag.split_once(char::is_whitespace) {
            Some(("bitmask", mask)) => bitmask = Some(number(option, mask)?),
            _ => match flag {
                "relative" => relative = true,
                "big" => big = true,
                "little" => little = true,
                "string" => string = true,
                "dec" => base = Some(10),
                "hex" => base = Some(16),
                "oct" => base = Some(8),
                "dce" => return Err(bad(option, "`dce` needs the DCE/RPC parser")),
                other => rest.push(other),
            },
        }
    }
    let encoding = match (string, base) {
        (true, base) => Encoding::Text(base.unwrap_or(10)),
        (false, Some(_)) => return Err(bad(option, "`dec`, `hex` and `oct` go with `string`")),
        _ if big && little => return Err(bad(option, "both `big` and `little`")),
        _ if little => Encoding::Little,
        _ => Encoding::Big,
    };
    Ok(ReadFlags {
        encoding,
        relative,
        bitmask,
        rest,
    })
}

/// The number of bytes to read, checked against the encoding.
fn byte_count(option: &str, text: &str, encoding: Encoding) -> Result<usize, Problem> {
    let n = number(option, text)?;
    let max = match encoding {
        Encoding::Text(_) => MAX_STRING_BYTES,
        _ => MAX_BYTES,
    };
    match usize::try_from(n) {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(bad(
            option,
            &format!("reads 1 to {max} bytes here, not {n}"),
        )),
    }
}

/// The read both keywords start with: `bytes` at `at`, with the flags
/// that shape it; the keyword's own flags are left.
fn read<'t>(
    option: &str,
    bytes: &str,
    at: &str,
    flags: &[&'t str],
) -> Result<(Read, Vec<&'t str>), Problem> {
    let f = read_flags(option, flags)?;
    let read = Read {
        bytes: byte_count(option, bytes, f.encoding)?,
        offset: offset(option, at)?,
        relative: f.relative,
        encoding: f.encoding,
        bitmask: f.bitmask,
    };
    Ok((read, f.rest))
}

/// `byte_test:BYTES,[!]OP,VALUE,OFFSET[,FLAGS...]`.
pub fn parse_test(text: &str) -> Result<ByteOp, Problem> {
    const NAME: &str = "byte_test";
    let fields: Vec<&str> = text.split(',').map(str::trim).collect();
    let [bytes, op, value, at, flags @ ..] = fields.as_slice() else {
        return Err(bad(
            NAME,
            "expected `bytes, operator, value, offset[, flags]`",
        ));
    };
    let (negated, op) = match op.strip_prefix('!') {
        Some("") => (true, "="),
        Some(rest) => (true, rest),
        None => (false, *op),
    };
    let compare = match op {
        "<" => Compare::Less,
        ">" => Compare::Greater,
        "=" => Compare::Equal,
        "<=" => Compare::LessEqual,
        ">=" => Compare::GreaterEqual,
        "&" => Compare::And,
        "^" => Compare::Xor,
        other => return Err(bad(NAME, &format!("`{other}` is not an operator"))),
    };
    let value = number(NAME, value).map_err(|_| {
        bad(
            NAME,
            &format!("`{value}` is not a number (byte_extract variables are not supported)"),
        )
    })?;
    let (read, rest) = read(NAME, bytes, at, flags)?;
    if let Some(unknown) = rest.first() {
        return Err(bad(NAME, &format!("unknown flag `{unknown}`")));
    }
    Ok(ByteOp::Test {
        read,
        compare,
        negated,
        value,
    })
}

/// `byte_jump:BYTES,OFFSET[,FLAGS...]`.
pub fn parse_jump(text: &str) -> Result<ByteOp, Problem> {
    const NAME: &str = "byte_jump";
    let fields: Vec<&str> = text.split(',').map(str::trim).collect();
    let [bytes, at, flags @ ..] = fields.as_slice() else {
        return Err(bad(NAME, "expected `bytes, offset[, flags]`"));
    };
    let (read, rest) = read(NAME, bytes, at, flags)?;
    let (mut multiplier, mut align, mut from, mut post_offset) = (1, false, JumpFrom::AfterRead, 0);
    for flag in rest {
        match flag.split_once(char::is_whitespace) {
            Some(("multiplier", m)) => multiplier = number(NAME, m)?,
            Some(("post_offset", p)) => post_offset = offset(NAME, p)?,
            _ => match flag {
                "align" => align = true,
                "from_beginning" => from = JumpFrom::Beginning,
                "from_end" => from = JumpFrom::End,
                other => return Err(bad(NAME, &format!("unknown flag `{other}`"))),
            },
        }
    }
    Ok(ByteOp::Jump {
        read,
        multiplier,
        align,
        from,
        post_offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test(text: &str, buf: &[u8], prev_end: usize) -> bool {
        parse_test(text)
            .expect("a byte_test")
            .apply(buf, prev_end)
            .is_some()
    }

    fn jump(text: &str, buf: &[u8], prev_end: usize) -> Option<usize> {
        parse_jump(text).expect("a byte_jump").apply(buf, prev_end)
    }

    #[test]
    fn byte_test_reads_and_compares_as_suricata() {
        let buf = [0x00, 0x10, 0x80, 0x01, b'1', b'2', b'3', b'\r'];
        assert!(test("2,=,16,0", &buf, 0));
        assert!(test("2,>,15,0", &buf, 0) && !test("2,>,16,0", &buf, 0));
        assert!(test("2,=,0x0180,2,little", &buf, 0));
        assert!(test("1,&,0x80,2", &buf, 0) && !test("1,!&,0x80,2", &buf, 0));
        assert!(test("1,!&,0x80,3", &buf, 0));
        assert!(!test("1,^,0x01,3", &buf, 0) && test("1,^,0x03,3", &buf, 0));
        assert!(!test("1,!,1,3", &buf, 0) && test("1,!=,2,3", &buf, 0));
        // Relative to the previous match, which may look back.
        assert!(test("1,=,0x80,0,relative", &buf, 2));
        assert!(test("1,=,0x10,-1,relative", &buf, 2));
        assert!(test("3,=,123,4,string,dec", &buf, 0));
        assert!(test("3,>,100,0,string,dec,relative", &buf, 4));
        assert!(!test("2,=,12,2,string,dec", &buf, 0), "no digit");
        assert!(test("4,=,123,4,string,dec", &buf, 0), "leading digits");
        // The top nibble of 0x80 alone, shifted down.
        assert!(test("1,=,8,2,bitmask 0xf0", &buf, 0));
        // Past the end: the step fails, whatever the comparison.
        assert!(!test("2,!=,0,7", &buf, 0) && !test("4,>,0,0,relative", &buf, 5));
    }

    #[test]
    fn byte_jump_moves_the_point_relative_steps_count_from() {
        // A 2-byte length, then that many bytes, then the next field.
        let buf = [0x00, 0x03, b'a', b'b', b'c', 0x05];
        assert_eq!(jump("2,0", &buf, 0), Some(5));
        assert_eq!(jump("2,0,align", &buf, 0), Some(6), "3 rounds up to 4");
        // 3 × 2 bytes after the byte read: past the end.
        assert_eq!(jump("1,1,relative,multiplier 2", &buf, 0), None);
        assert_eq!(jump("1,1,relative,multiplier 1", &buf, 0), Some(5));
        assert_eq!(jump("1,1,from_beginning", &buf, 0), Some(3));
        assert_eq!(
            jump("1,-1,relative,from_beginning,post_offset -1", &buf, 2),
            Some(2)
        );
        assert_eq!(jump("1,5,from_end,post_offset -6", &buf, 0), Some(5));
        assert_eq!(jump("2,0,little", &buf, 0), None, "0x0300 is past the end");
    }

    #[test]
    fn bad_forms_are_refused_by_name() {
        for (text, expected) in [
            ("4,>,1", "expected `bytes, operator, value, offset"),
            ("4,~,1,0", "`~` is not an operator"),
            ("9,>,1,0", "reads 1 to 8 bytes"),
            ("4,=,var,0", "byte_extract variables"),
            ("4,=,1,0,dce", "`dce`"),
            ("4,=,1,0,hex", "go with `string`"),
            ("4,=,1,0,sideways", "unknown flag `sideways`"),
            ("4,=,1,0,big,little", "both `big` and `little`"),
        ] {
            let err = parse_test(text).expect_err(text).to_string();
            assert!(err.contains(expected), "{text}: {err}");
        }
        let err = parse_jump("4,0,leap").expect_err("a bad flag").to_string();
        assert!(err.contains("unknown flag `leap`"), "{err}");
    }
}
