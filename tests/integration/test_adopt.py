#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Adoption, following a service through its forks, and signals to
subscribers, against the real kernel with real forking and crashing
processes (tests/helpers/pn-child). Run one test: `test_adopt.py NAME`."""
import json
import os
import signal
import subprocess
import tempfile

from pntest import (PN_CHILD, PN_SIGWAIT, Broker, Client, Dance, check, child, fail, of_pid,
                    release, run)

ME = os.getpid()
NOBODY = 65534
# Only the kernel events these tests need: a flood of other events (renames,
# id changes) by anything else on the machine is filtered out in the kernel
# and cannot delay what the tests wait for.
CONFIG = "[Connector]\nEvents=fork,exec,exit,predump\n"


def _adoptions(c, dance, n):
    """Read events until n adopt events about the dance's stages came."""
    pids = {pid for pid, _ in dance.stages.values()}
    adopts = []

    def done(e):
        if e["type"] == "adopt" and e["tgid"] in pids:
            adopts.append(e)
        return len(adopts) == n
    c.events_until(done, what=f"{n} adoptions of the stages {dance.stages} (got {adopts})")
    return adopts


def _check_dance_adoptions(adopts, dance, reaper):
    """Stage i (i >= 1) was adopted from stage i-1 by reaper, in order."""
    want = [(dance.pid(i), dance.pid(i - 1), reaper) for i in range(1, dance.forks + 1)]
    got = [(e["tgid"], e["old_parent"], e["new_parent"]) for e in adopts]
    check(got == want, f"adoptions (pid, old_parent, new_parent): got {got}, want {want}")
    for e in adopts:
        check(e["ppid"] == reaper and e["sources"] == ["connector"], f"adopt event: {e}")
        check(e["comm"] == "pn-child", f"adopt event not enriched: {e}")
    # What the kernel said to the stages themselves: each saw the reaper as
    # its parent once its own parent was gone.
    for i in range(1, dance.forks + 1):
        check(dance.stages[i][1] == reaper,
              f"stage {i} saw parent {dance.stages[i][1]}, not {reaper}")


def _dance_adopted(subreaper):
    """The dance of two forks, held until the broker has seen stage 0's exec
    (so that it knows the name the stages inherit); then its adoptions."""
    with Broker(config=CONFIG) as b:
        c = b.client()
        c.subscribe(events=["exec", "adopt"])
        d = Dance(2, subreaper=subreaper, hold=True)
        try:
            d.read_stage0()
            c.events_until(of_pid(d.pid(0), "exec"), what="exec of stage 0")
            d.go()
            d.read_all()
            reaper = d.subreaper if subreaper else 1
            if subreaper:
                check(d.subreaper and d.subreaper != 1, f"no subreaper: {d.subreaper}")
            else:
                check(d.stages[2][1] == 1, f"the daemon's parent is {d.stages[2][1]}, not init: "
                      "is a process above this test a child subreaper?")
            _check_dance_adoptions(_adoptions(c, d, 2), d, reaper)
            s = c.request({"op": "status"})
            check(s["process_table"]["adoptions"] >= 2, f"status: {s['process_table']}")
        finally:
            d.close()


def test_adopt_double_fork_init():
    """The classic daemon double fork: fork, setsid, fork, parent exits. Both
    orphans are adopted by init (pid 1), with the right old parents."""
    _dance_adopted(subreaper=False)


def test_adopt_double_fork_subreaper():
    """The same dance below a child subreaper: the orphans go to it, not init."""
    _dance_adopted(subreaper=True)


def _follow_reports(c, n, what):
    """Read events until n follow reports came; return (events, reports)."""
    reports = []

    def done(e):
        if e["type"] == "follow":
            reports.append(e)
        return len(reports) == n
    seen = c.events_until(done, what=what)
    return seen, reports


