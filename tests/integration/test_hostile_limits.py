#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Hostile local users against the broker's limits (issue 12): oversized
D-Bus calls, forged signals, descriptor exhaustion, the socket's creation,
reloads. Real unprivileged users (pnusers), the real socket, and both
buses: `test_hostile_limits.py NAME@dbus-daemon`."""
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time

from pntest import (HERE, SANITIZED, Broker, Bus, check, child, exec_then_release, fail, of_pid, run,
                    timed, vmrss_kib, wait_until)
from pnusers import Users, as_user

ME = os.getpid()
HOSTILE = os.path.join(HERE, "hostile-dbus.py")
# As test_core's churn test: the sanitized broker keeps a small quarantine,
# and its figures are the sanitizer's, not the broker's.
ASAN_SMALL_QUARANTINE = {"ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") +
                         ":quarantine_size_mb=4:thread_local_quarantine_size_kb=64"}
# The targets (1 MiB, 10 ms) are the broker's, checked in the normal build.
# In the sanitized one the figures are ASan's allocator's (measured: VmRSS
# +6.3 MiB and 270 ms of CPU at once around the 8 MB messages, against
# +0.1 MiB and 7 ms): there the bounds only catch gross regressions.
RSS_TOLERANCE_KIB = 1024 + (15 * 1024 if SANITIZED else 0)
# Both a native machine's: an emulated one (timed()) spends that many
# times the CPU time on the same work, a stall included.
STALL_LIMIT_MS = timed(1000 if SANITIZED else 10)


def cpu_ns(pid):
    """The broker's CPU time so far (/proc/PID/schedstat: time on a CPU, ns)."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])


class StallMeter:
    """Pings the broker over its socket, one at a time, for as long as it
    runs: the longest round trip (wall clock, which includes the broker
    waiting for a CPU on a loaded machine) and the most CPU time the broker
    spent during one (what it worked before it could answer: its stall)."""

    def __init__(self, broker):
        self.client = broker.client()
        self.pid = broker.proc.pid
        self.max_rtt = self.max_cpu = 0.0
        self.pings = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)
        self.error = None

    def _run(self):
        try:
            # Woken at once when the pong comes (real-time priority: no
            # other process runs first), so that the broker's CPU time
            # measured is what it spent before answering, not after.
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
            while not self.stop.is_set():
                c0, t0 = cpu_ns(self.pid), time.monotonic()
                r = self.client.request({"op": "ping"}, timeout=30)
                t1, c1 = time.monotonic(), cpu_ns(self.pid)
                check(r and r["type"] == "pong", f"ping: {r}")
                self.pings += 1
                self.max_rtt = max(self.max_rtt, t1 - t0)
                self.max_cpu = max(self.max_cpu, (c1 - c0) / 1e9)
                # A ping every 2 ms: pacing the probe (a real-time thread
                # pinging flat out would starve the callers it measures).
                self.stop.wait(0.002)
        except Exception as e:  # reported by the test's thread
            self.error = e

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        if self.error and exc[0] is None:
            raise self.error


def hostile(bus, user, count, big_every=0, window=32):
    """Run hostile-dbus.py as user; its summary."""
    r = subprocess.run(["/usr/bin/python3", HOSTILE, bus.address, str(count), str(window), str(big_every)],
                       capture_output=True, text=True, timeout=timed(600), preexec_fn=as_user(user))
    try:
        out = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        fail(f"hostile-dbus.py failed ({r.returncode}): {r.stdout}{r.stderr[-3000:]}")
    return out


def dbus_stats(b):
    return b.client().request({"op": "status"})


# --- item 3: D-Bus arguments bounded before anything is allocated ---------------


def test_dbus_oversized_refused(kind):
    """Each way of sending too much is refused with LimitExceeded and a
    message naming the bound, whoever sends it; a reasonable call still works."""
    import dbus
    with Users("h") as u, Bus(kind) as bus, Broker(dbus=bus.address) as b:
        out = hostile(bus, u.h, 21, big_every=20, window=8)
        check(not out["wrong"], f"unexpected replies: {out['wrong']}")
        conn = dbus.bus.BusConnection(bus.address)
        broker = conn.get_object("org.procnotify.Broker1", "/org/procnotify/Broker1")
        try:
            broker.Subscribe(["x"] * 257, {}, dbus_interface="org.procnotify.Broker1",
                             signature="asa{sv}")
            fail("Subscribe with 257 event names was accepted")
        except dbus.DBusException as e:
            check(e.get_dbus_name() == "org.procnotify.Broker1.Error.LimitExceeded"
                  and "256 entries" in e.get_dbus_message(), f"257 names: {e}")
        path = broker.Subscribe(["exit"] * 8, {"comm": dbus.Array(["a"] * 64, signature="s")},
                                dbus_interface="org.procnotify.Broker1", signature="asa{sv}")
        check(path.startswith("/org/procnotify/Broker1/subscription/"), f"Subscribe: {path}")
        conn.close()
        check(b.client().request({"op": "ping"})["type"] == "pong", "broker not serving")


