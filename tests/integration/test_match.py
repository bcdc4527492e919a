#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Matching what a failover manager means (issue 14, section 3): how a
process ended (signal, core_dumped, exit_code), its command line and its
network namespace, over the JSON socket, D-Bus (both buses), a hook file
and procnotifyctl; and what a predump tells of the crash. Real children
that exit and crash, a real network namespace (`ip netns add`, removed at
the end). Run one test: `test_match.py NAME` (D-Bus ones `NAME@BUS`)."""
import json
import os
import signal
import subprocess
import tempfile
import uuid

from pntest import PN_CHILD, Broker, Bus, Proc, _die_with_parent, check, fail, of_pid, run
from test_ctl import wait_subscriptions
from test_dbus import signal_of, subscriber

ME = os.getpid()
CTL = os.environ.get("PROCNOTIFYCTL", "procnotifyctl")
PN_CHILD_REAL = os.path.realpath(PN_CHILD)
PAGE = os.sysconf("SC_PAGE_SIZE")


def core_pattern():
    with open("/proc/sys/kernel/core_pattern") as f:
        return f.read().rstrip("\n")


def expected_core_dump(limit):
    """What the kernel does with a crash's core under this core_pattern."""
    if core_pattern().startswith("|"):
        return "none" if limit == 1 else "pipe"
    if limit != "unlimited" and limit < PAGE:
        return "none"
    return "file"


class Netns:
    """A real network namespace made with `ip netns add`, deleted at the end."""

    def __init__(self):
        self.name = "pnt-" + uuid.uuid4().hex[:10]

    def __enter__(self):
        self._add()
        return self

    def _add(self):
        r = subprocess.run(["ip", "netns", "add", self.name], capture_output=True, text=True)
        check(r.returncode == 0, f"ip netns add {self.name}: {r.stderr}")

    def inode(self):
        return os.stat(f"/run/netns/{self.name}").st_ino

    def recreate(self):
        """Delete the namespace and make a new one under the same name."""
        subprocess.run(["ip", "netns", "del", self.name], check=True)
        self._add()

    def argv(self, *args):
        return ["ip", "netns", "exec", self.name, PN_CHILD, "--wait-stdin"] + [str(a) for a in args]

    def __exit__(self, *exc):
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
        check(not os.path.exists(f"/run/netns/{self.name}"), f"netns {self.name} left behind")


def held(argv, cwd=None):
    return subprocess.Popen([str(a) for a in argv], cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            preexec_fn=_die_with_parent)


def run_held(watch, argv, cwd=None):
    """Start a pn-child held before its command (directly, or through `ip
    netns exec`), wait until the broker reported the exec of pn-child itself
    (so it knows its name, command line and namespace), let it run, reap it.
    watch: a client subscribed to exec events of our children."""
    p = held(argv, cwd)
    watch.events_until(lambda e: e.get("type") == "exec" and e.get("tgid") == p.pid
                       and e.get("exe") == PN_CHILD_REAL, 15, what=f"exec of pn-child {p.pid}")
    p.stdin.close()
    p.wait(15)
    return p


def exec_watch(b):
    w = b.client()
    w.subscribe(events=["exec"], match={"ppid": ME})
    return w


def delivered(c, pids):
    """The events c got about pids, up to now: a ping's pong comes after
    every event the broker published before it."""
    c.request({"op": "ping"})
    got = [e for e in c.pending if e.get("tgid") in pids]
    c.pending.clear()
    return got


