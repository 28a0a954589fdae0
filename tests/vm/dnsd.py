#!/usr/bin/env python3
"""A tiny authoritative DNS responder for the VM lab: answers NAME with A ADDR4 and AAAA ADDR6,
everything else with NXDOMAIN, on UDP port 53 (IPv4 and IPv6), and logs each query it answers to
LOG. Usage: dnsd.py NAME ADDR4 ADDR6 LOG. Run inside a peer namespace."""
import socket
import struct
import sys

name, addr4, addr6, log = sys.argv[1].lower().rstrip("."), sys.argv[2], sys.argv[3], sys.argv[4]
sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
sock.bind(("::", 53))
with open(log, "a", buffering=1) as out:
    while True:
        data, peer = sock.recvfrom(2048)
        if len(data) < 17:
            continue
        (tid,) = struct.unpack("!H", data[:2])
        labels, i = [], 12
        while i < len(data) and data[i]:
            labels.append(data[i + 1 : i + 1 + data[i]].decode("ascii", "replace"))
            i += 1 + data[i]
        qtype, _ = struct.unpack("!HH", data[i + 1 : i + 5])
        question = data[12 : i + 5]
        qname = ".".join(labels).lower()
        answer = b""
        if qname == name and qtype in (1, 28):
            rdata = socket.inet_pton(*((socket.AF_INET, addr4) if qtype == 1 else (socket.AF_INET6, addr6)))
            answer = b"\xc0\x0c" + struct.pack("!HHIH", qtype, 1, 60, len(rdata)) + rdata
        rcode = 0 if qname == name else 3
        header = struct.pack("!HHHHHH", tid, 0x8400 | rcode, 1, 1 if answer else 0, 0, 0)
        sock.sendto(header + question + answer, peer)
        out.write(f"{qname} {qtype} from {peer[0]}\n")
