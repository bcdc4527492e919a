#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""org.procnotify.Broker1 on a real private bus, with real clients (busctl,
gdbus, python3-dbus). Every test runs against dbus-daemon and dbus-broker:
`test_dbus.py NAME@dbus-daemon`."""
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

import pntest
from pntest import (SANITIZED, Broker, Bus, Dance, HERE, Proc, SeqAccount, check, child,
                    exec_then_release, fail, kernel_at_least, of_pid, release, run, timed, wait_until)
from pnusers import Users, as_user
from test_adopt import CONFIG as FOLLOW_CONFIG
from test_run import RunBroker

ME = os.getpid()
SUBSCRIBER = os.path.join(HERE, "dbus-subscriber.py")
CTL = os.environ.get("PROCNOTIFYCTL", "procnotifyctl")
XML = os.environ.get("DBUS_XML", "")
NOBODY = 65534
DEST = ["org.procnotify.Broker1", "/org/procnotify/Broker1"]


def subscriber(bus, events, match, **kw):
    s = Proc(["/usr/bin/python3", SUBSCRIBER, bus.address, events, json.dumps(match)], **kw)
    first = s.json(what="the subscription")
    check("subscribed" in first or "listening" in first, f"subscriber: {first}")
    s.first = first
    return s


def signal_of(s, member, pid, timeout=15):
    """Read s's output until signal member about pid; return all read."""
    seen = []
    while True:
        m = s.json(timeout, f"{member} for {pid}")
        seen.append(m)
        if m.get("member") == member and m["args"].get("tgid") == pid:
            return seen


def busctl(bus, *args, **kw):
    return subprocess.run(["busctl", f"--address={bus.address}", *args], capture_output=True,
                          text=True, timeout=30, **kw)


def test_predump_then_exited(kind):
    """A crashing child: the subscriber, and busctl monitor watching the bus,
    see Predump then Exited, with pid, signal and core_dumped."""
    with Bus(kind) as bus, Broker(dbus=bus.address) as b, tempfile.TemporaryDirectory() as cwd:
        sub = subscriber(bus, "predump,exit", {"ppid": ME})
        mon = Proc(["busctl", f"--address={bus.address}", "monitor", "--json=short"])
        try:
            # The monitor is live once it shows a call we make (an early call
            # may reach the bus before busctl became a monitor: call again).
            deadline = time.monotonic() + 30
            live = False
            while not live:
                check(time.monotonic() < deadline, "busctl monitor never showed our Ping")
                check(busctl(bus, "call", *DEST, "org.freedesktop.DBus.Peer", "Ping").returncode == 0, "Ping failed")
                while not live and mon.ready(0.5):
                    live = json.loads(mon.line()).get("member") == "Ping"
            p = child("segv", "core", cwd=cwd)
            seen = signal_of(sub, "Exited", p.pid)
            p.wait()
            mine = [m for m in seen if m["args"].get("tgid") == p.pid]
            check([m["member"] for m in mine] == ["Predump", "Exited"], f"subscriber got {mine}")
            ex = mine[1]["args"]
            check(ex["signal"] == 11 and ex["exit_code"] == 139 and ex["core_dumped"] is True
                  and ex["pid"] == p.pid and ex["sources"] == ["connector"], f"Exited: {ex}")
            check(mine[0]["args"]["seq"] < ex["seq"], "Predump after Exited")
            # What went over the bus: unicast to the subscriber, in order.
            members = []
            while "Exited" not in members:
                m = json.loads(mon.line(15, "Exited on the monitor"))
                if m.get("interface") != "org.procnotify.Broker1" or m.get("type") != "signal":
                    continue
                check(m.get("destination") == sub.first["name"], f"not unicast: {m}")
                if m["payload"]["data"][3] == p.pid:  # tgid
                    members.append(m["member"])
            check(members == ["Predump", "Exited"], f"monitor saw {members}")
        finally:
            mon.close()
            sub.close()


def test_match_only_matching(kind):
    """A python3-dbus subscriber with a match gets only matching events."""
    with Bus(kind) as bus, Broker(dbus=bus.address) as b:
        sub = subscriber(bus, "exit", {"uid": NOBODY, "ppid": ME})
        try:
            rootkid = child("exit", 1)
            userkid = child("setuid", NOBODY, 2)
            rootkid.wait()
            userkid.wait()
            seen = signal_of(sub, "Exited", userkid.pid)
            sub.send("ping")
            while True:
                m = sub.json(what="pong")
                if "pong" in m:
                    break
                seen.append(m)
            check(all(m["args"]["uid"] == NOBODY for m in seen), f"non-matching events: {seen}")
            check(seen[-1]["args"]["exit_code"] == 2, f"exit: {seen[-1]}")
        finally:
            sub.close()


def test_unsubscribe_stops_delivery(kind):
    with Bus(kind) as bus, Broker(dbus=bus.address) as b:
        watcher = b.client()
        watcher.subscribe(events=["exit"], match={"ppid": ME})
        sub = subscriber(bus, "exit", {"ppid": ME})
        try:
            p = child("exit", 3)
            p.wait()
            signal_of(sub, "Exited", p.pid)
            sub.send("unsubscribe")
            check("unsubscribed" in sub.json(what="unsubscribed"), "no unsubscribed")
            q = child("exit", 4)
            q.wait()
            watcher.events_until(of_pid(q.pid, "exit"), what="the broker handling the exit")
            sub.send("ping")
            m = sub.json(what="pong")
            check(m == {"pong": True}, f"a signal after Unsubscribe: {m}")
        finally:
            sub.close()


