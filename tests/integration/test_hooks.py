#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""procnotify-hooks against the real broker: real hook files, real hook
processes (hook-report.py tells the test what it got over a datagram
socket), real watched processes (copies of pn-child under a name of their
own, so that hooks of parallel tests never see each other's processes).
Run one test: `test_hooks.py NAME`."""
import json
import os
import pwd
import re
import resource
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid

from pntest import Broker, PN_CHILD, _libc, check, fail, of_pid, run, timed, wait_until
from pnusers import Users

HOOKS = os.environ.get("PROCNOTIFY_HOOKS", "procnotify-hooks")
EXAMPLES = os.environ.get("HOOK_EXAMPLES", "")
HERE = os.path.dirname(os.path.abspath(__file__))


class Scratch:
    """A world-readable scratch directory with the report socket, the hook
    script and a copy of pn-child named uniquely."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="pnhooks-")
        os.chmod(self.dir, 0o755)
        self.hooks_dir = os.path.join(self.dir, "hooks.d")
        os.mkdir(self.hooks_dir)
        os.chmod(self.hooks_dir, 0o755)
        self.report = os.path.join(self.dir, "report.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.report)
        os.chmod(self.report, 0o666)
        self.script = os.path.join(self.dir, "hook-report.py")
        shutil.copy(os.path.join(HERE, "hook-report.py"), self.script)
        os.chmod(self.script, 0o755)
        self.name = "pnh" + uuid.uuid4().hex[:8]  # comm: at most 15 bytes
        self.child = os.path.join(self.dir, self.name)
        shutil.copy(PN_CHILD, self.child)
        os.chmod(self.child, 0o755)

    def hook(self, name, text, mode=0o644):
        path = os.path.join(self.hooks_dir, name + ".conf")
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def report_hook(self, name, mode="ok", events="exit", extra_match="", extra_exec="", args=""):
        return self.hook(name, f"[Match]\nEvents={events}\nComm={self.name}\n{extra_match}"
                               f"[Exec]\nCommand={self.script} {self.report} {mode} {args}\n{extra_exec}")

    def next_report(self, timeout=15, what="a hook report"):
        r, _, _ = select.select([self.sock], [], [], timeout)
        check(r, f"{what} did not arrive within {timeout}s")
        return json.loads(self.sock.recv(1 << 20))

    def no_report_pending(self):
        r, _, _ = select.select([self.sock], [], [], 0)
        return not r

    def gate(self):
        """A socket that "block" hooks connect to; release() lets them go."""
        self.gate_path = os.path.join(self.dir, "gate.sock")
        self.gate_sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.gate_sock.bind(self.gate_path)
        os.chmod(self.gate_path, 0o666)
        self.gate_sock.listen(16)
        return self.gate_path

    def release(self, n=1, timeout=15):
        """Let n blocked hooks exit: each is let go once it has connected."""
        for _ in range(n):
            r, _, _ = select.select([self.gate_sock], [], [], timeout)
            check(r, f"no blocked hook connected within {timeout}s")
            conn, _ = self.gate_sock.accept()
            conn.close()

    def close(self):
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Runner:
    """procnotify-hooks on the test broker's socket, its log read by a
    thread so that tests wait for log lines as events."""

    def __init__(self, broker, scratch, user=None, args=(), preexec=None, ready=True):
        self.broker, self.scratch, self.user, self.args = broker, scratch, user, list(args)
        self.ready = ready  # wait for READY=1 on entering
        self.preexec = preexec
        self.lines = []
        self.cond = threading.Condition()
        self.proc = None
        self.notify_path = os.path.join(scratch.dir, "hooks-notify.sock")

    def _preexec(self):
        if self.preexec:
            self.preexec()
        if self.user:
            pw = pwd.getpwnam(self.user)
            os.setgroups([])
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)
        _libc.prctl(1, signal.SIGKILL)  # after setuid, which clears it

    def __enter__(self):
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(self.notify_path)
        os.chmod(self.notify_path, 0o666)
        env = dict(os.environ, NOTIFY_SOCKET=self.notify_path)
        env.pop("JOURNAL_STREAM", None)
        self.proc = subprocess.Popen([HOOKS, "--socket", self.broker.socket_path, "--hooks-dir",
                                      self.scratch.hooks_dir, "--log-level=debug"] + self.args,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, env=env, preexec_fn=self._preexec,
                                     cwd="/")
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        if self.ready:
            self.wait_ready()
        return self

    def _read(self):
        for raw in self.proc.stdout:
            with self.cond:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.lines.append(None)  # end of output
            self.cond.notify_all()

    def wait_ready(self, timeout=15):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            check(left > 0, f"procnotify-hooks did not send READY=1 within {timeout}s:\n{self.log()}")
            r, _, _ = select.select([self.notify], [], [], min(left, 0.2))
            if r and "READY=1" in self.notify.recv(4096).decode().split("\n"):
                return
            check(self.proc.poll() is None,
                  f"procnotify-hooks exited with {self.proc.returncode}:\n{self.log()}")

    def log(self):
        with self.cond:
            return "\n".join(l for l in self.lines if l is not None)

    def wait_log(self, pattern, timeout=15, count=1):
        """Wait until count log lines match pattern (a regex); return them."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                found = [l for l in self.lines if l is not None and rx.search(l)]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0 or (self.lines and self.lines[-1] is None):
                    fail(f"no {count} log lines matching {pattern!r} within {timeout}s; log:\n"
                         + "\n".join(l for l in self.lines if l is not None))
                self.cond.wait(left)

    def stop(self, timeout=15):
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            fail(f"procnotify-hooks did not stop within {timeout}s of SIGTERM")
        self.reader.join(5)
        return rc

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            if exc[0] is None:
                rc = self.stop()
                check(rc == 0, f"procnotify-hooks exited {rc} after SIGTERM:\n{self.log()}")
            else:
                self.proc.kill()
                self.proc.wait()
        self.notify.close()
        log = self.log()
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if marker in log and exc[0] is None:
                fail(f"sanitizer report in the runner's log:\n{log}")
        if exc[0] is not None:
            print("--- procnotify-hooks log ---\n" + log + "\n--- end ---")


def watched(scratch, *args, user=None, exe=None):
    """Start the uniquely named pn-child (or exe) with args, held until
    release(): the broker must have read its name (at exec) before it exits."""
    def pre():
        if user:
            pw = pwd.getpwnam(user)
            os.setgroups([])
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)
        _libc.prctl(1, signal.SIGKILL)
    return subprocess.Popen([exe or scratch.child, "--wait-stdin"] + [str(a) for a in args],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, preexec_fn=pre)


def run_watched(b, scratch, *args, user=None, exe=None):
    """Run a watched process to its end, released once the broker has
    reported its exec (so its exit carries its name). Returns it."""
    c = b.client()
    c.subscribe(events=["exec"], match={"comm": scratch.name})
    p = watched(scratch, *args, user=user, exe=exe)
    c.events_until(of_pid(p.pid, "exec"), 15, what=f"exec of {p.pid}")
    p.stdin.close()
    p.wait(15)
    c.close()
    return p


def pidfd_wait_gone(pid, timeout, what):
    """Wait (pidfd, no polling) until process pid has exited."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        r, _, _ = select.select([fd], [], [], timeout)
        check(r, f"{what} (pid {pid}) still runs {timeout}s later")
    finally:
        os.close(fd)


def now_ns():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


# --- tests -----------------------------------------------------------------

def test_env_and_stdin():
    s = Scratch()
    try:
        s.report_hook("report")
        with Broker() as b, Runner(b, s) as h:
            h.wait_log(r"Connected to the broker .* every process")
            p = run_watched(b, s, "exit", 42)
            rep = s.next_report(what="the hook for an exit with code 42")
            env = rep["env"]
            ev = json.loads(rep["stdin"])
            check(rep["stdin"].endswith("\n") and rep["stdin"].count("\n") == 1,
                  f"stdin is not one JSON line: {rep['stdin']!r}")
            check(ev["type"] == "exit" and ev["tgid"] == p.pid and ev["exit_code"] == 42, f"event: {ev}")
            want = {"PROCNOTIFY_TYPE": "exit", "PROCNOTIFY_PID": str(p.pid),
                    "PROCNOTIFY_TGID": str(p.pid), "PROCNOTIFY_EXIT_CODE": "42",
                    "PROCNOTIFY_SIGNAL": "0", "PROCNOTIFY_CORE_DUMPED": "false",
                    "PROCNOTIFY_COMM": s.name, "PROCNOTIFY_EXE": s.child, "PROCNOTIFY_UID": "0",
                    "PROCNOTIFY_PPID": str(os.getpid())}
            for k, v in want.items():
                check(env.get(k) == v, f"{k}={env.get(k)!r}, expected {v!r}")
            # Every field of the JSON line, and nothing else, named the same.
            fields = {"PROCNOTIFY_" + k.upper() for k in ev}
            got = {k for k in env if k.startswith("PROCNOTIFY_")}
            check(fields == got, f"variables {sorted(got ^ fields)} differ from the JSON fields")
            check(env["PROCNOTIFY_SEQ"] == str(ev["seq"]) and env["PROCNOTIFY_TS_NS"] == str(ev["ts_ns"]),
                  "seq or ts_ns differ between environment and stdin")
            check("NOTIFY_SOCKET" not in env, "NOTIFY_SOCKET passed on to the hook")
            check(rep["pgid"] == rep["pid"], f"hook not in a process group of its own: {rep}")
            check(rep["cwd"] == "/", f"hook runs in {rep['cwd']}")
            lat = (rep["start_ns"] - ev["ts_ns"]) / 1e9
            check(0 < lat < 5, f"hook started {lat:.3f}s after the event")

            p = run_watched(b, s, "segv", "nocore")
            rep = s.next_report(what="the hook for a SIGSEGV death")
            env = rep["env"]
            check(env["PROCNOTIFY_PID"] == str(p.pid) and env["PROCNOTIFY_SIGNAL"] == "11" and
                  env["PROCNOTIFY_EXIT_CODE"] == "139", f"crash environment: {env}")
            h.wait_log(rf"Hook report: pid {rep['pid']} \(exit seq \d+ of {p.pid} {s.name}\) exited "
                       r"with status 0 after [0-9.]+ ms\.")
    finally:
        s.close()


def test_timeout_kills_process_group():
    # The Python hook must report (start, read its event) within its
    # Timeout=: 1 s on a native machine, as many more as it is slower; the
    # hook must still be killed at about that timeout, not later.
    timeout_s = round(timed(1))
    s = Scratch()
    try:
        s.report_hook("hang", mode="hang", extra_exec=f"Timeout={timeout_s}s\n")
        with Broker() as b, Runner(b, s) as h:
            run_watched(b, s, "exit", 0)
            rep = s.next_report(timed(15), what="the hanging hook's report")
            t_report = time.monotonic()
            check(os.getpgid(rep["grandchild"]) == rep["pid"], "grandchild not in the hook's group")
            pidfd_wait_gone(rep["pid"], 15, "the hook process after its timeout")
            pidfd_wait_gone(rep["grandchild"], 15, "the hook's grandchild after the timeout")
            waited = time.monotonic() - t_report
            check(waited < timed(10), f"hook killed only {waited:.1f}s after its report")
            h.wait_log(rf"Hook hang: pid {rep['pid']} is still running at its timeout of {timeout_s}.000 s: "
                       r"killing its process group\.")
            line = h.wait_log(rf"Hook hang: pid {rep['pid']} .* was killed by signal 9 \(SIGKILL\) after "
                              r"[0-9.]+ ms, at its timeout\.")[0]
            ran_ms = float(re.search(r"after ([0-9.]+) ms", line).group(1))
            check(1000 * timeout_s <= ran_ms < timed(5000),
                  f"the hook ran {ran_ms} ms, not about its {timeout_s} s timeout")
    finally:
        s.close()


def test_failing_hook_does_not_stop_next():
    s = Scratch()
    try:
        s.report_hook("fails", mode="fail", extra_exec="MaxConcurrent=1\n")
        s.report_hook("other", mode="ok", args="other")
        with Broker() as b, Runner(b, s) as h:
            pids = [run_watched(b, s, "exit", i).pid for i in (1, 2)]
            got = {}
            for _ in range(4):
                rep = s.next_report(what="a report of the failing or the other hook")
                ev = json.loads(rep["stdin"])
                got.setdefault(rep["mode"], []).append(ev["tgid"])
            check(sorted(got.get("fail", [])) == sorted(pids), f"failing hook ran for {got.get('fail')}")
            check(sorted(got.get("ok", [])) == sorted(pids), f"other hook ran for {got.get('ok')}")
            h.wait_log(r"Hook fails: pid \d+ .* failed with exit status 3 after", count=2)
    finally:
        s.close()


def test_broken_file_reported():
    s = Scratch()
    try:
        s.report_hook("10-good")
        s.hook("20-bad", "[Match]\nEvents=exit\n[Exec]\nCommand=/bin/true\nTimeout=forever\n")
        s.hook("30-bad", "# a comment\n[Match]\nEvents=exit crash\n[Exec]\nCommand=/bin/true\n")
        s.hook("40-nocmd", "[Match]\nEvents=exit\n[Exec]\nTimeout=1s\n")
        s.hook("50-missing", "[Match]\nEvents=exit\n[Exec]\nCommand=/nonexistent/hook\n")
        s.hook("60-writable", "[Match]\nEvents=exit\n[Exec]\nCommand=/bin/true\n", mode=0o666)
        r = subprocess.run([HOOKS, "--check", "--hooks-dir", s.hooks_dir], capture_output=True,
                           text=True, timeout=30)
        check(r.returncode == 1, f"--check exited {r.returncode}: {r.stderr}")
        check("1 hooks valid, 5 files with errors" in r.stdout, f"--check said: {r.stdout}")
        expected = [
            rf"{s.hooks_dir}/20-bad.conf:5: invalid Timeout=: \"forever\"",
            rf"{s.hooks_dir}/30-bad.conf:3: invalid Events=: unknown event type \"crash\"",
            rf"{s.hooks_dir}/40-nocmd.conf: \[Exec\] Command= is missing",
            rf"{s.hooks_dir}/50-missing.conf:4: Command=: /nonexistent/hook: No such file or directory",
            rf"{s.hooks_dir}/60-writable.conf: owned by uid 0 with mode 0666",
        ]
        for e in expected:
            check(re.search(e, r.stderr), f"--check did not report {e!r}:\n{r.stderr}")
        with Broker() as b, Runner(b, s) as h:
            for e in expected:
                h.wait_log(e)
            h.wait_log(r"Loaded 1 hooks from .*some files have errors")
            p = run_watched(b, s, "exit", 0)
            rep = s.next_report(what="the good hook's report")
            check(json.loads(rep["stdin"])["tgid"] == p.pid, "the good hook ran for another process")
    finally:
        s.close()


USER = "pnhooktest"


def test_unprivileged_sees_own_processes():
    s = Scratch()
    subprocess.run(["userdel", USER], capture_output=True)
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER],
                   check=True, capture_output=True)
    try:
        uid = pwd.getpwnam(USER).pw_uid
        s.report_hook("crash", events="exit", extra_exec="MaxConcurrent=1\n")
        with Broker() as b, Runner(b, s, user=USER) as h:
            h.wait_log(r"it shows this runner only the processes of its own user")
            root_p = run_watched(b, s, "segv", "nocore")
            user_p = run_watched(b, s, "segv", "nocore", user=USER)
            rep = s.next_report(what=f"the hook for {USER}'s crashing process")
            ev = json.loads(rep["stdin"])
            # Events come in order, one hook at a time: had root's crash been
            # shown to the runner, its report would have come first.
            check(ev["tgid"] == user_p.pid, f"hook ran for {ev['tgid']}, not {USER}'s {user_p.pid} "
                                            f"(root's was {root_p.pid})")
            check(rep["uid"] == uid, f"hook ran as uid {rep['uid']}, not {uid}")
            check(ev["uid"] == uid and ev["signal"] == 11, f"event: {ev}")
            h.wait_log(rf"Hook crash: pid {rep['pid']} .* exited with status 0")
            check(s.no_report_pending(), "another report came, for root's process")
    finally:
        s.close()
        subprocess.run(["userdel", USER], capture_output=True)


