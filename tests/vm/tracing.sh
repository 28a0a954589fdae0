# shellcheck shell=bash
# VM scenarios for `vrfexec trace` (issue "vrfexec trace"): real VRFs, real clients, the trace's
# lines and JSON checked for the facts the kernel saw. Sourced by suite.sh (rr, via, pass,
# fail, skip, selected, last_run, LAB_*).

# A TCP client that binds its socket to a device itself (SO_BINDTODEVICE), then fetches / from
# the lab's peer: prints the errno if the rebind is refused, then the answer.
TRACE_REBIND_PY='import socket, sys
s = socket.socket()
try:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, sys.argv[1].encode())
except OSError as e:
    print(e.errno)
s.settimeout(10)
s.connect((sys.argv[2], 80))
s.sendall(b"GET / HTTP/1.0\r\n\r\n")
data = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
print(data.split(b"\r\n\r\n", 1)[1].decode().strip())'

# A UDP client that names the outgoing interface per packet (IP_PKTINFO), as DHCP and some DNS
# servers do: one datagram to the peer's echo port through interface index argv[1].
TRACE_PKTINFO_PY='import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
IP_PKTINFO = 8
try:
    s.sendmsg([b"x"], [(socket.IPPROTO_IP, IP_PKTINFO, struct.pack("=iII", int(sys.argv[1]), 0, 0))], 0, (sys.argv[2], int(sys.argv[3])))
    print("sent")
except OSError as e:
    print("error", e.errno)'

# trace_cgroups: the trace cgroups that exist now, one per line.
trace_cgroups() {
    find /sys/fs/cgroup -type d -name 'trace:*' 2>/dev/null
}

# trace_has NAME NEEDLE...: the last run's stderr holds every NEEDLE (fixed strings); fails NAME
# with the first one missing. Returns non-zero on failure.
trace_has() {
    local name=$1 needle
    shift
    for needle in "$@"; do
        if ! grep -qF -- "$needle" <<<"$R_ERR"; then
            fail "$name" "no \"$needle\" in the trace; $(last_run)"
            return 1
        fi
    done
}

# trace_objects_settle: the BPF program and link counts, once they equal BEFORE_OBJECTS or after
# 5 s (a dead tracer's are released as its fds close).
trace_objects_settle() {
    local now i
    for ((i = 0; i < 50; i++)); do
        now=$(python3 tests/vm/bpf_objects.py)
        [ "$now" = "$BEFORE_OBJECTS" ] && break
        sleep 0.1
    done
    echo "$now"
}

# trace_warm: one plain run in each VRF the scenarios use, so that their programs are counted in
# BEFORE_OBJECTS (runs leave them attached).
trace_warm() {
    rr "$VRFEXEC" red true
    rr "$VRFEXEC" --strict red true
    rr "$VRFEXEC" blue true
}

# trace_clean NAME: no trace cgroup is left and no program or link more than BEFORE_OBJECTS.
trace_clean() {
    local name=$1 left now
    left=$(trace_cgroups)
    now=$(trace_objects_settle)
    if [ -n "$left" ]; then
        fail "$name" "trace cgroups left: $(oneline "$left")"
    elif [ "$now" != "$BEFORE_OBJECTS" ]; then
        fail "$name" "BPF objects before: $BEFORE_OBJECTS, after: $now"
    else
        return 0
    fi
    return 1
}

# trace_wait_command COMM: waits up to 10 s for a process named COMM in a trace cgroup (the
# traced command has exec'd); sets TRACED_CGROUP and TRACED_PID (empty if it never came).
trace_wait_command() {
    local i cg pid
    TRACED_CGROUP="" TRACED_PID=""
    for ((i = 0; i < 100; i++)); do
        for cg in $(trace_cgroups); do
            for pid in $(cat "$cg/cgroup.procs" 2>/dev/null); do
                if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ]; then
                    TRACED_CGROUP=$cg TRACED_PID=$pid
                    return 0
                fi
            done
        done
        sleep 0.1
    done
    return 1
}

