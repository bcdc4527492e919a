#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""procnotify-hooks benchmark (not a test): event-to-hook latency.

A process renames itself N times at a steady rate (each rename a kernel
`comm` event, named "pnb-<i>"); procnotifyd (default configuration) and
procnotify-hooks run a hook for each. The hook (bench-hook, a small C
program) reads CLOCK_MONOTONIC as its first act and reports it with the
event's `ts_ns` (the kernel's CLOCK_MONOTONIC timestamp of the event): the
latency is everything from the kernel to the hook running — broker,
socket, runner, fork and exec. The same run is repeated with the hook
behind `/bin/sh -c`, the cost of a shell hook.

Usage: bench-hooks [--events N] [--rate R] [--out DIR]
"""
import argparse
import csv
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PROCNOTIFYD = os.environ.get("PROCNOTIFYD", "@PROCNOTIFYD@")
PROCNOTIFY_HOOKS = os.environ.get("PROCNOTIFY_HOOKS", "@PROCNOTIFY_HOOKS@")


def wait_notify(sock, proc, what, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([sock], [], [], 0.2)
        if r and b"READY=1" in sock.recv(4096):
            return
        if proc.poll() is not None:
            break
    sys.exit(f"{what} did not start")


def percentile(v, p):
    return v[min(len(v) - 1, max(0, int(round(p / 100 * (len(v) - 1)))))] if v else float("nan")


def run(name, command, n, rate, d):
    hooks_dir = tempfile.mkdtemp(prefix="hooks.d-", dir=d)
    with open(os.path.join(hooks_dir, "bench.conf"), "w") as f:
        # Exe=: only this run's generator (a private copy), not another
        # benchmark's "pnb-" events on the same machine.
        f.write(f"[Match]\nEvents=comm\nComm=pnb-*\nExe={GEN}\n[Exec]\nCommand={command}\n"
                f"Timeout=10s\nMaxConcurrent=32\nMaxQueued=4096\n")
    sock_path = os.path.join(d, "broker.sock")
    notify_path = os.path.join(d, "notify.sock")
    procs = []
    try:
        for what, cmd in (("procnotifyd", [PROCNOTIFYD, "--socket", sock_path, "--dbus=none",
                                           "--config", "/dev/null"]),
                          ("procnotify-hooks", [PROCNOTIFY_HOOKS, "--socket", sock_path,
                                                "--hooks-dir", hooks_dir, "--log-level=warning"])):
            if os.path.exists(notify_path):
                os.unlink(notify_path)
            notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            notify.bind(notify_path)
            log = open(os.path.join(d, what + ".log"), "a")
            p = subprocess.Popen(cmd, stdout=log, stderr=log, env=dict(os.environ, NOTIFY_SOCKET=notify_path))
            procs.append(p)
            wait_notify(notify, p, what)
            notify.close()
        # Reports are read while the generator runs: a Unix datagram queue
        # is short (net.unix.max_dgram_qlen), and a full one would block
        # the hooks and measure that instead.
        gen = subprocess.Popen([GEN, str(n), str(rate)], stdout=subprocess.DEVNULL)
        procs.append(gen)
        got = {}
        deadline = time.monotonic() + n / rate + 30
        while len(got) < n and time.monotonic() < deadline:
            r, _, _ = select.select([REPORT], [], [], 1)
            if r:
                i, ts, start = REPORT.recv(256).split()
                got[int(i)] = (int(start) - int(ts)) / 1000
        gen.wait(30)
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
            p.wait(15)
    lat = sorted(got.values())
    return {"hook": name, "events": n, "ran": len(lat), "p50_us": percentile(lat, 50),
            "p99_us": percentile(lat, 99), "max_us": lat[-1] if lat else float("nan")}


def main():
    global REPORT, GEN
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=300)
    ap.add_argument("--rate", type=int, default=50, help="events per second")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench-hooks needs root (the proc connector)")
    os.makedirs(args.out, exist_ok=True)
    d = tempfile.mkdtemp(prefix="pnbench-hooks-")
    GEN = os.path.join(d, "bench-gen-hooks")
    shutil.copy(os.path.join(HERE, "bench-gen"), GEN)
    REPORT = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    REPORT.bind(os.path.join(d, "report.sock"))
    REPORT.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    hook = os.path.join(HERE, "bench-hook")
    rep = os.path.join(d, "report.sock")
    rows = []
    try:
        for name, command in (("exec (C program)", f"{hook} {rep}"),
                              ("/bin/sh -c", f"/bin/sh -c '{hook} {rep}'")):
            print(f"hooks: {name} ({args.events} events at {args.rate}/s) …", file=sys.stderr)
            rows.append(run(name, command, args.events, args.rate, d))
    finally:
        shutil.rmtree(d, ignore_errors=True)
    print(f"\nLatency from the kernel's event (ts_ns) to the hook's start, {args.events} comm events "
          f"at {args.rate}/s ({os.cpu_count()} CPUs, kernel {os.uname().release})\n")
    print(f"| {'hook command':<18} | {'ran':>5} | {'p50 µs':>8} | {'p99 µs':>8} | {'max µs':>8} |")
    print(f"|{'-' * 20}|{'-' * 6}:|{'-' * 9}:|{'-' * 9}:|{'-' * 9}:|")
    for r in rows:
        print(f"| {r['hook']:<18} | {r['ran']:>5} | {r['p50_us']:>8.0f} | {r['p99_us']:>8.0f} | {r['max_us']:>8.0f} |")
    path = os.path.join(args.out, "hooks-latency.csv")
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)
    print(f"\nCSV: {path}")


if __name__ == "__main__":
    main()