def test_unprivileged_user_other_than_itself_refused():
    s = Scratch()
    subprocess.run(["userdel", USER + "2"], capture_output=True)
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER + "2"],
                   check=True, capture_output=True)
    try:
        s.hook("other-user", f"[Match]\nEvents=exit\n[Exec]\nCommand=/bin/true\nUser=root\n")
        r = subprocess.run(["setpriv", f"--reuid={USER}2", f"--regid={USER}2", "--clear-groups",
                            HOOKS, "--check", "--hooks-dir", s.hooks_dir],
                           capture_output=True, text=True, timeout=30)
        check(r.returncode == 1, f"--check as {USER}2 exited {r.returncode}: {r.stderr}")
        check(re.search(rf"other-user.conf:5: User=root: procnotify-hooks runs as uid \d+, not root", r.stderr),
              f"no error for User=root: {r.stderr}")
    finally:
        s.close()
        subprocess.run(["userdel", USER + "2"], capture_output=True)


def test_user_drops_privileges():
    s = Scratch()
    try:
        pw = pwd.getpwnam("nobody")
        s.report_hook("as-nobody", extra_exec="User=nobody\n")
        with Broker() as b, Runner(b, s):
            run_watched(b, s, "exit", 0)
            rep = s.next_report(what="the hook run as nobody")
            groups = sorted(set(os.getgrouplist("nobody", pw.pw_gid)))
            check(rep["uid"] == pw.pw_uid and rep["gid"] == pw.pw_gid, f"credentials: {rep}")
            check(sorted(set(rep["groups"])) == groups, f"groups {rep['groups']}, expected {groups}")
            check(rep["env"].get("USER") == "nobody" and rep["env"].get("HOME") == pw.pw_dir,
                  f"USER/HOME: {rep['env'].get('USER')} {rep['env'].get('HOME')}")
    finally:
        s.close()


