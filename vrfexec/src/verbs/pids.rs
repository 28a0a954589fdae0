//! `vrfexec pids VRF`: the processes in a VRF, found in the cgroup tree as `ip vrf pids`
//! finds them.
use crate::{
    cli::PidsArgs,
    error::Result,
    sys::{netlink::RtNetlink, privilege::Caller},
};

pub fn run(args: &PidsArgs, _caller: &Caller) -> Result<u8> {
    let text = super::procs::pids(&args.vrf, args.json, &mut RtNetlink::open()?)?;
    super::write_stdout(text.as_bytes()).map(|()| 0)
}
