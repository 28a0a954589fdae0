#!/bin/bash
# `cargo xtask demo`: a short guided tour of vrfexec on the VM lab (tests/vm/lab.sh), run in the
# guest. Prints each command before its output, like a tutorial; exits non-zero if vrfexec did
# not do what the text says.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 2
# shellcheck source=tests/vm/lab.sh
source tests/vm/lab.sh
VRFEXEC=${VRFEXEC:-$PWD/target/stage/debug/bin/vrfexec}
PROBLEMS=0

say() {
    printf '\n%s\n' "$*"
}

# show DISPLAY -- CMD...: print "r# DISPLAY", then run CMD in the router namespace r.
# Sets OUT (stdout) and RC; output is shown as it is.
show() {
    local display=$1
    shift 2
    printf 'r# %s\n' "$display"
    OUT=$(ip netns exec r "$@" 2>&1 </dev/null)
    RC=$?
    [ -z "$OUT" ] || printf '%s\n' "$OUT" | sed 's/^/   /'
}

# check WHAT: complain (and fail the demo) unless WHAT holds.
check() {
    if ! eval "$1"; then
        echo "   !! unexpected: $2"
        PROBLEMS=$((PROBLEMS + 1))
    fi
}

lab_log() { :; }

cat <<'EOF'
============================================================================
 vrfexec demo: run any program inside a Linux VRF
============================================================================
This VM (Debian's Linux with the VRF driver, booted with your machine's own
files) builds a small lab of network namespaces:

   pred  10.9.0.2 ----- r-red  [VRF red,  table 10] \
                                                     router "r"
   pblue 10.9.0.2 ----- r-blue [VRF blue, table 20] /

Both VRFs use the SAME addresses (10.9.0.1/24 on the router side, fd00:9::/64
too), and each peer's web server answers with its colour. r's main routing
table has no route to 10.9.0.0/24 at all. Commands below run on the router r.
EOF

if ! lab_up; then
    echo "!! the lab could not be built"
    exit 1
fi

say "The two VRFs and their interfaces:"
show "ip vrf show" -- ip vrf show
show "ip -br addr show master red" -- ip -br addr show master red
show "ip -br addr show master blue" -- ip -br addr show master blue

say "Without a VRF, r has no route to the peers:"
show "ip route get 10.9.0.2" -- ip route get 10.9.0.2
show "curl -sS --max-time 5 http://10.9.0.2/" -- curl -sS --max-time 5 http://10.9.0.2/
check '[ "$RC" -ne 0 ]' "plain curl should fail"

say "vrfexec runs the command inside a VRF; the same address reaches a different host:"
show "vrfexec red curl -s http://10.9.0.2/" -- "$VRFEXEC" red curl -s http://10.9.0.2/
check '[ "$RC" -eq 0 ] && [ "$OUT" = red ]' "expected red"
show "vrfexec blue curl -s http://10.9.0.2/" -- "$VRFEXEC" blue curl -s http://10.9.0.2/
check '[ "$RC" -eq 0 ] && [ "$OUT" = blue ]' "expected blue"
show "vrfexec blue curl -s 'http://[fd00:9::2]/'" -- "$VRFEXEC" blue curl -s "http://[fd00:9::2]/"
check '[ "$RC" -eq 0 ] && [ "$OUT" = blue ]' "expected blue over IPv6"

say "Any program works, and so do its children (ping, a shell, ...):"
show "vrfexec red ping -c1 10.9.0.2" -- "$VRFEXEC" red ping -c1 -W5 10.9.0.2
check '[ "$RC" -eq 0 ]' "ping through red should work"
show "vrfexec blue sh -c 'curl -s http://10.9.0.2/ && wget -qO- http://10.9.0.2/'" -- \
    "$VRFEXEC" blue sh -c 'curl -s http://10.9.0.2/ && wget -qO- http://10.9.0.2/'
check '[ "$RC" -eq 0 ] && [ "$OUT" = "$(printf "blue\nblue")" ]' "expected blue twice"

