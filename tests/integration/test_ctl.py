#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""procnotifyctl and libprocnotify (which it is built on) against the real
daemon. Run one test: `test_ctl.py NAME`."""
import json
import os
import re
import select
import signal
import socket
import subprocess
import tempfile
import time

from pntest import (PN_CHILD, Broker, Client, Dance, check, check_no_sanitizer_report, child,
                    exec_then_release, fail, of_pid, release, run, wait_until)

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


def wait_subscriptions(b, n, timeout=10, at_least=True):
    """Wait until the broker counts n subscriptions or more (exactly n
    with at_least False): procnotifyctl has no readiness signal of its own,
    and the broker's status is the observable."""
    c = b.client()

    def count():
        s = c.request({"op": "status"})["socket"]["subscriptions"]
        return s >= n if at_least else s == n
    wait_until(count, f"{n} subscriptions at the broker", timeout)
    c.close()


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


def test_refused_filter_exits_2():
    """A filter the broker refuses is the user's mistake, not the broker
    being down: 2, as a usage error, so that a failover loop on 3 stops."""
    with Broker() as b:
        r = ctl(b, "monitor", "--events=bogus")
        check(r.returncode == 2 and "invalid-filter" in r.stderr and "bogus" in r.stderr,
              f"rc {r.returncode}, stderr {r.stderr!r}")
        r = ctl(b, "wait", "--comm=bfdd", "--cgroup=relative/path", "--timeout=5")
        check(r.returncode == 2 and "invalid-filter" in r.stderr, f"cgroup: rc {r.returncode}, {r.stderr!r}")


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
        check(r.stdout.count("\n") == 1, f"--json is one line: {r.stdout[:200]!r}")
        r = ctl(b, "status", "--json=pretty")
        check(r.returncode == 0 and json.loads(r.stdout)["type"] == "status" and "\n  " in r.stdout,
              f"pretty status: {r.stdout[:200]}")
        # The table: a heading, one lost total with its parts, each section
        # in human units.
        r = ctl(b, "status")
        out = r.stdout
        check(r.returncode == 0 and out.startswith("procnotifyd ") and ", up " in out.splitlines()[0],
              f"table heading: {out[:200]!r}")
        check(re.search(r"^Lost events: 0$", out, re.M) and re.search(r"^  connector\.lost +0$", out, re.M)
              and re.search(r"^  socket\.events_lost +0$", out, re.M), f"lost total: {out!r}")
        check(re.search(r"^Connector:$", out, re.M) and re.search(r"^  receive_buffer +[0-9.]+ MiB$", out, re.M),
              f"connector section: {out!r}")
        check(re.search(r"^Kernel features: connector_filter (yes|no), pidfd (yes|no)", out, re.M),
              f"kernel features: {out!r}")
        check("{" not in out, f"JSON in the table: {out!r}")


def test_status_openmetrics():
    """--format=openmetrics is valid for Prometheus (promtool, as
    node_exporter's textfile collector reads it) and carries the figures."""
    with Broker() as b:
        c = b.client()
        c.subscribe(events=["exit"], match={"ppid": [ME]})
        p = child("exit", 0)
        p.wait()
        # Counted once published: wait for it.
        c.events_until(of_pid(p.pid, "exit"), what="the child's exit")
        r = ctl(b, "status", "--format=openmetrics")
        check(r.returncode == 0, f"rc {r.returncode}: {r.stderr}")
        lint = subprocess.run(["promtool", "check", "metrics"], input=r.stdout, capture_output=True,
                              text=True, timeout=30)
        check(lint.returncode == 0, f"promtool: {lint.stdout}{lint.stderr}\n{r.stdout}")
        m = re.search(r'^procnotify_events_total\{type="exit"\} ([0-9]+)$', r.stdout, re.M)
        check(m and int(m.group(1)) >= 1, f"exit count: {r.stdout}")
        check(re.search(r"^# TYPE procnotify_socket_clients gauge$", r.stdout, re.M) and
              re.search(r"^procnotify_connector_lost_total 0$", r.stdout, re.M) and
              re.search(r'^procnotify_build_info\{version="[^"]+",instance_id="[0-9a-f]{32}"\} 1$',
                        r.stdout, re.M), f"families: {r.stdout}")
        r = ctl(b, "monitor", "--format=openmetrics")
        check(r.returncode == 2 and "for status" in r.stderr, f"monitor: rc {r.returncode}, {r.stderr!r}")


