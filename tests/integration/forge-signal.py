#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A forger on the bus: sends the broker's Predump signal as if it were the
broker, broadcast and unicast to every other connection (but the broker
and the names given), then a broadcast org.example.Forger.Done, then waits
for a round trip to the bus driver, so that everything it sent has been
routed.

    forge-signal.py ADDRESS PID COMM [EXCLUDED_NAME ...]

Prints {"name": its unique name, "unicast": {name: error name or null}}:
the errors the bus answered for each unicast signal.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pnrawdbus import ERROR, F_ERROR_NAME, F_REPLY_SERIAL, Body, RawConnection, read_string, read_string_array  # noqa: E402

NAME, PATH = "org.procnotify.Broker1", "/org/procnotify/Broker1"
DRIVER = ("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus")


def predump(pid, comm):
    # Predump: seq, ts_ns, pid, tgid, ppid, uid, comm, exe, cmdline, cgroup, unit, signal
    b = Body().u64(999999).u64(1).i32(pid).i32(pid).i32(1).u32(0)
    for s in (comm, "/usr/lib/frr/bfdd", comm, "/", ""):
        b.string(s)
    return b.i32(11).b


def main():
    address, pid, comm, excluded = sys.argv[1], int(sys.argv[2]), sys.argv[3], set(sys.argv[4:])
    c = RawConnection(address)
    c.send(c.method_call(*DRIVER, "GetNameOwner", "s", Body().string(NAME).b))
    broker = read_string(c.read_reply(c.serial)[2])
    c.send(c.method_call(*DRIVER, "ListNames"))
    names = [n for n in read_string_array(c.read_reply(c.serial)[2])
             if n.startswith(":") and n not in excluded and n not in (broker, c.unique_name)]
    body = predump(pid, comm)
    c.send(c.signal(PATH, NAME, "Predump", "ttiiiusssssi", body))
    sent = {}
    for n in names:
        c.send(c.signal(PATH, NAME, "Predump", "ttiiiusssssi", body, dest=n))
        sent[c.serial] = n
    c.send(c.signal("/org/example/Forger", "org.example.Forger", "Done"))
    c.send(c.method_call(*DRIVER, "GetId"))
    ping = c.serial
    unicast = {n: None for n in names}
    while True:
        m = c.read_message(30)
        serial = m[1].get(F_REPLY_SERIAL)
        if serial == ping:
            break
        if m[0] == ERROR and serial in sent:
            unicast[sent[serial]] = m[1].get(F_ERROR_NAME)
    print(json.dumps({"name": c.unique_name, "unicast": unicast}))


if __name__ == "__main__":
    main()
