#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The core pipeline against the real kernel: connector -> process table ->
JSON socket. Run one test: `test_core.py NAME` (see pntest.run)."""
import os
import resource
import signal
import subprocess
import tempfile
import time

from pntest import (Broker, Client, Skip, check, child, exec_then_release, fail, of_pid,
                    release, run)

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
    with Broker() as b, tempfile.TemporaryDirectory() as cwd:
        pattern = open("/proc/sys/kernel/core_pattern").read().strip()
        if core and pattern.startswith("|"):
            raise Skip(f"core_pattern pipes to a program ({pattern}); a core file cannot be checked")
        c = b.client()
        c.subscribe(events=["exec", "predump", "exit"], match={"ppid": ME})
        p = child("segv", "core" if core else "nocore", cwd=cwd, hold=True)
        exec_then_release(c, p)
        seen = c.events_until(of_pid(p.pid, "exit"), what=f"exit of crashing {p.pid}")
        p.wait()
        mine = [e for e in seen if e["tgid"] == p.pid]
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


def test_two_clients_filters():
    """Two clients with different filters each get exactly what they asked for."""
    with Broker() as b:
        a = b.client()
        a.subscribe(events=["exit"], match={"ppid": ME})
        z = b.client()
        z.subscribe(events=["fork"], match={"ppid": ME})
        p1 = child("exit", 1)
        p2 = child("exit", 2)
        p1.wait()
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


def test_slow_client_overrun():
    """A client that never reads loses its own events, is told how many, and
    does not delay a client that reads."""
    n, rate = 20000, 20000
    with Broker(config="[Limits]\nClientQueue=64K\n") as b:
        stuck = b.client()
        stuck.subscribe(threads=True)  # everything: seq gaps must equal reported loss
        reader = b.client()
        # Only our own burst: other tests on the machine may run one too.
        reader.subscribe(events=["comm", "exit"], match={"comm": "burst-*", "ppid": ME})
        # Paced so that a Python reader keeps up; the stuck client's 64 KiB
        # queue and socket buffer still overflow many times over.
        p = child("comm-burst", n, rate)
        got = reader.events_until(of_pid(p.pid, "exit"), timeout=30, what="end of the burst")
        p.wait()
        comms = [e for e in got if e["type"] == "comm" and e["tgid"] == p.pid]
        check(len(comms) == n, f"reader got {len(comms)} of {n} comm events")
        check(not any(e["type"] == "overrun" for e in got), "the reading client saw an overrun")

        # Now the stuck client reads: a client overrun, and seq gaps equal to it.
        # The report comes once its queue has drained, i.e. after the reply
        # to a first ping: a second ping's reply follows it.
        stuck.request({"op": "ping"}, timeout=30)
        b_last = stuck.request({"op": "ping"}, timeout=30)["seq"]
        msgs = stuck.pending
        check(any(m["type"] == "overrun" and m["where"] == "client" for m in msgs),
              "the stuck client was not told about its loss")
        prev, lost_since = None, 0
        total_lost = 0
        for m in msgs:
            if m["type"] == "overrun" and m["where"] == "client":
                check(m["lost"] == m["last_seq"] - m["first_seq"] + 1 or m["lost"] <= m["last_seq"] - m["first_seq"] + 1,
                      f"overrun range inconsistent: {m}")
                lost_since += m["lost"]
                total_lost += m["lost"]
                continue
            if prev is not None:
                gap = m["seq"] - prev - 1
                check(gap == lost_since, f"seq gap {gap} before seq {m['seq']} but {lost_since} reported")
            prev, lost_since = m["seq"], 0
        check(total_lost > 0, "nothing was lost: the queue limit did not apply")
        check(b_last >= prev, "pong seq behind events")


def test_kernel_overrun_reported_and_recovers():
    """A comm burst overflowing a tiny receive buffer: the loss is reported as
    kernel overruns, nothing is lost silently, and events flow again after."""
    n = 200000
    with Broker(args=["--receive-buffer=4K"]) as b:
        c = b.client()
        c.subscribe(events=["comm"], match={"comm": "burst-*"})
        c.subscribe(events=["exit"], match={"ppid": ME})
        p = child("comm-burst", n)
        p.wait()
        got, kernel_lost, client_lost = 0, 0, 0
        deadline = time.monotonic() + 30
        # Every comm event of the burst either arrives or is counted lost, in
        # the kernel or in this client's queue (kernel losses are host-wide
        # counts, so they may cover other events too).
        while got + kernel_lost + client_lost < n:
            if time.monotonic() > deadline:
                fail(f"burst: received {got} + reported lost {kernel_lost}+{client_lost} < {n} "
                     "emitted: silent loss")
            e = c.next_event(max(deadline - time.monotonic(), 0.01))
            if e["type"] == "overrun" and e["where"] == "kernel":
                check(e["lost"] > 0 and e["seq"] > 0, f"overrun: {e}")
                kernel_lost += e["lost"]
            elif e["type"] == "overrun":
                check(e["where"] == "client" and e["lost"] > 0, f"overrun: {e}")
                client_lost += e["lost"]
            elif e["type"] == "comm" and e["tgid"] == p.pid:
                got += 1
        check(kernel_lost > 0, f"no kernel overrun with a 4K buffer ({got} of {n} received)")
        lost = kernel_lost
        # Events of a process started after the burst still arrive.
        q = child("exit", 7)
        q.wait()
        seen = c.events_until(of_pid(q.pid, "exit"), timeout=15, what="exit after the overrun")
        check(seen[-1]["exit_code"] == 7, f"exit after overrun: {seen[-1]}")
        # The table is resynced from /proc after the loss (at most once a
        # second, so maybe not yet): no event announces it, so poll status.
        deadline = time.monotonic() + 10
        while True:
            s = c.request({"op": "status"})
            if s["process_table"]["resyncs"] >= 2:
                break
            check(time.monotonic() < deadline, f"no resync after the overrun: {s['process_table']}")
            time.sleep(0.1)
        check(s["connector"]["lost"] >= lost, f"status after overrun: {s['connector']}")


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
    finally:
        b.kill()


def test_second_broker_refuses_socket():
    with Broker() as b:
        r = subprocess.run([os.environ["PROCNOTIFYD"], "--socket", b.socket_path, "--dbus=none",
                            "--config", b.config_path], capture_output=True, text=True, timeout=20)
        check(r.returncode == 1 and "another procnotifyd" in r.stderr,
              f"second broker: rc {r.returncode}, stderr {r.stderr!r}")
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


if __name__ == "__main__":
    run({name[5:]: fn for name, fn in globals().items() if name.startswith("test_")})
