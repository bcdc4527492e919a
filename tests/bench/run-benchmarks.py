#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""procnotify benchmarks. Not tests: they print figures and compare each
with its baseline measured in the same run.

latency: a process renames itself N times at a steady rate (each rename is
a kernel `comm` event); for each event, the time from just before the
prctl() to its arrival at
  - raw:        a minimal proc connector listener (the floor),
  - relay:      a naive one-hop relay (recv, format a line, write it to a
                Unix socket): the floor plus the cost of any extra hop,
  - procnotify: a JSON client of procnotifyd (default configuration),
  - D-Bus:      an sd-bus subscriber of procnotifyd on a private dbus-daemon,
  - forkstat:   forkstat -c -l, read through a pipe (line-buffered),
measured one after the other in one run, on the same machine.

Usage: run-benchmarks [--events N] [--rate R] [--out DIR] [--only NAME,...]
(./dev.sh bench runs it from the build directory.)
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
DBUS_POLICY = os.environ.get("DBUS_POLICY", "@DBUS_POLICY@")
BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>system</type><listen>unix:path={socket}</listen><auth>EXTERNAL</auth>
  <policy context="default"><allow user="*"/><deny own="*"/><deny send_type="method_call"/>
    <allow send_type="signal"/><allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/><allow receive_type="method_call"/>
    <allow receive_type="method_return"/><allow receive_type="error"/><allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/></policy>
  <include>{policy}</include>
  <limit name="max_incoming_bytes">1000000000</limit>
  <limit name="max_outgoing_bytes">1000000000</limit>
  <limit name="max_connections_per_user">1000</limit>
</busconfig>
"""


class DbusDaemon:
    """A private system-like dbus-daemon with the broker's policy."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="pnbench-bus-")
        self.socket = os.path.join(self.dir, "bus.sock")
        self.address = f"unix:path={self.socket}"
        conf = os.path.join(self.dir, "bus.conf")
        with open(conf, "w") as f:
            f.write(BUS_CONFIG.format(socket=self.socket, policy=DBUS_POLICY))
        self.proc = subprocess.Popen(["dbus-daemon", "--config-file", conf, "--nofork", "--print-address=1"],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        r, _, _ = select.select([self.proc.stdout], [], [], 15)
        if not r or not self.proc.stdout.readline().strip():
            sys.exit("dbus-daemon did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def prog(name):
    return os.path.join(HERE, name)


def wait_ready(proc, timeout=15):
    r, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if r else ""
    if line.strip() != "ready":
        proc.kill()
        sys.exit(f"benchmark receiver did not get ready: {line!r}")


def generate(n, rate):
    out = subprocess.run([prog("bench-gen"), str(n), str(rate)], capture_output=True,
                         text=True, check=True).stdout
    return {int(i): int(t) for i, t in (l.split() for l in out.splitlines())}


def collect(proc, timeout):
    out, _ = proc.communicate(timeout=timeout)
    return {int(i): int(t) for i, t in (l.split() for l in out.splitlines() if l.strip())}


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, int(round(p / 100 * (len(sorted_values) - 1)))))
    return sorted_values[k]


def stats(name, sent, received):
    lat = sorted((received[i] - sent[i]) / 1000 for i in received if i in sent)
    return {
        "name": name,
        "events": len(sent),
        "received": len(lat),
        "lost": len(sent) - len(lat),
        "p50_us": percentile(lat, 50),
        "p99_us": percentile(lat, 99),
        "max_us": lat[-1] if lat else float("nan"),
    }


class Broker:
    def __init__(self, extra=(), dbus="none"):
        self.dir = tempfile.mkdtemp(prefix="pnbench-")
        self.socket = os.path.join(self.dir, "events.sock")
        notify = os.path.join(self.dir, "notify.sock")
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(notify)
        env = dict(os.environ, NOTIFY_SOCKET=notify)
        self.log = open(os.path.join(self.dir, "broker.log"), "w")
        self.proc = subprocess.Popen([PROCNOTIFYD, "--socket", self.socket, f"--dbus={dbus}",
                                      "--config", "/dev/null", *extra],
                                     stdout=self.log, stderr=self.log, env=env)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.notify], [], [], 0.2)
            if r and b"READY=1" in self.notify.recv(4096):
                return
            if self.proc.poll() is not None:
                break
        sys.exit(f"procnotifyd did not start; see {self.log.name}")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(10)
        self.notify.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def run_raw(n, rate, timeout):
    rx = subprocess.Popen([prog("bench-raw"), str(n), str(timeout)], stdout=subprocess.PIPE, text=True)
    wait_ready(rx)
    sent = generate(n, rate)
    return stats("raw listener (floor)", sent, collect(rx, timeout + 5))


def run_relay(n, rate, timeout):
    d = tempfile.mkdtemp(prefix="pnbench-")
    path = os.path.join(d, "relay.sock")
    relay = subprocess.Popen([prog("bench-relay"), path], stdout=subprocess.PIPE, text=True)
    try:
        wait_ready(relay)
        rx = subprocess.Popen([prog("bench-json"), path, str(n), str(timeout)],
                              stdout=subprocess.PIPE, text=True)
        wait_ready(rx)
        sent = generate(n, rate)
        return stats("naive one-hop relay", sent, collect(rx, timeout + 5))
    finally:
        relay.kill()
        relay.wait()
        shutil.rmtree(d, ignore_errors=True)


