#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""procnotify benchmarks. Not tests: they print figures and compare each
with its baseline measured in the same run, one after the other, on the
same machine. Every event is a kernel `comm` event: bench-gen renames
itself "pn<xy>-<i>" with prctl(PR_SET_NAME), <xy> two letters of this run's
own, so that the events of another run at the same time do not count.

latency   N events at a steady rate; for each, the time from just before the
          prctl() to its arrival at
            raw        a minimal proc connector listener (the floor),
            relay      a naive one-hop relay (recv, format a line, write it
                       to a Unix socket): the floor plus any extra hop,
            procnotify a JSON client of procnotifyd (default configuration),
            dbus-relay a naive D-Bus relay (recv, one sd-bus signal,
                       sd_bus_flush) on a private dbus-daemon: the least any
                       relay through the bus can do,
            dbus       an sd-bus subscriber of procnotifyd on a private
                       dbus-daemon (and both again on dbus-broker),
            forkstat   forkstat -c -l -e comm, read through a pipe;
          p50, p99 and max, and each p50 and p99 divided by the floor's.
crash     the events users act on: bench-crash forks children that name
          themselves "pn<xy>-<i>" and die of SIGSEGV (RLIMIT_CORE 0), 1,000 at
          100/s; for each, the time from just before the signal to the
          arrival of its predump, and (in a run of its own) of its exit, at
          the raw listener (which maps pids to names from the comm events)
          and at a procnotify JSON client.
absorb    the largest rate each receiver absorbs: bursts of events at rising
          rates (5k/s … 500k/s, then as fast as the generator goes), each of
          max(20,000, one second's worth) events. A receiver absorbs a rate
          when every one of its subscribers receives every event of the burst,
          nothing reports a loss (overrun events, the broker's counters), and
          the generator reached at least 90% of the rate (otherwise the rate
          is beyond what this machine generates, and the ladder stops there).
          Receivers: raw, relay, procnotify with 1 and with 10 JSON
          subscribers, the naive D-Bus relay and procnotify with 10 D-Bus
          subscribers each, forkstat.
burst     1,000,000 events as fast as the generator goes, to raw, relay and
          procnotify with one C subscriber to everything (default
          configuration): events delivered per second, from the first prctl()
          to the last arrival, and what was lost, by the kernel and by the
          broker, and whether every loss was reported.
cpu       instructions per event in the broker (valgrind --tool=callgrind,
          stable on a busy machine): the broker runs under callgrind, K1 and
          then K2 events are sent (fresh broker each time), and
          (Ir(K2) - Ir(K1)) / (K2 - K1) is the cost of one event, start-up and
          idle cost cancelled. With 1 subscriber, and with the same subscriber
          plus 100 whose filters do not match.
rss       peak RSS (VmHWM) of the broker with a 30,000-process table (children
          of bench-procs, in pause()) and 1,000 connected clients subscribed
          to everything, after 1,000 events delivered to each; the baseline is
          the same broker with the host's own processes and no client.

Everything goes to --out: one CSV per section, PNG plots (gnuplot) and
results.md, the tables as printed.

Usage: run-benchmarks [--quick] [--only latency,crash,absorb,burst,cpu,rss] [--out DIR]
                      [--events N] [--rate R] [--rounds K] [--receivers raw,relay,…]
       run-benchmarks --replot DIR
(./dev.sh bench runs it from the build directory; it needs root.)
"""
import argparse
import csv
import json
import os
import random
import re
import resource
import select
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PROCNOTIFYD = os.environ.get("PROCNOTIFYD", "@PROCNOTIFYD@")
DBUS_POLICY = os.environ.get("DBUS_POLICY", "@DBUS_POLICY@")
DBUS_BROKER_RUN = os.environ.get("DBUS_BROKER_RUN", "@DBUS_BROKER_RUN@")
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
# Event names of this run's own ("pn<2 letters>-<i>", passed to every
# program in PNB_PREFIX): a run ignores another's events on a shared machine.
PREFIX = "pn" + "".join(random.choice(string.ascii_lowercase) for _ in range(2)) + "-"
os.environ["PNB_PREFIX"] = PREFIX
SUMMARY_ENV = dict(os.environ, PNB_SUMMARY="1")
SUB_COMM = '{"op":"subscribe","events":["comm"],"match":{"comm":"%s*"}}' % PREFIX
SUB_ALL = '{"op":"subscribe"}'
SUB_COMM_EXIT = '{"op":"subscribe","events":["comm","exit"],"match":{"comm":"%s*"}}' % PREFIX
SUB_NOMATCH = '{"op":"subscribe","events":["comm"],"match":{"comm":"bfdd"}}'

out_md = []  # the tables, as printed, for results.md


def say(text=""):
    print(text)
    out_md.append(text)


T0 = time.monotonic()


def note(text):
    print(f"[{time.monotonic() - T0:6.1f} s] {text}", file=sys.stderr, flush=True)


def prog(name):
    return os.path.join(HERE, name)


class DbusDaemon:
    """A private system-like bus with the broker's policy: dbus-daemon, or
    dbus-broker (through the integration tests' standalone launcher)."""

    def __init__(self, kind="dbus-daemon"):
        self.dir = tempfile.mkdtemp(prefix="pnbench-bus-")
        os.chmod(self.dir, 0o755)
        self.socket = os.path.join(self.dir, "bus.sock")
        self.address = f"unix:path={self.socket}"
        conf = os.path.join(self.dir, "bus.conf")
        with open(conf, "w") as f:
            f.write(BUS_CONFIG.format(socket=self.socket, policy=DBUS_POLICY))
        if kind == "dbus-daemon":
            self.proc = subprocess.Popen(["dbus-daemon", "--config-file", conf, "--nofork", "--print-address=1"],
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            r, _, _ = select.select([self.proc.stdout], [], [], 15)
            if not r or not self.proc.stdout.readline().strip():
                sys.exit("dbus-daemon did not start")
            return
        notify_path = os.path.join(self.dir, "notify.sock")
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(notify_path)
        log = os.path.join(self.dir, "bus.log")
        with open(log, "w") as f:
            self.proc = subprocess.Popen(["/usr/bin/python3", DBUS_BROKER_RUN, self.socket, conf],
                                         stdout=f, stderr=f, env=dict(os.environ, NOTIFY_SOCKET=notify_path))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and self.proc.poll() is None:
            r, _, _ = select.select([notify], [], [], 0.2)
            if r and b"READY=1" in notify.recv(4096):
                notify.close()
                return
        notify.close()
        with open(log) as f:
            why = f.read().strip().splitlines()
        self.stop()
        raise RuntimeError(f"dbus-broker did not start: {why[0] if why else 'no message'}")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


_dbus_broker_ok = None


def have_dbus_broker():
    """Whether dbus-broker is installed and starts here (a trial start, once)."""
    global _dbus_broker_ok
    if _dbus_broker_ok is None:
        _dbus_broker_ok = False
        if not (shutil.which("dbus-broker-launch") and os.path.exists(DBUS_BROKER_RUN)):
            note("dbus-broker is not installed: skipping the rows with it")
        else:
            try:
                DbusDaemon("dbus-broker").stop()
                _dbus_broker_ok = True
            except RuntimeError as e:
                note(f"{e}: skipping the rows with it")
    return _dbus_broker_ok


def raise_nofile(n=8192):
    resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))


class Broker:
    """procnotifyd on a private socket, default configuration unless config
    is given; wrapper (e.g. valgrind) runs it."""

    def __init__(self, dbus="none", config=None, wrapper=(), timeout=20):
        self.dir = tempfile.mkdtemp(prefix="pnbench-")
        self.socket = os.path.join(self.dir, "events.sock")
        conf = "/dev/null"
        if config:
            conf = os.path.join(self.dir, "procnotify.conf")
            with open(conf, "w") as f:
                f.write(config)
        notify = os.path.join(self.dir, "notify.sock")
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(notify)
        env = dict(os.environ, NOTIFY_SOCKET=notify)
        self.log = open(os.path.join(self.dir, "broker.log"), "w")
        self.proc = subprocess.Popen([*wrapper, PROCNOTIFYD, "--socket", self.socket, f"--dbus={dbus}",
                                      "--config", conf],
                                     stdout=self.log, stderr=self.log, env=env, preexec_fn=raise_nofile)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.notify], [], [], 0.2)
            if r and b"READY=1" in self.notify.recv(4096):
                return
            if self.proc.poll() is not None:
                break
        self.proc.kill()
        sys.exit(f"procnotifyd did not start; see {self.log.name}")

    def status(self):
        """The broker's status reply, as a dict."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(30)
            s.connect(self.socket)
            s.sendall(b'{"op":"status"}\n')
            buf = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    raise RuntimeError("no status reply")
                buf += chunk
                for line in buf.split(b"\n")[:-1]:
                    if b'"type":"status"' in line:
                        return json.loads(line)

    def losses(self):
        """(kernel loss, client loss) by the broker's own counters."""
        st = self.status()
        kernel = st["connector"]["lost"] + st["connector"]["enobufs"]
        client = st.get("socket", {}).get("events_lost", 0) + st.get("dbus", {}).get("signals_lost", 0)
        return kernel, client

    def vm(self, key):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])  # kB
        return 0

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.notify.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_ready(proc, timeout=15):
    r, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if r else ""
    if line.strip() != "ready":
        proc.kill()
        sys.exit(f"benchmark receiver did not get ready: {line!r}")


