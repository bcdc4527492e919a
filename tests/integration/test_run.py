#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Supervised children (op "run"): the real broker starts real processes as
its own children, and reports their exit, stop, continue and the adoption of
their orphans, with source "child". Run one test: python3 test_run.py NAME."""
import grp
import json
import os
import pwd
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from pntest import Broker, PN_CHILD, PROCNOTIFYD, check, fail, run, wait_until

PROCNOTIFYCTL = os.environ.get("PROCNOTIFYCTL", "procnotifyctl")
# After the marker child's exit, how long to keep reading for a second exit
# of an earlier child (events are ordered, so one would normally come before
# the marker's).
MERGE_WINDOW = 0.1
RUN_EVENTS = ["exit", "stop", "continue", "adopt"]
# Subscriptions are narrowed to the broker's descendants (its children and
# the orphans it adopted): the test machine is shared, and a subscriber to
# every fork or exit on it can fall behind and lose its own events.


class RunBroker(Broker):
    """A broker whose children write their output into files of a private
    directory (the journal is not running here)."""

    def __init__(self, extra="", **kw):
        self.logdir = tempfile.mkdtemp(prefix="pnrun-logs-")
        super().__init__(config=f"[Run]\nEnabled=yes\nOutput=file\nLogDirectory={self.logdir}\n{extra}", **kw)

    def __exit__(self, *exc):
        try:
            return super().__exit__(*exc)
        finally:
            shutil.rmtree(self.logdir, ignore_errors=True)

    def output_of(self, name):
        try:
            with open(os.path.join(self.logdir, name + ".log")) as f:
                return f.read()
        except FileNotFoundError:
            return ""


def run_ok(client, argv, **kw):
    req = {"op": "run", "argv": [str(a) for a in argv], **kw}
    r = client.request(req)
    check(r and r.get("type") == "running", f"run {req} failed: {r}")
    check(isinstance(r.get("pid"), int) and r["pid"] > 0, f"no pid in {r}")
    return r


def run_error(client, req, code, in_message=None):
    r = client.request(req)
    check(r and r.get("type") == "error" and r.get("code") == code,
          f"{json.dumps(req)[:200]}: expected error {code}, got {r}")
    if in_message:
        check(in_message in r.get("message", ""),
              f"message {r.get('message')!r} lacks {in_message!r}")
    return r


def events_of(client, pid, until, timeout=30, what=None):
    """Events about pid until until(event); returns those of pid."""
    seen = client.events_until(lambda e: e.get("tgid") == pid and until(e), timeout,
                               what=what or f"event of {pid}")
    return [e for e in seen if e.get("tgid") == pid]


def no_more_exits(client, pid, broker, user=None):
    """Assert no second exit of pid arrives: run a marker child (as user, if
    the subscription is about that user's processes) and wait for its exit
    (events are ordered), then read past the merge window. Returns the
    events read, but the marker's exit: the marker may have been given a pid
    of the processes under test (another test on the machine rewinds
    ns_last_pid), and its exit is not theirs."""
    marker = run_ok(client, [PN_CHILD, "exit", 0], name="marker", **({"user": user} if user else {}))
    seen = client.events_until(lambda e: e.get("tgid") == marker["pid"] and e["type"] == "exit",
                               what="the marker child's exit")
    seen.pop()
    deadline = time.monotonic() + 3 * MERGE_WINDOW
    while time.monotonic() < deadline:
        r, _, _ = select.select([client.sock], [], [], max(deadline - time.monotonic(), 0))
        if not r:
            break
        m = client.read_message(1)
        if m:
            seen.append(m)
    dups = [e for e in seen if pid is not None and e.get("tgid") == pid and e.get("type") == "exit"]
    check(not dups, f"exit of {pid} reported twice: {dups}")
    return seen


def status_value(path):
    with open(path) as f:
        for line in f:
            k, _, v = line.partition(":")
            yield k, v.strip()


class TestUser:
    """A real user for a test, removed afterwards."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        subprocess.run(["userdel", "-r", self.name], stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/sh", self.name], check=True)
        pw = pwd.getpwnam(self.name)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        return self

    def __exit__(self, *exc):
        subprocess.run(["userdel", self.name], stderr=subprocess.DEVNULL)


