#!/usr/bin/env python3
"""A hostile HTTP server for specs: answers every request on 127.0.0.1 with
a broken response, so the client's error kinds for what libcurl refuses can
be checked.

    python3 spec/helpers/bad_http.py MODE LOG [MAX_CONNECTIONS] [SECONDS]

Prints "listening PORT" on stdout once bound (port picked by the kernel),
appends each request line it reads to LOG, and exits after MAX_CONNECTIONS
connections (default 8) or SECONDS seconds (default 20), whichever is first.

Modes:
  garbled      a status line that is not HTTP ("HTXP/1.1 201 Created")
  badversion   "HTTP/9.7 201 Created"
  badstatus    "HTTP/1.1 2x1 Created"
  bigheader    a 200 KB header line (X-Big) in an otherwise valid 201/200
  manyheaders  300 headers of 1 KB each (300 KB of headers in total)
  ok           a valid 200 with "{}" (to check the helper itself)
"""
import socket
import sys
import time

BODY = b'{"id":"x","message":"created"}'


def answer(mode):
    if mode == "garbled":
        return b"HTXP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 30\r\n\r\n" + BODY
    if mode == "badversion":
        return b"HTTP/9.7 201 Created\r\nContent-Type: application/json\r\nContent-Length: 30\r\n\r\n" + BODY
    if mode == "badstatus":
        return b"HTTP/1.1 2x1 Created\r\nContent-Type: application/json\r\nContent-Length: 30\r\n\r\n" + BODY
    if mode == "bigheader":
        return (b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nX-Big: " + b"a" * (200 * 1024) +
                b"\r\nContent-Length: 30\r\n\r\n" + BODY)
    if mode == "manyheaders":
        hs = b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 1024) for i in range(300))
        return b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n" + hs + b"Content-Length: 30\r\n\r\n" + BODY
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


def read_request(conn, deadline):
    data = b""
    while b"\r\n\r\n" not in data:
        conn.settimeout(max(0.05, deadline - time.time()))
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
        if len(data) > 1 << 20:
            return None
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip() or b"0")
    while len(rest) < length:
        conn.settimeout(max(0.05, deadline - time.time()))
        chunk = conn.recv(65536)
        if not chunk:
            break
        rest += chunk
    return head.split(b"\r\n")[0]


def main():
    mode, log = sys.argv[1], sys.argv[2]
    max_conn = int(sys.argv[3]) if len(sys.argv) > 3 else 8
    seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 20.0
    deadline = time.time() + seconds
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)
    sys.stdout.write("listening %d\n" % ls.getsockname()[1])
    sys.stdout.flush()
    served = 0
    while served < max_conn and time.time() < deadline:
        ls.settimeout(max(0.05, deadline - time.time()))
        try:
            conn, _ = ls.accept()
        except socket.timeout:
            break
        served += 1
        try:
            line = read_request(conn, deadline)
            if line is not None:
                with open(log, "ab") as f:
                    f.write(line + b"\n")
                conn.settimeout(max(0.05, deadline - time.time()))
                conn.sendall(answer(mode))
                # let the client read it all before the close
                conn.shutdown(socket.SHUT_WR)
                conn.settimeout(1.0)
                try:
                    while conn.recv(65536):
                        pass
                except OSError:
                    pass
        except OSError:
            pass
        finally:
            conn.close()
    ls.close()


if __name__ == "__main__":
    main()