def run_procnotify(n, rate, timeout):
    b = Broker()
    try:
        rx = subprocess.Popen([prog("bench-json"), b.socket, str(n), str(timeout)],
                              stdout=subprocess.PIPE, text=True)
        wait_ready(rx)
        sent = generate(n, rate)
        return stats("procnotify JSON", sent, collect(rx, timeout + 5))
    finally:
        b.stop()


def run_dbus(n, rate, timeout):
    bus = DbusDaemon()
    b = Broker(dbus=bus.address)
    try:
        rx = subprocess.Popen([prog("bench-dbus"), bus.address, str(n), str(timeout)],
                              stdout=subprocess.PIPE, text=True)
        wait_ready(rx)
        sent = generate(n, rate)
        return stats("procnotify D-Bus", sent, collect(rx, timeout + 5))
    finally:
        b.stop()
        bus.stop()


def dbus_rate(n, subscribers, rates):
    """The highest rate (of rates) at which every one of subscribers D-Bus
    subscribers receives all n events; the broker's own counters must show
    no kernel loss either."""
    best = 0
    rows = []
    for rate in rates:
        bus = DbusDaemon()
        b = Broker(dbus=bus.address)
        try:
            rxs = [subprocess.Popen([prog("bench-dbus"), bus.address, str(n), str(int(n / rate) + 20)],
                                    stdout=subprocess.PIPE, text=True) for _ in range(subscribers)]
            for rx in rxs:
                wait_ready(rx)
            t0 = time.monotonic()
            generate(n, rate)
            gen_s = time.monotonic() - t0
            got = [len(collect(rx, int(n / rate) + 30)) for rx in rxs]
        finally:
            b.stop()
            bus.stop()
        ok = min(got) == n
        rows.append({"rate": rate, "achieved": round(n / gen_s), "min_received": min(got), "ok": ok})
        print(f"  {subscribers} D-Bus subscribers at {rate}/s (generator reached {n / gen_s:.0f}/s): "
              f"least received {min(got)} of {n}", file=sys.stderr)
        if not ok:
            break
        best = rate
    return best, rows


def run_forkstat(n, rate, timeout):
    if not shutil.which("forkstat"):
        print("forkstat is not installed: skipping its baseline", file=sys.stderr)
        return None
    fs = subprocess.Popen(["forkstat", "-c", "-l", "-e", "comm"], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL)
    rx = subprocess.Popen([prog("bench-lines"), str(n), str(timeout)], stdin=fs.stdout,
                          stdout=subprocess.PIPE, text=True)
    fs.stdout.close()
    wait_ready(rx)
    # forkstat prints its header before it has subscribed: give it a moment.
    time.sleep(0.5)
    sent = generate(n, rate)
    res = collect(rx, timeout + 5)
    fs.terminate()
    fs.wait(5)
    return stats("forkstat -c -l", sent, res)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=10000)
    ap.add_argument("--rate", type=int, default=1000, help="events per second")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--only", default="raw,relay,procnotify,dbus,forkstat")
    ap.add_argument("--dbus-rate", action="store_true",
                    help="also find the rate 10 D-Bus subscribers sustain without loss")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run-benchmarks needs root (the proc connector)")
    os.makedirs(args.out, exist_ok=True)
    timeout = int(args.events / args.rate) + 30

    runners = {"raw": run_raw, "relay": run_relay, "procnotify": run_procnotify,
               "dbus": run_dbus, "forkstat": run_forkstat}
    rows = []
    for name in args.only.split(","):
        print(f"latency: {name} ({args.events} events at {args.rate}/s) …", file=sys.stderr)
        r = runners[name](args.events, args.rate, timeout)
        if r:
            rows.append(r)

    floor = next((r for r in rows if r["name"].startswith("raw")), None)
    print(f"\nLatency from prctl() to the subscriber, {args.events} comm events at {args.rate}/s "
          f"({os.cpu_count()} CPUs, kernel {os.uname().release})\n")
    print(f"| {'receiver':<22} | {'received':>9} | {'p50 µs':>8} | {'p99 µs':>8} | {'max µs':>8} | {'p50 ÷ floor':>11} |")
    print(f"|{'-' * 24}|{'-' * 11}:|{'-' * 9}:|{'-' * 9}:|{'-' * 9}:|{'-' * 12}:|")
    for r in rows:
        ratio = r["p50_us"] / floor["p50_us"] if floor and floor["p50_us"] else float("nan")
        print(f"| {r['name']:<22} | {r['received']:>9} | {r['p50_us']:>8.1f} | {r['p99_us']:>8.1f} "
              f"| {r['max_us']:>8.1f} | {ratio:>11.2f} |")
    path = os.path.join(args.out, "latency.csv")
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)
    print(f"\nCSV: {path}")

    if args.dbus_rate:
        n = 20000
        best, rate_rows = dbus_rate(n, 10, [2000, 5000, 10000, 20000, 40000, 80000])
        print(f"\n10 D-Bus subscribers, {n} comm events each: no loss up to {best}/s "
              f"(of the rates tried: {', '.join(str(r['rate']) for r in rate_rows)})")
        path = os.path.join(args.out, "dbus-rate.csv")
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rate_rows[0].keys()))
            w.writeheader()
            w.writerows(rate_rows)
        print(f"CSV: {path}")


if __name__ == "__main__":
    main()
