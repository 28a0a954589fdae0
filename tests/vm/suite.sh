#!/bin/bash
# The VM scenario suite: real VRFs (tests/vm/lab.sh), run in the guest by `cargo xtask vm suite`
# (or `cargo xtask test`). Never run it on a host: it creates namespaces, VRFs and veths.
#
# Each scenario runs inside the router namespace r, with vrfexec and, where iproute2 has the
# feature, with `ip vrf exec` (or `ping -I`) as the reference; both must give the expected
# result. Output: one line per scenario,
#   PASS <name> | FAIL <name>: <reason> | SKIP <name>: <reason>
# (names are <scenario>/<implementation>), lines starting with '#' are commentary, and the last
# line is exactly
#   vm: N passed, N failed, N skipped
# The exit status is non-zero if anything failed or nothing passed.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 2
# shellcheck source=tests/vm/report.sh
source tests/vm/report.sh
# shellcheck source=tests/vm/lab.sh
source tests/vm/lab.sh
# shellcheck source=tests/vm/verbs.sh
source tests/vm/verbs.sh
# shellcheck source=tests/vm/security.sh
source tests/vm/security.sh
# shellcheck source=tests/vm/package.sh
source tests/vm/package.sh
# shellcheck source=tests/vm/builds.sh
source tests/vm/builds.sh
# shellcheck source=tests/vm/failclosed.sh
source tests/vm/failclosed.sh
# shellcheck source=tests/vm/dns.sh
source tests/vm/dns.sh
# shellcheck source=tests/vm/faults.sh
source tests/vm/faults.sh
# shellcheck source=tests/vm/tracing.sh
source tests/vm/tracing.sh

# vrfexec as installed (cargo xtask vm suite stages it): PREFIX/bin/vrfexec is the static
# build, PREFIX/lib/vrfexec/vrfexec-full the dynamic one it hands over to.
VRFEXEC=${VRFEXEC:-$PWD/target/stage/debug/bin/vrfexec}
VRFEXEC_FULL=$(dirname "$(dirname "$VRFEXEC")")/lib/vrfexec/vrfexec-full
# Per command, so that a hung command fails its scenario instead of the whole boot.
CMD_TIMEOUT=${CMD_TIMEOUT:-60}
URL4="http://$LAB_PEER4/"
URL6="http://[$LAB_PEER6]/"
CURL=(curl -sS --max-time 20)

# rr CMD...: run CMD in namespace r; sets R_OUT, R_ERR, R_RC.
rr() {
    local errf="$LAB_DIR/rr.stderr"
    R_OUT=$(timeout -k 5 "$CMD_TIMEOUT" ip netns exec r "$@" 2>"$errf" </dev/null)
    R_RC=$?
    R_ERR=$(cat "$errf" 2>/dev/null)
}

# launcher IMPL VRF: sets LAUNCH to the command prefix that runs something in VRF.
launcher() {
    case $1 in
        vrfexec) LAUNCH=("$VRFEXEC" "$2") ;;
        ipvrf) LAUNCH=(ip vrf exec "$2") ;;
        *) echo "suite: unknown implementation $1" >&2 && exit 2 ;;
    esac
}

# via IMPL VRF CMD...: run CMD in r through VRF with IMPL.
via() {
    launcher "$1" "$2"
    shift 2
    rr "${LAUNCH[@]}" "$@"
}

last_run() {
    printf 'exit %s, stdout "%s", stderr "%s"' "$R_RC" "$(oneline "$R_OUT")" "$(oneline "$R_ERR")"
}

# expect_out NAME WANT [quiet]: the last run succeeded and printed exactly WANT; with "quiet"
# its stderr must also be empty (vrfexec is silent on success).
expect_out() {
    local name=$1 want=$2 quiet=${3:-}
    if [ "$R_RC" -ne 0 ] || [ "$R_OUT" != "$want" ]; then
        fail "$name" "expected \"$want\", got $(last_run)"
    elif [ -n "$quiet" ] && [ -n "$R_ERR" ]; then
        fail "$name" "output right but stderr not empty: \"$(oneline "$R_ERR")\""
    else
        pass "$name"
    fi
}

