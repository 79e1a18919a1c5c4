#!/usr/bin/env python3
"""Turns a daemon's log into a golden-scenario input file, to replay a field
incident against the core:

    UNDERSTUDY_LOG=info,understudy::replay=debug understudy run ...   # on the node
    tests/golden/log2input.py DAEMON.LOG "what happened" > tests/golden/NAME/input.txt
    GOLDEN_UPDATE=1 cargo test --test golden                          # writes its expect files

The daemon logs its settings and every input to its core (target
understudy::replay, at debug) as `ms=N line=STEP`. This keeps the last run in
the log (a restarted daemon starts a new one at its settings line) and writes
`at Nms STEP` lines after a header and the settings."""
import re
import sys

REPLAY = re.compile(r"understudy::replay: ms=(\d+) line=(.*)$")


def convert(lines, header):
    run = []
    for raw in lines:
        m = REPLAY.search(raw.rstrip("\n"))
        if not m:
            continue
        ms, step = int(m.group(1)), m.group(2)
        if step.startswith("settings "):
            run = [step]
        elif run:
            run.append(f"at {ms}ms {step}")
    if not run:
        sys.exit("no understudy::replay lines: run the daemon with UNDERSTUDY_LOG=info,understudy::replay=debug")
    return [f"# {header}"] + run


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: log2input.py DAEMON.LOG [HEADER]")
    header = sys.argv[2] if len(sys.argv) > 2 else f"Replayed from {sys.argv[1]}"
    with open(sys.argv[1], encoding="utf-8", errors="replace") as f:
        print("\n".join(convert(f, header)))
