# SPDX-License-Identifier: LGPL-2.1-or-later
"""Harness for procnotify's integration tests.

Everything here is real: the built procnotifyd on a private socket, the
kernel's proc connector, real child processes (tests/helpers/pn-child) and
plain socket clients speaking protocol v1. Waits are bounded and driven by
what the broker says (READY=1 on NOTIFY_SOCKET, "subscribed", events), never
by sleeping.

Each test file maps test names to functions; meson runs one name per test:
`python3 test_core.py exit_code`. Exit 0 passes, 1 fails, 77 skips.
"""
import ctypes
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

PROCNOTIFYD = os.environ.get("PROCNOTIFYD", "procnotifyd")
DBUS_POLICY = os.environ.get("DBUS_POLICY", "")  # dbus/org.procnotify.Broker1.conf
HERE = os.path.dirname(os.path.abspath(__file__))
PN_CHILD = os.environ.get("PN_CHILD", "pn-child")
PN_SIGWAIT = os.environ.get("PN_SIGWAIT", "pn-sigwait")
REPLY_TYPES = {"hello", "subscribed", "unsubscribed", "pong", "status", "error",
               "running", "children", "killed"}  # + replies of the supervisor ops

_libc = ctypes.CDLL(None, use_errno=True)


class Skip(Exception):
    """The test cannot run here (says what is missing)."""


def fail(msg):
    raise AssertionError(msg)


def kernel_at_least(major, minor):
    """Is the running kernel at least major.minor? What the broker can do
    depends on it (the connector filter: 6.6; SO_PEERPIDFD: 6.5; pidfd
    information: 6.15), and a test asserts what is documented for each."""
    release = os.uname().release.split("-")[0].split(".")
    return (int(release[0]), int(release[1])) >= (major, minor)


def wait_until(cond, what, timeout=10):
    """Poll a condition the kernel or the broker sends no event for (a
    /proc field, a status counter), for at most timeout seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            fail(f"{what} not within {timeout}s")
        time.sleep(0.01)


def check(cond, msg):
    if not cond:
        fail(msg)


def _die_with_parent():
    # PR_SET_PDEATHSIG: a crashed test never leaves a broker behind.
    _libc.prctl(1, signal.SIGKILL)


# What sanitizers print when they found something, or could not check:
# ASan, LSan (also at exit, after SIGTERM), UBSan, TSan.
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                     "LeakSanitizer has encountered a fatal error", "runtime error:",
                     "ERROR: UndefinedBehaviorSanitizer", "Sanitizer CHECK failed",
                     "WARNING: ThreadSanitizer")
# Set by meson when the build is sanitized (-Db_sanitize=...): memory
# figures are the sanitizer's then, not the broker's.
SANITIZED = os.environ.get("PN_SANITIZE", "none") not in ("", "none")
# How many times slower than a native machine this one runs everything: the
# kernel rig (tests/kernel/test-kernels.sh) exports PN_TIME_SCALE in its
# qemu guests (TCG emulates the CPU); 1 everywhere else. A bound about speed
# (a latency, a stall, a cold start), not about the kernel, is written for
# a native machine and passed through timed(); each still fails a broker
# that is wrong (see the bound's comment).
TIME_SCALE = max(1.0, float(os.environ.get("PN_TIME_SCALE") or 1))


def timed(bound):
    """A native-speed time bound (seconds or ms) scaled to this machine."""
    return bound * TIME_SCALE


def check_no_sanitizer_report(text, what="the broker's output"):
    for marker in SANITIZER_MARKERS:
        check(marker not in text, f"sanitizer report in {what} ({marker}):\n{text}")


def vmrss_kib(pid):
    """VmRSS of a process in KiB, from /proc/PID/status."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    fail(f"no VmRSS in /proc/{pid}/status")


def proc_tgids():
    """The processes /proc lists now, but zombies (ended, not reaped: no
    longer processes for the broker, whose table drops them at their exit)."""
    live = set()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if not (fields[0] == b"Z" and int(fields[17]) <= 1):
            live.add(int(d))
    return live


