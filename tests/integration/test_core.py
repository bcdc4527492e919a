#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The core pipeline against the real kernel: connector -> process table ->
JSON socket. Run one test: `test_core.py NAME` (see pntest.run)."""
import json
import os
import re
import resource
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from pntest import (REPLY_TYPES, SANITIZED, Broker, Client, SeqAccount, Skip, check, timed,
                    check_no_sanitizer_report, child, exec_then_release, fail, kernel_at_least, of_pid,
                    proc_tgids, release, run, vmrss_kib, wait_until)
from pntest import _die_with_parent

ME = os.getpid()


def test_hello_and_status():
    with Broker() as b:
        c = b.client()
        h = c.hello
        check(h["protocol"] == 1 and h["uid"] == 0 and h["sees_all"] is True, f"hello: {h}")
        check(len(h["instance_id"]) == 32 and h["boot_id"], f"hello identity: {h}")
        check(h["pid"] == os.getpid(), f"hello pid {h['pid']} is not the client's {os.getpid()}")
        s = c.request({"op": "status"})
        check(s["type"] == "status" and s["process_table"]["entries"] > 10, f"status: {s}")
        check(s["socket"]["clients"] == 1, f"status clients: {s['socket']}")
        p = c.request({"op": "ping"})
        check(p["type"] == "pong" and p["seq"] >= h["seq"], f"pong: {p}")


def test_exit_code():
    """A child that exits 3: fork, exec and exit, in this order, for its pid."""
    with Broker() as b:
        c = b.client()
        c.subscribe(events=["fork", "exec", "exit"])
        p = child("exit", 3, hold=True)
        seen = exec_then_release(c, p)
        seen += c.events_until(of_pid(p.pid, "exit"), what=f"exit of {p.pid}")
        p.wait()
        mine = [e for e in seen if e["tgid"] == p.pid]
        check([e["type"] for e in mine] == ["fork", "exec", "exit"],
              f"events of {p.pid}: {[e['type'] for e in mine]}")
        fork, exec_, exit_ = mine
        check(fork["ppid"] == os.getpid(), f"fork ppid {fork['ppid']} != {os.getpid()}")
        check(exec_["comm"] == "pn-child" and exec_["exe"].endswith("/pn-child"), f"exec: {exec_}")
        check("exit 3" in exec_["cmdline"], f"cmdline: {exec_['cmdline']}")
        check(exit_["comm"] == "pn-child", f"exit not enriched: {exit_}")
        check(exit_["exit_code"] == 3 and exit_["signal"] == 0 and exit_["core_dumped"] is False,
              f"exit: {exit_}")
        check(exit_["status"] == 3 << 8 and exit_["sources"] == ["connector"], f"exit: {exit_}")
        check(fork["seq"] < exec_["seq"] < exit_["seq"], "seq not increasing")


def _crash(core):
    pattern = open("/proc/sys/kernel/core_pattern").read().strip()
    if core and pattern.startswith("|"):
        raise Skip(f"core_pattern pipes to a program ({pattern}); a core file cannot be checked")
    # The kernel may drop connector messages on a loaded host; the broker
    # then reports an overrun (which passes every filter) and the crash's
    # predump may be what was lost. That is the product telling the truth,
    # so try again with a new crash, at most 3 times.
    losses = []
    for _ in range(3):
        if _crash_once(core, pattern, losses):
            return
    fail(f"a kernel overrun during each of 3 crashes: {losses}")


def _crash_once(core, pattern, losses):
    with Broker() as b, tempfile.TemporaryDirectory() as cwd:
        c = b.client()
        c.subscribe(events=["exec", "predump", "exit"], match={"ppid": ME})
        p = child("segv", "core" if core else "nocore", cwd=cwd, hold=True)
        exec_then_release(c, p)
        seen = c.events_until(of_pid(p.pid, "exit"), what=f"exit of crashing {p.pid}")
        p.wait()
        mine = [e for e in seen if e.get("tgid") == p.pid]
        overruns = [e for e in seen if e["type"] == "overrun"]
        if overruns and [e["type"] for e in mine] != ["predump", "exit"]:
            losses.append(overruns)
            return False
        check([e["type"] for e in mine] == ["predump", "exit"],
              f"expected predump then exit, got {[e['type'] for e in mine]}")
        pre, ex = mine
        check(pre["seq"] < ex["seq"] and pre["ts_ns"] <= ex["ts_ns"], "predump not before exit")
        # The process memory is gone at predump time with RLIMIT_CORE 0: the
        # name and command line come from the table, captured at exec.
        check(pre["comm"] == "pn-child" and "segv" in (pre["cmdline"] or ""), f"predump: {pre}")
        check(ex["signal"] == signal.SIGSEGV and ex["exit_code"] == 128 + signal.SIGSEGV,
              f"exit: {ex}")
        check(ex["core_dumped"] is core, f"core_dumped should be {core}: {ex} (pattern {pattern!r})")
        if core:
            check(any(f.startswith("core") for f in os.listdir(cwd)), "no core file was written")
        return True


def test_crash_with_core():
    _crash(core=True)


def test_crash_without_core():
    _crash(core=False)


def test_threads_one_exit():
    """A child with 4 threads: one process exit, and thread exits only on request."""
    with Broker() as b:
        procs = b.client()
        procs.subscribe(events=["exit"], match={"ppid": ME})
        threads = b.client()
        threads.subscribe(events=["fork", "exit"], match={"ppid": ME}, threads=True)
        p = child("threads", 4, 5)
        seen = procs.events_until(of_pid(p.pid, "exit"), what="process exit")
        p.wait()
        # Give a second exit (the bug this guards against) the chance to show:
        # the threads client sees the process exit after every thread exit,
        # so once it has it, the process client has had everything too.
        tseen = threads.events_until(lambda e: of_pid(p.pid, "exit")(e) and not e.get("thread"),
                                     what="process exit (threads client)")
        procs.request({"op": "ping"})
        mine = [e for e in seen + procs.pending if e.get("tgid") == p.pid]
        check(len(mine) == 1 and mine[0]["exit_code"] == 5 and "thread" not in mine[0],
              f"expected one process exit with code 5, got {mine}")
        tforks = [e for e in tseen if e["tgid"] == p.pid and e["type"] == "fork" and e.get("thread")]
        texits = [e for e in tseen if e["tgid"] == p.pid and e["type"] == "exit" and e.get("thread")]
        check(len(tforks) == 4 and len(texits) == 4,
              f"threads client: {len(tforks)} thread forks, {len(texits)} thread exits (want 4, 4)")


def test_thread_exit_group():
    """A non-leader thread calls exit(9) while others run: one exit, code 9."""
    with Broker() as b:
        c = b.client()
        c.subscribe(events=["exit"], match={"ppid": ME})
        p = child("thread-exit-group", 3, 9)
        seen = c.events_until(of_pid(p.pid, "exit"), what="process exit")
        p.wait()
        c.request({"op": "ping"})
        mine = [e for e in seen + c.pending if e.get("tgid") == p.pid]
        check(len(mine) == 1 and mine[0]["exit_code"] == 9, f"exits: {mine}")


def test_thread_crash():
    """A thread dies of SIGSEGV: one predump, one process exit with signal 11."""
    with Broker() as b, tempfile.TemporaryDirectory() as cwd:
        c = b.client()
        c.subscribe(events=["predump", "exit"], match={"ppid": ME})
        p = child("thread-segv", 3, cwd=cwd)
        seen = c.events_until(of_pid(p.pid, "exit"), what="process exit")
        p.wait()
        c.request({"op": "ping"})
        mine = [e for e in seen + c.pending if e.get("tgid") == p.pid]
        check([e["type"] for e in mine] == ["predump", "exit"], f"events: {mine}")
        check(mine[1]["signal"] == signal.SIGSEGV, f"exit: {mine[1]}")
        # A process-level event: the process as pid, the crashing thread
        # (not the main one here) as tid; no thread flag.
        pd = mine[0]
        check(pd["pid"] == p.pid and pd.get("tid") not in (None, p.pid) and "thread" not in pd,
              f"predump: {pd}")


def test_two_clients_filters():
    """Two clients with different filters each get exactly what they asked for."""
    with Broker() as b:
        a = b.client()
        a.subscribe(events=["exit"], match={"ppid": ME})
        z = b.client()
        z.subscribe(events=["fork"], match={"ppid": ME})
        # One after the other: two children running at once may exit in
        # either order (seen under load), and the order is checked below.
        p1 = child("exit", 1)
        p1.wait()
        p2 = child("exit", 2)
        p2.wait()
        a_seen = a.events_until(lambda e: e["tgid"] == p2.pid, what="exit of the second child")
        z_seen = z.events_until(lambda e: e["tgid"] == p2.pid, what="fork of the second child")
        a.request({"op": "ping"})
        z.request({"op": "ping"})
        a_all = a_seen + a.pending
        z_all = z_seen + z.pending
        check(all(e["type"] == "exit" and e["ppid"] == ME for e in a_all), f"a got {a_all}")
        check(all(e["type"] == "fork" and e["ppid"] == ME for e in z_all), f"z got {z_all}")
        check([e["exit_code"] for e in a_all if e["tgid"] in (p1.pid, p2.pid)] == [1, 2],
              f"a's exits: {a_all}")
        check([e["tgid"] for e in z_all if e["tgid"] in (p1.pid, p2.pid)] == [p1.pid, p2.pid],
              f"z's forks: {z_all}")


def test_malformed_lines():
    """Bad lines get errors with stable codes; the connection keeps working."""
    with Broker() as b:
        c = b.client()
        cases = [
            (b"this is not json\n", "invalid-json"),
            (b'{"op":"subscribe","events":["exit"]\n', "invalid-json"),
            (b'{"op": "ping"} trailing\n', "invalid-json"),
            (b'{"op":"caf\xc3"}\n', "invalid-json"),
            (b"[1,2,3]\n", "invalid-request"),
            (b'{"events":["exit"]}\n', "invalid-request"),
            (b'{"op":"nonsense"}\n', "unknown-op"),
            (b'{"op":"subscribe","evnets":["exit"]}\n', "invalid-request"),
            (b'{"op":"subscribe","events":["bogus"]}\n', "invalid-filter"),
            (b'{"op":"subscribe","match":{"pid":"12"}}\n', "invalid-filter"),
            (b'{"op":"unsubscribe","id":99}\n', "not-found"),
            (b"[" * 100 + b"]" * 100 + b"\n", "invalid-json"),
        ]
        for line, code in cases:
            c.send_raw(line)
            r = c.read_reply()
            check(r and r["type"] == "error" and r["code"] == code,
                  f"{line[:60]!r}: expected error {code}, got {r}")
            check(r["message"], f"error without a message: {r}")
        check(c.request({"op": "ping"})["type"] == "pong", "connection broken after bad lines")
        # Half a line, then the rest: one request.
        c.send_raw(b'{"op":')
        c.send_raw(b'"ping"}\n')
        check(c.read_reply()["type"] == "pong", "a line split across writes was not joined")


def test_long_line_disconnects():
    """A 1 MiB line: an error, then a disconnect; other clients keep being served."""
    with Broker() as b:
        other = b.client()
        other.subscribe(events=["exit"], match={"ppid": ME})
        c = b.client()
        try:
            c.send_raw(b'{"op":"ping","x":"' + b"a" * (1 << 20) + b'"}\n')
        except (BrokenPipeError, ConnectionResetError):
            pass  # the broker stopped reading and closed: expected
        r = c.read_reply()
        check(r and r["type"] == "error" and r["code"] == "line-too-long", f"reply: {r}")
        check(c.read_line(10) is None, "connection not closed after line-too-long")
        p = child("exit", 4)
        p.wait()
        other.events_until(of_pid(p.pid, "exit"), what="exit for the other client")
        check(other.request({"op": "ping"})["type"] == "pong", "other client not served")


# --- floods: nothing lost silently -------------------------------------------

# An event line starts with its type and seq (event-json.c writes them first);
# parsing a million lines in full would make the test, not the broker, the
# bottleneck. Overruns, and every line without seq, are parsed in full.
EVENT_HEAD = re.compile(rb'\{"type":"([a-z_]+)","seq":(\d+),')
TGID = re.compile(rb',"tgid":(\d+),')


class Tally(SeqAccount):
    """One client's view of a flood, checked line by line as it arrives (see
    pntest.SeqAccount); events of one process (pid) counted by type."""

    def __init__(self, client, pid=None, sees_all=False, name="client"):
        super().__init__(name, sees_all)
        self.c, self.pid = client, pid
        self.of_pid = {}        # type -> count, events of pid
        self.replies = []
        self.lost_before_reply = 0  # client loss told before the last reply
        self.latencies = []     # ns from the kernel's ts_ns to our receipt, if measured
        self.exits = set()      # tgids of process exits received
        self.measure = False

    def feed(self, line, now_ns):
        m = EVENT_HEAD.match(line)
        typ = m.group(1).decode() if m else None
        if m is None or typ in REPLY_TYPES:
            o = json.loads(line)
            if o["type"] in REPLY_TYPES:
                self.replies.append(o)
                self.lost_before_reply = self.client_lost
                return
            check(o["type"] == "overrun" and o["where"] == "client",
                  f"{self.name}: a line without seq that is no client overrun: {o}")
            self.client_overrun(o["lost"], o["first_seq"], o["last_seq"])
            return
        self.event(int(m.group(2)))
        if typ == "overrun":
            o = json.loads(line)
            check(o["where"] == "kernel", f"{self.name}: overrun {o}")
            self.kernel_overrun(o["lost"])
            return
        if typ == "exit":
            self.exits.add(int(TGID.search(line).group(1)))
        if self.pid is not None:
            t = TGID.search(line)
            if t and int(t.group(1)) == self.pid:
                self.of_pid[typ] = self.of_pid.get(typ, 0) + 1
                if self.measure:
                    ts = int(re.search(rb'"ts_ns":(\d+)', line).group(1))
                    self.latencies.append(now_ns - ts)


def pump(tallies, until, timeout, what):
    """Read every tally's client until until() holds (checked after each
    read), for at most timeout seconds."""
    deadline = time.monotonic() + timeout
    socks = {t.c.sock: t for t in tallies}
    while not until():
        left = deadline - time.monotonic()
        if left <= 0:
            fail(f"{what} within {timeout}s: " +
                 "; ".join(f"{t.name}: {t.events} events, of pid {t.of_pid}, lost "
                           f"{t.kernel_lost} kernel + {t.client_lost} client" for t in tallies))
        r, _, _ = select.select(list(socks), [], [], min(left, 0.5))
        for sock in r:
            t = socks[sock]
            data = sock.recv(1 << 20)
            check(data, f"{t.name}: the broker closed the connection")
            now = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
            lines = (t.c.buf + data).split(b"\n")
            t.c.buf = lines.pop()
            for line in lines:
                t.feed(line, now)


def request(tally, obj, timeout=30):
    """A request on a tally's client; events read meanwhile are tallied."""
    n = len(tally.replies)
    tally.c.send(obj)
    pump([tally], lambda: len(tally.replies) > n, timeout, f"no reply to {obj}")
    return tally.replies[n]


