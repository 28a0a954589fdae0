//! The vrfexec binary: maps `vrfexec::run` to an exit status and prints its error once.
//!
//! `main` is a C `main` (`#![no_main]`): Rust's usual start-up (`lang_start`) installs a
//! stack-overflow guard for the main thread, which glibc finds by parsing /proc/self/maps, the
//! largest single start-up cost of this short-lived launcher, and sets SIGPIPE to ignored,
//! which the command would inherit. vrfexec wants neither. std works as usual: on glibc it
//! takes argv from .init_array, and every output path flushes stdout itself.
#![no_main]

use std::io::Write as _;

#[no_mangle]
pub extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    let status = match vrfexec::run(std::env::args_os().collect()) {
        Ok(status) => status,
        Err(err) => {
            eprintln!("vrfexec: {err}");
            err.exit_code()
        }
    };
    let _ = std::io::stdout().flush();
    libc::c_int::from(status)
}
