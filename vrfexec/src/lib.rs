//! vrfexec: run a command inside a Linux VRF.
//!
//! `main.rs` only maps [`run`] to an exit status. The run itself, in order, so that nothing
//! changes before every input has been checked: parse, validate names, check capabilities,
//! resolve the command on PATH, look the VRF up over netlink, then create and join the cgroup,
//! load and attach the program, and exec. A failure after the cgroup was created removes it.
pub mod bpf;
pub mod cgroup;
pub mod cli;
pub mod error;
pub mod exec;
pub mod names;
pub mod netlink;
pub mod privilege;
pub mod target;

use std::{ffi::OsString, os::fd::AsFd as _, process::ExitCode};

use error::{Error, Result};
use target::Target;

/// Runs vrfexec with `argv` (program name first). On success of the exec verb this never
/// returns: the process becomes the command.
pub fn run(argv: Vec<OsString>) -> Result<ExitCode> {
    let inherited = exec::InheritedFds::snapshot();
    match cli::parse(argv)? {
        cli::Parsed::Printed => Ok(ExitCode::SUCCESS),
        cli::Parsed::Run(cli) => match cli.verb {
            cli::Verb::Exec(args) => Err(exec_verb(&args, &inherited)),
        },
    }
}

/// Verbose progress on stderr (`-v`).
struct Log(bool);

impl Log {
    fn step(&self, message: std::fmt::Arguments<'_>) {
        if self.0 {
            eprintln!("vrfexec: {message}");
        }
    }
}

/// Sets up the binding and execs; returns only the error that stopped it.
fn exec_verb(args: &cli::ExecArgs, inherited: &exec::InheritedFds) -> Error {
    match prepare(args) {
        Ok((path, command)) => exec::exec(&path, &command, inherited),
        Err(err) => err,
    }
}

fn prepare(args: &cli::ExecArgs) -> Result<(std::path::PathBuf, Vec<OsString>)> {
    let log = Log(args.verbose);
    let (vrf_word, command) = args.split()?;
    let target = match (&args.dev, vrf_word) {
        (Some(dev), _) => Target::device(dev)?,
        (None, Some(vrf)) => Target::vrf(vrf)?,
        (None, None) => return Err(Error::Usage("no VRF and command given".into())),
    };
    if target != Target::Default {
        privilege::check_bpf_capabilities()?;
    }
    let path = exec::resolve(&command[0])?;
    log.step(format_args!("command: {}", path.display()));

    let binding = match target {
        Target::Default => target::resolve(&target, &mut NoLinks)?,
        _ => {
            let mut netlink = netlink::RtNetlink::new().map_err(|source| Error::Netlink {
                what: "cannot open a netlink socket",
                source,
            })?;
            target::resolve(&target, &mut netlink)?
        }
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

    let own = std::fs::read("/proc/self/cgroup")
        .map_err(|e| Error::os("cannot read /proc/self/cgroup", e))
        .and_then(|text| {
            cgroup::unified_path(&text).map_err(|e| Error::os("cannot parse /proc/self/cgroup", e))
        })?
        .ok_or_else(|| Error::Cgroup {
            what: "cannot find this process's cgroup v2 in",
            path: "/proc/self/cgroup".into(),
            source: std::io::Error::from_raw_os_error(libc::ENOENT),
            hint: "vrfexec needs cgroup v2 (the unified hierarchy)",
        })?;
    let netns = cgroup::current_netns_name();
    let cgroup_path = cgroup::vrf_cgroup(&own, netns.as_deref(), binding.leaf.as_deref());
    let root = cgroup::CgroupRoot::open()?;
    let placement = root.create(&cgroup_path)?;
    log.step(format_args!("cgroup: {}", placement.display().display()));

    if binding.ifindex != 0 {
        let memlock = privilege::raise_memlock_if_needed()?;
        let mut program = bpf::load(binding.ifindex)?;
        let dir = placement.open_dir()?;
        program.attach_legacy(dir.as_fd())?;
        memlock.restore();
        log.step(format_args!(
            "attached cgroup/sock_create (ifindex {})",
            binding.ifindex
        ));
    }
    placement.join()?;
    placement.keep();
    Ok((path, command.to_vec()))
}

/// The default VRF needs no lookup.
struct NoLinks;

impl netlink::LinkSource for NoLinks {
    fn link_by_name(&mut self, _name: &str) -> std::io::Result<Option<netlink::Link>> {
        Ok(None)
    }
}
