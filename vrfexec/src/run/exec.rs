//! Replacing vrfexec with the command, leaving everything of the caller's as it was.
//!
//! The command is looked up on PATH (as execvp(3) does) *before* vrfexec creates a cgroup or
//! loads a program, so a missing command (127) or one that cannot run (126) leaves nothing
//! behind. argv, environment, cwd, stdin/stdout/stderr and the fds the caller passed (systemd
//! socket activation, `3>file`) reach the command unchanged; any fd vrfexec itself opened is
//! closed by exec. SIGPIPE's disposition is recorded before `main` and restored right before
//! exec, so `vrfexec red yes | head` ends as it would without vrfexec, whatever ran in between
//! (a Rust `main` ignores SIGPIPE; vrfexec's C `main` avoids that, this keeps it so).
use std::{
    env,
    ffi::{CString, OsStr, OsString},
    fs, io,
    os::{
        fd::{AsRawFd as _, RawFd},
        unix::{
            ffi::OsStrExt as _,
            fs::{OpenOptionsExt as _, PermissionsExt as _},
        },
    },
    path::{Path, PathBuf},
    sync::atomic::{AtomicBool, Ordering},
};

use nix::{
    errno::Errno,
    fcntl::{fcntl, FcntlArg, FdFlag},
};

use crate::error::{Error, Result};

/// PATH when none is set, as glibc's execvp uses (confstr _CS_PATH).
const DEFAULT_PATH: &str = "/bin:/usr/bin";

/// Whether SIGPIPE was ignored when the process started.
static SIGPIPE_WAS_IGNORED: AtomicBool = AtomicBool::new(false);

extern "C" fn record_sigpipe() {
    // SAFETY: sigaction with a NULL new action only reads the current disposition into `old`,
    // a zeroed, properly sized struct owned by this frame.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut old) == 0 {
            SIGPIPE_WAS_IGNORED.store(old.sa_sigaction == libc::SIG_IGN, Ordering::Relaxed);
        }
    }
}

// Runs from .init_array, before `main`.
#[used]
#[link_section = ".init_array"]
static RECORD_SIGPIPE: extern "C" fn() = record_sigpipe;

/// The fds open when vrfexec started: the caller's, to be passed on (sorted).
pub struct InheritedFds(Vec<RawFd>);

impl InheritedFds {
    /// Fails if /proc/self/fd cannot be read: without the list, exec could not tell the
    /// caller's fds from vrfexec's own, and would close the command's stdin, stdout and stderr.
    pub fn snapshot() -> Result<Self> {
        open_fds().map(Self).map_err(|e| {
            Error::os("cannot list the open file descriptors (/proc/self/fd)", e)
                .hint("mount /proc; nothing was run")
        })
    }
}

/// The open fds, sorted (a plain vector: the few fds a launcher has cost less in one than in
/// a set's code). /proc/self/fd is read with getdents64(2) on a plain fd: open, getdents64
/// until it returns 0, close; opendir(3) would add an fstat, two fcntl and an lseek.
fn open_fds() -> io::Result<Vec<RawFd>> {
    let dir = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open("/proc/self/fd")?;
    let own = dir.as_raw_fd();
    let mut fds = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: getdents64 writes at most `buf.len()` bytes into `buf`, which this frame
        // owns, and reads nothing else; `dir` is an open directory fd for the whole call.
        let read = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                own,
                buf.as_mut_ptr().cast::<libc::c_void>(),
                buf.len(),
            )
        };
        let read = usize::try_from(read).map_err(|_| io::Error::last_os_error())?;
        if read == 0 {
            break;
        }
        for name in dirent_names(buf.get(..read).unwrap_or_default())? {
            if let Some(fd) = parse_fd(name).filter(|fd| *fd != own) {
                fds.push(fd);
            }
        }
    }
    fds.sort_unstable();
    Ok(fds)
}

