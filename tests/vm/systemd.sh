#!/bin/bash
# Services in a VRF under a real systemd: run by `cargo xtask vm systemd` (and `cargo xtask
# test`) in a VM booted with systemd as PID 1 (xtask/src/vm/stage2.sh, VM_INIT=systemd), udev
# and journald running. Never run it on a host: it installs the package and creates VRFs,
# veths and units in the machine's own network namespace and systemd.
#
# The lab lives in the VM's root namespace, where PID 1 and its services are:
#
#   sred   (eth0 10.9.0.2/24) --- s-red   [VRF red,   table 10] \
#   sgreen (eth0 10.9.0.2/24) --- s-green [VRF green, table 30]  the VM (root namespace)
#   sdef   (eth0 10.9.0.2/24) --- s-def   [default VRF]         /
#
# The VM's side of each link is 10.9.0.1/24, so only the VRF decides which peer a service talks
# to, and a service listening in red answers red's peer only (tcp_l3mdev_accept stays 0).
# Each peer serves HTTP on port 80 saying its name; green comes and goes during the scenarios.
#
# Output as tests/vm/suite.sh (tests/vm/report.sh).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 2
# shellcheck source=tests/vm/report.sh
source tests/vm/report.sh

WORK=/run/vx
UNITS=/etc/systemd/system
CONF=/etc/vrfexec/units.conf
# Each service serves $WORK/www ("svc") on its own port.
PORT_WEB=8081 PORT_WAY1=8082 PORT_WAY1_USER=8083 PORT_USER=8084 PORT_PCG=8085 PORT_SOCK=8086
PORT_LATE=8087 PORT_WAY1_PCG=8088 PORT_DELEG=8089

log() {
    echo "# systemd: [${SECONDS}s] $*"
}

# systemctl, bounded: a hung job fails its scenario instead of the whole boot.
systemctl() {
    timeout -k 5 60 /usr/bin/systemctl "$@"
}

in_systemd_vm() {
    [ -f /var/lib/vrfexec-vm/env ] && {
        [ "$(readlink /proc/1/exe)" = /usr/lib/systemd/systemd ] ||
            [ "$(readlink /proc/1/exe)" = /lib/systemd/systemd ]
    }
}

# vrf_up NAME TABLE DEV: VRF NAME with its unreachable defaults, DEV enslaved and addressed.
vrf_up() {
    local name=$1 table=$2 dev=$3
    ip link add "$name" type vrf table "$table" &&
        ip link set "$name" up &&
        ip -4 route replace table "$table" unreachable default metric 4278198272 &&
        ip link set "$dev" master "$name" &&
        ip link set "$dev" up &&
        ip addr replace 10.9.0.1/24 dev "$dev"
}

# peer NAME DEV: namespace NAME linked to the VM's DEV, serving "NAME" over HTTP.
peer() {
    local ns=$1 dev=$2
    ip netns add "$ns" &&
        ip -n "$ns" link set lo up &&
        ip link add "$dev" type veth peer name eth0 netns "$ns" &&
        ip -n "$ns" link set eth0 up &&
        ip -n "$ns" addr add 10.9.0.2/24 dev eth0 &&
        ip -n "$ns" route add default via 10.9.0.1 || return 1
    mkdir -p "$WORK/$ns"
    echo "$ns" >"$WORK/$ns/index.html"
    ip netns exec "$ns" python3 -m http.server --bind 0.0.0.0 --directory "$WORK/$ns" 80 \
        >"$WORK/$ns.log" 2>&1 &
}

lab_up() {
    modprobe vrf && modprobe veth || return 1
    mkdir -p "$WORK/www" && echo svc >"$WORK/www/index.html" || return 1
    peer sred s-red && peer sgreen s-green && peer sdef s-def || return 1
    vrf_up red 10 s-red || return 1
    ip link set s-def up && ip addr add 10.9.0.1/24 dev s-def || return 1
    ip link set s-green up
    local ns i
    for ns in sred sgreen sdef; do
        for ((i = 0; i < 100; i++)); do
            ip netns exec "$ns" ss -Hltn 'sport = :80' | grep -q . && break
            sleep 0.2
        done
    done
    # Without a VRF, the VM reaches the default peer.
    [ "$(curl -s --max-time 5 http://10.9.0.2/)" = sdef ]
}

