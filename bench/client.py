#!/usr/bin/env python3
"""Benchmark client: GET http://VIP/ every 10 ms for a bounded time.

usage: client.py VIP DURATION_S STOPFILE
Prints one line per request: "<unix time ns the request was sent> <body or
-error>". Stops after DURATION_S seconds, or as soon as STOPFILE exists.
A request starts every 10 ms whether or not the previous ones have ended
(each has a 100 ms limit, at most 10 in flight), so that a request stuck
on the old holder does not hide the new one for its whole limit.
"""
import http.client
import os
import sys
import threading
import time

vip, duration, stopfile = sys.argv[1], float(sys.argv[2]), sys.argv[3]
PERIOD, TIMEOUT = 0.010, 0.100
end = time.monotonic() + duration
lock = threading.Lock()


def get(stamp):
    try:
        conn = http.client.HTTPConnection(vip, 80, timeout=TIMEOUT)
        conn.request("GET", "/")
        body = conn.getresponse().read().decode().strip() or "-empty"
        conn.close()
    except Exception as e:  # a failed request is a data point, not an error
        body = "-" + type(e).__name__
    with lock:
        sys.stdout.write(f"{stamp} {body}\n")
        sys.stdout.flush()


next_at = time.monotonic()
while time.monotonic() < end and not os.path.exists(stopfile):
    threading.Thread(target=get, args=(time.time_ns(),), daemon=True).start()
    next_at += PERIOD
    rest = next_at - time.monotonic()
    if rest > 0:
        time.sleep(rest)
time.sleep(TIMEOUT * 2)
