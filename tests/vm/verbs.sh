# shellcheck shell=bash
# VM scenarios for the verbs beyond exec (show, identify, pids, move, route, ping, gc, check) and
# the warm path, on the real VRFs of tests/vm/lab.sh. Sourced by suite.sh, which provides rr,
# via, pass, fail, skip, selected, expect_out, last_run, counters, expect_reached and LAB_*.

JSON_PY=(python3 -c)

# json_pairs JSON KEY1 KEY2: "v1 v2" lines from a JSON array of objects, sorted.
json_pairs() {
    python3 -c 'import json,sys
for o in json.loads(sys.argv[1]): print(o.get(sys.argv[2]), o.get(sys.argv[3]))' "$1" "$2" "$3" | sort
}

# json_get JSON KEY: a key of a JSON object (or of the first object of an array).
json_get() {
    python3 -c 'import json,sys
v=json.loads(sys.argv[1]); v=v[0] if isinstance(v,list) else v; print(v.get(sys.argv[2], ""))' "$1" "$2"
}

# bg_in_r PIDVAR CMD...: start CMD in r in the background (ip netns exec and both launchers
# exec in place, so the PID is the command's); stores the PID in PIDVAR.
bg_in_r() {
    local var=$1
    shift
    ip netns exec r "$@" </dev/null >/dev/null 2>&1 &
    printf -v "$var" '%s' "$!"
    BG_PIDS+=("$!")
}

# wait_comm PID COMM: until the process has exec'd COMM (at most 10 s).
wait_comm() {
    local i
    for ((i = 0; i < 100; i++)); do
        [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ] && return 0
        sleep 0.1
    done
    return 1
}

kill_bg() {
    local pid
    for pid in "${BG_PIDS[@]:-}"; do
        [ -n "$pid" ] && kill "$pid" 2>/dev/null
    done
    BG_PIDS=()
}

s_show() {
    local name=verbs/show-json-vs-ip ours theirs
    if selected "$name"; then
        rr "$VRFEXEC" show --json
        ours=$(json_pairs "$R_OUT" name table)
        rr ip -j vrf show
        theirs=$(json_pairs "$R_OUT" name table)
        if [ -n "$ours" ] && [ "$ours" = "$theirs" ]; then pass "$name"; else fail "$name" "vrfexec: $(oneline "$ours"); ip: $(oneline "$theirs")"; fi
    fi
    name=verbs/show-members-and-state
    if selected "$name"; then
        rr "$VRFEXEC" show red
        if [ "$R_RC" -eq 0 ] && [[ $R_OUT == *"red "*" 10 "*"UP"*"r-red"* ]]; then pass "$name"; else fail "$name" "$(last_run)"; fi
    fi
    name=verbs/show-errors
    if selected "$name"; then
        rr "$VRFEXEC" show r-red
        if [ "$R_RC" -eq 125 ] && [[ $R_ERR == *"is not a VRF"* ]]; then pass "$name"; else fail "$name" "$(last_run)"; fi
    fi
}

