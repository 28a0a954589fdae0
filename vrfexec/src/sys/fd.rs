//! File descriptors that system calls without a safe wrapper return.
use std::{
    io,
    os::fd::{FromRawFd as _, OwnedFd},
};

/// Takes ownership of the fd a raw system call returned (`syscall(2)` style: negative means
/// failed, with errno set).
pub fn owned(ret: libc::c_long) -> io::Result<OwnedFd> {
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    let raw = i32::try_from(ret).map_err(io::Error::other)?;
    // SAFETY: the kernel just returned this fd to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}
