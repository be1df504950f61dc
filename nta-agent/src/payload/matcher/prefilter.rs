//! The prefilter: every rule's fast pattern, one Hyperscan literal database
//! per buffer, as Suricata's own multi-pattern matcher does.
//!
//! Hyperscan scans a buffer against thousands of literals at a fraction of
//! a nanosecond per byte, where a table-driven Aho–Corasick DFA pays a
//! dependent load per byte and, with ET Open's 20 000 fast patterns, tens
//! of megabytes of tables that miss the caches. Its databases take a few
//! hundred kilobytes each.
//!
//! Each pattern is reported once per scan (`SINGLEMATCH`): the prefilter
//! only asks which fast patterns occur, the rules say where.

use std::sync::Mutex;

use hyperscan::prelude::{BlockDatabase, Builder as _, CompileFlags, Matching, Pattern, Patterns};
use hyperscan::{ExprExt, Scratch};

/// Why a buffer's fast patterns could not be compiled.
#[derive(Debug, thiserror::Error)]
#[error("Hyperscan: {0}")]
pub struct CompileError(#[from] hyperscan::Error);

/// The fast patterns of one buffer.
struct Database {
    db: BlockDatabase,
    /// Fast pattern id (the matcher's) of each of the database's patterns.
    ids: Vec<u32>,
}

/// One database per buffer, and the scratch space Hyperscan scans with:
/// one per concurrent caller, kept for the next.
pub(super) struct Prefilter {
    databases: Vec<Option<Database>>,
    scratch: Mutex<Scratches>,
}

struct Scratches {
    /// Sized for every database, cloned for each new concurrent caller.
    prototype: Option<Scratch>,
    idle: Vec<Scratch>,
}

impl Prefilter {
    /// Compiles `per_slot[i]`, the lowercased patterns of slot `i` with
    /// their fast pattern ids, matched ASCII-case-insensitively.
    pub(super) fn new(
        per_slot: Vec<(Vec<Vec<u8>>, Vec<u32>)>,
    ) -> Result<Prefilter, (usize, CompileError)> {
        let mut prototype: Option<Scratch> = None;
        let mut databases = Vec::with_capacity(per_slot.len());
        for (slot, (patterns, ids)) in per_slot.into_iter().enumerate() {
            if patterns.is_empty() {
                databases.push(None);
                continue;
            }
            let db = compile(&patterns).map_err(|e| (slot, e))?;
            // One scratch space serves every database it was grown for.
            let grown = match prototype.take() {
                Some(mut scratch) => match db.realloc_scratch(&mut scratch) {
                    Ok(_) => Ok(scratch),
                    Err(e) => Err(e),
                },
                None => db.alloc_scratch(),
            };
            prototype = Some(grown.map_err(|e| (slot, CompileError(e)))?);
            databases.push(Some(Database { db, ids }));
        }
        Ok(Prefilter {
            databases,
            scratch: Mutex::new(Scratches {
                prototype,
                idle: Vec::new(),
            }),
        })
    }

    /// Bytes of the compiled databases, for metrics.
    pub(super) fn bytes(&self) -> usize {
        self.databases
            .iter()
            .flatten()
            .filter_map(|d| d.db.size().ok())
            .sum()
    }

    /// Adds to `hits` the fast pattern ids found in each `(slot, bytes)`,
    /// each at most once per buffer.
    pub(super) fn scan<'b>(
        &self,
        buffers: impl Iterator<Item = (usize, &'b [u8])>,
        hits: &mut Vec<u32>,
    ) {
        let Some(scratch) = self.take_scratch() else {
            return;
        };
        for (slot, bytes) in buffers {
            let Some(Some(database)) = self.databases.get(slot) else {
                continue;
            };
            // Hyperscan takes a 32-bit length; samples are far shorter.
            let bytes = &bytes[..bytes.len().min(u32::MAX as usize)];
            let scanned = database.db.scan(bytes, &scratch, |pattern: u32, _, _, _| {
                if let Some(&id) = database.ids.get(pattern as usize) {
                    hits.push(id);
                }
                Matching::Continue
            });
            // A scan fails only on a scratch space too small for the
            // database, which `new` rules out.
            debug_assert!(scanned.is_ok(), "{scanned:?}");
        }
        self.put_scratch(scratch);
    }

    fn take_scratch(&self) -> Option<Scratch> {
        let mut pool = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
        pool.idle.pop().or_else(|| pool.prototype.clone())
    }

    fn put_scratch(&self, scratch: Scratch) {
        let mut pool = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
        pool.idle.push(scratch);
    }
}

impl std::fmt::Debug for Prefilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prefilter")
            .field("databases", &self.databases.iter().flatten().count())
            .field("bytes", &self.bytes())
            .finish()
    }
}

