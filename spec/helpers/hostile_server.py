#!/usr/bin/env python3
"""A misbehaving HTTP/1.1 server for the transport specs (loopback only).

    hostile_server.py --port-file FILE [--lifetime SECONDS]

Binds 127.0.0.1 on a free port, writes the port to FILE, and answers every
request on its own thread with the behaviour its path names: by the first
path segment that names a mode, and the segment after it as its argument
when that is a number (else the default below).  So a client's server_url
may be http://127.0.0.1:PORT/<mode>/<arg>, or a project named <mode>:

  /ok                    200 [] (a valid jobs:list answer)
  /bighead/<MB>          200 with one header line of <MB> MiB
  /longhead/<KB>         200 with one header line of <KB> KiB
  /manyheads/<KB>        200 with 4 KiB header lines adding up to <KB> KiB
  /driphead/<s>          status line, then one header byte every 50 ms for <s> s
  /crumbhead/<KB>        200 with 1 KiB header lines adding up to <KB> KiB, the
                         whole answer written 7 bytes at a time (a pause every 64)
  /dripbody/<s>          200, Content-Length, then one body byte every 50 ms for <s> s
  /dripchunk/<s>         200, chunked, a chunk whose bytes come one every 50 ms for <s> s
  /badchunk              200, chunked, chunk size line "zz"
  /retryafter/<digits>   503 with a Retry-After of <digits> nines

A client that goes away ends the answer (broken pipe is not an error here).
The process exits by itself after --lifetime seconds (default 600), so a spec
that dies without stopping it leaves nothing running for long.
"""
import argparse
import os
import socket
import socketserver
import sys
import threading
import time

DRIP = 0.05
# mode -> default argument
MODES = {"ok": "0", "bighead": "48", "manyheads": "1024", "longhead": "90", "driphead": "8", "crumbhead": "150",
         "dripbody": "8", "dripchunk": "8", "badchunk": "0", "retryafter": "60"}


class Handler(socketserver.BaseRequestHandler):
    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.request.sendall(data)

    def read_request(self):
        buf = b""
        self.request.settimeout(30)
        while b"\r\n\r\n" not in buf:
            data = self.request.recv(65536)
            if not data:
                return None
            buf += data
            if len(buf) > 1 << 20:
                return None
        line = buf.split(b"\r\n", 1)[0].decode("latin-1")
        parts = line.split(" ")
        return parts[1] if len(parts) >= 2 else "/"

    def drip(self, seconds, piece):
        """Send piece every DRIP seconds, seconds / DRIP times."""
        for _ in range(int(seconds / DRIP)):
            self.send(piece)
            time.sleep(DRIP)

    def handle(self):
        try:
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            path = self.read_request()
            if path is None:
                return
            seg = [s for s in path.split("?", 1)[0].split("/") if s]
            mode, arg = "ok", None
            for i, s in enumerate(seg):
                if s in MODES:
                    mode = s
                    nxt = seg[i + 1] if i + 1 < len(seg) else ""
                    arg = nxt if nxt.replace(".", "", 1).isdigit() else None
                    break
            self.answer(mode, arg if arg is not None else MODES[mode])
        except (BrokenPipeError, ConnectionResetError, socket.timeout, OSError):
            pass
        finally:
            try:
                self.request.close()
            except OSError:
                pass

    def answer(self, mode, arg):
        ok_tail = "Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n[]"
        if mode == "bighead":
            self.send("HTTP/1.1 200 OK\r\nX-Big: ")
            block = b"a" * (1 << 20)
            for _ in range(int(arg)):
                self.send(block)
            self.send("\r\n" + ok_tail)
        elif mode == "longhead":
            self.send("HTTP/1.1 200 OK\r\nX-Long: " + "l" * (int(arg) * 1024) + "\r\n" + ok_tail)
        elif mode == "manyheads":
            self.send("HTTP/1.1 200 OK\r\n")
            line = "X-Many: " + "b" * 4086 + "\r\n"
            for _ in range(int(arg) // 4):
                self.send(line)
            self.send(ok_tail)
        elif mode == "crumbhead":
            line = "X-Crumb: " + "c" * 1013 + "\r\n"
            data = ("HTTP/1.1 200 OK\r\n" + line * int(arg) + ok_tail).encode("latin-1")
            for i in range(0, len(data), 7):
                self.send(data[i:i + 7])
                if i % (7 * 64) == 0:
                    time.sleep(0.001)
        elif mode == "driphead":
            self.send("HTTP/1.1 200 OK\r\nX-Slow: ")
            self.drip(float(arg), b"s")
            self.send("\r\n" + ok_tail)
        elif mode == "dripbody":
            n = int(float(arg) / DRIP)
            self.send("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                      "Content-Length: %d\r\nConnection: close\r\n\r\n[" % (n + 2))
            self.drip(float(arg), b" ")
            self.send("]")
        elif mode == "dripchunk":
            n = int(float(arg) / DRIP)
            self.send("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                      "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n1\r\n[\r\n%x\r\n" % n)
            self.drip(float(arg), b" ")
            self.send("\r\n1\r\n]\r\n0\r\n\r\n")
        elif mode == "badchunk":
            self.send("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                      "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n[]\r\n0\r\n\r\n")
        elif mode == "retryafter":
            self.send("HTTP/1.1 503 Service Unavailable\r\nRetry-After: %s\r\n"
                      "Content-Type: application/json\r\nContent-Length: 22\r\nConnection: close\r\n\r\n"
                      '{"message":"go away"}\n' % ("9" * int(arg)))
        else:
            self.send("HTTP/1.1 200 OK\r\n" + ok_tail)


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--lifetime", type=float, default=600)
    a = ap.parse_args()
    srv = Server(("127.0.0.1", 0), Handler)
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, a.port_file)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    time.sleep(a.lifetime)
    srv.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
