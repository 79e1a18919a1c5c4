#!/usr/bin/env python3
"""A test mail server: records each message it receives as one JSON line.

usage: smtp_sink.py ADDRESS PORT OUTFILE          (a real SMTP server, aiosmtpd)
       smtp_sink.py ADDRESS PORT OUTFILE --stall  (accepts and never answers)
"""
import json
import socket
import sys
import threading
import time

addr, port, outfile = sys.argv[1], int(sys.argv[2]), sys.argv[3]

if "--stall" in sys.argv:
    # A dead mail server: the TCP handshake succeeds, then silence.
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((addr, port))
    server.listen(64)
    held = []
    with open(outfile, "a") as f:
        f.write(json.dumps({"ready": True}) + "\n")
    while True:
        conn, _ = server.accept()
        held.append(conn)  # keep it open, say nothing

from aiosmtpd.controller import Controller


class Record:
    async def handle_DATA(self, server, session, envelope):
        with open(outfile, "a") as f:
            f.write(json.dumps({
                "mail_from": envelope.mail_from,
                "rcpt_tos": envelope.rcpt_tos,
                "data": envelope.content.decode("utf8", errors="replace"),
            }) + "\n")
        return "250 OK"


controller = Controller(Record(), hostname=addr, port=port)
controller.start()
with open(outfile, "a") as f:
    f.write(json.dumps({"ready": True}) + "\n")
threading.Event().wait()