def stats(bus):
    r = busctl(bus, "call", "--json=short", *DEST, "org.procnotify.Broker1", "GetStatistics")
    check(r.returncode == 0, f"GetStatistics: {r.stderr}")
    data = json.loads(r.stdout)["data"][0]
    return {k: v["data"] for k, v in data["dbus"]["data"].items()}


def test_disconnect_leaves_nothing(kind):
    """A subscriber that goes away without Unsubscribe leaves no subscription."""
    with Bus(kind) as bus, Broker(dbus=bus.address) as b:
        sub = subscriber(bus, "exit", {})
        sub2 = subscriber(bus, "", {"comm": "x"})
        check(stats(bus)["subscriptions"] == 2, f"stats: {stats(bus)}")
        sub.p.kill()
        sub.p.wait()
        sub2.p.send_signal(signal.SIGTERM)
        sub2.p.wait()
        deadline = time.monotonic() + 15
        # The broker learns of it from NameOwnerChanged; nothing tells us when.
        while stats(bus)["subscriptions"] != 0:
            check(time.monotonic() < deadline, f"subscriptions left behind: {stats(bus)}")
            time.sleep(0.05)
        check(stats(bus)["peers"] == 0, f"peers left behind: {stats(bus)}")


def test_unsubscribed_connection_gets_nothing(kind):
    with Bus(kind) as bus, Broker(dbus=bus.address) as b:
        sub = subscriber(bus, "exit", {"ppid": ME})
        quiet = subscriber(bus, "-", {})
        try:
            p = child("exit", 5)
            p.wait()
            signal_of(sub, "Exited", p.pid)
            # Anything the broker sent quiet before would come before this reply.
            quiet.send("ping")
            m = quiet.json(what="pong")
            check(m == {"pong": True}, f"an unsubscribed connection received {m}")
        finally:
            sub.close()
            quiet.close()


def dbus_call(bus, method, signature, *args):
    """Call a Broker1 method with python3-dbus and an explicit signature;
    return the D-Bus error name, or None on success."""
    import dbus
    conn = dbus.bus.BusConnection(bus.address)
    try:
        conn.call_blocking(DEST[0], DEST[1], "org.procnotify.Broker1", method, signature, args,
                           timeout=30)
        return None
    except dbus.DBusException as e:
        return e.get_dbus_name()
    finally:
        conn.close()


def test_malformed_calls(kind):
    """Documented errors; the broker keeps serving."""
    import dbus
    with Bus(kind) as bus, Broker(dbus=bus.address) as b:
        inv, filt = "org.freedesktop.DBus.Error.InvalidArgs", "org.procnotify.Broker1.Error.InvalidFilter"
        cases = [
            ("Subscribe", "s", ["exit"], inv),
            ("Subscribe", "asa{sv}", [["bogus"], {}], filt),
            ("Subscribe", "asa{sv}", [[], {"pid": dbus.String("12")}], filt),
            ("Subscribe", "asa{sv}", [[], {"pid": dbus.Double(1.5)}], filt),
            ("Subscribe", "asa{sv}", [[], {"pid": dbus.Int32(-3)}], filt),
            ("Subscribe", "asa{sv}", [[], {"colour": dbus.String("red")}], filt),
            ("Subscribe", "asa{sv}", [[], {"cgroup": dbus.String("relative")}], filt),
            ("Subscribe", "asa{sv}", [[], {"threads": dbus.String("yes")}], filt),
            ("Unsubscribe", "o", ["/org/procnotify/Broker1/subscription/999"],
             "org.procnotify.Broker1.Error.NotFound"),
            ("Unsubscribe", "", [], inv),
            ("NoSuchMethod", "", [], "org.freedesktop.DBus.Error.UnknownMethod"),
        ]
        for method, sig, args, error in cases:
            got = dbus_call(bus, method, sig, *args)
            check(got == error, f"{method}({sig}) {args}: expected {error}, got {got}")
        # gdbus too, with a message that says what is wrong.
        r = subprocess.run(["gdbus", "call", "--address", bus.address, "--dest", DEST[0], "--object-path",
                            DEST[1], "--method", "org.procnotify.Broker1.Subscribe", "['predumps']", "{}"],
                           capture_output=True, text=True, timeout=30)
        check(r.returncode != 0 and "InvalidFilter" in r.stderr and "predumps" in r.stderr, f"gdbus: {r.stderr}")
        check(stats(bus)["bad_calls"] >= 8, f"bad calls not counted: {stats(bus)}")
        # Still serving, on both sides.
        check(busctl(bus, "get-property", *DEST, "org.procnotify.Broker1", "Version").returncode == 0, "dead")
        check(b.client().request({"op": "ping"})["type"] == "pong", "JSON socket disturbed")


def members_of(root, iface):
    out = set()
    for node in root.iter("interface"):
        if node.get("name") != iface:
            continue
        for m in node:
            args = tuple((a.get("type"), a.get("name"), a.get("direction", "out" if m.tag == "method" else None))
                         for a in m.iter("arg"))
            out.add((m.tag, m.get("name"), args, m.get("type"), m.get("access")))
    return out


