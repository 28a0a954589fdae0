//! vrfexec: run a command inside a Linux VRF.
//!
//! `main.rs` only maps [`run`] to an exit status. The run itself, in order, so that nothing
//! changes before every input has been checked: parse, validate names, check capabilities,
//! resolve the command on PATH, look the VRF up over netlink, then create and join the cgroup,
//! load and attach the program, and exec. A failure after the cgroup was created removes it.
pub mod bpf;
pub mod cgroup;
pub mod check;
pub mod cli;
pub mod error;
pub mod exec;
pub mod fast;
pub mod gc;
pub mod generate;
pub mod identity;
pub mod lock;
pub mod names;
pub mod netlink;
pub mod ping;
pub mod place;
pub mod policy;
pub mod privilege;
pub mod procs;
pub mod route;
pub mod show;
pub mod target;
pub mod verify;

use std::{ffi::OsString, io::Write as _};

use error::{Error, Result};
use target::Target;

/// Runs vrfexec with `argv` (program name first). On success of the exec verb this never
/// returns: the process becomes the command.
pub fn run(argv: Vec<OsString>) -> Result<u8> {
    if fast::STATIC {
        return Err(static_run(&argv));
    }
    let inherited = exec::InheritedFds::snapshot();
    // Policy mode: no capability is effective until a step that needs it (privilege.rs).
    if policy_mode() {
        privilege::lower()?;
    }
    let cli = match cli::parse(argv)? {
        cli::Parsed::Printed => return Ok(0),
        cli::Parsed::Run(cli) => cli,
    };
    let output = match (cli.generate, cli.verb) {
        (Some(kind), _) => generate::generate(&kind)?,
        (None, Some(cli::Verb::Exec(args))) => return Err(exec_verb(&args, &inherited)),
        (None, Some(cli::Verb::Show(args))) => {
            show::run(args.vrf.as_ref(), args.json, &mut open_netlink()?)?.into_bytes()
        }
        (None, Some(cli::Verb::Identify(args))) => {
            procs::identify(args.pid.as_deref(), args.json)?.into_bytes()
        }
        (None, Some(cli::Verb::Pids(args))) => {
            procs::pids(&args.vrf, args.json, &mut open_netlink()?)?.into_bytes()
        }
        (None, Some(cli::Verb::Move(args))) => {
            root_only("move")?;
            procs::move_process(&args.pid, &args.vrf, &Log(args.verbose))?;
            Vec::new()
        }
        (None, Some(cli::Verb::Check(args))) => {
            if args.fix {
                root_only("check --fix")?;
            }
            return check_verb(&args);
        }
        (None, Some(cli::Verb::Attach(args))) => {
            root_only("attach")?;
            let target = route::named_target(&args.vrf, args.dev, "attach", "no attach line")?;
            privilege::check_bpf_capabilities()?;
            let binding = target::resolve(&target, &mut open_netlink()?)?;
            let subject = place::Subject::current()?;
            place::attach_in_place(&subject, &binding, &Log(args.verbose))?;
            // The unit's processes join this cgroup: if its sockets are not bound, the unit
            // must fail to start rather than run in the default VRF.
            verify::verify(&binding, &subject.cgroup)?;
            Vec::new()
        }
        (None, Some(cli::Verb::Gc(args))) => {
            root_only("gc")?;
            gc::run(args.dry_run, &Log(args.verbose || args.dry_run))?;
            Vec::new()
        }
        (None, Some(cli::Verb::Route(args))) => {
            let (text, code) = route::run(
                &args.vrf,
                args.dev,
                &args.dest,
                args.family.family(),
                args.json,
            )?;
            return write_stdout(text.as_bytes()).map(|()| code);
        }
        (None, Some(cli::Verb::Ping(args))) => {
            let status2 = |inner| Error::WithStatus {
                status: 2,
                inner: Box::new(inner),
            };
            let privileged =
                caps::has_cap(None, caps::CapSet::Effective, caps::Capability::CAP_NET_RAW)
                    .unwrap_or(false);
            let options = ping::parse_options(
                args.count.as_deref(),
                args.interval.as_deref(),
                args.timeout.as_deref(),
                args.size.as_deref(),
                args.family.family(),
                args.quiet,
                privileged,
            )
            .map_err(status2)?;
            let code = ping::run(&args.vrf, args.dev, &args.dest, &options).map_err(status2)?;
            return Ok(code);
        }
        (None, None) => return Err(Error::Usage("no verb given".into())),
    };
    write_stdout(&output).map(|()| 0)
}

