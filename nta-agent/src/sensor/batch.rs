//! Reading a whole hash map or array with `BPF_MAP_LOOKUP_BATCH` (Linux
//! 5.6): one syscall per thousand entries, where walking it key by key
//! (`BPF_MAP_GET_NEXT_KEY`, then `BPF_MAP_LOOKUP_ELEM`) takes two per
//! entry — 131 072 syscalls a tick for a full table of sources. aya has no
//! batch operations, so this makes the syscall itself.

use std::{
    io,
    mem::size_of,
    os::fd::{AsRawFd, BorrowedFd},
};

/// `BPF_MAP_LOOKUP_BATCH`'s command number (`enum bpf_cmd`).
const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;

/// Entries asked for per call: 64 calls for a full table of sources, and
/// buffers of some 200 KiB, which the agent's peak memory under a spoofed
/// flood (two snapshots of 65 536 sources) can spare. A hash bucket with
/// more entries than this would make the kernel answer ENOSPC; buckets
/// hold a handful.
const CHUNK: usize = 1_024;

/// The `batch` member of `union bpf_attr`.
#[repr(C)]
#[derive(Debug, Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// Every entry of the hash map or array `fd`, read a chunk at a time and decoded
/// by `decode` from the bytes of its key (`key_size`) and value
/// (`value_size`). Entries added or evicted meanwhile may or may
/// not be seen, as with a walk; an entry `decode` refuses is skipped.
pub fn entries<T, F: FnMut(&[u8], &[u8]) -> Option<T>>(
    fd: BorrowedFd<'_>,
    key_size: usize,
    value_size: usize,
    decode: F,
) -> Entries<'_, F> {
    Entries {
        fd,
        key_size,
        value_size,
        keys: vec![0u8; key_size * CHUNK],
        values: vec![0u8; value_size * CHUNK],
        cursor: [0; 8],
        started: false,
        ended: false,
        got: 0,
        at: 0,
        decode,
    }
}

/// See [`entries`].
pub struct Entries<'fd, F> {
    fd: BorrowedFd<'fd>,
    key_size: usize,
    value_size: usize,
    keys: Vec<u8>,
    values: Vec<u8>,
    /// The kernel's cursor: the next bucket of a hash map, the next index
    /// of an array, a u32 each.
    cursor: [u8; 8],
    started: bool,
    /// The kernel said the last chunk was the last.
    ended: bool,
    got: usize,
    at: usize,
    decode: F,
}

impl<F> Entries<'_, F> {
    /// The next chunk into the buffers; `Ok(false)` past the last.
    fn fetch(&mut self) -> io::Result<bool> {
        if self.ended {
            return Ok(false);
        }
        let mut next = [0u8; 8];
        let mut attr = BatchAttr {
            in_batch: if self.started {
                self.cursor.as_ptr() as u64
            } else {
                0
            },
            out_batch: next.as_mut_ptr() as u64,
            keys: self.keys.as_mut_ptr() as u64,
            values: self.values.as_mut_ptr() as u64,
            count: CHUNK as u32,
            map_fd: self.fd.as_raw_fd() as u32,
            ..BatchAttr::default()
        };
        // SAFETY: attr points to buffers of `count` keys and values and to
        // 8-byte cursors, all alive for the call.
        let more = unsafe { lookup_batch(&mut attr) };
        self.ended = !matches!(more, Ok(true));
        more?;
        self.cursor = next;
        self.started = true;
        self.got = (attr.count as usize).min(CHUNK);
        self.at = 0;
        Ok(self.got > 0)
    }
}

impl<T, F: FnMut(&[u8], &[u8]) -> Option<T>> Iterator for Entries<'_, F> {
    type Item = io::Result<T>;

    fn next(&mut self) -> Option<io::Result<T>> {
        loop {
            while self.at < self.got {
                let i = self.at;
                self.at += 1;
                let key = &self.keys[i * self.key_size..(i + 1) * self.key_size];
                let value = &self.values[i * self.value_size..(i + 1) * self.value_size];
                if let Some(entry) = (self.decode)(key, value) {
                    return Some(Ok(entry));
                }
            }
            match self.fetch() {
                Ok(true) => {}
                Ok(false) => return None,
                Err(error) => return Some(Err(error)),
            }
        }
    }
}