s_identify_pids() {
    local name pid_v pid_i
    BG_PIDS=()
    bg_in_r pid_v "$VRFEXEC" red sleep 120
    bg_in_r pid_i ip vrf exec red sleep 121
    if ! wait_comm "$pid_v" sleep || ! wait_comm "$pid_i" sleep; then
        fail verbs/identify "background sleepers did not start"
        kill_bg
        return
    fi
    name=verbs/identify-vs-ip
    if selected "$name"; then
        local a b c d
        rr "$VRFEXEC" identify "$pid_v"; a=$R_OUT
        rr ip vrf identify "$pid_v"; b=$R_OUT
        rr "$VRFEXEC" identify "$pid_i"; c=$R_OUT
        rr ip vrf identify "$pid_i"; d=$R_OUT
        if [ "$a" = red ] && [ "$a" = "$b" ] && [ "$c" = red ] && [ "$c" = "$d" ]; then pass "$name"; else fail "$name" "vrfexec: $a/$c, ip: $b/$d"; fi
    fi
    name=verbs/identify-default-prints-nothing
    if selected "$name"; then
        rr "$VRFEXEC" identify
        local ours=$R_OUT
        rr ip vrf identify
        if [ -z "$ours" ] && [ -z "$R_OUT" ]; then pass "$name"; else fail "$name" "vrfexec \"$ours\", ip \"$R_OUT\""; fi
    fi
    name=verbs/pids-vs-ip
    if selected "$name"; then
        local ours theirs
        rr "$VRFEXEC" pids red
        ours=$(awk '{print $1}' <<<"$R_OUT" | sort -n | tr '\n' ' ')
        rr ip vrf pids red
        theirs=$(awk '{print $1}' <<<"$R_OUT" | sort -n | tr '\n' ' ')
        if [ "$ours" = "$theirs" ] && [[ " $ours" == *" $pid_v "* ]] && [[ " $ours" == *" $pid_i "* ]]; then
            pass "$name"
        else
            fail "$name" "vrfexec: $ours; ip: $theirs; want $pid_v and $pid_i"
        fi
    fi
    name=verbs/pids-json
    if selected "$name"; then
        rr "$VRFEXEC" pids red --json
        if python3 -c 'import json,sys; d=json.loads(sys.argv[1]); p={o["pid"] for o in d}; assert {int(sys.argv[2]),int(sys.argv[3])} <= p and all(o["comm"]=="sleep" for o in d)' "$R_OUT" "$pid_v" "$pid_i" 2>/dev/null; then
            pass "$name"
        else
            fail "$name" "$(last_run)"
        fi
    fi
    kill_bg
}

# A shell in r that fetches the peer's page every 0.3 s (each curl a new child), so a move
# shows in its *next* connection.
s_move() {
    local name=verbs/move-changes-next-connection log="$LAB_DIR/move.log" pid i last
    selected "$name" || return
    BG_PIDS=()
    : >"$log"
    bg_in_r pid bash -c "while :; do curl -s --max-time 1 $URL4 >>'$log' || echo none >>'$log'; echo >>'$log'; sleep 0.3; done"
    wait_last() {
        for ((i = 0; i < 50; i++)); do
            last=$(grep -v '^$' "$log" | tail -n 1)
            [ "$last" = "$1" ] && return 0
            sleep 0.2
        done
        return 1
    }
    if ! wait_last none; then
        fail "$name" "before the move the loop got \"$last\", expected no route (none)"
    elif ! rr "$VRFEXEC" move "$pid" red || ! wait_last red; then
        fail "$name" "after move to red: last answer \"$last\"; $(last_run)"
    elif ! rr "$VRFEXEC" move "$pid" blue || ! wait_last blue; then
        fail "$name" "after move to blue: last answer \"$last\"; $(last_run)"
    elif ! rr "$VRFEXEC" move "$pid" default || ! wait_last none; then
        fail "$name" "after move to default: last answer \"$last\""
    else
        pass "$name"
    fi
    kill_bg
    name=verbs/move-bad-input
    if selected "$name"; then
        local bad="" sleeper
        bg_in_r sleeper sleep 60
        wait_comm "$sleeper" sleep
        rr "$VRFEXEC" move 2 red; [ "$R_RC" -eq 125 ] && [[ $R_ERR == *"kernel thread"* ]] || bad+="kthread: $(last_run); "
        rr "$VRFEXEC" move 99999999 red; [ "$R_RC" -eq 125 ] || bad+="garbage pid: $(last_run); "
        rr "$VRFEXEC" move "$sleeper" r-red; [ "$R_RC" -eq 125 ] && [[ $R_ERR == *"not a VRF"* ]] || bad+="non-VRF: $(last_run); "
        rr "$VRFEXEC" move 1 red; [ "$R_RC" -eq 125 ] && [[ $R_ERR == *"another network namespace"* ]] || bad+="other netns: $(last_run); "
        kill_bg
        if [ -z "$bad" ]; then pass "$name"; else fail "$name" "$bad"; fi
    fi
}