def settle(tallies):
    """Make every client overrun report arrive: a loss not yet told is told
    before the reply to a request, so it is in when the pong is."""
    n = [len(t.replies) for t in tallies]
    for t in tallies:
        t.c.send({"op": "ping"})
    pump(tallies, lambda: all(len(t.replies) >= k + 1 for t, k in zip(tallies, n)), 60,
         "no pong from every client")


def table_matches_proc(c, timeout=15):
    """The broker's process table holds exactly the processes /proc lists:
    no ghosts, nobody missing (zombies are not processes any more).
    Compared by count and sum of tgids in a moment when /proc did not
    change around the status request (other processes on the host may
    come and go: then look again)."""
    deadline = time.monotonic() + timeout
    while True:
        before = proc_tgids()
        pt = c.request({"op": "status"})["process_table"]
        after = proc_tgids()
        if before == after and pt["entries"] == len(after) and pt["tgid_sum"] == sum(after):
            return pt
        if time.monotonic() > deadline:
            d = pt["tgid_sum"] - sum(after)
            fail(f"process table and /proc differ for {timeout}s: table {pt['entries']} processes "
                 f"(tgid sum {pt['tgid_sum']}), /proc {len(after)} (sum {sum(after)}); "
                 f"if one process, it is pid {abs(d)} ({'ghost' if d > 0 else 'missing'})")
        time.sleep(0.05)  # /proc changed under us, or events still in flight: look again


