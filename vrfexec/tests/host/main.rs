//! Privileged host tests of vrfexec on this machine's kernel, without the VRF driver: `--dev`
//! exercises the same path (cgroup, program, exec) with a veth. Each scenario builds its own
//! network namespaces and cgroup (lab.rs) and removes them, even when it fails.
//!
//! Output: one line per scenario (PASS/FAIL/SKIP) and `host: N passed, N failed, N skipped`.
//! Not root, or no cgroup2/netns support: every scenario is printed as SKIP with the reason;
//! with VRFEXEC_HOST_SUITE_REQUIRED=1 (`cargo xtask test` sets it) that run fails.
mod lab;
mod probe;

use std::{
    fs,
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
    path::Path,
    process::Output,
    time::{Duration, Instant},
};

use aya_obj::generated::{
    bpf_attach_type, bpf_attr, bpf_cmd, bpf_insn, bpf_prog_type, BPF_ALU64, BPF_EXIT,
    BPF_F_ALLOW_MULTI, BPF_JMP, BPF_K, BPF_MEM, BPF_MOV, BPF_REG_0, BPF_REG_1, BPF_REG_2, BPF_STX,
    BPF_W,
};
use lab::Lab;

const VRFEXEC: &str = env!("CARGO_BIN_EXE_vrfexec");

type Scenario = (&'static str, fn(&Lab) -> Result<(), String>);

const SCENARIOS: &[Scenario] = &[
    (
        "sockets of every kind are bound in the command, child and grandchild",
        sockets_bound_in_descendants,
    ),
    (
        "a daemon started after a double fork is bound",
        daemon_is_bound,
    ),
    (
        "binding works with cgroup2 visible (nsenter) and hidden (ip netns exec)",
        visible_and_private_cgroup2,
    ),
    (
        "traffic leaves by the bound device when two devices route the prefix",
        traffic_leaves_by_bound_device,
    ),
    ("the binding survives further execs", binding_survives_exec),
    (
        "exit status, argv, environment, cwd and fds pass through unchanged",
        passes_everything_through,
    ),
    (
        "innermost request wins; default unbinds",
        nesting_innermost_wins,
    ),
    (
        "repeated runs leave exactly one program, only on the vrf cgroup",
        nothing_stacks_or_leaks,
    ),
    (
        "bad input exits with the documented code and changes nothing",
        bad_input_changes_nothing,
    ),
    (
        "an unprivileged caller is told which capability is missing",
        unprivileged_caller,
    ),
    (
        "a read-only cgroupfs is reported and changes nothing",
        read_only_cgroupfs,
    ),
    (
        "identify reports a running process's binding; move to default clears it",
        identify_and_move,
    ),
    (
        "route --dev agrees with ip route get ... oif, field by field",
        route_matches_iproute2,
    ),
    (
        "ping --dev replies only through the bound device; exit 0/1/2",
        ping_by_device,
    ),
    (
        "warm runs reuse the program; a re-created device gets a new one",
        warm_and_recreated,
    ),
    (
        "a foreign program on the cgroup is replaced, not trusted",
        foreign_program_replaced,
    ),
    (
        "an ancestor cgroup's program that rebinds sockets is found and refused",
        ancestor_program_refused,
    ),
    (
        "a flock any user takes on the VRF cgroup holds up no run",
        foreign_flock_does_not_block,
    ),
    (
        "40 concurrent cold and warm runs on two devices all bind right",
        concurrent_runs,
    ),
    (
        "gc removes idle vrf cgroups and leaves used ones alone",
        gc_keeps_used_cgroups,
    ),
    (
        "trace shows sockets and connects through the bound device; status is the command's",
        trace_shows_connects,
    ),
    (
        "trace --json shows a rebind to another device; --strict shows it refused",
        trace_rebind_json_and_strict,
    ),
    (
        "trace leaves nothing; a killed tracer's programs go with it and gc takes its cgroup",
        trace_cleans_up,
    ),
];

/// Set to 1 (by `cargo xtask test`) to make a run where every scenario is skipped fail.
const REQUIRED_VAR: &str = "VRFEXEC_HOST_SUITE_REQUIRED";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("probe") {
        std::process::exit(probe::main(&args[1..]));
    }
    let filter: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let skip_reason = precondition();
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for (name, scenario) in SCENARIOS {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        if let Some(reason) = &skip_reason {
            println!("SKIP {name}: {reason}");
            skipped += 1;
            continue;
        }
        let result = Lab::new()
            .map_err(|e| format!("lab setup: {e}"))
            .and_then(|lab| scenario(&lab));
        match result {
            Ok(()) => {
                println!("PASS {name}");
                passed += 1;
            }
            Err(reason) => {
                println!("FAIL {name}: {reason}");
                failed += 1;
            }
        }
    }
    println!("host: {passed} passed, {failed} failed, {skipped} skipped");
    // `cargo xtask test` (CI) requires the suite: a run that tested nothing must not pass.
    let required = std::env::var_os(REQUIRED_VAR).is_some_and(|v| v == "1");
    if required && passed == 0 && failed == 0 {
        println!(
            "host: every scenario was skipped and {REQUIRED_VAR}=1 requires them; run the tests as \
             root with cgroup2 and network namespaces"
        );
        std::process::exit(1);
    }
    std::process::exit(if failed > 0 { 1 } else { 0 });
}

fn precondition() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("needs root (network namespaces, cgroups, BPF)".into());
    }
    if lab::cgroup2_mount().is_none() {
        return Some("no cgroup2 mount on this host".into());
    }
    for tool in ["ip", "nsenter", "socat", "setpriv", "unshare"] {
        if lab::sh(&format!("command -v {tool}")).is_err() {
            return Some(format!("{tool} is not installed (run `cargo xtask setup`)"));
        }
    }
    None
}

