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
    io,
    os::{
        fd::{AsRawFd as _, RawFd},
        unix::{ffi::OsStrExt as _, fs::PermissionsExt as _},
    },
    path::{Path, PathBuf},
    sync::atomic::{AtomicBool, Ordering},
};

use nix::{
    dir::Dir,
    errno::Errno,
    fcntl::{fcntl, FcntlArg, FdFlag, OFlag},
    sys::stat::Mode,
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

/// The open fds, sorted (a plain vector: this runs twice on every exec, and a set's code
/// costs more than the few fds a launcher has).
fn open_fds() -> io::Result<Vec<RawFd>> {
    let mut dir = Dir::open(
        "/proc/self/fd",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let own = dir.as_raw_fd();
    let mut fds = Vec::new();
    // nix 0.29's iterator calls readdir_r and takes its positive error return for success,
    // so a failed getdents64 looks like the end of the directory. glibc leaves the error in
    // errno as well: clear it before each step and look after the last one.
    let mut entries = dir.iter();
    loop {
        Errno::clear();
        let Some(entry) = entries.next() else { break };
        let entry = entry?;
        if let Some(fd) = entry
            .file_name()
            .to_str()
            .ok()
            .and_then(|name| name.parse::<RawFd>().ok())
        {
            if fd != own {
                fds.push(fd);
            }
        }
    }
    match Errno::last_raw() {
        0 => {}
        errno => return Err(io::Error::from_raw_os_error(errno)),
    }
    fds.sort_unstable();
    Ok(fds)
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

/// Marks close-on-exec every fd that was not open when vrfexec started. Fails if the fds
/// cannot be listed: vrfexec's own (a lock, a cgroup directory) would leak into the command.
fn close_own_fds(inherited: &InheritedFds) -> Result<()> {
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
}