def as_user(uid, gid, fn, groups=()):
    """Run fn() in a forked process with uid, gid and supplementary groups;
    return what it returns (JSON)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setgroups(list(groups))
            os.setgid(gid)
            os.setuid(uid)
            out = json.dumps(fn())
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            out = json.dumps({"exception": repr(e)})
        os.write(w, out.encode())
        os._exit(0)
    os.close(w)
    data = b""
    deadline = time.monotonic() + 20
    while True:
        left = deadline - time.monotonic()
        check(left > 0, "the unprivileged client did not answer within 20s")
        ready, _, _ = select.select([r], [], [], left)
        if not ready:
            continue
        chunk = os.read(r, 65536)
        if not chunk:
            break
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return json.loads(data)


# --- tests ---


def exit_once():
    """A supervised child that exits 3: one exit, sources connector and child."""
    with RunBroker() as b:
        sub = b.client()
        sub.subscribe(events=RUN_EVENTS, match={"descendants_of": b.proc.pid})
        ctl = b.client()
        r = run_ok(ctl, [PN_CHILD, "exit", 3], name="exit3")
        check(r["name"] == "exit3" and r["uid"] == 0, f"unexpected reply {r}")
        ev = events_of(sub, r["pid"], lambda e: e["type"] == "exit")[-1]
        check(ev["exit_code"] == 3 and ev["signal"] == 0 and ev["status"] == 3 << 8, f"wrong exit {ev}")
        check("child" in ev["sources"], f"exit lacks source child: {ev}")
        check("connector" in ev["sources"], f"exit lacks source connector (not merged): {ev}")
        check(ev["ppid"] == b.proc.pid, f"exit's ppid is not the broker: {ev}")
        no_more_exits(sub, r["pid"], b)
        check("Started supervised child exit3" in b.log() and "no clone3" not in b.log(),
              f"not started with clone3:\n{b.log()}")
        st = ctl.request({"op": "status"})
        check(st["run"]["started"] == 2 and st["run"]["ended"] == 2 and st["run"]["children"] == 0,
              f"run statistics: {st['run']}")


def stop_continue():
    """SIGSTOP and SIGCONT of a supervised child: stop and continue events
    from its wait status, with nobody tracing it."""
    with RunBroker() as b:
        sub = b.client()
        sub.subscribe(events=RUN_EVENTS, match={"descendants_of": b.proc.pid})
        ctl = b.client()
        pid = run_ok(ctl, [PN_CHILD, "pause"], name="pauser")["pid"]
        os.kill(pid, signal.SIGSTOP)
        ev = events_of(sub, pid, lambda e: e["type"] == "stop")[-1]
        check(ev["signal"] == signal.SIGSTOP and ev["sources"] == ["child"], f"wrong stop {ev}")
        st = dict(status_value(f"/proc/{pid}/status"))
        check(st["TracerPid"] == "0", f"the child is traced (TracerPid {st['TracerPid']})")
        check(st["State"].startswith("T"), f"the child is not stopped: {st['State']}")
        lst = ctl.request({"op": "children"})
        mine = [c for c in lst["children"] if c["pid"] == pid]
        check(mine and mine[0]["state"] == "stopped", f"children does not show it stopped: {lst}")
        os.kill(pid, signal.SIGCONT)
        ev = events_of(sub, pid, lambda e: e["type"] == "continue")[-1]
        check(ev["sources"] == ["child"], f"wrong continue {ev}")
        k = ctl.request({"op": "kill", "pid": pid})
        check(k["type"] == "killed" and k["pids"] == [pid] and k["signal"] == signal.SIGTERM, f"kill: {k}")
        ev = events_of(sub, pid, lambda e: e["type"] == "exit")[-1]
        check(ev["signal"] == signal.SIGTERM and "child" in ev["sources"], f"wrong exit {ev}")


def family_user():
    """A user of its own for a family of processes the test must see whole:
    a subscription by uid. Not descendants_of: an orphan's subtree leaves the
    tree when its parent exits, and its fork may be read after that
    (connector lag). Not by name: a process that exited before the broker
    read its exec is nameless (PROTOCOL.md), and so are the children it
    forked meanwhile, which inherit its name; the uid they inherit is the
    kernel's, told in order (the uid event, then the forks)."""
    return TestUser(f"pntest-fam{os.getpid()}")


def double_fork_adopted():
    """A child that double-forks a daemon: the daemon is adopted by the
    broker (subreaper), which reports the adoption and, later, its exit."""
    with family_user() as u, RunBroker() as b:
        sub = b.client()
        sub.subscribe(events=RUN_EVENTS + ["fork"], match={"uid": u.uid})
        ctl = b.client()
        cpid = run_ok(ctl, [PN_CHILD, "daemonize", 0], name="daemonizer", user=u.name)["pid"]
        seen = sub.events_until(lambda e: e["type"] == "adopt" and e["new_parent"] == b.proc.pid,
                                what="adoption by the broker")
        adopt = seen[-1]
        forks = {e["tgid"]: e for e in seen if e["type"] == "fork"}
        daemon = adopt["tgid"]
        check(daemon in forks, f"the adopted process {daemon} was not forked under the child: {adopt}")
        middle = forks[daemon]["ppid"]
        check(adopt["old_parent"] == middle and middle in forks and forks[middle]["ppid"] == cpid,
              f"old_parent is not the intermediate process: adopt {adopt}, forks {forks}")
        with open(f"/proc/{daemon}/stat") as f:
            ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        check(ppid == b.proc.pid, f"the kernel says the daemon's parent is {ppid}")
        lst = ctl.request({"op": "children"})
        adopted = [c for c in lst["children"] if c["pid"] == daemon]
        check(adopted and adopted[0]["adopted"], f"children does not list the adopted daemon: {lst}")
        # The supervised child itself exited 0 after its intermediate process.
        events_of(sub, cpid, lambda e: e["type"] == "exit")
        k = ctl.request({"op": "kill", "pid": daemon})
        check(k["type"] == "killed", f"kill of the adopted daemon: {k}")
        ev = events_of(sub, daemon, lambda e: e["type"] == "exit")[-1]
        check(ev["signal"] == signal.SIGTERM and "child" in ev["sources"], f"daemon's exit: {ev}")
        # Reaped by the broker: gone from /proc, and from the list.
        check(not os.path.exists(f"/proc/{daemon}/stat") or
              dict(status_value(f"/proc/{daemon}/status"))["Tgid"] != str(daemon) or
              dict(status_value(f"/proc/{daemon}/status"))["State"][0] != "Z",
              "the daemon was left a zombie")
        lst = ctl.request({"op": "children"})
        check(not [c for c in lst["children"] if c["pid"] == daemon], f"still listed: {lst}")
        st = ctl.request({"op": "status"})
        check(st["run"]["orphans_reaped"] >= 1, f"orphans not reaped by the broker: {st['run']}")