class Broker:
    """procnotifyd on a private socket with its own config file."""

    def __init__(self, config="", args=(), env=None, dbus=None, prefix=(), listen=None):
        self.dir = tempfile.mkdtemp(prefix="pntest-")
        os.chmod(self.dir, 0o755)  # unprivileged test clients connect too
        self.socket_path = os.path.join(self.dir, "events.sock")
        self.config_path = os.path.join(self.dir, "procnotify.conf")
        self.log_path = os.path.join(self.dir, "broker.log")
        with open(self.config_path, "w") as f:
            f.write(config)
        self.args = list(args)
        self.env = env or {}
        self.dbus = dbus  # a bus address, or None for --dbus=none
        self.prefix = list(prefix)  # a command that runs the broker (setpriv …)
        # A listening socket to pass as systemd does (LISTEN_FDS), or None:
        # the test holds it, so it outlives broker restarts.
        self.listen = listen
        self.proc = None
        self.notify = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        try:
            if exc[0] is None:
                # A clean stop lets sanitizers report leaks; any report fails the test.
                if self.proc and self.proc.poll() is None:
                    rc = self.stop()
                    check(rc == 0, f"broker exited with {rc} after SIGTERM (a sanitizer "
                          "exits non-zero when it found something at exit)")
                self.check_log_clean()
        except AssertionError:
            print("--- broker log ---\n" + self.log() + "--- end of broker log ---")
            raise
        finally:
            self.kill()
        if exc[0] is None:
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            print("--- broker log ---\n" + self.log() + "--- end of broker log ---")

    def check_log_clean(self):
        """Fail if the broker's log has a sanitizer report."""
        check_no_sanitizer_report(self.log(), "the broker log")

    def start(self, timeout=60 if SANITIZED else 30):
        notify_path = os.path.join(self.dir, "notify.sock")
        if os.path.exists(notify_path):
            os.unlink(notify_path)  # a restart of the same broker
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(notify_path)
        env = dict(os.environ, NOTIFY_SOCKET=notify_path, **self.env)
        env.pop("JOURNAL_STREAM", None)
        self.logf = open(self.log_path, "ab")
        cmd = self.prefix + [PROCNOTIFYD, "--socket", self.socket_path, f"--dbus={self.dbus or 'none'}",
               "--config", self.config_path] + self.args
        pass_fds = ()
        if self.listen is not None:
            # As systemd: the socket as fd 3, LISTEN_FDS=1, LISTEN_PID the
            # broker's own pid (the shell's, which exec keeps).
            fd = self.listen.fileno()
            pass_fds = (fd,)
            env["LISTEN_FDS"] = "1"
            move = "" if fd == 3 else f"exec 3<&{fd} {fd}<&-; "
            cmd = ["/bin/sh", "-c", move + 'LISTEN_PID=$$ exec "$@"', "sh"] + cmd
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.logf,
                                     stderr=self.logf, env=env, preexec_fn=_die_with_parent,
                                     pass_fds=pass_fds)
        self.wait_notify("READY=1", timeout)

    def wait_notify(self, word, timeout=15):
        """Wait for a sd_notify message containing word (e.g. READY=1)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                fail(f"broker did not send {word} within {timeout}s:\n{self.log()}")
            r, _, _ = select.select([self.notify], [], [], min(left, 0.2))
            if r:
                msg = self.notify.recv(4096).decode()
                if word in msg.split("\n"):
                    return
            elif self.proc.poll() is not None:
                fail(f"broker exited with {self.proc.returncode} before {word}:\n{self.log()}")

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=10):
        """SIGTERM and wait: returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            fail(f"broker did not exit within {timeout}s of SIGTERM")

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.notify:
            self.notify.close()
            self.notify = None

    def client(self, **kw):
        return Client(self.socket_path, **kw)


BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <!-- As Debian's system bus: closed by default, opened by service policies. -->
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Monitoring"/>
  </policy>
  <include>{policy}</include>
