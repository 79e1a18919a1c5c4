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
import random
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

# Cells: only the heartbeat/advert interval and the probe interval vary;
# every other key is at its shipped default (understudy: peer_timeout =
# 3 x heartbeat, announce.probe 300 ms, GARP 5 rounds every 500 ms, probe
# timeout = half the interval; keepalived: its defaults). keepalived checks
# the application with a vrrp_script every second (its minimum), fall 2 /
# rise 2; understudy's grace is one probe interval (the same "second failed
# check triggers") and rise 2 (its default). At 20 ms keepalived runs at
# its minimum advert interval (10 ms, VRRPv3).
SETTINGS = {
    "1s": {"advert": "1", "vrrp_version": 2, "hb": "1s", "interval": "1s", "grace": "1s"},
    "100ms": {"advert": "0.1", "vrrp_version": 3, "hb": "100ms", "interval": "100ms", "grace": "100ms"},
    "20ms": {"advert": "0.01", "vrrp_version": 3, "hb": "20ms", "interval": "20ms", "grace": "20ms"},
    # The soak isolates the heartbeat path: 20 ms heartbeats (keepalived at
    # 0.02 s adverts), and both daemons checking the application every
    # second (keepalived's minimum), second failure triggers.
    "soak": {"advert": "0.02", "vrrp_version": 3, "hb": "20ms", "interval": "1s", "grace": "1s"},
}
CELLS = ["1s", "100ms", "20ms"]
HEARTBEAT_PORT = 7046


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
grace = "{s['grace']}"

[heartbeat]
interval = "{s['hb']}"
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
        time.sleep(2.5 if SETTINGS[self.setting]["interval"] == "1s" else 1.0)

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


def run_one(daemon, setting, fault, work, prefix="usb"):
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
        # The fault at a random phase of the heartbeats (adverts): waits
        # made of whole intervals would otherwise put it just after one.
        time.sleep(0.5 + random.uniform(0, float(SETTINGS[setting]["advert"])))
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

        results = sorted((int(a), b) for a, b in (l.split(" ", 1) for l in out_file.read_text().splitlines()
                                                  if " " in l))
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
                claim = "state change" in line and "-> adding the common IP" in line
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
    """Each daemon's pair alone at steady state: memory and CPU (percent of
    one core) of the Active (m1) and the Passive (m2) daemon."""
    rows = []
    for daemon in ("understudy", "keepalived"):
        pair = Pair(f"usf{daemon[0]}", daemon, setting, work)
        try:
            pair.steady()
            start = {n: [proc_usage(pid) for pid in pair.daemon_pids(n)] for n in ("m1", "m2")}
            time.sleep(seconds)
            for n in ("m1", "m2"):
                pids = pair.daemon_pids(n)
                end = [proc_usage(pid) for pid in pids]
                cpu = sum(c for _, c in end) - sum(c for _, c in start[n])
                rows.append({"daemon": daemon, "setting": setting, "node": "Active" if n == "m1" else "Passive",
                             "rss_kb": sum(r for r, _ in end), "processes": len(pids),
                             "cpu_pct": 100 * cpu / seconds, "seconds": seconds})
        finally:
            pair.close()
    return rows


def capture(prefix, what, out):
    """tcpdump in m2's namespace of what m1 sends it (heartbeats or adverts)."""
    return subprocess.Popen(["ip", "netns", "exec", f"{prefix}-m2", "tcpdump", "-i", "eth0", "-n", "-tt", "-l",
                             "-Q", "in", what], stdout=open(out, "w"), stderr=subprocess.DEVNULL)


def gaps_ms(path, since_ns, until_ns):
    """Gaps between consecutive captured packets in [since, until), in ms."""
    stamps = []
    for line in Path(path).read_text().splitlines():
        try:
            t = float(line.split()[0])
        except (ValueError, IndexError):
            continue
        if since_ns <= t * 1e9 < until_ns:
            stamps.append(t)
    return [(b - a) * 1000 for a, b in zip(stamps, stamps[1:])]


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else None


def moves(pair, offsets):
    """VIP moves in the logs since `offsets` (false failovers when no fault
    was injected): m2 claiming, or m1 giving the VIP up."""
    text = {n: pair.log(n)[offsets[n]:] for n in ("m1", "m2")}
    if pair.daemon == "understudy":
        return (text["m2"].count("-> adding the common IP") + text["m1"].count("-> stopping the application"),
                text["m2"].count("peer unavailable"))
    return (text["m2"].count("Entering MASTER STATE") + text["m1"].count("Entering BACKUP STATE"),
            text["m2"].count("Entering MASTER STATE"))