def test_crash_keys_json():
    """Each new key passes exactly the exits it names: a clean exit(0) and
    an exit(3) are no crash; signal, exit_code, core_dumped, cmdline."""
    with Broker() as b, tempfile.TemporaryDirectory() as cwd:
        os.chmod(cwd, 0o777)
        watch = exec_watch(b)
        subs = {
            "segv": {"signal": "SEGV"},
            "segv_or_abrt": {"signal": ["SIGABRT", 11]},
            "kill": {"signal": 9},
            "code3": {"exit_code": 3},
            "code0": {"exit_code": [0]},
            "core": {"core_dumped": True},
            "no_core": {"core_dumped": False},
            "cmd": {"cmdline": "* exit 3"},
            "cmd_exact": {"cmdline": f"{PN_CHILD} --wait-stdin exit 0"},
        }
        hits = b.client()
        hits.subscribe(events=["exit"], match={"ppid": ME})
        clients = {}
        for name, m in subs.items():
            c = b.client()
            c.subscribe(events=["predump", "exit"], match=dict(m, ppid=ME))
            clients[name] = c
        clean = run_held(watch, [PN_CHILD, "--wait-stdin", "exit", 0])
        three = run_held(watch, [PN_CHILD, "--wait-stdin", "exit", 3])
        segv = run_held(watch, [PN_CHILD, "--wait-stdin", "segv", "nocore"], cwd=cwd)
        pids = {clean.pid: "exit0", three.pid: "exit3", segv.pid: "segv"}
        # Every process's exit is out before the last one's: wait for it on
        # one client that gets it, then ask each for what it has.
        hits.events_until(of_pid(segv.pid, "exit"), 15, what="exit of the SEGV child")
        want = {
            "segv": ["segv exit"],
            "segv_or_abrt": ["segv exit"],
            "kill": [],
            "code3": ["exit3 exit"],
            "code0": ["exit0 exit"],
            "core": [],
            "no_core": ["exit0 exit", "exit3 exit", "segv exit"],
            "cmd": ["exit3 exit"],
            "cmd_exact": ["exit0 exit"],
        }
        for name, c in clients.items():
            got = [f"{pids[e['tgid']]} {e['type']}" for e in delivered(c, pids)]
            check(got == want[name], f"{name} {subs[name]}: got {got}, want {want[name]}")
        # Bad values are invalid-filter, with the key named.
        c = b.client()
        for m, word in (({"signal": "SIGFOO"}, "match.signal"), ({"exit_code": 256}, "match.exit_code"),
                        ({"core_dumped": "yes"}, "match.core_dumped"),
                        ({"netns": "no-such-ns-" + uuid.uuid4().hex[:6]}, "no network namespace named"),
                        ({"netns": "../etc"}, "match.netns")):
            r = c.request({"op": "subscribe", "match": m})
            check(r.get("type") == "error" and r.get("code") == "invalid-filter" and word in r.get("message", ""),
                  f"{m}: {r}")


def test_predump_details():
    """A predump names the process as pid and the faulting thread as tid,
    and tells the process's size, core limit, what becomes of the core and
    its network namespace; the exit has the namespace too."""
    with Broker() as b, tempfile.TemporaryDirectory() as cwd:
        os.chmod(cwd, 0o777)
        c = b.client()
        c.subscribe(events=["predump", "exit"], match={"ppid": ME})
        my_netns = os.stat("/proc/self/ns/net").st_ino
        watch = exec_watch(b)
        # Held until the broker read their exec: the table knows them. What
        # is read at the predump is there while the process dumps core: a
        # 64 MiB core takes a while; a crash without one may be over before
        # the broker looks (then null, as the protocol says).
        for args, limit in ((["segv-big", 64], "unlimited"), (["thread-segv", 3], 0), (["segv", "nocore"], 0)):
            p = run_held(watch, [PN_CHILD, "--wait-stdin"] + args, cwd=cwd)
            seen = c.events_until(of_pid(p.pid, "exit"), 30, what=f"exit of {args}")
            mine = [e for e in seen if e.get("tgid") == p.pid]
            check([e["type"] for e in mine] == ["predump", "exit"], f"{args}: {mine}")
            pd, ex = mine
            check(pd["pid"] == p.pid and pd["tgid"] == p.pid and "thread" not in pd,
                  f"{args}: a predump is about the process: {pd}")
            if args[0] == "thread-segv":
                check(pd["tid"] != p.pid and pd["tid"] > 0, f"a thread crashed, not main: {pd}")
            else:
                check(pd["tid"] == p.pid, f"the main thread crashed: {pd}")
            check(pd["signal"] is None, f"{args}: the predump's signal is not known: {pd}")
            check(pd["exe"] == PN_CHILD_REAL and ex["exe"] == PN_CHILD_REAL, f"{args}: exe {pd} {ex}")
            if args[0] == "segv-big":
                check(pd["rss"] >= 64 << 20, f"{args}: rss of 64 MiB: {pd}")
                check(pd["core_limit"] == limit, f"{args}: core_limit {limit}: {pd}")
                check(pd["core_dump"] == expected_core_dump(limit),
                      f"{args}: core_dump {expected_core_dump(limit)} (core_pattern {core_pattern()!r}): {pd}")
            else:
                check(pd["rss"] is None or pd["rss"] >= PAGE, f"{args}: rss: {pd}")
                check(pd["core_limit"] in (limit, None), f"{args}: core_limit {limit}: {pd}")
                check(pd["core_dump"] in (expected_core_dump(limit), None), f"{args}: core_dump: {pd}")
            check(pd["netns"] == my_netns and ex["netns"] == my_netns,
                  f"{args}: netns {my_netns}: {pd} {ex}")
            check(ex["signal"] == signal.SIGSEGV, f"{args}: exit {ex}")


