//! The program's context as a frame for `nta_common::parse`, which holds
//! the parsing itself.

use core::ptr::read_volatile;

use aya_ebpf::programs::XdpContext;
use nta_common::parse::Frame;
pub use nta_common::parse::Network;

pub struct Xdp<'a>(pub &'a XdpContext);

impl Frame for Xdp<'_> {
    #[inline(always)]
    fn data(&self) -> usize {
        self.0.data()
    }

    #[inline(always)]
    fn data_end(&self) -> usize {
        self.0.data_end()
    }

    /// For a loop, LLVM 22 keeps `data` in a 32-bit register across
    /// iterations and widens it with a 32-bit move, which the verifier takes
    /// for turning the packet pointer into a plain number ("invalid mem
    /// access 'scalar'"). A volatile load in each iteration stays a packet
    /// pointer.
    #[inline(always)]
    fn fresh_bounds(&self) -> (usize, usize) {
        unsafe {
            (
                read_volatile(&raw const (*self.0.ctx).data) as usize,
                read_volatile(&raw const (*self.0.ctx).data_end) as usize,
            )
        }
    }
}