def test_monitor_count_and_closed_pipe():
    """monitor -n N ends after N events; monitor | head -1 ends soon after
    head did, even when no event comes; --no-legend prints no header."""
    with Broker() as b:
        r = subprocess.run(f"{CTL} --socket {b.socket_path} monitor --events=exit --pid=999999999 "
                           "| head -1", shell=True, capture_output=True, text=True, timeout=10)
        check(r.returncode == 0 and r.stdout.startswith("TIME "), f"head -1: {r!r}")
        m = start_ctl(b, "monitor", "--events=exit", f"--ppid={ME}", "-n", "2", "--no-legend", "--json")
        wait_subscriptions(b, 1)
        kids = [child("exit", 5), child("exit", 6), child("exit", 7)]
        for k in kids:
            k.wait()
        out, err = m.communicate(timeout=20)
        lines = out.decode().splitlines()
        check(m.returncode == 0 and len(lines) == 2 and all(json.loads(l)["type"] == "exit" for l in lines),
              f"-n 2: rc {m.returncode}, {lines}, {err!r}")
        m = start_ctl(b, "monitor", "--events=exit", f"--ppid={ME}", "-n", "1", "--no-legend")
        wait_subscriptions(b, 1, at_least=False)
        k = child("exit", 9)
        k.wait()
        out, _ = m.communicate(timeout=20)
        rows = out.decode().splitlines()
        check(m.returncode == 0 and len(rows) == 1 and f" {k.pid} " in rows[0] and "exit code 9" in rows[0],
              f"--no-legend: rc {m.returncode}, {rows}")
        for bad in (["-n", "0"], ["--count=x"], ["--json=long"]):
            r = ctl(b, "monitor", *bad)
            check(r.returncode == 2, f"{bad}: rc {r.returncode}")


def test_interrupt_exits_130():
    """Ctrl-C (SIGINT) and SIGTERM end every waiting command with 130."""
    with Broker() as b:
        kid = child("exit", 0, hold=True)
        for n, args in enumerate((["monitor"], ["wait", "--pid=999999999"],
                                  ["watch", str(kid.pid)], ["monitor", "--json"])):
            sig = signal.SIGINT if n % 2 == 0 else signal.SIGTERM
            m = start_ctl(b, *args)
            wait_subscriptions(b, 1, at_least=False)
            m.send_signal(sig)
            _, err = m.communicate(timeout=20)
            check(m.returncode == 130, f"{args} after {sig.name}: rc {m.returncode}, {err!r}")
            wait_subscriptions(b, 0, at_least=False)
        release(kid)


def test_bash_completion():
    """The shipped completion completes commands, options and values."""
    script = os.path.join(os.environ["PROCNOTIFY_SOURCE"], "clients", "completion", "procnotifyctl")
    cases = {"procnotifyctl mon": "monitor",
             "procnotifyctl monitor --events=exit,pre": "exit,predump",
             "procnotifyctl status --format=open": "openmetrics",
             "procnotifyctl monitor --no-l": "--no-legend"}
    for line, want in cases.items():
        r = subprocess.run(["bash", "-c", f'source "$0"; COMP_LINE="$1"; COMP_POINT=${{#1}}; '
                            '_procnotifyctl; echo "${COMPREPLY[*]}"', script, line],
                           capture_output=True, text=True, timeout=30)
        check(r.returncode == 0 and r.stdout.split() == [want], f"{line!r}: {r.stdout!r} {r.stderr!r}")


def row_pid(line):
    """The PID column of a monitor table row (TIME EVENT PID ...)."""
    cols = line.split()
    return int(cols[2]) if len(cols) > 2 and cols[2].isdigit() else None


class Lost(Exception):
    """The monitor showed an overrun: what the test waits for may be lost."""


def read_row(proc, skip_pids, timeout=10):
    """The next table row of monitor proc that is not about skip_pids. An
    overrun row (shown whatever the filters) raises Lost: on a loaded host
    the kernel may drop connector messages, and says so."""
    deadline = time.monotonic() + timeout
    while True:
        line = read_line(proc, max(deadline - time.monotonic(), 0.01))
        if line.split()[1:2] == ["overrun"]:
            raise Lost(line)
        if row_pid(line) not in skip_pids:
            return line


