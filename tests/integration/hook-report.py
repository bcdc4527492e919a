#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A hook command for the integration tests: reports what it got to the
test over a Unix datagram socket, then behaves as told.

    hook-report.py SOCKET MODE [ARG...]

Reports its CLOCK_MONOTONIC start, pid, process group, credentials, working
directory, environment and standard input. MODE: ok (exit 0), fail (exit
3), hang (start a grandchild in its process group, report its pid too, and
sleep), block (connect to the Unix stream socket ARG and exit 0 once the
test closes that connection), standby (report, then sleep until killed)."""
import json
import os
import socket
import subprocess
import sys
import time

start_ns = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
sock_path, mode = sys.argv[1], sys.argv[2]
msg = {
    "mode": mode, "argv": sys.argv[3:], "start_ns": start_ns, "pid": os.getpid(),
    "pgid": os.getpgid(0), "sid": os.getsid(0), "uid": os.getuid(), "gid": os.getgid(),
    "groups": sorted(os.getgroups()), "cwd": os.getcwd(), "env": dict(os.environ),
}
if mode != "standby":
    msg["stdin"] = sys.stdin.read()
grandchild = None
if mode == "hang":
    grandchild = subprocess.Popen(["sleep", "1000"])
    msg["grandchild"] = grandchild.pid
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(json.dumps(msg).encode(), sock_path)
if mode == "fail":
    sys.exit(3)
if mode == "block":
    # Held until the test accepts this connection and closes it.
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect(sys.argv[3])
    c.recv(1)
if mode in ("hang", "standby"):
    while True:
        time.sleep(1000)