def test_sighup_reload():
    s = Scratch()
    try:
        s.report_hook("a", args="before")
        with Broker() as b, Runner(b, s) as h:
            os.unlink(os.path.join(s.hooks_dir, "a.conf"))
            s.report_hook("b", args="after")
            h.proc.send_signal(signal.SIGHUP)
            h.wait_ready()
            h.wait_log(r"Reloaded .*: 1 hooks\.")
            c = b.client()
            st = c.request({"op": "status"})
            c.close()
            check(st["socket"]["subscriptions"] == 1,
                  f"the runner holds {st['socket']['subscriptions']} subscriptions after the reload, not 1")
            run_watched(b, s, "exit", 0)
            rep = s.next_report(what="the reloaded hook's report")
            check(rep["argv"] == ["after"], f"the old hook ran: {rep['argv']}")
    finally:
        s.close()


def test_reconnects_after_broker_restart():
    s = Scratch()
    try:
        s.report_hook("r")
        with Broker() as b, Runner(b, s) as h:
            h.wait_log(r"Connected to the broker")
            restart_broker_and_run_hook(b, s, h)
    finally:
        s.close()


def restart_broker_and_run_hook(b, s, h):
    """Restart the broker under the runner; once it reconnected, its hook
    runs for a new process."""
    b.stop()
    h.wait_log(r"Lost the connection to the broker")
    b.start()
    h.wait_log(r"Reconnected to the broker \(instance [0-9a-f]+\): events while disconnected")
    p = run_watched(b, s, "exit", 5)
    rep = s.next_report(what="the hook's report after the broker restarted")
    check(json.loads(rep["stdin"])["tgid"] == p.pid, "hook ran for another process")