def unprivileged_refused():
    """run, children and kill by a user that is neither root nor in the group."""
    with TestUser("pntest-run-nobody") as u, RunBroker() as b:
        path = b.socket_path

        def attempt():
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            f = s.makefile("rwb")
            f.readline()
            out = []
            for req in ({"op": "run", "argv": ["/bin/true"]}, {"op": "children"},
                        {"op": "kill", "pid": 1}):
                f.write((json.dumps(req) + "\n").encode())
                f.flush()
                out.append(json.loads(f.readline()))
            return out

        replies = as_user(u.uid, u.gid, attempt)
        check(isinstance(replies, list), f"client failed: {replies}")
        for r in replies:
            check(r.get("type") == "error" and r.get("code") == "access-denied", f"not refused: {r}")
        check(b.proc.poll() is None, "the broker died")
        st = b.client().request({"op": "status"})
        check(st["run"]["started"] == 0, f"something was started: {st['run']}")


def as_user_identity():
    """--user: the child runs as that user, with its groups and no capabilities."""
    with TestUser("pntest-run-user") as u, RunBroker() as b:
        sub = b.client()
        sub.subscribe(events=["exit", "exec"], match={"descendants_of": b.proc.pid})
        ctl = b.client()
        script = "id -u; id -g; grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status; echo HOME=$HOME USER=$USER"
        r = run_ok(ctl, ["/bin/sh", "-c", script], name="who", user=u.name)
        check(r["uid"] == u.uid, f"reply says uid {r['uid']}, expected {u.uid}")
        ev = events_of(sub, r["pid"], lambda e: e["type"] == "exit")[-1]
        check(ev["uid"] == u.uid, f"exit event says uid {ev['uid']}, expected {u.uid}")
        check(ev["exit_code"] == 0, f"the script failed: {ev}; output {b.output_of('who')!r}")
        out = b.output_of("who").split("\n")
        check(out[0] == str(u.uid) and out[1] == str(u.gid), f"id says {out[:2]}")
        caps = dict(line.split(":\t") for line in out[2:7])
        for k, v in caps.items():
            check(int(v, 16) == 0, f"{k} is {v} in a child run as {u.name}")
        check(f"USER={u.name}" in out[7], f"environment: {out[7]}")
        # As root: no capabilities either (the bounding set is emptied, the
        # securebits are noroot), so root's children gain none on exec.
        r = run_ok(ctl, ["/bin/sh", "-c", "grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status"],
                   name="root-caps")
        events_of(sub, r["pid"], lambda e: e["type"] == "exit")
        for line in b.output_of("root-caps").strip().split("\n"):
            k, v = line.split(":\t")
            check(int(v, 16) == 0, f"{k} is {v} in a child run as root")
        # By numeric uid too.
        r = run_ok(ctl, ["/bin/sh", "-c", "id -u"], name="who2", user=u.uid)
        events_of(sub, r["pid"], lambda e: e["type"] == "exit")
        check(b.output_of("who2").strip() == str(u.uid), f"by uid: {b.output_of('who2')!r}")
        run_error(ctl, {"op": "run", "argv": ["/bin/true"], "user": "pntest-no-such-user"},
                  "not-found", "no user")


def output_to_file():
    """The child's stdout and stderr land in its log file, never on the
    broker's own stderr; stdin is /dev/null."""
    with RunBroker() as b:
        sub = b.client()
        sub.subscribe(events=["exit"], match={"descendants_of": b.proc.pid})
        ctl = b.client()
        r = run_ok(ctl, [PN_CHILD, "say", "marker-5f1c"], name="talker")
        check(r["output"] == os.path.join(b.logdir, "talker.log"), f"output: {r}")
        events_of(sub, r["pid"], lambda e: e["type"] == "exit")
        out = b.output_of("talker")
        check("marker-5f1c out" in out and "marker-5f1c err" in out, f"log file: {out!r}")
        r = run_ok(ctl, ["/bin/sh", "-c", "cat; ls -l /proc/self/fd/0; tty || true"], name="stdin")
        events_of(sub, r["pid"], lambda e: e["type"] == "exit")
        out = b.output_of("stdin")
        check("/dev/null" in out and "not a tty" in out, f"stdin is not /dev/null: {out!r}")
        b.stop()
        check("marker-5f1c" not in b.log(), "the child's output reached the broker's log")


def environment_sanitised():
    """The child sees a fixed environment plus what the request asked for,
    nothing of the broker's."""
    with RunBroker(env={"PNTEST_SECRET": "leak"}) as b:
        sub = b.client()
        sub.subscribe(events=["exit"], match={"descendants_of": b.proc.pid})
        ctl = b.client()
        r = run_ok(ctl, ["/usr/bin/env"], name="env", env=["FOO=bar", "PATH=/bin"])
        events_of(sub, r["pid"], lambda e: e["type"] == "exit")
        env = dict(line.split("=", 1) for line in b.output_of("env").splitlines())
        check("PNTEST_SECRET" not in env and "NOTIFY_SOCKET" not in env, f"broker env leaked: {env}")
        check(env.get("FOO") == "bar" and env.get("PATH") == "/bin", f"requested env missing: {env}")
        check(env.get("PROCNOTIFY_RUN_NAME") == "env" and env.get("USER") == "root", f"base env: {env}")
        # A bare command is looked up in the child's PATH, not the broker's.
        r = run_ok(ctl, ["printenv", "PATH"], name="lookup")
        events_of(sub, r["pid"], lambda e: e["type"] == "exit")
        check(b.output_of("lookup").strip() == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
              f"default PATH: {b.output_of('lookup')!r}")
        run_error(ctl, {"op": "run", "argv": ["printenv"], "env": ["PATH=/nonexistent"]}, "spawn-failed",
                  "cannot execute \"printenv\": No such file or directory")