/// The names in a getdents64(2) buffer: `struct linux_dirent64` records, each `d_ino` (8
/// bytes), `d_off` (8), `d_reclen` (2), `d_type` (1), then the NUL-terminated name, padded
/// to `d_reclen`.
fn dirent_names(buf: &[u8]) -> io::Result<Vec<&[u8]>> {
    const NAME_AT: usize = 19;
    let malformed = || io::Error::new(io::ErrorKind::InvalidData, "malformed getdents64 record");
    let mut names = Vec::new();
    let mut rest = buf;
    while !rest.is_empty() {
        let reclen = match rest.get(16..18) {
            Some(&[low, high]) => usize::from(u16::from_ne_bytes([low, high])),
            _ => return Err(malformed()),
        };
        let record = rest
            .get(..reclen)
            .filter(|record| record.len() > NAME_AT)
            .ok_or_else(malformed)?;
        let name = &record[NAME_AT..];
        names.push(name.split(|b| *b == 0).next().unwrap_or(name));
        rest = &rest[reclen..];
    }
    Ok(names)
}

/// An fd number from its /proc/self/fd name (not `.` or `..`).
fn parse_fd(name: &[u8]) -> Option<RawFd> {
    std::str::from_utf8(name).ok()?.parse().ok()
}

/// Finds `command` like execvp(3): a name with '/' is used as it is, others are searched on
/// PATH. Not found is 127; found but not executable (and nothing better later on PATH) is 126.
pub fn resolve(command: &OsStr) -> Result<PathBuf> {
    if command.is_empty() {
        return Err(Error::CommandNotFound(command.to_owned()));
    }
    if command.as_bytes().contains(&b'/') {
        let path = PathBuf::from(command);
        return match check_executable(&path) {
            Ok(()) => Ok(path),
            Err(source) => {
                let not_found = source.kind() == io::ErrorKind::NotFound;
                Err(Error::CannotRun {
                    path,
                    source,
                    not_found,
                })
            }
        };
    }
    let search = env::var_os("PATH").unwrap_or_else(|| OsString::from(DEFAULT_PATH));
    let mut denied = None;
    for dir in env::split_paths(&search) {
        // An empty PATH entry means the current directory.
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        let candidate = dir.join(command);
        match check_executable(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {}
            Err(e) => {
                denied.get_or_insert((candidate, e));
            }
        }
    }
    match denied {
        Some((path, source)) => Err(Error::CannotRun {
            path,
            source,
            not_found: false,
        }),
        None => Err(Error::CommandNotFound(command.to_owned())),
    }
}

fn check_executable(path: &Path) -> io::Result<()> {
    let meta = path.metadata()?;
    if meta.is_dir() {
        return Err(io::Error::from_raw_os_error(libc::EISDIR));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(io::Error::from_raw_os_error(libc::EACCES));
    }
    nix::unistd::access(path, nix::unistd::AccessFlags::X_OK).map_err(io::Error::from)
}

/// Replaces the process with `path`, argv `argv` (argv[0] as the user typed it). Only returns
/// on failure.
pub fn exec(path: &Path, argv: &[OsString], inherited: &InheritedFds) -> Error {
    if let Err(err) = close_own_fds(inherited) {
        return err;
    }
    restore_sigpipe();
    let errno = execv(path, argv);
    if errno == Errno::ENOEXEC {
        // execvp(3): a file without a #! line is run by the shell.
        let mut shell_argv = vec![OsString::from("/bin/sh"), path.as_os_str().to_owned()];
        shell_argv.extend(argv.iter().skip(1).cloned());
        let _ = execv(Path::new("/bin/sh"), &shell_argv);
    }
    Error::CannotRun {
        path: path.to_owned(),
        source: io::Error::from(errno),
        not_found: errno == Errno::ENOENT,
    }
}

/// execv(2) with Rust strings; returns only the error. A NUL byte inside a string (which argv
/// and paths from the kernel cannot hold) is EINVAL.
pub(crate) fn execv(path: &Path, argv: &[OsString]) -> Errno {
    let to_c = |s: &OsStr| CString::new(s.as_bytes());
    let (Ok(c_path), Ok(c_argv)) = (
        to_c(path.as_os_str()),
        argv.iter().map(|a| to_c(a)).collect::<Result<Vec<_>, _>>(),
    ) else {
        return Errno::EINVAL;
    };
    match nix::unistd::execv(&c_path, &c_argv) {
        Err(errno) => errno,
        Ok(never) => match never {},
    }
}

/// Gives SIGPIPE back the disposition the caller gave vrfexec (call right before exec).
pub(crate) fn restore_sigpipe() {
    if !SIGPIPE_WAS_IGNORED.load(Ordering::Relaxed) {
        // SAFETY: restoring the default disposition installs no handler code; vrfexec is
        // single-threaded and about to exec.
        let _ = unsafe {
            nix::sys::signal::signal(
                nix::sys::signal::Signal::SIGPIPE,
                nix::sys::signal::SigHandler::SigDfl,
            )
        };
    }
}