def test_waits_for_broker():
    """Started before the broker, the runner is ready at once (so systemd
    does not wait), retries, and serves once the broker is there."""
    s = Scratch()
    b = Broker()
    try:
        s.report_hook("w")
        with Runner(b, s) as h:
            h.wait_log(r"Failed to connect to the broker at .*, retrying")
            with b:
                h.wait_log(r"Connected to the broker")
                p = run_watched(b, s, "exit", 7)
                rep = s.next_report(what="the hook's report once the broker came")
                check(json.loads(rep["stdin"])["tgid"] == p.pid, "hook ran for another process")
    finally:
        b.kill()
        s.close()


class SilentPeer:
    """A real listening socket in place of the broker that accepts
    connections and never answers: a broker hung before its hello."""

    def __init__(self, scratch):
        self.socket_path = os.path.join(scratch.dir, "silent.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.socket_path)
        self.sock.listen(16)
        self.conns = []

    def wait_connection(self, timeout=15):
        r, _, _ = select.select([self.sock], [], [], timeout)
        check(r, f"the runner did not connect to the silent peer within {timeout}s")
        self.conns.append(self.sock.accept()[0])

    def close(self):
        for c in self.conns:
            c.close()
        self.sock.close()


def test_silent_broker_blocks_nothing():
    """Connected to a peer that never sends its hello, the runner still
    serves its loop: SIGHUP reloads and SIGTERM stops at once, not after
    the library's wait for the hello."""
    s = Scratch()
    peer = SilentPeer(s)
    try:
        s.report_hook("quiet")
        with Runner(peer, s, ready=False) as h:
            peer.wait_connection()
            t0 = time.monotonic()
            h.proc.send_signal(signal.SIGHUP)
            h.wait_log(r"Reloaded .*: 1 hooks\.", timeout=2)
            rc = h.stop(timeout=2)
            check(rc == 0, f"procnotify-hooks exited {rc} after SIGTERM:\n{h.log()}")
            took = time.monotonic() - t0
            check(took < 2, f"reload and stop took {took:.2f}s while connecting")
    finally:
        peer.close()
        s.close()


def test_silent_broker_times_out_and_retries():
    """A peer that never answers is given up after the runner's connect
    timeout (10 s), and tried again: the runner is ready meanwhile."""
    s = Scratch()
    peer = SilentPeer(s)
    try:
        s.report_hook("quiet")
        with Runner(peer, s, ready=False) as h:
            peer.wait_connection()
            h.wait_ready(timeout=20)
            h.wait_log(r"The broker at .* did not answer within 10 s, retrying", timeout=1)
            peer.wait_connection(timeout=5)
    finally:
        peer.close()
        s.close()


STRACE = shutil.which("strace")
BLOCKING_CALLS = "poll,ppoll,select,pselect6,nanosleep,clock_nanosleep"


def test_loop_waits_only_in_epoll():
    """Across a broker restart (reconnect, hello, replayed subscriptions)
    and a hook run, the runner's thread makes no waiting call but the
    loop's epoll_wait (strace attached to it)."""
    s = Scratch()
    out = os.path.join(s.dir, "strace.out")
    try:
        s.report_hook("r")
        with Broker() as b, Runner(b, s) as h:
            st = subprocess.Popen([STRACE, "-qq", "-e", "trace=" + BLOCKING_CALLS, "-o", out, "-p",
                                   str(h.proc.pid)], stderr=subprocess.PIPE)
            try:
                wait_until(lambda: _traced(h.proc.pid),
                           "strace attached to the runner")
                restart_broker_and_run_hook(b, s, h)
                h.proc.send_signal(signal.SIGHUP)
                h.wait_ready()
            finally:
                st.send_signal(signal.SIGINT)
                st.wait(15)
        with open(out) as f:
            calls = [l for l in f.read().splitlines() if l.strip()]
        check(not calls, f"the runner waited outside its loop ({BLOCKING_CALLS}):\n" + "\n".join(calls[:20]))
    finally:
        s.close()


def _traced(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("TracerPid:"):
                return int(line.split()[1]) != 0
    return False


def test_queue_bounded_and_drops_logged():
    s = Scratch()
    gate = s.gate()
    try:
        s.report_hook("slow", mode="block", args=gate, extra_exec="MaxConcurrent=1\nMaxQueued=1\n")
        with Broker() as b, Runner(b, s) as h:
            pids = [run_watched(b, s, "exit", i).pid for i in (1, 2, 3)]
            first = json.loads(s.next_report(what="the first hook")["stdin"])["tgid"]
            check(first == pids[0], f"first hook ran for {first}, not {pids[0]}")
            h.wait_log(rf"Hook slow: dropped exit seq \d+ of {pids[2]} {s.name}: 1 running "
                       r"\(MaxConcurrent=1\) and 1 queued \(MaxQueued=1\)")
            check(s.no_report_pending(), "a second hook ran while the first one was running")
            s.release()  # the first ends: the queued one runs
            second = json.loads(s.next_report(what="the queued hook")["stdin"])["tgid"]
            check(second == pids[1], f"queued hook ran for {second}, not {pids[1]}")
            s.release()
            h.wait_log(r"Hook slow: pid \d+ .* exited with status 0", count=2)
            check(s.no_report_pending(), "the dropped event was run after all")
    finally:
        s.close()


def test_hanging_hook_delays_nothing():
    """A hook that hangs holds up neither another hook nor its own next
    instance: each runs within a bound while the first still runs."""
    s = Scratch()
    gate = s.gate()
    try:
        s.report_hook("10-stuck", mode="block", args=gate, extra_exec="MaxConcurrent=2\n")
        s.report_hook("20-quick", mode="ok")
        with Broker() as b, Runner(b, s) as h:
            p1 = run_watched(b, s, "exit", 1)
            got = [s.next_report(what="the first reports") for _ in range(2)]
            check(sorted(r["mode"] for r in got) == ["block", "ok"], f"reports: {got}")
            p2 = run_watched(b, s, "exit", 2)
            got = [s.next_report(what="reports while a hook hangs") for _ in range(2)]
            check(sorted(r["mode"] for r in got) == ["block", "ok"], f"reports: {got}")
            for r in got:
                check(json.loads(r["stdin"])["tgid"] == p2.pid, f"report for another process: {r}")
            s.release(2)
            h.wait_log(r"Hook 10-stuck: pid \d+ .* exited with status 0", count=2)
            check(p1.returncode == 1, "the first watched process did not exit 1")
    finally:
        s.close()


def test_broker_subscription_limit():
    """With fewer subscriptions allowed than hooks, the runner subscribes
    once for all and matches locally: every hook still runs."""
    s = Scratch()
    try:
        s.report_hook("a", args="a")
        s.report_hook("b", args="b", events="exit predump")
        with Broker(config="[Limits]\nMaxSubscriptions=1\n") as b, Runner(b, s) as h:
            h.wait_log(r"The broker allows fewer subscriptions than there are hooks")
            c = b.client()  # READY=1 came after subscribing: the count is final
            n = c.request({"op": "status"})["socket"]["subscriptions"]
            c.close()
            check(n == 1, f"the runner holds {n} subscriptions, not 1")
            run_watched(b, s, "exit", 0)
            got = sorted(s.next_report(what="both hooks")["argv"][0] for _ in range(2))
            check(got == ["a", "b"], f"hooks that ran: {got}")
    finally:
        s.close()


def test_sigterm_stops_running_hooks():
    s = Scratch()
    try:
        s.report_hook("hang", mode="hang", extra_exec="Timeout=1h\n")
        with Broker() as b:
            h = Runner(b, s)
            with h:
                run_watched(b, s, "exit", 0)
                # A Python hook's cold start: native speed, or timed() slower.
                rep = s.next_report(timed(15), what="the hanging hook's report")
                rc = h.stop()
                check(rc == 0, f"procnotify-hooks exited {rc} after SIGTERM:\n{h.log()}")
                pidfd_wait_gone(rep["pid"], 10, "the running hook after the runner's SIGTERM")
                h.wait_log(r"Hook hang: pid \d+ .* killed by signal 15 \(SIGTERM\)")
                h.wait_log(r"Stopped\.")
            pidfd_wait_gone(rep["grandchild"], 10, "the hook's grandchild after the runner's SIGTERM")
    finally:
        s.close()


def shipped_match(name, s):
    """The [Match] section of clients/examples/hooks.d/NAME.conf as shipped,
    fitted to the test machine: its /usr/lib/frr executables are the test's
    root-owned s.child, a Comm= is s.name, and Unit= is dropped (nothing
    runs in frr.service here: Exe= is what the tests check)."""
    with open(os.path.join(EXAMPLES, "hooks.d", name + ".conf")) as f:
        match = f.read().split("[Match]", 1)[1].split("[Exec]", 1)[0]
    lines = ["[Match]"]
    for line in match.splitlines():
        key = line.split("=", 1)[0].strip()
        if key == "Unit":
            continue
        lines.append({"Exe": f"Exe={s.child}", "Comm": f"Comm={s.name}"}.get(key, line))
    return "\n".join(lines) + "\n"


def impostor(b, s, users):
    """A user's own copy of pn-child under the watched process's name,
    crashed: what any user can do. Returns the process."""
    d = tempfile.mkdtemp(prefix="pnimpostor-")
    os.chmod(d, 0o755)
    exe = os.path.join(d, s.name)
    shutil.copy(s.child, exe)
    os.chown(exe, users.i.uid, users.i.gid)
    try:
        return run_watched(b, s, "segv", "nocore", user=users.i.name, exe=exe)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_example_restart_standby():
    """The shipped hook file starts one standby for the real crash, and
    none for a user's process of the same name."""
    s = Scratch()
    pidfile = os.path.join(s.dir, "standby.pid")
    standby = None
    try:
        s.hook("restart-standby",
               shipped_match("restart-standby", s) + "[Exec]\n"
               f"Command={EXAMPLES}/restart-standby --pidfile {pidfile} -- {s.script} {s.report} standby\n"
               "Timeout=10s\nMaxConcurrent=1\n")
        with Users("i") as users, Broker() as b, Runner(b, s) as h:
            run_watched(b, s, "exit", 0)  # a clean exit: no standby
            h.wait_log(r"restart-standby: .* exited cleanly: no standby started")
            fake = impostor(b, s, users)
            crashed = run_watched(b, s, "segv", "nocore")
            rep = s.next_report(what="the standby started by restart-standby")
            standby = rep["pid"]
            # The script records the standby after starting it, and then
            # says so: its log line, not the standby's report, is the sign.
            h.wait_log(rf"restart-standby: {s.name} \(pid {crashed.pid}\) is dying of a core-class signal: "
                       rf"started standby pid {standby}")
            with open(pidfile) as f:
                recorded = f.read().split()
            check(recorded[0] == str(standby) and recorded[1] == _start_time(standby),
                  f"the pid file does not name the standby {standby}: {recorded}")
            check(rep["sid"] == standby, "the standby is not in a session of its own")
            check(not [l for l in h.lines if l and f"(pid {fake.pid})" in l],
                  f"the hook ran for user {users.i.name}'s process {fake.pid} named {s.name}:\n"
                  + "\n".join(l for l in h.lines if l))
            # The exit after the predump, and a second crash: one standby.
            run_watched(b, s, "segv", "nocore")
            h.wait_log(rf"standby already running \(pid {standby}\)", count=3)
            check(s.no_report_pending(), "a second standby was started")
    finally:
        if standby:
            os.kill(standby, signal.SIGKILL)
        s.close()


def _start_time(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[19]


def test_example_restart_standby_second_crash():
    """Once the standby is the running daemon, its own crash fails over
    again: the recorded pid is then the dying process itself (at its
    predump, and at its exit before it is reaped), not a running standby.
    Three crashes in a row, a new standby each time."""
    s = Scratch()
    pidfile = os.path.join(s.dir, "standby.pid")
    standbys = []
    try:
        s.hook("restart-standby",
               f"[Match]\nEvents=predump exit\nComm={s.name}\n[Exec]\n"
               f"Command={EXAMPLES}/restart-standby --pidfile {pidfile} --\n"
               f"    /bin/sh -c \"ulimit -c 0; exec {s.child} pause\"\n"
               "Timeout=10s\nMaxConcurrent=1\n")
        with Broker() as b, Runner(b, s) as h:
            c = b.client()
            c.subscribe(events=["exec"], match={"comm": s.name})
            crashed = run_watched(b, s, "segv", "nocore").pid
            for round in range(3):
                seen = {crashed, *standbys}
                ev = c.events_until(lambda e: e["type"] == "exec" and e["tgid"] not in seen,
                                    what=f"standby {round + 1}'s exec")[-1]
                standby = ev["tgid"]
                standbys.append(standby)
                h.wait_log(rf"\(pid {crashed}\) is dying of a core-class signal: started standby pid "
                           rf"{standby}")
                # The crash's exit, after its predump, finds the new standby.
                h.wait_log(rf"\(pid {crashed}\) died of signal 11: standby already running \(pid {standby}\)")
                with open(pidfile) as f:
                    check(f.read().split()[0] == str(standby), "the pid file does not name the new standby")
                # The standby, now the daemon, crashes in its turn.
                os.kill(standby, signal.SIGSEGV)
                crashed = standby
            ev = c.events_until(lambda e: e["type"] == "exec" and e["tgid"] not in standbys,
                                what="the last standby's exec")[-1]
            standbys.append(ev["tgid"])
            h.wait_log(rf"\(pid {crashed}\) died of signal 11: standby already running \(pid {ev['tgid']}\)")
            check(h.log().count("started standby pid") == 4, f"standbys started:\n{h.log()}")
    finally:
        for pid in standbys:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        s.close()


def test_example_restart_standby_without_runtime_directory():
    """Run by hand (no RUNTIME_DIRECTORY, no --pidfile): the default
    directory is made, and a stale pid file, whose pid now names another
    process, does not count as a running standby."""
    tmp = tempfile.mkdtemp(prefix="pnstandby-")
    rundir = os.path.join(tmp, "run", "procnotify-hooks")
    marker = os.path.join(tmp, "started")
    env = {"PATH": os.environ["PATH"], "RUNTIME_DIRECTORY": rundir,
           "PROCNOTIFY_TYPE": "exit", "PROCNOTIFY_SIGNAL": "11", "PROCNOTIFY_PID": "1",
           "PROCNOTIFY_TGID": "1", "PROCNOTIFY_COMM": "bfdd"}
    cmd = [f"{EXAMPLES}/restart-standby", "--", "/bin/sh", "-c", f"echo $$ >> {marker}; exec sleep 60"]
    try:
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=20)
        check(r.returncode == 0 and "started standby pid" in r.stdout,
              f"rc {r.returncode}: {r.stdout!r} {r.stderr!r}")
        check(os.stat(rundir).st_mode & 0o777 == 0o700, "the directory is not private")
        # A stale record: our own pid, with a start time that is not ours.
        with open(os.path.join(rundir, "standby.pid"), "w") as f:
            f.write(f"{os.getpid()} 1\n")
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=20)
        check(r.returncode == 0 and "started standby pid" in r.stdout,
              f"a reused pid counted as the standby: {r.stdout!r} {r.stderr!r}")
        wait_until(lambda: os.path.exists(marker) and len(open(marker).read().split()) == 2,
                   "both standbys ran")
    finally:
        if os.path.exists(marker):
            for pid in open(marker).read().split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        shutil.rmtree(tmp, ignore_errors=True)


def _netns_inode(pid_or_name):
    path = (f"/proc/{pid_or_name}/ns/net" if isinstance(pid_or_name, int)
            else f"/run/netns/{pid_or_name}")
    return os.stat(path).st_ino


def test_recipe_netns_standby():
    """The shipped recipe for a daemon in a network namespace that holds a
    UDP session with a peer in another (the BFD case), run as shipped:
    clients/examples/hooks.d/netns-standby.conf with its "edit" values
    pointed at a daemon of the test's own (pn-child udp, under a name of
    its own), the shipped restart-standby, a root runner. The daemon
    crashes three times in a row: each time a standby comes up in the same
    namespace and the peer, in the other namespace, hears from it."""
    s = Scratch()
    tag = f"pn{os.getpid() % 100000}"
    ns_a, ns_b = f"{tag}a", f"{tag}b"
    port = 4784
    daemon = os.path.join(s.dir, f"{tag}udpd")
    shutil.copy(PN_CHILD, daemon)
    procs, started = [], []

    def ip(*args):
        r = subprocess.run(["ip", *args], capture_output=True, text=True)
        check(r.returncode == 0, f"ip {' '.join(args)}: {r.stderr}")

    def no_core():
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        _libc.prctl(1, signal.SIGKILL)

    try:
        # Two hosts of the test's own: the daemon's and its peer's.
        ip("netns", "add", ns_a)
        ip("netns", "add", ns_b)
        ip("link", "add", f"{tag}va", "netns", ns_a, "type", "veth", "peer", "name", f"{tag}vb",
           "netns", ns_b)
        ip("-n", ns_a, "addr", "add", "192.0.2.1/24", "dev", f"{tag}va")
        ip("-n", ns_b, "addr", "add", "192.0.2.2/24", "dev", f"{tag}vb")
        for ns, dev in ((ns_a, f"{tag}va"), (ns_b, f"{tag}vb")):
            ip("-n", ns, "link", "set", dev, "up")
            ip("-n", ns, "link", "set", "lo", "up")
        peer = subprocess.Popen(
            ["ip", "netns", "exec", ns_b, "python3", "-u", "-c",
             "import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
             f"s.bind(('192.0.2.2',{port}))\nprint('listening')\n"
             "while True: sys.stdout.write(s.recv(100).decode())"],
            stdout=subprocess.PIPE, text=True, preexec_fn=no_core)
        procs.append(peer)
        check(peer.stdout.readline().strip() == "listening", "the peer did not start")

        def heard_from(exclude, timeout=20):
            """The pid of the next daemon the peer hears from, other than exclude."""
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                r, _, _ = select.select([peer.stdout], [], [], max(deadline - time.monotonic(), 0))
                if not r:
                    break
                words = peer.stdout.readline().split()
                if len(words) == 2 and words[0] == "alive" and int(words[1]) not in exclude:
                    return int(words[1])
            fail(f"the peer heard from no new daemon within {timeout}s")

        # The recipe as shipped, its "edit" values set for this daemon.
        with open(os.path.join(EXAMPLES, "hooks.d", "netns-standby.conf")) as f:
            text = f.read()
        cmdline = f"{daemon} udp 192.0.2.2 {port}"
        for old, new in ((r"^Exe=\S+", f"Exe={daemon}"),
                         (r'^Cmdline="[^"]*"', f'Cmdline="{cmdline}*"'),
                         (r"^Netns=\S+", f"Netns={ns_a}"),
                         (r"/usr/local/share/procnotify/examples/", EXAMPLES + "/"),
                         (r"/run/procnotify-hooks-root/standby-blue.pid", os.path.join(s.dir, "standby.pid")),
                         (r"ip netns exec blue$", f"ip netns exec {ns_a}"),
                         (r"^    /usr/lib/frr/bfdd -N blue$", f"    {cmdline}")):
            text, n = re.subn(old, new, text, flags=re.M)
            check(n == 1, f"the shipped recipe has no line for {old!r}: the test and it differ")
        s.hook("netns-standby", text)

        with Broker() as b, Runner(b, s, preexec=no_core) as h:
            # A daemon is crashed only once the broker has seen its exec:
            # a process gone before that is nameless, and matches nothing.
            execs = b.client()
            execs.subscribe(events=["exec"], match={"exe": daemon})
            first = subprocess.Popen(["ip", "netns", "exec", ns_a, *cmdline.split()], preexec_fn=no_core)
            procs.append(first)
            current = heard_from(set())
            check(current == first.pid, f"the peer heard from {current}, not the daemon {first.pid}")
            execs.events_until(of_pid(current, "exec"), what="the daemon's exec")
            seen = {current}
            for n in range(3):
                os.kill(current, signal.SIGSEGV)
                standby = heard_from(seen)
                seen.add(standby)
                started.append(standby)
                execs.events_until(of_pid(standby, "exec"), what=f"standby {n + 1}'s exec")
                h.wait_log(rf"\(pid {current}\) is dying of a core-class signal: started standby pid {standby}")
                # The crash's exit, after its predump, finds the standby.
                h.wait_log(rf"\(pid {current}\) died of signal 11: standby already running \(pid {standby}\)")
                check(_netns_inode(standby) == _netns_inode(ns_a),
                      f"standby {n + 1} ({standby}) runs outside the namespace {ns_a}")
                with open(f"/proc/{standby}/cmdline") as f:
                    check(f.read().split("\0")[:4] == cmdline.split(), f"standby {n + 1}'s command line")
                current = standby
    finally:
        for pid in started:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for p in procs:
            p.kill()
            p.wait()
        subprocess.run(["ip", "netns", "del", ns_a], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns_b], capture_output=True)
        s.close()


