# shellcheck shell=bash
# VM scenarios for runs at boot and under faults: --wait for a VRF that appears later, and two
# faults found by injecting syscall failures with strace (no change to the code needed).
# Sourced by suite.sh (rr, via, pass, fail, skip, selected, last_run, LAB_*). Only in the guest.

s_faults() {
    local name
    if ! in_vm; then
        skip faults "not in the vrfexec VM (these scenarios create VRFs)"
        return
    fi
    name=wait/vrf-appears-later
    if selected "$name"; then
        # green appears 2 s after the run starts; --wait runs the command once it is there.
        local started ended
        ip -n r link del green 2>/dev/null
        (sleep 2 && lab_vrf green 30) &
        local creator=$!
        started=$(date +%s%N)
        rr "$VRFEXEC" --wait 20 green sh -c 'cat /proc/self/cgroup'
        ended=$(date +%s%N)
        wait "$creator"
        local ms=$(((ended - started) / 1000000))
        if [ "$R_RC" -eq 0 ] && [[ $R_OUT == *"/vrf/green" ]] && [ "$ms" -ge 1500 ] && [ "$ms" -lt 15000 ]; then
            pass "$name"
        else
            fail "$name" "$(last_run) after $ms ms"
        fi
        ip -n r link del green
    fi
    name=wait/timeout-is-125
    if selected "$name"; then
        rr "$VRFEXEC" --wait 1 nosuch true
        if [ "$R_RC" -eq 125 ] && [ -z "$R_OUT" ] && [ "$R_ERR" = "vrfexec: 'nosuch' did not appear within 1 s: no such device; 'ip vrf show' lists the VRFs; raise --wait if it comes up later" ]; then
            pass "$name"
        else
            fail "$name" "$(last_run)"
        fi
    fi
    name=wait/not-a-vrf-fails-at-once
    if selected "$name"; then
        rr "$VRFEXEC" --wait 30 r-red true
        if [ "$R_RC" -eq 125 ] && [[ $R_ERR == *"'r-red' is not a VRF"* ]]; then pass "$name"; else fail "$name" "$(last_run)"; fi
    fi
    name=fault/fd-listing-fails-nothing-runs
    if selected "$name"; then
        # The first getdents64 is the listing of /proc/self/fd at start: without it vrfexec
        # cannot tell the caller's fds from its own, so it must not run the command (it used
        # to run it with stdin, stdout and stderr closed on exec).
        rr strace -f -o /dev/null -e inject=getdents64:error=EIO:when=1 "$VRFEXEC" red sh -c 'echo ran'
        if [ "$R_RC" -eq 125 ] && [ -z "$R_OUT" ] && [ "$R_ERR" = "vrfexec: cannot list the open file descriptors (/proc/self/fd): Input/output error; mount /proc; nothing was run" ]; then
            pass "$name"
        else
            fail "$name" "$(last_run)"
        fi
    fi
    name=fault/killed-after-the-netns-level-then-gc
    if selected "$name"; then
        # Cold, in netns r, as root: mkdir(2) #1 is the lock directory /run/vrfexec (EEXIST),
        # #2 makes /r-ns, #3 would make /r-ns/vrf. SIGKILL at #3 leaves /r-ns empty, which gc
        # must remove. (If that order changes, the first check below fails, loudly.)
        local bad=""
        rr "$VRFEXEC" gc
        [ -d /sys/fs/cgroup/r-ns ] && bad+="r-ns still there before the test; "
        rr strace -f -o /dev/null -e inject=mkdir:signal=KILL:when=3 "$VRFEXEC" red true
        [ -d /sys/fs/cgroup/r-ns ] && [ ! -d /sys/fs/cgroup/r-ns/vrf ] || bad+="the fault did not leave r-ns alone ($(last_run)); "
        rr "$VRFEXEC" gc
        [ "$R_RC" -eq 0 ] || bad+="gc: $(last_run); "
        [ -d /sys/fs/cgroup/r-ns ] && bad+="gc left /r-ns; "
        rr "$VRFEXEC" red "${CURL[@]}" "$URL4"
        [ "$R_OUT" = red ] || bad+="the next run: $(last_run); "
        if [ -z "$bad" ]; then pass "$name"; else fail "$name" "$bad"; fi
    fi
    name=memlock/low-limit-cold-run
    if selected "$name"; then
        # Kernels before 5.11 charge BPF to RLIMIT_MEMLOCK: vrfexec raises it for the load and
        # puts the caller's limit back before exec. Later kernels need neither; the command
        # sees the caller's 0 either way, and the run is bound.
        rr "$VRFEXEC" gc
        rr prlimit --memlock=0:0 "$VRFEXEC" red sh -c 'ulimit -l; ulimit -H -l; curl -sS --max-time 20 http://10.9.0.2/'
        expect_out "$name" "$(printf '0\n0\nred')" quiet
    fi
    name=memlock/low-limit-policy-mode
    if selected "$name"; then
        # The same for a non-root caller of the capable build (CAP_SYS_RESOURCE in the setcap
        # line raises the hard limit only around the load).
        capped_install "allow user alice vrf red"
        rr "$VRFEXEC" gc
        rr prlimit --memlock=0:0 setpriv --reuid alice --regid alice --init-groups --inh-caps=-all \
            "$CAPPED" red sh -c 'ulimit -l; ulimit -H -l; curl -sS --max-time 20 http://10.9.0.2/'
        expect_out "$name" "$(printf '0\n0\nred')"
        capped_remove
    fi
}