def test_signal_to_subscriber(kind):
    """A D-Bus subscriber asking for a Unix signal: one that cannot be
    caught is refused; any other is sent only through the pidfd the bus
    gives for the caller (ProcessFD), never to the bare pid it reports:
    neither of Debian 12's buses gives one, so there "signal" is refused
    with SignalNotSupported (test_hostile_perms.py shows the pid it would
    hit). Where the bus gives one, the crash of the subscriber's child
    brings SIGUSR1 (SI_QUEUE, si_pid the broker's)."""
    with Bus(kind) as bus, Broker(dbus=bus.address) as b:
        for match in ({"signal": "SIGKILL"}, {"signal": 0}):
            bad = Proc(["/usr/bin/python3", SUBSCRIBER, bus.address, "predump", json.dumps(match)])
            r = bad.json(what="the refusal")
            check(r.get("error") == "org.procnotify.Broker1.Error.InvalidFilter", f"{match}: {r}")
            bad.close()
        sub = Proc(["/usr/bin/python3", SUBSCRIBER, bus.address, "predump",
                    json.dumps({"ppid": ME, "signal": "SIGUSR1"})])
        try:
            first = sub.json(what="the subscription")
            if "error" in first:
                check(first["error"] == "org.procnotify.Broker1.Error.SignalNotSupported"
                      and "ProcessFD" in first["message"], f"refusal: {first}")
                return
            p = child("segv", "nocore")
            got = {}
            deadline = time.monotonic() + 15
            while not ("predump" in got and "unix" in got):
                m = sub.json(max(deadline - time.monotonic(), 0.01), "Predump and SIGUSR1")
                if m.get("member") == "Predump" and m["args"].get("tgid") == p.pid:
                    got["predump"] = m
                elif "unix_signal" in m:
                    got["unix"] = m["unix_signal"]
            p.wait()
            u = got["unix"]
            check(u["signo"] == signal.SIGUSR1 and u["code"] == -1 and u["pid"] == b.proc.pid
                  and u["uid"] == 0, f"siginfo: {u}")
            sub.send("stats")
            while True:
                m = sub.json(15, "stats")
                if "stats" in m:
                    break
            check(m["stats"]["dbus"]["unix_signals_sent"] == 1, f"stats: {m['stats']['dbus']}")
        finally:
            sub.close()


def test_introspection_matches_xml(kind):
    """busctl introspect of the live service equals dbus/org.procnotify.Broker1.xml."""
    with Bus(kind) as bus, Broker(dbus=bus.address) as b:
        r = busctl(bus, "introspect", "--xml-interface", *DEST)
        check(r.returncode == 0, f"introspect: {r.stderr}")
        live, doc = ET.fromstring(r.stdout), ET.parse(XML).getroot()
        for iface in ("org.procnotify.Broker1",):
            a, d = members_of(live, iface), members_of(doc, iface)
            check(a and a == d, f"{iface}: live not in XML {sorted(a - d)}; XML not live {sorted(d - a)}")
        # A subscription object exists for its owner's connection only.
        sub = Proc(["/usr/bin/python3", "-c", OWN_SUBSCRIPTION, bus.address])
        try:
            own = sub.json(what="the subscription's introspection")
            a = members_of(ET.fromstring(own["xml"]), "org.procnotify.Subscription1")
            d = members_of(doc, "org.procnotify.Subscription1")
            check(a and a == d, f"Subscription1: {sorted(a ^ d)}")
            check(own["owner"] == own["name"], f"Owner: {own}")
            r = busctl(bus, "get-property", DEST[0], own["path"], "org.procnotify.Subscription1", "Owner")
            check(r.returncode != 0 and "Unknown object" in r.stderr,
                  f"another connection read the Owner: {r.stdout} {r.stderr}")
        finally:
            sub.close()


# Subscribes, then introspects its subscription and reads its Owner (on its
# own connection: nobody else sees the object); prints them, then waits.
OWN_SUBSCRIPTION = r"""
import json, sys, dbus
c = dbus.bus.BusConnection(sys.argv[1])
DEST = "org.procnotify.Broker1"
path = c.get_object(DEST, "/org/procnotify/Broker1", introspect=False).Subscribe(
    dbus.Array(["exit"], signature="s"), dbus.Dictionary({}, signature="sv"), dbus_interface=DEST)
o = c.get_object(DEST, path, introspect=False)
xml = o.Introspect(dbus_interface="org.freedesktop.DBus.Introspectable")
owner = o.Get("org.procnotify.Subscription1", "Owner", dbus_interface="org.freedesktop.DBus.Properties")
print(json.dumps({"name": str(c.get_unique_name()), "path": str(path), "xml": str(xml),
                  "owner": str(owner)}), flush=True)
sys.stdin.readline()
"""


def test_properties(kind):
    with Bus(kind) as bus, Broker(dbus=bus.address) as b:
        r = busctl(bus, "get-property", "--json=short", *DEST, "org.procnotify.Broker1", "KernelFeatures")
        f = json.loads(r.stdout)["data"]
        check(f.get("connector_filter") is kernel_at_least(6, 6) and "pidfd_info" in f, f"KernelFeatures: {f}")
        r = busctl(bus, "get-property", *DEST, "org.procnotify.Broker1", "ProtocolVersion")
        check(r.stdout.strip() == "u 1", f"ProtocolVersion: {r.stdout}")


def test_no_bus_keeps_serving(kind):
    """A bus address where nothing listens: one clear line, the socket serves."""
    with Broker(dbus="unix:path=/tmp/pntest-no-bus.sock") as b:
        check(b.client().request({"op": "ping"})["type"] == "pong", "socket not served")
        log = b.log()
        check("No D-Bus at unix:path=/tmp/pntest-no-bus.sock" in log and "JSON socket only" in log, log)


def test_bus_appears_later(kind):
    """No bus when the broker starts: it says so once, serves the socket,
    and serves D-Bus as soon as a bus appears at that address, with nobody
    restarting it (a machine whose bus starts after the broker)."""
    bus = Bus(kind)
    with Broker(dbus=bus.address) as b:
        check(b.client().request({"op": "ping"})["type"] == "pong", "socket not served")
        wait_until(lambda: "No D-Bus at" in b.log(), "the broker's word that there is no bus")
        with bus:
            wait_until(lambda: _name_owned(bus), f"{DEST[0]} on the bus that appeared", 20)
            s = stats(bus)
            check("subscriptions" in s, f"GetStatistics on the new bus: {s}")
        check(b.log().count("No D-Bus at") == 1, f"the missing bus was told more than once:\n{b.log()}")


