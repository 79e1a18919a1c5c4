#!/usr/bin/env python3
"""Benchmark client: GET http://VIP/ every 10 ms for a bounded time.

usage: client.py VIP DURATION_S STOPFILE
Prints one line per request: "<unix time ns> <body or -error>". Stops after
DURATION_S seconds, or as soon as STOPFILE exists. Requests do not overlap;
each has a 100 ms limit, and the next starts 10 ms after the previous began
(or at once if it took longer).
"""
import http.client
import os
import sys
import time

vip, duration, stopfile = sys.argv[1], float(sys.argv[2]), sys.argv[3]
PERIOD, TIMEOUT = 0.010, 0.100
end = time.monotonic() + duration
out = sys.stdout
while time.monotonic() < end and not os.path.exists(stopfile):
    began = time.monotonic()
    stamp = time.time_ns()
    try:
        conn = http.client.HTTPConnection(vip, 80, timeout=TIMEOUT)
        conn.request("GET", "/")
        body = conn.getresponse().read().decode().strip() or "-empty"
        conn.close()
    except Exception as e:  # a failed request is a data point, not an error
        body = "-" + type(e).__name__
    out.write(f"{stamp} {body}\n")
    out.flush()
    rest = PERIOD - (time.monotonic() - began)
    if rest > 0:
        time.sleep(rest)
