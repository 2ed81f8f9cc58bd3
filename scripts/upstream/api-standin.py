#!/usr/bin/env python3
"""A stand-in for CHT's API in cht-dev's upstream-built test images (scripts/upstream-images.sh).

The real API's npm dependency tree cannot be installed here, so this answers on :5988 as far
as cht-dev and its tests need, using CouchDB for real as the API does:
- COUCH_URL (http://USER:PASSWORD@haproxy:5984/medic) names CouchDB, through HAProxy;
- at start it creates the `medic` database, retrying until CouchDB answers;
- /api/info answers {"version": ...} only while CouchDB answers and `medic` exists (503 with
  the start-up steps before, as /api/v1/startup-progress does);
- / serves a page that says what this is;
- every other path goes to CouchDB with the client's own credentials (as the real API proxies
  /medic/... and the admin paths), so a document written through nginx lands in CouchDB.
"""

import base64
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COUCH = urllib.parse.urlsplit(os.environ["COUCH_URL"])
DB = COUCH.path.strip("/") or "medic"
ADMIN = "Basic " + base64.b64encode(
    f"{urllib.parse.unquote(COUCH.username or '')}:{urllib.parse.unquote(COUCH.password or '')}".encode()
).decode()
VERSION = os.environ.get("CHT_VERSION", "0.0.0")
PAGE = b"""<!doctype html><html><head><title>CHT API stand-in</title></head>
<body><h1>CHT API stand-in</h1><p>served by cht-dev's upstream-built test images</p></body></html>
"""
# Headers passed through in each direction (hop-by-hop ones never are).
TO_COUCH = ("authorization", "content-type", "accept", "cookie", "if-match", "if-none-match", "destination")
FROM_COUCH = ("content-type", "etag", "set-cookie", "www-authenticate", "location", "cache-control")

state = {"medic": False, "step": "waiting for CouchDB"}


def couch(method, path, body=None, headers=None, timeout=30):
    """One request to CouchDB; returns (status, headers, body)."""
    conn = http.client.HTTPConnection(COUCH.hostname, COUCH.port or 5984, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.getheaders(), resp.read()
    finally:
        conn.close()


def create_medic():
    """Creates the database, retrying until CouchDB answers (as the API's start-up does)."""
    while True:
        try:
            status, _, body = couch("PUT", "/" + DB, headers={"Authorization": ADMIN}, timeout=10)
            if status in (201, 202, 412):
                state["medic"] = True
                state["step"] = "ready"
                print(f"api stand-in: database {DB} ready ({status})", flush=True)
                return
            state["step"] = f"CouchDB answered {status} to PUT /{DB}"
            print(f"api stand-in: PUT /{DB}: {status} {body[:200]!r}", flush=True)
        except OSError as err:
            state["step"] = f"waiting for CouchDB ({err})"
        time.sleep(1)


def couch_up():
    try:
        status, _, _ = couch("GET", "/" + DB, headers={"Authorization": ADMIN}, timeout=5)
        return status == 200
    except OSError:
        return False


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stdout.write("api stand-in: %s %s\n" % (self.address_string(), fmt % args))

    def reply(self, status, body, content_type="application/json", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def proxy(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() in TO_COUCH}
        try:
            status, rheaders, rbody = couch(self.command, self.path, body, headers, timeout=600)
        except OSError as err:
            self.reply(502, json.dumps({"error": "bad_gateway", "reason": str(err)}).encode())
            return
        passed = [(k, v) for k, v in rheaders if k.lower() in FROM_COUCH and k.lower() != "content-type"]
        ctype = next((v for k, v in rheaders if k.lower() == "content-type"), "application/json")
        self.reply(status, rbody, ctype, passed)

    def route(self):
        path = urllib.parse.urlsplit(self.path).path
        if path == "/api/info":
            if state["medic"] and couch_up():
                self.reply(200, json.dumps({"version": VERSION}).encode())
            else:
                self.reply(503, json.dumps({"error": "Service unavailable", "step": state["step"]}).encode())
        elif path == "/api/v1/startup-progress":
            done = state["medic"]
            steps = {"couchdb": {"started": True, "finished": done}, "medic": {"started": True, "finished": done}}
            self.reply(200, json.dumps(steps).encode())
        elif path == "/" and self.command in ("GET", "HEAD"):
            self.reply(200, PAGE, "text/html")
        else:
            self.proxy()

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_COPY = route


def main():
    threading.Thread(target=create_medic, daemon=True).start()
    server = ThreadingHTTPServer(("0.0.0.0", 5988), Handler)
    server.daemon_threads = True
    import signal

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    print(f"api stand-in {VERSION}: listening on :5988, CouchDB at {COUCH.hostname}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
