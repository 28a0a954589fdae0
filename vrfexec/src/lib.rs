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
pub mod gc;
pub mod generate;
pub mod names;
pub mod netlink;
pub mod ping;
pub mod place;
pub mod privilege;
pub mod procs;
pub mod route;
pub mod show;
pub mod target;

use std::{ffi::OsString, io::Write as _, process::ExitCode};

use error::{Error, Result};
use target::Target;

/// Runs vrfexec with `argv` (program name first). On success of the exec verb this never
/// returns: the process becomes the command.
pub fn run(argv: Vec<OsString>) -> Result<ExitCode> {
    let inherited = exec::InheritedFds::snapshot();
    let cli = match cli::parse(argv)? {
        cli::Parsed::Printed => return Ok(ExitCode::SUCCESS),
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
            procs::move_process(&args.pid, &args.vrf, &Log(args.verbose))?;
            Vec::new()
        }
        (None, Some(cli::Verb::Check(args))) => return check_verb(&args),
        (None, Some(cli::Verb::Gc(args))) => {
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
            return write_stdout(text.as_bytes()).map(|()| ExitCode::from(code));
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
            return Ok(ExitCode::from(code));
        }
        (None, None) => return Err(Error::Usage("no verb given".into())),
    };
    write_stdout(&output).map(|()| ExitCode::SUCCESS)
}

/// `check [VRF...] [--json] [--fix [--dry-run]]`: exit 0 clean, 1 findings remain.
fn check_verb(args: &cli::CheckArgs) -> Result<ExitCode> {
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
            return write_stdout(text.as_bytes()).map(|()| ExitCode::SUCCESS);
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
    Ok(if check::has_problems(&findings) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
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
    place::place(&place::Subject::current()?, &binding, &log)?;
    Ok((path, command.to_vec()))
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
