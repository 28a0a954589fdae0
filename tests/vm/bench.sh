#!/bin/bash
# The benchmark, run in the VM guest by `cargo xtask bench` (never on a host: it builds the
# lab). Everything is measured side by side in one boot, so only the ratios matter (TCG is
# slow, and slow in its own way). Prints a Markdown table and the ratios against the targets:
#   warm overhead <= 0.8 x ip vrf exec's, cold <= 1.0 x; socket rate >= 0.95 x bare;
#   kernel objects flat after 1000 runs.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 2
# shellcheck source=tests/vm/lab.sh
source tests/vm/lab.sh
# vrfexec as installed (cargo xtask bench stages the release builds): the static bin/vrfexec,
# and the dynamic lib/vrfexec/vrfexec-full it hands other work to, measured alone as well.
VRFEXEC=${VRFEXEC:-$PWD/target/stage/release/bin/vrfexec}
FULL=$(dirname "$(dirname "$VRFEXEC")")/lib/vrfexec/vrfexec-full
[ -x "$VRFEXEC" ] && [ -x "$FULL" ] || { echo "bench: $VRFEXEC or $FULL is missing (cargo xtask bench stages them)"; exit 1; }
RUNS=${RUNS:-200}
SOCKETS=${SOCKETS:-100000}
OBJECT_RUNS=${OBJECT_RUNS:-1000}

lab_up >/dev/null 2>&1 || { echo "bench: the lab could not be built"; exit 1; }
echo "# vrfexec benchmark on Linux $(uname -r) (qemu TCG); $VRFEXEC; $RUNS runs per variant"
# The peers' servers (python3) start in the background: let them finish starting first.
sleep "${SETTLE:-30}"

# Every measurement runs in r's network namespace, entered with nsenter --net only, so the
# mount namespace stays the machine's and cgroup2 is at /sys/fs/cgroup, as on a router whose
# VRFs are in its main namespace. (`ip netns exec` remounts /sys and hides cgroup2: vrfexec then
# makes a private mount on every run and iproute2 mounts one at /var/run/cgroup2 once; that is
# a different, rarer case.)
in_r() { nsenter --net=/run/netns/r "$@"; }
cat >"$LAB_DIR/inner.sh" <<'INNER'
set -u
VRFEXEC=$1 RUNS=$2 OUT=$3 FULL=$4
us() { local t=${EPOCHREALTIME/./}; echo "${t#0}"; }
: >"$OUT"
for ((i = 0; i < RUNS; i++)); do
    t0=$(us); /bin/true; t1=$(us)
    echo "bare $((t1 - t0))" >>"$OUT"
    t0=$(us); ip vrf exec blue /bin/true; t1=$(us)
    echo "ipvrf $((t1 - t0))" >>"$OUT"
    # Cold: gc removes red's idle cgroup and its program (not timed).
    "$VRFEXEC" gc
    t0=$(us); "$VRFEXEC" red /bin/true; t1=$(us)
    echo "cold $((t1 - t0))" >>"$OUT"
    t0=$(us); "$VRFEXEC" red /bin/true; t1=$(us)
    echo "warm $((t1 - t0))" >>"$OUT"
    t0=$(us); "$FULL" red /bin/true; t1=$(us)
    echo "full $((t1 - t0))" >>"$OUT"
done
INNER
in_r bash "$LAB_DIR/inner.sh" "$VRFEXEC" "$RUNS" "$LAB_DIR/times" "$FULL"

# stats VARIANT: "median p10 p90" in ms.
stats() {
    awk -v v="$1" '$1 == v { print $2 }' "$LAB_DIR/times" | sort -n | awk '
        { a[NR] = $1 } END { printf "%.1f %.1f %.1f", a[int(NR/2)+1]/1000, a[int(NR*0.1)+1]/1000, a[int(NR*0.9)]/1000 }'
}
read -r bare_m bare_lo bare_hi <<<"$(stats bare)"
echo
echo "| variant | median ms | p10-p90 ms | overhead over bare ms |"
echo "|---|---|---|---|"
declare -A OVER
for v in bare ipvrf cold warm full; do
    read -r m lo hi <<<"$(stats "$v")"
    OVER[$v]=$(awk -v m="$m" -v b="$bare_m" 'BEGIN { printf "%.1f", m - b }')
    label=$v
    case $v in
        bare) label="bare exec (/bin/true)" ;;
        ipvrf) label="ip vrf exec" ;;
        cold) label="vrfexec, cold (load + attach)" ;;
        warm) label="vrfexec, warm (join only)" ;;
        full) label="vrfexec-full alone, warm (the dynamic build; for comparison)" ;;
    esac
    echo "| $label | $m | $lo-$hi | ${OVER[$v]} |"
done

