//! `vrfexec attach VRF`: binds the cgroup vrfexec itself runs in to a VRF, for a systemd
//! unit's `ExecCondition=+/usr/bin/vrfexec attach --condition VRF`: the unit's processes are in
//! that cgroup, so every socket they create is bound, from the first `ExecStartPre=` on.
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

/// What systemd's `ExecCondition=` takes as a failure of the unit: exit statuses 1 to 254 there
/// mean "condition not met" and skip the unit without a word, which would hide a unit that does
/// not run in its VRF.
pub const CONDITION_FAILED: u8 = 255;

/// Whether `argv` is `vrfexec attach ... --condition ...`, as the generator writes it: then
/// every failure, including those before `attach` runs (the launcher cannot exec the full
/// build, a usage error), must exit [`CONDITION_FAILED`], not 125, 126 or 127, or systemd
/// would skip the unit without a word.
pub fn is_condition(argv: &[std::ffi::OsString]) -> bool {
    argv.get(1).is_some_and(|verb| verb == "attach")
        && argv.iter().skip(2).any(|arg| arg == "--condition")
}

/// Binds the caller's cgroup. A failure with `--condition` exits [`CONDITION_FAILED`]: both
/// binaries' `main` map it, with [`is_condition`], since they see failures this never does.
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
    let bound = place::attach_in_place(&subject, &binding, &Log(args.verbose))?;
    // The unit's processes are in this cgroup (or below it): if new sockets here are not bound,
    // the unit must fail to start rather than run in the default VRF.
    verify::verify(&binding, &bound)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<std::ffi::OsString> {
        words.iter().map(Into::into).collect()
    }

    #[test]
    fn only_the_attach_verb_with_condition_is_a_condition() {
        assert!(is_condition(&argv(&[
            "vrfexec",
            "attach",
            "--condition",
            "mgmt"
        ])));
        assert!(is_condition(&argv(&[
            "vrfexec",
            "attach",
            "mgmt",
            "--condition"
        ])));
        assert!(!is_condition(&argv(&["vrfexec", "attach", "mgmt"])));
        // A command named attach run in VRF red keeps its own status.
        assert!(!is_condition(&argv(&[
            "vrfexec",
            "red",
            "attach",
            "--condition"
        ])));
        assert!(!is_condition(&argv(&["vrfexec"])));
    }
}
