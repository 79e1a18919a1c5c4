#!/usr/bin/env python3
"""Holds PER_SOURCE idle TCP connections from each SOURCE address to
HOST:PORT for SECONDS, opening a new one whenever the server closes one:
a stranger without a token who tries to lock operators out of the API.

    slow_hold.py HOST PORT PER_SOURCE SECONDS SOURCE...

Bounded: ends after SECONDS, looks every 50 ms, each connect limited to
1 s. Prints one JSON line: connections opened, and closed by the server."""
import json
import socket
import sys
import time

host, port, per, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
sources = sys.argv[5:]
opened = closed = 0


def connect(source):
    global opened
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(1.0)
    try:
        s.bind((source, 0))
        s.connect((host, port))
    except OSError:
        s.close()
        return None
    s.setblocking(False)
    opened += 1
    return s


def still_open(s):
    try:
        return s.recv(1) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


held = {source: [] for source in sources}
end = time.monotonic() + seconds
while time.monotonic() < end:
    for source in sources:
        alive = []
        for s in held[source]:
            if still_open(s):
                alive.append(s)
            else:
                closed += 1
                s.close()
        while len(alive) < per:
            s = connect(source)
            if s is None:
                break
            alive.append(s)
        held[source] = alive
    time.sleep(0.05)
print(json.dumps({"opened": opened, "closed_by_server": closed}), flush=True)
