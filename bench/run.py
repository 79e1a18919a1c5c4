#!/usr/bin/env python3
"""Failover benchmark: understudy and keepalived on the same namespace
topology, the same faults, interleaved (keepalived, understudy, keepalived,
understudy ...) so that machine noise hits both.

Run it through bench/failover.sh (root). Traffic stays inside the
namespaces it creates (192.0.2.0/24); everything it starts is ended by PID.
"""
import argparse
import datetime
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOPOLOGY = ROOT / "tests/support/topology.sh"
APP = ROOT / "tests/support/nodeapp.py"
CLIENT = ROOT / "bench/client.py"
UNDERSTUDY = ROOT / "target/release/understudy"
VIP = "192.0.2.10"
ADDR = {"m1": "192.0.2.11", "m2": "192.0.2.12"}
PEER = {"m1": "m2", "m2": "m1"}
FAULTS = ["kill", "linkdown", "appstop"]
# A gratuitous ARP as tcpdump prints it, request or reply form; keepalived
# puts the broadcast address in the target hardware field of its requests.
GRATUITOUS = re.compile(rf"who-has {re.escape(VIP)}( \(\S+\))? tell {re.escape(VIP)}|Reply {re.escape(VIP)} is-at")
WAIT_LIMIT = 15.0  # seconds a takeover may take before the run counts as failed

# Equivalent timings. keepalived: advert_int, and a vrrp_script that GETs
# the local application every second (its minimum), fall 2, rise 2.
# understudy: heartbeat = advert_int, peer_timeout = 3 x heartbeat (as
# VRRP's master-down interval), probe interval = the script's at the
# default and 100 ms when aggressive, grace = one interval (fall 2: the
# second failed probe triggers).
SETTINGS = {
    "default": {
        "advert": "1", "vrrp_version": 2,
        "hb": "1s", "peer_timeout": "3s", "interval": "1s", "timeout": "500ms",
        "grace": "1s", "probe": "300ms",
    },
    "aggressive": {
        "advert": "0.1", "vrrp_version": 3,
        "hb": "100ms", "peer_timeout": "300ms", "interval": "100ms", "timeout": "50ms",
        "grace": "100ms", "probe": "100ms",
    },
}


def sh(*args, check=True, **kw):
    return subprocess.run([str(a) for a in args], check=check, capture_output=True, text=True, **kw)


def nsx(prefix, host, *args, **kw):
    return sh("ip", "netns", "exec", f"{prefix}-{host}", *args, **kw)