def _name_owned(bus):
    return busctl(bus, "status", DEST[0]).returncode == 0


def test_ctl_over_dbus(kind):
    """procnotifyctl --dbus: status and monitor over the bus."""
    with Bus(kind) as bus, Broker(dbus=bus.address) as b:
        r = subprocess.run([CTL, f"--dbus={bus.address}", "status", "--json"], capture_output=True,
                           text=True, timeout=30)
        check(r.returncode == 0, f"status: {r.stderr}")
        s = json.loads(r.stdout)
        check(s["version"] and s["kernel_features"]["connector_filter"] is kernel_at_least(6, 6) and "dbus" in s,
              f"status: {s}")
        m = Proc([CTL, f"--dbus={bus.address}", "monitor", "--json", "--events=exit", f"--ppid={ME}"])
        try:
            deadline = time.monotonic() + 15
            while stats(bus)["subscriptions"] < 1:
                check(time.monotonic() < deadline, "procnotifyctl did not subscribe")
                time.sleep(0.05)
            p = child("exit", 6)
            p.wait()
            ev = m.json(what="the exit")
            while ev.get("tgid") != p.pid:  # the exits of our own busctl calls come too
                ev = m.json(what="the exit")
            check(ev["type"] == "exit" and ev["exit_code"] == 6 and ev["time"].endswith("Z"),
                  f"monitor: {ev}")
        finally:
            m.close()


FAKE_BROKER = """
import sys
import dbus, dbus.service
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib
DBusGMainLoop(set_as_default=True)
bus = dbus.bus.BusConnection(sys.argv[1])
name = dbus.service.BusName("org.procnotify.Broker1", bus)
class Fake(dbus.service.Object):
    @dbus.service.method("org.procnotify.Broker1", in_signature="", out_signature="a{ss}")
    def GetStatistics(self):
        return {"version": "0.0"}
fake = Fake(bus, "/org/procnotify/Broker1")
print("ready", flush=True)
GLib.MainLoop().run()
"""


def test_ctl_status_bad_reply(kind):
    """procnotifyctl --dbus status checks every read of the GetStatistics
    reply (the name's owner may be anything): a reply of another type, a{ss}
    from a fake here, is an error (exit 3), not an empty status and exit 0."""
    with Bus(kind) as bus:
        fake = Proc(["/usr/bin/python3", "-c", FAKE_BROKER, bus.address])
        try:
            check(fake.line(what="the fake broker's ready").strip() == "ready", "the fake broker")
            r = subprocess.run([CTL, f"--dbus={bus.address}", "status", "--json"], capture_output=True,
                               text=True, timeout=30)
            check(r.returncode == 3 and "cannot read the GetStatistics reply" in r.stderr,
                  f"a GetStatistics reply of type a{{ss}}: rc {r.returncode}, stdout {r.stdout!r}, "
                  f"stderr {r.stderr!r}")
        finally:
            fake.close()


def test_python_example(kind):
    """clients/examples/dbus-failover.py works as its README section says:
    on a crash of the named process it runs the failover command, from the
    predump, with the crashed pid in the environment."""
    example = os.path.join(HERE, "..", "..", "clients", "examples", "dbus-failover.py")
    with Bus(kind) as bus, Broker(dbus=bus.address) as b, tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "failed-over")
        # A name of its own: on a loaded machine, with tests in parallel,
        # other pn-child processes exit all the time and match pn-child.
        comm = f"pnfo{os.getpid() % 100000}"
        exe = os.path.join(tmp, comm)
        shutil.copy(pntest.PN_CHILD, exe)
        ex = Proc(["/usr/bin/python3", example, f"--address={bus.address}", f"--comm={comm}",
                   "--once", "--", "sh", "-c", f'echo "$PROCNOTIFY_PID $PROCNOTIFY_COMM" > {out}.tmp'
                   f' && mv {out}.tmp {out}'])
        try:
            check(ex.line(what="the example's first line") == f"watching {comm}", "not watching")
            c = b.client()
            c.subscribe(events=["exec"], match={"ppid": ME})
            p = child("segv", "nocore", hold=True, cwd=tmp, exe=exe)
            exec_then_release(c, p)
            p.wait()
            line = ex.line(what="the predump line")
            check(line == f"predump pid={p.pid} comm={comm}", f"example printed {line!r}")
            check(ex.p.wait(timeout=15) == 0, "the example did not exit 0 after --once")
            deadline = time.monotonic() + 15
            while not os.path.exists(out):
                check(time.monotonic() < deadline, "the failover command did not run")
                time.sleep(0.02)
            with open(out) as f:
                check(f.read().split() == [str(p.pid), comm], "failover environment wrong")
        finally:
            ex.close()


# --- Run, ListChildren, Kill and follow over D-Bus ------------------------------

ERR = "org.procnotify.Broker1.Error."
INVALID_ARGS = "org.freedesktop.DBus.Error.InvalidArgs"
SUB_PREFIX = "/org/procnotify/Broker1/subscription/"


def caller(bus, events="-", match=None, **kw):
    """A dbus-subscriber.py connection that calls the broker's methods
    itself (so that what they subscribe it to comes to it)."""
    s = subscriber(bus, events, match or {}, **kw)
    s.backlog = []  # signals read while waiting for a reply
    return s


def op_call(s, method, sig, *args):
    """Call method on s's connection: {"reply": [values]} or {"error", "message"}."""
    s.send(f"call {method} {sig} {json.dumps(list(args))}")
    while True:
        m = s.json(30, f"the reply to {method}")
        if "reply" in m or "error" in m:
            return m
        s.backlog.append(m)


