//! `vrfexec trace VRF COMMAND...`: the command runs as `vrfexec VRF COMMAND` would run it, in
//! a cgroup of its own below the VRF's (`<VRF cgroup>[/strict]/trace:<tracer pid>`), and
//! vrfexec stays its parent, printing what the command's sockets do.
//!
//! The order keeps the trace exact and the run honest:
//! 1. the run's own steps up to placement ([`crate::run::plan`], [`place::place`]): the
//!    tracer joins the VRF cgroup (as `ip vrf exec`'s parent would) and makes the trace cgroup;
//! 2. fork; the child joins the trace cgroup, enters /etc/vrf, drops to `--user`, runs the
//!    fail-closed probe ([`crate::run::enter`]) and says "ready";
//! 3. the tracer loads `vrfexec-trace` (aya: this is not the hot path) and attaches it: cgroup
//!    hooks to the trace cgroup with links, syscall tracepoints filtered by its cgroup id;
//!    the probe's sockets came before, so they are not in the trace;
//! 4. "go": the child execs the command; the tracer reads the ring buffer and a signalfd
//!    until the command exits, forwarding signals, then prints the summary.
//!
//! Cleanup: the links close with the tracer (killed too), which detaches every program; the
//! trace cgroup is removed when the command is gone, or by `vrfexec gc` once the tracer is
//! dead and the cgroup idle.
use std::{
    cell::RefCell,
    collections::HashMap,
    fs,
    io::{self, Read as _, Write as _},
    os::{
        fd::{AsFd as _, AsRawFd as _, OwnedFd},
        unix::{fs::OpenOptionsExt as _, net::UnixStream},
    },
    path::Path,
    time::Instant,
};

use aya::{
    maps::{PerCpuArray, RingBuf},
    programs::{CgroupAttachMode, CgroupSockAddr, TracePoint},
    Ebpf, EbpfLoader,
};
use nix::{
    poll::{poll, PollFd, PollFlags, PollTimeout},
    sys::{
        signal::{kill, sigaction, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal},
        signalfd::{SfdFlags, SignalFd},
        wait::{waitpid, WaitPidFlag, WaitStatus},
    },
    unistd::{fork, ForkResult, Pid},
};

use crate::{
    cli::TraceArgs,
    error::{Error, Result, EXIT_FAILURE},
    log::Log,
    run::{self, exec::InheritedFds, Request},
    sys::{
        privilege::{self, Caller},
        MountNamespaceStep,
    },
    vrf::{
        bpf,
        cgroup::{self, CgroupRoot},
        place,
    },
};

mod event;

use event::{Devices, Event, Summary};

/// The trace cgroup's name, before the tracer's pid (`vrfexec gc` knows it). No interface
/// name holds a ':' (the kernel's dev_valid_name), so no VRF's cgroup is named like it, and
/// `default`'s trace (`.../vrf/trace:<pid>`) is not read as a VRF.
pub const TRACE_PREFIX: &str = cgroup::TRACE_PREFIX;

/// The programs (vrfexec-ebpf/src/trace.rs), built by build.rs with the launcher's.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/vrfexec-trace"));

/// Cgroup hooks: (program, what it shows).
const CGROUP_HOOKS: [&str; 6] = [
    "trace_bind4",
    "trace_bind6",
    "trace_connect4",
    "trace_connect6",
    "trace_sendmsg4",
    "trace_sendmsg6",
];

/// Syscall tracepoints: (program, tracepoint).
const TRACEPOINTS: [(&str, &str); 7] = [
    ("trace_socket_enter", "sys_enter_socket"),
    ("trace_exit", "sys_exit_socket"),
    ("trace_setsockopt_enter", "sys_enter_setsockopt"),
    ("trace_exit", "sys_exit_setsockopt"),
    ("trace_connect_enter", "sys_enter_connect"),
    ("trace_exit", "sys_exit_connect"),
    ("trace_sendmsg_enter", "sys_enter_sendmsg"),
];