say "It works together with iproute2's 'ip vrf exec' (the innermost one wins):"
show "ip vrf exec red vrfexec blue curl -s http://10.9.0.2/" -- \
    ip vrf exec red "$VRFEXEC" blue curl -s http://10.9.0.2/
check '[ "$RC" -eq 0 ] && [ "$OUT" = blue ]' "expected blue"

if ip netns exec r "$VRFEXEC" show >/dev/null 2>&1; then
    say "And 'vrfexec show' tells what it sees:"
    show "vrfexec show" -- "$VRFEXEC" show
fi

say "Which VRF does a process run in? (processes started by 'ip vrf exec' are found too)"
show "vrfexec red vrfexec identify" -- "$VRFEXEC" red "$VRFEXEC" identify
check '[ "$RC" -eq 0 ] && [ "$OUT" = red ]' "expected red"

say "Debugging needs no BPF at all: route and ping use only netlink and SO_BINDTODEVICE:"
show "vrfexec route red 10.9.0.2" -- "$VRFEXEC" route red 10.9.0.2
check '[ "$RC" -eq 0 ] && [[ $OUT == "10.9.0.2 dev r-red table 10"* ]]' "expected the route via r-red, table 10"
show "vrfexec route blue 192.0.2.1" -- "$VRFEXEC" route blue 192.0.2.1
echo "   (exit status $RC: the VRF's unreachable default stops the lookup)"
check '[ "$RC" -eq 1 ]' "expected exit status 1 for an unreachable route"
show "vrfexec ping blue 10.9.0.2 -c 2 -i 0.2" -- "$VRFEXEC" ping blue 10.9.0.2 -c 2 -i 0.2
check '[ "$RC" -eq 0 ]' "ping through blue should get replies"

say "Why does a program not use the VRF? 'trace' shows what its sockets do. This one binds
its socket to blue itself (SO_BINDTODEVICE), so it leaves red:"
REBIND_PY='import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"blue")
s.connect(("10.9.0.2", 80))
s.sendall(b"GET / HTTP/1.0\r\n\r\n")
answer = b""
while chunk := s.recv(4096):
    answer += chunk
print(answer.split(b"\r\n\r\n")[1].decode().strip())'
show "vrfexec trace red python3 rebind-to-blue.py" -- "$VRFEXEC" trace red python3 -c "$REBIND_PY"
check '[ "$RC" -eq 0 ] && grep -qx blue <<<"$OUT" && [[ $OUT == *"via blue, NOT red"* ]] && [[ $OUT == *"NOT in red: 2"* ]]' "expected the rebind and the connect via blue in the trace"
say "With --strict the rebind is refused, and the trace says so:"
show "vrfexec trace --strict red python3 rebind-to-blue.py" -- "$VRFEXEC" trace --strict red python3 -c "$REBIND_PY"
check '[[ $OUT == *"refused by --strict"* ]]' "expected the refusal in the trace"

say "And a health check for the traps VRF setups fall into (with the exact fixes):"
show "vrfexec check" -- "$VRFEXEC" check
check '[ "$RC" -eq 1 ] && [[ $OUT == *local-rule-before-l3mdev* ]]' "expected the rule-order finding"
show "vrfexec check --fix --dry-run" -- "$VRFEXEC" check --fix --dry-run
check '[[ $OUT == *"rule add pref 32765 table local"* ]]' "expected the safe rule move"

say "Errors are one line, with ip-like exit codes (125 for vrfexec's own):"
show "vrfexec nosuchvrf true" -- "$VRFEXEC" nosuchvrf true
echo "   (exit status $RC)"
check '[ "$RC" -eq 125 ]' "expected exit status 125"

lab_down
trap - EXIT
echo
if [ "$PROBLEMS" -ne 0 ]; then
    echo "demo: $PROBLEMS thing(s) did not behave as described above"
    exit 1
fi
echo "That's vrfexec. The lab lived only inside the VM: your machine's network was not touched."
echo "Full scenario suite: cargo xtask vm suite   |   tests: cargo xtask test"
