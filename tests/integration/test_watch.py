#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""watch / unwatch: pidfd exit watches and ptrace stop watches, against the
real daemon, the real kernel and real processes (pn-child, pn-observer: a
real parent that reports what its own waitpid sees of its child). Run one
test: `test_watch.py NAME`."""
import os
import select
import signal
import subprocess
import time

import pntest
from pntest import Broker, Client, check, fail, of_pid, run, wait_until

# The replies of the ops under test, so that Client.request() returns them.
pntest.REPLY_TYPES.update({"watching", "unwatched"})

PN_CHILD = os.environ.get("PN_CHILD", "pn-child")
PN_OBSERVER = os.environ.get("PN_OBSERVER", "pn-observer")
CTL = os.environ.get("PROCNOTIFYCTL", "procnotifyctl")
NOBODY = 65534


def _die_with_parent():
    pntest._die_with_parent()


class Observer:
    """pn-observer: forks the target; both report on one pipe."""

    def __init__(self, *args, uid=None):
        def pre():
            _die_with_parent()
            if uid is not None:
                os.setresgid(uid, uid, uid)
                os.setresuid(uid, uid, uid)
        self.proc = subprocess.Popen([PN_OBSERVER, *args], stdout=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, preexec_fn=pre)
        self.buf = b""
        self.lines = []  # everything read, in order
        self.taken = set()  # indices of lines an expect() returned
        # "target" (the observer) and "ready" (the target) in either order.
        first = {self.expect(("target", "ready")).split()[0] for _ in range(2)}
        check(first == {"target", "ready"}, f"pn-observer started with {self.lines}")
        self.pid = int(self.lines[0].split()[1])

    def read_line(self, timeout):
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            r, _, _ = select.select([fd], [], [], max(left, 0))
            if not r:
                return None
            data = os.read(fd, 4096)
            if not data:
                return None
            self.buf += data
        line, _, self.buf = self.buf.partition(b"\n")
        self.lines.append(line.decode())
        return self.lines[-1]

    def expect(self, prefix, timeout=10):
        """The first line not expected yet that starts with prefix. Observer
        and target write to one pipe, so a line may come before one that
        was expected earlier (the target's "ready" after the observer's
        "traced"): a line passed over stays there for a later expect."""
        deadline = time.monotonic() + timeout
        while True:
            for i, line in enumerate(self.lines):
                if i not in self.taken and line.startswith(prefix):
                    self.taken.add(i)
                    return line
            line = self.read_line(max(deadline - time.monotonic(), 0))
            if line is None:
                left = [l for i, l in enumerate(self.lines) if i not in self.taken]
                fail(f"pn-observer did not say {prefix!r} within {timeout}s; it said {left}")

    def kill(self):
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.kill()


def as_nobody(fn):
    """Run fn(say) in a child process as nobody; say(text) sends a line back.
    Returns the child's pid and a file to read those lines from."""
    rd, wr = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(rd)
            os.setresgid(NOBODY, NOBODY, NOBODY)
            os.setresuid(NOBODY, NOBODY, NOBODY)
            fn(lambda text: os.write(wr, (text + "\n").encode()))
        except BaseException as e:  # say what went wrong instead of dying silently
            os.write(wr, f"error {e!r}\n".encode())
        finally:
            os._exit(0)
    os.close(wr)
    return pid, os.fdopen(rd)


def proc_status(pid, tid=None, key="TracerPid"):
    path = f"/proc/{pid}/task/{tid}/status" if tid else f"/proc/{pid}/status"
    with open(path) as f:
        for line in f:
            if line.startswith(key + ":"):
                return line.split(":", 1)[1].strip()
    fail(f"no {key} in {path}")


def tracer_pids(pid):
    """TracerPid of every thread of pid (that is still there once listed)."""
    tracers = {}
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            tracers[int(t)] = int(proc_status(pid, t))
        except (FileNotFoundError, ProcessLookupError):
            pass  # ended meanwhile (an exec ends every other thread)
    return tracers


def behaves_untraced(o, stop=signal.SIGSTOP):
    """The target's real parent sees it stop and continue, and its SIGUSR1
    handler runs."""
    os.kill(o.pid, stop)
    o.expect(f"stopped {int(stop)}")
    os.kill(o.pid, signal.SIGCONT)
    o.expect("continued")
    os.kill(o.pid, signal.SIGUSR1)
    o.expect(f"usr1 {o.pid}")


def watch(c, pid, stop=False, ok=True):
    req = {"op": "watch", "pid": pid}
    if stop:
        req["stop"] = True
    r = c.request(req)
    if ok:
        check(r and r.get("type") == "watching" and r.get("pid") == pid, f"watch {req}: {r}")
    return r


def held_child(code):
    """pn-child that exits with code once its stdin is closed."""
    return subprocess.Popen([PN_CHILD, "wait-stdin", str(code)], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, preexec_fn=_die_with_parent)


def exits_of(events, pid):
    return [e for e in events if e.get("type") == "exit" and e.get("tgid") == pid and not e.get("thread")]


def no_more_exits(c, pid, window=0.5):
    """A duplicate exit would follow the first within the merge hold (25 ms):
    read for window seconds and fail on any."""
    deadline = time.monotonic() + window
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        r, _, _ = select.select([c.sock], [], [], left)
        if r or b"\n" in c.buf or c.pending:
            e = c.next_event(5)
            check(not exits_of([e], pid), f"a second exit of {pid}: {e}")


# --- pidfd exit watches ---