# expect_failure NAME: the last run failed (and did not print a peer's answer).
expect_failure() {
    local name=$1
    if [ "$R_RC" -eq 0 ] || [ "$R_OUT" = red ] || [ "$R_OUT" = blue ]; then
        fail "$name" "expected a failure, got $(last_run)"
    else
        pass "$name"
    fi
}

# quiet_for IMPL: "quiet" for vrfexec (its stderr must stay empty), "" for references.
quiet_for() {
    [ "$1" = vrfexec ] && echo quiet
}

# Counters of the peers' network stacks, to tell which peer a probe reached when both have the
# same address: counter COLOR v4|v6 echo|noport (ICMP echo requests in, UDP to closed ports).
counter() {
    local ns=p$1 family=$2 what=$3
    if [ "$family" = v4 ]; then
        local proto field
        case $what in
            echo) proto=Icmp field=InEchos ;;
            noport) proto=Udp field=NoPorts ;;
        esac
        ip netns exec "$ns" awk -v p="$proto:" -v f="$field" \
            '$1 == p { if (!seen) { for (i = 2; i <= NF; i++) col[$i] = i; seen = 1 }
                       else { print $col[f]; exit } }' /proc/net/snmp
    else
        local key
        case $what in
            echo) key=Icmp6InEchos ;;
            noport) key=Udp6NoPorts ;;
        esac
        ip netns exec "$ns" awk -v k="$key" '$1 == k { print $2 }' /proc/net/snmp6
    fi
}

# counters FAMILY WHAT: "red blue" counter values.
counters() {
    echo "$(counter red "$1" "$2") $(counter blue "$1" "$2")"
}

# expect_reached NAME COLOR BEFORE AFTER: the probe reached COLOR's peer, not the other one.
expect_reached() {
    local name=$1 color=$2 before=$3 after=$4
    local b_red b_blue a_red a_blue hit miss
    read -r b_red b_blue <<<"$before"
    read -r a_red a_blue <<<"$after"
    if [ "$color" = red ]; then
        hit=$((a_red - b_red)) miss=$((a_blue - b_blue))
    else
        hit=$((a_blue - b_blue)) miss=$((a_red - b_red))
    fi
    if [ "$R_RC" -ne 0 ]; then
        fail "$name" "$(last_run)"
    elif [ "$hit" -lt 1 ] || [ "$miss" -ne 0 ]; then
        fail "$name" "probes reached $color's peer $hit times and the other peer $miss times"
    else
        pass "$name"
    fi
}

other() {
    if [ "$1" = red ]; then echo blue; else echo red; fi
}

cgroup_dirs() {
    find /sys/fs/cgroup -type d 2>/dev/null | sort
}

### Scenarios

s_baseline() {
    local name
    name=no-vrf/curl-v4
    if selected "$name"; then
        rr "${CURL[@]}" "$URL4"
        expect_failure "$name"
    fi
    name=no-vrf/curl-v6
    if selected "$name"; then
        rr "${CURL[@]}" "$URL6"
        expect_failure "$name"
    fi
    name=no-vrf/ping-v4
    if selected "$name"; then
        rr ping -c1 -W2 "$LAB_PEER4"
        expect_failure "$name"
    fi
}

s_http() {
    local impl=$1 color fam url name
    for color in red blue; do
        for fam in v4 v6; do
            if [ "$fam" = v4 ]; then url=$URL4; else url=$URL6; fi
            name="curl-$fam-$color/$impl"
            if selected "$name"; then
                via "$impl" "$color" "${CURL[@]}" "$url"
                expect_out "$name" "$color" "$(quiet_for "$impl")"
            fi
            name="wget-$fam-$color/$impl"
            if selected "$name"; then
                via "$impl" "$color" wget -q -O - -T 20 -t 1 "$url"
                expect_out "$name" "$color" "$(quiet_for "$impl")"
            fi
        done
    done
}

s_udp() {
    local impl=$1 color fam addr name
    for color in red blue; do
        for fam in v4 v6; do
            if [ "$fam" = v4 ]; then
                addr="UDP4:$LAB_PEER4:$LAB_UDP_PORT"
            else
                addr="UDP6:[$LAB_PEER6]:$LAB_UDP_PORT"
            fi
            name="udp-$fam-$color/$impl"
            if selected "$name"; then
                via "$impl" "$color" sh -c "echo hello | socat -t 10 - '$addr,null-eof'"
                expect_out "$name" "$color"
            fi
        done
    done
}

