//! Command-line parsing.
//!
//! The short form `vrfexec <VRF> <COMMAND>...` is the explicit `vrfexec exec <VRF> <COMMAND>...`
//! whenever the first word is not a verb or a top-level help/version flag. Options go before
//! the VRF: everything after it is the command's, as with `ip vrf exec`, env(1) and chroot(1).
use std::ffi::OsString;

use clap::{
    error::{ContextKind, ContextValue, ErrorKind},
    Args, Parser, Subcommand,
};

use crate::{
    error::{Error, Result},
    run::Request,
};

pub mod generate;
pub mod short;

pub use short::VERBS;

pub const USAGE: &str = "\
vrfexec [OPTIONS] <VRF> <COMMAND> [ARGS]...
       vrfexec [OPTIONS] default <COMMAND> [ARGS]...
       vrfexec [OPTIONS] --dev <IFACE> <COMMAND> [ARGS]...
       vrfexec exec [OPTIONS] <VRF> <COMMAND> [ARGS]...";

const ABOUT: &str = "Run a command inside a Linux VRF";

const LONG_ABOUT: &str = "\
Run a command inside a Linux VRF: every socket the command and its children create is bound
to the VRF, so they use its routing table without knowing VRFs exist. vrfexec does what
`ip vrf exec` does, and works together with it: it joins the cgroup <own cgroup>/vrf/<VRF>,
attaches a cgroup/sock_create BPF program there that binds new sockets to the VRF device,
and execs the command. Needs root (or CAP_BPF, CAP_NET_ADMIN; CAP_SYS_ADMIN where cgroup2
must be mounted).";

const AFTER_HELP: &str = "\
The first word decides the form: if it is not a verb (exec, show, identify, pids, move, route,
ping, gc, check, attach, trace, help), it is the VRF. To run in a VRF named like a verb, use
`vrfexec exec <VRF> ...`; for one starting with '-', put `--` before it. The VRF `default` leaves any VRF the caller is in.

Examples:
  vrfexec mgmt apt-get update            apt through the management VRF
  vrfexec vrf_oobm ssh admin@192.0.2.1   ssh through the out-of-band VRF
  vrfexec default curl http://192.0.2.1/ leave the VRF this shell runs in
  vrfexec --dev eth1 ping -c1 192.0.2.1  bind to a plain interface instead
  vrfexec -u alice mgmt ssh 192.0.2.1    as alice, with no capabilities
  vrfexec --strict mgmt /usr/sbin/ntpd   ntpd cannot rebind its sockets elsewhere
  vrfexec -- -odd-name wget URL          a VRF whose name starts with '-'
  vrfexec --wait 60 mgmt boot-task       at boot: wait up to 60 s for VRF mgmt to appear

  vrfexec show --json                    the VRFs, for scripts
  vrfexec pids mgmt                      what runs in VRF mgmt
  vrfexec trace mgmt curl URL            what curl's sockets do, and what left the VRF

Files (under /usr or /usr/local):
  bin/vrfexec                 the launcher (static): serves a root caller's VRF and --dev runs
  lib/vrfexec/vrfexec-full    everything else (verbs, --user, non-root callers); give it, not
                              bin/vrfexec, the file capabilities for non-root use
  /etc/vrfexec.conf           which users and groups may use vrfexec for which VRFs
                              (non-root use). It does not stop anyone from using a VRF:
                              any user may bind a socket to a device (SO_BINDTODEVICE,
                              Linux 5.7); a firewall rule on the VRF device by socket owner
                              (nftables `meta skuid`) does, see the README.
  /etc/vrf/<VRF>/             the VRF's own /etc files (resolv.conf, hosts, ...): when it
                              exists, the command runs in a private mount namespace with
                              each file bound over /etc/<file>, as `ip netns exec` does
                              with /etc/netns/<NAME>/; root's and writable by root only
  /run/vrfexec/               vrfexec's locks, root's and 0700

