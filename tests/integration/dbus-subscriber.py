#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A D-Bus subscriber for tests, with Debian's python3-dbus and GLib.

dbus-subscriber.py ADDRESS EVENTS MATCH_JSON
  (EVENTS "-": do not subscribe, only listen; prints {"listening": NAME};
  "-eavesdrop": also add an eavesdropping match rule for the broker's
  signals; prints {"listening": NAME, "eavesdrop": "accepted" or the error})
  subscribes (EVENTS comma-separated, "" for all; MATCH_JSON a JSON object
  whose integers are sent as int32 and lists as arrays), prints
  {"subscribed": PATH}, then one JSON line per org.procnotify.Broker1 signal
  it receives: {"member": NAME, "args": {name: value}}. With a "signal" key
  in MATCH_JSON, that Unix signal is blocked and waited for in a thread, and
  each one received prints {"unix_signal": {signo, code, pid, uid}}.
Commands on stdin, one per line, each answered by a JSON line:
  unsubscribe  -> {"unsubscribed": PATH}
  subscribe EVENTS MATCH_JSON -> {"subscribed": PATH} or {"error": NAME, "message": …}
               (one more subscription; EVENTS "all" for every type)
  stats        -> {"stats": GetStatistics()}
  call METHOD SIGNATURE ARGS_JSON -> {"reply": [values]} or {"error": NAME, "message": …}
               (a Broker1 method on this connection, asynchronously, so that
               the signals sent before the reply print before it; SIGNATURE
               "-" for none; JSON objects in ARGS are sent as a{sv})
  ping         -> {"pong": true} (a round trip to the broker, after every
                  signal it sent before its reply)
With PN_STAMP=1 in the environment, each signal's line also has "recv_ns":
CLOCK_MONOTONIC when it was dispatched (its ts_ns is on the same clock).
"""
import json
import os
import signal
import sys
import threading
import time

import dbus
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

ARGS = {}  # signal name -> argument names, from the broker's introspection
STAMP = os.environ.get("PN_STAMP") == "1"


def plain(v):
    if isinstance(v, (dbus.Array, list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, (dbus.Dictionary, dict)):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, dbus.Boolean):
        return bool(v)
    if isinstance(v, (dbus.String, dbus.ObjectPath)):
        return str(v)
    return int(v)


def to_variant(v):
    if isinstance(v, bool):
        return dbus.Boolean(v)
    if isinstance(v, int):
        return dbus.Int32(v) if -2**31 <= v < 2**31 else dbus.Int64(v)
    if isinstance(v, list):
        if all(isinstance(x, str) for x in v):
            return dbus.Array(v, signature="s")
        return dbus.Array([dbus.Int32(x) for x in v], signature="i")
    return dbus.String(v)


LOCK = threading.Lock()


def out(obj_):
    with LOCK:
        print(json.dumps(obj_), flush=True)


def wait_unix_signals(signo):
    while True:
        si = signal.sigwaitinfo([signo])
        out({"unix_signal": {"signo": si.si_signo, "code": si.si_code, "pid": si.si_pid,
                             "uid": si.si_uid}})


def main():
    match_json = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    if "signal" in match_json:
        sig = match_json["signal"]
        signo = sig if isinstance(sig, int) else getattr(signal, sig.upper(), None)
        if signo:
            # Blocked before any thread starts, so that every thread has it blocked.
            signal.pthread_sigmask(signal.SIG_BLOCK, [signo])
            threading.Thread(target=wait_unix_signals, args=(signo,), daemon=True).start()
    DBusGMainLoop(set_as_default=True)
    bus = dbus.bus.BusConnection(sys.argv[1])
    obj = bus.get_object("org.procnotify.Broker1", "/org/procnotify/Broker1")
    broker = dbus.Interface(obj, "org.procnotify.Broker1")
    import xml.etree.ElementTree as ET
    root = ET.fromstring(obj.Introspect(dbus_interface="org.freedesktop.DBus.Introspectable"))
    for sig in root.iter("signal"):
        ARGS[sig.get("name")] = [a.get("name") for a in sig.iter("arg")]

    def on_signal(*args, **kw):
        names = ARGS.get(kw["member"], [])
        line = {"member": kw["member"], "args": dict(zip(names, (plain(a) for a in args)))}
        if STAMP:
            line["recv_ns"] = time.monotonic_ns()
        out(line)

    bus.add_signal_receiver(on_signal, dbus_interface="org.procnotify.Broker1",
                            member_keyword="member")
    path = None
    if sys.argv[2] == "-":
        out({"listening": bus.get_unique_name()})
        return serve(bus, broker, path, out)
    if sys.argv[2] == "-eavesdrop":
        # Try to receive the broker's signals to others, too.
        try:
            bus.add_match_string("type='signal',interface='org.procnotify.Broker1',eavesdrop='true'")
            eavesdrop = "accepted"
        except dbus.DBusException as e:
            eavesdrop = e.get_dbus_name()
        out({"listening": bus.get_unique_name(), "eavesdrop": eavesdrop})
        return serve(bus, broker, path, out)
    events = [e for e in sys.argv[2].split(",") if e]
    match = dbus.Dictionary({k: to_variant(v) for k, v in match_json.items()},
                            signature="sv")
    try:
        path = broker.Subscribe(dbus.Array(events, signature="s"), match)
    except dbus.DBusException as e:
        out({"error": e.get_dbus_name(), "message": e.get_dbus_message()})
        return
    out({"subscribed": str(path), "name": bus.get_unique_name()})
    serve(bus, broker, path, out)


def serve(bus, broker, path, out):
    def on_stdin(fd, cond):
        line = sys.stdin.readline()
        if not line:
            loop.quit()
            return False
        cmd = line.strip()
        if cmd == "unsubscribe":
            broker.Unsubscribe(path)
            out({"unsubscribed": str(path)})
        elif cmd.startswith("subscribe "):
            _, events, match = cmd.split(" ", 2)
            events = [] if events == "all" else events.split(",")
            match = dbus.Dictionary({k: to_variant(v) for k, v in json.loads(match).items()},
                                    signature="sv")
            try:
                out({"subscribed": str(broker.Subscribe(dbus.Array(events, signature="s"), match))})
            except dbus.DBusException as e:
                out({"error": e.get_dbus_name(), "message": e.get_dbus_message()})
        elif cmd.startswith("call "):
            _, method, sig, args = cmd.split(" ", 3)
            args = [dbus.Dictionary({k: to_variant(v) for k, v in a.items()}, signature="sv")
                    if isinstance(a, dict) else a for a in json.loads(args)]
            bus.call_async("org.procnotify.Broker1", "/org/procnotify/Broker1", "org.procnotify.Broker1",
                           method, "" if sig == "-" else sig, args,
                           reply_handler=lambda *r: out({"reply": plain(list(r))}),
                           error_handler=lambda e: out({"error": e.get_dbus_name(),
                                                        "message": e.get_dbus_message()}),
                           timeout=30)
        elif cmd == "stats":
            out({"stats": plain(broker.GetStatistics())})
        elif cmd == "ping":
            # Asynchronously: the reply is then handled in order with the
            # signals that came before it. A blocking call would return with
            # them still queued, and they would print after the pong.
            broker.GetStatistics(reply_handler=lambda *a: out({"pong": True}),
                                 error_handler=lambda e: out({"pong": False, "error": str(e)}))
        return True

    loop = GLib.MainLoop()
    GLib.io_add_watch(sys.stdin.fileno(), GLib.IO_IN | GLib.IO_HUP, on_stdin)
    loop.run()


if __name__ == "__main__":
    main()
