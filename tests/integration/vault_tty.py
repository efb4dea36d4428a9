#!/usr/bin/env python3
"""Runs a command on a pseudo-terminal and types each passphrase once its prompt ("passphrase of share N: ") is
shown, as a custodian would; prints everything the terminal showed, then "exit STATUS".
  vault_tty.py N=PASSPHRASE... -- COMMAND ARGS..."""
import os
import pty
import sys
import time

split = sys.argv.index("--")
answers = [a.split("=", 1) for a in sys.argv[1:split]]
cmd = sys.argv[split + 1:]
pid, fd = pty.fork()
if pid == 0:
    os.execv(cmd[0], cmd)
seen, deadline = b"", time.time() + 60
for n, passphrase in answers:
    while b"passphrase of share %s: " % n.encode() not in seen and time.time() < deadline:
        seen += os.read(fd, 1024)
    os.write(fd, passphrase.encode() + b"\n")
while time.time() < deadline:
    try:
        chunk = os.read(fd, 1024)
    except OSError:  # the command ended and closed the terminal
        break
    if not chunk:
        break
    seen += chunk
print(seen.decode(errors="replace"))
print("exit", os.waitpid(pid, 0)[1] >> 8)
