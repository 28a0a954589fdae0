//! Booting the VM once for one job: qemu (TCG) with the host root over virtio-9p, the console
//! streamed live, a hard timeout, and the verdict taken only from the guest's exit marker
//! `VRFEXEC-VM-EXIT=<status> id=<nonce>`. No marker, a timeout, a kernel panic or a qemu crash
//! is an error.
use std::{
    io::{BufRead as _, BufReader, Read as _, Write as _},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context as _, Result};

use super::{initramfs, kernel::Kernel};

/// What to run in the guest.
pub struct Job {
    /// Run with `bash -c`.
    pub command: String,
    /// The directory to run it in (the host's path; the guest sees the host's tree).
    pub cwd: String,
    /// Extra environment variables for the command.
    pub env: Vec<(String, String)>,
}

/// Which console lines reach the host's stdout.
#[derive(Clone, Copy, PartialEq)]
pub enum Show {
    /// Everything, boot included.
    All,
    /// Only the job's output (the boot is printed only if it fails before the job starts).
    AfterStart,
}

pub struct Outcome {
    /// The job's exit status as reported by the guest.
    pub status: i32,
    /// The console lines the job printed.
    pub output: Vec<String>,
}

/// How long qemu may take to exit after the marker before it is killed.
const POWEROFF_GRACE: Duration = Duration::from_secs(30);

const CMDLINE: &str = "console=ttyS0 panic=-1 oops=panic random.trust_cpu=on mitigations=off \
                       tsc=reliable";
/// Added unless the whole console is shown: keeps boot messages out of the job's output.
const CMDLINE_QUIET: &str = " quiet loglevel=3";

pub fn boot(kernel: &Kernel, job: &Job, timeout: Duration, show: Show) -> Result<Outcome> {
    let nonce = nonce();
    remove_stale_scratch(&kernel.cache);
    let scratch = Scratch::new(kernel.cache.join(format!("run-{nonce}")))?;
    let initrd = scratch.0.join("initramfs.cpio");
    let image = initramfs::build(kernel, job, &nonce)?;
    std::fs::write(&initrd, image)
        .with_context(|| format!("failed to write {}", initrd.display()))?;

    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args(["-accel", "tcg", "-cpu", "max", "-m", "2048", "-smp", "2"])
        .args(["-nodefaults", "-no-user-config", "-nographic", "-no-reboot"])
        .args(["-serial", "stdio", "-monitor", "none", "-nic", "none"])
        .arg("-fsdev")
        .arg("local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap")
        .args(["-device", "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot"])
        .args(["-device", "virtio-rng-pci"])
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
        .arg("-kernel")
        .arg(kernel.vmlinuz())
        .arg("-initrd")
        .arg(&initrd)
        .arg("-append")
        .arg(match show {
            Show::All => CMDLINE.to_owned(),
            Show::AfterStart => format!("{CMDLINE}{CMDLINE_QUIET}"),
        })
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().context(
        "failed to start qemu-system-x86_64 (install the Debian package qemu-system-x86)",
    )?;
    let mut qemu = Qemu(child);
    let stdout = qemu.0.stdout.take().context("qemu has no stdout pipe")?;
    let mut stderr = qemu.0.stderr.take().context("qemu has no stderr pipe")?;

    let (tx, rx) = mpsc::channel::<String>();
    let reader = thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf);
                    let line = line.trim_end_matches(['\n', '\r']).replace('\r', "");
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let stderr_reader = thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });

    let start_marker = format!("VRFEXEC-VM-START id={nonce}");
    let exit_suffix = format!(" id={nonce}");
    let started_at = Instant::now();
    let mut deadline = started_at + timeout;
    let mut boot_log: Vec<String> = Vec::new();
    let mut output: Vec<String> = Vec::new();
    let mut started = false;
    let mut status: Option<i32> = None;
    let mut panic: Option<String> = None;
    let mut timed_out = false;
    let mut held_empty = 0usize;
    let mut out = std::io::stdout();

    loop {
        let now = Instant::now();
        if now >= deadline {
            timed_out = status.is_none();
            break;
        }
        let line = match rx.recv_timeout(deadline - now) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        if line.contains("Kernel panic - not syncing") && panic.is_none() {
            panic = Some(line.trim().to_owned());
        }
        if let Some(code) = exit_status(&line, &exit_suffix) {
            if status.is_none() {
                for _ in 1..held_empty {
                    let _ = writeln!(out);
                }
                status = Some(code);
                deadline = deadline.min(Instant::now() + POWEROFF_GRACE);
            }
            if show == Show::All {
                let _ = writeln!(out, "{line}");
            }
            continue;
        }
        if !started && line.contains(&start_marker) {
            started = true;
            if show == Show::All {
                let _ = writeln!(out, "{line}");
            }
            continue;
        }
        if started && status.is_none() {
            // Empty lines are held back: the one the guest prints before the marker is noise.
            if line.is_empty() {
                held_empty += 1;
                continue;
            }
            for _ in 0..held_empty {
                let _ = writeln!(out);
                output.push(String::new());
            }
            held_empty = 0;
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
            output.push(line);
        } else {
            if show == Show::All {
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
            boot_log.push(line);
        }
    }

    if timed_out || status.is_some() {
        // Timed out, or the guest reported but did not power off in time: kill it.
        qemu.kill();
    }
    let exit = qemu.0.wait().context("failed to wait for qemu")?;
    let _ = reader.join();
    let qemu_stderr = stderr_reader.join().unwrap_or_default();
    let elapsed = started_at.elapsed().as_secs();

    let explain = |what: String| -> anyhow::Error {
        if show != Show::All && !boot_log.is_empty() {
            eprintln!("---- guest console outside the job ----");
            for line in &boot_log {
                eprintln!("{line}");
            }
            eprintln!("---- end of guest console ----");
        }
        if !qemu_stderr.trim().is_empty() {
            eprintln!("---- qemu stderr ----\n{}", qemu_stderr.trim_end());
        }
        anyhow::anyhow!("{what}")
    };
    if timed_out {
        return Err(explain(format!(
            "VM timed out after {} s (qemu killed){}",
            timeout.as_secs(),
            if started {
                ""
            } else {
                "; the job never started"
            }
        )));
    }
    if let Some(line) = panic {
        return Err(explain(format!("the guest kernel panicked: {line}")));
    }
    let Some(status) = status else {
        let why = if started {
            "the job started but the guest stopped without an exit marker"
        } else {
            "the guest stopped before the job started (boot or setup failed)"
        };
        return Err(explain(format!(
            "{why}; qemu exited with {exit} after {elapsed} s"
        )));
    };
    Ok(Outcome { status, output })
}