def test_monitor_table_and_json():
    with Broker() as b:
        js = start_ctl(b, "monitor", "--json", "--events=exit", f"--ppid={ME}")
        table = None
        try:
            wait_subscriptions(b, 1)
            table = start_ctl(b, "monitor", "--events=exec,predump,exit", f"--ppid={ME}")
            wait_subscriptions(b, 2)
            check(read_line(table).split()[:2] == ["TIME", "EVENT"], "no table header")
            # Both monitors are our children, so their own execs match the
            # table's filter, and the broker may read them from the kernel
            # after the table subscribed (the connector lags under load):
            # monitor does not hide them (procnotifyctl(1)); they are not
            # what this test is about.
            skip = {js.pid, table.pid}
            losses = []
            for _ in range(3):
                p = child("segv", "nocore", hold=True)
                try:
                    # The exec is reported by the table monitor; then let the child crash.
                    line = read_row(table, skip)
                    check(f" exec " in line and row_pid(line) == p.pid and "pn-child" in line,
                          f"exec row: {line!r}")
                    p.stdin.close()
                    p.wait()
                    pre, ex = read_row(table, skip), read_row(table, skip)
                    break
                except Lost as e:
                    # A kernel loss, reported: try again with a new child.
                    losses.append(str(e))
                    p.stdin.close()
                    p.wait()
                    skip.add(p.pid)
            else:
                fail(f"an overrun in each of 3 tries: {losses}")
            check("predump" in pre and row_pid(pre) == p.pid, f"predump row: {pre!r}")
            check(" exit " in ex and row_pid(ex) == p.pid and "killed by signal 11" in ex, f"exit row: {ex!r}")
            while True:
                ev = json.loads(read_line(js))
                if ev["type"] != "overrun" and ev.get("tgid") not in skip:
                    break
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


def test_client_async():
    """libprocnotify's non-blocking interface, from a poll loop of its own,
    against the real broker (cmocka, test-client-async.c)."""
    exe = os.environ["PN_TEST_CLIENT_ASYNC"]
    with Broker() as b:
        r = subprocess.run([exe], env=dict(os.environ, PROCNOTIFY_SOCKET=b.socket_path),
                           capture_output=True, text=True, timeout=60)
        check_no_sanitizer_report(r.stderr, "test-client-async's stderr")
        check(r.returncode == 0, f"test-client-async exited {r.returncode}:\n{r.stdout}{r.stderr}")


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


# Only the events the follow and signal tests need (see test_adopt.py).
FOLLOW_CONFIG = "[Connector]\nEvents=fork,exec,exit,predump\n"


def test_monitor_follow_three_fork_daemon():
    """monitor --follow=PID follows a daemon through a dance of three forks:
    as JSON, each "follow" report right behind the exit of the old main,
    ending at the main the daemon itself names; as a table (--follow PID,
    the value as the next word), a "follow" row for each move and one when
    the service ended."""
    with Broker(config=FOLLOW_CONFIG) as b:
        d = Dance(3, hold=True)
        js = table = None
        try:
            d.read_stage0()
            first = d.pid(0)
            js = start_ctl(b, "monitor", "--json", f"--follow={first}", "--events=fork,exit")
            table = start_ctl(b, "monitor", "--follow", str(first), "--events=exit")
            wait_subscriptions(b, 2)
            check(read_line(table).split()[:2] == ["TIME", "EVENT"], "no table header")
            d.go()
            d.read_all()
            stages = [d.pid(i) for i in range(4)]
            lines = []
            while sum(1 for e in lines if e["type"] == "follow") < 3:
                lines.append(json.loads(read_line(js)))
            moves = [(e["previous_main_pid"], e["main_pid"]) for e in lines if e["type"] == "follow"]
            want = [(stages[i], stages[i + 1]) for i in range(3)]
            check(moves == want, f"main moves: got {moves}, want {want}")
            check(moves[-1][1] == d.main, f"followed to {moves[-1][1]}, the daemon's main is {d.main}")
            for i, e in enumerate(lines):
                if e["type"] == "exit":
                    nxt = lines[i + 1]
                    check(nxt["type"] == "follow" and nxt["cause_seq"] == e["seq"],
                          f"exit of {e['tgid']} not followed by its report: {nxt}")
            forks = [e["tgid"] for e in lines if e["type"] == "fork"]
            check(forks == stages[1:], f"forks of the service {forks}, want {stages[1:]}")
            rows = [read_line(table).split(None, 6) for _ in range(6)]
            for k in range(3):
                ex, fo = rows[2 * k], rows[2 * k + 1]
                check(ex[1] == "exit" and ex[2] == str(stages[k]), f"exit row {k}: {ex}")
                check(fo[1] == "follow" and fo[2] == str(stages[k + 1]) and
                      f"main {stages[k]} exited; main now {stages[k + 1]}" in fo[-1],
                      f"follow row {k}: {fo}")
            d.release()
            ex, fo = read_line(table).split(None, 6), read_line(table).split(None, 6)
            check(ex[1] == "exit" and ex[2] == str(d.main), f"exit row of the main: {ex}")
            check(fo[1] == "follow" and fo[2] == "0" and "service ended" in fo[-1], f"end row: {fo}")
        finally:
            for m in (js, table):
                if m:
                    m.kill()
                    m.wait()
            d.close()


