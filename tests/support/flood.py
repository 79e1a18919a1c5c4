#!/usr/bin/env python3
"""Opens idle TCP connections to an address and holds them, as an attacker
who can reach the API port but has no token would.

    flood.py HOST PORT COUNT HOLD_SECONDS SOURCE...

Connections are spread over the SOURCE addresses (each must be on this
host). Prints one JSON line: how many connects succeeded, how many the
server had already closed when the hold ended, and how long it all took.
Bounded: at most COUNT connections, each connect limited to 1 s, and the
hold ends after HOLD_SECONDS."""
import json
import resource
import socket
import sys
import time

host, port, count, hold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
sources = sys.argv[5:] or ["0.0.0.0"]
_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
began = time.monotonic()
socks, failed = [], 0
for i in range(count):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(1.0)
    try:
        s.bind((sources[i % len(sources)], 0))
        s.connect((host, port))
        socks.append(s)
    except OSError:
        failed += 1
        s.close()
time.sleep(hold)
closed = 0
for s in socks:
    s.setblocking(False)
    try:
        if s.recv(1) == b"":
            closed += 1
    except BlockingIOError:
        pass
    except OSError:
        closed += 1
    s.close()
print(json.dumps({"connected": len(socks), "failed": failed, "closed_by_server": closed,
                  "seconds": round(time.monotonic() - began, 2)}))