def test_exit_once_both_sources():
    """A watched process exits 7: one exit, the right status, both sources;
    another client subscribed to exits sees the same single event, and the
    watch (and its subscription) ends with the exit."""
    with Broker() as b:
        w, other = b.client(), b.client()
        other.subscribe(events=["exit"], match={"ppid": os.getpid()})
        p = held_child(7)
        r = watch(w, p.pid)
        check(r["stop"] is False and r["comm"] == "pn-child" and r["uid"] == 0, f"reply: {r}")
        check(isinstance(r["id"], int) and r["id"] >= 1, f"subscription id: {r}")
        st = w.request({"op": "status"})
        check(st["socket"]["subscriptions"] == 2 and st["watches"]["active"] == 1, f"status: {st}")
        p.stdin.close()
        for c in (w, other):
            seen = c.events_until(of_pid(p.pid, "exit"), what=f"exit of {p.pid}")
            e = seen[-1]
            check(e["exit_code"] == 7 and e["signal"] == 0 and e["status"] == 7 << 8, f"status: {e}")
            check(sorted(e["sources"]) == ["connector", "pidfd"], f"sources: {e['sources']}")
        p.wait()
        for c in (w, other):
            no_more_exits(c, p.pid)
        st = w.request({"op": "status"})
        check(st["process_table"]["merged_exits"] == 1, f"merged exits: {st['process_table']}")
        check(st["watches"]["active"] == 0 and st["socket"]["subscriptions"] == 1,
              f"the watch and its subscription did not end with the exit: {st}")
        r = w.request({"op": "unwatch", "pid": p.pid})
        check(r["type"] == "error" and r["code"] == "not-found", f"unwatch after exit: {r}")


def test_killed_and_threads_exit_once():
    """Killed by a signal, and a multi-threaded process: still one exit each."""
    with Broker() as b:
        w = b.client()
        with Observer("--threads", "3") as o:
            watch(w, o.pid)
            os.kill(o.pid, signal.SIGKILL)
            e = w.events_until(of_pid(o.pid, "exit"), what="exit of the killed target")[-1]
            check(e["signal"] == 9 and e["exit_code"] == 128 + 9, f"killed: {e}")
            check(sorted(e["sources"]) == ["connector", "pidfd"], f"sources: {e['sources']}")
            o.expect("signaled 9")
            no_more_exits(w, o.pid)


def test_gone_not_found():
    """A pid that is gone, one that never existed, a thread id, a zombie:
    not-found; bad pids: invalid-request."""
    with Broker() as b:
        c = b.client()
        p = subprocess.Popen([PN_CHILD, "exit", "0"])
        p.wait()
        for pid in (p.pid, 4194304 + 7):
            r = watch(c, pid, ok=False)
            check(r["type"] == "error" and r["code"] == "not-found" and str(pid) in r["message"],
                  f"watch of gone {pid}: {r}")
        with Observer("--threads", "1") as o:
            tid = max(int(t) for t in os.listdir(f"/proc/{o.pid}/task"))
            r = watch(c, tid, ok=False)
            check(r["code"] == "not-found" and "thread" in r["message"], f"watch of a thread id: {r}")
        # A zombie: exited, not reaped by its parent yet.
        z = subprocess.Popen([PN_CHILD, "exit", "3"])
        wait_until(lambda: proc_status(z.pid, key="State").startswith("Z"), "the child becoming a zombie")
        r = watch(c, z.pid, ok=False)
        check(r["code"] == "not-found" and "exited" in r["message"], f"watch of a zombie: {r}")
        z.wait()
        for bad in ({"pid": 0}, {"pid": -3}, {"pid": "12"}, {}, {"pid": 1, "stop": "yes"},
                    {"pid": 1, "extra": 1}):
            r = c.request({"op": "watch", **bad})
            check(r["type"] == "error" and r["code"] == "invalid-request", f"watch {bad}: {r}")
        r = c.request({"op": "unwatch", "pid": os.getpid()})
        check(r["code"] == "not-found", f"unwatch of a pid not watched: {r}")
        r = c.request({"op": "watch", "pid": 1, "stop": True})
        check(r["code"] == "access-denied" and "init" in r["message"], f"stop watch of pid 1: {r}")
        r = c.request({"op": "watch", "pid": b.proc.pid, "stop": True})
        check(r["code"] == "access-denied" and "broker" in r["message"], f"stop watch of the broker: {r}")


def test_limits_and_policy():
    """MaxWatches per connection; another user's process is access-denied;
    the same pid twice on one connection is busy."""
    with Broker(config="[Limits]\nMaxWatches=2\nMaxTracedThreads=3\n") as b:
        c = b.client()
        kids = [held_child(0) for _ in range(3)]
        watch(c, kids[0].pid)
        r = watch(c, kids[0].pid, ok=False)
        check(r["code"] == "busy", f"second watch of the same pid: {r}")
        watch(c, kids[1].pid)
        r = watch(c, kids[2].pid, ok=False)
        check(r["code"] == "limit-exceeded" and "MaxWatches" in r["message"], f"third watch: {r}")
        # More threads than the broker may trace: refused, and nothing stays attached.
        with Observer("--threads", "4") as o:
            r = watch(b.client(), o.pid, stop=True, ok=False)
            check(r["code"] == "limit-exceeded" and "MaxTracedThreads" in r["message"], f"5 threads: {r}")
            wait_until(lambda: set(tracer_pids(o.pid).values()) == {0}, "the partly seized threads let go")
            behaves_untraced(o)
        # An unprivileged client may not watch root's processes.
        def deny(say):
            say(Client(b.socket_path).request({"op": "watch", "pid": kids[2].pid}).get("code", ""))
        pid, out = as_nobody(deny)
        code = out.readline().strip()
        os.waitpid(pid, 0)
        check(code == "access-denied", f"nobody watching root's process got {code!r}")
        for k in kids:
            k.stdin.close()
            k.wait()

        # Its own process it may stop-watch, and it gets the stop event.
        with Observer(uid=NOBODY) as o:
            def own(say):
                u = Client(b.socket_path)
                say(u.request({"op": "watch", "pid": o.pid, "stop": True}).get("type", ""))
                e = u.events_until(lambda e: e.get("type") == "stop", timeout=20)[-1]
                say(f"{e['tgid']} {e['signal']}")
            pid, out = as_nobody(own)
            check(out.readline().strip() == "watching", "nobody's stop watch refused")
            os.kill(o.pid, signal.SIGSTOP)
            o.expect("stopped 19")
            got = out.readline().strip()
            os.waitpid(pid, 0)
            check(got == f"{o.pid} 19", f"nobody's stop watch got {got!r}")