def test_wait_follow_waits_for_the_service():
    """wait --follow=PID --events=predump waits through the daemon's double
    fork for the crash of its real main (exit 0, the main's predump); when
    the followed service ends without one, wait exits 4 and prints the
    broker's "ended" report."""
    with Broker(config=FOLLOW_CONFIG) as b:
        for segv in (True, False):
            d = Dance(2, segv=segv, hold=True)
            try:
                d.read_stage0()
                w = start_ctl(b, "wait", f"--follow={d.pid(0)}", "--events=predump", "--timeout=30")
                wait_subscriptions(b, 1)
                d.go()
                d.read_all()
                d.release()
                out, err = w.communicate(timeout=30)
                check_no_sanitizer_report(err.decode(), "procnotifyctl wait's stderr")
                ev = json.loads(out)
                if segv:
                    check(w.returncode == 0 and ev["type"] == "predump" and ev["tgid"] == d.main,
                          f"segv: rc {w.returncode}, {ev} (main {d.main}), {err!r}")
                else:
                    check(w.returncode == 4 and ev["type"] == "follow" and ev["reason"] == "ended"
                          and ev["previous_main_pid"] == d.main,
                          f"end: rc {w.returncode}, {ev} (main {d.main}), {err!r}")
            finally:
                d.close()
            # The next wait must not count this one's subscription.
            wait_subscriptions(b, 0, at_least=False)


SUBSCRIBE_TRAP_SCRIPT = r"""
# Runs twice in one process: first it makes procnotifyctl subscribe this
# process (for a signal on the predump of anything below it), which then
# executes the script again with $PROCNOTIFY_FD set.
log=$1 go=$2
if [ -z "${PROCNOTIFY_FD:-}" ]; then
    exec "$CTL" --socket "$SOCK" subscribe --signal=USR1 --events=predump \
        --descendants-of=$$ -- bash "$0" "$@"
fi
trap 'echo usr1 >>"$log"' USR1
echo "pid $$ fd $PROCNOTIFY_FD" >>"$log"
# The child crashes once the test opened and closed the fifo.
"$PN_CHILD" --wait-stdin segv nocore <"$go" &
kid=$!
# bash runs a trap once its foreground command ended: the signal, sent
# before the broker reported the exit to anyone, is pending by then.
"$CTL" --socket "$SOCK" wait --events=exit --pid=$kid --timeout=30 >"$log.exit"
echo "wait $?" >>"$log"
wait $kid
echo "done $?" >>"$log"
"""


def test_subscribe_signal_trap_before_exit():
    """procnotifyctl subscribe --signal: a bash script that traps SIGUSR1
    becomes its own subscriber (procnotifyctl subscribes, then executes it
    in the same process) and is signalled when its crashing child is about
    to dump core, before the child's exit is reported."""
    with Broker(config=FOLLOW_CONFIG) as b, tempfile.TemporaryDirectory() as tmp:
        script, log, go = (os.path.join(tmp, n) for n in ("trap.sh", "log", "go"))
        with open(script, "w") as f:
            f.write(SUBSCRIBE_TRAP_SCRIPT)
        os.mkfifo(go)
        env = dict(os.environ, CTL=CTL, SOCK=b.socket_path, PN_CHILD=PN_CHILD)
        env.pop("PROCNOTIFY_FD", None)
        p = subprocess.Popen(["bash", script, log, go], env=env, stderr=subprocess.PIPE, text=True)
        try:
            # The script's signal subscription and its wait's.
            wait_subscriptions(b, 2, timeout=20)
            os.close(os.open(go, os.O_WRONLY))
            err = p.communicate(timeout=30)[1]
        finally:
            p.kill()
            p.wait()
        check_no_sanitizer_report(err, "the script's stderr")
        lines = open(log).read().split("\n")
        check(p.returncode == 0 and lines[-2:] == ["done 139", ""],
              f"script failed: rc {p.returncode}, {err!r}, log {lines}")
        check(lines[0].startswith(f"pid {p.pid} fd "), f"not the same process after exec: {lines}")
        check(lines[1:4] == ["usr1", "wait 0", "done 139"],
              f"SIGUSR1 did not come (once) before the exit was reported: {lines}")
        ev = json.loads(open(log + ".exit").read())
        check(ev["type"] == "exit" and ev["signal"] == 11, f"the exit reported: {ev}")