</busconfig>
"""


class Bus:
    """A private system-like bus: dbus-daemon or dbus-broker, with the
    broker's policy file from dbus/ included."""

    KINDS = ("dbus-daemon", "dbus-broker")

    def __init__(self, kind):
        check(kind in self.KINDS, f"unknown bus {kind}")
        check(DBUS_POLICY and os.path.exists(DBUS_POLICY), "DBUS_POLICY is not set")
        self.kind = kind
        self.dir = tempfile.mkdtemp(prefix="pnbus-")
        os.chmod(self.dir, 0o755)
        self.socket_path = os.path.join(self.dir, "bus.sock")
        self.address = f"unix:path={self.socket_path}"
        self.config = os.path.join(self.dir, "bus.conf")
        with open(self.config, "w") as f:
            f.write(BUS_CONFIG.format(socket=self.socket_path, policy=DBUS_POLICY))
        self.log_path = os.path.join(self.dir, "bus.log")
        self.proc = None
        self.paused = None

    def __enter__(self):
        if not shutil.which(self.kind):
            raise Skip(f"{self.kind} is not installed")
        self._start()
        return self

    def _start(self):
        log = open(self.log_path, "ab")
        if self.kind == "dbus-daemon":
            self.proc = subprocess.Popen(["dbus-daemon", "--config-file", self.config, "--nofork",
                                          "--print-address=1"], stdout=subprocess.PIPE,
                                         stderr=log, preexec_fn=_die_with_parent)
            r, _, _ = select.select([self.proc.stdout], [], [], 15)
            check(r and self.proc.stdout.readline().strip(), f"dbus-daemon did not start:\n{self.log()}")
        else:
            notify_path = os.path.join(self.dir, "notify.sock")
            if os.path.exists(notify_path):
                os.unlink(notify_path)  # started again (restart)
            notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            notify.bind(notify_path)
            self.proc = subprocess.Popen(["/usr/bin/python3", os.path.join(HERE, "dbus-broker-run.py"),
                                          self.socket_path, self.config],
                                         stdout=log, stderr=log, preexec_fn=_die_with_parent,
                                         env=dict(os.environ, NOTIFY_SOCKET=notify_path))
            deadline = time.monotonic() + 15
            ready = False
            while not ready and time.monotonic() < deadline and self.proc.poll() is None:
                r, _, _ = select.select([notify], [], [], 0.2)
                ready = bool(r) and b"READY=1" in notify.recv(4096)
            notify.close()
            check(ready, f"dbus-broker did not get ready:\n{self.log()}")

    def stop(self):
        """End the bus (SIGTERM), as a bus that is stopped or restarted."""
        self.resume()
        router = os.pidfd_open(self._router())
        self.proc.terminate()
        self.proc.wait(10)
        # dbus-broker is the launcher's child: gone only once it exited.
        try:
            signal.pidfd_send_signal(router, signal.SIGTERM)
        except ProcessLookupError:
            pass
        r, _, _ = select.select([router], [], [], 10)
        os.close(router)
        check(r, f"{self.kind} did not exit within 10s of SIGTERM")
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)

    def start(self):
        """Start it again after stop(), on the same address: a new bus."""
        self._start()

    def _router(self):
        """The process that reads and routes messages: dbus-daemon itself,
        or the dbus-broker that the wrapper's dbus-broker-launch started."""
        if self.kind == "dbus-daemon":
            return self.proc.pid
        kids = {}
        for d in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{d}/stat") as f:
                    comm, rest = f.read().rsplit(")", 1)
            except (OSError, ValueError):
                continue
            kids.setdefault(int(rest.split()[1]), []).append((int(d), comm.split("(", 1)[1]))
        todo = [self.proc.pid]
        while todo:
            for pid, comm in kids.get(todo.pop(), []):
                if comm == "dbus-broker":
                    return pid
                todo.append(pid)
        fail(f"no dbus-broker process below the launcher {self.proc.pid}")

    def pause(self):
        """Stop the bus (SIGSTOP): it reads nothing until resume(), as a bus
        too busy to keep up with a sender."""
        self.paused = self._router()
        os.kill(self.paused, signal.SIGSTOP)

    def resume(self):
        if self.paused:
            os.kill(self.paused, signal.SIGCONT)
            self.paused = None

    def __exit__(self, *exc):
        self.resume()
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if exc[0] is not None:
            print(f"--- {self.kind} log ---\n" + self.log())
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""