def test_example_notify_peer():
    s = Scratch()
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    port = peer.getsockname()[1]
    flag = os.path.join(s.dir, "peer-notified")
    try:
        s.hook("notify-peer", shipped_match("notify-peer", s) + "[Exec]\n"
                              f"Command={EXAMPLES}/notify-peer udp:127.0.0.1:{port} file:{flag}\n"
                              "Timeout=2s\n")
        with Users("i") as users, Broker() as b, Runner(b, s) as h:
            fake = impostor(b, s, users)
            p = run_watched(b, s, "segv", "nocore")
            r, _, _ = select.select([peer], [], [], 15)
            check(r, "the peer got no datagram within 15s")
            line = peer.recv(65536).decode()
            word, host, event = line.rstrip("\n").split(" ", 2)
            check(word == "procnotify" and host == os.uname().nodename, f"peer got {line!r}")
            ev = json.loads(event)
            check(ev["tgid"] != fake.pid, f"the peer was told of user {users.i.name}'s process {fake.pid} "
                  f"named {s.name}: {ev}")
            check(ev["type"] == "predump" and ev["tgid"] == p.pid, f"peer got event {ev}")
            h.wait_log(r"Hook notify-peer: pid \d+ .* exited with status 0")
            with open(flag) as f:
                check(f.read() == line, "the flag file differs from what the peer got")
    finally:
        peer.close()
        s.close()


if __name__ == "__main__":
    run({name[5:]: fn for name, fn in globals().items() if name.startswith("test_")})
