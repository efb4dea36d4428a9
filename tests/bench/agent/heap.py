#!/usr/bin/env python3
"""heap.py MASSIF_OUT: the heap peak of the agent's own code and of the PKCS#11 module, from a massif profile
taken with --detailed-freq=1 --threshold=0 (every snapshot has its allocation tree).

A live allocation is the module's when a frame of its call stack is in the module or a library only the module
loads (the agent links none of them: SoftHSM stands in for a secure element whose memory is not the camera's);
everything else (the agent, wolfSSL, libc) is the agent's. Prints "agent PEAK module PEAK total PEAK" in bytes,
each the largest over the snapshots."""
import re
import sys

MODULE = re.compile(r"\(in [^)]*(libsofthsm2|libcrypto|libssl|libstdc\+\+|libgcc_s|libbotan|libsqlite3)[^)]*\)")
NODE = re.compile(r"^( *)n(\d+): (\d+) (.*)$")


def split(lines):
    """(agent, module) bytes of one snapshot's tree: a node in the module counts whole; else its own bytes
    beyond its children's are the agent's, and its children are classified in turn."""
    agent = module = 0
    stack = []  # (indent, bytes, children bytes so far, in module)
    for line in lines:
        m = NODE.match(line)
        if not m:
            continue
        indent, nbytes, where = len(m.group(1)), int(m.group(3)), m.group(4)
        while stack and stack[-1][0] >= indent:
            agent, module = close(stack.pop(), agent, module, stack)
        inside = bool(stack and stack[-1][3]) or (indent > 0 and bool(MODULE.search(where)))
        stack.append([indent, nbytes, 0, inside])
    while stack:
        agent, module = close(stack.pop(), agent, module, stack)
    return agent, module


def close(node, agent, module, stack):
    indent, nbytes, children, inside = node
    if stack:
        stack[-1][2] += nbytes
    if indent == 0:  # the root: the snapshot's total, classified through its children
        return agent, module
    own = nbytes - children  # allocated here and not through a deeper frame shown
    return (agent, module + own) if inside else (agent + own, module)


def main():
    snaps, cur, tree = [], None, None
    for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
        line = line.rstrip("\n")
        if line.startswith("snapshot="):
            if cur is not None:
                snaps.append((cur, tree))
            cur, tree = {}, []
        elif cur is not None and "=" in line and not line.startswith(" ") and not line.startswith("n"):
            k, v = line.split("=", 1)
            cur[k] = v
        elif cur is not None:
            tree.append(line)
    if cur is not None:
        snaps.append((cur, tree))
    peak_a = peak_m = peak_t = 0
    for info, lines in snaps:
        peak_t = max(peak_t, int(info.get("mem_heap_B", 0)))
        if info.get("heap_tree") in ("detailed", "peak"):
            a, m = split(lines)
            peak_a, peak_m = max(peak_a, a), max(peak_m, m)
    print(f"agent {peak_a} module {peak_m} total {peak_t}")


if __name__ == "__main__":
    main()
