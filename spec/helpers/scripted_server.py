#!/usr/bin/env python3
"""A scripted HTTP/1.1 server for spec/nginx_call_cases_spec.lua (loopback only).

    scripted_server.py --port-file FILE --cases FILE.json [--lifetime SECONDS]

Replays the call machine's scripted cases (tests/call_cases.h, read by
spec/helpers/call_cases.lua and written to FILE.json as a list of
{"cases": [{"script": [step, ...]}, ...], "job_fmt": "..."}) over real sockets.  A
request to /c/<n>/<rest> belongs to case n (1-based) and takes the case's next script step; once
the script is over it gets the default answer for (method, <rest>), as
tests/call_cases.h's cc_default_answer gives it.  Steps:
  reply    status (0: the default's), ctype, body (null: the default's),
           retry_after, header ("Name: value")
  drop     the connection is closed once the request arrived
  delay    the default answer (or status/body) after delay_ms
GET /_log/<n> answers what case n received: [{method, path, head}] (head:
the raw header lines).  Connections are kept alive as HTTP/1.1 says.
The process exits by itself after --lifetime seconds.
"""
import argparse
import json
import os
import socket
import socketserver
import sys
import threading
import time

CASES = []
JOB_FMT = ""
STATE = {}   # case index -> next step
LOG = {}     # case index -> requests
LOCK = threading.Lock()


def default_answer(method, p):
    """tests/call_cases.h cc_default_answer, for the scripted server."""
    jid = ""
    i = p.find("/jobs")
    if i >= 0 and p[i + 5:i + 6] == "/":
        rest = p[i + 6:]
        for c in "/?":
            rest = rest.split(c, 1)[0]
        jid = rest
    if method == "POST" and p.endswith("/jobs"):
        return 201, '{"id":"x","message":"created"}'
    if p.endswith("/pause"):
        return 200, '{"id":"%s","message":"Paused"}' % jid
    if p.endswith("/resume"):
        return 200, '{"id":"%s","message":"Resumed"}' % jid
    if p.endswith("/trigger"):
        return 200, '{"id":"%s","message":"Triggered"}' % jid
    if p.endswith("/terminate"):
        return 200, '{"message":"Job run terminated"}'
    if p.endswith("/runs"):
        return 200, "[]"
    if method == "DELETE":
        return 204, ""
    if p.endswith("/jobs"):
        return 200, "[]"
    return 200, JOB_FMT.replace("%s", jid)


class Handler(socketserver.BaseRequestHandler):
    def read_request(self, buf):
        while b"\r\n\r\n" not in buf:
            data = self.request.recv(65536)
            if not data:
                return None, None, None, None, b""
            buf += data
            if len(buf) > 1 << 20:
                return None, None, None, None, b""
        head, rest = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        method, target = lines[0].split(" ")[0:2]
        hdrs = "\r\n".join(lines[1:])
        n = 0
        for line in lines[1:]:
            k, _, v = line.partition(":")
            if k.strip().lower() == "content-length":
                n = int(v.strip())
        while len(rest) < n:
            data = self.request.recv(65536)
            if not data:
                break
            rest += data
        return method, target, hdrs, rest[:n], rest[n:]

    def answer(self, status, ctype, body, extra):
        b = body.encode("latin-1") if isinstance(body, str) else body
        reason = {200: "OK", 201: "Created", 204: "No Content"}.get(status, "Status")
        out = "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n" % (status, reason, ctype)
        for line in extra:
            out += line + "\r\n"
        if status != 204:
            out += "Content-Length: %d\r\n" % len(b)
        self.request.sendall(out.encode("latin-1") + b"\r\n" + (b if status != 204 else b""))

    def handle(self):
        self.request.settimeout(30)
        buf = b""
        try:
            while True:
                method, target, hdrs, body, buf = self.read_request(buf)
                if method is None:
                    return
                seg = target.split("/")
                if target.startswith("/_log/"):
                    with LOCK:
                        doc = json.dumps(LOG.get(int(seg[2]), []))
                    self.answer(200, "application/json", doc, [])
                    continue
                if len(seg) < 3 or seg[1] != "c":
                    self.answer(404, "text/plain", "no case", [])
                    continue
                n = int(seg[2])
                rest = "/" + "/".join(seg[3:])
                with LOCK:
                    LOG.setdefault(n, []).append({"method": method, "path": rest, "head": hdrs})
                    i = STATE.get(n, 0)
                    script = CASES[n - 1]["script"] if 0 < n <= len(CASES) else []
                    step = script[i] if i < len(script) else {"action": "reply"}
                    STATE[n] = i + 1
                action = step.get("action", "reply")
                if action in ("drop", "refused"):
                    return
                if action == "delay":
                    time.sleep(step.get("delay_ms", 0) / 1000.0)
                path = rest.split("/api/v1/workspace", 1)[-1]
                status, dbody = default_answer(method, path)
                if step.get("status"):
                    status = step["status"]
                extra = []
                if step.get("retry_after") is not None:
                    extra.append("Retry-After: " + step["retry_after"])
                if step.get("header"):
                    extra.append(step["header"])
                self.answer(status, step.get("ctype") or "application/json",
                            step["body"] if step.get("body") is not None else dbody, extra)
        except (BrokenPipeError, ConnectionResetError, socket.timeout, OSError):
            return


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # every case connects at once: no SYN may be dropped


def main():
    global CASES, JOB_FMT
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--cases", required=True)
    ap.add_argument("--lifetime", type=float, default=600)
    a = ap.parse_args()
    with open(a.cases) as f:
        doc = json.load(f)
    CASES, JOB_FMT = doc["cases"], doc["job_fmt"]
    srv = Server(("127.0.0.1", 0), Handler)
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, a.port_file)
    threading.Timer(a.lifetime, lambda: os._exit(0)).start()
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