def op_ok(s, method, sig, *args):
    r = op_call(s, method, sig, *args)
    check("reply" in r, f"{method} {args}: {r}")
    return r["reply"]


def op_signals(s, pred, what, timeout=30):
    """s's signals (those read during calls first) until pred(signal); all of them."""
    seen, deadline = [], time.monotonic() + timeout
    while True:
        m = s.backlog.pop(0) if s.backlog else s.json(max(deadline - time.monotonic(), 0.01), what)
        if "member" not in m:
            continue
        seen.append(m)
        if pred(m):
            return seen


def signal_pred(member, pid):
    return lambda m: m["member"] == member and m["args"].get("tgid") == pid


def test_run_exit_status(kind):
    """Run with "follow": the caller's own connection gets the child's
    Exited, with its status, from its wait status merged with the connector."""
    with Bus(kind) as bus, RunBroker(dbus=bus.address) as b:
        s = caller(bus)
        try:
            pid, name, uid, output, path = op_ok(s, "Run", "asa{sv}", [pntest.PN_CHILD, "exit", "7"],
                                                 {"name": "exit7", "follow": True})
            check(name == "exit7" and uid == 0 and output == os.path.join(b.logdir, "exit7.log")
                  and path.startswith(SUB_PREFIX), f"Run returned {pid, name, uid, output, path}")
            ex = op_signals(s, signal_pred("Exited", pid), f"Exited of the child {pid}")[-1]["args"]
            check(ex["exit_code"] == 7 and ex["signal"] == 0 and ex["status"] == 7 << 8 and
                  ex["ppid"] == b.proc.pid and sorted(ex["sources"]) == ["child", "connector"],
                  f"Exited: {ex}")
            # Without "follow", no subscription: the path is "/".
            r = op_ok(s, "Run", "asa{sv}", ["/bin/true"], {})
            check(r[1] == "true" and r[4] == "/", f"Run without follow: {r}")
        finally:
            s.close()


def test_run_list_kill(kind):
    """ListChildren shows a running child; Kill by name signals it (its
    Exited says so) and it leaves the list; Kill of it then is NotFound."""
    with Bus(kind) as bus, RunBroker(dbus=bus.address) as b:
        s = caller(bus, "exit", {"ppid": b.proc.pid})
        try:
            pid = op_ok(s, "Run", "asa{sv}", [pntest.PN_CHILD, "pause"], {"name": "pauser"})[0]
            mine = [c for c in op_ok(s, "ListChildren", "-")[0] if c[0] == pid]
            check(len(mine) == 1, f"ListChildren: {mine}")
            _, name, uid, state, adopted, requester, command, started = mine[0]
            check((name, uid, state, adopted, requester, command) ==
                  ("pauser", 0, "running", False, 0, pntest.PN_CHILD) and started.endswith("Z"),
                  f"ListChildren entry: {mine[0]}")
            check(op_ok(s, "Kill", "a{sv}", {"name": "pauser", "signal": "KILL"}) == [9, [pid]], "Kill")
            ex = op_signals(s, signal_pred("Exited", pid), f"Exited of {pid}")[-1]["args"]
            check(ex["signal"] == 9 and "child" in ex["sources"], f"Exited: {ex}")
            check(not [c for c in op_ok(s, "ListChildren", "-")[0] if c[0] == pid], "still listed")
            r = op_call(s, "Kill", "a{sv}", {"pid": pid})
            check(r.get("error") == ERR + "NotFound" and str(pid) in r["message"], f"Kill again: {r}")
        finally:
            s.close()


def test_run_double_fork_adopted(kind):
    """A child that double-forks: its daemon is adopted by the broker, which
    reports the adoption, lists it as adopted, and kills and reaps it on
    Kill."""
    with Bus(kind) as bus, RunBroker(dbus=bus.address) as b:
        # Adopted and Exited of the broker's children and orphans.
        s = caller(bus, "adopt,exit", {"ppid": b.proc.pid})
        try:
            cpid = op_ok(s, "Run", "asa{sv}", [pntest.PN_CHILD, "daemonize", "0"], {})[0]
            seen = op_signals(s, lambda m: m["member"] == "Adopted", "Adopted by the broker")
            adopt = seen[-1]["args"]
            daemon = adopt["tgid"]
            check(adopt["new_parent"] == b.proc.pid and adopt["old_parent"] not in (0, cpid, b.proc.pid),
                  f"Adopted: {adopt} (child {cpid})")
            with open(f"/proc/{daemon}/stat") as f:
                check(int(f.read().rsplit(")", 1)[1].split()[1]) == b.proc.pid, "the kernel disagrees")
            mine = [c for c in op_ok(s, "ListChildren", "-")[0] if c[0] == daemon]
            check(mine and mine[0][4] is True and mine[0][5] == 0xFFFFFFFF and mine[0][6] == "",
                  f"ListChildren does not list the adopted daemon: {mine}")
            check(op_ok(s, "Kill", "a{sv}", {"pid": daemon}) == [15, [daemon]], "Kill of the daemon")
            ex = op_signals(s, signal_pred("Exited", daemon), f"Exited of the daemon {daemon}")[-1]["args"]
            check(ex["signal"] == 15 and "child" in ex["sources"], f"daemon's Exited: {ex}")
            check(not [c for c in op_ok(s, "ListChildren", "-")[0] if c[0] == daemon], "still listed")
        finally:
            s.close()