/// Tracepoints that follow the command's processes: (program, category, tracepoint).
const FOLLOW: [(&str, &str, &str); 3] = [
    ("trace_fork", "sched", "sched_process_fork"),
    ("trace_exit_task", "sched", "sched_process_exit"),
    ("trace_cgroup_attach", "cgroup", "cgroup_attach_task"),
];

/// Signals passed on to the command (as `timeout`, `sudo` and systemd-run do). A terminal's
/// own signals (si_code SI_KERNEL) already reach the command, which shares its process group.
const FORWARDED: [Signal; 8] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCONT,
];

pub fn run(args: TraceArgs, caller: &Caller, inherited: InheritedFds) -> Result<u8> {
    super::root_only(caller, "trace")?;
    let TraceArgs { output, json, exec } = args;
    let request = Request::from(exec);
    let strict = request.strict;
    let log = Log(request.verbose);
    VERBOSE.store(request.verbose, std::sync::atomic::Ordering::Relaxed);
    let plan = run::plan(&request, caller, &log)?;
    privilege::check_bpf_capabilities()?;
    // After every check that changes nothing, before the first change.
    let mut sink = Sink::open(output.as_deref(), json)?;
    let subject = place::Subject::current()?;
    let vrf_cgroup = privilege::with(privilege::PLACE, || {
        place::place(&subject, &plan.binding, strict, &log)
    })?;
    // Where the run was placed (the VRF's cgroup, or its `strict` child): the trace's goes
    // below it and inherits its programs.
    let placed = place::Subject::current()?.cgroup;
    let trace_cgroup = format!(
        "{}/{TRACE_PREFIX}{}",
        placed.trim_end_matches('/'),
        std::process::id()
    );
    let root = CgroupRoot::open()?;
    // Its own, new: a cgroup of that name left by an earlier tracer (the same pid, reused)
    // is never joined with whatever still runs in it.
    let placement = root.create_new(&trace_cgroup)?;
    let dir = placement.open_dir()?;
    // A cgroup's id, which bpf_get_current_cgroup_id() returns, is its inode number.
    let cgroup_id = nix::sys::stat::fstat(dir.as_raw_fd())
        .map_err(|e| Error::os(format!("cannot stat cgroup {trace_cgroup}"), e.into()))?
        .st_ino;
    log.step(format_args!(
        "trace cgroup: {trace_cgroup} (id {cgroup_id})"
    ));

    let mut mask = SigSet::empty();
    for signal in FORWARDED.iter().chain(&[Signal::SIGCHLD]) {
        mask.add(*signal);
    }
    // A caller that ignores SIGCHLD (exec keeps that) would have the kernel reap the command
    // unseen: the tracer needs the default; the command gets the caller's back.
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    // SAFETY: installs the default disposition, no handler code; single-threaded.
    let old_chld = unsafe { sigaction(Signal::SIGCHLD, &default) }
        .map_err(|e| Error::os("cannot reset SIGCHLD", e.into()))?;
    let old_mask = mask
        .thread_swap_mask(SigmaskHow::SIG_BLOCK)
        .map_err(|e| Error::os("cannot block signals", e.into()))?;
    let (ours, theirs) =
        UnixStream::pair().map_err(|e| Error::os("cannot make a socket pair", e))?;
    let started = Instant::now();
    // SAFETY: vrfexec is single-threaded here (no thread was ever started), so the child may
    // run any code; it ends in exec or _exit.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            drop(ours);
            // SAFETY: restores the caller's disposition (default or ignore: a handler is never
            // inherited across the exec that made this process); single-threaded.
            let err = match unsafe { sigaction(Signal::SIGCHLD, &old_chld) } {
                Ok(_) => child(
                    &plan,
                    &vrf_cgroup,
                    &dir,
                    theirs,
                    &old_mask,
                    &inherited,
                    &log,
                ),
                Err(errno) => Error::os("cannot restore SIGCHLD", errno.into()),
            };
            eprintln!("vrfexec: {err}");
            let _ = io::stderr().flush();
            // SAFETY: _exit ends the child without running the parent's destructors (the
            // trace cgroup's guard belongs to the tracer).
            unsafe { libc::_exit(i32::from(err.exit_code())) }
        }
        Ok(ForkResult::Parent { child }) => {
            drop(theirs);
            let mut command = Command {
                pid: child,
                status: None,
            };
            let mut ours = ours;
            let result = trace(
                &mut command,
                &mut ours,
                &vrf_cgroup,
                &dir,
                cgroup_id,
                &mask,
                &plan,
                strict,
                &mut sink,
                started,
            );
            // A trace that failed before the command ended kills it, before the child could
            // read the closed socket as "the tracer went away".
            drop(command);
            drop(ours);
            // Programs detached (the Ebpf was dropped in `trace`), command reaped: the
            // cgroup goes unless something the command started still runs in it.
            drop(dir);
            let left = (placement.is_populated() == Some(true)).then(|| trace_cgroup.clone());
            drop(placement);
            if let (Ok(_), Some(path)) = (&result, left) {
                sink.note(&format!(
                    "processes the command started still run in cgroup {path}, bound as before; \
                     `vrfexec gc` removes it once they are gone"
                ));
            }
            result
        }
        Err(errno) => {
            let _ = old_mask.thread_set_mask();
            Err(Error::os("cannot fork", errno.into()))
        }
    }
}

