//! Validation of device names given on the command line.
//!
//! A VRF or device name becomes a cgroup directory name (`.../vrf/NAME`), so anything that could
//! make it a different path must be refused before it reaches the filesystem. The rules are the
//! kernel's own for interface names (`dev_valid_name()` in net/core/dev.c): 1 to 15 bytes
//! (IFNAMSIZ - 1), not "." or "..", no '/', ':' or whitespace; we also refuse NUL and control
//! characters, which the kernel cannot receive anyway.
use std::{ffi::OsStr, os::unix::ffi::OsStrExt};

use crate::error::{Error, Result};

/// Longest interface name the kernel accepts (IFNAMSIZ - 1).
pub const MAX_NAME_LEN: usize = 15;

/// The VRF word meaning "no VRF" (as in `ip vrf exec default`).
pub const DEFAULT_VRF: &str = "default";

/// Checks `name` and returns it as a String (interface names are ASCII in practice, but any
/// valid UTF-8 the kernel accepts passes).
pub fn validate(what: &'static str, name: &OsStr) -> Result<String> {
    let bytes = name.as_bytes();
    let invalid = |reason| Error::InvalidName {
        what,
        name: name.to_string_lossy().into_owned(),
        reason,
    };
    if bytes.is_empty() {
        return Err(invalid("it is empty"));
    }
    if bytes.len() > MAX_NAME_LEN {
        return Err(invalid("longer than 15 bytes (IFNAMSIZ)"));
    }
    if bytes == b"." || bytes == b".." {
        return Err(invalid("'.' and '..' are not device names"));
    }
    for &b in bytes {
        match b {
            b'/' => return Err(invalid("contains '/'")),
            b':' => return Err(invalid("contains ':'")),
            0 => return Err(invalid("contains a NUL byte")),
            b if b.is_ascii_whitespace() => return Err(invalid("contains whitespace")),
            b if b.is_ascii_control() => return Err(invalid("contains a control character")),
            _ => {}
        }
    }
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| invalid("not valid UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str) -> Result<String> {
        validate("VRF", OsStr::new(name))
    }

    #[test]
    fn accepts_ordinary_names() {
        for name in [
            "red",
            "vrf_oobm",
            "mgmt",
            "vrf-ext.10",
            "a",
            "123456789012345",
            "-dash",
        ] {
            assert_eq!(check(name).ok().as_deref(), Some(name), "{name}");
        }
    }

    #[test]
    fn refuses_names_that_could_become_other_paths() {
        for (name, reason) in [
            ("", "empty"),
            ("1234567890123456", "longer"),
            (".", "'.'"),
            ("..", "'.'"),
            ("a/b", "'/'"),
            ("../etc", "'/'"),
            ("a:b", "':'"),
            ("a b", "whitespace"),
            ("a\tb", "whitespace"),
            ("a\nb", "whitespace"),
            ("a\0b", "NUL"),
            ("a\x07", "control"),
        ] {
            let err = check(name).expect_err(name);
            assert!(err.to_string().contains(reason), "{name:?}: {err}");
            assert_eq!(err.exit_code(), 125);
        }
    }

    #[test]
    fn refuses_invalid_utf8() {
        let name = OsStr::from_bytes(b"r\xffd");
        assert!(validate("VRF", name).is_err());
    }
}
