//! What binding a cgroup to a VRF means: the target and its lookup ([`target`]), the cgroup
//! layout iproute2 shares with us ([`cgroup`]), the BPF program that binds new sockets
//! ([`bpf`]), putting a process there ([`place`]) under a per-cgroup lock ([`lock`]), the
//! VRF's own `/etc` files ([`etc`]), and proving that new sockets are bound as asked
//! ([`verify`]).
//!
//! These modules use [`crate::sys`] and the leaves ([`crate::error`], [`crate::log`]); they
//! never call up into the verbs, the run pipeline or the command line.
pub mod bpf;
pub mod cgroup;
pub mod etc;
pub mod lock;
pub mod place;
pub mod target;
pub mod verify;
