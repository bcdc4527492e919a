#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""procnotifyctl and libprocnotify (which it is built on) against the real
daemon. Run one test: `test_ctl.py NAME`."""
import json
import os
import select
import signal
import socket
import subprocess
import tempfile
import time

from pntest import (Broker, Client, check, check_no_sanitizer_report, child, exec_then_release,
                    fail, of_pid, run)

CTL = os.environ.get("PROCNOTIFYCTL", "procnotifyctl")
ME = os.getpid()


def ctl(b, *args, **kw):
    r = subprocess.run([CTL, "--socket", b.socket_path, *args], capture_output=True,
                       text=True, timeout=kw.pop("timeout", 30), **kw)
    check_no_sanitizer_report(r.stderr, f"procnotifyctl {' '.join(args)}'s stderr")
    return r


def start_ctl(b, *args):
    p = subprocess.Popen([CTL, "--socket", b.socket_path, *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    p.linebuf = b""
    return p


def wait_subscriptions(b, n, timeout=10):
    """Wait until the broker counts n subscriptions (procnotifyctl has no
    readiness signal of its own; the broker's status is the observable)."""
    c = b.client()
    deadline = time.monotonic() + timeout
    while True:
        s = c.request({"op": "status"})["socket"]["subscriptions"]
        if s >= n:
            c.close()
            return
        check(time.monotonic() < deadline, f"procnotifyctl did not subscribe within {timeout}s")
        time.sleep(0.02)


def read_line(proc, timeout=10):
    """The next line of a start_ctl() process's output. Reads the pipe's fd
    directly: select() on a buffered file misses lines already buffered."""
    deadline = time.monotonic() + timeout
    fd = proc.stdout.fileno()
    while b"\n" not in proc.linebuf:
        left = deadline - time.monotonic()
        r, _, _ = select.select([fd], [], [], max(left, 0))
        check(r, f"no output from procnotifyctl within {timeout}s")
        data = os.read(fd, 65536)
        check(data, "procnotifyctl closed its output")
        proc.linebuf += data
    line, _, proc.linebuf = proc.linebuf.partition(b"\n")
    return line.decode()


def test_wait_prints_event_and_exits_0():
    with Broker() as b:
        w = start_ctl(b, "wait", "--events=exit", f"--ppid={ME}", "--timeout=30")
        wait_subscriptions(b, 1)
        p = child("exit", 42)
        p.wait()
        out, err = w.communicate(timeout=30)
        out, err = out.decode(), err.decode()
        check(w.returncode == 0, f"wait exited {w.returncode}: {err}")
        ev = json.loads(out)
        check(ev["type"] == "exit" and ev["tgid"] == p.pid and ev["exit_code"] == 42, f"event: {ev}")


def test_wait_timeout_exits_1():
    with Broker() as b:
        r = ctl(b, "wait", "--events=exit", "--pid=999999", "--timeout=0.5")
        check(r.returncode == 1 and r.stdout == "", f"rc {r.returncode}, out {r.stdout!r}")


def test_refused_filter_exits_3():
    with Broker() as b:
        r = ctl(b, "monitor", "--events=bogus")
        check(r.returncode == 3 and "invalid-filter" in r.stderr and "bogus" in r.stderr,
              f"rc {r.returncode}, stderr {r.stderr!r}")


def test_usage_errors_exit_2():
    with Broker() as b:
        for args in (["frobnicate"], [], ["wait", "--pid=abc"], ["wait", "--timeout=-1"],
                     ["monitor", "--format=xml"]):
            r = ctl(b, *args)
            check(r.returncode == 2 and "procnotifyctl:" in r.stderr,
                  f"{args}: rc {r.returncode}, stderr {r.stderr!r}")


def test_unreachable_exits_3():
    r = subprocess.run([CTL, "--socket", "/tmp/pntest-no-such.sock", "status"], capture_output=True,
                       text=True, timeout=30)
    check_no_sanitizer_report(r.stderr, "procnotifyctl's stderr")
    check(r.returncode == 3 and "no broker is listening" in r.stderr, f"{r.returncode} {r.stderr!r}")


def test_status():
    with Broker() as b:
        r = ctl(b, "status", "--json")
        s = json.loads(r.stdout)
        check(r.returncode == 0 and s["type"] == "status" and "connector" in s, f"status: {r.stdout}")
        r = ctl(b, "status")
        check(r.returncode == 0 and '"kernel_features"' in r.stdout and "\n  " in r.stdout,
              f"pretty status: {r.stdout[:200]}")


def test_monitor_table_and_json():
    with Broker() as b:
        # The JSON monitor is our child too: it must have exec'd (and
        # subscribed) before the table monitor subscribes, or its exec is
        # the table's first row.
        js = start_ctl(b, "monitor", "--json", "--events=exit", f"--ppid={ME}")
        table = None
        try:
            wait_subscriptions(b, 1)
            table = start_ctl(b, "monitor", "--events=exec,predump,exit", f"--ppid={ME}")
            wait_subscriptions(b, 2)
            check(read_line(table).split()[:2] == ["TIME", "EVENT"], "no table header")
            p = child("segv", "nocore", hold=True)
            # The exec is reported by the table monitor; then let the child crash.
            line = read_line(table)
            check(f" exec " in line and str(p.pid) in line and "pn-child" in line, f"exec row: {line!r}")
            p.stdin.close()
            p.wait()
            pre, ex = read_line(table), read_line(table)
            check("predump" in pre and str(p.pid) in pre, f"predump row: {pre!r}")
            check("exit" in ex and "killed by signal 11" in ex, f"exit row: {ex!r}")
            ev = json.loads(read_line(js))
            check(ev["type"] == "exit" and ev["tgid"] == p.pid and ev["signal"] == 11, f"json: {ev}")
        finally:
            if table:
                table.kill()
            js.kill()


def _restart_and_resubscribe(b, restart):
    """monitor --reconnect across restart(): it reconnects by itself,
    reports the gap as an overrun "restart", and subscribes again with the
    same filter (an exit of a grandchild, not matching --ppid, is not shown).
    Returns the instance ids before and after."""
    m = start_ctl(b, "monitor", "--json", "--reconnect", "--events=exit", f"--ppid={ME}")
    try:
        wait_subscriptions(b, 1)
        first = b.client().hello["instance_id"]
        p = child("exit", 1)
        p.wait()
        ev = json.loads(read_line(m))
        check(ev["tgid"] == p.pid, f"first event not seen: {ev}")
        restart()
        wait_subscriptions(b, 1, timeout=20)
        second = b.client().hello["instance_id"]
        ev = json.loads(read_line(m, 20))
        check(ev["type"] == "overrun" and ev["where"] == "restart", f"no restart report: {ev}")
        # A grandchild (exit 5) does not match --ppid, its parent shell (exit 6) does.
        q = subprocess.Popen(["/bin/sh", "-c", f"{os.environ['PN_CHILD']} exit 5; exit 6"])
        q.wait()
        ev = json.loads(read_line(m, 20))
        check(ev["type"] == "exit" and ev["tgid"] == q.pid and ev["exit_code"] == 6,
              f"after restart (the filter should have been replayed): {ev}")
        return first, second
    finally:
        m.kill()
        m.wait()


def test_monitor_reconnects_after_restart():
    """libprocnotify's reconnect: the broker restarts on the same socket path
    (bound anew); monitor --reconnect reports the gap and keeps delivering."""
    with Broker() as b:
        def restart():
            check(b.stop() == 0, "broker did not stop cleanly")
            b.check_log_clean()
            b.start()
        first, second = _restart_and_resubscribe(b, restart)
        check(first != second, f"instance_id {first} did not change across a restart")


def test_socket_activation_keeps_socket():
    """As procnotifyd.socket does: a listening socket passed in (LISTEN_FDS),
    held by the parent across a broker restart. The broker serves it, does
    not remove it at exit, a client that connects while no broker runs is
    served by the next one, and monitor --reconnect carries on."""
    d = tempfile.mkdtemp(prefix="pntest-act-")
    os.chmod(d, 0o755)
    path = os.path.join(d, "events.sock")
    listen = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listen.bind(path)
    os.chmod(path, 0o666)
    listen.listen(128)
    with Broker(listen=listen) as b:
        b.socket_path = path  # what the passed socket serves (--socket is not bound)
        check("the socket systemd passed" in b.log(), f"activation fd not used:\n{b.log()}")
        waiting = []

        def restart():
            check(b.stop() == 0, "broker did not stop cleanly")
            b.check_log_clean()
            check(os.path.exists(path), "the activation socket was removed at exit")
            # No broker now: the connection waits in the backlog, as with systemd.
            waiting.append(Client(path, read_hello=False))
            b.start()

        first, second = _restart_and_resubscribe(b, restart)
        check(first != second, f"instance_id {first} did not change across a restart")
        h = waiting[0].read_reply(20)
        check(h and h["type"] == "hello" and h["instance_id"] == second,
              f"the client that connected during the restart got {h}")
        check(waiting[0].request({"op": "ping"})["type"] == "pong", "not served after the restart")
    check(os.path.exists(path), "the activation socket was removed at exit")
    listen.close()
    os.unlink(path)
    os.rmdir(d)


if __name__ == "__main__":
    run({name[5:]: fn for name, fn in globals().items() if name.startswith("test_")})
