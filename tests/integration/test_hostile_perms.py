#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Hostile local users (issue 12): what a real unprivileged user must not
get the broker to do or show for it, on the JSON socket and both buses
(`test_hostile_perms.py NAME@json`, `NAME@dbus-daemon`, `NAME@dbus-broker`).

- signals only as far as the subscriber could send them itself: not to its
  process once that executed a set-uid root program (which became root for
  good), and never to a bare pid on D-Bus;
- a stop (ptrace) watch ends when its process executes a set-uid program;
- statistics about other users' processes only for root and the group;
- subscription objects listed, and their Owner read, only by their owner.

The set-uid program is tests/helpers/pn-setuid, copied by the test into a
root-owned directory and made set-uid root there.
"""
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET

from pntest import HERE, Broker, Bus, Client, Proc, check, fail, run, wait_until
from pnusers import Users, as_user
from test_watch import proc_status

PY = "/usr/bin/python3"
PN_SETUID = os.environ.get("PN_SETUID", "pn-setuid")
DEST = "org.procnotify.Broker1"
PATH = "/org/procnotify/Broker1"
SUB_PREFIX = PATH + "/subscription"


@contextlib.contextmanager
def setuid_root_copy():
    """pn-setuid, set-uid root, in a fresh root-owned directory others may
    enter (0755) but not write."""
    d = tempfile.mkdtemp(prefix="pnsuid-")
    try:
        os.chown(d, 0, 0)
        os.chmod(d, 0o755)
        exe = os.path.join(d, "pn-setuid")
        shutil.copy(PN_SETUID, exe)
        os.chown(exe, 0, 0)
        os.chmod(exe, 0o4755)
        yield exe
    finally:
        shutil.rmtree(d, ignore_errors=True)


def run_true(user):
    """/bin/true as user, to completion: an exit event that user may see
    (matched by uid or pid: one that quick may have no name). Returns its pid."""
    p = subprocess.Popen(["/bin/true"], cwd="/", preexec_fn=as_user(user))
    p.wait()
    return p.pid


class Relay(Proc):
    """A JSON-socket connection of another user: what it receives is printed
    as JSON lines, what is sent to it is sent to the broker."""

    CODE = r"""
