# shellcheck shell=bash
# How the VM scenario scripts (suite.sh, systemd.sh) report, for the host to read: one line per
# scenario, PASS <name> | FAIL <name>: <reason> | SKIP <name>: <reason>; lines starting with '#'
# are commentary; the last line is exactly `vm: N passed, N failed, N skipped` (report_end).

# Optional: only run scenarios whose name matches this extended regex (debugging).
ONLY=${ONLY:-}
PASSED=0
FAILED=0
SKIPPED=0

pass() {
    echo "PASS $1"
    PASSED=$((PASSED + 1))
}

fail() {
    echo "FAIL $1: $2"
    FAILED=$((FAILED + 1))
}

skip() {
    echo "SKIP $1: $2"
    SKIPPED=$((SKIPPED + 1))
}

# selected NAME: whether ONLY lets scenario NAME run.
selected() {
    [ -z "$ONLY" ] || [[ $1 =~ $ONLY ]]
}

oneline() {
    printf '%s' "$1" | tr '\n\t' '  ' | cut -c1-200
}

# report_end: the summary line; exit status non-zero if anything failed or nothing passed.
report_end() {
    echo "vm: $PASSED passed, $FAILED failed, $SKIPPED skipped"
    if [ "$FAILED" -ne 0 ] || [ "$PASSED" -eq 0 ]; then
        exit 1
    fi
    exit 0
}
