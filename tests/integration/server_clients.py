#!/usr/bin/env python3
"""Clients that misbehave on purpose, for server_limits.sh and others (loopback only, bounded in count and time):
  server_clients.py flood PORT COUNT OUT
      From 127.0.0.2, opens COUNT TCP connections to 127.0.0.1:PORT that never finish a TLS handshake (half of
      them send half a ClientHello), writes "open N" to OUT once they are open, then watches them for 20 s:
      writes "held N" once at most N stay open (N is the first count seen after the server settles, see below)
      and "closed_all yes|no" at the end.
  server_clients.py slow PORT CADIR CERT KEY CSR_B64 GO OUT
      Sends an EST simpleenroll's headers with Expect: 100-continue, writes "continued" to OUT once the server
      has said 100 Continue (the request is under way), waits for the file GO to exist (at most 30 s), then
      sends the body (then makes the file OUT.sent) and writes the answer's status line and body to OUT.
  server_clients.py fill [HOST:]PORT ADDRESSES PER_ADDRESS GO OUT
      From each of ADDRESSES (comma-separated loopback addresses), opens PER_ADDRESS TCP connections to HOST
      (127.0.0.1; "[::1]" for IPv6) that never start a TLS handshake, writes "held N" to OUT once the server has
      settled (N: those it did not close), then holds them until the file GO exists (at most 90 s) and writes
      "closed".
  server_clients.py ocsp HOST:PORT SOURCE REQUEST COUNT OUT
      From SOURCE, POSTs the DER OCSP request in the file REQUEST COUNT times over one keep-alive plain-HTTP
      connection to HOST:PORT/ocsp; the answers' bodies go to OUT.1 ... OUT.COUNT.
  server_clients.py station PORT CADIR CERT KEY OUT GO:CSR_B64...
      One keep-alive mutual-TLS connection from 127.0.0.1: a GET of cacerts, "ready STATUS" to OUT; then for each
      GO:CSR_B64, once the file GO exists (at most 30 s), a simpleenroll on the same connection, "enroll N STATUS"
      to OUT (OUT.N: the body). "error ..." when the connection was lost.
  server_clients.py chunked HOST:PORT SOURCE PATH TLS|PLAIN CADIR COUNT STOP OUT
      From SOURCE, COUNT connections at once, each POSTing PATH a chunked body without end (16 KiB chunks) until the
      server closes it or CAP_MIB are sent, then again on a new connection, until the file STOP exists (at most 60 s).
      Writes "streaming" to OUT once the first chunks are sent, at the end "closed N" (connections the server closed
      before CAP_MIB), "capped N" (those that reached it, still open) and "refused N" (closed before or during their
      handshake, tried again 10 ms later).
  server_clients.py trickle PORT CADIR ADDRESSES PER_ADDRESS STOP OUT
      From each of ADDRESSES (comma-separated loopback addresses), PER_ADDRESS TLS connections to 127.0.0.1:PORT
      (no client certificate) that start a request's headers and send one more byte of them every 2 s (within any
      idle timeout of 3 s or more), up to TRICKLE_BYTES, or until the file STOP exists. Writes "held N" once the
      server has settled, at the end "cut N" (those the server closed before their last byte) and "open N".
  server_clients.py hold PORT CADIR ADDRESSES PER_ADDRESS STOP OUT [CERT KEY]
      From each of ADDRESSES, PER_ADDRESS TLS connections to 127.0.0.1:PORT that complete their handshake without a
      client certificate (with CERT and KEY: with that one) and then stay silent; each one the server closes (or refuses) is opened again (50 ms
      later), until the file STOP exists (at most 60 s, at most HOLD_TRIES connections each). Writes "held N" the
      first time 4 rounds agree, N the most open at once until then, at the end "opened N" (handshakes completed) and "closed
      N" (connections the server closed after their handshake).
  server_clients.py reconnect [HOST:]PORT CADIR SOURCE STOP SECONDS OUT
      From SOURCE, one TLS connection to HOST:PORT after another (no client certificate): the handshake, then closed at
      once; one the server refuses (closed before or during its handshake) is tried again 10 ms later; until the file
      STOP exists or SECONDS have passed (at most RECONNECT_TRIES connections). Writes "accepted N" (handshakes
      completed), "refused N", "seconds S" (from the first connection's start to the last one's end) and "window
      FROM TO" (those two times on the machine's monotonic clock, to compare clients run at once).
  server_clients.py many [HOST:]PORT CADIR BASE COUNT OUT
      From COUNT addresses BASE.I.J (BASE two bytes such as 127.1; J 1 to 250), or the first COUNT of BASE when it
      is a comma-separated list of addresses, one after another, a TLS connection each to HOST:PORT: the handshake,
      then closed at once. Writes "accepted N" (handshakes completed).
  server_clients.py slowread HOST:PORT PATH READ_BYTES EVERY_S SECONDS OUT
      One plain-HTTP GET of PATH on a connection with a small receive buffer and segments (a reader that lets the
      server send little at a time), reading READ_BYTES every EVERY_S seconds, for at most SECONDS. Writes "length
      N" (the answer's Content-Length), then "got N" (body bytes read) and "ended closed|whole|bound"."""