def test_follow_three_fork_daemon():
    """A daemon whose fork dance has three forks, each intermediate exiting
    after its child was forked: a subscription following the first process
    is told of each new main pid as its predecessor exits, ends at the real
    main (the pid the daemon itself reports), sees the service's events
    throughout although the tree links to it are cut (adoption by init), and
    is told when the service ended."""
    with Broker(config=CONFIG) as b:
        c = b.client()
        d = Dance(3, hold=True)
        try:
            d.read_stage0()
            first = d.pid(0)
            sub = c.subscribe(events=["fork", "exit", "adopt"], match={"follow": first})
            # An unrelated process is not followed.
            other = child("exit", 0)
            other.wait()
            d.go()
            d.read_all()
            stages = [d.pid(i) for i in range(4)]
            seen, reports = _follow_reports(c, 3, "the main pid to move three times")
            mains = [(r["previous_main_pid"], r["main_pid"]) for r in reports]
            want = [(stages[i], stages[i + 1]) for i in range(3)]
            check(mains == want, f"main moves (previous, new): got {mains}, want {want}")
            check(reports[-1]["main_pid"] == d.main, f"followed to {reports[-1]['main_pid']}, "
                  f"but the daemon says its main is {d.main}")
            for r in reports:
                check(r["id"] == sub and r["reason"] == "main-exited" and r["candidates"] == 1,
                      f"follow report: {r}")
                check("seq" not in r and r["ts_ns"] > 0 and r["time"], f"follow report shape: {r}")
            # Each report follows the exit of the previous main at once: a
            # manager never sees that exit without knowing the successor.
            for i, e in enumerate(seen):
                if e["type"] == "exit" and e["tgid"] in stages[:3]:
                    nxt = seen[i + 1]
                    check(nxt["type"] == "follow" and nxt["cause_seq"] == e["seq"] and
                          nxt["previous_main_pid"] == e["tgid"],
                          f"exit of main {e['tgid']} not followed by its report: {nxt}")
            # The last main's adoption comes after the report of its parent's exit.
            seen += c.events_until(lambda e: e["type"] == "adopt" and e["tgid"] == d.main,
                                   what="adoption of the main")
            check(not any(e.get("tgid") == other.pid for e in seen), "an unrelated process matched")
            forks = [e["tgid"] for e in seen if e["type"] == "fork"]
            check(forks == stages[1:], f"forks seen {forks}, want {stages[1:]}")
            adopts = [(e["tgid"], e["new_parent"]) for e in seen if e["type"] == "adopt"]
            check(adopts == [(p, 1) for p in stages[1:]], f"adoptions seen: {adopts}")
            # The main ends: the service ended.
            d.release()
            seen, reports = _follow_reports(c, 1, "the end of the followed service")
            check(seen[-2]["type"] == "exit" and seen[-2]["tgid"] == d.main, f"events: {seen[-3:]}")
            r = reports[0]
            check(r["reason"] == "ended" and r["main_pid"] == 0 and r["previous_main_pid"] == d.main
                  and r["members"] == 0, f"end report: {r}")
        finally:
            d.close()


def test_follow_worker_after_main_dies():
    """A main that forks a worker and dies: the worker is the main now."""
    with Broker(config=CONFIG) as b:
        c = b.client()
        d = Dance(1, hold=True)
        try:
            d.read_stage0()
            c.subscribe(events=["exit"], match={"follow": d.pid(0)})
            d.go()
            d.read_all()
            seen, reports = _follow_reports(c, 1, "the worker to become the main")
            check(reports[0]["main_pid"] == d.main == d.pid(1), f"report {reports[0]}, main {d.main}")
            check([e["tgid"] for e in seen if e["type"] == "exit"] == [d.pid(0)], f"events: {seen}")
        finally:
            d.close()


def test_follow_errors():
    """follow names one process the client may see; else a precise error."""
    with Broker(config=CONFIG) as b:
        c = b.client()
        cases = [
            ({"follow": [ME, ME]}, "invalid-filter"),
            ({"follow": []}, "invalid-filter"),
            ({"follow": "x"}, "invalid-filter"),
            ({"follow": 0}, "invalid-filter"),
            ({"follow": 4194304 + 1}, "not-found"),  # above any pid_max
        ]
        for match, code in cases:
            r = c.request({"op": "subscribe", "match": match})
            check(r["type"] == "error" and r["code"] == code, f"{match}: expected {code}, got {r}")
        # Another user's process reads as not found to an unprivileged client.
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            os.setresuid(NOBODY, NOBODY, NOBODY)
            reply = Client(b.socket_path).request({"op": "subscribe", "match": {"follow": ME}})
            os.write(w, str(reply.get("code")).encode())
            os._exit(0)
        os.close(w)
        got = os.read(r, 100).decode()
        os.waitpid(pid, 0)
        check(got == "not-found", f"following root's process as nobody: {got}")
        # Limit: follows per connection.
        for _ in range(8):
            c.subscribe(match={"follow": ME})
        r = c.request({"op": "subscribe", "match": {"follow": ME}})
        check(r["type"] == "error" and r["code"] == "limit-exceeded", f"9th follow: {r}")


def _sigwait(b, sig, request, uid=None):
    """Start pn-sigwait subscribed with request; returns it once subscribed."""
    args = [PN_SIGWAIT] + (["--uid", str(uid)] if uid is not None else [])
    p = subprocess.Popen(args + [b.socket_path, str(int(sig)), json.dumps(request)],
                         stdout=subprocess.PIPE, text=True)
    reply = json.loads(p.stdout.readline())
    check(reply.get("type") == "subscribed", f"pn-sigwait's subscribe: {reply}")
    check(p.stdout.readline().strip() == "ready", "pn-sigwait not ready")
    return p


def _siginfo(p):
    out, _ = p.communicate(timeout=30)
    check(p.returncode == 0, f"pn-sigwait got no signal: {out!r}")
    return dict(kv.split("=") for kv in out.split())