# s_ping IMPL: IMPL is vrfexec, ipvrf or pingI (`ping -I VRF`).
s_ping() {
    local impl=$1 color fam name before
    for color in red blue; do
        for fam in v4 v6; do
            name="ping-$fam-$color/$impl"
            selected "$name" || continue
            local target=$LAB_PEER4
            [ "$fam" = v6 ] && target=$LAB_PEER6
            before=$(counters "$fam" echo)
            if [ "$impl" = pingI ]; then
                rr ping -c1 -W5 -I "$color" "$target"
            else
                via "$impl" "$color" ping -c1 -W5 "$target"
            fi
            expect_reached "$name" "$color" "$before" "$(counters "$fam" echo)"
        done
    done
}

s_trace() {
    local impl=$1 name before
    name="mtr-red/$impl"
    if selected "$name"; then
        before=$(counters v4 echo)
        via "$impl" red mtr -r -n -c1 "$LAB_PEER4"
        if [ "$R_RC" -eq 0 ] && ! grep -q -- "|-- $LAB_PEER4" <<<"$R_OUT"; then
            fail "$name" "report does not show $LAB_PEER4: $(last_run)"
        else
            expect_reached "$name" red "$before" "$(counters v4 echo)"
        fi
    fi
    name="traceroute-blue/$impl"
    if selected "$name"; then
        before=$(counters v4 noport)
        via "$impl" blue traceroute -n -q1 -w3 -m5 "$LAB_PEER4"
        if [ "$R_RC" -eq 0 ] && ! grep -Eq "^ *1 +$LAB_PEER4 " <<<"$R_OUT"; then
            fail "$name" "first hop is not $LAB_PEER4: $(last_run)"
        else
            expect_reached "$name" blue "$before" "$(counters v4 noport)"
        fi
    fi
}

# apt_update IMPL|none VRF: apt-get update against the lab repository only.
apt_update() {
    local impl=$1 vrf=$2 dir
    dir=$(mktemp -d "$LAB_DIR/apt.XXXXXX")
    mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
    echo "deb [trusted=yes] http://$LAB_PEER4/apt ./" >"$dir/sources.list"
    local apt=(apt-get -q -o "Dir::Etc::sourcelist=$dir/sources.list" -o Dir::Etc::sourceparts=-
        -o APT::Get::List-Cleanup=0 -o "Dir::State::Lists=$dir/lists"
        -o "Dir::Cache=$dir/cache" -o APT::Sandbox::User=root
        -o Acquire::Retries=0 -o Acquire::http::Timeout=20 update)
    if [ "$impl" = none ]; then
        rr "${apt[@]}"
    else
        via "$impl" "$vrf" "${apt[@]}"
    fi
    APT_LISTS=$dir/lists
}

