//! What a run is bound to: a VRF, the default VRF, or (with --dev) any interface.
//!
//! A VRF must exist and be of kind `vrf`: binding to an enslaved port or a plain interface
//! would also "work" but means something else, so that needs `--dev`, which is what systemd's
//! BindNetworkInterface= does. `--dev` runs are placed under the same `vrf/` level as VRF runs
//! (so nesting rules stay iproute2's, and `ip vrf identify` reports the device).
use std::ffi::OsStr;

use crate::{
    error::{Error, Result},
    sys::{names, netlink::LinkSource},
};

/// What the user asked to bind to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Vrf(String),
    Default,
    Device(String),
}

impl Target {
    /// Parses a VRF word (`default` or a VRF name).
    pub fn vrf(word: &OsStr) -> Result<Self> {
        if word == names::DEFAULT_VRF {
            return Ok(Target::Default);
        }
        names::validate("VRF", word).map(Target::Vrf)
    }

    pub fn device(word: &OsStr) -> Result<Self> {
        names::validate("device", word).map(Target::Device)
    }

    /// The VRF (or with `dev`, any device) a verb that needs a table works on (`route`,
    /// `ping`, `attach`): `default` is refused with the tool to use instead.
    pub fn named(name: &OsStr, dev: bool, verb: &str, instead: &str) -> Result<Self> {
        if dev {
            return Target::device(name);
        }
        match Target::vrf(name)? {
            Target::Default => Err(Error::refused(
                format!("invalid {verb} target 'default'"),
                format!("`{verb}` takes a VRF name"),
            )
            .hint(instead)),
            target => Ok(target),
        }
    }
}

/// A target looked up in the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The cgroup leaf below `vrf/` (None: the default VRF, `vrf/` itself).
    pub leaf: Option<String>,
    /// The ifindex new sockets are bound to; 0 means unbound.
    pub ifindex: u32,
    /// The VRF's table, for messages.
    pub table: Option<u32>,
}

impl Binding {
    /// The default VRF: no device, new sockets unbound.
    pub const UNBOUND: Binding = Binding {
        leaf: None,
        ifindex: 0,
        table: None,
    };
}

pub fn resolve(target: &Target, links: &mut dyn LinkSource) -> Result<Binding> {
    let lookup = |links: &mut dyn LinkSource, name: &str| {
        links.link_by_name(name).map_err(|source| Error::Netlink {
            what: "cannot look up the device over netlink",
            source,
        })
    };
    match target {
        Target::Default => Ok(Binding::UNBOUND),
        Target::Vrf(name) => {
            let link = lookup(links, name)?.ok_or_else(|| Error::VrfNotFound(name.clone()))?;
            if !link.is_vrf() {
                return Err(Error::NotAVrf {
                    name: name.clone(),
                    kind: link.describe_kind(),
                });
            }
            Ok(Binding {
                leaf: Some(link.name),
                ifindex: link.index,
                table: link.vrf_table,
            })
        }
        Target::Device(name) => {
            let link = lookup(links, name)?.ok_or_else(|| Error::DeviceNotFound(name.clone()))?;
            Ok(Binding {
                leaf: Some(link.name),
                ifindex: link.index,
                table: link.vrf_table,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::netlink::fake::FakeLinks;

    fn links() -> FakeLinks {
        FakeLinks::default()
            .with(4, "red", Some("vrf"), Some(10))
            .with(6, "veth0", Some("veth"), None)
            .with(1, "lo", None, None)
    }

    #[test]
    fn a_vrf_binds_to_its_ifindex() {
        let binding = resolve(&Target::Vrf("red".into()), &mut links()).expect("red");
        assert_eq!(
            binding,
            Binding {
                leaf: Some("red".into()),
                ifindex: 4,
                table: Some(10)
            }
        );
    }

    #[test]
    fn default_binds_nowhere_and_asks_nothing() {
        let mut failing = FakeLinks {
            fail_with: Some(libc::EPERM),
            ..Default::default()
        };
        let binding = resolve(&Target::Default, &mut failing).expect("default");
        assert_eq!(binding.ifindex, 0);
        assert_eq!(binding.leaf, None);
    }

    #[test]
    fn missing_and_non_vrf_devices_are_refused_with_advice() {
        let err = resolve(&Target::Vrf("blue".into()), &mut links()).expect_err("missing");
        assert!(matches!(err, Error::VrfNotFound(_)));
        let err = resolve(&Target::Vrf("veth0".into()), &mut links()).expect_err("not a vrf");
        assert!(err.to_string().contains("use --dev veth0"), "{err}");
        let err = resolve(&Target::Vrf("lo".into()), &mut links()).expect_err("not a vrf");
        assert!(err.to_string().contains("without a link kind"), "{err}");
    }

    #[test]
    fn dev_accepts_any_existing_device() {
        let binding = resolve(&Target::Device("veth0".into()), &mut links()).expect("veth0");
        assert_eq!(binding.ifindex, 6);
        let err = resolve(&Target::Device("eth9".into()), &mut links()).expect_err("missing");
        assert!(matches!(err, Error::DeviceNotFound(_)));
    }

    #[test]
    fn netlink_failures_are_reported() {
        let mut failing = FakeLinks {
            fail_with: Some(libc::EACCES),
            ..Default::default()
        };
        let err = resolve(&Target::Vrf("red".into()), &mut failing).expect_err("fails");
        assert!(err
            .to_string()
            .starts_with("cannot look up the device over netlink"));
    }

    #[test]
    fn the_word_default_is_the_default_vrf() {
        assert_eq!(
            Target::vrf(OsStr::new("default")).expect("ok"),
            Target::Default
        );
        assert!(Target::vrf(OsStr::new("../x")).is_err());
    }
}