/// The static build's whole run (see [`fast`]): serve root's short form, hand the rest over.
fn static_run(argv: &[OsString]) -> Error {
    if policy_mode() {
        return fast::refuse_privileged();
    }
    match fast::route(argv, nix::unistd::getuid().is_root()) {
        fast::Route::Serve(args) => exec_verb(&args, &exec::InheritedFds::snapshot()),
        fast::Route::HandOver => fast::hand_over(argv),
    }
}

/// `check [VRF...] [--json] [--fix [--dry-run]]`: exit 0 clean, 1 findings remain.
fn check_verb(args: &cli::CheckArgs) -> Result<u8> {
    let only = args
        .vrfs
        .iter()
        .map(|v| names::validate("VRF", v))
        .collect::<Result<Vec<_>>>()?;
    let mut snapshot = check::collect::snapshot()?;
    for name in &only {
        match snapshot.links.iter().find(|l| &l.name == name) {
            Some(link) if link.is_vrf() => {}
            Some(link) => {
                return Err(Error::NotAVrf {
                    name: name.clone(),
                    kind: link.describe_kind(),
                })
            }
            None => return Err(Error::VrfNotFound(name.clone())),
        }
    }
    let mut applied = Vec::new();
    if args.fix {
        let ops = check::fix::plan(&snapshot, &only);
        let mut commands = Vec::new();
        check::fix::apply(&ops, args.dry_run, &mut commands)?;
        applied = String::from_utf8_lossy(&commands)
            .lines()
            .map(str::to_owned)
            .collect();
        if args.dry_run {
            let text = if args.json {
                serde_json::json!({ "would_run": applied }).to_string() + "\n"
            } else {
                applied.iter().map(|c| format!("{c}\n")).collect()
            };
            return write_stdout(text.as_bytes()).map(|()| 0);
        }
        snapshot = check::collect::snapshot()?;
    }
    let findings = check::analyze(&snapshot, &only);
    let text = if args.json {
        let value = serde_json::json!({ "findings": findings, "applied": applied });
        value.to_string() + "\n"
    } else {
        let mut text: String = applied.iter().map(|c| format!("applied: {c}\n")).collect();
        text.push_str(&check::render_text(&findings, check::vrfs(&snapshot).len()));
        text
    };
    write_stdout(text.as_bytes())?;
    Ok(if check::has_problems(&findings) { 1 } else { 0 })
}

fn write_stdout(output: &[u8]) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(output).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        // `vrfexec show | head -1`: a closed pipe is the reader's choice, not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::os("cannot write to stdout", e)),
    }
}

fn open_netlink() -> Result<netlink::RtNetlink> {
    netlink::RtNetlink::new().map_err(|source| Error::Netlink {
        what: "cannot open a netlink socket",
        source,
    })
}

/// Verbose progress on stderr (`-v`).
pub struct Log(pub bool);

impl Log {
    pub fn step(&self, message: std::fmt::Arguments<'_>) {
        if self.0 {
            eprintln!("vrfexec: {message}");
        }
    }
}

/// Sets up the binding and execs; returns only the error that stopped it.
fn exec_verb(args: &cli::ExecArgs, inherited: &exec::InheritedFds) -> Error {
    let (path, command, identity, binding, vrf_cgroup) = match prepare(args) {
        Ok(prepared) => prepared,
        Err(err) => return err,
    };
    if let Some((identity, mode)) = identity {
        if let Err(err) = identity::drop_to(&identity, mode) {
            return err;
        }
        if mode == identity::DropMode::SwitchUser {
            for (key, value) in identity::user_environment(&identity) {
                // Single-threaded, right before exec: nothing else reads the environment.
                std::env::set_var(key, value);
            }
        }
    }
    // Last, after every privilege change: what the probe sees is what the command gets.
    if let Err(err) = verify::verify(&binding, &vrf_cgroup) {
        return err;
    }
    exec::exec(&path, &command, inherited)
}

/// Whether vrfexec runs with privileges its caller does not have (file capabilities or
/// setuid: the kernel sets AT_SECURE) for a caller who is not root: policy mode.
pub fn policy_mode() -> bool {
    // SAFETY: getauxval only reads the process's auxiliary vector.
    let secure = unsafe { libc::getauxval(libc::AT_SECURE) } != 0;
    secure && !nix::unistd::getuid().is_root()
}