fn me() -> String {
    std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn expect_ok(out: &Output) -> Result<String, String> {
    if out.status.success() {
        Ok(text(out))
    } else {
        Err(format!(
            "exit {:?}, stderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Every socket kind in a probe report is bound to `dev` ("-" for unbound).
fn all_bound(report: &str, dev: &str) -> Result<(), String> {
    let fields: Vec<&str> = report.split_whitespace().collect();
    if fields.len() != probe::KIND_COUNT {
        return Err(format!("probe report incomplete: {report:?}"));
    }
    match fields
        .iter()
        .find(|f| f.split_once('=').map(|(_, d)| d) != Some(dev))
    {
        None => Ok(()),
        Some(bad) => Err(format!(
            "expected every socket on {dev}, got {bad} in {report:?}"
        )),
    }
}

fn sockets_bound_in_descendants(lab: &Lab) -> Result<(), String> {
    let me = me();
    for mode in ["self", "child", "grandchild"] {
        let report =
            expect_ok(&lab.run_in_a(false, &[VRFEXEC, "--dev", "v1", &me, "probe", mode]))?;
        all_bound(&report, "v1").map_err(|e| format!("{mode}: {e}"))?;
    }
    // Control: without vrfexec nothing is bound, so the probe can tell the difference.
    let report = expect_ok(&lab.run_in_a(false, &[&me, "probe", "self"]))?;
    all_bound(&report, "-").map_err(|e| format!("control run: {e}"))
}

fn daemon_is_bound(lab: &Lab) -> Result<(), String> {
    let file = std::env::temp_dir().join(format!("{}-daemon", lab.a));
    let file_s = file.display().to_string();
    let out = lab.run_in_a(
        false,
        &[VRFEXEC, "--dev", "v2", &me(), "probe", "daemon", &file_s],
    );
    expect_ok(&out)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let report = loop {
        if let Ok(report) = fs::read_to_string(&file) {
            break report;
        }
        if Instant::now() > deadline {
            return Err("the daemon never wrote its report".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = fs::remove_file(&file);
    all_bound(report.trim(), "v2")
}

fn visible_and_private_cgroup2(lab: &Lab) -> Result<(), String> {
    for visible in [true, false] {
        let out = lab.run_in_a(visible, &[VRFEXEC, "--dev", "v2", &me(), "probe", "self"]);
        all_bound(&expect_ok(&out)?, "v2").map_err(|e| format!("visible={visible}: {e}"))?;
    }
    // Both land in the same iproute2-style cgroup: <own>/<netns>-ns/vrf/v2.
    let procs = lab.vrf_cgroup(Some("v2")).join("cgroup.procs");
    if !procs.exists() {
        return Err(format!("{} was not created", procs.display()));
    }
    Ok(())
}

fn traffic_leaves_by_bound_device(lab: &Lab) -> Result<(), String> {
    for (addr, family) in [("10.77.0.2", "v4"), ("[fd77::2]", "v6")] {
        let target = format!("TCP:{addr}:7000");
        for (dev, expect) in [("v1", "p1"), ("v2", "p2")] {
            let got = expect_ok(&lab.run_in_a(
                false,
                &[VRFEXEC, "--dev", dev, "socat", "-T3", "-", &target],
            ))?;
            if got != expect {
                return Err(format!(
                    "{family} via {dev}: answered by {got:?}, expected {expect}"
                ));
            }
        }
    }
    Ok(())
}

fn binding_survives_exec(lab: &Lab) -> Result<(), String> {
    let script = format!("exec sh -c 'exec {} probe self'", me());
    let report = expect_ok(&lab.run_in_a(false, &[VRFEXEC, "--dev", "v2", "sh", "-c", &script]))?;
    all_bound(&report, "v2")
}

fn passes_everything_through(lab: &Lab) -> Result<(), String> {
    let out = lab.run_in_a(false, &[VRFEXEC, "--dev", "v1", "sh", "-c", "exit 7"]);
    if out.status.code() != Some(7) {
        return Err(format!("exit status {:?}, expected 7", out.status.code()));
    }
    if !out.stderr.is_empty() {
        return Err(format!(
            "vrfexec was not quiet: {:?}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let script = r#"printf '%s|%s|%s|%s' "$0" "$1" "$VRFEXEC_TEST_VAR" "$PWD""#;
    let mut cmd = lab.command(&[
        "ip", "netns", "exec", &lab.a, VRFEXEC, "--dev", "v1", "sh", "-c", script, "zero",
        "one two",
    ]);
    cmd.env("VRFEXEC_TEST_VAR", "kept").current_dir("/tmp");
    let got = expect_ok(&cmd.output().map_err(|e| e.to_string())?)?;
    if got != "zero|one two|kept|/tmp" {
        return Err(format!("argv/env/cwd changed: {got:?}"));
    }
    // fd 5 from the caller reaches the command; nothing vrfexec opened does. The baseline is
    // the same probe without vrfexec, since the caller (cargo) may pass fds of its own.
    let file = fs::File::open("/dev/null").map_err(|e| e.to_string())?;
    let raw = file.as_raw_fd();
    let me = me();
    let fds_of = |argv: &[&str]| -> Result<String, String> {
        let mut cmd = lab.command(argv);
        // SAFETY: dup2 in the child between fork and exec; `raw` stays open in the parent.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
                if libc::dup2(raw, 5) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        expect_ok(&cmd.output().map_err(|e| e.to_string())?)
    };
    let baseline = fds_of(&["ip", "netns", "exec", &lab.a, &me, "probe", "fds"])?;
    let fds = fds_of(&[
        "ip", "netns", "exec", &lab.a, VRFEXEC, "--dev", "v1", &me, "probe", "fds",
    ])?;
    if !baseline.split(',').any(|fd| fd == "5") {
        return Err(format!("baseline lacks fd 5: {baseline}"));
    }
    if fds != baseline {
        return Err(format!(
            "open fds in the command: {fds}, without vrfexec: {baseline}"
        ));
    }
    Ok(())
}

fn nesting_innermost_wins(lab: &Lab) -> Result<(), String> {
    let me = me();
    let report = expect_ok(&lab.run_in_a(
        false,
        &[
            VRFEXEC, "--dev", "v1", VRFEXEC, "--dev", "v2", &me, "probe", "self",
        ],
    ))?;
    all_bound(&report, "v2").map_err(|e| format!("nested --dev: {e}"))?;
    let report = expect_ok(&lab.run_in_a(
        false,
        &[
            VRFEXEC, "--dev", "v1", VRFEXEC, "default", &me, "probe", "self",
        ],
    ))?;
    all_bound(&report, "-").map_err(|e| format!("default inside --dev: {e}"))
}

/// BPF_PROG_QUERY: how many programs are attached directly to the cgroup at `dir`.
fn attached_programs(dir: &Path) -> Result<u32, String> {
    program_ids(dir).map(|ids| ids.len() as u32)
}

/// BPF_PROG_QUERY: the ids of the sock_create programs attached directly to the cgroup at
/// `dir`.
fn program_ids(dir: &Path) -> Result<Vec<u32>, String> {
    program_ids_of(dir, bpf_attach_type::BPF_CGROUP_INET_SOCK_CREATE)
}

/// BPF_PROG_QUERY: the ids of the programs of `attach_type` attached directly to the cgroup at
/// `dir`.
fn program_ids_of(dir: &Path, attach_type: bpf_attach_type) -> Result<Vec<u32>, String> {
    let cg = fs::File::open(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut ids = [0u32; 16];
    let mut attr = zeroed_attr();
    attr.value.query.__bindgen_anon_1.target_fd = cg.as_raw_fd() as u32;
    attr.value.query.attach_type = attach_type as u32;
    attr.value.query.prog_ids = ids.as_mut_ptr() as u64;
    attr.value.query.__bindgen_anon_2.prog_cnt = ids.len() as u32;
    sys_bpf(bpf_cmd::BPF_PROG_QUERY, &mut attr)
        .map_err(|e| format!("BPF_PROG_QUERY {}: {e}", dir.display()))?;
    // SAFETY: attr holds only integers, all initialised (zero, then set by us or the kernel).
    let count = unsafe { attr.value.query.__bindgen_anon_2.prog_cnt };
    Ok(ids[..count as usize].to_vec())
}

/// `union bpf_attr`, made from zero bytes (the kernel wants zero in the fields a command does
/// not read). The byte view spans it all, so moves keep its 4 bytes of tail padding zero,
/// which the kernel checks.
#[repr(C)]
union Attr {
    value: bpf_attr,
    bytes: [u8; std::mem::size_of::<bpf_attr>()],
}

fn zeroed_attr() -> Attr {
    Attr {
        bytes: [0; std::mem::size_of::<bpf_attr>()],
    }
}

/// bpf(2) with the whole union; the syscall's non-negative result.
fn sys_bpf(cmd: bpf_cmd, attr: &mut Attr) -> std::io::Result<i64> {
    // SAFETY: attr is a live, fully initialised bpf_attr (with a byte view) of the size
    // passed, and the pointers the callers put in it point to live buffers of the sizes given
    // with them.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as libc::c_long,
            attr as *mut Attr,
            std::mem::size_of::<Attr>(),
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(rc)
}

fn nothing_stacks_or_leaks(lab: &Lab) -> Result<(), String> {
    for _ in 0..3 {
        expect_ok(&lab.run_in_a(false, &[VRFEXEC, "--dev", "v1", "true"]))?;
    }
    expect_ok(&lab.run_in_a(true, &[VRFEXEC, "--dev", "v1", "true"]))?;
    let leaf = lab.vrf_cgroup(Some("v1"));
    let count = attached_programs(&leaf)?;
    if count != 1 {
        return Err(format!(
            "{} programs on {} after 4 runs, expected 1",
            count,
            leaf.display()
        ));
    }
    for dir in [lab.cgroup.clone(), lab.vrf_cgroup(None)] {
        let count = attached_programs(&dir)?;
        if count != 0 {
            return Err(format!(
                "{count} programs on {}, expected none",
                dir.display()
            ));
        }
    }
    // The command has exited: the cgroup holds no process, only the program for the next run.
    let procs = fs::read_to_string(leaf.join("cgroup.procs")).map_err(|e| e.to_string())?;
    if !procs.trim().is_empty() {
        return Err(format!("processes left in {}: {procs}", leaf.display()));
    }
    Ok(())
}

fn expect_failure(out: &Output, code: i32, needle: &str) -> Result<(), String> {
    let err = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(code)
        || err.lines().count() != 1
        || !err.starts_with("vrfexec: ")
        || !err.contains(needle)
    {
        return Err(format!(
            "expected exit {code} and one line with {needle:?}; got exit {:?}, stderr {err:?}",
            out.status.code()
        ));
    }
    Ok(())
}

fn bad_input_changes_nothing(lab: &Lab) -> Result<(), String> {
    let before = lab.cgroup_tree();
    let not_exec_path = std::env::temp_dir().join(format!("{}-noexec", lab.a));
    fs::write(&not_exec_path, "#!/bin/sh\n").map_err(|e| e.to_string())?;
    let not_exec = not_exec_path.display().to_string();
    let not_exec_msg = format!("cannot run {not_exec}: Permission denied");
    let result = bad_inputs(lab, &before, &not_exec, &not_exec_msg);
    let _ = fs::remove_file(&not_exec_path);
    result
}

fn bad_inputs(
    lab: &Lab,
    before: &[String],
    not_exec: &str,
    not_exec_msg: &str,
) -> Result<(), String> {
    let cases: [(&[&str], i32, &str); 6] = [
        (&["--dev", "nope0", "true"], 125, "device 'nope0' not found"),
        (&["nope0", "true"], 125, "VRF 'nope0' not found"),
        (
            &["v1", "true"],
            125,
            "'v1' is not a VRF: it is a veth device; use --dev v1",
        ),
        (
            &["--dev", "v1", "vrfexec-no-such-cmd"],
            127,
            "command not found",
        ),
        (&["--dev", "v1", not_exec], 126, not_exec_msg),
        (&["--", "../x", "true"], 125, "invalid VRF name"),
    ];
    for visible in [false, true] {
        for (args, code, needle) in &cases {
            let mut argv = vec![VRFEXEC];
            argv.extend_from_slice(args);
            expect_failure(&lab.run_in_a(visible, &argv), *code, needle)
                .map_err(|e| format!("{args:?}: {e}"))?;
            let after = lab.cgroup_tree();
            if after.as_slice() != before {
                return Err(format!(
                    "{args:?} changed the cgroup tree: {before:?} -> {after:?}"
                ));
            }
        }
    }
    Ok(())
}

fn unprivileged_caller(lab: &Lab) -> Result<(), String> {
    let before = lab.cgroup_tree();
    let out = lab.run_in_a(
        false,
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            VRFEXEC,
            "--dev",
            "v1",
            "true",
        ],
    );
    expect_failure(&out, 125, "missing capability CAP_BPF")?;
    if lab.cgroup_tree() != before {
        return Err("an unprivileged run changed the cgroup tree".into());
    }
    Ok(())
}

fn read_only_cgroupfs(lab: &Lab) -> Result<(), String> {
    let before = lab.cgroup_tree();
    // A private mount namespace where only this view of cgroup2 is read-only.
    let remount = format!(
        "mount -o remount,bind,ro '{}' && exec \"$@\"",
        lab.cg2.display()
    );
    let netns_arg = format!("--net=/run/netns/{}", lab.a);
    let out = lab
        .command(&[
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            &remount,
            "sh",
            "nsenter",
            &netns_arg,
            VRFEXEC,
            "--dev",
            "v1",
            "true",
        ])
        .output()
        .map_err(|e| e.to_string())?;
    expect_failure(&out, 125, "Read-only file system")?;
    if lab.cgroup_tree() != before {
        return Err("the failed run changed the cgroup tree".into());
    }
    Ok(())
}

fn identify_and_move(lab: &Lab) -> Result<(), String> {
    let mut sleeper = lab
        .command(&[
            "ip", "netns", "exec", &lab.a, VRFEXEC, "--dev", "v1", "sleep", "30",
        ])
        .spawn()
        .map_err(|e| e.to_string())?;
    // sh, ip netns exec and vrfexec all exec in place: the child's PID becomes sleep's.
    let pid = sleeper.id().to_string();
    let result = (|| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|c| c.trim() != "sleep")
            .unwrap_or(true)
        {
            if Instant::now() > deadline {
                return Err("the command never started".to_owned());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let identify = |json: bool| {
            let mut argv = vec![VRFEXEC, "identify", pid.as_str()];
            if json {
                argv.push("--json");
            }
            expect_ok(&lab.run_in_a(false, &argv))
        };
        if identify(false)? != "v1" {
            return Err(format!("identify said {:?}, expected v1", identify(false)?));
        }
        expect_ok(&lab.run_in_a(false, &[VRFEXEC, "move", &pid, "default"]))?;
        if !identify(false)?.is_empty() {
            return Err(format!(
                "after move to default, identify said {:?}",
                identify(false)?
            ));
        }
        let json = identify(true)?;
        if !json.contains("\"vrf\":null") || !json.contains(&format!("{}-ns/vrf", lab.a)) {
            return Err(format!("identify --json: {json}"));
        }
        // A moved process is still in the scenario's cgroup subtree (its own unit).
        let cgroup =
            fs::read_to_string(format!("/proc/{pid}/cgroup")).map_err(|e| e.to_string())?;
        let subtree = lab
            .cgroup
            .strip_prefix(&lab.cg2)
            .map_err(|e| e.to_string())?
            .display()
            .to_string();
        if !cgroup.contains(&subtree) {
            return Err(format!("moved out of its cgroup subtree: {cgroup}"));
        }
        // Bad PIDs: garbage, and one that does not exist.
        expect_failure(
            &lab.run_in_a(false, &[VRFEXEC, "move", "12x", "default"]),
            125,
            "invalid PID",
        )?;
        expect_failure(
            &lab.run_in_a(false, &[VRFEXEC, "move", "2147483647", "default"]),
            125,
            "cannot find PID",
        )?;
        expect_failure(
            &lab.run_in_a(false, &[VRFEXEC, "move", "2", "default"]),
            125,
            "kernel thread",
        )
    })();
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    result
}

/// A JSON string field's value in a flat JSON object (enough for ip -j and our output).
fn json_field(json: &str, key: &str) -> Option<String> {
    let at = json.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = json[at..].trim_start();
    if let Some(quoted) = rest.strip_prefix('"') {
        return quoted.split('"').next().map(str::to_owned);
    }
    rest.split([',', '}']).next().map(|v| v.trim().to_owned())
}

fn route_matches_iproute2(lab: &Lab) -> Result<(), String> {
    for (dev, dst) in [("v1", "10.77.0.2"), ("v2", "10.77.0.2"), ("v2", "fd77::2")] {
        let ours =
            expect_ok(&lab.run_in_a(false, &[VRFEXEC, "route", "--dev", dev, dst, "--json"]))?;
        let theirs =
            expect_ok(&lab.run_in_a(false, &["ip", "-j", "route", "get", dst, "oif", dev]))?;
        for key in ["dst", "dev", "prefsrc"] {
            let (a, b) = (json_field(&ours, key), json_field(&theirs, key));
            if a != b || a.is_none() {
                return Err(format!(
                    "{dst} via {dev}: {key} differs: vrfexec {a:?}, ip {b:?}\n{ours}\n{theirs}"
                ));
            }
        }
        let text = expect_ok(&lab.run_in_a(false, &[VRFEXEC, "route", "--dev", dev, dst]))?;
        if !text.starts_with(&format!("{dst} dev {dev}")) {
            return Err(format!("text output: {text:?}"));
        }
    }
    // A device given as a VRF is refused (route: 125), a missing one too.
    expect_failure(
        &lab.run_in_a(false, &[VRFEXEC, "route", "v1", "10.77.0.2"]),
        125,
        "use --dev v1",
    )?;
    expect_failure(
        &lab.run_in_a(false, &[VRFEXEC, "route", "--dev", "nope0", "10.77.0.2"]),
        125,
        "not found",
    )?;
    expect_failure(
        &lab.run_in_a(false, &[VRFEXEC, "route", "-6", "--dev", "v1", "10.77.0.2"]),
        125,
        "-6",
    )
}

fn ping_by_device(lab: &Lab) -> Result<(), String> {
    let ping = |dev: &str, dst: &str| {
        lab.run_in_a(
            false,
            &[
                VRFEXEC, "ping", "--dev", dev, dst, "-c", "2", "-i", "0.2", "-W", "1",
            ],
        )
    };
    for dst in ["10.77.0.2", "fd77::2"] {
        let out = expect_ok(&ping("v2", dst))?;
        if !out.contains("2 packets transmitted, 2 received, 0% packet loss")
            || !out.contains("icmp_seq=2")
        {
            return Err(format!("ping {dst} via v2:\n{out}"));
        }
    }
    // Take p2's side down: through v2 nothing answers (exit 1), through v1 p1 still does.
    lab::sh(&format!("ip -n {} link set e0 down", lab.peers[1]))?;
    let out = ping("v2", "10.77.0.2");
    if out.status.code() != Some(1)
        || !text(&out).contains("2 packets transmitted, 0 received, 100% packet loss")
    {
        return Err(format!(
            "ping via v2 with its peer down: exit {:?}\n{}",
            out.status.code(),
            text(&out)
        ));
    }
    expect_ok(&ping("v1", "10.77.0.2")).map_err(|e| format!("ping via v1: {e}"))?;
    // Errors exit 2, as iputils: a device given as a VRF, a bad count, an absurd size.
    expect_failure(
        &lab.run_in_a(false, &[VRFEXEC, "ping", "v1", "10.77.0.2"]),
        2,
        "use --dev v1",
    )?;
    expect_failure(
        &lab.run_in_a(
            false,
            &[VRFEXEC, "ping", "--dev", "v1", "10.77.0.2", "-c", "0"],
        ),
        2,
        "invalid -c",
    )?;
    expect_failure(
        &lab.run_in_a(
            false,
            &[VRFEXEC, "ping", "--dev", "v1", "10.77.0.2", "-s", "99999"],
        ),
        2,
        "invalid -s",
    )
}

fn warm_and_recreated(lab: &Lab) -> Result<(), String> {
    let me = me();
    let probe = || -> Result<(), String> {
        all_bound(
            &expect_ok(&lab.run_in_a(false, &[VRFEXEC, "--dev", "v1", &me, "probe", "self"]))?,
            "v1",
        )
    };
    probe()?;
    let leaf = lab.vrf_cgroup(Some("v1"));
    let first = program_ids(&leaf)?;
    let out = lab.run_in_a(false, &[VRFEXEC, "-v", "--dev", "v1", "true"]);
    if !String::from_utf8_lossy(&out.stderr).contains("warm:") {
        return Err(format!(
            "second run was not warm: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    probe()?;
    if program_ids(&leaf)? != first {
        return Err("a warm run replaced the program".into());
    }
    // Same name, new ifindex: the old program would bind to a dead index.
    lab::sh(&format!(
        "set -e; ip -n {a} link del v1; ip -n {a} link add v1 type veth peer name e0 netns {p}; \
         ip -n {a} link set v1 up; ip -n {p} link set e0 up",
        a = lab.a,
        p = lab.peers[0]
    ))?;
    probe().map_err(|e| format!("after re-creating v1: {e}"))?;
    let after = program_ids(&leaf)?;
    if after == first || after.len() != 1 {
        return Err(format!(
            "program after re-creation: {after:?}, before: {first:?}"
        ));
    }
    Ok(())
}

/// Loads a cgroup/sock_create program that only allows (r0 = 1; exit), with no name, as
/// iproute2's is, and attaches it with flags 0 to `dir`.
fn attach_foreign_program(dir: &Path) -> Result<(), String> {
    attach_sock_create(dir, None, 0)
}

/// Loads a cgroup/sock_create program, with no name, that allows the socket and, with
/// `bind`, first sets its bound device to that ifindex; attaches it to `dir` with `flags`.
fn attach_sock_create(dir: &Path, bind: Option<u32>, flags: u32) -> Result<(), String> {
    let insn = |code: u32, dst: u32, src: u32, off: i16, imm: i32| bpf_insn {
        code: code as u8,
        _bitfield_align_1: [],
        _bitfield_1: bpf_insn::new_bitfield_1(dst as u8, src as u8),
        off,
        imm,
    };
    let (r0, r1, r2) = (BPF_REG_0 as u32, BPF_REG_1 as u32, BPF_REG_2 as u32);
    let mut insns = Vec::new();
    if let Some(ifindex) = bind {
        // r2 = ifindex; ((struct bpf_sock *)r1)->bound_dev_if = r2 (its first field, offset 0)
        insns.push(insn(BPF_ALU64 | BPF_MOV | BPF_K, r2, 0, 0, ifindex as i32));
        insns.push(insn(BPF_STX | BPF_MEM | BPF_W, r1, r2, 0, 0));
    }
    // r0 = 1 (allow); exit
    insns.push(insn(BPF_ALU64 | BPF_MOV | BPF_K, r0, 0, 0, 1));
    insns.push(insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
    let license = c"GPL";
    let mut load = zeroed_attr();
    load.value.__bindgen_anon_3.prog_type = bpf_prog_type::BPF_PROG_TYPE_CGROUP_SOCK as u32;
    load.value.__bindgen_anon_3.insn_cnt = insns.len() as u32;
    load.value.__bindgen_anon_3.insns = insns.as_ptr() as u64;
    load.value.__bindgen_anon_3.license = license.as_ptr() as u64;
    load.value.__bindgen_anon_3.expected_attach_type =
        bpf_attach_type::BPF_CGROUP_INET_SOCK_CREATE as u32;
    let prog =
        sys_bpf(bpf_cmd::BPF_PROG_LOAD, &mut load).map_err(|e| format!("BPF_PROG_LOAD: {e}"))?;
    // SAFETY: prog is the fd BPF_PROG_LOAD just returned, owned by nothing else; the cgroup
    // keeps the program once attached.
    let prog = unsafe { OwnedFd::from_raw_fd(prog as i32) };
    let cg = fs::File::open(dir).map_err(|e| e.to_string())?;
    let mut attach = zeroed_attr();
    attach.value.__bindgen_anon_5.__bindgen_anon_1.target_fd = cg.as_raw_fd() as u32;
    attach.value.__bindgen_anon_5.attach_bpf_fd = prog.as_raw_fd() as u32;
    attach.value.__bindgen_anon_5.attach_type = bpf_attach_type::BPF_CGROUP_INET_SOCK_CREATE as u32;
    attach.value.__bindgen_anon_5.attach_flags = flags;
    sys_bpf(bpf_cmd::BPF_PROG_ATTACH, &mut attach)
        .map(drop)
        .map_err(|e| format!("BPF_PROG_ATTACH: {e}"))
}

fn foreign_program_replaced(lab: &Lab) -> Result<(), String> {
    let me = me();
    expect_ok(&lab.run_in_a(false, &[VRFEXEC, "--dev", "v2", "true"]))?;
    let leaf = lab.vrf_cgroup(Some("v2"));
    attach_foreign_program(&leaf)?;
    // The foreign program binds nothing: a wrong warm path would leave sockets unbound.
    all_bound(
        &expect_ok(&lab.run_in_a(false, &[VRFEXEC, "--dev", "v2", &me, "probe", "self"]))?,
        "v2",
    )?;
    let ids = program_ids(&leaf)?;
    if ids.len() != 1 {
        return Err(format!("programs on the cgroup: {ids:?}"));
    }
    Ok(())
}

/// What systemd's BindNetworkInterface= does to a unit: a program on an ancestor of vrfexec's
/// cgroup, run after vrfexec's, binds every socket elsewhere. vrfexec must refuse before the
/// command runs and name that cgroup, for a device and for `default` alike.
fn ancestor_program_refused(lab: &Lab) -> Result<(), String> {
    let v1 = lab::sh(&format!(
        "ip netns exec {} cat /sys/class/net/v1/ifindex",
        lab.a
    ))?;
    let v1: u32 = v1
        .trim()
        .parse()
        .map_err(|e| format!("ifindex of v1: {e}"))?;
    // Before: the same runs pass the probe.
    expect_ok(&lab.run_in_a(false, &[VRFEXEC, "--dev", "v2", "true"]))?;
    expect_ok(&lab.run_in_a(false, &[VRFEXEC, "default", "true"]))?;
    attach_sock_create(&lab.cgroup, Some(v1), BPF_F_ALLOW_MULTI)?;
    let marker = std::env::temp_dir().join(format!("{}-ran", lab.a));
    let marker_arg = marker.display().to_string();
    let cgroup_name = lab
        .cgroup
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for target in [&["--dev", "v2"][..], &["default"][..]] {
        let mut argv = vec![VRFEXEC];
        argv.extend_from_slice(target);
        argv.extend_from_slice(&["touch", &marker_arg]);
        let out = lab.run_in_a(false, &argv);
        expect_failure(
            &out,
            125,
            "does not hold: new IPv4 UDP sockets are bound to v1",
        )?;
        expect_failure(
            &out,
            125,
            &format!("{cgroup_name} has its own cgroup/sock_create program"),
        )?;
        if marker.exists() {
            let _ = fs::remove_file(&marker);
            return Err(format!(
                "{target:?}: the command ran although the binding did not hold"
            ));
        }
    }
    Ok(())
}

/// Any user can open a cgroup directory and flock it; the lock vrfexec waits for must not be
/// one of those. With `flock` held on the VRF cgroup by nobody, runs and gc go on.
fn foreign_flock_does_not_block(lab: &Lab) -> Result<(), String> {
    expect_ok(&lab.run_in_a(false, &[VRFEXEC, "--dev", "v2", "true"]))?;
    let leaf = lab.vrf_cgroup(Some("v2"));
    let leaf_arg = leaf.display().to_string();
    let mut holder = std::process::Command::new("setpriv")
        .args([
            "--reuid",
            "nobody",
            "--regid",
            "nogroup",
            "--clear-groups",
            "flock",
        ])
        .args([leaf_arg.as_str(), "sleep", "60"])
        .spawn()
        .map_err(|e| format!("setpriv flock: {e}"))?;
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let result = expect_ok(&lab.run_in_a(false, &[VRFEXEC, "--dev", "v2", "true"]));
    let took = started.elapsed();
    let _ = holder.kill();
    let _ = holder.wait();
    result?;
    if took > Duration::from_secs(10) {
        return Err(format!("the run waited {took:?} for a lock nobody held"));
    }
    Ok(())
}

fn concurrent_runs(lab: &Lab) -> Result<(), String> {
    let me = me();
    // Half the runs start cold (fresh cgroups), the rest find the program attached.
    let children: Vec<(String, std::process::Child)> = (0..40)
        .map(|i| {
            let dev = if i % 2 == 0 { "v1" } else { "v2" }.to_owned();
            let child = lab
                .command(&[
                    "ip", "netns", "exec", &lab.a, VRFEXEC, "--dev", &dev, &me, "probe", "self",
                ])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn();
            child.map(|c| (dev, c)).map_err(|e| e.to_string())
        })
        .collect::<Result<_, _>>()?;
    for (dev, child) in children {
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        all_bound(&expect_ok(&out)?, &dev)?;
    }
    for dev in ["v1", "v2"] {
        let count = attached_programs(&lab.vrf_cgroup(Some(dev)))?;
        if count != 1 {
            return Err(format!(
                "{count} programs on {dev}'s cgroup after 40 concurrent runs"
            ));
        }
    }
    Ok(())
}

fn gc_keeps_used_cgroups(lab: &Lab) -> Result<(), String> {
    expect_ok(&lab.run_in_a(false, &[VRFEXEC, "--dev", "v1", "true"]))?;
    let mut sleeper = lab
        .command(&[
            "ip", "netns", "exec", &lab.a, VRFEXEC, "--dev", "v2", "sleep", "30",
        ])
        .spawn()
        .map_err(|e| e.to_string())?;
    let result = (|| {
        let busy = lab.vrf_cgroup(Some("v2"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while fs::read_to_string(busy.join("cgroup.procs"))
            .map(|p| p.trim().is_empty())
            .unwrap_or(true)
        {
            if Instant::now() > deadline {
                return Err("the sleeper never joined its cgroup".to_owned());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let idle = lab.vrf_cgroup(Some("v1"));
        let dry = lab.run_in_a(false, &[VRFEXEC, "gc", "--dry-run"]);
        expect_ok(&dry)?;
        if !idle.exists() || !String::from_utf8_lossy(&dry.stderr).contains("would remove") {
            return Err(format!("dry run: {}", String::from_utf8_lossy(&dry.stderr)));
        }
        expect_ok(&lab.run_in_a(true, &[VRFEXEC, "gc"]))?;
        if idle.exists() {
            return Err(format!("{} survived gc", idle.display()));
        }
        if !busy.exists() || attached_programs(&busy)? != 1 {
            return Err("gc touched the cgroup in use".into());
        }
        // The next run on v1 works again (cold).
        all_bound(
            &expect_ok(&lab.run_in_a(false, &[VRFEXEC, "--dev", "v1", &me(), "probe", "self"]))?,
            "v1",
        )
    })();
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    result
}

/// The `trace:*` cgroups below `dir` (a VRF cgroup or its strict child).
fn trace_cgroups(dir: &Path) -> Vec<std::path::PathBuf> {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("trace:"))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn trace_shows_connects(lab: &Lab) -> Result<(), String> {
    for (addr, family) in [("10.77.0.2", "inet"), ("[fd77::2]", "inet6")] {
        let script = format!("socat -T3 - TCP:{addr}:7000; exit 7");
        let out = lab.run_in_a(
            false,
            &[VRFEXEC, "trace", "--dev", "v1", "sh", "-c", &script],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.code() != Some(7) || text(&out) != "p1" {
            return Err(format!(
                "{family}: status {:?}, answer {:?}, stderr {stderr}",
                out.status.code(),
                text(&out)
            ));
        }
        for needle in [
            format!("socat: socket {family} stream tcp = "),
            format!("socat: connect tcp {addr}:7000 via v1\n"),
            "trace: sh exited with status 7 after".to_owned(),
            format!("trace: connect tcp {addr}:7000 via v1 (1x)"),
            "trace: everything used v1\n".to_owned(),
        ] {
            if !stderr.contains(&needle) {
                return Err(format!("{family}: no {needle:?} in:\n{stderr}"));
            }
        }
        if !trace_cgroups(&lab.vrf_cgroup(Some("v1"))).is_empty() {
            return Err("the trace cgroup stayed after the command exited".into());
        }
    }
    // A caller that ignores SIGCHLD (inherited through exec) still gets the command's status;
    // the command gets the ignored SIGCHLD back (read from /proc's SigIgn mask).
    let ignore_chld = "import os, signal, sys\n\
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)\n\
        os.execv(sys.argv[1], sys.argv[1:])";
    let out = lab.run_in_a(
        false,
        &[
            "timeout",
            "30",
            "python3",
            "-c",
            ignore_chld,
            VRFEXEC,
            "trace",
            "--dev",
            "v1",
            "grep",
            "SigIgn",
            "/proc/self/status",
        ],
    );
    let ignored = text(&out)
        .split_whitespace()
        .nth(1)
        .and_then(|mask| u64::from_str_radix(mask, 16).ok())
        .is_some_and(|mask| mask & (1 << (libc::SIGCHLD - 1)) != 0);
    if out.status.code() != Some(0) || !ignored {
        return Err(format!(
            "with SIGCHLD ignored: status {:?}, {:?}, stderr {}",
            out.status.code(),
            text(&out),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

fn trace_rebind_json_and_strict(lab: &Lab) -> Result<(), String> {
    const REBIND: &str = "import socket\n\
        s = socket.socket()\n\
        try:\n    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b'v2')\n\
        except OSError as e:\n    print(e.errno)\n\
        s.settimeout(3)\n\
        s.connect(('10.77.0.2', 7000))\n\
        print(s.recv(16).decode().strip())\n";
    let out_file = std::env::temp_dir().join(format!("vrfexec-trace-{}.json", std::process::id()));
    let out_path = out_file.to_string_lossy().into_owned();
    let check = |strict: bool| -> Result<(), String> {
        let mut argv = vec![VRFEXEC, "trace", "--json", "-o", &out_path];
        if strict {
            argv.push("--strict");
        }
        argv.extend(["--dev", "v1", "python3", "-c", REBIND]);
        let out = lab.run_in_a(false, &argv);
        let answer = expect_ok(&out)?;
        let expected = if strict { "1\np1" } else { "p2" };
        if answer != expected {
            return Err(format!(
                "strict={strict}: answer {answer:?}, expected {expected:?}"
            ));
        }
        if String::from_utf8_lossy(&out.stderr).contains("{\"") {
            return Err("--output: JSON went to stderr too".into());
        }
        let written = fs::read_to_string(&out_file).map_err(|e| format!("{out_path}: {e}"))?;
        let lines: Vec<serde_json::Value> = written
            .lines()
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("a line is not JSON ({e}):\n{written}"))?;
        let find = |event: &str| lines.iter().find(|l| l["event"] == event);
        let rebind = find("setsockopt").ok_or_else(|| format!("no setsockopt in {written}"))?;
        // Only the TCP connect: a machine whose NSS asks nscd adds Unix
        // connects from the lab's shells before python3 starts.
        let connect = lines
            .iter()
            .find(|l| l["event"] == "connect" && l["protocol"] == "tcp")
            .ok_or_else(|| format!("no tcp connect in {written}"))?;
        let summary = lines.last().filter(|l| l["event"] == "summary");
        let summary = summary.ok_or_else(|| format!("no summary last in {written}"))?;
        let (rebind_error, connect_dev, outside, refused) = if strict {
            ("EPERM", "v1", 0, 1)
        } else {
            ("", "v2", 2, 0)
        };
        if rebind["option"] != "SO_BINDTODEVICE"
            || rebind["dev"] != "v2"
            || rebind["error"].as_str().unwrap_or("") != rebind_error
            || connect["dev"] != connect_dev
            || connect["port"] != 7000
            || summary["status"] != 0
            || summary["outside"].as_array().map(Vec::len) != Some(outside)
            || summary["refused"] != refused
        {
            return Err(format!("strict={strict}: wrong facts in\n{written}"));
        }
        Ok(())
    };
    let result = check(false).and_then(|()| check(true));
    let _ = fs::remove_file(&out_file);
    result
}

fn trace_cleans_up(lab: &Lab) -> Result<(), String> {
    let mut tracer = lab
        .command(&[
            "ip", "netns", "exec", &lab.a, VRFEXEC, "trace", "--dev", "v1", "sleep", "30",
        ])
        .spawn()
        .map_err(|e| e.to_string())?;
    let vrf = lab.vrf_cgroup(Some("v1"));
    let result = (|| {
        let deadline = Instant::now() + Duration::from_secs(20);
        let cgroup = loop {
            // The command has exec'd (its programs were attached before).
            let found = trace_cgroups(&vrf).into_iter().find(|dir| {
                fs::read_to_string(dir.join("cgroup.procs")).is_ok_and(|procs| {
                    procs.split_whitespace().any(|p| {
                        fs::read_to_string(format!("/proc/{p}/comm"))
                            .is_ok_and(|c| c.trim() == "sleep")
                    })
                })
            });
            if let Some(dir) = found {
                if attached_of(&dir, CONNECT4)? != 1 {
                    return Err("the command runs without the trace's programs".into());
                }
                break dir;
            }
            if Instant::now() > deadline {
                return Err("the traced command never started".to_owned());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let pid: i32 = cgroup
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("trace:"))
            .and_then(|n| n.parse().ok())
            .ok_or("trace cgroup without a pid")?;
        // SAFETY: kill(2) with a pid read from the cgroup's name; no memory is involved.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        // Left unreaped, it is a zombie, which gc rightly counts as gone too.
        let deadline = Instant::now() + Duration::from_secs(10);
        while attached_of(&cgroup, CONNECT4)? != 0 {
            if Instant::now() > deadline {
                return Err("a killed tracer's programs stayed attached".to_owned());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // The command still runs (bound, in the cgroup): gc keeps it; once it is gone, gc
        // removes the cgroup.
        expect_ok(&lab.run_in_a(true, &[VRFEXEC, "gc"]))?;
        if !cgroup.exists() {
            return Err("gc removed a cgroup with a process in it".into());
        }
        let procs = fs::read_to_string(cgroup.join("cgroup.procs")).map_err(|e| e.to_string())?;
        for p in procs.split_whitespace() {
            let _ = lab::sh(&format!("kill -9 {p}"));
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            expect_ok(&lab.run_in_a(true, &[VRFEXEC, "gc"]))?;
            if !cgroup.exists() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("{} survived gc", cgroup.display()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })();
    let _ = tracer.kill();
    let _ = tracer.wait();
    result
}

const CONNECT4: bpf_attach_type = bpf_attach_type::BPF_CGROUP_INET4_CONNECT;

/// How many programs of `attach_type` are attached to the cgroup at `dir` (links included).
fn attached_of(dir: &Path, attach_type: bpf_attach_type) -> Result<u32, String> {
    program_ids_of(dir, attach_type).map(|ids| ids.len() as u32)
}