Before it execs, vrfexec checks with a probe socket of each IP family that new sockets really
are bound to the VRF (unbound for `default`); if they are not (a program on an ancestor
cgroup, cgroup v1 net_cls/net_prio on an old kernel), the command does not run and one line
names the cause.

Exit status: the command's own; 125 if vrfexec failed (bad usage too), 126 if the command
was found but cannot run, 127 if it was not found. vrfexec prints nothing on success.
The other verbs exit 0 on success and 125 on any failure, including a VRF or process that
does not exist.";

const SHOW_HELP: &str = "\
Lists the VRFs of this network namespace in ifindex order: name, routing table, ifindex,
operational state and member interfaces. With no VRF configured it says so and exits 0.
--json prints an array of objects with the keys name and table (as `ip -j vrf show`), and
ifindex, state, members.

Examples:
  vrfexec show
  vrfexec show mgmt --json";

const IDENTIFY_HELP: &str = "\
Prints the VRF the process runs in, read from its cgroup (<...>/vrf/<NAME>), so processes
started by `ip vrf exec` are recognised too. For the default VRF it prints nothing and exits
0, as `ip vrf identify` does; --json prints {\"pid\", \"vrf\" (null for default), \"cgroup\"}.
Without a PID it reports vrfexec's own, i.e. the caller's, VRF.

Examples:
  vrfexec identify
  vrfexec identify 1234 --json";

const PIDS_HELP: &str = "\
Lists the processes in a VRF, found anywhere in the cgroup tree under .../vrf/<NAME>, as
placed by vrfexec or `ip vrf exec` (inside a named network namespace: only that namespace's).
Output as `ip vrf pids`: PID and command name; --json prints [{\"pid\", \"comm\"}].

Examples:
  vrfexec pids mgmt
  vrfexec pids mgmt --json | jq '.[].pid'";

const ROUTE_HELP: &str = "\
Asks the kernel which route traffic from the VRF to DEST takes, as `ip route get DEST vrf
VRF` does: destination, gateway, device, table and source address. Needs no BPF and no
cgroup. A name is resolved with the system resolver in the caller's context, not through
the VRF. Exit status: 0 for a usable route, 1 when the answer is unreachable, prohibit or
blackhole (printed as such), 125 on error.

Examples:
  vrfexec route mgmt 192.0.2.1
  vrfexec route --dev eth1 192.0.2.1
  vrfexec route mgmt 2001:db8::1 --json";

const PING_HELP: &str = "\
Sends ICMP or ICMPv6 echo requests from a socket bound to the VRF (SO_BINDTODEVICE): no
BPF, no cgroup, no iputils. Uses an unprivileged ping socket where net.ipv4.ping_group_range
allows the caller's group, a raw socket (CAP_NET_RAW) otherwise. Output and summary as
iputils' ping; Ctrl-C stops and prints the summary. Without -c it runs until interrupted.
Exit status: 0 if any reply came, 1 if none, 2 on any error (bad options included).

Examples:
  vrfexec ping mgmt 192.0.2.1 -c 3
  vrfexec ping mgmt 2001:db8::1 -c 5 -i 0.2 -W 1 -q";

const CHECK_HELP: &str = "\
Looks for what makes VRF setups leak or break, and says for each finding how severe it is,
the evidence, why it matters and the exact fix:
  l3mdev-rule-missing       no l3mdev rule (IPv4/IPv6): VRF tables are never used
  local-rule-before-l3mdev  `lookup local` before the l3mdev rule: default-VRF addresses
                            answer from inside VRFs
  no-unreachable-default    a VRF table without a default route and no `l3mdev unreachable`
                            rule: lookups fall through to main and traffic leaks
  vrf-down, vrf-without-members, shared-table
  dns-unreachable           a resolv.conf server the VRF cannot reach (127.0.0.53 ...), in
                            /etc/vrf/<VRF>/resolv.conf if the VRF has one, else the host's
  vrf-without-loopback      (info) no 127.0.0.1/8 or ::1/128 on the VRF device, which a
                            resolver or agent on loopback inside the VRF needs
  l3mdev-accept-off         (info) default-VRF services do not answer in VRFs
  sock-create-program-above a cgroup above where runs from here are placed has its own
                            sock_create program: it runs last and decides the bound device
  net-cls-defeats-binding   cgroup v1 net_cls/net_prio on a kernel before 5.15: using it
                            turns cgroup v2 socket programs off
  policy-not-enforced       /etc/vrfexec.conf grants a VRF, but no nftables output rule on
                            it filters by socket owner: any user can still bind to it
Exit status: 0 clean (info alone is clean), 1 findings, 125 error.

--fix applies the rule changes for IPv4 and IPv6 in a safe order (the local rule is added at
32765 before the one at 0 is deleted; an `l3mdev unreachable` rule at 2000 stops leaks for
every VRF), adds missing loopback addresses to VRF devices, prints each as an ip command,
rolls back on failure, and checks again. A second
--fix changes nothing. --dry-run only prints the commands.

Examples:
  vrfexec check
  vrfexec check mgmt --json
  vrfexec check --fix --dry-run";

const ATTACH_HELP: &str = "\
Attaches the VRF's program to the cgroup vrfexec itself runs in, without moving anything:
every socket created in that cgroup from then on uses the VRF. Made for systemd units, whose
processes share one cgroup: `ExecCondition=+/usr/bin/vrfexec attach --condition mgmt` binds
the unit's ExecStartPre= commands, its main process and everything they start (systemd runs
ExecCondition= before ExecStartPre=; the `+` runs vrfexec with full privileges, outside the
unit's sandbox, in the unit's cgroup). systemd removes the cgroup, and with it the program,
when the unit stops. vrfexec's systemd generator writes that line for the units listed in
/etc/vrfexec/units.conf. The root cgroup (the whole system) is refused. After attaching,
vrfexec checks with a probe socket that new sockets in the cgroup are bound to the VRF, and
fails if something overrides it: exit 125, or 255 with --condition, which systemd counts as
a failed start (1 to 254 in ExecCondition= would only skip the unit, silently).

Examples:
  ExecCondition=+/usr/bin/vrfexec attach --condition mgmt    in a unit or a drop-in
  ExecStartPre=+/usr/bin/vrfexec attach mgmt                 the same, after the unit's own ExecStartPre=
  echo 'ssh.service mgmt' >> /etc/vrfexec/units.conf && systemctl daemon-reload";

const TRACE_HELP: &str = "\
Runs COMMAND exactly as `vrfexec VRF COMMAND` would, but in a cgroup of its own below the VRF's,
and shows what its sockets do, one line per event as it happens, then a summary:
  - sockets created (pid, command, family, type, protocol, the device they are bound to);
  - bind, connect and sendto of IPv4/IPv6 sockets: the address, and the device the socket is
    bound to at that moment;
  - setsockopt calls that move a socket to another device (SO_BINDTODEVICE, SO_BINDTOIFINDEX,
    IP_UNICAST_IF, IPV6_UNICAST_IF), allowed or refused by --strict;
  - sendmsg with IP_PKTINFO/IPV6_PKTINFO naming an interface;
  - connects to Unix sockets: a daemon outside the VRF (systemd-resolved, nscd) answers those.
The summary lists everything that did not use the VRF. Other runs in the VRF are not traced.
vrfexec stays the command's parent: it forwards signals and exits with the command's status
(128+N if a signal N ended it). Needs root; needs kernel 5.8 or later.

Examples:
  vrfexec trace mgmt curl -sS https://deb.debian.org/
  vrfexec trace --strict mgmt ./agent
  vrfexec trace --json -o apt.trace mgmt apt-get update";

const GC_HELP: &str = "\
vrfexec, like `ip vrf exec`, leaves a VRF's cgroup and its program in place after the command
exits, so the next run only has to join it. gc removes every .../vrf/<NAME> cgroup (and the
program on it) that holds no process and no child cgroup, then empty `vrf` and `<netns>-ns`
levels. It never touches a cgroup with processes, nor one a run is setting up (they share a
lock). Safe to run from a timer.

Examples:
  vrfexec gc
  vrfexec gc --dry-run";

const MOVE_HELP: &str = "\
Moves a running process (all its threads) into a VRF, like Cumulus' `vrf task set`: the
sockets it creates from now on are bound to the VRF. Sockets it already has keep their
binding, so a daemon usually needs to reopen its listeners (or be restarted) to follow. The
process stays inside its own cgroup (its systemd unit), below it at .../vrf/<NAME>. Kernel
threads and processes in another network namespace are refused.

Examples:
  vrfexec move 1234 mgmt
  vrfexec move $(pidof chronyd) default";

#[derive(Parser, Debug)]
#[command(
    name = "vrfexec",
    bin_name = "vrfexec",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    override_usage = USAGE,
    after_help = AFTER_HELP
)]
pub struct Cli {
    /// Print a man page or shell completion script: man, man-<verb>, complete-bash,
    /// complete-zsh, complete-fish
    #[arg(long, value_name = "KIND", hide_short_help = true)]
    pub generate: Option<String>,

    #[command(subcommand)]
    pub verb: Option<Verb>,
}

#[derive(Subcommand, Debug)]
pub enum Verb {
    /// Run a command in a VRF (the verb `vrfexec <VRF> <COMMAND>` stands for)
    #[command(override_usage = USAGE, after_help = AFTER_HELP)]
    Exec(ExecArgs),
    /// Show the VRFs: name, table, ifindex, state and members
    #[command(after_help = SHOW_HELP)]
    Show(ShowArgs),
    /// Print the VRF a process runs in (nothing for the default VRF)
    #[command(after_help = IDENTIFY_HELP)]
    Identify(IdentifyArgs),
    /// List the processes running in a VRF
    #[command(after_help = PIDS_HELP)]
    Pids(PidsArgs),
    /// Move a running process into a VRF (or default) for the sockets it creates next
    #[command(after_help = MOVE_HELP)]
    Move(MoveArgs),
    /// Show the route the VRF uses to reach a destination (ip route get ... vrf)
    #[command(after_help = ROUTE_HELP)]
    Route(RouteArgs),
    /// Ping a destination from inside the VRF, without BPF or iputils
    #[command(after_help = PING_HELP)]
    Ping(PingArgs),
    /// Remove VRF cgroups (and their programs) that no process uses
    #[command(after_help = GC_HELP)]
    Gc(GcArgs),
    /// Find VRF leaks and traps (rule order, unreachable defaults, DNS, ...); --fix them
    #[command(after_help = CHECK_HELP)]
    Check(CheckArgs),
    /// Bind the cgroup vrfexec runs in to a VRF (for a systemd unit's ExecCondition=+)
    #[command(after_help = ATTACH_HELP)]
    Attach(AttachArgs),
    /// Run a command in a VRF and show every socket it makes, where it is bound and goes
    #[command(
        override_usage = "vrfexec trace [OPTIONS] <VRF> <COMMAND> [ARGS]...",
        after_help = TRACE_HELP
    )]
    Trace(TraceArgs),
}

#[derive(Args, Debug)]
pub struct TraceArgs {
    /// Write the events and the summary to FILE (created or truncated) instead of stderr
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
    /// One JSON object per line, the summary last
    #[arg(short, long)]
    pub json: bool,
    #[command(flatten)]
    pub exec: ExecArgs,
}

#[derive(Args, Debug)]
pub struct AttachArgs {
    /// NAME is any network device, not necessarily a VRF
    #[arg(long)]
    pub dev: bool,
    /// The VRF (or, with --dev, the device)
    #[arg(value_name = "NAME")]
    pub vrf: OsString,
    /// Exit 255 on failure, which systemd's ExecCondition= counts as a failed start
    // (Acted on in both binaries' main, which see every failure: verbs::attach::is_condition.)
    #[arg(long)]
    pub condition: bool,
    /// Print each step to stderr
    #[arg(short, long)]
    pub verbose: bool,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Only these VRFs (the rule checks always cover all)
    #[arg(value_name = "VRF")]
    pub vrfs: Vec<OsString>,
    /// Print JSON
    #[arg(short, long)]
    pub json: bool,
    /// Apply the rule fixes (as the printed ip commands), then check again
    #[arg(long)]
    pub fix: bool,
    /// With --fix: only print the commands
    #[arg(long, requires = "fix")]
    pub dry_run: bool,
}

#[derive(Args, Debug)]
pub struct GcArgs {
    /// Only list what would be removed (on stderr)
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// List what is removed (on stderr)
    #[arg(short, long)]
    pub verbose: bool,
}

#[derive(Args, Debug)]
pub struct RouteArgs {
    /// NAME is any network device, not necessarily a VRF (SO_BINDTODEVICE to it)
    #[arg(long)]
    pub dev: bool,
    /// The VRF (or, with --dev, the device)
    #[arg(value_name = "NAME")]
    pub vrf: OsString,
    /// Destination address or host name
    pub dest: String,
    #[command(flatten)]
    pub family: FamilyArgs,
    /// Print JSON
    #[arg(short, long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct FamilyArgs {
    /// IPv4 only
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// IPv6 only
    #[arg(short = '6')]
    pub ipv6: bool,
}

impl FamilyArgs {
    pub fn family(&self) -> crate::verbs::route::Family {
        match (self.ipv4, self.ipv6) {
            (true, _) => crate::verbs::route::Family::V4,
            (_, true) => crate::verbs::route::Family::V6,
            _ => crate::verbs::route::Family::Any,
        }
    }
}

#[derive(Args, Debug)]
pub struct PingArgs {
    /// NAME is any network device, not necessarily a VRF (SO_BINDTODEVICE to it)
    #[arg(long)]
    pub dev: bool,
    /// The VRF (or, with --dev, the device)
    #[arg(value_name = "NAME")]
    pub vrf: OsString,
    /// Destination address or host name
    pub dest: String,
    /// Stop after sending COUNT requests [default: until Ctrl-C]
    #[arg(short = 'c', value_name = "COUNT", allow_hyphen_values = true)]
    pub count: Option<String>,
    /// Seconds between requests [default: 1; at least 0.2 without privileges]
    #[arg(short = 'i', value_name = "INTERVAL", allow_hyphen_values = true)]
    pub interval: Option<String>,
    /// Seconds to wait for replies after the last request [default: 10]
    #[arg(short = 'W', value_name = "TIMEOUT", allow_hyphen_values = true)]
    pub timeout: Option<String>,
    /// Payload bytes [default: 56]
    #[arg(short = 's', value_name = "SIZE", allow_hyphen_values = true)]
    pub size: Option<String>,
    #[command(flatten)]
    pub family: FamilyArgs,
    /// Only the first line and the summary
    #[arg(short = 'q')]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// Only this VRF
    pub vrf: Option<OsString>,
    /// Print JSON
    #[arg(short, long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct IdentifyArgs {
    /// Process ID [default: the caller]
    pub pid: Option<String>,
    /// Print JSON
    #[arg(short, long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct PidsArgs {
    /// The VRF
    pub vrf: OsString,
    /// Print JSON
    #[arg(short, long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct MoveArgs {
    /// Process ID
    pub pid: String,
    /// The VRF, or `default`
    pub vrf: OsString,
    /// Print each step to stderr
    #[arg(short, long)]
    pub verbose: bool,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Bind to this interface instead of a VRF (any device, like systemd's
    /// BindNetworkInterface=); then no VRF word is given
    #[arg(long, value_name = "IFACE")]
    pub dev: Option<OsString>,

    /// Print each step to stderr
    #[arg(short, long)]
    pub verbose: bool,

    /// Run the command as USER (uid, primary gid, supplementary groups) with every
    /// capability dropped, for good, and no_new_privs set: setuid programs and file
    /// capabilities grant it nothing (root only)
    #[arg(short, long, value_name = "USER")]
    pub user: Option<OsString>,

    /// With --user: this group instead of the user's primary group
    #[arg(short, long, value_name = "GROUP", requires = "user")]
    pub group: Option<OsString>,

    /// The command cannot leave the VRF: setsockopt(SO_BINDTODEVICE, SO_BINDTOIFINDEX,
    /// IP_UNICAST_IF, IPV6_UNICAST_IF) is refused, for root inside too
    #[arg(long)]
    pub strict: bool,

    /// If the VRF (or --dev device) does not exist yet, wait up to SECONDS for it to appear
    /// (link notifications, no polling), then run as usual; exit 125 if it does not (for
    /// scripts at boot)
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u32).range(1..=86400))]
    pub wait: Option<u32>,

    /// The VRF (or `default`), then the command and its arguments
    #[arg(
        value_name = "VRF> <COMMAND",
        required = true,
        num_args = 1..,
        trailing_var_arg = true
    )]
    pub words: Vec<OsString>,
}

/// What parsing asks main to do.
#[derive(Debug)]
pub enum Parsed {
    Run(Cli),
    /// Help or version was printed: exit 0.
    Printed,
}

/// The short form's parser: `exec`'s arguments at the top level.
#[derive(Parser, Debug)]
#[command(
    name = "vrfexec",
    bin_name = "vrfexec",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    override_usage = USAGE,
    after_help = AFTER_HELP
)]
struct ShortForm {
    #[command(flatten)]
    exec: ExecArgs,
}

pub fn parse(argv: Vec<OsString>) -> Result<Parsed> {
    // ping keeps iputils' exit status for every error, bad options included.
    let is_ping = argv.get(1).is_some_and(|w| w == "ping");
    parse_inner(argv).map_err(|err| match err {
        Error::Usage(_) if is_ping => crate::verbs::ping::with_ping_status(err),
        err => err,
    })
}

fn parse_inner(argv: Vec<OsString>) -> Result<Parsed> {
    match argv.get(1) {
        None => Err(Error::Usage("no VRF and command given".into())),
        Some(first) if !short::is_verb_or_top_level_flag(first) => short_form(argv),
        Some(_) => match Cli::try_parse_from(argv) {
            Ok(Cli {
                generate: None,
                verb: None,
            }) => Err(Error::Usage("no verb given".into())),
            Ok(cli) => Ok(Parsed::Run(cli)),
            Err(err) => clap_error(err),
        },
    }
}

/// The short form, through clap (the launcher's own parser, [`short`], has served the
/// common cases before the full build runs).
fn short_form(argv: Vec<OsString>) -> Result<Parsed> {
    let exec = match ShortForm::try_parse_from(argv) {
        Ok(short) => short.exec,
        Err(err) => return clap_error(err),
    };
    Ok(Parsed::Run(Cli {
        generate: None,
        verb: Some(Verb::Exec(exec)),
    }))
}

fn clap_error(err: clap::Error) -> Result<Parsed> {
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        err.print().map_err(|e| Error::os("cannot print help", e))?;
        return Ok(Parsed::Printed);
    }
    Err(Error::Usage(one_line(&err)))
}

fn one_line(err: &clap::Error) -> String {
    match err.kind() {
        ErrorKind::MissingRequiredArgument => {
            // clap lists the missing arguments over several lines; name them on one.
            let missing: Vec<String> = match err.get(ContextKind::InvalidArg) {
                Some(ContextValue::Strings(names)) => names.clone(),
                Some(ContextValue::String(name)) => vec![name.clone()],
                _ => Vec::new(),
            };
            if missing.is_empty() || missing.iter().any(|m| m.contains("<COMMAND")) {
                "no VRF and command given".into()
            } else {
                format!("missing {}", missing.join(" and "))
            }
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => "no VRF and command given".into(),
        ErrorKind::MissingSubcommand => "no verb given".into(),
        _ => {
            let rendered = err.render().to_string();
            let first = rendered.lines().next().unwrap_or_default();
            first.strip_prefix("error: ").unwrap_or(first).to_owned()
        }
    }
}

impl From<ExecArgs> for Request {
    fn from(args: ExecArgs) -> Self {
        Request {
            dev: args.dev,
            verbose: args.verbose,
            user: args.user,
            group: args.group,
            strict: args.strict,
            wait: args
                .wait
                .map(|s| std::time::Duration::from_secs(u64::from(s))),
            words: args.words,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    fn args(words: &[&str]) -> Vec<OsString> {
        std::iter::once("vrfexec")
            .chain(words.iter().copied())
            .map(OsString::from)
            .collect()
    }

    fn exec(words: &[&str]) -> Request {
        match parse(args(words)) {
            Ok(Parsed::Run(Cli {
                verb: Some(Verb::Exec(exec)),
                ..
            })) => exec.into(),
            other => panic!("{words:?}: {other:?}"),
        }
    }

    #[test]
    fn short_form_is_exec() {
        let e = exec(&["red", "ls", "-l"]);
        assert_eq!(e.words, ["red", "ls", "-l"]);
        let (vrf, cmd) = e.split().expect("split");
        assert_eq!(vrf.map(|v| v.as_os_str()), Some("red".as_ref()));
        assert_eq!(cmd, ["ls", "-l"]);
        assert_eq!(exec(&["exec", "red", "ls"]).words, ["red", "ls"]);
    }

    #[test]
    fn options_only_before_the_vrf() {
        let e = exec(&["-v", "red", "cmd", "-v", "--dev", "x"]);
        assert!(e.verbose);
        assert!(e.dev.is_none());
        assert_eq!(e.words, ["red", "cmd", "-v", "--dev", "x"]);
        let e = exec(&["red", "--help"]);
        assert_eq!(
            e.words,
            ["red", "--help"],
            "--help after the VRF is the command's"
        );
    }

    #[test]
    fn dev_takes_no_vrf_word() {
        let e = exec(&["--dev", "eth0", "ping", "x"]);
        let (vrf, cmd) = e.split().expect("split");
        assert!(vrf.is_none());
        assert_eq!(cmd, ["ping", "x"]);
    }

    #[test]
    fn verbs_are_recognised_and_everything_else_is_a_vrf() {
        let verb = |words: &[&str]| match parse(args(words)) {
            Ok(Parsed::Run(Cli {
                verb: Some(verb), ..
            })) => verb,
            other => panic!("{words:?}: {other:?}"),
        };
        assert!(matches!(
            verb(&["show"]),
            Verb::Show(ShowArgs {
                vrf: None,
                json: false
            })
        ));
        assert!(matches!(
            verb(&["show", "red", "--json"]),
            Verb::Show(ShowArgs {
                vrf: Some(_),
                json: true
            })
        ));
        assert!(matches!(
            verb(&["identify", "-j"]),
            Verb::Identify(IdentifyArgs {
                pid: None,
                json: true
            })
        ));
        assert!(matches!(verb(&["pids", "red"]), Verb::Pids(_)));
        assert!(matches!(verb(&["move", "12", "default"]), Verb::Move(_)));
        // A VRF named like a verb needs the explicit form.
        assert!(matches!(verb(&["exec", "show", "true"]), Verb::Exec(_)));
        assert!(matches!(verb(&["showx", "true"]), Verb::Exec(_)));
    }

    #[test]
    fn the_verb_list_matches_the_subcommands() {
        let mut names: Vec<String> = Cli::command()
            .get_subcommands()
            .map(|s| s.get_name().to_owned())
            .collect();
        names.push("help".to_owned());
        names.sort();
        let mut listed: Vec<String> = VERBS.iter().map(|v| (*v).to_owned()).collect();
        listed.sort();
        assert_eq!(names, listed);
    }

    #[test]
    fn generate_is_a_top_level_flag() {
        match parse(args(&["--generate", "man"])) {
            Ok(Parsed::Run(Cli {
                generate: Some(kind),
                verb: None,
            })) => assert_eq!(kind, "man"),
            other => panic!("{other:?}"),
        }
    }

    /// Whatever the fast short-form parser accepts, clap parses to the same; and it does
    /// accept the common forms (else every run would silently take the slow path).
    #[test]
    fn the_fast_short_form_agrees_with_clap() {
        const POOL: &[&str] = &[
            "--dev",
            "eth0",
            "-v",
            "--verbose",
            "-u",
            "alice",
            "--user",
            "--user=bob",
            "-g",
            "wheel",
            "--group=adm",
            "--strict",
            "--",
            "red",
            "default",
            "cmd",
            "-x",
            "--dev=",
            "-",
            "-vu",
            "--bogus",
            "--help",
            "-h",
            "-V",
            "--dev=x=y",
            "ls",
            "-l",
            "",
            "--strict=1",
            "-uroot",
            "--verbose=yes",
            "--dev=eth1",
        ];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut accepted = 0;
        for _ in 0..30_000 {
            let len = next() % 7;
            let words: Vec<&str> = (0..len)
                .map(|_| POOL[usize::try_from(next() % POOL.len() as u64).unwrap_or(0)])
                .collect();
            // The same words as the `exec` verb's arguments (no first-word rule there).
            let exec_argv = args(&[&["exec"], &words[..]].concat());
            if let Some(fast) = short::parse(&exec_argv) {
                match Cli::try_parse_from(&exec_argv) {
                    Ok(Cli {
                        verb: Some(Verb::Exec(clap)),
                        ..
                    }) => assert_eq!(Request::from(clap), fast, "exec {words:?}"),
                    Ok(other) => panic!("exec {words:?}: clap parsed {:?}", other.verb),
                    Err(err) => panic!("exec {words:?}: fast parser accepted, clap says {err}"),
                }
            }
            let argv = args(&words);
            let Some(fast) = short::parse(&argv) else {
                continue;
            };
            accepted += 1;
            match ShortForm::try_parse_from(&argv) {
                Ok(clap) => assert_eq!(Request::from(clap.exec), fast, "{words:?}"),
                Err(err) => panic!("{words:?}: fast parser accepted, clap says {err}"),
            }
        }
        assert!(accepted > 1000, "only {accepted} accepted");
        for words in [
            &["red", "true"][..],
            &["-v", "--dev", "eth0", "ping", "-c1", "x"],
            &["-u", "alice", "-g", "wheel", "--strict", "red", "id", "-v"],
            &["--user=alice", "--group=wheel", "--", "-odd", "cmd"],
            &["--dev=eth0", "--verbose", "cmd"],
        ] {
            assert!(short::parse(&args(words)).is_some(), "{words:?}");
        }
    }

    #[test]
    fn double_dash_allows_a_leading_dash_name() {
        let e = exec(&["--", "-odd", "cmd"]);
        assert_eq!(e.words, ["-odd", "cmd"]);
    }

    #[test]
    fn usage_errors_are_one_line_and_125() {
        for words in [
            &[][..],
            &["red"],
            &["--bogus", "red", "x"],
            &["exec"],
            &["-odd", "cmd"],
        ] {
            let err = match parse(args(words)) {
                Ok(Parsed::Run(Cli {
                    verb: Some(Verb::Exec(e)),
                    ..
                })) => Request::from(e).split().expect_err("no command"),
                Ok(other) => panic!("{words:?}: {other:?}"),
                Err(err) => err,
            };
            let msg = err.to_string();
            assert_eq!(err.exit_code(), 125, "{words:?}");
            assert!(!msg.contains('\n'), "{words:?}: {msg}");
            assert!(msg.starts_with("invalid usage: "), "{words:?}: {msg}");
        }
    }
}
