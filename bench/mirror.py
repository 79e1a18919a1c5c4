#!/usr/bin/env python3
"""Mirror benchmark: `[[mirror]]` against plain rsync with the same options.

A tree of 10,000 files (1 GiB, random bytes) on m1, an OpenSSH server on
m2, each node with its own copy of the folder (a private mount namespace
per node, tests/support/mount_view.sh), on the namespace topology of the
tests. Measured, REPS times each, interleaved:

- the first full copy: `understudy mirror setup m2` against the same rsync
  argument list run by hand (the floor);
- an incremental run after 1 % of the files changed (100 files), the same
  two ways;
- a planned move's outage (demote) as a client polling the VIP every 10 ms
  sees it, with and without the `[[mirror]]` section: what the passes add.

Run it through bench/mirror.sh (root). Traffic stays inside the namespaces
it creates (192.0.2.0/24); everything it starts is ended by PID.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as common  # noqa: E402  (the failover benchmark's helpers)

ROOT = common.ROOT
VIEW = ROOT / "tests/support/mount_view.sh"
REPS = int(os.environ.get("MIRROR_REPS", "3"))
FILES, SIZE = 10_000, (1 << 30) // 10_000
PREFIX = "umb"


def keygen(path):
    common.sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path)


def make_tree(root):
    for d in range(100):
        folder = root / f"d{d:02}"
        folder.mkdir(parents=True, exist_ok=True)
        for f in range(FILES // 100):
            (folder / f"f{f:03}.bin").write_bytes(os.urandom(SIZE))


def change_one_percent(root, round_):
    for d in range(100):
        path = root / f"d{d:02}" / "f000.bin"
        path.write_bytes(os.urandom(SIZE - round_ - 1))


def config(work, mirror):
    text = f"""[cluster]
name = "bench"
vip = "{common.VIP}"

[[node]]
name = "m1"
role = "primary"
nic = "eth0"
address = "192.0.2.11"
url = "http://192.0.2.11/"

[[node]]
name = "m2"
role = "secondary"
nic = "eth0"
address = "192.0.2.12"
url = "http://192.0.2.12/"

[monitor]
interval = "100ms"
grace = "100ms"

[heartbeat]
interval = "100ms"
secret_file = "{work / 'secret'}"

[application]
start = "python3 {common.APP} $UNDERSTUDY_NODE 80 {work}/$UNDERSTUDY_NODE.pid >/dev/null 2>&1 &"
stop = "kill $(cat {work}/$UNDERSTUDY_NODE.pid 2>/dev/null) 2>/dev/null; true"
"""
    if mirror:
        # `every` is a timing key: an hour, so that only the demote's
        # passes run while it is measured.
        text += f"""
