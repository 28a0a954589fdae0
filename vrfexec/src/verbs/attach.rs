//! `vrfexec attach VRF`: binds the cgroup vrfexec itself runs in to a VRF, for a systemd
//! unit's `ExecStartPre=+/usr/bin/vrfexec attach VRF`: the unit's processes are in that cgroup,
//! so every socket they create is bound.
use crate::{
    cli::AttachArgs,
    error::Result,
    log::Log,
    sys::{netlink::RtNetlink, privilege},
    vrf::{
        place,
        target::{self, Target},
        verify,
    },
};

pub fn run(args: &AttachArgs, caller: &privilege::Caller) -> Result<u8> {
    super::root_only(caller, "attach")?;
    let target = Target::named(
        &args.vrf,
        args.dev,
        "attach",
        "leave the unit without the attach line to run it in the default VRF",
    )?;
    privilege::check_bpf_capabilities()?;
    let binding = target::resolve(&target, &mut RtNetlink::open()?)?;
    let subject = place::Subject::current()?;
    place::attach_in_place(&subject, &binding, &Log(args.verbose))?;
    // The unit's processes join this cgroup: if its sockets are not bound, the unit must fail
    // to start rather than run in the default VRF.
    verify::verify(&binding, &subject.cgroup)?;
    Ok(0)
}
