//! Command-line parsing.
//!
//! The short form `vrfexec <VRF> <COMMAND>...` is the explicit `vrfexec exec <VRF> <COMMAND>...`
//! whenever the first word is not a verb or a top-level help/version flag. Options go before
//! the VRF: everything after it is the command's, as with `ip vrf exec`, env(1) and chroot(1).
use std::ffi::OsString;

use clap::{error::ErrorKind, Args, CommandFactory as _, Parser, Subcommand};

use crate::error::{Error, Result};

const USAGE: &str = "\
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
The first word decides the form: if it is not a verb (exec, help), it is the VRF. To run in a
VRF named like a verb, use `vrfexec exec <VRF> ...`; for one starting with '-', put `--`
before it. The VRF `default` leaves any VRF the caller is in.

Examples:
  vrfexec mgmt apt-get update            apt through the management VRF
  vrfexec vrf_oobm ssh admin@192.0.2.1   ssh through the out-of-band VRF
  vrfexec default curl http://192.0.2.1/ leave the VRF this shell runs in
  vrfexec --dev eth1 ping -c1 192.0.2.1  bind to a plain interface instead
  vrfexec -- -odd-name wget URL          a VRF whose name starts with '-'

Exit status: the command's own; 125 if vrfexec failed (bad usage too), 126 if the command
was found but cannot run, 127 if it was not found. vrfexec prints nothing on success.";

#[derive(Parser, Debug)]
#[command(
    name = "vrfexec",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    override_usage = USAGE,
    after_help = AFTER_HELP,
    subcommand_required = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub verb: Verb,
}

#[derive(Subcommand, Debug)]
pub enum Verb {
    /// Run a command in a VRF (the verb `vrfexec <VRF> <COMMAND>` stands for)
    #[command(override_usage = USAGE, after_help = AFTER_HELP)]
    Exec(ExecArgs),
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

fn is_verb_or_top_level_flag(word: &OsString) -> bool {
    let Some(word) = word.to_str() else {
        return false;
    };
    if matches!(word, "-h" | "--help" | "-V" | "--version" | "help") {
        return true;
    }
    Cli::command()
        .get_subcommands()
        .any(|sub| sub.get_name() == word || sub.get_all_aliases().any(|a| a == word))
}

pub fn parse(mut argv: Vec<OsString>) -> Result<Parsed> {
    match argv.get(1) {
        None => return Err(Error::Usage("no VRF and command given".into())),
        Some(first) if !is_verb_or_top_level_flag(first) => argv.insert(1, "exec".into()),
        Some(_) => {}
    }
    match Cli::try_parse_from(argv) {
        Ok(cli) => Ok(Parsed::Run(cli)),
        Err(err)
            if matches!(
                err.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) =>
        {
            err.print().map_err(|e| Error::os("cannot print help", e))?;
            Ok(Parsed::Printed)
        }
        Err(err) => Err(Error::Usage(one_line(&err))),
    }
}

fn one_line(err: &clap::Error) -> String {
    match err.kind() {
        ErrorKind::MissingRequiredArgument
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => "no VRF and command given".into(),
        ErrorKind::MissingSubcommand => "no verb given".into(),
        _ => {
            let rendered = err.render().to_string();
            let first = rendered.lines().next().unwrap_or_default();
            first.strip_prefix("error: ").unwrap_or(first).to_owned()
        }
    }
}

impl ExecArgs {
    /// Splits the words into (target word, command argv) according to --dev.
    pub fn split(&self) -> Result<(Option<&OsString>, &[OsString])> {
        let (target, command) = if self.dev.is_some() {
            (None, &self.words[..])
        } else {
            match self.words.split_first() {
                Some((vrf, command)) => (Some(vrf), command),
                None => return Err(Error::Usage("no VRF and command given".into())),
            }
        };
        if command.is_empty() {
            return Err(Error::Usage("no command given".into()));
        }
        Ok((target, command))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<OsString> {
        std::iter::once("vrfexec")
            .chain(words.iter().copied())
            .map(OsString::from)
            .collect()
    }

    fn exec(words: &[&str]) -> ExecArgs {
        match parse(args(words)) {
            Ok(Parsed::Run(Cli {
                verb: Verb::Exec(exec),
            })) => exec,
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
                    verb: Verb::Exec(e),
                })) => e.split().expect_err("no command"),
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