def bad_requests():
    """Malformed run, kill requests get precise errors; the connection works on."""
    with RunBroker() as b:
        c = b.client()
        run_error(c, {"op": "run"}, "invalid-request", "needs \"argv\"")
        run_error(c, {"op": "run", "argv": []}, "invalid-request", "empty")
        run_error(c, {"op": "run", "argv": "ls"}, "invalid-request", "array of strings")
        run_error(c, {"op": "run", "argv": ["/bin/echo", 1]}, "invalid-request", "\"argv\"[1] must be a string")
        run_error(c, {"op": "run", "argv": [""]}, "invalid-request", "empty")
        run_error(c, {"op": "run", "argv": ["x"] * 257}, "invalid-request", "at most 256")
        run_error(c, {"op": "run", "argv": ["/bin/echo", "x" * 5000]}, "invalid-request", "longer than 4096")
        run_error(c, {"op": "run", "argv": ["/bin/echo"] + ["x" * 4000] * 10}, "invalid-request", "at most 32768")
        run_error(c, {"op": "run", "argv": ["/bin/echo", "a\u0000b"]}, "invalid-request", "NUL")
        run_error(c, {"op": "run", "argv": ["/bin/true"], "env": ["NOEQUALS"]}, "invalid-request", "NAME=value")
        run_error(c, {"op": "run", "argv": ["/bin/true"], "env": ["1X=y"]}, "invalid-request", "NAME=value")
        run_error(c, {"op": "run", "argv": ["/bin/true"], "name": "../etc"}, "invalid-request", "\"name\"")
        run_error(c, {"op": "run", "argv": ["/bin/true"], "user": ""}, "invalid-request", "empty")
        run_error(c, {"op": "run", "argv": ["/bin/true"], "argz": 1}, "invalid-request", "unknown member")
        run_error(c, {"op": "run", "argv": ["/nonexistent/cmd"]}, "spawn-failed",
                  "cannot execute \"/nonexistent/cmd\": No such file or directory")
        run_error(c, {"op": "kill"}, "invalid-request", "either")
        run_error(c, {"op": "kill", "pid": 1, "signal": "NOPE"}, "invalid-request", "signal")
        run_error(c, {"op": "kill", "pid": 1}, "not-found", "no supervised child")
        run_error(c, {"op": "children", "x": 1}, "invalid-request", "unknown member")
        check(c.request({"op": "ping"})["type"] == "pong", "connection broken after errors")
        check("Failed to run cmd" in b.log(), "the failed run was not logged")


def limits():
    """MaxChildren bounds the children; a freed slot can be used again."""
    with RunBroker(extra="[Limits]\nMaxChildren=1\n") as b:
        sub = b.client()
        sub.subscribe(events=["exit"], match={"descendants_of": b.proc.pid})
        c = b.client()
        pid = run_ok(c, [PN_CHILD, "pause"], name="one")["pid"]
        run_error(c, {"op": "run", "argv": [PN_CHILD, "pause"]}, "limit-exceeded", "MaxChildren")
        check(c.request({"op": "kill", "name": "one", "signal": "KILL"})["pids"] == [pid], "kill by name")
        events_of(sub, pid, lambda e: e["type"] == "exit")
        pid2 = run_ok(c, [PN_CHILD, "exit", 0], name="two")["pid"]
        events_of(sub, pid2, lambda e: e["type"] == "exit")


def follow():
    """"follow": the requester itself gets the child's events."""
    with RunBroker() as b:
        c = b.client()
        pid = run_ok(c, [PN_CHILD, "exit", 7], follow=True)["pid"]
        evs = events_of(c, pid, lambda e: e["type"] == "exit")
        types = [e["type"] for e in evs]
        check(types[0] == "fork" and "exec" in types and evs[-1]["exit_code"] == 7,
              f"followed events: {types}")


def sigterm_stops_children():
    """SIGTERM to the broker stops its children (SIGTERM through their
    pidfds) before it exits."""
    with RunBroker() as b:
        c = b.client()
        sub = b.client()
        sub.subscribe(events=["stop"], match={"descendants_of": b.proc.pid})
        pid = run_ok(c, [PN_CHILD, "pause"], name="svc")["pid"]
        pidfd = os.pidfd_open(pid)
        # Even a stopped child: it is continued after the SIGTERM.
        os.kill(pid, signal.SIGSTOP)
        events_of(sub, pid, lambda e: e["type"] == "stop")
        check(b.stop() == 0, "broker did not exit cleanly")
        r, _, _ = select.select([pidfd], [], [], 10)
        check(r, f"child {pid} still runs after the broker stopped")
        os.close(pidfd)
        check("Sent SIGTERM to 1 supervised processes" in b.log() and
              "Every supervised child has exited" in b.log() and "outlived StopTimeout" not in b.log(),
              f"shutdown not logged, or the child needed SIGKILL:\n{b.log()}")