/// Marks close-on-exec every fd that was not open when vrfexec started: with close_range(2)
/// and CLOSE_RANGE_CLOEXEC (Linux 5.11) over each range of numbers between the caller's fds,
/// with no listing; where that is refused (older kernels: EINVAL), each fd found in
/// /proc/self/fd that the caller did not pass. Fails if the fds cannot be listed then:
/// vrfexec's own (a lock, a cgroup directory) would leak into the command.
fn close_own_fds(inherited: &InheritedFds) -> Result<()> {
    if mark_others_cloexec(&inherited.0).is_ok() {
        return Ok(());
    }
    let open = open_fds().map_err(|e| {
        Error::os("cannot list the open file descriptors (/proc/self/fd)", e)
            .hint("nothing was run")
    })?;
    for fd in open
        .iter()
        .filter(|fd| inherited.0.binary_search(fd).is_err())
    {
        if let Ok(flags) = fcntl(*fd, FcntlArg::F_GETFD) {
            let flags = FdFlag::from_bits_truncate(flags) | FdFlag::FD_CLOEXEC;
            let _ = fcntl(*fd, FcntlArg::F_SETFD(flags));
        }
    }
    Ok(())
}

/// close_range(first, last, CLOSE_RANGE_CLOEXEC) on every gap in `keep` (sorted) and past its
/// end. An error leaves some ranges marked and others not; the caller then marks the rest.
fn mark_others_cloexec(keep: &[RawFd]) -> io::Result<()> {
    let mut first: u32 = 0;
    for &fd in keep {
        let fd = u32::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
        if fd > first {
            close_range_cloexec(first, fd - 1)?;
        }
        first = fd.saturating_add(1);
    }
    close_range_cloexec(first, u32::MAX)
}

