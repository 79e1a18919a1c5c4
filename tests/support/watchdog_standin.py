#!/usr/bin/env python3
"""A stand-in for a node's watchdog device, for hosts without one (no
driver, no softdog): a named pipe at the path the node's [fencing]
watchdog names, read here, and what a reset does to the node when the
daemon stops feeding it in time.

    watchdog_standin.py FIFO TIMEOUT_S NETNS NIC RECORD LIFETIME_S

Like a watchdog driver (Documentation/watchdog/watchdog-api.rst): the
timer starts when the device is opened (the first byte; the daemon feeds
at once when it arms), every byte written feeds it, and a close just after
a "V" (the magic close) stops it; any other close (the daemon killed)
leaves it running. When TIMEOUT_S pass without a feed while it runs, it
does what a reset does to the node: every process in the node's network
namespace NETNS is killed (SIGKILL) and the addresses on NIC are flushed
(the host and its addresses are gone); then it ends.

RECORD gets one line per event, with the time (CLOCK_MONOTONIC seconds):
"ready", "armed", "disarmed", "closed-armed" (closed without the magic
V: the timer runs on), "reset killed=N", and on exit "fed N".
Bounded: ends after LIFETIME_S, or at the reset."""
import os
import select
import subprocess
import sys
import time

fifo, timeout, netns, nic, record, lifetime = (
    sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], float(sys.argv[6]))


def note(what):
    with open(record, "a") as f:
        f.write(f"{time.monotonic():.3f} {what}\n")


def reset():
    pids = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), 9)
        except (ProcessLookupError, ValueError):
            pass
    subprocess.run(["ip", "-n", netns, "addr", "flush", "dev", nic], check=False)
    note(f"reset killed={len(pids)}")


if not os.path.exists(fifo):
    os.mkfifo(fifo, 0o600)
reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
armed, magic, last_feed, feeds = False, False, 0.0, 0
began = time.monotonic()
note("ready")
while time.monotonic() - began < lifetime:
    ready, _, _ = select.select([reader], [], [], 0.02)
    now = time.monotonic()
    if ready:
        data = os.read(reader, 4096)
        if not data:
            # The writer closed: a magic close stops the timer, any other
            # leaves it running. A fresh reader waits for the next writer
            # (Linux reports no hang-up to a reader opened after it).
            if magic:
                armed = False
                note("disarmed")
            elif armed:
                note("closed-armed")
            magic = False
            os.close(reader)
            reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        for byte in data:
            if byte == ord("V"):
                magic = True
            else:
                if not armed:
                    note("armed")
                armed, magic, last_feed = True, False, now
                feeds += 1
    if armed and now - last_feed > timeout:
        reset()
        break
note(f"fed {feeds}")