# Socket creation: SOCKETS UDP sockets created and closed by a small C loop, bare, inside
# vrfexec and inside `ip vrf exec` (the same kind of program: a reference), in ROUNDS
# alternating rounds; the medians are compared. Under TCG one round of the same loop can vary
# by a third, so a single or best-of-few figure is not a measurement.
gcc -O2 -o "$LAB_DIR/sockloop" tests/vm/sockloop.c || { echo "bench: cannot build the socket loop"; exit 1; }
SOCKET_ROUNDS=${SOCKET_ROUNDS:-9}
: >"$LAB_DIR/sockets"
for ((round = 0; round < SOCKET_ROUNDS; round++)); do
    echo "bare $(in_r "$LAB_DIR/sockloop" "$SOCKETS")" >>"$LAB_DIR/sockets"
    echo "vrfexec $(in_r "$VRFEXEC" red "$LAB_DIR/sockloop" "$SOCKETS")" >>"$LAB_DIR/sockets"
    echo "ipvrf $(in_r ip vrf exec blue "$LAB_DIR/sockloop" "$SOCKETS")" >>"$LAB_DIR/sockets"
done
# sock_stats VARIANT: the median rate, and the lowest and highest.
sock_stats() {
    awk -v v="$1" '$1 == v { print $2 }' "$LAB_DIR/sockets" | sort -n | awk '
        { a[NR] = $1 } END { printf "%.0f %.0f %.0f", a[int((NR+1)/2)], a[1], a[NR] }'
}
read -r sock_bare sock_bare_lo sock_bare_hi <<<"$(sock_stats bare)"
read -r sock_vrf sock_vrf_lo sock_vrf_hi <<<"$(sock_stats vrfexec)"
read -r sock_ip sock_ip_lo sock_ip_hi <<<"$(sock_stats ipvrf)"
echo
echo "| socket creation ($SOCKETS UDP sockets, $SOCKET_ROUNDS rounds) | median sockets/s | min-max |"
echo "|---|---|---|"
echo "| bare | $sock_bare | $sock_bare_lo-$sock_bare_hi |"
echo "| inside vrfexec red | $sock_vrf | $sock_vrf_lo-$sock_vrf_hi |"
echo "| inside ip vrf exec blue (reference) | $sock_ip | $sock_ip_lo-$sock_ip_hi |"

# Kernel objects: programs and links, and cgroup directories, before and after OBJECT_RUNS runs
# alternating VRFs (cold and warm).
count_objects() {
    echo "$(python3 tests/vm/bpf_objects.py) cgroups $(find /sys/fs/cgroup -type d | wc -l)"
}
in_r "$VRFEXEC" red /bin/true
in_r "$VRFEXEC" blue /bin/true
before=$(count_objects)
in_r bash -c 'for ((i = 0; i < '"$OBJECT_RUNS"' / 2; i++)); do "$0" red /bin/true; "$0" blue /bin/true; done' "$VRFEXEC"
after=$(count_objects)
echo
echo "| kernel objects | before | after $OBJECT_RUNS runs |"
echo "|---|---|---|"
read -r _ pb _ lb _ cb <<<"$before"
read -r _ pa _ la _ ca <<<"$after"
echo "| BPF programs | $pb | $pa |"
echo "| BPF links | $lb | $la |"
echo "| cgroups | $cb | $ca |"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b <= 0) print "n/a"; else printf "%.2f", a / b }'; }
warm_ratio=$(ratio "${OVER[warm]}" "${OVER[ipvrf]}")
cold_ratio=$(ratio "${OVER[cold]}" "${OVER[ipvrf]}")
sock_ratio=$(ratio "$sock_vrf" "$sock_bare")
verdict() { awk -v r="$1" -v op="$2" -v t="$3" 'BEGIN { ok = (op == "<=") ? (r <= t) : (r >= t); print ok ? "met" : "MISSED" }'; }
echo
echo "| ratio | measured | target | |"
echo "|---|---|---|---|"
echo "| warm overhead / ip vrf exec overhead | $warm_ratio | <= 0.80 | $(verdict "$warm_ratio" "<=" 0.8) |"
echo "| cold overhead / ip vrf exec overhead | $cold_ratio | <= 1.00 | $(verdict "$cold_ratio" "<=" 1.0) |"
echo "| socket rate in vrfexec / bare | $sock_ratio | >= 0.95 | $(verdict "$sock_ratio" ">=" 0.95) |"
flat=met
[ "$pa" -eq "$pb" ] && [ "$la" -eq "$lb" ] && [ "$ca" -eq "$cb" ] || flat=MISSED
echo "| kernel objects after $OBJECT_RUNS runs | programs $pb->$pa, cgroups $cb->$ca | flat | $flat |"
echo "| (dynamic build alone: warm overhead / ip vrf exec overhead) | $(ratio "${OVER[full]}" "${OVER[ipvrf]}") | | |"