def kill_all(procs):
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


def generate(n, rate):
    out = subprocess.run([prog("bench-gen"), str(n), str(rate)], capture_output=True,
                         text=True, check=True).stdout
    return {int(i): int(t) for i, t in (l.split() for l in out.splitlines())}


def generate_summary(n, rate):
    """(first prctl ns, last prctl ns) of n events at rate (0: unpaced)."""
    out = subprocess.run([prog("bench-gen"), str(n), str(rate)], capture_output=True, text=True,
                         check=True, env=SUMMARY_ENV).stdout.split()
    return int(out[3]), int(out[5])


def collect(proc, timeout):
    out, _ = proc.communicate(timeout=timeout)
    return {int(i): int(t) for i, t in (l.split() for l in out.splitlines() if l.strip())}


def collect_summary(proc, timeout):
    out, _ = proc.communicate(timeout=timeout)
    f = out.split()
    return {"seen": int(f[1]), "first": int(f[3]), "last": int(f[5]), "overruns": int(f[7]),
            "lost": int(f[9]), "cpu": int(f[11]) / 1e6}


def cpu_seconds(pid):
    """User + system CPU time of pid so far (the receiver's own work)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, int(round(p / 100 * (len(sorted_values) - 1)))))
    return sorted_values[k]


def fmt_rate(r):
    return f"{r / 1000:.0f}k" if r >= 1000 else str(int(r))


# --- receivers -------------------------------------------------------------
#
# Each receiver setup starts what it needs and returns (procs to collect,
# cleanup, broker or None). Receivers get the event count and a timeout.


def recv_raw(n, timeout, env):
    rx = subprocess.Popen([prog("bench-raw"), str(n), str(timeout)], stdout=subprocess.PIPE, text=True, env=env)
    wait_ready(rx)
    return [rx], lambda: kill_all([rx]), None, rx.pid


def recv_relay(n, timeout, env):
    d = tempfile.mkdtemp(prefix="pnbench-")
    path = os.path.join(d, "relay.sock")
    relay = subprocess.Popen([prog("bench-relay"), path], stdout=subprocess.PIPE, text=True)
    wait_ready(relay)
    rx = subprocess.Popen([prog("bench-json"), path, str(n), str(timeout)], stdout=subprocess.PIPE,
                          text=True, env=env)
    wait_ready(rx)

    def cleanup():
        kill_all([rx, relay])
        shutil.rmtree(d, ignore_errors=True)
    return [rx], cleanup, None, relay.pid


def start_subscribers(argv, count, env, stop):
    """count receivers running argv, each ready; on failure, they and
    whatever stop() stops are stopped."""
    rxs = []
    try:
        for _ in range(count):
            rxs.append(subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env))
        for rx in rxs:
            wait_ready(rx)
    except BaseException:
        kill_all(rxs)
        stop()
        raise
    return rxs


def recv_procnotify(subscribers=1, request=SUB_COMM):
    """procnotify with bench-json subscribers; request None: the one
    bench-json makes for PNB_EVENT."""
    def setup(n, timeout, env):
        b = Broker()
        rxs = start_subscribers([prog("bench-json"), b.socket, str(n), str(timeout),
                                 *([request] if request else [])], subscribers, env, b.stop)

        def cleanup():
            kill_all(rxs)
            b.stop()
        return rxs, cleanup, b, b.proc.pid
    return setup


def recv_dbus(subscribers=1, kind="dbus-daemon"):
    def setup(n, timeout, env):
        bus = DbusDaemon(kind)
        b = Broker(dbus=bus.address)

        def cleanup(rxs=()):
            kill_all(rxs)
            b.stop()
            bus.stop()
        rxs = start_subscribers([prog("bench-dbus"), bus.address, str(n), str(timeout)], subscribers, env,
                                cleanup)
        return rxs, lambda: cleanup(rxs), b, b.proc.pid
    return setup


def recv_dbus_relay(subscribers=1, kind="dbus-daemon"):
    """The naive D-Bus relay (bench-dbus-relay) on a private bus, with
    bench-dbus subscribers as for procnotify."""
    def setup(n, timeout, env):
        bus = DbusDaemon(kind)
        relay = subprocess.Popen([prog("bench-dbus-relay"), bus.address], stdout=subprocess.PIPE, text=True)

        def cleanup(rxs=()):
            kill_all([*rxs, relay])
            bus.stop()
        try:
            wait_ready(relay)
        except BaseException:
            cleanup()
            raise
        rxs = start_subscribers([prog("bench-dbus"), bus.address, str(n), str(timeout)], subscribers, env,
                                cleanup)
        return rxs, lambda: cleanup(rxs), None, relay.pid
    return setup


def recv_forkstat(n, timeout, env):
    fs = subprocess.Popen(["forkstat", "-c", "-l", "-e", "comm"], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL)
    rx = subprocess.Popen([prog("bench-lines"), str(n), str(timeout)], stdin=fs.stdout,
                          stdout=subprocess.PIPE, text=True, env=env)
    fs.stdout.close()
    wait_ready(rx)
    # forkstat prints its header before it has subscribed: give it a moment.
    time.sleep(0.5)

    def cleanup():
        fs.terminate()
        try:
            fs.wait(5)
        except subprocess.TimeoutExpired:
            fs.kill()
            fs.wait()
        kill_all([rx])
    return [rx], cleanup, None, fs.pid


def have_forkstat():
    if shutil.which("forkstat"):
        return True
    note("forkstat is not installed: skipping its baseline")
    return False


# --- latency ---------------------------------------------------------------

LATENCY = [
    ("raw", "raw listener (floor)", recv_raw),
    ("relay", "naive one-hop relay", recv_relay),
    ("procnotify", "procnotify JSON", recv_procnotify()),
    ("dbus-relay", "naive D-Bus relay (dbus-daemon)", recv_dbus_relay()),
    ("dbus", "procnotify D-Bus (dbus-daemon)", recv_dbus()),
    ("dbus-broker-relay", "naive D-Bus relay (dbus-broker)", recv_dbus_relay(1, "dbus-broker")),
    ("dbus-broker", "procnotify D-Bus (dbus-broker)", recv_dbus(1, "dbus-broker")),
    ("forkstat", "forkstat -c -l", recv_forkstat),
]


def latency_one(setup, n, rate):
    """Latencies (µs) of n events at rate to the receiver setup makes."""
    timeout = int(n / rate) + 30
    procs, cleanup, _, _ = setup(n, timeout, os.environ)
    try:
        sent = generate(n, rate)
        received = collect(procs[0], timeout + 5)
    finally:
        cleanup()
    return [(received[i] - sent[i]) / 1000 for i in received if i in sent]


def bench_latency(args):
    wanted = args.receivers.split(",") if args.receivers else [k for k, _, _ in LATENCY]
    unknown = set(wanted) - {k for k, _, _ in LATENCY}
    if unknown:
        sys.exit(f"unknown receiver {', '.join(sorted(unknown))}; known: {', '.join(k for k, _, _ in LATENCY)}")
    # The floor always, first: every ratio is to it.
    receivers = [(k, name, setup) for k, name, setup in LATENCY
                 if (k == "raw" or k in wanted) and (k != "forkstat" or have_forkstat()) and
                 (not k.startswith("dbus-broker") or have_dbus_broker())]
    lat = {name: [] for _, name, _ in receivers}
    round_ratio = {name: [] for _, name, _ in receivers}
    # Rounds, each receiver in turn: a noisy minute on a shared machine
    # falls on all of them, not on one.
    per_round = args.events // args.rounds
    for rnd in range(args.rounds):
        for _, name, setup in receivers:
            note(f"latency: round {rnd + 1}/{args.rounds}: {name} ({per_round} events at {args.rate}/s) …")
            v = latency_one(setup, per_round, args.rate)
            lat[name] += v
            v.sort()
            if name == receivers[0][1]:
                floor_p50 = percentile(v, 50)
            round_ratio[name].append(percentile(v, 50) / floor_p50 if floor_p50 else float("nan"))
    rows = []
    for _, name, _ in receivers:
        v = sorted(lat[name])
        rows.append({"receiver": name, "events": per_round * args.rounds, "received": len(v),
                     "lost": per_round * args.rounds - len(v), "p50_us": percentile(v, 50),
                     "p99_us": percentile(v, 99), "max_us": v[-1] if v else float("nan")})
    floor = rows[0]
    for r in rows:
        r["p50_ratio"] = r["p50_us"] / floor["p50_us"] if floor["p50_us"] else float("nan")
        r["p99_ratio"] = r["p99_us"] / floor["p99_us"] if floor["p99_us"] else float("nan")
        rr = sorted(round_ratio[r["receiver"]])
        r["p50_ratio_rounds"] = rr[len(rr) // 2] if rr else float("nan")
    say(f"\n### Latency\n\nFrom prctl() to the subscriber, {per_round * args.rounds:,} comm events at "
        f"{args.rate}/s, in {args.rounds} rounds of every receiver in turn:\n")
    say("| receiver | received | p50 µs | p99 µs | max µs | p50 ÷ floor | p99 ÷ floor | "
        "p50 ÷ floor, median of rounds |")
    say("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        say(f"| {r['receiver']} | {r['received']:,} | {r['p50_us']:.1f} | {r['p99_us']:.1f} | "
            f"{r['max_us']:.1f} | {r['p50_ratio']:.2f} | {r['p99_ratio']:.2f} | {r['p50_ratio_rounds']:.2f} |")
    say("\n(The last column compares each round's p50 with the floor's in the same round, which a "
        "noisy minute disturbs less.)")
    write_csv(args, "latency.csv", rows)
    with open(os.path.join(args.out, "latency.dat"), "w") as f:
        for r in rows:
            f.write(f"\"{r['receiver']}\" {r['p50_us']:.1f} {r['p99_us']:.1f}\n")
    return rows


# --- crash -----------------------------------------------------------------

CRASH = [
    ("raw listener (floor)", recv_raw),
    ("procnotify JSON", recv_procnotify(request=None)),
]


def crash_one(setup, n, rate, event):
    """Latencies (µs) from a crash (just before the signal) to the event
    (predump or exit) reaching the receiver, n crashes at rate."""
    timeout = int(n / rate) + 30
    env = dict(os.environ, PNB_EVENT=event)
    procs, cleanup, _, _ = setup(n, timeout, env)
    try:
        out = subprocess.run([prog("bench-crash"), str(n), str(rate)], capture_output=True, text=True,
                             check=True).stdout
        sent = {int(i): int(t) for i, t in (l.split() for l in out.splitlines())}
        received = collect(procs[0], timeout + 5)
    finally:
        cleanup()
    return [(received[i] - sent[i]) / 1000 for i in received if i in sent]


def bench_crash(args):
    """The events users act on: a process crashes (SIGSEGV, no core), and
    its predump, then its exit, reach the subscriber."""
    per_round = args.crashes // args.rounds
    lat = {(e, name): [] for e in ("predump", "exit") for name, _ in CRASH}
    for rnd in range(args.rounds):
        for event in ("predump", "exit"):
            for name, setup in CRASH:
                note(f"crash: round {rnd + 1}/{args.rounds}: {event} to {name} ({per_round} crashes at "
                     f"{args.crash_rate}/s) …")
                lat[(event, name)] += crash_one(setup, per_round, args.crash_rate, event)
    rows = []
    for event in ("predump", "exit"):
        floor = None
        for name, _ in CRASH:
            v = sorted(lat[(event, name)])
            r = {"event": event, "receiver": name, "crashes": per_round * args.rounds, "received": len(v),
                 "p50_us": percentile(v, 50), "p99_us": percentile(v, 99),
                 "max_us": v[-1] if v else float("nan")}
            floor = floor or r
            r["p50_ratio"] = r["p50_us"] / floor["p50_us"] if floor["p50_us"] else float("nan")
            rows.append(r)
    say(f"\n### Crash latency: predump and exit\n\nFrom just before a process's SIGSEGV (RLIMIT_CORE 0) "
        f"to the subscriber's read(), {per_round * args.rounds:,} crashes at {args.crash_rate}/s, in "
        f"{args.rounds} rounds of every receiver in turn:\n")
    say("| event | receiver | received | p50 µs | p99 µs | max µs | p50 ÷ floor |")
    say("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        say(f"| {r['event']} | {r['receiver']} | {r['received']:,} | {r['p50_us']:.1f} | {r['p99_us']:.1f} | "
            f"{r['max_us']:.1f} | {r['p50_ratio']:.2f} |")
    write_csv(args, "crash.csv", rows)
    return rows


# --- absorb ----------------------------------------------------------------

ABSORB = [
    ("raw listener", recv_raw),
    ("naive one-hop relay", recv_relay),
    ("procnotify, 1 JSON subscriber", recv_procnotify(1)),
    ("procnotify, 10 JSON subscribers", recv_procnotify(10)),
    ("naive D-Bus relay, 10 subscribers (dbus-daemon)", recv_dbus_relay(10)),
    ("procnotify, 10 D-Bus subscribers (dbus-daemon)", recv_dbus(10)),
    ("naive D-Bus relay, 10 subscribers (dbus-broker)", recv_dbus_relay(10, "dbus-broker")),
    ("procnotify, 10 D-Bus subscribers (dbus-broker)", recv_dbus(10, "dbus-broker")),
    ("forkstat -c -l", recv_forkstat),
]


def burst_step(setup, n, rate):
    """Send n events at rate (0: unpaced) to the receiver setup makes; a dict
    with what the generator reached and what every subscriber got."""
    timeout = int(n / max(rate, 50000)) + 60
    procs, cleanup, broker, pid = setup(n, timeout, SUMMARY_ENV)
    try:
        cpu0 = cpu_seconds(pid)
        first, last = generate_summary(n, rate)
        got = [collect_summary(p, timeout + 10) for p in procs]
        # A receiver that is its own subscriber (raw) has exited: it said.
        cpu = cpu_seconds(pid) - cpu0 if pid != procs[0].pid else got[0]["cpu"]
        kernel_lost, client_lost = broker.losses() if broker else (0, 0)
    finally:
        cleanup()
    least = min(g["seen"] for g in got)
    arrival = max(g["last"] for g in got)
    return {
        "achieved": n / ((last - first) / 1e9) if last > first else float("inf"),
        "least_received": least,
        "delivered_per_s": least / ((arrival - first) / 1e9) if arrival > first else 0,
        "overruns": sum(g["overruns"] for g in got),
        "reported_lost": sum(g["lost"] for g in got),
        "kernel_lost": kernel_lost,
        "client_lost": client_lost,
        "cpu_us_per_event": 1e6 * cpu / least if least else float("nan"),
    }


def bench_absorb(args):
    ladder = [1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000, 300000, 500000, 0]
    rows, best = [], {}
    for name, setup in ABSORB:
        if (name.startswith("forkstat") and not have_forkstat()) or ("dbus-broker" in name and not have_dbus_broker()):
            continue
        best[name] = (0, "")
        for rate in ladder:
            n = max(args.absorb_min, int(rate * args.absorb_seconds)) if rate else args.absorb_max
            s = burst_step(setup, n, rate)
            gen_ok = rate == 0 or s["achieved"] >= 0.9 * rate
            ok = s["least_received"] == n and s["overruns"] == 0 and s["kernel_lost"] == 0 and \
                s["client_lost"] == 0
            rows.append({"receiver": name, "rate": rate or "max", "events": n,
                         "generator_per_s": round(s["achieved"]), **{k: s[k] for k in (
                             "least_received", "overruns", "reported_lost", "kernel_lost", "client_lost")},
                         "absorbed": ok and gen_ok})
            note(f"absorb: {name} at {fmt_rate(rate) + '/s' if rate else 'max'} (generator "
                 f"{s['achieved']:.0f}/s): least received {s['least_received']} of {n}, "
                 f"overruns {s['overruns']}, broker kernel/client loss {s['kernel_lost']}/{s['client_lost']}")
            if not gen_ok:
                # The generator could not go faster here: what it reached
                # counts if it was absorbed, and the ladder ends.
                if ok and s["achieved"] > best[name][0]:
                    best[name] = (s["achieved"], f"all the generator reached (asked {fmt_rate(rate)}/s)")
                elif ok:
                    best[name] = (best[name][0], f"the generator reached only {s['achieved'] / 1000:.0f}k/s "
                                                 f"when asked {fmt_rate(rate)}/s (absorbed)")
                else:
                    best[name] = (best[name][0], f"lost at {s['achieved'] / 1000:.0f}k/s, the generator "
                                                 f"falling short of {fmt_rate(rate)}/s")
                break
            if not ok:
                best[name] = (best[name][0], f"lost at {fmt_rate(rate) + '/s' if rate else 'top speed'}")
                break
            best[name] = (rate or s["achieved"], "" if rate else "the generator's top speed")
    say("\n### Burst rate absorbed with zero loss\n")
    say(f"Bursts of max({args.absorb_min:,}, {args.absorb_seconds:g} s worth) comm events at "
        f"{', '.join(fmt_rate(r) for r in ladder if r)}/s, then unpaced ({args.absorb_max:,} events), "
        "until one is not absorbed; absorbed = every subscriber got every event, nothing reported a "
        "loss, and the generator reached 90% of the rate (when it did not, the rate it reached is "
        "the figure):\n")
    say("| receiver | largest rate absorbed | ÷ raw listener | note |")
    say("|---|---:|---:|---|")
    raw = best.get("raw listener", (0, ""))[0]
    for name, (r, why) in best.items():
        say(f"| {name} | {r / 1000:.0f}k/s | {r / raw if raw else float('nan'):.2f} | {why} |")
    write_csv(args, "absorb.csv", rows)
    write_absorb_dat(args.out, rows)
    return best


def absorb_best(rows):
    """Per receiver (in order), the largest rate absorbed, from the rows of
    absorb.csv: a step with nothing lost counts with the asked rate, or what
    the generator reached when it fell short of it or ran unpaced; 0 if
    none. The same figure as the table's."""
    best = {}
    for r in rows:
        name = r["receiver"]
        best.setdefault(name, 0)
        lost = int(r["least_received"]) != int(r["events"]) or any(
            int(r[k]) for k in ("overruns", "kernel_lost", "client_lost"))
        if lost:
            continue
        gen = int(r["generator_per_s"])
        rate = 0 if r["rate"] == "max" else int(r["rate"])
        best[name] = max(best[name], rate if rate and gen >= 0.9 * rate else gen)
    return best


