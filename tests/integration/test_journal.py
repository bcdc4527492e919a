#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The crash history in the journal, against a real systemd-journald: the
broker's entries (journalctl MESSAGE_ID=…) and procnotifyctl list. Run one
test: `test_journal.py NAME`.

There is no journald on the test machine (no systemd as PID 1), and the
host's /run is left alone: each test starts systemd-journald itself, in a
mount namespace of its own where /run is a tmpfs (the journal's sockets and
its volatile files) and journald.conf is the test's, and runs the broker,
journalctl and procnotifyctl in that namespace (nsenter)."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pntest
from pntest import (Broker, Dance, check, check_no_sanitizer_report, child, exec_then_release, fail,
                    of_pid, run, wait_until)

CTL = os.environ.get("PROCNOTIFYCTL", "procnotifyctl")
ME = os.getpid()
JOURNALD = "/lib/systemd/systemd-journald"

# As daemon/sink-journal.h and protocol/event-fields.h have them.
ID_PREDUMP = "81474ad908af49f0be087c384d60e564"
ID_CRASH = "d9d1079b5bf64b9e899f9d6636e82516"
ID_ADOPT = "e238efbf21884c86b69fe817888cf8c7"


class Journald:
    """systemd-journald in a mount namespace of its own (see the top)."""

    def __enter__(self):
        check(os.path.exists(JOURNALD), f"{JOURNALD} is missing (Debian's systemd package)")
        self.tmp = tempfile.mkdtemp(prefix="pnjournal-")
        conf = os.path.join(self.tmp, "journald.conf")
        with open(conf, "w") as f:
            f.write("[Journal]\nStorage=volatile\nReadKMsg=no\nForwardToSyslog=no\n"
                    "ForwardToWall=no\nForwardToConsole=no\nRateLimitBurst=0\n")
        script = ('mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/journal && '
                  'mount --bind "$0" /etc/systemd/journald.conf && exec "$1"')
        self.proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                                      script, conf, JOURNALD],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     preexec_fn=pntest._die_with_parent)
        sock = f"/proc/{self.proc.pid}/root/run/systemd/journal/socket"
        wait_until(lambda: self.proc.poll() is not None or os.path.exists(sock),
                   "systemd-journald's socket", 20)
        if self.proc.poll() is not None:
            fail(f"systemd-journald exited {self.proc.returncode} before its socket appeared")
        self.prefix = ["nsenter", "--mount", f"--target={self.proc.pid}", "--"]
        # The broker runs in the namespace too, through a wrapper.
        self.wrapper = os.path.join(self.tmp, "procnotifyd")
        with open(self.wrapper, "w") as f:
            f.write(f"#!/bin/sh\nexec {' '.join(self.prefix)} {pntest.PROCNOTIFYD} \"$@\"\n")
        os.chmod(self.wrapper, 0o755)
        self.saved, pntest.PROCNOTIFYD = pntest.PROCNOTIFYD, self.wrapper
        return self

    def __exit__(self, *exc):
        pntest.PROCNOTIFYD = self.saved
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def run(self, *argv, timeout=30):
        return subprocess.run([*self.prefix, *argv], capture_output=True, text=True, timeout=timeout)

    def entries(self, *matches):
        """journalctl -o json with matches: the entries, as dicts."""
        r = self.run("journalctl", "--no-pager", "-o", "json", *matches)
        check(r.returncode in (0, 1), f"journalctl: {r.returncode} {r.stderr}")
        return [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]

    def wait_entries(self, n, *matches, timeout=15):
        found = []

        def enough():
            found[:] = self.entries(*matches)
            return len(found) >= n
        wait_until(enough, f"{n} journal entries with {matches} (got {found})", timeout)
        return found


def ctl(j, b, *args):
    r = j.run(CTL, "--socket", b.socket_path, *args)
    check_no_sanitizer_report(r.stderr, f"procnotifyctl {' '.join(args)}")
    return r


