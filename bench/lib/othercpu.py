#!/usr/bin/env python3
"""othercpu.py - CPU used by processes that are NOT ours during a measurement.

  othercpu.py snap FILE            -> save per-process CPU ticks to FILE
  othercpu.py diff FILE OURPID     -> print "cores top" where cores is the CPU
                                      (cores = CPU s / wall s) used since the
                                      snapshot by every user-space process
                                      that is not OURPID or a descendant of
                                      it, and top is the biggest consumer
                                      (comm:cores), or "-".

Counts utime+stime+cutime+cstime, so children a foreign process reaped in the
window (compiler jobs, test subprocesses) are included; for a child that was
already running at the snapshot only its CPU since then counts. Kernel threads are
skipped (loopback softirq work done on our behalf would land there).
"""
import json
import os
import sys
import time

HZ = os.sysconf("SC_CLK_TCK")


def read_all():
    procs = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
            comm = s[s.index("(") + 1:s.rindex(")")]
            rest = s[s.rindex(")") + 2:].split()
            ppid = int(rest[1])
            flags = int(rest[6])
            if int(d) == 2 or ppid == 2 or flags & 0x00200000:  # PF_KTHREAD
                continue
            ticks = int(rest[11]) + int(rest[12]) + int(rest[13]) + int(rest[14])
            start = int(rest[19])
            procs[d] = {"ppid": ppid, "ticks": ticks, "start": start, "comm": comm}
        except (OSError, ValueError, IndexError):
            pass
    return procs


def ours(procs, root):
    kids = {}
    for p, v in procs.items():
        kids.setdefault(str(v["ppid"]), []).append(p)
    out, todo = set(), [str(root)]
    while todo:
        p = todo.pop()
        out.add(p)
        todo.extend(kids.get(p, []))
    return out


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("snap", "diff"):
        sys.exit(__doc__)
    if sys.argv[1] == "snap":
        with open(sys.argv[2], "w") as f:
            json.dump({"t": time.monotonic(), "procs": read_all()}, f)
        return
    with open(sys.argv[2]) as f:
        before = json.load(f)
    now = read_all()
    wall = time.monotonic() - before["t"]
    mine = ours(now, sys.argv[3]) if len(sys.argv) > 3 else set()
    # A child reaped in the window adds its whole life to the parent's
    # cutime/cstime; subtract what that child had already used at the
    # snapshot, so only CPU spent inside the window is counted.
    # A gone process's total reaches the first surviving ancestor through
    # the chain of reaps, so charge its snapshot ticks to that ancestor.
    def alive(p):
        v, b = now.get(p), before["procs"].get(p)
        return v is not None and (b is None or v["start"] == b["start"])
    seen_gone = {}
    for p, b in before["procs"].items():
        if alive(p):
            continue
        a, hops = str(b["ppid"]), 0
        while not alive(a) and a in before["procs"] and hops < 64:
            a, hops = str(before["procs"][a]["ppid"]), hops + 1
        seen_gone[a] = seen_gone.get(a, 0) + b["ticks"]
    per = {}
    for p, v in now.items():
        if p in mine:
            continue
        b = before["procs"].get(p)
        if b and b["start"] == v["start"]:
            d = v["ticks"] - b["ticks"] - seen_gone.get(p, 0)
        else:
            d = v["ticks"]  # started during the window
        if d > 0:
            per[v["comm"]] = per.get(v["comm"], 0) + d
    total = sum(per.values()) / HZ / wall if wall > 0 else 0
    top = max(per.items(), key=lambda kv: kv[1]) if per else None
    print(f"{total:.2f} " + (f"{top[0]}:{top[1] / HZ / wall:.2f}" if top else "-"))


if __name__ == "__main__":
    main()