lab_down() {
    local ns
    for ns in sred sgreen sdef; do
        ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null
        ip netns del "$ns" 2>/dev/null
    done
    ip link del red 2>/dev/null
    ip link del green 2>/dev/null
}

# from NS PORT [nc]: what a client in peer NS gets from the VM's port PORT (HTTP, or raw).
from() {
    if [ "${3:-}" = nc ]; then
        ip netns exec "$1" nc -w 3 10.9.0.1 "$2" </dev/null 2>/dev/null
    else
        ip netns exec "$1" curl -s --max-time 3 "http://10.9.0.1:$2/" 2>/dev/null
    fi
}

# listening PORT [SECONDS]: wait until something in the VM listens on PORT.
listening() {
    local i
    for ((i = 0; i < ${2:-30} * 5; i++)); do
        ss -Hltn "sport = :$1" | grep -q . && return 0
        sleep 0.2
    done
    return 1
}

# only_from PEER PORT [nc]: "" if PORT answers PEER and no other peer, else what went wrong.
only_from() {
    local want=$1 port=$2 client=${3:-} ns out bad=""
    listening "$port" || {
        echo "nothing listens on $port"
        return
    }
    for ns in sred sgreen sdef; do
        out=$(from "$ns" "$port" "$client")
        if [ "$ns" = "$want" ] && [ "$out" != svc ]; then
            bad+="$ns got \"$(oneline "$out")\" instead of svc; "
        elif [ "$ns" != "$want" ] && [ -n "$out" ]; then
            bad+="$ns (not in the service's VRF) reached it; "
        fi
    done
    echo "$bad"
}

# unit_file NAME PORT [EXTRA]: a service whose main process (sh) starts the server as a child,
# after an ExecStartPre= of its own that records which peer it reaches ($WORK/pre/NAME).
unit_file() {
    local name=$1 port=$2 extra=${3:-}
    cat >"$UNITS/$name.service" <<EOF
[Unit]
Description=vrfexec test service $name
[Service]
ExecStartPre=/bin/sh -c 'curl -s --max-time 5 http://10.9.0.2/ >$WORK/pre/$name'
ReadWritePaths=-$WORK/pre
ExecStart=/bin/sh -c 'python3 -m http.server --bind 0.0.0.0 --directory $WORK/www $port & wait'
$extra
[Install]
WantedBy=multi-user.target
EOF
}

# status UNIT: "active", "failed"... and the main process's exit status.
state() {
    echo "$(systemctl is-active "$1") $(systemctl show -p ExecMainStatus --value "$1")"
}

journal() {
    journalctl -b --no-pager -o cat "$@" 2>/dev/null
}

# check_web NAME PORT: the unit runs, its ExecStartPre= reached red, the server answers red only.
check_web() {
    local name=$1 port=$2 bad
    bad=$(only_from sred "$port")
    [ "$(cat "$WORK/pre/$name" 2>/dev/null)" = sred ] ||
        bad+="its ExecStartPre= reached \"$(cat "$WORK/pre/$name" 2>/dev/null)\", not red's peer; "
    [ "$(systemctl is-active "$name")" = active ] || bad+="unit $(state "$name"); "
    echo "$bad"
}

verdict() {
    if [ -z "$2" ]; then pass "$1"; else fail "$1" "$2 $(oneline "$(journal -u "${3:-none}" | tail -n 3)")"; fi
}

bpf_programs() {
    python3 tests/vm/bpf_objects.py | awk '{ print $2 }'
}

s_setup() {
    local name=systemd/pid1-and-package deb
    deb=$(ls -t target/vrfexec_*_amd64.deb 2>/dev/null | head -n 1)
    log "PID 1 is $(readlink /proc/1/exe), $(systemctl --version | head -n 1); Linux $(uname -r)"
    if [ -z "$deb" ]; then
        fail "$name" "no target/vrfexec_*.deb (cargo xtask deb)"
        return 1
    fi
    # man-db's trigger would index the host's ~18,000 man pages under TCG (tens of minutes);
    # the guest's overlay root has no use for that index.
    rm -f /var/lib/man-db/auto-update
    if ! dpkg -i "$deb" >"$WORK/dpkg.log" 2>&1; then
        fail "$name" "dpkg -i: $(oneline "$(cat "$WORK/dpkg.log")")"
        return 1
    fi
    log "package installed"
    local running
    running=$(systemctl is-system-running)
    if [ -x /usr/lib/systemd/system-generators/vrfexec-systemd-generator ] &&
        [[ $running == running || $running == degraded ]]; then
        pass "$name"
    else
        fail "$name" "system $running, generator $(ls /usr/lib/systemd/system-generators/)"
        return 1
    fi
}