def test_crash_history():
    """A crash becomes two entries (predump, and the exit by its signal)
    with the event's fields; a clean exit none; procnotifyctl list shows
    them, filtered by time and by the protocol's filters."""
    with Journald() as j, Broker() as b:
        c = b.client()
        c.subscribe(events=["exec", "predump", "exit"], match={"ppid": ME})
        clean = child("exit", 0)
        c.events_until(of_pid(clean.pid, "exit"), what="the clean exit")
        clean.wait()
        p = child("segv", "nocore", hold=True)
        exec_then_release(c, p)
        c.events_until(of_pid(p.pid, "exit"), what=f"exit of crashing {p.pid}")
        p.wait()

        pre = j.wait_entries(1, f"MESSAGE_ID={ID_PREDUMP}", f"PROCNOTIFY_TGID={p.pid}")[0]
        ex = j.wait_entries(1, f"MESSAGE_ID={ID_CRASH}", f"PROCNOTIFY_TGID={p.pid}")[0]
        for e, kind in ((pre, "predump"), (ex, "exit")):
            check(e["SYSLOG_IDENTIFIER"] == "procnotifyd" and e["PROCNOTIFY_TYPE"] == kind and
                  e["PROCNOTIFY_COMM"] == "pn-child" and e["PROCNOTIFY_PID"] == str(p.pid) and
                  e["OBJECT_PID"] == str(p.pid) and json.loads(e["PROCNOTIFY_JSON"])["tgid"] == p.pid,
                  f"{kind} entry: {e}")
        check(ex["PROCNOTIFY_SIGNAL"] == str(int(signal.SIGSEGV)) and ex["PROCNOTIFY_CORE_DUMPED"] == "false"
              and ex["PRIORITY"] == "3" and "killed by SIGSEGV" in ex["MESSAGE"], f"exit entry: {ex}")
        check("dying of a core-class signal" in pre["MESSAGE"], f"predump message: {pre['MESSAGE']}")
        # Entries come in order: the clean exit, before, made none.
        check(not j.entries(f"PROCNOTIFY_TGID={clean.pid}"), "a clean exit made a journal entry")

        r = ctl(j, b, "list", "--json", f"--tgid={p.pid}")
        lines = [json.loads(line) for line in r.stdout.splitlines()]
        check(r.returncode == 0 and [e["type"] for e in lines] == ["predump", "exit"] and
              all(e["tgid"] == p.pid for e in lines), f"list --json: {r.returncode} {r.stdout!r} {r.stderr}")
        r = ctl(j, b, "list", "--since=-1h", "--events=exit", f"--tgid={p.pid}")
        rows = r.stdout.splitlines()
        check(r.returncode == 0 and rows[0].startswith("TIME ") and len(rows) == 2 and
              "killed by signal 11 (SIGSEGV)" in rows[1], f"list table: {rows} {r.stderr}")
        r = ctl(j, b, "list", "--no-legend", "--since=2999-01-01", f"--tgid={p.pid}")
        check(r.returncode == 0 and r.stdout == "", f"list from the future: {r.stdout!r} {r.stderr}")
        r = ctl(j, b, "list", "--since=soon")
        check(r.returncode == 2 and "--since" in r.stderr, f"bad --since: {r.returncode} {r.stderr!r}")

        s = c.request({"op": "status"})["journal"]
        check(s["entries"] >= 2 and s["failed"] == 0, f"journal statistics: {s}")


def test_adoption_entry():
    """A daemon's double fork: the adoption of its main is an entry with its
    old and new parent."""
    with Journald() as j, Broker() as b:
        c = b.client()
        c.subscribe(events=["exec", "adopt"])
        d = Dance(2, hold=True)
        try:
            d.read_stage0()
            c.events_until(of_pid(d.pid(0), "exec"), what="exec of stage 0")
            d.go()
            d.read_all()
            ev = c.events_until(of_pid(d.pid(2), "adopt"), what="the daemon's adoption")[-1]
            e = j.wait_entries(1, f"MESSAGE_ID={ID_ADOPT}", f"PROCNOTIFY_TGID={d.pid(2)}")[0]
            check(e["PROCNOTIFY_OLD_PARENT"] == str(d.pid(1)) and
                  e["PROCNOTIFY_NEW_PARENT"] == str(ev["new_parent"]) and e["PRIORITY"] == "6" and
                  f"its parent {d.pid(1)} exited" in e["MESSAGE"], f"adopt entry: {e}")
        finally:
            d.close()


def test_no_journal_counts_unavailable():
    """Without journald nothing blocks and nothing is lost silently: the
    entries are counted as unavailable; Journal=no writes none."""
    with Broker() as b:
        c = b.client()
        c.subscribe(events=["exit"], match={"ppid": ME})
        p = child("segv", "nocore")
        c.events_until(of_pid(p.pid, "exit"), what="the crash")
        p.wait()
        s = c.request({"op": "status"})["journal"]
        check(s["entries"] == 0 and s["unavailable"] >= 1, f"journal statistics: {s}")
    with Broker(config="[Broker]\nJournal=no\n") as b:
        check("journal" not in b.client().request({"op": "status"}), "Journal=no still has a journal")


if __name__ == "__main__":
    run({name[5:]: fn for name, fn in globals().items() if name.startswith("test_")})
