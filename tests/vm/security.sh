# shellcheck shell=bash
# VM scenarios for least privilege (--user, non-root use by policy, --strict) with real users
# created in the guest. Sourced by suite.sh (rr, pass, fail, skip, selected, last_run, LAB_*).
# Only ever in the guest: it adds users, a capable copy of vrfexec and /etc/vrfexec.conf.

# A capable install: both builds under a prefix, file capabilities on the full build only (as
# the README says); users call the static bin/vrfexec, which hands them to the full build.
CAPPED_PREFIX=/opt/vrfexec-capped
CAPPED=$CAPPED_PREFIX/bin/vrfexec
SETCAP_CAPS="cap_bpf,cap_net_admin,cap_sys_admin,cap_dac_override,cap_chown,cap_sys_resource+ep"

# ensure_users: alice, bob, and carol (in netops), without homes.
ensure_users() {
    groupadd -f netops
    id alice >/dev/null 2>&1 || useradd -M -s /bin/sh alice
    id bob >/dev/null 2>&1 || useradd -M -s /bin/sh bob
    id carol >/dev/null 2>&1 || useradd -M -s /bin/sh -G netops carol
}

# capped_install POLICY: the capable install (both builds under CAPPED_PREFIX, file capabilities
# on the full build only, as the README says) and /etc/vrfexec.conf with POLICY, root's 0644.
capped_install() {
    ensure_users
    install -D -m 755 "$VRFEXEC" "$CAPPED"
    install -D -m 755 "$VRFEXEC_FULL" "$CAPPED_PREFIX/lib/vrfexec/vrfexec-full"
    setcap "$SETCAP_CAPS" "$CAPPED_PREFIX/lib/vrfexec/vrfexec-full"
    printf '%s\n' "$1" >/etc/vrfexec.conf
    chown root:root /etc/vrfexec.conf
    chmod 644 /etc/vrfexec.conf
}

# capped_remove: undoes capped_install.
capped_remove() {
    rm -f /etc/vrfexec.conf
    rm -rf "$CAPPED_PREFIX"
}

# as USER CMD...: run CMD in r as USER (uid, gid, supplementary groups), no capabilities.
as() {
    local user=$1
    shift
    rr setpriv --reuid "$user" --regid "$user" --init-groups --inh-caps=-all "$@"
}

# caps_line FIELD: the hex value of a /proc/self/status field in R_OUT.
status_field() {
    awk -v f="$1:" '$1 == f { print $2 }' <<<"$R_OUT"
}

rebind_py='import socket,sys
s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, sys.argv[1].encode())
    print("rebound")
except PermissionError:
    print("refused")'