fn close_range_cloexec(first: u32, last: u32) -> io::Result<()> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets a flag on fds in the range; no
    // fd is closed and no memory is touched.
    let rc = unsafe { libc::close_range(first, last, libc::CLOSE_RANGE_CLOEXEC as libc::c_int) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_on_path_and_reports_missing_commands() {
        let sh = resolve(OsStr::new("sh")).expect("sh is on PATH");
        assert!(sh.ends_with("sh"));
        let err = resolve(OsStr::new("vrfexec-no-such-command")).expect_err("missing");
        assert_eq!(err.exit_code(), 127);
        assert_eq!(
            err.to_string(),
            "vrfexec-no-such-command: command not found"
        );
    }

    #[test]
    fn paths_with_slash_are_checked_as_given() {
        assert!(resolve(OsStr::new("/bin/sh")).is_ok());
        assert_eq!(
            resolve(OsStr::new("/nonexistent/x"))
                .expect_err("missing")
                .exit_code(),
            127
        );
        // A directory and a non-executable file exist but cannot run: 126.
        assert_eq!(resolve(OsStr::new("/")).expect_err("dir").exit_code(), 126);
        let file = env::temp_dir().join(format!("vrfexec-noexec-{}", std::process::id()));
        std::fs::write(&file, "#!/bin/sh\n").expect("write");
        let err = resolve(file.as_os_str()).expect_err("not executable");
        std::fs::remove_file(&file).expect("cleanup");
        assert_eq!(err.exit_code(), 126);
    }

    #[test]
    fn snapshot_lists_exactly_the_open_fds() {
        // A high fd number that no other test thread is handed meanwhile (the kernel gives the
        // lowest free one).
        const HIGH: RawFd = 900;
        let file = std::fs::File::open("/proc/self/stat").expect("open");
        nix::unistd::dup2(file.as_raw_fd(), HIGH).expect("dup2");
        let with = InheritedFds::snapshot().expect("snapshot").0;
        nix::unistd::close(HIGH).expect("close");
        let without = InheritedFds::snapshot().expect("snapshot").0;
        assert!(with.contains(&HIGH), "{HIGH} missing from {with:?}");
        assert!(
            !without.contains(&HIGH),
            "{HIGH} closed but listed: {without:?}"
        );
        assert!(with.windows(2).all(|w| w[0] < w[1]), "not sorted: {with:?}");
        assert!(with.contains(&file.as_raw_fd()));
    }

    fn dirent(name: &str) -> Vec<u8> {
        let reclen = (19 + name.len() + 1).next_multiple_of(8);
        let mut record = vec![0u8; reclen];
        record[16..18].copy_from_slice(&u16::try_from(reclen).expect("small").to_ne_bytes());
        record[19..19 + name.len()].copy_from_slice(name.as_bytes());
        record
    }

    #[test]
    fn getdents64_records_are_read_and_bad_ones_refused() {
        let buf: Vec<u8> = [".", "..", "0", "17", "1023"]
            .iter()
            .flat_map(|name| dirent(name))
            .collect();
        let names = dirent_names(&buf).expect("well formed");
        let fds: Vec<_> = names.iter().filter_map(|name| parse_fd(name)).collect();
        assert_eq!(fds, [0, 17, 1023]);
        assert_eq!(names.len(), 5);
        // A record length of 0 would loop for ever; one past the end reads beyond the data.
        let mut zero = dirent("3");
        zero[16..18].fill(0);
        assert!(dirent_names(&zero).is_err());
        let whole = dirent("3");
        assert!(dirent_names(&whole[..whole.len() - 1]).is_err());
        assert!(dirent_names(&whole[..10]).is_err());
    }

    #[test]
    fn every_fd_but_the_kept_ones_is_marked_close_on_exec() {
        // High numbers no other test thread is handed meanwhile; a gap (701) and a run (702,
        // 703) among them. Checked in a child: marking the test process's own fds would
        // change what other tests' children inherit.
        const KEPT: [RawFd; 3] = [700, 702, 703];
        const OTHER: [RawFd; 2] = [701, 704];
        let file = std::fs::File::open("/proc/self/stat").expect("open");
        for fd in KEPT.iter().chain(&OTHER) {
            nix::unistd::dup2(file.as_raw_fd(), *fd).expect("dup2");
        }
        // dup gives the lowest free number, without close-on-exec: one in the gap below 700.
        let low = nix::unistd::dup(file.as_raw_fd()).expect("dup");
        assert!(low < 700, "fd {low}");
        let cloexec = |fd| {
            fcntl(fd, FcntlArg::F_GETFD)
                .is_ok_and(|flags| FdFlag::from_bits_truncate(flags).contains(FdFlag::FD_CLOEXEC))
        };
        // SAFETY: the child only makes syscalls (fcntl, close_range) and _exits; it allocates
        // nothing and takes no lock another thread may hold.
        let status = match unsafe { libc::fork() } {
            0 => {
                let code = match mark_others_cloexec(&[0, 1, 2, 700, 702, 703]) {
                    // Older kernels (EINVAL: no CLOSE_RANGE_CLOEXEC; ENOSYS: before 5.9) or a
                    // seccomp filter (EPERM): close_own_fds lists /proc/self/fd instead.
                    Err(e)
                        if matches!(
                            e.raw_os_error(),
                            Some(libc::EINVAL | libc::ENOSYS | libc::EPERM)
                        ) =>
                    {
                        3
                    }
                    Err(_) => 2,
                    // `low` sits in the gap below 700, 701 between kept fds, 704 past them.
                    Ok(())
                        if KEPT.iter().all(|fd| !cloexec(*fd))
                            && OTHER.iter().all(|fd| cloexec(*fd))
                            && cloexec(low)
                            && !cloexec(1) =>
                    {
                        0
                    }
                    Ok(()) => 1,
                };
                // SAFETY: ends the forked child without running the parent's exit handlers.
                unsafe { libc::_exit(code) }
            }
            -1 => panic!("fork: {}", io::Error::last_os_error()),
            child => {
                let mut status = 0;
                // SAFETY: waits for the child just forked; `status` is a valid out pointer.
                unsafe { libc::waitpid(child, &mut status, 0) };
                status
            }
        };
        for fd in KEPT.iter().chain(&OTHER).chain(&[low]) {
            let _ = nix::unistd::close(*fd);
        }
        match libc::WEXITSTATUS(status) {
            0 => {}
            3 => eprintln!(
                "SKIP: close_range(CLOSE_RANGE_CLOEXEC) is refused here (Linux < 5.11, or seccomp)"
            ),
            code => panic!("child reported {code} (1: wrong flags, 2: close_range failed)"),
        }
    }
}
