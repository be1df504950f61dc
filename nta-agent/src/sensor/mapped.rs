//! An array map created with `BPF_F_MMAPABLE`, mapped into the agent's
//! memory: the agent then changes one word of a value with an atomic
//! store, as the program does, where `BPF_MAP_UPDATE_ELEM` rewrites the
//! whole value and could undo what a CPU wrote meanwhile.

use std::{
    io,
    marker::PhantomData,
    mem::size_of,
    os::fd::{AsRawFd, BorrowedFd},
    ptr::NonNull,
    sync::atomic::{AtomicU64, Ordering},
};

/// The values of an array map of `len` values of type `V`, in memory
/// shared with the kernel.
pub struct MappedArray<V> {
    base: NonNull<V>,
    len: u32,
    bytes: usize,
    _values: PhantomData<V>,
}

// SAFETY: the mapping is plain shared memory, which the kernel's programs
// change at any time anyway; this type writes it only with atomic stores.
unsafe impl<V> Send for MappedArray<V> {}

impl<V> MappedArray<V> {
    /// Maps the `len` values of the array map `fd`, which must have been
    /// created mappable with values of `V`'s size.
    pub fn map(fd: BorrowedFd<'_>, len: u32) -> io::Result<Self> {
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
            .map_err(|_| io::Error::other("no page size"))?;
        let bytes = (len as usize * size_of::<V>()).div_ceil(page).max(1) * page;
        // SAFETY: a new shared mapping of the map's values, which the
        // kernel checks against the map's size; nothing else is touched.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base =
            NonNull::new(base.cast::<V>()).ok_or_else(|| io::Error::other("null mapping"))?;
        Ok(Self {
            base,
            len,
            bytes,
            _values: PhantomData,
        })
    }

    /// Values in the array.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Stores `value` in the `word`-th 8-byte word of value `index`,
    /// atomically; false if there is no such word.
    pub fn store_word(&self, index: u32, word: usize, value: u64) -> bool {
        if index >= self.len || word >= size_of::<V>() / size_of::<u64>() {
            return false;
        }
        // SAFETY: in bounds (checked above) of a live mapping whose values
        // are 8-byte aligned (array map values are), and only ever accessed
        // atomically or by the kernel.
        unsafe {
            let at = self
                .base
                .as_ptr()
                .add(index as usize)
                .cast::<u64>()
                .add(word);
            AtomicU64::from_ptr(at).store(value, Ordering::SeqCst);
        }
        true
    }
}

impl<V> Drop for MappedArray<V> {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, of `bytes` bytes, unmapped once.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.bytes) };
    }
}