s_security() {
    local name before
    if ! in_vm; then
        skip security "not in the vrfexec VM (these scenarios add users and a capable binary)"
        return
    fi
    capped_install "$(printf '# test policy\nallow user alice vrf red\nallow group netops vrf blue\n')"
    # A syslog receiver, so denials can be seen.
    local syslog="$LAB_DIR/syslog"
    rm -f /dev/log
    socat -u UNIX-RECV:/dev/log,mode=666 "OPEN:$syslog,creat,append" &
    local syslog_pid=$!
    sleep 0.3

    name=sec/allowed-user-reaches-peer
    if selected "$name"; then
        as alice "$CAPPED" red "${CURL[@]}" "$URL4"
        expect_out "$name" red quiet
    fi
    name=sec/group-rule
    if selected "$name"; then
        as carol "$CAPPED" blue "${CURL[@]}" "$URL4"
        expect_out "$name" blue quiet
    fi
    name=sec/denied-user-creates-nothing
    if selected "$name"; then
        before=$(cgroup_dirs)
        as bob "$CAPPED" red "${CURL[@]}" "$URL4"
        local created
        created=$(comm -13 <(echo "$before") <(cgroup_dirs) | tr '\n' ' ')
        if [ "$R_RC" -ne 125 ] || [[ $R_ERR != "vrfexec: user bob may not use VRF red"* ]] || [ "$R_OUT" = red ]; then
            fail "$name" "$(last_run)"
        elif [ -n "$created" ]; then
            fail "$name" "a denied run created cgroups: $created"
        elif ! grep -q "denied uid [0-9]* (bob): user bob may not use VRF red" "$syslog"; then
            fail "$name" "the denial is not in syslog: $(oneline "$(cat "$syslog")")"
        else
            pass "$name"
        fi
    fi
    # Say what is true: the policy governs vrfexec, not the VRF. Since 5.7 any user may bind an
    # unbound socket to a device, so bob (no rule) reaches red without vrfexec.
    name=sec/policy-is-not-a-boundary
    if selected "$name"; then
        as bob "${CURL[@]}" --interface red "$URL4"
        expect_out "$name" red
    fi
    # The boundary the README documents: nftables on the VRF device by socket owner.
    name=sec/nftables-makes-the-vrf-a-boundary
    if selected "$name"; then
        local unguarded_before="" unguarded_after=""
        rr "$VRFEXEC" check --json
        check_has policy-not-enforced red && unguarded_before=yes
        if ! command -v nft >/dev/null; then
            skip "$name" "nft (nftables) is not installed"
        elif ! ip netns exec r nft -f - <<'NFT'
table inet vrf_red_guard {
    chain output {
        type filter hook output priority 0; policy accept;
        oifname "red" meta skuid != { 0, alice } drop
    }
}
NFT
        then
            fail "$name" "nft could not load the documented rule"
        else
            local bob_out alice_out root_out
            as bob "${CURL[@]}" --interface red "$URL4"
            bob_out="$R_RC:$R_OUT"
            as alice "$CAPPED" red "${CURL[@]}" "$URL4"
            alice_out="$R_RC:$R_OUT"
            rr "$VRFEXEC" red "${CURL[@]}" "$URL4"
            root_out="$R_RC:$R_OUT"
            rr "$VRFEXEC" check --json
            check_has policy-not-enforced red && unguarded_after=yes
            check_has policy-not-enforced blue || unguarded_after+=" blue-not-reported"
            ip netns exec r nft delete table inet vrf_red_guard
            if [ "$bob_out" != "0:red" ] && [ "$alice_out" = "0:red" ] && [ "$root_out" = "0:red" ] &&
                [ "$unguarded_before" = yes ] && [ -z "$unguarded_after" ]; then
                pass "$name"
            else
                fail "$name" "bob $bob_out, alice $alice_out, root $root_out (want bob refused, alice and root reaching red); check: policy-not-enforced for red before '$unguarded_before' (want yes), after '$unguarded_after' (want none)"
            fi
        fi
    fi
    name=sec/group-member-denied-other-vrf
    if selected "$name"; then
        as carol "$CAPPED" red true
        if [ "$R_RC" -eq 125 ] && [[ $R_ERR == *"may not use VRF red"* ]]; then pass "$name"; else fail "$name" "$(last_run)"; fi
    fi
    name=sec/policy-target-has-no-capabilities
    if selected "$name"; then
        as alice "$CAPPED" red cat /proc/self/status
        local uid
        uid=$(id -u alice)
        local bad=""
        for f in CapInh CapPrm CapEff CapAmb; do
            [ "$(status_field "$f")" = 0000000000000000 ] || bad+="$f=$(status_field "$f") "
        done
        [ "$(status_field Uid)" = "$uid" ] || bad+="Uid=$(status_field Uid) "
        if [ "$R_RC" -eq 0 ] && [ -z "$bad" ] && grep -qP "^Uid:\t$uid\t$uid\t$uid\t$uid$" <<<"$R_OUT"; then pass "$name"; else fail "$name" "${bad}$(last_run)"; fi
    fi
    name=sec/user-option-drops-everything
    if selected "$name"; then
        rr "$VRFEXEC" --user carol red cat /proc/self/status
        local uid gid bad=""
        uid=$(id -u carol) gid=$(id -g carol)
        for f in CapInh CapPrm CapEff CapAmb CapBnd; do
            [ "$(status_field "$f")" = 0000000000000000 ] || bad+="$f=$(status_field "$f") "
        done
        grep -qP "^Uid:\t$uid\t$uid\t$uid\t$uid$" <<<"$R_OUT" || bad+="uids "
        grep -qP "^Gid:\t$gid\t$gid\t$gid\t$gid$" <<<"$R_OUT" || bad+="gids "
        grep -qP "^Groups:.*\b$(getent group netops | cut -d: -f3)\b" <<<"$R_OUT" || bad+="groups "
        if [ "$R_RC" -eq 0 ] && [ -z "$bad" ]; then pass "$name"; else fail "$name" "${bad}$(last_run)"; fi
    fi
    # --user sets no_new_privs: a setuid-root program the command runs stays the user.
    name=sec/user-no-new-privs-setuid
    if selected "$name"; then
        local suid="$LAB_DIR/suid-id" baseline
        install -m 4755 -o root -g root /usr/bin/id "$suid"
        as carol "$suid" -u
        baseline=$R_OUT
        rr "$VRFEXEC" --user carol red "$suid" -u
        if [ "$baseline" != 0 ]; then
            skip "$name" "a setuid-root program does not run as root here without vrfexec ($baseline)"
        elif [ "$R_RC" -eq 0 ] && [ "$R_OUT" = "$(id -u carol)" ]; then
            pass "$name"
        else
            fail "$name" "setuid id under --user carol: $(last_run)"
        fi
        rm -f "$suid"
    fi
    name=sec/user-no-new-privs-flag
    if selected "$name"; then
        rr "$VRFEXEC" --user carol red cat /proc/self/status
        if [ "$R_RC" -eq 0 ] && [ "$(status_field NoNewPrivs)" = 1 ]; then
            pass "$name"
        else
            fail "$name" "NoNewPrivs is $(status_field NoNewPrivs): $(last_run)"
        fi
    fi
    # The capable build inside --strict --user: the kernel refuses its file capabilities; the
    # message must say so, not that vrfexec is installed incompletely.
    name=sec/capable-build-inside-user-named
    if selected "$name"; then
        rr "$VRFEXEC" --strict --user alice red "$CAPPED" blue true
        if [ "$R_RC" -eq 125 ] && [[ $R_ERR == *"outside this process's capability bounding set"* ]] &&
            [[ $R_ERR != *"installed incompletely"* ]]; then
            pass "$name"
        else
            fail "$name" "$(last_run)"
        fi
    fi
    # Issue 16: any user could flock the VRF cgroup's directory and hang root's runs (and units'
    # attach) forever. The lock now lives in /run/vrfexec, which only root can enter.
    name=sec/foreign-flock-blocks-nothing
    if selected "$name"; then
        rr "$VRFEXEC" red true
        local cgdir holder t0 took
        cgdir=$(find /sys/fs/cgroup -type d -path '*/r-ns/vrf/red' | head -1)
        setpriv --reuid bob --regid bob --clear-groups flock "$cgdir" sleep 60 </dev/null >/dev/null 2>&1 &
        holder=$!
        sleep 0.5
        t0=$SECONDS
        rr "$VRFEXEC" red "${CURL[@]}" "$URL4"
        took=$((SECONDS - t0))
        kill "$holder" 2>/dev/null
        wait "$holder" 2>/dev/null
        if [ -z "$cgdir" ]; then
            fail "$name" "no VRF cgroup for red found to lock"
        elif [ "$R_OUT" = red ] && [ "$took" -lt 30 ]; then
            pass "$name"
        else
            fail "$name" "with bob's flock on $cgdir the run took ${took}s: $(last_run)"
        fi
    fi
    name=sec/lock-dir-closed-to-users
    if selected "$name"; then
        local lockfile
        lockfile=$(ls /run/vrfexec/*.lock 2>/dev/null | head -1)
        if [ -z "$lockfile" ] || [ "$(stat -c '%U %a' /run/vrfexec)" != "root 700" ]; then
            fail "$name" "expected a root 0700 /run/vrfexec with lock files: $(ls -ld /run/vrfexec 2>&1)"
        elif setpriv --reuid bob --regid bob --clear-groups flock -n "$lockfile" true 2>/dev/null; then
            fail "$name" "bob could open and lock $lockfile"
        else
            pass "$name"
        fi
    fi
    # Issue 16: cgroups a policy user's run made were that user's, who could then move root's
    # command out of the VRF. They are root's now, and a level that is not is refused.
    # Where runs from this shell in namespace r are placed: <own cgroup>/r-ns/vrf/<VRF>.
    local own_cg rns
    own_cg=$(awk -F: '$1 == "0" { print $3 }' /proc/self/cgroup)
    rns="/sys/fs/cgroup${own_cg%/}/r-ns"
    name=sec/policy-made-cgroups-are-roots
    if selected "$name"; then
        "$VRFEXEC" gc >/dev/null 2>&1
        if [ -d "$rns/vrf/red" ]; then
            skip "$name" "red's cgroup is in use, so alice's run would not make it"
        else
            as alice "$CAPPED" red true
            local owners="" level
            for level in "$rns" "$rns/vrf" "$rns/vrf/red"; do
                owners+="$(stat -c '%u' "$level" "$level/cgroup.procs" 2>&1 | tr '\n' ' ')"
            done
            if [ "$R_RC" -eq 0 ] && [ "$(tr -d ' 0' <<<"$owners")" = "" ] && [ -n "$owners" ]; then
                pass "$name"
            else
                fail "$name" "owners of r-ns, vrf, red and their cgroup.procs: $owners; $(last_run)"
            fi
        fi
    fi
    name=sec/user-cannot-move-roots-run-out
    if selected "$name"; then
        ip netns exec r "$VRFEXEC" red sleep 20 </dev/null >/dev/null 2>&1 &
        local victim=$! moved
        sleep 1
        setpriv --reuid alice --regid alice --clear-groups sh -c "echo $victim > $rns/cgroup.procs" 2>/dev/null
        moved=$(cut -d: -f3 "/proc/$victim/cgroup" 2>/dev/null)
        kill "$victim" 2>/dev/null
        wait "$victim" 2>/dev/null
        if [ "$moved" = "${own_cg%/}/r-ns/vrf/red" ]; then pass "$name"; else fail "$name" "root's run is now in '$moved'"; fi
    fi
    name=sec/foreign-owned-level-refused
    if selected "$name"; then
        "$VRFEXEC" gc >/dev/null 2>&1
        rr "$VRFEXEC" red true
        chown alice "$rns/vrf/red"
        rr "$VRFEXEC" red "${CURL[@]}" "$URL4"
        chown root "$rns/vrf/red"
        if [ "$R_RC" -eq 125 ] && [ -z "$R_OUT" ] && [[ $R_ERR == *"unsafe cgroup"*"/vrf/red: it belongs to uid $(id -u alice)"* ]]; then
            pass "$name"
        else
            fail "$name" "$(last_run)"
        fi
    fi
    # Issue 16, 4: `default` needs a rule like any VRF; a caller under --strict is refused.
    name=sec/default-needs-a-rule
    if selected "$name"; then
        as alice "$CAPPED" default true
        if [ "$R_RC" -eq 125 ] && [[ $R_ERR == "vrfexec: user alice may not use VRF default"* ]]; then pass "$name"; else fail "$name" "$(last_run)"; fi
    fi
    name=sec/strict-caller-refused
    if selected "$name"; then
        rr "$VRFEXEC" --strict red setpriv --reuid alice --regid alice --clear-groups "$CAPPED" red true
        if [ "$R_RC" -eq 125 ] && [[ $R_ERR == *"runs under --strict"* ]]; then pass "$name"; else fail "$name" "$(last_run)"; fi
    fi
    # Issue 16, 3: capabilities are off while the command is looked up, so the capable build
    # tells alice no more than she could find out herself: a file in a directory she cannot
    # read is "Permission denied" (126) whether it exists or not.
    name=sec/lookup-without-capabilities
    if selected "$name"; then
        local secret="$LAB_DIR/secret" present missing
        mkdir -p "$secret"
        install -m 755 /bin/true "$secret/present"
        chmod 700 "$secret"
        as alice "$CAPPED" red "$secret/present"
        present="$R_RC $(sed "s|$secret/present|FILE|" <<<"$R_ERR")"
        as alice "$CAPPED" red "$secret/missing"
        missing="$R_RC $(sed "s|$secret/missing|FILE|" <<<"$R_ERR")"
        rm -rf "$secret"
        if [ "$present" = "$missing" ] && [[ $present == "126 "*"Permission denied"* ]]; then
            pass "$name"
        else
            fail "$name" "existing: $present; missing: $missing"
        fi
    fi
    name=sec/user-option-reaches-peer-as-user
    if selected "$name"; then
        rr "$VRFEXEC" -u alice -g netops blue sh -c 'echo "$(id -un):$(id -gn):$USER:$HOME"; curl -s --max-time 20 http://10.9.0.2/'
        expect_out "$name" "$(printf 'alice:netops:alice:%s\nblue' "$(getent passwd alice | cut -d: -f6)")" quiet
    fi
    name=sec/non-root-cannot-rebind
    if selected "$name"; then
        as alice "$CAPPED" red python3 -c "$rebind_py" blue
        expect_out "$name" refused
    fi
    name=sec/root-can-rebind-without-strict
    if selected "$name"; then
        rr "$VRFEXEC" red python3 -c "$rebind_py" blue
        expect_out "$name" rebound
    fi
    name=sec/strict-stops-root
    if selected "$name"; then
        rr "$VRFEXEC" --strict red python3 -c "$rebind_py" blue
        local rebind=$R_OUT
        rr "$VRFEXEC" --strict red "${CURL[@]}" "$URL4"
        if [ "$rebind" = refused ] && [ "$R_OUT" = red ]; then pass "$name"; else fail "$name" "rebind: $rebind; curl: $(last_run)"; fi
    fi
    name=sec/strict-process-is-identified
    if selected "$name"; then
        rr "$VRFEXEC" --strict red "$VRFEXEC" identify
        expect_out "$name" red quiet
    fi
    name=sec/root-only-verbs
    if selected "$name"; then
        local bad=""
        as alice "$CAPPED" gc; [ "$R_RC" -eq 125 ] && [[ $R_ERR == *"needs root"* ]] || bad+="gc: $(last_run); "
        as alice "$CAPPED" move 1 red; [ "$R_RC" -eq 125 ] && [[ $R_ERR == *"needs root"* ]] || bad+="move: $(last_run); "
        as alice "$CAPPED" check --fix; [ "$R_RC" -eq 125 ] && [[ $R_ERR == *"needs root"* ]] || bad+="check --fix: $(last_run); "
        as alice "$CAPPED" --user root red true; [ "$R_RC" -eq 125 ] && [[ $R_ERR == *"--user needs root"* ]] || bad+="--user: $(last_run); "
        as alice "$CAPPED" --dev r-red true; [ "$R_RC" -eq 125 ] && [[ $R_ERR == *"needs root"* ]] || bad+="--dev: $(last_run); "
        # trace loads tracing programs: refused before anything, the --output file included
        # (the capable build could create it anywhere).
        local objects_before
        objects_before=$(python3 tests/vm/bpf_objects.py)
        as alice "$CAPPED" trace -o /etc/vrfexec-trace-pwned red true
        [ "$R_RC" -eq 125 ] && [[ $R_ERR == *"vrfexec trace needs root"* ]] || bad+="trace: $(last_run); "
        [ ! -e /etc/vrfexec-trace-pwned ] || bad+="trace created its --output file for alice; "
        [ "$(python3 tests/vm/bpf_objects.py)" = "$objects_before" ] || bad+="trace loaded programs for alice; "
        [ -z "$(find /sys/fs/cgroup -type d -name 'trace:*')" ] || bad+="trace made a cgroup for alice; "
        rm -f /etc/vrfexec-trace-pwned
        if [ -z "$bad" ]; then pass "$name"; else fail "$name" "$bad"; fi
    fi
    name=sec/noroot-root-is-not-root
    if selected "$name"; then
        # A root that gave up root's capabilities (SECBIT_NOROOT: systemd's SecureBits=noroot)
        # still gets the capable build's file capabilities at exec, and the kernel sets no
        # AT_SECURE for uid 0. Without care vrfexec would take it for root and let it write any
        # file (trace -o) or use any VRF: it must be a policy-mode caller like any user.
        local bad="" objects_before
        local noroot=(setpriv --securebits +noroot,+noroot_locked --inh-caps=-all --ambient-caps=-all)
        rr "${noroot[@]}" grep CapEff /proc/self/status
        [ "$(status_field CapEff)" = 0000000000000000 ] || bad+="the setup left root capabilities: $(last_run); "
        objects_before=$(python3 tests/vm/bpf_objects.py)
        rr "${noroot[@]}" "$CAPPED" trace -o /etc/vrfexec-noroot-pwned red true
        [ "$R_RC" -eq 125 ] && [[ $R_ERR == *"vrfexec trace needs root"* ]] || bad+="trace: $(last_run); "
        [ ! -e /etc/vrfexec-noroot-pwned ] || bad+="trace created its --output file; "
        [ "$(python3 tests/vm/bpf_objects.py)" = "$objects_before" ] || bad+="trace loaded programs; "
        rr "${noroot[@]}" "$CAPPED" gc
        [ "$R_RC" -eq 125 ] && [[ $R_ERR == *"vrfexec gc needs root"* ]] || bad+="gc: $(last_run); "
        # A run: the launcher serves root's short form itself, with what this root has (no
        # capabilities: refused, naming one); the capable full build, called directly, applies
        # the policy, which grants root nothing. Neither makes a cgroup.
        before=$(cgroup_dirs)
        rr "${noroot[@]}" "$CAPPED" red "${CURL[@]}" "$URL4"
        [ "$R_RC" -eq 125 ] && [[ $R_ERR == *"missing capability CAP_"* ]] || bad+="run through the launcher: $(last_run); "
        rr "${noroot[@]}" "$CAPPED_PREFIX/lib/vrfexec/vrfexec-full" red "${CURL[@]}" "$URL4"
        [ "$R_RC" -eq 125 ] && [[ $R_ERR == *"user root may not use VRF red"* ]] || bad+="run through the capable build: $(last_run); "
        [ "$before" = "$(cgroup_dirs)" ] || bad+="a refused run made cgroups; "
        # The same binaries for root with its capabilities, so the refusals above come from
        # the securebit.
        rr "$CAPPED_PREFIX/lib/vrfexec/vrfexec-full" red "${CURL[@]}" "$URL4"
        [ "$R_RC" -eq 0 ] && [ "$R_OUT" = red ] || bad+="plain root: $(last_run); "
        rm -f /etc/vrfexec-noroot-pwned
        if [ -z "$bad" ]; then pass "$name"; else fail "$name" "$bad"; fi
    fi
    name=sec/bad-policy-file-refused
    if selected "$name"; then
        local bad=""
        chmod 666 /etc/vrfexec.conf
        as alice "$CAPPED" red true; [ "$R_RC" -eq 125 ] && [[ $R_ERR == *"refused: mode 666"* ]] || bad+="mode: $(last_run); "
        chmod 644 /etc/vrfexec.conf
        chown alice /etc/vrfexec.conf
        as alice "$CAPPED" red true; [ "$R_RC" -eq 125 ] && [[ $R_ERR == *"owned by uid"* ]] || bad+="owner: $(last_run); "
        chown root /etc/vrfexec.conf
        echo "allow everyone vrf red" >>/etc/vrfexec.conf
        as alice "$CAPPED" red true; [ "$R_RC" -eq 125 ] && [[ $R_ERR == *"line 4"* ]] || bad+="syntax: $(last_run); "
        sed -i '$d' /etc/vrfexec.conf
        as alice "$CAPPED" red true; [ "$R_RC" -eq 0 ] || bad+="restored: $(last_run); "
        if [ -z "$bad" ]; then pass "$name"; else fail "$name" "$bad"; fi
    fi
    name=sec/hostile-input
    if selected "$name"; then
        local bad="" long word
        long=$(printf 'x%.0s' $(seq 1 4096))
        for word in ../x a/b "$long" "rød" ".." "a b"; do
            as alice "$CAPPED" -- "$word" true
            [ "$R_RC" -eq 125 ] && [[ $R_ERR == "vrfexec: "* ]] || bad+="vrf ${word:0:20}: $(last_run); "
            rr "$VRFEXEC" --user "$word" red true
            [ "$R_RC" -eq 125 ] || bad+="user ${word:0:20}: $(last_run); "
        done
        as alice "$CAPPED" -x true; [ "$R_RC" -eq 125 ] && [[ $R_ERR == *"invalid usage"* ]] || bad+="-x: $(last_run); "
        if [ -z "$bad" ]; then pass "$name"; else fail "$name" "$bad"; fi
    fi
    name=sec/path-trap
    if selected "$name"; then
        # vrfexec runs no helper while privileged: a trap ip/modprobe/mount on PATH stays
        # unused, and the command found on PATH runs as the caller with no capabilities.
        local trap="$LAB_DIR/trap" marker="$LAB_DIR/trap/sprung"
        mkdir -p "$trap"
        chmod 755 "$LAB_DIR" "$trap"
        for tool in ip modprobe mount sh; do
            printf '#!/bin/sh\ntouch %s\n' "$marker" >"$trap/$tool"
            chmod 755 "$trap/$tool"
        done
        printf '#!/bin/sh\ngrep CapEff /proc/self/status\n' >"$trap/whoami-caps"
        chmod 755 "$trap/whoami-caps"
        as alice env PATH="$trap:/usr/bin:/bin" "$CAPPED" red whoami-caps
        if [ -e "$marker" ]; then
            fail "$name" "vrfexec ran a helper from the caller's PATH"
        elif [ "$R_OUT" != "$(printf 'CapEff:\t0000000000000000')" ]; then
            fail "$name" "$(last_run)"
        else
            pass "$name"
        fi
    fi
    kill "$syslog_pid" 2>/dev/null
    rm -f /dev/log
    capped_remove
}