/// The status of an exit marker line (`VRFEXEC-VM-EXIT=<n> id=<nonce>`), found anywhere in the
/// line in case kernel output got in front of it.
fn exit_status(line: &str, suffix: &str) -> Option<i32> {
    let at = line.find("VRFEXEC-VM-EXIT=")?;
    let rest = &line[at + "VRFEXEC-VM-EXIT=".len()..];
    let (code, tail) = rest.split_once(' ')?;
    if !format!(" {tail}").starts_with(suffix) {
        return None;
    }
    code.parse().ok()
}

fn nonce() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}-{nanos:08x}", std::process::id())
}

/// The qemu process; killed if still running when dropped (error paths, panics).
struct Qemu(Child);

impl Qemu {
    fn kill(&mut self) {
        let _ = self.0.kill();
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Removes `run-<pid>-*` scratch directories whose xtask process is gone (interrupted runs).
fn remove_stale_scratch(cache: &Path) {
    let Ok(entries) = std::fs::read_dir(cache) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("run-"))
            .and_then(|n| n.split('-').next())
        else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A per-boot scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(path: PathBuf) -> Result<Self> {
        std::fs::create_dir_all(&path)
            .with_context(|| format!("failed to create {}", path.display()))?;
        Ok(Self(path))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_markers() {
        let s = " id=12-ab";
        assert_eq!(exit_status("VRFEXEC-VM-EXIT=0 id=12-ab", s), Some(0));
        assert_eq!(
            exit_status("[ 1.0] junkVRFEXEC-VM-EXIT=7 id=12-ab", s),
            Some(7)
        );
        assert_eq!(exit_status("VRFEXEC-VM-EXIT=7 id=99-ab", s), None);
        assert_eq!(exit_status("VRFEXEC-VM-EXIT=x id=12-ab", s), None);
        assert_eq!(exit_status("echo VRFEXEC-VM-EXIT=", s), None);
    }
}