s_units_conf() {
    local name bad
    log "units.conf (way 2)"
    unit_file vx-web "$PORT_WEB"
    unit_file vx-user "$PORT_USER" "User=nobody"
    unit_file vx-pcg "$PORT_PCG" "ProtectControlGroups=yes
NoNewPrivileges=yes
CapabilityBoundingSet=
PrivateDevices=yes
ProtectSystem=strict
RestrictAddressFamilies=AF_INET AF_INET6"
    # Delegate=yes: systemd runs its control processes (ExecCondition= too) in .control.
    unit_file vx-deleg "$PORT_DELEG" "Delegate=yes"
    unit_file vx-late "$PORT_LATE"
    systemctl enable vx-late.service 2>/dev/null
    printf '%s\n' "vx-web.service red" "vx-user.service red" "vx-pcg.service red" \
        "vx-sock.socket red" "vx-late.service green" "this line is bad" "vx-deleg.service red" >"$CONF"
    systemctl daemon-reload

    # (The package is installed after boot, so this is the daemon-reload run of the generator.)
    name=systemd/bad-line-journaled-and-skipped
    if selected "$name"; then
        bad=""
        journal -t vrfexec-systemd-generator | grep -qxF "$CONF:6: expected 'UNIT VRF'; line skipped" ||
            bad+="no journal line for the bad line: $(oneline "$(journal | grep -F units.conf | tail -n 2)"); "
        systemctl cat vx-web.service 2>/dev/null | grep -qx 'ExecCondition=+/usr/bin/vrfexec attach --condition red' ||
            bad+="vx-web.service has no drop-in; "
        verdict "$name" "$bad"
    fi

    name=systemd/units-conf-tree-in-vrf
    if selected "$name"; then
        systemctl start vx-web.service
        verdict "$name" "$(check_web vx-web "$PORT_WEB")" vx-web
    fi
    name=systemd/units-conf-restart
    if selected "$name"; then
        rm -f "$WORK/pre/vx-web"
        systemctl restart vx-web.service
        verdict "$name" "$(check_web vx-web "$PORT_WEB")" vx-web
    fi
    name=systemd/units-conf-daemon-reload-restart
    if selected "$name"; then
        rm -f "$WORK/pre/vx-web"
        systemctl daemon-reload && systemctl restart vx-web.service
        verdict "$name" "$(check_web vx-web "$PORT_WEB")" vx-web
    fi
    name=systemd/units-conf-stop-leaves-nothing
    if selected "$name"; then
        bad=""
        local cg=/sys/fs/cgroup/system.slice/vx-web.service before
        [ -d "$cg" ] || bad+="no cgroup $cg while running; "
        systemctl stop vx-web.service
        sleep 2
        before=$(bpf_programs)
        systemctl start vx-web.service && listening "$PORT_WEB" || bad+="restart failed; "
        [ "$(bpf_programs)" -eq $((before + 1)) ] || bad+="a start loaded $(($(bpf_programs) - before)) programs, not 1; "
        systemctl stop vx-web.service
        [ -d "$cg" ] && bad+="$cg is left after stop; "
        # The kernel frees a removed cgroup's programs asynchronously.
        local i
        for ((i = 0; i < 50; i++)); do
            [ "$(bpf_programs)" -eq "$before" ] && break
            sleep 0.2
        done
        [ "$(bpf_programs)" -eq "$before" ] || bad+="$(($(bpf_programs) - before)) programs left 10 s after stop; "
        verdict "$name" "$bad" vx-web
    fi
    name=systemd/units-conf-user
    if selected "$name"; then
        systemctl start vx-user.service
        bad=$(check_web vx-user "$PORT_USER")
        local pid
        pid=$(systemctl show -p MainPID --value vx-user.service)
        [ "$(ps -o user= -p "$pid" 2>/dev/null)" = nobody ] || bad+="main process $pid is not nobody's; "
        verdict "$name" "$bad" vx-user
        systemctl stop vx-user.service
    fi
    name=systemd/units-conf-delegate
    if selected "$name"; then
        systemctl start vx-deleg.service
        bad=$(check_web vx-deleg "$PORT_DELEG")
        local cg
        cg=/sys/fs/cgroup$(systemctl show -p ControlGroup --value vx-deleg.service)
        [ -d "$cg/.control" ] || log "note: no $cg/.control after the start (gone once control processes exit, or never made)"
        verdict "$name" "$bad" vx-deleg
        systemctl stop vx-deleg.service
    fi
    name=systemd/units-conf-protect-control-groups
    if selected "$name"; then
        systemctl start vx-pcg.service
        verdict "$name" "$(check_web vx-pcg "$PORT_PCG")" vx-pcg
        systemctl stop vx-pcg.service
    fi
}