def prctls_unset_never_called():
    """Without [Run] *Prctl=, neither the broker nor its children call any
    prctl but the ones they name (strace of the broker and its children)."""
    import pntest
    strace = shutil.which("strace")
    check(strace, "strace is not installed (dev.sh installs it)")
    tmp = tempfile.mkdtemp(prefix="pnrun-strace-")
    trace = os.path.join(tmp, "trace")
    wrapper = os.path.join(tmp, "procnotifyd")
    with open(wrapper, "w") as f:
        f.write(f"#!/bin/sh\nexec {strace} -f --seccomp-bpf -qq -X raw -e trace=prctl -o {trace} {PROCNOTIFYD} \"$@\"\n")
    os.chmod(wrapper, 0o755)
    saved, pntest.PROCNOTIFYD = pntest.PROCNOTIFYD, wrapper
    try:
        # LeakSanitizer cannot run under ptrace (a sanitizer build).
        with TestUser("pntest-run-trace") as u, RunBroker(env={"ASAN_OPTIONS": "detect_leaks=0"}) as b:
            with open(f"/proc/{b.proc.pid}/task/{b.proc.pid}/children") as f:
                broker_pid = int(f.read().split()[0])
            sub = b.client()
            sub.subscribe(events=["exit"], match={"descendants_of": b.proc.pid})
            c = b.client()
            for kw in ({}, {"user": u.name}):
                r = run_ok(c, ["/bin/true"], name="traced", **kw)
                events_of(sub, r["pid"], lambda e: e["type"] == "exit")
            os.kill(broker_pid, signal.SIGTERM)
            check(b.proc.wait(20) == 0, "traced broker did not exit cleanly")
        with open(trace) as f:
            text = f.read()
        used = set(int(n, 0) for n in re.findall(r"prctl\((0x[0-9a-f]+|\d+)", text))
        # 36 PR_SET_CHILD_SUBREAPER, 47 PR_CAP_AMBIENT, 24 PR_CAPBSET_DROP,
        # 8 PR_SET_KEEPCAPS; 23 PR_CAPBSET_READ (libcap-ng, reading); the
        # capability drop at start: 27/28 PR_GET/SET_SECUREBITS (the noroot
        # lock), 39 PR_GET_NO_NEW_PRIVS (libcap-ng, reading).
        check(used, f"strace saw no prctl at all:\n{text[:2000]}")
        check(used <= {8, 23, 24, 27, 28, 36, 39, 47}, f"unexpected prctl options {sorted(used)}:\n{text[:4000]}")
        check(36 in used and 24 in used, f"subreaper or bounding-set drop not seen: {sorted(used)}")
    finally:
        pntest.PROCNOTIFYD = saved
        shutil.rmtree(tmp, ignore_errors=True)


def prctl_bogus_number():
    """A configured prctl number the kernel rejects: the broker, which calls
    both on itself (the kernel reads the parent's setting), logs each
    clearly and goes on; children run as usual; a signal sent with kill()
    is refused and counted, per kind. (The patched kernel's own path is
    tested in tests/kernel/.)"""
    bogus = 2147480000
    extra = (f"PredumpSignalPrctl={bogus}\nPredumpSignal=USR1\n"
             f"AdoptSignalPrctl={bogus + 1}\nAdoptSignal=SIGUSR2\n")
    with RunBroker(extra=extra) as b:
        for n, sig in ((bogus, signal.SIGUSR1), (bogus + 1, signal.SIGUSR2)):
            check(f"Failed to call prctl({n}, {sig})" in b.log(),
                  f"the rejected prctl {n} was not logged:\n{b.log()}")
        check("Invalid argument" in b.log(), f"the error was not logged:\n{b.log()}")
        sub = b.client()
        sub.subscribe(events=["exit"], match={"descendants_of": b.proc.pid})
        c = b.client()
        r = run_ok(c, [PN_CHILD, "exit", "0"], name="patched")
        events_of(sub, r["pid"], lambda e: e["type"] == "exit", what="exit of the child")
        st = c.request({"op": "status"})
        check(st["run"]["failed"] == 0 and st["run"]["started"] == 1, f"statistics: {st['run']}")
        # The broker handles the configured signals: one sent with kill()
        # is not the kernel's notification and is refused.
        os.kill(b.proc.pid, signal.SIGUSR1)
        os.kill(b.proc.pid, signal.SIGUSR2)
        deadline = time.monotonic() + 10
        while True:
            run = c.request({"op": "status"})["run"]
            if run["refused_signals"] >= 2:
                break
            check(time.monotonic() < deadline, f"the broker did not handle the configured signals: {run}")
            check(b.proc.poll() is None, "the broker died of a configured signal")
            select.select([], [], [], 0.01)
        check(run["predump_signals_refused"] == 1 and run["adopt_signals_refused"] == 1 and
              run["predump_signals_accepted"] == 0 and run["adopt_signals_accepted"] == 0,
              f"per-kind statistics: {run}")