import os
import resource
import select
import socket
import ssl
import sys
import threading
import time


def write(path, text):
    with open(path, "a") as f:
        f.write(text + "\n")


def target(arg):
    """(host, port) of "PORT" (127.0.0.1), "127.0.0.1:PORT" or "[::1]:PORT"."""
    host, _, port = arg.rpartition(":")
    return (host.strip("[]") or "127.0.0.1", int(port))


def open_connections(port, addresses, count, half_hello=None, host="127.0.0.1"):
    """count TCP connections from each address to host:port (every other one sends half_hello)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < len(addresses) * count + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, len(addresses) * count + 64), hard))
    socks = []
    for address in addresses:
        for i in range(count):
            s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
            s.bind((address, 0))
            s.settimeout(5)
            try:
                s.connect((host, port))
                if half_hello and i % 2:
                    s.send(half_hello)
            except OSError:
                s.close()
                continue
            s.setblocking(False)
            socks.append(s)
    return socks


class Watch:
    """The connections the server has not closed yet."""

    def __init__(self, socks):
        self.open = set(socks)
        self.by_fd = {s.fileno(): s for s in socks}
        self.poller = select.poll()  # select() stops at descriptor 1024
        for s in socks:
            self.poller.register(s, select.POLLIN)
        self.counts = []

    def round(self):
        for fd, _ in self.poller.poll(100):
            s = self.by_fd[fd]
            try:
                data = s.recv(4096)
            except ssl.SSLWantReadError:  # a TLS 1.3 session ticket, no application data
                continue
            except OSError:
                data = b""
            if not data:  # closed (or reset) by the server
                self.poller.unregister(fd)
                self.open.discard(s)
                s.close()
        self.counts.append(len(self.open))

    def settled(self):
        """The same count for a second (ten rounds) while some are still held."""
        return len(self.counts) >= 10 and len(set(self.counts[-10:])) == 1 and self.counts[-1] > 0

    def close(self):
        for s in self.open:
            s.close()


def flood(port, count, out):
    # TLS record header and the start of a ClientHello that announces 512 bytes and never sends them.
    half_hello = bytes.fromhex("1603010200010001fc0303") + os.urandom(20)
    socks = open_connections(port, ["127.0.0.2"], count, half_hello)
    write(out, "open %d" % len(socks))
    watch, held = Watch(socks), None
    deadline = time.monotonic() + 20
    while watch.open and time.monotonic() < deadline:
        watch.round()
        if held is None and watch.settled():
            held = watch.counts[-1]
            write(out, "held %d" % held)
    if held is None:
        write(out, "held %d" % (watch.counts[-1] if watch.counts else 0))
    write(out, "closed_all %s" % ("no" if watch.open else "yes"))
    watch.close()


def wait_for(path, seconds=30):
    deadline = time.monotonic() + seconds
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)


def fill(where, addresses, per_address, go, out):
    host, port = target(where)
    watch = Watch(open_connections(port, addresses.split(","), int(per_address), host=host))
    deadline = time.monotonic() + 10
    while not watch.settled() and time.monotonic() < deadline:
        watch.round()
    write(out, "held %d" % len(watch.open))
    wait_for(go, 90)
    watch.close()
    write(out, "closed")


def read_answer(s):
    """One HTTP/1.1 answer with a Content-Length: (status line, body); raises OSError when the connection ends first."""
    answer = b""
    while True:
        head_end = answer.find(b"\r\n\r\n")
        if head_end >= 0:
            length = [int(l.split(b":")[1]) for l in answer[:head_end].split(b"\r\n")
                      if l.lower().startswith(b"content-length:")]
            if length and len(answer) >= head_end + 4 + length[0]:
                return (answer.split(b"\r\n", 1)[0].decode(errors="replace"),
                        answer[head_end + 4:head_end + 4 + length[0]])
        chunk = s.recv(65536)
        if not chunk:
            raise OSError("connection closed: %r" % answer[:80])
        answer += chunk


def tls_connection(port, cadir, cert, key, timeout):
    ctx = ssl.create_default_context(cafile=os.path.join(cadir, "ops-root.pem"))
    ctx.load_cert_chain(cert, key)
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def station(port, cadir, cert, key, out, *steps):
    try:
        s = tls_connection(port, cadir, cert, key, 15)
        s.sendall(b"GET /.well-known/est/cacerts HTTP/1.1\r\nHost: localhost:%d\r\n\r\n" % port)
        write(out, "ready " + read_answer(s)[0])
        for n, step in enumerate(steps, 1):
            go, csr = step.split(":", 1)
            wait_for(go)
            body = open(csr, "rb").read()
            s.sendall(b"POST /.well-known/est/simpleenroll HTTP/1.1\r\nHost: localhost:%d\r\n"
                      b"Content-Type: application/pkcs10\r\nContent-Length: %d\r\n\r\n%s" % (port, len(body), body))
            status, answer = read_answer(s)
            with open("%s.%d" % (out, n), "wb") as f:
                f.write(answer)
            write(out, "enroll %d %s" % (n, status))
    except OSError as e:
        write(out, "error %s" % e)
    return 0


def ocsp(where, source, request, count, out):
    host, port = target(where)
    body = open(request, "rb").read()
    s = socket.create_connection((host, port), timeout=30, source_address=(source, 0))
    for n in range(1, int(count) + 1):
        s.sendall(b"POST /ocsp HTTP/1.1\r\nHost: %s\r\nContent-Type: application/ocsp-request\r\n"
                  b"Content-Length: %d\r\n\r\n%s" % (host.encode(), len(body), body))
        with open("%s.%d" % (out, n), "wb") as f:
            f.write(read_answer(s)[1])
    s.close()


def slow(port, cadir, cert, key, csr_b64, go, out):
    body = open(csr_b64, "rb").read()
    s = tls_connection(port, cadir, cert, key, 30)
    head = ("POST /.well-known/est/simpleenroll HTTP/1.1\r\nHost: localhost:%d\r\n"
            "Content-Type: application/pkcs10\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n" % (port, len(body)))
    s.sendall(head.encode())
    first = s.recv(4096)
    if not first.startswith(b"HTTP/1.1 100"):
        write(out, "no 100 Continue: %r" % first[:80])
        return 1
    write(out, "continued")
    wait_for(go)
    status, answer = "no answer", b""
    try:
        s.sendall(body)
        open(out + ".sent", "w").close()
        status, answer = read_answer(s)
    except OSError as e:
        write(out, "error %s" % e)
    write(out, "status " + status)
    with open(out + ".body", "wb") as f:
        f.write(answer)
    return 0


CAP_MIB = 64


def endless_chunked(where, source, path, tls, cadir, stop, out, counts):
    """One connection after another from source, each sending path a chunked body until closed or CAP_MIB sent."""
    host, port = target(where)
    chunk = b"4000\r\n" + b"A" * 0x4000 + b"\r\n"
    deadline = time.monotonic() + 60
    while not os.path.exists(stop) and time.monotonic() < deadline:
        try:
            s = socket.create_connection((host, port), timeout=10, source_address=(source, 0))
            if tls == "TLS":
                ctx = ssl.create_default_context(cafile=os.path.join(cadir, "ops-root.pem"))
                s = ctx.wrap_socket(s, server_hostname="localhost")
        except OSError:  # refused before or during the handshake (a rate of new connections): comes again
            with counts["lock"]:
                counts["refused"] += 1
            time.sleep(0.01)
            continue
        sent = 0
        try:
            s.sendall(b"POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/pkcs10\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n" % path.encode())
            while sent < CAP_MIB << 20:
                s.sendall(chunk)
                sent += len(chunk)
                if not counts["streaming"]:
                    counts["streaming"] = True
                    write(out, "streaming")
            outcome = "capped"
        except OSError:  # closed (reset) by the server
            outcome = "closed"
        s.close()
        with counts["lock"]:
            counts[outcome] += 1


def chunked(where, source, path, tls, cadir, count, stop, out):
    counts = {"streaming": False, "closed": 0, "capped": 0, "refused": 0, "lock": threading.Lock()}
    threads = [threading.Thread(target=endless_chunked, args=(where, source, path, tls, cadir, stop, out, counts))
               for _ in range(int(count))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    write(out, "closed %d" % counts["closed"])
    write(out, "capped %d" % counts["capped"])
    write(out, "refused %d" % counts["refused"])


TRICKLE_BYTES = 30


def trickle(port, cadir, addresses, per_address, stop, out):
    ctx = ssl.create_default_context(cafile=os.path.join(cadir, "ops-root.pem"))
    socks = []
    for address in addresses.split(","):
        for _ in range(int(per_address)):
            try:
                raw = socket.create_connection(("127.0.0.1", int(port)), timeout=10, source_address=(address, 0))
                s = ctx.wrap_socket(raw, server_hostname="localhost")
                s.sendall(b"GET /crl HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
            except OSError:
                continue
            s.setblocking(False)
            socks.append(s)
    watch = Watch(socks)
    deadline = time.monotonic() + 10
    while not watch.settled() and time.monotonic() < deadline:
        watch.round()
    write(out, "held %d" % len(watch.open))
    total = len(watch.by_fd)
    for _ in range(TRICKLE_BYTES):
        if os.path.exists(stop) or not watch.open:
            break
        for s in list(watch.open):
            try:
                s.send(b"a")
            except ssl.SSLWantWriteError:
                pass
            except OSError:
                pass  # closed by the server: the next round sees it
        next_byte = time.monotonic() + 2
        while time.monotonic() < next_byte:
            watch.round()
    write(out, "cut %d" % (total - len(watch.open)))
    write(out, "open %d" % len(watch.open))
    watch.close()


HOLD_TRIES = 2000


def hold_one(port, cadir, address, stop, counts, deadline, cert):
    ctx = ssl.create_default_context(cafile=os.path.join(cadir, "ops-root.pem"))
    if cert:
        ctx.load_cert_chain(*cert)
    for _ in range(HOLD_TRIES):
        if os.path.exists(stop) or time.monotonic() > deadline:
            return
        try:
            raw = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(address, 0))
            s = ctx.wrap_socket(raw, server_hostname="localhost")
        except OSError:  # refused at a limit, or closed during the handshake
            time.sleep(0.05)
            continue
        with counts["lock"]:
            counts["opened"] += 1
            counts["open"] += 1
            counts["most"] = max(counts["most"], counts["open"])
        s.settimeout(0.2)
        while not os.path.exists(stop) and time.monotonic() < deadline:
            try:
                if not s.recv(4096):
                    break
            except (ssl.SSLWantReadError, socket.timeout):
                continue
            except OSError:
                break
        else:
            s.close()
            with counts["lock"]:
                counts["open"] -= 1
            return
        s.close()
        with counts["lock"]:
            counts["open"] -= 1
            counts["closed"] += 1
        time.sleep(0.05)


def hold(port, cadir, addresses, per_address, stop, out, cert=None, key=None):
    counts = {"opened": 0, "open": 0, "most": 0, "closed": 0, "lock": threading.Lock()}
    deadline = time.monotonic() + 60
    threads = [threading.Thread(target=hold_one, args=(int(port), cadir, a, stop, counts, deadline,
                                                       (cert, key) if cert else None))
               for a in addresses.split(",") for _ in range(int(per_address))]
    for t in threads:
        t.start()
    seen, held = [], False
    while any(t.is_alive() for t in threads):
        time.sleep(0.25)
        seen.append(counts["open"])
        if not held and len(seen) >= 4 and len(set(seen[-4:])) == 1 and seen[-1] > 0:
            # The most held at once, counted as each opens: under the reserve's evictions the count moves by one
            # as each new connection closes an old one (sampled, it was one short on a loaded machine).
            write(out, "held %d" % counts["most"])
            held = True
    for t in threads:
        t.join()
    write(out, "opened %d" % counts["opened"])
    write(out, "closed %d" % counts["closed"])


RECONNECT_TRIES = 3000


def handshake(host, port, ctx, source):
    """Whether a TLS connection from source completes its handshake (then closed at once)."""
    try:
        raw = socket.create_connection((host, port), timeout=10, source_address=(source, 0))
        with ctx.wrap_socket(raw, server_hostname="localhost"):
            return True
    except OSError:  # closed by the server before or during the handshake
        return False


def reconnect(where, cadir, source, stop, seconds, out):
    host, port = target(where)
    ctx = ssl.create_default_context(cafile=os.path.join(cadir, "ops-root.pem"))
    accepted = refused = 0
    start = time.monotonic()
    deadline = start + float(seconds)
    for _ in range(RECONNECT_TRIES):
        if os.path.exists(stop) or time.monotonic() > deadline:
            break
        if handshake(host, port, ctx, source):
            accepted += 1
        else:
            refused += 1
            time.sleep(0.01)
    write(out, "accepted %d" % accepted)
    write(out, "refused %d" % refused)
    end = time.monotonic()
    write(out, "seconds %.3f" % (end - start))
    write(out, "window %.3f %.3f" % (start, end))


def many(where, cadir, base, count, out):
    host, port = target(where)
    ctx = ssl.create_default_context(cafile=os.path.join(cadir, "ops-root.pem"))
    sources = base.split(",")[:int(count)] if "," in base else \
        ["%s.%d.%d" % (base, i // 250, i % 250 + 1) for i in range(int(count))]
    write(out, "accepted %d" % sum(handshake(host, port, ctx, source) for source in sources))


def slowread(where, path, read_bytes, every_s, seconds, out):
    host, port = target(where)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
    s.settimeout(30)
    s.connect((host, port))
    s.sendall(b"GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path.encode(), host.encode()))
    head, body, length, ended = b"", 0, None, "bound"
    deadline = time.monotonic() + float(seconds)
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(int(read_bytes))
        except OSError:
            chunk = b""
        if not chunk:
            ended = "closed"
            break
        if length is None:
            head += chunk
            end = head.find(b"\r\n\r\n")
            if end < 0:
                continue
            length = [int(l.split(b":")[1]) for l in head[:end].split(b"\r\n")
                      if l.lower().startswith(b"content-length:")][0]
            write(out, "length %d" % length)
            body = len(head) - end - 4
        else:
            body += len(chunk)
        if body >= length:
            ended = "whole"
            break
        time.sleep(float(every_s))
    s.close()
    write(out, "got %d" % body)
    write(out, "ended %s" % ended)


if __name__ == "__main__":
    if sys.argv[1] == "flood":
        flood(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    elif sys.argv[1] == "slow":
        sys.exit(slow(int(sys.argv[2]), *sys.argv[3:9]))
    elif sys.argv[1] == "fill":
        fill(*sys.argv[2:7])
    elif sys.argv[1] == "ocsp":
        ocsp(*sys.argv[2:7])
    elif sys.argv[1] == "chunked":
        chunked(*sys.argv[2:10])
    elif sys.argv[1] == "trickle":
        trickle(*sys.argv[2:8])
    elif sys.argv[1] == "hold":
        hold(*sys.argv[2:10])
    elif sys.argv[1] == "many":
        many(*sys.argv[2:7])
    elif sys.argv[1] == "reconnect":
        reconnect(*sys.argv[2:8])
    elif sys.argv[1] == "slowread":
        slowread(*sys.argv[2:8])
    elif sys.argv[1] == "station":
        sys.exit(station(int(sys.argv[2]), *sys.argv[3:]))
    else:
        sys.exit(__doc__)
