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
    s_fault_sweep
}

# ---- The fault sweep (issue 19) ----
# Every system call vrfexec itself makes on the exec path fails in turn (strace's inject, no
# change to the code), in five modes: cold (root, nothing there yet), warm (red's cgroup and
# program in place), strict (cold, --strict), user (cold, --user alice: the hand-over to the
# full build, NSS lookups, the privilege drop) and policy (cold, alice through the capable
# build). One good run of the mode, traced, gives the injection points: the syscalls of the
# traced process from the end of the runtime's start-up (the first rt_sigaction(SIGPIPE, NULL)
# after each execve of a vrfexec binary: before it run the dynamic loader and libc/std
# initialisation, not vrfexec's code) up to and including the execve of the command; a
# (syscall, N) point is the Nth call of that syscall in the process since strace started it,
# which is how strace's when= counts (per tracee and syscall, across the launcher's execve of
# vrfexec-full: the process stays the same tracee).
#
# Left behind: the state is the cgroup directories below <own cgroup>/r-ns, the lock files in
# /run/vrfexec and this mount namespace's mountinfo. A good run leaves red's cgroup, its
# program and its lock file (the warm path's design; gc removes them), so after an injected
# error the state must be the one before the run or the one a good run leaves (no third
# state, such as a lock file without its cgroup, or an empty level). After SIGKILL and one
# `vrfexec gc`, it must be the state gc leaves after a good run (nothing: gc removes idle VRF
# cgroups and their lock files). BPF programs are counted before and after the whole sweep:
# vrfexec pins nothing, so a program outlives a run only attached to a cgroup, which the
# per-point check sees.
#
# Each run costs one to four seconds under TCG and a full sweep (about 1300 points) would take
# the better part of an hour per kernel, so the default is bounded: the error sweep fails each
# syscall once, at its first call in the first mode that reaches it, leaving out calls that
# cannot fail that way (get*id, getpid, uname, rt_sigprocmask, futex, brk, getrandom);
# SWEEP_LEVEL=sites fails each call site once instead (the syscall with its arguments, numbers
# left out: about 370 points, 15 minutes on 6.1), which is what found the netns-name bug; the
# kill sweep kills at each call that changes the system (mkdir, an O_CREAT open,
# BPF_PROG_ATTACH, the write to cgroup.procs, mounts...) once, and at every mode's execve of
# the command: between two such calls the system does not change, so these are every state a
# SIGKILL can leave. SWEEP_FULL=1 sweeps every point of every mode.
# The command is /bin/false: vrfexec never exits 1 itself, so exit 1 with an empty stderr
# means the command ran.

