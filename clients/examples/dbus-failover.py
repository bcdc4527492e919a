#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Fail over when a service crashes, from D-Bus (Debian: python3-dbus, python3-gi).

  dbus-failover.py [--address ADDRESS] [--exe PATH] [--unit UNIT] [--comm NAME]
                   [--once] [-- COMMAND ...]

Subscribes to org.procnotify.Broker1 for the predump and exit events of
the processes that run PATH, in systemd unit UNIT, named NAME (shell
globs; all that are given must match) and prints one line per event:

  predump pid=812 comm=bfdd
  exit pid=812 comm=bfdd exit_code=139 signal=11 core_dumped=true

On the first predump, or on an exit by a signal, it runs COMMAND (if given)
with PROCNOTIFY_PID and PROCNOTIFY_COMM in its environment: the predump
arrives before the core is written, so a standby can take over while the
crashed process is still dumping. With --once it exits after that.

Fail over on --exe and --unit, not on --comm alone: a process's name is
whatever the process says, so any user could name a process bfdd and
crash it; the executable's path (only root can put a file in
/usr/lib/frr) and the unit (a cgroup no user can join) are not theirs to
choose.
Without --address it uses the system bus.

Only signals from the broker count: each one's sender must be the unique
name that owns org.procnotify.Broker1 (asked with GetNameOwner, followed
through NameOwnerChanged). A signal is just a message with an interface
and a member, which any connection may send: on a bus whose policy lets
more than the broker send them (root can, everywhere), a forged Predump
would otherwise start a failover.
"""
import argparse
import os
import subprocess
import sys

import dbus
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

NAME = "org.procnotify.Broker1"
PATH = "/org/procnotify/Broker1"


def main():
    ap = argparse.ArgumentParser(description="run a command when a process crashes")
    ap.add_argument("--address", help="a D-Bus address (default: the system bus)")
    ap.add_argument("--exe", help="executable path (shell glob)")
    ap.add_argument("--unit", help="systemd unit (shell glob)")
    ap.add_argument("--comm", help="process name (shell glob): anyone can choose it")
    ap.add_argument("--once", action="store_true", help="exit after the first failover")
    ap.add_argument("command", nargs="*", help="what to run on a crash")
    args = ap.parse_args()
    match = {k: v for k, v in (("exe", args.exe), ("unit", args.unit), ("comm", args.comm)) if v}
    if not match:
        ap.error("give --exe, --unit or --comm")

    DBusGMainLoop(set_as_default=True)
    bus = dbus.bus.BusConnection(args.address) if args.address else dbus.SystemBus()
    loop = GLib.MainLoop()
    done = set()  # pids already failed over for
    # The unique name of the broker our subscription lives on.
    owner = {"name": None}

    def on_owner_changed(new_owner):
        # Another broker (or none) now: it has no subscription of ours, and
        # signals from the old name can no longer come. Follow the name
        # and subscribe again on the new broker.
        if new_owner and new_owner != owner["name"]:
            owner["name"] = str(new_owner)
            try:
                subscribe()
            except dbus.DBusException as e:
                print(f"dbus-failover: {e.get_dbus_name()}: {e.get_dbus_message()}", file=sys.stderr)
        elif not new_owner:
            owner["name"] = None

    def from_broker(fn):
        def receive(*args, sender=None):
            if sender is not None and sender == owner["name"]:
                fn(*args)
        return receive

    def shown(comm):
        """comm for one line of output: a process names itself with any
        characters, newline and ESC included; those are escaped as in Python."""
        return "".join(c if c.isprintable() and c != "\\" else repr(c)[1:-1] for c in str(comm))

    def failover(pid, comm):
        if pid in done:
            return
        done.add(pid)
        if args.command:
            env = dict(os.environ, PROCNOTIFY_PID=str(pid), PROCNOTIFY_COMM=comm)
            subprocess.Popen(args.command, env=env)
        if args.once:
            loop.quit()

    # Signal arguments, in the order of dbus/org.procnotify.Broker1.xml;
    # *newer takes what a newer broker appends (tid, rss, core_limit, …).
    def on_predump(seq, ts_ns, pid, tgid, ppid, uid, comm, exe, cmdline, cgroup, unit, sig, *newer):
        print(f"predump pid={tgid} comm={shown(comm)}", flush=True)
        failover(int(tgid), str(comm))

    def on_exited(seq, ts_ns, pid, tgid, ppid, uid, comm, exe, cmdline, cgroup, unit,
                  exit_code, sig, core_dumped, status, sources, thread, *newer):
        print(f"exit pid={tgid} comm={shown(comm)} exit_code={exit_code} signal={sig} "
              f"core_dumped={'true' if core_dumped else 'false'}", flush=True)
        if sig:
            failover(int(tgid), str(comm))

    def on_overrun(seq, ts_ns, lost, where, first_seq, last_seq, *newer):
        print(f"overrun lost={lost} where={where}", file=sys.stderr, flush=True)

    def subscribe():
        # Called on the unique name itself: the subscription is where the signals are accepted from.
        broker = dbus.Interface(bus.get_object(owner["name"], PATH), NAME)
        broker.Subscribe(["predump", "exit", "overrun"],
                         dbus.Dictionary(match, signature="sv"))

    for member, fn in (("Predump", on_predump), ("Exited", on_exited), ("Overrun", on_overrun)):
        bus.add_signal_receiver(from_broker(fn), dbus_interface=NAME, signal_name=member, path=PATH,
                                sender_keyword="sender")
    try:
        owner["name"] = str(bus.get_name_owner(NAME))
        subscribe()
    except dbus.DBusException as e:
        print(f"dbus-failover: {e.get_dbus_name()}: {e.get_dbus_message()}", file=sys.stderr)
        return 3
    bus.watch_name_owner(NAME, on_owner_changed)
    print(f"watching {' '.join(match.values())}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
