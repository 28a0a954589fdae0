//! What both eBPF objects (`vrfexec`, `vrfexec-trace`) share: which setsockopt calls move a
//! socket to another device (`--strict` refuses them, `trace` reports them), the panic
//! handler and the license.

// Option levels and names from <linux/socket.h>, <asm-generic/socket.h>, <linux/in.h>,
// <linux/in6.h>.
pub const SOL_SOCKET: i32 = 1;
pub const SO_BINDTODEVICE: i32 = 25;
pub const SO_BINDTOIFINDEX: i32 = 62;
pub const SOL_IP: i32 = 0;
pub const IP_UNICAST_IF: i32 = 50;
pub const SOL_IPV6: i32 = 41;
pub const IPV6_UNICAST_IF: i32 = 76;

/// Whether a setsockopt would change which device the socket uses.
pub fn rebinds(level: i32, optname: i32) -> bool {
    matches!(
        (level, optname),
        (SOL_SOCKET, SO_BINDTODEVICE)
            | (SOL_SOCKET, SO_BINDTOIFINDEX)
            | (SOL_IP, IP_UNICAST_IF)
            | (SOL_IPV6, IPV6_UNICAST_IF)
    )
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