def write_absorb_dat(out, rows):
    """absorb.dat for the plot: one line per receiver, its name and rate."""
    with open(os.path.join(out, "absorb.dat"), "w") as f:
        for name, rate in absorb_best(rows).items():
            f.write(f"\"{name}\" {rate}\n")


# --- burst -----------------------------------------------------------------

def bench_burst(args):
    n = args.burst
    rows = []
    for name, setup in [("raw listener", recv_raw), ("naive one-hop relay", recv_relay),
                        ("procnotify, 1 C subscriber to everything", recv_procnotify(1, SUB_ALL))]:
        note(f"burst: {n} events as fast as possible to {name} …")
        s = burst_step(setup, n, 0)
        rows.append({"receiver": name, "events": n, "generator_per_s": round(s["achieved"]),
                     "received": s["least_received"], "delivered_per_s": round(s["delivered_per_s"]),
                     "kernel_lost": s["kernel_lost"], "client_lost": s["client_lost"],
                     "reported_lost": s["reported_lost"], "overruns": s["overruns"],
                     "cpu_us_per_event": round(s["cpu_us_per_event"], 2),
                     "capacity_per_s": round(1e6 / s["cpu_us_per_event"]) if s["cpu_us_per_event"] else 0})
    relay = rows[1]["delivered_per_s"]
    say(f"\n### A {n:,}-event burst\n")
    say("As fast as one process renames itself; delivered/s from the first prctl() to the last "
        "arrival; the receiver's CPU time (the broker's, the relay's) per event received, and the "
        "rate that makes one full CPU (capacity); losses by the broker's counters and as reported to "
        "the subscriber:\n")
    cap_relay = rows[1]["capacity_per_s"]
    say("| receiver | generator /s | received | delivered /s | ÷ relay | CPU µs / event | capacity /s | "
        "÷ relay | kernel lost | broker lost | reported lost |")
    say("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        # Overrun reports count every event lost, not only the generator's.
        unreported = max(0, n - r["received"] - r["reported_lost"])
        say(f"| {r['receiver']} | {r['generator_per_s']:,} | {r['received']:,} | {r['delivered_per_s']:,} | "
            f"{r['delivered_per_s'] / relay if relay else float('nan'):.2f} | {r['cpu_us_per_event']:.2f} | "
            f"{r['capacity_per_s']:,} | {r['capacity_per_s'] / cap_relay if cap_relay else float('nan'):.2f} | "
            f"{r['kernel_lost'] if 'procnotify' in r['receiver'] else '—'} | "
            f"{r['client_lost'] if 'procnotify' in r['receiver'] else '—'} | "
            f"{r['reported_lost'] if 'procnotify' in r['receiver'] else '—'}"
            f"{' (' + str(unreported) + ' unreported)' if 'procnotify' in r['receiver'] and unreported else ''} |")
    write_csv(args, "burst.csv", rows)
    return rows


# --- cpu -------------------------------------------------------------------

def callgrind_ir(path):
    with open(path) as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def cpu_run(k, extra_clients, rate):
    """Total Ir of a broker (under callgrind, kernel filter: comm events only,
    so that the rest of a busy host does not count) that delivers k events to
    one subscriber, with extra_clients non-matching ones."""
    out = tempfile.mktemp(prefix="pnbench-callgrind-")
    b = Broker(config="[Connector]\nEvents=comm\n", timeout=120,
               wrapper=["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                        # Only the event loop: start-up (seeding from /proc,
                        # which varies with the host) does not count.
                        "--collect-atstart=no", "--toggle-collect=sd_event_run"])
    procs = []
    try:
        if extra_clients:
            crowd = subprocess.Popen([prog("bench-clients"), b.socket, str(extra_clients), SUB_NOMATCH],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            procs.append(crowd)
            wait_ready(crowd, 120)
        rx = subprocess.Popen([prog("bench-json"), b.socket, str(k), str(int(k / max(rate, 1000)) + 60)],
                              stdout=subprocess.PIPE, text=True, env=SUMMARY_ENV)
        procs.append(rx)
        wait_ready(rx, 60)
        generate_summary(k, rate)
        got = collect_summary(rx, int(k / max(rate, 1000)) + 90)
        kernel_lost, client_lost = b.losses()
        received = b.status()["connector"]["received"]
    finally:
        for p in procs:
            if p.stdin:
                p.stdin.close()
        kill_all(procs)
        b.stop()
    ir = callgrind_ir(out)
    os.unlink(out)
    # Someone else's comm events (a test's burst) cost differently from ours:
    # such a run is not used.
    clean = got["seen"] == k and not kernel_lost and not client_lost and received - k <= max(50, k // 10)
    if not clean:
        note(f"cpu: run of {k} events disturbed (subscriber got {got['seen']}, the broker received "
             f"{received}, kernel loss {kernel_lost}, client loss {client_lost})")
    return ir, received, clean


def cpu_run_clean(k, extra_clients, rate, tries=4):
    for _ in range(tries):
        ir, received, clean = cpu_run(k, extra_clients, rate)
        if clean:
            return ir, received
    note(f"cpu: no undisturbed run of {k} events in {tries} tries: the figure is suspect")
    return ir, received


def bench_cpu(args):
    if not shutil.which("valgrind"):
        note("valgrind is not installed: skipping the cpu benchmark")
        return None
    k1, k2 = args.cpu_events // 5, args.cpu_events
    rows = []
    for label, extra, rate in [("1 subscriber, 1,000/s (a wakeup per event)", 0, 1000),
                               ("1 subscriber, unpaced burst (batched)", 0, 0),
                               ("1 + 100 not matching, 1,000/s", 100, 1000),
                               ("1 + 100 not matching, unpaced burst", 100, 0)]:
        note(f"cpu: {label}: {k1} and {k2} events under callgrind …")
        ir1, rec1 = cpu_run_clean(k1, extra, rate)
        ir2, rec2 = cpu_run_clean(k2, extra, rate)
        # Per event sent: the few comm events of the rest of the host that an
        # accepted run also saw (cheaper than ours: no subscriber wants them)
        # count as part of ours, an upper bound.
        per = (ir2 - ir1) / (k2 - k1)
        rows.append({"case": label, "subscribers": 1 + extra, "rate": rate, "k1": k1, "ir1": ir1, "k2": k2,
                     "ir2": ir2, "received1": rec1, "received2": rec2, "ir_per_event": round(per)})
    say("\n### CPU instructions per event in the broker\n")
    say(f"valgrind --tool=callgrind; Ir per event = (Ir({k2:,} events) − Ir({k1:,} events)) ÷ "
        f"{k2 - k1:,}, each count in a fresh broker whose kernel filter passes comm events only, "
        "counting only inside the event loop (sd_event_run), so that start-up does not count and what "
        "else is constant cancels out; a run in which the broker received over 10% more comm events "
        "than were sent (the rest of the host renames threads too) is repeated:\n")
    say("| case | Ir / event | ÷ 1 subscriber | per non-matching subscriber |")
    say("|---|---:|---:|---:|")
    nomatch = []
    for r in rows:
        base = next(x for x in rows if x["subscribers"] == 1 and x["rate"] == r["rate"])["ir_per_event"]
        extra = (r["ir_per_event"] - base) / (r["subscribers"] - 1) if r["subscribers"] > 1 else None
        if extra is not None:
            nomatch.append(extra)
        say(f"| {r['case']} | {r['ir_per_event']:,} | {r['ir_per_event'] / base:.2f} | "
            f"{'—' if extra is None else f'{extra:.0f}'} |")
    write_csv(args, "cpu.csv", rows)
    return rows


# --- rss -------------------------------------------------------------------

class PidMax:
    """Raise kernel.pid_max for the duration if n more processes would not fit."""

    PATH = "/proc/sys/kernel/pid_max"

    def __init__(self, n):
        with open(self.PATH) as f:
            self.old = int(f.read())
        running = len([d for d in os.listdir("/proc") if d.isdigit()])
        self.new = None
        if running + n + 8192 > self.old:
            self.new = 1 << 17
            while self.new < running + n + 8192:
                self.new *= 2
            with open(self.PATH, "w") as f:
                f.write(str(self.new))

    def restore(self):
        if self.new:
            with open(self.PATH, "w") as f:
                f.write(str(self.old))


def bench_rss(args):
    nprocs, nclients = args.rss_procs, args.rss_clients
    rows = []

    def row(case, b):
        st = b.status()
        rows.append({"case": case, "table": st["process_table"]["entries"],
                     "clients": st["socket"]["clients"] - 1,  # not the one asking
                     "vmhwm_kib": b.vm("VmHWM"), "vmrss_kib": b.vm("VmRSS")})
        note(f"rss: {case}: VmHWM {rows[-1]['vmhwm_kib'] / 1024:.1f} MiB")

    def deliver(b, n, rate):
        queued = b.status()["socket"]["events_queued"]
        generate_summary(n, rate)
        # Until the crowd got them (or lost them): the queues are part of the peak.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            st = b.status()["socket"]
            if st["events_queued"] + st["events_lost"] - queued >= n * nclients:
                break
            time.sleep(0.2)

    note("rss: baseline, the broker with the host's processes and no client …")
    b = Broker()
    try:
        row("baseline: the host's processes, no client", b)
    finally:
        b.stop()

    note(f"rss: {nprocs} processes, {nclients} clients …")
    pm = PidMax(nprocs)
    procs = subprocess.Popen([prog("bench-procs"), str(nprocs)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    b = None
    try:
        wait_ready(procs, 300)
        b = Broker(timeout=120)
        row(f"{nprocs:,} more processes (seeded from /proc)", b)
        # Typical clients first: each watches some processes (here: the
        # generator's), then the worst case: every client takes everything,
        # so that every event on the host is queued a thousand times.
        for what, request in [("watching the generator's comm and exit events", SUB_COMM_EXIT),
                              ("subscribed to everything", SUB_ALL)]:
            crowd = subprocess.Popen([prog("bench-clients"), b.socket, str(nclients), request],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            try:
                wait_ready(crowd, 120)
                row(f"and {nclients:,} clients {what}", b)
                deliver(b, 100, 100)
                row("and 100 events at 100/s delivered to each", b)
                deliver(b, 1000, 1000)
                row("and 1,000 events at 1,000/s delivered to each (a backlog)", b)
            finally:
                crowd.stdin.close()
                kill_all([crowd])
            time.sleep(1)  # the broker notices they left
    finally:
        if b:
            b.stop()
        procs.stdin.close()
        procs.wait(120)
        pm.restore()
    say("\n### Peak memory of the broker\n")
    say("VmHWM (peak RSS) and VmRSS of one broker as it gets more to hold, in order:\n")
    say("| case | table entries | clients | VmHWM MiB | VmRSS MiB |")
    say("|---|---:|---:|---:|---:|")
    for r in rows:
        say(f"| {r['case']} | {r['table']:,} | {r['clients']:,} | {r['vmhwm_kib'] / 1024:.1f} | "
            f"{r['vmrss_kib'] / 1024:.1f} |")
    write_csv(args, "rss.csv", rows)
    return rows


# --- output ----------------------------------------------------------------

def write_csv(args, name, rows):
    if not rows:
        return
    path = os.path.join(args.out, name)
    keys = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


GNUPLOT_LATENCY = """
set terminal pngcairo size 900,480 font "sans,10"
set output "{out}/latency.png"
set title "Latency kernel event -> subscriber ({events} comm events at {rate}/s)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set logscale y
set ylabel "microseconds (log)"
set yrange [1:*]
set grid ytics
set key top left
set xtics rotate by -20
plot "{out}/latency.dat" using 2:xtic(1) title "p50", "" using 3 title "p99"
"""

# One bar per receiver: the largest rate it absorbed with zero loss, the
# table's figure (a receiver that lost events at the lowest rate has none,
# and is marked so, not drawn as full).
GNUPLOT_ABSORB = """
set terminal pngcairo size 900,560 font "sans,10"
set output "{out}/absorb.png"
set title "Largest burst rate absorbed with zero loss (every event to every subscriber, no overrun)"
set style fill solid 0.6 border -1
set boxwidth 0.6
set logscale y
set yrange [500:2e6]
set format y "%.0s%c/s"
set ylabel "events per second (log)"
set grid ytics
set xtics rotate by 30 right nomirror
set bmargin 11
set key off
plot "{out}/absorb.dat" using 0:($2 > 0 ? $2 : NaN):xtic(1) with boxes, \\
     "" using 0:($2 > 0 ? $2 : 700):($2 > 0 ? sprintf("%.0fk/s", $2 / 1000) : "none") with labels offset 0,0.8
"""


def plot(args, have_latency, n_absorb):
    if not shutil.which("gnuplot"):
        note("gnuplot is not installed: no plots")
        return []
    made = []
    scripts = []
    if have_latency:
        scripts.append(("latency.png", GNUPLOT_LATENCY.format(out=args.out, events=args.events, rate=args.rate)))
    if n_absorb:
        scripts.append(("absorb.png", GNUPLOT_ABSORB.format(out=args.out)))
    for name, script in scripts:
        r = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
        if r.returncode == 0:
            made.append(os.path.join(args.out, name))
        else:
            note(f"gnuplot failed for {name}: {r.stderr.strip()}")
    return made


def check_targets(results):
    """The targets of the issues, each with the figure that decides it."""
    lines = []

    def verdict(ok, text):
        lines.append(f"- {'met' if ok else 'MISSED'}: {text}")

    lat = results.get("latency")
    if lat:
        by = {r["receiver"]: r for r in lat}
        pj, dj = by.get("procnotify JSON"), by.get("procnotify D-Bus (dbus-daemon)")
        db = by.get("procnotify D-Bus (dbus-broker)")

        def baseline(name):
            # What the least relay of the same kind reached: a target below it is out of reach.
            r = by.get(name)
            return f"; the {name} itself: {r['p50_ratio']:.2f} ×" if r else ""
        if pj:
            verdict(pj["p50_ratio"] <= 1.5, f"JSON p50 ≤ 1.5 × floor ({pj['p50_ratio']:.2f} ×; "
                    f"{pj['p50_ratio_rounds']:.2f} × as the median of rounds{baseline('naive one-hop relay')})")
            verdict(pj["p99_us"] <= 1000, f"JSON p99 ≤ 1 ms ({pj['p99_us']:.0f} µs)")
        for name, r in (("dbus-daemon", dj), ("dbus-broker", db)):
            if r:
                verdict(r["p50_ratio"] <= 3, f"D-Bus p50 ≤ 3 × floor, on {name} ({r['p50_ratio']:.2f} ×; "
                        f"{r['p50_ratio_rounds']:.2f} × as the median of rounds"
                        f"{baseline(f'naive D-Bus relay ({name})')})")
    burst = results.get("burst")
    if burst:
        pn, relay = burst[2], burst[1]
        verdict(pn["delivered_per_s"] >= 300000,
                f"≥ 300,000 events/s to one C subscriber to everything ({pn['delivered_per_s']:,}/s; "
                f"the generator reached {pn['generator_per_s']:,}/s)")
        if relay["delivered_per_s"] and relay["capacity_per_s"]:
            verdict(pn["delivered_per_s"] >= 3 * relay["delivered_per_s"] and
                    pn["capacity_per_s"] >= 3 * relay["capacity_per_s"],
                    f"3 × the naive relay ({pn['delivered_per_s'] / relay['delivered_per_s']:.2f} × delivered, "
                    f"{pn['capacity_per_s'] / relay['capacity_per_s']:.2f} × capacity)")
        verdict(pn["kernel_lost"] == 0, f"{pn['events']:,}-event burst, no kernel-side loss "
                f"({pn['kernel_lost']} lost)")
        unreported = max(0, pn["events"] - pn["received"] - pn["reported_lost"])
        verdict(unreported == 0, f"no loss that is not reported ({unreported} unreported; "
                f"{pn['client_lost']:,} dropped for a slow subscriber, all reported)")
        verdict(pn["capacity_per_s"] >= 300000,
                f"capacity ≥ 300,000 events/s on one CPU ({pn['capacity_per_s']:,}/s, "
                f"{pn['cpu_us_per_event']:.2f} µs of broker CPU per event)")
    rss = results.get("rss")
    if rss:
        r = rss[3]  # typical clients, served at a rate they keep up with
        verdict(r["vmhwm_kib"] <= 32 * 1024, f"RSS ≤ 32 MiB with {r['clients']:,} clients and "
                f"{r['table']:,} processes ({r['vmhwm_kib'] / 1024:.1f} MiB; "
                f"{rss[-2]['vmhwm_kib'] / 1024:.1f} MiB with every client subscribed to everything)")
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="latency,crash,absorb,burst,cpu,rss")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--quick", action="store_true", help="small counts, for development (figures are rough)")
    ap.add_argument("--events", type=int, help="latency: events (default 10000)")
    ap.add_argument("--rate", type=int, default=1000, help="latency: events per second")
    ap.add_argument("--rounds", type=int, default=5, help="latency: rounds of every receiver in turn")
    ap.add_argument("--receivers", help="latency: these receivers only (the raw floor is always measured): "
                    "raw, relay, procnotify, dbus-relay, dbus, dbus-broker-relay, dbus-broker, forkstat")
    ap.add_argument("--replot", metavar="DIR", help="only draw the plots again from the CSV files in DIR "
                    "(absorb.csv, latency.csv), e.g. docs/bench")
    args = ap.parse_args()
    if args.replot:
        args.out = args.replot
        with open(os.path.join(args.out, "absorb.csv")) as f:
            write_absorb_dat(args.out, list(csv.DictReader(f)))
        have_latency = os.path.exists(os.path.join(args.out, "latency.dat"))
        print("\n".join(plot(args, have_latency, 1)))
        return
    if os.geteuid() != 0:
        sys.exit("run-benchmarks needs root (the proc connector, pid_max)")
    q = args.quick
    args.events = args.events or (2000 if q else 10000)
    args.absorb_min, args.absorb_seconds, args.absorb_max = (1000, 0.2, 100000) if q else (2000, 1.0, 1000000)
    args.burst = 200000 if q else 1000000
    args.crashes, args.crash_rate = (100, 50) if q else (1000, 100)
    args.cpu_events = 2500 if q else 10000
    args.rss_procs, args.rss_clients = (3000, 100) if q else (30000, 1000)
    os.makedirs(args.out, exist_ok=True)
    sections = args.only.split(",")

    say(f"procnotify benchmarks, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
        f"{os.cpu_count()} CPUs, kernel {os.uname().release}, load average "
        f"{os.getloadavg()[0]:.2f} at the start{' (--quick: rough figures)' if q else ''}")
    results = {}
    runners = {"latency": bench_latency, "crash": bench_crash, "absorb": bench_absorb, "burst": bench_burst, "cpu": bench_cpu,
               "rss": bench_rss}
    for s in sections:
        if s not in runners:
            sys.exit(f"unknown section {s!r}; known: {', '.join(runners)}")
        results[s] = runners[s](args)

    say(f"\nLoad average at the end: {os.getloadavg()[0]:.2f} (1 min), {os.getloadavg()[1]:.2f} (5 min).")
    targets = check_targets(results)
    if targets:
        say("\n### Targets\n")
        for t in targets:
            say(t)
    made = plot(args, "latency" in results, len(results.get("absorb") or {}))
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write("\n".join(out_md) + "\n")
    print(f"\nResults in {args.out}: results.md, {', '.join(sorted(n for n in os.listdir(args.out) if n.endswith('.csv')))}"
          f"{', ' + ', '.join(os.path.basename(m) for m in made) if made else ''}")


if __name__ == "__main__":
    main()
