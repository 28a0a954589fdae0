# shellcheck shell=bash
# VM scenarios for failing closed: setups where an attached program does not bind the command's
# sockets. `ip vrf exec` (the reference) then runs the command in the wrong VRF without a word;
# vrfexec must refuse before the command runs, exit 125, and name the cause.
# Sourced by suite.sh (rr, pass, fail, skip, selected, last_run, LAB_*). Only ever in the guest.

# Not named vrf*: iproute2 cuts its cgroup path at any "/vrf" substring.
FC_CGROUP=/sys/fs/cgroup/failclosed-test

# rr_in CGROUP CMD...: like rr, but started from CGROUP (joined before `ip netns exec`, which
# hides the cgroup2 mount); vrfexec then places itself below CGROUP.
rr_in() {
    local cg=$1 errf="$LAB_DIR/rr.stderr"
    shift
    R_OUT=$(timeout -k 5 "$CMD_TIMEOUT" sh -c 'echo $$ > "$0/cgroup.procs" && exec ip netns exec r "$@"' \
        "$cg" "$@" 2>"$errf" </dev/null)
    R_RC=$?
    R_ERR=$(cat "$errf" 2>/dev/null)
}

# expect_refusal NAME NEEDLE...: the last run exited 125 with one stderr line in vrfexec's
# format containing every NEEDLE, and printed nothing (the command never ran).
expect_refusal() {
    local name=$1 needle
    shift
    if [ "$R_RC" -ne 125 ] || [ -n "$R_OUT" ] || [ "$(printf '%s\n' "$R_ERR" | wc -l)" -ne 1 ] ||
        [[ $R_ERR != vrfexec:* ]]; then
        fail "$name" "expected a one-line refusal with exit 125, got $(last_run)"
        return
    fi
    for needle in "$@"; do
        if [[ $R_ERR != *"$needle"* ]]; then
            fail "$name" "the refusal does not say \"$needle\": $(last_run)"
            return
        fi
    done
    pass "$name"
}

# remove_cgroup_tree DIR: remove DIR and everything below it (innermost first).
remove_cgroup_tree() {
    [ -d "$1" ] || return 0
    find "$1" -depth -type d -exec rmdir {} \; 2>/dev/null
}

# A program on an ancestor cgroup that binds every socket to blue, attached with
# BPF_F_ALLOW_MULTI as systemd's BindNetworkInterface= does: it runs after the VRF cgroup's.
s_fc_ancestor() {
    local name blue_index sockbind="$LAB_DIR/sockbind"
    remove_cgroup_tree "$FC_CGROUP"
    if ! gcc -O2 -o "$sockbind" tests/vm/sockbind.c 2>"$LAB_DIR/gcc.err"; then
        fail fail-closed/ancestor "cannot build tests/vm/sockbind.c: $(oneline "$(cat "$LAB_DIR/gcc.err")")"
        return
    fi
    blue_index=$(ip netns exec r cat /sys/class/net/blue/ifindex)
    mkdir -p "$FC_CGROUP/unit"
    if ! "$sockbind" "$FC_CGROUP" "$blue_index"; then
        fail fail-closed/ancestor "cannot attach the ancestor's program"
        remove_cgroup_tree "$FC_CGROUP"
        return
    fi

    # The reference: ip vrf exec red reaches blue's peer, silently.
    name=fail-closed/ancestor/ipvrf-leaks
    if selected "$name"; then
        rr_in "$FC_CGROUP" ip vrf exec red "${CURL[@]}" "$URL4"
        if [ "$R_RC" -eq 0 ] && [ "$R_OUT" = blue ]; then
            pass "$name"
        else
            fail "$name" "expected ip vrf exec red to reach blue's peer here, got $(last_run)"
        fi
    fi
    name=fail-closed/ancestor/vrfexec-refuses
    if selected "$name"; then
        rr_in "$FC_CGROUP" "$VRFEXEC" red "${CURL[@]}" "$URL4"
        expect_refusal "$name" "binding to VRF red" "bound to blue" \
            "cgroup /failclosed-test has its own cgroup/sock_create program" "test_bindall"
    fi
    name=fail-closed/ancestor/strict-refuses
    if selected "$name"; then
        rr_in "$FC_CGROUP" "$VRFEXEC" --strict red "${CURL[@]}" "$URL4"
        expect_refusal "$name" "binding to VRF red" "cgroup /failclosed-test has its own"
    fi
    name=fail-closed/ancestor/default-refuses
    if selected "$name"; then
        rr_in "$FC_CGROUP" "$VRFEXEC" default "${CURL[@]}" "$URL4"
        expect_refusal "$name" "binding to the default VRF" "bound to blue" "cgroup /failclosed-test"
    fi
    # A unit's ExecStartPre=+vrfexec attach red, in a unit below that cgroup: the unit must
    # fail to start rather than run bound to blue.
    name=fail-closed/ancestor/attach-refuses
    if selected "$name"; then
        rr_in "$FC_CGROUP/unit" "$VRFEXEC" attach red
        expect_refusal "$name" "binding to VRF red" "cgroup /failclosed-test has its own"
    fi
    name=fail-closed/ancestor/check-reports
    if selected "$name"; then
        rr_in "$FC_CGROUP" "$VRFEXEC" check --json
        if [ "$R_RC" -eq 1 ] && check_has sock-create-program-above &&
            [[ $R_OUT == *'cgroup /failclosed-test, above the VRF cgroups'*test_bindall* ]]; then
            pass "$name"
        else
            fail "$name" "expected finding sock-create-program-above naming /failclosed-test, got $(last_run)"
        fi
    fi
    remove_cgroup_tree "$FC_CGROUP"
    # Without the ancestor's program, the same run works again.
    name=fail-closed/ancestor/removed-runs
    if selected "$name"; then
        mkdir -p "$FC_CGROUP"
        rr_in "$FC_CGROUP" "$VRFEXEC" red "${CURL[@]}" "$URL4"
        expect_out "$name" red quiet
        remove_cgroup_tree "$FC_CGROUP"
    fi
}