/// One database of `patterns`, each byte given as `\xHH` so that any byte,
/// NUL included, is a literal.
fn compile(patterns: &[Vec<u8>]) -> Result<BlockDatabase, CompileError> {
    let patterns: Vec<Pattern> = patterns
        .iter()
        .enumerate()
        .map(|(i, bytes)| {
            let mut expression = String::with_capacity(bytes.len() * 4);
            for b in bytes {
                expression.push_str(&format!("\\x{b:02x}"));
            }
            Pattern {
                expression,
                flags: CompileFlags::CASELESS | CompileFlags::SINGLEMATCH,
                id: Some(i),
                ext: ExprExt::default(),
                som: None,
            }
        })
        .collect();
    Ok(Patterns::from(patterns).build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefilter(slots: &[&[&[u8]]]) -> Prefilter {
        let mut next = 0;
        let per_slot = slots
            .iter()
            .map(|patterns| {
                let ids = (next..next + patterns.len() as u32).collect();
                next += patterns.len() as u32;
                (patterns.iter().map(|p| p.to_vec()).collect(), ids)
            })
            .collect();
        Prefilter::new(per_slot).unwrap()
    }

    fn hits(p: &Prefilter, buffers: &[(usize, &[u8])]) -> Vec<u32> {
        let mut out = Vec::new();
        p.scan(buffers.iter().copied(), &mut out);
        out.sort_unstable();
        out
    }

    /// Any byte is a literal, NUL and `\xff` included; letters match in
    /// either case, other bytes only as they are; each pattern is reported
    /// once per buffer however often it occurs.
    #[test]
    fn finds_each_pattern_once_whatever_its_bytes() {
        let p = prefilter(&[&[b"\x00\x01", b"abc", b"\xff\xfe", b"\xe4"], &[b"abc"]]);
        let buffer: &[u8] = b"xxABCxx\x00\x01 abc aBc \xff\xfe \xc4";
        assert_eq!(hits(&p, &[(0, buffer)]), vec![0, 1, 2]);
        // Slot 1 has its own patterns; a slot with none, or past the end,
        // finds nothing.
        assert_eq!(hits(&p, &[(1, buffer), (7, buffer)]), vec![4]);
        assert_eq!(hits(&p, &[(0, b"ab"), (0, b"")]), Vec::<u32>::new());
    }

    /// Scans from many threads at once each get a scratch space of their
    /// own, and their own hits.
    #[test]
    fn concurrent_scans_do_not_share_scratch_space() {
        let p = prefilter(&[&[b"alpha", b"beta"]]);
        std::thread::scope(|s| {
            for i in 0..4 {
                let p = &p;
                s.spawn(move || {
                    let (buffer, want): (&[u8], _) = if i % 2 == 0 {
                        (b"..alpha..", vec![0])
                    } else {
                        (b"..beta..", vec![1])
                    };
                    for _ in 0..1000 {
                        assert_eq!(hits(p, &[(0, buffer)]), want);
                    }
                });
            }
        });
        assert!(p.scratch.lock().unwrap().idle.len() <= 4);
    }
}