# --- ptrace stop watches ---

def expect_events(c, pid, types, timeout=10):
    """The next events of pid of the given types, in order (others skipped)."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < len(types):
        e = c.next_event(max(deadline - time.monotonic(), 0.01))
        if e.get("tgid") == pid and e.get("type") in ("stop", "continue"):
            got.append(e)
    check([e["type"] for e in got] == list(types), f"expected {types}, got {got}")
    return got


def test_stop_continue_parent_sees():
    """SIGSTOP, SIGTSTP and SIGCONT of a ptrace-watched process: stop and
    continue events, while its real parent's waitpid(WUNTRACED|WCONTINUED)
    still sees each stop and continue, and its SIGUSR1 handler still runs."""
    with Broker() as b, Observer() as o:
        c = b.client()
        r = watch(c, o.pid, stop=True)
        check(r["stop"] is True and r["threads"] == 1 and r["stopped"] is False, f"reply: {r}")
        check(int(proc_status(o.pid)) == b.proc.pid, "the broker is not the tracer")
        for sig in (signal.SIGSTOP, signal.SIGTSTP):
            os.kill(o.pid, sig)
            e = expect_events(c, o.pid, ["stop"])[0]
            check(e["signal"] == sig and e["sources"] == ["ptrace"] and e["comm"] == "pn-observer",
                  f"stop event: {e}")
            o.expect(f"stopped {int(sig)}")
            check(proc_status(o.pid, key="State").startswith(("T", "t")), "not stopped")
            os.kill(o.pid, signal.SIGCONT)
            e = expect_events(c, o.pid, ["continue"])[0]
            check(e["sources"] == ["ptrace"], f"continue event: {e}")
            o.expect("continued")
        os.kill(o.pid, signal.SIGUSR1)
        o.expect(f"usr1 {o.pid}")
        st = c.request({"op": "status"})["watches"]
        check(st["stops"] == 2 and st["continues"] == 2 and st["traced_threads"] == 1, f"stats: {st}")
        # The process still exits normally, once, with its parent told.
        os.kill(o.pid, signal.SIGTERM)
        e = c.events_until(of_pid(o.pid, "exit"), what="exit of the target")[-1]
        check(e["signal"] == signal.SIGTERM, f"exit: {e}")
        o.expect(f"signaled {int(signal.SIGTERM)}")
        no_more_exits(c, o.pid)


def test_threads_stop_once():
    """Five threads: one stop and one continue per group-stop, not per
    thread; threads made while watched are traced too."""
    with Broker() as b, Observer("--threads", "4") as o:
        c = b.client()
        r = watch(c, o.pid, stop=True)
        check(r["threads"] == 5, f"threads seized: {r}")
        for _ in range(3):
            os.kill(o.pid, signal.SIGSTOP)
            o.expect("stopped 19")
            expect_events(c, o.pid, ["stop"])
            os.kill(o.pid, signal.SIGCONT)
            o.expect("continued")
            expect_events(c, o.pid, ["continue"])
        # Every thread is traced by the broker, and nothing else came.
        check(set(tracer_pids(o.pid).values()) == {b.proc.pid}, f"tracers: {tracer_pids(o.pid)}")
        ping = c.request({"op": "ping"})
        extra = [e for e in c.pending if e.get("type") in ("stop", "continue")]
        check(ping["type"] == "pong" and not extra, f"extra stop/continue events: {extra}")
        st = c.request({"op": "status"})["watches"]
        check(st["stops"] == 3 and st["continues"] == 3 and st["traced_threads"] == 5, f"stats: {st}")


def test_new_threads_traced():
    """A thread created while watched is attached by the kernel (TRACECLONE)
    and the process still stops and continues as one."""
    with Broker() as b:
        c = b.client()
        p = subprocess.Popen([PN_CHILD, "--wait-stdin", "threads", "3", "5"], stdin=subprocess.PIPE,
                             preexec_fn=_die_with_parent)
        wait_until(lambda: os.path.exists(f"/proc/{p.pid}/comm") and
                   open(f"/proc/{p.pid}/comm").read().strip() == "pn-child", "pn-child exec")
        watch(c, p.pid, stop=True)
        p.stdin.close()  # it starts 3 threads, joins them and exits 5
        e = c.events_until(of_pid(p.pid, "exit"), what="exit of the threaded child")[-1]
        check(e["exit_code"] == 5, f"exit: {e}")
        p.wait()
        st = c.request({"op": "status"})["watches"]
        check(st["traced_threads"] == 0 and st["active"] == 0, f"tracees left: {st}")


def test_leader_exit_keeps_watch():
    """The leader thread ends (pthread_exit) and the other threads run on:
    the connector tells the leader's end as pid = tgid, as it does when a
    non-leader execs, yet the process lives, and the stop watch goes on;
    when the process does end, the watch ends. (The non-leader exec, where
    the broker used to end the watch when the exec outlasted the 25 ms it
    holds the connector's report for the pidfd, is exec_while_stopping.)"""
    with Broker() as b:
        c, seer = b.client(), b.client()
        p = subprocess.Popen([PN_CHILD, "--wait-stdin", "leader-exit", "2"], stdin=subprocess.PIPE,
                             preexec_fn=_die_with_parent)
        wait_until(lambda: proc_status(p.pid, key="Name") == "pn-child", "pn-child exec")
        seer.subscribe(events=["exit"], match={"tgid": p.pid})
        watch(c, p.pid, stop=True)
        p.stdin.close()
        wait_until(lambda: proc_status(p.pid, key="State").startswith("Z"), "the leader ended")
        # The broker holds the connector's report of the leader's end for
        # the pidfd, at most 25 ms; what it then does with the watch is done
        # by the time that report is published (if it is) or 2 s passed.
        try:
            seer.events_until(of_pid(p.pid, "exit"), timeout=2, what="the leader's end")
        except AssertionError:
            pass
        tids = tracer_pids(p.pid)
        check(len(tids) == 3 and set(tids.values()) == {b.proc.pid}, f"tasks and tracers: {tids}")
        for _ in range(2):
            os.kill(p.pid, signal.SIGSTOP)
            expect_events(c, p.pid, ["stop"])
            os.kill(p.pid, signal.SIGCONT)
            expect_events(c, p.pid, ["continue"])
        st = c.request({"op": "status"})["watches"]
        check(st["active"] == 1 and st["stops"] == 2 and st["continues"] == 2, f"watches: {st}")
        p.kill()
        p.wait()
        wait_until(lambda: c.request({"op": "status"})["watches"]["active"] == 0, "the watch ended with the process")


def test_exec_keeps_watch():
    """The pidfd and the tracer follow a process through exec: the new
    program's stop and exit are reported, the exit once."""
    with Broker() as b:
        c = b.client()
        p = subprocess.Popen(["/bin/sh", "-c", f"read line; exec {PN_CHILD} wait-stdin 5"],
                             stdin=subprocess.PIPE, preexec_fn=_die_with_parent)
        wait_until(lambda: proc_status(p.pid, key="Name") == "sh", "sh running")
        watch(c, p.pid, stop=True)
        p.stdin.write(b"go\n")
        p.stdin.flush()
        # The connector can lag (under load) behind the watch: the exec
        # that made sh itself may come only now.
        e = c.events_until(lambda e: of_pid(p.pid, "exec")(e) and e.get("comm") != "sh",
                           what="the exec")[-1]
        check(e["comm"] == "pn-child", f"exec: {e}")
        os.kill(p.pid, signal.SIGSTOP)
        check(expect_events(c, p.pid, ["stop"])[0]["comm"] == "pn-child", "stop after exec")
        os.kill(p.pid, signal.SIGCONT)
        expect_events(c, p.pid, ["continue"])
        p.stdin.close()
        e = c.events_until(of_pid(p.pid, "exit"), what="the exit")[-1]
        check(e["exit_code"] == 5 and sorted(e["sources"]) == ["connector", "pidfd"], f"exit: {e}")
        p.wait()
        no_more_exits(c, p.pid)


def traced_by(pid, tracer):
    """Every task of pid is traced by tracer (0: untraced)."""
    return set(tracer_pids(pid).values()) == {tracer}


def exec_watched(c, o, *then_signals):
    """Make o's target exec (SIGUSR2, then then_signals at once), and wait
    for the connector's exec and the new image's "ready"."""
    os.kill(o.pid, signal.SIGUSR2)
    for sig in then_signals:
        os.kill(o.pid, sig)
    c.events_until(of_pid(o.pid, "exec"), what=f"the exec of {o.pid}")
    o.expect(f"ready {o.pid}")


def stops_and_continues(c, o, b, threads):
    """After an exec: threads tasks, all traced by the broker, which counts
    as many; stop and continue reported once each and seen by the real
    parent; SIGUSR1's handler runs; nothing else reported."""
    tids = tracer_pids(o.pid)
    check(len(tids) == threads and set(tids.values()) == {b.proc.pid}, f"tasks and tracers: {tids}")
    st = c.request({"op": "status"})["watches"]
    check(st["traced_threads"] == threads, f"the broker counts {st['traced_threads']} traced threads, "
          f"the process has {threads}: a stale entry? {st}")
    for sig in (signal.SIGSTOP, signal.SIGTSTP):
        os.kill(o.pid, sig)
        e = expect_events(c, o.pid, ["stop"])[0]
        check(e["signal"] == sig, f"stop event: {e}")
        o.expect(f"stopped {int(sig)}")
        os.kill(o.pid, signal.SIGCONT)
        expect_events(c, o.pid, ["continue"])
        o.expect("continued")
    os.kill(o.pid, signal.SIGUSR1)
    o.expect(f"usr1 {o.pid}")
    ping = c.request({"op": "ping"})
    extra = [e for e in c.pending if e.get("type") in ("stop", "continue")]
    check(ping["type"] == "pong" and not extra, f"extra stop/continue events: {extra}")


def unwatched_untraced(c, o):
    """unwatch: every task untraced, the tracee released (not kept as still
    detaching), a new stop watch possible, and the process untraced-normal."""
    check(c.request({"op": "unwatch", "pid": o.pid})["type"] == "unwatched", "unwatch")
    wait_until(lambda: traced_by(o.pid, 0), f"every task of {o.pid} detached ({tracer_pids(o.pid)})")
    st = c.request({"op": "status"})["watches"]
    check(st["traced_threads"] == 0 and st["detached"] == 1, f"not released after unwatch: {st}")
    behaves_untraced(o)


def stop_on_its_way(pid):
    """SIGSTOP is queued for pid, or one of its tasks is in a stop (a
    signal-delivery-stop, a group-stop)."""
    if int(proc_status(pid, key="ShdPnd"), 16) & (1 << (signal.SIGSTOP - 1)):
        return True
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            if proc_status(pid, t, "State")[0] in "tT":
                return True
        except FileNotFoundError:
            pass
    return False


def _exec_under_stop_watch(by):
    with Broker() as b, Observer("--threads", "3", "--exec-on-usr2", by, "--exec-threads", "2") as o:
        c = b.client()
        r = watch(c, o.pid, stop=True)
        check(r["threads"] == 4, f"threads seized: {r}")
        exec_watched(c, o)
        stops_and_continues(c, o, b, 3)
        unwatched_untraced(c, o)
        # Watched again after all that: the broker kept nothing of it.
        watch(c, o.pid, stop=True)
        check(traced_by(o.pid, b.proc.pid), f"not traced again: {tracer_pids(o.pid)}")


def test_thread_exec_keeps_tracing():
    """A non-leader thread of a stop-watched process execs: the kernel ends
    the other threads and gives it the leader's tid. Stops and continues of
    the new image are still reported (and seen by the real parent), the
    broker traces exactly its threads, and unwatch detaches every one."""
    _exec_under_stop_watch("thread")


def test_leader_exec_keeps_tracing():
    """The same when the leader execs (the other threads end, no tid moves)."""
    _exec_under_stop_watch("leader")


def test_exec_while_stopping():
    """SIGSTOP right behind the signal that makes a non-leader exec, again
    and again. The stop may land before the exec (the process stops; SIGCONT
    lets the exec go on), in the new image (it stops there), or during the
    exec, which ends the threads that entered the group-stop already and so
    undoes it: the real parent sees no stop, the process runs. Whichever it
    was, the broker's stops and continues alternate, one each, it reports
    the process running when it runs, and it traces the new image's threads
    only."""
    outcomes = {"stopped": 0, "undone": 0, "stopped late": 0}
    with Broker() as b, Observer("--threads", "2", "--exec-on-usr2", "thread", "--exec-threads", "2") as o:
        c = b.client()
        watch(c, o.pid, stop=True)
        for round in range(30):
            os.kill(o.pid, signal.SIGUSR2)
            os.kill(o.pid, signal.SIGSTOP)
            first = o.expect((f"ready {o.pid}", "stopped 19"))
            if first.startswith("stopped"):
                outcomes["stopped"] += 1
                os.kill(o.pid, signal.SIGCONT)
                o.expect("continued")
                o.expect(f"ready {o.pid}")
            else:
                outcomes["undone"] += 1
            # Everything the broker said of this round is queued before the pong.
            check(c.request({"op": "ping"})["type"] == "pong", "ping")
            said = [e["type"] for e in c.pending if e.get("tgid") == o.pid and e.get("type") in ("stop", "continue")]
            c.pending.clear()
            if not said and first.startswith("ready"):
                # Undone by the exec, or still on its way into the new image
                # (queued, or being delivered): wait until the broker tells
                # the stop, or nothing of it is left, twice in a row (a thread
                # just resumed with SIGSTOP runs an instant before it stops).
                quiet = []

                def settled():
                    c.request({"op": "ping"})
                    said.extend(e["type"] for e in c.pending
                                if e.get("tgid") == o.pid and e.get("type") in ("stop", "continue"))
                    c.pending.clear()
                    quiet.append(not stop_on_its_way(o.pid))
                    return bool(said) or quiet[-2:] == [True, True]
                wait_until(settled, f"round {round}: the stop undone or told")
            if said[-1:] == ["stop"]:
                states = {t: proc_status(o.pid, t, "State") for t in os.listdir(f"/proc/{o.pid}/task")}
                print(f"round {round}: {first!r} first, the broker said {said}; tasks {states}")
                outcomes["stopped late"] += 1
                o.expect("stopped 19")
                os.kill(o.pid, signal.SIGCONT)
                said += [e["type"] for e in expect_events(c, o.pid, ["continue"])]
                o.expect("continued")
            want = ["stop", "continue"] * (len(said) // 2)
            check(said == want and (said or first.startswith("ready")),
                  f"round {round} ({first!r} first): the broker said {said}")
            # Running: not group-stopped ("T"). A ptrace-stop ("t") passes
            # as soon as the broker answers it (a SIGCONT being delivered,
            # a thread trapping again at once), so wait for it to pass.
            state = []
            wait_until(lambda: state.append(proc_status(o.pid, key="State")) or state[-1][0] != "t",
                       f"round {round}: the broker answering a ptrace-stop")
            check(state[-1][0] in "RS", f"round {round}: not running ({state[-1]})")
        print(f"outcomes of 30 rounds: {outcomes}")
        stops_and_continues(c, o, b, 3)
        unwatched_untraced(c, o)


def test_exec_after_stopped():
    """Stopped (reported), the exec signal pending, then SIGCONT: continue,
    the non-leader's exec, and the new image still reported."""
    with Broker() as b, Observer("--threads", "2", "--exec-on-usr2", "thread") as o:
        c = b.client()
        stop_watched(c, o)
        os.kill(o.pid, signal.SIGUSR2)  # pending while stopped
        os.kill(o.pid, signal.SIGCONT)
        expect_events(c, o.pid, ["continue"])
        o.expect("continued")
        c.events_until(of_pid(o.pid, "exec"), what=f"the exec of {o.pid}")
        o.expect(f"ready {o.pid}")
        stops_and_continues(c, o, b, 1)
        unwatched_untraced(c, o)


def test_unwatch_during_exec():
    """unwatch right behind the signal that makes a non-leader exec, again
    and again: the detach that races with the exec still lets go of every
    task and ends (the tracee is released, not kept as still detaching), so
    the next stop watch of the process is accepted."""
    with Broker() as b, Observer("--threads", "2", "--exec-on-usr2", "thread", "--exec-threads", "2") as o:
        c, seer = b.client(), b.client()
        seer.subscribe(events=["exec"], match={"tgid": o.pid})
        for round in range(20):
            r = watch(c, o.pid, stop=True, ok=False)
            check(r.get("type") == "watching", f"round {round}: watch refused: {r}")
            os.kill(o.pid, signal.SIGUSR2)
            check(c.request({"op": "unwatch", "pid": o.pid})["type"] == "unwatched", "unwatch")
            wait_until(lambda: traced_by(o.pid, 0), f"round {round}: every task detached")
            o.expect(f"ready {o.pid}")
            # The broker has handled the exec once its event is published.
            seer.events_until(of_pid(o.pid, "exec"), what=f"round {round}: the exec")
            st = c.request({"op": "status"})["watches"]
            check(st["traced_threads"] == 0 and st["detached"] == round + 1,
                  f"round {round}: not released after unwatch: {st}")
        behaves_untraced(o)


def test_broker_killed_after_exec():
    """The broker killed after a non-leader's exec: every task untraced, the
    process behaves normally."""
    with Broker() as b, Observer("--threads", "3", "--exec-on-usr2", "thread", "--exec-threads", "2") as o:
        c = b.client()
        watch(c, o.pid, stop=True)
        exec_watched(c, o)
        check(traced_by(o.pid, b.proc.pid), f"tracers after the exec: {tracer_pids(o.pid)}")
        b.proc.kill()
        b.proc.wait(10)
        check(traced_by(o.pid, 0), f"still traced: {tracer_pids(o.pid)}")
        behaves_untraced(o)


def test_sigterm_after_exec():
    """SIGTERM after a non-leader's exec: the broker detaches every task and
    exits 0 at once (nothing is left waiting for a stale thread)."""
    with Broker() as b, Observer("--threads", "3", "--exec-on-usr2", "thread", "--exec-threads", "2") as o:
        c = b.client()
        watch(c, o.pid, stop=True)
        exec_watched(c, o)
        t0 = time.monotonic()
        check(b.stop() == 0, "the broker did not exit 0 on SIGTERM")
        took = time.monotonic() - t0
        check(traced_by(o.pid, 0), f"still traced: {tracer_pids(o.pid)}")
        check(took < 0.9, f"the broker took {took:.2f}s to detach: it waited out its deadline")
        behaves_untraced(o)


def test_clone_process_let_go():
    """A process the watched one makes with clone() but without CLONE_THREAD
    (exit signal 0: a "clone" to ptrace, which PTRACE_O_TRACECLONE attaches)
    is not a thread of it: the broker lets it go at once. It stops and
    continues untraced, its stops are not reported as the watched process's,
    and the broker counts only the watched process's thread."""
    with Broker() as b, Observer("--clone-on-usr2") as o:
        c = b.client()
        watch(c, o.pid, stop=True)
        os.kill(o.pid, signal.SIGUSR2)
        kid = int(o.expect("cloned").split()[1])
        wait_until(lambda: traced_by(kid, 0), f"the cloned process {kid} let go ({tracer_pids(kid)})")
        check(traced_by(o.pid, b.proc.pid), f"the watched process: {tracer_pids(o.pid)}")
        os.kill(kid, signal.SIGSTOP)
        wait_until(lambda: proc_status(kid, key="State").startswith("T"), f"{kid} stopped")
        os.kill(kid, signal.SIGCONT)
        wait_until(lambda: proc_status(kid, key="State")[0] in "RS", f"{kid} continued")
        ping = c.request({"op": "ping"})
        said = [e for e in c.pending if e.get("type") in ("stop", "continue")]
        check(ping["type"] == "pong" and not said, f"the cloned process's stops reported: {said}")
        st = c.request({"op": "status"})["watches"]
        check(st["traced_threads"] == 1, f"the broker counts the cloned process: {st}")
        behaves_untraced(o)
        os.kill(kid, signal.SIGKILL)


def test_already_traced_refused():
    """A process with a tracer already: a stop watch is refused (busy), an
    exit watch still works."""
    with Broker() as b, Observer("--trace") as o:
        o.expect("traced")
        c = b.client()
        r = watch(c, o.pid, stop=True, ok=False)
        check(r["code"] == "busy" and "already traced" in r["message"], f"stop watch of a traced process: {r}")
        check(int(proc_status(o.pid)) == o.proc.pid, "the observer lost its tracee")
        watch(c, o.pid)
        st = c.request({"op": "status"})["watches"]
        check(st["refused"] == 1 and st["traced_processes"] == 0, f"stats: {st}")


def _detach_observed(b, o, how):
    """Watch o with stop, end the watch by how(client), and check that the
    kernel says the broker detached (a ptrace event with tracer 0), every
    thread is untraced and the process behaves normally."""
    c, seer = b.client(), b.client()
    seer.subscribe(events=["ptrace"], match={"tgid": o.pid})
    watch(c, o.pid, stop=True)
    seer.events_until(lambda e: e.get("tgid") == o.pid and e.get("tracer_pid") == b.proc.pid,
                      what="the broker's attach")
    how(c)
    seer.events_until(lambda e: e.get("tgid") == o.pid and e.get("tracer_pid") == 0,
                      what="the broker's detach")
    wait_until(lambda: set(tracer_pids(o.pid).values()) == {0}, "every thread detached")
    behaves_untraced(o)
    st = seer.request({"op": "status"})["watches"]
    check(st["traced_threads"] == 0 and st["detached"] == 1, f"stats: {st}")


def test_unwatch_detaches():
    with Broker() as b, Observer("--threads", "2") as o:
        def unwatch(c):
            r = c.request({"op": "unwatch", "pid": o.pid})
            check(r == {"type": "unwatched", "pid": o.pid}, f"unwatch: {r}")
        _detach_observed(b, o, unwatch)


def test_disconnect_detaches():
    with Broker() as b, Observer("--threads", "2") as o:
        _detach_observed(b, o, lambda c: c.close())


def stop_watched(c, o):
    """Stop-watch o's target, then stop it: reported, and seen by its parent."""
    watch(c, o.pid, stop=True)
    os.kill(o.pid, signal.SIGSTOP)
    expect_events(c, o.pid, ["stop"])
    o.expect("stopped 19")


def test_unwatch_while_stopped_stays_stopped():
    """Detached while group-stopped, the process stays stopped until SIGCONT,
    as it would untraced."""
    with Broker() as b, Observer("--threads", "1") as o:
        c = b.client()
        stop_watched(c, o)
        r = c.request({"op": "unwatch", "pid": o.pid})
        check(r["type"] == "unwatched", f"unwatch: {r}")
        wait_until(lambda: set(tracer_pids(o.pid).values()) == {0}, "every thread detached")
        wait_until(lambda: proc_status(o.pid, key="State").startswith("T"), "the target stopped again", 5)
        os.kill(o.pid, signal.SIGCONT)
        o.expect("continued")
        behaves_untraced(o)


def test_broker_killed_process_untraced():
    """SIGKILL the broker while it traces a stopped process: the kernel
    detaches; the process stays stopped, then continues and stops normally."""
    with Broker() as b, Observer("--threads", "2") as o:
        c = b.client()
        stop_watched(c, o)
        b.proc.kill()
        b.proc.wait(10)
        check(set(tracer_pids(o.pid).values()) == {0}, f"still traced: {tracer_pids(o.pid)}")
        # Woken by the detach, each thread goes back to its group-stop.
        wait_until(lambda: proc_status(o.pid, key="State").startswith("T"), "the target stopped again", 5)
        os.kill(o.pid, signal.SIGCONT)
        o.expect("continued")
        behaves_untraced(o, signal.SIGTSTP)


def test_sigterm_detaches():
    """A broker stopped with SIGTERM detaches its tracees before it exits."""
    with Broker() as b, Observer("--threads", "2") as o:
        c = b.client()
        watch(c, o.pid, stop=True)
        check(b.stop() == 0, "the broker did not exit 0 on SIGTERM")
        check(set(tracer_pids(o.pid).values()) == {0}, f"still traced: {tracer_pids(o.pid)}")
        behaves_untraced(o)


def test_two_watchers_share():
    """Two connections stop-watch one process: one tracer; one unwatch keeps
    the other's events; both get the exit once."""
    with Broker() as b, Observer() as o:
        c1, c2 = b.client(), b.client()
        watch(c1, o.pid, stop=True)
        watch(c2, o.pid, stop=True)
        check(c1.request({"op": "status"})["watches"]["traced_processes"] == 1, "two tracers?")
        os.kill(o.pid, signal.SIGSTOP)
        for c in (c1, c2):
            expect_events(c, o.pid, ["stop"])
        os.kill(o.pid, signal.SIGCONT)
        for c in (c1, c2):
            expect_events(c, o.pid, ["continue"])
        check(c1.request({"op": "unwatch", "pid": o.pid})["type"] == "unwatched", "unwatch")
        check(int(proc_status(o.pid)) == b.proc.pid, "the other watch lost its tracer")
        os.kill(o.pid, signal.SIGTSTP)
        expect_events(c2, o.pid, ["stop"])
        os.kill(o.pid, signal.SIGKILL)
        e = c2.events_until(of_pid(o.pid, "exit"), what="exit")[-1]
        check(e["signal"] == 9, f"exit: {e}")
        no_more_exits(c2, o.pid)


# --- D-Bus ---

def test_dbus_watch():
    """Watch and Unwatch over D-Bus (a private dbus-daemon): the exit once
    with both sources, stop/continue with "stop", errors as D-Bus errors,
    and the caller's disconnect ends its watches."""
    import dbus
    from dbus.mainloop.glib import DBusGMainLoop
    from gi.repository import GLib

    DBusGMainLoop(set_as_default=True)
    with pntest.Bus("dbus-daemon") as bus, Broker(dbus=bus.address) as b:
        conn = dbus.bus.BusConnection(bus.address)
        broker = dbus.Interface(conn.get_object("org.procnotify.Broker1", "/org/procnotify/Broker1"),
                                "org.procnotify.Broker1")
        got = []
        conn.add_signal_receiver(lambda *args, **kw: got.append((kw["member"], args)),
                                 dbus_interface="org.procnotify.Broker1", member_keyword="member")

        def signal_of(member, pid, timeout=10):
            ctx, deadline = GLib.MainContext.default(), time.monotonic() + timeout
            while time.monotonic() < deadline:
                for i, (m, args) in enumerate(got):
                    if m == member and int(args[3]) == pid:
                        return got.pop(i)[1]
                ctx.iteration(False) or time.sleep(0.005)
            fail(f"no {member} signal for {pid} within {timeout}s; got {[m for m, _ in got]}")

        def dbus_error(call):
            try:
                call()
            except dbus.exceptions.DBusException as e:
                return e.get_dbus_name()
            fail("the call did not fail")

        p = held_child(7)
        path = broker.Watch(dbus.UInt32(p.pid), dbus.Dictionary({}, signature="sv"))
        check(str(path).startswith("/org/procnotify/Broker1/subscription/"), f"path: {path}")
        check(dbus_error(lambda: broker.Watch(dbus.UInt32(p.pid), {})).endswith("Error.Busy"),
              "a second watch of the same pid")
        p.stdin.close()
        args = signal_of("Exited", p.pid)
        check(int(args[11]) == 7 and sorted(str(x) for x in args[15]) == ["connector", "pidfd"],
              f"Exited: {args}")
        p.wait()
        check(dbus_error(lambda: broker.Watch(dbus.UInt32(p.pid), {})).endswith("Error.NotFound"),
              "watch of a gone pid")
        check(dbus_error(lambda: broker.Unwatch(dbus.UInt32(p.pid))).endswith("Error.NotFound"),
              "unwatch after the exit")
        check(dbus_error(lambda: broker.Watch(dbus.UInt32(1), {"stop": dbus.Boolean(True)}))
              .endswith("Error.AccessDenied"), "stop watch of pid 1")
        check(dbus_error(lambda: broker.Watch(dbus.UInt32(1), {"bogus": 1})) ==
              "org.freedesktop.DBus.Error.InvalidArgs", "an unknown option")

        with Observer() as o:
            broker.Watch(dbus.UInt32(o.pid), {"stop": dbus.Boolean(True)})
            check(int(proc_status(o.pid)) == b.proc.pid, "not traced by the broker")
            os.kill(o.pid, signal.SIGTSTP)
            args = signal_of("Stopped", o.pid)
            check(int(args[11]) == signal.SIGTSTP and [str(x) for x in args[12]] == ["ptrace"],
                  f"Stopped: {args}")
            o.expect("stopped 20")
            os.kill(o.pid, signal.SIGCONT)
            signal_of("Continued", o.pid)
            o.expect("continued")
            broker.Unwatch(dbus.UInt32(o.pid))
            wait_until(lambda: set(tracer_pids(o.pid).values()) == {0}, "the detach after Unwatch")
            # Watched again, then the connection closes: detached as well.
            broker.Watch(dbus.UInt32(o.pid), {"stop": dbus.Boolean(True)})
            check(int(proc_status(o.pid)) == b.proc.pid, "not traced again")
            conn.close()
            wait_until(lambda: set(tracer_pids(o.pid).values()) == {0}, "the detach after the disconnect")
            behaves_untraced(o)


# --- procnotifyctl watch ---

def test_ctl_watch():
    """procnotifyctl watch: prints the events and exits 0 at the exit; 1 on
    timeout; 3 when refused."""
    with Broker() as b:
        p = held_child(4)
        ctl = subprocess.Popen([CTL, "--socket", b.socket_path, "watch", "--json", str(p.pid)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = ctl.stdout.readline()
        check('"type":"watching"' in first, f"first line: {first!r}")
        p.stdin.close()
        out, err = ctl.communicate(timeout=20)
        check(ctl.returncode == 0, f"exit {ctl.returncode}: {err}")
        check('"exit_code":4' in out and '"pidfd"' in out, f"output: {out!r}")

        q = held_child(0)
        r = subprocess.run([CTL, "--socket", b.socket_path, "watch", "--timeout=0.3", str(q.pid)],
                           capture_output=True, text=True, timeout=20)
        check(r.returncode == 1, f"timeout: exit {r.returncode}: {r.stderr}")
        with Observer() as o:
            s = subprocess.Popen([CTL, "--socket", b.socket_path, "watch", "--stop", str(o.pid)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            header = s.stdout.readline()
            check(header.startswith("TIME"), f"table header: {header!r}")
            wait_until(lambda: proc_status(o.pid) != "0", "the broker tracing the target")
            os.kill(o.pid, signal.SIGSTOP)
            rows = []
            while not rows or " stop " not in rows[-1]:  # the kernel's ptrace (attach) row may come first
                rows.append(s.stdout.readline())
                check(rows[-1] and len(rows) < 10, f"no stop row: {rows!r}")
            check("SIGSTOP" in rows[-1], f"stop row: {rows!r}")
            os.kill(o.pid, signal.SIGKILL)
            out, err = s.communicate(timeout=20)
            check(s.returncode == 0 and " exit " in out, f"exit {s.returncode}: {out!r} {err!r}")
        q.stdin.close()
        q.wait()
        r = subprocess.run([CTL, "--socket", b.socket_path, "watch", str(q.pid)],
                           capture_output=True, text=True, timeout=20)
        check(r.returncode == 5 and "not-found" in r.stderr, f"refused: exit {r.returncode}: {r.stderr}")
        r = subprocess.run([CTL, "--socket", b.socket_path, "watch"], capture_output=True, text=True)
        check(r.returncode == 2, f"no pid: exit {r.returncode}")
        r = subprocess.run([CTL, "--socket", b.socket_path, "wait", "--stop"], capture_output=True, text=True)
        check(r.returncode == 2, f"--stop outside watch: exit {r.returncode}")


if __name__ == "__main__":
    run({name[5:]: fn for name, fn in globals().items() if name.startswith("test_")})