# sweep_points LOG CMDPATH: the injection points of a traced good run, one per line:
# "SYSCALL N KIND SIGNATURE" (KIND: k changes the system, x the command's execve, e another
# execve, o anything else; SIGNATURE: the call without numbers, for telling call sites apart).
sweep_points() {
    awk -v cmd="execve(\"$2\"" '
        BEGIN { own = 0; pid = "" }
        {
            if (pid == "") pid = $1
            if ($1 != pid) next
            line = $0; sub(/^[0-9]+ +/, "", line)
            if (line !~ /^[a-z_0-9]+\(/) next
            name = line; sub(/\(.*/, "", name)
            n[name]++
            if (!own) {
                if (name == "rt_sigaction" && line ~ /^rt_sigaction\(SIGPIPE, NULL/) own = 1
                next
            }
            kind = "o"
            if (name ~ /^(mkdir|mkdirat|rmdir|unlink|unlinkat|rename|renameat2|write|pwrite64|writev|mount|umount2|move_mount|mount_setattr|setns|unshare|fchown|chown|fchmod|chmod)$/ ||
                (name ~ /^open/ && line ~ /O_CREAT/) ||
                (name == "bpf" && line ~ /^bpf\(BPF_(PROG_ATTACH|PROG_DETACH|LINK_CREATE|OBJ_PIN)/)) kind = "k"
            if (name == "execve") kind = (index(line, cmd) == 1) ? "x" : "e"
            # The call site, roughly: the syscall and its arguments without numbers.
            sig = substr(line, 1, index(line, ")")); gsub(/[0-9]+/, "N", sig); gsub(/[ \t]/, "", sig)
            sig = substr(sig, 1, 80)
            # strace sees the first execve (its own start of the tracee) only on return, and
            # does not count it for when=.
            print name, (name == "execve" ? n[name] - 1 : n[name]), kind, sig
            if (name == "execve") {
                if (index(line, cmd) == 1) exit
                own = 0
            }
        }' "$1"
}

# sweep_state: what a run can leave behind, read with shell builtins only (every process
# costs about 0.3 s under TCG).
sweep_state() {
    local l cg="" mi
    local -a dirs locks
    while IFS= read -r l; do [[ $l == 0::* ]] && cg=${l#0::}; done </proc/self/cgroup
    shopt -s nullglob
    local b="/sys/fs/cgroup${cg%/}/r-n[s]"
    dirs=($b/ $b/*/ $b/*/*/ $b/*/*/*/ $b/*/*/*/*/)
    locks=(/run/vrfexec/*)
    shopt -u nullglob
    mi=$(</proc/self/mountinfo)
    printf 'cgroups: %s; locks: %s; mounts: %s' "${dirs[*]#/sys/fs/cgroup}" "${locks[*]}" "${#mi} bytes"
}

# sweep_reset MODE: the state the mode starts from (after gc: nothing; warm: a good run).
sweep_reset() {
    "$VRFEXEC" gc >/dev/null 2>&1
    if [ "$1" = warm ]; then "$VRFEXEC" red /bin/true; fi
}

# sweep_mode MODE: runs in namespace r; prints commentary ('# ...') and result lines
# 'RESULT STATUS NAME REASON' for the caller to count.
sweep_mode() {
    local mode=$1 log="$LAB_DIR/sweep-$mode.log" errf="$LAB_DIR/sweep.err" ilog="$LAB_DIR/sweep-inj.log"
    local -a cmd pre seccomp=(--seccomp-bpf)
    local t0=${EPOCHREALTIME/./}
    case $mode in
        cold | warm) cmd=("$VRFEXEC" red /bin/false) ;;
        strict) cmd=("$VRFEXEC" --strict red /bin/false) ;;
        user) cmd=("$VRFEXEC" --user alice red /bin/false) ;;
        # strace -u: alice runs the capable build with the file capabilities a root tracer
        # lets the kernel grant. --seccomp-bpf sets no_new_privs, which would void them.
        policy) cmd=("$CAPPED" red /bin/false) pre=(-u alice) seccomp=() ;;
    esac
    local ename="fault/sweep-$mode-error" kname="fault/sweep-$mode-kill"
    if ! command -v strace >/dev/null; then
        echo "RESULT FAIL $ename strace is not installed (the sweep needs it)"
        echo "RESULT FAIL $kname strace is not installed (the sweep needs it)"
        return
    fi
    sweep_reset "$mode"
    local before good clean rc
    before=$(sweep_state)
    "${cmd[@]}" 2>"$errf"
    rc=$?
    good=$(sweep_state)
    if [ "$rc" -ne 1 ]; then
        local why="the good run exited $rc: $(head -c 300 "$errf")"
        echo "RESULT FAIL $ename $why"
        echo "RESULT FAIL $kname $why"
        return
    fi
    "$VRFEXEC" gc >/dev/null 2>&1
    clean=$(sweep_state)
    sweep_reset "$mode"
    strace -f -qq -o "$log" "${pre[@]}" "${cmd[@]}" 2>"$errf"
    rc=$?
    local -a names nums kinds sigs
    local name num kind sig
    while read -r name num kind sig; do
        names+=("$name") nums+=("$num") kinds+=("$kind") sigs+=("$sig")
    done < <(sweep_points "$log" /bin/false)
    local total=${#names[@]} distinct
    distinct=$(printf '%s\n' "${names[@]}" | sort -u | grep -c .)
    if [ "$rc" -ne 1 ] || [ "$total" -eq 0 ] || [ "${kinds[total - 1]}" != x ]; then
        local why="the traced good run exited $rc and gave $total injection points (want exit 1 and points ending with the command's execve)"
        echo "RESULT FAIL $ename $why"
        echo "RESULT FAIL $kname $why"
        return
    fi
    # The error sweep.
    # Call sites an earlier mode (or an earlier point) swept already: the same code fails the
    # same way (SWEEP_FULL=1 sweeps them all the same).
    local -A seen=()
    local seenf="$LAB_DIR/sweep-seen"
    while read -r sig; do seen[$sig]=1; done <"$seenf"
    local i state out lines bad=() tolerated=() ran=0 refused=0 swept=0 injected kills=() killsig
    # The traced good run left the good state: the first point starts from a reset.
    local cur
    cur=$(sweep_state)
    for ((i = 0; i < total; i++)); do
        name=${names[i]} num=${nums[i]} kind=${kinds[i]} sig=${sigs[i]}
        # The kill points: every call that changes the system and the command's execve.
        killsig="kill:$sig"
        if [ "$kind" = x ] || { [ "$kind" = k ] && { [ -n "${SWEEP_FULL:-}" ] || [ -z "${seen[$killsig]:-}" ]; }; }; then
            kills+=("$i")
            seen[$killsig]=1
            echo "$killsig" >>"$seenf"
        fi
        # Calls that cannot fail at run time (no error a kernel returns for valid arguments).
        # brk and getrandom: a kernel never returns EIO there (brk fails by returning the old
        # break; getrandom blocks); glibc's malloc and Rust's std do not expect it either.
        case $name in getuid | geteuid | getgid | getegid | getpid | getppid | gettid | rt_sigprocmask | futex | uname | brk | getrandom) continue ;; esac
        # The default level sweeps each syscall once; SWEEP_LEVEL=sites each call site.
        [ "${SWEEP_LEVEL:-}" = sites ] || sig=$name
        if [ -z "${SWEEP_FULL:-}" ] && [ -n "${seen[$sig]:-}" ]; then continue; fi
        seen[$sig]=1
        echo "$sig" >>"$seenf"
        swept=$((swept + 1))
        [ "$cur" = "$before" ] || sweep_reset "$mode"
        strace -f -qq -o "$ilog" "${seccomp[@]}" -e trace="$name" "${pre[@]}" \
            -e inject="$name:error=EIO:when=$num" "${cmd[@]}" 2>"$errf"
        rc=$?
        cur=$(sweep_state)
        out=$(<"$errf")
        injected=$(<"$ilog")
        lines=0
        [ -n "$out" ] && lines=$(printf '%s\n' "$out" | grep -c .)
        if [[ $injected != *"(INJECTED)"* ]]; then
            bad+=("$name#$num: no injection happened (exit $rc)")
        elif [ "$rc" -eq 1 ] && [ -z "$out" ]; then
            ran=$((ran + 1))
            [[ " ${tolerated[*]} " == *" $name "* ]] || tolerated+=("$name")
            [ "$cur" = "$good" ] || bad+=("$name#$num: the command ran but left: $cur")
        elif { [ "$rc" -eq 125 ] || { [ "$rc" -eq 126 ] && [[ $out == "vrfexec: cannot run /bin/false"* ]]; }; } &&
            [ "$lines" -eq 1 ] && [[ $out == "vrfexec: "* ]]; then
            refused=$((refused + 1))
            [ "$cur" = "$before" ] || [ "$cur" = "$good" ] || bad+=("$name#$num: exit $rc, left: $cur")
        else
            bad+=("$name#$num: exit $rc, stderr ($lines lines) \"$(printf '%s' "$out" | tr '\n' '|' | cut -c1-160)\"")
        fi
    done
    local t1=${EPOCHREALTIME/./}
    echo "# fault sweep $mode: $total injection points ($distinct syscalls); error sweep: $swept points failed with EIO$([ -z "${SWEEP_FULL:-}" ] && echo " (each ${SWEEP_LEVEL:-syscall} not swept before)"), $refused refused with one line, $ran tolerated (the command ran: ${tolerated[*]:-none}); $(((t1 - t0) / 1000)) ms"
    if [ "${#bad[@]}" -ne 0 ]; then
        echo "RESULT FAIL $ename ${#bad[@]} of $swept points: $(printf '%s; ' "${bad[@]:0:4}")"
    elif [ "$swept" -eq 0 ]; then
        # Nothing failed here, so nothing is claimed: counted as a skip, not a pass.
        echo "RESULT SKIP $ename every syscall of this mode failed in an earlier mode already (SWEEP_LEVEL=sites or SWEEP_FULL=1 fail them here too)"
    else
        echo "RESULT PASS $ename"
    fi
    # The kill sweep.
    bad=() swept=0
    sweep_reset "$mode"
    # No --seccomp-bpf here: strace 6.1 does not deliver an injected signal with it.
    for i in "${kills[@]}"; do
        name=${names[i]} num=${nums[i]} kind=${kinds[i]}
        swept=$((swept + 1))
        # (The braces keep bash's "Killed" notice out of the output.)
        { strace -f -qq -o /dev/null -e trace="$name" "${pre[@]}" \
            -e inject="$name:signal=KILL:when=$num" "${cmd[@]}" 2>"$errf"; } 2>/dev/null
        rc=$?
        out=$(<"$errf")
        if [ "$rc" -ne 137 ] || [[ $out == *"vrfexec"* ]]; then
            bad+=("$name#$num: exit $rc (want 137, killed), stderr \"$(printf '%s' "$out" | tr '\n' '|' | cut -c1-120)\"")
        fi
        "$VRFEXEC" gc >"$errf" 2>&1 || bad+=("$name#$num: gc failed: $(head -c 200 "$errf")")
        state=$(sweep_state)
        [ "$state" = "$clean" ] || bad+=("$name#$num: after gc: $state")
        [ "$mode" = warm ] && sweep_reset warm
    done
    local t2=${EPOCHREALTIME/./}
    echo "# fault sweep $mode: kill sweep: SIGKILL at $swept points (every call that changes the system$([ -z "${SWEEP_FULL:-}" ] && echo " not killed at before"), and the command's execve), then gc; $(((t2 - t1) / 1000)) ms"
    if [ "$swept" -eq 0 ]; then
        echo "RESULT FAIL $kname no point changes the system: the trace is not what the sweep expects"
    elif [ "${#bad[@]}" -eq 0 ]; then
        echo "RESULT PASS $kname"
    else
        echo "RESULT FAIL $kname ${#bad[@]} of $swept points: $(printf '%s; ' "${bad[@]:0:4}")"
    fi
    "$VRFEXEC" gc >/dev/null 2>&1
}

s_fault_sweep() {
    local mode any="" line status name reason progs_before progs_after
    local -A reported=()
    for mode in cold warm strict user policy; do
        selected "fault/sweep-$mode-error" || selected "fault/sweep-$mode-kill" && any=yes
    done
    [ -n "$any" ] || return 0
    capped_install "allow user alice vrf red"
    "$VRFEXEC" gc >/dev/null 2>&1
    : >"$LAB_DIR/sweep-seen"
    progs_before=$(python3 tests/vm/bpf_objects.py)
    for mode in cold warm strict user policy; do
        selected "fault/sweep-$mode-error" || selected "fault/sweep-$mode-kill" || continue
        while IFS= read -r line; do
            if [[ $line == "RESULT "* ]]; then
                read -r _ status name reason <<<"$line"
                selected "$name" || continue
                reported[$name]=1
                case $status in
                    PASS) pass "$name" ;;
                    SKIP) skip "$name" "$reason" ;;
                    *) fail "$name" "$reason" ;;
                esac
            else
                echo "$line"
            fi
        done < <(VRFEXEC=$VRFEXEC CAPPED=$CAPPED LAB_DIR=$LAB_DIR SWEEP_FULL=${SWEEP_FULL:-} SWEEP_LEVEL=${SWEEP_LEVEL:-} \
            timeout -k 5 1200 ip netns exec r bash -c \
            "$(declare -f sweep_points sweep_state sweep_reset sweep_mode); sweep_mode $mode" 2>&1)
        # A mode cut short (its timeout, a crash) reports nothing: that is a failure, not silence.
        for name in "fault/sweep-$mode-error" "fault/sweep-$mode-kill"; do
            if selected "$name" && [ -z "${reported[$name]:-}" ]; then
                fail "$name" "no result: the sweep of mode $mode did not finish"
            fi
        done
    done
    "$VRFEXEC" gc >/dev/null 2>&1
    progs_after=$(python3 tests/vm/bpf_objects.py)
    echo "# fault sweep: BPF objects before: $progs_before; after: $progs_after"
    if [ "$progs_after" != "$progs_before" ]; then
        fail fault/sweep-bpf-objects "the sweep left BPF objects: before $progs_before, after $progs_after"
    fi
    capped_remove
}