# route_matches NAME VRF DST: vrfexec route --json and ip -j route get agree on dev/prefsrc/table.
route_matches() {
    local name=$1 vrf=$2 dst=$3 ours theirs key bad=""
    rr "$VRFEXEC" route "$vrf" "$dst" --json
    ours=$R_OUT
    local ours_rc=$R_RC
    rr ip -j route get "$dst" vrf "$vrf"
    theirs=$R_OUT
    if [ "$ours_rc" -ne 0 ] || [ "$R_RC" -ne 0 ]; then
        fail "$name" "vrfexec exit $ours_rc, ip exit $R_RC: $(oneline "$ours") / $(oneline "$theirs")"
        return
    fi
    for key in dst dev prefsrc gateway table; do
        [ "$(json_get "$ours" "$key")" = "$(json_get "$theirs" "$key")" ] || bad+="$key: $(json_get "$ours" "$key") vs $(json_get "$theirs" "$key"); "
    done
    if [ -z "$bad" ]; then pass "$name"; else fail "$name" "$bad"; fi
}

s_route() {
    local vrf dst name
    for vrf in red blue; do
        for dst in "$LAB_PEER4" "$LAB_PEER6"; do
            name="route/$vrf-$dst-vs-ip"
            selected "$name" && route_matches "$name" "$vrf" "$dst"
        done
    done
    name=route/unreachable
    if selected "$name"; then
        rr "$VRFEXEC" route red 192.0.2.1
        local ours_rc=$R_RC ours=$R_OUT
        rr ip route get 192.0.2.1 vrf red
        if [ "$ours_rc" -eq 1 ] && [[ $ours == unreachable* ]] && [ "$R_RC" -ne 0 ]; then pass "$name"; else fail "$name" "vrfexec exit $ours_rc \"$ours\", ip exit $R_RC"; fi
    fi
    name=route/unreachable-v6
    if selected "$name"; then
        rr "$VRFEXEC" route blue 2001:db8::1
        if [ "$R_RC" -eq 1 ] && [[ $R_OUT == unreachable* ]]; then pass "$name"; else fail "$name" "$(last_run)"; fi
    fi
    name=route/leaked
    if selected "$name"; then
        # Route leaking (seed 000): a route in red's table that points into blue's device.
        ip -n r route add 10.99.0.0/24 dev r-blue table 10
        route_matches "$name" red 10.99.0.5
        rr "$VRFEXEC" route red 10.99.0.5
        [[ $R_OUT == *"dev r-blue"* ]] || fail "$name-text" "$(last_run)"
        ip -n r route del 10.99.0.0/24 dev r-blue table 10
    fi
    name=route/bad-input
    if selected "$name"; then
        local bad=""
        rr "$VRFEXEC" route nosuch 10.9.0.2; [ "$R_RC" -eq 125 ] || bad+="missing: $(last_run); "
        rr "$VRFEXEC" route r-red 10.9.0.2; [ "$R_RC" -eq 125 ] && [[ $R_ERR == *"--dev"* ]] || bad+="non-VRF: $(last_run); "
        rr "$VRFEXEC" route -6 red 10.9.0.2; [ "$R_RC" -eq 125 ] || bad+="family: $(last_run); "
        rr "$VRFEXEC" route red no-such-host.invalid; [ "$R_RC" -eq 125 ] || bad+="name: $(last_run); "
        if [ -z "$bad" ]; then pass "$name"; else fail "$name" "$bad"; fi
    fi
}

