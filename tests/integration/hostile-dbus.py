#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A hostile D-Bus caller: COUNT calls to org.procnotify.Broker1 over one
raw connection, each one of the ways a caller can try to make the broker
allocate or work (kind = call number % len(KINDS); every BIG_EVERY-th call
is a Subscribe of a million event names, 8 MB), pipelined WINDOW at a
time. Every reply must be the documented error of its kind.

    hostile-dbus.py ADDRESS COUNT [WINDOW] [BIG_EVERY]

Prints one JSON line: {"calls": N, "bytes": B, "replies": {error: count},
"wrong": [first mismatches]}; exit 0 when every reply was the expected one.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pnrawdbus import Body, RawConnection, error_name  # noqa: E402

DEST, PATH, IFACE = "org.procnotify.Broker1", "/org/procnotify/Broker1", "org.procnotify.Broker1"
LIMIT = "org.procnotify.Broker1.Error.LimitExceeded"
FILTER = "org.procnotify.Broker1.Error.InvalidFilter"


def nested_variant(depth):
    """A match value: a variant holding a variant … depth deep, then a string."""
    def inner(b, k):
        if k == 0:
            b.signature("s").string("bfdd")
        else:
            b.signature("v")
            inner(b, k - 1)
    return ("v", lambda b: inner(b, depth - 1))


def big_subscribe(c):
    return c.method_call(DEST, PATH, IFACE, "Subscribe", "asa{sv}",
                         Body().array_of_strings(["e"] * 1000000).dict_sv([]).b)


KINDS = [
    # (what, expected error, message builder)
    ("events: 300 names", LIMIT, lambda c: c.method_call(
        DEST, PATH, IFACE, "Subscribe", "asa{sv}", Body().array_of_strings(["exit"] * 300).dict_sv([]).b)),
    ("events: one name of 70,000 bytes", LIMIT, lambda c: c.method_call(
        DEST, PATH, IFACE, "Subscribe", "asa{sv}", Body().array_of_strings(["x" * 70000]).dict_sv([]).b)),
    ("match: comm with 300 values", LIMIT, lambda c: c.method_call(
        DEST, PATH, IFACE, "Subscribe", "asa{sv}",
        Body().array_of_strings([]).dict_sv([("comm", ("as", lambda b: b.array_of_strings(["a"] * 300)))]).b)),
    ("match: 300 keys", LIMIT, lambda c: c.method_call(
        DEST, PATH, IFACE, "Subscribe", "asa{sv}",
        Body().array_of_strings([]).dict_sv([("comm", "a")] * 300).b)),
    ("match: variants 20 deep", LIMIT, lambda c: c.method_call(
        DEST, PATH, IFACE, "Subscribe", "asa{sv}",
        Body().array_of_strings([]).dict_sv([("comm", nested_variant(20))]).b)),
    ("Run: argv of 300 entries", LIMIT, lambda c: c.method_call(
        DEST, PATH, IFACE, "Run", "asa{sv}", Body().array_of_strings(["/bin/true"] * 300).dict_sv([]).b)),
    ("Kill: 300 options", LIMIT, lambda c: c.method_call(
        DEST, PATH, IFACE, "Kill", "a{sv}", Body().dict_sv([("name", "x")] * 300).b)),
    ("Watch: 300 options", LIMIT, lambda c: c.method_call(
        DEST, PATH, IFACE, "Watch", "ua{sv}", Body().u32(1).dict_sv([("stop", True)] * 300).b)),
    ("Properties.Get: interface of 70,000 bytes", LIMIT, lambda c: c.method_call(
        DEST, PATH, "org.freedesktop.DBus.Properties", "Get", "ss",
        Body().string("x" * 70000).string("Version").b)),
    ("Subscribe: an unknown event (small)", FILTER, lambda c: c.method_call(
        DEST, PATH, IFACE, "Subscribe", "asa{sv}", Body().array_of_strings(["bogus"]).dict_sv([]).b)),
]


def main():
    address, count = sys.argv[1], int(sys.argv[2])
    window = int(sys.argv[3]) if len(sys.argv) > 3 else 32
    big_every = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    c = RawConnection(address)
    replies, wrong, sent_bytes = {}, [], 0
    i = 0
    while i < count:
        pending = {}
        for _ in range(min(window, count - i)):
            if big_every and i % big_every == 0:
                what, want, msg = "Subscribe: a million event names", LIMIT, big_subscribe(c)
            else:
                what, want, build = KINDS[i % len(KINDS)]
                msg = build(c)
            c.send(msg)
            sent_bytes += len(msg)
            pending[c.serial] = (what, want)
            i += 1
        for serial, (what, want) in pending.items():
            try:
                got = error_name(c.read_reply(serial, 120)) or "(success)"
            except AssertionError:
                wrong.append(f"{what}: no reply within 120 s (call {serial})")
                print(json.dumps({"calls": i, "bytes": sent_bytes, "replies": replies, "wrong": wrong}))
                return 1
            replies[got] = replies.get(got, 0) + 1
            if got != want and len(wrong) < 10:
                wrong.append(f"{what}: expected {want}, got {got}")
    c.close()
    print(json.dumps({"calls": count, "bytes": sent_bytes, "replies": replies, "wrong": wrong}))
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
