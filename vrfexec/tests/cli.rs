//! Black-box tests of the built binary that need no privileges: usage, help, exit codes and
//! the failures that must happen before vrfexec changes anything.
use std::process::{Command, Output};

fn vrfexec(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vrfexec"))
        .args(args)
        .output()
        .expect("run vrfexec")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// One line on stderr, starting with "vrfexec: ", and the expected exit status.
fn assert_error(out: &Output, code: i32, needle: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line expected: {err:?}");
    assert!(err.starts_with("vrfexec: "), "{err:?}");
    assert!(err.contains(needle), "{err:?} should contain {needle:?}");
    assert!(out.stdout.is_empty(), "nothing on stdout on failure");
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
    assert_error(&vrfexec(&[]), 125, "no VRF and command given");
    assert_error(&vrfexec(&["red"]), 125, "no command given");
    assert_error(&vrfexec(&["exec"]), 125, "no VRF and command given");
    assert_error(
        &vrfexec(&["--bogus", "red", "true"]),
        125,
        "unexpected argument '--bogus'",
    );
    assert_error(&vrfexec(&["--dev"]), 125, "invalid usage");
    assert_error(
        &vrfexec(&["--dev", "eth0"]),
        125,
        "no VRF and command given",
    );
    // A name starting with '-' needs `--`; without it, it is an unknown option.
    assert_error(&vrfexec(&["-odd", "true"]), 125, "invalid usage");
}

#[test]
fn names_that_could_escape_the_cgroup_tree_are_refused() {
    for (name, why) in [
        ("a/b", "contains '/'"),
        ("..", "'.' and '..'"),
        ("../../etc", "contains '/'"),
        ("", "it is empty"),
        ("sixteen-chars-xx", "longer than 15 bytes"),
        ("a b", "whitespace"),
        ("a:b", "contains ':'"),
    ] {
        let out = vrfexec(&["--", name, "true"]);
        assert_error(&out, 125, why);
        let out = vrfexec(&["--dev", name, "true"]);
        assert_error(&out, 125, why);
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
        "No such file or directory",
    );
    assert_error(
        &vrfexec(&["default", "/etc/passwd"]),
        126,
        "cannot run /etc/passwd",
    );
    assert_error(&vrfexec(&["default", "/"]), 126, "cannot run /");
}

#[test]
fn man_page_documents_every_option_and_exit_code() {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../doc/vrfexec.1")).expect("doc/vrfexec.1");
    let help = String::from_utf8_lossy(&vrfexec(&["exec", "--help"]).stdout).into_owned();
    for long in help.split_whitespace().filter(|w| w.starts_with("--") && w.len() > 2) {
        let long = long.trim_end_matches(',');
        let roff = long.replace('-', "\\-");
        assert!(page.contains(&roff), "man page lacks {long}");
    }
    for code in ["125", "126", "127"] {
        assert!(page.contains(code), "man page lacks exit code {code}");
    }
}
