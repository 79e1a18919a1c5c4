#!/usr/bin/env python3
"""A minimal WebDriver client for the console test: starts chromedriver and a
headless chromium, then reads one JSON command per line on stdin and writes
one JSON answer per line on stdout. Standard library only.

usage: webdriver.py PORT PROFILE_DIR
commands: {"op": "get", "url"}, {"op": "fill", "css", "text"},
{"op": "click", "css"}, {"op": "text", "css"}, {"op": "displayed", "css"},
{"op": "accept"}, {"op": "script", "script"}, {"op": "screenshot", "path"},
{"op": "quit"}
"""
import base64
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

port, profile = int(sys.argv[1]), sys.argv[2]
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
driver = subprocess.Popen(
    ["chromedriver", f"--port={port}", "--allowed-ips=127.0.0.1"],
    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
base = f"http://127.0.0.1:{port}"


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)["value"]
    except urllib.error.HTTPError as e:
        raise RuntimeError(json.load(e)["value"].get("message", str(e)))


for _ in range(100):  # bounded: chromedriver listens within 10 s
    try:
        call("GET", "/status")
        break
    except Exception:
        time.sleep(0.1)
session = call("POST", "/session", {"capabilities": {"alwaysMatch": {
    "browserName": "chrome",
    "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": [
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--window-size=1100,1000", f"--user-data-dir={profile}"]}}}})["sessionId"]
s = f"/session/{session}"


def element(css):
    return call("POST", s + "/element", {"using": "css selector", "value": css})[ELEMENT]


def run(cmd):
    op = cmd["op"]
    if op == "get":
        return call("POST", s + "/url", {"url": cmd["url"]})
    if op == "fill":
        e = element(cmd["css"])
        call("POST", f"{s}/element/{e}/clear", {})
        return call("POST", f"{s}/element/{e}/value", {"text": cmd["text"]})
    if op == "click":
        return call("POST", f"{s}/element/{element(cmd['css'])}/click", {})
    if op == "text":
        return call("GET", f"{s}/element/{element(cmd['css'])}/text")
    if op == "displayed":
        return call("GET", f"{s}/element/{element(cmd['css'])}/displayed")
    if op == "accept":
        return call("POST", s + "/alert/accept", {})
    if op == "script":
        return call("POST", s + "/execute/sync", {"script": cmd["script"], "args": []})
    if op == "screenshot":
        png = base64.b64decode(call("GET", s + "/screenshot"))
        with open(cmd["path"], "wb") as f:
            f.write(png)
        return len(png)
    raise RuntimeError(f"unknown op {op}")


print(json.dumps({"ok": True, "value": "ready"}), flush=True)
try:
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] == "quit":
            break
        try:
            print(json.dumps({"ok": True, "value": run(cmd)}), flush=True)
        except Exception as e:  # the test sees the message
            print(json.dumps({"ok": False, "value": str(e)}), flush=True)
finally:
    try:
        call("DELETE", s)
    except Exception:
        pass
    driver.terminate()
    driver.wait(timeout=10)