def test_run_refused(kind):
    """Run, ListChildren and Kill by a user neither root nor in the group:
    AccessDenied, nothing started; Run where [Run] is disabled: AccessDenied."""
    calls = (("Run", "asa{sv}", ["/bin/true"], {}), ("ListChildren", "-"), ("Kill", "a{sv}", {"pid": 1}))
    with Users("a") as u, Bus(kind) as bus, RunBroker(dbus=bus.address) as b:
        s = caller(bus, preexec_fn=as_user(u.a), cwd="/")
        try:
            for method, sig, *args in calls:
                r = op_call(s, method, sig, *args)
                check(r.get("error") == ERR + "AccessDenied" and "only root and members" in r["message"],
                      f"{method} by uid {u.a.uid}: {r}")
        finally:
            s.close()
        check(b.client().request({"op": "status"})["run"]["started"] == 0, "something was started")
    with Bus(kind) as bus, Broker(dbus=bus.address) as b:
        s = caller(bus)
        try:
            r = op_call(s, "Run", "asa{sv}", ["/bin/true"], {})
            check(r.get("error") == ERR + "AccessDenied" and "Enabled=no" in r["message"], f"disabled: {r}")
        finally:
            s.close()


def test_run_bad_calls(kind):
    """Wrong arguments of Run, Kill and a follow: precise errors with
    messages; the broker keeps serving both sinks."""
    with Bus(kind) as bus, RunBroker(dbus=bus.address) as b:
        s = caller(bus)
        true = ["/bin/true"]
        cases = [
            ("Run", "asa{sv}", [[], {}], INVALID_ARGS, "empty"),
            ("Run", "asa{sv}", [[""], {}], INVALID_ARGS, "empty"),
            # Refused before the method reads it: no array of a call over 256 entries.
            ("Run", "asa{sv}", [["x"] * 300, {}], ERR + "LimitExceeded", "more than 256 entries"),
            ("Run", "asa{sv}", [true, {"name": 3}], INVALID_ARGS, '"name" must be a string'),
            ("Run", "asa{sv}", [true, {"name": "../x"}], INVALID_ARGS, '"name" must be'),
            ("Run", "asa{sv}", [true, {"follow": "yes"}], INVALID_ARGS, '"follow" must be'),
            ("Run", "asa{sv}", [true, {"env": ["1=2"]}], INVALID_ARGS, '"env"[0]'),
            ("Run", "asa{sv}", [true, {"colour": "red"}], INVALID_ARGS, 'unknown member "colour"'),
            ("Run", "asa{sv}", [true, {"argv": ["x"]}], INVALID_ARGS, '"argv" is not an option'),
            ("Run", "asa{sv}", [true, {"user": "pn-no-such-user"}], ERR + "NotFound", "pn-no-such-user"),
            ("Run", "asa{sv}", [["/nonexistent"], {}], ERR + "SpawnFailed", "No such file"),
            ("Run", "s", ["/bin/true"], INVALID_ARGS, ""),
            ("Kill", "a{sv}", [{}], INVALID_ARGS, 'either "pid" or "name"'),
            ("Kill", "a{sv}", [{"pid": "1"}], INVALID_ARGS, '"pid" must be'),
            ("Kill", "a{sv}", [{"pid": 1, "signal": "SIGNOPE"}], INVALID_ARGS, "unknown signal"),
            ("Kill", "a{sv}", [{"pid": 4194305}], ERR + "NotFound", "no supervised child"),
            ("Kill", "u", [1], INVALID_ARGS, ""),
            ("ListChildren", "s", ["x"], INVALID_ARGS, ""),
            ("Subscribe", "asa{sv}", [[], {"follow": "x"}], ERR + "InvalidFilter", "match.follow"),
            ("Subscribe", "asa{sv}", [[], {"follow": [ME, ME]}], ERR + "InvalidFilter", "match.follow"),
            ("Subscribe", "asa{sv}", [[], {"follow": 4194305}], ERR + "NotFound", "4194305"),
            # "lines" is the socket's option too (one subscriber core), with its rule.
            ("Subscribe", "asa{sv}", [[], {"lines": False}], ERR + "InvalidFilter", '"lines": false needs a "signal"'),
            ("Subscribe", "asa{sv}", [[], {"lines": "no"}], ERR + "InvalidFilter", '"lines" must be true or false'),
        ]
        try:
            for method, sig, args, error, text in cases:
                r = op_call(s, method, sig, *args)
                check(r.get("error") == error and text in r.get("message", ""),
                      f"{method}({sig}) {json.dumps(args)[:80]}: expected {error} with {text!r}, got {r}")
            check(op_ok(s, "ListChildren", "-") == [[]], "ListChildren after the bad calls")
            check(stats(bus)["bad_calls"] >= 14, f"bad calls not counted: {stats(bus)}")
            st = b.client().request({"op": "status"})
            check(st["run"]["started"] == 0 and st["run"]["failed"] == 1, f"run: {st['run']}")
        finally:
            s.close()