s_way1() {
    local name bad
    log "ExecStart=/usr/bin/vrfexec (way 1)"
    cat >"$UNITS/vx-way1.service" <<EOF
[Service]
ExecStart=/usr/bin/vrfexec red /bin/sh -c 'python3 -m http.server --bind 0.0.0.0 --directory $WORK/www $PORT_WAY1 & wait'
EOF
    cat >"$UNITS/vx-way1-user.service" <<EOF
[Service]
ExecStart=/usr/bin/vrfexec --user nobody red /bin/sh -c 'python3 -m http.server --bind 0.0.0.0 --directory $WORK/www $PORT_WAY1_USER & wait'
EOF
    cat >"$UNITS/vx-way1-pcg.service" <<EOF
[Service]
ExecStart=/usr/bin/vrfexec red /bin/sh -c 'python3 -m http.server --bind 0.0.0.0 --directory $WORK/www $PORT_WAY1_PCG & wait'
ProtectControlGroups=yes
EOF
    systemctl daemon-reload
    name=systemd/way1-exec-start
    if selected "$name"; then
        systemctl start vx-way1.service
        bad=$(only_from sred "$PORT_WAY1")
        [ "$(systemctl is-active vx-way1.service)" = active ] || bad+="unit $(state vx-way1.service); "
        verdict "$name" "$bad" vx-way1
        systemctl stop vx-way1.service
    fi
    name=systemd/way1-user
    if selected "$name"; then
        systemctl start vx-way1-user.service
        bad=$(only_from sred "$PORT_WAY1_USER")
        local pids
        pids=$(systemctl show -p ControlGroup --value vx-way1-user.service)
        pids=$(find "/sys/fs/cgroup$pids" -name cgroup.procs -exec cat {} + 2>/dev/null)
        local owner
        owner=$(for p in $pids; do ps -o user= -p "$p"; done | sort -u | tr '\n' ' ')
        [ "$owner" = "nobody " ] || bad+="its processes run as: $owner; "
        verdict "$name" "$bad" vx-way1-user
        systemctl stop vx-way1-user.service
    fi
    name=systemd/way1-protect-control-groups-fails
    if selected "$name"; then
        # Documented: way 1 needs a writable cgroupfs; the unit fails, exit 125, one clear line.
        systemctl start vx-way1-pcg.service 2>/dev/null
        sleep 1
        bad=""
        [ "$(state vx-way1-pcg.service)" = "failed 125" ] || bad+="unit $(state vx-way1-pcg.service), not failed 125; "
        journal -u vx-way1-pcg.service | grep -q '^vrfexec: .*read-only' ||
            bad+="no vrfexec line saying cgroupfs is read-only; "
        ss -Hltn "sport = :$PORT_WAY1_PCG" | grep -q . && bad+="its server runs anyway; "
        verdict "$name" "$bad" vx-way1-pcg
        systemctl reset-failed vx-way1-pcg.service 2>/dev/null
    fi
}

