#!/usr/bin/env python3
"""A tiny application for tests and the demo: answers GET with its node name,
on every IPv4 and IPv6 address (one dual-stack socket).

usage: nodeapp.py NAME PORT PIDFILE [MAINTFILE]
Writes its PID to PIDFILE, serves until SIGTERM, then removes PIDFILE.
While MAINTFILE exists it answers 503 (its maintenance signal).
With NODEAPP_IPV4_ONLY=1 in its environment it listens on 0.0.0.0 only,
as an application that was never told about IPv6.
"""
import http.server
import os
import signal
import socket
import sys

name, port, pidfile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
maintfile = sys.argv[4] if len(sys.argv) > 4 else None


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (name + "\n").encode()
        self.send_response(503 if maintfile and os.path.exists(maintfile) else 200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def stop(*_):
    try:
        os.unlink(pidfile)
    except FileNotFoundError:
        pass
    os._exit(0)


class DualStack(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


signal.signal(signal.SIGTERM, stop)
if os.environ.get("NODEAPP_IPV4_ONLY") == "1":
    server = http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler)
else:
    server = DualStack(("::", port), Handler)
with open(pidfile + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(pidfile + ".tmp", pidfile)
server.serve_forever()