def test_follow_three_fork_daemon(kind):
    """Subscribe with "follow" on a daemon whose fork dance has three forks:
    a Followed signal right behind each Exited of the main names its
    successor, the last the daemon's real main; then one saying it ended."""
    with Bus(kind) as bus, Broker(config=FOLLOW_CONFIG, dbus=bus.address) as b:
        d = Dance(3, hold=True)
        s = None
        try:
            d.read_stage0()
            s = caller(bus, "fork,exit,adopt", {"follow": d.pid(0)})
            path = s.first["subscribed"]
            d.go()
            d.read_all()
            stages = [d.pid(i) for i in range(4)]
            reports = []
            seen = op_signals(s, lambda m: m["member"] == "Followed" and reports.append(m["args"]) is None
                              and len(reports) == 3, "three Followed signals")
            mains = [(r["previous_main_pid"], r["main_pid"]) for r in reports]
            check(mains == [(stages[i], stages[i + 1]) for i in range(3)], f"main moves: {mains}, {stages}")
            check(reports[-1]["main_pid"] == d.main, f"followed to {reports[-1]}, the daemon says {d.main}")
            for r in reports:
                check(r["subscription"] == path and r["reason"] == "main-exited" and r["candidates"] == 1
                      and r["ts_ns"] > 0, f"Followed: {r}")
            for i, m in enumerate(seen):
                if m["member"] == "Exited" and m["args"]["tgid"] in stages[:3]:
                    nxt = seen[i + 1]
                    check(nxt["member"] == "Followed" and nxt["args"]["cause_seq"] == m["args"]["seq"] and
                          nxt["args"]["previous_main_pid"] == m["args"]["tgid"],
                          f"Exited of main {m['args']['tgid']} not followed by its report: {nxt}")
            forks = [m["args"]["tgid"] for m in seen if m["member"] == "Forked"]
            check(forks == stages[1:], f"Forked of {forks}, want {stages[1:]}")
            d.release()
            seen = op_signals(s, lambda m: m["member"] == "Followed", "the end of the followed service")
            end = seen[-1]["args"]
            check(seen[-2]["member"] == "Exited" and seen[-2]["args"]["tgid"] == d.main, f"{seen[-2:]}")
            check(end["reason"] == "ended" and end["main_pid"] == 0 and end["previous_main_pid"] == d.main
                  and end["members"] == 0, f"end: {end}")
        finally:
            d.close()
            if s:
                s.close()


# --- floods: nothing lost silently --------------------------------------------

class SignalTally(SeqAccount):
    """A dbus-subscriber.py's signals, checked as they arrive (see
    pntest.SeqAccount); signals about one process (pid) counted by member."""

    def __init__(self, sub, name, pid=None, sees_all=False):
        super().__init__(name, sees_all)
        self.sub, self.pid = sub, pid
        self.of_pid = {}          # member -> count, signals about pid
        self.pongs = 0
        self.last_overrun = None  # the args of the last client Overrun

    def feed(self, line):
        m = json.loads(line)
        if "pong" in m:
            check(m["pong"] is True, f"{self.name}: ping failed: {m}")
            self.pongs += 1
            return
        check("member" in m, f"{self.name}: {m}")
        a = m["args"]
        if m["member"] == "Overrun" and a["where"] == "client":
            check(a["seq"] == 0, f"{self.name}: a client Overrun with a seq: {a}")
            self.client_overrun(a["lost"], a["first_seq"], a["last_seq"])
            self.last_overrun = a
            return
        self.event(a["seq"])
        if m["member"] == "Overrun":
            check(a["where"] == "kernel", f"{self.name}: Overrun {a}")
            self.kernel_overrun(a["lost"])
        elif self.pid is not None and a.get("tgid") == self.pid:
            self.of_pid[m["member"]] = self.of_pid.get(m["member"], 0) + 1

    def got(self, member="CommChanged"):
        return self.of_pid.get(member, 0)


def pump_signals(tallies, until, timeout, what):
    """Read every tally's subscriber until until() holds (checked after each
    read), for at most timeout seconds; fail saying what did not happen."""
    deadline = time.monotonic() + timeout
    fds = {t.sub.p.stdout.fileno(): t for t in tallies}
    while not until():
        left = deadline - time.monotonic()
        if left <= 0:
            fail(f"{what} within {timeout}s: " + "; ".join(
                f"{t.name}: {t.events} signals, about pid {t.of_pid}, told of {t.client_lost} "
                f"lost in {t.client_overruns} Overruns and {t.kernel_lost} in the kernel"
                for t in tallies))
        r, _, _ = select.select(list(fds), [], [], min(left, 0.5))
        for fd in r:
            t = fds[fd]
            data = os.read(fd, 1 << 20)
            if not data:
                t.sub.p.wait(10)
                fail(f"{t.name}: the subscriber exited {t.sub.p.returncode}: {t.sub.p.stderr.read()!r}")
            lines = (t.sub.buf + data).split(b"\n")
            t.sub.buf = lines.pop()
            for line in lines:
                t.feed(line)


def dbus_lost(client):
    """Signals the broker dropped for full bus queues, by its JSON status."""
    return client.request({"op": "status"})["dbus"]["signals_lost"]


def burst_under_stopped_bus(bus, control, p, until_lost=1, timeout=30):
    """Stop the bus, let the held burst child p go, and wait until the
    broker has dropped at least until_lost signals; the bus stays stopped."""
    bus.pause()
    release(p)
    deadline = time.monotonic() + timeout
    while dbus_lost(control) < until_lost:
        check(time.monotonic() < deadline, f"the broker dropped fewer than {until_lost} signals "
              f"({dbus_lost(control)}) within {timeout}s with the bus stopped (burst child: {p.poll()})")
        time.sleep(0.01)  # the broker's counter, nothing to wait on


