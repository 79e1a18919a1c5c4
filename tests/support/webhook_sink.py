#!/usr/bin/env python3
"""A test webhook receiver: records each POST (headers and body) as one
JSON line and answers 204.

usage: webhook_sink.py ADDRESS PORT OUTFILE
"""
import http.server
import json
import sys

addr, port, outfile = sys.argv[1], int(sys.argv[2]), sys.argv[3]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(outfile, "a") as f:
            f.write(json.dumps({
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("utf8", errors="replace"),
            }) + "\n")
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer((addr, port), Handler)
with open(outfile, "a") as f:
    f.write(json.dumps({"ready": True}) + "\n")
server.serve_forever()