def test_dbus_hostile_rss_and_stall(kind):
    """The acceptance measurement: 10,000 hostile D-Bus calls from an
    unprivileged user (every kind of hostile-dbus.py, twenty of them a
    Subscribe of a million event names, 8 MB each). The broker's VmRSS once
    the caller left is within 1 MiB of before, and no call made the broker
    work more than 10 ms at once (its CPU time while one ping waited)."""
    # 10,000 calls, twenty of them big, on a native machine; on one timed(1)
    # times slower (qemu's TCG), that many times fewer, two of them big, in
    # about the same time: the RSS bound (allocator slack, not a rate) then
    # still fails a leak of 1.3 KB a call or of one big message's arguments,
    # and the stall bound is per call whatever their number.
    calls = int(10000 / timed(1))
    big_every = calls // max(2, round(20 / timed(1)))
    # The kernel's events of the whole machine (other tests' bursts of a
    # million) are not what is measured: this broker takes only predumps.
    with Users("h") as u, Bus(kind) as bus, \
            Broker(config="[Connector]\nEvents=predump\n", dbus=bus.address,
                   env=ASAN_SMALL_QUARANTINE if SANITIZED else None) as b:
        pid = b.proc.pid
        # Warm-up: every kind once or more, and two big ones (sd-bus's and
        # libc's buffers reach their working size).
        out = hostile(bus, u.h, 200, big_every=100)
        check(b.client().request({"op": "ping"})["type"] == "pong", "broker not serving")
        rss0 = vmrss_kib(pid)
        start = time.monotonic()
        with StallMeter(b) as meter:
            out = hostile(bus, u.h, calls, big_every=big_every)
        took = time.monotonic() - start
        check(b.client().request({"op": "ping"})["type"] == "pong", "broker not serving")
        rss1 = vmrss_kib(pid)
        print(f"{kind}: {out['calls']} hostile calls, {out['bytes'] / 1e6:.0f} MB, in {took:.1f}s; "
              f"broker VmRSS {rss0} KiB before, {rss1} KiB after (tolerance {RSS_TOLERANCE_KIB} KiB); "
              f"longest stall {meter.max_cpu * 1000:.1f} ms of broker CPU "
              f"(limit {STALL_LIMIT_MS} ms), longest ping round trip {meter.max_rtt * 1000:.1f} ms "
              f"({meter.pings} pings); replies {out['replies']}")
        check(rss1 - rss0 <= RSS_TOLERANCE_KIB,
              f"broker VmRSS grew from {rss0} to {rss1} KiB over {calls} hostile D-Bus calls "
              f"(allowed: {RSS_TOLERANCE_KIB} KiB)")
        check(meter.max_cpu * 1000 <= STALL_LIMIT_MS,
              f"the broker's loop stalled {meter.max_cpu * 1000:.1f} ms (CPU time while a ping "
              f"waited; limit {STALL_LIMIT_MS} ms) during {calls} hostile D-Bus calls")
        check(meter.pings > 0, "no ping was answered during the hostile calls")
        check(not out["wrong"], f"unexpected replies: {out['wrong']}")


# --- item 14: a reload keeps the command line's overrides ----------------------------


def test_sighup_keeps_overrides():
    """--receive-buffer and --log-level override the file at start and
    after every SIGHUP."""
    config = "[Connector]\nReceiveBuffer=16M\n[Broker]\nLogLevel=warning\n"
    with Broker(config=config, args=["--receive-buffer=6M", "--log-level=debug"]) as b:
        before = b.client().request({"op": "status"})["connector"]["receive_buffer"]
        check(before < 16 << 20, f"--receive-buffer=6M not applied at start: {before}")
        b.signal(signal.SIGHUP)
        b.wait_notify("READY=1")
        after = b.client().request({"op": "status"})["connector"]["receive_buffer"]
        check(after == before, f"receive buffer {before} before SIGHUP, {after} after: the file's "
              "ReceiveBuffer=16M replaced --receive-buffer=6M")
        # At LogLevel=warning the reload's own info line would not be logged.
        check("Reloaded configuration" in b.log(),
              f"--log-level=debug lost at SIGHUP (the file's LogLevel=warning applied):\n{b.log()}")


