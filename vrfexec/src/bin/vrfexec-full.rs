//! `PREFIX/lib/vrfexec/vrfexec-full`: the full build, dynamically linked. Every verb, clap's
//! command line, and everything that needs glibc's NSS (users, groups, host names), which a
//! static program cannot load safely. The launcher (`vrfexec`) execs it with the same argv for
//! every command line it does not serve itself; policy mode's file capabilities belong here.
//!
//! `main` is a C `main` for the reasons given in `vrfexec.rs`.
#![no_main]

use std::io::Write as _;

#[no_mangle]
pub extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    let argv: Vec<_> = std::env::args_os().collect();
    let condition = vrfexec::verbs::attach::is_condition(&argv);
    let status = match vrfexec::run_full(argv) {
        Ok(status) => status,
        Err(err) => {
            eprintln!("vrfexec: {err}");
            if condition {
                vrfexec::verbs::attach::CONDITION_FAILED
            } else {
                err.exit_code()
            }
        }
    };
    let _ = std::io::stdout().flush();
    libc::c_int::from(status)
}