[[mirror]]
name = "tree"
paths = ["{work / 'app' / 'tree'}"]
every = "1h"
key = "{work / 'mirror_key'}"
known_hosts = "{work / 'known_hosts'}"
backup_dir = "{work / 'backups'}"
"""
    path = work / ("mirror.toml" if mirror else "plain.toml")
    path.write_text(text)
    return path


def in_view(node, work, *args):
    """Runs a command as `node`: its namespace and its copy of the folder."""
    return ["ip", "netns", "exec", f"{PREFIX}-{node}", VIEW, work / f"{node}-app", work / "app", *args]


def timed(args):
    began = time.monotonic()
    out = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    took = time.monotonic() - began
    if out.returncode != 0:
        raise RuntimeError(f"{args[0]} failed: {out.stdout}{out.stderr}")
    return took, out.stdout


def demote_outage(work, mirror):
    """Starts both daemons, demotes m1, returns the client's outage in ms."""
    procs = []
    try:
        conf = config(work, mirror)
        for node in ("m1", "m2"):
            log = work / f"{node}-{'mirror' if mirror else 'plain'}.log"
            procs.append(subprocess.Popen(
                [str(a) for a in in_view(node, work, common.UNDERSTUDY, "run", "--config", conf, "--node", node,
                                         "--socket", work / f"{node}.sock", "--state-file", work / f"{node}.state")],
                stdout=open(log, "ab"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
            if node == "m1":
                common.wait_until("m1 answering on the VIP", 20, lambda: common.get_vip(PREFIX) == "m1")
        common.wait_until("m2 to hear m1", 20, lambda: "peer available" in log.read_text(errors="replace"))
        # Its application judged healthy (rise 2 at 100 ms) and settled.
        time.sleep(2.0)
        stop = work / "client.stop"
        stop.unlink(missing_ok=True)
        out_file = work / "client.txt"
        client = subprocess.Popen(["ip", "netns", "exec", f"{PREFIX}-cl", "python3", common.CLIENT, common.VIP,
                                   "60", stop], stdout=open(out_file, "w"))
        procs.append(client)
        time.sleep(0.5)
        asked = time.time_ns()
        common.sh(common.UNDERSTUDY, "demote", "--socket", work / "m1.sock")

        def m2_answers():
            return any(l.split(" ", 1)[1].strip() == "m2" for l in out_file.read_text().splitlines()
                       if " " in l and int(l.split(" ", 1)[0]) > asked)
        try:
            common.wait_until("m2 to answer", 60, m2_answers, step=0.05)
        except RuntimeError:
            for node in ("m1", "m2"):
                tail = (work / f"{node}-{'mirror' if mirror else 'plain'}.log").read_text(errors="replace")
                print(f"--- {node}\n" + "\n".join(tail.splitlines()[-15:]), flush=True)
            raise
        time.sleep(0.3)
        stop.touch()
        client.wait(timeout=5)
        results = sorted((int(a), b.strip()) for a, b in (l.split(" ", 1) for l in out_file.read_text().splitlines()
                                                          if " " in l))
        after = [(t, r) for t, r in results if t > asked]
        last_m1 = max((t for t, r in after if r == "m1"), default=asked)
        first_m2 = next(t for t, r in after if r == "m2")
        return (first_m2 - last_m1) / 1e6, (first_m2 - asked) / 1e6
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for node in ("m1", "m2"):
            pid = work / f"{node}.pid"
            if pid.exists():
                subprocess.run(["kill", pid.read_text().strip()], capture_output=True)
                pid.unlink()


def summary(values):
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3), "runs": [round(v, 3) for v in values]}


def main():
    work = Path(tempfile.mkdtemp(prefix="understudy-mirror-bench.", dir="/var/tmp"))
    sshd = None
    try:
        common.sh(common.TOPOLOGY, "up", PREFIX)
        common.sh(common.UNDERSTUDY, "keygen", work / "secret")
        for d in ("app", "m1-app", "m2-app", "backups"):
            (work / d).mkdir()
        print("writing 10,000 files (1 GiB) on m1", flush=True)
        make_tree(work / "m1-app" / "tree")
        keygen(work / "mirror_key")
        keygen(work / "m2_host_key")
        public = (work / "m2_host_key.pub").read_text()
        (work / "known_hosts").write_text(f"192.0.2.12 {public}")
        (work / "sshd_config").write_text(
            f"Port 22\nListenAddress 192.0.2.12\nHostKey {work / 'm2_host_key'}\nPidFile {work / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {work / 'mirror_key.pub'}\nPermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n")
        Path("/run/sshd").mkdir(exist_ok=True)
        sshd = subprocess.Popen([str(a) for a in in_view("m2", work, "/usr/sbin/sshd", "-D", "-e", "-f",
                                                         work / "sshd_config")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        common.wait_until("sshd on m2", 10, lambda: common.nsx(PREFIX, "m2", "ss", "-Htln", "src 192.0.2.12:22")
                          .stdout.strip() != "")
        conf = config(work, True)
        setup = in_view("m1", work, common.UNDERSTUDY, "mirror", "setup", "m2", "--config", conf)
        first = {"understudy": [], "rsync": []}
        incremental = {"understudy": [], "rsync": []}
        command = None
        for rep in range(0 if os.environ.get("MIRROR_ONLY") == "demote" else REPS):
            for way in ("understudy", "rsync"):
                shutil.rmtree(work / "m2-app" / "tree", ignore_errors=True)
                shutil.rmtree(work / "backups", ignore_errors=True)
                (work / "backups").mkdir()
                if way == "understudy":
                    took, out = timed(setup)
                    command = next(l.split(": ", 1)[1] for l in out.splitlines() if l.startswith("mirror tree to m2"))
                else:
                    took, _ = timed(in_view("m1", work, "sh", "-c", command))
                first[way].append(took)
                change_one_percent(work / "m1-app" / "tree", rep)
                if way == "understudy":
                    took, _ = timed(setup)
                else:
                    took, _ = timed(in_view("m1", work, "sh", "-c", command))
                incremental[way].append(took)
                print(f"rep {rep + 1}: {way}: first copy {first[way][-1]:.2f} s, 1 % changed {took:.2f} s",
                      flush=True)
        outages = {"without [[mirror]]": [], "with [[mirror]]": []}
        for rep in range(REPS):
            for mirror in (False, True):
                gap, total = demote_outage(work, mirror)
                key = "with [[mirror]]" if mirror else "without [[mirror]]"
                outages[key].append(gap)
                print(f"rep {rep + 1}: demote {key}: outage {gap:.0f} ms (demote to m2 answering {total:.0f} ms)",
                      flush=True)
        result = {
            "files": FILES, "bytes": FILES * SIZE, "command": command,
            "first_copy_s": {k: summary(v) for k, v in first.items()},
            "incremental_1pct_s": {k: summary(v) for k, v in incremental.items()},
            "demote_outage_ms": {k: summary(v) for k, v in outages.items()},
        }
        (ROOT / "bench/mirror-results.json").write_text(json.dumps(result, indent=1))
        print(json.dumps(result, indent=1))
    finally:
        if sshd and sshd.poll() is None:
            sshd.terminate()
            sshd.wait()
        common.sh(common.TOPOLOGY, "down", PREFIX, check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
