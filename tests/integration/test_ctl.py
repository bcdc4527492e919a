#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""procnotifyctl and libprocnotify (which it is built on) against the real
daemon. Run one test: `test_ctl.py NAME`."""
import json
import os
import select
import signal
import subprocess
import time

from pntest import Broker, check, child, exec_then_release, fail, of_pid, run

CTL = os.environ.get("PROCNOTIFYCTL", "procnotifyctl")
ME = os.getpid()


def ctl(b, *args, **kw):
    return subprocess.run([CTL, "--socket", b.socket_path, *args], capture_output=True,
                          text=True, timeout=kw.pop("timeout", 30), **kw)


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


def test_monitor_reconnects_after_restart():
    """libprocnotify's reconnect: the broker restarts on the same socket;
    monitor --reconnect reports the gap and keeps delivering."""
    b = Broker()
    b.start()
    try:
        m = start_ctl(b, "monitor", "--json", "--reconnect", "--events=exit", f"--ppid={ME}")
        wait_subscriptions(b, 1)
        p = child("exit", 1)
        p.wait()
        check(json.loads(read_line(m))["tgid"] == p.pid, "first event not seen")
        check(b.stop() == 0, "broker did not stop cleanly")
        b.start()
        wait_subscriptions(b, 1, timeout=20)
        ev = json.loads(read_line(m, 20))
        check(ev["type"] == "overrun" and ev["where"] == "restart", f"no restart report: {ev}")
        q = child("exit", 2)
        q.wait()
        ev = json.loads(read_line(m, 20))
        check(ev["type"] == "exit" and ev["tgid"] == q.pid and ev["exit_code"] == 2,
              f"after restart: {ev}")
        m.kill()
    finally:
        b.kill()


if __name__ == "__main__":
    run({name[5:]: fn for name, fn in globals().items() if name.startswith("test_")})