import os, select, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
buf = b""
while True:
    r, _, _ = select.select([s, sys.stdin], [], [])
    if sys.stdin in r:
        line = sys.stdin.buffer.readline()
        if not line:
            break
        s.sendall(line)
    if s in r:
        data = s.recv(1 << 16)
        if not data:
            break
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
"""

    def __init__(self, broker, user):
        super().__init__([PY, "-c", self.CODE, broker.socket_path], preexec_fn=as_user(user), cwd="/")
        self.hello = self.json(what="hello")
        check(self.hello.get("type") == "hello", f"not a hello: {self.hello}")

    def request(self, obj, what="the reply"):
        self.send(json.dumps(obj))
        return self.json(what=what)

    def until(self, pred, what, timeout=10):
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                fail(f"{what} not within {timeout}s; got: {seen[-10:]}")
            m = self.json(left, what)
            seen.append(m)
            if pred(m):
                return seen


def user_py(user, code, *args, timeout=30):
    """Run Python code as user (None: root); its stdout is one JSON value."""
    r = subprocess.run([PY, "-c", code] + [str(a) for a in args], capture_output=True, text=True,
                       preexec_fn=as_user(user) if user else None, cwd="/", timeout=timeout)
    check(r.returncode == 0, f"python as {user} failed: {r.stderr}")
    return json.loads(r.stdout)


# --- signals: only what the subscriber could send itself ----------------------

# Subscribes with "signal", proves a signal gets through, hands the
# connection to the test (SCM_RIGHTS on fd argv[3]) and executes the set-uid
# program argv[2]: the broker's pidfd still names this process.
JSON_SETUID_SUBSCRIBER = r"""
import json, os, signal, socket, sys
sock_path, exe, ctl = sys.argv[1], sys.argv[2], socket.socket(fileno=int(sys.argv[3]))
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sock_path)
f = s.makefile("rb", buffering=0)
f.readline()
s.sendall(b'{"op":"subscribe","events":["exit"],"signal":"SIGUSR1"}\n')
print(f.readline().decode().strip(), flush=True)
si = signal.sigtimedwait([signal.SIGUSR1], 20)
print(json.dumps({"got": si.si_signo if si else None}), flush=True)
socket.send_fds(ctl, [b"c"], [s.fileno()])
os.execv(exe, [exe, str(int(signal.SIGUSR1))])
"""


def test_signal_withheld_after_setuid_exec(kind):
    """A subscriber with "signal" executes a set-uid root program that
    becomes root for good: the broker (CAP_KILL) must no longer signal that
    process, which the user's own kill() could not; the connection is told
    once ("signal-withheld"), every withheld signal is counted, events still
    flow. On D-Bus, see dbus_signal_needs_processfd."""
    check(kind == "json", "JSON only")
    with Users("a") as u, Broker() as b, setuid_root_copy() as exe:
        ctl_test, ctl_child = socket.socketpair()
        sub = Proc([PY, "-c", JSON_SETUID_SUBSCRIBER, b.socket_path, exe, str(ctl_child.fileno())],
                   preexec_fn=as_user(u.a), pass_fds=[ctl_child.fileno()], cwd="/")
        ctl_child.close()
        try:
            r = json.loads(sub.line(what="the subscribe reply"))
            check(r.get("type") == "subscribed", f"subscribe: {r}")
            run_true(u.a)
            got = sub.json(what="the first signal")
            check(got["got"] == signal.SIGUSR1, f"the subscriber's own process did not get its "
                  f"signal before the exec: {got}")
            _, fds, _, _ = socket.recv_fds(ctl_test, 16, 1)
            check(len(fds) == 1, "no connection handed over")
            conn = Client.__new__(Client)
            conn.sock, conn.buf, conn.pending, conn.eof = socket.socket(fileno=fds[0]), b"", [], False
            root = sub.line(what="the set-uid program's start").split()
            check(root == ["root", "0", "0", "0"], f"set-uid program: {root}")

            pid = run_true(u.a)
            # The signal, then the report, then the event's own line.
            seen = conn.events_until(lambda e: e.get("type") == "exit" and e.get("tgid") == pid,
                                     what=f"the exit of {pid}")
            sub.send("pending?")
            check(sub.line(what="pending") == "pending 0",
                  "the broker signalled a process that had become root")
            w = [e for e in seen if e.get("type") == "signal-withheld"]
            check(len(w) == 1, f"no single signal-withheld report before the exit of {pid}: {seen}; "
                  f"status: {b.client().request({'op': 'status'})['socket']}")
            w = w[0]
            check(w["signal"] == signal.SIGUSR1 and w["pid"] == sub.p.pid and w["cause_seq"] > 0
                  and "ts_ns" in w and "time" in w, f"report: {w}")
            # Told once; later ones are counted; events still come.
            pid = run_true(u.a)
            seen = conn.events_until(lambda e: e.get("type") == "exit" and e.get("tgid") == pid,
                                     what=f"the exit of {pid}")
            check(not [e for e in seen if e.get("type") == "signal-withheld"], f"told twice: {seen}")
            sub.send("pending?")
            check(sub.line(what="pending") == "pending 0", "signalled the second time")
            st = b.client().request({"op": "status"})["socket"]
            check(st["signals_withheld"] == 2 and st["signals_sent"] == 1, f"status: {st}")
            conn.close()
        finally:
            sub.close()
            ctl_test.close()


# Connects to the bus, then leaves the connection to a child and exits: the
# bus keeps reporting the exited process's pid for it. The child calls
# Subscribe with "signal" once told to, and prints the reply.
DBUS_ORPHANED_CONNECTION = r"""
import json, os, sys
import dbus
conn = dbus.bus.BusConnection(sys.argv[1])
if os.fork() > 0:
    os._exit(0)