def test_signal_carries_pid():
    """The subscriber gets its signal as SI_QUEUE from the broker, with the
    event's pid as the value."""
    with Broker(config=CONFIG) as b:
        p = child("exit", 3, hold=True)
        w = _sigwait(b, signal.SIGUSR1, {"op": "subscribe", "events": ["exit"],
                                         "match": {"pid": p.pid}, "signal": "SIGUSR1"})
        release(p)
        p.wait()
        si = _siginfo(w)
        check(si["signo"] == str(int(signal.SIGUSR1)) and si["code"] == "-1",  # SI_QUEUE
              f"siginfo: {si}")
        check(si["pid"] == str(b.proc.pid) and si["uid"] == "0", f"siginfo sender: {si}")
        check(si["value"] == str(p.pid), f"si_value {si['value']} is not the pid {p.pid}")
        s = b.client().request({"op": "status"})
        check(s["socket"]["signals_sent"] == 1, f"status: {s['socket']}")


def test_signal_only_what_policy_shows():
    """An unprivileged subscriber asking for a signal on every exit is not
    signalled for root's processes: the first signal it gets is for its own."""
    with Broker(config=CONFIG) as b:
        root = b.client()
        root.subscribe(events=["exit"], match={"ppid": ME})
        w = _sigwait(b, signal.SIGUSR2, {"op": "subscribe", "events": ["exit"], "signal": 12},
                     uid=NOBODY)
        rootkid = child("exit", 1)
        rootkid.wait()
        root.events_until(of_pid(rootkid.pid, "exit"), what="the root child's exit")
        userkid = child("setuid", NOBODY, 2)
        userkid.wait()
        si = _siginfo(w)
        check(si["value"] == str(userkid.pid),
              f"nobody's subscriber was signalled for {si['value']}, not its own {userkid.pid}"
              f" (root's was {rootkid.pid})")


def test_signal_invalid():
    """A signal that is no signal, or one a subscriber cannot handle, is refused."""
    with Broker(config=CONFIG) as b:
        c = b.client()
        for sig in ["SIGKILL", "STOP", 9, 19, 0, 65, -1, "SIGFOO", "", True, ["SIGUSR1"], "RTMIN+99"]:
            r = c.request({"op": "subscribe", "events": ["exit"], "signal": sig})
            check(r["type"] == "error" and r["code"] == "invalid-request" and "signal" in r["message"],
                  f"signal {sig!r}: expected invalid-request, got {r}")
        # Accepted (for the exit of this very process: never signalled).
        for sig in ["SIGUSR1", "usr2", 10, "SIGRTMIN+2", "RTMAX-1", "SIGTERM"]:
            r = c.request({"op": "subscribe", "events": ["exit"], "match": {"pid": ME}, "signal": sig})
            check(r["type"] == "subscribed", f"signal {sig!r} refused: {r}")


TRAP_SCRIPT = r"""
# stdin and stdout are the broker's socket (socat ... EXEC:...,nofork):
# this very process is the subscriber, and the one signalled.
log=$1
trap 'echo usr1 >>"$log"' USR1
read -r hello
# The signal for predump only; the exit as a line.
echo '{"op":"subscribe","events":["predump"],"match":{"ppid":'$$'},"signal":"SIGUSR1"}'
read -r reply
echo "reply $reply" >>"$log"
echo '{"op":"subscribe","events":["predump","exit"],"match":{"ppid":'$$'}}'
read -r reply
echo "reply $reply" >>"$log"
"$PN_CHILD" segv nocore &
while read -r line; do
    case "$line" in
    *'"type":"predump"'*) echo predump >>"$log" ;;
    *'"type":"exit"'*) echo exit >>"$log"; break ;;
    esac
done
wait
echo done >>"$log"
"""


def test_signal_trap_before_exit():
    """A shell script that traps SIGUSR1 is signalled when its crashing child
    is about to dump core, before the child's exit is reported to it."""
    with Broker(config=CONFIG) as b, tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "supervise.sh")
        log = os.path.join(tmp, "log")
        with open(script, "w") as f:
            f.write(TRAP_SCRIPT)
        r = subprocess.run(["socat", f"UNIX-CONNECT:{b.socket_path}",
                            f"EXEC:bash {script} {log},nofork"], env=dict(os.environ, PN_CHILD=PN_CHILD),
                           timeout=60, capture_output=True, text=True, cwd=tmp)
        lines = open(log).read().split("\n") if os.path.exists(log) else []
        check(r.returncode == 0 and lines and lines[-2:] == ["done", ""],
              f"script failed: rc {r.returncode}, {r.stderr!r}, log {lines}")
        check(all(l.startswith("reply ") and '"subscribed"' in l for l in lines[:2]),
              f"subscribe: {lines}")
        events = [l for l in lines[2:] if l and l != "done"]
        check("usr1" in events and "exit" in events and events.index("usr1") < events.index("exit"),
              f"SIGUSR1 did not come before the exit was reported: {events}")
        check(events.count("usr1") == 1, f"one predump, one signal: {events}")


if __name__ == "__main__":
    run({name[5:]: fn for name, fn in globals().items() if name.startswith("test_")})