# cgroup v1 net_cls/net_prio in use. Kernels without "bpf, cgroups: Fix cgroup v2 fallback on
# v1/v2 mixed mode" then stop running cgroup v2 socket programs (for good, until reboot), so it
# runs last. Where the kernel has the trap, ip vrf exec runs unbound and vrfexec must refuse
# naming net_cls; where it does not, both must reach red.
s_fc_net_cls() {
    local name=fail-closed/net_cls mnt="$LAB_DIR/net_cls" hierarchy
    selected "$name" || return 0
    hierarchy=$(awk '$1 == "net_cls" { print $2 }' /proc/cgroups)
    if [ -z "$hierarchy" ]; then
        skip "$name" "this kernel has no net_cls controller"
        return
    fi
    mkdir -p "$mnt"
    if ! mountpoint -q "$mnt" && ! mount -t cgroup -o net_cls,net_prio none "$mnt" 2>"$LAB_DIR/mount.err"; then
        fail "$name" "cannot mount the v1 net_cls,net_prio hierarchy: $(oneline "$(cat "$LAB_DIR/mount.err")")"
        return
    fi
    mkdir -p "$mnt/classified"
    echo 0x100001 >"$mnt/classified/net_cls.classid"
    mkdir -p "$FC_CGROUP"
    local ref_rc ref_out
    R_OUT=$(timeout -k 5 "$CMD_TIMEOUT" sh -c 'echo $$ > "$0/tasks" && echo $$ > "$1/cgroup.procs" && shift && exec ip netns exec r ip vrf exec red "$@"' \
        "$mnt/classified" "$FC_CGROUP" "${CURL[@]}" "$URL4" 2>/dev/null </dev/null)
    ref_rc=$? ref_out=$R_OUT
    local errf="$LAB_DIR/rr.stderr"
    R_OUT=$(timeout -k 5 "$CMD_TIMEOUT" sh -c 'echo $$ > "$0/tasks" && echo $$ > "$1/cgroup.procs" && shift && exec ip netns exec r "$@"' \
        "$mnt/classified" "$FC_CGROUP" "$VRFEXEC" red "${CURL[@]}" "$URL4" 2>"$errf" </dev/null)
    R_RC=$?
    R_ERR=$(cat "$errf" 2>/dev/null)
    if [ "$ref_rc" -eq 0 ] && [ "$ref_out" = red ]; then
        echo "# net_cls trap absent on Linux $(uname -r): ip vrf exec stays bound with net_cls in use"
        expect_out "$name" red quiet
    else
        echo "# net_cls trap PRESENT on Linux $(uname -r): ip vrf exec ran unbound (exit $ref_rc, \"$(oneline "$ref_out")\")"
        expect_refusal "$name" "binding to VRF red" "net_cls"
    fi
    remove_cgroup_tree "$FC_CGROUP"
    rmdir "$mnt/classified" 2>/dev/null
    umount "$mnt" 2>/dev/null
}
