//! `vrfexec move PID VRF|default`: the sockets a running process creates from now on use the
//! VRF (root only).
use crate::{cli::MoveArgs, error::Result, log::Log, sys::privilege::Caller};

pub fn run(args: &MoveArgs, caller: &Caller) -> Result<u8> {
    super::root_only(caller, "move")?;
    super::procs::move_process(&args.pid, &args.vrf, &Log(args.verbose))?;
    Ok(0)
}