/// The child's half: join the trace cgroup, the run's steps 7 to 9, wait for the tracer, exec.
fn child(
    plan: &run::Plan,
    vrf_cgroup: &str,
    dir: &OwnedFd,
    mut tracer: UnixStream,
    old_mask: &SigSet,
    inherited: &InheritedFds,
    log: &Log,
) -> Error {
    if let Err(errno) = old_mask.thread_set_mask() {
        return Error::os("cannot restore the signal mask", errno.into());
    }
    if let Err(source) = cgroup::join_dir(dir, std::process::id()) {
        return Error::os("cannot join the trace cgroup", source);
    }
    if let Err(err) = run::enter(plan, vrf_cgroup, log) {
        return err;
    }
    let mut go = [0u8];
    if tracer.write_all(b"r").is_err() || tracer.read_exact(&mut go).is_err() {
        return Error::refused(
            "trace stopped before the command ran",
            "the tracer went away",
        );
    }
    drop(tracer);
    run::exec::exec(&plan.path, &plan.command, inherited)
}

/// The command's process; killed and reaped if the tracer gives up before it ends.
struct Command {
    pid: Pid,
    status: Option<u8>,
}

impl Command {
    fn reap(&mut self, flags: Option<WaitPidFlag>) -> Option<u8> {
        loop {
            match waitpid(self.pid, flags) {
                Ok(WaitStatus::Exited(_, code)) => {
                    self.status = Some(u8::try_from(code).unwrap_or(255));
                }
                Ok(WaitStatus::Signaled(_, signal, _)) => {
                    self.status = Some(128u8.saturating_add(signal as u8));
                }
                Ok(WaitStatus::StillAlive) => return None,
                Ok(_) => continue,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => self.status = Some(EXIT_FAILURE),
            }
            return self.status;
        }
    }
}

