//! `vrfexec identify [PID]`: the VRF a process runs in, read from its cgroup as
//! `ip vrf identify` does; nothing for the default VRF.
use super::procs::{self, Identity, Subject};
use crate::{cli::IdentifyArgs, error::Result, sys::privilege::Caller, vrf::cgroup};

pub fn run(args: &IdentifyArgs, _caller: &Caller) -> Result<u8> {
    let subject = match args.pid.as_deref() {
        Some(word) => Subject::process(procs::parse_pid(word)?)?,
        None => Subject::current()?,
    };
    let identity = Identity {
        pid: subject.pid,
        vrf: cgroup::vrf_of_path(&subject.cgroup).map(str::to_owned),
        cgroup: subject.cgroup,
    };
    super::write_stdout(procs::render_identity(&identity, args.json).as_bytes()).map(|()| 0)
}