s_sock_trace() {
    local name
    trace_warm
    BEFORE_OBJECTS=$(python3 tests/vm/bpf_objects.py)

    name=trace/curl-red
    if selected "$name"; then
        rr "$VRFEXEC" trace red "${CURL[@]}" "$URL4"
        if [ "$R_RC" -ne 0 ] || [ "$R_OUT" != red ]; then
            fail "$name" "expected red's answer, $(last_run)"
        elif trace_has "$name" \
            ": socket inet stream tcp = " ", bound to red" \
            ": connect tcp $LAB_PEER4:80 via red" \
            "trace: curl exited with status 0 after" \
            "trace: connect tcp $LAB_PEER4:80 via red (1x)" \
            "trace: everything used red" && trace_clean "$name"; then
            pass "$name"
        fi
    fi

    name=trace/curl-v6-blue
    if selected "$name"; then
        rr "$VRFEXEC" trace blue "${CURL[@]}" "$URL6"
        if [ "$R_RC" -ne 0 ] || [ "$R_OUT" != blue ]; then
            fail "$name" "expected blue's answer, $(last_run)"
        elif trace_has "$name" ": socket inet6 stream tcp = " \
            ": connect tcp [$LAB_PEER6]:80 via blue" "trace: everything used blue"; then
            pass "$name"
        fi
    fi

    name=trace/default
    if selected "$name"; then
        # From inside red, one command back in the default VRF: its sockets unbound, and
        # identify (reading its cgroup, .../vrf/trace:<pid>) says default.
        rr "$VRFEXEC" red "$VRFEXEC" trace default sh -c \
            "$VRFEXEC identify; python3 -c 'import socket; socket.socket()'"
        if [ "$R_RC" -ne 0 ] || [ -n "$R_OUT" ]; then
            fail "$name" "expected no VRF from identify, $(last_run)"
        elif trace_has "$name" ": socket inet stream tcp = 3, not bound (default VRF)" \
            "trace: sockets: 1 the default VRF" "trace: everything used the default VRF"; then
            pass "$name"
        fi
    fi

    name=trace/rebind-to-blue
    if selected "$name"; then
        rr "$VRFEXEC" trace red python3 -c "$TRACE_REBIND_PY" blue "$LAB_PEER4"
        if [ "$R_RC" -ne 0 ] || [ "$R_OUT" != blue ]; then
            fail "$name" "the rebind should reach blue's peer, $(last_run)"
        elif trace_has "$name" \
            ": setsockopt SO_BINDTODEVICE \"blue\" = 0, the socket leaves red" \
            ": connect tcp $LAB_PEER4:80 via blue, NOT red" \
            "trace: NOT in red: 2"; then
            pass "$name"
        fi
    fi

    name=trace/rebind-refused-strict
    if selected "$name"; then
        rr "$VRFEXEC" trace --strict red python3 -c "$TRACE_REBIND_PY" blue "$LAB_PEER4"
        if [ "$R_RC" -ne 0 ] || [ "$R_OUT" != $'1\nred' ]; then
            fail "$name" "expected EPERM (1), then red's answer, $(last_run)"
        elif trace_has "$name" \
            ": setsockopt SO_BINDTODEVICE \"blue\" = -1 EPERM, refused by --strict" \
            ": connect tcp $LAB_PEER4:80 via red" \
            "trace: refused by --strict: 1" "trace: everything used red" &&
            trace_clean "$name"; then
            pass "$name"
        fi
    fi

    name=trace/pktinfo-names-blue
    if selected "$name"; then
        local blue_if
        blue_if=$(ip netns exec r cat /sys/class/net/r-blue/ifindex)
        rr "$VRFEXEC" trace red python3 -c "$TRACE_PKTINFO_PY" "$blue_if" "$LAB_PEER4" "$LAB_UDP_PORT"
        # What the kernel does with the packet varies by version; the trace must show the ask.
        if [ "$R_RC" -ne 0 ]; then
            fail "$name" "$(last_run)"
        elif trace_has "$name" \
            ": sendmsg to $LAB_PEER4:$LAB_UDP_PORT with IP_PKTINFO interface r-blue, NOT red" \
            "trace: NOT in red: 1"; then
            pass "$name"
        fi
    fi

    name=trace/unix-resolver-outside
    if selected "$name"; then
        # A resolver daemon in r's default VRF that answers over a Unix socket (as nscd or
        # systemd-resolved's varlink do): the command asks it, and the daemon's own traffic
        # is not the command's, whatever VRF the command is in.
        local sock="$LAB_DIR/resolver.sock" resolver
        rm -f "$sock"
        ip netns exec r socat "UNIX-LISTEN:$sock,fork" SYSTEM:"echo $LAB_PEER4" >/dev/null 2>&1 &
        resolver=$!
        local i
        for ((i = 0; i < 50; i++)); do [ -S "$sock" ] && break; sleep 0.1; done
        rr "$VRFEXEC" trace red socat -T5 - "UNIX-CONNECT:$sock"
        kill "$resolver" 2>/dev/null
        wait "$resolver" 2>/dev/null
        if [ "$R_RC" -ne 0 ] || [ "$R_OUT" != "$LAB_PEER4" ]; then
            fail "$name" "$(last_run)"
        elif trace_has "$name" ": socket unix stream = " \
            ": connect unix $sock = 0, a local process answers" \
            "trace: unix $sock (1x): answered outside the VRF's routing"; then
            pass "$name"
        fi
    fi

    name=trace/json-and-status
    if selected "$name"; then
        local out="$LAB_DIR/trace.json"
        rr "$VRFEXEC" trace --json -o "$out" red sh -c "${CURL[*]} $URL4; exit 3"
        local facts
        facts=$(python3 - "$out" <<'PY' 2>&1
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
connect = [l for l in lines if l["event"] == "connect" and l.get("protocol") == "tcp"]
socks = [l for l in lines if l["event"] == "socket" and l["family"] == "inet"]
s = lines[-1]
print(len(connect), connect[0]["dev"], connect[0]["address"], connect[0]["port"], connect[0]["outside"],
      socks[0]["dev"], s["event"], s["status"], s["sockets"].get("red"), len(s["outside"]), s["lost"])
PY
)
        local want="1 red $LAB_PEER4 80 False red summary 3 1 0 0"
        if [ "$R_RC" -ne 3 ] || [ "$R_OUT" != red ]; then
            fail "$name" "expected red's answer and status 3, $(last_run)"
        elif [ "$facts" != "$want" ]; then
            fail "$name" "JSON facts \"$(oneline "$facts")\", expected \"$want\""
        elif grep -q '^trace:' <<<"$R_ERR"; then
            fail "$name" "--output: trace lines on stderr too: $(oneline "$R_ERR")"
        else
            pass "$name"
        fi
    fi

    name=trace/child-escapes
    if selected "$name"; then
        # A process that moves itself out (what a daemon or `systemd-run --scope` does): its
        # sockets are no longer bound, and the trace says where it went. nsenter keeps the
        # guest's /sys (ip netns exec would hide cgroup2 from the command).
        local out rc
        out=$(timeout -k 5 "$CMD_TIMEOUT" nsenter --net=/run/netns/r "$VRFEXEC" trace red \
            sh -c 'echo $$ > /sys/fs/cgroup/cgroup.procs; exec curl -sS --max-time 5 '"$URL4" 2>&1)
        rc=$?
        R_ERR=$out R_OUT="" R_RC=$rc
        # r's main table has no route to the peer: outside red, curl cannot connect.
        if [ "$rc" -eq 0 ]; then
            fail "$name" "curl reached the peer from outside red: $(oneline "$out")"
        elif trace_has "$name" ": moved to cgroup /, no longer traced: its new sockets are NOT bound to red" \
            "trace: NOT in red: 1" && trace_clean "$name"; then
            pass "$name"
        fi
    fi

    name=trace/command-killed
    if selected "$name"; then
        rr "$VRFEXEC" trace red sh -c 'kill -9 $$'
        if [ "$R_RC" -ne 137 ]; then
            fail "$name" "expected 137 (128+SIGKILL), $(last_run)"
        elif trace_has "$name" "trace: sh exited with status 137" && trace_clean "$name"; then
            pass "$name"
        fi
    fi

    name=trace/signal-forwarded
    if selected "$name"; then
        # SIGTERM to the tracer (as systemd or kill(1) sends it) reaches the command.
        ip netns exec r "$VRFEXEC" trace red sh -c 'trap "exit 9" TERM; while :; do sleep 0.1; done' \
            >"$LAB_DIR/sig.out" 2>"$LAB_DIR/sig.err" &
        local tracer=$! rc
        trace_wait_command sh
        sleep 0.5
        kill -TERM "$tracer"
        wait "$tracer"
        rc=$?
        if [ -z "$TRACED_PID" ]; then
            fail "$name" "the traced command never started; $(oneline "$(cat "$LAB_DIR/sig.err")")"
        elif [ "$rc" -ne 9 ]; then
            fail "$name" "expected the command's 9, got $rc; stderr $(oneline "$(cat "$LAB_DIR/sig.err")")"
        elif trace_clean "$name"; then
            pass "$name"
        fi
    fi

    name=trace/tracer-killed-gc
    if selected "$name"; then
        ip netns exec r "$VRFEXEC" trace red sleep 60 >/dev/null 2>&1 &
        local tracer=$! i objects kept identified
        trace_wait_command sleep
        local cg=$TRACED_CGROUP pid=$TRACED_PID
        kill -9 "$tracer"
        wait "$tracer" 2>/dev/null
        objects=$(trace_objects_settle)
        rr "$VRFEXEC" gc
        [ -n "$cg" ] && [ -d "$cg" ] && kept=yes || kept=no
        # The command keeps running, bound: it is in red's subtree.
        rr "$VRFEXEC" identify "$pid"
        identified=$R_OUT
        [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
        for ((i = 0; i < 50; i++)); do [ -z "$(cat "$cg/cgroup.procs" 2>/dev/null)" ] && break; sleep 0.1; done
        rr "$VRFEXEC" gc
        # gc also took the idle VRF cgroups and their programs: warm them again to compare.
        trace_warm
        if [ -z "$pid" ]; then
            fail "$name" "the traced sleep never started"
        elif [ "$objects" != "$BEFORE_OBJECTS" ]; then
            fail "$name" "the killed tracer's programs stayed: before $BEFORE_OBJECTS, after $objects"
        elif [ "$kept" != yes ] || [ "$identified" != red ]; then
            fail "$name" "while its command ran: cgroup kept=$kept, identify=\"$identified\""
        elif trace_clean "$name"; then
            pass "$name"
        fi
    fi
}
