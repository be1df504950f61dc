//! An array map created with `BPF_F_MMAPABLE`, mapped into the agent's
//! memory: the agent reads it without copying it through a syscall, and
//! changes one word of a value with an atomic store, as the program does,
//! where `BPF_MAP_UPDATE_ELEM` rewrites the whole value and could undo
//! what a CPU wrote meanwhile.

use std::{
    io,
    mem::size_of,
    os::fd::{AsFd as _, AsRawFd, BorrowedFd},
    ptr::NonNull,
    sync::atomic::{AtomicU64, Ordering},
};

use aya::{
    Ebpf,
    maps::{Array, IterableMap as _, MapError},
};

use super::SensorError;

/// Maps the array `name` of the loaded program, of `len` values that must
/// be `V`s.
pub fn mapped<V: aya::Pod>(
    ebpf: &Ebpf,
    name: &'static str,
    len: u32,
) -> Result<MappedArray<V>, SensorError> {
    let error = |source| SensorError::Map { name, source };
    let map = ebpf.map(name).ok_or(SensorError::MissingMap(name))?;
    // Checks the map type and the value size against ours.
    let array: Array<_, V> = Array::try_from(map).map_err(error)?;
    MappedArray::map(array.map().fd().as_fd(), len).map_err(|e| error(MapError::IoError(e)))
}

/// The values of an array map of `len` values of type `V`, in memory
/// shared with the kernel.
pub struct MappedArray<V> {
    base: NonNull<V>,
    len: u32,
    bytes: usize,
}

// SAFETY: the mapping is plain shared memory, which the kernel's programs
// change at any time anyway; this type reads and writes it only with
// volatile or atomic accesses.
unsafe impl<V> Send for MappedArray<V> {}

impl<V: Copy> MappedArray<V> {
    /// Maps the `len` values of the array map `fd`, which must have been
    /// created mappable with values of `V`'s size, 8-byte aligned.
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
        Ok(Self { base, len, bytes })
    }

    /// Values in the array.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// A copy of value `index`, as it is at the moment: a CPU may be
    /// changing it meanwhile, as with any read of a map.
    pub fn read(&self, index: u32) -> Option<V> {
        let at = self.at(index)?;
        // SAFETY: in bounds of a live mapping, aligned; `V` is plain data,
        // valid whatever its bytes (the map's value type).
        Some(unsafe { at.read_volatile() })
    }

    /// Overwrites value `index`; false if there is none.
    pub fn write(&self, index: u32, value: V) -> bool {
        let Some(at) = self.at(index) else {
            return false;
        };
        // SAFETY: as for `read`.
        unsafe { at.write_volatile(value) };
        true
    }

    /// The `word`-th 8-byte word of value `index`, read atomically.
    pub fn load_word(&self, index: u32, word: usize) -> Option<u64> {
        let at = self.word(index, word)?;
        // SAFETY: an aligned word of a live mapping, only ever accessed
        // atomically or whole by the kernel.
        Some(unsafe { AtomicU64::from_ptr(at) }.load(Ordering::Acquire))
    }

    /// Stores `value` in the `word`-th 8-byte word of value `index`,
    /// atomically; false if there is no such word.
    pub fn store_word(&self, index: u32, word: usize, value: u64) -> bool {
        let Some(at) = self.word(index, word) else {
            return false;
        };
        // SAFETY: as for `load_word`.
        unsafe { AtomicU64::from_ptr(at) }.store(value, Ordering::SeqCst);
        true
    }

    fn at(&self, index: u32) -> Option<*mut V> {
        // SAFETY: in bounds of the mapping, which holds `len` values.
        (index < self.len).then(|| unsafe { self.base.as_ptr().add(index as usize) })
    }

    fn word(&self, index: u32, word: usize) -> Option<*mut u64> {
        if word >= size_of::<V>() / size_of::<u64>() {
            return None;
        }
        // SAFETY: within value `index` (checked above).
        self.at(index)
            .map(|at| unsafe { at.cast::<u64>().add(word) })
    }
}

impl<V> Drop for MappedArray<V> {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, of `bytes` bytes, unmapped once.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.bytes) };
    }
}
