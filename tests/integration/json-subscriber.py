#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A JSON-socket subscriber for tests, meant to run as another user.

json-subscriber.py SOCKET EVENTS MATCH_JSON
  connects; prints {"hello": HELLO}, or {"error": CODE, "message": …} and
  exits if the broker refused the connection. Unless EVENTS is "-", it then
  subscribes (EVENTS comma-separated, "" for all; MATCH_JSON an object) and
  prints {"subscribed": ID} or {"error": CODE, "message": …}. Every event is
  printed as {"event": EVENT}.
Commands on stdin, one per line, each answered by one JSON line:
  subscribe EVENTS MATCH_JSON -> {"subscribed": ID} or {"error": …}
  unsubscribe ID              -> {"unsubscribed": ID} or {"error": …}
  ping                        -> {"pong": true}, after every event the broker
                                 queued for this connection before the pong
"""
import json
import select
import socket
import sys


def out(obj):
    print(json.dumps(obj), flush=True)


class Conn:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.buf = b""

    def buffered(self):
        """Complete lines already read, without reading more."""
        *done, self.buf = self.buf.split(b"\n")
        return [json.loads(x) for x in done if x.strip()]

    def read(self):
        data = self.sock.recv(1 << 20)
        if not data:
            out({"eof": True})
            sys.exit(0)
        self.buf += data

    def reply(self):
        """The next non-event message; events on the way are printed."""
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                if not line.strip():
                    continue
                m = json.loads(line)
                if m.get("type") in ("hello", "subscribed", "unsubscribed", "pong", "error"):
                    return m
                out({"event": m})
            self.read()

    def request(self, obj):
        self.sock.sendall((json.dumps(obj) + "\n").encode())
        return self.reply()


def subscribe(c, events, match):
    req = {"op": "subscribe", "match": json.loads(match)}
    if events:
        req["events"] = events.split(",")
    r = c.request(req)
    if r["type"] == "subscribed":
        out({"subscribed": r["id"]})
    else:
        out({"error": r.get("code"), "message": r.get("message")})


def main():
    c = Conn(sys.argv[1])
    h = c.reply()
    if h["type"] != "hello":
        out({"error": h.get("code"), "message": h.get("message")})
        return
    out({"hello": h})
    if sys.argv[2] != "-":
        subscribe(c, sys.argv[2], sys.argv[3])
    while True:
        for m in c.buffered():
            out({"event": m})
        r, _, _ = select.select([c.sock, sys.stdin], [], [])
        if c.sock in r:
            c.read()
            continue
        if sys.stdin in r:
            line = sys.stdin.readline()
            if not line:
                return
            cmd, _, rest = line.strip().partition(" ")
            if cmd == "subscribe":
                events, _, match = rest.partition(" ")
                subscribe(c, "" if events == "all" else events, match or "{}")
            elif cmd == "unsubscribe":
                r = c.request({"op": "unsubscribe", "id": int(rest)})
                out({"unsubscribed": r["id"]} if r["type"] == "unsubscribed" else {"error": r.get("code")})
            elif cmd == "ping":
                r = c.request({"op": "ping"})
                out({"pong": r["type"] == "pong"})


if __name__ == "__main__":
    main()