def spawn(prefix, host, args, log):
    f = open(log, "ab")
    return subprocess.Popen(["ip", "netns", "exec", f"{prefix}-{host}", *map(str, args)],
                            stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def wait_until(what, limit, cond, step=0.02):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    raise RuntimeError(f"timed out waiting for {what}")


def addresses(prefix, host):
    out = nsx(prefix, host, "ip", "-j", "-4", "addr", "show", "dev", "eth0", check=False).stdout
    try:
        return [a["local"] for a in json.loads(out)[0]["addr_info"]]
    except (ValueError, IndexError, KeyError):
        return []


def mac(prefix, host):
    return json.loads(nsx(prefix, host, "ip", "-j", "link", "show", "dev", "eth0").stdout)[0]["address"]


def neighbour(prefix):
    out = nsx(prefix, "cl", "ip", "-j", "neigh", "show", VIP, check=False).stdout
    try:
        return json.loads(out)[0].get("lladdr")
    except (ValueError, IndexError):
        return None


def get_vip(prefix):
    r = nsx(prefix, "cl", "curl", "-s", "--max-time", "0.3", f"http://{VIP}/", check=False)
    return r.stdout.strip() if r.returncode == 0 else None


def understudy_config(work, setting):
    s = SETTINGS[setting]
    nodes = "".join(f"""
[[node]]
name = "{n}"
role = "{'primary' if n == 'm1' else 'secondary'}"
nic = "eth0"
address = "{ADDR[n]}"
url = "http://{ADDR[n]}/"
""" for n in ("m1", "m2"))
    path = work / f"understudy-{setting}.toml"
    path.write_text(f"""[cluster]
name = "bench"
vip = "{VIP}"
{nodes}
[monitor]
interval = "{s['interval']}"
timeout = "{s['timeout']}"
grace = "{s['grace']}"
rise = 2

[application]
ready_timeout = "5s"

[announce]
count = 5
interval = "200ms"
probe = "{s['probe']}"

[heartbeat]
interval = "{s['hb']}"
peer_timeout = "{s['peer_timeout']}"
secret_file = "{work / 'secret'}"
""")
    return path


def keepalived_config(work, setting, node):
    s = SETTINGS[setting]
    path = work / f"keepalived-{setting}-{node}.conf"
    path.write_text(f"""global_defs {{
    router_id {node}
    script_user root
    enable_script_security
    vrrp_version {s['vrrp_version']}
}}
vrrp_script chk_app {{
    script "/usr/bin/curl -s -f -o /dev/null --max-time 0.5 http://{ADDR[node]}/"
    interval 1
    timeout 1
    fall 2
    rise 2
}}
vrrp_instance VI_1 {{
    state {'MASTER' if node == 'm1' else 'BACKUP'}
    interface eth0
    virtual_router_id 51
    priority {150 if node == 'm1' else 100}
    advert_int {s['advert']}
    unicast_src_ip {ADDR[node]}
    unicast_peer {{
        {ADDR[PEER[node]]}
    }}
    virtual_ipaddress {{
        {VIP}/24 dev eth0
    }}
    track_script {{
        chk_app
    }}
}}
""")
    return path


class Pair:
    """One topology with an application and a daemon on m1 and m2."""

    def __init__(self, prefix, daemon, setting, work):
        self.prefix, self.daemon, self.setting, self.work = prefix, daemon, setting, work
        self.procs = {}
        self.logs = {}
        sh(TOPOLOGY, "up", prefix)
        for node in ("m1", "m2"):
            pidfile = work / f"{prefix}-{node}.app.pid"
            self.procs[f"app-{node}"] = spawn(prefix, node, ["python3", APP, node, 80, pidfile],
                                              work / f"{prefix}-{node}.app.log")
        for node in ("m1", "m2"):
            wait_until(f"{node}'s application", 5, lambda n=node: (work / f"{prefix}-{n}.app.pid").exists())
        for node in ("m1", "m2"):
            log = work / f"{prefix}-{node}.{daemon}.log"
            log.write_bytes(b"")
            self.logs[node] = log
            if daemon == "understudy":
                # Both daemons share this machine: a socket and state file each.
                args = [UNDERSTUDY, "run", "--config", understudy_config(work, setting), "--node", node,
                        "--socket", work / f"{prefix}-{node}.sock", "--state-file", work / f"{prefix}-{node}.state"]
            else:
                conf = keepalived_config(work, setting, node)
                args = ["keepalived", "-n", "-l", "-D", "--vrrp", "-f", conf,
                        "-p", work / f"{prefix}-{node}.ka.pid", "-r", work / f"{prefix}-{node}.ka.vrrp.pid",
                        "-c", work / f"{prefix}-{node}.ka.chk.pid"]
            self.procs[node] = spawn(prefix, node, args, log)

    def log(self, node):
        return self.logs[node].read_text(errors="replace")

    def steady(self):
        wait_until("the VIP on m1 only", 20, lambda: addresses(self.prefix, "m1").count(VIP) == 1
                   and VIP not in addresses(self.prefix, "m2"))
        wait_until("m1 answering on the VIP", 10, lambda: get_vip(self.prefix) == "m1")
        if self.daemon == "understudy":
            wait_until("the nodes to hear each other", 10,
                       lambda: "peer available" in self.log("m1") and "peer available" in self.log("m2"))
        else:
            wait_until("m2 in BACKUP", 10, lambda: "Entering BACKUP STATE" in self.log("m2"))
        # A few adverts/heartbeats and script runs before the fault.
        time.sleep(2.5 if self.setting == "default" else 1.0)

    def daemon_pids(self, node):
        """The daemon's processes (keepalived has a parent and a VRRP child)."""
        root = self.procs[node].pid
        pids = [root]
        for _ in range(3):
            kids = sh("pgrep", "-P", ",".join(map(str, pids)), check=False).stdout.split()
            new = [int(k) for k in kids if int(k) not in pids]
            if not new:
                break
            pids += new
        return pids

    def close(self):
        for node in ("m1", "m2"):
            p = self.procs.get(node)
            if p and p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for node in ("m1", "m2"):
            p = self.procs.get(node)
            if p:
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        for key, p in self.procs.items():
            if key.startswith("app") and p.poll() is None:
                p.kill()
                p.wait()
        sh(TOPOLOGY, "down", self.prefix, check=False)


def parse_stamp(text):
    """RFC 3339 UTC timestamp of a tracing line -> unix ns."""
    t = datetime.datetime.strptime(text[:26], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=datetime.timezone.utc)
    return int(t.timestamp() * 1e6) * 1000


def run_one(daemon, setting, fault, work):
    prefix = "usb"
    pair = Pair(prefix, daemon, setting, work)
    capture = client = None
    try:
        pair.steady()
        m2_mac = mac(prefix, "m2")
        cap_file = work / "capture.txt"
        capture = subprocess.Popen(["ip", "netns", "exec", f"{prefix}-cl", "tcpdump", "-i", "eth0", "-n", "-e",
                                    "-tt", "-l", "arp"], stdout=open(cap_file, "w"), stderr=subprocess.DEVNULL)
        stop = work / "client.stop"
        stop.unlink(missing_ok=True)
        out_file = work / "client.txt"
        client = subprocess.Popen(["ip", "netns", "exec", f"{prefix}-cl", "python3", CLIENT, VIP,
                                   str(WAIT_LIMIT + 5), stop], stdout=open(out_file, "w"))
        time.sleep(0.5)
        fault_ns = time.time_ns()
        if fault == "kill":
            pids = sh("ip", "netns", "pids", f"{prefix}-m1").stdout.split()
            sh("kill", "-9", *pids, check=False)
        elif fault == "linkdown":
            nsx(prefix, "m1", "ip", "link", "set", "eth0", "down")
        else:
            pid = (work / f"{prefix}-m1.app.pid").read_text().strip()
            sh("kill", pid)

        def answered_by_m2():
            return any(line.split(" ", 1)[1].strip() == "m2" for line in out_file.read_text().splitlines()
                       if " " in line and int(line.split(" ", 1)[0]) > fault_ns)
        try:
            wait_until("m2 to answer", WAIT_LIMIT, answered_by_m2, step=0.05)
        except RuntimeError:
            pass
        time.sleep(0.5)
        stop.touch()
        client.wait(timeout=5)
        time.sleep(0.2)
        capture.send_signal(signal.SIGINT)
        capture.wait(timeout=5)

        results = [(int(a), b) for a, b in (l.split(" ", 1) for l in out_file.read_text().splitlines() if " " in l)]
        after = [(t, r) for t, r in results if t > fault_ns]
        first_m2 = next((t for t, r in after if r == "m2"), None)
        failed = sum(1 for t, r in after if r.startswith("-") and (first_m2 is None or t < first_m2))
        garps = []
        for line in cap_file.read_text().splitlines():
            parts = line.split()
            if len(parts) < 2:
                continue
            t_ns = int(float(parts[0]) * 1e9)
            grat = GRATUITOUS.search(line) is not None
            if grat and parts[1] == m2_mac and t_ns > fault_ns:
                garps.append(t_ns)
        row = {
            "daemon": daemon, "setting": setting, "fault": fault,
            "outage_ms": (first_m2 - fault_ns) / 1e6 if first_m2 else None,
            "failed": failed,
            "garps": len(garps),
            "neigh_moved": neighbour(prefix) == m2_mac,
            "stale_vip_on_m1": VIP in addresses(prefix, "m1"),
        }
        if daemon == "understudy" and garps:
            decision = added = None
            for line in pair.log("m2").splitlines():
                claim = "state change" in line and "to=Claiming" in line
                if decision is None and claim and parse_stamp(line) > fault_ns:
                    decision = parse_stamp(line)
                elif decision is not None and added is None and "common IP added" in line:
                    added = parse_stamp(line)
            if decision and added:
                first = min(g for g in garps if g >= decision - 1_000_000) if any(
                    g >= decision - 1_000_000 for g in garps) else None
                row["decision_to_vip_ms"] = (added - decision) / 1e6
                row["decision_to_garp_ms"] = (first - decision) / 1e6 if first else None
        return row
    finally:
        for p in (client, capture):
            if p and p.poll() is None:
                p.kill()
                p.wait()
        pair.close()


def proc_usage(pid):
    """(RSS kB, CPU seconds incl. reaped children) of one process."""
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return rss, ticks / os.sysconf("SC_CLK_TCK")


def footprint(setting, work, seconds):
    """Both pairs side by side; the Active (m1) daemon's memory and CPU."""
    tag = setting[0]
    pairs = [Pair(f"usfu{tag}", "understudy", setting, work), Pair(f"usfk{tag}", "keepalived", setting, work)]
    try:
        for p in pairs:
            p.steady()
        start = {p.daemon: [proc_usage(pid) for pid in p.daemon_pids("m1")] for p in pairs}
        time.sleep(seconds)
        rows = []
        for p in pairs:
            pids = p.daemon_pids("m1")
            end = [proc_usage(pid) for pid in pids]
            cpu = sum(c for _, c in end) - sum(c for _, c in start[p.daemon])
            rows.append({"daemon": p.daemon, "setting": setting, "rss_kb": sum(r for r, _ in end),
                         "processes": len(pids), "cpu_s": cpu, "seconds": seconds})
        return rows
    finally:
        for p in pairs:
            p.close()


def stats(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return statistics.median(values), min(values), max(values)


def fmt(s, unit=""):
    if s is None:
        return "n/a"
    med, lo, hi = s
    return f"{med:.0f}{unit} ({lo:.0f}–{hi:.0f})"


def report(rows, fp_rows, reps, elapsed):
    lines = ["# Failover benchmark: understudy vs keepalived", "",
             f"Generated by `sudo bench/failover.sh` on {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; "
             f"{reps} repetitions per cell, interleaved; {elapsed / 60:.1f} min.", "",
             "Outage = fault → first answer from m2 at the client (GET every 10 ms, 100 ms limit). "
             "Cells: median (min–max). Ratio = understudy median / keepalived median.", "",
             "| setting | fault | keepalived outage ms | understudy outage ms | ratio | failed requests k / u "
             "| GARPs seen k / u | neighbour moved k / u | stale VIP on old node k / u |",
             "|---|---|---|---|---|---|---|---|---|"]
    for setting in SETTINGS:
        for fault in FAULTS:
            cell = {d: [r for r in rows if r["daemon"] == d and r["setting"] == setting and r["fault"] == fault]
                    for d in ("keepalived", "understudy")}
            o = {d: stats([r["outage_ms"] for r in cell[d]]) for d in cell}
            ratio = f"{o['understudy'][0] / o['keepalived'][0]:.2f}" if o["understudy"] and o["keepalived"] else "n/a"
            f = {d: stats([r["failed"] for r in cell[d]]) for d in cell}
            g = {d: stats([r["garps"] for r in cell[d]]) for d in cell}
            n = {d: f"{sum(r['neigh_moved'] for r in cell[d])}/{len(cell[d])}" for d in cell}
            st = {d: f"{sum(r['stale_vip_on_m1'] for r in cell[d])}/{len(cell[d])}" for d in cell}
            lines.append(f"| {setting} | {fault} | {fmt(o['keepalived'])} | {fmt(o['understudy'])} | {ratio} | "
                         f"{fmt(f['keepalived'])} / {fmt(f['understudy'])} | {fmt(g['keepalived'])} / {fmt(g['understudy'])} | "
                         f"{n['keepalived']} / {n['understudy']} | {st['keepalived']} / {st['understudy']} |")
    lat = [r for r in rows if r["daemon"] == "understudy" and "decision_to_vip_ms" in r]
    lines += ["", "## Takeover latency inside understudy (m2's log and the client's capture)", "",
              "| setting | decision → VIP added ms | decision → first GARP on the wire ms |", "|---|---|---|"]
    for setting in SETTINGS:
        sel = [r for r in lat if r["setting"] == setting]
        a = stats([r["decision_to_vip_ms"] for r in sel])
        b = stats([r.get("decision_to_garp_ms") for r in sel])
        f2 = lambda s: "n/a" if s is None else f"{s[0]:.2f} ({s[1]:.2f}–{s[2]:.2f})"
        lines.append(f"| {setting} | {f2(a)} | {f2(b)} |")
    lines += ["", "## Footprint of the Active daemon at steady state", "",
              "| setting | daemon | processes | RSS KiB | CPU s over the window | window s |", "|---|---|---|---|---|---|"]
    for r in fp_rows:
        lines.append(f"| {r['setting']} | {r['daemon']} | {r['processes']} | {r['rss_kb']} | {r['cpu_s']:.2f} | {r['seconds']} |")
    lines += ["", "keepalived's CPU includes the `curl` its vrrp_script runs every second (reaped children); "
              "understudy probes in-process.", ""]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--footprint-seconds", type=int, default=60)
    ap.add_argument("--out", default=str(ROOT / "bench/results.md"))
    ap.add_argument("--json", default=str(ROOT / "bench/results.json"))
    args = ap.parse_args()
    began = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="understudy-bench."))
    sh(UNDERSTUDY, "keygen", work / "secret")
    rows = []
    for rep in range(args.reps):
        for fault in FAULTS:
            for setting in SETTINGS:
                for daemon in ("keepalived", "understudy"):
                    row = run_one(daemon, setting, fault, work)
                    rows.append(row)
                    print(f"rep {rep + 1}/{args.reps} {setting:10} {fault:8} {daemon:10} "
                          f"outage {row['outage_ms'] if row['outage_ms'] is None else round(row['outage_ms'])} ms "
                          f"failed {row['failed']} garps {row['garps']}", flush=True)
    fp_rows = []
    for setting in SETTINGS:
        fp_rows += footprint(setting, work, args.footprint_seconds)
        print(f"footprint {setting}: {fp_rows[-2:]}", flush=True)
    text = report(rows, fp_rows, args.reps, time.monotonic() - began)
    Path(args.out).write_text(text)
    Path(args.json).write_text(json.dumps({"runs": rows, "footprint": fp_rows}, indent=1))
    print(text)


if __name__ == "__main__":
    main()