class Client:
    """A protocol v1 client on a plain socket."""

    def __init__(self, path, timeout=10, read_hello=True):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.buf = b""
        self.pending = []  # events read while waiting for a reply
        self.eof = False
        self.hello = self.read_reply(timeout) if read_hello else None
        if self.hello is not None:
            check(self.hello.get("type") == "hello", f"first line is not hello: {self.hello}")

    def close(self):
        self.sock.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, obj):
        self.send_raw((json.dumps(obj) + "\n").encode())

    def read_line(self, timeout):
        """The next line (bytes, without newline); None at EOF."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            if self.eof:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                fail(f"no line from the broker within {timeout}s")
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                continue
            try:
                data = self.sock.recv(1 << 20)
            except ConnectionResetError:
                data = b""
            if not data:
                self.eof = True
                if not self.buf:
                    return None
                line, self.buf = self.buf, b""
                return line
            self.buf += data
        line, _, self.buf = self.buf.partition(b"\n")
        return line

    def read_message(self, timeout=10):
        line = self.read_line(timeout)
        if line is None:
            return None
        try:
            return json.loads(line)
        except ValueError:
            fail(f"broker sent a line that is not JSON: {line[:200]!r}")

    def read_reply(self, timeout=10):
        """The next non-event message; events met on the way are kept."""
        deadline = time.monotonic() + timeout
        while True:
            m = self.read_message(max(deadline - time.monotonic(), 0.001))
            if m is None or m.get("type") in REPLY_TYPES:
                return m
            self.pending.append(m)

    def request(self, obj, timeout=10):
        self.send(obj)
        return self.read_reply(timeout)

    def subscribe(self, events=None, match=None, threads=None, **extra):
        req = {"op": "subscribe", **extra}
        if events is not None:
            req["events"] = events
        if match is not None:
            req["match"] = match
        if threads is not None:
            req["threads"] = threads
        r = self.request(req)
        check(r and r.get("type") == "subscribed", f"subscribe {req} failed: {r}")
        return r["id"]

    def next_event(self, timeout=10):
        if self.pending:
            return self.pending.pop(0)
        while True:
            m = self.read_message(timeout)
            if m is None:
                fail("broker closed the connection while an event was expected")
            if m.get("type") not in REPLY_TYPES:
                return m

    def events_until(self, pred, timeout=10, what="the expected event"):
        """Read events until pred(event) holds; return all read, the match last."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                tail = "\n".join(json.dumps(e) for e in seen[-10:])
                fail(f"{what} did not arrive within {timeout}s; last events:\n{tail}")
            try:
                e = self.next_event(left)
            except AssertionError:
                tail = "\n".join(json.dumps(e) for e in seen[-10:])
                fail(f"{what} did not arrive within {timeout}s; last events:\n{tail}")
            seen.append(e)
            if pred(e):
                return seen


class SeqAccount:
    """One subscriber's loss accounting, checked event by event as it
    arrives, on either sink: seq strictly increasing; for a subscriber that
    sees everything (sees_all: no filter, threads, policy shows all), every
    seq gap equal to the client losses reported in it (nothing lost
    silently), for any other no larger than the gap; kernel and client
    losses summed. Feed it every event with a seq (kernel overruns too,
    which have one) with event(), kernel overruns also with
    kernel_overrun(), and client overruns (no seq) with client_overrun()."""

    def __init__(self, name="client", sees_all=False):
        self.name, self.sees_all = name, sees_all
        self.prev_seq = None
        self.lost_since = 0     # client losses reported since prev_seq
        self.client_lost = 0
        self.kernel_lost = 0
        self.client_overruns = 0
        self.events = 0

    def event(self, seq):
        if self.prev_seq is not None:
            check(seq > self.prev_seq, f"{self.name}: seq {seq} after {self.prev_seq}")
            gap = seq - self.prev_seq - 1
            if self.sees_all:
                check(gap == self.lost_since, f"{self.name}: seq gap of {gap} before seq {seq}, "
                      f"but {self.lost_since} reported lost: silent loss")
            else:
                check(gap >= self.lost_since, f"{self.name}: {self.lost_since} reported lost in a "
                      f"gap of {gap} before seq {seq}")
        self.prev_seq, self.lost_since = seq, 0
        self.events += 1

    def kernel_overrun(self, lost):
        check(lost > 0, f"{self.name}: a kernel overrun of {lost}")
        self.kernel_lost += lost

    def client_overrun(self, lost, first_seq, last_seq):
        o = f"overrun of {lost}, seq {first_seq} to {last_seq}"
        check(lost > 0 and first_seq <= last_seq and lost <= last_seq - first_seq + 1,
              f"{self.name}: inconsistent {o}")
        check(self.prev_seq is None or first_seq > self.prev_seq,
              f"{self.name}: {o} covers seqs already delivered (last {self.prev_seq})")
        if self.sees_all:
            check(lost == last_seq - first_seq + 1,
                  f"{self.name}: sees everything, so its loss is the whole range: {o}")
        self.client_lost += lost
        self.lost_since += lost
        self.client_overruns += 1


def child(*args, cwd=None, hold=False, exe=None):
    """Start tests/helpers/pn-child (or exe, a copy of it under another
    name) with args (killed if the test dies).

    With hold, the child blocks before doing anything until release(): a
    process that exits within a millisecond may be gone before the broker
    reads its name at exec (it then reports it nameless, by design), so
    tests that check names hold the child until its exec was reported."""
    pre = ["--wait-stdin"] if hold else []
    return subprocess.Popen([exe or PN_CHILD] + pre + [str(a) for a in args], cwd=cwd,
                            stdin=subprocess.PIPE if hold else subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, preexec_fn=_die_with_parent)