s_pingverb() {
    local impl color fam dst name before after
    for color in red blue; do
        for fam in v4 v6; do
            dst=$LAB_PEER4
            [ "$fam" = v6 ] && dst=$LAB_PEER6
            for impl in vrfexec pingI; do
                name="pingverb/$color-$fam/$impl"
                selected "$name" || continue
                before=$(counters "$fam" echo)
                if [ "$impl" = vrfexec ]; then
                    rr "$VRFEXEC" ping "$color" "$dst" -c 2 -i 0.2 -W 3
                else
                    rr ping -I "$color" -c 2 -i 0.2 -W 3 "$dst"
                fi
                after=$(counters "$fam" echo)
                if [ "$R_RC" -eq 0 ] && [[ $R_OUT != *"2 received"* ]]; then
                    fail "$name" "no '2 received' in the summary: $(last_run)"
                else
                    expect_reached "$name" "$color" "$before" "$after"
                fi
            done
        done
    done
    # Loss: red's peer loses its address; both tools report no reply with exit 1.
    ip -n pred addr del "$LAB_PEER4/24" dev eth0
    for impl in vrfexec pingI; do
        name="pingverb/peer-down/$impl"
        selected "$name" || continue
        if [ "$impl" = vrfexec ]; then rr "$VRFEXEC" ping red "$LAB_PEER4" -c 2 -i 0.2 -W 1; else rr ping -I red -c 2 -i 0.2 -W 1 "$LAB_PEER4"; fi
        if [ "$R_RC" -eq 1 ] && [[ $R_OUT == *"0 received, 100% packet loss"* ]]; then pass "$name"; else fail "$name" "$(last_run)"; fi
    done
    ip -n pred addr add "$LAB_PEER4/24" dev eth0
    ip -n pred -4 route replace default via "$LAB_ROUTER4"
    # Wrong VRF: an address only blue's peer has is unreachable from red.
    ip -n pblue addr add 10.20.0.2/24 dev eth0
    ip -n r addr add 10.20.0.1/24 dev r-blue
    for impl in vrfexec pingI; do
        name="pingverb/wrong-vrf/$impl"
        selected "$name" || continue
        if [ "$impl" = vrfexec ]; then rr "$VRFEXEC" ping red 10.20.0.2 -c 1 -W 1; else rr ping -I red -c 1 -W 1 10.20.0.2; fi
        local red_rc=$R_RC
        if [ "$impl" = vrfexec ]; then rr "$VRFEXEC" ping blue 10.20.0.2 -c 1 -W 3; else rr ping -I blue -c 1 -W 3 10.20.0.2; fi
        if [ "$red_rc" -ne 0 ] && [ "$R_RC" -eq 0 ]; then pass "$name"; else fail "$name" "from red exit $red_rc (want non-zero), from blue $(last_run)"; fi
    done
    ip -n r addr del 10.20.0.1/24 dev r-blue
    ip -n pblue addr del 10.20.0.2/24 dev eth0
    name=pingverb/bad-input
    if selected "$name"; then
        local bad=""
        rr "$VRFEXEC" ping red "$LAB_PEER4" -c 0; [ "$R_RC" -eq 2 ] || bad+="-c 0: $(last_run); "
        rr "$VRFEXEC" ping red "$LAB_PEER4" -s 70000; [ "$R_RC" -eq 2 ] || bad+="-s: $(last_run); "
        rr "$VRFEXEC" ping r-red "$LAB_PEER4" -c 1; [ "$R_RC" -eq 2 ] && [[ $R_ERR == *"--dev"* ]] || bad+="non-VRF: $(last_run); "
        rr "$VRFEXEC" ping -4 red "$LAB_PEER6" -c 1; [ "$R_RC" -eq 2 ] || bad+="family: $(last_run); "
        if [ -z "$bad" ]; then pass "$name"; else fail "$name" "$bad"; fi
    fi
}

# vrf_cg NAME: the cgroup directory of VRF NAME for runs from r, beside that of a sleeper
# already placed in a VRF (SLEEPER_PID).
vrf_cg() {
    local cg
    cg=$(sed -n 's/^0:://p' "/proc/$SLEEPER_PID/cgroup")
    echo "/sys/fs/cgroup${cg%/*}/$1"
}