def flood(b, n, min_kernel_lost=0, churn=20):
    """A comm burst of n events from one process, with process churn during
    it, against broker b. Checks that every comm event of the burst reaches
    a client or is counted in an overrun that client receives, that a
    client seeing everything has seq gaps equal to its reported losses,
    that the kernel losses clients are told equal what the broker counted,
    that the process table matches /proc afterwards and that events flow
    again. Returns the tallies and the final status."""
    # Kernel loss the broker counted before the clients subscribed may still
    # reach them as an overrun (they are coalesced, 100 ms apart): what they
    # are told lies between the broker's count since they subscribed (s0) and
    # its count since just before (s_pre).
    pre = b.client()
    s_pre = pre.request({"op": "status"})
    pre.close()
    everything = b.client()
    everything.subscribe(threads=True)
    control = b.client()
    control.subscribe(events=["exit"], match={"ppid": ME})
    p = child("comm-burst", n, hold=True)
    burst = b.client()
    burst.subscribe(events=["comm"], match={"pid": p.pid})
    t_all = Tally(everything, p.pid, sees_all=True, name="everything")
    t_burst = Tally(burst, p.pid, name="burst")
    t_ctl = Tally(control, name="control")
    tallies = [t_all, t_burst, t_ctl]
    s0 = control.request({"op": "status"})
    # A zombie through it all (ended, not reaped until the end): in /proc,
    # but not a process the table may keep, or re-add when it resyncs.
    zombie = child("exit", 0)

    start = time.monotonic()
    release(p)
    # Process churn while the kernel may be dropping: short-lived children
    # (their fork or exit may be lost: the table must not keep ghosts) and
    # long-lived ones (their fork may be lost: the table must find them).
    short = [child("exit", 0) for _ in range(churn)]
    held = [child("exit", 0, hold=True) for _ in range(churn // 4)]
    for q in short:
        q.wait()
    pump(tallies, lambda: p.poll() is not None, 300, "the burst did not end")
    burst_s = time.monotonic() - start
    check(p.returncode == 0, f"burst child exited {p.returncode}")

    # The burst is over in the kernel. A marker process's exit comes after
    # every burst event in the connector's queue; loss at the very end is
    # found by the broker's drop counter within its watchdog period: wait
    # until clients were told all the broker counted, and the burst adds up.
    # (The marker's own events may be lost too, while others flood the host
    # or the buffer is tiny: then another marker.)
    for attempt in range(30):
        marker = child("exit", 9)
        marker.wait()
        until = time.monotonic() + 2
        pump(tallies, lambda: marker_seen(t_ctl, marker.pid) or time.monotonic() > until, 5,
             "reading")
        if marker_seen(t_ctl, marker.pid):
            break
    else:
        fail("the exits of 30 marker processes after the burst did not arrive")
    deadline = time.monotonic() + 15
    while True:
        settle(tallies)
        s = request(t_ctl, {"op": "status"})
        lost = s["connector"]["lost"] - s0["connector"]["lost"]
        lost_max = s["connector"]["lost"] - s_pre["connector"]["lost"]
        got = t_burst.of_pid.get("comm", 0)
        accounted = got + t_burst.client_lost + t_burst.kernel_lost
        if all(lost <= t.kernel_lost <= lost_max for t in tallies) and accounted >= n:
            break
        if time.monotonic() > deadline:
            fail(f"burst of {n}: the burst client received {got}, was told of "
                 f"{t_burst.client_lost} lost in its queue and {t_burst.kernel_lost} in the kernel "
                 f"(broker counted {lost} to {lost_max}; everything: {t_all.kernel_lost}, control: "
                 f"{t_ctl.kernel_lost}): {'silent loss' if accounted < n else 'overruns missing'}")
        # Not all told yet: read what comes for a moment, then ask again.
        until = time.monotonic() + 0.2
        pump(tallies, lambda: time.monotonic() >= until, 5, "reading")
    check(got + t_burst.client_lost <= n,
          f"burst client: {got} received + {t_burst.client_lost} lost > {n} emitted")
    check(t_all.of_pid.get("comm", 0) <= n, f"everything client: {t_all.of_pid} > {n}")
    check(lost >= min_kernel_lost, f"kernel lost {lost}, expected at least {min_kernel_lost}")
    check(t_ctl.client_lost == 0, f"the control client lost {t_ctl.client_lost} exits")
    print(f"burst of {n} comm events in {burst_s:.1f}s ({n / burst_s:.0f}/s): burst client "
          f"received {got}, lost {t_burst.client_lost} in its queue; kernel lost {lost} "
          f"(host-wide, {s['connector']['overrun_events'] - s0['connector']['overrun_events']} "
          f"overrun events); everything client: {t_all.events} events, {t_all.client_lost} lost "
          f"in {t_all.client_overruns} overruns")

    # No ghosts, nobody missing; then the held children end, and their
    # exits (announced by a fork that may have been lost) arrive.
    table_matches_proc(control)
    for q in held:
        release(q)
        q.wait()
    pump([t_ctl], lambda: all(marker_seen(t_ctl, q.pid) for q in held), 15,
         "the exits of the processes started during the burst did not arrive")
    table_matches_proc(control)
    zombie.wait()
    for t in tallies:
        t.c.close()
    return s


def marker_seen(tally, pid):
    """Did tally's client get the process exit of pid?"""
    return pid in tally.exits


def test_slow_client_overrun():
    """100 clients that never read and one that does, default configuration:
    the reader gets every event, in seq order, with bounded latency; each
    stuck client, when it reads at last, has seq gaps equal to the client
    overruns it is told of."""
    # 5,000 a second: the reader's 1 MiB queue holds 0.6 s of them, slack
    # for a Python reader on a busy host, which is not what is tested. On a
    # slower machine (timed()) the same burst at a pace that much slower:
    # the stuck clients' queues overflow all the same (20,000 events).
    n, rate, stuck_n = 20000, int(5000 / timed(1)), 100
    with Broker() as b:
        stuck = []
        for _ in range(stuck_n):
            c = b.client()
            c.subscribe(threads=True)  # everything: seq gaps must equal reported loss
            stuck.append(c)
        p = child("comm-burst", n, rate, hold=True)
        reader = b.client()
        reader.subscribe(events=["comm"], match={"pid": p.pid})
        reader.subscribe(events=["exit"], match={"ppid": ME})
        t = Tally(reader, p.pid, name="reader")
        t.measure = True
        release(p)
        pump([t], lambda: marker_seen(t, p.pid), timed(60), "the burst's exit did not arrive")
        p.wait()
        got = t.of_pid.get("comm", 0)
        # Nothing lost in the reader's own queue; all arrived, or (the host's
        # other processes flooding the connector) were reported lost in the
        # kernel: no unreported gap.
        check(t.client_lost == 0 and got <= n and got + t.kernel_lost >= n,
              f"reader got {got} of {n} comm events, lost {t.client_lost} in its queue and "
              f"{t.kernel_lost} in the kernel")
        if t.kernel_lost:
            print(f"note: the kernel dropped events (host-wide {t.kernel_lost}, reported); "
                  f"the reader got {got} of {n}")
        lat = sorted(t.latencies)
        p50, p99, worst = (lat[len(lat) // 2] / 1e6, lat[len(lat) * 99 // 100] / 1e6,
                           lat[-1] / 1e6)
        print(f"reader latency with {stuck_n} stuck clients: p50 {p50:.2f} ms, "
              f"p99 {p99:.2f} ms, max {worst:.2f} ms")
        # Alone on 2 CPUs p99 is a few ms (90 ms sanitized), but this host may
        # be shared: the bounds tell a broker that keeps up from one that
        # stuck clients slow down, which falls behind the paced 4-second
        # burst and ends it seconds late. A sanitized broker is 2-3 times slower;
        # an emulated machine timed(1) times.
        k = timed(2 if SANITIZED else 1)
        check(p99 < 1000 * k and worst < 2000 * k,
              f"reader latency p99 {p99:.1f} ms, max {worst:.1f} ms")

        s = reader.request({"op": "status"})["socket"]
        check(s["clients"] == stuck_n + 1, f"stuck clients were disconnected: {s}")
        # Now the stuck clients read.
        tallies = [Tally(c, sees_all=True, name=f"stuck {i}") for i, c in enumerate(stuck)]
        settle(tallies)
        s = reader.request({"op": "status"})["socket"]
        for ts in tallies:
            check(ts.client_overruns > 0 and ts.lost_before_reply > 0,
                  f"{ts.name} was not told of its loss before its pong: {ts.events} events, "
                  f"{ts.client_lost} told lost in all")
        total = sum(ts.client_lost for ts in tallies)
        check(s["events_lost"] >= total, f"broker counted {s['events_lost']} lost, "
              f"clients were told {total}")
        print(f"{stuck_n} stuck clients: each received about {tallies[0].events} events and was "
              f"told of {tallies[0].client_lost} lost in {tallies[0].client_overruns} overruns")


def test_kernel_overrun_reported_and_recovers():
    """A comm burst overflowing a tiny receive buffer: the loss is reported as
    kernel overruns, nothing is lost silently, the process table is right
    again, and events flow again after."""
    with Broker(args=["--receive-buffer=4K"]) as b:
        s = flood(b, 200000, min_kernel_lost=1)
        # The resync that follows a loss comes at most once a second after
        # the previous one (the seed at start): a flood that ends sooner is
        # followed by it later. Nothing announces it, so poll the status.
        c = b.client()
        deadline = time.monotonic() + 10
        while s["process_table"]["resyncs"] < 2:
            check(time.monotonic() < deadline, f"no resync after the overrun: {s['process_table']}")
            time.sleep(0.05)
            s = c.request({"op": "status"})


def test_burst_default_config():
    """A million comm events against the broker as configured by default:
    whatever the kernel emitted reached the clients or was reported to them
    as lost, the process table matches /proc after, and events flow."""
    with Broker() as b:
        flood(b, 1000000)


# --- hostile and churning clients ---------------------------------------------

# How much the broker's VmRSS may grow over 10,000 connections after a
# warm-up of 1,000 (the allocator keeps some free memory around): 1 MiB is
# about 100 bytes a connection, less than one leaked client (its struct,
# event source and buffers are several hundred bytes). ASan keeps freed
# memory in a quarantine (256 MiB by default): the test's broker gets a
# 4 MiB one, filled during the warm-up, and 4 MiB more of tolerance for
# ASan's allocator caches; LeakSanitizer at exit checks leaks there too.
RSS_TOLERANCE_KIB = 1024 + (4096 if SANITIZED else 0)
ASAN_SMALL_QUARANTINE = {"ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") +
                         ":quarantine_size_mb=4:thread_local_quarantine_size_kb=64"}


def _hostile(path, i):
    """Connection number i: one of the ways a client can misbehave. Returns
    the error code the broker must answer with, and the socket."""
    kind = i % 10
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    if kind == 0:
        return None, s                                  # gone before reading hello
    if kind == 1:
        s.sendall(b'{"op":"pi')                         # half a line, then gone
        return None, s
    if kind == 2:
        s.sendall(b'{"op":"ping"}')                     # last line without newline at EOF
        s.shutdown(socket.SHUT_WR)
        return "pong", s
    if kind == 3:
        s.sendall(b'{"op":"\xff\xfe\xc3("}\n')          # invalid UTF-8
        return "invalid-json", s
    if kind == 4:
        s.sendall(b"[" * 30000 + b"]" * 30000 + b"\n")  # deeply nested
        return "invalid-json", s
    if kind == 5:
        s.sendall(b'{"a":' * 10000 + b"1" + b"}" * 10000 + b"\n")
        return "invalid-json", s
    if kind == 6:
        s.sendall(b'{"op":"subscribe","threads":true}\n')  # events for a peer about to go
        return None, s
    if kind == 7:
        s.sendall(b'{"op":"ping"}\x00\n')               # a NUL byte
        return "invalid-json", s
    if kind == 8:
        s.sendall(b'{"op":"' + b"x" * 70000)            # too long, no newline
        return "line-too-long", s
    s.sendall(os.urandom(2048))                         # binary garbage, then gone
    return None, s


def _expect_reply(s, want):
    """Read until the reply after hello; check it is want (a type or an error code)."""
    buf = b""
    while buf.count(b"\n") < 2:
        data = s.recv(65536)
        check(data, f"connection closed before the reply {want}: {buf[:200]!r}")
        buf += data
    reply = json.loads(buf.split(b"\n")[1])
    got = reply.get("code") if reply["type"] == "error" else reply["type"]
    check(got == want and (reply["type"] != "error" or reply["message"]),
          f"expected {want}, got {reply}")


def _idle(b, control, pid, clients=1, timeout=15):
    """Wait until the broker serves only `clients` connections again; its
    VmRSS and open fds then."""
    deadline = time.monotonic() + timeout
    while True:
        n = control.request({"op": "status"})["socket"]["clients"]
        if n == clients:
            return vmrss_kib(pid), len(os.listdir(f"/proc/{pid}/fd"))
        check(time.monotonic() < deadline, f"{n} clients still connected after {timeout}s")
        time.sleep(0.02)  # connections closing: nothing to wait on but the count


def test_connection_churn_no_leak():
    """1,000 connections a second for 10 seconds, each misbehaving in its
    own way: every error is the precise one, the broker keeps serving, and
    its open fds and VmRSS return to their idle level."""
    warmup, cycles, rate = 1000, 10000, 1000
    with Broker(env=ASAN_SMALL_QUARANTINE if SANITIZED else None) as b:
        pid = b.proc.pid
        control = b.client()
        control.subscribe(events=["exit"], match={"ppid": ME})
        for i in range(warmup):
            want, s = _hostile(b.socket_path, i)
            if want:
                _expect_reply(s, want)
            s.close()
        rss0, fds0 = _idle(b, control, pid)
        bad0 = control.request({"op": "status"})["socket"]["bad_requests"]
        start = time.monotonic()
        errors = 0
        for i in range(cycles):
            due = start + i / rate
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)  # pacing the load itself, not synchronisation
            want, s = _hostile(b.socket_path, i)
            if want:
                _expect_reply(s, want)
                errors += want != "pong"
            s.close()
        took = time.monotonic() - start
        rss1, fds1 = _idle(b, control, pid)
        bad = control.request({"op": "status"})["socket"]["bad_requests"] - bad0
        print(f"{cycles} connections in {took:.1f}s ({cycles / took:.0f}/s); broker VmRSS "
              f"{rss0} KiB after warm-up, {rss1} KiB after (tolerance {RSS_TOLERANCE_KIB} KiB); "
              f"fds {fds0} -> {fds1}")
        # Half lines and garbage count too when the broker read them before
        # the peer was gone (a peer that closes with unread data resets).
        check(bad >= errors, f"broker counted {bad} bad requests, the clients got {errors} errors")
        check(fds1 == fds0, f"broker has {fds1} fds open, {fds0} before: a connection leaked")
        check(rss1 - rss0 <= RSS_TOLERANCE_KIB,
              f"broker VmRSS grew from {rss0} to {rss1} KiB over {cycles} connections")
        p = child("exit", 5)
        p.wait()
        control.events_until(of_pid(p.pid, "exit"), what="an exit after the churn")


def test_sigterm_removes_socket():
    b = Broker()
    b.start()
    try:
        c = b.client()
        c.subscribe()
        check(b.stop() == 0, f"exit code after SIGTERM: {b.proc.returncode}")
        check(not os.path.exists(b.socket_path), "socket left behind after SIGTERM")
        # Events queued before the stop may still come; then the end.
        for _ in range(100000):
            if c.read_line(5) is None:
                break
        else:
            fail("client not disconnected at shutdown")
        b.check_log_clean()
    finally:
        b.kill()


def test_sigterm_during_burst():
    """SIGTERM while the connector floods and clients are behind: exit 0
    promptly, the socket removed, no sanitizer report (Broker checks the
    log)."""
    with Broker() as b:
        stuck = b.client()
        stuck.subscribe(threads=True)  # never reads: a full queue at shutdown
        reader = b.client()
        reader.subscribe(events=["comm"], match={"comm": "burst-*"})
        p = child("comm-burst", 1000000)
        try:
            reader.events_until(lambda e: e["type"] == "comm", what="the burst")
            start = time.monotonic()
            rc = b.stop(timeout=10)
            took = time.monotonic() - start
            check(p.poll() is None, "the burst ended before SIGTERM: nothing was tested")
        finally:
            p.kill()
            p.wait()
        check(rc == 0, f"exit code {rc} after SIGTERM during a burst")
        check(not os.path.exists(b.socket_path), "socket left behind after SIGTERM")
        print(f"broker exited {took * 1000:.0f} ms after SIGTERM during a burst")


def test_second_broker_refuses_socket():
    with Broker() as b:
        r = subprocess.run([os.environ["PROCNOTIFYD"], "--socket", b.socket_path, "--dbus=none",
                            "--config", b.config_path], capture_output=True, text=True, timeout=20)
        check(r.returncode == 1 and "another procnotifyd" in r.stderr,
              f"second broker: rc {r.returncode}, stderr {r.stderr!r}")
        check_no_sanitizer_report(r.stderr, "the second broker's output")
        check(b.client().request({"op": "ping"})["type"] == "pong", "first broker disturbed")


def test_bad_config_exit_code():
    with tempfile.NamedTemporaryFile("w", suffix=".conf") as f:
        f.write("[Limits]\nMaxClients=lots\n")
        f.flush()
        r = subprocess.run([os.environ["PROCNOTIFYD"], "--config", f.name, "--dbus=none",
                            "--socket", "/tmp/pntest-never.sock"], capture_output=True, text=True,
                           timeout=20)
        check(r.returncode == 2 and "line 2" in r.stderr and "MaxClients" in r.stderr,
              f"rc {r.returncode}, stderr {r.stderr!r}")
        check_no_sanitizer_report(r.stderr)


def test_config_unreadable_refused():
    """A configuration path that opens but cannot be read (a directory:
    EISDIR) is an error, at start and at SIGHUP, not an empty file whose
    defaults silently replace what was meant."""
    d = tempfile.mkdtemp(prefix="pncore-confdir-")
    try:
        r = subprocess.run([os.environ["PROCNOTIFYD"], "--config", d, "--dbus=none",
                            "--socket", "/tmp/pntest-never.sock"], capture_output=True, text=True,
                           timeout=20)
        check(r.returncode == 2 and "cannot read" in r.stderr and "Is a directory" in r.stderr,
              f"a directory as --config: rc {r.returncode}, stderr {r.stderr!r}")
        check_no_sanitizer_report(r.stderr)
        with Broker(config="[Limits]\nMaxSubscriptions=1\n") as b:
            c = b.client()
            c.subscribe(events=["exit"])
            os.unlink(b.config_path)
            os.mkdir(b.config_path)
            b.signal(signal.SIGHUP)
            b.wait_notify("READY=1")
            check("keeping the running configuration" in b.log() and "Is a directory" in b.log(),
                  f"an unreadable file at SIGHUP not reported:\n{b.log()}")
            r = c.request({"op": "subscribe", "events": ["fork"]})
            check(r["type"] == "error" and r["code"] == "limit-exceeded",
                  f"MaxSubscriptions=1 lost at a reload of an unreadable file: {r}")
            os.rmdir(b.config_path)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_listen_fds_error_reported():
    """$LISTEN_FDS that cannot be read (here not a number) is logged, and
    the broker binds its socket itself: not silently taken as "no socket
    passed"."""
    with Broker(env={"LISTEN_FDS": "bogus"},
                prefix=["/bin/sh", "-c", 'LISTEN_PID=$$ exec "$@"', "sh"]) as b:
        check("Failed to read the sockets passed by the service manager" in b.log(),
              f"a bad $LISTEN_FDS not reported:\n{b.log()}")
        check(b.client().request({"op": "ping"})["type"] == "pong", "the broker's own socket")


def test_config_every_error_reported():
    """Every error in a file is reported in one run, each with its line, by
    the broker and by --check-config; comments after values are comments."""
    text = ("[Broker]\n"
            "LogLevel=debug        # a comment after a value\n"
            "  DBus=none           ; another, on an indented line\n"
            "[Limits]\n"
            "MaxClients=lots\n"
            "Bogus=1\n"
            "[Nope]\n"
            "x=y\n"
            "not a setting\n")
    with tempfile.NamedTemporaryFile("w", suffix=".conf") as f:
        f.write(text)
        f.flush()
        for extra in ([], ["--check-config"]):
            r = subprocess.run([os.environ["PROCNOTIFYD"], "--config", f.name, "--dbus=none",
                                "--socket", "/tmp/pntest-never.sock", *extra],
                               capture_output=True, text=True, timeout=20)
            check(r.returncode == 2, f"{extra}: rc {r.returncode}, stderr {r.stderr!r}")
            for line, what in ((5, "MaxClients"), (6, "Bogus"), (7, "[Nope]"),
                               (9, "not a setting")):
                check(re.search(rf"{re.escape(f.name)}: line {line}: .*{re.escape(what)}",
                                r.stderr), f"{extra}: line {line} ({what}) not reported: {r.stderr!r}")
            check(not re.search(r"line [1238]:", r.stderr),
                  f"{extra}: a good line reported as bad: {r.stderr!r}")
            check_no_sanitizer_report(r.stderr)
        # The same file without its errors is valid, comments and all.
        f.seek(0)
        f.truncate()
        f.write("".join(text.splitlines(True)[:4]))
        f.flush()
        r = subprocess.run([os.environ["PROCNOTIFYD"], "--config", f.name, "--check-config"],
                           capture_output=True, text=True, timeout=20)
        check(r.returncode == 0 and "valid" in r.stdout, f"good file: rc {r.returncode}, {r!r}")


def _doc_config_blocks():
    """Every INI block in README.md (```ini fences) and in the man pages
    (.nf ... .fi), as (where, first section, text)."""
    src = os.environ["PROCNOTIFY_SOURCE"]
    blocks = []
    with open(os.path.join(src, "README.md")) as f:
        readme = f.read()
    for m in re.finditer(r"^```ini\n(.*?)^```", readme, re.M | re.S):
        where = f"README.md:{readme.count(chr(10), 0, m.start()) + 2}"
        blocks.append((where, m.group(1)))
    man = os.environ["PROCNOTIFY_MAN"]
    for name in sorted(os.listdir(man)):
        if not re.search(r"\.[0-9]$", name):
            continue
        with open(os.path.join(man, name)) as f:
            page = f.read()
        for m in re.finditer(r"^\.nf\n(.*?)^\.fi", page, re.M | re.S):
            lines = [l for l in m.group(1).splitlines() if not re.match(r"\.(RS|RE)\b", l)]
            text = "\n".join(lines) + "\n"
            text = text.replace("\\-", "-").replace("\\e", "\\").replace("\\(em", "—")
            where = f"man/{name}:{page.count(chr(10), 0, m.start()) + 2}"
            blocks.append((where, text))
    out = []
    for where, text in blocks:
        first = re.search(r"^\s*\[([A-Za-z]+)\]", text, re.M)
        if first:
            out.append((where, first.group(1), text))
    return out


def test_config_blocks_in_docs_valid():
    """Each configuration block the README and the man pages show is valid
    as written: broker blocks by procnotifyd --check-config, hook files by
    procnotify-hooks --check (drop-ins for systemd units are not ours)."""
    blocks = _doc_config_blocks()
    broker_sections = {"Broker", "Connector", "Limits", "Run", "Policy"}
    checked = {"broker": 0, "hooks": 0}
    made_netns = []
    try:
        _check_doc_blocks(blocks, broker_sections, checked, made_netns)
    finally:
        for name in made_netns:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
    check(checked["broker"] >= 2 and checked["hooks"] >= 2,
          f"too few blocks found in the docs (the extraction is broken?): {checked}")


def _check_doc_blocks(blocks, broker_sections, checked, made_netns):
    with tempfile.TemporaryDirectory() as tmp:
        for i, (where, first, text) in enumerate(blocks):
            if first in broker_sections:
                path = os.path.join(tmp, f"{i}.conf")
                with open(path, "w") as f:
                    f.write(text)
                r = subprocess.run([os.environ["PROCNOTIFYD"], "--config", path, "--check-config"],
                                   capture_output=True, text=True, timeout=20)
                check(r.returncode == 0, f"{where}: the broker refuses this block "
                                         f"(rc {r.returncode}): {r.stderr.strip()}\n{text}")
                checked["broker"] += 1
            elif first == "Match":
                d = os.path.join(tmp, f"hooks{i}")
                os.mkdir(d)
                # The shipped examples, from the source tree rather than
                # where an installation puts them (by a short path: hook
                # lines are limited to 198 characters).
                ex = os.path.join(tmp, "ex")
                if not os.path.exists(ex):
                    os.symlink(os.environ["HOOK_EXAMPLES"], ex)
                text = re.sub(r"/\S*/share/procnotify/examples/", ex + "/", text)
                # A user an example names (frr) is the reader's: here, nobody.
                text = re.sub(r"^User=\S+", "User=nobody", text, flags=re.M)
                # So is a command of the reader's own (promote-standby):
                # /bin/true stands for one that is not on this machine.
                text = re.sub(r"^(Command=)(/\S+)",
                              lambda m: m.group(1) + (m.group(2) if os.path.exists(m.group(2)) else "/bin/true"),
                              text, flags=re.M)
                # And a network namespace it names: made for the check when
                # this machine has none of that name.
                for name in re.findall(r"^Netns=(\S+)", text, flags=re.M):
                    if not name.isdigit() and not os.path.exists(f"/run/netns/{name}"):
                        subprocess.run(["ip", "netns", "add", name], check=True)
                        made_netns.append(name)
                with open(os.path.join(d, "doc.conf"), "w") as f:
                    f.write(text)
                r = subprocess.run([os.environ["PROCNOTIFY_HOOKS"], "--hooks-dir", d, "--check"],
                                   capture_output=True, text=True, timeout=20)
                check(r.returncode == 0, f"{where}: procnotify-hooks refuses this hook file "
                                         f"(rc {r.returncode}): {r.stderr.strip()}\n{text}")
                checked["hooks"] += 1


def test_sighup_reload():
    with Broker(config="[Limits]\nMaxSubscriptions=1\n") as b:
        c = b.client()
        c.subscribe(events=["exit"])
        r = c.request({"op": "subscribe", "events": ["fork"]})
        check(r["type"] == "error" and r["code"] == "limit-exceeded", f"second subscribe: {r}")
        with open(b.config_path, "w") as f:
            f.write("[Limits]\nMaxSubscriptions=2\n")
        b.signal(signal.SIGHUP)
        b.wait_notify("READY=1")
        r = c.request({"op": "subscribe", "events": ["fork"]})
        check(r["type"] == "subscribed", f"after reload: {r}")
        # A broken file is refused and the running configuration kept.
        with open(b.config_path, "w") as f:
            f.write("[Limits]\nMaxSubscriptions=zero\n")
        b.signal(signal.SIGHUP)
        b.wait_notify("READY=1")
        check("keeping the running configuration" in b.log(), "bad reload not reported")
        check(c.request({"op": "ping"})["type"] == "pong", "broker not serving after a bad reload")


def _fifo_openers(pid):
    """The broker's threads blocked opening a FIFO (for writing's partner)."""
    found = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/wchan") as f:
                if f.read().strip() == "wait_for_partner":
                    found.append(int(tid))
        except OSError:
            continue
    return found


def test_sighup_group_lookup_off_loop():
    """Group= at SIGHUP is looked up through NSS, which may block (LDAP,
    sssd): off the loop, so that events flow meanwhile. The broker runs in a
    mount namespace of its own where /etc/nsswitch.conf is a FIFO: glibc
    reads a configuration that is not a regular file again at every lookup,
    and its open blocks until the test writes the file. While a lookup
    blocks, a subscriber gets an exit within 1 s; the group applies when the
    answer comes; a second SIGHUP meanwhile is not lost (its group wins, the
    first's answer is dropped); SIGTERM while a lookup blocks exits cleanly."""
    tmp = tempfile.mkdtemp(prefix="pncore-group-")
    fifo = os.path.join(tmp, "nsswitch.conf")
    os.mkfifo(fifo, 0o644)
    with open("/etc/nsswitch.conf") as f:
        nsswitch = f.read()
    with open("/etc/group") as f:
        groups = "\n" + f.read()
    check("\nadm:x:4:" in groups and "\nusers:x:100:" in groups,
          "this test needs the groups adm (4) and users (100) in /etc/group, as Debian has them")

    def answer():
        # The lookup's open of the FIFO returns once a writer opens it; it
        # reads to the end, so it is done with it when this returns.
        with open(fifo, "w") as f:
            f.write(nsswitch)

    with Broker(prefix=["unshare", "-m", "--propagation", "private"]) as b:
        c = b.client()
        c.subscribe(events=["exit"], match={"ppid": ME})
        subprocess.run(["nsenter", "-t", str(b.proc.pid), "-m", "mount", "--bind", fifo,
                        "/etc/nsswitch.conf"], check=True, timeout=10)
        with open(b.config_path, "w") as f:
            f.write("[Policy]\nGroup=adm\n")
        b.signal(signal.SIGHUP)
        wait_until(lambda: _fifo_openers(b.proc.pid), "the broker's NSS lookup of adm to block")
        p = child("exit", 7)
        start = time.monotonic()
        e = None
        try:
            # Skipping the exits of nsenter and mount, children of the test too.
            while e is None or e.get("tgid") != p.pid:
                e = c.next_event(timeout=max(0.01, start + 1.0 - time.monotonic()))
        except AssertionError:
            e = None
        took = time.monotonic() - start
        p.wait()
        check(e is not None and e.get("tgid") == p.pid and e.get("exit_code") == 7,
              f"no exit event within 1 s while the Group= lookup was pending (got {e} after {took:.2f} s): "
              "the event loop waits for NSS")
        b.wait_notify("READY=1")

        # A second SIGHUP (Group=users) while adm's lookup still blocks.
        with open(b.config_path, "w") as f:
            f.write("[Policy]\nGroup=users\n")
        b.signal(signal.SIGHUP)
        b.wait_notify("READY=1")
        first = _fifo_openers(b.proc.pid)
        check(len(first) == 1, f"{len(first)} lookups blocked after a second SIGHUP: one at a time")
        answer()  # adm's answer, no longer configured: dropped; users' lookup starts
        wait_until(lambda: [t for t in _fifo_openers(b.proc.pid) if t not in first],
                   "the lookup of users after the second SIGHUP")
        answer()
        wait_until(lambda: 'Group "users" (gid 100) sees every process.' in b.log(),
                   "the second reload's group to apply")
        check('Group "adm"' not in b.log(), f"the first reload's answer applied after the second:\n{b.log()}")
        check(c.request({"op": "ping"})["type"] == "pong", "broker not serving after the lookups")

        # SIGTERM while a lookup blocks: a clean exit, nothing leaked.
        with open(b.config_path, "w") as f:
            f.write("[Policy]\nGroup=adm\n")
        b.signal(signal.SIGHUP)
        wait_until(lambda: _fifo_openers(b.proc.pid), "the third lookup to block")
        rc = b.stop()
        check(rc == 0, f"broker exited with {rc} on SIGTERM while a group lookup blocked")
    shutil.rmtree(tmp, ignore_errors=True)


def test_uid_change_and_policy():
    """A child that becomes nobody: a uid event; an unprivileged client sees
    only its own uid's processes."""
    nobody = 65534
    with Broker() as b:
        root = b.client()
        root.subscribe(events=["uid", "exit"], match={"ppid": ME})
        p = child("setuid", nobody, 6)
        seen = root.events_until(of_pid(p.pid, "exit"), what="exit of the setuid child")
        p.wait()
        uids = [e for e in seen if e["tgid"] == p.pid and e["type"] == "uid"]
        check(uids and uids[0]["ruid"] == nobody and uids[0]["euid"] == nobody, f"uid events: {uids}")
        check(seen[-1]["uid"] == nobody, f"exit uid: {seen[-1]}")

        # An unprivileged client: connect as nobody in a child process.
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                os.setresuid(nobody, nobody, nobody)
                c = Client(b.socket_path)
                ok = c.hello["sees_all"] is False and c.hello["uid"] == nobody
                c.subscribe(events=["exit"], match={"ppid": ME})
                os.write(w, b"s" if ok else b"h")
                # Expect the nobody-owned child's exit and no root child's.
                e = c.next_event(20)
                os.write(w, b"%d %d\n" % (e.get("tgid", 0), e.get("uid", -1)))
            except Exception as ex:  # report instead of dying silently
                os.write(w, b"x" + str(ex).encode()[:200])
            os._exit(0)
        os.close(w)
        first = os.read(r, 1)
        check(first == b"s", f"unprivileged client hello/subscribe failed: {first}")
        rootkid = child("exit", 1)
        rootkid.wait()
        # Make sure the broker handled the root child's exit before the next.
        root.events_until(of_pid(rootkid.pid, "exit"), what="root child's exit")
        userkid = child("setuid", nobody, 2)
        userkid.wait()
        out = os.read(r, 200).decode()
        os.waitpid(pid, 0)
        check(out.strip() == f"{userkid.pid} {nobody}",
              f"unprivileged client got {out!r}, expected the nobody child {userkid.pid}")


def test_client_limit_per_user():
    with Broker(config="[Limits]\nMaxClients=3\n") as b:
        clients = [b.client() for _ in range(3)]
        extra = Client(b.socket_path, read_hello=False)
        r = extra.read_reply()
        check(r and r["type"] == "error" and r["code"] == "limit-exceeded", f"4th client: {r}")
        check(extra.read_line(5) is None, "refused client not closed")
        check(clients[0].request({"op": "ping"})["type"] == "pong", "existing client disturbed")


def _traced_by(pid, tracer):
    with open(f"/proc/{pid}/status") as f:
        return re.search(r"^TracerPid:\s+(\d+)$", f.read(), re.M).group(1) == str(tracer)


def test_connector_setup_never_waits():
    """Subscribing to the connector and finding out whether the kernel
    filters events (Linux 6.6) never waits for the kernel: the acks are
    queued within send(). Before, the probe waited up to 250 ms for an ack
    that kernels before 6.6 never send, at start and at every reset of the
    socket, with the event loop blocked. strace of the broker: no poll()
    with a timeout; the status says what the kernel can do."""
    import shutil
    import pntest
    strace = shutil.which("strace")
    check(strace, "strace is not installed (dev.sh installs it)")
    tmp = tempfile.mkdtemp(prefix="pncore-strace-")
    trace = os.path.join(tmp, "trace")
    wrapper = os.path.join(tmp, "procnotifyd")
    with open(wrapper, "w") as f:
        f.write(f"#!/bin/sh\nexec {strace} -f -qq -e trace=poll,ppoll -o {trace} {pntest.PROCNOTIFYD} \"$@\"\n")
    os.chmod(wrapper, 0o755)
    saved, pntest.PROCNOTIFYD = pntest.PROCNOTIFYD, wrapper
    traced = None
    try:
        with Broker(env={"ASAN_OPTIONS": "detect_leaks=0"}) as b:
            # The broker is strace's child: SIGTERM to strace would only
            # detach it. It is stopped directly, whatever happens below.
            with open(f"/proc/{b.proc.pid}/task/{b.proc.pid}/children") as f:
                traced = int(f.read().split()[0])
            s = b.client().request({"op": "status"})
            filt = s["kernel_features"]["connector_filter"]
            check(filt is kernel_at_least(6, 6), f"connector filter {filt} on Linux {os.uname().release}")
            os.kill(traced, signal.SIGTERM)
            check(b.proc.wait(20) == 0, "the traced broker did not exit cleanly")
            traced = None
        with open(trace) as f:
            text = f.read()
        waits = [line for line in text.splitlines() if re.search(r"poll\(.*, [1-9][0-9]*\)", line) or
                 re.search(r"ppoll\(.*\{tv_sec=\d+, tv_nsec=\d+\}", line) and "tv_sec=0, tv_nsec=0" not in line]
        check(not waits, f"the broker waited in poll():\n" + "\n".join(waits[:5]))
    finally:
        if traced:
            try:
                os.kill(traced, signal.SIGKILL)
            except ProcessLookupError:
                pass
        pntest.PROCNOTIFYD = saved
        shutil.rmtree(tmp, ignore_errors=True)


def test_connector_loss_is_fatal():
    """A connector socket the watchdog cannot re-create is a lost kernel
    source: the broker says "Failed to re-create the proc connector
    socket: …" and exits non-zero, so that systemd restarts it
    (Restart=on-failure). Before, it ignored the failure and served
    silence, reading SO_MEMINFO from the closed descriptor. Real faults,
    injected by strace into the running broker: every recvmmsg() fails with
    EAGAIN (the socket is stuck: the kernel drops for it, the broker
    receives nothing), so the watchdog re-creates it, and socket() fails
    with EMFILE as when the descriptors are exhausted."""
    import shutil
    strace = shutil.which("strace")
    check(strace, "strace is not installed (dev.sh installs it)")
    # LeakSanitizer cannot stop a process another tracer holds.
    with Broker(args=["--receive-buffer=4K"], env={"ASAN_OPTIONS": "detect_leaks=0"}) as b:
        tracer = subprocess.Popen([strace, "-qq", "-o", "/dev/null", "-p", str(b.proc.pid),
                                   "-e", "trace=recvmmsg,socket",
                                   "-e", "inject=recvmmsg:error=EAGAIN",
                                   "-e", "inject=socket:error=EMFILE"],
                                  stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        try:
            wait_until(lambda: _traced_by(b.proc.pid, tracer.pid), "strace attached to the broker")
            burst = None
            deadline = time.monotonic() + (60 if SANITIZED else 20)
            # Comm bursts until the broker gives up; each is plenty to
            # overflow a 4 KiB buffer.
            while b.proc.poll() is None and time.monotonic() < deadline:
                if burst is None or burst.poll() is not None:
                    burst = child("comm-burst", 20000)
                time.sleep(0.05)
            if burst:
                burst.kill()
                burst.wait()
            rc = b.proc.poll()
            if rc is None:
                tracer.kill()
                tracer.wait()
                st = b.client().request({"op": "status"})["connector"]
                fail(f"the broker still runs after its connector socket could not be re-created "
                     f"(connector: {st}):\n{b.log()}")
        finally:
            if tracer.poll() is None:
                tracer.kill()
            tracer.wait()
        check(rc != 0, f"the broker exited with {rc} after losing the connector")
        check(re.search(r"Failed to re-create the proc connector socket: Too many open files", b.log()),
              f"no \"Failed to re-create …\" in the log:\n{b.log()}")


if __name__ == "__main__":
    run({name[5:]: fn for name, fn in globals().items() if name.startswith("test_")})
