#!/usr/bin/env python3
"""The demo's timeline in words: what each node did and what the client saw,
in ms after the fault, from the daemons' logs and the client's record.

usage: timeline.py FAULT_MS WORKDIR [dual]   (WORKDIR holds m1.log, m2.log
and client.events, as examples/demo.sh writes them; "dual" when the common
IP has an IPv6 address too, so that its announcement is named)

Every line of the logs that matters is put in words; a line no pattern
knows is shown as its message without its error fields, so that no raw
error text (an OS error number) reaches the demo's output.
"""
import datetime
import re
import sys

PEER = {"m1": "m2", "m2": "m1"}

# (pattern on the log message, words; {node}, {peer} and the pattern's
# groups are filled in). The first match wins; None leaves the line out.
WORDS = [
    (r"takeover in (.+?) peer=\S+ cause=nobody holds the common IP",
     "{node}: nobody holds the common IP; {node} claims it in {1} unless another node does"),
    (r"takeover in (.+?) peer=\S+ cause=(.*)",
     "{node} sees {peer} failing ({2}): takeover in {1} unless it recovers"),
    (r"this node is failing; release in (.+?) probe=\"local\" why=(.*)",
     "{node}'s own application stopped answering ({2}); it hands over in {1} unless it recovers"),
    (r"peer application not answering probe=\"peer\" why=(.*)",
     "{node} cannot reach {peer}'s application ({1})"),
    (r"\S+ failed for the grace period; asking it to release the common IP why=(.*)",
     "{node}: {peer} failed for the whole grace period ({1}); {node} asks it to hand the common IP over"),
    (r"promoted by the administrator; asking",
     "{node} was promoted by the administrator; it asks {peer} to hand the common IP over"),
    (r"\S+ is in maintenance; asking it to hand the common IP over",
     "{node}: {peer} is in maintenance; {node} asks it to hand the common IP over"),
    (r"handed the common IP over; waiting for \S+ to claim it",
     "{node} handed the common IP over and waits for {peer} to claim it"),
    (r"state change: (.+?) -> (.+?) cause=(.*) term=\d+$", "{node}: {1} -> {2}, because {3}"),
    (r"state change: (.+?) -> (.+)$", "{node}: {1} -> {2}"),
    (r"application stop ms=(\S+) ok=true", "{node} stopped its application ({1} ms)"),
    (r"common IP removed ms=(\S+) ok=true", "{node} removed the common IP from its NIC ({1} ms)"),
    (r"common IP added ms=(\S+) ok=true", "{node} added the common IP to its NIC ({1} ms)"),
    (r"first announcement sent ms=(\S+) ok=true",
     "{node} announced the common IP ({announcement}): clients now send to its MAC"),
    (r"announcement repeat failed",
     "{node} cannot send its repeated announcements: its NIC cannot send"),
    (r"application start ms=(\S+) ok=true", "{node} started its application, which answers ({1} ms)"),
    (r"claimed the common IP; application healthy ms=(\S+) term=(\d+)",
     "{node} is Active: {1} ms from the decision to a healthy application (term {2})"),
    (r"released the common IP ms=(\S+)", "{node} has let go of the common IP ({1} ms)"),
    (r"peer state peer=\S+ from=(\S+) to=(\S+)", "{node} hears {peer} go from {1} to {2}"),
    (r"peer unavailable peer=\S+ signal=(.*)", "{node} stops hearing {peer}: {1}"),
    (r"the peer is going silent while failing; looking",
     "{node} looks whether anyone still answers for the common IP (ARP probe, GET through it)"),
    (r"looked at the common IP ms=(\S+) holder=\"none\"",
     "{node}: no other host answers for the common IP ({1} ms)"),
    (r"looked at the common IP ms=(\S+) holder=\"(\S+)\"",
     "{node}: host {2} still answers for the common IP ({1} ms)"),
    (r"this node's NIC is unusable probe=\"nic\" why=(.*)", "{node}'s NIC is unusable ({1})"),
    (r"takeover held back why=(.*)", "{node} will not take over: {1}"),
    (r"takeover cancelled: (.*)", "{node}: takeover cancelled ({1})"),
    (r"nobody holds the common IP; asking the primary",
     "{node}: nobody holds the common IP; it asks {peer} (the primary) to let it claim"),
    (r"the peer asks for the common IP; letting it claim", "{node} lets {peer} claim the common IP"),
    (r"the peer asked for the common IP", None),
]

LINE = re.compile(r"(\S+Z)\s+(\w+)\s+\S+: (.*)")


# Set from the command line: how the common IP is announced.
ANNOUNCEMENT = {"ipv4": "gratuitous ARP", "dual": "gratuitous ARP, IPv6 neighbour advertisement"}


def words(node, message, family):
    # An OS error's number is for the log, not for a person reading this.
    message = re.sub(r" \(os error \d+\)", "", message)
    for pattern, text in WORDS:
        m = re.match(pattern, message)
        if m:
            if text is None:
                return None
            return text.format(None, *m.groups(), node=node, peer=PEER[node],
                               announcement=ANNOUNCEMENT[family])
    # Unknown: the message, without its fields (error=..., why=...).
    bare = re.sub(r" \w+=.*$", "", message)
    return f"{node}: {bare}"


def micros(stamp):
    t = datetime.datetime.strptime(stamp[:26], "%Y-%m-%dT%H:%M:%S.%f")
    return int(t.replace(tzinfo=datetime.timezone.utc).timestamp() * 1_000_000)


def main():
    fault, work = int(sys.argv[1]), sys.argv[2]
    family = "dual" if sys.argv[3:] == ["dual"] else "ipv4"
    events = []
    for node in ("m1", "m2"):
        for line in open(f"{work}/{node}.log"):
            m = LINE.match(line)
            if not m or micros(m[1]) < (fault - 5) * 1000:
                continue
            level, message = m[2], m[3]
            # Debug lines: only the steps of a claim or a release, and the
            # look at the common IP before a claim.
            if level == "DEBUG" and not message.startswith(("state change:", "looked at the common IP")):
                continue
            if level == "TRACE":
                continue
            text = words(node, message, family)
            if text:
                events.append((micros(m[1]), text))
    for line in open(f"{work}/client.events"):
        ms, text = line.split(" ", 1)
        events.append((int(ms) * 1000, text.strip()))
    for us, text in sorted(events, key=lambda e: e[0]):
        print(f"{(us - fault * 1000) / 1000:>+8.1f} ms  {text}")


if __name__ == "__main__":
    main()
