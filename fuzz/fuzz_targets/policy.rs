//! /etc/vrfexec.conf: whatever the text, parsing never panics, and a policy it accepts names
//! only valid VRFs and accounts.
#![no_main]

use std::ffi::OsStr;

use libfuzzer_sys::fuzz_target;
use vrfexec::run::policy::{Policy, Vrfs, Who};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(policy) = Policy::parse(text) else { return };
    for rule in &policy.rules {
        let (Who::User(name) | Who::Group(name)) = &rule.who;
        assert!(vrfexec::run::identity::validate_account_name("user", OsStr::new(name)).is_ok());
        if let Vrfs::These(vrfs) = &rule.vrfs {
            assert!(!vrfs.is_empty());
            for vrf in vrfs {
                assert!(vrfexec::sys::names::validate("VRF", OsStr::new(vrf)).is_ok());
            }
        }
        // Deciding never panics either.
        let _ = policy.allows(name, &[name.clone()], "mgmt");
    }
});
