//! vrfexec: run a command inside a Linux VRF.
//!
//! The crate is layered; each layer uses only the ones below it (ARCHITECTURE.md draws one run
//! through them):
//!
//! - [`cli`]: the command line (clap's tree, the help texts, the launcher's hand parser,
//!   `--generate`).
//! - [`run`]: the main job, `vrfexec VRF COMMAND`, as a pipeline (target, policy, identity,
//!   place, verify, exec), and the launcher that hands other work to the full build.
//! - [`verbs`]: show, identify, pids, move, route, ping, gc, check, attach; each has one
//!   `run(args, caller) -> Result<u8>`.
//! - [`vrf`]: what binding a cgroup to a VRF means: target lookup, cgroup layout, the BPF
//!   program, placement, locking, the fail-closed probe.
//! - [`sys`]: rtnetlink, capabilities, interface names, file descriptors.
//! - [`error`] and [`log`]: leaves every layer uses.
//!
//! Two binaries share this library: `src/bin/vrfexec.rs`, the launcher (static when installed,
//! hand parser only, see [`run::launcher`]), and `src/bin/vrfexec-full.rs`, which runs
//! [`run_full`].
pub mod cli;
pub mod error;
pub mod log;
pub mod run;
pub mod sys;
pub mod verbs;
pub mod vrf;

use std::ffi::OsString;

use cli::{Parsed, Verb};
use error::{Error, Result};
use sys::privilege::Caller;

/// The full build: parses `argv` (program name first) with clap and runs the verb. On success
/// of the exec verb this never returns: the process becomes the command.
pub fn run_full(argv: Vec<OsString>) -> Result<u8> {
    // First, before anything opens a file: the descriptors the command must inherit.
    // (Only the exec verb needs it, and fails without it.)
    let inherited = run::exec::InheritedFds::snapshot();
    let caller = Caller::current();
    // Policy mode: no capability is effective until a step that needs it (sys::privilege).
    if caller.policy_mode {
        sys::privilege::lower()?;
    }
    let cli = match cli::parse(argv)? {
        Parsed::Printed => return Ok(0),
        Parsed::Run(cli) => cli,
    };
    if let Some(kind) = cli.generate {
        return verbs::write_stdout(&cli::generate::generate(&kind)?).map(|()| 0);
    }
    match cli.verb {
        Some(Verb::Exec(args)) => Err(match inherited {
            Ok(inherited) => run::run(&args.into(), &caller, &inherited),
            Err(err) => err,
        }),
        Some(Verb::Show(args)) => verbs::show::run(&args, &caller),
        Some(Verb::Identify(args)) => verbs::identify::run(&args, &caller),
        Some(Verb::Pids(args)) => verbs::pids::run(&args, &caller),
        Some(Verb::Move(args)) => verbs::r#move::run(&args, &caller),
        Some(Verb::Route(args)) => verbs::route::run(&args, &caller),
        Some(Verb::Ping(args)) => verbs::ping::run(&args, &caller),
        Some(Verb::Gc(args)) => verbs::gc::run(&args, &caller),
        Some(Verb::Check(args)) => verbs::check::run(&args, &caller),
        Some(Verb::Attach(args)) => verbs::attach::run(&args, &caller),
        Some(Verb::Trace(args)) => verbs::trace::run(args, &caller, inherited?),
        None => Err(Error::Usage("no verb given".into())),
    }
}