class Dance:
    """pn-child's fork dance of a daemon (`pn-child daemon N`), optionally
    under `pn-child subreaper`: the pids of every stage, read from what the
    stages print. Stage N, the main, runs until release()."""

    def __init__(self, forks, subreaper=False, segv=False, hold=False):
        args = ["daemon", str(forks)] + (["segv"] if segv else []) + (["hold"] if hold else [])
        if subreaper:
            args = ["subreaper"] + args
        self.proc = subprocess.Popen([PN_CHILD] + args, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, preexec_fn=_die_with_parent)
        self.forks = forks
        self.subreaper = None
        self.stages = {}  # stage -> (pid, ppid as the stage saw it when it started)
        self.main = None
        self._buf = b""

    def read_until(self, done, timeout=10):
        """Read what the stages print until done() holds."""
        deadline = time.monotonic() + timeout
        while not done():
            left = deadline - time.monotonic()
            check(left > 0, f"fork dance did not finish within {timeout}s: {self.stages}")
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if not r:
                continue
            data = os.read(self.proc.stdout.fileno(), 4096)
            check(data, f"fork dance ended early: {self._buf!r} {self.stages}")
            self._buf += data
            while b"\n" in self._buf:
                line, _, self._buf = self._buf.partition(b"\n")
                w = line.decode().split()
                if w[0] == "stage":
                    self.stages[int(w[1])] = (int(w[2]), int(w[3]))
                elif w[0] == "main":
                    self.main = int(w[1])
                elif w[0] == "subreaper":
                    self.subreaper = int(w[1])
        return self

    def read_all(self, timeout=10):
        """Wait until every stage has started and the main said so."""
        return self.read_until(lambda: self.main is not None, timeout)

    def read_stage0(self, timeout=10):
        """Wait until stage 0 (held with hold=True) has started."""
        return self.read_until(lambda: 0 in self.stages, timeout)

    def go(self):
        """Let a held dance begin."""
        self.proc.stdin.write(b"g")
        self.proc.stdin.flush()

    def pid(self, stage):
        return self.stages[stage][0]

    def release(self):
        """Let the main exit (or crash)."""
        self.proc.stdin.close()

    def close(self):
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        self.proc.stdout.close()
        self.proc.wait()


def release(p):
    """Let a held child run its command."""
    p.stdin.close()


def exec_then_release(client, p, timeout=10):
    """Wait until client saw p's exec, then release p. Returns the events read."""
    seen = client.events_until(of_pid(p.pid, "exec"), timeout, what=f"exec of {p.pid}")
    release(p)
    return seen


def of_pid(pid, *types):
    """Predicate: an event of one of types about process pid."""
    return lambda e: e.get("tgid") == pid and e.get("type") in types


def run(tests):
    """Entry point of a test file: run the test named on the command line."""
    if len(sys.argv) != 2 or sys.argv[1] not in tests:
        print(f"usage: {sys.argv[0]} {'|'.join(sorted(tests))}", file=sys.stderr)
        sys.exit(2)
    name = sys.argv[1]
    try:
        if os.geteuid() != 0:
            raise Skip("needs root: the proc connector, core dumps and other users' processes")
        tests[name]()
    except Skip as e:
        print(f"SKIP {name}: {e}")
        sys.exit(77)
    except Exception:
        traceback.print_exc()
        print(f"FAIL {name}")
        sys.exit(1)
    print(f"PASS {name}")
    sys.exit(0)


class Proc:
    """A helper process with JSON lines on stdout, read without buffering
    (the D-Bus and JSON subscriber helpers, example programs)."""

    def __init__(self, argv, **kw):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, **kw)
        self.buf = b""

    def line(self, timeout=15, what="a line"):
        deadline = time.monotonic() + timeout
        fd = self.p.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            r, _, _ = select.select([fd], [], [], max(left, 0))
            if not r:
                fail(f"no {what} within {timeout}s")
            data = os.read(fd, 65536)
            if not data:
                self.p.wait()
                fail(f"{self.p.args[0]} exited before {what}: {self.p.stderr.read()!r}")
            self.buf += data
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode()

    def ready(self, timeout):
        """Whether a line can be read within timeout."""
        if b"\n" in self.buf:
            return True
        r, _, _ = select.select([self.p.stdout.fileno()], [], [], timeout)
        return bool(r)

    def json(self, timeout=15, what="a line"):
        return json.loads(self.line(timeout, what))

    def send(self, cmd):
        self.p.stdin.write(cmd.encode() + b"\n")
        self.p.stdin.flush()

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()