def ctl_run_children_kill():
    """procnotifyctl run / children / kill."""
    with RunBroker() as b:
        sub = b.client()
        sub.subscribe(events=["exit"], match={"descendants_of": b.proc.pid})
        ctl = [PROCNOTIFYCTL, "--socket", b.socket_path]
        p = subprocess.run(ctl + ["run", "--name", "viactl", "--", PN_CHILD, "pause"], capture_output=True,
                           text=True, timeout=20)
        check(p.returncode == 0, f"procnotifyctl run: {p.returncode} {p.stderr}")
        r = json.loads(p.stdout)
        check(r["type"] == "running" and r["name"] == "viactl", f"run printed {p.stdout!r}")
        p = subprocess.run(ctl + ["children"], capture_output=True, text=True, timeout=20)
        check(p.returncode == 0 and "viactl" in p.stdout and str(r["pid"]) in p.stdout,
              f"procnotifyctl children: {p.returncode} {p.stdout!r} {p.stderr}")
        p = subprocess.run(ctl + ["kill", "--signal", "KILL", "viactl"], capture_output=True, text=True,
                           timeout=20)
        check(p.returncode == 0, f"procnotifyctl kill: {p.returncode} {p.stderr}")
        ev = events_of(sub, r["pid"], lambda e: e["type"] == "exit")[-1]
        check(ev["signal"] == signal.SIGKILL, f"exit {ev}")
        p = subprocess.run(ctl + ["run", "--", "/nonexistent"], capture_output=True, text=True, timeout=20)
        check(p.returncode == 5 and "cannot execute" in p.stderr, f"failed run: {p.returncode} {p.stderr}")
        p = subprocess.run(ctl + ["run"], capture_output=True, text=True, timeout=20)
        check(p.returncode == 2, f"run without a command: {p.returncode} {p.stderr}")
        p = subprocess.run(ctl + ["run", "--follow", "--", PN_CHILD, "exit", "5"], capture_output=True,
                           text=True, timeout=20)
        lines = [json.loads(line) for line in p.stdout.splitlines()]
        check(p.returncode == 5 and lines[0]["type"] == "running" and lines[-1]["type"] == "exit" and
              lines[-1]["tgid"] == lines[0]["pid"], f"run --follow: {p.returncode} {p.stdout!r} {p.stderr}")


def output_to_journal():
    """Output=auto with a journal: the child's output goes to the journal's
    stdout stream (sd_journal_stream_fd), named after the child. The broker
    runs in a mount namespace of its own where /run/systemd/journal is this
    test's directory, with a stand-in journal listening there (there is no
    journald on the test machine, and the real /run is left alone)."""
    import pntest
    unshare = shutil.which("unshare")
    check(unshare, "unshare (util-linux) is not installed")
    tmp = tempfile.mkdtemp(prefix="pnrun-journal-")
    jdir = os.path.join(tmp, "journal")
    os.mkdir(jdir)
    journal = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    journal.bind(os.path.join(jdir, "stdout"))
    journal.listen(8)
    wrapper = os.path.join(tmp, "procnotifyd")
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\n"
                f"exec {unshare} --mount --propagation private /bin/sh -c '"
                f"mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/journal && "
                f"mount --bind {jdir} /run/systemd/journal && exec \"$0\" \"$@\"' {PROCNOTIFYD} \"$@\"\n")
    os.chmod(wrapper, 0o755)
    saved, pntest.PROCNOTIFYD = pntest.PROCNOTIFYD, wrapper
    try:
        with Broker(config="[Run]\nEnabled=yes\nOutput=auto\n") as b:
            sub = b.client()
            sub.subscribe(events=["exit"], match={"descendants_of": b.proc.pid})
            c = b.client()
            r = run_ok(c, [PN_CHILD, "say", "to-the-journal"], name="jtalker")
            check(r["output"] == "journal", f"output is not the journal: {r}")
            ready, _, _ = select.select([journal], [], [], 10)
            check(ready, "the child did not connect to the journal")
            conn, _ = journal.accept()
            data = b""
            deadline = time.monotonic() + 10
            while b"to-the-journal err" not in data:
                check(time.monotonic() < deadline, f"journal stream so far: {data!r}")
                rr, _, _ = select.select([conn], [], [], 1)
                if rr:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            conn.close()
            header = data.split(b"\n")
            # sd_journal_stream_fd's header: identifier, unit, priority, level prefix, ...
            check(header[0] == b"jtalker", f"journal identifier: {header[:7]}")
            check(b"to-the-journal out" in data and b"to-the-journal err" in data, f"stream: {data!r}")
            events_of(sub, r["pid"], lambda e: e["type"] == "exit")
            b.stop()
            check("to-the-journal" not in b.log(), "the child's output reached the broker's log")
    finally:
        pntest.PROCNOTIFYD = saved
        journal.close()
        shutil.rmtree(tmp, ignore_errors=True)


def disabled_refused():
    """[Run] Enabled=no: run is refused, children is empty."""
    with RunBroker(extra="Enabled=no\n") as b:
        c = b.client()
        run_error(c, {"op": "run", "argv": ["/bin/true"]}, "access-denied", "Enabled=no")
        check(c.request({"op": "status"})["run"]["enabled"] is False, "status says enabled")