# --- item 10: the socket is created with its mode; no path followed twice ------------


def test_socket_mode_without_chmod():
    """Under the unit's UMask=0077 the socket is still 0666, made so by
    bind() itself: the broker never chmod()s the path (which a symlink
    swapped in after bind() would redirect)."""
    strace = shutil.which("strace")
    check(strace, "strace is not installed")
    # LeakSanitizer cannot stop the world under a tracer (it fails the exit).
    b = Broker(env={"ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0"}
               if SANITIZED else None)
    trace = os.path.join(b.dir, "strace.out")
    b.prefix = ["/bin/sh", "-c", 'umask 077; exec "$@"', "sh", strace, "-f", "-qq", "-o", trace,
                "-e", "trace=chmod,fchmodat,lchown,chown,fchownat"]
    with b:
        mode = stat.S_IMODE(os.stat(b.socket_path).st_mode)
        check(mode == 0o666, f"socket mode {oct(mode)} under umask 077, expected 0o666")
        with open(trace) as f:
            calls = [line for line in f if "chmod" in line or "chown" in line]
        check(not calls, f"the broker changed a path's mode after creating it: {calls}")
        check(b.client().request({"op": "ping"})["type"] == "pong", "not serving")
        # SIGTERM to the broker itself (strace, sent one, would detach and
        # leave it running); strace exits with it.
        with open(f"/proc/{b.proc.pid}/task/{b.proc.pid}/children") as f:
            broker_pid = int(f.read().split()[0])
        os.kill(broker_pid, signal.SIGTERM)
        check(b.proc.wait(60) == 0, f"broker exited with {b.proc.returncode} after SIGTERM")


def test_socket_directory_checked():
    """A socket directory another user may write to (or that is not the
    broker's) is refused, with a message that says why."""
    with Users("d") as u:
        for mode, owner in ((0o777, 0), (0o755, u.d.uid)):
            d = tempfile.mkdtemp(prefix="pntest-dir-")
            try:
                os.chmod(d, mode)
                os.chown(d, owner, -1)
                try:
                    r = subprocess.run([os.environ["PROCNOTIFYD"], "--config", "/dev/null", "--dbus=none",
                                        "--socket", os.path.join(d, "events.sock")], capture_output=True,
                                       text=True, timeout=30)
                except subprocess.TimeoutExpired:
                    fail(f"the broker served a socket in a directory of mode {oct(mode)}, owner {owner} "
                         "(still running after 30 s)")
                check(r.returncode != 0 and "directory must be the broker's own" in r.stderr,
                      f"socket in a directory of mode {oct(mode)}, owner {owner}: rc {r.returncode}, "
                      f"stderr {r.stderr!r}")
                check(not os.path.exists(os.path.join(d, "events.sock")), "socket created anyway")
            finally:
                shutil.rmtree(d, ignore_errors=True)


# --- item 8: descriptor exhaustion --------------------------------------------------

# Run as a user: open up to N connections to the socket, read each one's
# first line, print {"hello": n, "refused": [messages]}, hold them until stdin closes.
OPENER = r"""
import json, socket, sys
path, n = sys.argv[1], int(sys.argv[2])
held, hello, refused = [], 0, []
for _ in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    line = b""
    try:
        while not line.endswith(b"\n"):
            data = s.recv(4096)
            if not data:
                break
            line += data
    except socket.timeout:
        refused.append("no first line within 5 s")
        break
    m = json.loads(line) if line else {"type": "eof"}
    if m.get("type") == "hello":
        hello += 1
        held.append(s)
    else:
        refused.append(m.get("message", m.get("type")))
        s.close()
print(json.dumps({"hello": hello, "refused": refused}), flush=True)
sys.stdin.read()
"""


