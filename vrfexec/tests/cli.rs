//! Black-box tests of the built binaries that need no privileges: usage, help, exit codes and
//! the failures that must happen before vrfexec changes anything.
//!
//! Every command line runs through both binaries: the launcher (`vrfexec`, which serves some
//! of them itself and hands the rest to the `vrfexec-full` beside it) and the full build
//! alone; both must answer byte for byte the same.
use std::process::{Command, Output};

/// The launcher's and the full build's answers to `args`.
fn both(args: &[&str]) -> [Output; 2] {
    [
        env!("CARGO_BIN_EXE_vrfexec"),
        env!("CARGO_BIN_EXE_vrfexec-full"),
    ]
    .map(|binary| {
        Command::new(binary)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("run {binary}: {e}"))
    })
}

/// The answer to `args`, the same from both binaries.
fn vrfexec(args: &[&str]) -> Output {
    let [launcher, full] = both(args);
    assert_eq!(
        (launcher.status.code(), &launcher.stdout, stderr(&launcher)),
        (full.status.code(), &full.stdout, stderr(&full)),
        "the launcher and the full build differ for {args:?}"
    );
    launcher
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Exactly `vrfexec: <message>` on one line of stderr, nothing on stdout, and the exit status.
fn assert_error(out: &Output, code: i32, message: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert_eq!(err, format!("vrfexec: {message}\n"));
    assert!(out.stdout.is_empty(), "nothing on stdout on failure");
}

/// A usage error's message.
fn usage(why: &str) -> String {
    format!("invalid usage: {why}; try 'vrfexec --help'")
}

#[test]
fn help_has_usage_forms_and_examples() {
    let out = vrfexec(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "<VRF> <COMMAND>",
        "default <COMMAND>",
        "--dev <IFACE>",
        "Examples:",
        "vrfexec mgmt apt-get update",
        "125",
        "126",
        "127",
    ] {
        assert!(text.contains(needle), "--help lacks {needle:?}");
    }
    let exec_help = vrfexec(&["exec", "--help"]);
    assert_eq!(exec_help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&exec_help.stdout).contains("--dev <IFACE>"));
}

#[test]
fn version_prints_the_package_version() {
    let out = vrfexec(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("vrfexec {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn usage_errors_exit_125_with_one_line() {
    let none = usage("no VRF and command given");
    assert_error(&vrfexec(&[]), 125, &none);
    assert_error(&vrfexec(&["red"]), 125, &usage("no command given"));
    assert_error(&vrfexec(&["exec"]), 125, &none);
    assert_error(
        &vrfexec(&["--bogus", "red", "true"]),
        125,
        &usage("unexpected argument '--bogus' found"),
    );
    assert_error(
        &vrfexec(&["--dev"]),
        125,
        &usage("a value is required for '--dev <IFACE>' but none was supplied"),
    );
    assert_error(&vrfexec(&["--dev", "eth0"]), 125, &none);
    assert_error(
        &vrfexec(&["--wait", "0", "red", "true"]),
        125,
        &usage("invalid value '0' for '--wait <SECONDS>': 0 is not in 1..=86400"),
    );
    // A name starting with '-' needs `--`; without it, it is an unknown option.
    assert_error(
        &vrfexec(&["-odd", "true"]),
        125,
        &usage("unexpected argument '-o' found"),
    );
}

#[test]
fn names_that_could_escape_the_cgroup_tree_are_refused() {
    for (name, why) in [
        ("a/b", "contains '/'"),
        ("..", "'.' and '..' are not device names"),
        ("../../etc", "contains '/'"),
        ("", "it is empty"),
        ("sixteen-chars-xx", "longer than 15 bytes (IFNAMSIZ)"),
        ("a b", "contains whitespace"),
        ("a:b", "contains ':'"),
    ] {
        let out = vrfexec(&["--", name, "true"]);
        assert_error(&out, 125, &format!("invalid VRF name {name:?}: {why}"));
        let out = vrfexec(&["--dev", name, "true"]);
        assert_error(&out, 125, &format!("invalid device name {name:?}: {why}"));
    }
}

#[test]
fn missing_and_unrunnable_commands_are_127_and_126() {
    // `default` attaches nothing, so these reach the PATH lookup without privileges.
    assert_error(
        &vrfexec(&["default", "vrfexec-no-such-command"]),
        127,
        "vrfexec-no-such-command: command not found",
    );
    assert_error(
        &vrfexec(&["default", "/nonexistent/cmd"]),
        127,
        "cannot run /nonexistent/cmd: No such file or directory",
    );
    assert_error(
        &vrfexec(&["default", "/etc/passwd"]),
        126,
        "cannot run /etc/passwd: Permission denied",
    );
    assert_error(
        &vrfexec(&["default", "/"]),
        126,
        "cannot run /: Is a directory",
    );
}

#[test]
fn generated_man_pages_document_every_option() {
    for verb in [
        "", "exec", "show", "identify", "pids", "move", "route", "ping", "gc", "check", "attach",
    ] {
        let kind = if verb.is_empty() {
            "man".to_owned()
        } else {
            format!("man-{verb}")
        };
        let out = vrfexec(&["--generate", &kind]);
        assert_eq!(out.status.code(), Some(0), "{kind}: {}", stderr(&out));
        let page = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(page.contains(".TH"), "{kind} is not roff");
        let help_args: Vec<&str> = if verb.is_empty() {
            vec!["--help"]
        } else {
            vec![verb, "--help"]
        };
        let help = String::from_utf8_lossy(&vrfexec(&help_args).stdout).into_owned();
        // Options are listed in the OPTIONS section of help (lines starting with spaces and '-').
        for line in help.lines().filter(|l| l.trim_start().starts_with('-')) {
            let long = line
                .split_whitespace()
                .find(|w| w.starts_with("--"))
                .map(|w| w.trim_end_matches(','));
            if let Some(long) = long {
                let roff = long.split('=').next().unwrap_or(long).replace('-', "\\-");
                assert!(page.contains(&roff), "{kind} lacks {long}");
            }
        }
    }
    let man = String::from_utf8_lossy(&vrfexec(&["--generate", "man"]).stdout).into_owned();
    for code in ["125", "126", "127"] {
        assert!(man.contains(code), "man page lacks exit code {code}");
    }
    assert_error(
        &vrfexec(&["--generate", "nonsense"]),
        125,
        &usage(
            "unknown --generate kind 'nonsense': expected man, man-<verb>, complete-bash, \
             complete-zsh or complete-fish",
        ),
    );
}

#[test]
fn completions_generate_for_three_shells() {
    for (shell, needle) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef vrfexec"),
        ("fish", "complete -c vrfexec"),
    ] {
        let out = vrfexec(&["--generate", &format!("complete-{shell}")]);
        assert_eq!(out.status.code(), Some(0));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(needle) && text.contains("identify"),
            "{shell}"
        );
    }
}