s_warm_gc() {
    local name=warm/second-run-is-warm
    if selected "$name"; then
        rr "$VRFEXEC" -v red true
        rr "$VRFEXEC" -v red true
        if [ "$R_RC" -eq 0 ] && [[ $R_ERR == *"warm:"* ]]; then pass "$name"; else fail "$name" "$(last_run)"; fi
    fi
    name=warm/ipvrf-program-is-replaced
    if selected "$name"; then
        # ip vrf exec attaches its own program; the next vrfexec run must not trust it as warm.
        rr ip vrf exec red true
        rr "$VRFEXEC" -v red "${CURL[@]}" "$URL4"
        if [ "$R_OUT" = red ] && [[ $R_ERR != *"warm:"* ]]; then pass "$name"; else fail "$name" "$(last_run)"; fi
    fi
    name=warm/100-concurrent-mixed
    if selected "$name"; then
        rr "$VRFEXEC" gc
        local dir="$LAB_DIR/conc100" i color bad=0 first="" pids=()
        mkdir -p "$dir"
        for ((i = 0; i < 100; i++)); do
            color=red
            ((i % 2)) && color=blue
            timeout 120 ip netns exec r "$VRFEXEC" "$color" "${CURL[@]}" "$URL4" >"$dir/$i.$color" 2>"$dir/$i.err" &
            pids+=("$!")
        done
        # Only these: a bare `wait` would also wait for the lab's servers.
        wait "${pids[@]}"
        for ((i = 0; i < 100; i++)); do
            color=red
            ((i % 2)) && color=blue
            if [ "$(cat "$dir/$i.$color")" != "$color" ]; then
                bad=$((bad + 1))
                [ -n "$first" ] || first="run $i wanted $color: \"$(oneline "$(cat "$dir/$i.$color")")\" $(oneline "$(cat "$dir/$i.err")")"
            fi
        done
        local progs
        progs="$(python3 tests/vm/bpf_objects.py)"
        if [ "$bad" -eq 0 ]; then pass "$name"; else fail "$name" "$bad of 100 wrong; $first"; fi
        echo "# after 100 concurrent runs: $progs"
    fi
    name=warm/objects-flat
    if selected "$name"; then
        local a b
        rr "$VRFEXEC" red true
        a=$(python3 tests/vm/bpf_objects.py)
        for i in $(seq 1 30); do ip netns exec r "$VRFEXEC" red true; ip netns exec r "$VRFEXEC" blue true; done
        b=$(python3 tests/vm/bpf_objects.py)
        if [ "$a" = "$b" ]; then pass "$name"; else fail "$name" "before 60 runs: $a; after: $b"; fi
    fi
    name=gc/keeps-used-removes-idle
    if selected "$name"; then
        local pid
        BG_PIDS=()
        bg_in_r pid "$VRFEXEC" blue sleep 60
        wait_comm "$pid" sleep
        SLEEPER_PID=$pid
        rr "$VRFEXEC" red true
        rr "$VRFEXEC" gc
        if [ "$R_RC" -ne 0 ]; then
            fail "$name" "$(last_run)"
        elif [ -d "$(vrf_cg red)" ]; then
            fail "$name" "$(vrf_cg red) survived gc"
        elif [ ! -d "$(vrf_cg blue)" ] || ! grep -qx "$pid" "$(vrf_cg blue)/cgroup.procs"; then
            fail "$name" "gc touched blue's cgroup, which has PID $pid"
        else
            rr "${VRFEXEC}" red "${CURL[@]}" "$URL4"
            expect_out "$name" red quiet
        fi
        kill_bg
    fi
}

# in_vm: the check scenarios rewrite /etc/resolv.conf and FIB rules: only ever in the guest.
in_vm() {
    [ -f /var/lib/vrfexec-vm/env ] && [ "$(hostname)" = vrfexec-vm ]
}

