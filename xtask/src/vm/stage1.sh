#!/bin/busybox sh
# vrfexec VM, stage 1: /init of the initramfs (busybox only). Loads the modules needed to mount
# the host's root filesystem (virtio-9p, read-only) under an overlay whose upper layer is a
# tmpfs, moves the job there and hands over to stage 2 (bash, from the host root) as PID 1.
# On any failure it says why and powers off without an exit marker: the host reports a failure.
/bin/busybox --install -s /bin
export PATH=/bin

fail() {
    echo "vrfexec-vm stage 1: $*"
    poweroff -f
    echo o >/proc/sysrq-trigger
    sleep 30
}

mount -t proc proc /proc || fail "cannot mount /proc"
mount -t devtmpfs dev /dev || fail "cannot mount /dev"

while read -r module; do
    insmod "/modules/$module" || fail "insmod $module failed"
done </modules/order

# cache=loose: the host root is read-only for the guest's lifetime as far as it is concerned;
# caching makes TCG startup of bash, python and friends several times faster.
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=loose,ro hostroot /lower ||
    fail "cannot mount the host root over 9p (mount tag hostroot)"
mount -t tmpfs -o mode=0755 upper /upper || fail "cannot mount the overlay's tmpfs"
mkdir -p /upper/data /upper/work
mount -t overlay -o lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work overlay /newroot ||
    fail "cannot mount the overlay root"

mkdir -p /newroot/var/lib/vrfexec-vm || fail "the overlay root is not writable"
cp /job/* /newroot/var/lib/vrfexec-vm/ || fail "cannot copy the job into the overlay root"
mount --move /dev /newroot/dev || fail "cannot move /dev"
umount /proc
exec switch_root /newroot /bin/bash /var/lib/vrfexec-vm/stage2.sh
fail "switch_root failed"