def test_netns_json():
    """Two runs of one executable, in two network namespaces, told apart by
    the namespace's name and by its inode. A name is the namespace it named
    when subscribing: a namespace made again under that name is another."""
    with Broker() as b, Netns() as ns:
        watch = exec_watch(b)
        hits = b.client()
        hits.subscribe(events=["exit"], match={"ppid": ME})
        by_name, by_inode, not_it = b.client(), b.client(), b.client()
        by_name.subscribe(events=["exit"], match={"netns": ns.name, "ppid": ME})
        by_inode.subscribe(events=["exit"], match={"netns": [ns.inode()], "ppid": ME})
        not_it.subscribe(events=["exit"], match={"netns": os.stat("/proc/self/ns/net").st_ino, "ppid": ME})
        inside = run_held(watch, ns.argv("exit", 4))
        outside = run_held(watch, [PN_CHILD, "--wait-stdin", "exit", 4])
        hits.events_until(of_pid(outside.pid, "exit"), 15, what="exit outside the namespace")
        pids = {inside.pid: "inside", outside.pid: "outside"}
        for c, want, what in ((by_name, ["inside"], "by name"), (by_inode, ["inside"], "by inode"),
                              (not_it, ["outside"], "the test's own namespace")):
            got = [pids[e["tgid"]] for e in delivered(c, pids)]
            check(got == want, f"{what}: got {got}, want {want}")
        # Made again under the same name: the old subscription names the
        # namespace that is gone, a new one the new namespace.
        old_inode = ns.inode()
        ns.recreate()
        renamed = b.client()
        renamed.subscribe(events=["exit"], match={"netns": ns.name, "ppid": ME})
        again = run_held(watch, ns.argv("exit", 5))
        hits.events_until(of_pid(again.pid, "exit"), 15, what="exit in the new namespace")
        ex = delivered(renamed, {again.pid})
        check(len(ex) == 1 and ex[0]["netns"] == ns.inode(), f"new subscription: {ex}, inode {ns.inode()}")
        # A namespace is named by its inode, and a kernel may give the new
        # namespace the number of the one deleted (6.1 does at once): then
        # the old subscription names it too, as PROTOCOL.md says.
        if ns.inode() == old_inode:
            check(len(delivered(by_name, {again.pid})) == 1,
                  "the old subscription missed the new namespace of the same inode")
        else:
            check(delivered(by_name, {again.pid}) == [], "the old subscription matched the new namespace")


def test_wait_crash():
    """procnotifyctl wait --crash: not on an exit 0 nor an exit 1, but on a
    SIGSEGV (its predump, before the core is written)."""
    with Broker() as b, tempfile.TemporaryDirectory() as cwd:
        os.chmod(cwd, 0o777)
        watch = exec_watch(b)
        w = Proc([CTL, "--socket", b.socket_path, "wait", "--crash", "--ppid", str(ME),
                  "--timeout=60"])
        try:
            hits = b.client()
            hits.subscribe(events=["exit"], match={"ppid": ME})
            wait_subscriptions(b, 4)  # watch, hits, and the two of --crash
            for code in (0, 1):
                p = run_held(watch, [PN_CHILD, "--wait-stdin", "exit", code])
                hits.events_until(of_pid(p.pid, "exit"), 15, what=f"exit {code}")
            # The wait's connection has both exits (same broker, same order)
            # by the time our pong comes: it must still be waiting.
            hits.request({"op": "ping"})
            if w.p.poll() is not None:
                fail(f"wait --crash returned on a clean exit: {w.p.returncode} {w.p.stdout.read()!r}")
            segv = run_held(watch, [PN_CHILD, "--wait-stdin", "segv", "nocore"], cwd=cwd)
            line = w.line(30, "the crash from wait --crash")
            ev = json.loads(line)
            check(ev["tgid"] == segv.pid and ev["type"] == "predump", f"wait --crash printed {ev}")
            check(w.p.wait(15) == 0, f"wait --crash exited {w.p.returncode}")
        finally:
            w.close()


