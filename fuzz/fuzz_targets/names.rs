//! VRF, device, user and group names from the command line: whatever the bytes, validation
//! never panics, and a name it accepts can only become one normal path component below
//! `.../vrf/` (no '/', '.', '..', NUL), at most 15 bytes.
#![no_main]

use std::{ffi::OsStr, os::unix::ffi::OsStrExt as _, path::Component, path::Path};

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let name = OsStr::from_bytes(data);
    if let Ok(valid) = vrfexec::sys::names::validate("VRF", name) {
        assert!(!valid.is_empty() && valid.len() <= vrfexec::sys::names::MAX_NAME_LEN);
        let path = vrfexec::vrf::cgroup::vrf_cgroup("/user.slice/session-1.scope", Some("r"), Some(&valid));
        assert_eq!(path, format!("/user.slice/session-1.scope/r-ns/vrf/{valid}"));
        let components: Vec<Component<'_>> = Path::new(&path).components().collect();
        assert_eq!(components.len(), 6, "{path}");
        assert!(components.iter().skip(1).all(|c| matches!(c, Component::Normal(_))), "{path}");
    }
    if let Ok(valid) = vrfexec::run::identity::validate_account_name("user", name) {
        assert!(!valid.starts_with('-') && !valid.contains(['/', ':', '\0']));
    }
});
