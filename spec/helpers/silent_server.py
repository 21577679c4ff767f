#!/usr/bin/env python3
"""A loopback TCP server that takes connections and never answers, for specs
that need a transfer in flight (a webhook that hangs).

    python3 spec/helpers/silent_server.py PORT_FILE [SECONDS]

Binds 127.0.0.1 on a port the kernel picks, writes the port to PORT_FILE
(whole: written to a temporary name, then renamed), holds every connection
open without a byte of answer, and exits after SECONDS (default 60), so a
spec that dies without stopping it leaves nothing running for long.
"""
import os
import socket
import sys
import time


def main():
    port_file = sys.argv[1]
    lifetime = float(sys.argv[2]) if len(sys.argv) > 2 else 60.0
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    tmp = port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.getsockname()[1])
    os.rename(tmp, port_file)
    srv.settimeout(0.2)
    held = []
    end = time.time() + lifetime
    while time.time() < end:
        try:
            conn, _ = srv.accept()
        except socket.timeout:
            continue
        held.append(conn)   # kept open, never read from or written to
    for conn in held:
        conn.close()
    srv.close()


if __name__ == "__main__":
    main()
