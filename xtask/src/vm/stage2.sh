#!/bin/bash
# vrfexec VM, stage 2: PID 1 in the overlay root (the host's root, read-only, under a tmpfs
# upper layer). Mounts the usual filesystems, makes the fetched kernel's modules visible as
# /lib/modules/$(uname -r), runs the job with `bash -c` in its directory, then prints
#   VRFEXEC-VM-EXIT=<status> id=<nonce>
# and powers off. The host trusts only that marker; any setup failure powers off without it.
#
# With VM_INIT=systemd the job runs under a real systemd instead: after the same setup this
# script execs /lib/systemd/systemd as PID 1 with one target, vrfexec-vm.target, whose service
# (udev and journald started first) runs `stage2.sh --job`: the job, the marker, power off.
set -u
J=/var/lib/vrfexec-vm
# shellcheck source=/dev/null
source "$J/env"
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=dumb LANG=C.UTF-8 LC_ALL=C.UTF-8
unset TMPDIR

power_off() {
    # isa-debug-exit (qemu exits at once), then the usual ways.
    printf '\001' | dd of=/dev/port bs=1 seek=244 count=1 status=none 2>/dev/null
    busybox poweroff -f 2>/dev/null
    echo o >/proc/sysrq-trigger 2>/dev/null
    sleep 60
}

fail() {
    echo "vrfexec-vm stage 2: $*"
    power_off
}

must() {
    "$@" || fail "failed: $*"
}

# run_job: the job in its directory, between the start and exit markers; then power off.
run_job() {
    local cwd cmd status
    cwd=$(cat "$J/cwd")
    cmd=$(cat "$J/cmd")
    cd "$cwd" || fail "no directory $cwd in the guest"
    echo "VRFEXEC-VM-START id=$VM_NONCE"
    bash -c "$cmd" </dev/null
    status=$?
    # The leading newline keeps the marker on a line of its own after unterminated output.
    printf '\nVRFEXEC-VM-EXIT=%d id=%s\n' "$status" "$VM_NONCE"
    # Let the serial port drain before qemu is told to exit.
    sleep 0.5
    power_off
}

# Under systemd (VM_INIT=systemd), the job's service: everything is set up already.
if [ "${1:-}" = --job ]; then
    run_job
fi

must mount -t proc proc /proc
must mount -t sysfs sysfs /sys
mkdir -p /dev/pts /dev/shm
must mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
must mount -t tmpfs -o mode=1777 shm /dev/shm
must mount -t cgroup2 cgroup2 /sys/fs/cgroup
must mount -t bpf -o mode=700 bpf /sys/fs/bpf
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
must mount -t tmpfs -o mode=755 run /run
# No tmpfs on /tmp: the root is already an overlay with a tmpfs upper layer, so writes there
# stay in the guest anyway, and a tmpfs would hide the host's /tmp, where the job's directory
# may be (a clone under /tmp, as CI may use).
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd

# Modules: the fetched kernel's tree, so `modprobe vrf` and kernel autoloading just work.
must mkdir -p "/lib/modules/$VM_KERNEL"
must mount --bind "$VM_MODULES" "/lib/modules/$VM_KERNEL"
modprobe -q virtio_rng 2>/dev/null

hostname vrfexec-vm
must ip link set lo up
# Keep kernel messages (veth, promiscuous mode...) off the console the host parses.
dmesg -n 1

# start_systemd: PID 1 becomes systemd, which starts only vrfexec-vm.target: udev (device units
# for network interfaces), journald, and the job's service, its output on the serial console.
start_systemd() {
    local units=/etc/systemd/system
    must mkdir -p "$units"
    cat >"$units/vrfexec-vm.target" <<EOF
[Unit]
Description=vrfexec VM job
Wants=vrfexec-vm.service
EOF
    cat >"$units/vrfexec-vm.service" <<EOF
[Unit]
Description=vrfexec VM job (stage 2 --job)
Wants=systemd-journald.service systemd-udevd.service systemd-udev-trigger.service
After=systemd-journald.service systemd-udevd.service systemd-udev-trigger.service
[Service]
Type=simple
ExecStart=/bin/bash $J/stage2.sh --job
StandardInput=null
StandardOutput=tty
StandardError=inherit
TTYPath=/dev/ttyS0
EOF
    # The job's directory may be under /tmp (a clone, as CI makes): the stock tmpfiles.d line
    # "D /tmp" would have systemd-tmpfiles-setup empty /tmp at boot (in the overlay only, but
    # the job would be gone). Same name in /etc overrides it: create, never empty.
    must mkdir -p /etc/tmpfiles.d
    echo 'd /tmp 1777 root root -' >/etc/tmpfiles.d/tmp.conf || fail "cannot write /etc/tmpfiles.d/tmp.conf"
    # A machine ID keeps journald and friends quiet; systemd mounts the rest itself.
    [ -s /etc/machine-id ] || systemd-machine-id-setup >/dev/null 2>&1
    exec /lib/systemd/systemd --system --unit=vrfexec-vm.target --show-status=no \
        --log-level=warning --log-target=kmsg
}

if [ "${VM_INIT:-}" = systemd ]; then
    [ -x /lib/systemd/systemd ] || fail "no /lib/systemd/systemd (install the Debian package systemd)"
    start_systemd
    fail "could not exec /lib/systemd/systemd"
fi
run_job
