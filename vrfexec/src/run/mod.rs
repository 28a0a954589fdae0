//! The main job, `vrfexec [OPTIONS] VRF COMMAND...`, as a pipeline.
//!
//! [`run`] goes through the steps in this order, so that nothing on the system changes before
//! every input has been checked, and nothing is left behind when a step fails:
//!
//! 1. **target**: the VRF word or `--dev`, names validated ([`crate::vrf::target`]);
//! 2. **policy**: in policy mode, may this caller use the target ([`policy::authorize`]);
//! 3. **identity**: who the command runs as (`--user`, or the policy-mode caller)
//!    ([`identity`]);
//! 4. **command**: resolved on PATH ([`exec::resolve`]);
//! 5. **binding**: the target looked up over netlink;
//! 6. **place**: the VRF cgroup made or joined and its program attached, the one step that
//!    changes the system, with capabilities raised around it ([`crate::vrf::place`]);
//! 7. **etc**: where `/etc/vrf/<VRF>/` exists (it and its targets are checked after step 3),
//!    a private mount namespace with its files over `/etc` ([`crate::vrf::etc`]); this
//!    process only;
//! 8. **drop**: to the identity of step 3;
//! 9. **verify**: new sockets are bound as asked, or exit 125 ([`crate::vrf::verify`]);
//! 10. **exec**: the process becomes the command ([`exec::exec`]).
//!
//! [`launcher`] is the static launcher's half: it serves root's common command lines with this
//! same [`run`] and hands everything else to the full build.
use std::{ffi::OsString, path::PathBuf};

use crate::{
    error::{Error, Result},
    log::Log,
    sys::{
        netlink::{LinkEvents, RtNetlink},
        privilege::{self, Caller},
    },
    vrf::{
        etc::{self, EtcDir},
        place,
        target::{self, Binding, Target},
        verify,
    },
};

pub mod exec;
pub mod identity;
pub mod launcher;
pub mod policy;

/// What the main job was asked to do: the exec verb's arguments, as the launcher's hand parser
/// ([`crate::cli::short`]) or clap ([`crate::cli::ExecArgs`]) read them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `--dev IFACE`: bind to this interface; then `words` has no VRF word.
    pub dev: Option<OsString>,
    pub verbose: bool,
    pub user: Option<OsString>,
    pub group: Option<OsString>,
    pub strict: bool,
    /// `--wait`: how long to wait for the VRF (or device) to appear.
    pub wait: Option<std::time::Duration>,
    /// The VRF word (without `--dev`), then the command and its arguments.
    pub words: Vec<OsString>,
}

impl Request {
    /// Splits the words into (target word, command argv) according to --dev.
    pub fn split(&self) -> Result<(Option<&OsString>, &[OsString])> {
        let (target, command) = if self.dev.is_some() {
            (None, &self.words[..])
        } else {
            match self.words.split_first() {
                Some((vrf, command)) => (Some(vrf), command),
                None => return Err(Error::Usage("no VRF and command given".into())),
            }
        };
        if command.is_empty() {
            return Err(Error::Usage("no command given".into()));
        }
        Ok((target, command))
    }

    /// Step 1: what to bind to.
    fn target(&self) -> Result<(Target, &[OsString])> {
        let (vrf_word, command) = self.split()?;
        let target = match (&self.dev, vrf_word) {
            (Some(dev), _) => Target::device(dev)?,
            (None, Some(vrf)) => Target::vrf(vrf)?,
            (None, None) => return Err(Error::Usage("no VRF and command given".into())),
        };
        Ok((target, command))
    }
}

/// Everything decided before the one step that changes the system.
pub(crate) struct Plan {
    pub(crate) path: PathBuf,
    pub(crate) command: Vec<OsString>,
    identity: Option<(identity::Identity, identity::DropMode)>,
    pub(crate) binding: Binding,
    etc: Option<EtcDir>,
}

/// Runs the pipeline; returns only the error that stopped it (on success the process has
/// become the command).
pub fn run(request: &Request, caller: &Caller, inherited: &exec::InheritedFds) -> Error {
    let log = Log(request.verbose);
    let plan = match plan(request, caller, &log) {
        Ok(plan) => plan,
        Err(err) => return err,
    };
    // Step 6.
    let vrf_cgroup = match place::Subject::current().and_then(|subject| {
        privilege::with(privilege::PLACE, || {
            place::place(&subject, &plan.binding, request.strict, &log)
        })
    }) {
        Ok(path) => path,
        Err(err) => return err,
    };
    if let Err(err) = enter(&plan, &vrf_cgroup, &log) {
        return err;
    }
    // Step 10.
    exec::exec(&plan.path, &plan.command, inherited)
}