def test_signal_only_subscription_sends_no_lines():
    """"lines": false (what procnotifyctl subscribe asks for): the signal is
    sent for each matching event, and no line of it is queued."""
    with Broker(config=FOLLOW_CONFIG) as b:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR2])
        try:
            c = b.client()
            c.subscribe(events=["exit"], match={"ppid": ME}, signal="SIGUSR2", lines=False)
            watcher = b.client()
            watcher.subscribe(events=["exit"], match={"ppid": ME})
            p = child("exit", 3)
            p.wait()
            # The other client's line is queued after the signal was sent.
            watcher.events_until(of_pid(p.pid, "exit"), what="the exit on the other connection")
            si = signal.sigtimedwait([signal.SIGUSR2], 10)
            check(si and si.si_code == -1 and si.si_pid == b.proc.pid,  # SI_QUEUE, from the broker
                  f"SIGUSR2 from the broker: {si}")
            r = c.request({"op": "ping"})
            check(r["type"] == "pong" and not c.pending, f"lines came: {c.pending}, then {r}")
            for bad, why in (({"lines": False}, "needs a"), ({"lines": 0, "signal": "USR1"}, "true or false")):
                r = c.request({"op": "subscribe", "events": ["exit"], **bad})
                check(r["type"] == "error" and r["code"] == "invalid-request" and why in r["message"],
                      f"{bad}: {r}")
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)


def test_subscribe_and_follow_errors():
    """Clear errors: usage (exit 2), the broker's refusal (exit 3, its code
    shown), a command that cannot be executed (127, as a shell)."""
    with Broker() as b:
        for args, want in ((["subscribe", "--", "true"], "needs --signal"),
                           (["subscribe", "--signal=USR1"], "needs a command"),
                           (["subscribe", "--signal=USR1", "--json", "--", "true"], "prints nothing"),
                           (["monitor", "--follow=abc"], "process id"),
                           (["monitor", "--follow=1", "--follow=2"], "one service"),
                           (["monitor", "--follow=1", "--dbus"], "for the socket"),
                           (["monitor", "--follow=1", "--reconnect"], "for the socket"),
                           (["status", "--follow=1"], "no filters"),
                           # monitor and wait take --signal as a filter (issue 14)
                           (["watch", "--signal=USR1", "1"], "monitor, wait, kill and subscribe")):
            r = ctl(b, *args)
            check(r.returncode == 2 and want in r.stderr, f"{args}: rc {r.returncode}, {r.stderr!r}")
        r = ctl(b, "subscribe", "--signal=KILL", "--", "true")
        check(r.returncode == 2 and "invalid-request" in r.stderr and "SIGKILL" in r.stderr,
              f"KILL: rc {r.returncode}, {r.stderr!r}")
        r = ctl(b, "monitor", "--follow=999999999")
        check(r.returncode == 5 and "not-found" in r.stderr, f"gone pid: rc {r.returncode}, {r.stderr!r}")
        r = ctl(b, "subscribe", "--signal=USR1", "--pid=1", "--", "/nonexistent/cmd")
        check(r.returncode == 127 and "cannot execute /nonexistent/cmd" in r.stderr,
              f"exec failure: rc {r.returncode}, {r.stderr!r}")
        r = ctl(b, "subscribe", "--signal=USR1", "--pid=1", "--", "sh", "-c",
                'test -n "$PROCNOTIFY_FD" && test -S /proc/self/fd/$PROCNOTIFY_FD && echo ok')
        check(r.returncode == 0 and r.stdout == "ok\n", f"fd: rc {r.returncode}, {r.stdout!r} {r.stderr!r}")


if __name__ == "__main__":
    run({name[5:]: fn for name, fn in globals().items() if name.startswith("test_")})