def open_connections(path, user, n):
    p = subprocess.Popen(["/usr/bin/python3", "-c", OPENER, path, str(n)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=as_user(user))
    line = p.stdout.readline()
    if not line:
        fail(f"connection opener for {user} failed: {p.stderr.read()}")
    return p, json.loads(line)


def test_fd_exhaustion_root_reserve():
    """With RLIMIT_NOFILE lowered to 160, three users within their per-user
    limits (64 connections each) cannot take the broker's last descriptors:
    the reserve refuses them with a message and root still gets its hello.
    When root itself exhausts the descriptors, the broker stops accepting
    (no busy loop: under 0.5 s of CPU in 2 s; a spin takes it all), logs it once, and accepts
    again as soon as a client leaves."""
    nofile = 160
    with Users("a", "b", "c") as u, \
            Broker(config="[Connector]\nEvents=predump\n",  # its CPU time is the accept loop's
                   prefix=["prlimit", f"--nofile={nofile}:{nofile}"]) as b:
        control = b.client()
        openers = []
        try:
            got = []
            for user in (u.a, u.b, u.c):
                p, out = open_connections(b.socket_path, user, 64)
                openers.append(p)
                got.append(out)
            refused = sum(len(o["refused"]) for o in got)
            check(refused > 0 and all("short of file descriptors" in m for o in got for m in o["refused"]),
                  f"users were not refused by the reserve: {got}")
            try:
                root = b.client(timeout=5)
            except AssertionError as e:
                fail(f"root got no hello after three users opened 192 connections "
                     f"(RLIMIT_NOFILE {nofile}): {e}")
            check(root.request({"op": "ping"})["type"] == "pong", "root not served")
            # Root is exempt: its connections take the broker to EMFILE.
            socks = []
            for _ in range(nofile):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.setblocking(False)
                try:
                    s.connect(b.socket_path)
                except BlockingIOError:
                    s.close()
                    break  # the backlog is full
                socks.append(s)
            wait_until(lambda: "Cannot accept connections" in b.log(), "the out-of-descriptors message")
            cpu0 = cpu_ns(b.proc.pid)
            time.sleep(2)  # measuring CPU use over a period: nothing to wait for
            cpu = (cpu_ns(b.proc.pid) - cpu0) / 1e9
            check(cpu < 0.5, f"the broker used {cpu:.2f} s of CPU in 2 s while out of descriptors "
                  "(an accept loop spinning on EMFILE)")
            check(b.log().count("Cannot accept connections") == 1,
                  f"the out-of-descriptors message is not rate-limited:\n{b.log()[-3000:]}")
            st = control.request({"op": "status"})["socket"]
            check(st["accept_paused"] >= 1, f"accept_paused not counted: {st}")
        finally:
            for p in openers:
                p.stdin.close()
                p.wait()
        # Descriptors come back: the backlog is served, new clients too.
        for s in socks:
            s.close()
        wait_until(lambda: control.request({"op": "status"})["socket"]["clients"] <= 2,
                   "the clients' connections to close", timeout=30)
        check(b.client(timeout=10).request({"op": "ping"})["type"] == "pong", "not serving after")


# --- item 4: forged signals are neither routed nor believed ---------------------------

FORGE = os.path.join(HERE, "forge-signal.py")
CTL = os.environ.get("PROCNOTIFYCTL", "procnotifyctl")
EXAMPLE = os.path.join(HERE, "..", "..", "clients", "examples", "dbus-failover.py")


def forge(bus, user, pid, comm, *excluded):
    r = subprocess.run(["/usr/bin/python3", FORGE, bus.address, str(pid), comm, *excluded],
                       capture_output=True, text=True, timeout=60,
                       preexec_fn=as_user(user) if user else None)
    check(r.returncode == 0, f"forge-signal.py failed ({r.returncode}): {r.stdout}{r.stderr}")
    return json.loads(r.stdout)


def broker_subscriptions(bus):
    r = subprocess.run(["busctl", f"--address={bus.address}", "call", "--json=short",
                        "org.procnotify.Broker1", "/org/procnotify/Broker1", "org.procnotify.Broker1",
                        "GetStatistics"], capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, f"GetStatistics: {r.stderr}")
    return json.loads(r.stdout)["data"][0]["dbus"]["data"]["subscriptions"]["data"]


def test_forged_signals_ignored(kind):
    """A user who is not root cannot send the broker's signals, broadcast
    or unicast: the bus policy refuses them. Root can (the bus cannot tell
    one root process from another), so procnotifyctl monitor --dbus and
    dbus-failover.py accept signals only from the unique name that owns
    org.procnotify.Broker1: a forged Predump is neither printed nor acted
    on, and the real one that follows is."""
    from pnrawdbus import RawConnection, Body, SIGNAL, F_INTERFACE, F_MEMBER
    from pntest import Proc, PN_CHILD
    with Users("f") as u, Bus(kind) as bus, Broker(dbus=bus.address) as b, \
            tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        comm = f"pnfg{os.getpid() % 100000}"
        exe = os.path.join(tmp, comm)
        shutil.copy(PN_CHILD, exe)
        out = os.path.join(tmp, "failed-over")
        ex = Proc(["/usr/bin/python3", EXAMPLE, f"--address={bus.address}", f"--comm={comm}", "--once",
                   "--", "sh", "-c", f'echo "$PROCNOTIFY_PID" >> {out}'])
        mon = Proc([CTL, f"--dbus={bus.address}", "monitor", "--json", "--events=predump,exit",
                    f"--comm={comm}"])
        # A listener that believes any signal of the broker's interface (a
        # match rule without sender=): what reaches it, broadcast or
        # unicast, the bus routed.
        listener = RawConnection(bus.address)
        for iface in ("org.procnotify.Broker1", "org.example.Forger"):
            rule = f"type='signal',interface='{iface}'"
            listener.send(listener.method_call("org.freedesktop.DBus", "/org/freedesktop/DBus",
                                               "org.freedesktop.DBus", "AddMatch", "s", Body().string(rule).b))
            listener.read_reply(listener.serial)
        try:
            check(ex.line(what="the example's first line") == f"watching {comm}", "example not watching")
            wait_until(lambda: broker_subscriptions(bus) >= 2, "procnotifyctl's subscription", timeout=30)

            def signals_until_done():
                got = []
                while True:
                    m = listener.read_message(30)
                    if m[0] == SIGNAL and m[1].get(F_INTERFACE) == "org.example.Forger":
                        return got
                    if m[0] == SIGNAL:
                        got.append(m[1].get(F_MEMBER))

            # 1. Not root: the bus refuses every one (dbus-daemon answers
            # AccessDenied to a unicast signal, dbus-broker drops it).
            res = forge(bus, u.f, 999991, comm)
            check(listener.unique_name in res["unicast"] and
                  all(e in (None, "org.freedesktop.DBus.Error.AccessDenied") for e in res["unicast"].values()),
                  f"unexpected answers to the forger's unicast signals: {res['unicast']}")
            got = signals_until_done()
            check(not got, f"the bus routed an unprivileged user's forged {got} (broadcast and unicast)")
            # 2. Root: routed, but not believed.
            forge(bus, None, 999992, comm)
            check(signals_until_done() == ["Predump", "Predump"], "root's forged signals were not routed")
            # 3. The real crash.
            # Crash only once the broker has seen the exec: the name it
            # matches is the one the exec gave.
            c = b.client()
            c.subscribe(events=["exec"], match={"ppid": ME})
            p = child("segv", "nocore", hold=True, cwd=tmp, exe=exe)
            exec_then_release(c, p)
            p.wait()
            try:
                line = ex.line(what="the example's predump line")
            except AssertionError:
                ex.p.kill()
                fail(f"no predump line from the example: {ex.p.stderr.read()!r}")
            check(line == f"predump pid={p.pid} comm={comm}",
                  f"dbus-failover.py believed a forged signal: {line!r} (the real crash was {p.pid})")
            check(ex.p.wait(timeout=15) == 0, "the example did not exit after --once")
            ev = mon.json(what="procnotifyctl's first event")
            check(ev.get("tgid") == p.pid and ev.get("type") == "predump",
                  f"procnotifyctl monitor --dbus printed a forged event: {ev} (the real crash was {p.pid})")
            wait_until(lambda: os.path.exists(out), "the failover command")
            with open(out) as f:
                check(f.read().split() == [str(p.pid)], "failover ran for a forged pid")
        finally:
            listener.close()
            ex.close()
            mon.close()


TESTS = {
    "fd_exhaustion_root_reserve": test_fd_exhaustion_root_reserve,
    "sighup_keeps_overrides": test_sighup_keeps_overrides,
    "socket_mode_without_chmod": test_socket_mode_without_chmod,
    "socket_directory_checked": test_socket_directory_checked,
}
for _kind in Bus.KINDS:
    for _name, _fn in (("dbus_oversized_refused", test_dbus_oversized_refused),
                       ("dbus_hostile_rss_and_stall", test_dbus_hostile_rss_and_stall),
                       ("forged_signals_ignored", test_forged_signals_ignored)):
        TESTS[f"{_name}@{_kind}"] = (lambda fn, k: lambda: fn(k))(_fn, _kind)

if __name__ == "__main__":
    run(TESTS)
