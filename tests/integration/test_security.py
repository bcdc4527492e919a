#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Access policy, per-user limits and least privilege, against the real
broker, the real kernel and real unprivileged users (created for the test,
removed after it). Policy and limit tests run over the JSON socket and over
D-Bus (dbus-daemon and dbus-broker): `test_security.py NAME@json`,
`NAME@dbus-daemon`, `NAME@dbus-broker`; the others take no suffix.
"""
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

from pntest import HERE, PN_CHILD, PROCNOTIFYD, Broker, Bus, Proc, check, child, fail, release, run
from pnusers import Users, as_user

ME = os.getpid()
PY = "/usr/bin/python3"
JSON_SUB = os.path.join(HERE, "json-subscriber.py")
DBUS_SUB = os.path.join(HERE, "dbus-subscriber.py")
UNIT = os.environ.get("PROCNOTIFYD_UNIT", "")
SOCKET_UNIT = os.environ.get("PROCNOTIFYD_SOCKET_UNIT", "")
MAN_DIR = os.environ.get("PROCNOTIFY_MAN", "")
KINDS = ("json",) + Bus.KINDS

# The documented set (README "Least privilege", daemon/caps.h).
CAP_NUMBERS = {"cap_chown": 0, "cap_kill": 5, "cap_setgid": 6, "cap_setuid": 7, "cap_setpcap": 8,
               "cap_net_admin": 12, "cap_sys_ptrace": 19}
KEPT = ("cap_kill", "cap_net_admin", "cap_sys_ptrace")
KEPT_WITH_RUN = KEPT + ("cap_setgid", "cap_setuid", "cap_setpcap")
# systemd-analyze security --offline=true of dbus/procnotifyd.service, x10
# (2.3 measured with systemd 252); any weakening of the unit fails here.
EXPOSURE_THRESHOLD = 23

SIGNAL_TYPES = {"Forked": "fork", "Exec": "exec", "UidChanged": "uid", "GidChanged": "gid",
                "SessionCreated": "sid", "Ptrace": "ptrace", "CommChanged": "comm",
                "Predump": "predump", "Exited": "exit", "Adopted": "adopt", "Stopped": "stop",
                "Continued": "continue", "Overrun": "overrun"}


class Subscriber(Proc):
    """One connection of a (possibly unprivileged) subscriber, on either sink,
    with the same commands and the same event shape: {"type", "tgid", "uid", …}."""

    def __init__(self, kind, broker, bus, user, events, match):
        if kind == "json":
            argv = [PY, JSON_SUB, broker.socket_path, events, json.dumps(match)]
        else:
            argv = [PY, DBUS_SUB, bus.address, events or "", json.dumps(match)]
        super().__init__(argv, preexec_fn=as_user(user) if user else None, cwd="/")
        self.kind = kind
        self.events = []
        self.hello = None
        first = self.json(what="the first reply")
        if kind == "json" and "hello" in first:
            self.hello = first["hello"]
            if events != "-":
                first = self.json(what="the subscription")
        self.first = first

    @property
    def error(self):
        return self.first.get("error")

    def _event(self, m):
        if "event" in m:
            return m["event"]
        if "member" in m:
            e = dict(m["args"])
            e["type"] = SIGNAL_TYPES.get(m["member"], m["member"])
            return e
        return None

    def command(self, cmd, what):
        """Send a command; return its answer (events read meanwhile are kept)."""
        self.send(cmd)
        while True:
            m = self.json(what=what)
            e = self._event(m)
            if e is None:
                return m
            self.events.append(e)

    def subscribe(self, events, match):
        return self.command(f"subscribe {events} {json.dumps(match, separators=(',', ':'))}",
                            "the subscribe reply")

    def sync(self):
        """Every event the broker sent this connection so far (a round trip
        to the broker: what it queued before the answer comes before it)."""
        m = self.command("ping", "pong")
        check(m.get("pong") is True, f"ping: {m}")
        return self.events


def sub_or_fail(*args):
    s = Subscriber(*args)
    if s.error:
        s.close()
        fail(f"subscription refused: {s.first}")
    return s


@contextlib.contextmanager
def setup(kind, users, config=""):
    """Users, the bus (for D-Bus kinds) and the broker, torn down in reverse."""
    with contextlib.ExitStack() as stack:
        u = stack.enter_context(users)
        bus = stack.enter_context(Bus(kind)) if kind != "json" else None
        if callable(config):
            config = config(u)
        b = stack.enter_context(Broker(config=config, dbus=bus.address if bus else None))
        procs = []
        stack.callback(lambda: [p.close() for p in procs])
        yield u, bus, b, procs


def child_as(user, *args, hold=False):
    """tests/helpers/pn-child running as user from its exec on."""
    pre = ["--wait-stdin"] if hold else []
    return subprocess.Popen([PN_CHILD] + pre + [str(a) for a in args], cwd="/",
                            stdin=subprocess.PIPE if hold else subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, preexec_fn=as_user(user))


def wait_exits(watcher, procs):
    """The broker has published the exit of every one of procs (in any order)."""
    left = {p.pid for p in procs}
    watcher.events_until(lambda e: e.get("type") == "exit" and left.discard(e.get("tgid")) is None
                         and not left, what=f"exits of {sorted(left)} (root watcher)")
    for p in procs:
        p.wait()


# --- visibility ---------------------------------------------------------------


def test_nonmember_sees_only_own(kind):
    """A user outside the group sees the crash of its own process, and
    nothing of root's or another user's, even when its matches name them by
    pid, comm and uid."""
    with setup(kind, Users("a", "b")) as (u, bus, b, procs):
        watcher = b.client()
        watcher.subscribe(events=["exit"], match={"ppid": ME})
        rootkid = child("exit", 1, hold=True)
        otherkid = child_as(u.b, "exit", 2, hold=True)
        ownkid = child_as(u.a, "segv", "nocore", hold=True)
        pids = [rootkid.pid, otherkid.pid, ownkid.pid]
        s = sub_or_fail(kind, b, bus, u.a, "", {"pid": pids})
        procs.append(s)
        if s.hello is not None:
            check(s.hello["uid"] == u.a.uid and s.hello["sees_all"] is False, f"hello: {s.hello}")
        for events, match in (("predump,exit", {"comm": "pn-child"}),
                              ("all", {"uid": [0, u.b.uid]}),
                              ("all", {"ppid": ME})):
            r = s.subscribe(events, match)
            check("subscribed" in r, f"subscribe {events} {match}: {r}")
        for p in (rootkid, otherkid, ownkid):
            release(p)
        # Processes started while subscribed: fork, exec, uid and exit of each.
        late = [child("exit", 3), child_as(u.b, "exit", 4), child("setuid", u.b.uid, 5)]
        wait_exits(watcher, [rootkid, otherkid, ownkid] + late)
        seen = s.sync()

        # Its fork, uid and exec happened before the subscriptions, but a
        # loaded broker may read them from the connector after: then "all"
        # with ppid shows them (they are its own, so that is allowed). What
        # must hold is the crash, whole and in order.
        own = [e for e in seen if e.get("tgid") == ownkid.pid and e["type"] in ("predump", "exit")]
        check([e["type"] for e in own] == ["predump", "exit"], f"own crashing process: {own}")
        check(own[1]["signal"] == signal.SIGSEGV and own[1]["uid"] == u.a.uid, f"exit: {own[1]}")
        foreign = [e for e in seen if e["type"] != "overrun" and e.get("uid") != u.a.uid]
        check(not foreign, f"{u.a} was shown processes of others: {foreign}")
        names = {p.pid for p in (rootkid, otherkid, *late)}
        check(not [e for e in seen if e.get("tgid") in names or e.get("pid") in names],
              f"{u.a} was shown root's or {u.b.name}'s processes: {seen}")


def test_member_sees_all(kind):
    """A member of [Policy] Group= sees root's and other users' processes."""
    config = lambda u: f"[Policy]\nGroup={u.group}\n"  # noqa: E731
    with setup(kind, Users("b", member=("m",)), config) as (u, bus, b, procs):
        watcher = b.client()
        watcher.subscribe(events=["exit"], match={"ppid": ME})
        s = sub_or_fail(kind, b, bus, u.m, "exit", {"ppid": ME})
        procs.append(s)
        if s.hello is not None:
            check(s.hello["sees_all"] is True, f"member's hello: {s.hello}")
        kids = [child("exit", 1), child_as(u.b, "exit", 2), child("setuid", u.b.uid, 3)]
        wait_exits(watcher, kids)
        seen = {e.get("tgid"): e for e in s.sync() if e["type"] == "exit"}
        for p, code, uid in zip(kids, (1, 2, 3), (0, u.b.uid, u.b.uid)):
            e = seen.get(p.pid)
            check(e and e["exit_code"] == code and e["uid"] == uid,
                  f"member {u.m} did not see the exit of {p.pid} (uid {uid}): {seen}")


def test_others_cannot_listen_in(kind):
    """Signals are unicast: another user's connection that listens to the
    broker's signals, even with an eavesdropping match rule, receives none
    of those sent to a subscriber (root here, seeing root's processes)."""
    check(kind != "json", "D-Bus only: a JSON connection is a socket of its own")
    with setup(kind, Users("b")) as (u, bus, b, procs):
        sub = sub_or_fail(kind, b, bus, None, "exit", {"ppid": ME})
        procs.append(sub)
        spy = Subscriber(kind, b, bus, u.b, "-eavesdrop", {})
        procs.append(spy)
        check("listening" in spy.first, f"listener: {spy.first}")
        kids = [child("exit", 1), child("exit", 2)]
        for p in kids:
            p.wait()
        got = {e.get("tgid") for e in sub.events}
        while not all(p.pid in got for p in kids):
            m = sub.json(what="the subscriber's Exited signals")
            e = sub._event(m)
            got.add(e and e.get("tgid"))
        seen = spy.sync()
        check(not seen, f"{u.b} (eavesdrop {spy.first['eavesdrop']}) received signals for others: {seen}")


# --- limits per user --------------------------------------------------------------


def test_clients_per_user(kind):
    """MaxClientsPerUser counts one user's connections on both sinks
    together; the user over it gets limit-exceeded, others still connect."""
    with setup(kind, Users("a", "b"), "[Limits]\nMaxClientsPerUser=2\n") as (u, bus, b, procs):
        def open_(user, k=kind):
            s = Subscriber(k, b, bus, user, "-" if k == "json" else "exit", {"comm": "none"})
            procs.append(s)
            return s
        for _ in range(2):
            s = open_(u.a)
            check(not s.error, f"{u.a}'s connection within the limit refused: {s.first}")
        extra = open_(u.a)
        want = "limit-exceeded" if kind == "json" else "org.procnotify.Broker1.Error.LimitExceeded"
        check(extra.error == want and "MaxClientsPerUser" in extra.first.get("message", ""),
              f"{u.a}'s third connection: {extra.first}")
        other = open_(u.b)
        check(not other.error, f"{u.b} refused while {u.a} is at its limit: {other.first}")
        root = b.client()
        check(root.request({"op": "ping"})["type"] == "pong", "root refused")
        if kind != "json":
            # The same count across sinks: no JSON connection for a either.
            j = open_(u.a, "json")
            check(j.error == "limit-exceeded", f"{u.a}'s JSON connection at the D-Bus limit: {j.first}")
        # A connection that goes gives its place back.
        procs[0].close()
        deadline = time.monotonic() + 15
        while True:
            s = open_(u.a)
            if not s.error:
                break
            # The broker learns of the close asynchronously; nothing tells us when.
            check(time.monotonic() < deadline, f"{u.a}'s connection not released: {s.first}")
            time.sleep(0.05)


def test_subscriptions_per_user(kind):
    """MaxSubscriptionsPerUser counts one user's subscriptions on every
    connection and both sinks; the user over it gets limit-exceeded, others
    still subscribe, and an unsubscribe gives room back."""
    config = "[Limits]\nMaxSubscriptionsPerUser=3\nMaxSubscriptions=10\n"
    with setup(kind, Users("a", "b"), config) as (u, bus, b, procs):
        first = sub_or_fail(kind, b, bus, u.a, "exit", {})
        procs.append(first)
        check("subscribed" in first.subscribe("fork", {}), "a's second subscription")
        second = sub_or_fail(kind, b, bus, u.a, "exec", {})
        procs.append(second)
        want = "limit-exceeded" if kind == "json" else "org.procnotify.Broker1.Error.LimitExceeded"
        for s in (second, first):
            r = s.subscribe("comm", {})
            check(r.get("error") == want and "MaxSubscriptionsPerUser" in r.get("message", ""),
                  f"{u.a}'s fourth subscription: {r}")
        if kind != "json":
            j = Subscriber("json", b, bus, u.a, "exit", {})
            procs.append(j)
            check(j.error == "limit-exceeded", f"{u.a}'s JSON subscription at the D-Bus limit: {j.first}")
        other = sub_or_fail(kind, b, bus, u.b, "exit", {})
        procs.append(other)
        check("subscribed" in other.subscribe("fork", {}), f"{u.b}'s second subscription")
        # Unsubscribing gives room back, on another connection too.
        if kind == "json":
            r = first.command(f"unsubscribe {first.first['subscribed']}", "unsubscribed")
        else:
            r = first.command("unsubscribe", "unsubscribed")
        check("unsubscribed" in r, f"unsubscribe: {r}")
        check("subscribed" in second.subscribe("comm", {}), "no room after an unsubscribe")
        # And so does a connection that goes, with everything on it.
        first.close()
        deadline = time.monotonic() + 15
        while "subscribed" not in (r := second.subscribe("uid", {})):
            check(time.monotonic() < deadline, f"subscriptions of a closed connection kept: {r}")
            time.sleep(0.05)  # the broker learns of the close asynchronously


# --- least privilege ----------------------------------------------------------------


def caps_of(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key.startswith("Cap"):
                out[key] = int(value, 16)
    return out


def mask(names):
    return sum(1 << CAP_NUMBERS[n] for n in names)


def check_caps(b, names):
    caps = caps_of(b.proc.pid)
    want = mask(names)
    for key in ("CapEff", "CapPrm", "CapBnd"):
        check(caps[key] == want, f"{key} {caps[key]:#x}, expected {want:#x} ({' '.join(names)}): {caps}")
    check(caps["CapInh"] == 0 and caps["CapAmb"] == 0, f"inheritable or ambient left: {caps}")
    logged = " ".join(sorted(names, key=CAP_NUMBERS.get))  # by number, as caps_format
    check(f"Keeping capabilities {logged};" in b.log(), f"kept set not logged as {logged!r}:\n{b.log()}")


def check_still_works(b):
    """What needs the kept capabilities still works: /proc/PID/exe of root's
    and another user's processes (CAP_SYS_PTRACE), read at their exec."""
    with Users("x") as u:
        c = b.client()
        c.subscribe(events=["exec", "exit"], match={"ppid": ME})
        kids = [child("exit", 1, hold=True), child_as(u.x, "exit", 2, hold=True)]
        execs = {}
        c.events_until(lambda e: e["type"] == "exec" and execs.setdefault(e["tgid"], e)
                       and all(p.pid in execs for p in kids),
                       what="the execs of root's and another user's process")
        for p in kids:
            e = execs[p.pid]
            check(e["exe"] and e["exe"].endswith("/pn-child") and "exit" in (e["cmdline"] or ""),
                  f"exe or cmdline not read after the drop: {e}")
            release(p)
        wait_exits(c, kids)


def test_capabilities():
    """Started as root, the broker keeps exactly the documented set."""
    rmem_max = int(open("/proc/sys/net/core/rmem_max").read())
    size = max(4 * rmem_max, 8 << 20)
    with Broker(config=f"[Connector]\nReceiveBuffer={size}\n") as b:
        check_caps(b, KEPT)
        check_still_works(b)
        # SIGHUP: a larger receive buffer than rmem_max needs CAP_NET_ADMIN.
        with open(b.config_path, "w") as f:
            f.write(f"[Connector]\nReceiveBuffer={2 * size}\n")
        b.signal(signal.SIGHUP)
        b.wait_notify("READY=1")
        got = b.client().request({"op": "status"})["connector"]["receive_buffer"]
        check(got >= 2 * size, f"receive buffer {got} after reload to {2 * size} (rmem_max {rmem_max})")
        check("Failed" not in b.log(), f"a failure after the drop:\n{b.log()}")
        # A reload that needs more than was kept cannot regain it: it says so.
        with open(b.config_path, "w") as f:
            f.write("[Run]\nEnabled=yes\n")
        b.signal(signal.SIGHUP)
        b.wait_notify("READY=1")
        check("needs cap_setgid cap_setuid cap_setpcap, dropped at start: restart" in b.log(),
              f"no warning:\n{b.log()}")
        check_caps(b, KEPT)
    with Broker(config="[Run]\nEnabled=yes\n") as b:
        check_caps(b, KEPT_WITH_RUN)
    with Broker(config="[Run]\nEnabled=no\n") as b:
        check_caps(b, KEPT)


def pidfds_of(pid):
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            n += os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:[pidfd]"
        except OSError:
            pass
    return n


def test_peer_pidfd_per_connection():
    """A JSON connection that asks for signals holds the connecting
    process's pidfd (SO_PEERPIDFD, so a signal cannot hit a reused pid); one
    that does not holds none; both give everything back when they go."""
    with Broker() as b:
        base = pidfds_of(b.proc.pid)
        plain = [b.client() for _ in range(2)]
        for c in plain:
            c.subscribe(events=["exit"])
        check(pidfds_of(b.proc.pid) == base, f"pidfds {pidfds_of(b.proc.pid)} for plain clients, expected {base}")
        signalled = [b.client() for _ in range(3)]
        for c in signalled:
            c.subscribe(events=["predump"], match={"pid": 1}, signal="SIGUSR1")
        check(pidfds_of(b.proc.pid) == base + 3, f"pidfds {pidfds_of(b.proc.pid)}, expected {base + 3}")
        for c in plain + signalled:
            c.close()
        deadline = time.monotonic() + 15
        while pidfds_of(b.proc.pid) != base:
            # The broker learns of the closes asynchronously; nothing tells us when.
            check(time.monotonic() < deadline, f"pidfds left behind: {pidfds_of(b.proc.pid)} > {base}")
            time.sleep(0.05)


def unit_settings(path):
    """Key -> list of values of the [Service] section of a unit file."""
    out, section = {}, None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("["):
                section = line
            elif section == "[Service]" and "=" in line and not line.startswith("#"):
                k, _, v = line.partition("=")
                out.setdefault(k, []).append(v)
    return out


def test_capabilities_as_unit():
    """Started the way dbus/procnotifyd.service starts it (its bounding set,
    ambient set, securebits and no_new_privs, read from the configured unit
    and applied with setpriv), the broker serves with exactly the documented
    set."""
    check(UNIT and os.path.exists(UNIT), f"PROCNOTIFYD_UNIT is not set or missing: {UNIT!r}")
    s = unit_settings(UNIT)
    bounding = s["CapabilityBoundingSet"][-1].lower().split()
    ambient = s["AmbientCapabilities"][-1].lower().split()
    check(sorted(bounding) == sorted(KEPT) and sorted(ambient) == sorted(KEPT),
          f"the unit's capabilities {bounding} / {ambient} are not the documented {KEPT}")
    securebits = s["SecureBits"][-1].replace("-", "_").split()
    check(s["NoNewPrivileges"] == ["yes"], "NoNewPrivileges=yes missing")
    caps = ",".join("+" + c[4:] for c in KEPT)
    prefix = ["setpriv", "--no-new-privs", "--securebits=" + ",".join("+" + b for b in securebits),
              f"--bounding-set=-all,{caps}", f"--inh-caps=-all,{caps}", f"--ambient-caps=-all,{caps}",
              "--"]
    with Broker(prefix=prefix) as b:
        check_caps(b, KEPT)
        check_still_works(b)


def test_unit_verify_and_exposure():
    """systemd-analyze verify accepts the configured unit (with the socket
    unit and the man page it names), and its security exposure stays at
    the measured level."""
    check(UNIT and os.path.exists(UNIT) and SOCKET_UNIT, f"unit paths not set: {UNIT!r} {SOCKET_UNIT!r}")
    with tempfile.TemporaryDirectory() as d:
        # The same file, with ExecStart= pointing at the built broker (the
        # installed path does not exist here) and the man page findable.
        text = re.sub(r"(?m)^ExecStart=\S+", f"ExecStart={PROCNOTIFYD}", open(UNIT).read())
        unit = os.path.join(d, "procnotifyd.service")
        with open(unit, "w") as f:
            f.write(text)
        shutil.copy(SOCKET_UNIT, d)
        os.makedirs(os.path.join(d, "man", "man8"))
        shutil.copy(os.path.join(MAN_DIR, "procnotifyd.8"), os.path.join(d, "man", "man8"))
        env = dict(os.environ, MANPATH=os.path.join(d, "man"), SYSTEMD_LOG_COLOR="0")
        r = subprocess.run(["systemd-analyze", "verify", unit, os.path.join(d, "procnotifyd.socket")],
                           capture_output=True, text=True, env=env, timeout=60)
        check(r.returncode == 0 and not r.stderr.strip(), f"verify ({r.returncode}): {r.stderr}")
        r = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager",
                            f"--threshold={EXPOSURE_THRESHOLD}", unit],
                           capture_output=True, text=True, env=env, timeout=60)
        level = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout)
        check(level, f"no exposure level in: {r.stdout[-500:]} {r.stderr}")
        check(r.returncode == 0, f"exposure {level.group(1)} is above {EXPOSURE_THRESHOLD / 10}:\n"
              + "\n".join(x for x in r.stdout.splitlines() if x.startswith("✗")))
        print(f"exposure of procnotifyd.service: {level.group(1)}")


if __name__ == "__main__":
    tests = {}
    for name, fn in list(globals().items()):
        if not name.startswith("test_"):
            continue
        if fn.__code__.co_argcount == 1:
            for kind in KINDS:
                tests[f"{name[5:]}@{kind}"] = (lambda fn=fn, kind=kind: fn(kind))
        else:
            tests[name[5:]] = fn
    run(tests)
