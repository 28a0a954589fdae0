//! The launcher's parser: the common command lines of the main job, without clap.
//!
//! clap is the largest part of the code a `vrfexec VRF CMD` run would execute, and start-up
//! cost under emulation, and partly on hardware, grows with the code a process runs. So the
//! launcher (`src/bin/vrfexec.rs`) parses the short form and the `exec` verb by hand and hands
//! every other command line to the full build, where clap gives the answer or the message. A
//! unit test in [`super`] checks that whatever this accepts, clap parses to the same.
use std::ffi::OsString;

use crate::run::Request;

/// The verbs (clap's subcommand names). Deciding the short form needs only these names, so
/// the common `vrfexec VRF CMD` never builds the whole command tree; a unit test keeps the list
/// equal to the subcommands.
pub const VERBS: &[&str] = &[
    "exec", "show", "identify", "pids", "move", "route", "ping", "gc", "check", "attach", "trace",
    "help",
];

pub fn is_verb_or_top_level_flag(word: &OsString) -> bool {
    let Some(word) = word.to_str() else {
        return false;
    };
    matches!(word, "-h" | "--help" | "-V" | "--version" | "--generate")
        || word.starts_with("--generate=")
        || VERBS.contains(&word)
}

/// The short form's common cases without clap, given the words after the program name (or
/// after `exec`): `[--dev IFACE] [-v] [-u USER [-g GROUP]] [--strict] [--] WORD...`, each
/// option at most once, as separate words or `--long=value`.
/// Anything else (help, errors, bundled short flags, values starting with '-', non-UTF-8
/// options) returns None and goes to clap, which gives the answer or the message. A unit test
/// checks that whatever this accepts, clap parses to the same.
///
/// Why: clap is the largest part of the code a `vrfexec VRF CMD` run executes, and start-up
/// cost under emulation, and partly on hardware, grows with the code a process runs.
fn short_form(args: &[OsString]) -> Option<Request> {
    let mut exec = Request {
        dev: None,
        verbose: false,
        user: None,
        group: None,
        strict: false,
        wait: None,
        words: Vec::new(),
    };
    let mut rest = args.iter();
    let mut words_start = None;
    while let Some(word) = rest.next() {
        if !word.as_encoded_bytes().starts_with(b"-") {
            words_start = Some(word);
            break;
        }
        let text = word.to_str()?;
        if text == "--" {
            break;
        }
        let (name, inline) = match text.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name, Some(value)),
            _ => (text, None),
        };
        let mut value = || -> Option<OsString> {
            let value = match inline {
                Some(value) => OsString::from(value),
                None => rest.next()?.clone(),
            };
            // clap reads a value starting with '-' as the next option (an error); an empty
            // one is left to clap too.
            let bytes = value.as_encoded_bytes();
            (!bytes.is_empty() && !bytes.starts_with(b"-")).then_some(value)
        };
        match name {
            "--dev" if exec.dev.is_none() => exec.dev = Some(value()?),
            "-u" | "--user" if exec.user.is_none() => exec.user = Some(value()?),
            "-g" | "--group" if exec.group.is_none() => exec.group = Some(value()?),
            "-v" | "--verbose" if inline.is_none() && !exec.verbose => exec.verbose = true,
            "--strict" if inline.is_none() && !exec.strict => exec.strict = true,
            _ => return None,
        }
    }
    exec.words.extend(words_start.cloned());
    exec.words.extend(rest.cloned());
    if exec.words.is_empty() || (exec.group.is_some() && exec.user.is_none()) {
        return None;
    }
    Some(exec)
}

/// The common cases of the short form and of the `exec` verb (`ip vrf exec`'s habit), which
/// [`short_form`] parses without clap; None for every other command line (other verbs,
/// help, anything clap has to judge).
pub fn parse(argv: &[OsString]) -> Option<Request> {
    match argv.get(1) {
        Some(first) if first == "exec" => short_form(&argv[2..]),
        Some(first) if !is_verb_or_top_level_flag(first) => short_form(&argv[1..]),
        _ => None,
    }
}