def group_member_runs_as_itself():
    """A member of the broker's group may run commands, as itself only, up
    to MaxChildrenPerUser, and signal its own children but not root's."""
    group = "pntest-run-grp"
    subprocess.run(["groupdel", group], stderr=subprocess.DEVNULL)
    subprocess.run(["groupadd", group], check=True)
    try:
        with TestUser("pntest-run-member") as u:
            subprocess.run(["usermod", "-a", "-G", group, u.name], check=True)
            gid = grp.getgrnam(group).gr_gid
            with RunBroker(extra=f"[Limits]\nMaxChildrenPerUser=1\n[Policy]\nGroup={group}\n") as b:
                root = b.client()
                root_pid = run_ok(root, ["/bin/sleep", "600"], name="roots")["pid"]
                path = b.socket_path

                def attempt():
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    s.connect(path)
                    f = s.makefile("rwb")
                    out = [json.loads(f.readline())]
                    for req in ({"op": "run", "argv": ["/bin/true"], "user": "root"},
                                {"op": "run", "argv": ["/bin/sleep", "600"], "name": "mine"},
                                {"op": "run", "argv": ["/bin/sleep", "600"]},
                                {"op": "kill", "pid": root_pid},
                                {"op": "kill", "name": "mine", "signal": "KILL"}):
                        f.write((json.dumps(req) + "\n").encode())
                        f.flush()
                        out.append(json.loads(f.readline()))
                    return out

                r = as_user(u.uid, u.gid, attempt, groups=[gid])
                check(isinstance(r, list), f"client failed: {r}")
                hello, as_root, mine, second, kill_root, kill_mine = r
                check(hello["sees_all"], f"the member is not privileged: {hello}")
                check(mine.get("type") == "running" and mine["uid"] == u.uid, f"run as itself: {mine}")
                check(second.get("code") == "limit-exceeded" and "MaxChildrenPerUser" in second["message"],
                      f"second run: {second}")
                check(as_root.get("code") == "access-denied" and "another user" in as_root["message"],
                      f"run as root: {as_root}")
                check(kill_root.get("code") == "access-denied", f"kill of root's child: {kill_root}")
                check(kill_mine.get("type") == "killed" and kill_mine["pids"] == [mine["pid"]],
                      f"kill of its own child: {kill_mine}")
                check(os.path.exists(f"/proc/{root_pid}"), "root's child was killed")
                root.request({"op": "kill", "pid": root_pid})
    finally:
        subprocess.run(["groupdel", group], stderr=subprocess.DEVNULL)


def _strace_wrapper(tmp, options):
    """A script in tmp that runs the broker under strace with options (to
    inject faults into its real system calls); its path."""
    strace = shutil.which("strace")
    check(strace, "strace is not installed (dev.sh installs it)")
    wrapper = os.path.join(tmp, "procnotifyd")
    with open(wrapper, "w") as f:
        f.write(f"#!/bin/sh\nexec {strace} {options} {PROCNOTIFYD} \"$@\"\n")
    os.chmod(wrapper, 0o755)
    return wrapper


def no_clone3_fallback():
    """Where clone3 is refused (ENOSYS: an old kernel or a seccomp filter;
    injected here by strace into the real system call), the broker falls
    back to fork + pidfd_open and supervises the child all the same."""
    import pntest
    tmp = tempfile.mkdtemp(prefix="pnrun-noclone3-")
    trace = os.path.join(tmp, "trace")
    # Not -f: a traced child's wait status would go to strace first, and
    # reach the broker only after the connector's exit.
    saved, pntest.PROCNOTIFYD = pntest.PROCNOTIFYD, _strace_wrapper(
        tmp, f"-qq -e trace=clone3 -e inject=clone3:error=ENOSYS -o {trace}")
    try:
        with RunBroker(env={"ASAN_OPTIONS": "detect_leaks=0"}) as b:
            with open(f"/proc/{b.proc.pid}/task/{b.proc.pid}/children") as f:
                broker_pid = int(f.read().split()[0])
            sub = b.client()
            sub.subscribe(events=RUN_EVENTS, match={"descendants_of": b.proc.pid})
            c = b.client()
            pid = run_ok(c, [PN_CHILD, "pause"], name="forked")["pid"]
            check("(fork + pidfd_open: no clone3)" in b.log(), f"no fallback in the log:\n{b.log()}")
            k = c.request({"op": "kill", "pid": pid})
            check(k.get("type") == "killed", f"kill through the fallback's pidfd: {k}")
            ev = events_of(sub, pid, lambda e: e["type"] == "exit")[-1]
            check(ev["signal"] == signal.SIGTERM and "child" in ev["sources"], f"exit: {ev}")
            check(ev["ppid"] == broker_pid, f"not the broker's child: {ev}")
            os.kill(broker_pid, signal.SIGTERM)
            check(b.proc.wait(20) == 0, "traced broker did not exit cleanly")
        with open(trace) as f:
            text = f.read()
        check("clone3(" in text and "ENOSYS" in text and "(INJECTED)" in text,
              f"clone3 was not tried and refused:\n{text[:2000]}")
    finally:
        pntest.PROCNOTIFYD = saved
        shutil.rmtree(tmp, ignore_errors=True)


def _children_of(pid):
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(x) for x in f.read().split()]


def exec_pending_keeps_serving():
    """While a run's child has not reached exec yet (its execve held back
    for 3 s, injected by strace into the real system call), the broker
    keeps serving: another connection's ping is answered at once, and the
    requester's own later request is answered after its run (in order)."""
    import pntest
    tmp = tempfile.mkdtemp(prefix="pnrun-slowexec-")
    saved, pntest.PROCNOTIFYD = pntest.PROCNOTIFYD, _strace_wrapper(
        tmp, "-f -qq --seccomp-bpf -e trace=execve -e inject=execve:delay_enter=3000000 -o /dev/null")
    try:
        with RunBroker(env={"ASAN_OPTIONS": "detect_leaks=0"}) as b:
            broker_pid = _children_of(b.proc.pid)[0]
            c, other = b.client(), b.client()
            c.send({"op": "run", "argv": [PN_CHILD, "exit", "0"], "name": "slow"})
            c.send({"op": "ping"})
            wait_until(lambda: _children_of(broker_pid), "the run's child to be created")
            t0 = time.monotonic()
            pong = other.request({"op": "ping"}, timeout=20)
            took = time.monotonic() - t0
            check(pong and pong.get("type") == "pong", f"ping: {pong}")
            check(took < 1.0, f"the broker answered a ping after {took:.2f} s while a run's exec was pending")
            r = c.read_reply(20)
            check(r and r.get("type") == "running" and r.get("name") == "slow", f"run: {r}")
            r = c.read_reply(20)
            check(r and r.get("type") == "pong", f"the requester's ping after its run: {r}")
            os.kill(broker_pid, signal.SIGTERM)
            check(b.proc.wait(30) == 0, "traced broker did not exit cleanly")
    finally:
        pntest.PROCNOTIFYD = saved
        shutil.rmtree(tmp, ignore_errors=True)


