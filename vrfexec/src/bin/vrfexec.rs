//! `PREFIX/bin/vrfexec`: the launcher, installed statically linked (no dynamic loader to pay
//! for on every run). It serves a root caller's main job itself, parsed by the hand parser
//! (no clap), and execs the full build for everything else: see `vrfexec::run::launcher`.
//!
//! `main` is a C `main` (`#![no_main]`): Rust's usual start-up (`lang_start`) installs a
//! stack-overflow guard for the main thread, which glibc finds by parsing /proc/self/maps, the
//! largest single start-up cost of this short-lived launcher, and sets SIGPIPE to ignored,
//! which the command would inherit. vrfexec wants neither. std works as usual: on glibc it
//! takes argv from .init_array.
#![no_main]

#[no_mangle]
pub extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    // The launcher returns only on failure: otherwise it became the command or the full build.
    let argv = std::env::args_os().collect::<Vec<_>>();
    let err = vrfexec::run::launcher::run(&argv);
    eprintln!("vrfexec: {err}");
    if vrfexec::verbs::attach::is_condition(&argv) {
        return libc::c_int::from(vrfexec::verbs::attach::CONDITION_FAILED);
    }
    libc::c_int::from(err.exit_code())
}
