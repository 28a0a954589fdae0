# shellcheck shell=bash
# The VRF lab, a bash library sourced in the VM guest (never on the host: it creates VRFs,
# veths and namespaces). Three network namespaces act as hosts:
#
#   pred (eth0 10.9.0.2/24 fd00:9::2/64) --- r-red  [VRF red,  table 10] \
#                                                                         r (router)
#   pblue(eth0 10.9.0.2/24 fd00:9::2/64) --- r-blue [VRF blue, table 20] /
#
# Both router-side interfaces have the SAME addresses, 10.9.0.1/24 and fd00:9::1/64, so only the
# VRF decides which peer a connection from r reaches. r's main table has no route to 10.9.0.0/24
# (the connected routes live in the VRF tables), and each VRF table ends in an unreachable
# default so nothing falls through to the main table.
#
# Each peer serves, on IPv4 and IPv6:
#   - HTTP on port 80 (python3 http.server): / says "red" or "blue"; only pred also serves a tiny
#     flat apt repository at /apt/ (package vrfexec-lab-red);
#   - a UDP echo on port 7777 (socat) that answers "red" or "blue" to any datagram;
#   - ICMP echo (the kernel).
#
# Use: lab_up (idempotent teardown first), lab_down; lab_up installs an EXIT trap for lab_down.

LAB_DIR=${LAB_DIR:-/tmp/vrfexec-lab}
LAB_PEER4=10.9.0.2
LAB_PEER6=fd00:9::2
LAB_ROUTER4=10.9.0.1
LAB_ROUTER6=fd00:9::1
LAB_HTTP_PORT=80
LAB_UDP_PORT=7777
LAB_NAMESPACES=(r pred pblue)
# The metric the kernel's VRF documentation uses for the unreachable default.
LAB_UNREACHABLE_METRIC=4278198272

lab_log() {
    echo "# lab: $*" >&2
}

# lab_vrf NAME TABLE: (re)create VRF device NAME in r with its unreachable defaults.
lab_vrf() {
    local name=$1 table=$2
    ip -n r link add "$name" type vrf table "$table"
    ip -n r link set "$name" up
    ip -n r -4 route replace table "$table" unreachable default metric "$LAB_UNREACHABLE_METRIC"
    ip -n r -6 route replace table "$table" unreachable default metric "$LAB_UNREACHABLE_METRIC"
}

# lab_attach VRF DEV: put r's DEV into VRF and give it the router addresses. Enslaving cycles the
# device, which drops IPv6 addresses, so the addresses are (re)added afterwards.
lab_attach() {
    local vrf=$1 dev=$2
    ip -n r link set "$dev" master "$vrf"
    ip -n r link set "$dev" up
    ip -n r addr replace "$LAB_ROUTER4/24" dev "$dev"
    ip -n r addr replace "$LAB_ROUTER6/64" dev "$dev" nodad
}

# lab_peer COLOR: the peer namespace pCOLOR with its address and servers.
lab_peer() {
    local color=$1 ns=p$1
    local www="$LAB_DIR/$color/www"
    mkdir -p "$www"
    echo "$color" >"$www/index.html"
    ip -n "$ns" link set eth0 up
    ip -n "$ns" addr add "$LAB_PEER4/24" dev eth0
    ip -n "$ns" addr add "$LAB_PEER6/64" dev eth0 nodad
    ip -n "$ns" -4 route add default via "$LAB_ROUTER4"
    ip -n "$ns" -6 route add default via "$LAB_ROUTER6"
    if [ "$color" = red ]; then
        lab_apt_repo "$www/apt"
    fi
    # http.server binds "::" dual-stack (IPv4 too).
    ip netns exec "$ns" python3 -m http.server --bind :: --directory "$www" "$LAB_HTTP_PORT" \
        >"$LAB_DIR/$color/http.log" 2>&1 &
    # One child per datagram answers COLOR, then an empty datagram (shut-null) so a client
    # using null-eof stops at once instead of waiting for its timeout.
    ip netns exec "$ns" socat "UDP6-RECVFROM:$LAB_UDP_PORT,ipv6only=0,reuseaddr,fork,shut-null" \
        "SYSTEM:echo $color" >"$LAB_DIR/$color/udp.log" 2>&1 &
}

# lab_apt_repo DIR: a flat apt repository (Packages + Release with hashes, no signature: the
# client uses [trusted=yes]) with one package stanza. Hand-written, so apt-utils is not needed.
lab_apt_repo() {
    local dir=$1
    mkdir -p "$dir"
    cat >"$dir/Packages" <<'EOF'
Package: vrfexec-lab-red
Version: 1.0
Architecture: all
Maintainer: vrfexec lab <lab@example.invalid>
Installed-Size: 1
Filename: vrfexec-lab-red_1.0_all.deb
Size: 1
SHA256: 0000000000000000000000000000000000000000000000000000000000000000
Description: marker package served only in VRF red

EOF
    gzip -9kn "$dir/Packages"
    local f
    {
        echo "Origin: vrfexec-lab"
        echo "Label: vrfexec-lab"
        echo "Suite: lab"
        echo "Codename: lab"
        echo "Date: $(LC_ALL=C date -u -R)"
        echo "Architectures: all amd64"
        echo "Description: vrfexec lab repository (red only)"
        echo "SHA256:"
        for f in Packages Packages.gz; do
            printf ' %s %s %s\n' "$(sha256sum "$dir/$f" | cut -d' ' -f1)" \
                "$(stat -c %s "$dir/$f")" "$f"
        done
    } >"$dir/Release"
}

# lab_wait_servers: until both peers answer HTTP and UDP from inside their own namespace.
lab_wait_servers() {
    local color i
    for color in red blue; do
        for ((i = 0; i < 150; i++)); do
            if ip netns exec "p$color" ss -Hltn "sport = :$LAB_HTTP_PORT" | grep -q . &&
                ip netns exec "p$color" ss -Hlun "sport = :$LAB_UDP_PORT" | grep -q .; then
                break
            fi
            sleep 0.2
        done
        if ((i == 150)); then
            lab_log "servers in p$color did not start"
            return 1
        fi
    done
}

lab_up() {
    lab_down
    trap lab_down EXIT
    mkdir -p "$LAB_DIR"
    modprobe vrf
    modprobe veth
    local ns
    for ns in "${LAB_NAMESPACES[@]}"; do
        ip netns add "$ns"
        ip -n "$ns" link set lo up
    done
    lab_vrf red 10
    lab_vrf blue 20
    ip -n r link add r-red type veth peer name eth0 netns pred
    ip -n r link add r-blue type veth peer name eth0 netns pblue
    lab_attach red r-red
    lab_attach blue r-blue
    lab_peer red
    lab_peer blue
    lab_wait_servers
    lab_log "up: r has VRFs red (table 10) and blue (table 20); both peers are $LAB_PEER4 / $LAB_PEER6"
}

lab_down() {
    local ns pid
    for ns in "${LAB_NAMESPACES[@]}"; do
        if [ -e "/run/netns/$ns" ]; then
            for pid in $(ip netns pids "$ns" 2>/dev/null); do
                kill "$pid" 2>/dev/null || true
            done
        fi
    done
    for ns in "${LAB_NAMESPACES[@]}"; do
        if [ -e "/run/netns/$ns" ]; then
            ip netns del "$ns" 2>/dev/null || true
        fi
    done
    rm -rf "$LAB_DIR"
}

# lab_in_r CMD...: run CMD in the router namespace.
lab_in_r() {
    ip netns exec r "$@"
}