impl Drop for Command {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = kill(self.pid, Signal::SIGKILL);
            let _ = self.reap(None);
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn trace(
    command: &mut Command,
    child: &mut UnixStream,
    vrf_cgroup: &str,
    dir: &OwnedFd,
    cgroup_id: u64,
    mask: &SigSet,
    plan: &run::Plan,
    strict: bool,
    sink: &mut Sink,
    started: Instant,
) -> Result<u8> {
    // 1. The child is ready (probe passed), or it failed and said why.
    let mut ready = [0u8];
    if child.read_exact(&mut ready).is_err() {
        return Ok(command.reap(None).unwrap_or(EXIT_FAILURE));
    }
    // 2. Load and attach.
    let signals = SignalFd::with_flags(mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| Error::os("cannot make a signalfd", e.into()))?;
    let tracefs = ensure_tracefs()?;
    let offsets = match tracefs {
        Tracefs::At(base) => Offsets::read(base),
        Tracefs::Missing(_) => None,
    };
    let memlock = bpf::raise_memlock_if_needed()?;
    let mut ebpf = load(cgroup_id, offsets.as_ref())?;
    attach(
        &mut ebpf,
        dir,
        matches!(tracefs, Tracefs::At(_)),
        offsets.is_some(),
    )?;
    if let Tracefs::Missing(why) = tracefs {
        sink.note(&format!(
            "no syscall tracepoints ({why}): socket creation, setsockopt, Unix connects and \
             IP_PKTINFO are not shown"
        ));
    } else if offsets.is_none() {
        sink.note(
            "no sched/cgroup tracepoints here: processes that leave the cgroup are not shown",
        );
    }
    if offsets.is_some() {
        // The command itself; the programs add what it forks.
        let pid = command.pid.as_raw() as u32;
        ebpf.map_mut("TRACKED")
            .ok_or_else(|| bpf_error("no TRACKED map in the trace object", String::new()))
            .and_then(|map| {
                aya::maps::HashMap::<_, u32, u8>::try_from(map)
                    .and_then(|mut tracked| tracked.insert(pid, 1, 0))
                    .map_err(|e| bpf_error("cannot track the command's pid", e))
            })?;
    }
    let mut ring = ebpf
        .take_map("EVENTS")
        .ok_or_else(|| bpf_error("no EVENTS map in the trace object", String::new()))
        .and_then(|map| {
            RingBuf::try_from(map).map_err(|e| bpf_error("cannot open the ring buffer", e))
        })?;
    memlock.restore();
    let devices = Live::new(plan.binding.ifindex, vrf_cgroup);
    let mut summary = Summary::default();
    // 3. Go.
    child
        .write_all(b"g")
        .map_err(|e| Error::os("cannot start the command", e))?;
    let status = loop {
        let mut fds = [
            PollFd::new(ring.as_fd(), PollFlags::POLLIN),
            PollFd::new(signals.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(errno) => return Err(Error::os("cannot poll", errno.into())),
        }
        drain(&mut ring, &devices, strict, sink, &mut summary);
        let mut exited = None;
        while let Ok(Some(info)) = signals.read_signal() {
            let signo = info.ssi_signo as i32;
            if signo == libc::SIGCHLD {
                exited = exited.or_else(|| command.reap(Some(WaitPidFlag::WNOHANG)));
            } else if info.ssi_code != libc::SI_KERNEL {
                if let Ok(signal) = Signal::try_from(signo) {
                    let _ = kill(command.pid, signal);
                }
            }
        }
        if let Some(status) = exited {
            break status;
        }
    };
    drain(&mut ring, &devices, strict, sink, &mut summary);
    let lost = ebpf
        .map("LOST")
        .and_then(|map| PerCpuArray::<_, u64>::try_from(map).ok())
        .and_then(|lost| lost.get(&0, 0).ok())
        .map(|values| values.iter().sum::<u64>())
        .unwrap_or(0);
    // Detach everything before the summary: nothing is traced any more.
    drop(ring);
    drop(ebpf);
    sink.summary(
        &plan.command[0].to_string_lossy(),
        status,
        started.elapsed(),
        lost,
        &summary,
        &devices,
    );
    Ok(status)
}

fn drain(
    ring: &mut RingBuf<aya::maps::MapData>,
    devices: &Live,
    strict: bool,
    sink: &mut Sink,
    summary: &mut Summary,
) {
    while let Some(item) = ring.next() {
        let Some(event) = event::decode(&item).and_then(|raw| Event::from_raw(&raw)) else {
            continue;
        };
        summary.add(&event, devices, strict);
        sink.event(&event, devices, strict);
    }
}

fn bpf_error(what: &'static str, reason: impl std::fmt::Display) -> Error {
    Error::Bpf {
        what,
        reason: reason.to_string(),
        hint: "trace needs a kernel with BPF ring buffers (5.8 or later) and CAP_BPF/CAP_SYS_ADMIN",
    }
}

fn load(cgroup_id: u64, offsets: Option<&Offsets>) -> Result<Ebpf> {
    let none = Offsets::default();
    let offsets = offsets.unwrap_or(&none);
    EbpfLoader::new()
        .override_global("CGROUP_ID", &cgroup_id, true)
        .override_global("FORK_CHILD_PID", &offsets.fork_child_pid, true)
        .override_global("ATTACH_DST_ROOT", &offsets.attach_dst_root, true)
        .override_global("ATTACH_DST_ID", &offsets.attach_dst_id, true)
        .override_global("ATTACH_PID", &offsets.attach_pid, true)
        .override_global("ATTACH_DST_PATH", &offsets.attach_dst_path, true)
        .override_global("ATTACH_COMM", &offsets.attach_comm, true)
        .load(OBJECT)
        .map_err(|e| bpf_error("cannot load the trace programs", error_chain(&e)))
}

/// aya's errors keep the kernel's reason (and the verifier's log) in their sources. The
/// message keeps the first line; `-v` prints the whole (the verifier's log is many lines).
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    let first = text.lines().next().unwrap_or_default().to_owned();
    if VERBOSE.load(std::sync::atomic::Ordering::Relaxed) && first.len() < text.len() {
        eprintln!("vrfexec: {text}");
    }
    first
}

/// `-v`, for [`error_chain`].
static VERBOSE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn attach(ebpf: &mut Ebpf, dir: &OwnedFd, tracepoints: bool, follow: bool) -> Result<()> {
    for name in CGROUP_HOOKS {
        let program: &mut CgroupSockAddr = ebpf
            .program_mut(name)
            .ok_or_else(|| bpf_error("missing trace program", name))?
            .try_into()
            .map_err(|e| bpf_error("wrong trace program type", e))?;
        program.load().map_err(|e| {
            bpf_error(
                "cannot load a trace program",
                format!("{name}: {}", error_chain(&e)),
            )
        })?;
        program
            .attach(dir.as_fd(), CgroupAttachMode::Single)
            .map_err(|e| Error::Bpf {
                what: "cannot attach a trace program to the trace cgroup",
                reason: format!("{name}: {}", error_chain(&e)),
                hint: "a program above it that allows no others (flags 0) refuses it",
            })?;
    }
    if !tracepoints {
        return Ok(());
    }
    let mut loaded = std::collections::HashSet::new();
    let following = if follow { &FOLLOW[..] } else { &[] };
    for (name, category, tracepoint) in TRACEPOINTS
        .iter()
        .map(|(name, tracepoint)| (*name, "syscalls", *tracepoint))
        .chain(following.iter().copied())
    {
        let program: &mut TracePoint = ebpf
            .program_mut(name)
            .ok_or_else(|| bpf_error("missing trace program", name))?
            .try_into()
            .map_err(|e| bpf_error("wrong trace program type", e))?;
        if loaded.insert(name) {
            program.load().map_err(|e| {
                bpf_error(
                    "cannot load a trace program",
                    format!("{name}: {}", error_chain(&e)),
                )
            })?;
        }
        program.attach(category, tracepoint).map_err(|e| {
            bpf_error(
                "cannot attach a trace program",
                format!("{category}/{tracepoint}: {}", error_chain(&e)),
            )
        })?;
    }
    Ok(())
}

/// Where the tracepoints are, or why there are none.
enum Tracefs {
    At(&'static str),
    Missing(&'static str),
}

/// Makes the syscall tracepoints reachable: tracefs where aya looks for it. Where it is not
/// mounted, the tracer mounts it in a mount namespace of its own (the command keeps the
/// caller's), so nothing stays mounted.
fn ensure_tracefs() -> Result<Tracefs> {
    const TRACEFS: &str = "/sys/kernel/tracing";
    const DEBUGFS: &str = "/sys/kernel/debug/tracing";
    const NO_SYSCALLS: &str = "this kernel is built without CONFIG_FTRACE_SYSCALLS";
    let has_events = |base: &str| Path::new(base).join("events/syscalls").is_dir();
    for base in [TRACEFS, DEBUGFS] {
        if has_events(base) {
            return Ok(Tracefs::At(base));
        }
    }
    if Path::new(TRACEFS).join("events").is_dir() {
        return Ok(Tracefs::Missing(NO_SYSCALLS));
    }
    use nix::mount::{mount, MsFlags};
    crate::sys::private_mount_namespace().map_err(|(step, e)| match step {
        MountNamespaceStep::Unshare => {
            Error::os("cannot make a mount namespace for tracefs", e.into())
        }
        MountNamespaceStep::Slave => Error::os("cannot make the tracer's mounts private", e.into()),
    })?;
    match mount(
        Some("tracefs"),
        TRACEFS,
        Some("tracefs"),
        MsFlags::empty(),
        None::<&str>,
    ) {
        Ok(()) if has_events(TRACEFS) => Ok(Tracefs::At(TRACEFS)),
        Ok(()) => Ok(Tracefs::Missing(NO_SYSCALLS)),
        Err(_) => Ok(Tracefs::Missing("tracefs cannot be mounted")),
    }
}

/// Where the tracepoints that follow the command's processes read their fields, from the
/// events' `format` files (their layout changed between kernels).
#[derive(Debug, Default, PartialEq, Eq)]
struct Offsets {
    fork_child_pid: u32,
    attach_dst_root: u32,
    attach_dst_id: u32,
    attach_pid: u32,
    attach_dst_path: u32,
    attach_comm: u32,
}

impl Offsets {
    fn read(tracefs: &str) -> Option<Self> {
        let format = |category: &str, event: &str| {
            fs::read_to_string(format!("{tracefs}/events/{category}/{event}/format")).ok()
        };
        let fork = format("sched", "sched_process_fork")?;
        let attach = format("cgroup", "cgroup_attach_task")?;
        Some(Offsets {
            fork_child_pid: field_offset(&fork, "child_pid")?,
            attach_dst_root: field_offset(&attach, "dst_root")?,
            attach_dst_id: field_offset(&attach, "dst_id")?,
            attach_pid: field_offset(&attach, "pid")?,
            attach_dst_path: field_offset(&attach, "dst_path")?,
            attach_comm: field_offset(&attach, "comm")?,
        })
    }
}

/// A field's offset in a tracepoint's `format` text: lines like
/// `field:__data_loc char[] dst_path;\toffset:28;\tsize:4;\tsigned:0;`.
fn field_offset(format: &str, name: &str) -> Option<u32> {
    format.lines().find_map(|line| {
        let mut parts = line.trim().split(';');
        let declaration = parts.next()?.strip_prefix("field:")?;
        let declared = declaration.rsplit(' ').next()?;
        let declared = declared.split('[').next()?;
        if declared != name {
            return None;
        }
        parts
            .find_map(|p| p.trim().strip_prefix("offset:"))?
            .parse()
            .ok()
    })
}

/// Device names and VRF membership, read from the system as events come in.
struct Live {
    target: u32,
    /// The VRF's cgroup: a process moved below it stays bound.
    vrf_cgroup: String,
    names: RefCell<HashMap<u32, Option<String>>>,
    masters: RefCell<HashMap<u32, Option<u32>>>,
}

impl Live {
    fn new(target: u32, vrf_cgroup: &str) -> Self {
        Live {
            target,
            vrf_cgroup: vrf_cgroup.trim_end_matches('/').to_owned(),
            names: RefCell::default(),
            masters: RefCell::default(),
        }
    }

    /// The VRF a device is enslaved to (/sys/class/net/DEV/master).
    fn master(&self, ifindex: u32) -> Option<u32> {
        *self.masters.borrow_mut().entry(ifindex).or_insert_with(|| {
            let name = self.name(ifindex)?;
            let link = fs::read_link(format!("/sys/class/net/{name}/master")).ok()?;
            let master = link.file_name()?.to_str()?.to_owned();
            nix::net::if_::if_nametoindex(master.as_str()).ok()
        })
    }
}

impl Devices for Live {
    fn target(&self) -> u32 {
        self.target
    }

    fn name(&self, ifindex: u32) -> Option<String> {
        self.names
            .borrow_mut()
            .entry(ifindex)
            .or_insert_with(|| {
                nix::net::if_::if_indextoname(ifindex)
                    .ok()
                    .map(|name| name.to_string_lossy().into_owned())
            })
            .clone()
    }

    fn in_target(&self, ifindex: u32) -> bool {
        ifindex == self.target || (self.target != 0 && self.master(ifindex) == Some(self.target))
    }

    fn in_target_cgroup(&self, cgroup: &str) -> bool {
        event::below(cgroup, &self.vrf_cgroup)
    }
}

/// Where the trace goes: stderr or `--output FILE`, as text or JSON lines.
struct Sink {
    out: Box<dyn io::Write>,
    json: bool,
}

impl Sink {
    fn open(path: Option<&Path>, json: bool) -> Result<Self> {
        let out: Box<dyn io::Write> = match path {
            // Root writes it: never through a symbolic link someone planted there.
            Some(path) => Box::new(io::LineWriter::new(
                fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(path)
                    .map_err(|e| Error::os(format!("cannot create {}", path.display()), e))?,
            )),
            None => Box::new(io::stderr()),
        };
        Ok(Sink { out, json })
    }

    fn line(&mut self, text: &str) {
        // A reader that went away must not stop the command or its trace.
        let _ = writeln!(self.out, "{text}");
    }

    fn note(&mut self, text: &str) {
        if self.json {
            let line = serde_json::json!({ "event": "note", "text": text }).to_string();
            self.line(&line);
        } else {
            self.line(&format!("trace: {text}"));
        }
    }

    fn event(&mut self, event: &Event, devices: &dyn Devices, strict: bool) {
        let line = if self.json {
            event.json(devices).to_string()
        } else {
            format!("trace: {}", event.line(devices, strict))
        };
        self.line(&line);
    }

    fn summary(
        &mut self,
        command: &str,
        status: u8,
        took: std::time::Duration,
        lost: u64,
        summary: &Summary,
        devices: &dyn Devices,
    ) {
        if self.json {
            let mut object = summary.json(devices);
            if let serde_json::Value::Object(fields) = &mut object {
                fields.insert("event".into(), "summary".into());
                fields.insert("command".into(), command.into());
                fields.insert("status".into(), status.into());
                fields.insert("seconds".into(), took.as_secs_f64().into());
                fields.insert("lost".into(), lost.into());
            }
            let line = object.to_string();
            self.line(&line);
        } else {
            self.line(&format!(
                "trace: {command} exited with status {status} after {:.2} s",
                took.as_secs_f64()
            ));
            for line in summary.lines(devices) {
                self.line(&format!("trace: {line}"));
            }
            if lost > 0 {
                self.line(&format!(
                    "trace: {lost} events lost (the ring buffer was full)"
                ));
            }
        }
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_offsets_come_from_either_format_layout() {
        // Linux 6.18 (comm as __data_loc) and 5.10 (comm inline).
        let new = "name: sched_process_fork\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\n\tfield:__data_loc char[] parent_comm;\toffset:8;\tsize:4;\tsigned:0;\n\tfield:pid_t parent_pid;\toffset:12;\tsize:4;\tsigned:1;\n\tfield:pid_t child_pid;\toffset:20;\tsize:4;\tsigned:1;\n";
        let old = "\tfield:char parent_comm[16];\toffset:8;\tsize:16;\tsigned:0;\n\tfield:pid_t parent_pid;\toffset:24;\tsize:4;\tsigned:1;\n\tfield:char child_comm[16];\toffset:28;\tsize:16;\tsigned:0;\n\tfield:pid_t child_pid;\toffset:44;\tsize:4;\tsigned:1;\n";
        assert_eq!(field_offset(new, "child_pid"), Some(20));
        assert_eq!(field_offset(old, "child_pid"), Some(44));
        assert_eq!(field_offset(old, "child_comm"), Some(28));
        assert_eq!(field_offset(old, "pid"), None);
        let attach = "\tfield:int dst_root;\toffset:8;\tsize:4;\tsigned:1;\n\tfield:u64 dst_id;\toffset:16;\tsize:8;\tsigned:0;\n\tfield:int pid;\toffset:24;\tsize:4;\tsigned:1;\n\tfield:__data_loc char[] dst_path;\toffset:28;\tsize:4;\tsigned:0;\n";
        assert_eq!(field_offset(attach, "dst_path"), Some(28));
        assert_eq!(field_offset(attach, "pid"), Some(24));
        assert_eq!(field_offset(attach, "dst_root"), Some(8));
    }
}