/// Runs `BPF_MAP_LOOKUP_BATCH` with `attr`, which the kernel updates
/// (`count` to the entries copied); `Ok(false)` when the map ended within
/// the chunk (the kernel's ENOENT, the chunk perhaps empty).
///
/// # Safety
/// `attr`'s pointers must name buffers of `count` keys and `count` values
/// of the map's sizes, and 8-byte cursors, alive for the call: the kernel
/// writes within them.
unsafe fn lookup_batch(attr: &mut BatchAttr) -> io::Result<bool> {
    // SAFETY: the caller's.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_LOOKUP_BATCH,
            attr as *mut BatchAttr,
            size_of::<BatchAttr>() as u32,
        )
    };
    if rc < 0 {
        let error = io::Error::last_os_error();
        return match error.raw_os_error() {
            Some(libc::ENOENT) => Ok(false),
            _ => Err(error),
        };
    }
    Ok(true)
}

/// Every value of the per-CPU array `fd` of `entries` entries, each CPU's
/// `words` long, in one call (where a lookup per entry takes one each)
/// into `values`, laid out as the kernel copies them: entry by entry, each
/// entry's CPUs in turn (`cpus` of them, the possible CPUs). `keys` is the
/// kernel's scratch for the indexes. The buffers are the caller's to keep,
/// so that a read every event allocates nothing.
pub fn per_cpu_array(
    fd: BorrowedFd<'_>,
    entries: u32,
    words: usize,
    cpus: usize,
    keys: &mut Vec<u32>,
    values: &mut Vec<u64>,
) -> io::Result<()> {
    keys.resize(entries as usize, 0);
    values.resize(entries as usize * cpus * words, 0);
    let mut next = [0u8; 8];
    let mut attr = BatchAttr {
        out_batch: next.as_mut_ptr() as u64,
        keys: keys.as_mut_ptr() as u64,
        values: values.as_mut_ptr() as u64,
        count: entries,
        map_fd: fd.as_raw_fd() as u32,
        ..BatchAttr::default()
    };
    // SAFETY: the buffers hold `count` keys and `count` values of
    // `cpus * words` words, the size the kernel copies for a per-CPU value
    // of `words * 8` bytes; the cursor is 8 bytes; all alive for the call.
    unsafe { lookup_batch(&mut attr) }?;
    if attr.count != entries {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("{} of the array's {entries} entries read", attr.count),
        ));
    }
    Ok(())
}

/// A `T` read from the start of `bytes`, which must hold one.
pub fn read<T: aya::Pod>(bytes: &[u8]) -> Option<T> {
    (bytes.len() >= size_of::<T>())
        // SAFETY: T is Pod (any bytes are a valid T), the slice holds
        // size_of::<T>() bytes, and the read is unaligned.
        .then(|| unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_attribute_is_laid_out_as_the_kernels() {
        // Four pointers, two u32 and two u64 flags: 56 bytes, count at 32,
        // map_fd at 36.
        assert_eq!(size_of::<BatchAttr>(), 56);
        let attr = BatchAttr::default();
        let base = &attr as *const BatchAttr as usize;
        assert_eq!(&attr.count as *const u32 as usize - base, 32);
        assert_eq!(&attr.map_fd as *const u32 as usize - base, 36);
        assert_eq!(&attr.flags as *const u64 as usize - base, 48);
    }

    #[test]
    fn a_value_shorter_than_its_type_is_refused() {
        assert_eq!(read::<u64>(&[1, 0, 0]), None);
        assert_eq!(read::<u32>(&7u32.to_ne_bytes()), Some(7));
    }
}
