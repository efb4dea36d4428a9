#!/usr/bin/env python3
"""A misbehaving camera for the station's tests: a test peer that speaks the factory-line frame format of
common/factory/factory.h (not a mock of camtrust code). It answers HELLO like an unprovisioned camera, then (its
CSRs made by openssl with keys of its own, each carrying the station's NONCE as a current camera's do):

  --mode wrong-serial   answers GET_CSRS with valid CSRs (made by openssl) for --csr-serial, not its own serial
  --mode truncate       sends the first half of its CSRS frame, then closes the connection
  --mode claims-provisioned --installed credentials.pem
                        says it is provisioned and shows the leaf certificates of another camera's credentials
                        file (public data anyone can copy), but holds none of their keys: its CSRs are its own
  --mode replay --installed credentials.pem --capture ADDR [--capture-nonce HEX]
                        the same, but its CSRs are the genuine camera's: captured at start from the camera at ADDR (a
                        HELLO and a GET_CSRS, as an eavesdropper on the factory LAN sees them pass in an earlier
                        exchange, with that exchange's nonce or none), replayed to every station that asks

Prints "listening on 127.0.0.1:PORT" and serves until killed. Each message type it receives is appended to
--log, so that a test can tell that no INSTALL ever reached it. Bounded: frames over 64 KiB are refused."""
import argparse
import base64
import os
import socket
import struct
import subprocess
import sys
import tempfile

MAGIC = b"CTF1"
HELLO, IDENTITY, GET_CSRS, CSRS, INSTALL, RESULT, ERROR = range(1, 8)
SERIAL, MODEL, MAC, STATE, REASON, PROFILE, CSR, CERT, STATUS = range(1, 10)
NONCE = 12
MAX_PAYLOAD = 64 * 1024
NAMES = {HELLO: "HELLO", GET_CSRS: "GET_CSRS", INSTALL: "INSTALL"}


def field(tag, value):
    if isinstance(value, str):
        value = value.encode()
    return struct.pack(">BH", tag, len(value)) + value


def frame(msg_type, payload):
    return MAGIC + struct.pack(">BI", msg_type, len(payload)) + payload


def recv_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def recv_frame(conn):
    hdr = recv_exact(conn, 9)
    if hdr is None or hdr[:4] != MAGIC:
        return None
    length = struct.unpack(">I", hdr[5:9])[0]
    if length > MAX_PAYLOAD:
        return None
    payload = recv_exact(conn, length)
    return None if payload is None else (hdr[4], payload)


def make_csr(key, serial, challenge):
    """A CSR by openssl for the key file `key` (made when absent), with `challenge` (the station's nonce, which this
    fake signs like a camera of this version: the station's later checks are what it plays against) if any."""
    with tempfile.TemporaryDirectory() as d:
        out, conf = os.path.join(d, "csr.der"), os.path.join(d, "req.cnf")
        with open(conf, "w") as f:
            f.write(f"[req]\nprompt = no\ndistinguished_name = dn\nattributes = attrs\n"
                    f"[dn]\nserialNumber = {serial}\nCN = x\n[attrs]\n" +
                    (f"challengePassword = {challenge}\n" if challenge else ""))
        key_args = ["-key", key] if os.path.exists(key) else ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                                                               "-nodes", "-keyout", key]
        subprocess.run(["openssl", "req", "-new", "-config", conf, *key_args, "-outform", "DER", "-out", out],
                       check=True, capture_output=True)
        with open(out, "rb") as f:
            return f.read()


def fields(payload):
    """(tag, value) of each field of a payload."""
    out, off = [], 0
    while off < len(payload):
        tag, n = struct.unpack(">BH", payload[off:off + 3])
        out.append((tag, payload[off + 3:off + 3 + n]))
        off += 3 + n
    return out


def capture_csrs(addr, nonce):
    """The CSRs the camera at addr answers to a GET_CSRS (with `nonce`, or none), by profile."""
    host, port = addr.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(frame(HELLO, b""))
        recv_frame(conn)
        conn.sendall(frame(GET_CSRS, field(PROFILE, "device") + field(PROFILE, "media-signing") +
                           (field(NONCE, nonce) if nonce else b"")))
        msg_type, payload = recv_frame(conn)
    if msg_type != CSRS:
        sys.exit(f"the camera at {addr} answered type {msg_type} to GET_CSRS")
    csrs, profile = {}, None
    for tag, value in fields(payload):
        if tag == PROFILE:
            profile = value.decode()
        elif tag == CSR:
            csrs[profile] = value
    return csrs


def installed_leaves(path):
    """The first certificate after each "# profile NAME" line of a camera's credentials.pem."""
    leaves, profile = {}, None
    lines = open(path).read().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("# profile "):
            profile = line[len("# profile "):]
        elif line == "-----BEGIN CERTIFICATE-----" and profile and profile not in leaves:
            end = lines.index("-----END CERTIFICATE-----", i)
            leaves[profile] = base64.b64decode("".join(lines[i + 1:end]))
    return leaves


def serve(conn, args, keys, csrs, log):
    conn.settimeout(10)
    while True:
        msg = recv_frame(conn)
        if msg is None:
            return
        msg_type, body = msg
        log.write(NAMES.get(msg_type, str(msg_type)) + "\n")
        log.flush()
        if msg_type == HELLO:
            claims = args.mode in ("claims-provisioned", "replay")
            payload = (field(SERIAL, args.serial) + field(MODEL, "FAKE") + field(MAC, "02:00:00:00:00:01") +
                       field(STATE, "provisioned" if claims else "unprovisioned"))
            if claims:
                payload += b"".join(field(PROFILE, p) + field(CERT, c) for p, c in installed_leaves(args.installed).items())
            conn.sendall(frame(IDENTITY, payload))
        elif msg_type == GET_CSRS:
            if args.mode != "replay":
                nonce = next((v.decode() for t, v in fields(body) if t == NONCE), None)
                csrs = {p: make_csr(keys[p], args.csr_serial or args.serial, nonce) for p in keys}
            payload = b"".join(field(PROFILE, p) + field(CSR, csrs[p]) for p in ("device", "media-signing"))
            whole = frame(CSRS, payload)
            if args.mode == "truncate":
                conn.sendall(whole[: len(whole) // 2])
                return
            conn.sendall(whole)
        elif msg_type == INSTALL:
            conn.sendall(frame(RESULT, field(STATUS, "ok")))
        else:
            conn.sendall(frame(ERROR, field(REASON, "unexpected message")))
            return


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["wrong-serial", "truncate", "claims-provisioned", "replay"], required=True)
    ap.add_argument("--serial", required=True)
    ap.add_argument("--csr-serial")
    ap.add_argument("--installed")
    ap.add_argument("--capture")
    ap.add_argument("--capture-nonce")
    ap.add_argument("--log", required=True)
    args = ap.parse_args()
    keydir = tempfile.TemporaryDirectory()
    keys = {p: os.path.join(keydir.name, p + ".key") for p in ("device", "media-signing")}
    csrs = capture_csrs(args.capture, args.capture_nonce) if args.mode == "replay" else None
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(4)
    print(f"listening on 127.0.0.1:{lsock.getsockname()[1]}", flush=True)
    with open(args.log, "a") as log:
        while True:
            conn, _ = lsock.accept()
            try:
                serve(conn, args, keys, csrs, log)
            except OSError:
                pass
            finally:
                conn.close()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
