#!/usr/bin/env python3
"""A peer that answers a byte at a time: for each connection it sends the start of a TLS handshake record of 16 KiB
(what a server's certificate message could be), one byte every --interval seconds, as a slow or hostile network
between a client and its CA can. A test peer, not a mock of camtrust code. Prints "listening on 127.0.0.1:PORT" and
serves until killed; at most 8 connections at once."""
import argparse
import socket
import threading
import time


def trickle(conn, interval):
    record = b"\x16\x03\x03\x40\x00" + b"\x02" * 16384
    try:
        for b in record:
            conn.sendall(bytes([b]))
            time.sleep(interval)
    except OSError:
        pass
    conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--interval", type=float, default=0.2)
    a = ap.parse_args()
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    print("listening on 127.0.0.1:%d" % s.getsockname()[1], flush=True)
    busy = threading.BoundedSemaphore(8)
    while True:
        conn, _ = s.accept()
        if not busy.acquire(blocking=False):
            conn.close()
            continue
        threading.Thread(target=lambda c=conn: (trickle(c, a.interval), busy.release()), daemon=True).start()


if __name__ == "__main__":
    main()
