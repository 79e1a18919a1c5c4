#!/usr/bin/env python3
"""Prints every IPv6 neighbour solicitation and advertisement seen on IFACE
(sent or received) for SECONDS, one hex frame per line; the codec test
compares understudy's frames with the kernel's own.

usage: capture_ndp.py IFACE SECONDS
"""
import socket
import sys
import time

iface, seconds = sys.argv[1], float(sys.argv[2])
ETH_P_ALL = 0x0003
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
s.bind((iface, 0))
s.settimeout(0.05)
print("ready", flush=True)
end = time.monotonic() + seconds
while time.monotonic() < end:
    try:
        frame = s.recv(2048)
    except socket.timeout:
        continue
    # Ethernet type 0x86dd, IPv6 next header 58 (ICMPv6), type 135 or 136.
    if len(frame) >= 78 and frame[12:14] == b"\x86\xdd" and frame[20] == 58 and frame[54] in (135, 136):
        print(frame.hex(), flush=True)