/// Steps 7 to 9, in the process that is about to exec (`trace` runs them in its child): the
/// VRF's /etc, the identity, and the fail-closed probe.
pub(crate) fn enter(plan: &Plan, vrf_cgroup: &str, log: &Log) -> Result<()> {
    // Step 7.
    if let Some(dir) = &plan.etc {
        log.step(format_args!(
            "{}: {} over /etc",
            dir.dir.display(),
            etc::describe(dir)
        ));
        privilege::with(privilege::MOUNT, || etc::enter(dir))?;
    }
    // Step 8.
    if let Some((identity, mode)) = &plan.identity {
        identity::drop_to(identity, *mode)?;
        if *mode == identity::DropMode::SwitchUser {
            for (key, value) in identity::user_environment(identity) {
                // Single-threaded, right before exec: nothing else reads the environment.
                std::env::set_var(key, value);
            }
        }
    }
    // Step 9, last, after every privilege change: what the probe sees is what the command
    // gets.
    verify::verify(&plan.binding, vrf_cgroup)
}

/// Step 5 with `--wait`: looks the target up until it exists or `limit` has passed, woken by
/// link notifications.
fn wait_for(target: &Target, limit: std::time::Duration, log: &Log) -> Result<Binding> {
    let deadline = std::time::Instant::now() + limit;
    let events = LinkEvents::subscribe().map_err(|source| Error::Netlink {
        what: "cannot subscribe to link notifications",
        source,
    })?;
    let mut netlink = RtNetlink::open()?;
    let mut said = false;
    loop {
        match target::resolve(target, &mut netlink) {
            Err(Error::VrfNotFound(name) | Error::DeviceNotFound(name)) => {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    return Err(Error::refused(
                        format!("'{name}' did not appear within {} s", limit.as_secs()),
                        "no such device",
                    )
                    .hint("'ip vrf show' lists the VRFs; raise --wait if it comes up later"));
                }
                if !said {
                    log.step(format_args!(
                        "waiting up to {} s for {name}",
                        limit.as_secs()
                    ));
                    said = true;
                }
                events.wait(left).map_err(|source| Error::Netlink {
                    what: "cannot read link notifications",
                    source,
                })?;
            }
            other => return other,
        }
    }
}

/// Steps 1 to 5: nothing changes on the system yet.
pub(crate) fn plan(request: &Request, caller: &Caller, log: &Log) -> Result<Plan> {
    let (target, command) = request.target()?;
    if caller.policy_mode && request.user.is_some() {
        return Err(Error::refused(
            "--user needs root",
            "non-root callers always run the command as themselves",
        ));
    }
    if target != Target::Default {
        privilege::check_bpf_capabilities()?;
    }
    let identity = match (&request.user, caller.policy_mode) {
        (Some(user), _) => Some((
            identity::lookup(user, request.group.as_deref())?,
            identity::DropMode::SwitchUser,
        )),
        (None, true) => {
            let who = identity::caller()?;
            policy::authorize(&target, &who)?;
            Some((who, identity::DropMode::KeepCaller))
        }
        (None, false) => None,
    };
    // After the policy: a caller not allowed the VRF hears that, not about its files.
    let etc = etc::lookup(match &target {
        Target::Vrf(name) | Target::Device(name) => name,
        Target::Default => crate::sys::names::DEFAULT_VRF,
    })?;
    if etc.is_some() {
        privilege::check_mount_capability()?;
    }
    let path = exec::resolve(&command[0])?;
    log.step(format_args!("command: {}", path.display()));

    let binding = match (&target, request.wait) {
        (Target::Default, _) => Binding::UNBOUND,
        (_, None) => target::resolve(&target, &mut RtNetlink::open()?)?,
        (_, Some(limit)) => wait_for(&target, limit, log)?,
    };
    log.step(format_args!(
        "binding: {} ifindex {}{}",
        binding.leaf.as_deref().unwrap_or("default"),
        binding.ifindex,
        binding
            .table
            .map(|t| format!(" table {t}"))
            .unwrap_or_default()
    ));
    Ok(Plan {
        path,
        command: command.to_vec(),
        identity,
        binding,
        etc,
    })
}
