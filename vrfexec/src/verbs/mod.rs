//! The verbs beside the main job. Each module exports one `run(args, caller) -> Result<u8>`
//! returning the exit status, and writes its output itself (through [`write_stdout`] where the
//! output is produced whole).
//!
//! | verb | module | what |
//! |---|---|---|
//! | show | [`show`] | the VRFs, their tables and members (`ip vrf show`) |
//! | identify | [`identify`] | the VRF a process runs in (`ip vrf identify`) |
//! | pids | [`pids`] | the processes in a VRF (`ip vrf pids`) |
//! | move | [`move@r#move`] | put a running process into a VRF |
//! | route | [`route`] | `ip route get` in the VRF's table |
//! | ping | [`ping`] | ping bound to the VRF with SO_BINDTODEVICE, no BPF |
//! | gc | [`gc`] | remove VRF cgroups no process uses |
//! | check | [`check`] | find, and `--fix`, the leaks and traps of VRF setups |
//! | attach | [`attach`] | bind the caller's own cgroup (systemd's `ExecCondition=+`) |
//! | trace | [`trace`] | run a command in a VRF and show what its sockets do |
use std::io::Write as _;

use crate::{
    error::{Error, Result},
    run::policy::POLICY_PATH,
    sys::privilege::Caller,
};

pub mod attach;
pub mod check;
pub mod gc;
pub mod identify;
pub mod r#move;
pub mod pids;
pub mod ping;
mod procs;
pub mod route;
pub mod show;
pub mod trace;

/// Writes a verb's whole output to stdout.
pub fn write_stdout(output: &[u8]) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(output).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        // `vrfexec show | head -1`: a closed pipe is the reader's choice, not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::os("cannot write to stdout", e)),
    }
}

/// Verbs that change other processes or the system: never for a policy-mode caller.
fn root_only(caller: &Caller, verb: &str) -> Result<()> {
    if caller.policy_mode {
        return Err(Error::refused(
            format!("vrfexec {verb} needs root"),
            format!("non-root users may only run commands in the VRFs {POLICY_PATH} grants"),
        )
        .hint("run it as root"));
    }
    Ok(())
}
