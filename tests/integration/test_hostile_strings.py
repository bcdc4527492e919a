#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Hostile strings: every string either sink sends is valid for its
transport, by one mapping (protocol/utf8.h) that both share.

A real process names itself, its executable, its arguments and its cgroup
with bytes that are not UTF-8 (0xff, lone continuation bytes, overlong
forms, encoded surrogates, truncated sequences) or are noncharacters, then
crashes: the JSON subscriber and the D-Bus subscriber (on dbus-daemon and
dbus-broker) both get its predump and exit, with the same mapped strings.
Also: D-Bus errors that echo a name are cut on character boundaries;
requests whose text is not valid are refused; a comm with newline and ESC
cannot forge lines in procnotify-hooks' log or the examples' output.
Run one test: `test_hostile_strings.py NAME[@BUS]`."""
import os
import select
import shutil
import subprocess
import sys
import tempfile
import uuid

from pntest import Broker, Bus, _die_with_parent, check, fail, of_pid, run
from test_dbus import DEST, busctl, signal_of, subscriber
from test_hooks import EXAMPLES, Runner, Scratch

ME = os.getpid()
UNIFIED = "/sys/fs/cgroup/unified" if os.path.isdir("/sys/fs/cgroup/unified") else "/sys/fs/cgroup"

# The hostile process: sets its comm with PR_SET_NAME, says "ready", waits
# until the test closes its stdin, then aborts (a core-class signal: a
# predump) or exits with the code given.
CHILD = r"""
import ctypes, os, resource, sys
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(15, ctypes.c_char_p(bytes.fromhex(sys.argv[1])), 0, 0, 0) != 0:
    sys.exit(90)
os.write(1, b"ready\n")
sys.stdin.buffer.read()
if sys.argv[2] == "abort":
    os.abort()