def _ignores(pid, sig):
    """Whether process pid ignores sig (its SigIgn mask in /proc)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("SigIgn:"):
                return bool(int(line.split()[1], 16) & (1 << (sig - 1)))
    return False


def stop_timeout_kills():
    """A child that ignores SIGTERM is killed after StopTimeout=."""
    with RunBroker(extra="StopTimeout=1\n") as b:
        c = b.client()
        pid = run_ok(c, [PN_CHILD, "ignore-term"], name="stubborn")["pid"]
        pidfd = os.pidfd_open(pid)
        # "running" means it reached exec; it ignores SIGTERM only once its
        # main() said so, which its SigIgn mask shows.
        wait_until(lambda: _ignores(pid, signal.SIGTERM), f"child {pid} ignoring SIGTERM")
        t0 = time.monotonic()
        check(b.stop() == 0, "broker did not exit cleanly")
        r, _, _ = select.select([pidfd], [], [], 10)
        check(r, f"child {pid} still runs after the broker stopped")
        os.close(pidfd)
        check(time.monotonic() - t0 >= 0.9, "the child was killed before StopTimeout=")
        check("outlived StopTimeout=1s; killing them" in b.log(), f"not logged:\n{b.log()}")


def classic_double_fork():
    """The classic daemon start (fork, parent exits at once; setsid, fork,
    exit): every orphan goes to the broker, which reports the adoption of
    the daemon and, later, its exit; each process's exit is reported once."""
    with family_user() as u, RunBroker() as b:
        sub = b.client()
        sub.subscribe(events=RUN_EVENTS + ["fork"], match={"uid": u.uid})
        ctl = b.client()
        cpid = run_ok(ctl, [PN_CHILD, "double-fork"], name="classic", user=u.name)["pid"]
        forks = {}

        def family():
            middle = [t for t, pp in forks.items() if pp == cpid]
            daemon = [t for t, pp in forks.items() if middle and pp == middle[0]]
            return (middle[0] if middle else None), (daemon[0] if daemon else None)

        def the_daemon_adopted(e):
            if e["type"] == "fork":
                forks[e["tgid"]] = e["ppid"]
            daemon = family()[1]
            return e["type"] == "adopt" and e["tgid"] == daemon and e["new_parent"] == b.proc.pid

        seen = sub.events_until(the_daemon_adopted, timeout=30, what="adoption of the daemon")
        adopt = seen[-1]
        middle, daemon = family()
        check(adopt["old_parent"] == middle, f"old_parent of the daemon: {adopt}, middle {middle}")
        k = ctl.request({"op": "kill", "pid": daemon})
        check(k.get("type") == "killed" and k["pids"] == [daemon], f"kill of the daemon: {k}")
        # The three exits, in whatever order the scheduler made them.
        want = {cpid, middle, daemon}
        ended = {x["tgid"] for x in seen if x["type"] == "exit"}

        def all_ended(e):
            if e["type"] == "exit":
                ended.add(e["tgid"])
            return want <= ended

        if not all_ended({"type": None}):
            try:
                seen += sub.events_until(all_ended, timeout=30, what=f"the exits of {sorted(want)}")
            except AssertionError as e:
                mine = [x for x in seen if x.get("tgid") in want]
                fail(f"{e}\nmissing exits of {sorted(want - ended)}; their events: {mine}\n"
                     f"children: {ctl.request({'op': 'children'})}\nrun: {ctl.request({'op': 'status'})['run']}")
        ev = [e for e in seen if e["type"] == "exit" and e["tgid"] == daemon][0]
        check(ev["signal"] == signal.SIGTERM and "child" in ev["sources"], f"daemon's exit: {ev}")
        seen += no_more_exits(sub, None, b, user=u.name)
        for pid in want:
            exits = [e for e in seen if e["type"] == "exit" and e["tgid"] == pid]
            check(len(exits) == 1, f"exit of {pid} reported {len(exits)} times: {exits}")

if __name__ == "__main__":
    run({
        "exit_once": exit_once,
        "stop_continue": stop_continue,
        "double_fork_adopted": double_fork_adopted,
        "classic_double_fork": classic_double_fork,
        "unprivileged_refused": unprivileged_refused,
        "as_user_identity": as_user_identity,
        "output_to_file": output_to_file,
        "output_to_journal": output_to_journal,
        "disabled_refused": disabled_refused,
        "group_member_runs_as_itself": group_member_runs_as_itself,
        "no_clone3_fallback": no_clone3_fallback,
        "exec_pending_keeps_serving": exec_pending_keeps_serving,
        "stop_timeout_kills": stop_timeout_kills,
        "environment_sanitised": environment_sanitised,
        "bad_requests": bad_requests,
        "limits": limits,
        "follow": follow,
        "sigterm_stops_children": sigterm_stops_children,
        "prctls_unset_never_called": prctls_unset_never_called,
        "prctl_bogus_number": prctl_bogus_number,
        "ctl_run_children_kill": ctl_run_children_kill,
    })