/// Policy mode: may `caller` use `target`? Denials are logged and explained.
///
/// `default` is a VRF like any other here (`allow ... vrf default`, or `*`): leaving a VRF is
/// what a command that root put in one must not do by itself. A caller under `--strict` is
/// refused whatever the target: moving it is exactly what --strict forbids.
fn authorize(target: &Target, caller: &identity::Identity) -> Result<()> {
    let deny = |why: String| {
        policy::log_denial(&format!(
            "denied uid {} ({}): {why}",
            caller.uid, caller.name
        ));
        Error::Refused(why)
    };
    let own = place::Subject::current()?.cgroup;
    if own.rsplit('/').next() == Some(cgroup::STRICT_DIR) && cgroup::vrf_of_path(&own).is_some() {
        return Err(deny(format!(
            "user {} runs under --strict (cgroup {own}), which vrfexec will not move to another VRF",
            caller.name
        )));
    }
    let vrf = match target {
        Target::Device(dev) => {
            return Err(deny(format!(
                "--dev {dev} needs root: the policy grants VRFs only"
            )))
        }
        Target::Default => names::DEFAULT_VRF,
        Target::Vrf(vrf) => vrf.as_str(),
    };
    let policy = policy::Policy::load(std::path::Path::new(policy::POLICY_PATH))
        .map_err(|e| deny(e.to_string()))?;
    let groups = identity::group_names(caller.gid, &caller.groups);
    if policy.allows(&caller.name, &groups, vrf) {
        Ok(())
    } else {
        Err(deny(format!(
            "user {} may not use VRF {vrf}: no rule in {} allows it",
            caller.name,
            policy::POLICY_PATH
        )))
    }
}

/// Verbs that change other processes or the system: never for a policy-mode caller.
fn root_only(verb: &str) -> Result<()> {
    if policy_mode() {
        return Err(Error::Refused(format!(
            "vrfexec {verb} needs root; non-root users may only run commands in the VRFs {} grants",
            policy::POLICY_PATH
        )));
    }
    Ok(())
}

type Prepared = (
    std::path::PathBuf,
    Vec<OsString>,
    Option<(identity::Identity, identity::DropMode)>,
    target::Binding,
    String,
);

fn prepare(args: &cli::ExecArgs) -> Result<Prepared> {
    let log = Log(args.verbose);
    let (vrf_word, command) = args.split()?;
    let target = match (&args.dev, vrf_word) {
        (Some(dev), _) => Target::device(dev)?,
        (None, Some(vrf)) => Target::vrf(vrf)?,
        (None, None) => return Err(Error::Usage("no VRF and command given".into())),
    };
    let policy = policy_mode();
    if policy && args.user.is_some() {
        return Err(Error::Refused(
            "--user needs root; non-root callers always run the command as themselves".into(),
        ));
    }
    if target != Target::Default {
        privilege::check_bpf_capabilities()?;
    }
    let identity = match (&args.user, policy) {
        (Some(user), _) => Some((
            identity::lookup(user, args.group.as_deref())?,
            identity::DropMode::SwitchUser,
        )),
        (None, true) => {
            let caller = identity::caller()?;
            authorize(&target, &caller)?;
            Some((caller, identity::DropMode::KeepCaller))
        }
        (None, false) => None,
    };
    let path = exec::resolve(&command[0])?;
    log.step(format_args!("command: {}", path.display()));

    let binding = match target {
        Target::Default => target::resolve(&target, &mut NoLinks)?,
        _ => target::resolve(&target, &mut open_netlink()?)?,
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
    let subject = place::Subject::current()?;
    let vrf_cgroup = privilege::with(privilege::PLACE, || {
        place::place(&subject, &binding, args.strict, &log)
    })?;
    Ok((path, command.to_vec(), identity, binding, vrf_cgroup))
}

/// The default VRF needs no lookup.
struct NoLinks;

impl netlink::LinkSource for NoLinks {
    fn link_by_name(&mut self, _name: &str) -> std::io::Result<Option<netlink::Link>> {
        Ok(None)
    }

    fn links(&mut self) -> std::io::Result<Vec<netlink::Link>> {
        Ok(Vec::new())
    }
}