def soak(work, seconds, workers):
    """Both daemons' pairs at 20 ms for `seconds` with every core busy
    (stress-ng): false failovers, and the gaps between the heartbeats
    (adverts) the Active node sends, before and under the load."""
    pairs = [Pair("ussu", "understudy", "soak", work), Pair("ussk", "keepalived", "soak", work)]
    stress = None
    caps = []
    try:
        for p in pairs:
            p.steady()
        files = {p.daemon: work / f"soak-{p.daemon}.txt" for p in pairs}
        caps = [capture(p.prefix, f"udp port {HEARTBEAT_PORT}" if p.daemon == "understudy" else "proto 112",
                        files[p.daemon]) for p in pairs]
        idle_from = time.time_ns()
        time.sleep(20)
        offsets = {p.daemon: {n: len(p.log(n)) for n in ("m1", "m2")} for p in pairs}
        start = {p.daemon: sum(proc_usage(pid)[1] for pid in p.daemon_pids("m1")) for p in pairs}
        loaded_from = time.time_ns()
        stress = subprocess.Popen(["stress-ng", "--cpu", str(workers), "--timeout", f"{seconds}s", "--quiet"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stress.wait(timeout=seconds + 60)
        loaded_to = time.time_ns()
        rows = []
        for p in pairs:
            cpu = sum(proc_usage(pid)[1] for pid in p.daemon_pids("m1")) - start[p.daemon]
            moved, near = moves(p, offsets[p.daemon])
            idle = gaps_ms(files[p.daemon], idle_from, loaded_from)
            loaded = gaps_ms(files[p.daemon], loaded_from, loaded_to)
            rows.append({"daemon": p.daemon, "seconds": seconds, "workers": workers,
                         "false_failovers": moved, "near_misses": near,
                         "cpu_pct": 100 * cpu / ((loaded_to - loaded_from) / 1e9),
                         "idle": {q: percentile(idle, v) for q, v in (("p50", .5), ("p99", .99), ("max", 1))},
                         "loaded": {q: percentile(loaded, v) for q, v in
                                    (("p50", .5), ("p99", .99), ("p999", .999), ("max", 1))},
                         "packets": len(loaded) + 1})
        return rows
    finally:
        if stress and stress.poll() is None:
            stress.kill()
            stress.wait()
        for c in caps:
            c.send_signal(signal.SIGINT)
            c.wait(timeout=5)
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


# Targets (issue 12): outage ratio to keepalived, or an absolute bound.
def target(setting, fault):
    if setting == "20ms" and fault in ("kill", "linkdown"):
        return ("median < 100 ms", lambda k, u: u < 100)
    if fault in ("kill", "linkdown"):
        return ("≤ 0.8 ×", lambda k, u: u <= 0.8 * k)
    if setting == "1s":
        # Equal check counts and intervals (1 s, second failure).
        return ("≤ 1.0 ×", lambda k, u: u <= k)
    return ("≤ 0.5 ×", lambda k, u: u <= 0.5 * k)


def outage_table(rows):
    lines = ["| cell | fault | keepalived outage ms | understudy outage ms | ratio | target | met "
             "| failed requests k / u | GARPs seen k / u | neighbour moved k / u | stale VIP on old node k / u |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for setting in CELLS:
        for fault in FAULTS:
            cell = {d: [r for r in rows if r["daemon"] == d and r["setting"] == setting and r["fault"] == fault]
                    for d in ("keepalived", "understudy")}
            o = {d: stats([r["outage_ms"] for r in cell[d]]) for d in cell}
            both = o["understudy"] and o["keepalived"]
            ratio = f"{o['understudy'][0] / o['keepalived'][0]:.2f}" if both else "n/a"
            words, check = target(setting, fault)
            met = ("yes" if check(o["keepalived"][0], o["understudy"][0]) else "**no**") if both else "n/a"
            f = {d: stats([r["failed"] for r in cell[d]]) for d in cell}
            g = {d: stats([r["garps"] for r in cell[d]]) for d in cell}
            n = {d: f"{sum(r['neigh_moved'] for r in cell[d])}/{len(cell[d])}" for d in cell}
            st = {d: f"{sum(r['stale_vip_on_m1'] for r in cell[d])}/{len(cell[d])}" for d in cell}
            lines.append(f"| {setting} | {fault} | {fmt(o['keepalived'])} | {fmt(o['understudy'])} | {ratio} | "
                         f"{words} | {met} | {fmt(f['keepalived'])} / {fmt(f['understudy'])} | "
                         f"{fmt(g['keepalived'])} / {fmt(g['understudy'])} | "
                         f"{n['keepalived']} / {n['understudy']} | {st['keepalived']} / {st['understudy']} |")
    return lines


def latency_table(rows):
    lat = [r for r in rows if r["daemon"] == "understudy" and "decision_to_vip_ms" in r]
    lines = ["| cell | decision → VIP added ms | decision → first GARP on the wire ms | target < 1 ms met |",
             "|---|---|---|---|"]
    f2 = lambda s: "n/a" if s is None else f"{s[0]:.2f} ({s[1]:.2f}–{s[2]:.2f})"
    for setting in CELLS:
        sel = [r for r in lat if r["setting"] == setting]
        a = stats([r["decision_to_vip_ms"] for r in sel])
        b = stats([r.get("decision_to_garp_ms") for r in sel])
        met = "n/a" if b is None else ("yes" if b[0] < 1 else "**no**")
        lines.append(f"| {setting} | {f2(a)} | {f2(b)} | {met} |")
    return lines


def footprint_table(fp_rows):
    lines = ["| cell | daemon | node | processes | RSS KiB | CPU % of one core | window s |", "|---|---|---|---|---|---|---|"]
    for r in fp_rows:
        lines.append(f"| {r['setting']} | {r['daemon']} | {r['node']} | {r['processes']} | {r['rss_kb']} | "
                     f"{r['cpu_pct']:.2f} | {r['seconds']} |")
    return lines


def soak_table(soak_rows):
    ms = lambda v: "n/a" if v is None else f"{v:.1f}"
    lines = ["| daemon | false failovers (target 0) | peer declared gone | gaps idle p50 / p99 / max ms "
             "| gaps loaded p50 / p99 / p99.9 / max ms | packets | CPU % of one core (Active, loaded) |",
             "|---|---|---|---|---|---|---|"]
    for r in soak_rows:
        i, l = r["idle"], r["loaded"]
        lines.append(f"| {r['daemon']} | {r['false_failovers']} | {r['near_misses']} | "
                     f"{ms(i['p50'])} / {ms(i['p99'])} / {ms(i['max'])} | "
                     f"{ms(l['p50'])} / {ms(l['p99'])} / {ms(l['p999'])} / {ms(l['max'])} | {r['packets']} | "
                     f"{r['cpu_pct']:.2f} |")
    return lines


def report(rows, fp_rows, soak_rows, args, elapsed):
    soak_desc = (f"{soak_rows[0]['seconds'] // 60} min per daemon (both at once) at 20 ms heartbeats with "
                 f"`stress-ng --cpu {soak_rows[0]['workers']}`" if soak_rows else "not run")
    return "\n".join(
        ["# Failover benchmark: understudy vs keepalived", "",
         f"Generated by `sudo bench/failover.sh` on {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; "
         f"{args.reps} repetitions per cell, interleaved; soak {soak_desc}; {elapsed / 60:.1f} min in all.", "",
         "Every key at its shipped default except the heartbeat/advert interval, the probe interval and the grace "
         "(one probe interval, as keepalived's `fall 2`): see `SETTINGS` in bench/run.py. "
         "Outage = fault → first answer from m2 at the client (GET every 10 ms, 100 ms limit), the fault at a "
         "random phase. Cells: median (min–max). Ratio = understudy median / keepalived median.", ""]
        + outage_table(rows)
        + ["", "## Takeover latency inside understudy (m2's log and the client's capture)", ""]
        + latency_table(rows)
        + ["", "## Footprint at steady state (each pair alone)", ""]
        + footprint_table(fp_rows)
        + ["", "keepalived's CPU includes the `curl` its vrrp_script runs every second (reaped children); "
           "understudy probes in-process.", "",
           "## Soak: 20 ms heartbeats with every core busy", "",
           "Both pairs at once, heartbeats (adverts) every 20 ms, the application checked every second by both "
           "(keepalived's minimum script interval; understudy grace 1 s), `stress-ng --cpu N` on all N cores. "
           "False failovers = the VIP moving with no fault injected (m2 claiming / becoming MASTER, or m1 "
           "giving up). Gaps = time between consecutive heartbeats (VRRP adverts) of the Active node as captured "
           "on the Passive node, idle (20 s before the load) and loaded.", ""]
        + soak_table(soak_rows) + [""])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--footprint-seconds", type=int, default=30)
    ap.add_argument("--soak-seconds", type=int, default=600)
    ap.add_argument("--only", choices=["failover", "soak"], help="run one part only")
    ap.add_argument("--cells", default=",".join(CELLS), help="the failover cells to run")
    ap.add_argument("--out", default=str(ROOT / "bench/results.md"))
    ap.add_argument("--json", default=str(ROOT / "bench/results.json"))
    args = ap.parse_args()
    CELLS[:] = [c for c in args.cells.split(",") if c in CELLS]
    began = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="understudy-bench."))
    sh(UNDERSTUDY, "keygen", work / "secret")
    rows, fp_rows, soak_rows = [], [], []
    if args.only != "soak":
        for rep in range(args.reps):
            for fault in FAULTS:
                for setting in CELLS:
                    for daemon in ("keepalived", "understudy"):
                        row = run_one(daemon, setting, fault, work)
                        rows.append(row)
                        print(f"rep {rep + 1}/{args.reps} {setting:6} {fault:8} {daemon:10} "
                              f"outage {row['outage_ms'] if row['outage_ms'] is None else round(row['outage_ms'])} "
                              f"ms failed {row['failed']} garps {row['garps']}", flush=True)
        for setting in CELLS:
            fp_rows += footprint(setting, work, args.footprint_seconds)
            print(f"footprint {setting}: {fp_rows[-4:]}", flush=True)
    if args.only != "failover":
        soak_rows = soak(work, args.soak_seconds, os.cpu_count() or 2)
        print(f"soak: {soak_rows}", flush=True)
    text = report(rows, fp_rows, soak_rows, args, time.monotonic() - began)
    Path(args.out).write_text(text)
    Path(args.json).write_text(json.dumps({"runs": rows, "footprint": fp_rows, "soak": soak_rows}, indent=1))
    print(text)


if __name__ == "__main__":
    main()