sys.exit(int(sys.argv[2]))
"""

# Bytes no sink may send as they are.
HOSTILE_ARGS = [
    b"\xff\xfe",                # never in UTF-8
    b"Caf\xe9",                 # Latin-1
    b"\x80\xbf",                # lone continuation bytes
    b"\xc0\xaf\xe0\x80\xaf",    # overlong '/', twice
    b"\xf0\x80\x80\xaf",        # overlong, 4 bytes
    b"\xed\xa0\x80",            # U+D800 encoded
    b"\xf4\x90\x80\x80",        # past U+10FFFF
    b"\xef\xbf\xbe\xef\xb7\x90",  # noncharacters U+FFFE, U+FDD0
    b"\xf0\x9f\xbf\xbf",        # noncharacter U+1FFFF
    b"x\xe2\x82",               # truncated
    b"\xc3\xa9\xf0\x9f\x98\x80",  # valid: kept
    b"\n\x1b[31m",              # controls: valid, kept
]
COMM = b"\xff\xc0\xaf\xed\xa0\x80\xef\xbf\xbe\n\x1b"  # 11 bytes: the kernel keeps 15


def mapped(raw):
    """The documented mapping (PROTOCOL.md, "Strings"), written again from
    its words: a byte that does not start a well-formed UTF-8 character
    becomes U+FFFD, scanning on at the next byte; a noncharacter and NUL
    become U+FFFD; everything else stays."""
    out, i = [], 0
    while i < len(raw):
        for n in (1, 2, 3, 4):
            try:
                c = raw[i:i + n].decode("utf-8")  # strict: no overlong, surrogate, > U+10FFFF
            except UnicodeDecodeError:
                continue
            cp = ord(c)
            bad = cp == 0 or 0xFDD0 <= cp <= 0xFDEF or (cp & 0xFFFE) == 0xFFFE
            out.append("\ufffd" if bad else c)
            i += n
            break
        else:
            out.append("\ufffd")
            i += 1
    return "".join(out)


def wait_ready(p, what, timeout=30):
    """Wait (bounded) until child p printed "ready" after naming itself."""
    r, _, _ = select.select([p.stdout], [], [], timeout)
    check(r, f"{what} did not start within {timeout}s")
    line = p.stdout.readline()
    check(line == b"ready\n", f"{what} did not start: {line!r}, exit {p.poll()}")


class Hostile:
    """A copy of python3 under a hostile name, in a hostile cgroup (whose
    name makes a unit), with hostile arguments, that names itself COMM."""

    def __init__(self, how):
        tag = uuid.uuid4().hex[:8]
        self.dir = tempfile.mkdtemp(prefix="pnhostile-")
        os.chmod(self.dir, 0o755)
        self.exe = os.fsencode(self.dir) + b"/py-\xff\xc0\xaf\xed\xa0\x80\xef\xbf\xbf-" + tag.encode()
        shutil.copy(sys.executable, self.exe)
        os.chmod(self.exe, 0o755)
        self.unit = b"pn\xff\xc0\xaf\xef\xb7\x90-" + tag.encode() + b".service"
        self.cgroup_dir = os.fsencode(UNIFIED) + b"/" + self.unit
        os.mkdir(self.cgroup_dir)
        self.argv = [self.exe, b"-c", CHILD.encode(), COMM.hex().encode(), how.encode()] + HOSTILE_ARGS
        procs = self.cgroup_dir + b"/cgroup.procs"

        def pre():
            with open(procs, "w") as f:
                f.write("0")
            _die_with_parent()

        self.p = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  preexec_fn=pre)
        self.pid = self.p.pid
        try:
            wait_ready(self.p, "the hostile child")
        except BaseException:
            self.close()
            raise

    def expected(self):
        return {
            "comm": mapped(COMM[:15]),
            "exe": mapped(self.exe),
            "cmdline": mapped(b" ".join(self.argv)),
            "cgroup": mapped(b"/" + self.unit),
            "unit": mapped(self.unit),
        }

    def release(self):
        self.p.stdin.close()
        self.p.wait(15)

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        try:
            os.rmdir(self.cgroup_dir)
        except OSError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


STRINGS = ("comm", "exe", "cmdline", "cgroup", "unit")


def test_crash_same_strings_on_both_sinks(kind):
    """The hostile process crashes: the D-Bus subscriber gets Predump and
    Exited (sd-bus refused the raw strings: before the mapping no signal was
    sent), and every string equals the JSON event's and the mapping's."""
    with Bus(kind) as bus, Broker(dbus=bus.address) as b:
        c = b.client()
        c.subscribe(events=["comm", "predump", "exit"], match={"ppid": ME})
        sub = subscriber(bus, "predump,exit", {"ppid": ME})
        h = None
        try:
            h = Hostile("abort")
            # Its new name reached the broker before it crashes.
            c.events_until(of_pid(h.pid, "comm"), 15, what=f"the comm event of {h.pid}")
            h.release()
            seen = c.events_until(of_pid(h.pid, "exit"), 15, what=f"the exit of {h.pid}")
            js = {e["type"]: e for e in seen if e.get("tgid") == h.pid}
            check("predump" in js, f"no predump on the JSON socket: {seen}")
            signals = [m for m in signal_of(sub, "Exited", h.pid) if m["args"].get("tgid") == h.pid]
            db = {m["member"]: m["args"] for m in signals}
            check(list(db) == ["Predump", "Exited"], f"D-Bus subscriber got {signals}")
            want = h.expected()
            for jtype, member in (("predump", "Predump"), ("exit", "Exited")):
                for key in STRINGS:
                    check(js[jtype].get(key) == want[key],
                          f"JSON {jtype}.{key}: {js[jtype].get(key)!r}, the mapping gives {want[key]!r}")
                    check(db[member][key] == want[key],
                          f"D-Bus {member}.{key}: {db[member][key]!r}, the mapping gives {want[key]!r}")
            check(js["exit"]["signal"] == 6 and db["Exited"]["signal"] == 6, "not killed by SIGABRT")
            # Nothing was lost or refused on the way.
            check(not any(m.get("member") == "Overrun" for m in signals), "an Overrun")
            check(b.proc.poll() is None, "the broker died")
        finally:
            if h:
                h.close()
            sub.close()


def test_error_cut_on_character_boundary(kind):
    """A bad call whose echoed name has a two-byte character across the
    64-byte cut: the caller gets the error, not a timeout (sd-bus could not
    send an error message cut inside the character)."""
    name = "x" * 63 + "\u00e9"
    calls = [
        (["Subscribe", "asa{sv}", "1", name, "0"], "unknown event type"),
        (["Subscribe", "asa{sv}", "0", "1", name, "s", "v"], "unknown match key"),
        (["Watch", "ua{sv}", str(ME), "1", name, "b", "true"], "Unknown option"),
    ]
    with Bus(kind) as bus, Broker(dbus=bus.address) as b:
        for args, words in calls:
            r = busctl(bus, "--timeout=5", "call", *DEST, "org.procnotify.Broker1", *args)
            check(r.returncode != 0 and words in r.stderr and "x" * 63 in r.stderr,
                  f"{args[0]} with {name!r}: expected an error saying {words!r}, got "
                  f"rc {r.returncode}: {r.stderr.strip()!r}")
            check("\u00e9" not in r.stderr or name in r.stderr, f"a cut character: {r.stderr!r}")
        check(busctl(bus, "call", *DEST, "org.freedesktop.DBus.Peer", "Ping").returncode == 0,
              "the broker no longer answers")


def test_request_text_refused():
    """Over the real socket: an escaped NUL in an op, an event name, a signal
    name or a member name, and overlong or surrogate UTF-8, are refused
    with invalid-request (they were cut at the NUL, or accepted); the
    connection keeps working."""
    with Broker() as b:
        c = b.client()
        cases = [
            b'{"op":"ping\\u0000"}',
            b'{"op":"ping","x\\u0000":1}',
            b'{"op\\u0000junk":"ping"}',
            b'{"op":"subscribe","events":["exit\\u0000junk"]}',
            b'{"op":"subscribe","events":["exit"],"signal":"USR1\\u0000junk"}',
            b'{"op":"subscribe","events":["exit"],"match":{"comm":"a\\u0000b"}}',
            b'{"op":"\xc0\xafping"}',
            b'{"op":"subscribe","events":["exit\xe0\x80\x80"]}',
            b'{"op":"subscribe","events":["exit"],"match":{"comm":"\xf0\x80\x80\xaf"}}',
            b'{"op":"subscribe","events":["exit"],"match":{"comm":"\xed\xa0\x80"}}',
            b'{"op":"subscribe","events":["exit"],"match":{"comm":"\\ud800"}}',
            b'{"op":"subscribe","events":["exit"],"match":{"comm":"\xef\xbf\xbe"}}',
        ]
        for line in cases:
            c.send_raw(line + b"\n")
            r = c.read_reply()
            check(r and r["type"] == "error" and r["code"] == "invalid-request" and r["message"],
                  f"{line!r}: expected error invalid-request, got {r}")
        # Valid text, escapes included, is accepted.
        ok = b'{"op":"subscribe","events":["exit"],"match":{"comm":"\\\\u0000 \\u00e9 \xc3\xa9"}}'
        c.send_raw(ok + b"\n")
        r = c.read_reply()
        check(r and r["type"] == "subscribed", f"{ok!r} was refused: {r}")
        check(c.request({"op": "ping"})["type"] == "pong", "connection broken after bad lines")


def test_hook_log_escaped():
    """A process named "x\\nFORGED\\x1b[31m" exits: procnotify-hooks' log
    line about its hook, and the notify-peer and restart-standby examples'
    output (in that log too), show the name escaped: no line of the log
    starts with the forged text, and no ESC reaches it."""
    s = Scratch()
    py = os.path.join(s.dir, "pyhostile")
    shutil.copy(sys.executable, py)
    os.chmod(py, 0o755)
    flag = os.path.join(s.dir, "peer-notified")
    pidfile = os.path.join(s.dir, "standby.pid")
    comm = b"x\nFORGED\x1b[31m"
    try:
        match = f"[Match]\nEvents=exit\nExe={py}\n[Exec]\n"
        s.hook("report", match + f"Command={s.script} {s.report} ok\n")
        s.hook("notify-peer", match + f"Command={EXAMPLES}/notify-peer file:{flag}\n")
        s.hook("restart-standby", match + f"Command={EXAMPLES}/restart-standby --pidfile {pidfile} "
                                          f"-- {s.script} {s.report} standby\n")
        with Broker() as b, Runner(b, s) as h:
            c = b.client()
            c.subscribe(events=["comm"], match={"ppid": ME})
            p = subprocess.Popen([py, "-c", CHILD, comm.hex(), "0"], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, preexec_fn=_die_with_parent)
            wait_ready(p, "the named child")
            c.events_until(of_pid(p.pid, "comm"), 15, what=f"the comm event of {p.pid}")
            p.stdin.close()
            p.wait(15)
            s.next_report(what="the report hook")
            esc = r"x\\nFORGED\\x1b\[31m"
            h.wait_log(rf"Hook report: pid \d+ \(exit seq \d+ of {p.pid} {esc}\) exited with status 0")
            h.wait_log(r"notify-peer: told file:\S+ about exit of \$'x\\nFORGED\\E\[31m' "
                       rf"\(pid {p.pid}\)")
            h.wait_log(rf"restart-standby: x\?FORGED\?\[31m \(pid {p.pid}\) exited cleanly")
            h.wait_log(r"Hook restart-standby: pid \d+ .* exited with status 0")
            h.wait_log(r"Hook notify-peer: pid \d+ .* exited with status 0")
            log = h.log()
            forged = [l for l in log.split("\n") if l.startswith("FORGED") or "\x1b" in l]
            check(not forged, f"forged or raw lines in the log: {forged!r}")
    finally:
        s.close()


TESTS = {"request_text_refused": test_request_text_refused,
         "hook_log_escaped": test_hook_log_escaped}
for _bus in Bus.KINDS:
    TESTS[f"crash_same_strings_on_both_sinks@{_bus}"] = (
        lambda k=_bus: test_crash_same_strings_on_both_sinks(k))
    TESTS[f"error_cut_on_character_boundary@{_bus}"] = (
        lambda k=_bus: test_error_cut_on_character_boundary(k))

if __name__ == "__main__":
    run(TESTS)
