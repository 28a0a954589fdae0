#!/usr/bin/env python3
"""Counts the BPF programs and links loaded in the kernel (BPF_PROG/LINK_GET_NEXT_ID), for the
VM suite and the benchmark: kernel objects must not grow with the number of vrfexec runs.
Prints "programs N links N". Needs root (CAP_SYS_ADMIN)."""
import ctypes
import ctypes.util
import sys

SYS_BPF = 321  # x86_64
BPF_PROG_GET_NEXT_ID = 11
BPF_LINK_GET_NEXT_ID = 31

libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


class NextIdAttr(ctypes.Structure):
    _fields_ = [("start_id", ctypes.c_uint32), ("next_id", ctypes.c_uint32), ("open_flags", ctypes.c_uint32)]


def count(cmd):
    attr = NextIdAttr(0, 0, 0)
    n = 0
    while True:
        rc = libc.syscall(SYS_BPF, cmd, ctypes.byref(attr), ctypes.sizeof(attr))
        if rc != 0:
            err = ctypes.get_errno()
            if err == 2:  # ENOENT: no more ids
                return n
            sys.exit(f"bpf_objects: bpf({cmd}) failed: errno {err}")
        n += 1
        attr.start_id = attr.next_id


print(f"programs {count(BPF_PROG_GET_NEXT_ID)} links {count(BPF_LINK_GET_NEXT_ID)}")