s_socket() {
    local name=systemd/socket-bind-to-device bad=""
    selected "$name" || return
    log "socket activation"
    cat >"$UNITS/vx-sock.socket" <<EOF
[Socket]
ListenStream=$PORT_SOCK
Accept=yes
EOF
    cat >"$UNITS/vx-sock@.service" <<EOF
[Service]
ExecStart=/bin/echo svc
StandardInput=socket
StandardOutput=socket
EOF
    systemctl daemon-reload
    systemctl start vx-sock.socket
    bad=$(only_from sred "$PORT_SOCK" nc)
    ss -Hltn "sport = :$PORT_SOCK" | grep -q '%red:' || bad+="the listening socket is not bound to red: $(oneline "$(ss -Hltn "sport = :$PORT_SOCK")"); "
    verdict "$name" "$bad" vx-sock.socket
    systemctl stop vx-sock.socket
}

s_late() {
    local name bad pid
    log "a VRF that comes and goes"
    name=systemd/vrf-missing-not-started
    if selected "$name"; then
        # green does not exist: a start waits for its device instead of running unbound.
        systemctl start --no-block vx-late.service
        sleep 3
        bad=""
        # Waiting for green's device (BindsTo=, After=), not failed: a failed attach would
        # leave it inactive too.
        systemctl list-jobs --no-legend 2>/dev/null | grep -Eq '[[:space:]]vx-late\.service[[:space:]]+start[[:space:]]+waiting' ||
            bad+="no start job waiting for green: $(oneline "$(systemctl list-jobs --no-legend 2>&1)"); "
        [ "$(systemctl is-active vx-late.service)" = active ] && bad+="it is active without green; "
        ss -Hltn "sport = :$PORT_LATE" | grep -q . && bad+="its server runs; "
        [ -e "$WORK/pre/vx-late" ] && bad+="its ExecStartPre= ran; "
        verdict "$name" "$bad" vx-late
        # Cancel the pending start: what follows is the VRF's device starting the enabled unit.
        systemctl stop vx-late.service
    fi
    name=systemd/starts-when-vrf-appears
    if selected "$name"; then
        [ "$(systemctl is-active vx-late.service)" = active ] && bad="active before green exists; " || bad=""
        vrf_up green 30 s-green || bad+="could not create green; "
        bad+=$(only_from sgreen "$PORT_LATE")
        [ "$(cat "$WORK/pre/vx-late" 2>/dev/null)" = sgreen ] || bad+="its ExecStartPre= reached \"$(cat "$WORK/pre/vx-late" 2>/dev/null)\"; "
        verdict "$name" "$bad" vx-late
    fi
    name=systemd/stops-when-vrf-goes
    if selected "$name"; then
        bad=""
        pid=$(systemctl show -p MainPID --value vx-late.service)
        ip link del green
        local i
        for ((i = 0; i < 50; i++)); do
            [ "$(systemctl is-active vx-late.service)" = active ] || break
            sleep 0.2
        done
        [ "$(systemctl is-active vx-late.service)" = active ] && bad+="still active 10 s after green went; "
        [ "$pid" != 0 ] && kill -0 "$pid" 2>/dev/null && bad+="its main process $pid still runs; "
        verdict "$name" "$bad" vx-late
    fi
    name=systemd/restarts-bound-to-recreated-vrf
    if selected "$name"; then
        bad=""
        rm -f "$WORK/pre/vx-late"
        # A new green has a new ifindex; the unit must come back bound to it.
        vrf_up green 30 s-green || bad+="could not create green again; "
        log "green's ifindex is now $(cat /sys/class/net/green/ifindex)"
        bad+=$(only_from sgreen "$PORT_LATE")
        [ "$(cat "$WORK/pre/vx-late" 2>/dev/null)" = sgreen ] || bad+="its ExecStartPre= reached \"$(cat "$WORK/pre/vx-late" 2>/dev/null)\"; "
        verdict "$name" "$bad" vx-late
    fi
    systemctl stop vx-late.service
    systemctl disable vx-late.service 2>/dev/null
}

main() {
    if ! in_systemd_vm; then
        skip systemd "not in the vrfexec VM with systemd as PID 1 (cargo xtask vm systemd)"
        report_end
    fi
    mkdir -p "$WORK/pre" && chmod 1777 "$WORK/pre"
    trap lab_down EXIT
    if ! lab_up; then
        fail systemd/lab-up "the lab could not be built"
        report_end
    fi
    if s_setup; then
        s_units_conf
        s_way1
        s_socket
        s_late
    fi
    report_end
}

main "$@"
