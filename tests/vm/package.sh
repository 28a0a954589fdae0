# shellcheck shell=bash
# VM scenarios for the Debian package built by `cargo xtask deb` (cargo xtask test builds it
# before the suite): install, smoke, both builds, man pages, completions, the systemd generator and
# `attach`, and removal. Sourced by suite.sh. Only in the guest: it runs dpkg.

s_package() {
    local name deb
    deb=$(ls -t target/vrfexec_*_amd64.deb 2>/dev/null | head -n 1)
    if ! in_vm; then
        skip package "not in the vrfexec VM (these scenarios install a package)"
        return
    fi
    if [ -z "$deb" ]; then
        skip package "no target/vrfexec_*.deb: run cargo xtask deb first (cargo xtask test does)"
        return
    fi
    # Every scenario here needs the installed package: none selected, nothing installed.
    selected pkg/installs || return
    name=pkg/installs
    # man-db's trigger would index the host's ~18,000 man pages under TCG (tens of minutes,
    # the "hang" seen on 5.10); the guest's overlay root has no use for that index.
    rm -f /var/lib/man-db/auto-update
    if dpkg -i "$deb" >"$LAB_DIR/dpkg.log" 2>&1; then pass "$name"; else fail "$name" "$(oneline "$(cat "$LAB_DIR/dpkg.log")")"; fi

    name=pkg/smoke
    if selected "$name"; then
        rr /usr/bin/vrfexec red "${CURL[@]}" "$URL4"
        expect_out "$name" red quiet
    fi
    # Both builds: the static /usr/bin/vrfexec and the full build it hands the rest to.
    name=pkg/both-builds
    if selected "$name"; then
        local bad=""
        [ -z "$(interp /usr/bin/vrfexec)" ] || bad+="/usr/bin/vrfexec is not static; "
        [ -n "$(interp /usr/lib/vrfexec/vrfexec-full)" ] || bad+="/usr/lib/vrfexec/vrfexec-full is missing or static; "
        rr /usr/bin/vrfexec route red "$LAB_PEER4"
        [ "$R_RC" -eq 0 ] && [[ $R_OUT == *"$LAB_PEER4"* ]] || bad+="route via the full build: $(last_run); "
        if [ -z "$bad" ]; then pass "$name"; else fail "$name" "$bad"; fi
    fi
    name=pkg/man-pages-render
    if selected "$name"; then
        local page bad=""
        for page in /usr/share/man/man1/vrfexec.1.gz /usr/share/man/man1/vrfexec-exec.1.gz /usr/share/man/man1/vrfexec-check.1.gz; do
            MANWIDTH=80 man -l "$page" 2>"$LAB_DIR/man.err" | grep -q "SYNOPSIS" || bad+="$page: $(oneline "$(cat "$LAB_DIR/man.err")"); "
        done
        if [ -z "$bad" ]; then pass "$name"; else fail "$name" "$bad"; fi
    fi
    name=pkg/bash-completion-loads
    if selected "$name"; then
        local out
        out=$(bash -c 'source /usr/share/bash-completion/completions/vrfexec && complete -p vrfexec' 2>&1)
        if [[ $out == *"-F _vrfexec vrfexec"* ]]; then pass "$name"; else fail "$name" "$(oneline "$out")"; fi
    fi
    name=pkg/generator-and-verify
    if selected "$name"; then
        local gen="$LAB_DIR/generator" units="$LAB_DIR/units"
        mkdir -p "$gen" "$units"
        printf '# test\ndemo.service red\ndemo.socket red\nbad line here\nnot-a-service.timer red\nother.service ../x\nt@.service red\n' >/etc/vrfexec/units.conf
        /usr/lib/systemd/system-generators/vrfexec-systemd-generator "$gen" "$gen" "$gen" 2>"$LAB_DIR/gen.err"
        local dropin="$gen/demo.service.d/50-vrfexec.conf" bad=""
        grep -qx 'ExecCondition=+/usr/bin/vrfexec attach --condition red' "$dropin" 2>/dev/null || bad+="no ExecCondition= for demo.service; "
        grep -qx 'BindsTo=sys-subsystem-net-devices-red.device' "$dropin" 2>/dev/null || bad+="no BindsTo= for demo.service; "
        grep -qx 'BindToDevice=red' "$gen/demo.socket.d/50-vrfexec.conf" 2>/dev/null || bad+="no BindToDevice= for demo.socket; "
        [ "$(find "$gen" -name '*.conf' | wc -l)" -eq 2 ] || bad+="bad lines produced drop-ins: $(find "$gen" -name '*.conf' | tr '\n' ' '); "
        # Neither unit is enabled: nothing starts them when red appears.
        [ ! -e "$gen/sys-subsystem-net-devices-red.device.wants" ] || bad+="disabled units are wanted by red's device; "
        [ "$(grep -c 'line skipped' "$LAB_DIR/gen.err")" -eq 4 ] || bad+="expected 4 skipped lines: $(oneline "$(cat "$LAB_DIR/gen.err")"); "
        printf '[Unit]\nDescription=vrfexec generator test\n[Service]\nExecStart=/usr/bin/sleep 60\nProtectControlGroups=yes\n' >"$units/demo.service"
        cp -r "$gen/demo.service.d" "$units/"
        if ! SYSTEMD_LOG_LEVEL=err systemd-analyze verify --man=no "$units/demo.service" >"$LAB_DIR/verify.log" 2>&1; then
            bad+="systemd-analyze verify: $(oneline "$(cat "$LAB_DIR/verify.log")"); "
        fi
        if [ -z "$bad" ]; then pass "$name"; else fail "$name" "$bad"; fi
    fi
    name=pkg/attach-binds-a-unit-cgroup
    if selected "$name"; then
        # A unit's cgroup, as systemd would make it; its processes are bound by attach.
        local cg=/sys/fs/cgroup/vrfexec-demo.service out
        mkdir -p "$cg"
        out=$(bash -c 'echo $$ >"$0/cgroup.procs" && exec ip netns exec r bash -c "/usr/bin/vrfexec attach red && curl -s --max-time 20 http://10.9.0.2/"' "$cg" 2>&1)
        local root_out
        root_out=$(ip netns exec r /usr/bin/vrfexec attach red 2>&1)
        local root_rc=$?
        if [ "$out" != red ]; then
            fail "$name" "a process in the attached cgroup got \"$(oneline "$out")\""
        elif [ "$root_rc" -ne 125 ] || [[ $root_out != *"root cgroup"* ]]; then
            fail "$name" "attach in the root cgroup: exit $root_rc, $(oneline "$root_out")"
        else
            pass "$name"
        fi
        rmdir "$cg" 2>/dev/null
    fi
    name=pkg/purge-leaves-nothing
    if selected "$name"; then
        local files left=""
        files=$(dpkg -L vrfexec | while read -r f; do [ -d "$f" ] || echo "$f"; done)
        dpkg --purge vrfexec >"$LAB_DIR/purge.log" 2>&1
        for f in $files /etc/vrfexec.conf /etc/vrfexec/units.conf; do
            [ -e "$f" ] && left+="$f "
        done
        if [ -z "$left" ] && ! dpkg -s vrfexec >/dev/null 2>&1; then pass "$name"; else fail "$name" "left behind: $left"; fi
    fi
}
