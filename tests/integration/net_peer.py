#!/usr/bin/env python3
"""A hostile network in front of a client's CA: a test peer (not a mock of camtrust code) that listens on loopback,
prints "listening on 127.0.0.1:PORT" and serves until killed, at most 8 connections at once.

  --mode trickle         for each connection, sends the start of a TLS handshake record of 16 KiB (what a server's
                         certificate message could be), one byte every --interval seconds
  --mode cut-first --to PORT
                         closes the first connection at once (as a network cuts one: the client's first request is
                         lost), and relays every later one, byte for byte, to 127.0.0.1:PORT"""
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


def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def relay(conn, port):
    up = socket.create_connection(("127.0.0.1", port), timeout=10)
    up.settimeout(None)
    back = threading.Thread(target=pump, args=(up, conn), daemon=True)
    back.start()
    pump(conn, up)
    back.join(30)
    up.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["trickle", "cut-first"], required=True)
    ap.add_argument("--interval", type=float, default=0.2)
    ap.add_argument("--to", type=int)
    a = ap.parse_args()
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    print("listening on 127.0.0.1:%d" % s.getsockname()[1], flush=True)
    busy = threading.BoundedSemaphore(8)
    accepted = 0
    while True:
        conn, _ = s.accept()
        accepted += 1
        if (a.mode == "cut-first" and accepted == 1) or not busy.acquire(blocking=False):
            conn.close()
            continue

        def serve(c=conn):
            try:
                trickle(c, a.interval) if a.mode == "trickle" else relay(c, a.to)
            except OSError:
                pass
            finally:
                c.close()
                busy.release()

        threading.Thread(target=serve, daemon=True).start()


if __name__ == "__main__":
    main()
