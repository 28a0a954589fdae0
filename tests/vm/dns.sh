# shellcheck shell=bash
# VM scenarios for names inside a VRF (/etc/vrf/<VRF>/, issue "Names resolve inside a VRF").
# Sourced by suite.sh (rr, via, pass, fail, skip, selected, last_run, LAB_*). Only ever in the
# guest: it rewrites /etc/resolv.conf and makes /etc/vrf.
#
# The trap: /etc/resolv.conf names systemd-resolved's stub 127.0.0.53, which nothing inside a
# VRF reaches. red's peer runs a DNS server (dnsd.py) that knows www.red.lab; red gets
# /etc/vrf/red/resolv.conf naming it. blue has no directory.

DNS_NAME=www.red.lab

# dns_query_count: how many queries red's DNS server has answered.
dns_query_count() {
    wc -l <"$LAB_DIR/dnsd.log"
}

s_dns() {
    local name
    if ! in_vm; then
        skip dns "not in the vrfexec VM (these scenarios rewrite /etc/resolv.conf and make /etc/vrf)"
        return
    fi
    local saved_resolv="$LAB_DIR/resolv.conf.saved"
    cp -P /etc/resolv.conf "$saved_resolv" 2>/dev/null
    rm -f /etc/resolv.conf
    echo "nameserver 127.0.0.53" >/etc/resolv.conf
    mkdir -p /etc/vrf/red
    chmod 755 /etc/vrf /etc/vrf/red
    echo "nameserver $LAB_PEER4" >/etc/vrf/red/resolv.conf
    chmod 644 /etc/vrf/red/resolv.conf
    : >"$LAB_DIR/dnsd.log"
    ip netns exec pred python3 tests/vm/dnsd.py "$DNS_NAME" "$LAB_PEER4" "$LAB_PEER6" "$LAB_DIR/dnsd.log" \
        >"$LAB_DIR/dnsd.err" 2>&1 &
    local dnsd_pid=$! i
    for ((i = 0; i < 50; i++)); do
        ip netns exec pred ss -Hlun "sport = :53" | grep -q . && break
        sleep 0.2
    done

    name=dns/vrf-etc-resolves/vrfexec
    if selected "$name"; then
        local before
        before=$(dns_query_count)
        via vrfexec red "${CURL[@]}" "http://$DNS_NAME/"
        if [ "$R_RC" -eq 0 ] && [ "$R_OUT" = red ] && [ -z "$R_ERR" ] && [ "$(dns_query_count)" -gt "$before" ]; then
            pass "$name"
        else
            fail "$name" "$(last_run); queries $before -> $(dns_query_count)"
        fi
    fi
    name=dns/vrf-etc-resolves/ipvrf
    if selected "$name"; then
        # The reference shows the trap: ip vrf exec keeps /etc/resolv.conf, whose 127.0.0.53
        # the VRF cannot reach.
        via ipvrf red "${CURL[@]}" "http://$DNS_NAME/"
        if [ "$R_RC" -ne 0 ] && [[ $R_ERR == *"resolve"* ]]; then pass "$name"; else fail "$name" "expected a resolution failure, got $(last_run)"; fi
    fi
    name=dns/command-sees-the-vrfs-file
    if selected "$name"; then
        via vrfexec red cat /etc/resolv.conf
        expect_out "$name" "nameserver $LAB_PEER4" quiet
    fi
    name=dns/blue-without-a-directory-is-unchanged
    if selected "$name"; then
        via vrfexec blue cat /etc/resolv.conf
        expect_out "$name" "nameserver 127.0.0.53" quiet
    fi
    name=dns/resolv-conf-symlink
    if selected "$name"; then
        # As with systemd-resolved: /etc/resolv.conf -> /run/.../stub-resolv.conf.
        local stub=/run/vrfexec-dns-test/stub-resolv.conf bad=""
        mkdir -p "${stub%/*}"
        echo "nameserver 127.0.0.53" >"$stub"
        ln -sfn "$stub" /etc/resolv.conf
        via vrfexec red "${CURL[@]}" "http://$DNS_NAME/"
        [ "$R_RC" -eq 0 ] && [ "$R_OUT" = red ] || bad+="curl by name: $(last_run); "
        via vrfexec red cat "$stub"
        [ "$R_OUT" = "nameserver $LAB_PEER4" ] || bad+="the stub file's own path: $(last_run); "
        [ "$(cat "$stub")" = "nameserver 127.0.0.53" ] || bad+="the host's stub file changed; "
        [ "$(readlink /etc/resolv.conf)" = "$stub" ] || bad+="the host's symlink changed; "
        via ipvrf red "${CURL[@]}" "http://$DNS_NAME/"
        [ "$R_RC" -ne 0 ] || bad+="ip vrf exec resolved through the stub: $(last_run); "
        # systemd-resolved rewrites its stub by renaming a new file over it, which removes any
        # mount on the old file; a long-running command must keep the VRF's file.
        (sleep 1 && echo "nameserver 127.0.0.53" >"$stub.new" && mv "$stub.new" "$stub") &
        local renamer=$!
        via vrfexec red sh -c 'sleep 3; cat /etc/resolv.conf'
        wait "$renamer"
        [ "$R_OUT" = "nameserver $LAB_PEER4" ] || bad+="after the stub was replaced: $(last_run); "
        rm -f /etc/resolv.conf "$stub"
        echo "nameserver 127.0.0.53" >/etc/resolv.conf
        if [ -z "$bad" ]; then pass "$name"; else fail "$name" "$bad"; fi
    fi
    name=dns/dangling-symlink-refused
    if selected "$name"; then
        ln -sfn /run/vrfexec-dns-test/missing /etc/resolv.conf
        via vrfexec red true
        local want="vrfexec: cannot use /etc/vrf/red/resolv.conf: /etc/resolv.conf is a symlink to /run/vrfexec-dns-test/missing, which does not exist; make /run/vrfexec-dns-test/missing exist (its service creates it), or remove /etc/vrf/red/resolv.conf"
        if [ "$R_RC" -eq 125 ] && [ "$R_ERR" = "$want" ]; then pass "$name"; else fail "$name" "$(last_run)"; fi
        rm -f /etc/resolv.conf
        echo "nameserver 127.0.0.53" >/etc/resolv.conf
    fi
    name=dns/unsafe-entries-refused
    if selected "$name"; then
        local bad=""
        chmod 666 /etc/vrf/red/resolv.conf
        via vrfexec red true
        [ "$R_RC" -eq 125 ] && [ "$R_ERR" = "vrfexec: unsafe per-VRF configuration /etc/vrf/red/resolv.conf: its mode 0666 lets group or others write it; make it root's and writable by root only (chown root: /etc/vrf/red/resolv.conf; chmod go-w /etc/vrf/red/resolv.conf)" ] || bad+="mode 666: $(last_run); "
        chmod 644 /etc/vrf/red/resolv.conf
        chown nobody /etc/vrf/red/resolv.conf
        via vrfexec red true
        [ "$R_RC" -eq 125 ] && [[ $R_ERR == *"/etc/vrf/red/resolv.conf: it belongs to uid $(id -u nobody), not root"* ]] || bad+="not root's: $(last_run); "
        chown root /etc/vrf/red/resolv.conf
        chmod 777 /etc/vrf/red
        via vrfexec red true
        [ "$R_RC" -eq 125 ] && [[ $R_ERR == *"/etc/vrf/red: its mode 0777"* ]] || bad+="directory 777: $(last_run); "
        chmod 755 /etc/vrf/red
        ln -s /etc/hostname /etc/vrf/red/hostname
        via vrfexec red true
        [ "$R_RC" -eq 125 ] && [[ $R_ERR == "vrfexec: cannot use /etc/vrf/red/hostname: it is a symlink; only regular files are bound over /etc; replace it with a copy of the file" ]] || bad+="symlink entry: $(last_run); "
        rm /etc/vrf/red/hostname
        via vrfexec red cat /etc/resolv.conf
        [ "$R_OUT" = "nameserver $LAB_PEER4" ] || bad+="after repair: $(last_run); "
        if [ -z "$bad" ]; then pass "$name"; else fail "$name" "$bad"; fi
    fi
    name=dns/default-and-dev-directories
    if selected "$name"; then
        # /etc/vrf/default/ is not special, and --dev IFACE uses /etc/vrf/IFACE/.
        local bad=""
        mkdir -p /etc/vrf/default /etc/vrf/r-blue
        printf '127.0.0.1 localhost\n10.9.0.99 only-default.lab\n' >/etc/vrf/default/hosts
        printf '127.0.0.1 localhost\n10.9.0.98 only-dev.lab\n' >/etc/vrf/r-blue/hosts
        rr "$VRFEXEC" default getent hosts only-default.lab
        [[ $R_OUT == "10.9.0.99"* ]] || bad+="default: $(last_run); "
        rr "$VRFEXEC" --dev r-blue getent hosts only-dev.lab
        [[ $R_OUT == "10.9.0.98"* ]] || bad+="--dev: $(last_run); "
        rr getent hosts only-default.lab
        [ "$R_RC" -ne 0 ] || bad+="the host's /etc/hosts changed; "
        rm -r /etc/vrf/default /etc/vrf/r-blue
        if [ -z "$bad" ]; then pass "$name"; else fail "$name" "$bad"; fi
    fi
    name=dns/show-lists-the-files
    if selected "$name"; then
        local bad=""
        rr "$VRFEXEC" show red
        [[ $R_OUT == *"/etc/vrf/red/: resolv.conf"* ]] || bad+="text: $(last_run); "
        rr "$VRFEXEC" show --json
        python3 -c 'import json,sys
d={v["name"]: v for v in json.loads(sys.argv[1])}
sys.exit(0 if d["red"]["etc"] == ["resolv.conf"] and d["blue"]["etc"] == [] else 1)' "$R_OUT" || bad+="json: $(oneline "$R_OUT"); "
        if [ -z "$bad" ]; then pass "$name"; else fail "$name" "$bad"; fi
    fi
    name=dns/no-mount-leaks-and-nothing-left-after-100-runs
    if selected "$name"; then
        # nsenter joins only r's network namespace: the runs share this shell's mount
        # namespace, so a mount that leaked back would show in its mountinfo.
        local mounts_before cgroups_before i bad=""
        nsenter --net=/run/netns/r "$VRFEXEC" red true
        mounts_before=$(cat /proc/self/mountinfo)
        cgroups_before=$(cgroup_dirs)
        for ((i = 0; i < 100; i++)); do
            nsenter --net=/run/netns/r "$VRFEXEC" red cat /etc/resolv.conf >"$LAB_DIR/dns-run.out" 2>&1 || bad="run $i failed: $(oneline "$(cat "$LAB_DIR/dns-run.out")"); "
        done
        [ "$(cat "$LAB_DIR/dns-run.out")" = "nameserver $LAB_PEER4" ] || bad+="last run saw $(oneline "$(cat "$LAB_DIR/dns-run.out")"); "
        [ "$mounts_before" = "$(cat /proc/self/mountinfo)" ] || bad+="the mount table changed: $(diff <(echo "$mounts_before") /proc/self/mountinfo | oneline "$(cat)"); "
        [ "$cgroups_before" = "$(cgroup_dirs)" ] || bad+="cgroups changed; "
        [ "$(cat /etc/resolv.conf)" = "nameserver 127.0.0.53" ] || bad+="the host's resolv.conf changed; "
        if [ -z "$bad" ]; then pass "$name"; else fail "$name" "$bad"; fi
    fi
    name=dns/check-suggests-and-then-accepts-the-vrf-file
    if selected "$name"; then
        local bad=""
        mv /etc/vrf/red/resolv.conf "$LAB_DIR/red-resolv.conf"
        rr "$VRFEXEC" check --json
        check_has dns-unreachable red || bad+="no finding for red without its file; "
        python3 -c 'import json,sys
d=json.loads(sys.argv[1])
f=[f for f in d["findings"] if f["id"]=="dns-unreachable" and f.get("vrf")=="red"]
sys.exit(0 if f and any("/etc/vrf/red/resolv.conf" in c for c in f[0]["fix"]) else 1)' "$R_OUT" || bad+="the fix does not name /etc/vrf/red/resolv.conf; "
        mv "$LAB_DIR/red-resolv.conf" /etc/vrf/red/resolv.conf
        rr "$VRFEXEC" check --json
        check_has dns-unreachable red && bad+="red still flagged with a server it reaches: $(oneline "$R_OUT"); "
        check_has dns-unreachable blue || bad+="blue (no file) not flagged; "
        # A server in red's own file that red does not reach is named with that file.
        echo "nameserver 192.0.2.53" >/etc/vrf/red/resolv.conf
        rr "$VRFEXEC" check red --json
        [[ $R_OUT == *'"/etc/vrf/red/resolv.conf names 192.0.2.53'* ]] || bad+="unreachable own server: $(oneline "$R_OUT"); "
        echo "nameserver $LAB_PEER4" >/etc/vrf/red/resolv.conf
        if [ -z "$bad" ]; then pass "$name"; else fail "$name" "$bad"; fi
    fi
    name=dns/policy-mode-mounts-and-the-user-cannot-undo-them
    if selected "$name"; then
        # The capable install of security.sh, for alice allowed red: the mounts are made with
        # CAP_SYS_ADMIN raised, before the drop, and the command cannot remove them.
        local bad=""
        capped_install "allow user alice vrf red"
        as alice "$CAPPED" red "${CURL[@]}" "http://$DNS_NAME/"
        [ "$R_RC" -eq 0 ] && [ "$R_OUT" = red ] || bad+="alice by name: $(last_run); "
        as alice "$CAPPED" red sh -c 'umount /etc/resolv.conf; umount -l /etc/resolv.conf; cat /etc/resolv.conf'
        [ "$R_OUT" = "nameserver $LAB_PEER4" ] || bad+="alice undid the mount: $(last_run); "
        # alice cannot give herself another VRF's files.
        as alice mkdir /etc/vrf/blue
        [ "$R_RC" -ne 0 ] && [ ! -e /etc/vrf/blue ] || bad+="alice made /etc/vrf/blue; "
        capped_remove
        if [ -z "$bad" ]; then pass "$name"; else fail "$name" "$bad"; fi
    fi
    name=dns/generator-binds-the-vrf-files
    if selected "$name"; then
        local gen="$LAB_DIR/dns-generator" units="$LAB_DIR/dns-units" bad=""
        mkdir -p "$gen" "$units"
        printf 'dnsdemo.service red\nbluedemo.service blue\n' >"$LAB_DIR/dns-units.conf"
        VRFEXEC_UNITS_CONF="$LAB_DIR/dns-units.conf" sh packaging/vrfexec-systemd-generator "$gen" "$gen" "$gen" 2>"$LAB_DIR/dns-gen.err"
        grep -qx 'BindReadOnlyPaths=/etc/vrf/red/resolv.conf:/etc/resolv.conf' "$gen/dnsdemo.service.d/50-vrfexec.conf" || bad+="no BindReadOnlyPaths= for red: $(oneline "$(cat "$gen/dnsdemo.service.d/50-vrfexec.conf")"); "
        grep -q BindReadOnlyPaths "$gen/bluedemo.service.d/50-vrfexec.conf" && bad+="blue has no directory but got BindReadOnlyPaths=; "
        printf '[Unit]\nDescription=vrfexec DNS generator test\n[Service]\nExecStart=/usr/bin/sleep 60\n' >"$units/dnsdemo.service"
        cp -r "$gen/dnsdemo.service.d" "$units/"
        # verify wants the drop-in's /usr/bin/vrfexec to exist (the package is purged by now).
        local placed=""
        if [ ! -e /usr/bin/vrfexec ]; then
            install -m 755 "$VRFEXEC" /usr/bin/vrfexec && placed=yes
        fi
        if ! SYSTEMD_LOG_LEVEL=err systemd-analyze verify --man=no "$units/dnsdemo.service" >"$LAB_DIR/dns-verify.log" 2>&1; then
            bad+="systemd-analyze verify: $(oneline "$(cat "$LAB_DIR/dns-verify.log")"); "
        fi
        [ -n "$placed" ] && rm -f /usr/bin/vrfexec
        if [ -z "$bad" ]; then pass "$name"; else fail "$name" "$bad"; fi
    fi

    kill "$dnsd_pid" 2>/dev/null
    wait "$dnsd_pid" 2>/dev/null
    rm -rf /etc/vrf
    rm -f /etc/resolv.conf
    cp -P "$saved_resolv" /etc/resolv.conf 2>/dev/null
}
