# shellcheck shell=bash
# VM scenarios for vrfexec's two builds (vrfexec/src/run/launcher.rs): the static PREFIX/bin/vrfexec
# serves a root caller's short form itself and hands everything else, unchanged, to the dynamic
# PREFIX/lib/vrfexec/vrfexec-full. Sourced by suite.sh (rr, pass, fail, skip, selected, ...).
# Only in the guest: it adds users and a capable copy of the static build.

# interp FILE: the ELF program interpreter FILE asks for, empty for a static program.
interp() {
    readelf -lW "$1" 2>/dev/null | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p'
}

s_builds() {
    local name dir before created
    if ! in_vm; then
        skip builds "not in the vrfexec VM (these scenarios add users and a capable binary)"
        return
    fi
    name=builds/static-and-dynamic
    if selected "$name"; then
        if ! command -v readelf >/dev/null; then
            skip "$name" "readelf (binutils) is not installed"
        elif [ -n "$(interp "$VRFEXEC")" ]; then
            fail "$name" "$VRFEXEC asks for $(interp "$VRFEXEC"): it is not the static build"
        elif [ -z "$(interp "$VRFEXEC_FULL")" ]; then
            fail "$name" "$VRFEXEC_FULL is missing or not dynamically linked"
        else
            pass "$name"
        fi
    fi

    # The static build alone, without the full build beside it: the short form works (served
    # in process), and what it hands over fails with a clear, vrfexec-own error.
    dir=$LAB_DIR/alone
    install -D -m 755 "$VRFEXEC" "$dir/bin/vrfexec"
    name=builds/static-serves-root-short-form
    if selected "$name"; then
        rr "$dir/bin/vrfexec" red "${CURL[@]}" "$URL4"
        expect_out "$name" red quiet
    fi
    name=builds/static-serves-exec-dev-and-strict
    if selected "$name"; then
        local bad=""
        rr "$dir/bin/vrfexec" exec blue "${CURL[@]}" "$URL4"
        [ "$R_RC" -eq 0 ] && [ "$R_OUT" = blue ] && [ -z "$R_ERR" ] || bad+="exec: $(last_run); "
        rr "$dir/bin/vrfexec" --dev r-blue "${CURL[@]}" "$URL4"
        [ "$R_RC" -eq 0 ] && [ "$R_OUT" = blue ] && [ -z "$R_ERR" ] || bad+="--dev: $(last_run); "
        rr "$dir/bin/vrfexec" -v --strict red "${CURL[@]}" "$URL4"
        [ "$R_RC" -eq 0 ] && [ "$R_OUT" = red ] && [[ $R_ERR == *"vrfexec: binding: red ifindex"* ]] || bad+="-v --strict: $(last_run); "
        if [ -z "$bad" ]; then pass "$name"; else fail "$name" "$bad"; fi
    fi
    name=builds/hand-over-needs-the-full-build
    if selected "$name"; then
        local bad=""
        for args in "--user root red true" "show" "--version" "route red $LAB_PEER4"; do
            # shellcheck disable=SC2086 # word splitting intended
            rr "$dir/bin/vrfexec" $args
            if [ "$R_RC" -ne 125 ] || [ "$R_ERR" != "vrfexec: cannot run $dir/lib/vrfexec/vrfexec-full: No such file or directory; vrfexec is installed incompletely, reinstall it" ]; then
                bad+="$args: $(last_run); "
            fi
        done
        if [ -z "$bad" ]; then pass "$name"; else fail "$name" "$bad"; fi
    fi
    rm -rf "$dir"

    # Through the hand-over, the command still gets the caller's argv, environment, fds and
    # exit status (here via --user, which the full build serves).
    name=builds/hand-over-passes-everything
    if selected "$name"; then
        R_OUT=$(timeout -k 5 "$CMD_TIMEOUT" ip netns exec r env VRFEXEC_TEST=kept "$VRFEXEC" --user root red \
            sh -c 'echo "$VRFEXEC_TEST $(cat <&3) $1"; curl -sS --max-time 20 "$2"; exit 7' sh 'two words' "$URL4" \
            3< <(echo fd3) 2>"$LAB_DIR/rr.stderr" </dev/null)
        R_RC=$?
        R_ERR=$(cat "$LAB_DIR/rr.stderr")
        if [ "$R_RC" -eq 7 ] && [ "$R_OUT" = "$(printf 'kept fd3 two words\nred')" ] && [ -z "$R_ERR" ]; then
            pass "$name"
        else
            fail "$name" "$(last_run)"
        fi
    fi

    # File capabilities on the static build: it cannot do policy mode (no NSS), so it must
    # refuse a non-root caller, point to the full build, and create nothing.
    name=builds/capable-static-build-refuses
    if selected "$name"; then
        ensure_users
        dir=/opt/vrfexec-capped-static
        install -D -m 755 "$VRFEXEC" "$dir/bin/vrfexec"
        setcap "$SETCAP_CAPS" "$dir/bin/vrfexec"
        before=$(cgroup_dirs)
        as alice "$dir/bin/vrfexec" red true
        created=$(comm -13 <(echo "$before") <(cgroup_dirs) | tr '\n' ' ')
        if [ "$R_RC" -ne 125 ] || [ "$R_ERR" != "vrfexec: policy mode is not available in $dir/bin/vrfexec: this static build cannot look users and groups up; remove its file capabilities and give them to $dir/lib/vrfexec/vrfexec-full instead" ]; then
            fail "$name" "$(last_run)"
        elif [ -n "$created" ]; then
            fail "$name" "the refused run created cgroups: $created"
        else
            pass "$name"
        fi
        rm -rf "$dir"
    fi
}