def test_ctl_flags():
    """procnotifyctl's new filters reach the broker as match keys (their
    errors are the broker's), and --signal is a filter in monitor and wait."""
    with Broker() as b, tempfile.TemporaryDirectory() as cwd:
        os.chmod(cwd, 0o777)
        watch = exec_watch(b)
        w = Proc([CTL, "--socket", b.socket_path, "wait", "--events=exit", "--signal=SEGV",
                  "--exit-code=139", "--cmdline=*segv nocore", "--ppid", str(ME), "--timeout=60"])
        try:
            hits = b.client()
            hits.subscribe(events=["exit"], match={"ppid": ME})
            wait_subscriptions(b, 3)
            p = run_held(watch, [PN_CHILD, "--wait-stdin", "exit", 139])  # a status, not a signal
            hits.events_until(of_pid(p.pid, "exit"), 15, what="exit 139")
            hits.request({"op": "ping"})
            check(w.p.poll() is None, "wait --signal=SEGV returned on exit(139)")
            segv = run_held(watch, [PN_CHILD, "--wait-stdin", "segv", "nocore"], cwd=cwd)
            ev = json.loads(w.line(30, "the SEGV exit"))
            check(ev["tgid"] == segv.pid and ev["signal"] == 11, f"printed {ev}")
            check(w.p.wait(15) == 0, f"exit status {w.p.returncode}")
        finally:
            w.close()
        for args, word in ((["--signal=FOO"], "match.signal"), (["--exit-code=300"], "--exit-code"),
                           (["--netns=no-such-" + uuid.uuid4().hex[:6]], "no network namespace"),
                           (["--crash", "--events=exit"], "--crash")):
            r = subprocess.run([CTL, "--socket", b.socket_path, "wait", "--timeout=1"] + args,
                               capture_output=True, text=True, timeout=30)
            check(r.returncode in (2, 3) and word in r.stderr, f"{args}: {r.returncode} {r.stderr}")


def test_dbus_crash_keys(kind):
    """Over D-Bus: event_signal (the JSON key "signal"; "signal" is the
    signal to the subscriber there), exit_code and netns by name narrow the
    Exited signals; Predump carries pid, tid, rss, core limit, core_dump and
    netns; Exited the netns."""
    with Bus(kind) as bus, Broker(dbus=bus.address) as b, Netns() as ns, \
            tempfile.TemporaryDirectory() as cwd:
        os.chmod(cwd, 0o777)
        watch = exec_watch(b)
        segv_sub = subscriber(bus, "predump,exit", {"event_signal": "SEGV", "ppid": ME})
        ns_sub = subscriber(bus, "exit", {"netns": ns.name, "exit_code": 6, "ppid": ME})
        pd_sub = subscriber(bus, "predump", {"ppid": ME})
        bad = subscriber(bus, "exit", {"ppid": ME})
        try:
            bad.send("subscribe exit " + json.dumps({"netns": "no-such-" + uuid.uuid4().hex[:6]}))
            r = bad.json(15, "the refused subscription")
            check(r.get("error") == "org.procnotify.Broker1.Error.InvalidFilter"
                  and "no network namespace named" in r.get("message", ""), f"bad netns: {r}")
            clean = run_held(watch, [PN_CHILD, "--wait-stdin", "exit", 0])
            outside = run_held(watch, [PN_CHILD, "--wait-stdin", "exit", 6])
            inside = run_held(watch, ns.argv("exit", 6))
            # A 32 MiB core: the process is still there, dumping, when the
            # broker reads what the Predump tells.
            segv = run_held(watch, [PN_CHILD, "--wait-stdin", "segv-big", 32], cwd=cwd)
            seen = signal_of(segv_sub, "Exited", segv.pid)
            mine = [(m["member"], m["args"]["tgid"]) for m in seen if m.get("member") in ("Predump", "Exited")]
            check(mine == [("Exited", segv.pid)], f"event_signal SEGV: {mine} (clean {clean.pid})")
            seen = signal_of(ns_sub, "Exited", inside.pid)
            mine = [m["args"] for m in seen if m.get("member") == "Exited"]
            check([a["tgid"] for a in mine] == [inside.pid] and mine[0]["netns"] == ns.inode(),
                  f"netns {ns.name} ({ns.inode()}), exit_code 6: {mine} (outside {outside.pid})")
            pd = [m["args"] for m in signal_of(pd_sub, "Predump", segv.pid)
                  if m.get("member") == "Predump"][-1]
            check(pd["pid"] == segv.pid and pd["tid"] == segv.pid and pd["signal"] == 0
                  and pd["rss"] >= 32 << 20 and pd["core_limit"] == -1  # unlimited
                  and pd["core_dump"] == expected_core_dump("unlimited")
                  and pd["netns"] == os.stat("/proc/self/ns/net").st_ino, f"Predump: {pd}")
        finally:
            for s in (segv_sub, ns_sub, pd_sub, bad):
                s.close()