def flood_signals(kind, broker_args=(), kernel_loss=False):
    """A subscriber to everything and one to a burst's comm events, during a
    burst of 50,000 comm events at 25,000/s that overruns the broker's
    bounded queue of signals to the bus (the bus is stopped as the burst
    starts, so that it overruns on any host, and runs again once 10,000
    signals were dropped, for the rest of the burst, as fast as it can):
    seq only increases, the first one's seq gaps equal the losses its
    Overrun signals report, every event of the burst reached the second or
    was reported to it as lost, and the losses told are exactly those the
    broker counted. With kernel_loss, the kernel must have dropped some.
    On a machine timed(1) times slower the burst is that much slower too,
    and the bus runs again after that many times fewer dropped signals:
    what the broker gets past a 4 KiB buffer depends on its speed."""
    n, rate = 50000, int(25000 / timed(1))
    with Bus(kind) as bus, Broker(dbus=bus.address, args=list(broker_args)) as b:
        control = b.client()
        control.subscribe(events=["exit"], match={"ppid": ME})
        p = child("comm-burst", n, rate, hold=True)
        every = SignalTally(subscriber(bus, "", {"threads": True}), "everything", sees_all=True)
        burst = SignalTally(subscriber(bus, "comm", {"pid": p.pid}), "burst", pid=p.pid)
        tallies = [every, burst]
        try:
            burst_under_stopped_bus(bus, control, p, until_lost=int(10000 / timed(1)), timeout=timed(30))
            bus.resume()
            pump_signals(tallies, lambda: p.poll() is not None, timed(60), "the burst did not end")
            check(p.returncode == 0, f"burst child exited {p.returncode}")
            # Its exit comes after all its comm events: they were all
            # dispatched (or, lost in the kernel, it is inferred).
            control.events_until(of_pid(p.pid, "exit"), 30, what="the burst child's exit")
            # Every loss is told once the bus queue drains; a ping's reply
            # comes after the signals sent before it. Ask until all is told.
            deadline = time.monotonic() + timed(45)
            while True:
                for t in tallies:
                    t.sub.send("ping")
                pongs = [t.pongs for t in tallies]
                pump_signals(tallies, lambda: all(t.pongs > k for t, k in zip(tallies, pongs)), 60,
                             "no pong from every subscriber")
                lost = dbus_lost(control)
                told = sum(t.client_lost for t in tallies)
                accounted = burst.got() + burst.client_lost + burst.kernel_lost
                if told == lost and accounted >= n:
                    break
                check(told <= lost, f"subscribers told of {told} lost, the broker dropped {lost}")
                check(time.monotonic() < deadline,
                      f"burst of {n}: the burst subscriber received {burst.got()}, was told of "
                      f"{burst.client_lost} lost for the bus and {burst.kernel_lost} in the kernel; "
                      f"the broker dropped {lost}, subscribers were told of {told}: "
                      f"{'silent loss' if accounted < n else 'Overrun signals missing'}")
            check(burst.got() + burst.client_lost <= n,
                  f"burst subscriber: {burst.got()} received + {burst.client_lost} lost > {n} emitted")
            check(every.client_lost > 0 and burst.client_lost > 0,
                  f"not overrun: everything lost {every.client_lost}, burst {burst.client_lost}")
            check(not kernel_loss or every.kernel_lost > 0, "the kernel dropped nothing")
            print(f"burst of {n} on {kind}: the burst subscriber received {burst.got()}, was told "
                  f"of {burst.client_lost} lost in {burst.client_overruns} Overruns (kernel: "
                  f"{burst.kernel_lost}); everything: {every.events} signals, {every.client_lost} "
                  f"lost in {every.client_overruns} Overruns; the broker dropped {lost}")
        finally:
            for t in tallies:
                t.sub.close()


def test_flood_accounted(kind):
    """A D-Bus flood, default configuration: nothing lost silently (see
    flood_signals)."""
    flood_signals(kind)


def test_flood_kernel_loss_accounted(kind):
    """The same flood with a 4 KiB connector buffer, so that the kernel also
    drops events while signals are being dropped for the bus: a kernel
    Overrun (with its seq) must not pass a subscriber's untold loss, or its
    seq gap looks like silent loss."""
    flood_signals(kind, ["--receive-buffer=4K"], kernel_loss=True)


def test_overrun_after_last_event(kind):
    """Signals dropped at the very end of a burst are reported although no
    further event comes: a subscriber to one process's comm events; the bus
    is stopped through that process's 20,000-event burst (the broker's queue
    fills, the rest is dropped); once the bus runs again, an Overrun covering
    the dropped tail arrives with nothing else happening (no ping, no event
    for the subscriber)."""
    n = 20000
    wait = 60 if SANITIZED else 30
    with Bus(kind) as bus, Broker(dbus=bus.address) as b:
        control = b.client()
        control.subscribe(events=["exit"], match={"ppid": ME})
        p = child("comm-burst", n, hold=True)
        sub = SignalTally(subscriber(bus, "comm", {"pid": p.pid}), "burst", pid=p.pid)
        try:
            burst_under_stopped_bus(bus, control, p)
            check(p.wait(60) == 0, f"burst child exited {p.returncode}")
            # Its exit comes after all its comm events: they were all
            # dispatched, and the last of them dropped, the bus being stopped.
            control.events_until(of_pid(p.pid, "exit"), 30, what="the burst child's exit")
            dropped = dbus_lost(control)
            bus.resume()
            pump_signals([sub], lambda: sub.got() + sub.client_lost + sub.kernel_lost >= n, wait,
                         f"no Overrun for the {dropped} signals dropped at the end of the burst "
                         f"(loss at the end of a burst left untold)")
            check(sub.client_lost == dropped,
                  f"told of {sub.client_lost} lost, the broker dropped {dropped}")
            check(sub.last_overrun["last_seq"] > sub.prev_seq,
                  f"the last Overrun {sub.last_overrun} does not cover the end of the burst "
                  f"(last seq received {sub.prev_seq})")
            print(f"{kind}: received {sub.got()} of {n}, told of {sub.client_lost} lost in "
                  f"{sub.client_overruns} Overruns, without a further event")
        finally:
            sub.sub.close()


if __name__ == "__main__":
    tests = {}
    for name, fn in list(globals().items()):
        if name.startswith("test_"):
            for kind in Bus.KINDS:
                tests[f"{name[5:]}@{kind}"] = (lambda fn=fn, kind=kind: fn(kind))
    run(tests)