# check_has ID [VRF]: the last `vrfexec check --json` output has finding ID (for VRF).
check_has() {
    python3 -c 'import json,sys
d=json.loads(sys.argv[1]); want=sys.argv[2]; vrf=sys.argv[3] if len(sys.argv)>3 else None
sys.exit(0 if any(f["id"]==want and (vrf is None or f.get("vrf")==vrf) for f in d["findings"]) else 1)' "$R_OUT" "$@"
}

s_check() {
    local name
    if ! in_vm; then
        skip check "not in the vrfexec VM (these scenarios change resolv.conf and FIB rules)"
        return
    fi
    # A resolver every VRF reaches (on-link in both), so DNS is clean unless a scenario says not.
    rm -f /etc/resolv.conf
    echo "nameserver 10.9.0.53" >/etc/resolv.conf
    # A peer only the default VRF reaches: r-main 10.30.0.1 <-> pmain 10.30.0.2.
    ip netns add pmain
    ip -n pmain link set lo up
    ip -n r link add r-main type veth peer name eth0 netns pmain
    ip -n r addr add 10.30.0.1/24 dev r-main
    ip -n r link set r-main up
    ip -n pmain addr add 10.30.0.2/24 dev eth0
    ip -n pmain link set eth0 up
    ip -n pmain route add default via 10.30.0.1
    local pmain_echo='ip netns exec pmain awk '"'"'$1 == "Icmp:" { if (!s) { for (i = 2; i <= NF; i++) c[$i] = i; s = 1 } else { print $c["InEchos"]; exit } }'"'"' /proc/net/snmp'

    name=check/stock-rule-order
    if selected "$name"; then
        rr "$VRFEXEC" check --json
        if [ "$R_RC" -eq 1 ] && check_has local-rule-before-l3mdev && ! check_has no-unreachable-default; then pass "$name"; else fail "$name" "$(last_run)"; fi
    fi
    name=check/vrf-without-loopback
    if selected "$name"; then
        rr "$VRFEXEC" check --json
        if check_has vrf-without-loopback red && check_has vrf-without-loopback blue; then pass "$name"; else fail "$name" "$(last_run)"; fi
    fi
    name=check/dns-loopback
    if selected "$name"; then
        echo "nameserver 127.0.0.53" >/etc/resolv.conf
        rr "$VRFEXEC" check --json
        if check_has dns-unreachable red && check_has dns-unreachable blue; then pass "$name"; else fail "$name" "$(last_run)"; fi
        echo "nameserver 10.9.0.53" >/etc/resolv.conf
    fi
    name=check/down-and-no-members
    if selected "$name"; then
        ip -n r link add green type vrf table 30
        rr "$VRFEXEC" check green --json
        if check_has vrf-down green && check_has vrf-without-members green && ! check_has vrf-down red; then pass "$name"; else fail "$name" "$(last_run)"; fi
        ip -n r link add lime type vrf table 30
        rr "$VRFEXEC" check --json
        check_has shared-table green || fail "$name-shared-table" "$(last_run)"
        ip -n r link del lime
        ip -n r link del green
    fi
    # The leak: without blue's unreachable default, a lookup from blue for 10.30.0.2 finds
    # nothing in table 20 and falls through to main, which reaches pmain.
    ip -n r -4 route del table 20 unreachable default
    name=check/leak-detected
    if selected "$name"; then
        rr "$VRFEXEC" check blue --json
        if [ "$R_RC" -eq 1 ] && check_has no-unreachable-default blue; then pass "$name"; else fail "$name" "$(last_run)"; fi
    fi
    name=check/leak-before-fix
    if selected "$name"; then
        local before after
        before=$(eval "$pmain_echo")
        rr "$VRFEXEC" blue ping -c 1 -W 1 10.30.0.2
        after=$(eval "$pmain_echo")
        if [ "$after" -gt "$before" ]; then pass "$name"; else fail "$name" "a ping from blue did not leak to pmain (echo requests $before -> $after); the leak demo is broken"; fi
    fi
    name=check/fix-without-loss
    if selected "$name"; then
        local rules_before pid_main pid_red out_main="$LAB_DIR/ping-main" out_red="$LAB_DIR/ping-red"
        # Continuous pings in the default VRF and in red while --fix runs.
        ip netns exec r ping -c 60 -i 0.05 10.30.0.2 >"$out_main" 2>&1 &
        pid_main=$!
        ip netns exec r "$VRFEXEC" red ping -c 60 -i 0.05 "$LAB_PEER4" >"$out_red" 2>&1 &
        pid_red=$!
        sleep 1
        rr "$VRFEXEC" check --fix
        local fix_rc=$R_RC fix_out=$R_OUT
        wait "$pid_main" "$pid_red"
        if ! grep -q "60 received" "$out_main" || ! grep -q "60 received" "$out_red"; then
            fail "$name" "packets lost during --fix: main: $(grep transmitted "$out_main"); red: $(grep transmitted "$out_red")"
        elif [ "$fix_rc" -ne 0 ] || [[ $fix_out != *"applied: ip -4 rule add pref 32765 table local"* ]] || [[ $fix_out != *"l3mdev unreachable"* ]]; then
            fail "$name" "exit $fix_rc: $(oneline "$fix_out")"
        else
            pass "$name"
        fi
    fi
    name=check/fix-is-idempotent
    if selected "$name"; then
        local rules4 rules6
        rules4=$(ip -n r -4 rule)
        rules6=$(ip -n r -6 rule)
        rr "$VRFEXEC" check --fix
        if [ "$R_RC" -eq 0 ] && [[ $R_OUT != *"applied:"* ]] && [ "$rules4" = "$(ip -n r -4 rule)" ] && [ "$rules6" = "$(ip -n r -6 rule)" ]; then
            pass "$name"
        else
            fail "$name" "second --fix: $(last_run)"
        fi
    fi
    name=check/loopback-added-by-fix
    if selected "$name"; then
        # fix-without-loss's --fix gave the VRF devices their loopback addresses; the second
        # --fix (fix-is-idempotent) added nothing.
        local bad="" vrf
        for vrf in red blue; do
            ip -n r -4 addr show dev "$vrf" | grep -q "inet 127.0.0.1/8" || bad+="$vrf has no 127.0.0.1/8; "
            ip -n r -6 addr show dev "$vrf" | grep -q "inet6 ::1/128" || bad+="$vrf has no ::1/128; "
        done
        rr "$VRFEXEC" check --json
        check_has vrf-without-loopback && bad+="still reported: $(oneline "$R_OUT"); "
        if [ -z "$bad" ]; then pass "$name"; else fail "$name" "$bad"; fi
    fi
    name=check/leak-gone-after-fix
    if selected "$name"; then
        local before after
        before=$(eval "$pmain_echo")
        rr "$VRFEXEC" blue ping -c 1 -W 1 10.30.0.2
        after=$(eval "$pmain_echo")
        if [ "$after" -eq "$before" ] && [ "$R_RC" -ne 0 ]; then pass "$name"; else fail "$name" "blue still reaches pmain ($before -> $after): $(last_run)"; fi
    fi
    name=check/vrfs-still-work-after-fix
    if selected "$name"; then
        via vrfexec red "${CURL[@]}" "$URL4"
        expect_out "$name" red quiet
    fi
    name=check/dry-run-changes-nothing
    if selected "$name"; then
        ip -n r -4 rule del pref 2000 l3mdev unreachable
        local rules
        rules=$(ip -n r -4 rule)
        rr "$VRFEXEC" check --fix --dry-run
        if [ "$R_OUT" = "ip -4 rule add pref 2000 l3mdev unreachable" ] && [ "$rules" = "$(ip -n r -4 rule)" ]; then pass "$name"; else fail "$name" "$(last_run)"; fi
        ip -n r -4 rule add pref 2000 l3mdev unreachable
    fi
    ip -n r -4 route replace table 20 unreachable default metric "$LAB_UNREACHABLE_METRIC"
    ip netns del pmain
}