def test_hook_crash_keys():
    """A hook file that matches a crash of one daemon in one namespace, by
    the namespace's name: not a clean exit there, not the same crash
    elsewhere; the hook's environment has the predump's details."""
    from test_hooks import Runner, Scratch
    with Broker() as b, Netns() as ns, tempfile.TemporaryDirectory() as cwd:
        os.chmod(cwd, 0o777)
        sc = Scratch()
        try:
            sc.report_hook("crash", events="predump exit",
                           extra_match=f"Netns={ns.name}\nSignal=SEGV\n")
            sc.report_hook("dump", events="predump", extra_match=f"Netns={ns.inode()}\n")
            with Runner(b, sc):
                watch = exec_watch(b)
                def argv(*a):
                    return ["ip", "netns", "exec", ns.name, sc.child, "--wait-stdin"] + list(a)
                clean = run_held_named(watch, sc, argv("exit", "0"), cwd)
                outside = run_held_named(watch, sc, [sc.child, "--wait-stdin", "segv", "nocore"], cwd)
                inside = run_held_named(watch, sc, argv("segv-big", "32"), cwd)
                reports = [sc.next_report(what="the hooks' reports") for _ in range(2)]
                by_event = {}
                for rep in reports:
                    env = rep["env"]
                    check(env["PROCNOTIFY_TGID"] == str(inside.pid),
                          f"a hook ran for {env.get('PROCNOTIFY_TGID')} (inside {inside.pid}, outside "
                          f"{outside.pid}, clean {clean.pid}): {env}")
                    by_event.setdefault(env["PROCNOTIFY_TYPE"], []).append(env)
                # "crash": the exit (the predump's signal is not known);
                # "dump": the predump, with what it tells.
                check(sorted(by_event) == ["exit", "predump"], f"hooks ran for {sorted(by_event)}")
                pd = by_event["predump"][0]
                check(pd["PROCNOTIFY_NETNS"] == str(ns.inode()) and pd["PROCNOTIFY_TID"] == str(inside.pid)
                      and int(pd["PROCNOTIFY_RSS"]) >= 32 << 20
                      and pd["PROCNOTIFY_CORE_LIMIT"] == "unlimited"
                      and pd["PROCNOTIFY_CORE_DUMP"] == expected_core_dump("unlimited"),
                      {k: v for k, v in pd.items() if k.startswith("PROCNOTIFY_")})
                check(by_event["exit"][0]["PROCNOTIFY_SIGNAL"] == "11", f"exit env: {by_event['exit']}")
                check(sc.no_report_pending(), "a third hook report")
        finally:
            sc.close()


def run_held_named(watch, sc, argv, cwd):
    p = held(argv, cwd)
    watch.events_until(lambda e: e.get("type") == "exec" and e.get("tgid") == p.pid
                       and e.get("comm") == sc.name, 15, what=f"exec of {p.pid}")
    p.stdin.close()
    p.wait(15)
    return p


TESTS = {
    "crash_keys_json": test_crash_keys_json,
    "predump_details": test_predump_details,
    "netns_json": test_netns_json,
    "wait_crash": test_wait_crash,
    "ctl_flags": test_ctl_flags,
    "hook_crash_keys": test_hook_crash_keys,
}
for bus in ("dbus-daemon", "dbus-broker"):
    TESTS["dbus_crash_keys@" + bus] = lambda bus=bus: test_dbus_crash_keys(bus)

if __name__ == "__main__":
    run(TESTS)
