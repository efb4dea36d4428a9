#!/usr/bin/env python3
"""Clients that misbehave on purpose, for server_limits.sh (loopback only, bounded in count and time):
  server_clients.py flood PORT COUNT OUT
      From 127.0.0.2, opens COUNT TCP connections to 127.0.0.1:PORT that never finish a TLS handshake (half of
      them send half a ClientHello), writes "open N" to OUT once they are open, then watches them for 20 s:
      writes "held N" once at most N stay open (N is the first count seen after the server settles, see below)
      and "closed_all yes|no" at the end.
  server_clients.py slow PORT CADIR CERT KEY CSR_B64 GO OUT
      Sends an EST simpleenroll's headers with Expect: 100-continue, writes "continued" to OUT once the server
      has said 100 Continue (the request is under way), waits for the file GO to exist (at most 30 s), then
      sends the body and writes the answer's status line and body to OUT."""
import os
import resource
import select
import socket
import ssl
import sys
import time


def write(path, text):
    with open(path, "a") as f:
        f.write(text + "\n")


def flood(port, count, out):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 64), hard))
    # TLS record header and the start of a ClientHello that announces 512 bytes and never sends them.
    half_hello = bytes.fromhex("1603010200010001fc0303") + os.urandom(20)
    socks = []
    for i in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.2", 0))
        s.settimeout(5)
        try:
            s.connect(("127.0.0.1", port))
            if i % 2:
                s.send(half_hello)
        except OSError:
            s.close()
            continue
        s.setblocking(False)
        socks.append(s)
    write(out, "open %d" % len(socks))
    open_socks = set(socks)
    by_fd = {s.fileno(): s for s in socks}
    poller = select.poll()  # select() stops at descriptor 1024
    for s in socks:
        poller.register(s, select.POLLIN)
    counts, held = [], None
    deadline = time.monotonic() + 20
    while open_socks and time.monotonic() < deadline:
        for fd, _ in poller.poll(100):
            s = by_fd[fd]
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if not data:  # closed (or reset) by the server
                poller.unregister(fd)
                open_socks.discard(s)
                s.close()
        counts.append(len(open_socks))
        # Settled: the same count for a second (ten rounds) while some are still held.
        if held is None and len(counts) >= 10 and len(set(counts[-10:])) == 1 and counts[-1]:
            held = counts[-1]
            write(out, "held %d" % held)
    if held is None:
        write(out, "held %d" % (counts[-1] if counts else 0))
    write(out, "closed_all %s" % ("no" if open_socks else "yes"))
    for s in open_socks:
        s.close()


def slow(port, cadir, cert, key, csr_b64, go, out):
    body = open(csr_b64, "rb").read()
    ctx = ssl.create_default_context(cafile=os.path.join(cadir, "ops-root.pem"))
    ctx.load_cert_chain(cert, key)
    raw = socket.create_connection(("127.0.0.1", port), timeout=30)
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    head = ("POST /.well-known/est/simpleenroll HTTP/1.1\r\nHost: localhost:%d\r\n"
            "Content-Type: application/pkcs10\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n" % (port, len(body)))
    s.sendall(head.encode())
    first = s.recv(4096)
    if not first.startswith(b"HTTP/1.1 100"):
        write(out, "no 100 Continue: %r" % first[:80])
        return 1
    write(out, "continued")
    deadline = time.monotonic() + 30
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.05)
    answer = b""
    try:
        s.sendall(body)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
            head_end = answer.find(b"\r\n\r\n")
            if head_end >= 0:
                length = [int(l.split(b":")[1]) for l in answer[:head_end].split(b"\r\n")
                          if l.lower().startswith(b"content-length:")]
                if length and len(answer) >= head_end + 4 + length[0]:
                    break
    except OSError as e:
        write(out, "error %s" % e)
    status = answer.split(b"\r\n", 1)[0].decode(errors="replace") if answer else "no answer"
    write(out, "status " + status)
    with open(out + ".body", "wb") as f:
        f.write(answer[answer.find(b"\r\n\r\n") + 4:] if answer else b"")
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "flood":
        flood(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    elif sys.argv[1] == "slow":
        sys.exit(slow(int(sys.argv[2]), *sys.argv[3:9]))
    else:
        sys.exit(__doc__)