sys.stdin.readline()
broker = conn.get_object("org.procnotify.Broker1", "/org/procnotify/Broker1")
try:
    path = broker.Subscribe(dbus.Array(["exit"], signature="s"),
                            dbus.Dictionary({"signal": "SIGUSR1"}, signature="sv"),
                            dbus_interface="org.procnotify.Broker1")
    print(json.dumps({"subscribed": str(path)}), flush=True)
except dbus.DBusException as e:
    print(json.dumps({"error": e.get_dbus_name(), "message": e.get_dbus_message()}), flush=True)
sys.stdin.readline()
"""


def bus_offers_process_fd(bus):
    code = r"""
import json, sys, dbus
c = dbus.bus.BusConnection(sys.argv[1])
d = dbus.Interface(c.get_object("org.freedesktop.DBus", "/org/freedesktop/DBus"), "org.freedesktop.DBus")
print(json.dumps(sorted(str(k) for k in d.GetConnectionCredentials(c.get_unique_name()))))
"""
    r = subprocess.run([PY, "-c", code, bus.address], capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, f"GetConnectionCredentials: {r.stderr}")
    return "ProcessFD" in json.loads(r.stdout)


def take_pid(pid, argv, tries=50):
    """Start argv (as root) with exactly pid, through ns_last_pid; None if
    another process kept taking it."""
    for _ in range(tries):
        with open("/proc/sys/kernel/ns_last_pid", "w") as f:
            f.write(str(pid - 1))
        p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        if p.pid == pid:
            return p
        p.kill()
        p.wait()
        if os.path.exists(f"/proc/{pid}"):
            return None
    return None


def test_dbus_signal_needs_processfd(kind):
    """The process that connected to the bus exits, another keeps its
    connection, and a root process gets its pid: a Subscribe with "signal"
    must not signal that root process. Where the bus gives no ProcessFD
    (both of Debian 12's buses) "signal" is refused with a named error;
    where it does, the signal goes to the exited process's pidfd (nowhere)."""
    check(kind != "json", "D-Bus only")
    with Users("a") as u, Bus(kind) as bus, Broker(dbus=bus.address) as b:
        offers = bus_offers_process_fd(bus)
        victim = None
        for _ in range(10):
            orphan = Proc([PY, "-c", DBUS_ORPHANED_CONNECTION, bus.address], preexec_fn=as_user(u.a),
                          cwd="/")
            orphan.p.wait()  # the connecting process is gone (and reaped): its pid is free
            # A root process takes that pid (pn-setuid run by root: stays root, blocks SIGUSR1).
            victim = take_pid(orphan.p.pid, [PN_SETUID, str(int(signal.SIGUSR1))])
            if victim:
                break
            orphan.send("")
        check(victim, "could not give a root process the subscriber's pid in 10 attempts")
        try:
            check(victim.stdout.readline().split() == [b"root", b"0", b"0", b"0"], "victim did not start")
            watcher = b.client()
            watcher.subscribe(events=["exit"], match={"uid": u.a.uid})
            orphan.send("go")
            r = orphan.json(what="the Subscribe reply")
            pid = run_true(u.a)
            watcher.events_until(lambda e: e.get("tgid") == pid, what=f"the exit of {pid}")
            victim.stdin.write(b"pending?\n")
            victim.stdin.flush()
            check(victim.stdout.readline() == b"pending 0\n",
                  f"root process {victim.pid}, at the pid the bus reported for the subscriber, got "
                  f"its SIGUSR1 (Subscribe: {r})")
            if offers:
                check("subscribed" in r, f"Subscribe with ProcessFD: {r}")
            else:
                check(r.get("error") == "org.procnotify.Broker1.Error.SignalNotSupported"
                      and "ProcessFD" in r.get("message", ""), f"Subscribe without ProcessFD: {r}")
        finally:
            victim.kill()
            victim.wait()
            orphan.send("")
            orphan.close()

# --- statistics: nothing about other users' processes -------------------------

STATUS_JSON = r"""
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
f = s.makefile("rb")
f.readline()
s.sendall(b'{"op":"status"}\n')
print(f.readline().decode())
"""

STATUS_DBUS = r"""
import json, sys, dbus
def plain(v):
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, dbus.Boolean):
        return bool(v)
    if isinstance(v, dbus.String):
        return str(v)
    return int(v)
c = dbus.bus.BusConnection(sys.argv[1])
o = c.get_object("org.procnotify.Broker1", "/org/procnotify/Broker1", introspect=False)
print(json.dumps(plain(o.GetStatistics(dbus_interface="org.procnotify.Broker1"))))
"""

# What describes processes of any user: only for root and the group.
PER_PROCESS = ("process_table", "events", "watches", "run")


def status_as(kind, b, bus, user):
    if kind == "json":
        return user_py(user, STATUS_JSON, b.socket_path)
    return user_py(user, STATUS_DBUS, bus.address)


def test_statistics_hidden_from_others(kind):
    """status / GetStatistics: a user outside the group gets no figure about
    other users' processes (process counts, tgid_sum, per-type event counts,
    the connector's received count, watches, supervised children), and says so
    (sees_all false); a member of the group and root get them all."""
    with contextlib.ExitStack() as stack:
        u = stack.enter_context(Users("a", member=("m",)))
        bus = stack.enter_context(Bus(kind)) if kind != "json" else None
        b = stack.enter_context(Broker(config=f"[Policy]\nGroup={u.group}\n",
                                       dbus=bus.address if bus else None))
        other = status_as(kind, b, bus, u.a)
        shown = [k for k in PER_PROCESS if k in other]
        check(not shown, f"{u.a} (not in the group) was shown {shown}: {json.dumps(other)[:600]}")
        check("received" not in other["connector"], f"connector: {other['connector']}")
        check(other["sees_all"] is False and "lost" in other["connector"]
              and ("socket" in other if kind == "json" else "dbus" in other), f"status: {other}")
        for who in (u.m, None):
            full = status_as(kind, b, bus, who)
            check(full["sees_all"] is True and full["process_table"]["tgid_sum"] > 0
                  and "received" in full["connector"] and "events" in full,
                  f"{who or 'root'} was not shown everything: {json.dumps(full)[:600]}")


# --- subscription objects: their owner's alone ---------------------------------

# Subscribes, prints its path and unique name; then for each line on stdin
# (another subscription's path) prints the subscription nodes it can list
# and the Owner it can read of its own and of the other one.
OWNER_PROBE = r"""
import json, sys, dbus
import xml.etree.ElementTree as ET
DEST, PATH = "org.procnotify.Broker1", "/org/procnotify/Broker1"
c = dbus.bus.BusConnection(sys.argv[1])
o = c.get_object(DEST, PATH, introspect=False)
own = str(o.Subscribe(dbus.Array(["predump"], signature="s"), dbus.Dictionary({}, signature="sv"),
                      dbus_interface=DEST))
print(json.dumps({"path": own, "name": str(c.get_unique_name())}), flush=True)
for line in sys.stdin:
    xml = c.get_object(DEST, PATH + "/subscription", introspect=False).Introspect(
        dbus_interface="org.freedesktop.DBus.Introspectable")
    res = {"nodes": sorted(n.get("name") for n in ET.fromstring(str(xml)).findall("node"))}
    for key, p in (("own", own), ("other", line.strip())):
        try:
            res[key] = str(c.get_object(DEST, p, introspect=False).Get(
                "org.procnotify.Subscription1", "Owner", dbus_interface="org.freedesktop.DBus.Properties"))
        except dbus.DBusException as e:
            res[key] = {"error": e.get_dbus_name()}
    print(json.dumps(res), flush=True)
"""


def test_subscriptions_listed_to_owner_only(kind):
    """Two users each subscribe on D-Bus: each lists only its own
    subscription object below /org/procnotify/Broker1/subscription and reads
    only its own Owner; the other's object does not exist for it."""
    check(kind != "json", "D-Bus only")
    with Users("a", "b") as u, Bus(kind) as bus, Broker(dbus=bus.address):
        probes = [Proc([PY, "-c", OWNER_PROBE, bus.address], preexec_fn=as_user(x), cwd="/")
                  for x in (u.a, u.b)]
        try:
            me = [p.json(what="the subscription") for p in probes]
            for i, p in enumerate(probes):
                mine, theirs = me[i], me[1 - i]
                p.send(theirs["path"])
                r = p.json(what="the probe")
                leaf = mine["path"].rsplit("/", 1)[1]
                check(r["nodes"] == [leaf], f"user {i} lists {r['nodes']}, not only its own {leaf}")
                check(r["own"] == mine["name"], f"own Owner: {r}")
                check(isinstance(r["other"], dict) and "UnknownObject" in r["other"]["error"],
                      f"user {i} read the other user's subscription: {r['other']}")
        finally:
            for p in probes:
                p.close()


# --- stop watches: not past a set-uid exec -----------------------------------


def tracer_of(pid):
    return int(proc_status(pid, key="TracerPid"))


def test_stop_watch_ends_at_setuid_exec(kind):
    """A user's stop (ptrace) watch of its own process: when that process
    executes a set-uid root program (which the broker's CAP_SYS_PTRACE lets
    the kernel run with its privileges), the watch ends with reason
    "not-permitted" (JSON watch-ended, D-Bus WatchEnded) and the broker
    detaches: the user must not keep a root process seized (nor be told of
    its stops)."""
    with contextlib.ExitStack() as stack:
        u = stack.enter_context(Users("a"))
        bus = stack.enter_context(Bus(kind)) if kind != "json" else None
        b = stack.enter_context(Broker(dbus=bus.address if bus else None))
        exe = stack.enter_context(setuid_root_copy())
        target = Proc(["/bin/sh", "-c", f'read x; exec {exe} {int(signal.SIGUSR1)}'],
                      preexec_fn=as_user(u.a), cwd="/")
        stack.callback(target.close)
        pid = target.p.pid
        if kind == "json":
            watcher = Relay(b, u.a)
            stack.callback(watcher.close)
            r = watcher.request({"op": "watch", "pid": pid, "stop": True})
            check(r.get("type") == "watching" and r.get("stop") is True, f"watch: {r}")
            sub = r["id"]
        else:
            watcher = Relay.__new__(Relay)
            Proc.__init__(watcher, [PY, os.path.join(HERE, "dbus-subscriber.py"), bus.address, "-"],
                          preexec_fn=as_user(u.a), cwd="/")
            stack.callback(watcher.close)
            check("listening" in watcher.json(what="listening"), "D-Bus watcher did not start")
            watcher.send(f'call Watch ua{{sv}} [{pid}, {{"stop": true}}]')
            r = watcher.until(lambda m: "reply" in m or "error" in m, "the Watch reply")[-1]
            check("reply" in r, f"Watch: {r}")
            sub = r["reply"][0]
        check(tracer_of(pid) == b.proc.pid, "not traced by the broker")
        target.send("go")
        check(target.line(what="the set-uid program").split() == ["root", "0", "0", "0"],
              "set-uid program did not become root")
        if kind == "json":
            e = watcher.until(lambda m: m.get("type") == "watch-ended", "watch-ended")[-1]
            check(e["pid"] == pid and e["reason"] == "not-permitted" and e["id"] == sub
                  and "ts_ns" in e, f"report: {e}")
        else:
            e = watcher.until(lambda m: m.get("member") == "WatchEnded", "WatchEnded")[-1]["args"]
            check(e == {"subscription": sub, "pid": pid, "reason": "not-permitted"}, f"WatchEnded: {e}")
        wait_until(lambda: tracer_of(pid) == 0, "the broker letting the root process go")
        st = b.client().request({"op": "status"})["watches"]
        check(st["active"] == 0 and st["revoked"] == 1 and st["traced_processes"] == 0, f"status: {st}")
        if kind == "json":
            r = watcher.request({"op": "unwatch", "pid": pid})
            check(r.get("type") == "error" and r.get("code") == "not-found", f"unwatch after the end: {r}")


if __name__ == "__main__":
    KINDS = ("json",) + Bus.KINDS
    tests = {}
    for name, fn in list(globals().items()):
        if name.startswith("test_"):
            for kind in KINDS:
                tests[f"{name[5:]}@{kind}"] = (lambda fn=fn, kind=kind: fn(kind))
    run(tests)