#[test]
fn verbs_reject_bad_arguments_with_125() {
    let pid = |word: &str| {
        usage(&format!(
            "invalid PID '{word}': expected a process ID (a positive number)"
        ))
    };
    assert_error(&vrfexec(&["identify", "abc"]), 125, &pid("abc"));
    assert_error(&vrfexec(&["identify", "0"]), 125, &pid("0"));
    assert_error(
        &vrfexec(&["identify", "2147483647"]),
        125,
        "cannot find PID 2147483647: no such process",
    );
    assert_error(
        &vrfexec(&["move", "-5", "red"]),
        125,
        &usage("unexpected argument '-5' found"),
    );
    assert_error(&vrfexec(&["move", "x1", "red"]), 125, &pid("x1"));
    let slash = r#"invalid VRF name "a/b": contains '/'"#;
    assert_error(&vrfexec(&["move", "1", "a/b"]), 125, slash);
    assert_error(&vrfexec(&["show", "a/b"]), 125, slash);
    assert_error(&vrfexec(&["attach", "a/b"]), 125, slash);
    assert_error(
        &vrfexec(&["pids", "default"]),
        125,
        &usage("`pids` takes a VRF name, not default"),
    );
    assert_error(&vrfexec(&["pids"]), 125, &usage("missing <VRF>"));
    assert_error(&vrfexec(&["move", "1"]), 125, &usage("missing <VRF>"));
    assert_error(
        &vrfexec(&["attach", "default"]),
        125,
        "invalid attach target 'default': `attach` takes a VRF name; leave the unit without \
         the attach line to run it in the default VRF",
    );
    assert_error(
        &vrfexec(&["route", "default", "192.0.2.1"]),
        125,
        "invalid route target 'default': `route` takes a VRF name; use `ip route get` for the \
         default VRF",
    );
    // ping keeps iputils' exit status 2 for every error.
    assert_error(
        &vrfexec(&["ping", "default", "127.0.0.1"]),
        2,
        "invalid ping target 'default': `ping` takes a VRF name; use ping(8) for the default VRF",
    );
    assert_error(
        &vrfexec(&["ping", "-c", "0", "red", "x"]),
        2,
        &usage("invalid -c '0': expected a count of at least 1"),
    );
    assert_error(&vrfexec(&["ping"]), 2, &usage("missing <NAME> and <DEST>"));
}

#[test]
fn identify_reads_the_callers_cgroup() {
    // Not `vrfexec()`: the answer names the process, which differs between the two runs.
    for out in both(&["identify", "--json"]) {
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        let own = std::fs::read_to_string("/proc/self/cgroup").expect("cgroup");
        let path = own
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .expect("v2 path");
        assert!(text.contains(&format!("\"cgroup\":\"{path}\"")), "{text}");
    }
}

/// systemd's ExecCondition= skips a unit silently on 1 to 254: `attach --condition` exits 255
/// on every failure, also those before attach runs (a usage error; the launcher without its
/// full build).
#[test]
fn attach_condition_fails_with_255_even_before_attach_runs() {
    let out = vrfexec(&["attach", "--condition"]);
    assert_eq!(out.status.code(), Some(255), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    // Without --condition, the same usage error is 125.
    assert_eq!(vrfexec(&["attach"]).status.code(), Some(125));

    // The launcher alone, its full build missing (a broken install).
    let dir = std::env::temp_dir().join(format!("vrfexec-cli-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("bin")).expect("make a temporary bin/");
    let launcher = dir.join("bin/vrfexec");
    std::fs::copy(env!("CARGO_BIN_EXE_vrfexec"), &launcher).expect("copy the launcher");
    let run = |args: &[&str]| {
        Command::new(&launcher)
            .args(args)
            .output()
            .expect("run the copied launcher")
    };
    let condition = run(&["attach", "--condition", "red"]);
    let plain = run(&["attach", "red"]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(condition.status.code(), Some(255), "{}", stderr(&condition));
    assert_eq!(
        stderr(&condition).lines().count(),
        1,
        "{}",
        stderr(&condition)
    );
    assert_ne!(plain.status.code(), Some(255), "{}", stderr(&plain));
    assert_ne!(plain.status.code(), Some(0), "{}", stderr(&plain));
}
