#!/usr/bin/env python3
"""Where a takeover's time goes: runs one fault N times on understudy alone
(bench/run.py's topology and settings, a private namespace prefix) and, from
the secondary's log and the client's answers, prints for each run the fault's
phase (time since the last heartbeat the secondary received), and when the
look began, the peer counted as gone and the claim came, all from the fault.

    sudo python3 bench/timeline.py [CELL] [FAULT] [RUNS]     (default 100ms linkdown 8)
"""
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402


def main():
    cell, fault, runs = (sys.argv[1:] + ["100ms", "linkdown", "8"][len(sys.argv) - 1:])[:3]
    os.environ["UNDERSTUDY_LOG"] = "info,understudy=debug,understudy::replay=debug,netlink_packet_route=error"
    for _ in range(int(runs)):
        work = Path(tempfile.mkdtemp(prefix="understudy-timeline."))
        run.sh(run.UNDERSTUDY, "keygen", work / "secret")
        row = run.run_one("understudy", cell, fault, work, prefix="ustl")
        answers = sorted((int(a), b) for a, b in (line.split(" ", 1)
                         for line in (work / "client.txt").read_text().splitlines() if " " in line))
        first_m2 = next(t for t, body in answers if body == "m2")
        at = first_m2 - row["outage_ms"] * 1e6
        log = (work / "ustl-m2.understudy.log").read_text().splitlines()
        stamp = run.parse_stamp
        heard = [stamp(line) for line in log if "line=heartbeat active" in line and stamp(line) < at]
        def after(text):
            t = next((stamp(line) for line in log if text in line and stamp(line) > at), None)
            return "-" if t is None else f"{(t - at) / 1e6:.1f}"
        print(f"outage {row['outage_ms']:.0f} ms  phase {(at - heard[-1]) / 1e6:.1f}  look {after('looking at the common IP')}"
              f"  gone {after('peer unavailable')}  claim {after('-> adding the common IP')}", flush=True)


if __name__ == "__main__":
    main()
