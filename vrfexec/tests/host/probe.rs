//! The probe: this test binary re-run as a command under vrfexec. It reports which device each
//! kind of socket is bound to (getsockopt SO_BINDTODEVICE), directly, from a child, from a
//! grandchild, and from a daemon started with a double fork.
use std::{ffi::CStr, fs, io, process::Command};

/// (label, domain, type, protocol): TCP, UDP, raw and ICMP "ping" sockets, IPv4 and IPv6.
const KINDS: &[(&str, i32, i32, i32)] = &[
    ("tcp4", libc::AF_INET, libc::SOCK_STREAM, 0),
    ("udp4", libc::AF_INET, libc::SOCK_DGRAM, 0),
    ("raw4", libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP),
    ("icmp4", libc::AF_INET, libc::SOCK_DGRAM, libc::IPPROTO_ICMP),
    ("tcp6", libc::AF_INET6, libc::SOCK_STREAM, 0),
    ("udp6", libc::AF_INET6, libc::SOCK_DGRAM, 0),
    ("raw6", libc::AF_INET6, libc::SOCK_RAW, libc::IPPROTO_ICMPV6),
    (
        "icmp6",
        libc::AF_INET6,
        libc::SOCK_DGRAM,
        libc::IPPROTO_ICMPV6,
    ),
];

pub const KIND_COUNT: usize = KINDS.len();

fn bound_device(domain: i32, ty: i32, protocol: i32) -> io::Result<String> {
    // SAFETY: plain socket(2) call; the returned fd is closed below.
    let fd = unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, protocol) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut name = [0u8; libc::IFNAMSIZ];
    let mut len = name.len() as libc::socklen_t;
    // SAFETY: name/len describe a writable buffer of IFNAMSIZ bytes.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            name.as_mut_ptr().cast(),
            &mut len,
        )
    };
    let err = io::Error::last_os_error();
    // SAFETY: fd was returned by socket(2) above and is not used after this.
    unsafe { libc::close(fd) };
    if rc < 0 {
        return Err(err);
    }
    let name = CStr::from_bytes_until_nul(&name)
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(if name.is_empty() { "-".into() } else { name })
}

/// "tcp4=d0 udp4=d0 ..." for this process.
pub fn report() -> String {
    KINDS
        .iter()
        .map(|(label, d, t, p)| match bound_device(*d, *t, *p) {
            Ok(dev) => format!("{label}={dev}"),
            Err(e) => format!("{label}=error({e})"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `probe MODE [FILE]`: self, child, grandchild, or daemon (double fork; writes FILE).
pub fn main(args: &[String]) -> i32 {
    let me = match std::env::current_exe() {
        Ok(me) => me,
        Err(e) => {
            eprintln!("probe: {e}");
            return 2;
        }
    };
    let mode = args.first().map(String::as_str).unwrap_or("self");
    match mode {
        "self" => {
            println!("{}", report());
            0
        }
        "child" | "grandchild" => {
            let next = if mode == "grandchild" {
                "child"
            } else {
                "self"
            };
            match Command::new(&me).args(["probe", next]).status() {
                Ok(status) => status.code().unwrap_or(2),
                Err(e) => {
                    eprintln!("probe: {e}");
                    2
                }
            }
        }
        "daemon" => {
            let Some(file) = args.get(1) else { return 2 };
            // SAFETY: the probe is single-threaded here; the children only call
            // async-signal-safe functions until they exec or _exit.
            unsafe {
                match libc::fork() {
                    -1 => return 2,
                    0 => {
                        libc::setsid();
                        match libc::fork() {
                            -1 => libc::_exit(2),
                            0 => {
                                // The daemon: parent and grandparent have exited by now or soon.
                                let _ = fs::write(format!("{file}.tmp"), report());
                                let _ = fs::rename(format!("{file}.tmp"), file);
                                libc::_exit(0);
                            }
                            _ => libc::_exit(0),
                        }
                    }
                    child => {
                        let mut status = 0;
                        libc::waitpid(child, &mut status, 0);
                    }
                }
            }
            0
        }
        "fds" => {
            // The fds this process has open, for the fd-leak check.
            // Every open fd except the one read_dir itself holds on /proc/self/fd.
            let mut fds: Vec<i32> = fs::read_dir("/proc/self/fd")
                .map(|dir| {
                    dir.filter_map(|e| {
                        let e = e.ok()?;
                        let target = fs::read_link(e.path()).ok()?;
                        let t = target.to_string_lossy();
                        if t.starts_with("/proc/") && t.ends_with("/fd") {
                            return None;
                        }
                        e.file_name().to_str()?.parse().ok()
                    })
                    .collect()
                })
                .unwrap_or_default();
            fds.sort();
            println!(
                "{}",
                fds.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
            );
            0
        }
        other => {
            eprintln!("probe: unknown mode {other}");
            2
        }
    }
}