# lists_have_package DIR PACKAGE: an index in DIR lists PACKAGE (apt may store indexes
# compressed, e.g. with Acquire::GzipIndexes; apt-helper cat-file reads any of them).
lists_have_package() {
    local f
    for f in "$1"/*Packages*; do
        [ -f "$f" ] || continue
        if /usr/lib/apt/apt-helper cat-file "$f" | grep -q "^Package: $2\$"; then
            return 0
        fi
    done
    return 1
}

s_apt() {
    local impl=$1 name
    name="apt-update-red/$impl"
    if selected "$name"; then
        apt_update "$impl" red
        if [ "$R_RC" -ne 0 ]; then
            fail "$name" "$(last_run)"
        elif ! lists_have_package "$APT_LISTS" vrfexec-lab-red; then
            fail "$name" "apt-get update succeeded but fetched no lab Packages list"
        else
            pass "$name"
        fi
    fi
    name="apt-update-blue-fails/$impl"
    if selected "$name"; then
        apt_update "$impl" blue
        if [ "$R_RC" -eq 0 ]; then
            fail "$name" "apt-get update through blue succeeded (blue serves no repository)"
        else
            pass "$name"
        fi
    fi
}

s_apt_novrf() {
    local name=no-vrf/apt-update
    if selected "$name"; then
        apt_update none ""
        if [ "$R_RC" -eq 0 ]; then fail "$name" "succeeded without a VRF"; else pass "$name"; fi
    fi
}

# s_server IMPL PORT: a TCP server started in VRF red inside r is reachable from pred only.
s_server() {
    local impl=$1 port=$2
    local name="server-red/$impl" log pid i listening=""
    selected "$name" || return 0
    log="$LAB_DIR/server-$impl.log"
    launcher "$impl" red
    # Own session, so the whole process group can be stopped afterwards.
    setsid ip netns exec r "${LAUNCH[@]}" \
        socat "TCP-LISTEN:$port,reuseaddr,fork" "SYSTEM:echo from-r" >"$log" 2>&1 </dev/null &
    pid=$!
    for ((i = 0; i < 100; i++)); do
        if ip netns exec r ss -Hltn "sport = :$port" | grep -q .; then
            listening=yes
            break
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    if [ -z "$listening" ]; then
        fail "$name" "server did not start listening: $(oneline "$(cat "$log")")"
    else
        local from_red from_blue
        from_red=$(timeout 30 ip netns exec pred socat -t 10 -T 20 - "TCP:$LAB_ROUTER4:$port" \
            </dev/null 2>&1)
        from_blue=$(timeout 30 ip netns exec pblue socat -t 10 -T 20 - "TCP:$LAB_ROUTER4:$port" \
            </dev/null 2>&1)
        if [ "$from_red" != from-r ]; then
            fail "$name" "from pred: expected \"from-r\", got \"$(oneline "$from_red")\""
        elif [ "$from_blue" = from-r ]; then
            fail "$name" "also reachable from pblue (server not bound to red)"
        else
            pass "$name"
        fi
    fi
    kill -- "-$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
}

s_inherit() {
    local impl=$1 name
    name="inherit-grandchild/$impl"
    if selected "$name"; then
        via "$impl" blue bash -c "bash -c '${CURL[*]} $URL4'"
        expect_out "$name" blue
    fi
    name="inherit-background/$impl"
    if selected "$name"; then
        via "$impl" red bash -c "(sleep 0.1; ${CURL[*]} '$URL6') & wait"
        expect_out "$name" red
    fi
    name="inherit-fds/$impl"
    if selected "$name"; then
        # The caller's fds reach the command, gaps and all, as they reach it without a VRF, and
        # none of the launcher's does: vrfexec marks every other fd close-on-exec with
        # close_range(2) on Linux 5.11 and later, from a /proc/self/fd listing before that.
        local want list='cd /proc/self/fd && echo *'
        {
            rr sh -c "$list"
            want=$R_OUT
            via "$impl" red sh -c "$list"
        } 5</dev/null 7</dev/null 8</dev/null
        if [ "$R_RC" -eq 0 ] && [ "$R_OUT" = "$want" ] && [[ " $want " == *" 5 7 8 "* ]]; then
            pass "$name"
        else
            fail "$name" "expected \"$want\" (with 5, 7 and 8), got $(last_run)"
        fi
    fi
    name="exit-status/$impl"
    if selected "$name"; then
        via "$impl" red sh -c 'exit 7'
        if [ "$R_RC" -eq 7 ]; then pass "$name"; else fail "$name" "expected exit 7, got $(last_run)"; fi
    fi
}

s_nesting() {
    local name
    name="nest-red-then-blue/vrfexec"
    if selected "$name"; then
        rr "$VRFEXEC" red "$VRFEXEC" blue "${CURL[@]}" "$URL4"
        expect_out "$name" blue quiet
    fi
    name="nest-red-then-blue/ipvrf"
    if selected "$name"; then
        rr ip vrf exec red ip vrf exec blue "${CURL[@]}" "$URL4"
        expect_out "$name" blue
    fi
    name="nest-red-then-default/vrfexec"
    if selected "$name"; then
        rr "$VRFEXEC" red "$VRFEXEC" default "${CURL[@]}" "$URL4"
        expect_failure "$name"
    fi
    name="nest-red-then-default/ipvrf"
    if selected "$name"; then
        rr ip vrf exec red ip vrf exec default "${CURL[@]}" "$URL4"
        expect_failure "$name"
    fi
    name="nest-default-sees-no-vrf/vrfexec"
    if selected "$name"; then
        rr "$VRFEXEC" default "${CURL[@]}" "$URL4"
        expect_failure "$name"
    fi
    name="nest-ipvrf-red-then-vrfexec-blue"
    if selected "$name"; then
        rr ip vrf exec red "$VRFEXEC" blue "${CURL[@]}" "$URL4"
        expect_out "$name" blue
    fi
    name="nest-vrfexec-red-then-ipvrf-blue"
    if selected "$name"; then
        rr "$VRFEXEC" red ip vrf exec blue "${CURL[@]}" "$URL4"
        expect_out "$name" blue
    fi
}

# The other spellings of the CLI contract.
s_cli_forms() {
    local name
    name="cli-exec-verb/vrfexec"
    if selected "$name"; then
        rr "$VRFEXEC" exec blue "${CURL[@]}" "$URL4"
        expect_out "$name" blue quiet
    fi
    name="cli-verbose/vrfexec"
    if selected "$name"; then
        rr "$VRFEXEC" -v red "${CURL[@]}" "$URL4"
        expect_out "$name" red
    fi
    name="cli-dev/vrfexec"
    if selected "$name"; then
        rr "$VRFEXEC" --dev r-blue "${CURL[@]}" "$URL4"
        expect_out "$name" blue quiet
    fi
    name="cli-dev/curl-interface"
    if selected "$name"; then
        rr "${CURL[@]}" --interface r-blue "$URL4"
        expect_out "$name" blue
    fi
}

# A VRF deleted and created again under the same name has a new ifindex (same table).
s_recreate() {
    local name=recreate-vrf old new
    old=$(ip -n r -o link show red | cut -d: -f1)
    ip -n r link del red
    lab_vrf red 10
    lab_attach red r-red
    new=$(ip -n r -o link show red | cut -d: -f1)
    if selected "$name"; then
        rr "${CURL[@]}" "$URL4"
        if [ "$old" = "$new" ]; then
            fail "$name" "red kept ifindex $old"
        elif [ "$R_RC" -eq 0 ]; then
            fail "$name" "after re-creating red, r's main table reaches the peer: $(last_run)"
        else
            echo "# red re-created: ifindex $old -> $new"
            pass "$name"
        fi
    fi
    local impl
    for impl in vrfexec ipvrf; do
        name="recreate-red-v4/$impl"
        if selected "$name"; then
            via "$impl" red "${CURL[@]}" "$URL4"
            expect_out "$name" red "$(quiet_for "$impl")"
        fi
        name="recreate-red-v6/$impl"
        if selected "$name"; then
            via "$impl" red "${CURL[@]}" "$URL6"
            expect_out "$name" red "$(quiet_for "$impl")"
        fi
        name="recreate-blue-still/$impl"
        if selected "$name"; then
            via "$impl" blue "${CURL[@]}" "$URL4"
            expect_out "$name" blue "$(quiet_for "$impl")"
        fi
    done
}

# expect_rejected NAME WANT_RC: vrfexec's own error contract, and no cgroup left behind.
expect_rejected() {
    local name=$1 want=$2 before=$3 after
    after=$(cgroup_dirs)
    local created
    created=$(comm -13 <(echo "$before") <(echo "$after") | tr '\n' ' ')
    local lines
    lines=$(printf '%s\n' "$R_ERR" | grep -c .)
    if [ "$R_RC" -ne "$want" ]; then
        fail "$name" "expected exit $want, got $(last_run)"
    elif [ "$lines" -ne 1 ] || [[ $R_ERR != "vrfexec: "* ]]; then
        fail "$name" "stderr must be one line starting 'vrfexec: ', got \"$(oneline "$R_ERR")\""
    elif [ -n "$created" ]; then
        fail "$name" "left new cgroup directories: $created"
    else
        pass "$name"
    fi
}

s_bad_input() {
    local name before notexec="$LAB_DIR/not-executable"
    printf '#!/bin/sh\necho should not run\n' >"$notexec"
    chmod 644 "$notexec"

    name="bad-missing-vrf/vrfexec"
    if selected "$name"; then
        before=$(cgroup_dirs)
        rr "$VRFEXEC" nosuchvrf true
        expect_rejected "$name" 125 "$before"
    fi
    name="bad-not-a-vrf/vrfexec"
    if selected "$name"; then
        before=$(cgroup_dirs)
        rr "$VRFEXEC" r-red true
        expect_rejected "$name" 125 "$before"
    fi
    name="bad-missing-command/vrfexec"
    if selected "$name"; then
        before=$(cgroup_dirs)
        rr "$VRFEXEC" red vrfexec-no-such-command
        expect_rejected "$name" 127 "$before"
    fi
    name="bad-missing-command-path/vrfexec"
    if selected "$name"; then
        before=$(cgroup_dirs)
        rr "$VRFEXEC" red /nonexistent/command
        expect_rejected "$name" 127 "$before"
    fi
    name="bad-not-executable/vrfexec"
    if selected "$name"; then
        before=$(cgroup_dirs)
        rr "$VRFEXEC" red "$notexec"
        expect_rejected "$name" 126 "$before"
    fi
    # The reference rejects the same input (its exit codes differ: not compared).
    name="bad-missing-vrf/ipvrf"
    if selected "$name"; then
        rr ip vrf exec nosuchvrf true
        expect_failure "$name"
    fi
    name="bad-not-a-vrf/ipvrf"
    if selected "$name"; then
        rr ip vrf exec r-red true
        expect_failure "$name"
    fi
    name="bad-missing-command/ipvrf"
    if selected "$name"; then
        rr ip vrf exec red vrfexec-no-such-command
        expect_failure "$name"
    fi
}

# s_concurrent IMPL: 40 runs at once, alternating red and blue, each must get its own answer.
s_concurrent() {
    local impl=$1
    local name="concurrent-40/$impl" dir i color pids=() bad=0 first=""
    selected "$name" || return 0
    dir=$(mktemp -d "$LAB_DIR/conc.XXXXXX")
    launcher "$impl" red
    for ((i = 0; i < 40; i++)); do
        if ((i % 2)); then color=blue; else color=red; fi
        launcher "$impl" "$color"
        timeout -k 5 120 ip netns exec r "${LAUNCH[@]}" curl -sS --max-time 60 "$URL4" \
            >"$dir/$i.$color" 2>"$dir/$i.err" </dev/null &
        pids+=("$!")
    done
    wait "${pids[@]}"
    for ((i = 0; i < 40; i++)); do
        if ((i % 2)); then color=blue; else color=red; fi
        if [ "$(cat "$dir/$i.$color")" != "$color" ]; then
            bad=$((bad + 1))
            [ -n "$first" ] || first="run $i wanted $color, got \"$(oneline "$(cat "$dir/$i.$color")")\" stderr \"$(oneline "$(cat "$dir/$i.err")")\""
        fi
    done
    if [ "$bad" -eq 0 ]; then pass "$name"; else fail "$name" "$bad of 40 wrong; $first"; fi
}

main() {
    echo "# vrfexec VM suite on Linux $(uname -r); vrfexec: $VRFEXEC"
    if [ ! -x "$VRFEXEC" ]; then
        echo "# $VRFEXEC is missing: every vrfexec scenario will fail"
    fi
    if ! lab_up; then
        fail lab-up "the lab could not be built"
        report_end
    fi
    s_baseline
    local impl
    for impl in vrfexec ipvrf; do
        s_http "$impl"
        s_udp "$impl"
        s_ping "$impl"
        s_trace "$impl"
        s_apt "$impl"
        s_inherit "$impl"
    done
    s_ping pingI
    s_apt_novrf
    s_server vrfexec 8001
    s_server ipvrf 8002
    s_nesting
    s_cli_forms
    s_bad_input
    s_concurrent vrfexec
    s_concurrent ipvrf
    s_recreate
    s_show
    s_identify_pids
    s_move
    s_route
    s_pingverb
    s_warm_gc
    s_security
    s_fc_ancestor
    s_builds
    s_package
    s_dns
    s_faults
    s_sock_trace
    # Near the end: it changes r's FIB rules (the fix) for good.
    s_check
    # Last: on a kernel with the net_cls trap, cgroup v2 socket programs stay off until reboot.
    s_fc_net_cls

    report_end
}

main "$@"
